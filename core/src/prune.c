/* prune.c — targets, scoring, selection and masks; the cuts themselves are
 * surgery.c's. */
#include "prune.h"
#include "activations.h"
#include "bn_recalibrate.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *pl_granularity_name(pl_granularity g)
{
    switch (g) {
    case PL_GRAN_WEIGHT: return "weight";
    case PL_GRAN_CHANNEL: return "channel";
    case PL_GRAN_NEURON: return "neuron";
    case PL_GRAN_LAYER: return "layer";
    }
    return "?";
}

/* ---- targets ---------------------------------------------------------------------- */

static int layer_fits(const pl_layer *l, pl_granularity g)
{
    switch (g) {
    case PL_GRAN_CHANNEL: return l->type == PL_LAYER_CONV2D;
    case PL_GRAN_NEURON: return l->type == PL_LAYER_LINEAR;
    case PL_GRAN_WEIGHT: return l->type == PL_LAYER_CONV2D || l->type == PL_LAYER_LINEAR;
    case PL_GRAN_LAYER: return 0;
    }
    return 0;
}

static int64_t layer_units(const pl_layer *l, pl_granularity g)
{
    return g == PL_GRAN_WEIGHT ? l->nw : l->out_c;
}

static int name_in(const char *name, char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], name))
            return 1;
    return 0;
}

double pl_layer_sparsity(const pl_layer *l, pl_granularity g)
{
    if (g == PL_GRAN_WEIGHT) {
        if (!l->nw)
            return 0;
        int64_t z = 0;
        for (int64_t i = 0; i < l->nw; i++)
            z += l->mask ? l->mask[i] == 0.0f : l->w[i] == 0.0f;
        return (double)z / (double)l->nw;
    }
    return l->orig_units ? (double)l->removed_units / (double)l->orig_units : 0;
}

static int64_t round_half_up(double x) { return (int64_t)floor(x + 0.5); }



/* Asks the schedule for its plan and checks it: 1..PL_MAX_STEPS steps,
 * progress in (0, 1], non-decreasing, ending at 1; for a global scope a
 * floor in [0, 1) and a cap in (0, 1]. Shared by the unit and the layer
 * pruner. */
pl_status pl__schedule_plan(pl_instance *sched, double requested, int n_layers, pl_schedule_plan *pl,
                            pl_error *err)
{
    pl_schedule_query q = {.target_sparsity = requested, .n_layers = n_layers};
    const pl_schedule_ops *so = pl_instance_ops(sched);
    memset(pl, 0, sizeof *pl); /* fields a plugin of an older ABI does not know read as 0 */
    const pl_plugin_desc *sd = pl_plugin_get_desc(pl_instance_plugin(sched));
    pl_status st = so->plan(pl_instance_state(sched), &q, pl);
    if (st) {
        const char *msg = pl_instance_take_error(sched);
        return pl_error_set(err, PL_EPLUGIN, "schedule plugin '%s' failed to plan: %s", sd->name,
                            msg[0] ? msg : pl_status_str(st));
    }
    if (pl->n_steps < 1 || pl->n_steps > PL_MAX_STEPS)
        return pl_error_set(err, PL_EPLUGIN, "schedule plugin '%s' planned %d steps (allowed 1..%d)",
                            sd->name, pl->n_steps, PL_MAX_STEPS);
    for (int s = 0; s < pl->n_steps; s++)
        if (!(pl->progress[s] > 0 && pl->progress[s] <= 1) ||
            (s && pl->progress[s] < pl->progress[s - 1]))
            return pl_error_set(err, PL_EPLUGIN,
                                "schedule plugin '%s': progress[%d] = %g is not in (0,1] and "
                                "non-decreasing",
                                sd->name, s, pl->progress[s]);
    if (pl->progress[pl->n_steps - 1] != 1.0)
        return pl_error_set(err, PL_EPLUGIN, "schedule plugin '%s': the last step must reach 1",
                            sd->name);
    if (pl->scope == PL_SCOPE_GLOBAL && (!(pl->floor >= 0 && pl->floor < 1) || !(pl->cap > 0 && pl->cap <= 1)))
        return pl_error_set(err, PL_EPLUGIN, "schedule plugin '%s': floor %g / cap %g out of range",
                            sd->name, pl->floor, pl->cap);
    if (pl->scope == PL_SCOPE_GLOBAL && pl->normalize != PL_NORM_MEAN && pl->normalize != PL_NORM_LAMP &&
        pl->normalize != PL_NORM_NONE)
        return pl_error_set(err, PL_EPLUGIN, "schedule plugin '%s': normalize %d is not a pl_norm value",
                            sd->name, pl->normalize);
    return PL_OK;
}


/* "file:line:col" of a prune.layers target, or just "file" when it has no
 * line (a value given with --set names the --set, never "label:0:0"). */
static const char *target_where(const pl_layer_target *lt, char *buf, size_t cap)
{
    if (lt->line > 0)
        snprintf(buf, cap, "%s:%d:%d", lt->file, lt->line, lt->col);
    else
        snprintf(buf, cap, "%s", lt->file);
    return buf;
}

static int group_has(const pl_model *m, const pl_group *g, const char *name)
{
    for (int k = 0; k < g->width; k++)
        if (!strcmp(m->layers[g->e[k].layer].name, name))
            return 1;
    return 0;
}

static int group_in(const pl_model *m, const pl_group *g, char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (group_has(m, g, list[i]))
            return 1;
    return 0;
}

/* Whether layer i can be named at granularity gran (a member of a group
 * that fits it; weight: any prunable conv2d/linear). */
static int named_fits(const pl_pruner *p, int i)
{
    if (p->gran == PL_GRAN_WEIGHT)
        return pl_model_is_prunable(p->m, i) && layer_fits(&p->m->layers[i], p->gran);
    for (int g = 0; g < p->G.n; g++)
        if (pl_group_fits(&p->G.g[g], p->gran))
            for (int k = 0; k < p->G.g[g].width; k++)
                if (p->G.g[g].e[k].layer == i)
                    return 1;
    return 0;
}

/* The units to remove from a target of `units` units named by lt (NULL:
 * by prune.sparsity). */
static pl_status target_remove(const pl_prune_cfg *cfg, const pl_layer_target *lt, const char *name, int64_t units,
                               int64_t *remove, pl_error *err)
{
    char wb[600];
    if (cfg->has_sparsity) {
        *remove = round_half_up(cfg->sparsity * (double)units);
    } else if (lt->count >= 0) {
        *remove = lt->count;
        if (*remove >= units)
            return pl_error_set(err, PL_ECONFIG,
                                "%s: count %lld would remove every unit of layer "
                                "'%s' (it has %lld); at least one must stay",
                                target_where(lt, wb, sizeof wb), (long long)*remove, name, (long long)units);
    } else {
        *remove = round_half_up(lt->fraction * (double)units);
    }
    if (*remove > units - 1)
        *remove = units - 1; /* never prune a layer to zero units */
    return PL_OK;
}

pl_status pl_pruner_init(pl_pruner *p, pl_model *m, const pl_prune_cfg *cfg, pl_instance *crit,
                         pl_instance *sched, pl_error *err)
{
    char wb[600]; /* target_where */
    memset(p, 0, sizeof *p);
    p->m = m;
    p->gran = cfg->granularity;
    p->crit = crit;
    p->tolerance = (int64_t)cfg->tolerance;
    p->reduce = cfg->group_reduction;
    p->bn_batches = cfg->recalibrate_bn;
    const pl_criterion_ops *co = pl_instance_ops(crit);
    p->needs = co->needs;
    p->calib_batches = 0;
    if (p->needs & (PL_NEEDS_GRAD | PL_NEEDS_ACTIVATIONS)) {
        /* convention: a gradient or activation criterion's INT parameter
         * `batches` says how many calibration batches it wants (default 8) */
        const pl_plugin_desc *d = pl_plugin_get_desc(pl_instance_plugin(crit));
        p->calib_batches = 8;
        for (const pl_param_spec *s = d->params; s && s->name; s++)
            if (!strcmp(s->name, "batches") && s->type == PL_PARAM_INT)
                p->calib_batches = (int)pl_host_api_get()->param_int(
                    pl_instance_params(crit), "batches");
    }
    if (p->gran == PL_GRAN_LAYER) /* whole blocks: layer_prune.c */
        return pl__layer_pruner_init(p, m, cfg, sched, err);
    p->t = calloc((size_t)(m->n_layers ? m->n_layers : 1), sizeof *p->t);
    p->korig = calloc((size_t)(m->n_layers ? m->n_layers : 1), sizeof *p->korig);
    p->sl = calloc((size_t)(m->n_layers ? m->n_layers : 1), sizeof *p->sl);
    if (!p->t || !p->korig || !p->sl)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    if (p->gran != PL_GRAN_WEIGHT) {
        pl_status st = pl_groups_derive(m, &p->G, err);
        if (st)
            return st;
    }
    /* check names first: every name the config mentions must exist */
    for (size_t k = 0; k < cfg->n_layers; k++) {
        const pl_layer_target *lt = &cfg->layers[k];
        int i = pl_model_find(m, lt->layer);
        if (i < 0) {
            char names[512] = "";
            size_t used = 0;
            for (int q = 0; q < m->n_layers; q++)
                if (named_fits(p, q)) {
                    int w = snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "",
                                     m->layers[q].name);
                    if (w > 0 && (size_t)w < sizeof names - used)
                        used += (size_t)w;
                }
            return pl_error_set(err, PL_ECONFIG,
                                "%s: prune.layers names '%s', which model %s does not have "
                                "(layers prunable at %s granularity: %s)",
                                target_where(lt, wb, sizeof wb), lt->layer, m->name,
                                pl_granularity_name(p->gran), used ? names : "none");
        }
        if (!named_fits(p, i)) {
            const char *why = i == pl_model_output_layer(m) ? " (it is the output layer)" : "";
            int g = p->gran == PL_GRAN_WEIGHT ? -1 : pl_groups_find(&p->G, i);
            if (!*why && g >= 0 && p->G.g[g].flags)
                why = p->G.g[g].flags & PL_GROUP_OUTPUT
                          ? " (its channels are tied by the graph to the model's outputs)"
                      : p->G.g[g].flags & PL_GROUP_INPUT ? " (its channels are tied by the graph to the model's input)"
                      : p->G.g[g].flags & PL_GROUP_SLICE ? " (its channels are read or made by a slice layer, at "
                                                             "fixed offsets: pinned)"
                                                         : " (its channels feed or come from a grouped conv2d)";
            return pl_error_set(err, PL_ECONFIG,
                                "%s: layer '%s' (%s) cannot be pruned at %s granularity%s",
                                target_where(lt, wb, sizeof wb), lt->layer,
                                pl_layer_type_name(m->layers[i].type), pl_granularity_name(p->gran), why);
        }
    }
    char **lists[2] = {cfg->include, cfg->exclude};
    size_t counts[2] = {cfg->n_include, cfg->n_exclude};
    for (int q = 0; q < 2; q++)
        for (size_t k = 0; k < counts[q]; k++)
            if (pl_model_find(m, lists[q][k]) < 0)
                return pl_error_set(err, PL_ECONFIG, "prune.%s names '%s', which model %s does not have",
                                    q ? "exclude" : "include", lists[q][k], m->name);
    if (p->gran == PL_GRAN_WEIGHT) {
        for (int i = 0; i < m->n_layers; i++) {
            pl_layer *l = &m->layers[i];
            if (!pl_model_is_prunable(m, i) || !layer_fits(l, p->gran))
                continue;
            if (cfg->n_include && !name_in(l->name, cfg->include, cfg->n_include))
                continue;
            if (name_in(l->name, cfg->exclude, cfg->n_exclude))
                continue;
            const pl_layer_target *lt = NULL;
            for (size_t k = 0; k < cfg->n_layers; k++)
                if (!strcmp(cfg->layers[k].layer, l->name))
                    lt = &cfg->layers[k];
            if (!cfg->has_sparsity && !lt)
                continue;
            int64_t units = layer_units(l, p->gran), remove = 0;
            pl_status st = target_remove(cfg, lt, l->name, units, &remove, err);
            if (st)
                return st;
            p->sl[p->n_sl++] = i;
            p->t[p->n++] = (pl_prune_target){.layer = i, .units = units, .remove = remove, .group = -1};
        }
    } else {
        if (p->G.n > m->n_layers) { /* more groups than layers: room for the targets */
            pl_prune_target *t = realloc(p->t, (size_t)p->G.n * sizeof *t);
            if (!t)
                return pl_error_set(err, PL_ENOMEM, "out of memory");
            p->t = t;
        }
        for (int g = 0; g < p->G.n; g++) {
            const pl_group *G = &p->G.g[g];
            if (!pl_group_fits(G, p->gran))
                continue;
            if (cfg->n_include && !group_in(m, G, cfg->include, cfg->n_include))
                continue;
            if (group_in(m, G, cfg->exclude, cfg->n_exclude))
                continue;
            const pl_layer_target *lt = NULL;
            for (size_t k = 0; k < cfg->n_layers; k++)
                if (group_has(m, G, cfg->layers[k].layer))
                    lt = &cfg->layers[k];
            if (!cfg->has_sparsity && !lt)
                continue;
            int64_t remove = 0;
            const char *name = lt ? lt->layer : m->layers[G->e[0].layer].name;
            pl_status st = target_remove(cfg, lt, name, G->units, &remove, err);
            if (st)
                return st;
            p->t[p->n++] = (pl_prune_target){.layer = G->e[0].layer, .units = G->units, .remove = remove, .group = g};
        }
        /* the layers the criterion scores: every member of a targeted group */
        uint8_t *scored = calloc((size_t)(m->n_layers ? m->n_layers : 1), 1);
        if (!scored)
            return pl_error_set(err, PL_ENOMEM, "out of memory");
        for (int k = 0; k < p->n; k++) {
            const pl_group *G = &p->G.g[p->t[k].group];
            for (int q = 0; q < G->width; q++)
                scored[G->e[q].layer] = 1;
        }
        for (int i = 0; i < m->n_layers; i++)
            if (scored[i])
                p->sl[p->n_sl++] = i;
        free(scored);
    }
    int pinned = 0; /* a slice layer (a packed ONNX import) pins the channels it reads and makes */
    for (int g = 0; p->n == 0 && p->gran != PL_GRAN_WEIGHT && g < p->G.n; g++)
        pinned |= (p->G.g[g].flags & PL_GROUP_SLICE) != 0;
    if (p->n == 0)
        return pl_error_set(err, PL_ECONFIG,
                            "prune: no layer of model %s matches (granularity %s%s%s); check "
                            "prune.layers/include/exclude",
                            m->name, pl_granularity_name(p->gran),
                            p->gran == PL_GRAN_CHANNEL ? ": channel pruning needs conv2d layers"
                            : p->gran == PL_GRAN_NEURON ? ": neuron pruning needs hidden linear layers"
                                                        : "",
                            pinned ? ", and slice layers pin the channels they read and make" : "");
    if (p->needs & PL_NEEDS_BATCHNORM)
        for (int k = 0; k < p->n_sl; k++) {
            int i = p->sl[k], c = pl_model_sole_consumer(m, i);
            if (p->gran == PL_GRAN_WEIGHT || c < 0 || m->layers[c].type != PL_LAYER_BATCHNORM2D)
                return pl_error_set(err, PL_ECONFIG,
                                    "prune: criterion '%s' ranks units by the batchnorm2d right after their "
                                    "layer, and %s (layer %s); prune conv layers followed by batchnorm at channel "
                                    "granularity (prune.include/exclude), or use another criterion",
                                    pl_plugin_get_desc(pl_instance_plugin(crit))->name,
                                    p->gran == PL_GRAN_WEIGHT ? "weight granularity has no such unit"
                                                              : "a pruned layer has none after it",
                                    m->layers[i].name);
        }
    /* the plan */
    int64_t total = 0, rem = 0;
    for (int k = 0; k < p->n; k++) {
        total += p->t[k].units;
        rem += p->t[k].remove;
    }
    p->requested = cfg->has_sparsity ? cfg->sparsity : total ? (double)rem / (double)total : 0;
    pl_status st = pl__schedule_plan(sched, p->requested, p->n, &p->plan, err);
    if (st)
        return st;
    p->global = p->plan.scope == PL_SCOPE_GLOBAL;
    return PL_OK;
}

void pl_pruner_free(pl_pruner *p)
{
    for (int k = 0; p->t && k < p->n; k++)
        free(p->t[k].orig);
    free(p->t);
    p->t = NULL;
    for (int i = 0; p->korig && i < p->m->n_layers; i++)
        free(p->korig[i]);
    free(p->korig);
    p->korig = NULL;
    free(p->sl);
    p->sl = NULL;
    pl_groups_free(&p->G);
}

/* ---- scoring ---------------------------------------------------------------------- */

typedef struct cand {
    double score;
    int target;   /* index into p->t */
    int64_t unit; /* unit index within the layer's current units */
} cand;

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    if (x->target != y->target)
        return x->target - y->target;
    return (x->unit > y->unit) - (x->unit < y->unit);
}

/* Makes one layer's alive candidates c[0..n) comparable across layers
 * (pl_norm, documented in plugin.h). The sums run in double in a fixed
 * order, so the ranking is reproducible. */
static pl_status normalize_layer(int mode, cand *c, int64_t n, pl_error *err)
{
    if (mode == PL_NORM_NONE || n == 0)
        return PL_OK;
    if (mode == PL_NORM_MEAN) {
        double mean = 0;
        for (int64_t i = 0; i < n; i++)
            mean += c[i].score;
        mean /= (double)n;
        if (mean > 0)
            for (int64_t i = 0; i < n; i++)
                c[i].score /= mean;
        return PL_OK;
    }
    PL_ASSERT(mode == PL_NORM_LAMP); /* pl__schedule_plan refused others */
    /* ascending by score, ties by unit index (one layer: cmp_cand's order);
     * the suffix sums of s² are the denominators */
    qsort(c, (size_t)n, sizeof *c, cmp_cand);
    double *suffix = malloc((size_t)n * sizeof *suffix);
    if (!suffix)
        return pl_error_set(err, PL_ENOMEM, "out of memory ranking %lld units", (long long)n);
    double acc = 0;
    for (int64_t i = n - 1; i >= 0; i--) {
        acc += c[i].score * c[i].score;
        suffix[i] = acc;
    }
    for (int64_t i = 0; i < n; i++)
        c[i].score = suffix[i] > 0 ? c[i].score * c[i].score / suffix[i] : 0;
    free(suffix);
    return PL_OK;
}

pl_status pl__pruner_calibrate(pl_pruner *p, const int *layers, int n, pl_data *train, int batch, uint64_t seed,
                               int step, float ***g, pl_error *err)
{
    pl_model *m = p->m;
    char stream[64];
    snprintf(stream, sizeof stream, "calibration:%d", step);
    pl_calib c;
    pl_status s = pl_calib_open(&c, train, m, batch, seed, stream, err);
    for (int b = 0; b < p->calib_batches && !s; b++) {
        s = pl_calib_next(&c, err);
        if (!s)
            s = pl_model_gradients(m, c.x, c.y, c.batch, NULL, err);
        for (int k = 0; k < n && !s; k++) {
            if (!g[k])
                continue;
            const pl_layer *l = &m->layers[layers[k]];
            memcpy(g[k][b], l->gw, (size_t)l->nw * sizeof(float));
        }
    }
    pl_calib_close(&c);
    return s;
}

/* Calibration gradients: grads[k][b] = copy of scored layer sl[k]'s gw on batch b. */
static pl_status calibrate(pl_pruner *p, pl_data *train, int batch, uint64_t seed, int step,
                           float ****out, pl_error *err)
{
    pl_model *m = p->m;
    int B = p->calib_batches;
    float ***g = calloc((size_t)p->n_sl, sizeof *g);
    if (!g)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    *out = g;
    for (int k = 0; k < p->n_sl; k++) {
        g[k] = calloc((size_t)B, sizeof **g);
        if (!g[k])
            return pl_error_set(err, PL_ENOMEM, "out of memory");
        for (int b = 0; b < B; b++) {
            g[k][b] = malloc((size_t)m->layers[p->sl[k]].nw * sizeof(float));
            if (!g[k][b])
                return pl_error_set(err, PL_ENOMEM, "out of memory for calibration gradients");
        }
    }
    return pl__pruner_calibrate(p, p->sl, p->n_sl, train, batch, seed, step, g, err);
}

static void free_calib(pl_pruner *p, float ***g)
{
    if (!g)
        return;
    for (int k = 0; k < p->n_sl; k++) {
        if (g[k])
            for (int b = 0; b < p->calib_batches; b++)
                free(g[k][b]);
        free(g[k]);
    }
    free(g);
}

void pl__unit_view(const pl_pruner *p, int li, float **grads, const pl_act *act, pl_act_stats *as, pl_unit_view *v)
{
    const pl_layer *l = &p->m->layers[li];
    if (act)
        *as = (pl_act_stats){.units = act->units, .samples = act->samples, .mean = act->mean, .sq = act->sq,
                             .zero = act->zero};
    *v = (pl_unit_view){.layer = l->name, .layer_index = li, .layer_type = l->type,
                        .granularity = p->gran, .weight = l->w, .mask = l->mask,
                        .n_grads = grads ? p->calib_batches : 0,
                        .grads = (const float *const *)grads, .act = act ? as : NULL};
    if (p->needs & PL_NEEDS_BATCHNORM) /* pl_pruner_init made sure it is there */
        v->bn_gamma = p->m->layers[pl_model_sole_consumer(p->m, li)].w;
    if (p->gran == PL_GRAN_WEIGHT) {
        v->units = l->nw;
        v->unit_size = 1;
    } else {
        v->units = l->out_c;
        v->unit_size = l->nw / l->out_c;
        v->bias = l->b;
    }
    if (l->type == PL_LAYER_CONV2D) {
        v->shape[0] = l->out_c;
        v->shape[1] = l->groups > 1 ? l->in_c / l->groups : l->in_c;
        v->shape[2] = l->kh;
        v->shape[3] = l->kw;
    } else {
        v->shape[0] = l->out_c;
        v->shape[1] = l->in_c;
        v->shape[2] = v->shape[3] = 1;
    }
}

/* Scores of layer li's current units into sc[units]; act is its
 * activation statistics (PL_NEEDS_ACTIVATIONS) or NULL. */
static pl_status score_layer(pl_pruner *p, int li, float **grads, const pl_act *act, double *sc, pl_error *err)
{
    pl_layer *l = &p->m->layers[li];
    pl_act_stats as;
    pl_unit_view v;
    pl__unit_view(p, li, grads, act, &as, &v);
    int64_t n_out = -1;
    const pl_criterion_ops *co = pl_instance_ops(p->crit);
    const char *name = pl_plugin_get_desc(pl_instance_plugin(p->crit))->name;
    pl_status st = co->score(pl_instance_state(p->crit), &v, sc, &n_out);
    if (st) {
        const char *msg = pl_instance_take_error(p->crit);
        return pl_error_set(err, PL_EPLUGIN, "criterion plugin '%s' failed on layer %s: %s", name,
                            l->name, msg[0] ? msg : pl_status_str(st));
    }
    if (n_out != v.units)
        return pl_error_set(err, PL_EPLUGIN,
                            "criterion plugin '%s' returned %lld scores for layer %s, expected "
                            "%lld",
                            name, (long long)n_out, l->name, (long long)v.units);
    for (int64_t u = 0; u < v.units; u++)
        if (!isfinite(sc[u]))
            return pl_error_set(err, PL_EPLUGIN,
                                "criterion plugin '%s' returned a non-finite score (%g) for unit "
                                "%lld of layer %s",
                                name, sc[u], (long long)u, l->name);
    return PL_OK;
}

static int unit_alive(const pl_pruner *p, const pl_layer *l, int64_t u)
{
    return p->gran != PL_GRAN_WEIGHT || !l->mask || l->mask[u] != 0.0f;
}

/* The units of target k right now (weights of its layer, or its group's units). */
static int64_t target_units(const pl_pruner *p, int k)
{
    if (p->gran == PL_GRAN_WEIGHT)
        return p->m->layers[p->t[k].layer].nw;
    return p->G.g[p->t[k].group].units;
}

/* Group scores: unit u of target k combines its members' scores
 * (prune.group_reduction) in entry order. lsc[j] holds scored layer sl[j]'s. */
static void reduce_group(const pl_pruner *p, int k, double *const *lsc, const int *slot, double *out)
{
    const pl_group *g = &p->G.g[p->t[k].group];
    for (int u = 0; u < g->units; u++) {
        const pl_group_entry *e = &g->e[(size_t)u * (size_t)g->width];
        double acc = lsc[slot[e[0].layer]][e[0].chan];
        for (int q = 1; q < g->width; q++) {
            double v = lsc[slot[e[q].layer]][e[q].chan];
            if (p->reduce == PL_GROUP_MAX)
                acc = v > acc ? v : acc;
            else
                acc += v;
        }
        out[u] = p->reduce == PL_GROUP_MEAN && g->width > 1 ? acc / (double)g->width : acc;
    }
}

/* Masks target k's chosen weights (weight granularity). */
static pl_status apply_mask(pl_pruner *p, int k, const uint8_t *drop, pl_error *err)
{
    pl_layer *l = &p->m->layers[p->t[k].layer];
    int64_t n = 0;
    if (!l->mask) {
        l->mask = malloc((size_t)l->nw * sizeof(float));
        if (!l->mask)
            return pl_error_set(err, PL_ENOMEM, "out of memory for the mask of %s", l->name);
        for (int64_t i = 0; i < l->nw; i++)
            l->mask[i] = 1.0f;
    }
    for (int64_t i = 0; i < l->nw; i++)
        if (drop[i]) {
            l->mask[i] = 0.0f;
            l->w[i] = 0.0f;
            n++;
        }
    p->t[k].removed += n;
    return PL_OK;
}

/* Removes the chosen units of every target group at once (surgery), keeps
 * the record of original indices, and derives the groups again. */
static pl_status apply_groups(pl_pruner *p, uint8_t **drop, pl_error *err)
{
    pl_model *m = p->m;
    pl_groups *G = &p->G;
    uint8_t **gd = calloc((size_t)(G->n ? G->n : 1), sizeof *gd);
    if (!gd)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    int64_t *n = calloc((size_t)(p->n ? p->n : 1), sizeof *n);
    if (!n) {
        free(gd);
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    }
    int64_t any = 0;
    for (int k = 0; k < p->n; k++) {
        gd[p->t[k].group] = drop[k];
        for (int u = 0; u < G->g[p->t[k].group].units; u++)
            n[k] += drop[k][u] != 0;
        any += n[k];
    }
    pl_status s = PL_OK;
    /* the record lists the original indices each layer kept; the new one is
     * built aside and replaces the old only once surgery has succeeded */
    int **nk_orig = calloc((size_t)(m->n_layers ? m->n_layers : 1), sizeof *nk_orig);
    if (!nk_orig)
        s = pl_error_set(err, PL_ENOMEM, "out of memory");
    for (int i = 0; i < m->n_layers && any && !s; i++) {
        const pl_layer *l = &m->layers[i];
        if (l->type != PL_LAYER_CONV2D && l->type != PL_LAYER_LINEAR)
            continue;
        int nk = 0, gone = 0;
        for (int c = 0; c < G->map_n[i]; c++) {
            int r = G->root[G->map[i][c]], g = G->node_group[r];
            gone += g >= 0 && gd[g] && gd[g][G->node_unit[r]];
        }
        if (!gone)
            continue;
        if (!(nk_orig[i] = malloc((size_t)l->out_c * sizeof **nk_orig))) {
            s = pl_error_set(err, PL_ENOMEM, "out of memory");
            break;
        }
        for (int c = 0; c < G->map_n[i]; c++) {
            int r = G->root[G->map[i][c]], g = G->node_group[r];
            if (!(g >= 0 && gd[g] && gd[g][G->node_unit[r]]))
                nk_orig[i][nk++] = p->korig[i] ? p->korig[i][c] : c;
        }
    }
    if (!s && any)
        s = pl_model_remove_group_units(m, G, (const uint8_t *const *)gd, err);
    free(gd);
    for (int i = 0; nk_orig && i < m->n_layers; i++) {
        if (!nk_orig[i])
            continue;
        if (s) {
            free(nk_orig[i]);
        } else {
            free(p->korig[i]);
            p->korig[i] = nk_orig[i];
        }
    }
    free(nk_orig);
    if (!s && any) {
        int ng = G->n;
        pl_groups_free(G);
        s = pl_groups_derive(m, G, err);
        if (!s && G->n != ng)
            s = pl_error_set(err, PL_EINVAL, "model %s: pruning changed its groups (%d, was %d)", m->name, G->n, ng);
    }
    for (int k = 0; k < p->n && !s; k++)
        p->t[k].removed += n[k];
    free(n);
    return s;
}

static pl_status unit_step(pl_pruner *p, int step, pl_data *train, int batch, uint64_t seed, pl_error *err);

pl_status pl_pruner_step(pl_pruner *p, int step, pl_data *train, int batch, uint64_t seed,
                         pl_error *err)
{
    pl_status s = p->gran == PL_GRAN_LAYER /* whole blocks: layer_prune.c */
                      ? pl__layer_pruner_step(p, step, train, batch, seed, err)
                      : unit_step(p, step, train, batch, seed, err);
    if (!s && p->bn_batches > 0) {
        char stream[64];
        snprintf(stream, sizeof stream, "bn_recalibrate:%d", step);
        s = pl_bn_recalibrate(p->m, train, p->bn_batches, batch, seed, stream, err);
    }
    return s;
}

/* channel, neuron or weight granularity: score, choose, cut or mask */
static pl_status unit_step(pl_pruner *p, int step, pl_data *train, int batch, uint64_t seed, pl_error *err)
{
    pl_model *m = p->m;
    double prog = p->plan.progress[step];
    float ***grads = NULL;
    pl_status s = PL_OK;
    if (p->needs & PL_NEEDS_GRAD) {
        s = calibrate(p, train, batch, seed, step, &grads, err);
        if (s) {
            free_calib(p, grads);
            return s;
        }
    }
    pl_act *act = NULL;
    if (p->needs & PL_NEEDS_ACTIVATIONS) {
        act = calloc((size_t)p->n_sl, sizeof *act);
        if (!act)
            s = pl_error_set(err, PL_ENOMEM, "out of memory");
        char stream[64];
        snprintf(stream, sizeof stream, "activations:%d", step);
        if (!s)
            s = pl_activations_collect(m, train, p->sl, p->n_sl, p->calib_batches, batch, seed, stream, act, err);
        if (s) {
            pl_act_free(act, act ? p->n_sl : 0);
            free(act);
            free_calib(p, grads);
            return s;
        }
    }
    /* score every scored layer, then every target (weight: its layer; else its group) */
    int grouped = p->gran != PL_GRAN_WEIGHT;
    double **lsc = calloc((size_t)(p->n_sl ? p->n_sl : 1), sizeof *lsc);
    int *slot = malloc((size_t)(m->n_layers ? m->n_layers : 1) * sizeof *slot);
    double **sc = calloc((size_t)p->n, sizeof *sc);
    uint8_t **drop = calloc((size_t)p->n, sizeof *drop);
    if (!lsc || !slot || !sc || !drop)
        s = pl_error_set(err, PL_ENOMEM, "out of memory");
    for (int i = 0; slot && i < m->n_layers; i++)
        slot[i] = -1;
    for (int j = 0; j < p->n_sl && !s; j++) {
        const pl_layer *l = &m->layers[p->sl[j]];
        slot[p->sl[j]] = j;
        lsc[j] = malloc((size_t)layer_units(l, p->gran) * sizeof(double));
        if (!lsc[j]) {
            s = pl_error_set(err, PL_ENOMEM, "out of memory for scores");
            break;
        }
        s = score_layer(p, p->sl[j], grads ? grads[j] : NULL, act ? &act[j] : NULL, lsc[j], err);
    }
    for (int k = 0; k < p->n && !s; k++) {
        int64_t units = target_units(p, k);
        drop[k] = calloc((size_t)units, 1);
        if (grouped)
            sc[k] = malloc((size_t)units * sizeof(double));
        if (!drop[k] || (grouped && !sc[k])) {
            s = pl_error_set(err, PL_ENOMEM, "out of memory for scores");
            break;
        }
        if (grouped)
            reduce_group(p, k, lsc, slot, sc[k]);
        else
            sc[k] = lsc[k]; /* weight: target k is scored layer k */
    }
    if (!s && !p->global) {
        for (int k = 0; k < p->n && !s; k++) {
            const pl_layer *l = &m->layers[p->t[k].layer];
            int64_t goal = round_half_up(prog * (double)p->t[k].remove);
            int64_t need = goal - p->t[k].removed;
            if (need <= 0)
                continue;
            int64_t units = target_units(p, k), nc = 0;
            cand *c = malloc((size_t)units * sizeof *c);
            if (!c) {
                s = pl_error_set(err, PL_ENOMEM, "out of memory");
                break;
            }
            for (int64_t u = 0; u < units; u++)
                if (unit_alive(p, l, u))
                    c[nc++] = (cand){sc[k][u], k, u};
            qsort(c, (size_t)nc, sizeof *c, cmp_cand);
            if (need > nc - 1)
                need = nc - 1;
            for (int64_t i = 0; i < need; i++)
                drop[k][c[i].unit] = 1;
            free(c);
        }
    } else if (!s) {
        /* global: normalise each layer's alive scores (plan.normalize), rank together */
        int64_t total_remove = 0, removed = 0, ncand = 0;
        for (int k = 0; k < p->n; k++) {
            total_remove += p->t[k].remove;
            removed += p->t[k].removed;
            ncand += target_units(p, k);
        }
        int64_t need = round_half_up(prog * (double)total_remove) - removed;
        cand *c = ncand ? malloc((size_t)ncand * sizeof *c) : NULL;
        int64_t *room = calloc((size_t)p->n, sizeof *room);
        if (!c || !room)
            s = pl_error_set(err, PL_ENOMEM, "out of memory");
        int64_t nc = 0;
        for (int k = 0; k < p->n && !s; k++) {
            const pl_layer *l = &m->layers[p->t[k].layer];
            int64_t units = target_units(p, k);
            int64_t orig = p->t[k].units;
            int64_t keep_min = (int64_t)ceil(p->plan.floor * (double)orig);
            if (keep_min < 1)
                keep_min = 1;
            int64_t max_removed = (int64_t)floor(p->plan.cap * (double)orig);
            if (max_removed > orig - keep_min)
                max_removed = orig - keep_min;
            room[k] = max_removed - p->t[k].removed;
            int64_t first = nc;
            for (int64_t u = 0; u < units; u++)
                if (unit_alive(p, l, u))
                    c[nc++] = (cand){sc[k][u], k, u};
            s = normalize_layer(p->plan.normalize, c + first, nc - first, err);
        }
        if (!s) {
            qsort(c, (size_t)nc, sizeof *c, cmp_cand);
            for (int64_t i = 0; i < nc && need > 0; i++) {
                int k = c[i].target;
                if (room[k] <= 0)
                    continue;
                drop[k][c[i].unit] = 1;
                room[k]--;
                need--;
            }
        }
        free(c);
        free(room);
    }
    /* merge.h: a criterion with a merge slot folds dropped units into their
     * twins; all or nothing: if surgery fails, the folded weights go back */
    pl_merge_undo undo = {0};
    int64_t merged0 = p->merged;
    if (!s && grouped)
        s = pl__pruner_merge(p, drop, grads, act, slot, &undo, err);
    if (!s && grouped)
        s = apply_groups(p, drop, err);
    if (s && undo.n)
        p->merged = merged0;
    pl__merge_undo_end(p->m, &undo, s != PL_OK);
    for (int k = 0; k < p->n && !s && !grouped; k++)
        s = apply_mask(p, k, drop[k], err);
    for (int k = 0; k < p->n; k++) {
        if (grouped && sc)
            free(sc[k]);
        if (drop)
            free(drop[k]);
    }
    for (int j = 0; lsc && j < p->n_sl; j++)
        free(lsc[j]);
    free(lsc);
    free(slot);
    free(sc);
    free(drop);
    free_calib(p, grads);
    pl_act_free(act, act ? p->n_sl : 0);
    free(act);
    return s;
}

void pl_pruner_sparsity(const pl_pruner *p, double *target, double *achieved)
{
    int64_t units = 0, got = 0;
    for (int k = 0; k < p->n; k++) {
        units += p->t[k].units;
        got += p->t[k].removed;
    }
    *target = p->requested;
    *achieved = units ? (double)got / (double)units : 0;
}

pl_status pl_pruner_check(const pl_pruner *p, pl_error *err)
{
    if (p->gran == PL_GRAN_LAYER) { /* whole blocks: the total counts */
        int64_t got = 0;
        for (int k = 0; k < p->n; k++)
            got += p->t[k].removed;
        if (llabs((long long)(p->layer_goal - got)) > p->tolerance)
            return pl_error_set(err, PL_EMISSED, "layer pruning removed %lld of %d removable layers, target %lld",
                                (long long)got, p->n, (long long)p->layer_goal);
        return PL_OK;
    }
    if (p->global) {
        int64_t want = 0, got = 0;
        for (int k = 0; k < p->n; k++) {
            want += p->t[k].remove;
            got += p->t[k].removed;
        }
        if (llabs((long long)(want - got)) > p->tolerance + p->n)
            return pl_error_set(err, PL_EMISSED,
                                "global pruning removed %lld units, target %lld (floor/cap left "
                                "too little room; lower prune.schedule.floor or raise cap)",
                                (long long)got, (long long)want);
        return PL_OK;
    }
    for (int k = 0; k < p->n; k++) {
        const pl_prune_target *t = &p->t[k];
        if (llabs((long long)(t->remove - t->removed)) > p->tolerance)
            return pl_error_set(err, PL_EMISSED, "layer %s: removed %lld of %lld units, target %lld",
                                p->m->layers[t->layer].name, (long long)t->removed,
                                (long long)t->units, (long long)t->remove);
    }
    return PL_OK;
}

const int *pl_pruner_kept(const pl_pruner *p, int layer, int *n)
{
    if (!p->korig || layer < 0 || layer >= p->m->n_layers || !p->korig[layer])
        return NULL;
    *n = p->m->layers[layer].out_c;
    return p->korig[layer];
}

void pl_pruner_print_groups(const pl_pruner *p, FILE *f)
{
    if (p->gran != PL_GRAN_CHANNEL && p->gran != PL_GRAN_NEURON)
        return;
    int graph = !pl_model_is_chain(p->m);
    for (int i = 0; i < p->m->n_layers; i++)
        graph |= p->m->layers[i].type == PL_LAYER_CONV2D && p->m->layers[i].groups > 1;
    if (graph) /* a chain's groups are its layers, listed above */
        pl_groups_print(p->m, &p->G, f);
}
