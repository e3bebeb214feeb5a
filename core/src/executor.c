/* executor.c — the built-in `local` executor: today's one-process loop.
 *
 * It sees only the job (plugin.h, pl_executor_job), exactly as an executor
 * plugin does: every run in sweep order, each baseline trained on demand by
 * the first run that needs it. Runs that another live process has claimed
 * (a second `prunelab run` on the same --out) are left to it on the first
 * pass and waited for on the second, so the report written at the end holds
 * every run of this process's share. */
#include "registry.h"

#include <stdlib.h>

static pl_status local_run(void *state, const pl_executor_job *job)
{
    (void)state;
    size_t *later = job->n_runs ? malloc(job->n_runs * sizeof *later) : NULL;
    size_t n_later = 0;
    if (job->n_runs && !later)
        return PL_ENOMEM;
    pl_status s = PL_OK;
    for (size_t k = 0; k < job->n_runs && !s; k++) {
        int outcome;
        s = job->execute_run(job->host, k, 0, &outcome);
        if (!s && outcome == PL_RUN_CLAIMED)
            later[n_later++] = k;
    }
    for (size_t q = 0; q < n_later && !s; q++)
        s = job->execute_run(job->host, later[q], PL_EXEC_WAIT, NULL);
    free(later);
    return s ? s : job->write_report(job->host);
}

static const pl_executor_ops local_ops = {.run = local_run};

const pl_plugin_desc pl__executor_local_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_EXECUTOR,
    .name = "local",
    .version = PL_VERSION,
    .description = "every run in this process, in sweep order (built in)",
    .ops = &local_ops,
};
