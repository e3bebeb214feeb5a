/*
 * l2 — magnitude criterion: score(u) = sqrt(Σ_{w∈u} w²), the unit's L2 norm.
 *
 * Same shape as l1.c (read that first): one loop over the unit-major view
 * serves every granularity; biases are not scored; masked weights (mask ==
 * 0) contribute nothing; a bad view is PL_EINVAL and a non-finite weight
 * PL_EPLUGIN, so no score is ever NaN. Squares are summed in double, in
 * index order (float weights cannot overflow a double sum of squares).
 */
#include <prunelab/plugin.h>

#include <math.h>

/* The env lives until fini, and it is all the state this criterion needs
 * (for set_error). */
static pl_status l2_init(const pl_env *env, void **state)
{
    *state = (void *)env;
    return PL_OK;
}

/* Rejects views no layer could have: the host's bug, reported as such. */
static pl_status l2_check_view(const pl_env *env, const pl_unit_view *v,
                               const double *scores, const int64_t *n_out)
{
    if (!v || !scores || !n_out) {
        env->api->set_error(env->ctx, "score() called with a NULL view or output");
        return PL_EINVAL;
    }
    if (!v->weight || v->units <= 0 || v->unit_size <= 0 ||
        v->units > INT64_MAX / v->unit_size) {
        env->api->set_error(env->ctx, "layer '%s': invalid unit view (units %lld, unit_size %lld, weight %s)",
                            v->layer ? v->layer : "?", (long long)v->units,
                            (long long)v->unit_size, v->weight ? "set" : "NULL");
        return PL_EINVAL;
    }
    return PL_OK;
}

static pl_status l2_score(void *state, const pl_unit_view *v, double *scores,
                          int64_t *n_out)
{
    const pl_env *env = state;
    pl_status st = l2_check_view(env, v, scores, n_out);
    if (st != PL_OK)
        return st;
    for (int64_t u = 0; u < v->units; u++) {
        const int64_t base = u * v->unit_size;
        double s = 0.0;
        for (int64_t i = base; i < base + v->unit_size; i++) {
            if (!isfinite(v->weight[i])) {
                env->api->set_error(env->ctx, "layer '%s': non-finite weight at index %lld",
                                    v->layer ? v->layer : "?", (long long)i);
                return PL_EPLUGIN;
            }
            if (v->mask && v->mask[i] == 0.0f)
                continue; /* already pruned */
            s += (double)v->weight[i] * v->weight[i];
        }
        scores[u] = sqrt(s);
    }
    *n_out = v->units;
    return PL_OK;
}

static const pl_criterion_ops l2_ops = {
    .needs = 0,
    .score = l2_score,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_CRITERION,
    .name = "l2",
    .version = "1.0.0",
    .description = "L2 norm: sqrt of the sum of w^2 over the unit's weights (biases and masked weights excluded)",
    .params = NULL,
    .init = l2_init,
    .fini = NULL,
    .ops = &l2_ops,
    .reserved = {0},
};
