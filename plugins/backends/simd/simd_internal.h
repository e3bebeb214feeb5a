/*
 * simd_internal.h — what the simd backend's parts share.
 *
 * simd.c      the plugin: descriptor, instance state, thread pool, scratch
 *             buffers, instruction-set dispatch.
 * kernels.c   every kernel, written once over a small vector layer and
 *             compiled once per instruction set (PL_SIMD_ISA: 3 = AVX-512,
 *             2 = AVX2+FMA, 1 = base, i.e. SSE2 on x86-64 or NEON through
 *             SIMDe elsewhere). Each build exports one pl__simd_impl table.
 *
 * Determinism: work is cut into tasks whose boundaries depend on the shape
 * only; each output element is written by exactly one task, with a fixed
 * order of floating-point operations. Which thread runs a task never
 * matters, so results are bit-identical for any thread count.
 */
#ifndef PL_SIMD_INTERNAL_H
#define PL_SIMD_INTERNAL_H

#include <prunelab/plugin.h>

#include <stddef.h>
#include <stdint.h>

typedef struct pl__simd pl__simd;

#define PL_SIMD_MAX_THREADS 64 /* workers per instance, the caller included */

/* One task of a parallel region; `worker` in [0, threads) names the
 * per-worker scratch buffer the task may use. */
typedef void (*pl__simd_task_fn)(void *ctx, int64_t task, int worker);

typedef struct pl__simd_impl {
    const char *name;
    pl_status (*conv2d_forward)(pl__simd *s, const pl_conv2d_shape *sh, const float *x,
                                const float *w, const float *b, float *y);
    pl_status (*conv2d_backward_data)(pl__simd *s, const pl_conv2d_shape *sh, const float *dy,
                                      const float *w, float *dx);
    pl_status (*conv2d_backward_weight)(pl__simd *s, const pl_conv2d_shape *sh, const float *x,
                                        const float *dy, float *dw, float *db);
    pl_status (*linear_forward)(pl__simd *s, int n, int in, int out, const float *x,
                                const float *w, const float *b, float *y);
    pl_status (*linear_backward_data)(pl__simd *s, int n, int in, int out, const float *dy,
                                      const float *w, float *dx);
    pl_status (*linear_backward_weight)(pl__simd *s, int n, int in, int out, const float *x,
                                        const float *dy, float *dw, float *db);
    pl_status (*maxpool2d_forward)(pl__simd *s, const pl_pool2d_shape *sh, const float *x,
                                   float *y, int32_t *argmax);
    pl_status (*maxpool2d_backward)(pl__simd *s, const pl_pool2d_shape *sh, const float *dy,
                                    const int32_t *argmax, float *dx);
    pl_status (*avgpool2d_forward)(pl__simd *s, const pl_pool2d_shape *sh, const float *x,
                                   float *y);
    pl_status (*relu_forward)(pl__simd *s, int64_t n, const float *x, float *y);
    pl_status (*relu_backward)(pl__simd *s, int64_t n, const float *y, const float *dy,
                               float *dx);
    pl_status (*adam_update)(pl__simd *s, const pl_adam_hparams *h, int64_t n, float *p,
                             const float *g, float *m, float *v, const float *mask);
    pl_status (*sgd_update)(pl__simd *s, const pl_sgd_hparams *h, int64_t n, float *p,
                            const float *g, float *buf, const float *mask);
    pl_status (*avgpool2d_backward)(pl__simd *s, const pl_pool2d_shape *sh, const float *dy,
                                    float *dx);
    pl_status (*softmax_xent)(pl__simd *s, int n, int classes, const float *logits,
                              const int32_t *labels, float grad_scale, float *dlogits,
                              double *loss_sum, int64_t *correct);
    /* ABI 1.1 optional slots */
    pl_status (*conv2d_forward_relu)(pl__simd *s, const pl_conv2d_shape *sh, const float *x,
                                     const float *w, const float *b, float *y);
    pl_status (*linear_forward_relu)(pl__simd *s, int n, int in, int out, const float *x,
                                     const float *w, const float *b, float *y);
    pl_status (*linear_forward_csr)(pl__simd *s, int n, int in, int out, const float *x,
                                    const pl_csr *w, const float *b, float *y);
    pl_status (*conv2d_forward_relu_maxpool)(pl__simd *s, const pl_conv2d_shape *sh,
                                             const float *x, const float *w, const float *b,
                                             float *yr, const pl_pool2d_shape *ps, float *yp,
                                             int32_t *argmax);
    /* ABI 1.2 */
    pl_status (*maxpool2d_relu_backward)(pl__simd *s, const pl_pool2d_shape *sh, const float *dy,
                                         const int32_t *argmax, const float *yr, float *dx);
    /* ABI 1.4: grouped convolution (groups == 1 is the dense kernel itself) */
    pl_status (*conv2d_grouped_forward)(pl__simd *s, const pl_conv2d_shape *sh, int groups,
                                        const float *x, const float *w, const float *b, float *y);
    pl_status (*conv2d_grouped_backward_data)(pl__simd *s, const pl_conv2d_shape *sh, int groups,
                                              const float *dy, const float *w, float *dx);
    pl_status (*conv2d_grouped_backward_weight)(pl__simd *s, const pl_conv2d_shape *sh, int groups,
                                                const float *x, const float *dy, float *dw,
                                                float *db);
} pl__simd_impl;

extern const pl__simd_impl pl__simd_impl_avx512;
extern const pl__simd_impl pl__simd_impl_avx2;
extern const pl__simd_impl pl__simd_impl_base;

/* ---- services of simd.c -------------------------------------------------- */

/* Runs fn(ctx, t, worker) for every t in [0, ntasks) and returns when all
 * are done. `flops` is a rough size of the whole job: small jobs run on the
 * calling thread only (that changes speed, never results). */
void pl__simd_run(pl__simd *s, int64_t ntasks, double flops, pl__simd_task_fn fn, void *ctx);

/* Shared scratch slot `slot` (< PL__SIMD_SLOTS) with room for n floats,
 * 64-byte aligned, grown on demand and kept for later calls. NULL (and the
 * error set) when memory runs out. Call only outside parallel regions. */
#define PL__SIMD_SLOTS 7
float *pl__simd_slot(pl__simd *s, int slot, size_t n);

/* Makes every worker's buffer hold at least n floats; call before
 * pl__simd_run. pl__simd_wbuf(s, worker) then returns that buffer. */
pl_status pl__simd_reserve(pl__simd *s, size_t n);
float *pl__simd_wbuf(pl__simd *s, int worker);

/* Sets the instance's error message and returns st. */
pl_status pl__simd_fail(pl__simd *s, pl_status st, const char *msg);

int pl__simd_conv_shape_ok(const pl_conv2d_shape *sh);
int pl__simd_pool_shape_ok(const pl_pool2d_shape *sh);

#endif
