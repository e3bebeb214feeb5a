/*
 * bench/resnet20_step.c — a few training steps of a model on one fixed
 * batch, through prunelab's own forward, backward and Adam, for
 * bench/resnet20_step_check.py to repeat in PyTorch from the same initial
 * weights. Not part of the build: bench/resnet20_step_check.sh compiles it
 * against build/libplcore.a.
 *
 *     resnet20_step PLUGIN_DIR MODEL.yaml BACKEND SEED X.bin Y.bin N K OUT_DIR
 *
 * X.bin: N images (float32, C*H*W each, already normalised), Y.bin: N int32
 * labels. Writes to OUT_DIR: init.bin (the initial parameters, layer by
 * layer: weights, biases, then a batchnorm's running mean and variance),
 * grads1.bin (the first step's gradients in the same layout, zeros for the
 * running statistics), losses.txt ("k loss" per step), final.bin (the
 * parameters after K Adam steps, lr 1e-3, betas 0.9/0.999, eps 1e-8) and
 * logits_eval.bin (the batch in evaluation mode after the K steps).
 */
#include "config.h"
#include "model.h"
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dump(const pl_model *m, const char *dir, const char *name, int grads)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "resnet20_step: %s: cannot write\n", path);
        return 1;
    }
    for (int i = 0; i < m->n_layers; i++) {
        const pl_layer *l = &m->layers[i];
        if (l->nw)
            fwrite(grads ? l->gw : l->w, sizeof(float), (size_t)l->nw, f);
        if (l->nb)
            fwrite(grads ? l->gb : l->b, sizeof(float), (size_t)l->nb, f);
        if (l->type == PL_LAYER_BATCHNORM2D)
            for (int k = 0; k < 2; k++)
                for (int c = 0; c < l->in_c; c++) {
                    float v = grads ? 0.0f : (k ? l->run_var : l->run_mean)[c];
                    fwrite(&v, sizeof v, 1, f);
                }
    }
    return fclose(f) != 0;
}

static int read_all(const char *path, void *buf, size_t bytes)
{
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(buf, 1, bytes, f) : 0;
    if (f)
        fclose(f);
    if (got != bytes)
        fprintf(stderr, "resnet20_step: %s: expected %zu bytes\n", path, bytes);
    return got != bytes;
}

int main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: resnet20_step PLUGIN_DIR MODEL.yaml BACKEND SEED X.bin Y.bin N K OUT_DIR\n");
        return 2;
    }
    const char *out = argv[9];
    int n = atoi(argv[7]), K = atoi(argv[8]);
    pl_error err;
    pl_model_spec *spec = NULL;
    pl_model *m = NULL;
    pl_registry *r = pl_registry_new(argv[0]);
    const pl_plugin *p;
    pl_instance *be = NULL;
    static const char *const none[] = {NULL};
    if (n < 1 || K < 1 || !r || pl_registry_add_path(r, argv[1], &err) ||
        pl_model_spec_load(argv[2], &spec, &err) || pl_model_new(spec, strtoull(argv[4], NULL, 10), &m, &err) ||
        pl_registry_find(r, PL_KIND_BACKEND, argv[3], &p, &err) || pl_instance_new_kv(p, none, 1, 1, &be, &err)) {
        fprintf(stderr, "resnet20_step: %s\n", n < 1 || K < 1 || !r ? "bad arguments" : err.msg);
        return 1;
    }
    const pl_backend_ops *ops = pl_instance_ops(be);
    void *st = pl_instance_state(be);
    pl_model_bind(m, ops, st);
    int64_t img = (int64_t)m->in_c * m->in_h * m->in_w;
    float *x = malloc((size_t)(n * img) * sizeof(float)), *dl = malloc((size_t)n * m->classes * sizeof(float));
    int32_t *y = malloc((size_t)n * sizeof(int32_t));
    if (!x || !dl || !y || pl_model_reserve(m, n, &err) || pl_model_optim_reset(m, &err)) {
        fprintf(stderr, "resnet20_step: out of memory\n");
        return 1;
    }
    if (read_all(argv[5], x, (size_t)(n * img) * sizeof(float)) || read_all(argv[6], y, (size_t)n * sizeof(int32_t)) ||
        dump(m, out, "init.bin", 0))
        return 1;
    char path[4096];
    snprintf(path, sizeof path, "%s/losses.txt", out);
    FILE *lf = fopen(path, "w");
    if (!lf)
        return 1;
    for (int k = 1; k <= K; k++) {
        const float *z = pl_model_forward(m, x, n, PL_MODE_TRAIN, &err);
        double ls = 0;
        int64_t c = 0;
        if (!z || ops->softmax_xent(st, n, m->classes, z, y, 1.0f / (float)n, dl, &ls, &c) ||
            pl_model_backward(m, x, dl, n, &err)) {
            fprintf(stderr, "resnet20_step: step %d failed: %s\n", k, err.msg);
            return 1;
        }
        fprintf(lf, "%d %.9g\n", k, ls / n);
        if (k == 1 && dump(m, out, "grads1.bin", 1))
            return 1;
        for (int i = 0; i < m->n_layers; i++) {
            pl_layer *l = &m->layers[i];
            pl_adam_hparams h = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .step = k};
            if (l->nw && ops->adam_update(st, &h, l->nw, l->w, l->gw, l->opt_m_w, l->opt_v_w, l->mask))
                return 1;
            if (l->nb && ops->adam_update(st, &h, l->nb, l->b, l->gb, l->opt_m_b, l->opt_v_b, NULL))
                return 1;
        }
    }
    fclose(lf);
    const float *z = pl_model_forward(m, x, n, PL_MODE_EVAL, &err);
    snprintf(path, sizeof path, "%s/logits_eval.bin", out);
    FILE *f = z ? fopen(path, "wb") : NULL;
    if (!f || fwrite(z, sizeof(float), (size_t)n * m->classes, f) != (size_t)n * m->classes || fclose(f))
        return 1;
    if (dump(m, out, "final.bin", 0))
        return 1;
    free(x), free(dl), free(y);
    pl_model_free(m);
    pl_model_spec_free(spec);
    pl_instance_free(be);
    pl_registry_free(r);
    return 0;
}
