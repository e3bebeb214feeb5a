/*
 * config_types.h — the parts of the configuration that code outside the
 * experiment reader needs: plugin references (registry.h) and model files
 * (model.h, onnx_import.h; read by model_spec.c). config.h includes this
 * file and adds the experiment schema (pl_experiment and its sections), the
 * YAML tree and the loader; model.h and registry.h include only this.
 */
#ifndef PL_CONFIG_TYPES_H
#define PL_CONFIG_TYPES_H

#include "error.h"
#include "prunelab/plugin.h"

#include <stddef.h>

/* ---- plugin references ----------------------------------------------------- */

/* One plugin parameter as written in YAML, flattened ("normalize.mean").
 * Positions (here and in pl_plugin_ref / pl_layer_target) point at the
 * value; line 0 means "no position": a default (file = the experiment) or a
 * --set (file = "--set key=value"); print just "file: ..." then. The file
 * strings live as long as the pl_experiment. */
typedef struct pl_kv {
    char *key;
    char *value; /* scalar text */
    const char *file;
    int line, col;
} pl_kv;

/* `criterion: l1` or `criterion: {plugin: l1, k: v, ...}` */
typedef struct pl_plugin_ref {
    char *plugin;  /* name, validated [a-z0-9_]+ */
    const char *file;
    int line, col; /* position of the name (for "unknown plugin" errors) */
    pl_kv *params;
    size_t n_params;
} pl_plugin_ref;

/* ---- model files (configs/models/NAME.yaml) ------------------------------------ */

/* Inputs one layer may read (add, concat). */
#define PL_MAX_INPUTS 16

typedef struct pl_layer_spec {
    char *name;          /* unique; auto "<type><k>" when not written */
    pl_layer_type type;
    int out;             /* conv2d: out channels; linear: out features */
    int kh, kw, sh, sw, ph, pw; /* conv2d / pools; stride defaults: conv 1, pool = kernel */
    int bias;            /* conv2d/linear, default 1 */
    double p;            /* dropout probability [0,1) */
    double eps, momentum;/* batchnorm2d: 1e-5, 0.1 */
    int groups;          /* conv2d: 1 (dense) unless `groups:` */
    /* conv2d/pools imported from ONNX (0 = the symmetric default):
     * padding added below/right beyond ph/pw (may be negative), dilation
     * (0 or 1 none), avgpool2d divisor = input elements in the window */
    int pad_xb, pad_xr, dil_h, dil_w, excl_pad;
    int ch0, ch1;        /* slice: `channels: [ch0, ch1]`, half-open */
    /* `inputs:` resolved to layer indices (-1 = the model's input); n_in 0
     * when absent (the layer above). in_line/in_col locate each entry. */
    int n_in;
    int in[PL_MAX_INPUTS];
    int in_line[PL_MAX_INPUTS], in_col[PL_MAX_INPUTS];
    int line, col;
} pl_layer_spec;

/* The weights of a model read from an ONNX file (onnx_import.h). */
typedef struct pl_spec_weights pl_spec_weights;

typedef struct pl_model_spec {
    char *file;
    char *name;
    int in_c, in_h, in_w;   /* input: [c, h, w] */
    int classes;
    pl_layer_spec *layers;
    size_t n_layers;
    /* ONNX files: the file's weights per layer, which pl_model_new applies
     * after the default init; NULL for model YAML files. Owned (freed by
     * pl_model_spec_free). */
    pl_spec_weights *weights;
} pl_model_spec;

/* A path ending in ".onnx" (any case) is imported as an ONNX model
 * (onnx_import.h); anything else is read as a model YAML. */
pl_status pl_model_spec_load(const char *path, pl_model_spec **out, pl_error *err);
void pl_model_spec_free(pl_model_spec *m);

#endif
