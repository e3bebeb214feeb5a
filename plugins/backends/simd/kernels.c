/*
 * kernels.c — the simd backend's kernels, compiled once per instruction set
 * (see vec.h and simd_internal.h).
 *
 * Two micro-kernels do all the multiply-accumulate work:
 *   gemm_rows  C[i][q] = init + Σ_k A(i,k) · B[boff[k] + q]: A broadcast, B
 *              loaded as vectors along q, one fma chain per element in k order.
 *   dot_nt     C[i][j] = init + Σ_q A[i][q] · B[boff[j] + q]: lane-wise
 *              partial sums along q, then a fixed horizontal-sum tree.
 * gemm_rows walks q as rows (output rows of a convolution, or one long row).
 * Tile sizes, partial vectors and cache blocking never change the order of
 * operations of any element (a K-blocked gemm reloads the exact float it
 * stored), so every result is independent of how the work is split.
 *
 * Convolution. Stride 1 uses the "padded plane" form: with the input zero-
 * padded to Hp x Wp, output row oy of tap (ci, ky, kx) reads the contiguous
 * src[ci*Hp*Wp + (oy+ky)*Wp + kx ...], so no im2col is needed; the forward
 * pass packs several short output rows into one micro-tile and writes them
 * in place. The weight gradient runs over q = oy*Wp + ox as one long row,
 * with dy copied to pitch Wp (zeros in the Wp - ow gaps), in fixed chunks
 * of the batch whose partial sums are added in chunk order. Backward data
 * for stride 1 is the forward conv of dy with the flipped, transposed
 * weights. Other strides use im2col (and col2im).
 *
 * Pooling. Windows that lie inside the row are vectorised along the output
 * row (stride 1 or 2), edges go through the same comparisons one by one;
 * 2x2 stride-2 max pooling, the common case, has its own forward and
 * backward (compare the argmax, interleave back) without any scatter.
 */
#include "simd_internal.h"
#include "vec.h"

#include <math.h>
#include <stdatomic.h>
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

/* d[0..n) = s[0..n), d[n..m) = 0 */
static inline void copy_row_pad(float *d, const float *s, int n, int m)
{
    int i = 0;
    for (; i + VL <= n; i += VL)
        vstore(d + i, vload(s + i));
    for (; i < m; i += VL) {
        vf v = i < n ? vload_t(s + i, vtail_make(n - i)) : vzero();
        if (i + VL <= m)
            vstore(d + i, v);
        else
            vstore_t(d + i, v, vtail_make(m - i));
    }
}

/* ---- gemm ---------------------------------------------------------------- */

/* One micro-tile: mr rows of C times nv vectors, vector j at column offset
 * co[j] of C and bo[j] of every B row (so a tile may span several short
 * output rows). masked: vector j keeps only the lanes of tv[j].
 *   C[i][co[j] + l] = init_i + Σ_{k<kn} A[i*sam + k*sak] · B[boff[k] + bo[j] + l] */
INLINE void nn_tile(const int mr, const int nv, const int masked, const vtail *tv,
                    const ptrdiff_t *bo, const ptrdiff_t *co, int kn, const float *A,
                    ptrdiff_t sam, ptrdiff_t sak, const float *B, const ptrdiff_t *boff, float *C,
                    ptrdiff_t ldc, int init, const float *bias)
{
    vf acc[MR][NV];
    ptrdiff_t bo_[NV], co_[NV];
    vtail tv_[NV];
#pragma GCC unroll 4
    for (int j = 0; j < nv; j++) {
        bo_[j] = bo[j];
        co_[j] = co[j];
        tv_[j] = tv[j];
    }
#pragma GCC unroll 4
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int j = 0; j < nv; j++) {
            if (init == INIT_LOAD)
                acc[i][j] = masked ? vload_t(C + i * ldc + co_[j], tv_[j]) : vload(C + i * ldc + co_[j]);
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
            bv[j] = masked ? vload_t(b + bo_[j], tv_[j]) : vload(b + bo_[j]);
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
            if (masked)
                vstore_t(C + i * ldc + co_[j], acc[i][j], tv_[j]);
            else
                vstore(C + i * ldc + co_[j], acc[i][j]);
        }
}

#define NN_ARGS tv, bo, co, kn, A, sam, sak, B, boff, C, ldc, init, bias
#define NN_MR(nv, masked)                                                          \
    switch (mr) {                                                                  \
    case 4: nn_tile(4, nv, masked, NN_ARGS); break;                                \
    case 3: nn_tile(3, nv, masked, NN_ARGS); break;                                \
    case 2: nn_tile(2, nv, masked, NN_ARGS); break;                                \
    default: nn_tile(1, nv, masked, NN_ARGS); break;                               \
    }
#define NN_FN(name, masked)                                                        \
    static void name(int mr, int nv, const vtail *tv, const ptrdiff_t *bo,         \
                     const ptrdiff_t *co, int kn, const float *A, ptrdiff_t sam,    \
                     ptrdiff_t sak, const float *B, const ptrdiff_t *boff, float *C, \
                     ptrdiff_t ldc, int init, const float *bias)                   \
    {                                                                              \
        switch (nv) {                                                              \
        case 1: NN_MR(1, masked) break;                                            \
        case 2: NN_MR(2, masked) break;                                            \
        NN_WIDE(masked)                                                            \
        }                                                                          \
    }
#if NV == 4
#define NN_WIDE(masked)                                                            \
    case 3: NN_MR(3, masked) break;                                                \
    default: NN_MR(4, masked) break;
#else
#define NN_WIDE(masked)
#endif
NN_FN(nn_full, 0)
NN_FN(nn_masked, 1)

/* Row-structured gemm: for r < nrows, c < rowlen,
 *   C[i][r*cp + c] = (bias ? bias[i] : 0) + Σ_{k<K} A[i*sam + k*sak] · B[boff[k] + r*bp + c]
 * Short rows are packed several to a micro-tile, long rows are cut into
 * pieces of NV vectors. Each element is one fma chain in k order. */
static void gemm_rows(int M, int nrows, int rowlen, ptrdiff_t bp, ptrdiff_t cp, int K,
                      const float *A, ptrdiff_t sam, ptrdiff_t sak, const float *B,
                      const ptrdiff_t *boff, float *C, ptrdiff_t ldc, const float *bias)
{
    int V = (rowlen + VL - 1) / VL; /* vectors per row */
    int masked = rowlen % VL != 0;
    vtail tfull = vtail_make(VL), tlast = vtail_make(rowlen - (V - 1) * VL);
    int R = V <= NV ? NV / V : 1;          /* rows per tile */
    int pieces = V <= NV ? 1 : (V + NV - 1) / NV;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kn = imin(KC, K - k0);
        int init = k0 ? INIT_LOAD : bias ? INIT_BIAS : INIT_ZERO;
        const float *Ak = A + k0 * sak;
        const ptrdiff_t *bk = boff + k0;
        for (int r0 = 0; r0 < nrows; r0 += R)
            for (int p = 0; p < pieces; p++) {
                ptrdiff_t bo[NV], co[NV];
                vtail tv[NV];
                int nv = 0, last = 0;
                for (int r = r0; r < imin(r0 + R, nrows); r++)
                    for (int v = p * NV; v < imin(V, (p + 1) * NV); v++, nv++) {
                        bo[nv] = r * bp + v * VL;
                        co[nv] = r * cp + v * VL;
                        tv[nv] = v == V - 1 ? tlast : tfull;
                        last |= v == V - 1;
                    }
                for (int i = 0; i < M; i += MR) {
                    if (masked && last)
                        nn_masked(imin(MR, M - i), nv, tv, bo, co, kn, Ak + i * sam, sam, sak, B, bk,
                                  C + i * ldc, ldc, init, bias ? bias + i : NULL);
                    else
                        nn_full(imin(MR, M - i), nv, tv, bo, co, kn, Ak + i * sam, sam, sak, B, bk,
                                C + i * ldc, ldc, init, bias ? bias + i : NULL);
                }
            }
    }
}

/* ---- dot ------------------------------------------------------------------ */

/* C[i][j] (i < M, j in [j0, j0+nr)) = (bias ? bias[j] : 0) +
 *   Σ_{g<ng} Σ_{q<Q} A[g*ag + i*lda + q] · B[g*bg + boff[j] + q]
 * Lane-wise partial sums, then a fixed horizontal-sum tree. Rows i past M
 * are computed as duplicates of row M-1 and not stored. */
INLINE void dot_tile(const int nr, int i0, int j0, int M, int ng, int Q, const float *A,
                     ptrdiff_t lda, ptrdiff_t ag, const float *B, const ptrdiff_t *boff,
                     ptrdiff_t bg, float *C, ptrdiff_t ldc, const float *bias)
{
    const float *pa[DMR], *pb[DNR];
    vf acc[DMR][DNR];
    int qf = Q / VL * VL;
    vtail tm = vtail_make(Q > qf ? Q - qf : VL);
#pragma GCC unroll 4
    for (int r = 0; r < DMR; r++)
        pa[r] = A + (ptrdiff_t)imin(i0 + r, M - 1) * lda;
#pragma GCC unroll 4
    for (int c = 0; c < nr; c++)
        pb[c] = B + boff[j0 + c];
#pragma GCC unroll 4
    for (int r = 0; r < DMR; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nr; c++)
            acc[r][c] = vzero();
    for (int g = 0; g < ng; g++) {
        int q = 0;
        for (; q < qf; q += VL) {
            vf av[DMR], bv[DNR];
#pragma GCC unroll 4
            for (int r = 0; r < DMR; r++)
                av[r] = vload(pa[r] + q);
#pragma GCC unroll 4
            for (int c = 0; c < nr; c++)
                bv[c] = vload(pb[c] + q);
#pragma GCC unroll 4
            for (int r = 0; r < DMR; r++)
#pragma GCC unroll 4
                for (int c = 0; c < nr; c++)
                    acc[r][c] = vfma(av[r], bv[c], acc[r][c]);
        }
        if (q < Q) {
            vf av[DMR], bv[DNR];
#pragma GCC unroll 4
            for (int r = 0; r < DMR; r++)
                av[r] = vload_t(pa[r] + q, tm);
#pragma GCC unroll 4
            for (int c = 0; c < nr; c++)
                bv[c] = vload_t(pb[c] + q, tm);
#pragma GCC unroll 4
            for (int r = 0; r < DMR; r++)
#pragma GCC unroll 4
                for (int c = 0; c < nr; c++)
                    acc[r][c] = vfma(av[r], bv[c], acc[r][c]);
        }
#pragma GCC unroll 4
        for (int r = 0; r < DMR; r++)
            pa[r] += ag;
#pragma GCC unroll 4
        for (int c = 0; c < nr; c++)
            pb[c] += bg;
    }
    for (int r = 0; r < DMR && i0 + r < M; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nr; c++) {
            float s = vhsum(acc[r][c]);
            C[(ptrdiff_t)(i0 + r) * ldc + j0 + c] = bias ? bias[j0 + c] + s : s;
        }
}

static void dot_nt(int M, int N, int ng, int Q, const float *A, ptrdiff_t lda, ptrdiff_t ag,
                   const float *B, const ptrdiff_t *boff, ptrdiff_t bg, float *C, ptrdiff_t ldc,
                   const float *bias)
{
    for (int i0 = 0; i0 < M; i0 += DMR)
        for (int j0 = 0; j0 < N; j0 += DNR) {
#define DOT_ARGS i0, j0, M, ng, Q, A, lda, ag, B, boff, bg, C, ldc, bias
            switch (imin(DNR, N - j0)) {
            case 1: dot_tile(1, DOT_ARGS); break;
            case 2: dot_tile(2, DOT_ARGS); break;
            case 3: dot_tile(3, DOT_ARGS); break;
            default: dot_tile(DNR, DOT_ARGS); break;
            }
#undef DOT_ARGS
        }
}

/* ---- convolution geometry -------------------------------------------------- */

/* Output position (oy, ox) of image i is column oy*ow + ox of y; for tap k
 * the matching source value is src[boff[k] + r*bp + c] with (r, c) =
 * (oy, ox) in the direct form (nrows = oh, rowlen = ow, bp = Wp) and
 * (0, oy*ow + ox) for im2col (one row of oh*ow). */
typedef struct conv_plan {
    const pl_conv2d_shape *s;
    int direct;        /* stride 1: padded-plane form; else im2col */
    int copy;          /* direct: the input must be copied into a padded plane */
    int Hp, Wp;        /* direct: padded plane */
    int nrows, rowlen; /* see above */
    ptrdiff_t bp;
    int K;             /* cin*kh*kw */
    ptrdiff_t *boff;   /* [K] offset of tap k in the source */
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
        p->nrows = sh->oh;
        p->rowlen = sh->ow;
        p->bp = p->Wp;
        p->src_floats = p->copy ? (size_t)sh->cin * p->Hp * p->Wp : 0;
        int k = 0;
        for (int ci = 0; ci < sh->cin; ci++)
            for (int ky = 0; ky < sh->kh; ky++)
                for (int kx = 0; kx < sh->kw; kx++)
                    p->boff[k++] = ((ptrdiff_t)ci * p->Hp + ky) * p->Wp + kx;
    } else {
        int Qs = ROUND_VL(sh->oh * sh->ow);
        p->nrows = 1;
        p->rowlen = sh->oh * sh->ow;
        p->bp = 0;
        p->src_floats = (size_t)p->K * Qs;
        for (int k = 0; k < p->K; k++)
            p->boff[k] = (ptrdiff_t)k * Qs;
    }
    return PL_OK;
}

/* The source of one image: the input itself, a zero-padded copy, or im2col. */
static const float *conv_source(const conv_plan *p, const float *x, float *buf)
{
    const pl_conv2d_shape *s = p->s;
    if (p->direct && !p->copy)
        return x;
    if (p->direct) {
        zero_row(buf, (int)p->src_floats);
        for (int ci = 0; ci < s->cin; ci++) {
            float *d = buf + ((size_t)ci * p->Hp + s->pad_h) * p->Wp + s->pad_w;
            const float *xs = x + (size_t)ci * s->h * s->w;
            for (int iy = 0; iy < s->h; iy++)
                copy_row(d + (size_t)iy * p->Wp, xs + (size_t)iy * s->w, s->w);
        }
        return buf;
    }
    /* im2col: col[(ci,ky,kx)][oy*ow+ox] = x[ci][oy*sh-ph+ky][ox*sw-pw+kx] or 0 */
    int k = 0, Qs = ROUND_VL(s->oh * s->ow);
    for (int ci = 0; ci < s->cin; ci++)
        for (int ky = 0; ky < s->kh; ky++)
            for (int kx = 0; kx < s->kw; kx++, k++) {
                float *col = buf + (size_t)k * Qs;
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
    size_t plane = (size_t)s->oh * s->ow;
    const float *src = conv_source(p, j->x + (size_t)t * p->in_img, pl__simd_wbuf(j->s, worker));
    gemm_rows(s->cout, p->nrows, p->rowlen, p->bp, p->rowlen, p->K, j->w, p->K, 1, src, p->boff,
              j->y + (size_t)t * s->cout * plane, (ptrdiff_t)plane, j->b);
}

static pl_status conv_forward_plan(pl__simd *s, const pl_conv2d_shape *sh, const float *x,
                                   const float *w, const float *b, float *y)
{
    conv_plan p;
    pl_status st = conv_plan_make(s, sh, SLOT_OFF, &p);
    if (st)
        return st;
    if ((st = pl__simd_reserve(s, p.src_floats)))
        return st;
    conv_fwd_job j = {.s = s, .p = &p, .x = x, .w = w, .b = b, .y = y};
    pl__simd_run(s, sh->n, 2.0 * sh->n * sh->cout * p.K * sh->oh * sh->ow, conv_fwd_task, &j);
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
    int Qs = ROUND_VL((int)P);
    gemm_rows(p->K, 1, (int)P, 0, 0, s->cout, j->w, 1, p->K, j->dy + (size_t)t * s->cout * P,
              j->dyoff, dcol, Qs, NULL);
    memset(dx, 0, sizeof(float) * p->in_img);
    int k = 0;
    for (int ci = 0; ci < s->cin; ci++)
        for (int ky = 0; ky < s->kh; ky++)
            for (int kx = 0; kx < s->kw; kx++, k++) {
                const float *c = dcol + (size_t)k * Qs;
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
    if ((st = pl__simd_reserve(s, (size_t)p.K * ROUND_VL(sh->oh * sh->ow))))
        return st;
    conv_bwd_job j = {.s = s, .p = &p, .dy = dy, .w = w, .dyoff = dyoff, .dx = dx};
    pl__simd_run(s, sh->n, 2.0 * sh->n * sh->cout * p.K * sh->oh * sh->ow, conv_bwd_col_task, &j);
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

/* Per chunk of images, in q space (direct form: q = oy*Wp + ox, with dy
 * copied to rows of pitch Wp whose Wp - ow extra columns are zero):
 *   part_dw[co][k] = Σ_img Σ_q dyq[co][q] · src[boff[k] + q],  part_db[co] = Σ_img Σ dy[co] */
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
    const float *dy = j->dy + (size_t)i0 * s->cout * P;
    const float *a = dy;
    ptrdiff_t lda = (ptrdiff_t)P, ag = (ptrdiff_t)(s->cout * P);
    int Q = (int)P;
    if (p->direct && p->Wp != s->ow) {
        float *dq = buf + (size_t)ng * p->src_floats;
        Q = (s->oh - 1) * p->Wp + s->ow;
        lda = ROUND_VL(Q);
        ag = lda * s->cout;
        for (int g = 0; g < ng; g++)
            for (int co = 0; co < s->cout; co++) {
                float *d = dq + g * ag + co * lda;
                const float *ds = dy + ((size_t)g * s->cout + co) * P;
                for (int oy = 0; oy < s->oh; oy++)
                    copy_row_pad(d + (size_t)oy * p->Wp, ds + (size_t)oy * s->ow, s->ow,
                                 oy + 1 < s->oh ? p->Wp : s->ow);
            }
        a = dq;
    }
    dot_nt(s->cout, p->K, ng, Q, a, lda, ag, src, p->boff, bg, part, p->K, NULL);
    if (j->want_db) {
        int pf = (int)P / VL * VL;
        vtail tm = vtail_make((int)P > pf ? (int)P - pf : VL);
        for (int co = 0; co < s->cout; co++) {
            vf acc = vzero();
            for (int g = 0; g < ng; g++) {
                const float *r = dy + ((size_t)g * s->cout + co) * P;
                int q = 0;
                for (; q < pf; q += VL)
                    acc = vadd(acc, vload(r + q));
                if (q < (int)P)
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
    int chunk = imin(8, sh->n / 8 > 0 ? sh->n / 8 : 1);
    int chunks = (sh->n + chunk - 1) / chunk;
    size_t stride = (size_t)sh->cout * p.K + sh->cout;
    float *part = pl__simd_slot(s, SLOT_PART, stride * chunks);
    if (!part)
        return PL_ENOMEM;
    size_t dq = p.direct && p.Wp != sh->ow ? (size_t)sh->cout * ROUND_VL((sh->oh - 1) * p.Wp + sh->ow) : 0;
    if ((st = pl__simd_reserve(s, (p.src_floats + dq) * chunk)))
        return st;
    conv_dw_job j = {.s = s, .p = &p, .x = x, .dy = dy, .part = part, .chunk = chunk, .want_db = db != NULL};
    pl__simd_run(s, chunks, 2.0 * sh->n * sh->cout * p.K * sh->oh * sh->ow, conv_dw_task, &j);
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
    dot_nt(m, j->out, 1, j->in, j->a + (size_t)r0 * j->in, j->in, 0, j->b, j->off, 0,
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
    gemm_rows(m, 1, j->in, 0, 0, j->out, j->a + (size_t)r0 * j->out, j->out, 1, j->b, j->off,
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
    gemm_rows(m, 1, j->in, 0, 0, j->n, j->a + o0, 1, j->out, j->b, j->off,
              j->c + (size_t)o0 * j->in, j->in, NULL);
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

static int is_pool2x2(const pl_pool2d_shape *s)
{
    return s->kh == 2 && s->kw == 2 && s->stride_h == 2 && s->stride_w == 2 && s->pad_h == 0 &&
           s->pad_w == 0;
}

/* Loads the 2*len floats r[0 .. 2*len) as two vectors (lanes past the end zero). */
INLINE void load_pair(const float *r, int len, vf *lo, vf *hi)
{
    int span = 2 * len;
    *lo = span >= VL ? vload(r) : vload_t(r, vtail_make(span));
    *hi = span >= 2 * VL ? vload(r + VL) : span > VL ? vload_t(r + VL, vtail_make(span - VL)) : vzero();
}

INLINE void store_pair(float *r, int len, vf lo, vf hi)
{
    int span = 2 * len;
    if (span >= VL)
        vstore(r, lo);
    else
        vstore_t(r, lo, vtail_make(span));
    if (span >= 2 * VL)
        vstore(r + VL, hi);
    else if (span > VL)
        vstore_t(r + VL, hi, vtail_make(span - VL));
}

/* max pool 2x2 stride 2: `len` outputs of row oy from ox0; candidates in
 * window order (0,0) (0,1) (1,0) (1,1), replaced only when strictly greater */
static void maxpool2x2_plane(const pl_pool2d_shape *s, const float *xp, float *yp, int32_t *ap,
                             vi ramp2)
{
    const vi one = viset1(1), down = viset1(s->w), diag = viset1(s->w + 1);
    for (int oy = 0; oy < s->oh; oy++)
        for (int ox0 = 0; ox0 < s->ow; ox0 += VL) {
            int len = imin(VL, s->ow - ox0), at = 2 * oy * s->w + 2 * ox0;
            vf alo, ahi, blo, bhi;
            load_pair(xp + at, len, &alo, &ahi);
            load_pair(xp + at + s->w, len, &blo, &bhi);
            vf best = veven(alo, ahi), v;
            vi i00 = viadd(viset1(at), ramp2), bi = i00;
            vmask m;
            v = vodd(alo, ahi);
            m = vgt(v, best);
            best = vsel(m, best, v);
            bi = visel(m, bi, viadd(i00, one));
            v = veven(blo, bhi);
            m = vgt(v, best);
            best = vsel(m, best, v);
            bi = visel(m, bi, viadd(i00, down));
            v = vodd(blo, bhi);
            m = vgt(v, best);
            best = vsel(m, best, v);
            bi = visel(m, bi, viadd(i00, diag));
            float *y = yp + oy * s->ow + ox0;
            if (len == VL) {
                vstore(y, best);
                if (ap)
                    vistore(ap + oy * s->ow + ox0, bi);
            } else {
                vtail tl = vtail_make(len);
                vstore_t(y, best, tl);
                if (ap)
                    vistore_t(ap + oy * s->ow + ox0, bi, tl);
            }
        }
}

static void pool_task(void *ctx, int64_t t, int worker)
{
    pool_job *j = ctx;
    const pl_pool2d_shape *s = j->s;
    if (j->is_max && is_pool2x2(s)) {
        const vi ramp2 = viramp(2);
        int64_t p0 = t * POOL_PLANES, p1 = p0 + POOL_PLANES;
        if (p1 > (int64_t)s->n * s->c)
            p1 = (int64_t)s->n * s->c;
        for (int64_t p = p0; p < p1; p++)
            maxpool2x2_plane(s, j->x + (size_t)p * s->h * s->w, j->y + (size_t)p * s->oh * s->ow,
                             j->am ? j->am + (size_t)p * s->oh * s->ow : NULL, ramp2);
        return;
    }
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

/* ---- max pooling backward ---------------------------------------------------- */

typedef struct pool_bwd_job {
    const pl_pool2d_shape *s;
    const float *dy;
    const int32_t *am;
    float *dx;
    _Atomic int bad;
} pool_bwd_job;

/* 2x2 stride 2: dx[window] = dy where the window's argmax points, else 0;
 * rows/columns no window covers are 0. (argmax must come from the forward
 * pass: an index outside its window is ignored here.) */
static void maxpool2x2_bwd_plane(const pl_pool2d_shape *s, const float *dy, const int32_t *am,
                                 float *dx, vi ramp2)
{
    const vi one = viset1(1), down = viset1(s->w), diag = viset1(s->w + 1);
    const vf z = vzero();
    for (int oy = 0; oy < s->oh; oy++) {
        for (int ox0 = 0; ox0 < s->ow; ox0 += VL) {
            int len = imin(VL, s->ow - ox0), at = 2 * oy * s->w + 2 * ox0;
            vtail tl = vtail_make(len);
            vf g = len == VL ? vload(dy + oy * s->ow + ox0) : vload_t(dy + oy * s->ow + ox0, tl);
            vi a = viload_t(am + oy * s->ow + ox0, tl);
            vi i00 = viadd(viset1(at), ramp2);
            vf te = vsel(vieq(a, i00), z, g), to = vsel(vieq(a, viadd(i00, one)), z, g);
            vf be = vsel(vieq(a, viadd(i00, down)), z, g), bo = vsel(vieq(a, viadd(i00, diag)), z, g);
            store_pair(dx + at, len, vzip_lo(te, to), vzip_hi(te, to));
            store_pair(dx + at + s->w, len, vzip_lo(be, bo), vzip_hi(be, bo));
        }
        if (s->w > 2 * s->ow) {
            zero_row(dx + 2 * oy * s->w + 2 * s->ow, s->w - 2 * s->ow);
            zero_row(dx + (2 * oy + 1) * s->w + 2 * s->ow, s->w - 2 * s->ow);
        }
    }
    if (s->h > 2 * s->oh)
        zero_row(dx + 2 * s->oh * s->w, (s->h - 2 * s->oh) * s->w);
}

static void maxpool_bwd_task(void *ctx, int64_t t, int worker)
{
    pool_bwd_job *j = ctx;
    const pl_pool2d_shape *s = j->s;
    size_t plane = (size_t)s->h * s->w, oplane = (size_t)s->oh * s->ow;
    int64_t p0 = t * POOL_PLANES, p1 = p0 + POOL_PLANES;
    if (p1 > (int64_t)s->n * s->c)
        p1 = (int64_t)s->n * s->c;
    if (is_pool2x2(s)) {
        const vi ramp2 = viramp(2);
        for (int64_t p = p0; p < p1; p++)
            maxpool2x2_bwd_plane(s, j->dy + p * oplane, j->am + p * oplane, j->dx + p * plane, ramp2);
        return;
    }
    /* dx = 0; dx[argmax] += dy in output order */
    memset(j->dx + p0 * plane, 0, sizeof(float) * plane * (size_t)(p1 - p0));
    for (int64_t p = p0; p < p1; p++) {
        float *dx = j->dx + p * plane;
        const float *dy = j->dy + p * oplane;
        const int32_t *am = j->am + p * oplane;
        for (size_t o = 0; o < oplane; o++) {
            if ((uint32_t)am[o] >= plane) {
                atomic_store_explicit(&j->bad, 1, memory_order_relaxed);
                continue;
            }
            dx[am[o]] += dy[o];
        }
    }
}

static pl_status k_maxpool2d_backward(pl__simd *s, const pl_pool2d_shape *sh, const float *dy,
                                      const int32_t *argmax, float *dx)
{
    if (!pl__simd_pool_shape_ok(sh))
        return pl__simd_fail(s, PL_EINVAL, "pool2d: inconsistent shape");
    if (!argmax)
        return pl__simd_fail(s, PL_EINVAL, "maxpool2d_backward: argmax is required");
    pool_bwd_job j = {.s = sh, .dy = dy, .am = argmax, .dx = dx};
    atomic_init(&j.bad, 0);
    int64_t planes = (int64_t)sh->n * sh->c;
    pl__simd_run(s, (planes + POOL_PLANES - 1) / POOL_PLANES,
                 (double)planes * (sh->h * sh->w + 2 * sh->oh * sh->ow), maxpool_bwd_task, &j);
    if (atomic_load(&j.bad))
        return pl__simd_fail(s, PL_EINVAL, "maxpool2d_backward: argmax out of range");
    return PL_OK;
}

static pl_status k_avgpool2d_forward(pl__simd *s, const pl_pool2d_shape *sh, const float *x,
                                     float *y)
{
    return pool_forward(s, sh, x, y, NULL, 0);
}

/* ---- element-wise ---------------------------------------------------------- */

#define EW_BLOCK 16384 /* elements per task (relu) */
#define OPT_BLOCK 4096 /* elements per task (optimizers: ~10 cycles per element) */

typedef struct ew_job {
    int64_t n;
    const float *a, *b;
    float *c;
    const void *h;
    float *m, *v;
    const float *mask;
} ew_job;

#define EW_LOOP_B(B, ...)                                                          \
    int64_t i0 = t * (B), i1 = i0 + (B) < j->n ? i0 + (B) : j->n;                  \
    for (int64_t i = i0; i < i1; i += VL) {                                        \
        int len = (int)(i1 - i < VL ? i1 - i : VL);                                \
        vtail tm = vtail_make(len);                                                \
        (void)tm;                                                                  \
        __VA_ARGS__                                                                \
    }
#define EW_LOOP(...) EW_LOOP_B(EW_BLOCK, __VA_ARGS__)
#define OPT_LOOP(...) EW_LOOP_B(OPT_BLOCK, __VA_ARGS__)
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
    OPT_LOOP({
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
    pl__simd_run(s, (n + OPT_BLOCK - 1) / OPT_BLOCK, 20.0 * n, adam_task, &j);
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
    OPT_LOOP({
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
    pl__simd_run(s, (n + OPT_BLOCK - 1) / OPT_BLOCK, 20.0 * n, sgd_task, &j);
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
    .maxpool2d_backward = k_maxpool2d_backward,
    .avgpool2d_forward = k_avgpool2d_forward,
    .relu_forward = k_relu_forward,
    .relu_backward = k_relu_backward,
    .adam_update = k_adam_update,
    .sgd_update = k_sgd_update,
};
