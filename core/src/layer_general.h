/*
 * layer_general.h — the host's own kernels for the convolutions and pools
 * the backend ABI cannot state: padding that differs between top/left and
 * bottom/right (ONNX pads [t, l, b, r], auto_pad SAME_*, ceil_mode folded
 * into extra bottom/right padding), dilation, and average pooling that
 * divides by the input elements in the window (count_include_pad=0).
 *
 * The fields are pl_layer's pad_xb, pad_xr, dil_h, dil_w, excl_pad; a
 * layer whose fields are all zero is not "general" and runs on the backend
 * exactly as before (so does every model a YAML file can describe), except
 * a pool padded by more than half its kernel (ONNX allows padding up to the
 * kernel; the backend contract stops at half). These are plain, single-threaded loops with double
 * accumulators in a fixed order (results do not depend on the thread
 * count or the batch), the same conventions as the ref backend: padding is
 * zero for convolutions and average pooling (never wins for max pooling),
 * the first strictly greater element wins a max pooling window, NaN inputs
 * propagate through sums. A max window that holds no input element gives 0
 * and passes no gradient.
 */
#ifndef PL_LAYER_GENERAL_H
#define PL_LAYER_GENERAL_H

#include "model.h"

/* 1 when l is a conv2d/maxpool2d/avgpool2d that needs these kernels. */
int pl__layer_general(const pl_layer *l);

/* y[n][out_c][out_h][out_w] = b + Σ w · x (dilated, padded with zeros). */
void pl__conv_general_forward(const pl_layer *l, int n, const float *x, const float *w, const float *b, float *y);
/* dx = ∂L/∂x (overwritten); dw, db (db may be NULL) = Σ over the batch (overwritten).
 * dx may be NULL (the model's input). */
void pl__conv_general_backward(const pl_layer *l, int n, const float *x, const float *w, const float *dy, float *dx,
                               float *dw, float *db);
/* argmax (may be NULL): the winner's iy*in_w+ix, -1 for a window without input. */
void pl__maxpool_general_forward(const pl_layer *l, int n, const float *x, float *y, int32_t *argmax);
void pl__maxpool_general_backward(const pl_layer *l, int n, const float *dy, const int32_t *argmax, float *dx);
void pl__avgpool_general_forward(const pl_layer *l, int n, const float *x, float *y);
void pl__avgpool_general_backward(const pl_layer *l, int n, const float *dy, float *dx);

#endif
