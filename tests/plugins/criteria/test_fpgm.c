/*
 * The fpgm criterion (geometric median, He et al. 2019) against
 * hand-computed distance sums: filters, neurons, single weights (the sorted
 * O(n log n) path against a direct O(n²) sum), masks, a unit equal to the
 * median scoring lowest although it is not the smallest, and the error
 * paths. The prunelab run at the end prunes through the host.
 */
#include "pltest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pl_instance *fpgm(void) { return pltest_instance(PL_KIND_CRITERION, "fpgm", NULL, 1, 1); }

static pl_status score(pl_instance *in, const pl_unit_view *v, double *scores, int64_t *n_out)
{
    const pl_criterion_ops *ops = pl_instance_ops(in);
    return ops->score(pl_instance_state(in), v, scores, n_out);
}

static pl_unit_view view(pl_granularity g, const float *w, int64_t units, int64_t unit_size)
{
    return (pl_unit_view){.layer = "conv1", .layer_type = g == PL_GRAN_NEURON ? PL_LAYER_LINEAR : PL_LAYER_CONV2D,
                          .granularity = g, .units = units, .unit_size = unit_size, .weight = w,
                          .shape = {units, unit_size, 1, 1}};
}

TestSuite(fpgm);

/* Three filters a = (0,0), b = (3,4), c = (6,8): |ab| = 5, |ac| = 10,
 * |bc| = 5, so a: 15, b: 10, c: 15. b is the geometric median and goes
 * first although a is the smallest (l1 would prune a). */
Test(fpgm, filters_near_the_median_score_lowest)
{
    static const float w[6] = {0, 0, 3, 4, 6, 8};
    pl_instance *in = fpgm();
    pl_unit_view v = view(PL_GRAN_CHANNEL, w, 3, 2);
    double s[4] = {-1, -1, -1, 12345};
    int64_t n = 0;
    cr_assert_eq(score(in, &v, s, &n), PL_OK);
    cr_assert_eq(n, 3);
    cr_assert_float_eq(s[0], 15.0, 1e-12);
    cr_assert_float_eq(s[1], 10.0, 1e-12);
    cr_assert_float_eq(s[2], 15.0, 1e-12);
    cr_assert_eq(s[3], 12345, "wrote past the last unit");
    pl_instance_free(in);
}

/* Neurons of 3 inputs; one is an exact copy of another: the copies are
 * each at distance 0 from the other. */
Test(fpgm, neurons_with_hand_sums)
{
    static const float w[9] = {1, 2, 2, 1, 2, 2, -1, -2, -2};
    /* |n0 n1| = 0, |n0 n2| = |n1 n2| = 6 */
    pl_instance *in = fpgm();
    pl_unit_view v = view(PL_GRAN_NEURON, w, 3, 3);
    double s[3];
    int64_t n;
    cr_assert_eq(score(in, &v, s, &n), PL_OK);
    cr_assert_float_eq(s[0], 6.0, 1e-12);
    cr_assert_float_eq(s[1], 6.0, 1e-12);
    cr_assert_float_eq(s[2], 12.0, 1e-12);
    pl_instance_free(in);
}

/* Masked weights are zeros: masking (3,4) turns b into a copy of a. */
Test(fpgm, masked_weights_count_as_zero)
{
    static const float w[6] = {0, 0, 3, 4, 6, 8};
    static const float mask[6] = {1, 1, 0, 0, 1, 1};
    pl_instance *in = fpgm();
    pl_unit_view v = view(PL_GRAN_CHANNEL, w, 3, 2);
    v.mask = mask;
    double s[3];
    int64_t n;
    cr_assert_eq(score(in, &v, s, &n), PL_OK);
    cr_assert_float_eq(s[0], 10.0, 1e-12);
    cr_assert_float_eq(s[1], 10.0, 1e-12);
    cr_assert_float_eq(s[2], 20.0, 1e-12);
    pl_instance_free(in);
}

/* Single weights [1, -2, 4, 0]: Σ|x - y| = 7, 11, 13, 7. */
Test(fpgm, single_weights_hand_sums)
{
    static const float w[4] = {1, -2, 4, 0};
    pl_instance *in = fpgm();
    pl_unit_view v = view(PL_GRAN_WEIGHT, w, 4, 1);
    double s[4];
    int64_t n;
    cr_assert_eq(score(in, &v, s, &n), PL_OK);
    cr_assert_eq(n, 4);
    const double want[4] = {7, 11, 13, 7};
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(s[i], want[i], 1e-12, "weight %d: %g", i, s[i]);
    pl_instance_free(in);
}

/* The sorted path equals the direct pairwise sum on a random layer with
 * ties and masks. */
Test(fpgm, single_weights_match_the_direct_sum)
{
    enum { N = 1000 };
    float *w = malloc(N * sizeof *w), *mask = malloc(N * sizeof *mask);
    double *s = malloc(N * sizeof *s);
    srand(7);
    for (int i = 0; i < N; i++) {
        w[i] = (float)((rand() % 200) - 100) / 16.0f; /* many ties */
        mask[i] = i % 7 == 3 ? 0.0f : 1.0f;
    }
    pl_instance *in = fpgm();
    pl_unit_view v = view(PL_GRAN_WEIGHT, w, N, 1);
    v.mask = mask;
    int64_t n;
    cr_assert_eq(score(in, &v, s, &n), PL_OK);
    for (int i = 0; i < N; i++) {
        double want = 0, xi = mask[i] ? w[i] : 0;
        for (int j = 0; j < N; j++)
            want += fabs(xi - (mask[j] ? w[j] : 0));
        cr_assert_float_eq(s[i], want, 1e-9 * (1 + want), "weight %d: %.17g vs %.17g", i, s[i], want);
    }
    free(w);
    free(mask);
    free(s);
    pl_instance_free(in);
}

Test(fpgm, one_unit_and_all_equal_units_score_zero)
{
    static const float w[6] = {2, 2, 2, 2, 2, 2};
    pl_instance *in = fpgm();
    double s[6];
    int64_t n;
    pl_unit_view one = view(PL_GRAN_LAYER, w, 1, 6);
    cr_assert_eq(score(in, &one, s, &n), PL_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(s[0], 0.0);
    pl_unit_view eq = view(PL_GRAN_CHANNEL, w, 3, 2);
    cr_assert_eq(score(in, &eq, s, &n), PL_OK);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(s[i], 0.0);
    pl_unit_view ws = view(PL_GRAN_WEIGHT, w, 6, 1);
    cr_assert_eq(score(in, &ws, s, &n), PL_OK);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(s[i], 0.0);
    pl_instance_free(in);
}

Test(fpgm, bad_views_and_non_finite_weights_are_errors)
{
    static const float w[4] = {1, NAN, 0, 0};
    pl_instance *in = fpgm();
    double s[4];
    int64_t n;
    pl_unit_view v = view(PL_GRAN_CHANNEL, w, 2, 2);
    cr_assert_eq(score(in, &v, s, &n), PL_EPLUGIN);
    const char *msg = pl_instance_take_error(in);
    cr_assert(strstr(msg, "conv1") && strstr(msg, "non-finite weight at index 1"), "%s", msg);
    v.units = 0;
    cr_assert_eq(score(in, &v, s, &n), PL_EINVAL);
    cr_assert(pl_instance_take_error(in)[0]);
    cr_assert_eq(score(in, NULL, s, &n), PL_EINVAL);
    pl_instance_free(in);
}

/* Through the host: a channel-pruning run with fpgm on the synthetic data. */
Test(fpgm, prunes_a_model_end_to_end)
{
    char *x = pltest_write_temp("name: fpgm_e2e\n"
                                "model: configs/models/simple_cnn.yaml\n"
                                "dataset: {plugin: synthetic, train_count: 512, test_count: 256}\n"
                                "train: {epochs: 1}\n"
                                "prune: {criterion: fpgm, granularity: channel, schedule: oneshot, sparsity: 0.5}\n"
                                "retrain: {epochs: 1}\n",
                                ".yaml");
    char *dir = pltest_tmpdir();
    char cmd[8400], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' run '%s' --out '%s/r' --threads 1 --quiet", pltest_exe(), x, dir);
    int rc = pltest_run(cmd, &out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "fpgm"), "%s", out);
    cr_assert(strstr(out, "0.5000 | 0.5000"), "target and achieved sparsity: %s", out);
    free(out);
    free(x);
    free(dir);
}
