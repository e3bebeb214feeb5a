/*
 * augment.h — seeded data augmentation of training batches:
 * `dataset.augment: {crop_pad: P, hflip: true}` for any image dataset.
 *
 *   crop_pad P   pad the image with P zeros on every side, then take a
 *                random H x W crop: each image moves by (dy, dx), both
 *                uniform in [-P, P], the uncovered border is 0
 *   hflip        mirror the image left-right with probability 1/2
 *
 * (the usual CIFAR recipe: crop_pad 4, hflip true). The zeros are written
 * into the dataset's output, i.e. after the plugin's normalisation.
 *
 * Only training batches of a training phase (train, retrain, finetune) are
 * augmented (train.c, after pl_data_read); test data, calibration batches
 * for criteria and sensitivity never are. The draws come from the run's
 * seed, stream "augment:<phase>:<epoch>:<first example of the batch>",
 * three per image in batch order, on the calling thread: the batch is the
 * same for any thread count and any backend.
 */
#ifndef PL_AUGMENT_H
#define PL_AUGMENT_H

#include "config.h"

/* In place on one image x[c][h][w]: out(y, x') = in(y + dy, x' + dx) or 0
 * outside, then mirrored when flip. |dy| < h and |dx| < w. */
void pl_augment_image(float *x, int c, int h, int w, int dy, int dx, int flip);

/* Augments the n images of x (each c x h x w) as the training loop does for
 * the batch starting at example `first` of epoch `epoch` (0-based) of
 * `phase`. A no-op when a is NULL or enables nothing. */
void pl_augment_batch(const pl_augment_cfg *a, uint64_t seed, const char *phase, int epoch, int64_t first,
                      float *x, int n, int c, int h, int w);

#endif
