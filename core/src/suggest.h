/*
 * suggest.h — "did you mean ...?": the candidate closest to a misspelt word
 * (experiment keys, model keys, plugin names and parameters).
 */
#ifndef PL_SUGGEST_H
#define PL_SUGGEST_H

#include <stddef.h>

/* The candidate closest to `word` by edit distance, or NULL if none is
 * close (at most a third of word's length away, at least 1). NULL
 * candidates are skipped. */
const char *pl_suggest(const char *word, const char *const *candidates, size_t n);

#endif
