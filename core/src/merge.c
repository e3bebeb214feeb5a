/* merge.c — fold removed units into their twins before surgery (merge.h). */
#include "merge.h"
#include "groups.h"
#include "prune.h"
#include "registry.h"

#include <stdlib.h>

#include <math.h>

int pl_merge_consumer(const pl_model *m, int li)
{
    for (int j = pl_model_sole_consumer(m, li); j >= 0; j = pl_model_sole_consumer(m, j)) {
        const pl_layer *l = &m->layers[j];
        if (l->type == PL_LAYER_LINEAR || (l->type == PL_LAYER_CONV2D && l->groups <= 1))
            return j;
        if (l->type != PL_LAYER_RELU && l->type != PL_LAYER_MAXPOOL2D && l->type != PL_LAYER_AVGPOOL2D &&
            l->type != PL_LAYER_DROPOUT && l->type != PL_LAYER_FLATTEN)
            return -1;
    }
    return -1;
}

pl_status pl_merge_fold(pl_model *m, int li, const uint8_t *drop, const int64_t *twin, const double *coef,
                        int64_t *merged, pl_error *err)
{
    *merged = 0;
    const pl_layer *L = &m->layers[li];
    int cj = pl_merge_consumer(m, li);
    if (cj < 0)
        return PL_OK;
    pl_layer *C = &m->layers[cj];
    if (C->mask) /* unstructured masks: leave them alone */
        return PL_OK;
    int64_t units = L->out_c, rows = C->out_c, stride, block;
    if (C->type == PL_LAYER_CONV2D) { /* w[cout][cin][kh][kw], cin = units */
        if (C->in_c != units)
            return PL_OK;
        block = (int64_t)C->kh * C->kw;
        stride = units * block;
    } else { /* linear w[out][in]; after a flatten, in = units x (h*w) */
        if (C->in_c % units)
            return PL_OK;
        block = C->in_c / units;
        stride = C->in_c;
    }
    if (rows * stride != C->nw)
        return PL_OK;
    for (int64_t u = 0; u < units; u++)
        if (drop[u] && twin[u] != -1 && (twin[u] < 0 || twin[u] >= units || twin[u] == u))
            return pl_error_set(err, PL_EINVAL, "merge: unit %lld of layer %s names twin %lld (of %lld units)",
                                (long long)u, L->name, (long long)twin[u], (long long)units);
    for (int64_t u = 0; u < units; u++) {
        int64_t k = twin[u];
        if (!drop[u] || k < 0 || drop[k] || !isfinite(coef[u]) || coef[u] < 0)
            continue;
        for (int64_t r = 0; r < rows; r++) {
            float *row = C->w + r * stride;
            for (int64_t j = 0; j < block; j++) {
                row[k * block + j] = (float)((double)row[k * block + j] + coef[u] * (double)row[u * block + j]);
                row[u * block + j] = 0.0f;
            }
        }
        ++*merged;
    }
    return PL_OK;
}

/* The pruner's hook (prune.c, before surgery): for every single-layer group
 * with units to drop, ask the criterion for twins and fold. */
pl_status pl__pruner_merge(pl_pruner *p, uint8_t *const *drop, pl_error *err)
{
    const pl_plugin_desc *d = pl_plugin_get_desc(pl_instance_plugin(p->crit));
    const pl_criterion_ops *co = pl_instance_ops(p->crit);
    if (d->abi_minor < 5 || !co->merge || p->gran == PL_GRAN_WEIGHT || p->gran == PL_GRAN_LAYER)
        return PL_OK; /* an older plugin's reserved slot is never read */
    pl_model *m = p->m;
    pl_status s = PL_OK;
    for (int k = 0; k < p->n && !s; k++) {
        const pl_group *g = &p->G.g[p->t[k].group];
        int li = g->units ? g->e[0].layer : -1, any = 0;
        for (int u = 0; u < g->units; u++)
            any |= drop[k][u] != 0;
        if (!any || g->width != 1 || li < 0 || pl_merge_consumer(m, li) < 0)
            continue;
        pl_layer *l = &m->layers[li];
        if (l->out_c != g->units)
            continue;
        int64_t *twin = malloc((size_t)l->out_c * sizeof *twin);
        double *coef = malloc((size_t)l->out_c * sizeof *coef);
        uint8_t *dl = malloc((size_t)l->out_c);
        if (!twin || !coef || !dl) {
            free(twin), free(coef), free(dl);
            return pl_error_set(err, PL_ENOMEM, "out of memory");
        }
        for (int64_t u = 0; u < l->out_c; u++)
            twin[u] = -1, coef[u] = 0, dl[u] = 0;
        for (int u = 0; u < g->units; u++) /* group unit -> layer channel */
            dl[g->e[u].chan] = drop[k][u];
        pl_unit_view v = {.layer = l->name, .layer_index = li, .layer_type = l->type, .granularity = p->gran,
                          .units = l->out_c, .unit_size = l->nw / l->out_c, .weight = l->w, .bias = l->b,
                          .mask = l->mask};
        v.shape[0] = l->out_c;
        v.shape[1] = l->in_c;
        v.shape[2] = l->type == PL_LAYER_CONV2D ? l->kh : 1;
        v.shape[3] = l->type == PL_LAYER_CONV2D ? l->kw : 1;
        pl_status st = co->merge(pl_instance_state(p->crit), &v, twin, coef);
        if (st) {
            const char *msg = pl_instance_take_error(p->crit);
            s = pl_error_set(err, PL_EPLUGIN, "criterion plugin '%s' failed to merge layer %s: %s", d->name, l->name,
                             msg[0] ? msg : pl_status_str(st));
        }
        int64_t n = 0;
        if (!s)
            s = pl_merge_fold(m, li, dl, twin, coef, &n, err);
        p->merged += n;
        free(twin), free(coef), free(dl);
    }
    return s;
}
