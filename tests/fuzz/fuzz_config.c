/*
 * fuzz_config — libFuzzer harness for the experiment loader
 * (pl_config_load: YAML -> tree -> --set edits -> sweep -> typed decode).
 *
 * The input is written as an experiment file. Comment lines of the form
 * "#set: key=value" (at most 8) are also passed as --set overrides, so one
 * input exercises the file and the override parser together. On success
 * every run of the sweep is expanded (bounded) and dumped; on failure the
 * error must be one line that starts with the file or the --set it blames,
 * as `prunelab run` prints it — anything else aborts as a finding.
 */
#include "config.h"
#include "fuzz_util.h"

#define MAX_SETS 8
#define MAX_EXPAND 64

static void check_error(const pl_error *err, pl_status st, const char *path)
{
    if (st == PL_ENOMEM)
        return;
    const char *m = err->msg;
    if (st != PL_ECONFIG && st != PL_EIO) {
        fprintf(stderr, "fuzz_config: unexpected status %d (%s): %s\n", (int)st, pl_status_str(st), m);
        abort();
    }
    if (!m[0] || strchr(m, '\n') || strchr(m, '\r')) {
        fprintf(stderr, "fuzz_config: error message is empty or not one line: [%s]\n", m);
        abort();
    }
    if (strncmp(m, path, strlen(path)) != 0 && strncmp(m, "--set ", 6) != 0) {
        fprintf(stderr, "fuzz_config: error message does not name the file: [%s]\n", m);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    pl_fuzz_path(path, sizeof path, "experiment.yaml");
    pl_fuzz_write(path, data, size);

    /* "#set: key=value" lines become --set arguments */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    const char *sets[MAX_SETS];
    size_t n_sets = 0;
    for (char *line = text; line && n_sets < MAX_SETS;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (!strncmp(line, "#set: ", 6))
            sets[n_sets++] = line + 6;
        line = nl ? nl + 1 : NULL;
    }

    pl_error err;
    pl_error_clear(&err);
    pl_config *cfg = NULL;
    pl_status st = pl_config_load(path, sets, n_sets, &cfg, &err);
    if (st) {
        check_error(&err, st, path);
        free(text);
        return 0;
    }
    size_t n = pl_config_run_count(cfg);
    if (n == 0) {
        fprintf(stderr, "fuzz_config: a loaded config has zero runs\n");
        abort();
    }
    for (size_t a = 0; a < pl_config_sweep_axes(cfg); a++) {
        size_t nv = 0;
        const char *key = pl_config_sweep_key(cfg, a, &nv);
        if (!key || nv == 0)
            abort();
        for (size_t v = 0; v < nv; v++)
            if (!pl_config_sweep_value(cfg, a, v))
                abort();
    }
    for (size_t i = 0; i < n && i < MAX_EXPAND; i++) {
        pl_experiment *x;
        st = pl_config_expand(cfg, i, &x, &err);
        if (st) {
            /* pl_config_load already expanded every run once */
            if (st == PL_ENOMEM)
                continue;
            fprintf(stderr, "fuzz_config: run %zu expanded at load but not again: %s\n", i, err.msg);
            abort();
        }
        char *dump = pl_experiment_dump(x);
        char key[17];
        pl_experiment_baseline_key(x, key);
        if (strlen(x->run_id) != 16 || strlen(key) != 16)
            abort();
        free(dump);
        pl_experiment_free(x);
    }
    pl_config_free(cfg);
    free(text);
    return 0;
}
