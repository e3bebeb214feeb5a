#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pl_status pl_error_setv(pl_error *e, pl_status code, const char *fmt, va_list ap)
{
    if (e) {
        e->code = code;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        /* keep it one line */
        for (char *p = e->msg; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    }
    return code;
}

pl_status pl_error_set(pl_error *e, pl_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pl_error_setv(e, code, fmt, ap);
    va_end(ap);
    return code;
}

void pl_error_prefix(pl_error *e, const char *fmt, ...)
{
    if (!e)
        return;
    char pre[512], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    snprintf(e->msg, sizeof e->msg, "%s: %s", pre, old);
}

void pl_error_clear(pl_error *e)
{
    if (e) {
        e->code = PL_OK;
        e->msg[0] = '\0';
    }
}

const char *pl_status_str(pl_status s)
{
    switch (s) {
    case PL_OK: return "ok";
    case PL_ENOMEM: return "out of memory";
    case PL_EINVAL: return "invalid argument";
    case PL_EIO: return "I/O error";
    case PL_EFORMAT: return "malformed file";
    case PL_ERANGE: return "value out of range";
    case PL_EUNSUPPORTED: return "unsupported";
    case PL_EPLUGIN: return "plugin error";
    case PL_EDIVERGED: return "training diverged";
    case PL_EINTR: return "interrupted";
    case PL_ENOTFOUND: return "not found";
    case PL_ECONFIG: return "configuration error";
    case PL_EMISSED: return "pruning missed its target";
    case PL_ERUNFAILED: return "a run failed";
    }
    return "unknown error";
}

int pl_status_exit_code(pl_status s)
{
    switch (s) {
    case PL_OK: return 0;
    case PL_EINVAL: case PL_ECONFIG: case PL_EFORMAT: case PL_ENOTFOUND:
    case PL_ERANGE: case PL_EPLUGIN: case PL_EIO:
        return 2;
    default:
        return 1;
    }
}

_Noreturn void pl__assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "prunelab: internal error at %s:%d: %s does not hold (please report this)\n", file, line,
            cond);
    abort();
}
