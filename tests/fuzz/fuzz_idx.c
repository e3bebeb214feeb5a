/*
 * fuzz_idx — libFuzzer harness for the idx dataset plugin's reader (raw and
 * gzip-compressed IDX files). idx.c is compiled into this program and driven
 * through its exported prunelab_plugin_desc with a small host API (the host's
 * real one lives in core/src/plugin_params.c), as the registry would after
 * dlopen().
 *
 * Input layout:
 *   byte 0      flags: bit 0/1 images/labels file is stored as <name>.gz,
 *               verbatim (the input bytes are gzip data);
 *               bit 2/3 images/labels bytes are gzip-compressed by the
 *               harness and stored as <name>.gz (so mutations of the IDX
 *               contents reach the .gz reader too);
 *               bits 4-5 classes: 10, 4, 2, 256; bit 6 limit = 3
 *   bytes 1-2   n = length of the images file, little-endian
 *   then        n bytes of images file, the rest is the labels file
 *
 * open() must either succeed with a consistent shape (then every example
 * is read back) or fail with a one-line message that names a file or the
 * dataset directory.
 */
#include <prunelab/plugin.h>

#include "fuzz_util.h"

#include <stdarg.h>
#include <zlib.h>

extern const pl_plugin_desc prunelab_plugin_desc;

/* ---- a minimal host ------------------------------------------------------ */

struct pl_ctx {
    char msg[1024];
};

typedef struct fuzz_param {
    const char *name;
    const char *s;
    double f;
    int64_t i;
} fuzz_param;

struct pl_params {
    fuzz_param v[16];
    int n;
};

static void *h_alloc(size_t n) { return n ? malloc(n) : NULL; }
static void *h_calloc(size_t n, size_t s) { return n && s ? calloc(n, s) : NULL; }
static void *h_realloc(void *p, size_t n) { return realloc(p, n); }
static void h_free(void *p) { free(p); }
static void *h_alloc_aligned(size_t n)
{
    void *p = NULL;
    return n && posix_memalign(&p, 64, (n + 63) & ~(size_t)63) == 0 ? p : NULL;
}
static void h_log(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}
static void h_set_error(pl_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    va_end(ap);
}
static const fuzz_param *h_find(const pl_params *p, const char *name)
{
    for (int k = 0; k < p->n; k++)
        if (!strcmp(p->v[k].name, name))
            return &p->v[k];
    fprintf(stderr, "fuzz_idx: the plugin asked for undeclared parameter '%s'\n", name);
    abort();
}
static int64_t h_param_int(const pl_params *p, const char *n) { return h_find(p, n)->i; }
static double h_param_float(const pl_params *p, const char *n) { return h_find(p, n)->f; }
static const char *h_param_str(const pl_params *p, const char *n) { return h_find(p, n)->s; }
static int h_param_bool(const pl_params *p, const char *n) { return (int)h_find(p, n)->i; }
static void h_rng_seed(pl_rng *r, uint64_t seed, const char *stream)
{
    (void)stream;
    r->s[0] = seed | 1;
    r->s[1] = r->s[2] = r->s[3] = 0;
}
static uint64_t h_rng_u64(pl_rng *r) { return r->s[0] = r->s[0] * 6364136223846793005ull + 1; }
static double h_rng_uniform(pl_rng *r) { return (double)(h_rng_u64(r) >> 11) * 0x1.0p-53; }

static const pl_host_api host = {
    .struct_size = sizeof(pl_host_api),
    .abi_minor = PL_ABI_MINOR,
    .alloc = h_alloc,
    .calloc = h_calloc,
    .realloc = h_realloc,
    .free = h_free,
    .alloc_aligned = h_alloc_aligned,
    .free_aligned = h_free,
    .log = h_log,
    .set_error = h_set_error,
    .param_int = h_param_int,
    .param_float = h_param_float,
    .param_str = h_param_str,
    .param_bool = h_param_bool,
    .rng_seed = h_rng_seed,
    .rng_u64 = h_rng_u64,
    .rng_uniform = h_rng_uniform,
};

/* ---- files --------------------------------------------------------------- */

/* gzip-compresses src into a new buffer (*out, *out_n); 0 on success. */
static int gzip_bytes(const uint8_t *src, size_t n, uint8_t **out, size_t *out_n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    *out_n = cap - z.avail_out;
    deflateEnd(&z);
    if (r != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

/* Stores one file as <dir>/<name> or <dir>/<name>.gz, removing the other. */
static void put_file(const char *name, const uint8_t *p, size_t n, int as_gz, int compress)
{
    char raw[600], gz[600];
    pl_fuzz_path(raw, sizeof raw, name);
    snprintf(gz, sizeof gz, "%s.gz", raw);
    unlink(raw);
    unlink(gz);
    if (compress) {
        uint8_t *c;
        size_t cn;
        if (gzip_bytes(p, n, &c, &cn) != 0)
            abort();
        pl_fuzz_write(gz, c, cn);
        free(c);
    } else {
        pl_fuzz_write(as_gz ? gz : raw, p, n);
    }
}

/* ---- the harness ------------------------------------------------------------ */

static void check_error(pl_status st, const char *msg, const char *dir)
{
    if (st != PL_EIO && st != PL_EFORMAT && st != PL_ENOMEM) {
        fprintf(stderr, "fuzz_idx: open failed with unexpected status %d: %s\n", (int)st, msg);
        abort();
    }
    if (!msg[0] || strchr(msg, '\n') || strncmp(msg, dir, strlen(dir)) != 0) {
        fprintf(stderr, "fuzz_idx: error is not one line naming the file: [%s]\n", msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    unsigned flags = data[0];
    size_t n_img = (size_t)data[1] | (size_t)data[2] << 8;
    const uint8_t *img = data + 3;
    size_t rest = size - 3;
    if (n_img > rest)
        n_img = rest;
    const uint8_t *lbl = img + n_img;
    size_t n_lbl = rest - n_img;
    put_file("img", img, n_img, flags & 1, (flags & 4) != 0);
    put_file("lbl", lbl, n_lbl, flags & 2, (flags & 8) != 0);

    static const int classes_of[4] = {10, 4, 2, 256};
    const char *dir = pl_fuzz_dir();
    pl_params params = {
        .v = {{"path", dir, 0, 0},
              {"train_images", "img", 0, 0},
              {"train_labels", "lbl", 0, 0},
              {"test_images", "img", 0, 0},
              {"test_labels", "lbl", 0, 0},
              {"normalize.mean", NULL, 0.1307, 0},
              {"normalize.std", NULL, 0.3081, 0},
              {"classes", NULL, 0, classes_of[(flags >> 4) & 3]},
              {"limit", NULL, 0, flags & 64 ? 3 : 0}},
        .n = 9,
    };
    pl_ctx ctx = {{0}};
    pl_env env = {.api = &host, .ctx = &ctx, .params = &params, .seed = 1, .threads = 1};
    const pl_plugin_desc *d = &prunelab_plugin_desc;
    const pl_dataset_ops *ops = d->ops;
    void *state = NULL;
    if (d->init(&env, &state) != PL_OK) {
        fprintf(stderr, "fuzz_idx: init failed: %s\n", ctx.msg);
        abort();
    }
    pl_split split = flags & 128 ? PL_SPLIT_TEST : PL_SPLIT_TRAIN;
    void *h = NULL;
    pl_dataset_info info;
    pl_status st = ops->open(state, split, &h, &info);
    if (st) {
        check_error(st, ctx.msg, dir);
    } else {
        int limit = (int)params.v[8].i;
        if (info.count < 1 || (limit && info.count > limit) || info.channels != 1 || info.height < 1 ||
            info.width < 1 || info.classes != params.v[7].i) {
            fprintf(stderr, "fuzz_idx: impossible shape %lld x %dx%dx%d, %d classes\n", (long long)info.count,
                    info.channels, info.height, info.width, info.classes);
            abort();
        }
        size_t hw = (size_t)info.height * (size_t)info.width;
        float *x = malloc(hw * 4 * sizeof *x);
        int32_t labels[4];
        if (x) {
            int64_t idx[4] = {0, info.count - 1, info.count / 2, 0};
            if (ops->read(state, h, idx, 4, x, labels) != PL_OK) {
                fprintf(stderr, "fuzz_idx: read of valid indices failed: %s\n", ctx.msg);
                abort();
            }
            for (int k = 0; k < 4; k++)
                if (labels[k] < 0 || labels[k] >= info.classes)
                    abort();
            int64_t bad = info.count;
            if (ops->read(state, h, &bad, 1, x, labels) == PL_OK)
                abort();
            free(x);
        }
        ops->close(state, h);
    }
    d->fini(state);
    return 0;
}
