/*
 * apoz — Average Percentage of Zeros (Hu et al. 2016):
 * score(u) = 1 − APoZ(u), APoZ(u) = the fraction of u's activations after
 * its ReLU that are exactly zero, measured by the host on calibration
 * batches from the training split (PL_NEEDS_ACTIVATIONS; see pl_act_stats).
 *
 * A unit that is almost always zero contributes almost nothing downstream
 * and goes first. With weight granularity every weight of a unit shares the
 * unit's score, so weights go unit by unit (ties broken by position).
 * Units of a layer with no ReLU after it are rarely exactly zero: the
 * scores then all sit near 1 and say little. `batches` sets how many
 * calibration batches the host runs.
 */
#include <prunelab/plugin.h>

static const pl_param_spec apoz_params[] = {
    {"batches", PL_PARAM_INT, "8", 1, 1000, "calibration batches (training split) to measure activations on"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static pl_status apoz_init(const pl_env *env, void **state)
{
    *state = (void *)env;
    return PL_OK;
}

static pl_status apoz_score(void *state, const pl_unit_view *v, double *scores, int64_t *n_out)
{
    const pl_env *env = state;
    if (!v || !scores || !n_out || v->units <= 0 || v->unit_size <= 0 || v->shape[0] <= 0) {
        env->api->set_error(env->ctx, "score() called with an invalid unit view");
        return PL_EINVAL;
    }
    const pl_act_stats *a = v->act;
    if (!a || !a->zero || a->units != v->shape[0]) {
        env->api->set_error(env->ctx, "layer '%s': no activation statistics for its %lld units (host older than "
                            "ABI 1.3?)", v->layer ? v->layer : "?", (long long)v->shape[0]);
        return PL_EINVAL;
    }
    /* weights per output unit: 1 unit per view unit, or unit_size 1 weights */
    const int64_t per = v->granularity == PL_GRAN_WEIGHT ? v->units / a->units : 1;
    if (per < 1 || per * a->units != (v->granularity == PL_GRAN_WEIGHT ? v->units : a->units)) {
        env->api->set_error(env->ctx, "layer '%s': %lld scores asked for %lld units", v->layer ? v->layer : "?",
                            (long long)v->units, (long long)a->units);
        return PL_EINVAL;
    }
    for (int64_t i = 0; i < v->units; i++) {
        const double z = a->zero[i / per];
        if (!(z >= 0.0 && z <= 1.0)) {
            env->api->set_error(env->ctx, "layer '%s': zero fraction %g of unit %lld is not in [0, 1]",
                                v->layer ? v->layer : "?", z, (long long)(i / per));
            return PL_EPLUGIN;
        }
        scores[i] = 1.0 - z;
    }
    *n_out = v->units;
    return PL_OK;
}

static const pl_criterion_ops apoz_ops = {
    .needs = PL_NEEDS_ACTIVATIONS,
    .score = apoz_score,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_CRITERION,
    .name = "apoz",
    .version = "1.0.0",
    .description = "Average Percentage of Zeros (Hu et al. 2016): units whose activations are most often zero go first",
    .params = apoz_params,
    .init = apoz_init,
    .fini = NULL,
    .ops = &apoz_ops,
    .reserved = {0},
};
