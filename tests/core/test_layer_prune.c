/*
 * Layer pruning (granularity `layer`, layer_prune.c): vgg_mini's removable
 * blocks are conv2 and conv4 (with their batchnorm and ReLU); removing one
 * leaves a model that runs forward with the right output shape and whose
 * params/MACs equal a hand count; a square linear layer is removable too;
 * the ranking takes the lowest score normalised by the layer's weight
 * count; a model without a removable layer (simple_cnn) and a count above
 * the candidates are PL_ECONFIG; the whole run reports the removal
 * (records, layers, checkpoint) on synthetic data.
 */
#include "checkpoint.h"
#include "config.h"
#include "model.h"
#include "pltest.h"
#include "prune.h"
#include "result.h"
#include "rng.h"
#include "run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_IMG 3

/* vgg_mini by hand (configs/models/vgg_mini.yaml):
 * conv1 32*1*9+32 = 320, bn1 64, conv2 32*32*9+32 = 9,248, bn2 64,
 * conv3 64*32*9+64 = 18,496, bn3 128, conv4 64*64*9+64 = 36,928, bn4 128,
 * fc1 3136*128+128 = 401,536, fc2 128*10+10 = 1,290  -> 468,202 params.
 * MACs 18,691,840; conv2 (28x28) and conv4 (14x14) each 7,225,344. */
#define VGG_PARAMS 468202
#define VGG_MACS 18691840LL
#define CONV2_BLOCK_PARAMS (9248 + 64)
#define CONV4_BLOCK_PARAMS (36928 + 128)
#define SAME_CONV_MACS 7225344LL

/* Forward of N_IMG random images: the output is [N_IMG][classes] and finite. */
static void check_forward(pl_model *m)
{
    pl_error err;
    pltest_bind_ref(m);
    cr_assert_eq(pl_model_reserve(m, N_IMG, &err), PL_OK, "%s", err.msg);
    int64_t n = (int64_t)m->in_c * m->in_h * m->in_w * N_IMG;
    float *x = malloc((size_t)n * sizeof(float));
    pl_rng r;
    pl_rng_seed(&r, 1, "layer-prune-input");
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)pl_rng_normal(&r);
    const float *y = pl_model_forward(m, x, N_IMG, PL_MODE_EVAL, &err);
    cr_assert(y, "%s", err.msg);
    const pl_layer *last = &m->layers[m->n_layers - 1];
    cr_expect_eq(last->out_c * last->out_h * last->out_w, 10);
    for (int i = 0; i < N_IMG * m->classes; i++)
        cr_expect(isfinite(y[i]), "logit %d is %g", i, y[i]);
    free(x);
}

Test(layer_prune, vgg_mini_has_two_same_width_blocks)
{
    pl_model *m = pltest_model_file("configs/models/vgg_mini.yaml", 1);
    int head[8], len[8];
    cr_assert_eq(pl_layer_blocks(m, head, len, 8), 2);
    cr_expect_str_eq(m->layers[head[0]].name, "conv2");
    cr_expect_str_eq(m->layers[head[1]].name, "conv4");
    cr_expect_eq(len[0], 3, "conv2, bn2, relu");
    cr_expect_eq(len[1], 3, "conv4, bn4, relu");
    pl_counts c;
    pl_model_count(m, &c);
    cr_expect_eq(c.params, VGG_PARAMS);
    cr_expect_eq(c.macs, VGG_MACS);
    pl_model_free(m);
}

Test(layer_prune, removing_a_block_keeps_a_working_model_and_counts_by_hand)
{
    const char *heads[2] = {"conv2", "conv4"};
    int64_t params[2] = {VGG_PARAMS - CONV2_BLOCK_PARAMS, VGG_PARAMS - CONV4_BLOCK_PARAMS};
    for (int k = 0; k < 2; k++) {
        pl_model *m = pltest_model_file("configs/models/vgg_mini.yaml", 1);
        pl_model *orig;
        pl_error err;
        cr_assert_eq(pl_model_clone(m, &orig, &err), PL_OK);
        int h = pl_model_find(m, heads[k]), n0 = m->n_layers;
        cr_assert_eq(pl_model_remove_layers(m, h, 3, &err), PL_OK, "%s", err.msg);
        cr_expect_eq(m->n_layers, n0 - 3);
        cr_expect_lt(pl_model_find(m, heads[k]), 0);
        pl_counts c;
        pl_model_count(m, &c);
        cr_expect_eq(c.params, params[k], "%s: %lld params, hand count %lld", heads[k], (long long)c.params,
                     (long long)params[k]);
        cr_expect_eq(c.macs, VGG_MACS - SAME_CONV_MACS, "%s: %lld MACs", heads[k], (long long)c.macs);
        /* every other layer keeps its weights exactly */
        for (int i = 0; i < m->n_layers; i++) {
            const pl_layer *l = &m->layers[i];
            const pl_layer *o = &orig->layers[pl_model_find(orig, l->name)];
            cr_expect_eq(l->nw, o->nw);
            if (l->nw)
                cr_expect_eq(memcmp(l->w, o->w, (size_t)l->nw * sizeof(float)), 0, "%s", l->name);
        }
        check_forward(m);
        pl_model_free(orig);
        pl_model_free(m);
    }
}

Test(layer_prune, a_span_with_different_shapes_or_the_output_layer_is_refused)
{
    pl_model *m = pltest_model_file("configs/models/vgg_mini.yaml", 1);
    pl_error err;
    cr_expect_eq(pl_model_remove_layers(m, pl_model_find(m, "conv3"), 3, &err), PL_EINVAL);
    cr_expect(strstr(err.msg, "shapes match"), "%s", err.msg);
    cr_expect_eq(pl_model_remove_layers(m, pl_model_find(m, "fc2"), 1, &err), PL_EINVAL);
    cr_expect(strstr(err.msg, "output layer"), "%s", err.msg);
    pl_model_free(m);
}

static const char *SQUARE_YAML =
    "name: square\n"
    "input: [1, 4, 4]\n"
    "classes: 10\n"
    "layers:\n"
    "  - {type: flatten}\n"
    "  - {name: fc1, type: linear, out: 16}\n"
    "  - {type: relu}\n"
    "  - {name: fc2, type: linear, out: 16}\n"
    "  - {type: relu}\n"
    "  - {type: dropout, p: 0.5}\n"
    "  - {name: fc3, type: linear, out: 10}\n";

Test(layer_prune, square_linear_layers_are_removable)
{
    pl_model *m = pltest_model(SQUARE_YAML, 2);
    int head[8], len[8];
    cr_assert_eq(pl_layer_blocks(m, head, len, 8), 2);
    cr_expect_str_eq(m->layers[head[0]].name, "fc1");
    cr_expect_eq(len[0], 2);
    cr_expect_str_eq(m->layers[head[1]].name, "fc2");
    cr_expect_eq(len[1], 3, "fc2, relu, dropout");
    pl_error err;
    cr_assert_eq(pl_model_remove_layers(m, head[1], len[1], &err), PL_OK, "%s", err.msg);
    pl_counts c;
    pl_model_count(m, &c);
    cr_expect_eq(c.params, (16 * 16 + 16) + (16 * 10 + 10));
    check_forward(m);
    pl_model_free(m);
}

/* ---- the pruner ------------------------------------------------------------------ */

static pl_status init_pruner(pl_pruner *p, pl_model *m, pl_prune_cfg *cfg, const char *crit, pl_error *err)
{
    static pl_instance *c[2], *sched;
    int k = !strcmp(crit, "l2");
    if (!c[k])
        c[k] = pltest_instance(PL_KIND_CRITERION, crit, NULL, 1, 1);
    if (!sched)
        sched = pltest_instance(PL_KIND_SCHEDULE, "oneshot", NULL, 1, 1);
    return pl_pruner_init(p, m, cfg, c[k], sched, err);
}

static void fill(pl_model *m, const char *name, float v)
{
    pl_layer *l = &m->layers[pl_model_find(m, name)];
    for (int64_t i = 0; i < l->nw; i++)
        l->w[i] = (i % 2) ? v : -v;
}

Test(layer_prune, ranking_removes_the_lowest_score_per_weight)
{
    /* conv4 has 4x the weights of conv2: a raw L1 sum would favour keeping
     * it (1843 vs 922), the per-weight score removes it (0.05 vs 0.1) */
    pl_prune_cfg cfg = {.enabled = 1, .granularity = PL_GRAN_LAYER, .count = 1};
    struct { float v2, v4; const char *gone, *kept; } c[] = {{0.1f, 0.05f, "conv4", "conv2"},
                                                          {0.01f, 0.05f, "conv2", "conv4"}};
    for (int k = 0; k < 2; k++) {
        pl_model *m = pltest_model_file("configs/models/vgg_mini.yaml", 1);
        fill(m, "conv2", c[k].v2);
        fill(m, "conv4", c[k].v4);
        pl_pruner p;
        pl_error err;
        cr_assert_eq(init_pruner(&p, m, &cfg, "l1", &err), PL_OK, "%s", err.msg);
        cr_expect_eq(p.n, 2);
        cr_expect_eq(p.layer_goal, 1);
        cr_assert_eq(pl_pruner_step(&p, 0, NULL, 64, 1, &err), PL_OK, "%s", err.msg);
        cr_expect_lt(pl_model_find(m, c[k].gone), 0, "%s should be gone", c[k].gone);
        cr_expect_geq(pl_model_find(m, c[k].kept), 0, "%s should stay", c[k].kept);
        double t, a;
        pl_pruner_sparsity(&p, &t, &a);
        cr_expect(fabs(t - 0.5) < 1e-12 && fabs(a - 0.5) < 1e-12, "target %g achieved %g", t, a);
        cr_expect_eq(pl_pruner_check(&p, &err), PL_OK, "%s", err.msg);
        check_forward(m);
        pl_pruner_free(&p);
        pl_model_free(m);
    }
}

Test(layer_prune, sparsity_include_and_l2_at_layer_granularity)
{
    pl_model *m = pltest_model_file("configs/models/vgg_mini.yaml", 1);
    char *only[] = {"conv2"};
    pl_prune_cfg cfg = {.enabled = 1, .granularity = PL_GRAN_LAYER, .count = -1, .has_sparsity = 1,
                        .sparsity = 0.9, .include = only, .n_include = 1};
    pl_pruner p;
    pl_error err;
    cr_assert_eq(init_pruner(&p, m, &cfg, "l2", &err), PL_OK, "%s", err.msg);
    cr_expect_eq(p.n, 1);
    cr_expect_eq(p.layer_goal, 1);
    cr_assert_eq(pl_pruner_step(&p, 0, NULL, 64, 1, &err), PL_OK, "%s", err.msg);
    cr_expect_lt(pl_model_find(m, "conv2"), 0);
    cr_expect_geq(pl_model_find(m, "conv4"), 0);
    pl_pruner_free(&p);
    pl_model_free(m);
}

Test(layer_prune, no_removable_layer_is_a_clear_config_error)
{
    pl_model *m = pltest_model_file("configs/models/simple_cnn.yaml", 1);
    pl_prune_cfg cfg = {.enabled = 1, .granularity = PL_GRAN_LAYER, .count = 1};
    pl_pruner p;
    pl_error err;
    cr_expect_eq(init_pruner(&p, m, &cfg, "l1", &err), PL_ECONFIG);
    cr_expect(strstr(err.msg, "model simple_cnn has no removable layer"), "%s", err.msg);
    pl_pruner_free(&p);
    pl_model_free(m);

    m = pltest_model_file("configs/models/vgg_mini.yaml", 1);
    cfg.count = 3;
    cr_expect_eq(init_pruner(&p, m, &cfg, "l1", &err), PL_ECONFIG);
    cr_expect(strstr(err.msg, "only 2 removable layer(s) (conv2, conv4)"), "%s", err.msg);
    pl_pruner_free(&p);
    pl_model_free(m);
}

/* ---- configuration and a whole run --------------------------------------------------- */

static pl_status load_text(const char *text, pl_config **cfg, pl_error *err)
{
    char *path = pltest_write_temp(text, ".yaml");
    pl_status s = pl_config_load(path, NULL, 0, cfg, err);
    unlink(path);
    free(path);
    return s;
}

Test(layer_prune_config, count_and_layers_rules)
{
    pl_config *cfg;
    pl_error err;
    cr_expect_eq(load_text("name: a\nmodel: m.yaml\nprune: {granularity: channel, count: 1}\n", &cfg, &err),
                 PL_ECONFIG);
    cr_expect(strstr(err.msg, ":3:") && strstr(err.msg, "needs granularity: layer"), "%s", err.msg);
    cr_expect_eq(load_text("name: a\nmodel: m.yaml\nprune: {granularity: layer, layers: {conv2: {count: 1}}}\n",
                           &cfg, &err),
                 PL_ECONFIG);
    cr_expect(strstr(err.msg, "prune.layers does not apply to granularity layer"), "%s", err.msg);
    cr_expect_eq(load_text("name: a\nmodel: m.yaml\nprune: {granularity: layer, count: 0}\n", &cfg, &err),
                 PL_ECONFIG);
    cr_expect(strstr(err.msg, "prune.count must be >= 1"), "%s", err.msg);
    cr_expect_eq(load_text("name: a\nmodel: m.yaml\nprune: {granularity: layer}\n", &cfg, &err), PL_ECONFIG);
    cr_expect(strstr(err.msg, "needs 'count'"), "%s", err.msg);
    cr_assert_eq(load_text("name: a\nmodel: m.yaml\nprune: {granularity: layer, count: 1}\n", &cfg, &err), PL_OK,
                 "%s", err.msg);
    pl_experiment *x;
    cr_assert_eq(pl_config_expand(cfg, 0, &x, &err), PL_OK);
    cr_expect_eq(x->prune.count, 1);
    char *d = pl_experiment_dump(x);
    cr_expect(strstr(d, "prune.granularity: layer\n") && strstr(d, "prune.count: 1\n"), "%s", d);
    free(d);
    pl_experiment_free(x);
    pl_config_free(cfg);
}

Test(layer_prune_run, whole_run_reports_the_removed_block)
{
    const char *yaml =
        "name: layers\n"
        "seed: 2\n"
        "model: configs/models/vgg_mini.yaml\n"
        "dataset: {plugin: synthetic, train_count: 96, test_count: 64, noise: 1.0}\n"
        "backend: simd\n"
        "train: {epochs: 1, batch_size: 32, regularize: {type: group_lasso, coef: 1e-3}}\n"
        "prune: {criterion: l1, granularity: layer, count: 1}\n"
        "retrain: {epochs: 1, batch_size: 32}\n"
        "report: {latency_runs: 1, plots: false}\n";
    char *path = pltest_write_temp(yaml, ".yaml");
    char *dir = pltest_tmpdir();
    pl_config *cfg;
    pl_error err;
    cr_assert_eq(pl_config_load(path, NULL, 0, &cfg, &err), PL_OK, "%s", err.msg);
    FILE *devnull = fopen("/dev/null", "w");
    pl_run_opts o = {.threads = 1, .out_dir = dir, .progress = PL_PROGRESS_NONE, .quiet = 1, .out = devnull};
    cr_assert_eq(pl_run_config(pltest_registry(), cfg, &o, &err), PL_OK, "%s", err.msg);
    fclose(devnull);
    pl_config_free(cfg);
    pl_run_result *runs;
    size_t n;
    cr_assert_eq(pl_records_load(dir, &runs, &n, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(n, 1);
    const pl_run_result *r = &runs[0];
    cr_expect_str_eq(r->status, "ok", "%s", r->message);
    cr_expect_str_eq(r->granularity, "layer");
    cr_expect_eq(r->params_before, VGG_PARAMS);
    cr_expect(r->params_after == VGG_PARAMS - CONV2_BLOCK_PARAMS || r->params_after == VGG_PARAMS - CONV4_BLOCK_PARAMS,
              "params after %lld", (long long)r->params_after);
    cr_expect_eq(r->macs_after_physical, VGG_MACS - SAME_CONV_MACS);
    cr_expect(fabs(r->target_sparsity - 0.5) < 1e-12 && fabs(r->achieved_sparsity - 0.5) < 1e-12);
    cr_expect(r->latency_ms_after > 0);
    int removed = 0;
    for (size_t i = 0; i < r->n_layers; i++)
        if (!strcmp(r->layers[i].shape_after, "removed")) {
            removed++;
            cr_expect_eq(r->layers[i].params_after, 0);
            cr_expect_eq(r->layers[i].sparsity, 1.0);
        }
    cr_expect_eq(removed, 3, "conv, batchnorm and relu of one block");
    /* the final checkpoint holds the shorter model */
    char ck[4200];
    snprintf(ck, sizeof ck, "%s/models/%s.ckpt", dir, r->run_id);
    pl_model *m;
    cr_assert_eq(pl_checkpoint_load(ck, &m, NULL, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(m->n_layers, 15);
    pl_model_free(m);
    /* and the norm distribution is reported */
    snprintf(ck, sizeof ck, "%s/norms.csv", dir);
    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(pl__read_file(ck, &text, &len, &err), PL_OK, "%s", err.msg);
    cr_expect(!strncmp(text, "run_id,stage,layer,", 19));
    cr_expect(strstr(text, ",baseline,conv2,conv2d,32,9216,") && strstr(text, "group_lasso:0.001"), "%s", text);
    free(text);
    for (size_t i = 0; i < n; i++)
        pl_run_result_free(&runs[i]);
    free(runs);
    unlink(path);
    free(path);
    free(dir);
}
