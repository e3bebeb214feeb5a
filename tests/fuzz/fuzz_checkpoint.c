/*
 * fuzz_checkpoint — libFuzzer harness for pl_checkpoint_load, the reader of
 * cached baselines and saved final models.
 *
 * Each input is loaded twice: as given (so the header, length and checksum
 * checks are fuzzed), and with its header's payload length and trailing
 * FNV-1a checksum repaired (so mutations reach the payload validator
 * instead of dying at the checksum). A model that loads is counted, saved
 * again and must load again ("every saved file loads", checkpoint.h).
 * Errors must be one line naming the file.
 */
#include "checkpoint.h"
#include "fuzz_util.h"
#include "rng.h"

#define HDR 24
#define SUM 8
#define FNV_BASIS 14695981039346656037ull

static void check_error(const pl_error *err, pl_status st, const char *path, const char *what)
{
    if (st == PL_ENOMEM)
        return;
    const char *m = err->msg;
    if (st != PL_EFORMAT && st != PL_EIO) {
        fprintf(stderr, "fuzz_checkpoint: %s: unexpected status %d (%s): %s\n", what, (int)st,
                pl_status_str(st), m);
        abort();
    }
    if (!m[0] || strchr(m, '\n') || strncmp(m, path, strlen(path)) != 0) {
        fprintf(stderr, "fuzz_checkpoint: %s: error is not one line naming the file: [%s]\n", what, m);
        abort();
    }
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void load_one(const char *path)
{
    pl_error err;
    pl_error_clear(&err);
    pl_model *m = NULL;
    char *meta = NULL;
    pl_status st = pl_checkpoint_load(path, &m, &meta, &err);
    if (st) {
        check_error(&err, st, path, "load");
        return;
    }
    if (!m || !meta)
        abort();
    pl_counts c;
    pl_model_count(m, &c);
    char again[512];
    pl_fuzz_path(again, sizeof again, "again.ckpt");
    st = pl_checkpoint_save(again, m, meta, 1u /* PL_CKPT_OPTIM: keep what was loaded */, &err);
    if (st && st != PL_ENOMEM) {
        fprintf(stderr, "fuzz_checkpoint: a loaded model does not save: %s\n", err.msg);
        abort();
    }
    if (!st) {
        pl_model *m2 = NULL;
        char *meta2 = NULL;
        st = pl_checkpoint_load(again, &m2, &meta2, &err);
        if (st && st != PL_ENOMEM) {
            fprintf(stderr, "fuzz_checkpoint: a saved model does not load: %s\n", err.msg);
            abort();
        }
        if (!st) {
            pl_counts c2;
            pl_model_count(m2, &c2);
            if (c2.params != c.params || c2.macs != c.macs || strcmp(meta, meta2)) {
                fprintf(stderr, "fuzz_checkpoint: save/load changed the model\n");
                abort();
            }
            pl_model_free(m2);
            free(meta2);
        }
    }
    pl_model_free(m);
    free(meta);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    pl_fuzz_path(path, sizeof path, "model.ckpt");
    pl_fuzz_write(path, data, size);
    load_one(path);

    if (size >= HDR + SUM) {
        uint8_t *fixed = malloc(size);
        if (!fixed)
            return 0;
        memcpy(fixed, data, size);
        size_t plen = size - HDR - SUM;
        put_le64(fixed + 16, plen);
        put_le64(fixed + HDR + plen, pl_fnv1a(FNV_BASIS, fixed + HDR, plen));
        if (memcmp(fixed, data, size) != 0) {
            pl_fuzz_write(path, fixed, size);
            load_one(path);
        }
        free(fixed);
    }
    return 0;
}
