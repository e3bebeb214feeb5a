/*
 * The ONNX project's own backend test cases, run through prunelab's
 * importer (Debian's libonnx-testdata: /usr/share/libonnx-testdata/data,
 * or the directory in PL_ONNX_TESTDATA).
 *
 * Every case of node/, pytorch-converted/ and pytorch-operator/ is a
 * model.onnx with test_data_set_N/input_K.pb and the expected
 * output_K.pb. For each case:
 *   - graph inputs after the first that only Add and Concat nodes read
 *     are data: the importer packs every data input along the channels
 *     (axis 1) into the model's one input, in graph-input order, and the
 *     runner packs input_K.pb the same way before running;
 *   - the other graph inputs after the first that have data (a Conv's W,
 *     a Gemm's B) become initializers: prunelab models carry their
 *     weights, the ONNX runner feeds them as inputs;
 *   - the model is imported as a user's would be (pl_model_spec_load on a
 *     .onnx file, pl_model_new) and run on the ref backend in eval mode on
 *     every data set; the output must match within |got - want| <=
 *     1e-5 + 1e-4 * |want| (ONNX's own runner's kind of tolerance) —
 *     "passed";
 *   - or the importer refuses it with its one-line error naming the op —
 *     "refused";
 *   - anything else (wrong numbers, a refusal that is not one line or
 *     does not name the op, an unreadable case) is "failed".
 * The test fails when any case failed. It prints the counts per directory
 * and per operator, and every refusal with its reason, in the test log.
 */
#include "model.h"
#include "onnx_pb.h"
#include "pltest.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_OPS 256

typedef struct op_tally {
    char op[256];
    int passed, refused, failed;
} op_tally;

typedef struct tally {
    int passed, refused, failed;
    op_tally ops[MAX_OPS];
    int n_ops;
} tally;

static op_tally *op_slot(tally *t, const char *op)
{
    for (int i = 0; i < t->n_ops; i++)
        if (!strcmp(t->ops[i].op, op))
            return &t->ops[i];
    cr_assert_lt(t->n_ops, MAX_OPS, "more than %d operator keys", MAX_OPS);
    op_tally *s = &t->ops[t->n_ops++];
    memset(s, 0, sizeof *s);
    snprintf(s->op, sizeof s->op, "%s", op);
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of dir's entries starting with prefix (caller frees). */
static char **list_dir(const char *dir, const char *prefix, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **v = NULL;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) || e->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            v = realloc(v, (size_t)cap * sizeof *v);
            cr_assert(v);
        }
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (*n)
        qsort(v, (size_t)*n, sizeof *v, cmp_str);
    return v;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static Onnx__TensorProto *read_tensor(const char *path)
{
    char *data;
    size_t len;
    pl_error err;
    if (pl__read_file(path, &data, &len, &err))
        return NULL;
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(&pl__onnx_allocator, len, (const uint8_t *)data);
    free(data);
    return t;
}

static void free_tensor(Onnx__TensorProto *t)
{
    if (t)
        onnx__tensor_proto__free_unpacked(t, &pl__onnx_allocator);
}

/* The tensor's float values as a new array of *n floats, or NULL when it
 * is not a float tensor (or its data is inconsistent with its dims). */
static float *tensor_floats(const Onnx__TensorProto *t, size_t *n)
{
    size_t count = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || t->dims[i] > (1 << 28))
            return NULL;
        count *= (size_t)t->dims[i];
        if (count > ((size_t)1 << 28))
            return NULL;
    }
    if (t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return NULL;
    float *v = malloc((count ? count : 1) * sizeof *v);
    cr_assert(v);
    if (t->raw_data.len) {
        if (t->raw_data.len != count * sizeof(float)) {
            free(v);
            return NULL;
        }
        memcpy(v, t->raw_data.data, count * sizeof(float)); /* little-endian hosts only */
    } else if (t->n_float_data == count) {
        memcpy(v, t->float_data, count * sizeof(float));
    } else {
        free(v);
        return NULL;
    }
    *n = count;
    return v;
}

/* "Conv" or "Add+Relu": the case's distinct op types in node order. */
static void op_key(const Onnx__ModelProto *mp, char *key, size_t cap)
{
    key[0] = 0;
    const Onnx__GraphProto *g = mp->graph;
    for (size_t i = 0; g && i < g->n_node; i++) {
        const char *op = g->node[i]->op_type ? g->node[i]->op_type : "?";
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            seen |= g->node[j]->op_type && !strcmp(g->node[j]->op_type, op);
        if (seen)
            continue;
        size_t len = strlen(key);
        snprintf(key + len, cap - len, "%s%s", len ? "+" : "", op);
    }
    if (!key[0])
        snprintf(key, cap, "(no nodes)");
}

/* 1 when the graph's nodes that read `name` are all Add or Concat (and
 * there is one): a data operand, packed with the first input. */
static int is_data_operand(const Onnx__GraphProto *g, const char *name)
{
    int readers = 0;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *n = g->node[i];
        for (size_t k = 0; k < n->n_input; k++) {
            if (!n->input[k] || strcmp(n->input[k], name))
                continue;
            if (!n->op_type || (strcmp(n->op_type, "Add") && strcmp(n->op_type, "Concat")))
                return 0;
            readers++;
        }
    }
    return readers > 0;
}

static int is_initializer(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, name))
            return 1;
    return 0;
}

typedef enum verdict { V_PASSED, V_REFUSED, V_FAILED } verdict;

/* The operators every 2-D case of which must pass (issue #18): a case
 * made of one of these alone ("Conv", not "Conv+Relu") that is refused
 * fails the test, unless it is listed in refused_ok below. */
static const char *const must_pass[] = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization",
                                        "Relu", "Add", "Concat", "Flatten", "Gemm", "MatMul", NULL};

/* Cases of those operators that prunelab refuses on purpose, each with the
 * reason. A listed case that passes fails the test too (take it off the
 * list), so the list stays the truth. */
static const struct {
    const char *name, *why;
} refused_ok[] = {
    /* not 2-D: 1-D ([N, C, L]) and 3-D ([N, C, D, H, W]) convolutions and pools */
    {"node/test_averagepool_1d_default", "1-D"},
    {"node/test_averagepool_3d_default", "3-D"},
    {"node/test_maxpool_1d_default", "1-D"},
    {"node/test_maxpool_3d_default", "3-D"},
    {"pytorch-converted/test_AvgPool3d", "3-D"},
    {"pytorch-converted/test_AvgPool3d_stride", "3-D"},
    {"pytorch-converted/test_AvgPool3d_stride1_pad0_gpu_input", "3-D"},
    {"pytorch-converted/test_BatchNorm3d_eval", "3-D"},
    {"pytorch-converted/test_BatchNorm3d_momentum_eval", "3-D"},
    {"pytorch-converted/test_Conv1d", "1-D"},
    {"pytorch-converted/test_Conv1d_dilated", "1-D"},
    {"pytorch-converted/test_Conv1d_groups", "1-D"},
    {"pytorch-converted/test_Conv1d_pad1", "1-D"},
    {"pytorch-converted/test_Conv1d_pad1size1", "1-D"},
    {"pytorch-converted/test_Conv1d_pad2", "1-D"},
    {"pytorch-converted/test_Conv1d_pad2size1", "1-D"},
    {"pytorch-converted/test_Conv1d_stride", "1-D"},
    {"pytorch-converted/test_Conv3d", "3-D"},
    {"pytorch-converted/test_Conv3d_dilated", "3-D"},
    {"pytorch-converted/test_Conv3d_dilated_strided", "3-D"},
    {"pytorch-converted/test_Conv3d_groups", "3-D"},
    {"pytorch-converted/test_Conv3d_no_bias", "3-D"},
    {"pytorch-converted/test_Conv3d_stride", "3-D"},
    {"pytorch-converted/test_Conv3d_stride_padding", "3-D"},
    {"pytorch-converted/test_MaxPool1d", "1-D"},
    {"pytorch-converted/test_MaxPool1d_stride", "1-D"},
    {"pytorch-converted/test_MaxPool1d_stride_padding_dilation", "1-D"},
    {"pytorch-converted/test_MaxPool3d", "3-D"},
    {"pytorch-converted/test_MaxPool3d_stride", "3-D"},
    {"pytorch-converted/test_MaxPool3d_stride_padding", "3-D"},
    {"pytorch-operator/test_operator_maxpool", "1-D"},
    {"node/test_matmul_3d", "batched 3-D MatMul"},
    {"node/test_matmul_4d", "batched 4-D MatMul"},
    /* not float32 */
    {"node/test_add_uint8", "uint8"},
    {"node/test_maxpool_2d_uint8", "uint8"},
    {"pytorch-operator/test_operator_add_broadcast", "float64"},
    {"pytorch-operator/test_operator_add_size1_broadcast", "float64"},
    {"pytorch-operator/test_operator_add_size1_right_broadcast", "float64"},
    {"pytorch-operator/test_operator_add_size1_singleton_broadcast", "float64"},
    /* Add and Concat of two graph inputs: packed along the channels into
     * the model's one input (docs/onnx.md); these cannot be */
    {"node/test_add_bcast", "y [5] broadcasts: 1-D input, and add needs the same shape"},
    {"node/test_concat_1d_axis_0", "1-D inputs (axis 0 is the batch)"},
    {"node/test_concat_1d_axis_negative_1", "1-D inputs (axis 0 is the batch)"},
    {"node/test_concat_2d_axis_0", "concat only along the channel axis (axis 0 is the batch)"},
    {"node/test_concat_2d_axis_negative_2", "concat only along the channel axis (axis 0 is the batch)"},
    {"node/test_concat_3d_axis_0", "concat only along the channel axis (axis 0 is the batch)"},
    {"node/test_concat_3d_axis_negative_3", "concat only along the channel axis (axis 0 is the batch)"},
    {"node/test_concat_3d_axis_2", "concat only along the channel axis (axis 2 is spatial)"},
    {"node/test_concat_3d_axis_negative_1", "concat only along the channel axis (axis 2 is spatial)"},
    /* the batch axis would move or mix: prunelab keeps one row per image */
    {"node/test_flatten_axis0", "flattens the batch axis"},
    {"node/test_flatten_axis2", "flattens into the batch axis"},
    {"node/test_flatten_axis3", "flattens into the batch axis"},
    {"node/test_flatten_negative_axis1", "flattens into the batch axis"},
    {"node/test_flatten_negative_axis2", "flattens into the batch axis"},
    {"node/test_flatten_negative_axis4", "flattens the batch axis"},
    {"pytorch-operator/test_operator_view", "1-D input"},
    {"node/test_gemm_transposeA", "transA transposes the batch axis"},
    {"node/test_gemm_all_attributes", "transA transposes the batch axis"},
    {"node/test_gemm_default_matrix_bias", "a bias row per image"},
    {"pytorch-operator/test_operator_addmm", "the bias is computed by the graph"},
    /* more than one output: training statistics, MaxPool's indices */
    {"node/test_batchnorm_epsilon_training_mode", "training mode"},
    {"node/test_batchnorm_example_training_mode", "training mode"},
    {"node/test_maxpool_with_argmax_2d_precomputed_pads", "second output (indices)"},
    {"node/test_maxpool_with_argmax_2d_precomputed_strides", "second output (indices)"},
};

static int is_must_pass(const char *key)
{
    for (size_t i = 0; must_pass[i]; i++)
        if (!strcmp(must_pass[i], key))
            return 1;
    return 0;
}

static const char *refused_reason(const char *dir, const char *name)
{
    char full[512];
    snprintf(full, sizeof full, "%s/%s", dir, name);
    for (size_t i = 0; i < sizeof refused_ok / sizeof refused_ok[0]; i++)
        if (!strcmp(refused_ok[i].name, full))
            return refused_ok[i].why;
    return NULL;
}

/* Runs one case directory; *why gets the reason for a refusal or failure. */
static verdict run_case(const char *dir, const char *tmp, pl_instance *be, char *key, size_t keycap, char *why,
                        size_t whycap, int *names_op)
{
    *names_op = 1;
    char path[4096];
    snprintf(key, keycap, "(unreadable)");
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    pl_error err = {0};
    Onnx__ModelProto *mp = NULL;
    if (pl_onnx_read(path, &mp, &err)) {
        snprintf(why, whycap, "the case's model.onnx does not parse: %s", err.msg);
        return V_FAILED;
    }
    op_key(mp, key, keycap);
    int n_sets;
    char **sets = list_dir(dir, "test_data_set_", &n_sets);
    if (!mp->graph || n_sets == 0) {
        pl_onnx_free(mp);
        free_list(sets, n_sets);
        snprintf(why, whycap, "no graph or no test_data_set_*");
        return V_FAILED;
    }
    /* graph inputs that are not initializers, in order; the first and the
     * data operands of Add/Concat are packed into the model's input
     * (input_K.pb for K in data_k[]), the others become initializers from
     * data set 0 */
    Onnx__GraphProto *g = mp->graph;
    size_t n_real = 0;
    Onnx__TensorProto **folded = calloc(g->n_input + 1, sizeof *folded);
    size_t *data_k = calloc(g->n_input + 1, sizeof *data_k), n_data = 0;
    cr_assert(folded && data_k);
    size_t n_folded = 0;
    for (size_t i = 0; i < g->n_input; i++) {
        const char *name = g->input[i]->name ? g->input[i]->name : "";
        if (is_initializer(g, name))
            continue;
        if (n_real++ == 0 || is_data_operand(g, name)) {
            data_k[n_data++] = n_real - 1;
            continue;
        }
        snprintf(path, sizeof path, "%s/%s/input_%zu.pb", dir, sets[0], n_real - 1);
        Onnx__TensorProto *t = read_tensor(path);
        if (t) {
            free(t->name);
            t->name = strdup(name);
            cr_assert(t->name);
            folded[n_folded++] = t;
        }
    }
    Onnx__TensorProto **inits = g->initializer;
    size_t n_inits = g->n_initializer;
    Onnx__TensorProto **all = NULL;
    if (n_folded) {
        all = calloc(n_inits + n_folded, sizeof *all);
        cr_assert(all);
        if (n_inits)
            memcpy(all, inits, n_inits * sizeof *all);
        memcpy(all + n_inits, folded, n_folded * sizeof *all);
        g->initializer = all;
        g->n_initializer = n_inits + n_folded;
    }
    snprintf(path, sizeof path, "%s/case.onnx", tmp);
    pl_status ws = pl_onnx_write(path, mp, &err);
    g->initializer = inits; /* give the model back its own array before freeing */
    g->n_initializer = n_inits;
    free(all);
    for (size_t i = 0; i < n_folded; i++)
        free_tensor(folded[i]);
    free(folded);
    pl_onnx_free(mp);
    if (ws) {
        free(data_k);
        free_list(sets, n_sets);
        snprintf(why, whycap, "could not write the case: %s", err.msg);
        return V_FAILED;
    }

    pl_model_spec *spec = NULL;
    pl_model *m = NULL;
    pl_status s = pl_model_spec_load(path, &spec, &err);
    if (!s)
        s = pl_model_new(spec, 1, &m, &err);
    pl_model_spec_free(spec);
    if (s) {
        free(data_k);
        free_list(sets, n_sets);
        snprintf(why, whycap, "%s", err.msg);
        /* a refusal is the importer's one line; it should name the
         * operator (counted apart when it names none) */
        if (strchr(err.msg, '\n') || !err.msg[0])
            return V_FAILED;
        *names_op = 0;
        char ops[256];
        snprintf(ops, sizeof ops, "%s", key);
        for (char *save = NULL, *tok = strtok_r(ops, "+", &save); tok; tok = strtok_r(NULL, "+", &save))
            *names_op |= strstr(err.msg, tok) != NULL;
        return V_REFUSED;
    }
    pl_model_bind(m, pl_instance_ops(be), pl_instance_state(be));
    verdict v = V_PASSED;
    why[0] = 0;
    for (int k = 0; k < n_sets && v == V_PASSED; k++) {
        snprintf(path, sizeof path, "%s/%s/output_0.pb", dir, sets[k]);
        Onnx__TensorProto *to = read_tensor(path);
        size_t nx = 0, ny = 0;
        float *x = NULL, *y = to ? tensor_floats(to, &ny) : NULL;
        Onnx__TensorProto *ti = NULL; /* the first data input: its batch */
        /* the data inputs packed along axis 1: image b is input 0's image b,
         * then input 1's, ... (what the importer's packed input is) */
        for (size_t j = 0; j < n_data; j++) {
            snprintf(path, sizeof path, "%s/%s/input_%zu.pb", dir, sets[k], data_k[j]);
            Onnx__TensorProto *tj = read_tensor(path);
            size_t nj = 0;
            float *xj = tj ? tensor_floats(tj, &nj) : NULL;
            int bj = tj && tj->n_dims ? (int)tj->dims[0] : 0;
            if (j == 0) {
                ti = tj;
                x = xj;
                nx = nj;
                continue;
            }
            int b0 = ti && ti->n_dims ? (int)ti->dims[0] : 0;
            float *px = NULL;
            if (x && xj && b0 > 0 && bj == b0 && nx % (size_t)b0 == 0 && nj % (size_t)bj == 0) {
                size_t pa = nx / (size_t)b0, pb = nj / (size_t)bj;
                px = malloc((nx + nj) * sizeof *px);
                cr_assert(px);
                for (int b = 0; b < b0; b++) {
                    memcpy(px + (size_t)b * (pa + pb), x + (size_t)b * pa, pa * sizeof *px);
                    memcpy(px + (size_t)b * (pa + pb) + pa, xj + (size_t)b * pb, pb * sizeof *px);
                }
            }
            free(x);
            free(xj);
            free_tensor(tj);
            x = px;
            nx = px ? nx + nj : 0;
        }
        const pl_layer *last = &m->layers[m->n_layers - 1];
        size_t per_in = (size_t)m->in_c * (size_t)m->in_h * (size_t)m->in_w;
        size_t per_out = (size_t)last->out_c * (size_t)last->out_h * (size_t)last->out_w;
        int n = ti && ti->n_dims ? (int)ti->dims[0] : 0;
        if (!x || !y || n <= 0 || nx != (size_t)n * per_in || ny != (size_t)n * per_out) {
            snprintf(why, whycap, "data set %s: input/output sizes (%zu, %zu floats) do not match the imported model "
                                  "(%d x %zu in, %zu out)",
                     sets[k], nx, ny, n, per_in, per_out);
            v = V_FAILED;
        } else if (pl_model_reserve(m, n, &err)) {
            snprintf(why, whycap, "reserve: %s", err.msg);
            v = V_FAILED;
        } else {
            const float *z = pl_model_forward(m, x, n, PL_MODE_EVAL, &err);
            if (!z) {
                snprintf(why, whycap, "forward: %s", err.msg);
                v = V_FAILED;
            } else {
                for (size_t i = 0; i < ny; i++) {
                    double d = fabs((double)z[i] - (double)y[i]);
                    if (!(d <= 1e-5 + 1e-4 * fabs((double)y[i]))) {
                        snprintf(why, whycap, "data set %s: output[%zu] = %.9g, expected %.9g", sets[k], i,
                                 (double)z[i], (double)y[i]);
                        v = V_FAILED;
                        break;
                    }
                }
            }
        }
        free(x);
        free(y);
        free_tensor(ti);
        free_tensor(to);
    }
    pl_model_free(m);
    free(data_k);
    free_list(sets, n_sets);
    return v;
}

Test(onnx, conformance, .timeout = 1200)
{
    const char *root = getenv("PL_ONNX_TESTDATA");
    if (!root || !*root)
        root = "/usr/share/libonnx-testdata/data";
    struct stat st;
    if (stat(root, &st) || !S_ISDIR(st.st_mode))
        cr_skip_test("%s: not found; the ONNX conformance corpus comes with Debian's libonnx-testdata "
                     "(scripts/setup.sh installs it)",
                     root);
    static const char *const dirs[] = {"node", "pytorch-converted", "pytorch-operator"};
    pl_instance *be = pltest_instance(PL_KIND_BACKEND, "ref", NULL, 1, 1);
    char *tmp = pltest_tmpdir();
    static tally total;
    int anonymous = 0, must_refused = 0, listed_passed = 0;
    memset(&total, 0, sizeof total);
    for (size_t d = 0; d < sizeof dirs / sizeof *dirs; d++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", root, dirs[d]);
        int n;
        char **cases = list_dir(dir, "test_", &n);
        cr_assert(n > 0, "%s: no test_* cases", dir);
        int p = 0, r = 0, f = 0;
        for (int i = 0; i < n; i++) {
            char cdir[4096 + 256], key[256], why[1024];
            snprintf(cdir, sizeof cdir, "%s/%s", dir, cases[i]);
            int names_op;
            verdict v = run_case(cdir, tmp, be, key, sizeof key, why, sizeof why, &names_op);
            anonymous += v == V_REFUSED && !names_op;
            const char *ok = refused_reason(dirs[d], cases[i]);
            if (v == V_REFUSED && is_must_pass(key) && !ok) {
                printf("conformance: MUST PASS %s/%s [%s] was refused (fix it, or list it in refused_ok with the "
                       "reason)\n", dirs[d], cases[i], key);
                must_refused++;
            }
            if (v == V_PASSED && ok) {
                printf("conformance: LISTED %s/%s [%s] passes but refused_ok lists it (%s): take it off the list\n",
                       dirs[d], cases[i], key, ok);
                listed_passed++;
            }
            op_tally *o = op_slot(&total, key);
            if (v == V_PASSED)
                p++, o->passed++;
            else if (v == V_REFUSED)
                r++, o->refused++;
            else
                f++, o->failed++;
            if (v != V_PASSED)
                printf("conformance: %s %s/%s [%s]: %s\n",
                       v == V_FAILED ? "FAILED" : names_op ? "refused" : "refused (names no operator)", dirs[d],
                       cases[i], key, why);
        }
        printf("conformance: %s: %d passed, %d refused, %d failed\n", dirs[d], p, r, f);
        total.passed += p, total.refused += r, total.failed += f;
        free_list(cases, n);
    }
    printf("conformance: per operator (passed/refused/failed):\n");
    for (int i = 0; i < total.n_ops; i++)
        printf("conformance:   %-40s %3d %3d %3d\n", total.ops[i].op, total.ops[i].passed, total.ops[i].refused,
               total.ops[i].failed);
    printf("conformance: %d refusals name no operator\n", anonymous);
    printf("%d passed, %d refused, %d failed (ONNX conformance)\n", total.passed, total.refused, total.failed);
    fflush(stdout);
    pl_instance_free(be);
    free(tmp);
    cr_assert_eq(total.failed, 0, "%d ONNX conformance cases failed (see the log)", total.failed);
    cr_assert_eq(must_refused, 0, "%d cases of operators that must pass were refused (see the log)", must_refused);
    cr_assert_eq(listed_passed, 0, "%d cases listed as refused on purpose pass (see the log)", listed_passed);
}
