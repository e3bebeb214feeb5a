/*
 * Merging removed units into their twins (merge.h; the criterion ABI 1.5
 * merge slot): the folded consumer weights of a tiny layer against values
 * computed by hand; exact duplicates merged then removed leave the logits
 * unchanged (linear and conv -> pool -> flatten -> linear), while removing
 * them alone changes them; a batchnorm on the path means no merge; through
 * the pruner with the lsh criterion (merge: true vs false), and a plugin
 * built for ABI 1.4 (tests/fixtures/plugins/old_merge.c) only removes.
 */
#include "merge.h"
#include "model.h"
#include "pltest.h"
#include "prune.h"
#include "registry.h"
#include "surgery.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *MLP =
    "name: mlp\n"
    "input: [1, 1, 3]\n"
    "classes: 2\n"
    "layers:\n"
    "  - {type: flatten}\n"
    "  - {name: fc1, type: linear, out: 4}\n"
    "  - {type: relu}\n"
    "  - {name: fc2, type: linear, out: 2}\n";

static void bind(pl_model *m, int batch)
{
    pl_error err;
    pltest_bind_ref(m);
    cr_assert_eq(pl_model_reserve(m, batch, &err), PL_OK, "%s", err.msg);
}

/* fc1 (4 x 3): unit 1 = 2 x unit 0, unit 3 = 0.5 x unit 2 (weights and bias) */
static pl_model *mlp(void)
{
    pl_model *m = pltest_model(MLP, 1);
    pl_layer *f1 = &m->layers[pl_model_find(m, "fc1")], *f2 = &m->layers[pl_model_find(m, "fc2")];
    const float w1[12] = {1, -2, 0.5f, 2, -4, 1, -1, 3, 2, -0.5f, 1.5f, 1};
    const float b1[4] = {0.25f, 0.5f, 1, 0.5f};
    const float w2[8] = {1, 2, 3, 4, -1, 0.5f, 2, -3};
    memcpy(f1->w, w1, sizeof w1);
    memcpy(f1->b, b1, sizeof b1);
    memcpy(f2->w, w2, sizeof w2);
    f2->b[0] = 0.1f, f2->b[1] = -0.2f;
    return m;
}

/* mlp()'s fold: units 1 and 3 go, into their twins 0 (x 2) and 2 (x 0.5) */
static const uint8_t mlp_drop[4] = {0, 1, 0, 1};
static const int64_t mlp_twin[4] = {-1, 0, -1, 2};
static const double mlp_coef[4] = {0, 2, 0, 0.5};

Test(merge, folded_weights_by_hand)
{
    pl_model *m = mlp();
    int l1 = pl_model_find(m, "fc1"), l2 = pl_model_find(m, "fc2");
    cr_expect_eq(pl_merge_consumer(m, l1), l2);
    const uint8_t *drop = mlp_drop;
    const int64_t *twin = mlp_twin;
    const double *coef = mlp_coef;
    int64_t n = -1;
    pl_error err;
    cr_assert_eq(pl_merge_fold(m, l1, drop, twin, coef, &n, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(n, 2);
    /* row 0: (1, 2, 3, 4) -> (1 + 2*2, 0, 3 + 0.5*4, 0); row 1: (-1, .5, 2, -3) -> (-1 + 1, 0, 2 - 1.5, 0) */
    const float want[8] = {5, 0, 5, 0, 0, 0, 0.5f, 0};
    for (int i = 0; i < 8; i++)
        cr_expect_eq(m->layers[l2].w[i], want[i], "fc2 w[%d] = %g, want %g", i, m->layers[l2].w[i], want[i]);
    cr_expect(m->layers[l2].b[0] == 0.1f && m->layers[l2].b[1] == -0.2f, "biases untouched");
    /* a twin that is dropped too, or a negative / non-finite factor: nothing */
    pl_model *m2 = mlp();
    uint8_t both[4] = {1, 1, 0, 0};
    double bad[4] = {0, 2, 0, 0};
    cr_assert_eq(pl_merge_fold(m2, l1, both, twin, bad, &n, &err), PL_OK);
    cr_expect_eq(n, 0);
    uint8_t one[4] = {0, 1, 0, 0};
    bad[1] = -1;
    cr_assert_eq(pl_merge_fold(m2, l1, one, twin, bad, &n, &err), PL_OK);
    bad[1] = NAN;
    cr_assert_eq(pl_merge_fold(m2, l1, one, twin, bad, &n, &err), PL_OK);
    cr_expect_eq(n, 0);
    int64_t far[4] = {-1, 9, -1, -1};
    cr_expect_eq(pl_merge_fold(m2, l1, one, far, coef, &n, &err), PL_EINVAL);
    cr_expect(strstr(err.msg, "twin 9"), "%s", err.msg);
    pl_model_free(m);
    pl_model_free(m2);
}

/* max |logit difference| of a and b on a few inputs */
static double logit_gap(pl_model *a, pl_model *b, int n, int size)
{
    float *x = malloc((size_t)(n * size) * sizeof(float));
    for (int i = 0; i < n * size; i++)
        x[i] = (float)sin(1.7 * i + 0.3) * 2.0f;
    bind(a, n);
    bind(b, n);
    pl_error err;
    const float *za = pl_model_infer(a, x, n, &err);
    cr_assert(za, "%s", err.msg);
    float *keep = malloc((size_t)(n * a->classes) * sizeof(float));
    memcpy(keep, za, (size_t)(n * a->classes) * sizeof(float));
    const float *zb = pl_model_infer(b, x, n, &err);
    cr_assert(zb, "%s", err.msg);
    double gap = 0;
    for (int i = 0; i < n * a->classes; i++)
        gap = fmax(gap, fabs((double)keep[i] - zb[i]));
    free(keep);
    free(x);
    return gap;
}

static pl_model *cut(pl_model *m, const char *layer, const uint8_t *drop, int units, int merge,
                     const int64_t *twin, const double *coef)
{
    pl_model *c;
    pl_error err;
    cr_assert_eq(pl_model_clone(m, &c, &err), PL_OK);
    int li = pl_model_find(c, layer);
    int64_t n;
    if (merge)
        cr_assert_eq(pl_merge_fold(c, li, drop, twin, coef, &n, &err), PL_OK, "%s", err.msg);
    uint8_t keep[16];
    for (int u = 0; u < units; u++)
        keep[u] = !drop[u];
    cr_assert_eq(pl_model_remove_units(c, li, keep, &err), PL_OK, "%s", err.msg);
    return c;
}

Test(merge, exact_duplicates_merged_keep_the_logits)
{
    pl_model *m = mlp();
    pl_model *merged = cut(m, "fc1", mlp_drop, 4, 1, mlp_twin, mlp_coef),
             *removed = cut(m, "fc1", mlp_drop, 4, 0, mlp_twin, mlp_coef);
    cr_expect_eq(merged->layers[pl_model_find(merged, "fc1")].out_c, 2);
    double gm = logit_gap(m, merged, 8, 3), gr = logit_gap(m, removed, 8, 3);
    cr_expect_lt(gm, 1e-5, "merged: logits moved by %g", gm);
    cr_expect_gt(gr, 1e-2, "removing alone should change the logits (%g)", gr);
    pl_model_free(m);
    pl_model_free(merged);
    pl_model_free(removed);
}

static const char *CNN =
    "name: cnn\n"
    "input: [2, 4, 4]\n"
    "classes: 3\n"
    "layers:\n"
    "  - {name: conv1, type: conv2d, out: 3, kernel: 3, padding: 1}\n"
    "  - {type: relu}\n"
    "  - {type: maxpool2d, kernel: 2}\n"
    "  - {name: conv2, type: conv2d, out: 4, kernel: 1}\n"
    "  - {type: relu}\n"
    "  - {type: flatten}\n"
    "  - {name: fc, type: linear, out: 3}\n";

Test(merge, conv_duplicates_through_pool_and_flatten)
{
    pl_model *m = pltest_model(CNN, 4);
    pl_layer *c1 = &m->layers[pl_model_find(m, "conv1")], *c2 = &m->layers[pl_model_find(m, "conv2")];
    int64_t us = c1->nw / 3;
    for (int64_t i = 0; i < us; i++) /* filter 2 = 3 x filter 0 */
        c1->w[2 * us + i] = 3 * c1->w[i];
    c1->b[2] = 3 * c1->b[0];
    int64_t u2 = c2->nw / 4;
    for (int64_t i = 0; i < u2; i++) /* conv2 filter 1 = 0.5 x filter 3 (read through flatten by fc) */
        c2->w[1 * u2 + i] = 0.5f * c2->w[3 * u2 + i];
    c2->b[1] = 0.5f * c2->b[3];
    uint8_t d1[3] = {0, 0, 1}, d2[4] = {0, 1, 0, 0};
    int64_t t1[3] = {-1, -1, 0}, t2[4] = {-1, 3, -1, -1};
    double k1[3] = {0, 0, 3}, k2[4] = {0, 0.5, 0, 0};
    pl_model *a = cut(m, "conv1", d1, 3, 1, t1, k1), *b = cut(m, "conv1", d1, 3, 0, t1, k1);
    double ga = logit_gap(m, a, 6, 32), gb = logit_gap(m, b, 6, 32);
    cr_expect_lt(ga, 1e-4, "conv -> conv merge moved the logits by %g", ga);
    cr_expect_gt(gb, 1e-3, "conv removal alone: %g", gb);
    pl_model *c = cut(m, "conv2", d2, 4, 1, t2, k2), *d = cut(m, "conv2", d2, 4, 0, t2, k2);
    double gc = logit_gap(m, c, 6, 32), gd = logit_gap(m, d, 6, 32);
    cr_expect_lt(gc, 1e-4, "conv -> flatten -> linear merge moved the logits by %g", gc);
    cr_expect_gt(gd, 1e-3, "removal alone: %g", gd);
    pl_model_free(m);
    pl_model_free(a);
    pl_model_free(b);
    pl_model_free(c);
    pl_model_free(d);
}

Test(merge, no_merge_through_batchnorm)
{
    pl_model *m = pltest_model("name: bn\ninput: [1, 4, 4]\nclasses: 2\nlayers:\n"
                               "  - {name: conv1, type: conv2d, out: 3, kernel: 3}\n"
                               "  - {type: batchnorm2d}\n  - {type: relu}\n  - {type: flatten}\n"
                               "  - {name: fc, type: linear, out: 2}\n", 1);
    cr_expect_eq(pl_merge_consumer(m, pl_model_find(m, "conv1")), -1);
    cr_expect_eq(pl_merge_consumer(m, pl_model_find(m, "fc")), -1, "the output layer has no consumer");
    pl_model_free(m);
}

/* ---- through the pruner, with the lsh criterion ------------------------------------ */

/* fc1 of 6 units: 3 pairs of exact duplicates (unit 2p+1 = 1.5 x unit 2p) */
static pl_model *dup_mlp(void)
{
    pl_model *m = pltest_model("name: dup\ninput: [1, 1, 5]\nclasses: 3\nlayers:\n  - {type: flatten}\n"
                               "  - {name: fc1, type: linear, out: 6}\n  - {type: relu}\n"
                               "  - {name: fc2, type: linear, out: 3}\n", 2);
    pl_layer *f = &m->layers[pl_model_find(m, "fc1")];
    for (int p = 0; p < 3; p++) {
        for (int i = 0; i < 5; i++)
            f->w[(2 * p + 1) * 5 + i] = 1.5f * f->w[2 * p * 5 + i];
        f->b[2 * p + 1] = 1.5f * f->b[2 * p];
    }
    return m;
}

/* A pruner of `m` at neuron granularity, sparsity 0.5, one shot, scored by
 * `criterion` with the parameter `kv` ("key=value" or NULL). */
typedef struct half_pruner {
    pl_instance *crit, *sched;
    pl_prune_cfg cfg;
    pl_pruner p;
} half_pruner;

static void half_pruner_open(half_pruner *h, pl_model *m, const char *criterion, const char *kv)
{
    const char *params[] = {kv, NULL};
    pl_error err;
    h->crit = pltest_instance(PL_KIND_CRITERION, criterion, params, 1, 1);
    h->sched = pltest_instance(PL_KIND_SCHEDULE, "oneshot", NULL, 1, 1);
    h->cfg = (pl_prune_cfg){.enabled = 1, .granularity = PL_GRAN_NEURON, .has_sparsity = 1, .sparsity = 0.5};
    cr_assert_eq(pl_pruner_init(&h->p, m, &h->cfg, h->crit, h->sched, &err), PL_OK, "%s", err.msg);
}

static void half_pruner_close(half_pruner *h)
{
    pl_pruner_free(&h->p);
    pl_instance_free(h->crit);
    pl_instance_free(h->sched);
}

static double prune_with(pl_model *m, const char *merge, int64_t *merged)
{
    pl_model *c;
    pl_error err;
    cr_assert_eq(pl_model_clone(m, &c, &err), PL_OK);
    half_pruner h;
    half_pruner_open(&h, c, "lsh", merge);
    cr_assert_eq(pl_pruner_step(&h.p, 0, NULL, 64, 1, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(c->layers[pl_model_find(c, "fc1")].out_c, 3);
    int n = 0;
    const int *kept = pl_pruner_kept(&h.p, pl_model_find(c, "fc1"), &n);
    cr_assert(kept && n == 3);
    for (int k = 0; k < 3; k++) /* the stronger of each pair stays */
        cr_expect_eq(kept[k], 2 * k + 1, "kept %d", kept[k]);
    *merged = h.p.merged;
    double gap = logit_gap(m, c, 8, 5);
    half_pruner_close(&h);
    pl_model_free(c);
    return gap;
}

Test(merge, lsh_merge_through_the_pruner)
{
    pl_model *m = dup_mlp();
    int64_t nm = -1, nr = -1;
    double gm = prune_with(m, "merge=true", &nm), gr = prune_with(m, "merge=false", &nr);
    cr_expect_eq(nm, 3, "three duplicates folded");
    cr_expect_eq(nr, 0);
    cr_expect_lt(gm, 1e-5, "lsh with merge: logits moved by %g", gm);
    cr_expect_gt(gr, 1e-2, "lsh without merge should change the logits (%g)", gr);
    pl_model_free(m);
}

Test(merge, a_plugin_built_for_abi_1_4_only_removes)
{
    /* its reserved slot holds a function that fails: never called */
    pl_model *m = dup_mlp();
    half_pruner h;
    pl_error err;
    half_pruner_open(&h, m, "old_merge", NULL);
    cr_expect_eq(pl_pruner_step(&h.p, 0, NULL, 64, 1, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(h.p.merged, 0);
    cr_expect_eq(m->layers[pl_model_find(m, "fc1")].out_c, 3);
    half_pruner_close(&h);
    pl_model_free(m);
}

/* ---- the view merge() gets is the one score() got (pl__unit_view) -------------------- */

Test(merge, the_view_of_a_grouped_conv_matches_its_weights)
{
    pl_model *m = pltest_model("name: g\ninput: [4, 6, 6]\nclasses: 2\nlayers:\n"
                               "  - {name: c1, type: conv2d, out: 6, kernel: 3, groups: 2}\n"
                               "  - {name: dw, type: conv2d, out: 6, kernel: 3, groups: 6}\n"
                               "  - {type: flatten}\n  - {name: fc, type: linear, out: 2}\n", 1);
    pl_pruner p;
    memset(&p, 0, sizeof p);
    p.m = m;
    p.gran = PL_GRAN_CHANNEL;
    const char *names[] = {"c1", "dw"};
    const int64_t per_group[] = {2, 1};
    for (int i = 0; i < 2; i++) {
        int li = pl_model_find(m, names[i]);
        const pl_layer *l = &m->layers[li];
        pl_act_stats as;
        pl_unit_view v;
        pl__unit_view(&p, li, NULL, NULL, &as, &v);
        cr_expect_eq(v.shape[1], per_group[i], "%s: shape[1] %lld", names[i], (long long)v.shape[1]);
        cr_expect_eq(v.units, l->out_c);
        cr_expect_eq(v.shape[0] * v.shape[1] * v.shape[2] * v.shape[3], v.units * v.unit_size,
                     "%s: the shape covers the weights", names[i]);
        cr_expect_eq(v.weight, l->w);
        cr_expect_eq(v.bias, l->b);
    }
    pl_model_free(m);
}

/* all or nothing: pl__pruner_merge records the consumer's weights, and
 * pl__merge_undo_end(restore) puts them back bit for bit (prune.c does it
 * when the surgery after the fold fails) */
Test(merge, a_failed_surgery_gets_the_consumer_weights_back)
{
    pl_model *m = dup_mlp();
    half_pruner h;
    pl_error err;
    half_pruner_open(&h, m, "lsh", "merge=true");
    pl_pruner *p = &h.p;
    int fc1 = pl_model_find(m, "fc1");
    pl_layer *f2 = &m->layers[pl_model_find(m, "fc2")];
    float *w0 = malloc((size_t)f2->nw * sizeof *w0);
    uint8_t **drop = calloc((size_t)p->n, sizeof *drop);
    cr_assert(w0 && drop);
    memcpy(w0, f2->w, (size_t)f2->nw * sizeof *w0);
    int found = 0;
    for (int k = 0; k < p->n; k++) {
        const pl_group *g = &p->G.g[p->t[k].group];
        cr_assert(drop[k] = calloc((size_t)g->units, 1));
        if (g->e[0].layer == fc1)
            for (int u = 0; u < g->units; u++)
                found += drop[k][u] = g->e[u].chan % 2 == 0; /* the weaker of each pair */
    }
    cr_assert_eq(found, 3);
    pl_merge_undo undo;
    cr_assert_eq(pl__pruner_merge(p, drop, NULL, NULL, NULL, &undo, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(p->merged, 3);
    cr_expect(memcmp(w0, f2->w, (size_t)f2->nw * sizeof *w0), "the fold changed fc2");
    pl__merge_undo_end(m, &undo, 1);
    cr_expect(!memcmp(w0, f2->w, (size_t)f2->nw * sizeof *w0), "fc2 is back as it was");
    cr_expect_eq(undo.n, 0);
    for (int k = 0; k < p->n; k++)
        free(drop[k]);
    free(drop);
    free(w0);
    half_pruner_close(&h);
    pl_model_free(m);
}
