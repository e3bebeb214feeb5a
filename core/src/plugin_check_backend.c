/* plugin_check_backend.c — plugin-check rows for backend plugins (what is
 * checked: plugin_check.h). */
#include "plugin_check_kinds.h"
#include "rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pl_conv2d_shape ck_conv_shape(int n, int cin, int h, int w, int cout, int kh, int kw, int sh,
                                     int sw, int ph, int pw)
{
    pl_conv2d_shape s = {.n = n, .cin = cin, .h = h, .w = w, .cout = cout, .kh = kh, .kw = kw,
                         .stride_h = sh, .stride_w = sw, .pad_h = ph, .pad_w = pw};
    s.oh = (h + 2 * ph - kh) / sh + 1;
    s.ow = (w + 2 * pw - kw) / sw + 1;
    return s;
}

typedef struct ck_linear_shape {
    int n, in, out;
} ck_linear_shape;

/* The shapes every kernel is tried on: odd sizes, strides and paddings, and
 * one big enough for vector and threaded paths. */
static const int ck_conv_specs[2][11] = {
    {2, 3, 7, 9, 5, 3, 2, 2, 1, 1, 0},
    {2, 8, 11, 11, 16, 3, 3, 1, 1, 1, 1},
};
static const ck_linear_shape ck_lin_specs[2] = {{3, 37, 13}, {5, 67, 19}};

static pl_conv2d_shape ck_conv_spec(int i)
{
    const int *p = ck_conv_specs[i];
    return ck_conv_shape(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10]);
}

static void ck_conv_desc(const pl_conv2d_shape *s, char *buf, size_t n)
{
    snprintf(buf, n, "x %dx%dx%dx%d w %dx%dx%dx%d s%dx%d p%dx%d", s->n, s->cin, s->h, s->w, s->cout,
             s->cin, s->kh, s->kw, s->stride_h, s->stride_w, s->pad_h, s->pad_w);
}

/* y = b + Σ w·x over the window, in double: the oracle of the oracle. */
static void ck_conv_direct(const pl_conv2d_shape *s, const float *x, const float *w, const float *b,
                           double *y)
{
    for (int n = 0; n < s->n; n++)
        for (int co = 0; co < s->cout; co++)
            for (int oy = 0; oy < s->oh; oy++)
                for (int ox = 0; ox < s->ow; ox++) {
                    double acc = b ? b[co] : 0.0;
                    for (int ci = 0; ci < s->cin; ci++)
                        for (int ky = 0; ky < s->kh; ky++)
                            for (int kx = 0; kx < s->kw; kx++) {
                                int iy = oy * s->stride_h - s->pad_h + ky;
                                int ix = ox * s->stride_w - s->pad_w + kx;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                                    continue;
                                acc += (double)w[((co * s->cin + ci) * s->kh + ky) * s->kw + kx] *
                                       x[((n * s->cin + ci) * s->h + iy) * s->w + ix];
                            }
                    y[((n * s->cout + co) * s->oh + oy) * s->ow + ox] = acc;
                }
}

static void ck_linear_direct(int n, int in, int out, const float *x, const float *w, const float *b,
                             double *y)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int k = 0; k < in; k++)
                acc += (double)x[i * in + k] * w[o * in + k];
            y[i * out + o] = acc;
        }
}

/* Compares got with want (float or double, exactly one non-NULL):
 * max |got − want| / max |want|. 1 if within CK_TOL; *rel gets the error. */
static int ck_close(const float *got, const float *wantf, const double *wantd, int64_t n,
                    double *rel, char *why, size_t wn, const char *what)
{
    double scale = 0.0, err = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double w = wantf ? wantf[i] : wantd[i];
        if (!isfinite(got[i])) {
            pl__ck_why(why, wn, "%s: element %lld is %g (not written or not finite)", what, (long long)i,
                   got[i]);
            return 0;
        }
        scale = fmax(scale, fabs(w));
        err = fmax(err, fabs((double)got[i] - w));
    }
    *rel = scale > 0.0 ? err / scale : err;
    if (*rel > CK_TOL) {
        pl__ck_why(why, wn, "%s: relative error %.3g > %g", what, *rel, CK_TOL);
        return 0;
    }
    return 1;
}

typedef enum ck_op {
    CK_CONV_FWD, CK_CONV_BWD_DATA, CK_CONV_BWD_WEIGHT,
    CK_LIN_FWD, CK_LIN_BWD_DATA, CK_LIN_BWD_WEIGHT,
    CK_N_OPS
} ck_op;

static const char *const ck_op_names[CK_N_OPS] = {
    "conv2d_forward", "conv2d_backward_data", "conv2d_backward_weight",
    "linear_forward", "linear_backward_data", "linear_backward_weight",
};
_Static_assert(sizeof ck_op_names / sizeof ck_op_names[0] == CK_N_OPS, "one name per op");

/* A kernel call's inputs: x, weights, bias and dy, normal random values
 * from streams named "<prefix>x", "<prefix>w", ... (plain malloc). */
typedef struct ck_inputs {
    float *x, *w, *b, *dy;
} ck_inputs;

static int ck_inputs_make(ck_inputs *in, int64_t nx, int64_t nw, int64_t nb, int64_t ny, const char *prefix)
{
    char name[4][16];
    static const char *const what[4] = {"x", "w", "b", "dy"};
    for (int i = 0; i < 4; i++)
        snprintf(name[i], sizeof name[i], "%s%s", prefix, what[i]);
    in->x = pl__ck_randn(nx, name[0], 1.0f);
    in->w = pl__ck_randn(nw, name[1], 0.3f);
    in->b = pl__ck_randn(nb, name[2], 0.3f);
    in->dy = pl__ck_randn(ny, name[3], 1.0f);
    return in->x && in->w && in->b && in->dy;
}

static void ck_inputs_free(ck_inputs *in)
{
    free(in->x);
    free(in->w);
    free(in->b);
    free(in->dy);
}

/* Inputs and outputs of one kernel call on shape `shape` (0 or 1). */
typedef struct ck_call {
    ck_op op;
    int shape;
    pl_conv2d_shape cs;
    ck_linear_shape ls;
    ck_inputs in;
    int64_t n_out, n_out2;   /* sizes of the outputs (the second: db) */
    char desc[96];
} ck_call;

static int ck_call_make(ck_call *k, ck_op op, int shape)
{
    memset(k, 0, sizeof *k);
    k->op = op;
    k->shape = shape;
    int64_t nx, nw, nb, ny;
    if (op <= CK_CONV_BWD_WEIGHT) {
        k->cs = ck_conv_spec(shape);
        const pl_conv2d_shape *s = &k->cs;
        nx = (int64_t)s->n * s->cin * s->h * s->w;
        nw = (int64_t)s->cout * s->cin * s->kh * s->kw;
        nb = s->cout;
        ny = (int64_t)s->n * s->cout * s->oh * s->ow;
        ck_conv_desc(s, k->desc, sizeof k->desc);
    } else {
        k->ls = ck_lin_specs[shape];
        const ck_linear_shape *s = &k->ls;
        nx = (int64_t)s->n * s->in;
        nw = (int64_t)s->out * s->in;
        nb = s->out;
        ny = (int64_t)s->n * s->out;
        snprintf(k->desc, sizeof k->desc, "n %d, %d -> %d", s->n, s->in, s->out);
    }
    switch (op) {
    case CK_CONV_FWD: case CK_LIN_FWD: k->n_out = ny; break;
    case CK_CONV_BWD_DATA: case CK_LIN_BWD_DATA: k->n_out = nx; break;
    case CK_CONV_BWD_WEIGHT: case CK_LIN_BWD_WEIGHT: k->n_out = nw; k->n_out2 = nb; break;
    default: break;
    }
    return ck_inputs_make(&k->in, nx, nw, nb, ny, "");
}

/* Runs the call on a backend into out (and out2 for db). */
static pl_status ck_call_run(const ck_call *k, pl_instance *in, float *out, float *out2)
{
    const pl_backend_ops *o = pl_instance_ops(in);
    void *st = pl_instance_state(in);
    const ck_linear_shape *l = &k->ls;
    switch (k->op) {
    case CK_CONV_FWD: return o->conv2d_forward(st, &k->cs, k->in.x, k->in.w, k->in.b, out);
    case CK_CONV_BWD_DATA: return o->conv2d_backward_data(st, &k->cs, k->in.dy, k->in.w, out);
    case CK_CONV_BWD_WEIGHT: return o->conv2d_backward_weight(st, &k->cs, k->in.x, k->in.dy, out, out2);
    case CK_LIN_FWD: return o->linear_forward(st, l->n, l->in, l->out, k->in.x, k->in.w, k->in.b, out);
    case CK_LIN_BWD_DATA: return o->linear_backward_data(st, l->n, l->in, l->out, k->in.dy, k->in.w, out);
    case CK_LIN_BWD_WEIGHT:
        return o->linear_backward_weight(st, l->n, l->in, l->out, k->in.x, k->in.dy, out, out2);
    default: return PL_EINVAL;
    }
}

/* One call's inputs, the plugin's guarded outputs and the references. */
static void ck_call_free(ck_inputs *in, float *got, float *got2, float *want, float *want2, double *direct,
                         double *direct2)
{
    ck_inputs_free(in);
    pl__ck_fguard_free(got);
    pl__ck_fguard_free(got2);
    free(want);
    free(want2);
    free(direct);
    free(direct2);
}

/* After a call of the plugin under test: its status (a failure, with the
 * plugin's message, ends this shape: 0) and the guards around its outputs
 * (an overrun goes into why). */
static int ck_ran(pl_status st, pl_instance *t, const char *desc, const float *got, int64_t n, const float *got2,
                  int64_t n2, char *why, size_t wn)
{
    if (st != PL_OK) {
        pl__ck_why(why, wn, "%s: returned %d (%s)", desc, (int)st, pl__ck_plugin_error(t, st));
        return 0;
    }
    char gwhy[256] = "";
    if (!pl__ck_fguard_ok(got, n, gwhy, sizeof gwhy) || (got2 && !pl__ck_fguard_ok(got2, n2, gwhy, sizeof gwhy)))
        pl__ck_why(why, wn, "%s: %s", desc, gwhy);
    return 1;
}

/* One op on both shapes: the plugin against ref (and, for forward kernels,
 * against the direct double sum). */
static void ck_backend_op(pl__ck *c, pl_instance *t, pl_instance *ref, ck_op op)
{
    const char *name = ck_op_names[op];
    char why[960] = "";
    double max_ref = 0.0, max_direct = -1.0;
    pl__ck_begin(c, name);
    for (int shape = 0; shape < 2; shape++) {
        ck_call k;
        float *got = NULL, *got2 = NULL, *want = NULL, *want2 = NULL;
        double *direct = NULL;
        if (!ck_call_make(&k, op, shape) || !(got = pl__ck_fguard_new(k.n_out)) ||
            (k.n_out2 && !(got2 = pl__ck_fguard_new(k.n_out2)))) {
            pl__ck_why(why, sizeof why, "plugin-check ran out of memory");
            goto next;
        }
        pl_status st = ck_call_run(&k, t, got, got2);
        if (!ck_ran(st, t, k.desc, got, k.n_out, got2, k.n_out2, why, sizeof why))
            goto next;
        double rel = 0.0, rel2 = 0.0, reld = -1.0;
        if (ref) {
            want = malloc((size_t)k.n_out * sizeof *want);
            want2 = k.n_out2 ? malloc((size_t)k.n_out2 * sizeof *want2) : NULL;
            if (!want || (k.n_out2 && !want2) || (st = ck_call_run(&k, ref, want, want2)) != PL_OK) {
                pl__ck_why(why, sizeof why, "%s: the ref backend failed", k.desc);
                goto next;
            }
            ck_close(got, want, NULL, k.n_out, &rel, why, sizeof why, k.desc);
            if (got2)
                ck_close(got2, want2, NULL, k.n_out2, &rel2, why, sizeof why, k.desc);
        }
        if (op == CK_CONV_FWD || op == CK_LIN_FWD) {
            if (!(direct = malloc((size_t)k.n_out * sizeof *direct))) {
                pl__ck_why(why, sizeof why, "plugin-check ran out of memory");
                goto next;
            }
            if (op == CK_CONV_FWD)
                ck_conv_direct(&k.cs, k.in.x, k.in.w, k.in.b, direct);
            else
                ck_linear_direct(k.ls.n, k.ls.in, k.ls.out, k.in.x, k.in.w, k.in.b, direct);
            ck_close(got, NULL, direct, k.n_out, &reld, why, sizeof why, k.desc);
        }
        max_ref = fmax(max_ref, fmax(rel, rel2));
        max_direct = fmax(max_direct, reld);
    next:
        ck_call_free(&k.in, got, got2, want, want2, direct, NULL);
    }
    char errs[128] = "";
    if (ref)
        pl__ck_why(errs, sizeof errs, "%.1e vs ref", max_ref);
    if (max_direct >= 0.0)
        pl__ck_why(errs, sizeof errs, "%.1e vs a direct double sum", max_direct);
    if (why[0])
        pl__ck_row(c, CK_FAIL, name, "%s", why);
    else
        pl__ck_row(c, CK_PASS, name, "2 odd shapes, relative error %s, guards intact", errs);
}

/* ---- grouped convolution (ABI 1.4 optional slots) ----------------------------- */

typedef enum ck_gop { CK_G_FWD, CK_G_BWD_DATA, CK_G_BWD_WEIGHT, CK_G_N } ck_gop;

static const char *const ck_gop_names[CK_G_N] = {
    "conv2d_grouped_forward", "conv2d_grouped_backward_data", "conv2d_grouped_backward_weight",
};
static const char *const ck_gop_dense[CK_G_N] = {
    "conv2d_forward", "conv2d_backward_data", "conv2d_backward_weight",
};

/* n cin h w cout kh kw sh sw ph pw groups: odd sizes, strides and paddings;
 * a general grouping, depthwise, and two big enough for threaded paths */
#define CK_G_SPECS 4
static const int ck_gconv_specs[CK_G_SPECS][12] = {
    {2, 6, 7, 5, 9, 3, 3, 2, 1, 1, 2, 3},
    {2, 5, 9, 7, 5, 3, 3, 2, 2, 1, 1, 5},
    {4, 16, 15, 13, 16, 3, 3, 1, 1, 1, 1, 16},
    {3, 8, 12, 12, 16, 3, 3, 1, 1, 1, 1, 2},
};

typedef struct ck_gcall {
    pl_conv2d_shape s;
    int groups;
    ck_inputs in;
    int64_t nx, nw, nb, ny;
    int64_t n_out, n_out2; /* the op's outputs (the second: db) */
    char desc[112];
} ck_gcall;

static int ck_gcall_make(ck_gcall *k, ck_gop op, int spec, int groups)
{
    const int *p = ck_gconv_specs[spec];
    memset(k, 0, sizeof *k);
    k->s = ck_conv_shape(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10]);
    k->groups = groups ? groups : p[11];
    const pl_conv2d_shape *s = &k->s;
    k->nx = (int64_t)s->n * s->cin * s->h * s->w;
    k->nw = (int64_t)s->cout * (s->cin / k->groups) * s->kh * s->kw;
    k->nb = s->cout;
    k->ny = (int64_t)s->n * s->cout * s->oh * s->ow;
    k->n_out = op == CK_G_FWD ? k->ny : op == CK_G_BWD_DATA ? k->nx : k->nw;
    k->n_out2 = op == CK_G_BWD_WEIGHT ? k->nb : 0;
    snprintf(k->desc, sizeof k->desc, "x %dx%dx%dx%d w %dx%dx%dx%d groups %d s%dx%d p%dx%d", s->n,
             s->cin, s->h, s->w, s->cout, s->cin / k->groups, s->kh, s->kw, k->groups, s->stride_h,
             s->stride_w, s->pad_h, s->pad_w);
    return ck_inputs_make(&k->in, k->nx, k->nw, k->nb, k->ny, "g");
}

static pl_status ck_gcall_run(const ck_gcall *k, ck_gop op, pl_instance *in, float *out, float *out2)
{
    const pl_backend_ops *o = pl_instance_ops(in);
    void *st = pl_instance_state(in);
    switch (op) {
    case CK_G_FWD: return o->conv2d_grouped_forward(st, &k->s, k->groups, k->in.x, k->in.w, k->in.b, out);
    case CK_G_BWD_DATA: return o->conv2d_grouped_backward_data(st, &k->s, k->groups, k->in.dy, k->in.w, out);
    case CK_G_BWD_WEIGHT:
        return o->conv2d_grouped_backward_weight(st, &k->s, k->groups, k->in.x, k->in.dy, out, out2);
    default: return PL_EINVAL;
    }
}

/* The same through the backend's dense slots, one group at a time on the
 * group's channels gathered into a batch of their own (what the host does
 * when the grouped slots are missing). */
static pl_status ck_gcall_dense(const ck_gcall *k, ck_gop op, pl_instance *in, float *out, float *out2)
{
    const pl_backend_ops *o = pl_instance_ops(in);
    void *st = pl_instance_state(in);
    const pl_conv2d_shape *s = &k->s;
    int G = k->groups, cg = s->cin / G, og = s->cout / G;
    size_t ip = (size_t)s->h * s->w, opl = (size_t)s->oh * s->ow, wg = (size_t)og * cg * s->kh * s->kw;
    pl_conv2d_shape t = *s;
    t.cin = cg;
    t.cout = og;
    float *gx = malloc((size_t)s->n * cg * ip * sizeof *gx), *gy = malloc((size_t)s->n * og * opl * sizeof *gy);
    pl_status rc = gx && gy ? PL_OK : PL_ENOMEM;
    for (int g = 0; g < G && rc == PL_OK; g++) {
        for (int i = 0; i < s->n; i++) {
            if (op != CK_G_BWD_DATA)
                memcpy(gx + (size_t)i * cg * ip, k->in.x + ((size_t)i * s->cin + (size_t)g * cg) * ip,
                       (size_t)cg * ip * sizeof *gx);
            if (op != CK_G_FWD)
                memcpy(gy + (size_t)i * og * opl, k->in.dy + ((size_t)i * s->cout + (size_t)g * og) * opl,
                       (size_t)og * opl * sizeof *gy);
        }
        if (op == CK_G_FWD)
            rc = o->conv2d_forward(st, &t, gx, k->in.w + g * wg, k->in.b + (size_t)g * og, gy);
        else if (op == CK_G_BWD_DATA)
            rc = o->conv2d_backward_data(st, &t, gy, k->in.w + g * wg, gx);
        else
            rc = o->conv2d_backward_weight(st, &t, gx, gy, out + g * wg, out2 + (size_t)g * og);
        for (int i = 0; rc == PL_OK && op != CK_G_BWD_WEIGHT && i < s->n; i++) {
            if (op == CK_G_FWD)
                memcpy(out + ((size_t)i * s->cout + (size_t)g * og) * opl, gy + (size_t)i * og * opl,
                       (size_t)og * opl * sizeof *out);
            else
                memcpy(out + ((size_t)i * s->cin + (size_t)g * cg) * ip, gx + (size_t)i * cg * ip,
                       (size_t)cg * ip * sizeof *out);
        }
    }
    free(gx);
    free(gy);
    return rc;
}

/* The definition in double: y = b + Σ over the group's channels and the
 * window; dx and dw, db as the sums of its partial derivatives. */
static void ck_gcall_direct(const ck_gcall *k, ck_gop op, double *out, double *out2)
{
    const pl_conv2d_shape *s = &k->s;
    int cg = s->cin / k->groups, og = s->cout / k->groups;
    if (op != CK_G_FWD)
        memset(out, 0, (size_t)k->n_out * sizeof *out);
    if (out2)
        memset(out2, 0, (size_t)k->n_out2 * sizeof *out2);
    for (int n = 0; n < s->n; n++)
        for (int co = 0; co < s->cout; co++)
            for (int oy = 0; oy < s->oh; oy++)
                for (int ox = 0; ox < s->ow; ox++) {
                    size_t yi = (((size_t)n * s->cout + co) * s->oh + oy) * s->ow + ox;
                    double acc = k->in.b[co], d = k->in.dy[yi];
                    if (out2)
                        out2[co] += d;
                    for (int j = 0; j < cg; j++)
                        for (int ky = 0; ky < s->kh; ky++)
                            for (int kx = 0; kx < s->kw; kx++) {
                                int iy = oy * s->stride_h - s->pad_h + ky;
                                int ix = ox * s->stride_w - s->pad_w + kx;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                                    continue;
                                size_t wi = (((size_t)co * cg + j) * s->kh + ky) * s->kw + kx;
                                size_t xi = (((size_t)n * s->cin + (size_t)(co / og) * cg + j) * s->h + iy) * s->w + ix;
                                if (op == CK_G_FWD)
                                    acc += (double)k->in.w[wi] * k->in.x[xi];
                                else if (op == CK_G_BWD_DATA)
                                    out[xi] += (double)k->in.w[wi] * d;
                                else
                                    out[wi] += d * k->in.x[xi];
                            }
                    if (op == CK_G_FWD)
                        out[yi] = acc;
                }
}

static int ck_gop_provided(const pl_backend_ops *o, ck_gop op)
{
    return op == CK_G_FWD        ? o->conv2d_grouped_forward != NULL
           : op == CK_G_BWD_DATA ? o->conv2d_grouped_backward_data != NULL
                                 : o->conv2d_grouped_backward_weight != NULL;
}

/* One grouped slot on every spec: against the backend's own dense slots run
 * group by group and against the direct double sum; fenced outputs, every
 * element written; with groups == 1 bit for bit the dense slot. */
static void ck_backend_grouped_op(pl__ck *c, pl_instance *t, ck_gop op)
{
    const char *name = ck_gop_names[op];
    char why[960] = "";
    double max_dense = 0.0, max_direct = 0.0;
    pl__ck_begin(c, name);
    for (int spec = 0; spec <= CK_G_SPECS && !why[0]; spec++) {
        /* spec CK_G_SPECS: the first shape again with groups == 1 */
        int ones = spec == CK_G_SPECS;
        ck_gcall k;
        float *got = NULL, *got2 = NULL, *want = NULL, *want2 = NULL;
        double *direct = NULL, *direct2 = NULL;
        if (!ck_gcall_make(&k, op, ones ? 0 : spec, ones) || !(got = pl__ck_fguard_new(k.n_out)) ||
            (k.n_out2 && !(got2 = pl__ck_fguard_new(k.n_out2))) ||
            !(want = malloc((size_t)k.n_out * sizeof *want)) ||
            (k.n_out2 && !(want2 = malloc((size_t)k.n_out2 * sizeof *want2))) ||
            !(direct = malloc((size_t)k.n_out * sizeof *direct)) ||
            (k.n_out2 && !(direct2 = malloc((size_t)k.n_out2 * sizeof *direct2)))) {
            pl__ck_why(why, sizeof why, "plugin-check ran out of memory");
            goto next;
        }
        pl_status st = ck_gcall_run(&k, op, t, got, got2);
        if (!ck_ran(st, t, k.desc, got, k.n_out, got2, k.n_out2, why, sizeof why))
            goto next;
        if ((st = ck_gcall_dense(&k, op, t, want, want2)) != PL_OK) {
            pl__ck_why(why, sizeof why, "%s: its dense slots failed (%s)", k.desc, pl__ck_plugin_error(t, st));
            goto next;
        }
        if (ones) {
            if (memcmp(got, want, (size_t)k.n_out * sizeof *got) ||
                (got2 && memcmp(got2, want2, (size_t)k.n_out2 * sizeof *got2)))
                pl__ck_why(why, sizeof why, "%s: differs from %s (groups 1 must be bit-identical)", k.desc,
                           ck_gop_dense[op]);
            goto next;
        }
        double rel = 0.0, rel2 = 0.0, reld = 0.0, reld2 = 0.0;
        ck_close(got, want, NULL, k.n_out, &rel, why, sizeof why, k.desc);
        if (got2)
            ck_close(got2, want2, NULL, k.n_out2, &rel2, why, sizeof why, k.desc);
        ck_gcall_direct(&k, op, direct, direct2);
        ck_close(got, NULL, direct, k.n_out, &reld, why, sizeof why, k.desc);
        if (got2)
            ck_close(got2, NULL, direct2, k.n_out2, &reld2, why, sizeof why, k.desc);
        if (op == CK_G_BWD_WEIGHT && !why[0]) { /* db may be NULL */
            if ((st = ck_gcall_run(&k, op, t, got, NULL)) != PL_OK)
                pl__ck_why(why, sizeof why, "%s: returned %d with db = NULL (%s)", k.desc, (int)st,
                           pl__ck_plugin_error(t, st));
            else
                ck_close(got, want, NULL, k.n_out, &rel, why, sizeof why, k.desc);
        }
        max_dense = fmax(max_dense, fmax(rel, rel2));
        max_direct = fmax(max_direct, fmax(reld, reld2));
    next:
        ck_call_free(&k.in, got, got2, want, want2, direct, direct2);
    }
    if (why[0])
        pl__ck_row(c, CK_FAIL, name, "%s", why);
    else
        pl__ck_row(c, CK_PASS, name,
                   "%d odd shapes (groups 3 and 2, depthwise 5 and 16), relative error %.1e vs its "
                   "dense slots per group, %.1e vs a direct double sum; groups 1 bit-identical to %s; "
                   "guards intact", CK_G_SPECS, max_dense, max_direct, ck_gop_dense[op]);
}

static void ck_backend_grouped(pl__ck *c, pl_instance *t)
{
    const pl_backend_ops *o = pl_instance_ops(t);
    int provided = 0;
    for (int op = 0; op < CK_G_N; op++)
        provided += ck_gop_provided(o, (ck_gop)op);
    if (!provided) {
        pl__ck_begin(c, "conv2d_grouped_*");
        pl__ck_row(c, CK_SKIP, "conv2d_grouped_*", "not provided (host falls back to dense per group)");
        return;
    }
    for (int op = 0; op < CK_G_N; op++) {
        if (ck_gop_provided(o, (ck_gop)op)) {
            ck_backend_grouped_op(c, t, (ck_gop)op);
        } else {
            pl__ck_begin(c, ck_gop_names[op]);
            pl__ck_row(c, CK_SKIP, ck_gop_names[op], "not provided (host falls back to dense per group)");
        }
    }
}

/* Grouped slots on the specs big enough to be threaded: 1 vs 4 threads. */
static void ck_grouped_threads(pl_instance *t1, pl_instance *t4, char *why, size_t wn, int *count)
{
    const pl_backend_ops *o = pl_instance_ops(t1);
    for (int op = 0; op < CK_G_N && !why[0]; op++) {
        if (!ck_gop_provided(o, (ck_gop)op))
            continue;
        ++*count;
        for (int spec = 2; spec < CK_G_SPECS && !why[0]; spec++) {
            ck_gcall k;
            float *a = NULL, *a2 = NULL, *b = NULL, *b2 = NULL;
            if (!ck_gcall_make(&k, (ck_gop)op, spec, 0) || !(a = malloc((size_t)k.n_out * sizeof *a)) ||
                !(b = malloc((size_t)k.n_out * sizeof *b)) ||
                (k.n_out2 && (!(a2 = malloc((size_t)k.n_out2 * sizeof *a2)) ||
                              !(b2 = malloc((size_t)k.n_out2 * sizeof *b2))))) {
                pl__ck_why(why, wn, "plugin-check ran out of memory");
            } else if (ck_gcall_run(&k, (ck_gop)op, t1, a, a2) != PL_OK ||
                       ck_gcall_run(&k, (ck_gop)op, t4, b, b2) != PL_OK) {
                pl__ck_why(why, wn, "%s failed (see its own row)", ck_gop_names[op]);
            } else if (memcmp(a, b, (size_t)k.n_out * sizeof *a) ||
                       (a2 && memcmp(a2, b2, (size_t)k.n_out2 * sizeof *a2))) {
                pl__ck_why(why, wn, "%s on %s differs between 1 and 4 threads", ck_gop_names[op], k.desc);
            }
            ck_inputs_free(&k.in);
            free(a);
            free(a2);
            free(b);
            free(b2);
        }
    }
}

/* Results may not depend on the thread count: 1 vs 4 threads, bit for bit. */
static void ck_backend_threads(pl__ck *c)
{
    char why[960] = "", ewhy[1024] = "";
    pl__ck_begin(c, "thread count");
    pl_instance *t1 = pl__ck_instance(c, 1, ewhy, sizeof ewhy);
    pl_instance *t4 = t1 ? pl__ck_instance(c, 4, ewhy, sizeof ewhy) : NULL;
    if (!t1 || !t4)
        pl__ck_why(why, sizeof why, "an instance failed: %s", ewhy);
    for (int op = 0; t4 && op < CK_N_OPS && !why[0]; op++) {
        ck_call k;
        float *a = NULL, *a2 = NULL, *b = NULL, *b2 = NULL;
        if (!ck_call_make(&k, (ck_op)op, 1) || !(a = malloc((size_t)k.n_out * sizeof *a)) ||
            !(b = malloc((size_t)k.n_out * sizeof *b)) ||
            (k.n_out2 && (!(a2 = malloc((size_t)k.n_out2 * sizeof *a2)) ||
                          !(b2 = malloc((size_t)k.n_out2 * sizeof *b2))))) {
            pl__ck_why(why, sizeof why, "plugin-check ran out of memory");
        } else if (ck_call_run(&k, t1, a, a2) != PL_OK || ck_call_run(&k, t4, b, b2) != PL_OK) {
            pl__ck_why(why, sizeof why, "%s failed (see its own row)", ck_op_names[op]);
        } else if (memcmp(a, b, (size_t)k.n_out * sizeof *a) ||
                   (a2 && memcmp(a2, b2, (size_t)k.n_out2 * sizeof *a2))) {
            pl__ck_why(why, sizeof why, "%s on %s differs between 1 and 4 threads", ck_op_names[op],
                   k.desc);
        }
        ck_inputs_free(&k.in);
        free(a);
        free(a2);
        free(b);
        free(b2);
    }
    int kernels = CK_N_OPS;
    if (t4 && !why[0])
        ck_grouped_threads(t1, t4, why, sizeof why, &kernels);
    pl_instance_free(t1);
    pl_instance_free(t4);
    if (why[0])
        pl__ck_row(c, CK_FAIL, "thread count", "%s", why);
    else
        pl__ck_row(c, CK_PASS, "thread count", "all %d kernels bit-identical with 1 and 4 threads", kernels);
}

void pl__ck_backend(pl__ck *c)
{
    pl_instance *t = pl__ck_params(c, 2);
    if (!t) {
        pl__ck_row(c, CK_SKIP, "backend checks", "no instance to check");
        return;
    }
    const pl_plugin *rp = NULL;
    pl_instance *ref = NULL;
    pl_error e;
    char why[1024] = "";
    if (pl_registry_find(c->reg, PL_KIND_BACKEND, "ref", &rp, &e) == PL_OK) {
        static const char *const none[] = {NULL};
        if (pl_instance_new_kv(rp, none, CK_SEED, 1, &ref, &e) != PL_OK)
            ref = NULL;
    }
    if (!ref)
        snprintf(why, sizeof why, "%s", e.msg);
    pl__ck_begin(c, "ref backend");
    if (ref)
        pl__ck_row(c, CK_PASS, "ref backend", "comparing against %s", pl_plugin_path(rp));
    else
        pl__ck_row(c, CK_SKIP, "ref backend", "no ref backend to compare against (%s); forward kernels are still compared with a direct sum",
               why);
    for (int op = 0; op < CK_N_OPS; op++)
        ck_backend_op(c, t, ref, (ck_op)op);
    ck_backend_grouped(c, t);
    ck_backend_threads(c);
    pl_instance_free(ref);
    pl_instance_free(t);
}
