/*
 * oneshot — prune each layer to its target in a single step, then retrain.
 *
 * The plan is one step reaching the whole target (progress {1}), ranked
 * per layer (scope LAYER). No parameters, no state.
 */
#include <prunelab/plugin.h>

static pl_status oneshot_plan(void *state, const pl_schedule_query *q,
                              pl_schedule_plan *out)
{
    (void)state;
    (void)q;
    if (!out)
        return PL_EINVAL;
    *out = (pl_schedule_plan){
        .n_steps = 1,
        .progress = {1.0},
        .scope = PL_SCOPE_LAYER,
        .floor = 0.0,
        .cap = 1.0,
    };
    return PL_OK;
}

static const pl_schedule_ops oneshot_ops = {
    .plan = oneshot_plan,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_SCHEDULE,
    .name = "oneshot",
    .version = "1.0.0",
    .description = "prune every layer to its target in one step, then retrain",
    .params = NULL,
    .init = NULL,
    .fini = NULL,
    .ops = &oneshot_ops,
    .reserved = {0},
};
