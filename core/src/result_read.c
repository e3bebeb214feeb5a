/*
 * result_read.c — the strict reader of run records (pl_record_read): the
 * JSON that result.c writes, read back field by field from the shared field
 * tables (result_fields.h). It accepts exactly that shape: each key once, no
 * unknown or missing keys, the JSON type each field needs; errors are
 * "file:line:col: cause" (line and column count bytes, as a text editor
 * shows them for ASCII).
 *
 * libyaml's event parser reads the structure (JSON is YAML flow syntax); the
 * types come from the scalar style: double-quoted is a JSON string, plain is
 * a number or null (true and false are never a record's type). libyaml
 * parses a shadow of the text (shadow_of): the same bytes, except that
 * inside strings every escape pair and every byte that is not printable
 * ASCII becomes 'x', and outside them tabs and carriage returns become
 * spaces and other bytes outside printable ASCII become 'x'. So libyaml
 * never sees an encoding or escape it would judge by YAML's rules, byte
 * offsets are its marks, and strings are decoded from the original bytes by
 * JSON's rules (jp_string): whatever the writer put in a string (raw UTF-8,
 * invalid UTF-8 cut at a field's size, C1 controls) reads back as written.
 * Numbers are read with strtod/strtoll from their JSON text: the writer's
 * %.17g reads back bit for bit, its ±1e999 (±Inf) overflows to ±Inf, and
 * its null is NaN.
 *
 * Refused, where YAML would allow it: anchors, aliases and tags; block
 * style (a record is one flow object: '{' first, nothing but white space
 * after its '}', so no "---", "..." or % directives); single-quoted strings
 * and plain (unquoted) keys or strings; YAML's escapes and raw tabs or line
 * breaks inside strings (JSON's escapes only); comments; a trailing ',';
 * a "key": value pair in an array without its braces; numbers outside
 * JSON's grammar (01, .5, +1, 1., 0x1, .inf, .nan, 1_000, ~). Also refused,
 * though JSON allows it (the writer never writes it): a key whose ':' is on
 * a later line, or that is over 1,024 characters long (libyaml's limit on a
 * key; no record key is over 63).
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
#include <yaml.h>

/* ---- strict reader ------------------------------------------------------- */

typedef struct jp {
    const char *path;
    const char *text;   /* the record as read */
    char *shadow;       /* what libyaml parses (shadow_of) */
    size_t len;
    size_t pos;         /* the byte after the last event's token */
    yaml_parser_t yp;
    yaml_event_t ev;    /* the current event */
    int have_ev;
    pl__buf str;        /* the last decoded string */
    pl_error *err;
} jp;

static pl_status jp_fail_at(jp *j, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static pl_status jp_fail_at(jp *j, size_t at, const char *fmt, ...)
{
    int line = 1, col = 1;
    for (size_t q = 0; q < at && q < j->len; q++) {
        if (j->text[q] == '\n') {
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

/* where the current event starts and ends (byte offsets: the shadow is ASCII) */
static size_t ev_at(const jp *j) { return (size_t)j->ev.start_mark.index; }
static size_t ev_end(const jp *j) { return (size_t)j->ev.end_mark.index; }

static const char *jp_what(const jp *j, size_t at)
{
    return at < j->len ? "unexpected character" : "unexpected end of file";
}

/* The text libyaml parses: `t` with, inside strings, every escape pair and
 * every byte outside printable ASCII made 'x', and outside strings tabs and
 * carriage returns made spaces (JSON white space that YAML treats
 * otherwise) and every other byte outside printable ASCII made 'x' (JSON
 * refuses it there; so does the reader, as part of a bad token). Same
 * length, same offsets, same line breaks. */
static char *shadow_of(const char *t, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (in_str && c == '\\') {
            s[i] = 'x';
            if (i + 1 < n)
                s[++i] = 'x';
            continue;
        }
        if (c == '"')
            in_str = !in_str;
        if (c >= 0x7f || (c < 0x20 && (in_str || (c != '\n' && c != '\t' && c != '\r'))))
            c = 'x';
        else if (c == '\t' || c == '\r')
            c = ' ';
        s[i] = (char)c;
    }
    s[n] = '\0';
    return s;
}

static pl_status jp_yaml_fail(jp *j)
{
    yaml_parser_t *p = &j->yp;
    if (p->error == YAML_MEMORY_ERROR)
        return pl_error_set(j->err, PL_ENOMEM, "%s: out of memory", j->path);
    const char *problem = p->problem ? p->problem : "syntax error";
    size_t at = (size_t)p->problem_mark.index;
    /* the old reader's words for the two faults a cut-short file shows */
    if (p->context && !strcmp(p->context, "while scanning a quoted scalar") && at >= j->len)
        return jp_fail_at(j, at, "unterminated string");
    const char *eof = at >= j->len ? "unexpected end of file: " : "";
    if (p->context)
        return jp_fail_at(j, at, "%s%s (%s)", eof, problem, p->context);
    return jp_fail_at(j, at, "%s%s", eof, problem);
}

static int is_string(const jp *j)
{
    return j->ev.type == YAML_SCALAR_EVENT && j->ev.data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
}

static int is_plain(const jp *j)
{
    return j->ev.type == YAML_SCALAR_EVENT && j->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* What lies between the last token and the current event must be JSON
 * white space around one `sep` (',' between members or elements, ':'
 * between a key and its value; 0: none). `close` is the bracket that ends
 * the object or array, or 0 after a key. */
static pl_status jp_gap(jp *j, char sep, char close)
{
    size_t at = ev_at(j), sep_at = 0;
    int ends = j->ev.type == YAML_MAPPING_END_EVENT || j->ev.type == YAML_SEQUENCE_END_EVENT;
    for (size_t i = j->pos; i < at; i++) {
        char c = j->shadow[i];
        if (c == ' ' || c == '\n')
            continue;
        if (!sep || c != sep || sep_at)
            return sep && close ? jp_fail_at(j, i, "unexpected character: expected ',' or '%c'", close)
                   : sep        ? jp_fail_at(j, i, "unexpected character: expected '%c'", sep)
                                : jp_fail_at(j, i, "unexpected character");
        sep_at = i + 1;
    }
    if (ends && sep_at)
        return jp_fail_at(j, sep_at - 1, "a trailing ',' before '%c'", close);
    if (!ends && sep && !sep_at)
        return close ? jp_fail_at(j, at, "%s: expected ',' or '%c'", jp_what(j, at), close)
                     : jp_fail_at(j, at, "%s: expected '%c'", jp_what(j, at), sep);
    return PL_OK;
}

/* The next event into j->ev, checked for what JSON lacks, and the gap
 * before it (jp_gap). */
static pl_status jp_next(jp *j, char sep, char close)
{
    if (j->have_ev) {
        j->pos = ev_end(j);
        yaml_event_delete(&j->ev);
        j->have_ev = 0;
    }
    if (!yaml_parser_parse(&j->yp, &j->ev))
        return jp_yaml_fail(j);
    j->have_ev = 1;
    const yaml_event_t *e = &j->ev;
    const yaml_char_t *anchor = NULL, *tag = NULL;
    if (e->type == YAML_ALIAS_EVENT)
        return jp_fail_at(j, ev_at(j), "an alias (*%.40s) is not JSON", (const char *)e->data.alias.anchor);
    if (e->type == YAML_SCALAR_EVENT) {
        anchor = e->data.scalar.anchor;
        tag = e->data.scalar.tag;
        if (!is_string(j) && !is_plain(j))
            return jp_fail_at(j, ev_at(j), "a single-quoted or block string is not JSON (write \"...\")");
    } else if (e->type == YAML_MAPPING_START_EVENT) {
        anchor = e->data.mapping_start.anchor;
        tag = e->data.mapping_start.tag;
    } else if (e->type == YAML_SEQUENCE_START_EVENT) {
        anchor = e->data.sequence_start.anchor;
        tag = e->data.sequence_start.tag;
    }
    if (anchor)
        return jp_fail_at(j, ev_at(j), "an anchor (&%.40s) is not JSON", (const char *)anchor);
    if (tag)
        return jp_fail_at(j, ev_at(j), "a tag (%.40s) is not JSON", (const char *)tag);
    if (e->type == YAML_MAPPING_START_EVENT && e->data.mapping_start.style != YAML_FLOW_MAPPING_STYLE)
        return jp_fail_at(j, ev_at(j), "a block-style mapping is not JSON");
    if (e->type == YAML_MAPPING_START_EVENT && j->shadow[ev_at(j)] != '{')
        return jp_fail_at(j, ev_at(j), "a \"key\": value pair in an array is not JSON (write {...})");
    return jp_gap(j, sep, close);
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

/* Decodes the current event, a double-quoted scalar, from the record's own
 * bytes by JSON's rules into j->str. */
static pl_status jp_string(jp *j)
{
    j->str.len = 0;
    pl__buf_add(&j->str, "", 0);
    const char *p = j->text + ev_at(j) + 1, *end = j->text + ev_end(j) - 1; /* inside the quotes */
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            return jp_fail_at(j, (size_t)(p - j->text), "control character in a string (must be escaped)");
        if (c != '\\') {
            pl__buf_add(&j->str, p++, 1);
            continue;
        }
        const char *esc = p++;
        size_t esc_at = (size_t)(esc - j->text);
        if (p >= end) /* cannot be: the shadow hides every escape pair from libyaml */
            return jp_fail_at(j, esc_at, "unterminated string");
        char e = *p++;
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
            if (end - p < 4 || !hex4(p, &cp))
                return jp_fail_at(j, esc_at, "bad \\u escape (expected 4 hex digits)");
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return jp_fail_at(j, esc_at, "unpaired UTF-16 surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) || lo < 0xDC00 ||
                    lo > 0xDFFF)
                    return jp_fail_at(j, esc_at, "unpaired UTF-16 surrogate in \\u escape");
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0)
                return jp_fail_at(j, esc_at, "\\u0000 is not allowed in a record string");
            utf8(&j->str, cp);
            break;
        }
        default:
            return jp_fail_at(j, esc_at, "invalid escape '\\%c'", e);
        }
    }
    if (j->str.failed)
        return pl_error_set(j->err, PL_ENOMEM, "%s: out of memory", j->path);
    return PL_OK;
}

/* Scans the current event, a plain scalar, as a JSON number into tok
 * (NUL-terminated); *integral is 0 when it has a fraction or an exponent.
 * Numbers only stand in objects: what follows a number is ',' or '}'. */
static pl_status jp_number(jp *j, char *tok, size_t cap, int *integral)
{
    size_t at = ev_at(j);
    const char *s = j->shadow, *q = s + at, *e = s + ev_end(j);
#define PL__DIGIT(x) ((x) >= '0' && (x) <= '9')
    *integral = 1;
    if (q < e && *q == '-')
        q++;
    if (q >= e || !PL__DIGIT(*q))
        return jp_fail_at(j, at, "%s: expected a number", jp_what(j, at));
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
            return jp_fail_at(j, (size_t)(q - s), "expected a digit after '.'");
        while (q < e && PL__DIGIT(*q))
            q++;
    }
    if (q < e && (*q == 'e' || *q == 'E')) {
        *integral = 0;
        q++;
        if (q < e && (*q == '+' || *q == '-'))
            q++;
        if (q >= e || !PL__DIGIT(*q))
            return jp_fail_at(j, (size_t)(q - s), "expected a digit in the exponent");
        while (q < e && PL__DIGIT(*q))
            q++;
    }
#undef PL__DIGIT
    if (q < e) { /* the rest of a plain scalar ("01", "1 2", "1x") */
        while (*q == ' ' || *q == '\n')
            q++;
        return jp_fail_at(j, (size_t)(q - s), "unexpected character: expected ',' or '}'");
    }
    size_t n = (size_t)(q - (s + at));
    if (n >= cap)
        return jp_fail_at(j, at, "number too long");
    memcpy(tok, s + at, n);
    tok[n] = '\0';
    return PL_OK;
}

static int starts_number(const jp *j)
{
    char c = j->shadow[ev_at(j)];
    return is_plain(j) && ev_end(j) > ev_at(j) && (c == '-' || (c >= '0' && c <= '9'));
}

static pl_status jp_field_value(jp *j, const pl__field *f, void *obj)
{
    char *dst = (char *)obj + f->off;
    size_t at = ev_at(j);
    char tok[64];
    int integral;
    pl_status st;

    switch (f->type) {
    case PL__F_STR:
        if (!is_string(j))
            return jp_fail_at(j, at, "\"%s\" must be a string", f->name);
        if ((st = jp_string(j)))
            return st;
        if (j->str.len >= f->size)
            return jp_fail_at(j, at, "\"%s\" is too long (%zu bytes, at most %zu)", f->name,
                              j->str.len, f->size - 1);
        memcpy(dst, j->str.data, j->str.len + 1);
        return PL_OK;
    case PL__F_F64: {
        double v;
        if (is_plain(j) && strcmp((const char *)j->ev.data.scalar.value, "null") == 0) {
            v = NAN;
        } else {
            if (!starts_number(j))
                return jp_fail_at(j, at, "\"%s\" must be a number or null", f->name);
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
        if (!starts_number(j))
            return jp_fail_at(j, at, "\"%s\" must be an integer", f->name);
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

/* Called for every key of an object, the current event being its value;
 * `key_at` is where the key starts. A value that is an object or array is
 * read through its closing bracket. */
typedef pl_status (*member_fn)(jp *j, const char *key, size_t key_at, void *ctx);

/* The object whose '{' is the current event, through its '}'. */
static pl_status jp_object(jp *j, member_fn fn, void *ctx)
{
    pl_status st;
    for (char sep = 0;; sep = ',') {
        if ((st = jp_next(j, sep, '}')))
            return st;
        if (j->ev.type == YAML_MAPPING_END_EVENT)
            return PL_OK;
        size_t key_at = ev_at(j);
        char key[64];
        if (!is_string(j))
            return jp_fail_at(j, key_at, "%s: expected a key string", jp_what(j, key_at));
        if ((st = jp_string(j)))
            return st;
        snprintf(key, sizeof key, "%s", j->str.data);
        if (j->str.len >= sizeof key)
            return jp_fail_at(j, key_at, "unknown key \"%.40s...\"", key);
        if ((st = jp_next(j, ':', 0)) || (st = fn(j, key, key_at, ctx)))
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

/* At the '}' of an object: every key it needs was seen. */
static pl_status jp_check_seen(jp *j, const char *what, const pl__field *fields, size_t n,
                               uint64_t seen, uint64_t extra_bits)
{
    size_t at = ev_at(j);
    for (size_t i = 0; i < n; i++)
        if (!(seen & (UINT64_C(1) << i)))
            return jp_fail_at(j, at, "%s lacks the key \"%s\"", what, fields[i].name);
    if (extra_bits & PL__SEEN_FORMAT && !(seen & PL__SEEN_FORMAT))
        return jp_fail_at(j, at, "%s lacks the key \"format\"", what);
    if (extra_bits & PL__SEEN_VERSION && !(seen & PL__SEEN_VERSION))
        return jp_fail_at(j, at, "%s lacks the key \"version\"", what);
    if (extra_bits & PL__SEEN_LAYERS && !(seen & PL__SEEN_LAYERS))
        return jp_fail_at(j, at, "%s lacks the key \"layers\"", what);
    return PL_OK;
}

/* an object being read: where it goes, which table keys were seen */
typedef struct elem_ctx {
    void *obj;
    uint64_t seen;
} elem_ctx;

/* One key of an object whose keys are the table `fields` (each once). */
static pl_status table_member(jp *j, const char *key, size_t key_at, elem_ctx *c, const pl__field *fields,
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

static pl_status layer_member(jp *j, const char *key, size_t key_at, void *vctx)
{
    elem_ctx *c = vctx;
    pl_layer_result *l = c->obj;
    int i = field_find(pl__layer_fields, PL__N_LAYER_FIELDS, key);
    if (i < 0 && strcmp(key, "kept") == 0) { /* optional: the units the layer kept */
        if (l->kept)
            return jp_fail_at(j, key_at, "duplicate layer key \"kept\"");
        if (!is_string(j))
            return jp_fail_at(j, ev_at(j), "\"kept\" must be a string");
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

static pl_status history_member(jp *j, const char *key, size_t key_at, void *vctx)
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

/* The array that is the current event into *arr (*n elements; the caller
 * stores *arr back even on failure, so that what was read is freed with the
 * record). */
static pl_status jp_array(jp *j, const char *name, void **arr, size_t *n, const elem_kind *k,
                          size_t n_fields)
{
    pl_status st;
    size_t cap = 0;
    if (j->ev.type != YAML_SEQUENCE_START_EVENT)
        return jp_fail_at(j, ev_at(j), "\"%s\" must be an array", name);
    for (char sep = 0;; sep = ',') {
        if ((st = jp_next(j, sep, ']')))
            return st;
        if (j->ev.type == YAML_SEQUENCE_END_EVENT)
            return PL_OK;
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
        if (j->ev.type != YAML_MAPPING_START_EVENT)
            return jp_fail_at(j, ev_at(j), "%s: expected a %s object", jp_what(j, ev_at(j)), k->noun);
        if ((st = jp_object(j, k->member, &c)) ||
            (st = jp_check_seen(j, k->what, k->fields, n_fields, c.seen, 0)))
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
static pl_status manifest_member(jp *j, const char *key, size_t key_at, void *vctx)
{
    pl_run_result *r = vctx;
    if (pl_manifest_get(r, key))
        return jp_fail_at(j, key_at, "duplicate manifest key \"%s\"", key);
    if (r->n_manifest >= 256)
        return jp_fail_at(j, key_at, "more than 256 manifest entries");
    if (!is_string(j))
        return jp_fail_at(j, ev_at(j), "manifest \"%s\" must be a string", key);
    pl_status st = jp_string(j);
    if (st)
        return st;
    if (pl_manifest_add(r, key, j->str.data))
        return pl_error_set(j->err, PL_ENOMEM, "%s: out of memory", j->path);
    return PL_OK;
}

static pl_status run_member(jp *j, const char *key, size_t key_at, void *vctx)
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
    if (bit == PL__SEEN_MANIFEST) {
        if (j->ev.type != YAML_MAPPING_START_EVENT)
            return jp_fail_at(j, ev_at(j), "\"manifest\" must be an object");
        return jp_object(j, manifest_member, c->r);
    }
    if (bit == PL__SEEN_HISTORY)
        return jp_history(j, c->r);

    size_t at = ev_at(j);
    pl_status st;
    if (bit == PL__SEEN_FORMAT) {
        if (!is_string(j))
            return jp_fail_at(j, at, "\"format\" must be a string");
        if ((st = jp_string(j)))
            return st;
        if (strcmp(j->str.data, PL__RECORD_FORMAT) != 0)
            return jp_fail_at(j, at, "not a prunelab run record (format \"%.60s\", expected \"%s\")",
                              j->str.data, PL__RECORD_FORMAT);
        return PL_OK;
    }
    char tok[64];
    int integral;
    if (!starts_number(j))
        return jp_fail_at(j, at, "%s: expected a number", jp_what(j, at));
    if ((st = jp_number(j, tok, sizeof tok, &integral)))
        return st;
    if (!integral || strcmp(tok, "1") != 0)
        return jp_fail_at(j, at, "record version %s is not supported (this prunelab reads version %d)",
                          tok, PL__RECORD_VERSION);
    return PL_OK;
}

/* The record: '{' first, its members, nothing after its '}'. */
static pl_status jp_record(jp *j, pl_run_result *r)
{
    size_t at = 0;
    while (at < j->len && (j->shadow[at] == ' ' || j->shadow[at] == '\n'))
        at++;
    if (at == j->len || j->shadow[at] != '{')
        return jp_fail_at(j, at, "%s: expected a JSON object (a prunelab run record)", jp_what(j, at));
    pl_status st;
    run_ctx c = {r, 0};
    for (int k = 0; k < 3; k++) /* stream start, document start, the record's '{' */
        if ((st = jp_next(j, 0, 0)))
            return st;
    if ((st = jp_object(j, run_member, &c)) ||
        (st = jp_check_seen(j, "record", pl__run_fields, PL__N_RUN_FIELDS, c.seen,
                            PL__SEEN_FORMAT | PL__SEEN_VERSION | PL__SEEN_LAYERS)))
        return st;
    for (at = ev_end(j); at < j->len; at++)
        if (j->shadow[at] != ' ' && j->shadow[at] != '\n')
            return jp_fail_at(j, at, "unexpected text after the record");
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
    jp j = {.path = path, .text = text, .len = len, .err = err};
    if (!(j.shadow = shadow_of(text, len)) || !yaml_parser_initialize(&j.yp)) {
        free(j.shadow);
        free(text);
        return pl_error_set(err, PL_ENOMEM, "%s: out of memory", path);
    }
    yaml_parser_set_input_string(&j.yp, (const unsigned char *)j.shadow, len);
    st = jp_record(&j, r);
    if (j.have_ev)
        yaml_event_delete(&j.ev);
    yaml_parser_delete(&j.yp);
    pl__buf_free(&j.str);
    free(j.shadow);
    free(text);
    if (st) {
        pl_run_result_free(r);
        memset(r, 0, sizeof *r);
    }
    return st;
}
