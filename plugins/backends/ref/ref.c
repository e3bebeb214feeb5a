/*
 * ref — the reference backend: plain, obviously correct C for every
 * required pl_backend_ops slot and for grouped convolution (the ABI 1.4
 * optional slots; the fused ABI 1.1/1.2 slots are left out). It is the oracle the other backends are tested
 * against, so it favours clarity over speed: straight loops over the
 * definitions in plugin.h, double accumulators, one thread.
 *
 * Conventions shared with the simd backend (both are tested on them):
 * - relu(x) = (0 > x) ? 0 : x, so NaN propagates (as in PyTorch).
 * - maxpool: the first valid element of the window in row-major order
 *   starts as the winner and is replaced only by a strictly greater one;
 *   padding never takes part. Shapes need 2*pad <= kernel (PyTorch's rule),
 *   which guarantees every window holds at least one real element.
 * - Optimizers follow PyTorch 1.13's single-tensor code op for op, in
 *   float32. A mask is applied as p = p*mask + 0.0f: the +0.0f turns the
 *   -0.0f of a negative weight times 0 into +0.0f, so pruned weights (and
 *   their optimizer state) are exactly +0.0f.
 */
#include <prunelab/plugin.h>

#include <math.h>
#include <string.h>

typedef struct ref_state {
    const pl_host_api *api;
    pl_ctx *ctx;
} ref_state;

static pl_status ref_init(const pl_env *env, void **state)
{
    ref_state *r = env->api->alloc(sizeof *r);
    if (!r)
        return PL_ENOMEM;
    r->api = env->api;
    r->ctx = env->ctx;
    *state = r;
    return PL_OK;
}

static void ref_fini(void *state)
{
    ref_state *r = state;
    if (r)
        r->api->free(r);
}

static pl_status fail(ref_state *r, pl_status st, const char *what)
{
    if (r && r->api && r->api->set_error)
        r->api->set_error(r->ctx, "%s", what);
    return st;
}

/* ---- shape checks -------------------------------------------------------- */

static int conv_shape_ok(const pl_conv2d_shape *s)
{
    if (s->n < 1 || s->cin < 1 || s->h < 1 || s->w < 1 || s->cout < 1 ||
        s->kh < 1 || s->kw < 1 || s->stride_h < 1 || s->stride_w < 1 ||
        s->pad_h < 0 || s->pad_w < 0)
        return 0;
    if (s->h + 2 * s->pad_h < s->kh || s->w + 2 * s->pad_w < s->kw)
        return 0;
    return s->oh == (s->h + 2 * s->pad_h - s->kh) / s->stride_h + 1 &&
           s->ow == (s->w + 2 * s->pad_w - s->kw) / s->stride_w + 1;
}

static int pool_shape_ok(const pl_pool2d_shape *s)
{
    if (s->n < 1 || s->c < 1 || s->h < 1 || s->w < 1 || s->kh < 1 || s->kw < 1 ||
        s->stride_h < 1 || s->stride_w < 1 || s->pad_h < 0 || s->pad_w < 0 ||
        2 * s->pad_h > s->kh || 2 * s->pad_w > s->kw)
        return 0;
    if (s->h + 2 * s->pad_h < s->kh || s->w + 2 * s->pad_w < s->kw)
        return 0;
    return s->oh == (s->h + 2 * s->pad_h - s->kh) / s->stride_h + 1 &&
           s->ow == (s->w + 2 * s->pad_w - s->kw) / s->stride_w + 1;
}

#define CHECK_CONV(st, s)                                                      \
    do {                                                                       \
        if (!conv_shape_ok(s))                                                 \
            return fail(st, PL_EINVAL, "conv2d: inconsistent shape");          \
    } while (0)
#define CHECK_POOL(st, s)                                                      \
    do {                                                                       \
        if (!pool_shape_ok(s))                                                 \
            return fail(st, PL_EINVAL, "pool2d: inconsistent shape");          \
    } while (0)

/* ---- conv2d -------------------------------------------------------------- */

/* y[n][co][oy][ox] = b[co] + Σ_{ci,ky,kx} w[co][ci][ky][kx] · x[n][ci][oy*sh-ph+ky][ox*sw-pw+kx] */
static pl_status ref_conv2d_forward(void *st, const pl_conv2d_shape *s,
                                    const float *x, const float *w,
                                    const float *b, float *y)
{
    CHECK_CONV(st, s);
    for (int n = 0; n < s->n; n++)
        for (int co = 0; co < s->cout; co++)
            for (int oy = 0; oy < s->oh; oy++)
                for (int ox = 0; ox < s->ow; ox++) {
                    double acc = b ? b[co] : 0.0;
                    for (int ci = 0; ci < s->cin; ci++)
                        for (int ky = 0; ky < s->kh; ky++) {
                            int iy = oy * s->stride_h - s->pad_h + ky;
                            if (iy < 0 || iy >= s->h)
                                continue;
                            for (int kx = 0; kx < s->kw; kx++) {
                                int ix = ox * s->stride_w - s->pad_w + kx;
                                if (ix < 0 || ix >= s->w)
                                    continue;
                                acc += (double)w[((size_t)(co * s->cin + ci) * s->kh + ky) * s->kw + kx] *
                                       x[(((size_t)n * s->cin + ci) * s->h + iy) * s->w + ix];
                            }
                        }
                    y[(((size_t)n * s->cout + co) * s->oh + oy) * s->ow + ox] = (float)acc;
                }
    return PL_OK;
}

/* dx[n][ci][iy][ix] = Σ_{co,ky,kx : iy = oy*sh-ph+ky, ix = ox*sw-pw+kx} w[co][ci][ky][kx] · dy[n][co][oy][ox] */
static pl_status ref_conv2d_backward_data(void *st, const pl_conv2d_shape *s,
                                          const float *dy, const float *w,
                                          float *dx)
{
    CHECK_CONV(st, s);
    for (int n = 0; n < s->n; n++)
        for (int ci = 0; ci < s->cin; ci++)
            for (int iy = 0; iy < s->h; iy++)
                for (int ix = 0; ix < s->w; ix++) {
                    double acc = 0.0;
                    for (int co = 0; co < s->cout; co++)
                        for (int ky = 0; ky < s->kh; ky++) {
                            int ty = iy + s->pad_h - ky; /* = oy * sh */
                            if (ty < 0 || ty % s->stride_h)
                                continue;
                            int oy = ty / s->stride_h;
                            if (oy >= s->oh)
                                continue;
                            for (int kx = 0; kx < s->kw; kx++) {
                                int tx = ix + s->pad_w - kx;
                                if (tx < 0 || tx % s->stride_w)
                                    continue;
                                int ox = tx / s->stride_w;
                                if (ox >= s->ow)
                                    continue;
                                acc += (double)w[((size_t)(co * s->cin + ci) * s->kh + ky) * s->kw + kx] *
                                       dy[(((size_t)n * s->cout + co) * s->oh + oy) * s->ow + ox];
                            }
                        }
                    dx[(((size_t)n * s->cin + ci) * s->h + iy) * s->w + ix] = (float)acc;
                }
    return PL_OK;
}

/* dw[co][ci][ky][kx] = Σ_{n,oy,ox} dy[n][co][oy][ox] · x[n][ci][oy*sh-ph+ky][ox*sw-pw+kx]
 * db[co] = Σ_{n,oy,ox} dy[n][co][oy][ox] */
static pl_status ref_conv2d_backward_weight(void *st, const pl_conv2d_shape *s,
                                            const float *x, const float *dy,
                                            float *dw, float *db)
{
    CHECK_CONV(st, s);
    for (int co = 0; co < s->cout; co++) {
        for (int ci = 0; ci < s->cin; ci++)
            for (int ky = 0; ky < s->kh; ky++)
                for (int kx = 0; kx < s->kw; kx++) {
                    double acc = 0.0;
                    for (int n = 0; n < s->n; n++)
                        for (int oy = 0; oy < s->oh; oy++) {
                            int iy = oy * s->stride_h - s->pad_h + ky;
                            if (iy < 0 || iy >= s->h)
                                continue;
                            for (int ox = 0; ox < s->ow; ox++) {
                                int ix = ox * s->stride_w - s->pad_w + kx;
                                if (ix < 0 || ix >= s->w)
                                    continue;
                                acc += (double)dy[(((size_t)n * s->cout + co) * s->oh + oy) * s->ow + ox] *
                                       x[(((size_t)n * s->cin + ci) * s->h + iy) * s->w + ix];
                            }
                        }
                    dw[((size_t)(co * s->cin + ci) * s->kh + ky) * s->kw + kx] = (float)acc;
                }
        if (db) {
            double acc = 0.0;
            for (int n = 0; n < s->n; n++)
                for (int i = 0; i < s->oh * s->ow; i++)
                    acc += dy[((size_t)n * s->cout + co) * s->oh * s->ow + i];
            db[co] = (float)acc;
        }
    }
    return PL_OK;
}

/* ---- grouped conv2d (ABI 1.4) ------------------------------------------------ */

/* Output channel co belongs to group g = co / og (og = cout/groups) and reads
 * input channels g*cg .. g*cg + cg - 1 (cg = cin/groups); the weight is
 * w[cout][cg][kh][kw]. groups == 1 is the dense kernel itself (the same
 * function, so bit for bit). The loops below are the dense ones with ci
 * running over the group's channels only, in the same order. */
static int groups_ok(const pl_conv2d_shape *s, int groups)
{
    return groups >= 1 && s->cin % groups == 0 && s->cout % groups == 0;
}

#define CHECK_GROUPS(st, s, groups)                                                        \
    do {                                                                                   \
        CHECK_CONV(st, s);                                                                 \
        if (!groups_ok(s, groups))                                                         \
            return fail(st, PL_EINVAL,                                                     \
                        "conv2d_grouped: groups must be >= 1 and divide cin and cout");    \
    } while (0)

/* y[n][co][oy][ox] = b[co] + Σ_{j<cg,ky,kx} w[co][j][ky][kx] · x[n][g*cg+j][oy*sh-ph+ky][ox*sw-pw+kx] */
static pl_status ref_conv2d_grouped_forward(void *st, const pl_conv2d_shape *s, int groups,
                                            const float *x, const float *w, const float *b,
                                            float *y)
{
    CHECK_GROUPS(st, s, groups);
    if (groups == 1)
        return ref_conv2d_forward(st, s, x, w, b, y);
    int cg = s->cin / groups, og = s->cout / groups;
    for (int n = 0; n < s->n; n++)
        for (int co = 0; co < s->cout; co++) {
            int c0 = co / og * cg; /* the group's first input channel */
            for (int oy = 0; oy < s->oh; oy++)
                for (int ox = 0; ox < s->ow; ox++) {
                    double acc = b ? b[co] : 0.0;
                    for (int j = 0; j < cg; j++)
                        for (int ky = 0; ky < s->kh; ky++) {
                            int iy = oy * s->stride_h - s->pad_h + ky;
                            if (iy < 0 || iy >= s->h)
                                continue;
                            for (int kx = 0; kx < s->kw; kx++) {
                                int ix = ox * s->stride_w - s->pad_w + kx;
                                if (ix < 0 || ix >= s->w)
                                    continue;
                                acc += (double)w[((size_t)co * cg + j) * s->kh * s->kw + (size_t)ky * s->kw + kx] *
                                       x[(((size_t)n * s->cin + c0 + j) * s->h + iy) * s->w + ix];
                            }
                        }
                    y[(((size_t)n * s->cout + co) * s->oh + oy) * s->ow + ox] = (float)acc;
                }
        }
    return PL_OK;
}

/* dx[n][ci][iy][ix] = Σ_{co of ci's group, ky, kx : iy = oy*sh-ph+ky, ix = ox*sw-pw+kx}
 *                     w[co][ci - g*cg][ky][kx] · dy[n][co][oy][ox] */
static pl_status ref_conv2d_grouped_backward_data(void *st, const pl_conv2d_shape *s, int groups,
                                                  const float *dy, const float *w, float *dx)
{
    CHECK_GROUPS(st, s, groups);
    if (groups == 1)
        return ref_conv2d_backward_data(st, s, dy, w, dx);
    int cg = s->cin / groups, og = s->cout / groups;
    for (int n = 0; n < s->n; n++)
        for (int ci = 0; ci < s->cin; ci++) {
            int g = ci / cg, j = ci % cg;
            for (int iy = 0; iy < s->h; iy++)
                for (int ix = 0; ix < s->w; ix++) {
                    double acc = 0.0;
                    for (int co = g * og; co < (g + 1) * og; co++)
                        for (int ky = 0; ky < s->kh; ky++) {
                            int ty = iy + s->pad_h - ky; /* = oy * sh */
                            if (ty < 0 || ty % s->stride_h)
                                continue;
                            int oy = ty / s->stride_h;
                            if (oy >= s->oh)
                                continue;
                            for (int kx = 0; kx < s->kw; kx++) {
                                int tx = ix + s->pad_w - kx;
                                if (tx < 0 || tx % s->stride_w)
                                    continue;
                                int ox = tx / s->stride_w;
                                if (ox >= s->ow)
                                    continue;
                                acc += (double)w[((size_t)co * cg + j) * s->kh * s->kw + (size_t)ky * s->kw + kx] *
                                       dy[(((size_t)n * s->cout + co) * s->oh + oy) * s->ow + ox];
                            }
                        }
                    dx[(((size_t)n * s->cin + ci) * s->h + iy) * s->w + ix] = (float)acc;
                }
        }
    return PL_OK;
}

/* dw[co][j][ky][kx] = Σ_{n,oy,ox} dy[n][co][oy][ox] · x[n][g*cg+j][oy*sh-ph+ky][ox*sw-pw+kx]
 * db[co] = Σ_{n,oy,ox} dy[n][co][oy][ox] */
static pl_status ref_conv2d_grouped_backward_weight(void *st, const pl_conv2d_shape *s, int groups,
                                                    const float *x, const float *dy, float *dw,
                                                    float *db)
{
    CHECK_GROUPS(st, s, groups);
    if (groups == 1)
        return ref_conv2d_backward_weight(st, s, x, dy, dw, db);
    int cg = s->cin / groups, og = s->cout / groups;
    for (int co = 0; co < s->cout; co++) {
        int c0 = co / og * cg;
        for (int j = 0; j < cg; j++)
            for (int ky = 0; ky < s->kh; ky++)
                for (int kx = 0; kx < s->kw; kx++) {
                    double acc = 0.0;
                    for (int n = 0; n < s->n; n++)
                        for (int oy = 0; oy < s->oh; oy++) {
                            int iy = oy * s->stride_h - s->pad_h + ky;
                            if (iy < 0 || iy >= s->h)
                                continue;
                            for (int ox = 0; ox < s->ow; ox++) {
                                int ix = ox * s->stride_w - s->pad_w + kx;
                                if (ix < 0 || ix >= s->w)
                                    continue;
                                acc += (double)dy[(((size_t)n * s->cout + co) * s->oh + oy) * s->ow + ox] *
                                       x[(((size_t)n * s->cin + c0 + j) * s->h + iy) * s->w + ix];
                            }
                        }
                    dw[((size_t)co * cg + j) * s->kh * s->kw + (size_t)ky * s->kw + kx] = (float)acc;
                }
        if (db) {
            double acc = 0.0;
            for (int n = 0; n < s->n; n++)
                for (int i = 0; i < s->oh * s->ow; i++)
                    acc += dy[((size_t)n * s->cout + co) * s->oh * s->ow + i];
            db[co] = (float)acc;
        }
    }
    return PL_OK;
}

/* ---- linear -------------------------------------------------------------- */

/* y[n][o] = b[o] + Σ_i x[n][i] · w[o][i] */
static pl_status ref_linear_forward(void *st, int n, int in, int out,
                                    const float *x, const float *w,
                                    const float *b, float *y)
{
    if (n < 1 || in < 1 || out < 1)
        return fail(st, PL_EINVAL, "linear: sizes must be positive");
    for (int r = 0; r < n; r++)
        for (int o = 0; o < out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int i = 0; i < in; i++)
                acc += (double)x[(size_t)r * in + i] * w[(size_t)o * in + i];
            y[(size_t)r * out + o] = (float)acc;
        }
    return PL_OK;
}

/* dx[n][i] = Σ_o dy[n][o] · w[o][i] */
static pl_status ref_linear_backward_data(void *st, int n, int in, int out,
                                          const float *dy, const float *w,
                                          float *dx)
{
    if (n < 1 || in < 1 || out < 1)
        return fail(st, PL_EINVAL, "linear: sizes must be positive");
    for (int r = 0; r < n; r++)
        for (int i = 0; i < in; i++) {
            double acc = 0.0;
            for (int o = 0; o < out; o++)
                acc += (double)dy[(size_t)r * out + o] * w[(size_t)o * in + i];
            dx[(size_t)r * in + i] = (float)acc;
        }
    return PL_OK;
}

/* dw[o][i] = Σ_n dy[n][o] · x[n][i];  db[o] = Σ_n dy[n][o] */
static pl_status ref_linear_backward_weight(void *st, int n, int in, int out,
                                            const float *x, const float *dy,
                                            float *dw, float *db)
{
    if (n < 1 || in < 1 || out < 1)
        return fail(st, PL_EINVAL, "linear: sizes must be positive");
    for (int o = 0; o < out; o++) {
        for (int i = 0; i < in; i++) {
            double acc = 0.0;
            for (int r = 0; r < n; r++)
                acc += (double)dy[(size_t)r * out + o] * x[(size_t)r * in + i];
            dw[(size_t)o * in + i] = (float)acc;
        }
        if (db) {
            double acc = 0.0;
            for (int r = 0; r < n; r++)
                acc += dy[(size_t)r * out + o];
            db[o] = (float)acc;
        }
    }
    return PL_OK;
}

/* ---- pooling ------------------------------------------------------------- */

/* y = max over the window's real elements; argmax = iy*w+ix of the winner */
static pl_status ref_maxpool2d_forward(void *st, const pl_pool2d_shape *s,
                                       const float *x, float *y, int32_t *argmax)
{
    CHECK_POOL(st, s);
    for (int p = 0; p < s->n * s->c; p++) {
        const float *xp = x + (size_t)p * s->h * s->w;
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++) {
                int found = 0, best_i = 0;
                float best = 0.0f;
                for (int ky = 0; ky < s->kh; ky++) {
                    int iy = oy * s->stride_h - s->pad_h + ky;
                    if (iy < 0 || iy >= s->h)
                        continue;
                    for (int kx = 0; kx < s->kw; kx++) {
                        int ix = ox * s->stride_w - s->pad_w + kx;
                        if (ix < 0 || ix >= s->w)
                            continue;
                        float v = xp[iy * s->w + ix];
                        if (!found || v > best) {
                            best = v;
                            best_i = iy * s->w + ix;
                            found = 1;
                        }
                    }
                }
                size_t o = ((size_t)p * s->oh + oy) * s->ow + ox;
                y[o] = best;
                if (argmax)
                    argmax[o] = best_i;
            }
    }
    return PL_OK;
}

/* dx = 0; dx[argmax] += dy (overlapping windows may pick the same input) */
static pl_status ref_maxpool2d_backward(void *st, const pl_pool2d_shape *s,
                                        const float *dy, const int32_t *argmax,
                                        float *dx)
{
    CHECK_POOL(st, s);
    if (!argmax)
        return fail(st, PL_EINVAL, "maxpool2d_backward: argmax is required");
    size_t plane = (size_t)s->h * s->w, oplane = (size_t)s->oh * s->ow;
    memset(dx, 0, sizeof(float) * plane * s->n * s->c);
    for (size_t p = 0; p < (size_t)s->n * s->c; p++)
        for (size_t o = 0; o < oplane; o++) {
            int32_t a = argmax[p * oplane + o];
            if (a < 0 || (size_t)a >= plane)
                return fail(st, PL_EINVAL, "maxpool2d_backward: argmax out of range");
            dx[p * plane + a] += dy[p * oplane + o];
        }
    return PL_OK;
}

/* y = Σ window / (kh*kw), padding counted as zeros */
static pl_status ref_avgpool2d_forward(void *st, const pl_pool2d_shape *s,
                                       const float *x, float *y)
{
    CHECK_POOL(st, s);
    for (int p = 0; p < s->n * s->c; p++) {
        const float *xp = x + (size_t)p * s->h * s->w;
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++) {
                double acc = 0.0;
                for (int ky = 0; ky < s->kh; ky++) {
                    int iy = oy * s->stride_h - s->pad_h + ky;
                    if (iy < 0 || iy >= s->h)
                        continue;
                    for (int kx = 0; kx < s->kw; kx++) {
                        int ix = ox * s->stride_w - s->pad_w + kx;
                        if (ix >= 0 && ix < s->w)
                            acc += xp[iy * s->w + ix];
                    }
                }
                y[((size_t)p * s->oh + oy) * s->ow + ox] = (float)(acc / (s->kh * s->kw));
            }
    }
    return PL_OK;
}

/* dx[window] += dy / (kh*kw) for every window, padding dropped */
static pl_status ref_avgpool2d_backward(void *st, const pl_pool2d_shape *s,
                                        const float *dy, float *dx)
{
    CHECK_POOL(st, s);
    size_t plane = (size_t)s->h * s->w;
    memset(dx, 0, sizeof(float) * plane * s->n * s->c);
    for (int p = 0; p < s->n * s->c; p++) {
        float *dxp = dx + (size_t)p * plane;
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++) {
                float g = (float)((double)dy[((size_t)p * s->oh + oy) * s->ow + ox] / (s->kh * s->kw));
                for (int ky = 0; ky < s->kh; ky++) {
                    int iy = oy * s->stride_h - s->pad_h + ky;
                    if (iy < 0 || iy >= s->h)
                        continue;
                    for (int kx = 0; kx < s->kw; kx++) {
                        int ix = ox * s->stride_w - s->pad_w + kx;
                        if (ix >= 0 && ix < s->w)
                            dxp[iy * s->w + ix] += g;
                    }
                }
            }
    }
    return PL_OK;
}

/* ---- relu ---------------------------------------------------------------- */

/* y = max(x, 0), NaN propagates */
static pl_status ref_relu_forward(void *st, int64_t n, const float *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = 0.0f > x[i] ? 0.0f : x[i];
    return PL_OK;
}

/* dx = dy · [y > 0] */
static pl_status ref_relu_backward(void *st, int64_t n, const float *y,
                                   const float *dy, float *dx)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    return PL_OK;
}

/* ---- loss ---------------------------------------------------------------- */

/* loss_row = log Σ_j exp(z_j - max) - (z_label - max);
 * dlogits = (softmax - onehot) · grad_scale */
static pl_status ref_softmax_xent(void *st, int n, int classes,
                                  const float *logits, const int32_t *labels,
                                  float grad_scale, float *dlogits,
                                  double *loss_sum, int64_t *correct)
{
    if (n < 1 || classes < 1)
        return fail(st, PL_EINVAL, "softmax_xent: sizes must be positive");
    double loss = 0.0;
    int64_t right = 0;
    for (int r = 0; r < n; r++) {
        const float *z = logits + (size_t)r * classes;
        int32_t label = labels[r];
        if (label < 0 || label >= classes)
            return fail(st, PL_EINVAL, "softmax_xent: label out of range");
        int arg = 0;
        for (int j = 1; j < classes; j++)
            if (z[j] > z[arg])
                arg = j;
        double m = z[arg], sum = 0.0;
        for (int j = 0; j < classes; j++)
            sum += exp((double)z[j] - m);
        loss += log(sum) - ((double)z[label] - m);
        right += arg == label;
        if (dlogits)
            for (int j = 0; j < classes; j++) {
                double p = exp((double)z[j] - m) / sum;
                dlogits[(size_t)r * classes + j] = (float)((p - (j == label)) * grad_scale);
            }
    }
    *loss_sum = loss;
    *correct = right;
    return PL_OK;
}

/* ---- optimizers ---------------------------------------------------------- */

/* PyTorch 1.13 Adam, single tensor:
 *   g = g*mask + wd*p; m = m*b1 + (1-b1)*g; v = v*b2 + ((1-b2)*g)*g;
 *   denom = sqrt(v)/sqrt(bc2) + eps; p = p + ((-lr/bc1)*m)/denom;
 *   then p, m, v = x*mask + 0 */
static pl_status ref_adam_update(void *st, const pl_adam_hparams *h, int64_t n,
                                 float *p, const float *g, float *m, float *v,
                                 const float *mask)
{
    if (h->step < 1)
        return fail(st, PL_EINVAL, "adam: step must be >= 1");
    double bc1 = 1.0 - pow((double)h->beta1, (double)h->step);
    double bc2 = 1.0 - pow((double)h->beta2, (double)h->step);
    float neg_step = (float)(-((double)h->lr / bc1));
    float bc2_sqrt = (float)sqrt(bc2);
    float b1 = h->beta1, b2 = h->beta2, omb1 = 1.0f - h->beta1, omb2 = 1.0f - h->beta2;
    for (int64_t i = 0; i < n; i++) {
        float gi = mask ? g[i] * mask[i] : g[i];
        if (h->weight_decay != 0.0f)
            gi = gi + h->weight_decay * p[i];
        m[i] = m[i] * b1 + omb1 * gi;
        v[i] = v[i] * b2 + (omb2 * gi) * gi;
        float denom = sqrtf(v[i]) / bc2_sqrt + h->eps;
        p[i] = p[i] + (neg_step * m[i]) / denom;
        if (mask) {
            p[i] = p[i] * mask[i] + 0.0f;
            m[i] = m[i] * mask[i] + 0.0f;
            v[i] = v[i] * mask[i] + 0.0f;
        }
    }
    return PL_OK;
}

/* PyTorch 1.13 SGD: g = g*mask + wd*p; buf = first ? g : buf*mom + (1-damp)*g;
 * g = nesterov ? g + mom*buf : buf; p = p + (-lr)*g; then p, buf = x*mask + 0 */
static pl_status ref_sgd_update(void *st, const pl_sgd_hparams *h, int64_t n,
                                float *p, const float *g, float *buf,
                                const float *mask)
{
    float mom = h->momentum, omd = 1.0f - h->dampening, neg_lr = -h->lr;
    if (mom != 0.0f && !buf)
        return fail(st, PL_EINVAL, "sgd: momentum needs a buffer");
    for (int64_t i = 0; i < n; i++) {
        float gi = mask ? g[i] * mask[i] : g[i];
        if (h->weight_decay != 0.0f)
            gi = gi + h->weight_decay * p[i];
        if (mom != 0.0f) {
            buf[i] = h->first_step ? gi : buf[i] * mom + omd * gi;
            gi = h->nesterov ? gi + mom * buf[i] : buf[i];
        }
        p[i] = p[i] + neg_lr * gi;
        if (mask) {
            p[i] = p[i] * mask[i] + 0.0f;
            if (mom != 0.0f)
                buf[i] = buf[i] * mask[i] + 0.0f;
        }
    }
    return PL_OK;
}

static const pl_backend_ops ref_ops = {
    .conv2d_forward = ref_conv2d_forward,
    .conv2d_backward_data = ref_conv2d_backward_data,
    .conv2d_backward_weight = ref_conv2d_backward_weight,
    .linear_forward = ref_linear_forward,
    .linear_backward_data = ref_linear_backward_data,
    .linear_backward_weight = ref_linear_backward_weight,
    .maxpool2d_forward = ref_maxpool2d_forward,
    .maxpool2d_backward = ref_maxpool2d_backward,
    .avgpool2d_forward = ref_avgpool2d_forward,
    .avgpool2d_backward = ref_avgpool2d_backward,
    .relu_forward = ref_relu_forward,
    .relu_backward = ref_relu_backward,
    .softmax_xent = ref_softmax_xent,
    .adam_update = ref_adam_update,
    .sgd_update = ref_sgd_update,
    /* ABI 1.4 */
    .conv2d_grouped_forward = ref_conv2d_grouped_forward,
    .conv2d_grouped_backward_data = ref_conv2d_grouped_backward_data,
    .conv2d_grouped_backward_weight = ref_conv2d_grouped_backward_weight,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_BACKEND,
    .name = "ref",
    .version = "1.0.0",
    .description = "plain-C reference kernels (single-threaded oracle)",
    .params = NULL,
    .init = ref_init,
    .fini = ref_fini,
    .ops = &ref_ops,
    .reserved = {0},
};
