/*
 * model.h — a network built from a model file: layers, shapes, parameters,
 * activations, forward and backward through a backend.
 *
 * The model is a sequence of layers (the declared graph). Each layer knows
 * its per-image input and output shape [c, h, w]. Parameters, gradients,
 * optimizer state and masks live in the layer beside each other; activation
 * buffers are sized for `batch_cap` images and allocated once
 * (pl_model_reserve), never inside the training loop.
 *
 *     pl_model *m;
 *     pl_model_new(spec, seed, &m, &err);     // PyTorch default init
 *     pl_model_bind(m, backend_ops, backend_state);
 *     pl_model_reserve(m, 64, &err);
 *     const float *logits = pl_model_forward(m, x, n, PL_MODE_TRAIN, &err);
 *     pl_model_backward(m, x, dlogits, n, &err);   // fills layer grads
 *     pl_model_free(m);
 *
 * The model is a directed acyclic graph: each layer reads the outputs of
 * earlier layers (in[]), by default the one above (a chain). Chains run
 * through ping-pong gradient buffers; other graphs keep one gradient
 * buffer per layer and accumulate where an output feeds several layers.
 *
 * Counting conventions (docs/design.md, a contract): params = weights + biases +
 * batchnorm affine parameters; MACs = conv Cout*Hout*Wout*(Cin/groups)*kh*kw +
 * linear in*out per image; effective MACs count only unmasked weights
 * (add, concat and slice move data: no parameters, 0 MACs).
 */
#ifndef PL_MODEL_H
#define PL_MODEL_H

#include "config_types.h"
#include "error.h"
#include "prunelab/plugin.h"

#include <stdint.h>
#include <stdio.h>

typedef enum pl_mode { PL_MODE_EVAL = 0, PL_MODE_TRAIN = 1 } pl_mode;

typedef struct pl_layer {
    char name[64];
    pl_layer_type type;
    /* hyper-parameters (from the spec) */
    int kh, kw, sh, sw, ph, pw;
    int has_bias;
    int groups;               /* conv2d: 1 dense, in_c = out_c = groups depthwise */
    /* conv2d/pools, as ONNX states them (all 0 = the symmetric layer above):
     * pad_xb/pad_xr rows/columns of padding below/right beyond ph/pw (may be
     * negative: pads [t, l, b, r] = [ph, pw, ph + pad_xb, pw + pad_xr]);
     * dil_h/dil_w the dilation (0 or 1 = none); excl_pad: avgpool2d divides by
     * the input elements in the window (count_include_pad=0). Such a layer
     * runs on the host's general kernels (layer_general.h). */
    int pad_xb, pad_xr, dil_h, dil_w, excl_pad;
    /* slice: its output is channels [ch0, ch1) of its one input (0, 0 otherwise) */
    int ch0, ch1;
    /* graph: the layers this one reads (indices of earlier layers, -1 for
     * the model's input), in the order of the model file's `inputs:`.
     * A chain layer has n_in == 1 and in[0] == its index - 1. */
    int n_in;
    int in[PL_MAX_INPUTS];
    int n_out;                /* layers reading this one's output (set by reserve/infer) */
    double p;                 /* dropout */
    double eps, momentum;     /* batchnorm */
    /* per-image shapes */
    int in_c, in_h, in_w;
    int out_c, out_h, out_w;
    /* parameters: conv w[out_c][in_c][kh][kw]; linear w[out][in];
     * batchnorm w = gamma[c], b = beta[c]. NULL when the layer has none. */
    float *w, *b;
    int64_t nw, nb;
    float *gw, *gb;           /* gradients, same sizes */
    float *mask;              /* weight mask (1 keep, 0 pruned) or NULL */
    float *opt_m_w, *opt_v_w, *opt_m_b, *opt_v_b; /* optimizer state or NULL */
    float *run_mean, *run_var;/* batchnorm running statistics [c] */
    /* activations for the current batch (batch_cap images) */
    float *out;               /* output; for flatten an alias of the input */
    int32_t *argmax;          /* maxpool winners */
    float *aux;               /* batchnorm x-hat / dropout keep-scale */
    float *bn_mean, *bn_invstd; /* batchnorm batch statistics [c] */
    float *grad;              /* graph models: ∂L/∂out, made by the first backward (NULL for chains) */
    int grad_state;           /* backward bookkeeping: 0 unwritten, 1 written, 2 done by a fusion */
    /* pruning bookkeeping */
    int orig_units;           /* out_c at construction (before surgery) */
    int removed_units;        /* structurally removed so far */
    /* linear: sparse copy of the weights for evaluation (model_csr.c), or NULL */
    struct pl__csr_cache *csr;
} pl_layer;

typedef struct pl_model {
    char name[64];
    int in_c, in_h, in_w, classes;
    pl_layer *layers;
    int n_layers;
    int batch_cap;            /* images the activation buffers hold */
    float *grad_a, *grad_b;   /* ping-pong buffers for activation gradients */
    int64_t grad_cap;         /* floats in each */
    float *gscratch;          /* grouped conv without grouped kernels: one group's x and y */
    int graph_grad_n;         /* images the layers' grad buffers hold (graphs; 0 = none yet) */
    float *arena;             /* pl_model_infer: activation buffers shared by liveness */
    int64_t arena_cap;        /* floats in it */
    int infer_chunk;          /* pl_model_infer's images per chunk; 0 = sized to stay in cache */
    double *prof;             /* NULL, or the caller's 2 x n_layers seconds, added to by every
                               * forward [0, n) and backward [n, 2n) per layer (a fused pass
                               * counts to its first layer, a ReLU's backward fused into its
                               * batchnorm's to the batchnorm) */
    const pl_backend_ops *be;
    void *be_state;
    struct pl_instance *be_inst; /* bound by pl_backend_bind: whose error messages a failed kernel carries (or NULL) */
    uint64_t dropout_calls;   /* advances the dropout stream deterministically */
    uint64_t seed;
} pl_model;

/* Every activation of one image and every parameter tensor must fit in
 * this many floats (1 GiB): sizes stay far from int overflow. */
#define PL_MAX_ELEMS ((int64_t)1 << 28)

/* The largest kernel, stride, dilation and padding (per side) a model file,
 * an ONNX graph or a checkpoint may state: the kernels' index math
 * (o*stride - pad + k*dilation) then stays far from int overflow. */
#define PL_GEOM_MAX 65536

/* 1 when padding [ph, pw, ph + xb, pw + xr] pads any side. count_include_pad
 * =0 (excl_pad) means nothing without it and is stored as 0 then, so the
 * same maths keeps the same checkpoint format and model digest. */
static inline int pl_layer_padded(int ph, int pw, int xb, int xr)
{
    return ph || pw || (int64_t)ph + xb || (int64_t)pw + xr;
}
/* A stored dilation (0 or 1 both mean none) as the factor it applies. */
static inline int pl_layer_dil(int d) { return d > 1 ? d : 1; }
/* The input extent a kernel of k taps with dilation d covers: (k-1)*d + 1. */
static inline int64_t pl_layer_span(int k, int d) { return (int64_t)(k - 1) * pl_layer_dil(d) + 1; }

/* ---- the shape rule: the one place that knows how a layer's output shape
 * and parameter counts follow from its input ---- */
typedef struct pl_layer_dims {
    int out_c, out_h, out_w;
    int64_t nw, nb;           /* weights, biases (batchnorm: gamma, beta) */
    int in_c, in_h, in_w;     /* the layer's input shape (concat: the total channels) */
} pl_layer_dims;
/* Given l's type and hyper-parameters (kh, kw, sh, sw, ph, pw, has_bias,
 * and out_c for conv2d/linear) and a per-image input c×h×w, computes the
 * output shape and parameter counts into *d. PL_ECONFIG when the layer
 * cannot take that input or exceeds PL_MAX_ELEMS, with the reason as one
 * phrase in why ("kernel 5x5 does not fit its 3x3 input ...", "too
 * large (...)"); callers prefix the layer. Used by model construction,
 * reshaping after surgery and checkpoint validation. */
pl_status pl_layer_dims_of(const pl_layer *l, int c, int h, int w, pl_layer_dims *d, char *why, size_t n);
/* The same for a layer reading n_in inputs of shapes in[k] = {c, h, w}
 * (add: identical shapes; concat: equal h×w, channels summed; slice:
 * channels [ch0, ch1) inside its input's; every other type exactly one
 * input). pl_layer_dims_of is this with one input. */
pl_status pl_layer_dims_in(const pl_layer *l, int n_in, const int (*in)[3], pl_layer_dims *d, char *why,
                           size_t n);
/* 1 when every layer reads exactly the layer before it (layer 0 the input). */
int pl_model_is_chain(const pl_model *m);
/* Checks every layer's graph fields (n_in in range, in[] naming earlier
 * layers or -1, every output but the last read by some layer) and sets
 * every n_out; PL_ECONFIG with a one-phrase reason naming the layer. */
pl_status pl_model_check_graph(pl_model *m, char *why, size_t n);

/* Builds the model, infers and checks shapes (errors name the model file
 * and layer position), initialises parameters like PyTorch (weights and
 * biases uniform in ±1/sqrt(fan_in), batchnorm gamma 1, beta 0) from the
 * RNG stream "init:<layer>" of `seed`. */
pl_status pl_model_new(const pl_model_spec *spec, uint64_t seed, pl_model **out, pl_error *err);
void pl_model_free(pl_model *m);
/* (Re)allocates the layer's gradient buffers at its current nw/nb (zeroed)
 * and drops its optimizer state: what surgery and checkpoint loading need
 * after parameter counts change. PL_ENOMEM leaves the layer freeable. */
pl_status pl_layer_scratch_reset(pl_layer *l);
/* Frees everything one layer owns (parameters, gradients, mask, optimizer
 * state, activations, CSR copy); the pl_layer itself is the caller's. */
void pl_layer_free(pl_layer *l);
/* A deep copy of parameters, masks and stats (not activations/optimizer). */
pl_status pl_model_clone(const pl_model *m, pl_model **out, pl_error *err);
void pl_model_bind(pl_model *m, const pl_backend_ops *be, void *be_state);
/* Ensures activation buffers for `batch` images (reallocates only when the
 * capacity or shapes changed). */
pl_status pl_model_reserve(pl_model *m, int batch, pl_error *err);
/* Recomputes shapes after surgery; frees activation buffers (reserve again). */
pl_status pl_model_reshape(pl_model *m, pl_error *err);

/* Forward over n <= batch_cap images x[n][in_c][in_h][in_w]; returns the
 * logits buffer [n][classes] (owned by the model) or NULL on error. */
const float *pl_model_forward(pl_model *m, const float *x, int n, pl_mode mode, pl_error *err);
/* An EVAL forward when only the logits are needed: the layers' outputs go
 * to a few buffers shared by liveness (one is reused once every layer
 * reading it has run), so memory grows with the widest few layers, not the
 * depth, and the images run in chunks whose buffers stay in cache (a few
 * MiB). The logits are those of pl_model_forward bit for bit when the
 * backend computes each image the same whatever the batch (ref and simd
 * do: tests/core/test_layers.c). Intermediate outputs are not kept; the
 * logits stay valid until the next forward or infer. */
const float *pl_model_infer(pl_model *m, const float *x, int n, pl_error *err);
/* Backward after a TRAIN forward of the same x: writes every layer's gw/gb. */
pl_status pl_model_backward(pl_model *m, const float *x, const float *dlogits, int n, pl_error *err);

/* Optimizer state: allocates zeroed m/v buffers for every parameter. */
pl_status pl_model_optim_reset(pl_model *m, pl_error *err);

/* Indices of prunable layers (conv2d and linear, except the output layer). */
int pl_model_is_prunable(const pl_model *m, int layer);
int pl_model_find(const pl_model *m, const char *name); /* -1 if absent */
int pl_model_output_layer(const pl_model *m);           /* last linear/conv */

/* ---- counting (contract) ---- */
typedef struct pl_counts {
    int64_t params;           /* physical */
    int64_t nonzero_params;   /* unmasked (biases/bn always count) */
    int64_t macs;             /* dense MACs per image of the current shapes */
    int64_t macs_effective;   /* only unmasked weights */
} pl_counts;
void pl_model_count(const pl_model *m, pl_counts *c);
/* The same for one layer. */
void pl_layer_count(const pl_layer *l, pl_counts *c);
const char *pl_layer_type_name(pl_layer_type t);
/* Prints the shape table (layer, type, output shape, params, MACs). */
void pl_model_print(const pl_model *m, FILE *f);

#endif
