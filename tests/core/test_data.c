/*
 * Batch reads (train.c): split over the backend's threads (parallel_for)
 * when the dataset declares concurrent reads, else on the calling thread.
 * Both must give the same bytes, and a bad index the plugin's own error.
 */
#include "pltest.h"
#include "train.h"

#include <stdlib.h>
#include <string.h>

static pl_instance *open_synthetic(pl_data *d)
{
    const char *kv[] = {"height=9", "width=7", "classes=5", "train_count=700", "test_count=10", NULL};
    pl_instance *ds = pltest_instance(PL_KIND_DATASET, "synthetic", kv, 5, 1);
    pl_error err;
    cr_assert_eq(pl_data_open(ds, PL_SPLIT_TRAIN, d, &err), PL_OK, "%s", err.msg);
    cr_assert(d->info.flags & PL_DATASET_CONCURRENT_READ);
    return ds;
}

Test(data, parallel_read_matches_serial)
{
    pl_data d;
    pl_instance *ds = open_synthetic(&d);
    pl_instance *be = pltest_instance(PL_KIND_BACKEND, "simd", NULL, 1, 2);
    const pl_backend_ops *ops = pl_instance_ops(be);
    cr_assert_not_null(ops->parallel_for);
    const int sizes[] = {1, 7, 8, 9, 63, 64, 65, 333, 700};
    int64_t *idx = malloc(sizeof(int64_t) * 700);
    for (int i = 0; i < 700; i++)
        idx[i] = (int64_t)(i * 337 % 700); /* a permutation */
    size_t img = 9 * 7;
    float *xs = malloc(sizeof(float) * 701 * img), *xp = malloc(sizeof(float) * 701 * img);
    int32_t ys[700], yp[700];
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int n = sizes[k];
        pl_error err;
        memset(xp, 0xff, sizeof(float) * 701 * img);
        d.par = NULL, d.par_state = NULL;
        cr_assert_eq(pl_data_read(&d, idx, 0, n, xs, ys, &err), PL_OK, "%s", err.msg);
        d.par = ops, d.par_state = pl_instance_state(be);
        cr_assert_eq(pl_data_read(&d, idx, 0, n, xp, yp, &err), PL_OK, "%s", err.msg);
        cr_assert(!memcmp(xs, xp, sizeof(float) * n * img), "batch of %d: images differ", n);
        cr_assert(!memcmp(ys, yp, sizeof(int32_t) * n), "batch of %d: labels differ", n);
        cr_assert(xp[n * img] != xp[n * img], "batch of %d: wrote past its end", n); /* still the 0xff NaN */
    }
    free(xs), free(xp), free(idx);
    pl_instance_free(be);
    pl_data_close(&d);
    pl_instance_free(ds);
}

Test(data, parallel_read_bad_index_is_the_plugins_error)
{
    pl_data d;
    pl_instance *ds = open_synthetic(&d);
    pl_instance *be = pltest_instance(PL_KIND_BACKEND, "simd", NULL, 1, 2);
    d.par = pl_instance_ops(be), d.par_state = pl_instance_state(be);
    int64_t idx[64];
    for (int i = 0; i < 64; i++)
        idx[i] = i;
    idx[40] = 700;
    float *x = malloc(sizeof(float) * 64 * 63);
    int32_t y[64];
    pl_error err;
    cr_assert_neq(pl_data_read(&d, idx, 0, 64, x, y, &err), PL_OK);
    cr_assert(strstr(err.msg, "index 700 is out of range [0, 700)"), "%s", err.msg);
    free(x);
    pl_instance_free(be);
    pl_data_close(&d);
    pl_instance_free(ds);
}

/* Chunks fail on both threads at once (examples 40..63 of a 64-example
 * batch are "corrupt"): the error is the plugin's message from one serial
 * read, which stops at the first bad example in batch order */
Test(data, parallel_read_failure_reports_the_first_bad_example)
{
    pl_instance *ds = pltest_instance(PL_KIND_DATASET, "read_fails", NULL, 1, 1);
    pl_data d;
    pl_error err;
    cr_assert_eq(pl_data_open(ds, PL_SPLIT_TRAIN, &d, &err), PL_OK, "%s", err.msg);
    pl_instance *be = pltest_instance(PL_KIND_BACKEND, "simd", NULL, 1, 2);
    d.par = pl_instance_ops(be), d.par_state = pl_instance_state(be);
    float x[64 * 4];
    int32_t y[64];
    for (int rep = 0; rep < 20; rep++) {
        cr_assert_eq(pl_data_read(&d, NULL, 0, 64, x, y, &err), PL_EFORMAT);
        cr_assert(strstr(err.msg, "example 40 is corrupt"), "%s", err.msg);
    }
    cr_assert_eq(pl_data_read(&d, NULL, 0, 40, x, y, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(x[4 * 39], 39.0f);
    pl_instance_free(be);
    pl_data_close(&d);
    pl_instance_free(ds);
}
