/*
 * backend.c: which optional slots a backend offers (each on its own, the
 * grouped backward only as a pair), the kernel pairs of a backward, and a
 * failed kernel's error carrying the plugin's own message when the model
 * was bound through pl_backend_bind (and only the status when bound bare).
 */
#include "backend.h"
#include "pltest.h"

#include <string.h>

/* a non-NULL slot (never called): any function pointer's bytes */
static void dummy(void) {}
#define SET(slot)                                                                                  \
    do {                                                                                           \
        void (*f_)(void) = dummy;                                                                  \
        memcpy(&(slot), &f_, sizeof f_);                                                           \
    } while (0)

Test(backend, each_slot_on_its_own)
{
    pl_backend_ops be;
    memset(&be, 0, sizeof be);
    for (int s = 0; s < PL_SLOT_COUNT; s++)
        cr_assert_eq(pl_backend_has(&be, (pl_backend_slot)s), 0, "slot %d", s);
    SET(be.conv2d_forward_relu);
    cr_assert(pl_backend_has(&be, PL_SLOT_CONV_RELU));
    cr_assert(!pl_backend_has(&be, PL_SLOT_CONV_RELU_MAXPOOL));
    SET(be.conv2d_forward_relu_maxpool);
    SET(be.linear_forward_relu);
    SET(be.linear_forward_csr);
    SET(be.maxpool2d_relu_backward);
    SET(be.conv2d_grouped_forward);
    cr_assert(pl_backend_has(&be, PL_SLOT_CONV_RELU_MAXPOOL) && pl_backend_has(&be, PL_SLOT_LINEAR_RELU) &&
              pl_backend_has(&be, PL_SLOT_LINEAR_CSR) && pl_backend_has(&be, PL_SLOT_MAXPOOL_RELU_BACKWARD) &&
              pl_backend_has(&be, PL_SLOT_CONV_GROUPED_FORWARD));
    SET(be.conv2d_grouped_backward_weight);
    cr_assert(!pl_backend_has(&be, PL_SLOT_CONV_GROUPED_BACKWARD), "half of the grouped backward is not enough");
    SET(be.conv2d_grouped_backward_data);
    cr_assert(pl_backend_has(&be, PL_SLOT_CONV_GROUPED_BACKWARD));
}

static const char model_text[] = "name: t\ninput: [1, 4, 4]\nclasses: 2\nlayers:\n"
                                 "  - {name: f, type: flatten}\n"
                                 "  - {name: fc1, type: linear, out: 2}\n";

Test(backend, a_failed_kernel_carries_the_plugin_message)
{
    pl_instance *in = pltest_instance(PL_KIND_BACKEND, "kernel_fails", NULL, 1, 1);
    pl_model *m = pltest_model(model_text, 1);
    pl_error err = {0};
    float x[2 * 16] = {0};
    pl_backend_bind(m, in);
    cr_assert_eq(pl_model_reserve(m, 2, &err), PL_OK, "%s", err.msg);
    cr_assert_null(pl_model_forward(m, x, 2, PL_MODE_EVAL, &err));
    cr_assert_eq(err.code, PL_EPLUGIN);
    cr_assert(strstr(err.msg, "backend forward failed in layer fc1: ") && strstr(err.msg, "kernel_fails says so"),
              "%s", err.msg);
    /* bare ops: no instance to ask, the status alone */
    pl_model_bind(m, pl_instance_ops(in), pl_instance_state(in));
    cr_assert_null(pl_model_forward(m, x, 2, PL_MODE_EVAL, &err));
    cr_assert(strstr(err.msg, "backend forward failed in layer fc1: ") && !strstr(err.msg, "kernel_fails says so"),
              "%s", err.msg);
    pl_model_free(m);
    pl_instance_free(in);
}
