/*
 * strbuf.h — the host's one growable text buffer (reports, records, dumps,
 * identities, messages).
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

#endif
