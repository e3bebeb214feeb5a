/*
 * The idx dataset plugin: values and labels from raw and .gz fixtures that
 * the tests write themselves, every validation error (status and the key
 * part of its one-line message), and the real MNIST files when
 * data/mnist/ exists.
 */
#include "pltest.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define IMG "train-images-idx3-ubyte"
#define LBL "train-labels-idx1-ubyte"
#define TIMG "t10k-images-idx3-ubyte"
#define TLBL "t10k-labels-idx1-ubyte"

/* ---- fixture writing ------------------------------------------------------ */

static char *g_dir;

static void fixture_setup(void) { g_dir = pltest_tmpdir(); }

static void fixture_teardown(void)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    pltest_run(cmd, NULL);
    free(g_dir);
}

static char *path_in(const char *name)
{
    static char p[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", g_dir, name);
    return p[k];
}

static size_t put_header(unsigned char *b, uint32_t magic, const uint32_t *dims, int ndims)
{
    size_t n = 0;
    uint32_t words[4] = {magic, ndims > 0 ? dims[0] : 0, ndims > 1 ? dims[1] : 0, ndims > 2 ? dims[2] : 0};
    for (int i = 0; i <= ndims; i++)
        for (int s = 24; s >= 0; s -= 8)
            b[n++] = (unsigned char)(words[i] >> s);
    return n;
}

/* Writes header + the first `len` payload bytes to dir/name (or name.gz). */
static void write_idx(const char *name, uint32_t magic, const uint32_t *dims, int ndims,
                      const unsigned char *payload, size_t len, int gz)
{
    unsigned char h[16];
    size_t hn = put_header(h, magic, dims, ndims);
    char p[4200];
    snprintf(p, sizeof p, "%s/%s%s", g_dir, name, gz ? ".gz" : "");
    if (gz) {
        gzFile f = gzopen(p, "wb");
        cr_assert(f);
        cr_assert_eq(gzwrite(f, h, (unsigned)hn), (int)hn);
        if (len)
            cr_assert_eq(gzwrite(f, payload, (unsigned)len), (int)len);
        cr_assert_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(p, "wb");
        cr_assert(f);
        cr_assert_eq(fwrite(h, 1, hn, f), hn);
        if (len)
            cr_assert_eq(fwrite(payload, 1, len, f), len);
        cr_assert_eq(fclose(f), 0);
    }
}

static void write_bytes(const char *name, const void *data, size_t len)
{
    FILE *f = fopen(path_in(name), "wb");
    cr_assert(f);
    if (len)
        cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* The fixture: N images of H x W with pixel (i, p) = (i*37 + p*11) % 256
 * (covers 0 and 255), labels i % 3. */
enum { N = 5, H = 3, W = 4, NTEST = 2 };

static unsigned char pixel(int i, int p) { return (unsigned char)((i * 37 + p * 11 + (i == 1 && p == 0 ? 255 - 37 : 0)) % 256); }

static void fixture_pixels(unsigned char *px, int n)
{
    for (int i = 0; i < n; i++)
        for (int p = 0; p < H * W; p++)
            px[i * H * W + p] = pixel(i, p);
}

static void write_split(const char *img, const char *lbl, int n, int gz)
{
    unsigned char px[N * H * W], lb[N];
    fixture_pixels(px, n);
    for (int i = 0; i < n; i++)
        lb[i] = (unsigned char)(i % 3);
    write_idx(img, 0x803, (uint32_t[]){(uint32_t)n, H, W}, 3, px, (size_t)n * H * W, gz);
    write_idx(lbl, 0x801, (uint32_t[]){(uint32_t)n}, 1, lb, (size_t)n, gz);
}

static void write_fixture(int gz)
{
    write_split(IMG, LBL, N, gz);
    write_split(TIMG, TLBL, NTEST, gz);
}

/* ---- plugin access -------------------------------------------------------- */

typedef struct ds {
    pl_instance *in;
    const pl_dataset_ops *ops;
    void *st;
} ds;

/* Instance with path=g_dir (unless given) and up to 4 more "k=v". */
static ds ds_new(const char *a, const char *b, const char *c)
{
    static char pathkv[4200];
    snprintf(pathkv, sizeof pathkv, "path=%s", g_dir);
    const char *kv[6] = {0};
    int n = 0;
    if (!(a && !strncmp(a, "path=", 5)))
        kv[n++] = pathkv;
    if (a)
        kv[n++] = a;
    if (b)
        kv[n++] = b;
    if (c)
        kv[n++] = c;
    ds d;
    d.in = pltest_instance(PL_KIND_DATASET, "idx", kv, 1, 1);
    d.ops = pl_instance_ops(d.in);
    d.st = pl_instance_state(d.in);
    return d;
}

/* Opens a split expecting `want`; on error returns the message (static). */
static const char *ds_open_expect(ds *d, pl_split split, pl_status want, void **h, pl_dataset_info *info)
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
        cr_log_info("%s", msg);
    }
    return msg;
}

/* Opens train expecting error `want` whose message contains every needle. */
static void expect_error(ds *d, pl_status want, const char *n1, const char *n2)
{
    const char *msg = ds_open_expect(d, PL_SPLIT_TRAIN, want, NULL, NULL);
    cr_assert(strstr(msg, n1), "message lacks '%s': %s", n1, msg);
    if (n2)
        cr_assert(strstr(msg, n2), "message lacks '%s': %s", n2, msg);
}

static void sha256_of(const char *path, char out[72])
{
    char cmd[4200], *o;
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    cr_assert_eq(pltest_run(cmd, &o), 0);
    snprintf(out, 72, "sha256:%.64s", o);
    free(o);
}

/* A split's checksum: SHA-256 of "<sha256 of images> <sha256 of labels>"
 * (the hex digests of the files as stored). */
static void split_sum(const char *img_hex, const char *lbl_hex, char out[72])
{
    char cmd[512], *o;
    snprintf(cmd, sizeof cmd, "printf '%%s %%s' '%.64s' '%.64s' | sha256sum", img_hex, lbl_hex);
    cr_assert_eq(pltest_run(cmd, &o), 0);
    snprintf(out, 72, "sha256:%.64s", o);
    free(o);
}

static void split_sum_of(const char *img, const char *lbl, char out[72])
{
    char a[72], b[72];
    sha256_of(img, a);
    sha256_of(lbl, b);
    split_sum(a + 7, b + 7, out);
}

static void check_values(ds *d, void *h, double mean, double std)
{
    int64_t idx[] = {4, 0, 2, 1, 4};
    float img[5 * H * W];
    int32_t lab[5];
    cr_assert_eq(d->ops->read(d->st, h, idx, 5, img, lab), PL_OK);
    for (int k = 0; k < 5; k++) {
        cr_assert_eq(lab[k], idx[k] % 3);
        for (int p = 0; p < H * W; p++) {
            double want = ((double)pixel((int)idx[k], p) / 255.0 - mean) / std;
            cr_assert_float_eq(img[k * H * W + p], want, 1e-5, "example %lld pixel %d: %g vs %g",
                               (long long)idx[k], p, img[k * H * W + p], want);
        }
    }
}

TestSuite(idx, .init = fixture_setup, .fini = fixture_teardown);

/* ---- valid data ------------------------------------------------------------- */

Test(idx, raw_values_labels_and_checksum)
{
    write_fixture(0);
    ds d = ds_new(NULL, NULL, NULL);
    void *h;
    pl_dataset_info info;
    ds_open_expect(&d, PL_SPLIT_TRAIN, PL_OK, &h, &info);
    cr_assert_eq(info.count, N);
    cr_assert_eq(info.channels, 1);
    cr_assert_eq(info.height, H);
    cr_assert_eq(info.width, W);
    cr_assert_eq(info.classes, 10);
    char want[72];
    char *lbl = strdup(path_in(LBL));
    split_sum_of(path_in(IMG), lbl, want);
    free(lbl);
    cr_assert_str_eq(info.checksum, want);
    check_values(&d, h, 0.1307, 0.3081);
    /* the extremes of the byte range */
    int64_t one = 1;
    float img[H * W];
    int32_t lab;
    cr_assert_eq(d.ops->read(d.st, h, &one, 1, img, &lab), PL_OK);
    cr_assert_float_eq(img[0], (1.0 - 0.1307) / 0.3081, 1e-5);
    d.ops->close(d.st, h);
    pl_instance_free(d.in);
}

Test(idx, normalisation_parameters_are_honoured)
{
    write_fixture(0);
    ds d = ds_new("normalize.mean=0.5", "normalize.std=0.25", "classes=3");
    void *h;
    pl_dataset_info info;
    ds_open_expect(&d, PL_SPLIT_TRAIN, PL_OK, &h, &info);
    cr_assert_eq(info.classes, 3);
    check_values(&d, h, 0.5, 0.25);
    d.ops->close(d.st, h);
    pl_instance_free(d.in);
}

Test(idx, gz_values_labels_and_checksum_of_stored_file)
{
    write_fixture(1);
    ds d = ds_new(NULL, NULL, NULL);
    void *h;
    pl_dataset_info info;
    ds_open_expect(&d, PL_SPLIT_TRAIN, PL_OK, &h, &info);
    cr_assert_eq(info.count, N);
    char want[72];
    char *lbl = strdup(path_in(LBL ".gz"));
    split_sum_of(path_in(IMG ".gz"), lbl, want);
    free(lbl);
    cr_assert_str_eq(info.checksum, want);
    check_values(&d, h, 0.1307, 0.3081);
    d.ops->close(d.st, h);
    pl_instance_free(d.in);
}

Test(idx, raw_file_is_preferred_over_gz)
{
    write_fixture(0);
    /* a broken .gz beside the raw file is never looked at */
    write_bytes(IMG ".gz", "junk", 4);
    ds d = ds_new(NULL, NULL, NULL);
    ds_open_expect(&d, PL_SPLIT_TRAIN, PL_OK, NULL, NULL);
    pl_instance_free(d.in);
}

Test(idx, multi_member_gz_is_one_stream)
{
    write_fixture(0);
    /* gzip of header, then a second gzip member with the pixels */
    unsigned char px[N * H * W], h[16];
    fixture_pixels(px, N);
    size_t hn = put_header(h, 0x803, (uint32_t[]){N, H, W}, 3);
    char p[4200];
    snprintf(p, sizeof p, "%s.gz", path_in(IMG));
    gzFile f = gzopen(p, "wb");
    gzwrite(f, h, (unsigned)hn);
    gzclose(f);
    f = gzopen(p, "ab");
    gzwrite(f, px, sizeof px);
    gzclose(f);
    unlink(path_in(IMG));
    ds d = ds_new(NULL, NULL, NULL);
    void *hd;
    ds_open_expect(&d, PL_SPLIT_TRAIN, PL_OK, &hd, NULL);
    check_values(&d, hd, 0.1307, 0.3081);
    d.ops->close(d.st, hd);
    pl_instance_free(d.in);
}

Test(idx, both_splits_open_at_once)
{
    write_fixture(0);
    ds d = ds_new(NULL, NULL, NULL);
    void *tr, *te;
    pl_dataset_info itr, ite;
    ds_open_expect(&d, PL_SPLIT_TRAIN, PL_OK, &tr, &itr);
    ds_open_expect(&d, PL_SPLIT_TEST, PL_OK, &te, &ite);
    cr_assert_eq(itr.count, N);
    cr_assert_eq(ite.count, NTEST);
    check_values(&d, tr, 0.1307, 0.3081);
    int64_t idx[] = {1, 0};
    float img[2 * H * W];
    int32_t lab[2];
    cr_assert_eq(d.ops->read(d.st, te, idx, 2, img, lab), PL_OK);
    cr_assert_eq(lab[0], 1);
    cr_assert_eq(lab[1], 0);
    d.ops->close(d.st, tr);
    d.ops->close(d.st, te);
    pl_instance_free(d.in);
}

Test(idx, limit_keeps_the_first_examples)
{
    write_fixture(1);
    ds d = ds_new("limit=2", NULL, NULL);
    void *h;
    pl_dataset_info info;
    ds_open_expect(&d, PL_SPLIT_TRAIN, PL_OK, &h, &info);
    cr_assert_eq(info.count, 2);
    int64_t i = 1;
    float img[H * W];
    int32_t lab;
    cr_assert_eq(d.ops->read(d.st, h, &i, 1, img, &lab), PL_OK);
    cr_assert_eq(lab, 1);
    cr_assert_float_eq(img[1], ((double)pixel(1, 1) / 255.0 - 0.1307) / 0.3081, 1e-5);
    i = 2;
    cr_assert_eq(d.ops->read(d.st, h, &i, 1, img, &lab), PL_ERANGE);
    cr_assert(strstr(pl_instance_take_error(d.in), "out of range"));
    d.ops->close(d.st, h);
    pl_instance_free(d.in);
}

Test(idx, read_rejects_bad_indices)
{
    write_fixture(0);
    ds d = ds_new(NULL, NULL, NULL);
    void *h;
    ds_open_expect(&d, PL_SPLIT_TRAIN, PL_OK, &h, NULL);
    float img[H * W];
    int32_t lab;
    int64_t bad[] = {-1, N};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(d.ops->read(d.st, h, &bad[k], 1, img, &lab), PL_ERANGE);
        cr_assert(strstr(pl_instance_take_error(d.in), "out of range"));
    }
    d.ops->close(d.st, h);
    pl_instance_free(d.in);
}

typedef struct reader_arg {
    ds *d;
    void *h;
    int n;
    float *out;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    for (int rep = 0; rep < 200; rep++)
        for (int64_t i = 0; i < a->n; i++) {
            int32_t lab;
            if (a->d->ops->read(a->d->st, a->h, &i, 1, a->out + i * H * W, &lab) != PL_OK)
                return (void *)1;
        }
    return NULL;
}

Test(idx, concurrent_reads_on_two_handles)
{
    write_fixture(0);
    ds d = ds_new(NULL, NULL, NULL);
    void *tr, *te;
    ds_open_expect(&d, PL_SPLIT_TRAIN, PL_OK, &tr, NULL);
    ds_open_expect(&d, PL_SPLIT_TEST, PL_OK, &te, NULL);
    float out1[N * H * W], out2[NTEST * H * W];
    reader_arg a1 = {&d, tr, N, out1}, a2 = {&d, te, NTEST, out2};
    pthread_t t1, t2;
    void *r1, *r2;
    pthread_create(&t1, NULL, reader, &a1);
    pthread_create(&t2, NULL, reader, &a2);
    pthread_join(t1, &r1);
    pthread_join(t2, &r2);
    cr_assert_null(r1);
    cr_assert_null(r2);
    for (int i = 0; i < N * H * W; i++)
        cr_assert_float_eq(out1[i], ((double)pixel(i / (H * W), i % (H * W)) / 255.0 - 0.1307) / 0.3081, 1e-5);
    d.ops->close(d.st, tr);
    d.ops->close(d.st, te);
    pl_instance_free(d.in);
}

/* ---- errors ------------------------------------------------------------------ */

Test(idx, truncated_raw_file)
{
    write_fixture(0);
    unsigned char px[N * H * W];
    fixture_pixels(px, N);
    write_idx(IMG, 0x803, (uint32_t[]){N, H, W}, 3, px, 50, 0);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, IMG ": file is 66 bytes but its header says 5x3x4 (76 bytes)", "truncated");
    expect_error(&d, PL_EFORMAT, "fetch-mnist.sh", NULL);
    pl_instance_free(d.in);
}

Test(idx, too_long_raw_file)
{
    write_fixture(0);
    unsigned char px[N * H * W + 3] = {0};
    write_idx(IMG, 0x803, (uint32_t[]){N, H, W}, 3, px, sizeof px, 0);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, "file is 79 bytes but its header says 5x3x4 (76 bytes)", "too long");
    pl_instance_free(d.in);
}

Test(idx, header_dims_do_not_match_length)
{
    write_fixture(0);
    unsigned char px[N * H * W];
    fixture_pixels(px, N);
    write_idx(IMG, 0x803, (uint32_t[]){N, H, W + 1}, 3, px, sizeof px, 0);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, "file is 76 bytes but its header says 5x3x5 (91 bytes)", NULL);
    pl_instance_free(d.in);
}

Test(idx, truncated_gz_file)
{
    write_fixture(1);
    char *p = path_in(IMG ".gz");
    cr_assert_eq(truncate(p, file_size(p) - 12), 0);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, IMG ".gz: gzip data ends early", "truncated");
    pl_instance_free(d.in);
}

Test(idx, gz_header_only_is_truncated)
{
    write_fixture(1);
    /* a complete gzip stream whose content stops after the header */
    write_idx(IMG, 0x803, (uint32_t[]){N, H, W}, 3, NULL, 0, 1);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, IMG ".gz: decompressed data is 16 bytes but its header says 5x3x4 (76 bytes)",
                 "truncated");
    pl_instance_free(d.in);
}

Test(idx, gz_with_extra_data_is_too_long)
{
    write_fixture(1);
    unsigned char px[N * H * W + 1] = {0};
    write_idx(IMG, 0x803, (uint32_t[]){N, H, W}, 3, px, sizeof px, 1);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, "decompressed data is 77 bytes but its header says 5x3x4 (76 bytes)", "too long");
    pl_instance_free(d.in);
}

Test(idx, corrupt_gz_data)
{
    write_fixture(1);
    char *p = path_in(IMG ".gz");
    long n = file_size(p);
    FILE *f = fopen(p, "r+b");
    cr_assert(f);
    fseek(f, 10, SEEK_SET); /* inside the deflate data, past the gzip header */
    for (long i = 10; i < n - 8; i++)
        fputc(0xff, f);
    fclose(f);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, IMG ".gz: gzip data is corrupt", NULL);
    pl_instance_free(d.in);
}

Test(idx, gz_bytes_named_without_gz)
{
    write_fixture(1);
    char cmd[8500];
    snprintf(cmd, sizeof cmd, "mv '%s.gz' '%s'", path_in(IMG), path_in(IMG));
    cr_assert_eq(pltest_run(cmd, NULL), 0);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, "not an IDX file (magic 0x1f8b08", "add .gz to its name");
    pl_instance_free(d.in);
}

Test(idx, wrong_magic)
{
    write_fixture(0);
    unsigned char px[N * H * W] = {0};
    write_idx(IMG, 0x12345678u, (uint32_t[]){N, H, W}, 3, px, sizeof px, 0);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, IMG ": not an IDX file (magic 0x12345678, expected 0x00000803)", NULL);
    pl_instance_free(d.in);
}

Test(idx, unsupported_element_type)
{
    write_fixture(0);
    float px[N * H * W] = {0};
    write_idx(IMG, 0x00000D03u, (uint32_t[]){N, H, W}, 3, (const unsigned char *)px, sizeof px, 0);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, "IDX element type 0x0d (float32) is not supported", NULL);
    pl_instance_free(d.in);
}

Test(idx, labels_file_given_as_images)
{
    write_fixture(0);
    ds d = ds_new("train_images=" LBL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, LBL ": IDX header is 1-D (magic 0x00000801)", "must be 3-D (magic 0x00000803)");
    pl_instance_free(d.in);
}

Test(idx, image_and_label_counts_disagree)
{
    write_fixture(0);
    unsigned char lb[N - 1] = {0};
    write_idx(LBL, 0x801, (uint32_t[]){N - 1}, 1, lb, sizeof lb, 0);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, IMG " has 5 images but", LBL " has 4 labels");
    pl_instance_free(d.in);
}

Test(idx, label_out_of_range)
{
    write_fixture(0);
    unsigned char lb[N] = {0, 1, 2, 7, 1};
    write_idx(LBL, 0x801, (uint32_t[]){N}, 1, lb, sizeof lb, 0);
    ds d = ds_new("classes=3", NULL, NULL);
    expect_error(&d, PL_EFORMAT, LBL ": label 7 at index 3 is out of range for classes=3", NULL);
    pl_instance_free(d.in);
    /* the same file is fine with enough classes */
    d = ds_new("classes=8", NULL, NULL);
    ds_open_expect(&d, PL_SPLIT_TRAIN, PL_OK, NULL, NULL);
    pl_instance_free(d.in);
}

Test(idx, label_out_of_range_beyond_limit_is_still_an_error)
{
    write_fixture(1);
    unsigned char lb[N] = {0, 1, 2, 1, 200};
    write_idx(LBL, 0x801, (uint32_t[]){N}, 1, lb, sizeof lb, 1);
    ds d = ds_new("limit=2", NULL, NULL);
    expect_error(&d, PL_EFORMAT, "label 200 at index 4 is out of range for classes=10", NULL);
    pl_instance_free(d.in);
}

Test(idx, empty_file)
{
    write_fixture(0);
    write_bytes(IMG, "", 0);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, IMG ": file is empty", NULL);
    pl_instance_free(d.in);
}

Test(idx, empty_gz_file)
{
    write_fixture(0);
    unlink(path_in(IMG));
    write_bytes(IMG ".gz", "", 0);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, IMG ".gz: file is empty", NULL);
    pl_instance_free(d.in);
}

Test(idx, short_header)
{
    write_fixture(0);
    write_bytes(IMG, "\0\0\x08\x03\0\0\0\x05", 8);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, "file is 8 bytes, too short for an IDX header (16 bytes)", NULL);
    pl_instance_free(d.in);
}

Test(idx, zero_dimension)
{
    write_fixture(0);
    write_idx(IMG, 0x803, (uint32_t[]){N, 0, W}, 3, NULL, 0, 0);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, "header says 5x0x4, a zero dimension", NULL);
    pl_instance_free(d.in);
}

Test(idx, missing_directory)
{
    char kv[4200];
    snprintf(kv, sizeof kv, "path=%s/nope", g_dir);
    ds d = ds_new(kv, NULL, NULL);
    const char *msg = ds_open_expect(&d, PL_SPLIT_TRAIN, PL_EIO, NULL, NULL);
    cr_assert(strstr(msg, "/nope: no such directory"), "%s", msg);
    cr_assert(strstr(msg, "scripts/fetch-mnist.sh"), "%s", msg);
    pl_instance_free(d.in);
}

Test(idx, missing_file)
{
    write_fixture(0);
    unlink(path_in(IMG));
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EIO, IMG ": no such file (nor .gz); run `make data` or scripts/fetch-mnist.sh", NULL);
    /* the test split is unaffected */
    ds_open_expect(&d, PL_SPLIT_TEST, PL_OK, NULL, NULL);
    pl_instance_free(d.in);
}

Test(idx, missing_labels_file)
{
    write_fixture(0);
    unlink(path_in(TLBL));
    ds d = ds_new(NULL, NULL, NULL);
    const char *msg = ds_open_expect(&d, PL_SPLIT_TEST, PL_EIO, NULL, NULL);
    cr_assert(strstr(msg, TLBL ": no such file (nor .gz)"), "%s", msg);
    pl_instance_free(d.in);
}

Test(idx, huge_header_count_is_refused_without_allocating)
{
    write_fixture(0);
    /* 2^31 images of 2^15 x 2^15: 2^61 bytes */
    write_idx(IMG, 0x803, (uint32_t[]){1u << 31, 1u << 15, 1u << 15}, 3, (const unsigned char *)"abcd", 4, 0);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, "file is 20 bytes but its header says 2147483648x32768x32768", "truncated");
    pl_instance_free(d.in);
}

Test(idx, huge_header_count_in_gz_is_refused_without_allocating)
{
    write_fixture(0);
    unlink(path_in(IMG));
    write_idx(IMG, 0x803, (uint32_t[]){1u << 31, 1u << 15, 1u << 15}, 3, (const unsigned char *)"abcd", 4, 1);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, "header says 2147483648x32768x32768", "gzip file cannot hold");
    pl_instance_free(d.in);
}

Test(idx, dims_overflowing_size_t)
{
    write_fixture(0);
    write_idx(IMG, 0x803, (uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu}, 3, NULL, 0, 0);
    ds d = ds_new(NULL, NULL, NULL);
    expect_error(&d, PL_EFORMAT, "header says 4294967295x4294967295x4294967295, more bytes than memory can address",
                 NULL);
    pl_instance_free(d.in);
}

Test(idx, nonpositive_std_is_refused_at_init)
{
    const pl_plugin *p;
    pl_error err;
    pl_instance *in = NULL;
    cr_assert_eq(pl_registry_find(pltest_registry(), PL_KIND_DATASET, "idx", &p, &err), PL_OK, "%s", err.msg);
    const char *kv[] = {"normalize.std=0", NULL};
    cr_assert_neq(pl_instance_new_kv(p, kv, 1, 1, &in, &err), PL_OK);
    cr_assert_null(in);
    cr_assert(strstr(err.msg, "normalize.std"), "%s", err.msg);
    cr_assert(strstr(err.msg, "> 0"), "%s", err.msg);
}

/* ---- the real data ------------------------------------------------------------- */

Test(idx, mnist_when_present)
{
    if (access("data/mnist/" IMG, R_OK) != 0 && access("data/mnist/" IMG ".gz", R_OK) != 0)
        cr_skip_test("data/mnist not present (run scripts/fetch-mnist.sh)");
    pl_instance *in = pltest_instance(PL_KIND_DATASET, "idx", NULL, 1, 1);
    ds d = {in, pl_instance_ops(in), pl_instance_state(in)};
    void *tr, *te;
    pl_dataset_info itr, ite;
    ds_open_expect(&d, PL_SPLIT_TRAIN, PL_OK, &tr, &itr);
    ds_open_expect(&d, PL_SPLIT_TEST, PL_OK, &te, &ite);
    cr_assert_eq(itr.count, 60000);
    cr_assert_eq(ite.count, 10000);
    cr_assert(itr.channels == 1 && itr.height == 28 && itr.width == 28);
    cr_assert(ite.channels == 1 && ite.height == 28 && ite.width == 28);
    cr_assert_eq(itr.classes, 10);
    /* from the published SHA-256 of the four MNIST files */
    char want[72];
    if (access("data/mnist/" IMG, R_OK) == 0) {
        split_sum("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                  "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", want);
        cr_assert_str_eq(itr.checksum, want);
    }
    if (access("data/mnist/" TIMG, R_OK) == 0) {
        split_sum("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                  "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", want);
        cr_assert_str_eq(ite.checksum, want);
    }
    /* first labels of MNIST: train 5 0 4 1, test 7 2 1 0; corner pixel is background */
    int64_t idx[] = {0, 1, 2, 3};
    float *img = malloc(4 * 28 * 28 * sizeof *img);
    int32_t lab[4];
    cr_assert_eq(d.ops->read(d.st, tr, idx, 4, img, lab), PL_OK);
    cr_assert(lab[0] == 5 && lab[1] == 0 && lab[2] == 4 && lab[3] == 1);
    cr_assert_float_eq(img[0], -0.1307 / 0.3081, 1e-5);
    cr_assert_eq(d.ops->read(d.st, te, idx, 4, img, lab), PL_OK);
    cr_assert(lab[0] == 7 && lab[1] == 2 && lab[2] == 1 && lab[3] == 0);
    free(img);
    d.ops->close(d.st, tr);
    d.ops->close(d.st, te);
    pl_instance_free(in);
}

/* A large .gz (the MNIST training set, 47 MB decompressed) exercises the
 * buffer growth path; its values must equal the raw file's. */
Test(idx, mnist_gz_equals_raw_when_present)
{
    if (access("data/mnist/" IMG, R_OK) != 0 || access("data/mnist/" LBL, R_OK) != 0)
        cr_skip_test("data/mnist not present (run scripts/fetch-mnist.sh)");
    char cmd[8800];
    snprintf(cmd, sizeof cmd, "gzip -1 -c data/mnist/" IMG " > '%s.gz' && gzip -1 -c data/mnist/" LBL " > '%s.gz'",
             path_in(IMG), path_in(LBL));
    cr_assert_eq(pltest_run(cmd, NULL), 0);
    pl_instance *raw_in = pltest_instance(PL_KIND_DATASET, "idx", NULL, 1, 1);
    ds raw = {raw_in, pl_instance_ops(raw_in), pl_instance_state(raw_in)};
    ds gz = ds_new(NULL, NULL, NULL);
    void *hr, *hg;
    pl_dataset_info ir, ig;
    ds_open_expect(&raw, PL_SPLIT_TRAIN, PL_OK, &hr, &ir);
    ds_open_expect(&gz, PL_SPLIT_TRAIN, PL_OK, &hg, &ig);
    cr_assert_eq(ig.count, 60000);
    cr_assert_str_neq(ig.checksum, ir.checksum, "the checksum is of the file as stored");
    int64_t idx[] = {0, 1, 29999, 59999};
    float *a = malloc(4 * 784 * sizeof *a), *b = malloc(4 * 784 * sizeof *b);
    int32_t la[4], lb[4];
    cr_assert_eq(raw.ops->read(raw.st, hr, idx, 4, a, la), PL_OK);
    cr_assert_eq(gz.ops->read(gz.st, hg, idx, 4, b, lb), PL_OK);
    cr_assert_eq(memcmp(a, b, 4 * 784 * sizeof *a), 0);
    cr_assert_eq(memcmp(la, lb, sizeof la), 0);
    free(a), free(b);
    raw.ops->close(raw.st, hr);
    gz.ops->close(gz.st, hg);
    pl_instance_free(raw_in);
    pl_instance_free(gz.in);
}
