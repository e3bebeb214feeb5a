/* identity.c — run identity from content; checkpoint-against-model checks. */
#include "identity.h"
#include "onnx_import.h"
#include "share_path.h"
#include "sha256.h"
#include "strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PL__IDENTITY_MEMO 64

typedef struct ds_memo {
    char *key;             /* the dataset's dump lines and the seed */
    char train[72], test[72];
    struct ds_memo *next;
} ds_memo;

typedef struct model_memo {
    char *path;
    char digest[72];
    struct model_memo *next;
} model_memo;

struct pl_identity {
    pl_registry *reg;
    ds_memo *ds;
    model_memo *models;
    /* the splits opened last, kept for the run to borrow */
    char *open_key;
    pl_instance *open_inst;
    pl_data open_train, open_test;
};

pl_identity *pl_identity_new(pl_registry *reg)
{
    pl_identity *id = calloc(1, sizeof *id);
    if (id)
        id->reg = reg;
    return id;
}

static void close_open(pl_identity *id)
{
    pl_data_close(&id->open_train);
    pl_data_close(&id->open_test);
    pl_instance_free(id->open_inst);
    id->open_inst = NULL;
    free(id->open_key);
    id->open_key = NULL;
}

void pl_identity_free(pl_identity *id)
{
    if (!id)
        return;
    close_open(id);
    for (ds_memo *d = id->ds, *n; d; d = n) {
        n = d->next;
        free(d->key);
        free(d);
    }
    for (model_memo *m = id->models, *n; m; m = n) {
        n = m->next;
        free(m->path);
        free(m);
    }
    free(id);
}

/* ---- text helpers ------------------------------------------------------------------ */

/* a value on one identity line: no control characters */
static void tb_word(pl__buf *b, const char *s)
{
    char w[256];
    size_t i = 0;
    for (; s && s[i] && i < sizeof w - 1; i++)
        w[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    w[i] = 0;
    pl__buf_printf(b, "%s", w);
}

static void sha_hex(const void *data, size_t n, char out[72])
{
    pl__sha256 h;
    char hex[65];
    pl__sha256_init(&h);
    pl__sha256_update(&h, data, n);
    pl__sha256_hex(&h, hex);
    snprintf(out, 72, "sha256:%s", hex);
}

pl_status pl__file_sha256(const char *path, char out[72], pl_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pl_error_set(err, PL_EIO, "%s: cannot open to hash it: %s", path, strerror(errno));
    pl__sha256 h;
    pl__sha256_init(&h);
    unsigned char buf[1 << 15];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return pl_error_set(err, PL_EIO, "%s: cannot read to hash it: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        pl__sha256_update(&h, buf, (size_t)r);
    }
    close(fd);
    char hex[65];
    pl__sha256_hex(&h, hex);
    snprintf(out, 72, "sha256:%s", hex);
    return PL_OK;
}

/* ---- the model's content ---------------------------------------------------------------- */

char *pl_model_spec_canonical(const pl_model_spec *m)
{
    pl__buf b = {0};
    pl__buf_printf(&b, "name: ");
    tb_word(&b, m->name);
    pl__buf_printf(&b, "\ninput: %d %d %d\nclasses: %d\n", m->in_c, m->in_h, m->in_w, m->classes);
    for (size_t i = 0; i < m->n_layers; i++) {
        const pl_layer_spec *l = &m->layers[i];
        pl__buf_printf(&b, "layer %zu: ", i);
        tb_word(&b, l->name);
        pl__buf_printf(&b, " type=%d out=%d k=%d,%d s=%d,%d p=%d,%d bias=%d p=%.17g eps=%.17g momentum=%.17g",
                  (int)l->type, l->out, l->kh, l->kw, l->sh, l->sw, l->ph, l->pw, l->bias, l->p, l->eps,
                  l->momentum);
        /* graph fields only when not the default, so a chain's text stays as it was */
        if (l->groups > 1)
            pl__buf_printf(&b, " groups=%d", l->groups);
        /* imported padding/dilation/divisor fields, likewise only when set */
        if (l->pad_xb || l->pad_xr)
            pl__buf_printf(&b, " pad_extra=%d,%d", l->pad_xb, l->pad_xr);
        if (l->dil_h > 1 || l->dil_w > 1)
            pl__buf_printf(&b, " dilation=%d,%d", l->dil_h > 1 ? l->dil_h : 1, l->dil_w > 1 ? l->dil_w : 1);
        if (l->excl_pad)
            pl__buf_printf(&b, " exclude_pad=1");
        if (l->type == PL_LAYER_SLICE)
            pl__buf_printf(&b, " channels=%d,%d", l->ch0, l->ch1);
        for (int k = 0; k < l->n_in && k < PL_MAX_INPUTS; k++)
            pl__buf_printf(&b, "%s%d", k ? "," : " inputs=", l->in[k]);
        pl__buf_printf(&b, "\n");
    }
    /* an imported model's weights are part of what it is (YAML models: no line) */
    if (m->weights)
        pl__buf_printf(&b, "weights: %s\n", m->weights->digest);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

pl_status pl__experiment_model(const pl_experiment *x, pl_model_spec **spec, pl_error *err)
{
    char file[4096]; /* model: simple_cnn finds the bundled file (share_path.c) */
    pl_status s = pl_share_resolve(PL_SHARE_MODELS, x->model, file, sizeof file, err);
    if (s) {
        pl_error_prefix(err, "%s", x->file);
        return s;
    }
    s = pl_model_spec_load(file, spec, err);
    if (s == PL_EIO || s == PL_ENOTFOUND) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        pl_error_set(err, s, "%s (named by model: in %s; paths resolve against the working directory)", why,
                     x->file);
    }
    return s;
}

static pl_status model_digest(pl_identity *id, const pl_experiment *x, const char **out, pl_error *err)
{
    for (model_memo *m = id->models; m; m = m->next)
        if (!strcmp(m->path, x->model)) {
            *out = m->digest;
            return PL_OK;
        }
    pl_model_spec *spec;
    pl_status s = pl__experiment_model(x, &spec, err);
    if (s)
        return s;
    char *text = pl_model_spec_canonical(spec);
    pl_model_spec_free(spec);
    model_memo *m = text ? calloc(1, sizeof *m) : NULL;
    if (!m || !(m->path = strdup(x->model))) {
        free(m);
        free(text);
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    }
    sha_hex(text, strlen(text), m->digest);
    free(text);
    m->next = id->models;
    id->models = m;
    *out = m->digest;
    return PL_OK;
}

/* ---- the dataset's checksums ------------------------------------------------------------ */

static char *dataset_key(const pl_experiment *x)
{
    char *d = pl_experiment_dump(x);
    if (!d)
        return NULL;
    pl__buf b = {0};
    for (const char *l = d; *l;) {
        const char *end = strchr(l, '\n');
        size_t n = end ? (size_t)(end - l) + 1 : strlen(l);
        if (!strncmp(l, "dataset.", 8))
            pl__buf_printf(&b, "%.*s", (int)n, l);
        l += n;
    }
    /* a dataset may draw its examples from the run's seed (synthetic) */
    pl__buf_printf(&b, "seed: %" PRIu64 "\n", x->seed);
    free(d);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

static pl_status open_dataset(pl_identity *id, const pl_experiment *x, char *key, ds_memo **out, pl_error *err)
{
    close_open(id);
    pl_status s = pl_instance_new(id->reg, PL_KIND_DATASET, &x->dataset, x->seed, 1, &id->open_inst, err);
    const char *file = x->dataset.file ? x->dataset.file : x->file;
    if (s && s != PL_ENOMEM && strncmp(err->msg, file, strlen(file)) != 0) { /* as run.c names it */
        if (x->dataset.line > 0)
            pl_error_prefix(err, "%s:%d:%d", file, x->dataset.line, x->dataset.col);
        else
            pl_error_prefix(err, "%s", file);
    }
    if (!s)
        s = pl_data_open(id->open_inst, PL_SPLIT_TRAIN, &id->open_train, err);
    if (!s)
        s = pl_data_open(id->open_inst, PL_SPLIT_TEST, &id->open_test, err);
    ds_memo *d = NULL;
    if (!s && !(d = calloc(1, sizeof *d)))
        s = pl_error_set(err, PL_ENOMEM, "out of memory");
    if (s) {
        free(key);
        close_open(id);
        return s;
    }
    d->key = key;
    snprintf(d->train, sizeof d->train, "%.71s", id->open_train.info.checksum[0] ? id->open_train.info.checksum : "none");
    snprintf(d->test, sizeof d->test, "%.71s", id->open_test.info.checksum[0] ? id->open_test.info.checksum : "none");
    d->next = id->ds;
    id->ds = d;
    id->open_key = strdup(key);
    if (!id->open_key)
        close_open(id);
    *out = d;
    return PL_OK;
}

static pl_status dataset_sums(pl_identity *id, const pl_experiment *x, const ds_memo **out, pl_error *err)
{
    char *key = dataset_key(x);
    if (!key)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    /* most recently used first; at most PL__IDENTITY_MEMO entries, so a
     * sweep over 100,000 seeds of a seeded dataset stays linear */
    size_t depth = 0;
    for (ds_memo **pp = &id->ds, *d; (d = *pp); pp = &d->next, depth++) {
        if (!strcmp(d->key, key)) {
            free(key);
            *pp = d->next;
            d->next = id->ds;
            id->ds = d;
            *out = d;
            return PL_OK;
        }
        if (depth + 1 >= PL__IDENTITY_MEMO && d->next) {
            for (ds_memo *q = d->next, *n; q; q = n) {
                n = q->next;
                free(q->key);
                free(q);
            }
            d->next = NULL;
        }
    }
    ds_memo *d;
    pl_status s = open_dataset(id, x, key, &d, err);
    if (!s)
        *out = d;
    return s;
}

int pl_identity_borrow_data(pl_identity *id, const pl_experiment *x, pl_data *train, pl_data *test)
{
    if (!id || !id->open_key || !id->open_train.handle || !id->open_test.handle)
        return 0;
    char *key = dataset_key(x);
    int same = key && !strcmp(key, id->open_key);
    free(key);
    if (!same)
        return 0;
    *train = id->open_train;
    *test = id->open_test;
    return 1;
}

/* ---- the whole identity ------------------------------------------------------------------ */

static pl_status add_plugin(pl_identity *id, pl__buf *b, pl_kind kind, const char *what, const pl_plugin_ref *ref,
                            pl_error *err)
{
    const pl_plugin *p;
    pl_status s = pl_registry_find(id->reg, kind, ref->plugin, &p, err);
    if (s)
        return s;
    pl__buf_printf(b, "plugin.%s: ", what);
    tb_word(b, pl_plugin_get_desc(p)->name);
    pl__buf_printf(b, " ");
    tb_word(b, pl_plugin_get_desc(p)->version);
    pl__buf_printf(b, "\nfile.%s: %s\n", what, pl_plugin_sha256(p));
    return PL_OK;
}

pl_status pl_identity_apply(pl_identity *id, pl_experiment *x, pl_error *err)
{
    const char *model = NULL;
    const ds_memo *ds = NULL;
    pl_status s = model_digest(id, x, &model, err);
    if (!s)
        s = dataset_sums(id, x, &ds, err);
    if (s)
        return s;
    char init[72] = "";
    if (x->model_init && (s = pl__file_sha256(x->model_init, init, err))) { /* model_init: its bytes */
        if (x->model_init_line > 0)
            pl_error_prefix(err, "%s:%d:%d: model_init", x->model_init_file ? x->model_init_file : x->file,
                            x->model_init_line, x->model_init_col);
        else
            pl_error_prefix(err, "%s: model_init", x->model_init_file ? x->model_init_file : x->file);
        return s;
    }
    pl__buf b = {0};
    pl__buf_printf(&b, "model.content: %s\ndataset.train: %s\ndataset.test: %s\n", model, ds->train, ds->test);
    if (init[0]) /* only when set: identities without it stay as they were */
        pl__buf_printf(&b, "model.init: %s\n", init);
    s = add_plugin(id, &b, PL_KIND_BACKEND, "backend", &x->backend, err);
    if (!s)
        s = add_plugin(id, &b, PL_KIND_DATASET, "dataset", &x->dataset, err);
    if (!s && x->prune.enabled)
        s = add_plugin(id, &b, PL_KIND_CRITERION, "criterion", &x->prune.criterion, err);
    if (!s && x->prune.enabled)
        s = add_plugin(id, &b, PL_KIND_SCHEDULE, "schedule", &x->prune.schedule, err);
    if (!s && b.failed)
        s = pl_error_set(err, PL_ENOMEM, "out of memory");
    if (s) {
        free(b.data);
        return s;
    }
    if (pl_experiment_set_identity(x, b.data))
        return pl_error_set(err, PL_ENOMEM, "out of memory computing the identity of run %zu", x->run_index + 1);
    return PL_OK;
}

/* ---- checkpoints against their model ------------------------------------------------------- */

static int all_finite(const float *v, int64_t n)
{
    for (int64_t i = 0; v && i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

pl_status pl_identity_check_checkpoint(const char *path, const pl_model *got, const pl_model_spec *spec,
                                       pl_error *err)
{
    pl_model *want;
    pl_status s = pl_model_new(spec, 0, &want, err);
    if (s)
        return s;
#define DIFFER(...)                                                                                          \
    do {                                                                                                     \
        char why_[256];                                                                                      \
        snprintf(why_, sizeof why_, __VA_ARGS__);                                                            \
        s = pl_error_set(err, PL_EFORMAT,                                                                    \
                         "%s: does not match model %s (%s): %s (delete the checkpoint to train it again)",   \
                         path, spec->name, spec->file ? spec->file : "", why_);                             \
        goto out;                                                                                            \
    } while (0)
    if (strcmp(got->name, want->name))
        DIFFER("it holds model '%s'", got->name);
    if (got->in_c != want->in_c || got->in_h != want->in_h || got->in_w != want->in_w)
        DIFFER("its input is %dx%dx%d, the model's %dx%dx%d", got->in_c, got->in_h, got->in_w, want->in_c,
               want->in_h, want->in_w);
    if (got->classes != want->classes)
        DIFFER("it has %d classes, the model %d", got->classes, want->classes);
    if (got->n_layers != want->n_layers)
        DIFFER("it has %d layers, the model %d", got->n_layers, want->n_layers);
    for (int i = 0; i < want->n_layers; i++) {
        const pl_layer *a = &got->layers[i], *w = &want->layers[i];
        if (strcmp(a->name, w->name) || a->type != w->type)
            DIFFER("layer %d is %s (%s), the model's %s (%s)", i + 1, a->name, pl_layer_type_name(a->type),
                   w->name, pl_layer_type_name(w->type));
        if (a->kh != w->kh || a->kw != w->kw || a->sh != w->sh || a->sw != w->sw || a->ph != w->ph ||
            a->pw != w->pw || a->has_bias != w->has_bias || a->p != w->p || a->eps != w->eps ||
            a->momentum != w->momentum || a->pad_xb != w->pad_xb || a->pad_xr != w->pad_xr ||
            a->dil_h != w->dil_h || a->dil_w != w->dil_w || a->excl_pad != w->excl_pad || a->ch0 != w->ch0 ||
            a->ch1 != w->ch1)
            DIFFER("layer %s has other hyper-parameters", w->name);
        if (a->in_c != w->in_c || a->in_h != w->in_h || a->in_w != w->in_w || a->out_c != w->out_c ||
            a->out_h != w->out_h || a->out_w != w->out_w || a->nw != w->nw || a->nb != w->nb ||
            a->removed_units != 0)
            DIFFER("layer %s is %dx%dx%d -> %dx%dx%d with %lld weights, the model's %dx%dx%d -> %dx%dx%d with %lld",
                   w->name, a->in_c, a->in_h, a->in_w, a->out_c, a->out_h, a->out_w, (long long)a->nw, w->in_c,
                   w->in_h, w->in_w, w->out_c, w->out_h, w->out_w, (long long)w->nw);
        int bn = a->type == PL_LAYER_BATCHNORM2D;
        if (!all_finite(a->w, a->nw) || !all_finite(a->b, a->nb) ||
            (bn && (!all_finite(a->run_mean, a->in_c) || !all_finite(a->run_var, a->in_c))))
            DIFFER("layer %s holds a NaN or infinite value", w->name);
    }
#undef DIFFER
out:
    pl_model_free(want);
    return s;
}
