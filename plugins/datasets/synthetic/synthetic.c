/*
 * synthetic — a deterministic, learnable classification dataset of any
 * shape, for tests and for demos that need no download.
 *
 * Each class c has a fixed prototype image P_c: smooth random fields (a
 * coarse grid of N(0,1) values, bilinearly upsampled; one field per
 * channel), scaled so all prototypes together have mean 0 and std 1. They
 * come from api->rng_seed(seed, "synthetic.prototypes").
 *
 * Example i of split s draws, from an RNG seeded by (seed, "synthetic.<s>/<i>"),
 * its label y_i (uniform over classes) and then x_i = P_{y_i} + noise·N(0,1)
 * per value. Nothing depends on the order or batching of read() calls.
 *
 * seed 0 means the run's seed (env->seed).
 */
#include <prunelab/plugin.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SYN_MAX_PROTO_VALUES ((uint64_t)1 << 28) /* 1 GiB of prototypes */

static const pl_param_spec syn_params[] = {
    {"channels", PL_PARAM_INT, "1", 1, 64, "image channels"},
    {"height", PL_PARAM_INT, "28", 1, 4096, "image height"},
    {"width", PL_PARAM_INT, "28", 1, 4096, "image width"},
    {"classes", PL_PARAM_INT, "10", 1, 100000, "number of classes"},
    {"train_count", PL_PARAM_INT, "6000", 1, 1e12, "examples in the training split"},
    {"test_count", PL_PARAM_INT, "1000", 1, 1e12, "examples in the test split"},
    {"noise", PL_PARAM_FLOAT, "0.5", 0, 1000, "std of the Gaussian noise added to each value"},
    {"seed", PL_PARAM_INT, "0", 0, 1e18, "data seed; 0 = the run's seed"},
    {NULL, 0, NULL, 0, 0, NULL},
};

typedef struct syn_state {
    const pl_host_api *api;
    pl_ctx *ctx;
    int channels, height, width, classes;
    int64_t count[2]; /* train, test */
    double noise;
    uint64_t seed;
    size_t image_values; /* channels*height*width */
    float *protos;       /* [classes][image_values] */
    char checksum[32];
} syn_state;

typedef struct syn_split {
    const char *name; /* "train" | "test" */
    int64_t count;
} syn_split;

static double syn_gauss_pair(const pl_host_api *api, pl_rng *r, double *second)
{
    /* Box–Muller; 1-u keeps log away from 0 */
    double u1 = 1.0 - api->rng_uniform(r), u2 = api->rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    *second = rad * sin(th);
    return rad * cos(th);
}

static uint32_t syn_below(const pl_host_api *api, pl_rng *r, uint32_t n)
{
    /* rejection keeps the label distribution exactly uniform */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = api->rng_u64(r);
    while (x >= lim);
    return (uint32_t)(x % n);
}

static void syn_fill_gauss(const pl_host_api *api, pl_rng *r, float *out, size_t n, double scale, const float *add)
{
    for (size_t i = 0; i < n; i += 2) {
        double b, a = syn_gauss_pair(api, r, &b);
        out[i] = (float)((add ? add[i] : 0.0) + scale * a);
        if (i + 1 < n)
            out[i + 1] = (float)((add ? add[i + 1] : 0.0) + scale * b);
    }
}

static pl_status syn_make_prototypes(syn_state *st)
{
    const pl_host_api *api = st->api;
    int gh = (st->height + 3) / 4, gw = (st->width + 3) / 4;
    size_t grid_n = (size_t)gh * (size_t)gw;
    size_t total = (size_t)st->classes * st->image_values;
    float *grid = api->alloc(grid_n * sizeof *grid);
    st->protos = api->alloc(total * sizeof *st->protos);
    if (!grid || !st->protos) {
        api->free(grid);
        api->free(st->protos); /* either may have succeeded */
        st->protos = NULL;
        return PL_ENOMEM;
    }
    pl_rng r;
    api->rng_seed(&r, st->seed, "synthetic.prototypes");
    float *p = st->protos;
    for (int c = 0; c < st->classes; c++)
        for (int ch = 0; ch < st->channels; ch++) {
            syn_fill_gauss(api, &r, grid, grid_n, 1.0, NULL);
            for (int y = 0; y < st->height; y++) {
                double fy = (y + 0.5) * gh / st->height - 0.5;
                fy = fy < 0 ? 0 : fy > gh - 1 ? gh - 1 : fy;
                int y0 = (int)fy, y1 = y0 + 1 < gh ? y0 + 1 : y0;
                double ty = fy - y0;
                for (int x = 0; x < st->width; x++) {
                    double fx = (x + 0.5) * gw / st->width - 0.5;
                    fx = fx < 0 ? 0 : fx > gw - 1 ? gw - 1 : fx;
                    int x0 = (int)fx, x1 = x0 + 1 < gw ? x0 + 1 : x0;
                    double tx = fx - x0;
                    double top = grid[y0 * gw + x0] * (1 - tx) + grid[y0 * gw + x1] * tx;
                    double bot = grid[y1 * gw + x0] * (1 - tx) + grid[y1 * gw + x1] * tx;
                    *p++ = (float)(top * (1 - ty) + bot * ty);
                }
            }
        }
    api->free(grid);
    double sum = 0, sq = 0;
    for (size_t i = 0; i < total; i++)
        sum += st->protos[i];
    double mean = sum / (double)total;
    for (size_t i = 0; i < total; i++)
        sq += (st->protos[i] - mean) * (st->protos[i] - mean);
    double sd = sqrt(sq / (double)total);
    for (size_t i = 0; i < total; i++)
        st->protos[i] = (float)((st->protos[i] - mean) / (sd > 1e-12 ? sd : 1.0));
    return PL_OK;
}

static uint64_t syn_fnv64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static pl_status syn_init(const pl_env *env, void **state)
{
    const pl_host_api *api = env->api;
    syn_state *st = api->calloc(1, sizeof *st);
    if (!st)
        return PL_ENOMEM;
    st->api = api;
    st->ctx = env->ctx;
    st->channels = (int)api->param_int(env->params, "channels");
    st->height = (int)api->param_int(env->params, "height");
    st->width = (int)api->param_int(env->params, "width");
    st->classes = (int)api->param_int(env->params, "classes");
    st->count[0] = api->param_int(env->params, "train_count");
    st->count[1] = api->param_int(env->params, "test_count");
    st->noise = api->param_float(env->params, "noise");
    int64_t seed = api->param_int(env->params, "seed");
    st->seed = seed ? (uint64_t)seed : env->seed;
    st->image_values = (size_t)st->channels * (size_t)st->height * (size_t)st->width;
    if ((uint64_t)st->classes * st->image_values > SYN_MAX_PROTO_VALUES) {
        api->set_error(env->ctx, "classes x channels x height x width = %d x %d x %d x %d is too large "
                       "(at most %llu values); make the images smaller or use fewer classes",
                       st->classes, st->channels, st->height, st->width,
                       (unsigned long long)SYN_MAX_PROTO_VALUES);
        api->free(st);
        return PL_ERANGE;
    }
    if (syn_make_prototypes(st) != PL_OK) {
        api->set_error(env->ctx, "out of memory for %d class prototypes of %zu values", st->classes,
                       st->image_values);
        api->free(st);
        return PL_ENOMEM;
    }
    char canon[256];
    snprintf(canon, sizeof canon,
             "synthetic/1;channels=%d;height=%d;width=%d;classes=%d;train_count=%lld;test_count=%lld;"
             "noise=%.17g;seed=%llu",
             st->channels, st->height, st->width, st->classes, (long long)st->count[0],
             (long long)st->count[1], st->noise, (unsigned long long)st->seed);
    snprintf(st->checksum, sizeof st->checksum, "synthetic:%016llx", (unsigned long long)syn_fnv64(canon));
    *state = st;
    return PL_OK;
}

static void syn_fini(void *state)
{
    syn_state *st = state;
    if (!st)
        return;
    st->api->free(st->protos);
    st->api->free(st);
}

static pl_status syn_open(void *state, pl_split split, void **handle, pl_dataset_info *info)
{
    const syn_state *st = state;
    if (split != PL_SPLIT_TRAIN && split != PL_SPLIT_TEST) {
        st->api->set_error(st->ctx, "unknown split %d", (int)split);
        return PL_EINVAL;
    }
    syn_split *sp = st->api->alloc(sizeof *sp);
    if (!sp) {
        st->api->set_error(st->ctx, "out of memory opening a split");
        return PL_ENOMEM;
    }
    int k = split == PL_SPLIT_TRAIN ? 0 : 1;
    sp->name = k == 0 ? "train" : "test";
    sp->count = st->count[k];
    memset(info, 0, sizeof *info);
    info->count = sp->count;
    info->channels = st->channels;
    info->height = st->height;
    info->width = st->width;
    info->classes = st->classes;
    info->flags = PL_DATASET_CONCURRENT_READ; /* read() only reads the handle */
    snprintf(info->checksum, sizeof info->checksum, "%s", st->checksum);
    *handle = sp;
    return PL_OK;
}

static pl_status syn_read(void *state, void *handle, const int64_t *indices, int n, float *images,
                          int32_t *labels)
{
    const syn_state *st = state;
    const syn_split *sp = handle;
    const pl_host_api *api = st->api;
    if (n < 0) {
        api->set_error(st->ctx, "read: negative batch size %d", n);
        return PL_EINVAL;
    }
    for (int k = 0; k < n; k++) {
        int64_t i = indices[k];
        if (i < 0 || i >= sp->count) {
            api->set_error(st->ctx, "read: index %lld is out of range [0, %lld)", (long long)i,
                           (long long)sp->count);
            return PL_ERANGE;
        }
        char stream[64];
        pl_rng r;
        snprintf(stream, sizeof stream, "synthetic.%s/%lld", sp->name, (long long)i);
        api->rng_seed(&r, st->seed, stream);
        uint32_t y = syn_below(api, &r, (uint32_t)st->classes);
        labels[k] = (int32_t)y;
        syn_fill_gauss(api, &r, images + (size_t)k * st->image_values, st->image_values, st->noise,
                       st->protos + (size_t)y * st->image_values);
    }
    return PL_OK;
}

static void syn_close(void *state, void *handle)
{
    const syn_state *st = state;
    st->api->free(handle);
}

static const pl_dataset_ops syn_ops = {
    .open = syn_open,
    .read = syn_read,
    .close = syn_close,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_DATASET,
    .name = "synthetic",
    .version = "1.0.0",
    .description = "deterministic learnable data: class prototypes plus Gaussian noise, any shape",
    .params = syn_params,
    .init = syn_init,
    .fini = syn_fini,
    .ops = &syn_ops,
    .reserved = {0},
};
