/*
 * Activation statistics (activations.c) against a direct computation on a
 * small model, a unit whose ReLU never fires, and the criteria built on
 * the new unit-view fields: apoz (activations) and bn_scale (batchnorm
 * scales) choosing what a hand computation chooses through the pruner, and
 * their refusals where the statistics or the batchnorm cannot exist.
 */
#include "activations.h"
#include "prune.h"
#include "pltest.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 1x4x4 input -> conv1 (3 filters 3x3 pad 1) -> relu -> flatten -> fc (2) */
static const char *const MODEL = "name: tiny\n"
                                 "input: [1, 4, 4]\n"
                                 "classes: 2\n"
                                 "layers:\n"
                                 "  - {name: conv1, type: conv2d, out: 3, kernel: 3, padding: 1}\n"
                                 "  - {type: relu}\n"
                                 "  - {type: flatten}\n"
                                 "  - {name: fc, type: linear, out: 2}\n";

typedef struct env {
    pl_instance *be, *ds;
    pl_data train;
} env;

static env env_new(const pl_model *m)
{
    env e;
    e.be = pltest_instance(PL_KIND_BACKEND, "ref", NULL, 1, 1);
    e.ds = pltest_synthetic_train(m->in_c, m->in_h, m->in_w, 200, &e.train);
    return e;
}

static void env_free(env *e)
{
    pl_data_close(&e->train);
    pl_instance_free(e->ds);
    pl_instance_free(e->be);
}

Test(activations, statistics_match_a_direct_computation)
{
    pl_model *m = pltest_model(MODEL, 5);
    env e = env_new(m);
    pl_model_bind(m, pl_instance_ops(e.be), pl_instance_state(e.be));
    pl_layer *cv = &m->layers[0];
    cv->b[2] = -1e6f; /* filter 2 never fires: its ReLU output is always 0 */
    int layers[1] = {0};
    pl_act act[1];
    pl_error err;
    const int B = 7, NB = 3;
    cr_assert_eq(pl_activations_collect(m, &e.train, layers, 1, NB, B, 11, "activations:0", act, &err), PL_OK, "%s",
                 err.msg);
    cr_assert_eq(act[0].units, 3);
    cr_assert_eq(act[0].samples, (int64_t)NB * B * 16);
    /* the same images, convolved and rectified here in double */
    pl_rng r;
    pl_rng_seed(&r, 11, "activations:0");
    double sum[3] = {0}, sq[3] = {0}, zero[3] = {0};
    float x[16];
    int32_t y;
    for (int b = 0; b < NB; b++)
        for (int i = 0; i < B; i++) {
            int64_t idx = (int64_t)pl_rng_below(&r, 200);
            cr_assert_eq(pl_data_read(&e.train, &idx, 0, 1, x, &y, &err), PL_OK);
            for (int c = 0; c < 3; c++)
                for (int oy = 0; oy < 4; oy++)
                    for (int ox = 0; ox < 4; ox++) {
                        double a = cv->b[c];
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int iy = oy + ky - 1, ix = ox + kx - 1;
                                if (iy >= 0 && iy < 4 && ix >= 0 && ix < 4)
                                    a += (double)cv->w[c * 9 + ky * 3 + kx] * x[iy * 4 + ix];
                            }
                        a = a > 0 ? a : 0;
                        sum[c] += a;
                        sq[c] += a * a;
                        zero[c] += a == 0;
                    }
        }
    const double n = (double)NB * B * 16;
    for (int c = 0; c < 3; c++) {
        cr_assert_float_eq(act[0].mean[c], sum[c] / n, 1e-5 * (1 + sum[c] / n), "mean %d", c);
        cr_assert_float_eq(act[0].sq[c], sq[c] / n, 1e-5 * (1 + sq[c] / n), "sq %d", c);
        cr_assert_float_eq(act[0].zero[c], zero[c] / n, 1e-12, "zero %d", c);
    }
    cr_assert_eq(act[0].zero[2], 1.0, "a unit whose ReLU never fires is zero everywhere");
    cr_assert_eq(act[0].mean[2], 0.0);
    pl_act_free(act, 1);
    env_free(&e);
    pl_model_free(m);
}

Test(activations, the_activation_layer_skips_batchnorm_and_relu)
{
    pl_model *m = pltest_model("name: t\ninput: [1, 4, 4]\nclasses: 2\nlayers:\n"
                               "  - {name: c1, type: conv2d, out: 2, kernel: 3, padding: 1}\n"
                               "  - {name: bn, type: batchnorm2d}\n"
                               "  - {name: r, type: relu}\n"
                               "  - {name: c2, type: conv2d, out: 2, kernel: 3, padding: 1}\n"
                               "  - {type: maxpool2d, kernel: 2}\n"
                               "  - {type: flatten}\n"
                               "  - {name: fc, type: linear, out: 2}\n",
                               1);
    cr_assert_eq(pl_activation_layer(m, 0), 2, "conv -> bn -> relu: the relu");
    cr_assert_eq(pl_activation_layer(m, 3), 3, "no relu after c2: its own output");
    cr_assert_eq(pl_activation_layer(m, 6), 6, "the last layer: its own output");
    pl_model_free(m);
}

/* Prunes with `crit` at channel granularity, `remove` units of the
 * targeted conv, and returns which of its original channels were kept. */
static void prune_channels(pl_model *m, env *e, const char *crit, const char *layer, int remove,
                           pl_status want, const char *needle)
{
    pl_instance *c = pltest_instance(PL_KIND_CRITERION, crit, NULL, 1, 1);
    pl_instance *s = pltest_instance(PL_KIND_SCHEDULE, "oneshot", NULL, 1, 1);
    pl_layer_target lt = {.layer = (char *)layer, .count = remove, .fraction = -1, .file = "x.yaml", .line = 1,
                          .col = 1};
    pl_prune_cfg cfg = {.enabled = 1, .granularity = PL_GRAN_CHANNEL, .layers = &lt, .n_layers = 1};
    pl_pruner p;
    pl_error err;
    pl_error_clear(&err);
    pl_status st = pl_pruner_init(&p, m, &cfg, c, s, &err);
    if (!st)
        st = pl_pruner_step(&p, 0, &e->train, 16, 1, &err);
    cr_assert_eq(st, want, "%s: %s", crit, err.msg);
    if (needle)
        cr_assert(strstr(err.msg, needle), "message lacks '%s': %s", needle, err.msg);
    pl_pruner_free(&p);
    pl_instance_free(c);
    pl_instance_free(s);
}

Test(activations, apoz_removes_the_units_that_never_fire)
{
    pl_model *m = pltest_model(MODEL, 5);
    env e = env_new(m);
    pl_model_bind(m, pl_instance_ops(e.be), pl_instance_state(e.be));
    pl_layer *cv = &m->layers[0];
    cv->b[0] = -1e6f; /* dead */
    cv->b[1] = 1e3f;  /* always on: APoZ 0 */
    cv->b[2] = 0.0f;  /* in between */
    float w1 = cv->w[9 + 4], w2 = cv->w[18 + 4];
    prune_channels(m, &e, "apoz", "conv1", 1, PL_OK, NULL);
    cr_assert_eq(cv->out_c, 2);
    cr_assert_eq(cv->b[0], 1e3f, "the dead unit went first; the others keep their weights");
    cr_assert_eq(cv->w[4], w1);
    cr_assert_eq(cv->w[9 + 4], w2);
    pl_model_free(m);
    env_free(&e);
}

static const char *const BN_MODEL = "name: bnnet\n"
                                    "input: [1, 4, 4]\n"
                                    "classes: 2\n"
                                    "layers:\n"
                                    "  - {name: conv1, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                                    "  - {name: bn1, type: batchnorm2d}\n"
                                    "  - {type: relu}\n"
                                    "  - {name: conv2, type: conv2d, out: 2, kernel: 3, padding: 1}\n"
                                    "  - {type: relu}\n"
                                    "  - {type: flatten}\n"
                                    "  - {name: fc, type: linear, out: 2}\n";

Test(activations, bn_scale_removes_the_smallest_gammas)
{
    pl_model *m = pltest_model(BN_MODEL, 5);
    env e = env_new(m);
    pl_model_bind(m, pl_instance_ops(e.be), pl_instance_state(e.be));
    const float gamma[4] = {0.5f, -0.05f, 2.0f, 0.1f}; /* |γ|: 0.5, 0.05, 2, 0.1 */
    memcpy(m->layers[1].w, gamma, sizeof gamma);
    prune_channels(m, &e, "bn_scale", "conv1", 2, PL_OK, NULL);
    cr_assert_eq(m->layers[0].out_c, 2);
    cr_assert_eq(m->layers[1].w[0], 0.5f, "channels 1 and 3 (|γ| 0.05, 0.1) went");
    cr_assert_eq(m->layers[1].w[1], 2.0f);
    pl_model_free(m);
    env_free(&e);
}

Test(activations, bn_scale_refuses_a_layer_without_batchnorm)
{
    pl_model *m = pltest_model(BN_MODEL, 5);
    env e = env_new(m);
    prune_channels(m, &e, "bn_scale", "conv2", 1, PL_ECONFIG, "(layer conv2)");
    pl_model_free(m);
    env_free(&e);
}

Test(activations, apoz_and_bn_scale_refuse_layer_granularity)
{
    pl_model *m = pltest_model(BN_MODEL, 5);
    const char *crits[] = {"apoz", "bn_scale"};
    for (int i = 0; i < 2; i++) {
        pl_instance *c = pltest_instance(PL_KIND_CRITERION, crits[i], NULL, 1, 1);
        pl_instance *s = pltest_instance(PL_KIND_SCHEDULE, "oneshot", NULL, 1, 1);
        pl_prune_cfg cfg = {.enabled = 1, .granularity = PL_GRAN_LAYER, .has_sparsity = 1, .sparsity = 0.5,
                            .count = -1};
        pl_pruner p;
        pl_error err;
        cr_assert_eq(pl_pruner_init(&p, m, &cfg, c, s, &err), PL_ECONFIG, "%s", crits[i]);
        cr_assert(strstr(err.msg, "cannot rank whole layers"), "%s", err.msg);
        pl_pruner_free(&p);
        pl_instance_free(c);
        pl_instance_free(s);
    }
    pl_model_free(m);
}
