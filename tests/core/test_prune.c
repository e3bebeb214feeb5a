/*
 * The pruner's selection rules (prune.c) on hand-made weights: the global
 * ranking's three normalisations (mean, LAMP, none) pick the weights a
 * hand computation picks, and differ from each other where they should.
 *
 * The model: 4 inputs -> fc1 (3x4 = 12 weights) -> fc2 (2x3 = 6) -> fc3
 * (output, never pruned). l1 at weight granularity scores |w|; fc1's
 * weights are ±0.1, ±0.2, ..., ±1.2 and fc2's 3, 3.5, 4, 4.5, 5, 20, so
 * fc2's are all larger in raw terms. Sparsity 0.5 removes 9 of the 18
 * weights in all:
 *   none  the 9 smallest raw scores: fc1 loses 9, fc2 none;
 *   mean  fc1 i/6.5 (.154 .308 .462 .615 ...) vs fc2 s/6.667 (.45 .525 .6
 *         .675 .75 3): fc1 loses 4, fc2 5;
 *   lamp  s²/Σ of the s² ranked at or above: fc1 i²/Σ_{j>=i} j² = 1.5e-3,
 *         6.2e-3, 1.40e-2, 2.52e-2, 4.03e-2, ...; fc2 9/482.5 = 1.87e-2,
 *         12.25/473.5 = 2.59e-2, 3.47e-2, 4.55e-2, 5.88e-2, 1: fc1 loses
 *         5, fc2 4. (Without the squares, fc1 would lose 6: the test tells
 *         LAMP from its unsquared variant.)
 */
#include "model.h"
#include "prune.h"
#include "pltest.h"

#include <string.h>

static const char *const MODEL = "name: tiny\n"
                                 "input: [1, 1, 4]\n"
                                 "classes: 2\n"
                                 "layers:\n"
                                 "  - {type: flatten}\n"
                                 "  - {name: fc1, type: linear, out: 3}\n"
                                 "  - {type: relu}\n"
                                 "  - {name: fc2, type: linear, out: 2}\n"
                                 "  - {type: relu}\n"
                                 "  - {name: fc3, type: linear, out: 2}\n";

/* Prunes the tiny model globally with `normalize` and returns how many of
 * fc1's and fc2's weights were masked; each masked set must be the
 * smallest weights of its layer (all scores are distinct). */
static void prune_global(const char *normalize, int *lost1, int *lost2)
{
    pl_model *m = pltest_model(MODEL, 1);
    int f1 = pl_model_find(m, "fc1"), f2 = pl_model_find(m, "fc2");
    cr_assert(f1 >= 0 && f2 >= 0);
    for (int i = 0; i < 12; i++)
        m->layers[f1].w[i] = (float)(i + 1) * 0.1f * (i % 2 ? -1.0f : 1.0f); /* sign must not matter */
    for (int k = 0; k < 6; k++)
        m->layers[f2].w[k] = (const float[]){3, 3.5f, 4, 4.5f, 5, 20}[k];
    char nkv[64];
    snprintf(nkv, sizeof nkv, "normalize=%s", normalize);
    const char *const skv[] = {nkv, NULL};
    pl_instance *crit = pltest_instance(PL_KIND_CRITERION, "l1", NULL, 1, 1);
    pl_instance *sched = pltest_instance(PL_KIND_SCHEDULE, "global", skv, 1, 1);
    pl_prune_cfg cfg = {.enabled = 1, .granularity = PL_GRAN_WEIGHT, .has_sparsity = 1, .sparsity = 0.5};
    pl_pruner p;
    pl_error err;
    cr_assert_eq(pl_pruner_init(&p, m, &cfg, crit, sched, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(pl_pruner_step(&p, 0, NULL, 64, 1, &err), PL_OK, "%s", err.msg);
    int lost[2] = {0, 0};
    const int li[2] = {f1, f2}, n[2] = {12, 6};
    for (int t = 0; t < 2; t++) {
        const float *mask = m->layers[li[t]].mask;
        cr_assert(mask, "weight pruning keeps a mask");
        for (int i = 0; i < n[t]; i++)
            lost[t] += mask[i] == 0.0f;
        for (int i = 0; i < n[t]; i++)
            cr_assert_eq(mask[i] == 0.0f, i < lost[t], "%s: layer %d weight %d: the smallest go first", normalize,
                         t, i);
    }
    double target, achieved;
    pl_pruner_sparsity(&p, &target, &achieved);
    cr_assert_float_eq(achieved, 0.5, 1e-12);
    *lost1 = lost[0];
    *lost2 = lost[1];
    pl_pruner_free(&p);
    pl_instance_free(crit);
    pl_instance_free(sched);
    pl_model_free(m);
}

TestSuite(prune);

Test(prune, global_none_ranks_raw_scores)
{
    int a, b;
    prune_global("none", &a, &b);
    cr_assert_eq(a, 9);
    cr_assert_eq(b, 0);
}

Test(prune, global_mean_divides_by_the_layer_mean)
{
    int a, b;
    prune_global("mean", &a, &b);
    cr_assert_eq(a, 4);
    cr_assert_eq(b, 5);
}

Test(prune, global_lamp_follows_lee_et_al)
{
    int a, b;
    prune_global("lamp", &a, &b);
    cr_assert_eq(a, 5);
    cr_assert_eq(b, 4);
}

/* Pruning groups: two linear layers feeding one add are one group of 3
 * neurons; l1 scores fa's rows 1, 2, 10 and fb's 5, 4, 0.5. mean (and sum)
 * combine them to 3, 3, 5.25: neuron 0 goes (tie to the lower index); max
 * to 5, 4, 10: neuron 1 goes. Both layers lose the same neuron, and the
 * add's reader loses its column. */
static void prune_group(pl_group_reduction red, int gone)
{
    pl_model *m = pltest_model("name: gr\ninput: [1, 1, 2]\nclasses: 2\nlayers:\n"
                               "  - {name: fl, type: flatten}\n"
                               "  - {name: fa, type: linear, out: 3}\n"
                               "  - {name: fb, type: linear, out: 3, inputs: [fl]}\n"
                               "  - {name: s, type: add, inputs: [fa, fb]}\n"
                               "  - {type: relu}\n"
                               "  - {name: fc, type: linear, out: 2}\n",
                               1);
    int fa = pl_model_find(m, "fa"), fb = pl_model_find(m, "fb"), fc = pl_model_find(m, "fc");
    const float va[3] = {1, 2, 10}, vb[3] = {5, 4, 0.5f};
    for (int u = 0; u < 3; u++) {
        m->layers[fa].w[u * 2] = va[u];
        m->layers[fa].w[u * 2 + 1] = 0;
        m->layers[fb].w[u * 2] = -vb[u];
        m->layers[fb].w[u * 2 + 1] = 0;
    }
    pl_instance *crit = pltest_instance(PL_KIND_CRITERION, "l1", NULL, 1, 1);
    pl_instance *sched = pltest_instance(PL_KIND_SCHEDULE, "oneshot", NULL, 1, 1);
    pl_prune_cfg cfg = {.enabled = 1, .granularity = PL_GRAN_NEURON, .has_sparsity = 1, .sparsity = 0.34,
                        .group_reduction = red};
    pl_pruner p;
    pl_error err;
    cr_assert_eq(pl_pruner_init(&p, m, &cfg, crit, sched, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(p.n, 1, "one group: fa and fb together (fc is the output)");
    cr_assert_eq(p.t[0].units, 3);
    cr_assert_eq(p.t[0].remove, 1);
    cr_assert_eq(pl_pruner_step(&p, 0, NULL, 64, 1, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(m->layers[fa].out_c, 2);
    cr_assert_eq(m->layers[fb].out_c, 2);
    cr_assert_eq(m->layers[fc].in_c, 2);
    int n = 0;
    const int *kept = pl_pruner_kept(&p, fa, &n);
    cr_assert(kept && n == 2);
    for (int k = 0, u = 0; u < 3; u++)
        if (u != gone) {
            cr_expect_eq(kept[k], u, "reduction %d: fa keeps neuron %d", red, u);
            cr_expect_eq(m->layers[fa].w[k * 2], va[u]);
            cr_expect_eq(m->layers[fb].w[k * 2], -vb[u]);
            k++;
        }
    const int *kb = pl_pruner_kept(&p, fb, &n);
    cr_assert(kb && n == 2 && kb[0] == kept[0] && kb[1] == kept[1]);
    pl_pruner_free(&p);
    pl_instance_free(crit);
    pl_instance_free(sched);
    pl_model_free(m);
}

Test(prune, group_reduction_mean_sum_max)
{
    prune_group(PL_GROUP_MEAN, 0);
    prune_group(PL_GROUP_SUM, 0);
    prune_group(PL_GROUP_MAX, 1);
}

/* prune.layers names a group through any member; a layer tied to the
 * output is refused with the reason. */
Test(prune, group_named_by_any_member)
{
    pl_model *m = pltest_model("name: gr\ninput: [1, 1, 2]\nclasses: 2\nlayers:\n"
                               "  - {name: fl, type: flatten}\n"
                               "  - {name: fa, type: linear, out: 3}\n"
                               "  - {name: fb, type: linear, out: 3, inputs: [fl]}\n"
                               "  - {name: s, type: add, inputs: [fa, fb]}\n"
                               "  - {type: relu}\n"
                               "  - {name: fc, type: linear, out: 2}\n"
                               "  - {name: fd, type: linear, out: 2, inputs: [s]}\n"
                               "  - {name: o, type: add, inputs: [fc, fd]}\n",
                               1);
    pl_instance *crit = pltest_instance(PL_KIND_CRITERION, "l1", NULL, 1, 1);
    pl_instance *sched = pltest_instance(PL_KIND_SCHEDULE, "oneshot", NULL, 1, 1);
    pl_layer_target lt = {.layer = "fb", .fraction = -1, .count = 2, .file = "x.yaml", .line = 3, .col = 5};
    pl_prune_cfg cfg = {.enabled = 1, .granularity = PL_GRAN_NEURON, .layers = &lt, .n_layers = 1};
    pl_pruner p;
    pl_error err;
    cr_assert_eq(pl_pruner_init(&p, m, &cfg, crit, sched, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(p.n, 1);
    cr_expect_eq(p.t[0].remove, 2);
    cr_assert_eq(pl_pruner_step(&p, 0, NULL, 64, 1, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(m->layers[pl_model_find(m, "fa")].out_c, 1);
    cr_expect_eq(m->layers[pl_model_find(m, "fb")].out_c, 1);
    pl_pruner_free(&p);
    lt.layer = "fc"; /* fc is added to fd, the output layer: its outputs are the classes */
    cr_assert_eq(pl_pruner_init(&p, m, &cfg, crit, sched, &err), PL_ECONFIG);
    cr_expect(strstr(err.msg, "x.yaml:3:5") && strstr(err.msg, "outputs"), "%s", err.msg);
    pl_pruner_free(&p);
    pl_instance_free(crit);
    pl_instance_free(sched);
    pl_model_free(m);
}
