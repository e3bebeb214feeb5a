/* backend.c — the host's calls into a bound backend plugin (backend.h). */
#include "backend.h"

void pl_backend_bind(pl_model *m, pl_instance *in)
{
    pl_model_bind(m, pl_instance_ops(in), pl_instance_state(in));
    m->be_inst = in;
}

int pl_backend_has(const pl_backend_ops *be, pl_backend_slot s)
{
    PL_ASSERT(be && (unsigned)s < PL_SLOT_COUNT);
    const int has[PL_SLOT_COUNT] = {
        [PL_SLOT_CONV_RELU] = be->conv2d_forward_relu != NULL, [PL_SLOT_LINEAR_RELU] = be->linear_forward_relu != NULL,
        [PL_SLOT_CONV_RELU_MAXPOOL] = be->conv2d_forward_relu_maxpool != NULL,
        [PL_SLOT_LINEAR_CSR] = be->linear_forward_csr != NULL,
        [PL_SLOT_MAXPOOL_RELU_BACKWARD] = be->maxpool2d_relu_backward != NULL,
        [PL_SLOT_CONV_GROUPED_FORWARD] = be->conv2d_grouped_forward != NULL,
        [PL_SLOT_CONV_GROUPED_BACKWARD] = be->conv2d_grouped_backward_weight && be->conv2d_grouped_backward_data};
    return has[s];
}

pl_status pl_backend_conv2d_backward(const pl_backend_ops *be, void *st, const pl_conv2d_shape *cs, int groups,
                                     const float *x, const float *dy, const float *w, float *gw, float *gb,
                                     float *dx)
{
    PL_ASSERT(groups == 1 || pl_backend_has(be, PL_SLOT_CONV_GROUPED_BACKWARD));
    pl_status s = groups == 1 ? be->conv2d_backward_weight(st, cs, x, dy, gw, gb)
                              : be->conv2d_grouped_backward_weight(st, cs, groups, x, dy, gw, gb);
    if (!s && dx)
        s = groups == 1 ? be->conv2d_backward_data(st, cs, dy, w, dx)
                        : be->conv2d_grouped_backward_data(st, cs, groups, dy, w, dx);
    return s;
}

pl_status pl_backend_linear_backward(const pl_backend_ops *be, void *st, int n, int in_c, int out_c,
                                     const float *x, const float *dy, const float *w, float *gw, float *gb,
                                     float *dx)
{
    pl_status s = be->linear_backward_weight(st, n, in_c, out_c, x, dy, gw, gb);
    if (!s && dx)
        s = be->linear_backward_data(st, n, in_c, out_c, dy, w, dx);
    return s;
}

pl_status pl_backend_fail(pl_error *err, const pl_model *m, const char *layer, const char *op, pl_status st)
{
    const char *msg = m->be_inst ? pl_instance_take_error(m->be_inst) : "";
    return pl_error_set(err, PL_EPLUGIN, "backend %s failed in layer %s: %s%s%s", op, layer, pl_status_str(st),
                        msg[0] ? ": " : "", msg);
}
