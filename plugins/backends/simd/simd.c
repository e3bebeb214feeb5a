/*
 * simd — vectorised, multi-threaded backend (see simd_internal.h).
 *
 * The instance owns a small persistent thread pool (env->threads - 1
 * workers; the calling thread is worker 0), scratch buffers that grow on
 * demand and are reused, and the kernel table of the instruction set chosen
 * at init: parameter `isa` (auto | avx512 | avx2 | base), auto picking the
 * best one the CPU supports. One instance serves one calling thread at a
 * time.
 *
 * Pool protocol. `state` counts job phases: odd = job open, even = closed.
 * The caller publishes the job, opens it, runs tasks itself, waits until
 * every task is done, closes it, and waits until no worker is still inside
 * (`active`). A worker enters only after re-checking that the job it saw
 * is still open, so a late worker never touches the next job's fields, and
 * the caller never waits for a worker that is asleep. Workers spin briefly
 * for the next job (kernels come back to back in training) and then sleep
 * on a condition variable.
 *
 * Task placement. Thread w first takes the tasks of its home range
 * [w*n/T, (w+1)*n/T) in order, then steals what is left of the others'.
 * Kernels cut work the same way in every call (by image, or by element of
 * a batch-major tensor), so when no thread is late the same core touches
 * the same images in every layer and their activations stay in its L2;
 * when one is descheduled (a loaded machine) the other finishes its range.
 * Which thread runs a task never changes the result.
 */
#include "simd_internal.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PL_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define PL_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define PL_CPU_RELAX() ((void)0)
#endif

#define PL_SIMD_SPIN_NS 300000      /* a worker spins this long before sleeping */
#define PL_SIMD_SERIAL_FLOPS 150000 /* smaller jobs run on the caller only */
/* A waiting thread spins on PAUSE for about PL_SIMD_YIELD_AFTER spins
 * (tens of microseconds: the kernels of a training step follow each other
 * closer than that), then offers its core to others every
 * PL_SIMD_YIELD_SPINS spins: on a loaded machine the pool's two threads may
 * share one core, and a spinning worker would otherwise halve the caller's
 * speed. On an idle core sched_yield returns at once. */
#define PL_SIMD_YIELD_AFTER 512
#define PL_SIMD_YIELD_SPINS 64

typedef struct pl__buf {
    float *p;
    size_t cap; /* floats */
} pl__buf;

struct pl__simd {
    const pl_host_api *api;
    pl_ctx *ctx;
    const pl__simd_impl *impl;
    int threads; /* workers incl. the caller */

    pl__buf slot[PL__SIMD_SLOTS];
    pl__buf *wbuf; /* [threads] */

    /* pool */
    pthread_t *tids;
    int nstarted;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic uint64_t state;
    _Atomic int sleepers;
    _Atomic int active;
    _Atomic int stop;
    _Atomic int64_t done;
    pl__simd_task_fn fn;
    void *fn_ctx;
    int64_t ntasks;
    /* next task of each home range, one cache line each */
    struct {
        _Atomic int64_t next;
        int64_t end;
        char pad[64 - sizeof(int64_t) - sizeof(_Atomic int64_t)];
    } home[PL_SIMD_MAX_THREADS] __attribute__((aligned(64)));
};

typedef struct pl__worker_arg {
    pl__simd *s;
    int index;
} pl__worker_arg;

/* ---- errors and scratch ------------------------------------------------- */

pl_status pl__simd_fail(pl__simd *s, pl_status st, const char *msg)
{
    if (s && s->api && s->api->set_error)
        s->api->set_error(s->ctx, "%s", msg);
    return st;
}

static int buf_grow(pl__simd *s, pl__buf *b, size_t n)
{
    if (n <= b->cap)
        return 1;
    if (n > (SIZE_MAX / sizeof(float)) / 2)
        return 0;
    size_t cap = n + n / 4 + 64; /* some slack so a slowly growing shape does not realloc each call */
    float *p = s->api->alloc_aligned(cap * sizeof(float));
    if (!p)
        return 0;
    if (b->p)
        s->api->free_aligned(b->p);
    b->p = p;
    b->cap = cap;
    return 1;
}

float *pl__simd_slot(pl__simd *s, int slot, size_t n)
{
    if (!buf_grow(s, &s->slot[slot], n ? n : 1)) {
        pl__simd_fail(s, PL_ENOMEM, "out of memory for scratch buffers");
        return NULL;
    }
    return s->slot[slot].p;
}

pl_status pl__simd_reserve(pl__simd *s, size_t n)
{
    for (int i = 0; i < s->threads; i++)
        if (!buf_grow(s, &s->wbuf[i], n ? n : 1))
            return pl__simd_fail(s, PL_ENOMEM, "out of memory for scratch buffers");
    return PL_OK;
}

float *pl__simd_wbuf(pl__simd *s, int worker)
{
    return s->wbuf[worker].p;
}

/* ---- thread pool --------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void spin_or_yield(unsigned spins)
{
    if (spins < PL_SIMD_YIELD_AFTER || spins % PL_SIMD_YIELD_SPINS)
        PL_CPU_RELAX();
    else
        sched_yield();
}

static void run_tasks(pl__simd *s, int worker)
{
    pl__simd_task_fn fn = s->fn;
    void *ctx = s->fn_ctx;
    int T = s->threads;
    int64_t ran = 0;
    for (int k = 0; k < T; k++) {
        int v = worker + k < T ? worker + k : worker + k - T; /* home range first */
        int64_t end = s->home[v].end;
        if (atomic_load_explicit(&s->home[v].next, memory_order_relaxed) >= end)
            continue;
        for (;;) {
            int64_t t = atomic_fetch_add_explicit(&s->home[v].next, 1, memory_order_relaxed);
            if (t >= end)
                break;
            fn(ctx, t, worker);
            ran++;
        }
    }
    if (ran)
        atomic_fetch_add_explicit(&s->done, ran, memory_order_release);
}

static void *worker_main(void *arg)
{
    pl__simd *s = ((pl__worker_arg *)arg)->s;
    int index = ((pl__worker_arg *)arg)->index;
    s->api->free(arg);
    uint64_t seen = atomic_load(&s->state);
    for (;;) {
        uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == seen) {
            uint64_t t0 = now_ns();
            for (unsigned spins = 1;; spins++) {
                spin_or_yield(spins);
                st = atomic_load_explicit(&s->state, memory_order_acquire);
                if (st != seen || atomic_load_explicit(&s->stop, memory_order_relaxed))
                    break;
                if ((spins & 255) == 0 && now_ns() - t0 > PL_SIMD_SPIN_NS) {
                    pthread_mutex_lock(&s->mu);
                    atomic_fetch_add(&s->sleepers, 1);
                    while ((st = atomic_load(&s->state)) == seen && !atomic_load(&s->stop))
                        pthread_cond_wait(&s->cv, &s->mu);
                    atomic_fetch_sub(&s->sleepers, 1);
                    pthread_mutex_unlock(&s->mu);
                    break;
                }
            }
        }
        if (atomic_load(&s->stop))
            break;
        seen = st;
        if (!(st & 1))
            continue; /* a job was closed: wait for the next one */
        atomic_fetch_add(&s->active, 1);
        if (atomic_load(&s->state) == st)
            run_tasks(s, index);
        atomic_fetch_sub_explicit(&s->active, 1, memory_order_release);
    }
    return NULL;
}

void pl__simd_run(pl__simd *s, int64_t ntasks, double flops, pl__simd_task_fn fn, void *ctx)
{
    if (ntasks <= 0)
        return;
    if (s->nstarted == 0 || ntasks == 1 || flops < PL_SIMD_SERIAL_FLOPS) {
        for (int64_t t = 0; t < ntasks; t++)
            fn(ctx, t, 0);
        return;
    }
    s->fn = fn;
    s->fn_ctx = ctx;
    s->ntasks = ntasks;
    for (int v = 0; v < s->threads; v++) {
        atomic_store_explicit(&s->home[v].next, ntasks * v / s->threads, memory_order_relaxed);
        s->home[v].end = ntasks * (v + 1) / s->threads;
    }
    atomic_store_explicit(&s->done, 0, memory_order_relaxed);
    atomic_fetch_add(&s->state, 1); /* open */
    if (atomic_load(&s->sleepers) > 0) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    run_tasks(s, 0);
    /* a worker may still be inside its last task; on an oversubscribed
     * machine it may even be descheduled, so stop spinning after a while */
    for (unsigned spins = 0; atomic_load_explicit(&s->done, memory_order_acquire) < ntasks; spins++)
        spin_or_yield(spins);
    atomic_fetch_add(&s->state, 1); /* close */
    for (unsigned spins = 0; atomic_load_explicit(&s->active, memory_order_acquire) > 0; spins++)
        spin_or_yield(spins);
}

static void pool_stop(pl__simd *s)
{
    if (!s->nstarted)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stop, 1);
    atomic_fetch_add(&s->state, 2);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nstarted; i++)
        pthread_join(s->tids[i], NULL);
    s->nstarted = 0;
}

/* ---- shape checks (shared with the ref backend's rules) ----------------- */

int pl__simd_conv_shape_ok(const pl_conv2d_shape *s)
{
    if (s->n < 1 || s->cin < 1 || s->h < 1 || s->w < 1 || s->cout < 1 || s->kh < 1 ||
        s->kw < 1 || s->stride_h < 1 || s->stride_w < 1 || s->pad_h < 0 || s->pad_w < 0)
        return 0;
    if (s->h + 2 * s->pad_h < s->kh || s->w + 2 * s->pad_w < s->kw)
        return 0;
    return s->oh == (s->h + 2 * s->pad_h - s->kh) / s->stride_h + 1 &&
           s->ow == (s->w + 2 * s->pad_w - s->kw) / s->stride_w + 1;
}

int pl__simd_pool_shape_ok(const pl_pool2d_shape *s)
{
    if (s->n < 1 || s->c < 1 || s->h < 1 || s->w < 1 || s->kh < 1 || s->kw < 1 ||
        s->stride_h < 1 || s->stride_w < 1 || s->pad_h < 0 || s->pad_w < 0 ||
        2 * s->pad_h > s->kh || 2 * s->pad_w > s->kw)
        return 0;
    if (s->h + 2 * s->pad_h < s->kh || s->w + 2 * s->pad_w < s->kw)
        return 0;
    return s->oh == (s->h + 2 * s->pad_h - s->kh) / s->stride_h + 1 &&
           s->ow == (s->w + 2 * s->pad_w - s->kw) / s->stride_w + 1;
}

/* ---- ops table ----------------------------------------------------------- */

static pl_status s_conv2d_forward(void *st, const pl_conv2d_shape *sh, const float *x,
                                  const float *w, const float *b, float *y)
{
    pl__simd *s = st;
    return s->impl->conv2d_forward(s, sh, x, w, b, y);
}
static pl_status s_conv2d_backward_data(void *st, const pl_conv2d_shape *sh,
                                        const float *dy, const float *w, float *dx)
{
    pl__simd *s = st;
    return s->impl->conv2d_backward_data(s, sh, dy, w, dx);
}
static pl_status s_conv2d_backward_weight(void *st, const pl_conv2d_shape *sh,
                                          const float *x, const float *dy, float *dw,
                                          float *db)
{
    pl__simd *s = st;
    return s->impl->conv2d_backward_weight(s, sh, x, dy, dw, db);
}
static pl_status s_linear_forward(void *st, int n, int in, int out, const float *x,
                                  const float *w, const float *b, float *y)
{
    pl__simd *s = st;
    return s->impl->linear_forward(s, n, in, out, x, w, b, y);
}
static pl_status s_linear_backward_data(void *st, int n, int in, int out,
                                        const float *dy, const float *w, float *dx)
{
    pl__simd *s = st;
    return s->impl->linear_backward_data(s, n, in, out, dy, w, dx);
}
static pl_status s_linear_backward_weight(void *st, int n, int in, int out,
                                          const float *x, const float *dy, float *dw,
                                          float *db)
{
    pl__simd *s = st;
    return s->impl->linear_backward_weight(s, n, in, out, x, dy, dw, db);
}
static pl_status s_maxpool2d_forward(void *st, const pl_pool2d_shape *sh, const float *x,
                                     float *y, int32_t *argmax)
{
    pl__simd *s = st;
    return s->impl->maxpool2d_forward(s, sh, x, y, argmax);
}
static pl_status s_maxpool2d_backward(void *st, const pl_pool2d_shape *sh,
                                      const float *dy, const int32_t *argmax, float *dx)
{
    pl__simd *s = st;
    return s->impl->maxpool2d_backward(s, sh, dy, argmax, dx);
}
static pl_status s_avgpool2d_forward(void *st, const pl_pool2d_shape *sh, const float *x,
                                     float *y)
{
    pl__simd *s = st;
    return s->impl->avgpool2d_forward(s, sh, x, y);
}
static pl_status s_avgpool2d_backward(void *st, const pl_pool2d_shape *sh,
                                      const float *dy, float *dx)
{
    pl__simd *s = st;
    return s->impl->avgpool2d_backward(s, sh, dy, dx);
}
static pl_status s_relu_forward(void *st, int64_t n, const float *x, float *y)
{
    pl__simd *s = st;
    return s->impl->relu_forward(s, n, x, y);
}
static pl_status s_relu_backward(void *st, int64_t n, const float *y, const float *dy,
                                 float *dx)
{
    pl__simd *s = st;
    return s->impl->relu_backward(s, n, y, dy, dx);
}
static pl_status s_softmax_xent(void *st, int n, int classes, const float *logits,
                                const int32_t *labels, float grad_scale, float *dlogits,
                                double *loss_sum, int64_t *correct)
{
    pl__simd *s = st;
    return s->impl->softmax_xent(s, n, classes, logits, labels, grad_scale, dlogits, loss_sum,
                                 correct);
}
static pl_status s_adam_update(void *st, const pl_adam_hparams *h, int64_t n, float *p,
                               const float *g, float *m, float *v, const float *mask)
{
    pl__simd *s = st;
    return s->impl->adam_update(s, h, n, p, g, m, v, mask);
}
static pl_status s_sgd_update(void *st, const pl_sgd_hparams *h, int64_t n, float *p,
                              const float *g, float *buf, const float *mask)
{
    pl__simd *s = st;
    return s->impl->sgd_update(s, h, n, p, g, buf, mask);
}

static pl_status s_conv2d_forward_relu(void *st, const pl_conv2d_shape *sh, const float *x,
                                       const float *w, const float *b, float *y)
{
    pl__simd *s = st;
    return s->impl->conv2d_forward_relu(s, sh, x, w, b, y);
}
static pl_status s_linear_forward_relu(void *st, int n, int in, int out, const float *x,
                                       const float *w, const float *b, float *y)
{
    pl__simd *s = st;
    return s->impl->linear_forward_relu(s, n, in, out, x, w, b, y);
}
static pl_status s_linear_forward_csr(void *st, int n, int in, int out, const float *x,
                                      const pl_csr *w, const float *b, float *y)
{
    pl__simd *s = st;
    return s->impl->linear_forward_csr(s, n, in, out, x, w, b, y);
}

static pl_status s_conv2d_forward_relu_maxpool(void *st, const pl_conv2d_shape *sh,
                                               const float *x, const float *w, const float *b,
                                               float *yr, const pl_pool2d_shape *ps, float *yp,
                                               int32_t *argmax)
{
    pl__simd *s = st;
    return s->impl->conv2d_forward_relu_maxpool(s, sh, x, w, b, yr, ps, yp, argmax);
}

static pl_status s_maxpool2d_relu_backward(void *st, const pl_pool2d_shape *ps, const float *dy,
                                           const int32_t *argmax, const float *yr, float *dx)
{
    pl__simd *s = st;
    return s->impl->maxpool2d_relu_backward(s, ps, dy, argmax, yr, dx);
}

static pl_status s_conv2d_grouped_forward(void *st, const pl_conv2d_shape *sh, int groups,
                                          const float *x, const float *w, const float *b, float *y)
{
    pl__simd *s = st;
    return s->impl->conv2d_grouped_forward(s, sh, groups, x, w, b, y);
}

static pl_status s_conv2d_grouped_backward_data(void *st, const pl_conv2d_shape *sh, int groups,
                                                const float *dy, const float *w, float *dx)
{
    pl__simd *s = st;
    return s->impl->conv2d_grouped_backward_data(s, sh, groups, dy, w, dx);
}

static pl_status s_conv2d_grouped_backward_weight(void *st, const pl_conv2d_shape *sh, int groups,
                                                  const float *x, const float *dy, float *dw,
                                                  float *db)
{
    pl__simd *s = st;
    return s->impl->conv2d_grouped_backward_weight(s, sh, groups, x, dy, dw, db);
}

static pl_status s_parallel_for(void *st, int64_t n, double work,
                                void (*fn)(void *ctx, int64_t i, int worker), void *ctx)
{
    pl__simd *s = st;
    if (n < 0 || !fn)
        return pl__simd_fail(s, PL_EINVAL, "parallel_for: negative count or no function");
    pl__simd_run(s, n, work, fn, ctx);
    return PL_OK;
}

static const pl_backend_ops simd_ops = {
    .conv2d_forward = s_conv2d_forward,
    .conv2d_backward_data = s_conv2d_backward_data,
    .conv2d_backward_weight = s_conv2d_backward_weight,
    .linear_forward = s_linear_forward,
    .linear_backward_data = s_linear_backward_data,
    .linear_backward_weight = s_linear_backward_weight,
    .maxpool2d_forward = s_maxpool2d_forward,
    .maxpool2d_backward = s_maxpool2d_backward,
    .avgpool2d_forward = s_avgpool2d_forward,
    .avgpool2d_backward = s_avgpool2d_backward,
    .relu_forward = s_relu_forward,
    .relu_backward = s_relu_backward,
    .softmax_xent = s_softmax_xent,
    .adam_update = s_adam_update,
    .sgd_update = s_sgd_update,
    .conv2d_forward_relu = s_conv2d_forward_relu,
    .linear_forward_relu = s_linear_forward_relu,
    .linear_forward_csr = s_linear_forward_csr,
    .conv2d_forward_relu_maxpool = s_conv2d_forward_relu_maxpool,
    .maxpool2d_relu_backward = s_maxpool2d_relu_backward,
    .parallel_for = s_parallel_for,
    .conv2d_grouped_forward = s_conv2d_grouped_forward,
    .conv2d_grouped_backward_data = s_conv2d_grouped_backward_data,
    .conv2d_grouped_backward_weight = s_conv2d_grouped_backward_weight,
    .reserved = {0},
};

/* ---- init / fini ----------------------------------------------------------- */

static int isa_supported(const pl__simd_impl *impl)
{
#if defined(PL_SIMD_HAVE_X86_VARIANTS)
    __builtin_cpu_init();
    if (impl == &pl__simd_impl_avx512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (impl == &pl__simd_impl_avx2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return impl == &pl__simd_impl_base;
}

static const pl__simd_impl *const all_impls[] = {
#if defined(PL_SIMD_HAVE_X86_VARIANTS)
    &pl__simd_impl_avx512,
    &pl__simd_impl_avx2,
#endif
    &pl__simd_impl_base,
};

static pl_status simd_init(const pl_env *env, void **state)
{
    const pl_host_api *api = env->api;
    pl__simd *s = api->alloc_aligned(sizeof *s); /* the home counters are cache-line aligned */
    if (!s)
        return PL_ENOMEM;
    memset(s, 0, sizeof *s);
    s->api = api;
    s->ctx = env->ctx;

    const char *want = api->param_str(env->params, "isa");
    if (!want || !*want)
        want = "auto";
    for (size_t i = 0; i < sizeof all_impls / sizeof all_impls[0] && !s->impl; i++)
        if ((!strcmp(want, "auto") || !strcmp(want, all_impls[i]->name)) &&
            isa_supported(all_impls[i]))
            s->impl = all_impls[i];
    if (!s->impl) {
        api->set_error(env->ctx, "isa '%s' is unknown or not supported by this CPU "
                       "(choose auto, avx512, avx2 or base)", want);
        api->free_aligned(s);
        return PL_EUNSUPPORTED;
    }

    int threads = env->threads < 1 ? 1 : env->threads;
    if (threads > PL_SIMD_MAX_THREADS)
        threads = PL_SIMD_MAX_THREADS;
    s->threads = threads;
    s->wbuf = api->calloc((size_t)threads, sizeof *s->wbuf);
    s->tids = api->calloc((size_t)threads, sizeof *s->tids);
    if (!s->wbuf || !s->tids) {
        api->free(s->wbuf);
        api->free(s->tids);
        api->free_aligned(s);
        return PL_ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    atomic_init(&s->state, 0);
    atomic_init(&s->sleepers, 0);
    atomic_init(&s->active, 0);
    atomic_init(&s->stop, 0);
    atomic_init(&s->done, 0);
    for (int v = 0; v < PL_SIMD_MAX_THREADS; v++)
        atomic_init(&s->home[v].next, 0);
    for (int i = 1; i < threads; i++) {
        pl__worker_arg *a = api->alloc(sizeof *a);
        if (!a)
            break;
        a->s = s;
        a->index = i;
        if (pthread_create(&s->tids[s->nstarted], NULL, worker_main, a) != 0) {
            api->free(a);
            break;
        }
        s->nstarted++;
    }
    /* fewer workers than asked only costs speed: tasks never depend on them */
    s->threads = s->nstarted + 1;
    *state = s;
    return PL_OK;
}

static void simd_fini(void *state)
{
    pl__simd *s = state;
    if (!s)
        return;
    pool_stop(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    for (int i = 0; i < PL__SIMD_SLOTS; i++)
        if (s->slot[i].p)
            s->api->free_aligned(s->slot[i].p);
    for (int i = 0; i < s->threads; i++)
        if (s->wbuf[i].p)
            s->api->free_aligned(s->wbuf[i].p);
    s->api->free(s->wbuf);
    s->api->free(s->tids);
    s->api->free_aligned(s);
}

static const pl_param_spec simd_params[] = {
    {.name = "isa", .type = PL_PARAM_STRING, .def = "auto", .min = 1, .max = 0,
     .doc = "instruction set: auto, avx512, avx2 or base (results are bit-identical "
            "across thread counts, not across instruction sets)"},
    {.name = NULL},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_BACKEND,
    .name = "simd",
    .version = "1.1.0",
    .description = "SIMD (AVX-512/AVX2/SSE2/NEON via SIMDe), multi-threaded, deterministic kernels",
    .params = simd_params,
    .init = simd_init,
    .fini = simd_fini,
    .ops = &simd_ops,
    .reserved = {0},
};
