/*
 * yaml.c — libyaml events -> pl_node tree with 1-based positions.
 *
 * Only the plain data subset of YAML is accepted: one document, scalar keys,
 * no anchors, aliases or tags, no duplicate keys. The root node is allocated
 * together with a copy of the file name, which every node of the tree
 * borrows (node->file).
 */
#include "config.h"
#include "fileio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define PL_YAML_MAX_DEPTH 64
#define PL_YAML_MAX_KEYS 100000
#define PL_YAML_MAX_BYTES ((size_t)64 << 20)

typedef struct ybuild {
    yaml_parser_t p;
    const char *file;
    const char *text;
    size_t len;
    pl_error *err;
} ybuild;

void pl_node_free(pl_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys)
            free(n->keys[i]);
        pl_node_free(n->items[i]);
    }
    free(n->scalar);
    free(n->keys);
    free(n->items);
    free(n->key_line);
    free(n->key_col);
    free(n);
}

const pl_node *pl_node_get(const pl_node *map, const char *key)
{
    if (!map || map->type != PL_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->items[i];
    return NULL;
}

/* Appends a slot to a MAP or SEQ; returns its index or -1 (out of memory). */
static long node_grow(pl_node *n)
{
    size_t k = n->n + 1;
    if ((k & (k - 1)) == 0 || n->n == 0) { /* capacity is the next power of two */
        size_t cap = k < 4 ? 4 : k * 2;
        pl_node **items = realloc(n->items, cap * sizeof *items);
        if (!items)
            return -1;
        n->items = items;
        if (n->type == PL_NODE_MAP) {
            char **keys = realloc(n->keys, cap * sizeof *keys);
            if (!keys)
                return -1;
            n->keys = keys;
            int *kl = realloc(n->key_line, cap * sizeof *kl);
            if (!kl)
                return -1;
            n->key_line = kl;
            int *kc = realloc(n->key_col, cap * sizeof *kc);
            if (!kc)
                return -1;
            n->key_col = kc;
        }
    }
    n->items[n->n] = NULL;
    if (n->type == PL_NODE_MAP) {
        n->keys[n->n] = NULL;
        n->key_line[n->n] = 0;
        n->key_col[n->n] = 0;
    }
    return (long)n->n++;
}

pl_status pl_node_append(pl_node *parent, const char *key, int key_line, int key_col,
                         pl_node *child)
{
    long i = node_grow(parent);
    if (i < 0)
        return PL_ENOMEM;
    if (parent->type == PL_NODE_MAP) {
        char *k = strdup(key ? key : "");
        if (!k) {
            parent->n--;
            return PL_ENOMEM;
        }
        parent->keys[i] = k;
        parent->key_line[i] = key_line;
        parent->key_col[i] = key_col;
    }
    parent->items[i] = child;
    return PL_OK;
}

pl_node *pl_node_new(pl_node_type type, const char *file, int line, int col, const char *scalar)
{
    pl_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->type = type;
    n->file = file;
    n->line = line;
    n->col = col;
    if (type == PL_NODE_SCALAR) {
        n->scalar = strdup(scalar ? scalar : "");
        if (!n->scalar) {
            free(n);
            return NULL;
        }
    }
    return n;
}

pl_node *pl_node_clone(const pl_node *src)
{
    if (!src)
        return NULL;
    pl_node *n = pl_node_new(src->type, src->file, src->line, src->col, src->scalar);
    if (!n)
        return NULL;
    n->quoted = src->quoted;
    for (size_t i = 0; i < src->n; i++) {
        pl_node *c = pl_node_clone(src->items[i]);
        if (!c || pl_node_append(n, src->keys ? src->keys[i] : NULL,
                                 src->key_line ? src->key_line[i] : 0,
                                 src->key_col ? src->key_col[i] : 0, c)) {
            pl_node_free(c);
            pl_node_free(n);
            return NULL;
        }
    }
    return n;
}

/* ---- parsing ------------------------------------------------------------- */

static pl_status perr(ybuild *b, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static pl_status perr(ybuild *b, yaml_mark_t m, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pl_error_set(b->err, PL_ECONFIG, "%s:%zu:%zu: %s", b->file, (size_t)m.line + 1,
                        (size_t)m.column + 1, msg);
}

/* 1-based line and column of byte offset `off` of the text. */
static void offset_pos(const ybuild *b, size_t off, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < b->len; i++) {
        if (b->text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)b->text[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

/* Does 1-based line `line` start with whitespace that contains a tab? */
static int line_has_indent_tab(const ybuild *b, size_t line)
{
    size_t l = 1, i = 0;
    while (i < b->len && l < line) {
        if (b->text[i++] == '\n')
            l++;
    }
    for (; i < b->len && (b->text[i] == ' ' || b->text[i] == '\t'); i++)
        if (b->text[i] == '\t')
            return 1;
    /* tab after "key:" on a line with an indented block also trips libyaml */
    for (; i < b->len && b->text[i] != '\n'; i++)
        if (b->text[i] == '\t')
            return 1;
    return 0;
}

static pl_status yaml_fail(ybuild *b)
{
    yaml_parser_t *p = &b->p;
    if (p->error == YAML_MEMORY_ERROR)
        return pl_error_set(b->err, PL_ENOMEM, "%s: out of memory while parsing YAML", b->file);
    size_t line, col;
    if (p->error == YAML_READER_ERROR) {
        offset_pos(b, p->problem_offset, &line, &col);
        return pl_error_set(b->err, PL_ECONFIG, "%s:%zu:%zu: not a YAML text file: %s",
                            b->file, line, col, p->problem ? p->problem : "unreadable input");
    }
    line = p->problem_mark.line + 1;
    col = p->problem_mark.column + 1;
    const char *hint = line_has_indent_tab(b, line)
                           ? " (tabs are not allowed in YAML indentation; use spaces)"
                           : "";
    if (p->context)
        return pl_error_set(b->err, PL_ECONFIG, "%s:%zu:%zu: invalid YAML: %s (%s at %zu:%zu)%s",
                            b->file, line, col, p->problem ? p->problem : "syntax error",
                            p->context, (size_t)p->context_mark.line + 1,
                            (size_t)p->context_mark.column + 1, hint);
    return pl_error_set(b->err, PL_ECONFIG, "%s:%zu:%zu: invalid YAML: %s%s", b->file, line, col,
                        p->problem ? p->problem : "syntax error", hint);
}

static pl_status next_event(ybuild *b, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&b->p, ev))
        return yaml_fail(b);
    return PL_OK;
}

/* Rejects the YAML features prunelab does not use. */
static pl_status check_plain(ybuild *b, const yaml_event_t *ev)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return perr(b, ev->start_mark, "aliases (*%s) are not supported; write the value out",
                    (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        break;
    default:
        break;
    }
    if (anchor)
        return perr(b, ev->start_mark, "anchors (&%s) are not supported; write the value out",
                    (const char *)anchor);
    if (tag)
        return perr(b, ev->start_mark, "tags (%s) are not supported; write a plain value",
                    (const char *)tag);
    return PL_OK;
}

static pl_status fill_scalar(ybuild *b, pl_node *n, const yaml_event_t *ev)
{
    size_t len = ev->data.scalar.length;
    if (memchr(ev->data.scalar.value, '\0', len))
        return perr(b, ev->start_mark, "NUL character inside a value");
    n->type = PL_NODE_SCALAR;
    n->scalar = malloc(len + 1);
    if (!n->scalar)
        return pl_error_set(b->err, PL_ENOMEM, "%s: out of memory", b->file);
    memcpy(n->scalar, ev->data.scalar.value, len);
    n->scalar[len] = '\0';
    n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    return PL_OK;
}

/* Fills node `n` from `ev` (its first event; consumed) and the events that
 * follow. Children are attached before they are parsed, so on failure the
 * caller frees the partial tree from its root. */
static pl_status parse_node(ybuild *b, pl_node *n, yaml_event_t *ev, int depth)
{
    pl_status st = check_plain(b, ev);
    n->file = b->file;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    if (st == PL_OK && depth > PL_YAML_MAX_DEPTH)
        st = perr(b, ev->start_mark, "nesting deeper than %d levels", PL_YAML_MAX_DEPTH);
    if (st) {
        yaml_event_delete(ev);
        return st;
    }
    if (ev->type == YAML_SCALAR_EVENT) {
        st = fill_scalar(b, n, ev);
        yaml_event_delete(ev);
        return st;
    }
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    if (!is_map && ev->type != YAML_SEQUENCE_START_EVENT) {
        st = perr(b, ev->start_mark, "unexpected YAML structure");
        yaml_event_delete(ev);
        return st;
    }
    yaml_event_delete(ev);
    n->type = is_map ? PL_NODE_MAP : PL_NODE_SEQ;
    for (;;) {
        yaml_event_t e;
        if ((st = next_event(b, &e)))
            return st;
        if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&e);
            return PL_OK;
        }
        if (n->n >= PL_YAML_MAX_KEYS) {
            st = perr(b, e.start_mark, "more than %d entries in one map or list", PL_YAML_MAX_KEYS);
            yaml_event_delete(&e);
            return st;
        }
        if (is_map) {
            if ((st = check_plain(b, &e))) {
                yaml_event_delete(&e);
                return st;
            }
            if (e.type != YAML_SCALAR_EVENT) {
                st = perr(b, e.start_mark, "keys must be plain scalars, not maps or lists");
                yaml_event_delete(&e);
                return st;
            }
            pl_node key = {0};
            st = fill_scalar(b, &key, &e);
            if (st) {
                free(key.scalar);
                yaml_event_delete(&e);
                return st;
            }
            for (size_t i = 0; i < n->n; i++) {
                if (strcmp(n->keys[i], key.scalar) == 0) {
                    st = perr(b, e.start_mark, "duplicate key '%.200s' (first at line %d)",
                              key.scalar, n->key_line[i]);
                    free(key.scalar);
                    yaml_event_delete(&e);
                    return st;
                }
            }
            long i = node_grow(n);
            if (i < 0) {
                free(key.scalar);
                yaml_event_delete(&e);
                return pl_error_set(b->err, PL_ENOMEM, "%s: out of memory", b->file);
            }
            n->keys[i] = key.scalar;
            n->key_line[i] = (int)e.start_mark.line + 1;
            n->key_col[i] = (int)e.start_mark.column + 1;
            yaml_event_delete(&e);
            if ((st = next_event(b, &e)))
                return st;
            pl_node *c = calloc(1, sizeof *c);
            if (!c) {
                yaml_event_delete(&e);
                return pl_error_set(b->err, PL_ENOMEM, "%s: out of memory", b->file);
            }
            n->items[i] = c;
            if ((st = parse_node(b, c, &e, depth + 1)))
                return st;
        } else {
            long i = node_grow(n);
            pl_node *c = i < 0 ? NULL : calloc(1, sizeof *c);
            if (!c) {
                if (i >= 0)
                    n->n--;
                yaml_event_delete(&e);
                return pl_error_set(b->err, PL_ENOMEM, "%s: out of memory", b->file);
            }
            n->items[i] = c;
            if ((st = parse_node(b, c, &e, depth + 1)))
                return st;
        }
    }
}

static pl_status parse_stream(ybuild *b, pl_node *root)
{
    yaml_event_t e;
    pl_status st;
    if ((st = next_event(b, &e)))
        return st;
    yaml_event_delete(&e); /* STREAM_START */
    if ((st = next_event(b, &e)))
        return st;
    if (e.type == YAML_STREAM_END_EVENT) { /* no document: an empty (null) root */
        yaml_event_delete(&e);
        root->type = PL_NODE_SCALAR;
        root->line = root->col = 1;
        root->scalar = strdup("");
        return root->scalar ? PL_OK : pl_error_set(b->err, PL_ENOMEM, "%s: out of memory", b->file);
    }
    yaml_event_delete(&e); /* DOCUMENT_START */
    if ((st = next_event(b, &e)))
        return st;
    if ((st = parse_node(b, root, &e, 0)))
        return st;
    if ((st = next_event(b, &e)))
        return st;
    yaml_event_delete(&e); /* DOCUMENT_END */
    if ((st = next_event(b, &e)))
        return st;
    if (e.type != YAML_STREAM_END_EVENT)
        st = perr(b, e.start_mark, "more than one YAML document (---); one per file");
    yaml_event_delete(&e);
    return st;
}

pl_status pl_yaml_parse_string(const char *name, const char *text, pl_node **out, pl_error *err)
{
    *out = NULL;
    size_t nlen = strlen(name);
    /* the root carries the file name that every node borrows */
    pl_node *root = calloc(1, sizeof *root + nlen + 1);
    if (!root)
        return pl_error_set(err, PL_ENOMEM, "%s: out of memory", name);
    char *fname = (char *)(root + 1);
    memcpy(fname, name, nlen + 1);
    root->type = PL_NODE_SCALAR;
    root->file = fname;

    ybuild b = {.file = fname, .text = text, .len = strlen(text), .err = err};
    if (!yaml_parser_initialize(&b.p)) {
        free(root);
        return pl_error_set(err, PL_ENOMEM, "%s: out of memory", name);
    }
    yaml_parser_set_input_string(&b.p, (const unsigned char *)text, b.len);
    yaml_parser_set_encoding(&b.p, YAML_UTF8_ENCODING);
    pl_status st = parse_stream(&b, root);
    yaml_parser_delete(&b.p);
    if (st) {
        pl_node_free(root);
        return st;
    }
    *out = root;
    return PL_OK;
}

pl_status pl_yaml_parse_file(const char *path, pl_node **out, pl_error *err)
{
    *out = NULL;
    int oe;
    FILE *f = pl__fopen_regular(path, "the file", &oe, err);
    if (!f && !oe)
        return err->code;
    if (!f)
        return pl_error_set(err, oe == ENOENT ? PL_ENOTFOUND : PL_EIO, "%s: cannot open: %s",
                            path, strerror(oe));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    pl_status st = PL_OK;
    while (buf) {
        if (cap - len < 2) {
            if (cap >= PL_YAML_MAX_BYTES) {
                st = pl_error_set(err, PL_ECONFIG, "%s: file larger than %zu MiB", path,
                                  PL_YAML_MAX_BYTES >> 20);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t k = fread(buf + len, 1, cap - len - 1, f);
        len += k;
        if (k == 0) {
            if (ferror(f))
                st = pl_error_set(err, PL_EIO, "%s: cannot read: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (!buf)
        return pl_error_set(err, PL_ENOMEM, "%s: out of memory", path);
    if (st == PL_OK) {
        buf[len] = '\0';
        const char *nul = memchr(buf, '\0', len);
        const unsigned char *u = (const unsigned char *)buf;
        if (len >= 2 && ((u[0] == 0xFE && u[1] == 0xFF) || (u[0] == 0xFF && u[1] == 0xFE))) {
            st = pl_error_set(err, PL_ECONFIG, "%s:1:1: the file is UTF-16 or UTF-32 encoded (byte-order mark); "
                              "save it as UTF-8", path);
        } else if (len >= 6 && !memcmp(buf, "\xef\xbb\xbf\xef\xbb\xbf", 6)) {
            st = pl_error_set(err, PL_ECONFIG, "%s:1:1: the file starts with two UTF-8 byte-order marks; remove "
                              "them (an editor or a conversion added them)", path);
        } else if (nul) {
            size_t line = 1, col = 1;
            for (const char *c = buf; c < nul; c++) {
                if (*c == '\n') {
                    line++;
                    col = 1;
                } else if (((unsigned char)*c & 0xC0) != 0x80) {
                    col++;
                }
            }
            st = pl_error_set(err, PL_ECONFIG, "%s:%zu:%zu: not a YAML text file (NUL byte)", path,
                              line, col);
        } else {
            st = pl_yaml_parse_string(path, buf, out, err);
        }
    }
    free(buf);
    return st;
}
