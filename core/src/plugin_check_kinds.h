/*
 * plugin_check_kinds.h — what the plugin-check driver (plugin_check.c)
 * shares with the checks of each plugin kind (plugin_check_<kind>.c).
 *
 * A kind's checks run inside the driver's child process: each announces a
 * check with pl__ck_begin (so a crash or hang is blamed on it) and reports
 * it with exactly one pl__ck_row. Outputs of plugin calls go into guarded
 * buffers (CK_GUARD sentinel elements each side) so writes outside them
 * are seen. Private to plugin-check.
 */
#ifndef PL_PLUGIN_CHECK_KINDS_H
#define PL_PLUGIN_CHECK_KINDS_H

#include "plugin_check.h"

#include <stdint.h>
#include <string.h>

#define CK_GUARD 16        /* sentinel elements on each side of an output */
#define CK_SEED 7
#define CK_TOL 1e-4        /* backend error relative to the output's scale */

static const uint64_t ck_sentinel64 = 0x7FF4C0DEC0DEC0DEull; /* a NaN no one computes */
static const uint32_t ck_sentinel32 = 0x7FA5C0DEu;

typedef enum pl__ck_res { CK_PASS = 0, CK_FAIL = 1, CK_SKIP = 2 } pl__ck_res;

typedef struct pl__ck {
    pl_registry *reg;
    const pl_plugin *plugin;
    FILE *out;
    int fd;        /* pipe to the parent, or -1 when checks run in-process */
    int counts[3]; /* by pl__ck_res */
} pl__ck;

/* ---- reporting (plugin_check.c) ---------------------------------------------- */

/* Reports one check: exactly one row per pl__ck_begin. */
void pl__ck_row(pl__ck *c, pl__ck_res res, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Announces the check about to run, so a crash can be blamed on it. */
void pl__ck_begin(pl__ck *c, const char *name);
/* Appends "; text" (or "text") to a failure description. */
void pl__ck_why(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- helpers (plugin_check.c) ------------------------------------------------ */

double pl__ck_now_ms(void);
int pl__ck_cmp_double(const void *a, const void *b);
/* n normal values times scale from a fixed seed and `stream` (malloc'd). */
float *pl__ck_randn(int64_t n, const char *stream, float scale);
/* The plugin's own message for st, else st's name. */
const char *pl__ck_plugin_error(pl_instance *in, pl_status st);
/* An instance from the default parameters; NULL (with the reason in why). */
pl_instance *pl__ck_instance(pl__ck *c, int threads, char *why, size_t n);
/* The `params` row: the spec's names, then an instance from the defaults.
 * Returns the instance (NULL when the remaining checks cannot run). */
pl_instance *pl__ck_params(pl__ck *c, int threads);

/* n doubles between guards, all set to the sentinel (free with _free). */
double *pl__ck_dguard_new(int64_t n);
void pl__ck_dguard_free(double *p);
int pl__ck_dis_sentinel(const double *p);
/* n floats holding NaN between sentinel guards (free with _free). */
float *pl__ck_fguard_new(int64_t n);
void pl__ck_fguard_free(float *p);
/* Describes guard damage around p[0..n) into why; 1 if intact. */
int pl__ck_fguard_ok(const float *p, int64_t n, char *why, size_t wn);

/* ---- the kinds (plugin_check_<kind>.c) ---------------------------------------- */

void pl__ck_criterion(pl__ck *c);
void pl__ck_schedule(pl__ck *c);
void pl__ck_dataset(pl__ck *c);
void pl__ck_backend(pl__ck *c);

#endif
