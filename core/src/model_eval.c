/* model_eval.c — `prunelab eval MODEL` (see model_eval.h). */
#include "model_eval.h"
#include "backend.h"
#include "checkpoint.h"
#include "config.h"
#include "fileio.h"
#include "run_internal.h"
#include "strbuf.h"
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

pl_status pl_model_file_load(const char *path, pl_model **out, pl_error *err)
{
    if (ends_with(path, ".onnx")) { /* the spec carries the weights */
        pl_model_spec *spec;
        pl_status s = pl_model_spec_load(path, &spec, err);
        if (s)
            return s;
        s = pl_model_new(spec, 1, out, err);
        pl_model_spec_free(spec);
        return s;
    }
    char *meta = NULL;
    pl_status s = pl_checkpoint_load(path, out, &meta, err);
    free(meta);
    return s;
}

/* The experiment that names the dataset: a file, or --set alone. */
static pl_status load_experiment(const pl_eval_opts *o, pl_experiment **x, pl_error *err)
{
    int names_dataset = 0;
    for (size_t i = 0; i < o->n_sets; i++)
        names_dataset |= !strncmp(o->sets[i], "dataset", 7) && (o->sets[i][7] == '.' || o->sets[i][7] == '=');
    if (!o->experiment && !names_dataset)
        return pl_error_set(err, PL_ECONFIG,
                            "%s: eval needs a dataset: give an EXPERIMENT.yaml (its dataset:) or --set "
                            "dataset.plugin=NAME --set dataset.path=DIR",
                            o->model);
    pl_config *cfg;
    pl_status s = o->experiment
                      ? pl_config_load(o->experiment, o->sets, o->n_sets, &cfg, err)
                      : pl_config_load_string("(command line)", "name: eval\nmodel: eval\n", o->sets, o->n_sets,
                                              &cfg, err);
    if (s)
        return s;
    s = pl_config_expand(cfg, 0, x, err); /* a sweep: its first run's dataset */
    pl_config_free(cfg);
    return s;
}

/* index,label,logit0,... for every test image, written atomically */
static pl_status write_logits(pl_model *m, pl_data *test, const char *path, pl_error *err)
{
    const int B = 1000;
    int64_t img = (int64_t)m->in_c * m->in_h * m->in_w;
    float *x = malloc((size_t)(img * B) * sizeof *x);
    int32_t *y = malloc((size_t)B * sizeof *y);
    pl__buf b = {0};
    pl_status s = !x || !y ? pl_error_set(err, PL_ENOMEM, "out of memory for the logits") : pl_model_reserve(m, B, err);
    pl__buf_puts(&b, "index,label");
    for (int c = 0; c < m->classes; c++)
        pl__buf_printf(&b, ",logit%d", c);
    pl__buf_puts(&b, "\n");
    for (int64_t first = 0; !s && first < test->info.count; first += B) {
        int n = (int)(test->info.count - first < B ? test->info.count - first : B);
        s = pl_data_read(test, NULL, first, n, x, y, err);
        const float *lg = s ? NULL : pl_model_forward(m, x, n, PL_MODE_EVAL, err);
        if (!s && !lg)
            s = err->code ? err->code : PL_EPLUGIN;
        for (int i = 0; !s && i < n; i++) {
            pl__buf_printf(&b, "%lld,%d", (long long)(first + i), (int)y[i]);
            for (int c = 0; c < m->classes; c++) /* %.9g: the float read back is this float */
                pl__buf_printf(&b, ",%.9g", (double)lg[(int64_t)i * m->classes + c]);
            pl__buf_puts(&b, "\n");
        }
        if (b.failed)
            s = pl_error_set(err, PL_ENOMEM, "out of memory for the logits");
    }
    if (!s)
        s = pl_write_atomic(path, b.data, b.len, err);
    pl__buf_free(&b);
    free(x);
    free(y);
    return s;
}

pl_status pl_eval_run(pl_registry *reg, const pl_eval_opts *o, pl_error *err)
{
    pl_experiment *x = NULL;
    pl_instance *be = NULL, *ds = NULL;
    pl_model *m = NULL;
    pl_data test;
    memset(&test, 0, sizeof test);
    pl_status s = load_experiment(o, &x, err);
    if (s)
        return s;
    for (size_t i = 0; i < x->n_plugin_path; i++) {
        pl_error ignored;
        pl_registry_add_path(reg, x->plugin_path[i], &ignored);
    }
    s = pl_model_file_load(o->model, &m, err);
    if (!s)
        s = pl__run_instance_new(reg, PL_KIND_BACKEND, &x->backend, x, o->threads, &be, err);
    if (!s)
        s = pl__run_instance_new(reg, PL_KIND_DATASET, &x->dataset, x, o->threads, &ds, err);
    if (!s)
        s = pl_data_open(ds, PL_SPLIT_TEST, &test, err);
    if (!s) {
        const pl_dataset_info *d = &test.info;
        if (d->channels != m->in_c || d->height != m->in_h || d->width != m->in_w || d->classes != m->classes)
            s = pl_error_set(err, PL_ECONFIG,
                             "%s: model %s takes %dx%dx%d inputs and has %d classes, but the test split of dataset "
                             "'%s' (%s) has %dx%dx%d images and %d classes (choose the dataset the model was "
                             "trained on)",
                             o->model, m->name, m->in_c, m->in_h, m->in_w, m->classes, x->dataset.plugin, x->file,
                             d->channels, d->height, d->width, d->classes);
    }
    double acc = NAN;
    if (!s) {
        pl_backend_bind(m, be);
        s = pl_evaluate(m, &test, 1000, &acc, NULL, err); /* as a run evaluates */
    }
    if (!s && o->logits_csv)
        s = write_logits(m, &test, o->logits_csv, err);
    if (!s) {
        pl_counts c;
        pl_model_count(m, &c);
        FILE *f = o->out ? o->out : stdout;
        fprintf(f, "model: %s (%s, %d layers, input %dx%dx%d, %d classes)\n", o->model, m->name, m->n_layers,
                m->in_c, m->in_h, m->in_w, m->classes);
        fprintf(f, "test accuracy: %.4f%% (%lld images)\n", acc, (long long)test.info.count);
        fprintf(f, "params: %lld (nonzero %lld)\n", (long long)c.params, (long long)c.nonzero_params);
        fprintf(f, "macs: %lld (effective %lld)\n", (long long)c.macs, (long long)c.macs_effective);
        if (o->logits_csv)
            fprintf(f, "logits: %s\n", o->logits_csv);
    }
    pl_data_close(&test);
    pl_instance_free(ds);
    pl_instance_free(be);
    pl_model_free(m);
    pl_experiment_free(x);
    return s;
}
