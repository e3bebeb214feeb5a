/* plugin_check_criterion.c — plugin-check rows for criterion plugins (what is
 * checked: plugin_check.h). */
#include "plugin_check_kinds.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ck_layer {
    char desc[64];
    char name[16];
    pl_unit_view v;
    float *w, *b, *mask, *g[2];
    float *gamma;                 /* PL_NEEDS_BATCHNORM */
    double *amean, *asq, *azero;  /* PL_NEEDS_ACTIVATIONS */
    pl_act_stats act;
} ck_layer;

static void ck_layer_free(ck_layer *L)
{
    free(L->w);
    free(L->b);
    free(L->mask);
    free(L->g[0]);
    free(L->g[1]);
    free(L->gamma);
    free(L->amean);
    free(L->asq);
    free(L->azero);
    memset(L, 0, sizeof *L);
}

/* flags for ck_layer_make */
enum { CK_ZERO = 1, CK_MASKED = 2 };

/* Would the host ever ask a criterion with these needs to score a layer
 * at granularity g? (PL_NEEDS_BATCHNORM: channels and neurons only.) */
static int ck_applies(unsigned needs, pl_granularity g)
{
    return !(needs & PL_NEEDS_BATCHNORM) || g != PL_GRAN_WEIGHT;
}

/* A layer of weight shape s (conv [cout,cin,kh,kw], linear [out,in,1,1]),
 * scored at granularity g, with random (or all-zero) weights and what the
 * criterion's needs ask for: 2 synthetic gradient batches, activation
 * statistics (an all-zero layer's units are always zero), batchnorm
 * scales. */
static int ck_layer_make(ck_layer *L, pl_layer_type type, pl_granularity g, const int64_t s[4],
                         int flags, unsigned needs)
{
    const int n_grads = (needs & PL_NEEDS_GRAD) ? 2 : 0;
    static const char *const gname[] = {"", "weight", "channel", "neuron", "layer"};
    memset(L, 0, sizeof *L);
    const int64_t n = s[0] * s[1] * s[2] * s[3];
    snprintf(L->name, sizeof L->name, "%s", type == PL_LAYER_CONV2D ? "conv1" : "fc1");
    if (type == PL_LAYER_CONV2D)
        snprintf(L->desc, sizeof L->desc, "conv %lldx%lldx%lldx%lld %s", (long long)s[0],
                 (long long)s[1], (long long)s[2], (long long)s[3], gname[g]);
    else
        snprintf(L->desc, sizeof L->desc, "linear %lldx%lld %s", (long long)s[0], (long long)s[1],
                 gname[g]);
    L->w = pl__ck_randn(n, L->desc, 0.1f);
    L->b = pl__ck_randn(s[0], "bias", 0.1f);
    if (!L->w || !L->b)
        return 0;
    if (flags & CK_ZERO)
        memset(L->w, 0, (size_t)n * sizeof *L->w);
    if (flags & CK_MASKED) {
        if (!(L->mask = malloc((size_t)n * sizeof *L->mask)))
            return 0;
        for (int64_t i = 0; i < n; i++) {
            L->mask[i] = i % 3 == 1 ? 0.0f : 1.0f;
            if (L->mask[i] == 0.0f)
                L->w[i] = 0.0f; /* the host keeps masked weights at zero */
        }
    }
    for (int k = 0; k < n_grads; k++)
        if (!(L->g[k] = pl__ck_randn(n, k ? "grad1" : "grad0", 0.01f)))
            return 0;
    if (needs & PL_NEEDS_ACTIVATIONS) {
        float *u = pl__ck_randn(s[0], "activations", 1.0f);
        L->amean = malloc((size_t)s[0] * sizeof *L->amean);
        L->asq = malloc((size_t)s[0] * sizeof *L->asq);
        L->azero = malloc((size_t)s[0] * sizeof *L->azero);
        if (!u || !L->amean || !L->asq || !L->azero) {
            free(u);
            return 0;
        }
        for (int64_t i = 0; i < s[0]; i++) {
            double z = (flags & CK_ZERO) ? 1.0 : 0.5 + 0.45 * tanh((double)u[i]);
            L->amean[i] = (1.0 - z) * fabs((double)u[i]);
            L->asq[i] = L->amean[i] * L->amean[i] * 1.5;
            L->azero[i] = z;
        }
        free(u);
        L->act = (pl_act_stats){.units = s[0], .samples = 1024, .mean = L->amean, .sq = L->asq,
                                .zero = L->azero};
    }
    if ((needs & PL_NEEDS_BATCHNORM) && !(L->gamma = pl__ck_randn(s[0], "gamma", 1.0f)))
        return 0;
    L->v = (pl_unit_view){.layer = L->name, .layer_index = type == PL_LAYER_CONV2D ? 0 : 2,
                          .layer_type = type, .granularity = g,
                          .units = g == PL_GRAN_WEIGHT ? n : s[0],
                          .unit_size = g == PL_GRAN_WEIGHT ? 1 : n / s[0],
                          .weight = L->w, .bias = g == PL_GRAN_WEIGHT ? NULL : L->b,
                          .mask = L->mask, .n_grads = n_grads,
                          .grads = n_grads ? (const float *const *)L->g : NULL,
                          .shape = {s[0], s[1], s[2], s[3]},
                          .act = (needs & PL_NEEDS_ACTIVATIONS) ? &L->act : NULL,
                          .bn_gamma = L->gamma};
    return 1;
}

/* Scores L once through a guarded output. Returns 1 when every rule held
 * (scores copied to out if non-NULL, time to *ms if non-NULL), else 0 with
 * the broken rules in why. */
static int ck_score(pl_instance *in, const ck_layer *L, double *out, double *ms, char *why,
                    size_t wn)
{
    const pl_criterion_ops *ops = pl_instance_ops(in);
    const pl_unit_view *v = &L->v;
    const int64_t U = v->units, n = U * v->unit_size;
    double *sc = pl__ck_dguard_new(U);
    float *w0 = malloc((size_t)n * sizeof *w0);
    if (!sc || !w0) {
        pl__ck_dguard_free(sc);
        free(w0);
        pl__ck_why(why, wn, "%s: out of memory in plugin-check", L->desc);
        return 0;
    }
    memcpy(w0, v->weight, (size_t)n * sizeof *w0);
    int64_t n_out = -1;
    const double t0 = pl__ck_now_ms();
    pl_status st = ops->score(pl_instance_state(in), v, sc, &n_out);
    const double t1 = pl__ck_now_ms();
    size_t len0 = strlen(why);
    if (st != PL_OK) {
        pl__ck_why(why, wn, "%s: score() returned %d (%s)", L->desc, (int)st, pl__ck_plugin_error(in, st));
    } else {
        int before = 0, after = 0;
        int64_t first_after = -1;
        for (int i = 0; i < CK_GUARD; i++) {
            before += !pl__ck_dis_sentinel(&sc[-CK_GUARD + i]);
            if (!pl__ck_dis_sentinel(&sc[U + i])) {
                after++;
                if (first_after < 0)
                    first_after = U + i;
            }
        }
        if (n_out != U)
            pl__ck_why(why, wn, "%s: *n_out = %lld, expected %lld", L->desc, (long long)n_out,
                   (long long)U);
        if (before)
            pl__ck_why(why, wn, "%s: wrote %d value(s) before the start of its output", L->desc, before);
        if (after)
            pl__ck_why(why, wn, "%s: wrote %d value(s) past the end of its output (first: scores[%lld] of %lld)",
                   L->desc, after, (long long)first_after, (long long)U);
        int64_t unwritten = 0, nonfinite = 0, first_u = -1, first_nf = -1;
        for (int64_t u = 0; u < U; u++) {
            if (pl__ck_dis_sentinel(&sc[u])) {
                if (!unwritten++)
                    first_u = u;
            } else if (!isfinite(sc[u])) {
                if (!nonfinite++)
                    first_nf = u;
            }
        }
        if (unwritten)
            pl__ck_why(why, wn, "%s: %lld score(s) not written (first: unit %lld)", L->desc,
                   (long long)unwritten, (long long)first_u);
        if (nonfinite)
            pl__ck_why(why, wn, "%s: %lld non-finite score(s) (first: unit %lld = %g)", L->desc,
                   (long long)nonfinite, (long long)first_nf, sc[first_nf]);
        if (memcmp(w0, v->weight, (size_t)n * sizeof *w0))
            pl__ck_why(why, wn, "%s: modified its input weights", L->desc);
    }
    int ok = strlen(why) == len0;
    if (ok && out)
        memcpy(out, sc, (size_t)U * sizeof *out);
    if (ms)
        *ms = t1 - t0;
    pl__ck_dguard_free(sc);
    free(w0);
    return ok;
}

#define CK_N_STD 4

/* What the rows of one criterion check share: the instance under test, the
 * four standard layers (conv channel, linear neuron, conv weight, linear
 * weight), their first scores and whether they scored cleanly. */
typedef struct ck_crit {
    pl__ck *c;
    pl_instance *a;
    unsigned needs;    /* the criterion's PL_NEEDS_* */
    ck_layer std[CK_N_STD];
    double *ref[CK_N_STD];
    int std_ok[CK_N_STD];
} ck_crit;

static const int64_t ck_conv[4] = {32, 16, 3, 3}, ck_lin[4] = {64, 128, 1, 1};

/* Row "score <layer>": one standard layer scored into a guarded output. */
static void ck_crit_standard(ck_crit *k, int i)
{
    char name[48], why[960] = "";
    snprintf(name, sizeof name, "score %s", k->std[i].desc);
    pl__ck_begin(k->c, name);
    if (!ck_applies(k->needs, k->std[i].v.granularity)) {
        pl__ck_row(k->c, CK_SKIP, name, "the host never asks a PL_NEEDS_BATCHNORM criterion for single weights");
        return;
    }
    k->std_ok[i] = ck_score(k->a, &k->std[i], k->ref[i], NULL, why, sizeof why);
    if (k->std_ok[i])
        pl__ck_row(k->c, CK_PASS, name, "%lld scores, all finite, guards intact, input untouched%s",
                   (long long)k->std[i].v.units,
                   (k->needs & PL_NEEDS_GRAD) ? " (2 synthetic gradient batches)"
                   : (k->needs & PL_NEEDS_ACTIVATIONS) ? " (synthetic activation statistics)"
                   : (k->needs & PL_NEEDS_BATCHNORM) ? " (synthetic batchnorm scales)" : "");
    else
        pl__ck_row(k->c, CK_FAIL, name, "%s", why);
}

/* Row "masked weights": a third of the weights masked (and zero). */
static void ck_crit_masked(ck_crit *k)
{
    char why[960] = "";
    ck_layer extra[2];
    memset(extra, 0, sizeof extra);
    pl__ck_begin(k->c, "masked weights");
    int ok = ck_layer_make(&extra[0], PL_LAYER_CONV2D, PL_GRAN_CHANNEL, ck_conv, CK_MASKED, k->needs) &&
             ck_layer_make(&extra[1], PL_LAYER_LINEAR, PL_GRAN_WEIGHT, ck_lin, CK_MASKED, k->needs);
    if (!ok)
        pl__ck_why(why, sizeof why, "plugin-check ran out of memory");
    else {
        ck_score(k->a, &extra[0], NULL, NULL, why, sizeof why);
        if (ck_applies(k->needs, PL_GRAN_WEIGHT))
            ck_score(k->a, &extra[1], NULL, NULL, why, sizeof why);
    }
    if (why[0])
        pl__ck_row(k->c, CK_FAIL, "masked weights", "%s", why);
    else
        pl__ck_row(k->c, CK_PASS, "masked weights",
                   "a third of the weights masked (conv channel, linear weight): counts right, all finite");
    ck_layer_free(&extra[0]);
    ck_layer_free(&extra[1]);
}

/* Row "deterministic": the same instance twice, then a second instance
 * with the same seed, bit for bit against the first scores. */
static void ck_crit_deterministic(ck_crit *k)
{
    char why[960] = "", ewhy[1024] = "";
    pl__ck_begin(k->c, "deterministic");
    pl_instance *b = pl__ck_instance(k->c, 1, ewhy, sizeof ewhy);
    int compared = 0;
    if (!b)
        pl__ck_why(why, sizeof why, "a second instance failed: %s", ewhy);
    for (int i = 0; b && i < CK_N_STD && !why[0]; i++) {
        if (!k->std_ok[i])
            continue;
        compared++;
        double *cmp = malloc((size_t)k->std[i].v.units * sizeof(double));
        if (!cmp) {
            pl__ck_why(why, sizeof why, "plugin-check ran out of memory");
            break;
        }
        for (int pass = 0; pass < 2 && !why[0]; pass++) {
            char swhy[960] = "";
            if (!ck_score(pass ? b : k->a, &k->std[i], cmp, NULL, swhy, sizeof swhy))
                pl__ck_why(why, sizeof why, "%s", swhy);
            else
                for (int64_t u = 0; u < k->std[i].v.units; u++)
                    if (memcmp(&cmp[u], &k->ref[i][u], sizeof cmp[u])) {
                        pl__ck_why(why, sizeof why, "%s: unit %lld scored %.17g, then %.17g %s",
                                   k->std[i].desc, (long long)u, k->ref[i][u], cmp[u],
                                   pass ? "by a second instance with the same seed"
                                        : "when the same instance scored it again");
                        break;
                    }
        }
        free(cmp);
    }
    pl_instance_free(b);
    if (why[0])
        pl__ck_row(k->c, CK_FAIL, "deterministic", "%s", why);
    else if (!compared)
        pl__ck_row(k->c, CK_SKIP, "deterministic", "no standard layer scored cleanly");
    else
        pl__ck_row(k->c, CK_PASS, "deterministic",
                   "bit-identical when scored twice and by a second instance with seed %d (%d layers)", CK_SEED,
                   compared);
}

/* Rows "all-zero weights" (one_unit 0) and "one unit" (one_unit 1):
 * degenerate layers neither fail nor give NaN. */
static void ck_crit_degenerate(ck_crit *k, int one_unit)
{
    static const int64_t conv1[4] = {1, 16, 3, 3}, lin1[4] = {1, 128, 1, 1}, one[4] = {1, 1, 1, 1};
    const char *name = one_unit ? "one unit" : "all-zero weights";
    char why[960] = "";
    ck_layer extra[3];
    memset(extra, 0, sizeof extra);
    pl__ck_begin(k->c, name);
    int ok = one_unit ? ck_layer_make(&extra[0], PL_LAYER_CONV2D, PL_GRAN_CHANNEL, conv1, 0, k->needs) &&
                            ck_layer_make(&extra[1], PL_LAYER_LINEAR, PL_GRAN_NEURON, lin1, 0, k->needs) &&
                            ck_layer_make(&extra[2], PL_LAYER_LINEAR, PL_GRAN_WEIGHT, one, 0, k->needs)
                      : ck_layer_make(&extra[0], PL_LAYER_CONV2D, PL_GRAN_CHANNEL, ck_conv, CK_ZERO, k->needs) &&
                            ck_layer_make(&extra[1], PL_LAYER_LINEAR, PL_GRAN_NEURON, ck_lin, CK_ZERO, k->needs) &&
                            ck_layer_make(&extra[2], PL_LAYER_LINEAR, PL_GRAN_WEIGHT, ck_lin, CK_ZERO, k->needs);
    if (!ok)
        pl__ck_why(why, sizeof why, "plugin-check ran out of memory");
    else
        for (int i = 0; i < 3; i++)
            if (ck_applies(k->needs, extra[i].v.granularity))
                ck_score(k->a, &extra[i], NULL, NULL, why, sizeof why);
    if (why[0])
        pl__ck_row(k->c, CK_FAIL, name, "%s", why);
    else
        pl__ck_row(k->c, CK_PASS, name, "%s, %s, %s: no error, all finite", extra[0].desc, extra[1].desc,
                   extra[2].desc);
    for (int i = 0; i < 3; i++)
        ck_layer_free(&extra[i]);
}

/* One merge pass of instance `in` over the channel and neuron layers, as
 * the host calls it: score() on the view, then merge() on the same view.
 * With dupl, on copies of them whose second half of units is twice the
 * first half (weights and bias), so a criterion has twins to find.
 * Every twin is -1 or another unit with a finite factor >= 0 (a twin may
 * have a twin of its own: the host folds u only into a kept twin and does
 * not follow chains, plugin.h), the weights are left alone. Counts twins. */
static void ck_merge_pass(ck_crit *k, pl_instance *in, const char *how, int dupl, int64_t *twins, char *why,
                          size_t wn)
{
    const pl_criterion_ops *ops = pl_instance_ops(in);
    for (int i = 0; i < 2 && !why[0]; i++) {
        const ck_layer *L = &k->std[i];
        ck_layer dup; /* the layer with its second half of units = 2 x the first half: twins to find */
        float *dw = NULL, *db = NULL;
        if (dupl) {
            int64_t h = L->v.units / 2, us = L->v.unit_size;
            dw = malloc((size_t)(L->v.units * us) * sizeof *dw);
            db = L->v.bias ? malloc((size_t)L->v.units * sizeof *db) : NULL;
            if (!dw || (L->v.bias && !db)) {
                free(dw), free(db);
                pl__ck_why(why, wn, "plugin-check ran out of memory");
                break;
            }
            for (int64_t u = 0; u < L->v.units; u++) {
                int64_t src = u < h ? u : u - h;
                float f = u < h ? 1.0f : 2.0f;
                for (int64_t j = 0; j < us; j++)
                    dw[u * us + j] = f * L->v.weight[src * us + j];
                if (db)
                    db[u] = f * L->v.bias[src];
            }
            dup = *L;
            dup.v.weight = dw;
            dup.v.bias = db;
            L = &dup;
        }
        int64_t U = L->v.units, *twin = malloc((size_t)U * sizeof *twin);
        double *coef = malloc((size_t)U * sizeof *coef), *sc = malloc((size_t)U * sizeof *sc);
        float *w0 = malloc((size_t)(U * L->v.unit_size) * sizeof *w0);
        if (!twin || !coef || !sc || !w0) {
            pl__ck_why(why, wn, "plugin-check ran out of memory");
        } else if (ck_score(in, L, sc, NULL, why, wn)) {
            memcpy(w0, L->v.weight, (size_t)(U * L->v.unit_size) * sizeof *w0);
            for (int64_t u = 0; u < U; u++)
                twin[u] = -1, coef[u] = 0;
            pl_status st = ops->merge(pl_instance_state(in), &L->v, twin, coef);
            if (st)
                pl__ck_why(why, wn, "%s (%s): merge returned %s: %s", L->desc, how, pl_status_str(st),
                           pl_instance_take_error(in));
            for (int64_t u = 0; u < U && !st && !why[0]; u++) {
                int64_t t = twin[u];
                if (t == -1)
                    continue;
                if (t < 0 || t >= U || t == u || !isfinite(coef[u]) || coef[u] < 0)
                    pl__ck_why(why, wn, "%s (%s): unit %lld has twin %lld (factor %g); a twin must be another "
                               "unit, the factor finite and >= 0",
                               L->desc, how, (long long)u, (long long)t, coef[u]);
                ++*twins;
            }
            if (!why[0] && memcmp(w0, L->v.weight, (size_t)(U * L->v.unit_size) * sizeof *w0))
                pl__ck_why(why, wn, "%s (%s): merge wrote to the weights it was given", L->desc, how);
        }
        free(twin);
        free(coef);
        free(sc);
        free(w0);
        free(dw);
        free(db);
    }
}

/* Row "merge" (optional slot, PL_ABI_MINOR_MERGE): one pass with the
 * defaults; a plugin with a bool parameter `merge` that defaults to off
 * (lsh) gets passes with merge=true, on the layers and on copies with
 * duplicated units, so twins are produced and checked. If no pass names a twin, the row says merging was not
 * exercised. */
static void ck_crit_merge(ck_crit *k)
{
    const pl_plugin_desc *d = pl_plugin_get_desc(k->c->plugin);
    const pl_criterion_ops *ops = d->ops;
    pl__ck_begin(k->c, "merge");
    if (d->abi_minor < PL_ABI_MINOR_MERGE || !ops->merge) {
        pl__ck_row(k->c, CK_SKIP, "merge", "no merge slot (the host only removes units)");
        return;
    }
    char why[960] = "";
    int64_t twins = 0, twins_on = -1;
    ck_merge_pass(k, k->a, "defaults", 0, &twins, why, sizeof why);
    int has_switch = 0;
    for (const pl_param_spec *s = d->params; s && s->name; s++)
        has_switch |= s->type == PL_PARAM_BOOL && !strcmp(s->name, "merge") && s->def && strcmp(s->def, "true");
    if (!why[0] && has_switch) {
        static const char *const on[] = {"merge=true", NULL};
        pl_instance *in = NULL;
        pl_error e;
        pl_error_clear(&e);
        if (pl_instance_new_kv(k->c->plugin, on, CK_SEED, 1, &in, &e) != PL_OK) {
            pl__ck_why(why, sizeof why, "init with merge=true failed: %s", e.msg[0] ? e.msg : pl_status_str(e.code));
        } else {
            twins_on = 0;
            ck_merge_pass(k, in, "merge=true", 0, &twins_on, why, sizeof why);
            ck_merge_pass(k, in, "merge=true, duplicated units", 1, &twins_on, why, sizeof why);
        }
        pl_instance_free(in);
    }
    if (why[0])
        pl__ck_row(k->c, CK_FAIL, "merge", "%s", why);
    else if (twins_on >= 0)
        pl__ck_row(k->c, CK_PASS, "merge", "%s, %s: %lld twin(s) with the defaults, %lld with merge=true (duplicated units included)%s",
                   k->std[0].desc, k->std[1].desc, (long long)twins, (long long)twins_on,
                   twins + twins_on ? "; indices and factors valid" : "; no twin, merging not exercised");
    else
        pl__ck_row(k->c, CK_PASS, "merge", "%s, %s: %lld twin(s)%s", k->std[0].desc, k->std[1].desc,
                   (long long)twins,
                   twins ? ", indices and factors valid"
                         : " with the defaults; merging not exercised (plugin-check runs the defaults only)");
}

/* Row "time" (informational): median of 5 on the channel and neuron layers. */
static void ck_crit_time(ck_crit *k)
{
    pl__ck_begin(k->c, "time");
    if (!k->std_ok[0] || !k->std_ok[1]) {
        pl__ck_row(k->c, CK_SKIP, "time", "the standard layers did not score cleanly");
        return;
    }
    double med[2];
    char why[960] = "";
    for (int i = 0; i < 2; i++) {
        double t[5];
        for (int r = 0; r < 5; r++)
            ck_score(k->a, &k->std[i], NULL, &t[r], why, sizeof why);
        qsort(t, 5, sizeof t[0], pl__ck_cmp_double);
        med[i] = t[2];
    }
    if (why[0])
        pl__ck_row(k->c, CK_FAIL, "time", "%s", why);
    else
        pl__ck_row(k->c, CK_PASS, "time", "median of 5: %s %.3f ms, %s %.3f ms", k->std[0].desc, med[0],
                   k->std[1].desc, med[1]);
}

void pl__ck_criterion(pl__ck *c)
{
    const pl_criterion_ops *ops = pl_plugin_get_desc(c->plugin)->ops;
    ck_crit k;
    memset(&k, 0, sizeof k);
    k.c = c;
    k.needs = ops->needs;
    if (!(k.a = pl__ck_params(c, 1))) {
        pl__ck_row(c, CK_SKIP, "criterion checks", "no instance to check");
        return;
    }
    int made = ck_layer_make(&k.std[0], PL_LAYER_CONV2D, PL_GRAN_CHANNEL, ck_conv, 0, k.needs) &
               ck_layer_make(&k.std[1], PL_LAYER_LINEAR, PL_GRAN_NEURON, ck_lin, 0, k.needs) &
               ck_layer_make(&k.std[2], PL_LAYER_CONV2D, PL_GRAN_WEIGHT, ck_conv, 0, k.needs) &
               ck_layer_make(&k.std[3], PL_LAYER_LINEAR, PL_GRAN_WEIGHT, ck_lin, 0, k.needs);
    for (int i = 0; i < CK_N_STD; i++)
        made &= (k.ref[i] = malloc((size_t)k.std[i].v.units * sizeof(double))) != NULL;
    if (!made) {
        pl__ck_row(c, CK_FAIL, "criterion checks", "plugin-check ran out of memory");
    } else {
        for (int i = 0; i < CK_N_STD; i++)
            ck_crit_standard(&k, i);
        ck_crit_masked(&k);
        ck_crit_deterministic(&k);
        ck_crit_degenerate(&k, 0);
        ck_crit_degenerate(&k, 1);
        ck_crit_merge(&k);
        ck_crit_time(&k);
    }
    for (int i = 0; i < CK_N_STD; i++) {
        ck_layer_free(&k.std[i]);
        free(k.ref[i]);
    }
    pl_instance_free(k.a);
}
