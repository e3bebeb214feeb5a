/* Checkpoints: exact round trips, and every damaged or crafted file refused
 * with one clear line (format: core/src/checkpoint.h). */
#include "checkpoint.h"
#include "pltest.h"
#include "rng.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR 24

/* ---- helpers ------------------------------------------------------------------- */

/* conv(bias) → bn → relu → maxpool → conv(no bias) → flatten → dropout → linear */
static pl_model *make_model(void)
{
    pl_layer_spec ls[] = {
        {.name = "conv1", .type = PL_LAYER_CONV2D, .out = 4, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
         .ph = 1, .pw = 1, .bias = 1},
        {.name = "bn1", .type = PL_LAYER_BATCHNORM2D, .eps = 1e-5, .momentum = 0.1, .bias = 1},
        {.name = "relu1", .type = PL_LAYER_RELU},
        {.name = "pool1", .type = PL_LAYER_MAXPOOL2D, .kh = 2, .kw = 2, .sh = 2, .sw = 2},
        {.name = "conv2", .type = PL_LAYER_CONV2D, .out = 3, .kh = 3, .kw = 3, .sh = 1, .sw = 1},
        {.name = "flat", .type = PL_LAYER_FLATTEN},
        {.name = "drop", .type = PL_LAYER_DROPOUT, .p = 0.25},
        {.name = "fc", .type = PL_LAYER_LINEAR, .out = 10, .bias = 1},
    };
    pl_model_spec spec = {.file = "test.yaml", .name = "tiny", .in_c = 1, .in_h = 8, .in_w = 8,
                          .classes = 10, .layers = ls, .n_layers = sizeof ls / sizeof ls[0]};
    pl_model *m = NULL;
    pl_error err;
    cr_assert_eq(pl_model_new(&spec, 42, &m, &err), PL_OK, "%s", err.msg);
    /* values an untrained model would not have, including odd bit patterns */
    pl_layer *bn = &m->layers[1];
    for (int c = 0; c < bn->in_c; c++) {
        bn->w[c] = 0.5f + (float)c;
        bn->b[c] = -0.25f * (float)c;
        bn->run_mean[c] = 0.125f * (float)(c + 1);
        bn->run_var[c] = 2.0f + (float)c;
    }
    pl_layer *fc = &m->layers[7];
    fc->w[0] = -0.0f;
    fc->w[1] = INFINITY;
    fc->w[2] = 1e-45f; /* denormal */
    uint32_t nan_bits = 0x7fc01234u;
    memcpy(&fc->w[3], &nan_bits, sizeof nan_bits);
    m->dropout_calls = 7;
    m->layers[0].removed_units = 1;
    return m;
}

static void tensor_eq(const float *a, const float *b, int64_t n, const char *what, const char *l)
{
    if (!a || !b) {
        cr_assert(!a && !b, "%s of %s: present in one model only", what, l);
        return;
    }
    cr_assert(memcmp(a, b, (size_t)n * sizeof(float)) == 0, "%s of %s differs", what, l);
}

/* Bitwise equality of everything a checkpoint carries; `optim` says whether
 * the optimizer state must have come along. */
static void models_eq(const pl_model *a, const pl_model *b, int optim)
{
    cr_assert_str_eq(a->name, b->name);
    cr_assert_eq(a->in_c, b->in_c);
    cr_assert_eq(a->in_h, b->in_h);
    cr_assert_eq(a->in_w, b->in_w);
    cr_assert_eq(a->classes, b->classes);
    cr_assert_eq(a->seed, b->seed);
    cr_assert_eq(a->dropout_calls, b->dropout_calls);
    cr_assert_eq(a->n_layers, b->n_layers);
    cr_assert_eq(b->batch_cap, 0);
    cr_assert_null(b->grad_a);
    for (int i = 0; i < a->n_layers; i++) {
        const pl_layer *x = &a->layers[i], *y = &b->layers[i];
        cr_assert_str_eq(x->name, y->name);
        cr_assert_eq(x->type, y->type);
        int xi[] = {x->kh, x->kw, x->sh, x->sw, x->ph, x->pw, x->has_bias, x->in_c, x->in_h,
                    x->in_w, x->out_c, x->out_h, x->out_w, x->orig_units, x->removed_units};
        int yi[] = {y->kh, y->kw, y->sh, y->sw, y->ph, y->pw, y->has_bias, y->in_c, y->in_h,
                    y->in_w, y->out_c, y->out_h, y->out_w, y->orig_units, y->removed_units};
        cr_assert(memcmp(xi, yi, sizeof xi) == 0, "layer %s: integer fields differ", x->name);
        cr_assert(memcmp(&x->p, &y->p, sizeof x->p) == 0);
        cr_assert(memcmp(&x->eps, &y->eps, sizeof x->eps) == 0);
        cr_assert(memcmp(&x->momentum, &y->momentum, sizeof x->momentum) == 0);
        cr_assert_eq(x->nw, y->nw);
        cr_assert_eq(x->nb, y->nb);
        tensor_eq(x->w, y->w, x->nw, "w", x->name);
        tensor_eq(x->b, y->b, x->nb, "b", x->name);
        tensor_eq(x->mask, y->mask, x->nw, "mask", x->name);
        tensor_eq(x->run_mean, y->run_mean, x->in_c, "run_mean", x->name);
        tensor_eq(x->run_var, y->run_var, x->in_c, "run_var", x->name);
        /* gradients allocated (zero), activations not */
        cr_assert_eq(y->gw != NULL, y->nw > 0, "layer %s: gw", y->name);
        cr_assert_eq(y->gb != NULL, y->nb > 0, "layer %s: gb", y->name);
        for (int64_t k = 0; k < y->nw; k++)
            cr_assert_eq(y->gw[k], 0.0f);
        cr_assert(!y->out && !y->argmax && !y->aux && !y->bn_mean && !y->bn_invstd);
        if (optim) {
            tensor_eq(x->opt_m_w, y->opt_m_w, x->nw, "opt_m_w", x->name);
            tensor_eq(x->opt_v_w, y->opt_v_w, x->nw, "opt_v_w", x->name);
            tensor_eq(x->opt_m_b, y->opt_m_b, x->nb, "opt_m_b", x->name);
            tensor_eq(x->opt_v_b, y->opt_v_b, x->nb, "opt_v_b", x->name);
        } else {
            cr_assert(!y->opt_m_w && !y->opt_v_w && !y->opt_m_b && !y->opt_v_b);
        }
    }
}

static char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    cr_assert(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    cr_assert(b);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void write_all(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static void rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = path_in(dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rmtree(p);
        else
            unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static uint64_t rd64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static void wr32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

/* Recomputes the trailing checksum after a deliberate edit, so only the
 * payload validation stands between the file and the model. */
static void reseal(uint8_t *b, size_t len)
{
    uint64_t plen = len - HDR - 8;
    wr64(b + 16, plen);
    wr64(b + len - 8, pl_fnv1a(14695981039346656037ull, b + HDR, plen));
}

/* Offset of a layer's fields: just after its stored name (u32 len + bytes). */
enum { F_TYPE = 0, F_KH = 4, F_SH = 12, F_PH = 20, F_BIAS = 28, F_P = 32, F_IN_C = 56,
       F_IN_H = 60, F_OUT_C = 68, F_OUT_H = 72, F_NW = 88, F_NB = 96, F_W = 104 };

static size_t layer_off(const uint8_t *b, size_t len, const char *name)
{
    uint8_t pat[68];
    size_t n = strlen(name);
    wr32(pat, (uint32_t)n);
    memcpy(pat + 4, name, n);
    for (size_t i = HDR; i + n + 4 <= len; i++)
        if (!memcmp(b + i, pat, n + 4))
            return i + 4 + n;
    cr_assert_fail("layer %s not found in the file", name);
    return 0;
}

typedef struct fixture {
    char *dir, *path;
    pl_model *m;
} fixture;

static fixture setup(void)
{
    fixture f;
    f.dir = pltest_tmpdir();
    f.path = path_in(f.dir, "x.ckpt");
    f.m = make_model();
    return f;
}

static void teardown(fixture *f)
{
    pl_model_free(f->m);
    rmtree(f->dir);
    free(f->dir);
    free(f->path);
}

/* Loads `path` expecting failure with `code`; the message names the file and
 * contains `needle`; nothing is returned. */
static void load_fails(const char *path, pl_status code, const char *needle)
{
    pl_model *out = NULL;
    char *meta = NULL;
    pl_error err;
    pl_error_clear(&err);
    pl_status s = pl_checkpoint_load(path, &out, &meta, &err);
    cr_assert_eq(s, code, "expected %s, got %s: %s", pl_status_str(code), pl_status_str(s),
                 err.msg);
    cr_assert_eq(err.code, code);
    cr_assert_null(out);
    cr_assert_null(meta);
    cr_assert(strstr(err.msg, path), "message does not name the file: %s", err.msg);
    cr_assert(strstr(err.msg, needle), "message lacks '%s': %s", needle, err.msg);
    cr_assert_null(strchr(err.msg, '\n'));
}

/* Writes an edited copy of the good file and expects the load to fail. */
static void crafted_fails(const char *path, const uint8_t *b, size_t len, const char *needle)
{
    write_all(path, b, len);
    load_fails(path, PL_EFORMAT, needle);
}

/* ---- round trips ------------------------------------------------------------------ */

Test(checkpoint, round_trip_is_bitwise_exact)
{
    fixture f = setup();
    pl_error err;
    const char *meta = "baseline=3f2a9c\nacc=96.59\ncfg: {lr: 0.001}";
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, meta, 0, &err), PL_OK, "%s", err.msg);
    pl_model *m2 = NULL;
    char *meta2 = NULL;
    cr_assert_eq(pl_checkpoint_load(f.path, &m2, &meta2, &err), PL_OK, "%s", err.msg);
    models_eq(f.m, m2, 0);
    cr_assert_str_eq(meta2, meta);
    pl_counts c1, c2;
    pl_model_count(f.m, &c1);
    pl_model_count(m2, &c2);
    cr_assert(memcmp(&c1, &c2, sizeof c1) == 0);
    /* the loaded model is complete: it can reserve activations and be saved again */
    cr_assert_eq(pl_model_reserve(m2, 3, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(pl_checkpoint_save(f.path, m2, meta2, 0, &err), PL_OK, "%s", err.msg);
    pl_model *m3 = NULL;
    cr_assert_eq(pl_checkpoint_load(f.path, &m3, NULL, &err), PL_OK, "%s", err.msg);
    models_eq(f.m, m3, 0);
    cr_assert_eq(count_entries(f.dir), 1, "temporary files left behind");
    free(meta2);
    pl_model_free(m2);
    pl_model_free(m3);
    teardown(&f);
}

Test(checkpoint, header_layout)
{
    fixture f = setup();
    pl_error err;
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "m", PL_CKPT_OPTIM, &err), PL_OK, "%s", err.msg);
    size_t len;
    uint8_t *b = read_all(f.path, &len);
    cr_assert(memcmp(b, "PLCKPT\0\0", 8) == 0);
    cr_assert_eq(b[8], 1);
    cr_assert_eq(b[12], PL_CKPT_OPTIM);
    cr_assert_eq(rd64(b + 16), len - HDR - 8);
    cr_assert_eq(rd64(b + len - 8), pl_fnv1a(14695981039346656037ull, b + HDR, len - HDR - 8));
    cr_assert_eq(rd64(b + HDR), 1); /* meta length, then "m" */
    cr_assert_eq(b[HDR + 8], 'm');
    free(b);
    teardown(&f);
}

Test(checkpoint, no_meta_loads_as_empty_string)
{
    fixture f = setup();
    pl_error err;
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, NULL, 0, &err), PL_OK, "%s", err.msg);
    pl_model *m2 = NULL;
    char *meta = NULL;
    cr_assert_eq(pl_checkpoint_load(f.path, &m2, &meta, &err), PL_OK, "%s", err.msg);
    cr_assert_str_eq(meta, "");
    free(meta);
    pl_model_free(m2);
    teardown(&f);
}

Test(checkpoint, mask_round_trips)
{
    fixture f = setup();
    pl_layer *l = &f.m->layers[4]; /* conv2 */
    l->mask = malloc((size_t)l->nw * sizeof(float));
    cr_assert(l->mask);
    for (int64_t i = 0; i < l->nw; i++) {
        l->mask[i] = i % 3 ? 1.0f : 0.0f;
        if (!l->mask[i])
            l->w[i] = 0.0f;
    }
    pl_error err;
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "masked", 0, &err), PL_OK, "%s", err.msg);
    pl_model *m2 = NULL;
    cr_assert_eq(pl_checkpoint_load(f.path, &m2, NULL, &err), PL_OK, "%s", err.msg);
    models_eq(f.m, m2, 0);
    cr_assert_not_null(m2->layers[4].mask);
    cr_assert_null(m2->layers[0].mask);
    pl_counts c1, c2;
    pl_model_count(f.m, &c1);
    pl_model_count(m2, &c2);
    cr_assert_eq(c1.nonzero_params, c2.nonzero_params);
    cr_assert_lt(c2.nonzero_params, c2.params);
    pl_model_free(m2);
    teardown(&f);
}

Test(checkpoint, optimizer_state_only_with_the_flag)
{
    fixture f = setup();
    pl_error err;
    cr_assert_eq(pl_model_optim_reset(f.m, &err), PL_OK, "%s", err.msg);
    for (int i = 0; i < f.m->n_layers; i++) {
        pl_layer *l = &f.m->layers[i];
        for (int64_t k = 0; k < l->nw; k++) {
            l->opt_m_w[k] = 0.01f * (float)k - (float)i;
            l->opt_v_w[k] = 1e-6f * (float)(k + i);
        }
        for (int64_t k = 0; k < l->nb; k++) {
            l->opt_m_b[k] = -0.5f * (float)k;
            l->opt_v_b[k] = 3.0f + (float)i;
        }
    }
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "", PL_CKPT_OPTIM, &err), PL_OK, "%s", err.msg);
    pl_model *m2 = NULL;
    cr_assert_eq(pl_checkpoint_load(f.path, &m2, NULL, &err), PL_OK, "%s", err.msg);
    models_eq(f.m, m2, 1);
    cr_assert_not_null(m2->layers[0].opt_m_w);
    pl_model_free(m2);

    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "", 0, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(pl_checkpoint_load(f.path, &m2, NULL, &err), PL_OK, "%s", err.msg);
    models_eq(f.m, m2, 0);
    pl_model_free(m2);

    /* the flag on a model without optimizer state stores "absent" */
    pl_model *plain = make_model();
    cr_assert_eq(pl_checkpoint_save(f.path, plain, "", PL_CKPT_OPTIM, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(pl_checkpoint_load(f.path, &m2, NULL, &err), PL_OK, "%s", err.msg);
    models_eq(plain, m2, 0);
    pl_model_free(m2);
    pl_model_free(plain);
    teardown(&f);
}

Test(checkpoint, save_replaces_an_existing_file)
{
    fixture f = setup();
    pl_error err;
    write_all(f.path, (const uint8_t *)"old", 3);
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "new", 0, &err), PL_OK, "%s", err.msg);
    char *meta = NULL;
    pl_model *m2 = NULL;
    cr_assert_eq(pl_checkpoint_load(f.path, &m2, &meta, &err), PL_OK, "%s", err.msg);
    cr_assert_str_eq(meta, "new");
    cr_assert_eq(count_entries(f.dir), 1);
    free(meta);
    pl_model_free(m2);
    teardown(&f);
}

/* ---- damaged files ------------------------------------------------------------------ */

Test(checkpoint, any_flipped_byte_is_refused)
{
    fixture f = setup();
    pl_error err;
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "meta", PL_CKPT_OPTIM, &err), PL_OK, "%s",
                 err.msg);
    size_t len;
    uint8_t *good = read_all(f.path, &len);
    uint8_t *b = malloc(len);
    cr_assert(b);
    char *bad = path_in(f.dir, "bad.ckpt");
    for (size_t i = 0; i < len; i++) {
        memcpy(b, good, len);
        b[i] ^= (uint8_t)(1u << (i % 8));
        int in_payload = i >= HDR && i < len - 8;
        /* the header fields have their own messages; payload and checksum bytes
         * must all be caught by the checksum */
        crafted_fails(bad, b, len, in_payload || i >= len - 8 ? "checksum mismatch" : "");
    }
    free(bad);
    free(b);
    free(good);
    teardown(&f);
}

Test(checkpoint, truncated_or_extended_files_are_refused)
{
    fixture f = setup();
    pl_error err;
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "meta", 0, &err), PL_OK, "%s", err.msg);
    size_t len;
    uint8_t *good = read_all(f.path, &len);
    char *bad = path_in(f.dir, "bad.ckpt");
    size_t cuts[] = {0, 1, 7, 8, 12, 23, 24, 31, 32, 40, len / 2, len - 9, len - 8, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        crafted_fails(bad, good, cuts[i], cuts[i] < 8 ? "bad magic" : "truncated");
    uint8_t *longer = calloc(len + 5, 1);
    cr_assert(longer);
    memcpy(longer, good, len);
    crafted_fails(bad, longer, len + 5, "unexpected bytes after the checksum");
    /* a consistent header over a cut payload: length patched, checksum recomputed */
    memcpy(longer, good, len);
    size_t cut = len - 40;
    memcpy(longer + cut - 8, good + len - 8, 8);
    reseal(longer, cut);
    crafted_fails(bad, longer, cut, "layer 8 (fc): the biases: 10 values claimed");
    free(longer);
    free(bad);
    free(good);
    teardown(&f);
}

Test(checkpoint, bad_magic_and_newer_version)
{
    fixture f = setup();
    pl_error err;
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, NULL, 0, &err), PL_OK, "%s", err.msg);
    size_t len;
    uint8_t *b = read_all(f.path, &len);
    b[0] = 'X';
    crafted_fails(f.path, b, len, "not a prunelab checkpoint (bad magic");
    b[0] = 'P';
    wr32(b + 8, 7);
    crafted_fails(f.path, b, len, "format version 7 is newer than this prunelab's 4");
    wr32(b + 8, 0);
    crafted_fails(f.path, b, len, "format version 0 is invalid");
    wr32(b + 8, 1);
    wr32(b + 12, 0x80);
    crafted_fails(f.path, b, len, "unknown flags 0x80");
    /* the optimizer flag set on a file without optimizer state */
    wr32(b + 12, PL_CKPT_OPTIM);
    crafted_fails(f.path, b, len, "layer 1 (conv1): the weight optimizer state presence flag");
    free(b);

    const char *text = "name: seed\nmodel: simple_cnn\n";
    write_all(f.path, (const uint8_t *)text, strlen(text));
    load_fails(f.path, PL_EFORMAT, "bad magic");
    teardown(&f);
}

Test(checkpoint, missing_file_or_directory_is_an_io_error)
{
    fixture f = setup();
    load_fails(f.path, PL_EIO, "cannot open");
    load_fails(f.dir, PL_EIO, "not a regular file");
    teardown(&f);
}

/* ---- crafted files with valid checksums --------------------------------------------- */

Test(checkpoint, huge_counts_are_refused_without_allocating)
{
    fixture f = setup();
    pl_error err;
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "meta", 0, &err), PL_OK, "%s", err.msg);
    size_t len;
    uint8_t *good = read_all(f.path, &len);
    uint8_t *b = malloc(len);
    cr_assert(b);
    char *bad = path_in(f.dir, "bad.ckpt");
    size_t fc = layer_off(good, len, "fc");

    /* 10^12 weights in the header of a 12→10 linear layer */
    memcpy(b, good, len);
    wr64(b + fc + F_NW, 1000000000000ull);
    reseal(b, len);
    crafted_fails(bad, b, len, "1000000000000 weights");

    /* shapes that agree with each other and ask for 4 * 12 * 10^9 bytes:
     * beyond the shape rule's limit of 2^28 values per tensor */
    memcpy(b, good, len);
    wr32(b + fc + F_OUT_C, 1000000000u);
    wr64(b + fc + F_NW, 12000000000ull);
    wr64(b + fc + F_NB, 1000000000ull);
    reseal(b, len);
    crafted_fails(bad, b, len, "layer 8 (fc): too large");

    /* within that limit (4 * 12 * 10^7 bytes): refused because the payload
     * is far shorter, before any allocation */
    memcpy(b, good, len);
    wr32(b + fc + F_OUT_C, 10000000u);
    wr64(b + fc + F_NW, 120000000ull);
    wr64(b + fc + F_NB, 10000000ull);
    reseal(b, len);
    crafted_fails(bad, b, len, "120000000 values claimed");

    /* a conv with an enormous kernel, padding and channel count */
    size_t c1 = layer_off(good, len, "conv1");
    memcpy(b, good, len);
    wr32(b + c1 + F_OUT_C, 0x7fffffffu);
    wr32(b + c1 + F_KH, 0x7fffffffu);
    wr32(b + c1 + F_KH + 4, 0x7fffffffu);
    wr32(b + c1 + F_PH, 0x3fffffffu);
    wr32(b + c1 + F_PH + 4, 0x3fffffffu);
    reseal(b, len);
    crafted_fails(bad, b, len, "layer 1 (conv1)");

    /* 2^64-1 bytes of meta text */
    memcpy(b, good, len);
    wr64(b + HDR, UINT64_MAX);
    reseal(b, len);
    crafted_fails(bad, b, len, "meta text of 18446744073709551615 bytes");

    /* 2^31-1 layers */
    memcpy(b, good, len);
    size_t nl = HDR + 8 + 4 + 4 + 4 + 4 * 4 + 8 + 8; /* meta "meta", name "tiny", header */
    cr_assert_eq(rd64(b + nl - 16), 42); /* the seed: the offset is right */
    wr32(b + nl, 0x7fffffffu);
    reseal(b, len);
    crafted_fails(bad, b, len, "payload ends inside");

    /* a negative count */
    memcpy(b, good, len);
    wr64(b + fc + F_NB, UINT64_MAX);
    reseal(b, len);
    crafted_fails(bad, b, len, "-1 biases");
    free(bad);
    free(b);
    free(good);
    teardown(&f);
}

Test(checkpoint, inconsistent_shapes_are_refused)
{
    fixture f = setup();
    pl_error err;
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "meta", 0, &err), PL_OK, "%s", err.msg);
    size_t len;
    uint8_t *good = read_all(f.path, &len);
    uint8_t *b = malloc(len);
    cr_assert(b);
    char *bad = path_in(f.dir, "bad.ckpt");
    size_t c1 = layer_off(good, len, "conv1"), bn = layer_off(good, len, "bn1"),
           pool = layer_off(good, len, "pool1"), c2 = layer_off(good, len, "conv2"),
           flat = layer_off(good, len, "flat"), drop = layer_off(good, len, "drop"),
           fc = layer_off(good, len, "fc");
    struct {
        size_t off;
        uint32_t v;
        const char *needle;
    } edits[] = {
        {c1 + F_IN_C, 2, "layer 1 (conv1): input shape 2x8x8 differs from the 1x8x8"},
        {c1 + F_OUT_H, 9, "layer 1 (conv1): output shape 4x9x8 should be 4x8x8"},
        {c1 + F_PH, 0, "layer 1 (conv1): output shape 4x8x8 should be 4x6x8"},
        {c1 + F_SH, 0, "layer 1 (conv1): kernel"},
        {c1 + F_TYPE, 99, "unknown layer type 99"},
        {c1 + F_BIAS, 0, "layer 1 (conv1): 36 weights and 4 biases where its shape has 36 and 0"},
        {bn + F_IN_C, 5, "layer 2 (bn1): input shape"},
        {pool + F_KH, 9, "layer 4 (pool1): kernel 9x2 does not fit"},
        {pool + F_PH, 2, "layer 4 (pool1): pool padding"},
        {c2 + F_IN_H, 5, "layer 5 (conv2): input shape"},
        {flat + F_TYPE, PL_LAYER_RELU, "layer 6 (flat): output shape 12x1x1 should be 3x2x2"},
        {drop + F_OUT_C, 11, "layer 7 (drop): output shape 11x1x1"},
        {fc + F_IN_C, 13, "layer 8 (fc): input shape 13x1x1 differs"},
        {fc + F_OUT_C, 11, "layer 8 (fc): 120 weights and 10 biases where its shape has 132 and 11"},
        {c1 - 4 - 5, 70, "layer 1: the layer name is 70 bytes long"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(b, good, len);
        wr32(b + edits[i].off, edits[i].v);
        reseal(b, len);
        crafted_fails(bad, b, len, edits[i].needle);
    }

    /* a dropout probability of 1.5 and a batchnorm eps of 0 */
    memcpy(b, good, len);
    double d = 1.5;
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    wr64(b + drop + F_P, u);
    reseal(b, len);
    crafted_fails(bad, b, len, "dropout probability 1.5");
    memcpy(b, good, len);
    wr64(b + bn + F_P + 8, 0);
    reseal(b, len);
    crafted_fails(bad, b, len, "batchnorm eps 0");

    /* the model's class count no longer matches the last layer */
    memcpy(b, good, len);
    size_t classes = HDR + 8 + 4 + 4 + 4 + 4 + 4 + 4; /* meta "meta", name "tiny", c h w */
    cr_assert_eq(b[classes], 10);
    wr32(b + classes, 9);
    reseal(b, len);
    crafted_fails(bad, b, len, "the last layer produces 10 values per image but the model has 9");

    /* the model input shape */
    memcpy(b, good, len);
    wr32(b + classes - 4, 7);
    reseal(b, len);
    crafted_fails(bad, b, len, "layer 1 (conv1): input shape 1x8x8 differs from the 1x8x7");

    /* one layer fewer, or one more, than stored */
    memcpy(b, good, len);
    wr32(b + classes + 4 + 16, 7);
    reseal(b, len);
    crafted_fails(bad, b, len, "the last layer produces 12 values per image");
    memcpy(b, good, len);
    wr32(b + classes + 4 + 16, 9);
    reseal(b, len);
    crafted_fails(bad, b, len, "layer 9: the payload ends inside the layer name");

    /* bytes after the last layer */
    uint8_t *longer = calloc(len + 4, 1);
    cr_assert(longer);
    memcpy(longer, good, len - 8);
    reseal(longer, len + 4);
    crafted_fails(bad, longer, len + 4, "4 unexpected bytes after the last layer");
    free(longer);

    /* a mask flag that is neither 0 nor 1 (relu1: no tensors, the flag follows nw/nb) */
    memcpy(b, good, len);
    size_t relu = layer_off(good, len, "relu1");
    b[relu + F_W] = 2;
    reseal(b, len);
    crafted_fails(bad, b, len, "layer 3 (relu1): mask flag 2");
    free(bad);
    free(b);
    free(good);
    teardown(&f);
}

/* Random edits with a recomputed checksum: each load either fails cleanly or
 * yields a model whose shapes the model's own inference agrees with. */
Test(checkpoint, random_edits_fail_cleanly_or_load_consistently)
{
    fixture f = setup();
    pl_error err;
    cr_assert_eq(pl_model_optim_reset(f.m, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "meta", PL_CKPT_OPTIM, &err), PL_OK, "%s",
                 err.msg);
    size_t len;
    uint8_t *good = read_all(f.path, &len);
    uint8_t *b = malloc(len);
    cr_assert(b);
    char *bad = path_in(f.dir, "bad.ckpt");
    pl_rng r;
    pl_rng_seed(&r, 1, "checkpoint-fuzz");
    int loaded = 0, refused = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(b, good, len);
        int edits = 1 + (int)pl_rng_below(&r, 3);
        for (int e = 0; e < edits; e++) {
            size_t at = HDR + (size_t)pl_rng_below(&r, len - HDR - 8 - 4);
            uint32_t v;
            switch (pl_rng_below(&r, 4)) {
            case 0: v = (uint32_t)pl_rng_below(&r, 4); break;           /* small */
            case 1: v = 0x7fffffffu - (uint32_t)pl_rng_below(&r, 2); break;
            case 2: v = (uint32_t)pl_rng_u64(&r); break;
            default: v = b[at] ^ (1u << pl_rng_below(&r, 8)); b[at] = (uint8_t)v; continue;
            }
            wr32(b + at, v);
        }
        reseal(b, len);
        write_all(bad, b, len);
        pl_model *m2 = NULL;
        char *meta = NULL;
        pl_status s = pl_checkpoint_load(bad, &m2, &meta, &err);
        if (s) {
            cr_assert_eq(s, PL_EFORMAT, "%s", err.msg);
            cr_assert_null(m2);
            refused++;
            continue;
        }
        loaded++;
        int shapes[64][3];
        for (int i = 0; i < m2->n_layers && i < 64; i++) {
            shapes[i][0] = m2->layers[i].out_c;
            shapes[i][1] = m2->layers[i].out_h;
            shapes[i][2] = m2->layers[i].out_w;
        }
        cr_assert_eq(pl_model_reshape(m2, &err), PL_OK, "%s", err.msg);
        for (int i = 0; i < m2->n_layers && i < 64; i++)
            cr_assert(shapes[i][0] == m2->layers[i].out_c && shapes[i][1] == m2->layers[i].out_h &&
                      shapes[i][2] == m2->layers[i].out_w);
        cr_assert_eq(pl_model_reserve(m2, 2, &err), PL_OK, "%s", err.msg);
        free(meta);
        pl_model_free(m2);
    }
    cr_assert_gt(loaded, 100);
    cr_assert_gt(refused, 100);
    free(bad);
    free(b);
    free(good);
    teardown(&f);
}

/* ---- saving --------------------------------------------------------------------------- */

Test(checkpoint, unwritable_paths_are_io_errors_without_leftovers)
{
    fixture f = setup();
    pl_error err;
    char *file = path_in(f.dir, "plain");
    write_all(file, (const uint8_t *)"x", 1);
    char *under = path_in(file, "x.ckpt");
    cr_assert_eq(pl_checkpoint_save(under, f.m, "", 0, &err), PL_EIO);
    cr_assert(strstr(err.msg, under), "%s", err.msg);
    cr_assert_eq(pl_checkpoint_save("/dev/full/x.ckpt", f.m, "", 0, &err), PL_EIO);
    cr_assert(strstr(err.msg, "/dev/full/x.ckpt"), "%s", err.msg);
    char *missing = path_in(f.dir, "no/such/dir.ckpt");
    cr_assert_eq(pl_checkpoint_save(missing, f.m, "", 0, &err), PL_EIO);
    cr_assert_eq(count_entries(f.dir), 1);

    /* the target is a non-empty directory: the rename fails, the tmp file goes */
    char *sub = path_in(f.dir, "sub");
    cr_assert_eq(mkdir(sub, 0755), 0);
    char *inner = path_in(sub, "keep");
    write_all(inner, (const uint8_t *)"k", 1);
    cr_assert_eq(pl_checkpoint_save(sub, f.m, "", 0, &err), PL_EIO);
    cr_assert(strstr(err.msg, "rename"), "%s", err.msg);
    cr_assert_eq(count_entries(f.dir), 2, "temporary file left behind");
    free(inner);
    free(sub);
    free(missing);
    free(under);
    free(file);
    teardown(&f);
}

Test(checkpoint, a_failed_write_keeps_the_old_file)
{
    fixture f = setup();
    pl_error err;
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "old", 0, &err), PL_OK, "%s", err.msg);
    /* a "full disk": the file size limit stops the write half-way */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 100;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    pl_status s = pl_checkpoint_save(f.path, f.m, "new", 0, &err);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    cr_assert_eq(s, PL_EIO, "%s", err.msg);
    cr_assert(strstr(err.msg, f.path), "%s", err.msg);
    cr_assert_eq(count_entries(f.dir), 1, "temporary file left behind");
    pl_model *m2 = NULL;
    char *meta = NULL;
    cr_assert_eq(pl_checkpoint_load(f.path, &m2, &meta, &err), PL_OK, "%s", err.msg);
    cr_assert_str_eq(meta, "old");
    models_eq(f.m, m2, 0);
    free(meta);
    pl_model_free(m2);
    teardown(&f);
}

Test(checkpoint, an_inconsistent_model_is_not_saved)
{
    fixture f = setup();
    pl_error err;
    f.m->layers[7].in_c = 13; /* fc no longer matches flatten */
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "", 0, &err), PL_EINVAL);
    cr_assert(strstr(err.msg, "layer 8 (fc)"), "%s", err.msg);
    f.m->layers[7].in_c = 12;
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "", 0x10, &err), PL_EINVAL);
    float *keep = f.m->layers[1].run_var;
    f.m->layers[1].run_var = NULL;
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "", 0, &err), PL_EINVAL);
    cr_assert(strstr(err.msg, "bn1"), "%s", err.msg);
    f.m->layers[1].run_var = keep;
    cr_assert_eq(count_entries(f.dir), 0);
    teardown(&f);
}

/* ---- format 3: the padding, dilation and divisor of imported layers ---------------- */

/* A model with asymmetric padding, dilation and count_include_pad=0 is
 * written in format 3 and comes back with those fields (and the same
 * logits); the model without them stays format 1; a format-3 field out of
 * range is refused. */
Test(checkpoint, format3_carries_padding_and_dilation)
{
    pl_layer_spec ls[] = {
        {.name = "conv1", .type = PL_LAYER_CONV2D, .out = 3, .kh = 3, .kw = 3, .sh = 2, .sw = 1, .ph = 1, .pw = 0,
         .bias = 1, .pad_xb = 1, .pad_xr = 1, .dil_h = 2},
        {.name = "pool1", .type = PL_LAYER_MAXPOOL2D, .kh = 2, .kw = 2, .sh = 1, .sw = 1, .pad_xb = 1},
        {.name = "pool2", .type = PL_LAYER_AVGPOOL2D, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1,
         .excl_pad = 1},
        {.name = "flat", .type = PL_LAYER_FLATTEN},
        {.name = "fc", .type = PL_LAYER_LINEAR, .out = 4, .bias = 1},
    };
    pl_model_spec spec = {.file = "test.yaml", .name = "geo", .in_c = 2, .in_h = 9, .in_w = 8, .classes = 4,
                          .layers = ls, .n_layers = sizeof ls / sizeof ls[0]};
    fixture f = setup();
    pl_model *m = NULL, *m2 = NULL;
    pl_error err;
    cr_assert_eq(pl_model_new(&spec, 5, &m, &err), PL_OK, "%s", err.msg);
    m2 = pltest_save_reload(m, f.path, PLTEST_CHECKPOINT);
    size_t len;
    uint8_t *b = read_all(f.path, &len);
    cr_assert_eq(b[8], 3, "format %u", b[8]);
    models_eq(m, m2, 0);
    for (int i = 0; i < m->n_layers; i++) {
        const pl_layer *x = &m->layers[i], *y = &m2->layers[i];
        cr_assert(x->pad_xb == y->pad_xb && x->pad_xr == y->pad_xr && x->dil_h == y->dil_h &&
                  x->dil_w == y->dil_w && x->excl_pad == y->excl_pad, "layer %s: padding fields differ", x->name);
    }
    cr_assert_eq(m2->layers[0].pad_xb, 1);
    cr_assert_eq(m2->layers[0].dil_h, 2);
    cr_assert_eq(m2->layers[2].excl_pad, 1);
    /* the same logits */
    float x[2 * 2 * 9 * 8];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)((i * 37) % 11) - 5.0f;
    pltest_same_logits(m, m2, x, 2, "the round trip");
    /* a dilation out of range: the conv's fields follow its inputs list */
    size_t off = layer_off(b, len, "conv1");
    /* after the name: type, 7 ints, groups, n_in, in[0], then pad_xb, pad_xr, dil_h */
    size_t dil = off + 4 + 7 * 4 + 3 * 4 + 2 * 4;
    cr_assert_eq(b[dil], 2);
    b[dil] = 0xff;
    b[dil + 1] = 0xff;
    b[dil + 2] = 0xff;
    b[dil + 3] = 0x7f;
    reseal(b, len);
    crafted_fails(f.path, b, len, "dilation");
    free(b);
    pl_model_free(m);
    pl_model_free(m2);
    teardown(&f);
}

/* Kernel, stride and padding (each side, bottom/right extra included) above
 * 65536, the bound model files and ONNX imports keep: refused, so the host
 * kernels' index math (o*stride - pad + k*dilation) cannot overflow int. */
Test(checkpoint, oversized_geometry_is_refused)
{
    pl_layer_spec ls[] = {
        {.name = "conv1", .type = PL_LAYER_CONV2D, .out = 2, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1,
         .bias = 1, .pad_xb = 1, .dil_h = 2},
        {.name = "flat", .type = PL_LAYER_FLATTEN},
        {.name = "fc", .type = PL_LAYER_LINEAR, .out = 3, .bias = 1},
    };
    pl_model_spec spec = {.file = "test.yaml", .name = "big", .in_c = 1, .in_h = 6, .in_w = 6, .classes = 3,
                          .layers = ls, .n_layers = sizeof ls / sizeof ls[0]};
    fixture f = setup();
    pl_model *m = NULL;
    pl_error err;
    cr_assert_eq(pl_model_new(&spec, 5, &m, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(pl_checkpoint_save(f.path, m, "", 0, &err), PL_OK, "%s", err.msg);
    size_t len;
    uint8_t *good = read_all(f.path, &len), *b = malloc(len);
    cr_assert(b);
    cr_assert_eq(good[8], 3);
    size_t c1 = layer_off(good, len, "conv1"), xb = c1 + 4 + 7 * 4 + 3 * 4;
    cr_assert_eq(good[c1 + F_PH], 1);
    cr_assert_eq(good[xb], 1);
    struct {
        size_t off;
        uint32_t v;
    } edits[] = {
        {c1 + F_PH, 0x7fffffffu}, /* top padding 2^31-1 */
        {c1 + F_PH, 65537},
        {c1 + F_PH + 4, 65537},
        {c1 + F_KH, 65537},
        {c1 + F_SH + 4, 1u << 20},
        {xb, 65536}, /* bottom = 1 + 65536 */
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(b, good, len);
        wr32(b + edits[i].off, edits[i].v);
        reseal(b, len);
        crafted_fails(f.path, b, len, "out of range (each at most 65536)");
    }
    /* 65536 itself is within the bound: the shape rule decides (here: no longer fits) */
    memcpy(b, good, len);
    wr32(b + c1 + F_PH + 4, 65536);
    reseal(b, len);
    crafted_fails(f.path, b, len, "layer 1 (conv1): output shape");
    free(b);
    free(good);
    pl_model_free(m);
    teardown(&f);
}

/* count_include_pad=0 on an average pool without any padding computes what
 * 1 computes: not stored, so the checkpoint stays format 1. */
Test(checkpoint, exclude_pad_without_padding_stays_format1)
{
    pl_layer_spec ls[] = {
        {.name = "pool", .type = PL_LAYER_AVGPOOL2D, .kh = 2, .kw = 2, .sh = 2, .sw = 2, .excl_pad = 1},
        {.name = "flat", .type = PL_LAYER_FLATTEN},
        {.name = "fc", .type = PL_LAYER_LINEAR, .out = 3, .bias = 1},
    };
    pl_model_spec spec = {.file = "test.yaml", .name = "ex", .in_c = 1, .in_h = 4, .in_w = 4, .classes = 3,
                          .layers = ls, .n_layers = sizeof ls / sizeof ls[0]};
    fixture f = setup();
    pl_model *m = NULL;
    pl_error err;
    cr_assert_eq(pl_model_new(&spec, 5, &m, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(m->layers[0].excl_pad, 0);
    cr_assert_eq(pl_checkpoint_save(f.path, m, "", 0, &err), PL_OK, "%s", err.msg);
    size_t len;
    uint8_t *b = read_all(f.path, &len);
    cr_expect_eq(b[8], 1, "format %u", b[8]);
    free(b);
    pl_model_free(m);
    teardown(&f);
}

/* The model without those fields is written as before: format 1. */
Test(checkpoint, plain_models_stay_format1)
{
    fixture f = setup();
    pl_error err;
    cr_assert_eq(pl_checkpoint_save(f.path, f.m, "", 0, &err), PL_OK, "%s", err.msg);
    size_t len;
    uint8_t *b = read_all(f.path, &len);
    cr_assert_eq(b[8], 1, "format %u", b[8]);
    free(b);
    teardown(&f);
}

/* ---- format 4: slice layers ------------------------------------------------------- */

/* A model with slice layers is written in format 4 and comes back with
 * their channel ranges (and the same logits); a range out of order, or a
 * range on a layer that is not a slice, is refused. */
Test(checkpoint, format4_carries_slice_channels)
{
    pl_layer_spec ls[] = {
        {.name = "xa", .type = PL_LAYER_SLICE, .ch0 = 0, .ch1 = 1, .n_in = 1, .in = {-1}},
        {.name = "xb", .type = PL_LAYER_SLICE, .ch0 = 1, .ch1 = 3, .n_in = 1, .in = {-1}},
        {.name = "conv1", .type = PL_LAYER_CONV2D, .out = 2, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .bias = 1,
         .n_in = 1, .in = {0}},
        {.name = "conv2", .type = PL_LAYER_CONV2D, .out = 2, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .bias = 1,
         .n_in = 1, .in = {1}},
        {.name = "sum", .type = PL_LAYER_ADD, .n_in = 2, .in = {2, 3}},
        {.name = "flat", .type = PL_LAYER_FLATTEN},
        {.name = "fc", .type = PL_LAYER_LINEAR, .out = 4, .bias = 1},
    };
    pl_model_spec spec = {.file = "test.yaml", .name = "sl", .in_c = 3, .in_h = 5, .in_w = 5, .classes = 4,
                          .layers = ls, .n_layers = sizeof ls / sizeof ls[0]};
    fixture f = setup();
    pl_model *m = NULL, *m2 = NULL;
    pl_error err;
    cr_assert_eq(pl_model_new(&spec, 5, &m, &err), PL_OK, "%s", err.msg);
    m2 = pltest_save_reload(m, f.path, PLTEST_CHECKPOINT);
    size_t len;
    uint8_t *b = read_all(f.path, &len);
    cr_assert_eq(b[8], 4, "format %u", b[8]);
    models_eq(m, m2, 0);
    for (int i = 0; i < m->n_layers; i++)
        cr_assert(m->layers[i].ch0 == m2->layers[i].ch0 && m->layers[i].ch1 == m2->layers[i].ch1, "layer %s",
                  m->layers[i].name);
    cr_assert_eq(m2->layers[1].ch0, 1);
    cr_assert_eq(m2->layers[1].ch1, 3);
    float x[2 * 3 * 5 * 5];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)((i * 37) % 11) - 5.0f;
    pltest_same_logits(m, m2, x, 2, "the round trip");
    /* after the name: type, 7 ints, groups, n_in, in[0], 5 padding fields, then ch0, ch1 */
    size_t off = layer_off(b, len, "xb"), ch = off + 4 + 7 * 4 + 3 * 4 + 5 * 4;
    cr_assert_eq(b[ch], 1);
    cr_assert_eq(b[ch + 4], 3);
    b[ch] = 3; /* [3, 3): empty */
    reseal(b, len);
    crafted_fails(f.path, b, len, "slice channels 3,3");
    b[ch] = 1;
    b[ch + 4] = 4; /* past the input's 3 channels: the shape rule */
    reseal(b, len);
    crafted_fails(f.path, b, len, "channels [1, 4] are not a range inside its input's 3 channels");
    b[ch + 4] = 3;
    off = layer_off(b, len, "conv1");
    ch = off + 4 + 7 * 4 + 3 * 4 + 5 * 4;
    b[ch + 4] = 1; /* a conv with a channel range */
    reseal(b, len);
    crafted_fails(f.path, b, len, "slice channels 0,1 out of range for a conv2d layer");
    free(b);
    pl_model_free(m);
    pl_model_free(m2);
    teardown(&f);
}
