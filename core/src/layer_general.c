/* layer_general.c — host kernels for asymmetric padding, dilation and
 * count_include_pad=0 (rules in layer_general.h). */
#include "layer_general.h"

#include <string.h>

/* ---- the window walk -------------------------------------------------------------

   Output (oy, ox) reads kernel tap (ky, kx) at input row oy*sh - ph + ky*dh,
   column ox*sw - pw + kx*dw; a tap outside the input is padding. Along one
   axis the taps inside form one run, so the kernels walk [ky0, ky1) x
   [kx0, kx1) in the kernel's own order: the same elements in the same order
   as testing every tap, the padding never visited. The convolution's weight
   gradient walks the same runs with output and kernel swapped; its input
   gradient goes from each input element to the outputs that read it. */

/* Taps t in [0, k) with base + t*step inside [0, len) (step >= 1): [*t0, *t1),
 * empty when none. */
static void taps(int64_t base, int64_t step, int k, int len, int *t0, int *t1)
{
    int64_t lo = base >= 0 ? 0 : (-base + step - 1) / step;
    int64_t hi = base >= len ? 0 : (len - 1 - base) / step + 1;
    if (hi > k)
        hi = k;
    if (lo > hi)
        lo = hi;
    *t0 = (int)lo;
    *t1 = (int)hi;
}

/* The kernel window of output (oy, ox): tap (ky, kx) for ky in [ky0, ky1),
 * kx in [kx0, kx1) reads input row iy0 + ky*dh, column ix0 + kx*dw. */
typedef struct window {
    int iy0, ix0, dh, dw;
    int ky0, ky1, kx0, kx1;
} window;

static window window_at(const pl_layer *l, int oy, int ox)
{
    window w = {.iy0 = oy * l->sh - l->ph, .ix0 = ox * l->sw - l->pw, .dh = pl_layer_dil(l->dil_h),
                .dw = pl_layer_dil(l->dil_w)};
    taps(w.iy0, w.dh, l->kh, l->in_h, &w.ky0, &w.ky1);
    taps(w.ix0, w.dw, l->kw, l->in_w, &w.kx0, &w.kx1);
    return w;
}

/* The input element of tap (ky, kx), as an offset into one plane. */
static size_t window_elem(const pl_layer *l, const window *w, int ky, int kx)
{
    return (size_t)(w->iy0 + ky * w->dh) * l->in_w + (size_t)(w->ix0 + kx * w->dw);
}

int pl__layer_general(const pl_layer *l)
{
    if (l->type != PL_LAYER_CONV2D && l->type != PL_LAYER_MAXPOOL2D && l->type != PL_LAYER_AVGPOOL2D)
        return 0;
    if (l->pad_xb || l->pad_xr || l->dil_h > 1 || l->dil_w > 1 ||
        (l->type == PL_LAYER_AVGPOOL2D && l->excl_pad && (l->ph || l->pw)))
        return 1;
    /* pools padded by more than half the kernel: beyond the backend's contract */
    return l->type != PL_LAYER_CONV2D && ((int64_t)l->ph * 2 > l->kh || (int64_t)l->pw * 2 > l->kw);
}

void pl__conv_general_forward(const pl_layer *l, int n, const float *x, const float *w, const float *b, float *y)
{
    int G = l->groups > 0 ? l->groups : 1, ci_g = l->in_c / G, co_g = l->out_c / G;
    size_t ip = (size_t)l->in_h * l->in_w, op = (size_t)l->out_h * l->out_w;
    for (int i = 0; i < n; i++)
        for (int co = 0; co < l->out_c; co++) {
            int g = co / co_g;
            const float *wc = w + (size_t)co * ci_g * l->kh * l->kw;
            float *yp = y + ((size_t)i * l->out_c + co) * op;
            for (int oy = 0; oy < l->out_h; oy++)
                for (int ox = 0; ox < l->out_w; ox++) {
                    double acc = b ? (double)b[co] : 0.0;
                    window wi = window_at(l, oy, ox);
                    for (int c = 0; c < ci_g; c++) {
                        const float *xp = x + ((size_t)i * l->in_c + (size_t)g * ci_g + c) * ip;
                        const float *wk = wc + (size_t)c * l->kh * l->kw;
                        for (int ky = wi.ky0; ky < wi.ky1; ky++)
                            for (int kx = wi.kx0; kx < wi.kx1; kx++)
                                acc += (double)wk[ky * l->kw + kx] * xp[window_elem(l, &wi, ky, kx)];
                    }
                    yp[(size_t)oy * l->out_w + ox] = (float)acc;
                }
        }
}

void pl__conv_general_backward(const pl_layer *l, int n, const float *x, const float *w, const float *dy, float *dx,
                               float *dw_out, float *db)
{
    int G = l->groups > 0 ? l->groups : 1, ci_g = l->in_c / G, co_g = l->out_c / G;
    int dh = pl_layer_dil(l->dil_h), dw = pl_layer_dil(l->dil_w);
    size_t ip = (size_t)l->in_h * l->in_w, op = (size_t)l->out_h * l->out_w, kk = (size_t)l->kh * l->kw;
    if (dx)
        memset(dx, 0, sizeof(float) * (size_t)n * l->in_c * ip);
    for (int co = 0; co < l->out_c; co++) {
        int g = co / co_g;
        double bacc = 0.0;
        for (int c = 0; c < ci_g; c++)
            for (int ky = 0; ky < l->kh; ky++)
                for (int kx = 0; kx < l->kw; kx++) {
                    /* the outputs [oy0, oy1) x [ox0, ox1) whose window has tap
                     * (ky, kx) inside the input: the walk with output and
                     * kernel swapped */
                    int iy0 = ky * dh - l->ph, ix0 = kx * dw - l->pw, oy0, oy1, ox0, ox1;
                    taps(iy0, l->sh, l->out_h, l->in_h, &oy0, &oy1);
                    taps(ix0, l->sw, l->out_w, l->in_w, &ox0, &ox1);
                    double acc = 0.0;
                    for (int i = 0; i < n; i++) {
                        const float *xp = x + ((size_t)i * l->in_c + (size_t)g * ci_g + c) * ip;
                        const float *dyp = dy + ((size_t)i * l->out_c + co) * op;
                        for (int oy = oy0; oy < oy1; oy++)
                            for (int ox = ox0; ox < ox1; ox++)
                                acc += (double)dyp[(size_t)oy * l->out_w + ox] *
                                       xp[(size_t)(iy0 + oy * l->sh) * l->in_w + (size_t)(ix0 + ox * l->sw)];
                    }
                    dw_out[((size_t)co * ci_g + c) * kk + (size_t)ky * l->kw + kx] = (float)acc;
                }
        for (int i = 0; i < n; i++) {
            const float *dyp = dy + ((size_t)i * l->out_c + co) * op;
            for (size_t o = 0; o < op; o++)
                bacc += dyp[o];
        }
        if (db)
            db[co] = (float)bacc;
    }
    if (!dx)
        return;
    /* dx[ci][iy][ix] = Σ_{co in the group, ky, kx, oy, ox hitting it} dy · w,
     * gathered per input element so the sum has one fixed order */
    for (int i = 0; i < n; i++)
        for (int ci = 0; ci < l->in_c; ci++) {
            int g = ci / ci_g, c = ci % ci_g;
            float *dxp = dx + ((size_t)i * l->in_c + ci) * ip;
            for (int iy = 0; iy < l->in_h; iy++)
                for (int ix = 0; ix < l->in_w; ix++) {
                    double acc = 0.0;
                    for (int co = g * co_g; co < (g + 1) * co_g; co++) {
                        const float *dyp = dy + ((size_t)i * l->out_c + co) * op;
                        const float *wk = w + ((size_t)co * ci_g + c) * kk;
                        for (int ky = 0; ky < l->kh; ky++) {
                            int ty = iy + l->ph - ky * dh;
                            if (ty < 0 || ty % l->sh)
                                continue;
                            int oy = ty / l->sh;
                            if (oy >= l->out_h)
                                continue;
                            for (int kx = 0; kx < l->kw; kx++) {
                                int tx = ix + l->pw - kx * dw;
                                if (tx < 0 || tx % l->sw)
                                    continue;
                                int ox = tx / l->sw;
                                if (ox < l->out_w)
                                    acc += (double)dyp[(size_t)oy * l->out_w + ox] * wk[ky * l->kw + kx];
                            }
                        }
                    }
                    dxp[(size_t)iy * l->in_w + ix] = (float)acc;
                }
        }
}

void pl__maxpool_general_forward(const pl_layer *l, int n, const float *x, float *y, int32_t *argmax)
{
    size_t ip = (size_t)l->in_h * l->in_w, op = (size_t)l->out_h * l->out_w;
    for (size_t p = 0; p < (size_t)n * l->in_c; p++) {
        const float *xp = x + p * ip;
        for (int oy = 0; oy < l->out_h; oy++)
            for (int ox = 0; ox < l->out_w; ox++) {
                int found = 0, best_i = -1;
                float best = 0.0f;
                window wi = window_at(l, oy, ox);
                for (int ky = wi.ky0; ky < wi.ky1; ky++)
                    for (int kx = wi.kx0; kx < wi.kx1; kx++) {
                        size_t e = window_elem(l, &wi, ky, kx);
                        float v = xp[e];
                        if (!found || v > best) {
                            best = v;
                            best_i = (int)e;
                            found = 1;
                        }
                    }
                size_t o = p * op + (size_t)oy * l->out_w + ox;
                y[o] = best;
                if (argmax)
                    argmax[o] = best_i;
            }
    }
}

void pl__maxpool_general_backward(const pl_layer *l, int n, const float *dy, const int32_t *argmax, float *dx)
{
    size_t ip = (size_t)l->in_h * l->in_w, op = (size_t)l->out_h * l->out_w;
    memset(dx, 0, sizeof(float) * (size_t)n * l->in_c * ip);
    for (size_t p = 0; p < (size_t)n * l->in_c; p++)
        for (size_t o = 0; o < op; o++) {
            int32_t a = argmax[p * op + o];
            if (a >= 0 && (size_t)a < ip)
                dx[p * ip + (size_t)a] += dy[p * op + o];
        }
}

/* The divisor of window (oy, ox): kh*kw, or with excl_pad the input
 * elements it holds (0 for none: the window's output is 0). */
static int avg_count(const pl_layer *l, const window *w)
{
    if (!l->excl_pad)
        return l->kh * l->kw;
    return (w->ky1 - w->ky0) * (w->kx1 - w->kx0);
}

void pl__avgpool_general_forward(const pl_layer *l, int n, const float *x, float *y)
{
    size_t ip = (size_t)l->in_h * l->in_w, op = (size_t)l->out_h * l->out_w;
    for (size_t p = 0; p < (size_t)n * l->in_c; p++) {
        const float *xp = x + p * ip;
        for (int oy = 0; oy < l->out_h; oy++)
            for (int ox = 0; ox < l->out_w; ox++) {
                double acc = 0.0;
                window wi = window_at(l, oy, ox);
                for (int ky = wi.ky0; ky < wi.ky1; ky++)
                    for (int kx = wi.kx0; kx < wi.kx1; kx++)
                        acc += xp[window_elem(l, &wi, ky, kx)];
                int cnt = avg_count(l, &wi);
                y[p * op + (size_t)oy * l->out_w + ox] = cnt ? (float)(acc / cnt) : 0.0f;
            }
    }
}

void pl__avgpool_general_backward(const pl_layer *l, int n, const float *dy, float *dx)
{
    size_t ip = (size_t)l->in_h * l->in_w, op = (size_t)l->out_h * l->out_w;
    memset(dx, 0, sizeof(float) * (size_t)n * l->in_c * ip);
    for (size_t p = 0; p < (size_t)n * l->in_c; p++) {
        float *dxp = dx + p * ip;
        for (int oy = 0; oy < l->out_h; oy++)
            for (int ox = 0; ox < l->out_w; ox++) {
                window wi = window_at(l, oy, ox);
                int cnt = avg_count(l, &wi);
                if (!cnt)
                    continue;
                float g = (float)((double)dy[p * op + (size_t)oy * l->out_w + ox] / cnt);
                for (int ky = wi.ky0; ky < wi.ky1; ky++)
                    for (int kx = wi.kx0; kx < wi.kx1; kx++)
                        dxp[window_elem(l, &wi, ky, kx)] += g;
            }
    }
}
