/*
 * run_validate.c — `prunelab validate`: every run of a sweep resolved and
 * its plugins checked, without training.
 */
#include "onnx_import.h"
#include "run_internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- validate --------------------------------------------------------------------------------- */

static void print_ref(FILE *f, const char *what, const pl_plugin_ref *r, pl_registry *reg, pl_kind k)
{
    const pl_plugin *p;
    pl_error e;
    fprintf(f, "  %-10s %s", what, r->plugin);
    for (size_t i = 0; i < r->n_params; i++)
        fprintf(f, "%s%s=%s", i ? ", " : " (", r->params[i].key, r->params[i].value);
    if (r->n_params)
        fputc(')', f);
    if (pl_registry_find(reg, k, r->plugin, &p, &e) == PL_OK)
        fprintf(f, "  [%s %s]", pl_plugin_path(p), pl_plugin_get_desc(p)->version);
    fputc('\n', f);
}

static void print_phase(FILE *f, const char *name, const pl_phase_cfg *p)
{
    fprintf(f, "  %-10s %d epoch(s), batch %d, %s lr %g", name, p->epochs, p->batch_size,
            p->optim.type == PL_OPTIM_ADAM ? "adam" : "sgd", p->optim.lr);
    if (p->optim.weight_decay)
        fprintf(f, ", weight decay %g", p->optim.weight_decay);
    if (p->optim.type == PL_OPTIM_SGD && p->optim.momentum)
        fprintf(f, ", momentum %g%s", p->optim.momentum, p->optim.nesterov ? " (nesterov)" : "");
    if (p->reg.type) { /* regularize */
        fprintf(f, ", regularize %s %g on ", pl_reg_type_name(p->reg.type), p->reg.coef);
        for (size_t i = 0; i < p->reg.n_layers; i++)
            fprintf(f, "%s%s", i ? "," : "", p->reg.layers[i]);
        if (!p->reg.n_layers)
            fprintf(f, p->reg.type == PL_REG_BN_L1 ? "every batchnorm2d" : "all but the output layer");
    }
    if (p->distill.enabled) /* distill.h */
        fprintf(f, ", distill from the dense baseline (alpha %g, temperature %g)", p->distill.alpha,
                p->distill.temperature);
    fputc('\n', f);
}


pl_status pl_validate_config(pl_registry *reg, const pl_config *cfg, FILE *out, pl_error *err)
{
    pl_identity *id = pl_identity_new(reg);
    if (!id)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    pl_status s = pl__run_validate_config(reg, cfg, out, id, NULL, err);
    pl_identity_free(id);
    return s;
}

pl_status pl__run_validate_config(pl_registry *reg, const pl_config *cfg, FILE *out, pl_identity *id,
                                 volatile sig_atomic_t *intr, pl_error *err)
{
    size_t n = pl_config_run_count(cfg);
    for (size_t i = 0; i < n; i++) {
        if (intr && *intr)
            return pl_error_set(err, PL_EINTR, "interrupted while checking run %zu of %zu; nothing was run "
                                "or written (run the command again)", i + 1, n);
        pl_experiment *x;
        pl_status s = pl_config_expand(cfg, i, &x, err);
        if (s)
            return s;
        pl_runenv e;
        s = pl__runenv_open(reg, x, 1, 0, NULL, &e, err);
        pl_model *m = NULL;
        if (!s)
            s = pl_model_new(e.spec, x->seed, &m, err);
        pl_pruner pr = {0};
        if (!s && x->prune.enabled)
            s = pl_pruner_init(&pr, m, &x->prune, e.crit, e.sched, err);
        /* after the checks above, so their errors come first; opens the data */
        if (!s)
            s = pl_identity_apply(id, x, err);
        /* the data after the model: it must fit it (the identity opened it once per
         * distinct dataset of the sweep) */
        if (!s) {
            pl_runenv d = {.spec = e.spec};
            if (pl_identity_borrow_data(id, x, &d.train, &d.test))
                s = pl__run_check_fit(x, &d, err);
        }
        if (!s && out && (i == 0 || n <= 12)) {
            if (i == 0) {
                fprintf(out, "experiment %s (%s): %zu run(s)\n", x->name, x->file, n);
                size_t na = pl_config_sweep_axes(cfg);
                for (size_t a = 0; a < na; a++) {
                    size_t nv;
                    const char *k = pl_config_sweep_key(cfg, a, &nv);
                    fprintf(out, "  sweep %s: %zu value(s)\n", k, nv);
                }
                fputc('\n', out);
                pl_model_print(m, out);
                if (e.spec && e.spec->weights && e.spec->weights->note[0]) /* an ONNX import's packing */
                    fprintf(out, "  note: %s\n", e.spec->weights->note);
                fprintf(out, "\nplugins:\n");
                print_ref(out, "backend", &x->backend, reg, PL_KIND_BACKEND);
                print_ref(out, "dataset", &x->dataset, reg, PL_KIND_DATASET);
                if (x->augment.crop_pad > 0 || x->augment.hflip) /* dataset.augment (augment.h) */
                    fprintf(out, "  augment    crop_pad %d, hflip %s (training batches only)\n", x->augment.crop_pad,
                            x->augment.hflip ? "true" : "false");
                if (x->prune.enabled) {
                    print_ref(out, "criterion", &x->prune.criterion, reg, PL_KIND_CRITERION);
                    print_ref(out, "schedule", &x->prune.schedule, reg, PL_KIND_SCHEDULE);
                }
                fprintf(out, "\nphases:\n");
                print_phase(out, "train", &x->train);
                if (x->model_init) /* given weights */
                    fprintf(out, "  init       %s (%s)\n", x->model_init,
                            x->train.epochs ? "trained further by train" : "the baseline as it is");
            }
            if (n > 1)
                fprintf(out, "run %zu/%zu %s  %s\n", i + 1, n, x->run_id, x->sweep_desc);
            else
                fprintf(out, "  run id     %s\n", x->run_id);
            if (x->prune.enabled) {
                fprintf(out, "  prune      %s granularity, %d step(s):", pl_granularity_name(pr.gran),
                        pr.plan.n_steps);
                for (int k = 0; k < pr.plan.n_steps; k++)
                    fprintf(out, " %.4f", pr.plan.progress[k]);
                fprintf(out, " of the target%s\n", pr.global ? " (one global ranking)" : "");
                if (pr.bn_batches > 0) {
                    int n_bn = 0;
                    for (int k = 0; k < m->n_layers; k++)
                        n_bn += m->layers[k].type == PL_LAYER_BATCHNORM2D;
                    if (n_bn)
                        fprintf(out, "             then re-estimate %d batchnorm(s)' running statistics over %d "
                                "training batch(es) of %d\n", n_bn, pr.bn_batches, x->train.batch_size);
                    else
                        fprintf(out, "             recalibrate_bn: the model has no batchnorm, nothing to "
                                "re-estimate\n");
                }
                if (pr.gran == PL_GRAN_LAYER) { /* whole blocks */
                    fprintf(out, "             remove %lld of %d removable layer(s):", (long long)pr.layer_goal, pr.n);
                    for (int k = 0; k < pr.n; k++)
                        fprintf(out, " %s", m->layers[pr.t[k].layer].name);
                    fputc('\n', out);
                }
                for (int k = 0; k < pr.n && pr.gran != PL_GRAN_LAYER; k++)
                    fprintf(out, "             %-10s remove %lld of %lld %s\n",
                            m->layers[pr.t[k].layer].name, (long long)pr.t[k].remove,
                            (long long)pr.t[k].units,
                            pr.gran == PL_GRAN_WEIGHT ? "weights" : pr.gran == PL_GRAN_CHANNEL ? "channels" : "neurons");
                pl_pruner_print_groups(&pr, out);
                if (i == 0 || n == 1)
                    print_phase(out, "retrain", &x->retrain);
            }
            if (i == 0 || n == 1) {
                if (x->finetune.epochs > 0)
                    print_phase(out, "finetune", &x->finetune);
                fprintf(out, "  report     %s\n", x->report.dir);
            }
        }
        pl_pruner_free(&pr);
        pl_model_free(m);
        pl__runenv_free(&e);
        pl_experiment_free(x);
        if (s)
            return s;
    }
    if (out && n > 12)
        fprintf(out, "... and %zu more run(s), all valid\n", n - 1);
    return PL_OK;
}
