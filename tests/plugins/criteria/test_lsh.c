/*
 * The lsh criterion, loaded as a built plugin: identical and near-duplicate
 * units score lowest and their stronger twin keeps its norm; units in no
 * group score their L2 norm; scores are deterministic for a seed, finite,
 * and one per unit; identical twins collide whatever the seed, while the
 * seed does change the hashing; weight granularity falls back to |w|.
 *
 * Then merging (lsh_merge.h): folding a duplicate's outgoing weights into
 * its kept twin before removing it leaves the network's output unchanged,
 * for linear→linear, conv→conv (through ReLU and max-pooling) and
 * conv→flatten→linear, including a twin that is a scaled copy.
 */
#include "model.h"
#include "surgery.h"
#include "pltest.h"
#include "rng.h"

#include "../../../plugins/criteria/lsh/lsh_merge.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define UNITS 12
#define DIM 27 /* a 3x3x3 filter */

static pl_instance *lsh(uint64_t seed, const char *const *kv)
{
    return pltest_instance(PL_KIND_CRITERION, "lsh", kv, seed, 1);
}

/* UNITS random filters of DIM weights (a fixed stream), as a channel view. */
static float *random_filters(uint64_t stream_seed)
{
    float *w = malloc(UNITS * DIM * sizeof *w);
    cr_assert(w);
    pl_rng r;
    pl_rng_seed(&r, stream_seed, "test-lsh-filters");
    for (int i = 0; i < UNITS * DIM; i++)
        w[i] = (float)pl_rng_normal(&r);
    return w;
}

static pl_unit_view channel_view(const float *w, int64_t units, int64_t size)
{
    return (pl_unit_view){.layer = "conv1", .layer_type = PL_LAYER_CONV2D,
                          .granularity = PL_GRAN_CHANNEL, .units = units, .unit_size = size,
                          .weight = w, .shape = {units, size, 1, 1}};
}

/* Scores v; asserts success, the count, and nothing written past the end. */
static void score(pl_instance *in, const pl_unit_view *v, double *out)
{
    double *buf = malloc((size_t)(v->units + 1) * sizeof *buf);
    cr_assert(buf);
    buf[v->units] = -12345.0;
    int64_t n_out = -1;
    const pl_criterion_ops *ops = pl_instance_ops(in);
    pl_status st = ops->score(pl_instance_state(in), v, buf, &n_out);
    cr_assert_eq(st, PL_OK, "score: %s", pl_instance_take_error(in));
    cr_assert_eq(n_out, v->units);
    cr_assert_eq(buf[v->units], -12345.0, "wrote past the end");
    for (int64_t u = 0; u < v->units; u++)
        cr_assert(isfinite(buf[u]) && buf[u] >= 0.0, "unit %lld scored %g", (long long)u, buf[u]);
    memcpy(out, buf, (size_t)v->units * sizeof *out);
    free(buf);
}

static double norm(const float *w, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)w[i] * w[i];
    return sqrt(s);
}

static int64_t argmin(const double *s, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (s[i] < s[best])
            best = i;
    return best;
}

Test(lsh, identical_twins_one_scores_lowest)
{
    float *w = random_filters(1);
    memcpy(w + 9 * DIM, w + 4 * DIM, DIM * sizeof *w); /* unit 9 duplicates unit 4 */
    pl_instance *in = lsh(1, NULL);
    pl_unit_view v = channel_view(w, UNITS, DIM);
    double s[UNITS];
    score(in, &v, s);
    int64_t lo = argmin(s, UNITS);
    cr_expect_eq(lo, 9, "the later twin goes first (got unit %lld)", (long long)lo);
    cr_expect_leq(s[9], 1e-6 * norm(w + 4 * DIM, DIM), "an exact duplicate scores ~0, got %g", s[9]);
    cr_expect(fabs(s[4] - norm(w + 4 * DIM, DIM)) < 1e-9, "the kept twin keeps its norm");
    /* everything else is in no group here: its norm */
    for (int u = 0; u < UNITS; u++)
        if (u != 4 && u != 9)
            cr_expect(fabs(s[u] - norm(w + u * DIM, DIM)) < 1e-9, "unit %d: %g vs norm %g", u, s[u],
                      norm(w + u * DIM, DIM));
    pl_instance_free(in);
    free(w);
}

Test(lsh, stronger_twin_is_kept)
{
    float *w = random_filters(2);
    for (int i = 0; i < DIM; i++)
        w[7 * DIM + i] = 3.0f * w[2 * DIM + i]; /* unit 7 = 3 × unit 2: same direction, larger */
    pl_instance *in = lsh(5, NULL);
    pl_unit_view v = channel_view(w, UNITS, DIM);
    double s[UNITS];
    score(in, &v, s);
    cr_expect_eq(argmin(s, UNITS), 2);
    cr_expect(fabs(s[7] - norm(w + 7 * DIM, DIM)) < 1e-9);
    pl_instance_free(in);
    free(w);
}

Test(lsh, near_duplicate_scores_norm_times_one_minus_cosine)
{
    float *w = random_filters(3);
    pl_rng r;
    pl_rng_seed(&r, 99, "test-lsh-noise");
    for (int i = 0; i < DIM; i++) /* unit 11 ≈ 0.9 × unit 0, about 0.5% off in direction */
        w[11 * DIM + i] = 0.9f * w[i] + 0.005f * (float)pl_rng_normal(&r);
    pl_instance *in = lsh(1, NULL);
    pl_unit_view v = channel_view(w, UNITS, DIM);
    double s[UNITS];
    score(in, &v, s);
    double dot = 0, n0 = norm(w, DIM), n11 = norm(w + 11 * DIM, DIM);
    for (int i = 0; i < DIM; i++)
        dot += (double)w[i] * w[11 * DIM + i];
    double want = n11 * (1.0 - dot / (n0 * n11));
    cr_expect_eq(argmin(s, UNITS), 11);
    cr_expect(fabs(s[11] - want) <= 1e-9 * n11, "score %g, want %g", s[11], want);
    cr_expect(s[11] < 0.01 * n11);
    cr_expect(fabs(s[0] - n0) < 1e-9);
    pl_instance_free(in);
    free(w);
}

Test(lsh, deterministic_for_a_seed)
{
    float *w = random_filters(4);
    memcpy(w + 1 * DIM, w + 6 * DIM, DIM * sizeof *w);
    pl_instance *a = lsh(42, NULL), *b = lsh(42, NULL);
    pl_unit_view v = channel_view(w, UNITS, DIM);
    double sa[UNITS], sb[UNITS], sa2[UNITS];
    score(a, &v, sa);
    score(b, &v, sb);
    score(a, &v, sa2);
    cr_expect_eq(memcmp(sa, sb, sizeof sa), 0, "two instances with one seed agree bit for bit");
    cr_expect_eq(memcmp(sa, sa2, sizeof sa), 0, "scoring twice gives the same scores");
    pl_instance_free(a);
    pl_instance_free(b);
    free(w);
}

Test(lsh, identical_twins_collide_for_every_seed)
{
    float *w = random_filters(5);
    memcpy(w + 3 * DIM, w + 8 * DIM, DIM * sizeof *w); /* unit 3 duplicates unit 8 */
    pl_unit_view v = channel_view(w, UNITS, DIM);
    static const char *const strict[] = {"tables=6", "bits=16", "min_tables=6", NULL};
    for (uint64_t seed = 1; seed <= 40; seed++) {
        pl_instance *in = lsh(seed, seed % 2 ? NULL : strict);
        double s[UNITS];
        score(in, &v, s);
        int64_t lo = argmin(s, UNITS);
        cr_expect(lo == 3 || lo == 8, "seed %llu: lowest is unit %lld", (unsigned long long)seed,
                  (long long)lo);
        cr_expect_leq(s[lo], 1e-6 * norm(w + 8 * DIM, DIM));
        pl_instance_free(in);
    }
    free(w);
}

Test(lsh, seed_changes_the_hashing)
{
    /* two unit vectors at 60°: one 1-bit table collides with probability
     * 1 − 60/180 = 2/3, so over 40 seeds both outcomes must show up */
    float w[2 * 2] = {1.0f, 0.0f, 0.5f, 0.8660254f};
    pl_unit_view v = channel_view(w, 2, 2);
    static const char *const one_bit[] = {"tables=1", "bits=1", "min_tables=1", NULL};
    int grouped = 0, apart = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        pl_instance *in = lsh(seed, one_bit);
        double s[2];
        score(in, &v, s);
        if (s[1] < 0.99) /* 1 × (1 − cos 60°) = 0.5 when grouped, its norm 1 when not */
            grouped++;
        else
            apart++;
        pl_instance_free(in);
    }
    cr_expect_gt(grouped, 0, "never grouped in 40 seeds");
    cr_expect_gt(apart, 0, "always grouped in 40 seeds");
}

Test(lsh, orthogonal_units_score_their_norm)
{
    float w[6 * 6] = {0};
    for (int u = 0; u < 6; u++)
        w[u * 6 + u] = (float)(u + 1);
    pl_instance *in = lsh(3, (const char *const[]){"tables=4", "bits=12", "min_tables=3", NULL});
    pl_unit_view v = channel_view(w, 6, 6);
    double s[6];
    score(in, &v, s);
    for (int u = 0; u < 6; u++)
        cr_expect(fabs(s[u] - (u + 1)) < 1e-12, "unit %d: %g", u, s[u]);
    pl_instance_free(in);
}

Test(lsh, zero_and_masked_units)
{
    float *w = random_filters(6);
    float *mask = malloc(UNITS * DIM * sizeof *mask);
    cr_assert(mask);
    for (int i = 0; i < UNITS * DIM; i++)
        mask[i] = 1.0f;
    memset(w + 2 * DIM, 0, DIM * sizeof *w);      /* a dead unit */
    for (int i = 0; i < DIM; i++)
        mask[5 * DIM + i] = 0.0f;                /* a fully masked unit */
    pl_instance *in = lsh(1, NULL);
    pl_unit_view v = channel_view(w, UNITS, DIM);
    v.mask = mask;
    double s[UNITS];
    score(in, &v, s);
    cr_expect_eq(s[2], 0.0);
    cr_expect_eq(s[5], 0.0, "masked weights read as 0");
    /* an all-zero layer and a single unit score without error */
    memset(w, 0, UNITS * DIM * sizeof *w);
    v.mask = NULL;
    score(in, &v, s);
    for (int u = 0; u < UNITS; u++)
        cr_expect_eq(s[u], 0.0);
    float one[3] = {1, 2, 2};
    pl_unit_view v1 = channel_view(one, 1, 3);
    score(in, &v1, s);
    cr_expect(fabs(s[0] - 3.0) < 1e-12);
    pl_instance_free(in);
    free(mask);
    free(w);
}

Test(lsh, counts_and_finite_on_a_linear_layer)
{
    enum { OUT = 300, IN = 784 };
    float *w = malloc((size_t)OUT * IN * sizeof *w);
    cr_assert(w);
    pl_rng r;
    pl_rng_seed(&r, 7, "test-lsh-linear");
    for (int i = 0; i < OUT * IN; i++)
        w[i] = 0.05f * (float)pl_rng_normal(&r);
    for (int u = 0; u < 10; u++) /* ten duplicates of unit 0 */
        memcpy(w + (size_t)(100 + u) * IN, w, IN * sizeof *w);
    pl_unit_view v = {.layer = "fc1", .layer_index = 1, .layer_type = PL_LAYER_LINEAR,
                      .granularity = PL_GRAN_NEURON, .units = OUT, .unit_size = IN, .weight = w,
                      .shape = {OUT, IN, 1, 1}};
    pl_instance *in = lsh(1, NULL);
    double *s = malloc(OUT * sizeof *s);
    cr_assert(s);
    score(in, &v, s);
    int low = 0;
    for (int u = 0; u < OUT; u++)
        low += s[u] < 1e-6;
    cr_expect_eq(low, 10, "the ten duplicates score ~0, the original keeps its norm (got %d)", low);
    cr_expect_gt(s[0], 0.5);
    pl_instance_free(in);
    free(s);
    free(w);
}

Test(lsh, weight_granularity_is_magnitude)
{
    float w[5] = {-3, 0.5f, 0, 2, -1};
    float mask[5] = {1, 1, 1, 0, 1};
    pl_unit_view v = {.layer = "fc1", .layer_type = PL_LAYER_LINEAR, .granularity = PL_GRAN_WEIGHT,
                      .units = 5, .unit_size = 1, .weight = w, .mask = mask,
                      .shape = {5, 1, 1, 1}};
    pl_instance *in = lsh(1, NULL);
    double s[5];
    score(in, &v, s);
    const double want[5] = {3, 0.5, 0, 0, 1};
    for (int i = 0; i < 5; i++)
        cr_expect_eq(s[i], want[i], "weight %d: %g", i, s[i]);
    pl_instance_free(in);
}

Test(lsh, rejects_bad_views_and_params)
{
    pl_instance *in = lsh(1, NULL);
    const pl_criterion_ops *ops = pl_instance_ops(in);
    float w[2] = {1, NAN};
    pl_unit_view v = channel_view(w, 2, 1);
    double s[2];
    int64_t n;
    cr_expect_eq(ops->score(pl_instance_state(in), &v, s, &n), PL_EPLUGIN);
    cr_expect(strstr(pl_instance_take_error(in), "non-finite"));
    v.weight = NULL;
    cr_expect_eq(ops->score(pl_instance_state(in), &v, s, &n), PL_EINVAL);
    pl_instance_free(in);

    const pl_plugin *p;
    pl_error err;
    cr_assert_eq(pl_registry_find(pltest_registry(), PL_KIND_CRITERION, "lsh", &p, &err), PL_OK);
    pl_instance *bad = NULL;
    static const char *const too_many[] = {"tables=2", "min_tables=3", NULL};
    cr_expect_neq(pl_instance_new_kv(p, too_many, 1, 1, &bad, &err), PL_OK);
    cr_expect(strstr(err.msg, "min_tables"), "%s", err.msg);
    static const char *const range[] = {"bits=65", NULL};
    cr_expect_neq(pl_instance_new_kv(p, range, 1, 1, &bad, &err), PL_OK);
}

/* ---- merging -------------------------------------------------------------------- */

static const char merge_net[] =
    "name: merge_net\n"
    "input: [1, 8, 8]\n"
    "classes: 3\n"
    "layers:\n"
    "  - {name: conv1, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
    "  - {type: relu}\n"
    "  - {type: maxpool2d, kernel: 2}\n"
    "  - {name: conv2, type: conv2d, out: 6, kernel: 3, padding: 1}\n"
    "  - {type: relu}\n"
    "  - {type: maxpool2d, kernel: 2}\n"
    "  - {type: flatten}\n"
    "  - {name: fc1, type: linear, out: 10}\n"
    "  - {type: relu}\n"
    "  - {name: fc2, type: linear, out: 3}\n";

#define N_IMG 8

static float *forward(pl_model *m, const float *x)
{
    static pl_instance *be;
    if (!be)
        be = pltest_instance(PL_KIND_BACKEND, "ref", NULL, 1, 1);
    pl_error err;
    pl_model_bind(m, pl_instance_ops(be), pl_instance_state(be));
    cr_assert_eq(pl_model_reserve(m, N_IMG, &err), PL_OK, "%s", err.msg);
    const float *y = pl_model_forward(m, x, N_IMG, PL_MODE_EVAL, &err);
    cr_assert(y, "%s", err.msg);
    float *out = malloc((size_t)N_IMG * m->classes * sizeof *out);
    cr_assert(out);
    memcpy(out, y, (size_t)N_IMG * m->classes * sizeof *out);
    return out;
}

/* Makes unit `dup` of layer `name` = scale × unit `orig` (weights and bias),
 * checks lsh ranks the weaker of the two first, merges the weaker into the
 * stronger through the consumer `next` (its weight laid out as rows of
 * row_stride with `block` values per unit), removes it, and compares the
 * outputs on random inputs with the unmerged model's. */
static void check_merge(const char *name, int orig, int dup, float scale, const char *next,
                        int64_t block)
{
    pl_model *m = pltest_model(merge_net, 17);
    int li = pl_model_find(m, name), ni = pl_model_find(m, next);
    cr_assert(li >= 0 && ni >= 0);
    pl_layer *l = &m->layers[li], *nl = &m->layers[ni];
    const int U = l->out_c;
    const int64_t row = l->nw / U;
    l->b[orig] = fabsf(l->b[orig]) + 0.5f; /* alive on most inputs, so cutting it shows */
    for (int64_t i = 0; i < row; i++)
        l->w[dup * row + i] = scale * l->w[orig * row + i];
    l->b[dup] = scale * l->b[orig];

    float *x = malloc((size_t)N_IMG * 64 * sizeof *x);
    cr_assert(x);
    pl_rng r;
    pl_rng_seed(&r, 5, "test-lsh-merge-input");
    for (int i = 0; i < N_IMG * 64; i++)
        x[i] = (float)pl_rng_normal(&r);
    float *before = forward(m, x);

    /* the criterion finds the pair: the weaker twin scores lowest */
    pl_instance *in = lsh(1, NULL);
    pl_unit_view v = {.layer = l->name, .layer_index = li, .layer_type = l->type,
                      .granularity = l->type == PL_LAYER_CONV2D ? PL_GRAN_CHANNEL : PL_GRAN_NEURON,
                      .units = U, .unit_size = row, .weight = l->w, .bias = l->b,
                      .shape = {U, l->in_c, l->kh, l->kw}};
    double s[16];
    score(in, &v, s);
    const int weak = scale > 1.0f ? orig : dup, strong = scale > 1.0f ? dup : orig;
    cr_expect_eq(argmin(s, U), weak, "%s: lowest score is unit %lld, want %d", name,
                 (long long)argmin(s, U), weak);
    pl_instance_free(in);

    int64_t twin[16];
    uint8_t keep[16];
    for (int u = 0; u < U; u++) {
        twin[u] = -1;
        keep[u] = 1;
    }
    twin[weak] = strong;
    keep[weak] = 0;
    const int64_t n_rows = nl->out_c, row_stride = nl->nw / nl->out_c;
    cr_assert_eq(row_stride, U * block);
    cr_assert_eq(pl_lsh_merge_outgoing(l->w, l->b, U, row, twin, nl->w, n_rows, row_stride, block),
                 PL_OK);
    pl_error err;
    cr_assert_eq(pl_model_remove_units(m, li, keep, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(pl_model_reshape(m, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(m->layers[li].out_c, U - 1);
    float *after = forward(m, x);
    for (int i = 0; i < N_IMG * m->classes; i++)
        cr_expect(fabsf(after[i] - before[i]) <= 1e-5f * (1 + fabsf(before[i])),
                  "%s: logit %d before %g after %g", name, i, before[i], after[i]);

    /* without the merge, removing the twin does change the output */
    pl_model *plain = pltest_model(merge_net, 17);
    pl_layer *pl = &plain->layers[li];
    pl->b[orig] = fabsf(pl->b[orig]) + 0.5f;
    for (int64_t i = 0; i < row; i++)
        pl->w[dup * row + i] = scale * pl->w[orig * row + i];
    pl->b[dup] = scale * pl->b[orig];
    cr_assert_eq(pl_model_remove_units(plain, li, keep, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(pl_model_reshape(plain, &err), PL_OK, "%s", err.msg);
    float *cut = forward(plain, x);
    double diff = 0;
    for (int i = 0; i < N_IMG * m->classes; i++)
        diff = fmax(diff, fabs((double)cut[i] - before[i]));
    cr_expect_gt(diff, 1e-4, "%s: the test cannot tell merging from cutting (%g)", name, diff);

    free(x);
    free(before);
    free(after);
    free(cut);
    pl_model_free(m);
    pl_model_free(plain);
}

Test(lsh_merge, linear_to_linear_preserves_output)
{
    check_merge("fc1", 2, 7, 1.0f, "fc2", 1);
}

Test(lsh_merge, conv_to_conv_scaled_twin_preserves_output)
{
    check_merge("conv1", 1, 3, 0.5f, "conv2", 9);
}

Test(lsh_merge, conv_to_flatten_to_linear_preserves_output)
{
    check_merge("conv2", 0, 5, 2.0f, "fc1", 4);
}

Test(lsh_merge, rejects_bad_twin_maps)
{
    float in_w[3 * 2] = {1, 0, 1, 0, 0, 0}, out_w[2 * 3] = {1, 2, 3, 4, 5, 6}, copy[6];
    memcpy(copy, out_w, sizeof copy);
    const int64_t self[3] = {0, -1, -1}, chain[3] = {-1, 0, 1}, range[3] = {-1, 5, -1},
                  zero[3] = {2, -1, -1}, ok[3] = {-1, 0, -1};
    cr_expect_eq(pl_lsh_merge_outgoing(in_w, NULL, 3, 2, self, out_w, 2, 3, 1), PL_EINVAL);
    cr_expect_eq(pl_lsh_merge_outgoing(in_w, NULL, 3, 2, chain, out_w, 2, 3, 1), PL_EINVAL);
    cr_expect_eq(pl_lsh_merge_outgoing(in_w, NULL, 3, 2, range, out_w, 2, 3, 1), PL_EINVAL);
    cr_expect_eq(pl_lsh_merge_outgoing(in_w, NULL, 3, 2, zero, out_w, 2, 3, 1), PL_EINVAL,
                 "a twin with no weights cannot absorb anything");
    cr_expect_eq(memcmp(out_w, copy, sizeof copy), 0, "a refused merge leaves the weights alone");
    cr_expect_eq(pl_lsh_merge_outgoing(in_w, NULL, 3, 2, ok, out_w, 2, 3, 1), PL_OK);
    const float want[6] = {3, 0, 3, 9, 0, 6};
    cr_expect_eq(memcmp(out_w, want, sizeof want), 0);
}
