/*
 * alloc.c — the one hook every host allocation goes through, for
 * allocation-failure injection (SQLite-style).
 *
 * The host's sources are compiled with malloc, calloc, realloc and strdup
 * renamed to pl__malloc ... (CMakeLists.txt, target plcore; this file is
 * compiled without the renaming), and the host API's allocator for plugins
 * calls them too. With PRUNELAB_FAIL_ALLOC=k in the environment the k-th
 * allocation (1-based, counting every call) returns NULL, as does every
 * later one when PRUNELAB_FAIL_ALLOC_STICKY=1; PRUNELAB_FAIL_ALLOC=0 only
 * counts, and the count is printed on stderr at exit when
 * PRUNELAB_ALLOC_COUNT=1. tests/cli/test_alloc_fail.sh fails every k of a
 * small run. Without the variable the hook is a counter and a branch.
 * PRUNELAB_FAIL_ALLOC_TRACE=1 prints the stack of the failed call (glibc:
 * "binary(+offset)" frames, for addr2line on a -g build).
 */
#include <stdatomic.h>
#include <stdio.h>
#if defined(__GLIBC__)
#include <execinfo.h>
#include <unistd.h>
#endif
#include <stdlib.h>
#include <string.h>

void *pl__malloc(size_t n);
void *pl__calloc(size_t n, size_t size);
void *pl__realloc(void *p, size_t n);
char *pl__strdup(const char *s);
char *pl__strndup(const char *s, size_t n);

static atomic_long pl__calls;
static long fail_at = -1; /* -2: not read yet */
static int pl__sticky, pl__report;
static atomic_int pl__ready;

static void alloc_report(void)
{
    fprintf(stderr, "prunelab: allocations: %ld\n", (long)atomic_load(&pl__calls));
}

static int fail_now(void)
{
    if (!atomic_load_explicit(&pl__ready, memory_order_acquire)) {
        const char *k = getenv("PRUNELAB_FAIL_ALLOC"), *s = getenv("PRUNELAB_FAIL_ALLOC_STICKY");
        const char *c = getenv("PRUNELAB_ALLOC_COUNT");
        fail_at = k && *k ? strtol(k, NULL, 10) : -1;
        pl__sticky = s && *s == '1';
        pl__report = c && *c == '1';
        if (pl__report)
            atexit(alloc_report);
        atomic_store_explicit(&pl__ready, 1, memory_order_release);
    }
    long call = atomic_fetch_add(&pl__calls, 1) + 1;
    int fail = fail_at > 0 && (call == fail_at || (pl__sticky && call > fail_at));
#if defined(__GLIBC__)
    if (fail && call == fail_at && getenv("PRUNELAB_FAIL_ALLOC_TRACE")) {
        void *frames[32];
        backtrace_symbols_fd(frames, backtrace(frames, 32), STDERR_FILENO);
    }
#endif
    return fail;
}

void *pl__malloc(size_t n) { return fail_now() ? NULL : malloc(n); }
void *pl__calloc(size_t n, size_t size) { return fail_now() ? NULL : calloc(n, size); }
void *pl__realloc(void *p, size_t n) { return fail_now() ? NULL : realloc(p, n); }
char *pl__strdup(const char *s) { return fail_now() ? NULL : strdup(s); }
char *pl__strndup(const char *s, size_t n) { return fail_now() ? NULL : strndup(s, n); }
