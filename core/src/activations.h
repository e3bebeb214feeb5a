/*
 * activations.h — per-unit activation statistics for criteria that declare
 * PL_NEEDS_ACTIVATIONS (apoz, and any plugin's own).
 *
 * For a conv2d or linear layer, a unit's activation is its output after
 * the layer's nonlinearity: the output of the relu that follows it
 * (through a batchnorm2d between them, if there is one), or, when no relu
 * follows, the output of that batchnorm2d or of the layer itself. The
 * statistics are taken in evaluation mode (running batchnorm statistics,
 * no dropout) over calibration batches drawn from the training split, over
 * every image and spatial position:
 *
 *     mean = E[a],  sq = E[a²],  zero = P(a == 0)  (APoZ, Hu et al. 2016)
 *
 * Sums run in double in a fixed order (batch, image, channel, position),
 * so the statistics do not depend on the thread count.
 *
 *     pl_act act[2];
 *     pl_activations_collect(m, &train, layers, 2, 8, 64, seed, "activations:0", act, &err);
 *     ... act[k].zero[u] ...
 *     pl_act_free(act, 2);
 */
#ifndef PL_ACTIVATIONS_H
#define PL_ACTIVATIONS_H

#include "model.h"
#include "train.h"

typedef struct pl_act {
    int64_t units;         /* the layer's output channels or neurons */
    int64_t samples;       /* activations averaged per unit */
    double *mean, *sq, *zero; /* [units] each */
} pl_act;

/* The layer whose output is layer li's activation (li itself when neither
 * a batchnorm2d nor a relu follows it). */
int pl_activation_layer(const pl_model *m, int li);

/* Fills out[k] for each layers[k] from `batches` batches of `batch`
 * training images (indices drawn from the RNG stream `stream` of seed).
 * The model stays as it was (parameters and running statistics untouched).
 * out[] is zeroed first; free it with pl_act_free even on error. */
pl_status pl_activations_collect(pl_model *m, pl_data *train, const int *layers, int n_layers, int batches,
                                 int batch, uint64_t seed, const char *stream, pl_act *out, pl_error *err);
void pl_act_free(pl_act *a, int n);

#endif
