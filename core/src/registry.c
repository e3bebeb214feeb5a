/*
 * registry.c — finding and loading plugins: the search path, dlopen, the
 * file-mode checks, descriptor validation, find/each and the plugin
 * getters. Parameters, instances and the host API are plugin_params.c.
 */
#include "registry.h"
#include "scalar.h"
#include "identity.h"
#include "suggest.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PL__MAX_PATHS 32

struct pl_plugin {
    void *dl;
    const pl_plugin_desc *desc;
    char *path;
    pl_plugin *next;
    char sha256[72]; /* "sha256:<hex>" of the file as loaded (identity) */
};

struct pl_registry {
    char *paths[PL__MAX_PATHS];
    int n_paths;
    char *exe_dir;
    pl_plugin *loaded;
    pl_plugin *builtin; /* compiled into the host (dl == NULL); found before the search path */
};

/* ---- names and kinds ------------------------------------------------------- */

const char *pl_kind_dir(pl_kind k)
{
    switch (k) {
    case PL_KIND_CRITERION: return "criteria";
    case PL_KIND_SCHEDULE: return "schedules";
    case PL_KIND_DATASET: return "datasets";
    case PL_KIND_BACKEND: return "backends";
    case PL_KIND_EXECUTOR: return "executors";
    }
    return "?";
}

const char *pl_kind_name(pl_kind k)
{
    switch (k) {
    case PL_KIND_CRITERION: return "criterion";
    case PL_KIND_SCHEDULE: return "schedule";
    case PL_KIND_DATASET: return "dataset";
    case PL_KIND_BACKEND: return "backend";
    case PL_KIND_EXECUTOR: return "executor";
    }
    return "unknown kind";
}

int pl_name_valid(const char *name) { return name && pl__name_ok(name, 0, "", 63); }

/* ---- registry -------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

pl_registry *pl_registry_new(const char *argv0)
{
    pl_registry *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    char buf[PATH_MAX];
    /* argv0 with a '/' names the program (tests pass build/prunelab);
     * otherwise the kernel knows where we run from */
    if (!(argv0 && strchr(argv0, '/') && realpath(argv0, buf))) {
        ssize_t k = readlink("/proc/self/exe", buf, sizeof buf - 1);
        buf[k > 0 ? k : 0] = 0;
    }
    char *slash = strrchr(buf, '/');
    if (slash) {
        *slash = 0;
        r->exe_dir = xstrdup(buf);
    }
    /* the built-in executor (executor.c): today's one-process loop */
    pl_plugin *b = calloc(1, sizeof *b);
    if (b && (b->path = xstrdup("(built-in)"))) {
        b->desc = &pl__executor_local_desc;
        r->builtin = b;
    } else {
        free(b);
    }
    return r;
}

void pl_registry_free(pl_registry *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_paths; i++)
        free(r->paths[i]);
    pl_plugin *p = r->loaded;
    while (p) {
        pl_plugin *n = p->next;
        /* dlclose only when the registry dies: no instance may outlive it */
        if (p->dl)
            dlclose(p->dl);
        free(p->path);
        free(p);
        p = n;
    }
    for (pl_plugin *b = r->builtin, *n; b; b = n) {
        n = b->next;
        free(b->path);
        free(b);
    }
    free(r->exe_dir);
    free(r);
}

pl_status pl_registry_add_path(pl_registry *r, const char *dir, pl_error *err)
{
    if (r->n_paths >= PL__MAX_PATHS)
        return pl_error_set(err, PL_ERANGE, "%s: too many plugin directories (at most %d)", dir,
                            PL__MAX_PATHS);
    char *d = xstrdup(dir);
    if (!d)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    r->paths[r->n_paths++] = d;
    return PL_OK;
}

/* The full search path: explicit dirs, env var, exe-relative. Returns count. */
static int search_dirs(const pl_registry *r, char out[][PATH_MAX], int max)
{
    int n = 0;
    for (int i = 0; i < r->n_paths && n < max; i++)
        snprintf(out[n++], PATH_MAX, "%s", r->paths[i]);
    const char *env = getenv("PRUNELAB_PLUGIN_PATH");
    if (env && *env) {
        const char *p = env;
        /* the two bundled folders always keep their place at the end */
        while (*p && n < max - 2) {
            const char *e = strchr(p, ':');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (len > 0 && len < PATH_MAX) {
                memcpy(out[n], p, len);
                out[n++][len] = 0;
            }
            if (!e)
                break;
            p = e + 1;
        }
    }
    if (r->exe_dir && n + 2 <= max) {
        snprintf(out[n++], PATH_MAX, "%s/plugins", r->exe_dir);
        snprintf(out[n++], PATH_MAX, "%s/%s", r->exe_dir, PL_PLUGIN_REL_DIR);
    }
    return n;
}

static pl_status validate_desc(const pl_plugin_desc *d, const char *path, pl_kind expect,
                               const char *expect_name, pl_error *err)
{
    if (d->abi_major != PL_ABI_MAJOR)
        return pl_error_set(err, PL_EPLUGIN,
                            "%s: plugin ABI major %u, this prunelab speaks %d (rebuild the plugin "
                            "against this prunelab's plugin.h)",
                            path, d->abi_major, PL_ABI_MAJOR);
    if (d->abi_minor > PL_ABI_MINOR)
        return pl_error_set(err, PL_EPLUGIN,
                            "%s: plugin needs ABI %u.%u, this prunelab has %d.%d (upgrade prunelab "
                            "or rebuild the plugin against an older plugin.h)",
                            path, d->abi_major, d->abi_minor, PL_ABI_MAJOR, PL_ABI_MINOR);
    if (d->struct_size < offsetof(pl_plugin_desc, reserved) ||
        d->struct_size > sizeof(pl_plugin_desc))
        return pl_error_set(err, PL_EPLUGIN,
                            "%s: descriptor size %u does not match ABI %d.%d (expected %zu); rebuild "
                            "the plugin",
                            path, d->struct_size, PL_ABI_MAJOR, d->abi_minor, sizeof(pl_plugin_desc));
    if (d->fingerprint != PL_ABI_FINGERPRINT)
        return pl_error_set(err, PL_EPLUGIN,
                            "%s: type-size fingerprint 0x%08x differs from the host's 0x%08x (built "
                            "for another data model or compiler); rebuild the plugin",
                            path, d->fingerprint, (unsigned)PL_ABI_FINGERPRINT);
    if (d->kind < PL_KIND_CRITERION || d->kind > PL_KIND_EXECUTOR)
        return pl_error_set(err, PL_EPLUGIN, "%s: unknown plugin kind %d", path, (int)d->kind);
    if (expect && d->kind != expect)
        return pl_error_set(err, PL_EPLUGIN,
                            "%s: is a %s plugin, but a %s plugin is needed here", path,
                            pl_kind_name(d->kind), pl_kind_name(expect));
    if (!pl_name_valid(d->name))
        return pl_error_set(err, PL_EPLUGIN,
                            "%s: plugin name '%s' is invalid (names match [a-z0-9_]+)", path,
                            d->name ? d->name : "(null)");
    if (expect_name && strcmp(d->name, expect_name))
        return pl_error_set(err, PL_EPLUGIN,
                            "%s: file is named '%s' but its descriptor says '%s'; rename one of them",
                            path, expect_name, d->name);
    if (!d->version || !d->description)
        return pl_error_set(err, PL_EPLUGIN, "%s: descriptor lacks version or description", path);
    if (!d->ops)
        return pl_error_set(err, PL_EPLUGIN, "%s: descriptor has no function table (ops)", path);
    /* required slots per kind */
    const char *missing = NULL;
    switch (d->kind) {
    case PL_KIND_CRITERION: {
        const pl_criterion_ops *o = d->ops;
        if (!o->score) missing = "score";
        break;
    }
    case PL_KIND_SCHEDULE: {
        const pl_schedule_ops *o = d->ops;
        if (!o->plan) missing = "plan";
        break;
    }
    case PL_KIND_DATASET: {
        const pl_dataset_ops *o = d->ops;
        if (!o->open) missing = "open";
        else if (!o->read) missing = "read";
        else if (!o->close) missing = "close";
        break;
    }
    case PL_KIND_BACKEND: {
        const pl_backend_ops *o = d->ops;
#define PL__REQ(f) else if (!o->f) missing = #f;
        if (0) {}
        PL__REQ(conv2d_forward) PL__REQ(conv2d_backward_data) PL__REQ(conv2d_backward_weight)
        PL__REQ(linear_forward) PL__REQ(linear_backward_data) PL__REQ(linear_backward_weight)
        PL__REQ(maxpool2d_forward) PL__REQ(maxpool2d_backward) PL__REQ(avgpool2d_forward)
        PL__REQ(avgpool2d_backward) PL__REQ(relu_forward) PL__REQ(relu_backward)
        PL__REQ(softmax_xent) PL__REQ(adam_update) PL__REQ(sgd_update)
#undef PL__REQ
        break;
    }
    case PL_KIND_EXECUTOR: {
        const pl_executor_ops *o = d->ops;
        if (!o->run) missing = "run";
        break;
    }
    }
    if (missing)
        return pl_error_set(err, PL_EPLUGIN, "%s: %s plugin '%s' lacks the required function '%s'",
                            path, pl_kind_name(d->kind), d->name, missing);
    for (const pl_param_spec *s = d->params; s && s->name; s++) {
        if (s->type < PL_PARAM_INT || s->type > PL_PARAM_BOOL)
            return pl_error_set(err, PL_EPLUGIN, "%s: parameter '%s' has an unknown type", path,
                                s->name);
        if (!strcmp(s->name, "plugin"))
            return pl_error_set(err, PL_EPLUGIN, "%s: parameter name 'plugin' is reserved", path);
    }
    return PL_OK;
}

/* OpenSSH StrictModes for plugins: `abs` (an absolute, resolved path) and
 * each folder above it up to / must be owned by root or by us, and writable
 * by no other user or group; a folder with the sticky bit (like /tmp) may
 * be world-writable, since others cannot replace what they do not own.
 * `what` names the plugin in the error. */
static pl_status check_path_modes(const char *what, const char *abs, pl_error *err)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", abs);
    uid_t me = geteuid();
    for (;;) {
        struct stat st;
        const char *at = p[0] ? p : "/";
        if (stat(at, &st) != 0)
            return pl_error_set(err, PL_EPLUGIN, "%s: cannot check %s: %s (refusing to load it)", what, at,
                                strerror(errno));
        if (st.st_uid != 0 && st.st_uid != me)
            return pl_error_set(err, PL_EPLUGIN,
                                "%s: refusing a plugin whose path has %s owned by another user (uid %ld) who could "
                                "replace it; move the plugin or chown the folder",
                                what, at, (long)st.st_uid);
        int sticky = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX);
        if ((st.st_mode & S_IWOTH) && !sticky)
            return pl_error_set(err, PL_EPLUGIN,
                                "%s: refusing a plugin in a world-writable directory %s (anyone could replace "
                                "it); chmod o-w the directory",
                                what, at);
        if ((st.st_mode & S_IWGRP) && !sticky)
            return pl_error_set(err, PL_EPLUGIN,
                                "%s: refusing a plugin whose path has %s writable by its group (anyone in it "
                                "could replace the code); chmod g-w it",
                                what, at);
        char *sl = strrchr(p, '/');
        if (!sl || !p[0] || !strcmp(p, "/"))
            return PL_OK;
        if (sl == p)
            p[1] = 0; /* "/x" -> "/" */
        else
            *sl = 0;
    }
}

static const pl_plugin *find_loaded(const pl_registry *r, const char *path)
{
    for (const pl_plugin *p = r->loaded; p; p = p->next)
        if (!strcmp(p->path, path))
            return p;
    return NULL;
}

static pl_status load_path(pl_registry *r, const char *path, pl_kind expect,
                           const char *expect_name, const pl_plugin **out, pl_error *err)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return pl_error_set(err, PL_ENOTFOUND, "%s: %s", path, strerror(errno));
    const pl_plugin *have = find_loaded(r, real);
    if (have) {
        pl_status st = validate_desc(have->desc, real, expect, expect_name, err);
        if (st == PL_OK)
            *out = have;
        return st;
    }
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode))
        return pl_error_set(err, PL_EPLUGIN, "%s: not a regular file", real);
    if (st.st_mode & S_IWOTH)
        return pl_error_set(err, PL_EPLUGIN,
                            "%s: refusing a world-writable plugin file (anyone could replace the "
                            "code); chmod o-w it",
                            real);
    /* the file and every folder above it and, when it was reached through a
     * symlink, above the link: anyone who can write one can swap the code */
    pl_status ps = check_path_modes(real, real, err);
    if (!ps) {
        char link_dir[PATH_MAX], resolved[PATH_MAX];
        snprintf(link_dir, sizeof link_dir, "%s", path);
        char *sl = strrchr(link_dir, '/');
        if (!sl)
            snprintf(link_dir, sizeof link_dir, ".");
        else
            *sl = sl == link_dir ? (sl[1] = 0, '/') : 0;
        if (realpath(link_dir, resolved))
            ps = check_path_modes(path, resolved, err);
    }
    if (ps)
        return ps;
    dlerror();
    void *dl = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *why = dlerror();
        return pl_error_set(err, PL_EPLUGIN, "%s: not a loadable shared object (%s)", real,
                            why ? why : "dlopen failed");
    }
    const pl_plugin_desc *d = dlsym(dl, PL_PLUGIN_SYMBOL);
    if (!d) {
        dlclose(dl);
        return pl_error_set(err, PL_EPLUGIN,
                            "%s: not a prunelab plugin (no '%s' symbol; export it with "
                            "PL_PLUGIN_EXPORT)",
                            real, PL_PLUGIN_SYMBOL);
    }
    pl_status s = validate_desc(d, real, expect, expect_name, err);
    if (s != PL_OK) {
        dlclose(dl);
        return s;
    }
    pl_plugin *p = calloc(1, sizeof *p);
    if (!p || !(p->path = xstrdup(real))) {
        free(p);
        dlclose(dl);
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    }
    p->dl = dl;
    p->desc = d;
    /* hashed once per process: part of every run's identity, so a rebuilt
     * or shadowing plugin never reuses results made by another file */
    if (pl__file_sha256(real, p->sha256, err)) {
        free(p->path);
        free(p);
        dlclose(dl);
        return PL_EPLUGIN;
    }
    p->next = r->loaded;
    r->loaded = p;
    *out = p;
    return PL_OK;
}

pl_status pl_registry_load_file(pl_registry *r, const char *path, pl_kind expect,
                                const pl_plugin **out, pl_error *err)
{
    return load_path(r, path, expect, NULL, out, err);
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Candidate files for (kind, name) in dir: <dir>/<kinds>/<name>.so, <dir>/<name>.so */
static int candidates(const char *dir, pl_kind kind, const char *name, char out[2][PATH_MAX])
{
    int n = 0;
    snprintf(out[n], PATH_MAX, "%s/%s/%s.so", dir, pl_kind_dir(kind), name);
    if (file_exists(out[n]))
        n++;
    snprintf(out[n], PATH_MAX, "%s/%s.so", dir, name);
    if (file_exists(out[n]))
        n++;
    return n;
}

/* Plugin names (<name>.so with a valid name) in one directory. */
static int list_so(const char *dir, char names[][64], int max)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t len = strlen(e->d_name);
        if (len < 4 || len - 3 >= 64 || strcmp(e->d_name + len - 3, ".so"))
            continue;
        char name[64];
        memcpy(name, e->d_name, len - 3);
        name[len - 3] = 0;
        if (pl_name_valid(name))
            memcpy(names[n++], name, 64);
    }
    closedir(d);
    return n;
}

/* Names of available plugins of a kind, for "did you mean"/"available:". */
typedef struct name_list {
    char names[64][64];
    int n;
} name_list;

static void list_names(const pl_registry *r, pl_kind kind, name_list *nl)
{
    char dirs[PL__MAX_PATHS + 8][PATH_MAX];
    int nd = search_dirs(r, dirs, PL__MAX_PATHS + 8);
    nl->n = 0;
    for (const pl_plugin *b = r->builtin; b && nl->n < 64; b = b->next)
        if (b->desc->kind == kind)
            snprintf(nl->names[nl->n++], 64, "%s", b->desc->name);
    for (int i = 0; i < nd; i++) {
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", dirs[i], pl_kind_dir(kind));
        char found[64][64];
        int k = list_so(sub, found, 64);
        for (int j = 0; j < k; j++) {
            int dup = 0;
            for (int q = 0; q < nl->n; q++)
                if (!strcmp(nl->names[q], found[j]))
                    dup = 1;
            if (!dup && nl->n < 64)
                snprintf(nl->names[nl->n++], 64, "%s", found[j]);
        }
    }
    /* sorted, so messages and listings do not depend on readdir order */
    for (int i = 1; i < nl->n; i++)
        for (int j = i; j > 0 && strcmp(nl->names[j - 1], nl->names[j]) > 0; j--) {
            char t[64];
            memcpy(t, nl->names[j], 64);
            memcpy(nl->names[j], nl->names[j - 1], 64);
            memcpy(nl->names[j - 1], t, 64);
        }
}

pl_status pl_registry_find(pl_registry *r, pl_kind kind, const char *name, const pl_plugin **out,
                           pl_error *err)
{
    if (!pl_name_valid(name))
        return pl_error_set(err, PL_ECONFIG,
                            "%s plugin name '%s' is invalid: names match [a-z0-9_]+ and are never "
                            "paths (use --plugin-path to add a directory)",
                            pl_kind_name(kind), name ? name : "");
    for (const pl_plugin *b = r->builtin; b; b = b->next)
        if (b->desc->kind == kind && !strcmp(b->desc->name, name)) {
            *out = b;
            return PL_OK;
        }
    char dirs[PL__MAX_PATHS + 8][PATH_MAX];
    int nd = search_dirs(r, dirs, PL__MAX_PATHS + 8);
    for (int i = 0; i < nd; i++) {
        char c[2][PATH_MAX];
        int k = candidates(dirs[i], kind, name, c);
        if (k == 0)
            continue;
        if (k > 1) {
            char a[PATH_MAX], b[PATH_MAX];
            if (realpath(c[0], a) && realpath(c[1], b) && strcmp(a, b))
                return pl_error_set(err, PL_EPLUGIN,
                                    "%s and %s: two %s plugins named '%s' in one directory; "
                                    "remove one",
                                    c[0], c[1], pl_kind_name(kind), name);
        }
        return load_path(r, c[0], kind, name, out, err);
    }
    name_list nl;
    list_names(r, kind, &nl);
    char avail[1024] = "";
    size_t used = 0;
    const char *cands[64];
    for (int i = 0; i < nl.n; i++) {
        cands[i] = nl.names[i];
        int w = snprintf(avail + used, sizeof avail - used, "%s%s", i ? ", " : "", nl.names[i]);
        if (w > 0 && (size_t)w < sizeof avail - used)
            used += (size_t)w;
    }
    const char *sug = pl_suggest(name, cands, (size_t)nl.n);
    char hint[128] = "";
    if (sug)
        snprintf(hint, sizeof hint, "did you mean '%s'? ", sug);
    /* where we looked, so a user can tell a missing --plugin-path from a typo */
    char searched[1536] = "";
    size_t sl = 0;
    for (int i = 0; i < nd && sl < sizeof searched; i++) {
        int w = snprintf(searched + sl, sizeof searched - sl, "%s%s", i ? ", " : "", dirs[i]);
        if (w > 0)
            sl += (size_t)w;
    }
    return pl_error_set(err, PL_ENOTFOUND, "unknown %s plugin '%s' (%savailable: %s; searched: %s)",
                        pl_kind_name(kind), name, hint, nl.n ? avail : "none found on the plugin path",
                        nd ? searched : "no directories");
}

void pl_registry_each(pl_registry *r, pl_plugin_visit_fn fn, pl_plugin_bad_fn bad, void *ud)
{
    static const pl_kind kinds[] = {PL_KIND_CRITERION, PL_KIND_SCHEDULE, PL_KIND_DATASET,
                                    PL_KIND_BACKEND, PL_KIND_EXECUTOR};
    char dirs[PL__MAX_PATHS + 8][PATH_MAX];
    int nd = search_dirs(r, dirs, PL__MAX_PATHS + 8);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        name_list nl;
        list_names(r, kinds[k], &nl);
        for (int i = 0; i < nl.n; i++) {
            const pl_plugin *bp = NULL;
            for (const pl_plugin *b = r->builtin; b && !bp; b = b->next)
                if (b->desc->kind == kinds[k] && !strcmp(b->desc->name, nl.names[i]))
                    bp = b;
            if (bp) { /* a file of the same name is never loaded: the built-in wins */
                fn(ud, bp, NULL);
                continue;
            }
            const char *first = NULL, *shadow = NULL;
            char firstbuf[PATH_MAX], shadowbuf[PATH_MAX];
            for (int d = 0; d < nd && !shadow; d++) {
                char c[2][PATH_MAX];
                int m = candidates(dirs[d], kinds[k], nl.names[i], c);
                for (int q = 0; q < m; q++) {
                    char rp[PATH_MAX];
                    if (!realpath(c[q], rp))
                        continue;
                    if (!first) {
                        snprintf(firstbuf, sizeof firstbuf, "%s", rp);
                        first = firstbuf;
                    } else if (strcmp(rp, first) && !shadow) {
                        snprintf(shadowbuf, sizeof shadowbuf, "%s", rp);
                        shadow = shadowbuf;
                    }
                }
            }
            const pl_plugin *p;
            pl_error e;
            if (pl_registry_find(r, kinds[k], nl.names[i], &p, &e) == PL_OK)
                fn(ud, p, shadow);
            else if (bad)
                bad(ud, first ? first : nl.names[i], &e);
        }
    }
}

size_t pl_registry_search_path(const pl_registry *r, char *buf, size_t n)
{
    char dirs[PL__MAX_PATHS + 8][PATH_MAX];
    int nd = search_dirs(r, dirs, PL__MAX_PATHS + 8);
    size_t used = 0;
    if (n)
        buf[0] = 0;
    for (int i = 0; i < nd && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", dirs[i]);
        if (w > 0)
            used += (size_t)w;
    }
    return used < n ? used : n ? n - 1 : 0;
}

const pl_plugin_desc *pl_plugin_get_desc(const pl_plugin *p) { return p->desc; }
const char *pl_plugin_path(const pl_plugin *p) { return p->path; }

const char *pl_plugin_sha256(const pl_plugin *p) { return p->sha256; }
