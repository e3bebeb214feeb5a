/*
 * replay.h — runs every file of a seed corpus through a harness's
 * LLVMFuzzerTestOneInput, without libFuzzer. The test_replay_*.c files use
 * it so that the ordinary test suite (and its sanitizer build) replays the
 * committed corpora, regression inputs included, on every `make test`;
 * scripts/fuzz.sh is what explores new inputs.
 */
#ifndef PL_FUZZ_REPLAY_H
#define PL_FUZZ_REPLAY_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*pl_fuzz_fn)(const uint8_t *data, size_t size);

/* Feeds each regular file of dir (relative to the source tree, the tests'
 * working directory) to fn; returns how many files were replayed. */
static size_t pl_fuzz_replay(const char *dir, pl_fuzz_fn fn)
{
    DIR *d = opendir(dir);
    cr_assert(d != NULL, "cannot open the corpus %s", dir);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        cr_assert(f != NULL, "cannot open %s", path);
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0, got;
        do {
            if (len == cap) {
                cap = cap ? cap * 2 : 4096;
                buf = realloc(buf, cap);
                cr_assert(buf != NULL, "out of memory reading %s", path);
            }
            got = fread(buf + len, 1, cap - len, f);
            len += got;
        } while (got > 0);
        fclose(f);
        fn(buf, len);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

#endif
