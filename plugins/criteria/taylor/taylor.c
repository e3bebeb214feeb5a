/*
 * taylor — first-order Taylor importance (Molchanov et al. 2019).
 *
 * For unit u and calibration batch b:
 *     t_b(u) = Σ_{w∈u} w · ∂L_b/∂w
 *     importance(u) = (1/B) Σ_b t_b(u)²
 * i.e. the squared first-order estimate of the loss change when the whole
 * unit is removed, averaged over B batches. For weight granularity the unit
 * is one weight: (w·g)² averaged over batches.
 *
 * The criterion declares PL_NEEDS_GRAD; the host computes ∂L_b/∂w on
 * `batches` calibration batches from the training split and passes them as
 * v->grads[0..n_grads), each laid out like v->weight. The plugin itself only
 * reads v->n_grads. Biases are not scored; masked weights (mask == 0)
 * contribute nothing. Sums run in double, in index then batch order.
 */
#include <prunelab/plugin.h>

#include <math.h>

/* The env lives until fini; it is all the state needed (for set_error). */
static pl_status taylor_init(const pl_env *env, void **state)
{
    *state = (void *)env;
    return PL_OK;
}

static pl_status taylor_check_view(const pl_env *env, const pl_unit_view *v,
                                   const double *scores, const int64_t *n_out)
{
    if (!v || !scores || !n_out) {
        env->api->set_error(env->ctx, "score() called with a NULL view or output");
        return PL_EINVAL;
    }
    const char *layer = v->layer ? v->layer : "?";
    if (!v->weight || v->units <= 0 || v->unit_size <= 0 ||
        v->units > INT64_MAX / v->unit_size || v->n_grads < 0) {
        env->api->set_error(env->ctx, "layer '%s': invalid unit view (units %lld, unit_size %lld, weight %s, n_grads %d)",
                            layer, (long long)v->units, (long long)v->unit_size,
                            v->weight ? "set" : "NULL", v->n_grads);
        return PL_EINVAL;
    }
    if (v->n_grads == 0 || !v->grads) {
        env->api->set_error(env->ctx, "taylor needs gradients: layer '%s' was scored without calibration batches "
                            "(the host must honour PL_NEEDS_GRAD)", layer);
        return PL_EPLUGIN;
    }
    for (int b = 0; b < v->n_grads; b++) {
        if (!v->grads[b]) {
            env->api->set_error(env->ctx, "layer '%s': gradient of calibration batch %d is NULL", layer, b);
            return PL_EINVAL;
        }
    }
    return PL_OK;
}

static pl_status taylor_score(void *state, const pl_unit_view *v, double *scores,
                              int64_t *n_out)
{
    const pl_env *env = state;
    pl_status st = taylor_check_view(env, v, scores, n_out);
    if (st != PL_OK)
        return st;
    for (int64_t u = 0; u < v->units; u++) {
        const int64_t base = u * v->unit_size;
        double acc = 0.0;
        for (int b = 0; b < v->n_grads; b++) {
            const float *g = v->grads[b];
            double t = 0.0;
            for (int64_t i = base; i < base + v->unit_size; i++) {
                if (!isfinite(v->weight[i]) || !isfinite(g[i])) {
                    env->api->set_error(env->ctx, "layer '%s': non-finite %s at index %lld (batch %d)",
                                        v->layer ? v->layer : "?",
                                        isfinite(v->weight[i]) ? "gradient" : "weight",
                                        (long long)i, b);
                    return PL_EPLUGIN;
                }
                if (v->mask && v->mask[i] == 0.0f)
                    continue; /* already pruned */
                t += (double)v->weight[i] * g[i];
            }
            acc += t * t;
        }
        scores[u] = acc / v->n_grads;
        if (!isfinite(scores[u])) {
            env->api->set_error(env->ctx, "layer '%s': importance of unit %lld overflows",
                                v->layer ? v->layer : "?", (long long)u);
            return PL_EPLUGIN;
        }
    }
    *n_out = v->units;
    return PL_OK;
}

static const pl_param_spec taylor_params[] = {
    {.name = "batches", .type = PL_PARAM_INT, .def = "8", .min = 1, .max = 1000,
     .doc = "calibration batches (training split) whose gradients the host averages over"},
    {.name = NULL},
};

static const pl_criterion_ops taylor_ops = {
    .needs = PL_NEEDS_GRAD,
    .score = taylor_score,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_CRITERION,
    .name = "taylor",
    .version = "1.0.0",
    .description = "first-order Taylor: mean over calibration batches of (sum of w*dL/dw over the unit)^2 (biases and masked weights excluded)",
    .params = taylor_params,
    .init = taylor_init,
    .fini = NULL,
    .ops = &taylor_ops,
    .reserved = {0},
};
