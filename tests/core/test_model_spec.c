/*
 * test_model_spec.c — model files: the committed models load and match the
 * parameter and MAC counts of docs/design.md "Models"; defaults; errors carry
 * file:line:col.
 */
#include "config.h"
#include "identity.h"
#include "model.h"
#include "pltest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX "tests/fixtures/config/models/"

static pl_model_spec *load_ok(const char *path)
{
    pl_model_spec *m = NULL;
    pl_error err = {0};
    cr_assert_eq(pl_model_spec_load(path, &m, &err), PL_OK, "%s", err.msg);
    cr_assert_not_null(m);
    return m;
}

/* A refused model: its input (a model file, or for build() the layers of
 * its model), the line:col the message names (NULL: none) and the text
 * that follows. */
typedef struct {
    const char *input, *pos, *want;
} err_case;

/* Case k's message is "<path>:<pos>: <want>..." ("<path>: <want>..." without a position). */
static void expect_msg(const char *msg, const char *path, const err_case *c, size_t k)
{
    char want[1024];
    if (c->pos)
        snprintf(want, sizeof want, "%s:%s: %s", path, c->pos, c->want);
    else
        snprintf(want, sizeof want, "%s: %s", path, c->want);
    cr_expect(strncmp(msg, want, strlen(want)) == 0, "case %zu: message '%s' does not start with '%s'", k, msg,
              want);
}

/* Independent hand count: walks the shapes, sums params and MACs. */
static void count(const pl_model_spec *m, long *params, long *macs)
{
    long c = m->in_c, h = m->in_h, w = m->in_w, flat = 0;
    *params = *macs = 0;
    for (size_t i = 0; i < m->n_layers; i++) {
        const pl_layer_spec *l = &m->layers[i];
        switch (l->type) {
        case PL_LAYER_CONV2D: {
            long oh = (h + 2 * l->ph - l->kh) / l->sh + 1, ow = (w + 2 * l->pw - l->kw) / l->sw + 1;
            *params += (long)l->out * c * l->kh * l->kw + (l->bias ? l->out : 0);
            *macs += (long)l->out * oh * ow * c * l->kh * l->kw;
            c = l->out, h = oh, w = ow;
            break;
        }
        case PL_LAYER_MAXPOOL2D:
        case PL_LAYER_AVGPOOL2D:
            h = (h + 2 * l->ph - l->kh) / l->sh + 1;
            w = (w + 2 * l->pw - l->kw) / l->sw + 1;
            break;
        case PL_LAYER_BATCHNORM2D:
            *params += 2 * c;
            break;
        case PL_LAYER_FLATTEN:
            flat = c * h * w;
            break;
        case PL_LAYER_LINEAR:
            *params += (long)l->out * flat + (l->bias ? l->out : 0);
            *macs += (long)l->out * flat;
            flat = l->out;
            break;
        default:
            break;
        }
    }
    cr_assert_eq(flat, m->classes, "%s: last layer gives %ld outputs", m->name, flat);
}

Test(model_spec, simple_cnn_is_the_seed_network)
{
    pl_model_spec *m = load_ok("configs/models/simple_cnn.yaml");
    cr_assert_str_eq(m->name, "simple_cnn");
    cr_assert_eq(m->in_c, 1);
    cr_assert_eq(m->in_h, 28);
    cr_assert_eq(m->in_w, 28);
    cr_assert_eq(m->classes, 10);
    static const char *names[] = {"conv1", "relu1", "maxpool2d1", "conv2", "relu2",
                                  "maxpool2d2", "flatten1", "fc1", "relu3", "fc2"};
    cr_assert_eq(m->n_layers, 10);
    for (size_t i = 0; i < 10; i++)
        cr_assert_str_eq(m->layers[i].name, names[i]);
    const pl_layer_spec *c1 = &m->layers[0], *p1 = &m->layers[2];
    cr_assert_eq(c1->type, PL_LAYER_CONV2D);
    cr_assert_eq(c1->out, 4);
    cr_assert_eq(c1->kh, 3);
    cr_assert_eq(c1->kw, 3);
    cr_assert_eq(c1->sh, 1);
    cr_assert_eq(c1->ph, 1);
    cr_assert_eq(c1->bias, 1);
    cr_assert_eq(c1->line, 8);
    cr_assert_eq(c1->col, 5);
    cr_assert_eq(p1->type, PL_LAYER_MAXPOOL2D);
    cr_assert_eq(p1->sh, 2, "pool stride defaults to the kernel");
    cr_assert_eq(m->layers[7].type, PL_LAYER_LINEAR);
    cr_assert_eq(m->layers[7].out, 64);
    long params, macs;
    count(m, &params, &macs);
    cr_assert_eq(params, 26138); /* sum(p.numel()) of the PyTorch SimpleCNN */
    cr_assert_eq(macs, 28224 + 56448 + 25088 + 640); /* 110,400 per image */
    pl_model_spec_free(m);
}

Test(model_spec, lenet5_has_431080_params)
{
    pl_model_spec *m = load_ok("configs/models/lenet5.yaml");
    long params, macs;
    count(m, &params, &macs);
    cr_assert_eq(params, 431080);
    for (size_t i = 0; i < 4; i++)
        cr_assert_neq(m->layers[i].type, PL_LAYER_RELU, "no ReLU after the convs in the Caffe net");
    pl_model_spec_free(m);
}

Test(model_spec, lenet_300_100_has_266610_params)
{
    pl_model_spec *m = load_ok("configs/models/lenet_300_100.yaml");
    long params, macs;
    count(m, &params, &macs);
    cr_assert_eq(params, 266610);
    cr_assert_str_eq(m->layers[5].name, "fc3");
    pl_model_spec_free(m);
}

Test(model_spec, vgg_mini_has_about_18_7M_macs)
{
    pl_model_spec *m = load_ok("configs/models/vgg_mini.yaml");
    long params, macs;
    count(m, &params, &macs);
    cr_assert_eq(macs, 18691840);
    cr_assert_eq(params, 468202);
    cr_assert_eq(m->layers[1].type, PL_LAYER_BATCHNORM2D);
    cr_assert_eq(m->layers[1].eps, 1e-5);
    cr_assert_eq(m->layers[1].momentum, 0.1);
    pl_model_spec_free(m);
}

Test(model_spec, pairs_and_defaults)
{
    pl_model_spec *m = load_ok(FIX "pairs.yaml");
    const pl_layer_spec *c = &m->layers[0];
    cr_assert_str_eq(c->name, "conv2d1");
    cr_assert_eq(c->kh, 3);
    cr_assert_eq(c->kw, 5);
    cr_assert_eq(c->sh, 1);
    cr_assert_eq(c->sw, 2);
    cr_assert_eq(c->ph, 1);
    cr_assert_eq(c->pw, 2);
    cr_assert_eq(c->bias, 0);
    cr_assert_eq(m->layers[1].eps, 0.001);
    cr_assert_eq(m->layers[1].momentum, 0.01);
    cr_assert_eq(m->layers[3].type, PL_LAYER_AVGPOOL2D);
    cr_assert_eq(m->layers[3].sh, 2);
    cr_assert_eq(m->layers[4].sh, 1);
    cr_assert_eq(m->layers[5].type, PL_LAYER_DROPOUT);
    cr_assert_eq(m->layers[5].p, 0.25);
    cr_assert_str_eq(m->layers[7].name, "linear1");
    pl_model_spec_free(m);
}

Test(model_spec, errors_carry_positions)
{
    static const err_case bad[] = {
        {FIX "bad_kernel.yaml", "6:31", "maxpool2d1.kernel must be >= 1 (got 0)"},
        {FIX "bad_type.yaml", "6:12", "layers[1]: unknown layer type 'relux' (did you mean 'relu'?)"},
        {FIX "bad_key.yaml", "5:28", "unknown key 'kernal' in a layer (did you mean 'kernel'?)"},
        {FIX "dup_name.yaml", "6:5", "duplicate layer name 'relu1' (first at line 5)"},
        {"tests/fixtures/config/empty.yaml", NULL, "empty model file"},
        {"tests/fixtures/config/tab.yaml", "4:1", "invalid YAML"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        pl_model_spec *m = (pl_model_spec *)0x1;
        pl_error err = {0};
        cr_assert_eq(pl_model_spec_load(bad[k].input, &m, &err), PL_ECONFIG, "case %zu: %s", k, err.msg);
        cr_assert_null(m, "case %zu", k);
        expect_msg(err.msg, bad[k].input, &bad[k], k);
    }
}

Test(model_spec, resnet20_cifar_counts_match_its_comment)
{
    pl_model *m = pltest_model_file("configs/models/resnet20_cifar.yaml", 1); /* a graph: the model counts */
    pl_counts c;
    pl_model_count(m, &c);
    cr_expect_eq(c.params, 272474);
    cr_expect_eq(c.macs, 40813184);
    cr_expect(m->in_c == 3 && m->in_h == 32 && m->in_w == 32);
    pl_model_free(m);
}

Test(model_spec, vgg_mini_cifar_counts_match_its_comment)
{
    pl_model_spec *m = load_ok("configs/models/vgg_mini_cifar.yaml");
    long params, macs;
    count(m, &params, &macs);
    cr_assert_eq(params, 591658);
    cr_assert_eq(macs, 25003264);
    cr_assert_eq(m->in_c, 3);
    pl_model_spec_free(m);
}

/* count_include_pad: false on an average pool without any padding divides
 * exactly as true does: not stored, so the model's canonical text (its
 * identity) and its checkpoint format are those of the plain pool. With
 * padding it is kept. */
Test(model_spec, exclude_pad_without_padding_is_not_stored)
{
    char dir[] = "/tmp/plspecXXXXXX";
    cr_assert(mkdtemp(dir));
    const char *body[3] = {
        "  - {type: avgpool2d, kernel: 2}\n",
        "  - {type: avgpool2d, kernel: 2, padding: [0, 0, 0, 0], count_include_pad: false}\n",
        "  - {type: avgpool2d, kernel: 2, padding: 1, count_include_pad: false}\n",
    };
    char *canon[3];
    for (int k = 0; k < 3; k++) {
        char path[64];
        snprintf(path, sizeof path, "%s/m%d.yaml", dir, k);
        FILE *f = fopen(path, "w");
        cr_assert(f);
        fprintf(f, "name: ex\ninput: [1, 4, 4]\nclasses: 3\nlayers:\n%s  - {type: flatten}\n"
                   "  - {type: linear, out: 3}\n", body[k]);
        fclose(f);
        pl_model_spec *m = load_ok(path);
        cr_expect_eq(m->layers[0].excl_pad, k == 2, "case %d: excl_pad %d", k, m->layers[0].excl_pad);
        canon[k] = pl_model_spec_canonical(m);
        cr_assert(canon[k]);
        pl_model_spec_free(m);
        remove(path);
    }
    cr_expect_str_eq(canon[0], canon[1]);
    cr_expect_str_neq(canon[0], canon[2]);
    for (int k = 0; k < 3; k++)
        free(canon[k]);
    rmdir(dir);
}

/* validate/eval's model table: a layer with asymmetric padding, dilation or
 * count_include_pad false says so, and that it runs on the host's kernels;
 * a plain layer's line has none of it. */
Test(model_spec, print_shows_geometry_and_host_kernel)
{
    pl_layer_spec ls[] = {
        {.name = "c1", .type = PL_LAYER_CONV2D, .out = 2, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 0,
         .bias = 1, .pad_xb = 1, .pad_xr = 1, .dil_h = 2},
        {.name = "plain", .type = PL_LAYER_CONV2D, .out = 2, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1,
         .bias = 1},
        {.name = "p2", .type = PL_LAYER_AVGPOOL2D, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1,
         .excl_pad = 1},
        {.name = "flat", .type = PL_LAYER_FLATTEN},
        {.name = "fc", .type = PL_LAYER_LINEAR, .out = 3, .bias = 1},
    };
    pl_model_spec spec = {.file = "test.yaml", .name = "geo", .in_c = 1, .in_h = 9, .in_w = 8, .classes = 3,
                          .layers = ls, .n_layers = sizeof ls / sizeof ls[0]};
    pl_model *m = NULL;
    pl_error err = {0};
    cr_assert_eq(pl_model_new(&spec, 1, &m, &err), PL_OK, "%s", err.msg);
    FILE *f = tmpfile();
    cr_assert(f);
    pl_model_print(m, f);
    char text[4096];
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    pl_model_free(m);
    const char *c1 = strstr(text, "\n  c1 "), *plain = strstr(text, "\n  plain "), *p2 = strstr(text, "\n  p2 ");
    cr_assert(c1 && plain && p2, "%s", text);
    static const char want_c1[] = "   pads 1,0,2,1   dilation 2,1   (host kernel, single-threaded)\n",
                      want_p2[] = "   exclude pad   (host kernel, single-threaded)\n";
    const char *a = strstr(c1, "   pads"), *b = strstr(p2, "   exclude");
    cr_expect(a && !strncmp(a, want_c1, strlen(want_c1)), "%s", text);
    cr_expect(b && !strncmp(b, want_p2, strlen(want_p2)), "%s", text);
    const char *eol = strchr(plain + 1, '\n'), *h = strstr(plain, "host"), *pd = strstr(plain, "pads");
    cr_expect(eol && (!h || h > eol) && (!pd || pd > eol), "%s", text);
}

/* slice: `channels: [start, end]` half-open; a bad range is an error at the
 * key (parse) or at the layer (build: past the input's channels); the
 * table prints the range; the canonical text (run identity) carries it. */
static pl_status build(const char *layers, pl_model **m, pl_error *err, char **path)
{
    char text[1024];
    snprintf(text, sizeof text, "name: sl\ninput: [4, 3, 3]\nclasses: 3\nlayers:\n%s"
                                "  - {type: flatten}\n  - {name: fc, type: linear, out: 3}\n", layers);
    *path = pltest_write_temp(text, ".yaml");
    pl_model_spec *spec = NULL;
    pl_status s = pl_model_spec_load(*path, &spec, err);
    if (!s)
        s = pl_model_new(spec, 1, m, err);
    pl_model_spec_free(spec);
    return s;
}

Test(model_spec, slice_layer)
{
    static const err_case bad[] = {
        {"  - {name: s, type: slice, channels: [2, 2]}\n", "5:38",
         "s.channels: start 2 is not below end 2 (the range is half-open"},
        {"  - {name: s, type: slice, channels: [-1, 2]}\n", "5:39", "s.channels must be >= 0 (got -1)"},
        {"  - {name: s, type: slice, channels: 2}\n", "5:38", "s.channels: expected [start, end] (got 2)"},
        {"  - {name: s, type: slice}\n", "5:5", "s: missing required key 'channels'"},
        {"  - {name: s, type: slice, channels: [1, 2], kernel: 3}\n", "5:46", "key 'kernel' does not apply to slice"},
        {"  - {name: s, type: slice, channels: [1, 5]}\n", "5:5",
         "layer s (slice): channels [1, 5] are not a range inside its input's 4 channels"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        pl_model *m = NULL;
        pl_error err = {0};
        char *path;
        cr_expect_eq(build(bad[k].input, &m, &err, &path), PL_ECONFIG, "case %zu built", k);
        expect_msg(err.msg, path, &bad[k], k);
        pl_model_free(m);
        remove(path);
        free(path);
    }
    pl_model *m = NULL;
    pl_error err = {0};
    char *path;
    cr_assert_eq(build("  - {name: s, type: slice, channels: [1, 3]}\n", &m, &err, &path), PL_OK, "%s", err.msg);
    cr_expect_eq(m->layers[0].out_c, 2);
    cr_expect_eq(m->layers[0].nw + m->layers[0].nb, 0);
    FILE *f = tmpfile();
    cr_assert(f);
    pl_model_print(m, f);
    char text[4096];
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    cr_expect(strstr(text, "slice        2x3x3") && strstr(text, "   channels 1-2\n"), "%s", text);
    pl_model_free(m);
    pl_model_spec *spec = load_ok(path);
    char *canon = pl_model_spec_canonical(spec);
    cr_expect(canon && strstr(canon, " channels=1,3\n"), "%s", canon);
    free(canon);
    pl_model_spec_free(spec);
    remove(path);
    free(path);
}
