/* bench.c — `prunelab bench` (protocol in bench.h). */
#include "bench.h"
#include "backend.h"
#include "config.h"
#include "model.h"
#include "prune.h"
#include "result.h"
#include "rng.h"
#include "strbuf.h"
#include "train.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#define BT_MAX 2        /* thread counts per backend: 1 and T */
#define VGG_STEPS 10    /* timed vgg_mini training steps per repetition */
#define VGG_CONVS 8     /* conv layers reported */
#define PROBE_SECONDS 0.03
#define SPARSITY 0.9
#define PROF_STEPS 20   /* training steps of the per-layer-type profile */
#define PROF_TYPES 16   /* > the largest pl_layer_type */

/* The optimizer of every training figure: Adam, lr 1e-3 (the header line says so). */
static const pl_optim_cfg bench_adam = {.type = PL_OPTIM_ADAM, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999,
                                        .eps = 1e-8, .lr_schedule = PL_LR_CONSTANT};

static double now_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- FMA probe -------------------------------------------------------------------
 * 12 independent chains a = a*m + c per thread: enough to cover the FMA
 * latency on every core we know (4 cycles x 2 ports needs 8). The values
 * converge to c/(1-m) and never become denormal. */

#define PROBE_CHAINS 12
#define PROBE_BODY(V, FMA, SET1, KEEP)                                                     \
    V m = SET1(0.999f), c = SET1(0.001f);                                                   \
    V a0 = SET1(0.0f), a1 = SET1(0.1f), a2 = SET1(0.2f), a3 = SET1(0.3f), a4 = SET1(0.4f),  \
      a5 = SET1(0.5f), a6 = SET1(0.6f), a7 = SET1(0.7f), a8 = SET1(0.8f), a9 = SET1(0.9f),  \
      a10 = SET1(1.0f), a11 = SET1(1.1f);                                                   \
    for (long k = 0; k < iters; k++) {                                                      \
        a0 = FMA(a0, m, c), a1 = FMA(a1, m, c), a2 = FMA(a2, m, c), a3 = FMA(a3, m, c);     \
        a4 = FMA(a4, m, c), a5 = FMA(a5, m, c), a6 = FMA(a6, m, c), a7 = FMA(a7, m, c);     \
        a8 = FMA(a8, m, c), a9 = FMA(a9, m, c), a10 = FMA(a10, m, c), a11 = FMA(a11, m, c); \
        KEEP;                                                                               \
    }

#if defined(__x86_64__) && defined(__GNUC__)
#define PROBE_X86 1
#define KEEP_REGS                                                                          \
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5),       \
                     "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11))
__attribute__((target("avx512f"))) static float probe_avx512(long iters)
{
    PROBE_BODY(__m512, _mm512_fmadd_ps, _mm512_set1_ps, KEEP_REGS)
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(s);
}
__attribute__((target("avx2,fma"))) static float probe_avx2(long iters)
{
    PROBE_BODY(__m256, _mm256_fmadd_ps, _mm256_set1_ps, KEEP_REGS)
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float f[8];
    _mm256_storeu_ps(f, s);
    return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}
#endif

/* any architecture: 4-lane vectors, multiply then add (2 flops a lane too) */
typedef float v4f __attribute__((vector_size(16)));
static inline v4f v4_set1(float f) { return (v4f){f, f, f, f}; }
static inline v4f v4_fma(v4f a, v4f b, v4f c) { return a * b + c; }
static float probe_vector(long iters)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__aarch64__))
#define KEEP_V KEEP_REGS_V
#define KEEP_REGS_V                                                                        \
    __asm__ volatile("" : "+w"(a0), "+w"(a1), "+w"(a2), "+w"(a3), "+w"(a4), "+w"(a5),       \
                     "+w"(a6), "+w"(a7), "+w"(a8), "+w"(a9), "+w"(a10), "+w"(a11))
#endif
#if defined(__x86_64__)
#undef KEEP_V
#define KEEP_V                                                                             \
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5),       \
                     "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11))
#endif
#ifndef KEEP_V
#define KEEP_V ((void)0)
#endif
    PROBE_BODY(v4f, v4_fma, v4_set1, KEEP_V)
    v4f s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    return s[0] + s[1] + s[2] + s[3];
}

typedef float (*probe_fn)(long);

static probe_fn probe_pick(const char **isa, int *lanes)
{
#if defined(PROBE_X86)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        *isa = "avx512", *lanes = 16;
        return probe_avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *isa = "avx2", *lanes = 8;
        return probe_avx2;
    }
#endif
    *isa = "vector", *lanes = 4;
    return probe_vector;
}

typedef struct probe_arg {
    probe_fn fn;
    long iters;
    pthread_barrier_t *go;
    volatile float sink;
} probe_arg;

static void *probe_thread(void *p)
{
    probe_arg *a = p;
    pthread_barrier_wait(a->go);
    a->sink = a->fn(a->iters);
    return NULL;
}

double pl_bench_fma_probe(int threads, double seconds, const char **isa)
{
    const char *name;
    int lanes;
    probe_fn fn = probe_pick(&name, &lanes);
    if (isa)
        *isa = name;
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    /* size the run on one thread: about `seconds` of work per thread */
    long iters = 1 << 16;
    double t;
    for (;;) {
        double t0 = now_s(CLOCK_MONOTONIC);
        volatile float sink = fn(iters);
        (void)sink;
        t = now_s(CLOCK_MONOTONIC) - t0;
        if (t > seconds / 4 || iters > (1L << 40))
            break;
        iters *= 4;
    }
    iters = (long)((double)iters * seconds / (t > 0 ? t : 1e-9));
    if (iters < 1)
        iters = 1;
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
    probe_arg args[64];
    pthread_t tid[64];
    int started = 0;
    for (int i = 0; i < threads; i++) {
        args[i] = (probe_arg){.fn = fn, .iters = iters, .go = &go};
        if (pthread_create(&tid[i], NULL, probe_thread, &args[i]) != 0)
            break;
        started++;
    }
    /* threads that failed to start are counted as absent from the barrier */
    for (int i = started; i < threads; i++)
        pthread_barrier_wait(&go);
    double t0 = now_s(CLOCK_MONOTONIC);
    pthread_barrier_wait(&go);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    double el = now_s(CLOCK_MONOTONIC) - t0;
    pthread_barrier_destroy(&go);
    return (double)started * (double)iters * PROBE_CHAINS * lanes * 2.0 / (el > 0 ? el : 1e-9) / 1e9;
}

/* ---- statistics and counting -------------------------------------------------------- */

typedef struct st3 {
    double med, min, max;
} st3;

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static st3 stats(double *v, int n)
{
    st3 s = {0, 0, 0};
    if (n < 1)
        return s;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    s.min = v[0];
    s.max = v[n - 1];
    s.med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return s;
}

/* FLOPs of one training image: forward, weight gradient, and input
 * gradient of every conv/linear layer but the first one (the model's input
 * needs none), 2 per MAC. */
static double train_flops_per_image(const pl_model *m)
{
    double f = 0;
    for (int i = 0; i < m->n_layers; i++) {
        pl_counts c;
        pl_layer_count(&m->layers[i], &c);
        f += 2.0 * (double)c.macs * (i == 0 ? 2 : 3);
    }
    return f;
}

static double infer_flops_per_image(const pl_model *m)
{
    pl_counts c;
    pl_model_count(m, &c);
    return 2.0 * (double)c.macs;
}

static uint64_t weights_digest(const pl_model *m)
{
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < m->n_layers; i++) {
        const pl_layer *l = &m->layers[i];
        if (l->w)
            h = pl_fnv1a(h, l->w, (size_t)l->nw * sizeof(float));
        if (l->b)
            h = pl_fnv1a(h, l->b, (size_t)l->nb * sizeof(float));
    }
    return h;
}

/* ---- one backend, in a child process --------------------------------------------------- */

typedef struct tc_res {
    int threads;
    st3 probe;            /* GFLOP/s */
    st3 epoch, cpu, infer;
    double acc;
    uint64_t digest;
    int same;             /* every repetition gave `digest` */
    int vgg;              /* the vgg_mini section ran */
    st3 vgg_step;
    int nconv;
    double conv_gfs[VGG_CONVS][3];
    char conv_desc[VGG_CONVS][48];
    int sparse;           /* the backend has linear_forward_csr */
    st3 dense, sparse_t;  /* seconds for the test set */
    double max_diff, max_ref;
    int prof;             /* the step profile ran */
    double prof_fwd[PROF_TYPES], prof_bwd[PROF_TYPES]; /* ms per step, by layer type */
    double prof_xent, prof_adam, prof_step;           /* ms per step */
} tc_res;

typedef struct bench_result {
    int ok;
    char msg[1100];
    int nt;
    tc_res tc[BT_MAX];
    double train_flop, infer_flop, vgg_flop; /* per image */
    double achieved_sparsity;
    long peak_rss_kb;
} bench_result;

typedef struct child {
    pl_registry *reg;
    const pl_bench_opts *o;
    const char *backend;
    int nt;
    int threads[BT_MAX];
    pl_instance *be[BT_MAX];
    pl_data train, test;
    float *tx;            /* test images */
    int32_t *ty;
    int64_t n_test;
    pl_error err;
} child;

static pl_status infer_all(pl_model *m, const float *tx, int64_t n, double *secs, pl_error *err)
{
    pl_status s = pl_model_reserve(m, 1000, err);
    if (s)
        return s;
    int64_t img = (int64_t)m->in_c * m->in_h * m->in_w;
    double t0 = now_s(CLOCK_MONOTONIC);
    for (int64_t f = 0; f < n; f += 1000)
        if (!pl_model_infer(m, tx + f * img, (int)(n - f < 1000 ? n - f : 1000), err))
            return err->code ? err->code : PL_EPLUGIN;
    *secs = now_s(CLOCK_MONOTONIC) - t0;
    return PL_OK;
}

/* order of the thread counts in repetition `rep`: 1,T then T,1 ... */
static int tc_at(const child *c, int rep, int k)
{
    return rep % 2 ? c->nt - 1 - k : k;
}

static pl_status section_epoch(child *c, const pl_model_spec *spec, bench_result *r)
{
    const pl_bench_opts *o = c->o;
    pl_error *err = &c->err;
    pl_phase_cfg ph = {.epochs = 1, .batch_size = 64, .optim = bench_adam};
    int R = o->runs;
    double *v = calloc((size_t)R * BT_MAX * 4, sizeof *v);
    pl_model *m[BT_MAX] = {0};
    pl_status s = v ? PL_OK : pl_error_set(err, PL_ENOMEM, "out of memory");
    double *pr = v, *ep = v + R * BT_MAX, *cpu = ep + R * BT_MAX, *inf = cpu + R * BT_MAX;
    int have = 0; /* the first trained model's digest is the reference */
    for (int rep = -1; rep < R && !s; rep++)
        for (int k = 0; k < c->nt && !s; k++) {
            int t = tc_at(c, rep < 0 ? 0 : rep, k);
            tc_res *tr = &r->tc[t];
            double p = pl_bench_fma_probe(c->threads[t], PROBE_SECONDS, NULL);
            pl_model_free(m[t]);
            m[t] = NULL;
            if ((s = pl_model_new(spec, 1, &m[t], err)))
                break;
            pl_backend_bind(m[t], c->be[t]);
            pl_phase_stats st;
            double c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
            if ((s = pl_train_phase(m[t], &c->train, &ph, 1, "bench", NULL, &st, err)))
                break;
            double c1 = now_s(CLOCK_PROCESS_CPUTIME_ID), secs;
            if ((s = infer_all(m[t], c->tx, c->n_test, &secs, err)))
                break;
            uint64_t d = weights_digest(m[t]);
            if (!have)
                r->tc[0].digest = d, have = 1;
            tr->same &= d == r->tc[0].digest;
            if (rep < 0) /* warm-up */
                continue;
            pr[t * R + rep] = p;
            ep[t * R + rep] = st.seconds;
            cpu[t * R + rep] = c1 - c0;
            inf[t * R + rep] = secs;
        }
    for (int t = 0; t < c->nt && !s; t++) {
        tc_res *tr = &r->tc[t];
        tr->probe = stats(pr + t * R, R);
        tr->epoch = stats(ep + t * R, R);
        tr->cpu = stats(cpu + t * R, R);
        tr->infer = stats(inf + t * R, R);
        tr->digest = r->tc[0].digest;
        s = pl_evaluate(m[t], &c->test, 1000, &tr->acc, NULL, err);
    }
    if (!s && m[0])
        r->train_flop = train_flops_per_image(m[0]), r->infer_flop = infer_flops_per_image(m[0]);
    for (int t = 0; t < BT_MAX; t++)
        pl_model_free(m[t]);
    free(v);
    return s;
}

/* Where a training step goes: PROF_STEPS steps of batch 64 (after one
 * untimed) through the model's per-layer clock, by layer type, with the
 * loss and Adam timed around their calls. A fused pass counts to its first
 * layer (conv + ReLU to the conv, batchnorm + ReLU to the batchnorm). */
static pl_status section_profile(child *c, const pl_model_spec *spec, bench_result *r)
{
    pl_error *err = &c->err;
    enum { B = 64 };
    int64_t img = (int64_t)c->train.info.channels * c->train.info.height * c->train.info.width;
    if (c->train.info.count < (int64_t)B * (PROF_STEPS + 1))
        return PL_OK;
    float *x = malloc(sizeof(float) * (size_t)(img * B * (PROF_STEPS + 1)));
    int32_t *y = malloc(sizeof(int32_t) * (size_t)B * (PROF_STEPS + 1));
    float *dl = NULL;
    double *prof = NULL;
    pl_model *m = NULL;
    pl_status s = x && y ? PL_OK : pl_error_set(err, PL_ENOMEM, "out of memory");
    for (int k = 0; k <= PROF_STEPS && !s; k++)
        s = pl_data_read(&c->train, NULL, (int64_t)k * B, B, x + (int64_t)k * B * img, y + k * B, err);
    for (int t = 0; t < c->nt && !s; t++) {
        tc_res *tr = &r->tc[t];
        pl_model_free(m);
        m = NULL;
        free(dl), free(prof);
        dl = NULL, prof = NULL;
        if ((s = pl_model_new(spec, 1, &m, err)))
            break;
        pl_backend_bind(m, c->be[t]);
        if ((s = pl_model_reserve(m, B, err)) || (s = pl_model_optim_reset(m, err)))
            break;
        dl = malloc(sizeof(float) * (size_t)B * (size_t)m->classes);
        prof = calloc((size_t)m->n_layers * 2, sizeof *prof);
        if (!dl || !prof) {
            s = pl_error_set(err, PL_ENOMEM, "out of memory");
            break;
        }
        double xent = 0, adam = 0, t0 = 0;
        for (int k = 0; k <= PROF_STEPS && !s; k++) {
            if (k == 1) { /* step 0 warms up */
                memset(prof, 0, sizeof(double) * (size_t)m->n_layers * 2);
                m->prof = prof;
                t0 = now_s(CLOCK_MONOTONIC);
            }
            pl_step_stats ss; /* the loss and Adam are timed while m->prof is set */
            s = pl_train_step(m, x + (int64_t)k * B * img, y + k * B, B, dl, NULL, &bench_adam, NULL, NULL, bench_adam.lr,
                              k + 1, "bench", 0, &ss, err);
            xent += ss.loss_seconds, adam += ss.optim_seconds;
        }
        if (s)
            break;
        double per = 1e3 / PROF_STEPS;
        tr->prof_step = (now_s(CLOCK_MONOTONIC) - t0) * per;
        tr->prof_xent = xent * per;
        tr->prof_adam = adam * per;
        for (int i = 0; i < m->n_layers; i++) {
            int ty = (int)m->layers[i].type;
            if (ty < 0 || ty >= PROF_TYPES)
                continue;
            tr->prof_fwd[ty] += prof[i] * per;
            tr->prof_bwd[ty] += prof[m->n_layers + i] * per;
        }
        tr->prof = 1;
        m->prof = NULL;
    }
    pl_model_free(m);
    free(dl), free(prof), free(x), free(y);
    return s;
}

/* n uniform values in [-1, 1) from r */
static float *rnd_buf(size_t n, pl_rng *r)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; p && i < n; i++)
        p[i] = (float)(2.0 * pl_rng_uniform(r) - 1.0);
    return p;
}

/* Times one conv layer's three kernels at batch 64: GFLOP/s of each. */
static pl_status conv_kernels(const pl_backend_ops *ops, void *st, const pl_conv2d_shape *s,
                              double gfs[3], pl_error *err)
{
    pl_rng seed;
    pl_rng_seed(&seed, 42, "bench:conv");
    size_t nx = (size_t)s->n * s->cin * s->h * s->w, ny = (size_t)s->n * s->cout * s->oh * s->ow;
    size_t nw = (size_t)s->cout * s->cin * s->kh * s->kw;
    float *x = rnd_buf(nx, &seed), *w = rnd_buf(nw, &seed), *dy = rnd_buf(ny, &seed);
    float *y = malloc(sizeof(float) * ny), *dx = malloc(sizeof(float) * nx);
    float *dw = malloc(sizeof(float) * nw), *db = malloc(sizeof(float) * s->cout);
    pl_status r = (x && w && dy && y && dx && dw && db) ? PL_OK : pl_error_set(err, PL_ENOMEM, "out of memory");
    double flop = 2.0 * (double)ny * s->cin * s->kh * s->kw;
    for (int k = 0; k < 3 && !r; k++) {
        double best = 0;
        for (int rep = 0; rep < 4 && !r; rep++) { /* first call warms up */
            double t0 = now_s(CLOCK_MONOTONIC);
            pl_status e = k == 0 ? ops->conv2d_forward(st, s, x, w, NULL, y)
                        : k == 1 ? ops->conv2d_backward_data(st, s, dy, w, dx)
                                 : ops->conv2d_backward_weight(st, s, x, dy, dw, db);
            double t = now_s(CLOCK_MONOTONIC) - t0;
            if (e)
                r = pl_error_set(err, PL_EPLUGIN, "backend conv kernel failed: %s", pl_status_str(e));
            if (rep > 0 && flop / t / 1e9 > best)
                best = flop / t / 1e9;
        }
        gfs[k] = best;
    }
    free(x), free(w), free(dy), free(y), free(dx), free(dw), free(db);
    return r;
}

static pl_status section_vgg(child *c, bench_result *r)
{
    pl_error *err = &c->err;
    const char *path = "configs/models/vgg_mini.yaml";
    if (access(path, R_OK) != 0)
        return PL_OK; /* not in this tree: the section is skipped */
    pl_model_spec *spec = NULL;
    pl_status s = pl_model_spec_load(path, &spec, err);
    int R = c->o->runs, B = 64, need = (VGG_STEPS + 2) * B;
    pl_model *m[BT_MAX] = {0};
    double *v = calloc((size_t)R * BT_MAX, sizeof *v);
    float *x = NULL, *dl = NULL;
    int32_t *y = NULL;
    if (!s && !v)
        s = pl_error_set(err, PL_ENOMEM, "out of memory");
    if (!s) {
        x = malloc(sizeof(float) * 784 * (size_t)need);
        y = malloc(sizeof(int32_t) * (size_t)need);
        dl = malloc(sizeof(float) * 10 * (size_t)B);
        s = x && y && dl ? PL_OK : pl_error_set(err, PL_ENOMEM, "out of memory");
    }
    for (int f = 0; f < need && !s; f += 1000)
        s = pl_data_read(&c->train, NULL, f, need - f < 1000 ? need - f : 1000, x + (size_t)f * 784,
                         y + f, err);
    for (int t = 0; t < c->nt && !s; t++) {
        if ((s = pl_model_new(spec, 1, &m[t], err)))
            break;
        pl_backend_bind(m[t], c->be[t]);
        if ((s = pl_model_reserve(m[t], B, err)) || (s = pl_model_optim_reset(m[t], err)))
            break;
    }
    int64_t step[BT_MAX] = {0};
    for (int rep = -1; rep < R && !s; rep++)
        for (int k = 0; k < c->nt && !s; k++) {
            int t = tc_at(c, rep < 0 ? 0 : rep, k);
            int n0 = rep < 0 ? 2 : VGG_STEPS;
            double t0 = now_s(CLOCK_MONOTONIC);
            for (int i = 0; i < n0 && !s; i++) {
                int at = (rep < 0 ? i : 2 + i) * B;
                pl_step_stats ss;
                s = pl_train_step(m[t], x + (size_t)at * 784, y + at, B, dl, NULL, &bench_adam, NULL, NULL, bench_adam.lr,
                                  ++step[t], "bench", 0, &ss, err);
            }
            if (rep >= 0)
                v[t * R + rep] = (now_s(CLOCK_MONOTONIC) - t0) / VGG_STEPS;
        }
    for (int t = 0; t < c->nt && !s; t++) {
        tc_res *tr = &r->tc[t];
        tr->vgg = 1;
        tr->vgg_step = stats(v + t * R, R);
        const pl_backend_ops *ops = pl_instance_ops(c->be[t]);
        for (int i = 0; i < m[t]->n_layers && tr->nconv < VGG_CONVS && !s; i++) {
            const pl_layer *l = &m[t]->layers[i];
            if (l->type != PL_LAYER_CONV2D)
                continue;
            pl_conv2d_shape cs = {.n = B, .cin = l->in_c, .h = l->in_h, .w = l->in_w, .cout = l->out_c,
                                  .kh = l->kh, .kw = l->kw, .stride_h = l->sh, .stride_w = l->sw,
                                  .pad_h = l->ph, .pad_w = l->pw, .oh = l->out_h, .ow = l->out_w};
            snprintf(tr->conv_desc[tr->nconv], sizeof tr->conv_desc[0], "%s %d->%d %dx%d", l->name,
                     l->in_c, l->out_c, l->in_h, l->in_w);
            s = conv_kernels(ops, pl_instance_state(c->be[t]), &cs, tr->conv_gfs[tr->nconv], err);
            tr->nconv++;
        }
    }
    if (!s && m[0])
        r->vgg_flop = train_flops_per_image(m[0]);
    for (int t = 0; t < BT_MAX; t++)
        pl_model_free(m[t]);
    pl_model_spec_free(spec);
    free(v), free(x), free(y), free(dl);
    return s;
}

/* Prunes `sparsity` of every prunable layer's weights, smallest |w| first
 * (ties to the lower index): the pruner of a run with criterion l1, schedule
 * oneshot, granularity weight. */
static pl_status prune_smallest(child *c, pl_model *m, double sparsity, double *achieved, pl_error *err)
{
    pl_plugin_ref cref = {.plugin = "l1", .file = "bench"}, sref = {.plugin = "oneshot", .file = "bench"};
    pl_prune_cfg cfg = {.enabled = 1, .criterion = cref, .schedule = sref, .granularity = PL_GRAN_WEIGHT,
                        .has_sparsity = 1, .sparsity = sparsity, .count = -1};
    pl_instance *crit = NULL, *sched = NULL;
    pl_pruner p = {0};
    double target;
    pl_status s = pl_instance_new(c->reg, PL_KIND_CRITERION, &cref, 1, 1, &crit, err);
    if (!s)
        s = pl_instance_new(c->reg, PL_KIND_SCHEDULE, &sref, 1, 1, &sched, err);
    if (!s)
        s = pl_pruner_init(&p, m, &cfg, crit, sched, err);
    for (int k = 0; !s && k < p.plan.n_steps; k++)
        s = pl_pruner_step(&p, k, &c->train, 64, 1, err);
    if (!s)
        pl_pruner_sparsity(&p, &target, achieved);
    if (p.m)
        pl_pruner_free(&p);
    pl_instance_free(sched);
    pl_instance_free(crit);
    return s;
}

static pl_status section_sparse(child *c, bench_result *r)
{
    pl_error *err = &c->err;
    const char *path = "configs/models/lenet_300_100.yaml";
    const pl_backend_ops *ops = pl_instance_ops(c->be[0]);
    if (access(path, R_OK) != 0 || !ops->linear_forward_csr)
        return PL_OK; /* nothing to compare */
    pl_model_spec *spec = NULL;
    pl_status s = pl_model_spec_load(path, &spec, err);
    int R = c->o->runs;
    pl_model *m[BT_MAX] = {0};
    pl_backend_ops dense_ops[BT_MAX];
    double *v = calloc((size_t)R * BT_MAX * 2, sizeof *v);
    float *ref = NULL;
    if (!s && !v)
        s = pl_error_set(err, PL_ENOMEM, "out of memory");
    for (int t = 0; t < c->nt && !s; t++) {
        if ((s = pl_model_new(spec, 1, &m[t], err)))
            break;
        pl_backend_bind(m[t], c->be[t]);
        s = prune_smallest(c, m[t], SPARSITY, &r->achieved_sparsity, err);
        /* the same backend with its CSR kernel hidden: the dense baseline */
        dense_ops[t] = *(const pl_backend_ops *)pl_instance_ops(c->be[t]);
        r->tc[t].sparse = dense_ops[t].linear_forward_csr != NULL;
        dense_ops[t].linear_forward_csr = NULL;
    }
    for (int rep = -1; rep < R && !s; rep++)
        for (int k = 0; k < c->nt && !s; k++) {
            int t = tc_at(c, rep < 0 ? 0 : rep, k);
            double sd = 0, ss = 0;
            pl_model_bind(m[t], &dense_ops[t], pl_instance_state(c->be[t]));
            if ((s = infer_all(m[t], c->tx, c->n_test, &sd, err)))
                break;
            pl_backend_bind(m[t], c->be[t]);
            if ((s = infer_all(m[t], c->tx, c->n_test, &ss, err)))
                break;
            if (rep >= 0)
                v[(t * 2) * R + rep] = sd, v[(t * 2 + 1) * R + rep] = ss;
        }
    /* the two paths agree: logits of the first 1000 images */
    for (int t = 0; t < c->nt && !s; t++) {
        tc_res *tr = &r->tc[t];
        tr->dense = stats(v + (t * 2) * R, R);
        tr->sparse_t = stats(v + (t * 2 + 1) * R, R);
        size_t nl = (size_t)1000 * m[t]->classes;
        free(ref);
        ref = malloc(sizeof(float) * nl);
        if (!ref) {
            s = pl_error_set(err, PL_ENOMEM, "out of memory");
            break;
        }
        pl_model_bind(m[t], &dense_ops[t], pl_instance_state(c->be[t]));
        const float *a = pl_model_forward(m[t], c->tx, 1000, PL_MODE_EVAL, err);
        if (!a) {
            s = err->code ? err->code : PL_EPLUGIN;
            break;
        }
        memcpy(ref, a, sizeof(float) * nl);
        pl_backend_bind(m[t], c->be[t]);
        const float *b = pl_model_forward(m[t], c->tx, 1000, PL_MODE_EVAL, err);
        if (!b) {
            s = err->code ? err->code : PL_EPLUGIN;
            break;
        }
        for (size_t i = 0; i < nl; i++) { /* a and b are the same buffer: compare with the copy */
            tr->max_diff = fmax(tr->max_diff, fabs((double)ref[i] - b[i]));
            tr->max_ref = fmax(tr->max_ref, fabs((double)ref[i]));
        }
    }
    for (int t = 0; t < BT_MAX; t++)
        pl_model_free(m[t]);
    pl_model_spec_free(spec);
    free(v), free(ref);
    return s;
}

static void bench_child(pl_registry *reg, const pl_bench_opts *o, const char *backend,
                        bench_result *r)
{
    child c = {.reg = reg, .o = o, .backend = backend};
    pl_error_clear(&c.err);
    pl_error *err = &c.err;
    pl_model_spec *spec = NULL;
    pl_instance *ds = NULL;
    c.threads[0] = 1;
    c.nt = 1;
    if (o->threads > 1 && strcmp(backend, "ref")) /* ref's kernels are single-threaded */
        c.threads[c.nt++] = o->threads;
    r->nt = c.nt;
    for (int t = 0; t < c.nt; t++) {
        r->tc[t].threads = c.threads[t];
        r->tc[t].same = 1;
    }
    pl_plugin_ref bref = {.plugin = (char *)backend, .file = "bench"};
    pl_kv dkv = {.key = "path", .value = (char *)(o->data ? o->data : "data/mnist"), .file = "bench"};
    pl_plugin_ref dref = {.plugin = "idx", .file = "bench", .params = &dkv, .n_params = 1};
    pl_status s = pl_model_spec_load(o->model, &spec, err);
    for (int t = 0; t < c.nt && !s; t++)
        s = pl_instance_new(reg, PL_KIND_BACKEND, &bref, 1, c.threads[t], &c.be[t], err);
    if (!s)
        s = pl_instance_new(reg, PL_KIND_DATASET, &dref, 1, 1, &ds, err);
    if (!s)
        s = pl_data_open(ds, PL_SPLIT_TRAIN, &c.train, err);
    if (!s)
        s = pl_data_open(ds, PL_SPLIT_TEST, &c.test, err);
    if (!s) {
        const pl_dataset_info *di = &c.test.info;
        int64_t img = (int64_t)di->channels * di->height * di->width;
        c.n_test = di->count;
        c.tx = malloc(sizeof(float) * (size_t)(img * c.n_test));
        c.ty = malloc(sizeof(int32_t) * (size_t)c.n_test);
        s = c.tx && c.ty ? PL_OK : pl_error_set(err, PL_ENOMEM, "out of memory");
        for (int64_t f = 0; f < c.n_test && !s; f += 1000)
            s = pl_data_read(&c.test, NULL, f, (int)(c.n_test - f < 1000 ? c.n_test - f : 1000),
                             c.tx + f * img, c.ty + f, err);
    }
    if (!s)
        s = section_epoch(&c, spec, r);
    if (!s)
        s = section_profile(&c, spec, r);
    if (!s && strcmp(backend, "ref"))
        s = section_vgg(&c, r);
    if (!s && c.n_test && c.test.info.channels * c.test.info.height * c.test.info.width == 784)
        s = section_sparse(&c, r);
    if (!s)
        r->ok = 1;
    else
        snprintf(r->msg, sizeof r->msg, "%s", err->msg);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->peak_rss_kb = ru.ru_maxrss;
    free(c.tx);
    free(c.ty);
    pl_data_close(&c.train);
    pl_data_close(&c.test);
    pl_instance_free(ds);
    for (int t = 0; t < c.nt; t++)
        pl_instance_free(c.be[t]);
    pl_model_spec_free(spec);
}

/* ---- the report ----------------------------------------------------------------------------- */

static void csv_row(pl__buf *c, const char *section, const char *model, const char *backend, int threads,
                    const char *metric, st3 v, const char *unit)
{
    const char *cells[] = {section, model, backend};
    pl__csv_strs(c, cells, 3);
    pl__buf_printf(c, ",%d,", threads);
    pl__csv_str(c, metric);
    pl__buf_printf(c, ",%.6g,%.6g,%.6g,", v.med, v.min, v.max);
    pl__csv_str(c, unit);
    pl__buf_puts(c, "\n");
}

static st3 scale3(st3 v, double k) /* k/v turns seconds into a rate: min and max swap */
{
    return (st3){k / v.med, k / v.max, k / v.min};
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void report(FILE *out, pl__buf *cv, const pl_bench_opts *o, const char *be, const bench_result *r)
{
    const char *model = base_name(o->model);
    double ntrain = 60000, ntest = 10000;
    fprintf(out, "\n### %s\n\n", be);
    fprintf(out, "| threads | FMA probe GFLOP/s | epoch s | min..max | CPU s | images/s | GFLOP/s | %% of probe "
                 "| infer 10k ms | min..max | test acc %% | weights |\n"
                 "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int t = 0; t < r->nt; t++) {
        const tc_res *x = &r->tc[t];
        double gf = r->train_flop * ntrain / x->epoch.med / 1e9;
        fprintf(out, "| %d | %.0f | %.3f | %.3f..%.3f | %.3f | %.0f | %.1f | %.1f | %.1f | %.1f..%.1f | %.2f | %s |\n",
                x->threads, x->probe.med, x->epoch.med, x->epoch.min, x->epoch.max, x->cpu.med,
                ntrain / x->epoch.med, gf, 100.0 * gf / x->probe.med, x->infer.med * 1e3,
                x->infer.min * 1e3, x->infer.max * 1e3, x->acc, x->same ? "identical" : "DIFFER");
        csv_row(cv, "probe", "-", be, x->threads, "fma_gflops", x->probe, "GFLOP/s");
        csv_row(cv, "train", model, be, x->threads, "epoch_seconds", x->epoch, "s");
        csv_row(cv, "train", model, be, x->threads, "epoch_cpu_seconds", x->cpu, "s");
        csv_row(cv, "train", model, be, x->threads, "images_per_second", scale3(x->epoch, ntrain), "1/s");
        csv_row(cv, "train", model, be, x->threads, "gflops", scale3(x->epoch, r->train_flop * ntrain / 1e9),
                "GFLOP/s");
        csv_row(cv, "train", model, be, x->threads, "fraction_of_probe",
                (st3){gf / x->probe.med, gf / x->probe.med, gf / x->probe.med}, "1");
        csv_row(cv, "infer", model, be, x->threads, "test_set_ms",
                (st3){x->infer.med * 1e3, x->infer.min * 1e3, x->infer.max * 1e3}, "ms");
        csv_row(cv, "infer", model, be, x->threads, "gflops", scale3(x->infer, r->infer_flop * ntest / 1e9),
                "GFLOP/s");
        csv_row(cv, "train", model, be, x->threads, "test_accuracy", (st3){x->acc, x->acc, x->acc}, "%");
    }
    if (r->nt == 2)
        fprintf(out, "\n%d threads vs 1: epoch %.2fx, inference %.2fx, probe %.2fx\n", r->tc[1].threads,
                r->tc[0].epoch.med / r->tc[1].epoch.med, r->tc[0].infer.med / r->tc[1].infer.med,
                r->tc[1].probe.med / r->tc[0].probe.med);
    if (r->tc[0].prof) {
        fprintf(out, "\n%s, where a training step of batch 64 goes (ms per step over %d steps, by layer type; a "
                     "fused ReLU or max pooling counts to the layer before it):\n\n| threads | step ms |",
                model, PROF_STEPS);
        for (int ty = 0; ty < PROF_TYPES; ty++)
            if (r->tc[0].prof_fwd[ty] + r->tc[0].prof_bwd[ty] > 0)
                fprintf(out, " %s fwd | bwd |", pl_layer_type_name((pl_layer_type)ty));
        fprintf(out, " loss | Adam | rest |\n|---|---|");
        for (int ty = 0; ty < PROF_TYPES; ty++)
            if (r->tc[0].prof_fwd[ty] + r->tc[0].prof_bwd[ty] > 0)
                fprintf(out, "---|---|");
        fprintf(out, "---|---|---|\n");
        for (int t = 0; t < r->nt; t++) {
            const tc_res *x = &r->tc[t];
            double rest = x->prof_step - x->prof_xent - x->prof_adam;
            fprintf(out, "| %d | %.2f |", x->threads, x->prof_step);
            for (int ty = 0; ty < PROF_TYPES; ty++)
                if (r->tc[0].prof_fwd[ty] + r->tc[0].prof_bwd[ty] > 0) {
                    fprintf(out, " %.2f | %.2f |", x->prof_fwd[ty], x->prof_bwd[ty]);
                    rest -= x->prof_fwd[ty] + x->prof_bwd[ty];
                    char metric[80];
                    const char *tn = pl_layer_type_name((pl_layer_type)ty);
                    snprintf(metric, sizeof metric, "%s_forward_ms", tn);
                    csv_row(cv, "profile", model, be, x->threads, metric,
                            (st3){x->prof_fwd[ty], x->prof_fwd[ty], x->prof_fwd[ty]}, "ms");
                    snprintf(metric, sizeof metric, "%s_backward_ms", tn);
                    csv_row(cv, "profile", model, be, x->threads, metric,
                            (st3){x->prof_bwd[ty], x->prof_bwd[ty], x->prof_bwd[ty]}, "ms");
                }
            fprintf(out, " %.2f | %.2f | %.2f |\n", x->prof_xent, x->prof_adam, rest);
            csv_row(cv, "profile", model, be, x->threads, "step_ms", (st3){x->prof_step, x->prof_step, x->prof_step},
                    "ms");
            csv_row(cv, "profile", model, be, x->threads, "loss_ms", (st3){x->prof_xent, x->prof_xent, x->prof_xent},
                    "ms");
            csv_row(cv, "profile", model, be, x->threads, "adam_ms", (st3){x->prof_adam, x->prof_adam, x->prof_adam},
                    "ms");
        }
    }
    if (r->tc[0].vgg) {
        fprintf(out, "\nvgg_mini, %d training steps of batch 64 (%.2f GFLOP each):\n\n"
                     "| threads | s/step | min..max | images/s | GFLOP/s | %% of probe |\n|---|---|---|---|---|---|\n",
                VGG_STEPS, r->vgg_flop * 64 / 1e9);
        for (int t = 0; t < r->nt; t++) {
            const tc_res *x = &r->tc[t];
            double gf = r->vgg_flop * 64 / x->vgg_step.med / 1e9;
            fprintf(out, "| %d | %.4f | %.4f..%.4f | %.0f | %.1f | %.1f |\n", x->threads, x->vgg_step.med,
                    x->vgg_step.min, x->vgg_step.max, 64 / x->vgg_step.med, gf, 100 * gf / x->probe.med);
            csv_row(cv, "train", "vgg_mini", be, x->threads, "step_seconds", x->vgg_step, "s");
            csv_row(cv, "train", "vgg_mini", be, x->threads, "gflops",
                    scale3(x->vgg_step, r->vgg_flop * 64 / 1e9), "GFLOP/s");
        }
        fprintf(out, "\nvgg_mini convolutions alone, batch 64 (best of 3 calls; %% of the probe at the same "
                     "thread count):\n\n| layer | threads | forward GFLOP/s | %% | backward data | %% | backward "
                     "weight | %% |\n|---|---|---|---|---|---|---|---|\n");
        static const char *const kn[3] = {"conv_forward", "conv_backward_data", "conv_backward_weight"};
        for (int i = 0; i < r->tc[0].nconv; i++)
            for (int t = 0; t < r->nt; t++) {
                const tc_res *x = &r->tc[t];
                fprintf(out, "| %s | %d | %.1f | %.0f | %.1f | %.0f | %.1f | %.0f |\n", x->conv_desc[i],
                        x->threads, x->conv_gfs[i][0], 100 * x->conv_gfs[i][0] / x->probe.med,
                        x->conv_gfs[i][1], 100 * x->conv_gfs[i][1] / x->probe.med, x->conv_gfs[i][2],
                        100 * x->conv_gfs[i][2] / x->probe.med);
                for (int k = 0; k < 3; k++) {
                    char metric[96];
                    snprintf(metric, sizeof metric, "%s %s", x->conv_desc[i], kn[k]);
                    double g = x->conv_gfs[i][k];
                    csv_row(cv, "conv", "vgg_mini", be, x->threads, metric, (st3){g, g, g}, "GFLOP/s");
                }
            }
    }
    if (r->tc[0].dense.med > 0) {
        fprintf(out, "\nLeNet-300-100 inference, 10,000 test images in batches of 1,000, %.0f%% of the prunable "
                     "weights pruned (smallest |w|):\n\n| threads | dense ms | sparse (CSR) ms | speed-up | max "
                     "|logit diff| |\n|---|---|---|---|---|\n",
                100 * r->achieved_sparsity);
        for (int t = 0; t < r->nt; t++) {
            const tc_res *x = &r->tc[t];
            if (!x->sparse) {
                fprintf(out, "| %d | %.2f | (no CSR kernel) | - | - |\n", x->threads, x->dense.med * 1e3);
                continue;
            }
            fprintf(out, "| %d | %.2f | %.2f | %.2fx | %.2g (of %.3g) |\n", x->threads, x->dense.med * 1e3,
                    x->sparse_t.med * 1e3, x->dense.med / x->sparse_t.med, x->max_diff, x->max_ref);
            csv_row(cv, "sparse", "lenet_300_100", be, x->threads, "dense_ms",
                    (st3){x->dense.med * 1e3, x->dense.min * 1e3, x->dense.max * 1e3}, "ms");
            csv_row(cv, "sparse", "lenet_300_100", be, x->threads, "csr_ms",
                    (st3){x->sparse_t.med * 1e3, x->sparse_t.min * 1e3, x->sparse_t.max * 1e3}, "ms");
            double sp = x->dense.med / x->sparse_t.med;
            csv_row(cv, "sparse", "lenet_300_100", be, x->threads, "speedup", (st3){sp, sp, sp}, "x");
        }
    }
    fprintf(out, "\npeak RSS %.1f MB\n", (double)r->peak_rss_kb / 1024.0);
    fflush(out);
}

pl_status pl_bench_run(pl_registry *reg, const pl_bench_opts *o, FILE *out, pl_error *err)
{
    static const char *const defaults[] = {"ref", "simd"};
    const char *const *bes = o->n_backends ? o->backends : defaults;
    int nb = o->n_backends ? o->n_backends : 2;
    double load0[3] = {0, 0, 0}, load1[3] = {0, 0, 0};
    if (getloadavg(load0, 3) < 0)
        load0[0] = -1;
    const char *isa;
    pl_bench_fma_probe(1, 0.001, &isa);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    fprintf(out, "prunelab bench: training %s on MNIST (60,000 images, batch 64, Adam lr 1e-3), inference on "
                 "the 10,000 test images; median of %d after a warm-up (min..max), thread counts "
                 "alternating.\nmachine: %ld CPUs, FMA probe %s with %d chains; load average %.2f at the "
                 "start\n",
            o->model, o->runs, ncpu, isa, PROBE_CHAINS, load0[0]);
    fflush(out);
    pl__buf cv = {0};
    pl__buf_puts(&cv, "section,model,backend,threads,metric,median,min,max,unit\n");
    pl_status s = PL_OK;
    for (int b = 0; b < nb && !s; b++) {
        int fds[2];
        if (pipe(fds)) {
            s = pl_error_set(err, PL_EIO, "bench: pipe: %s", strerror(errno));
            break;
        }
        fflush(out);
        pid_t pid = fork();
        if (pid < 0) {
            close(fds[0]), close(fds[1]);
            s = pl_error_set(err, PL_EIO, "bench: fork: %s", strerror(errno));
            break;
        }
        if (pid == 0) {
            close(fds[0]);
            bench_result *r = calloc(1, sizeof *r);
            int ok = 0;
            if (r) {
                bench_child(reg, o, bes[b], r);
                const char *p = (const char *)r;
                size_t left = sizeof *r;
                while (left) {
                    ssize_t w = write(fds[1], p, left);
                    if (w <= 0)
                        break;
                    p += w, left -= (size_t)w;
                }
                ok = left == 0;
            }
            close(fds[1]);
            _exit(ok ? 0 : 1);
        }
        close(fds[1]);
        bench_result *r = calloc(1, sizeof *r);
        size_t got = 0;
        while (r && got < sizeof *r) {
            ssize_t n = read(fds[0], (char *)r + got, sizeof *r - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        close(fds[0]);
        int status;
        waitpid(pid, &status, 0);
        if (!r || got != sizeof *r || !r->ok)
            s = pl_error_set(err, PL_EPLUGIN, "bench %s: %s", bes[b],
                             r && got == sizeof *r ? r->msg : "the benchmark process failed");
        else
            report(out, &cv, o, bes[b], r);
        free(r);
    }
    if (getloadavg(load1, 3) < 0)
        load1[0] = -1;
    fprintf(out, "\nload average %.2f at the end (%.2f at the start): on a loaded machine wall times and the "
                 "2-thread speed-up suffer first; the CPU seconds and %% of probe much less.\n",
            load1[0], load0[0]);
    if (!s && o->csv_path) {
        if (cv.failed)
            s = pl_error_set(err, PL_ENOMEM, "out of memory for the CSV");
        else
            s = pl_write_atomic(o->csv_path, cv.data, cv.len, err);
        if (!s)
            fprintf(out, "wrote %s\n", o->csv_path);
    }
    pl__buf_free(&cv);
    return s;
}
