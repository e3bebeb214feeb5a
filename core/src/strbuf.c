/* strbuf.c — see strbuf.h */
#include "strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- text buffer --------------------------------------------------------- */

void pl__buf_add(pl__buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->data, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void pl__buf_puts(pl__buf *b, const char *s) { pl__buf_add(b, s, strlen(s)); }

void pl__buf_printf(pl__buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
    } else if ((size_t)n < sizeof small) {
        pl__buf_add(b, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            b->failed = 1;
        } else {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            pl__buf_add(b, big, (size_t)n);
            free(big);
        }
    }
    va_end(ap2);
}

void pl__buf_free(pl__buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}


/* ---- cells ---------------------------------------------------------------- */

void pl__csv_str(pl__buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        pl__buf_puts(b, s);
        return;
    }
    pl__buf_add(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            pl__buf_add(b, "\"", 1);
        pl__buf_add(b, p, 1);
    }
    pl__buf_add(b, "\"", 1);
}

void pl__csv_strs(pl__buf *b, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            pl__buf_add(b, ",", 1);
        pl__csv_str(b, v[i]);
    }
}

void pl__csv_num(pl__buf *b, double v, int decimals)
{
    if (!isnan(v))
        pl__buf_printf(b, "%.*f", decimals, v);
}

void pl__csv_nums(pl__buf *b, const double *v, size_t n, int decimals)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            pl__buf_add(b, ",", 1);
        pl__csv_num(b, v[i], decimals);
    }
}

void pl__md_cell(pl__buf *b, const char *s)
{
    if (!*s) {
        pl__buf_puts(b, "\xe2\x80\x94"); /* — */
        return;
    }
    for (const char *p = s; *p; p++) {
        if (*p == '|')
            pl__buf_puts(b, "\\|");
        else if (*p == '\n' || *p == '\r')
            pl__buf_add(b, " ", 1);
        else
            pl__buf_add(b, p, 1);
    }
}

void pl__md_row(pl__buf *b, const char *const *cells, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pl__buf_puts(b, i ? " | " : "| ");
        pl__md_cell(b, cells[i]);
    }
    pl__buf_puts(b, " |\n");
}
