/*
 * test_history.c — the pieces of a run's history: kept-unit ranges, the
 * baseline rows carried in a checkpoint's meta text (NaN included), and
 * history.csv's layout.
 */
#include "history.h"
#include "pltest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

Test(history, ranges)
{
    int a[] = {0, 1, 2, 3, 5, 7, 8, 9};
    char *s = pl__ranges(a, 8);
    cr_assert_str_eq(s, "0-3,5,7-9");
    free(s);
    int b[] = {4};
    s = pl__ranges(b, 1);
    cr_assert_str_eq(s, "4");
    free(s);
    s = pl__ranges(NULL, 0);
    cr_assert_str_eq(s, "");
    free(s);
    int c[] = {0, 2, 4, 5};
    s = pl__ranges(c, 4);
    cr_assert_str_eq(s, "0,2,4-5");
    free(s);
}

Test(history, meta_round_trip)
{
    pl_run_result r;
    memset(&r, 0, sizeof r);
    pl_error err;
    pl_history_row h1 = {"train", 0, 1, 0, 0.29947589056514401, 91.09, 0.1121, 96.59};
    pl_history_row h2 = {"train", 0, 2, 0, 1.0 / 3.0, NAN, 0.05, 97.5};
    cr_assert_eq(pl__history_add(&r, &h1, &err), PL_OK);
    cr_assert_eq(pl__history_add(&r, &h2, &err), PL_OK);
    pl__buf meta = {0};
    pl__buf_puts(&meta, "key=abc\nbaseline_seconds=1.5\n");
    pl__history_meta_encode(&meta, &r);
    pl__buf_puts(&meta, "history=garbage line\n");
    cr_assert(!meta.failed);

    pl_run_result back;
    memset(&back, 0, sizeof back);
    cr_assert_eq(pl__history_meta_decode(meta.data, &back, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(back.n_history, 2, "malformed lines are skipped");
    for (size_t k = 0; k < 2; k++) {
        const pl_history_row *x = &r.history[k], *y = &back.history[k];
        cr_assert_str_eq(x->phase, y->phase);
        cr_assert(x->step == y->step && x->epoch == y->epoch);
        cr_assert(x->loss == y->loss, "loss %.17g read back as %.17g", x->loss, y->loss);
        cr_assert(isnan(x->train_acc) ? isnan(y->train_acc) : x->train_acc == y->train_acc);
        cr_assert(x->test_acc == y->test_acc);
    }
    cr_assert_eq(pl__history_meta_decode(NULL, &back, &err), PL_OK);
    pl__buf_free(&meta);
    pl_run_result_free(&r);
    pl_run_result_free(&back);
}

Test(history, csv_layout)
{
    pl_run_result r;
    memset(&r, 0, sizeof r);
    snprintf(r.run_id, sizeof r.run_id, "abc");
    pl_error err;
    pl_history_row p = {"prune", 2, 0, 0.5, NAN, NAN, 0.75, 81.25};
    cr_assert_eq(pl__history_add(&r, &p, &err), PL_OK);
    const pl_run_result *runs[1] = {&r};
    pl__buf b = {0};
    pl__history_csv(&b, runs, 1);
    cr_assert_str_eq(b.data, "run_id,phase,step,epoch,sparsity,loss,train_acc,test_loss,test_acc\n"
                             "abc,prune,2,0,0.5000,,,0.7500,81.2500\n");
    pl__buf_free(&b);
    pl_run_result_free(&r);
}
