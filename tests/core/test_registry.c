/*
 * test_registry.c — the plugin host: what it refuses and how it says so.
 *
 * Broken plugins are built from tests/fixtures/plugins/<name>.c into
 * <build>/testplugins/<name>.so (found through pltest_registry()); the file
 * system cases (a text file named x.so, world-writable files and folders,
 * two plugins of one name in one folder, shadowing across folders, the
 * search order) are laid out in temporary folders with copies of the built
 * plugins, and searched by a registry whose executable lives in an empty
 * temporary folder, so nothing of the build tree leaks in.
 *
 * Every refusal is checked for its status and for the key words of its
 * one-line message.
 */
#define _GNU_SOURCE /* RTLD_NEXT, for the file-system spies below */
#include "prune.h"
#include "pltest.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- file-system spies ------------------------------------------------------
 * While `fs_spy` is set, every stat/realpath/opendir/dlopen made by the
 * process is counted. An invalid plugin name must be refused before any of
 * them. (These definitions interpose the C library's for this executable and
 * forward to it.) */

static int fs_spy, fs_calls;

#define PL__FORWARD(ret, fn, params, args)                                                         \
    ret fn params                                                                                  \
    {                                                                                              \
        static ret(*real) params;                                                                  \
        if (!real)                                                                                 \
            *(void **)&real = dlsym(RTLD_NEXT, #fn);                                               \
        if (fs_spy)                                                                                \
            fs_calls++;                                                                            \
        return real args;                                                                          \
    }
PL__FORWARD(int, stat, (const char *restrict p, struct stat *restrict b), (p, b))
PL__FORWARD(char *, realpath, (const char *restrict p, char *restrict r), (p, r))
PL__FORWARD(DIR *, opendir, (const char *p), (p))
PL__FORWARD(void *, dlopen, (const char *p, int flags), (p, flags))
#undef PL__FORWARD

/* ---- helpers ------------------------------------------------------------------ */

static void setup(void)
{
    /* the suites must not depend on the caller's environment */
    unsetenv("PRUNELAB_PLUGIN_PATH");
}

TestSuite(registry, .init = setup);

/* message checks: one line, and every key word present */
static void expect_msg(const pl_error *e, const char *const *parts)
{
    cr_assert(e->msg[0], "empty error message");
    cr_assert(!strchr(e->msg, '\n'), "message is not one line: %s", e->msg);
    for (; *parts; parts++)
        cr_assert(strstr(e->msg, *parts), "message '%s' lacks '%s'", e->msg, *parts);
}

static pl_status find(pl_registry *r, pl_kind k, const char *name, const pl_plugin **p,
                      pl_error *err)
{
    *p = NULL;
    memset(err, 0, sizeof *err);
    return pl_registry_find(r, k, name, p, err);
}

static void mkdirs(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            cr_assert(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf, strerror(errno));
            *s = '/';
        }
    cr_assert(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf, strerror(errno));
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    mkdirs(dir);
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
    cr_assert_eq(chmod(path, mode), 0);
}

/* Copies a built plugin ("plugins/criteria/l1.so" or "testplugins/x.so",
 * relative to the build dir) to root/rel. */
static void put_plugin(const char *built, const char *root, const char *rel)
{
    char src[PATH_MAX], dst[PATH_MAX];
    snprintf(src, sizeof src, "%s/%s", pltest_build_dir(), built);
    snprintf(dst, sizeof dst, "%s/%s", root, rel);
    FILE *f = fopen(src, "rb");
    cr_assert(f, "missing built plugin %s", src);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    cr_assert(buf && fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    write_file(dst, buf, (size_t)n, 0755);
    free(buf);
}

/* A registry whose executable is root/bin/prunelab (an empty file): its
 * exe-relative folders are root/bin/plugins and root/lib/prunelab/plugins. */
static pl_registry *isolated(const char *root)
{
    char exe[PATH_MAX];
    snprintf(exe, sizeof exe, "%s/bin/prunelab", root);
    write_file(exe, "", 0, 0755);
    pl_registry *r = pl_registry_new(exe);
    cr_assert(r);
    return r;
}

static void add_dir(pl_registry *r, const char *root, const char *sub)
{
    char d[PATH_MAX];
    pl_error err;
    snprintf(d, sizeof d, "%s/%s", root, sub);
    cr_assert_eq(pl_registry_add_path(r, d, &err), PL_OK, "%s", err.msg);
}

/* The plugin path relative to root (asserts it lies under root). */
static const char *under(const char *root, const pl_plugin *p)
{
    char real[PATH_MAX];
    cr_assert(realpath(root, real));
    const char *path = pl_plugin_path(p);
    cr_assert(!strncmp(path, real, strlen(real)), "%s is not under %s", path, real);
    return path + strlen(real);
}

/* Removes a temporary tree made by a test and frees its name. */
static void drop(char *root)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    cr_assert_eq(pltest_run(cmd, NULL), 0);
    free(root);
}

/* ---- descriptor refusals ----------------------------------------------------- */

typedef struct refusal {
    pl_kind kind;
    const char *name;
    const char *parts[5]; /* NULL-terminated */
} refusal;

static const refusal refusals[] = {
    {PL_KIND_CRITERION, "no_desc", {"no_desc.so", "not a prunelab plugin", "prunelab_plugin_desc"}},
    {PL_KIND_CRITERION, "abi_major", {"abi_major.so", "ABI major 2", "speaks 1", "rebuild"}},
    {PL_KIND_CRITERION, "abi_minor", {"abi_minor.so", "needs ABI", "this prunelab has"}},
    {PL_KIND_CRITERION, "bad_size", {"bad_size.so", "descriptor size 16", "rebuild"}},
    {PL_KIND_CRITERION, "bad_fingerprint", {"bad_fingerprint.so", "fingerprint", "data model"}},
    {PL_KIND_CRITERION, "bad_name", {"bad_name.so", "'Bad-Name'", "invalid", "[a-z0-9_]+"}},
    {PL_KIND_CRITERION, "misnamed", {"misnamed.so", "named 'misnamed'", "says 'l1'"}},
    {PL_KIND_CRITERION, "no_score", {"no_score.so", "criterion plugin 'no_score'",
                                     "lacks the required function 'score'"}},
    {PL_KIND_BACKEND, "backend_no_sgd", {"backend_no_sgd.so", "backend plugin 'backend_no_sgd'",
                                         "required function 'sgd_update'"}},
    /* a good plugin asked for as another kind */
    {PL_KIND_SCHEDULE, "nan_scores", {"nan_scores.so", "is a criterion plugin",
                                      "a schedule plugin is needed"}},
};

Test(registry, refuses_broken_descriptors)
{
    pl_registry *r = pltest_registry();
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        const refusal *t = &refusals[i];
        const pl_plugin *p;
        pl_error err;
        /* twice: a refused file is refused again, never half-registered */
        for (int round = 0; round < 2; round++) {
            pl_status st = find(r, t->kind, t->name, &p, &err);
            cr_assert_eq(st, PL_EPLUGIN, "%s: expected PL_EPLUGIN, got %d: %s", t->name, st, err.msg);
            cr_assert_null(p, "%s", t->name);
            expect_msg(&err, t->parts);
        }
        cr_assert_eq(pl_status_exit_code(PL_EPLUGIN), 2);
    }
}

Test(registry, load_file_checks_the_same)
{
    char path[PATH_MAX];
    const pl_plugin *p;
    pl_error err;
    snprintf(path, sizeof path, "%s/testplugins/abi_minor.so", pltest_build_dir());
    cr_assert_eq(pl_registry_load_file(pltest_registry(), path, 0, &p, &err), PL_EPLUGIN);
    char want[64], have[64]; /* the fixture asks for one minor more than the host has */
    snprintf(want, sizeof want, "needs ABI %d.%d", PL_ABI_MAJOR, PL_ABI_MINOR + 1);
    snprintf(have, sizeof have, "has %d.%d", PL_ABI_MAJOR, PL_ABI_MINOR);
    expect_msg(&err, (const char *[]){want, have, NULL});
    snprintf(path, sizeof path, "%s/plugins/criteria/l2.so", pltest_build_dir());
    cr_assert_eq(pl_registry_load_file(pltest_registry(), path, PL_KIND_BACKEND, &p, &err),
                 PL_EPLUGIN);
    expect_msg(&err, (const char *[]){"is a criterion plugin", "a backend plugin is needed", NULL});
    cr_assert_eq(pl_registry_load_file(pltest_registry(), path, 0, &p, &err), PL_OK, "%s", err.msg);
    cr_assert_str_eq(pl_plugin_get_desc(p)->name, "l2");
}

Test(registry, init_failure_names_the_plugin)
{
    const pl_plugin *p;
    pl_error err;
    cr_assert_eq(find(pltest_registry(), PL_KIND_CRITERION, "init_fails", &p, &err), PL_OK, "%s",
                 err.msg);
    pl_instance *in = NULL;
    static const char *const none[] = {NULL};
    pl_status st = pl_instance_new_kv(p, none, 1, 1, &in, &err);
    cr_assert_eq(st, PL_EPLUGIN, "%d: %s", st, err.msg);
    cr_assert_null(in);
    expect_msg(&err, (const char *[]){"criterion plugin 'init_fails'", "failed to initialise",
                                      "cannot open the frobnicator (device 7 busy)", NULL});
}

/* ---- files on disk ------------------------------------------------------------- */

Test(registry, refuses_text_file_named_so)
{
    char *root = pltest_tmpdir(), path[PATH_MAX];
    snprintf(path, sizeof path, "%s/p/criteria/x.so", root);
    static const char text[] = "this is not a shared object\n";
    write_file(path, text, sizeof text - 1, 0644);
    pl_registry *r = isolated(root);
    add_dir(r, root, "p");
    const pl_plugin *p;
    pl_error err;
    cr_assert_eq(find(r, PL_KIND_CRITERION, "x", &p, &err), PL_EPLUGIN, "%s", err.msg);
    expect_msg(&err, (const char *[]){"x.so", "not a loadable shared object", NULL});
    pl_registry_free(r);
    drop(root);
}

Test(registry, refuses_world_writable_file)
{
    char *root = pltest_tmpdir(), path[PATH_MAX];
    put_plugin("plugins/criteria/l1.so", root, "p/criteria/l1.so");
    snprintf(path, sizeof path, "%s/p/criteria/l1.so", root);
    cr_assert_eq(chmod(path, 0666), 0);
    pl_registry *r = isolated(root);
    add_dir(r, root, "p");
    const pl_plugin *p;
    pl_error err;
    cr_assert_eq(find(r, PL_KIND_CRITERION, "l1", &p, &err), PL_EPLUGIN, "%s", err.msg);
    expect_msg(&err, (const char *[]){"l1.so", "world-writable plugin file", "chmod o-w", NULL});
    /* the mode was the only reason */
    cr_assert_eq(chmod(path, 0644), 0);
    cr_assert_eq(find(r, PL_KIND_CRITERION, "l1", &p, &err), PL_OK, "%s", err.msg);
    pl_registry_free(r);
    drop(root);
}

Test(registry, refuses_world_writable_directory)
{
    char *root = pltest_tmpdir(), dir[PATH_MAX];
    put_plugin("plugins/criteria/l1.so", root, "p/criteria/l1.so");
    snprintf(dir, sizeof dir, "%s/p/criteria", root);
    cr_assert_eq(chmod(dir, 0777), 0);
    pl_registry *r = isolated(root);
    add_dir(r, root, "p");
    const pl_plugin *p;
    pl_error err;
    cr_assert_eq(find(r, PL_KIND_CRITERION, "l1", &p, &err), PL_EPLUGIN, "%s", err.msg);
    expect_msg(&err, (const char *[]){"l1.so", "world-writable directory", "p/criteria",
                                      "chmod o-w", NULL});
    cr_assert_eq(chmod(dir, 0755), 0);
    cr_assert_eq(find(r, PL_KIND_CRITERION, "l1", &p, &err), PL_OK, "%s", err.msg);
    pl_registry_free(r);
    drop(root);
}

Test(registry, refuses_symlink_in_world_writable_directory)
{
    /* the link's folder counts too: anyone could point the link elsewhere */
    char *root = pltest_tmpdir(), target[PATH_MAX], link[PATH_MAX], dir[PATH_MAX];
    put_plugin("plugins/criteria/l1.so", root, "safe/l1.so");
    snprintf(dir, sizeof dir, "%s/p/criteria", root);
    mkdirs(dir);
    snprintf(target, sizeof target, "%s/safe/l1.so", root);
    snprintf(link, sizeof link, "%s/l1.so", dir);
    cr_assert_eq(symlink(target, link), 0);
    cr_assert_eq(chmod(dir, 0777), 0);
    pl_registry *r = isolated(root);
    add_dir(r, root, "p");
    const pl_plugin *p;
    pl_error err;
    cr_assert_eq(find(r, PL_KIND_CRITERION, "l1", &p, &err), PL_EPLUGIN, "%s", err.msg);
    expect_msg(&err, (const char *[]){"p/criteria/l1.so", "world-writable directory", NULL});
    cr_assert_eq(chmod(dir, 0755), 0);
    cr_assert_eq(find(r, PL_KIND_CRITERION, "l1", &p, &err), PL_OK, "%s", err.msg);
    cr_assert_str_eq(under(root, p), "/safe/l1.so");
    pl_registry_free(r);
    drop(root);
}

Test(registry, refuses_two_of_one_name_in_one_directory)
{
    char *root = pltest_tmpdir();
    put_plugin("plugins/criteria/l1.so", root, "p/criteria/l1.so");
    put_plugin("plugins/criteria/l1.so", root, "p/l1.so");
    pl_registry *r = isolated(root);
    add_dir(r, root, "p");
    const pl_plugin *p;
    pl_error err;
    cr_assert_eq(find(r, PL_KIND_CRITERION, "l1", &p, &err), PL_EPLUGIN, "%s", err.msg);
    expect_msg(&err, (const char *[]){"p/criteria/l1.so", "p/l1.so",
                                      "two criterion plugins named 'l1' in one directory", NULL});
    pl_registry_free(r);
    drop(root);
}

typedef struct seen {
    char path[PATH_MAX], shadowed[PATH_MAX];
    int found, bad;
} seen;

static void visit_l1(void *ud, const pl_plugin *p, const char *shadowed)
{
    seen *s = ud;
    const pl_plugin_desc *d = pl_plugin_get_desc(p);
    if (d->kind == PL_KIND_CRITERION && !strcmp(d->name, "l1")) {
        s->found++;
        snprintf(s->path, sizeof s->path, "%s", pl_plugin_path(p));
        snprintf(s->shadowed, sizeof s->shadowed, "%s", shadowed ? shadowed : "");
    }
}

static void visit_bad(void *ud, const char *path, const pl_error *why)
{
    seen *s = ud;
    s->bad++;
    cr_assert(strstr(why->msg, "ABI major"), "%s: %s", path, why->msg);
}

Test(registry, first_on_path_wins_and_shadows)
{
    char *root = pltest_tmpdir();
    put_plugin("plugins/criteria/l1.so", root, "a/criteria/l1.so");
    put_plugin("plugins/criteria/l1.so", root, "b/criteria/l1.so");
    put_plugin("testplugins/abi_major.so", root, "b/criteria/abi_major.so");
    pl_registry *r = isolated(root);
    add_dir(r, root, "a");
    add_dir(r, root, "b");
    const pl_plugin *p;
    pl_error err;
    cr_assert_eq(find(r, PL_KIND_CRITERION, "l1", &p, &err), PL_OK, "%s", err.msg);
    cr_assert_str_eq(under(root, p), "/a/criteria/l1.so");

    seen s = {0};
    pl_registry_each(r, visit_l1, visit_bad, &s);
    cr_assert_eq(s.found, 1);
    cr_assert_eq(s.bad, 1, "the broken abi_major.so is reported, not listed");
    cr_assert(strstr(s.path, "/a/criteria/l1.so"), "%s", s.path);
    cr_assert(strstr(s.shadowed, "/b/criteria/l1.so"), "shadowed: '%s'", s.shadowed);
    pl_registry_free(r);

    /* alone, b's copy shadows nothing */
    r = isolated(root);
    add_dir(r, root, "b");
    memset(&s, 0, sizeof s);
    pl_registry_each(r, visit_l1, NULL, &s);
    cr_assert_eq(s.found, 1);
    cr_assert(strstr(s.path, "/b/criteria/l1.so"), "%s", s.path);
    cr_assert_str_eq(s.shadowed, "");
    pl_registry_free(r);
    drop(root);
}

Test(registry, search_order)
{
    char *root = pltest_tmpdir(), env[PATH_MAX];
    /* --plugin-path, PRUNELAB_PLUGIN_PATH (second of two), exe-relative
     * build tree, exe-relative install tree */
    put_plugin("plugins/criteria/l1.so", root, "cli/criteria/l1.so");
    put_plugin("plugins/criteria/l1.so", root, "env2/criteria/l1.so");
    put_plugin("plugins/criteria/l1.so", root, "bin/plugins/criteria/l1.so");
    put_plugin("plugins/criteria/l1.so", root, "lib/prunelab/plugins/criteria/l1.so");
    snprintf(env, sizeof env, "%s/env1:%s/env2", root, root);
    const pl_plugin *p;
    pl_error err;

    setenv("PRUNELAB_PLUGIN_PATH", env, 1);
    pl_registry *r = isolated(root);
    add_dir(r, root, "cli");
    cr_assert_eq(find(r, PL_KIND_CRITERION, "l1", &p, &err), PL_OK, "%s", err.msg);
    cr_assert_str_eq(under(root, p), "/cli/criteria/l1.so");
    pl_registry_free(r);

    r = isolated(root);
    cr_assert_eq(find(r, PL_KIND_CRITERION, "l1", &p, &err), PL_OK, "%s", err.msg);
    cr_assert_str_eq(under(root, p), "/env2/criteria/l1.so");
    pl_registry_free(r);

    unsetenv("PRUNELAB_PLUGIN_PATH");
    r = isolated(root);
    cr_assert_eq(find(r, PL_KIND_CRITERION, "l1", &p, &err), PL_OK, "%s", err.msg);
    cr_assert_str_eq(under(root, p), "/bin/plugins/criteria/l1.so");
    pl_registry_free(r);

    char rm[PATH_MAX];
    snprintf(rm, sizeof rm, "%s/bin/plugins/criteria/l1.so", root);
    cr_assert_eq(unlink(rm), 0);
    r = isolated(root);
    cr_assert_eq(find(r, PL_KIND_CRITERION, "l1", &p, &err), PL_OK, "%s", err.msg);
    cr_assert_str_eq(under(root, p), "/lib/prunelab/plugins/criteria/l1.so");
    pl_registry_free(r);
    drop(root);
}

Test(registry, flat_file_in_a_plugin_dir)
{
    /* <dir>/<name>.so is found as well as <dir>/<kinds>/<name>.so */
    char *root = pltest_tmpdir();
    put_plugin("plugins/schedules/oneshot.so", root, "p/oneshot.so");
    pl_registry *r = isolated(root);
    add_dir(r, root, "p");
    const pl_plugin *p;
    pl_error err;
    cr_assert_eq(find(r, PL_KIND_SCHEDULE, "oneshot", &p, &err), PL_OK, "%s", err.msg);
    cr_assert_str_eq(under(root, p), "/p/oneshot.so");
    cr_assert_eq(find(r, PL_KIND_CRITERION, "oneshot", &p, &err), PL_EPLUGIN, "%s", err.msg);
    expect_msg(&err, (const char *[]){"is a schedule plugin", "a criterion plugin is needed", NULL});
    pl_registry_free(r);
    drop(root);
}

/* ---- names ---------------------------------------------------------------------- */

Test(registry, invalid_names_never_touch_the_file_system)
{
    static const char *const bad[] = {
        "../evil", "a/b", "/etc/passwd", "..", "L1", "Taylor", "l1.so", "", "a b", "l-1",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 64 */
    };
    pl_registry *r = pltest_registry();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const pl_plugin *p;
        pl_error err;
        fs_calls = 0;
        fs_spy = 1;
        pl_status st = find(r, PL_KIND_CRITERION, bad[i], &p, &err);
        fs_spy = 0;
        cr_assert_eq(st, PL_ECONFIG, "'%s': expected PL_ECONFIG, got %d: %s", bad[i], st, err.msg);
        cr_assert_eq(fs_calls, 0, "'%s': %d file-system calls before refusing", bad[i], fs_calls);
        expect_msg(&err, (const char *[]){"criterion plugin name", "is invalid", "never paths", NULL});
        cr_assert_eq(pl_name_valid(bad[i]), 0, "%s", bad[i]);
    }
    /* the spies do see a valid lookup */
    const pl_plugin *p;
    pl_error err;
    fs_calls = 0;
    fs_spy = 1;
    find(r, PL_KIND_CRITERION, "l1", &p, &err);
    fs_spy = 0;
    cr_assert_gt(fs_calls, 0);
    cr_assert(pl_name_valid("a"));
    cr_assert(pl_name_valid("lenet_300_100"));
    cr_assert(pl_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 63 */
}

Test(registry, unknown_name_lists_and_suggests)
{
    const pl_plugin *p;
    pl_error err;
    pl_registry *r = pltest_registry();
    cr_assert_eq(find(r, PL_KIND_CRITERION, "tayler", &p, &err), PL_ENOTFOUND, "%s", err.msg);
    expect_msg(&err, (const char *[]){"unknown criterion plugin 'tayler'", "did you mean 'taylor'",
                                      "available:", "l1", "l2", "random", NULL});
    cr_assert_eq(find(r, PL_KIND_SCHEDULE, "oneshoot", &p, &err), PL_ENOTFOUND, "%s", err.msg);
    expect_msg(&err, (const char *[]){"unknown schedule plugin 'oneshoot'", "did you mean 'oneshot'",
                                      "iterative", "global", NULL});
    /* the list is of that kind only */
    cr_assert_null(strstr(err.msg, "l2"), "%s", err.msg);
    cr_assert_eq(pl_status_exit_code(PL_ENOTFOUND), 2);

    char *root = pltest_tmpdir();
    put_plugin("plugins/criteria/random.so", root, "p/criteria/random.so");
    put_plugin("plugins/criteria/l2.so", root, "p/criteria/l2.so");
    r = isolated(root);
    add_dir(r, root, "p");
    cr_assert_eq(find(r, PL_KIND_CRITERION, "zzzz", &p, &err), PL_ENOTFOUND, "%s", err.msg);
    expect_msg(&err, (const char *[]){"unknown criterion plugin 'zzzz'", "available: l2, random",
                                      NULL});
    cr_assert_null(strstr(err.msg, "did you mean"), "%s", err.msg);
    cr_assert_eq(find(r, PL_KIND_BACKEND, "ref", &p, &err), PL_ENOTFOUND, "%s", err.msg);
    expect_msg(&err, (const char *[]){"unknown backend plugin 'ref'", "none found", NULL});
    pl_registry_free(r);
    drop(root);
}

/* ---- parameters ---------------------------------------------------------------- */

static const pl_plugin *all_params(void)
{
    const pl_plugin *p;
    pl_error err;
    cr_assert_eq(find(pltest_registry(), PL_KIND_SCHEDULE, "all_params", &p, &err), PL_OK, "%s",
                 err.msg);
    return p;
}

/* pl_instance_new_kv must refuse kv with PL_ECONFIG and these key words. */
static void params_refused(const char *const *kv, const char *const *parts)
{
    pl_instance *in = NULL;
    pl_error err;
    memset(&err, 0, sizeof err);
    pl_status st = pl_instance_new_kv(all_params(), kv, 1, 1, &in, &err);
    cr_assert_eq(st, PL_ECONFIG, "%s: expected PL_ECONFIG, got %d: %s", kv[0] ? kv[0] : "{}", st,
                 err.msg);
    cr_assert_null(in);
    expect_msg(&err, parts);
}

#define KV(...) ((const char *const[]){__VA_ARGS__, NULL})
#define PARTS(...) ((const char *const[]){__VA_ARGS__, NULL})

Test(registry, params_defaults_and_values)
{
    const pl_host_api *api = pl_host_api_get();
    pl_instance *in = NULL;
    pl_error err;
    cr_assert_eq(pl_instance_new_kv(all_params(), KV("label=x"), 1, 1, &in, &err), PL_OK, "%s",
                 err.msg);
    const pl_params *pp = pl_instance_params(in);
    cr_assert_eq(api->param_int(pp, "count"), 3);
    cr_assert_eq(api->param_float(pp, "rate"), 0.25);
    cr_assert_str_eq(api->param_str(pp, "label"), "x");
    cr_assert_eq(api->param_bool(pp, "verbose"), 0);
    cr_assert_eq(api->param_int(pp, "offset"), -5);
    pl_instance_free(in);

    cr_assert_eq(pl_instance_new_kv(all_params(),
                                    KV("count=10", "rate=1", "label=hello world", "verbose=yes",
                                       "offset=-1000000"),
                                    1, 1, &in, &err),
                 PL_OK, "%s", err.msg);
    pp = pl_instance_params(in);
    cr_assert_eq(api->param_int(pp, "count"), 10);
    cr_assert_eq(api->param_float(pp, "rate"), 1.0);
    cr_assert_str_eq(api->param_str(pp, "label"), "hello world");
    cr_assert_eq(api->param_bool(pp, "verbose"), 1);
    cr_assert_eq(api->param_int(pp, "offset"), -1000000);
    pl_instance_free(in);

    /* bounds are inclusive; booleans take YAML's spellings */
    cr_assert_eq(pl_instance_new_kv(all_params(), KV("label=", "count=1", "rate=0", "verbose=off"),
                                    1, 1, &in, &err),
                 PL_OK, "%s", err.msg);
    cr_assert_eq(api->param_bool(pl_instance_params(in), "verbose"), 0);
    pl_instance_free(in);
}

Test(registry, params_unknown_key)
{
    params_refused(KV("label=x", "rat=0.5"),
                   PARTS("unknown parameter 'rat'", "schedule plugin 'all_params'",
                         "did you mean 'rate'"));
    params_refused(KV("label=x", "counts=2"), PARTS("unknown parameter 'counts'", "did you mean 'count'"));
    params_refused(KV("label=x", "zzzzzzzz=1"),
                   PARTS("unknown parameter 'zzzzzzzz'", "it takes: count, rate, label, verbose, offset"));
    params_refused(KV("label=x", "plugin=oneshot"), PARTS("unknown parameter 'plugin'"));
}

Test(registry, params_wrong_type)
{
    params_refused(KV("label=x", "count=abc"), PARTS("'count'", "expects an integer", "'abc'"));
    params_refused(KV("label=x", "count=2.5"), PARTS("'count'", "expects an integer", "'2.5'"));
    params_refused(KV("label=x", "count="), PARTS("'count'", "expects an integer"));
    params_refused(KV("label=x", "count=99999999999999999999"), PARTS("'count'", "expects an integer"));
    params_refused(KV("label=x", "rate=fast"), PARTS("'rate'", "expects a number", "'fast'"));
    params_refused(KV("label=x", "rate=nan"), PARTS("'rate'", "expects a number"));
    params_refused(KV("label=x", "rate=inf"), PARTS("'rate'", "expects a number"));
    params_refused(KV("label=x", "verbose=maybe"), PARTS("'verbose'", "expects true or false", "'maybe'"));
    params_refused(KV("label"), PARTS("'label'", "is not key=value"));
}

/* numbers take the grammar of experiment files (scalar.h): no hex floats, no
 * blanks around them; the error is one line naming the text */
Test(registry, params_take_the_experiment_number_grammar)
{
    static const struct {
        const char *kv, *what;
    } bad[] = {
        {"rate=0x1p-2", "expects a number"}, {"rate=0x10", "expects a number"},
        {"rate= 0.5", "expects a number"},   {"rate=\t0.5", "expects a number"},
        {"rate=0.5 ", "expects a number"},   {"rate=1e999", "expects a number"},
        {"rate=1_0", "expects a number"},    {"rate=-.inf", "expects a number"},
        {"count= 2", "expects an integer"},  {"count=\t2", "expects an integer"},
        {"count=0x2", "expects an integer"}, {"count=2 ", "expects an integer"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pl_instance *in = NULL;
        pl_error err;
        memset(&err, 0, sizeof err);
        cr_assert_eq(pl_instance_new_kv(all_params(), KV("label=x", bad[i].kv), 1, 1, &in, &err),
                     PL_ECONFIG, "%s accepted", bad[i].kv);
        cr_assert_null(in);
        const char *text = strchr(bad[i].kv, '=') + 1;
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", text);
        expect_msg(&err, PARTS(bad[i].what, quoted));
        cr_assert(!strchr(err.msg, '\n') || strchr(text, '\n'), "not one line: %s", err.msg);
    }
    /* what experiment files accept still goes */
    const pl_host_api *api = pl_host_api_get();
    pl_instance *in = NULL;
    pl_error err;
    cr_assert_eq(pl_instance_new_kv(all_params(), KV("label=x", "count=+4", "rate=.5e0"), 1, 1, &in, &err),
                 PL_OK, "%s", err.msg);
    cr_assert_eq(api->param_int(pl_instance_params(in), "count"), 4);
    cr_assert_eq(api->param_float(pl_instance_params(in), "rate"), 0.5);
    pl_instance_free(in);
    cr_assert_eq(pl_instance_new_kv(all_params(), KV("label=x", "rate=5E-1", "count=007"), 1, 1, &in, &err),
                 PL_OK, "%s", err.msg);
    cr_assert_eq(api->param_float(pl_instance_params(in), "rate"), 0.5);
    cr_assert_eq(api->param_int(pl_instance_params(in), "count"), 7);
    pl_instance_free(in);
}

Test(registry, params_out_of_range)
{
    params_refused(KV("label=x", "count=0"), PARTS("'count'", "= 0", "outside [1, 10]"));
    params_refused(KV("label=x", "count=11"), PARTS("'count'", "= 11", "outside [1, 10]"));
    params_refused(KV("label=x", "rate=1.5"), PARTS("'rate'", "outside [0, 1]"));
    params_refused(KV("label=x", "rate=-0.001"), PARTS("'rate'", "outside [0, 1]"));
}

Test(registry, params_required)
{
    params_refused(KV("count=2"),
                   PARTS("schedule plugin 'all_params' requires parameter 'label'", "a required string"));
    static const char *const none[] = {NULL};
    params_refused(none, PARTS("requires parameter 'label'"));
}

Test(registry, params_errors_carry_yaml_positions)
{
    pl_kv kv[] = {
        {.key = "label", .value = "x", .file = "exp.yaml", .line = 6, .col = 14},
        {.key = "rat", .value = "0.5", .file = "exp.yaml", .line = 7, .col = 12},
    };
    pl_plugin_ref ref = {.plugin = "all_params", .file = "exp.yaml", .line = 5, .col = 11,
                         .params = kv, .n_params = 2};
    pl_instance *in = NULL;
    pl_error err;
    pl_status st = pl_instance_new(pltest_registry(), PL_KIND_SCHEDULE, &ref, 1, 1, &in, &err);
    cr_assert_eq(st, PL_ECONFIG, "%s", err.msg);
    cr_assert(!strncmp(err.msg, "exp.yaml:7:12: ", 15), "%s", err.msg);
    expect_msg(&err, PARTS("did you mean 'rate'"));

    /* a missing required parameter points at the plugin reference */
    ref.params = &kv[1];
    kv[1] = (pl_kv){.key = "count", .value = "4", .file = "exp.yaml", .line = 7, .col = 12};
    ref.n_params = 1;
    st = pl_instance_new(pltest_registry(), PL_KIND_SCHEDULE, &ref, 1, 1, &in, &err);
    cr_assert_eq(st, PL_ECONFIG, "%s", err.msg);
    cr_assert(!strncmp(err.msg, "exp.yaml:5:11: ", 15), "%s", err.msg);
    expect_msg(&err, PARTS("requires parameter 'label'"));

    /* an unknown plugin too */
    ref.plugin = "onesht";
    st = pl_instance_new(pltest_registry(), PL_KIND_SCHEDULE, &ref, 1, 1, &in, &err);
    cr_assert_eq(st, PL_ENOTFOUND, "%s", err.msg);
    cr_assert(!strncmp(err.msg, "exp.yaml:5:11: ", 15), "%s", err.msg);
    expect_msg(&err, PARTS("unknown schedule plugin 'onesht'", "did you mean 'oneshot'"));
}

/* ---- contract breaches at run time ------------------------------------------------ */

/* Runs one oneshot channel-pruning step on a small conv net with criterion
 * `crit`; returns the status and leaves the message in err. The model must
 * come out untouched when the step fails. */
static pl_status prune_once(const char *crit, pl_error *err)
{
    pl_model *m = pltest_model("name: t\ninput: [1, 6, 6]\nclasses: 3\nlayers:\n"
                               "  - {name: c1, type: conv2d, out: 4, kernel: 3, padding: 1}\n"
                               "  - {type: relu}\n"
                               "  - {name: c2, type: conv2d, out: 6, kernel: 3}\n"
                               "  - {type: flatten}\n"
                               "  - {name: fc, type: linear, out: 3}\n",
                               5);
    int64_t params_before = 0;
    for (int i = 0; i < m->n_layers; i++)
        params_before += m->layers[i].nw + m->layers[i].nb;
    pl_instance *c = pltest_instance(PL_KIND_CRITERION, crit, NULL, 1, 1);
    pl_instance *s = pltest_instance(PL_KIND_SCHEDULE, "oneshot", NULL, 1, 1);
    pl_prune_cfg cfg = {.enabled = 1, .granularity = PL_GRAN_CHANNEL, .has_sparsity = 1,
                        .sparsity = 0.5};
    pl_pruner pr;
    cr_assert_eq(pl_pruner_init(&pr, m, &cfg, c, s, err), PL_OK, "%s", err->msg);
    cr_assert_eq(pr.plan.n_steps, 1);
    pl_status st = pl_pruner_step(&pr, 0, NULL, 8, 1, err);
    if (st) {
        int64_t params_after = 0;
        for (int i = 0; i < m->n_layers; i++)
            params_after += m->layers[i].nw + m->layers[i].nb;
        cr_assert_eq(params_after, params_before, "a failed step must not cut anything");
        cr_assert_eq(m->layers[0].out_c, 4);
    }
    pl_pruner_free(&pr);
    pl_instance_free(c);
    pl_instance_free(s);
    pl_model_free(m);
    return st;
}

Test(registry, criterion_nan_scores_are_an_error)
{
    pl_error err;
    pl_status st = prune_once("nan_scores", &err);
    cr_assert_eq(st, PL_EPLUGIN, "%d: %s", st, err.msg);
    expect_msg(&err, PARTS("criterion plugin 'nan_scores'", "non-finite score", "unit 1",
                           "layer c1"));
}

Test(registry, criterion_wrong_count_is_an_error)
{
    pl_error err;
    pl_status st = prune_once("wrong_count", &err);
    cr_assert_eq(st, PL_EPLUGIN, "%d: %s", st, err.msg);
    expect_msg(&err, PARTS("criterion plugin 'wrong_count'", "returned 3 scores", "layer c1",
                           "expected 4"));
}

Test(registry, good_criterion_prunes)
{
    /* the same harness with a real criterion succeeds (the two tests above
     * fail for the plugin's sake, not the harness's) */
    pl_error err;
    cr_assert_eq(prune_once("l1", &err), PL_OK, "%s", err.msg);
}
