/*
 * Distillation (distill.h): the loss against a hand value, its gradient
 * against central finite differences (the soft term alone and the full
 * (1-a)·CE + a·T²·KL), alpha 0 is plain cross-entropy bit for bit (on the
 * loss function and over a whole training phase), a non-zero alpha changes
 * training, the `distill:` schema (defaults, ranges, not under train:, in
 * the run identity) with errors at file:line:col.
 */
#include "config.h"
#include "distill.h"
#include "model.h"
#include "pltest.h"
#include "rng.h"
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N 4
#define K 5

static void random_logits(float *z, int n, uint64_t seed, double scale)
{
    pl_rng r;
    pl_rng_seed(&r, seed, "distill-test");
    for (int i = 0; i < n; i++)
        z[i] = (float)(scale * (2.0 * ((double)pl_rng_below(&r, 1u << 30) / (double)(1u << 30)) - 1.0));
}

/* summed cross-entropy of the batch and its gradient times scale, in double */
static double xent(const float *z, const int32_t *y, float scale, float *dl)
{
    double sum = 0;
    for (int i = 0; i < N; i++) {
        const float *r = z + i * K;
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < K; j++)
            mx = fmax(mx, r[j]);
        for (int j = 0; j < K; j++)
            s += exp(r[j] - mx);
        sum += log(s) + mx - r[y[i]];
        for (int j = 0; dl && j < K; j++)
            dl[i * K + j] = (float)(((exp(r[j] - mx) / s) - (j == y[i])) * scale);
    }
    return sum;
}

/* the full loss at zs, in double: (1-a)·CE + a·T²·KL (summed) */
static double full_loss(const float *zs, const float *zt, const int32_t *y, double a, double T)
{
    return (1 - a) * xent(zs, y, 1, NULL) + a * T * T * pl_distill_kl(N, K, zs, zt, T);
}

Test(distill_loss, kl_by_hand)
{
    /* student (ln 3, 0) at T 1 -> (0.75, 0.25); teacher (0, 0) -> (0.5, 0.5):
     * KL = 0.5 ln(0.5/0.75) + 0.5 ln(0.5/0.25) = 0.5 ln(4/3) */
    float zs[2] = {(float)log(3.0), 0}, zt[2] = {0, 0};
    double kl = pl_distill_kl(1, 2, zs, zt, 1.0);
    cr_expect(fabs(kl - 0.5 * log(4.0 / 3.0)) < 1e-7, "%.10g", kl);
    /* at T 2 the same logits halve: student (sqrt 3, 1)/(1+sqrt 3) */
    double p = sqrt(3.0) / (1 + sqrt(3.0)), want = 0.5 * log(0.5 / p) + 0.5 * log(0.5 / (1 - p));
    kl = pl_distill_kl(1, 2, zs, zt, 2.0);
    cr_expect(fabs(kl - want) < 1e-7, "%.10g vs %.10g", kl, want);
    /* identical logits: 0 at any temperature */
    cr_expect(fabs(pl_distill_kl(1, 2, zs, zs, 3.0)) < 1e-12);
    /* loss combines (1-a)·CE + a·T²·KL */
    float dl[2] = {0.25f, -0.25f};
    double loss = 2.0;
    pl_distill_loss(1, 2, zs, zt, 0.25, 2.0, 1.0f, dl, &loss);
    cr_expect(fabs(loss - (0.75 * 2.0 + 0.25 * 4 * want)) < 1e-7, "%.10g", loss);
    /* gradient: 0.75·dl + 0.25·T·(p_s - p_t) */
    cr_expect(fabs(dl[0] - (0.75 * 0.25 + 0.25 * 2 * (p - 0.5))) < 1e-6, "%g", dl[0]);
}

/* central differences of full_loss against pl_distill_loss's gradient */
static void check_grad(double a, double T, double logit_scale, uint64_t seed)
{
    float zs[N * K], zt[N * K], dl[N * K];
    int32_t y[N] = {0, 3, 1, 4};
    random_logits(zs, N * K, seed, logit_scale);
    random_logits(zt, N * K, seed + 100, logit_scale);
    double loss = xent(zs, y, 1.0f, dl);
    pl_distill_loss(N, K, zs, zt, a, T, 1.0f, dl, &loss);
    double want = full_loss(zs, zt, y, a, T);
    cr_expect(fabs(loss - want) < 1e-9 * fmax(1, fabs(want)), "loss %.12g vs %.12g", loss, want);
    for (int i = 0; i < N * K; i++) {
        float keep = zs[i];
        double h = 1e-2 * fmax(1, fabs(keep));
        zs[i] = (float)(keep + h);
        double hp = zs[i] - keep, lp = full_loss(zs, zt, y, a, T);
        zs[i] = (float)(keep - h);
        double hm = keep - zs[i], lm = full_loss(zs, zt, y, a, T);
        zs[i] = keep;
        double fd = (lp - lm) / (hp + hm);
        cr_expect(fabs(fd - dl[i]) < 2e-3 * fmax(1, fabs(fd)), "a %g T %g logit %d: analytic %.8g, numeric %.8g",
                  a, T, i, dl[i], fd);
    }
}

Test(distill_loss, gradient_soft_term_only) { check_grad(1.0, 1.0, 3, 1); check_grad(1.0, 4.0, 5, 2); }
Test(distill_loss, gradient_mixed) { check_grad(0.5, 4.0, 3, 3); check_grad(0.3, 0.5, 2, 4); check_grad(0.9, 20, 8, 5); }
Test(distill_loss, gradient_hard_only) { check_grad(0.0, 3.0, 3, 6); }

Test(distill_loss, alpha_zero_is_cross_entropy_bit_for_bit)
{
    float zs[N * K], zt[N * K], dl[N * K], keep[N * K];
    int32_t y[N] = {2, 2, 0, 1};
    random_logits(zs, N * K, 9, 4);
    random_logits(zt, N * K, 10, 40);
    double T[] = {0.1, 1, 4, 100};
    for (int t = 0; t < 4; t++) {
        double loss = xent(zs, y, 0.25f, dl), want = loss;
        memcpy(keep, dl, sizeof dl);
        pl_distill_loss(N, K, zs, zt, 0.0, T[t], 0.25f, dl, &loss);
        cr_expect(!memcmp(keep, dl, sizeof dl), "T %g: the gradient changed", T[t]);
        cr_expect(!memcmp(&loss, &want, sizeof loss), "T %g: the loss changed", T[t]);
    }
}

/* softmax(z/T) as exp((z - max z)/T): a tiny T gives a finite loss and
 * gradient (z/T first overflowed to inf and inf - inf was NaN) */
Test(distill_loss, tiny_temperature_is_finite)
{
    float zs[N * K], zt[N * K], dl[N * K];
    int32_t y[N] = {1, 0, 4, 2};
    random_logits(zs, N * K, 21, 4);
    random_logits(zt, N * K, 22, 4);
    double loss = xent(zs, y, 1.0f, dl);
    pl_distill_loss(N, K, zs, zt, 0.5, 1e-3, 1.0f, dl, &loss);
    cr_expect(isfinite(loss), "T 1e-3: loss %g", loss);
    for (int i = 0; i < N * K; i++)
        cr_expect(isfinite(dl[i]), "T 1e-3: gradient %d is %g", i, dl[i]);
    /* a subnormal T with the teacher's logits equal to the student's: KL 0, gradient the hard term's */
    float keep[N * K];
    loss = xent(zs, y, 1.0f, dl);
    double want = loss;
    memcpy(keep, dl, sizeof dl);
    pl_distill_loss(N, K, zs, zs, 0.5, 1e-310, 1.0f, dl, &loss);
    cr_expect(isfinite(loss) && fabs(loss - 0.5 * want) < 1e-12 * fmax(1, want), "T 1e-310: loss %g, want %g", loss,
              0.5 * want);
    for (int i = 0; i < N * K; i++)
        cr_expect(isfinite(dl[i]) && fabs(dl[i] - 0.5f * keep[i]) < 1e-6f, "T 1e-310: gradient %d is %g", i, dl[i]);
}

/* any class count: the rows' workspace is on the heap (it was 1024 at most) */
Test(distill_loss, many_classes)
{
    enum { KB = 3000, NB = 2 };
    float *zs = malloc(sizeof(float) * KB * NB), *zt = malloc(sizeof(float) * KB * NB),
          *dl = calloc(KB * NB, sizeof(float));
    cr_assert(zs && zt && dl);
    random_logits(zs, KB * NB, 31, 3);
    random_logits(zt, KB * NB, 32, 3);
    double kl = pl_distill_kl(NB, KB, zs, zt, 2.0), self = pl_distill_kl(NB, KB, zs, zs, 2.0), loss = 0;
    cr_expect(isfinite(kl) && kl > 0, "KL over %d classes: %g", KB, kl);
    cr_expect(fabs(self) < 1e-12, "KL of a row with itself: %g", self);
    pl_distill_loss(NB, KB, zs, zt, 1.0, 2.0, 1.0f, dl, &loss);
    cr_expect(fabs(loss - 4.0 * kl) < 1e-9 * fmax(1, kl), "loss %.12g, want T^2 KL %.12g", loss, 4.0 * kl);
    double sum = 0;
    for (int i = 0; i < KB * NB; i++)
        sum += dl[i];
    cr_expect(fabs(sum) < 1e-4, "the soft gradient of a row sums to 0 (got %g)", sum);
    free(zs), free(zt), free(dl);
}

/* ---- a training phase with a teacher ------------------------------------------------ */

static pl_data *train_data(void)
{
    static pl_instance *ds;
    static pl_data data;
    pl_error err;
    if (!ds) {
        const char *kv[] = {"height=8", "width=8", "classes=4", "train_count=256", "test_count=64", NULL};
        ds = pltest_instance(PL_KIND_DATASET, "synthetic", kv, 3, 1);
        cr_assert_eq(pl_data_open(ds, PL_SPLIT_TRAIN, &data, &err), PL_OK, "%s", err.msg);
    }
    return &data;
}

/* a model of seed `seed` trained `epochs` epochs, with a teacher when given */
static pl_model *train_tiny(uint64_t seed, int epochs, const pl_distill_cfg *d, pl_model *teacher)
{
    pl_error err;
    pl_model *m = pltest_model(PLTEST_TINY_YAML, seed);
    pltest_bind_ref(m);
    pl_phase_cfg cfg = {.epochs = epochs, .batch_size = 24, /* 256 = 10 x 24 + 16: a short last batch */
                        .optim = {.type = PL_OPTIM_ADAM, .lr = 3e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                                  .lr_schedule = PL_LR_CONSTANT, .step_size = 1, .gamma = 0.1}};
    if (d)
        cfg.distill = *d;
    pl_train_opts o = {.progress = PL_PROGRESS_NONE, .teacher = teacher};
    pl_phase_stats st;
    cr_assert_eq(pl_train_phase(m, train_data(), &cfg, 7, "retrain", &o, &st, &err), PL_OK, "%s",
                 err.msg);
    return m;
}

Test(distill_train, alpha_zero_trains_as_plain_cross_entropy)
{
    pl_model *teacher = train_tiny(1, 2, NULL, NULL);
    pl_model *plain = train_tiny(2, 2, NULL, NULL);
    pl_distill_cfg z1 = {.enabled = 1, .alpha = 0, .temperature = 1}, z4 = {.enabled = 1, .alpha = 0, .temperature = 4};
    pl_model *a = train_tiny(2, 2, &z1, teacher), *b = train_tiny(2, 2, &z4, teacher);
    cr_expect(pltest_same_weights(plain, a, 1), "alpha 0, T 1 changed training");
    cr_expect(pltest_same_weights(plain, b, 1), "alpha 0, T 4 changed training");
    pl_distill_cfg half = {.enabled = 1, .alpha = 0.5, .temperature = 4};
    pl_model *c = train_tiny(2, 2, &half, teacher);
    cr_expect(!pltest_same_weights(plain, c, 1), "alpha 0.5 must change training");
    pl_model_free(teacher);
    pl_model_free(plain);
    pl_model_free(a);
    pl_model_free(b);
    pl_model_free(c);
}

Test(distill_train, alpha_one_pulls_the_student_to_the_teacher)
{
    /* with only the soft term the student's logits approach the teacher's
     * softened outputs: KL after training is below KL at the start */
    pl_model *teacher = train_tiny(1, 3, NULL, NULL);
    pl_model *start = pltest_model(PLTEST_TINY_YAML, 5);
    pl_distill_cfg one = {.enabled = 1, .alpha = 1, .temperature = 2};
    pl_model *student = train_tiny(5, 3, &one, teacher);
    pltest_bind_ref(start);
    float x[32 * 64];
    int32_t y[32];
    pl_error err;
    cr_assert_eq(pl_data_read(train_data(), NULL, 0, 32, x, y, &err), PL_OK, "%s", err.msg);
    double kl[2];
    pl_model *who[2] = {start, student};
    float zt[32 * 4];
    cr_assert_eq(pl_model_reserve(teacher, 32, &err), PL_OK);
    memcpy(zt, pl_model_infer(teacher, x, 32, &err), sizeof zt);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(pl_model_reserve(who[k], 32, &err), PL_OK);
        const float *zs = pl_model_infer(who[k], x, 32, &err);
        cr_assert(zs, "%s", err.msg);
        kl[k] = pl_distill_kl(32, 4, zs, zt, 2);
    }
    cr_expect_lt(kl[1], 0.5 * kl[0], "KL %g after vs %g before", kl[1], kl[0]);
    pl_model_free(teacher);
    pl_model_free(start);
    pl_model_free(student);
}

Test(distill_train, a_phase_with_distill_needs_a_teacher)
{
    pl_error err;
    pl_model *m = pltest_model(PLTEST_TINY_YAML, 3);
    pltest_bind_ref(m);
    pl_phase_cfg cfg = {.epochs = 1, .batch_size = 32,
                        .optim = {.type = PL_OPTIM_ADAM, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                                  .lr_schedule = PL_LR_CONSTANT},
                        .distill = {.enabled = 1, .alpha = 0.5, .temperature = 4}};
    pl_train_opts o = {.progress = PL_PROGRESS_NONE};
    pl_phase_stats st;
    cr_expect_eq(pl_train_phase(m, train_data(), &cfg, 7, "retrain", &o, &st, &err), PL_ECONFIG);
    cr_expect(strstr(err.msg, "teacher"), "%s", err.msg);
    pl_model_free(m);
}

/* ---- configuration ------------------------------------------------------------------ */

static const char *EXP =
    "name: d\n"
    "model: configs/models/simple_cnn.yaml\n"
    "dataset: {plugin: synthetic}\n"
    "train: {epochs: 1}\n"
    "prune: {criterion: l1, granularity: channel, sparsity: 0.5}\n"
    "retrain:\n"
    "  epochs: 1\n"
    "  distill: {alpha: 0.25, temperature: 3}\n";

Test(distill_config, decodes_and_is_part_of_the_identity)
{
    pl_experiment *x;
    pl_error err;
    cr_assert_eq(pltest_experiment_text(EXP, NULL, 0, &x, &err), PL_OK, "%s", err.msg);
    cr_expect(x->retrain.distill.enabled);
    cr_expect_eq(x->retrain.distill.alpha, 0.25);
    cr_expect_eq(x->retrain.distill.temperature, 3);
    cr_expect(!x->finetune.distill.enabled && !x->train.distill.enabled);
    char *d = pl_experiment_dump(x);
    cr_expect(strstr(d, "retrain.distill.alpha: 0.25\n"), "%s", d);
    cr_expect(strstr(d, "retrain.distill.temperature: 3\n"), "%s", d);
    free(d);
    char with[17], base1[17];
    memcpy(with, x->run_id, 17);
    pl_experiment_baseline_key(x, base1);
    pl_experiment_free(x);

    /* without distill (the key removed): another run, the same baseline */
    const char *plain = "name: d\nmodel: configs/models/simple_cnn.yaml\ndataset: {plugin: synthetic}\n"
                        "train: {epochs: 1}\nprune: {criterion: l1, granularity: channel, sparsity: 0.5}\n"
                        "retrain: {epochs: 1}\n";
    cr_assert_eq(pltest_experiment_text(plain, NULL, 0, &x, &err), PL_OK, "%s", err.msg);
    char base2[17];
    pl_experiment_baseline_key(x, base2);
    char *d2 = pl_experiment_dump(x);
    cr_expect(!strstr(d2, "distill"), "%s", d2);
    free(d2);
    cr_expect_str_neq(with, x->run_id, "a run with distill is another run than one without");
    cr_expect_str_eq(base1, base2, "the baseline (the teacher) is shared");
    pl_experiment_free(x);

    /* alpha 0 is still distill (the key is there): never the plain run's result */
    const char *zero[] = {"retrain.distill.alpha=0"};
    cr_assert_eq(pltest_experiment_text(EXP, zero, 1, &x, &err), PL_OK, "%s", err.msg);
    cr_expect_str_neq(with, x->run_id, "alpha is part of the identity");
    pl_experiment_free(x);
    const char *t[] = {"retrain.distill.temperature=2"};
    cr_assert_eq(pltest_experiment_text(EXP, t, 1, &x, &err), PL_OK, "%s", err.msg);
    cr_expect_str_neq(with, x->run_id, "temperature is part of the identity");
    pl_experiment_free(x);

    /* defaults: alpha 0.5, temperature 4; under finetune too */
    const char *fin[] = {"finetune.epochs=1", "finetune.distill.temperature=2"};
    cr_assert_eq(pltest_experiment_text(plain, fin, 2, &x, &err), PL_OK, "%s", err.msg);
    cr_expect(x->finetune.distill.enabled && !x->retrain.distill.enabled);
    cr_expect_eq(x->finetune.distill.alpha, 0.5);
    cr_expect_eq(x->finetune.distill.temperature, 2);
    pl_experiment_free(x);
}

Test(distill_config, bad_values_are_one_line_errors_at_the_key)
{
    struct { const char *text; const char *part; } c[] = {
        {"  distill: {alpha: 1.5, temperature: 3}\n", ":7:20: retrain.distill.alpha must be a number in [0, 1] (got 1.5)"},
        {"  distill: {alpha: -0.1}\n", ":7:20: retrain.distill.alpha must be a number in [0, 1]"},
        {"  distill: {temperature: 0}\n", ":7:26: retrain.distill.temperature must be a finite number > 0 (got 0)"},
        {"  distill: {temperature: -2}\n", "retrain.distill.temperature must be a finite number > 0"},
        {"  distill: {temperature: .inf}\n", "retrain.distill.temperature must be a finite number > 0"},
        {"  distill: {alpah: 0.5}\n", "unknown key 'alpah'"},
        {"  distill: 0.5\n", ":7:12: retrain.distill"},
    };
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        char text[1024];
        snprintf(text, sizeof text, "name: d\nmodel: configs/models/simple_cnn.yaml\ndataset: {plugin: synthetic}\n"
                 "train: {epochs: 1}\nprune: {criterion: l1, granularity: channel, sparsity: 0.5}\n"
                 "retrain:\n%s  epochs: 1\n", c[k].text);
        pl_experiment *x;
        pl_error err = {0};
        cr_expect_eq(pltest_experiment_text(text, NULL, 0, &x, &err), PL_ECONFIG, "%s was accepted", c[k].text);
        cr_expect(strstr(err.msg, c[k].part), "%s: '%s' lacks '%s'", c[k].text, err.msg, c[k].part);
        cr_expect(!strchr(err.msg, '\n'), "one line: %s", err.msg);
    }
    const char *under_train = "name: d\nmodel: configs/models/simple_cnn.yaml\ndataset: {plugin: synthetic}\n"
                              "train: {epochs: 1, distill: {alpha: 0.5}}\n";
    pl_experiment *x;
    pl_error err = {0};
    cr_expect_eq(pltest_experiment_text(under_train, NULL, 0, &x, &err), PL_ECONFIG);
    cr_expect(strstr(err.msg, ":4:") && strstr(err.msg, "train.distill: the baseline has no teacher"), "%s", err.msg);
}
