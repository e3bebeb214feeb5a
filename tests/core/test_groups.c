/*
 * Pruning groups on small hand-built graphs: the derived groups against
 * hand-written expected groups, and for every coupling pattern (residual
 * add with and without projection, add of three inputs, concat of two and
 * three branches, concat feeding an add, depthwise after a pruned
 * producer, flatten → linear, two adds sharing a producer) the physically
 * cut model computes the same outputs as the dense model whose removed
 * channels are zeroed (their weights, biases and batchnorm γ/β), and its
 * parameter count equals a hand count.
 *
 * The graphs are built directly as pl_model structs and evaluated by a
 * naive forward pass in this file, so the test depends only on the
 * derivation and the cut (groups.c, surgery.c).
 */
#include "groups.h"
#include "model.h"
#include "surgery.h"
#include "pltest.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { CONV = PL_LAYER_CONV2D, LIN = PL_LAYER_LINEAR, BN = PL_LAYER_BATCHNORM2D, RELU = PL_LAYER_RELU,
       FLAT = PL_LAYER_FLATTEN, ADD = PL_LAYER_ADD, CAT = PL_LAYER_CONCAT, GAP = PL_LAYER_GLOBAL_AVGPOOL };

typedef struct lspec {
    const char *name;
    int type;
    int out, k, groups;
    int n_in;
    int in[4]; /* with n_in == 0: the layer above */
} lspec;

#define IN_C 2
#define IN_H 4
#define IN_W 4
#define CLASSES 3
#define N_IMG 3

static float *rnd(pl_rng *r, int64_t n, float lo, float hi)
{
    float *a = malloc((size_t)(n ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        a[i] = lo + (hi - lo) * (float)pl_rng_uniform(r);
    return a;
}

/* Shape of layer j's output (-1: the input) computed from the graph, never
 * from the (possibly stale) fields of shape-less layers. */
typedef struct shp {
    int c, h, w;
} shp;

static shp shape_of(const pl_model *m, const shp *s, int j)
{
    (void)m;
    return j < 0 ? (shp){IN_C, IN_H, IN_W} : s[j];
}

static int src(const pl_layer *l, int i, int k) { return l->n_in >= 1 ? l->in[k] : i - 1; }

static void infer(const pl_model *m, shp *s)
{
    for (int i = 0; i < m->n_layers; i++) {
        const pl_layer *l = &m->layers[i];
        shp x = shape_of(m, s, src(l, i, 0));
        switch ((int)l->type) {
        case CONV: x.c = l->out_c; break;
        case LIN: x = (shp){l->out_c, 1, 1}; break;
        case FLAT: x = (shp){x.c * x.h * x.w, 1, 1}; break;
        case GAP: x.h = x.w = 1; break;
        case CAT:
            for (int k = 1; k < l->n_in; k++)
                x.c += shape_of(m, s, src(l, i, k)).c;
            break;
        default: break;
        }
        s[i] = x;
    }
}

static pl_model *build(const lspec *L, int n, uint64_t seed)
{
    pl_model *m = calloc(1, sizeof *m);
    strcpy(m->name, "g");
    m->in_c = IN_C;
    m->in_h = IN_H;
    m->in_w = IN_W;
    m->classes = CLASSES;
    m->n_layers = n;
    m->layers = calloc((size_t)n, sizeof *m->layers);
    shp *s = calloc((size_t)n, sizeof *s);
    pl_rng r;
    pl_rng_seed(&r, seed, "groups-test");
    for (int i = 0; i < n; i++) {
        pl_layer *l = &m->layers[i];
        strcpy(l->name, L[i].name);
        l->type = (pl_layer_type)L[i].type;
        l->groups = L[i].groups > 1 ? L[i].groups : 1;
        l->n_in = L[i].n_in ? L[i].n_in : 1;
        for (int k = 0; k < l->n_in; k++)
            l->in[k] = L[i].n_in ? L[i].in[k] : i - 1;
        shp x = shape_of(m, s, l->in[0]);
        l->in_c = x.c;
        l->in_h = x.h;
        l->in_w = x.w;
        if (L[i].type == CONV) {
            l->kh = l->kw = L[i].k;
            l->sh = l->sw = 1;
            l->ph = l->pw = L[i].k / 2;
            l->has_bias = 1;
            l->out_c = L[i].out;
            l->nw = (int64_t)l->out_c * (x.c / l->groups) * L[i].k * L[i].k;
            l->nb = l->out_c;
            l->w = rnd(&r, l->nw, -0.5f, 0.5f);
            l->b = rnd(&r, l->nb, -0.5f, 0.5f);
        } else if (L[i].type == LIN) {
            l->in_c = x.c * x.h * x.w;
            l->has_bias = 1;
            l->out_c = L[i].out;
            l->nw = (int64_t)l->out_c * l->in_c;
            l->nb = l->out_c;
            l->w = rnd(&r, l->nw, -0.5f, 0.5f);
            l->b = rnd(&r, l->nb, -0.5f, 0.5f);
        } else if (L[i].type == BN) {
            l->nw = l->nb = x.c;
            l->eps = 1e-5;
            l->w = rnd(&r, x.c, 0.5f, 1.5f);
            l->b = rnd(&r, x.c, -0.5f, 0.5f);
            l->run_mean = rnd(&r, x.c, -0.3f, 0.3f);
            l->run_var = rnd(&r, x.c, 0.5f, 2.0f);
        }
        infer(m, s);
        l->out_c = s[i].c;
        l->out_h = s[i].h;
        l->out_w = s[i].w;
        l->orig_units = l->out_c;
    }
    free(s);
    return m;
}

/* Evaluation-mode forward of N_IMG images; returns logits [N_IMG][classes]. */
static float *forward(const pl_model *m, const float *xin)
{
    int n = m->n_layers;
    shp *s = calloc((size_t)n, sizeof *s);
    infer(m, s);
    float **y = calloc((size_t)n, sizeof *y);
    int C = s[n - 1].c;
    float *logits = malloc((size_t)N_IMG * (size_t)C * sizeof(float));
    for (int img = 0; img < N_IMG; img++) {
        const float *x0 = xin + (size_t)img * IN_C * IN_H * IN_W;
        for (int i = 0; i < n; i++) {
            const pl_layer *l = &m->layers[i];
            shp o = s[i], a = shape_of(m, s, src(l, i, 0));
            int j0 = src(l, i, 0);
            const float *x = j0 < 0 ? x0 : y[j0];
            free(y[i]);
            float *out = calloc((size_t)o.c * o.h * o.w, sizeof(float));
            y[i] = out;
            int64_t hw = (int64_t)a.h * a.w;
            switch ((int)l->type) {
            case CONV: {
                int cig = a.c / l->groups, cog = o.c / l->groups;
                for (int co = 0; co < o.c; co++)
                    for (int oy = 0; oy < o.h; oy++)
                        for (int ox = 0; ox < o.w; ox++) {
                            float acc = l->b[co];
                            int g = co / cog;
                            for (int ci = 0; ci < cig; ci++)
                                for (int ky = 0; ky < l->kh; ky++)
                                    for (int kx = 0; kx < l->kw; kx++) {
                                        int iy = oy + ky - l->ph, ix = ox + kx - l->pw;
                                        if (iy < 0 || ix < 0 || iy >= a.h || ix >= a.w)
                                            continue;
                                        acc += l->w[(((int64_t)co * cig + ci) * l->kh + ky) * l->kw + kx] *
                                               x[((int64_t)(g * cig + ci) * a.h + iy) * a.w + ix];
                                    }
                            out[((int64_t)co * o.h + oy) * o.w + ox] = acc;
                        }
                break;
            }
            case LIN:
                for (int co = 0; co < o.c; co++) {
                    float acc = l->b[co];
                    for (int64_t q = 0; q < l->in_c; q++)
                        acc += l->w[co * l->in_c + q] * x[q];
                    out[co] = acc;
                }
                break;
            case BN:
                for (int c = 0; c < o.c; c++)
                    for (int64_t q = 0; q < hw; q++)
                        out[c * hw + q] = (float)(l->w[c] * (x[c * hw + q] - l->run_mean[c]) /
                                                      sqrt(l->run_var[c] + l->eps) +
                                                  l->b[c]);
                break;
            case RELU:
                for (int64_t q = 0; q < (int64_t)o.c * hw; q++)
                    out[q] = x[q] > 0 ? x[q] : 0;
                break;
            case FLAT:
                memcpy(out, x, (size_t)o.c * sizeof(float));
                break;
            case GAP:
                for (int c = 0; c < o.c; c++) {
                    double acc = 0;
                    for (int64_t q = 0; q < hw; q++)
                        acc += x[c * hw + q];
                    out[c] = (float)(acc / (double)hw);
                }
                break;
            case ADD:
                for (int k = 0; k < l->n_in; k++) {
                    int j = src(l, i, k);
                    const float *xk = j < 0 ? x0 : y[j];
                    for (int64_t q = 0; q < (int64_t)o.c * o.h * o.w; q++)
                        out[q] += xk[q];
                }
                break;
            case CAT: {
                int64_t off = 0;
                for (int k = 0; k < l->n_in; k++) {
                    int j = src(l, i, k);
                    shp b = shape_of(m, s, j);
                    int64_t sz = (int64_t)b.c * b.h * b.w;
                    memcpy(out + off, j < 0 ? x0 : y[j], (size_t)sz * sizeof(float));
                    off += sz;
                }
                break;
            }
            default: cr_assert_fail("layer type %d", l->type);
            }
        }
        memcpy(logits + (size_t)img * C, y[n - 1], (size_t)C * sizeof(float));
    }
    for (int i = 0; i < n; i++)
        free(y[i]);
    free(y);
    free(s);
    return logits;
}

/* ---- expected groups ---------------------------------------------------------------- */

typedef struct egroup {
    const char *members; /* space-separated member layer names, ascending */
    int units;
    unsigned flags;
} egroup;

static void expect_groups(const pl_model *m, const pl_groups *G, const egroup *want, int n)
{
    cr_assert_eq(G->n, n, "%d groups, expected %d", G->n, n);
    for (int g = 0; g < n; g++) {
        char got[256] = "";
        int mem[32];
        int nm = pl_group_members(&G->g[g], mem, 32);
        for (int k = 0; k < nm; k++) {
            if (k)
                strcat(got, " ");
            strcat(got, m->layers[mem[k]].name);
        }
        cr_expect_str_eq(got, want[g].members, "group %d members", g);
        cr_expect_eq(G->g[g].units, want[g].units, "group %d (%s) units %d, expected %d", g, got,
                     G->g[g].units, want[g].units);
        cr_expect_eq(G->g[g].flags, want[g].flags, "group %d (%s) flags %u, expected %u", g, got,
                     G->g[g].flags, want[g].flags);
    }
}

/* ---- cut vs masked dense ---------------------------------------------------------------- */

typedef struct drop_spec {
    int group;
    int units[8];
    int n;
} drop_spec;

/* Derives the groups, checks them, then cuts the given units from one copy
 * and zeroes them in another; outputs must agree and params match. */
static void check_pattern(const lspec *L, int n, const egroup *want, int n_want, const drop_spec *d, int nd,
                          int64_t params_before, int64_t params_after)
{
    pl_model *m = build(L, n, 17);
    pl_error err;
    pl_counts cnt;
    pl_model_count(m, &cnt);
    cr_expect_eq(cnt.params, params_before, "params before %lld, hand count %lld", (long long)cnt.params,
                 (long long)params_before);
    pl_groups G;
    cr_assert_eq(pl_groups_derive(m, &G, &err), PL_OK, "%s", err.msg);
    expect_groups(m, &G, want, n_want);
    if (!nd) {
        pl_groups_free(&G);
        pl_model_free(m);
        return;
    }
    pl_model *masked;
    cr_assert_eq(pl_model_clone(m, &masked, &err), PL_OK);
    uint8_t *dead = calloc((size_t)G.n_nodes, 1);
    for (int q = 0; q < nd; q++) {
        const pl_group *g = &G.g[d[q].group];
        cr_assert_eq(g->flags, 0u, "group %d is prunable", d[q].group);
        for (int k = 0; k < d[q].n; k++) {
            int u = d[q].units[k];
            for (int a = 0; a < G.n_nodes; a++)
                if (G.node_group[G.root[a]] == d[q].group && G.node_unit[G.root[a]] == u)
                    dead[a] = 1;
            /* the masked reference: the unit's members output zero */
            for (int e = 0; e < g->width; e++) {
                pl_group_entry en = g->e[u * g->width + e];
                pl_layer *l = &masked->layers[en.layer];
                int64_t row = l->nw / l->out_c;
                memset(l->w + en.chan * row, 0, (size_t)row * sizeof(float));
                l->b[en.chan] = 0;
            }
        }
    }
    for (int i = 0; i < n; i++) /* and so do the batchnorm channels they feed */
        if (masked->layers[i].type == PL_LAYER_BATCHNORM2D)
            for (int c = 0; c < G.map_n[i]; c++)
                if (dead[G.root[G.map[i][c]]])
                    masked->layers[i].w[c] = masked->layers[i].b[c] = 0;
    cr_assert_eq(pl__model_cut(m, &G, dead, &err), PL_OK, "%s", err.msg);
    pl_rng r;
    pl_rng_seed(&r, 5, "groups-input");
    float *x = rnd(&r, (int64_t)N_IMG * IN_C * IN_H * IN_W, -1, 1);
    float *a = forward(masked, x), *b = forward(m, x);
    for (int i = 0; i < N_IMG * CLASSES; i++)
        cr_expect(fabsf(a[i] - b[i]) <= 1e-5f * (1 + fabsf(a[i])), "logit %d: masked %g cut %g", i, a[i], b[i]);
    pl_model_count(m, &cnt);
    cr_expect_eq(cnt.params, params_after, "params after %lld, hand count %lld", (long long)cnt.params,
                 (long long)params_after);
    /* the groups of the cut model: the same groups, fewer units */
    pl_groups H;
    cr_assert_eq(pl_groups_derive(m, &H, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(H.n, G.n);
    for (int q = 0; q < nd && H.n == G.n; q++)
        cr_expect_eq(H.g[d[q].group].units, G.g[d[q].group].units - d[q].n);
    pl_groups_free(&H);
    free(x);
    free(a);
    free(b);
    free(dead);
    pl_groups_free(&G);
    pl_model_free(masked);
    pl_model_free(m);
}

#define NL(a) ((int)(sizeof a / sizeof *a))

Test(groups, residual_identity)
{
    static const lspec L[] = {
        {"c0", CONV, 4, 3, 0, 0, {0}},  {"b0", BN, 0, 0, 0, 0, {0}},   {"r0", RELU, 0, 0, 0, 0, {0}},
        {"c1", CONV, 4, 3, 0, 0, {0}},  {"b1", BN, 0, 0, 0, 0, {0}},   {"a", ADD, 0, 0, 0, 2, {4, 2}},
        {"r1", RELU, 0, 0, 0, 0, {0}},  {"gap", GAP, 0, 0, 0, 0, {0}}, {"fl", FLAT, 0, 0, 0, 0, {0}},
        {"fc", LIN, CLASSES, 0, 0, 0, {0}},
    };
    static const egroup want[] = {{"c0 c1", 4, 0}, {"fc", 3, PL_GROUP_OUTPUT}};
    static const drop_spec d[] = {{0, {2}, 1}};
    check_pattern(L, NL(L), want, 2, d, 1, 255, 165);
}

Test(groups, residual_projection)
{
    static const lspec L[] = {
        {"c0", CONV, 4, 3, 0, 0, {0}},       {"b0", BN, 0, 0, 0, 0, {0}},  {"r0", RELU, 0, 0, 0, 0, {0}},
        {"c1", CONV, 6, 3, 0, 1, {2}},       {"b1", BN, 0, 0, 0, 0, {0}},  {"p", CONV, 6, 1, 0, 1, {2}},
        {"bp", BN, 0, 0, 0, 0, {0}},         {"a", ADD, 0, 0, 0, 2, {4, 6}}, {"r", RELU, 0, 0, 0, 0, {0}},
        {"gap", GAP, 0, 0, 0, 0, {0}},       {"fl", FLAT, 0, 0, 0, 0, {0}}, {"fc", LIN, CLASSES, 0, 0, 0, {0}},
    };
    static const egroup want[] = {{"c0", 4, 0}, {"c1 p", 6, 0}, {"fc", 3, PL_GROUP_OUTPUT}};
    static const drop_spec d[] = {{0, {0}, 1}, {1, {1, 4}, 2}};
    check_pattern(L, NL(L), want, 3, d, 2, 381, 222);
}

Test(groups, add_of_three)
{
    static const lspec L[] = {
        {"c0", CONV, 4, 3, 0, 0, {0}},  {"r0", RELU, 0, 0, 0, 0, {0}},  {"ca", CONV, 5, 3, 0, 1, {1}},
        {"cb", CONV, 5, 3, 0, 1, {1}},  {"cc", CONV, 5, 1, 0, 1, {1}},  {"a", ADD, 0, 0, 0, 3, {2, 3, 4}},
        {"gap", GAP, 0, 0, 0, 0, {0}},  {"fl", FLAT, 0, 0, 0, 0, {0}},  {"fc", LIN, CLASSES, 0, 0, 0, {0}},
    };
    static const egroup want[] = {{"c0", 4, 0}, {"ca cb cc", 5, 0}, {"fc", 3, PL_GROUP_OUTPUT}};
    static const drop_spec d[] = {{1, {0, 3}, 2}};
    check_pattern(L, NL(L), want, 3, d, 1, 489, 325);
}

Test(groups, concat_two_and_three)
{
    static const lspec L[] = {
        {"c0", CONV, 4, 3, 0, 0, {0}},      {"r0", RELU, 0, 0, 0, 0, {0}},
        {"ca", CONV, 3, 3, 0, 1, {1}},      {"cb", CONV, 2, 1, 0, 1, {1}},
        {"cat", CAT, 0, 0, 0, 2, {2, 3}},   {"c2", CONV, 4, 3, 0, 1, {4}},
        {"cc", CONV, 2, 3, 0, 1, {1}},      {"cat3", CAT, 0, 0, 0, 3, {2, 3, 6}},
        {"c3", CONV, 3, 1, 0, 1, {7}},      {"cat4", CAT, 0, 0, 0, 2, {5, 8}},
        {"gap", GAP, 0, 0, 0, 0, {0}},      {"fl", FLAT, 0, 0, 0, 0, {0}},
        {"fc", LIN, CLASSES, 0, 0, 0, {0}},
    };
    static const egroup want[] = {{"c0", 4, 0}, {"ca", 3, 0}, {"cb", 2, 0}, {"c2", 4, 0},
                                  {"cc", 2, 0}, {"c3", 3, 0}, {"fc", 3, PL_GROUP_OUTPUT}};
    static const drop_spec d[] = {{1, {1}, 1}, {2, {0}, 1}, {4, {1}, 1}, {3, {3}, 1}, {5, {0}, 1}};
    check_pattern(L, NL(L), want, 7, d, 5, 503, 304);
}

Test(groups, concat_feeding_add)
{
    static const lspec L[] = {
        {"c0", CONV, 4, 3, 0, 0, {0}},    {"r0", RELU, 0, 0, 0, 0, {0}},  {"ca", CONV, 3, 3, 0, 1, {1}},
        {"cb", CONV, 2, 1, 0, 1, {1}},    {"cat", CAT, 0, 0, 0, 2, {2, 3}}, {"cd", CONV, 5, 1, 0, 1, {1}},
        {"a", ADD, 0, 0, 0, 2, {4, 5}},   {"r", RELU, 0, 0, 0, 0, {0}},   {"c2", CONV, 4, 1, 0, 0, {0}},
        {"gap", GAP, 0, 0, 0, 0, {0}},    {"fl", FLAT, 0, 0, 0, 0, {0}},  {"fc", LIN, CLASSES, 0, 0, 0, {0}},
    };
    static const egroup want[] = {
        {"c0", 4, 0}, {"ca cd", 3, 0}, {"cb cd", 2, 0}, {"c2", 4, 0}, {"fc", 3, PL_GROUP_OUTPUT}};
    static const drop_spec d[] = {{1, {1}, 1}, {2, {0}, 1}};
    check_pattern(L, NL(L), want, 5, d, 2, 261, 201);
}

Test(groups, depthwise_after_pruned_producer)
{
    static const lspec L[] = {
        {"c0", CONV, 4, 3, 0, 0, {0}},  {"b0", BN, 0, 0, 0, 0, {0}},   {"r0", RELU, 0, 0, 0, 0, {0}},
        {"dw", CONV, 4, 3, 4, 0, {0}},  {"b1", BN, 0, 0, 0, 0, {0}},   {"r1", RELU, 0, 0, 0, 0, {0}},
        {"pw", CONV, 6, 1, 0, 0, {0}},  {"gap", GAP, 0, 0, 0, 0, {0}}, {"fl", FLAT, 0, 0, 0, 0, {0}},
        {"fc", LIN, CLASSES, 0, 0, 0, {0}},
    };
    static const egroup want[] = {{"c0 dw", 4, 0}, {"pw", 6, 0}, {"fc", 3, PL_GROUP_OUTPUT}};
    static const drop_spec d[] = {{0, {0, 2}, 2}};
    check_pattern(L, NL(L), want, 3, d, 1, 183, 105);
}

Test(groups, flatten_blocks_and_neurons)
{
    static const lspec L[] = {
        {"c0", CONV, 3, 3, 0, 0, {0}}, {"r0", RELU, 0, 0, 0, 0, {0}}, {"fl", FLAT, 0, 0, 0, 0, {0}},
        {"fc1", LIN, 5, 0, 0, 0, {0}}, {"r1", RELU, 0, 0, 0, 0, {0}}, {"fc2", LIN, CLASSES, 0, 0, 0, {0}},
    };
    static const egroup want[] = {{"c0", 3, 0}, {"fc1", 5, 0}, {"fc2", 3, PL_GROUP_OUTPUT}};
    static const drop_spec d[] = {{0, {1}, 1}, {1, {0, 4}, 2}};
    check_pattern(L, NL(L), want, 3, d, 2, 320, 149);
}

/* p feeds two adds: p, q and s share one channel space, so a unit of
 * p is a unit of q and of s (pruning per add would cut p inconsistently) */
Test(groups, two_adds_sharing_a_producer)
{
    static const lspec L[] = {
        {"c0", CONV, 4, 3, 0, 0, {0}},   {"r0", RELU, 0, 0, 0, 0, {0}},    {"p", CONV, 4, 1, 0, 1, {1}},
        {"q", CONV, 4, 1, 0, 1, {1}},    {"s", CONV, 4, 1, 0, 1, {1}},     {"a1", ADD, 0, 0, 0, 2, {2, 3}},
        {"a2", ADD, 0, 0, 0, 2, {2, 4}}, {"cat", CAT, 0, 0, 0, 2, {5, 6}}, {"c5", CONV, 4, 1, 0, 0, {0}},
        {"gap", GAP, 0, 0, 0, 0, {0}},   {"fl", FLAT, 0, 0, 0, 0, {0}},    {"fc", LIN, CLASSES, 0, 0, 0, {0}},
    };
    static const egroup want[] = {{"c0", 4, 0}, {"p q s", 4, 0}, {"c5", 4, 0}, {"fc", 3, PL_GROUP_OUTPUT}};
    static const drop_spec d[] = {{1, {1}, 1}};
    check_pattern(L, NL(L), want, 4, d, 1, 187, 164);
}

Test(groups, grouped_conv_and_input_are_not_prunable)
{
    static const lspec L[] = {
        {"c0", CONV, 4, 3, 0, 0, {0}}, {"g", CONV, 4, 3, 2, 0, {0}},  {"c2", CONV, 4, 1, 0, 0, {0}},
        {"gap", GAP, 0, 0, 0, 0, {0}}, {"fl", FLAT, 0, 0, 0, 0, {0}}, {"fc", LIN, CLASSES, 0, 0, 0, {0}},
    };
    static const egroup want[] = {{"c0", 4, PL_GROUP_FIXED}, {"c2", 4, 0}, {"fc", 3, PL_GROUP_OUTPUT}};
    check_pattern(L, NL(L), want, 3, NULL, 0, 76 + 76 + 20 + 15, 0);
    static const lspec L2[] = {
        {"c0", CONV, 2, 1, 0, 0, {0}},  {"a", ADD, 0, 0, 0, 2, {-1, 0}}, {"c1", CONV, 4, 3, 0, 0, {0}},
        {"gap", GAP, 0, 0, 0, 0, {0}},  {"fl", FLAT, 0, 0, 0, 0, {0}},   {"fc", LIN, CLASSES, 0, 0, 0, {0}},
    };
    static const egroup want2[] = {{"c0", 2, PL_GROUP_INPUT}, {"c1", 4, 0}, {"fc", 3, PL_GROUP_OUTPUT}};
    check_pattern(L2, NL(L2), want2, 3, NULL, 0, 6 + 76 + 15, 0);
}

/* A cut that would empty a layer, or touch a grouped conv, moves nothing. */
Test(groups, refused_cuts_move_nothing)
{
    static const lspec L[] = {
        {"c0", CONV, 4, 3, 0, 0, {0}}, {"g", CONV, 4, 3, 2, 0, {0}},  {"gap", GAP, 0, 0, 0, 0, {0}},
        {"fl", FLAT, 0, 0, 0, 0, {0}}, {"fc", LIN, CLASSES, 0, 0, 0, {0}},
    };
    pl_model *m = build(L, NL(L), 3);
    pl_groups G;
    pl_error err;
    cr_assert_eq(pl_groups_derive(m, &G, &err), PL_OK);
    uint8_t *dead = calloc((size_t)G.n_nodes, 1);
    dead[G.root[G.map[0][1]]] = 1;
    cr_expect_eq(pl__model_cut(m, &G, dead, &err), PL_EINVAL);
    cr_expect(strstr(err.msg, "grouped"), "%s", err.msg);
    cr_expect_eq(m->layers[0].out_c, 4);
    cr_expect_eq(m->layers[1].in_c, 4);
    const uint8_t *drop[3] = {(const uint8_t *)"\1\0\0\0", NULL, NULL};
    cr_expect_eq(pl_model_remove_group_units(m, &G, drop, &err), PL_EINVAL);
    free(dead);
    pl_groups_free(&G);
    pl_model_free(m);
}

/* A chain model: one group per conv2d/linear layer, unit u = channel u. */
Test(groups, chain_is_one_group_per_layer)
{
    pl_model *m = pltest_model("name: c\ninput: [1, 8, 8]\nclasses: 3\nlayers:\n"
                               "  - {type: conv2d, name: conv1, out: 4, kernel: 3}\n"
                               "  - {type: batchnorm2d}\n  - {type: relu}\n"
                               "  - {type: conv2d, name: conv2, out: 5, kernel: 3}\n  - {type: relu}\n"
                               "  - {type: flatten}\n  - {type: linear, name: fc1, out: 6}\n  - {type: relu}\n"
                               "  - {type: linear, name: fc2, out: 3}\n",
                               1);
    cr_assert(pl_model_is_chain(m));
    pl_groups G;
    pl_error err;
    cr_assert_eq(pl_groups_derive(m, &G, &err), PL_OK, "%s", err.msg);
    static const egroup want[] = {{"conv1", 4, 0}, {"conv2", 5, 0}, {"fc1", 6, 0},
                                  {"fc2", 3, PL_GROUP_OUTPUT}};
    expect_groups(m, &G, want, 4);
    for (int g = 0; g < G.n; g++)
        for (int u = 0; u < G.g[g].units; u++)
            cr_expect_eq(G.g[g].e[u].chan, u);
    cr_expect_eq(G.block[5], 16, "flatten: 4x4 columns per channel");
    pl_groups_free(&G);
    pl_model_free(m);
}

/* ---- the bundled resnet20 through the real forward pass ------------------------------ */

static float *eval_ref(pl_model *m, const float *x, int n)
{
    static pl_instance *be;
    if (!be)
        be = pltest_instance(PL_KIND_BACKEND, "ref", NULL, 1, 1);
    pl_error err;
    pl_model_bind(m, pl_instance_ops(be), pl_instance_state(be));
    cr_assert_eq(pl_model_reserve(m, n, &err), PL_OK, "%s", err.msg);
    const float *y = pl_model_forward(m, x, n, PL_MODE_EVAL, &err);
    cr_assert(y, "%s", err.msg);
    float *out = malloc((size_t)n * (size_t)m->classes * sizeof(float));
    memcpy(out, y, (size_t)n * (size_t)m->classes * sizeof(float));
    return out;
}

/* Stage 1 of resnet20 is one group: conv1 and the three blocks' second
 * convs (their adds share the stem's channels). Halving it through
 * pl_model_remove_units(conv1) cuts all four, their batchnorms, and the
 * inputs of s1b*_conv1, s2b1_conv1 and s2b1_proj; the outputs equal the
 * masked dense model's and the params a hand count:
 * 72 + 16 + 3 × (1152 + 32 + 1152 + 16) + (2304 + 64 + 9216 + 64 + 256 + 64)
 * + 37,120 + 57,728 + 147,968 + 650 = 262,578 (272,186 dense). */
Test(groups, resnet20_stage1)
{
    pl_model *m = pltest_model_file("configs/models/resnet20.yaml", 3); /* tests run in the source tree */
    for (int i = 0; i < m->n_layers; i++) /* non-trivial batchnorm statistics */
        if (m->layers[i].type == PL_LAYER_BATCHNORM2D)
            for (int c = 0; c < m->layers[i].out_c; c++) {
                m->layers[i].run_mean[c] = 0.05f * (float)(c % 7);
                m->layers[i].run_var[c] = 1.0f + 0.1f * (float)(c % 5);
                m->layers[i].w[c] = 1.0f + 0.03f * (float)c;
                m->layers[i].b[c] = 0.02f * (float)(c % 3);
            }
    pl_error err;
    pl_counts cnt;
    pl_model_count(m, &cnt);
    cr_assert_eq(cnt.params, 272186);
    pl_groups G;
    cr_assert_eq(pl_groups_derive(m, &G, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(G.n, 13);
    static const egroup want[] = {
        {"conv1 s1b1_conv2 s1b2_conv2 s1b3_conv2", 16, 0}, {"s1b1_conv1", 16, 0}, {"s1b2_conv1", 16, 0},
        {"s1b3_conv1", 16, 0}, {"s2b1_conv1", 32, 0}, {"s2b1_conv2 s2b1_proj s2b2_conv2 s2b3_conv2", 32, 0},
        {"s2b2_conv1", 32, 0}, {"s2b3_conv1", 32, 0}, {"s3b1_conv1", 64, 0},
        {"s3b1_conv2 s3b1_proj s3b2_conv2 s3b3_conv2", 64, 0}, {"s3b2_conv1", 64, 0}, {"s3b3_conv1", 64, 0},
        {"fc", 10, PL_GROUP_OUTPUT}};
    expect_groups(m, &G, want, 13);
    pl_model *masked;
    cr_assert_eq(pl_model_clone(m, &masked, &err), PL_OK);
    uint8_t keep[16];
    for (int c = 0; c < 16; c++)
        keep[c] = c % 2 == 0;
    const pl_group *g = &G.g[0];
    for (int u = 0; u < 16; u++)
        if (!keep[u])
            for (int e = 0; e < g->width; e++) {
                pl_layer *l = &masked->layers[g->e[u * g->width + e].layer];
                int64_t row = l->nw / l->out_c;
                memset(l->w + g->e[u * g->width + e].chan * row, 0, (size_t)row * sizeof(float));
            }
    for (int i = 0; i < m->n_layers; i++)
        if (masked->layers[i].type == PL_LAYER_BATCHNORM2D)
            for (int c = 0; c < G.map_n[i]; c++) {
                int r = G.root[G.map[i][c]];
                if (G.node_group[r] == 0 && !keep[G.node_unit[r]])
                    masked->layers[i].w[c] = masked->layers[i].b[c] = 0;
            }
    cr_assert_eq(pl_model_remove_units(m, pl_model_find(m, "conv1"), keep, &err), PL_OK, "%s", err.msg);
    pl_model_count(m, &cnt);
    cr_expect_eq(cnt.params, 262578, "params %lld", (long long)cnt.params);
    cr_expect_eq(m->layers[pl_model_find(m, "s1b3_conv2")].out_c, 8);
    cr_expect_eq(m->layers[pl_model_find(m, "s2b1_proj")].in_c, 8);
    pl_rng r;
    pl_rng_seed(&r, 9, "groups-input");
    float *x = rnd(&r, 2 * 28 * 28, -1, 1);
    float *a = eval_ref(masked, x, 2), *b = eval_ref(m, x, 2);
    for (int i = 0; i < 2 * 10; i++)
        cr_expect(fabsf(a[i] - b[i]) <= 1e-4f * (1 + fabsf(a[i])), "logit %d: masked %g cut %g", i, a[i], b[i]);
    /* a channel of the classes' group, or a member tied to the output, is refused */
    uint8_t k10[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    cr_expect_eq(pl_model_remove_units(m, pl_model_find(m, "fc"), k10, &err), PL_EINVAL);
    free(x);
    free(a);
    free(b);
    pl_groups_free(&G);
    pl_model_free(masked);
    pl_model_free(m);
}

/* `prunelab validate` shows a graph model's groups before anything trains;
 * at layer granularity its candidates are the residual branches with an
 * identity shortcut. */
Test(groups, validate_shows_groups)
{
    char *exp = pltest_write_temp(
        "name: g\nseed: 1\nmodel: configs/models/resnet20.yaml\n"
        "dataset: {plugin: synthetic, channels: 1, height: 28, width: 28, classes: 10, train_count: 64, "
        "test_count: 32}\n"
        "train: {epochs: 1, batch_size: 32, optimizer: {type: adam, lr: 0.001}}\n"
        "prune: {criterion: l1, granularity: channel, schedule: global, sparsity: 0.5}\n"
        "retrain: {epochs: 1}\n",
        ".yaml");
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' validate '%s'", pltest_exe(), exp);
    cr_assert_eq(pltest_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "13 pruning group(s)"), "%s", out);
    cr_expect(strstr(out, "group 1: 16 unit(s), members conv1 s1b1_conv2 s1b2_conv2 s1b3_conv2; one unit removes "
                          "4 output channel(s)"),
              "%s", out);
    cr_expect(strstr(out, "group 13: 10 unit(s), members fc; not prunable (the classes)"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' validate '%s' --set prune.granularity=layer --set prune.sparsity=0.5",
             pltest_exe(), exp);
    cr_expect_eq(pltest_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "remove 4 of 7 removable layer(s): s1b1_conv1 s1b2_conv1 s1b3_conv1 s2b2_conv1 "
                          "s2b3_conv1 s3b2_conv1 s3b3_conv1"),
              "the identity-shortcut residual branches: %s", out);
    free(out);
    free(exp);
}

/* Layer granularity on resnet20: removing a residual branch (conv, bn,
 * relu, conv, bn and the add) leaves the add's reader reading the
 * shortcut, which is what the dense model computes when the branch's last
 * batchnorm outputs zero. */
Test(groups, resnet20_residual_branch_removal)
{
    pl_model *m = pltest_model_file("configs/models/resnet20.yaml", 4);
    int head[16], len[16];
    cr_assert_eq(pl_layer_blocks(m, head, len, 16), 7);
    int h = pl_model_find(m, "s2b2_conv1");
    cr_assert_eq(head[3], h);
    cr_assert_eq(len[3], 6, "conv, bn, relu, conv, bn, add");
    cr_expect_eq(pl_layer_block_len(m, pl_model_find(m, "s2b1_conv1")), 0, "a projection shortcut is no identity");
    pl_error err;
    pl_model *masked;
    cr_assert_eq(pl_model_clone(m, &masked, &err), PL_OK);
    pl_layer *bn = &masked->layers[pl_model_find(masked, "s2b2_bn2")];
    for (int c = 0; c < bn->out_c; c++) {
        bn->w[c] = 0;
        bn->b[c] = 0;
    }
    pl_counts before, after;
    pl_model_count(m, &before);
    cr_assert_eq(pl_model_remove_layers(m, h, 6, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(pl_model_find(m, "s2b2_add"), -1);
    int r = pl_model_find(m, "s2b2_relu");
    cr_expect_eq(m->layers[r].in[0], pl_model_find(m, "s2b1_relu"));
    pl_model_count(m, &after);
    cr_expect_eq(before.params - after.params, 2 * (9216 + 64), "params %lld -> %lld", (long long)before.params,
                 (long long)after.params);
    pl_rng rr;
    pl_rng_seed(&rr, 2, "groups-input");
    float *x = rnd(&rr, 2 * 28 * 28, -1, 1);
    float *a = eval_ref(masked, x, 2), *b = eval_ref(m, x, 2);
    for (int i = 0; i < 2 * 10; i++)
        cr_expect(fabsf(a[i] - b[i]) <= 1e-4f * (1 + fabsf(a[i])), "logit %d: masked %g removed %g", i, a[i], b[i]);
    free(x);
    free(a);
    free(b);
    pl_model_free(masked);
    pl_model_free(m);
}

/* ---- slice layers ------------------------------------------------------------------ */

static const float *slice_forward(pl_model *m, const float *x, int n)
{
    pl_instance *be = pltest_instance(PL_KIND_BACKEND, "ref", NULL, 1, 1);
    pl_model_bind(m, pl_instance_ops(be), pl_instance_state(be));
    pl_error err;
    cr_assert_eq(pl_model_reserve(m, n, &err), PL_OK, "%s", err.msg);
    const float *z = pl_model_forward(m, x, n, PL_MODE_EVAL, &err);
    cr_assert(z, "%s", err.msg);
    static float out[N_IMG * CLASSES];
    memcpy(out, z, sizeof(float) * (size_t)n * CLASSES);
    pl_instance_free(be);
    return out;
}

/* A slice pins the channels it reads (their offsets are fixed) and the
 * ones it makes: c1's group is not prunable, and a cut of it is refused
 * naming the slices. Layers beside the slices still prune exactly: the
 * cut model computes what the dense model with those channels zeroed
 * computes. */
Test(groups, slice_pins_what_it_reads_and_makes)
{
    const char *yaml = "name: s\ninput: [2, 5, 5]\nclasses: 3\nlayers:\n"
                       "  - {name: xa, type: slice, channels: [0, 1], inputs: [input]}\n"
                       "  - {name: xb, type: slice, channels: [1, 2], inputs: [input]}\n"
                       "  - {name: c1, type: conv2d, out: 4, kernel: 3, padding: 1, inputs: [xa]}\n"
                       "  - {name: r1, type: relu}\n"
                       "  - {name: s1, type: slice, channels: [1, 3]}\n"
                       "  - {name: c3, type: conv2d, out: 3, kernel: 3, padding: 1}\n"
                       "  - {name: c2, type: conv2d, out: 3, kernel: 3, padding: 1, inputs: [xb]}\n"
                       "  - {name: cat, type: concat, inputs: [c2, c3]}\n"
                       "  - {name: gap, type: global_avgpool}\n"
                       "  - {type: flatten}\n"
                       "  - {name: fc, type: linear, out: 3}\n";
    pl_model *m = pltest_model(yaml, 3), *dense = pltest_model(yaml, 3);
    pl_groups G;
    pl_error err;
    cr_assert_eq(pl_groups_derive(m, &G, &err), PL_OK, "%s", err.msg);
    int g1 = pl_groups_find(&G, 2), g3 = pl_groups_find(&G, 5), g2 = pl_groups_find(&G, 6);
    cr_assert(g1 >= 0 && g2 >= 0 && g3 >= 0);
    cr_expect(G.g[g1].flags & PL_GROUP_SLICE, "c1's group flags %u", G.g[g1].flags);
    cr_expect_eq(G.g[g2].flags, 0);
    cr_expect_eq(G.g[g3].flags, 0);
    FILE *f = tmpfile();
    cr_assert(f);
    pl_groups_print(m, &G, f);
    char text[4096];
    rewind(f);
    size_t nt = fread(text, 1, sizeof text - 1, f);
    text[nt] = 0;
    fclose(f);
    cr_expect(strstr(text, "members c1; not prunable (pinned by a slice layer (fixed channel offsets))"), "%s", text);
    /* c1's group: refused, nothing moves */
    uint8_t one[4] = {1, 0, 0, 0}, c2drop[3] = {1, 0, 0}, c3drop[3] = {0, 1, 0};
    const uint8_t **drop = calloc((size_t)G.n, sizeof *drop);
    drop[g1] = one;
    cr_expect_eq(pl_model_remove_group_units(m, &G, drop, &err), PL_EINVAL);
    cr_expect(strstr(err.msg, "c1: its pruning group is tied to the model's slice layers"), "%s", err.msg);
    cr_expect_eq(m->layers[2].out_c, 4);
    /* c2 unit 0 and c3 unit 1: exact against the zeroed dense model */
    drop[g1] = NULL;
    drop[g2] = c2drop;
    drop[g3] = c3drop;
    cr_assert_eq(pl_model_remove_group_units(m, &G, drop, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(m->layers[6].out_c, 2);
    cr_expect_eq(m->layers[5].out_c, 2);
    cr_expect_eq(m->layers[4].out_c, 2); /* the slice keeps its range */
    pl_layer *d2 = &dense->layers[6], *d3 = &dense->layers[5];
    memset(d2->w, 0, (size_t)(d2->nw / 3) * sizeof(float));
    d2->b[0] = 0;
    memset(d3->w + d3->nw / 3, 0, (size_t)(d3->nw / 3) * sizeof(float));
    d3->b[1] = 0;
    pl_rng r;
    pl_rng_seed(&r, 5, "slice-cut");
    float x[N_IMG * 2 * 5 * 5], want[N_IMG * CLASSES];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)pl_rng_normal(&r);
    memcpy(want, slice_forward(dense, x, N_IMG), sizeof want);
    const float *got = slice_forward(m, x, N_IMG);
    for (int i = 0; i < N_IMG * CLASSES; i++)
        cr_expect(fabsf(got[i] - want[i]) <= 1e-5f + 1e-5f * fabsf(want[i]), "logit %d: %.9g vs %.9g", i,
                  (double)got[i], (double)want[i]);
    free(drop);
    pl_groups_free(&G);
    pl_model_free(m);
    pl_model_free(dense);
}
