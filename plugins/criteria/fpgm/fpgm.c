/*
 * fpgm — filter pruning via the geometric median (He et al., CVPR 2019):
 * score(u) = Σ_j ‖w_u − w_j‖₂ over all units j of the layer.
 *
 * The geometric median of a layer's units minimises exactly that sum, so
 * the units with the lowest scores are the ones nearest to it: what they
 * compute is best represented by the others, and they go first. Unlike
 * l1/l2, a large unit can be pruned if others resemble it, and a small one
 * kept if it is unlike the rest.
 *
 * Channel/neuron granularity compares whole filters or neurons (pairwise
 * distances in double, each pair once, index order: O(units² · unit_size)).
 * Weight granularity applies the same rule to single weights, where the
 * distance sum Σ_j |w_u − w_j| is computed exactly from the sorted values
 * and their prefix sums in O(n log n). A layer scored as one unit (layer
 * granularity) has no other unit to compare with and scores 0.
 *
 * Masked weights are zero (already pruned) and are compared as zeros;
 * biases are not part of a unit. Non-finite weights are an error.
 */
#include <prunelab/plugin.h>

#include <math.h>
#include <stdlib.h>

static pl_status fpgm_init(const pl_env *env, void **state)
{
    *state = (void *)env;
    return PL_OK;
}

static float fpgm_w(const pl_unit_view *v, int64_t i)
{
    return v->mask && v->mask[i] == 0.0f ? 0.0f : v->weight[i];
}

typedef struct fpgm_item {
    double x;
    int64_t i;
} fpgm_item;

static int fpgm_cmp(const void *a, const void *b)
{
    const fpgm_item *p = a, *q = b;
    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    return p->i < q->i ? -1 : p->i > q->i; /* a total order: qsort is not stable */
}

/* Σ_j |x_u − x_j| for every u, from sorted values: for the value at rank k,
 * x·k − (sum below) + (sum above) − x·(n − k − 1). */
static pl_status fpgm_scalar(const pl_env *env, const pl_unit_view *v, double *scores)
{
    const int64_t n = v->units;
    fpgm_item *it = env->api->alloc((size_t)n * sizeof *it);
    if (!it) {
        env->api->set_error(env->ctx, "layer '%s': out of memory sorting %lld weights", v->layer, (long long)n);
        return PL_ENOMEM;
    }
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        it[i].x = fpgm_w(v, i);
        it[i].i = i;
    }
    qsort(it, (size_t)n, sizeof *it, fpgm_cmp);
    for (int64_t k = 0; k < n; k++)
        total += it[k].x;
    double below = 0.0;
    for (int64_t k = 0; k < n; k++) {
        const double x = it[k].x, above = total - below - x;
        const double s = x * (double)k - below + above - x * (double)(n - k - 1);
        scores[it[k].i] = s > 0.0 ? s : 0.0; /* rounding can make an all-equal layer's 0 negative */
        below += x;
    }
    env->api->free(it);
    return PL_OK;
}

static pl_status fpgm_score(void *state, const pl_unit_view *v, double *scores, int64_t *n_out)
{
    const pl_env *env = state;
    if (!v || !scores || !n_out || !v->weight || v->units <= 0 || v->unit_size <= 0 ||
        v->units > INT64_MAX / v->unit_size) {
        env->api->set_error(env->ctx, "score() called with an invalid unit view");
        return PL_EINVAL;
    }
    const int64_t U = v->units, S = v->unit_size;
    for (int64_t i = 0; i < U * S; i++)
        if (!isfinite(v->weight[i])) {
            env->api->set_error(env->ctx, "layer '%s': non-finite weight at index %lld", v->layer ? v->layer : "?",
                                (long long)i);
            return PL_EPLUGIN;
        }
    *n_out = U;
    if (S == 1)
        return fpgm_scalar(env, v, scores);
    for (int64_t u = 0; u < U; u++)
        scores[u] = 0.0;
    for (int64_t a = 0; a < U; a++)
        for (int64_t b = a + 1; b < U; b++) {
            double d2 = 0.0;
            for (int64_t k = 0; k < S; k++) {
                const double d = (double)fpgm_w(v, a * S + k) - (double)fpgm_w(v, b * S + k);
                d2 += d * d;
            }
            const double d = sqrt(d2);
            scores[a] += d;
            scores[b] += d;
        }
    return PL_OK;
}

static const pl_criterion_ops fpgm_ops = {
    .needs = 0,
    .score = fpgm_score,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_CRITERION,
    .name = "fpgm",
    .version = "1.0.0",
    .description = "geometric median (He et al. 2019): sum of L2 distances to the layer's other units; near the median = redundant",
    .params = NULL,
    .init = fpgm_init,
    .fini = NULL,
    .ops = &fpgm_ops,
    .reserved = {0},
};
