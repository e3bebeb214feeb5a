/*
 * onnx_import_ops.c — one translator per ONNX operator for the importer
 * (onnx_import_internal.h; docs/onnx-operators.md is its table), the
 * padding geometry of Conv and the pools (explicit pads, auto_pad,
 * ceil_mode, a folded Pad), and node(), which dispatches a node by its
 * op_type through the operator table pl__onnx_ops (the one list of what
 * the importer reads: its opsets and its documentation line).
 */
#include "onnx_import_internal.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- operators ---- */

/* The padding of one axis: input size `in` (after a pending Pad), kernel
 * span ek (dilated), stride st; auto_pad mode (0 NOTSET, 1 VALID, 2
 * SAME_UPPER, 3 SAME_LOWER); b0 and b1 hold the explicit pads on entry.
 * ceil: the pool's output rounds up (folded into extra end padding, which
 * never wins a max and, with count_include_pad=0, is never counted). */
static void axis_pads(int64_t in, int64_t ek, int64_t st, int mode, int ceil, int64_t *b0, int64_t *b1)
{
    if (mode == 1) { /* VALID: ceil((in - ek + 1) / st) windows, whatever ceil_mode says */
        *b0 = *b1 = 0;
        return;
    }
    if (mode >= 2) {
        int64_t out = (in + st - 1) / st, total = (out - 1) * st + ek - in;
        if (total < 0)
            total = 0;
        *b0 = mode == 2 ? total / 2 : total - total / 2;
        *b1 = total - *b0;
        return;
    }
    int64_t span = in + *b0 + *b1 - ek;
    if (!ceil || span < 0)
        return;
    int64_t out = (span + st - 1) / st + 1;
    if ((out - 1) * st >= in + *b0) /* the last window must start inside the input or the top padding */
        out--;
    int64_t extra = (out - 1) * st + ek - (in + *b0 + *b1);
    if (extra > 0)
        *b1 += extra;
}

/* Dilations, auto_pad, pads (and for pools ceil_mode) of node idx, into l
 * (kh, kw, sh, sw already set) for input x, a pending Pad included. *padded
 * says whether the node's own padding (not a Pad node's zeros, which are
 * input elements) is anything. */
static pl_status geometry(ctx *c, int idx, const val *x, pl_layer_spec *l, int ceil, int *padded)
{
    pl_status s;
    int64_t v2[2], v4[4] = {0, 0, 0, 0};
    int has;
    if ((s = attr_ints(c, idx, "dilations", 2, v2, &has)))
        return s;
    if (has) {
        if (v2[0] < 1 || v2[1] < 1 || v2[0] > 65536 || v2[1] > 65536)
            return nerr(c, idx, "dilations [%lld, %lld] are out of range (1 to 65536)", (long long)v2[0],
                        (long long)v2[1]);
        l->dil_h = v2[0] > 1 ? (int)v2[0] : 0;
        l->dil_w = v2[1] > 1 ? (int)v2[1] : 0;
    }
    char ap[64];
    if ((s = attr_str(c, idx, "auto_pad", "NOTSET", ap, sizeof ap)))
        return s;
    static const char *const modes[] = {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER", NULL};
    int mode = 0;
    while (modes[mode] && strcmp(modes[mode], ap))
        mode++;
    if (!modes[mode])
        return nerr(c, idx, "auto_pad '%.40s' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER", ap);
    if ((s = attr_ints(c, idx, "pads", 4, v4, &has)))
        return s;
    if (has && mode != 0)
        return nerr(c, idx, "has both pads and auto_pad '%s' (ONNX allows one of them)", ap);
    for (int i = 0; i < 4; i++)
        if (v4[i] < 0 || v4[i] > 65536)
            return nerr(c, idx, "pads [%lld, %lld, %lld, %lld] are out of range (0 to 65536)", (long long)v4[0],
                        (long long)v4[1], (long long)v4[2], (long long)v4[3]);
    int64_t ekh = pl_layer_span(l->kh, l->dil_h);
    int64_t ekw = pl_layer_span(l->kw, l->dil_w);
    int64_t ih = (int64_t)x->h + 2 * x->ph, iw = (int64_t)x->w + 2 * x->pw;
    axis_pads(ih, ekh, l->sh, mode, ceil, &v4[0], &v4[2]);
    axis_pads(iw, ekw, l->sw, mode, ceil, &v4[1], &v4[3]);
    /* the bound a checkpoint accepts (each side, a pending Pad and the ceil_mode extra included), so
     * every imported model can be saved and loaded again */
    if (v4[0] + x->ph > PL_GEOM_MAX || v4[1] + x->pw > PL_GEOM_MAX || v4[2] + x->ph > PL_GEOM_MAX ||
        v4[3] + x->pw > PL_GEOM_MAX)
        return nerr(c, idx, "its padding [%lld, %lld, %lld, %lld] (auto_pad, ceil_mode and a preceding Pad "
                    "included) is above %d on a side; use a smaller padding", (long long)(v4[0] + x->ph),
                    (long long)(v4[1] + x->pw), (long long)(v4[2] + x->ph), (long long)(v4[3] + x->pw), PL_GEOM_MAX);
    l->ph = (int)(v4[0] + x->ph);
    l->pw = (int)(v4[1] + x->pw);
    l->pad_xb = (int)(v4[2] - v4[0]);
    l->pad_xr = (int)(v4[3] - v4[1]);
    *padded = v4[0] || v4[1] || v4[2] || v4[3];
    return PL_OK;
}

static pl_status op_conv(ctx *c, int idx)
{
    static const char *const known[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 2, 3)))
        return s;
    val *x = input_act(c, idx, 0, 1);
    if (!x)
        return PL_EFORMAT;
    char xs[64];
    if (x->rank != 4)
        return nerr(c, idx, "input is %s; prunelab's Conv is 2-D and needs images [N, C, H, W]",
                    shape_text(x, xs, sizeof xs));
    const Onnx__TensorProto *wt = input_const(c, idx, 1, "the weight");
    if (!wt)
        return PL_EFORMAT;
    int64_t nw, nb = 0, group, v2[2];
    int has;
    if ((s = tensor_check(c, idx, wt, "weight", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &nw)))
        return s;
    char dt[128];
    if (wt->n_dims != 4)
        return nerr(c, idx, "weight '%.60s' is %s; a 2-D convolution's weight is [out, in/group, kh, kw]",
                    wt->name ? wt->name : "", dims_text(wt, dt, sizeof dt));
    if ((s = attr_int(c, idx, "group", 1, &group)))
        return s;
    if (group < 1 || group > INT_MAX)
        return nerr(c, idx, "group %lld is not a positive int", (long long)group);
    for (int i = 0; i < 4; i++)
        if (wt->dims[i] < 1 || wt->dims[i] > INT_MAX)
            return nerr(c, idx, "weight '%.60s' is %s, an empty or oversized convolution", wt->name ? wt->name : "",
                        dims_text(wt, dt, sizeof dt));
    if ((int64_t)wt->dims[1] * group != x->c)
        return nerr(c, idx, "weight '%.60s' is %s with group %lld, which takes %lld input channels, but the input "
                            "has %d", wt->name ? wt->name : "", dims_text(wt, dt, sizeof dt), (long long)group,
                    (long long)(wt->dims[1] * group), x->c);
    pl_layer_spec l = new_spec(PL_LAYER_CONV2D);
    l.out = (int)wt->dims[0];
    l.kh = (int)wt->dims[2];
    l.kw = (int)wt->dims[3];
    l.groups = (int)group;
    if ((s = attr_ints(c, idx, "kernel_shape", 2, v2, &has)))
        return s;
    if (has && (v2[0] != l.kh || v2[1] != l.kw))
        return nerr(c, idx, "kernel_shape [%lld, %lld] does not match the weight's %dx%d", (long long)v2[0],
                    (long long)v2[1], l.kh, l.kw);
    if ((s = attr_ints(c, idx, "strides", 2, v2, &has)))
        return s;
    l.sh = l.sw = 1;
    if (has) {
        if (v2[0] < 1 || v2[1] < 1 || v2[0] > 65536 || v2[1] > 65536)
            return nerr(c, idx, "strides [%lld, %lld] are out of range (1 to 65536)", (long long)v2[0],
                        (long long)v2[1]);
        l.sh = (int)v2[0];
        l.sw = (int)v2[1];
    }
    int padded;
    if ((s = geometry(c, idx, x, &l, 0, &padded))) /* a Pad node before it included */
        return s;
    l.bias = 0;
    pl_layer_init init = {0};
    const Onnx__TensorProto *bt = NULL;
    if (*in_name(c->g->node[idx], 2)) {
        if (!(bt = input_const(c, idx, 2, "the bias")) ||
            (s = tensor_check(c, idx, bt, "bias", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &nb)))
            return bt ? s : PL_EFORMAT;
        if (bt->n_dims != 1 || nb != l.out)
            return nerr(c, idx, "bias '%.60s' is %s; expected [%d]", bt->name ? bt->name : "",
                        dims_text(bt, dt, sizeof dt), l.out);
        l.bias = 1;
    }
    if ((s = tensor_floats(c, idx, wt, nw, &init.w)))
        return s;
    init.nw = nw;
    if (bt && (s = tensor_floats(c, idx, bt, nb, &init.b))) {
        init_free(&init);
        return s;
    }
    init.nb = nb;
    val xin = *x;
    xin.ph = xin.pw = 0;
    val *ins[1] = {&xin};
    s = emit(c, idx, &l, 1, ins, &init, wt->name, 4);
    init_free(&init);
    return s;
}

/* The legacy is_test attribute of node idx (operator op): not part of op
 * since opset 7; below it, is_test=0 (what: the training behaviour) is
 * refused. hint follows "export the model in eval mode". */
static pl_status legacy_is_test(ctx *c, int idx, const char *op, const char *what, const char *hint)
{
    int64_t is_test;
    pl_status s = attr_int(c, idx, "is_test", 0, &is_test);
    if (s)
        return s;
    if (c->opset >= 7 && attr(c->g->node[idx], "is_test"))
        return nerr(c, idx, "attribute 'is_test' is not part of %s since opset 7", op);
    if (c->opset < 7 && !is_test)
        return nerr(c, idx, "is_test=0 (%s) is not supported; export the model in eval mode%s", what, hint);
    return PL_OK;
}

static pl_status op_batchnorm(ctx *c, int idx)
{
    static const char *const known[] = {"epsilon", "momentum", "spatial", "training_mode", "is_test", NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 5, 5)))
        return s;
    int64_t spatial, training;
    if ((s = legacy_is_test(c, idx, "BatchNormalization", "batch statistics, training", " (model.eval())")))
        return s;
    float eps, mom;
    if ((s = attr_int(c, idx, "spatial", 1, &spatial)) || (s = attr_int(c, idx, "training_mode", 0, &training)) ||
        (s = attr_float(c, idx, "epsilon", 1e-5f, &eps)) || (s = attr_float(c, idx, "momentum", 0.9f, &mom)))
        return s;
    if (spatial != 1)
        return nerr(c, idx, "spatial=%lld (per-position statistics) is not supported", (long long)spatial);
    if (training)
        return nerr(c, idx, "training_mode=1 (batch statistics at inference) is not supported; export the model "
                            "in eval mode (model.eval())");
    if (!(eps > 0))
        return nerr(c, idx, "epsilon %g must be > 0", (double)eps);
    if (mom < 0 || mom > 1)
        return nerr(c, idx, "momentum %g must be in [0, 1]", (double)mom);
    val *x = input_act(c, idx, 0, 0);
    if (!x)
        return PL_EFORMAT;
    static const char *const roles[4] = {"scale", "bias", "mean", "variance"};
    const Onnx__TensorProto *t[4];
    int64_t n[4];
    char dt[128];
    for (int k = 0; k < 4; k++) {
        if (!(t[k] = input_const(c, idx, (size_t)k + 1, roles[k])))
            return PL_EFORMAT;
        if ((s = tensor_check(c, idx, t[k], roles[k], ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &n[k])))
            return s;
        if (t[k]->n_dims != 1 || n[k] != x->c)
            return nerr(c, idx, "%s '%.60s' is %s; the input has %d channels", roles[k], t[k]->name ? t[k]->name : "",
                        dims_text(t[k], dt, sizeof dt), x->c);
    }
    pl_layer_spec l = new_spec(PL_LAYER_BATCHNORM2D);
    l.eps = dec_of_float(eps);
    /* ONNX: running = m*running + (1-m)*batch; prunelab (PyTorch): (1-m)*running + m*batch */
    char buf[32];
    snprintf(buf, sizeof buf, "%.15g", 1.0 - dec_of_float(mom));
    l.momentum = strtod(buf, NULL);
    pl_layer_init init = {0};
    float *v[4] = {0};
    for (int k = 0; k < 4 && !s; k++)
        s = tensor_floats(c, idx, t[k], n[k], &v[k]);
    init.w = v[0];
    init.b = v[1];
    init.mean = v[2];
    init.var = v[3];
    init.nw = init.nb = init.nstat = x->c;
    for (int64_t i = 0; !s && i < x->c; i++)
        if (!(v[3][i] >= 0) || !isfinite(v[3][i]))
            s = nerr(c, idx, "variance '%.60s' holds %g at channel %lld; a variance is finite and >= 0",
                     t[3]->name ? t[3]->name : "", (double)v[3][i], (long long)i);
    const char *wname = t[0]->name;
    if (!s)
        s = emit(c, idx, &l, 1, &x, &init, wname, x->rank);
    init_free(&init);
    return s;
}

static pl_status op_pool(ctx *c, int idx, int is_max)
{
    static const char *const kmax[] = {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads",
                                       "storage_order", "strides", NULL};
    static const char *const kavg[] = {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape",
                                       "pads", "strides", NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, is_max ? kmax : kavg)) || (s = arity(c, idx, 1, 1)))
        return s;
    val *x = input_act(c, idx, 0, !is_max);
    if (!x)
        return PL_EFORMAT;
    char xs[64];
    if (x->rank != 4)
        return nerr(c, idx, "input is %s; prunelab's pooling is 2-D and needs images [N, C, H, W]",
                    shape_text(x, xs, sizeof xs));
    int64_t v2[2], ceil_mode, cip, order;
    int has;
    pl_layer_spec l = new_spec(is_max ? PL_LAYER_MAXPOOL2D : PL_LAYER_AVGPOOL2D);
    if ((s = attr_ints(c, idx, "kernel_shape", 2, v2, &has)))
        return s;
    if (!has)
        return nerr(c, idx, "attribute 'kernel_shape' is missing (required)");
    if (v2[0] < 1 || v2[1] < 1 || v2[0] > 65536 || v2[1] > 65536)
        return nerr(c, idx, "kernel_shape [%lld, %lld] is out of range (1 to 65536)", (long long)v2[0],
                    (long long)v2[1]);
    l.kh = (int)v2[0];
    l.kw = (int)v2[1];
    if ((s = attr_ints(c, idx, "strides", 2, v2, &has)))
        return s;
    l.sh = l.sw = 1; /* ONNX's default, not the kernel */
    if (has) {
        if (v2[0] < 1 || v2[1] < 1 || v2[0] > 65536 || v2[1] > 65536)
            return nerr(c, idx, "strides [%lld, %lld] are out of range (1 to 65536)", (long long)v2[0],
                        (long long)v2[1]);
        l.sh = (int)v2[0];
        l.sw = (int)v2[1];
    }
    if (!is_max && attr(c->g->node[idx], "dilations"))
        return nerr(c, idx, "attribute 'dilations' of AveragePool is not supported (ONNX added it in opset 19)");
    if ((s = attr_int(c, idx, "ceil_mode", 0, &ceil_mode)) || (s = attr_int(c, idx, "count_include_pad", 0, &cip)) ||
        (s = attr_int(c, idx, "storage_order", 0, &order)))
        return s;
    if (order)
        return nerr(c, idx, "storage_order=1 is not supported");
    if (ceil_mode != 0 && ceil_mode != 1)
        return nerr(c, idx, "ceil_mode=%lld is neither 0 nor 1", (long long)ceil_mode);
    int padded;
    if ((s = geometry(c, idx, x, &l, (int)ceil_mode, &padded)))
        return s;
    if (!is_max && padded) {
        if (!cip && (x->ph || x->pw))
            return nerr(c, idx, "pads with count_include_pad=0 after a Pad node: the Pad's zeros count, its own "
                                "padding would not; prunelab folds a Pad only into pooling without padding of its "
                                "own (export with count_include_pad=True)");
        if (!cip) {
            l.excl_pad = 1;
        } else if (ceil_mode) {
            /* PyTorch and ONNX divide a window that overhangs the padded input by the part inside it */
            pl_layer_spec ref = l;
            if ((s = geometry(c, idx, x, &ref, 0, &padded)))
                return s;
            if (ref.pad_xb != l.pad_xb || ref.pad_xr != l.pad_xr)
                return nerr(c, idx, "ceil_mode=1 with count_include_pad=1 adds windows past the padding; prunelab "
                                    "does not import that divisor (export with ceil_mode=False or "
                                    "count_include_pad=False)");
        }
    }
    val xin = *x;
    xin.ph = xin.pw = 0;
    val *ins[1] = {&xin};
    pl_layer_init none = {0};
    return emit(c, idx, &l, 1, ins, &none, NULL, 4);
}

static pl_status op_simple(ctx *c, int idx, pl_layer_type t)
{
    static const char *const none_known[] = {NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, none_known)) || (s = arity(c, idx, 1, 1)))
        return s;
    val *x = input_act(c, idx, 0, 0);
    if (!x)
        return PL_EFORMAT;
    char xs[64];
    if (t == PL_LAYER_GLOBAL_AVGPOOL && x->rank != 4)
        return nerr(c, idx, "input is %s; prunelab's GlobalAveragePool is 2-D and needs images [N, C, H, W]",
                    shape_text(x, xs, sizeof xs));
    pl_layer_spec l = new_spec(t);
    pl_layer_init none = {0};
    return emit(c, idx, &l, 1, &x, &none, NULL, x->rank);
}

/* A linear layer from weight w (already [out][in]) and optional bias. */
static pl_status linear(ctx *c, int idx, val *x, pl_layer_init *init, int64_t out, const char *wname)
{
    pl_layer_spec l = new_spec(PL_LAYER_LINEAR);
    l.out = (int)out;
    l.bias = init->b != NULL;
    return emit(c, idx, &l, 1, &x, init, wname, 2);
}

/* Weight [K][M] (MatMul, Gemm transB=0) -> [M][K]. */
static void transpose(float *w, float *tmp, int64_t k, int64_t m)
{
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < m; j++)
            tmp[j * k + i] = w[i * m + j];
    memcpy(w, tmp, (size_t)(k * m) * sizeof *w);
}

static pl_status op_gemm_matmul(ctx *c, int idx, int gemm)
{
    static const char *const kgemm[] = {"alpha", "beta", "transA", "transB", NULL};
    static const char *const kgemm6[] = {"alpha", "beta", "transA", "transB", "broadcast", NULL}; /* opsets 1-6 */
    static const char *const kmm[] = {NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, gemm ? (c->opset < 7 ? kgemm6 : kgemm) : kmm)) ||
        (s = arity(c, idx, 2, gemm ? 3 : 2)))
        return s;
    int64_t ta = 0, tb = 0;
    float alpha = 1, beta = 1;
    if (gemm && ((s = attr_int(c, idx, "transA", 0, &ta)) || (s = attr_int(c, idx, "transB", 0, &tb)) ||
                 (s = attr_float(c, idx, "alpha", 1, &alpha)) || (s = attr_float(c, idx, "beta", 1, &beta))))
        return s;
    int has_c = gemm && *in_name(c->g->node[idx], 2);
    int64_t bcast = 1; /* before opset 7, broadcast=0 (the default) means C is exactly [M, N] */
    if (gemm && c->opset < 7 && (s = attr_int(c, idx, "broadcast", 0, &bcast)))
        return s;
    if (ta)
        return nerr(c, idx, "transA=1 is not supported (it transposes the batch axis: prunelab's input is [N, "
                            "features], one row per image)");
    val *x = input_act(c, idx, 0, 0);
    if (!x)
        return PL_EFORMAT;
    char xs[64];
    if (x->rank != 2)
        return nerr(c, idx, "input is %s; %s needs [N, features] (flatten it first: torch.flatten(x, 1))",
                    shape_text(x, xs, sizeof xs), gemm ? "Gemm" : "MatMul");
    const Onnx__TensorProto *wt = input_const(c, idx, 1, "the weight");
    if (!wt)
        return PL_EFORMAT;
    int64_t nw, nb = 0;
    char dt[128];
    if ((s = tensor_check(c, idx, wt, "weight", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &nw)))
        return s;
    if (wt->n_dims != 2 || wt->dims[0] < 1 || wt->dims[1] < 1)
        return nerr(c, idx, "weight '%.60s' is %s; expected a 2-D matrix", wt->name ? wt->name : "",
                    dims_text(wt, dt, sizeof dt));
    int64_t out = tb ? wt->dims[0] : wt->dims[1], in = tb ? wt->dims[1] : wt->dims[0];
    if (in != x->c)
        return nerr(c, idx, "weight '%.60s' is %s%s, which takes %lld features, but the input has %d",
                    wt->name ? wt->name : "", dims_text(wt, dt, sizeof dt), tb ? " (transposed)" : "",
                    (long long)in, x->c);
    if (out > INT_MAX)
        return nerr(c, idx, "%lld outputs are too many", (long long)out);
    const Onnx__TensorProto *bt = NULL;
    if (has_c) {
        if (!(bt = input_const(c, idx, 2, "the bias")) ||
            (s = tensor_check(c, idx, bt, "bias", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &nb)))
            return bt ? s : PL_EFORMAT;
        /* C broadcasts to [N, out]: [], [1], [out], [1|N, 1|out] */
        int64_t cols = bt->n_dims >= 1 ? bt->dims[bt->n_dims - 1] : 1, rows = bt->n_dims == 2 ? bt->dims[0] : 1;
        if (bt->n_dims > 2 || (cols != 1 && cols != out) || rows < 1 || nb != rows * cols)
            return nerr(c, idx, "bias '%.60s' is %s; it does not broadcast to [N, %lld]", bt->name ? bt->name : "",
                        dims_text(bt, dt, sizeof dt), (long long)out);
        if (!bcast && (bt->n_dims != 2 || cols != out))
            return nerr(c, idx, "bias '%.60s' is %s with broadcast=0, which before opset 7 needs C to be [N, %lld] "
                        "exactly; set broadcast=1 or re-export at opset 7 or later", bt->name ? bt->name : "",
                        dims_text(bt, dt, sizeof dt), (long long)out);
    }
    pl_layer_init init = {0};
    if ((s = tensor_floats(c, idx, wt, nw, &init.w)))
        return s;
    init.nw = nw;
    if (alpha != 1) /* alpha·A·B = A·(alpha·B) */
        for (int64_t i = 0; i < nw; i++)
            init.w[i] *= alpha;
    if (!tb) {
        float *tmp = malloc((size_t)nw * sizeof *tmp);
        if (!tmp) {
            init_free(&init);
            return oom(c);
        }
        transpose(init.w, tmp, in, out);
        free(tmp);
    }
    if (bt) {
        float *cv = NULL;
        if ((s = tensor_floats(c, idx, bt, nb, &cv))) {
            init_free(&init);
            return s;
        }
        int64_t cols = bt->n_dims >= 1 ? bt->dims[bt->n_dims - 1] : 1, rows = nb / cols;
        /* one bias per output: every row of C alike (a row per image would depend on the batch) */
        for (int64_t r = 1; r < rows && !s; r++)
            if (memcmp(cv + r * cols, cv, (size_t)cols * sizeof *cv))
                s = nerr(c, idx, "bias '%.60s' is %s with rows that differ; prunelab's bias is one row, the same "
                                 "for every image", bt->name ? bt->name : "", dims_text(bt, dt, sizeof dt));
        if (!s && !(init.b = malloc((size_t)out * sizeof *init.b)))
            s = oom(c);
        if (s) {
            free(cv);
            init_free(&init);
            return s;
        }
        for (int64_t j = 0; j < out; j++)
            init.b[j] = beta * cv[cols == 1 ? 0 : j];
        free(cv);
        nb = out;
    }
    for (int64_t i = 0; i < nw + nb && !s; i++)
        if (!isfinite(i < nw ? init.w[i] : init.b[i - nw]))
            s = nerr(c, idx, "alpha %g or beta %g makes a weight or bias overflow", (double)alpha, (double)beta);
    if (s) {
        init_free(&init);
        return s;
    }
    init.nb = nb;
    s = linear(c, idx, x, &init, out, wt->name);
    init_free(&init);
    if (!s && !gemm)
        c->from_matmul[c->spec->n_layers - 1] = 1;
    return s;
}

/* Add before opset 7, the constant b added to an [N, out] value: it
 * broadcasts only with broadcast=1, and only axis = 2 - rank(b) (or no
 * axis: the trailing axes) lines it up with the features, the numpy rule
 * applied here; anything else means another sum, refused. */
static pl_status legacy_broadcast(ctx *c, int idx, const val *b)
{
    if (c->opset >= 7)
        return PL_OK;
    int64_t bcast, axis, want = 2 - (int64_t)b->t->n_dims;
    pl_status s = attr_int(c, idx, "broadcast", 0, &bcast);
    if (s || (s = attr_int(c, idx, "axis", want, &axis)))
        return s;
    char dt[128];
    if (!bcast)
        return nerr(c, idx, "adds the bias '%.60s' (%s) to an [N, features] value with broadcast=0, which before "
                    "opset 7 needs equal shapes; set broadcast=1 or re-export at opset 7 or later", b->name,
                    dims_text(b->t, dt, sizeof dt));
    if (axis != want)
        return nerr(c, idx, "axis=%lld aligns the bias '%.60s' (%s) with axis %lld of its [N, features] input, not "
                    "with the features; prunelab adds it per feature (axis=%lld, or no axis)", (long long)axis,
                    b->name, dims_text(b->t, dt, sizeof dt), (long long)axis, (long long)want);
    return PL_OK;
}

/* Add: two same-shape activations, or the bias of the MatMul before it. */
static pl_status op_add(ctx *c, int idx)
{
    static const char *const known[] = {NULL};
    static const char *const known6[] = {"axis", "broadcast", NULL}; /* opsets 1-6 */
    pl_status s;
    if ((s = check_attrs(c, idx, c->opset < 7 ? known6 : known)) || (s = arity(c, idx, 2, 2)))
        return s;
    val *a = input(c, idx, 0), *b = a ? input(c, idx, 1) : NULL;
    if (!a || !b)
        return PL_EFORMAT;
    if (a->kind == V_CONST && b->kind == V_ACT) {
        val *t = a;
        a = b;
        b = t;
    }
    if (b->kind == V_CONST) {
        int k = a->kind == V_ACT ? a->layer : -1;
        if (k < 0 || !c->from_matmul[k] || a->consumers != 1 || a->ph || a->pw)
            return nerr(c, idx, "adds the constant '%.60s'; prunelab adds constants only as the bias of the MatMul "
                                "right before (use nn.Linear, or add layer outputs)", b->name);
        int64_t nb;
        char dt[128];
        int64_t out = c->spec->layers[k].out;
        if ((s = tensor_check(c, idx, b->t, "bias", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, &nb)))
            return s;
        if (nb != out || b->t->n_dims < 1 || b->t->n_dims > 2 || (b->t->n_dims == 2 && b->t->dims[0] != 1))
            return nerr(c, idx, "bias '%.60s' is %s; the MatMul before it has %lld outputs", b->name,
                        dims_text(b->t, dt, sizeof dt), (long long)out);
        if ((s = legacy_broadcast(c, idx, b)))
            return s;
        pl_layer_init *li = &c->wts->layers[k];
        if ((s = tensor_floats(c, idx, b->t, nb, &li->b)))
            return s;
        li->nb = nb;
        c->spec->layers[k].bias = 1;
        c->from_matmul[k] = 0;
        alias(c, idx, a);
        return PL_OK;
    }
    if (!(a = input_act(c, idx, 0, 0)) || !(b = input_act(c, idx, 1, 0)))
        return PL_EFORMAT;
    if (a->rank != b->rank || a->c != b->c || a->h != b->h || a->w != b->w)
        return nerr(c, idx, "adds a %dx%dx%d to a %dx%dx%d value; prunelab adds values of the same shape (no "
                            "broadcasting)", a->c, a->h, a->w, b->c, b->h, b->w);
    pl_layer_spec l = new_spec(PL_LAYER_ADD);
    val *ins[2] = {a, b};
    pl_layer_init none = {0};
    return emit(c, idx, &l, 2, ins, &none, NULL, a->rank);
}

static pl_status op_concat(ctx *c, int idx)
{
    static const char *const known[] = {"axis", NULL};
    pl_status s;
    const Onnx__NodeProto *n = c->g->node[idx];
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 1, PL_MAX_INPUTS)))
        return s;
    const Onnx__AttributeProto *ax = attr(n, "axis");
    int64_t axis;
    if (!ax && c->opset >= 4)
        return nerr(c, idx, "attribute 'axis' is missing (required)");
    if ((s = attr_int(c, idx, "axis", 1, &axis)))
        return s;
    val *ins[PL_MAX_INPUTS];
    size_t ni = n->n_input;
    while (ni > 0 && !*in_name(n, ni - 1))
        ni--;
    for (size_t k = 0; k < ni; k++)
        if (!(ins[k] = input_act(c, idx, k, 0)))
            return PL_EFORMAT;
    int rank = ins[0]->rank;
    if (axis < 0)
        axis += rank;
    if (axis != 1)
        return nerr(c, idx, "axis %lld: prunelab can concat only along the channel axis (axis 1; %s)",
                    (long long)axis, axis == 0 ? "axis 0 is the batch" : "the axes after it are spatial");
    for (size_t k = 1; k < ni; k++)
        if (ins[k]->rank != rank)
            return nerr(c, idx, "input %zu has rank %d but input 0 has rank %d", k, ins[k]->rank, rank);
    if (ni == 1) {
        alias(c, idx, ins[0]);
        return PL_OK;
    }
    pl_layer_spec l = new_spec(PL_LAYER_CONCAT);
    pl_layer_init none = {0};
    return emit(c, idx, &l, (int)ni, ins, &none, NULL, rank);
}

/* Slice (opset 10 on, which node() checks: starts, ends, axes, steps as
 * constant inputs) of a channel range: axis 1, step 1, a non-empty range
 * after ONNX's clamping (negative indices count from the end). */
static pl_status op_slice(ctx *c, int idx)
{
    static const char *const known[] = {NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 3, 5)))
        return s;
    val *x = input_act(c, idx, 0, 0);
    if (!x)
        return PL_EFORMAT;
    const Onnx__NodeProto *n = c->g->node[idx];
    const char *role[4] = {"starts", "ends", "axes", "steps"};
    int64_t v[4][4];
    size_t nv[4] = {0, 0, 0, 0};
    for (size_t k = 1; k <= 4; k++) {
        if (k >= 3 && !*in_name(n, k))
            continue;
        const Onnx__TensorProto *t = input_const(c, idx, k, role[k - 1]);
        if (!t || (s = tensor_ints(c, idx, t, role[k - 1], v[k - 1], 4, &nv[k - 1])))
            return t ? s : PL_EFORMAT;
    }
    for (int k = 0; k < 4; k++)
        if (nv[k] != 1 && (k < 2 || nv[k]))
            return nerr(c, idx, "'%s' has %zu values; prunelab slices one axis, the channels (axis 1)", role[k],
                        nv[k]);
    int64_t axis = nv[2] ? v[2][0] : 0;
    if (axis < 0)
        axis += x->rank;
    if (axis != 1)
        return nerr(c, idx, "slices axis %lld; prunelab slices only the channels (axis 1; %s)",
                    (long long)(nv[2] ? v[2][0] : 0), axis == 0 ? "axis 0 is the batch" : "the axes after it are spatial");
    if (nv[3] && v[3][0] != 1)
        return nerr(c, idx, "step %lld; prunelab takes a contiguous channel range (step 1)", (long long)v[3][0]);
    int64_t dim = x->c, a = v[0][0], b = v[1][0];
    a = a < 0 ? a + dim : a;
    b = b < 0 ? b + dim : b;
    a = a < 0 ? 0 : a > dim ? dim : a;
    b = b < 0 ? 0 : b > dim ? dim : b;
    if (a >= b)
        return nerr(c, idx, "takes channels %lld to %lld of %lld: an empty range", (long long)v[0][0],
                    (long long)v[1][0], (long long)dim);
    if (a == 0 && b == dim) {
        alias(c, idx, x);
        return PL_OK;
    }
    pl_layer_spec l = new_spec(PL_LAYER_SLICE);
    l.ch0 = (int)a;
    l.ch1 = (int)b;
    pl_layer_init none = {0};
    return emit(c, idx, &l, 1, &x, &none, NULL, x->rank);
}

/* Flatten from axis 1, or Reshape to [N, -1]: a flatten layer (an alias
 * when the value is already a vector). */
static pl_status flatten(ctx *c, int idx, val *x)
{
    if (x->rank == 2) {
        alias(c, idx, x);
        return PL_OK;
    }
    pl_layer_spec l = new_spec(PL_LAYER_FLATTEN);
    pl_layer_init none = {0};
    return emit(c, idx, &l, 1, &x, &none, NULL, 2);
}

static pl_status op_flatten(ctx *c, int idx)
{
    static const char *const known[] = {"axis", NULL};
    pl_status s;
    int64_t axis;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 1, 1)) || (s = attr_int(c, idx, "axis", 1, &axis)))
        return s;
    val *x = input_act(c, idx, 0, 0);
    if (!x)
        return PL_EFORMAT;
    if (axis < 0)
        axis += x->rank;
    if (axis != 1)
        return nerr(c, idx, "axis %lld: prunelab flattens from axis 1 (torch.flatten(x, 1))", (long long)axis);
    return flatten(c, idx, x);
}

static pl_status op_reshape(ctx *c, int idx)
{
    static const char *const known[] = {"allowzero", NULL};
    pl_status s;
    int64_t allowzero, v[8];
    size_t nv;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 2, 2)) ||
        (s = attr_int(c, idx, "allowzero", 0, &allowzero)))
        return s;
    val *x = input_act(c, idx, 0, 0);
    if (!x)
        return PL_EFORMAT;
    const Onnx__TensorProto *t = input_const(c, idx, 1, "the shape");
    if (!t || (s = tensor_ints(c, idx, t, "shape", v, 8, &nv)))
        return t ? s : PL_EFORMAT;
    int64_t f = (int64_t)x->c * x->h * x->w;
    int first_ok = nv == 2 && (v[0] == -1 || (v[0] == 0 && !allowzero) || (c->batch > 0 && v[0] == c->batch));
    int second_ok = nv == 2 && (v[1] == f || (v[1] == -1 && v[0] != -1));
    if (!first_ok || !second_ok) {
        char want[160];
        snprintf(want, sizeof want, "[");
        for (size_t i = 0; i < nv; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "", (long long)v[i]);
        snprintf(want + strlen(want), sizeof want - strlen(want), "]");
        return nerr(c, idx, "reshapes to %s; prunelab reshapes only to [N, -1], [0, -1] or [-1, %lld] (a flatten "
                            "from axis 1)", want, (long long)f);
    }
    return flatten(c, idx, x);
}

static pl_status op_identity(ctx *c, int idx)
{
    static const char *const known[] = {NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 1, 1)))
        return s;
    val *x = input(c, idx, 0);
    if (!x)
        return PL_EFORMAT;
    alias(c, idx, x);
    return PL_OK;
}

static pl_status op_dropout(ctx *c, int idx)
{
    static const char *const known[] = {"ratio", "seed", "is_test", NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 1, 3)))
        return s;
    if ((s = legacy_is_test(c, idx, "Dropout", "dropout at inference", "")))
        return s;
    float ratio = 0.5f;
    if (c->opset < 12 && (s = attr_float(c, idx, "ratio", 0.5f, &ratio)))
        return s;
    if (c->opset >= 12 && attr(c->g->node[idx], "ratio"))
        return nerr(c, idx, "attribute 'ratio' is not part of Dropout since opset 12 (it is an input)");
    const Onnx__NodeProto *n = c->g->node[idx];
    if (*in_name(n, 1)) {
        const Onnx__TensorProto *t = input_const(c, idx, 1, "the ratio");
        if (!t || (s = tensor_scalar(c, idx, t, "ratio", &ratio)))
            return t ? s : PL_EFORMAT;
    }
    if (*in_name(n, 2)) {
        const Onnx__TensorProto *t = input_const(c, idx, 2, "training_mode");
        int on = 0;
        if (!t || (s = tensor_bool(c, idx, t, "training_mode", &on)))
            return t ? s : PL_EFORMAT;
        if (on)
            return nerr(c, idx, "training_mode is true (dropout at inference); export the model in eval mode");
    }
    if (!(ratio >= 0 && ratio < 1))
        return nerr(c, idx, "ratio %g is not in [0, 1)", (double)ratio);
    val *x = input_act(c, idx, 0, 0);
    if (!x)
        return PL_EFORMAT;
    pl_layer_spec l = new_spec(PL_LAYER_DROPOUT);
    l.p = dec_of_float(ratio);
    pl_layer_init none = {0};
    return emit(c, idx, &l, 1, &x, &none, NULL, x->rank);
}

/* Pad with zeros around H and W: remembered on the value and folded into
 * the Conv or AveragePool that reads it. */
static pl_status op_pad(ctx *c, int idx)
{
    static const char *const known[] = {"mode", "pads", "value", NULL};
    static const char *const modes[] = {"constant", NULL};
    pl_status s;
    const Onnx__NodeProto *n = c->g->node[idx];
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, c->opset >= 11 ? 2 : 1, c->opset >= 11 ? 3 : 1)) ||
        (s = attr_str_is(c, idx, "mode", "constant", modes, "prunelab pads with zeros only")))
        return s;
    val *x = input_act(c, idx, 0, 1);
    if (!x)
        return PL_EFORMAT;
    int64_t p[8];
    size_t np = 0;
    float value = 0;
    if (c->opset >= 11) {
        const Onnx__TensorProto *t = input_const(c, idx, 1, "the pads");
        if (!t || (s = tensor_ints(c, idx, t, "pads", p, 8, &np)))
            return t ? s : PL_EFORMAT;
        if (*in_name(n, 2)) {
            const Onnx__TensorProto *v = input_const(c, idx, 2, "the constant value");
            if (!v || (s = tensor_scalar(c, idx, v, "constant value", &value)))
                return v ? s : PL_EFORMAT;
        }
    } else {
        const Onnx__AttributeProto *a = attr(n, "pads");
        if (!a || (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) || a->n_ints > 8)
            return nerr(c, idx, "attribute 'pads' is missing or not a list of at most 8 integers");
        np = a->n_ints;
        memcpy(p, a->ints, np * sizeof *p);
        if ((s = attr_float(c, idx, "value", 0, &value)))
            return s;
    }
    if (value != 0)
        return nerr(c, idx, "pads with %g; prunelab pads with zeros only", (double)value);
    if (x->rank != 4 || np != 8)
        return nerr(c, idx, "has %zu pads for a rank-%d input; prunelab pads images [N, C, H, W] (8 pads)", np,
                    x->rank);
    if (p[0] || p[1] || p[4] || p[5] || p[2] != p[6] || p[3] != p[7] || p[2] < 0 || p[3] < 0 || p[2] > 65536 ||
        p[3] > 65536)
        return nerr(c, idx, "pads [%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld]: prunelab pads height and width "
                            "alike on both sides (0 to 65536), never batch or channels", (long long)p[0],
                    (long long)p[1], (long long)p[2], (long long)p[3], (long long)p[4], (long long)p[5],
                    (long long)p[6], (long long)p[7]);
    alias(c, idx, x);
    val *o = output(c, idx);
    o->ph += (int)p[2];
    o->pw += (int)p[3];
    if (o->ph > 65536 || o->pw > 65536)
        return nerr(c, idx, "padding adds up to more than 65536");
    return PL_OK;
}

static pl_status op_constant(ctx *c, int idx)
{
    static const char *const known[] = {"value", NULL};
    pl_status s;
    if ((s = check_attrs(c, idx, known)) || (s = arity(c, idx, 0, 0)))
        return s;
    const Onnx__AttributeProto *a = attr(c->g->node[idx], "value");
    if (!a || (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR) || !a->t)
        return nerr(c, idx, "attribute 'value' (a tensor) is missing; prunelab reads Constant nodes holding a "
                            "tensor");
    val *o = output(c, idx);
    o->kind = V_CONST;
    o->t = a->t;
    return PL_OK;
}

static const char *op_hint(const char *op)
{
    if (!strcmp(op, "Shape") || !strcmp(op, "Gather") || !strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze"))
        return "; in PyTorch, flatten with torch.flatten(x, 1) or nn.Flatten() rather than x.view(x.size(0), -1)";
    if (!strcmp(op, "ReduceMean"))
        return "; in PyTorch, use nn.AdaptiveAvgPool2d(1) and torch.flatten(x, 1)";
    if (!strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax"))
        return "; export the logits, without the softmax";
    return "";
}

/* Operators that one translator handles with a parameter. */
static pl_status op_relu(ctx *c, int idx) { return op_simple(c, idx, PL_LAYER_RELU); }
static pl_status op_global_avgpool(ctx *c, int idx) { return op_simple(c, idx, PL_LAYER_GLOBAL_AVGPOOL); }
static pl_status op_maxpool(ctx *c, int idx) { return op_pool(c, idx, 1); }
static pl_status op_avgpool(ctx *c, int idx) { return op_pool(c, idx, 0); }
static pl_status op_gemm(ctx *c, int idx) { return op_gemm_matmul(c, idx, 1); }
static pl_status op_matmul(ctx *c, int idx) { return op_gemm_matmul(c, idx, 0); }

/* Every operator the importer reads, in the order the "supported:" lists
 * of its messages name them; docs/onnx-operators.md is written from this
 * table (onnx_import_doc.c, `prunelab onnx-ops`). */
const op_def pl__onnx_ops[] = {
    {"Conv", 1, 0, op_conv, NULL,
     "`conv2d`: 2-D, any `group` (depthwise, with a multiplier), any strides, any `pads` (also asymmetric), "
     "`auto_pad` (NOTSET, VALID, SAME_UPPER, SAME_LOWER), any `dilations`; weight and bias are initializers; 1-D "
     "and 3-D refused"},
    {"BatchNormalization", 1, 0, op_batchnorm, NULL,
     "`batchnorm2d`: inference form (`training_mode` 0 / `is_test` 1, one output); scale, bias, mean and variance "
     "are initializers; ONNX's `momentum` m becomes PyTorch's 1 − m; `training_mode` 1 / `is_test` 0 refused"},
    {"Relu", 1, 0, op_relu, NULL, "`relu`"},
    {"MaxPool", 1, 0, op_maxpool, NULL,
     "`maxpool2d`: 2-D; any `pads` below the kernel (also asymmetric), strides, `auto_pad`, `ceil_mode`, "
     "`dilations`; 1-D, 3-D, the Indices output and `storage_order` 1 refused"},
    {"AveragePool", 1, 0, op_avgpool, NULL,
     "`avgpool2d`: as MaxPool, and `count_include_pad` 0 or 1 (PyTorch's `AvgPool2d` exports 1); `dilations` "
     "(opset 19) refused; `ceil_mode` 1 with `count_include_pad` 1 refused when it adds windows past the padding "
     "(ONNX divides those by the part inside)"},
    {"GlobalAveragePool", 1, 0, op_global_avgpool, NULL, "`global_avgpool`: 2-D"},
    {"Add", 1, 0, op_add, NULL,
     "`add`: two layer outputs or graph inputs of the same shape (no broadcasting); a constant operand only as the "
     "bias of the MatMul before it; broadcasting, uint8 and float64 refused"},
    {"Concat", 1, 0, op_concat, NULL,
     "`concat`: channel axis (1, or −3 / −1 by rank) of layer outputs or graph inputs, 2 to 16 inputs; axis 0 "
     "(\"axis 0 is the batch\"), spatial axes, 1-D inputs and constant operands refused"},
    {"Flatten", 1, 0, op_flatten, NULL, "`flatten`: `axis` 1 (other axes move the batch axis: refused)"},
    {"Reshape", 1, 0, op_reshape, NULL, "`flatten`: to [N, −1], [0, −1] or [−1, C·H·W] from a constant shape"},
    {"Gemm", 1, 0, op_gemm, NULL,
     "`linear`: `alpha` (folded into the weight), `beta` (into the bias), `transA` 0; `transB` 1 (PyTorch) or 0 "
     "(transposed on import); a bias that broadcasts to [N, out] with one row for every image: [], [1], [out], "
     "[1, out], [1, 1], or [N, out] with equal rows; `transA` 1 and a bias row per image refused"},
    {"MatMul", 1, 0, op_matmul, NULL,
     "`linear`: [N, in] × a constant [in, out]; an Add of a constant [out] right after it becomes the bias; batched "
     "(3-D, 4-D) refused"},
    {"Identity", 1, 0, op_identity, NULL, "no layer: passes its input on (also of initializers)"},
    {"Dropout", 1, 0, op_dropout, NULL, "`dropout`: `ratio` as `p`; `training_mode` false; the mask output unused"},
    {"Pad", 1, 0, op_pad, NULL,
     "no layer: zeros around height and width, the same on both sides; folded into the Conv or AveragePool that "
     "reads it (PyTorch exports `AvgPool2d` as Pad + AveragePool)"},
    {"Constant", 1, 0, op_constant, NULL, "no layer: a `value` tensor (Reshape shapes, Pad amounts)"},
    {"Slice", 10, 0, op_slice, "starts/ends as attributes",
     "`slice`: constant `starts`/`ends` (one value each), `axes` [1] (or −rank+1), `steps` absent or [1]; "
     "negative and out-of-range indices clamped as ONNX does; the whole range is a pass-through; the attribute "
     "form of opsets 1–9, other axes and steps refused"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

const char *supported_ops(char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (const op_def *o = pl__onnx_ops; o->op_type && n < cap; o++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", o == pl__onnx_ops ? "" : ", ", o->op_type);
    return buf;
}

pl_status node(ctx *c, int idx)
{
    const Onnx__NodeProto *n = c->g->node[idx];
    char ops[SUPPORTED_OPS_CAP];
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))
        return nerr(c, idx, "operator domain '%.60s' is not supported (prunelab reads the standard ai.onnx "
                            "operators: %s)", n->domain, supported_ops(ops, sizeof ops));
    for (const op_def *o = pl__onnx_ops; o->op_type; o++) {
        if (!op_is(n, o->op_type))
            continue;
        if (c->opset < o->min_opset)
            return nerr(c, idx, "%s before opset %d (%s) is not supported; export with opset_version=13",
                        o->op_type, o->min_opset, o->older ? o->older : "an older form");
        if (o->max_opset && c->opset > o->max_opset)
            return nerr(c, idx, "%s after opset %d is not supported; export with opset_version=13", o->op_type,
                        o->max_opset);
        return o->import(c, idx);
    }
    return nerr(c, idx, "operator not supported by prunelab (supported: %s)%s", supported_ops(ops, sizeof ops),
                op_hint(n->op_type ? n->op_type : ""));
}
