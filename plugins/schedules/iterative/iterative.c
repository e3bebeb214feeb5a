/*
 * iterative — reach each layer's target over `steps` prune steps with
 * retraining between them, following a linear or cubic ramp.
 *
 * After step i of T the pruned fraction of the final target is
 *     linear: i/T
 *     cubic:  1 − (1 − i/T)^3
 * The cubic ramp is the automated gradual pruning of Zhu & Gupta 2017,
 * s_t = s_f·(1 − (1 − t/T)^3): it prunes hard while the network has
 * redundancy to spare and gently near the target. Ranking is per layer.
 */
#include <prunelab/plugin.h>

#include <string.h>

typedef struct iterative_state {
    const pl_host_api *api;
    int steps; /* T, 1..PL_MAX_STEPS */
    int cubic; /* 0 linear, 1 cubic */
} iterative_state;

/* progress after step i of T */
static double iterative_ramp(int cubic, int i, int steps)
{
    const double x = (double)i / steps;
    if (!cubic)
        return x;
    const double r = 1.0 - x;
    return 1.0 - r * r * r;
}

static pl_status iterative_init(const pl_env *env, void **state)
{
    const pl_host_api *api = env->api;
    const int64_t steps = api->param_int(env->params, "steps");
    const char *ramp = api->param_str(env->params, "ramp");
    if (steps < 1 || steps > PL_MAX_STEPS) {
        api->set_error(env->ctx, "steps must be in 1..%d, got %lld", PL_MAX_STEPS, (long long)steps);
        return PL_EINVAL;
    }
    if (!ramp || (strcmp(ramp, "linear") != 0 && strcmp(ramp, "cubic") != 0)) {
        api->set_error(env->ctx, "unknown ramp '%s' (allowed: linear, cubic)", ramp ? ramp : "");
        return PL_EINVAL;
    }
    iterative_state *s = api->calloc(1, sizeof *s);
    if (!s) {
        api->set_error(env->ctx, "out of memory");
        return PL_ENOMEM;
    }
    s->api = api;
    s->steps = (int)steps;
    s->cubic = strcmp(ramp, "cubic") == 0;
    *state = s;
    return PL_OK;
}

static void iterative_fini(void *state)
{
    iterative_state *s = state;
    if (s)
        s->api->free(s);
}

static pl_status iterative_plan(void *state, const pl_schedule_query *q,
                                pl_schedule_plan *out)
{
    const iterative_state *s = state;
    (void)q;
    if (!s || !out)
        return PL_EINVAL;
    *out = (pl_schedule_plan){.n_steps = s->steps, .scope = PL_SCOPE_LAYER, .floor = 0.0, .cap = 1.0};
    for (int i = 1; i <= s->steps; i++)
        out->progress[i - 1] = iterative_ramp(s->cubic, i, s->steps);
    out->progress[s->steps - 1] = 1.0; /* exactly, whatever the rounding */
    return PL_OK;
}

static const pl_param_spec iterative_params[] = {
    {.name = "steps", .type = PL_PARAM_INT, .def = "3", .min = 1, .max = PL_MAX_STEPS,
     .doc = "prune steps, each followed by retrain.epochs of retraining"},
    {.name = "ramp", .type = PL_PARAM_STRING, .def = "linear",
     .doc = "linear (i/T) or cubic (1-(1-i/T)^3, Zhu & Gupta 2017)"},
    {.name = NULL},
};

static const pl_schedule_ops iterative_ops = {
    .plan = iterative_plan,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_SCHEDULE,
    .name = "iterative",
    .version = "1.0.0",
    .description = "reach each layer's target over `steps` prune+retrain steps, linear or cubic (AGP) ramp",
    .params = iterative_params,
    .init = iterative_init,
    .fini = iterative_fini,
    .ops = &iterative_ops,
    .reserved = {0},
};
