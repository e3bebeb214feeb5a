/*
 * random — the baseline criterion: every unit gets a seeded uniform score.
 *
 * The stream is api->rng_seed(seed, "random:<layer>:<granularity>"), so a
 * layer's scores depend only on the run's seed, the layer's name and the
 * granularity — not on which other layers exist or the order they are
 * scored in — and the same seed and view always give the same scores.
 *
 * One number is drawn per unit whatever the mask, so pruning one unit never
 * shifts the others' scores. A unit whose weights are all masked (already
 * pruned) scores 0; every other unit scores in (0, 1], so it ranks above
 * them. Weights are otherwise not read, except that a non-finite weight is
 * an error (PL_EPLUGIN) here too, as for every criterion; biases are
 * ignored.
 */
#include <prunelab/plugin.h>

#include <math.h>
#include <stdio.h>

static const char *random_gran_name(pl_granularity g)
{
    switch (g) {
    case PL_GRAN_WEIGHT: return "weight";
    case PL_GRAN_CHANNEL: return "channel";
    case PL_GRAN_NEURON: return "neuron";
    case PL_GRAN_LAYER: return "layer";
    }
    return NULL;
}

/* The env (seed, api) lives until fini; it is all the state needed. */
static pl_status random_init(const pl_env *env, void **state)
{
    *state = (void *)env;
    return PL_OK;
}

static pl_status random_check_view(const pl_env *env, const pl_unit_view *v,
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
    if (!v->layer || !random_gran_name(v->granularity)) {
        env->api->set_error(env->ctx, "unit view without a layer name or with unknown granularity %d",
                            (int)v->granularity);
        return PL_EINVAL;
    }
    return PL_OK;
}

/* Seeds r with the stream "random:<layer>:<granularity>". */
static pl_status random_seed_stream(const pl_env *env, const pl_unit_view *v, pl_rng *r)
{
    const char *gran = random_gran_name(v->granularity);
    char small[256];
    int n = snprintf(small, sizeof small, "random:%s:%s", v->layer, gran);
    if (n < 0)
        return PL_EINVAL;
    if ((size_t)n < sizeof small) {
        env->api->rng_seed(r, env->seed, small);
        return PL_OK;
    }
    char *big = env->api->alloc((size_t)n + 1); /* a very long layer name */
    if (!big) {
        env->api->set_error(env->ctx, "out of memory for the stream name of layer '%s'", v->layer);
        return PL_ENOMEM;
    }
    snprintf(big, (size_t)n + 1, "random:%s:%s", v->layer, gran);
    env->api->rng_seed(r, env->seed, big);
    env->api->free(big);
    return PL_OK;
}

static pl_status random_score(void *state, const pl_unit_view *v, double *scores,
                              int64_t *n_out)
{
    const pl_env *env = state;
    pl_status st = random_check_view(env, v, scores, n_out);
    if (st != PL_OK)
        return st;
    pl_rng r;
    if ((st = random_seed_stream(env, v, &r)) != PL_OK)
        return st;
    for (int64_t u = 0; u < v->units; u++) {
        const int64_t base = u * v->unit_size;
        const double draw = 1.0 - env->api->rng_uniform(&r); /* (0, 1] */
        int live = v->mask == NULL;
        for (int64_t i = base; i < base + v->unit_size; i++) {
            if (!isfinite(v->weight[i])) {
                env->api->set_error(env->ctx, "layer '%s': non-finite weight at index %lld",
                                    v->layer, (long long)i);
                return PL_EPLUGIN;
            }
            if (v->mask && v->mask[i] != 0.0f)
                live = 1;
        }
        scores[u] = live ? draw : 0.0;
    }
    *n_out = v->units;
    return PL_OK;
}

static const pl_criterion_ops random_ops = {
    .needs = 0,
    .score = random_score,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_CRITERION,
    .name = "random",
    .version = "1.0.0",
    .description = "seeded uniform score per unit, stream random:<layer>:<granularity> (fully masked units score 0)",
    .params = NULL,
    .init = random_init,
    .fini = NULL,
    .ops = &random_ops,
    .reserved = {0},
};
