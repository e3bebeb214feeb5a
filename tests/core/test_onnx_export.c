/*
 * onnx_export.c: the graph it writes for a small model with every mapping
 * that needs care (biased conv + batchnorm, avgpool with padding, a
 * depthwise conv, an add, global pooling, dropout, a linear reading a 4-D
 * tensor), read back with pl_onnx_read: ops, attributes (count_include_pad,
 * group, ONNX's momentum = 1 - prunelab's), names, shapes, masked weights as
 * zeros, and --fold-bn's arithmetic. The numerical check against a real
 * runtime is tests/cli/test_onnx_export.sh.
 */
#include "checkpoint.h"
#include "model.h"
#include "onnx_export.h"
#include "onnx_pb.h"
#include "pltest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char model_text[] =
    "name: t\ninput: [2, 6, 6]\nclasses: 3\nlayers:\n"
    "  - {name: c1, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
    "  - {name: b1, type: batchnorm2d}\n"
    "  - {name: r1, type: relu}\n"
    "  - {name: p1, type: avgpool2d, kernel: 3, stride: 2, padding: 1}\n"
    "  - {name: dw, type: conv2d, out: 4, kernel: 3, padding: 1, groups: 4, bias: false}\n"
    "  - {name: b2, type: batchnorm2d}\n"
    "  - {name: s, type: add, inputs: [b2, p1]}\n"
    "  - {name: g, type: global_avgpool}\n"
    "  - {name: drop, type: dropout, p: 0.5}\n"
    "  - {name: fc, type: linear, out: 3}\n";

static pl_model *build(void)
{
    pl_model *m = pltest_model(model_text, 1);
    for (int i = 0; i < m->n_layers; i++) { /* statistics that are not the defaults */
        pl_layer *l = &m->layers[i];
        if (l->type != PL_LAYER_BATCHNORM2D)
            continue;
        for (int c = 0; c < l->in_c; c++) {
            l->w[c] = 0.5f + 0.25f * (float)c;
            l->b[c] = 0.125f * (float)c - 0.1f;
            l->run_mean[c] = 0.3f - 0.1f * (float)c;
            l->run_var[c] = 1.5f + (float)c;
        }
    }
    return m;
}

static Onnx__ModelProto *export_read(const pl_model *m, int fold, pl_onnx_export_stats *st)
{
    char *path = pltest_write_temp("", ".onnx");
    pl_error err = {0};
    cr_assert_eq(pl_onnx_export_model(m, path, fold, "test", st, &err), PL_OK, "%s", err.msg);
    Onnx__ModelProto *mp = NULL;
    cr_assert_eq(pl_onnx_read(path, &mp, &err), PL_OK, "%s", err.msg);
    unlink(path);
    free(path);
    return mp;
}

static const Onnx__NodeProto *node(const Onnx__ModelProto *mp, const char *name)
{
    for (size_t i = 0; i < mp->graph->n_node; i++)
        if (!strcmp(mp->graph->node[i]->name, name))
            return mp->graph->node[i];
    return NULL;
}

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; n && i < n->n_attribute; i++)
        if (!strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

static const Onnx__TensorProto *init(const Onnx__ModelProto *mp, const char *name)
{
    for (size_t i = 0; i < mp->graph->n_initializer; i++)
        if (!strcmp(mp->graph->initializer[i]->name, name))
            return mp->graph->initializer[i];
    return NULL;
}

static float value(const Onnx__TensorProto *t, size_t i)
{
    cr_assert(t && t->has_raw_data && (i + 1) * 4 <= t->raw_data.len);
    const uint8_t *b = t->raw_data.data + 4 * i;
    uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

Test(onnx_export, graph_contract)
{
    pl_model *m = build();
    pl_onnx_export_stats st;
    Onnx__ModelProto *mp = export_read(m, 0, &st);
    cr_assert_eq(mp->ir_version, 7);
    cr_assert_eq(mp->n_opset_import, 1);
    cr_assert_eq(mp->opset_import[0]->version, 13);
    cr_assert_str_eq(mp->producer_name, "prunelab");
    const Onnx__GraphProto *g = mp->graph;
    cr_assert_eq(g->n_input, 1);
    cr_assert_str_eq(g->input[0]->name, "input");
    const Onnx__TensorShapeProto *is = g->input[0]->type->tensor_type->shape;
    cr_assert_eq(is->n_dim, 4);
    cr_assert_str_eq(is->dim[0]->dim_param, "N");
    cr_assert_eq(is->dim[1]->dim_value, 2);
    cr_assert_eq(is->dim[3]->dim_value, 6);
    cr_assert_str_eq(g->output[0]->name, "logits");
    const Onnx__TensorShapeProto *os = g->output[0]->type->tensor_type->shape;
    cr_assert_eq(os->n_dim, 2);
    cr_assert_eq(os->dim[1]->dim_value, 3);
    /* the nodes, in order; dropout is gone, fc reads a flattened tensor */
    static const char *const ops[][2] = {{"c1", "Conv"}, {"b1", "BatchNormalization"}, {"r1", "Relu"},
                                         {"p1", "AveragePool"}, {"dw", "Conv"}, {"b2", "BatchNormalization"},
                                         {"s", "Add"}, {"g", "GlobalAveragePool"}, {"fc.flatten", "Flatten"},
                                         {"fc", "Gemm"}};
    cr_assert_eq(g->n_node, 10);
    for (size_t i = 0; i < 10; i++) {
        cr_assert_str_eq(g->node[i]->name, ops[i][0]);
        cr_assert_str_eq(g->node[i]->op_type, ops[i][1]);
    }
    cr_assert_eq(st.nodes, 10);
    cr_assert_str_eq(node(mp, "fc")->output[0], "logits");
    cr_assert_str_eq(node(mp, "fc.flatten")->input[0], "g"); /* dropout passed g through */
    cr_assert_str_eq(node(mp, "s")->input[0], "b2");
    cr_assert_str_eq(node(mp, "s")->input[1], "p1");
    cr_assert_str_eq(node(mp, "c1")->input[0], "input");
    /* attributes */
    cr_assert_eq(attr(node(mp, "p1"), "count_include_pad")->i, 1);
    cr_assert_eq(attr(node(mp, "p1"), "pads")->n_ints, 4);
    cr_assert_eq(attr(node(mp, "p1"), "strides")->ints[0], 2);
    cr_assert_eq(attr(node(mp, "dw"), "group")->i, 4);
    cr_assert_eq(attr(node(mp, "c1"), "group")->i, 1);
    cr_assert_eq(attr(node(mp, "fc"), "transB")->i, 1);
    cr_assert_float_eq(attr(node(mp, "b1"), "momentum")->f, 0.9f, 1e-7); /* 1 - 0.1 */
    cr_assert_float_eq(attr(node(mp, "b1"), "epsilon")->f, 1e-5f, 1e-12);
    /* initializers: named after the layers, with the layers' shapes */
    const Onnx__TensorProto *w = init(mp, "dw.weight");
    cr_assert_not_null(w);
    cr_assert_eq(w->n_dims, 4);
    cr_assert_eq(w->dims[0], 4);
    cr_assert_eq(w->dims[1], 1); /* depthwise: in_c / groups */
    cr_assert_null(init(mp, "dw.bias"));
    cr_assert_not_null(init(mp, "b2.running_var"));
    cr_assert_eq(init(mp, "fc.weight")->dims[1], 4);
    cr_assert_float_eq(value(init(mp, "b1.running_var"), 1), 2.5f, 0);
    cr_assert_float_eq(value(init(mp, "c1.weight"), 5), m->layers[0].w[5], 0);
    pl_onnx_free(mp);
    pl_model_free(m);
}

Test(onnx_export, masked_weights_are_zeros)
{
    pl_model *m = build();
    pl_layer *c1 = &m->layers[0];
    c1->mask = calloc((size_t)c1->nw, sizeof *c1->mask);
    cr_assert_not_null(c1->mask);
    for (int64_t i = 0; i < c1->nw; i++)
        c1->mask[i] = i % 3 ? 1.0f : 0.0f; /* the weights themselves stay nonzero */
    pl_onnx_export_stats st;
    Onnx__ModelProto *mp = export_read(m, 0, &st);
    const Onnx__TensorProto *w = init(mp, "c1.weight");
    int64_t zeros = 0;
    for (int64_t i = 0; i < c1->nw; i++) {
        float v = value(w, (size_t)i);
        if (i % 3 == 0) {
            cr_assert(v == 0.0f && !signbit(v), "weight %lld: %g", (long long)i, v);
            zeros++;
        } else {
            cr_assert_float_eq(v, c1->w[i], 0);
        }
    }
    cr_assert_eq(st.zeros_masked, zeros);
    pl_onnx_free(mp);
    pl_model_free(m);
}

Test(onnx_export, fold_bn)
{
    pl_model *m = build();
    pl_onnx_export_stats st;
    Onnx__ModelProto *mp = export_read(m, 1, &st);
    cr_assert_eq(st.folded, 2);
    cr_assert_null(node(mp, "b1"));
    cr_assert_null(node(mp, "b2"));
    cr_assert_null(init(mp, "b1.running_mean"));
    /* the folded conv's output keeps the batchnorm's name: the add still reads b2 */
    cr_assert_str_eq(node(mp, "dw")->output[0], "b2");
    cr_assert_str_eq(node(mp, "s")->input[0], "b2");
    cr_assert_str_eq(node(mp, "r1")->input[0], "b1");
    const pl_layer *c1 = &m->layers[0], *b1 = &m->layers[1], *dw = &m->layers[4], *b2 = &m->layers[5];
    int64_t per = c1->nw / c1->out_c;
    for (int o = 0; o < c1->out_c; o++) {
        double sc = b1->w[o] / sqrt((double)b1->run_var[o] + b1->eps);
        cr_assert_float_eq(value(init(mp, "c1.weight"), (size_t)(o * per)), (float)(c1->w[o * per] * sc), 1e-6);
        cr_assert_float_eq(value(init(mp, "c1.bias"), (size_t)o),
                           (float)((c1->b[o] - b1->run_mean[o]) * sc + b1->b[o]), 1e-6);
        double sc2 = b2->w[o] / sqrt((double)b2->run_var[o] + b2->eps);
        /* dw had no bias: it gets one */
        cr_assert_float_eq(value(init(mp, "dw.bias"), (size_t)o), (float)(-b2->run_mean[o] * sc2 + b2->b[o]), 1e-6);
        (void)dw;
    }
    cr_assert_eq(node(mp, "dw")->n_input, 3);
    pl_onnx_free(mp);
    pl_model_free(m);
}

/* a conv whose output is read twice keeps its batchnorm node */
Test(onnx_export, fold_bn_only_when_nothing_else_reads_the_conv)
{
    static const char text[] = "name: t2\ninput: [1, 4, 4]\nclasses: 2\nlayers:\n"
                               "  - {name: c, type: conv2d, out: 2, kernel: 1}\n"
                               "  - {name: bn, type: batchnorm2d}\n"
                               "  - {name: s, type: add, inputs: [bn, c]}\n"
                               "  - {name: f, type: flatten}\n"
                               "  - {name: fc, type: linear, out: 2}\n";
    pl_model *m = pltest_model(text, 1);
    pl_onnx_export_stats st;
    Onnx__ModelProto *mp = export_read(m, 1, &st);
    cr_assert_eq(st.folded, 0);
    cr_assert_not_null(node(mp, "bn"));
    cr_assert_str_eq(node(mp, "fc")->input[0], "f"); /* a flatten before: no extra one */
    pl_onnx_free(mp);
    pl_model_free(m);
}

Test(onnx_export, errors_name_the_file_and_leave_nothing)
{
    pl_model *m = build();
    pl_error err = {0};
    char *dir = pltest_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/no/such/x.onnx", dir);
    cr_assert_neq(pl_onnx_export_model(m, path, 0, NULL, NULL, &err), PL_OK);
    cr_assert(strstr(err.msg, "x.onnx"), "%s", err.msg);
    cr_assert(!strchr(err.msg, '\n'));
    snprintf(path, sizeof path, "%s/missing.ckpt", dir);
    char out[4200];
    snprintf(out, sizeof out, "%s/y.onnx", dir);
    cr_assert_neq(pl_onnx_export_checkpoint(path, out, 0, NULL, &err), PL_OK);
    cr_assert(strstr(err.msg, "missing.ckpt"), "%s", err.msg);
    cr_assert_neq(access(out, F_OK), 0);
    pl_model_free(m);
    free(dir);
}

/* Padding [t, l, b, r], dilation and count_include_pad=0 (what ONNX
 * imports bring) are written back: the exported pads/dilations/
 * count_include_pad, and an import of the export that has the same layer
 * fields and computes the same logits. */
Test(onnx_export, imported_padding_round_trips)
{
    static const char text[] = "name: g\ninput: [2, 9, 8]\nclasses: 3\nlayers:\n"
                               "  - {name: c1, type: conv2d, out: 3, kernel: 3, padding: [1, 0, 2, 1], dilation: [2, 1], "
                               "stride: [2, 1]}\n"
                               "  - {name: p1, type: maxpool2d, kernel: 2, stride: 1, padding: [0, 0, 1, 1], "
                               "dilation: [1, 2]}\n"
                               "  - {name: p2, type: avgpool2d, kernel: 3, stride: 2, padding: [1, 1, 0, 2], "
                               "count_include_pad: false}\n"
                               "  - {name: f, type: flatten}\n"
                               "  - {name: fc, type: linear, out: 3}\n";
    char *yaml = pltest_write_temp(text, ".yaml");
    pl_model_spec *s = NULL;
    pl_model *m = NULL, *m2 = NULL;
    pl_error err = {0};
    cr_assert_eq(pl_model_spec_load(yaml, &s, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(pl_model_new(s, 3, &m, &err), PL_OK, "%s", err.msg);
    pl_model_spec_free(s);
    unlink(yaml);
    free(yaml);
    Onnx__ModelProto *mp = export_read(m, 0, NULL);
    const Onnx__AttributeProto *a = attr(node(mp, "c1"), "pads");
    cr_assert(a && a->n_ints == 4 && a->ints[0] == 1 && a->ints[1] == 0 && a->ints[2] == 2 && a->ints[3] == 1);
    a = attr(node(mp, "c1"), "dilations");
    cr_assert(a && a->n_ints == 2 && a->ints[0] == 2 && a->ints[1] == 1);
    a = attr(node(mp, "p1"), "dilations");
    cr_assert(a && a->n_ints == 2 && a->ints[0] == 1 && a->ints[1] == 2);
    a = attr(node(mp, "p2"), "count_include_pad");
    cr_assert(a && a->i == 0);
    a = attr(node(mp, "p2"), "pads");
    cr_assert(a && a->n_ints == 4 && a->ints[2] == 0 && a->ints[3] == 2);
    pl_onnx_free(mp);
    char *path = pltest_write_temp("", ".onnx");
    m2 = pltest_save_reload(m, path, PLTEST_ONNX);
    unlink(path);
    free(path);
    cr_assert_eq(m2->n_layers, m->n_layers);
    for (int i = 0; i < m->n_layers; i++) {
        const pl_layer *x = &m->layers[i], *y = &m2->layers[i];
        cr_assert(x->ph == y->ph && x->pw == y->pw && x->pad_xb == y->pad_xb && x->pad_xr == y->pad_xr &&
                      x->dil_h == y->dil_h && x->dil_w == y->dil_w && x->excl_pad == y->excl_pad &&
                      x->out_h == y->out_h && x->out_w == y->out_w,
                  "layer %s: padding fields or shape differ after export and import", x->name);
    }
    float x[2 * 2 * 9 * 8];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)((i * 29) % 13) * 0.25f - 1.5f;
    pltest_same_logits(m, m2, x, 2, "export and import");
    pl_model_free(m);
    pl_model_free(m2);
}

/* A packed two-input import (slice layers over the one input) exports as
 * Slice nodes (starts, ends, axes [1] as INT64 initializers) over `input`;
 * imported again, it has the same layers and ranges and computes the same
 * logits bit for bit. */
Test(onnx_export, packed_inputs_round_trip_as_slices)
{
    pl_model_spec *s = NULL;
    pl_model *m = NULL, *m2 = NULL;
    pl_error err = {0};
    cr_assert_eq(pl_model_spec_load("tests/onnx/fixtures/two_inputs.onnx", &s, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(pl_model_new(s, 3, &m, &err), PL_OK, "%s", err.msg);
    pl_model_spec_free(s);
    Onnx__ModelProto *mp = export_read(m, 0, NULL);
    const Onnx__NodeProto *b = node(mp, "b");
    cr_assert(b && !strcmp(b->op_type, "Slice") && b->n_input == 4 && !strcmp(b->input[0], "input"));
    const Onnx__TensorProto *st = init(mp, "b.starts"), *en = init(mp, "b.ends"), *ax = init(mp, "b.axes");
    cr_assert(st && en && ax);
    cr_assert(st->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 && st->n_dims == 1 && st->dims[0] == 1 &&
              st->raw_data.len == 8);
    cr_expect_eq(st->raw_data.data[0], 2);
    cr_expect_eq(en->raw_data.data[0], 6);
    cr_expect_eq(ax->raw_data.data[0], 1);
    pl_onnx_free(mp);
    char *path = pltest_write_temp("", ".onnx");
    m2 = pltest_save_reload(m, path, PLTEST_ONNX);
    unlink(path);
    free(path);
    cr_assert_eq(m2->n_layers, m->n_layers);
    cr_assert_eq(m2->in_c, 6);
    for (int i = 0; i < m->n_layers; i++) {
        const pl_layer *x = &m->layers[i], *y = &m2->layers[i];
        cr_assert(x->type == y->type && x->ch0 == y->ch0 && x->ch1 == y->ch1 && x->n_in == y->n_in &&
                      x->in[0] == y->in[0],
                  "layer %s: type, range or inputs differ after export and import", x->name);
    }
    float x[3 * 6 * 6 * 6];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)((i * 29) % 13) * 0.25f - 1.5f;
    pltest_same_logits(m, m2, x, 3, "export and import");
    pl_model_free(m);
    pl_model_free(m2);
}
