/*
 * rewind.h — lottery tickets (Frankle & Carbin 2019; Frankle et al. 2020):
 * before retraining, the weights that survived pruning go back to earlier
 * values, the mask stays.
 *
 * retrain.rewind: init       the baseline's own initialisation (its seed)
 * retrain.rewind: epoch:K    the baseline after K epochs of its training
 * retrain.rewind: random     a different random initialisation (the
 *                            control: same mask, new weights)
 *
 * The source is rebuilt, never stored: pl_model_new is a pure function of
 * the spec and the seed, and training is bit-reproducible, so training a
 * fresh model for the first K epochs of the baseline's own schedule gives
 * exactly the baseline's weights after epoch K (the test suite checks it
 * at K = train.epochs against the cached baseline).
 *
 *     pl_model *src;
 *     pl_rewind_source(x, spec, be, be_state, &train, &opts, &src, &err);
 *     ... after each prune step:  pl_rewind_apply(m, src, &err);
 */
#ifndef PL_REWIND_H
#define PL_REWIND_H

#include "config.h"
#include "model.h"
#include "train.h"

/* The model x->retrain.rewind names, built from spec (and for epoch:K
 * trained on `train` with the backend); *out is the caller's. */
pl_status pl_rewind_source(const pl_experiment *x, const pl_model_spec *spec, const pl_backend_ops *be,
                           void *be_state, pl_data *train, const pl_train_opts *opts, pl_model **out,
                           pl_error *err);
/* m's weights become src's times m's mask (pruned weights stay 0), its
 * biases and batchnorm parameters and statistics src's. The two must have
 * the same layers and sizes (weight pruning never changes them);
 * PL_EINVAL naming the layer otherwise. */
pl_status pl_rewind_apply(pl_model *m, const pl_model *src, pl_error *err);
/* "init", "epoch:3" or "random" */
void pl_rewind_name(const pl_phase_cfg *p, char *buf, size_t n);

#endif
