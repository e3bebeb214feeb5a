/*
 * history.c — per-epoch and per-step history of a run, history.csv, and the
 * kept-unit ranges of the run record (see history.h).
 */
#include "history.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pl_status pl__history_add(pl_run_result *r, const pl_history_row *row, pl_error *err)
{
    pl_history_row *nh = realloc(r->history, (r->n_history + 1) * sizeof *nh);
    if (!nh)
        return pl_error_set(err, PL_ENOMEM, "out of memory for the run history");
    r->history = nh;
    r->history[r->n_history++] = *row;
    return PL_OK;
}

void pl__history_csv(pl__buf *b, const pl_run_result *const *runs, size_t n)
{
    pl__buf_puts(b, "run_id,phase,step,epoch,sparsity,loss,train_acc,test_loss,test_acc\n");
    for (size_t i = 0; i < n; i++) {
        const pl_run_result *r = runs[i];
        for (size_t k = 0; k < r->n_history; k++) {
            const pl_history_row *h = &r->history[k];
            /* run ids and phase names are [A-Za-z0-9_-]: no quoting needed */
            pl__buf_printf(b, "%s,%s,%" PRId64 ",%" PRId64 ",", r->run_id, h->phase, h->step, h->epoch);
            const double v[5] = {h->sparsity, h->loss, h->train_acc, h->test_loss, h->test_acc};
            pl__csv_nums(b, v, 5, 4);
            pl__buf_puts(b, "\n");
        }
    }
}

void pl__history_meta_encode(pl__buf *meta, const pl_run_result *r)
{
    for (size_t k = 0; k < r->n_history; k++) {
        const pl_history_row *h = &r->history[k];
        pl__buf_printf(meta, "history=%s %" PRId64 " %" PRId64 " %.17g %.17g %.17g %.17g %.17g\n", h->phase,
                       h->step, h->epoch, h->sparsity, h->loss, h->train_acc, h->test_loss, h->test_acc);
    }
}

pl_status pl__history_meta_decode(const char *meta, pl_run_result *r, pl_error *err)
{
    for (const char *p = meta ? strstr(meta, "history=") : NULL; p; p = strstr(p + 1, "\nhistory=")) {
        if (*p == '\n')
            p++;
        pl_history_row h;
        memset(&h, 0, sizeof h);
        char ph[16];
        /* %lf reads "nan" as written by %.17g */
        if (sscanf(p + 8, "%15s %" SCNd64 " %" SCNd64 " %lf %lf %lf %lf %lf", ph, &h.step, &h.epoch,
                   &h.sparsity, &h.loss, &h.train_acc, &h.test_loss, &h.test_acc) != 8)
            continue;
        snprintf(h.phase, sizeof h.phase, "%s", ph);
        pl_status st = pl__history_add(r, &h, err);
        if (st)
            return st;
    }
    return PL_OK;
}

char *pl__ranges(const int *idx, int n)
{
    pl__buf b = {0};
    pl__buf_puts(&b, "");
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && idx[j + 1] == idx[j] + 1)
            j++;
        if (j == i)
            pl__buf_printf(&b, "%s%d", i ? "," : "", idx[i]);
        else
            pl__buf_printf(&b, "%s%d-%d", i ? "," : "", idx[i], idx[j]);
        i = j + 1;
    }
    if (b.failed) {
        pl__buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* ---- gathering ------------------------------------------------------------ */

pl_status pl__history_on_epoch(void *ud, const char *phase, int epoch, const struct pl_epoch_stats *st,
                               double *test_acc, pl_error *err)
{
    pl__history_ctx *c = ud;
    pl_history_row h;
    memset(&h, 0, sizeof h);
    /* "retrain3" (step 3 of an iterative schedule) is "retrain" at step 3 */
    snprintf(h.phase, sizeof h.phase, "%s", strncmp(phase, "retrain", 7) == 0 ? "retrain" : phase);
    h.step = c->step;
    h.epoch = epoch;
    h.sparsity = c->sparsity;
    h.loss = st->loss;
    h.train_acc = st->acc;
    pl_status s = pl_evaluate(c->m, c->test, 1000, &h.test_acc, &h.test_loss, err);
    if (s)
        return s;
    *test_acc = h.test_acc;
    return pl__history_add(c->r, &h, err);
}

pl_status pl__history_prune_step(pl__history_ctx *c, double *acc, pl_error *err)
{
    pl_history_row h;
    memset(&h, 0, sizeof h);
    snprintf(h.phase, sizeof h.phase, "prune");
    h.step = c->step;
    h.sparsity = c->sparsity;
    h.loss = h.train_acc = NAN;
    pl_status s = pl_evaluate(c->m, c->test, 1000, &h.test_acc, &h.test_loss, err);
    if (s)
        return s;
    *acc = h.test_acc;
    return pl__history_add(c->r, &h, err);
}

pl_status pl__history_record_kept(pl_run_result *r, const pl_model *after, const pl_pruner *pr,
                                  pl_error *err)
{
    for (size_t i = 0; i < r->n_layers; i++) {
        pl_layer_result *L = &r->layers[i];
        if (strcmp(L->type, "conv2d") != 0 && strcmp(L->type, "linear") != 0)
            continue;
        int j = pl_model_find(after, L->name);
        free(L->kept);
        L->kept = NULL;
        if (j < 0) {
            L->kept = strdup("");
        } else {
            int n = 0;
            const int *idx = pl_pruner_kept(pr, j, &n);
            if (idx) {
                L->kept = pl__ranges(idx, n);
            } else {
                n = after->layers[j].out_c;
                int *all = malloc((size_t)(n > 0 ? n : 1) * sizeof *all);
                if (all) {
                    for (int u = 0; u < n; u++)
                        all[u] = u;
                    L->kept = pl__ranges(all, n);
                    free(all);
                }
            }
        }
        if (!L->kept)
            return pl_error_set(err, PL_ENOMEM, "out of memory for the kept units of %s", L->name);
    }
    return PL_OK;
}
