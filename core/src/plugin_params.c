/*
 * plugin_params.c — plugin instances: a plugin's parameters parsed against
 * its spec (defaults, unknown and missing keys, the shared scalar grammar of
 * scalar.h), init/fini, and the host API table given to plugins (logging,
 * errors, allocation, parameter getters, RNG). Finding and loading plugins
 * is registry.c.
 */
#include "registry.h"
#include "scalar.h"
#include "rng.h"
#include "suggest.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct param_entry {
    const pl_param_spec *spec;
    int64_t i;
    double f;
    char *s;
} param_entry;

struct pl_params {
    param_entry *v;
    size_t n;
};

struct pl_ctx {
    char msg[1024];
};

struct pl_instance {
    const pl_plugin *plugin;
    void *state;
    pl_params params;
    pl_ctx ctx;
    pl_env env;
};

/* ---- host API ------------------------------------------------------------ */

static int log_level = PL_LOG_INFO;
void pl_log_set_level(int level) { log_level = level; }

static void host_log(int level, const char *fmt, ...)
{
    if (level < log_level)
        return;
    static const char *const names[] = {"debug", "info", "warning", "error"};
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "prunelab: %s: ", names[level < 0 ? 0 : level > 3 ? 3 : level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Formatted on the caller's stack and copied under a lock: a dataset with
 * concurrent reads may fail on two threads at once (the host then reads the
 * message after the parallel region, on its own thread). */
static pthread_mutex_t g_error_mu = PTHREAD_MUTEX_INITIALIZER;

static void host_set_error(pl_ctx *ctx, const char *fmt, ...)
{
    if (!ctx)
        return;
    char msg[sizeof ctx->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = ' ';
    pthread_mutex_lock(&g_error_mu);
    memcpy(ctx->msg, msg, sizeof msg);
    pthread_mutex_unlock(&g_error_mu);
}

static void *host_alloc(size_t n) { return n ? malloc(n) : NULL; }
static void *host_calloc(size_t n, size_t s) { return n && s ? calloc(n, s) : NULL; }
static void *host_realloc(void *p, size_t n) { return realloc(p, n); }
static void host_free(void *p) { free(p); }
static void *host_alloc_aligned(size_t n)
{
    void *p = NULL;
    if (!n)
        return NULL;
    size_t r = (n + 63) & ~(size_t)63;
    if (r < n || posix_memalign(&p, 64, r))
        return NULL;
    return p;
}

static const param_entry *param_find(const pl_params *p, const char *name)
{
    for (size_t i = 0; p && i < p->n; i++)
        if (!strcmp(p->v[i].spec->name, name))
            return &p->v[i];
    host_log(PL_LOG_ERROR, "plugin asked for undeclared parameter '%s'", name);
    return NULL;
}
static int64_t host_param_int(const pl_params *p, const char *name)
{
    const param_entry *v = param_find(p, name);
    return v ? v->i : 0;
}
static double host_param_float(const pl_params *p, const char *name)
{
    const param_entry *v = param_find(p, name);
    return v ? v->f : 0;
}
static const char *host_param_str(const pl_params *p, const char *name)
{
    const param_entry *v = param_find(p, name);
    return v && v->s ? v->s : "";
}
static int host_param_bool(const pl_params *p, const char *name)
{
    const param_entry *v = param_find(p, name);
    return v ? (int)v->i : 0;
}

static const pl_host_api host_api = {
    .struct_size = sizeof(pl_host_api),
    .abi_minor = PL_ABI_MINOR,
    .alloc = host_alloc,
    .calloc = host_calloc,
    .realloc = host_realloc,
    .free = host_free,
    .alloc_aligned = host_alloc_aligned,
    .free_aligned = host_free,
    .log = host_log,
    .set_error = host_set_error,
    .param_int = host_param_int,
    .param_float = host_param_float,
    .param_str = host_param_str,
    .param_bool = host_param_bool,
    .rng_seed = pl_rng_seed,
    .rng_u64 = pl_rng_u64,
    .rng_uniform = pl_rng_uniform,
};

const pl_host_api *pl_host_api_get(void) { return &host_api; }

/* ---- parameters ------------------------------------------------------------ */

static pl_status parse_param(const pl_param_spec *s, const char *text, param_entry *out,
                             const char *where, const char *plugin, pl_error *err)
{
    switch (s->type) {
    case PL_PARAM_INT: {
        long long v;
        if (pl__int_word(text, &v) != 1)
            return pl_error_set(err, PL_ECONFIG, "%s: %s parameter '%s' expects an integer, got '%s'",
                                where, plugin, s->name, text);
        if (s->min <= s->max && ((double)v < s->min || (double)v > s->max))
            return pl_error_set(err, PL_ECONFIG, "%s: %s parameter '%s' = %lld is outside [%g, %g]",
                                where, plugin, s->name, v, s->min, s->max);
        out->i = v;
        out->f = (double)v;
        return PL_OK;
    }
    case PL_PARAM_FLOAT: {
        double v;
        if (!pl__num_word(text, &v) || !isfinite(v))
            return pl_error_set(err, PL_ECONFIG, "%s: %s parameter '%s' expects a number, got '%s'",
                                where, plugin, s->name, text);
        if (s->min <= s->max && (v < s->min || v > s->max))
            return pl_error_set(err, PL_ECONFIG, "%s: %s parameter '%s' = %g is outside [%g, %g]",
                                where, plugin, s->name, v, s->min, s->max);
        out->f = v;
        out->i = (int64_t)v;
        return PL_OK;
    }
    case PL_PARAM_BOOL: {
        int v;
        if (!pl__bool_word(text, PL__BOOL_PARAM, &v))
            return pl_error_set(err, PL_ECONFIG, "%s: %s parameter '%s' expects true or false, got '%s'",
                                where, plugin, s->name, text);
        out->i = v;
        return PL_OK;
    }
    case PL_PARAM_STRING:
        free(out->s);
        out->s = strdup(text);
        return out->s ? PL_OK : pl_error_set(err, PL_ENOMEM, "out of memory");
    }
    return pl_error_set(err, PL_EPLUGIN, "%s: bad parameter type", plugin);
}

static void params_deinit(pl_params *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].s);
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

/* kv: (key, value, where) triples through a callback-free array form */
typedef struct kvin {
    const char *key, *value;
    char where[512];
} kvin;

static pl_status params_build(const pl_plugin *pl, const kvin *kv, size_t n_kv, pl_params *out,
                              const char *ref_where, pl_error *err)
{
    const pl_plugin_desc *d = pl_plugin_get_desc(pl);
    size_t ns = 0;
    for (const pl_param_spec *s = d->params; s && s->name; s++)
        ns++;
    out->n = 0;
    out->v = ns ? calloc(ns, sizeof *out->v) : NULL;
    if (ns && !out->v)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    out->n = ns;
    for (size_t i = 0; i < ns; i++) {
        out->v[i].spec = &d->params[i];
        const pl_param_spec *s = &d->params[i];
        if (s->def) {
            char where[600];
            snprintf(where, sizeof where, "%s (default of %s)", pl_plugin_path(pl), s->name);
            pl_status st = parse_param(s, s->def, &out->v[i], where, d->name, err);
            if (st) {
                params_deinit(out);
                return pl_error_set(err, PL_EPLUGIN, "%s: default of parameter '%s' ('%s') is invalid",
                                    pl_plugin_path(pl), s->name, s->def);
            }
        }
    }
    const char *names[64];
    size_t nn = 0;
    for (size_t i = 0; i < ns && nn < 64; i++)
        names[nn++] = d->params[i].name;
    for (size_t k = 0; k < n_kv; k++) {
        size_t i;
        for (i = 0; i < ns; i++)
            if (!strcmp(d->params[i].name, kv[k].key))
                break;
        if (i == ns) {
            const char *sug = pl_suggest(kv[k].key, names, nn);
            char known[512] = "";
            size_t used = 0;
            for (size_t q = 0; q < nn; q++) {
                int w = snprintf(known + used, sizeof known - used, "%s%s", q ? ", " : "", names[q]);
                if (w > 0 && (size_t)w < sizeof known - used)
                    used += (size_t)w;
            }
            pl_status st = sug ? pl_error_set(err, PL_ECONFIG,
                                              "%s: unknown parameter '%s' for %s plugin '%s' (did you mean '%s'?)",
                                              kv[k].where, kv[k].key, pl_kind_name(d->kind), d->name, sug)
                               : pl_error_set(err, PL_ECONFIG,
                                              "%s: unknown parameter '%s' for %s plugin '%s' (it takes: %s)",
                                              kv[k].where, kv[k].key, pl_kind_name(d->kind), d->name,
                                              nn ? known : "no parameters");
            params_deinit(out);
            return st;
        }
        pl_status st = parse_param(&d->params[i], kv[k].value, &out->v[i], kv[k].where, d->name, err);
        if (st) {
            params_deinit(out);
            return st;
        }
    }
    for (size_t i = 0; i < ns; i++) {
        if (d->params[i].def)
            continue;
        int given = 0;
        for (size_t k = 0; k < n_kv; k++)
            if (!strcmp(kv[k].key, d->params[i].name))
                given = 1;
        if (!given) {
            params_deinit(out);
            return pl_error_set(err, PL_ECONFIG, "%s: %s plugin '%s' requires parameter '%s' (%s)",
                                ref_where, pl_kind_name(d->kind), d->name, d->params[i].name,
                                d->params[i].doc ? d->params[i].doc : "no description");
        }
    }
    return PL_OK;
}

static pl_status instance_init(const pl_plugin *p, pl_params *params, uint64_t seed, int threads,
                               pl_instance **out, pl_error *err)
{
    pl_instance *in = calloc(1, sizeof *in);
    if (!in) {
        params_deinit(params);
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    }
    in->plugin = p;
    in->params = *params;
    in->env.api = &host_api;
    in->env.ctx = &in->ctx;
    in->env.params = &in->params;
    in->env.seed = seed;
    in->env.threads = threads < 1 ? 1 : threads;
    const pl_plugin_desc *d = pl_plugin_get_desc(p);
    if (d->init) {
        pl_status st = d->init(&in->env, &in->state);
        if (st != PL_OK) {
            pl_error_set(err, PL_EPLUGIN, "%s plugin '%s' failed to initialise: %s", pl_kind_name(d->kind), d->name,
                         in->ctx.msg[0] ? in->ctx.msg : pl_status_str(st));
            if (err && (st == PL_EIO || st == PL_EFORMAT || st == PL_EINVAL || st == PL_ECONFIG))
                err->code = st == PL_EINVAL ? PL_ECONFIG : st;
            params_deinit(&in->params);
            free(in);
            return err ? err->code : PL_EPLUGIN;
        }
    }
    *out = in;
    return PL_OK;
}

pl_status pl_instance_new(pl_registry *r, pl_kind kind, const pl_plugin_ref *ref, uint64_t seed,
                          int threads, pl_instance **out, pl_error *err)
{
    const pl_plugin *p;
    char where[512];
    if (ref->line > 0)
        snprintf(where, sizeof where, "%s:%d:%d", ref->file ? ref->file : "<config>", ref->line,
                 ref->col);
    else
        snprintf(where, sizeof where, "%s", ref->file ? ref->file : "<config>");
    pl_status st = pl_registry_find(r, kind, ref->plugin, &p, err);
    if (st) {
        pl_error_prefix(err, "%s", where);
        return st;
    }
    kvin *kv = ref->n_params ? calloc(ref->n_params, sizeof *kv) : NULL;
    if (ref->n_params && !kv)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    for (size_t i = 0; i < ref->n_params; i++) {
        kv[i].key = ref->params[i].key;
        kv[i].value = ref->params[i].value;
        const pl_kv *pk = &ref->params[i];
        if (pk->line > 0)
            snprintf(kv[i].where, sizeof kv[i].where, "%s:%d:%d", pk->file ? pk->file : "<config>",
                     pk->line, pk->col);
        else
            snprintf(kv[i].where, sizeof kv[i].where, "%s", pk->file ? pk->file : "<config>");
    }
    pl_params params;
    st = params_build(p, kv, ref->n_params, &params, where, err);
    free(kv);
    if (st)
        return st;
    return instance_init(p, &params, seed, threads, out, err);
}

pl_status pl_instance_new_kv(const pl_plugin *p, const char *const *kvs, uint64_t seed, int threads,
                             pl_instance **out, pl_error *err)
{
    size_t n = 0;
    while (kvs && kvs[n])
        n++;
    kvin *kv = n ? calloc(n, sizeof *kv) : NULL;
    char **keys = n ? calloc(n, sizeof *keys) : NULL;
    if (n && (!kv || !keys)) {
        free(kv);
        free(keys);
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    }
    pl_status st = PL_OK;
    for (size_t i = 0; i < n && st == PL_OK; i++) {
        const char *eq = strchr(kvs[i], '=');
        if (!eq) {
            st = pl_error_set(err, PL_ECONFIG, "parameter '%s' is not key=value", kvs[i]);
            break;
        }
        keys[i] = malloc((size_t)(eq - kvs[i]) + 1);
        if (!keys[i]) {
            st = pl_error_set(err, PL_ENOMEM, "out of memory");
            break;
        }
        memcpy(keys[i], kvs[i], (size_t)(eq - kvs[i]));
        keys[i][eq - kvs[i]] = 0;
        kv[i].key = keys[i];
        kv[i].value = eq + 1;
        snprintf(kv[i].where, sizeof kv[i].where, "parameter %s", kvs[i]);
    }
    pl_params params;
    if (st == PL_OK)
        st = params_build(p, kv, n, &params, pl_plugin_path(p), err);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(kv);
    if (st)
        return st;
    return instance_init(p, &params, seed, threads, out, err);
}

void pl_instance_free(pl_instance *in)
{
    if (!in)
        return;
    const pl_plugin_desc *d = pl_plugin_get_desc(in->plugin);
    if (d->fini)
        d->fini(in->state);
    params_deinit(&in->params);
    free(in);
}

const void *pl_instance_ops(const pl_instance *in) { return pl_plugin_get_desc(in->plugin)->ops; }
void *pl_instance_state(const pl_instance *in) { return in->state; }
const pl_plugin *pl_instance_plugin(const pl_instance *in) { return in->plugin; }
const pl_params *pl_instance_params(const pl_instance *in) { return &in->params; }

const char *pl_instance_take_error(pl_instance *in)
{
    static _Thread_local char buf[1024];
    memcpy(buf, in->ctx.msg, sizeof buf);
    in->ctx.msg[0] = 0;
    return buf;
}
