/*
 * bench_kernels — times the backend kernels of one training step of the
 * seed SimpleCNN (MNIST 1x28x28, batch 64, Adam) for ref and simd at 1 and
 * 2 threads, the vgg_mini convolutions for simd and depthwise convolutions
 * for both. Prints medians.
 *
 *   bench_kernels [--runs N] [--steps N] [--vgg] [--detail] [--isa NAME] [--cpu] [--unfused]
 *                 [--depthwise] [--resnet20] [--only ref|simd|vgg|depthwise|resnet20]
 *
 * --resnet20 times resnet20's distinct convolutions (batch 64, MNIST
 * shapes) and their sum over one training step's 21 convolutions.
 * PL_BENCH_PLUGIN_DIR (environment) loads the plugins from another build's
 * plugins/backends folder: A/B timing of two builds with one binary.
 *
 * --depthwise times depthwise 3x3 convolutions on MobileNet-like shapes
 * (batch 64, 96 channels at 14x14 with stride 1 and 2, 48 at 28x28) through
 * the grouped slots of ref and simd, and through simd's dense kernels one
 * channel at a time (what the host does for a backend without the slots).
 *
 * --unfused calls conv, relu and pool one by one even where the backend
 * offers the fused slots (ABI 1.1 forward, 1.2 backward; the host uses them).
 * --cpu times with the calling thread's CPU clock instead of the wall clock
 * (useful on a shared machine for single-thread tuning; with 2 threads it
 * counts the caller's share only).
 * Not a test and not installed: a tuning tool. It loads the plugins
 * straight from the build tree with a minimal host API of its own.
 */
#include <prunelab/plugin.h>

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *g_isa = "auto";
static int g_fused = 1; /* use the ABI 1.1 fused slots when the backend has them */

static void *h_alloc(size_t n) { return n ? malloc(n) : NULL; }
static void *h_calloc(size_t n, size_t s) { return calloc(n, s); }
static void *h_realloc(void *p, size_t n) { return realloc(p, n); }
static void h_free(void *p) { free(p); }
static void *h_alloc_aligned(size_t n) { return n ? aligned_alloc(64, (n + 63) / 64 * 64) : NULL; }
static void h_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    (void)level;
}
static void h_set_error(pl_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("plugin error: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    (void)ctx;
}
static int64_t h_param_int(const pl_params *p, const char *n) { (void)p, (void)n; return 0; }
static double h_param_float(const pl_params *p, const char *n) { (void)p, (void)n; return 0; }
static const char *h_param_str(const pl_params *p, const char *n)
{
    (void)p;
    return strcmp(n, "isa") == 0 ? g_isa : "";
}
static int h_param_bool(const pl_params *p, const char *n) { (void)p, (void)n; return 0; }

static const pl_host_api g_api = {
    .struct_size = sizeof(pl_host_api), .abi_minor = PL_ABI_MINOR,
    .alloc = h_alloc, .calloc = h_calloc, .realloc = h_realloc, .free = h_free,
    .alloc_aligned = h_alloc_aligned, .free_aligned = h_free,
    .log = h_log, .set_error = h_set_error,
    .param_int = h_param_int, .param_float = h_param_float,
    .param_str = h_param_str, .param_bool = h_param_bool,
};

typedef struct backend {
    const pl_plugin_desc *desc;
    const pl_backend_ops *ops;
    void *st;
} backend;

static int backend_open(backend *b, const char *name, int threads)
{
    char path[4096];
    const char *dir = getenv("PL_BENCH_PLUGIN_DIR"); /* another build's plugins, for A/B */
    snprintf(path, sizeof path, "%s/%s.so", dir && *dir ? dir : PL_BENCH_PLUGIN_DIR, name);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "%s\n", dlerror());
        return -1;
    }
    b->desc = dlsym(h, PL_PLUGIN_SYMBOL);
    if (!b->desc || b->desc->abi_major != PL_ABI_MAJOR || b->desc->kind != PL_KIND_BACKEND)
        return -1;
    b->ops = b->desc->ops;
    pl_env env = {.api = &g_api, .threads = threads, .seed = 1};
    b->st = NULL;
    return b->desc->init ? (int)b->desc->init(&env, &b->st) : 0;
}

static void backend_close(backend *b)
{
    if (b->desc->fini)
        b->desc->fini(b->st);
}

static clockid_t g_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec ts;
    clock_gettime(g_clock, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t g_rng = 88172645463325252ull;
static float frand(void) /* uniform in [-1, 1) */
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static float *fbuf(size_t n, float scale)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < n; i++)
        p[i] = frand() * scale;
    return p;
}

/* ---- the SimpleCNN step ------------------------------------------------ */

enum { K_C1F, K_R1F, K_P1F, K_C2F, K_R2F, K_P2F, K_L1F, K_R3F, K_L2F, K_XENT,
       K_L2W, K_L2D, K_R3B, K_L1W, K_L1D, K_P2B, K_R2B, K_C2W, K_C2D, K_P1B, K_R1B, K_C1W,
       K_ADAM, K_COUNT };
static const char *const k_names[K_COUNT] = {
    "conv1 fwd", "relu1 fwd", "pool1 fwd", "conv2 fwd", "relu2 fwd", "pool2 fwd", "fc1 fwd",
    "relu3 fwd", "fc2 fwd", "softmax_xent", "fc2 dW", "fc2 dX", "relu3 bwd", "fc1 dW",
    "fc1 dX", "pool2 bwd", "relu2 bwd", "conv2 dW", "conv2 dX", "pool1 bwd", "relu1 bwd",
    "conv1 dW", "adam x8"};
_Static_assert(sizeof k_names / sizeof k_names[0] == K_COUNT, "k_names");

typedef struct net {
    int B;
    pl_conv2d_shape c1, c2;
    pl_pool2d_shape p1, p2;
    float *x, *w1, *b1, *a1, *r1, *q1, *w2, *b2, *a2, *r2, *q2, *w3, *b3, *h3, *r3, *w4, *b4, *z;
    float *dz, *dr3, *dq2, *dr2, *dq1, *dr1, *dw[8], *m[8], *v[8];
    int32_t *am1, *am2, *lab;
    int64_t sizes[8];
    float *params[8];
} net;

static void net_init(net *n)
{
    int B = n->B = 64;
    n->c1 = (pl_conv2d_shape){B, 1, 28, 28, 4, 3, 3, 1, 1, 1, 1, 28, 28};
    n->p1 = (pl_pool2d_shape){B, 4, 28, 28, 2, 2, 2, 2, 0, 0, 14, 14};
    n->c2 = (pl_conv2d_shape){B, 4, 14, 14, 8, 3, 3, 1, 1, 1, 1, 14, 14};
    n->p2 = (pl_pool2d_shape){B, 8, 14, 14, 2, 2, 2, 2, 0, 0, 7, 7};
    n->x = fbuf((size_t)B * 784, 1);
    n->a1 = fbuf((size_t)B * 4 * 784, 0);
    n->r1 = fbuf((size_t)B * 4 * 784, 0);
    n->q1 = fbuf((size_t)B * 4 * 196, 0);
    n->a2 = fbuf((size_t)B * 8 * 196, 0);
    n->r2 = fbuf((size_t)B * 8 * 196, 0);
    n->q2 = fbuf((size_t)B * 392, 0);
    n->h3 = fbuf((size_t)B * 64, 0);
    n->r3 = fbuf((size_t)B * 64, 0);
    n->z = fbuf((size_t)B * 10, 0);
    n->dz = fbuf((size_t)B * 10, 0);
    n->dr3 = fbuf((size_t)B * 64, 0);
    n->dq2 = fbuf((size_t)B * 392, 0);
    n->dr2 = fbuf((size_t)B * 8 * 196, 0);
    n->dq1 = fbuf((size_t)B * 4 * 196, 0);
    n->dr1 = fbuf((size_t)B * 4 * 784, 0);
    n->am1 = malloc(sizeof(int32_t) * B * 4 * 196);
    n->am2 = malloc(sizeof(int32_t) * B * 8 * 49);
    n->lab = malloc(sizeof(int32_t) * B);
    for (int i = 0; i < B; i++)
        n->lab[i] = i % 10;
    int64_t sz[8] = {36, 4, 288, 8, 25088, 64, 640, 10};
    float sc[8] = {0.33f, 0.1f, 0.16f, 0.1f, 0.05f, 0.05f, 0.12f, 0.1f};
    for (int i = 0; i < 8; i++) {
        n->sizes[i] = sz[i];
        n->params[i] = fbuf((size_t)sz[i], sc[i]);
        n->dw[i] = fbuf((size_t)sz[i], 0);
        n->m[i] = fbuf((size_t)sz[i], 0);
        n->v[i] = fbuf((size_t)sz[i], 0);
        memset(n->m[i], 0, sizeof(float) * sz[i]);
        memset(n->v[i], 0, sizeof(float) * sz[i]);
    }
    n->w1 = n->params[0], n->b1 = n->params[1], n->w2 = n->params[2], n->b2 = n->params[3];
    n->w3 = n->params[4], n->b3 = n->params[5], n->w4 = n->params[6], n->b4 = n->params[7];
}

#define T(k, call)                                                                 \
    do {                                                                           \
        double t0_ = now();                                                        \
        if (call)                                                                  \
            abort();                                                               \
        if (kt)                                                                    \
            kt[k] += now() - t0_;                                                  \
    } while (0)

static void net_step(const backend *be, net *n, int64_t step, double *kt)
{
    const pl_backend_ops *o = be->ops;
    void *s = be->st;
    int B = n->B;
    double loss;
    int64_t right;
    if (g_fused && o->conv2d_forward_relu_maxpool && o->linear_forward_relu) {
        /* as the host calls an ABI 1.1 backend: conv+relu+pool and
         * linear+relu in one call each (timed under the conv/linear rows) */
        T(K_C1F, o->conv2d_forward_relu_maxpool(s, &n->c1, n->x, n->w1, n->b1, n->r1, &n->p1, n->q1, n->am1));
        T(K_C2F, o->conv2d_forward_relu_maxpool(s, &n->c2, n->q1, n->w2, n->b2, n->r2, &n->p2, n->q2, n->am2));
        T(K_L1F, o->linear_forward_relu(s, B, 392, 64, n->q2, n->w3, n->b3, n->r3));
    } else {
        T(K_C1F, o->conv2d_forward(s, &n->c1, n->x, n->w1, n->b1, n->a1));
        T(K_R1F, o->relu_forward(s, (int64_t)B * 4 * 784, n->a1, n->r1));
        T(K_P1F, o->maxpool2d_forward(s, &n->p1, n->r1, n->q1, n->am1));
        T(K_C2F, o->conv2d_forward(s, &n->c2, n->q1, n->w2, n->b2, n->a2));
        T(K_R2F, o->relu_forward(s, (int64_t)B * 8 * 196, n->a2, n->r2));
        T(K_P2F, o->maxpool2d_forward(s, &n->p2, n->r2, n->q2, n->am2));
        T(K_L1F, o->linear_forward(s, B, 392, 64, n->q2, n->w3, n->b3, n->h3));
        T(K_R3F, o->relu_forward(s, (int64_t)B * 64, n->h3, n->r3));
    }
    T(K_L2F, o->linear_forward(s, B, 64, 10, n->r3, n->w4, n->b4, n->z));
    T(K_XENT, o->softmax_xent(s, B, 10, n->z, n->lab, 1.0f / B, n->dz, &loss, &right));
    T(K_L2W, o->linear_backward_weight(s, B, 64, 10, n->r3, n->dz, n->dw[6], n->dw[7]));
    T(K_L2D, o->linear_backward_data(s, B, 64, 10, n->dz, n->w4, n->dr3));
    T(K_R3B, o->relu_backward(s, (int64_t)B * 64, n->r3, n->dr3, n->dr3));
    T(K_L1W, o->linear_backward_weight(s, B, 392, 64, n->q2, n->dr3, n->dw[4], n->dw[5]));
    T(K_L1D, o->linear_backward_data(s, B, 392, 64, n->dr3, n->w3, n->dq2));
    if (g_fused && o->maxpool2d_relu_backward) { /* ABI 1.2: timed under the pool rows */
        T(K_P2B, o->maxpool2d_relu_backward(s, &n->p2, n->dq2, n->am2, n->r2, n->dr2));
    } else {
        T(K_P2B, o->maxpool2d_backward(s, &n->p2, n->dq2, n->am2, n->dr2));
        T(K_R2B, o->relu_backward(s, (int64_t)B * 8 * 196, n->r2, n->dr2, n->dr2));
    }
    T(K_C2W, o->conv2d_backward_weight(s, &n->c2, n->q1, n->dr2, n->dw[2], n->dw[3]));
    T(K_C2D, o->conv2d_backward_data(s, &n->c2, n->dr2, n->w2, n->dq1));
    if (g_fused && o->maxpool2d_relu_backward) {
        T(K_P1B, o->maxpool2d_relu_backward(s, &n->p1, n->dq1, n->am1, n->r1, n->dr1));
    } else {
        T(K_P1B, o->maxpool2d_backward(s, &n->p1, n->dq1, n->am1, n->dr1));
        T(K_R1B, o->relu_backward(s, (int64_t)B * 4 * 784, n->r1, n->dr1, n->dr1));
    }
    T(K_C1W, o->conv2d_backward_weight(s, &n->c1, n->x, n->dr1, n->dw[0], n->dw[1]));
    pl_adam_hparams h = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                         .weight_decay = 0, .step = step};
    double t0 = now();
    for (int i = 0; i < 8; i++)
        if (o->adam_update(s, &h, n->sizes[i], n->params[i], n->dw[i], n->m[i], n->v[i], NULL))
            abort();
    if (kt)
        kt[K_ADAM] += now() - t0;
}

static void bench_simplecnn(const char *name, int threads, int runs, int steps, int detail)
{
    backend be;
    if (backend_open(&be, name, threads)) {
        fprintf(stderr, "cannot open %s\n", name);
        return;
    }
    net n;
    g_rng = 88172645463325252ull;
    net_init(&n);
    int64_t step = 1;
    for (int i = 0; i < 3; i++)
        net_step(&be, &n, step++, NULL);
    double *t = malloc(sizeof(double) * runs);
    double *kt = calloc((size_t)K_COUNT * runs, sizeof(double));
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        for (int i = 0; i < steps; i++)
            net_step(&be, &n, step++, NULL);
        t[r] = (now() - t0) / steps;
        for (int i = 0; i < steps; i++)
            net_step(&be, &n, step++, kt + (size_t)K_COUNT * r);
    }
    double med = median(t, runs);
    printf("%-6s threads=%d  step %8.1f us   x938 = %7.3f s   (median of %d runs x %d steps)\n",
           name, threads, med * 1e6, med * 938, runs, steps);
    if (detail) {
        double *col = malloc(sizeof(double) * runs);
        for (int k = 0; k < K_COUNT; k++) {
            for (int r = 0; r < runs; r++)
                col[r] = kt[(size_t)K_COUNT * r + k] / steps;
            printf("    %-13s %8.2f us\n", k_names[k], median(col, runs) * 1e6);
        }
        free(col);
    }
    free(t);
    free(kt);
    backend_close(&be);
}

/* ---- vgg_mini convolutions -------------------------------------------- */

static const pl_conv2d_shape vgg_shapes[] = {
    {64, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1, 28, 28},
    {64, 32, 28, 28, 32, 3, 3, 1, 1, 1, 1, 28, 28},
    {64, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 14, 14},
    {64, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 14, 14},
};

/* ResNet-20 on MNIST (configs/models/resnet20.yaml): its distinct
 * convolutions, with how many times each occurs in the network */
static const pl_conv2d_shape r20_shapes[] = {
    {64, 1, 28, 28, 16, 3, 3, 1, 1, 1, 1, 28, 28},
    {64, 16, 28, 28, 16, 3, 3, 1, 1, 1, 1, 28, 28},
    {64, 16, 28, 28, 32, 3, 3, 2, 2, 1, 1, 14, 14},
    {64, 16, 28, 28, 32, 1, 1, 2, 2, 0, 0, 14, 14},
    {64, 32, 14, 14, 32, 3, 3, 1, 1, 1, 1, 14, 14},
    {64, 32, 14, 14, 64, 3, 3, 2, 2, 1, 1, 7, 7},
    {64, 32, 14, 14, 64, 1, 1, 2, 2, 0, 0, 7, 7},
    {64, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1, 7, 7},
};
static const int r20_count[] = {1, 6, 1, 1, 5, 1, 1, 5};

static void bench_convs(const char *tag, const pl_conv2d_shape *shapes, const int *count, int ns,
                        int threads, int runs)
{
    backend be;
    if (backend_open(&be, "simd", threads))
        return;
    double tot[3] = {0, 0, 0}, totf = 0;
    for (int i = 0; i < ns; i++) {
        const pl_conv2d_shape *s = &shapes[i];
        size_t nx = (size_t)s->n * s->cin * s->h * s->w, ny = (size_t)s->n * s->cout * s->oh * s->ow;
        size_t nw = (size_t)s->cout * s->cin * s->kh * s->kw;
        float *x = fbuf(nx, 1), *y = fbuf(ny, 1), *w = fbuf(nw, 0.1f), *b = fbuf((size_t)s->cout, 0.1f);
        float *dx = fbuf(nx, 0), *dw = fbuf(nw, 0), *db = fbuf((size_t)s->cout, 0);
        double flops = 2.0 * s->n * s->cout * s->oh * s->ow * s->cin * s->kh * s->kw;
        double tf[64], tb[64], tw[64];
        for (int r = -1; r < runs; r++) {
            double t0 = now();
            be.ops->conv2d_forward(be.st, s, x, w, b, y);
            double t1 = now();
            if (s->cin > 1)
                be.ops->conv2d_backward_data(be.st, s, y, w, dx);
            double t2 = now();
            be.ops->conv2d_backward_weight(be.st, s, x, y, dw, db);
            double t3 = now();
            if (r >= 0)
                tf[r] = t1 - t0, tb[r] = t2 - t1, tw[r] = t3 - t2;
        }
        double mf = median(tf, runs), mb = median(tb, runs), mw = median(tw, runs);
        printf("%s conv %2d->%2d %dx%d s%d %2dx%2d threads=%d  fwd %7.0f us %5.0f GF/s | dX %7.0f us %5.0f GF/s | dW %7.0f us %5.0f GF/s\n",
               tag, s->cin, s->cout, s->kh, s->kw, s->stride_h, s->h, s->w, threads, mf * 1e6,
               flops / mf * 1e-9, mb * 1e6, s->cin > 1 ? flops / mb * 1e-9 : 0.0, mw * 1e6,
               flops / mw * 1e-9);
        int c = count ? count[i] : 1;
        tot[0] += c * mf, tot[1] += c * mb, tot[2] += c * mw, totf += c * flops;
        free(x), free(y), free(w), free(b), free(dx), free(dw), free(db);
    }
    if (count)
        printf("%s all convolutions of a step (x occurrences), threads=%d: fwd %.2f ms, dX %.2f ms, dW %.2f ms, "
               "%.2f ms in all, %.0f GF/s\n", tag, threads, tot[0] * 1e3, tot[1] * 1e3, tot[2] * 1e3,
               (tot[0] + tot[1] + tot[2]) * 1e3, 3 * totf / (tot[0] + tot[1] + tot[2]) * 1e-9);
    backend_close(&be);
}

/* ---- depthwise 3x3 (MobileNet-like) ------------------------------------ */

/* What the host does for a backend without the grouped slots: every group
 * (here: every channel) gathered into a batch of its own, the dense kernel,
 * the result scattered back. op: 0 forward, 1 backward data, 2 backward weight. */
static void dense_per_group(const backend *be, const pl_conv2d_shape *s, int op, const float *x,
                            const float *w, const float *b, const float *dy, float *out, float *out2,
                            float *gx, float *gy)
{
    pl_conv2d_shape t = *s;
    t.cin = t.cout = 1;
    size_t ip = (size_t)s->h * s->w, opl = (size_t)s->oh * s->ow, kk = (size_t)s->kh * s->kw;
    for (int c = 0; c < s->cin; c++) {
        if (op != 1)
            for (int i = 0; i < s->n; i++)
                memcpy(gx + i * ip, x + ((size_t)i * s->cin + c) * ip, sizeof(float) * ip);
        if (op != 0)
            for (int i = 0; i < s->n; i++)
                memcpy(gy + i * opl, dy + ((size_t)i * s->cin + c) * opl, sizeof(float) * opl);
        pl_status st = op == 0   ? be->ops->conv2d_forward(be->st, &t, gx, w + c * kk, b + c, gy)
                       : op == 1 ? be->ops->conv2d_backward_data(be->st, &t, gy, w + c * kk, gx)
                                 : be->ops->conv2d_backward_weight(be->st, &t, gx, gy, out + c * kk, out2 + c);
        if (st)
            abort();
        if (op == 0)
            for (int i = 0; i < s->n; i++)
                memcpy(out + ((size_t)i * s->cin + c) * opl, gy + i * opl, sizeof(float) * opl);
        if (op == 1)
            for (int i = 0; i < s->n; i++)
                memcpy(out + ((size_t)i * s->cin + c) * ip, gx + i * ip, sizeof(float) * ip);
    }
}

static void bench_depthwise(int runs)
{
    pl_conv2d_shape shapes[3] = {
        {64, 96, 14, 14, 96, 3, 3, 1, 1, 1, 1, 14, 14},
        {64, 96, 14, 14, 96, 3, 3, 2, 2, 1, 1, 7, 7},
        {64, 48, 28, 28, 48, 3, 3, 1, 1, 1, 1, 28, 28},
    };
    static const char *const ops[3] = {"fwd", "dX ", "dW "};
    printf("depthwise 3x3 (groups == cin == cout), GFLOP/s = 2*n*c*oh*ow*9 / median time\n");
    for (int i = 0; i < 3; i++) {
        const pl_conv2d_shape *s = &shapes[i];
        size_t nx = (size_t)s->n * s->cin * s->h * s->w, ny = (size_t)s->n * s->cout * s->oh * s->ow;
        size_t nw = (size_t)s->cout * s->kh * s->kw;
        float *x = fbuf(nx, 1), *y = fbuf(ny, 1), *w = fbuf(nw, 0.3f), *b = fbuf((size_t)s->cout, 0.1f);
        float *dx = fbuf(nx, 0), *dw = fbuf(nw, 0), *db = fbuf((size_t)s->cout, 0);
        float *gx = fbuf((size_t)s->n * s->h * s->w, 0), *gy = fbuf((size_t)s->n * s->oh * s->ow, 0);
        double flops = 2.0 * s->n * s->cout * s->oh * s->ow * s->kh * s->kw;
        printf("  n%d c%d %dx%d stride %d:\n", s->n, s->cin, s->h, s->w, s->stride_h);
        /* ref (1 thread), simd depthwise (1, 2 threads), simd dense per group (1, 2 threads) */
        const char *names[5] = {"ref grouped", "simd depthwise", "simd depthwise", "simd dense/group", "simd dense/group"};
        const char *bes[5] = {"ref", "simd", "simd", "simd", "simd"};
        int thr[5] = {1, 1, 2, 1, 2}, per_group[5] = {0, 0, 0, 1, 1};
        for (int v = 0; v < 5; v++) {
            backend be;
            if (backend_open(&be, bes[v], thr[v]) || !be.ops->conv2d_grouped_forward) {
                fprintf(stderr, "cannot open %s with grouped slots\n", bes[v]);
                continue;
            }
            int nr = v == 0 ? 3 : runs;
            printf("    %-17s threads=%d", names[v], thr[v]);
            for (int op = 0; op < 3; op++) {
                double t[64];
                for (int r = -1; r < nr; r++) {
                    double t0 = now();
                    pl_status st = PL_OK;
                    if (per_group[v])
                        dense_per_group(&be, s, op, x, w, b, y, op == 1 ? dx : op == 0 ? y : dw, db, gx, gy);
                    else if (op == 0)
                        st = be.ops->conv2d_grouped_forward(be.st, s, s->cin, x, w, b, y);
                    else if (op == 1)
                        st = be.ops->conv2d_grouped_backward_data(be.st, s, s->cin, y, w, dx);
                    else
                        st = be.ops->conv2d_grouped_backward_weight(be.st, s, s->cin, x, y, dw, db);
                    if (st)
                        abort();
                    if (r >= 0)
                        t[r] = now() - t0;
                }
                double m = median(t, nr);
                printf(" | %s %8.0f us %6.2f GF/s", ops[op], m * 1e6, flops / m * 1e-9);
            }
            printf("\n");
            backend_close(&be);
        }
        free(x), free(y), free(w), free(b), free(dx), free(dw), free(db), free(gx), free(gy);
    }
}

int main(int argc, char **argv)
{
    int runs = 7, steps = 100, vgg = 0, detail = 0, dw = 0, r20 = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--vgg"))
            vgg = 1;
        else if (!strcmp(argv[i], "--depthwise"))
            dw = 1;
        else if (!strcmp(argv[i], "--resnet20"))
            r20 = 1;
        else if (!strcmp(argv[i], "--detail"))
            detail = 1;
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc)
            g_isa = argv[++i];
        else if (!strcmp(argv[i], "--cpu"))
            g_clock = CLOCK_THREAD_CPUTIME_ID;
        else if (!strcmp(argv[i], "--unfused"))
            g_fused = 0;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--runs N] [--steps N] [--vgg] [--detail] [--isa NAME] [--cpu] [--unfused] [--depthwise] [--resnet20] [--only ref|simd|vgg|depthwise|resnet20]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 5)
        runs = 5;
    if (runs > 64)
        runs = 64;
    int simplecnn = !only || !strcmp(only, "ref") || !strcmp(only, "simd");
    printf("%s; isa=%s, %s clock\n",
           simplecnn ? "SimpleCNN training step (batch 64, Adam), backend kernels only" : "backend kernels only",
           g_isa, g_clock == CLOCK_MONOTONIC ? "wall" : "thread CPU");
    if (!only || !strcmp(only, "ref"))
        bench_simplecnn("ref", 1, 5, steps / 20 > 0 ? steps / 20 : 1, detail);
    if (!only || !strcmp(only, "simd")) {
        bench_simplecnn("simd", 1, runs, steps, detail);
        bench_simplecnn("simd", 2, runs, steps, detail);
    }
    if (vgg || (only && !strcmp(only, "vgg"))) {
        bench_convs("vgg", vgg_shapes, NULL, 4, 1, runs);
        bench_convs("vgg", vgg_shapes, NULL, 4, 2, runs);
    }
    if (r20 || (only && !strcmp(only, "resnet20"))) {
        bench_convs("resnet20", r20_shapes, r20_count, 8, 1, runs);
        bench_convs("resnet20", r20_shapes, r20_count, 8, 2, runs);
    }
    if (dw || (only && !strcmp(only, "depthwise")))
        bench_depthwise(runs);
    return 0;
}
