/* activations.c — per-unit activation statistics (rules in activations.h). */
#include "activations.h"
#include "groups.h"

#include <stdlib.h>
#include <string.h>

int pl_activation_layer(const pl_model *m, int li)
{
    /* the layer that alone reads it (in a chain: the next one) */
    int j = li, c = pl_model_sole_consumer(m, j);
    if (c >= 0 && m->layers[c].type == PL_LAYER_BATCHNORM2D)
        j = c;
    c = pl_model_sole_consumer(m, j);
    if (c >= 0 && m->layers[c].type == PL_LAYER_RELU)
        j = c;
    return j;
}

void pl_act_free(pl_act *a, int n)
{
    for (int k = 0; a && k < n; k++) {
        free(a[k].mean);
        free(a[k].sq);
        free(a[k].zero);
        memset(&a[k], 0, sizeof a[k]);
    }
}

/* Adds one batch's activations of layer `a` (n images, C units of hw
 * positions each) to the running sums. */
static void accumulate(const pl_layer *a, int n, pl_act *s)
{
    const int64_t C = a->out_c, hw = (int64_t)a->out_h * a->out_w;
    for (int i = 0; i < n; i++)
        for (int64_t c = 0; c < C; c++) {
            const float *p = a->out + ((int64_t)i * C + c) * hw;
            double sum = 0, sq = 0, zero = 0;
            for (int64_t q = 0; q < hw; q++) {
                sum += p[q];
                sq += (double)p[q] * p[q];
                zero += p[q] == 0.0f;
            }
            s->mean[c] += sum;
            s->sq[c] += sq;
            s->zero[c] += zero;
        }
    s->samples += (int64_t)n * hw; /* per unit */
}

pl_status pl_activations_collect(pl_model *m, pl_data *train, const int *layers, int n_layers, int batches,
                                 int batch, uint64_t seed, const char *stream, pl_act *out, pl_error *err)
{
    memset(out, 0, (size_t)n_layers * sizeof *out);
    for (int k = 0; k < n_layers; k++) {
        const pl_layer *l = &m->layers[layers[k]];
        pl_act *s = &out[k];
        s->units = l->out_c;
        s->mean = calloc((size_t)l->out_c, sizeof *s->mean);
        s->sq = calloc((size_t)l->out_c, sizeof *s->sq);
        s->zero = calloc((size_t)l->out_c, sizeof *s->zero);
        if (!s->mean || !s->sq || !s->zero)
            return pl_error_set(err, PL_ENOMEM, "out of memory for the activation statistics of %s", l->name);
    }
    pl_calib c;
    pl_status st = pl_calib_open(&c, train, m, batch, seed, stream, err);
    for (int b = 0; b < batches && !st; b++) {
        st = pl_calib_next(&c, err);
        if (st)
            break;
        if (!pl_model_forward(m, c.x, c.batch, PL_MODE_EVAL, err)) {
            st = err->code ? err->code : PL_EPLUGIN;
            break;
        }
        for (int k = 0; k < n_layers; k++)
            accumulate(&m->layers[pl_activation_layer(m, layers[k])], c.batch, &out[k]);
    }
    for (int k = 0; k < n_layers && !st; k++) {
        pl_act *s = &out[k];
        for (int64_t u = 0; u < s->units && s->samples > 0; u++) {
            s->mean[u] /= (double)s->samples;
            s->sq[u] /= (double)s->samples;
            s->zero[u] /= (double)s->samples;
        }
    }
    pl_calib_close(&c);
    return st;
}
