/* surgery.c — structural surgery on a model: remove output units of a
 * layer with everything that reads them, or whole blocks of layers (rules
 * in surgery.h). Surviving weights, biases, masks and statistics are moved,
 * never recomputed. */
#include "surgery.h"

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
    /* the layer's own output units */
    int64_t row = l->nw / old;
    keep_rows(l->w, old, row, keep);
    keep_rows(l->mask, old, row, keep);
    keep_rows(l->b, old, 1, keep);
    l->out_c = kept;
    l->nw = row * kept;
    l->nb = l->has_bias ? kept : 0;
    l->removed_units += old - kept;
    int oom = pl_layer_scratch_reset(l) != PL_OK; /* gradients and optimizer state are scratch */
    /* dependents downstream, up to and including the next conv/linear */
    int64_t block = 1; /* input columns per channel after a flatten */
    for (int j = li + 1; j < m->n_layers; j++) {
        pl_layer *d = &m->layers[j];
        if (d->type == PL_LAYER_BATCHNORM2D) {
            keep_rows(d->w, old, 1, keep);
            keep_rows(d->b, old, 1, keep);
            keep_rows(d->run_mean, old, 1, keep);
            keep_rows(d->run_var, old, 1, keep);
            d->nw = d->nb = kept;
            oom |= pl_layer_scratch_reset(d) != PL_OK;
            continue;
        }
        if (d->type == PL_LAYER_FLATTEN) {
            block = (int64_t)d->in_h * d->in_w;
            continue;
        }
        if (d->type == PL_LAYER_CONV2D) {
            /* w[cout][cin][kh][kw]: drop input channel groups */
            int64_t inner = (int64_t)d->kh * d->kw;
            keep_groups(d->w, d->out_c, old, inner, keep);
            keep_groups(d->mask, d->out_c, old, inner, keep);
            d->in_c = kept;
            d->nw = (int64_t)d->out_c * kept * inner;
            oom |= pl_layer_scratch_reset(d) != PL_OK;
            break;
        }
        if (d->type == PL_LAYER_LINEAR) {
            /* w[out][in], in = old*block: drop blocks of `block` columns */
            keep_groups(d->w, d->out_c, old, block, keep);
            keep_groups(d->mask, d->out_c, old, block, keep);
            d->in_c = (int)(kept * block);
            d->nw = (int64_t)d->out_c * d->in_c;
            oom |= pl_layer_scratch_reset(d) != PL_OK;
            break;
        }
        /* relu, pools, dropout: channel count passes through */
    }
    if (oom)
        return pl_error_set(err, PL_ENOMEM, "out of memory during surgery on layer %s", l->name);
    return pl_model_reshape(m, err);
}

/* ---- whole layers ---------------------------------------------------------------- */

static int passes_through(pl_layer_type t)
{
    return t == PL_LAYER_BATCHNORM2D || t == PL_LAYER_RELU || t == PL_LAYER_DROPOUT;
}

int pl_layer_block_len(const pl_model *m, int head)
{
    int e = head;
    while (e + 1 < m->n_layers && passes_through(m->layers[e + 1].type))
        e++;
    return e - head + 1;
}

int pl_layer_blocks(const pl_model *m, int *head, int *len, int cap)
{
    int n = 0, out = pl_model_output_layer(m);
    for (int h = 0; h < m->n_layers; h++) {
        const pl_layer *l = &m->layers[h];
        if ((l->type != PL_LAYER_CONV2D && l->type != PL_LAYER_LINEAR) || h == out)
            continue;
        int k = pl_layer_block_len(m, h);
        const pl_layer *last = &m->layers[h + k - 1];
        if (l->in_c != last->out_c || l->in_h != last->out_h || l->in_w != last->out_w)
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
