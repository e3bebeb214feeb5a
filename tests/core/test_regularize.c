/*
 * Sparsity regularisers (regularize.h): the penalty's gradient against
 * central finite differences for l1 (weights away from 0), l2 and group
 * lasso — the penalty alone in double precision, and loss + penalty through
 * the whole network; a zero coefficient leaves training bit for bit
 * unchanged; group lasso shrinks filter norms; the `regularize:` schema
 * (decode, range checks, no inheritance, dump / run_id) and layer names
 * checked against the model; norm statistics.
 */
#include "config.h"
#include "model.h"
#include "pltest.h"
#include "regularize.h"
#include "rng.h"
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Smooth (no ReLU / pooling kinks) so finite differences are clean. */
static const char *SMOOTH_YAML =
    "name: smooth\n"
    "input: [2, 5, 5]\n"
    "classes: 3\n"
    "layers:\n"
    "  - {name: conv1, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
    "  - {name: conv2, type: conv2d, out: 3, kernel: 3}\n"
    "  - {type: flatten}\n"
    "  - {name: fc1, type: linear, out: 6}\n"
    "  - {name: fc2, type: linear, out: 3}\n";

#define N_IMG 5

static pl_model *smooth_model(void)
{
    pl_model *m = pltest_model(SMOOTH_YAML, 5);
    pl_error err;
    pltest_bind_ref(m);
    cr_assert_eq(pl_model_reserve(m, N_IMG, &err), PL_OK, "%s", err.msg);
    return m;
}

static pl_reg_cfg reg_cfg(pl_reg_type t, double coef)
{
    return (pl_reg_cfg){.type = t, .coef = coef};
}

/* mean cross-entropy of the batch (eval forward) */
static double data_loss(pl_model *m, const float *x, const int32_t *y)
{
    pl_error err;
    const float *logits = pl_model_forward(m, x, N_IMG, PL_MODE_EVAL, &err);
    cr_assert(logits, "%s", err.msg);
    double ls = 0;
    int64_t c = 0;
    cr_assert_eq(m->be->softmax_xent(m->be_state, N_IMG, m->classes, logits, y, 0.0f, NULL, &ls, &c), PL_OK);
    return ls / N_IMG;
}

/* ∂P/∂w by add_grad against central differences of P (double sums over
 * float weights): for every weight of every regularised layer. */
static void check_penalty_grad(pl_reg_type t, double coef)
{
    pl_model *m = smooth_model();
    pl_error err;
    pl_regularizer r;
    pl_reg_cfg cfg = reg_cfg(t, coef);
    cr_assert_eq(pl_regularizer_init(&r, m, &cfg, "train", &err), PL_OK, "%s", err.msg);
    cr_assert_eq(r.n, 3, "default layers: conv1, conv2, fc1 (not the output layer)");
    for (int k = 0; k < r.n; k++) {
        pl_layer *l = &m->layers[r.layers[k]];
        memset(l->gw, 0, (size_t)l->nw * sizeof(float));
    }
    double p0 = pl_regularizer_add_grad(&r, m);
    cr_expect(fabs(p0 - pl_regularizer_penalty(&r, m)) <= 1e-12 * (1 + p0));
    const float h = 1e-3f;
    int checked = 0;
    for (int k = 0; k < r.n; k++) {
        pl_layer *l = &m->layers[r.layers[k]];
        for (int64_t i = 0; i < l->nw; i++) {
            if (t == PL_REG_L1 && fabsf(l->w[i]) < 4 * h)
                continue; /* |w| has a kink at 0 */
            float w0 = l->w[i];
            l->w[i] = w0 + h;
            double up = pl_regularizer_penalty(&r, m);
            l->w[i] = w0 - h;
            double dn = pl_regularizer_penalty(&r, m);
            l->w[i] = w0;
            double fd = (up - dn) / ((double)(w0 + h) - (double)(w0 - h));
            cr_expect(fabs(fd - l->gw[i]) <= 1e-4 * coef + 1e-4 * fabs(fd), "%s w[%lld]: fd %.9g analytic %.9g",
                      l->name, (long long)i, fd, l->gw[i]);
            checked++;
        }
    }
    cr_expect_gt(checked, 100);
    pl_regularizer_deinit(&r);
    pl_model_free(m);
}

Test(regularize_grad, l1_penalty_away_from_zero) { check_penalty_grad(PL_REG_L1, 0.03); }
Test(regularize_grad, l2_penalty) { check_penalty_grad(PL_REG_L2, 0.03); }
Test(regularize_grad, group_lasso_penalty) { check_penalty_grad(PL_REG_GROUP_LASSO, 0.03); }

/* Loss + penalty through the network: backward + add_grad against central
 * differences of data_loss + P, on sampled weights of every layer. */
static void check_total_grad(pl_reg_type t, double coef)
{
    pl_model *m = smooth_model();
    pl_error err;
    int64_t img = (int64_t)m->in_c * m->in_h * m->in_w;
    float *x = malloc((size_t)(img * N_IMG) * sizeof(float));
    int32_t y[N_IMG];
    pl_rng rng;
    pl_rng_seed(&rng, 9, "regularize-input");
    for (int64_t i = 0; i < img * N_IMG; i++)
        x[i] = (float)pl_rng_normal(&rng);
    for (int i = 0; i < N_IMG; i++)
        y[i] = (int32_t)pl_rng_below(&rng, 3);
    pl_regularizer r;
    pl_reg_cfg cfg = reg_cfg(t, coef);
    cr_assert_eq(pl_regularizer_init(&r, m, &cfg, "train", &err), PL_OK, "%s", err.msg);
    double loss;
    cr_assert_eq(pl_model_gradients(m, x, y, N_IMG, &loss, &err), PL_OK, "%s", err.msg);
    double pen = pl_regularizer_add_grad(&r, m);
    cr_expect_gt(pen, 0);
    const float h = 2e-3f;
    int checked = 0;
    for (int li = 0; li < m->n_layers; li++) {
        pl_layer *l = &m->layers[li];
        if (!l->nw)
            continue;
        int64_t stride = l->nw > 24 ? l->nw / 24 : 1;
        for (int64_t i = 0; i < l->nw; i += stride) {
            if (t == PL_REG_L1 && fabsf(l->w[i]) < 4 * h)
                continue;
            float w0 = l->w[i];
            l->w[i] = w0 + h;
            double up = data_loss(m, x, y) + pl_regularizer_penalty(&r, m);
            l->w[i] = w0 - h;
            double dn = data_loss(m, x, y) + pl_regularizer_penalty(&r, m);
            l->w[i] = w0;
            double fd = (up - dn) / ((double)(w0 + h) - (double)(w0 - h));
            double an = l->gw[i];
            cr_expect(fabs(fd - an) <= 2e-3 + 2e-2 * fabs(an), "%s w[%lld]: fd %.7g analytic %.7g", l->name,
                      (long long)i, fd, an);
            checked++;
        }
    }
    cr_expect_gt(checked, 60);
    pl_regularizer_deinit(&r);
    free(x);
    pl_model_free(m);
}

Test(regularize_grad, l1_loss_plus_penalty) { check_total_grad(PL_REG_L1, 0.3); }
Test(regularize_grad, l2_loss_plus_penalty) { check_total_grad(PL_REG_L2, 0.5); }
Test(regularize_grad, group_lasso_loss_plus_penalty) { check_total_grad(PL_REG_GROUP_LASSO, 0.3); }

Test(regularize_grad, penalty_values_by_hand)
{
    pl_model *m = smooth_model();
    pl_layer *l = &m->layers[pl_model_find(m, "fc1")]; /* 6 x 27 */
    cr_assert_eq(l->nw, 6 * 27);
    for (int64_t i = 0; i < l->nw; i++)
        l->w[i] = 0;
    l->w[0] = 3; /* unit 0: (3, -4, 0, ...) -> norm 5 */
    l->w[1] = -4;
    l->w[27] = 1; /* unit 1: norm 1 */
    const char *names[] = {"fc1"};
    pl_error err;
    pl_regularizer r;
    struct { pl_reg_type t; double want; } c[] = {
        {PL_REG_L1, 0.5 * 8}, {PL_REG_L2, 0.25 * 26}, {PL_REG_GROUP_LASSO, 0.5 * 6}};
    for (int k = 0; k < 3; k++) {
        pl_reg_cfg cfg = {.type = c[k].t, .coef = 0.5, .layers = (char **)names, .n_layers = 1};
        cr_assert_eq(pl_regularizer_init(&r, m, &cfg, "train", &err), PL_OK, "%s", err.msg);
        cr_expect_eq(r.n, 1);
        double p = pl_regularizer_penalty(&r, m);
        cr_expect(fabs(p - c[k].want) < 1e-12, "type %d: %g, want %g", c[k].t, p, c[k].want);
        pl_regularizer_deinit(&r);
    }
    pl_model_free(m);
}

/* ---- training --------------------------------------------------------------------- */

static pl_model *train_tiny(const pl_reg_cfg *reg, int epochs)
{
    static pl_instance *ds;
    static pl_data data;
    pl_error err;
    if (!ds) {
        const char *kv[] = {"height=8", "width=8", "classes=4", "train_count=512", "test_count=64", NULL};
        ds = pltest_instance(PL_KIND_DATASET, "synthetic", kv, 3, 1);
        cr_assert_eq(pl_data_open(ds, PL_SPLIT_TRAIN, &data, &err), PL_OK, "%s", err.msg);
    }
    pl_model *m = pltest_model(PLTEST_TINY_YAML, 4);
    pltest_bind_ref(m);
    pl_phase_cfg cfg = {.epochs = epochs, .batch_size = 32,
                        .optim = {.type = PL_OPTIM_ADAM, .lr = 3e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                                  .lr_schedule = PL_LR_CONSTANT, .step_size = 1, .gamma = 0.1}};
    if (reg)
        cfg.reg = *reg;
    pl_train_opts o = {.progress = PL_PROGRESS_NONE};
    pl_phase_stats st;
    cr_assert_eq(pl_train_phase(m, &data, &cfg, 7, "train", &o, &st, &err), PL_OK, "%s", err.msg);
    return m;
}

Test(regularize_train, zero_coefficient_changes_nothing)
{
    pl_model *plain = train_tiny(NULL, 1);
    pl_reg_type types[] = {PL_REG_L1, PL_REG_L2, PL_REG_GROUP_LASSO};
    for (int k = 0; k < 3; k++) {
        pl_reg_cfg r = reg_cfg(types[k], 0);
        pl_model *z = train_tiny(&r, 1);
        cr_expect(pltest_same_weights(plain, z, 1), "type %d with coef 0 changed the weights", types[k]);
        pl_model_free(z);
    }
    pl_reg_cfg r = reg_cfg(PL_REG_L1, 1e-4);
    pl_model *nz = train_tiny(&r, 1);
    cr_expect(!pltest_same_weights(plain, nz, 1), "a non-zero coefficient must change training");
    pl_model_free(nz);
    pl_model_free(plain);
}

Test(regularize_train, group_lasso_shrinks_filter_norms)
{
    pl_model *plain = train_tiny(NULL, 2);
    pl_reg_cfg r = reg_cfg(PL_REG_GROUP_LASSO, 0.05);
    pl_model *gl = train_tiny(&r, 2);
    pl_norm_stats *a, *b;
    int na, nb;
    pl_error err;
    cr_assert_eq(pl_norms_compute(plain, &a, &na, &err), PL_OK);
    cr_assert_eq(pl_norms_compute(gl, &b, &nb, &err), PL_OK);
    cr_assert_eq(na, 3);
    cr_assert_eq(nb, 3);
    cr_expect_str_eq(a[0].layer, "conv1");
    /* conv1 and fc1 are regularised (fc2 is the output layer) */
    cr_expect_lt(b[0].group, a[0].group, "conv1: %g vs %g", b[0].group, a[0].group);
    cr_expect_lt(b[1].group, a[1].group, "fc1: %g vs %g", b[1].group, a[1].group);
    free(a);
    free(b);
    pl_model_free(plain);
    pl_model_free(gl);
}

Test(regularize_train, unknown_or_weightless_layer_is_a_config_error)
{
    pl_model *m = smooth_model();
    pl_error err;
    pl_regularizer r;
    const char *bad[] = {"conv9"};
    pl_reg_cfg cfg = {.type = PL_REG_L1, .coef = 1, .layers = (char **)bad, .n_layers = 1};
    cr_expect_eq(pl_regularizer_init(&r, m, &cfg, "retrain", &err), PL_ECONFIG);
    cr_expect(strstr(err.msg, "retrain.regularize.layers") && strstr(err.msg, "conv9"), "%s", err.msg);
    const char *flat[] = {m->layers[2].name}; /* the flatten layer */
    cfg.layers = (char **)flat;
    cr_expect_eq(pl_regularizer_init(&r, m, &cfg, "train", &err), PL_ECONFIG);
    cr_expect(strstr(err.msg, "no conv2d/linear weights"), "%s", err.msg);
    pl_reg_cfg none = {0};
    cr_expect_eq(pl_regularizer_init(&r, m, &none, "train", &err), PL_OK);
    cr_expect_eq(pl_regularizer_add_grad(&r, m), 0.0);
    pl_regularizer_deinit(&r);
    pl_model_free(m);
}

/* ---- norm statistics ------------------------------------------------------------ */

Test(regularize_norms, quantiles_and_sums_by_hand)
{
    pl_model *m = smooth_model();
    pl_layer *l = &m->layers[pl_model_find(m, "fc1")]; /* 6 units of 27 */
    for (int64_t i = 0; i < l->nw; i++)
        l->w[i] = 0;
    for (int u = 0; u < 6; u++)
        l->w[u * 27] = (float)(u + 1) * (u % 2 ? -1.0f : 1.0f); /* norms 1..6 */
    l->w[0] = 0.5f;                                              /* norms 0.5, 2, 3, 4, 5, 6 */
    pl_norm_stats *s;
    int n;
    pl_error err;
    cr_assert_eq(pl_norms_compute(m, &s, &n, &err), PL_OK);
    cr_assert_eq(n, 4);
    const pl_norm_stats *t = &s[2];
    cr_expect_str_eq(t->layer, "fc1");
    cr_expect_eq(t->units, 6);
    cr_expect_eq(t->weights, 162);
    cr_expect(fabs(t->q[0] - 0.5) < 1e-9 && fabs(t->q[4] - 6) < 1e-9);
    cr_expect(fabs(t->q[2] - 3.5) < 1e-9, "median %g", t->q[2]);
    cr_expect(fabs(t->q[1] - 2.25) < 1e-9, "q25 %g", t->q[1]); /* 2 + 0.25*(3-2) at position 1.25 */
    cr_expect(fabs(t->group - 20.5) < 1e-9);
    cr_expect(fabs(t->l1 - 20.5) < 1e-9);
    cr_expect(fabs(t->below_10pct - 1.0 / 6) < 1e-9, "0.5 < 0.6: one unit of six");
    free(s);
    pl_model_free(m);
}

/* ---- configuration ------------------------------------------------------------------ */

static const char *EXP =
    "name: reg\n"
    "model: configs/models/simple_cnn.yaml\n"
    "dataset: {plugin: synthetic}\n"
    "train: {epochs: 1, regularize: {type: group_lasso, coef: 1e-3, layers: [conv1, conv2]}}\n"
    "prune: {criterion: l1, granularity: channel, sparsity: 0.5}\n";

Test(regularize_config, decodes_and_is_not_inherited)
{
    pl_experiment *x;
    pl_error err;
    cr_assert_eq(pltest_experiment_text(EXP, NULL, 0, &x, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(x->train.reg.type, PL_REG_GROUP_LASSO);
    cr_expect_eq(x->train.reg.coef, 1e-3);
    cr_assert_eq(x->train.reg.n_layers, 2);
    cr_expect_str_eq(x->train.reg.layers[1], "conv2");
    cr_expect_eq(x->retrain.reg.type, PL_REG_NONE, "retrain does not inherit train's regularizer");
    cr_expect_eq(x->finetune.reg.type, PL_REG_NONE);
    char *d = pl_experiment_dump(x);
    cr_expect(strstr(d, "train.regularize.type: group_lasso\n"), "%s", d);
    cr_expect(strstr(d, "train.regularize.coef: 0.001\n"), "%s", d);
    cr_expect(strstr(d, "train.regularize.layers: [conv1, conv2]\n"), "%s", d);
    cr_expect(!strstr(d, "retrain.regularize"), "%s", d);
    free(d);
    char id1[17], base1[17];
    memcpy(id1, x->run_id, 17);
    pl_experiment_baseline_key(x, base1);
    pl_experiment_free(x);

    const char *sets[] = {"train.regularize.coef=0", "retrain.regularize.type=l2", "retrain.regularize.coef=1e-4"};
    cr_assert_eq(pltest_experiment_text(EXP, sets, 3, &x, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(x->train.reg.coef, 0);
    cr_expect_eq(x->retrain.reg.type, PL_REG_L2);
    cr_expect_eq(x->retrain.reg.n_layers, 0);
    char base2[17];
    pl_experiment_baseline_key(x, base2);
    cr_expect_str_neq(id1, x->run_id, "the coefficient is part of the run's identity");
    cr_expect_str_neq(base1, base2, "and of the cached baseline's");
    pl_experiment_free(x);

    /* type none = no regularizer: same identity as leaving it out */
    const char *none[] = {"train.regularize.type=none"};
    cr_assert_eq(pltest_experiment_text(EXP, none, 1, &x, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(x->train.reg.type, PL_REG_NONE);
    char *d2 = pl_experiment_dump(x);
    cr_expect(!strstr(d2, "regularize"), "%s", d2);
    free(d2);
    pl_experiment_free(x);
}

Test(regularize_config, bad_values_are_config_errors)
{
    struct { const char *set; const char *part; } c[] = {
        {"train.regularize.type=group_laso", "did you mean 'group_lasso'"},
        {"train.regularize.coef=-1", "train.regularize.coef must be a finite number >= 0"},
        {"train.regularize.coef=.inf", "train.regularize.coef must be a finite number >= 0"},
        {"train.regularize.coeff=1", "unknown key 'coeff'"},
        {"finetune.regularize.layers=conv1", "finetune.regularize: missing 'type'"},
    };
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        pl_experiment *x;
        pl_error err = {0};
        const char *sets[] = {c[k].set};
        cr_expect_eq(pltest_experiment_text(EXP, sets, 1, &x, &err), PL_ECONFIG, "%s was accepted", c[k].set);
        cr_expect(strstr(err.msg, c[k].part), "%s: '%s' lacks '%s'", c[k].set, err.msg, c[k].part);
    }
    const char *nocoef = "name: r\nmodel: m.yaml\ntrain: {regularize: {type: l1}}\n";
    pl_experiment *x;
    pl_error err = {0};
    cr_expect_eq(pltest_experiment_text(nocoef, NULL, 0, &x, &err), PL_ECONFIG);
    cr_expect(strstr(err.msg, ":3:") && strstr(err.msg, "missing 'coef'"), "%s", err.msg);
    const char *empty = "name: r\nmodel: m.yaml\ntrain: {regularize: {type: l1, coef: 1, layers: []}}\n";
    cr_expect_eq(pltest_experiment_text(empty, NULL, 0, &x, &err), PL_ECONFIG);
    cr_expect(strstr(err.msg, "train.regularize.layers is empty"), "%s", err.msg);
}

/* ---- bn_l1 (network slimming) ------------------------------------------------------ */

static const char *BN_YAML = "name: bn\n"
                             "input: [1, 5, 5]\n"
                             "classes: 3\n"
                             "layers:\n"
                             "  - {name: conv1, type: conv2d, out: 3, kernel: 3, padding: 1}\n"
                             "  - {name: bn1, type: batchnorm2d}\n"
                             "  - {type: relu}\n"
                             "  - {name: conv2, type: conv2d, out: 2, kernel: 3}\n"
                             "  - {name: bn2, type: batchnorm2d}\n"
                             "  - {type: flatten}\n"
                             "  - {name: fc, type: linear, out: 3}\n";

Test(regularize_bn_l1, penalty_and_gradient_on_every_batchnorm_scale)
{
    pl_model *m = pltest_model(BN_YAML, 5);
    pl_layer *b1 = &m->layers[1], *b2 = &m->layers[4];
    const float g1[3] = {0.5f, -2.0f, 0.0f}, g2[2] = {1.5f, -0.25f};
    memcpy(b1->w, g1, sizeof g1);
    memcpy(b2->w, g2, sizeof g2);
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].gw)
            memset(m->layers[i].gw, 0, (size_t)m->layers[i].nw * sizeof(float));
    pl_error err;
    pl_regularizer r;
    pl_reg_cfg cfg = reg_cfg(PL_REG_BN_L1, 0.1);
    cr_assert_eq(pl_regularizer_init(&r, m, &cfg, "train", &err), PL_OK, "%s", err.msg);
    cr_assert_eq(r.n, 2, "default: every batchnorm2d");
    double p = pl_regularizer_add_grad(&r, m);
    cr_assert_float_eq(p, 0.1 * (0.5 + 2.0 + 0.0 + 1.5 + 0.25), 1e-12);
    const float want1[3] = {0.1f, -0.1f, 0.0f}, want2[2] = {0.1f, -0.1f};
    for (int i = 0; i < 3; i++)
        cr_assert_float_eq(b1->gw[i], want1[i], 1e-7, "bn1 gamma %d", i);
    for (int i = 0; i < 2; i++)
        cr_assert_float_eq(b2->gw[i], want2[i], 1e-7, "bn2 gamma %d", i);
    for (int i = 0; i < m->layers[0].nw; i++)
        cr_assert_eq(m->layers[0].gw[i], 0.0f, "conv weights are not penalised");
    for (int i = 0; i < b1->nb; i++)
        cr_assert_eq(b1->gb[i], 0.0f, "beta is not penalised");
    pl_regularizer_deinit(&r);
    char buf[128];
    cr_assert_eq(pl_regularizer_init(&r, m, &cfg, "train", &err), PL_OK);
    pl_regularizer_describe(&r, m, buf, sizeof buf);
    cr_assert(strstr(buf, "bn_l1 0.1 on bn1,bn2"), "%s", buf);
    pl_regularizer_deinit(&r);
    pl_model_free(m);
}

Test(regularize_bn_l1, names_a_batchnorm_or_nothing)
{
    pl_model *m = pltest_model(BN_YAML, 5);
    pl_error err;
    pl_regularizer r;
    const char *conv[] = {"conv1"};
    pl_reg_cfg cfg = {.type = PL_REG_BN_L1, .coef = 1, .layers = (char **)conv, .n_layers = 1};
    cr_assert_eq(pl_regularizer_init(&r, m, &cfg, "train", &err), PL_ECONFIG);
    cr_assert(strstr(err.msg, "'conv1' (conv2d), which has no batchnorm2d scales"), "%s", err.msg);
    const char *bn2[] = {"bn2"};
    cfg.layers = (char **)bn2;
    cr_assert_eq(pl_regularizer_init(&r, m, &cfg, "train", &err), PL_OK, "%s", err.msg);
    cr_assert_eq(r.n, 1);
    pl_regularizer_deinit(&r);
    pl_model_free(m);
    /* a model without batchnorm */
    m = smooth_model();
    pl_reg_cfg all = reg_cfg(PL_REG_BN_L1, 1);
    cr_assert_eq(pl_regularizer_init(&r, m, &all, "train", &err), PL_ECONFIG);
    cr_assert(strstr(err.msg, "no batchnorm2d layer for bn_l1"), "%s", err.msg);
    pl_model_free(m);
}
