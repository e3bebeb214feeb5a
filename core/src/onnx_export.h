/*
 * onnx_export.h — a model (a checkpoint) as an opset-13 ONNX file.
 *
 * The file holds the physically pruned network as it is: removed channels,
 * neurons and layers are gone, weights masked by unstructured pruning are
 * written as zeros. Batch dimension symbolic ("N"), input `input`
 * [N, C, H, W], output `logits` [N, classes], every parameter an
 * initializer named after its layer (`conv1.weight`, `bn1.running_mean`,
 * ...), every node named after its layer. Layer mapping: conv2d → Conv,
 * linear → Gemm (transB = 1; a Flatten first when its input is 4-D),
 * relu → Relu, maxpool2d → MaxPool, avgpool2d → AveragePool
 * (count_include_pad = 1: prunelab divides by the whole kernel), flatten →
 * Flatten (axis 1), dropout → nothing (evaluation), batchnorm2d →
 * BatchNormalization (momentum in ONNX's convention, 1 - prunelab's), add →
 * a chain of binary Adds, concat → Concat (axis 1), global_avgpool →
 * GlobalAveragePool, slice → Slice (opset-13 form: starts, ends and axes
 * = [1] as INT64 initializers `<layer>.starts` ...; a packed multi-input
 * import exports as its one packed input and these Slice nodes).
 *
 * With fold_bn a batchnorm that reads a conv whose output nothing else reads
 * is folded into that conv (W·γ/√(var+ε), (b−μ)·γ/√(var+ε)+β); any other
 * batchnorm stays a BatchNormalization node.
 *
 *     pl_onnx_export_stats st;
 *     if (pl_onnx_export_checkpoint("models/ab12.ckpt", "net.onnx", 1, &st, &err)) ... // one line
 */
#ifndef PL_ONNX_EXPORT_H
#define PL_ONNX_EXPORT_H

#include "error.h"
#include "model.h"

#include <stdint.h>

typedef struct pl_onnx_export_stats {
    int nodes;               /* graph nodes written */
    int initializers;        /* parameter tensors written */
    int folded;              /* batchnorms folded into their conv */
    int64_t floats;          /* parameter values written */
    int64_t zeros_masked;    /* weights written as zero because masked */
} pl_onnx_export_stats;

/* Writes m as ONNX to `path` atomically (nothing is left behind on error).
 * `source` (may be NULL) is recorded in the graph's doc_string. st may be
 * NULL. Errors: PL_EINVAL (a model ONNX cannot express), PL_EIO, PL_ENOMEM. */
pl_status pl_onnx_export_model(const pl_model *m, const char *path, int fold_bn, const char *source,
                               pl_onnx_export_stats *st, pl_error *err);

/* Loads checkpoint `ckpt` (pl_checkpoint_load) and exports it to `path`. */
pl_status pl_onnx_export_checkpoint(const char *ckpt, const char *path, int fold_bn, pl_onnx_export_stats *st,
                                    pl_error *err);

#endif
