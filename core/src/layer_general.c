/* layer_general.c — host kernels for asymmetric padding, dilation and
 * count_include_pad=0 (rules in layer_general.h). */
#include "layer_general.h"

#include <string.h>

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
    int dh = pl_layer_dil(l->dil_h), dw = pl_layer_dil(l->dil_w);
    size_t ip = (size_t)l->in_h * l->in_w, op = (size_t)l->out_h * l->out_w;
    for (int i = 0; i < n; i++)
        for (int co = 0; co < l->out_c; co++) {
            int g = co / co_g;
            const float *wc = w + (size_t)co * ci_g * l->kh * l->kw;
            float *yp = y + ((size_t)i * l->out_c + co) * op;
            for (int oy = 0; oy < l->out_h; oy++)
                for (int ox = 0; ox < l->out_w; ox++) {
                    double acc = b ? (double)b[co] : 0.0;
                    for (int c = 0; c < ci_g; c++) {
                        const float *xp = x + ((size_t)i * l->in_c + (size_t)g * ci_g + c) * ip;
                        const float *wk = wc + (size_t)c * l->kh * l->kw;
                        for (int ky = 0; ky < l->kh; ky++) {
                            int iy = oy * l->sh - l->ph + ky * dh;
                            if (iy < 0 || iy >= l->in_h)
                                continue;
                            for (int kx = 0; kx < l->kw; kx++) {
                                int ix = ox * l->sw - l->pw + kx * dw;
                                if (ix >= 0 && ix < l->in_w)
                                    acc += (double)wk[ky * l->kw + kx] * xp[(size_t)iy * l->in_w + ix];
                            }
                        }
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
                    double acc = 0.0;
                    for (int i = 0; i < n; i++) {
                        const float *xp = x + ((size_t)i * l->in_c + (size_t)g * ci_g + c) * ip;
                        const float *dyp = dy + ((size_t)i * l->out_c + co) * op;
                        for (int oy = 0; oy < l->out_h; oy++) {
                            int iy = oy * l->sh - l->ph + ky * dh;
                            if (iy < 0 || iy >= l->in_h)
                                continue;
                            for (int ox = 0; ox < l->out_w; ox++) {
                                int ix = ox * l->sw - l->pw + kx * dw;
                                if (ix >= 0 && ix < l->in_w)
                                    acc += (double)dyp[(size_t)oy * l->out_w + ox] * xp[(size_t)iy * l->in_w + ix];
                            }
                        }
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
    int dh = pl_layer_dil(l->dil_h), dw = pl_layer_dil(l->dil_w);
    size_t ip = (size_t)l->in_h * l->in_w, op = (size_t)l->out_h * l->out_w;
    for (size_t p = 0; p < (size_t)n * l->in_c; p++) {
        const float *xp = x + p * ip;
        for (int oy = 0; oy < l->out_h; oy++)
            for (int ox = 0; ox < l->out_w; ox++) {
                int found = 0, best_i = -1;
                float best = 0.0f;
                for (int ky = 0; ky < l->kh; ky++) {
                    int iy = oy * l->sh - l->ph + ky * dh;
                    if (iy < 0 || iy >= l->in_h)
                        continue;
                    for (int kx = 0; kx < l->kw; kx++) {
                        int ix = ox * l->sw - l->pw + kx * dw;
                        if (ix < 0 || ix >= l->in_w)
                            continue;
                        float v = xp[(size_t)iy * l->in_w + ix];
                        if (!found || v > best) {
                            best = v;
                            best_i = iy * l->in_w + ix;
                            found = 1;
                        }
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
static int avg_count(const pl_layer *l, int oy, int ox)
{
    if (!l->excl_pad)
        return l->kh * l->kw;
    int dh = pl_layer_dil(l->dil_h), dw = pl_layer_dil(l->dil_w), ny = 0, nx = 0;
    for (int ky = 0; ky < l->kh; ky++) {
        int iy = oy * l->sh - l->ph + ky * dh;
        ny += iy >= 0 && iy < l->in_h;
    }
    for (int kx = 0; kx < l->kw; kx++) {
        int ix = ox * l->sw - l->pw + kx * dw;
        nx += ix >= 0 && ix < l->in_w;
    }
    return ny * nx;
}

void pl__avgpool_general_forward(const pl_layer *l, int n, const float *x, float *y)
{
    int dh = pl_layer_dil(l->dil_h), dw = pl_layer_dil(l->dil_w);
    size_t ip = (size_t)l->in_h * l->in_w, op = (size_t)l->out_h * l->out_w;
    for (size_t p = 0; p < (size_t)n * l->in_c; p++) {
        const float *xp = x + p * ip;
        for (int oy = 0; oy < l->out_h; oy++)
            for (int ox = 0; ox < l->out_w; ox++) {
                double acc = 0.0;
                for (int ky = 0; ky < l->kh; ky++) {
                    int iy = oy * l->sh - l->ph + ky * dh;
                    if (iy < 0 || iy >= l->in_h)
                        continue;
                    for (int kx = 0; kx < l->kw; kx++) {
                        int ix = ox * l->sw - l->pw + kx * dw;
                        if (ix >= 0 && ix < l->in_w)
                            acc += xp[(size_t)iy * l->in_w + ix];
                    }
                }
                int cnt = avg_count(l, oy, ox);
                y[p * op + (size_t)oy * l->out_w + ox] = cnt ? (float)(acc / cnt) : 0.0f;
            }
    }
}

void pl__avgpool_general_backward(const pl_layer *l, int n, const float *dy, float *dx)
{
    int dh = pl_layer_dil(l->dil_h), dw = pl_layer_dil(l->dil_w);
    size_t ip = (size_t)l->in_h * l->in_w, op = (size_t)l->out_h * l->out_w;
    memset(dx, 0, sizeof(float) * (size_t)n * l->in_c * ip);
    for (size_t p = 0; p < (size_t)n * l->in_c; p++) {
        float *dxp = dx + p * ip;
        for (int oy = 0; oy < l->out_h; oy++)
            for (int ox = 0; ox < l->out_w; ox++) {
                int cnt = avg_count(l, oy, ox);
                if (!cnt)
                    continue;
                float g = (float)((double)dy[p * op + (size_t)oy * l->out_w + ox] / cnt);
                for (int ky = 0; ky < l->kh; ky++) {
                    int iy = oy * l->sh - l->ph + ky * dh;
                    if (iy < 0 || iy >= l->in_h)
                        continue;
                    for (int kx = 0; kx < l->kw; kx++) {
                        int ix = ox * l->sw - l->pw + kx * dw;
                        if (ix >= 0 && ix < l->in_w)
                            dxp[(size_t)iy * l->in_w + ix] += g;
                    }
                }
            }
    }
}
