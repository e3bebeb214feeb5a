/* scalar.c — see scalar.h */
#include "scalar.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int pl__name_ok(const char *s, int upper, const char *extra, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (max && n == max)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (upper && c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || strchr(extra, c)))
            return 0;
    }
    return n >= 1;
}

int pl__bool_word(const char *s, pl__bool_grammar g, int *out)
{
    static const char *const yaml[2][4] = {{"false", "False", "FALSE", NULL}, {"true", "True", "TRUE", NULL}};
    static const char *const param[2][4] = {{"false", "no", "off", "0"}, {"true", "yes", "on", "1"}};
    const char *const(*words)[4] = g == PL__BOOL_YAML ? yaml : param;
    for (int v = 0; v < 2; v++)
        for (int k = 0; k < 4 && words[v][k]; k++)
            if (!strcmp(s, words[v][k])) {
                *out = v;
                return 1;
            }
    return 0;
}

int pl__int_word(const char *s, long long *out)
{
    const char *p = s + (*s == '+' || *s == '-');
    if (!*p || strspn(p, "0123456789") != strlen(p))
        return 0;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return -1;
    *out = v;
    return 1;
}

int pl__num_word(const char *s, double *out)
{
    const char *p = s + (*s == '+' || *s == '-');
    if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
        *out = *s == '-' ? -INFINITY : INFINITY;
        return 1;
    }
    if (p == s && (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN"))) {
        *out = NAN;
        return 1;
    }
    int digit_start = (*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9');
    if (!digit_start || strpbrk(s, "xXpPnNiI_"))
        return 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end)
        return 0;
    *out = v;
    return 1;
}
