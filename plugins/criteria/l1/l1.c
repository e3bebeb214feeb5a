/*
 * l1 — magnitude criterion: score(u) = Σ_{w∈u} |w|.
 *
 * This file is the model for writing a criterion. The host hands score() a
 * pl_unit_view of one layer whose weights are laid out unit-major (unit u
 * owns weight[u*unit_size .. (u+1)*unit_size)), so one loop serves every
 * granularity: a single weight (unit_size 1), a conv filter, a linear
 * neuron, or the whole layer (units 1). Higher scores are kept.
 *
 * Conventions every criterion follows:
 *  - biases are not part of the score;
 *  - masked weights (mask == 0) are already pruned and contribute nothing;
 *  - a bad view is PL_EINVAL, a non-finite weight PL_EPLUGIN, each with a
 *    message through env->api->set_error, so no score is ever NaN;
 *  - sums run in double, in index order, so results are deterministic.
 */
#include <prunelab/plugin.h>

#include <math.h>

/* The env lives until fini, and it is all the state this criterion needs
 * (for set_error). */
static pl_status l1_init(const pl_env *env, void **state)
{
    *state = (void *)env;
    return PL_OK;
}

/* Rejects views no layer could have: the host's bug, reported as such. */
static pl_status l1_check_view(const pl_env *env, const pl_unit_view *v,
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

static pl_status l1_score(void *state, const pl_unit_view *v, double *scores,
                          int64_t *n_out)
{
    const pl_env *env = state;
    pl_status st = l1_check_view(env, v, scores, n_out);
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
            s += fabs((double)v->weight[i]);
        }
        scores[u] = s;
    }
    *n_out = v->units;
    return PL_OK;
}

static const pl_criterion_ops l1_ops = {
    .needs = 0,
    .score = l1_score,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_CRITERION,
    .name = "l1",
    .version = "1.0.0",
    .description = "L1 norm: sum of |w| over the unit's weights (biases and masked weights excluded)",
    .params = NULL,
    .init = l1_init,
    .fini = NULL,
    .ops = &l1_ops,
    .reserved = {0},
};
