/* plugin_check.c — `prunelab plugin-check`: a plugin against its contract
 * (what is checked: plugin_check.h). This file is the driver: the rows,
 * the child process the checks run in, the shared helpers and the public
 * entry points; the checks of each kind are in plugin_check_<kind>.c. */
#include "plugin_check_kinds.h"
#include "scalar.h"
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

#define CK_CHECK_SECONDS 60 /* a check that takes longer counts as hung */

/* One record from the child that runs the checks to the parent that prints
 * them; small enough for an atomic pipe write. */
enum { CK_MSG_ROW = 1, CK_MSG_BEGIN = 2, CK_MSG_END = 3 };
typedef struct ck_msg {
    int type;
    int res;
    char name[48];
    char detail[960];
} ck_msg;

/* ---- reporting --------------------------------------------------------------- */

static void ck_print(pl__ck *c, int res, const char *name, const char *detail)
{
    static const char *const tag[] = {"PASS", "FAIL", "SKIP"};
    PL_ASSERT(res >= 0 && (size_t)res < sizeof tag / sizeof tag[0]);
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

void pl__ck_row(pl__ck *c, pl__ck_res res, const char *name, const char *fmt, ...)
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
void pl__ck_begin(pl__ck *c, const char *name)
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
void pl__ck_why(char *why, size_t n, const char *fmt, ...)
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

double pl__ck_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int pl__ck_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

float *pl__ck_randn(int64_t n, const char *stream, float scale)
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

const char *pl__ck_plugin_error(pl_instance *in, pl_status st)
{
    const char *m = pl_instance_take_error(in);
    return m[0] ? m : pl_status_str(st);
}

/* An instance from the default parameters; NULL (with the reason in why). */
pl_instance *pl__ck_instance(pl__ck *c, int threads, char *why, size_t n)
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

static int ck_param_name_ok(const char *s) { return s && pl__name_ok(s, 0, ".", 0); }

/* The `params` row: the spec's names, then an instance from the defaults.
 * Returns the instance (NULL when the remaining checks cannot run). */
pl_instance *pl__ck_params(pl__ck *c, int threads)
{
    const pl_plugin_desc *d = pl_plugin_get_desc(c->plugin);
    char list[512] = "";
    int n = 0;
    pl__ck_begin(c, "params");
    for (const pl_param_spec *s = d->params; s && s->name; s++, n++) {
        if (!ck_param_name_ok(s->name)) {
            pl__ck_row(c, CK_FAIL, "params", "parameter name '%s' does not match [a-z0-9_.]+", s->name);
            return NULL;
        }
        for (const pl_param_spec *t = d->params; t != s; t++)
            if (!strcmp(t->name, s->name)) {
                pl__ck_row(c, CK_FAIL, "params", "parameter '%s' is declared twice", s->name);
                return NULL;
            }
        if (!s->def) {
            pl__ck_row(c, CK_SKIP, "params",
                   "parameter '%s' is required (no default), so plugin-check cannot make an instance",
                   s->name);
            return NULL;
        }
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s=%s", len ? ", " : "", s->name, s->def);
    }
    char why[1024] = "";
    pl_instance *in = pl__ck_instance(c, threads, why, sizeof why);
    if (!in)
        pl__ck_row(c, CK_FAIL, "params", "init with the default parameters failed: %s", why);
    else if (n == 0)
        pl__ck_row(c, CK_PASS, "params", "no parameters; init ok");
    else
        pl__ck_row(c, CK_PASS, "params", "%d parameter(s), defaults valid, init ok (%s)", n, list);
    return in;
}

/* ---- guarded buffers ------------------------------------------------------------ */

/* n doubles between CK_GUARD sentinels on each side, all set to the sentinel. */
double *pl__ck_dguard_new(int64_t n)
{
    double *b = malloc((size_t)(n + 2 * CK_GUARD) * sizeof *b);
    if (!b)
        return NULL;
    for (int64_t i = 0; i < n + 2 * CK_GUARD; i++)
        memcpy(&b[i], &ck_sentinel64, sizeof b[i]);
    return b + CK_GUARD;
}

void pl__ck_dguard_free(double *p)
{
    if (p)
        free(p - CK_GUARD);
}

int pl__ck_dis_sentinel(const double *p)
{
    return !memcmp(p, &ck_sentinel64, sizeof *p);
}

/* Guarded floats: the body holds NaN, so an element the kernel does not
 * write shows up; the guards hold the sentinel. */
float *pl__ck_fguard_new(int64_t n)
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

void pl__ck_fguard_free(float *p)
{
    if (p)
        free(p - CK_GUARD);
}

/* Describes guard damage around p[0..n) into why; 1 if intact. */
int pl__ck_fguard_ok(const float *p, int64_t n, char *why, size_t wn)
{
    int before = 0, after = 0;
    for (int i = 0; i < CK_GUARD; i++) {
        before += memcmp(&p[-CK_GUARD + i], &ck_sentinel32, sizeof *p) != 0;
        after += memcmp(&p[n + i], &ck_sentinel32, sizeof *p) != 0;
    }
    if (before)
        pl__ck_why(why, wn, "wrote %d value(s) before the start of its output", before);
    if (after)
        pl__ck_why(why, wn, "wrote %d value(s) past the end of its output", after);
    return !before && !after;
}

/* ======================================================================== */
/* driver                                                                      */
/* ======================================================================== */

static void ck_suite(pl__ck *c)
{
    switch (pl_plugin_get_desc(c->plugin)->kind) {
    case PL_KIND_CRITERION: pl__ck_criterion(c); break;
    case PL_KIND_SCHEDULE: pl__ck_schedule(c); break;
    case PL_KIND_DATASET: pl__ck_dataset(c); break;
    case PL_KIND_BACKEND: pl__ck_backend(c); break;
    case PL_KIND_EXECUTOR: break; /* only the ABI data is checked */
    default: break;
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
static void ck_run_isolated(pl__ck *c)
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
    pl__ck c = {.reg = reg, .plugin = p, .out = out, .fd = -1};
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
    pl__ck c = {.out = out, .fd = -1};
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
