/* layer_batchnorm.c — batch normalization in the host (no backend has it):
 * per-channel statistics, the affine output and its backward, with the
 * ReLU after it fused in both directions; channels run on the backend's
 * threads when it offers them, in a fixed order of sums either way (rules
 * in layer_batchnorm.h). */
#include "layer_batchnorm.h"

#include <math.h>
#include <string.h>

/* Host work over channels: on the backend's threads when it offers
 * parallel_for (ABI 1.2), else in a loop. Each channel is one task with a
 * fixed order of operations, so results never depend on the threads. */
static void for_channels(const pl_model *m, int C, double work, void (*fn)(void *, int64_t, int), void *ctx)
{
    if (m->be && m->be->parallel_for && m->be->parallel_for(m->be_state, C, work, fn, ctx) == PL_OK)
        return;
    for (int c = 0; c < C; c++)
        fn(ctx, c, 0);
}

/* Batchnorm in float vectors (the compiler's generic vector extension: SSE
 * on any x86-64, NEON on arm64; no instruction set is assumed). The order
 * of every sum is fixed by the code, not by the hardware or the threads:
 * each image's plane of one channel is summed in 16 float lanes (4 vectors
 * of 4; a tail shorter than 16 in a scalar), the lanes added in a fixed
 * tree, and the planes' sums accumulated in double in image order. */
typedef float bn_v4 __attribute__((vector_size(16)));
typedef int32_t bn_v4i __attribute__((vector_size(16)));

static inline bn_v4 bn_ld(const float *p)
{
    bn_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void bn_st(float *p, bn_v4 v) { memcpy(p, &v, sizeof v); }

static inline bn_v4 bn_set1(float f) { return (bn_v4){f, f, f, f}; }

/* 0 > v ? 0 : v, lane by lane: the backends' ReLU, -0.0 and NaN included */
static inline bn_v4 bn_relu(bn_v4 v)
{
    bn_v4i neg = bn_set1(0.0f) > v;
    return (bn_v4)((bn_v4i)v & ~neg);
}

/* y > 0 ? d : 0 (the ReLU's backward) */
static inline bn_v4 bn_mask(bn_v4 y, bn_v4 d)
{
    bn_v4i pos = y > bn_set1(0.0f);
    return (bn_v4)((bn_v4i)d & pos);
}

static inline float bn_hsum(bn_v4 a0, bn_v4 a1, bn_v4 a2, bn_v4 a3, float tail)
{
    bn_v4 s = (a0 + a1) + (a2 + a3);
    return ((s[0] + s[1]) + (s[2] + s[3])) + tail;
}

/* Σ p[i] over one plane */
static float bn_plane_sum(const float *p, int64_t hw)
{
    bn_v4 a0 = bn_set1(0), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= hw; i += 16) {
        a0 += bn_ld(p + i);
        a1 += bn_ld(p + i + 4);
        a2 += bn_ld(p + i + 8);
        a3 += bn_ld(p + i + 12);
    }
    float t = 0;
    for (; i < hw; i++)
        t += p[i];
    return bn_hsum(a0, a1, a2, a3, t);
}

/* Σ (p[i] − mu)² over one plane */
static float bn_plane_sqdev(const float *p, int64_t hw, float mu)
{
    bn_v4 a0 = bn_set1(0), a1 = a0, a2 = a0, a3 = a0, m = bn_set1(mu);
    int64_t i = 0;
    for (; i + 16 <= hw; i += 16) {
        bn_v4 d0 = bn_ld(p + i) - m, d1 = bn_ld(p + i + 4) - m, d2 = bn_ld(p + i + 8) - m,
              d3 = bn_ld(p + i + 12) - m;
        a0 += d0 * d0;
        a1 += d1 * d1;
        a2 += d2 * d2;
        a3 += d3 * d3;
    }
    float t = 0;
    for (; i < hw; i++) {
        float d = p[i] - mu;
        t += d * d;
    }
    return bn_hsum(a0, a1, a2, a3, t);
}

/* y = g·((x − mu)·invstd) + be over one plane, then the ReLU when relu */
static void bn_plane_apply(const float *x, float *y, int64_t hw, float mu, float invstd, float g, float be,
                           int relu)
{
    bn_v4 vm = bn_set1(mu), vi = bn_set1(invstd), vg = bn_set1(g), vb = bn_set1(be);
    int64_t i = 0;
    for (; i + 4 <= hw; i += 4) {
        bn_v4 v = vg * ((bn_ld(x + i) - vm) * vi) + vb;
        bn_st(y + i, relu ? bn_relu(v) : v);
    }
    for (; i < hw; i++) {
        float v = g * ((x[i] - mu) * invstd) + be;
        y[i] = relu && 0.0f > v ? 0.0f : v;
    }
}

typedef struct bn_job {
    pl_layer *l;
    const float *x, *dy, *ry; /* ry: the fused ReLU's output (backward) */
    float *y, *dx;
    int n;
    int relu;                 /* forward: apply the ReLU; backward: dy is the ReLU's */
    pl_mode mode;
} bn_job;

/* channel c of y = gamma·(x − mean)/sqrt(var + eps) + beta over (n, h, w) */
static void bn_forward_channel(void *ctx, int64_t ci, int worker)
{
    (void)worker;
    const bn_job *j = ctx;
    pl_layer *l = j->l;
    const float *x = j->x;
    int C = l->in_c, n = j->n, c = (int)ci;
    int64_t hw = (int64_t)l->in_h * l->in_w, M = hw * n;
    double mean, var;
    if (j->mode == PL_MODE_TRAIN) {
        double s = 0, s2 = 0;
        for (int b = 0; b < n; b++)
            s += bn_plane_sum(x + ((int64_t)b * C + c) * hw, hw);
        float mu = (float)(s / (double)M);
        for (int b = 0; b < n; b++)
            s2 += bn_plane_sqdev(x + ((int64_t)b * C + c) * hw, hw, mu);
        mean = mu;
        var = s2 / (double)M;
        double unbiased = M > 1 ? s2 / (double)(M - 1) : var;
        l->run_mean[c] = (float)((1 - l->momentum) * l->run_mean[c] + l->momentum * mean);
        l->run_var[c] = (float)((1 - l->momentum) * l->run_var[c] + l->momentum * unbiased);
    } else {
        mean = l->run_mean[c];
        var = l->run_var[c];
    }
    float invstd = (float)(1.0 / sqrt(var + l->eps));
    float mu = (float)mean;
    if (j->mode == PL_MODE_TRAIN) {
        l->bn_mean[c] = mu;
        l->bn_invstd[c] = invstd;
    }
    for (int b = 0; b < n; b++) {
        int64_t off = ((int64_t)b * C + c) * hw;
        bn_plane_apply(x + off, j->y + off, hw, mu, invstd, l->w[c], l->b[c], j->relu);
    }
}

/* y: the batchnorm's output, or with relu the output of the ReLU after it */
void pl__bn_forward(const pl_model *m, pl_layer *l, const float *x, float *y, int relu, int n, pl_mode mode)
{
    bn_job j = {.l = l, .x = x, .y = y, .relu = relu, .n = n, .mode = mode};
    for_channels(m, l->in_c, 4.0 * n * l->in_c * l->in_h * l->in_w, bn_forward_channel, &j);
}

/* channel c of dγ = Σ dy·x̂, dβ = Σ dy, dx = γ·invstd·(dy − dβ/M − x̂·dγ/M),
 * x̂ = (x − mean)·invstd recomputed from the input exactly as the forward
 * made it; with relu, dy is first masked by the ReLU's output (ry > 0). */
static void bn_backward_channel(void *ctx, int64_t ci, int worker)
{
    (void)worker;
    const bn_job *j = ctx;
    pl_layer *l = j->l;
    const float *dy = j->dy, *x = j->x, *ry = j->ry;
    float *dx = j->dx;
    int C = l->in_c, n = j->n, c = (int)ci;
    int64_t hw = (int64_t)l->in_h * l->in_w, M = hw * n;
    float mu = l->bn_mean[c], is = l->bn_invstd[c];
    bn_v4 vm = bn_set1(mu), vi = bn_set1(is);
    double dg = 0, db = 0;
    for (int b = 0; b < n; b++) {
        int64_t off = ((int64_t)b * C + c) * hw;
        const float *pd = dy + off, *px = x + off, *pr = ry ? ry + off : NULL;
        bn_v4 g0 = bn_set1(0), g1 = g0, b0 = g0, b1 = g0;
        int64_t i = 0;
        for (; i + 8 <= hw; i += 8) {
            bn_v4 d0 = bn_ld(pd + i), d1 = bn_ld(pd + i + 4);
            if (pr) {
                d0 = bn_mask(bn_ld(pr + i), d0);
                d1 = bn_mask(bn_ld(pr + i + 4), d1);
            }
            g0 += d0 * ((bn_ld(px + i) - vm) * vi);
            g1 += d1 * ((bn_ld(px + i + 4) - vm) * vi);
            b0 += d0;
            b1 += d1;
        }
        float tg = 0, tb = 0;
        for (; i < hw; i++) {
            float d = pr && !(pr[i] > 0.0f) ? 0.0f : pd[i];
            tg += d * ((px[i] - mu) * is);
            tb += d;
        }
        bn_v4 z = bn_set1(0);
        dg += bn_hsum(g0, g1, z, z, tg);
        db += bn_hsum(b0, b1, z, z, tb);
    }
    l->gw[c] = (float)dg;
    l->gb[c] = (float)db;
    if (!dx)
        return;
    double k = (double)l->w[c] * is;
    float A = (float)k, B = (float)(-k * dg / (double)M), Cc = (float)(-k * db / (double)M);
    bn_v4 va = bn_set1(A), vb = bn_set1(B), vc = bn_set1(Cc);
    for (int b = 0; b < n; b++) {
        int64_t off = ((int64_t)b * C + c) * hw;
        const float *pd = dy + off, *px = x + off, *pr = ry ? ry + off : NULL;
        float *po = dx + off;
        int64_t i = 0;
        for (; i + 4 <= hw; i += 4) {
            bn_v4 d = bn_ld(pd + i);
            if (pr)
                d = bn_mask(bn_ld(pr + i), d);
            bn_st(po + i, va * d + (vb * ((bn_ld(px + i) - vm) * vi) + vc));
        }
        for (; i < hw; i++) {
            float d = pr && !(pr[i] > 0.0f) ? 0.0f : pd[i];
            po[i] = A * d + (B * ((px[i] - mu) * is) + Cc);
        }
    }
}

/* x: the batchnorm's input; ry: NULL, or the output of the ReLU after it
 * when dy is that ReLU's output gradient (its backward fused in) */
void pl__bn_backward(const pl_model *m, pl_layer *l, const float *x, const float *dy, const float *ry, float *dx,
                        int n)
{
    bn_job j = {.l = l, .x = x, .dy = dy, .ry = ry, .dx = dx, .n = n};
    for_channels(m, l->in_c, 4.0 * n * l->in_c * l->in_h * l->in_w, bn_backward_channel, &j);
}
