/* train.c — minibatch training, evaluation, latency. */
#include "train.h"
#include "augment.h"
#include "distill.h"
#include "regularize.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double pl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- data -------------------------------------------------------------------- */

static pl_status ds_error(pl_instance *in, pl_status st, const char *what, pl_error *err)
{
    const char *msg = pl_instance_take_error(in);
    const pl_plugin_desc *d = pl_plugin_get_desc(pl_instance_plugin(in));
    if (st == PL_EIO || st == PL_EFORMAT || st == PL_EINVAL || st == PL_ERANGE || st == PL_ENOTFOUND)
        return pl_error_set(err, st == PL_EINVAL ? PL_ECONFIG : st, "%s", msg[0] ? msg : pl_status_str(st));
    return pl_error_set(err, PL_EPLUGIN, "dataset plugin '%s' failed to %s: %s", d->name, what,
                        msg[0] ? msg : pl_status_str(st));
}

pl_status pl_data_open(pl_instance *ds, pl_split split, pl_data *out, pl_error *err)
{
    memset(out, 0, sizeof *out);
    out->inst = ds;
    out->ops = pl_instance_ops(ds);
    out->split = split;
    pl_status st = out->ops->open(pl_instance_state(ds), split, &out->handle, &out->info);
    if (st)
        return ds_error(ds, st, "open", err);
    const pl_dataset_info *i = &out->info;
    if (i->count <= 0 || i->channels <= 0 || i->height <= 0 || i->width <= 0 || i->classes < 2) {
        out->ops->close(pl_instance_state(ds), out->handle);
        out->handle = NULL;
        return pl_error_set(err, PL_EPLUGIN,
                            "dataset plugin reported an impossible shape (%lld examples of "
                            "%dx%dx%d, %d classes)",
                            (long long)i->count, i->channels, i->height, i->width, i->classes);
    }
    return PL_OK;
}

void pl_data_close(pl_data *d)
{
    if (d && d->handle)
        d->ops->close(pl_instance_state(d->inst), d->handle);
    if (d)
        d->handle = NULL;
}

/* A batch read split over the backend's threads: chunks of consecutive
 * examples, each one read() call into its own slice of x and y, so the
 * bytes are those of a single call. */
#define PL_READ_CHUNKS 16
typedef struct read_job {
    pl_data *d;
    const int64_t *idx;
    int n, chunk;
    int64_t img;
    float *x;
    int32_t *y;
    pl_status st[PL_READ_CHUNKS];
} read_job;

static void read_chunk(void *ctx, int64_t t, int worker)
{
    (void)worker;
    read_job *j = ctx;
    int a = (int)t * j->chunk, b = a + j->chunk < j->n ? a + j->chunk : j->n;
    j->st[t] = j->d->ops->read(pl_instance_state(j->d->inst), j->d->handle, j->idx + a, b - a,
                               j->x + (size_t)(a * j->img), j->y + a);
}

static pl_status read_parallel(pl_data *d, const int64_t *idx, int n, float *x, int32_t *y)
{
    read_job j = {.d = d, .idx = idx, .n = n, .x = x, .y = y,
                  .img = (int64_t)d->info.channels * d->info.height * d->info.width};
    j.chunk = (n + PL_READ_CHUNKS - 1) / PL_READ_CHUNKS;
    j.chunk = j.chunk < 4 ? 4 : j.chunk;
    int64_t tasks = (n + j.chunk - 1) / j.chunk;
    /* about 4 flops per value decides whether the pool is worth waking */
    if (d->par->parallel_for(d->par_state, tasks, 4.0 * (double)j.img * n, read_chunk, &j))
        return PL_EPLUGIN;
    for (int64_t t = 0; t < tasks; t++)
        if (j.st[t])
            return j.st[t];
    return PL_OK;
}

pl_status pl_data_read(pl_data *d, const int64_t *idx, int64_t first, int n, float *x, int32_t *y,
                       pl_error *err)
{
    int64_t local[1024];
    const int64_t *use = idx;
    if (!idx) {
        if (n > 1024)
            return pl_error_set(err, PL_EINVAL, "pl_data_read: batch of %d too large", n);
        for (int i = 0; i < n; i++)
            local[i] = first + i;
        use = local;
    }
    pl_status st = PL_EINVAL;
    /* in parallel where the dataset allows it; any failure is read again
     * on this thread, so the error message is the plugin's own, once */
    int valid = d->par && d->par->parallel_for && (d->info.flags & PL_DATASET_CONCURRENT_READ) && n >= 8;
    for (int i = 0; valid && i < n; i++) /* a bad index: the plugin reports it, serially */
        valid = use[i] >= 0 && use[i] < d->info.count;
    if (valid)
        st = read_parallel(d, use, n, x, y);
    if (st)
        st = d->ops->read(pl_instance_state(d->inst), d->handle, use, n, x, y);
    if (st)
        return ds_error(d->inst, st, "read", err);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= d->info.classes)
            return pl_error_set(err, PL_EFORMAT,
                                "dataset: label %d of example %lld is outside [0, %d); the label "
                                "file is corrupt or does not match classes",
                                (int)y[i], (long long)use[i], d->info.classes);
    return PL_OK;
}

pl_status pl_calib_open(pl_calib *c, pl_data *train, pl_model *m, int batch, uint64_t seed,
                        const char *stream, pl_error *err)
{
    memset(c, 0, sizeof *c);
    c->data = train;
    c->batch = batch < train->info.count ? batch : (int)train->info.count;
    if (c->batch <= 0)
        return pl_error_set(err, PL_EINVAL, "calibration: the training split is empty");
    int64_t img = (int64_t)m->in_c * m->in_h * m->in_w;
    c->x = malloc((size_t)(img * c->batch) * sizeof(float));
    c->y = malloc((size_t)c->batch * sizeof(int32_t));
    c->idx = malloc((size_t)c->batch * sizeof(int64_t));
    if (!c->x || !c->y || !c->idx)
        return pl_error_set(err, PL_ENOMEM, "out of memory for calibration images");
    pl_rng_seed(&c->rng, seed, stream);
    return pl_model_reserve(m, c->batch, err);
}

pl_status pl_calib_next(pl_calib *c, pl_error *err)
{
    uint64_t N = (uint64_t)c->data->info.count;
    for (int i = 0; i < c->batch; i++)
        c->idx[i] = (int64_t)pl_rng_below(&c->rng, N);
    return pl_data_read(c->data, c->idx, 0, c->batch, c->x, c->y, err);
}

void pl_calib_close(pl_calib *c)
{
    free(c->x);
    free(c->y);
    free(c->idx);
    c->x = NULL;
    c->y = NULL;
    c->idx = NULL;
}

/* ---- optimizer ------------------------------------------------------------------ */

static double phase_lr(const pl_optim_cfg *o, int epoch, int epochs)
{
    switch (o->lr_schedule) {
    case PL_LR_STEP:
        return o->lr * pow(o->gamma, (double)(epoch / (o->step_size > 0 ? o->step_size : 1)));
    case PL_LR_COSINE:
        return o->min_lr + (o->lr - o->min_lr) * (1 + cos(M_PI * epoch / (double)epochs)) / 2;
    case PL_LR_CONSTANT:
    default:
        return o->lr;
    }
}

static pl_status optim_step(pl_model *m, const pl_optim_cfg *o, double lr, int64_t step, int first,
                            pl_error *err)
{
    const pl_backend_ops *be = m->be;
    for (int i = 0; i < m->n_layers; i++) {
        pl_layer *l = &m->layers[i];
        if (!l->nw)
            continue;
        pl_status s;
        if (o->type == PL_OPTIM_ADAM) {
            pl_adam_hparams h = {.lr = (float)lr, .beta1 = (float)o->beta1, .beta2 = (float)o->beta2,
                                 .eps = (float)o->eps, .weight_decay = (float)o->weight_decay,
                                 .step = step};
            s = be->adam_update(m->be_state, &h, l->nw, l->w, l->gw, l->opt_m_w, l->opt_v_w, l->mask);
            if (!s && l->nb)
                s = be->adam_update(m->be_state, &h, l->nb, l->b, l->gb, l->opt_m_b, l->opt_v_b, NULL);
        } else {
            pl_sgd_hparams h = {.lr = (float)lr, .momentum = (float)o->momentum,
                                .dampening = (float)o->dampening,
                                .weight_decay = (float)o->weight_decay, .nesterov = o->nesterov,
                                .first_step = first};
            s = be->sgd_update(m->be_state, &h, l->nw, l->w, l->gw, l->opt_m_w, l->mask);
            if (!s && l->nb)
                s = be->sgd_update(m->be_state, &h, l->nb, l->b, l->gb, l->opt_m_b, NULL);
        }
        if (s)
            return pl_error_set(err, PL_EPLUGIN, "backend optimizer update failed in layer %s: %s",
                                l->name, pl_status_str(s));
    }
    return PL_OK;
}

/* ---- one step ------------------------------------------------------------------- */

pl_status pl_train_step(pl_model *m, const float *x, const int32_t *y, int n, float *dl,
                        const pl_regularizer *reg, const pl_optim_cfg *o, const pl_distill_cfg *kd,
                        pl_model *teacher, double lr, int64_t step, const char *phase, int epoch,
                        pl_step_stats *st, pl_error *err)
{
    memset(st, 0, sizeof *st);
    const float *logits = pl_model_forward(m, x, n, PL_MODE_TRAIN, err);
    if (!logits)
        return err ? err->code : PL_EPLUGIN;
    double t0 = m->prof ? pl_now() : 0;
    double ls = 0;
    int64_t c = 0;
    pl_status s = m->be->softmax_xent(m->be_state, n, m->classes, logits, y, 1.0f / (float)n, dl, &ls, &c);
    if (m->prof)
        st->loss_seconds = pl_now() - t0;
    st->loss = ls;
    st->correct = c;
    if (s)
        return pl_error_set(err, PL_EPLUGIN, "backend softmax_xent failed: %s", pl_status_str(s));
    if (kd && (s = pl_distill_batch(kd, teacher, x, n, m->classes, logits, dl, 1.0f / (float)n, &ls, err)))
        return s;
    st->loss = ls;
    if (!isfinite(ls))
        return pl_error_set(err, PL_EDIVERGED, "%s diverged: loss is %g at epoch %d step %lld (lower the learning rate)",
                            phase, ls, epoch + 1, (long long)step);
    s = pl_model_backward(m, x, dl, n, err);
    if (s)
        return s;
    /* regularize: gw += dP/dw, so the step follows d(loss + P)/dw */
    double pen = reg ? pl_regularizer_add_grad(reg, m) : 0;
    st->penalty = pen;
    if (!isfinite(pen))
        return pl_error_set(err, PL_EDIVERGED, "%s diverged: the regularize penalty is %g at epoch %d step %lld", phase,
                            pen, epoch + 1, (long long)step);
    t0 = m->prof ? pl_now() : 0;
    s = optim_step(m, o, lr, step, step == 1, err);
    if (m->prof)
        st->optim_seconds = pl_now() - t0;
    return s;
}

/* ---- progress --------------------------------------------------------------------- */

static void progress_bar(FILE *f, const char *phase, int epoch, int epochs, int64_t done,
                         int64_t total, double loss, double acc, double elapsed)
{
    int width = 28, fill = total ? (int)(width * done / total) : width;
    double eta = done ? elapsed * (double)(total - done) / (double)done : 0;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(f, "\r%-8s epoch %d/%d [%s] %3d%% loss %.4f acc %5.2f%% %6.0f img/s ETA %4.1fs ", phase,
            epoch, epochs, bar, (int)(100 * done / (total ? total : 1)), loss, acc,
            elapsed > 0 ? (double)done / elapsed : 0.0, eta);
    fflush(f);
}

/* ---- training ------------------------------------------------------------------------ */

pl_status pl_train_phase(pl_model *m, pl_data *train, const pl_phase_cfg *cfg, uint64_t seed,
                         const char *phase, const pl_train_opts *opts, pl_phase_stats *st,
                         pl_error *err)
{
    memset(st, 0, sizeof *st);
    if (cfg->epochs <= 0)
        return PL_OK;
    int64_t N = train->info.count;
    int B = cfg->batch_size;
    if (B > N)
        return pl_error_set(err, PL_ECONFIG,
                            "%s.batch_size %d is larger than the training set (%lld examples)",
                            phase, B, (long long)N);
    const pl_dataset_info *di = &train->info;
    if (di->channels != m->in_c || di->height != m->in_h || di->width != m->in_w)
        return pl_error_set(err, PL_ECONFIG,
                            "model %s expects %dx%dx%d inputs but the dataset has %dx%dx%d images",
                            m->name, m->in_c, m->in_h, m->in_w, di->channels, di->height, di->width);
    if (di->classes != m->classes)
        return pl_error_set(err, PL_ECONFIG, "model %s has %d classes but the dataset has %d",
                            m->name, m->classes, di->classes);
    pl_status s = pl_model_reserve(m, B, err);
    if (s)
        return s;
    s = pl_model_optim_reset(m, err);
    if (s)
        return s;
    /* regularize: the phase's penalty (none unless configured) */
    pl_regularizer reg;
    s = pl_regularizer_init(&reg, m, &cfg->reg, phase, err);
    if (s)
        return s;
    int64_t img = (int64_t)m->in_c * m->in_h * m->in_w;
    float *x = malloc((size_t)(img * B) * sizeof(float));
    float *dl = malloc((size_t)B * (size_t)m->classes * sizeof(float));
    int32_t *y = malloc((size_t)B * sizeof(int32_t));
    int64_t *perm = malloc((size_t)N * sizeof(int64_t));
    if (!x || !dl || !y || !perm) {
        free(x);
        free(dl);
        free(y);
        free(perm);
        pl_regularizer_deinit(&reg);
        return pl_error_set(err, PL_ENOMEM, "out of memory for the training batch");
    }
    pl_progress mode = opts ? opts->progress : PL_PROGRESS_NONE;
    FILE *out = opts && opts->out ? opts->out : stdout;
    if (mode == PL_PROGRESS_AUTO)
        mode = isatty(fileno(out)) ? PL_PROGRESS_BAR : PL_PROGRESS_LINES;
    if (reg.type != PL_REG_NONE && (mode == PL_PROGRESS_BAR || mode == PL_PROGRESS_LINES)) {
        char what[512];
        pl_regularizer_describe(&reg, m, what, sizeof what);
        fprintf(out, "%-8s regularize %s\n", phase, what);
    }
    if (cfg->distill.enabled && (mode == PL_PROGRESS_BAR || mode == PL_PROGRESS_LINES))
        fprintf(out, "%-8s distill from the dense baseline: alpha %g, temperature %g\n", phase, cfg->distill.alpha,
                cfg->distill.temperature);
    double t_phase = pl_now();
    int64_t step = 0;
    train->par = m->be, train->par_state = m->be_state;
    /* divergence (README "Divergence"): the phase's starting loss is that of
     * its first batch (before any update), never taken below ln(classes), the
     * loss of a uniform guess; an epoch whose mean loss exceeds
     * PL_DIVERGE_FACTOR times it diverged, finite or not */
    double start_sum = 0, start_loss = 0;
    int start_n = 0;
    int last_ep = opts && opts->stop_after > 0 && opts->stop_after < cfg->epochs ? opts->stop_after : cfg->epochs;
    for (int ep = 0; ep < last_ep && s == PL_OK; ep++) {
        char stream[96];
        snprintf(stream, sizeof stream, "shuffle:%s:%d", phase, ep);
        pl_rng r;
        pl_rng_seed(&r, seed, stream);
        for (int64_t i = 0; i < N; i++)
            perm[i] = i;
        for (int64_t i = N - 1; i > 0; i--) {
            int64_t j = (int64_t)pl_rng_below(&r, (uint64_t)i + 1);
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        double lr = phase_lr(&cfg->optim, ep, cfg->epochs);
        double loss_sum = 0, pen_sum = 0, t0 = pl_now(), last_draw = 0;
        int64_t correct = 0, seen = 0;
        for (int64_t first = 0; first < N; first += B) {
            if (opts && opts->interrupted && *opts->interrupted) {
                s = pl_error_set(err, PL_EINTR, "interrupted during %s", phase);
                break;
            }
            int n = (int)(N - first < B ? N - first : B);
            s = pl_data_read(train, perm + first, 0, n, x, y, err);
            if (s)
                break;
            pl_augment_batch(&train->augment, seed, phase, ep, first, x, n, m->in_c, m->in_h, m->in_w);
            pl_step_stats ss;
            s = pl_train_step(m, x, y, n, dl, &reg, &cfg->optim, cfg->distill.enabled ? &cfg->distill : NULL,
                              opts ? opts->teacher : NULL, lr, step + 1, phase, ep, &ss, err);
            if (s)
                break;
            double ls = ss.loss;
            loss_sum += ls;
            correct += ss.correct;
            seen += n;
            if (start_n < PL_DIVERGE_START && ep == 0) {
                start_sum += ls / n; /* ls sums over the batch */
                start_loss = fmax(start_sum / ++start_n, log((double)m->classes));
            }
            pen_sum += ss.penalty;
            step++;
            if (mode == PL_PROGRESS_BAR) {
                double now = pl_now();
                if (now - last_draw > 0.1 || seen == N) {
                    last_draw = now;
                    progress_bar(out, phase, ep + 1, cfg->epochs, seen, N, loss_sum / (double)seen,
                                 100.0 * (double)correct / (double)seen, now - t0);
                }
            }
        }
        if (s)
            break;
        double secs = pl_now() - t0;
        st->last.loss = loss_sum / (double)seen;
        if (st->last.loss > PL_DIVERGE_FACTOR * start_loss) {
            s = pl_error_set(err, PL_EDIVERGED,
                             "%s diverged: mean loss %.4g at epoch %d is over %g times its starting %.4g (lower the "
                             "learning rate)",
                             phase, st->last.loss, ep + 1, PL_DIVERGE_FACTOR, start_loss);
            break;
        }
        st->last.acc = 100.0 * (double)correct / (double)seen;
        st->last.seconds = secs;
        st->last.images_per_s = secs > 0 ? (double)seen / secs : 0;
        st->epochs = ep + 1;
        if (mode == PL_PROGRESS_BAR)
            fputc('\n', out);
        double test_acc = NAN; /* history: the epoch's test accuracy, when measured */
        if (opts && opts->on_epoch &&
            (s = opts->on_epoch(opts->on_epoch_ud, phase, ep + 1, &st->last, &test_acc, err)))
            break;
        if (mode == PL_PROGRESS_BAR || mode == PL_PROGRESS_LINES) {
            char pen[48] = "", tacc[32] = "";
            if (reg.type != PL_REG_NONE) /* regularize: mean penalty over the epoch's steps */
                snprintf(pen, sizeof pen, "  penalty %.4f", pen_sum / (double)((seen + B - 1) / B));
            if (!isnan(test_acc))
                snprintf(tacc, sizeof tacc, "  test acc %.2f%%", test_acc);
            fprintf(out, "%-8s epoch %d/%d  loss %.4f%s  train acc %.2f%%%s  %.2fs  %.0f img/s\n", phase,
                    ep + 1, cfg->epochs, st->last.loss, pen, st->last.acc, tacc, secs, st->last.images_per_s);
            fflush(out);
        }
    }
    if (s && mode == PL_PROGRESS_BAR)
        fputc('\n', out);
    for (int l = 0; l < m->n_layers && !s; l++) { /* a finite loss can hide an overflowed weight */
        const pl_layer *L = &m->layers[l];
        for (int64_t i = 0; i < L->nw + L->nb && !s; i++)
            if (!isfinite(i < L->nw ? L->w[i] : L->b[i - L->nw]))
                s = pl_error_set(err, PL_EDIVERGED, "%s diverged: layer %s holds a non-finite %s (lower the "
                                 "learning rate)", phase, L->name, i < L->nw ? "weight" : "bias");
    }
    st->seconds = pl_now() - t_phase;
    train->par = NULL, train->par_state = NULL;
    pl_regularizer_deinit(&reg);
    free(x);
    free(dl);
    free(y);
    free(perm);
    return s;
}

pl_status pl_model_gradients(pl_model *m, const float *x, const int32_t *y, int n, double *loss,
                             pl_error *err)
{
    pl_status s = pl_model_reserve(m, n, err);
    if (s)
        return s;
    float *dl = malloc((size_t)n * (size_t)m->classes * sizeof(float));
    if (!dl)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    /* calibration batches see the network in eval mode (no dropout noise,
     * running batchnorm statistics left untouched) but need activations:
     * run a train-mode forward only when the model has no batchnorm/dropout */
    const float *logits = pl_model_forward(m, x, n, PL_MODE_TRAIN, err);
    if (!logits) {
        free(dl);
        return err ? err->code : PL_EPLUGIN;
    }
    double ls = 0;
    int64_t c = 0;
    s = m->be->softmax_xent(m->be_state, n, m->classes, logits, y, 1.0f / (float)n, dl, &ls, &c);
    if (!s)
        s = pl_model_backward(m, x, dl, n, err);
    else
        s = pl_error_set(err, PL_EPLUGIN, "backend softmax_xent failed");
    free(dl);
    if (loss)
        *loss = ls / n;
    return s;
}

pl_status pl_evaluate(pl_model *m, pl_data *test, int batch, double *acc, double *loss, pl_error *err)
{
    int64_t N = test->info.count;
    if (batch > 1024)
        batch = 1024;
    pl_status s = pl_model_reserve(m, batch, err);
    if (s)
        return s;
    int64_t img = (int64_t)m->in_c * m->in_h * m->in_w;
    float *x = malloc((size_t)(img * batch) * sizeof(float));
    int32_t *y = malloc((size_t)batch * sizeof(int32_t));
    if (!x || !y) {
        free(x);
        free(y);
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    }
    double ls = 0;
    int64_t correct = 0;
    test->par = m->be, test->par_state = m->be_state;
    for (int64_t first = 0; first < N && !s; first += batch) {
        int n = (int)(N - first < batch ? N - first : batch);
        s = pl_data_read(test, NULL, first, n, x, y, err);
        if (s)
            break;
        const float *logits = pl_model_infer(m, x, n, err);
        if (!logits) {
            s = err ? err->code : PL_EPLUGIN;
            break;
        }
        double l = 0;
        int64_t c = 0;
        s = m->be->softmax_xent(m->be_state, n, m->classes, logits, y, 0.0f, NULL, &l, &c);
        if (s)
            s = pl_error_set(err, PL_EPLUGIN, "backend softmax_xent failed");
        ls += l;
        correct += c;
    }
    test->par = NULL, test->par_state = NULL;
    free(x);
    free(y);
    if (!s) {
        if (acc)
            *acc = 100.0 * (double)correct / (double)N;
        if (loss)
            *loss = ls / (double)N;
    }
    return s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

pl_status pl_measure_latency(pl_model *m, const float *x, int64_t n, int runs, double *ms_per_1000,
                             pl_error *err)
{
    const int B = 1000;
    pl_status s = pl_model_reserve(m, B, err);
    if (s)
        return s;
    if (runs < 1)
        runs = 1;
    double *t = malloc((size_t)runs * sizeof(double));
    if (!t)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    int64_t img = (int64_t)m->in_c * m->in_h * m->in_w;
    for (int r = -1; r < runs; r++) {
        double t0 = pl_now();
        for (int64_t first = 0; first < n; first += B) {
            int k = (int)(n - first < B ? n - first : B);
            if (!pl_model_infer(m, x + first * img, k, err)) {
                free(t);
                return err ? err->code : PL_EPLUGIN;
            }
        }
        if (r >= 0)
            t[r] = pl_now() - t0;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    double med = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
    *ms_per_1000 = med * 1000.0 * 1000.0 / (double)n;
    free(t);
    return PL_OK;
}
