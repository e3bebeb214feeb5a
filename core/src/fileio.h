/*
 * fileio.h — the host's file utilities: opening input files a user names
 * safely, reading a whole file, atomic writes, mkdir -p, I/O error text.
 *
 * Every file prunelab reads by name (experiment, model, run record, compare
 * CSV, checkpoint) goes through pl__fopen_regular: a FIFO would block the
 * open forever, a device like /dev/zero would never end, a directory reads
 * as an error much later. Only regular files are accepted, before a single
 * byte is read.
 */
#ifndef PL_FILEIO_H
#define PL_FILEIO_H

#include "error.h"

#include <stddef.h>
#include <stdio.h>

/* Opens path for reading ("rb") if it is a regular file; the caller
 * fcloses. When open() itself fails, returns NULL with *open_errno set and
 * err untouched (callers keep their own wording for a missing file). When
 * the file is not regular (or fdopen fails), returns NULL with
 * *open_errno = 0 and err set (PL_EIO), naming path and `what` ("the
 * experiment", "the checkpoint"). */
FILE *pl__fopen_regular(const char *path, const char *what, int *open_errno, pl_error *err);

/* ---- writing ---------------------------------------------------------- */

/* Atomic file write helper used by every report file: writes `len` bytes to
 * path.tmp.<pid>, fsyncs, renames over path. */
pl_status pl_write_atomic(const char *path, const void *data, size_t len, pl_error *err);

/* Writes all `len` bytes to the open stream f, then fflush + fsync; `what`
 * names the file in errors ("what: cause (hint)", PL_EIO). The stream stays
 * open (the caller closes it). pl_write_atomic is built on it. */
pl_status pl_write_stream(FILE *f, const char *what, const void *data, size_t len,
                          pl_error *err);

/* mkdir -p: creates path and its missing parents (mode 0777 & ~umask).
 * Errors name the whole path ("path: cause (hint)"). */
pl_status pl_mkdirs(const char *path, pl_error *err);

/* The walk under every mkdir -p: creates each missing component of `path`
 * (a writable copy), left to right. Returns 0, or the errno of the first
 * failure with `path` cut at the component that failed; *exists is 1 when
 * that component exists but is not a directory (or cannot be stat'ed).
 * check_each: check every existing component (else only the last). */
int pl__mkdir_walk(char *path, int check_each, int *exists);

/* Reads a whole regular file (pl__fopen_regular) of at most PL__READ_MAX_BYTES into
 * a NUL-terminated heap copy (caller frees *data); PL_EIO otherwise. */
#define PL__READ_MAX_BYTES (256 << 20)
pl_status pl__read_file(const char *path, char **data, size_t *len, pl_error *err);

/* Fills err with "path: strerror(errnum) (hint)" and returns PL_EIO. */
pl_status pl__io_error(pl_error *err, const char *path, int errnum);

#endif
