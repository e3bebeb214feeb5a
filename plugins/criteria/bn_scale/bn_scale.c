/*
 * bn_scale — network slimming (Liu et al. 2017): score(u) = |γ_u|, the
 * scale of channel u in the batchnorm2d right after the layer
 * (PL_NEEDS_BATCHNORM: the host passes γ and refuses layers without such a
 * batchnorm, and weight or layer granularity).
 *
 * Liu et al. train with an L1 penalty on every γ so that unneeded channels
 * are driven towards zero before pruning; prunelab offers it as
 * `regularize: {type: bn_l1, coef: ...}` in the train phase. Ranking is
 * per layer with oneshot/iterative, or across layers with `global` and
 * `normalize: none`, which compares raw |γ| as the paper does.
 */
#include <prunelab/plugin.h>

#include <math.h>

static pl_status bn_scale_init(const pl_env *env, void **state)
{
    *state = (void *)env;
    return PL_OK;
}

static pl_status bn_scale_score(void *state, const pl_unit_view *v, double *scores, int64_t *n_out)
{
    const pl_env *env = state;
    if (!v || !scores || !n_out || v->units <= 0) {
        env->api->set_error(env->ctx, "score() called with an invalid unit view");
        return PL_EINVAL;
    }
    if (!v->bn_gamma || v->granularity == PL_GRAN_WEIGHT || v->units != v->shape[0]) {
        env->api->set_error(env->ctx, "layer '%s': no batchnorm scales for its units (channel granularity on a "
                            "layer followed by batchnorm2d is needed)", v->layer ? v->layer : "?");
        return PL_EINVAL;
    }
    for (int64_t u = 0; u < v->units; u++) {
        const float g = v->bn_gamma[u];
        if (!isfinite(g)) {
            env->api->set_error(env->ctx, "layer '%s': non-finite batchnorm scale at unit %lld",
                                v->layer ? v->layer : "?", (long long)u);
            return PL_EPLUGIN;
        }
        scores[u] = fabs((double)g);
    }
    *n_out = v->units;
    return PL_OK;
}

static const pl_criterion_ops bn_scale_ops = {
    .needs = PL_NEEDS_BATCHNORM,
    .score = bn_scale_score,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_CRITERION,
    .name = "bn_scale",
    .version = "1.0.0",
    .description = "network slimming (Liu et al. 2017): |gamma| of the channel's batchnorm",
    .params = NULL,
    .init = bn_scale_init,
    .fini = NULL,
    .ops = &bn_scale_ops,
    .reserved = {0},
};
