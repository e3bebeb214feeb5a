/*
 * share_path.c — finding bundled models and recipes by name (share_path.h).
 */
#include "share_path.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PL_SHARE_REL_DIR
#define PL_SHARE_REL_DIR "../share/prunelab"
#endif

static const char *const sub[2] = {"models", "experiments"};
static const char *const src_sub[2] = {"configs/models", "experiments"};

static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

int pl_share_dirs(pl_share_kind kind, char dirs[][4096], int max)
{
    char exe[4096];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    int n = 0;
    if (k <= 0)
        return 0;
    exe[k] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return 0;
    *slash = '\0';
    /* a build tree (the program or a test next to CMakeCache.txt): its sources */
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/CMakeCache.txt", exe);
    int build_tree = is_file(probe);
    snprintf(probe, sizeof probe, "%s/../CMakeCache.txt", exe);
    build_tree |= is_file(probe);
#ifdef PL_SOURCE_DIR
    if (build_tree && n < max)
        snprintf(dirs[n++], 4096, "%s/%s", PL_SOURCE_DIR, src_sub[kind]);
#endif
    if (n < max) {
        char d[4200];
        snprintf(d, sizeof d, "%s/%s/%s", exe, PL_SHARE_REL_DIR, sub[kind]);
        char *real = realpath(d, NULL); /* a readable path in messages when it exists */
        snprintf(dirs[n++], 4096, "%s", real ? real : d);
        free(real);
    }
    return n;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* dir/<file> for the first dir holding it; 1 when found */
static int search_dirs(pl_share_kind kind, const char *file, char *out, size_t cap)
{
    char dirs[4][4096];
    int nd = pl_share_dirs(kind, dirs, 4);
    for (int i = 0; i < nd; i++) {
        char p[8300];
        snprintf(p, sizeof p, "%s/%s", dirs[i], file);
        if (is_file(p)) {
            snprintf(out, cap, "%s", p);
            return 1;
        }
    }
    return 0;
}

pl_status pl_share_resolve(pl_share_kind kind, const char *name, char *out, size_t cap, pl_error *err)
{
    snprintf(out, cap, "%s", name);
    if (is_file(name)) /* a file as written always wins */
        return PL_OK;
    int bare = *name && !strchr(name, '/') && !ends_with(name, ".yaml") && !ends_with(name, ".yml") &&
               !ends_with(name, ".onnx");
    if (bare) {
        char file[512];
        snprintf(file, sizeof file, "%s.yaml", name);
        if (search_dirs(kind, file, out, cap))
            return PL_OK;
        /* not found: say where we looked and what is there */
        char dirs[4][4096], where[2048] = "", names[1024] = "";
        int nd = pl_share_dirs(kind, dirs, 4);
        size_t wl = 0, nl = 0;
        for (int i = 0; i < nd; i++) {
            if (wl < sizeof where)
                wl += (size_t)snprintf(where + wl, sizeof where - wl, "%s%s", i ? ", " : "", dirs[i]);
            DIR *d = opendir(dirs[i]);
            for (struct dirent *e; d && (e = readdir(d));) {
                size_t len = strlen(e->d_name);
                if (len > 5 && ends_with(e->d_name, ".yaml") && nl < sizeof names)
                    nl += (size_t)snprintf(names + nl, sizeof names - nl, "%s%.*s", nl ? ", " : "",
                                           (int)(len - 5), e->d_name);
            }
            if (d)
                closedir(d);
        }
        return pl_error_set(err, PL_ENOTFOUND,
                            "%s '%s' is not a file and not a bundled %s (searched: %s; found: %s)",
                            kind == PL_SHARE_MODELS ? "model" : "experiment", name,
                            kind == PL_SHARE_MODELS ? "model" : "recipe", nd ? where : "nowhere",
                            nl ? names : "none");
    }
    /* configs/models/x.yaml (experiments/x.yaml) missing here: the bundled one */
    const char *prefix = kind == PL_SHARE_MODELS ? "configs/models/" : "experiments/";
    if (name[0] != '/' && !strncmp(name, prefix, strlen(prefix)) && !strchr(name + strlen(prefix), '/') &&
        access(name, F_OK) != 0)
        search_dirs(kind, name + strlen(prefix), out, cap);
    return PL_OK;
}
