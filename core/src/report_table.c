/* report_table.c — results.md and results.tex: the paper table (one row per dense model and per pruned configuration) and the Markdown summary around it. */
#include "report_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- Markdown ---------------------------------------------------------------- */

/* 1234567 -> "1,234,567" (rounded to an integer) */
static void md_count(pl__buf *b, double v)
{
    if (isnan(v) || isinf(v)) {
        pl__buf_puts(b, PL__DASH);
        return;
    }
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", fabs(v));
    size_t len = strlen(digits);
    if (v < 0 && strcmp(digits, "0") != 0)
        pl__buf_add(b, "-", 1);
    for (size_t i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            pl__buf_add(b, ",", 1);
        pl__buf_add(b, &digits[i], 1);
    }
}


static void bold_open(pl__buf *b, int bold)
{
    if (bold)
        pl__buf_puts(b, "**");
}



/* distinct values of a string field over the ok runs, "; "-separated */
static void md_distinct(pl__buf *b, const pl__layout *L, size_t off, size_t *count)
{
    *count = 0;
    for (size_t i = 0; i < L->n; i++) {
        const char *v = (const char *)L->runs[i] + off;
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp((const char *)L->runs[k] + off, v) == 0;
        if (seen)
            continue;
        if ((*count)++)
            pl__buf_puts(b, "; ");
        if (!*v)
            pl__buf_puts(b, PL__DASH);
        else if (strpbrk(v, "`\n\r|")) /* a code span cannot hold these */
            pl__md_cell(b, v);
        else
            pl__buf_printf(b, "`%s`", v);
    }
}



/* ---- the paper table (results.md and results.tex) ----------------------------
 *
 * One row per dense model and per pruned configuration, the same cells in
 * Markdown and in LaTeX (booktabs). Compression ratio and theoretical
 * speed-up follow Blalock et al. 2020 ("What is the state of neural network
 * pruning?"): original parameters / remaining (nonzero) parameters, and
 * original multiply-accumulates / remaining ones; they are the params and
 * MACs reduction ratios. Δacc is acc_final − acc_baseline of each run (the
 * same seed's baseline), averaged over the seeds. A value is bold only when
 * it beats the runner-up configuration of its model by more than the seed
 * spread (the larger of the two standard deviations), so a bold cell is a
 * difference the seeds support. */

typedef struct table_cell {
    pl__buf md, tex;
    int bold;
} table_cell;

enum { PL__C_MAX = 20 };

typedef struct paper_table {
    size_t n_cols, n_rows, cap;
    const char *md_head[PL__C_MAX], *tex_head[PL__C_MAX];
    char align[PL__C_MAX]; /* 'l' or 'r' */
    table_cell *cells;       /* n_rows x n_cols */
    size_t *section_end;   /* rows after which a section ends (tex \midrule) */
    int failed;
} paper_table;

static table_cell *tcell(paper_table *T, size_t row, size_t col) { return &T->cells[row * T->n_cols + col]; }

static void tex_text(pl__buf *b, const char *s)
{
    if (!*s) {
        pl__buf_puts(b, "---");
        return;
    }
    for (const char *p = s; *p; p++) {
        if (strchr("&%$#_{}", *p))
            pl__buf_printf(b, "\\%c", *p);
        else if (*p == '~')
            pl__buf_puts(b, "\\textasciitilde{}");
        else if (*p == '^')
            pl__buf_puts(b, "\\textasciicircum{}");
        else if (*p == '\\')
            pl__buf_puts(b, "\\textbackslash{}");
        else if (*p == '\n' || *p == '\r')
            pl__buf_add(b, " ", 1);
        else
            pl__buf_add(b, p, 1);
    }
}

static void c_text(table_cell *c, const char *s)
{
    pl__md_cell(&c->md, s);
    tex_text(&c->tex, s);
}

static void c_dash(table_cell *c)
{
    pl__buf_puts(&c->md, PL__DASH);
    pl__buf_puts(&c->tex, "---");
}

static void c_count(table_cell *c, double v)
{
    md_count(&c->md, v);
    pl__buf tmp = {0};
    md_count(&tmp, v);
    for (size_t i = 0; !tmp.failed && i < tmp.len; i++) {
        if (tmp.data[i] == ',')
            pl__buf_puts(&c->tex, "{,}");
        else if (!strncmp(tmp.data + i, PL__DASH, 3)) {
            pl__buf_puts(&c->tex, "---");
            i += 2;
        } else
            pl__buf_add(&c->tex, &tmp.data[i], 1);
    }
    pl__buf_free(&tmp);
}

static void cell_num(table_cell *c, double v, int decimals, const char *suffix_md, const char *suffix_tex)
{
    if (isnan(v) || isinf(v)) {
        c_dash(c);
        return;
    }
    pl__buf_printf(&c->md, "%.*f%s", decimals, v, suffix_md);
    pl__buf_printf(&c->tex, "%.*f%s", decimals, v, suffix_tex);
}

static void c_stat(table_cell *c, pl__stat s, size_t group_n, int decimals, int sign)
{
    if (!s.n) {
        c_dash(c);
        return;
    }
    const char *fmt = sign ? "%+.*f" : "%.*f";
    pl__buf_printf(&c->md, fmt, decimals, s.mean);
    pl__buf_puts(&c->tex, "$");
    pl__buf_printf(&c->tex, fmt, decimals, s.mean);
    if (s.n > 1) {
        pl__buf_printf(&c->md, " " PL__PM " %.*f", decimals, s.sd);
        pl__buf_printf(&c->tex, " \\pm %.*f", decimals, s.sd);
    }
    pl__buf_puts(&c->tex, "$");
    if (s.n < group_n) {
        pl__buf_printf(&c->md, " (n=%zu)", s.n);
        pl__buf_printf(&c->tex, " (n=%zu)", s.n);
    }
}

/* "configs/models/simple_cnn.yaml" -> "simple_cnn" */
static void model_short(const char *model, char *out, size_t cap)
{
    const char *base = strrchr(model, '/');
    base = base ? base + 1 : model;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".yaml"))
        n -= 5;
    else if (n > 4 && !strcmp(base + n - 4, ".yml"))
        n -= 4;
    snprintf(out, cap, "%.*s", (int)n, base);
}

static double f_compression(const pl_run_result *r)
{
    return r->nonzero_params_after > 0 ? (double)r->params_before / (double)r->nonzero_params_after : NAN;
}
static double f_speedup(const pl_run_result *r)
{
    return r->macs_after > 0 ? (double)r->macs_before / (double)r->macs_after : NAN;
}
static double f_delta(const pl_run_result *r) { return r->acc_final - r->acc_baseline; }

/* mean and sample std of fn over the runs of group g */
/* Marks the best of stats[0..n) (higher or lower is better) when it beats
 * the runner-up by more than the larger standard deviation; values are
 * compared as displayed (`decimals`). */
static void mark_best(const pl__stat *st, size_t n, int higher, int decimals, int *bold)
{
    size_t best = SIZE_MAX, second = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        bold[i] = 0;
        if (!st[i].n || isnan(st[i].mean))
            continue;
        double v = pl__shown(st[i].mean, decimals);
        if (best == SIZE_MAX || (higher ? v > pl__shown(st[best].mean, decimals)
                                        : v < pl__shown(st[best].mean, decimals))) {
            second = best;
            best = i;
        } else if (second == SIZE_MAX || (higher ? v > pl__shown(st[second].mean, decimals)
                                                 : v < pl__shown(st[second].mean, decimals))) {
            second = i;
        }
    }
    if (best == SIZE_MAX || second == SIZE_MAX)
        return;
    double gap = fabs(pl__shown(st[best].mean, decimals) - pl__shown(st[second].mean, decimals));
    double sb = st[best].n > 1 && !isnan(st[best].sd) ? st[best].sd : 0;
    double s2 = st[second].n > 1 && !isnan(st[second].sd) ? st[second].sd : 0;
    if (gap > (sb > s2 ? sb : s2) && gap > 0)
        bold[best] = 1;
}

static void table_free(paper_table *T)
{
    for (size_t i = 0; T->cells && i < T->n_rows * T->n_cols; i++) {
        pl__buf_free(&T->cells[i].md);
        pl__buf_free(&T->cells[i].tex);
    }
    free(T->cells);
    free(T->section_end);
}

static table_cell *table_row(paper_table *T)
{
    if (T->n_rows == T->cap) {
        size_t ncap = T->cap ? T->cap * 2 : 16;
        table_cell *nc = realloc(T->cells, ncap * T->n_cols * sizeof *nc);
        if (!nc) {
            T->failed = 1;
            return NULL;
        }
        memset(nc + T->cap * T->n_cols, 0, (ncap - T->cap) * T->n_cols * sizeof *nc);
        T->cells = nc;
        T->cap = ncap;
    }
    return tcell(T, T->n_rows++, 0);
}

static void add_column(paper_table *T, const char *md, const char *tex, char align)
{
    T->md_head[T->n_cols] = md;
    T->tex_head[T->n_cols] = tex;
    T->align[T->n_cols++] = align;
}

/* Fills T with the table of L (ok runs only). */
static void table_build(paper_table *T, const pl__layout *L)
{
    memset(T, 0, sizeof *T);
    add_column(T, "model", "Model", 'l');
    if (L->dataset_col)
        add_column(T, "dataset", "Dataset", 'l');
    add_column(T, "criterion", "Criterion", 'l');
    add_column(T, "schedule", "Schedule", 'l');
    add_column(T, "granularity", "Gran.", 'l');
    if (L->sweep_col)
        add_column(T, "sweep", "Sweep", 'l');
    size_t c_num = T->n_cols;
    add_column(T, "target", "Target", 'r');
    add_column(T, "achieved", "Achieved", 'r');
    add_column(T, "params", "Params", 'r');
    add_column(T, "compression", "Compr.", 'r');
    add_column(T, "MACs", "MACs", 'r');
    add_column(T, "speed-up", "Speed-up", 'r');
    add_column(T, "acc baseline", "Acc.\\ base", 'r');
    add_column(T, "acc pruned", "Acc.\\ pruned", 'r');
    add_column(T, "acc final", "Acc.\\ final", 'r');
    add_column(T, PL__DELTA "acc", "$\\Delta$Acc.", 'r');
    add_column(T, "latency ms before " PL__ARROW " after", "Latency (ms)", 'r');
    add_column(T, "seeds (n)", "$n$", 'r');
    T->section_end = calloc(L->n_sections + 1, sizeof *T->section_end);
    int *bold = malloc(5 * (L->n_groups ? L->n_groups : 1) * sizeof *bold);
    pl__stat *st = malloc(5 * (L->n_groups ? L->n_groups : 1) * sizeof *st);
    if (!T->section_end || !bold || !st) {
        T->failed = 1;
        free(bold);
        free(st);
        return;
    }
    char model[256];
    for (size_t s = 0; s < L->n_sections; s++) {
        const pl__section *S = &L->sections[s];
        model_short(S->key->model, model, sizeof model);
        table_cell *c = table_row(T);
        if (!c)
            break;
        size_t k = 0;
        c_text(&c[k++], model);
        if (L->dataset_col)
            c_text(&c[k++], S->key->dataset);
        c_text(&c[k++], "dense baseline");
        c_dash(&c[k++]);
        c_dash(&c[k++]);
        if (L->sweep_col)
            c_dash(&c[k++]);
        c_dash(&c[k++]);
        c_dash(&c[k++]);
        c_count(&c[k++], S->params.mean);
        cell_num(&c[k++], 1.0, 1, PL__TIMES, "$\\times$");
        c_count(&c[k++], S->macs.mean);
        cell_num(&c[k++], 1.0, 1, PL__TIMES, "$\\times$");
        c_stat(&c[k++], S->acc, S->n_base, 2, 0);
        c_dash(&c[k++]);
        c_dash(&c[k++]);
        c_dash(&c[k++]);
        cell_num(&c[k++], S->lat.n ? S->lat.mean : NAN, 3, "", "");
        pl__buf_printf(&c[k].md, "%zu", S->n_base);
        pl__buf_printf(&c[k++].tex, "%zu", S->n_base);

        /* the section's groups and their bold cells */
        size_t ng = 0;
        int gid[1024];
        for (size_t g = 0; g < L->n_groups && ng < 1024; g++)
            if (L->groups[g].section == (int)s)
                gid[ng++] = (int)g;
        for (size_t i = 0; i < ng; i++) {
            st[0 * ng + i] = pl__stat_of(L->runs, L->group, L->n, gid[i], 0, PL__V_F64, f_compression);
            st[1 * ng + i] = pl__stat_of(L->runs, L->group, L->n, gid[i], 0, PL__V_F64, f_speedup);
            st[2 * ng + i] = L->groups[gid[i]].acc_final;
            st[3 * ng + i] = pl__stat_of(L->runs, L->group, L->n, gid[i], 0, PL__V_F64, f_delta);
            st[4 * ng + i] = L->groups[gid[i]].lat_after;
        }
        static const int higher[5] = {1, 1, 1, 1, 0}, decs[5] = {1, 1, 2, 2, 3};
        for (int col = 0; col < 5; col++)
            mark_best(&st[col * ng], ng, higher[col], decs[col], &bold[col * ng]);
        for (size_t i = 0; i < ng; i++) {
            const pl__group *G = &L->groups[gid[i]];
            const pl_run_result *key = G->key;
            if (!(c = table_row(T)))
                break;
            k = 0;
            c_text(&c[k++], model);
            if (L->dataset_col)
                c_text(&c[k++], key->dataset);
            c_text(&c[k++], key->criterion);
            c_text(&c[k++], key->schedule);
            c_text(&c[k++], key->granularity);
            if (L->sweep_col) {
                char sweep[sizeof key->sweep];
                pl__sweep_sans_seed(key->sweep, sweep, sizeof sweep);
                c_text(&c[k++], sweep);
            }
            cell_num(&c[k++], key->target_sparsity, 4, "", "");
            cell_num(&c[k++], G->achieved.n ? G->achieved.mean : NAN, 4, "", "");
            c_count(&c[k++], G->nonzero.mean);
            c[k].bold = bold[0 * ng + i];
            cell_num(&c[k++], st[0 * ng + i].n ? st[0 * ng + i].mean : NAN, 1, PL__TIMES, "$\\times$");
            c_count(&c[k++], G->macs_after.mean);
            c[k].bold = bold[1 * ng + i];
            cell_num(&c[k++], st[1 * ng + i].n ? st[1 * ng + i].mean : NAN, 1, PL__TIMES, "$\\times$");
            c_stat(&c[k++], G->acc_base, G->n, 2, 0);
            c_stat(&c[k++], G->acc_pruned, G->n, 2, 0);
            c[k].bold = bold[2 * ng + i];
            c_stat(&c[k++], G->acc_final, G->n, 2, 0);
            c[k].bold = bold[3 * ng + i];
            c_stat(&c[k++], st[3 * ng + i], G->n, 2, 1);
            c[k].bold = bold[4 * ng + i];
            if (G->lat_before.n && G->lat_after.n) {
                pl__buf_printf(&c[k].md, "%.3f " PL__ARROW " %.3f", G->lat_before.mean, G->lat_after.mean);
                pl__buf_printf(&c[k].tex, "%.3f $\\to$ %.3f", G->lat_before.mean, G->lat_after.mean);
                k++;
            } else {
                c_dash(&c[k++]);
            }
            pl__buf_printf(&c[k].md, "%zu", G->n);
            pl__buf_printf(&c[k++].tex, "%zu", G->n);
        }
        T->section_end[s] = T->n_rows;
    }
    (void)c_num;
    for (size_t i = 0; T->cells && i < T->n_rows * T->n_cols; i++)
        if (T->cells[i].md.failed || T->cells[i].tex.failed)
            T->failed = 1;
    free(bold);
    free(st);
}

static void table_md(pl__buf *b, const paper_table *T)
{
    for (size_t j = 0; j < T->n_cols; j++)
        pl__buf_printf(b, "%s %s", j ? " |" : "|", T->md_head[j]);
    pl__buf_puts(b, " |\n");
    for (size_t j = 0; j < T->n_cols; j++)
        pl__buf_puts(b, T->align[j] == 'r' ? "|--:" : "|---");
    pl__buf_puts(b, "|\n");
    for (size_t r = 0; r < T->n_rows; r++) {
        for (size_t j = 0; j < T->n_cols; j++) {
            const table_cell *c = &T->cells[r * T->n_cols + j];
            pl__buf_puts(b, j ? " | " : "| ");
            bold_open(b, c->bold);
            pl__buf_add(b, c->md.data ? c->md.data : "", c->md.len);
            bold_open(b, c->bold);
        }
        pl__buf_puts(b, " |\n");
    }
}

static void table_tex(pl__buf *b, const paper_table *T, const char *experiment)
{
    pl__buf_puts(b, "% prunelab results table; needs \\usepackage{booktabs}. Mean $\\pm$ sample std over seeds.\n"
                    "\\begin{table}[t]\n\\centering\n\\small\n\\caption{");
    tex_text(b, experiment);
    pl__buf_puts(b, ": accuracy (test \\%), parameters and MACs per image after pruning. Compression "
                    "and speed-up as defined by Blalock et al.\\ (2020); $\\Delta$Acc.\\ is final minus "
                    "baseline accuracy of the same seed. Bold: beats the runner-up by more than the "
                    "seed spread.}\n\\begin{tabular}{");
    for (size_t j = 0; j < T->n_cols; j++)
        pl__buf_add(b, &T->align[j], 1);
    pl__buf_puts(b, "}\n\\toprule\n");
    for (size_t j = 0; j < T->n_cols; j++)
        pl__buf_printf(b, "%s%s", j ? " & " : "", T->tex_head[j]);
    pl__buf_puts(b, " \\\\\n\\midrule\n");
    size_t s = 0;
    for (size_t r = 0; r < T->n_rows; r++) {
        for (size_t j = 0; j < T->n_cols; j++) {
            const table_cell *c = &T->cells[r * T->n_cols + j];
            pl__buf_puts(b, j ? " & " : "");
            if (c->bold) /* \boldmath: the cells hold math ($\pm$) */
                pl__buf_puts(b, "{\\boldmath\\bfseries ");
            pl__buf_add(b, c->tex.data ? c->tex.data : "", c->tex.len);
            if (c->bold)
                pl__buf_puts(b, "}");
        }
        pl__buf_puts(b, " \\\\\n");
        if (T->section_end && r + 1 == T->section_end[s] && r + 1 < T->n_rows) {
            pl__buf_puts(b, "\\midrule\n");
            s++;
        }
    }
    pl__buf_puts(b, "\\bottomrule\n\\end{tabular}\n\\end{table}\n");
}

void pl__md_results(pl__buf *b, const pl__layout *L, int plots)
{
    size_t n_ok = 0;
    for (size_t i = 0; i < L->n; i++)
        n_ok += pl__is_ok(L->runs[i]);

    size_t n_exp;
    pl__buf exp = {0};
    md_distinct(&exp, L, PL__F(experiment), &n_exp);
    if (n_exp == 1) {
        pl__buf_puts(b, "# Results: ");
        pl__md_cell(b, L->runs[0]->experiment[0] ? L->runs[0]->experiment : "prunelab");
        pl__buf_puts(b, "\n\n");
    } else
        pl__buf_puts(b, "# Results\n\n");
    if (L->n == 0) {
        pl__buf_puts(b, "No runs recorded.\n");
        pl__buf_free(&exp);
        return;
    }
    if (n_exp > 1)
        pl__buf_printf(b, "- experiments: %s\n", exp.data);
    pl__buf_free(&exp);
    pl__buf_printf(b, "- runs: %zu (%zu ok, %zu failed or flagged)\n", L->n, n_ok, L->n - n_ok);
    size_t count;
    pl__buf list = {0};
    md_distinct(&list, L, PL__F(dataset), &count);
    pl__buf_printf(b, "- %s: %s\n", count == 1 ? "dataset" : "datasets", list.data);
    list.len = 0;
    md_distinct(&list, L, PL__F(backend), &count);
    pl__buf_printf(b, "- %s: %s\n\n", count == 1 ? "backend" : "backends", list.data);
    pl__buf_free(&list);

    pl__buf_puts(b,
                 "Mean " PL__PM " sample standard deviation over seeds. Accuracy: test-set %. "
                 "Params: nonzero parameters after pruning. MACs: per image, after pruning only "
                 "surviving weights count. Compression and speed-up as defined by Blalock et al. "
                 "2020: original / remaining parameters, and original / remaining MACs "
                 "(theoretical speed-up). " PL__DELTA "acc: final minus baseline accuracy of the "
                 "same seed. Latency: ms per 1,000 images. **Bold**: the best pruned "
                 "configuration of a model in that column, shown only where it beats the "
                 "runner-up by more than the seed spread (the larger standard deviation of the "
                 "two).");
    if (n_ok < L->n)
        pl__buf_puts(b, " Runs whose status is not ok are left out and listed below.");
    pl__buf_puts(b, "\n\n");

    paper_table T;
    table_build(&T, L);
    if (T.failed)
        b->failed = 1;
    else
        table_md(b, &T);
    table_free(&T);

    if (n_ok < L->n) {
        pl__buf_puts(b, "\n## Failed or flagged runs\n\n"
                        "| run_id | sweep | status | message |\n|---|---|---|---|\n");
        for (size_t i = 0; i < L->n; i++) {
            const pl_run_result *r = L->runs[i];
            if (pl__is_ok(r))
                continue;
            const char *cells[] = {r->run_id, r->sweep, r->status, r->message};
            pl__md_row(b, cells, 4);
        }
    }
    if (plots & 1)
        pl__buf_puts(b, "\n## Plots\n\n![accuracy vs sparsity](acc_vs_sparsity.svg)\n\n"
                        "![accuracy vs MACs](acc_vs_macs.svg)\n");
    if (plots & 2) /* the history of the runs at each series' highest sparsity */
        pl__buf_puts(b, "\n![test accuracy during training](training_curves.svg)\n");
    pl__buf_puts(b, "\nEvery run: results.csv. Every layer of every run: layers.csv.\n");
    pl_manifest_md(b, (const pl_run_result *const *)L->runs, L->n);
}


void pl__tex_results(pl__buf *b, const pl__layout *L, const char *experiment)
{
    paper_table T;
    table_build(&T, L);
    if (T.failed)
        b->failed = 1;
    else
        table_tex(b, &T, experiment);
    table_free(&T);
}
