/*
 * The cifar dataset plugin on files in the real CIFAR-10/100 binary format
 * that the tests write: labels, the channel order (R, G, B planes, each
 * row-major), per-channel normalisation, several files per split, `limit`,
 * and every refusal (truncated or oversized files, a label out of range,
 * the wrong variant, missing files, bad parameters) as one-line messages.
 */
#include "pltest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIX 3072

static char *g_dir;
static void fixture_setup(void) { g_dir = pltest_tmpdir(); }
static void fixture_teardown(void) { free(g_dir); }

/* The pixel byte of example i (numbered across the split), channel c, y, x:
 * distinct per channel so a swapped plane order is caught. */
static uint8_t pixel(int i, int c, int y, int x) { return (uint8_t)(i * 7 + c * 85 + y * 3 + x * 5); }
static int label10(int i) { return (i * 3) % 10; }
static int fine100(int i) { return (i * 37) % 100; }
static int coarse100(int i) { return fine100(i) / 5; }

/* Writes `count` records for examples first..first+count-1; extra bytes
 * appended (or removed, if negative) to make a bad length. */
static void write_file(const char *name, int cifar100, int first, int count, long extra)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "wb");
    cr_assert(f);
    size_t rec = PIX + (cifar100 ? 2 : 1);
    unsigned char *b = malloc(rec);
    for (int i = first; i < first + count; i++) {
        size_t o = 0;
        if (cifar100) {
            b[o++] = (unsigned char)coarse100(i);
            b[o++] = (unsigned char)fine100(i);
        } else {
            b[o++] = (unsigned char)label10(i);
        }
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    b[o++] = pixel(i, c, y, x);
        cr_assert_eq(fwrite(b, 1, rec, f), rec);
    }
    free(b);
    for (long k = 0; k < extra; k++)
        fputc(0, f);
    cr_assert_eq(fclose(f), 0);
    if (extra < 0)
        cr_assert_eq(truncate(p, (off_t)(count * (long)rec + extra)), 0);
}

typedef struct ds {
    pl_instance *in;
    const pl_dataset_ops *ops;
    void *st;
} ds;

static ds ds_new(const char *a, const char *b, const char *c)
{
    static char pathkv[4200];
    snprintf(pathkv, sizeof pathkv, "path=%s", g_dir);
    const char *kv[5] = {pathkv, a, b, c, NULL};
    ds d;
    d.in = pltest_instance(PL_KIND_DATASET, "cifar", kv, 1, 1);
    d.ops = pl_instance_ops(d.in);
    d.st = pl_instance_state(d.in);
    return d;
}

static const char *open_expect(ds *d, pl_split split, pl_status want, void **h, pl_dataset_info *info)
{
    pl_dataset_info tmp;
    void *th = NULL;
    pl_status st = d->ops->open(d->st, split, h ? h : &th, info ? info : &tmp);
    const char *msg = pl_instance_take_error(d->in);
    cr_assert_eq(st, want, "open returned %d, expected %d: %s", st, want, msg);
    if (st == PL_OK && !h)
        d->ops->close(d->st, th);
    if (st != PL_OK) {
        cr_assert(msg[0], "an error must come with a message");
        cr_assert(!strchr(msg, '\n'), "message must be one line: %s", msg);
    }
    return msg;
}

static void check_example(const float *img, int i, const double mean[3], const double std[3])
{
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                double want = ((double)pixel(i, c, y, x) / 255.0 - mean[c]) / std[c];
                float got = img[c * 1024 + y * 32 + x];
                cr_assert_float_eq(got, want, 1e-5, "example %d c%d y%d x%d: %g vs %g", i, c, y, x, got, want);
            }
}

TestSuite(cifar, .init = fixture_setup, .fini = fixture_teardown);

Test(cifar, cifar10_files_concatenate_in_order_with_labels_and_planes)
{
    write_file("a.bin", 0, 0, 3, 0);
    write_file("b.bin", 0, 3, 4, 0);
    write_file("t.bin", 0, 100, 2, 0);
    ds d = ds_new("train_files=a.bin, b.bin", "test_files=t.bin", NULL);
    void *h;
    pl_dataset_info info;
    open_expect(&d, PL_SPLIT_TRAIN, PL_OK, &h, &info);
    cr_assert_eq(info.count, 7);
    cr_assert_eq(info.channels, 3);
    cr_assert_eq(info.height, 32);
    cr_assert_eq(info.width, 32);
    cr_assert_eq(info.classes, 10);
    cr_assert(!strncmp(info.checksum, "fnv64w:", 7), "%s", info.checksum);
    cr_assert(info.flags & PL_DATASET_CONCURRENT_READ);
    int64_t idx[] = {6, 0, 3, 2};
    float *img = malloc(sizeof(float) * 4 * PIX);
    int32_t lab[4];
    cr_assert_eq(d.ops->read(d.st, h, idx, 4, img, lab), PL_OK);
    const double mean[3] = {0.4914, 0.4822, 0.4465}, std[3] = {0.2470, 0.2435, 0.2616};
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(lab[k], label10((int)idx[k]));
        check_example(img + k * PIX, (int)idx[k], mean, std);
    }
    int64_t bad = 7;
    cr_assert_eq(d.ops->read(d.st, h, &bad, 1, img, lab), PL_ERANGE);
    cr_assert(strstr(pl_instance_take_error(d.in), "out of range"));
    d.ops->close(d.st, h);
    open_expect(&d, PL_SPLIT_TEST, PL_OK, &h, &info);
    cr_assert_eq(info.count, 2);
    cr_assert_eq(d.ops->read(d.st, h, (int64_t[]){1}, 1, img, lab), PL_OK);
    cr_assert_eq(lab[0], label10(101));
    check_example(img, 101, mean, std);
    d.ops->close(d.st, h);
    free(img);
    pl_instance_free(d.in);
}

Test(cifar, official_cifar10_names_are_the_default)
{
    char name[32];
    for (int k = 1; k <= 5; k++) {
        snprintf(name, sizeof name, "data_batch_%d.bin", k);
        write_file(name, 0, (k - 1) * 2, 2, 0);
    }
    write_file("test_batch.bin", 0, 50, 3, 0);
    ds d = ds_new(NULL, NULL, NULL);
    pl_dataset_info info;
    void *h;
    open_expect(&d, PL_SPLIT_TRAIN, PL_OK, &h, &info);
    cr_assert_eq(info.count, 10);
    float img[PIX];
    int32_t lab;
    cr_assert_eq(d.ops->read(d.st, h, (int64_t[]){9}, 1, img, &lab), PL_OK);
    cr_assert_eq(lab, label10(9)); /* the last record of data_batch_5 */
    d.ops->close(d.st, h);
    open_expect(&d, PL_SPLIT_TEST, PL_OK, NULL, &info);
    cr_assert_eq(info.count, 3);
    pl_instance_free(d.in);
}

Test(cifar, cifar100_fine_and_coarse_labels)
{
    write_file("train.bin", 1, 0, 30, 0);
    write_file("test.bin", 1, 30, 5, 0);
    ds fine = ds_new("variant=cifar100", NULL, NULL);
    ds coarse = ds_new("variant=cifar100", "label=coarse", NULL);
    pl_dataset_info fi, ci;
    void *hf, *hc;
    open_expect(&fine, PL_SPLIT_TRAIN, PL_OK, &hf, &fi);
    open_expect(&coarse, PL_SPLIT_TRAIN, PL_OK, &hc, &ci);
    cr_assert_eq(fi.classes, 100);
    cr_assert_eq(ci.classes, 20);
    cr_assert_eq(fi.count, 30);
    cr_assert_str_eq(fi.checksum, ci.checksum); /* same bytes */
    float *img = malloc(sizeof(float) * PIX);
    const double mean[3] = {0.4914, 0.4822, 0.4465}, std[3] = {0.2470, 0.2435, 0.2616};
    for (int64_t i = 0; i < 30; i++) {
        int32_t lf, lc;
        cr_assert_eq(fine.ops->read(fine.st, hf, &i, 1, img, &lf), PL_OK);
        check_example(img, (int)i, mean, std);
        cr_assert_eq(coarse.ops->read(coarse.st, hc, &i, 1, img, &lc), PL_OK);
        cr_assert_eq(lf, fine100((int)i));
        cr_assert_eq(lc, coarse100((int)i));
    }
    free(img);
    fine.ops->close(fine.st, hf);
    coarse.ops->close(coarse.st, hc);
    pl_instance_free(fine.in);
    pl_instance_free(coarse.in);
}

Test(cifar, normalisation_one_or_three_values_and_limit)
{
    write_file("a.bin", 0, 0, 5, 0);
    ds d = ds_new("train_files=a.bin", "normalize.mean=0.5", "limit=2");
    pl_dataset_info info;
    void *h;
    open_expect(&d, PL_SPLIT_TRAIN, PL_OK, &h, &info);
    cr_assert_eq(info.count, 2);
    float img[PIX];
    int32_t lab;
    cr_assert_eq(d.ops->read(d.st, h, (int64_t[]){1}, 1, img, &lab), PL_OK);
    const double mean[3] = {0.5, 0.5, 0.5}, std[3] = {0.2470, 0.2435, 0.2616};
    check_example(img, 1, mean, std);
    d.ops->close(d.st, h);
    pl_instance_free(d.in);

    ds e = ds_new("train_files=a.bin", "normalize.mean=0,0.25,1", "normalize.std=1,2,0.5");
    open_expect(&e, PL_SPLIT_TRAIN, PL_OK, &h, &info);
    cr_assert_eq(e.ops->read(e.st, h, (int64_t[]){4}, 1, img, &lab), PL_OK);
    const double m3[3] = {0, 0.25, 1}, s3[3] = {1, 2, 0.5};
    check_example(img, 4, m3, s3);
    e.ops->close(e.st, h);
    pl_instance_free(e.in);
}

Test(cifar, the_same_bytes_give_the_same_checksum_and_others_not)
{
    write_file("a.bin", 0, 0, 3, 0);
    write_file("b.bin", 0, 0, 3, 0);
    write_file("c.bin", 0, 1, 3, 0);
    ds a = ds_new("train_files=a.bin", NULL, NULL), b = ds_new("train_files=b.bin", NULL, NULL),
       c = ds_new("train_files=c.bin", NULL, NULL);
    pl_dataset_info ia, ib, ic;
    open_expect(&a, PL_SPLIT_TRAIN, PL_OK, NULL, &ia);
    open_expect(&b, PL_SPLIT_TRAIN, PL_OK, NULL, &ib);
    open_expect(&c, PL_SPLIT_TRAIN, PL_OK, NULL, &ic);
    cr_assert_str_eq(ia.checksum, ib.checksum);
    cr_assert_str_neq(ia.checksum, ic.checksum);
    pl_instance_free(a.in);
    pl_instance_free(b.in);
    pl_instance_free(c.in);
}

/* ---- refusals ---------------------------------------------------------------- */

static void expect_open_error(const char *a, const char *b, pl_status want, const char *n1, const char *n2)
{
    ds d = ds_new(a, b, NULL);
    const char *msg = open_expect(&d, PL_SPLIT_TRAIN, want, NULL, NULL);
    cr_assert(strstr(msg, n1), "message lacks '%s': %s", n1, msg);
    if (n2)
        cr_assert(strstr(msg, n2), "message lacks '%s': %s", n2, msg);
    pl_instance_free(d.in);
}

Test(cifar, truncated_file_is_refused)
{
    write_file("a.bin", 0, 0, 3, -100);
    expect_open_error("train_files=a.bin", NULL, PL_EFORMAT, "a.bin", "not a positive multiple of the 3073-byte");
}

Test(cifar, oversized_file_is_refused)
{
    write_file("a.bin", 0, 0, 3, 1);
    expect_open_error("train_files=a.bin", NULL, PL_EFORMAT, "a.bin", "3073-byte CIFAR-10 record");
}

Test(cifar, empty_file_is_refused)
{
    write_file("a.bin", 0, 0, 0, 0);
    expect_open_error("train_files=a.bin", NULL, PL_EFORMAT, "length 0", NULL);
}

Test(cifar, cifar100_file_read_as_cifar10_is_refused)
{
    /* 3074-byte records: 3073 does not divide 3 * 3074 */
    write_file("a.bin", 1, 0, 3, 0);
    expect_open_error("train_files=a.bin", NULL, PL_EFORMAT, "wrong variant", NULL);
}

Test(cifar, label_out_of_range_is_refused)
{
    /* CIFAR-100 fine labels (up to 99) read as CIFAR-100 coarse are fine,
     * but a CIFAR-10 record with label 10 is not */
    char p[4200];
    write_file("a.bin", 0, 0, 3, 0);
    snprintf(p, sizeof p, "%s/a.bin", g_dir);
    FILE *f = fopen(p, "r+b");
    cr_assert(f);
    cr_assert_eq(fseek(f, 3073, SEEK_SET), 0);
    fputc(10, f);
    cr_assert_eq(fclose(f), 0);
    expect_open_error("train_files=a.bin", NULL, PL_EFORMAT, "record 1 has label 10", "10 classes");
}

Test(cifar, missing_file_and_directory_name_the_path)
{
    write_file("a.bin", 0, 0, 1, 0);
    expect_open_error("train_files=a.bin,nope.bin", NULL, PL_EIO, "nope.bin", "No such file");
    ds d;
    const char *kv[] = {"path=/nonexistent/cifar", NULL};
    d.in = pltest_instance(PL_KIND_DATASET, "cifar", kv, 1, 1);
    d.ops = pl_instance_ops(d.in);
    d.st = pl_instance_state(d.in);
    const char *msg = open_expect(&d, PL_SPLIT_TRAIN, PL_EIO, NULL, NULL);
    cr_assert(strstr(msg, "/nonexistent/cifar: no such directory"), "%s", msg);
    pl_instance_free(d.in);
}

Test(cifar, a_directory_or_a_fifo_is_not_a_file)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/dir.bin", g_dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    expect_open_error("train_files=dir.bin", NULL, PL_EIO, "not a regular file", NULL);
    snprintf(p, sizeof p, "%s/fifo.bin", g_dir);
    cr_assert_eq(mkfifo(p, 0600), 0);
    expect_open_error("train_files=fifo.bin", NULL, PL_EIO, "not a regular file", NULL); /* no hang */
}

Test(cifar, slash_in_a_file_name_is_refused)
{
    expect_open_error("train_files=../x.bin", NULL, PL_EINVAL, "contain no '/'", NULL);
}

Test(cifar, bad_parameters_are_refused_at_init)
{
    const pl_plugin *p;
    pl_error err;
    cr_assert_eq(pl_registry_find(pltest_registry(), PL_KIND_DATASET, "cifar", &p, &err), PL_OK, "%s", err.msg);
    static const char *const cases[][3] = {
        {"variant=cifar11", NULL, "variant 'cifar11'"},
        {"variant=cifar100", "label=medium", "label 'medium'"},
        {"label=medium", NULL, "label 'medium'"},
        {"normalize.mean=0.1,0.2", NULL, "normalize.mean"},
        {"normalize.mean=0.1,0.2,0.3,0.4", NULL, "normalize.mean"},
        {"normalize.mean=abc", NULL, "normalize.mean"},
        {"normalize.std=0", NULL, "std must be"},
        {"normalize.std=1,-1,1", NULL, "channel 1"},
        {"normalize.std=nan", NULL, "std must be"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *kv[] = {cases[k][0], cases[k][1], NULL};
        pl_instance *in = NULL;
        pl_status st = pl_instance_new_kv(p, kv, 1, 1, &in, &err);
        cr_assert_neq(st, PL_OK, "init accepted case %zu", k);
        cr_assert(strstr(err.msg, cases[k][2]), "case %zu: message lacks '%s': %s", k, cases[k][2], err.msg);
        cr_assert(!strchr(err.msg, '\n'));
        cr_assert_null(in);
    }
}
