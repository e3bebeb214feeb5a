/* manifest.c — what produced a run: build, machine, config, inputs, times. */
#include "manifest.h"
#include "pl_build_info.h" /* generated: PL_DESCRIBE, PL_BUILD_COMPILER, PL_BUILD_FLAGS */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pl_manifest_free(pl_run_result *r)
{
    for (size_t i = 0; i < 2 * r->n_manifest; i++)
        free(r->manifest[i]);
    free(r->manifest);
    r->manifest = NULL;
    r->n_manifest = 0;
}

pl_status pl_manifest_add(pl_run_result *r, const char *key, const char *value)
{
    char **m = realloc(r->manifest, (2 * r->n_manifest + 2) * sizeof *m);
    if (!m)
        return PL_ENOMEM;
    r->manifest = m;
    char *k = strdup(key), *v = strdup(value ? value : "");
    if (!k || !v) {
        free(k);
        free(v);
        return PL_ENOMEM;
    }
    m[2 * r->n_manifest] = k;
    m[2 * r->n_manifest + 1] = v;
    r->n_manifest++;
    return PL_OK;
}

const char *pl_manifest_get(const pl_run_result *r, const char *key)
{
    for (size_t i = 0; i < r->n_manifest; i++)
        if (!strcmp(r->manifest[2 * i], key))
            return r->manifest[2 * i + 1];
    return NULL;
}

static void cpu_model(char *out, size_t n)
{
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        /* x86 "model name", ARM "Model"/"CPU part" — the first one wins */
        if (!strncmp(line, "model name", 10) || !strncmp(line, "Model", 5)) {
            const char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t')
                    c++;
                snprintf(out, n, "%.*s", (int)strcspn(c, "\n"), c);
                break;
            }
        }
    }
    fclose(f);
}

/* the simd backend's rule (plugins/backends/simd/simd.c isa_supported) */
static void cpu_isa(const char *want, char *features, size_t nf, char *isa, size_t ni)
{
    int avx512 = 0, avx2 = 0, fma = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    avx2 = __builtin_cpu_supports("avx2");
    fma = __builtin_cpu_supports("fma");
#endif
    snprintf(features, nf, "%s%s%s", avx512 ? "avx512 " : "", avx2 ? "avx2 " : "", fma ? "fma" : "");
    if (!want || !*want || !strcmp(want, "auto"))
        snprintf(isa, ni, "auto: %s", avx512 && avx2 && fma ? "avx512" : avx2 && fma ? "avx2" : "base");
    else
        snprintf(isa, ni, "%s", want);
}

static void utc(time_t t, char *out, size_t n)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) && strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        return;
    snprintf(out, n, "unknown");
}

/* the value of "key: value" in the identity text */
static void identity_value(const char *identity, const char *key, char *out, size_t n)
{
    size_t k = strlen(key);
    out[0] = 0;
    for (const char *l = identity; l && *l;) {
        size_t len = strcspn(l, "\n");
        if (len > k + 2 && !strncmp(l, key, k) && l[k] == ':' && l[k + 1] == ' ') {
            snprintf(out, n, "%.*s", (int)(len - k - 2), l + k + 2);
            return;
        }
        l += len + (l[len] == '\n');
    }
}

pl_status pl_manifest_build(pl_run_result *r, pl_registry *reg, const pl_experiment *x, int threads,
                            time_t start, time_t end, pl_error *err)
{
    pl_manifest_free(r);
    char buf[1024], feat[64], isa[64], t0[32], t1[32];
    pl_status s = PL_OK;
#define ADD(k, v)                                                                                            \
    do {                                                                                                     \
        if (!s)                                                                                              \
            s = pl_manifest_add(r, k, v);                                                                    \
    } while (0)
    ADD("prunelab_version", PL_DESCRIBE);
    snprintf(buf, sizeof buf, "%d.%d", PL_ABI_MAJOR, PL_ABI_MINOR);
    ADD("abi", buf);
    ADD("compiler", PL_BUILD_COMPILER);
    ADD("flags", PL_BUILD_FLAGS);
    cpu_model(buf, sizeof buf);
    ADD("cpu", buf);
    const char *want = NULL;
    for (size_t i = 0; i < x->backend.n_params; i++)
        if (!strcmp(x->backend.params[i].key, "isa"))
            want = x->backend.params[i].value;
    cpu_isa(want, feat, sizeof feat, isa, sizeof isa);
    ADD("cpu_features", feat);
    ADD("isa", strcmp(x->backend.plugin, "simd") ? "portable C (no SIMD dispatch)" : isa);
    snprintf(buf, sizeof buf, "%d", threads);
    ADD("threads", buf);
    utc(start, t0, sizeof t0);
    utc(end, t1, sizeof t1);
    ADD("start", t0);
    ADD("end", t1);
    char *dump = pl_experiment_dump(x);
    if (!dump && !s)
        s = PL_ENOMEM;
    ADD("config", dump);
    free(dump);
    ADD("identity", x->identity);
    identity_value(x->identity, "dataset.train", buf, sizeof buf);
    ADD("dataset.train", buf);
    identity_value(x->identity, "dataset.test", buf, sizeof buf);
    ADD("dataset.test", buf);
    const struct {
        pl_kind kind;
        const char *key;
        const pl_plugin_ref *ref;
        int used;
    } kinds[] = {{PL_KIND_BACKEND, "plugin.backend", &x->backend, 1},
                 {PL_KIND_DATASET, "plugin.dataset", &x->dataset, 1},
                 {PL_KIND_CRITERION, "plugin.criterion", &x->prune.criterion, x->prune.enabled},
                 {PL_KIND_SCHEDULE, "plugin.schedule", &x->prune.schedule, x->prune.enabled}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const pl_plugin *p;
        pl_error e;
        if (!kinds[i].used || pl_registry_find(reg, kinds[i].kind, kinds[i].ref->plugin, &p, &e))
            continue;
        snprintf(buf, sizeof buf, "%s %s %s", pl_plugin_path(p), pl_plugin_get_desc(p)->version, pl_plugin_sha256(p));
        ADD(kinds[i].key, buf);
    }
#undef ADD
    if (s)
        return pl_error_set(err, PL_ENOMEM, "run %s: out of memory building its manifest", x->run_id);
    return PL_OK;
}

/* the distinct values of key over runs, in first-seen order, joined by "; " */
static void distinct(pl__buf *b, const pl_run_result *const *runs, size_t n, const char *key,
                     void (*show)(pl__buf *, const char *))
{
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        const char *v = pl_manifest_get(runs[i], key);
        int seen = !v;
        for (size_t j = 0; j < i && !seen; j++) {
            const char *w = pl_manifest_get(runs[j], key);
            seen = w && !strcmp(v, w);
        }
        if (seen)
            continue;
        if (shown++)
            pl__buf_puts(b, "; ");
        show(b, v);
    }
    if (!shown)
        pl__buf_puts(b, "-");
}

/* Markdown-safe text: no table breaks, no line breaks */
static void md(pl__buf *b, const char *s)
{
    for (; *s; s++)
        pl__buf_puts(b, *s == '|' ? "\\|" : *s == '\n' || *s == '\r' ? " " : (char[2]){*s, 0});
}

/* "<path> <version> sha256:<hex>" -> "<file> <version> sha256:<12 hex>" */
static void md_plugin(pl__buf *b, const char *v)
{
    const char *sp = strrchr(v, ' '), *slash = NULL;
    for (const char *p = v; p < (sp ? sp : v + strlen(v)); p++)
        if (*p == '/')
            slash = p;
    char tmp[512];
    if (sp && !strncmp(sp + 1, "sha256:", 7) && strlen(sp + 1) > 19)
        snprintf(tmp, sizeof tmp, "%.*s %.19s", (int)(sp - (slash ? slash + 1 : v)), slash ? slash + 1 : v, sp + 1);
    else
        snprintf(tmp, sizeof tmp, "%s", v);
    md(b, tmp);
}

void pl_manifest_md(pl__buf *b, const pl_run_result *const *runs, size_t n)
{
    int any = 0;
    for (size_t i = 0; i < n && !any; i++)
        any = runs[i]->n_manifest > 0;
    if (!any)
        return;
    static const struct {
        const char *title, *key;
    } rows[] = {{"prunelab", "prunelab_version"}, {"plugin ABI", "abi"},       {"compiler", "compiler"},
                {"flags", "flags"},               {"CPU", "cpu"},              {"ISA", "isa"},
                {"threads", "threads"},           {"training data", "dataset.train"},
                {"test data", "dataset.test"},    {"backend", "plugin.backend"}, {"dataset", "plugin.dataset"},
                {"criterion", "plugin.criterion"}, {"schedule", "plugin.schedule"}};
    pl__buf_puts(b, "\n## Provenance\n\nFrom the run manifests (runs/<run_id>.json, \"manifest\"); "
                    "values that differ between runs are separated by \";\".\n\n| | |\n|---|---|\n");
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        pl__buf_printf(b, "| %s | ", rows[k].title);
        distinct(b, runs, n, rows[k].key, !strncmp(rows[k].key, "plugin.", 7) ? md_plugin : md);
        pl__buf_puts(b, " |\n");
    }
}
