/*
 * Structural surgery: for every dependency pattern (conv→conv,
 * conv→batchnorm→conv, conv→flatten→linear, linear→linear) the physically
 * pruned model computes the same outputs as the dense model in which the
 * removed units are cut off (their outgoing weights zeroed), every surviving
 * weight and bias is kept exactly, and the parameter count equals a hand
 * count.
 */
#include "model.h"
#include "surgery.h"
#include "pltest.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_IMG 4

static float *random_input(const pl_model *m, uint64_t seed)
{
    int64_t n = (int64_t)m->in_c * m->in_h * m->in_w * N_IMG;
    float *x = malloc((size_t)n * sizeof(float));
    pl_rng r;
    pl_rng_seed(&r, seed, "surgery-input");
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)pl_rng_normal(&r);
    return x;
}

static float *eval(pl_model *m, const float *x)
{
    pl_error err;
    pltest_bind_ref(m);
    cr_assert_eq(pl_model_reserve(m, N_IMG, &err), PL_OK, "%s", err.msg);
    const float *y = pl_model_forward(m, x, N_IMG, PL_MODE_EVAL, &err);
    cr_assert(y, "%s", err.msg);
    float *out = malloc((size_t)N_IMG * (size_t)m->classes * sizeof(float));
    memcpy(out, y, (size_t)N_IMG * (size_t)m->classes * sizeof(float));
    return out;
}

/* Zero the consumer's inputs that read unit u of layer li (the masked-dense
 * reference), following the same dependency rules the surgery uses. */
static void cut_unit(pl_model *m, int li, int u)
{
    int C = m->layers[li].out_c;
    int64_t block = 1;
    for (int j = li + 1; j < m->n_layers; j++) {
        pl_layer *d = &m->layers[j];
        if (d->type == PL_LAYER_FLATTEN)
            block = (int64_t)d->in_h * d->in_w;
        if (d->type == PL_LAYER_CONV2D) {
            int64_t inner = (int64_t)d->kh * d->kw;
            for (int co = 0; co < d->out_c; co++)
                memset(d->w + ((int64_t)co * C + u) * inner, 0, (size_t)inner * sizeof(float));
            return;
        }
        if (d->type == PL_LAYER_LINEAR) {
            for (int o = 0; o < d->out_c; o++)
                memset(d->w + (int64_t)o * d->in_c + u * block, 0, (size_t)block * sizeof(float));
            return;
        }
    }
}

static void check_equivalence(const char *yaml, const char *layer, const uint8_t *keep,
                              int64_t params_after)
{
    pl_model *m = pltest_model(yaml, 11);
    /* give batchnorm non-trivial statistics so the test can see them */
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].type == PL_LAYER_BATCHNORM2D)
            for (int c = 0; c < m->layers[i].in_c; c++) {
                m->layers[i].run_mean[c] = 0.1f * (float)c;
                m->layers[i].run_var[c] = 1.0f + 0.5f * (float)c;
                m->layers[i].w[c] = 1.0f + 0.25f * (float)c;
                m->layers[i].b[c] = -0.2f * (float)c;
            }
    int li = pl_model_find(m, layer);
    cr_assert_geq(li, 0);
    pl_error err;
    pl_model *pruned, *dense;
    cr_assert_eq(pl_model_clone(m, &pruned, &err), PL_OK);
    cr_assert_eq(pl_model_clone(m, &dense, &err), PL_OK);
    int C = m->layers[li].out_c;
    for (int u = 0; u < C; u++)
        if (!keep[u])
            cut_unit(dense, li, u);
    cr_assert_eq(pl_model_remove_units(pruned, li, keep, &err), PL_OK, "%s", err.msg);
    float *x = random_input(m, 3);
    float *a = eval(dense, x), *b = eval(pruned, x);
    for (int i = 0; i < N_IMG * m->classes; i++)
        cr_expect(fabsf(a[i] - b[i]) <= 1e-5f * (1 + fabsf(a[i])), "logit %d: dense %g pruned %g", i,
                  a[i], b[i]);
    pl_counts cnt;
    pl_model_count(pruned, &cnt);
    cr_expect_eq(cnt.params, params_after, "params after %lld, hand count %lld", (long long)cnt.params,
                 (long long)params_after);
    /* surviving weights and biases of the pruned layer are kept exactly */
    const pl_layer *ol = &m->layers[li], *nl = &pruned->layers[li];
    int64_t row = ol->nw / ol->out_c;
    int k = 0;
    for (int u = 0; u < C; u++) {
        if (!keep[u])
            continue;
        cr_expect_eq(memcmp(nl->w + k * row, ol->w + u * row, (size_t)row * sizeof(float)), 0);
        if (ol->b)
            cr_expect_eq(nl->b[k], ol->b[u]);
        k++;
    }
    cr_expect_eq(nl->out_c, k);
    free(x);
    free(a);
    free(b);
    pl_model_free(m);
    pl_model_free(pruned);
    pl_model_free(dense);
}

Test(surgery, conv_to_conv)
{
    const uint8_t keep[4] = {1, 0, 1, 0};
    /* c1 2x1x3x3+2 = 20, c2 5x2x3x3+5 = 95, fc 5*5*5*3+3 = 378 */
    check_equivalence("name: t\ninput: [1, 7, 7]\nclasses: 3\nlayers:\n"
                      "  - {name: c1, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                      "  - {type: relu}\n"
                      "  - {name: c2, type: conv2d, out: 5, kernel: 3}\n"
                      "  - {type: flatten}\n"
                      "  - {name: fc, type: linear, out: 3}\n",
                      "c1", keep, 20 + 95 + 378);
}

Test(surgery, conv_batchnorm_conv)
{
    const uint8_t keep[5] = {0, 1, 1, 0, 1};
    /* c1 3x1x3x3+3 = 30, bn 3+3 = 6, c2 4x3x3x3+4 = 112, fc 4*3*3*3+3 = 111 */
    check_equivalence("name: t\ninput: [1, 7, 7]\nclasses: 3\nlayers:\n"
                      "  - {name: c1, type: conv2d, out: 5, kernel: 3, padding: 1}\n"
                      "  - {name: bn1, type: batchnorm2d}\n"
                      "  - {type: relu}\n"
                      "  - {type: maxpool2d, kernel: 2}\n"
                      "  - {name: c2, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                      "  - {type: flatten}\n"
                      "  - {name: fc, type: linear, out: 3}\n",
                      "c1", keep, 30 + 6 + 112 + 111);
}

Test(surgery, conv_flatten_linear)
{
    const uint8_t keep[3] = {1, 0, 1};
    /* c1 2x2x3x3+2 = 38, fc1 (2*3*3)x6+6 = 114, fc2 6*3+3 = 21 */
    check_equivalence("name: t\ninput: [2, 7, 7]\nclasses: 3\nlayers:\n"
                      "  - {name: c1, type: conv2d, out: 3, kernel: 3, padding: 1}\n"
                      "  - {type: relu}\n"
                      "  - {type: maxpool2d, kernel: 2}\n"
                      "  - {type: flatten}\n"
                      "  - {name: fc1, type: linear, out: 6}\n"
                      "  - {type: relu}\n"
                      "  - {name: fc2, type: linear, out: 3}\n",
                      "c1", keep, 38 + 114 + 21);
}

Test(surgery, linear_to_linear)
{
    const uint8_t keep[7] = {1, 1, 0, 0, 1, 0, 1};
    /* fc1 49x4+4 = 200, fc2 4x3+3 = 15 */
    check_equivalence("name: t\ninput: [1, 7, 7]\nclasses: 3\nlayers:\n"
                      "  - {type: flatten}\n"
                      "  - {name: fc1, type: linear, out: 7}\n"
                      "  - {type: relu}\n"
                      "  - {type: dropout, p: 0.5}\n"
                      "  - {name: fc2, type: linear, out: 3}\n",
                      "fc1", keep, 200 + 15);
}

Test(surgery, refuses_output_layer_and_all_units)
{
    pl_model *m = pltest_model("name: t\ninput: [1, 4, 4]\nclasses: 2\nlayers:\n"
                               "  - {type: flatten}\n"
                               "  - {name: fc1, type: linear, out: 3}\n"
                               "  - {name: fc2, type: linear, out: 2}\n",
                               1);
    pl_error err;
    const uint8_t none[3] = {0, 0, 0}, one[2] = {1, 0};
    cr_assert_eq(pl_model_remove_units(m, 1, none, &err), PL_EINVAL);
    cr_assert(strstr(err.msg, "all"));
    cr_assert_eq(pl_model_remove_units(m, 2, one, &err), PL_EINVAL);
    cr_assert(strstr(err.msg, "output layer"));
    pl_model_free(m);
}

/* Params and MACs of every committed model against hand counts. */
static void counts_of(const char *file, int64_t params, int64_t macs)
{
    pl_model_spec *s;
    pl_model *m;
    pl_error err;
    cr_assert_eq(pl_model_spec_load(file, &s, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(pl_model_new(s, 1, &m, &err), PL_OK, "%s", err.msg);
    pl_counts c;
    pl_model_count(m, &c);
    cr_expect_eq(c.params, params, "%s params %lld, expected %lld", file, (long long)c.params, (long long)params);
    cr_expect_eq(c.macs, macs, "%s MACs %lld, expected %lld", file, (long long)c.macs, (long long)macs);
    cr_expect_eq(c.nonzero_params, c.params);
    cr_expect_eq(c.macs_effective, c.macs);
    pl_model_free(m);
    pl_model_spec_free(s);
}

Test(counts, committed_models)
{
    /* simple_cnn: conv1 4*1*9+4 = 40, conv2 8*4*9+8 = 296, fc1 392*64+64 = 25152,
     * fc2 64*10+10 = 650 → 26,138 (PyTorch sum(p.numel())).
     * MACs: conv1 4*28*28*9 = 28224, conv2 8*14*14*36 = 56448, fc1 25088, fc2 640 */
    counts_of("configs/models/simple_cnn.yaml", 26138, 28224 + 56448 + 25088 + 640);
    /* lenet5 (Caffe): conv1 20*25+20 = 520, conv2 50*20*25+50 = 25050,
     * fc1 800*500+500 = 400500, fc2 500*10+10 = 5010 → 431,080.
     * MACs: conv1 20*24*24*25 = 288000, conv2 50*8*8*500 = 1600000, 400000, 5000 */
    counts_of("configs/models/lenet5.yaml", 431080, 288000 + 1600000 + 400000 + 5000);
    /* lenet_300_100: 784*300+300 + 300*100+100 + 100*10+10 = 266,610 */
    counts_of("configs/models/lenet_300_100.yaml", 266610, 235200 + 30000 + 1000);
    /* vgg_mini: conv 32*9+32 = 320, bn 64, conv 32*32*9+32 = 9248, bn 64,
     * conv 64*32*9+64 = 18496, bn 128, conv 64*64*9+64 = 36928, bn 128,
     * fc1 3136*128+128 = 401536, fc2 1290 → 468,202.
     * MACs: 28*28*(32*9) = 225792, 28*28*32*288 = 7225344, 14*14*64*288 =
     * 3612672, 14*14*64*576 = 7225344, 401408, 1280 → 18,691,840 */
    counts_of("configs/models/vgg_mini.yaml", 468202, 18691840);
}
