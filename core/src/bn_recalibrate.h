/*
 * bn_recalibrate.h — re-estimate every batchnorm's running statistics after
 * pruning ("adaptive batchnorm", Li et al. 2020, EagleEye).
 *
 * Surgery keeps each surviving channel's running mean and variance, but
 * those were measured when the layers before it had all their channels: a
 * batchnorm after a cut now sees inputs with other statistics, and in
 * evaluation mode the network can fall to chance although each weight it
 * kept is right. prune.recalibrate_bn: N passes N batches of training
 * images forward in training mode (no gradient, no weight update) and
 * replaces every running statistic by the plain average of the N batch
 * statistics (PyTorch's momentum=None), so the result does not depend on
 * the old values.
 *
 *     pl_bn_recalibrate(m, &train, 50, 128, seed, "bn_recalibrate:0", &err);
 *
 * Images are drawn with replacement from the RNG stream `stream` of seed;
 * the statistics are summed in the batchnorm's fixed order, so the result
 * does not depend on the thread count. Parameters, dropout's stream and
 * every layer's momentum are as they were afterwards. A model without a
 * batchnorm is left untouched (no pass runs).
 */
#ifndef PL_BN_RECALIBRATE_H
#define PL_BN_RECALIBRATE_H

#include "model.h"
#include "train.h"

pl_status pl_bn_recalibrate(pl_model *m, pl_data *train, int batches, int batch, uint64_t seed,
                            const char *stream, pl_error *err);

#endif
