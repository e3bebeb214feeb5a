/*
 * global — one ranking across all prunable layers instead of equal
 * per-layer ratios, in `steps` steps on a linear or cubic ramp (as
 * iterative; steps 1 is one-shot global pruning).
 *
 * The host does the ranking (scope GLOBAL): it normalises each layer's
 * scores so layers of different size and scale compare (`normalize`:
 * `mean` divides by the layer's mean score; `lamp` is Lee et al. 2021's
 * layer-adaptive score s²/Σ of the s² ranked at or above it; `none` ranks
 * the raw scores, as torch.nn.utils.prune.global_unstructured does), and
 * prunes the lowest normalised scores network-wide until the step's target
 * is met. Per layer it keeps at least
 * max(1, ceil(floor·units)) of the layer's original units and prunes at
 * most cap·units of them. This plugin only validates floor/cap and hands
 * them over in the plan.
 */
#include <prunelab/plugin.h>

#include <string.h>

typedef struct global_state {
    const pl_host_api *api;
    int steps;    /* T, 1..PL_MAX_STEPS */
    int cubic;    /* 0 linear, 1 cubic */
    double floor; /* min kept fraction per layer, [0,1) */
    double cap;   /* max pruned fraction per layer, (0,1] */
    int normalize; /* pl_norm */
} global_state;

/* progress after step i of T: linear i/T, cubic 1 − (1 − i/T)^3 */
static double global_ramp(int cubic, int i, int steps)
{
    const double x = (double)i / steps;
    if (!cubic)
        return x;
    const double r = 1.0 - x;
    return 1.0 - r * r * r;
}

static pl_status global_init(const pl_env *env, void **state)
{
    const pl_host_api *api = env->api;
    const int64_t steps = api->param_int(env->params, "steps");
    const char *ramp = api->param_str(env->params, "ramp");
    const double keep_floor = api->param_float(env->params, "floor");
    const double prune_cap = api->param_float(env->params, "cap");
    const char *norm = api->param_str(env->params, "normalize");
    int normalize = -1;
    if (norm && strcmp(norm, "mean") == 0)
        normalize = PL_NORM_MEAN;
    else if (norm && strcmp(norm, "lamp") == 0)
        normalize = PL_NORM_LAMP;
    else if (norm && strcmp(norm, "none") == 0)
        normalize = PL_NORM_NONE;
    if (normalize < 0) {
        api->set_error(env->ctx, "unknown normalize '%s' (allowed: mean, lamp, none)", norm ? norm : "");
        return PL_EINVAL;
    }
    if (steps < 1 || steps > PL_MAX_STEPS) {
        api->set_error(env->ctx, "steps must be in 1..%d, got %lld", PL_MAX_STEPS, (long long)steps);
        return PL_EINVAL;
    }
    if (!ramp || (strcmp(ramp, "linear") != 0 && strcmp(ramp, "cubic") != 0)) {
        api->set_error(env->ctx, "unknown ramp '%s' (allowed: linear, cubic)", ramp ? ramp : "");
        return PL_EINVAL;
    }
    if (!(keep_floor >= 0.0 && keep_floor < 1.0)) {
        api->set_error(env->ctx, "floor must be in [0, 1) (the fraction of each layer's units that survives), got %g", keep_floor);
        return PL_EINVAL;
    }
    if (!(prune_cap > 0.0 && prune_cap <= 1.0)) {
        api->set_error(env->ctx, "cap must be in (0, 1] (the largest fraction of a layer's units pruned), got %g", prune_cap);
        return PL_EINVAL;
    }
    global_state *s = api->calloc(1, sizeof *s);
    if (!s) {
        api->set_error(env->ctx, "out of memory");
        return PL_ENOMEM;
    }
    *s = (global_state){.api = api, .steps = (int)steps, .cubic = strcmp(ramp, "cubic") == 0,
                        .floor = keep_floor, .cap = prune_cap, .normalize = normalize};
    *state = s;
    return PL_OK;
}

static void global_fini(void *state)
{
    global_state *s = state;
    if (s)
        s->api->free(s);
}

static pl_status global_plan(void *state, const pl_schedule_query *q,
                             pl_schedule_plan *out)
{
    const global_state *s = state;
    (void)q;
    if (!s || !out)
        return PL_EINVAL;
    *out = (pl_schedule_plan){.n_steps = s->steps, .scope = PL_SCOPE_GLOBAL,
                              .floor = s->floor, .cap = s->cap, .normalize = s->normalize};
    for (int i = 1; i <= s->steps; i++)
        out->progress[i - 1] = global_ramp(s->cubic, i, s->steps);
    out->progress[s->steps - 1] = 1.0; /* exactly, whatever the rounding */
    return PL_OK;
}

static const pl_param_spec global_params[] = {
    {.name = "steps", .type = PL_PARAM_INT, .def = "1", .min = 1, .max = PL_MAX_STEPS,
     .doc = "prune steps, each followed by retrain.epochs of retraining"},
    {.name = "ramp", .type = PL_PARAM_STRING, .def = "linear",
     .doc = "linear (i/T) or cubic (1-(1-i/T)^3, Zhu & Gupta 2017)"},
    {.name = "floor", .type = PL_PARAM_FLOAT, .def = "0.05", .min = 0, .max = 1,
     .doc = "min fraction of each layer's original units kept, in [0,1) (at least 1 unit always)"},
    {.name = "cap", .type = PL_PARAM_FLOAT, .def = "1.0", .min = 0, .max = 1,
     .doc = "max fraction of each layer's units pruned, in (0,1]"},
    {.name = "normalize", .type = PL_PARAM_STRING, .def = "mean",
     .doc = "how layers' scores are made comparable: mean (score / layer mean), lamp (Lee et al. 2021), none (raw)"},
    {.name = NULL},
};

static const pl_schedule_ops global_ops = {
    .plan = global_plan,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_SCHEDULE,
    .name = "global",
    .version = "1.1.0",
    .description = "one ranking across layers of scores normalised per layer (mean, LAMP or none), with per-layer floor and cap",
    .params = global_params,
    .init = global_init,
    .fini = global_fini,
    .ops = &global_ops,
    .reserved = {0},
};
