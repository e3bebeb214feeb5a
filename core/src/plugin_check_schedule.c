/* plugin_check_schedule.c — plugin-check rows for schedule plugins (what is
 * checked: plugin_check.h). */
#include "plugin_check_kinds.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct ck_plan_box {
    pl_schedule_plan p;
    unsigned char guard[256];
} ck_plan_box;

/* Calls plan() into a guarded box; 1 if the plan obeys the contract. */
static int ck_plan(pl_instance *in, double target, int n_layers, ck_plan_box *box, char *why,
                   size_t wn)
{
    const pl_schedule_ops *ops = pl_instance_ops(in);
    memset(box, 0xA5, sizeof *box);
    pl_schedule_query q;
    memset(&q, 0, sizeof q);
    q.target_sparsity = target;
    q.n_layers = n_layers;
    pl_status st = ops->plan(pl_instance_state(in), &q, &box->p);
    size_t len0 = strlen(why);
    if (st != PL_OK) {
        pl__ck_why(why, wn, "target %g, %d layer(s): plan() returned %d (%s)", target, n_layers, (int)st,
               pl__ck_plugin_error(in, st));
        return 0;
    }
    for (size_t i = 0; i < sizeof box->guard; i++)
        if (box->guard[i] != 0xA5) {
            pl__ck_why(why, wn, "target %g: wrote past the end of the plan", target);
            break;
        }
    const pl_schedule_plan *p = &box->p;
    if (p->n_steps < 1 || p->n_steps > PL_MAX_STEPS) {
        pl__ck_why(why, wn, "target %g: n_steps = %d, outside 1..%d", target, p->n_steps, PL_MAX_STEPS);
        return 0;
    }
    for (int i = 0; i < p->n_steps; i++) {
        double x = p->progress[i];
        if (!isfinite(x) || x <= 0.0 || x > 1.0) {
            pl__ck_why(why, wn, "target %g: progress[%d] = %g, outside (0, 1]", target, i, x);
            break;
        }
        if (i > 0 && x < p->progress[i - 1]) {
            pl__ck_why(why, wn, "target %g: progress decreases at step %d (%g after %g)", target, i, x,
                   p->progress[i - 1]);
            break;
        }
    }
    if (p->progress[p->n_steps - 1] != 1.0)
        pl__ck_why(why, wn, "target %g: last progress is %.17g, not exactly 1", target,
               p->progress[p->n_steps - 1]);
    if (p->scope != PL_SCOPE_LAYER && p->scope != PL_SCOPE_GLOBAL)
        pl__ck_why(why, wn, "target %g: unknown scope %d", target, (int)p->scope);
    if (p->scope == PL_SCOPE_GLOBAL && !(p->floor >= 0.0 && p->floor < 1.0))
        pl__ck_why(why, wn, "target %g: global floor %g outside [0, 1)", target, p->floor);
    if (p->scope == PL_SCOPE_GLOBAL && !(p->cap > 0.0 && p->cap <= 1.0))
        pl__ck_why(why, wn, "target %g: global cap %g outside (0, 1]", target, p->cap);
    return strlen(why) == len0;
}

static int ck_plan_same(const pl_schedule_plan *x, const pl_schedule_plan *y)
{
    if (x->n_steps != y->n_steps || x->scope != y->scope)
        return 0;
    if (memcmp(x->progress, y->progress, (size_t)x->n_steps * sizeof x->progress[0]))
        return 0;
    if (x->scope == PL_SCOPE_GLOBAL &&
        (memcmp(&x->floor, &y->floor, sizeof x->floor) || memcmp(&x->cap, &y->cap, sizeof x->cap)))
        return 0;
    return 1;
}

void pl__ck_schedule(pl__ck *c)
{
    static const double targets[] = {0.1, 0.5, 0.75, 0.9, 0.99};
    static const int layers[] = {1, 4};
    const int nt = (int)(sizeof targets / sizeof targets[0]);
    pl_instance *a = pl__ck_params(c, 1);
    if (!a) {
        pl__ck_row(c, CK_SKIP, "schedule checks", "no instance to check");
        return;
    }
    ck_plan_box box, box2;
    for (int t = 0; t < nt; t++) {
        char name[48], why[960] = "", steps[256] = "";
        snprintf(name, sizeof name, "plan target %.2f", targets[t]);
        pl__ck_begin(c, name);
        int ok = 1;
        for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++)
            ok &= ck_plan(a, targets[t], layers[l], &box, why, sizeof why);
        if (!ok) {
            pl__ck_row(c, CK_FAIL, name, "%s", why);
            continue;
        }
        const pl_schedule_plan *p = &box.p; /* the last query's plan */
        for (int i = 0; i < p->n_steps; i++) {
            size_t len = strlen(steps);
            if (p->n_steps > 6 && i == 3) {
                snprintf(steps + len, sizeof steps - len, ", ...");
                i = p->n_steps - 2;
                continue;
            }
            snprintf(steps + len, sizeof steps - len, "%s%.4g", i ? ", " : "", p->progress[i]);
        }
        pl__ck_row(c, CK_PASS, name, "%d step(s), progress %s, %s scope", p->n_steps, steps,
               p->scope == PL_SCOPE_GLOBAL ? "global" : "layer");
    }
    pl__ck_begin(c, "deterministic");
    char ewhy[1024] = "", why[960] = "";
    pl_instance *b = pl__ck_instance(c, 1, ewhy, sizeof ewhy);
    if (!b)
        pl__ck_why(why, sizeof why, "a second instance failed: %s", ewhy);
    for (int t = 0; b && t < nt && !why[0]; t++) {
        char w1[960] = "";
        if (!ck_plan(a, targets[t], 4, &box, w1, sizeof w1))
            continue; /* already reported above */
        if (!ck_plan(a, targets[t], 4, &box2, w1, sizeof w1) || !ck_plan_same(&box.p, &box2.p))
            pl__ck_why(why, sizeof why, "target %g: a second plan() call gave a different plan", targets[t]);
        else if (!ck_plan(b, targets[t], 4, &box2, w1, sizeof w1) || !ck_plan_same(&box.p, &box2.p))
            pl__ck_why(why, sizeof why, "target %g: a second instance with the same seed gave a different plan",
                   targets[t]);
    }
    pl_instance_free(b);
    if (why[0])
        pl__ck_row(c, CK_FAIL, "deterministic", "%s", why);
    else
        pl__ck_row(c, CK_PASS, "deterministic", "identical plans when asked twice and from a second instance");
    pl_instance_free(a);
}
