/* report_plot.c — the report's plots (gnuplot scripts, SVGs); without gnuplot on PATH a warning says how to get them. */
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

/* ---- plots ------------------------------------------------------------------ */

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("prunelab: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Absolute path of an executable found on PATH (caller frees), or NULL. */
static char *find_on_path(const char *name)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        pl__buf cand = {0};
        if (len)
            pl__buf_add(&cand, path, len);
        else
            pl__buf_add(&cand, ".", 1);
        pl__buf_printf(&cand, "/%s", name);
        struct stat sb;
        if (!cand.failed && stat(cand.data, &sb) == 0 && S_ISREG(sb.st_mode) &&
            access(cand.data, X_OK) == 0) {
            char *abs = realpath(cand.data, NULL);
            pl__buf_free(&cand);
            if (abs)
                return abs;
        } else {
            pl__buf_free(&cand);
        }
        path += len;
        if (*path == ':')
            path++;
    }
    return NULL;
}

void pl__gp_quote(pl__buf *b, const char *s)
{
    pl__buf_add(b, "'", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            pl__buf_add(b, "''", 2);
        else if (*p == '\n' || *p == '\r')
            pl__buf_add(b, " ", 1);
        else
            pl__buf_add(b, p, 1);
    }
    pl__buf_add(b, "'", 1);
}

typedef struct plot_point {
    double sparsity, macs, acc, sd;
} plot_point;

static int point_cmp(const void *a, const void *b)
{
    const plot_point *x = a, *y = b;
    if (x->sparsity != y->sparsity)
        return x->sparsity < y->sparsity ? -1 : 1;
    return (x->macs > y->macs) - (x->macs < y->macs);
}

/* What else a sweep varies besides the x axis (sparsity), the seeds and
 * what the series label already names: runs that differ there (say
 * retrain.rewind or train.optimizer.lr) are different series. */
static void series_sweep(const pl_run_result *r, char *out, size_t cap)
{
    static const char *const drop[] = {"seed=", "prune.sparsity=", "prune.layers", "prune.count=",
                                       "prune.criterion=", "prune.criterion.plugin=", "prune.schedule=",
                                       "prune.schedule.plugin=", "prune.granularity=", "model=",
                                       "dataset", NULL};
    pl__sweep_without(r->sweep, drop, out, cap);
}

static int same_series(const pl_run_result *a, const pl_run_result *b)
{
    if (!pl__same_section(a, b) || strcmp(a->criterion, b->criterion) != 0 ||
        strcmp(a->schedule, b->schedule) != 0 || strcmp(a->granularity, b->granularity) != 0)
        return 0;
    char sa[sizeof a->sweep], sb[sizeof b->sweep];
    series_sweep(a, sa, sizeof sa);
    series_sweep(b, sb, sizeof sb);
    return strcmp(sa, sb) == 0;
}

/* Every series gets its own colour AND marker (colour-blind safe palettes,
 * Okabe & Ito then Tol's; filled markers first; the open square is the
 * dense model's), so the 12 series of 4 criteria x 3 schedules differ in
 * both, and up to 14 series do. */
#define PL__N_STYLES 14
static const char *const colors[PL__N_STYLES] = {
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255",
    "#999933", "#332288", "#44AA99", "#AA4499", "#117733", "#661100", "#6699CC"};
static const int marker_styles[PL__N_STYLES] = {7, 5, 9, 11, 13, 15, 1, 2, 3, 6, 8, 10, 12, 14};
static const char *const dense_colors[] = {"#000000", "#666666", "#8B4513", "#2F4F4F"};

/* "20k", "1.5M": a count as an axis label */
static void count_label(char *buf, size_t cap, double v)
{
    if (v >= 1e9)
        snprintf(buf, cap, "%gG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, cap, "%gM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, cap, "%gk", v / 1e3);
    else
        snprintf(buf, cap, "%g", v);
}

/* Explicit tick marks for a log axis over [lo, hi]: 1-2-5 per decade, or a
 * finer 1-1.5-2-3-4-5-6-8 when that gives fewer than 3 ticks. Labels are
 * written out here, so two ticks never print the same text. */
static void log_tics(pl__buf *b, double lo, double hi)
{
    static const double coarse[] = {1, 2, 5}, fine[] = {1, 1.5, 2, 3, 4, 5, 6, 8};
    if (!(lo > 0) || !isfinite(hi) || hi < lo) /* nothing sensible to mark: gnuplot's own */
        return;
    const double *mant[2] = {coarse, fine};
    size_t n_mant[2] = {3, 8};
    for (int pass = 0; pass < 2; pass++) {
        double v[64];
        size_t nv = 0;
        for (int k = (int)floor(log10(lo)) - 1; k <= (int)ceil(log10(hi)) && nv < 64; k++)
            for (size_t m = 0; m < n_mant[pass] && nv < 64; m++) {
                double t = mant[pass][m] * pow(10, k);
                if (t >= lo && t <= hi)
                    v[nv++] = t;
            }
        if (nv < 3 && pass == 0)
            continue;
        pl__buf_puts(b, "set xtics (");
        for (size_t i = 0; i < nv; i++) {
            char lab[32];
            count_label(lab, sizeof lab, v[i]);
            pl__buf_printf(b, "%s'%s' %.10g", i ? ", " : "", lab, v[i]);
        }
        pl__buf_puts(b, ")\n");
        return;
    }
}

/* Per section: the dense baseline as a horizontal line with its +-1 sd
 * band (objects/arrows numbered from 100), for the plot being set up. */
static void dense_decor(pl__buf *b, const pl__layout *L)
{
    for (size_t s = 0; s < L->n_sections; s++) {
        const pl__section *S = &L->sections[s];
        if (!S->acc.n)
            continue;
        const char *c = dense_colors[s % 4];
        double sd = S->acc.n > 1 ? S->acc.sd : 0.0;
        if (sd > 0)
            pl__buf_printf(b,
                           "set object %zu rect from graph 0, first %.6g to graph 1, first %.6g "
                           "fc rgb '%s' fs transparent solid 0.12 noborder behind\n",
                           100 + s, S->acc.mean - sd, S->acc.mean + sd, c);
        pl__buf_printf(b, "set arrow %zu from graph 0, first %.6g to graph 1, first %.6g nohead "
                          "lc rgb '%s' lw 1.5 dt 2 back\n",
                       100 + s, S->acc.mean, S->acc.mean, c);
    }
}

/* The legend entries of the dense lines (the lines themselves are arrows). */
static void dense_keys(pl__buf *p, const pl__layout *L, int many)
{
    for (size_t s = 0; s < L->n_sections; s++) {
        const pl__section *S = &L->sections[s];
        if (!S->acc.n)
            continue;
        pl__buf label = {0};
        pl__buf_puts(&label, "dense");
        if (many)
            pl__buf_printf(&label, " %s", S->key->model);
        if (S->acc.n > 1)
            pl__buf_printf(&label, ": %.2f " PL__PM " %.2f", S->acc.mean, S->acc.sd);
        else
            pl__buf_printf(&label, ": %.2f", S->acc.mean);
        pl__buf_printf(p, ", \\\n     NaN with lines lc rgb '%s' lw 1.5 dt 2 title ",
                       dense_colors[s % 4]);
        pl__gp_quote(p, label.failed ? "" : label.data);
        pl__buf_free(&label);
    }
}

/* history: x = training epochs so far for each row of a run's history (a
 * prune row sits at the epoch it follows, so the drop is vertical) */
static double history_x(const pl_run_result *r, size_t k)
{
    double x = 0;
    for (size_t i = 0; i <= k && i < r->n_history; i++)
        x += strcmp(r->history[i].phase, "prune") != 0;
    return x;
}

/* The gnuplot script for the plots: accuracy vs sparsity and vs MACs and
 * the training curves, each as SVG and PNG (outs[0..5]: sparsity.svg,
 * macs.svg, curves.svg, then the .png of each). *n_series = 0 when there
 * is nothing to plot; *curves = 0 when no run has a history. */
static void plot_script(pl__buf *b, const pl__layout *L, char (*outs)[64], int *n_series,
                            int *curves)
{
    int many_models = 0, many_datasets = 0, many_grans = 0;
    for (size_t g = 1; g < L->n_groups; g++) {
        const pl_run_result *a = L->groups[0].key, *c = L->groups[g].key;
        many_models |= strcmp(a->model, c->model) != 0;
        many_datasets |= strcmp(a->dataset, c->dataset) != 0;
        many_grans |= strcmp(a->granularity, c->granularity) != 0;
    }
    plot_point *pts = malloc((L->n_groups ? L->n_groups : 1) * sizeof *pts);
    pl__buf plot_s = {0}, plot_m = {0}, plot_h = {0};
    *n_series = 0;
    *curves = 0;
    if (!pts) {
        b->failed = 1;
        return;
    }
    double mac_lo = INFINITY, mac_hi = 0, sp_hi = 0;
    size_t seeds = 0, n_total = 0;
    for (size_t g = 0; g < L->n_groups; g++) {
        int seen = 0;
        for (size_t h = 0; h < g && !seen; h++)
            seen = same_series(L->groups[h].key, L->groups[g].key);
        n_total += !seen;
    }
    for (size_t g = 0; g < L->n_groups; g++)
        seeds = L->groups[g].n > seeds ? L->groups[g].n : seeds;

    /* one data block per series: sparsity, MACs, mean accuracy, std */
    for (size_t g = 0; g < L->n_groups; g++) {
        const pl_run_result *k = L->groups[g].key;
        int seen = 0;
        for (size_t h = 0; h < g && !seen; h++)
            seen = same_series(L->groups[h].key, k);
        if (seen)
            continue;
        size_t np = 0, top = g; /* top: the series' group of highest target sparsity */
        for (size_t h = g; h < L->n_groups; h++) {
            const pl__group *H = &L->groups[h];
            if (!same_series(H->key, k))
                continue;
            if (H->key->target_sparsity > L->groups[top].key->target_sparsity)
                top = h;
            if (!H->acc_final.n || !H->achieved.n || !H->macs_after.n)
                continue;
            pts[np++] = (plot_point){H->achieved.mean, H->macs_after.mean, H->acc_final.mean,
                                    H->acc_final.n > 1 ? H->acc_final.sd : 0.0};
        }
        if (!np)
            continue;
        qsort(pts, np, sizeof *pts, point_cmp);
        /* series at one x are dodged sideways (0.4 % of the axis per series:
         * sparsity +-, MACs x/÷) so every error bar stays visible; columns
         * 5 and 6 hold the dodged x */
        double dodge = n_total > 1 ? ((double)*n_series - (double)(n_total - 1) / 2.0) * 0.004 : 0;
        pl__buf_printf(b, "$s%d << EOD\n", *n_series);
        for (size_t i = 0; i < np; i++) {
            pl__buf_printf(b, "%.6g %.6g %.6g %.6g %.6g %.6g\n", pts[i].sparsity, pts[i].macs, pts[i].acc,
                           pts[i].sd, pts[i].sparsity + dodge, pts[i].macs * pow(10, dodge));
            mac_lo = fmin(mac_lo, pts[i].macs);
            mac_hi = fmax(mac_hi, pts[i].macs);
            sp_hi = fmax(sp_hi, pts[i].sparsity);
        }
        pl__buf_puts(b, "EOD\n");

        pl__buf label = {0};
        pl__buf_printf(&label, "%s / %s", k->criterion, k->schedule[0] ? k->schedule : "-");
        char extra[sizeof k->sweep];
        series_sweep(k, extra, sizeof extra);
        if (extra[0])
            pl__buf_printf(&label, " [%s]", extra);
        if (many_grans)
            pl__buf_printf(&label, " / %s", k->granularity);
        if (many_models)
            pl__buf_printf(&label, " (%s)", k->model);
        if (many_datasets)
            pl__buf_printf(&label, " [%s]", k->dataset);
        const char *color = colors[*n_series % PL__N_STYLES];
        int marker = marker_styles[*n_series % PL__N_STYLES];
        for (int w = 0; w < 2; w++) {
            pl__buf *p = w ? &plot_m : &plot_s;
            pl__buf_printf(p,
                           "%s$s%d using %d:3:4 with yerrorlines lw 1.5 lc rgb '%s' pt %d ps 1.1 "
                           "title ",
                           p->len ? ", \\\n     " : "plot ", *n_series, w ? 6 : 5, color, marker);
            pl__gp_quote(p, label.failed ? "" : label.data);
        }

        /* training curve of the series at its highest target sparsity: mean
         * test accuracy over the seeds, row by row of the history */
        const pl_run_result *first = NULL;
        size_t n_runs = 0;
        for (size_t i = 0; i < L->n; i++)
            if (L->group[i] == (int)top && L->runs[i]->n_history) {
                if (!first)
                    first = L->runs[i];
                n_runs++;
            }
        if (first) {
            pl__buf_printf(b, "$h%d << EOD\n", *n_series);
            for (size_t r = 0; r < first->n_history; r++) {
                double sum = 0;
                size_t cnt = 0;
                for (size_t i = 0; i < L->n; i++) {
                    const pl_run_result *q = L->runs[i];
                    if (L->group[i] != (int)top || q->n_history != first->n_history ||
                        strcmp(q->history[r].phase, first->history[r].phase) != 0 ||
                        isnan(q->history[r].test_acc))
                        continue;
                    sum += q->history[r].test_acc;
                    cnt++;
                }
                if (cnt)
                    pl__buf_printf(b, "%.6g %.6g\n", history_x(first, r), sum / (double)cnt);
            }
            pl__buf_puts(b, "EOD\n");
            pl__buf_printf(&label, " @ %.2f", L->groups[top].key->target_sparsity);
            pl__buf_printf(&plot_h, "%s$h%d using 1:2 with linespoints lw 1.5 lc rgb '%s' pt %d ps 0.9 title ",
                           plot_h.len ? ", \\\n     " : "plot ", *n_series, color, marker);
            pl__gp_quote(&plot_h, label.failed ? "" : label.data);
            *curves = 1;
            (void)n_runs;
        }
        pl__buf_free(&label);
        (*n_series)++;
    }
    /* the dense models: a point each at full MACs (x = 0 sparsity), their
     * accuracy as a line with its band (dense_decor) */
    for (size_t s = 0; s < L->n_sections && *n_series; s++) {
        const pl__section *S = &L->sections[s];
        if (!S->acc.n || !S->macs.n)
            continue;
        pl__buf_printf(b, "$d%zu << EOD\n0 %.6g %.6g %.6g\nEOD\n", s, S->macs.mean, S->acc.mean,
                       S->acc.n > 1 ? S->acc.sd : 0.0);
        mac_lo = fmin(mac_lo, S->macs.mean);
        mac_hi = fmax(mac_hi, S->macs.mean);
        for (int w = 0; w < 2; w++) {
            pl__buf *p = w ? &plot_m : &plot_s;
            pl__buf_printf(p, ", \\\n     $d%zu using %d:3:4 with yerrorbars lc rgb '%s' pt 4 ps 1.3 notitle",
                           s, w ? 2 : 1, dense_colors[s % 4]);
        }
    }
    dense_keys(&plot_s, L, many_models || L->n_sections > 1);
    dense_keys(&plot_m, L, many_models || L->n_sections > 1);

    const char *title = L->n ? L->runs[0]->experiment : "";
    pl__buf ttl = {0};
    if (seeds > 1)
        pl__buf_printf(&ttl, "%s: mean " PL__PM " 1 sd over %zu seeds", title, seeds);
    else
        pl__buf_printf(&ttl, "%s", title);
    static const char *const terms[2] = {
        "set terminal svg size 960,540 dynamic noenhanced font 'sans,12' background rgb 'white'\n",
        "set terminal pngcairo size 1200,675 noenhanced font 'sans,12' background rgb 'white'\n"};
    for (int t = 0; t < 2 && *n_series; t++) {
        pl__buf_puts(b, terms[t]);
        pl__buf_puts(b, "set encoding utf8\nset grid\nset bars 0.6\n"
                        "set key outside right top vertical Left reverse box spacing 1.1\n"
                        "set ylabel 'final test accuracy (%), after retraining and fine-tuning'\n"
                        "set offsets graph 0.02, graph 0.02, graph 0.04, graph 0.04\n"
                        "set yrange [0<*:*<100]\n" /* an error bar never stretches the axis past 0-100 % */
                        "set title ");
        pl__gp_quote(b, ttl.failed ? "" : ttl.data);
        /* accuracy vs sparsity */
        pl__buf_puts(b, "\nset output ");
        pl__gp_quote(b, outs[t * 3]);
        pl__buf_printf(b, "\nset xlabel 'achieved sparsity (share of the targeted units removed)'\n"
                          "set xrange [-0.03:%.3g]\nset xtics 0.1\nset format x '%%.1f'\n",
                       sp_hi > 0.9 ? 1.0 : sp_hi + 0.1);
        dense_decor(b, L);
        pl__buf_add(b, plot_s.data, plot_s.len);
        /* accuracy vs MACs, log x */
        pl__buf_puts(b, "\nset output ");
        pl__gp_quote(b, outs[t * 3 + 1]);
        pl__buf_puts(b, "\nset xlabel 'MACs per image after pruning (surviving weights; log scale)'\n"
                        "set logscale x\nset format x '%g'\n");
        double lo = mac_lo > 0 ? mac_lo / 1.3 : 1, hi = mac_hi > lo ? mac_hi * 1.3 : lo * 10;
        pl__buf_printf(b, "set xrange [%.6g:%.6g]\n", lo, hi);
        log_tics(b, lo, hi);
        pl__buf_add(b, plot_m.data, plot_m.len);
        pl__buf_puts(b, "\nunset logscale x\nunset object\nunset arrow\nset xtics autofreq\n"
                        "set autoscale x\n");
        if (*curves) {
            pl__buf_puts(b, "set output ");
            pl__gp_quote(b, outs[t * 3 + 2]);
            pl__buf_puts(b, "\nset title ");
            pl__buf tc = {0};
            pl__buf_printf(&tc, "%s: test accuracy during each run (mean over seeds; highest sparsity "
                                "of each series)", title);
            pl__gp_quote(b, tc.failed ? "" : tc.data);
            pl__buf_free(&tc);
            pl__buf_puts(b, "\nset xlabel 'training epochs so far (a prune step is a drop at the "
                            "epoch it follows)'\nset ylabel 'test accuracy (%)'\n"
                            "set xtics 1\nset format x '%g'\nset offsets graph 0.02, graph 0.02, "
                            "graph 0.04, graph 0.04\n");
            pl__buf_add(b, plot_h.data, plot_h.len);
            pl__buf_puts(b, "\n");
        }
        pl__buf_puts(b, "unset output\n");
    }
    if (plot_s.failed || plot_m.failed || plot_h.failed || ttl.failed)
        b->failed = 1;
    pl__buf_free(&plot_s);
    pl__buf_free(&plot_m);
    pl__buf_free(&plot_h);
    pl__buf_free(&ttl);
    free(pts);
}

/* last non-empty line of a small log file, for a one-line warning */
static void last_line(const char *path, char *out, size_t cap)
{
    char *text;
    out[0] = '\0';
    pl_error ignored;
    if (pl__read_file(path, &text, NULL, &ignored))
        return;
    char *line = NULL;
    for (char *p = strtok(text, "\r\n"); p; p = strtok(NULL, "\r\n")) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p)
            line = p;
    }
    if (line)
        snprintf(out, cap, "%s", line);
    free(text);
}

/* Runs gnuplot on `script` inside dir; 0 on success, else fills why. */
static int gnuplot_run(const char *gnuplot, const char *dir, const char *script,
                           const char *log, char *why, size_t cap)
{
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, cap, "cannot start gnuplot: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (chdir(dir) != 0)
            _exit(126);
        int in = open("/dev/null", O_RDONLY);
        int lg = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        if (in < 0 || lg < 0)
            _exit(126);
        dup2(in, 0);
        dup2(lg, 1);
        dup2(lg, 2);
        char *const argv[] = {(char *)"gnuplot", (char *)script, NULL};
        execv(gnuplot, argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(why, cap, "waiting for gnuplot: %s", strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    char last[200];
    pl__buf logpath = {0};
    pl__buf_printf(&logpath, "%s/%s", dir, log);
    last_line(logpath.failed ? "" : logpath.data, last, sizeof last);
    pl__buf_free(&logpath);
    if (WIFSIGNALED(status))
        snprintf(why, cap, "gnuplot was killed by signal %d", WTERMSIG(status));
    else if (last[0])
        snprintf(why, cap, "gnuplot failed: %s", last);
    else
        snprintf(why, cap, "gnuplot exited with status %d", WEXITSTATUS(status));
    return -1;
}

/* Writes the plots finals[0..n) into dir: fn writes the gnuplot script for
 * temporary output names outs[i] and returns the bits of the outputs it
 * draws (0: nothing to plot); they are renamed into place only when
 * gnuplot made every one. Returns the bits of finals that exist afterwards.
 * Every failure is a warning, never an error. */
unsigned pl__plot_render(const char *dir, const char *const *finals, int n, pl__plot_script_fn fn,
                         const void *ud)
{
    if (n > PL__PLOT_MAX_FILES)
        return 0;
    char *gnuplot = find_on_path("gnuplot");
    if (!gnuplot) {
        warn("gnuplot not found; skipping plots (apt-get install gnuplot-nox)");
        return 0;
    }
    long pid = (long)getpid();
    char outs[PL__PLOT_MAX_FILES][64], script[64], log[64], why[300];
    for (int i = 0; i < n; i++)
        snprintf(outs[i], sizeof outs[i], "%s.tmp.%ld", finals[i], pid);
    snprintf(script, sizeof script, "plots.gp.tmp.%ld", pid);
    snprintf(log, sizeof log, "plots.log.tmp.%ld", pid);

    pl__buf text = {0}, paths[2 + PL__PLOT_MAX_FILES] = {{0}};
    unsigned want = fn(&text, outs, ud), made = 0;
    pl__buf_printf(&paths[0], "%s/%s", dir, script);
    pl__buf_printf(&paths[1], "%s/%s", dir, log);
    for (int i = 0; i < n; i++)
        pl__buf_printf(&paths[2 + i], "%s/%s", dir, outs[i]);
    int oom = text.failed;
    for (int i = 0; i < n + 2; i++)
        oom |= paths[i].failed;
    if (oom) {
        warn("plots: out of memory; skipping plots");
    } else if (want == 0) {
        /* nothing to draw */
    } else {
        FILE *f = fopen(paths[0].data, "wb");
        pl_error e;
        if (!f) {
            pl__io_error(&e, paths[0].data, errno);
            warn("plots: %s; skipping plots", e.msg);
        } else if (pl_write_stream(f, paths[0].data, text.data, text.len, &e) != PL_OK) {
            fclose(f);
            warn("plots: %s; skipping plots", e.msg);
        } else if (fclose(f), gnuplot_run(gnuplot, dir, script, log, why, sizeof why) != 0) {
            warn("plots: %s; skipping plots", why);
        } else {
            made = want;
            for (int i = 0; i < n && made; i++) {
                if (!(want >> i & 1u))
                    continue;
                struct stat sb;
                pl__buf fin = {0};
                pl__buf_printf(&fin, "%s/%s", dir, finals[i]);
                if (stat(paths[2 + i].data, &sb) != 0 || sb.st_size == 0) {
                    warn("plots: gnuplot wrote no %s; skipping plots", finals[i]);
                    made = 0;
                } else if (fin.failed || rename(paths[2 + i].data, fin.data) != 0) {
                    pl__io_error(&e, fin.failed ? finals[i] : fin.data, errno);
                    warn("plots: %s; skipping plots", e.msg);
                    made = 0;
                }
                pl__buf_free(&fin);
            }
        }
    }
    for (int i = 0; i < n + 2; i++) {
        if (!paths[i].failed && paths[i].data)
            unlink(paths[i].data);
        pl__buf_free(&paths[i]);
    }
    pl__buf_free(&text);
    free(gnuplot);
    return made;
}

/* the report's script: outputs sparsity.svg, macs.svg, curves.svg, then
 * the .png of each (curves only when some run has a history) */
static unsigned report_script(pl__buf *b, char (*outs)[64], const void *ud)
{
    int n_series = 0, curves = 0;
    plot_script(b, ud, outs, &n_series, &curves);
    return n_series == 0 ? 0u : curves ? 077u : 033u;
}

/* Writes acc_vs_sparsity, acc_vs_macs and (when runs have a history)
 * training_curves, each as .svg and .png; returns a bitmask of what exists
 * afterwards (1: the accuracy plots, 2: the training curves). Every failure
 * is a warning, never an error. */
int pl__plots_write(const char *dir, const pl__layout *L)
{
    static const char *const finals[6] = {"acc_vs_sparsity.svg", "acc_vs_macs.svg",
                                          "training_curves.svg", "acc_vs_sparsity.png",
                                          "acc_vs_macs.png",     "training_curves.png"};
    unsigned made = pl__plot_render(dir, finals, 6, report_script, L);
    return made == 0 ? 0 : made & 4u ? 3 : 1;
}
