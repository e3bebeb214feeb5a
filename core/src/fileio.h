/*
 * fileio.h — opening input files a user names, safely.
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

#include <stdio.h>

/* Opens path for reading ("rb") if it is a regular file; the caller
 * fcloses. When open() itself fails, returns NULL with *open_errno set and
 * err untouched (callers keep their own wording for a missing file). When
 * the file is not regular (or fdopen fails), returns NULL with
 * *open_errno = 0 and err set (PL_EIO), naming path and `what` ("the
 * experiment", "the checkpoint"). */
FILE *pl__fopen_regular(const char *path, const char *what, int *open_errno, pl_error *err);

#endif
