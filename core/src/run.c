/* run.c — the experiment loop: baseline, prune, retrain, fine-tune, report. */
#include "run_internal.h"
#include "backend.h"
#include "rewind.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers --------------------------------------------------------------------- */

pl_status pl__run_mkdir_p(const char *path, pl_error *err)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    int exists, e = pl__mkdir_walk(buf, 0, &exists);
    if (e && exists)
        return pl_error_set(err, PL_EIO, "%s: exists and is not a directory (%s)", buf, MKDIR_HINT);
    if (e)
        return pl_error_set(err, PL_EIO, "%s: cannot create directory: %s (%s)", buf, strerror(e), MKDIR_HINT);
    return PL_OK;
}

static const char *ref_param(const pl_plugin_ref *r, const char *key)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (!strcmp(r->params[i].key, key))
            return r->params[i].value;
    return NULL;
}

void pl__run_copy_str(char *dst, size_t n, const char *src) { snprintf(dst, n, "%s", src ? src : ""); }

const char *pl__run_report_dir(const pl_experiment *x, const pl_run_opts *o)
{
    return o && o->out_dir ? o->out_dir : x->report.dir;
}

/* the baseline cache folder: report.cache, else <dir>/cache */
void pl__run_cache_dir(const pl_experiment *x, const pl_run_opts *o, char *buf, size_t n)
{
    char def[4096];
    snprintf(def, sizeof def, "%s/cache", x->report.dir);
    if (x->report.cache && strcmp(x->report.cache, def))
        snprintf(buf, n, "%s", x->report.cache);
    else
        snprintf(buf, n, "%s/cache", pl__run_report_dir(x, o));
}


void pl__runenv_free(pl_runenv *e)
{
    if (!e->borrowed_data) {
        pl_data_close(&e->train);
        pl_data_close(&e->test);
    }
    pl_instance_free(e->crit);
    pl_instance_free(e->sched);
    pl_instance_free(e->ds);
    pl_instance_free(e->be);
    pl_model_spec_free(e->spec);
    free(e->test_x);
    memset(e, 0, sizeof *e);
}

/* pl_instance_new, with the plugin reference's place in the experiment in
 * front of errors that do not name it yet (e.g. an init() failure). */
pl_status pl__run_instance_new(pl_registry *reg, pl_kind kind, const pl_plugin_ref *ref,
                               const pl_experiment *x, int threads, pl_instance **out, pl_error *err)
{
    pl_status s = pl_instance_new(reg, kind, ref, x->seed, threads, out, err);
    const char *file = ref->file ? ref->file : x->file;
    if (s && s != PL_ENOMEM && strncmp(err->msg, file, strlen(file)) != 0) {
        if (ref->line > 0)
            pl_error_prefix(err, "%s:%d:%d", file, ref->line, ref->col);
        else
            pl_error_prefix(err, "%s", file);
    }
    return s;
}

/* The opened dataset must fit the model and every phase's batch size. The
 * trainer checks this too, but only here is the experiment file known, and
 * failing here costs no baseline training. */
pl_status pl__run_check_fit(const pl_experiment *x, const pl_runenv *e, pl_error *err)
{
    const pl_model_spec *m = e->spec;
    const pl_plugin_ref *ds = &x->dataset;
    char where[4200];
    if (ds->line > 0)
        snprintf(where, sizeof where, "%s:%d:%d", ds->file ? ds->file : x->file, ds->line, ds->col);
    else
        snprintf(where, sizeof where, "%s", ds->file ? ds->file : x->file);
    const pl_data *splits[2] = {&e->train, &e->test};
    for (int k = 0; k < 2; k++) {
        const pl_dataset_info *d = &splits[k]->info;
        const char *split = k ? "test" : "training";
        if (d->channels != m->in_c || d->height != m->in_h || d->width != m->in_w)
            return pl_error_set(err, PL_ECONFIG,
                                "%s: the %s split of dataset '%s' has %dx%dx%d images but model %s (%s) "
                                "expects %dx%dx%d inputs (choose a model and dataset of the same shape)",
                                where, split, ds->plugin, d->channels, d->height, d->width, m->name, x->model,
                                m->in_c, m->in_h, m->in_w);
        if (d->classes != m->classes)
            return pl_error_set(err, PL_ECONFIG,
                                "%s: the %s split of dataset '%s' has %d classes but model %s (%s) has %d "
                                "(set the dataset's classes or use a matching model)",
                                where, split, ds->plugin, d->classes, m->name, x->model, m->classes);
    }
    const pl_dataset_info *ti = &e->train.info;
    if (x->augment.crop_pad >= ti->height || x->augment.crop_pad >= ti->width)
        return pl_error_set(err, PL_ECONFIG, "%s: dataset.augment.crop_pad %d is not below the %dx%d image size "
                            "(a crop would hold no pixel of the image; use a smaller padding)",
                            where, x->augment.crop_pad, ti->height, ti->width);
    const struct {
        const char *name;
        const pl_phase_cfg *p;
        int used;
    } ph[] = {{"train", &x->train, 1},
              {"retrain", &x->retrain, x->prune.enabled},
              {"finetune", &x->finetune, 1}};
    for (size_t i = 0; i < sizeof ph / sizeof ph[0]; i++)
        if (ph[i].used && ph[i].p->epochs > 0 && ph[i].p->batch_size > e->train.info.count)
            return pl_error_set(err, PL_ECONFIG,
                                "%s: %s.batch_size %d is larger than the training set (%lld examples; lower "
                                "the batch size or use more data)",
                                x->file, ph[i].name, ph[i].p->batch_size, (long long)e->train.info.count);
    return PL_OK;
}

/* model_init: the checkpoint x starts from, checked against its model
 * (pl_identity_check_checkpoint); errors name where model_init: is written. */
static pl_status load_model_init(const pl_experiment *x, const pl_model_spec *spec, pl_model **out, pl_error *err)
{
    pl_model *m;
    char *meta = NULL;
    pl_status s = pl_checkpoint_load(x->model_init, &m, &meta, err);
    free(meta);
    if (!s && (s = pl_identity_check_checkpoint(x->model_init, m, spec, err)))
        pl_model_free(m);
    if (s && s != PL_ENOMEM) {
        char *hint = strstr(err->msg, " (delete the checkpoint to train it again)");
        if (hint) /* a model_init is not a cache entry */
            snprintf(hint, sizeof err->msg - (size_t)(hint - err->msg),
                     " (model_init must be an unpruned checkpoint of this model, e.g. a baseline in a report's "
                     "cache/)");
        if (x->model_init_line > 0)
            pl_error_prefix(err, "%s:%d:%d: model_init", x->model_init_file ? x->model_init_file : x->file,
                            x->model_init_line, x->model_init_col);
        else
            pl_error_prefix(err, "%s: model_init", x->model_init_file ? x->model_init_file : x->file);
    }
    if (!s)
        *out = m;
    return s;
}

pl_status pl__runenv_open(pl_registry *reg, const pl_experiment *x, int threads, int open_data,
                             pl_identity *id, pl_runenv *e, pl_error *err)
{
    memset(e, 0, sizeof *e);
    pl_status s = pl__experiment_model(x, &e->spec, err);
    if (!s && x->model_init) { /* exists, is a checkpoint, is this model */
        pl_model *init;
        if (!(s = load_model_init(x, e->spec, &init, err)))
            pl_model_free(init);
    }
    if (!s)
        s = pl__run_instance_new(reg, PL_KIND_BACKEND, &x->backend, x, threads, &e->be, err);
    /* the splits the identity opened to learn their checksums serve the run */
    if (!s && open_data && pl_identity_borrow_data(id, x, &e->train, &e->test))
        e->borrowed_data = 1;
    if (!s && !e->borrowed_data)
        s = pl__run_instance_new(reg, PL_KIND_DATASET, &x->dataset, x, threads, &e->ds, err);
    if (!s && x->prune.enabled) {
        s = pl__run_instance_new(reg, PL_KIND_CRITERION, &x->prune.criterion, x, threads, &e->crit, err);
        if (!s)
            s = pl__run_instance_new(reg, PL_KIND_SCHEDULE, &x->prune.schedule, x, threads, &e->sched, err);
    }
    if (!s && open_data && !e->borrowed_data) {
        s = pl_data_open(e->ds, PL_SPLIT_TRAIN, &e->train, err);
        if (!s)
            s = pl_data_open(e->ds, PL_SPLIT_TEST, &e->test, err);
    }
    if (!s && open_data)
        s = pl__run_check_fit(x, e, err);
    if (!s && open_data) /* dataset.augment: training batches only (augment.h) */
        e->train.augment = x->augment;
    if (s)
        pl__runenv_free(e);
    return s;
}

/* The whole test split as floats, for latency timing. */
static pl_status preload_test(pl_runenv *e, pl_error *err)
{
    const pl_dataset_info *i = &e->test.info;
    int64_t img = (int64_t)i->channels * i->height * i->width;
    e->test_n = i->count;
    e->test_x = malloc((size_t)(img * i->count) * sizeof(float));
    int32_t *y = malloc(1024 * sizeof(int32_t));
    pl_status s = (!e->test_x || !y) ? pl_error_set(err, PL_ENOMEM, "out of memory for the test set") : PL_OK;
    for (int64_t f = 0; f < i->count && !s; f += 1000) {
        int n = (int)(i->count - f < 1000 ? i->count - f : 1000);
        s = pl_data_read(&e->test, NULL, f, n, e->test_x + f * img, y, err);
    }
    free(y);
    return s;
}

void pl__run_say(const pl_run_opts *o, const char *fmt, ...)
{
    if (o->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(o->out ? o->out : stdout, fmt, ap);
    va_end(ap);
    fflush(o->out ? o->out : stdout);
}

static void layer_shape(const pl_layer *l, char *buf, size_t n)
{
    if (l->type == PL_LAYER_CONV2D) /* the weight's shape: out x in/groups x kh x kw */
        snprintf(buf, n, "%dx%dx%dx%d", l->out_c, l->in_c / (l->groups > 1 ? l->groups : 1), l->kh, l->kw);
    else if (l->type == PL_LAYER_LINEAR)
        snprintf(buf, n, "%dx%d", l->out_c, l->in_c);
    else
        snprintf(buf, n, "%dx%dx%d", l->out_c, l->out_h, l->out_w);
}

/* Divergence by accuracy (README "Divergence"): after training, test
 * accuracy no better than 1.1 x chance (100/classes %) means the model
 * learnt nothing. Only on a test split of at least 100 examples per class:
 * on a handful of examples chance-level accuracy is sampling noise. */
static int at_chance(double acc, int classes, int64_t n_test)
{
    return classes >= 2 && n_test >= 100 * (int64_t)classes && !isnan(acc) && acc <= 1.1 * 100.0 / classes;
}

/* ---- baseline ---------------------------------------------------------------------- */

/* Sleeps a tenth of a second unless interrupted; PL_EINTR when it was. */
pl_status pl__run_claim_nap(const pl_run_opts *o, pl_error *err)
{
    struct timespec ts = {0, 100 * 1000 * 1000};
    if (!(o->interrupted && *o->interrupted))
        nanosleep(&ts, NULL);
    if (o->interrupted && *o->interrupted)
        return pl_error_set(err, PL_EINTR, "interrupted while waiting for another process");
    return PL_OK;
}

/* Another process sharing the cache may be training this baseline: its
 * claim (claim.h) makes us wait for the checkpoint instead of training it
 * a second time. Returns with *have_claim = 1 when this process must train
 * it (the claim is then in *claim), 0 when the checkpoint now exists. */
static pl_status claim_baseline(const pl_run_opts *o, const char *dir, const char *path, pl_claim *claim,
                                int *have_claim, pl_error *err)
{
    char cpath[4500], who[300];
    snprintf(cpath, sizeof cpath, "%s.claim", path);
    *have_claim = 0;
    pl_status s = pl__run_mkdir_p(dir, err);
    double t0 = pl_now(), limit = pl_claim_wait_limit();
    int said = 0;
    while (!s) {
        if (access(path, R_OK) == 0)
            return PL_OK;
        int got;
        s = pl_claim_try(cpath, claim, &got, who, sizeof who, err);
        if (s)
            return s;
        if (got) {
            /* saved between our check and the claim? then use it */
            if (access(path, R_OK) == 0) {
                pl_claim_release(claim);
                return PL_OK;
            }
            *have_claim = 1;
            return PL_OK;
        }
        if (!said++)
            pl__run_say(o, "baseline: waiting for %s, which is training %s\n", who, path);
        if (pl_now() - t0 > limit)
            return pl_error_set(err, PL_EIO,
                                "%s: gave up after %.0f s waiting for %s to train this baseline (if that process "
                                "is gone, remove %s; PRUNELAB_CLAIM_WAIT sets the wait)",
                                path, limit, who, cpath);
        s = pl__run_claim_nap(o, err);
    }
    return s;
}

pl_status pl__run_get_baseline(const pl_experiment *x, const pl_run_opts *o, pl_runenv *e,
                              pl_model **out, double *baseline_seconds, pl_run_result *hist,
                              pl_error *err)
{
    char dir[4096], path[4400], key[17];
    pl__run_cache_dir(x, o, dir, sizeof dir);
    if (pl_experiment_baseline_key(x, key))
        return pl_error_set(err, PL_ENOMEM, "out of memory computing the baseline's cache key");
    snprintf(path, sizeof path, "%s/baseline-%s.ckpt", dir, key);
    pl_claim claim = {.held = 0};
    int have_claim = 0;
    if (access(path, R_OK) != 0) {
        pl_status s = claim_baseline(o, dir, path, &claim, &have_claim, err);
        if (s)
            return s;
    }
    if (!have_claim) {
        char *meta = NULL;
        pl_model *m;
        pl_status s = pl_checkpoint_load(path, &m, &meta, err);
        if (s)
            return s;
        /* the key says which model it should be; the contents must agree */
        if ((s = pl_identity_check_checkpoint(path, m, e->spec, err))) {
            pl_model_free(m);
            free(meta);
            return s;
        }
        const char *bs = meta ? strstr(meta, "baseline_seconds=") : NULL;
        *baseline_seconds = bs ? strtod(bs + 17, NULL) : NAN;
        s = pl__history_meta_decode(meta, hist, err); /* the baseline's epochs */
        free(meta);
        if (s) {
            pl_model_free(m);
            return s;
        }
        pl__run_say(o, "baseline: reusing %s\n", path);
        *out = m;
        return PL_OK;
    }
    pl_model *m;
    /* model_init: its weights, else the model's own (an ONNX file's, or a fresh init) */
    pl_status s = x->model_init ? load_model_init(x, e->spec, &m, err) : pl_model_new(e->spec, x->seed, &m, err);
    if (s) {
        pl_claim_release(&claim);
        return s;
    }
    pl_backend_bind(m, e->be);
    pl_phase_stats ps;
    pl__history_ctx hc = {.r = hist, .m = m, .test = &e->test};
    pl_train_opts to = {.progress = o->quiet ? PL_PROGRESS_NONE : o->progress, .out = o->out,
                        .interrupted = o->interrupted, .on_epoch = pl__history_on_epoch,
                        .on_epoch_ud = &hc};
    s = pl_train_phase(m, &e->train, &x->train, x->seed, "train", &to, &ps, err);
    if (s) {
        pl_claim_release(&claim);
        pl_model_free(m);
        return s;
    }
    *baseline_seconds = ps.seconds;
    pl__buf meta = {0};
    pl__buf_printf(&meta, "key=%s\nbaseline_seconds=%.17g\n", key, ps.seconds);
    pl__history_meta_encode(&meta, hist);
    s = meta.failed ? pl_error_set(err, PL_ENOMEM, "out of memory") : pl__run_mkdir_p(dir, err);
    if (!s)
        s = pl_checkpoint_save(path, m, meta.data, 0, err);
    pl_claim_release(&claim); /* after the rename: waiters find the checkpoint */
    pl__buf_free(&meta);
    if (s) {
        pl_model_free(m);
        return s;
    }
    *out = m;
    return PL_OK;
}

/* ---- one run --------------------------------------------------------------------------- */

static void fill_identity(const pl_experiment *x, const pl_run_opts *o, pl_run_result *r)
{
    memset(r, 0, sizeof *r);
    pl__run_copy_str(r->run_id, sizeof r->run_id, x->run_id);
    pl__run_copy_str(r->experiment, sizeof r->experiment, x->name);
    pl__run_copy_str(r->model, sizeof r->model, x->model);
    const char *dpath = ref_param(&x->dataset, "path");
    if (dpath)
        snprintf(r->dataset, sizeof r->dataset, "%s:%s", x->dataset.plugin, dpath);
    else
        pl__run_copy_str(r->dataset, sizeof r->dataset, x->dataset.plugin);
    pl__run_copy_str(r->backend, sizeof r->backend, x->backend.plugin);
    r->seed = x->seed;
    if (x->prune.enabled) {
        pl__run_copy_str(r->criterion, sizeof r->criterion, x->prune.criterion.plugin);
        pl__run_copy_str(r->schedule, sizeof r->schedule, x->prune.schedule.plugin);
        pl__run_copy_str(r->granularity, sizeof r->granularity, pl_granularity_name(x->prune.granularity));
    }
    pl__run_copy_str(r->sweep, sizeof r->sweep, x->sweep_desc);
    r->run_index = x->run_index;
    r->acc_baseline = r->acc_pruned = r->acc_retrained = r->acc_final = NAN;
    r->latency_ms_before = r->latency_ms_after = NAN;
    r->target_sparsity = r->achieved_sparsity = 0;
    (void)o;
}

static pl_status record_layers(const pl_model *before, const pl_model *after, pl_granularity g,
                               pl_run_result *r)
{
    r->layers = calloc((size_t)before->n_layers, sizeof *r->layers);
    if (!r->layers)
        return PL_ENOMEM;
    r->n_layers = (size_t)before->n_layers;
    for (int i = 0; i < before->n_layers; i++) {
        /* matched by name: layer pruning removes whole layers */
        int j = pl_model_find(after, before->layers[i].name);
        const pl_layer *a = &before->layers[i], *b = j >= 0 ? &after->layers[j] : NULL;
        pl_layer_result *L = &r->layers[i];
        pl_counts ca, cb = {0};
        pl_layer_count(a, &ca);
        if (!b) {
            pl__run_copy_str(L->name, sizeof L->name, a->name);
            pl__run_copy_str(L->type, sizeof L->type, pl_layer_type_name(a->type));
            layer_shape(a, L->shape_before, sizeof L->shape_before);
            pl__run_copy_str(L->shape_after, sizeof L->shape_after, "removed");
            L->params_before = ca.params;
            L->macs_before = ca.macs;
            L->sparsity = 1;
            continue;
        }
        pl_layer_count(b, &cb);
        pl__run_copy_str(L->name, sizeof L->name, a->name);
        pl__run_copy_str(L->type, sizeof L->type, pl_layer_type_name(a->type));
        layer_shape(a, L->shape_before, sizeof L->shape_before);
        layer_shape(b, L->shape_after, sizeof L->shape_after);
        L->params_before = ca.params;
        L->params_after = cb.params;
        L->nonzero_after = cb.nonzero_params;
        L->macs_before = ca.macs;
        L->macs_after = cb.macs_effective;
        L->sparsity = (b->type == PL_LAYER_CONV2D || b->type == PL_LAYER_LINEAR) && g
                          ? pl_layer_sparsity(b, g)
                          : 0;
    }
    return PL_OK;
}

/* A failed kernel is reported by the model or trainer with the kernel, the
 * layer and the status; the backend's own message (api->set_error) says
 * why, and is added here. */
/* Latency (ms per 1,000 test images) and parameter/MAC counts of m. */
static pl_status measure(pl_model *m, pl_runenv *e, const pl_experiment *x, double *latency_ms, pl_counts *c,
                         pl_error *err)
{
    pl_status s = pl_measure_latency(m, e->test_x, e->test_n, x->report.latency_runs, latency_ms, err);
    if (!s)
        pl_model_count(m, c);
    return s;
}

static void add_backend_message(pl_runenv *e, pl_error *err)
{
    const char *m = e->be ? pl_instance_take_error(e->be) : "";
    if (!m || !*m || strstr(err->msg, m))
        return;
    char why[sizeof err->msg];
    snprintf(why, sizeof why, "%s", err->msg);
    pl_error_set(err, PL_EPLUGIN, "%s: %s", why, m);
}

/* *started is set once setup (model file, plugins, data) succeeded: errors
 * before that are configuration/input errors, after it run failures. */
pl_status pl__run_one(pl_registry *reg, const pl_experiment *x, const pl_run_opts *o, pl_identity *id,
                         pl_run_result *r, int *started, pl_error *err)
{
    fill_identity(x, o, r);
    *started = 0;
    pl_runenv e;
    pl_status s = pl__runenv_open(reg, x, o->threads, 1, id, &e, err);
    if (s)
        return s;
    *started = 1;
    pl_model *base = NULL, *m = NULL, *rewind = NULL;
    pl_pruner pr = {0};
    pl_train_opts to = {.progress = o->quiet ? PL_PROGRESS_NONE : o->progress, .out = o->out,
                        .interrupted = o->interrupted};
    s = pl__run_get_baseline(x, o, &e, &base, &r->baseline_seconds, r, err);
    if (s)
        goto done;
    pl_backend_bind(base, e.be);
    s = pl_evaluate(base, &e.test, 1000, &r->acc_baseline, NULL, err);
    if (s)
        goto done;
    pl__run_say(o, "baseline: test accuracy %.2f%%\n", r->acc_baseline);
    if (x->train.epochs > 0 && at_chance(r->acc_baseline, base->classes, e.test.info.count)) {
        s = pl_error_set(err, PL_EDIVERGED, "train diverged: test accuracy %.2f%% is at chance (%.2f%% for %d "
                         "classes) after training (lower the learning rate)", r->acc_baseline,
                         100.0 / base->classes, base->classes);
        goto done;
    }
    pl_counts cb;
    s = preload_test(&e, err);
    if (!s)
        s = measure(base, &e, x, &r->latency_ms_before, &cb, err);
    if (s)
        goto done;
    r->params_before = cb.params;
    r->macs_before = cb.macs;
    s = pl_model_clone(base, &m, err);
    if (s)
        goto done;
    pl_backend_bind(m, e.be);
    pl__history_ctx hc = {.r = r, .m = m, .test = &e.test};
    to.on_epoch = pl__history_on_epoch;
    to.on_epoch_ud = &hc;
    to.teacher = base; /* distill: the dense baseline teaches retrain/finetune */
    double t_train = pl_now();
    if (x->prune.enabled) {
        s = pl_pruner_init(&pr, m, &x->prune, e.crit, e.sched, err);
        if (!s && x->retrain.rewind != PL_REWIND_NONE)
            s = pl_rewind_source(x, e.spec, pl_instance_ops(e.be), pl_instance_state(e.be), &e.train, &to,
                                 &rewind, err);
        if (s)
            goto done;
        for (int step = 0; step < pr.plan.n_steps && !s; step++) {
            s = pl_pruner_step(&pr, step, &e.train, x->train.batch_size, x->seed, err);
            if (s)
                break;
            double tgt, ach, acc;
            pl_pruner_sparsity(&pr, &tgt, &ach);
            hc.step = step + 1; /* history: every step gets a test accuracy */
            hc.sparsity = ach;
            s = pl__history_prune_step(&hc, &acc, err);
            if (s)
                break;
            if (step == pr.plan.n_steps - 1)
                r->acc_pruned = acc;
            pl__run_say(o, "prune step %d/%d: sparsity %.4f, test accuracy %.2f%% before retraining\n",
                step + 1, pr.plan.n_steps, ach, acc);
            if (pr.merged) /* merge.h: so far, over all steps */
                pl__run_say(o, "merge: %lld removed unit(s) folded into their kept twins\n", (long long)pr.merged);
            if (rewind) {
                if ((s = pl_rewind_apply(m, rewind, err)))
                    break;
                char how[32];
                pl_rewind_name(&x->retrain, how, sizeof how);
                pl__run_say(o, "rewind: surviving weights reset (%s)\n", how);
            }
            char phase[32];
            snprintf(phase, sizeof phase, "retrain%d", step + 1);
            pl_phase_stats ps;
            s = pl_train_phase(m, &e.train, &x->retrain, x->seed,
                               pr.plan.n_steps == 1 ? "retrain" : phase, &to, &ps, err);
        }
        if (s)
            goto done;
        pl_pruner_sparsity(&pr, &r->target_sparsity, &r->achieved_sparsity);
        s = pl_evaluate(m, &e.test, 1000, &r->acc_retrained, NULL, err);
        if (s)
            goto done;
        pl__run_say(o, "retrained: test accuracy %.2f%%\n", r->acc_retrained);
    }
    r->acc_final = x->prune.enabled ? r->acc_retrained : r->acc_baseline;
    if (x->finetune.epochs > 0) {
        pl_phase_stats ps;
        s = pl_train_phase(m, &e.train, &x->finetune, x->seed, "finetune", &to, &ps, err);
        if (!s)
            s = pl_evaluate(m, &e.test, 1000, &r->acc_final, NULL, err);
        if (s)
            goto done;
        pl__run_say(o, "fine-tuned: test accuracy %.2f%%\n", r->acc_final);
    }
    r->train_seconds = pl_now() - t_train;
    pl_counts ca;
    s = measure(m, &e, x, &r->latency_ms_after, &ca, err);
    if (s)
        goto done;
    r->params_after = ca.params;
    r->nonzero_params_after = ca.nonzero_params;
    r->macs_after = ca.macs_effective;
    r->macs_after_physical = ca.macs;
    if (record_layers(base, m, x->prune.enabled ? x->prune.granularity : 0, r)) {
        s = pl_error_set(err, PL_ENOMEM, "out of memory");
        goto done;
    }
    if ((s = pl__history_record_kept(r, m, &pr, err)))
        goto done;
    /* regularize: filter-norm distribution of baseline and final model (DIR/norms/) */
    s = pl_norms_write_run(pl__run_report_dir(x, o), x->run_id, base, m, &x->train.reg,
                           !o->quiet && (x->train.reg.type || x->retrain.reg.type || x->finetune.reg.type)
                               ? (o->out ? o->out : stdout)
                               : NULL,
                           err);
    if (s)
        goto done;
    pl__run_copy_str(r->status, sizeof r->status, "ok");
    if (x->prune.enabled) {
        pl_error miss;
        if (pl_pruner_check(&pr, &miss)) {
            pl__run_copy_str(r->status, sizeof r->status, "missed_target");
            pl__run_copy_str(r->message, sizeof r->message, miss.msg);
        }
    }
    if (((x->prune.enabled && x->retrain.epochs > 0) || x->finetune.epochs > 0) &&
        at_chance(r->acc_final, m->classes, e.test.info.count)) {
        pl__run_copy_str(r->status, sizeof r->status, "diverged");
        snprintf(r->message, sizeof r->message,
                 "test accuracy %.2f%% is at chance (%.2f%% for %d classes) after retraining (lower the "
                 "retrain/finetune learning rate)", r->acc_final, 100.0 / m->classes, m->classes);
    }
    /* the final model beside the records */
    {
        char dir[4400], path[4500];
        snprintf(dir, sizeof dir, "%s/models", pl__run_report_dir(x, o));
        snprintf(path, sizeof path, "%s/%s.ckpt", dir, x->run_id);
        s = pl__run_mkdir_p(dir, err);
        if (!s)
            s = pl_checkpoint_save(path, m, x->run_id, 0, err);
        if (s) { /* no record follows: leave no orphan norms file either */
            snprintf(path, sizeof path, "%s/norms/%s.csv", pl__run_report_dir(x, o), x->run_id);
            unlink(path);
        }
    }
done:
    if (s == PL_EPLUGIN)
        add_backend_message(&e, err);
    pl_pruner_free(&pr);
    pl_model_free(base);
    pl_model_free(m);
    pl_model_free(rewind);
    pl__runenv_free(&e);
    return s;
}

/* ---- printing ---------------------------------------------------------------------------- */

static void fmt_acc(char *b, size_t n, double v)
{
    if (isnan(v))
        snprintf(b, n, "-");
    else
        snprintf(b, n, "%.2f", v);
}

void pl__run_print_row_header(FILE *f)
{
    fprintf(f, "\n| run | criterion | schedule | gran | target | achieved | params | MACs | acc base | "
               "acc pruned | acc final | latency ms/1k | status |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
}

void pl__run_print_row(FILE *f, const pl_run_result *r)
{
    char a[16], b[16], c[16];
    fmt_acc(a, sizeof a, r->acc_baseline);
    fmt_acc(b, sizeof b, r->acc_pruned);
    fmt_acc(c, sizeof c, r->acc_final);
    fprintf(f, "| %s | %s | %s | %s | %.4f | %.4f | %lld → %lld | %lld → %lld | %s | %s | %s | %.2f → %.2f | %s |\n",
            r->run_id, r->criterion[0] ? r->criterion : "-", r->schedule[0] ? r->schedule : "-",
            r->granularity[0] ? r->granularity : "-", r->target_sparsity, r->achieved_sparsity,
            (long long)r->params_before, (long long)r->nonzero_params_after, (long long)r->macs_before,
            (long long)r->macs_after, a, b, c, r->latency_ms_before, r->latency_ms_after, r->status);
}

