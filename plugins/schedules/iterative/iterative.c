/*
 * iterative — reach each layer's target over `steps` prune steps with
 * retraining between them, following a linear or cubic ramp.
 *
 * After step i of T the pruned fraction of the final target is
 *     linear:    i/T
 *     cubic:     1 − (1 − i/T)^3
 *     geometric: (1 − (1 − s)^(i/T)) / s   for the final sparsity s
 * The cubic ramp is the automated gradual pruning of Zhu & Gupta 2017,
 * s_t = s_f·(1 − (1 − t/T)^3): it prunes hard while the network has
 * redundancy to spare and gently near the target. The geometric ramp
 * removes the same share of the surviving units at every step (iterative
 * magnitude pruning, Han et al. 2015, Frankle & Carbin 2019: 20 % per
 * round). Ranking is per layer.
 */
#include <prunelab/plugin.h>

#include <math.h>
#include <string.h>

typedef struct iterative_state {
    const pl_host_api *api;
    int steps; /* T, 1..PL_MAX_STEPS */
    int ramp;  /* RAMP_* */
} iterative_state;

enum { RAMP_LINEAR, RAMP_CUBIC, RAMP_GEOMETRIC };

/* progress after step i of T towards final sparsity s */
static double iterative_ramp(int ramp, int i, int steps, double s)
{
    const double x = (double)i / steps;
    if (ramp == RAMP_LINEAR)
        return x;
    if (ramp == RAMP_GEOMETRIC && s > 0 && s < 1)
        return (1.0 - pow(1.0 - s, x)) / s;
    if (ramp == RAMP_GEOMETRIC)
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
    if (!ramp || (strcmp(ramp, "linear") != 0 && strcmp(ramp, "cubic") != 0 && strcmp(ramp, "geometric") != 0)) {
        api->set_error(env->ctx, "unknown ramp '%s' (allowed: linear, cubic, geometric)", ramp ? ramp : "");
        return PL_EINVAL;
    }
    iterative_state *s = api->calloc(1, sizeof *s);
    if (!s) {
        api->set_error(env->ctx, "out of memory");
        return PL_ENOMEM;
    }
    s->api = api;
    s->steps = (int)steps;
    s->ramp = !strcmp(ramp, "cubic") ? RAMP_CUBIC : !strcmp(ramp, "geometric") ? RAMP_GEOMETRIC : RAMP_LINEAR;
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
    if (!s || !out || !q)
        return PL_EINVAL;
    *out = (pl_schedule_plan){.n_steps = s->steps, .scope = PL_SCOPE_LAYER, .floor = 0.0, .cap = 1.0};
    for (int i = 1; i <= s->steps; i++)
        out->progress[i - 1] = iterative_ramp(s->ramp, i, s->steps, q->target_sparsity);
    out->progress[s->steps - 1] = 1.0; /* exactly, whatever the rounding */
    return PL_OK;
}

static const pl_param_spec iterative_params[] = {
    {.name = "steps", .type = PL_PARAM_INT, .def = "3", .min = 1, .max = PL_MAX_STEPS,
     .doc = "prune steps, each followed by retrain.epochs of retraining"},
    {.name = "ramp", .type = PL_PARAM_STRING, .def = "linear",
     .doc = "linear (i/T), cubic (1-(1-i/T)^3, Zhu & Gupta 2017) or geometric (the same share of the "
            "survivors each step: iterative magnitude pruning)"},
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
