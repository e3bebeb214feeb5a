/*
 * Graph models: the bundled graph models' counts, model-file validation of
 * inputs:/groups: (errors with file:line:col), checkpoints of graphs (format
 * 2) next to chains (still format 1), layer removal renumbering inputs, and
 * the graph forward against a hand computation.
 */
#include "checkpoint.h"
#include "identity.h"
#include "model.h"
#include "pltest.h"
#include "surgery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static void counts_are(const char *path, int64_t params, int64_t macs)
{
    pl_model *m = pltest_model_file(path, 1);
    pl_counts c;
    pl_model_count(m, &c);
    cr_assert_eq(c.params, params, "%s: %lld params, the comment says %lld", path, (long long)c.params,
                 (long long)params);
    cr_assert_eq(c.macs, macs, "%s: %lld MACs, the comment says %lld", path, (long long)c.macs, (long long)macs);
    cr_assert_not(pl_model_is_chain(m), "%s is a graph", path);
    pl_model_free(m);
}

Test(graph, bundled_counts_match_their_comments)
{
    /* PyTorch's count of the same ResNet-20 on 1x28x28 */
    counts_are("configs/models/resnet20.yaml", 272186, 31021952);
    counts_are("configs/models/mobilenet_mini.yaml", 14746, 1190752);
    counts_are("configs/models/densenet_mini.yaml", 10378, 1455464);
}

#define HEAD "name: t\ninput: [2, 6, 6]\nclasses: 3\nlayers:\n"

/* The model text fails (in the parser or in shape inference) with a message
 * starting "<file>:<where>: " and containing `needle`. */
static void fails(const char *body, const char *where, const char *needle)
{
    char text[4096];
    snprintf(text, sizeof text, HEAD "%s", body);
    char *path = pltest_write_temp(text, ".yaml");
    pl_model_spec *s = NULL;
    pl_error err = {0};
    pl_status st = pl_model_spec_load(path, &s, &err);
    if (st == PL_OK) {
        pl_model *m = NULL;
        st = pl_model_new(s, 1, &m, &err);
        pl_model_free(m);
        pl_model_spec_free(s);
    }
    cr_assert_eq(st, PL_ECONFIG, "%s: expected a configuration error (%s)", body, err.msg);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s:%s: ", path, where);
    cr_assert(!strncmp(err.msg, prefix, strlen(prefix)), "'%s' does not start with '%s'", err.msg, prefix);
    cr_assert(strstr(err.msg, needle), "'%s' lacks '%s'", err.msg, needle);
    cr_assert_null(strchr(err.msg, '\n'));
    unlink(path);
    free(path);
}

Test(graph, validation_errors_carry_positions)
{
    fails("  - {name: a, type: conv2d, out: 2, kernel: 3}\n"
          "  - {name: b, type: add, inputs: [a, nope]}\n",
          "6:38", "unknown layer 'nope'");
    fails("  - {name: a, type: conv2d, out: 2, kernel: 3, inputs: [b]}\n"
          "  - {name: b, type: relu}\n",
          "5:57", "'b' comes later in the file");
    fails("  - {name: a, type: conv2d, out: 2, kernel: 3}\n"
          "  - {name: b, type: relu, inputs: [b]}\n",
          "6:36", "cannot read its own output");
    fails("  - {name: a, type: conv2d, out: 2, kernel: 3}\n"
          "  - {name: b, type: conv2d, out: 2, kernel: 3, inputs: [input]}\n"
          "  - {type: flatten}\n",
          "5:5", "the output of layer a is never used");
    fails("  - {name: a, type: conv2d, out: 3, kernel: 3}\n"
          "  - {name: b, type: conv2d, out: 3, kernel: 1, inputs: [input]}\n"
          "  - {name: s, type: add, inputs: [a, b]}\n",
          "7:5", "add needs identical shapes");
    fails("  - {name: a, type: conv2d, out: 3, kernel: 3}\n"
          "  - {name: b, type: conv2d, out: 3, kernel: 1, inputs: [input]}\n"
          "  - {name: s, type: concat, inputs: [a, b]}\n",
          "7:5", "equal height and width");
    fails("  - {name: a, type: conv2d, out: 4, kernel: 3, groups: 3}\n", "5:56", "do not divide the 4 output");
    fails("  - {name: a, type: conv2d, out: 4, kernel: 3, groups: 4}\n", "5:5", "does not divide its 2 input");
    fails("  - {name: a, type: conv2d, out: 2, kernel: 3}\n"
          "  - {name: s, type: add, inputs: [a]}\n",
          "6:34", "needs at least two inputs");
    fails("  - {name: a, type: conv2d, out: 2, kernel: 3}\n"
          "  - {name: s, type: concat}\n",
          "6:5", "missing required key 'inputs'");
    fails("  - {name: a, type: conv2d, out: 2, kernel: 3}\n"
          "  - {name: r, type: relu, inputs: [a, input]}\n",
          "6:35", "reads one input");
    fails("  - {name: a, type: relu, groups: 2}\n", "5:27", "does not apply to relu layers");
    fails("  - {name: input, type: relu}\n", "5:12", "'input' names the model's input");
}

/* x (2x6x6) → a: 1x1 conv 2→2 (identity weights) → add [a, input] → gap →
 * flatten → linear: the logits are known in closed form. */
Test(graph, forward_by_hand)
{
    pl_model *m = pltest_model(HEAD "  - {name: a, type: conv2d, out: 2, kernel: 1, bias: false}\n"
                                    "  - {name: s, type: add, inputs: [a, input]}\n"
                                    "  - {name: c, type: concat, inputs: [s, a, input]}\n"
                                    "  - {name: g, type: global_avgpool}\n"
                                    "  - {type: flatten}\n"
                                    "  - {name: fc, type: linear, out: 3, bias: false}\n",
                               1);
    pl_layer *a = &m->layers[0], *fc = &m->layers[5];
    cr_assert_eq(m->layers[2].out_c, 6);
    cr_assert_eq(fc->in_c, 6);
    a->w[0] = 1, a->w[1] = 0, a->w[2] = 0, a->w[3] = 1; /* a = x */
    for (int o = 0; o < 3; o++)
        for (int i = 0; i < 6; i++)
            fc->w[o * 6 + i] = (float)(o == i % 3);
    pl_instance *be = pltest_instance(PL_KIND_BACKEND, "ref", NULL, 1, 1);
    pl_model_bind(m, pl_instance_ops(be), pl_instance_state(be));
    pl_error err;
    cr_assert_eq(pl_model_reserve(m, 1, &err), PL_OK, "%s", err.msg);
    float x[72];
    for (int i = 0; i < 72; i++)
        x[i] = i < 36 ? 1.0f : 2.0f; /* channel means 1 and 2 */
    const float *z = pl_model_forward(m, x, 1, PL_MODE_EVAL, &err);
    cr_assert(z, "%s", err.msg);
    /* c's channel means: s = 2x → 2, 4; a → 1, 2; x → 1, 2; fc sums i%3 */
    cr_assert_float_eq(z[0], 2.0f + 2.0f, 1e-5, "z0 %g", z[0]);
    cr_assert_float_eq(z[1], 4.0f + 1.0f, 1e-5, "z1 %g", z[1]);
    cr_assert_float_eq(z[2], 1.0f + 2.0f, 1e-5, "z2 %g", z[2]);
    pl_model_free(m);
    pl_instance_free(be);
}

static uint32_t file_version(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    unsigned char h[12];
    cr_assert_eq(fread(h, 1, 12, f), 12u);
    fclose(f);
    return (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 24;
}

static void same_graph(const pl_model *a, const pl_model *b)
{
    cr_assert_eq(a->n_layers, b->n_layers);
    for (int i = 0; i < a->n_layers; i++) {
        const pl_layer *x = &a->layers[i], *y = &b->layers[i];
        cr_assert_eq(x->type, y->type);
        cr_assert_eq(x->groups, y->groups, "%s: groups", x->name);
        cr_assert_eq(x->n_in, y->n_in, "%s: n_in", x->name);
        for (int k = 0; k < x->n_in; k++)
            cr_assert_eq(x->in[k], y->in[k], "%s: in[%d]", x->name, k);
        cr_assert_eq(x->nw, y->nw);
        if (x->nw)
            cr_assert(!memcmp(x->w, y->w, (size_t)x->nw * sizeof(float)), "%s: weights", x->name);
    }
}

Test(graph, checkpoints_store_the_graph_and_chains_keep_format_1)
{
    char *dir = pltest_tmpdir();
    char path[512];
    pl_error err;
    const char *models[] = {"configs/models/resnet20.yaml", "configs/models/mobilenet_mini.yaml",
                            "configs/models/densenet_mini.yaml", "configs/models/simple_cnn.yaml"};
    for (int k = 0; k < 4; k++) {
        pl_model *m = pltest_model_file(models[k], 1);
        snprintf(path, sizeof path, "%s/m%d.ckpt", dir, k);
        cr_assert_eq(pl_checkpoint_save(path, m, "meta", 0, &err), PL_OK, "%s", err.msg);
        /* a chain is written the old way (format 1), which still loads */
        cr_assert_eq(file_version(path), k == 3 ? 1u : 2u, "%s", models[k]);
        pl_model *b = NULL;
        char *meta = NULL;
        cr_assert_eq(pl_checkpoint_load(path, &b, &meta, &err), PL_OK, "%s", err.msg);
        same_graph(m, b);
        free(meta);
        pl_model_free(b);
        /* a graph the loader would refuse is not written either */
        if (k == 0) {
            int keep = m->layers[8].in[1];
            m->layers[8].in[1] = 12; /* s1b1_add reading a later layer */
            cr_assert_eq(pl_checkpoint_save(path, m, NULL, 0, &err), PL_EINVAL);
            cr_assert(strstr(err.msg, "not an earlier layer"), "%s", err.msg);
            m->layers[8].in[1] = keep;
            m->layers[3].groups = 3; /* 16 channels */
            cr_assert_eq(pl_checkpoint_save(path, m, NULL, 0, &err), PL_EINVAL);
            cr_assert(strstr(err.msg, "groups 3 does not divide"), "%s", err.msg);
        }
        pl_model_free(m);
    }
    free(dir);
}

/* Removing a span from a chain renumbers the inputs of the layers after it. */
Test(graph, remove_layers_renumbers_inputs)
{
    pl_model *m = pltest_model(HEAD "  - {name: a, type: conv2d, out: 2, kernel: 3, padding: 1}\n"
                                    "  - {name: b, type: conv2d, out: 2, kernel: 3, padding: 1}\n"
                                    "  - {name: r, type: relu}\n"
                                    "  - {type: flatten}\n"
                                    "  - {name: fc, type: linear, out: 3}\n",
                               1);
    pl_error err;
    cr_assert_eq(pl_model_remove_layers(m, 1, 2, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(m->n_layers, 3);
    cr_assert(pl_model_is_chain(m));
    for (int i = 0; i < m->n_layers; i++)
        cr_assert_eq(m->layers[i].in[0], i - 1, "layer %d reads %d", i, m->layers[i].in[0]);
    pl_model_free(m);
}

/* The run identity covers the graph: two models differing only in what a
 * layer reads, or in groups, are different models (a chain's text is as
 * before: no graph fields). */
Test(graph, canonical_text_covers_inputs_and_groups)
{
    const char *texts[] = {
        HEAD "  - {name: a, type: conv2d, out: 2, kernel: 1}\n"
             "  - {name: b, type: conv2d, out: 2, kernel: 1}\n"
             "  - {name: s, type: add, inputs: [a, b]}\n  - {type: flatten}\n  - {type: linear, out: 3}\n",
        HEAD "  - {name: a, type: conv2d, out: 2, kernel: 1}\n"
             "  - {name: b, type: conv2d, out: 2, kernel: 1}\n"
             "  - {name: s, type: add, inputs: [b, a]}\n  - {type: flatten}\n  - {type: linear, out: 3}\n",
        HEAD "  - {name: a, type: conv2d, out: 2, kernel: 1}\n"
             "  - {name: b, type: conv2d, out: 2, kernel: 1, groups: 2}\n"
             "  - {name: s, type: add, inputs: [b, a]}\n  - {type: flatten}\n  - {type: linear, out: 3}\n",
        HEAD "  - {name: a, type: conv2d, out: 2, kernel: 1}\n  - {type: flatten}\n  - {type: linear, out: 3}\n",
    };
    char *canon[4];
    for (int k = 0; k < 4; k++) {
        char *path = pltest_write_temp(texts[k], ".yaml");
        pl_model_spec *s = NULL;
        pl_error err = {0};
        cr_assert_eq(pl_model_spec_load(path, &s, &err), PL_OK, "%s", err.msg);
        canon[k] = pl_model_spec_canonical(s);
        cr_assert(canon[k]);
        pl_model_spec_free(s);
        unlink(path);
        free(path);
    }
    cr_assert(strcmp(canon[0], canon[1]), "inputs order not in the identity");
    cr_assert(strcmp(canon[1], canon[2]), "groups not in the identity");
    cr_assert_null(strstr(canon[3], "inputs="));
    cr_assert_null(strstr(canon[3], "groups="));
    for (int k = 0; k < 4; k++)
        free(canon[k]);
}
