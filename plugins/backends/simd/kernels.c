/*
 * kernels.c — the simd backend's kernels, compiled once per instruction set
 * (see vec.h and simd_internal.h).
 *
 * Two micro-kernels do the multiply-accumulate work:
 *   gemm_rows  C[i][q] = init + Σ_k A(i,k) · B[boff[k] + q]: A broadcast, B
 *              loaded as vectors along q, one fma chain per element in k
 *              order. Tiles are 8 rows x 3 vectors (AVX-512) or up to 4 rows
 *              x 6 vectors when there are fewer than 8 rows (SimpleCNN's
 *              convolutions have 4 and 8 channels). Convolutions, linear
 *              layers (forward over the transposed weights) and their
 *              input gradients.
 *   dw_tile    C[i][j] = Σ_q A[i][q] · B[boff[j] + q] for weight gradients:
 *              lane-wise partial sums along q (which can carry over from
 *              one group of images to the next), then a fixed
 *              horizontal-sum tree.
 * gemm_rows walks q as rows (output rows of a convolution, or one long row).
 * Tile sizes, partial vectors and cache blocking never change the order of
 * operations of any element (a K-blocked gemm reloads the exact float it
 * stored), so every result is independent of how the work is split.
 *
 * Convolution. Stride 1 uses the "padded plane" form: with the input zero-
 * padded to Hp x Wp, output row oy of tap (ci, ky, kx) reads the contiguous
 * src[ci*Hp*Wp + (oy+ky)*Wp + kx ...], so no im2col is needed; the forward
 * pass packs several short output rows into one micro-tile and writes them
 * in place (with ReLU applied in the same epilogue for the fused slot), or,
 * where rows would leave much of their last vector empty (widths 7, 28),
 * runs over q = oy*Wp + ox as one long row into a scratch plane and copies
 * the rows out (fwd_long_row; the same fma chain per element). The
 * weight gradient runs over q = oy*Wp + ox as one long row, with dy copied
 * to pitch Wp (zeros in the Wp - ow gaps; db is summed during that copy), in
 * fixed chunks of the batch whose partial sums are added in chunk order.
 * Backward data for stride 1 is the forward conv of dy with the flipped,
 * transposed weights. 3x3 stride-1 forwards with at least 16 channels on
 * both sides (and so their input gradients) use Winograd F(2x2, 3x3)
 * instead (wino_forward: 16 gemms over channel-last tiles, 2.25x fewer
 * multiplications, its own float rounding). A strided forward whose taps
 * overlap (3x3 stride 2) reads the input's phase planes in the stride-1
 * row form (conv_plan_phase: bit-identical to im2col); the other strided
 * passes use im2col (vectorised for stride 2) and col2im (stride 2 along x
 * as zero-interleaved vectors). Copies into
 * scratch use full-vector stores only where the rows are read back at
 * once: a masked store there stalls the loads that follow (no store
 * forwarding).
 *
 * Pooling. Windows that lie inside the row are vectorised along the output
 * row (stride 1 or 2), edges go through the same comparisons one by one;
 * 2x2 stride-2 max pooling, the common case, has its own forward and
 * backward (compare the argmax, interleave back) without any scatter. Other
 * backward passes add each tap's dy row (masked to the argmax for max
 * pooling) into the input row it came from, for stride 1 and 2.
 *
 * Sparse linear (CSR): blocks of images are transposed so that one stored
 * weight multiplies a block with contiguous loads (see csr_task).
 *
 * Grouped convolution (ABI 1.4): groups == 1 is the dense kernel itself;
 * depthwise (groups == cin == cout) has kernels of its own over "phase
 * planes" (see dwc_build): forward and backward data are one 2-D
 * correlation per plane (3x3 stride 1 and 2 specialised), the weight
 * gradient one chunk of the batch per task; any other grouping runs the
 * dense kernels group by group on gathered channels.
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
#if PL_SIMD_ISA == 3
#define MR 8   /* gemm micro-tile rows: 8 x 3 vectors (24 of 32 registers) */
#define NV8 3  /* vectors per tile when it has 8 rows */
#define NVW 6  /* vectors per tile of at most 4 rows (4 x 6 accumulators) */
#else
#define MR 4
#define NV8 NV
#define NVW NV
#endif
#define KC (8192 / (NV * VL))     /* gemm k block: B panel of KC x NV*VL floats stays in L1 */
#define ROUND_VL(n) (((n) + VL - 1) / VL * VL)

enum { SLOT_OFF = 0, SLOT_W = 1, SLOT_PART = 2, SLOT_OFF2 = 3, SLOT_GIN = 4, SLOT_GOUT = 5, SLOT_WINO = 6 };
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

/* d[0..n) = s[0..n), d[n..m) = 0 with full-vector stores only: writes up
 * to ROUND_VL(m) floats (the caller has that room; a later row overwrites
 * what spills into it). A masked store here would make the loads that
 * soon read the row wait for it to reach the cache (no store forwarding). */
static inline void copy_row_over(float *d, const float *s, int n, int m)
{
    int i = 0;
    for (; i + VL <= n; i += VL)
        vstore(d + i, vload(s + i));
    for (; i < m; i += VL)
        vstore(d + i, i < n ? vload_t(s + i, vtail_make(n - i)) : vzero());
}

/* VL x VL transpose of r[0..VL) in log2(VL) rounds of interleaves: after
 * round k, vector j holds pairs of the inputs (j / 2) and (j / 2 + VL/2). */
INLINE void transpose_vl(vf *r)
{
#pragma GCC unroll 4
    for (int round = 1; round < VL; round *= 2) {
        vf t[VL];
#pragma GCC unroll 16
        for (int j = 0; j < VL / 2; j++) {
            t[2 * j] = vzip_lo(r[j], r[j + VL / 2]);
            t[2 * j + 1] = vzip_hi(r[j], r[j + VL / 2]);
        }
#pragma GCC unroll 16
        for (int j = 0; j < VL; j++)
            r[j] = t[j];
    }
}

/* ---- gemm ---------------------------------------------------------------- */

/* One micro-tile: mr rows of C times nv vectors, vector j at column offset
 * co[j] of C and bo[j] of every B row (so a tile may span several short
 * output rows). Vector j keeps only the lanes of tv[j]: for the stores when
 * mst, for the B loads too when mld (without mld the B rows must be
 * readable VL floats past their end: the lanes read there are computed and
 * dropped). relu: the stored values are max(v, 0) as relu_forward makes them.
 *   C[i][co[j] + l] = init_i + Σ_{k<kn} A[i*sam + k*sak] · B[boff[k] + bo[j] + l] */
INLINE void nn_tile(const int mr, const int nv, const int mld, const int mst, const vtail *tv,
                    const ptrdiff_t *bo, const ptrdiff_t *co, int kn, const float *A,
                    ptrdiff_t sam, ptrdiff_t sak, const float *B, const ptrdiff_t *boff, float *C,
                    ptrdiff_t ldc, int init, const float *bias, int relu)
{
    vf acc[MR][NVW];
    ptrdiff_t bo_[NVW];
#pragma GCC unroll 8
    for (int j = 0; j < nv; j++)
        bo_[j] = bo[j];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int j = 0; j < nv; j++) {
            if (init == INIT_LOAD)
                acc[i][j] = mst ? vload_t(C + i * ldc + co[j], tv[j]) : vload(C + i * ldc + co[j]);
            else if (init == INIT_BIAS)
                acc[i][j] = vset1(bias[i]);
            else
                acc[i][j] = vzero();
        }
    for (int k = 0; k < kn; k++) {
        const float *b = B + boff[k];
        const float *a = A + k * sak;
        vf bv[NVW];
#pragma GCC unroll 8
        for (int j = 0; j < nv; j++)
            bv[j] = mld ? vload_t(b + bo_[j], tv[j]) : vload(b + bo_[j]);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            vf av = vset1(a[i * sam]);
#pragma GCC unroll 8
            for (int j = 0; j < nv; j++)
                acc[i][j] = vfma(av, bv[j], acc[i][j]);
        }
    }
    if (relu) { /* as relu_forward: (0 > v) ? 0 : v */
        const vf z = vzero();
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
            for (int j = 0; j < nv; j++)
                acc[i][j] = vsel(vgt(z, acc[i][j]), acc[i][j], z);
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int j = 0; j < nv; j++) {
            if (mst)
                vstore_t(C + i * ldc + co[j], acc[i][j], tv[j]);
            else
                vstore(C + i * ldc + co[j], acc[i][j]);
        }
}

#define NN_ARGS tv, bo, co, kn, A, sam, sak, B, boff, C, ldc, init, bias, relu
#define NN_CASE(m, v, ld, st)                                                      \
    case (m) * 8 + (v): nn_tile(m, v, ld, st, NN_ARGS); break;
#define NN_ROWS(v, ld, st)                                                         \
    NN_CASE(4, v, ld, st) NN_CASE(3, v, ld, st) NN_CASE(2, v, ld, st) NN_CASE(1, v, ld, st)
#if NVW >= 4
#define NN_WIDE4(ld, st) NN_ROWS(3, ld, st) NN_ROWS(4, ld, st)
#else
#define NN_WIDE4(ld, st)
#endif
#if NVW >= 6
#define NN_WIDE6(ld, st) NN_ROWS(5, ld, st) NN_ROWS(6, ld, st)
#else
#define NN_WIDE6(ld, st)
#endif
#if MR == 8
#define NN_TALL(ld, st) NN_CASE(8, 1, ld, st) NN_CASE(8, 2, ld, st) NN_CASE(8, 3, ld, st)
#else
#define NN_TALL(ld, st)
#endif
/* mr in {MR, 4, 3, 2, 1}; nv <= NVW (<= NV8 when mr == 8) */
#define NN_FN(name, ld, st)                                                        \
    static void name(int mr, int nv, const vtail *tv, const ptrdiff_t *bo,         \
                     const ptrdiff_t *co, int kn, const float *A, ptrdiff_t sam,    \
                     ptrdiff_t sak, const float *B, const ptrdiff_t *boff, float *C, \
                     ptrdiff_t ldc, int init, const float *bias, int relu)         \
    {                                                                              \
        switch (mr * 8 + nv) {                                                     \
        NN_ROWS(1, ld, st)                                                         \
        NN_ROWS(2, ld, st)                                                         \
        NN_WIDE4(ld, st)                                                           \
        NN_WIDE6(ld, st)                                                           \
        NN_TALL(ld, st)                                                            \
        default: break;                                                            \
        }                                                                          \
    }
NN_FN(nn_full, 0, 0)
NN_FN(nn_mstore, 0, 1)
NN_FN(nn_masked, 1, 1)

typedef void (*nn_fn)(int mr, int nv, const vtail *tv, const ptrdiff_t *bo, const ptrdiff_t *co,
                      int kn, const float *A, ptrdiff_t sam, ptrdiff_t sak, const float *B,
                      const ptrdiff_t *boff, float *C, ptrdiff_t ldc, int init, const float *bias,
                      int relu);

static inline int tile_rows(int left)
{
    return left >= MR ? MR : left >= 4 ? 4 : left;
}

/* Row-structured gemm: for r < nrows, c < rowlen,
 *   C[i][r*cp + c] = (bias ? bias[i] : 0) + Σ_{k<K} A[i*sam + k*sak] · B[boff[k] + r*bp + c]
 * Short rows are packed several to a micro-tile, long rows are cut into
 * pieces. Each element is one fma chain in k order. slack: every B row
 * may be read VL floats past its end (see nn_tile). relu: store max(C, 0).
 * gemm_rows_acc: the same, the chain starting from C's value instead of
 * the bias (one chain over several calls). */
static void gemm_rows_init(int M, int nrows, int rowlen, ptrdiff_t bp, ptrdiff_t cp, int K,
                           const float *A, ptrdiff_t sam, ptrdiff_t sak, const float *B,
                           const ptrdiff_t *boff, float *C, ptrdiff_t ldc, const float *bias,
                           int slack, int relu, int load);

static void gemm_rows(int M, int nrows, int rowlen, ptrdiff_t bp, ptrdiff_t cp, int K,
                      const float *A, ptrdiff_t sam, ptrdiff_t sak, const float *B,
                      const ptrdiff_t *boff, float *C, ptrdiff_t ldc, const float *bias, int slack,
                      int relu)
{
    gemm_rows_init(M, nrows, rowlen, bp, cp, K, A, sam, sak, B, boff, C, ldc, bias, slack, relu, 0);
}

static void gemm_rows_acc(int M, int rowlen, int K, const float *A, ptrdiff_t sam, ptrdiff_t sak,
                          const float *B, const ptrdiff_t *boff, float *C, ptrdiff_t ldc)
{
    gemm_rows_init(M, 1, rowlen, 0, 0, K, A, sam, sak, B, boff, C, ldc, NULL, 1, 0, 1);
}

static void gemm_rows_init(int M, int nrows, int rowlen, ptrdiff_t bp, ptrdiff_t cp, int K,
                           const float *A, ptrdiff_t sam, ptrdiff_t sak, const float *B,
                           const ptrdiff_t *boff, float *C, ptrdiff_t ldc, const float *bias,
                           int slack, int relu, int load)
{
    int V = (rowlen + VL - 1) / VL; /* vectors per row */
    int ragged = rowlen % VL != 0;
    int nvmax = M >= MR ? NV8 : NVW;  /* tall tiles are narrower */
    vtail tfull = vtail_make(VL), tlast = vtail_make(rowlen - (V - 1) * VL);
    int R = V <= nvmax ? nvmax / V : 1;          /* rows per tile */
    int pieces = V <= nvmax ? 1 : (V + nvmax - 1) / nvmax;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kn = imin(KC, K - k0);
        int init = k0 || load ? INIT_LOAD : bias ? INIT_BIAS : INIT_ZERO;
        int act = relu && k0 + kn == K; /* on the last k block only */
        const float *Ak = A + k0 * sak;
        const ptrdiff_t *bk = boff + k0;
        for (int p = 0; p < pieces; p++) {
            ptrdiff_t bo[NVW], co[NVW];
            vtail tv[NVW];
            int nv = 0, have = -1; /* rows the geometry was made for */
            nn_fn fn = nn_full;
            for (int r0 = 0; r0 < nrows; r0 += R) {
                int rows = imin(R, nrows - r0);
                if (rows != have) { /* relative to the tile's first row: same for every full tile */
                    nv = 0;
                    int last = 0;
                    for (int r = 0; r < rows; r++)
                        for (int v = p * nvmax; v < imin(V, (p + 1) * nvmax); v++, nv++) {
                            bo[nv] = r * bp + v * VL;
                            co[nv] = r * cp + v * VL;
                            tv[nv] = v == V - 1 ? tlast : tfull;
                            last |= v == V - 1;
                        }
                    fn = !(ragged && last) ? nn_full : slack ? nn_mstore : nn_masked;
                    have = rows;
                }
                const float *Br = B + r0 * bp;
                float *Cr = C + r0 * cp;
                for (int i = 0, mr; i < M; i += mr) {
                    mr = tile_rows(M - i);
                    fn(mr, nv, tv, bo, co, kn, Ak + i * sam, sam, sak, Br, bk, Cr + i * ldc, ldc,
                       init, bias ? bias + i : NULL, act);
                }
            }
        }
    }
}

/* ---- convolution geometry -------------------------------------------------- */

/* Output position (oy, ox) of image i is column oy*ow + ox of y; for tap k
 * the matching source value is src[boff[k] + r*bp + c] with (r, c) =
 * (oy, ox) in the direct form (nrows = oh, rowlen = ow, bp = Wp) and
 * (0, oy*ow + ox) for im2col (one row of oh*ow). */
typedef struct conv_plan {
    const pl_conv2d_shape *s;
    int direct;        /* row form over planes of pitch Wp (stride 1, or phase); else im2col */
    int copy;          /* direct: the input must be copied into a padded plane */
    int phase;         /* direct: the planes are the padded input's phases (see conv_plan_phase) */
    int Hp, Wp;        /* direct: padded plane (phase: one phase plane) */
    int nrows, rowlen; /* see above */
    ptrdiff_t bp;
    int K;             /* cin*kh*kw */
    ptrdiff_t *boff;   /* [K] offset of tap k in the source */
    size_t src_floats; /* per-image source buffer incl. slack (0: the input is the source) */
    size_t src_used;   /* floats of it that are the padded planes or columns */
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
        p->src_used = p->copy ? (size_t)sh->cin * p->Hp * p->Wp : 0;
        /* slack: tiles read up to VL floats past a row (nn_tile), and the
         * copy below runs pad_w floats past the last plane */
        p->src_floats = p->copy ? p->src_used + VL + p->Wp : 0;
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
        p->src_used = (size_t)p->K * Qs;
        p->src_floats = p->src_used + VL;
        for (int k = 0; k < p->K; k++)
            p->boff[k] = (ptrdiff_t)k * Qs;
    }
    return PL_OK;
}

/* The forward of a strided convolution over phase planes instead of
 * im2col. Phase (py, px) of the zero-padded input is the plane
 *   P[a][b] = padded[a*sh + py][b*sw + px],
 * so tap (ky, kx) of output (oy, ox) reads P(ky%sh, kx%sw)[oy + ky/sh][ox + kx/sw]:
 * a stride-1 read, and the stride-1 row form (and its long-row variant)
 * applies as it is. Only the phases some tap reads are built (py <
 * min(kh, sh), px < min(kw, sw)). Taken where im2col would write each input
 * value more than once (kh*kw taps over fewer phases: a 3x3 stride-2
 * convolution writes 4 planes instead of 9 columns, each with contiguous
 * stores); a 1x1 or kernel == stride convolution keeps im2col. Every output
 * is the same fma chain in the same k order as with im2col (the value of a
 * tap is the same input value or the same +0 of padding), so the results
 * are bit-identical. Forward only: the gradients keep their own forms. */
static size_t phase_row_floats(const conv_plan *p)
{
    return (size_t)2 * ROUND_VL(p->Wp) + VL;
}

static void conv_plan_phase(conv_plan *p)
{
    const pl_conv2d_shape *sh = p->s;
    int ny = imin(sh->kh, sh->stride_h), nx = imin(sh->kw, sh->stride_w);
    if (p->direct || sh->kh * sh->kw <= ny * nx)
        return;
    p->direct = p->copy = p->phase = 1;
    p->Hp = sh->oh + (sh->kh - 1) / sh->stride_h;
    p->Wp = sh->ow + (sh->kw - 1) / sh->stride_w;
    p->nrows = sh->oh;
    p->rowlen = sh->ow;
    p->bp = p->Wp;
    p->src_used = (size_t)sh->cin * ny * nx * p->Hp * p->Wp;
    /* slack: tiles read up to VL floats past a row (nn_tile); then the
     * padded input row phase_source splits (two vectors per output vector) */
    p->src_floats = p->src_used + VL + p->Wp + phase_row_floats(p);
    int k = 0;
    for (int ci = 0; ci < sh->cin; ci++)
        for (int ky = 0; ky < sh->kh; ky++)
            for (int kx = 0; kx < sh->kw; kx++) {
                int plane = (ci * ny + ky % sh->stride_h) * nx + kx % sh->stride_w;
                p->boff[k++] = ((ptrdiff_t)plane * p->Hp + ky / sh->stride_h) * p->Wp + kx / sh->stride_w;
            }
}

/* d[b] = xr[b*sw + off] where 0 <= b*sw + off < w, else 0, for b < n */
INLINE void strided_row(float *d, const float *xr, int w, int n, int sw, int off)
{
    /* columns whose source lies inside the row: [a, b) */
    int lo = -off, hi = w - 1 - off;
    int a = imin(lo > 0 ? (lo + sw - 1) / sw : 0, n);
    int b = hi < 0 ? 0 : imin(n, hi / sw + 1);
    if (b < a)
        b = a;
    for (int i = 0; i < a; i++)
        d[i] = 0.0f;
    if (sw == 1) {
        copy_row(d + a, xr + a + off, b - a);
    } else if (sw == 2) { /* the even floats of a span of 2*len - 1 */
        for (int i = a; i < b; i += VL) {
            int len = imin(VL, b - i), span = 2 * len - 1;
            const float *r = xr + 2 * i + off;
            vf lo_ = span >= VL ? vload(r) : vload_t(r, vtail_make(span));
            vf hi_ = span > VL ? vload_t(r + VL, vtail_make(span - VL)) : vzero();
            if (len == VL)
                vstore(d + i, veven(lo_, hi_));
            else
                vstore_t(d + i, veven(lo_, hi_), vtail_make(len));
        }
    } else {
        for (int i = a; i < b; i++)
            d[i] = xr[i * sw + off];
    }
    for (int i = b; i < n; i++)
        d[i] = 0.0f;
}

/* The phase planes of one image (see conv_plan_phase), slack zeroed. With
 * stride_w 2 each input row is padded once into a scratch row whose even
 * and odd floats are the two column phases (the same two loads for both);
 * other strides go column phase by column phase. */
static const float *phase_source(const conv_plan *p, const float *x, float *buf)
{
    const pl_conv2d_shape *s = p->s;
    int ny = imin(s->kh, s->stride_h), nx = imin(s->kw, s->stride_w);
    size_t plane = (size_t)p->Hp * p->Wp;
    float *row = buf + p->src_used + VL + p->Wp;
    int rl = (int)phase_row_floats(p);
    for (int ci = 0; ci < s->cin; ci++) {
        const float *xs = x + (size_t)ci * s->h * s->w;
        for (int py = 0; py < ny; py++) {
            float *d0 = buf + (size_t)(ci * ny + py) * nx * plane;
            for (int a = 0; a < p->Hp; a++) {
                int iy = a * s->stride_h + py - s->pad_h;
                float *d = d0 + (size_t)a * p->Wp;
                if (iy < 0 || iy >= s->h) {
                    for (int px = 0; px < nx; px++)
                        zero_row(d + px * plane, p->Wp);
                    continue;
                }
                const float *xr = xs + (size_t)iy * s->w;
                if (s->stride_w == 2 && nx == 2 && s->pad_w + s->w <= rl) {
                    zero_row(row, s->pad_w);
                    copy_row_pad(row + s->pad_w, xr, s->w, rl - s->pad_w);
                    for (int b = 0; b < p->Wp; b += VL) {
                        vf lo = vload(row + 2 * b), hi = vload(row + 2 * b + VL);
                        if (b + VL <= p->Wp) {
                            vstore(d + b, veven(lo, hi));
                            vstore(d + plane + b, vodd(lo, hi));
                        } else {
                            vtail t = vtail_make(p->Wp - b);
                            vstore_t(d + b, veven(lo, hi), t);
                            vstore_t(d + plane + b, vodd(lo, hi), t);
                        }
                    }
                } else {
                    for (int px = 0; px < nx; px++)
                        strided_row(d + px * plane, xr, s->w, p->Wp, s->stride_w, px - s->pad_w);
                }
            }
        }
    }
    zero_row(buf + p->src_used, VL + p->Wp);
    return buf;
}

/* The source of one image: the input itself, a zero-padded copy, or im2col. */
static const float *conv_source(const conv_plan *p, const float *x, float *buf)
{
    const pl_conv2d_shape *s = p->s;
    if (p->phase)
        return phase_source(p, x, buf);
    if (p->direct && !p->copy)
        return x;
    if (p->direct) {
        /* zeroing all of it with full stores, then copying the rows, beats
         * writing each float once with ragged masked stores */
        zero_row(buf, (int)p->src_floats);
        for (int ci = 0; ci < s->cin; ci++) {
            float *d = buf + ((size_t)ci * p->Hp + s->pad_h) * p->Wp + s->pad_w;
            const float *xs = x + (size_t)ci * s->h * s->w;
            for (int iy = 0; iy < s->h; iy++) /* spills zeros into the padding */
                copy_row_over(d + (size_t)iy * p->Wp, xs + (size_t)iy * s->w, s->w, s->w);
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
                    strided_row(c, xs + (size_t)iy * s->w, s->w, s->ow, s->stride_w, kx - s->pad_w);
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
    int relu;
    /* optional: run on each finished image's output planes [p0, p1) */
    void (*after)(const void *ctx, int64_t p0, int64_t p1);
    const void *after_ctx;
} conv_fwd_job;

/* The direct form over one long row: q = oy*Wp + ox for q < (oh-1)*Wp + ow,
 * the Wp - ow gap columns computed too and dropped. Worth it where an
 * output row leaves more of its last vector empty than the gap costs
 * (ow 28: 30 floats of work a row instead of 32 and full 8 x 3 tiles
 * instead of 8 x 2; ow 7: 9 instead of 16). Only with the padded copy,
 * whose slack covers the reads past the last row, and with K >= 32: with
 * fewer taps (a first layer's 9) the extra pass that copies the rows out
 * costs more than it saves (resnet20's stem: 250 -> 325 us). */
static int fwd_long_row(const conv_plan *p)
{
    return p->direct && p->copy && p->K >= 32 && p->Wp < ROUND_VL(p->s->ow);
}

static size_t fwd_long_ld(const conv_plan *p)
{
    return (size_t)ROUND_VL((p->s->oh - 1) * p->Wp + p->s->ow);
}

static void conv_fwd_task(void *ctx, int64_t t, int worker)
{
    conv_fwd_job *j = ctx;
    const conv_plan *p = j->p;
    const pl_conv2d_shape *s = p->s;
    size_t plane = (size_t)s->oh * s->ow;
    float *buf = pl__simd_wbuf(j->s, worker);
    const float *src = conv_source(p, j->x + (size_t)t * p->in_img, buf);
    float *y = j->y + (size_t)t * s->cout * plane;
    if (fwd_long_row(p)) {
        /* each element is the same fma chain as in the row form */
        size_t ld = fwd_long_ld(p);
        float *c = buf + p->src_floats;
        gemm_rows(s->cout, 1, (s->oh - 1) * p->Wp + s->ow, 0, 0, p->K, j->w, p->K, 1, src, p->boff,
                  c, (ptrdiff_t)ld, j->b, 1, j->relu);
        for (int co = 0; co < s->cout; co++)
            for (int oy = 0; oy < s->oh; oy++)
                copy_row(y + (size_t)co * plane + (size_t)oy * s->ow, c + co * ld + (size_t)oy * p->Wp, s->ow);
    } else {
        gemm_rows(s->cout, p->nrows, p->rowlen, p->bp, p->rowlen, p->K, j->w, p->K, 1, src, p->boff,
                  y, (ptrdiff_t)plane, j->b, p->src_floats != 0, j->relu);
    }
    if (j->after)
        j->after(j->after_ctx, t * s->cout, (t + 1) * s->cout);
}

/* ---- conv2d forward: Winograd F(2x2, 3x3) ------------------------------------ */

/* A 3x3 stride-1 convolution computes each 2x2 block of outputs from the
 * 4x4 input tile under it with 16 multiplications per channel pair instead
 * of 36 (Lavin & Gray 2016):
 *   Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A,
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],
 *   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],  A^T = [1 1 1 0; 0 1 -1 -1].
 * Summed over input channels, the 16 elementwise products become 16 gemms
 *   M_xi[t][co] = Σ_ci V_xi[t][ci] · U_xi[ci][co]
 * over the image's tiles t. Channels are the vector lanes throughout: the
 * image is first transposed to padded channel-last planes (one vector per
 * pixel), V and the output transform work on channel vectors, and the
 * outputs are transposed back to channel planes. Per image, in one task:
 * the results depend on neither the thread count nor the batch. The float
 * rounding differs from the direct form (by about 1e-6 relative; the
 * backend tests hold it to ref like every kernel). Taken for 3x3 stride 1
 * with padding up to 2 (so also the input gradient of such a layer, which
 * is this forward over rotated weights) and at least 16 channels on both
 * sides: with fewer the transforms cost more than the multiplications
 * saved. */
typedef struct wino_job {
    pl__simd *s;
    const pl_conv2d_shape *sh;
    const float *x, *U, *b;
    const ptrdiff_t *boff; /* row offsets of the gemms' B: U_xi's [cin] (forward), V_xi's [T] (weight gradient) */
    float *y;
    int relu;
    int TH, TW, T;  /* tile rows, columns, count */
    int Hq, Wq;     /* padded channel-last input: Hq x Wq pixels of Cp floats */
    int Cp, Cop;    /* cin, cout rounded up to vectors */
    size_t n_in, n_v, n_m; /* floats of the three per-image buffers */
    void (*after)(const void *ctx, int64_t p0, int64_t p1);
    const void *after_ctx;
} wino_job;

/* tiles and buffer geometry of j->sh */
static void wino_geom(wino_job *j)
{
    const pl_conv2d_shape *sh = j->sh;
    j->TH = (sh->oh + 1) / 2;
    j->TW = (sh->ow + 1) / 2;
    j->T = j->TH * j->TW;
    j->Hq = 2 * j->TH + 2;
    j->Wq = 2 * j->TW + 2;
    j->Cp = ROUND_VL(sh->cin);
    j->Cop = ROUND_VL(sh->cout);
}

static int wino_ok(const pl_conv2d_shape *sh)
{
    return sh->kh == 3 && sh->kw == 3 && sh->stride_h == 1 && sh->stride_w == 1 && sh->pad_h <= 2 &&
           sh->pad_w <= 2 && sh->cin >= 16 && sh->cout >= 16;
}

/* U[xi][ci][co] (rows of Cop floats, zero past cout) = G g G^T of w[co][ci] */
static void wino_filters(const float *w, int cout, int cin, int Cop, float *U)
{
    memset(U, 0, sizeof(float) * 16 * (size_t)cin * Cop);
    for (int co = 0; co < cout; co++)
        for (int ci = 0; ci < cin; ci++) {
            const float *g = w + ((size_t)co * cin + ci) * 9;
            float t[4][3], u[4][4];
            for (int c = 0; c < 3; c++) { /* G g */
                float g0 = g[c], g1 = g[3 + c], g2 = g[6 + c];
                t[0][c] = g0;
                t[1][c] = 0.5f * (g0 + g1 + g2);
                t[2][c] = 0.5f * (g0 - g1 + g2);
                t[3][c] = g2;
            }
            for (int r = 0; r < 4; r++) { /* (G g) G^T */
                u[r][0] = t[r][0];
                u[r][1] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
                u[r][2] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
                u[r][3] = t[r][2];
            }
            for (int xi = 0; xi < 16; xi++)
                U[((size_t)xi * cin + ci) * Cop + co] = u[xi / 4][xi % 4];
        }
}

/* dst[((r + pt)*Wd + c + pl)*Cd + ch] = src[ch][r][c] for the C x H x W
 * planes of src: channel-last pixels, a vector of channels each (16 x 16
 * blocks transposed in registers); dst's other floats are left as they are */
static void to_pixels(const float *src, int C, int H, int W, int pt, int pl, float *dst, int Wd, int Cd)
{
    for (int c0 = 0; c0 < C; c0 += VL) {
        int nc = imin(VL, C - c0);
        for (int iy = 0; iy < H; iy++)
            for (int ix0 = 0; ix0 < W; ix0 += VL) {
                int np = imin(VL, W - ix0);
                vtail tp = vtail_make(np);
                vf r[VL];
                for (int c = 0; c < VL; c++)
                    r[c] = c < nc ? vload_t(src + ((size_t)(c0 + c) * H + iy) * W + ix0, tp) : vzero();
                transpose_vl(r); /* r[p]: pixel ix0 + p, channels c0 .. */
                float *d = dst + ((size_t)(iy + pt) * Wd + ix0 + pl) * Cd + c0;
                for (int p = 0; p < np; p++)
                    vstore(d + (size_t)p * Cd, r[p]);
            }
    }
}

/* in[(r*Wq + c)*Cp + ci] = x[ci][r - ph][c - pw] (0 outside; in zeroed before) */
static void wino_to_pixels(const wino_job *j, const float *x, float *in)
{
    const pl_conv2d_shape *s = j->sh;
    to_pixels(x, s->cin, s->h, s->w, s->pad_h, s->pad_w, in, j->Wq, j->Cp);
}

/* V[xi][t][ci] = (B^T d B)[xi] of tile t for every channel vector */
static void wino_input(const wino_job *j, const float *in, float *V)
{
    size_t xs = (size_t)j->T * j->Cp;
    for (int ty = 0; ty < j->TH; ty++)
        for (int tx = 0; tx < j->TW; tx++) {
            const float *d0 = in + ((size_t)(2 * ty) * j->Wq + 2 * tx) * j->Cp;
            float *v0 = V + (size_t)(ty * j->TW + tx) * j->Cp;
            for (int cb = 0; cb < j->Cp; cb += VL) {
                vf e[4][4];
                for (int c = 0; c < 4; c++) { /* B^T d, column by column */
                    const float *q = d0 + (size_t)c * j->Cp + cb;
                    vf a0 = vload(q), a1 = vload(q + (size_t)j->Wq * j->Cp);
                    vf a2 = vload(q + (size_t)2 * j->Wq * j->Cp), a3 = vload(q + (size_t)3 * j->Wq * j->Cp);
                    e[0][c] = vsub(a0, a2);
                    e[1][c] = vadd(a1, a2);
                    e[2][c] = vsub(a2, a1);
                    e[3][c] = vsub(a1, a3);
                }
                for (int r = 0; r < 4; r++) { /* (B^T d) B */
                    float *v = v0 + (size_t)(4 * r) * xs + cb;
                    vstore(v, vsub(e[r][0], e[r][2]));
                    vstore(v + xs, vadd(e[r][1], e[r][2]));
                    vstore(v + 2 * xs, vsub(e[r][2], e[r][1]));
                    vstore(v + 3 * xs, vsub(e[r][1], e[r][3]));
                }
            }
        }
}

/* y[co][oy][ox] = A^T M A (+ bias, ReLU) through channel-last pixel rows
 * `out` (OH*OW pixels of Cop floats), then transposed to channel planes */
static void wino_output(const wino_job *j, const float *M, float *out, float *y)
{
    const pl_conv2d_shape *s = j->sh;
    size_t xs = (size_t)j->T * j->Cop;
    const vf z = vzero();
    for (int ty = 0; ty < j->TH; ty++)
        for (int tx = 0; tx < j->TW; tx++) {
            const float *m0 = M + (size_t)(ty * j->TW + tx) * j->Cop;
            int ny = imin(2, s->oh - 2 * ty), nx = imin(2, s->ow - 2 * tx);
            for (int cb = 0; cb < j->Cop; cb += VL) {
                vf t[2][4];
                for (int c = 0; c < 4; c++) { /* A^T M, column by column */
                    const float *q = m0 + (size_t)c * xs + cb;
                    vf a0 = vload(q), a1 = vload(q + 4 * xs), a2 = vload(q + 8 * xs), a3 = vload(q + 12 * xs);
                    t[0][c] = vadd(vadd(a0, a1), a2);
                    t[1][c] = vsub(vsub(a1, a2), a3);
                }
                vf bias = vzero();
                if (j->b)
                    bias = cb + VL <= s->cout ? vload(j->b + cb)
                                              : cb < s->cout ? vload_t(j->b + cb, vtail_make(s->cout - cb)) : z;
                for (int r = 0; r < ny; r++) { /* (A^T M) A */
                    vf o[2] = {vadd(vadd(vadd(t[r][0], t[r][1]), t[r][2]), bias),
                               vadd(vsub(vsub(t[r][1], t[r][2]), t[r][3]), bias)};
                    for (int c = 0; c < nx; c++) {
                        vf v = j->relu ? vsel(vgt(z, o[c]), o[c], z) : o[c];
                        vstore(out + ((size_t)(2 * ty + r) * s->ow + 2 * tx + c) * j->Cop + cb, v);
                    }
                }
            }
        }
    size_t P = (size_t)s->oh * s->ow;
    for (int cb = 0; cb < s->cout; cb += VL) {
        int nc = imin(VL, s->cout - cb);
        for (size_t p0 = 0; p0 < P; p0 += VL) {
            int np = (int)(P - p0 < VL ? P - p0 : VL);
            vf r[VL];
            for (int p = 0; p < VL; p++)
                r[p] = p < np ? vload(out + (p0 + p) * j->Cop + cb) : vzero();
            transpose_vl(r); /* r[c]: channel cb + c, pixels p0 .. */
            vtail tp = vtail_make(np);
            for (int c = 0; c < nc; c++) {
                float *d = y + (size_t)(cb + c) * P + p0;
                if (np == VL)
                    vstore(d, r[c]);
                else
                    vstore_t(d, r[c], tp);
            }
        }
    }
}

static void wino_task(void *ctx, int64_t t, int worker)
{
    const wino_job *j = ctx;
    const pl_conv2d_shape *s = j->sh;
    float *in = pl__simd_wbuf(j->s, worker), *V = in + j->n_in, *M = V + j->n_v;
    zero_row(in, (int)j->n_in);
    wino_to_pixels(j, j->x + (size_t)t * s->cin * s->h * s->w, in);
    wino_input(j, in, V);
    for (int xi = 0; xi < 16; xi++)
        /* whole vectors of Cop columns: U is 0 past cout, so M is too */
        gemm_rows(j->T, 1, j->Cop, 0, 0, s->cin, V + (size_t)xi * j->T * j->Cp, j->Cp, 1,
                  j->U + (size_t)xi * s->cin * j->Cop, j->boff, M + (size_t)xi * j->T * j->Cop, j->Cop,
                  NULL, 1, 0);
    /* the padded input is no longer needed: its room holds the output pixels */
    wino_output(j, M, in, j->y + (size_t)t * s->cout * s->oh * s->ow);
    if (j->after)
        j->after(j->after_ctx, t * s->cout, (t + 1) * s->cout);
}

static pl_status wino_forward(pl__simd *s, const pl_conv2d_shape *sh, const float *x, const float *w,
                              const float *b, float *y, int relu,
                              void (*after)(const void *, int64_t, int64_t), const void *after_ctx)
{
    wino_job j = {.s = s, .sh = sh, .x = x, .b = b, .y = y, .relu = relu, .after = after,
                  .after_ctx = after_ctx};
    wino_geom(&j);
    size_t out = (size_t)sh->oh * sh->ow * j.Cop;
    j.n_in = (size_t)j.Hq * j.Wq * j.Cp;
    if (j.n_in < out)
        j.n_in = out;
    j.n_v = (size_t)16 * j.T * j.Cp;
    j.n_m = (size_t)16 * j.T * j.Cop;
    float *U = pl__simd_slot(s, SLOT_WINO, (size_t)16 * sh->cin * j.Cop);
    ptrdiff_t *uoff = (ptrdiff_t *)(void *)pl__simd_slot(s, SLOT_OFF, (size_t)sh->cin * sizeof(ptrdiff_t) / sizeof(float) + 1);
    if (!U || !uoff)
        return PL_ENOMEM;
    pl_status st = pl__simd_reserve(s, j.n_in + j.n_v + j.n_m);
    if (st)
        return st;
    wino_filters(w, sh->cout, sh->cin, j.Cop, U);
    for (int ci = 0; ci < sh->cin; ci++)
        uoff[ci] = (ptrdiff_t)ci * j.Cop;
    j.U = U;
    j.boff = uoff;
    pl__simd_run(s, sh->n, 2.0 * sh->n * sh->cout * sh->cin * 9.0 * sh->oh * sh->ow, wino_task, &j);
    return PL_OK;
}

static pl_status conv_forward_plan(pl__simd *s, const pl_conv2d_shape *sh, const float *x,
                                   const float *w, const float *b, float *y, int relu,
                                   void (*after)(const void *, int64_t, int64_t),
                                   const void *after_ctx)
{
    if (wino_ok(sh))
        return wino_forward(s, sh, x, w, b, y, relu, after, after_ctx);
    conv_plan p;
    pl_status st = conv_plan_make(s, sh, SLOT_OFF, &p);
    if (st)
        return st;
    conv_plan_phase(&p);
    if ((st = pl__simd_reserve(s, p.src_floats + (fwd_long_row(&p) ? (size_t)sh->cout * fwd_long_ld(&p) : 0))))
        return st;
    conv_fwd_job j = {.s = s, .p = &p, .x = x, .w = w, .b = b, .y = y, .relu = relu,
                      .after = after, .after_ctx = after_ctx};
    pl__simd_run(s, sh->n, 2.0 * sh->n * sh->cout * p.K * sh->oh * sh->ow, conv_fwd_task, &j);
    return PL_OK;
}

static pl_status k_conv2d_forward(pl__simd *s, const pl_conv2d_shape *sh, const float *x,
                                  const float *w, const float *b, float *y)
{
    if (!pl__simd_conv_shape_ok(sh))
        return pl__simd_fail(s, PL_EINVAL, "conv2d: inconsistent shape");
    return conv_forward_plan(s, sh, x, w, b, y, 0, NULL, NULL);
}

/* the same with ReLU applied in the tile epilogue: y never makes a round
 * trip through memory between the two */
static pl_status k_conv2d_forward_relu(pl__simd *s, const pl_conv2d_shape *sh, const float *x,
                                       const float *w, const float *b, float *y)
{
    if (!pl__simd_conv_shape_ok(sh))
        return pl__simd_fail(s, PL_EINVAL, "conv2d: inconsistent shape");
    return conv_forward_plan(s, sh, x, w, b, y, 1, NULL, NULL);
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
              j->dyoff, dcol, Qs, NULL, 0, 0);
    memset(dx, 0, sizeof(float) * p->in_img);
    /* col2im: every dx element receives its taps' values in k order. With
     * stride 2 along x a tap's row lands on every other float: the row is
     * interleaved with zeros and added on the even lanes only (the odd
     * lanes are kept as loaded), the same additions in the same order. */
    const vf z = vzero();
    const vmask even = vgt(vzip_lo(vset1(1.0f), z), z);
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
                    if (s->stride_w == 2) {
                        /* outputs whose input column lies inside the row: [oxa, oxb) */
                        int lo = s->pad_w - kx, hi = s->w - 1 + s->pad_w - kx;
                        int oxa = imin(lo > 0 ? (lo + 1) / 2 : 0, s->ow);
                        int oxb = hi < 0 ? 0 : imin(s->ow, hi / 2 + 1);
                        const float *cr = c + oy * s->ow;
                        for (int ox = oxa; ox < oxb; ox += VL) {
                            int len = imin(VL, oxb - ox), span = 2 * len - 1;
                            vf cv = vload_t(cr + ox, vtail_make(len));
                            float *dd = d + (size_t)iy * s->w + 2 * ox - s->pad_w + kx;
                            vtail t0 = vtail_make(imin(span, VL));
                            vf d0 = vload_t(dd, t0);
                            vstore_t(dd, vsel(even, d0, vadd(d0, vzip_lo(cv, z))), t0);
                            if (span > VL) {
                                vtail t1 = vtail_make(span - VL);
                                vf d1 = vload_t(dd + VL, t1);
                                vstore_t(dd + VL, vsel(even, d1, vadd(d1, vzip_hi(cv, z))), t1);
                            }
                        }
                        continue;
                    }
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
        return conv_forward_plan(s, &t, dy, wt, NULL, dx, 0, NULL, NULL);
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

#if PL_SIMD_ISA == 3
#define WMR 4 /* weight-gradient tile: 4 output channels x 6 taps */
#define WNR 6
#elif PL_SIMD_ISA == 2
#define WMR 2
#define WNR 5
#else
#define WMR 2
#define WNR 4
#endif

/* Lane-wise partial sums of an mr x nr tile of dw over gn images:
 *   acc[r][c] += Σ_g Σ_row Σ_v  A(g, r, row, v) · B(g, c, row, v)
 * where A(g, r, ...) is row `row` of dy's channel i0+r of image g (pitch
 * ap) and B(g, c, ...) the same row of tap j0+c of the image's source
 * (pitch bp). The ragged last vector of a row is loaded with both operands
 * zero-filled, so lanes past the row add exactly nothing. acc starts at 0
 * (first) or from `lane` ([r][c][VL], row pitch ldl); it ends in `lane`,
 * or, when final, as its horizontal sums in out[r*ldo + c]. */
INLINE void dw_tile(const int mr, const int nr, int gn, int nrows, int rowlen, const float *A,
                    ptrdiff_t ag, ptrdiff_t lda, ptrdiff_t ap, const float *B, ptrdiff_t bg,
                    const ptrdiff_t *boff, ptrdiff_t bp, float *lane, ptrdiff_t ldl, int first,
                    int final, float *out, ptrdiff_t ldo)
{
    vf acc[WMR][WNR];
    int vf_ = rowlen / VL * VL;
    vtail tm = vtail_make(rowlen > vf_ ? rowlen - vf_ : VL);
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 8
        for (int c = 0; c < nr; c++)
            acc[r][c] = first ? vzero() : vload(lane + r * ldl + c * VL);
    for (int g = 0; g < gn; g++) {
        const float *pa[WMR], *pb[WNR];
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++)
            pa[r] = A + g * ag + r * lda;
#pragma GCC unroll 8
        for (int c = 0; c < nr; c++)
            pb[c] = B + g * bg + boff[c];
        for (int row = 0; row < nrows; row++) {
            int q = 0;
            for (; q < vf_; q += VL) {
                vf av[WMR];
#pragma GCC unroll 8
                for (int r = 0; r < mr; r++)
                    av[r] = vload(pa[r] + q);
#pragma GCC unroll 8
                for (int c = 0; c < nr; c++) {
                    vf bv = vload(pb[c] + q);
#pragma GCC unroll 8
                    for (int r = 0; r < mr; r++)
                        acc[r][c] = vfma(av[r], bv, acc[r][c]);
                }
            }
            if (q < rowlen) {
                vf av[WMR];
#pragma GCC unroll 8
                for (int r = 0; r < mr; r++)
                    av[r] = vload_t(pa[r] + q, tm);
#pragma GCC unroll 8
                for (int c = 0; c < nr; c++) {
                    vf bv = vload_t(pb[c] + q, tm);
#pragma GCC unroll 8
                    for (int r = 0; r < mr; r++)
                        acc[r][c] = vfma(av[r], bv, acc[r][c]);
                }
            }
#pragma GCC unroll 8
            for (int r = 0; r < mr; r++)
                pa[r] += ap;
#pragma GCC unroll 8
            for (int c = 0; c < nr; c++)
                pb[c] += bp;
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 8
        for (int c = 0; c < nr; c++) {
            if (final)
                out[r * ldo + c] = vhsum(acc[r][c]);
            else
                vstore(lane + r * ldl + c * VL, acc[r][c]);
        }
}

#define DW_ARGS gn, nrows, rowlen, A, ag, lda, ap, B, bg, boff, bp, lane, ldl, first, final, out, ldo
#define DW_COLS(m)                                                                 \
    switch (nr) {                                                                  \
    case 1: dw_tile(m, 1, DW_ARGS); break;                                         \
    case 2: dw_tile(m, 2, DW_ARGS); break;                                         \
    case 3: dw_tile(m, 3, DW_ARGS); break;                                         \
    DW_WIDE(m)                                                                     \
    default: dw_tile(m, WNR, DW_ARGS); break;                                      \
    }
#if WNR == 6
#define DW_WIDE(m) case 4: dw_tile(m, 4, DW_ARGS); break; case 5: dw_tile(m, 5, DW_ARGS); break;
#elif WNR == 5
#define DW_WIDE(m) case 4: dw_tile(m, 4, DW_ARGS); break;
#else
#define DW_WIDE(m)
#endif
static void dw_tiles(int mr, int nr, int gn, int nrows, int rowlen, const float *A, ptrdiff_t ag,
                     ptrdiff_t lda, ptrdiff_t ap, const float *B, ptrdiff_t bg,
                     const ptrdiff_t *boff, ptrdiff_t bp, float *lane, ptrdiff_t ldl, int first,
                     int final, float *out, ptrdiff_t ldo)
{
#if WMR == 4
    if (mr == 4) {
        DW_COLS(4)
        return;
    }
    if (mr == 3) {
        DW_COLS(3)
        return;
    }
#endif
    if (mr == 2) {
        DW_COLS(2)
    } else {
        DW_COLS(1)
    }
}

typedef struct conv_dw_job {
    pl__simd *s;
    const conv_plan *p;
    const float *x, *dy;
    float *part; /* [chunks][cout*K + cout] */
    int chunk;   /* images per chunk */
    int group;   /* images per pass over the tiles */
    int want_db;
} conv_dw_job;

/* Per chunk of images:
 *   part_dw[co][k] = Σ_img Σ_(oy,ox) dy[co][oy][ox] · src[boff[k] + oy*bp + ox]
 *   part_db[co]    = Σ_img Σ dy[co]
 * The direct form with output rows wider than a vector reads dy and the
 * source row by row (the ragged end of each row zero-filled in both). With
 * narrower rows it runs over q = oy*Wp + ox as one long row, with dy copied
 * to pitch Wp and zeros in the Wp - ow gap columns (so only the very last
 * vector is ragged; a gap lane adds 0 · src, exactly nothing for finite
 * inputs): a masked load per 14-float row would cost more than the copy.
 * im2col runs over one row of oh*ow. The chunk's images are taken `group`
 * at a time so that their dy and sources stay in L1 across all tiles;
 * lane-wise partial sums carry over between groups in the worker buffer. */
static int dw_by_rows(const conv_plan *p)
{
    return p->direct && p->Wp != p->s->ow && p->s->ow > VL;
}

static int dw_repitch(const conv_plan *p)
{
    return p->direct && p->Wp != p->s->ow && !dw_by_rows(p);
}

/* db[co] = Σ over ng images' dy planes of channel co (P floats each) */
static void dw_db_sums(const float *dy, int ng, int M, size_t P, float *db)
{
    int pf = (int)P / VL * VL;
    vtail tm = vtail_make((int)P > pf ? (int)P - pf : VL);
    for (int co = 0; co < M; co++) { /* four chains: an add's latency is 4 cycles */
        vf acc[4] = {vzero(), vzero(), vzero(), vzero()};
        for (int g = 0; g < ng; g++) {
            const float *r = dy + ((size_t)g * M + co) * P;
            int q = 0;
            for (; q + 4 * VL <= pf; q += 4 * VL)
                for (int u = 0; u < 4; u++)
                    acc[u] = vadd(acc[u], vload(r + q + u * VL));
            for (; q < pf; q += VL)
                acc[0] = vadd(acc[0], vload(r + q));
            if (q < (int)P)
                acc[1] = vadd(acc[1], vload_t(r + q, tm));
        }
        db[co] = vhsum(vadd(vadd(acc[0], acc[1]), vadd(acc[2], acc[3])));
    }
}

static void conv_dw_task(void *ctx, int64_t t, int worker)
{
    conv_dw_job *j = ctx;
    const conv_plan *p = j->p;
    const pl_conv2d_shape *s = p->s;
    int i0 = (int)t * j->chunk, ng = imin(j->chunk, s->n - i0);
    int M = s->cout, N = p->K;
    size_t P = (size_t)s->oh * s->ow;
    int repitch = dw_repitch(p), by_rows = dw_by_rows(p);
    int Q = repitch ? (s->oh - 1) * p->Wp + s->ow : (int)P;
    /* dy floats per channel as read; a repitched channel has VL floats of
     * room for the spill of its last row */
    size_t LQ = repitch ? (size_t)ROUND_VL(Q) + VL : P;
    float *buf = pl__simd_wbuf(j->s, worker);
    float *dq = buf + (size_t)j->group * p->src_floats;
    float *lane = dq + (repitch ? (size_t)j->group * M * LQ : 0);
    float *part = j->part + (size_t)t * ((size_t)M * N + M);
    for (int g0 = 0; g0 < ng; g0 += j->group) {
        int gn = imin(j->group, ng - g0);
        const float *src;
        ptrdiff_t bg;
        if (p->src_floats == 0) {
            src = j->x + (size_t)(i0 + g0) * p->in_img;
            bg = (ptrdiff_t)p->in_img;
        } else {
            for (int g = 0; g < gn; g++)
                conv_source(p, j->x + (size_t)(i0 + g0 + g) * p->in_img, buf + (size_t)g * p->src_floats);
            src = buf;
            bg = (ptrdiff_t)p->src_floats;
        }
        const float *dy = j->dy + (size_t)(i0 + g0) * M * P;
        if (repitch) {
            /* copy (see copy_row_over) and, while dy is in registers, add it
             * up for db: four chains rotating over the row vectors */
            int of = s->ow / VL * VL;
            vtail tr = vtail_make(s->ow > of ? s->ow - of : VL);
            for (int co = 0; co < M; co++) {
                vf ch[4] = {vzero(), vzero(), vzero(), vzero()};
                int c = 0;
                for (int g = 0; g < gn; g++) {
                    float *d = dq + ((size_t)g * M + co) * LQ;
                    const float *ds = dy + ((size_t)g * M + co) * P;
                    for (int oy = 0; oy < s->oh; oy++, d += p->Wp, ds += s->ow) {
                        int m = oy + 1 < s->oh ? p->Wp : s->ow, i = 0;
                        for (; i < of; i += VL, c = (c + 1) & 3) {
                            vf v = vload(ds + i);
                            vstore(d + i, v);
                            ch[c] = vadd(ch[c], v);
                        }
                        if (i < s->ow) {
                            vf v = vload_t(ds + i, tr);
                            vstore(d + i, v);
                            ch[c] = vadd(ch[c], v);
                            c = (c + 1) & 3;
                            i += VL;
                        }
                        for (; i < m; i += VL)
                            vstore(d + i, vzero());
                    }
                }
                if (j->want_db) {
                    float sum = vhsum(vadd(vadd(ch[0], ch[1]), vadd(ch[2], ch[3])));
                    part[(size_t)M * N + co] = g0 == 0 ? sum : part[(size_t)M * N + co] + sum;
                }
            }
            dy = dq;
        }
        int first = g0 == 0, final = g0 + gn >= ng;
        for (int r0 = 0, mr; r0 < M; r0 += mr) {
            mr = imin(WMR, M - r0);
            for (int c0 = 0; c0 < N; c0 += WNR)
                dw_tiles(mr, imin(WNR, N - c0), gn, by_rows ? s->oh : 1, by_rows ? s->ow : Q,
                         dy + (size_t)r0 * LQ, (ptrdiff_t)(M * LQ), (ptrdiff_t)LQ,
                         by_rows ? s->ow : 0, src, bg, p->boff + c0, by_rows ? p->bp : 0,
                         lane + ((size_t)r0 * N + c0) * VL, (ptrdiff_t)N * VL, first, final,
                         part + (size_t)r0 * N + c0, N);
        }
    }
    if (j->want_db && !repitch)
        dw_db_sums(j->dy + (size_t)i0 * M * P, ng, M, P, part + (size_t)M * N);
}

/* out[e] = Σ_c part[c*stride + e], c ascending */
static void sum_parts(const float *part, size_t stride, size_t n, int chunks, float *out)
{
    for (size_t e = 0; e < n; e += VL) {
        int len = (int)(n - e < VL ? n - e : VL);
        vtail tm = vtail_make(len);
        vf acc = vload_t(part + e, tm);
        for (int c = 1; c < chunks; c++)
            acc = vadd(acc, vload_t(part + (size_t)c * stride + e, tm));
        vstore_t(out + e, acc, tm);
    }
}

/* The weight gradient of a layer wino_forward computes, in the same
 * transform domain: with Y = A^T [U ⊙ V] A and U = G g G^T,
 *   dL/dg = G^T [ Σ_t (A dY_t A^T) ⊙ V_t ] G
 * over the 2x2 output-gradient tiles dY_t and the 4x4 input tiles' V_t,
 * so per image the sums are 16 gemms
 *   S_xi[co][ci] += Σ_t W_xi[t][co] · V_xi[t][ci],  W = A dY A^T
 * with one fma chain per element across the chunk's images (gemm_rows_acc).
 * Chunks are the direct form's (fixed from n); their S (and db sums, as
 * the direct form makes them: dw_db_sums) are added in chunk order and the
 * total becomes the 3x3 gradient through G^T S G once, so the result
 * depends on neither thread count nor scheduling. */
typedef struct wino_dw_job {
    wino_job g;       /* geometry, and sh, x (no y, U) */
    const float *dy;
    float *part;      /* [chunks][16*cout*Cp + cout]: S, then db */
    int chunk;
    int want_db;
    size_t n_dy, n_w, n_s;
} wino_dw_job;

/* W[xi][t][co] = (A dY A^T)[xi] of dY's 2x2 tile t, channel vectors, from
 * the channel-last (zero-padded to 2TH x 2TW) pixels of dy */
static void wino_dy(const wino_job *j, const float *dyp, float *W)
{
    size_t xs = (size_t)j->T * j->Cop;
    int Wd = 2 * j->TW;
    for (int ty = 0; ty < j->TH; ty++)
        for (int tx = 0; tx < j->TW; tx++) {
            const float *d0 = dyp + ((size_t)(2 * ty) * Wd + 2 * tx) * j->Cop;
            float *w0 = W + (size_t)(ty * j->TW + tx) * j->Cop;
            for (int cb = 0; cb < j->Cop; cb += VL) {
                vf a00 = vload(d0 + cb), a01 = vload(d0 + j->Cop + cb);
                vf a10 = vload(d0 + (size_t)Wd * j->Cop + cb), a11 = vload(d0 + ((size_t)Wd + 1) * j->Cop + cb);
                /* R = A dY: rows dY0, dY0 + dY1, dY0 - dY1, -dY1 */
                vf r[4][2] = {{a00, a01},
                              {vadd(a00, a10), vadd(a01, a11)},
                              {vsub(a00, a10), vsub(a01, a11)},
                              {vsub(vzero(), a10), vsub(vzero(), a11)}};
                for (int i = 0; i < 4; i++) { /* R A^T: the same along the row */
                    float *w = w0 + (size_t)(4 * i) * xs + cb;
                    vstore(w, r[i][0]);
                    vstore(w + xs, vadd(r[i][0], r[i][1]));
                    vstore(w + 2 * xs, vsub(r[i][0], r[i][1]));
                    vstore(w + 3 * xs, vsub(vzero(), r[i][1]));
                }
            }
        }
}

static void wino_dw_task(void *ctx, int64_t t, int worker)
{
    const wino_dw_job *d = ctx;
    const wino_job *j = &d->g;
    const pl_conv2d_shape *s = j->sh;
    int i0 = (int)t * d->chunk, ng = imin(d->chunk, s->n - i0);
    size_t P = (size_t)s->oh * s->ow;
    float *in = pl__simd_wbuf(j->s, worker), *V = in + j->n_in, *dyp = V + j->n_v;
    float *W = dyp + d->n_dy, *S = d->part + (size_t)t * (d->n_s + s->cout);
    for (int g = 0; g < ng; g++) {
        const float *x = j->x + (size_t)(i0 + g) * s->cin * s->h * s->w;
        const float *dy = d->dy + (size_t)(i0 + g) * s->cout * P;
        zero_row(in, (int)j->n_in);
        wino_to_pixels(j, x, in);
        wino_input(j, in, V);
        zero_row(dyp, (int)d->n_dy);
        to_pixels(dy, s->cout, s->oh, s->ow, 0, 0, dyp, 2 * j->TW, j->Cop);
        wino_dy(j, dyp, W);
        for (int xi = 0; xi < 16; xi++) {
            float *Sx = S + (size_t)xi * s->cout * j->Cp;
            const float *Wx = W + (size_t)xi * j->T * j->Cop, *Vx = V + (size_t)xi * j->T * j->Cp;
            if (g == 0)
                gemm_rows(s->cout, 1, j->Cp, 0, 0, j->T, Wx, 1, j->Cop, Vx, j->boff, Sx, j->Cp, NULL, 1, 0);
            else
                gemm_rows_acc(s->cout, j->Cp, j->T, Wx, 1, j->Cop, Vx, j->boff, Sx, j->Cp);
        }
    }
    if (d->want_db)
        dw_db_sums(d->dy + (size_t)i0 * s->cout * P, ng, s->cout, P, S + d->n_s);
}

/* dw[co][ci][3x3] = G^T S[co][ci] G, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1] */
static void wino_dw_out(const wino_job *j, const float *S, float *dw)
{
    const pl_conv2d_shape *s = j->sh;
    size_t xs = (size_t)s->cout * j->Cp;
    for (int co = 0; co < s->cout; co++)
        for (int ci = 0; ci < s->cin; ci++) {
            float m[4][4], r[3][4];
            for (int xi = 0; xi < 16; xi++)
                m[xi / 4][xi % 4] = S[xi * xs + (size_t)co * j->Cp + ci];
            for (int c = 0; c < 4; c++) {
                r[0][c] = m[0][c] + 0.5f * (m[1][c] + m[2][c]);
                r[1][c] = 0.5f * (m[1][c] - m[2][c]);
                r[2][c] = 0.5f * (m[1][c] + m[2][c]) + m[3][c];
            }
            float *o = dw + ((size_t)co * s->cin + ci) * 9;
            for (int i = 0; i < 3; i++) {
                o[3 * i] = r[i][0] + 0.5f * (r[i][1] + r[i][2]);
                o[3 * i + 1] = 0.5f * (r[i][1] - r[i][2]);
                o[3 * i + 2] = 0.5f * (r[i][1] + r[i][2]) + r[i][3];
            }
        }
}

static pl_status wino_backward_weight(pl__simd *s, const pl_conv2d_shape *sh, const float *x,
                                      const float *dy, float *dw, float *db, int chunk, int chunks)
{
    wino_dw_job d = {.g = {.s = s, .sh = sh, .x = x}, .dy = dy, .chunk = chunk, .want_db = db != NULL};
    wino_job *j = &d.g;
    wino_geom(j);
    j->n_in = (size_t)j->Hq * j->Wq * j->Cp;
    j->n_v = (size_t)16 * j->T * j->Cp;
    d.n_dy = (size_t)4 * j->T * j->Cop;
    d.n_w = (size_t)16 * j->T * j->Cop;
    d.n_s = (size_t)16 * sh->cout * j->Cp;
    ptrdiff_t *voff = (ptrdiff_t *)(void *)pl__simd_slot(s, SLOT_OFF, (size_t)j->T * sizeof(ptrdiff_t) / sizeof(float) + 1);
    if (!voff)
        return PL_ENOMEM;
    for (int t = 0; t < j->T; t++)
        voff[t] = (ptrdiff_t)t * j->Cp;
    j->boff = voff;
    size_t stride = d.n_s + (size_t)sh->cout;
    if (!(d.part = pl__simd_slot(s, SLOT_PART, stride * chunks)))
        return PL_ENOMEM;
    pl_status st = pl__simd_reserve(s, j->n_in + j->n_v + d.n_dy + d.n_w);
    if (st)
        return st;
    pl__simd_run(s, chunks, 2.0 * sh->n * sh->cout * sh->cin * 9.0 * sh->oh * sh->ow, wino_dw_task, &d);
    sum_parts(d.part, stride, d.n_s, chunks, d.part); /* in place: element by element */
    wino_dw_out(j, d.part, dw);
    if (db)
        sum_parts(d.part + d.n_s, stride, (size_t)sh->cout, chunks, db);
    return PL_OK;
}

static pl_status k_conv2d_backward_weight(pl__simd *s, const pl_conv2d_shape *sh,
                                          const float *x, const float *dy, float *dw,
                                          float *db)
{
    if (!pl__simd_conv_shape_ok(sh))
        return pl__simd_fail(s, PL_EINVAL, "conv2d: inconsistent shape");
    /* fixed chunks of the batch (from n alone), summed in chunk order */
    int chunk = imin(4, sh->n / 16 > 0 ? sh->n / 16 : 1); /* 16 chunks of a batch of 64 */
    int chunks = (sh->n + chunk - 1) / chunk;
    if (wino_ok(sh))
        return wino_backward_weight(s, sh, x, dy, dw, db, chunk, chunks);
    conv_plan p;
    pl_status st = conv_plan_make(s, sh, SLOT_OFF, &p);
    if (st)
        return st;
    size_t M = (size_t)sh->cout, N = (size_t)p.K, P = (size_t)sh->oh * sh->ow;
    size_t stride = M * N + M;
    float *part = pl__simd_slot(s, SLOT_PART, stride * chunks);
    if (!part)
        return PL_ENOMEM;

    /* images per pass: as many as keep one pass's dy and sources within
     * about 32 KB; a lane buffer too large for L2 is not worth it */
    int repitch = dw_repitch(&p);
    size_t dq = repitch ? M * ((size_t)ROUND_VL((sh->oh - 1) * p.Wp + sh->ow) + VL) : 0;
    size_t per_img = (M * P + dq + (p.src_floats ? p.src_floats : p.in_img)) * sizeof(float);
    size_t lane = M * N * VL;
    int group = (int)(32768 / per_img);
    group = group < 1 ? 1 : group > chunk ? chunk : group;
    if (group < chunk && lane * sizeof(float) > 262144)
        group = chunk;
    if ((st = pl__simd_reserve(s, (p.src_floats + dq) * group + (group < chunk ? lane : 0))))
        return st;
    conv_dw_job j = {.s = s, .p = &p, .x = x, .dy = dy, .part = part, .chunk = chunk,
                     .group = group, .want_db = db != NULL};
    pl__simd_run(s, chunks, 2.0 * sh->n * M * N * P, conv_dw_task, &j);
    sum_parts(part, stride, M * N, chunks, dw);
    if (db)
        sum_parts(part + M * N, stride, M, chunks, db);
    return PL_OK;
}

/* ---- linear -------------------------------------------------------------- */

#define LIN_ROWS 8        /* rows per task of the backward passes (a multiple of MR) */
#define LIN_FWD_ROWS 64   /* rows per forward task (a multiple of MR) */

typedef struct lin_job {
    int n, in, out;
    const float *a, *b, *bias;
    const ptrdiff_t *off;
    float *c;
    int relu;
    pl__simd *s;  /* forward: per-worker buffers */
    int cbv, nrb; /* forward: vectors of outputs per column block, row blocks */
    int have[PL_SIMD_MAX_THREADS]; /* forward: column block in each worker's buffer, -1 none */
} lin_job;

/* wt[i][o] = w[o][i] for o < out, rows of ldw floats (zeros past out) */
static void transpose_weights(const float *w, int out, int in, float *wt, int ldw)
{
    for (int o0 = 0; o0 < ldw; o0 += VL)
        for (int i0 = 0; i0 < in; i0 += VL) {
            int ni = imin(VL, in - i0), no = imin(VL, out - o0);
            vtail ti = vtail_make(ni);
            vf r[VL];
            for (int k = 0; k < VL; k++) {
                const float *wr = w + (size_t)(o0 + k) * in + i0;
                r[k] = k >= no ? vzero() : ni == VL ? vload(wr) : vload_t(wr, ti);
            }
            transpose_vl(r);
            for (int c = 0; c < ni; c++)
                vstore(wt + (size_t)(i0 + c) * ldw + o0, r[c]);
        }
}

/* y[r][o] = b[o] + Σ_i x[r][i] w[o][i] for one block of LIN_FWD_ROWS rows
 * and cbv vectors of outputs. Tasks run column block by column block; a
 * worker transposes its block's slice of the weights into its own buffer
 * (wt[i][o]) unless the buffer already holds it: no serial transpose
 * before the region, and no thread reads a copy another core wrote. Then a gemm
 * over it (x broadcast, wt loaded along o; one fma chain per element in i
 * order, whatever the blocking), then bias and ReLU over the block while
 * it is in L1. The blocks depend on the shape only. */
static void lin_fwd_task(void *ctx, int64_t t, int worker)
{
    lin_job *j = ctx;
    int cb = (int)(t / j->nrb), rb = (int)(t % j->nrb);
    int ldw = j->cbv * VL, o0 = cb * ldw, no = imin(ldw, j->out - o0);
    int r0 = rb * LIN_FWD_ROWS, m = imin(LIN_FWD_ROWS, j->n - r0), out = j->out;
    float *wt = pl__simd_wbuf(j->s, worker);
    if (j->have[worker] != cb) {
        transpose_weights(j->b + (size_t)o0 * j->in, no, j->in, wt, ldw);
        j->have[worker] = cb;
    }
    float *y = j->c + (size_t)r0 * out + o0;
    int step = j->cbv > NV8 ? 4 : m; /* a block wider than a tall tile: tiles of 4 rows */
    for (int i = 0; i < m; i += step)
        gemm_rows(imin(step, m - i), 1, no, 0, 0, j->in, j->a + (size_t)(r0 + i) * j->in, j->in, 1, wt,
                  j->off, y + (size_t)i * out, out, NULL, 1, 0);
    if (!j->bias && !j->relu)
        return;
    const vf z = vzero();
    for (int r = 0; r < m; r++)
        for (int o = 0; o < no; o += VL) {
            int len = imin(VL, no - o);
            vtail tl = vtail_make(len);
            float *yr = y + (size_t)r * out + o;
            const float *br = j->bias ? j->bias + o0 + o : NULL;
            vf v = len == VL ? vload(yr) : vload_t(yr, tl);
            if (br) /* b + Σ, as ref adds it */
                v = vadd(len == VL ? vload(br) : vload_t(br, tl), v);
            if (j->relu)
                v = vsel(vgt(z, v), v, z);
            if (len == VL)
                vstore(yr, v);
            else
                vstore_t(yr, v, tl);
        }
}

static ptrdiff_t *row_offsets(pl__simd *s, int slot, int rows, ptrdiff_t stride)
{
    ptrdiff_t *off = (ptrdiff_t *)(void *)pl__simd_slot(s, slot, (size_t)rows * sizeof(ptrdiff_t) / sizeof(float) + 1);
    if (off)
        for (int r = 0; r < rows; r++)
            off[r] = (ptrdiff_t)r * stride;
    return off;
}

static pl_status linear_forward(pl__simd *s, int n, int in, int out, const float *x,
                                const float *w, const float *b, float *y, int relu)
{
    if (n < 1 || in < 1 || out < 1)
        return pl__simd_fail(s, PL_EINVAL, "linear: sizes must be positive");
    /* column blocks (measured on 392->64, 300->100, 784->300 at batch 64
     * and 1,000): a narrow layer (<= 4 vectors of outputs) is cut into
     * single vectors when the batch is one row block, so both threads get
     * work, and kept whole in 4-row tiles otherwise; a wide one into blocks
     * as wide as the tall micro-tile */
    int V = (out + VL - 1) / VL, nrb = (n + LIN_FWD_ROWS - 1) / LIN_FWD_ROWS;
    int cbv = V <= 4 ? (nrb == 1 ? 1 : V) : NV8;
    int ldw = cbv * VL, ncb = (V + cbv - 1) / cbv;
    ptrdiff_t *off = row_offsets(s, SLOT_OFF, in, ldw);
    if (!off)
        return PL_ENOMEM;
    /* + VL: gemm_rows may read a vector past the last transposed row */
    pl_status st = pl__simd_reserve(s, (size_t)(in + 1) * ldw);
    if (st)
        return st;
    lin_job j = {.n = n, .in = in, .out = out, .a = x, .b = w, .bias = b, .off = off, .c = y,
                 .relu = relu, .s = s, .cbv = cbv, .nrb = nrb};
    for (int i = 0; i < PL_SIMD_MAX_THREADS; i++)
        j.have[i] = -1;
    pl__simd_run(s, (int64_t)ncb * nrb, 2.0 * n * in * out, lin_fwd_task, &j);
    return PL_OK;
}

static pl_status k_linear_forward(pl__simd *s, int n, int in, int out, const float *x,
                                  const float *w, const float *b, float *y)
{
    return linear_forward(s, n, in, out, x, w, b, y, 0);
}

static pl_status k_linear_forward_relu(pl__simd *s, int n, int in, int out, const float *x,
                                       const float *w, const float *b, float *y)
{
    return linear_forward(s, n, in, out, x, w, b, y, 1);
}

/* ---- sparse linear (CSR) ---------------------------------------------------- */

#define CSR_NV 2               /* vectors of images per block */
#define CSR_NB (CSR_NV * VL)   /* images per block (task) */

typedef struct csr_job {
    pl__simd *s;
    int n, in, out;
    const float *x, *b;
    const pl_csr *w;
    float *y;
} csr_job;

/* One block of CSR_NB images: x transposed to xt[in][CSR_NB] (image-minor,
 * so one stored weight multiplies CSR_NB images with contiguous loads),
 *   yt[o][r] = b[o] + Σ_{even e} v[e]·xt[c[e]][r] + Σ_{odd e} v[e]·xt[c[e]][r]
 * (entries of row o in order; two chains hide the fma latency), and yt
 * transposed back VL outputs at a time. */
static void csr_task(void *ctx, int64_t t, int worker)
{
    csr_job *j = ctx;
    const int in = j->in, out = j->out, r0 = (int)t * CSR_NB, nr = imin(CSR_NB, j->n - r0);
    const int64_t *rp = j->w->row_ptr;
    const int32_t *ci = j->w->col_idx;
    const float *val = j->w->values;
    float *xt = pl__simd_wbuf(j->s, worker), *tb = xt + (size_t)in * CSR_NB;
    for (int g = 0; g < CSR_NV; g++) {
        const float *xg = j->x + (size_t)(r0 + g * VL) * in;
        int rows = imin(VL, nr - g * VL); /* images of this vector that exist */
        for (int i0 = 0; i0 < in; i0 += VL) {
            int ni = imin(VL, in - i0);
            vf r[VL];
            if (rows == VL && ni == VL) {
#pragma GCC unroll 16
                for (int k = 0; k < VL; k++)
                    r[k] = vload(xg + (size_t)k * in + i0);
            } else {
                vtail ti = vtail_make(ni);
                for (int k = 0; k < VL; k++)
                    r[k] = k < rows ? vload_t(xg + (size_t)k * in + i0, ti) : vzero();
            }
            transpose_vl(r);
            float *d = xt + (size_t)i0 * CSR_NB + g * VL;
            if (ni == VL) {
#pragma GCC unroll 16
                for (int c = 0; c < VL; c++)
                    vstore(d + (size_t)c * CSR_NB, r[c]);
            } else {
                for (int c = 0; c < ni; c++)
                    vstore(d + (size_t)c * CSR_NB, r[c]);
            }
        }
    }
    for (int o0 = 0; o0 < out; o0 += VL) {
        int no = imin(VL, out - o0);
        for (int oo = 0; oo < no; oo++) {
            int o = o0 + oo;
            vf a[CSR_NV], c2[CSR_NV];
            vf b0 = j->b ? vset1(j->b[o]) : vzero();
#pragma GCC unroll 4
            for (int g = 0; g < CSR_NV; g++) {
                a[g] = b0;
                c2[g] = vzero();
            }
            int64_t e = rp[o], e1 = rp[o + 1];
            for (; e + 1 < e1; e += 2) {
                const float *xa = xt + (size_t)ci[e] * CSR_NB, *xb = xt + (size_t)ci[e + 1] * CSR_NB;
                vf va = vset1(val[e]), vb = vset1(val[e + 1]);
#pragma GCC unroll 4
                for (int g = 0; g < CSR_NV; g++) {
                    a[g] = vfma(va, vload(xa + g * VL), a[g]);
                    c2[g] = vfma(vb, vload(xb + g * VL), c2[g]);
                }
            }
            if (e < e1) {
                const float *xa = xt + (size_t)ci[e] * CSR_NB;
                vf va = vset1(val[e]);
#pragma GCC unroll 4
                for (int g = 0; g < CSR_NV; g++)
                    a[g] = vfma(va, vload(xa + g * VL), a[g]);
            }
#pragma GCC unroll 4
            for (int g = 0; g < CSR_NV; g++)
                vstore(tb + ((size_t)g * VL + oo) * VL, vadd(a[g], c2[g]));
        }
        vtail to = vtail_make(no);
        for (int g = 0; g < CSR_NV && g * VL < nr; g++) {
            vf r[VL];
#pragma GCC unroll 16
            for (int k = 0; k < VL; k++)
                r[k] = k < no ? vload(tb + ((size_t)g * VL + k) * VL) : vzero();
            transpose_vl(r);
            for (int k = 0; k < VL && g * VL + k < nr; k++) {
                float *yr = j->y + (size_t)(r0 + g * VL + k) * out + o0;
                if (no == VL)
                    vstore(yr, r[k]);
                else
                    vstore_t(yr, r[k], to);
            }
        }
    }
}

static pl_status k_linear_forward_csr(pl__simd *s, int n, int in, int out, const float *x,
                                      const pl_csr *w, const float *b, float *y)
{
    if (n < 1 || in < 1 || out < 1)
        return pl__simd_fail(s, PL_EINVAL, "linear: sizes must be positive");
    if (!w || w->rows != out || w->cols != in || !w->row_ptr || w->row_ptr[0] != 0 ||
        w->row_ptr[out] != w->nnz || (w->nnz && (!w->col_idx || !w->values)))
        return pl__simd_fail(s, PL_EINVAL, "linear_forward_csr: the matrix does not match the shape");
    for (int o = 0; o < out; o++)
        if (w->row_ptr[o + 1] < w->row_ptr[o])
            return pl__simd_fail(s, PL_EINVAL, "linear_forward_csr: row_ptr decreases");
    for (int64_t e = 0; e < w->nnz; e++)
        if ((uint32_t)w->col_idx[e] >= (uint32_t)in)
            return pl__simd_fail(s, PL_EINVAL, "linear_forward_csr: column index out of range");
    pl_status st = pl__simd_reserve(s, (size_t)in * CSR_NB + (size_t)CSR_NV * VL * VL);
    if (st)
        return st;
    csr_job j = {.s = s, .n = n, .in = in, .out = out, .x = x, .b = b, .w = w, .y = y};
    pl__simd_run(s, (n + CSR_NB - 1) / CSR_NB, 2.0 * n * (double)w->nnz + 4.0 * n * in,
                 csr_task, &j);
    return PL_OK;
}

/* The backward passes cut their output into column blocks of LIN_COLS
 * floats, all rows at once: a task streams only its columns of the B
 * operand (w for dx, x for dw), once, from L1 for every row tile, and the
 * two threads share B half and half instead of each reading all of it. */
#define LIN_COLS (NV8 * VL)

/* dx[r][i] = Σ_o dy[r][o] w[o][i], columns [LIN_COLS t, LIN_COLS (t+1)) */
static void lin_bwd_data_task(void *ctx, int64_t t, int worker)
{
    lin_job *j = ctx;
    int i0 = (int)t * LIN_COLS, w = imin(LIN_COLS, j->in - i0);
    gemm_rows(j->n, 1, w, 0, 0, j->out, j->a, j->out, 1, j->b + i0, j->off, j->c + i0, j->in, NULL, 0, 0);
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
    pl__simd_run(s, (in + LIN_COLS - 1) / LIN_COLS, 2.0 * n * in * out, lin_bwd_data_task, &j);
    return PL_OK;
}

/* dw[o][i] = Σ_r dy[r][o] x[r][i], columns [LIN_COLS t, LIN_COLS (t+1)) */
static void lin_bwd_weight_task(void *ctx, int64_t t, int worker)
{
    lin_job *j = ctx;
    int i0 = (int)t * LIN_COLS, w = imin(LIN_COLS, j->in - i0);
    gemm_rows(j->out, 1, w, 0, 0, j->n, j->a, 1, j->out, j->b + i0, j->off, j->c + i0, j->in, NULL, 0, 0);
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
    pl__simd_run(s, (in + LIN_COLS - 1) / LIN_COLS, 2.0 * n * in * out, lin_bwd_weight_task, &j);
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

/* pools planes [p0, p1) */
static void pool_planes(const pool_job *j, int64_t p0, int64_t p1)
{
    const pl_pool2d_shape *s = j->s;
    if (j->is_max && is_pool2x2(s)) {
        const vi ramp2 = viramp(2);
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

static void pool_task(void *ctx, int64_t t, int worker)
{
    const pool_job *j = ctx;
    int64_t p0 = t * POOL_PLANES, p1 = p0 + POOL_PLANES;
    if (p1 > (int64_t)j->s->n * j->s->c)
        p1 = (int64_t)j->s->n * j->s->c;
    pool_planes(j, p0, p1);
}

/* conv + ReLU + max pooling: each image's ReLU output is pooled by the task
 * that made it, while its planes are still in L1 */
static void pool_after_conv(const void *pool, int64_t p0, int64_t p1)
{
    pool_planes(pool, p0, p1);
}

static pl_status k_conv2d_forward_relu_maxpool(pl__simd *s, const pl_conv2d_shape *sh,
                                               const float *x, const float *w, const float *b,
                                               float *yr, const pl_pool2d_shape *ps, float *yp,
                                               int32_t *argmax)
{
    if (!pl__simd_conv_shape_ok(sh))
        return pl__simd_fail(s, PL_EINVAL, "conv2d: inconsistent shape");
    if (!pl__simd_pool_shape_ok(ps) || ps->n != sh->n || ps->c != sh->cout || ps->h != sh->oh ||
        ps->w != sh->ow)
        return pl__simd_fail(s, PL_EINVAL, "conv2d_forward_relu_maxpool: the pool does not fit the conv's output");
    pool_job pj = {.s = ps, .x = yr, .y = yp, .am = argmax, .is_max = 1};
    return conv_forward_plan(s, sh, x, w, b, yr, 1, pool_after_conv, &pj);
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
    const float *yr; /* maxpool2d_relu_backward: the ReLU output, else NULL */
    float *dx;
    _Atomic int bad;
} pool_bwd_job;

/* dx = dy · [y > 0] over n floats in place, as relu_bwd_task computes it */
static void relu_mask(const float *y, float *dx, size_t n)
{
    const vf z = vzero();
    size_t i = 0;
    for (; i + VL <= n; i += VL)
        vstore(dx + i, vsel(vgt(vload(y + i), z), z, vload(dx + i)));
    if (i < n) {
        vtail tm = vtail_make((int)(n - i));
        vstore_t(dx + i, vsel(vgt(vload_t(y + i, tm), z), z, vload_t(dx + i, tm)), tm);
    }
}

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

/* dx[x0 + sw*l] += v[l] for l < len, sw 1 or 2 (a stride-2 row adds the
 * interleave of v with zeros over 2*len - 1 floats; +0 leaves a sum
 * unchanged: dx starts at +0 and never holds -0) */
INLINE void row_scatter_add(float *d, int sw, int len, vf v)
{
    if (sw == 1) {
        if (len == VL)
            vstore(d, vadd(vload(d), v));
        else {
            vtail t = vtail_make(len);
            vstore_t(d, vadd(vload_t(d, t), v), t);
        }
        return;
    }
    int span = 2 * len - 1;
    vf lo = vzip_lo(v, vzero()), hi = vzip_hi(v, vzero());
    if (span >= VL) {
        vstore(d, vadd(vload(d), lo));
        if (span > VL) {
            vtail t = vtail_make(span - VL);
            vstore_t(d + VL, vadd(vload_t(d + VL, t), hi), t);
        }
    } else {
        vtail t = vtail_make(span);
        vstore_t(d, vadd(vload_t(d, t), lo), t);
    }
}

/* Outputs ox whose tap kx lands inside the row: [*a, *b). */
static inline void tap_range(const pl_pool2d_shape *s, int kx, int *a, int *b)
{
    int sw = s->stride_w, lo = s->pad_w - kx, hi = s->w - 1 + s->pad_w - kx;
    *a = lo > 0 ? (lo + sw - 1) / sw : 0;
    *b = hi < 0 ? 0 : imin(s->ow, hi / sw + 1);
}

/* Pooling backward, any window with stride_w 1 or 2, vectorised along the
 * output row: for each output row oy and tap (ky, kx), the dy row (times
 * 1/(kh*kw) for average pooling; masked to the outputs whose argmax is
 * this tap for max pooling) is added into the input row it came from. */
static void pool_bwd_rows(const pl_pool2d_shape *s, const float *dy, const int32_t *am, float *dx)
{
    int sw = s->stride_w;
    const vf inv = vset1(1.0f / (float)(s->kh * s->kw)), z = vzero();
    const vi ramp = viramp(sw);
    zero_row(dx, s->h * s->w);
    for (int oy = 0; oy < s->oh; oy++) {
        const float *g = dy + (size_t)oy * s->ow;
        const int32_t *ar = am ? am + (size_t)oy * s->ow : NULL;
        for (int ky = 0; ky < s->kh; ky++) {
            int iy = oy * s->stride_h - s->pad_h + ky;
            if (iy < 0 || iy >= s->h)
                continue;
            float *drow = dx + (size_t)iy * s->w;
            for (int kx = 0; kx < s->kw; kx++) {
                int oxa, oxb;
                tap_range(s, kx, &oxa, &oxb);
                for (int ox = oxa; ox < oxb; ox += VL) {
                    int len = imin(VL, oxb - ox), ix = ox * sw - s->pad_w + kx;
                    vtail tl = vtail_make(len);
                    vf v = len == VL ? vload(g + ox) : vload_t(g + ox, tl);
                    if (ar) {
                        vi idx = viadd(viset1(iy * s->w + ix), ramp);
                        v = vsel(vieq(viload_t(ar + ox, tl), idx), z, v);
                    } else {
                        v = vmul(v, inv);
                    }
                    row_scatter_add(drow + ix, sw, len, v);
                }
            }
        }
    }
}

/* dx = 0; dx[argmax] += dy in output order (strides other than 1 and 2) */
static void pool_bwd_scalar(const pl_pool2d_shape *s, const float *dy, const int32_t *am, float *dx)
{
    size_t plane = (size_t)s->h * s->w, oplane = (size_t)s->oh * s->ow;
    memset(dx, 0, sizeof(float) * plane);
    if (am) {
        for (size_t o = 0; o < oplane; o++)
            if ((uint32_t)am[o] < plane)
                dx[am[o]] += dy[o];
        return;
    }
    float inv = 1.0f / (float)(s->kh * s->kw);
    for (int oy = 0; oy < s->oh; oy++) {
        int y0 = oy * s->stride_h - s->pad_h;
        int ky0 = y0 < 0 ? -y0 : 0, ky1 = imin(s->kh, s->h - y0);
        for (int ox = 0; ox < s->ow; ox++) {
            int x0 = ox * s->stride_w - s->pad_w;
            int kx0 = x0 < 0 ? -x0 : 0, kx1 = imin(s->kw, s->w - x0);
            float gv = dy[oy * s->ow + ox] * inv;
            for (int ky = ky0; ky < ky1; ky++)
                for (int kx = kx0; kx < kx1; kx++)
                    dx[(y0 + ky) * s->w + x0 + kx] += gv;
        }
    }
}

static void maxpool_bwd_task(void *ctx, int64_t t, int worker)
{
    pool_bwd_job *j = ctx;
    const pl_pool2d_shape *s = j->s;
    size_t plane = (size_t)s->h * s->w, oplane = (size_t)s->oh * s->ow;
    int64_t p0 = t * POOL_PLANES, p1 = p0 + POOL_PLANES;
    if (p1 > (int64_t)s->n * s->c)
        p1 = (int64_t)s->n * s->c;
    if (j->am && is_pool2x2(s)) {
        const vi ramp2 = viramp(2);
        for (int64_t p = p0; p < p1; p++) {
            maxpool2x2_bwd_plane(s, j->dy + p * oplane, j->am + p * oplane, j->dx + p * plane, ramp2);
            if (j->yr) /* fused ReLU backward while the plane is in L1 */
                relu_mask(j->yr + p * plane, j->dx + p * plane, plane);
        }
        return;
    }
    for (int64_t p = p0; p < p1; p++) {
        const int32_t *am = j->am ? j->am + p * oplane : NULL;
        if (am)
            for (size_t o = 0; o < oplane; o++)
                if ((uint32_t)am[o] >= plane)
                    atomic_store_explicit(&j->bad, 1, memory_order_relaxed);
        if (s->stride_w <= 2)
            pool_bwd_rows(s, j->dy + p * oplane, am, j->dx + p * plane);
        else
            pool_bwd_scalar(s, j->dy + p * oplane, am, j->dx + p * plane);
        if (j->yr)
            relu_mask(j->yr + p * plane, j->dx + p * plane, plane);
    }
}

static pl_status pool_backward(pl__simd *s, const pl_pool2d_shape *sh, const float *dy,
                               const int32_t *argmax, const float *yr, float *dx)
{
    if (!pl__simd_pool_shape_ok(sh))
        return pl__simd_fail(s, PL_EINVAL, "pool2d: inconsistent shape");
    pool_bwd_job j = {.s = sh, .dy = dy, .am = argmax, .yr = yr, .dx = dx};
    atomic_init(&j.bad, 0);
    int64_t planes = (int64_t)sh->n * sh->c;
    pl__simd_run(s, (planes + POOL_PLANES - 1) / POOL_PLANES,
                 (double)planes * (sh->h * sh->w + 2.0 * sh->oh * sh->ow * sh->kh * sh->kw),
                 maxpool_bwd_task, &j);
    if (atomic_load(&j.bad))
        return pl__simd_fail(s, PL_EINVAL, "maxpool2d_backward: argmax out of range");
    return PL_OK;
}

static pl_status k_maxpool2d_backward(pl__simd *s, const pl_pool2d_shape *sh, const float *dy,
                                      const int32_t *argmax, float *dx)
{
    if (!argmax)
        return pl__simd_fail(s, PL_EINVAL, "maxpool2d_backward: argmax is required");
    return pool_backward(s, sh, dy, argmax, NULL, dx);
}

/* maxpool2d_backward then relu_backward(yr), plane by plane in one pass */
static pl_status k_maxpool2d_relu_backward(pl__simd *s, const pl_pool2d_shape *sh, const float *dy,
                                           const int32_t *argmax, const float *yr, float *dx)
{
    if (!argmax || !yr)
        return pl__simd_fail(s, PL_EINVAL, "maxpool2d_relu_backward: argmax and yr are required");
    return pool_backward(s, sh, dy, argmax, yr, dx);
}

/* dx[window] += dy / (kh*kw) */
static pl_status k_avgpool2d_backward(pl__simd *s, const pl_pool2d_shape *sh, const float *dy,
                                      float *dx)
{
    return pool_backward(s, sh, dy, NULL, NULL, dx);
}

static pl_status k_avgpool2d_forward(pl__simd *s, const pl_pool2d_shape *sh, const float *x,
                                     float *y)
{
    return pool_forward(s, sh, x, y, NULL, 0);
}

/* ---- softmax cross-entropy --------------------------------------------------- */

/* e^x, for the x <= 0 of a softmax: x = n·ln2 + r with |r| <= ln2/2 and
 * e^r from Cephes' degree-6 polynomial (about 2 ulp). Below -87 the result
 * is e^-87 ~ 1.6e-38 instead of 0; NaN stays NaN (vmax returns its second
 * operand when one is NaN). */
INLINE vf vexp_neg(vf x)
{
    x = vmax(vset1(-87.0f), x);
    vf n = vfrom_i(vround_i(vmul(x, vset1(1.44269504088896341f))));
    vf r = vfma(n, vset1(-0.693359375f), x);
    r = vfma(n, vset1(2.12194440e-4f), r);
    vf p = vset1(1.9875691500e-4f);
    p = vfma(p, r, vset1(1.3981999507e-3f));
    p = vfma(p, r, vset1(8.3334519073e-3f));
    p = vfma(p, r, vset1(4.1665795894e-2f));
    p = vfma(p, r, vset1(1.6666665459e-1f));
    p = vfma(p, r, vset1(5.0000001201e-1f));
    p = vfma(p, vmul(r, r), vadd(r, vset1(1.0f)));
    return vmul(p, vpow2i(vround_i(n)));
}

typedef struct xent_job {
    int n, classes;
    const float *logits;
    const int32_t *labels;
    float scale;
    float *dlogits;
    double *row_loss;
    int32_t *row_right;
} xent_job;

#define XENT_ROWS 32

/* per row: m = the first maximum; loss = log Σ e^(z-m) - (z_label - m);
 * dlogits = (e^(z-m) / Σ - onehot) · scale, VL classes at a time */
static void xent_task(void *ctx, int64_t t, int worker)
{
    xent_job *j = ctx;
    int C = j->classes;
    int r1 = imin((int)(t + 1) * XENT_ROWS, j->n);
    for (int r = (int)t * XENT_ROWS; r < r1; r++) {
        const float *z = j->logits + (size_t)r * C;
        int arg = 0;
        for (int c = 1; c < C; c++)
            if (z[c] > z[arg])
                arg = c;
        float m = z[arg];
        const vf mv = vset1(m);
        float *d = j->dlogits ? j->dlogits + (size_t)r * C : NULL;
        vf sum = vzero();
        for (int c = 0; c < C; c += VL) {
            int len = imin(VL, C - c);
            vtail tl = vtail_make(len);
            vf e = vexp_neg(vsub(len == VL ? vload(z + c) : vload_t(z + c, tl), mv));
            if (len < VL) /* lanes past the row: e^(0 - m) must not count */
                e = vsel(vgt(vfrom_i(viramp(1)), vset1((float)len - 0.5f)), e, vzero());
            sum = vadd(sum, e);
            if (d) {
                if (len == VL)
                    vstore(d + c, e);
                else
                    vstore_t(d + c, e, tl);
            }
        }
        float total = vhsum(sum);
        int label = j->labels[r];
        j->row_loss[r] = log((double)total) - (double)(z[label] - m);
        j->row_right[r] = arg == label;
        if (d) {
            const vf inv = vset1(1.0f / total), sc = vset1(j->scale), one = vset1(1.0f);
            const vi lab = viset1(label);
            for (int c = 0; c < C; c += VL) {
                int len = imin(VL, C - c);
                vtail tl = vtail_make(len);
                vf p = vmul(len == VL ? vload(d + c) : vload_t(d + c, tl), inv);
                p = vsel(vieq(viadd(viramp(1), viset1(c)), lab), p, vsub(p, one));
                vf v = vmul(p, sc);
                if (len == VL)
                    vstore(d + c, v);
                else
                    vstore_t(d + c, v, tl);
            }
        }
    }
}

static pl_status k_softmax_xent(pl__simd *s, int n, int classes, const float *logits,
                                const int32_t *labels, float grad_scale, float *dlogits,
                                double *loss_sum, int64_t *correct)
{
    if (n < 1 || classes < 1)
        return pl__simd_fail(s, PL_EINVAL, "softmax_xent: sizes must be positive");
    for (int r = 0; r < n; r++)
        if (labels[r] < 0 || labels[r] >= classes)
            return pl__simd_fail(s, PL_EINVAL, "softmax_xent: label out of range");
    /* per-row results land in scratch and are summed in row order */
    size_t words = (size_t)n * (sizeof(double) + sizeof(int32_t)) / sizeof(float) + 2;
    float *scratch = pl__simd_slot(s, SLOT_OFF, words);
    if (!scratch)
        return PL_ENOMEM;
    xent_job j = {.n = n, .classes = classes, .logits = logits, .labels = labels,
                  .scale = grad_scale, .dlogits = dlogits, .row_loss = (double *)(void *)scratch,
                  .row_right = (int32_t *)(void *)((double *)(void *)scratch + n)};
    pl__simd_run(s, (n + XENT_ROWS - 1) / XENT_ROWS, 40.0 * n * classes, xent_task, &j);
    double loss = 0.0;
    int64_t right = 0;
    for (int r = 0; r < n; r++) {
        loss += j.row_loss[r];
        right += j.row_right[r];
    }
    *loss_sum = loss;
    *correct = right;
    return PL_OK;
}

/* ---- element-wise ---------------------------------------------------------- */

#define EW_BLOCK 8192  /* least elements per task (relu) */
#define OPT_BLOCK 2048 /* least elements per task (optimizers: ~10 cycles per element) */

/* Element-wise work is cut into an even number of equal blocks (at most
 * 16, from n alone), so that two threads get equal halves, and for a
 * batch-major tensor the half of the images their core already holds. Any
 * cut gives the same results. */
static int64_t ew_block(int64_t n, int64_t least, int64_t *ntasks)
{
    if (n <= 0) {
        *ntasks = 0;
        return VL;
    }
    int64_t nt = n / least;
    nt = nt > 16 ? 16 : nt > 1 ? nt & ~(int64_t)1 : 1;
    int64_t b = ((n + nt - 1) / nt + VL - 1) / VL * VL;
    *ntasks = (n + b - 1) / b;
    return b;
}

typedef struct ew_job {
    int64_t n;
    int64_t block;
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
#define EW_LOOP(...) EW_LOOP_B(j->block, __VA_ARGS__)
#define OPT_LOOP(...) EW_LOOP_B(j->block, __VA_ARGS__)
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
    int64_t nt;
    ew_job j = {.n = n, .block = ew_block(n, EW_BLOCK, &nt), .a = x, .c = y};
    pl__simd_run(s, nt, 2.0 * n, relu_fwd_task, &j);
    return PL_OK;
}

static pl_status k_relu_backward(pl__simd *s, int64_t n, const float *y, const float *dy,
                                 float *dx)
{
    int64_t nt;
    ew_job j = {.n = n, .block = ew_block(n, EW_BLOCK, &nt), .a = y, .b = dy, .c = dx};
    pl__simd_run(s, nt, 2.0 * n, relu_bwd_task, &j);
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
    int64_t nt;
    ew_job j = {.n = n, .block = ew_block(n, OPT_BLOCK, &nt), .a = g, .c = p, .h = &k, .m = m,
                .v = v, .mask = mask};
    pl__simd_run(s, nt, 20.0 * n, adam_task, &j);
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
    int64_t nt;
    ew_job j = {.n = n, .block = ew_block(n, OPT_BLOCK, &nt), .a = g, .c = p, .h = &k, .m = buf,
                .mask = mask};
    pl__simd_run(s, nt, 20.0 * n, sgd_task, &j);
    return PL_OK;
}

/* ---- grouped and depthwise convolution (ABI 1.4) ------------------------------ */

/* groups == 1 is the dense kernel itself. Depthwise (groups == cin == cout)
 * has kernels of its own, below. Any other grouping runs the dense kernels
 * group by group: the group's input channels are gathered into a
 * contiguous batch, the dense kernel runs on it (threaded over the batch as
 * usual), and its output is scattered back; the weights and biases of a
 * group are already contiguous. */

static pl_status gconv_check(pl__simd *s, const pl_conv2d_shape *sh, int groups)
{
    if (!pl__simd_conv_shape_ok(sh))
        return pl__simd_fail(s, PL_EINVAL, "conv2d: inconsistent shape");
    if (groups < 1 || sh->cin % groups || sh->cout % groups)
        return pl__simd_fail(s, PL_EINVAL, "conv2d_grouped: groups must be >= 1 and divide cin and cout");
    return PL_OK;
}

/* dst[i][0..cn)[plane] = src[i][c0..c0+cn)[plane] for every image i (gather)
 * or the other way round (scatter) */
static void chan_copy(float *dst, const float *src, int n, int C, int c0, int cn, size_t plane,
                      int scatter)
{
    size_t blk = (size_t)cn * plane;
    for (int i = 0; i < n; i++) {
        size_t wide = ((size_t)i * C + c0) * plane, narrow = (size_t)i * blk;
        if (scatter)
            memcpy(dst + wide, src + narrow, sizeof(float) * blk);
        else
            memcpy(dst + narrow, src + wide, sizeof(float) * blk);
    }
}

/* Depthwise. Every plane (image i, channel c) is a 2-D correlation of one
 * source plane with one kernel. The source is first built in the worker's
 * buffer as np "phase planes", zero-padded:
 *   S_p[r][j] = X(r - pt, p + j*np - pl)   (r < Hs, j < Wp, p < np)
 * where X(a, b) = in[a/dh][b/dl] when a, b >= 0 are multiples of dh, dl
 * inside the plane, else 0. Output column ox of tap kx then reads
 * S_{kx % np}[.][ox + kx/np]: a contiguous vector load for every stride.
 *   forward:       in = x, np = stride_w, pad (ph, pw), no dilation;
 *   backward data: in = dy dilated by the strides, stride 1, pad
 *                  (kh-1-ph, kw-1-pw) (negative: the plane is cropped), the
 *                  kernel flipped: the transposed convolution, exactly.
 * Wp leaves room for full vector loads past the last output column (the
 * extra lanes are dropped by masked stores), so tiles load without masks.
 * Each output element is one fma chain: bias (or 0), then the taps in
 * row-major order, zeros of the padding included. */
static void dwc_build(const float *in, int H, int W, int dh, int dl, int pt, int pl, int np, int Hs,
                      int Wp, float *buf)
{
    /* zero everything with full stores, then write the rows that hold data
     * in ascending order with full-vector stores whose zero spill lands on
     * cells that are zero or written later (the buffer has VL floats of
     * slack): no masked stores for the loads that follow to wait on, and no
     * division per row */
    size_t total = (size_t)np * Hs * Wp;
    zero_row(buf, (int)ROUND_VL(total));
    /* data rows: r = pt + i*dh for i in [i0, i1), 0 <= r < Hs */
    int i0 = pt >= 0 ? 0 : (-pt + dh - 1) / dh;
    int i1 = Hs - pt > 0 ? imin(H, (Hs - pt + dh - 1) / dh) : 0;
    if (dl > 1) { /* dilated (np == 1): column j = b*dl + pl holds in[.][b], b in [b0, b1) */
        int b0 = pl >= 0 ? 0 : (-pl + dl - 1) / dl;
        int b1 = Wp - pl > 0 ? imin(W, (Wp - pl + dl - 1) / dl) : 0;
        for (int i = i0; i < i1; i++) {
            float *d = buf + (size_t)(pt + i * dh) * Wp;
            const float *xr = in + (size_t)i * W;
            for (int b = b0; b < b1; b++)
                d[b * dl + pl] = xr[b];
        }
        return;
    }
    for (int p = 0; p < np; p++) {
        /* columns whose source b = p + j*np - pl lies in [0, W): [ja, jb) */
        int lo = pl - p, hi = W - 1 + pl - p;
        int ja = imin(lo > 0 ? (lo + np - 1) / np : 0, Wp);
        int jb = hi < 0 ? 0 : imin(Wp, hi / np + 1);
        if (jb <= ja)
            continue;
        float *dp = buf + (size_t)p * Hs * Wp + ja;
        const float *xp = in + p + (ptrdiff_t)ja * np - pl;
        for (int i = i0; i < i1; i++) {
            float *d = dp + (size_t)(pt + i * dh) * Wp;
            const float *xr = xp + (size_t)i * W;
            if (np == 1) {
                copy_row_over(d, xr, jb - ja, jb - ja);
            } else if (np == 2) { /* the even floats of a span of 2*len - 1 */
                for (int j = 0; j < jb - ja; j += VL) {
                    int len = imin(VL, jb - ja - j), span = 2 * len - 1;
                    const float *r0 = xr + 2 * j;
                    vf a0 = span >= VL ? vload(r0) : vload_t(r0, vtail_make(span));
                    vf a1 = span > VL ? vload_t(r0 + VL, vtail_make(span - VL)) : vzero();
                    vstore(d + j, veven(a0, a1)); /* lanes past len are zero */
                }
            } else {
                for (int j = 0; j < jb - ja; j++)
                    d[j] = xr[j * np];
            }
        }
    }
}

/* R output rows x NVT vectors from column ox0 of rows oy0.. (R*NVT <= 8):
 *   y[oy][ox] = bias + Σ_{ky,kx} wk[ky*KW + kx] · S_{kx%NP}[oy*SH + ky][ox + kx/NP]
 * The last vector is stored masked to tl when `last`. */
INLINE void dwc_tile(const int KH, const int KW, const int NP, const int R, const int NVT, int SH,
                     const float *src, ptrdiff_t Wp, ptrdiff_t pst, const ptrdiff_t *coff,
                     const float *wk, float bias, float *y, ptrdiff_t ldy, int oy0, int ox0, int last,
                     vtail tl)
{
    vf acc[8][2];
#pragma GCC unroll 8
    for (int i = 0; i < R; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NVT; v++)
            acc[i][v] = vset1(bias);
    const ptrdiff_t rs = (ptrdiff_t)SH * Wp;
#pragma GCC unroll 3
    for (int ky = 0; ky < KH; ky++)
#pragma GCC unroll 3
        for (int kx = 0; kx < KW; kx++) {
            vf wv = vset1(wk[ky * KW + kx]);
            /* NP == 0: column offsets from coff (no division per tap) */
            ptrdiff_t cx = NP ? (kx % (NP ? NP : 1)) * pst + kx / (NP ? NP : 1) : coff[kx];
            const float *b = src + cx + ox0 + ((ptrdiff_t)oy0 * SH + ky) * Wp;
#pragma GCC unroll 8
            for (int i = 0; i < R; i++)
#pragma GCC unroll 2
                for (int v = 0; v < NVT; v++)
                    acc[i][v] = vfma(wv, vload(b + i * rs + v * VL), acc[i][v]);
        }
#pragma GCC unroll 8
    for (int i = 0; i < R; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NVT; v++) {
            float *d = y + (ptrdiff_t)(oy0 + i) * ldy + ox0 + v * VL;
            if (last && v == NVT - 1)
                vstore_t(d, acc[i][v], tl);
            else
                vstore(d, acc[i][v]);
        }
}

typedef void (*dwc_fn)(int kh, int kw, int rows, int nv, int SH, const float *src, ptrdiff_t Wp,
                       ptrdiff_t pst, const ptrdiff_t *coff, const float *wk, float bias, float *y,
                       ptrdiff_t ldy, int oy0, int ox0, int last, vtail tl);
#define DWC_ARGS SH, src, Wp, pst, coff, wk, bias, y, ldy, oy0, ox0, last, tl
#define DWC_CASE(KH, KW, NP, r, v)                                                 \
    case (r) * 4 + (v): dwc_tile(KH, KW, NP, r, v, DWC_ARGS); break;
#define DWC_FN(name, KH, KW, NP)                                                   \
    static void name(int kh, int kw, int rows, int nv, int SH, const float *src,      \
                     ptrdiff_t Wp, ptrdiff_t pst, const ptrdiff_t *coff, const float *wk, \
                     float bias, float *y, ptrdiff_t ldy, int oy0, int ox0, int last, \
                     vtail tl)                                                     \
    {                                                                              \
        (void)kh, (void)kw;                                                        \
        switch (rows * 4 + nv) {                                                   \
        DWC_CASE(KH, KW, NP, 1, 1) DWC_CASE(KH, KW, NP, 2, 1)                      \
        DWC_CASE(KH, KW, NP, 3, 1) DWC_CASE(KH, KW, NP, 4, 1)                      \
        DWC_CASE(KH, KW, NP, 5, 1) DWC_CASE(KH, KW, NP, 6, 1)                      \
        DWC_CASE(KH, KW, NP, 7, 1) DWC_CASE(KH, KW, NP, 8, 1)                      \
        DWC_CASE(KH, KW, NP, 1, 2) DWC_CASE(KH, KW, NP, 2, 2)                      \
        DWC_CASE(KH, KW, NP, 3, 2) DWC_CASE(KH, KW, NP, 4, 2)                      \
        default: break;                                                            \
        }                                                                          \
    }
DWC_FN(dwc_3x3s1, 3, 3, 1)
DWC_FN(dwc_3x3s2, 3, 3, 2)
DWC_FN(dwc_any, kh, kw, 0)

typedef struct dwc_geom {
    int H, W, dh, dl, pt, pl; /* the source plane and how it is placed */
    int KH, KW, NP, SH;       /* correlation: kernel, column phases, row stride */
    int OH, OW;               /* output plane */
    int Hs, Wp;               /* phase planes */
} dwc_geom;

static dwc_geom dwc_forward_geom(const pl_conv2d_shape *s)
{
    dwc_geom g = {.H = s->h, .W = s->w, .dh = 1, .dl = 1, .pt = s->pad_h, .pl = s->pad_w,
                  .KH = s->kh, .KW = s->kw, .NP = s->stride_w, .SH = s->stride_h,
                  .OH = s->oh, .OW = s->ow};
    g.Hs = (s->oh - 1) * s->stride_h + s->kh;
    g.Wp = ROUND_VL(s->ow) + (s->kw - 1) / s->stride_w;
    return g;
}

static dwc_geom dwc_backward_geom(const pl_conv2d_shape *s)
{
    dwc_geom g = {.H = s->oh, .W = s->ow, .dh = s->stride_h, .dl = s->stride_w,
                  .pt = s->kh - 1 - s->pad_h, .pl = s->kw - 1 - s->pad_w,
                  .KH = s->kh, .KW = s->kw, .NP = 1, .SH = 1, .OH = s->h, .OW = s->w};
    g.Hs = s->h - 1 + s->kh;
    g.Wp = ROUND_VL(s->w) + s->kw - 1;
    return g;
}

/* the phase planes with the slack dwc_build writes into */
static size_t dwc_src_floats(const dwc_geom *g)
{
    return ROUND_VL((size_t)g->NP * g->Hs * g->Wp) + VL;
}

/* one output plane from its built source: tiles of up to 8 rows x 1 vector
 * (narrow planes) or 4 rows x 2 vectors */
static void dwc_plane(const dwc_geom *g, const ptrdiff_t *coff, const float *src, const float *wk,
                      float bias, float *y)
{
    int V = (g->OW + VL - 1) / VL, ragged = g->OW % VL != 0;
    vtail tl = vtail_make(g->OW - (V - 1) * VL);
    int NVT = V >= 2 ? 2 : 1, R = NVT == 2 ? 4 : 8;
    dwc_fn fn = g->KH == 3 && g->KW == 3 && g->NP == 1   ? dwc_3x3s1
                : g->KH == 3 && g->KW == 3 && g->NP == 2 ? dwc_3x3s2
                                                         : dwc_any;
    ptrdiff_t pst = (ptrdiff_t)g->Hs * g->Wp;
    for (int oy0 = 0; oy0 < g->OH; oy0 += R) {
        int rows = imin(R, g->OH - oy0);
        for (int v0 = 0; v0 < V; v0 += NVT) {
            int nv = imin(NVT, V - v0);
            fn(g->KH, g->KW, rows, nv, g->SH, src, g->Wp, pst, coff, wk, bias, y, g->OW, oy0,
               v0 * VL, ragged && v0 + nv == V, tl);
        }
    }
}

typedef struct dwc_job {
    pl__simd *s;
    dwc_geom g;
    const float *in, *w, *b; /* w: [C][KH*KW] as the correlation uses it */
    float *out;
    int C, per_task;
    int64_t planes;
} dwc_job;

static void dwc_task(void *ctx, int64_t t, int worker)
{
    dwc_job *j = ctx;
    const dwc_geom *g = &j->g;
    float *buf = pl__simd_wbuf(j->s, worker);
    ptrdiff_t *coff = (ptrdiff_t *)(void *)(buf + dwc_src_floats(g)); /* [KW] */
    for (int kx = 0; kx < g->KW; kx++)
        coff[kx] = (ptrdiff_t)(kx % g->NP) * g->Hs * g->Wp + kx / g->NP;
    size_t ip = (size_t)g->H * g->W, op = (size_t)g->OH * g->OW, kk = (size_t)g->KH * g->KW;
    int64_t p1 = (t + 1) * j->per_task < j->planes ? (t + 1) * j->per_task : j->planes;
    for (int64_t p = t * j->per_task; p < p1; p++) {
        int c = (int)(p % j->C);
        dwc_build(j->in + (size_t)p * ip, g->H, g->W, g->dh, g->dl, g->pt, g->pl, g->NP, g->Hs,
                  g->Wp, buf);
        dwc_plane(g, coff, buf, j->w + (size_t)c * kk, j->b ? j->b[c] : 0.0f, j->out + (size_t)p * op);
    }
}

static pl_status dwc_run(pl__simd *s, const dwc_geom *g, int n, int C, const float *in,
                         const float *w, const float *b, float *out)
{
    /* + the column offsets of the taps, as ptrdiff_t */
    pl_status st = pl__simd_reserve(s, dwc_src_floats(g) + 2 * (size_t)g->KW + 2);
    if (st)
        return st;
    size_t op = (size_t)g->OH * g->OW;
    int per = (int)(2048 / (op ? op : 1)); /* planes per task: from the shape only */
    per = per < 1 ? 1 : per > 64 ? 64 : per;
    dwc_job j = {.s = s, .g = *g, .in = in, .w = w, .b = b, .out = out, .C = C, .per_task = per,
                 .planes = (int64_t)n * C};
    pl__simd_run(s, (j.planes + per - 1) / per, 2.0 * j.planes * op * g->KH * g->KW, dwc_task, &j);
    return PL_OK;
}

static pl_status dw_forward(pl__simd *s, const pl_conv2d_shape *sh, const float *x,
                            const float *w, const float *b, float *y)
{
    dwc_geom g = dwc_forward_geom(sh);
    return dwc_run(s, &g, sh->n, sh->cin, x, w, b, y);
}

static pl_status dw_backward_data(pl__simd *s, const pl_conv2d_shape *sh, const float *dy,
                                  const float *w, float *dx)
{
    size_t kk = (size_t)sh->kh * sh->kw;
    float *wf = pl__simd_slot(s, SLOT_W, (size_t)sh->cin * kk);
    if (!wf)
        return PL_ENOMEM;
    for (size_t c = 0; c < (size_t)sh->cin; c++) /* flipped kernels */
        for (size_t k = 0; k < kk; k++)
            wf[c * kk + k] = w[c * kk + kk - 1 - k];
    dwc_geom g = dwc_backward_geom(sh);
    return dwc_run(s, &g, sh->n, sh->cin, dy, wf, NULL, dx);
}

/* Weight gradient of one channel, a block of NT (<= 9) taps at source
 * offsets off[]: lane-wise sums in lanes[k][VL] carried over the batch,
 *   lanes[k] += Σ_{oy, ox} dy[oy][ox] · S[off[k] + oy*SH*Wp + ox]
 * (the ragged last vector of a row loaded zero-filled in both operands, so
 * its extra lanes add exactly nothing). */
INLINE void dww_block(const int NT, const ptrdiff_t *off, int OH, int OW, ptrdiff_t rs,
                      const float *src, const float *dy, float *lanes)
{
    vf acc[9];
    ptrdiff_t o[9];
#pragma GCC unroll 9
    for (int k = 0; k < NT; k++) {
        acc[k] = vload(lanes + k * VL);
        o[k] = off[k];
    }
    int of = OW / VL * VL;
    vtail tm = vtail_make(OW > of ? OW - of : VL);
    for (int oy = 0; oy < OH; oy++) {
        const float *dr = dy + (ptrdiff_t)oy * OW, *sr = src + oy * rs;
        int q = 0;
        for (; q < of; q += VL) {
            vf dv = vload(dr + q);
#pragma GCC unroll 9
            for (int k = 0; k < NT; k++)
                acc[k] = vfma(dv, vload(sr + o[k] + q), acc[k]);
        }
        if (q < OW) {
            vf dv = vload_t(dr + q, tm);
#pragma GCC unroll 9
            for (int k = 0; k < NT; k++)
                acc[k] = vfma(dv, vload_t(sr + o[k] + q, tm), acc[k]);
        }
    }
#pragma GCC unroll 9
    for (int k = 0; k < NT; k++)
        vstore(lanes + k * VL, acc[k]);
}

static void dww_blocks(int nt, const ptrdiff_t *off, int OH, int OW, ptrdiff_t rs,
                       const float *src, const float *dy, float *lanes)
{
    switch (nt) {
    case 1: dww_block(1, off, OH, OW, rs, src, dy, lanes); break;
    case 2: dww_block(2, off, OH, OW, rs, src, dy, lanes); break;
    case 3: dww_block(3, off, OH, OW, rs, src, dy, lanes); break;
    case 4: dww_block(4, off, OH, OW, rs, src, dy, lanes); break;
    case 5: dww_block(5, off, OH, OW, rs, src, dy, lanes); break;
    case 6: dww_block(6, off, OH, OW, rs, src, dy, lanes); break;
    case 7: dww_block(7, off, OH, OW, rs, src, dy, lanes); break;
    case 8: dww_block(8, off, OH, OW, rs, src, dy, lanes); break;
    default: dww_block(9, off, OH, OW, rs, src, dy, lanes); break;
    }
}

typedef struct dww_job {
    pl__simd *s;
    dwc_geom g;
    const float *x, *dy;
    float *part; /* [chunks][C][kk + 1]: per chunk of images, dw then db */
    int n, C, chunk, want_db;
} dww_job;

/* One fixed chunk of images per task (from n alone), channel by channel:
 * for each channel, lane-wise sums over (image of the chunk, row, column
 * vector) in that order, then their horizontal sums (fixed tree) into the
 * chunk's partials; the chunks are added in chunk order afterwards. The
 * chunk's planes are read image-major, channel after channel, as they lie
 * in memory. */
static void dww_task(void *ctx, int64_t t, int worker)
{
    dww_job *j = ctx;
    const dwc_geom *g = &j->g;
    int kk = g->KH * g->KW, i0 = (int)t * j->chunk, i1 = imin(j->n, i0 + j->chunk);
    float *src = pl__simd_wbuf(j->s, worker);
    float *lanes = src + dwc_src_floats(g); /* [kk + 1][VL], the last: db */
    ptrdiff_t *off = (ptrdiff_t *)(void *)(lanes + (size_t)(kk + 1) * VL); /* [kk] */
    float *part = j->part + (size_t)t * j->C * (kk + 1);
    size_t ip = (size_t)g->H * g->W, op = (size_t)g->OH * g->OW;
    ptrdiff_t pst = (ptrdiff_t)g->Hs * g->Wp, rs = (ptrdiff_t)g->SH * g->Wp;
    for (int k = 0; k < kk; k++) {
        int ky = k / g->KW, kx = k % g->KW;
        off[k] = (kx % g->NP) * pst + (ptrdiff_t)ky * g->Wp + kx / g->NP;
    }
    int pf = (int)op / VL * VL;
    vtail tp = vtail_make((int)op > pf ? (int)op - pf : VL);
    for (int c = 0; c < j->C; c++) {
        zero_row(lanes, (kk + 1) * VL);
        for (int i = i0; i < i1; i++) {
            size_t plane = (size_t)i * j->C + c;
            const float *dy = j->dy + plane * op;
            dwc_build(j->x + plane * ip, g->H, g->W, g->dh, g->dl, g->pt, g->pl, g->NP, g->Hs, g->Wp, src);
            for (int k0 = 0; k0 < kk; k0 += 9)
                dww_blocks(imin(9, kk - k0), off + k0, g->OH, g->OW, rs, src, dy, lanes + (size_t)k0 * VL);
            if (j->want_db) {
                vf a = vload(lanes + (size_t)kk * VL);
                int q = 0;
                for (; q < pf; q += VL)
                    a = vadd(a, vload(dy + q));
                if (q < (int)op)
                    a = vadd(a, vload_t(dy + q, tp));
                vstore(lanes + (size_t)kk * VL, a);
            }
        }
        for (int k = 0; k <= kk; k++)
            part[(size_t)c * (kk + 1) + k] = vhsum(vload(lanes + (size_t)k * VL));
    }
}

static pl_status dw_backward_weight(pl__simd *s, const pl_conv2d_shape *sh, const float *x,
                                    const float *dy, float *dw, float *db)
{
    dwc_geom g = dwc_forward_geom(sh);
    size_t kk = (size_t)sh->kh * sh->kw, C = (size_t)sh->cin;
    /* fixed chunks of the batch, as the dense weight gradient cuts them */
    int chunk = imin(4, sh->n / 16 > 0 ? sh->n / 16 : 1);
    int chunks = (sh->n + chunk - 1) / chunk;
    float *part = pl__simd_slot(s, SLOT_PART, (size_t)chunks * C * (kk + 1));
    if (!part)
        return PL_ENOMEM;
    pl_status st = pl__simd_reserve(s, dwc_src_floats(&g) + (kk + 1) * VL + 2 * kk + 2);
    if (st)
        return st;
    dww_job j = {.s = s, .g = g, .x = x, .dy = dy, .part = part, .n = sh->n, .C = sh->cin,
                 .chunk = chunk, .want_db = db != NULL};
    pl__simd_run(s, chunks, 2.0 * sh->n * sh->cin * kk * sh->oh * sh->ow, dww_task, &j);
    for (size_t c = 0; c < C; c++) /* chunks in order */
        for (size_t k = 0; k <= kk; k++) {
            float a = part[c * (kk + 1) + k];
            for (int t = 1; t < chunks; t++)
                a += part[((size_t)t * C + c) * (kk + 1) + k];
            if (k < kk)
                dw[c * kk + k] = a;
            else if (db)
                db[c] = a;
        }
    return PL_OK;
}

static int is_depthwise(const pl_conv2d_shape *sh, int groups)
{
    return groups > 1 && groups == sh->cin && groups == sh->cout;
}

static pl_status k_conv2d_grouped_forward(pl__simd *s, const pl_conv2d_shape *sh, int groups,
                                          const float *x, const float *w, const float *b, float *y)
{
    pl_status st = gconv_check(s, sh, groups);
    if (st)
        return st;
    if (groups == 1)
        return k_conv2d_forward(s, sh, x, w, b, y);
    if (is_depthwise(sh, groups))
        return dw_forward(s, sh, x, w, b, y);
    int cg = sh->cin / groups, og = sh->cout / groups;
    size_t ip = (size_t)sh->h * sh->w, op = (size_t)sh->oh * sh->ow;
    size_t wg = (size_t)og * cg * sh->kh * sh->kw;
    float *xg = pl__simd_slot(s, SLOT_GIN, (size_t)sh->n * cg * ip);
    float *yg = xg ? pl__simd_slot(s, SLOT_GOUT, (size_t)sh->n * og * op) : NULL;
    if (!yg)
        return PL_ENOMEM;
    pl_conv2d_shape t = *sh;
    t.cin = cg;
    t.cout = og;
    for (int g = 0; g < groups; g++) {
        chan_copy(xg, x, sh->n, sh->cin, g * cg, cg, ip, 0);
        if ((st = k_conv2d_forward(s, &t, xg, w + g * wg, b ? b + (size_t)g * og : NULL, yg)))
            return st;
        chan_copy(y, yg, sh->n, sh->cout, g * og, og, op, 1);
    }
    return PL_OK;
}

static pl_status k_conv2d_grouped_backward_data(pl__simd *s, const pl_conv2d_shape *sh, int groups,
                                                const float *dy, const float *w, float *dx)
{
    pl_status st = gconv_check(s, sh, groups);
    if (st)
        return st;
    if (groups == 1)
        return k_conv2d_backward_data(s, sh, dy, w, dx);
    if (is_depthwise(sh, groups))
        return dw_backward_data(s, sh, dy, w, dx);
    int cg = sh->cin / groups, og = sh->cout / groups;
    size_t ip = (size_t)sh->h * sh->w, op = (size_t)sh->oh * sh->ow;
    size_t wg = (size_t)og * cg * sh->kh * sh->kw;
    float *dyg = pl__simd_slot(s, SLOT_GOUT, (size_t)sh->n * og * op);
    float *dxg = dyg ? pl__simd_slot(s, SLOT_GIN, (size_t)sh->n * cg * ip) : NULL;
    if (!dxg)
        return PL_ENOMEM;
    pl_conv2d_shape t = *sh;
    t.cin = cg;
    t.cout = og;
    for (int g = 0; g < groups; g++) {
        chan_copy(dyg, dy, sh->n, sh->cout, g * og, og, op, 0);
        if ((st = k_conv2d_backward_data(s, &t, dyg, w + g * wg, dxg)))
            return st;
        chan_copy(dx, dxg, sh->n, sh->cin, g * cg, cg, ip, 1);
    }
    return PL_OK;
}

static pl_status k_conv2d_grouped_backward_weight(pl__simd *s, const pl_conv2d_shape *sh,
                                                  int groups, const float *x, const float *dy,
                                                  float *dw, float *db)
{
    pl_status st = gconv_check(s, sh, groups);
    if (st)
        return st;
    if (groups == 1)
        return k_conv2d_backward_weight(s, sh, x, dy, dw, db);
    if (is_depthwise(sh, groups))
        return dw_backward_weight(s, sh, x, dy, dw, db);
    int cg = sh->cin / groups, og = sh->cout / groups;
    size_t ip = (size_t)sh->h * sh->w, op = (size_t)sh->oh * sh->ow;
    size_t wg = (size_t)og * cg * sh->kh * sh->kw;
    float *xg = pl__simd_slot(s, SLOT_GIN, (size_t)sh->n * cg * ip);
    float *dyg = xg ? pl__simd_slot(s, SLOT_GOUT, (size_t)sh->n * og * op) : NULL;
    if (!dyg)
        return PL_ENOMEM;
    pl_conv2d_shape t = *sh;
    t.cin = cg;
    t.cout = og;
    for (int g = 0; g < groups; g++) {
        chan_copy(xg, x, sh->n, sh->cin, g * cg, cg, ip, 0);
        chan_copy(dyg, dy, sh->n, sh->cout, g * og, og, op, 0);
        if ((st = k_conv2d_backward_weight(s, &t, xg, dyg, dw + g * wg, db ? db + (size_t)g * og : NULL)))
            return st;
    }
    return PL_OK;
}

const pl__simd_impl ISA_TABLE = {
    .name = ISA_NAME,
    .conv2d_forward = k_conv2d_forward,
    .conv2d_backward_data = k_conv2d_backward_data,
    .conv2d_backward_weight = k_conv2d_backward_weight,
    .linear_forward = k_linear_forward,
    .linear_forward_relu = k_linear_forward_relu,
    .linear_forward_csr = k_linear_forward_csr,
    .conv2d_forward_relu = k_conv2d_forward_relu,
    .conv2d_forward_relu_maxpool = k_conv2d_forward_relu_maxpool,
    .maxpool2d_relu_backward = k_maxpool2d_relu_backward,
    .linear_backward_data = k_linear_backward_data,
    .linear_backward_weight = k_linear_backward_weight,
    .maxpool2d_forward = k_maxpool2d_forward,
    .maxpool2d_backward = k_maxpool2d_backward,
    .avgpool2d_forward = k_avgpool2d_forward,
    .relu_forward = k_relu_forward,
    .relu_backward = k_relu_backward,
    .adam_update = k_adam_update,
    .avgpool2d_backward = k_avgpool2d_backward,
    .softmax_xent = k_softmax_xent,
    .sgd_update = k_sgd_update,
    .conv2d_grouped_forward = k_conv2d_grouped_forward,
    .conv2d_grouped_backward_data = k_conv2d_grouped_backward_data,
    .conv2d_grouped_backward_weight = k_conv2d_grouped_backward_weight,
};
