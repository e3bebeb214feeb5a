#define _XOPEN_SOURCE 700 /* nftw */
#include "pltest.h"
#include "checkpoint.h"
#include "config.h"
#include "model.h"
#include "onnx_export.h"
#include "train.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *pltest_build_dir(void)
{
    const char *b = getenv("PL_BUILD_DIR");
    return b && *b ? b : PL_BUILD_DIR;
}

const char *pltest_exe(void)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/prunelab", pltest_build_dir());
    return path;
}

pl_registry *pltest_registry(void)
{
    static pl_registry *r;
    if (!r) {
        char p[4096];
        pl_error err;
        r = pl_registry_new(pltest_exe());
        cr_assert(r);
        snprintf(p, sizeof p, "%s/plugins", pltest_build_dir());
        cr_assert_eq(pl_registry_add_path(r, p, &err), PL_OK, "%s", err.msg);
        snprintf(p, sizeof p, "%s/testplugins", pltest_build_dir());
        pl_registry_add_path(r, p, &err);
    }
    return r;
}

pl_instance *pltest_instance(pl_kind kind, const char *name, const char *const *kv,
                             uint64_t seed, int threads)
{
    const pl_plugin *p;
    pl_instance *in = NULL;
    pl_error err;
    cr_assert_eq(pl_registry_find(pltest_registry(), kind, name, &p, &err), PL_OK, "%s", err.msg);
    static const char *const none[] = {NULL};
    cr_assert_eq(pl_instance_new_kv(p, kv ? kv : none, seed, threads, &in, &err), PL_OK, "%s", err.msg);
    return in;
}

/* Directories made by pltest_tmpdir, removed when the test process exits. */
static char *g_tmpdirs[256];
static int g_ntmpdirs;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void rm_tmpdirs(void)
{
    for (int i = 0; i < g_ntmpdirs; i++) {
        nftw(g_tmpdirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(g_tmpdirs[i]);
    }
    g_ntmpdirs = 0;
}

char *pltest_tmpdir(void)
{
    char *t = strdup("/tmp/pltest.XXXXXX");
    cr_assert(t && mkdtemp(t));
    if (g_ntmpdirs < (int)(sizeof g_tmpdirs / sizeof g_tmpdirs[0])) {
        if (!g_ntmpdirs)
            atexit(rm_tmpdirs);
        g_tmpdirs[g_ntmpdirs++] = strdup(t);
    }
    return t;
}

int pltest_run(const char *cmd, char **out)
{
    size_t cap = 1 << 16, len = 0;
    char *full = malloc(strlen(cmd) + 8);
    cr_assert(full);
    sprintf(full, "%s 2>&1", cmd);
    FILE *f = popen(full, "r");
    free(full);
    cr_assert(f);
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += k;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[len] = 0;
    int st = pclose(f);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

char *pltest_write_temp(const char *text, const char *suffix)
{
    char *dir = pltest_tmpdir();
    size_t n = strlen(dir) + strlen(suffix) + 16;
    char *path = malloc(n);
    cr_assert(path);
    snprintf(path, n, "%s/file%s", dir, suffix);
    free(dir);
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
    return path;
}

pl_model *pltest_model_file(const char *path, uint64_t seed)
{
    pl_model_spec *spec;
    pl_model *m;
    pl_error err;
    cr_assert_eq(pl_model_spec_load(path, &spec, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(pl_model_new(spec, seed, &m, &err), PL_OK, "%s", err.msg);
    pl_model_spec_free(spec);
    return m;
}

pl_model *pltest_model(const char *yaml, uint64_t seed)
{
    char *path = pltest_write_temp(yaml, ".yaml");
    pl_model *m = pltest_model_file(path, seed);
    unlink(path);
    free(path);
    return m;
}

pl_status pltest_experiment_text(const char *text, const char *const *sets, size_t n, pl_experiment **x,
                                 pl_error *err)
{
    char *path = pltest_write_temp(text, ".yaml");
    pl_config *cfg;
    pl_status s = pl_config_load(path, sets, n, &cfg, err);
    *x = NULL;
    if (!s) {
        s = pl_config_expand(cfg, 0, x, err);
        pl_config_free(cfg);
    }
    unlink(path);
    free(path);
    return s;
}

pl_instance *pltest_ref_backend(void)
{
    static pl_instance *in;
    if (!in)
        in = pltest_instance(PL_KIND_BACKEND, "ref", NULL, 1, 1);
    return in;
}

void pltest_bind_ref(pl_model *m)
{
    pl_model_bind(m, pl_instance_ops(pltest_ref_backend()), pl_instance_state(pltest_ref_backend()));
}

pl_instance *pltest_synthetic_train(int c, int h, int w, int count, pl_data *train)
{
    char kc[32], kh[32], kw[32], kn[48];
    snprintf(kc, sizeof kc, "channels=%d", c);
    snprintf(kh, sizeof kh, "height=%d", h);
    snprintf(kw, sizeof kw, "width=%d", w);
    snprintf(kn, sizeof kn, "train_count=%d", count);
    const char *const kv[] = {kc, kh, kw, "classes=2", kn, "test_count=8", NULL};
    pl_instance *ds = pltest_instance(PL_KIND_DATASET, "synthetic", kv, 3, 1);
    pl_error err;
    cr_assert_eq(pl_data_open(ds, PL_SPLIT_TRAIN, train, &err), PL_OK, "%s", err.msg);
    return ds;
}

int pltest_same_weights(const pl_model *a, const pl_model *b, int with_biases)
{
    for (int i = 0; i < a->n_layers; i++) {
        const pl_layer *x = &a->layers[i], *y = &b->layers[i];
        if (x->nw && memcmp(x->w, y->w, (size_t)x->nw * sizeof(float)))
            return 0;
        if (with_biases && x->nb && memcmp(x->b, y->b, (size_t)x->nb * sizeof(float)))
            return 0;
    }
    return 1;
}

pl_model *pltest_save_reload(const pl_model *m, const char *path, pltest_format fmt)
{
    pl_model *m2 = NULL;
    pl_error err = {0};
    if (fmt == PLTEST_CHECKPOINT) {
        cr_assert_eq(pl_checkpoint_save(path, m, "", 0, &err), PL_OK, "%s", err.msg);
        cr_assert_eq(pl_checkpoint_load(path, &m2, NULL, &err), PL_OK, "%s", err.msg);
    } else {
        pl_model_spec *s = NULL;
        cr_assert_eq(pl_onnx_export_model(m, path, 0, "test", NULL, &err), PL_OK, "%s", err.msg);
        cr_assert_eq(pl_model_spec_load(path, &s, &err), PL_OK, "%s", err.msg);
        cr_assert_eq(pl_model_new(s, 9, &m2, &err), PL_OK, "%s", err.msg);
        pl_model_spec_free(s);
    }
    return m2;
}

void pltest_same_logits(pl_model *a, pl_model *b, const float *x, int n, const char *what)
{
    pl_model *ms[2] = {a, b};
    float *z[2];
    size_t nz = (size_t)n * (size_t)a->classes;
    cr_assert_eq(a->classes, b->classes);
    for (int k = 0; k < 2; k++) {
        pl_error err = {0};
        pltest_bind_ref(ms[k]);
        cr_assert_eq(pl_model_reserve(ms[k], n, &err), PL_OK, "%s", err.msg);
        const float *y = pl_model_forward(ms[k], x, n, PL_MODE_EVAL, &err);
        cr_assert(y, "%s", err.msg);
        z[k] = malloc(nz * sizeof(float));
        cr_assert(z[k]);
        memcpy(z[k], y, nz * sizeof(float));
    }
    for (size_t i = 0; i < nz; i++)
        cr_assert(z[0][i] == z[1][i] && !memcmp(&z[0][i], &z[1][i], sizeof(float)),
                  "logit %zu: %.9g before, %.9g after %s", i, (double)z[0][i], (double)z[1][i], what);
    free(z[0]);
    free(z[1]);
}

void pltest_generated_doc(const char *doc, const char *query, const char *md)
{
    FILE *f = fopen(doc, "rb");
    cr_assert(f, "%s is missing (the tests run in the source tree)", doc);
    char *text = calloc(1, 1 << 16);
    cr_assert(text);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    fclose(f);
    cr_assert_lt(n, (size_t)(1 << 16) - 1, "%s is larger than expected", doc);
    cr_expect_str_eq(text, md, "%s differs from what it is generated from; run build/prunelab %s > %s", doc, query,
                     doc);
    char cmd[4200], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s %s", pltest_exe(), query);
    cr_expect_eq(pltest_run(cmd, &out), 0);
    cr_expect_str_eq(out, md, "prunelab %s prints the same text", query);
    free(out);
    free(text);
}
