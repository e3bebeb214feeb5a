/*
 * backend.h — the host's calls into a bound backend plugin: which slot
 * serves a call (the required plain kernels, or an optional fused, grouped
 * or sparse one the plugin may offer), the pairs of kernels a layer's
 * backward takes, and the error a failed kernel leaves.
 *
 * The model (model_forward.c, model_backward.c) decides what a layer
 * needs; this file knows the backend ABI's optional slots
 * (core/include/prunelab/plugin.h) and which of them go together, so no
 * caller tests a slot pointer itself:
 *
 *     if (pl_backend_has(m->be, PL_SLOT_CONV_RELU)) ... the fused pass ...
 *     s = pl_backend_conv2d_backward(m->be, m->be_state, &cs, groups, x, dy, w, gw, gb, dx);
 *     if (s) return pl_backend_fail(err, m, layer, "backward", s);
 *
 * A model bound through pl_backend_bind knows its backend's instance, so a
 * failed kernel's error carries the message the plugin left (set_error).
 */
#ifndef PL_BACKEND_H
#define PL_BACKEND_H

#include "model.h"
#include "registry.h"

/* Binds m to backend instance `in` (its ops, its state, and the instance
 * whose message a failed kernel carries); pl_model_bind binds bare ops. */
void pl_backend_bind(pl_model *m, pl_instance *in);

/* The optional slots, each offered or not on its own. */
typedef enum pl_backend_slot {
    PL_SLOT_CONV_RELU = 0,         /* conv2d_forward_relu (ABI 1.1) */
    PL_SLOT_CONV_RELU_MAXPOOL,     /* conv2d_forward_relu_maxpool (ABI 1.1) */
    PL_SLOT_LINEAR_RELU,           /* linear_forward_relu (ABI 1.1) */
    PL_SLOT_LINEAR_CSR,            /* linear_forward_csr (ABI 1.1) */
    PL_SLOT_MAXPOOL_RELU_BACKWARD, /* maxpool2d_relu_backward (ABI 1.2) */
    PL_SLOT_CONV_GROUPED_FORWARD,  /* conv2d_grouped_forward */
    PL_SLOT_CONV_GROUPED_BACKWARD, /* conv2d_grouped_backward_weight and _data: both, or the
                                    * host runs group by group */
    PL_SLOT_COUNT
} pl_backend_slot;

/* Whether be offers slot s. */
int pl_backend_has(const pl_backend_ops *be, pl_backend_slot s);

/* A conv's backward: its weight (and bias) gradient, then, when dx != NULL,
 * its input gradient. groups > 1 goes through the grouped slots, which the
 * caller checked with pl_backend_has (PL_SLOT_CONV_GROUPED_BACKWARD). */
pl_status pl_backend_conv2d_backward(const pl_backend_ops *be, void *st, const pl_conv2d_shape *cs, int groups,
                                     const float *x, const float *dy, const float *w, float *gw, float *gb,
                                     float *dx);
/* A linear layer's backward, in the same order. */
pl_status pl_backend_linear_backward(const pl_backend_ops *be, void *st, int n, int in_c, int out_c,
                                     const float *x, const float *dy, const float *w, float *gw, float *gb,
                                     float *dx);

/* The host error for kernel `op` ("forward", "backward") failing with st in
 * `layer`: "backend OP failed in layer L: STATUS", followed by the plugin's
 * own message when the model's backend instance holds one. Returns
 * PL_EPLUGIN. */
pl_status pl_backend_fail(pl_error *err, const pl_model *m, const char *layer, const char *op, pl_status st);

#endif
