/* augment.c — seeded random crop and horizontal flip (augment.h). */
#include "augment.h"
#include "rng.h"

#include <stdio.h>

void pl_augment_image(float *x, int c, int h, int w, int dy, int dx, int flip)
{
    int64_t hw = (int64_t)h * w;
    for (int ch = 0; ch < c; ch++) {
        float *p = x + ch * hw;
        if (dy || dx) {
            /* out[i] reads in[i + dy*w + dx]: walking away from the side
             * being read, every source is read before it is overwritten */
            int64_t off = (int64_t)dy * w + dx;
            for (int64_t k = 0; k < hw; k++) {
                int64_t i = off >= 0 ? k : hw - 1 - k;
                int y = (int)(i / w), xx = (int)(i % w), sy = y + dy, sx = xx + dx;
                p[i] = sy >= 0 && sy < h && sx >= 0 && sx < w ? p[(int64_t)sy * w + sx] : 0.0f;
            }
        }
        if (flip)
            for (int y = 0; y < h; y++)
                for (int a = 0, b = w - 1; a < b; a++, b--) {
                    float t = p[(int64_t)y * w + a];
                    p[(int64_t)y * w + a] = p[(int64_t)y * w + b];
                    p[(int64_t)y * w + b] = t;
                }
    }
}

void pl_augment_batch(const pl_augment_cfg *a, uint64_t seed, const char *phase, int epoch, int64_t first,
                      float *x, int n, int c, int h, int w)
{
    if (!a || (a->crop_pad <= 0 && !a->hflip))
        return;
    char stream[128];
    snprintf(stream, sizeof stream, "augment:%s:%d:%lld", phase, epoch, (long long)first);
    pl_rng r;
    pl_rng_seed(&r, seed, stream);
    int p = a->crop_pad > 0 ? a->crop_pad : 0;
    for (int i = 0; i < n; i++) {
        int dy = (int)pl_rng_below(&r, (uint64_t)(2 * p + 1)) - p;
        int dx = (int)pl_rng_below(&r, (uint64_t)(2 * p + 1)) - p;
        int flip = (int)pl_rng_below(&r, 2) && a->hflip; /* always three draws an image */
        pl_augment_image(x + (int64_t)i * c * h * w, c, h, w, dy, dx, flip);
    }
}
