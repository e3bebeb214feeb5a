/* run.c — the experiment loop: baseline, prune, retrain, fine-tune, report. */
#include "run.h"
#include "checkpoint.h"
#include "claim.h"
#include "history.h"
#include "identity.h"
#include "manifest.h"
#include "prune.h"
#include "regularize.h"
#include "share_path.h"

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

#define MKDIR_HINT "choose a writable folder with --out or report.dir"

static pl_status mkdir_p(const char *path, pl_error *err)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) && errno != EEXIST)
            return pl_error_set(err, PL_EIO, "%s: cannot create directory: %s (%s)", buf, strerror(errno),
                                MKDIR_HINT);
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST)
        return pl_error_set(err, PL_EIO, "%s: cannot create directory: %s (%s)", buf, strerror(errno), MKDIR_HINT);
    struct stat st;
    if (stat(buf, &st) || !S_ISDIR(st.st_mode))
        return pl_error_set(err, PL_EIO, "%s: exists and is not a directory (%s)", buf, MKDIR_HINT);
    return PL_OK;
}

static const char *ref_param(const pl_plugin_ref *r, const char *key)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (!strcmp(r->params[i].key, key))
            return r->params[i].value;
    return NULL;
}

static void copy_str(char *dst, size_t n, const char *src) { snprintf(dst, n, "%s", src ? src : ""); }

static const char *report_dir(const pl_experiment *x, const pl_run_opts *o)
{
    return o && o->out_dir ? o->out_dir : x->report.dir;
}

/* the baseline cache folder: report.cache, else <dir>/cache */
static void cache_dir(const pl_experiment *x, const pl_run_opts *o, char *buf, size_t n)
{
    char def[4096];
    snprintf(def, sizeof def, "%s/cache", x->report.dir);
    if (x->report.cache && strcmp(x->report.cache, def))
        snprintf(buf, n, "%s", x->report.cache);
    else
        snprintf(buf, n, "%s/cache", report_dir(x, o));
}

/* Everything one run needs, opened once per run. */
typedef struct pl_runenv {
    pl_model_spec *spec;
    pl_instance *be, *ds, *crit, *sched;
    pl_data train, test;
    float *test_x;
    int64_t test_n;
    int borrowed_data; /* train/test belong to the pl_identity (never closed here) */
} pl_runenv;

static void runenv_free(pl_runenv *e)
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
static pl_status instance_new(pl_registry *reg, pl_kind kind, const pl_plugin_ref *ref,
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
static pl_status check_fit(const pl_experiment *x, const pl_runenv *e, pl_error *err)
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

static pl_status runenv_open(pl_registry *reg, const pl_experiment *x, int threads, int open_data,
                             pl_identity *id, pl_runenv *e, pl_error *err)
{
    memset(e, 0, sizeof *e);
    pl_status s = pl__experiment_model(x, &e->spec, err);
    if (!s)
        s = instance_new(reg, PL_KIND_BACKEND, &x->backend, x, threads, &e->be, err);
    /* the splits the identity opened to learn their checksums serve the run */
    if (!s && open_data && pl_identity_borrow_data(id, x, &e->train, &e->test))
        e->borrowed_data = 1;
    if (!s && !e->borrowed_data)
        s = instance_new(reg, PL_KIND_DATASET, &x->dataset, x, threads, &e->ds, err);
    if (!s && x->prune.enabled) {
        s = instance_new(reg, PL_KIND_CRITERION, &x->prune.criterion, x, threads, &e->crit, err);
        if (!s)
            s = instance_new(reg, PL_KIND_SCHEDULE, &x->prune.schedule, x, threads, &e->sched, err);
    }
    if (!s && open_data && !e->borrowed_data) {
        s = pl_data_open(e->ds, PL_SPLIT_TRAIN, &e->train, err);
        if (!s)
            s = pl_data_open(e->ds, PL_SPLIT_TEST, &e->test, err);
    }
    if (!s && open_data)
        s = check_fit(x, e, err);
    if (s)
        runenv_free(e);
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

static void say(const pl_run_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const pl_run_opts *o, const char *fmt, ...)
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
    if (l->type == PL_LAYER_CONV2D)
        snprintf(buf, n, "%dx%dx%dx%d", l->out_c, l->in_c, l->kh, l->kw);
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
static pl_status claim_nap(const pl_run_opts *o, pl_error *err)
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
    pl_status s = mkdir_p(dir, err);
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
            say(o, "baseline: waiting for %s, which is training %s\n", who, path);
        if (pl_now() - t0 > limit)
            return pl_error_set(err, PL_EIO,
                                "%s: gave up after %.0f s waiting for %s to train this baseline (if that process "
                                "is gone, remove %s; PRUNELAB_CLAIM_WAIT sets the wait)",
                                path, limit, who, cpath);
        s = claim_nap(o, err);
    }
    return s;
}

static pl_status get_baseline(const pl_experiment *x, const pl_run_opts *o, pl_runenv *e,
                              pl_model **out, double *baseline_seconds, pl_run_result *hist,
                              pl_error *err)
{
    char dir[4096], path[4400], key[17];
    cache_dir(x, o, dir, sizeof dir);
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
        say(o, "baseline: reusing %s\n", path);
        *out = m;
        return PL_OK;
    }
    pl_model *m;
    pl_status s = pl_model_new(e->spec, x->seed, &m, err);
    if (s) {
        pl_claim_release(&claim);
        return s;
    }
    pl_model_bind(m, pl_instance_ops(e->be), pl_instance_state(e->be));
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
    s = meta.failed ? pl_error_set(err, PL_ENOMEM, "out of memory") : mkdir_p(dir, err);
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
    copy_str(r->run_id, sizeof r->run_id, x->run_id);
    copy_str(r->experiment, sizeof r->experiment, x->name);
    copy_str(r->model, sizeof r->model, x->model);
    const char *dpath = ref_param(&x->dataset, "path");
    if (dpath)
        snprintf(r->dataset, sizeof r->dataset, "%s:%s", x->dataset.plugin, dpath);
    else
        copy_str(r->dataset, sizeof r->dataset, x->dataset.plugin);
    copy_str(r->backend, sizeof r->backend, x->backend.plugin);
    r->seed = x->seed;
    if (x->prune.enabled) {
        copy_str(r->criterion, sizeof r->criterion, x->prune.criterion.plugin);
        copy_str(r->schedule, sizeof r->schedule, x->prune.schedule.plugin);
        copy_str(r->granularity, sizeof r->granularity, pl_granularity_name(x->prune.granularity));
    }
    copy_str(r->sweep, sizeof r->sweep, x->sweep_desc);
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
            copy_str(L->name, sizeof L->name, a->name);
            copy_str(L->type, sizeof L->type, pl_layer_type_name(a->type));
            layer_shape(a, L->shape_before, sizeof L->shape_before);
            copy_str(L->shape_after, sizeof L->shape_after, "removed");
            L->params_before = ca.params;
            L->macs_before = ca.macs;
            L->sparsity = 1;
            continue;
        }
        pl_layer_count(b, &cb);
        copy_str(L->name, sizeof L->name, a->name);
        copy_str(L->type, sizeof L->type, pl_layer_type_name(a->type));
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
static pl_status run_one(pl_registry *reg, const pl_experiment *x, const pl_run_opts *o, pl_identity *id,
                         pl_run_result *r, int *started, pl_error *err)
{
    fill_identity(x, o, r);
    *started = 0;
    pl_runenv e;
    pl_status s = runenv_open(reg, x, o->threads, 1, id, &e, err);
    if (s)
        return s;
    *started = 1;
    pl_model *base = NULL, *m = NULL;
    pl_pruner pr = {0};
    pl_train_opts to = {.progress = o->quiet ? PL_PROGRESS_NONE : o->progress, .out = o->out,
                        .interrupted = o->interrupted};
    s = get_baseline(x, o, &e, &base, &r->baseline_seconds, r, err);
    if (s)
        goto done;
    pl_model_bind(base, pl_instance_ops(e.be), pl_instance_state(e.be));
    s = pl_evaluate(base, &e.test, 1000, &r->acc_baseline, NULL, err);
    if (s)
        goto done;
    say(o, "baseline: test accuracy %.2f%%\n", r->acc_baseline);
    if (x->train.epochs > 0 && at_chance(r->acc_baseline, base->classes, e.test.info.count)) {
        s = pl_error_set(err, PL_EDIVERGED, "train diverged: test accuracy %.2f%% is at chance (%.2f%% for %d "
                         "classes) after training (lower the learning rate)", r->acc_baseline,
                         100.0 / base->classes, base->classes);
        goto done;
    }
    s = preload_test(&e, err);
    if (!s)
        s = pl_measure_latency(base, e.test_x, e.test_n, x->report.latency_runs, &r->latency_ms_before,
                               err);
    if (s)
        goto done;
    pl_counts cb;
    pl_model_count(base, &cb);
    r->params_before = cb.params;
    r->macs_before = cb.macs;
    s = pl_model_clone(base, &m, err);
    if (s)
        goto done;
    pl_model_bind(m, pl_instance_ops(e.be), pl_instance_state(e.be));
    pl__history_ctx hc = {.r = r, .m = m, .test = &e.test};
    to.on_epoch = pl__history_on_epoch;
    to.on_epoch_ud = &hc;
    double t_train = pl_now();
    if (x->prune.enabled) {
        s = pl_pruner_init(&pr, m, &x->prune, e.crit, e.sched, err);
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
            say(o, "prune step %d/%d: sparsity %.4f, test accuracy %.2f%% before retraining\n",
                step + 1, pr.plan.n_steps, ach, acc);
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
        say(o, "retrained: test accuracy %.2f%%\n", r->acc_retrained);
    }
    r->acc_final = x->prune.enabled ? r->acc_retrained : r->acc_baseline;
    if (x->finetune.epochs > 0) {
        pl_phase_stats ps;
        s = pl_train_phase(m, &e.train, &x->finetune, x->seed, "finetune", &to, &ps, err);
        if (!s)
            s = pl_evaluate(m, &e.test, 1000, &r->acc_final, NULL, err);
        if (s)
            goto done;
        say(o, "fine-tuned: test accuracy %.2f%%\n", r->acc_final);
    }
    r->train_seconds = pl_now() - t_train;
    s = pl_measure_latency(m, e.test_x, e.test_n, x->report.latency_runs, &r->latency_ms_after, err);
    if (s)
        goto done;
    pl_counts ca;
    pl_model_count(m, &ca);
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
    s = pl_norms_write_run(report_dir(x, o), x->run_id, base, m, &x->train.reg,
                           !o->quiet && (x->train.reg.type || x->retrain.reg.type || x->finetune.reg.type)
                               ? (o->out ? o->out : stdout)
                               : NULL,
                           err);
    if (s)
        goto done;
    copy_str(r->status, sizeof r->status, "ok");
    if (x->prune.enabled) {
        pl_error miss;
        if (pl_pruner_check(&pr, &miss)) {
            copy_str(r->status, sizeof r->status, "missed_target");
            copy_str(r->message, sizeof r->message, miss.msg);
        }
    }
    if (((x->prune.enabled && x->retrain.epochs > 0) || x->finetune.epochs > 0) &&
        at_chance(r->acc_final, m->classes, e.test.info.count)) {
        copy_str(r->status, sizeof r->status, "diverged");
        snprintf(r->message, sizeof r->message,
                 "test accuracy %.2f%% is at chance (%.2f%% for %d classes) after retraining (lower the "
                 "retrain/finetune learning rate)", r->acc_final, 100.0 / m->classes, m->classes);
    }
    /* the final model beside the records */
    {
        char dir[4400], path[4500];
        snprintf(dir, sizeof dir, "%s/models", report_dir(x, o));
        snprintf(path, sizeof path, "%s/%s.ckpt", dir, x->run_id);
        s = mkdir_p(dir, err);
        if (!s)
            s = pl_checkpoint_save(path, m, x->run_id, 0, err);
        if (s) { /* no record follows: leave no orphan norms file either */
            snprintf(path, sizeof path, "%s/norms/%s.csv", report_dir(x, o), x->run_id);
            unlink(path);
        }
    }
done:
    if (s == PL_EPLUGIN)
        add_backend_message(&e, err);
    pl_pruner_free(&pr);
    pl_model_free(base);
    pl_model_free(m);
    runenv_free(&e);
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

static void print_row_header(FILE *f)
{
    fprintf(f, "\n| run | criterion | schedule | gran | target | achieved | params | MACs | acc base | "
               "acc pruned | acc final | latency ms/1k | status |\n");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
}

static void print_row(FILE *f, const pl_run_result *r)
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

/* ---- the sweep ------------------------------------------------------------------------------ */

/* The folder a run writes into must be new, empty, or a prunelab report
 * (its marker file, or a runs/ folder from before markers existed), so a
 * user's own results.csv is never overwritten. Marks it as a report. */
#define PL_REPORT_MARKER ".prunelab-report"

/* Names prunelab itself puts in a report folder first: a process that
 * shares the folder (a shard, an MPI rank) may be creating them right now;
 * slurm/ holds scripts/slurm-array.sh's logs. */
static int prunelab_entry(const char *name)
{
    static const char *const ours[] = {".", "..", "runs", "claims", "cache", "models", "norms", "slurm"};
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        if (!strcmp(name, ours[i]))
            return 1;
    return !strncmp(name, PL_REPORT_MARKER, sizeof PL_REPORT_MARKER - 1); /* the marker and its temp file */
}

static pl_status claim_report_dir(const char *dir, pl_error *err)
{
    char p[4400];
    struct stat st;
    snprintf(p, sizeof p, "%s/" PL_REPORT_MARKER, dir);
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && access(p, F_OK) != 0) {
        snprintf(p, sizeof p, "%s/runs", dir);
        int ours = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
        DIR *d = ours ? NULL : opendir(dir);
        const struct dirent *de;
        const char *foreign = NULL;
        while (d && (de = readdir(d)) && !foreign)
            if (!prunelab_entry(de->d_name))
                foreign = de->d_name;
        pl_status s = foreign ? pl_error_set(err, PL_ECONFIG,
                                             "%s: the folder holds files prunelab did not write (e.g. %.100s) "
                                             "and is not a prunelab report (no %s); choose a new or empty folder "
                                             "with --out or report.dir",
                                             dir, foreign, PL_REPORT_MARKER)
                              : PL_OK;
        if (d)
            closedir(d);
        if (s)
            return s;
    }
    pl_status s = mkdir_p(dir, err);
    if (s)
        return s;
    snprintf(p, sizeof p, "%s/" PL_REPORT_MARKER, dir);
    if (access(p, F_OK) != 0) {
        static const char text[] = "This folder is a prunelab report (runs/, results.csv, ...).\n";
        s = pl_write_atomic(p, text, sizeof text - 1, err);
    }
    return s;
}

/* 1 when x's record exists and may be kept: its manifest's identity (which
 * includes the plugin file hashes that run_id leaves out) equals x's. A
 * record made by another build of a plugin is run again. A record that
 * cannot be read is kept here; the report step names what is wrong. */
static int record_exists(const char *dir, const pl_experiment *x, const pl_run_opts *o)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/runs/%s.json", dir, x->run_id);
    if (access(p, R_OK) != 0)
        return 0;
    pl_run_result old;
    pl_error e;
    if (pl_record_read(p, &old, &e))
        return 1;
    const char *id = pl_manifest_get(&old, "identity");
    int keep = !id || !x->identity || !strcmp(id, x->identity);
    pl_run_result_free(&old);
    if (!keep)
        say(o, "run %s: its record was made with other plugin files (rebuilt or shadowed); running it again\n",
            x->run_id);
    return keep;
}

/* The job handed to the executor (plugin.h, pl_executor_job): the runs this
 * process was asked for (after --shard and resume) and the baselines they
 * start from. The executor decides the order and the process; these
 * callbacks do the work. */
typedef struct pl_sweep {
    pl_registry *reg;
    const pl_config *cfg;
    const pl_run_opts *o;
    pl_identity *id;    /* what each run reads (identity.h) */
    size_t n;           /* runs in the whole sweep */
    size_t n_runs;      /* runs to execute here */
    size_t *idx;        /* [n_runs] each one's index in the sweep */
    size_t *base;       /* [n_runs] each one's baseline */
    char (*ids)[17];    /* [n_runs] run ids */
    size_t n_base;
    char (*bkeys)[17];  /* [n_base] baseline keys */
    size_t *bfirst;     /* [n_base] the first run starting from it */
    char dir[4096];
    int plots;
    size_t done, skipped;
    pl_status worst;    /* the first flagged run's status ... */
    pl_error worst_err; /* ... and why */
    pl_error err;       /* why the last callback failed */
    int printed_header;
} pl_sweep;

static void sweep_free(pl_sweep *w)
{
    free(w->idx);
    free(w->base);
    free(w->ids);
    free(w->bkeys);
    free(w->bfirst);
}

/* Run i of the sweep with its identity (run_id and baseline key from what
 * it reads). */
static pl_status sweep_expand(pl_sweep *w, size_t i, pl_experiment **x, pl_error *err)
{
    pl_status s = pl_config_expand(w->cfg, i, x, err);
    if (!s && (s = pl_identity_apply(w->id, *x, err))) {
        pl_experiment_free(*x);
        *x = NULL;
    }
    return s;
}

static pl_status sweep_init(pl_sweep *w, pl_registry *reg, const pl_config *cfg, const pl_run_opts *o,
                            pl_identity *id, pl_error *err)
{
    memset(w, 0, sizeof *w);
    w->reg = reg;
    w->cfg = cfg;
    w->o = o;
    w->id = id;
    w->plots = 1;
    w->n = pl_config_run_count(cfg);
    size_t n = w->n ? w->n : 1;
    w->idx = malloc(n * sizeof *w->idx);
    w->base = malloc(n * sizeof *w->base);
    w->ids = malloc(n * sizeof *w->ids);
    w->bkeys = malloc(n * sizeof *w->bkeys);
    w->bfirst = malloc(n * sizeof *w->bfirst);
    if (!w->idx || !w->base || !w->ids || !w->bkeys || !w->bfirst)
        return pl_error_set(err, PL_ENOMEM, "out of memory for a sweep of %zu runs", w->n);
    for (size_t i = 0; i < w->n; i++) {
        if (o->shard_n > 1 && (int)(i % (size_t)o->shard_n) != o->shard_i - 1)
            continue;
        pl_experiment *x;
        pl_status s = sweep_expand(w, i, &x, err);
        if (s)
            return s;
        if (!w->dir[0]) {
            if ((s = claim_report_dir(report_dir(x, o), err))) {
                pl_experiment_free(x);
                return s;
            }
            snprintf(w->dir, sizeof w->dir, "%s", report_dir(x, o));
            w->plots = x->report.plots;
        }
        if (record_exists(w->dir, x, o)) {
            w->skipped++;
            pl_experiment_free(x);
            continue;
        }
        char key[17];
        if (pl_experiment_baseline_key(x, key)) {
            pl_experiment_free(x);
            return pl_error_set(err, PL_ENOMEM, "out of memory computing baseline keys");
        }
        size_t b = 0;
        while (b < w->n_base && strcmp(w->bkeys[b], key))
            b++;
        if (b == w->n_base) {
            memcpy(w->bkeys[b], key, sizeof key);
            w->bfirst[b] = w->n_runs;
            w->n_base++;
        }
        w->idx[w->n_runs] = i;
        w->base[w->n_runs] = b;
        memcpy(w->ids[w->n_runs], x->run_id, sizeof w->ids[0]);
        w->n_runs++;
        pl_experiment_free(x);
    }
    return PL_OK;
}

static const char *sweep_run_id(void *host, size_t k) { return ((pl_sweep *)host)->ids[k]; }
static size_t sweep_run_baseline(void *host, size_t k) { return ((pl_sweep *)host)->base[k]; }
static const char *sweep_error(void *host) { return ((pl_sweep *)host)->err.msg; }

/* Trains baseline b here (or finds it cached, or waits for the process that
 * claimed it). A baseline that fails on its own (diverged, ...) is left to
 * the runs: each of them meets the failure again and records it, as in a
 * one-process sweep. */
static pl_status sweep_execute_baseline(void *host, size_t b, unsigned flags)
{
    pl_sweep *w = host;
    pl_run_opts o = *w->o;
    if (flags & PL_EXEC_QUIET)
        o.quiet = 1;
    pl_experiment *x;
    pl_status s = sweep_expand(w, w->idx[w->bfirst[b]], &x, &w->err);
    if (s)
        return s;
    char dir[4096], path[4400];
    cache_dir(x, &o, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/baseline-%s.ckpt", dir, w->bkeys[b]);
    if (access(path, R_OK) == 0) {
        pl_experiment_free(x);
        return PL_OK;
    }
    pl_runenv e;
    s = runenv_open(w->reg, x, o.threads, 1, w->id, &e, &w->err);
    if (!s) {
        pl_model *m = NULL;
        double secs;
        pl_run_result hist = {0}; /* the runs read the baseline's epochs from its checkpoint */
        s = get_baseline(x, &o, &e, &m, &secs, &hist, &w->err);
        pl_run_result_free(&hist);
        if (s == PL_EDIVERGED || s == PL_EPLUGIN || s == PL_ENOMEM || s == PL_EUNSUPPORTED || s == PL_EINVAL)
            s = PL_OK;
        pl_model_free(m);
        runenv_free(&e);
    }
    pl_experiment_free(x);
    return s;
}

static pl_status sweep_execute_run(void *host, size_t k, unsigned flags, int *outcome)
{
    pl_sweep *w = host;
    pl_run_opts ol = *w->o;
    if (flags & PL_EXEC_QUIET)
        ol.quiet = 1;
    const pl_run_opts *o = &ol;
    pl_error *err = &w->err;
    size_t i = w->idx[k], n = w->n;
    int dummy;
    outcome = outcome ? outcome : &dummy;
    *outcome = PL_RUN_DONE;
    pl_experiment *x;
    pl_status s = sweep_expand(w, i, &x, err);
    if (s)
        return s;
    const char *dir = w->dir;
    if (o->interrupted && *o->interrupted) {
        pl_error_set(err, PL_EINTR,
                     "%s: interrupted before run %zu/%zu; %zu finished run(s) kept in %s/runs (rerun the "
                     "same command to resume)", x->file, i + 1, n, w->done + w->skipped, dir);
        pl_experiment_free(x);
        return PL_EINTR;
    }
    /* claim the run, so processes sharing DIR never execute it twice */
    char cdir[4200], cpath[4400], who[300];
    snprintf(cdir, sizeof cdir, "%s/claims", dir);
    snprintf(cpath, sizeof cpath, "%s/%s.claim", cdir, x->run_id);
    s = mkdir_p(cdir, err);
    pl_claim claim = {.held = 0};
    double t0 = pl_now(), limit = pl_claim_wait_limit();
    for (int said = 0; !s;) {
        if (record_exists(dir, x, o)) {
            *outcome = PL_RUN_SKIPPED;
            break;
        }
        int got;
        s = pl_claim_try(cpath, &claim, &got, who, sizeof who, err);
        if (s)
            break;
        if (got) {
            if (record_exists(dir, x, o)) { /* finished between the check and the claim */
                pl_claim_release(&claim);
                *outcome = PL_RUN_SKIPPED;
            }
            break;
        }
        if (!(flags & PL_EXEC_WAIT)) {
            *outcome = PL_RUN_CLAIMED;
            break;
        }
        if (!said++)
            say(o, "run %s: waiting for %s, which is running it\n", x->run_id, who);
        if (pl_now() - t0 > limit) {
            s = pl_error_set(err, PL_EIO,
                             "%s: gave up after %.0f s waiting for %s to finish run %s (if that process is "
                             "gone, remove %s; PRUNELAB_CLAIM_WAIT sets the wait)",
                             x->file, limit, who, x->run_id, cpath);
            break;
        }
        s = claim_nap(o, err);
    }
    if (s || *outcome != PL_RUN_DONE) {
        if (*outcome == PL_RUN_SKIPPED)
            w->skipped++;
        pl_experiment_free(x);
        return s;
    }
    if (n > 1)
        say(o, "\n== run %zu/%zu %s %s\n", i + 1, n, x->run_id, x->sweep_desc);
    pl_run_result r;
    pl_error rerr;
    pl_error_clear(&rerr);
    int started = 0;
    time_t t_start = time(NULL);
    s = run_one(w->reg, x, o, w->id, &r, &started, &rerr);
    if (started && (s == PL_EDIVERGED || s == PL_EPLUGIN || s == PL_ENOMEM || s == PL_EMISSED ||
                    s == PL_EUNSUPPORTED || s == PL_EINVAL)) {
        /* this run failed on its own (not its configuration or data): its row
         * says why and the sweep goes on */
        copy_str(r.status, sizeof r.status, s == PL_EDIVERGED ? "diverged" : "failed");
        copy_str(r.message, sizeof r.message, rerr.msg);
        say(o, "run %s: %s: %s\n", x->run_id, r.status, rerr.msg);
        s = PL_OK;
    } else if (s == PL_EINTR) {
        pl_error_set(err, s, "%s: interrupted during run %zu/%zu (%s); %zu finished run(s) kept in %s/runs "
                     "(rerun the same command to resume)", x->file, i + 1, n, rerr.msg, w->done + w->skipped, dir);
    } else if (s) {
        *err = rerr;
    }
    if (!s)
        s = pl_manifest_build(&r, w->reg, x, o->threads, t_start, time(NULL), err);
    if (!s)
        s = pl_record_write(dir, &r, err);
    pl_claim_release(&claim); /* after the record's rename: nobody redoes it */
    if (s) {
        pl_run_result_free(&r);
        pl_experiment_free(x);
        return s;
    }
    if (strcmp(r.status, "ok")) {
        pl_status flag = !strcmp(r.status, "diverged")        ? PL_EDIVERGED
                         : !strcmp(r.status, "missed_target") ? PL_EMISSED
                                                              : PL_ERUNFAILED; /* exit 1, not 2 */
        *outcome = PL_RUN_FLAGGED;
        if (w->worst == PL_OK) {
            w->worst = flag;
            pl_error_set(&w->worst_err, flag, "%s: run %zu/%zu %s%s%s%s: %s: %s", x->file, i + 1, n, r.run_id,
                         x->sweep_desc[0] ? " (" : "", x->sweep_desc, x->sweep_desc[0] ? ")" : "", r.status,
                         r.message);
        }
    }
    if (!(flags & PL_EXEC_QUIET)) {
        FILE *out = o->out ? o->out : stdout;
        if (!w->printed_header)
            print_row_header(out);
        w->printed_header = 1;
        print_row(out, &r);
    }
    w->done++;
    pl_run_result_free(&r);
    pl_experiment_free(x);
    return PL_OK;
}

static pl_status sweep_write_report(void *host)
{
    pl_sweep *w = host;
    const pl_run_opts *o = w->o;
    pl_error *err = &w->err;
    if (w->skipped)
        say(o, "resumed: %zu finished run(s) kept from %s/runs\n", w->skipped, w->dir);
    if (!w->dir[0])
        return PL_OK;
    pl_run_result *runs;
    size_t nr;
    pl_status s = pl_records_load(w->dir, &runs, &nr, err);
    if (!s) {
        s = pl_report_write(w->dir, runs, nr, w->plots, err);
        for (size_t i = 0; i < nr; i++)
            pl_run_result_free(&runs[i]);
        free(runs);
    }
    if (!s) /* regularize: DIR/norms.csv from every run's norms */
        s = pl_norms_gather(w->dir, err);
    if (s)
        return s;
    say(o, "\nreport: %s/results.csv, results.md, results.tex, layers.csv, history.csv (%zu run(s) executed by this "
        "process, %zu in the report)\n", w->dir, w->done, nr);
    return PL_OK;
}

/* The executor named by --executor (default: the built-in `local`). */
static pl_status executor_new(pl_registry *reg, const pl_run_opts *o, pl_instance **out, pl_error *err)
{
    const char *name = o->executor ? o->executor : "local";
    const pl_plugin *p;
    pl_status s = pl_registry_find(reg, PL_KIND_EXECUTOR, name, &p, err);
    if (s == PL_ENOTFOUND) {
        char path[2048];
        pl_registry_search_path(reg, path, sizeof path);
        return pl_error_set(err, PL_ENOTFOUND,
                            "--executor %s: no executor plugin '%s' (looked for executors/%s.so and %s.so in: %s; "
                            "the mpi executor is built only when CMake finds MPI: install libopenmpi-dev and "
                            "openmpi-bin, then rebuild)",
                            name, name, name, name, path);
    }
    if (s)
        return s;
    return pl_instance_new_kv(p, NULL, 0, o->threads, out, err);
}

static pl_status validate_config(pl_registry *reg, const pl_config *cfg, FILE *out, pl_identity *id,
                                 volatile sig_atomic_t *intr, pl_error *err);

pl_status pl_run_config(pl_registry *reg, const pl_config *cfg, const pl_run_opts *o, pl_error *err)
{
    pl_identity *id = pl_identity_new(reg);
    if (!id)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    /* everything a run needs is checked before the first one trains, so a
     * bad run late in a sweep costs nothing and writes nothing */
    pl_status s = validate_config(reg, cfg, NULL, id, o->interrupted, err);
    pl_instance *ex = NULL;
    if (!s)
        s = executor_new(reg, o, &ex, err);
    if (s) {
        pl_identity_free(id);
        return s;
    }
    size_t n_all = pl_config_run_count(cfg);
    if (o->shard_n > 1 && (size_t)o->shard_i > n_all)
        say(o, "shard %d/%d has no runs: the sweep expands to %zu run(s); nothing to do\n", o->shard_i, o->shard_n,
            n_all);
    pl_sweep w;
    s = sweep_init(&w, reg, cfg, o, id, err);
    if (!s) {
        pl_executor_job job = {
            .struct_size = sizeof job,
            .host = &w,
            .n_runs = w.n_runs,
            .n_baselines = w.n_base,
            .report_dir = w.dir,
            .quiet = o->quiet,
            .interrupted = o->interrupted,
            .run_id = sweep_run_id,
            .run_baseline = sweep_run_baseline,
            .execute_baseline = sweep_execute_baseline,
            .execute_run = sweep_execute_run,
            .write_report = sweep_write_report,
            .error = sweep_error,
        };
        const pl_executor_ops *ops = pl_instance_ops(ex);
        s = ops->run(pl_instance_state(ex), &job);
        if (s) {
            const char *why = pl_instance_take_error(ex);
            if (why[0])
                pl_error_set(err, s, "executor '%s': %s", pl_plugin_get_desc(pl_instance_plugin(ex))->name, why);
            else
                pl_error_set(err, s, "%s", w.err.msg[0] ? w.err.msg : pl_status_str(s));
        } else if (w.worst) {
            *err = w.worst_err;
            s = w.worst;
        }
    }
    sweep_free(&w);
    pl_instance_free(ex);
    pl_identity_free(id);
    return s;
}

pl_status pl_report_rebuild(const char *dir, int plots, FILE *out, pl_error *err)
{
    pl_run_result *runs;
    size_t nr;
    pl_status s = pl_records_load(dir, &runs, &nr, err);
    if (s)
        return s;
    if (nr == 0) {
        free(runs);
        return pl_error_set(err, PL_ENOTFOUND, "%s/runs: no finished run records to report", dir);
    }
    s = pl_report_write(dir, runs, nr, plots, err);
    if (!s && out) {
        print_row_header(out);
        for (size_t i = 0; i < nr; i++)
            print_row(out, &runs[i]);
        fprintf(out, "\nreport: %s/results.csv, results.md, results.tex, layers.csv, history.csv (%zu runs)\n", dir, nr);
    }
    for (size_t i = 0; i < nr; i++)
        pl_run_result_free(&runs[i]);
    free(runs);
    return s;
}

/* ---- validate --------------------------------------------------------------------------------- */

static void print_ref(FILE *f, const char *what, const pl_plugin_ref *r, pl_registry *reg, pl_kind k)
{
    const pl_plugin *p;
    pl_error e;
    fprintf(f, "  %-10s %s", what, r->plugin);
    for (size_t i = 0; i < r->n_params; i++)
        fprintf(f, "%s%s=%s", i ? ", " : " (", r->params[i].key, r->params[i].value);
    if (r->n_params)
        fputc(')', f);
    if (pl_registry_find(reg, k, r->plugin, &p, &e) == PL_OK)
        fprintf(f, "  [%s %s]", pl_plugin_path(p), pl_plugin_get_desc(p)->version);
    fputc('\n', f);
}

static void print_phase(FILE *f, const char *name, const pl_phase_cfg *p)
{
    fprintf(f, "  %-10s %d epoch(s), batch %d, %s lr %g", name, p->epochs, p->batch_size,
            p->optim.type == PL_OPTIM_ADAM ? "adam" : "sgd", p->optim.lr);
    if (p->optim.weight_decay)
        fprintf(f, ", weight decay %g", p->optim.weight_decay);
    if (p->optim.type == PL_OPTIM_SGD && p->optim.momentum)
        fprintf(f, ", momentum %g%s", p->optim.momentum, p->optim.nesterov ? " (nesterov)" : "");
    if (p->reg.type) { /* regularize */
        fprintf(f, ", regularize %s %g on ", pl_reg_type_name(p->reg.type), p->reg.coef);
        for (size_t i = 0; i < p->reg.n_layers; i++)
            fprintf(f, "%s%s", i ? "," : "", p->reg.layers[i]);
        if (!p->reg.n_layers)
            fprintf(f, p->reg.type == PL_REG_BN_L1 ? "every batchnorm2d" : "all but the output layer");
    }
    fputc('\n', f);
}


pl_status pl_validate_config(pl_registry *reg, const pl_config *cfg, FILE *out, pl_error *err)
{
    pl_identity *id = pl_identity_new(reg);
    if (!id)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    pl_status s = validate_config(reg, cfg, out, id, NULL, err);
    pl_identity_free(id);
    return s;
}

static pl_status validate_config(pl_registry *reg, const pl_config *cfg, FILE *out, pl_identity *id,
                                 volatile sig_atomic_t *intr, pl_error *err)
{
    size_t n = pl_config_run_count(cfg);
    for (size_t i = 0; i < n; i++) {
        if (intr && *intr)
            return pl_error_set(err, PL_EINTR, "interrupted while checking run %zu of %zu; nothing was run "
                                "or written (run the command again)", i + 1, n);
        pl_experiment *x;
        pl_status s = pl_config_expand(cfg, i, &x, err);
        if (s)
            return s;
        pl_runenv e;
        s = runenv_open(reg, x, 1, 0, NULL, &e, err);
        pl_model *m = NULL;
        if (!s)
            s = pl_model_new(e.spec, x->seed, &m, err);
        pl_pruner pr = {0};
        if (!s && x->prune.enabled)
            s = pl_pruner_init(&pr, m, &x->prune, e.crit, e.sched, err);
        /* after the checks above, so their errors come first; opens the data */
        if (!s)
            s = pl_identity_apply(id, x, err);
        /* the data after the model: it must fit it (the identity opened it once per
         * distinct dataset of the sweep) */
        if (!s) {
            pl_runenv d = {.spec = e.spec};
            if (pl_identity_borrow_data(id, x, &d.train, &d.test))
                s = check_fit(x, &d, err);
        }
        if (!s && out && (i == 0 || n <= 12)) {
            if (i == 0) {
                fprintf(out, "experiment %s (%s): %zu run(s)\n", x->name, x->file, n);
                size_t na = pl_config_sweep_axes(cfg);
                for (size_t a = 0; a < na; a++) {
                    size_t nv;
                    const char *k = pl_config_sweep_key(cfg, a, &nv);
                    fprintf(out, "  sweep %s: %zu value(s)\n", k, nv);
                }
                fputc('\n', out);
                pl_model_print(m, out);
                fprintf(out, "\nplugins:\n");
                print_ref(out, "backend", &x->backend, reg, PL_KIND_BACKEND);
                print_ref(out, "dataset", &x->dataset, reg, PL_KIND_DATASET);
                if (x->prune.enabled) {
                    print_ref(out, "criterion", &x->prune.criterion, reg, PL_KIND_CRITERION);
                    print_ref(out, "schedule", &x->prune.schedule, reg, PL_KIND_SCHEDULE);
                }
                fprintf(out, "\nphases:\n");
                print_phase(out, "train", &x->train);
            }
            if (n > 1)
                fprintf(out, "run %zu/%zu %s  %s\n", i + 1, n, x->run_id, x->sweep_desc);
            else
                fprintf(out, "  run id     %s\n", x->run_id);
            if (x->prune.enabled) {
                fprintf(out, "  prune      %s granularity, %d step(s):", pl_granularity_name(pr.gran),
                        pr.plan.n_steps);
                for (int k = 0; k < pr.plan.n_steps; k++)
                    fprintf(out, " %.4f", pr.plan.progress[k]);
                fprintf(out, " of the target%s\n", pr.global ? " (one global ranking)" : "");
                if (pr.gran == PL_GRAN_LAYER) { /* whole blocks */
                    fprintf(out, "             remove %lld of %d removable layer(s):", (long long)pr.layer_goal, pr.n);
                    for (int k = 0; k < pr.n; k++)
                        fprintf(out, " %s", m->layers[pr.t[k].layer].name);
                    fputc('\n', out);
                }
                for (int k = 0; k < pr.n && pr.gran != PL_GRAN_LAYER; k++)
                    fprintf(out, "             %-10s remove %lld of %lld %s\n",
                            m->layers[pr.t[k].layer].name, (long long)pr.t[k].remove,
                            (long long)pr.t[k].units,
                            pr.gran == PL_GRAN_WEIGHT ? "weights" : pr.gran == PL_GRAN_CHANNEL ? "channels" : "neurons");
                pl_pruner_print_groups(&pr, out);
                if (i == 0 || n == 1)
                    print_phase(out, "retrain", &x->retrain);
            }
            if (i == 0 || n == 1) {
                if (x->finetune.epochs > 0)
                    print_phase(out, "finetune", &x->finetune);
                fprintf(out, "  report     %s\n", x->report.dir);
            }
        }
        pl_pruner_free(&pr);
        pl_model_free(m);
        runenv_free(&e);
        pl_experiment_free(x);
        if (s)
            return s;
    }
    if (out && n > 12)
        fprintf(out, "... and %zu more run(s), all valid\n", n - 1);
    return PL_OK;
}
