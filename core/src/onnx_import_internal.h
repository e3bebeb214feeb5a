/*
 * onnx_import_internal.h — what the ONNX importer's files share (not an API):
 * the values tensor names map to, the import context, and the helpers the
 * operator translators use. onnx_import.c is the driver (the graph, its
 * inputs, the public functions), onnx_import_node.c reads one node
 * (attributes, tensors, inputs, layer names, emitting a layer),
 * onnx_import_ops.c translates each operator (and the padding geometry)
 * and holds the operator table, onnx_import_doc.c writes that table as
 * docs/onnx-operators.md.
 *
 * The shared helpers keep their short names inside these files; the
 * function-like macros below give them pl__onnx_ symbols, so nothing else
 * linked with the core sees names like input() or node().
 */
#ifndef PL_ONNX_IMPORT_INTERNAL_H
#define PL_ONNX_IMPORT_INTERNAL_H

#include "onnx_import.h"

#include "onnx_pb.h"

#include <stddef.h>
#include <stdint.h>

/* Nodes one graph may have (a ResNet-152 export has about 500). */
#define MAX_NODES 65536
/* Inputs and outputs of one node. */
#define MAX_NODE_IO 4096
/* Opsets whose semantics for the operators above are known here (before
 * opset 7 some operators carry attributes that are read or refused as the
 * operators below say: consumed_inputs, is_test, broadcast). */
#define OPSET_MIN 1
#define OPSET_MAX 21

/* Room for supported_ops(): every op_type of pl__onnx_ops, comma-separated. */
#define SUPPORTED_OPS_CAP 512

/* ---- names -> values ------------------------------------------------------------ */

typedef enum vkind { V_NONE = 0, V_ACT = 1, V_CONST = 2 } vkind;

typedef struct val {
    const char *name;              /* borrowed from the proto */
    int producer;                  /* node index, -1 for initializers and graph inputs */
    int init;                      /* an initializer (or a graph input that has one) */
    int graph_input;
    int graph_output;
    int consumers;                 /* live nodes reading it (+1 when it is the graph output) */
    vkind kind;
    /* V_ACT */
    int layer;                     /* -1: the model input */
    int rank;                      /* 2 or 4 */
    int c, h, w;                   /* per image, before any pending padding */
    int ph, pw;                    /* zeros a Pad node added around h, w (for the Conv/AveragePool after it) */
    /* V_CONST */
    const Onnx__TensorProto *t;
} val;

typedef struct htab {
    const char **keys;
    int *vals;
    size_t cap;                    /* a power of two, or 0 */
} htab;

/* ---- the import ------------------------------------------------------------------ */

typedef struct ctx {
    const char *file;
    pl_error *err;
    const Onnx__GraphProto *g;
    int64_t opset;
    val *vals;
    size_t n_vals, cap_vals;
    htab names;                    /* tensor name -> index in vals */
    htab layer_names;              /* layer name -> layer index */
    char *live;                    /* [n_node] */
    pl_model_spec *spec;
    pl_spec_weights *wts;
    size_t cap_layers;
    char *from_matmul;             /* [cap_layers]: a linear made by MatMul, bias not yet seen */
    int type_count[PL_LAYER_SLICE + 1];
    int64_t budget;                /* floats the weights may still take */
    int64_t batch;                 /* the input's batch dimension, or -1 when symbolic */
    int in_c, in_h, in_w, in_rank;
    int suffix;                    /* next shared suffix of repeated layer names (layer_name) */
} ctx;

/* One operator the importer reads (pl__onnx_ops in onnx_import_ops.c, ended
 * by a NULL op_type): node() refuses it outside its opsets and otherwise
 * hands the node to `import`; docs/onnx-operators.md is written from these
 * rows (onnx_import_doc.c, `prunelab onnx-ops`). */
typedef struct op_def {
    const char *op_type;
    int min_opset;                 /* refused below it, saying what those opsets had (`older`) */
    int max_opset;                 /* refused above it; 0: up to OPSET_MAX */
    pl_status (*import)(ctx *c, int idx);
    const char *older;             /* NULL when min_opset is OPSET_MIN */
    const char *doc;               /* one line (Markdown): the prunelab layer it becomes, and the limits */
} op_def;

extern const op_def pl__onnx_ops[];

/* ---- shared helpers ---- */

#define ht_get(...) pl__onnx_ht_get(__VA_ARGS__)
#define ht_put(...) pl__onnx_ht_put(__VA_ARGS__)
#define nerr(...) pl__onnx_nerr(__VA_ARGS__)
#define oom(...) pl__onnx_oom(__VA_ARGS__)
#define op_is(...) pl__onnx_op_is(__VA_ARGS__)
#define check_attrs(...) pl__onnx_check_attrs(__VA_ARGS__)
#define attr(...) pl__onnx_attr(__VA_ARGS__)
#define attr_int(...) pl__onnx_attr_int(__VA_ARGS__)
#define attr_float(...) pl__onnx_attr_float(__VA_ARGS__)
#define attr_ints(...) pl__onnx_attr_ints(__VA_ARGS__)
#define attr_str(...) pl__onnx_attr_str(__VA_ARGS__)
#define attr_str_is(...) pl__onnx_attr_str_is(__VA_ARGS__)
#define dims_text(...) pl__onnx_dims_text(__VA_ARGS__)
#define tensor_check(...) pl__onnx_tensor_check(__VA_ARGS__)
#define tensor_floats(...) pl__onnx_tensor_floats(__VA_ARGS__)
#define tensor_ints(...) pl__onnx_tensor_ints(__VA_ARGS__)
#define tensor_scalar(...) pl__onnx_tensor_scalar(__VA_ARGS__)
#define tensor_bool(...) pl__onnx_tensor_bool(__VA_ARGS__)
#define in_name(...) pl__onnx_in_name(__VA_ARGS__)
#define input(...) pl__onnx_input(__VA_ARGS__)
#define input_act(...) pl__onnx_input_act(__VA_ARGS__)
#define input_const(...) pl__onnx_input_const(__VA_ARGS__)
#define arity(...) pl__onnx_arity(__VA_ARGS__)
#define output(...) pl__onnx_output(__VA_ARGS__)
#define alias(...) pl__onnx_alias(__VA_ARGS__)
#define shape_text(...) pl__onnx_shape_text(__VA_ARGS__)
#define sanitize(...) pl__onnx_sanitize(__VA_ARGS__)
#define emit(...) pl__onnx_emit(__VA_ARGS__)
#define init_free(...) pl__onnx_init_free(__VA_ARGS__)
#define dec_of_float(...) pl__onnx_dec_of_float(__VA_ARGS__)
#define new_spec(...) pl__onnx_new_spec(__VA_ARGS__)
#define node(...) pl__onnx_node(__VA_ARGS__)
#define supported_ops(...) pl__onnx_supported_ops(__VA_ARGS__)

/* onnx_import.c */
int ht_get(const htab *h, const char *key);
void ht_put(htab *h, const char *key, int v);
pl_status nerr(ctx *c, int idx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
pl_status oom(ctx *c);
int op_is(const Onnx__NodeProto *n, const char *op);

/* onnx_import_node.c */
pl_status check_attrs(ctx *c, int idx, const char *const *known);
const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name);
pl_status attr_int(ctx *c, int idx, const char *name, int64_t def, int64_t *out);
pl_status attr_float(ctx *c, int idx, const char *name, float def, float *out);
pl_status attr_ints(ctx *c, int idx, const char *name, size_t want, int64_t *out, int *present);
pl_status attr_str(ctx *c, int idx, const char *name, const char *def, char *v, size_t cap);
pl_status attr_str_is(ctx *c, int idx, const char *name, const char *def, const char *const *ok,
                      const char *hint);
const char *dims_text(const Onnx__TensorProto *t, char *buf, size_t cap);
pl_status tensor_check(ctx *c, int idx, const Onnx__TensorProto *t, const char *role, int type,
                       int64_t *count);
pl_status tensor_floats(ctx *c, int idx, const Onnx__TensorProto *t, int64_t n, float **out);
pl_status tensor_ints(ctx *c, int idx, const Onnx__TensorProto *t, const char *role, int64_t *v,
                      size_t max, size_t *nv);
pl_status tensor_scalar(ctx *c, int idx, const Onnx__TensorProto *t, const char *role, float *v);
pl_status tensor_bool(ctx *c, int idx, const Onnx__TensorProto *t, const char *role, int *v);
const char *in_name(const Onnx__NodeProto *n, size_t k);
val *input(ctx *c, int idx, size_t k);
val *input_act(ctx *c, int idx, size_t k, int allow_pad);
const Onnx__TensorProto *input_const(ctx *c, int idx, size_t k, const char *role);
pl_status arity(ctx *c, int idx, size_t lo, size_t hi);
val *output(ctx *c, int idx);
void alias(ctx *c, int idx, const val *x);
const char *shape_text(const val *x, char *buf, size_t cap);
void sanitize(const char *s, size_t n, char *out);
pl_status emit(ctx *c, int idx, pl_layer_spec *l, int n_in, val *const *in, pl_layer_init *init,
               const char *weight, int rank);
void init_free(pl_layer_init *li);
double dec_of_float(float f);
pl_layer_spec new_spec(pl_layer_type t);

/* onnx_import_ops.c */
pl_status node(ctx *c, int idx);
/* "Conv, BatchNormalization, ...": the op_types of pl__onnx_ops, in order
 * (cap SUPPORTED_OPS_CAP); returns buf. */
const char *supported_ops(char *buf, size_t cap);

#endif
