/* model_forward.c — the forward pass through the backend in layer order,
 * with the fusions the backend offers (conv/linear + ReLU (+ max pooling),
 * batchnorm + ReLU), the data-moving layers the host runs itself (dropout,
 * add, concat, slice), and inference in chunks of images whose activation
 * buffers are shared by liveness (pl_model_infer). */
#include "backend.h"
#include "layer_batchnorm.h"
#include "layer_conv.h"
#include "layer_general.h"
#include "model_internal.h"
#include "rng.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* A ReLU right after layer i, reading only it, that the backend can fuse
 * into it (ABI 1.1): layer i's own output then goes unwritten, so nothing
 * else may read it. */
int pl__relu_follows(const pl_model *m, int i)
{
    if (i + 1 >= m->n_layers)
        return 0;
    const pl_layer *r = &m->layers[i + 1];
    return r->type == PL_LAYER_RELU && r->n_in == 1 && r->in[0] == i && m->layers[i].n_out == 1;
}

/* ... and max pooling right after that ReLU, reading it (the ReLU's output
 * is still written: other layers may read it too) */
static int relu_maxpool_follow(const pl_model *m, int i)
{
    if (!pl__relu_follows(m, i) || i + 2 >= m->n_layers)
        return 0;
    const pl_layer *p = &m->layers[i + 2];
    return p->type == PL_LAYER_MAXPOOL2D && p->n_in == 1 && p->in[0] == i + 1 && !pl__layer_general(p);
}

static void dropout_forward(pl_model *m, pl_layer *l, const float *x, int n)
{
    int64_t sz = pl__out_size(l) * n;
    char stream[96];
    snprintf(stream, sizeof stream, "dropout:%s:%llu", l->name, (unsigned long long)m->dropout_calls);
    pl_rng r;
    pl_rng_seed(&r, m->seed, stream);
    float scale = l->p < 1 ? (float)(1.0 / (1.0 - l->p)) : 0.0f;
    for (int64_t i = 0; i < sz; i++) {
        float k = pl_rng_uniform(&r) < l->p ? 0.0f : scale;
        l->aux[i] = k;
        l->out[i] = x[i] * k;
    }
}

/* add: y = x_1 + x_2 + ... in input order; concat: channels in input order */
static void add_forward(const pl_model *m, pl_layer *l, const float *x, int n)
{
    int64_t sz = pl__out_size(l) * n;
    const float *a0 = pl__src_out(m, x, l->in[0]);
    if (l->n_in < 2) {
        memcpy(l->out, a0, (size_t)sz * sizeof(float));
        return;
    }
    const float *a1 = pl__src_out(m, x, l->in[1]);
    for (int64_t i = 0; i < sz; i++) /* the first two in one pass */
        l->out[i] = a0[i] + a1[i];
    for (int k = 2; k < l->n_in; k++) {
        const float *a = pl__src_out(m, x, l->in[k]);
        for (int64_t i = 0; i < sz; i++)
            l->out[i] += a[i];
    }
}

static void concat_forward(const pl_model *m, pl_layer *l, const float *x, int n)
{
    int64_t plane = (int64_t)l->out_h * l->out_w;
    for (int k = 0, c0 = 0; k < l->n_in; k++) {
        int ck = pl__src_channels(m, l->in[k]);
        pl__scatter(pl__src_out(m, x, l->in[k]), n, l->out_c, c0, ck, plane, l->out);
        c0 += ck;
    }
}

/* Channels [ch0, ch1) of the one input, every image. */
static void slice_forward(const pl_model *m, pl_layer *l, const float *x, int n)
{
    int64_t plane = (int64_t)l->out_h * l->out_w;
    pl__gather(pl__src_out(m, x, l->in[0]), n, pl__src_channels(m, l->in[0]), l->ch0, l->out_c, plane, l->out);
}

const float *pl_model_forward(pl_model *m, const float *x, int n, pl_mode mode, pl_error *err)
{
    if (n > m->batch_cap || !m->be) {
        pl_error_set(err, PL_EINVAL, "model: forward of %d images with capacity %d%s", n,
                     m->batch_cap, m->be ? "" : " (no backend bound)");
        return NULL;
    }
    const pl_backend_ops *be = m->be;
    void *st = m->be_state;
    pl_status s = PL_OK;
    if (mode == PL_MODE_TRAIN)
        m->dropout_calls++;
    for (int i = 0; i < m->n_layers; i++) {
        pl_layer *l = &m->layers[i];
        const float *in = pl__src_out(m, x, l->in[0]);
        int fused = 0; /* the next layers (ReLU, max pooling) computed too */
        double t0 = m->prof ? pl__prof_now() : 0;
        switch (l->type) {
        case PL_LAYER_CONV2D: {
            pl_conv2d_shape cs;
            pl__conv_shape(l, n, &cs);
            /* ABI 1.1: conv + ReLU (+ max pooling) in one pass, straight
             * into the ReLU's (and the pool's) buffers. The conv's own buffer
             * is then left unwritten: nothing reads a pre-activation (a
             * ReLU's backward uses its output). */
            if (l->groups == 1 && !pl__layer_general(l) && relu_maxpool_follow(m, i) &&
                pl_backend_has(be, PL_SLOT_CONV_RELU_MAXPOOL)) {
                pl_layer *pool = &m->layers[i + 2];
                pl_pool2d_shape ps;
                pl__pool_shape(pool, n, &ps);
                s = be->conv2d_forward_relu_maxpool(st, &cs, in, l->w, l->b, m->layers[i + 1].out,
                                                    &ps, pool->out,
                                                    mode == PL_MODE_TRAIN ? pool->argmax : NULL);
                fused = 2;
            } else if (l->groups == 1 && !pl__layer_general(l) && pl__relu_follows(m, i) &&
                       pl_backend_has(be, PL_SLOT_CONV_RELU)) {
                s = be->conv2d_forward_relu(st, &cs, in, l->w, l->b, m->layers[i + 1].out);
                fused = 1;
            } else {
                s = pl__conv_forward(m, l, n, in, l->out);
            }
            break;
        }
        case PL_LAYER_LINEAR: {
            /* ABI 1.1: a pruned layer in evaluation may run from its CSR
             * form; otherwise linear + ReLU may be fused as for conv */
            const pl_csr *csr = mode == PL_MODE_EVAL ? pl__csr_for(m, l) : NULL;
            if (csr) {
                s = be->linear_forward_csr(st, n, l->in_c, l->out_c, in, csr, l->b, l->out);
            } else if (pl__relu_follows(m, i) && pl_backend_has(be, PL_SLOT_LINEAR_RELU)) {
                s = be->linear_forward_relu(st, n, l->in_c, l->out_c, in, l->w, l->b,
                                            m->layers[i + 1].out);
                fused = 1;
            } else {
                s = be->linear_forward(st, n, l->in_c, l->out_c, in, l->w, l->b, l->out);
            }
            break;
        }
        case PL_LAYER_MAXPOOL2D: {
            pl_pool2d_shape ps;
            pl__pool_shape(l, n, &ps);
            if (pl__layer_general(l))
                pl__maxpool_general_forward(l, n, in, l->out, mode == PL_MODE_TRAIN ? l->argmax : NULL);
            else
                s = be->maxpool2d_forward(st, &ps, in, l->out, mode == PL_MODE_TRAIN ? l->argmax : NULL);
            break;
        }
        case PL_LAYER_AVGPOOL2D:
        case PL_LAYER_GLOBAL_AVGPOOL: {
            pl_pool2d_shape ps;
            pl__avgpool_shape(l, n, &ps);
            if (pl__layer_general(l))
                pl__avgpool_general_forward(l, n, in, l->out);
            else
                s = be->avgpool2d_forward(st, &ps, in, l->out);
            break;
        }
        case PL_LAYER_RELU:
            s = be->relu_forward(st, pl__out_size(l) * n, in, l->out);
            break;
        case PL_LAYER_FLATTEN:
            l->out = (float *)in; /* alias: flatten moves no data */
            break;
        case PL_LAYER_BATCHNORM2D:
            /* batchnorm + ReLU in one pass, into the ReLU's buffer */
            fused = pl__relu_follows(m, i);
            pl__bn_forward(m, l, in, fused ? m->layers[i + 1].out : l->out, fused, n, mode);
            break;
        case PL_LAYER_DROPOUT:
            if (mode == PL_MODE_TRAIN && l->p > 0)
                dropout_forward(m, l, in, n);
            else
                memcpy(l->out, in, (size_t)(pl__out_size(l) * n) * sizeof(float));
            break;
        case PL_LAYER_ADD:
            add_forward(m, l, x, n);
            break;
        case PL_LAYER_CONCAT:
            concat_forward(m, l, x, n);
            break;
        case PL_LAYER_SLICE:
            slice_forward(m, l, x, n);
            break;
        }
        if (s) {
            pl_backend_fail(err, m, l->name, "forward", s);
            return NULL;
        }
        if (m->prof)
            m->prof[i] += pl__prof_now() - t0;
        i += fused;
    }
    return m->layers[m->n_layers - 1].out;
}

#define PL_INFER_CHUNK_BYTES ((int64_t)8 << 20)
#define PL_INFER_CHUNK_MIN 8

/* Liveness: layer i's buffer (flatten has none: it aliases its input's)
 * is free again once its last reader has run. A fused pass (conv + ReLU +
 * max pooling, batchnorm + ReLU) writes up to three layers' outputs while
 * reading the first one's inputs, so a buffer is reused only three layers
 * after its last reader: never while a pass that started earlier still
 * reads it. All buffers have the size of the largest output. */
const float *pl_model_infer(pl_model *m, const float *x, int n, pl_error *err)
{
    int L = m->n_layers;
    if (n > m->batch_cap || !m->be || L <= 0)
        return pl_model_forward(m, x, n, PL_MODE_EVAL, err); /* its error */
    int *owner = calloc((size_t)L * 5, sizeof *owner); /* owner, last, slot, freed, pool */
    int *last = owner ? owner + L : NULL, *slot = owner ? owner + 2 * L : NULL;
    int *freed = owner ? owner + 3 * L : NULL, *pool = owner ? owner + 4 * L : NULL;
    float **saved = calloc((size_t)L, sizeof *saved);
    const float *y = NULL;
    if (!owner || !saved) {
        pl_error_set(err, PL_ENOMEM, "out of memory for the inference plan of %s", m->name);
        goto done;
    }
    int64_t per = 0;
    for (int i = 0; i < L; i++) {
        const pl_layer *l = &m->layers[i];
        owner[i] = l->type == PL_LAYER_FLATTEN ? (l->in[0] < 0 ? -1 : owner[l->in[0]]) : i;
        last[i] = i == L - 1 ? INT_MAX : i;
        for (int k = 0; k < l->n_in; k++)
            if (l->in[k] >= 0 && owner[l->in[k]] >= 0 && last[owner[l->in[k]]] < i)
                last[owner[l->in[k]]] = i;
        if (pl__out_size(l) > per)
            per = pl__out_size(l);
    }
    int nslots = 0, nfree = 0;
    for (int i = 0; i < L; i++) {
        for (int j = 0; j < i; j++)
            if (owner[j] == j && !freed[j] && last[j] != INT_MAX && last[j] + 3 <= i) {
                freed[j] = 1;
                pool[nfree++] = slot[j];
            }
        if (owner[i] == i)
            slot[i] = nfree ? pool[--nfree] : nslots++;
    }
    /* chunks of images whose buffers stay within PL_INFER_CHUNK_BYTES (in
     * cache), at least PL_INFER_CHUNK_MIN images; the logits of every chunk
     * go to the end of the arena */
    int64_t chunk = PL_INFER_CHUNK_BYTES / ((int64_t)sizeof(float) * per * nslots);
    if (chunk < PL_INFER_CHUNK_MIN)
        chunk = PL_INFER_CHUNK_MIN;
    if (m->infer_chunk > 0)
        chunk = m->infer_chunk;
    if (chunk > n)
        chunk = n;
    int64_t nout = pl__out_size(&m->layers[L - 1]), need = (int64_t)nslots * per * chunk + nout * n;
    if (need > m->arena_cap) {
        free(m->arena);
        m->arena_cap = 0;
        if (!(m->arena = pl__falloc(need))) {
            pl_error_set(err, PL_ENOMEM, "out of memory for the activations of %s (%d buffers of %lld floats)",
                         m->name, nslots, (long long)(per * chunk));
            goto done;
        }
        m->arena_cap = need;
    }
    for (int i = 0; i < L; i++) {
        saved[i] = m->layers[i].out;
        if (owner[i] == i)
            m->layers[i].out = m->arena + slot[i] * per * chunk;
    }
    float *logits = m->arena + (int64_t)nslots * per * chunk;
    int64_t img = (int64_t)m->in_c * m->in_h * m->in_w;
    y = logits;
    for (int64_t f = 0; f < n && y; f += chunk) {
        int k = (int)(n - f < chunk ? n - f : chunk);
        const float *z = pl_model_forward(m, x + f * img, k, PL_MODE_EVAL, err);
        if (z)
            memcpy(logits + f * nout, z, (size_t)(k * nout) * sizeof(float));
        else
            y = NULL;
    }
    for (int i = 0; i < L; i++)
        m->layers[i].out = saved[i];
done:
    free(owner), free(saved);
    return y;
}
