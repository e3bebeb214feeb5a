/* groups.c — pruning groups derived from the graph (rules in groups.h). */
#include "groups.h"

#include <stdlib.h>
#include <string.h>

int pl_model_sole_consumer(const pl_model *m, int li)
{
    int found = -1;
    for (int j = li + 1; j < m->n_layers; j++) {
        const pl_layer *l = &m->layers[j];
        int n_in = l->n_in >= 1 ? l->n_in : 1;
        for (int k = 0; k < n_in; k++)
            if ((l->n_in >= 1 ? l->in[k] : j - 1) == li) {
                if (found >= 0)
                    return -1;
                found = j;
            }
    }
    return found;
}

/* ---- union-find over nodes ----------------------------------------------------------- */

static int find(int *root, int a)
{
    while (root[a] != a) {
        root[a] = root[root[a]];
        a = root[a];
    }
    return a;
}

static void unite(int *root, int a, int b)
{
    a = find(root, a);
    b = find(root, b);
    if (a != b) { /* the smaller index stays the root: deterministic */
        if (a < b)
            root[b] = a;
        else
            root[a] = b;
    }
}

typedef struct derive {
    const pl_model *m;
    pl_groups *G;
    int *in_map;        /* the model input's channels */
    unsigned *nflags;   /* per node */
    int next;           /* next fresh node */
    int cap;
    pl_group_entry *ent; /* member entries */
    int *ent_node;
    int n_ent;
} derive;

/* The channel space layer j (-1: the model input) produces. */
static const int *space(const derive *d, int j, int *n, int64_t *block)
{
    if (j < 0) {
        *n = d->m->in_c;
        *block = 1;
        return d->in_map;
    }
    *n = d->G->map_n[j];
    *block = d->G->block[j];
    return d->G->map[j];
}

static int fresh(derive *d, int n, unsigned flags, int *out)
{
    if (n < 0 || n > d->cap - d->next)
        return -1;
    for (int c = 0; c < n; c++) {
        out[c] = d->next;
        d->nflags[d->next++] = flags;
    }
    return 0;
}

static void flag_space(derive *d, const int *map, int n, unsigned f)
{
    for (int c = 0; c < n; c++)
        d->nflags[map[c]] |= f;
}

static void add_entries(derive *d, int layer, const int *map, int n)
{
    for (int c = 0; c < n; c++) {
        d->ent[d->n_ent] = (pl_group_entry){layer, c};
        d->ent_node[d->n_ent++] = map[c];
    }
}

typedef struct root_rec {
    int root;
    int first, n;   /* its entries in the sorted entry list */
    unsigned flags;
} root_rec;

static const pl_group_entry *g_ent; /* qsort context: entries sorted by root */
static const int *g_ent_root;

static int cmp_ent(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (g_ent_root[x] != g_ent_root[y])
        return g_ent_root[x] < g_ent_root[y] ? -1 : 1;
    if (g_ent[x].layer != g_ent[y].layer)
        return g_ent[x].layer < g_ent[y].layer ? -1 : 1;
    return g_ent[x].chan - g_ent[y].chan;
}

static const int *g_order; /* entry indices sorted by cmp_ent */

/* Units with the same member layers (then flags) are one group; within it
 * by the first entry's channel. */
static int cmp_root(const void *a, const void *b)
{
    const root_rec *x = a, *y = b;
    int n = x->n < y->n ? x->n : y->n;
    for (int k = 0; k < n; k++) {
        int lx = g_ent[g_order[x->first + k]].layer, ly = g_ent[g_order[y->first + k]].layer;
        if (lx != ly)
            return lx < ly ? -1 : 1;
    }
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    if (x->flags != y->flags)
        return x->flags < y->flags ? -1 : 1;
    return g_ent[g_order[x->first]].chan - g_ent[g_order[y->first]].chan;
}

static int same_group(const root_rec *x, const root_rec *y)
{
    if (x->n != y->n || x->flags != y->flags)
        return 0;
    for (int k = 0; k < x->n; k++)
        if (g_ent[g_order[x->first + k]].layer != g_ent[g_order[y->first + k]].layer)
            return 0;
    return 1;
}

void pl_groups_free(pl_groups *G)
{
    for (int g = 0; G->g && g < G->n; g++)
        free(G->g[g].e);
    free(G->g);
    for (int i = 0; G->map && i < G->n_layers; i++)
        free(G->map[i]);
    free(G->map);
    free(G->map_n);
    free(G->block);
    free(G->root);
    free(G->node_group);
    free(G->node_unit);
    memset(G, 0, sizeof *G);
}

static int is_depthwise(const pl_layer *l)
{
    return l->type == PL_LAYER_CONV2D && l->groups > 1 && l->groups == l->in_c && l->groups == l->out_c;
}

pl_status pl_groups_derive(const pl_model *m, pl_groups *G, pl_error *err)
{
    memset(G, 0, sizeof *G);
    derive d = {.m = m, .G = G};
    int64_t cap = m->in_c, ents = 0;
    for (int i = 0; i < m->n_layers; i++) {
        cap += m->layers[i].out_c;
        ents += m->layers[i].out_c;
    }
    if (cap > PL_MAX_ELEMS)
        return pl_error_set(err, PL_ENOMEM, "model %s: too many channels to derive pruning groups", m->name);
    d.cap = (int)cap;
    G->n_layers = m->n_layers;
    G->map = calloc((size_t)(m->n_layers ? m->n_layers : 1), sizeof *G->map);
    G->map_n = calloc((size_t)(m->n_layers ? m->n_layers : 1), sizeof *G->map_n);
    G->block = calloc((size_t)(m->n_layers ? m->n_layers : 1), sizeof *G->block);
    G->root = malloc((size_t)(cap ? cap : 1) * sizeof *G->root);
    d.in_map = malloc((size_t)(m->in_c ? m->in_c : 1) * sizeof *d.in_map);
    d.nflags = calloc((size_t)(cap ? cap : 1), sizeof *d.nflags);
    d.ent = malloc((size_t)(ents ? ents : 1) * sizeof *d.ent);
    d.ent_node = malloc((size_t)(ents ? ents : 1) * sizeof *d.ent_node);
    int *order = NULL, *ent_root = NULL;
    root_rec *rr = NULL;
    pl_status s = PL_OK;
    if (!G->map || !G->map_n || !G->block || !G->root || !d.in_map || !d.nflags || !d.ent || !d.ent_node) {
        s = pl_error_set(err, PL_ENOMEM, "out of memory deriving the pruning groups of model %s", m->name);
        goto done;
    }
    for (int64_t a = 0; a < cap; a++)
        G->root[a] = (int)a;
    fresh(&d, m->in_c, PL_GROUP_INPUT, d.in_map);
    for (int i = 0; i < m->n_layers && !s; i++) {
        const pl_layer *l = &m->layers[i];
        int n_in = l->n_in >= 1 ? l->n_in : 1;
        int src[PL_MAX_INPUTS];
        for (int k = 0; k < n_in; k++)
            src[k] = l->n_in >= 1 ? l->in[k] : i - 1;
        int sn;
        int64_t sb;
        const int *sm = space(&d, src[0], &sn, &sb);
        int n = sn;
        int64_t block = sb;
        int copy = 1; /* the output space is the first input's */
        unsigned fresh_flags = 0;
        int fixed_inputs = 0;
        switch ((int)l->type) {
        case PL_LAYER_CONV2D:
            if (is_depthwise(l) && sb == 1 && sn == l->in_c)
                break;
            copy = 0;
            if (l->groups > 1) {
                fixed_inputs = 1;
                fresh_flags = PL_GROUP_FIXED;
            }
            break;
        case PL_LAYER_LINEAR:
            copy = 0;
            break;
        case PL_LAYER_BATCHNORM2D:
        case PL_LAYER_RELU:
        case PL_LAYER_DROPOUT:
        case PL_LAYER_MAXPOOL2D:
        case PL_LAYER_AVGPOOL2D:
        case PL_LAYER_GLOBAL_AVGPOOL:
            break;
        case PL_LAYER_FLATTEN:
            block = sb * l->in_h * l->in_w;
            break;
        case PL_LAYER_ADD:
            for (int k = 1; k < n_in; k++) {
                int tn;
                int64_t tb;
                space(&d, src[k], &tn, &tb);
                if (tn != sn || tb != sb)
                    fixed_inputs = 1;
            }
            if (fixed_inputs) {
                copy = 0;
                fresh_flags = PL_GROUP_FIXED;
                break;
            }
            for (int k = 1; k < n_in; k++) {
                int tn;
                int64_t tb;
                const int *tm = space(&d, src[k], &tn, &tb);
                for (int c = 0; c < sn; c++)
                    unite(G->root, sm[c], tm[c]);
            }
            break;
        case PL_LAYER_CONCAT:
            n = 0;
            for (int k = 0; k < n_in; k++) {
                int tn;
                int64_t tb;
                space(&d, src[k], &tn, &tb);
                if (tb != sb)
                    fixed_inputs = 1;
                n += tn;
            }
            if (fixed_inputs) {
                copy = 0;
                fresh_flags = PL_GROUP_FIXED;
            }
            break;
        case PL_LAYER_SLICE:
            /* a channel range at fixed offsets: the channels it reads and
             * the ones it makes stay whole (pinned, not prunable) */
            copy = 0;
            fixed_inputs = 1;
            fresh_flags = PL_GROUP_SLICE;
            break;
        default: /* a layer this file does not know: keep its channels whole */
            copy = 0;
            fixed_inputs = 1;
            fresh_flags = PL_GROUP_FIXED;
            break;
        }
        if (!copy) {
            n = l->out_c;
            block = 1;
        }
        G->map[i] = malloc((size_t)(n > 0 ? n : 1) * sizeof **G->map);
        if (!G->map[i]) {
            s = pl_error_set(err, PL_ENOMEM, "out of memory deriving the pruning groups of model %s", m->name);
            break;
        }
        G->map_n[i] = n;
        G->block[i] = block;
        if (fixed_inputs)
            for (int k = 0; k < n_in; k++) {
                int tn;
                int64_t tb;
                const int *tm = space(&d, src[k], &tn, &tb);
                flag_space(&d, tm, tn, l->type == PL_LAYER_SLICE ? PL_GROUP_SLICE : PL_GROUP_FIXED);
            }
        if (!copy) {
            if (fresh(&d, n, fresh_flags, G->map[i])) {
                s = pl_error_set(err, PL_ENOMEM, "model %s: channel count of layer %s out of range", m->name,
                                 l->name);
                break;
            }
        } else if (l->type == PL_LAYER_CONCAT) {
            int o = 0;
            for (int k = 0; k < n_in; k++) {
                int tn;
                int64_t tb;
                const int *tm = space(&d, src[k], &tn, &tb);
                memcpy(G->map[i] + o, tm, (size_t)tn * sizeof *tm);
                o += tn;
            }
        } else {
            memcpy(G->map[i], sm, (size_t)n * sizeof *sm);
        }
        if ((l->type == PL_LAYER_CONV2D && l->groups <= 1) || l->type == PL_LAYER_LINEAR ||
            (l->type == PL_LAYER_CONV2D && copy))
            add_entries(&d, i, G->map[i], G->map_n[i]);
    }
    if (s)
        goto done;
    /* the classes are never pruned: the output layer's and the last layer's outputs */
    int out = pl_model_output_layer(m);
    if (out >= 0)
        flag_space(&d, G->map[out], G->map_n[out], PL_GROUP_OUTPUT);
    if (m->n_layers > 0)
        flag_space(&d, G->map[m->n_layers - 1], G->map_n[m->n_layers - 1], PL_GROUP_OUTPUT);
    /* flags onto the roots; full compression */
    G->n_nodes = d.next;
    for (int a = 0; a < d.next; a++) {
        int r = find(G->root, a);
        if (r != a)
            d.nflags[r] |= d.nflags[a];
    }
    for (int a = 0; a < d.next; a++)
        G->root[a] = find(G->root, a);
    /* entries sorted by (root, layer, channel); one record per root */
    order = malloc((size_t)(d.n_ent ? d.n_ent : 1) * sizeof *order);
    ent_root = malloc((size_t)(d.n_ent ? d.n_ent : 1) * sizeof *ent_root);
    rr = malloc((size_t)(d.n_ent ? d.n_ent : 1) * sizeof *rr);
    G->node_group = malloc((size_t)(d.next ? d.next : 1) * sizeof *G->node_group);
    G->node_unit = malloc((size_t)(d.next ? d.next : 1) * sizeof *G->node_unit);
    if (!order || !ent_root || !rr || !G->node_group || !G->node_unit) {
        s = pl_error_set(err, PL_ENOMEM, "out of memory deriving the pruning groups of model %s", m->name);
        goto done;
    }
    for (int e = 0; e < d.n_ent; e++) {
        order[e] = e;
        ent_root[e] = G->root[d.ent_node[e]];
    }
    g_ent = d.ent;
    g_ent_root = ent_root;
    qsort(order, (size_t)d.n_ent, sizeof *order, cmp_ent);
    g_order = order;
    int nr = 0;
    for (int e = 0; e < d.n_ent; e++) {
        int r = ent_root[order[e]];
        if (e == 0 || r != ent_root[order[e - 1]])
            rr[nr++] = (root_rec){.root = r, .first = e, .n = 0, .flags = d.nflags[r]};
        rr[nr - 1].n++;
    }
    qsort(rr, (size_t)nr, sizeof *rr, cmp_root);
    for (int a = 0; a < d.next; a++)
        G->node_group[a] = G->node_unit[a] = -1;
    int ng = 0;
    for (int q = 0; q < nr; q++)
        ng += q == 0 || !same_group(&rr[q - 1], &rr[q]);
    G->g = calloc((size_t)(ng ? ng : 1), sizeof *G->g);
    if (!G->g) {
        s = pl_error_set(err, PL_ENOMEM, "out of memory deriving the pruning groups of model %s", m->name);
        goto done;
    }
    for (int q = 0, gi = -1; q < nr; q++) {
        if (q == 0 || !same_group(&rr[q - 1], &rr[q])) {
            int n = 1;
            while (q + n < nr && same_group(&rr[q], &rr[q + n]))
                n++;
            pl_group *g = &G->g[++gi];
            G->n = gi + 1;
            g->width = rr[q].n;
            g->flags = rr[q].flags;
            g->e = malloc((size_t)n * (size_t)g->width * sizeof *g->e);
            if (!g->e) {
                s = pl_error_set(err, PL_ENOMEM, "out of memory deriving the pruning groups of model %s",
                                 m->name);
                goto done;
            }
            pl_layer_type kind = m->layers[d.ent[order[rr[q].first]].layer].type;
            for (int k = 0; k < g->width; k++)
                if (m->layers[d.ent[order[rr[q].first + k]].layer].type != kind)
                    kind = (pl_layer_type)0;
            g->kind = kind;
        }
        pl_group *g = &G->g[gi];
        for (int k = 0; k < g->width; k++)
            g->e[(size_t)g->units * (size_t)g->width + (size_t)k] = d.ent[order[rr[q].first + k]];
        G->node_group[rr[q].root] = gi;
        G->node_unit[rr[q].root] = g->units++;
    }
done:
    free(d.in_map);
    free(d.nflags);
    free(d.ent);
    free(d.ent_node);
    free(order);
    free(ent_root);
    free(rr);
    if (s)
        pl_groups_free(G);
    return s;
}

int pl_groups_find(const pl_groups *G, int li)
{
    for (int g = 0; g < G->n; g++)
        for (int k = 0; k < G->g[g].width; k++)
            if (G->g[g].e[k].layer == li)
                return g;
    return -1;
}

int pl_group_members(const pl_group *g, int *out, int cap)
{
    int n = 0;
    for (int k = 0; k < g->width && n < cap; k++)
        if (!n || out[n - 1] != g->e[k].layer)
            out[n++] = g->e[k].layer;
    return n;
}

/* What one unit of group gi removes, counted on its first unit. */
static void unit_cost(const pl_model *m, const pl_groups *G, int gi, int64_t *params, int64_t *inputs)
{
    const pl_group *g = &G->g[gi];
    *params = *inputs = 0;
    if (!g->units)
        return;
    int node = -1;
    for (int a = 0; a < G->n_nodes && node < 0; a++)
        if (G->root[a] == a && G->node_group[a] == gi && G->node_unit[a] == 0)
            node = a;
    for (int i = 0; i < m->n_layers; i++) {
        const pl_layer *l = &m->layers[i];
        int64_t outs = 0, ins = 0;
        for (int c = 0; c < G->map_n[i]; c++)
            outs += G->root[G->map[i][c]] == node;
        int n_in = l->n_in >= 1 ? l->n_in : 1;
        for (int k = 0; k < n_in; k++) {
            int j = l->n_in >= 1 ? l->in[k] : i - 1;
            if (j < 0)
                continue;
            int64_t b = G->block[j];
            for (int c = 0; c < G->map_n[j]; c++)
                ins += (G->root[G->map[j][c]] == node) * b;
        }
        if (l->type == PL_LAYER_CONV2D) {
            int64_t k2 = (int64_t)l->kh * l->kw;
            if (l->groups > 1) /* depthwise: its slice */
                *params += outs * (k2 + (l->has_bias != 0));
            else {
                *params += outs * ((int64_t)l->in_c * k2 + (l->has_bias != 0)) + ins * (l->out_c - outs) * k2;
                *inputs += ins;
            }
        } else if (l->type == PL_LAYER_LINEAR) {
            *params += outs * ((int64_t)l->in_c + (l->has_bias != 0)) + ins * (l->out_c - outs);
            *inputs += ins;
        } else if (l->type == PL_LAYER_BATCHNORM2D) {
            *params += 2 * outs;
        }
    }
}

void pl_groups_print(const pl_model *m, const pl_groups *G, FILE *f)
{
    fprintf(f, "  groups     %d pruning group(s) (channels or neurons that go together):\n", G->n);
    for (int gi = 0; gi < G->n; gi++) {
        const pl_group *g = &G->g[gi];
        int mem[PL_MAX_INPUTS * 4];
        int nm = pl_group_members(g, mem, (int)(sizeof mem / sizeof *mem));
        fprintf(f, "    group %d: %d unit(s), members", gi + 1, g->units);
        for (int k = 0; k < nm; k++)
            fprintf(f, " %s%s", m->layers[mem[k]].name, m->layers[mem[k]].groups > 1 ? "(depthwise)" : "");
        if (g->flags) {
            fprintf(f, "; not prunable (%s%s%s%s)\n",
                    g->flags & PL_GROUP_INPUT ? "tied to the model input" : "",
                    g->flags & PL_GROUP_OUTPUT ? (g->flags & PL_GROUP_INPUT ? ", the classes" : "the classes") : "",
                    g->flags & PL_GROUP_FIXED ? (g->flags & 3u ? ", a grouped conv" : "tied to a grouped conv") : "",
                    g->flags & PL_GROUP_SLICE ? (g->flags & 7u ? ", pinned by a slice layer"
                                                              : "pinned by a slice layer (fixed channel offsets)")
                                              : "");
            continue;
        }
        int64_t params, inputs;
        unit_cost(m, G, gi, &params, &inputs);
        fprintf(f, "; one unit removes %d output channel(s)/neuron(s), %lld input column(s) of consumers, "
                   "%lld parameter(s)\n",
                g->width, (long long)inputs, (long long)params);
    }
}

int pl_group_fits(const pl_group *g, pl_granularity gran)
{
    return !g->flags && g->kind == (gran == PL_GRAN_CHANNEL ? PL_LAYER_CONV2D : PL_LAYER_LINEAR);
}
