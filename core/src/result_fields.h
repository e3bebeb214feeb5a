/*
 * result_fields.h — private to result.c (the record writer, the field
 * tables) and result_read.c (the strict reader): the one table of record
 * fields that drives both directions.
 */
#ifndef PL_RESULT_FIELDS_H
#define PL_RESULT_FIELDS_H

#include "result.h"

#include <stddef.h>
#include <stdint.h>

#define PL__RECORD_FORMAT "prunelab-run"
#define PL__RECORD_VERSION 1

/* ---- record fields ------------------------------------------------------- */

typedef enum pl__ftype { PL__F_STR, PL__F_U64, PL__F_I64, PL__F_F64, PL__F_SIZE } pl__ftype;

typedef struct pl__field {
    const char *name;
    pl__ftype type;
    size_t off, size;
} pl__field;

extern const pl__field pl__run_fields[];
extern const pl__field pl__layer_fields[];
extern const pl__field pl__history_fields[];
extern const size_t pl__n_run_fields, pl__n_layer_fields, pl__n_history_fields;
#define PL__N_RUN_FIELDS pl__n_run_fields
#define PL__N_LAYER_FIELDS pl__n_layer_fields
#define PL__N_HISTORY_FIELDS pl__n_history_fields

/* bits of the "seen" mask beyond the table fields */
#define PL__SEEN_HISTORY (UINT64_C(1) << 59)
#define PL__SEEN_MANIFEST (UINT64_C(1) << 60)
#define PL__SEEN_FORMAT (UINT64_C(1) << 61)
#define PL__SEEN_VERSION (UINT64_C(1) << 62)
#define PL__SEEN_LAYERS (UINT64_C(1) << 63)

/* A run_id is non-empty, fits pl_run_result.run_id and is made of
 * [A-Za-z0-9_-] only (it names a file). */
int pl__run_id_ok(const char *id);

/* Values a run can produce (result_read.c); anything else is a corrupt or
 * hand-edited record, refused with PL_EFORMAT naming path. */
pl_status pl__record_check(const char *path, const pl_run_result *r, pl_error *err);

#endif
