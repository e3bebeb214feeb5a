/*
 * Finite-difference gradient checks of every layer and the loss, through
 * the host's forward/backward on the `ref` backend.
 *
 * Each model puts the layer under test between a parameterised layer and
 * the classifier, so the layer's backward is exercised by the gradients of
 * the parameters upstream of it. Loss = Σ_rows cross-entropy (grad_scale 1).
 * Numerical gradient: central differences with h = 1e-3 and 5e-4 in the
 * float32 forward, loss accumulated in double. Tolerance (documented):
 * |num − ana| ≤ 2e-3 + 1e-2·|ana|; the float32 rounding of a loss near 3
 * contributes about 3e-4 at h = 5e-4 and the O(h²) truncation far less, so
 * real backward bugs (missing terms, wrong indices) show up as errors of
 * order |ana|. A coordinate where the two step sizes disagree sits on a
 * ReLU/max kink (no finite difference is valid there) and is skipped; at
 * most 10% of the coordinates may be skipped.
 */
#include "model.h"
#include "pltest.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_IMG 3

static double loss_of(pl_model *m, const float *x, const int32_t *y, uint64_t dcalls)
{
    pl_error err;
    m->dropout_calls = dcalls;
    const float *logits = pl_model_forward(m, x, N_IMG, PL_MODE_TRAIN, &err);
    cr_assert(logits, "%s", err.msg);
    double l;
    int64_t c;
    cr_assert_eq(m->be->softmax_xent(m->be_state, N_IMG, m->classes, logits, y, 1.0f, NULL, &l, &c), PL_OK);
    return l;
}

static void gradcheck(const char *yaml)
{
    pl_model *m = pltest_model(yaml, 7);
    pltest_bind_ref(m);
    pl_error err;
    cr_assert_eq(pl_model_reserve(m, N_IMG, &err), PL_OK, "%s", err.msg);
    int64_t img = (int64_t)m->in_c * m->in_h * m->in_w;
    float *x = malloc((size_t)(img * N_IMG) * sizeof(float));
    int32_t y[N_IMG];
    pl_rng r;
    pl_rng_seed(&r, 42, "gradcheck");
    for (int64_t i = 0; i < img * N_IMG; i++)
        x[i] = (float)pl_rng_normal(&r);
    for (int i = 0; i < N_IMG; i++)
        y[i] = (int32_t)pl_rng_below(&r, (uint64_t)m->classes);
    /* analytic */
    uint64_t dcalls = 5;
    m->dropout_calls = dcalls;
    const float *logits = pl_model_forward(m, x, N_IMG, PL_MODE_TRAIN, &err);
    cr_assert(logits);
    float *dl = malloc((size_t)N_IMG * (size_t)m->classes * sizeof(float));
    double l0;
    int64_t c;
    cr_assert_eq(m->be->softmax_xent(m->be_state, N_IMG, m->classes, logits, y, 1.0f, dl, &l0, &c), PL_OK);
    cr_assert_eq(pl_model_backward(m, x, dl, N_IMG, &err), PL_OK, "%s", err.msg);
    int checked = 0, kinks = 0;
    for (int li = 0; li < m->n_layers; li++) {
        pl_layer *l = &m->layers[li];
        for (int which = 0; which < 2; which++) {
            float *p = which ? l->b : l->w;
            int64_t n = which ? l->nb : l->nw;
            float *g = which ? l->gb : l->gw;
            if (!p || !n)
                continue;
            float *ana = malloc((size_t)n * sizeof(float));
            memcpy(ana, g, (size_t)n * sizeof(float));
            int64_t stride = n > 300 ? n / 150 : 1;
            for (int64_t i = 0; i < n; i += stride) {
                double num[2];
                for (int k = 0; k < 2; k++) {
                    const float h = k ? 5e-4f : 1e-3f;
                    float keep = p[i];
                    p[i] = keep + h;
                    double lp = loss_of(m, x, y, dcalls);
                    p[i] = keep - h;
                    double lm = loss_of(m, x, y, dcalls);
                    p[i] = keep;
                    num[k] = (lp - lm) / (2.0 * (double)h);
                }
                double a = ana[i];
                checked++;
                /* the two step sizes disagree: a ReLU/max kink lies within
                 * h of this point, where no finite difference is valid */
                if (fabs(num[0] - num[1]) > 2e-3 + 1e-2 * fabs(num[1])) {
                    kinks++;
                    continue;
                }
                cr_expect(fabs(num[1] - a) <= 2e-3 + 1e-2 * fabs(a),
                          "layer %s %s[%lld]: analytic %.6g numeric %.6g", l->name,
                          which ? "bias" : "weight", (long long)i, a, num[1]);
            }
            free(ana);
        }
    }
    cr_assert_gt(checked, 0);
    cr_expect_leq(kinks * 10, checked, "%d of %d coordinates sit on a kink", kinks, checked);
    free(x);
    free(dl);
    pl_model_free(m);
}

#define MODEL(body) "name: t\ninput: [2, 7, 7]\nclasses: 3\nlayers:\n" body

Test(gradients, conv_linear_padding)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 3, kernel: 3, padding: 1}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, conv_stride2_nopad_relu)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 4, kernel: 3, stride: 2}\n"
                    "  - {type: relu}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, conv_rect_kernel_pad2_stride_pair)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 2, kernel: [2, 3], stride: [1, 2], padding: [2, 1]}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, conv_no_bias_then_conv)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 3, kernel: 3, bias: false}\n"
                    "  - {name: c2, type: conv2d, out: 2, kernel: 2}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, maxpool)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 3, kernel: 2}\n"
                    "  - {type: maxpool2d, kernel: 2}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, maxpool_overlapping_stride1)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 2, kernel: 3, padding: 1}\n"
                    "  - {type: maxpool2d, kernel: 3, stride: 2}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, avgpool_padded)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 3, kernel: 3}\n"
                    "  - {type: avgpool2d, kernel: 3, stride: 2, padding: 1}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

/* ---- padding/dilation that only ONNX imports make (the host's kernels,
 * layer_general.c): pads [top, left, bottom, right], dilation, average
 * pooling that does not count the padding ---- */

Test(gradients, conv_asymmetric_pads_dilation_stride)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 3, kernel: 3, padding: [1, 0, 2, 1], dilation: 2, "
                    "stride: [2, 1]}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, grouped_conv_asymmetric_pads)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 4, kernel: 2, groups: 2, padding: [0, 1, 1, 0]}\n"
                    "  - {name: c2, type: conv2d, out: 4, kernel: [2, 3], groups: 4, padding: [2, 0, 0, 1], "
                    "dilation: [1, 2]}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, maxpool_asymmetric_pads_dilation)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 3, kernel: 2}\n"
                    "  - {type: maxpool2d, kernel: 3, stride: 2, padding: [1, 1, 2, 0], dilation: [1, 2]}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

/* padding above half the kernel (ONNX allows up to the kernel) */
Test(gradients, maxpool_wide_padding_after_relu)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 3, kernel: 2}\n"
                    "  - {type: relu}\n"
                    "  - {type: maxpool2d, kernel: 3, stride: 2, padding: 2}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, avgpool_exclude_pad_asymmetric)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 3, kernel: 2}\n"
                    "  - {type: avgpool2d, kernel: 3, stride: 2, padding: [1, 1, 2, 2], count_include_pad: false}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, avgpool_include_pad_asymmetric)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 3, kernel: 2}\n"
                    "  - {type: avgpool2d, kernel: [3, 2], stride: [1, 2], padding: [0, 1, 1, 0]}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

/* batchnorm centres its outputs on zero, so a ReLU right after it has
 * hundreds of inputs within h of its kink: check it with smooth neighbours */
Test(gradients, batchnorm)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 3, kernel: 3, padding: 1}\n"
                    "  - {name: bn1, type: batchnorm2d}\n"
                    "  - {type: avgpool2d, kernel: 2}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, batchnorm_linear)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 2, kernel: 3}\n"
                    "  - {name: bn1, type: batchnorm2d}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, dropout)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 3, kernel: 3}\n"
                    "  - {type: dropout, p: 0.3}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, mlp_relu_chain)
{
    gradcheck(MODEL("  - {type: flatten}\n"
                    "  - {name: fc1, type: linear, out: 11}\n"
                    "  - {type: relu}\n"
                    "  - {name: fc2, type: linear, out: 7}\n"
                    "  - {type: relu}\n"
                    "  - {name: fc3, type: linear, out: 3}\n"));
}

/* The loss alone: dlogits vs numeric derivative of Σ cross-entropy. */
/* ---- graph models: gradients summed where an output feeds several layers */

Test(gradients, add_two_inputs)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 3, kernel: 3, padding: 1}\n"
                    "  - {name: c2, type: conv2d, out: 3, kernel: 3, padding: 1, inputs: [input]}\n"
                    "  - {name: s, type: add, inputs: [c1, c2]}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, add_three_inputs_one_twice)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 3, kernel: 3, padding: 1}\n"
                    "  - {name: c2, type: conv2d, out: 3, kernel: 1, inputs: [input]}\n"
                    "  - {name: c3, type: conv2d, out: 3, kernel: 3, padding: 1, inputs: [c1]}\n"
                    "  - {name: s, type: add, inputs: [c1, c2, c3]}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, concat_two_inputs)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 2, kernel: 3, padding: 1}\n"
                    "  - {name: c2, type: conv2d, out: 3, kernel: 1, inputs: [input]}\n"
                    "  - {name: cat, type: concat, inputs: [c1, c2]}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, concat_three_inputs_with_the_input)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 2, kernel: 3, padding: 1}\n"
                    "  - {name: c2, type: conv2d, out: 1, kernel: 3, padding: 1, inputs: [c1]}\n"
                    "  - {name: cat, type: concat, inputs: [c2, input, c1]}\n"
                    "  - {name: c3, type: conv2d, out: 2, kernel: 3}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, slice_in_a_chain)
{
    /* a chain: the slice's backward writes zeros outside its range */
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 5, kernel: 3, padding: 1}\n"
                    "  - {name: s, type: slice, channels: [1, 4]}\n"
                    "  - {name: c2, type: conv2d, out: 2, kernel: 3}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, slices_overlapping_and_of_the_input)
{
    /* two overlapping ranges of one producer accumulate into its gradient;
     * two disjoint slices of the input, as a packed ONNX import makes */
    gradcheck(MODEL("  - {name: xa, type: slice, channels: [0, 1], inputs: [input]}\n"
                    "  - {name: xb, type: slice, channels: [1, 2], inputs: [input]}\n"
                    "  - {name: c1, type: conv2d, out: 4, kernel: 3, padding: 1, inputs: [xa]}\n"
                    "  - {name: c2, type: conv2d, out: 4, kernel: 3, padding: 1, inputs: [xb]}\n"
                    "  - {name: s1, type: slice, channels: [0, 3], inputs: [c1]}\n"
                    "  - {name: s2, type: slice, channels: [1, 4], inputs: [c1]}\n"
                    "  - {name: s3, type: slice, channels: [2, 3], inputs: [c2]}\n"
                    "  - {name: sum, type: add, inputs: [s1, s2]}\n"
                    "  - {name: cat, type: concat, inputs: [sum, s3, c2]}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(slice, forward_copies_the_channel_range)
{
    pl_model *m = pltest_model("name: t\ninput: [4, 2, 3]\nclasses: 12\nlayers:\n"
                               "  - {name: s, type: slice, channels: [1, 3]}\n", 1);
    pltest_bind_ref(m);
    pl_error err;
    cr_assert_eq(pl_model_reserve(m, 2, &err), PL_OK, "%s", err.msg);
    float x[2 * 4 * 6];
    for (int i = 0; i < 2 * 4 * 6; i++)
        x[i] = (float)i;
    const float *z = pl_model_forward(m, x, 2, PL_MODE_EVAL, &err);
    cr_assert(z, "%s", err.msg);
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < 12; k++)
            cr_expect_eq(z[b * 12 + k], x[b * 24 + 6 + k], "image %d value %d", b, k);
    pl_counts c;
    pl_model_count(m, &c);
    cr_expect_eq(c.params, 0);
    cr_expect_eq(c.macs, 0);
    pl_model_free(m);
}

Test(gradients, global_avgpool)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 4, kernel: 3}\n"
                    "  - {name: g, type: global_avgpool}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, grouped_conv_two_groups)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                    "  - {name: c2, type: conv2d, out: 6, kernel: 3, stride: 2, padding: 1, groups: 2}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, depthwise_conv)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 4, kernel: 1}\n"
                    "  - {name: dw, type: conv2d, out: 4, kernel: 3, padding: 1, groups: 4}\n"
                    "  - {name: pw, type: conv2d, out: 3, kernel: 1, bias: false}\n"
                    "  - {name: dw2, type: conv2d, out: 2, kernel: 3, padding: 1, groups: 2, inputs: [input], bias: false}\n"
                    "  - {name: s, type: concat, inputs: [pw, dw2]}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

/* r1 feeds the block and the shortcut; the max pool reads a ReLU that
 * something else reads too (no fused backward there) */
Test(gradients, residual_block_with_fan_out)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                    "  - {name: r1, type: relu}\n"
                    "  - {name: c2, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                    "  - {name: bn, type: batchnorm2d}\n"
                    "  - {name: r2, type: relu}\n"
                    "  - {name: c3, type: conv2d, out: 4, kernel: 3, padding: 1, bias: false}\n"
                    "  - {name: s, type: add, inputs: [c3, r1]}\n"
                    "  - {name: r3, type: relu}\n"
                    "  - {name: p, type: maxpool2d, kernel: 2}\n"
                    "  - {name: gp, type: global_avgpool}\n"
                    "  - {name: d, type: dropout, p: 0.2, inputs: [r3]}\n"
                    "  - {name: g, type: global_avgpool}\n"
                    "  - {name: cat, type: concat, inputs: [gp, g]}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, add_fed_by_concat)
{
    gradcheck(MODEL("  - {name: c1, type: conv2d, out: 2, kernel: 3, padding: 1}\n"
                    "  - {name: c2, type: conv2d, out: 2, kernel: 1, inputs: [input]}\n"
                    "  - {name: cat, type: concat, inputs: [c1, c2]}\n"
                    "  - {name: c3, type: conv2d, out: 4, kernel: 3, padding: 1, inputs: [input]}\n"
                    "  - {name: s, type: add, inputs: [cat, c3]}\n"
                    "  - {name: c4, type: conv2d, out: 2, kernel: 3, stride: 2}\n"
                    "  - {type: flatten}\n"
                    "  - {name: fc, type: linear, out: 3}\n"));
}

Test(gradients, softmax_cross_entropy)
{
    pl_instance *be = pltest_ref_backend();
    const pl_backend_ops *o = pl_instance_ops(be);
    enum { N = 4, C = 5 };
    float z[N * C], d[N * C];
    int32_t y[N] = {0, 4, 2, 2};
    pl_rng r;
    pl_rng_seed(&r, 3, "xent");
    for (int i = 0; i < N * C; i++)
        z[i] = (float)(3 * pl_rng_normal(&r));
    double l;
    int64_t c;
    cr_assert_eq(o->softmax_xent(pl_instance_state(be), N, C, z, y, 1.0f, d, &l, &c), PL_OK);
    for (int i = 0; i < N * C; i++) {
        float keep = z[i];
        double lp, lm;
        z[i] = keep + 1e-2f;
        o->softmax_xent(pl_instance_state(be), N, C, z, y, 1.0f, NULL, &lp, &c);
        z[i] = keep - 1e-2f;
        o->softmax_xent(pl_instance_state(be), N, C, z, y, 1.0f, NULL, &lm, &c);
        z[i] = keep;
        double num = (lp - lm) / 2e-2;
        cr_expect(fabs(num - d[i]) <= 1e-3 + 1e-2 * fabs(d[i]), "dlogit %d: %g vs %g", i, d[i], num);
    }
}

/* PyTorch's default init bounds: |w|, |b| <= 1/sqrt(fan_in), not all tiny. */
Test(init, pytorch_bounds)
{
    pl_model *m = pltest_model(MODEL("  - {name: c1, type: conv2d, out: 4, kernel: 3}\n"
                                     "  - {type: flatten}\n"
                                     "  - {name: fc, type: linear, out: 3}\n"),
                               1);
    pl_layer *c1 = &m->layers[0], *fc = &m->layers[2];
    double bc = 1 / sqrt(2 * 9.0), bf = 1 / sqrt((double)fc->in_c), mx = 0;
    for (int64_t i = 0; i < c1->nw; i++) {
        cr_assert_leq(fabs(c1->w[i]), bc);
        mx = fmax(mx, fabs(c1->w[i]));
    }
    cr_assert_gt(mx, 0.8 * bc);
    for (int64_t i = 0; i < fc->nb; i++)
        cr_assert_leq(fabs(fc->b[i]), bf);
    pl_model_free(m);
}

Test(init, seeded_and_per_layer_streams)
{
    const char *y = MODEL("  - {name: c1, type: conv2d, out: 4, kernel: 3}\n"
                          "  - {type: flatten}\n"
                          "  - {name: fc, type: linear, out: 3}\n");
    pl_model *a = pltest_model(y, 5), *b = pltest_model(y, 5), *c = pltest_model(y, 6);
    cr_assert_eq(memcmp(a->layers[0].w, b->layers[0].w, (size_t)a->layers[0].nw * 4), 0);
    cr_assert_neq(memcmp(a->layers[0].w, c->layers[0].w, (size_t)a->layers[0].nw * 4), 0);
    pl_model_free(a);
    pl_model_free(b);
    pl_model_free(c);
}

/* ---- the host's fused paths ------------------------------------------------------ */

/* One training step on simd with every optional slot (conv+ReLU(+max pool),
 * linear+ReLU forward, max pool+ReLU backward, parallel_for for the host's
 * batchnorm) against the same step with those slots hidden, so the host
 * calls the required kernels one by one and runs its own work in a loop:
 * logits, every gradient and the batchnorm running statistics must be bit
 * for bit the same. */
static void optional_slots_change_no_bit(const char *yaml)
{
    pl_instance *sd = pltest_instance(PL_KIND_BACKEND, "simd", NULL, 1, 2);
    const pl_backend_ops *full = pl_instance_ops(sd);
    pl_backend_ops plain = *full;
    cr_assert(plain.conv2d_forward_relu_maxpool && plain.linear_forward_relu && plain.maxpool2d_relu_backward &&
              plain.parallel_for);
    plain.conv2d_forward_relu = NULL;
    plain.linear_forward_relu = NULL;
    plain.conv2d_forward_relu_maxpool = NULL;
    plain.maxpool2d_relu_backward = NULL;
    plain.parallel_for = NULL;
    const pl_backend_ops *ops[2] = {full, &plain};
    pl_model *m[2];
    float *logits[2], *dl[2];
    enum { B = 64 }; /* batchnorm over 6 channels of 7x7 is then big enough to run on both threads */
    float x[B * 2 * 7 * 7];
    int32_t y[B];
    pl_rng r;
    pl_rng_seed(&r, 3, "fused");
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)pl_rng_normal(&r);
    for (int i = 0; i < B; i++)
        y[i] = (int32_t)pl_rng_below(&r, 3);
    for (int k = 0; k < 2; k++) {
        pl_error err;
        m[k] = pltest_model(yaml, 11);
        pl_model_bind(m[k], ops[k], pl_instance_state(sd));
        cr_assert_eq(pl_model_reserve(m[k], B, &err), PL_OK, "%s", err.msg);
        const float *z = pl_model_forward(m[k], x, B, PL_MODE_TRAIN, &err);
        cr_assert(z, "%s", err.msg);
        logits[k] = malloc(sizeof(float) * B * 3);
        dl[k] = malloc(sizeof(float) * B * 3);
        memcpy(logits[k], z, sizeof(float) * B * 3);
        double loss;
        int64_t c;
        cr_assert_eq(ops[k]->softmax_xent(pl_instance_state(sd), B, 3, z, y, 1.0f / B, dl[k], &loss, &c), PL_OK);
        cr_assert_eq(pl_model_backward(m[k], x, dl[k], B, &err), PL_OK, "%s", err.msg);
    }
    cr_assert(!memcmp(logits[0], logits[1], sizeof(float) * B * 3), "logits differ");
    for (int li = 0; li < m[0]->n_layers; li++) {
        const pl_layer *a = &m[0]->layers[li], *b = &m[1]->layers[li];
        if (a->nw)
            cr_assert(!memcmp(a->gw, b->gw, sizeof(float) * (size_t)a->nw), "%s: weight gradient differs", a->name);
        if (a->nb)
            cr_assert(!memcmp(a->gb, b->gb, sizeof(float) * (size_t)a->nb), "%s: bias gradient differs", a->name);
        if (a->run_mean) {
            cr_assert(!memcmp(a->run_mean, b->run_mean, sizeof(float) * (size_t)a->in_c), "%s: running mean differs", a->name);
            cr_assert(!memcmp(a->run_var, b->run_var, sizeof(float) * (size_t)a->in_c), "%s: running var differs", a->name);
        }
    }
    for (int k = 0; k < 2; k++) {
        free(logits[k]);
        free(dl[k]);
        pl_model_free(m[k]);
    }
    pl_instance_free(sd);
}

Test(fused, optional_slots_change_no_bit)
{
    optional_slots_change_no_bit(MODEL("  - {name: c1, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                                       "  - {name: r1, type: relu}\n"
                                       "  - {name: p1, type: maxpool2d, kernel: 2}\n"
                                       "  - {name: c2, type: conv2d, out: 5, kernel: 3, padding: 1}\n"
                                       "  - {name: r2, type: relu}\n"
                                       "  - {name: p2, type: maxpool2d, kernel: 3, stride: 1}\n"
                                       "  - {name: f, type: flatten}\n"
                                       "  - {name: l1, type: linear, out: 6}\n"
                                       "  - {name: r3, type: relu}\n"
                                       "  - {name: l2, type: linear, out: 3}\n"));
}

Test(fused, optional_slots_change_no_bit_batchnorm)
{
    optional_slots_change_no_bit(MODEL("  - {name: c1, type: conv2d, out: 6, kernel: 3, padding: 1}\n"
                                       "  - {name: bn1, type: batchnorm2d}\n"
                                       "  - {name: r1, type: relu}\n"
                                       "  - {name: c2, type: conv2d, out: 5, kernel: 3}\n"
                                       "  - {name: bn2, type: batchnorm2d}\n"
                                       "  - {name: r2, type: relu}\n"
                                       "  - {name: p2, type: maxpool2d, kernel: 2}\n"
                                       "  - {name: f, type: flatten}\n"
                                       "  - {name: l2, type: linear, out: 3}\n"));
}

/* In a graph the fusions apply only where the intermediate has a single
 * reader: c1+r1+p1 fuse (r1 is also read by gr, and still written), c2+r2
 * fuse, c3 does not (the add reads it too); p1's backward cannot take r1
 * along (gr reads r1). Bit-identical to the unfused kernels. */
Test(fused, optional_slots_change_no_bit_graph)
{
    optional_slots_change_no_bit(MODEL("  - {name: c1, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                                       "  - {name: r1, type: relu}\n"
                                       "  - {name: p1, type: maxpool2d, kernel: 2}\n"
                                       "  - {name: c2, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                                       "  - {name: r2, type: relu}\n"
                                       "  - {name: c3, type: conv2d, out: 4, kernel: 1, inputs: [p1]}\n"
                                       "  - {name: r3, type: relu}\n"
                                       "  - {name: s, type: add, inputs: [r2, r3, c3]}\n"
                                       "  - {name: gr, type: global_avgpool, inputs: [r1]}\n"
                                       "  - {name: g2, type: global_avgpool, inputs: [s]}\n"
                                       "  - {name: cat, type: concat, inputs: [gr, g2]}\n"
                                       "  - {name: f, type: flatten}\n"
                                       "  - {name: l1, type: linear, out: 6}\n"
                                       "  - {name: r4, type: relu}\n"
                                       "  - {name: l2, type: linear, out: 3}\n"));
}

/* The same with the ReLU read only by the pool: the backward fusion applies */
Test(fused, optional_slots_change_no_bit_graph_pool_fusion)
{
    optional_slots_change_no_bit(MODEL("  - {name: c1, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                                       "  - {name: c0, type: conv2d, out: 4, kernel: 1, inputs: [input]}\n"
                                       "  - {name: s, type: add, inputs: [c1, c0]}\n"
                                       "  - {name: r1, type: relu}\n"
                                       "  - {name: p1, type: maxpool2d, kernel: 2}\n"
                                       "  - {name: f, type: flatten}\n"
                                       "  - {name: l2, type: linear, out: 3}\n"));
}

/* Layers on the host's general kernels are never fused: a general pool
 * after conv+ReLU, and a plain pool after a general conv, give the same
 * bits with the fused slots as without (and the ReLU's backward is applied
 * after the general pool's). */
Test(fused, optional_slots_change_no_bit_general_layers)
{
    optional_slots_change_no_bit(MODEL("  - {name: c1, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                                       "  - {name: r1, type: relu}\n"
                                       "  - {name: p1, type: maxpool2d, kernel: 2, padding: [0, 0, 1, 1]}\n"
                                       "  - {name: c2, type: conv2d, out: 5, kernel: 3, padding: [1, 1, 0, 0]}\n"
                                       "  - {name: r2, type: relu}\n"
                                       "  - {name: p2, type: maxpool2d, kernel: 2}\n"
                                       "  - {name: f, type: flatten}\n"
                                       "  - {name: l2, type: linear, out: 3}\n"));
}

/* ---- the host's batchnorm (float vectors, ReLU fused) against double ------------- */

/* One channel of a training batchnorm in double: y (after the ReLU when
 * relu), and from dy (the ReLU's gradient when relu) dγ, dβ and dx. */
static void bn_reference(const float *x, const float *dy, int n, int C, int c, int64_t hw, double g, double be,
                         double eps, int relu, double *y, double *dg, double *db, double *dx)
{
    double M = (double)n * (double)hw, s = 0, s2 = 0;
    for (int b = 0; b < n; b++)
        for (int64_t i = 0; i < hw; i++)
            s += x[((int64_t)b * C + c) * hw + i];
    double mu = s / M;
    for (int b = 0; b < n; b++)
        for (int64_t i = 0; i < hw; i++) {
            double d = x[((int64_t)b * C + c) * hw + i] - mu;
            s2 += d * d;
        }
    double is = 1.0 / sqrt(s2 / M + eps);
    *dg = *db = 0;
    for (int b = 0; b < n; b++)
        for (int64_t i = 0; i < hw; i++) {
            int64_t k = ((int64_t)b * C + c) * hw + i;
            double v = g * (x[k] - mu) * is + be;
            y[k] = relu && v < 0 ? 0 : v;
            double d = relu && !(v > 0) ? 0 : dy[k];
            *dg += d * (x[k] - mu) * is;
            *db += d;
        }
    for (int b = 0; b < n; b++)
        for (int64_t i = 0; i < hw; i++) {
            int64_t k = ((int64_t)b * C + c) * hw + i;
            double v = g * (x[k] - mu) * is + be;
            double d = relu && !(v > 0) ? 0 : dy[k];
            dx[k] = g * is / M * (M * d - *db - (x[k] - mu) * is * *dg);
        }
}

static void close_to(double want, float got, double tol, const char *what, int64_t k)
{
    cr_expect(fabs(want - got) <= tol * (1 + fabs(want)), "%s[%lld]: %.9g, the double reference %.9g", what,
              (long long)k, got, want);
}

/* bn1 feeds only a ReLU (forward and backward fused into one pass), bn2
 * feeds an add (not fused); planes of 7x7 and 5 images leave tails after
 * every vector loop. Every output and gradient within 2e-5 (relative) of
 * double precision. */
Test(batchnorm, float_vectors_match_double)
{
    pl_model *m = pltest_model(MODEL("  - {name: c1, type: conv2d, out: 5, kernel: 3, padding: 1}\n"
                                     "  - {name: bn1, type: batchnorm2d}\n"
                                     "  - {name: r1, type: relu}\n"
                                     "  - {name: c2, type: conv2d, out: 5, kernel: 1, inputs: [input]}\n"
                                     "  - {name: bn2, type: batchnorm2d}\n"
                                     "  - {name: s, type: add, inputs: [r1, bn2]}\n"
                                     "  - {type: flatten}\n"
                                     "  - {name: fc, type: linear, out: 3}\n"),
                               9);
    pl_instance *be = pltest_instance(PL_KIND_BACKEND, "simd", NULL, 1, 2);
    pl_model_bind(m, pl_instance_ops(be), pl_instance_state(be));
    enum { N = 5, C = 5, HW = 49 };
    pl_error err;
    cr_assert_eq(pl_model_reserve(m, N, &err), PL_OK, "%s", err.msg);
    pl_rng r;
    pl_rng_seed(&r, 4, "bn");
    float x[N * 2 * HW];
    int32_t y[N];
    for (int i = 0; i < N * 2 * HW; i++)
        x[i] = (float)(3 + 2 * pl_rng_normal(&r)); /* off-centre: the mean matters */
    for (int i = 0; i < N; i++)
        y[i] = (int32_t)pl_rng_below(&r, 3);
    for (int li = 1; li <= 4; li += 3)
        for (int c = 0; c < C; c++) {
            m->layers[li].w[c] = (float)(0.5 + pl_rng_uniform(&r));
            m->layers[li].b[c] = (float)(pl_rng_normal(&r) * 0.5);
        }
    const float *z = pl_model_forward(m, x, N, PL_MODE_TRAIN, &err);
    cr_assert(z, "%s", err.msg);
    float dl[N * 3];
    double loss;
    int64_t right;
    cr_assert_eq(m->be->softmax_xent(m->be_state, N, 3, z, y, 1.0f, dl, &loss, &right), PL_OK);
    cr_assert_eq(pl_model_backward(m, x, dl, N, &err), PL_OK, "%s", err.msg);
    double *ry = malloc(sizeof(double) * N * C * HW), *rdx = malloc(sizeof(double) * N * C * HW);
    const int bn_at[2] = {1, 4}, out_at[2] = {2, 4}, in_at[2] = {0, 3};
    for (int k = 0; k < 2; k++) {
        const pl_layer *bn = &m->layers[bn_at[k]], *in = &m->layers[in_at[k]], *out = &m->layers[out_at[k]];
        /* dy: the add passes its gradient to both inputs */
        const float *dy = m->layers[5].grad;
        for (int c = 0; c < C; c++) {
            double dg, db;
            bn_reference(in->out, dy, N, C, c, HW, bn->w[c], bn->b[c], bn->eps, k == 0, ry, &dg, &db, rdx);
            close_to(dg, bn->gw[c], 2e-5, "dgamma", c);
            close_to(db, bn->gb[c], 2e-5, "dbeta", c);
            for (int b = 0; b < N; b++)
                for (int i = 0; i < HW; i++) {
                    int64_t q = ((int64_t)b * C + c) * HW + i;
                    close_to(ry[q], out->out[q], 2e-5, k ? "bn2 y" : "relu(bn1 y)", q);
                    close_to(rdx[q], in->grad[q], 2e-5, k ? "bn2 dx" : "bn1 dx", q);
                }
        }
    }
    free(ry);
    free(rdx);
    pl_model_free(m);
    pl_instance_free(be);
}

/* ---- inference through shared buffers ------------------------------------------- */

/* pl_model_infer gives the EVAL forward's logits bit for bit, through
 * buffers reused by liveness (fused conv + ReLU + max pooling whose input
 * dies there, batchnorm +
 * ReLU, residual adds with fan-out, flatten aliases, concat), in fewer
 * floats than one buffer per layer; the model's own buffers keep what the
 * EVAL forward wrote. In chunks of 4, 4 and 1 images too: the backends'
 * kernels compute each image the same whatever the batch. */
static void infer_matches_forward(const char *backend)
{
    pl_model *m = pltest_model(MODEL("  - {name: c0, type: conv2d, out: 3, kernel: 3, padding: 1}\n"
                                     "  - {name: r0, type: relu}\n"
                                     "  - {name: c1, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                                     "  - {name: r1, type: relu}\n"
                                     "  - {name: p1, type: maxpool2d, kernel: 2, stride: 1}\n"
                                     "  - {name: c2, type: conv2d, out: 4, kernel: 3, padding: 1, bias: false}\n"
                                     "  - {name: bn2, type: batchnorm2d}\n"
                                     "  - {name: r2, type: relu}\n"
                                     "  - {name: c3, type: conv2d, out: 4, kernel: 3, padding: 1, bias: false}\n"
                                     "  - {name: bn3, type: batchnorm2d}\n"
                                     "  - {name: s, type: add, inputs: [bn3, p1]}\n"
                                     "  - {name: r3, type: relu}\n"
                                     "  - {name: c4, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                                     "  - {name: s2, type: add, inputs: [c4, r3, p1]}\n"
                                     "  - {name: g, type: global_avgpool, inputs: [r2]}\n"
                                     "  - {name: g2, type: global_avgpool, inputs: [s2]}\n"
                                     "  - {name: cat, type: concat, inputs: [g, g2]}\n"
                                     "  - {name: f, type: flatten}\n"
                                     "  - {name: l1, type: linear, out: 6}\n"
                                     "  - {name: r4, type: relu}\n"
                                     "  - {name: l2, type: linear, out: 3}\n"),
                               5);
    pl_instance *be = pltest_instance(PL_KIND_BACKEND, backend, NULL, 1, 2);
    pl_model_bind(m, pl_instance_ops(be), pl_instance_state(be));
    enum { N = 9 };
    pl_error err;
    cr_assert_eq(pl_model_reserve(m, N, &err), PL_OK, "%s", err.msg);
    pl_rng r;
    pl_rng_seed(&r, 8, "infer");
    float x[N * 2 * 7 * 7], want[N * 3];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)pl_rng_normal(&r);
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].type == PL_LAYER_BATCHNORM2D)
            for (int c = 0; c < m->layers[i].in_c; c++) {
                m->layers[i].run_mean[c] = (float)pl_rng_normal(&r);
                m->layers[i].run_var[c] = (float)(0.5 + pl_rng_uniform(&r));
            }
    const float *z = pl_model_forward(m, x, N, PL_MODE_EVAL, &err);
    cr_assert(z, "%s", err.msg);
    memcpy(want, z, sizeof want);
    float *r3 = malloc(sizeof(float) * N * 4 * 6 * 6);
    memcpy(r3, m->layers[11].out, sizeof(float) * N * 4 * 6 * 6);
    for (int rep = 0; rep < 3; rep++) { /* the second reuses the buffers; the third runs chunks of 4, 4, 1 */
        m->infer_chunk = rep == 2 ? 4 : 0;
        const float *y = pl_model_infer(m, x, N, &err);
        cr_assert(y, "%s", err.msg);
        cr_assert(!memcmp(y, want, sizeof want), "logits differ from the EVAL forward's");
    }
    cr_assert(!memcmp(r3, m->layers[11].out, sizeof(float) * N * 4 * 6 * 6), "a layer's own buffer was written");
    int64_t all = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].type != PL_LAYER_FLATTEN)
            all += (int64_t)m->layers[i].out_c * m->layers[i].out_h * m->layers[i].out_w * N;
    cr_expect_lt(m->arena_cap, all, "%lld floats shared against %lld in per-layer buffers",
                 (long long)m->arena_cap, (long long)all);
    free(r3);
    pl_model_free(m);
    pl_instance_free(be);
}

Test(infer, matches_the_eval_forward_simd) { infer_matches_forward("simd"); }
Test(infer, matches_the_eval_forward_ref) { infer_matches_forward("ref"); }
