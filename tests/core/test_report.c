/*
 * Run records and reports: results.csv, layers.csv and results.md against
 * golden files (tests/fixtures/report/, regenerate with PL_UPDATE_GOLDEN=1
 * and review the diff), the exact JSON round trip of a record, atomic
 * writes on an unwritable folder and a full disk, loading a runs folder,
 * and plots with and without gnuplot.
 */
#include "pltest.h"
#include "result.h"

#include <criterion/redirect.h>
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define GOLDEN_DIR "tests/fixtures/report"
#define N_RUNS 7

/* ---- the fixture: SimpleCNN on MNIST, l1 channel and l2 weight pruning to
 * 50% over seeds 1..3, and one taylor run that failed. Counts are the real
 * SimpleCNN ones (26,138 params, 110,400 MACs per image). ---------------- */

static void set_layer(pl_layer_result *l, const char *name, const char *type, const char *sb,
                      const char *sa, int64_t pb, int64_t pa, int64_t nz, int64_t mb, int64_t ma,
                      double sp)
{
    memset(l, 0, sizeof *l);
    snprintf(l->name, sizeof l->name, "%s", name);
    snprintf(l->type, sizeof l->type, "%s", type);
    snprintf(l->shape_before, sizeof l->shape_before, "%s", sb);
    snprintf(l->shape_after, sizeof l->shape_after, "%s", sa);
    l->params_before = pb;
    l->params_after = pa;
    l->nonzero_after = nz;
    l->macs_before = mb;
    l->macs_after = ma;
    l->sparsity = sp;
}

static void base_run(pl_run_result *r, const char *id, size_t index, uint64_t seed,
                     const char *criterion, const char *gran)
{
    static const double acc_base[3] = {96.52, 96.71, 96.40};
    static const double lat_base[3] = {12.345, 12.5, 12.1};
    static const double secs_base[3] = {6.001, 5.874, 6.21};
    memset(r, 0, sizeof *r);
    snprintf(r->run_id, sizeof r->run_id, "%s", id);
    snprintf(r->experiment, sizeof r->experiment, "compare-criteria");
    snprintf(r->model, sizeof r->model, "simple_cnn");
    snprintf(r->dataset, sizeof r->dataset, "{plugin: idx, path: \"data/mnist\"}");
    snprintf(r->backend, sizeof r->backend, "simd");
    r->seed = seed;
    snprintf(r->criterion, sizeof r->criterion, "%s", criterion);
    snprintf(r->schedule, sizeof r->schedule, "oneshot");
    snprintf(r->granularity, sizeof r->granularity, "%s", gran);
    r->target_sparsity = 0.5;
    r->params_before = 26138;
    r->macs_before = 110400;
    r->acc_baseline = acc_base[seed - 1];
    r->latency_ms_before = lat_base[seed - 1];
    r->baseline_seconds = secs_base[seed - 1];
    snprintf(r->status, sizeof r->status, "ok");
    snprintf(r->sweep, sizeof r->sweep, "prune.criterion=%s prune.granularity=%s seed=%llu",
             criterion, gran, (unsigned long long)seed);
    r->run_index = index;
}

/* the history of a one-shot run: a baseline epoch, the prune step, a
 * retraining epoch (the prune row has no training loss) */
static void add_history(pl_run_result *r, double sparsity)
{
    r->n_history = 3;
    r->history = calloc(3, sizeof *r->history);
    cr_assert(r->history);
    r->history[0] = (pl_history_row){"train", 0, 1, 0, 0.29947589, 91.09, 0.1121601, r->acc_baseline};
    r->history[1] = (pl_history_row){"prune", 1, 0, sparsity, NAN, NAN, 0.64013306, r->acc_pruned};
    r->history[2] = (pl_history_row){"retrain", 1, 1, sparsity, 0.11613525, 96.62166666666667,
                                     0.07614442, r->acc_retrained};
}

static void l1_run(pl_run_result *r, const char *id, uint64_t seed)
{
    static const double pruned[3] = {61.23, 58.9, 64.02}, final[3] = {96.95, 97.1, 96.88};
    static const double lat[3] = {6.2, 6.05, 6.31}, secs[3] = {5.123, 5.2, 5.05};
    base_run(r, id, seed - 1, seed, "l1", "channel");
    r->achieved_sparsity = 0.5;
    r->params_after = r->nonzero_params_after = 13354;
    r->macs_after = r->macs_after_physical = 41408;
    r->acc_pruned = pruned[seed - 1];
    r->acc_retrained = r->acc_final = final[seed - 1];
    r->latency_ms_after = lat[seed - 1];
    r->train_seconds = secs[seed - 1];
    r->n_layers = 4;
    r->layers = calloc(4, sizeof *r->layers);
    cr_assert(r->layers);
    set_layer(&r->layers[0], "conv1", "conv2d", "4x1x3x3", "2x1x3x3", 40, 20, 20, 28224, 14112, 0.5);
    set_layer(&r->layers[1], "conv2", "conv2d", "8x4x3x3", "4x2x3x3", 296, 76, 76, 56448, 14112, 0.5);
    set_layer(&r->layers[2], "fc1", "linear", "64x392", "64x196", 25152, 12608, 12608, 25088, 12544,
              0);
    set_layer(&r->layers[3], "fc2", "linear", "10x64", "10x64", 650, 650, 650, 640, 640, 0);
    r->layers[0].kept = strdup("0,3");
    r->layers[1].kept = strdup("1-2,5-6");
    r->layers[2].kept = strdup("0-63");
    add_history(r, 0.5);
}

static void l2_run(pl_run_result *r, const char *id, uint64_t seed)
{
    static const double pruned[3] = {94.1, 93.87, 94.55}, final[3] = {97.21, 97.02, 97.3};
    static const double lat[3] = {12.4, 12.41, 12.2}, secs[3] = {4.9, 4.95, 5.001};
    base_run(r, id, seed + 2, seed, "l2", "weight");
    r->achieved_sparsity = 0.5;
    r->params_after = 26138;
    r->nonzero_params_after = 13432;
    r->macs_after = 55520;
    r->macs_after_physical = 110400;
    r->acc_pruned = pruned[seed - 1];
    r->acc_retrained = r->acc_final = final[seed - 1];
    r->latency_ms_after = lat[seed - 1];
    r->train_seconds = secs[seed - 1];
    r->n_layers = 4;
    r->layers = calloc(4, sizeof *r->layers);
    cr_assert(r->layers);
    set_layer(&r->layers[0], "conv1", "conv2d", "4x1x3x3", "4x1x3x3", 40, 40, 22, 28224, 14112, 0.5);
    set_layer(&r->layers[1], "conv2", "conv2d", "8x4x3x3", "8x4x3x3", 296, 296, 152, 56448, 28224,
              0.5);
    set_layer(&r->layers[2], "fc1", "linear", "64x392", "64x392", 25152, 25152, 12608, 25088, 12544,
              0.5);
    set_layer(&r->layers[3], "fc2", "linear", "10x64", "10x64", 650, 650, 650, 640, 640, 0);
}

static void failed_run(pl_run_result *r)
{
    base_run(r, "5d0c9e8f7a6b4c3d", 6, 1, "taylor", "channel");
    r->achieved_sparsity = NAN;
    r->acc_pruned = r->acc_retrained = r->acc_final = NAN;
    r->latency_ms_after = NAN;
    r->train_seconds = 0.25;
    snprintf(r->status, sizeof r->status, "failed");
    snprintf(r->message, sizeof r->message,
             "taylor: calibration batch 3, layer \"conv2\": gradient is NaN | stopped");
}

/* deliberately not in run_index order */
static void make_runs(pl_run_result *v)
{
    l2_run(&v[0], "9f1e2d3c4b5a6978", 2);
    l1_run(&v[1], "0a1b2c3d4e5f6071", 1);
    failed_run(&v[2]);
    l1_run(&v[3], "1b2c3d4e5f607182", 2);
    l2_run(&v[4], "8e0f1a2b3c4d5e6f", 1);
    l1_run(&v[5], "2c3d4e5f60718293", 3);
    l2_run(&v[6], "a0b1c2d3e4f50617", 3);
}

static void free_runs(pl_run_result *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pl_run_result_free(&v[i]);
}

/* ---- helpers ----------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    char *d;
    pl_error err;
    cr_assert_eq(pl__read_file(path, &d, len, &err), PL_OK, "%s", err.msg);
    return d;
}

static char *join(const char *a, const char *b)
{
    char *p = malloc(strlen(a) + strlen(b) + 2);
    cr_assert(p);
    sprintf(p, "%s/%s", a, b);
    return p;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* names in dir containing `part` */
static int count_named(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

static void rm_rf(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    cr_assert_eq(system(cmd), 0);
}

static void check_golden(const char *dir, const char *name)
{
    char *got_path = join(dir, name);
    char golden[512];
    snprintf(golden, sizeof golden, GOLDEN_DIR "/%s.golden", name);
    size_t got_len, want_len;
    char *got = slurp(got_path, &got_len);
    if (getenv("PL_UPDATE_GOLDEN")) {
        pl_error err;
        cr_assert_eq(pl_write_atomic(golden, got, got_len, &err), PL_OK, "%s", err.msg);
    }
    char *want = slurp(golden, &want_len);
    if (got_len != want_len || memcmp(got, want, got_len) != 0) {
        size_t i = 0, line = 1;
        while (i < got_len && i < want_len && got[i] == want[i])
            line += got[i++] == '\n';
        const char *g = got + i, *w = want + i;
        while (g > got && g[-1] != '\n')
            g--;
        while (w > want && w[-1] != '\n')
            w--;
        cr_assert_fail("%s differs from %s at line %zu:\n got: %.200s\nwant: %.200s", got_path,
                       golden, line, g, w);
    }
    free(got);
    free(want);
    free(got_path);
}

/* ---- golden reports ---------------------------------------------------- */

Test(report, golden_files)
{
    pl_run_result runs[N_RUNS];
    make_runs(runs);
    char *dir = pltest_tmpdir();
    pl_error err;
    cr_assert_eq(pl_report_write(dir, runs, N_RUNS, 0, &err), PL_OK, "%s", err.msg);
    check_golden(dir, "results.csv");
    check_golden(dir, "layers.csv");
    check_golden(dir, "results.md");
    check_golden(dir, "history.csv");
    check_golden(dir, "results.tex");
    cr_assert_eq(count_named(dir, ".tmp."), 0, "temporary files left behind");
    cr_assert_eq(count_named(dir, ".svg"), 0, "plots written although plots=0");
    free_runs(runs, N_RUNS);
    rm_rf(dir);
    free(dir);
}

Test(report, results_csv_contract)
{
    pl_run_result runs[N_RUNS];
    make_runs(runs);
    char *dir = pltest_tmpdir();
    pl_error err;
    cr_assert_eq(pl_report_write(dir, runs, N_RUNS, 0, &err), PL_OK, "%s", err.msg);
    char *path = join(dir, "results.csv");
    char *csv = slurp(path, NULL);
    const char *header =
        "run_id,experiment,model,dataset,backend,seed,criterion,schedule,granularity,"
        "target_sparsity,achieved_sparsity,params_before,params_after,nonzero_params_after,"
        "macs_before,macs_after,macs_after_physical,flops_before,flops_after,acc_baseline,"
        "acc_pruned,acc_retrained,acc_final,latency_ms_before,latency_ms_after,train_seconds,"
        "baseline_seconds,status,sweep,"
        /* appended (issue 14): provenance from the run manifest */
        "prunelab_version,dataset_checksum\n";
    cr_assert_eq(strncmp(csv, header, strlen(header)), 0, "header differs:\n%.600s", csv);
    /* first row is run_index 0; the dataset cell is RFC 4180 quoted; flops = 2 x macs */
    cr_assert(strstr(csv, "\n0a1b2c3d4e5f6071,compare-criteria,simple_cnn,"
                          "\"{plugin: idx, path: \"\"data/mnist\"\"}\",simd,1,l1,oneshot,channel,"
                          "0.5000,0.5000,26138,13354,13354,110400,41408,41408,220800,82816,"
                          "96.52,61.23,96.95,96.95,12.345,6.200,5.123,6.001,ok,"),
              "%s", csv);
    /* NaN -> empty cells */
    cr_assert(strstr(csv, ",0.5000,,26138,0,0,110400,0,0,220800,0,96.52,,,,12.345,,0.250,6.001,"
                          "failed,"),
              "%s", csv);
    free(csv);
    free(path);
    free_runs(runs, N_RUNS);
    rm_rf(dir);
    free(dir);
}

Test(report, no_runs)
{
    char *dir = pltest_tmpdir();
    char *sub = join(dir, "deeper/report");
    pl_error err;
    cr_assert_eq(pl_report_write(sub, NULL, 0, 1, &err), PL_OK, "%s", err.msg);
    char *p = join(sub, "layers.csv");
    char *csv = slurp(p, NULL);
    cr_assert_str_eq(csv, "run_id,layer,type,shape_before,shape_after,params_before,params_after,"
                          "nonzero_after,macs_before,macs_after,sparsity\n");
    free(csv);
    free(p);
    p = join(sub, "results.md");
    char *md = slurp(p, NULL);
    cr_assert(strstr(md, "No runs recorded."), "%s", md);
    free(md);
    free(p);
    free(sub);
    rm_rf(dir);
    free(dir);
}

Test(report, md_single_seed_and_extra_columns)
{
    /* one seed per configuration: no "±"; two datasets: a dataset column */
    pl_run_result runs[2];
    l1_run(&runs[0], "0a1b2c3d4e5f6071", 1);
    l1_run(&runs[1], "1b2c3d4e5f607182", 2);
    snprintf(runs[1].dataset, sizeof runs[1].dataset, "synthetic");
    char *dir = pltest_tmpdir();
    pl_error err;
    cr_assert_eq(pl_report_write(dir, runs, 2, 0, &err), PL_OK, "%s", err.msg);
    char *p = join(dir, "results.md");
    char *md = slurp(p, NULL);
    cr_assert(strstr(md, "| model | dataset | criterion |"), "%s", md);
    cr_assert(strstr(md, "| 96.95 | "), "%s", md);
    cr_assert(!strstr(strstr(md, "| simple_cnn"), "\xc2\xb1"), "n == 1: no std\n%s", md);
    cr_assert(!strstr(md, "left out"), "no failed runs to mention\n%s", md);
    cr_assert(!strstr(strstr(md, "| simple_cnn"), "**"), "one row per model: nothing to mark\n%s",
              md);
    free(md);
    free(p);
    free_runs(runs, 2);
    rm_rf(dir);
    free(dir);
}

Test(report, plots_with_gnuplot)
{
    char *gp = NULL;
    if (pltest_run("command -v gnuplot", &gp) != 0) {
        free(gp);
        cr_skip_test("gnuplot is not installed");
    }
    free(gp);
    pl_run_result runs[N_RUNS];
    make_runs(runs);
    char *dir = pltest_tmpdir();
    pl_error err;
    cr_assert_eq(pl_report_write(dir, runs, N_RUNS, 1, &err), PL_OK, "%s", err.msg);
    const char *names[] = {"acc_vs_sparsity.svg", "acc_vs_macs.svg", "training_curves.svg"};
    for (int i = 0; i < 3; i++) {
        char *p = join(dir, names[i]);
        char *svg = slurp(p, NULL);
        cr_assert(strstr(svg, "<svg"), "%s is not an SVG", p);
        cr_assert(strstr(svg, "l1 / oneshot"), "%s lacks the l1 curve", p);
        if (i < 2) /* the dense baseline is a legend entry with its mean and sd */
            cr_assert(strstr(svg, "dense: 96.54 \xc2\xb1 0.16"), "%s lacks the dense line", p);
        free(svg);
        free(p);
        /* and the same plot as PNG */
        char png[64];
        snprintf(png, sizeof png, "%.*s.png", (int)(strlen(names[i]) - 4), names[i]);
        p = join(dir, png);
        char *data = slurp(p, NULL);
        cr_assert(memcmp(data, "\x89PNG", 4) == 0, "%s is not a PNG", p);
        free(data);
        free(p);
    }
    /* MACs 41,408-110,400 on a log axis: explicit ticks, each label once
     * (a linear '%.0s%c' axis once read "0, 500k, 1M, 2M, 2M, 2M, 3M") */
    char *p = join(dir, "acc_vs_macs.svg");
    char *svg = slurp(p, NULL);
    const char *ticks[] = {">40k<", ">50k<", ">60k<", ">80k<", ">100k<"};
    for (int i = 0; i < 5; i++) {
        const char *at = strstr(svg, ticks[i]);
        cr_assert(at, "no tick %s", ticks[i]);
        cr_assert(!strstr(at + 1, ticks[i]), "tick %s twice", ticks[i]);
    }
    free(svg);
    free(p);
    p = join(dir, "results.md");
    char *md = slurp(p, NULL);
    cr_assert(strstr(md, "![accuracy vs sparsity](acc_vs_sparsity.svg)"), "%s", md);
    cr_assert(strstr(md, "(acc_vs_macs.svg)"), "%s", md);
    cr_assert(strstr(md, "(training_curves.svg)"), "%s", md);
    free(md);
    free(p);
    cr_assert_eq(count_named(dir, ".tmp."), 0, "temporary files left behind");
    cr_assert_eq(count_named(dir, ".gp"), 0, "gnuplot script left behind");
    free_runs(runs, N_RUNS);
    rm_rf(dir);
    free(dir);
}

Test(report, plots_without_gnuplot, .init = cr_redirect_stderr)
{
    char *saved_path = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", "/nonexistent-pl-test", 1);
    pl_run_result runs[N_RUNS];
    make_runs(runs);
    char *dir = pltest_tmpdir();
    pl_error err;
    cr_assert_eq(pl_report_write(dir, runs, N_RUNS, 1, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(count_named(dir, ".svg"), 0);
    char *p = join(dir, "results.md");
    char *md = slurp(p, NULL);
    cr_assert(!strstr(md, ".svg"), "%s", md);
    free(md);
    free(p);
    fflush(stderr);
    cr_assert_stderr_eq_str("prunelab: warning: gnuplot not found; skipping plots "
                            "(apt-get install gnuplot-nox)\n");
    setenv("PATH", saved_path, 1);
    free(saved_path);
    free_runs(runs, N_RUNS);
    rm_rf(dir);
    free(dir);
}

/* ---- records ----------------------------------------------------------- */

static void assert_double_same(double a, double b, const char *what)
{
    if (isnan(a))
        cr_assert(isnan(b), "%s: NaN read back as %.17g", what, b);
    else
        cr_assert(memcmp(&a, &b, sizeof a) == 0, "%s: %.17g read back as %.17g", what, a, b);
}

static void assert_run_same(const pl_run_result *a, const pl_run_result *b)
{
#define S(f) cr_assert_str_eq(a->f, b->f, #f)
#define I(f) cr_assert(a->f == b->f, #f)
#define D(f) assert_double_same(a->f, b->f, #f)
    S(run_id); S(experiment); S(model); S(dataset); S(backend); I(seed); S(criterion);
    S(schedule); S(granularity); D(target_sparsity); D(achieved_sparsity); I(params_before);
    I(params_after); I(nonzero_params_after); I(macs_before); I(macs_after);
    I(macs_after_physical); D(acc_baseline); D(acc_pruned); D(acc_retrained); D(acc_final);
    D(latency_ms_before); D(latency_ms_after); D(train_seconds); D(baseline_seconds); S(status);
    S(sweep); S(message); I(run_index); I(n_layers);
    for (size_t k = 0; k < a->n_layers; k++) {
        const pl_layer_result *x = &a->layers[k], *y = &b->layers[k];
        cr_assert_str_eq(x->name, y->name);
        cr_assert_str_eq(x->type, y->type);
        cr_assert_str_eq(x->shape_before, y->shape_before);
        cr_assert_str_eq(x->shape_after, y->shape_after);
        cr_assert(x->params_before == y->params_before && x->params_after == y->params_after &&
                  x->nonzero_after == y->nonzero_after && x->macs_before == y->macs_before &&
                  x->macs_after == y->macs_after);
        assert_double_same(x->sparsity, y->sparsity, "layer sparsity");
        cr_assert((x->kept == NULL) == (y->kept == NULL), "kept present on one side only");
        if (x->kept)
            cr_assert_str_eq(x->kept, y->kept);
    }
    I(n_history);
    for (size_t k = 0; k < a->n_history; k++) {
        const pl_history_row *x = &a->history[k], *y = &b->history[k];
        cr_assert_str_eq(x->phase, y->phase);
        cr_assert(x->step == y->step && x->epoch == y->epoch);
        assert_double_same(x->sparsity, y->sparsity, "history sparsity");
        assert_double_same(x->loss, y->loss, "history loss");
        assert_double_same(x->train_acc, y->train_acc, "history train_acc");
        assert_double_same(x->test_loss, y->test_loss, "history test_loss");
        assert_double_same(x->test_acc, y->test_acc, "history test_acc");
    }
#undef S
#undef I
#undef D
}

Test(record, round_trip_exact)
{
    pl_run_result runs[N_RUNS];
    make_runs(runs);
    pl_run_result *odd = &runs[0]; /* stretch every field */
    snprintf(odd->experiment, sizeof odd->experiment, "q\"uo\\te\nnew\tline\x01\x7f \xc3\xa9\xe2\x86\x92");
    snprintf(odd->message, sizeof odd->message, "/slash/ {\"json\": [1, 2]}");
    odd->seed = UINT64_MAX;
    odd->params_before = INT64_MAX;
    odd->params_after = INT64_MIN;
    odd->target_sparsity = 0.1;
    odd->achieved_sparsity = -0.0;
    odd->acc_baseline = 1e-310; /* subnormal */
    odd->acc_pruned = DBL_MAX;
    odd->acc_retrained = INFINITY;
    odd->acc_final = -INFINITY;
    odd->latency_ms_before = NAN;
    odd->latency_ms_after = 1.0 / 3.0;
    odd->train_seconds = 2.718281828459045;
    odd->run_index = SIZE_MAX;
    odd->layers[1].sparsity = NAN;

    char *dir = pltest_tmpdir();
    pl_error err;
    for (size_t i = 0; i < N_RUNS; i++) {
        cr_assert_eq(pl_record_write(dir, &runs[i], &err), PL_OK, "%s", err.msg);
        char path[4200];
        snprintf(path, sizeof path, "%s/runs/%s.json", dir, runs[i].run_id);
        pl_run_result back;
        cr_assert_eq(pl_record_read(path, &back, &err), PL_OK, "%s", err.msg);
        assert_run_same(&runs[i], &back);
        pl_run_result_free(&back);
    }
    char *runs_dir = join(dir, "runs");
    cr_assert_eq(count_named(runs_dir, ".tmp."), 0);
    free(runs_dir);
    free_runs(runs, N_RUNS);
    rm_rf(dir);
    free(dir);
}

Test(record, rejects_unsafe_run_id)
{
    pl_run_result r;
    l1_run(&r, "../../etc", 1);
    char *dir = pltest_tmpdir();
    pl_error err;
    cr_assert_eq(pl_record_write(dir, &r, &err), PL_EINVAL);
    cr_assert(strstr(err.msg, "run_id"), "%s", err.msg);
    pl_run_result_free(&r);
    rm_rf(dir);
    free(dir);
}

/* a valid record's text, then edits of it that must be refused */
static char *record_text(const char *dir)
{
    pl_run_result r;
    l1_run(&r, "0a1b2c3d4e5f6071", 1);
    pl_error err;
    cr_assert_eq(pl_record_write(dir, &r, &err), PL_OK, "%s", err.msg);
    pl_run_result_free(&r);
    char path[4200];
    snprintf(path, sizeof path, "%s/runs/0a1b2c3d4e5f6071.json", dir);
    return slurp(path, NULL);
}

static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    cr_assert(at, "fixture text lacks %s", from);
    char *out = malloc(strlen(s) + strlen(to) + 1);
    cr_assert(out);
    size_t pre = (size_t)(at - s);
    memcpy(out, s, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    return out;
}

/* an edit of a valid record's text, and what the error must say */
typedef struct record_edit {
    const char *from, *to, *why;
} record_edit;

/* `good` with edit `c` (case number i) written to path must be refused with
 * PL_EFORMAT, one line naming path and saying c->why, and nothing kept. */
static void record_refused(const char *path, const char *good, const record_edit *c, size_t i)
{
    char *text = replace(good, c->from, c->to);
    spit(path, text);
    pl_run_result r;
    pl_error err;
    cr_assert_eq(pl_record_read(path, &r, &err), PL_EFORMAT, "case %zu accepted:\n%s", i, text);
    cr_assert(strstr(err.msg, path), "case %zu: %s", i, err.msg);
    cr_assert(strstr(err.msg, c->why), "case %zu: want \"%s\" in: %s", i, c->why, err.msg);
    cr_assert(!strchr(err.msg, '\n'), "case %zu: not one line: %s", i, err.msg);
    cr_assert_null(r.layers);
    free(text);
}

Test(record, rejects_malformed)
{
    char *dir = pltest_tmpdir();
    char *good = record_text(dir);
    const record_edit cases[] = {
        {"\"seed\": 1,", "\"seed\": 1, \"seed\": 2,", "duplicate key \"seed\""},
        {"\"seed\": 1,", "\"sead\": 1,", "unknown key \"sead\""},
        {"\"seed\": 1,", "", "lacks the key \"seed\""},
        {"\"seed\": 1,", "\"seed\": 1.5,", "must be an integer"},
        {"\"seed\": 1,", "\"seed\": -1,", "must not be negative"},
        {"\"seed\": 1,", "\"seed\": 99999999999999999999999,", "out of range"},
        {"\"seed\": 1,", "\"seed\": \"1\",", "must be an integer"},
        {"\"acc_final\": 96.950000000000003,", "\"acc_final\": \"x\",", "must be a number or null"},
        {"\"acc_final\": 96.950000000000003,", "\"acc_final\": 01,", "expected ','"},
        {"\"status\": \"ok\",", "\"status\": \"okokokokokokokokok\",", "too long"},
        {"\"status\": \"ok\",", "\"status\": \"o\\x\",", "invalid escape"},
        {"\"status\": \"ok\",", "\"status\": \"o\\ud800\",", "surrogate"},
        {"\"status\": \"ok\",", "\"status\": \"o\\u0000\",", "\\u0000"},
        {"\"status\": \"ok\",", "\"status\": \"o\tk\",", "control character"},
        {"\"format\": \"prunelab-run\"", "\"format\": \"other\"", "not a prunelab run record"},
        {"\"version\": 1", "\"version\": 2", "version 2 is not supported"},
        {"\"shape_after\": \"2x1x3x3\", ", "", "layer lacks the key \"shape_after\""},
        {"\"layers\": [", "\"layers\": {", "must be an array"},
        {"\n}\n", "\n}\n}", "unexpected text after the record"},
        {"\n}\n", "\n", "expected ',' or '}'"},
    };
    char path[4200];
    snprintf(path, sizeof path, "%s/bad.json", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        record_refused(path, good, &cases[i], i);
    /* error positions are line:col */
    record_refused(path, good, &(record_edit){"\"seed\": 1,", "\"seed\": true,", "bad.json:10:11: "}, 0);
    pl_run_result r;
    pl_error err;
    spit(path, "");
    cr_assert_eq(pl_record_read(path, &r, &err), PL_EFORMAT);
    cr_assert(strstr(err.msg, "unexpected end of file"), "%s", err.msg);
    free(good);
    rm_rf(dir);
    free(dir);
}

/* what YAML (the reader's parser) allows and JSON does not is refused too */
Test(record, refuses_yaml_beyond_json)
{
    char *dir = pltest_tmpdir();
    char *good = record_text(dir);
    const record_edit cases[] = {
        {"\"seed\": 1,", "\"seed\": &a 1,", "anchor (&a) is not JSON"},
        {"\"seed\": 1,", "\"seed\": *a,", "alias (*a) is not JSON"},
        {"\"seed\": 1,", "\"seed\": !!int 1,", "tag (tag:yaml.org,2002:int) is not JSON"},
        {"\"status\": \"ok\",", "\"status\": 'ok',", "single-quoted"},
        {"\"status\": \"ok\",", "\"status\": ok,", "\"status\" must be a string"},
        {"\"seed\": 1,", "seed: 1,", "expected a key string"},
        {"\"seed\": 1,", "'seed': 1,", "single-quoted"},
        {"\"seed\": 1,", "\"seed\": 1, # a comment", "unexpected character"},
        {"\"seed\": 1,", "? \"seed\": 1,", "unexpected character"},
        {"\n}\n", ",\n}\n", "a trailing ',' before '}'"},
        {"}\n  ]", "},\n  ]", "a trailing ',' before ']'"},
        {"\"layers\": [", "\"layers\": [\"name\": \"x\", ", "pair in an array is not JSON"},
        {"\"status\": \"ok\",", "\"status\": \"o\\ek\",", "invalid escape '\\e'"},
        {"\"status\": \"ok\",", "\"status\": \"o\\x41\",", "invalid escape '\\x'"},
        {"\"status\": \"ok\",", "\"status\": \"o\\U0001F600\",", "invalid escape '\\U'"},
        {"\"status\": \"ok\",", "\"status\": \"o\nk\",", "control character"},
        {"\"status\": \"ok\",", "\"status\": \"o\\\nk\",", "invalid escape"},
        {"{\n", "--- {\n", "expected a JSON object"},
        {"{\n", "%YAML 1.1\n---\n{\n", "expected a JSON object"},
        {"{\n", "!!map {\n", "expected a JSON object"},
        {"\n}\n", "\n}\n...\n", "unexpected text after the record"},
        {"\n}\n", "\n}\n# done\n", "unexpected text after the record"},
        {"\"seed\": 1,", "\"seed\": +1,", "\"seed\" must be an integer"},
        {"\"seed\": 1,", "\"seed\": 0x1,", "unexpected character: expected ',' or '}'"},
        {"\"seed\": 1,", "\"seed\": 1_000,", "unexpected character: expected ',' or '}'"},
        {"\"seed\": 1,", "\"seed\": ~,", "\"seed\" must be an integer"},
        {"\"acc_final\": 96.950000000000003,", "\"acc_final\": .inf,", "must be a number or null"},
        {"\"acc_final\": 96.950000000000003,", "\"acc_final\": .5,", "must be a number or null"},
        {"\"acc_final\": 96.950000000000003,", "\"acc_final\": 1.,", "expected a digit after '.'"},
        {"\"acc_final\": 96.950000000000003,", "\"acc_final\": 1e,", "expected a digit in the exponent"},
        {"\"acc_final\": 96.950000000000003,", "\"acc_final\": 0x1p3,", "expected ',' or '}'"},
        {"\"acc_final\": 96.950000000000003,", "\"acc_final\": Null,", "must be a number or null"},
        {"\"acc_final\": 96.950000000000003,", "\"acc_final\": 1 2,", "expected ',' or '}'"},
        {"\"acc_final\": 96.950000000000003,", "\"acc_final\": ,", "must be a number or null"},
    };
    char path[4200];
    snprintf(path, sizeof path, "%s/bad.json", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        record_refused(path, good, &cases[i], i);
    /* positions are line:col in bytes, as before */
    record_refused(path, good, &(record_edit){"\"seed\": 1,", "\"seed\": 1, # x", "bad.json:10:14: "}, 0);
    const char *line = strstr(good, "\"status\"");
    size_t col = 1;
    while (line > good && line[-1] != '\n')
        line--, col++; /* column of "status" */
    char want[64];
    snprintf(want, sizeof want, ":%zu: invalid escape '\\q'", col + 16); /* "status": " then 5 bytes */
    record_refused(path, good, &(record_edit){"\"status\": \"ok\",", "\"status\": \"\xc3\xa9\xe2\x86\x92\\q\",", want}, 0);
    free(good);
    rm_rf(dir);
    free(dir);
}

/* JSON that YAML reads otherwise still reads as JSON */
Test(record, reads_json_that_yaml_reads_otherwise)
{
    char *dir = pltest_tmpdir();
    char *good = record_text(dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/ok.json", dir);
    /* tabs and CRLF as white space, a tab before the '{', no spaces at all */
    size_t n = strlen(good);
    char *crlf = malloc(2 * n + 2), *tight = malloc(n + 1), *o = crlf, *t = tight;
    cr_assert(crlf && tight);
    *o++ = '\t';
    int in_str = 0;
    for (const char *q = good; *q; q++) {
        if (in_str && *q == '\\') { /* an escape pair */
            *o++ = *t++ = *q++;
        } else if (*q == '"') {
            in_str = !in_str;
        } else if (!in_str && (*q == ' ' || *q == '\n')) {
            if (*q == '\n')
                *o++ = '\r';
            *o++ = *q == ' ' ? '\t' : '\n';
            continue;
        }
        *o++ = *t++ = *q;
    }
    *o = *t = '\0';
    pl_run_result r;
    pl_error err;
    for (int k = 0; k < 2; k++) {
        spit(path, k ? tight : crlf);
        cr_assert_eq(pl_record_read(path, &r, &err), PL_OK, "%s\n%s", err.msg, k ? tight : crlf);
        cr_assert_eq(r.seed, 1);
        cr_assert_str_eq(r.status, "ok");
        cr_assert_eq(r.n_layers, 4);
        cr_assert_str_eq(r.layers[1].kept, "1-2,5-6");
        pl_run_result_free(&r);
    }
    free(crlf);
    free(tight);
    /* JSON's escapes, a surrogate pair and "\/" (YAML lacks the pair) */
    char *text = replace(good, "\"status\": \"ok\",", "\"status\": \"\\u006f\\/\\ud83d\\ude00\\u0085\",");
    spit(path, text);
    cr_assert_eq(pl_record_read(path, &r, &err), PL_OK, "%s", err.msg);
    cr_assert_str_eq(r.status, "o/\xf0\x9f\x98\x80\xc2\x85");
    pl_run_result_free(&r);
    free(text);
    free(good);
    rm_rf(dir);
    free(dir);
}

/* bytes the writer writes raw read back as written, though YAML refuses
 * them: C1 controls, U+FFFF, invalid UTF-8 (a field cut mid-character);
 * and a long "kept" */
Test(record, round_trip_raw_bytes)
{
    pl_run_result run;
    l1_run(&run, "0a1b2c3d4e5f6071", 1);
    snprintf(run.message, sizeof run.message, "c1 \xc2\x80\xc2\x9f ffff \xef\xbf\xbf cut \xe2\x86");
    snprintf(run.sweep, sizeof run.sweep, "latin1 \xe9\xff \xfe bom \xef\xbb\xbf");
    /* a string far over libyaml's 1,024-character limit on a key */
    free(run.layers[0].kept);
    run.layers[0].kept = malloc(6 * 4000);
    cr_assert(run.layers[0].kept);
    for (int u = 0, at = 0; u < 4000; u++)
        at += sprintf(run.layers[0].kept + at, u ? ",%d" : "%d", 2 * u);
    char *dir = pltest_tmpdir();
    pl_error err;
    cr_assert_eq(pl_record_write(dir, &run, &err), PL_OK, "%s", err.msg);
    char path[4200];
    snprintf(path, sizeof path, "%s/runs/%s.json", dir, run.run_id);
    pl_run_result back;
    cr_assert_eq(pl_record_read(path, &back, &err), PL_OK, "%s", err.msg);
    assert_run_same(&run, &back);
    pl_run_result_free(&back);
    pl_run_result_free(&run);
    rm_rf(dir);
    free(dir);
}

Test(record, load_sorts_and_ignores_tmp)
{
    pl_run_result runs[N_RUNS];
    make_runs(runs);
    runs[6].run_index = runs[3].run_index; /* a tie: ordered by run_id */
    char *dir = pltest_tmpdir();
    pl_error err;
    pl_run_result *got;
    size_t n;
    cr_assert_eq(pl_records_load(dir, &got, &n, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(n, 0, "no runs folder yet: no records");
    for (size_t i = 0; i < N_RUNS; i++)
        cr_assert_eq(pl_record_write(dir, &runs[i], &err), PL_OK, "%s", err.msg);
    char *runs_dir = join(dir, "runs");
    char *p;
    spit(p = join(runs_dir, "0a1b2c3d4e5f6071.json.tmp.4242"), "{\"half\": ");
    free(p);
    spit(p = join(runs_dir, "zz.tmp.1.json"), "garbage");
    free(p);
    spit(p = join(runs_dir, ".hidden.json"), "garbage");
    free(p);
    spit(p = join(runs_dir, "notes.txt"), "garbage");
    free(p);

    cr_assert_eq(pl_records_load(dir, &got, &n, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(n, N_RUNS);
    for (size_t i = 1; i < n; i++) {
        cr_assert(got[i - 1].run_index < got[i].run_index ||
                  (got[i - 1].run_index == got[i].run_index &&
                   strcmp(got[i - 1].run_id, got[i].run_id) < 0),
                  "records %zu and %zu out of order", i - 1, i);
    }
    cr_assert_str_eq(got[0].run_id, "0a1b2c3d4e5f6071");
    cr_assert_str_eq(got[n - 1].run_id, "5d0c9e8f7a6b4c3d");
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < N_RUNS; k++)
            if (strcmp(runs[k].run_id, got[i].run_id) == 0)
                assert_run_same(&runs[k], &got[i]);
        pl_run_result_free(&got[i]);
    }
    free(got);

    /* a malformed record stops the load and is named */
    spit(p = join(runs_dir, "broken.json"), "{\"format\": \"prunelab-run\",");
    cr_assert_eq(pl_records_load(dir, &got, &n, &err), PL_EFORMAT);
    cr_assert(strstr(err.msg, p), "%s", err.msg);
    cr_assert_eq(n, 0);
    cr_assert_null(got);
    free(p);
    /* a record under the wrong file name */
    unlink(p = join(runs_dir, "broken.json"));
    free(p);
    char *from = join(runs_dir, "0a1b2c3d4e5f6071.json"), *to = join(runs_dir, "renamed.json");
    cr_assert_eq(rename(from, to), 0);
    cr_assert_eq(pl_records_load(dir, &got, &n, &err), PL_EFORMAT);
    cr_assert(strstr(err.msg, "does not match the file name"), "%s", err.msg);
    free(from);
    free(to);

    free(runs_dir);
    free_runs(runs, N_RUNS);
    rm_rf(dir);
    free(dir);
}

/* ---- atomic writes ----------------------------------------------------- */

Test(atomic, path_under_regular_file)
{
    char *dir = pltest_tmpdir();
    char *file = join(dir, "file");
    spit(file, "I am a file\n");
    char *target = join(file, "results.csv");
    pl_error err;
    cr_assert_eq(pl_write_atomic(target, "a,b\n", 4, &err), PL_EIO);
    cr_assert(strstr(err.msg, target), "%s", err.msg);
    cr_assert(strstr(err.msg, "Not a directory"), "%s", err.msg);
    cr_assert_eq(count_named(dir, "tmp"), 0);

    pl_run_result runs[N_RUNS];
    make_runs(runs);
    cr_assert_eq(pl_record_write(file, &runs[0], &err), PL_EIO);
    cr_assert(strstr(err.msg, file), "%s", err.msg);
    char *rep = join(file, "report");
    cr_assert_eq(pl_report_write(rep, runs, N_RUNS, 0, &err), PL_EIO);
    cr_assert(strstr(err.msg, rep) && strstr(err.msg, "("), "want path: cause (hint): %s", err.msg);
    /* nothing appeared: the folder still holds just the file, unchanged */
    cr_assert_eq(count_named(dir, ""), 3); /* ".", "..", "file" */
    char *text = slurp(file, NULL);
    cr_assert_str_eq(text, "I am a file\n");
    free(text);
    free(rep);
    free_runs(runs, N_RUNS);
    free(target);
    free(file);
    rm_rf(dir);
    free(dir);
}

Test(atomic, dev_full)
{
    FILE *f = fopen("/dev/full", "wb");
    if (!f)
        cr_skip_test("no /dev/full");
    static char data[1 << 16];
    memset(data, 'x', sizeof data);
    pl_error err;
    cr_assert_eq(pl_write_stream(f, "/dev/full", data, 10, &err), PL_EIO);
    cr_assert(strstr(err.msg, "/dev/full: No space left on device (the disk is full"), "%s",
              err.msg);
    clearerr(f);
    cr_assert_eq(pl_write_stream(f, "/dev/full", data, sizeof data, &err), PL_EIO);
    fclose(f);
}

Test(atomic, disk_full_keeps_old_file)
{
    /* a file size limit fails the write part way, like a full disk */
    char *dir = pltest_tmpdir();
    char *target = join(dir, "results.csv");
    pl_error err;
    cr_assert_eq(pl_write_atomic(target, "old\n", 4, &err), PL_OK, "%s", err.msg);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    size_t big = 1 << 20;
    char *data = malloc(big);
    cr_assert(data);
    memset(data, 'y', big);
    pl_status st = pl_write_atomic(target, data, big, &err);
    lim.rlim_cur = RLIM_INFINITY;
    setrlimit(RLIMIT_FSIZE, &lim);
    cr_assert_eq(st, PL_EIO);
    cr_assert(strstr(err.msg, target), "%s", err.msg);
    char *text = slurp(target, NULL);
    cr_assert_str_eq(text, "old\n", "the old file must survive a failed write");
    cr_assert_eq(count_named(dir, ".tmp."), 0, "temporary file left behind");
    free(text);
    free(data);
    free(target);
    rm_rf(dir);
    free(dir);
}

Test(atomic, replaces_and_cleans_up)
{
    char *dir = pltest_tmpdir();
    char *target = join(dir, "x.txt");
    pl_error err;
    cr_assert_eq(pl_write_atomic(target, "one\n", 4, &err), PL_OK, "%s", err.msg);
    /* a stale temporary file of a killed process with our pid does not block us */
    char stale[4200];
    snprintf(stale, sizeof stale, "%s.tmp.%ld", target, (long)getpid());
    spit(stale, "half");
    cr_assert_eq(pl_write_atomic(target, "two\n", 4, &err), PL_OK, "%s", err.msg);
    char *text = slurp(target, NULL);
    cr_assert_str_eq(text, "two\n");
    cr_assert(!exists(stale));
    free(text);
    free(target);
    rm_rf(dir);
    free(dir);
}
