/* bench.c — timed training epochs and inference per backend. */
#include "bench.h"
#include "config.h"
#include "model.h"
#include "train.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct bench_result {
    int ok;
    double epoch_med, epoch_min, epoch_max;
    double infer_med, infer_min, infer_max;
    double acc;
    long peak_rss_kb;
    char msg[1100];
} bench_result;

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Runs in the child: everything for one (backend, threads). */
static void bench_child(pl_registry *reg, const pl_bench_opts *o, const char *backend, int threads,
                        bench_result *r)
{
    pl_error err;
    pl_error_clear(&err);
    pl_model_spec *spec = NULL;
    pl_instance *be = NULL, *ds = NULL;
    pl_data train = {0}, test = {0};
    pl_model *m = NULL;
    float *tx = NULL;
    double *ep = calloc((size_t)o->runs, sizeof *ep), *inf = calloc((size_t)o->runs, sizeof *inf);
    pl_status s = (!ep || !inf) ? pl_error_set(&err, PL_ENOMEM, "out of memory") : PL_OK;
    pl_plugin_ref bref = {.plugin = (char *)backend, .file = "bench"};
    pl_kv dkv = {.key = "path", .value = (char *)(o->data ? o->data : "data/mnist"), .file = "bench"};
    pl_plugin_ref dref = {.plugin = "idx", .file = "bench", .params = &dkv, .n_params = 1};
    if (!s)
        s = pl_model_spec_load(o->model, &spec, &err);
    if (!s)
        s = pl_instance_new(reg, PL_KIND_BACKEND, &bref, 1, threads, &be, &err);
    if (!s)
        s = pl_instance_new(reg, PL_KIND_DATASET, &dref, 1, threads, &ds, &err);
    if (!s)
        s = pl_data_open(ds, PL_SPLIT_TRAIN, &train, &err);
    if (!s)
        s = pl_data_open(ds, PL_SPLIT_TEST, &test, &err);
    pl_phase_cfg ph = {.epochs = 1, .batch_size = 64,
                       .optim = {.type = PL_OPTIM_ADAM, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999,
                                 .eps = 1e-8, .lr_schedule = PL_LR_CONSTANT}};
    for (int rep = -1; rep < o->runs && !s; rep++) {
        pl_model_free(m);
        m = NULL;
        s = pl_model_new(spec, 1, &m, &err);
        if (s)
            break;
        pl_model_bind(m, pl_instance_ops(be), pl_instance_state(be));
        pl_phase_stats st;
        s = pl_train_phase(m, &train, &ph, 1, "bench", NULL, &st, &err);
        if (rep >= 0)
            ep[rep] = st.seconds;
    }
    if (!s)
        s = pl_evaluate(m, &test, 1000, &r->acc, NULL, &err);
    if (!s) {
        int64_t img = (int64_t)m->in_c * m->in_h * m->in_w, n = test.info.count;
        tx = malloc((size_t)(img * n) * sizeof(float));
        int32_t y[1000];
        s = tx ? PL_OK : pl_error_set(&err, PL_ENOMEM, "out of memory");
        for (int64_t f = 0; f < n && !s; f += 1000)
            s = pl_data_read(&test, NULL, f, (int)(n - f < 1000 ? n - f : 1000), tx + f * img, y, &err);
        for (int rep = 0; rep < o->runs && !s; rep++) {
            double ms;
            s = pl_measure_latency(m, tx, n, 1, &ms, &err);
            inf[rep] = ms * (double)n / 1000.0 / 1000.0; /* seconds for the whole set */
        }
    }
    if (!s) {
        r->ok = 1;
        r->epoch_med = median(ep, o->runs);
        r->epoch_min = ep[0];
        r->epoch_max = ep[o->runs - 1];
        r->infer_med = median(inf, o->runs);
        r->infer_min = inf[0];
        r->infer_max = inf[o->runs - 1];
    } else {
        snprintf(r->msg, sizeof r->msg, "%s", err.msg);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->peak_rss_kb = ru.ru_maxrss;
    free(tx);
    free(ep);
    free(inf);
    pl_model_free(m);
    pl_data_close(&train);
    pl_data_close(&test);
    pl_instance_free(ds);
    pl_instance_free(be);
    pl_model_spec_free(spec);
}

pl_status pl_bench_run(pl_registry *reg, const pl_bench_opts *o, FILE *out, pl_error *err)
{
    static const char *const defaults[] = {"ref", "simd"};
    const char *const *bes = o->n_backends ? o->backends : defaults;
    int nb = o->n_backends ? o->n_backends : 2;
    pl_model_spec *spec;
    pl_status s = pl_model_spec_load(o->model, &spec, err);
    if (s)
        return s;
    pl_model *m;
    s = pl_model_new(spec, 1, &m, err);
    pl_model_spec_free(spec);
    if (s)
        return s;
    pl_counts cnt;
    pl_model_count(m, &cnt);
    pl_model_free(m);
    double train_flop_per_img = 3.0 * 2.0 * (double)cnt.macs; /* fwd + 2 bwd GEMMs */
    fprintf(out, "bench: %s, MNIST 60000 train / 10000 test, batch 64, Adam; median of %d (min..max)\n\n",
            o->model, o->runs);
    fprintf(out, "| backend | threads | epoch s | min..max | images/s | train GFLOP/s | infer 10k ms | "
                 "min..max | peak RSS MB | test acc |\n|---|---|---|---|---|---|---|---|---|---|\n");
    fflush(out);
    double ref_epoch = 0;
    for (int b = 0; b < nb; b++) {
        int tlist[2] = {1, o->threads}, nt = o->threads > 1 && strcmp(bes[b], "ref") ? 2 : 1;
        for (int ti = 0; ti < nt; ti++) {
            int fds[2];
            if (pipe(fds))
                return pl_error_set(err, PL_EIO, "bench: pipe: %s", strerror(errno));
            fflush(out);
            pid_t pid = fork();
            if (pid < 0)
                return pl_error_set(err, PL_EIO, "bench: fork: %s", strerror(errno));
            if (pid == 0) {
                close(fds[0]);
                bench_result r;
                memset(&r, 0, sizeof r);
                bench_child(reg, o, bes[b], tlist[ti], &r);
                ssize_t w = write(fds[1], &r, sizeof r);
                close(fds[1]);
                _exit(w == (ssize_t)sizeof r ? 0 : 1);
            }
            close(fds[1]);
            bench_result r;
            memset(&r, 0, sizeof r);
            ssize_t got = read(fds[0], &r, sizeof r);
            close(fds[0]);
            int status;
            waitpid(pid, &status, 0);
            if (got != (ssize_t)sizeof r || !r.ok)
                return pl_error_set(err, PL_EPLUGIN, "bench %s: %s", bes[b],
                                    got == (ssize_t)sizeof r ? r.msg : "child process failed");
            if (!strcmp(bes[b], "ref"))
                ref_epoch = r.epoch_med;
            fprintf(out, "| %s | %d | %.3f | %.3f..%.3f | %.0f | %.2f | %.1f | %.1f..%.1f | %.1f | %.2f |\n",
                    bes[b], tlist[ti], r.epoch_med, r.epoch_min, r.epoch_max, 60000.0 / r.epoch_med,
                    train_flop_per_img * 60000.0 / r.epoch_med / 1e9, r.infer_med * 1e3,
                    r.infer_min * 1e3, r.infer_max * 1e3, (double)r.peak_rss_kb / 1024.0, r.acc);
            fflush(out);
            if (ref_epoch > 0 && strcmp(bes[b], "ref"))
                fprintf(out, "|   speed-up vs ref | | %.1fx | | | | | | | |\n", ref_epoch / r.epoch_med);
        }
    }
    return PL_OK;
}
