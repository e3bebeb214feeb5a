/* bn_recalibrate.c — batchnorm running statistics re-estimated after pruning. */
#include "bn_recalibrate.h"
#include "rng.h"

#include <stdlib.h>

pl_status pl_bn_recalibrate(pl_model *m, pl_data *train, int batches, int batch, uint64_t seed,
                            const char *stream, pl_error *err)
{
    int n_bn = 0;
    for (int i = 0; i < m->n_layers; i++)
        n_bn += m->layers[i].type == PL_LAYER_BATCHNORM2D;
    if (!n_bn || batches <= 0)
        return PL_OK;
    int64_t N = train->info.count;
    if (N <= 0)
        return pl_error_set(err, PL_EINVAL, "prune.recalibrate_bn: the training split is empty");
    if (batch > N)
        batch = (int)N;
    pl_status st = pl_model_reserve(m, batch, err);
    if (st)
        return st;
    double *momentum = malloc((size_t)m->n_layers * sizeof *momentum);
    int64_t img = (int64_t)m->in_c * m->in_h * m->in_w;
    float *x = malloc((size_t)(img * batch) * sizeof(float));
    int32_t *y = malloc((size_t)batch * sizeof(int32_t));
    int64_t *idx = malloc((size_t)batch * sizeof(int64_t));
    if (!momentum || !x || !y || !idx) {
        st = pl_error_set(err, PL_ENOMEM, "out of memory for batchnorm recalibration");
        goto done;
    }
    for (int i = 0; i < m->n_layers; i++)
        momentum[i] = m->layers[i].momentum;
    uint64_t dropout_calls = m->dropout_calls;
    pl_rng r;
    pl_rng_seed(&r, seed, stream);
    for (int b = 0; b < batches && !st; b++) {
        for (int i = 0; i < batch; i++)
            idx[i] = (int64_t)pl_rng_below(&r, (uint64_t)N);
        st = pl_data_read(train, idx, 0, batch, x, y, err);
        if (st)
            break;
        /* the (b+1)-th batch's statistics weigh 1/(b+1): a running mean of
         * all batches so far, the first one replacing the old values */
        for (int i = 0; i < m->n_layers; i++)
            if (m->layers[i].type == PL_LAYER_BATCHNORM2D)
                m->layers[i].momentum = 1.0 / (double)(b + 1);
        if (!pl_model_forward(m, x, batch, PL_MODE_TRAIN, err))
            st = err->code ? err->code : PL_EPLUGIN;
    }
    for (int i = 0; i < m->n_layers; i++)
        m->layers[i].momentum = momentum[i];
    m->dropout_calls = dropout_calls;
done:
    free(momentum);
    free(x);
    free(y);
    free(idx);
    return st;
}
