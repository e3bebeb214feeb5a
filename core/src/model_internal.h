/*
 * model_internal.h — private to the model's files: model.c (life, buffers,
 * counting), model_shape.c (the shape rule), model_forward.c,
 * model_backward.c, model_csr.c (sparse linear layers in evaluation),
 * layer_conv.c and layer_batchnorm.c. The small helpers more than one of
 * them uses, and the few functions one of them offers the others.
 */
#ifndef PL_MODEL_INTERNAL_H
#define PL_MODEL_INTERNAL_H

#include "model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- allocation: NULL for n <= 0 or a size that overflows ---- */

static inline void *pl__xcalloc(int64_t n, size_t size)
{
    if (n <= 0 || (uint64_t)n > SIZE_MAX / size)
        return NULL;
    return calloc((size_t)n, size);
}

static inline float *pl__falloc(int64_t n) { return pl__xcalloc(n, sizeof(float)); }

static inline float *pl__fdup(const float *src, int64_t n)
{
    if (!src)
        return NULL;
    float *d = pl__falloc(n);
    if (d)
        memcpy(d, src, (size_t)n * sizeof(float));
    return d;
}

/* ---- a layer's sizes and its shapes in the backend ABI ---- */

static inline int64_t pl__in_size(const pl_layer *l) { return (int64_t)l->in_c * l->in_h * l->in_w; }
static inline int64_t pl__out_size(const pl_layer *l) { return (int64_t)l->out_c * l->out_h * l->out_w; }

static inline void pl__conv_shape(const pl_layer *l, int n, pl_conv2d_shape *s)
{
    *s = (pl_conv2d_shape){.n = n, .cin = l->in_c, .h = l->in_h, .w = l->in_w, .cout = l->out_c,
                           .kh = l->kh, .kw = l->kw, .stride_h = l->sh, .stride_w = l->sw,
                           .pad_h = l->ph, .pad_w = l->pw, .oh = l->out_h, .ow = l->out_w};
}

static inline void pl__pool_shape(const pl_layer *l, int n, pl_pool2d_shape *s)
{
    *s = (pl_pool2d_shape){.n = n, .c = l->in_c, .h = l->in_h, .w = l->in_w, .kh = l->kh,
                           .kw = l->kw, .stride_h = l->sh, .stride_w = l->sw, .pad_h = l->ph,
                           .pad_w = l->pw, .oh = l->out_h, .ow = l->out_w};
}

/* an average pool's shape: its window, or for global average pooling one
 * window over the whole plane */
static inline void pl__avgpool_shape(const pl_layer *l, int n, pl_pool2d_shape *s)
{
    if (l->type == PL_LAYER_AVGPOOL2D) {
        pl__pool_shape(l, n, s);
        return;
    }
    *s = (pl_pool2d_shape){.n = n, .c = l->in_c, .h = l->in_h, .w = l->in_w, .kh = l->in_h,
                           .kw = l->in_w, .stride_h = l->in_h, .stride_w = l->in_w, .oh = 1, .ow = 1};
}

/* ---- graph plumbing ---- */

/* Layer j's output for this batch; j < 0 is the model's input x. */
static inline const float *pl__src_out(const pl_model *m, const float *x, int j)
{
    return j < 0 ? x : m->layers[j].out;
}

static inline int pl__src_channels(const pl_model *m, int j) { return j < 0 ? m->in_c : m->layers[j].out_c; }

/* Channels [c0, c0+k) of every image of x[n][C][plane] into g[n][k][plane],
 * and back. */
static inline void pl__gather(const float *x, int n, int C, int c0, int k, int64_t plane, float *g)
{
    for (int b = 0; b < n; b++)
        memcpy(g + (int64_t)b * k * plane, x + ((int64_t)b * C + c0) * plane, (size_t)(k * plane) * sizeof(float));
}

static inline void pl__scatter(const float *g, int n, int C, int c0, int k, int64_t plane, float *y)
{
    for (int b = 0; b < n; b++)
        memcpy(y + ((int64_t)b * C + c0) * plane, g + (int64_t)b * k * plane, (size_t)(k * plane) * sizeof(float));
}

/* seconds on the monotonic clock, for the per-layer profile (m->prof) */
static inline double pl__prof_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- model_shape.c ---- */

/* Walks the layers from the model input, setting every in/out shape and
 * parameter count by the shape rule. With spec, errors carry the layer's
 * line and column in the model file. */
pl_status pl__model_infer_shapes(pl_model *m, const char *file, const pl_model_spec *spec, pl_error *err);

/* ---- model_forward.c ---- */

/* 1 when a ReLU right after layer i, reading only it, is fused into it
 * (layer i's own output then goes unwritten). */
int pl__relu_follows(const pl_model *m, int i);

/* ---- model_csr.c ---- */

/* The CSR form of linear layer l's weights for this evaluation, or NULL for
 * the dense kernel (not sparse enough, no backend support, or out of memory). */
const pl_csr *pl__csr_for(pl_model *m, pl_layer *l);
/* Frees l's CSR copy, if any. */
void pl__csr_free(pl_layer *l);

#endif
