/*
 * error.h — the one error-reporting mechanism of the host.
 *
 * Every fallible host function returns pl_status and, on failure, fills a
 * caller-owned pl_error with ONE line: "file:line:col: cause (hint)" where a
 * position exists, else "what: cause (hint)". main() prints it once and maps
 * the status to the exit code (pl_status_exit_code). Nothing below main()
 * prints errors or exits.
 */
#ifndef PL_ERROR_H
#define PL_ERROR_H

#include "prunelab/plugin.h"

#include <stdarg.h>

typedef struct pl_error {
    pl_status code;
    char msg[1024];
} pl_error;

/* Sets e (if non-NULL) and returns code, so callers can `return pl_error_set(...)`. */
pl_status pl_error_set(pl_error *e, pl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
pl_status pl_error_setv(pl_error *e, pl_status code, const char *fmt, va_list ap);
/* Prefixes the existing message with "prefix: " (for adding context). */
void pl_error_prefix(pl_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void pl_error_clear(pl_error *e);

/* Short name of a status ("out of memory", "I/O error", ...). */
const char *pl_status_str(pl_status s);
/* 0 ok; 2 configuration/input (EINVAL, ECONFIG, EFORMAT, ENOTFOUND, ERANGE,
 * EIO on input files, EPLUGIN on load); 1 run failures. */
int pl_status_exit_code(pl_status s);

/* Invariants: a programmer error (a table out of step with its enum, an
 * ABI promise the host itself broke), never bad input, which gets a
 * pl_status. Kept in release builds: the checks are cheap and a wrong
 * result is worse than a stop. Prints one line and aborts. */
#define PL_ASSERT(cond)                                                        \
    ((cond) ? (void)0 : pl__assert_fail(#cond, __FILE__, __LINE__))
_Noreturn void pl__assert_fail(const char *cond, const char *file, int line);

#endif
