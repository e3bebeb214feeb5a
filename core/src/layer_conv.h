/*
 * layer_conv.h — a convolution layer's forward and backward, whatever the
 * backend offers: layer_general.h's kernels for a layer the ABI cannot
 * state, the backend's kernels otherwise; a grouped convolution on a
 * backend without grouped kernels (ABI 1.4) runs group by group through the
 * dense ones, its channels gathered into m->gscratch (sized by
 * pl_model_reserve).
 */
#ifndef PL_LAYER_CONV_H
#define PL_LAYER_CONV_H

#include "model.h"

/* y = conv(x) of n images with l's weights and bias. */
pl_status pl__conv_forward(pl_model *m, const pl_layer *l, int n, const float *x, float *y);
/* l->gw, l->gb and, when dx != NULL, dx (all overwritten). */
pl_status pl__conv_backward(pl_model *m, pl_layer *l, int n, const float *x, const float *dy, float *dx);

#endif
