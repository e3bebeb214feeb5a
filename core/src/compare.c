/*
 * compare.c — `prunelab compare BASELINE.csv CURRENT.csv`: did anything
 * regress?
 *
 * Both files are read as RFC 4180 CSV and their columns found by name, so
 * older or newer files with extra columns compare fine. Rows are matched on
 * run_id. Accuracies may move by a tolerance (in points; lower is worse);
 * counts (params, MACs) and the achieved sparsity must be reproducible, so
 * a change beyond their tolerance (default 0) is a regression whichever way
 * it goes; a status that leaves "ok" is a regression; a run missing from
 * the current file is one too. Timing columns are never compared.
 */
#include "result.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum mkind { PL__M_SPARSITY, PL__M_COUNT, PL__M_ACC, PL__M_STATUS } mkind;

typedef struct metric_def {
    const char *col;
    mkind kind;
    const char *group; /* tolerance key shared with its siblings; NULL: none */
} metric_def;

/* in results.csv column order */
static const metric_def metrics[] = {
    {"achieved_sparsity", PL__M_SPARSITY, "sparsity"},
    {"params_before", PL__M_COUNT, "params"},
    {"params_after", PL__M_COUNT, "params"},
    {"nonzero_params_after", PL__M_COUNT, "params"},
    {"macs_before", PL__M_COUNT, "macs"},
    {"macs_after", PL__M_COUNT, "macs"},
    {"macs_after_physical", PL__M_COUNT, "macs"},
    {"acc_baseline", PL__M_ACC, "acc"},
    {"acc_pruned", PL__M_ACC, "acc"},
    {"acc_retrained", PL__M_ACC, "acc"},
    {"acc_final", PL__M_ACC, "acc"},
    {"status", PL__M_STATUS, NULL},
};
#define PL__N_METRICS (sizeof metrics / sizeof metrics[0])

static const struct {
    const char *key;
    double def;
} tolerance_groups[] = {{"acc", 0.5}, {"params", 0}, {"macs", 0}, {"sparsity", 0}};
#define N_TOLERANCE_GROUPS (sizeof tolerance_groups / sizeof tolerance_groups[0])

/* ---- CSV ------------------------------------------------------------------- */

typedef struct csv_table {
    const char *path;
    char *text;     /* decoded in place; cells point into it */
    char **cells;   /* n_rows x n_cols, row 0 is the header */
    int *line;      /* line where each row starts */
    size_t n_cols, n_rows;
} csv_table;

static void table_free(csv_table *t)
{
    free(t->text);
    free(t->cells);
    free(t->line);
    memset(t, 0, sizeof *t);
}

static const char *csv_cell(const csv_table *t, size_t row, size_t col)
{
    return t->cells[row * t->n_cols + col];
}

static int eol(const char *r, const char *end)
{
    return r < end && (*r == '\n' || (*r == '\r' && r + 1 < end && r[1] == '\n'));
}

static pl_status table_read(const char *path, csv_table *t, pl_error *err)
{
    memset(t, 0, sizeof *t);
    t->path = path;
    size_t len;
    pl_status st = pl__read_file(path, &t->text, &len, err);
    if (st)
        return st;
    /* cells are decoded in place: the writer w never passes the reader r */
    char *r = t->text, *w = t->text, *end = t->text + len;
    if (len >= 3 && memcmp(r, "\xef\xbb\xbf", 3) == 0) /* UTF-8 byte order mark */
        r += 3;

    size_t cap_cells = 0, n_cells = 0, cap_rows = 0, row_fields = 0;
    int line = 1, row_line = 1, after_comma = 0;
    while (st == PL_OK && (r < end || after_comma)) {
        if (row_fields == 0) {
            row_line = line;
            if (eol(r, end)) { /* blank lines carry no row */
                r += *r == '\r' ? 2 : 1;
                line++;
                continue;
            }
        }
        char *field = w;
        if (r < end && *r == '"') {
            int open_line = line;
            r++;
            for (;;) {
                if (r >= end) {
                    st = pl_error_set(err, PL_EFORMAT, "%s:%d: unterminated quoted field", path,
                                      open_line);
                    break;
                }
                if (*r == '"') {
                    if (r + 1 < end && r[1] == '"') {
                        *w++ = '"';
                        r += 2;
                        continue;
                    }
                    r++;
                    break;
                }
                if (*r == '\n')
                    line++;
                *w++ = *r++;
            }
            if (st == PL_OK && r < end && *r != ',' && !eol(r, end))
                st = pl_error_set(err, PL_EFORMAT,
                                  "%s:%d: unexpected character after a closing quote", path, line);
        } else {
            while (r < end && *r != ',' && !eol(r, end)) {
                if (*r == '"') {
                    st = pl_error_set(err, PL_EFORMAT, "%s:%d: quote inside an unquoted field",
                                      path, line);
                    break;
                }
                *w++ = *r++;
            }
        }
        if (st)
            break;
        int row_end = 1;
        after_comma = 0;
        if (r < end && *r == ',') {
            r++;
            row_end = 0;
            after_comma = 1;
        } else if (r < end) {
            r += *r == '\r' ? 2 : 1;
            line++;
        }
        *w++ = '\0';
        if (n_cells == cap_cells) {
            size_t nc = cap_cells ? cap_cells * 2 : 256;
            char **c = realloc(t->cells, nc * sizeof *c);
            if (!c) {
                st = pl_error_set(err, PL_ENOMEM, "%s: out of memory", path);
                break;
            }
            t->cells = c;
            cap_cells = nc;
        }
        t->cells[n_cells++] = field;
        row_fields++;
        if (!row_end)
            continue;
        if (t->n_rows == 0) {
            t->n_cols = row_fields;
        } else if (row_fields != t->n_cols) {
            st = pl_error_set(err, PL_EFORMAT, "%s:%d: %zu fields, but the header has %zu", path,
                              row_line, row_fields, t->n_cols);
            break;
        }
        if (t->n_rows == cap_rows) {
            size_t nr = cap_rows ? cap_rows * 2 : 64;
            int *l = realloc(t->line, nr * sizeof *l);
            if (!l) {
                st = pl_error_set(err, PL_ENOMEM, "%s: out of memory", path);
                break;
            }
            t->line = l;
            cap_rows = nr;
        }
        t->line[t->n_rows++] = row_line;
        row_fields = 0;
    }
    if (st == PL_OK && t->n_rows == 0)
        st = pl_error_set(err, PL_EFORMAT, "%s: empty file (expected a results.csv header)", path);
    if (st)
        table_free(t);
    return st;
}

static long column_index(const csv_table *t, const char *name)
{
    for (size_t c = 0; c < t->n_cols; c++)
        if (strcmp(csv_cell(t, 0, c), name) == 0)
            return (long)c;
    return -1;
}

/* ---- tolerance ---------------------------------------------------------------- */

static void valid_keys(char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t g = 0; g < N_TOLERANCE_GROUPS; g++)
        o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%s", g ? ", " : "", tolerance_groups[g].key);
    for (size_t m = 0; m < PL__N_METRICS; m++)
        if (metrics[m].group && o < cap)
            o += (size_t)snprintf(out + o, cap - o, ", %s", metrics[m].col);
}

static pl_status tolerance_parse(const char *spec, double tol[PL__N_METRICS], pl_error *err)
{
    double group[N_TOLERANCE_GROUPS];
    int specific[PL__N_METRICS] = {0}, group_set[N_TOLERANCE_GROUPS] = {0};
    for (size_t g = 0; g < N_TOLERANCE_GROUPS; g++)
        group[g] = tolerance_groups[g].def;
    for (size_t m = 0; m < PL__N_METRICS; m++)
        tol[m] = 0;

    const char *p = spec ? spec : "";
    p += strspn(p, " \t");
    while (*p) { /* (an empty or blank string means the defaults) */
        const char *item = p, *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        p += n + (end ? 1 : 0);
        char buf[128];
        while (n && (*item == ' ' || *item == '\t')) {
            item++;
            n--;
        }
        while (n && (item[n - 1] == ' ' || item[n - 1] == '\t'))
            n--;
        if (n == 0 || (end && !*p))
            return pl_error_set(err, PL_ECONFIG, "tolerance \"%s\": empty item (expected key=value,...)",
                                spec);
        if (n >= sizeof buf)
            return pl_error_set(err, PL_ECONFIG, "tolerance \"%.60s...\": item too long", spec);
        memcpy(buf, item, n);
        buf[n] = '\0';
        char *eq = strchr(buf, '=');
        if (!eq)
            return pl_error_set(err, PL_ECONFIG, "tolerance \"%s\": \"%s\" is not key=value", spec, buf);
        *eq = '\0';
        char *key = buf, *val = eq + 1;
        for (char *k = eq; k > key && (k[-1] == ' ' || k[-1] == '\t'); k--)
            k[-1] = '\0';
        while (*val == ' ' || *val == '\t')
            val++;
        char *stop;
        errno = 0;
        double v = *val ? strtod(val, &stop) : NAN;
        if (!*val || *stop || errno == ERANGE || !isfinite(v) || v < 0)
            return pl_error_set(err, PL_ECONFIG,
                                "tolerance \"%s\": %s=\"%s\" is not a non-negative number", spec, key,
                                val);
        int found = 0, again = 0;
        for (size_t g = 0; g < N_TOLERANCE_GROUPS; g++)
            if (strcmp(key, tolerance_groups[g].key) == 0) {
                again |= group_set[g];
                group[g] = v;
                group_set[g] = found = 1;
            }
        for (size_t m = 0; m < PL__N_METRICS; m++)
            if (metrics[m].group && strcmp(key, metrics[m].col) == 0) {
                again |= specific[m];
                tol[m] = v;
                specific[m] = 1;
                found = 1;
            }
        if (again) /* which one would win is a guess: refuse */
            return pl_error_set(err, PL_ECONFIG, "tolerance \"%s\": %s is given twice (give each key once)",
                                spec, key);
        if (!found) {
            char keys[512];
            valid_keys(keys, sizeof keys);
            return pl_error_set(err, PL_ECONFIG, "tolerance \"%s\": unknown key \"%s\" (valid keys: %s)",
                                spec, key, keys);
        }
    }
    for (size_t m = 0; m < PL__N_METRICS; m++) {
        if (specific[m] || !metrics[m].group)
            continue;
        for (size_t g = 0; g < N_TOLERANCE_GROUPS; g++)
            if (strcmp(metrics[m].group, tolerance_groups[g].key) == 0)
                tol[m] = group[g];
    }
    return PL_OK;
}

/* "acc 0.5, params 0, macs 0, sparsity 0", spelling out overridden members */
static void tolerance_describe(pl__buf *b, const double tol[PL__N_METRICS])
{
    for (size_t g = 0; g < N_TOLERANCE_GROUPS; g++) {
        double first = NAN;
        int same = 1;
        for (size_t m = 0; m < PL__N_METRICS; m++) {
            if (!metrics[m].group || strcmp(metrics[m].group, tolerance_groups[g].key) != 0)
                continue;
            if (isnan(first))
                first = tol[m];
            else if (tol[m] != first)
                same = 0;
        }
        if (g)
            pl__buf_puts(b, ", ");
        if (same) {
            pl__buf_printf(b, "%s %g", tolerance_groups[g].key, first);
            continue;
        }
        int k = 0;
        for (size_t m = 0; m < PL__N_METRICS; m++)
            if (metrics[m].group && strcmp(metrics[m].group, tolerance_groups[g].key) == 0)
                pl__buf_printf(b, "%s%s %g", k++ ? ", " : "", metrics[m].col, tol[m]);
    }
}

/* ---- comparing ---------------------------------------------------------------- */

typedef enum verdict_kind {
    PL__SAME,
    PL__WITHIN,
    PL__IMPROVED,
    PL__CHANGED,
    PL__REGRESSION
} verdict_kind;

static const char *const verdict_names[] = {"same", "changed within tolerance", "improved",
                                               "changed", "REGRESSION"};
_Static_assert(sizeof verdict_names / sizeof verdict_names[0] == PL__REGRESSION + 1,
               "a name for every verdict");

static pl_status parse_num(const csv_table *t, size_t row, const char *col, const char *s,
                               int integral, double *d, int64_t *i, pl_error *err)
{
    char *stop;
    errno = 0;
    if (integral) {
        long long v = strtoll(s, &stop, 10);
        if (stop == s || *stop || errno == ERANGE)
            return pl_error_set(err, PL_EFORMAT, "%s:%d: column %s: \"%s\" is not an integer",
                                t->path, t->line[row], col, s);
        *i = (int64_t)v;
        *d = (double)v;
    } else {
        double v = strtod(s, &stop);
        if (stop == s || *stop)
            return pl_error_set(err, PL_EFORMAT, "%s:%d: column %s: \"%s\" is not a number",
                                t->path, t->line[row], col, s);
        /* a gate fails closed: NaN or infinity is never "within tolerance" */
        if (!isfinite(v))
            return pl_error_set(err, PL_EFORMAT, "%s:%d: column %s: \"%s\" is not a finite number (a "
                                "corrupt or hand-edited file; regenerate it)", t->path, t->line[row], col, s);
        *d = v;
    }
    return PL_OK;
}

/* Compares one metric; fills delta text. */
static pl_status compare_cell(const csv_table *bt, size_t brow, const csv_table *ct, size_t crow,
                                  size_t m, const char *bs, const char *cs, double tol,
                                  verdict_kind *v, char *delta, size_t dcap, pl_error *err)
{
    const metric_def *M = &metrics[m];
    snprintf(delta, dcap, "%s", "\xe2\x80\x94");
    *v = PL__SAME;
    if (strcmp(bs, cs) == 0)
        return PL_OK;
    if (M->kind == PL__M_STATUS) {
        if (strcmp(bs, "ok") == 0)
            *v = PL__REGRESSION;
        else if (strcmp(cs, "ok") == 0)
            *v = PL__IMPROVED;
        else
            *v = PL__CHANGED;
        return PL_OK;
    }
    /* an empty cell is "not measured" */
    if (!*bs || !*cs) {
        if (M->kind == PL__M_ACC && !*bs)
            *v = PL__CHANGED; /* newly measured */
        else
            *v = PL__REGRESSION; /* a measurement or a count went missing */
        return PL_OK;
    }
    int integral = M->kind == PL__M_COUNT;
    double b, c;
    int64_t bi = 0, ci = 0;
    pl_status st;
    if ((st = parse_num(bt, brow, M->col, bs, integral, &b, &bi, err)) ||
        (st = parse_num(ct, crow, M->col, cs, integral, &c, &ci, err)))
        return st;
    /* the current file must hold values a run can produce; the baseline only
     * must not be negative (a high baseline can only fail, never pass) */
    double hi = M->kind == PL__M_ACC ? 100 : M->kind == PL__M_SPARSITY ? 1 : INFINITY;
    for (int k = 0; k < 2; k++) {
        double x = k ? c : b;
        if (x < 0 || (k && x > hi))
            return pl_error_set(err, PL_EFORMAT, "%s:%d: column %s: %s is outside [0, %g] (a corrupt or "
                                "hand-edited file; regenerate it)", k ? ct->path : bt->path,
                                k ? ct->line[crow] : bt->line[brow], M->col, k ? cs : bs, hi);
    }
    if (integral) {
        int64_t d = ci - bi;
        if (d == 0)
            return PL_OK;
        snprintf(delta, dcap, "%+" PRId64, d);
        *v = fabs((double)d) > tol ? PL__REGRESSION : PL__WITHIN;
        return PL_OK;
    }
    double d = c - b;
    if (d == 0)
        return PL_OK;
    /* the files hold rounded decimals: forgive the binary noise of c - b */
    double eps = 1e-9 * fmax(1.0, fmax(fabs(b), fabs(c)));
    snprintf(delta, dcap, M->kind == PL__M_ACC ? "%+.2f" : "%+.4f", d);
    if (M->kind == PL__M_ACC)
        *v = d < -(tol + eps) ? PL__REGRESSION : d > tol + eps ? PL__IMPROVED : PL__WITHIN;
    else
        *v = fabs(d) > tol + eps ? PL__REGRESSION : PL__WITHIN;
    return PL_OK;
}

static pl_status require(const csv_table *t, const char *col, long *idx, pl_error *err)
{
    *idx = column_index(t, col);
    if (*idx < 0)
        return pl_error_set(err, PL_EFORMAT,
                            "%s: missing column \"%s\" (expected a prunelab results.csv)", t->path, col);
    return PL_OK;
}

/* run_id column of t: non-empty and unique */
static pl_status check_ids(const csv_table *t, long id, pl_error *err)
{
    for (size_t r = 1; r < t->n_rows; r++) {
        const char *s = csv_cell(t, r, (size_t)id);
        if (!*s)
            return pl_error_set(err, PL_EFORMAT, "%s:%d: empty run_id", t->path, t->line[r]);
        for (size_t q = 1; q < r; q++)
            if (strcmp(s, csv_cell(t, q, (size_t)id)) == 0)
                return pl_error_set(err, PL_EFORMAT, "%s:%d: run_id %s repeats line %d",
                                    t->path, t->line[r], s, t->line[q]);
    }
    return PL_OK;
}

static size_t find_row(const csv_table *t, long id, const char *run_id)
{
    for (size_t r = 1; r < t->n_rows; r++)
        if (strcmp(csv_cell(t, r, (size_t)id), run_id) == 0)
            return r;
    return 0;
}

pl_status pl_compare_files(const char *baseline_csv, const char *current_csv,
                           const char *tolerance, FILE *out, int *regressed, pl_error *err)
{
    return pl_compare_files_ex(baseline_csv, current_csv, tolerance, 0, out, regressed, err);
}

pl_status pl_compare_files_ex(const char *baseline_csv, const char *current_csv,
                              const char *tolerance, int only_common, FILE *out, int *regressed,
                              pl_error *err)
{
    double tol[PL__N_METRICS];
    csv_table bt, ct;
    pl_status st;
    if (regressed)
        *regressed = 0;
    if ((st = tolerance_parse(tolerance, tol, err)))
        return st;
    if ((st = table_read(baseline_csv, &bt, err)))
        return st;
    if ((st = table_read(current_csv, &ct, err))) {
        table_free(&bt);
        return st;
    }

    long bcol[PL__N_METRICS], ccol[PL__N_METRICS], bid, cid;
    long bsweep = column_index(&bt, "sweep"), csweep = column_index(&ct, "sweep");
    pl__buf moved = {0}, sides = {0}, o = {0};
    size_t compared = 0, n_reg = 0, n_imp = 0, n_chg = 0, n_within = 0, n_new = 0, n_missing = 0;
    size_t n_skipped = 0; /* --only-common: rows in one file only */

    if ((st = require(&bt, "run_id", &bid, err)) || (st = require(&ct, "run_id", &cid, err)))
        goto done;
    for (size_t m = 0; m < PL__N_METRICS; m++)
        if ((st = require(&bt, metrics[m].col, &bcol[m], err)) ||
            (st = require(&ct, metrics[m].col, &ccol[m], err)))
            goto done;
    if ((st = check_ids(&bt, bid, err)) || (st = check_ids(&ct, cid, err)))
        goto done;

    for (size_t br = 1; br < bt.n_rows; br++) {
        const char *run_id = csv_cell(&bt, br, (size_t)bid);
        size_t cr = find_row(&ct, cid, run_id);
        const char *sweep = cr && csweep >= 0   ? csv_cell(&ct, cr, (size_t)csweep)
                            : bsweep >= 0 ? csv_cell(&bt, br, (size_t)bsweep)
                                          : "";
        if (!cr && only_common) {
            n_skipped++;
            continue;
        }
        if (!cr) {
            n_missing++;
            n_reg++;
            pl__buf_puts(&sides, "| ");
            pl__md_cell(&sides, run_id);
            pl__buf_puts(&sides, " | ");
            pl__md_cell(&sides, sweep);
            pl__buf_puts(&sides, " | missing in current | REGRESSION |\n");
            continue;
        }
        compared++;
        for (size_t m = 0; m < PL__N_METRICS; m++) {
            const char *bs = csv_cell(&bt, br, (size_t)bcol[m]);
            const char *cs = csv_cell(&ct, cr, (size_t)ccol[m]);
            verdict_kind v;
            char delta[64];
            if ((st = compare_cell(&bt, br, &ct, cr, m, bs, cs, tol[m], &v, delta, sizeof delta,
                                       err)))
                goto done;
            if (v == PL__SAME)
                continue;
            n_reg += v == PL__REGRESSION;
            n_imp += v == PL__IMPROVED;
            n_chg += v == PL__CHANGED;
            n_within += v == PL__WITHIN;
            pl__buf_puts(&moved, "| ");
            pl__md_cell(&moved, run_id);
            pl__buf_puts(&moved, " | ");
            pl__md_cell(&moved, sweep);
            pl__buf_printf(&moved, " | %s | ", metrics[m].col);
            pl__md_cell(&moved, bs);
            pl__buf_puts(&moved, " | ");
            pl__md_cell(&moved, cs);
            pl__buf_printf(&moved, " | %s | %s |\n", delta, verdict_names[v]);
        }
    }
    for (size_t cr = 1; cr < ct.n_rows; cr++) {
        const char *run_id = csv_cell(&ct, cr, (size_t)cid);
        if (find_row(&bt, bid, run_id))
            continue;
        if (only_common) {
            n_skipped++;
            continue;
        }
        n_new++;
        pl__buf_puts(&sides, "| ");
        pl__md_cell(&sides, run_id);
        pl__buf_puts(&sides, " | ");
        pl__md_cell(&sides, csweep >= 0 ? csv_cell(&ct, cr, (size_t)csweep) : "");
        pl__buf_puts(&sides, " | new in current | new |\n");
    }

    if (moved.len || sides.len) {
        pl__buf_printf(&o, "Comparing %s with the baseline %s (tolerances: ", current_csv,
                       baseline_csv);
        tolerance_describe(&o, tol);
        pl__buf_puts(&o, ").\n\n");
    }
    if (moved.len) {
        pl__buf_puts(&o, "| run_id | sweep | metric | baseline | current | delta | verdict |\n"
                         "|---|---|---|--:|--:|--:|---|\n");
        pl__buf_add(&o, moved.data, moved.len);
        pl__buf_puts(&o, "\n");
    }
    if (sides.len) {
        pl__buf_puts(&o, "| run_id | sweep | row | verdict |\n|---|---|---|---|\n");
        pl__buf_add(&o, sides.data, sides.len);
        pl__buf_puts(&o, "\n");
    }
    if (n_reg) {
        pl__buf_printf(&o, "**%zu regression%s** (%zu rows compared", n_reg, n_reg == 1 ? "" : "s",
                       compared);
        if (n_missing)
            pl__buf_printf(&o, ", %zu missing in current", n_missing);
        pl__buf_puts(&o, ").\n");
    } else if (!n_imp && !n_chg && !n_new) {
        pl__buf_printf(&o, "No differences beyond tolerance (%zu rows compared).\n", compared);
    } else {
        pl__buf_printf(&o, "No regressions (%zu rows compared", compared);
        if (n_imp)
            pl__buf_printf(&o, "; %zu improved", n_imp);
        if (n_chg)
            pl__buf_printf(&o, "; %zu changed", n_chg);
        if (n_new)
            pl__buf_printf(&o, "; %zu new in current", n_new);
        pl__buf_puts(&o, ").\n");
    }
    (void)n_within;
    if (only_common)
        pl__buf_printf(&o, "Only rows present in both files were compared (--only-common); %zu "
                           "row%s in one file only skipped.\n", n_skipped, n_skipped == 1 ? "" : "s");
    if (moved.failed || sides.failed || o.failed) {
        st = pl_error_set(err, PL_ENOMEM, "compare: out of memory");
        goto done;
    }
    if (out && (fwrite(o.data, 1, o.len, out) != o.len || fflush(out) != 0)) {
        st = pl__io_error(err, "compare output", errno);
        goto done;
    }
    if (regressed)
        *regressed = n_reg > 0;
done:
    pl__buf_free(&moved);
    pl__buf_free(&sides);
    pl__buf_free(&o);
    table_free(&bt);
    table_free(&ct);
    return st;
}
