/*
 * fuzz_onnx — libFuzzer harness for ONNX models (`model: net.onnx`):
 * pl_onnx_spec_from_bytes (pl_onnx_unpack, then the import of the graph
 * and its weights), then what `prunelab validate` does with the spec:
 * pl_model_new (shape inference, allocation, the file's weights applied),
 * counting, printing, and the canonical text the run identity hashes.
 *
 * Errors must be one line naming the file (PL_ENOMEM excepted) with
 * status PL_EFORMAT; anything else aborts as a finding. A spec the
 * importer accepts must build: the importer infers shapes with the
 * model builder's own rule, so pl_model_new refusing it is a finding too.
 */
#include "config.h"
#include "identity.h"
#include "model.h"
#include "onnx_import.h"
#include "fuzz_model_util.h" /* pl_fuzz_count_print */

#define FUZZ_NAME "fuzz.onnx"

static void check_error(const pl_error *err, pl_status st, const char *what)
{
    if (st == PL_ENOMEM)
        return;
    const char *m = err->msg;
    if (st != PL_EFORMAT) {
        fprintf(stderr, "fuzz_onnx: %s: unexpected status %d (%s): %s\n", what, (int)st, pl_status_str(st), m);
        abort();
    }
    if (!m[0] || strchr(m, '\n') || strncmp(m, FUZZ_NAME ": ", strlen(FUZZ_NAME) + 2) != 0) {
        fprintf(stderr, "fuzz_onnx: %s: error message is not one line naming the file: [%s]\n", what, m);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)pl_fuzz_path; /* bytes in memory: no scratch files (fuzz_util.h's file helpers unused) */
    (void)pl_fuzz_write;
    pl_error err;
    pl_error_clear(&err);
    pl_model_spec *spec = NULL;
    pl_status st = pl_onnx_spec_from_bytes(data, size, FUZZ_NAME, &spec, &err);
    if (st) {
        check_error(&err, st, "pl_onnx_spec_from_bytes");
        if (spec) {
            fprintf(stderr, "fuzz_onnx: a spec came back with an error\n");
            abort();
        }
        return 0;
    }
    if (!spec->weights || spec->weights->n != spec->n_layers || spec->n_layers == 0) {
        fprintf(stderr, "fuzz_onnx: an imported spec without one weight entry per layer\n");
        abort();
    }
    char *text = pl_model_spec_canonical(spec);
    if (text && !strstr(text, "\nweights: sha256:")) {
        fprintf(stderr, "fuzz_onnx: the canonical text lacks the weights digest\n");
        abort();
    }
    free(text);
    pl_model *m = NULL;
    st = pl_model_new(spec, 1, &m, &err);
    if (st && st != PL_ENOMEM) {
        fprintf(stderr, "fuzz_onnx: the importer accepted a model that pl_model_new refuses: %s\n", err.msg);
        abort();
    }
    if (!st)
        pl_fuzz_count_print("fuzz_onnx", m);
    pl_model_spec_free(spec);
    return 0;
}
