/*
 * cifar — dataset plugin for the CIFAR-10 and CIFAR-100 binary files.
 *
 * Format (the "binary version" of both datasets): a file is a sequence of
 * fixed-size records, no header.
 *   CIFAR-10:  <1 label byte> <3072 pixel bytes>           (3,073 bytes)
 *   CIFAR-100: <1 coarse label> <1 fine label> <3072 bytes> (3,074 bytes)
 * The 3,072 pixel bytes are the 32x32 red plane, then green, then blue,
 * each row-major: already the NCHW layout the host wants.
 *
 * Files of a split (`train_files`, `test_files`: comma-separated names in
 * `path`) are concatenated in the order given. The defaults are the names
 * of the official archives: data_batch_1.bin .. data_batch_5.bin and
 * test_batch.bin (CIFAR-10), train.bin and test.bin (CIFAR-100).
 *
 * Everything is validated at open(), before anything is kept: each file is
 * a regular file whose length is a positive multiple of the record size,
 * and every label is below the class count (10, 20 coarse or 100 fine).
 * Memory is bounded by the files' real size. Pixels stay uint8; read()
 * normalises through a per-channel 256-entry table,
 * x = (b/255 - mean[c]) / std[c]. Handles are immutable after open(), so
 * reads may run concurrently.
 *
 * The checksum is a 64-bit FNV-1a over the files' bytes in 8-byte words
 * ("fnv64w:"), computed while reading.
 */
#include <prunelab/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_PIXELS 3072
#define CIFAR_MAX_FILES 64
#define CIFAR_HINT "the files must be the CIFAR \"binary version\" (data_batch_*.bin / test_batch.bin, or train.bin / test.bin)"

static const pl_param_spec cifar_params[] = {
    {"path", PL_PARAM_STRING, "data/cifar-10-batches-bin", 0, -1, "directory holding the binary files (relative to the working directory)"},
    {"variant", PL_PARAM_STRING, "cifar10", 0, -1, "cifar10 (1 label byte) or cifar100 (coarse and fine label bytes)"},
    {"label", PL_PARAM_STRING, "fine", 0, -1, "cifar100 only: fine (100 classes) or coarse (20 superclasses)"},
    {"train_files", PL_PARAM_STRING, "", 0, -1, "comma-separated training files in `path`; empty = the official names"},
    {"test_files", PL_PARAM_STRING, "", 0, -1, "comma-separated test files in `path`; empty = the official name"},
    {"normalize.mean", PL_PARAM_STRING, "0.4914,0.4822,0.4465", 0, -1, "one value, or three (R,G,B): x = (pixel/255 - mean) / std"},
    {"normalize.std", PL_PARAM_STRING, "0.2470,0.2435,0.2616", 0, -1, "one value, or three (R,G,B), each > 0"},
    {"limit", PL_PARAM_INT, "0", 0, 2147483647.0, "use only the first N examples of each split (0 = all)"},
    {NULL, 0, NULL, 0, 0, NULL},
};

typedef struct cifar_state {
    const pl_host_api *api;
    pl_ctx *ctx;
    const char *dir;
    int cifar100;      /* record has a coarse and a fine label byte */
    int coarse;        /* cifar100: use the coarse label */
    int classes;
    const char *files[2]; /* comma-separated lists: train, test */
    double mean[3], std[3];
    int64_t limit;
} cifar_state;

typedef struct cifar_split {
    int64_t count;
    uint8_t *pixels; /* [count][3072] */
    uint8_t *labels; /* [count] */
    float lut[3][256];
} cifar_split;

/* Parses "a" or "a,b,c" into three values (one value is repeated). */
static int parse_triple(const char *s, double out[3])
{
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || n == 3)
            return 0;
        out[n++] = v;
        while (*end == ' ')
            end++;
        if (*end == '\0')
            break;
        if (*end != ',')
            return 0;
        p = end + 1;
    }
    if (n == 1)
        out[1] = out[2] = out[0];
    return n == 1 || n == 3;
}

static pl_status cifar_init(const pl_env *env, void **state)
{
    const pl_host_api *api = env->api;
    cifar_state *st = api->calloc(1, sizeof *st);
    if (!st)
        return PL_ENOMEM;
    st->api = api;
    st->ctx = env->ctx;
    st->dir = api->param_str(env->params, "path");
    const char *variant = api->param_str(env->params, "variant");
    const char *label = api->param_str(env->params, "label");
    st->limit = api->param_int(env->params, "limit");
    pl_status rc = PL_EINVAL;
    if (strcmp(label, "fine") != 0 && strcmp(label, "coarse") != 0) {
        api->set_error(env->ctx, "label '%s' is not fine or coarse", label);
        goto fail;
    }
    if (strcmp(variant, "cifar10") == 0) {
        st->classes = 10;
    } else if (strcmp(variant, "cifar100") == 0) {
        st->cifar100 = 1;
        st->coarse = strcmp(label, "coarse") == 0;
        st->classes = st->coarse ? 20 : 100;
    } else {
        api->set_error(env->ctx, "variant '%s' is not cifar10 or cifar100", variant);
        goto fail;
    }
    st->files[0] = api->param_str(env->params, "train_files");
    st->files[1] = api->param_str(env->params, "test_files");
    if (!*st->files[0])
        st->files[0] = st->cifar100 ? "train.bin"
                                    : "data_batch_1.bin,data_batch_2.bin,data_batch_3.bin,data_batch_4.bin,"
                                      "data_batch_5.bin";
    if (!*st->files[1])
        st->files[1] = st->cifar100 ? "test.bin" : "test_batch.bin";
    const char *m = api->param_str(env->params, "normalize.mean");
    const char *s = api->param_str(env->params, "normalize.std");
    if (!parse_triple(m, st->mean)) {
        api->set_error(env->ctx, "normalize.mean '%s' is not one number or three comma-separated numbers", m);
        goto fail;
    }
    if (!parse_triple(s, st->std)) {
        api->set_error(env->ctx, "normalize.std '%s' is not one number or three comma-separated numbers", s);
        goto fail;
    }
    for (int c = 0; c < 3; c++)
        if (!(st->std[c] > 0) || st->std[c] > 1e6 || !(st->mean[c] > -1e6 && st->mean[c] < 1e6)) {
            api->set_error(env->ctx, "normalize: channel %d has mean %g, std %g; std must be in (0, 1e6] and "
                           "|mean| < 1e6", c, st->mean[c], st->std[c]);
            goto fail;
        }
    *state = st;
    return PL_OK;
fail:
    api->free(st);
    return rc;
}

static void cifar_fini(void *state)
{
    cifar_state *st = state;
    if (st)
        st->api->free(st);
}

static void cifar_close(void *state, void *handle)
{
    const cifar_state *st = state;
    cifar_split *sp = handle;
    if (!sp)
        return;
    st->api->free(sp->pixels);
    st->api->free(sp->labels);
    st->api->free(sp);
}

/* One name of a comma-separated list: [*p, end) trimmed; advances *p. */
static int next_name(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    while (*s == ' ' || *s == ',')
        s++;
    if (!*s)
        return 0;
    const char *e = s;
    while (*e && *e != ',')
        e++;
    const char *t = e;
    while (t > s && t[-1] == ' ')
        t--;
    size_t n = (size_t)(t - s);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
    *p = e;
    return 1;
}

typedef struct cifar_file {
    char path[4096];
    uint64_t records;
} cifar_file;

/* Finds and sizes every file of a split before anything is allocated. */
static pl_status list_files(const cifar_state *st, const char *list, size_t rec, cifar_file *files, int *n_files,
                            uint64_t *total)
{
    const pl_host_api *api = st->api;
    const char *p = list;
    char name[1024];
    *n_files = 0;
    *total = 0;
    while (next_name(&p, name, sizeof name)) {
        if (*n_files == CIFAR_MAX_FILES) {
            api->set_error(st->ctx, "more than %d files in one split", CIFAR_MAX_FILES);
            return PL_EINVAL;
        }
        if (strchr(name, '/')) {
            api->set_error(st->ctx, "%s: file name must contain no '/'; put the directory in `path`", name);
            return PL_EINVAL;
        }
        cifar_file *f = &files[(*n_files)++];
        size_t dl = strlen(st->dir);
        int w = snprintf(f->path, sizeof f->path, "%s%s%s", st->dir, dl && st->dir[dl - 1] != '/' ? "/" : "", name);
        if (w < 0 || (size_t)w >= sizeof f->path) {
            api->set_error(st->ctx, "%s/%s: path is too long; shorten the dataset's `path`", st->dir, name);
            return PL_EINVAL;
        }
        struct stat sb;
        if (stat(f->path, &sb) != 0) {
            struct stat db;
            if (stat(*st->dir ? st->dir : ".", &db) != 0 || !S_ISDIR(db.st_mode))
                api->set_error(st->ctx, "%s: no such directory; set the dataset's `path` to the folder holding the "
                               "CIFAR binary files", st->dir);
            else
                api->set_error(st->ctx, "%s: %s; " CIFAR_HINT, f->path, strerror(errno));
            return PL_EIO;
        }
        if (!S_ISREG(sb.st_mode)) {
            api->set_error(st->ctx, "%s: not a regular file; " CIFAR_HINT, f->path);
            return PL_EIO;
        }
        if (sb.st_size <= 0 || (uint64_t)sb.st_size % rec != 0) {
            api->set_error(st->ctx, "%s: length %lld is not a positive multiple of the %zu-byte %s record "
                           "(truncated, or the wrong variant?); " CIFAR_HINT, f->path, (long long)sb.st_size, rec,
                           st->cifar100 ? "CIFAR-100" : "CIFAR-10");
            return PL_EFORMAT;
        }
        f->records = (uint64_t)sb.st_size / rec;
        *total += f->records;
    }
    if (*n_files == 0) {
        api->set_error(st->ctx, "no files named for the split; list them in train_files/test_files");
        return PL_EINVAL;
    }
    return PL_OK;
}

/* FNV-1a over 8-byte words (bytes beyond a whole word folded one by one). */
static uint64_t fnv_words(uint64_t h, const uint8_t *p, size_t n)
{
    const uint64_t prime = 0x100000001b3ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * prime;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * prime;
    return h;
}

/* Reads `want` records of one file into the split at `at`. */
static pl_status read_file(const cifar_state *st, const cifar_file *f, size_t rec, uint64_t want, cifar_split *sp,
                           int64_t at, uint8_t *buf, size_t buf_records, uint64_t *hash)
{
    const pl_host_api *api = st->api;
    FILE *fp = fopen(f->path, "rb");
    if (!fp) {
        api->set_error(st->ctx, "%s: cannot open: %s", f->path, strerror(errno));
        return PL_EIO;
    }
    pl_status rc = PL_OK;
    uint64_t done = 0;
    while (done < want) {
        size_t n = want - done < buf_records ? (size_t)(want - done) : buf_records;
        size_t got = fread(buf, rec, n, fp);
        if (got != n) {
            api->set_error(st->ctx, "%s: %s after %llu records; the file changed while being read or is unreadable",
                           f->path, ferror(fp) ? strerror(errno) : "unexpected end of file",
                           (unsigned long long)(done + got));
            rc = PL_EIO;
            break;
        }
        *hash = fnv_words(*hash, buf, n * rec);
        for (size_t r = 0; r < n; r++) {
            const uint8_t *src = buf + r * rec;
            uint8_t label = st->cifar100 ? src[st->coarse ? 0 : 1] : src[0];
            int64_t i = at + (int64_t)(done + r);
            if (label >= st->classes) {
                api->set_error(st->ctx, "%s: record %llu has label %u, out of range for %d classes; " CIFAR_HINT,
                               f->path, (unsigned long long)(done + r), (unsigned)label, st->classes);
                rc = PL_EFORMAT;
                goto out;
            }
            sp->labels[i] = label;
            memcpy(sp->pixels + (size_t)i * CIFAR_PIXELS, src + (rec - CIFAR_PIXELS), CIFAR_PIXELS);
        }
        done += n;
    }
out:
    fclose(fp);
    return rc;
}

static pl_status cifar_open(void *state, pl_split split, void **handle, pl_dataset_info *info)
{
    const cifar_state *st = state;
    const pl_host_api *api = st->api;
    if (split != PL_SPLIT_TRAIN && split != PL_SPLIT_TEST) {
        api->set_error(st->ctx, "unknown split %d", (int)split);
        return PL_EINVAL;
    }
    const size_t rec = (size_t)CIFAR_PIXELS + (st->cifar100 ? 2 : 1);
    cifar_file *files = api->alloc(CIFAR_MAX_FILES * sizeof *files);
    if (!files) {
        api->set_error(st->ctx, "out of memory opening %s", st->dir);
        return PL_ENOMEM;
    }
    int n_files;
    uint64_t total;
    pl_status rc = list_files(st, st->files[split == PL_SPLIT_TRAIN ? 0 : 1], rec, files, &n_files, &total);
    if (rc != PL_OK) {
        api->free(files);
        return rc;
    }
    uint64_t count = total;
    if (st->limit > 0 && (uint64_t)st->limit < count)
        count = (uint64_t)st->limit;
    const size_t buf_records = 256;
    cifar_split *sp = api->calloc(1, sizeof *sp);
    uint8_t *buf = api->alloc(buf_records * rec);
    if (sp && count <= SIZE_MAX / CIFAR_PIXELS) {
        sp->pixels = api->alloc((size_t)count * CIFAR_PIXELS);
        sp->labels = api->alloc((size_t)count);
    }
    if (!sp || !buf || !sp->pixels || !sp->labels) {
        api->set_error(st->ctx, "%s: out of memory for %llu images; try the dataset's `limit`", st->dir,
                       (unsigned long long)count);
        rc = PL_ENOMEM;
        goto fail;
    }
    sp->count = (int64_t)count;
    uint64_t hash = 0xcbf29ce484222325ull, at = 0;
    for (int k = 0; k < n_files && at < count; k++) {
        uint64_t want = files[k].records < count - at ? files[k].records : count - at;
        if ((rc = read_file(st, &files[k], rec, want, sp, (int64_t)at, buf, buf_records, &hash)) != PL_OK)
            goto fail;
        at += want;
    }
    for (int c = 0; c < 3; c++)
        for (int b = 0; b < 256; b++)
            sp->lut[c][b] = (float)(((double)b / 255.0 - st->mean[c]) / st->std[c]);
    memset(info, 0, sizeof *info);
    info->count = sp->count;
    info->channels = 3;
    info->height = 32;
    info->width = 32;
    info->classes = st->classes;
    info->flags = PL_DATASET_CONCURRENT_READ; /* handles are immutable after open */
    snprintf(info->checksum, sizeof info->checksum, "fnv64w:%016llx:%llu", (unsigned long long)hash,
             (unsigned long long)count);
    api->free(buf);
    api->free(files);
    *handle = sp;
    return PL_OK;
fail:
    api->free(buf);
    api->free(files);
    cifar_close(state, sp);
    return rc;
}

static pl_status cifar_read(void *state, void *handle, const int64_t *indices, int n, float *images,
                            int32_t *labels)
{
    const cifar_state *st = state;
    const cifar_split *sp = handle;
    if (n < 0) {
        st->api->set_error(st->ctx, "read: negative batch size %d", n);
        return PL_EINVAL;
    }
    for (int k = 0; k < n; k++)
        if (indices[k] < 0 || indices[k] >= sp->count) {
            st->api->set_error(st->ctx, "read: index %lld is out of range [0, %lld)", (long long)indices[k],
                               (long long)sp->count);
            return PL_ERANGE;
        }
    for (int k = 0; k < n; k++) {
        const uint8_t *src = sp->pixels + (size_t)indices[k] * CIFAR_PIXELS;
        float *dst = images + (size_t)k * CIFAR_PIXELS;
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 1024; p++)
                dst[c * 1024 + p] = sp->lut[c][src[c * 1024 + p]];
        labels[k] = sp->labels[indices[k]];
    }
    return PL_OK;
}

static const pl_dataset_ops cifar_ops = {
    .open = cifar_open,
    .read = cifar_read,
    .close = cifar_close,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_DATASET,
    .name = "cifar",
    .version = "1.0.0",
    .description = "CIFAR-10/100 binary files (3x32x32), validated and normalised per channel",
    .params = cifar_params,
    .init = cifar_init,
    .fini = cifar_fini,
    .ops = &cifar_ops,
    .reserved = {0},
};
