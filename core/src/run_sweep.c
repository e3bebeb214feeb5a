/*
 * run_sweep.c — a whole experiment: claiming the report folder, the sweep
 * of runs (through the executor plugin), the report at the end, and
 * rebuilding a report from its records.
 */
#include "run_internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
    pl_status s = pl__run_mkdir_p(dir, err);
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
        pl__run_say(o, "run %s: its record was made with other plugin files (rebuilt or shadowed); running it again\n",
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
            if ((s = claim_report_dir(pl__run_report_dir(x, o), err))) {
                pl_experiment_free(x);
                return s;
            }
            snprintf(w->dir, sizeof w->dir, "%s", pl__run_report_dir(x, o));
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
    pl__run_cache_dir(x, &o, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/baseline-%s.ckpt", dir, w->bkeys[b]);
    if (access(path, R_OK) == 0) {
        pl_experiment_free(x);
        return PL_OK;
    }
    pl_runenv e;
    s = pl__runenv_open(w->reg, x, o.threads, 1, w->id, &e, &w->err);
    if (!s) {
        pl_model *m = NULL;
        double secs;
        pl_run_result hist = {0}; /* the runs read the baseline's epochs from its checkpoint */
        s = pl__run_get_baseline(x, &o, &e, &m, &secs, &hist, &w->err);
        pl_run_result_free(&hist);
        if (s == PL_EDIVERGED || s == PL_EPLUGIN || s == PL_ENOMEM || s == PL_EUNSUPPORTED || s == PL_EINVAL)
            s = PL_OK;
        pl_model_free(m);
        pl__runenv_free(&e);
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
    s = pl__run_mkdir_p(cdir, err);
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
            pl__run_say(o, "run %s: waiting for %s, which is running it\n", x->run_id, who);
        if (pl_now() - t0 > limit) {
            s = pl_error_set(err, PL_EIO,
                             "%s: gave up after %.0f s waiting for %s to finish run %s (if that process is "
                             "gone, remove %s; PRUNELAB_CLAIM_WAIT sets the wait)",
                             x->file, limit, who, x->run_id, cpath);
            break;
        }
        s = pl__run_claim_nap(o, err);
    }
    if (s || *outcome != PL_RUN_DONE) {
        if (*outcome == PL_RUN_SKIPPED)
            w->skipped++;
        pl_experiment_free(x);
        return s;
    }
    if (n > 1)
        pl__run_say(o, "\n== run %zu/%zu %s %s\n", i + 1, n, x->run_id, x->sweep_desc);
    pl_run_result r;
    pl_error rerr;
    pl_error_clear(&rerr);
    int started = 0;
    time_t t_start = time(NULL);
    s = pl__run_one(w->reg, x, o, w->id, &r, &started, &rerr);
    if (started && (s == PL_EDIVERGED || s == PL_EPLUGIN || s == PL_ENOMEM || s == PL_EMISSED ||
                    s == PL_EUNSUPPORTED || s == PL_EINVAL)) {
        /* this run failed on its own (not its configuration or data): its row
         * says why and the sweep goes on */
        pl__run_copy_str(r.status, sizeof r.status, s == PL_EDIVERGED ? "diverged" : "failed");
        pl__run_copy_str(r.message, sizeof r.message, rerr.msg);
        pl__run_say(o, "run %s: %s: %s\n", x->run_id, r.status, rerr.msg);
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
            pl__run_print_row_header(out);
        w->printed_header = 1;
        pl__run_print_row(out, &r);
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
        pl__run_say(o, "resumed: %zu finished run(s) kept from %s/runs\n", w->skipped, w->dir);
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
    pl__run_say(o, "\nreport: %s/results.csv, results.md, results.tex, layers.csv, history.csv (%zu run(s) executed by this "
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


pl_status pl_run_config(pl_registry *reg, const pl_config *cfg, const pl_run_opts *o, pl_error *err)
{
    pl_identity *id = pl_identity_new(reg);
    if (!id)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    /* everything a run needs is checked before the first one trains, so a
     * bad run late in a sweep costs nothing and writes nothing */
    pl_status s = pl__run_validate_config(reg, cfg, NULL, id, o->interrupted, err);
    pl_instance *ex = NULL;
    if (!s)
        s = executor_new(reg, o, &ex, err);
    if (s) {
        pl_identity_free(id);
        return s;
    }
    size_t n_all = pl_config_run_count(cfg);
    if (o->shard_n > 1 && (size_t)o->shard_i > n_all)
        pl__run_say(o, "shard %d/%d has no runs: the sweep expands to %zu run(s); nothing to do\n", o->shard_i, o->shard_n,
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
        pl__run_print_row_header(out);
        for (size_t i = 0; i < nr; i++)
            pl__run_print_row(out, &runs[i]);
        fprintf(out, "\nreport: %s/results.csv, results.md, results.tex, layers.csv, history.csv (%zu runs)\n", dir, nr);
    }
    for (size_t i = 0; i < nr; i++)
        pl_run_result_free(&runs[i]);
    free(runs);
    return s;
}

