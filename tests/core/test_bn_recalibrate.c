/*
 * Batchnorm recalibration after pruning (bn_recalibrate.c): the running
 * statistics become the plain average of the calibration batches' own
 * statistics, whatever they were before; nothing else in the model moves;
 * the thread count does not matter; prune.recalibrate_bn reaches the
 * pruner and the run identity only when it is set.
 */
#include "bn_recalibrate.h"
#include "config.h"
#include "prune.h"
#include "pltest.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* a batchnorm straight on the input, so its statistics are the images' own */
static const char *const MODEL = "name: bnr\n"
                                 "input: [2, 3, 3]\n"
                                 "classes: 2\n"
                                 "layers:\n"
                                 "  - {name: bn, type: batchnorm2d}\n"
                                 "  - {type: dropout, p: 0.5}\n"
                                 "  - {type: flatten}\n"
                                 "  - {name: fc, type: linear, out: 2}\n";

typedef struct env {
    pl_instance *be, *ds;
    pl_data train;
} env;

static env env_new(int threads)
{
    env e;
    e.be = pltest_instance(PL_KIND_BACKEND, "ref", NULL, 1, threads);
    e.ds = pltest_synthetic_train(2, 3, 3, 40, &e.train);
    return e;
}

static void env_free(env *e)
{
    pl_data_close(&e->train);
    pl_instance_free(e->ds);
    pl_instance_free(e->be);
}

Test(bn_recalibrate, running_statistics_are_the_batch_average)
{
    pl_model *m = pltest_model(MODEL, 5);
    env e = env_new(1);
    pl_model_bind(m, pl_instance_ops(e.be), pl_instance_state(e.be));
    pl_layer *bn = &m->layers[0], *fc = &m->layers[3];
    const int B = 6, NB = 4;
    /* old statistics that must not leak into the new ones */
    bn->run_mean[0] = 1e6f;
    bn->run_var[1] = 123.0f;
    float w0 = fc->w[3], g1 = bn->w[1];
    uint64_t dc = m->dropout_calls;
    pl_error err;
    cr_assert_eq(pl_bn_recalibrate(m, &e.train, NB, B, 11, "bn_recalibrate:0", &err), PL_OK, "%s", err.msg);
    /* the same images, their per-batch mean and unbiased variance here */
    pl_rng r;
    pl_rng_seed(&r, 11, "bn_recalibrate:0");
    double mean[2] = {0}, var[2] = {0};
    float x[18];
    int32_t y;
    for (int b = 0; b < NB; b++) {
        double s[2] = {0}, s2[2] = {0};
        float img[6][18];
        for (int i = 0; i < B; i++) {
            int64_t idx = (int64_t)pl_rng_below(&r, 40);
            cr_assert_eq(pl_data_read(&e.train, &idx, 0, 1, x, &y, &err), PL_OK);
            memcpy(img[i], x, sizeof x);
            for (int c = 0; c < 2; c++)
                for (int p = 0; p < 9; p++)
                    s[c] += x[c * 9 + p];
        }
        for (int c = 0; c < 2; c++) {
            double mu = s[c] / (B * 9);
            for (int i = 0; i < B; i++)
                for (int p = 0; p < 9; p++)
                    s2[c] += (img[i][c * 9 + p] - mu) * (img[i][c * 9 + p] - mu);
            mean[c] += mu / NB;
            var[c] += s2[c] / (B * 9 - 1) / NB;
        }
    }
    for (int c = 0; c < 2; c++) {
        cr_expect(fabs(bn->run_mean[c] - mean[c]) <= 1e-5 * (1 + fabs(mean[c])), "mean[%d] %.9g, expected %.9g",
                  c, bn->run_mean[c], mean[c]);
        cr_expect(fabs(bn->run_var[c] - var[c]) <= 1e-5 * (1 + fabs(var[c])), "var[%d] %.9g, expected %.9g", c,
                  bn->run_var[c], var[c]);
    }
    /* nothing else moved */
    cr_expect_eq(fc->w[3], w0);
    cr_expect_eq(bn->w[1], g1);
    cr_expect_eq(bn->momentum, 0.1);
    cr_expect_eq(m->dropout_calls, dc);
    /* from other old values: the same bits */
    float rm[2], rv[2];
    memcpy(rm, bn->run_mean, sizeof rm);
    memcpy(rv, bn->run_var, sizeof rv);
    bn->run_mean[0] = bn->run_mean[1] = -7;
    bn->run_var[0] = bn->run_var[1] = 0.5f;
    cr_assert_eq(pl_bn_recalibrate(m, &e.train, NB, B, 11, "bn_recalibrate:0", &err), PL_OK, "%s", err.msg);
    cr_expect_eq(memcmp(rm, bn->run_mean, sizeof rm), 0);
    cr_expect_eq(memcmp(rv, bn->run_var, sizeof rv), 0);
    env_free(&e);
    pl_model_free(m);
}

/* a conv -> batchnorm -> relu network: the statistics do not depend on the threads */
static void recalibrated(int threads, float *out, int n_out)
{
    pl_model *m = pltest_model("name: t\ninput: [1, 6, 6]\nclasses: 2\nlayers:\n"
                               "  - {name: c1, type: conv2d, out: 5, kernel: 3, padding: 1}\n"
                               "  - {name: b1, type: batchnorm2d}\n"
                               "  - {type: relu}\n"
                               "  - {name: c2, type: conv2d, out: 4, kernel: 3}\n"
                               "  - {name: b2, type: batchnorm2d}\n"
                               "  - {type: relu}\n"
                               "  - {type: global_avgpool}\n"
                               "  - {type: flatten}\n"
                               "  - {name: fc, type: linear, out: 2}\n",
                               9);
    pl_error err;
    pl_instance *be = pltest_instance(PL_KIND_BACKEND, "ref", NULL, 1, threads);
    pl_data train;
    pl_instance *ds = pltest_synthetic_train(1, 6, 6, 50, &train);
    pl_model_bind(m, pl_instance_ops(be), pl_instance_state(be));
    cr_assert_eq(pl_bn_recalibrate(m, &train, 3, 7, 2, "bn_recalibrate:1", &err), PL_OK, "%s", err.msg);
    int k = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].type == PL_LAYER_BATCHNORM2D)
            for (int c = 0; c < m->layers[i].in_c; c++) {
                cr_assert_lt(k + 1, n_out);
                out[k++] = m->layers[i].run_mean[c];
                out[k++] = m->layers[i].run_var[c];
            }
    cr_assert_eq(k, n_out);
    pl_data_close(&train);
    pl_instance_free(ds);
    pl_instance_free(be);
    pl_model_free(m);
}

Test(bn_recalibrate, same_bits_on_one_and_two_threads)
{
    float a[18], b[18];
    recalibrated(1, a, 18);
    recalibrated(2, b, 18);
    cr_expect_eq(memcmp(a, b, sizeof a), 0);
}

/* through the pruner: after a channel cut the surviving batchnorm holds the
 * statistics of the pruned network, not the dense one's */
Test(bn_recalibrate, pruner_recalibrates_after_the_cut)
{
    const char *const yaml = "name: p\ninput: [1, 5, 5]\nclasses: 2\nlayers:\n"
                             "  - {name: c1, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                             "  - {name: b1, type: batchnorm2d}\n"
                             "  - {type: relu}\n"
                             "  - {name: c2, type: conv2d, out: 3, kernel: 3, padding: 1}\n"
                             "  - {name: b2, type: batchnorm2d}\n"
                             "  - {type: relu}\n"
                             "  - {type: flatten}\n"
                             "  - {name: fc, type: linear, out: 2}\n";
    pl_error err;
    pl_instance *be = pltest_instance(PL_KIND_BACKEND, "ref", NULL, 1, 1);
    pl_data train;
    pl_instance *ds = pltest_synthetic_train(1, 5, 5, 30, &train);
    pl_instance *crit = pltest_instance(PL_KIND_CRITERION, "l1", NULL, 1, 1);
    pl_instance *sched = pltest_instance(PL_KIND_SCHEDULE, "oneshot", NULL, 1, 1);
    float rm[2][3];
    for (int on = 0; on < 2; on++) {
        pl_model *m = pltest_model(yaml, 4);
        pl_model_bind(m, pl_instance_ops(be), pl_instance_state(be));
        pl_layer *b2 = &m->layers[pl_model_find(m, "b2")];
        for (int c = 0; c < 3; c++)
            b2->run_mean[c] = 42.0f; /* stale: the dense network's */
        pl_prune_cfg cfg = {.enabled = 1, .granularity = PL_GRAN_CHANNEL, .has_sparsity = 1, .sparsity = 0.5,
                            .recalibrate_bn = on ? 5 : 0};
        cfg.include = (char *[]){"c1"};
        cfg.n_include = 1;
        pl_pruner p;
        cr_assert_eq(pl_pruner_init(&p, m, &cfg, crit, sched, &err), PL_OK, "%s", err.msg);
        cr_assert_eq(pl_pruner_step(&p, 0, &train, 8, 1, &err), PL_OK, "%s", err.msg);
        cr_assert_eq(m->layers[pl_model_find(m, "c1")].out_c, 2);
        memcpy(rm[on], b2->run_mean, sizeof rm[on]);
        if (on) { /* what a direct recalibration of the pruned network gives */
            float direct[3];
            memcpy(direct, b2->run_mean, sizeof direct);
            for (int c = 0; c < 3; c++)
                b2->run_mean[c] = 0;
            cr_assert_eq(pl_bn_recalibrate(m, &train, 5, 8, 1, "bn_recalibrate:0", &err), PL_OK, "%s", err.msg);
            cr_expect_eq(memcmp(direct, b2->run_mean, sizeof direct), 0);
        }
        pl_pruner_free(&p);
        pl_model_free(m);
    }
    for (int c = 0; c < 3; c++) {
        cr_expect_eq(rm[0][c], 42.0f, "off: the statistics stay as surgery left them");
        cr_expect_neq(rm[1][c], 42.0f, "on: re-estimated");
    }
    pl_instance_free(crit);
    pl_instance_free(sched);
    pl_data_close(&train);
    pl_instance_free(ds);
    pl_instance_free(be);
}

Test(bn_recalibrate, model_without_batchnorm_is_untouched)
{
    pl_model *m = pltest_model("name: n\ninput: [1, 2, 2]\nclasses: 2\nlayers:\n"
                               "  - {type: flatten}\n"
                               "  - {name: fc, type: linear, out: 2}\n",
                               1);
    pl_error err;
    /* no pass runs, so no data is needed */
    cr_assert_eq(pl_bn_recalibrate(m, NULL, 10, 8, 1, "bn_recalibrate:0", &err), PL_OK);
    pl_model_free(m);
}
