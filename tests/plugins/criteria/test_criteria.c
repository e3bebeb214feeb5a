/*
 * The l1, l2, random and taylor criteria, loaded as built plugins, against
 * hand-computed scores at every granularity (weight, channel, neuron,
 * layer), with masks, and on the error paths (bad views, non-finite
 * weights, taylor without gradients).
 */
#include "pltest.h"

#include <math.h>
#include <string.h>

#define EPS 1e-12

static const char *const all_criteria[] = {"l1", "l2", "random", "taylor"};
#define N_CRITERIA (sizeof all_criteria / sizeof all_criteria[0])

/* A conv weight [cout 3][cin 2][kh 2][kw 2]: one filter per row of 8.
 * filter 0: l1 8, l2 sqrt 8; filter 1: l1 1, l2 sqrt 0.5; filter 2: l1 7, l2 5. */
static const float conv_w[24] = {
    1, -1, 1, -1, 1, -1, 1, -1,
    0.5f, 0, 0, 0, 0, 0, 0, -0.5f,
    3, 4, 0, 0, 0, 0, 0, 0,
};
static const float conv_b[3] = {100, -100, 100}; /* never scored */

/* A linear weight [out 4][in 3]: rows l1 5, 7, 0, 11; l2 3, 5, 0, 7.
 * As one layer: l1 23, l2 sqrt 83. */
static const float lin_w[12] = {
    1, 2, 2,
    -3, 0, 4,
    0, 0, 0,
    2, -6, 3,
};
static const float lin_b[4] = {9, 9, 9, 9};

static pl_unit_view view_weight(const float *w, int64_t n)
{
    return (pl_unit_view){.layer = "fc", .layer_type = PL_LAYER_LINEAR,
                          .granularity = PL_GRAN_WEIGHT, .units = n, .unit_size = 1,
                          .weight = w, .shape = {n, 1, 1, 1}};
}

static pl_unit_view view_channel(void)
{
    return (pl_unit_view){.layer = "conv1", .layer_type = PL_LAYER_CONV2D,
                          .granularity = PL_GRAN_CHANNEL, .units = 3, .unit_size = 8,
                          .weight = conv_w, .bias = conv_b, .shape = {3, 2, 2, 2}};
}

static pl_unit_view view_neuron(void)
{
    return (pl_unit_view){.layer = "fc1", .layer_index = 2, .layer_type = PL_LAYER_LINEAR,
                          .granularity = PL_GRAN_NEURON, .units = 4, .unit_size = 3,
                          .weight = lin_w, .bias = lin_b, .shape = {4, 3, 1, 1}};
}

static pl_unit_view view_layer(void)
{
    return (pl_unit_view){.layer = "fc1", .layer_index = 2, .layer_type = PL_LAYER_LINEAR,
                          .granularity = PL_GRAN_LAYER, .units = 1, .unit_size = 12,
                          .weight = lin_w, .shape = {4, 3, 1, 1}};
}

static pl_instance *criterion(const char *name, uint64_t seed)
{
    return pltest_instance(PL_KIND_CRITERION, name, NULL, seed, 1);
}

static const pl_criterion_ops *ops_of(pl_instance *in)
{
    return pl_instance_ops(in);
}

static pl_status score(pl_instance *in, const pl_unit_view *v, double *scores, int64_t *n_out)
{
    return ops_of(in)->score(pl_instance_state(in), v, scores, n_out);
}

/* Scores v with criterion `name` and compares with want[0..v->units);
 * checks n_out and that nothing past the last unit is written. */
static void expect_scores(const char *name, const pl_unit_view *v, const double *want)
{
    pl_instance *in = criterion(name, 1);
    double got[64];
    cr_assert_leq(v->units, 63);
    for (int i = 0; i < 64; i++)
        got[i] = -7.0;
    int64_t n = -1;
    cr_assert_eq(score(in, v, got, &n), PL_OK, "%s: %s", name, pl_instance_take_error(in));
    cr_assert_eq(n, v->units, "%s: n_out %lld, want %lld", name, (long long)n, (long long)v->units);
    for (int64_t u = 0; u < v->units; u++)
        cr_expect(fabs(got[u] - want[u]) <= EPS * (1 + fabs(want[u])),
                  "%s %s unit %lld: got %.17g want %.17g", name, v->layer, (long long)u, got[u], want[u]);
    cr_expect_eq(got[v->units], -7.0, "%s wrote past its units", name);
    pl_instance_free(in);
}

/* ---- l1 / l2 -------------------------------------------------------------- */

Test(criteria, l1_weight)
{
    static const float w[6] = {1, -2, 3, -4, 0.5f, -0.25f};
    pl_unit_view v = view_weight(w, 6);
    expect_scores("l1", &v, (double[]){1, 2, 3, 4, 0.5, 0.25});
    expect_scores("l2", &v, (double[]){1, 2, 3, 4, 0.5, 0.25});
}

Test(criteria, l1_l2_channel)
{
    pl_unit_view v = view_channel();
    expect_scores("l1", &v, (double[]){8, 1, 7});
    expect_scores("l2", &v, (double[]){sqrt(8.0), sqrt(0.5), 5});
}

Test(criteria, l1_l2_neuron)
{
    pl_unit_view v = view_neuron();
    expect_scores("l1", &v, (double[]){5, 7, 0, 11});
    expect_scores("l2", &v, (double[]){3, 5, 0, 7});
}

Test(criteria, l1_l2_layer)
{
    pl_unit_view v = view_layer();
    expect_scores("l1", &v, (double[]){23});
    expect_scores("l2", &v, (double[]){sqrt(83.0)});
}

Test(criteria, l1_l2_biases_do_not_count)
{
    pl_unit_view v = view_neuron();
    static const float huge_b[4] = {1e6f, -1e6f, 1e6f, 0};
    v.bias = huge_b;
    expect_scores("l1", &v, (double[]){5, 7, 0, 11});
}

Test(criteria, masks_are_respected)
{
    /* weight: masked weights score 0 */
    static const float w[6] = {1, -2, 3, -4, 0.5f, -0.25f};
    static const float m[6] = {1, 0, 1, 1, 0, 1};
    pl_unit_view v = view_weight(w, 6);
    v.mask = m;
    expect_scores("l1", &v, (double[]){1, 0, 3, 4, 0, 0.25});
    expect_scores("l2", &v, (double[]){1, 0, 3, 4, 0, 0.25});

    /* channel: filter 2 loses its 4 -> l1 3, l2 3; filter 0 loses two 1s */
    float cm[24];
    for (int i = 0; i < 24; i++)
        cm[i] = 1;
    cm[17] = 0;
    cm[0] = cm[1] = 0;
    pl_unit_view c = view_channel();
    c.mask = cm;
    expect_scores("l1", &c, (double[]){6, 1, 3});
    expect_scores("l2", &c, (double[]){sqrt(6.0), sqrt(0.5), 3});
}

/* ---- random --------------------------------------------------------------- */

static void random_scores(pl_instance *in, const pl_unit_view *v, double *out)
{
    int64_t n = 0;
    cr_assert_eq(score(in, v, out, &n), PL_OK, "%s", pl_instance_take_error(in));
    cr_assert_eq(n, v->units);
}

Test(criteria, random_is_the_documented_stream)
{
    pl_instance *in = criterion("random", 42);
    pl_unit_view v = view_channel();
    double got[3];
    random_scores(in, &v, got);
    const pl_host_api *api = pl_host_api_get();
    pl_rng r;
    api->rng_seed(&r, 42, "random:conv1:channel");
    for (int u = 0; u < 3; u++) {
        const double want = 1.0 - api->rng_uniform(&r);
        cr_expect_eq(got[u], want, "unit %d: got %.17g want %.17g", u, got[u], want);
        cr_expect(got[u] > 0 && got[u] <= 1);
    }
    pl_instance_free(in);
}

Test(criteria, random_deterministic_and_independent_of_other_layers)
{
    float w[50];
    for (int i = 0; i < 50; i++)
        w[i] = (float)i;
    pl_unit_view a = view_weight(w, 50), b = view_weight(w, 50);
    a.layer = "conv2";
    b.layer = "fc1";

    double a1[50], a2[50], a3[50], b1[50];
    pl_instance *in = criterion("random", 7);
    random_scores(in, &a, a1);
    random_scores(in, &b, b1); /* another layer scored in between */
    random_scores(in, &a, a2);
    pl_instance_free(in);
    in = criterion("random", 7); /* a fresh instance that never saw fc1 */
    random_scores(in, &a, a3);
    pl_instance_free(in);
    cr_expect(memcmp(a1, a2, sizeof a1) == 0, "same view, same seed: same scores");
    cr_expect(memcmp(a1, a3, sizeof a1) == 0, "scores must not depend on other layers");
    cr_expect(memcmp(a1, b1, sizeof a1) != 0, "another layer gets another stream");
    for (int i = 0; i < 50; i++)
        cr_expect(a1[i] > 0 && a1[i] <= 1);
}

Test(criteria, random_differs_by_seed_and_granularity)
{
    float w[12];
    memcpy(w, lin_w, sizeof w);
    pl_unit_view v = view_weight(w, 12);
    v.layer = "fc1";
    double s1[12], s2[12], s3[12];
    pl_instance *in1 = criterion("random", 1), *in2 = criterion("random", 2);
    random_scores(in1, &v, s1);
    random_scores(in2, &v, s2);
    cr_expect(memcmp(s1, s2, sizeof s1) != 0, "seed 1 and seed 2 must differ");
    /* fc1 by neuron: not the first 4 draws of the weight stream */
    pl_unit_view n = view_neuron();
    random_scores(in1, &n, s3);
    cr_expect(memcmp(s1, s3, 4 * sizeof(double)) != 0, "granularity is part of the stream");
    pl_instance_free(in1);
    pl_instance_free(in2);
}

Test(criteria, random_fully_masked_unit_scores_zero)
{
    pl_unit_view v = view_neuron();
    float m[12];
    for (int i = 0; i < 12; i++)
        m[i] = 1;
    m[3] = m[4] = m[5] = 0; /* neuron 1 fully pruned */
    m[9] = 0;               /* neuron 3 partly */
    double plain[4], masked[4];
    pl_instance *in = criterion("random", 3);
    random_scores(in, &v, plain);
    v.mask = m;
    random_scores(in, &v, masked);
    pl_instance_free(in);
    cr_expect_eq(masked[1], 0.0);
    cr_expect_eq(masked[0], plain[0], "masking one unit must not shift the others");
    cr_expect_eq(masked[2], plain[2]);
    cr_expect_eq(masked[3], plain[3]);
}

Test(criteria, random_layer_granularity)
{
    pl_unit_view v = view_layer();
    double s[1];
    pl_instance *in = criterion("random", 5);
    random_scores(in, &v, s);
    pl_instance_free(in);
    cr_expect(s[0] > 0 && s[0] <= 1);
}

/* ---- taylor ----------------------------------------------------------------
 * lin_w with two gradient batches:
 *   G1 = all ones           -> t1 = row sums      = 5, 1, 0, -1
 *   G2 = picks w00 and w32  -> t2                 = 1, 0, 0, 3
 *   importance = (t1² + t2²) / 2                  = 13, 0.5, 0, 5
 * as one layer: t1 = 5, t2 = 4 -> 20.5 */
static const float g1[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
static const float g2[12] = {1, 0, 0, 0, 1, 0, 1, 1, 1, 0, 0, 1};
static const float *const two_grads[2] = {g1, g2};

static pl_unit_view with_grads(pl_unit_view v)
{
    v.n_grads = 2;
    v.grads = two_grads;
    return v;
}

Test(criteria, taylor_declares_needs_grad)
{
    for (size_t k = 0; k < N_CRITERIA; k++) {
        pl_instance *in = criterion(all_criteria[k], 1);
        const unsigned want = strcmp(all_criteria[k], "taylor") == 0 ? PL_NEEDS_GRAD : 0u;
        cr_expect_eq(ops_of(in)->needs, want, "%s needs", all_criteria[k]);
        pl_instance_free(in);
    }
}

Test(criteria, taylor_neuron_and_layer)
{
    pl_unit_view n = with_grads(view_neuron());
    expect_scores("taylor", &n, (double[]){13, 0.5, 0, 5});
    pl_unit_view l = with_grads(view_layer());
    expect_scores("taylor", &l, (double[]){20.5});
}

Test(criteria, taylor_weight)
{
    /* first row: w {1,2,2}; (w·g1)² = 1,4,4; (w·g2)² = 1,0,0 -> 1, 2, 2 */
    pl_unit_view v = with_grads(view_weight(lin_w, 3));
    expect_scores("taylor", &v, (double[]){1, 2, 2});
}

Test(criteria, taylor_channel)
{
    /* one batch of ones and one of twos: t2 = 2·t1, importance = 2.5·t1²;
     * filter sums: 0, 0, 7 */
    float ones[24], twos[24];
    for (int i = 0; i < 24; i++) {
        ones[i] = 1;
        twos[i] = 2;
    }
    const float *const gs[2] = {ones, twos};
    pl_unit_view v = view_channel();
    v.n_grads = 2;
    v.grads = gs;
    expect_scores("taylor", &v, (double[]){0, 0, 2.5 * 49});
}

Test(criteria, taylor_mask)
{
    float m[12];
    for (int i = 0; i < 12; i++)
        m[i] = 1;
    m[0] = 0; /* row 0 loses w00: t1 = 4, t2 = 0 -> 8 */
    pl_unit_view v = with_grads(view_neuron());
    v.mask = m;
    expect_scores("taylor", &v, (double[]){8, 0.5, 0, 5});
}

Test(criteria, taylor_batches_param)
{
    static const char *const kv[] = {"batches=4", NULL};
    pl_instance *in = pltest_instance(PL_KIND_CRITERION, "taylor", kv, 1, 1);
    const pl_plugin_desc *d = pl_plugin_get_desc(pl_instance_plugin(in));
    cr_assert(d->params && d->params[0].name);
    cr_expect_str_eq(d->params[0].name, "batches");
    cr_expect_str_eq(d->params[0].def, "8");
    pl_instance_free(in);

    const pl_plugin *p;
    pl_error err;
    cr_assert_eq(pl_registry_find(pltest_registry(), PL_KIND_CRITERION, "taylor", &p, &err), PL_OK);
    static const char *const zero[] = {"batches=0", NULL};
    pl_instance *bad = NULL;
    cr_expect_neq(pl_instance_new_kv(p, zero, 1, 1, &bad, &err), PL_OK, "batches=0 must be refused");
    pl_instance_free(bad);
}

Test(criteria, taylor_without_grads_errors)
{
    pl_instance *in = criterion("taylor", 1);
    pl_unit_view v = view_neuron();
    double s[4];
    int64_t n = 0;
    cr_expect_eq(score(in, &v, s, &n), PL_EPLUGIN);
    const char *msg = pl_instance_take_error(in);
    cr_expect(strstr(msg, "taylor needs gradients") != NULL, "message: %s", msg);
    pl_instance_free(in);
}

Test(criteria, taylor_nonfinite_gradient_errors)
{
    float g[12];
    memcpy(g, g1, sizeof g);
    g[7] = NAN;
    const float *const gs[2] = {g1, g};
    pl_unit_view v = view_neuron();
    v.n_grads = 2;
    v.grads = gs;
    pl_instance *in = criterion("taylor", 1);
    double s[4];
    int64_t n = 0;
    cr_expect_eq(score(in, &v, s, &n), PL_EPLUGIN);
    cr_expect(strstr(pl_instance_take_error(in), "gradient") != NULL);
    pl_instance_free(in);
}

/* ---- errors common to all criteria ------------------------------------------ */

Test(criteria, nonfinite_weight_errors)
{
    const float bad_values[2] = {NAN, INFINITY};
    for (size_t k = 0; k < N_CRITERIA; k++) {
        for (int b = 0; b < 2; b++) {
            float w[12];
            memcpy(w, lin_w, sizeof w);
            w[5] = bad_values[b];
            pl_unit_view v = with_grads(view_neuron());
            v.weight = w;
            pl_instance *in = criterion(all_criteria[k], 1);
            double s[4];
            int64_t n = 0;
            cr_expect_eq(score(in, &v, s, &n), PL_EPLUGIN, "%s with %g", all_criteria[k], w[5]);
            const char *msg = pl_instance_take_error(in);
            cr_expect(strstr(msg, "non-finite") != NULL, "%s: %s", all_criteria[k], msg);
            pl_instance_free(in);
        }
    }
}

Test(criteria, invalid_views_are_einval)
{
    for (size_t k = 0; k < N_CRITERIA; k++) {
        pl_instance *in = criterion(all_criteria[k], 1);
        double s[4];
        int64_t n = 0;
        pl_unit_view v = with_grads(view_neuron());
        v.units = 0;
        cr_expect_eq(score(in, &v, s, &n), PL_EINVAL, "%s units 0", all_criteria[k]);
        v = with_grads(view_neuron());
        v.units = -1;
        cr_expect_eq(score(in, &v, s, &n), PL_EINVAL, "%s units -1", all_criteria[k]);
        v = with_grads(view_neuron());
        v.unit_size = 0;
        cr_expect_eq(score(in, &v, s, &n), PL_EINVAL, "%s unit_size 0", all_criteria[k]);
        v = with_grads(view_neuron());
        v.weight = NULL;
        cr_expect_eq(score(in, &v, s, &n), PL_EINVAL, "%s weight NULL", all_criteria[k]);
        cr_expect(pl_instance_take_error(in)[0] != 0, "%s explains", all_criteria[k]);
        v = with_grads(view_neuron());
        v.units = INT64_MAX / 2;
        cr_expect_eq(score(in, &v, s, &n), PL_EINVAL, "%s size overflow", all_criteria[k]);
        pl_instance_free(in);
    }
}

Test(criteria, descriptions_mention_biases)
{
    for (size_t k = 0; k < N_CRITERIA; k++) {
        if (strcmp(all_criteria[k], "random") == 0)
            continue;
        pl_instance *in = criterion(all_criteria[k], 1);
        const pl_plugin_desc *d = pl_plugin_get_desc(pl_instance_plugin(in));
        cr_expect(strstr(d->description, "biases") != NULL, "%s: %s", d->name, d->description);
        pl_instance_free(in);
    }
}
