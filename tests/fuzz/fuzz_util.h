/*
 * fuzz_util.h — what every prunelab libFuzzer harness shares: a private
 * scratch directory (on /dev/shm when it exists, else $TMPDIR or /tmp),
 * whole-file writes, and sanitizer defaults.
 *
 * The loaders under test take file paths, so each harness writes the fuzz
 * input to a file in its scratch directory and hands the loader that path,
 * exactly as the command line would.
 *
 * The scratch folder is removed at exit, or by the next harness process
 * when its owner died without running atexit handlers.
 *
 * Allocations above 256 MiB return NULL instead of aborting: a file may ask
 * for a large model, and the loaders must answer with PL_ENOMEM, not crash.
 *
 * A harness that builds models includes fuzz_model_util.h instead, which
 * adds pl_fuzz_count_print (the tail of `prunelab validate`).
 */
#ifndef PL_FUZZ_UTIL_H
#define PL_FUZZ_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1:max_allocation_size_mb=256:detect_leaks=1";
}

const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
    return "print_stacktrace=1:halt_on_error=1";
}

static char pl_fuzz_dir_buf[256];

/* Empties and removes a scratch directory (it holds only files). */
static void pl_fuzz_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[600];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void pl_fuzz_cleanup(void) { pl_fuzz_rmdir(pl_fuzz_dir_buf); }

/* libFuzzer leaves some processes through _Exit (crashes, timeouts, the
 * jobs of -fork mode), which skips atexit: remove the scratch folders of
 * processes that no longer run. Names are prunelab-fuzz-<pid>-XXXXXX. */
static void pl_fuzz_sweep(const char *base)
{
    DIR *d = opendir(base);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid;
        char p[600];
        if (sscanf(e->d_name, "prunelab-fuzz-%ld-", &pid) != 1 || pid <= 0)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(p, sizeof p, "%s/%s", base, e->d_name);
        pl_fuzz_rmdir(p);
    }
    closedir(d);
}

/* The scratch directory, created on first use and removed at exit. */
static const char *pl_fuzz_dir(void)
{
    char *dir = pl_fuzz_dir_buf;
    if (dir[0])
        return dir;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    pl_fuzz_sweep(base);
    snprintf(dir, sizeof pl_fuzz_dir_buf, "%s/prunelab-fuzz-%ld-XXXXXX", base, (long)getpid());
    if (!mkdtemp(dir)) {
        perror("prunelab fuzz: mkdtemp");
        abort();
    }
    atexit(pl_fuzz_cleanup);
    return dir;
}

/* <scratch>/<name> into out (cap bytes). */
static void pl_fuzz_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", pl_fuzz_dir(), name);
}

/* Writes n bytes to path (truncating); aborts on failure, which is a
 * problem of the machine, not of the code under test. */
static void pl_fuzz_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

#endif
