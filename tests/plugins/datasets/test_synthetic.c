/*
 * The synthetic dataset plugin: determinism by index (order and batching
 * never matter), seeds, shapes, label balance, value scale, and that the
 * default problem is learnable (a linear softmax classifier trained for one
 * epoch clears 90 % test accuracy).
 */
#include "pltest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ds {
    pl_instance *in;
    const pl_dataset_ops *ops;
    void *st;
    void *h;
    pl_dataset_info info;
} ds;

static ds ds_open(const char *const *kv, uint64_t seed, pl_split split)
{
    ds d;
    d.in = pltest_instance(PL_KIND_DATASET, "synthetic", kv, seed, 1);
    d.ops = pl_instance_ops(d.in);
    d.st = pl_instance_state(d.in);
    cr_assert_eq(d.ops->open(d.st, split, &d.h, &d.info), PL_OK, "%s", pl_instance_take_error(d.in));
    return d;
}

static void ds_free(ds *d)
{
    d->ops->close(d->st, d->h);
    pl_instance_free(d->in);
}

static size_t image_size(const ds *d) { return (size_t)d->info.channels * d->info.height * d->info.width; }

/* Reads `n` examples starting at `first` in batches of `batch`. */
static void read_range(ds *d, int64_t first, int n, int batch, float *img, int32_t *lab)
{
    int64_t *idx = malloc((size_t)batch * sizeof *idx);
    size_t sz = image_size(d);
    for (int k = 0; k < n; k += batch) {
        int m = n - k < batch ? n - k : batch;
        for (int j = 0; j < m; j++)
            idx[j] = first + k + j;
        cr_assert_eq(d->ops->read(d->st, d->h, idx, m, img + (size_t)k * sz, lab + k), PL_OK);
    }
    free(idx);
}

Test(synthetic, defaults)
{
    ds d = ds_open(NULL, 1, PL_SPLIT_TRAIN);
    cr_assert_eq(d.info.count, 6000);
    cr_assert(d.info.channels == 1 && d.info.height == 28 && d.info.width == 28);
    cr_assert_eq(d.info.classes, 10);
    cr_assert_eq(strncmp(d.info.checksum, "synthetic:", 10), 0, "%s", d.info.checksum);
    cr_assert_eq(strlen(d.info.checksum), 26, "%s", d.info.checksum);
    ds t = ds_open(NULL, 1, PL_SPLIT_TEST);
    cr_assert_eq(t.info.count, 1000);
    cr_assert_str_eq(t.info.checksum, d.info.checksum);
    ds_free(&t);
    ds_free(&d);
}

Test(synthetic, order_and_batching_do_not_matter)
{
    enum { M = 100 };
    ds d = ds_open(NULL, 3, PL_SPLIT_TRAIN);
    size_t sz = image_size(&d);
    float *a = malloc(M * sz * sizeof *a), *b = malloc(M * sz * sizeof *b), *one = malloc(sz * sizeof *one);
    int32_t la[M], lb[M], l1;
    read_range(&d, 50, M, M, a, la);
    read_range(&d, 50, M, 7, b, lb);
    cr_assert_eq(memcmp(a, b, M * sz * sizeof *a), 0);
    cr_assert_eq(memcmp(la, lb, sizeof la), 0);
    /* one by one, in reverse, with repeats */
    for (int k = M - 1; k >= 0; k--) {
        int64_t i = 50 + k;
        for (int rep = 0; rep < 2; rep++) {
            cr_assert_eq(d.ops->read(d.st, d.h, &i, 1, one, &l1), PL_OK);
            cr_assert_eq(memcmp(one, a + (size_t)k * sz, sz * sizeof *one), 0, "example %d", k);
            cr_assert_eq(l1, la[k]);
        }
    }
    /* a second instance with the same seed gives the same bits */
    ds e = ds_open(NULL, 3, PL_SPLIT_TRAIN);
    read_range(&e, 50, M, 13, b, lb);
    cr_assert_eq(memcmp(a, b, M * sz * sizeof *a), 0);
    cr_assert_eq(memcmp(la, lb, sizeof la), 0);
    cr_assert_str_eq(d.info.checksum, e.info.checksum);
    ds_free(&e);
    free(a), free(b), free(one);
    ds_free(&d);
}

Test(synthetic, seeds_and_splits_differ)
{
    enum { M = 20 };
    const char *s1[] = {"seed=1", NULL}, *s2[] = {"seed=2", NULL}, *s0[] = {"seed=0", NULL};
    ds a = ds_open(s1, 99, PL_SPLIT_TRAIN), b = ds_open(s2, 99, PL_SPLIT_TRAIN);
    ds c = ds_open(s0, 1, PL_SPLIT_TRAIN); /* seed 0 = the run's seed, 1 */
    ds t = ds_open(s1, 99, PL_SPLIT_TEST);
    size_t sz = image_size(&a);
    float *x = malloc(M * sz * sizeof *x), *y = malloc(M * sz * sizeof *y);
    int32_t lx[M], ly[M];
    read_range(&a, 0, M, M, x, lx);
    read_range(&b, 0, M, M, y, ly);
    cr_assert_neq(memcmp(x, y, M * sz * sizeof *x), 0);
    cr_assert_str_neq(a.info.checksum, b.info.checksum);
    read_range(&c, 0, M, M, y, ly);
    cr_assert_eq(memcmp(x, y, M * sz * sizeof *x), 0, "seed=0 must take the run's seed");
    cr_assert_eq(memcmp(lx, ly, sizeof lx), 0);
    cr_assert_str_eq(a.info.checksum, c.info.checksum);
    read_range(&t, 0, M, M, y, ly);
    cr_assert_neq(memcmp(x, y, M * sz * sizeof *x), 0, "train and test must differ");
    free(x), free(y);
    ds_free(&a), ds_free(&b), ds_free(&c), ds_free(&t);
}

Test(synthetic, shape_and_classes_are_honoured)
{
    const char *kv[] = {"channels=3", "height=5", "width=7", "classes=4", "train_count=50", "test_count=9", NULL};
    ds d = ds_open(kv, 1, PL_SPLIT_TRAIN);
    cr_assert_eq(d.info.count, 50);
    cr_assert(d.info.channels == 3 && d.info.height == 5 && d.info.width == 7);
    cr_assert_eq(d.info.classes, 4);
    size_t sz = image_size(&d);
    cr_assert_eq(sz, 105);
    enum { M = 50 };
    float *img = malloc((M * sz + 4) * sizeof *img);
    int32_t lab[M + 1];
    for (size_t i = 0; i < M * sz + 4; i++)
        img[i] = 12345.0f;
    lab[M] = -7;
    read_range(&d, 0, M, M, img, lab);
    for (size_t i = 0; i < M * sz; i++)
        cr_assert(isfinite(img[i]) && img[i] != 12345.0f);
    for (size_t i = M * sz; i < M * sz + 4; i++)
        cr_assert_eq(img[i], 12345.0f, "read wrote past the batch");
    cr_assert_eq(lab[M], -7);
    for (int i = 0; i < M; i++)
        cr_assert(lab[i] >= 0 && lab[i] < 4);
    int64_t bad = 50;
    cr_assert_eq(d.ops->read(d.st, d.h, &bad, 1, img, lab), PL_ERANGE);
    cr_assert(strstr(pl_instance_take_error(d.in), "out of range"));
    free(img);
    ds_free(&d);
    const char *kv1[] = {"height=1", "width=1", "classes=2", NULL};
    d = ds_open(kv1, 1, PL_SPLIT_TEST);
    float v[2];
    int32_t l[2];
    read_range(&d, 0, 2, 2, v, l);
    ds_free(&d);
}

Test(synthetic, labels_balanced_and_values_unit_scale)
{
    ds d = ds_open(NULL, 5, PL_SPLIT_TRAIN);
    int n = (int)d.info.count;
    size_t sz = image_size(&d);
    float *img = malloc((size_t)n * sz * sizeof *img);
    int32_t *lab = malloc((size_t)n * sizeof *lab);
    read_range(&d, 0, n, 64, img, lab);
    int counts[10] = {0};
    for (int i = 0; i < n; i++) {
        cr_assert(lab[i] >= 0 && lab[i] < 10);
        counts[lab[i]]++;
    }
    for (int c = 0; c < 10; c++)
        cr_assert(counts[c] > 500 && counts[c] < 700, "class %d has %d of %d examples", c, counts[c], n);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < (size_t)n * sz; i++)
        s += img[i], s2 += (double)img[i] * img[i];
    double mean = s / ((double)n * sz), sd = sqrt(s2 / ((double)n * sz) - mean * mean);
    cr_assert(fabs(mean) < 0.2, "mean %g", mean);
    cr_assert(sd > 0.7 && sd < 1.6, "std %g", sd);
    free(img), free(lab);
    ds_free(&d);
}

/* One epoch of minibatch SGD on a linear softmax classifier. */
Test(synthetic, default_problem_is_learnable_in_one_epoch)
{
    ds tr = ds_open(NULL, 1, PL_SPLIT_TRAIN), te = ds_open(NULL, 1, PL_SPLIT_TEST);
    enum { B = 64, K = 10 };
    size_t sz = image_size(&tr);
    float *x = malloc(B * sz * sizeof *x), *w = calloc(K * sz, sizeof *w), b[K] = {0};
    int32_t y[B];
    const float lr = 0.01f;
    int64_t n = tr.info.count;
    /* a fixed shuffle */
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    uint64_t r = 12345;
    for (int64_t i = n - 1; i > 0; i--) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        int64_t j = (int64_t)((r >> 33) % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    for (int64_t k = 0; k < n; k += B) {
        int m = n - k < B ? (int)(n - k) : B;
        cr_assert_eq(tr.ops->read(tr.st, tr.h, perm + k, m, x, y), PL_OK);
        for (int i = 0; i < m; i++) {
            double z[K], mx = -1e300, sum = 0;
            for (int c = 0; c < K; c++) {
                z[c] = b[c];
                for (size_t p = 0; p < sz; p++)
                    z[c] += w[c * sz + p] * x[i * sz + p];
                mx = z[c] > mx ? z[c] : mx;
            }
            for (int c = 0; c < K; c++)
                sum += z[c] = exp(z[c] - mx);
            for (int c = 0; c < K; c++) {
                float g = (float)(z[c] / sum - (c == y[i])) * lr / (float)m;
                b[c] -= g;
                for (size_t p = 0; p < sz; p++)
                    w[c * sz + p] -= g * x[i * sz + p];
            }
        }
    }
    int64_t correct = 0;
    for (int64_t k = 0; k < te.info.count; k += B) {
        int m = te.info.count - k < B ? (int)(te.info.count - k) : B;
        int64_t idx[B];
        for (int i = 0; i < m; i++)
            idx[i] = k + i;
        cr_assert_eq(te.ops->read(te.st, te.h, idx, m, x, y), PL_OK);
        for (int i = 0; i < m; i++) {
            int best = 0;
            double bz = -1e300;
            for (int c = 0; c < K; c++) {
                double z = b[c];
                for (size_t p = 0; p < sz; p++)
                    z += w[c * sz + p] * x[i * sz + p];
                if (z > bz)
                    bz = z, best = c;
            }
            correct += best == y[i];
        }
    }
    double acc = 100.0 * (double)correct / (double)te.info.count;
    cr_log_info("synthetic: linear softmax, one epoch: %.2f %% test accuracy", acc);
    cr_assert(acc > 90.0, "test accuracy %.2f %%", acc);
    free(x), free(w), free(perm);
    ds_free(&tr), ds_free(&te);
}

Test(synthetic, oversized_shapes_are_refused_at_init)
{
    const pl_plugin *p;
    pl_error err;
    pl_instance *in = NULL;
    cr_assert_eq(pl_registry_find(pltest_registry(), PL_KIND_DATASET, "synthetic", &p, &err), PL_OK, "%s",
                 err.msg);
    const char *kv[] = {"classes=100000", "height=4096", "width=4096", NULL};
    cr_assert_neq(pl_instance_new_kv(p, kv, 1, 1, &in, &err), PL_OK);
    cr_assert_null(in);
    cr_assert(strstr(err.msg, "too large"), "%s", err.msg);
}
