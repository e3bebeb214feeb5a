/*
 * result.c — run records (DIR/runs/<run_id>.json): the field tables, the
 * writer and loading a report folder; the reader is result_read.c.
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
#include "result_fields.h"
#include "manifest.h"
#include "fileio.h"
#include "scalar.h"

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

#define PL__RF(f, t) {#f, PL__F_##t, offsetof(pl_run_result, f), sizeof(((pl_run_result *)0)->f)}
#define PL__LF(f, t) {#f, PL__F_##t, offsetof(pl_layer_result, f), sizeof(((pl_layer_result *)0)->f)}

const pl__field pl__run_fields[] = {
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
const size_t pl__n_run_fields = sizeof pl__run_fields / sizeof pl__run_fields[0];

const pl__field pl__layer_fields[] = {
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
const size_t pl__n_layer_fields = sizeof pl__layer_fields / sizeof pl__layer_fields[0];

#define PL__HF(f, t) {#f, PL__F_##t, offsetof(pl_history_row, f), sizeof(((pl_history_row *)0)->f)}
const pl__field pl__history_fields[] = {
    PL__HF(phase, STR),     PL__HF(step, I64),      PL__HF(epoch, I64),    PL__HF(sparsity, F64),
    PL__HF(loss, F64),      PL__HF(train_acc, F64), PL__HF(test_loss, F64), PL__HF(test_acc, F64),
};
const size_t pl__n_history_fields = sizeof pl__history_fields / sizeof pl__history_fields[0];

_Static_assert(sizeof pl__run_fields / sizeof pl__run_fields[0] < 59, "seen mask holds every run field");
_Static_assert(sizeof pl__layer_fields / sizeof pl__layer_fields[0] < 59, "seen mask holds every layer field");

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

static void json_string(pl__buf *b, const char *s, size_t max)
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

static void json_field(pl__buf *b, const pl__field *f, const void *obj)
{
    const char *p = (const char *)obj + f->off;
    pl__buf_printf(b, "\"%s\": ", f->name);
    switch (f->type) {
    case PL__F_STR:
        json_string(b, p, f->size);
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

/* the fields of one array element, ", "-separated on one line */
static void json_fields(pl__buf *b, const pl__field *fields, size_t n, const void *obj)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            pl__buf_puts(b, ", ");
        json_field(b, &fields[i], obj);
    }
}

int pl__run_id_ok(const char *id)
{
    return pl__name_ok(id, 1, "-", sizeof ((pl_run_result *)0)->run_id - 1);
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
        json_field(&b, &pl__run_fields[i], r);
        pl__buf_puts(&b, ",\n");
    }
    if (r->n_history) {
        pl__buf_puts(&b, "  \"history\": [");
        for (size_t k = 0; k < r->n_history; k++) {
            pl__buf_puts(&b, k ? ",\n    {" : "\n    {");
            json_fields(&b, pl__history_fields, PL__N_HISTORY_FIELDS, &r->history[k]);
            pl__buf_puts(&b, "}");
        }
        pl__buf_puts(&b, "\n  ],\n");
    }
    pl__buf_puts(&b, "  \"layers\": [");
    for (size_t k = 0; k < r->n_layers; k++) {
        pl__buf_puts(&b, k ? ",\n    {" : "\n    {");
        json_fields(&b, pl__layer_fields, PL__N_LAYER_FIELDS, &r->layers[k]);
        if (r->layers[k].kept) {
            pl__buf_puts(&b, ", \"kept\": ");
            json_string(&b, r->layers[k].kept, SIZE_MAX);
        }
        pl__buf_puts(&b, "}");
    }
    pl__buf_puts(&b, r->n_layers ? "\n  ]" : "]");
    if (r->n_manifest) { /* manifest.h */
        pl__buf_puts(&b, ",\n  \"manifest\": {");
        for (size_t k = 0; k < r->n_manifest; k++) {
            pl__buf_puts(&b, k ? ",\n    " : "\n    ");
            json_string(&b, r->manifest[2 * k], SIZE_MAX);
            pl__buf_puts(&b, ": ");
            json_string(&b, r->manifest[2 * k + 1], SIZE_MAX);
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

/* ---- loading a report folder --------------------------------------------- */

static int run_cmp(const void *a, const void *b)
{
    const pl_run_result *x = a, *y = b;
    if (x->run_index != y->run_index)
        return x->run_index < y->run_index ? -1 : 1;
    return strcmp(x->run_id, y->run_id);
}

static void runs_free(pl_run_result *v, size_t n)
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
        runs_free(v, count);
        return st;
    }
    if (count)
        qsort(v, count, sizeof *v, run_cmp);
    *out = v;
    *n = count;
    return PL_OK;
}
