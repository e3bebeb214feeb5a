/*
 * kernels.c — the simd backend's kernels, compiled once per instruction set
 * (see vec.h and simd_internal.h).
 *
 * Two micro-kernels do all the multiply-accumulate work:
 *   gemm_nn  C[i][q] = init + Σ_k A(i,k) · B[boff[k] + q]: A broadcast, B
 *            loaded as vectors along q, one fma chain per element in k order.
 *   dot_nt   C[i][j] = init + Σ_q A[i][q] · B[boff[j] + q]: lane-wise partial
 *            sums along q, then a fixed horizontal-sum tree.
 * Tile sizes, partial vectors and cache blocking never change the order of
 * operations of any element (a K-blocked gemm reloads the exact float it
 * stored), so every result is independent of how the work is split.
 *
 * Convolution. Stride 1 uses the "padded plane" form: with the input zero-
 * padded to Hp x Wp, output (oy, ox) sits at q = oy*Wp + ox and tap
 * (ci, ky, kx) reads src[ci*Hp*Wp + ky*Wp + kx + q], a contiguous row for
 * every tap, so no im2col is needed; the Wp - ow junk columns per row are
 * computed and dropped (forward) or fed as zeros (weight gradient). Other
 * strides use im2col. Backward data for stride 1 is the forward conv of dy
 * with the flipped, transposed weights; otherwise gemm + col2im.
 */
#include "simd_internal.h"
#include "vec.h"

#include <math.h>
#include <string.h>

#if PL_SIMD_ISA == 3
#define ISA_NAME "avx512"
#define ISA_TABLE pl__simd_impl_avx512
#elif PL_SIMD_ISA == 2
#define ISA_NAME "avx2"
#define ISA_TABLE pl__simd_impl_avx2
#else
#define ISA_NAME "base"
#define ISA_TABLE pl__simd_impl_base
#endif

#define INLINE static inline __attribute__((always_inline))
#define MR 4                      /* gemm micro-tile rows */
#define KC (8192 / (NV * VL))     /* gemm k block: B panel of KC x NV*VL floats stays in L1 */
#define ROUND_VL(n) (((n) + VL - 1) / VL * VL)

enum { SLOT_OFF = 0, SLOT_W = 1, SLOT_PART = 2, SLOT_OFF2 = 3 };
enum { INIT_ZERO, INIT_BIAS, INIT_LOAD };

static inline int imin(int a, int b) { return a < b ? a : b; }

/* ---- copies ---------------------------------------------------------------- */

static inline void copy_row(float *d, const float *s, int n)
{
    int i = 0;
    for (; i + VL <= n; i += VL)
        vstore(d + i, vload(s + i));
    if (i < n) {
        vtail t = vtail_make(n - i);
        vstore_t(d + i, vload_t(s + i, t), t);
    }
}

static inline void zero_row(float *d, int n)
{
    int i = 0;
    for (; i + VL <= n; i += VL)
        vstore(d + i, vzero());
    if (i < n)
        vstore_t(d + i, vzero(), vtail_make(n - i));
}

/* ---- gemm_nn ------------------------------------------------------------- */

INLINE void nn_tile(const int mr, const int nv, const int masked, vtail tm, int kn,
                    const float *A, ptrdiff_t sam, ptrdiff_t sak, const float *B,
                    const ptrdiff_t *boff, float *C, ptrdiff_t ldc, int init,
                    const float *bias)
{
    vf acc[MR][NV];
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) {
            if (init == INIT_LOAD)
                acc[i][j] = masked && j == nv - 1 ? vload_t(C + i * ldc + j * VL, tm)
                                                  : vload(C + i * ldc + j * VL);
            else if (init == INIT_BIAS)
                acc[i][j] = vset1(bias[i]);
            else
                acc[i][j] = vzero();
        }
    for (int k = 0; k < kn; k++) {
        const float *b = B + boff[k];
        const float *a = A + k * sak;
        vf bv[NV];
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++)
            bv[j] = masked && j == nv - 1 ? vload_t(b + j * VL, tm) : vload(b + j * VL);
#pragma GCC unroll 4
        for (int i = 0; i < mr; i++) {
            vf av = vset1(a[i * sam]);
#pragma GCC unroll 4
            for (int j = 0; j < nv; j++)
                acc[i][j] = vfma(av, bv[j], acc[i][j]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) {
            if (masked && j == nv - 1)
                vstore_t(C + i * ldc + j * VL, acc[i][j], tm);
            else
                vstore(C + i * ldc + j * VL, acc[i][j]);
        }
}

#define NN_DISPATCH(name, nv, masked)                                              \
    static void name(int mr, vtail tm, int kn, const float *A, ptrdiff_t sam,      \
                     ptrdiff_t sak, const float *B, const ptrdiff_t *boff, float *C,  \
                     ptrdiff_t ldc, int init, const float *bias)                   \
    {                                                                              \
        switch (mr) {                                                              \
        case 4: nn_tile(4, nv, masked, tm, kn, A, sam, sak, B, boff, C, ldc, init, bias); break; \
        case 3: nn_tile(3, nv, masked, tm, kn, A, sam, sak, B, boff, C, ldc, init, bias); break; \
        case 2: nn_tile(2, nv, masked, tm, kn, A, sam, sak, B, boff, C, ldc, init, bias); break; \
        default: nn_tile(1, nv, masked, tm, kn, A, sam, sak, B, boff, C, ldc, init, bias); break; \
        }                                                                          \
    }
NN_DISPATCH(nn_wide, NV, 0)
NN_DISPATCH(nn_one, 1, 0)
NN_DISPATCH(nn_tail, 1, 1)

/* C[i][q] (i < M, q < Q, row stride ldc) = (bias ? bias[i] : 0) + Σ_{k<K} A[i*sam + k*sak] · B[boff[k] + q] */
static void gemm_nn(int M, int Q, int K, const float *A, ptrdiff_t sam, ptrdiff_t sak,
                    const float *B, const ptrdiff_t *boff, float *C, ptrdiff_t ldc,
                    const float *bias)
{
    vtail tm = vtail_make(Q % VL ? Q % VL : VL);
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kn = imin(KC, K - k0);
        int init = k0 ? INIT_LOAD : bias ? INIT_BIAS : INIT_ZERO;
        const float *Ak = A + k0 * sak;
        const ptrdiff_t *bk = boff + k0;
        int q = 0;
        for (; q + NV * VL <= Q; q += NV * VL)
            for (int i = 0; i < M; i += MR)
                nn_wide(imin(MR, M - i), tm, kn, Ak + i * sam, sam, sak, B + q, bk,
                        C + i * ldc + q, ldc, init, bias ? bias + i : NULL);
        for (; q + VL <= Q; q += VL)
            for (int i = 0; i < M; i += MR)
                nn_one(imin(MR, M - i), tm, kn, Ak + i * sam, sam, sak, B + q, bk,
                       C + i * ldc + q, ldc, init, bias ? bias + i : NULL);
        if (q < Q)
            for (int i = 0; i < M; i += MR)
                nn_tail(imin(MR, M - i), tm, kn, Ak + i * sam, sam, sak, B + q, bk,
                        C + i * ldc + q, ldc, init, bias ? bias + i : NULL);
    }
}

/* ---- dot_nt ---------------------------------------------------------------- */

/* C[i][j] (i < M, j < N) = (bias ? bias[j] : 0) +
 *     Σ_{g<ng} Σ_{q<Q} A[g*ag + i*lda + q] · B[g*bg + boff[j] + q]
 * Edge tiles compute clamped duplicate rows/columns and store only the real
 * ones, so every element goes through the same instructions. */
static void dot_nt(int M, int N, int Q, int ng, const float *A, ptrdiff_t lda, ptrdiff_t ag,
                   const float *B, const ptrdiff_t *boff, ptrdiff_t bg, float *C,
                   ptrdiff_t ldc, const float *bias)
{
    int qf = Q / VL * VL;
    vtail tm = vtail_make(Q > qf ? Q - qf : VL);
    for (int i0 = 0; i0 < M; i0 += DMR)
        for (int j0 = 0; j0 < N; j0 += DNR) {
            const float *ap[DMR], *bp[DNR];
            vf acc[DMR][DNR];
#pragma GCC unroll 4
            for (int r = 0; r < DMR; r++)
                ap[r] = A + (ptrdiff_t)imin(i0 + r, M - 1) * lda;
#pragma GCC unroll 4
            for (int c = 0; c < DNR; c++)
                bp[c] = B + boff[imin(j0 + c, N - 1)];
#pragma GCC unroll 4
            for (int r = 0; r < DMR; r++)
#pragma GCC unroll 4
                for (int c = 0; c < DNR; c++)
                    acc[r][c] = vzero();
            for (int g = 0; g < ng; g++) {
                int q = 0;
                for (; q < qf; q += VL) {
                    vf av[DMR], bv[DNR];
#pragma GCC unroll 4
                    for (int r = 0; r < DMR; r++)
                        av[r] = vload(ap[r] + q);
#pragma GCC unroll 4
                    for (int c = 0; c < DNR; c++)
                        bv[c] = vload(bp[c] + q);
#pragma GCC unroll 4
                    for (int r = 0; r < DMR; r++)
#pragma GCC unroll 4
                        for (int c = 0; c < DNR; c++)
                            acc[r][c] = vfma(av[r], bv[c], acc[r][c]);
                }
                if (q < Q) {
                    vf av[DMR], bv[DNR];
#pragma GCC unroll 4
                    for (int r = 0; r < DMR; r++)
                        av[r] = vload_t(ap[r] + q, tm);
#pragma GCC unroll 4
                    for (int c = 0; c < DNR; c++)
                        bv[c] = vload_t(bp[c] + q, tm);
#pragma GCC unroll 4
                    for (int r = 0; r < DMR; r++)
#pragma GCC unroll 4
                        for (int c = 0; c < DNR; c++)
                            acc[r][c] = vfma(av[r], bv[c], acc[r][c]);
                }
#pragma GCC unroll 4
                for (int r = 0; r < DMR; r++)
                    ap[r] += ag;
#pragma GCC unroll 4
                for (int c = 0; c < DNR; c++)
                    bp[c] += bg;
            }
            for (int r = 0; r < DMR && i0 + r < M; r++)
                for (int c = 0; c < DNR && j0 + c < N; c++) {
                    float s = vhsum(acc[r][c]);
                    C[(ptrdiff_t)(i0 + r) * ldc + j0 + c] = bias ? bias[j0 + c] + s : s;
                }
        }
}

/* ---- convolution geometry -------------------------------------------------- */

typedef struct conv_plan {
    const pl_conv2d_shape *s;
    int direct;        /* stride 1: padded-plane form; else im2col */
    int copy;          /* direct: the input must be copied into a padded plane */
    int Hp, Wp;        /* direct: padded plane */
    int pitch;         /* q distance between output rows */
    int Q;             /* q columns per image */
    int Qs;            /* Q rounded up to VL (row stride of q-space buffers) */
    int K;             /* cin*kh*kw */
    ptrdiff_t *boff;   /* [K] offset of tap k's row in the source */
    size_t src_floats; /* per-image source buffer (0: the input is the source) */
    size_t in_img;     /* floats per input image */
} conv_plan;

static pl_status conv_plan_make(pl__simd *s, const pl_conv2d_shape *sh, int slot, conv_plan *p)
{
    memset(p, 0, sizeof *p);
    p->s = sh;
    p->K = sh->cin * sh->kh * sh->kw;
    p->in_img = (size_t)sh->cin * sh->h * sh->w;
    p->boff = (ptrdiff_t *)(void *)pl__simd_slot(s, slot, (size_t)p->K * sizeof(ptrdiff_t) / sizeof(float));
    if (!p->boff)
        return PL_ENOMEM;
    p->direct = sh->stride_h == 1 && sh->stride_w == 1;
    if (p->direct) {
        p->Hp = sh->h + 2 * sh->pad_h;
        p->Wp = sh->w + 2 * sh->pad_w;
        p->copy = sh->pad_h || sh->pad_w;
        p->pitch = p->Wp;
        p->Q = (sh->oh - 1) * p->Wp + sh->ow;
        p->src_floats = p->copy ? (size_t)sh->cin * p->Hp * p->Wp : 0;
        int k = 0;
        for (int ci = 0; ci < sh->cin; ci++)
            for (int ky = 0; ky < sh->kh; ky++)
                for (int kx = 0; kx < sh->kw; kx++)
                    p->boff[k++] = ((ptrdiff_t)ci * p->Hp + ky) * p->Wp + kx;
    } else {
        p->pitch = sh->ow;
        p->Q = sh->oh * sh->ow;
    }
    p->Qs = ROUND_VL(p->Q);
    if (!p->direct) {
        p->src_floats = (size_t)p->K * p->Qs;
        for (int k = 0; k < p->K; k++)
            p->boff[k] = (ptrdiff_t)k * p->Qs;
    }
    return PL_OK;
}

/* The source rows of one image: the input itself, a zero-padded copy, or im2col. */
static const float *conv_source(const conv_plan *p, const float *x, float *buf)
{
    const pl_conv2d_shape *s = p->s;
    if (p->direct && !p->copy)
        return x;
    if (p->direct) {
        for (int ci = 0; ci < s->cin; ci++) {
            float *d = buf + (size_t)ci * p->Hp * p->Wp;
            const float *xs = x + (size_t)ci * s->h * s->w;
            zero_row(d, s->pad_h * p->Wp);
            for (int iy = 0; iy < s->h; iy++) {
                float *r = d + (size_t)(iy + s->pad_h) * p->Wp;
                zero_row(r, s->pad_w);
                copy_row(r + s->pad_w, xs + (size_t)iy * s->w, s->w);
                zero_row(r + s->pad_w + s->w, s->pad_w);
            }
            zero_row(d + (size_t)(s->h + s->pad_h) * p->Wp, s->pad_h * p->Wp);
        }
        return buf;
    }
    /* im2col: col[(ci,ky,kx)][oy*ow+ox] = x[ci][oy*sh-ph+ky][ox*sw-pw+kx] or 0 */
    int k = 0;
    for (int ci = 0; ci < s->cin; ci++)
        for (int ky = 0; ky < s->kh; ky++)
            for (int kx = 0; kx < s->kw; kx++, k++) {
                float *col = buf + (size_t)k * p->Qs;
                const float *xs = x + (size_t)ci * s->h * s->w;
                for (int oy = 0; oy < s->oh; oy++) {
                    int iy = oy * s->stride_h - s->pad_h + ky;
                    float *c = col + oy * s->ow;
                    if (iy < 0 || iy >= s->h) {
                        zero_row(c, s->ow);
                        continue;
                    }
                    const float *xr = xs + (size_t)iy * s->w;
                    for (int ox = 0; ox < s->ow; ox++) {
                        int ix = ox * s->stride_w - s->pad_w + kx;
                        c[ox] = ix >= 0 && ix < s->w ? xr[ix] : 0.0f;
                    }
                }
            }
    return buf;
}

/* ---- conv2d forward ---------------------------------------------------------- */

typedef struct conv_fwd_job {
    pl__simd *s;
    const conv_plan *p;
    const float *x, *w, *b;
    float *y;
} conv_fwd_job;

static void conv_fwd_task(void *ctx, int64_t t, int worker)
{
    conv_fwd_job *j = ctx;
    const conv_plan *p = j->p;
    const pl_conv2d_shape *s = p->s;
    float *buf = pl__simd_wbuf(j->s, worker);
    size_t plane = (size_t)s->oh * s->ow;
    float *y = j->y + (size_t)t * s->cout * plane;
    const float *src = conv_source(p, j->x + (size_t)t * p->in_img, buf);
    if (p->pitch == s->ow) {
        gemm_nn(s->cout, p->Q, p->K, j->w, p->K, 1, src, p->boff, y, (ptrdiff_t)plane, j->b);
        return;
    }
    float *z = buf + p->src_floats;
    gemm_nn(s->cout, p->Q, p->K, j->w, p->K, 1, src, p->boff, z, p->Qs, j->b);
    for (int co = 0; co < s->cout; co++)
        for (int oy = 0; oy < s->oh; oy++)
            copy_row(y + co * plane + (size_t)oy * s->ow, z + (size_t)co * p->Qs + (size_t)oy * p->pitch, s->ow);
}

static pl_status conv_forward_plan(pl__simd *s, const pl_conv2d_shape *sh, const float *x,
                                   const float *w, const float *b, float *y)
{
    conv_plan p;
    pl_status st = conv_plan_make(s, sh, SLOT_OFF, &p);
    if (st)
        return st;
    size_t need = p.src_floats + (p.pitch == sh->ow ? 0 : (size_t)sh->cout * p.Qs);
    if ((st = pl__simd_reserve(s, need)))
        return st;
    conv_fwd_job j = {.s = s, .p = &p, .x = x, .w = w, .b = b, .y = y};
    pl__simd_run(s, sh->n, 2.0 * sh->n * sh->cout * p.K * p.Q, conv_fwd_task, &j);
    return PL_OK;
}

static pl_status k_conv2d_forward(pl__simd *s, const pl_conv2d_shape *sh, const float *x,
                                  const float *w, const float *b, float *y)
{
    if (!pl__simd_conv_shape_ok(sh))
        return pl__simd_fail(s, PL_EINVAL, "conv2d: inconsistent shape");
    return conv_forward_plan(s, sh, x, w, b, y);
}

/* ---- conv2d backward data ------------------------------------------------- */

typedef struct conv_bwd_job {
    pl__simd *s;
    const conv_plan *p;
    const float *dy, *w;
    const ptrdiff_t *dyoff; /* [cout] row offsets of dy's channels */
    float *dx;
} conv_bwd_job;

/* dcol[k][p] = Σ_co w[co][k] dy[co][p]; dx = col2im(dcol) */
static void conv_bwd_col_task(void *ctx, int64_t t, int worker)
{
    conv_bwd_job *j = ctx;
    const conv_plan *p = j->p;
    const pl_conv2d_shape *s = p->s;
    float *dcol = pl__simd_wbuf(j->s, worker);
    size_t P = (size_t)s->oh * s->ow;
    float *dx = j->dx + (size_t)t * p->in_img;
    gemm_nn(p->K, (int)P, s->cout, j->w, 1, p->K, j->dy + (size_t)t * s->cout * P, j->dyoff,
            dcol, p->Qs, NULL);
    memset(dx, 0, sizeof(float) * p->in_img);
    int k = 0;
    for (int ci = 0; ci < s->cin; ci++)
        for (int ky = 0; ky < s->kh; ky++)
            for (int kx = 0; kx < s->kw; kx++, k++) {
                const float *c = dcol + (size_t)k * p->Qs;
                float *d = dx + (size_t)ci * s->h * s->w;
                for (int oy = 0; oy < s->oh; oy++) {
                    int iy = oy * s->stride_h - s->pad_h + ky;
                    if (iy < 0 || iy >= s->h)
                        continue;
                    for (int ox = 0; ox < s->ow; ox++) {
                        int ix = ox * s->stride_w - s->pad_w + kx;
                        if (ix >= 0 && ix < s->w)
                            d[iy * s->w + ix] += c[oy * s->ow + ox];
                    }
                }
            }
}

static pl_status k_conv2d_backward_data(pl__simd *s, const pl_conv2d_shape *sh,
                                        const float *dy, const float *w, float *dx)
{
    if (!pl__simd_conv_shape_ok(sh))
        return pl__simd_fail(s, PL_EINVAL, "conv2d: inconsistent shape");
    int kk = sh->kh * sh->kw;
    if (sh->stride_h == 1 && sh->stride_w == 1 && sh->pad_h < sh->kh && sh->pad_w < sh->kw) {
        /* dx = conv(dy, w'), w'[ci][co][ky][kx] = w[co][ci][kh-1-ky][kw-1-kx], pad k-1-p */
        float *wt = pl__simd_slot(s, SLOT_W, (size_t)sh->cout * sh->cin * kk);
        if (!wt)
            return PL_ENOMEM;
        for (int co = 0; co < sh->cout; co++)
            for (int ci = 0; ci < sh->cin; ci++)
                for (int i = 0; i < kk; i++)
                    wt[((size_t)ci * sh->cout + co) * kk + (kk - 1 - i)] = w[((size_t)co * sh->cin + ci) * kk + i];
        pl_conv2d_shape t = {.n = sh->n, .cin = sh->cout, .h = sh->oh, .w = sh->ow,
                             .cout = sh->cin, .kh = sh->kh, .kw = sh->kw,
                             .stride_h = 1, .stride_w = 1,
                             .pad_h = sh->kh - 1 - sh->pad_h, .pad_w = sh->kw - 1 - sh->pad_w,
                             .oh = sh->h, .ow = sh->w};
        return conv_forward_plan(s, &t, dy, wt, NULL, dx);
    }
    conv_plan p;
    pl_status st = conv_plan_make(s, sh, SLOT_OFF, &p);
    if (st)
        return st;
    ptrdiff_t *dyoff = (ptrdiff_t *)(void *)pl__simd_slot(s, SLOT_OFF2, (size_t)sh->cout * sizeof(ptrdiff_t) / sizeof(float) + 1);
    if (!dyoff)
        return PL_ENOMEM;
    for (int co = 0; co < sh->cout; co++)
        dyoff[co] = (ptrdiff_t)co * sh->oh * sh->ow;
    if ((st = pl__simd_reserve(s, (size_t)p.K * p.Qs)))
        return st;
    conv_bwd_job j = {.s = s, .p = &p, .dy = dy, .w = w, .dyoff = dyoff, .dx = dx};
    pl__simd_run(s, sh->n, 2.0 * sh->n * sh->cout * p.K * p.Q, conv_bwd_col_task, &j);
    return PL_OK;
}

/* ---- conv2d backward weight ------------------------------------------------- */

typedef struct conv_dw_job {
    pl__simd *s;
    const conv_plan *p;
    const float *x, *dy;
    float *part; /* [chunks][cout*K + cout] */
    int chunk;   /* images per chunk */
    int want_db;
} conv_dw_job;

/* Per chunk of images: part_dw[co][k] = Σ_img Σ_q dyq[co][q] · src[boff[k] + q],
 * part_db[co] = Σ_img Σ_q dyq[co][q], where dyq is dy in q space (zeros in
 * the junk columns). */
static void conv_dw_task(void *ctx, int64_t t, int worker)
{
    conv_dw_job *j = ctx;
    const conv_plan *p = j->p;
    const pl_conv2d_shape *s = p->s;
    int i0 = (int)t * j->chunk, ng = imin(j->chunk, s->n - i0);
    size_t P = (size_t)s->oh * s->ow;
    float *buf = pl__simd_wbuf(j->s, worker);
    float *part = j->part + (size_t)t * ((size_t)s->cout * p->K + s->cout);

    const float *src;
    ptrdiff_t bg;
    if (p->src_floats == 0) {
        src = j->x + (size_t)i0 * p->in_img;
        bg = (ptrdiff_t)p->in_img;
    } else {
        for (int g = 0; g < ng; g++)
            conv_source(p, j->x + (size_t)(i0 + g) * p->in_img, buf + (size_t)g * p->src_floats);
        src = buf;
        bg = (ptrdiff_t)p->src_floats;
    }
    const float *a;
    ptrdiff_t lda, ag;
    if (p->pitch == s->ow) {
        a = j->dy + (size_t)i0 * s->cout * P;
        lda = (ptrdiff_t)P;
        ag = (ptrdiff_t)(s->cout * P);
    } else {
        float *dq = buf + (size_t)ng * p->src_floats;
        lda = p->Qs;
        ag = (ptrdiff_t)s->cout * p->Qs;
        for (int g = 0; g < ng; g++)
            for (int co = 0; co < s->cout; co++) {
                float *d = dq + g * ag + co * lda;
                const float *ds = j->dy + ((size_t)(i0 + g) * s->cout + co) * P;
                for (int oy = 0; oy < s->oh; oy++) {
                    copy_row(d + (size_t)oy * p->pitch, ds + (size_t)oy * s->ow, s->ow);
                    if (oy + 1 < s->oh)
                        zero_row(d + (size_t)oy * p->pitch + s->ow, p->pitch - s->ow);
                }
            }
        a = dq;
    }
    dot_nt(s->cout, p->K, p->Q, ng, a, lda, ag, src, p->boff, bg, part, p->K, NULL);
    if (j->want_db) {
        int qf = p->Q / VL * VL;
        vtail tm = vtail_make(p->Q > qf ? p->Q - qf : VL);
        for (int co = 0; co < s->cout; co++) {
            vf acc = vzero();
            for (int g = 0; g < ng; g++) {
                const float *r = a + g * ag + co * lda;
                int q = 0;
                for (; q < qf; q += VL)
                    acc = vadd(acc, vload(r + q));
                if (q < p->Q)
                    acc = vadd(acc, vload_t(r + q, tm));
            }
            part[(size_t)s->cout * p->K + co] = vhsum(acc);
        }
    }
}

typedef struct sum_job {
    const float *part;
    size_t stride, n; /* elements per chunk partial, elements to sum */
    int chunks;
    float *out;
} sum_job;

#define SUM_BLOCK 4096

/* out[e] = Σ_c part[c][e], c ascending */
static void sum_task(void *ctx, int64_t t, int worker)
{
    sum_job *j = ctx;
    size_t e0 = (size_t)t * SUM_BLOCK, e1 = e0 + SUM_BLOCK < j->n ? e0 + SUM_BLOCK : j->n;
    for (size_t e = e0; e < e1; e += VL) {
        int len = (int)(e1 - e < VL ? e1 - e : VL);
        vtail tm = vtail_make(len);
        vf acc = vload_t(j->part + e, tm);
        for (int c = 1; c < j->chunks; c++)
            acc = vadd(acc, vload_t(j->part + (size_t)c * j->stride + e, tm));
        vstore_t(j->out + e, acc, tm);
    }
}

static pl_status k_conv2d_backward_weight(pl__simd *s, const pl_conv2d_shape *sh,
                                          const float *x, const float *dy, float *dw,
                                          float *db)
{
    if (!pl__simd_conv_shape_ok(sh))
        return pl__simd_fail(s, PL_EINVAL, "conv2d: inconsistent shape");
    conv_plan p;
    pl_status st = conv_plan_make(s, sh, SLOT_OFF, &p);
    if (st)
        return st;
    /* fixed chunks of the batch (from n alone), summed in chunk order */
    int chunk = sh->n <= 16 ? 1 : imin(8, (sh->n + 15) / 16);
    int chunks = (sh->n + chunk - 1) / chunk;
    size_t stride = (size_t)sh->cout * p.K + sh->cout;
    float *part = pl__simd_slot(s, SLOT_PART, stride * chunks);
    if (!part)
        return PL_ENOMEM;
    size_t per = p.src_floats + (p.pitch == sh->ow ? 0 : (size_t)sh->cout * p.Qs);
    if ((st = pl__simd_reserve(s, per * chunk)))
        return st;
    conv_dw_job j = {.s = s, .p = &p, .x = x, .dy = dy, .part = part, .chunk = chunk, .want_db = db != NULL};
    pl__simd_run(s, chunks, 2.0 * sh->n * sh->cout * p.K * p.Q, conv_dw_task, &j);
    size_t nw = (size_t)sh->cout * p.K;
    sum_job sj = {.part = part, .stride = stride, .n = nw, .chunks = chunks, .out = dw};
    pl__simd_run(s, (int64_t)((nw + SUM_BLOCK - 1) / SUM_BLOCK), (double)nw * chunks, sum_task, &sj);
    if (db) {
        sum_job bj = {.part = part + nw, .stride = stride, .n = (size_t)sh->cout, .chunks = chunks, .out = db};
        sum_task(&bj, 0, 0);
    }
    return PL_OK;
}

/* ---- linear -------------------------------------------------------------- */

#define LIN_ROWS 8 /* rows per task (a multiple of MR and DMR) */

typedef struct lin_job {
    int n, in, out;
    const float *a, *b, *bias;
    const ptrdiff_t *off;
    float *c;
} lin_job;

/* y[r][o] = b[o] + Σ_i x[r][i] w[o][i], rows [8t, 8t+8) */
static void lin_fwd_task(void *ctx, int64_t t, int worker)
{
    lin_job *j = ctx;
    int r0 = (int)t * LIN_ROWS, m = imin(LIN_ROWS, j->n - r0);
    dot_nt(m, j->out, j->in, 1, j->a + (size_t)r0 * j->in, j->in, 0, j->b, j->off, 0,
           j->c + (size_t)r0 * j->out, j->out, j->bias);
}

static ptrdiff_t *row_offsets(pl__simd *s, int slot, int rows, ptrdiff_t stride)
{
    ptrdiff_t *off = (ptrdiff_t *)(void *)pl__simd_slot(s, slot, (size_t)rows * sizeof(ptrdiff_t) / sizeof(float) + 1);
    if (off)
        for (int r = 0; r < rows; r++)
            off[r] = (ptrdiff_t)r * stride;
    return off;
}

static pl_status k_linear_forward(pl__simd *s, int n, int in, int out, const float *x,
                                  const float *w, const float *b, float *y)
{
    if (n < 1 || in < 1 || out < 1)
        return pl__simd_fail(s, PL_EINVAL, "linear: sizes must be positive");
    ptrdiff_t *off = row_offsets(s, SLOT_OFF, out, in);
    if (!off)
        return PL_ENOMEM;
    lin_job j = {.n = n, .in = in, .out = out, .a = x, .b = w, .bias = b, .off = off, .c = y};
    pl__simd_run(s, (n + LIN_ROWS - 1) / LIN_ROWS, 2.0 * n * in * out, lin_fwd_task, &j);
    return PL_OK;
}

/* dx[r][i] = Σ_o dy[r][o] w[o][i], rows [8t, 8t+8) */
static void lin_bwd_data_task(void *ctx, int64_t t, int worker)
{
    lin_job *j = ctx;
    int r0 = (int)t * LIN_ROWS, m = imin(LIN_ROWS, j->n - r0);
    gemm_nn(m, j->in, j->out, j->a + (size_t)r0 * j->out, j->out, 1, j->b, j->off,
            j->c + (size_t)r0 * j->in, j->in, NULL);
}

static pl_status k_linear_backward_data(pl__simd *s, int n, int in, int out, const float *dy,
                                        const float *w, float *dx)
{
    if (n < 1 || in < 1 || out < 1)
        return pl__simd_fail(s, PL_EINVAL, "linear: sizes must be positive");
    ptrdiff_t *off = row_offsets(s, SLOT_OFF, out, in);
    if (!off)
        return PL_ENOMEM;
    lin_job j = {.n = n, .in = in, .out = out, .a = dy, .b = w, .off = off, .c = dx};
    pl__simd_run(s, (n + LIN_ROWS - 1) / LIN_ROWS, 2.0 * n * in * out, lin_bwd_data_task, &j);
    return PL_OK;
}

/* dw[o][i] = Σ_r dy[r][o] x[r][i], output rows [8t, 8t+8) */
static void lin_bwd_weight_task(void *ctx, int64_t t, int worker)
{
    lin_job *j = ctx;
    int o0 = (int)t * LIN_ROWS, m = imin(LIN_ROWS, j->out - o0);
    gemm_nn(m, j->in, j->n, j->a + o0, 1, j->out, j->b, j->off, j->c + (size_t)o0 * j->in,
            j->in, NULL);
}

static pl_status k_linear_backward_weight(pl__simd *s, int n, int in, int out, const float *x,
                                          const float *dy, float *dw, float *db)
{
    if (n < 1 || in < 1 || out < 1)
        return pl__simd_fail(s, PL_EINVAL, "linear: sizes must be positive");
    ptrdiff_t *off = row_offsets(s, SLOT_OFF, n, in);
    if (!off)
        return PL_ENOMEM;
    lin_job j = {.n = n, .in = in, .out = out, .a = dy, .b = x, .off = off, .c = dw};
    pl__simd_run(s, (out + LIN_ROWS - 1) / LIN_ROWS, 2.0 * n * in * out, lin_bwd_weight_task, &j);
    if (db) /* db[o] = Σ_r dy[r][o], rows in order */
        for (int o = 0; o < out; o += VL) {
            vtail tm = vtail_make(imin(VL, out - o));
            vf acc = vload_t(dy + o, tm);
            for (int r = 1; r < n; r++)
                acc = vadd(acc, vload_t(dy + (size_t)r * out + o, tm));
            vstore_t(db + o, acc, tm);
        }
    return PL_OK;
}

/* ---- pooling forward --------------------------------------------------------- */

#define POOL_PLANES 8

typedef struct pool_job {
    const pl_pool2d_shape *s;
    const float *x;
    float *y;
    int32_t *am;
    int is_max;
} pool_job;

/* one output element the plain way (window edges, odd strides) */
static inline void pool_scalar(const pool_job *j, const float *xp, int oy, int ox, int ky0,
                               int ky1, float *y, int32_t *am)
{
    const pl_pool2d_shape *s = j->s;
    int y0 = oy * s->stride_h - s->pad_h, x0 = ox * s->stride_w - s->pad_w;
    int kx0 = x0 < 0 ? -x0 : 0, kx1 = imin(s->kw, s->w - x0);
    if (j->is_max) {
        int bi = (y0 + ky0) * s->w + x0 + kx0;
        float best = xp[bi];
        for (int ky = ky0; ky < ky1; ky++)
            for (int kx = kx0; kx < kx1; kx++) {
                int i = (y0 + ky) * s->w + x0 + kx;
                if (xp[i] > best) {
                    best = xp[i];
                    bi = i;
                }
            }
        *y = best;
        if (am)
            *am = bi;
    } else {
        float sum = 0.0f;
        int first = 1;
        for (int ky = ky0; ky < ky1; ky++)
            for (int kx = kx0; kx < kx1; kx++) {
                float v = xp[(y0 + ky) * s->w + x0 + kx];
                sum = first ? v : sum + v;
                first = 0;
            }
        *y = sum * (1.0f / (float)(s->kh * s->kw));
    }
}

/* VL (or `len`) outputs of one row whose windows lie inside the columns;
 * stride_w is 1 or 2. Same comparison/sum order as pool_scalar. */
static inline void pool_vec(const pool_job *j, const float *xp, int oy, int ox0, int len,
                            int ky0, int ky1, float *y, int32_t *am, vi ramp)
{
    const pl_pool2d_shape *s = j->s;
    int sw = s->stride_w;
    int y0 = oy * s->stride_h - s->pad_h, x0 = ox0 * sw - s->pad_w;
    vtail tl = vtail_make(len);
    int span = sw == 1 ? len : 2 * len - 1; /* floats read per tap */
    vtail t0 = vtail_make(imin(VL, span)), t1 = vtail_make(span > VL ? span - VL : 1);
    vf best = vzero(), sum = vzero();
    vi bi = viset1(0);
    int first = 1;
    for (int ky = ky0; ky < ky1; ky++)
        for (int kx = 0; kx < s->kw; kx++) {
            const float *r = xp + (y0 + ky) * s->w + x0 + kx;
            vf v;
            if (sw == 1)
                v = len == VL ? vload(r) : vload_t(r, t0);
            else {
                vf lo = span >= VL ? vload(r) : vload_t(r, t0);
                vf hi = span > VL ? vload_t(r + VL, t1) : vzero();
                v = veven(lo, hi);
            }
            if (j->is_max) {
                vi idx = viadd(viset1((y0 + ky) * s->w + x0 + kx), ramp);
                if (first) {
                    best = v;
                    bi = idx;
                } else {
                    vmask m = vgt(v, best);
                    best = vsel(m, best, v);
                    bi = visel(m, bi, idx);
                }
            } else {
                sum = first ? v : vadd(sum, v);
            }
            first = 0;
        }
    if (j->is_max) {
        if (len == VL) {
            vstore(y, best);
            if (am)
                vistore(am, bi);
        } else {
            vstore_t(y, best, tl);
            if (am)
                vistore_t(am, bi, tl);
        }
    } else {
        vf r = vmul(sum, vset1(1.0f / (float)(s->kh * s->kw)));
        if (len == VL)
            vstore(y, r);
        else
            vstore_t(y, r, tl);
    }
}

static void pool_task(void *ctx, int64_t t, int worker)
{
    pool_job *j = ctx;
    const pl_pool2d_shape *s = j->s;
    int sw = s->stride_w;
    /* outputs whose window lies inside the columns: ox in [oxa, oxb) */
    int oxa = (s->pad_w + sw - 1) / sw;
    int oxb = s->w - s->kw + s->pad_w < 0 ? 0 : (s->w - s->kw + s->pad_w) / sw + 1;
    if (oxb > s->ow)
        oxb = s->ow;
    if (sw > 2 || oxa > oxb)
        oxa = oxb = s->ow;
    const vi ramp = viramp(sw);
    int64_t p0 = t * POOL_PLANES, p1 = p0 + POOL_PLANES;
    if (p1 > (int64_t)s->n * s->c)
        p1 = (int64_t)s->n * s->c;
    for (int64_t p = p0; p < p1; p++) {
        const float *xp = j->x + (size_t)p * s->h * s->w;
        float *yp = j->y + (size_t)p * s->oh * s->ow;
        int32_t *ap = j->am ? j->am + (size_t)p * s->oh * s->ow : NULL;
        for (int oy = 0; oy < s->oh; oy++) {
            int y0 = oy * s->stride_h - s->pad_h;
            int ky0 = y0 < 0 ? -y0 : 0, ky1 = imin(s->kh, s->h - y0);
            float *yr = yp + (size_t)oy * s->ow;
            int32_t *ar = ap ? ap + (size_t)oy * s->ow : NULL;
            int ox = 0;
            for (; ox < oxa; ox++)
                pool_scalar(j, xp, oy, ox, ky0, ky1, yr + ox, ar ? ar + ox : NULL);
            for (; ox < oxb; ox += VL) {
                int len = imin(VL, oxb - ox);
                pool_vec(j, xp, oy, ox, len, ky0, ky1, yr + ox, ar ? ar + ox : NULL, ramp);
            }
            for (ox = oxb > oxa ? oxb : ox; ox < s->ow; ox++)
                pool_scalar(j, xp, oy, ox, ky0, ky1, yr + ox, ar ? ar + ox : NULL);
        }
    }
}

static pl_status pool_forward(pl__simd *s, const pl_pool2d_shape *sh, const float *x, float *y,
                              int32_t *am, int is_max)
{
    if (!pl__simd_pool_shape_ok(sh))
        return pl__simd_fail(s, PL_EINVAL, "pool2d: inconsistent shape");
    pool_job j = {.s = sh, .x = x, .y = y, .am = am, .is_max = is_max};
    int64_t planes = (int64_t)sh->n * sh->c;
    pl__simd_run(s, (planes + POOL_PLANES - 1) / POOL_PLANES,
                 2.0 * planes * sh->oh * sh->ow * sh->kh * sh->kw, pool_task, &j);
    return PL_OK;
}

static pl_status k_maxpool2d_forward(pl__simd *s, const pl_pool2d_shape *sh, const float *x,
                                     float *y, int32_t *argmax)
{
    return pool_forward(s, sh, x, y, argmax, 1);
}

static pl_status k_avgpool2d_forward(pl__simd *s, const pl_pool2d_shape *sh, const float *x,
                                     float *y)
{
    return pool_forward(s, sh, x, y, NULL, 0);
}

/* ---- element-wise ---------------------------------------------------------- */

#define EW_BLOCK 16384 /* elements per task */

typedef struct ew_job {
    int64_t n;
    const float *a, *b;
    float *c;
    const void *h;
    float *m, *v;
    const float *mask;
} ew_job;

#define EW_LOOP(...)                                                               \
    int64_t i0 = t * EW_BLOCK, i1 = i0 + EW_BLOCK < j->n ? i0 + EW_BLOCK : j->n;   \
    for (int64_t i = i0; i < i1; i += VL) {                                        \
        int len = (int)(i1 - i < VL ? i1 - i : VL);                                \
        vtail tm = vtail_make(len);                                                \
        (void)tm;                                                                  \
        __VA_ARGS__                                                                \
    }
#define LD(p) (len == VL ? vload(p) : vload_t(p, tm))
#define ST(p, v) (len == VL ? vstore(p, v) : vstore_t(p, v, tm))

/* y = (0 > x) ? 0 : x */
static void relu_fwd_task(void *ctx, int64_t t, int worker)
{
    ew_job *j = ctx;
    const vf z = vzero();
    EW_LOOP({
        vf x = LD(j->a + i);
        ST(j->c + i, vsel(vgt(z, x), x, z));
    })
}

/* dx = (y > 0) ? dy : 0 */
static void relu_bwd_task(void *ctx, int64_t t, int worker)
{
    ew_job *j = ctx;
    const vf z = vzero();
    EW_LOOP({
        vf y = LD(j->a + i);
        vf d = LD(j->b + i);
        ST(j->c + i, vsel(vgt(y, z), z, d));
    })
}

static pl_status k_relu_forward(pl__simd *s, int64_t n, const float *x, float *y)
{
    ew_job j = {.n = n, .a = x, .c = y};
    pl__simd_run(s, (n + EW_BLOCK - 1) / EW_BLOCK, 2.0 * n, relu_fwd_task, &j);
    return PL_OK;
}

static pl_status k_relu_backward(pl__simd *s, int64_t n, const float *y, const float *dy,
                                 float *dx)
{
    ew_job j = {.n = n, .a = y, .b = dy, .c = dx};
    pl__simd_run(s, (n + EW_BLOCK - 1) / EW_BLOCK, 2.0 * n, relu_bwd_task, &j);
    return PL_OK;
}

/* The optimizers repeat ref's float operations one for one (no fma), so
 * they match it bit for bit. */
typedef struct adam_consts {
    float b1, b2, omb1, omb2, neg_step, bc2_sqrt, eps, wd;
} adam_consts;

static void adam_task(void *ctx, int64_t t, int worker)
{
    ew_job *j = ctx;
    const adam_consts *k = j->h;
    const vf b1 = vset1(k->b1), b2 = vset1(k->b2), omb1 = vset1(k->omb1), omb2 = vset1(k->omb2);
    const vf ns = vset1(k->neg_step), bc2s = vset1(k->bc2_sqrt), eps = vset1(k->eps), wd = vset1(k->wd);
    const vf z = vzero();
    EW_LOOP({
        vf p = LD(j->c + i), g = LD(j->a + i), m = LD(j->m + i), v = LD(j->v + i);
        vf mk = z;
        if (j->mask) {
            mk = LD(j->mask + i);
            g = vmul(g, mk);
        }
        if (k->wd != 0.0f)
            g = vadd(g, vmul(wd, p));
        m = vadd(vmul(m, b1), vmul(omb1, g));
        v = vadd(vmul(v, b2), vmul(vmul(omb2, g), g));
        vf denom = vadd(vdiv(vsqrt(v), bc2s), eps);
        p = vadd(p, vdiv(vmul(ns, m), denom));
        if (j->mask) {
            p = vadd(vmul(p, mk), z);
            m = vadd(vmul(m, mk), z);
            v = vadd(vmul(v, mk), z);
        }
        ST(j->c + i, p);
        ST(j->m + i, m);
        ST(j->v + i, v);
    })
}

static pl_status k_adam_update(pl__simd *s, const pl_adam_hparams *h, int64_t n, float *p,
                               const float *g, float *m, float *v, const float *mask)
{
    if (h->step < 1)
        return pl__simd_fail(s, PL_EINVAL, "adam: step must be >= 1");
    double bc1 = 1.0 - pow((double)h->beta1, (double)h->step);
    double bc2 = 1.0 - pow((double)h->beta2, (double)h->step);
    adam_consts k = {.b1 = h->beta1, .b2 = h->beta2, .omb1 = 1.0f - h->beta1,
                     .omb2 = 1.0f - h->beta2, .neg_step = (float)(-((double)h->lr / bc1)),
                     .bc2_sqrt = (float)sqrt(bc2), .eps = h->eps, .wd = h->weight_decay};
    ew_job j = {.n = n, .a = g, .c = p, .h = &k, .m = m, .v = v, .mask = mask};
    pl__simd_run(s, (n + EW_BLOCK - 1) / EW_BLOCK, 20.0 * n, adam_task, &j);
    return PL_OK;
}

typedef struct sgd_consts {
    float mom, omd, neg_lr, wd;
    int nesterov, first;
} sgd_consts;

static void sgd_task(void *ctx, int64_t t, int worker)
{
    ew_job *j = ctx;
    const sgd_consts *k = j->h;
    const vf mom = vset1(k->mom), omd = vset1(k->omd), nlr = vset1(k->neg_lr), wd = vset1(k->wd);
    const vf z = vzero();
    EW_LOOP({
        vf p = LD(j->c + i), g = LD(j->a + i);
        vf mk = z;
        if (j->mask) {
            mk = LD(j->mask + i);
            g = vmul(g, mk);
        }
        if (k->wd != 0.0f)
            g = vadd(g, vmul(wd, p));
        vf b = z;
        if (k->mom != 0.0f) {
            b = k->first ? g : vadd(vmul(LD(j->m + i), mom), vmul(omd, g));
            g = k->nesterov ? vadd(g, vmul(mom, b)) : b;
        }
        p = vadd(p, vmul(nlr, g));
        if (j->mask) {
            p = vadd(vmul(p, mk), z);
            b = vadd(vmul(b, mk), z);
        }
        ST(j->c + i, p);
        if (k->mom != 0.0f)
            ST(j->m + i, b);
    })
}

static pl_status k_sgd_update(pl__simd *s, const pl_sgd_hparams *h, int64_t n, float *p,
                              const float *g, float *buf, const float *mask)
{
    if (h->momentum != 0.0f && !buf)
        return pl__simd_fail(s, PL_EINVAL, "sgd: momentum needs a buffer");
    sgd_consts k = {.mom = h->momentum, .omd = 1.0f - h->dampening, .neg_lr = -h->lr,
                    .wd = h->weight_decay, .nesterov = h->nesterov, .first = h->first_step};
    ew_job j = {.n = n, .a = g, .c = p, .h = &k, .m = buf, .mask = mask};
    pl__simd_run(s, (n + EW_BLOCK - 1) / EW_BLOCK, 10.0 * n, sgd_task, &j);
    return PL_OK;
}

const pl__simd_impl ISA_TABLE = {
    .name = ISA_NAME,
    .conv2d_forward = k_conv2d_forward,
    .conv2d_backward_data = k_conv2d_backward_data,
    .conv2d_backward_weight = k_conv2d_backward_weight,
    .linear_forward = k_linear_forward,
    .linear_backward_data = k_linear_backward_data,
    .linear_backward_weight = k_linear_backward_weight,
    .maxpool2d_forward = k_maxpool2d_forward,
    .avgpool2d_forward = k_avgpool2d_forward,
    .relu_forward = k_relu_forward,
    .relu_backward = k_relu_backward,
    .adam_update = k_adam_update,
    .sgd_update = k_sgd_update,
};
