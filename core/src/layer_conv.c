/* layer_conv.c — a convolution layer's forward and backward: the host's
 * general kernels (layer_general.c) for what the backend ABI cannot state,
 * the backend's dense or grouped kernels, or, for a grouped convolution on
 * a backend without grouped kernels, each group through the dense ones. */
#include "layer_conv.h"
#include "backend.h"
#include "layer_general.h"
#include "model_internal.h"

/* One group's share of a grouped convolution run group by group. */
typedef struct group_geom {
    int G, ci, co;              /* groups, input and output channels per group */
    int64_t pin, pout, wg;      /* input and output plane, weights per group */
    pl_conv2d_shape gs;         /* one group's dense convolution */
    float *xs, *ys;             /* its input and output channels, in m->gscratch */
} group_geom;

static void group_geom_of(const pl_model *m, const pl_layer *l, const pl_conv2d_shape *cs, group_geom *g)
{
    g->G = l->groups;
    g->ci = l->in_c / l->groups;
    g->co = l->out_c / l->groups;
    g->pin = (int64_t)l->in_h * l->in_w;
    g->pout = (int64_t)l->out_h * l->out_w;
    g->wg = (int64_t)g->co * g->ci * l->kh * l->kw;
    g->gs = *cs;
    g->gs.cin = g->ci;
    g->gs.cout = g->co;
    g->xs = m->gscratch;
    g->ys = g->xs + (int64_t)cs->n * g->ci * g->pin;
}

pl_status pl__conv_forward(pl_model *m, const pl_layer *l, int n, const float *x, float *y)
{
    const pl_backend_ops *be = m->be;
    pl_conv2d_shape cs;
    if (pl__layer_general(l)) {
        pl__conv_general_forward(l, n, x, l->w, l->b, y);
        return PL_OK;
    }
    pl__conv_shape(l, n, &cs);
    if (l->groups == 1)
        return be->conv2d_forward(m->be_state, &cs, x, l->w, l->b, y);
    if (pl_backend_has(be, PL_SLOT_CONV_GROUPED_FORWARD))
        return be->conv2d_grouped_forward(m->be_state, &cs, l->groups, x, l->w, l->b, y);
    group_geom g;
    group_geom_of(m, l, &cs, &g);
    for (int k = 0; k < g.G; k++) {
        pl__gather(x, n, l->in_c, k * g.ci, g.ci, g.pin, g.xs);
        pl_status s = be->conv2d_forward(m->be_state, &g.gs, g.xs, l->w + k * g.wg,
                                         l->b ? l->b + (int64_t)k * g.co : NULL, g.ys);
        if (s)
            return s;
        pl__scatter(g.ys, n, l->out_c, k * g.co, g.co, g.pout, y);
    }
    return PL_OK;
}

pl_status pl__conv_backward(pl_model *m, pl_layer *l, int n, const float *x, const float *dy, float *dx)
{
    const pl_backend_ops *be = m->be;
    void *st = m->be_state;
    pl_conv2d_shape cs;
    if (pl__layer_general(l)) {
        pl__conv_general_backward(l, n, x, l->w, dy, dx, l->gw, l->gb);
        return PL_OK;
    }
    pl__conv_shape(l, n, &cs);
    pl_status s;
    if (l->groups == 1 || pl_backend_has(be, PL_SLOT_CONV_GROUPED_BACKWARD))
        return pl_backend_conv2d_backward(be, st, &cs, l->groups, x, dy, l->w, l->gw, l->gb, dx);
    group_geom g;
    group_geom_of(m, l, &cs, &g);
    for (int k = 0; k < g.G; k++) {
        pl__gather(x, n, l->in_c, k * g.ci, g.ci, g.pin, g.xs);
        pl__gather(dy, n, l->out_c, k * g.co, g.co, g.pout, g.ys);
        s = pl_backend_conv2d_backward(be, st, &g.gs, 1, g.xs, g.ys, l->w + k * g.wg, l->gw + k * g.wg,
                                       l->gb ? l->gb + (int64_t)k * g.co : NULL, dx ? g.xs : NULL);
        if (!s && dx)
            pl__scatter(g.xs, n, l->in_c, k * g.ci, g.ci, g.pin, dx);
        if (s)
            return s;
    }
    return PL_OK;
}
