/*
 * prunelab/plugin.h — the plugin ABI. The ONLY header a plugin includes.
 *
 * A plugin is a shared object that exports exactly one data symbol,
 *
 *     PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = { ... };
 *
 * holding static facts (ABI version, struct size, type-size fingerprint,
 * kind, name, version, description, parameter spec) and pointers to its
 * init/fini and its kind's function table. The host validates all of that
 * static data before it calls any plugin code; then it calls init() with a
 * pl_env (host API table, validated parameters, seed, thread count) and
 * hands the returned state pointer to every later call.
 *
 * Plugins never link against the host: everything they need from it comes
 * through pl_host_api, an append-only table (new slots only at the end; a
 * plugin checks api->struct_size before using a slot newer than its own
 * header). Plugins see plain pointers and shapes, never host structs or
 * libyaml types.
 *
 * Minimal criterion plugin:
 *
 *     #include <prunelab/plugin.h>
 *     static pl_status l1_score(void *st, const pl_unit_view *v,
 *                               double *scores, int64_t *n_out) {
 *         (void)st;
 *         for (int64_t u = 0; u < v->units; u++) {
 *             double s = 0;
 *             for (int64_t i = 0; i < v->unit_size; i++)
 *                 s += fabs(v->weight[u * v->unit_size + i]);
 *             scores[u] = s;
 *         }
 *         *n_out = v->units;
 *         return PL_OK;
 *     }
 *     static const pl_criterion_ops ops = { .needs = 0, .score = l1_score };
 *     PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
 *         PL_PLUGIN_DESC_HEADER,
 *         .kind = PL_KIND_CRITERION, .name = "l1", .version = "1.0.0",
 *         .description = "sum of |w| over the unit",
 *         .ops = &ops,
 *     };
 *
 * Status codes: functions return pl_status (0 ok, negative error). On error
 * a plugin should call env->api->set_error(env->ctx, "...") with a message
 * that names the cause; the host prefixes it with the plugin's name.
 */
#ifndef PRUNELAB_PLUGIN_H
#define PRUNELAB_PLUGIN_H

#include <signal.h> /* sig_atomic_t (pl_executor_job) */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versions ------------------------------------------------------------ */

#define PL_ABI_MAJOR 1 /* bumped on any incompatible change; host refuses others */
#define PL_ABI_MINOR 5 /* bumped when slots are appended; host refuses newer */
/* The minor that added pl_criterion_ops.merge: an older plugin's slot is
 * reserved and never read. */
#define PL_ABI_MINOR_MERGE 5

#define PL_PLUGIN_SYMBOL "prunelab_plugin_desc"

#if defined(_WIN32)
#define PL_PLUGIN_EXPORT __declspec(dllexport)
#else
#define PL_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* Sizes of the types that cross the boundary, packed 4 bits each. A plugin
 * built for another data model (e.g. 32-bit) is refused before it runs. */
#define PL_ABI_FINGERPRINT                                                     \
    ((uint32_t)(sizeof(void *) | (sizeof(size_t) << 4) |                       \
                (sizeof(int64_t) << 8) | (sizeof(double) << 12) |             \
                (sizeof(float) << 16) | (sizeof(int) << 20) |                  \
                (sizeof(long) << 24)))

/* ---- status -------------------------------------------------------------- */

typedef enum pl_status {
    PL_OK = 0,
    PL_ENOMEM = -1,       /* allocation failed or a size would overflow */
    PL_EINVAL = -2,       /* bad argument or configuration value */
    PL_EIO = -3,          /* file could not be read or written */
    PL_EFORMAT = -4,      /* file contents are malformed */
    PL_ERANGE = -5,       /* a value is out of its allowed range */
    PL_EUNSUPPORTED = -6, /* the operation or shape is not supported */
    PL_EPLUGIN = -7,      /* a plugin refused, failed, or broke its contract */
    PL_EDIVERGED = -8,    /* training produced NaN/Inf */
    PL_EINTR = -9,        /* interrupted by a signal */
    PL_ENOTFOUND = -10,   /* a named thing does not exist */
    PL_ECONFIG = -11,     /* configuration error (exit status 2) */
    PL_EMISSED = -12,     /* pruning missed its target */
    PL_ERUNFAILED = -13   /* a run failed on its own and was recorded as failed (ABI 1.3; host only) */
} pl_status;

/* ---- kinds ---------------------------------------------------------------- */

typedef enum pl_kind { /* persisted; append only */
    PL_KIND_CRITERION = 1,
    PL_KIND_SCHEDULE = 2,
    PL_KIND_DATASET = 3,
    PL_KIND_BACKEND = 4,
    PL_KIND_EXECUTOR = 5 /* ABI 1.3 */
} pl_kind;

/* ---- plugin parameters ------------------------------------------------------
 * A plugin declares the keys it accepts under its own YAML map (e.g.
 * `prune.criterion: {plugin: taylor, batches: 8}`). Nested maps are
 * flattened to dotted names ("normalize.mean"). The host rejects unknown keys,
 * wrong types and out-of-range values with file:line:col before init() runs,
 * and fills in defaults; the getters in pl_host_api therefore cannot fail. */

typedef enum pl_param_type {
    PL_PARAM_INT = 1,
    PL_PARAM_FLOAT = 2,
    PL_PARAM_STRING = 3,
    PL_PARAM_BOOL = 4
} pl_param_type;

typedef struct pl_param_spec {
    const char *name;   /* [a-z0-9_.]+ ; NULL terminates the array */
    pl_param_type type;
    const char *def;    /* default as YAML text; NULL = required */
    double min, max;    /* inclusive range for INT/FLOAT (ignored if min>max) */
    const char *doc;    /* one line: what it means, shown in errors */
} pl_param_spec;

typedef struct pl_params pl_params; /* opaque, owned by the host */
typedef struct pl_ctx pl_ctx;       /* opaque host context for errors */

/* ---- deterministic RNG (xoshiro256**, seeded by splitmix64) --------------- */

typedef struct pl_rng {
    uint64_t s[4];
} pl_rng;

/* ---- host API: append-only --------------------------------------------- */

enum { PL_LOG_DEBUG = 0, PL_LOG_INFO = 1, PL_LOG_WARN = 2, PL_LOG_ERROR = 3 };

typedef struct pl_host_api {
    uint32_t struct_size; /* sizeof(pl_host_api) as the host knows it */
    uint32_t abi_minor;

    /* memory: everything that crosses the boundary comes from here */
    void *(*alloc)(size_t n);             /* NULL on failure (and for n==0) */
    void *(*calloc)(size_t n, size_t size);
    void *(*realloc)(void *p, size_t n);
    void (*free)(void *p);
    /* 64-byte aligned allocation (SIMD); free with free_aligned */
    void *(*alloc_aligned)(size_t n);
    void (*free_aligned)(void *p);

    /* diagnostics */
    void (*log)(int level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
    void (*set_error)(pl_ctx *ctx, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

    /* validated parameters of this plugin instance (see pl_param_spec);
     * asking for a name not in the spec is a bug and returns 0/""/0 */
    int64_t (*param_int)(const pl_params *p, const char *name);
    double (*param_float)(const pl_params *p, const char *name);
    const char *(*param_str)(const pl_params *p, const char *name); /* lives as long as the instance */
    int (*param_bool)(const pl_params *p, const char *name);

    /* RNG: seed from a 64-bit seed and a stream name, so unrelated streams
     * of one run never overlap */
    void (*rng_seed)(pl_rng *r, uint64_t seed, const char *stream);
    uint64_t (*rng_u64)(pl_rng *r);
    double (*rng_uniform)(pl_rng *r); /* [0, 1) with 53 random bits */
} pl_host_api;

/* What every plugin instance is given at init; valid until fini returns. */
typedef struct pl_env {
    const pl_host_api *api;
    pl_ctx *ctx;             /* pass to api->set_error */
    const pl_params *params; /* this instance's validated parameters */
    uint64_t seed;           /* the run's seed */
    int threads;             /* thread budget (>= 1) */
    int reserved_i[7];
    void *reserved_p[8];
} pl_env;

/* ========================================================================= */
/* criterion                                                                   */
/* ========================================================================= */

typedef enum pl_granularity { /* persisted; append only */
    PL_GRAN_WEIGHT = 1,  /* unstructured: one unit = one weight */
    PL_GRAN_CHANNEL = 2, /* a conv output filter: cin*kh*kw weights */
    PL_GRAN_NEURON = 3,  /* a linear output unit: `in` weights */
    PL_GRAN_LAYER = 4    /* a whole layer: all its weights */
} pl_granularity;

typedef enum pl_layer_type { /* persisted; append only */
    PL_LAYER_CONV2D = 1,
    PL_LAYER_LINEAR = 2,
    PL_LAYER_MAXPOOL2D = 3,
    PL_LAYER_AVGPOOL2D = 4,
    PL_LAYER_RELU = 5,
    PL_LAYER_FLATTEN = 6,
    PL_LAYER_BATCHNORM2D = 7,
    PL_LAYER_DROPOUT = 8,
    /* ABI 1.4: graph models */
    PL_LAYER_ADD = 9,
    PL_LAYER_CONCAT = 10,
    PL_LAYER_GLOBAL_AVGPOOL = 11,
    /* a channel range [ch0, ch1) of one input (a packed multi-input ONNX graph) */
    PL_LAYER_SLICE = 12
} pl_layer_type;

#define PL_NEEDS_GRAD 1u        /* fill pl_unit_view.grads */
#define PL_NEEDS_ACTIVATIONS 2u /* fill pl_unit_view.act (ABI 1.3) */
#define PL_NEEDS_BATCHNORM 4u   /* fill pl_unit_view.bn_gamma (ABI 1.3); the host
                                 * refuses layers without a batchnorm2d after them */

/* Per-unit activation statistics (ABI 1.3, PL_NEEDS_ACTIVATIONS). A unit's
 * activation is its output after the layer's nonlinearity (the relu that
 * follows, through a batchnorm2d if one sits between; the raw output when
 * no relu follows), measured in evaluation mode on calibration batches
 * from the training split over every image and position. One entry per
 * output channel/neuron of the layer (for weight granularity, weight i
 * belongs to output unit i / (shape[1]*shape[2]*shape[3])). */
typedef struct pl_act_stats {
    int64_t units;       /* the layer's output channels/neurons */
    int64_t samples;     /* activations averaged per unit */
    const double *mean;  /* [units] E[a] */
    const double *sq;    /* [units] E[a²] */
    const double *zero;  /* [units] fraction of a == 0 (APoZ) */
    const void *reserved[4];
} pl_act_stats;

/* The units of one layer to score. Weights are laid out unit-major:
 * unit u owns weight[u*unit_size .. (u+1)*unit_size). For PL_GRAN_WEIGHT,
 * unit_size == 1 and units == the layer's weight count. */
typedef struct pl_unit_view {
    const char *layer;        /* layer name from the model file */
    int layer_index;          /* position in the model */
    pl_layer_type layer_type; /* CONV2D or LINEAR */
    pl_granularity granularity;
    int64_t units;            /* number of scores to produce */
    int64_t unit_size;        /* weights per unit */
    const float *weight;      /* [units][unit_size] */
    const float *bias;        /* [units] for channel/neuron, else NULL */
    const float *mask;        /* same layout as weight, 1 keep 0 pruned; NULL = none */
    int n_grads;              /* calibration batches (PL_NEEDS_GRAD), else 0 */
    const float *const *grads;/* n_grads arrays laid out like weight: dL_b/dw */
    int64_t shape[4];         /* the layer's weight shape: conv [cout,cin,kh,kw], linear [out,in,1,1] */
    /* ABI 1.3 (NULL from older hosts and when not asked for): */
    const pl_act_stats *act;  /* PL_NEEDS_ACTIVATIONS */
    const float *bn_gamma;    /* PL_NEEDS_BATCHNORM: γ[shape[0]] of the batchnorm2d after the layer */
    const void *reserved[4];
} pl_unit_view;

typedef struct pl_criterion_ops {
    unsigned needs; /* PL_NEEDS_* flags */
    /* required: one importance score per unit (higher = keep), written to
     * scores[0..units); *n_out = number written. Must be deterministic for a
     * given seed and input. */
    pl_status (*score)(void *state, const pl_unit_view *v, double *scores,
                       int64_t *n_out);
    /* ---- ABI 1.5, optional (NULL, or a plugin built for an older ABI: the
     * host only removes). Merging instead of removing: for each unit u of
     * the view (channel/neuron granularity), twin[u] = the unit u stands in
     * for (-1: none) and coef[u] = c >= 0 with u's activation ~ c times
     * twin[u]'s. When the host removes u and keeps twin[u] alive, it first
     * adds c times u's outgoing weights (the input columns of the layer
     * that reads u) to twin[u]'s, so the next layer still sees u's
     * contribution. The host only merges where that is exact up to the
     * fit: the layer's output reaches a single conv2d/linear through
     * relu, max/avg pooling, dropout or flatten only (no batchnorm, add,
     * concat); elsewhere it removes. Called after score() on the same
     * view; twin and coef are host-allocated [units]. twin[u] is read only
     * for units the host removes, and u is folded only when twin[u] is
     * kept: chains are not followed (if twin[u] is itself removed, u is
     * only removed), so a twin may name a twin of its own. Read only when
     * the plugin's abi_minor >= PL_ABI_MINOR_MERGE. */
    pl_status (*merge)(void *state, const pl_unit_view *v, int64_t *twin, double *coef);
    void *reserved[7];
} pl_criterion_ops;
#ifndef __cplusplus
/* appending slots never changes the size: needs + score + 8 (now merge + 7) */
_Static_assert(sizeof(pl_criterion_ops) == 10 * sizeof(void *), "pl_criterion_ops keeps its size");
#endif

/* ========================================================================= */
/* schedule                                                                    */
/* ========================================================================= */

#define PL_MAX_STEPS 64

typedef enum pl_scope { PL_SCOPE_LAYER = 1, PL_SCOPE_GLOBAL = 2 } pl_scope;

typedef struct pl_schedule_query {
    double target_sparsity; /* requested final sparsity over all prunable units */
    int n_layers;           /* prunable layers in scope */
    int reserved[8];
} pl_schedule_query;

/* The plan: prune at n_steps points; after step i the pruned fraction of the
 * final target is progress[i] (non-decreasing, in (0,1], last == 1). The host
 * turns that into unit counts per layer (scope LAYER) or one global count
 * (scope GLOBAL: normalised scores compared across layers, every layer keeps
 * at least max(1, ceil(floor*units)) units and loses at most cap*units). */
/* GLOBAL: how a layer's scores are made comparable with other layers'
 * (ABI 1.3; 0 from older plugins, which is the 1.2 behaviour). The score
 * s_u of each alive unit u of a layer becomes:
 *   MEAN  s_u / (mean of the layer's alive scores)
 *   LAMP  s_u² / Σ_{v ranked at or above u} s_v²  (Lee et al. 2021: rank
 *         the layer's alive units by score, ascending, ties by index; the
 *         layer's best unit scores 1, so no layer is emptied by ranking)
 *   NONE  s_u as it is (torch.nn.utils.prune.global_unstructured) */
typedef enum pl_norm { /* persisted; append only */
    PL_NORM_MEAN = 0,
    PL_NORM_LAMP = 1,
    PL_NORM_NONE = 2
} pl_norm;

typedef struct pl_schedule_plan {
    int n_steps;
    double progress[PL_MAX_STEPS];
    pl_scope scope;
    double floor; /* GLOBAL: min kept fraction per layer, in [0,1) */
    double cap;   /* GLOBAL: max pruned fraction per layer, in (0,1] */
    int normalize; /* GLOBAL: a pl_norm (ABI 1.3) */
    int reserved[7];
} pl_schedule_plan;

typedef struct pl_schedule_ops {
    /* required */
    pl_status (*plan)(void *state, const pl_schedule_query *q,
                      pl_schedule_plan *out);
    void *reserved[8];
} pl_schedule_ops;

/* ========================================================================= */
/* dataset                                                                     */
/* ========================================================================= */

typedef enum pl_split { PL_SPLIT_TRAIN = 1, PL_SPLIT_TEST = 2 } pl_split;

typedef struct pl_dataset_info {
    int64_t count;           /* examples in the split */
    int channels, height, width;
    int classes;
    char checksum[72];       /* e.g. "sha256:…" or "fnv64:…" of the source, for the manifest */
    uint32_t flags;          /* PL_DATASET_* (ABI 1.2; 0 from older plugins) */
    int reserved[7];
} pl_dataset_info;

/* read() may run on several threads at once on the same handle, for
 * disjoint outputs; the host then splits a batch over the backend's
 * threads (backend parallel_for). set_error may be called from such
 * concurrent reads; the host reports a failed batch by reading it again
 * on one thread. */
#define PL_DATASET_CONCURRENT_READ 1u

typedef struct pl_dataset_ops {
    /* required: open a split; *handle is passed back to read/close */
    pl_status (*open)(void *state, pl_split split, void **handle,
                      pl_dataset_info *info);
    /* required: fill n examples, by index, as normalised float NCHW into
     * images[n*c*h*w] and labels[n]. Indices are in [0, count). */
    pl_status (*read)(void *state, void *handle, const int64_t *indices,
                      int n, float *images, int32_t *labels);
    /* required */
    void (*close)(void *state, void *handle);
    void *reserved[8];
} pl_dataset_ops;

/* ========================================================================= */
/* backend                                                                     */
/* ========================================================================= */
/* All tensors are dense float32, contiguous, NCHW. Outputs are overwritten
 * (never accumulated). Kernels must not depend on the thread count for their
 * results (fix the reduction order). Pointers never alias unless stated.
 * Calls on one backend instance never overlap (an instance may keep one
 * thread pool and one set of scratch buffers); the host serialises them.
 * NaN inputs propagate. Pool padding is at most half the kernel. */

typedef struct pl_conv2d_shape {
    int n, cin, h, w;     /* input  x[n][cin][h][w] */
    int cout, kh, kw;     /* weight w[cout][cin][kh][kw], bias b[cout] */
    int stride_h, stride_w, pad_h, pad_w;
    int oh, ow;           /* output y[n][cout][oh][ow]; oh = (h+2ph-kh)/sh+1 */
} pl_conv2d_shape;

typedef struct pl_pool2d_shape {
    int n, c, h, w;       /* input x[n][c][h][w] */
    int kh, kw, stride_h, stride_w, pad_h, pad_w;
    int oh, ow;           /* output y[n][c][oh][ow] */
} pl_pool2d_shape;

typedef struct pl_adam_hparams {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step; /* 1-based step count after increment (PyTorch) */
} pl_adam_hparams;

typedef struct pl_sgd_hparams {
    float lr, momentum, dampening, weight_decay;
    int nesterov;
    int first_step; /* 1: momentum buffer is initialised to the gradient */
} pl_sgd_hparams;

/* A sparse matrix [rows][cols] in compressed sparse row form: the entries
 * of row r are values[row_ptr[r] .. row_ptr[r+1]) at columns col_idx[...],
 * columns ascending within a row; entries not stored are zero. Built and
 * owned by the host; a kernel only reads it (ABI 1.1). */
typedef struct pl_csr {
    int rows, cols;
    int64_t nnz;              /* row_ptr[rows] */
    const int64_t *row_ptr;   /* [rows + 1], row_ptr[0] == 0, non-decreasing */
    const int32_t *col_idx;   /* [nnz], in [0, cols) */
    const float *values;      /* [nnz] */
    const void *reserved[4];
} pl_csr;

typedef struct pl_backend_ops {
    /* y = b + Σ_{ci,ky,kx} w[co][ci][ky][kx] · x[ci][oy*sh-ph+ky][ox*sw-pw+kx]
     * (zero padding). b may be NULL. required */
    pl_status (*conv2d_forward)(void *st, const pl_conv2d_shape *s,
                                const float *x, const float *w,
                                const float *b, float *y);
    /* dx = ∂L/∂x given dy = ∂L/∂y. required */
    pl_status (*conv2d_backward_data)(void *st, const pl_conv2d_shape *s,
                                      const float *dy, const float *w,
                                      float *dx);
    /* dw = Σ_n ∂L/∂w, db = Σ_{n,oy,ox} dy (db may be NULL). required */
    pl_status (*conv2d_backward_weight)(void *st, const pl_conv2d_shape *s,
                                        const float *x, const float *dy,
                                        float *dw, float *db);
    /* y[n][out] = b + x[n][in] · w[out][in]^T; b may be NULL. required */
    pl_status (*linear_forward)(void *st, int n, int in, int out,
                                const float *x, const float *w,
                                const float *b, float *y);
    /* dx[n][in] = dy[n][out] · w[out][in]. required */
    pl_status (*linear_backward_data)(void *st, int n, int in, int out,
                                      const float *dy, const float *w,
                                      float *dx);
    /* dw[out][in] = dy^T · x, db[out] = Σ_n dy (db may be NULL). required */
    pl_status (*linear_backward_weight)(void *st, int n, int in, int out,
                                        const float *x, const float *dy,
                                        float *dw, float *db);
    /* y = max over the window (padding never wins); argmax (may be NULL)
     * receives the flat index h*w-plane offset (iy*w+ix) of the winner;
     * ties go to the first in row-major window order. required */
    pl_status (*maxpool2d_forward)(void *st, const pl_pool2d_shape *s,
                                   const float *x, float *y, int32_t *argmax);
    /* dx = scatter of dy to argmax (dx fully overwritten); argmax must come
     * from the maxpool2d_forward call with the same shape and input. required */
    pl_status (*maxpool2d_backward)(void *st, const pl_pool2d_shape *s,
                                    const float *dy, const int32_t *argmax,
                                    float *dx);
    /* y = mean over the window, divisor kh*kw (count_include_pad). required */
    pl_status (*avgpool2d_forward)(void *st, const pl_pool2d_shape *s,
                                   const float *x, float *y);
    pl_status (*avgpool2d_backward)(void *st, const pl_pool2d_shape *s,
                                    const float *dy, float *dx);
    /* y = max(x, 0); x and y may alias. required */
    pl_status (*relu_forward)(void *st, int64_t n, const float *x, float *y);
    /* dx = dy · [y > 0]; dy and dx may alias. required */
    pl_status (*relu_backward)(void *st, int64_t n, const float *y,
                               const float *dy, float *dx);
    /* Softmax cross-entropy over rows of logits[n][classes].
     * *loss_sum = Σ_rows -log softmax(logits)[label] (double accumulation,
     * row order); *correct = rows whose argmax (first max) == label;
     * if dlogits != NULL: dlogits = (softmax - onehot) * grad_scale.
     * Labels are in [0, classes). required */
    pl_status (*softmax_xent)(void *st, int n, int classes,
                              const float *logits, const int32_t *labels,
                              float grad_scale, float *dlogits,
                              double *loss_sum, int64_t *correct);
    /* PyTorch Adam (L2 weight decay added to the gradient). mask may be
     * NULL; if not, g is taken as g*mask and afterwards p, m, v are
     * multiplied by mask so pruned weights stay exactly zero. required */
    pl_status (*adam_update)(void *st, const pl_adam_hparams *h, int64_t n,
                             float *p, const float *g, float *m, float *v,
                             const float *mask);
    /* PyTorch SGD with momentum/dampening/nesterov/weight decay; buf unused
     * when momentum == 0; mask as for adam. required */
    pl_status (*sgd_update)(void *st, const pl_sgd_hparams *h, int64_t n,
                            float *p, const float *g, float *buf,
                            const float *mask);

    /* ---- ABI 1.1: optional slots. NULL (as in every table built against
     * ABI 1.0, whose reserved slots are zero) means "not provided"; the host
     * then uses the required kernels above. */

    /* conv2d_forward followed by ReLU in one pass: y = max(conv(x) + b, 0),
     * bit-identical to conv2d_forward then relu_forward on this backend.
     * optional */
    pl_status (*conv2d_forward_relu)(void *st, const pl_conv2d_shape *s,
                                     const float *x, const float *w,
                                     const float *b, float *y);
    /* linear_forward followed by ReLU, bit-identical to the two calls.
     * optional */
    pl_status (*linear_forward_relu)(void *st, int n, int in, int out,
                                     const float *x, const float *w,
                                     const float *b, float *y);
    /* y[n][out] = b + x[n][in] · Wᵀ with W[out][in] given as CSR (rows ==
     * out, cols == in); b may be NULL. Each y element sums its row's stored
     * entries in a fixed order. Entries not stored contribute nothing, not
     * even when x holds Inf or NaN (0·Inf is not formed). optional */
    pl_status (*linear_forward_csr)(void *st, int n, int in, int out,
                                    const float *x, const pl_csr *w,
                                    const float *b, float *y);
    /* conv2d_forward_relu, then max pooling of its output: yr exactly as
     * conv2d_forward_relu makes it, yp and argmax (may be NULL) exactly as
     * maxpool2d_forward(p, yr) makes them; p describes yr (p->n == s->n,
     * p->c == s->cout, p->h == s->oh, p->w == s->ow). optional */
    pl_status (*conv2d_forward_relu_maxpool)(void *st, const pl_conv2d_shape *s,
                                             const float *x, const float *w,
                                             const float *b, float *yr,
                                             const pl_pool2d_shape *p,
                                             float *yp, int32_t *argmax);

    /* ---- ABI 1.2: optional slots */

    /* The backward of ReLU followed by max pooling, in one pass:
     * dx = relu_backward(yr, maxpool2d_backward(p, dy, argmax)),
     * bit-identical to the two calls on this backend. yr is the ReLU's
     * output, i.e. the pooling's input; argmax comes from the forward pass
     * over yr (dx fully overwritten). optional */
    pl_status (*maxpool2d_relu_backward)(void *st, const pl_pool2d_shape *p,
                                         const float *dy, const int32_t *argmax,
                                         const float *yr, float *dx);
    /* Runs fn(ctx, i, worker) for every i in [0, n) on the instance's
     * threads and returns when all are done (worker in [0, threads)). The
     * host uses it for its own work between kernels (reading a batch,
     * batchnorm); fn never calls back into the backend. `work` is a rough
     * cost in flops: a backend may run small jobs on the calling thread.
     * A status other than PL_OK means fn was not called at all (the host
     * then does the work itself). optional */
    pl_status (*parallel_for)(void *st, int64_t n, double work,
                              void (*fn)(void *ctx, int64_t i, int worker), void *ctx);

    /* ---- ABI 1.4: optional slots, grouped convolution. s->cin and s->cout
     * are the total channel counts; `groups` divides both. Output channel
     * co belongs to group g = co / (cout/groups) and reads only input
     * channels [g*(cin/groups), (g+1)*(cin/groups)); the weight is
     * w[cout][cin/groups][kh][kw] (PyTorch's layout). groups == cin ==
     * cout is depthwise. Same semantics as the dense slots otherwise: b and
     * db may be NULL, dx/dw/db are overwritten; groups == 1 must give
     * results bit-identical to the dense slots on the same backend. Each
     * slot is optional on its own: when one is NULL the host runs that
     * step through the dense kernels, one group at a time. optional */
    pl_status (*conv2d_grouped_forward)(void *st, const pl_conv2d_shape *s, int groups,
                                        const float *x, const float *w,
                                        const float *b, float *y);
    pl_status (*conv2d_grouped_backward_data)(void *st, const pl_conv2d_shape *s, int groups,
                                              const float *dy, const float *w, float *dx);
    pl_status (*conv2d_grouped_backward_weight)(void *st, const pl_conv2d_shape *s, int groups,
                                                const float *x, const float *dy,
                                                float *dw, float *db);
    void *reserved[7];
} pl_backend_ops;

#ifndef __cplusplus
/* appending slots never changes the size: 15 required + 16 (now 9 + 7) */
_Static_assert(sizeof(pl_backend_ops) == 31 * sizeof(void *), "pl_backend_ops keeps its size");
#endif

/* ========================================================================= */
/* executor (ABI 1.3)                                                          */
/* ========================================================================= */
/* The host owns what a run is (the expanded config, the phases, the record,
 * the report); an executor owns which run goes where and when. The host
 * hands it a job: the runs this process was asked for (after --shard and
 * resume) and the distinct baselines they need, plus callbacks that do the
 * work *in the calling process*. The built-in `local` executor calls
 * execute_run for k = 0..n_runs-1 in order and then write_report; the `mpi`
 * plugin spreads the same calls over the ranks of an MPI job.
 *
 * Every callback returns PL_OK or an error that should stop the whole job
 * (configuration, I/O, interrupted); its message is then job->error(host).
 * A run that fails on its own is recorded as failed and execute_run
 * returns PL_OK. Callbacks never call into MPI or any transport. */

#define PL_EXEC_WAIT 1u  /* execute_run: wait for a run another process claimed */
#define PL_EXEC_QUIET 2u /* execute_*: no per-epoch lines or table rows */

typedef struct pl_executor_job {
    uint32_t struct_size;  /* sizeof(pl_executor_job) as the host knows it */
    void *host;            /* pass back to every callback */
    size_t n_runs;         /* runs to execute here */
    size_t n_baselines;    /* distinct baselines those runs start from */
    const char *report_dir;/* where records and the report go */
    int quiet;             /* --quiet was given */
    volatile const sig_atomic_t *interrupted; /* non-zero after SIGINT/SIGTERM; may be NULL */
    /* required: the run's id (16 hex digits) and the index in
     * [0, n_baselines) of the baseline it starts from */
    const char *(*run_id)(void *host, size_t k);
    size_t (*run_baseline)(void *host, size_t k);
    /* required: trains baseline b (or finds it in the cache) and leaves it
     * there for every run that needs it; concurrent callers of the same
     * baseline in other processes wait for one another (claims). */
    pl_status (*execute_baseline)(void *host, size_t b, unsigned flags);
    /* required: executes run k and writes its record. *outcome (may be
     * NULL) is set to PL_RUN_* below. Without PL_EXEC_WAIT a run that a
     * live process has claimed is left to it (PL_RUN_CLAIMED). */
    pl_status (*execute_run)(void *host, size_t k, unsigned flags, int *outcome);
    /* required: rebuilds the report from every record in report_dir */
    pl_status (*write_report)(void *host);
    /* required: the message of the last failed callback ("" if none) */
    const char *(*error)(void *host);
    void *reserved[8];
} pl_executor_job;

enum {
    PL_RUN_DONE = 0,     /* executed here; its record is written */
    PL_RUN_FLAGGED = 1,  /* executed here; failed, diverged or missed its target (recorded) */
    PL_RUN_SKIPPED = 2,  /* a record already existed */
    PL_RUN_CLAIMED = 3   /* another live process is executing it */
};

typedef struct pl_executor_ops {
    /* required: execute the job. Returns PL_OK when every callback did;
     * otherwise the first error (its message from job->error or set with
     * api->set_error). Whether this process writes the report is the
     * executor's choice (exactly one process of a job should). */
    pl_status (*run)(void *state, const pl_executor_job *job);
    void *reserved[8];
} pl_executor_ops;

#ifndef __cplusplus
_Static_assert(sizeof(pl_executor_ops) == 9 * sizeof(void *), "pl_executor_ops keeps its size");
#endif

/* ========================================================================= */
/* descriptor                                                                  */
/* ========================================================================= */

typedef struct pl_plugin_desc {
    uint32_t abi_major;   /* PL_ABI_MAJOR */
    uint32_t abi_minor;   /* PL_ABI_MINOR */
    uint32_t struct_size; /* sizeof(pl_plugin_desc) */
    uint32_t fingerprint; /* PL_ABI_FINGERPRINT */
    pl_kind kind;
    const char *name;        /* [a-z0-9_]+, equals the file name without .so */
    const char *version;     /* free text, e.g. "1.0.0" */
    const char *description; /* one line */
    const pl_param_spec *params; /* NULL or {NULL}-terminated */
    /* optional: create the instance state; NULL means state = NULL */
    pl_status (*init)(const pl_env *env, void **state);
    /* optional: destroy the instance state */
    void (*fini)(void *state);
    /* required: the kind's table (pl_criterion_ops, pl_schedule_ops,
     * pl_dataset_ops, pl_backend_ops or, from ABI 1.3, pl_executor_ops) */
    const void *ops;
    const void *reserved[8];
} pl_plugin_desc;

#define PL_PLUGIN_DESC_HEADER                                                  \
    .abi_major = PL_ABI_MAJOR, .abi_minor = PL_ABI_MINOR,                      \
    .struct_size = sizeof(pl_plugin_desc), .fingerprint = PL_ABI_FINGERPRINT

#ifdef __cplusplus
}
#endif
#endif /* PRUNELAB_PLUGIN_H */
