/* plugin_check.c — `prunelab plugin-check`: a plugin against its contract
 * (what is checked: plugin_check.h). */
#include "plugin_check.h"
#include "rng.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CK_GUARD 16        /* sentinel elements on each side of an output */
#define CK_CHECK_SECONDS 60 /* a check that takes longer counts as hung */
#define CK_SEED 7
#define CK_TOL 1e-4        /* backend error relative to the output's scale */

static const uint64_t ck_sentinel64 = 0x7FF4C0DEC0DEC0DEull; /* a NaN no one computes */
static const uint32_t ck_sentinel32 = 0x7FA5C0DEu;

typedef enum ck_res { CK_PASS = 0, CK_FAIL = 1, CK_SKIP = 2 } ck_res;

/* One record from the child that runs the checks to the parent that prints
 * them; small enough for an atomic pipe write. */
enum { CK_MSG_ROW = 1, CK_MSG_BEGIN = 2, CK_MSG_END = 3 };
typedef struct ck_msg {
    int type;
    int res;
    char name[48];
    char detail[960];
} ck_msg;

typedef struct ck {
    pl_registry *reg;
    const pl_plugin *plugin;
    FILE *out;
    int fd;        /* pipe to the parent, or -1 when checks run in-process */
    int counts[3]; /* by ck_res */
} ck;

/* ---- reporting --------------------------------------------------------------- */

static void ck_print(ck *c, int res, const char *name, const char *detail)
{
    static const char *const tag[] = {"PASS", "FAIL", "SKIP"};
    c->counts[res]++;
    fprintf(c->out, "  %-30s %s  %s\n", name, tag[res], detail);
}

static void ck_send(int fd, const ck_msg *m)
{
    const char *p = (const char *)m;
    size_t left = sizeof *m;
    while (left > 0) {
        ssize_t k = write(fd, p, left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        p += k;
        left -= (size_t)k;
    }
}

static void ck_row(ck *c, ck_res res, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void ck_row(ck *c, ck_res res, const char *name, const char *fmt, ...)
{
    ck_msg m;
    memset(&m, 0, sizeof m);
    m.type = CK_MSG_ROW;
    m.res = res;
    snprintf(m.name, sizeof m.name, "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m.detail, sizeof m.detail, fmt, ap);
    va_end(ap);
    if (c->fd >= 0)
        ck_send(c->fd, &m);
    else
        ck_print(c, res, m.name, m.detail);
}

/* Announces the check about to run, so a crash can be blamed on it. */
static void ck_begin(ck *c, const char *name)
{
    if (c->fd < 0)
        return;
    ck_msg m;
    memset(&m, 0, sizeof m);
    m.type = CK_MSG_BEGIN;
    snprintf(m.name, sizeof m.name, "%s", name);
    ck_send(c->fd, &m);
    alarm(CK_CHECK_SECONDS);
}

/* Appends "; text" (or "text") to a failure description. */
static void ck_why(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ck_why(char *why, size_t n, const char *fmt, ...)
{
    size_t len = strlen(why);
    if (len + 3 >= n)
        return;
    if (len) {
        memcpy(why + len, "; ", 3);
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why + len, n - len, fmt, ap);
    va_end(ap);
}

/* ---- helpers ------------------------------------------------------------------------ */

static double ck_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int ck_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *ck_randn(int64_t n, const char *stream, float scale)
{
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v)
        return NULL;
    pl_rng r;
    pl_rng_seed(&r, 2024, stream);
    for (int64_t i = 0; i < n; i++)
        v[i] = scale * (float)pl_rng_normal(&r);
    return v;
}

static const char *ck_plugin_error(pl_instance *in, pl_status st)
{
    const char *m = pl_instance_take_error(in);
    return m[0] ? m : pl_status_str(st);
}

/* An instance from the default parameters; NULL (with the reason in why). */
static pl_instance *ck_instance(ck *c, int threads, char *why, size_t n)
{
    static const char *const none[] = {NULL};
    pl_instance *in = NULL;
    pl_error e;
    pl_error_clear(&e);
    if (pl_instance_new_kv(c->plugin, none, CK_SEED, threads, &in, &e) != PL_OK) {
        snprintf(why, n, "%s", e.msg[0] ? e.msg : pl_status_str(e.code));
        return NULL;
    }
    return in;
}

static int ck_param_name_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

/* The `params` row: the spec's names, then an instance from the defaults.
 * Returns the instance (NULL when the remaining checks cannot run). */
static pl_instance *ck_params(ck *c, int threads)
{
    const pl_plugin_desc *d = pl_plugin_get_desc(c->plugin);
    char list[512] = "";
    int n = 0;
    ck_begin(c, "params");
    for (const pl_param_spec *s = d->params; s && s->name; s++, n++) {
        if (!ck_param_name_ok(s->name)) {
            ck_row(c, CK_FAIL, "params", "parameter name '%s' does not match [a-z0-9_.]+", s->name);
            return NULL;
        }
        for (const pl_param_spec *t = d->params; t != s; t++)
            if (!strcmp(t->name, s->name)) {
                ck_row(c, CK_FAIL, "params", "parameter '%s' is declared twice", s->name);
                return NULL;
            }
        if (!s->def) {
            ck_row(c, CK_SKIP, "params",
                   "parameter '%s' is required (no default), so plugin-check cannot make an instance",
                   s->name);
            return NULL;
        }
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s=%s", len ? ", " : "", s->name, s->def);
    }
    char why[1024] = "";
    pl_instance *in = ck_instance(c, threads, why, sizeof why);
    if (!in)
        ck_row(c, CK_FAIL, "params", "init with the default parameters failed: %s", why);
    else if (n == 0)
        ck_row(c, CK_PASS, "params", "no parameters; init ok");
    else
        ck_row(c, CK_PASS, "params", "%d parameter(s), defaults valid, init ok (%s)", n, list);
    return in;
}

/* ---- guarded buffers ------------------------------------------------------------ */

/* n doubles between CK_GUARD sentinels on each side, all set to the sentinel. */
static double *ck_dguard_new(int64_t n)
{
    double *b = malloc((size_t)(n + 2 * CK_GUARD) * sizeof *b);
    if (!b)
        return NULL;
    for (int64_t i = 0; i < n + 2 * CK_GUARD; i++)
        memcpy(&b[i], &ck_sentinel64, sizeof b[i]);
    return b + CK_GUARD;
}

static void ck_dguard_free(double *p)
{
    if (p)
        free(p - CK_GUARD);
}

static int ck_dis_sentinel(const double *p)
{
    return !memcmp(p, &ck_sentinel64, sizeof *p);
}

/* Guarded floats: the body holds NaN, so an element the kernel does not
 * write shows up; the guards hold the sentinel. */
static float *ck_fguard_new(int64_t n)
{
    float *b = malloc((size_t)(n + 2 * CK_GUARD) * sizeof *b);
    if (!b)
        return NULL;
    for (int64_t i = 0; i < n + 2 * CK_GUARD; i++) {
        if (i < CK_GUARD || i >= n + CK_GUARD)
            memcpy(&b[i], &ck_sentinel32, sizeof b[i]);
        else
            b[i] = NAN;
    }
    return b + CK_GUARD;
}

static void ck_fguard_free(float *p)
{
    if (p)
        free(p - CK_GUARD);
}

/* Describes guard damage around p[0..n) into why; 1 if intact. */
static int ck_fguard_ok(const float *p, int64_t n, char *why, size_t wn)
{
    int before = 0, after = 0;
    for (int i = 0; i < CK_GUARD; i++) {
        before += memcmp(&p[-CK_GUARD + i], &ck_sentinel32, sizeof *p) != 0;
        after += memcmp(&p[n + i], &ck_sentinel32, sizeof *p) != 0;
    }
    if (before)
        ck_why(why, wn, "wrote %d value(s) before the start of its output", before);
    if (after)
        ck_why(why, wn, "wrote %d value(s) past the end of its output", after);
    return !before && !after;
}

/* ======================================================================== */
/* criterion                                                                   */
/* ======================================================================== */

typedef struct ck_layer {
    char desc[64];
    char name[16];
    pl_unit_view v;
    float *w, *b, *mask, *g[2];
} ck_layer;

static void ck_layer_free(ck_layer *L)
{
    free(L->w);
    free(L->b);
    free(L->mask);
    free(L->g[0]);
    free(L->g[1]);
    memset(L, 0, sizeof *L);
}

/* flags for ck_layer_make */
enum { CK_ZERO = 1, CK_MASKED = 2 };

/* A layer of weight shape s (conv [cout,cin,kh,kw], linear [out,in,1,1]),
 * scored at granularity g, with random (or all-zero) weights and, for
 * criteria that need them, n_grads synthetic gradient batches. */
static int ck_layer_make(ck_layer *L, pl_layer_type type, pl_granularity g, const int64_t s[4],
                         int flags, int n_grads)
{
    static const char *const gname[] = {"", "weight", "channel", "neuron", "layer"};
    memset(L, 0, sizeof *L);
    const int64_t n = s[0] * s[1] * s[2] * s[3];
    snprintf(L->name, sizeof L->name, "%s", type == PL_LAYER_CONV2D ? "conv1" : "fc1");
    if (type == PL_LAYER_CONV2D)
        snprintf(L->desc, sizeof L->desc, "conv %lldx%lldx%lldx%lld %s", (long long)s[0],
                 (long long)s[1], (long long)s[2], (long long)s[3], gname[g]);
    else
        snprintf(L->desc, sizeof L->desc, "linear %lldx%lld %s", (long long)s[0], (long long)s[1],
                 gname[g]);
    L->w = ck_randn(n, L->desc, 0.1f);
    L->b = ck_randn(s[0], "bias", 0.1f);
    if (!L->w || !L->b)
        return 0;
    if (flags & CK_ZERO)
        memset(L->w, 0, (size_t)n * sizeof *L->w);
    if (flags & CK_MASKED) {
        if (!(L->mask = malloc((size_t)n * sizeof *L->mask)))
            return 0;
        for (int64_t i = 0; i < n; i++) {
            L->mask[i] = i % 3 == 1 ? 0.0f : 1.0f;
            if (L->mask[i] == 0.0f)
                L->w[i] = 0.0f; /* the host keeps masked weights at zero */
        }
    }
    for (int k = 0; k < n_grads; k++)
        if (!(L->g[k] = ck_randn(n, k ? "grad1" : "grad0", 0.01f)))
            return 0;
    L->v = (pl_unit_view){.layer = L->name, .layer_index = type == PL_LAYER_CONV2D ? 0 : 2,
                          .layer_type = type, .granularity = g,
                          .units = g == PL_GRAN_WEIGHT ? n : s[0],
                          .unit_size = g == PL_GRAN_WEIGHT ? 1 : n / s[0],
                          .weight = L->w, .bias = g == PL_GRAN_WEIGHT ? NULL : L->b,
                          .mask = L->mask, .n_grads = n_grads,
                          .grads = n_grads ? (const float *const *)L->g : NULL,
                          .shape = {s[0], s[1], s[2], s[3]}};
    return 1;
}

/* Scores L once through a guarded output. Returns 1 when every rule held
 * (scores copied to out if non-NULL, time to *ms if non-NULL), else 0 with
 * the broken rules in why. */
static int ck_score(pl_instance *in, const ck_layer *L, double *out, double *ms, char *why,
                    size_t wn)
{
    const pl_criterion_ops *ops = pl_instance_ops(in);
    const pl_unit_view *v = &L->v;
    const int64_t U = v->units, n = U * v->unit_size;
    double *sc = ck_dguard_new(U);
    float *w0 = malloc((size_t)n * sizeof *w0);
    if (!sc || !w0) {
        ck_dguard_free(sc);
        free(w0);
        ck_why(why, wn, "%s: out of memory in plugin-check", L->desc);
        return 0;
    }
    memcpy(w0, v->weight, (size_t)n * sizeof *w0);
    int64_t n_out = -1;
    const double t0 = ck_now_ms();
    pl_status st = ops->score(pl_instance_state(in), v, sc, &n_out);
    const double t1 = ck_now_ms();
    size_t len0 = strlen(why);
    if (st != PL_OK) {
        ck_why(why, wn, "%s: score() returned %d (%s)", L->desc, (int)st, ck_plugin_error(in, st));
    } else {
        int before = 0, after = 0;
        int64_t first_after = -1;
        for (int i = 0; i < CK_GUARD; i++) {
            before += !ck_dis_sentinel(&sc[-CK_GUARD + i]);
            if (!ck_dis_sentinel(&sc[U + i])) {
                after++;
                if (first_after < 0)
                    first_after = U + i;
            }
        }
        if (n_out != U)
            ck_why(why, wn, "%s: *n_out = %lld, expected %lld", L->desc, (long long)n_out,
                   (long long)U);
        if (before)
            ck_why(why, wn, "%s: wrote %d value(s) before the start of its output", L->desc, before);
        if (after)
            ck_why(why, wn, "%s: wrote %d value(s) past the end of its output (first: scores[%lld] of %lld)",
                   L->desc, after, (long long)first_after, (long long)U);
        int64_t unwritten = 0, nonfinite = 0, first_u = -1, first_nf = -1;
        for (int64_t u = 0; u < U; u++) {
            if (ck_dis_sentinel(&sc[u])) {
                if (!unwritten++)
                    first_u = u;
            } else if (!isfinite(sc[u])) {
                if (!nonfinite++)
                    first_nf = u;
            }
        }
        if (unwritten)
            ck_why(why, wn, "%s: %lld score(s) not written (first: unit %lld)", L->desc,
                   (long long)unwritten, (long long)first_u);
        if (nonfinite)
            ck_why(why, wn, "%s: %lld non-finite score(s) (first: unit %lld = %g)", L->desc,
                   (long long)nonfinite, (long long)first_nf, sc[first_nf]);
        if (memcmp(w0, v->weight, (size_t)n * sizeof *w0))
            ck_why(why, wn, "%s: modified its input weights", L->desc);
    }
    int ok = strlen(why) == len0;
    if (ok && out)
        memcpy(out, sc, (size_t)U * sizeof *out);
    if (ms)
        *ms = t1 - t0;
    ck_dguard_free(sc);
    free(w0);
    return ok;
}

#define CK_N_STD 4

static void ck_criterion(ck *c)
{
    const pl_criterion_ops *ops = pl_plugin_get_desc(c->plugin)->ops;
    const int ng = (ops->needs & PL_NEEDS_GRAD) ? 2 : 0;
    const char *gnote = ng ? " (2 synthetic gradient batches)" : "";
    pl_instance *a = ck_params(c, 1);
    if (!a) {
        ck_row(c, CK_SKIP, "criterion checks", "no instance to check");
        return;
    }
    static const int64_t conv[4] = {32, 16, 3, 3}, lin[4] = {64, 128, 1, 1};
    static const int64_t conv1[4] = {1, 16, 3, 3}, lin1[4] = {1, 128, 1, 1}, one[4] = {1, 1, 1, 1};
    ck_layer std[CK_N_STD], extra[3];
    double *ref[CK_N_STD] = {0}, *again = NULL;
    int made = ck_layer_make(&std[0], PL_LAYER_CONV2D, PL_GRAN_CHANNEL, conv, 0, ng) &
               ck_layer_make(&std[1], PL_LAYER_LINEAR, PL_GRAN_NEURON, lin, 0, ng) &
               ck_layer_make(&std[2], PL_LAYER_CONV2D, PL_GRAN_WEIGHT, conv, 0, ng) &
               ck_layer_make(&std[3], PL_LAYER_LINEAR, PL_GRAN_WEIGHT, lin, 0, ng);
    for (int i = 0; i < CK_N_STD; i++)
        made &= (ref[i] = malloc((size_t)std[i].v.units * sizeof(double))) != NULL;
    if (!made || !(again = malloc((size_t)std[3].v.units * sizeof(double)))) {
        ck_row(c, CK_FAIL, "criterion checks", "plugin-check ran out of memory");
        goto out;
    }

    /* one row per standard layer */
    int std_ok[CK_N_STD];
    for (int i = 0; i < CK_N_STD; i++) {
        char name[48], why[960] = "";
        snprintf(name, sizeof name, "score %s", std[i].desc);
        ck_begin(c, name);
        std_ok[i] = ck_score(a, &std[i], ref[i], NULL, why, sizeof why);
        if (std_ok[i])
            ck_row(c, CK_PASS, name, "%lld scores, all finite, guards intact, input untouched%s",
                   (long long)std[i].v.units, gnote);
        else
            ck_row(c, CK_FAIL, name, "%s", why);
    }

    /* masked weights */
    {
        char why[960] = "";
        ck_begin(c, "masked weights");
        memset(extra, 0, sizeof extra);
        int ok = ck_layer_make(&extra[0], PL_LAYER_CONV2D, PL_GRAN_CHANNEL, conv, CK_MASKED, ng) &&
                 ck_layer_make(&extra[1], PL_LAYER_LINEAR, PL_GRAN_WEIGHT, lin, CK_MASKED, ng);
        if (!ok)
            ck_why(why, sizeof why, "plugin-check ran out of memory");
        else {
            ck_score(a, &extra[0], NULL, NULL, why, sizeof why);
            ck_score(a, &extra[1], NULL, NULL, why, sizeof why);
        }
        if (why[0])
            ck_row(c, CK_FAIL, "masked weights", "%s", why);
        else
            ck_row(c, CK_PASS, "masked weights", "a third of the weights masked (conv channel, linear weight): counts right, all finite");
        ck_layer_free(&extra[0]);
        ck_layer_free(&extra[1]);
    }

    /* determinism: the same instance twice, a second instance with the same seed */
    {
        char why[960] = "";
        ck_begin(c, "deterministic");
        char ewhy[1024] = "";
        pl_instance *b = ck_instance(c, 1, ewhy, sizeof ewhy);
        int compared = 0;
        if (!b)
            ck_why(why, sizeof why, "a second instance failed: %s", ewhy);
        for (int i = 0; b && i < CK_N_STD && !why[0]; i++) {
            if (!std_ok[i])
                continue;
            compared++;
            for (int pass = 0; pass < 2 && !why[0]; pass++) {
                char swhy[960] = "";
                double *cmp = i == 3 ? again : malloc((size_t)std[i].v.units * sizeof(double));
                if (!cmp) {
                    ck_why(why, sizeof why, "plugin-check ran out of memory");
                    break;
                }
                if (!ck_score(pass ? b : a, &std[i], cmp, NULL, swhy, sizeof swhy))
                    ck_why(why, sizeof why, "%s", swhy);
                else
                    for (int64_t u = 0; u < std[i].v.units; u++)
                        if (memcmp(&cmp[u], &ref[i][u], sizeof cmp[u])) {
                            ck_why(why, sizeof why, "%s: unit %lld scored %.17g, then %.17g %s",
                                   std[i].desc, (long long)u, ref[i][u], cmp[u],
                                   pass ? "by a second instance with the same seed"
                                        : "when the same instance scored it again");
                            break;
                        }
                if (cmp != again)
                    free(cmp);
            }
        }
        pl_instance_free(b);
        if (why[0])
            ck_row(c, CK_FAIL, "deterministic", "%s", why);
        else if (!compared)
            ck_row(c, CK_SKIP, "deterministic", "no standard layer scored cleanly");
        else
            ck_row(c, CK_PASS, "deterministic",
                   "bit-identical when scored twice and by a second instance with seed %d (%d layers)",
                   CK_SEED, compared);
    }

    /* degenerate layers: all-zero weights, a single unit */
    for (int d = 0; d < 2; d++) {
        const char *name = d ? "one unit" : "all-zero weights";
        char why[960] = "";
        ck_begin(c, name);
        memset(extra, 0, sizeof extra);
        int ok = d ? ck_layer_make(&extra[0], PL_LAYER_CONV2D, PL_GRAN_CHANNEL, conv1, 0, ng) &&
                         ck_layer_make(&extra[1], PL_LAYER_LINEAR, PL_GRAN_NEURON, lin1, 0, ng) &&
                         ck_layer_make(&extra[2], PL_LAYER_LINEAR, PL_GRAN_WEIGHT, one, 0, ng)
                   : ck_layer_make(&extra[0], PL_LAYER_CONV2D, PL_GRAN_CHANNEL, conv, CK_ZERO, ng) &&
                         ck_layer_make(&extra[1], PL_LAYER_LINEAR, PL_GRAN_NEURON, lin, CK_ZERO, ng) &&
                         ck_layer_make(&extra[2], PL_LAYER_LINEAR, PL_GRAN_WEIGHT, lin, CK_ZERO, ng);
        if (!ok)
            ck_why(why, sizeof why, "plugin-check ran out of memory");
        else
            for (int k = 0; k < 3; k++)
                ck_score(a, &extra[k], NULL, NULL, why, sizeof why);
        if (why[0])
            ck_row(c, CK_FAIL, name, "%s", why);
        else
            ck_row(c, CK_PASS, name, "%s, %s, %s: no error, all finite", extra[0].desc,
                   extra[1].desc, extra[2].desc);
        for (int k = 0; k < 3; k++)
            ck_layer_free(&extra[k]);
    }

    /* speed on the standard layers (informational) */
    {
        ck_begin(c, "time");
        if (!std_ok[0] || !std_ok[1]) {
            ck_row(c, CK_SKIP, "time", "the standard layers did not score cleanly");
        } else {
            double med[2];
            char why[960] = "";
            for (int i = 0; i < 2; i++) {
                double t[5];
                for (int r = 0; r < 5; r++)
                    ck_score(a, &std[i], NULL, &t[r], why, sizeof why);
                qsort(t, 5, sizeof t[0], ck_cmp_double);
                med[i] = t[2];
            }
            if (why[0])
                ck_row(c, CK_FAIL, "time", "%s", why);
            else
                ck_row(c, CK_PASS, "time", "median of 5: %s %.3f ms, %s %.3f ms", std[0].desc,
                       med[0], std[1].desc, med[1]);
        }
    }

out:
    for (int i = 0; i < CK_N_STD; i++) {
        ck_layer_free(&std[i]);
        free(ref[i]);
    }
    free(again);
    pl_instance_free(a);
}

/* ======================================================================== */
/* schedule                                                                    */
/* ======================================================================== */

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
        ck_why(why, wn, "target %g, %d layer(s): plan() returned %d (%s)", target, n_layers, (int)st,
               ck_plugin_error(in, st));
        return 0;
    }
    for (size_t i = 0; i < sizeof box->guard; i++)
        if (box->guard[i] != 0xA5) {
            ck_why(why, wn, "target %g: wrote past the end of the plan", target);
            break;
        }
    const pl_schedule_plan *p = &box->p;
    if (p->n_steps < 1 || p->n_steps > PL_MAX_STEPS) {
        ck_why(why, wn, "target %g: n_steps = %d, outside 1..%d", target, p->n_steps, PL_MAX_STEPS);
        return 0;
    }
    for (int i = 0; i < p->n_steps; i++) {
        double x = p->progress[i];
        if (!isfinite(x) || x <= 0.0 || x > 1.0) {
            ck_why(why, wn, "target %g: progress[%d] = %g, outside (0, 1]", target, i, x);
            break;
        }
        if (i > 0 && x < p->progress[i - 1]) {
            ck_why(why, wn, "target %g: progress decreases at step %d (%g after %g)", target, i, x,
                   p->progress[i - 1]);
            break;
        }
    }
    if (p->progress[p->n_steps - 1] != 1.0)
        ck_why(why, wn, "target %g: last progress is %.17g, not exactly 1", target,
               p->progress[p->n_steps - 1]);
    if (p->scope != PL_SCOPE_LAYER && p->scope != PL_SCOPE_GLOBAL)
        ck_why(why, wn, "target %g: unknown scope %d", target, (int)p->scope);
    if (p->scope == PL_SCOPE_GLOBAL && !(p->floor >= 0.0 && p->floor < 1.0))
        ck_why(why, wn, "target %g: global floor %g outside [0, 1)", target, p->floor);
    if (p->scope == PL_SCOPE_GLOBAL && !(p->cap > 0.0 && p->cap <= 1.0))
        ck_why(why, wn, "target %g: global cap %g outside (0, 1]", target, p->cap);
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

static void ck_schedule(ck *c)
{
    static const double targets[] = {0.1, 0.5, 0.75, 0.9, 0.99};
    static const int layers[] = {1, 4};
    const int nt = (int)(sizeof targets / sizeof targets[0]);
    pl_instance *a = ck_params(c, 1);
    if (!a) {
        ck_row(c, CK_SKIP, "schedule checks", "no instance to check");
        return;
    }
    ck_plan_box box, box2;
    for (int t = 0; t < nt; t++) {
        char name[48], why[960] = "", steps[256] = "";
        snprintf(name, sizeof name, "plan target %.2f", targets[t]);
        ck_begin(c, name);
        int ok = 1;
        for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++)
            ok &= ck_plan(a, targets[t], layers[l], &box, why, sizeof why);
        if (!ok) {
            ck_row(c, CK_FAIL, name, "%s", why);
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
        ck_row(c, CK_PASS, name, "%d step(s), progress %s, %s scope", p->n_steps, steps,
               p->scope == PL_SCOPE_GLOBAL ? "global" : "layer");
    }
    ck_begin(c, "deterministic");
    char ewhy[1024] = "", why[960] = "";
    pl_instance *b = ck_instance(c, 1, ewhy, sizeof ewhy);
    if (!b)
        ck_why(why, sizeof why, "a second instance failed: %s", ewhy);
    for (int t = 0; b && t < nt && !why[0]; t++) {
        char w1[960] = "";
        if (!ck_plan(a, targets[t], 4, &box, w1, sizeof w1))
            continue; /* already reported above */
        if (!ck_plan(a, targets[t], 4, &box2, w1, sizeof w1) || !ck_plan_same(&box.p, &box2.p))
            ck_why(why, sizeof why, "target %g: a second plan() call gave a different plan", targets[t]);
        else if (!ck_plan(b, targets[t], 4, &box2, w1, sizeof w1) || !ck_plan_same(&box.p, &box2.p))
            ck_why(why, sizeof why, "target %g: a second instance with the same seed gave a different plan",
                   targets[t]);
    }
    pl_instance_free(b);
    if (why[0])
        ck_row(c, CK_FAIL, "deterministic", "%s", why);
    else
        ck_row(c, CK_PASS, "deterministic", "identical plans when asked twice and from a second instance");
    pl_instance_free(a);
}

/* ======================================================================== */
/* dataset                                                                     */
/* ======================================================================== */

#define CK_READ_N 4

/* Reads first, last, middle and first again of an open split into fenced
 * buffers; 1 if the contract held (the buffers are returned in img and lab). */
static int ck_read(pl_instance *in, void *h, const pl_dataset_info *info, float **img,
                   int32_t **lab, char *why, size_t wn)
{
    const pl_dataset_ops *ops = pl_instance_ops(in);
    const int64_t chw = (int64_t)info->channels * info->height * info->width;
    const int64_t idx[CK_READ_N] = {0, info->count - 1, info->count / 2, 0};
    float *x = ck_fguard_new(CK_READ_N * chw);
    float *lf = ck_fguard_new(CK_READ_N); /* labels are int32: same size, same fence */
    *img = x;
    *lab = (int32_t *)lf;
    if (!x || !lf) {
        ck_why(why, wn, "plugin-check ran out of memory for %lld values", (long long)(CK_READ_N * chw));
        return 0;
    }
    int32_t *y = (int32_t *)lf;
    for (int i = 0; i < CK_READ_N; i++)
        memcpy(&y[i], &ck_sentinel32, sizeof y[i]);
    pl_status st = ops->read(pl_instance_state(in), h, idx, CK_READ_N, x, y);
    size_t len0 = strlen(why);
    if (st != PL_OK) {
        ck_why(why, wn, "read() returned %d (%s)", (int)st, ck_plugin_error(in, st));
        return 0;
    }
    ck_fguard_ok(x, CK_READ_N * chw, why, wn);
    char lwhy[256] = "";
    if (!ck_fguard_ok(lf, CK_READ_N, lwhy, sizeof lwhy))
        ck_why(why, wn, "labels: %s", lwhy);
    for (int64_t i = 0; i < CK_READ_N * chw; i++)
        if (!isfinite(x[i])) {
            ck_why(why, wn, "image value %lld (example %lld) is %g (not written or not finite)",
                   (long long)(i % chw), (long long)idx[i / chw], x[i]);
            break;
        }
    for (int i = 0; i < CK_READ_N; i++)
        if (y[i] < 0 || y[i] >= info->classes) {
            ck_why(why, wn, "label of example %lld is %d, outside [0, %d)", (long long)idx[i], y[i],
                   info->classes);
            break;
        }
    if (strlen(why) == len0 &&
        (memcmp(x, x + 3 * chw, (size_t)chw * sizeof *x) || y[0] != y[3]))
        ck_why(why, wn, "example 0 read twice in one batch differs");
    return strlen(why) == len0;
}

static void ck_dataset(ck *c)
{
    static const pl_split splits[] = {PL_SPLIT_TRAIN, PL_SPLIT_TEST};
    const pl_dataset_ops *ops = pl_plugin_get_desc(c->plugin)->ops;
    pl_instance *a = ck_params(c, 1);
    if (!a) {
        ck_row(c, CK_SKIP, "dataset checks", "no instance to check");
        return;
    }
    for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
        const char *sn = splits[s] == PL_SPLIT_TRAIN ? "train" : "test";
        char name[48], why[960] = "";
        snprintf(name, sizeof name, "open %s", sn);
        ck_begin(c, name);
        pl_dataset_info info;
        memset(&info, 0, sizeof info);
        void *h = NULL;
        pl_status st = ops->open(pl_instance_state(a), splits[s], &h, &info);
        if (st != PL_OK) {
            ck_row(c, CK_SKIP, name, "cannot open with the default parameters: %s",
                   ck_plugin_error(a, st));
            continue;
        }
        if (info.count <= 0 || info.channels <= 0 || info.height <= 0 || info.width <= 0 ||
            info.classes <= 0 || memchr(info.checksum, 0, sizeof info.checksum) == NULL) {
            ck_row(c, CK_FAIL, name, "implausible info: %lld examples, %dx%dx%d, %d classes%s",
                   (long long)info.count, info.channels, info.height, info.width, info.classes,
                   memchr(info.checksum, 0, sizeof info.checksum) ? "" : ", checksum not terminated");
            ops->close(pl_instance_state(a), h);
            continue;
        }
        ck_row(c, CK_PASS, name, "%lld examples, %dx%dx%d, %d classes, %s", (long long)info.count,
               info.channels, info.height, info.width, info.classes,
               info.checksum[0] ? info.checksum : "no checksum");

        snprintf(name, sizeof name, "read %s", sn);
        ck_begin(c, name);
        float *x = NULL;
        int32_t *y = NULL;
        int ok = ck_read(a, h, &info, &x, &y, why, sizeof why);
        if (ok)
            ck_row(c, CK_PASS, name, "examples 0, %lld, %lld: finite, labels in range, guards intact, repeatable",
                   (long long)info.count - 1, (long long)info.count / 2);
        else
            ck_row(c, CK_FAIL, name, "%s", why);

        snprintf(name, sizeof name, "deterministic %s", sn);
        ck_begin(c, name);
        if (ok) {
            char ewhy[1024] = "";
            why[0] = 0;
            pl_instance *b = ck_instance(c, 1, ewhy, sizeof ewhy);
            void *h2 = NULL;
            pl_dataset_info info2;
            memset(&info2, 0, sizeof info2);
            float *x2 = NULL;
            int32_t *y2 = NULL;
            const int64_t chw = (int64_t)info.channels * info.height * info.width;
            if (!b)
                ck_why(why, sizeof why, "a second instance failed: %s", ewhy);
            else if ((st = ops->open(pl_instance_state(b), splits[s], &h2, &info2)) != PL_OK)
                ck_why(why, sizeof why, "a second instance cannot open the split: %s",
                       ck_plugin_error(b, st));
            else if (info2.count != info.count || info2.classes != info.classes ||
                     strcmp(info2.checksum, info.checksum))
                ck_why(why, sizeof why, "a second instance reports different info");
            else if (ck_read(b, h2, &info2, &x2, &y2, why, sizeof why) &&
                     (memcmp(x, x2, (size_t)(CK_READ_N * chw) * sizeof *x) ||
                      memcmp(y, y2, CK_READ_N * sizeof *y)))
                ck_why(why, sizeof why, "a second instance with the same seed read different examples");
            if (h2)
                ops->close(pl_instance_state(b), h2);
            ck_fguard_free(x2);
            ck_fguard_free((float *)y2);
            pl_instance_free(b);
            if (why[0])
                ck_row(c, CK_FAIL, name, "%s", why);
            else
                ck_row(c, CK_PASS, name, "a second instance with seed %d reads the same examples", CK_SEED);
        } else {
            ck_row(c, CK_SKIP, name, "read failed");
        }
        ck_fguard_free(x);
        ck_fguard_free((float *)y);
        ops->close(pl_instance_state(a), h);
    }
    pl_instance_free(a);
}

/* ======================================================================== */
/* backend                                                                     */
/* ======================================================================== */

static pl_conv2d_shape ck_conv_shape(int n, int cin, int h, int w, int cout, int kh, int kw, int sh,
                                     int sw, int ph, int pw)
{
    pl_conv2d_shape s = {.n = n, .cin = cin, .h = h, .w = w, .cout = cout, .kh = kh, .kw = kw,
                         .stride_h = sh, .stride_w = sw, .pad_h = ph, .pad_w = pw};
    s.oh = (h + 2 * ph - kh) / sh + 1;
    s.ow = (w + 2 * pw - kw) / sw + 1;
    return s;
}

typedef struct ck_linear_shape {
    int n, in, out;
} ck_linear_shape;

/* The shapes every kernel is tried on: odd sizes, strides and paddings, and
 * one big enough for vector and threaded paths. */
static const int ck_conv_specs[2][11] = {
    {2, 3, 7, 9, 5, 3, 2, 2, 1, 1, 0},
    {2, 8, 11, 11, 16, 3, 3, 1, 1, 1, 1},
};
static const ck_linear_shape ck_lin_specs[2] = {{3, 37, 13}, {5, 67, 19}};

static pl_conv2d_shape ck_conv_spec(int i)
{
    const int *p = ck_conv_specs[i];
    return ck_conv_shape(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10]);
}

static void ck_conv_desc(const pl_conv2d_shape *s, char *buf, size_t n)
{
    snprintf(buf, n, "x %dx%dx%dx%d w %dx%dx%dx%d s%dx%d p%dx%d", s->n, s->cin, s->h, s->w, s->cout,
             s->cin, s->kh, s->kw, s->stride_h, s->stride_w, s->pad_h, s->pad_w);
}

/* y = b + Σ w·x over the window, in double: the oracle of the oracle. */
static void ck_conv_direct(const pl_conv2d_shape *s, const float *x, const float *w, const float *b,
                           double *y)
{
    for (int n = 0; n < s->n; n++)
        for (int co = 0; co < s->cout; co++)
            for (int oy = 0; oy < s->oh; oy++)
                for (int ox = 0; ox < s->ow; ox++) {
                    double acc = b ? b[co] : 0.0;
                    for (int ci = 0; ci < s->cin; ci++)
                        for (int ky = 0; ky < s->kh; ky++)
                            for (int kx = 0; kx < s->kw; kx++) {
                                int iy = oy * s->stride_h - s->pad_h + ky;
                                int ix = ox * s->stride_w - s->pad_w + kx;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                                    continue;
                                acc += (double)w[((co * s->cin + ci) * s->kh + ky) * s->kw + kx] *
                                       x[((n * s->cin + ci) * s->h + iy) * s->w + ix];
                            }
                    y[((n * s->cout + co) * s->oh + oy) * s->ow + ox] = acc;
                }
}

static void ck_linear_direct(int n, int in, int out, const float *x, const float *w, const float *b,
                             double *y)
{
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int k = 0; k < in; k++)
                acc += (double)x[i * in + k] * w[o * in + k];
            y[i * out + o] = acc;
        }
}

/* Compares got with want (float or double, exactly one non-NULL):
 * max |got − want| / max |want|. 1 if within CK_TOL; *rel gets the error. */
static int ck_close(const float *got, const float *wantf, const double *wantd, int64_t n,
                    double *rel, char *why, size_t wn, const char *what)
{
    double scale = 0.0, err = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double w = wantf ? wantf[i] : wantd[i];
        if (!isfinite(got[i])) {
            ck_why(why, wn, "%s: element %lld is %g (not written or not finite)", what, (long long)i,
                   got[i]);
            return 0;
        }
        scale = fmax(scale, fabs(w));
        err = fmax(err, fabs((double)got[i] - w));
    }
    *rel = scale > 0.0 ? err / scale : err;
    if (*rel > CK_TOL) {
        ck_why(why, wn, "%s: relative error %.3g > %g", what, *rel, CK_TOL);
        return 0;
    }
    return 1;
}

typedef enum ck_op {
    CK_CONV_FWD, CK_CONV_BWD_DATA, CK_CONV_BWD_WEIGHT,
    CK_LIN_FWD, CK_LIN_BWD_DATA, CK_LIN_BWD_WEIGHT,
    CK_N_OPS
} ck_op;

static const char *const ck_op_names[CK_N_OPS] = {
    "conv2d_forward", "conv2d_backward_data", "conv2d_backward_weight",
    "linear_forward", "linear_backward_data", "linear_backward_weight",
};
_Static_assert(sizeof ck_op_names / sizeof ck_op_names[0] == CK_N_OPS, "one name per op");

/* Inputs and outputs of one kernel call on shape `shape` (0 or 1). */
typedef struct ck_call {
    ck_op op;
    int shape;
    pl_conv2d_shape cs;
    ck_linear_shape ls;
    float *x, *w, *b, *dy;   /* inputs (plain malloc) */
    int64_t n_out, n_out2;   /* sizes of the outputs (the second: db) */
    char desc[96];
} ck_call;

static int ck_call_make(ck_call *k, ck_op op, int shape)
{
    memset(k, 0, sizeof *k);
    k->op = op;
    k->shape = shape;
    int64_t nx, nw, nb, ny;
    if (op <= CK_CONV_BWD_WEIGHT) {
        k->cs = ck_conv_spec(shape);
        const pl_conv2d_shape *s = &k->cs;
        nx = (int64_t)s->n * s->cin * s->h * s->w;
        nw = (int64_t)s->cout * s->cin * s->kh * s->kw;
        nb = s->cout;
        ny = (int64_t)s->n * s->cout * s->oh * s->ow;
        ck_conv_desc(s, k->desc, sizeof k->desc);
    } else {
        k->ls = ck_lin_specs[shape];
        const ck_linear_shape *s = &k->ls;
        nx = (int64_t)s->n * s->in;
        nw = (int64_t)s->out * s->in;
        nb = s->out;
        ny = (int64_t)s->n * s->out;
        snprintf(k->desc, sizeof k->desc, "n %d, %d -> %d", s->n, s->in, s->out);
    }
    k->x = ck_randn(nx, "x", 1.0f);
    k->w = ck_randn(nw, "w", 0.3f);
    k->b = ck_randn(nb, "b", 0.3f);
    k->dy = ck_randn(ny, "dy", 1.0f);
    switch (op) {
    case CK_CONV_FWD: case CK_LIN_FWD: k->n_out = ny; break;
    case CK_CONV_BWD_DATA: case CK_LIN_BWD_DATA: k->n_out = nx; break;
    case CK_CONV_BWD_WEIGHT: case CK_LIN_BWD_WEIGHT: k->n_out = nw; k->n_out2 = nb; break;
    default: break;
    }
    return k->x && k->w && k->b && k->dy;
}

static void ck_call_free(ck_call *k)
{
    free(k->x);
    free(k->w);
    free(k->b);
    free(k->dy);
}

/* Runs the call on a backend into out (and out2 for db). */
static pl_status ck_call_run(const ck_call *k, pl_instance *in, float *out, float *out2)
{
    const pl_backend_ops *o = pl_instance_ops(in);
    void *st = pl_instance_state(in);
    const ck_linear_shape *l = &k->ls;
    switch (k->op) {
    case CK_CONV_FWD: return o->conv2d_forward(st, &k->cs, k->x, k->w, k->b, out);
    case CK_CONV_BWD_DATA: return o->conv2d_backward_data(st, &k->cs, k->dy, k->w, out);
    case CK_CONV_BWD_WEIGHT: return o->conv2d_backward_weight(st, &k->cs, k->x, k->dy, out, out2);
    case CK_LIN_FWD: return o->linear_forward(st, l->n, l->in, l->out, k->x, k->w, k->b, out);
    case CK_LIN_BWD_DATA: return o->linear_backward_data(st, l->n, l->in, l->out, k->dy, k->w, out);
    case CK_LIN_BWD_WEIGHT:
        return o->linear_backward_weight(st, l->n, l->in, l->out, k->x, k->dy, out, out2);
    default: return PL_EINVAL;
    }
}

/* One op on both shapes: the plugin against ref (and, for forward kernels,
 * against the direct double sum). */
static void ck_backend_op(ck *c, pl_instance *t, pl_instance *ref, ck_op op)
{
    const char *name = ck_op_names[op];
    char why[960] = "";
    double max_ref = 0.0, max_direct = -1.0;
    ck_begin(c, name);
    for (int shape = 0; shape < 2; shape++) {
        ck_call k;
        float *got = NULL, *got2 = NULL, *want = NULL, *want2 = NULL;
        double *direct = NULL;
        if (!ck_call_make(&k, op, shape) || !(got = ck_fguard_new(k.n_out)) ||
            (k.n_out2 && !(got2 = ck_fguard_new(k.n_out2)))) {
            ck_why(why, sizeof why, "plugin-check ran out of memory");
            goto next;
        }
        pl_status st = ck_call_run(&k, t, got, got2);
        if (st != PL_OK) {
            ck_why(why, sizeof why, "%s: returned %d (%s)", k.desc, (int)st, ck_plugin_error(t, st));
            goto next;
        }
        char gwhy[256] = "";
        if (!ck_fguard_ok(got, k.n_out, gwhy, sizeof gwhy) ||
            (got2 && !ck_fguard_ok(got2, k.n_out2, gwhy, sizeof gwhy)))
            ck_why(why, sizeof why, "%s: %s", k.desc, gwhy);
        double rel = 0.0, rel2 = 0.0, reld = -1.0;
        if (ref) {
            want = malloc((size_t)k.n_out * sizeof *want);
            want2 = k.n_out2 ? malloc((size_t)k.n_out2 * sizeof *want2) : NULL;
            if (!want || (k.n_out2 && !want2) || (st = ck_call_run(&k, ref, want, want2)) != PL_OK) {
                ck_why(why, sizeof why, "%s: the ref backend failed", k.desc);
                goto next;
            }
            ck_close(got, want, NULL, k.n_out, &rel, why, sizeof why, k.desc);
            if (got2)
                ck_close(got2, want2, NULL, k.n_out2, &rel2, why, sizeof why, k.desc);
        }
        if (op == CK_CONV_FWD || op == CK_LIN_FWD) {
            if (!(direct = malloc((size_t)k.n_out * sizeof *direct))) {
                ck_why(why, sizeof why, "plugin-check ran out of memory");
                goto next;
            }
            if (op == CK_CONV_FWD)
                ck_conv_direct(&k.cs, k.x, k.w, k.b, direct);
            else
                ck_linear_direct(k.ls.n, k.ls.in, k.ls.out, k.x, k.w, k.b, direct);
            ck_close(got, NULL, direct, k.n_out, &reld, why, sizeof why, k.desc);
        }
        max_ref = fmax(max_ref, fmax(rel, rel2));
        max_direct = fmax(max_direct, reld);
    next:
        ck_call_free(&k);
        ck_fguard_free(got);
        ck_fguard_free(got2);
        free(want);
        free(want2);
        free(direct);
    }
    char errs[128] = "";
    if (ref)
        ck_why(errs, sizeof errs, "%.1e vs ref", max_ref);
    if (max_direct >= 0.0)
        ck_why(errs, sizeof errs, "%.1e vs a direct double sum", max_direct);
    if (why[0])
        ck_row(c, CK_FAIL, name, "%s", why);
    else
        ck_row(c, CK_PASS, name, "2 odd shapes, relative error %s, guards intact", errs);
}

/* Results may not depend on the thread count: 1 vs 4 threads, bit for bit. */
static void ck_backend_threads(ck *c)
{
    char why[960] = "", ewhy[1024] = "";
    ck_begin(c, "thread count");
    pl_instance *t1 = ck_instance(c, 1, ewhy, sizeof ewhy);
    pl_instance *t4 = t1 ? ck_instance(c, 4, ewhy, sizeof ewhy) : NULL;
    if (!t1 || !t4)
        ck_why(why, sizeof why, "an instance failed: %s", ewhy);
    for (int op = 0; t4 && op < CK_N_OPS && !why[0]; op++) {
        ck_call k;
        float *a = NULL, *a2 = NULL, *b = NULL, *b2 = NULL;
        if (!ck_call_make(&k, (ck_op)op, 1) || !(a = malloc((size_t)k.n_out * sizeof *a)) ||
            !(b = malloc((size_t)k.n_out * sizeof *b)) ||
            (k.n_out2 && (!(a2 = malloc((size_t)k.n_out2 * sizeof *a2)) ||
                          !(b2 = malloc((size_t)k.n_out2 * sizeof *b2))))) {
            ck_why(why, sizeof why, "plugin-check ran out of memory");
        } else if (ck_call_run(&k, t1, a, a2) != PL_OK || ck_call_run(&k, t4, b, b2) != PL_OK) {
            ck_why(why, sizeof why, "%s failed (see its own row)", ck_op_names[op]);
        } else if (memcmp(a, b, (size_t)k.n_out * sizeof *a) ||
                   (a2 && memcmp(a2, b2, (size_t)k.n_out2 * sizeof *a2))) {
            ck_why(why, sizeof why, "%s on %s differs between 1 and 4 threads", ck_op_names[op],
                   k.desc);
        }
        ck_call_free(&k);
        free(a);
        free(a2);
        free(b);
        free(b2);
    }
    pl_instance_free(t1);
    pl_instance_free(t4);
    if (why[0])
        ck_row(c, CK_FAIL, "thread count", "%s", why);
    else
        ck_row(c, CK_PASS, "thread count", "all %d kernels bit-identical with 1 and 4 threads", CK_N_OPS);
}

static void ck_backend(ck *c)
{
    pl_instance *t = ck_params(c, 2);
    if (!t) {
        ck_row(c, CK_SKIP, "backend checks", "no instance to check");
        return;
    }
    const pl_plugin *rp = NULL;
    pl_instance *ref = NULL;
    pl_error e;
    char why[1024] = "";
    if (pl_registry_find(c->reg, PL_KIND_BACKEND, "ref", &rp, &e) == PL_OK) {
        static const char *const none[] = {NULL};
        if (pl_instance_new_kv(rp, none, CK_SEED, 1, &ref, &e) != PL_OK)
            ref = NULL;
    }
    if (!ref)
        snprintf(why, sizeof why, "%s", e.msg);
    ck_begin(c, "ref backend");
    if (ref)
        ck_row(c, CK_PASS, "ref backend", "comparing against %s", pl_plugin_path(rp));
    else
        ck_row(c, CK_SKIP, "ref backend", "no ref backend to compare against (%s); forward kernels are still compared with a direct sum",
               why);
    for (int op = 0; op < CK_N_OPS; op++)
        ck_backend_op(c, t, ref, (ck_op)op);
    ck_backend_threads(c);
    pl_instance_free(ref);
    pl_instance_free(t);
}

/* ======================================================================== */
/* driver                                                                      */
/* ======================================================================== */

static void ck_suite(ck *c)
{
    switch (pl_plugin_get_desc(c->plugin)->kind) {
    case PL_KIND_CRITERION: ck_criterion(c); break;
    case PL_KIND_SCHEDULE: ck_schedule(c); break;
    case PL_KIND_DATASET: ck_dataset(c); break;
    case PL_KIND_BACKEND: ck_backend(c); break;
    case PL_KIND_EXECUTOR: break; /* only the ABI data is checked */
    }
}

static ssize_t ck_read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

/* Runs the kind's checks in a child process and prints its rows; a crash,
 * hang or early exit fails the check that was running. */
static void ck_run_isolated(ck *c)
{
    int fds[2];
    fflush(c->out);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = -1;
    if (pipe(fds) == 0) {
        pid = fork();
        if (pid < 0) {
            close(fds[0]);
            close(fds[1]);
        }
    }
    if (pid < 0) { /* no processes to spare: run in-process */
        c->fd = -1;
        ck_suite(c);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGALRM, SIG_DFL);
        c->fd = fds[1];
        ck_suite(c);
        ck_msg m;
        memset(&m, 0, sizeof m);
        m.type = CK_MSG_END;
        ck_send(c->fd, &m);
        _exit(0);
    }
    close(fds[1]);
    char running[48] = "";
    int ended = 0;
    ck_msg m;
    while (ck_read_full(fds[0], &m, sizeof m) == (ssize_t)sizeof m) {
        m.name[sizeof m.name - 1] = 0;
        m.detail[sizeof m.detail - 1] = 0;
        if (m.type == CK_MSG_BEGIN) {
            snprintf(running, sizeof running, "%s", m.name);
        } else if (m.type == CK_MSG_ROW && m.res >= CK_PASS && m.res <= CK_SKIP) {
            ck_print(c, m.res, m.name, m.detail);
            running[0] = 0;
        } else if (m.type == CK_MSG_END) {
            ended = 1;
        }
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    const char *where = running[0] ? running : "checks";
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGALRM)
        {
            char d[96];
            snprintf(d, sizeof d, "hung: no result within %d s", CK_CHECK_SECONDS);
            ck_print(c, CK_FAIL, where, d);
        }
        else {
            char d[256];
            snprintf(d, sizeof d, "crashed with signal %d (%s); later checks did not run", sig,
                     strsignal(sig));
            ck_print(c, CK_FAIL, where, d);
        }
    } else if (!ended) {
        char d[256];
        snprintf(d, sizeof d, "the check process ended early with exit status %d (the plugin "
                 "called exit() or crashed under a sanitizer); later checks did not run",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        ck_print(c, CK_FAIL, where, d);
    }
}

static void ck_header(FILE *out, const char *what)
{
    fprintf(out, "%s\n  %-30s %-4s  %s\n", what, "CHECK", "RESULT", "DETAIL");
}

/* Checks one loaded plugin; returns its failed count. */
static int ck_one(pl_registry *reg, const pl_plugin *p, FILE *out)
{
    const pl_plugin_desc *d = pl_plugin_get_desc(p);
    ck c = {.reg = reg, .plugin = p, .out = out, .fd = -1};
    char head[4352];
    snprintf(head, sizeof head, "plugin-check: %s '%s' %s (%s)", pl_kind_name(d->kind), d->name,
             d->version, pl_plugin_path(p));
    ck_header(out, head);
    char detail[256];
    snprintf(detail, sizeof detail,
             "descriptor ABI %u.%u (host %d.%d), %u bytes, fingerprint 0x%08x, name, kind and "
             "required slots valid",
             d->abi_major, d->abi_minor, PL_ABI_MAJOR, PL_ABI_MINOR, d->struct_size, d->fingerprint);
    ck_print(&c, CK_PASS, "abi", detail);
    ck_run_isolated(&c);
    fprintf(out, "  %d passed, %d failed, %d skipped\n", c.counts[CK_PASS], c.counts[CK_FAIL],
            c.counts[CK_SKIP]);
    fflush(out);
    return c.counts[CK_FAIL];
}

/* A plugin the registry refused: one failed abi row. */
static void ck_refused(FILE *out, const char *name, const pl_error *why)
{
    char head[512];
    snprintf(head, sizeof head, "plugin-check: '%s'", name);
    ck_header(out, head);
    ck c = {.out = out, .fd = -1};
    ck_print(&c, CK_FAIL, "abi", why->msg[0] ? why->msg : pl_status_str(why->code));
    fprintf(out, "  0 passed, 1 failed, 0 skipped\n");
    fflush(out);
}

pl_status pl_plugin_check_kind(const char *text, int *kind, pl_error *err)
{
    static const pl_kind kinds[] = {PL_KIND_CRITERION, PL_KIND_SCHEDULE, PL_KIND_DATASET,
                                    PL_KIND_BACKEND};
    *kind = 0;
    if (!text || !*text)
        return PL_OK;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(text, pl_kind_name(kinds[i])) || !strcmp(text, pl_kind_dir(kinds[i]))) {
            *kind = kinds[i];
            return PL_OK;
        }
    return pl_error_set(err, PL_ECONFIG,
                        "--kind '%s' is not a plugin kind (criterion, schedule, dataset or backend)",
                        text);
}

static int ck_is_path(const char *name)
{
    size_t n = strlen(name);
    return strchr(name, '/') || (n > 3 && !strcmp(name + n - 3, ".so"));
}

pl_status pl_plugin_check(pl_registry *reg, const char *name, int kind, FILE *out, int *failed,
                          pl_error *err)
{
    static const pl_kind kinds[] = {PL_KIND_CRITERION, PL_KIND_SCHEDULE, PL_KIND_DATASET,
                                    PL_KIND_BACKEND};
    *failed = 0;
    const pl_plugin *found[4];
    int nf = 0;
    pl_error refused, missing;
    int was_refused = 0;
    pl_error_clear(&refused);
    pl_error_clear(&missing);
    if (!name || !*name)
        return pl_error_set(err, PL_ECONFIG, "plugin-check needs a plugin name");
    if (ck_is_path(name)) {
        if (access(name, F_OK) != 0)
            return pl_error_set(err, PL_ENOTFOUND, "%s: %s", name, strerror(errno));
        pl_status st = pl_registry_load_file(reg, name, (pl_kind)kind, &found[0], &refused);
        if (st == PL_OK)
            nf = 1;
        else
            was_refused = 1;
    } else {
        if (!pl_name_valid(name))
            return pl_error_set(err, PL_ECONFIG,
                                "plugin name '%s' is invalid: names match [a-z0-9_]+ (to check a "
                                "file, give its path)",
                                name);
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
            if (kind && kinds[i] != (pl_kind)kind)
                continue;
            pl_error e;
            pl_error_clear(&e);
            pl_status st = pl_registry_find(reg, kinds[i], name, &found[nf], &e);
            if (st == PL_OK) {
                nf++;
            } else if (st != PL_ENOTFOUND && !was_refused) {
                refused = e; /* found, but the registry refuses it */
                was_refused = 1;
            } else {
                missing = e; /* names the kind and lists what is available */
            }
        }
        if (nf == 0 && !was_refused) {
            if (kind)
                return pl_error_set(err, PL_ENOTFOUND, "%s", missing.msg);
            return pl_error_set(err, PL_ENOTFOUND,
                                "no plugin named '%s' on the plugin path (no criterion, schedule, "
                                "dataset or backend of that name; see `prunelab plugins`)",
                                name);
        }
    }
    if (nf == 0) {
        ck_refused(out, name, &refused);
        *failed = 1;
        return PL_OK;
    }
    for (int i = 0; i < nf; i++) {
        if (i)
            fputc('\n', out);
        *failed += ck_one(reg, found[i], out);
    }
    return PL_OK;
}
