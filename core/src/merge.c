/* merge.c — fold removed units into their twins before surgery (merge.h). */
#include "merge.h"
#include "groups.h"
#include "prune.h"
#include "registry.h"

#include "activations.h"

#include <stdlib.h>
#include <string.h>

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

void pl__merge_undo_end(pl_model *m, pl_merge_undo *undo, int restore)
{
    for (int i = undo->n - 1; i >= 0; i--) { /* newest first: a layer saved twice ends as first saved */
        pl_layer *C = &m->layers[undo->layer[i]];
        if (restore && undo->w[i] && C->nw == undo->nw[i])
            memcpy(C->w, undo->w[i], (size_t)C->nw * sizeof *C->w);
        free(undo->w[i]);
    }
    free(undo->layer), free(undo->nw), free(undo->w);
    *undo = (pl_merge_undo){0};
}

/* The pruner's hook (prune.c, before surgery): for every single-layer group
 * with units to drop, ask the criterion for twins (on the view score() got)
 * and fold, saving each consumer's weights first. */
pl_status pl__pruner_merge(pl_pruner *p, uint8_t *const *drop, float ***grads, const struct pl_act *act,
                           const int *slot, pl_merge_undo *undo, pl_error *err)
{
    const pl_plugin_desc *d = pl_plugin_get_desc(pl_instance_plugin(p->crit));
    const pl_criterion_ops *co = pl_instance_ops(p->crit);
    *undo = (pl_merge_undo){0};
    if (d->abi_minor < PL_ABI_MINOR_MERGE || !co->merge || p->gran == PL_GRAN_WEIGHT || p->gran == PL_GRAN_LAYER)
        return PL_OK; /* an older plugin's reserved slot is never read */
    pl_model *m = p->m;
    undo->layer = malloc((size_t)(p->n ? p->n : 1) * sizeof *undo->layer);
    undo->nw = malloc((size_t)(p->n ? p->n : 1) * sizeof *undo->nw);
    undo->w = malloc((size_t)(p->n ? p->n : 1) * sizeof *undo->w);
    if (!undo->layer || !undo->nw || !undo->w) {
        pl__merge_undo_end(m, undo, 0);
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    }
    pl_status s = PL_OK;
    for (int k = 0; k < p->n && !s; k++) {
        const pl_group *g = &p->G.g[p->t[k].group];
        int li = g->units ? g->e[0].layer : -1, any = 0;
        for (int u = 0; u < g->units; u++)
            any |= drop[k][u] != 0;
        int cj = li >= 0 ? pl_merge_consumer(m, li) : -1;
        if (!any || g->width != 1 || cj < 0)
            continue;
        pl_layer *l = &m->layers[li];
        if (l->out_c != g->units)
            continue;
        int64_t *twin = malloc((size_t)l->out_c * sizeof *twin);
        double *coef = malloc((size_t)l->out_c * sizeof *coef);
        uint8_t *dl = malloc((size_t)l->out_c);
        float *saved = malloc((size_t)m->layers[cj].nw * sizeof *saved);
        if (!twin || !coef || !dl || !saved) {
            free(twin), free(coef), free(dl), free(saved);
            s = pl_error_set(err, PL_ENOMEM, "out of memory");
            break;
        }
        for (int64_t u = 0; u < l->out_c; u++)
            twin[u] = -1, coef[u] = 0, dl[u] = 0;
        for (int u = 0; u < g->units; u++) /* group unit -> layer channel */
            dl[g->e[u].chan] = drop[k][u];
        int j = slot ? slot[li] : -1;
        pl_act_stats as;
        pl_unit_view v;
        pl__unit_view(p, li, j >= 0 && grads ? grads[j] : NULL, j >= 0 && act ? &act[j] : NULL, &as, &v);
        pl_status st = co->merge(pl_instance_state(p->crit), &v, twin, coef);
        if (st) {
            const char *msg = pl_instance_take_error(p->crit);
            s = pl_error_set(err, PL_EPLUGIN, "criterion plugin '%s' failed to merge layer %s: %s", d->name, l->name,
                             msg[0] ? msg : pl_status_str(st));
        }
        int64_t n = 0;
        if (!s) {
            memcpy(saved, m->layers[cj].w, (size_t)m->layers[cj].nw * sizeof *saved);
            undo->layer[undo->n] = cj;
            undo->nw[undo->n] = m->layers[cj].nw;
            undo->w[undo->n++] = saved;
            saved = NULL;
            s = pl_merge_fold(m, li, dl, twin, coef, &n, err);
        }
        p->merged += n;
        free(twin), free(coef), free(dl), free(saved);
    }
    if (s)
        pl__merge_undo_end(m, undo, 1);
    return s;
}
