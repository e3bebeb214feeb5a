/*
 * absmax — an out-of-tree criterion: score(u) = max_{w∈u} |w|, the largest
 * weight magnitude in the unit (higher = keep). A filter with one strong
 * weight survives even if the rest are small, unlike under l1/l2.
 *
 * Parameter `include_bias` (bool, default false): let |bias| count too
 * (channel and neuron granularity only; weight granularity has no bias).
 *
 * It follows the rules of every criterion (docs/writing-a-plugin.md):
 * masked weights (mask == 0) are already pruned and do not count; a bad
 * view is PL_EINVAL and a non-finite weight PL_EPLUGIN, each with a message
 * through set_error; no globals; state allocated through the host API;
 * deterministic (a max does not depend on order anyway).
 */
#include <prunelab/plugin.h>

#include <math.h>

typedef struct absmax_state {
    const pl_env *env; /* lives until fini: api, ctx, params, seed */
    int include_bias;
} absmax_state;

static pl_status absmax_init(const pl_env *env, void **state)
{
    absmax_state *s = env->api->alloc(sizeof *s);
    if (!s) {
        env->api->set_error(env->ctx, "out of memory");
        return PL_ENOMEM;
    }
    s->env = env;
    s->include_bias = env->api->param_bool(env->params, "include_bias");
    *state = s;
    return PL_OK;
}

static void absmax_fini(void *state)
{
    absmax_state *s = state;
    if (s)
        s->env->api->free(s);
}

static pl_status absmax_score(void *state, const pl_unit_view *v, double *scores,
                              int64_t *n_out)
{
    const absmax_state *s = state;
    const pl_env *env = s->env;
    if (!v || !scores || !n_out) {
        env->api->set_error(env->ctx, "score() called with a NULL view or output");
        return PL_EINVAL;
    }
    if (!v->weight || v->units <= 0 || v->unit_size <= 0 ||
        v->units > INT64_MAX / v->unit_size) {
        env->api->set_error(env->ctx, "layer '%s': invalid unit view (units %lld, unit_size %lld)",
                            v->layer ? v->layer : "?", (long long)v->units,
                            (long long)v->unit_size);
        return PL_EINVAL;
    }
    for (int64_t u = 0; u < v->units; u++) {
        double m = 0.0;
        for (int64_t i = u * v->unit_size; i < (u + 1) * v->unit_size; i++) {
            if (!isfinite(v->weight[i])) {
                env->api->set_error(env->ctx, "layer '%s': non-finite weight at index %lld",
                                    v->layer ? v->layer : "?", (long long)i);
                return PL_EPLUGIN;
            }
            if (v->mask && v->mask[i] == 0.0f)
                continue; /* already pruned */
            m = fmax(m, fabs((double)v->weight[i]));
        }
        if (s->include_bias && v->bias) {
            if (!isfinite(v->bias[u])) {
                env->api->set_error(env->ctx, "layer '%s': non-finite bias of unit %lld",
                                    v->layer ? v->layer : "?", (long long)u);
                return PL_EPLUGIN;
            }
            m = fmax(m, fabs((double)v->bias[u]));
        }
        scores[u] = m;
    }
    *n_out = v->units;
    return PL_OK;
}

static const pl_param_spec absmax_params[] = {
    {.name = "include_bias", .type = PL_PARAM_BOOL, .def = "false", .min = 0, .max = -1,
     .doc = "let |bias| count in the unit's maximum (channel/neuron granularity)"},
    {.name = NULL},
};

static const pl_criterion_ops absmax_ops = {
    .needs = 0, /* no gradients or activations */
    .score = absmax_score,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER, /* ABI version, struct size, type-size fingerprint */
    .kind = PL_KIND_CRITERION,
    .name = "absmax", /* must equal the file name: absmax.so */
    .version = "1.0.0",
    .description = "largest |w| in the unit (example out-of-tree plugin)",
    .params = absmax_params,
    .init = absmax_init,
    .fini = absmax_fini,
    .ops = &absmax_ops,
    .reserved = {0},
};
