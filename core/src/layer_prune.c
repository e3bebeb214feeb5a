/* layer_prune.c — granularity `layer`: find removable blocks, rank them,
 * remove them and reconnect the graph (rules in prune.h). */
#include "prune.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the pruner -------------------------------------------------------------------- */

static int name_in(const char *name, char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], name))
            return 1;
    return 0;
}

static int64_t round_half_up(double x) { return (int64_t)floor(x + 0.5); }

pl_status pl__layer_pruner_init(pl_pruner *p, pl_model *m, const pl_prune_cfg *cfg, pl_instance *sched,
                                pl_error *err)
{
    if (m->n_layers < 1)
        return pl_error_set(err, PL_ECONFIG, "prune: model %s has no layers", m->name);
    if (p->needs & (PL_NEEDS_ACTIVATIONS | PL_NEEDS_BATCHNORM))
        return pl_error_set(err, PL_ECONFIG,
                            "prune: criterion '%s' scores channels or neurons from activations or batchnorm "
                            "and cannot rank whole layers; use granularity channel or neuron, or l1/l2/taylor",
                            pl_plugin_get_desc(pl_instance_plugin(p->crit))->name);
    int *head = malloc((size_t)m->n_layers * sizeof *head), *len = malloc((size_t)m->n_layers * sizeof *len);
    p->t = calloc((size_t)m->n_layers, sizeof *p->t);
    if (!head || !len || !p->t) {
        free(head);
        free(len);
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    }
    int nb = pl_layer_blocks(m, head, len, m->n_layers);
    char **lists[2] = {cfg->include, cfg->exclude};
    size_t counts[2] = {cfg->n_include, cfg->n_exclude};
    pl_status s = PL_OK;
    for (int q = 0; q < 2 && !s; q++)
        for (size_t k = 0; k < counts[q] && !s; k++)
            if (pl_model_find(m, lists[q][k]) < 0)
                s = pl_error_set(err, PL_ECONFIG, "prune.%s names '%s', which model %s does not have",
                                 q ? "exclude" : "include", lists[q][k], m->name);
    for (int k = 0; k < nb && !s; k++) {
        const char *name = m->layers[head[k]].name;
        if (cfg->n_include && !name_in(name, cfg->include, cfg->n_include))
            continue;
        if (name_in(name, cfg->exclude, cfg->n_exclude))
            continue;
        p->t[p->n++] = (pl_prune_target){.layer = head[k], .units = 1, .remove = 0, .removed = 0};
    }
    free(head);
    free(len);
    if (s)
        return s;
    if (p->n == 0)
        return pl_error_set(err, PL_ECONFIG,
                            "prune: granularity layer: model %s has no removable layer%s (a conv2d or linear "
                            "layer, with the batchnorm/relu/dropout after it, whose input and output shapes "
                            "match, e.g. a 3x3 conv with padding 1 from C to C channels, or a square linear "
                            "layer; in a graph model, a residual branch whose add has an identity shortcut)",
                            m->name, nb ? " left after prune.include/exclude" : "");
    if (cfg->count >= 0) {
        if (cfg->count > p->n) {
            char names[512];
            size_t k = 0;
            names[0] = 0;
            for (int i = 0; i < p->n && k < sizeof names; i++)
                k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "",
                                      m->layers[p->t[i].layer].name);
            return pl_error_set(err, PL_ECONFIG,
                                "prune.count %lld: model %s has only %d removable layer(s) (%s)",
                                (long long)cfg->count, m->name, p->n, names);
        }
        p->layer_goal = cfg->count;
    } else {
        p->layer_goal = round_half_up(cfg->sparsity * (double)p->n);
    }
    p->requested = cfg->has_sparsity ? cfg->sparsity : (double)p->layer_goal / (double)p->n;
    /* the plan: how many of the blocks go at each step */
    pl_status st = pl__schedule_plan(sched, p->requested, p->n, &p->plan, err);
    if (st)
        return st;
    p->global = 0; /* one ranking over the model whatever the schedule's scope */
    return PL_OK;
}

/* Normalised score of candidate k: criterion(layer as one unit) / weights. */
static pl_status score_block(pl_pruner *p, int k, float **grads, double *out, pl_error *err)
{
    pl_layer *l = &p->m->layers[p->t[k].layer];
    pl_act_stats as;
    pl_unit_view v;
    pl__unit_view(p, p->t[k].layer, grads, NULL, &as, &v); /* score()'s view, then the layer as one unit */
    v.granularity = PL_GRAN_LAYER;
    v.units = 1;
    v.unit_size = l->nw;
    v.bias = NULL;
    v.bn_gamma = NULL;
    const pl_criterion_ops *co = pl_instance_ops(p->crit);
    const char *name = pl_plugin_get_desc(pl_instance_plugin(p->crit))->name;
    double sc = NAN;
    int64_t n_out = -1;
    pl_status st = co->score(pl_instance_state(p->crit), &v, &sc, &n_out);
    if (st) {
        const char *msg = pl_instance_take_error(p->crit);
        return pl_error_set(err, PL_EPLUGIN, "criterion plugin '%s' failed on layer %s: %s", name, l->name,
                            msg[0] ? msg : pl_status_str(st));
    }
    if (n_out != 1)
        return pl_error_set(err, PL_EPLUGIN,
                            "criterion plugin '%s' returned %lld scores for layer %s at granularity layer, "
                            "expected 1",
                            name, (long long)n_out, l->name);
    if (!isfinite(sc))
        return pl_error_set(err, PL_EPLUGIN, "criterion plugin '%s' returned a non-finite score (%g) for layer %s",
                            name, sc, l->name);
    *out = sc / (double)l->nw;
    return PL_OK;
}

pl_status pl__layer_pruner_step(pl_pruner *p, int step, pl_data *train, int batch, uint64_t seed,
                                pl_error *err)
{
    pl_model *m = p->m;
    int64_t removed = 0;
    for (int k = 0; k < p->n; k++)
        removed += p->t[k].removed;
    int64_t need = round_half_up(p->plan.progress[step] * (double)p->layer_goal) - removed;
    if (need <= 0)
        return PL_OK;
    pl_status s = PL_OK;
    float ***g = NULL;
    if (p->needs & PL_NEEDS_GRAD) {
        g = calloc((size_t)p->n, sizeof *g);
        s = g ? PL_OK : pl_error_set(err, PL_ENOMEM, "out of memory");
        for (int k = 0; k < p->n && !s; k++) {
            if (p->t[k].removed)
                continue;
            int64_t nw = m->layers[p->t[k].layer].nw;
            if (!(g[k] = calloc((size_t)p->calib_batches, sizeof **g)))
                s = pl_error_set(err, PL_ENOMEM, "out of memory");
            for (int b = 0; b < p->calib_batches && !s; b++)
                if (!(g[k][b] = malloc((size_t)nw * sizeof(float))))
                    s = pl_error_set(err, PL_ENOMEM, "out of memory for calibration gradients");
        }
        int *layers = s ? NULL : malloc((size_t)p->n * sizeof *layers);
        if (!s && !layers)
            s = pl_error_set(err, PL_ENOMEM, "out of memory");
        for (int k = 0; k < p->n && !s; k++)
            layers[k] = p->t[k].layer;
        if (!s)
            s = pl__pruner_calibrate(p, layers, p->n, train, batch, seed, step, g, err);
        free(layers);
    }
    double *sc = malloc((size_t)p->n * sizeof *sc);
    int *order = malloc((size_t)p->n * sizeof *order);
    int nc = 0;
    if (!s && (!sc || !order))
        s = pl_error_set(err, PL_ENOMEM, "out of memory");
    for (int k = 0; k < p->n && !s; k++) {
        if (p->t[k].removed)
            continue;
        s = score_block(p, k, g ? g[k] : NULL, &sc[k], err);
        order[nc++] = k;
    }
    if (!s) {
        /* lowest normalised score first, ties to the earlier layer (insertion sort: few blocks) */
        for (int i = 1; i < nc; i++) {
            int k = order[i], j = i;
            while (j > 0 && (sc[order[j - 1]] > sc[k] ||
                             (sc[order[j - 1]] == sc[k] && p->t[order[j - 1]].layer > p->t[k].layer))) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = k;
        }
        for (int i = 0; i < nc && i < need && !s; i++) {
            int k = order[i], h = p->t[k].layer, len = pl_layer_block_len(m, h);
            s = pl_model_remove_layers(m, h, len, err);
            if (s)
                break;
            p->t[k].removed = 1;
            p->t[k].remove = 1;
            p->t[k].layer = -1;
            for (int j = 0; j < p->n; j++) /* later heads moved up by len */
                if (p->t[j].layer > h)
                    p->t[j].layer -= len;
        }
    }
    if (g) {
        for (int k = 0; k < p->n; k++) {
            if (g[k])
                for (int b = 0; b < p->calib_batches; b++)
                    free(g[k][b]);
            free(g[k]);
        }
        free(g);
    }
    free(sc);
    free(order);
    return s;
}
