/*
 * fuzz_model — libFuzzer harness for model files (configs/models/NAME.yaml):
 * pl_model_spec_load, then pl_model_new (shape inference from the input
 * through every layer, parameter allocation and initialisation), counting
 * and printing, as `prunelab validate` does with a model file.
 *
 * Errors must be one line naming the model file (PL_ENOMEM excepted);
 * anything else aborts as a finding.
 */
#include "config.h"
#include "model.h"
#include "fuzz_model_util.h" /* pl_fuzz_count_print */

static void check_error(const pl_error *err, pl_status st, const char *path, const char *what)
{
    if (st == PL_ENOMEM)
        return;
    const char *m = err->msg;
    if (st != PL_ECONFIG && st != PL_EIO) {
        fprintf(stderr, "fuzz_model: %s: unexpected status %d (%s): %s\n", what, (int)st, pl_status_str(st), m);
        abort();
    }
    if (!m[0] || strchr(m, '\n') || strncmp(m, path, strlen(path)) != 0) {
        fprintf(stderr, "fuzz_model: %s: error message is not one line naming the file: [%s]\n", what, m);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    pl_fuzz_path(path, sizeof path, "model.yaml");
    pl_fuzz_write(path, data, size);

    pl_error err;
    pl_error_clear(&err);
    pl_model_spec *spec = NULL;
    pl_status st = pl_model_spec_load(path, &spec, &err);
    if (st) {
        check_error(&err, st, path, "pl_model_spec_load");
        return 0;
    }
    pl_model *m = NULL;
    st = pl_model_new(spec, 1, &m, &err);
    if (st)
        check_error(&err, st, path, "pl_model_new");
    else
        pl_fuzz_count_print("fuzz_model", m);
    pl_model_spec_free(spec);
    return 0;
}
