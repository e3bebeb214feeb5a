/*
 * result_read.c — the strict reader of run records (pl_record_read): the
 * JSON that result.c writes, read back field by field from the shared field
 * tables (result_fields.h). It accepts exactly that shape: each key once, no
 * unknown or missing keys, the JSON type each field needs; errors are
 * "file:line:col: cause".
 */
#include "result_fields.h"
#include "manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- strict reader ------------------------------------------------------- */

typedef struct jp {
    const char *path;
    const char *start, *p, *end;
    pl__buf str;    /* the last decoded string */
    pl_error *err;
} jp;

static pl_status jp_fail_at(jp *j, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static pl_status jp_fail_at(jp *j, const char *at, const char *fmt, ...)
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

#define PL__JP_FAIL(j, ...) jp_fail_at((j), (j)->p, __VA_ARGS__)

static void jp_ws(jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int jp_peek(jp *j) { return j->p < j->end ? (unsigned char)*j->p : -1; }

static const char *jp_what(jp *j)
{
    return j->p < j->end ? "unexpected character" : "unexpected end of file";
}

static pl_status jp_expect(jp *j, char c)
{
    jp_ws(j);
    if (jp_peek(j) != (unsigned char)c)
        return PL__JP_FAIL(j, "%s: expected '%c'", jp_what(j), c);
    j->p++;
    return PL_OK;
}

static int jp_literal(jp *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) >= n && memcmp(j->p, lit, n) == 0) {
        j->p += n;
        return 1;
    }
    return 0;
}

static int hex4(const char *s, unsigned *out)
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

static void utf8(pl__buf *b, unsigned cp)
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
static pl_status jp_string(jp *j)
{
    j->str.len = 0;
    pl__buf_add(&j->str, "", 0);
    if (jp_peek(j) != '"')
        return PL__JP_FAIL(j, "%s: expected a string", jp_what(j));
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
            if (j->end - j->p < 4 || !hex4(j->p, &cp))
                return jp_fail_at(j, esc, "bad \\u escape (expected 4 hex digits)");
            j->p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return jp_fail_at(j, esc, "unpaired UTF-16 surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                    !hex4(j->p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return jp_fail_at(j, esc, "unpaired UTF-16 surrogate in \\u escape");
                j->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0)
                return jp_fail_at(j, esc, "\\u0000 is not allowed in a record string");
            utf8(&j->str, cp);
            break;
        }
        default:
            return jp_fail_at(j, esc, "invalid escape '\\%c'", e);
        }
    }
    if (j->str.failed)
        return pl_error_set(j->err, PL_ENOMEM, "%s: out of memory", j->path);
    return PL_OK;
}

/* Scans a JSON number into tok (NUL-terminated); *integral is 0 when it has
 * a fraction or an exponent. */
static pl_status jp_number(jp *j, char *tok, size_t cap, int *integral)
{
    const char *q = j->p, *e = j->end;
#define PL__DIGIT(x) ((x) >= '0' && (x) <= '9')
    *integral = 1;
    if (q < e && *q == '-')
        q++;
    if (q >= e || !PL__DIGIT(*q))
        return PL__JP_FAIL(j, "%s: expected a number", jp_what(j));
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
            return jp_fail_at(j, q, "expected a digit after '.'");
        while (q < e && PL__DIGIT(*q))
            q++;
    }
    if (q < e && (*q == 'e' || *q == 'E')) {
        *integral = 0;
        q++;
        if (q < e && (*q == '+' || *q == '-'))
            q++;
        if (q >= e || !PL__DIGIT(*q))
            return jp_fail_at(j, q, "expected a digit in the exponent");
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

static pl_status jp_field_value(jp *j, const pl__field *f, void *obj)
{
    char *dst = (char *)obj + f->off;
    const char *at = j->p;
    char tok[64];
    int integral;
    pl_status st;

    switch (f->type) {
    case PL__F_STR:
        if (jp_peek(j) != '"')
            return PL__JP_FAIL(j, "\"%s\" must be a string", f->name);
        if ((st = jp_string(j)))
            return st;
        if (j->str.len >= f->size)
            return jp_fail_at(j, at, "\"%s\" is too long (%zu bytes, at most %zu)", f->name,
                                  j->str.len, f->size - 1);
        memcpy(dst, j->str.data, j->str.len + 1);
        return PL_OK;
    case PL__F_F64: {
        double v;
        if (jp_literal(j, "null")) {
            v = NAN;
        } else {
            if (jp_peek(j) != '-' && (jp_peek(j) < '0' || jp_peek(j) > '9'))
                return PL__JP_FAIL(j, "\"%s\" must be a number or null", f->name);
            if ((st = jp_number(j, tok, sizeof tok, &integral)))
                return st;
            v = strtod(tok, NULL); /* overflow gives ±HUGE_VAL = ±Inf, as written */
        }
        memcpy(dst, &v, sizeof v);
        return PL_OK;
    }
    case PL__F_I64:
    case PL__F_U64:
    case PL__F_SIZE:
        if (jp_peek(j) != '-' && (jp_peek(j) < '0' || jp_peek(j) > '9'))
            return PL__JP_FAIL(j, "\"%s\" must be an integer", f->name);
        if ((st = jp_number(j, tok, sizeof tok, &integral)))
            return st;
        if (!integral)
            return jp_fail_at(j, at, "\"%s\" must be an integer, not %s", f->name, tok);
        errno = 0;
        if (f->type == PL__F_I64) {
            long long v = strtoll(tok, NULL, 10);
            if (errno == ERANGE)
                return jp_fail_at(j, at, "\"%s\" is out of range: %s", f->name, tok);
            int64_t w = (int64_t)v;
            memcpy(dst, &w, sizeof w);
        } else {
            if (tok[0] == '-')
                return jp_fail_at(j, at, "\"%s\" must not be negative", f->name);
            unsigned long long v = strtoull(tok, NULL, 10);
            if (errno == ERANGE || (f->type == PL__F_SIZE && v > SIZE_MAX))
                return jp_fail_at(j, at, "\"%s\" is out of range: %s", f->name, tok);
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
/* After an element of an object or array: 1 at ',' (another follows), 0
 * at `close` (*st = PL_OK) or at anything else (*st = the error). */
static int jp_more(jp *j, char close, pl_status *st)
{
    jp_ws(j);
    *st = PL_OK;
    if (jp_peek(j) == ',') {
        j->p++;
        return 1;
    }
    if (jp_peek(j) == close)
        j->p++;
    else
        *st = PL__JP_FAIL(j, "%s: expected ',' or '%c'", jp_what(j), close);
    return 0;
}

typedef pl_status (*member_fn)(jp *j, const char *key, const char *key_at, void *ctx);

static pl_status jp_object(jp *j, member_fn fn, void *ctx)
{
    pl_status st;
    if ((st = jp_expect(j, '{')))
        return st;
    jp_ws(j);
    if (jp_peek(j) == '}') {
        j->p++;
        return PL_OK;
    }
    for (;;) {
        jp_ws(j);
        const char *key_at = j->p;
        char key[64];
        if (jp_peek(j) != '"')
            return PL__JP_FAIL(j, "%s: expected a key string", jp_what(j));
        if ((st = jp_string(j)))
            return st;
        snprintf(key, sizeof key, "%s", j->str.data);
        if (j->str.len >= sizeof key)
            return jp_fail_at(j, key_at, "unknown key \"%.40s...\"", key);
        if ((st = jp_expect(j, ':')))
            return st;
        jp_ws(j);
        if ((st = fn(j, key, key_at, ctx)))
            return st;
        if (!jp_more(j, '}', &st))
            return st;
    }
}

static int field_find(const pl__field *fields, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i].name, key) == 0)
            return (int)i;
    return -1;
}

static pl_status jp_check_seen(jp *j, const char *what, const pl__field *fields, size_t n,
                                   uint64_t seen, uint64_t extra_bits)
{
    for (size_t i = 0; i < n; i++)
        if (!(seen & (UINT64_C(1) << i)))
            return jp_fail_at(j, j->p - 1, "%s lacks the key \"%s\"", what, fields[i].name);
    if (extra_bits & PL__SEEN_FORMAT && !(seen & PL__SEEN_FORMAT))
        return jp_fail_at(j, j->p - 1, "%s lacks the key \"format\"", what);
    if (extra_bits & PL__SEEN_VERSION && !(seen & PL__SEEN_VERSION))
        return jp_fail_at(j, j->p - 1, "%s lacks the key \"version\"", what);
    if (extra_bits & PL__SEEN_LAYERS && !(seen & PL__SEEN_LAYERS))
        return jp_fail_at(j, j->p - 1, "%s lacks the key \"layers\"", what);
    return PL_OK;
}

/* an object being read: where it goes, which table keys were seen */
typedef struct elem_ctx {
    void *obj;
    uint64_t seen;
} elem_ctx;

/* One key of an object whose keys are the table `fields` (each once). */
static pl_status table_member(jp *j, const char *key, const char *key_at, elem_ctx *c, const pl__field *fields,
                              size_t n, const char *what)
{
    int i = field_find(fields, n, key);
    if (i < 0)
        return jp_fail_at(j, key_at, "unknown %s key \"%s\"", what, key);
    if (c->seen & (UINT64_C(1) << i))
        return jp_fail_at(j, key_at, "duplicate %s key \"%s\"", what, key);
    c->seen |= UINT64_C(1) << i;
    return jp_field_value(j, &fields[i], c->obj);
}

static pl_status layer_member(jp *j, const char *key, const char *key_at, void *vctx)
{
    elem_ctx *c = vctx;
    pl_layer_result *l = c->obj;
    int i = field_find(pl__layer_fields, PL__N_LAYER_FIELDS, key);
    if (i < 0 && strcmp(key, "kept") == 0) { /* optional: the units the layer kept */
        if (l->kept)
            return jp_fail_at(j, key_at, "duplicate layer key \"kept\"");
        if (jp_peek(j) != '"')
            return PL__JP_FAIL(j, "\"kept\" must be a string");
        pl_status st = jp_string(j);
        if (st)
            return st;
        if (!(l->kept = strdup(j->str.data)))
            return pl_error_set(j->err, PL_ENOMEM, "%s: out of memory", j->path);
        return PL_OK;
    }
    return table_member(j, key, key_at, c, pl__layer_fields, PL__N_LAYER_FIELDS, "layer");
}

typedef struct run_ctx {
    pl_run_result *r;
    uint64_t seen;
} run_ctx;

static pl_status history_member(jp *j, const char *key, const char *key_at, void *vctx)
{
    return table_member(j, key, key_at, vctx, pl__history_fields, PL__N_HISTORY_FIELDS, "history");
}

/* What an array of a record holds: objects of `size` bytes whose keys are
 * the `fields` table (read by `member`). */
typedef struct elem_kind {
    const char *noun; /* "expected a <noun> object": "layer", "history" */
    const char *what; /* what lacks a key: "layer", "history row" */
    size_t size, first_cap;
    member_fn member;
    const pl__field *fields;
} elem_kind;

/* The array at j into *arr (*n elements; the caller stores *arr back even
 * on failure, so that what was read is freed with the record). */
static pl_status jp_array(jp *j, const char *name, void **arr, size_t *n, const elem_kind *k,
                          size_t n_fields)
{
    pl_status st;
    size_t cap = 0;
    if (jp_peek(j) != '[')
        return PL__JP_FAIL(j, "\"%s\" must be an array", name);
    j->p++;
    jp_ws(j);
    if (jp_peek(j) == ']') {
        j->p++;
        return PL_OK;
    }
    for (;;) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : k->first_cap;
            void *nv = realloc(*arr, ncap * k->size);
            if (!nv)
                return pl_error_set(j->err, PL_ENOMEM, "%s: out of memory", j->path);
            *arr = nv;
            cap = ncap;
        }
        elem_ctx c = {(char *)*arr + *n * k->size, 0};
        memset(c.obj, 0, k->size);
        (*n)++;
        jp_ws(j);
        if (jp_peek(j) != '{')
            return PL__JP_FAIL(j, "%s: expected a %s object", jp_what(j), k->noun);
        if ((st = jp_object(j, k->member, &c)) ||
            (st = jp_check_seen(j, k->what, k->fields, n_fields, c.seen, 0)))
            return st;
        if (!jp_more(j, ']', &st))
            return st;
    }
}

static pl_status jp_layers(jp *j, pl_run_result *r)
{
    static const elem_kind k = {"layer", "layer", sizeof *r->layers, 8, layer_member, pl__layer_fields};
    void *v = r->layers;
    pl_status st = jp_array(j, "layers", &v, &r->n_layers, &k, PL__N_LAYER_FIELDS);
    r->layers = v;
    return st;
}

static pl_status jp_history(jp *j, pl_run_result *r)
{
    static const elem_kind k = {"history", "history row", sizeof *r->history, 16, history_member,
                                pl__history_fields};
    void *v = r->history;
    pl_status st = jp_array(j, "history", &v, &r->n_history, &k, PL__N_HISTORY_FIELDS);
    r->history = v;
    return st;
}

/* one "key": "string" of a record's manifest (manifest.h) */
static pl_status manifest_member(jp *j, const char *key, const char *key_at, void *vctx)
{
    pl_run_result *r = vctx;
    if (pl_manifest_get(r, key))
        return jp_fail_at(j, key_at, "duplicate manifest key \"%s\"", key);
    if (r->n_manifest >= 256)
        return jp_fail_at(j, key_at, "more than 256 manifest entries");
    if (jp_peek(j) != '"')
        return PL__JP_FAIL(j, "manifest \"%s\" must be a string", key);
    pl_status st = jp_string(j);
    if (st)
        return st;
    if (pl_manifest_add(r, key, j->str.data))
        return pl_error_set(j->err, PL_ENOMEM, "%s: out of memory", j->path);
    return PL_OK;
}

static pl_status run_member(jp *j, const char *key, const char *key_at, void *vctx)
{
    run_ctx *c = vctx;
    uint64_t bit;
    int i = field_find(pl__run_fields, PL__N_RUN_FIELDS, key);
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
        return jp_fail_at(j, key_at, "unknown key \"%s\"", key);
    if (c->seen & bit)
        return jp_fail_at(j, key_at, "duplicate key \"%s\"", key);
    c->seen |= bit;

    if (i >= 0)
        return jp_field_value(j, &pl__run_fields[i], c->r);
    if (bit == PL__SEEN_LAYERS)
        return jp_layers(j, c->r);
    if (bit == PL__SEEN_MANIFEST)
        return jp_object(j, manifest_member, c->r);
    if (bit == PL__SEEN_HISTORY)
        return jp_history(j, c->r);

    const char *at = j->p;
    pl_status st;
    if (bit == PL__SEEN_FORMAT) {
        if (jp_peek(j) != '"')
            return PL__JP_FAIL(j, "\"format\" must be a string");
        if ((st = jp_string(j)))
            return st;
        if (strcmp(j->str.data, PL__RECORD_FORMAT) != 0)
            return jp_fail_at(j, at, "not a prunelab run record (format \"%.60s\", expected \"%s\")",
                                  j->str.data, PL__RECORD_FORMAT);
        return PL_OK;
    }
    char tok[64];
    int integral;
    if ((st = jp_number(j, tok, sizeof tok, &integral)))
        return st;
    if (!integral || strcmp(tok, "1") != 0)
        return jp_fail_at(j, at, "record version %s is not supported (this prunelab reads version %d)",
                              tok, PL__RECORD_VERSION);
    return PL_OK;
}

/* Values a run can produce; anything else is a corrupt or hand-edited
 * record, refused before it reaches a report or a comparison. */
pl_status pl__record_check(const char *path, const pl_run_result *r, pl_error *err)
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
    jp j = {.path = path, .start = text, .p = text, .end = text + len, .err = err};
    run_ctx c = {r, 0};
    jp_ws(&j);
    if (jp_peek(&j) != '{') {
        st = PL__JP_FAIL(&j, "%s: expected a JSON object (a prunelab run record)", jp_what(&j));
    } else if ((st = jp_object(&j, run_member, &c)) == PL_OK &&
               (st = jp_check_seen(&j, "record", pl__run_fields, PL__N_RUN_FIELDS, c.seen,
                                       PL__SEEN_FORMAT | PL__SEEN_VERSION | PL__SEEN_LAYERS)) == PL_OK) {
        jp_ws(&j);
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

