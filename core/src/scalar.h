/*
 * scalar.h — the host's one grammar for names and bool words, used by
 * experiment files (config*.c), plugin parameters (plugin_params.c), run records
 * (result.c) and plugin-check.
 *
 * Numbers and integers have one grammar, YAML's decimal one, used by
 * experiment and model files and plugin parameters (plugin_params.c):
 * pl__int_word and pl__num_word (no leading blanks, no hex).
 *
 * Two bool grammars exist on purpose, one per place a user writes them:
 * experiment files take YAML's true/false (any of three capitalisations),
 * plugin parameters take the words of a command line too (yes/no, on/off,
 * 1/0, lower case only). Both are listed here so they are seen together.
 */
#ifndef PL_SCALAR_H
#define PL_SCALAR_H

#include <stddef.h>

/* 1 when s is a name: at least one character, at most max (0: no limit),
 * each of [a-z0-9_], [A-Z] too when `upper`, or one of `extra`. Reads at
 * most max + 1 characters of s. */
int pl__name_ok(const char *s, int upper, const char *extra, size_t max);

typedef enum pl__bool_grammar {
    PL__BOOL_YAML,  /* true True TRUE / false False FALSE */
    PL__BOOL_PARAM, /* true yes on 1 / false no off 0 */
} pl__bool_grammar;

/* 1 and *out set when s is a bool word of grammar g, else 0. */
int pl__bool_word(const char *s, pl__bool_grammar g, int *out);

/* A decimal integer [+-]?[0-9]+: 1 and *out set; 0 when s is not one; -1
 * when it is one but does not fit a long long. */
int pl__int_word(const char *s, long long *out);

/* A YAML number: decimal with optional fraction and exponent (a digit, or
 * a point and a digit, after the sign; no hex, no underscores), or .inf /
 * -.inf / +.inf and .nan (each in three capitalisations, .nan unsigned).
 * 1 and *out set, else 0. Callers that need a finite value check it. */
int pl__num_word(const char *s, double *out);

#endif
