/* scalar.c — see scalar.h */
#include "scalar.h"

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
