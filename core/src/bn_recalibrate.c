/* bn_recalibrate.c — batchnorm running statistics re-estimated after pruning. */
#include "bn_recalibrate.h"

#include <stdlib.h>

pl_status pl_bn_recalibrate(pl_model *m, pl_data *train, int batches, int batch, uint64_t seed,
                            const char *stream, pl_error *err)
{
    int n_bn = 0;
    for (int i = 0; i < m->n_layers; i++)
        n_bn += m->layers[i].type == PL_LAYER_BATCHNORM2D;
    if (!n_bn || batches <= 0)
        return PL_OK;
    double *momentum = malloc((size_t)m->n_layers * sizeof *momentum);
    if (!momentum)
        return pl_error_set(err, PL_ENOMEM, "out of memory for batchnorm recalibration");
    for (int i = 0; i < m->n_layers; i++)
        momentum[i] = m->layers[i].momentum;
    uint64_t dropout_calls = m->dropout_calls;
    pl_calib c;
    pl_status st = pl_calib_open(&c, train, m, batch, seed, stream, err);
    for (int b = 0; b < batches && !st; b++) {
        st = pl_calib_next(&c, err);
        if (st)
            break;
        /* the (b+1)-th batch's statistics weigh 1/(b+1): a running mean of
         * all batches so far, the first one replacing the old values */
        for (int i = 0; i < m->n_layers; i++)
            if (m->layers[i].type == PL_LAYER_BATCHNORM2D)
                m->layers[i].momentum = 1.0 / (double)(b + 1);
        if (!pl_model_forward(m, c.x, c.batch, PL_MODE_TRAIN, err))
            st = err->code ? err->code : PL_EPLUGIN;
    }
    for (int i = 0; i < m->n_layers; i++)
        m->layers[i].momentum = momentum[i];
    m->dropout_calls = dropout_calls;
    pl_calib_close(&c);
    free(momentum);
    return st;
}
