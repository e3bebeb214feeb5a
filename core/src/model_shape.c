/* model_shape.c — the shape rule (pl_layer_dims_in: the only place that
 * derives a layer's output shape and parameter counts from its inputs'
 * shapes), the graph checks (each layer reads earlier layers, every output
 * is read) and the walk that sets every layer's shapes from the model's
 * input. */
#include "layer_general.h"
#include "model_internal.h"

#include <stdio.h>

/* a*b for non-negative a, b; 0 when the product exceeds INT64_MAX. */
static int mul_ok(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0 || (a != 0 && b > INT64_MAX / a))
        return 0;
    *out = a * b;
    return 1;
}

pl_status pl_layer_dims_of(const pl_layer *l, int c, int h, int w, pl_layer_dims *d, char *why, size_t n)
{
    const int in[1][3] = {{c, h, w}};
    return pl_layer_dims_in(l, 1, in, d, why, n);
}

pl_status pl_layer_dims_in(const pl_layer *l, int n_in, const int (*in)[3], pl_layer_dims *d, char *why,
                           size_t n)
{
    int multi = l->type == PL_LAYER_ADD || l->type == PL_LAYER_CONCAT;
    if (multi && n_in < 2) {
        snprintf(why, n, "%s needs at least two inputs (got %d)", l->type == PL_LAYER_ADD ? "add" : "concat",
                 n_in);
        return PL_ECONFIG;
    }
    if ((!multi && n_in != 1) || n_in > PL_MAX_INPUTS) {
        snprintf(why, n, "%d inputs (a %s layer reads %s)", n_in, pl_layer_type_name(l->type),
                 multi ? "at most 16" : "exactly one");
        return PL_ECONFIG;
    }
    int c = in[0][0], h = in[0][1], w = in[0][2];
    int64_t oc = c, oh = h, ow = w, nw = 0, nb = 0, ic = c;
    switch (l->type) {
    case PL_LAYER_CONV2D:
    case PL_LAYER_MAXPOOL2D:
    case PL_LAYER_AVGPOOL2D: {
        /* pads [ph, pw, ph + pad_xb, pw + pad_xr]; a dilated kernel spans (k-1)*d+1 */
        int64_t eh = (int64_t)h + 2 * (int64_t)l->ph + l->pad_xb, ew = (int64_t)w + 2 * (int64_t)l->pw + l->pad_xr;
        int64_t ekh = pl_layer_span(l->kh, l->dil_h);
        int64_t ekw = pl_layer_span(l->kw, l->dil_w);
        if (l->ph + (int64_t)l->pad_xb < 0 || l->pw + (int64_t)l->pad_xr < 0) {
            snprintf(why, n, "bottom/right padding %lld,%lld is negative", (long long)l->ph + l->pad_xb,
                     (long long)l->pw + l->pad_xr);
            return PL_ECONFIG;
        }
        oh = eh >= ekh ? (eh - ekh) / l->sh + 1 : 0;
        ow = ew >= ekw ? (ew - ekw) / l->sw + 1 : 0;
        if (oh > PL_MAX_ELEMS || ow > PL_MAX_ELEMS) {
            snprintf(why, n, "padding %d,%d is too large (padding adds that many zeros on each side; keep it "
                     "below the kernel size)", l->ph, l->pw);
            return PL_ECONFIG;
        }
        if (oh < 1 || ow < 1) {
            snprintf(why, n, "kernel %dx%d does not fit its %dx%d input (padding %d,%d); the model does not fit "
                     "the input shape", l->kh, l->kw, h, w, l->ph, l->pw);
            return PL_ECONFIG;
        }
        if (l->type != PL_LAYER_CONV2D && pl__layer_general(l)) {
            /* the host's kernels (layer_general.h): any padding below the (dilated) kernel */
            if (l->ph >= ekh || l->pw >= ekw || l->ph + (int64_t)l->pad_xb >= ekh || l->pw + (int64_t)l->pad_xr >= ekw) {
                snprintf(why, n, "pool padding %d,%d,%lld,%lld is not below the %lldx%lld kernel", l->ph, l->pw,
                         (long long)l->ph + l->pad_xb, (long long)l->pw + l->pad_xr, (long long)ekh, (long long)ekw);
                return PL_ECONFIG;
            }
        } else if (l->type != PL_LAYER_CONV2D && ((int64_t)l->ph * 2 > l->kh || (int64_t)l->pw * 2 > l->kw)) {
            snprintf(why, n, "pool padding %d,%d exceeds half the %dx%d kernel", l->ph, l->pw, l->kh, l->kw);
            return PL_ECONFIG;
        }
        if (l->type == PL_LAYER_CONV2D) {
            oc = l->out_c;
            if (l->groups < 1 || c % l->groups || oc % l->groups) {
                snprintf(why, n, "groups %d does not divide its %d input and %lld output channels (set groups "
                         "to a common divisor)", l->groups, c, (long long)oc);
                return PL_ECONFIG;
            }
            int64_t t;
            if (!mul_ok(oc, c / l->groups, &t) || !mul_ok(t, l->kh, &t) || !mul_ok(t, l->kw, &nw))
                nw = INT64_MAX; /* refused as too large below */
            nb = l->has_bias ? oc : 0;
        }
        break;
    }
    case PL_LAYER_LINEAR:
        if (h != 1 || w != 1) {
            snprintf(why, n, "input %dx%dx%d is not a vector; put a flatten layer before it", c, h, w);
            return PL_ECONFIG;
        }
        oc = l->out_c;
        nw = oc * c; /* both below 2^31 */
        nb = l->has_bias ? oc : 0;
        break;
    case PL_LAYER_FLATTEN:
        oc = (int64_t)c * h * w; /* the input passed this same check */
        oh = ow = 1;
        break;
    case PL_LAYER_BATCHNORM2D:
        nw = nb = c;
        break;
    case PL_LAYER_RELU:
    case PL_LAYER_DROPOUT:
        break;
    case PL_LAYER_GLOBAL_AVGPOOL:
        oh = ow = 1;
        break;
    case PL_LAYER_SLICE:
        if (l->ch0 < 0 || l->ch0 >= l->ch1 || l->ch1 > c) {
            snprintf(why, n, "channels [%d, %d] are not a range inside its input's %d channels (0 <= start < end "
                     "<= %d)", l->ch0, l->ch1, c, c);
            return PL_ECONFIG;
        }
        oc = l->ch1 - l->ch0;
        break;
    case PL_LAYER_ADD:
        for (int k = 1; k < n_in; k++)
            if (in[k][0] != c || in[k][1] != h || in[k][2] != w) {
                snprintf(why, n, "input %d is %dx%dx%d but input 1 is %dx%dx%d (add needs identical shapes)",
                         k + 1, in[k][0], in[k][1], in[k][2], c, h, w);
                return PL_ECONFIG;
            }
        break;
    case PL_LAYER_CONCAT:
        for (int k = 1; k < n_in; k++) {
            if (in[k][1] != h || in[k][2] != w) {
                snprintf(why, n, "input %d is %dx%d but input 1 is %dx%d (concat joins channels of equal "
                         "height and width)", k + 1, in[k][1], in[k][2], h, w);
                return PL_ECONFIG;
            }
            oc += in[k][0]; /* at most 16 terms below 2^31 */
        }
        ic = oc;
        break;
    }
    /* sizes stay far below int overflow: every activation of one image and
     * every parameter tensor must fit in PL_MAX_ELEMS floats */
    int64_t act;
    if (!mul_ok(oc, oh, &act) || !mul_ok(act, ow, &act))
        act = INT64_MAX;
    if (oc < 1) {
        snprintf(why, n, "%lld output %s", (long long)oc, l->type == PL_LAYER_LINEAR ? "units" : "channels");
        return PL_ECONFIG;
    }
    if (act > PL_MAX_ELEMS || nw > PL_MAX_ELEMS) {
        snprintf(why, n, "too large (%lld activations, %lld weights per image; the limit is %lld)",
                 (long long)act, (long long)nw, (long long)PL_MAX_ELEMS);
        return PL_ECONFIG;
    }
    *d = (pl_layer_dims){.out_c = (int)oc, .out_h = (int)oh, .out_w = (int)ow, .nw = nw, .nb = nb,
                         .in_c = (int)ic, .in_h = h, .in_w = w};
    return PL_OK;
}

int pl_model_is_chain(const pl_model *m)
{
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].n_in != 1 || m->layers[i].in[0] != i - 1)
            return 0;
    return 1;
}

pl_status pl_model_check_graph(pl_model *m, char *why, size_t n)
{
    for (int i = 0; i < m->n_layers; i++)
        m->layers[i].n_out = 0;
    for (int i = 0; i < m->n_layers; i++) {
        pl_layer *l = &m->layers[i];
        if (l->n_in < 1 || l->n_in > PL_MAX_INPUTS) {
            snprintf(why, n, "layer %s reads %d inputs (1 to %d)", l->name, l->n_in, PL_MAX_INPUTS);
            return PL_ECONFIG;
        }
        for (int k = 0; k < l->n_in; k++) {
            if (l->in[k] < -1 || l->in[k] >= i) {
                snprintf(why, n, "layer %s reads layer index %d, which is not an earlier layer", l->name,
                         l->in[k]);
                return PL_ECONFIG;
            }
            if (l->in[k] >= 0)
                m->layers[l->in[k]].n_out++;
        }
    }
    for (int i = 0; i + 1 < m->n_layers; i++)
        if (!m->layers[i].n_out) {
            snprintf(why, n, "the output of layer %s is never used", m->layers[i].name);
            return PL_ECONFIG;
        }
    return PL_OK;
}

/* The shapes of layer i's inputs (at most PL_MAX_INPUTS, checked by
 * pl_model_check_graph). */
static void input_shapes(const pl_model *m, int i, int (*sh)[3])
{
    const pl_layer *l = &m->layers[i];
    for (int k = 0; k < l->n_in; k++) {
        int j = l->in[k];
        sh[k][0] = j < 0 ? m->in_c : m->layers[j].out_c;
        sh[k][1] = j < 0 ? m->in_h : m->layers[j].out_h;
        sh[k][2] = j < 0 ? m->in_w : m->layers[j].out_w;
    }
}

/* Walks the layers from the model input, setting every in/out shape and
 * parameter count by the shape rule. With spec, errors carry the layer's
 * line and column in the model file. */
pl_status pl__model_infer_shapes(pl_model *m, const char *file, const pl_model_spec *spec, pl_error *err)
{
    int c = m->in_c, h = m->in_h, w = m->in_w;
    if (c < 1 || h < 1 || w < 1 || (int64_t)c * h * w > PL_MAX_ELEMS)
        return pl_error_set(err, PL_ECONFIG,
                            "%s: input %dx%dx%d is empty or too large (at most %lld values per "
                            "image)",
                            file, c, h, w, (long long)PL_MAX_ELEMS);
    char why[256];
    if (pl_model_check_graph(m, why, sizeof why))
        return pl_error_set(err, PL_ECONFIG, "%s: %s", file, why);
    for (int i = 0; i < m->n_layers; i++) {
        pl_layer *l = &m->layers[i];
        pl_layer_dims d;
        int sh[PL_MAX_INPUTS][3];
        input_shapes(m, i, sh);
        if (pl_layer_dims_in(l, l->n_in, (const int (*)[3])sh, &d, why, sizeof why)) {
            if (spec && (size_t)i < spec->n_layers)
                return pl_error_set(err, PL_ECONFIG, "%s:%d:%d: layer %s (%s): %s", file, spec->layers[i].line,
                                    spec->layers[i].col, l->name, pl_layer_type_name(l->type), why);
            return pl_error_set(err, PL_ECONFIG, "%s: layer %s (%s): %s", file, l->name, pl_layer_type_name(l->type),
                                why);
        }
        l->in_c = d.in_c;
        l->in_h = d.in_h;
        l->in_w = d.in_w;
        l->out_c = c = d.out_c;
        l->out_h = h = d.out_h;
        l->out_w = w = d.out_w;
        l->nw = d.nw;
        l->nb = d.nb;
    }
    if (m->n_layers == 0)
        return pl_error_set(err, PL_ECONFIG, "%s: the model has no layers", file);
    if (c * h * w != m->classes)
        return pl_error_set(err, PL_ECONFIG,
                            "%s: the last layer produces %d values per image but the model has %d "
                            "classes (set the last layer's out: to %d, or classes: to %d)",
                            file, c * h * w, m->classes, m->classes, c * h * w);
    return PL_OK;
}
