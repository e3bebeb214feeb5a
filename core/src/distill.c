/* distill.c — knowledge-distillation loss and gradient (distill.h). */
#include "distill.h"

#include <math.h>
#include <stdlib.h>

/* p[j] = softmax(z/T)[j] and lp[j] = its log, stable: (z[j] - max z)/T
 * is <= 0 and finite for any T > 0 (z/T first would overflow for a tiny T
 * and give inf - inf) */
static void soft(int k, const float *z, double T, double *p, double *lp)
{
    double mx = -INFINITY;
    for (int j = 0; j < k; j++)
        mx = fmax(mx, (double)z[j]);
    double s = 0;
    for (int j = 0; j < k; j++)
        s += exp(((double)z[j] - mx) / T);
    double ls = log(s);
    for (int j = 0; j < k; j++) {
        lp[j] = ((double)z[j] - mx) / T - ls;
        p[j] = exp(lp[j]);
    }
}

/* KL(p_t || p_s) of example i; fills ps, pt */
static double kl_one(int k, const float *zs, const float *zt, double T, double *ps, double *lps, double *pt,
                     double *lpt)
{
    soft(k, zs, T, ps, lps);
    soft(k, zt, T, pt, lpt);
    double kl = 0;
    for (int j = 0; j < k; j++)
        if (pt[j] > 0)
            kl += pt[j] * (lpt[j] - lps[j]);
    return kl;
}

double pl_distill_kl(int n, int k, const float *zs, const float *zt, double temperature)
{
    double *ws = malloc((size_t)(k > 0 ? k : 1) * 4 * sizeof *ws), sum = 0;
    if (!ws)
        return NAN;
    for (int i = 0; i < n; i++)
        sum += kl_one(k, zs + (size_t)i * k, zt + (size_t)i * k, temperature, ws, ws + k, ws + 2 * (size_t)k,
                      ws + 3 * (size_t)k);
    free(ws);
    return sum;
}

/* pl_distill_loss with a workspace of 4k doubles (one row's p/log p of
 * student and teacher), so any class count works */
static void loss_ws(int n, int k, const float *zs, const float *zt, double alpha, double temperature, float scale,
                    float *dl, double *loss, double *ws)
{
    double T = temperature, a = alpha, *ps = ws, *lps = ws + k, *pt = ws + 2 * (size_t)k,
           *lpt = ws + 3 * (size_t)k, soft_sum = 0;
    for (int i = 0; i < n; i++) {
        const float *s = zs + (size_t)i * k, *t = zt + (size_t)i * k;
        float *d = dl + (size_t)i * k;
        soft_sum += kl_one(k, s, t, T, ps, lps, pt, lpt);
        for (int j = 0; j < k; j++) /* a = 0: (1-a)*d + 0*finite is d exactly */
            d[j] = (float)((1.0 - a) * (double)d[j] + a * T * (ps[j] - pt[j]) * (double)scale);
    }
    *loss = (1.0 - a) * *loss + a * T * T * soft_sum;
}

void pl_distill_loss(int n, int k, const float *zs, const float *zt, double alpha, double temperature,
                     float scale, float *dl, double *loss)
{
    double *ws = malloc((size_t)(k > 0 ? k : 1) * 4 * sizeof *ws);
    if (!ws) { /* pl_distill_batch allocates first and reports it */
        *loss = NAN;
        return;
    }
    loss_ws(n, k, zs, zt, alpha, temperature, scale, dl, loss, ws);
    free(ws);
}

pl_status pl_distill_batch(const pl_distill_cfg *cfg, pl_model *teacher, const float *x, int n, int classes,
                           const float *zs, float *dl, float scale, double *loss, pl_error *err)
{
    if (!teacher)
        return pl_error_set(err, PL_ECONFIG, "distill: no teacher model (the dense baseline) was given");
    if (teacher->classes != classes || classes < 1)
        return pl_error_set(err, PL_ECONFIG, "distill: the teacher has %d classes, the student %d",
                            teacher->classes, classes);
    pl_status s = pl_model_reserve(teacher, n, err);
    if (s)
        return s;
    const float *zt = pl_model_infer(teacher, x, n, err);
    if (!zt)
        return err ? err->code : PL_EPLUGIN;
    double *ws = malloc((size_t)classes * 4 * sizeof *ws);
    if (!ws)
        return pl_error_set(err, PL_ENOMEM, "distill: out of memory for %d classes", classes);
    loss_ws(n, classes, zs, zt, cfg->alpha, cfg->temperature, scale, dl, loss, ws);
    free(ws);
    return PL_OK;
}
