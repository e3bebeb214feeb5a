/*
 * layer_batchnorm.h — batch normalization, run by the host for every
 * backend: y = gamma·(x − mean)/sqrt(var + eps) + beta per channel over
 * (n, h, w), batch statistics in training (running statistics updated with
 * the layer's momentum), running statistics in evaluation. Sums are in
 * float vectors with an order fixed by the code (not by the hardware or
 * the thread count); channels run on the backend's threads when it offers
 * parallel_for (ABI 1.2).
 */
#ifndef PL_LAYER_BATCHNORM_H
#define PL_LAYER_BATCHNORM_H

#include "model.h"

/* x: the batchnorm's input; y: its output, or with relu the output of the
 * ReLU after it (the ReLU fused in). */
void pl__bn_forward(const pl_model *m, pl_layer *l, const float *x, float *y, int relu, int n, pl_mode mode);
/* Fills l->gw, l->gb and, when dx != NULL, dx (overwritten). ry: NULL, or
 * the output of the ReLU after it when dy is that ReLU's output gradient
 * (its backward fused in). */
void pl__bn_backward(const pl_model *m, pl_layer *l, const float *x, const float *dy, const float *ry, float *dx,
                     int n);

#endif
