/*
 * The whole loop on `synthetic` data (no download): every criterion ×
 * schedule on the SimpleCNN and LeNet-5 at channel sparsity 0.5 and weight
 * sparsity 0.9 reaches its target within one unit per layer; masked weights
 * are exactly zero after retraining and fine-tuning; seeded runs are
 * reproducible bit for bit across runs and thread counts; a small network
 * learns the synthetic problem.
 */
#include "checkpoint.h"
#include "config.h"
#include "pltest.h"
#include "result.h"
#include "run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pl_status run_yaml(const char *yaml, const char *out_dir, int threads, pl_error *err)
{
    char *path = pltest_write_temp(yaml, ".yaml");
    pl_config *cfg;
    pl_status s = pl_config_load(path, NULL, 0, &cfg, err);
    cr_assert_eq(s, PL_OK, "%s", err->msg);
    FILE *devnull = fopen("/dev/null", "w");
    pl_run_opts o = {.threads = threads, .out_dir = out_dir, .progress = PL_PROGRESS_NONE,
                     .quiet = 1, .out = devnull};
    s = pl_run_config(pltest_registry(), cfg, &o, err);
    fclose(devnull);
    pl_config_free(cfg);
    unlink(path);
    free(path);
    return s;
}

static void load_runs(const char *dir, pl_run_result **runs, size_t *n)
{
    pl_error err;
    cr_assert_eq(pl_records_load(dir, runs, n, &err), PL_OK, "%s", err.msg);
}

static void free_runs(pl_run_result *runs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pl_run_result_free(&runs[i]);
    free(runs);
}

#define MATRIX_YAML(gran, sparsity)                                                            \
    "name: matrix\n"                                                                           \
    "seed: 3\n"                                                                                \
    "model: configs/models/simple_cnn.yaml\n"                                                  \
    "dataset: {plugin: synthetic, train_count: 384, test_count: 128, noise: 1.0}\n"            \
    "backend: simd\n"                                                                          \
    "train: {epochs: 1, batch_size: 64}\n"                                                     \
    "prune: {criterion: l1, granularity: " gran ", schedule: oneshot, sparsity: " sparsity "}\n" \
    "retrain: {epochs: 1}\n"                                                                   \
    "finetune: {epochs: 1, lr: 0.0005}\n"                                                      \
    "report: {latency_runs: 1, plots: false}\n"                                                \
    "sweep:\n"                                                                                 \
    "  model: [configs/models/simple_cnn.yaml, configs/models/lenet5.yaml]\n"                  \
    "  prune.criterion: [l1, l2, random, taylor]\n"                                            \
    "  prune.schedule: [oneshot, iterative, global]\n"

static void check_matrix(const char *yaml, double sparsity, int weight)
{
    char *dir = pltest_tmpdir();
    pl_error err;
    cr_assert_eq(run_yaml(yaml, dir, 2, &err), PL_OK, "%s", err.msg);
    pl_run_result *runs;
    size_t n;
    load_runs(dir, &runs, &n);
    cr_assert_eq(n, 24, "expected 24 runs, got %zu", n);
    for (size_t i = 0; i < n; i++) {
        const pl_run_result *r = &runs[i];
        cr_expect_str_eq(r->status, "ok", "%s: %s", r->sweep, r->message);
        cr_expect(fabs(r->target_sparsity - sparsity) < 0.02, "%s: target %g", r->sweep,
                  r->target_sparsity);
        int global = !strcmp(r->schedule, "global");
        size_t pruned_layers = 0;
        for (size_t k = 0; k < r->n_layers; k++) {
            const pl_layer_result *L = &runs[i].layers[k];
            int conv = !strcmp(L->type, "conv2d"), lin = !strcmp(L->type, "linear");
            int is_output = k + 1 == r->n_layers || (lin && k + 1 < r->n_layers && 0);
            (void)is_output;
            if (!(conv || (weight && lin)) || L->sparsity == 0)
                continue;
            pruned_layers++;
            /* units of this layer: channels from the shape "outxin..." or weights */
            long units = weight ? (long)L->params_before : atol(L->shape_before);
            if (weight && L->params_before) {
                long cout = atol(L->shape_before);
                units = (long)L->params_before - cout; /* minus the bias */
            }
            if (!global)
                cr_expect(fabs(L->sparsity * (double)units - sparsity * (double)units) <= 1.0 + 1e-9,
                          "%s layer %s: sparsity %g of %ld units, target %g", r->sweep, L->name,
                          L->sparsity, units, sparsity);
        }
        cr_expect_gt(pruned_layers, 0, "%s: no layer pruned", r->sweep);
        cr_expect(fabs(r->achieved_sparsity - r->target_sparsity) < 0.02, "%s: achieved %g target %g",
                  r->sweep, r->achieved_sparsity, r->target_sparsity);
        cr_expect(r->params_after <= r->params_before);
        if (!weight) {
            cr_expect_lt(r->params_after, r->params_before, "%s: channel pruning must shrink", r->sweep);
            cr_expect_lt(r->macs_after_physical, r->macs_before);
        } else {
            cr_expect_eq(r->params_after, r->params_before);
            cr_expect_lt(r->nonzero_params_after, r->params_before);
            cr_expect_lt(r->macs_after, r->macs_before);
            /* mask persistence: every masked weight of the final model is 0 */
            char path[4096];
            snprintf(path, sizeof path, "%s/models/%s.ckpt", dir, r->run_id);
            pl_model *m;
            cr_assert_eq(pl_checkpoint_load(path, &m, NULL, &err), PL_OK, "%s", err.msg);
            int64_t masked = 0;
            for (int li = 0; li < m->n_layers; li++) {
                const pl_layer *l = &m->layers[li];
                for (int64_t j = 0; l->mask && j < l->nw; j++)
                    if (l->mask[j] == 0.0f) {
                        masked++;
                        cr_expect(l->w[j] == 0.0f, "%s: %s w[%lld] = %g under a mask", r->sweep,
                                  l->name, (long long)j, l->w[j]);
                    }
            }
            cr_expect_gt(masked, 0);
            pl_model_free(m);
        }
    }
    free_runs(runs, n);
    free(dir);
}

Test(pipeline, every_criterion_and_schedule_channel_half, .timeout = 600)
{
    check_matrix(MATRIX_YAML("channel", "0.5"), 0.5, 0);
}

Test(pipeline, every_criterion_and_schedule_weight_90, .timeout = 600)
{
    check_matrix(MATRIX_YAML("weight", "0.9"), 0.9, 1);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

#define REPRO_YAML(backend, model)                                                            \
    "name: repro\n"                                                                           \
    "seed: 7\n"                                                                               \
    "model: configs/models/" model ".yaml\n"                                                  \
    "dataset: {plugin: synthetic, train_count: 200, test_count: 64, noise: 1.0}\n"            \
    "backend: " backend "\n"                                                                  \
    "train: {epochs: 1, batch_size: 32}\n"                                                    \
    "prune: {criterion: taylor, granularity: channel, schedule: iterative, sparsity: 0.25}\n" \
    "retrain: {epochs: 1}\n"                                                                  \
    "report: {latency_runs: 1, plots: false}\n"

/* Same seed → the same final model, byte for byte, across runs and thread
 * counts (on simd, vgg_mini covers batchnorm, every conv shape and taylor's
 * gradients; ref is too slow for it and checks the SimpleCNN). */
static void check_repro(const char *yaml)
{
    char *d[3] = {pltest_tmpdir(), pltest_tmpdir(), pltest_tmpdir()};
    int threads[3] = {2, 2, 1};
    pl_error err;
    char *bytes[3];
    size_t len[3];
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(run_yaml(yaml, d[k], threads[k], &err), PL_OK, "%s", err.msg);
        pl_run_result *runs;
        size_t n;
        load_runs(d[k], &runs, &n);
        cr_assert_eq(n, 1);
        char path[4096];
        snprintf(path, sizeof path, "%s/models/%s.ckpt", d[k], runs[0].run_id);
        bytes[k] = slurp(path, &len[k]);
        free_runs(runs, n);
    }
    cr_expect(len[0] == len[1] && !memcmp(bytes[0], bytes[1], len[0]), "two runs differ");
    cr_expect(len[0] == len[2] && !memcmp(bytes[0], bytes[2], len[0]), "1 vs 2 threads differ");
    for (int k = 0; k < 3; k++) {
        free(bytes[k]);
        free(d[k]);
    }
}

Test(pipeline, reproducible_simd, .timeout = 600)
{
    check_repro(REPRO_YAML("simd", "vgg_mini"));
}

Test(pipeline, reproducible_ref, .timeout = 600)
{
    check_repro(REPRO_YAML("ref", "simple_cnn"));
}

/* A small MLP learns the synthetic problem from scratch in 2 epochs:
 * >= 90% test accuracy at noise 3 (chance is 10%). */
Test(pipeline, learns_synthetic, .timeout = 300)
{
    char *dir = pltest_tmpdir();
    pl_error err;
    cr_assert_eq(run_yaml("name: learn\nseed: 1\nmodel: configs/models/lenet_300_100.yaml\n"
                          "dataset: {plugin: synthetic, train_count: 4000, test_count: 1000, noise: 3.0}\n"
                          "backend: simd\ntrain: {epochs: 2, batch_size: 64}\n"
                          "report: {latency_runs: 1, plots: false}\n",
                          dir, 2, &err),
                 PL_OK, "%s", err.msg);
    pl_run_result *runs;
    size_t n;
    load_runs(dir, &runs, &n);
    cr_assert_eq(n, 1);
    cr_expect_geq(runs[0].acc_final, 90.0, "accuracy %.2f%%", runs[0].acc_final);
    free_runs(runs, n);
    free(dir);
}
