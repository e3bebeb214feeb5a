/*
 * Backend kernels: the `ref` oracle checked against finite differences and
 * hand-computed optimizer steps; the `simd` backend checked against `ref`
 * on odd shapes (every instruction set this CPU runs) and checked for
 * bit-identical results at 1, 2 and 3 threads. The ABI 1.1 optional slots
 * (fused conv/linear + ReLU, conv + ReLU + max pooling, CSR linear) are
 * checked against the unfused simd calls bit for bit and against ref's
 * dense kernels.
 *
 * Tolerances (float32 kernels against ref's double accumulation):
 *  - simd vs ref: max|simd - ref| <= 1e-4 * (1 + max|ref|) per output
 *    tensor. Sums here run over at most a few thousand products of values
 *    in [-1, 1]; float32 accumulation error stays near 1e-6 relative.
 *    Max pooling, argmax and relu are exact and compared bit for bit; the
 *    optimizers repeat ref's float operations and must agree within 1e-6.
 *  - finite differences of ref: L = Σ y·r (r random), central differences
 *    in the float32 forward with L accumulated in double, eps = 1e-2 for
 *    kernels linear in the perturbed input (conv, linear, avgpool: the
 *    difference quotient is exact up to rounding) and 1e-3 for maxpool,
 *    relu and softmax. Pass: |ana - num| <= 1e-2 * max(|ana|, |num|) + 1e-4.
 *    Maxpool and relu inputs are kept at least 0.05 away from ties and from
 *    0 so that no perturbation crosses a kink.
 *  - every output buffer sits between two guards of 64 sentinel words
 *    (a NaN bit pattern) that must come back untouched.
 */
#include "pltest_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- data (helpers: tests/support/pltest_kernels.h) ---- */

/* n distinct values, spaced 0.05 apart, in random order (no ties in pooling) */
static float *distinct(size_t n)
{
    float *p = malloc(sizeof(float) * n);
    cr_assert(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(0.05 * ((double)i - (double)n / 2));
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(urand() * (double)i);
        float t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
    return p;
}

/* ---- shapes ---------------------------------------------------------------- */

static pl_conv2d_shape conv_shape(int n, int cin, int h, int w, int cout, int kh, int kw, int sh,
                                  int sw, int ph, int pw)
{
    pl_conv2d_shape s = {n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, 0, 0};
    s.oh = (h + 2 * ph - kh) / sh + 1;
    s.ow = (w + 2 * pw - kw) / sw + 1;
    return s;
}

static pl_pool2d_shape pool_shape(int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                                  int ph, int pw)
{
    pl_pool2d_shape s = {n, c, h, w, kh, kw, sh, sw, ph, pw, 0, 0};
    s.oh = (h + 2 * ph - kh) / sh + 1;
    s.ow = (w + 2 * pw - kw) / sw + 1;
    return s;
}

static const int conv_table[][11] = {
    /* n cin  h   w cout kh kw sh sw ph pw */
    {3, 5, 11, 11, 7, 3, 3, 1, 1, 1, 1},
    {3, 5, 11, 11, 7, 5, 5, 1, 1, 2, 2},
    {3, 5, 11, 11, 7, 1, 1, 1, 1, 0, 0},
    {3, 5, 11, 9, 7, 2, 3, 1, 1, 0, 1},
    {3, 5, 11, 11, 7, 3, 3, 2, 2, 1, 1},
    {2, 3, 13, 10, 6, 3, 3, 2, 1, 0, 2},
    {2, 2, 6, 7, 3, 3, 3, 3, 3, 0, 0},
    {2, 3, 7, 7, 5, 1, 1, 1, 1, 1, 1},  /* pad >= kernel: col2im path */
    {2, 1, 28, 28, 4, 3, 3, 1, 1, 1, 1}, /* SimpleCNN conv1 */
    {5, 4, 14, 14, 8, 3, 3, 1, 1, 1, 1}, /* SimpleCNN conv2 */
    {2, 17, 9, 7, 19, 3, 3, 1, 1, 1, 1},
    {1, 9, 20, 37, 6, 3, 3, 1, 1, 0, 0}, /* long rows, no padding */
    {1, 300, 5, 5, 6, 3, 3, 1, 1, 1, 1}, /* K = 2700: k-blocked gemm */
    {37, 3, 6, 5, 4, 3, 3, 1, 1, 1, 1},  /* batch > 16: chunked weight gradient */
    /* stride 1 over one long row of pitch Wp (Wp < the row rounded to vectors) */
    {2, 13, 7, 7, 11, 3, 3, 1, 1, 1, 1},  /* resnet20 stage 3 shape, odd channels */
    {2, 4, 28, 20, 9, 3, 3, 1, 1, 1, 1},  /* rows of 20: two vectors a row before */
    {3, 6, 28, 28, 17, 3, 3, 1, 1, 1, 1}, /* resnet20 stage 1 shape, 17 = 2 x 8 + 1 rows */
    /* stride 2 along x: the input gradient's interleaved col2im */
    {2, 4, 28, 28, 6, 3, 3, 2, 2, 1, 1},  /* resnet20's downsampling conv */
    {2, 5, 14, 14, 6, 1, 1, 2, 2, 0, 0},  /* its 1x1 projection */
    {2, 3, 9, 70, 5, 3, 3, 2, 2, 1, 1},   /* rows of 35 outputs: several vectors, ragged end */
    {2, 3, 8, 33, 4, 4, 4, 2, 2, 2, 2},   /* even kernel, odd width */
    /* 3x3 stride 1 with >= 16 channels both ways: Winograd F(2x2, 3x3),
     * forward and (the same, over rotated weights) input gradient */
    {2, 16, 7, 7, 16, 3, 3, 1, 1, 1, 1},   /* resnet20 stage 3 plane: odd, half tiles */
    {2, 33, 14, 13, 20, 3, 3, 1, 1, 0, 0}, /* no padding: the input gradient pads 2 */
    {1, 16, 28, 28, 35, 3, 3, 1, 1, 1, 1}, /* resnet20 stage 1 plane, ragged output vectors */
    {3, 20, 5, 6, 17, 3, 3, 1, 1, 1, 0},   /* unequal padding */
    {2, 16, 1, 1, 18, 3, 3, 1, 1, 1, 1},   /* 1x1 plane: one tile, three quarters overhang */
    {1, 64, 9, 11, 64, 3, 3, 1, 1, 2, 2},  /* pad 2: output larger than the input */
};
#define N_CONV (sizeof conv_table / sizeof conv_table[0])

static const int linear_table[][3] = {
    /* n in out */
    {5, 37, 13}, {1, 1, 1}, {3, 100, 70}, {9, 17, 33}, {64, 392, 64}, {13, 5, 2},
    /* several forward row blocks: narrow (whole-width blocks) and wide (ragged column blocks) */
    {70, 19, 33}, {130, 50, 90},
};
#define N_LINEAR (sizeof linear_table / sizeof linear_table[0])

static const int pool_table[][10] = {
    /* n c  h   w kh kw sh sw ph pw */
    {2, 3, 11, 11, 2, 2, 2, 2, 0, 0},
    {2, 3, 11, 11, 3, 3, 2, 2, 1, 1},
    {2, 3, 11, 13, 3, 3, 1, 1, 1, 1},
    {2, 3, 11, 11, 3, 3, 3, 3, 0, 0},
    {2, 3, 11, 11, 2, 3, 1, 2, 1, 1},
    {1, 2, 40, 45, 2, 2, 2, 2, 0, 0},
    {3, 4, 28, 28, 2, 2, 2, 2, 0, 0},
    {2, 2, 37, 37, 3, 3, 1, 1, 0, 0},
    {2, 2, 9, 9, 3, 2, 2, 3, 1, 1},
    {1, 1, 5, 3, 5, 3, 1, 1, 2, 1},
};
#define N_POOL (sizeof pool_table / sizeof pool_table[0])

#define CONV_ARGS(t) t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10]
#define POOL_ARGS(t) t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9]

static size_t conv_nx(const pl_conv2d_shape *s) { return (size_t)s->n * s->cin * s->h * s->w; }
static size_t conv_ny(const pl_conv2d_shape *s) { return (size_t)s->n * s->cout * s->oh * s->ow; }
static size_t conv_nw(const pl_conv2d_shape *s) { return (size_t)s->cout * s->cin * s->kh * s->kw; }

/* ---- simd vs ref on odd shapes --------------------------------------------- */

static void conv_compare(be *ref, be *sd, const pl_conv2d_shape *s, const char *isa)
{
    char what[160];
    size_t nx = conv_nx(s), ny = conv_ny(s), nw = conv_nw(s);
    float *x = rnd(nx), *w = rnd(nw), *b = rnd((size_t)s->cout), *dy = rnd(ny);
    float *ry = malloc(sizeof(float) * ny), *rdx = malloc(sizeof(float) * nx);
    float *rdw = malloc(sizeof(float) * nw), *rdb = malloc(sizeof(float) * s->cout);
    float *y = galloc(ny), *dx = galloc(nx), *dw = galloc(nw), *db = galloc((size_t)s->cout);
    snprintf(what, sizeof what, "[%s] conv n%d c%d %dx%d -> c%d k%dx%d s%d,%d p%d,%d", isa, s->n,
             s->cin, s->h, s->w, s->cout, s->kh, s->kw, s->stride_h, s->stride_w, s->pad_h, s->pad_w);

    cr_assert_eq(ref->ops->conv2d_forward(ref->st, s, x, w, b, ry), PL_OK);
    cr_assert_eq(sd->ops->conv2d_forward(sd->st, s, x, w, b, y), PL_OK, "%s", what);
    gcheck(y, ny, what);
    close_enough(ry, y, ny, TOL, what);
    /* without bias */
    cr_assert_eq(ref->ops->conv2d_forward(ref->st, s, x, w, NULL, ry), PL_OK);
    cr_assert_eq(sd->ops->conv2d_forward(sd->st, s, x, w, NULL, y), PL_OK);
    gcheck(y, ny, what);
    close_enough(ry, y, ny, TOL, what);

    cr_assert_eq(ref->ops->conv2d_backward_data(ref->st, s, dy, w, rdx), PL_OK);
    cr_assert_eq(sd->ops->conv2d_backward_data(sd->st, s, dy, w, dx), PL_OK, "%s", what);
    gcheck(dx, nx, what);
    close_enough(rdx, dx, nx, TOL, what);

    cr_assert_eq(ref->ops->conv2d_backward_weight(ref->st, s, x, dy, rdw, rdb), PL_OK);
    cr_assert_eq(sd->ops->conv2d_backward_weight(sd->st, s, x, dy, dw, db), PL_OK, "%s", what);
    gcheck(dw, nw, what);
    gcheck(db, (size_t)s->cout, what);
    close_enough(rdw, dw, nw, TOL, what);
    close_enough(rdb, db, (size_t)s->cout, TOL, what);
    cr_assert_eq(sd->ops->conv2d_backward_weight(sd->st, s, x, dy, dw, NULL), PL_OK);
    close_enough(rdw, dw, nw, TOL, what);

    free(x), free(w), free(b), free(dy), free(ry), free(rdx), free(rdw), free(rdb);
    gfree(y), gfree(dx), gfree(dw), gfree(db);
}

static void linear_compare(be *ref, be *sd, int n, int in, int out, const char *isa)
{
    char what[96];
    snprintf(what, sizeof what, "[%s] linear n%d in%d out%d", isa, n, in, out);
    float *x = rnd((size_t)n * in), *w = rnd((size_t)out * in), *b = rnd((size_t)out);
    float *dy = rnd((size_t)n * out);
    float *ry = malloc(sizeof(float) * n * out), *rdx = malloc(sizeof(float) * n * in);
    float *rdw = malloc(sizeof(float) * out * in), *rdb = malloc(sizeof(float) * out);
    float *y = galloc((size_t)n * out), *dx = galloc((size_t)n * in);
    float *dw = galloc((size_t)out * in), *db = galloc((size_t)out);

    for (int bias = 0; bias < 2; bias++) {
        cr_assert_eq(ref->ops->linear_forward(ref->st, n, in, out, x, w, bias ? b : NULL, ry), PL_OK);
        cr_assert_eq(sd->ops->linear_forward(sd->st, n, in, out, x, w, bias ? b : NULL, y), PL_OK);
        gcheck(y, (size_t)n * out, what);
        close_enough(ry, y, (size_t)n * out, TOL, what);
    }
    cr_assert_eq(ref->ops->linear_backward_data(ref->st, n, in, out, dy, w, rdx), PL_OK);
    cr_assert_eq(sd->ops->linear_backward_data(sd->st, n, in, out, dy, w, dx), PL_OK);
    gcheck(dx, (size_t)n * in, what);
    close_enough(rdx, dx, (size_t)n * in, TOL, what);
    cr_assert_eq(ref->ops->linear_backward_weight(ref->st, n, in, out, x, dy, rdw, rdb), PL_OK);
    cr_assert_eq(sd->ops->linear_backward_weight(sd->st, n, in, out, x, dy, dw, db), PL_OK);
    gcheck(dw, (size_t)out * in, what);
    gcheck(db, (size_t)out, what);
    close_enough(rdw, dw, (size_t)out * in, TOL, what);
    close_enough(rdb, db, (size_t)out, TOL, what);

    free(x), free(w), free(b), free(dy), free(ry), free(rdx), free(rdw), free(rdb);
    gfree(y), gfree(dx), gfree(dw), gfree(db);
}

static void pool_compare(be *ref, be *sd, const pl_pool2d_shape *s, const char *isa)
{
    char what[128];
    snprintf(what, sizeof what, "[%s] pool n%d c%d %dx%d k%dx%d s%d,%d p%d,%d", isa, s->n, s->c,
             s->h, s->w, s->kh, s->kw, s->stride_h, s->stride_w, s->pad_h, s->pad_w);
    size_t nx = (size_t)s->n * s->c * s->h * s->w, ny = (size_t)s->n * s->c * s->oh * s->ow;
    float *x = distinct(nx), *dy = rnd(ny);
    float *ry = malloc(sizeof(float) * ny), *rdx = malloc(sizeof(float) * nx);
    int32_t *ram = malloc(sizeof(int32_t) * ny);
    float *y = galloc(ny), *dx = galloc(nx);
    int32_t *am = galloc(ny);

    cr_assert_eq(ref->ops->maxpool2d_forward(ref->st, s, x, ry, ram), PL_OK);
    cr_assert_eq(sd->ops->maxpool2d_forward(sd->st, s, x, y, am), PL_OK, "%s", what);
    gcheck(y, ny, what);
    gcheck(am, ny, what);
    cr_assert(!memcmp(ry, y, sizeof(float) * ny), "%s: maxpool values differ", what);
    cr_assert(!memcmp(ram, am, sizeof(int32_t) * ny), "%s: argmax differs", what);
    cr_assert_eq(sd->ops->maxpool2d_forward(sd->st, s, x, y, NULL), PL_OK);
    cr_assert(!memcmp(ry, y, sizeof(float) * ny), "%s: maxpool without argmax differs", what);

    cr_assert_eq(ref->ops->maxpool2d_backward(ref->st, s, dy, ram, rdx), PL_OK);
    cr_assert_eq(sd->ops->maxpool2d_backward(sd->st, s, dy, am, dx), PL_OK);
    gcheck(dx, nx, what);
    close_enough(rdx, dx, nx, TOL, what);

    cr_assert_eq(ref->ops->avgpool2d_forward(ref->st, s, x, ry), PL_OK);
    cr_assert_eq(sd->ops->avgpool2d_forward(sd->st, s, x, y), PL_OK);
    gcheck(y, ny, what);
    close_enough(ry, y, ny, TOL, what);
    cr_assert_eq(ref->ops->avgpool2d_backward(ref->st, s, dy, rdx), PL_OK);
    cr_assert_eq(sd->ops->avgpool2d_backward(sd->st, s, dy, dx), PL_OK);
    gcheck(dx, nx, what);
    close_enough(rdx, dx, nx, TOL, what);

    free(x), free(dy), free(ry), free(rdx), free(ram);
    gfree(y), gfree(dx), gfree(am);
}

Test(backends, simd_matches_ref_conv)
{
    be ref = be_open("ref", 1);
    for (int i = 0; i < N_ISAS; i++) {
        be sd;
        if (!be_try(&sd, "simd", 2, isas[i]))
            continue;
        rng_reset(1);
        for (size_t k = 0; k < N_CONV; k++) {
            pl_conv2d_shape s = conv_shape(CONV_ARGS(conv_table[k]));
            conv_compare(&ref, &sd, &s, isas[i]);
        }
        be_close(&sd);
    }
    be_close(&ref);
}

Test(backends, simd_matches_ref_linear)
{
    be ref = be_open("ref", 1);
    for (int i = 0; i < N_ISAS; i++) {
        be sd;
        if (!be_try(&sd, "simd", 2, isas[i]))
            continue;
        rng_reset(2);
        for (size_t k = 0; k < N_LINEAR; k++)
            linear_compare(&ref, &sd, linear_table[k][0], linear_table[k][1], linear_table[k][2], isas[i]);
        be_close(&sd);
    }
    be_close(&ref);
}

Test(backends, simd_matches_ref_pool)
{
    be ref = be_open("ref", 1);
    for (int i = 0; i < N_ISAS; i++) {
        be sd;
        if (!be_try(&sd, "simd", 2, isas[i]))
            continue;
        rng_reset(3);
        for (size_t k = 0; k < N_POOL; k++) {
            pl_pool2d_shape s = pool_shape(POOL_ARGS(pool_table[k]));
            pool_compare(&ref, &sd, &s, isas[i]);
        }
        be_close(&sd);
    }
    be_close(&ref);
}

Test(backends, maxpool_ties_go_to_the_first)
{
    be ref = be_open("ref", 1);
    pl_pool2d_shape s = pool_shape(1, 2, 9, 10, 3, 3, 2, 2, 1, 1);
    size_t nx = 2 * 9 * 10, ny = (size_t)2 * s.oh * s.ow;
    float *x = malloc(sizeof(float) * nx);
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)(i % 3 == 0); /* many equal maxima per window */
    float *ry = malloc(sizeof(float) * ny), *y = galloc(ny);
    int32_t *ram = malloc(sizeof(int32_t) * ny), *am = galloc(ny);
    cr_assert_eq(ref.ops->maxpool2d_forward(ref.st, &s, x, ry, ram), PL_OK);
    /* the first maximum of window (oy, ox) in row-major order */
    for (int p = 0; p < 2; p++)
        for (int oy = 0; oy < s.oh; oy++)
            for (int ox = 0; ox < s.ow; ox++) {
                int first = -1;
                for (int ky = 0; ky < 3 && first < 0; ky++)
                    for (int kx = 0; kx < 3 && first < 0; kx++) {
                        int iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
                        if (iy >= 0 && iy < 9 && ix >= 0 && ix < 10 && x[p * 90 + iy * 10 + ix] == 1.0f)
                            first = iy * 10 + ix;
                    }
                if (first >= 0)
                    cr_assert_eq(ram[(p * s.oh + oy) * s.ow + ox], first);
            }
    for (int i = 0; i < N_ISAS; i++) {
        be sd;
        if (!be_try(&sd, "simd", 1, isas[i]))
            continue;
        cr_assert_eq(sd.ops->maxpool2d_forward(sd.st, &s, x, y, am), PL_OK);
        gcheck(am, ny, isas[i]);
        cr_assert(!memcmp(am, ram, sizeof(int32_t) * ny), "[%s] tie-breaking differs", isas[i]);
        cr_assert(!memcmp(y, ry, sizeof(float) * ny));
        be_close(&sd);
    }
    free(x), free(ry), free(ram), gfree(y), gfree(am);
    be_close(&ref);
}

Test(backends, simd_matches_ref_relu_softmax)
{
    be ref = be_open("ref", 1);
    const int64_t n = 100003;
    float *x = rnd((size_t)n), *dy = rnd((size_t)n);
    x[0] = 0.0f, x[1] = -0.0f, x[2] = NAN, x[3] = -INFINITY, x[4] = INFINITY;
    float *ry = malloc(sizeof(float) * n), *rdx = malloc(sizeof(float) * n);
    float *y = galloc((size_t)n), *dx = galloc((size_t)n);
    cr_assert_eq(ref.ops->relu_forward(ref.st, n, x, ry), PL_OK);
    cr_assert_eq(ref.ops->relu_backward(ref.st, n, ry, dy, rdx), PL_OK);
    cr_assert(isnan(ry[2]), "relu propagates NaN");
    cr_assert_eq(ry[3], 0.0f);

    const int rows = 37, classes = 13;
    float *z = rnd((size_t)rows * classes);
    for (int i = 0; i < rows * classes; i++)
        z[i] *= 20.0f; /* large logits: the max must be subtracted */
    int32_t *lab = malloc(sizeof(int32_t) * rows);
    for (int r = 0; r < rows; r++)
        lab[r] = (int32_t)(urand() * classes);
    float *rdz = malloc(sizeof(float) * rows * classes), *dz = galloc((size_t)rows * classes);
    double rloss, loss;
    int64_t rright, right;
    cr_assert_eq(ref.ops->softmax_xent(ref.st, rows, classes, z, lab, 0.25f, rdz, &rloss, &rright), PL_OK);
    cr_assert(isfinite(rloss));

    for (int i = 0; i < N_ISAS; i++) {
        be sd;
        if (!be_try(&sd, "simd", 2, isas[i]))
            continue;
        cr_assert_eq(sd.ops->relu_forward(sd.st, n, x, y), PL_OK);
        gcheck(y, (size_t)n, isas[i]);
        cr_assert(!memcmp(y, ry, sizeof(float) * n), "[%s] relu forward differs", isas[i]);
        cr_assert_eq(sd.ops->relu_backward(sd.st, n, y, dy, dx), PL_OK);
        gcheck(dx, (size_t)n, isas[i]);
        cr_assert(!memcmp(dx, rdx, sizeof(float) * n), "[%s] relu backward differs", isas[i]);
        /* in place */
        memcpy(y, x, sizeof(float) * n);
        cr_assert_eq(sd.ops->relu_forward(sd.st, n, y, y), PL_OK);
        cr_assert(!memcmp(y, ry, sizeof(float) * n));
        memcpy(dx, dy, sizeof(float) * n);
        cr_assert_eq(sd.ops->relu_backward(sd.st, n, ry, dx, dx), PL_OK);
        cr_assert(!memcmp(dx, rdx, sizeof(float) * n));

        cr_assert_eq(sd.ops->softmax_xent(sd.st, rows, classes, z, lab, 0.25f, dz, &loss, &right), PL_OK);
        gcheck(dz, (size_t)rows * classes, isas[i]);
        cr_assert_eq(right, rright);
        cr_assert(fabs(loss - rloss) <= 1e-5 * (1 + fabs(rloss)), "[%s] loss %g vs %g", isas[i], loss, rloss);
        close_enough(rdz, dz, (size_t)rows * classes, 1e-5, "softmax_xent dlogits");
        cr_assert_eq(sd.ops->softmax_xent(sd.st, rows, classes, z, lab, 0.25f, NULL, &loss, &right), PL_OK);
        cr_assert_eq(right, rright);
        be_close(&sd);
    }
    free(x), free(dy), free(ry), free(rdx), free(z), free(lab), free(rdz);
    gfree(y), gfree(dx), gfree(dz);
    be_close(&ref);
}

/* ---- optimizers ------------------------------------------------------------------ */

Test(backends, adam_two_steps_by_hand)
{
    be ref = be_open("ref", 1);
    /* elements 0 and 1: unmasked, 2: masked */
    float p[3] = {1.0f, 1.0f, -0.7f}, g[3] = {0.5f, 0.5f, 0.3f}, m[3] = {0}, v[3] = {0};
    float mask[3] = {1, 1, 0};
    pl_adam_hparams h = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0};
    /* constant gradient: m_hat/sqrt(v_hat) = 1, so each step moves by lr */
    for (int step = 1; step <= 2; step++) {
        h.step = step;
        cr_assert_eq(ref.ops->adam_update(ref.st, &h, 3, p, g, m, v, mask), PL_OK);
        cr_assert(fabsf(p[0] - (step == 1 ? 0.9f : 0.8f)) < 2e-6f, "step %d: p0 = %.9g", step, p[0]);
        cr_assert(fabsf(p[1] - p[0]) == 0.0f);
    }
    cr_assert(fabsf(m[0] - 0.095f) < 1e-7f, "m0 = %.9g", m[0]);
    cr_assert(fabsf(v[0] - 0.00049975f) < 2e-8f, "v0 = %.9g", v[0]);
    cr_assert(p[2] == 0.0f && !signbit(p[2]) && m[2] == 0.0f && v[2] == 0.0f, "masked weight stays +0");

    /* weight decay 0.1 (PyTorch's L2 form, g += wd*p): worked by hand,
     *   step 1: g = 0.6, m = 0.06, v = 3.6e-4, p = 1 - 0.1 * 0.6/0.6 = 0.9
     *   step 2: g = 0.59, m = 0.113, v = 7.0774e-4,
     *           p = 0.9 - 0.1 * (0.113/0.19) / sqrt(7.0774e-4/0.001999) = 0.80004734 */
    float q = 1.0f, gq = 0.5f, mq = 0, vq = 0;
    h.weight_decay = 0.1f;
    for (int step = 1; step <= 2; step++) {
        h.step = step;
        cr_assert_eq(ref.ops->adam_update(ref.st, &h, 1, &q, &gq, &mq, &vq, NULL), PL_OK);
        if (step == 1)
            cr_assert(fabsf(q - 0.9f) < 2e-6f, "wd step 1: %.9g", q);
    }
    cr_assert(fabsf(q - 0.80004734f) < 2e-6f, "wd step 2: %.9g", q);
    cr_assert(fabsf(mq - 0.113f) < 1e-6f && fabsf(vq - 7.0774e-4f) < 1e-8f);
    be_close(&ref);
}

Test(backends, sgd_two_steps_by_hand)
{
    be ref = be_open("ref", 1);
    /* p = 1, g = 0.5, lr = 0.1, momentum 0.9:
     *   plain:      buf 0.5 -> 0.95;         p 0.95 -> 0.855
     *   nesterov:   g 0.95 -> 1.355;         p 0.905 -> 0.7695
     *   dampening 0.1: buf 0.5 -> 0.9;       p 0.95 -> 0.86
     *   no momentum, wd 0.1: g 0.6 -> 0.594; p 0.94 -> 0.8806 */
    struct { float mom, damp, wd; int nest; float p1, p2; } cases[] = {
        {0.9f, 0, 0, 0, 0.95f, 0.855f},
        {0.9f, 0, 0, 1, 0.905f, 0.7695f},
        {0.9f, 0.1f, 0, 0, 0.95f, 0.86f},
        {0, 0, 0.1f, 0, 0.94f, 0.8806f},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float p[2] = {1.0f, 0.4f}, g[2] = {0.5f, 0.5f}, buf[2] = {123, 123}, mask[2] = {1, 0};
        pl_sgd_hparams h = {.lr = 0.1f, .momentum = cases[c].mom, .dampening = cases[c].damp,
                            .weight_decay = cases[c].wd, .nesterov = cases[c].nest};
        for (int step = 1; step <= 2; step++) {
            h.first_step = step == 1;
            cr_assert_eq(ref.ops->sgd_update(ref.st, &h, 2, p, g, buf, mask), PL_OK);
            float want = step == 1 ? cases[c].p1 : cases[c].p2;
            cr_assert(fabsf(p[0] - want) < 2e-6f, "case %zu step %d: %.9g, want %.9g", c, step, p[0], want);
            cr_assert(p[1] == 0.0f && !signbit(p[1]), "masked weight stays +0");
            if (cases[c].mom != 0)
                cr_assert(buf[1] == 0.0f, "masked momentum is cleared");
        }
    }
    be_close(&ref);
}

Test(backends, simd_optimizers_match_ref)
{
    be ref = be_open("ref", 1);
    const int64_t n = 70001;
    rng_reset(5);
    float *p0 = rnd((size_t)n), *g = rnd((size_t)n), *mask = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++)
        mask[i] = urand() < 0.3 ? 0.0f : 1.0f;
    for (int i = 0; i < N_ISAS; i++) {
        be sd;
        if (!be_try(&sd, "simd", 2, isas[i]))
            continue;
        for (int masked = 0; masked < 2; masked++) {
            const float *mk = masked ? mask : NULL;
            float *rp = malloc(sizeof(float) * n), *rm = calloc((size_t)n, sizeof(float)), *rv = calloc((size_t)n, sizeof(float));
            float *sp = galloc((size_t)n), *sm = galloc((size_t)n), *sv = galloc((size_t)n);
            memcpy(rp, p0, sizeof(float) * n);
            memcpy(sp, p0, sizeof(float) * n);
            memset(sm, 0, sizeof(float) * n);
            memset(sv, 0, sizeof(float) * n);
            pl_adam_hparams h = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-3f};
            for (int step = 1; step <= 3; step++) {
                h.step = step;
                cr_assert_eq(ref.ops->adam_update(ref.st, &h, n, rp, g, rm, rv, mk), PL_OK);
                cr_assert_eq(sd.ops->adam_update(sd.st, &h, n, sp, g, sm, sv, mk), PL_OK);
            }
            gcheck(sp, (size_t)n, "adam p"), gcheck(sm, (size_t)n, "adam m"), gcheck(sv, (size_t)n, "adam v");
            close_enough(rp, sp, (size_t)n, 1e-6, "adam p");
            close_enough(rm, sm, (size_t)n, 1e-6, "adam m");
            close_enough(rv, sv, (size_t)n, 1e-6, "adam v");
            if (mk)
                for (int64_t k = 0; k < n; k++)
                    if (mask[k] == 0.0f)
                        cr_assert(sp[k] == 0.0f && !signbit(sp[k]) && sm[k] == 0.0f && sv[k] == 0.0f,
                                  "[%s] masked adam weight %lld is not +0", isas[i], (long long)k);

            for (int nest = 0; nest < 2; nest++) {
                memcpy(rp, p0, sizeof(float) * n);
                memcpy(sp, p0, sizeof(float) * n);
                pl_sgd_hparams sh = {.lr = 0.05f, .momentum = 0.9f, .dampening = nest ? 0 : 0.1f,
                                     .weight_decay = 1e-4f, .nesterov = nest};
                for (int step = 1; step <= 3; step++) {
                    sh.first_step = step == 1;
                    cr_assert_eq(ref.ops->sgd_update(ref.st, &sh, n, rp, g, rm, mk), PL_OK);
                    cr_assert_eq(sd.ops->sgd_update(sd.st, &sh, n, sp, g, sm, mk), PL_OK);
                }
                gcheck(sp, (size_t)n, "sgd p"), gcheck(sm, (size_t)n, "sgd buf");
                close_enough(rp, sp, (size_t)n, 1e-6, "sgd p");
                close_enough(rm, sm, (size_t)n, 1e-6, "sgd buf");
                if (mk)
                    for (int64_t k = 0; k < n; k++)
                        if (mask[k] == 0.0f)
                            cr_assert(sp[k] == 0.0f && !signbit(sp[k]) && sm[k] == 0.0f);
            }
            /* momentum 0: buffer never touched (NULL is fine) */
            pl_sgd_hparams plain = {.lr = 0.05f};
            cr_assert_eq(ref.ops->sgd_update(ref.st, &plain, n, rp, g, NULL, mk), PL_OK);
            cr_assert_eq(sd.ops->sgd_update(sd.st, &plain, n, sp, g, NULL, mk), PL_OK);
            close_enough(rp, sp, (size_t)n, 1e-6, "sgd plain");
            free(rp), free(rm), free(rv), gfree(sp), gfree(sm), gfree(sv);
        }
        be_close(&sd);
    }
    free(p0), free(g), free(mask);
    be_close(&ref);
}

/* ---- ABI 1.1 optional slots ------------------------------------------------------ */

/* A random [rows][cols] matrix with about `density` of its entries kept
 * (rows 0 and 3, when they exist, are left empty), as CSR and as the dense
 * matrix with zeros where nothing is stored. */
typedef struct csr_mat {
    pl_csr csr;
    int64_t *row_ptr;
    int32_t *col_idx;
    float *values, *dense;
} csr_mat;

static csr_mat csr_random(int rows, int cols, double density)
{
    csr_mat m;
    m.row_ptr = malloc(sizeof(int64_t) * (rows + 1));
    m.col_idx = malloc(sizeof(int32_t) * ((size_t)rows * cols + 1));
    m.values = malloc(sizeof(float) * ((size_t)rows * cols + 1));
    m.dense = calloc((size_t)rows * cols, sizeof(float));
    cr_assert(m.row_ptr && m.col_idx && m.values && m.dense);
    int64_t e = 0;
    m.row_ptr[0] = 0;
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++)
            if (r != 0 && r != 3 && urand() < density) {
                float v = frand();
                m.col_idx[e] = c;
                m.values[e++] = v;
                m.dense[(size_t)r * cols + c] = v;
            }
        m.row_ptr[r + 1] = e;
    }
    m.csr = (pl_csr){.rows = rows, .cols = cols, .nnz = e, .row_ptr = m.row_ptr,
                     .col_idx = m.col_idx, .values = m.values};
    return m;
}

static void csr_mat_free(csr_mat *m)
{
    free(m->row_ptr), free(m->col_idx), free(m->values), free(m->dense);
}

static void relu_in_place(float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = 0.0f > y[i] ? 0.0f : y[i];
}

Test(backends, optional_slots_are_declared)
{
    be ref = be_open("ref", 1), sd = be_open("simd", 1);
    /* ref predates ABI 1.1: its zero reserved slots read as "not provided" */
    cr_assert_null(ref.ops->conv2d_forward_relu);
    cr_assert_null(ref.ops->linear_forward_csr);
    cr_assert_not_null(sd.ops->conv2d_forward_relu);
    cr_assert_not_null(sd.ops->linear_forward_relu);
    cr_assert_not_null(sd.ops->linear_forward_csr);
    cr_assert_not_null(sd.ops->conv2d_forward_relu_maxpool);
    cr_assert_null(ref.ops->maxpool2d_relu_backward);
    cr_assert_not_null(sd.ops->maxpool2d_relu_backward);
    be_close(&ref);
    be_close(&sd);
}

/* conv + ReLU in one call: bit for bit the two calls on simd, and ref's
 * conv followed by ReLU within the usual tolerance */
Test(backends, simd_fused_relu_matches_unfused)
{
    be ref = be_open("ref", 1);
    for (int i = 0; i < N_ISAS; i++) {
        be sd;
        if (!be_try(&sd, "simd", 2, isas[i]))
            continue;
        rng_reset(31);
        for (size_t k = 0; k < N_CONV; k++) {
            pl_conv2d_shape s = conv_shape(CONV_ARGS(conv_table[k]));
            size_t nx = conv_nx(&s), ny = conv_ny(&s), nw = conv_nw(&s);
            float *x = rnd(nx), *w = rnd(nw), *b = rnd((size_t)s.cout);
            float *ry = malloc(sizeof(float) * ny), *y = malloc(sizeof(float) * ny), *yf = galloc(ny);
            cr_assert_eq(ref.ops->conv2d_forward(ref.st, &s, x, w, b, ry), PL_OK);
            relu_in_place(ry, ny);
            cr_assert_eq(sd.ops->conv2d_forward(sd.st, &s, x, w, b, y), PL_OK);
            cr_assert_eq(sd.ops->relu_forward(sd.st, (int64_t)ny, y, y), PL_OK);
            cr_assert_eq(sd.ops->conv2d_forward_relu(sd.st, &s, x, w, k % 2 ? NULL : b, yf), PL_OK);
            gcheck(yf, ny, "conv relu");
            if (k % 2 == 0) {
                cr_assert(!memcmp(y, yf, sizeof(float) * ny), "[%s] fused conv+relu differs (shape %zu)",
                          isas[i], k);
                close_enough(ry, yf, ny, TOL, "fused conv+relu vs ref");
            }
            free(x), free(w), free(b), free(ry), free(y), gfree(yf);
        }
        for (size_t k = 0; k < N_LINEAR; k++) {
            int n = linear_table[k][0], in = linear_table[k][1], out = linear_table[k][2];
            float *x = rnd((size_t)n * in), *w = rnd((size_t)out * in), *b = rnd((size_t)out);
            float *y = malloc(sizeof(float) * n * out), *yf = galloc((size_t)n * out);
            cr_assert_eq(sd.ops->linear_forward(sd.st, n, in, out, x, w, b, y), PL_OK);
            cr_assert_eq(sd.ops->relu_forward(sd.st, (int64_t)n * out, y, y), PL_OK);
            cr_assert_eq(sd.ops->linear_forward_relu(sd.st, n, in, out, x, w, b, yf), PL_OK);
            gcheck(yf, (size_t)n * out, "linear relu");
            cr_assert(!memcmp(y, yf, sizeof(float) * n * out), "[%s] fused linear+relu differs", isas[i]);
            free(x), free(w), free(b), free(y), gfree(yf);
        }
        be_close(&sd);
    }
    be_close(&ref);
}

/* conv + ReLU + max pooling in one call: bit for bit conv2d_forward_relu
 * then maxpool2d_forward, argmax included, for 2x2 and other windows */
Test(backends, simd_fused_relu_maxpool_matches_unfused)
{
    static const int pools[][6] = {
        /* kh kw sh sw ph pw */
        {2, 2, 2, 2, 0, 0}, {3, 3, 2, 2, 1, 1}, {2, 3, 1, 2, 1, 1},
    };
    for (int i = 0; i < N_ISAS; i++) {
        be sd;
        if (!be_try(&sd, "simd", 2, isas[i]))
            continue;
        rng_reset(33);
        for (size_t k = 0; k < N_CONV; k++)
            for (size_t q = 0; q < sizeof pools / sizeof pools[0]; q++) {
                pl_conv2d_shape s = conv_shape(CONV_ARGS(conv_table[k]));
                const int *pq = pools[q];
                if (s.oh + 2 * pq[4] < pq[0] || s.ow + 2 * pq[5] < pq[1])
                    continue;
                pl_pool2d_shape ps = pool_shape(s.n, s.cout, s.oh, s.ow, pq[0], pq[1], pq[2], pq[3], pq[4], pq[5]);
                size_t nx = conv_nx(&s), ny = conv_ny(&s), nw = conv_nw(&s);
                size_t np = (size_t)ps.n * ps.c * ps.oh * ps.ow;
                float *x = rnd(nx), *w = rnd(nw), *b = rnd((size_t)s.cout);
                float *yr = malloc(sizeof(float) * ny), *yp = malloc(sizeof(float) * np);
                int32_t *am = malloc(sizeof(int32_t) * np);
                float *fr = galloc(ny), *fp = galloc(np);
                int32_t *fam = galloc(np);
                cr_assert_eq(sd.ops->conv2d_forward_relu(sd.st, &s, x, w, b, yr), PL_OK);
                cr_assert_eq(sd.ops->maxpool2d_forward(sd.st, &ps, yr, yp, am), PL_OK);
                cr_assert_eq(sd.ops->conv2d_forward_relu_maxpool(sd.st, &s, x, w, b, fr, &ps, fp, fam), PL_OK);
                gcheck(fr, ny, "fused relu"), gcheck(fp, np, "fused pool"), gcheck(fam, np, "fused argmax");
                cr_assert(!memcmp(yr, fr, sizeof(float) * ny), "[%s] conv %zu pool %zu: relu output differs", isas[i], k, q);
                cr_assert(!memcmp(yp, fp, sizeof(float) * np), "[%s] conv %zu pool %zu: pool output differs", isas[i], k, q);
                cr_assert(!memcmp(am, fam, sizeof(int32_t) * np), "[%s] conv %zu pool %zu: argmax differs", isas[i], k, q);
                cr_assert_eq(sd.ops->conv2d_forward_relu_maxpool(sd.st, &s, x, w, NULL, fr, &ps, fp, NULL), PL_OK);
                free(x), free(w), free(b), free(yr), free(yp), free(am), gfree(fr), gfree(fp), gfree(fam);
            }
        /* a pool that does not describe the conv's output is refused */
        pl_conv2d_shape s = conv_shape(1, 1, 6, 6, 2, 3, 3, 1, 1, 1, 1);
        pl_pool2d_shape ps = pool_shape(1, 3, 6, 6, 2, 2, 2, 2, 0, 0);
        float buf[256] = {0};
        cr_assert_eq(sd.ops->conv2d_forward_relu_maxpool(sd.st, &s, buf, buf, NULL, buf + 64, &ps, buf + 160, NULL),
                     PL_EINVAL);
        be_close(&sd);
    }
}

/* ReLU + max pooling backward in one call: bit for bit maxpool2d_backward
 * then relu_backward on simd, for every pooling shape (the 2x2 fast path
 * and the general ones); half of the ReLU outputs are zero, as after a
 * real ReLU */
Test(backends, simd_fused_maxpool_relu_backward_matches_unfused)
{
    for (int i = 0; i < N_ISAS; i++) {
        be sd;
        if (!be_try(&sd, "simd", 2, isas[i]))
            continue;
        rng_reset(35);
        for (size_t k = 0; k < N_POOL; k++) {
            const int *t = pool_table[k];
            pl_pool2d_shape ps = pool_shape(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9]);
            size_t nx = (size_t)ps.n * ps.c * ps.h * ps.w, ny = (size_t)ps.n * ps.c * ps.oh * ps.ow;
            float *yr = rnd(nx), *yp = malloc(sizeof(float) * ny), *dy = rnd(ny);
            for (size_t e = 0; e < nx; e++)
                yr[e] = yr[e] > 0 ? yr[e] : 0;
            int32_t *am = malloc(sizeof(int32_t) * ny);
            float *dp = galloc(nx), *dx = galloc(nx), *fx = galloc(nx);
            cr_assert_eq(sd.ops->maxpool2d_forward(sd.st, &ps, yr, yp, am), PL_OK);
            cr_assert_eq(sd.ops->maxpool2d_backward(sd.st, &ps, dy, am, dp), PL_OK);
            cr_assert_eq(sd.ops->relu_backward(sd.st, (int64_t)nx, yr, dp, dx), PL_OK);
            cr_assert_eq(sd.ops->maxpool2d_relu_backward(sd.st, &ps, dy, am, yr, fx), PL_OK);
            gcheck(fx, nx, "fused maxpool+relu backward");
            cr_assert(!memcmp(dx, fx, sizeof(float) * nx), "[%s] pool %zu: fused backward differs", isas[i], k);
            cr_assert_eq(sd.ops->maxpool2d_relu_backward(sd.st, &ps, dy, NULL, yr, fx), PL_EINVAL);
            cr_assert_eq(sd.ops->maxpool2d_relu_backward(sd.st, &ps, dy, am, NULL, fx), PL_EINVAL);
            free(yr), free(yp), free(dy), free(am), gfree(dp), gfree(dx), gfree(fx);
        }
        be_close(&sd);
    }
}

/* CSR against ref's dense kernel on the matrix with zeros where nothing is
 * stored: odd batch sizes (not multiples of a block), empty rows, an empty
 * matrix, with and without bias */
Test(backends, simd_csr_matches_ref)
{
    be ref = be_open("ref", 1);
    static const struct { int n, in, out; double density; } cases[] = {
        {5, 37, 13, 0.3}, {1, 1, 1, 1.0}, {64, 392, 64, 0.1}, {100, 300, 100, 0.05},
        {37, 33, 20, 0.0}, {1000, 784, 30, 0.1}, {3, 17, 5, 0.9}, {70, 100, 10, 0.5},
    };
    for (int i = 0; i < N_ISAS; i++) {
        be sd;
        if (!be_try(&sd, "simd", 2, isas[i]))
            continue;
        rng_reset(32);
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            int n = cases[k].n, in = cases[k].in, out = cases[k].out;
            char what[96];
            snprintf(what, sizeof what, "[%s] csr n%d in%d out%d density %.2f", isas[i], n, in, out,
                     cases[k].density);
            csr_mat m = csr_random(out, in, cases[k].density);
            float *x = rnd((size_t)n * in), *b = rnd((size_t)out);
            float *ry = malloc(sizeof(float) * n * out), *y = galloc((size_t)n * out);
            for (int bias = 0; bias < 2; bias++) {
                cr_assert_eq(ref.ops->linear_forward(ref.st, n, in, out, x, m.dense, bias ? b : NULL, ry), PL_OK);
                cr_assert_eq(sd.ops->linear_forward_csr(sd.st, n, in, out, x, &m.csr, bias ? b : NULL, y),
                             PL_OK, "%s", what);
                gcheck(y, (size_t)n * out, what);
                close_enough(ry, y, (size_t)n * out, TOL, what);
            }
            free(x), free(b), free(ry), gfree(y), csr_mat_free(&m);
        }
        /* a matrix that does not fit the call is refused */
        csr_mat m = csr_random(4, 6, 0.5);
        float x[12] = {0}, y[8];
        cr_assert_eq(sd.ops->linear_forward_csr(sd.st, 2, 6, 5, x, &m.csr, NULL, y), PL_EINVAL);
        if (m.csr.nnz) {
            m.col_idx[0] = 6;
            cr_assert_eq(sd.ops->linear_forward_csr(sd.st, 2, 6, 4, x, &m.csr, NULL, y), PL_EINVAL);
        }
        csr_mat_free(&m);
        be_close(&sd);
    }
    be_close(&ref);
}

/* ---- determinism across thread counts ------------------------------------------ */

typedef struct outs {
    float *buf[64];
    size_t n[64];
    int count;
} outs;

static float *out_new(outs *o, size_t n)
{
    cr_assert(o->count < 64);
    o->n[o->count] = n;
    o->buf[o->count] = galloc(n);
    return o->buf[o->count++];
}

/* Runs every kernel on big-batch shapes and keeps all outputs. */
static void run_all(be *b, outs *o)
{
    rng_reset(11);
    o->count = 0;
    pl_conv2d_shape cs[4] = {conv_shape(64, 1, 28, 28, 4, 3, 3, 1, 1, 1, 1),
                             conv_shape(33, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1),
                             conv_shape(19, 5, 11, 11, 7, 3, 3, 2, 2, 1, 1),
                             conv_shape(21, 24, 7, 7, 40, 3, 3, 1, 1, 1, 1)};
    for (int i = 0; i < 4; i++) {
        pl_conv2d_shape *s = &cs[i];
        float *x = rnd(conv_nx(s)), *w = rnd(conv_nw(s)), *bi = rnd((size_t)s->cout), *dy = rnd(conv_ny(s));
        cr_assert_eq(b->ops->conv2d_forward(b->st, s, x, w, bi, out_new(o, conv_ny(s))), PL_OK);
        if (b->ops->conv2d_forward_relu_maxpool) {
            pl_pool2d_shape ps = pool_shape(s->n, s->cout, s->oh, s->ow, 2, 2, 2, 2, 0, 0);
            size_t np = (size_t)ps.n * ps.c * ps.oh * ps.ow;
            float *yr = out_new(o, conv_ny(s)), *yp = out_new(o, np);
            int32_t *am = (int32_t *)(void *)out_new(o, np);
            cr_assert_eq(b->ops->conv2d_forward_relu_maxpool(b->st, s, x, w, bi, yr, &ps, yp, am), PL_OK);
        }
        cr_assert_eq(b->ops->conv2d_backward_data(b->st, s, dy, w, out_new(o, conv_nx(s))), PL_OK);
        float *dw = out_new(o, conv_nw(s));
        cr_assert_eq(b->ops->conv2d_backward_weight(b->st, s, x, dy, dw, out_new(o, (size_t)s->cout)), PL_OK);
        free(x), free(w), free(bi), free(dy);
    }
    for (int shape = 0; shape < 2; shape++) {
        int n = shape ? 64 : 100, in = shape ? 77 : 392, out = shape ? 300 : 64;
        float *x = rnd((size_t)n * in), *w = rnd((size_t)out * in), *bi = rnd((size_t)out), *dy = rnd((size_t)n * out);
        cr_assert_eq(b->ops->linear_forward(b->st, n, in, out, x, w, bi, out_new(o, (size_t)n * out)), PL_OK);
        if (b->ops->linear_forward_relu)
            cr_assert_eq(b->ops->linear_forward_relu(b->st, n, in, out, x, w, bi, out_new(o, (size_t)n * out)), PL_OK);
        if (b->ops->linear_forward_csr) {
            csr_mat c = csr_random(out, in, 0.2);
            cr_assert_eq(b->ops->linear_forward_csr(b->st, n, in, out, x, &c.csr, bi, out_new(o, (size_t)n * out)), PL_OK);
            csr_mat_free(&c);
        }
        cr_assert_eq(b->ops->linear_backward_data(b->st, n, in, out, dy, w, out_new(o, (size_t)n * in)), PL_OK);
        float *dw = out_new(o, (size_t)out * in);
        cr_assert_eq(b->ops->linear_backward_weight(b->st, n, in, out, x, dy, dw, out_new(o, (size_t)out)), PL_OK);
        free(x), free(w), free(bi), free(dy);
    }
    {
        pl_pool2d_shape s = pool_shape(64, 8, 28, 28, 3, 3, 2, 2, 1, 1);
        size_t nx = (size_t)s.n * s.c * s.h * s.w, ny = (size_t)s.n * s.c * s.oh * s.ow;
        float *x = rnd(nx), *dy = rnd(ny);
        int32_t *am = (int32_t *)(void *)out_new(o, ny);
        cr_assert_eq(b->ops->maxpool2d_forward(b->st, &s, x, out_new(o, ny), am), PL_OK);
        cr_assert_eq(b->ops->maxpool2d_backward(b->st, &s, dy, am, out_new(o, nx)), PL_OK);
        if (b->ops->maxpool2d_relu_backward)
            cr_assert_eq(b->ops->maxpool2d_relu_backward(b->st, &s, dy, am, x, out_new(o, nx)), PL_OK);
        cr_assert_eq(b->ops->avgpool2d_backward(b->st, &s, dy, out_new(o, nx)), PL_OK);
        free(x), free(dy);
    }
    {
        int n = 1000, classes = 10;
        float *z = rnd((size_t)n * classes);
        int32_t *lab = malloc(sizeof(int32_t) * n);
        for (int r = 0; r < n; r++)
            lab[r] = r % classes;
        double loss;
        int64_t right;
        float *dz = out_new(o, (size_t)n * classes);
        cr_assert_eq(b->ops->softmax_xent(b->st, n, classes, z, lab, 1.0f / n, dz, &loss, &right), PL_OK);
        memcpy(out_new(o, 2), &loss, sizeof loss);
        free(z), free(lab);
    }
    {
        int64_t n = 200001;
        float *p = out_new(o, (size_t)n), *m = out_new(o, (size_t)n), *v = out_new(o, (size_t)n);
        float *g = rnd((size_t)n), *init = rnd((size_t)n);
        memcpy(p, init, sizeof(float) * n);
        memset(m, 0, sizeof(float) * n);
        memset(v, 0, sizeof(float) * n);
        pl_adam_hparams h = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .step = 1};
        cr_assert_eq(b->ops->adam_update(b->st, &h, n, p, g, m, v, NULL), PL_OK);
        cr_assert_eq(b->ops->relu_forward(b->st, n, init, out_new(o, (size_t)n)), PL_OK);
        free(g), free(init);
    }
}

Test(backends, simd_bit_identical_across_threads)
{
    for (int i = 0; i < N_ISAS; i++) {
        outs o[3];
        int threads[3] = {1, 2, 3}, have = 1;
        for (int t = 0; t < 3 && have; t++) {
            be sd;
            if (!(have = be_try(&sd, "simd", threads[t], isas[i])))
                break;
            run_all(&sd, &o[t]);
            be_close(&sd);
        }
        if (!have)
            continue;
        for (int t = 1; t < 3; t++)
            for (int k = 0; k < o[0].count; k++) {
                gcheck(o[t].buf[k], o[t].n[k], "determinism output");
                cr_assert(!memcmp(o[0].buf[k], o[t].buf[k], sizeof(float) * o[0].n[k]),
                          "[%s] output %d differs between 1 and %d threads", isas[i], k, threads[t]);
            }
        for (int t = 0; t < 3; t++)
            for (int k = 0; k < o[t].count; k++)
                gfree(o[t].buf[k]);
    }
}

/* ---- finite differences of ref ------------------------------------------------- */

static double dot_d(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

static void grad_close(double ana, double num, const char *what, size_t i)
{
    double tol = 1e-2 * fmax(fabs(ana), fabs(num)) + 1e-4;
    cr_assert(fabs(ana - num) <= tol, "%s[%zu]: analytic %.8g, numeric %.8g", what, i, ana, num);
}

/* L(v) = Σ y(v)·r with v perturbed at i by ±eps; returns (L+ - L-)/(2 eps) */
typedef double (*objective_fn)(void *ctx);
static double central(float *v, size_t i, float eps, objective_fn f, void *ctx)
{
    float keep = v[i];
    v[i] = keep + eps;
    double lp = f(ctx);
    v[i] = keep - eps;
    double lm = f(ctx);
    v[i] = keep;
    return (lp - lm) / (2.0 * ((double)(keep + eps) - keep));
}

typedef struct conv_ctx {
    be *b;
    pl_conv2d_shape s;
    float *x, *w, *bias, *r, *y;
} conv_ctx;

static double conv_obj(void *p)
{
    conv_ctx *c = p;
    cr_assert_eq(c->b->ops->conv2d_forward(c->b->st, &c->s, c->x, c->w, c->bias, c->y), PL_OK);
    return dot_d(c->y, c->r, conv_ny(&c->s));
}

Test(backends, ref_conv_gradients)
{
    be ref = be_open("ref", 1);
    static const int shapes[][11] = {
        {2, 3, 6, 5, 4, 3, 3, 1, 1, 1, 1},
        {2, 2, 7, 7, 3, 3, 3, 2, 2, 1, 1},
        {1, 2, 6, 7, 3, 2, 3, 2, 1, 0, 1},
        {2, 1, 5, 5, 2, 5, 5, 1, 1, 2, 2},
    };
    rng_reset(21);
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        conv_ctx c = {.b = &ref, .s = conv_shape(CONV_ARGS(shapes[k]))};
        size_t nx = conv_nx(&c.s), ny = conv_ny(&c.s), nw = conv_nw(&c.s);
        c.x = rnd(nx), c.w = rnd(nw), c.bias = rnd((size_t)c.s.cout), c.r = rnd(ny);
        c.y = malloc(sizeof(float) * ny);
        float *dx = malloc(sizeof(float) * nx), *dw = malloc(sizeof(float) * nw), *db = malloc(sizeof(float) * c.s.cout);
        cr_assert_eq(ref.ops->conv2d_backward_data(ref.st, &c.s, c.r, c.w, dx), PL_OK);
        cr_assert_eq(ref.ops->conv2d_backward_weight(ref.st, &c.s, c.x, c.r, dw, db), PL_OK);
        for (size_t i = 0; i < nx; i++)
            grad_close(dx[i], central(c.x, i, 1e-2f, conv_obj, &c), "conv dx", i);
        for (size_t i = 0; i < nw; i++)
            grad_close(dw[i], central(c.w, i, 1e-2f, conv_obj, &c), "conv dw", i);
        for (int i = 0; i < c.s.cout; i++)
            grad_close(db[i], central(c.bias, (size_t)i, 1e-2f, conv_obj, &c), "conv db", (size_t)i);
        free(c.x), free(c.w), free(c.bias), free(c.r), free(c.y), free(dx), free(dw), free(db);
    }
    be_close(&ref);
}

typedef struct lin_ctx {
    be *b;
    int n, in, out;
    float *x, *w, *bias, *r, *y;
} lin_ctx;

static double lin_obj(void *p)
{
    lin_ctx *c = p;
    cr_assert_eq(c->b->ops->linear_forward(c->b->st, c->n, c->in, c->out, c->x, c->w, c->bias, c->y), PL_OK);
    return dot_d(c->y, c->r, (size_t)c->n * c->out);
}

Test(backends, ref_linear_gradients)
{
    be ref = be_open("ref", 1);
    rng_reset(22);
    lin_ctx c = {.b = &ref, .n = 3, .in = 7, .out = 5};
    size_t nx = (size_t)c.n * c.in, nw = (size_t)c.out * c.in, ny = (size_t)c.n * c.out;
    c.x = rnd(nx), c.w = rnd(nw), c.bias = rnd((size_t)c.out), c.r = rnd(ny), c.y = malloc(sizeof(float) * ny);
    float *dx = malloc(sizeof(float) * nx), *dw = malloc(sizeof(float) * nw), *db = malloc(sizeof(float) * c.out);
    cr_assert_eq(ref.ops->linear_backward_data(ref.st, c.n, c.in, c.out, c.r, c.w, dx), PL_OK);
    cr_assert_eq(ref.ops->linear_backward_weight(ref.st, c.n, c.in, c.out, c.x, c.r, dw, db), PL_OK);
    for (size_t i = 0; i < nx; i++)
        grad_close(dx[i], central(c.x, i, 1e-2f, lin_obj, &c), "linear dx", i);
    for (size_t i = 0; i < nw; i++)
        grad_close(dw[i], central(c.w, i, 1e-2f, lin_obj, &c), "linear dw", i);
    for (int i = 0; i < c.out; i++)
        grad_close(db[i], central(c.bias, (size_t)i, 1e-2f, lin_obj, &c), "linear db", (size_t)i);
    free(c.x), free(c.w), free(c.bias), free(c.r), free(c.y), free(dx), free(dw), free(db);
    be_close(&ref);
}

typedef struct pool_ctx {
    be *b;
    pl_pool2d_shape s;
    int is_max;
    float *x, *r, *y;
    int32_t *am;
} pool_ctx;

static double pool_obj(void *p)
{
    pool_ctx *c = p;
    if (c->is_max)
        cr_assert_eq(c->b->ops->maxpool2d_forward(c->b->st, &c->s, c->x, c->y, c->am), PL_OK);
    else
        cr_assert_eq(c->b->ops->avgpool2d_forward(c->b->st, &c->s, c->x, c->y), PL_OK);
    return dot_d(c->y, c->r, (size_t)c->s.n * c->s.c * c->s.oh * c->s.ow);
}

Test(backends, ref_pool_gradients)
{
    be ref = be_open("ref", 1);
    static const int shapes[][10] = {
        {2, 2, 6, 6, 2, 2, 2, 2, 0, 0},
        {1, 2, 7, 6, 3, 3, 2, 2, 1, 1},
        {1, 1, 6, 7, 3, 2, 1, 1, 1, 0},
    };
    rng_reset(23);
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        for (int is_max = 0; is_max < 2; is_max++) {
            pool_ctx c = {.b = &ref, .s = pool_shape(POOL_ARGS(shapes[k])), .is_max = is_max};
            size_t nx = (size_t)c.s.n * c.s.c * c.s.h * c.s.w, ny = (size_t)c.s.n * c.s.c * c.s.oh * c.s.ow;
            c.x = distinct(nx), c.r = rnd(ny), c.y = malloc(sizeof(float) * ny);
            c.am = malloc(sizeof(int32_t) * ny);
            float *dx = malloc(sizeof(float) * nx);
            pool_obj(&c);
            if (is_max)
                cr_assert_eq(ref.ops->maxpool2d_backward(ref.st, &c.s, c.r, c.am, dx), PL_OK);
            else
                cr_assert_eq(ref.ops->avgpool2d_backward(ref.st, &c.s, c.r, dx), PL_OK);
            float eps = is_max ? 1e-3f : 1e-2f;
            for (size_t i = 0; i < nx; i++)
                grad_close(dx[i], central(c.x, i, eps, pool_obj, &c), is_max ? "maxpool dx" : "avgpool dx", i);
            free(c.x), free(c.r), free(c.y), free(c.am), free(dx);
        }
    be_close(&ref);
}

typedef struct relu_ctx {
    be *b;
    int64_t n;
    float *x, *r, *y;
} relu_ctx;

static double relu_obj(void *p)
{
    relu_ctx *c = p;
    cr_assert_eq(c->b->ops->relu_forward(c->b->st, c->n, c->x, c->y), PL_OK);
    return dot_d(c->y, c->r, (size_t)c->n);
}

Test(backends, ref_relu_gradient)
{
    be ref = be_open("ref", 1);
    rng_reset(24);
    relu_ctx c = {.b = &ref, .n = 50};
    c.x = rnd(50), c.r = rnd(50), c.y = malloc(sizeof(float) * 50);
    for (int i = 0; i < 50; i++)
        if (fabsf(c.x[i]) < 0.05f)
            c.x[i] = c.x[i] < 0 ? -0.05f : 0.05f;
    float *dx = malloc(sizeof(float) * 50);
    relu_obj(&c);
    cr_assert_eq(ref.ops->relu_backward(ref.st, 50, c.y, c.r, dx), PL_OK);
    for (size_t i = 0; i < 50; i++)
        grad_close(dx[i], central(c.x, i, 1e-3f, relu_obj, &c), "relu dx", i);
    free(c.x), free(c.r), free(c.y), free(dx);
    be_close(&ref);
}

typedef struct xent_ctx {
    be *b;
    int n, classes;
    float *z;
    int32_t *lab;
} xent_ctx;

static double xent_obj(void *p)
{
    xent_ctx *c = p;
    double loss;
    int64_t right;
    cr_assert_eq(c->b->ops->softmax_xent(c->b->st, c->n, c->classes, c->z, c->lab, 1.0f, NULL, &loss, &right), PL_OK);
    return loss;
}

Test(backends, ref_softmax_xent_gradient)
{
    be ref = be_open("ref", 1);
    rng_reset(25);
    xent_ctx c = {.b = &ref, .n = 4, .classes = 7};
    c.z = rnd(28);
    for (int i = 0; i < 28; i++)
        c.z[i] *= 3.0f;
    c.lab = malloc(sizeof(int32_t) * 4);
    for (int r = 0; r < 4; r++)
        c.lab[r] = (r * 3) % 7;
    float scale = 0.25f, dz[28];
    double loss;
    int64_t right;
    cr_assert_eq(ref.ops->softmax_xent(ref.st, 4, 7, c.z, c.lab, scale, dz, &loss, &right), PL_OK);
    /* dlogits = scale * d(loss_sum)/dz */
    for (size_t i = 0; i < 28; i++)
        grad_close(dz[i], scale * central(c.z, i, 1e-3f, xent_obj, &c), "softmax_xent dz", i);
    free(c.z), free(c.lab);
    be_close(&ref);
}

/* ---- contract details ------------------------------------------------------------ */

Test(backends, bad_shapes_are_refused)
{
    const char *names[2] = {"ref", "simd"};
    for (int i = 0; i < 2; i++) {
        be b = be_open(names[i], 2);
        pl_conv2d_shape s = conv_shape(1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0);
        s.oh = 4; /* inconsistent */
        float buf[64] = {0};
        cr_assert_eq(b.ops->conv2d_forward(b.st, &s, buf, buf, NULL, buf), PL_EINVAL);
        pl_pool2d_shape p = pool_shape(1, 1, 4, 4, 2, 2, 2, 2, 2, 2); /* pad > kernel/2 */
        cr_assert_eq(b.ops->avgpool2d_forward(b.st, &p, buf, buf), PL_EINVAL);
        int32_t lab = 3;
        double loss;
        int64_t right;
        cr_assert_eq(b.ops->softmax_xent(b.st, 1, 3, buf, &lab, 1.0f, NULL, &loss, &right), PL_EINVAL);
        be_close(&b);
    }
}

Test(backends, simd_unknown_isa_is_refused)
{
    const pl_plugin *p;
    pl_error err;
    pl_instance *in = NULL;
    const char *kv[] = {"isa=sse9", NULL};
    cr_assert_eq(pl_registry_find(pltest_registry(), PL_KIND_BACKEND, "simd", &p, &err), PL_OK);
    cr_assert_neq(pl_instance_new_kv(p, kv, 1, 1, &in, &err), PL_OK);
}
