/* model_backward.c — the backward pass: each layer's gradients through the
 * backend, with the fusions it offers (max pooling + ReLU, batchnorm +
 * ReLU); a chain ping-pongs its activation gradients between two buffers,
 * any other graph keeps one gradient a layer, summed over its readers. */
#include "backend.h"
#include "layer_batchnorm.h"
#include "layer_conv.h"
#include "layer_general.h"
#include "model_internal.h"

#include <stdlib.h>
#include <string.h>

/* dy of a slice into its input's gradient dx (n images of in_c channels):
 * added at channels [ch0, ch1) when acc, else dx is overwritten (zeros
 * outside the range). */
static void slice_backward(const pl_layer *l, const float *dy, float *dx, int n, int acc)
{
    int64_t plane = (int64_t)l->out_h * l->out_w, len = (int64_t)l->out_c * plane;
    if (!acc)
        memset(dx, 0, (size_t)((int64_t)n * l->in_c * plane) * sizeof(float));
    for (int b = 0; b < n; b++) {
        const float *src = dy + (int64_t)b * len;
        float *dst = dx + ((int64_t)b * l->in_c + l->ch0) * plane;
        for (int64_t e = 0; e < len; e++)
            dst[e] += src[e];
    }
}

/* Backward of the one-input layer l reading `in`: its parameter gradients
 * and, when dx != NULL, dx (fully overwritten). fuse_relu: l is a max pool
 * reading a ReLU's output that nothing else reads; dx is then the ReLU's
 * input gradient (ABI 1.2). */
static pl_status layer_backward(pl_model *m, pl_layer *l, const float *in, const float *dy, float *dx, int n,
                                int fuse_relu)
{
    const pl_backend_ops *be = m->be;
    void *st = m->be_state;
    pl_status s = PL_OK;
    switch (l->type) {
    case PL_LAYER_CONV2D:
        s = pl__conv_backward(m, l, n, in, dy, dx);
        break;
    case PL_LAYER_LINEAR:
        s = pl_backend_linear_backward(be, st, n, l->in_c, l->out_c, in, dy, l->w, l->gw, l->gb, dx);
        break;
    case PL_LAYER_MAXPOOL2D: {
        pl_pool2d_shape ps;
        pl__pool_shape(l, n, &ps);
        if (dx && pl__layer_general(l)) {
            pl__maxpool_general_backward(l, n, dy, l->argmax, dx);
            if (fuse_relu) /* dx is the ReLU's input gradient: its output is `in` */
                s = be->relu_backward(st, pl__in_size(l) * n, in, dx, dx);
        } else if (dx && fuse_relu)
            s = be->maxpool2d_relu_backward(st, &ps, dy, l->argmax, in, dx);
        else if (dx)
            s = be->maxpool2d_backward(st, &ps, dy, l->argmax, dx);
        break;
    }
    case PL_LAYER_AVGPOOL2D:
    case PL_LAYER_GLOBAL_AVGPOOL: {
        pl_pool2d_shape ps;
        pl__avgpool_shape(l, n, &ps);
        if (dx && pl__layer_general(l))
            pl__avgpool_general_backward(l, n, dy, dx);
        else if (dx)
            s = be->avgpool2d_backward(st, &ps, dy, dx);
        break;
    }
    case PL_LAYER_RELU:
        if (dx)
            s = be->relu_backward(st, pl__out_size(l) * n, l->out, dy, dx);
        break;
    case PL_LAYER_FLATTEN:
        if (dx && dx != dy)
            memcpy(dx, dy, (size_t)(pl__out_size(l) * n) * sizeof(float));
        break;
    case PL_LAYER_BATCHNORM2D:
        pl__bn_backward(m, l, in, dy, NULL, dx, n);
        break;
    case PL_LAYER_DROPOUT:
        if (dx) {
            int64_t sz = pl__out_size(l) * n;
            if (l->p > 0)
                for (int64_t k = 0; k < sz; k++)
                    dx[k] = dy[k] * l->aux[k];
            else
                memcpy(dx, dy, (size_t)sz * sizeof(float));
        }
        break;
    case PL_LAYER_SLICE:
        if (dx)
            slice_backward(l, dy, dx, n, 0);
        break;
    case PL_LAYER_ADD:
    case PL_LAYER_CONCAT:
        s = PL_EINVAL; /* several inputs: graph_backward does these */
        break;
    }
    return s;
}

/* A chain: activation gradients ping-pong between grad_a and grad_b. */
static pl_status chain_backward(pl_model *m, const float *x, const float *dlogits, int n, pl_error *err)
{
    const float *dy = dlogits;
    for (int i = m->n_layers - 1; i >= 0; i--) {
        pl_layer *l = &m->layers[i];
        if (l->type == PL_LAYER_FLATTEN)
            continue; /* pass the gradient through unchanged */
        const float *in = i ? m->layers[i - 1].out : x;
        float *dx = i == 0 ? NULL : (dy == m->grad_a ? m->grad_b : m->grad_a);
        double t0 = m->prof ? pl__prof_now() : 0;
        /* ABI 1.2: through the ReLU before it in the same pass (its
         * output is the pool's input); the ReLU is then done */
        if (l->type == PL_LAYER_RELU && i >= 1 && m->layers[i - 1].type == PL_LAYER_BATCHNORM2D) {
            /* the ReLU's backward inside its batchnorm's: one pass */
            pl_layer *bn = &m->layers[i - 1];
            dx = i == 1 ? NULL : (dy == m->grad_a ? m->grad_b : m->grad_a);
            pl__bn_backward(m, bn, i >= 2 ? m->layers[i - 2].out : x, dy, l->out, dx, n);
            if (m->prof)
                m->prof[m->n_layers + i - 1] += pl__prof_now() - t0;
            dy = dx;
            i--;
            continue;
        }
        int fused = l->type == PL_LAYER_MAXPOOL2D && dx && i >= 2 && m->layers[i - 1].type == PL_LAYER_RELU &&
                    pl_backend_has(m->be, PL_SLOT_MAXPOOL_RELU_BACKWARD);
        pl_status s = layer_backward(m, l, in, dy, dx, n, fused);
        if (s)
            return pl_backend_fail(err, m, l->name, "backward", s);
        if (m->prof)
            m->prof[m->n_layers + i] += pl__prof_now() - t0;
        dy = dx;
        i -= fused;
    }
    return PL_OK;
}

/* g into layer j's gradient: the first contribution is copied, later ones
 * added (j's consumers all come after it, so all are in before j runs). */
static void grad_acc(pl_layer *t, const float *g, int64_t sz)
{
    if (t->grad_state == 0)
        memcpy(t->grad, g, (size_t)sz * sizeof(float));
    else
        for (int64_t i = 0; i < sz; i++)
            t->grad[i] += g[i];
    t->grad_state = 1;
}

/* Any other graph: each layer's output gradient in its own buffer, summed
 * over the layers that read it. */
static pl_status graph_backward(pl_model *m, const float *x, const float *dlogits, int n, pl_error *err)
{
    int last = m->n_layers - 1;
    if (m->graph_grad_n < n) {
        /* made on the first backward (an evaluation-only model never needs
         * them) for the batch size it trains with: once, not every step */
        m->graph_grad_n = 0;
        for (int i = 0; i <= last; i++) {
            pl_layer *l = &m->layers[i];
            free(l->grad);
            if (!(l->grad = pl__falloc(pl__out_size(l) * n)))
                return pl_error_set(err, PL_ENOMEM, "out of memory for the gradients of layer %s", l->name);
        }
        m->graph_grad_n = n;
    }
    for (int i = 0; i <= last; i++)
        m->layers[i].grad_state = 0;
    for (int i = last; i >= 0; i--) {
        pl_layer *l = &m->layers[i];
        if (l->grad_state == 2)
            continue; /* a ReLU done by the max pool after it, or a batchnorm by the ReLU after it */
        const float *dy = i == last ? dlogits : l->grad;
        double t0 = m->prof ? pl__prof_now() : 0;
        if (l->type == PL_LAYER_ADD) {
            for (int k = 0; k < l->n_in; k++)
                if (l->in[k] >= 0)
                    grad_acc(&m->layers[l->in[k]], dy, pl__out_size(l) * n);
            if (m->prof)
                m->prof[m->n_layers + i] += pl__prof_now() - t0;
            continue;
        }
        if (l->type == PL_LAYER_CONCAT) {
            int64_t plane = (int64_t)l->out_h * l->out_w;
            for (int k = 0, c0 = 0; k < l->n_in; k++) {
                int ck = pl__src_channels(m, l->in[k]);
                if (l->in[k] >= 0) {
                    pl_layer *t = &m->layers[l->in[k]];
                    if (t->grad_state == 0) {
                        pl__gather(dy, n, l->out_c, c0, ck, plane, t->grad);
                    } else {
                        for (int b = 0; b < n; b++) {
                            const float *src = dy + ((int64_t)b * l->out_c + c0) * plane;
                            float *dst = t->grad + (int64_t)b * ck * plane;
                            for (int64_t e = 0; e < ck * plane; e++)
                                dst[e] += src[e];
                        }
                    }
                    t->grad_state = 1;
                }
                c0 += ck;
            }
            if (m->prof)
                m->prof[m->n_layers + i] += pl__prof_now() - t0;
            continue;
        }
        if (l->type == PL_LAYER_SLICE) {
            /* into the range of the producer's gradient (zeros elsewhere when it is the first) */
            if (l->in[0] >= 0) {
                pl_layer *t = &m->layers[l->in[0]];
                slice_backward(l, dy, t->grad, n, t->grad_state != 0);
                t->grad_state = 1;
            }
            if (m->prof)
                m->prof[m->n_layers + i] += pl__prof_now() - t0;
            continue;
        }
        int j = l->in[0];
        if (l->type == PL_LAYER_RELU && j >= 0 && m->layers[j].type == PL_LAYER_BATCHNORM2D &&
            m->layers[j].n_out == 1) {
            /* the ReLU's backward inside its batchnorm's: one pass */
            pl_layer *bn = &m->layers[j];
            int tj = bn->in[0];
            pl_layer *t = tj >= 0 ? &m->layers[tj] : NULL;
            float *dx = !t ? NULL : t->grad_state == 0 ? t->grad : m->grad_a;
            pl__bn_backward(m, bn, pl__src_out(m, x, tj), dy, l->out, dx, n);
            if (t && dx != t->grad)
                grad_acc(t, dx, pl__out_size(t) * n);
            if (t)
                t->grad_state = 1;
            bn->grad_state = 2;
            if (m->prof)
                m->prof[m->n_layers + j] += pl__prof_now() - t0;
            continue;
        }
        int fused = l->type == PL_LAYER_MAXPOOL2D && j >= 0 && m->layers[j].type == PL_LAYER_RELU &&
                    m->layers[j].n_out == 1 && m->layers[j].in[0] >= 0 && pl_backend_has(m->be, PL_SLOT_MAXPOOL_RELU_BACKWARD);
        int tj = fused ? m->layers[j].in[0] : j;
        pl_layer *t = tj >= 0 ? &m->layers[tj] : NULL;
        float *dx = !t ? NULL : t->grad_state == 0 ? t->grad : m->grad_a;
        pl_status s = layer_backward(m, l, pl__src_out(m, x, j), dy, dx, n, fused);
        if (s)
            return pl_backend_fail(err, m, l->name, "backward", s);
        if (t && dx != t->grad)
            grad_acc(t, dx, pl__out_size(t) * n);
        if (t)
            t->grad_state = 1;
        if (fused)
            m->layers[j].grad_state = 2;
        if (m->prof)
            m->prof[m->n_layers + i] += pl__prof_now() - t0;
    }
    return PL_OK;
}

pl_status pl_model_backward(pl_model *m, const float *x, const float *dlogits, int n, pl_error *err)
{
    if (pl_model_is_chain(m))
        return chain_backward(m, x, dlogits, n, err);
    return graph_backward(m, x, dlogits, n, err);
}
