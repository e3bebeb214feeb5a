/*
 * result.c — run records (DIR/runs/<run_id>.json) and atomic file writes.
 *
 * A record is one JSON object: "format" and "version", every pl_run_result
 * field in the order of pl__run_fields, then "history" (an array of objects
 * with the pl__history_fields; optional, records before it lack it) and
 * "layers" (an array of objects with the pl__layer_fields, each with an
 * optional "kept"). Doubles are printed with %.17g so they read
 * back bit for bit; NaN is written as null and ±Inf as ±1e999. The reader
 * accepts exactly that shape: each key once, no unknown or missing keys,
 * the JSON type each field needs; errors are "file:line:col: cause".
 */
#include "result.h"
#include "manifest.h"
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PL__RECORD_FORMAT "prunelab-run"
#define PL__RECORD_VERSION 1

/* ---- text buffer --------------------------------------------------------- */

void pl__buf_add(pl__buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->data, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void pl__buf_puts(pl__buf *b, const char *s) { pl__buf_add(b, s, strlen(s)); }

void pl__buf_printf(pl__buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
    } else if ((size_t)n < sizeof small) {
        pl__buf_add(b, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            b->failed = 1;
        } else {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            pl__buf_add(b, big, (size_t)n);
            free(big);
        }
    }
    va_end(ap2);
}

void pl__buf_free(pl__buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- files --------------------------------------------------------------- */

static const char *pl__io_hint(int e)
{
    switch (e) {
    case ENOENT: return "a directory on the path does not exist";
    case ENOTDIR: return "a component of the path is a file, not a directory";
    case EACCES:
    case EPERM: return "check the permissions";
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return "the disk is full; free space or write elsewhere";
    case EFBIG: return "file size limit reached";
    case EROFS: return "read-only file system; write elsewhere";
    case EISDIR: return "the path is a directory";
    case ENAMETOOLONG: return "use a shorter path";
    default: return NULL;
    }
}

pl_status pl__io_error(pl_error *err, const char *path, int errnum)
{
    if (errnum == 0)
        errnum = EIO;
    const char *hint = pl__io_hint(errnum);
    if (hint)
        return pl_error_set(err, PL_EIO, "%s: %s (%s)", path, strerror(errnum), hint);
    return pl_error_set(err, PL_EIO, "%s: %s", path, strerror(errnum));
}

pl_status pl__read_file(const char *path, char **data, size_t *len, pl_error *err)
{
    *data = NULL;
    if (len)
        *len = 0;
    int oe;
    FILE *f = pl__fopen_regular(path, "the file", &oe, err);
    if (!f)
        return oe ? pl__io_error(err, path, oe) : err->code;
    pl__buf b = {0};
    char chunk[65536];
    size_t k;
    pl__buf_add(&b, "", 0);
    /* bounded like the YAML loader: a file that grows while read (or a
     * huge one) is refused, not read into all memory */
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= PL__READ_MAX_BYTES)
        pl__buf_add(&b, chunk, k);
    if (b.len > PL__READ_MAX_BYTES) {
        fclose(f);
        pl__buf_free(&b);
        return pl_error_set(err, PL_EIO, "%s: larger than %d MiB (not a prunelab file; give the right file)",
                            path, PL__READ_MAX_BYTES >> 20);
    }
    int failed = ferror(f), e = errno;
    fclose(f);
    if (failed) {
        pl__buf_free(&b);
        return pl__io_error(err, path, e);
    }
    if (b.failed) {
        pl__buf_free(&b);
        return pl_error_set(err, PL_ENOMEM, "%s: out of memory reading the file", path);
    }
    *data = b.data;
    if (len)
        *len = b.len;
    return PL_OK;
}

pl_status pl_write_stream(FILE *f, const char *what, const void *data, size_t len,
                          pl_error *err)
{
    errno = 0;
    if (len && fwrite(data, 1, len, f) != len)
        return pl__io_error(err, what, errno);
    errno = 0;
    if (fflush(f) != 0)
        return pl__io_error(err, what, errno);
    /* character devices and some pseudo file systems cannot sync: EINVAL */
    if (fsync(fileno(f)) != 0 && errno != EINVAL && errno != EROFS)
        return pl__io_error(err, what, errno);
    return PL_OK;
}

/* Makes a rename durable; best effort (some file systems refuse). */
static void pl__sync_parent(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}

pl_status pl_write_atomic(const char *path, const void *data, size_t len, pl_error *err)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        return pl_error_set(err, PL_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());

    int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
    int fd = open(tmp, flags, 0666);
    if (fd < 0 && errno == EEXIST) {
        /* left by an earlier process that had our pid and was killed */
        unlink(tmp);
        fd = open(tmp, flags, 0666);
    }
    if (fd < 0) {
        pl_status st = pl__io_error(err, path, errno);
        free(tmp);
        return st;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        pl_status st = pl__io_error(err, path, errno);
        close(fd);
        unlink(tmp);
        free(tmp);
        return st;
    }
    pl_status st = pl_write_stream(f, path, data, len, err);
    errno = 0;
    if (fclose(f) != 0 && st == PL_OK)
        st = pl__io_error(err, path, errno);
    if (st == PL_OK && rename(tmp, path) != 0)
        st = pl__io_error(err, path, errno);
    if (st != PL_OK)
        unlink(tmp);
    else
        pl__sync_parent(path);
    free(tmp);
    return st;
}

pl_status pl_mkdirs(const char *path, pl_error *err)
{
    if (!path || !*path)
        return pl_error_set(err, PL_EINVAL, "empty directory path");
    char *p = strdup(path);
    if (!p)
        return pl_error_set(err, PL_ENOMEM, "%s: out of memory", path);
    pl_status st = PL_OK;
    size_t len = strlen(p);
    for (size_t i = 1; i <= len && st == PL_OK; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0) {
            int e = errno;
            struct stat sb;
            if (e != EEXIST)
                st = pl__io_error(err, path, e);
            else if (stat(p, &sb) != 0)
                st = pl__io_error(err, path, errno);
            else if (!S_ISDIR(sb.st_mode))
                st = pl__io_error(err, path, ENOTDIR);
        }
        p[i] = saved;
    }
    free(p);
    return st;
}

/* ---- record fields ------------------------------------------------------- */

typedef enum pl__ftype { PL__F_STR, PL__F_U64, PL__F_I64, PL__F_F64, PL__F_SIZE } pl__ftype;

typedef struct pl__field {
    const char *name;
    pl__ftype type;
    size_t off, size;
} pl__field;

#define PL__RF(f, t) {#f, PL__F_##t, offsetof(pl_run_result, f), sizeof(((pl_run_result *)0)->f)}
#define PL__LF(f, t) {#f, PL__F_##t, offsetof(pl_layer_result, f), sizeof(((pl_layer_result *)0)->f)}

static const pl__field pl__run_fields[] = {
    PL__RF(run_id, STR),
    PL__RF(run_index, SIZE),
    PL__RF(experiment, STR),
    PL__RF(model, STR),
    PL__RF(dataset, STR),
    PL__RF(backend, STR),
    PL__RF(seed, U64),
    PL__RF(criterion, STR),
    PL__RF(schedule, STR),
    PL__RF(granularity, STR),
    PL__RF(target_sparsity, F64),
    PL__RF(achieved_sparsity, F64),
    PL__RF(params_before, I64),
    PL__RF(params_after, I64),
    PL__RF(nonzero_params_after, I64),
    PL__RF(macs_before, I64),
    PL__RF(macs_after, I64),
    PL__RF(macs_after_physical, I64),
    PL__RF(acc_baseline, F64),
    PL__RF(acc_pruned, F64),
    PL__RF(acc_retrained, F64),
    PL__RF(acc_final, F64),
    PL__RF(latency_ms_before, F64),
    PL__RF(latency_ms_after, F64),
    PL__RF(train_seconds, F64),
    PL__RF(baseline_seconds, F64),
    PL__RF(status, STR),
    PL__RF(sweep, STR),
    PL__RF(message, STR),
};
#define PL__N_RUN_FIELDS (sizeof pl__run_fields / sizeof pl__run_fields[0])

static const pl__field pl__layer_fields[] = {
    PL__LF(name, STR),
    PL__LF(type, STR),
    PL__LF(shape_before, STR),
    PL__LF(shape_after, STR),
    PL__LF(params_before, I64),
    PL__LF(params_after, I64),
    PL__LF(nonzero_after, I64),
    PL__LF(macs_before, I64),
    PL__LF(macs_after, I64),
    PL__LF(sparsity, F64),
};
#define PL__N_LAYER_FIELDS (sizeof pl__layer_fields / sizeof pl__layer_fields[0])

#define PL__HF(f, t) {#f, PL__F_##t, offsetof(pl_history_row, f), sizeof(((pl_history_row *)0)->f)}
static const pl__field pl__history_fields[] = {
    PL__HF(phase, STR),     PL__HF(step, I64),      PL__HF(epoch, I64),    PL__HF(sparsity, F64),
    PL__HF(loss, F64),      PL__HF(train_acc, F64), PL__HF(test_loss, F64), PL__HF(test_acc, F64),
};
#define PL__N_HISTORY_FIELDS (sizeof pl__history_fields / sizeof pl__history_fields[0])

/* bits of the "seen" mask beyond the table fields */
#define PL__SEEN_HISTORY (UINT64_C(1) << 59)
#define PL__SEEN_MANIFEST (UINT64_C(1) << 60)
#define PL__SEEN_FORMAT (UINT64_C(1) << 61)
#define PL__SEEN_VERSION (UINT64_C(1) << 62)
#define PL__SEEN_LAYERS (UINT64_C(1) << 63)
_Static_assert(PL__N_RUN_FIELDS < 59, "seen mask holds every run field");
_Static_assert(PL__N_LAYER_FIELDS < 59, "seen mask holds every layer field");

void pl_run_result_free(pl_run_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->layers && i < r->n_layers; i++)
        free(r->layers[i].kept);
    free(r->layers);
    r->layers = NULL;
    r->n_layers = 0;
    pl_manifest_free(r);
    free(r->history);
    r->history = NULL;
    r->n_history = 0;
}

/* ---- writer -------------------------------------------------------------- */

static void pl__json_string(pl__buf *b, const char *s, size_t max)
{
    pl__buf_add(b, "\"", 1);
    for (size_t i = 0; i < max && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': pl__buf_add(b, "\\\"", 2); break;
        case '\\': pl__buf_add(b, "\\\\", 2); break;
        case '\n': pl__buf_add(b, "\\n", 2); break;
        case '\r': pl__buf_add(b, "\\r", 2); break;
        case '\t': pl__buf_add(b, "\\t", 2); break;
        case '\b': pl__buf_add(b, "\\b", 2); break;
        case '\f': pl__buf_add(b, "\\f", 2); break;
        default:
            if (c < 0x20 || c == 0x7f)
                pl__buf_printf(b, "\\u%04x", c);
            else
                pl__buf_add(b, (const char *)&c, 1);
        }
    }
    pl__buf_add(b, "\"", 1);
}

static void pl__json_field(pl__buf *b, const pl__field *f, const void *obj)
{
    const char *p = (const char *)obj + f->off;
    pl__buf_printf(b, "\"%s\": ", f->name);
    switch (f->type) {
    case PL__F_STR:
        pl__json_string(b, p, f->size);
        break;
    case PL__F_U64: {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        pl__buf_printf(b, "%" PRIu64, v);
        break;
    }
    case PL__F_I64: {
        int64_t v;
        memcpy(&v, p, sizeof v);
        pl__buf_printf(b, "%" PRId64, v);
        break;
    }
    case PL__F_SIZE: {
        size_t v;
        memcpy(&v, p, sizeof v);
        pl__buf_printf(b, "%zu", v);
        break;
    }
    case PL__F_F64: {
        double v;
        memcpy(&v, p, sizeof v);
        if (isnan(v))
            pl__buf_puts(b, "null");
        else if (isinf(v))
            pl__buf_puts(b, v > 0 ? "1e999" : "-1e999"); /* JSON has no Inf; reads back as ±Inf */
        else
            pl__buf_printf(b, "%.17g", v);
        break;
    }
    }
}

static int pl__run_id_ok(const char *id)
{
    size_t n = strnlen(id, sizeof ((pl_run_result *)0)->run_id);
    if (n == 0 || n >= sizeof ((pl_run_result *)0)->run_id)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

pl_status pl_record_write(const char *dir, const pl_run_result *r, pl_error *err)
{
    if (!pl__run_id_ok(r->run_id))
        return pl_error_set(err, PL_EINVAL,
                            "run record: run_id \"%.16s\" is not a valid file name "
                            "(expected 1-16 characters of [A-Za-z0-9_-])", r->run_id);
    if (r->n_layers && !r->layers)
        return pl_error_set(err, PL_EINVAL, "run record %s: %zu layers but no layer array",
                            r->run_id, r->n_layers);

    pl__buf b = {0};
    pl__buf_printf(&b, "{\n  \"format\": \"%s\",\n  \"version\": %d,\n", PL__RECORD_FORMAT,
                   PL__RECORD_VERSION);
    for (size_t i = 0; i < PL__N_RUN_FIELDS; i++) {
        pl__buf_puts(&b, "  ");
        pl__json_field(&b, &pl__run_fields[i], r);
        pl__buf_puts(&b, ",\n");
    }
    if (r->n_history) {
        pl__buf_puts(&b, "  \"history\": [");
        for (size_t k = 0; k < r->n_history; k++) {
            pl__buf_puts(&b, k ? ",\n    {" : "\n    {");
            for (size_t i = 0; i < PL__N_HISTORY_FIELDS; i++) {
                if (i)
                    pl__buf_puts(&b, ", ");
                pl__json_field(&b, &pl__history_fields[i], &r->history[k]);
            }
            pl__buf_puts(&b, "}");
        }
        pl__buf_puts(&b, "\n  ],\n");
    }
    pl__buf_puts(&b, "  \"layers\": [");
    for (size_t k = 0; k < r->n_layers; k++) {
        pl__buf_puts(&b, k ? ",\n    {" : "\n    {");
        for (size_t i = 0; i < PL__N_LAYER_FIELDS; i++) {
            if (i)
                pl__buf_puts(&b, ", ");
            pl__json_field(&b, &pl__layer_fields[i], &r->layers[k]);
        }
        if (r->layers[k].kept) {
            pl__buf_puts(&b, ", \"kept\": ");
            pl__json_string(&b, r->layers[k].kept, SIZE_MAX);
        }
        pl__buf_puts(&b, "}");
    }
    pl__buf_puts(&b, r->n_layers ? "\n  ]" : "]");
    if (r->n_manifest) { /* manifest.h */
        pl__buf_puts(&b, ",\n  \"manifest\": {");
        for (size_t k = 0; k < r->n_manifest; k++) {
            pl__buf_puts(&b, k ? ",\n    " : "\n    ");
            pl__json_string(&b, r->manifest[2 * k], SIZE_MAX);
            pl__buf_puts(&b, ": ");
            pl__json_string(&b, r->manifest[2 * k + 1], SIZE_MAX);
        }
        pl__buf_puts(&b, "\n  }");
    }
    pl__buf_puts(&b, "\n}\n");

    pl__buf path = {0};
    pl__buf_printf(&path, "%s/runs", dir);
    pl_status st;
    if (b.failed || path.failed) {
        st = pl_error_set(err, PL_ENOMEM, "run record %s: out of memory", r->run_id);
    } else if ((st = pl_mkdirs(path.data, err)) == PL_OK) {
        pl__buf_printf(&path, "/%s.json", r->run_id);
        st = path.failed ? pl_error_set(err, PL_ENOMEM, "run record: out of memory")
                         : pl_write_atomic(path.data, b.data, b.len, err);
    }
    pl__buf_free(&b);
    pl__buf_free(&path);
    return st;
}

/* ---- strict reader ------------------------------------------------------- */

typedef struct pl__jp {
    const char *path;
    const char *start, *p, *end;
    pl__buf str;    /* the last decoded string */
    pl_error *err;
} pl__jp;

static pl_status pl__jp_fail_at(pl__jp *j, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static pl_status pl__jp_fail_at(pl__jp *j, const char *at, const char *fmt, ...)
{
    int line = 1, col = 1;
    for (const char *q = j->start; q < at && q < j->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pl_error_set(j->err, PL_EFORMAT,
                        "%s:%d:%d: %s (a damaged run record: delete it and rerun the "
                        "experiment to redo that run)",
                        j->path, line, col, msg);
}

#define PL__JP_FAIL(j, ...) pl__jp_fail_at((j), (j)->p, __VA_ARGS__)

static void pl__jp_ws(pl__jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int pl__jp_peek(pl__jp *j) { return j->p < j->end ? (unsigned char)*j->p : -1; }

static const char *pl__jp_what(pl__jp *j)
{
    return j->p < j->end ? "unexpected character" : "unexpected end of file";
}

static pl_status pl__jp_expect(pl__jp *j, char c)
{
    pl__jp_ws(j);
    if (pl__jp_peek(j) != (unsigned char)c)
        return PL__JP_FAIL(j, "%s: expected '%c'", pl__jp_what(j), c);
    j->p++;
    return PL_OK;
}

static int pl__jp_literal(pl__jp *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) >= n && memcmp(j->p, lit, n) == 0) {
        j->p += n;
        return 1;
    }
    return 0;
}

static int pl__hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

static void pl__utf8(pl__buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    pl__buf_add(b, u, n);
}

/* Decodes a JSON string at j->p into j->str. */
static pl_status pl__jp_string(pl__jp *j)
{
    j->str.len = 0;
    pl__buf_add(&j->str, "", 0);
    if (pl__jp_peek(j) != '"')
        return PL__JP_FAIL(j, "%s: expected a string", pl__jp_what(j));
    j->p++;
    for (;;) {
        if (j->p >= j->end)
            return PL__JP_FAIL(j, "unterminated string");
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20)
            return PL__JP_FAIL(j, "control character in a string (must be escaped)");
        if (c != '\\') {
            pl__buf_add(&j->str, (const char *)&c, 1);
            j->p++;
            continue;
        }
        const char *esc = j->p++;
        if (j->p >= j->end)
            return PL__JP_FAIL(j, "unterminated string");
        char e = *j->p++;
        switch (e) {
        case '"': pl__buf_add(&j->str, "\"", 1); break;
        case '\\': pl__buf_add(&j->str, "\\", 1); break;
        case '/': pl__buf_add(&j->str, "/", 1); break;
        case 'b': pl__buf_add(&j->str, "\b", 1); break;
        case 'f': pl__buf_add(&j->str, "\f", 1); break;
        case 'n': pl__buf_add(&j->str, "\n", 1); break;
        case 'r': pl__buf_add(&j->str, "\r", 1); break;
        case 't': pl__buf_add(&j->str, "\t", 1); break;
        case 'u': {
            unsigned cp, lo;
            if (j->end - j->p < 4 || !pl__hex4(j->p, &cp))
                return pl__jp_fail_at(j, esc, "bad \\u escape (expected 4 hex digits)");
            j->p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return pl__jp_fail_at(j, esc, "unpaired UTF-16 surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                    !pl__hex4(j->p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return pl__jp_fail_at(j, esc, "unpaired UTF-16 surrogate in \\u escape");
                j->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0)
                return pl__jp_fail_at(j, esc, "\\u0000 is not allowed in a record string");
            pl__utf8(&j->str, cp);
            break;
        }
        default:
            return pl__jp_fail_at(j, esc, "invalid escape '\\%c'", e);
        }
    }
    if (j->str.failed)
        return pl_error_set(j->err, PL_ENOMEM, "%s: out of memory", j->path);
    return PL_OK;
}

/* Scans a JSON number into tok (NUL-terminated); *integral is 0 when it has
 * a fraction or an exponent. */
static pl_status pl__jp_number(pl__jp *j, char *tok, size_t cap, int *integral)
{
    const char *q = j->p, *e = j->end;
#define PL__DIGIT(x) ((x) >= '0' && (x) <= '9')
    *integral = 1;
    if (q < e && *q == '-')
        q++;
    if (q >= e || !PL__DIGIT(*q))
        return PL__JP_FAIL(j, "%s: expected a number", pl__jp_what(j));
    if (*q == '0') {
        q++;
    } else {
        while (q < e && PL__DIGIT(*q))
            q++;
    }
    if (q < e && *q == '.') {
        *integral = 0;
        q++;
        if (q >= e || !PL__DIGIT(*q))
            return pl__jp_fail_at(j, q, "expected a digit after '.'");
        while (q < e && PL__DIGIT(*q))
            q++;
    }
    if (q < e && (*q == 'e' || *q == 'E')) {
        *integral = 0;
        q++;
        if (q < e && (*q == '+' || *q == '-'))
            q++;
        if (q >= e || !PL__DIGIT(*q))
            return pl__jp_fail_at(j, q, "expected a digit in the exponent");
        while (q < e && PL__DIGIT(*q))
            q++;
    }
#undef PL__DIGIT
    size_t n = (size_t)(q - j->p);
    if (n >= cap)
        return PL__JP_FAIL(j, "number too long");
    memcpy(tok, j->p, n);
    tok[n] = '\0';
    j->p = q;
    return PL_OK;
}

static pl_status pl__jp_field_value(pl__jp *j, const pl__field *f, void *obj)
{
    char *dst = (char *)obj + f->off;
    const char *at = j->p;
    char tok[64];
    int integral;
    pl_status st;

    switch (f->type) {
    case PL__F_STR:
        if (pl__jp_peek(j) != '"')
            return PL__JP_FAIL(j, "\"%s\" must be a string", f->name);
        if ((st = pl__jp_string(j)))
            return st;
        if (j->str.len >= f->size)
            return pl__jp_fail_at(j, at, "\"%s\" is too long (%zu bytes, at most %zu)", f->name,
                                  j->str.len, f->size - 1);
        memcpy(dst, j->str.data, j->str.len + 1);
        return PL_OK;
    case PL__F_F64: {
        double v;
        if (pl__jp_literal(j, "null")) {
            v = NAN;
        } else {
            if (pl__jp_peek(j) != '-' && (pl__jp_peek(j) < '0' || pl__jp_peek(j) > '9'))
                return PL__JP_FAIL(j, "\"%s\" must be a number or null", f->name);
            if ((st = pl__jp_number(j, tok, sizeof tok, &integral)))
                return st;
            v = strtod(tok, NULL); /* overflow gives ±HUGE_VAL = ±Inf, as written */
        }
        memcpy(dst, &v, sizeof v);
        return PL_OK;
    }
    case PL__F_I64:
    case PL__F_U64:
    case PL__F_SIZE:
        if (pl__jp_peek(j) != '-' && (pl__jp_peek(j) < '0' || pl__jp_peek(j) > '9'))
            return PL__JP_FAIL(j, "\"%s\" must be an integer", f->name);
        if ((st = pl__jp_number(j, tok, sizeof tok, &integral)))
            return st;
        if (!integral)
            return pl__jp_fail_at(j, at, "\"%s\" must be an integer, not %s", f->name, tok);
        errno = 0;
        if (f->type == PL__F_I64) {
            long long v = strtoll(tok, NULL, 10);
            if (errno == ERANGE)
                return pl__jp_fail_at(j, at, "\"%s\" is out of range: %s", f->name, tok);
            int64_t w = (int64_t)v;
            memcpy(dst, &w, sizeof w);
        } else {
            if (tok[0] == '-')
                return pl__jp_fail_at(j, at, "\"%s\" must not be negative", f->name);
            unsigned long long v = strtoull(tok, NULL, 10);
            if (errno == ERANGE || (f->type == PL__F_SIZE && v > SIZE_MAX))
                return pl__jp_fail_at(j, at, "\"%s\" is out of range: %s", f->name, tok);
            if (f->type == PL__F_U64) {
                uint64_t w = (uint64_t)v;
                memcpy(dst, &w, sizeof w);
            } else {
                size_t w = (size_t)v;
                memcpy(dst, &w, sizeof w);
            }
        }
        return PL_OK;
    }
    return PL_OK;
}

/* Called for every key of an object; `key_at` points at the key. */
typedef pl_status (*pl__member_fn)(pl__jp *j, const char *key, const char *key_at, void *ctx);

static pl_status pl__jp_object(pl__jp *j, pl__member_fn fn, void *ctx)
{
    pl_status st;
    if ((st = pl__jp_expect(j, '{')))
        return st;
    pl__jp_ws(j);
    if (pl__jp_peek(j) == '}') {
        j->p++;
        return PL_OK;
    }
    for (;;) {
        pl__jp_ws(j);
        const char *key_at = j->p;
        char key[64];
        if (pl__jp_peek(j) != '"')
            return PL__JP_FAIL(j, "%s: expected a key string", pl__jp_what(j));
        if ((st = pl__jp_string(j)))
            return st;
        snprintf(key, sizeof key, "%s", j->str.data);
        if (j->str.len >= sizeof key)
            return pl__jp_fail_at(j, key_at, "unknown key \"%.40s...\"", key);
        if ((st = pl__jp_expect(j, ':')))
            return st;
        pl__jp_ws(j);
        if ((st = fn(j, key, key_at, ctx)))
            return st;
        pl__jp_ws(j);
        if (pl__jp_peek(j) == ',') {
            j->p++;
            continue;
        }
        if (pl__jp_peek(j) == '}') {
            j->p++;
            return PL_OK;
        }
        return PL__JP_FAIL(j, "%s: expected ',' or '}'", pl__jp_what(j));
    }
}

static int pl__field_find(const pl__field *fields, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i].name, key) == 0)
            return (int)i;
    return -1;
}

static pl_status pl__jp_check_seen(pl__jp *j, const char *what, const pl__field *fields, size_t n,
                                   uint64_t seen, uint64_t extra_bits)
{
    for (size_t i = 0; i < n; i++)
        if (!(seen & (UINT64_C(1) << i)))
            return pl__jp_fail_at(j, j->p - 1, "%s lacks the key \"%s\"", what, fields[i].name);
    if (extra_bits & PL__SEEN_FORMAT && !(seen & PL__SEEN_FORMAT))
        return pl__jp_fail_at(j, j->p - 1, "%s lacks the key \"format\"", what);
    if (extra_bits & PL__SEEN_VERSION && !(seen & PL__SEEN_VERSION))
        return pl__jp_fail_at(j, j->p - 1, "%s lacks the key \"version\"", what);
    if (extra_bits & PL__SEEN_LAYERS && !(seen & PL__SEEN_LAYERS))
        return pl__jp_fail_at(j, j->p - 1, "%s lacks the key \"layers\"", what);
    return PL_OK;
}

typedef struct pl__layer_ctx {
    pl_layer_result *l;
    uint64_t seen;
} pl__layer_ctx;

static pl_status pl__layer_member(pl__jp *j, const char *key, const char *key_at, void *vctx)
{
    pl__layer_ctx *c = vctx;
    int i = pl__field_find(pl__layer_fields, PL__N_LAYER_FIELDS, key);
    if (i < 0 && strcmp(key, "kept") == 0) { /* optional: the units the layer kept */
        if (c->l->kept)
            return pl__jp_fail_at(j, key_at, "duplicate layer key \"kept\"");
        if (pl__jp_peek(j) != '"')
            return PL__JP_FAIL(j, "\"kept\" must be a string");
        pl_status st = pl__jp_string(j);
        if (st)
            return st;
        if (!(c->l->kept = strdup(j->str.data)))
            return pl_error_set(j->err, PL_ENOMEM, "%s: out of memory", j->path);
        return PL_OK;
    }
    if (i < 0)
        return pl__jp_fail_at(j, key_at, "unknown layer key \"%s\"", key);
    if (c->seen & (UINT64_C(1) << i))
        return pl__jp_fail_at(j, key_at, "duplicate layer key \"%s\"", key);
    c->seen |= UINT64_C(1) << i;
    return pl__jp_field_value(j, &pl__layer_fields[i], c->l);
}

typedef struct pl__run_ctx {
    pl_run_result *r;
    uint64_t seen;
} pl__run_ctx;

typedef struct pl__history_ctx {
    pl_history_row *h;
    uint64_t seen;
} pl__history_ctx;

static pl_status pl__history_member(pl__jp *j, const char *key, const char *key_at, void *vctx)
{
    pl__history_ctx *c = vctx;
    int i = pl__field_find(pl__history_fields, PL__N_HISTORY_FIELDS, key);
    if (i < 0)
        return pl__jp_fail_at(j, key_at, "unknown history key \"%s\"", key);
    if (c->seen & (UINT64_C(1) << i))
        return pl__jp_fail_at(j, key_at, "duplicate history key \"%s\"", key);
    c->seen |= UINT64_C(1) << i;
    return pl__jp_field_value(j, &pl__history_fields[i], c->h);
}

static pl_status pl__jp_history(pl__jp *j, pl_run_result *r)
{
    pl_status st;
    size_t cap = 0;
    if (pl__jp_peek(j) != '[')
        return PL__JP_FAIL(j, "\"history\" must be an array");
    j->p++;
    pl__jp_ws(j);
    if (pl__jp_peek(j) == ']') {
        j->p++;
        return PL_OK;
    }
    for (;;) {
        if (r->n_history == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            pl_history_row *nh = realloc(r->history, ncap * sizeof *nh);
            if (!nh)
                return pl_error_set(j->err, PL_ENOMEM, "%s: out of memory", j->path);
            r->history = nh;
            cap = ncap;
        }
        pl__history_ctx c = {&r->history[r->n_history], 0};
        memset(c.h, 0, sizeof *c.h);
        r->n_history++;
        pl__jp_ws(j);
        if (pl__jp_peek(j) != '{')
            return PL__JP_FAIL(j, "%s: expected a history object", pl__jp_what(j));
        if ((st = pl__jp_object(j, pl__history_member, &c)))
            return st;
        if ((st = pl__jp_check_seen(j, "history row", pl__history_fields, PL__N_HISTORY_FIELDS, c.seen,
                                    0)))
            return st;
        pl__jp_ws(j);
        if (pl__jp_peek(j) == ',') {
            j->p++;
            continue;
        }
        if (pl__jp_peek(j) == ']') {
            j->p++;
            return PL_OK;
        }
        return PL__JP_FAIL(j, "%s: expected ',' or ']'", pl__jp_what(j));
    }
}

static pl_status pl__jp_layers(pl__jp *j, pl_run_result *r)
{
    pl_status st;
    size_t cap = 0;
    if (pl__jp_peek(j) != '[')
        return PL__JP_FAIL(j, "\"layers\" must be an array");
    j->p++;
    pl__jp_ws(j);
    if (pl__jp_peek(j) == ']') {
        j->p++;
        return PL_OK;
    }
    for (;;) {
        if (r->n_layers == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            pl_layer_result *nl = realloc(r->layers, ncap * sizeof *nl);
            if (!nl)
                return pl_error_set(j->err, PL_ENOMEM, "%s: out of memory", j->path);
            r->layers = nl;
            cap = ncap;
        }
        pl__layer_ctx c = {&r->layers[r->n_layers], 0};
        memset(c.l, 0, sizeof *c.l);
        r->n_layers++;
        pl__jp_ws(j);
        if (pl__jp_peek(j) != '{')
            return PL__JP_FAIL(j, "%s: expected a layer object", pl__jp_what(j));
        if ((st = pl__jp_object(j, pl__layer_member, &c)))
            return st;
        if ((st = pl__jp_check_seen(j, "layer", pl__layer_fields, PL__N_LAYER_FIELDS, c.seen, 0)))
            return st;
        pl__jp_ws(j);
        if (pl__jp_peek(j) == ',') {
            j->p++;
            continue;
        }
        if (pl__jp_peek(j) == ']') {
            j->p++;
            return PL_OK;
        }
        return PL__JP_FAIL(j, "%s: expected ',' or ']'", pl__jp_what(j));
    }
}

/* one "key": "string" of a record's manifest (manifest.h) */
static pl_status pl__manifest_member(pl__jp *j, const char *key, const char *key_at, void *vctx)
{
    pl_run_result *r = vctx;
    if (pl_manifest_get(r, key))
        return pl__jp_fail_at(j, key_at, "duplicate manifest key \"%s\"", key);
    if (r->n_manifest >= 256)
        return pl__jp_fail_at(j, key_at, "more than 256 manifest entries");
    if (pl__jp_peek(j) != '"')
        return PL__JP_FAIL(j, "manifest \"%s\" must be a string", key);
    pl_status st = pl__jp_string(j);
    if (st)
        return st;
    if (pl_manifest_add(r, key, j->str.data))
        return pl_error_set(j->err, PL_ENOMEM, "%s: out of memory", j->path);
    return PL_OK;
}

static pl_status pl__run_member(pl__jp *j, const char *key, const char *key_at, void *vctx)
{
    pl__run_ctx *c = vctx;
    uint64_t bit;
    int i = pl__field_find(pl__run_fields, PL__N_RUN_FIELDS, key);
    if (i >= 0)
        bit = UINT64_C(1) << i;
    else if (strcmp(key, "format") == 0)
        bit = PL__SEEN_FORMAT;
    else if (strcmp(key, "version") == 0)
        bit = PL__SEEN_VERSION;
    else if (strcmp(key, "layers") == 0)
        bit = PL__SEEN_LAYERS;
    else if (strcmp(key, "manifest") == 0)
        bit = PL__SEEN_MANIFEST;
    else if (strcmp(key, "history") == 0) /* optional (records before it lack it) */
        bit = PL__SEEN_HISTORY;
    else
        return pl__jp_fail_at(j, key_at, "unknown key \"%s\"", key);
    if (c->seen & bit)
        return pl__jp_fail_at(j, key_at, "duplicate key \"%s\"", key);
    c->seen |= bit;

    if (i >= 0)
        return pl__jp_field_value(j, &pl__run_fields[i], c->r);
    if (bit == PL__SEEN_LAYERS)
        return pl__jp_layers(j, c->r);
    if (bit == PL__SEEN_MANIFEST)
        return pl__jp_object(j, pl__manifest_member, c->r);
    if (bit == PL__SEEN_HISTORY)
        return pl__jp_history(j, c->r);

    const char *at = j->p;
    pl_status st;
    if (bit == PL__SEEN_FORMAT) {
        if (pl__jp_peek(j) != '"')
            return PL__JP_FAIL(j, "\"format\" must be a string");
        if ((st = pl__jp_string(j)))
            return st;
        if (strcmp(j->str.data, PL__RECORD_FORMAT) != 0)
            return pl__jp_fail_at(j, at, "not a prunelab run record (format \"%.60s\", expected \"%s\")",
                                  j->str.data, PL__RECORD_FORMAT);
        return PL_OK;
    }
    char tok[64];
    int integral;
    if ((st = pl__jp_number(j, tok, sizeof tok, &integral)))
        return st;
    if (!integral || strcmp(tok, "1") != 0)
        return pl__jp_fail_at(j, at, "record version %s is not supported (this prunelab reads version %d)",
                              tok, PL__RECORD_VERSION);
    return PL_OK;
}

/* Values a run can produce; anything else is a corrupt or hand-edited
 * record, refused before it reaches a report or a comparison. */
static pl_status pl__record_check(const char *path, const pl_run_result *r, pl_error *err)
{
#define PL__BAD(...)                                                                                         \
    do {                                                                                                     \
        char why_[200];                                                                                      \
        snprintf(why_, sizeof why_, __VA_ARGS__);                                                            \
        return pl_error_set(err, PL_EFORMAT, "%s: %s (a corrupt or hand-edited record; delete it to run that " \
                            "run again)", path, why_);                                                       \
    } while (0)
    if (!pl__run_id_ok(r->run_id))
        PL__BAD("run_id \"%.20s\" is not 1-16 characters of [A-Za-z0-9_-]", r->run_id);
    const struct {
        const char *name;
        int64_t v;
    } counts[] = {{"params_before", r->params_before}, {"params_after", r->params_after},
                  {"nonzero_params_after", r->nonzero_params_after}, {"macs_before", r->macs_before},
                  {"macs_after", r->macs_after}, {"macs_after_physical", r->macs_after_physical}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (counts[i].v < 0 || counts[i].v > INT64_MAX / 2) /* flops = 2 x macs must fit */
            PL__BAD("%s %" PRId64 " is out of range", counts[i].name, counts[i].v);
    const struct {
        const char *name;
        double v, hi;
    } reals[] = {{"acc_baseline", r->acc_baseline, 100},       {"acc_pruned", r->acc_pruned, 100},
                 {"acc_retrained", r->acc_retrained, 100},     {"acc_final", r->acc_final, 100},
                 {"target_sparsity", r->target_sparsity, 1},   {"achieved_sparsity", r->achieved_sparsity, 1},
                 {"latency_ms_before", r->latency_ms_before, 1e12}, {"latency_ms_after", r->latency_ms_after, 1e12},
                 {"train_seconds", r->train_seconds, 1e12},    {"baseline_seconds", r->baseline_seconds, 1e12}};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
        if (!isnan(reals[i].v) && !(reals[i].v >= 0 && reals[i].v <= reals[i].hi))
            PL__BAD("%s %g is outside [0, %g]", reals[i].name, reals[i].v, reals[i].hi);
    static const char *const statuses[] = {"ok", "diverged", "missed_target", "failed"};
    int known = 0;
    for (size_t i = 0; i < 4; i++)
        known |= !strcmp(r->status, statuses[i]);
    if (!known)
        PL__BAD("status \"%.20s\" is not ok, diverged, missed_target or failed", r->status);
    for (size_t k = 0; k < r->n_layers; k++) {
        const pl_layer_result *l = &r->layers[k];
        if (l->params_before < 0 || l->params_after < 0 || l->nonzero_after < 0 || l->macs_before < 0 ||
            l->macs_after < 0 || !(l->sparsity >= 0 && l->sparsity <= 1))
            PL__BAD("layer %.64s has a negative count or a sparsity outside [0, 1]", l->name);
    }
#undef PL__BAD
    return PL_OK;
}

pl_status pl_record_read(const char *path, pl_run_result *r, pl_error *err)
{
    memset(r, 0, sizeof *r);
    char *text;
    size_t len;
    pl_status st = pl__read_file(path, &text, &len, err);
    if (st)
        return st;
    pl__jp j = {.path = path, .start = text, .p = text, .end = text + len, .err = err};
    pl__run_ctx c = {r, 0};
    pl__jp_ws(&j);
    if (pl__jp_peek(&j) != '{') {
        st = PL__JP_FAIL(&j, "%s: expected a JSON object (a prunelab run record)", pl__jp_what(&j));
    } else if ((st = pl__jp_object(&j, pl__run_member, &c)) == PL_OK &&
               (st = pl__jp_check_seen(&j, "record", pl__run_fields, PL__N_RUN_FIELDS, c.seen,
                                       PL__SEEN_FORMAT | PL__SEEN_VERSION | PL__SEEN_LAYERS)) == PL_OK) {
        pl__jp_ws(&j);
        if (j.p != j.end)
            st = PL__JP_FAIL(&j, "unexpected text after the record");
    }
    pl__buf_free(&j.str);
    free(text);
    if (st) {
        pl_run_result_free(r);
        memset(r, 0, sizeof *r);
    }
    return st;
}

/* ---- loading a report folder --------------------------------------------- */

static int pl__run_cmp(const void *a, const void *b)
{
    const pl_run_result *x = a, *y = b;
    if (x->run_index != y->run_index)
        return x->run_index < y->run_index ? -1 : 1;
    return strcmp(x->run_id, y->run_id);
}

static void pl__runs_free(pl_run_result *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pl_run_result_free(&v[i]);
    free(v);
}

pl_status pl_records_load(const char *dir, pl_run_result **out, size_t *n, pl_error *err)
{
    *out = NULL;
    *n = 0;
    pl__buf runs = {0}, path = {0};
    pl__buf_printf(&runs, "%s/runs", dir);
    if (runs.failed)
        return pl_error_set(err, PL_ENOMEM, "%s: out of memory", dir);
    DIR *d = opendir(runs.data);
    if (!d) {
        int e = errno;
        pl_status st = e == ENOENT ? PL_OK : pl__io_error(err, runs.data, e);
        pl__buf_free(&runs);
        return st;
    }

    pl_run_result *v = NULL;
    size_t count = 0, cap = 0;
    pl_status st = PL_OK;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                st = pl__io_error(err, runs.data, errno);
            break;
        }
        const char *name = e->d_name;
        size_t len = strlen(name);
        if (name[0] == '.' || strstr(name, ".tmp.") || len <= 5 ||
            strcmp(name + len - 5, ".json") != 0)
            continue;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            pl_run_result *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                st = pl_error_set(err, PL_ENOMEM, "%s: out of memory", runs.data);
                break;
            }
            v = nv;
            cap = ncap;
        }
        path.len = 0;
        pl__buf_printf(&path, "%s/%s", runs.data, name);
        if (path.failed) {
            st = pl_error_set(err, PL_ENOMEM, "%s: out of memory", runs.data);
            break;
        }
        if ((st = pl_record_read(path.data, &v[count], err)))
            break;
        count++;
        if ((st = pl__record_check(path.data, &v[count - 1], err)))
            break;
        if (strlen(v[count - 1].run_id) != len - 5 ||
            strncmp(v[count - 1].run_id, name, len - 5) != 0) {
            st = pl_error_set(err, PL_EFORMAT, "%s: run_id \"%s\" does not match the file name",
                              path.data, v[count - 1].run_id);
            break;
        }
    }
    closedir(d);
    pl__buf_free(&runs);
    pl__buf_free(&path);
    if (st) {
        pl__runs_free(v, count);
        return st;
    }
    if (count)
        qsort(v, count, sizeof *v, pl__run_cmp);
    *out = v;
    *n = count;
    return PL_OK;
}
