/* rewind.c — lottery-ticket rewinding (rewind.h). */
#include "rewind.h"

#include <string.h>

/* the control's seed: a different stream from the same experiment seed */
#define PL_REWIND_RANDOM_SALT 0x6c6f7474657279ull /* "lottery" */

pl_status pl_rewind_source(const pl_experiment *x, const pl_model_spec *spec, const pl_backend_ops *be,
                           void *be_state, pl_data *train, const pl_train_opts *opts, pl_model **out,
                           pl_error *err)
{
    *out = NULL;
    const pl_phase_cfg *r = &x->retrain;
    uint64_t seed = r->rewind == PL_REWIND_RANDOM ? x->seed ^ PL_REWIND_RANDOM_SALT : x->seed;
    pl_model *m;
    pl_status s = pl_model_new(spec, seed, &m, err);
    if (s)
        return s;
    if (r->rewind == PL_REWIND_EPOCH) {
        /* the baseline's own phase, stopped after epoch K: same shuffles,
         * same learning rates, same weights */
        pl_model_bind(m, be, be_state);
        pl_train_opts o = opts ? *opts : (pl_train_opts){0};
        o.progress = PL_PROGRESS_NONE; /* the baseline's epochs again: not news */
        o.stop_after = r->rewind_epoch;
        o.on_epoch = NULL;
        pl_phase_stats ps;
        s = pl_train_phase(m, train, &x->train, x->seed, "train", &o, &ps, err);
        if (s) {
            pl_model_free(m);
            return s;
        }
    }
    *out = m;
    return PL_OK;
}

pl_status pl_rewind_apply(pl_model *m, const pl_model *src, pl_error *err)
{
    if (m->n_layers != src->n_layers)
        return pl_error_set(err, PL_EINVAL, "rewind: the model has %d layers, the rewind source %d", m->n_layers,
                            src->n_layers);
    for (int l = 0; l < m->n_layers; l++) {
        const pl_layer *S = &src->layers[l];
        pl_layer *L = &m->layers[l];
        if (L->nw != S->nw || L->nb != S->nb || L->out_c != S->out_c)
            return pl_error_set(err, PL_EINVAL, "rewind: layer %s has %lld weights, the rewind source %lld",
                                L->name, (long long)L->nw, (long long)S->nw);
    }
    for (int l = 0; l < m->n_layers; l++) {
        const pl_layer *S = &src->layers[l];
        pl_layer *L = &m->layers[l];
        for (int64_t i = 0; i < L->nw; i++)
            L->w[i] = L->mask ? S->w[i] * L->mask[i] : S->w[i];
        if (L->nb)
            memcpy(L->b, S->b, (size_t)L->nb * sizeof *L->b);
        if (L->run_mean && S->run_mean)
            memcpy(L->run_mean, S->run_mean, (size_t)L->out_c * sizeof *L->run_mean);
        if (L->run_var && S->run_var)
            memcpy(L->run_var, S->run_var, (size_t)L->out_c * sizeof *L->run_var);
    }
    return PL_OK;
}

void pl_rewind_name(const pl_phase_cfg *p, char *buf, size_t n)
{
    if (p->rewind == PL_REWIND_EPOCH)
        snprintf(buf, n, "epoch:%d", p->rewind_epoch);
    else
        snprintf(buf, n, "%s", p->rewind == PL_REWIND_INIT ? "init" : p->rewind == PL_REWIND_RANDOM ? "random" : "none");
}
