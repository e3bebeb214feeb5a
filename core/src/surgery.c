/* surgery.c — structural surgery on a model: remove output units of a
 * layer with everything that reads them, or whole blocks of layers (rules
 * in surgery.h). Surviving weights, biases, masks and statistics are moved,
 * never recomputed. */
#include "surgery.h"
#include "groups.h"

#include <stdlib.h>
#include <string.h>

/* Keeps rows r (of `cols` floats each) with keep[r] != 0. In place. */
static void keep_rows(float *a, int rows, int64_t cols, const uint8_t *keep)
{
    if (!a)
        return;
    int64_t o = 0;
    for (int r = 0; r < rows; r++)
        if (keep[r]) {
            if (o != (int64_t)r * cols)
                memmove(a + o, a + (int64_t)r * cols, (size_t)cols * sizeof(float));
            o += cols;
        }
}

/* a is [rows][groups][inner]; keeps groups g with keep[g] != 0. In place. */
static void keep_groups(float *a, int64_t rows, int groups, int64_t inner, const uint8_t *keep)
{
    if (!a)
        return;
    int64_t o = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int g = 0; g < groups; g++)
            if (keep[g]) {
                int64_t src = (r * groups + g) * inner;
                if (o != src)
                    memmove(a + o, a + src, (size_t)inner * sizeof(float));
                o += inner;
            }
}

/* The channel space layer j (-1: the model's input) produces, as
 * (nodes, count, columns per channel). */
static const int *space_of(const pl_model *m, const pl_groups *G, int j, int *n, int64_t *block)
{
    if (j < 0) {
        *n = m->in_c;
        *block = 1;
        return NULL; /* the input's channels are never cut */
    }
    *n = G->map_n[j];
    *block = G->block[j];
    return G->map[j];
}

static int keep_of(const pl_groups *G, const int *map, int n, const uint8_t *dead, uint8_t *keep)
{
    int kept = 0;
    for (int c = 0; c < n; c++) {
        keep[c] = !(map && dead[G->root[map[c]]]);
        kept += keep[c];
    }
    return kept;
}

pl_status pl__model_cut(pl_model *m, const pl_groups *G, const uint8_t *dead, pl_error *err)
{
    int64_t most = 1;
    for (int i = 0; i < m->n_layers; i++)
        if (G->map_n[i] > most)
            most = G->map_n[i];
    if (m->in_c > most)
        most = m->in_c;
    uint8_t *ik = malloc((size_t)most), *ok = malloc((size_t)most);
    if (!ik || !ok) {
        free(ik);
        free(ok);
        return pl_error_set(err, PL_ENOMEM, "out of memory during surgery on model %s", m->name);
    }
    /* refuse before anything moves: a cut never empties a layer, never
     * touches a grouped conv's channels */
    pl_status s = PL_OK;
    for (int i = 0; i < m->n_layers && !s; i++) {
        const pl_layer *l = &m->layers[i];
        int sn, on = G->map_n[i];
        int64_t sb;
        const int *sm = space_of(m, G, l->n_in >= 1 ? l->in[0] : i - 1, &sn, &sb);
        int kin = keep_of(G, sm, sn, dead, ik), kout = keep_of(G, G->map[i], on, dead, ok);
        if ((on && kout == 0) || (sn && kin == 0))
            s = pl_error_set(err, PL_EINVAL, "layer %s: refusing to remove all its %s channels", l->name,
                             kout == 0 ? "output" : "input");
        else if (l->type == PL_LAYER_CONV2D && l->groups > 1 && !(l->groups == l->in_c && l->groups == l->out_c) &&
                 (kin != sn || kout != on))
            s = pl_error_set(err, PL_EINVAL, "layer %s: a grouped conv2d keeps all its channels", l->name);
    }
    int oom = 0;
    for (int i = 0; i < m->n_layers && !s; i++) {
        pl_layer *l = &m->layers[i];
        int sn, on = G->map_n[i];
        int64_t sb;
        const int *sm = space_of(m, G, l->n_in >= 1 ? l->in[0] : i - 1, &sn, &sb);
        int kin = keep_of(G, sm, sn, dead, ik), kout = keep_of(G, G->map[i], on, dead, ok);
        if (kin == sn && kout == on)
            continue;
        if (l->type == PL_LAYER_CONV2D && l->groups > 1) { /* depthwise: its input is its output */
            int64_t row = l->nw / l->out_c;
            keep_rows(l->w, l->out_c, row, ok);
            keep_rows(l->mask, l->out_c, row, ok);
            keep_rows(l->b, l->out_c, 1, ok);
            l->removed_units += l->out_c - kout;
            l->groups = l->in_c = l->out_c = kout;
            l->nw = row * kout;
            l->nb = l->has_bias ? kout : 0;
            oom |= pl_layer_scratch_reset(l) != PL_OK;
        } else if (l->type == PL_LAYER_CONV2D) {
            /* w[cout][cin][kh][kw]: output rows, then input channel groups */
            int64_t inner = (int64_t)l->kh * l->kw;
            keep_rows(l->w, l->out_c, (int64_t)l->in_c * inner, ok);
            keep_rows(l->mask, l->out_c, (int64_t)l->in_c * inner, ok);
            keep_rows(l->b, l->out_c, 1, ok);
            keep_groups(l->w, kout, sn, inner, ik);
            keep_groups(l->mask, kout, sn, inner, ik);
            l->removed_units += l->out_c - kout;
            l->out_c = kout;
            l->in_c = kin;
            l->nw = (int64_t)kout * kin * inner;
            l->nb = l->has_bias ? kout : 0;
            oom |= pl_layer_scratch_reset(l) != PL_OK;
        } else if (l->type == PL_LAYER_LINEAR) {
            /* w[out][in], in = channels*block: output rows, then blocks of columns */
            keep_rows(l->w, l->out_c, l->in_c, ok);
            keep_rows(l->mask, l->out_c, l->in_c, ok);
            keep_rows(l->b, l->out_c, 1, ok);
            keep_groups(l->w, kout, sn, sb, ik);
            keep_groups(l->mask, kout, sn, sb, ik);
            l->removed_units += l->out_c - kout;
            l->out_c = kout;
            l->in_c = (int)(kin * sb);
            l->nw = (int64_t)kout * l->in_c;
            l->nb = l->has_bias ? kout : 0;
            oom |= pl_layer_scratch_reset(l) != PL_OK;
        } else if (l->type == PL_LAYER_BATCHNORM2D) {
            keep_rows(l->w, on, 1, ok);
            keep_rows(l->b, on, 1, ok);
            keep_rows(l->run_mean, on, 1, ok);
            keep_rows(l->run_var, on, 1, ok);
            l->nw = l->nb = kout;
            oom |= pl_layer_scratch_reset(l) != PL_OK;
        }
        /* relu, pools, dropout, flatten, add, concat: the shape rule follows */
    }
    free(ik);
    free(ok);
    if (!s && oom)
        s = pl_error_set(err, PL_ENOMEM, "out of memory during surgery on model %s", m->name);
    return s;
}

pl_status pl_model_remove_group_units(pl_model *m, const pl_groups *G, const uint8_t *const *drop, pl_error *err)
{
    uint8_t *dead = calloc((size_t)(G->n_nodes ? G->n_nodes : 1), 1);
    if (!dead)
        return pl_error_set(err, PL_ENOMEM, "out of memory during surgery on model %s", m->name);
    int any = 0;
    pl_status s = PL_OK;
    for (int g = 0; g < G->n && !s; g++) {
        if (!drop[g])
            continue;
        int nd = 0;
        for (int u = 0; u < G->g[g].units; u++)
            nd += drop[g][u] != 0;
        if (!nd)
            continue;
        if (G->g[g].flags)
            s = pl_error_set(err, PL_EINVAL, "layer %s: its pruning group is tied to the model's %s and is never pruned",
                             m->layers[G->g[g].e[0].layer].name,
                             G->g[g].flags & PL_GROUP_OUTPUT ? "outputs" : G->g[g].flags & PL_GROUP_INPUT ? "input"
                             : G->g[g].flags & PL_GROUP_SLICE ? "slice layers" : "grouped conv2d");
        else if (nd == G->g[g].units)
            s = pl_error_set(err, PL_EINVAL, "layer %s: refusing to remove all %d units of its pruning group",
                             m->layers[G->g[g].e[0].layer].name, G->g[g].units);
        any = 1;
    }
    for (int a = 0; a < G->n_nodes && !s; a++) {
        int g = G->node_group[G->root[a]];
        if (g >= 0 && drop[g] && drop[g][G->node_unit[G->root[a]]])
            dead[a] = 1;
    }
    if (!s && any)
        s = pl__model_cut(m, G, dead, err);
    free(dead);
    if (!s && any)
        s = pl_model_reshape(m, err);
    return s;
}

pl_status pl_model_remove_units(pl_model *m, int li, const uint8_t *keep, pl_error *err)
{
    pl_layer *l = &m->layers[li];
    if (l->type != PL_LAYER_CONV2D && l->type != PL_LAYER_LINEAR)
        return pl_error_set(err, PL_EINVAL, "layer %s: only conv2d and linear units can be removed",
                            l->name);
    if (li == pl_model_output_layer(m))
        return pl_error_set(err, PL_EINVAL, "layer %s is the output layer and is never pruned",
                            l->name);
    int old = l->out_c, kept = 0;
    for (int u = 0; u < old; u++)
        kept += keep[u] != 0;
    if (kept == 0)
        return pl_error_set(err, PL_EINVAL, "layer %s: refusing to remove all %d units", l->name, old);
    if (kept == old)
        return PL_OK;
    pl_groups G;
    pl_status s = pl_groups_derive(m, &G, err);
    if (s)
        return s;
    uint8_t **drop = calloc((size_t)(G.n ? G.n : 1), sizeof *drop);
    if (!drop)
        s = pl_error_set(err, PL_ENOMEM, "out of memory during surgery on layer %s", l->name);
    for (int c = 0; c < old && !s; c++) {
        if (keep[c])
            continue;
        int r = G.root[G.map[li][c]], g = G.node_group[r];
        if (g < 0) {
            s = pl_error_set(err, PL_EINVAL, "layer %s: channel %d belongs to no pruning group", l->name, c);
            break;
        }
        if (!drop[g] && !(drop[g] = calloc((size_t)G.g[g].units, 1))) {
            s = pl_error_set(err, PL_ENOMEM, "out of memory during surgery on layer %s", l->name);
            break;
        }
        drop[g][G.node_unit[r]] = 1;
    }
    if (!s)
        s = pl_model_remove_group_units(m, &G, (const uint8_t *const *)drop, err);
    for (int g = 0; drop && g < G.n; g++)
        free(drop[g]);
    free(drop);
    pl_groups_free(&G);
    return s;
}

/* ---- whole layers ---------------------------------------------------------------- */

static int passes_through(pl_layer_type t)
{
    return t == PL_LAYER_BATCHNORM2D || t == PL_LAYER_RELU || t == PL_LAYER_DROPOUT;
}

static int is_graph(const pl_model *m)
{
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].type == PL_LAYER_CONV2D && m->layers[i].groups > 1)
            return 1;
    return !pl_model_is_chain(m);
}

/* Graph models: the layers [head, a] form a residual branch with its add
 * when head (a conv2d/linear) reads x, layer a is an add of exactly x and
 * a layer of the branch (an identity shortcut), every branch layer reads
 * only earlier branch layers (the head: x), and nothing outside reads a
 * branch layer but the add. Removing the span leaves the add's readers
 * reading x: the add passes its shortcut through. Returns the span's
 * length, or 0. */
static int residual_span(const pl_model *m, int h)
{
    const pl_layer *l = &m->layers[h];
    if ((l->type != PL_LAYER_CONV2D && l->type != PL_LAYER_LINEAR) || h == pl_model_output_layer(m) ||
        l->n_in != 1)
        return 0;
    int x = l->in[0];
    for (int a = h + 1; a < m->n_layers; a++) {
        const pl_layer *d = &m->layers[a];
        if (d->type != PL_LAYER_ADD)
            continue;
        if (d->n_in != 2 || !((d->in[0] == x && d->in[1] >= h) || (d->in[1] == x && d->in[0] >= h)))
            return 0; /* the first add after the head decides */
        for (int i = h + 1; i < a; i++) {
            const pl_layer *b = &m->layers[i];
            for (int k = 0; k < b->n_in; k++)
                if (b->in[k] < h || b->in[k] >= i)
                    return 0;
            if (i == pl_model_output_layer(m))
                return 0;
        }
        for (int j = a + 1; j < m->n_layers; j++)
            for (int k = 0; k < m->layers[j].n_in; k++)
                if (m->layers[j].in[k] >= h && m->layers[j].in[k] < a)
                    return 0;
        return a - h + 1;
    }
    return 0;
}

int pl_layer_block_len(const pl_model *m, int head)
{
    if (is_graph(m))
        return residual_span(m, head);
    int e = head;
    while (e + 1 < m->n_layers && passes_through(m->layers[e + 1].type))
        e++;
    return e - head + 1;
}

int pl_layer_blocks(const pl_model *m, int *head, int *len, int cap)
{
    int n = 0, out = pl_model_output_layer(m), graph = is_graph(m);
    for (int h = 0; h < m->n_layers; h++) {
        const pl_layer *l = &m->layers[h];
        if ((l->type != PL_LAYER_CONV2D && l->type != PL_LAYER_LINEAR) || h == out)
            continue;
        int k = pl_layer_block_len(m, h);
        if (!k)
            continue;
        const pl_layer *last = &m->layers[h + k - 1];
        if (!graph && (l->in_c != last->out_c || l->in_h != last->out_h || l->in_w != last->out_w))
            continue;
        if (n < cap) {
            head[n] = h;
            len[n] = k;
        }
        n++;
    }
    return n;
}

static void drop_layer(pl_layer *l)
{
    pl_layer_free(l);
    memset(l, 0, sizeof *l);
}

pl_status pl_model_remove_layers(pl_model *m, int first, int len, pl_error *err)
{
    if (first < 0 || len < 1 || first + len > m->n_layers)
        return pl_error_set(err, PL_EINVAL, "model %s: no layers [%d, %d) to remove (it has %d)", m->name,
                            first, first + len, m->n_layers);
    const pl_layer *a = &m->layers[first], *b = &m->layers[first + len - 1];
    int out = pl_model_output_layer(m);
    if (out >= first && out < first + len)
        return pl_error_set(err, PL_EINVAL, "model %s: layer %s is the output layer and is never removed",
                            m->name, m->layers[out].name);
    if (a->in_c != b->out_c || a->in_h != b->out_h || a->in_w != b->out_w)
        return pl_error_set(err, PL_EINVAL,
                            "model %s: layers %s..%s map %dx%dx%d to %dx%dx%d; only a span whose input and "
                            "output shapes match can be removed",
                            m->name, a->name, b->name, a->in_c, a->in_h, a->in_w, b->out_c, b->out_h, b->out_w);
    int span_in = a->in[0]; /* what the span read: its readers read that now */
    for (int i = first; i < first + len; i++)
        drop_layer(&m->layers[i]);
    memmove(&m->layers[first], &m->layers[first + len],
            (size_t)(m->n_layers - first - len) * sizeof *m->layers);
    m->n_layers -= len;
    memset(&m->layers[m->n_layers], 0, (size_t)len * sizeof *m->layers);
    for (int i = first; i < m->n_layers; i++) /* renumber the inputs of the layers that moved */
        for (int k = 0; k < m->layers[i].n_in && k < PL_MAX_INPUTS; k++) {
            int *j = &m->layers[i].in[k];
            *j = *j >= first + len ? *j - len : *j >= first ? span_in : *j;
        }
    return pl_model_reshape(m, err);
}
