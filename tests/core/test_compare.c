/*
 * `prunelab compare` (pl_compare_files): identical files, accuracy drops
 * beyond and within tolerance, changed counts and status, missing and new
 * rows, header-driven columns (extra and reordered columns, RFC 4180
 * quoting, CRLF), and the errors: bad tolerance strings, missing columns,
 * malformed CSV, unreadable files.
 */
#include "pltest.h"
#include "result.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GOLDEN_CSV "tests/fixtures/report/results.csv.golden"

static const char header[] =
    "run_id,experiment,model,dataset,backend,seed,criterion,schedule,granularity,"
    "target_sparsity,achieved_sparsity,params_before,params_after,nonzero_params_after,"
    "macs_before,macs_after,macs_after_physical,flops_before,flops_after,acc_baseline,"
    "acc_pruned,acc_retrained,acc_final,latency_ms_before,latency_ms_after,train_seconds,"
    "baseline_seconds,status,sweep\n";

typedef struct row {
    const char *run_id;
    const char *acc_final;
    long long params_after;
    const char *status;
    const char *latency_after;
    const char *sparsity;
} row;

static void add_row(char *csv, size_t cap, row r)
{
    size_t n = strlen(csv);
    snprintf(csv + n, cap - n,
             "%s,exp,simple_cnn,mnist,simd,1,l1,oneshot,channel,0.5000,%s,26138,%lld,%lld,"
             "110400,41408,41408,220800,82816,96.52,61.23,%s,%s,12.345,%s,5.123,6.001,%s,"
             "prune.criterion=l1 seed=%s\n",
             r.run_id, r.sparsity ? r.sparsity : "0.5000", r.params_after, r.params_after,
             r.acc_final, r.acc_final, r.latency_after ? r.latency_after : "6.200",
             r.status ? r.status : "ok", r.run_id);
}

static const row base_rows[] = {
    {"aaaa000000000001", "97.00", 13354, NULL, NULL, NULL},
    {"aaaa000000000002", "96.80", 13354, NULL, NULL, NULL},
    {"aaaa000000000003", "96.90", 13354, NULL, NULL, NULL},
};
#define N_BASE (sizeof base_rows / sizeof base_rows[0])

typedef struct env {
    char *dir, base[4200], cur[4200];
} env;

static void write_text(const char *path, const char *text)
{
    pl_error err;
    cr_assert_eq(pl_write_atomic(path, text, strlen(text), &err), PL_OK, "%s", err.msg);
}

static env setup(void)
{
    env e;
    e.dir = pltest_tmpdir();
    snprintf(e.base, sizeof e.base, "%s/baseline.csv", e.dir);
    snprintf(e.cur, sizeof e.cur, "%s/current.csv", e.dir);
    char csv[8192] = "";
    strcat(csv, header);
    for (size_t i = 0; i < N_BASE; i++)
        add_row(csv, sizeof csv, base_rows[i]);
    write_text(e.base, csv);
    return e;
}

/* current = the baseline rows with row `which` replaced by `r` (which < 0: none) */
static void write_current(const env *e, int which, row r)
{
    char csv[8192] = "";
    strcat(csv, header);
    for (size_t i = 0; i < N_BASE; i++)
        add_row(csv, sizeof csv, (int)i == which ? r : base_rows[i]);
    write_text(e->cur, csv);
}

static void teardown(env *e)
{
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    cr_assert_eq(system(cmd), 0);
    free(e->dir);
}

/* runs compare; returns the status, output in *out (caller frees) */
static pl_status compare(const char *a, const char *b, const char *tol, int *regressed, char **out,
                         pl_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert(f);
    *regressed = -1;
    pl_status st = pl_compare_files(a, b, tol, f, regressed, err);
    fclose(f);
    *out = buf;
    return st;
}

Test(compare, identical_golden)
{
    int reg;
    char *out;
    pl_error err;
    cr_assert_eq(compare(GOLDEN_CSV, GOLDEN_CSV, NULL, &reg, &out, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 0);
    cr_assert_str_eq(out, "No differences beyond tolerance (7 rows compared).\n");
    free(out);
}

Test(compare, accuracy_drop_beyond_tolerance)
{
    env e = setup();
    write_current(&e, 1, (row){"aaaa000000000002", "96.10", 13354, NULL, NULL, NULL});
    int reg;
    char *out;
    pl_error err;
    cr_assert_eq(compare(e.base, e.cur, NULL, &reg, &out, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 1);
    cr_assert(strstr(out, "| aaaa000000000002 | prune.criterion=l1 seed=aaaa000000000002 | "
                          "acc_final | 96.80 | 96.10 | -0.70 | REGRESSION |"),
              "%s", out);
    /* acc_retrained moved as well (same value in the fixture rows) */
    cr_assert(strstr(out, "| acc_retrained | 96.80 | 96.10 | -0.70 | REGRESSION |"), "%s", out);
    cr_assert(strstr(out, "**2 regressions** (3 rows compared)."), "%s", out);
    cr_assert(!strstr(out, "aaaa000000000001"), "unchanged rows are not listed:\n%s", out);
    free(out);
    teardown(&e);
}

Test(compare, accuracy_within_tolerance)
{
    env e = setup();
    write_current(&e, 0, (row){"aaaa000000000001", "96.50", 13354, NULL, NULL, NULL});
    int reg;
    char *out;
    pl_error err;
    /* exactly 0.50 below: within the default 0.5 despite binary rounding */
    cr_assert_eq(compare(e.base, e.cur, NULL, &reg, &out, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 0, "%s", out);
    cr_assert(strstr(out, "| -0.50 | changed within tolerance |"), "%s", out);
    cr_assert(strstr(out, "No differences beyond tolerance (3 rows compared)."), "%s", out);
    free(out);
    /* a tighter key for acc_final only */
    cr_assert_eq(compare(e.base, e.cur, "acc_final=0.3", &reg, &out, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 1, "%s", out);
    cr_assert(strstr(out, "| acc_final | 97.00 | 96.50 | -0.50 | REGRESSION |"), "%s", out);
    cr_assert(strstr(out, "| acc_retrained | 97.00 | 96.50 | -0.50 | changed within tolerance |"),
              "%s", out);
    cr_assert(strstr(out, "acc_final 0.3"), "tolerances are stated:\n%s", out);
    free(out);
    /* the specific key wins over the group key, whatever the order */
    cr_assert_eq(compare(e.base, e.cur, "acc_final=1, acc=0.1,acc_retrained=0.6", &reg, &out, &err),
                 PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 0, "%s", out);
    free(out);
    teardown(&e);
}

Test(compare, improvement_is_not_regression)
{
    env e = setup();
    write_current(&e, 2, (row){"aaaa000000000003", "98.00", 13354, NULL, NULL, NULL});
    int reg;
    char *out;
    pl_error err;
    cr_assert_eq(compare(e.base, e.cur, "", &reg, &out, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 0);
    cr_assert(strstr(out, "| +1.10 | improved |"), "%s", out);
    cr_assert(strstr(out, "No regressions (3 rows compared; 2 improved)."), "%s", out);
    free(out);
    teardown(&e);
}

Test(compare, changed_counts_regress_either_way)
{
    env e = setup();
    int reg;
    char *out;
    pl_error err;
    const long long counts[] = {13355, 13353};
    for (int k = 0; k < 2; k++) {
        write_current(&e, 0, (row){"aaaa000000000001", "97.00", counts[k], NULL, NULL, NULL});
        cr_assert_eq(compare(e.base, e.cur, NULL, &reg, &out, &err), PL_OK, "%s", err.msg);
        cr_assert_eq(reg, 1, "%s", out);
        cr_assert(strstr(out, k ? "| params_after | 13354 | 13353 | -1 | REGRESSION |"
                                 : "| params_after | 13354 | 13355 | +1 | REGRESSION |"),
                  "%s", out);
        free(out);
    }
    cr_assert_eq(compare(e.base, e.cur, "params=1", &reg, &out, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 0, "%s", out);
    cr_assert(strstr(out, "| -1 | changed within tolerance |"), "%s", out);
    free(out);
    teardown(&e);
}

Test(compare, sparsity_and_status)
{
    env e = setup();
    int reg;
    char *out;
    pl_error err;
    write_current(&e, 0, (row){"aaaa000000000001", "97.00", 13354, NULL, NULL, "0.5001"});
    cr_assert_eq(compare(e.base, e.cur, NULL, &reg, &out, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 1, "%s", out);
    cr_assert(strstr(out, "| achieved_sparsity | 0.5000 | 0.5001 | +0.0001 | REGRESSION |"), "%s",
              out);
    free(out);
    cr_assert_eq(compare(e.base, e.cur, "sparsity=0.0001", &reg, &out, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 0, "%s", out);
    free(out);

    write_current(&e, 0, (row){"aaaa000000000001", "", 13354, "diverged", NULL, NULL});
    cr_assert_eq(compare(e.base, e.cur, NULL, &reg, &out, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 1, "%s", out);
    cr_assert(strstr(out, "| status | ok | diverged | \xe2\x80\x94 | REGRESSION |"), "%s", out);
    cr_assert(strstr(out, "| acc_final | 97.00 | \xe2\x80\x94 | \xe2\x80\x94 | REGRESSION |"), "%s",
              out);
    free(out);
    /* the other way round: a failed run that now works is an improvement */
    cr_assert_eq(compare(e.cur, e.base, NULL, &reg, &out, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 0, "%s", out);
    cr_assert(strstr(out, "| status | diverged | ok | \xe2\x80\x94 | improved |"), "%s", out);
    free(out);
    teardown(&e);
}

Test(compare, timing_is_ignored)
{
    env e = setup();
    write_current(&e, 0, (row){"aaaa000000000001", "97.00", 13354, NULL, "99.999", NULL});
    int reg;
    char *out;
    pl_error err;
    cr_assert_eq(compare(e.base, e.cur, NULL, &reg, &out, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 0);
    cr_assert_str_eq(out, "No differences beyond tolerance (3 rows compared).\n");
    free(out);
    teardown(&e);
}

Test(compare, missing_and_new_rows)
{
    env e = setup();
    int reg;
    char *out;
    pl_error err;
    /* row 2 replaced by a run the baseline does not have */
    write_current(&e, 1, (row){"bbbb000000000009", "96.80", 13354, NULL, NULL, NULL});
    cr_assert_eq(compare(e.base, e.cur, NULL, &reg, &out, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 1, "%s", out);
    cr_assert(strstr(out, "| aaaa000000000002 | prune.criterion=l1 seed=aaaa000000000002 | "
                          "missing in current | REGRESSION |"),
              "%s", out);
    cr_assert(strstr(out, "| bbbb000000000009 | prune.criterion=l1 seed=bbbb000000000009 | "
                          "new in current | new |"),
              "%s", out);
    cr_assert(strstr(out, "**1 regression** (2 rows compared, 1 missing in current)."), "%s", out);
    free(out);

    /* only a new row: not a regression */
    char csv[8192] = "";
    strcat(csv, header);
    for (size_t i = 0; i < N_BASE; i++)
        add_row(csv, sizeof csv, base_rows[i]);
    add_row(csv, sizeof csv, (row){"cccc000000000001", "90.00", 1, NULL, NULL, NULL});
    write_text(e.cur, csv);
    cr_assert_eq(compare(e.base, e.cur, NULL, &reg, &out, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 0, "%s", out);
    cr_assert(strstr(out, "| cccc000000000001 |"), "%s", out);
    cr_assert(strstr(out, "No regressions (3 rows compared; 1 new in current)."), "%s", out);
    free(out);
    teardown(&e);
}

Test(compare, columns_by_name)
{
    /* reordered and extra columns, RFC 4180 quoting (comma, quote, newline), CRLF */
    env e = setup();
    const char *csv =
        "note,status,acc_final,acc_retrained,acc_pruned,acc_baseline,macs_after_physical,"
        "macs_after,macs_before,nonzero_params_after,params_after,params_before,"
        "achieved_sparsity,run_id,sweep\r\n"
        "\"a, \"\"quoted\"\"\r\nnote\",ok,97.00,97.00,61.23,96.52,41408,41408,110400,13354,13354,"
        "26138,0.5000,aaaa000000000001,\"prune.criterion=l1 seed=aaaa000000000001\"\r\n"
        "x,ok,96.80,96.80,61.23,96.52,41408,41408,110400,13354,13354,26138,0.5000,"
        "aaaa000000000002,s\r\n"
        "\r\n"
        "y,ok,96.90,96.90,61.23,96.52,41408,41408,110400,13354,13354,26138,0.5000,"
        "aaaa000000000003,";
    write_text(e.cur, csv);
    int reg;
    char *out;
    pl_error err;
    cr_assert_eq(compare(e.base, e.cur, NULL, &reg, &out, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(reg, 0, "%s", out);
    cr_assert_str_eq(out, "No differences beyond tolerance (3 rows compared).\n");
    free(out);
    teardown(&e);
}

Test(compare, bad_tolerance)
{
    const char *bad[][2] = {
        {"acc", "not key=value"},
        {"acc=", "not a non-negative number"},
        {"acc=x", "not a non-negative number"},
        {"acc=-1", "not a non-negative number"},
        {"acc=nan", "not a non-negative number"},
        {"acc=0.5,,params=0", "empty item"},
        {"acc=0.5,", "empty item"},
        {"latency=1", "unknown key \"latency\" (valid keys: acc, params, macs, sparsity, "
                      "achieved_sparsity, params_before"},
        {"status=1", "unknown key \"status\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int reg;
        char *out;
        pl_error err;
        cr_assert_eq(compare(GOLDEN_CSV, GOLDEN_CSV, bad[i][0], &reg, &out, &err), PL_ECONFIG,
                     "\"%s\" accepted", bad[i][0]);
        cr_assert(strstr(err.msg, bad[i][1]), "\"%s\": want \"%s\" in: %s", bad[i][0], bad[i][1],
                  err.msg);
        cr_assert_str_eq(out, "", "nothing printed on error");
        free(out);
    }
}

Test(compare, missing_column)
{
    env e = setup();
    /* drop acc_final from the header and from every row */
    write_text(e.cur, "run_id,acc_baseline,status\naaaa000000000001,96.52,ok\n");
    int reg;
    char *out;
    pl_error err;
    cr_assert_eq(compare(e.base, e.cur, NULL, &reg, &out, &err), PL_EFORMAT);
    cr_assert(strstr(err.msg, e.cur), "%s", err.msg);
    cr_assert(strstr(err.msg, "missing column \"achieved_sparsity\""), "%s", err.msg);
    free(out);

    char csv[8192] = "";
    strcat(csv, header);
    add_row(csv, sizeof csv, base_rows[0]);
    char *col = strstr(csv, "acc_final,");
    memcpy(col, "acc_fi_al", 9);
    write_text(e.cur, csv);
    cr_assert_eq(compare(e.base, e.cur, NULL, &reg, &out, &err), PL_EFORMAT);
    cr_assert(strstr(err.msg, "missing column \"acc_final\""), "%s", err.msg);
    free(out);
    teardown(&e);
}

Test(compare, malformed_csv)
{
    env e = setup();
    const char *bad[][2] = {
        {"", "empty file"},
        {"run_id,status\n\"abc,ok\n", ":2: unterminated quoted field"},
        {"run_id,status\n\"abc\"x,ok\n", ":2: unexpected character after a closing quote"},
        {"run_id,status\nab\"c,ok\n", ":2: quote inside an unquoted field"},
        {"run_id,status\na,ok\nb,ok,extra\n", ":3: 3 fields, but the header has 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(e.cur, bad[i][0]);
        int reg;
        char *out;
        pl_error err;
        cr_assert_eq(compare(e.base, e.cur, NULL, &reg, &out, &err), PL_EFORMAT, "case %zu", i);
        cr_assert(strstr(err.msg, e.cur) && strstr(err.msg, bad[i][1]), "case %zu: %s", i,
                  err.msg);
        free(out);
    }
    /* repeated run_id */
    char csv[8192] = "";
    strcat(csv, header);
    add_row(csv, sizeof csv, base_rows[0]);
    add_row(csv, sizeof csv, base_rows[0]);
    write_text(e.cur, csv);
    int reg;
    char *out;
    pl_error err;
    cr_assert_eq(compare(e.base, e.cur, NULL, &reg, &out, &err), PL_EFORMAT);
    cr_assert(strstr(err.msg, ":3: run_id aaaa000000000001 repeats line 2"), "%s", err.msg);
    free(out);
    /* a non-number where a count belongs */
    write_current(&e, 0, (row){"aaaa000000000001", "97.00", 13354, NULL, NULL, "half"});
    cr_assert_eq(compare(e.base, e.cur, NULL, &reg, &out, &err), PL_EFORMAT);
    cr_assert(strstr(err.msg, ":2: column achieved_sparsity: \"half\" is not a number"), "%s",
              err.msg);
    free(out);
    teardown(&e);
}

Test(compare, unreadable_file)
{
    int reg;
    char *out;
    pl_error err;
    cr_assert_eq(compare("/nonexistent/baseline.csv", GOLDEN_CSV, NULL, &reg, &out, &err), PL_EIO);
    cr_assert(strstr(err.msg, "/nonexistent/baseline.csv: No such file or directory"), "%s",
              err.msg);
    free(out);
}
