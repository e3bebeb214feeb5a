/*
 * onnx_import.h — an ONNX file as a prunelab model: `model: net.onnx`.
 *
 * pl_model_spec_load hands every path ending in ".onnx" (any case) here;
 * anything else is a model YAML. The importer maps the graph's nodes, in
 * the file's (topological) order, onto prunelab layers and returns an
 * ordinary pl_model_spec (layers, inputs, groups, input shape and class
 * count from the graph's input and output) plus the file's weights in
 * spec->weights. pl_model_new initialises as usual, then applies those
 * weights (pl_spec_weights_apply), so everything that builds a model from
 * a spec starts from the file's parameters.
 *
 *     pl_model_spec *spec;
 *     if (pl_model_spec_load("net.onnx", &spec, &err)) ...   // one line in err.msg
 *     pl_model_new(spec, seed, &m, &err);                     // the file's weights
 *
 * Operators: the table in onnx_import_ops.c (docs/onnx-operators.md is
 * written from it, pl_onnx_ops_markdown below); a BatchNormalization's
 * statistics become the running statistics, a Pad (zeros) goes into the
 * Conv or AveragePool it feeds, a Slice is a channel range.
 * Several graph inputs of equal rank and equal dimensions but the
 * channels are packed along the channels into the model's one input, in
 * graph-input order, each one a slice layer (weights->note says so).
 * Everything else, and every
 * inconsistent or oversized thing, is PL_EFORMAT with one line naming the
 * file, the node (its index, counting from 0, and name), its op type and
 * the opset, and a hint. Nothing is guessed.
 */
#ifndef PL_ONNX_IMPORT_H
#define PL_ONNX_IMPORT_H

#include "config.h"
#include "error.h"
#include "model.h"

#include <stddef.h>
#include <stdint.h>

/* Initial tensors of one layer, as the file gives them (NULL/0 = none). */
typedef struct pl_layer_init {
    float *w, *b;       /* conv [out][in/groups][kh][kw], linear [out][in]; batchnorm gamma, beta */
    int64_t nw, nb;
    float *mean, *var;  /* batchnorm running statistics */
    int64_t nstat;
} pl_layer_init;

/* The weights of an imported model (pl_model_spec.weights): one entry per
 * spec layer, and a digest of all of them for the run identity. */
struct pl_spec_weights {
    pl_layer_init *layers;
    size_t n;
    char digest[72];    /* "sha256:<64 hex>" over every tensor, in layer order */
    /* what the import did beyond mapping nodes onto layers, for `prunelab
     * validate` (graph inputs packed along the channels), or "" */
    char note[512];
};

/* 1 when path names an ONNX file (ends in ".onnx", any case). */
int pl_onnx_is_model_path(const char *path);
/* Reads and imports path (see above); PL_EIO when it cannot be read. */
pl_status pl_onnx_spec_load(const char *path, pl_model_spec **out, pl_error *err);
/* The same from bytes in memory; `what` stands for the file in messages
 * and becomes spec->file (the fuzz harness's entry point). */
pl_status pl_onnx_spec_from_bytes(const uint8_t *data, size_t len, const char *what, pl_model_spec **out,
                                  pl_error *err);
void pl_spec_weights_free(pl_spec_weights *w);
/* Copies w into the freshly built m (pl_model_new), checking every tensor's
 * size against the layer it lands in: PL_EFORMAT naming file and layer when
 * one does not fit. */
pl_status pl_spec_weights_apply(const pl_spec_weights *w, pl_model *m, const char *file, pl_error *err);

/* Every operator the importer reads as a Markdown table (opsets, the layer
 * it becomes, limits), from the importer's operator table;
 * docs/onnx-operators.md is this text (`prunelab onnx-ops`). Caller frees;
 * NULL when out of memory. */
char *pl_onnx_ops_markdown(void);

#endif
