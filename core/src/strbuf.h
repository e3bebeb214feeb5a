/*
 * strbuf.h — the host's one growable text buffer (reports, records, dumps,
 * identities, messages) and the cell writers of its CSV and Markdown files.
 */
#ifndef PL_STRBUF_H
#define PL_STRBUF_H

#include <stddef.h>

/* A growable NUL-terminated text buffer. After an allocation failure it
 * drops further appends and keeps `failed` set; check it once at the end. */
typedef struct pl__buf {
    char *data;
    size_t len, cap;
    int failed;
} pl__buf;

void pl__buf_add(pl__buf *b, const char *s, size_t n);
void pl__buf_puts(pl__buf *b, const char *s);
void pl__buf_printf(pl__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pl__buf_free(pl__buf *b);

/* ---- cells ---- */

/* One CSV cell: as is, or double-quoted (inner quotes doubled) when it
 * holds a comma, a quote or a line break. */
void pl__csv_str(pl__buf *b, const char *s);
/* n cells, comma-separated (no trailing comma) */
void pl__csv_strs(pl__buf *b, const char *const *v, size_t n);
/* "%.*f"; nothing for NaN (an empty cell) */
void pl__csv_num(pl__buf *b, double v, int decimals);
void pl__csv_nums(pl__buf *b, const double *v, size_t n, int decimals);
/* One Markdown table cell: '|' escaped, line breaks as spaces, an em dash
 * when empty. */
void pl__md_cell(pl__buf *b, const char *s);
/* "| c0 | c1 | ... |\n" */
void pl__md_row(pl__buf *b, const char *const *cells, size_t n);

#endif
