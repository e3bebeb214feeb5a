/*
 * Grouped convolution (ABI 1.4 optional slots conv2d_grouped_*): the `ref`
 * oracle checked against finite differences of its own forward pass and
 * against its dense kernels with block-diagonal weights; the `simd` backend
 * (its depthwise kernels and its group-by-group path) checked against `ref`
 * on odd shapes for every instruction set this CPU runs, bit-identical at
 * 1, 2 and 3 threads; groups == 1 equal to the dense slots bit for bit on
 * both backends; bad group counts refused.
 *
 * Tolerances are those of test_backends.c: simd vs ref max|simd - ref| <=
 * 1e-4 * (1 + max|ref|) per output tensor; finite differences with eps =
 * 1e-2 (convolution is linear in the perturbed input), pass when
 * |ana - num| <= 1e-2 * max(|ana|, |num|) + 1e-4. Every output buffer sits
 * between two guards of 64 sentinel words (a NaN bit pattern) that must come
 * back untouched, and is refilled with the sentinel before each call, so an
 * element a kernel does not write fails the finiteness check.
 */
#include "pltest_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shapes ---------------------------------------------------------------- */

typedef struct gshape {
    pl_conv2d_shape s;
    int groups;
} gshape;

static gshape gconv(int n, int cin, int h, int w, int cout, int kh, int kw, int sh, int sw, int ph,
                    int pw, int groups)
{
    gshape g = {{n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, 0, 0}, groups};
    g.s.oh = (h + 2 * ph - kh) / sh + 1;
    g.s.ow = (w + 2 * pw - kw) / sw + 1;
    return g;
}

static const int gtable[][12] = {
    /* n cin  h   w cout kh kw sh sw ph pw groups */
    {2, 6, 7, 5, 9, 3, 3, 1, 1, 1, 2, 3},     /* 6/9/3 */
    {2, 6, 13, 11, 9, 5, 3, 2, 3, 2, 1, 3},
    {3, 6, 1, 1, 9, 1, 1, 1, 1, 0, 0, 3},
    {3, 5, 7, 5, 5, 3, 3, 1, 1, 1, 1, 5},     /* depthwise 5/5/5 */
    {3, 5, 13, 11, 5, 3, 3, 2, 2, 1, 1, 5},
    {2, 5, 13, 11, 5, 3, 3, 2, 2, 0, 2, 5},
    {2, 5, 1, 1, 5, 1, 1, 1, 1, 0, 0, 5},
    {2, 5, 1, 1, 5, 3, 3, 1, 1, 1, 1, 5},
    {2, 5, 13, 11, 5, 5, 3, 3, 2, 2, 1, 5},
    {2, 5, 7, 5, 5, 3, 3, 3, 3, 0, 2, 5},
    {2, 5, 7, 5, 5, 1, 1, 1, 1, 2, 1, 5},     /* pad >= kernel */
    {2, 5, 13, 11, 5, 3, 3, 1, 2, 2, 0, 5},
    {2, 5, 13, 11, 5, 5, 3, 1, 1, 2, 1, 5},
    {2, 5, 7, 5, 5, 1, 3, 2, 1, 0, 1, 5},
    {2, 4, 40, 37, 4, 3, 3, 1, 1, 1, 1, 4},   /* rows of several vectors */
    {2, 4, 40, 37, 4, 3, 3, 2, 2, 1, 1, 4},
    {2, 3, 15, 17, 3, 7, 7, 1, 1, 3, 3, 3},   /* 49 taps: several tap blocks */
    {3, 8, 7, 5, 4, 3, 3, 1, 1, 1, 1, 2},     /* 8/4/2 */
    {2, 8, 13, 11, 4, 1, 1, 2, 2, 0, 0, 2},
    {2, 8, 13, 11, 4, 5, 3, 1, 3, 2, 1, 2},
    {2, 4, 7, 5, 8, 3, 3, 2, 2, 1, 1, 4},     /* groups == cin, two outputs per group */
    {2, 5, 7, 5, 7, 3, 3, 1, 1, 1, 1, 1},     /* groups == 1 */
};
#define N_G (sizeof gtable / sizeof gtable[0])
#define G_ARGS(t) t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11]

static size_t g_nx(const gshape *g) { return (size_t)g->s.n * g->s.cin * g->s.h * g->s.w; }
static size_t g_ny(const gshape *g) { return (size_t)g->s.n * g->s.cout * g->s.oh * g->s.ow; }
static size_t g_nw(const gshape *g)
{
    return (size_t)g->s.cout * (g->s.cin / g->groups) * g->s.kh * g->s.kw;
}

static void g_desc(const gshape *g, const char *tag, char *buf, size_t n)
{
    const pl_conv2d_shape *s = &g->s;
    snprintf(buf, n, "[%s] grouped conv n%d c%d %dx%d -> c%d g%d k%dx%d s%d,%d p%d,%d", tag, s->n,
             s->cin, s->h, s->w, s->cout, g->groups, s->kh, s->kw, s->stride_h, s->stride_w,
             s->pad_h, s->pad_w);
}

/* ---- simd vs ref on odd shapes --------------------------------------------- */

static void grouped_compare(be *ref, be *sd, const gshape *g, const char *isa)
{
    char what[192];
    g_desc(g, isa, what, sizeof what);
    const pl_conv2d_shape *s = &g->s;
    int G = g->groups;
    size_t nx = g_nx(g), ny = g_ny(g), nw = g_nw(g), nb = (size_t)s->cout;
    float *x = rnd(nx), *w = rnd(nw), *b = rnd(nb), *dy = rnd(ny);
    float *ry = malloc(sizeof(float) * ny), *rdx = malloc(sizeof(float) * nx);
    float *rdw = malloc(sizeof(float) * nw), *rdb = malloc(sizeof(float) * nb);
    float *y = galloc(ny), *dx = galloc(nx), *dw = galloc(nw), *db = galloc(nb);

    for (int bias = 0; bias < 2; bias++) {
        gfill(y, ny);
        cr_assert_eq(ref->ops->conv2d_grouped_forward(ref->st, s, G, x, w, bias ? b : NULL, ry), PL_OK);
        cr_assert_eq(sd->ops->conv2d_grouped_forward(sd->st, s, G, x, w, bias ? b : NULL, y), PL_OK,
                     "%s", what);
        gcheck(y, ny, what);
        close_enough(ry, y, ny, TOL, what);
    }
    gfill(dx, nx);
    cr_assert_eq(ref->ops->conv2d_grouped_backward_data(ref->st, s, G, dy, w, rdx), PL_OK);
    cr_assert_eq(sd->ops->conv2d_grouped_backward_data(sd->st, s, G, dy, w, dx), PL_OK, "%s", what);
    gcheck(dx, nx, what);
    close_enough(rdx, dx, nx, TOL, what);

    gfill(dw, nw);
    gfill(db, nb);
    cr_assert_eq(ref->ops->conv2d_grouped_backward_weight(ref->st, s, G, x, dy, rdw, rdb), PL_OK);
    cr_assert_eq(sd->ops->conv2d_grouped_backward_weight(sd->st, s, G, x, dy, dw, db), PL_OK, "%s", what);
    gcheck(dw, nw, what);
    gcheck(db, nb, what);
    close_enough(rdw, dw, nw, TOL, what);
    close_enough(rdb, db, nb, TOL, what);
    gfill(dw, nw);
    cr_assert_eq(sd->ops->conv2d_grouped_backward_weight(sd->st, s, G, x, dy, dw, NULL), PL_OK);
    gcheck(dw, nw, what);
    close_enough(rdw, dw, nw, TOL, what);

    free(x), free(w), free(b), free(dy), free(ry), free(rdx), free(rdw), free(rdb);
    gfree(y), gfree(dx), gfree(dw), gfree(db);
}

Test(grouped, slots_are_declared)
{
    be ref = be_open("ref", 1), sd = be_open("simd", 1);
    cr_assert_not_null(ref.ops->conv2d_grouped_forward);
    cr_assert_not_null(ref.ops->conv2d_grouped_backward_data);
    cr_assert_not_null(ref.ops->conv2d_grouped_backward_weight);
    cr_assert_not_null(sd.ops->conv2d_grouped_forward);
    cr_assert_not_null(sd.ops->conv2d_grouped_backward_data);
    cr_assert_not_null(sd.ops->conv2d_grouped_backward_weight);
    be_close(&ref);
    be_close(&sd);
}

Test(grouped, simd_matches_ref)
{
    be ref = be_open("ref", 1);
    for (int i = 0; i < N_ISAS; i++) {
        be sd;
        if (!be_try(&sd, "simd", 2, isas[i]))
            continue;
        rng_reset(41);
        for (size_t k = 0; k < N_G; k++) {
            gshape g = gconv(G_ARGS(gtable[k]));
            grouped_compare(&ref, &sd, &g, isas[i]);
        }
        be_close(&sd);
    }
    be_close(&ref);
}

/* ---- groups == 1 is the dense kernel, bit for bit ------------------------------ */

static void groups1_equal_dense(be *b, const char *tag)
{
    static const int shapes[][11] = {
        {2, 5, 7, 5, 7, 3, 3, 1, 1, 1, 1},
        {3, 4, 13, 11, 6, 5, 3, 2, 3, 2, 1},
        {19, 5, 11, 11, 7, 3, 3, 2, 2, 1, 1}, /* big enough to run threaded */
    };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int *t = shapes[k];
        gshape g = gconv(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], 1);
        const pl_conv2d_shape *s = &g.s;
        char what[192];
        g_desc(&g, tag, what, sizeof what);
        size_t nx = g_nx(&g), ny = g_ny(&g), nw = g_nw(&g), nb = (size_t)s->cout;
        float *x = rnd(nx), *w = rnd(nw), *bi = rnd(nb), *dy = rnd(ny);
        float *a = galloc(ny > nx ? (ny > nw ? ny : nw) : (nx > nw ? nx : nw)), *a2 = galloc(nb);
        float *c = galloc(ny > nx ? (ny > nw ? ny : nw) : (nx > nw ? nx : nw)), *c2 = galloc(nb);
        cr_assert_eq(b->ops->conv2d_forward(b->st, s, x, w, bi, a), PL_OK);
        cr_assert_eq(b->ops->conv2d_grouped_forward(b->st, s, 1, x, w, bi, c), PL_OK);
        cr_assert(!memcmp(a, c, sizeof(float) * ny), "%s: forward differs from conv2d_forward", what);
        cr_assert_eq(b->ops->conv2d_backward_data(b->st, s, dy, w, a), PL_OK);
        cr_assert_eq(b->ops->conv2d_grouped_backward_data(b->st, s, 1, dy, w, c), PL_OK);
        cr_assert(!memcmp(a, c, sizeof(float) * nx), "%s: backward data differs from the dense slot", what);
        cr_assert_eq(b->ops->conv2d_backward_weight(b->st, s, x, dy, a, a2), PL_OK);
        cr_assert_eq(b->ops->conv2d_grouped_backward_weight(b->st, s, 1, x, dy, c, c2), PL_OK);
        cr_assert(!memcmp(a, c, sizeof(float) * nw), "%s: weight gradient differs from the dense slot", what);
        cr_assert(!memcmp(a2, c2, sizeof(float) * nb), "%s: bias gradient differs from the dense slot", what);
        free(x), free(w), free(bi), free(dy);
        gfree(a), gfree(a2), gfree(c), gfree(c2);
    }
}

Test(grouped, groups1_equals_dense)
{
    rng_reset(42);
    be ref = be_open("ref", 1);
    groups1_equal_dense(&ref, "ref");
    be_close(&ref);
    for (int i = 0; i < N_ISAS; i++) {
        be sd;
        if (!be_try(&sd, "simd", 2, isas[i]))
            continue;
        groups1_equal_dense(&sd, isas[i]);
        be_close(&sd);
    }
}

/* ---- ref: the grouped conv is the dense conv with block-diagonal weights ---- */

Test(grouped, ref_matches_block_diagonal_dense)
{
    be ref = be_open("ref", 1);
    rng_reset(43);
    for (size_t k = 0; k < N_G; k++) {
        gshape g = gconv(G_ARGS(gtable[k]));
        const pl_conv2d_shape *s = &g.s;
        int G = g.groups, cg = s->cin / G, og = s->cout / G;
        size_t kk = (size_t)s->kh * s->kw, nx = g_nx(&g), ny = g_ny(&g), nw = g_nw(&g);
        size_t nwd = (size_t)s->cout * s->cin * kk;
        char what[192];
        g_desc(&g, "ref", what, sizeof what);
        float *x = rnd(nx), *w = rnd(nw), *b = rnd((size_t)s->cout), *dy = rnd(ny);
        float *wd = calloc(nwd, sizeof(float));
        cr_assert(wd);
        for (int co = 0; co < s->cout; co++)
            for (int j = 0; j < cg; j++)
                memcpy(wd + ((size_t)co * s->cin + co / og * cg + j) * kk,
                       w + ((size_t)co * cg + j) * kk, sizeof(float) * kk);
        float *y1 = malloc(sizeof(float) * ny), *y2 = malloc(sizeof(float) * ny);
        float *dx1 = malloc(sizeof(float) * nx), *dx2 = malloc(sizeof(float) * nx);
        float *dw1 = malloc(sizeof(float) * nw), *dwd = malloc(sizeof(float) * nwd);
        float *db1 = malloc(sizeof(float) * s->cout), *db2 = malloc(sizeof(float) * s->cout);
        cr_assert_eq(ref.ops->conv2d_grouped_forward(ref.st, s, G, x, w, b, y1), PL_OK);
        cr_assert_eq(ref.ops->conv2d_forward(ref.st, s, x, wd, b, y2), PL_OK);
        close_enough(y2, y1, ny, 1e-6, what);
        cr_assert_eq(ref.ops->conv2d_grouped_backward_data(ref.st, s, G, dy, w, dx1), PL_OK);
        cr_assert_eq(ref.ops->conv2d_backward_data(ref.st, s, dy, wd, dx2), PL_OK);
        close_enough(dx2, dx1, nx, 1e-6, what);
        cr_assert_eq(ref.ops->conv2d_grouped_backward_weight(ref.st, s, G, x, dy, dw1, db1), PL_OK);
        cr_assert_eq(ref.ops->conv2d_backward_weight(ref.st, s, x, dy, dwd, db2), PL_OK);
        float *dw2 = malloc(sizeof(float) * nw);
        for (int co = 0; co < s->cout; co++)
            for (int j = 0; j < cg; j++)
                memcpy(dw2 + ((size_t)co * cg + j) * kk,
                       dwd + ((size_t)co * s->cin + co / og * cg + j) * kk, sizeof(float) * kk);
        close_enough(dw2, dw1, nw, 1e-6, what);
        close_enough(db2, db1, (size_t)s->cout, 1e-6, what);
        free(x), free(w), free(b), free(dy), free(wd), free(y1), free(y2), free(dx1), free(dx2);
        free(dw1), free(dwd), free(dw2), free(db1), free(db2);
    }
    be_close(&ref);
}

/* ---- finite differences of ref's grouped conv ---------------------------------- */

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

typedef struct gctx {
    be *b;
    gshape g;
    float *x, *w, *bias, *r, *y;
} gctx;

static double gobj(void *p)
{
    gctx *c = p;
    cr_assert_eq(c->b->ops->conv2d_grouped_forward(c->b->st, &c->g.s, c->g.groups, c->x, c->w,
                                                   c->bias, c->y), PL_OK);
    return dot_d(c->y, c->r, g_ny(&c->g));
}

static double central(float *v, size_t i, float eps, gctx *c)
{
    float keep = v[i];
    v[i] = keep + eps;
    double lp = gobj(c);
    v[i] = keep - eps;
    double lm = gobj(c);
    v[i] = keep;
    return (lp - lm) / (2.0 * ((double)(keep + eps) - keep));
}

Test(grouped, ref_gradients)
{
    be ref = be_open("ref", 1);
    static const int shapes[][12] = {
        {2, 6, 5, 4, 9, 3, 3, 1, 1, 1, 2, 3},
        {2, 6, 7, 6, 9, 3, 2, 2, 3, 1, 0, 3},
        {2, 5, 6, 5, 5, 3, 3, 1, 1, 1, 1, 5},
        {2, 5, 7, 7, 5, 3, 3, 2, 2, 1, 1, 5},
        {1, 5, 7, 5, 5, 5, 3, 3, 2, 2, 1, 5},
        {2, 8, 5, 5, 4, 3, 3, 1, 1, 0, 1, 2},
        {1, 4, 5, 5, 8, 3, 3, 2, 1, 1, 1, 4},
    };
    rng_reset(44);
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        gctx c = {.b = &ref, .g = gconv(G_ARGS(shapes[k]))};
        size_t nx = g_nx(&c.g), ny = g_ny(&c.g), nw = g_nw(&c.g), nb = (size_t)c.g.s.cout;
        c.x = rnd(nx), c.w = rnd(nw), c.bias = rnd(nb), c.r = rnd(ny);
        c.y = malloc(sizeof(float) * ny);
        float *dx = malloc(sizeof(float) * nx), *dw = malloc(sizeof(float) * nw), *db = malloc(sizeof(float) * nb);
        cr_assert_eq(ref.ops->conv2d_grouped_backward_data(ref.st, &c.g.s, c.g.groups, c.r, c.w, dx), PL_OK);
        cr_assert_eq(ref.ops->conv2d_grouped_backward_weight(ref.st, &c.g.s, c.g.groups, c.x, c.r, dw, db), PL_OK);
        for (size_t i = 0; i < nx; i++)
            grad_close(dx[i], central(c.x, i, 1e-2f, &c), "grouped dx", i);
        for (size_t i = 0; i < nw; i++)
            grad_close(dw[i], central(c.w, i, 1e-2f, &c), "grouped dw", i);
        for (size_t i = 0; i < nb; i++)
            grad_close(db[i], central(c.bias, i, 1e-2f, &c), "grouped db", i);
        free(c.x), free(c.w), free(c.bias), free(c.r), free(c.y), free(dx), free(dw), free(db);
    }
    be_close(&ref);
}

/* ---- simd: bit-identical for 1, 2 and 3 threads ------------------------------------ */

#define MAX_OUTS 32
typedef struct outs {
    float *buf[MAX_OUTS];
    size_t n[MAX_OUTS];
    int count;
} outs;

static float *out_new(outs *o, size_t n)
{
    cr_assert(o->count < MAX_OUTS);
    o->n[o->count] = n;
    o->buf[o->count] = galloc(n);
    return o->buf[o->count++];
}

static void run_grouped(be *b, outs *o)
{
    static const int shapes[][12] = {
        {16, 12, 14, 14, 12, 3, 3, 1, 1, 1, 1, 12}, /* MobileNet-like depthwise */
        {16, 12, 14, 14, 12, 3, 3, 2, 2, 1, 1, 12},
        {9, 7, 13, 11, 7, 5, 3, 3, 2, 2, 1, 7},
        {19, 8, 13, 11, 4, 3, 3, 1, 1, 1, 1, 2},
        {17, 6, 12, 12, 9, 3, 3, 2, 2, 1, 1, 3},
    };
    rng_reset(45);
    o->count = 0;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        gshape g = gconv(G_ARGS(shapes[k]));
        const pl_conv2d_shape *s = &g.s;
        float *x = rnd(g_nx(&g)), *w = rnd(g_nw(&g)), *bi = rnd((size_t)s->cout), *dy = rnd(g_ny(&g));
        cr_assert_eq(b->ops->conv2d_grouped_forward(b->st, s, g.groups, x, w, bi, out_new(o, g_ny(&g))), PL_OK);
        cr_assert_eq(b->ops->conv2d_grouped_backward_data(b->st, s, g.groups, dy, w, out_new(o, g_nx(&g))), PL_OK);
        float *dw = out_new(o, g_nw(&g));
        cr_assert_eq(b->ops->conv2d_grouped_backward_weight(b->st, s, g.groups, x, dy, dw,
                                                            out_new(o, (size_t)s->cout)), PL_OK);
        free(x), free(w), free(bi), free(dy);
    }
}

Test(grouped, simd_bit_identical_across_threads)
{
    for (int i = 0; i < N_ISAS; i++) {
        outs o[3];
        int threads[3] = {1, 2, 3}, have = 1;
        for (int t = 0; t < 3 && have; t++) {
            be sd;
            if (!(have = be_try(&sd, "simd", threads[t], isas[i])))
                break;
            run_grouped(&sd, &o[t]);
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

/* ---- contract details ---------------------------------------------------------------- */

Test(grouped, bad_groups_are_refused)
{
    const char *names[2] = {"ref", "simd"};
    for (int i = 0; i < 2; i++) {
        be b = be_open(names[i], 2);
        float buf[512] = {0};
        gshape g = gconv(1, 6, 5, 5, 9, 3, 3, 1, 1, 1, 1, 3);
        int bad[] = {0, -3, 2, 4, 9};
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            cr_assert_eq(b.ops->conv2d_grouped_forward(b.st, &g.s, bad[k], buf, buf, NULL, buf), PL_EINVAL,
                         "%s accepts groups = %d for cin 6, cout 9", names[i], bad[k]);
            cr_assert_eq(b.ops->conv2d_grouped_backward_data(b.st, &g.s, bad[k], buf, buf, buf), PL_EINVAL);
            cr_assert_eq(b.ops->conv2d_grouped_backward_weight(b.st, &g.s, bad[k], buf, buf, buf, NULL), PL_EINVAL);
        }
        g.s.oh = 4; /* inconsistent */
        cr_assert_eq(b.ops->conv2d_grouped_forward(b.st, &g.s, 3, buf, buf, NULL, buf), PL_EINVAL);
        be_close(&b);
    }
}
