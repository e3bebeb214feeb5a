/*
 * bench/train_steps.c — training throughput of a model in prunelab measured
 * the way bench/pytorch_model_compare.sh measures PyTorch: STEPS steps of
 * batch 64 (Adam, lr 1e-3) over MNIST images already in memory, after 10
 * untimed ones, RUNS times with the thread counts alternating (1,2 then
 * 2,1 ...), the FMA probe in the same repetitions. Each step is
 * pl_train_step, the call a training phase makes (forward, loss, backward,
 * Adam); only the shuffling and the batch read are left out, as on the
 * PyTorch side. Not part of the build: pytorch_model_compare.sh compiles it
 * against build/libplcore.a.
 *
 *     train_steps PLUGIN_DIR MODEL.yaml MNIST_DIR STEPS RUNS [BACKEND]
 *
 * Prints (one figure a line, for the script to read):
 *   ips T MEDIAN MIN MAX          images/s at T threads
 *   probe T MEDIAN MIN MAX        FMA probe GFLOP/s at T threads, same runs
 *   cpu T MEDIAN                  process CPU seconds per step
 *   hash T HEX                    FNV-1a of every weight, bias and running
 *                                 statistic after the first run (equal for 1 and 2)
 *   prof T PART FWD_MS BWD_MS     ms per step by layer type over 20 steps
 *   maxrss KB                     peak resident set of this process
 */
#include "bench.h"
#include "config.h"
#include "model.h"
#include "registry.h"
#include "backend.h"
#include "train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { B = 64, WARM = 10, PROF = 20, MAXR = 64 };

static double now(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void stats(double *v, int n, double out[3])
{
    qsort(v, (size_t)n, sizeof *v, cmpd);
    out[0] = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    out[1] = v[0];
    out[2] = v[n - 1];
}

/* the IDX file's payload after `skip` header bytes (whole file read) */
static unsigned char *read_idx(const char *dir, const char *name, size_t skip, size_t want)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    unsigned char *p = malloc(want);
    if (!f || !p || fseek(f, (long)skip, SEEK_SET) || fread(p, 1, want, f) != want) {
        fprintf(stderr, "train_steps: %s: cannot read %zu bytes after %zu\n", path, want, skip);
        if (f)
            fclose(f);
        free(p);
        return NULL;
    }
    fclose(f);
    return p;
}

static uint64_t weights_hash(const pl_model *m)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < m->n_layers; i++) {
        const pl_layer *l = &m->layers[i];
        const float *parts[4] = {l->w, l->b, l->run_mean, l->run_var};
        int64_t len[4] = {l->nw, l->nb, l->type == PL_LAYER_BATCHNORM2D ? l->in_c : 0,
                          l->type == PL_LAYER_BATCHNORM2D ? l->in_c : 0};
        for (int k = 0; k < 4; k++) {
            const unsigned char *b = (const unsigned char *)parts[k];
            for (int64_t j = 0; b && j < len[k] * (int64_t)sizeof(float); j++)
                h = (h ^ b[j]) * 1099511628211ull;
        }
    }
    return h;
}

typedef struct side {
    pl_instance *be;
    int threads;
} side;

static const pl_optim_cfg adam = {.type = PL_OPTIM_ADAM, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                                  .lr_schedule = PL_LR_CONSTANT};

/* nsteps steps from a fresh model (seed 1) on batches k = 0.. of x; returns
 * images/s over the steps after WARM, or -1. prof: per-layer clock. */
static double run(const pl_model_spec *spec, side *sd, const float *x, const int32_t *y, int64_t nimg, int64_t img,
                  int nsteps, double *cpu, uint64_t *hash, double *prof, double *xent, double *optim)
{
    pl_error err;
    pl_model *m = NULL;
    float *dl = NULL;
    if (pl_model_new(spec, 1, &m, &err)) {
        fprintf(stderr, "train_steps: %s\n", err.msg);
        return -1;
    }
    pl_backend_bind(m, sd->be);
    if (pl_model_reserve(m, B, &err) || pl_model_optim_reset(m, &err) ||
        !(dl = malloc(sizeof(float) * B * (size_t)m->classes))) {
        fprintf(stderr, "train_steps: out of memory\n");
        pl_model_free(m);
        return -1;
    }
    double t0 = 0, c0 = 0, ips = -1;
    *xent = *optim = 0;
    int64_t batches = nimg / B;
    for (int k = 0; k < WARM + nsteps; k++) {
        if (k == WARM) {
            m->prof = prof;
            t0 = now(CLOCK_MONOTONIC);
            c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        }
        int64_t b = k % batches;
        pl_step_stats ss;
        if (pl_train_step(m, x + b * B * img, y + b * B, B, dl, NULL, &adam, NULL, NULL, adam.lr, k + 1, "bench", 0,
                          &ss, &err)) {
            fprintf(stderr, "train_steps: %s\n", err.msg);
            goto done;
        }
        if (k >= WARM)
            *xent += ss.loss_seconds, *optim += ss.optim_seconds;
    }
    ips = (double)nsteps * B / (now(CLOCK_MONOTONIC) - t0);
    *cpu = (now(CLOCK_PROCESS_CPUTIME_ID) - c0) / nsteps;
    *hash = weights_hash(m);
done:
    m->prof = NULL;
    free(dl);
    pl_model_free(m);
    return ips;
}

int main(int argc, char **argv)
{
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: train_steps PLUGIN_DIR MODEL.yaml MNIST_DIR STEPS RUNS [BACKEND]\n");
        return 2;
    }
    int steps = atoi(argv[4]), runs = atoi(argv[5]);
    const char *bname = argc > 6 ? argv[6] : "simd";
    if (steps < 1 || runs < 1 || runs > MAXR) {
        fprintf(stderr, "train_steps: STEPS >= 1 and 1 <= RUNS <= %d\n", MAXR);
        return 2;
    }
    pl_error err;
    pl_model_spec *spec = NULL;
    pl_registry *r = pl_registry_new(argv[0]);
    const pl_plugin *p;
    static const char *const none[] = {NULL};
    side sd[2] = {{NULL, 1}, {NULL, 2}};
    if (!r || pl_registry_add_path(r, argv[1], &err) || pl_model_spec_load(argv[2], &spec, &err) ||
        pl_registry_find(r, PL_KIND_BACKEND, bname, &p, &err) ||
        pl_instance_new_kv(p, none, 1, 1, &sd[0].be, &err) || pl_instance_new_kv(p, none, 1, 2, &sd[1].be, &err)) {
        fprintf(stderr, "train_steps: %s\n", r ? err.msg : "out of memory");
        return 1;
    }
    /* the first 10,240 training images, normalised as bench/resnet20_torch.py does */
    int64_t nimg = 160 * B, img = 28 * 28;
    unsigned char *raw = read_idx(argv[3], "train-images-idx3-ubyte", 16, (size_t)(nimg * img));
    unsigned char *lab = read_idx(argv[3], "train-labels-idx1-ubyte", 8, (size_t)nimg);
    float *x = malloc(sizeof(float) * (size_t)(nimg * img));
    int32_t *y = malloc(sizeof(int32_t) * (size_t)nimg);
    if (!raw || !lab || !x || !y)
        return 1;
    for (int64_t i = 0; i < nimg * img; i++)
        x[i] = ((float)raw[i] / 255.0f - 0.1307f) / 0.3081f;
    for (int64_t i = 0; i < nimg; i++)
        y[i] = lab[i];
    free(raw), free(lab);

    double ips[2][MAXR], probe[2][MAXR], cpu[2][MAXR], xent, optim;
    uint64_t hash[2] = {0, 0};
    const char *isa;
    for (int k = 0; k < runs; k++)
        for (int o = 0; o < 2; o++) {
            int t = k % 2 ? 1 - o : o;
            uint64_t h;
            probe[t][k] = pl_bench_fma_probe(sd[t].threads, 0.3, &isa);
            ips[t][k] = run(spec, &sd[t], x, y, nimg, img, steps, &cpu[t][k], &h, NULL, &xent, &optim);
            if (ips[t][k] < 0)
                return 1;
            if (k == 0)
                hash[t] = h;
        }
    for (int t = 0; t < 2; t++) {
        double a[3], b[3], c[3];
        stats(ips[t], runs, a);
        stats(probe[t], runs, b);
        stats(cpu[t], runs, c);
        printf("ips %d %.1f %.1f %.1f\n", sd[t].threads, a[0], a[1], a[2]);
        printf("probe %d %.1f %.1f %.1f\n", sd[t].threads, b[0], b[1], b[2]);
        printf("cpu %d %.4f\n", sd[t].threads, c[0]);
        printf("hash %d %016llx\n", sd[t].threads, (unsigned long long)hash[t]);
    }
    /* where a step goes: PROF steps through the per-layer clock */
    pl_model *m = NULL;
    if (pl_model_new(spec, 1, &m, &err))
        return 1;
    int L = m->n_layers;
    pl_layer_type *ty = malloc(sizeof *ty * (size_t)L);
    double *prof = calloc((size_t)L * 2, sizeof *prof);
    if (!ty || !prof)
        return 1;
    for (int i = 0; i < L; i++)
        ty[i] = m->layers[i].type;
    pl_model_free(m);
    for (int t = 0; t < 2; t++) {
        double c, xs = 0, os = 0;
        uint64_t h;
        memset(prof, 0, sizeof *prof * (size_t)L * 2);
        double t0 = now(CLOCK_MONOTONIC);
        if (run(spec, &sd[t], x, y, nimg, img, PROF, &c, &h, prof, &xs, &os) < 0)
            return 1;
        double step = (now(CLOCK_MONOTONIC) - t0) * 1e3 / (WARM + PROF), per = 1e3 / PROF;
        for (int type = 0; type < 64; type++) { /* every pl_layer_type value present */
            double f = 0, bw = 0;
            int seen = 0;
            for (int i = 0; i < L; i++)
                if ((int)ty[i] == type)
                    f += prof[i], bw += prof[L + i], seen = 1;
            if (seen)
                printf("prof %d %s %.2f %.2f\n", sd[t].threads, pl_layer_type_name((pl_layer_type)type), f * per,
                       bw * per);
        }
        printf("prof %d loss %.2f 0\nprof %d adam 0 %.2f\nprof %d step_approx %.2f 0\n", sd[t].threads, xs * per,
               sd[t].threads, os * per, sd[t].threads, step);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("maxrss %ld\n", ru.ru_maxrss);
    free(ty), free(prof), free(x), free(y);
    pl_instance_free(sd[0].be);
    pl_instance_free(sd[1].be);
    pl_model_spec_free(spec);
    pl_registry_free(r);
    return 0;
}
