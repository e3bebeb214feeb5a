/*
 * The oneshot, iterative and global schedules, loaded as built plugins:
 * their plans (steps, ramp values, scope, floor/cap) and the parameters
 * they refuse.
 */
#include "pltest.h"

#include <math.h>
#include <string.h>

#define EPS 1e-15

/* Instantiates schedule `name` with kv params and returns its plan for a
 * typical query; checks the invariants every plan must keep. */
static pl_schedule_plan plan_of(const char *name, const char *const *kv)
{
    pl_instance *in = pltest_instance(PL_KIND_SCHEDULE, name, kv, 1, 1);
    const pl_schedule_ops *ops = pl_instance_ops(in);
    const pl_schedule_query q = {.target_sparsity = 0.5, .n_layers = 3};
    pl_schedule_plan p;
    memset(&p, 0xab, sizeof p);
    cr_assert_eq(ops->plan(pl_instance_state(in), &q, &p), PL_OK, "%s: %s", name,
                 pl_instance_take_error(in));
    pl_instance_free(in);

    cr_assert(p.n_steps >= 1 && p.n_steps <= PL_MAX_STEPS, "%s: n_steps %d", name, p.n_steps);
    for (int i = 0; i < p.n_steps; i++) {
        cr_expect(p.progress[i] > 0 && p.progress[i] <= 1, "%s: progress[%d] = %g", name, i,
                  p.progress[i]);
        if (i > 0)
            cr_expect(p.progress[i] >= p.progress[i - 1], "%s: progress decreases at %d", name, i);
    }
    cr_expect_eq(p.progress[p.n_steps - 1], 1.0, "%s: last progress must be exactly 1", name);
    return p;
}

static void expect_progress(const pl_schedule_plan *p, int n, const double *want)
{
    cr_assert_eq(p->n_steps, n);
    for (int i = 0; i < n; i++)
        cr_expect(fabs(p->progress[i] - want[i]) <= EPS, "progress[%d] = %.17g, want %.17g", i,
                  p->progress[i], want[i]);
}

/* The error a schedule's init gives for kv (asserts that it fails). */
static const char *refused(const char *name, const char *const *kv)
{
    static pl_error err;
    const pl_plugin *p;
    cr_assert_eq(pl_registry_find(pltest_registry(), PL_KIND_SCHEDULE, name, &p, &err), PL_OK,
                 "%s", err.msg);
    pl_instance *in = NULL;
    pl_status st = pl_instance_new_kv(p, kv, 1, 1, &in, &err);
    cr_assert_neq(st, PL_OK, "%s must refuse %s", name, kv[0]);
    cr_assert_null(in);
    return err.msg;
}

Test(schedules, oneshot)
{
    pl_schedule_plan p = plan_of("oneshot", NULL);
    expect_progress(&p, 1, (double[]){1});
    cr_expect_eq(p.scope, PL_SCOPE_LAYER);
}

Test(schedules, iterative_default_is_linear_3)
{
    pl_schedule_plan p = plan_of("iterative", NULL);
    expect_progress(&p, 3, (double[]){1.0 / 3, 2.0 / 3, 1});
    cr_expect_eq(p.scope, PL_SCOPE_LAYER);
}

Test(schedules, iterative_linear_explicit)
{
    static const char *const kv[] = {"steps=4", "ramp=linear", NULL};
    pl_schedule_plan p = plan_of("iterative", kv);
    expect_progress(&p, 4, (double[]){0.25, 0.5, 0.75, 1});
}

Test(schedules, iterative_cubic_3)
{
    /* AGP: 1 - (1 - i/3)^3 = 19/27, 26/27, 1 */
    static const char *const kv[] = {"steps=3", "ramp=cubic", NULL};
    pl_schedule_plan p = plan_of("iterative", kv);
    expect_progress(&p, 3, (double[]){19.0 / 27, 26.0 / 27, 1});
}

Test(schedules, iterative_geometric)
{
    /* the same share of the survivors each step: at target 0.5 over 2
     * steps, 1 - sqrt(0.5) = 0.2929 of the units after step 1, i.e.
     * 0.5858 of the final target */
    static const char *const kv[] = {"steps=2", "ramp=geometric", NULL};
    pl_schedule_plan p = plan_of("iterative", kv);
    expect_progress(&p, 2, (double[]){(1 - sqrt(0.5)) / 0.5, 1});
}

Test(schedules, iterative_one_step)
{
    static const char *const lin[] = {"steps=1", NULL};
    static const char *const cub[] = {"steps=1", "ramp=cubic", NULL};
    pl_schedule_plan p = plan_of("iterative", lin);
    expect_progress(&p, 1, (double[]){1});
    p = plan_of("iterative", cub);
    expect_progress(&p, 1, (double[]){1});
}

Test(schedules, iterative_max_steps)
{
    static const char *const kv[] = {"steps=64", "ramp=cubic", NULL};
    pl_schedule_plan p = plan_of("iterative", kv); /* invariants checked inside */
    cr_expect_eq(p.n_steps, 64);
    cr_expect(p.progress[31] > 0.5, "cubic front-loads: %g", p.progress[31]);
}

Test(schedules, iterative_bad_ramp)
{
    static const char *const kv[] = {"ramp=quadratic", NULL};
    const char *msg = refused("iterative", kv);
    cr_expect(strstr(msg, "quadratic") && strstr(msg, "linear") && strstr(msg, "cubic"),
              "message: %s", msg);
}

Test(schedules, iterative_bad_steps)
{
    static const char *const zero[] = {"steps=0", NULL};
    static const char *const many[] = {"steps=65", NULL};
    refused("iterative", zero);
    refused("iterative", many);
}

Test(schedules, global_defaults)
{
    pl_schedule_plan p = plan_of("global", NULL);
    expect_progress(&p, 1, (double[]){1});
    cr_expect_eq(p.scope, PL_SCOPE_GLOBAL);
    cr_expect_eq(p.floor, 0.05);
    cr_expect_eq(p.cap, 1.0);
}

Test(schedules, global_params)
{
    static const char *const kv[] = {"steps=3", "ramp=cubic", "floor=0.2", "cap=0.5", NULL};
    pl_schedule_plan p = plan_of("global", kv);
    expect_progress(&p, 3, (double[]){19.0 / 27, 26.0 / 27, 1});
    cr_expect_eq(p.scope, PL_SCOPE_GLOBAL);
    cr_expect_eq(p.floor, 0.2);
    cr_expect_eq(p.cap, 0.5);

    static const char *const lin[] = {"steps=2", "floor=0", "cap=1", NULL};
    p = plan_of("global", lin);
    expect_progress(&p, 2, (double[]){0.5, 1});
    cr_expect_eq(p.floor, 0.0);
    cr_expect_eq(p.cap, 1.0);
}

Test(schedules, global_refuses_bad_params)
{
    static const char *const floor1[] = {"floor=1", NULL};
    static const char *const cap0[] = {"cap=0", NULL};
    static const char *const neg[] = {"floor=-0.1", NULL};
    static const char *const ramp[] = {"ramp=step", NULL};
    const char *msg = refused("global", floor1);
    cr_expect(strstr(msg, "floor") != NULL, "message: %s", msg);
    msg = refused("global", cap0);
    cr_expect(strstr(msg, "cap") != NULL, "message: %s", msg);
    refused("global", neg);
    msg = refused("global", ramp);
    cr_expect(strstr(msg, "linear, cubic") != NULL, "message: %s", msg);
}

Test(schedules, global_description_names_the_normalisation)
{
    pl_instance *in = pltest_instance(PL_KIND_SCHEDULE, "global", NULL, 1, 1);
    const pl_plugin_desc *d = pl_plugin_get_desc(pl_instance_plugin(in));
    cr_expect(strstr(d->description, "mean") != NULL, "%s", d->description);
    pl_instance_free(in);
}

Test(schedules, global_normalize_values)
{
    static const char *const lamp[] = {"normalize=lamp", NULL};
    static const char *const none[] = {"normalize=none", NULL};
    static const char *const mean[] = {"normalize=mean", NULL};
    cr_expect_eq(plan_of("global", NULL).normalize, PL_NORM_MEAN, "mean stays the default");
    cr_expect_eq(plan_of("global", mean).normalize, PL_NORM_MEAN);
    cr_expect_eq(plan_of("global", lamp).normalize, PL_NORM_LAMP);
    cr_expect_eq(plan_of("global", none).normalize, PL_NORM_NONE);
    cr_expect_eq(plan_of("iterative", NULL).normalize, 0, "layer-scope plans leave it 0");
    static const char *const bad[] = {"normalize=median", NULL};
    const char *msg = refused("global", bad);
    cr_expect(strstr(msg, "median") && strstr(msg, "lamp") && strstr(msg, "none"), "message: %s", msg);
}
