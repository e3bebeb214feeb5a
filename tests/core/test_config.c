/*
 * test_config.c — experiment files: decode and defaults, one test per error
 * class (exact "file:line:col" prefix), --set, sweeps, dump and run identity.
 * Runs from the source tree (fixtures in tests/fixtures/config/).
 */
#include "config.h"
#include "pltest.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIX "tests/fixtures/config/"

static pl_config *load_ok(const char *file, const char *const *sets, size_t n)
{
    pl_config *cfg = NULL;
    pl_error err = {0};
    pl_status st = pl_config_load(file, sets, n, &cfg, &err);
    cr_assert_eq(st, PL_OK, "%s", err.msg);
    cr_assert_not_null(cfg);
    return cfg;
}

static pl_experiment *run_of(const pl_config *cfg, size_t i)
{
    pl_experiment *x = NULL;
    pl_error err = {0};
    cr_assert_eq(pl_config_expand(cfg, i, &x, &err), PL_OK, "%s", err.msg);
    return x;
}

/* Loads `file` (+ sets) and returns its only run. */
static pl_experiment *load1(const char *file, const char *const *sets, size_t n)
{
    pl_config *cfg = load_ok(file, sets, n);
    cr_assert_eq(pl_config_run_count(cfg), 1);
    pl_experiment *x = run_of(cfg, 0);
    pl_config_free(cfg);
    return x;
}

/* The load must fail with PL_ECONFIG, a message starting with `prefix` and
 * containing `part`. */
static void expect_err(const char *file, const char *const *sets, size_t n, const char *prefix, const char *part)
{
    pl_config *cfg = (pl_config *)0x1;
    pl_error err = {0};
    pl_status st = pl_config_load(file, sets, n, &cfg, &err);
    cr_assert_eq(st, PL_ECONFIG, "expected a config error, got %d: %s", st, err.msg);
    cr_assert_null(cfg);
    cr_assert(strncmp(err.msg, prefix, strlen(prefix)) == 0, "message '%s' does not start with '%s'", err.msg,
              prefix);
    cr_assert(strstr(err.msg, part), "message '%s' does not contain '%s'", err.msg, part);
    cr_assert(!strchr(err.msg, '\n'), "message is not one line: %s", err.msg);
}

static const char *param(const pl_plugin_ref *r, const char *key)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (!strcmp(r->params[i].key, key))
            return r->params[i].value;
    return NULL;
}

/* ---- valid files ---------------------------------------------------------- */

Test(config, minimal_file_gets_documented_defaults)
{
    pl_experiment *x = load1(FIX "valid_min.yaml", NULL, 0);
    cr_assert_str_eq(x->name, "minimal");
    cr_assert_str_eq(x->file, FIX "valid_min.yaml");
    cr_assert_eq(x->seed, 1);
    cr_assert_str_eq(x->model, "configs/models/simple_cnn.yaml");
    cr_assert_str_eq(x->dataset.plugin, "idx");
    cr_assert_str_eq(param(&x->dataset, "path"), "data/mnist");
    cr_assert_str_eq(x->backend.plugin, "simd");
    cr_assert_eq(x->backend.n_params, 0);
    cr_assert_eq(x->train.epochs, 1);
    cr_assert_eq(x->train.batch_size, 64);
    const pl_optim_cfg *o = &x->train.optim;
    cr_assert_eq(o->type, PL_OPTIM_ADAM);
    cr_assert_eq(o->lr, 1e-3);
    cr_assert_eq(o->beta1, 0.9);
    cr_assert_eq(o->beta2, 0.999);
    cr_assert_eq(o->eps, 1e-8);
    cr_assert_eq(o->weight_decay, 0);
    cr_assert_eq(o->momentum, 0);
    cr_assert_eq(o->dampening, 0);
    cr_assert_eq(o->nesterov, 0);
    cr_assert_eq(o->lr_schedule, PL_LR_CONSTANT);
    cr_assert_eq(o->step_size, 1);
    cr_assert_eq(o->gamma, 0.1);
    cr_assert_eq(o->min_lr, 0);
    cr_assert_eq(x->retrain.epochs, 1);
    cr_assert_eq(x->finetune.epochs, 0);
    cr_assert_eq(x->retrain.batch_size, 64);
    cr_assert_eq(x->finetune.optim.lr, 1e-3);
    cr_assert_eq(x->prune.enabled, 0);
    cr_assert_eq(x->prune.granularity, PL_GRAN_CHANNEL);
    cr_assert_str_eq(x->prune.criterion.plugin, "l1");
    cr_assert_str_eq(x->prune.schedule.plugin, "oneshot");
    cr_assert_str_eq(x->report.dir, "reports/minimal");
    cr_assert_str_eq(x->report.cache, "reports/minimal/cache");
    cr_assert_eq(x->report.latency_runs, 5);
    cr_assert_eq(x->report.plots, 1);
    cr_assert_eq(x->n_plugin_path, 0);
    cr_assert_eq(x->max_runs, 1000);
    cr_assert_eq(x->run_index, 0);
    cr_assert_str_eq(x->sweep_desc, "");
    cr_assert_eq(strlen(x->run_id), 16);
    pl_experiment_free(x);
}

Test(config, full_file_decodes_every_section)
{
    pl_experiment *x = load1(FIX "valid_full.yaml", NULL, 0);
    cr_assert_str_eq(x->name, "full-1.0");
    cr_assert_eq(x->seed, 42);
    cr_assert_str_eq(x->dataset.plugin, "synthetic");
    cr_assert_str_eq(param(&x->dataset, "path"), "data/synth");
    cr_assert_str_eq(param(&x->dataset, "normalize.mean"), "0.5");
    cr_assert_str_eq(param(&x->dataset, "normalize.std"), "0.25");
    cr_assert_str_eq(x->backend.plugin, "ref");
    cr_assert_str_eq(param(&x->backend, "threads_hint"), "2");
    /* parameter positions point at the value in the file */
    for (size_t i = 0; i < x->dataset.n_params; i++)
        if (!strcmp(x->dataset.params[i].key, "path")) {
            cr_assert_str_eq(x->dataset.params[i].file, FIX "valid_full.yaml");
            cr_assert_eq(x->dataset.params[i].line, 7);
            cr_assert_eq(x->dataset.params[i].col, 9);
        }
    cr_assert_eq(x->dataset.line, 6);
    cr_assert_eq(x->train.epochs, 3);
    cr_assert_eq(x->train.batch_size, 128);
    cr_assert_eq(x->train.optim.type, PL_OPTIM_SGD);
    cr_assert_eq(x->train.optim.lr, 0.1);
    cr_assert_eq(x->train.optim.momentum, 0.9);
    cr_assert_eq(x->train.optim.nesterov, 1);
    cr_assert_eq(x->train.optim.weight_decay, 0.0005);
    cr_assert_eq(x->train.optim.lr_schedule, PL_LR_STEP);
    cr_assert_eq(x->train.optim.step_size, 2);
    cr_assert_eq(x->train.optim.gamma, 0.5);
    /* retrain inherits train, `lr:` is shorthand for optimizer.lr */
    cr_assert_eq(x->retrain.epochs, 2);
    cr_assert_eq(x->retrain.batch_size, 128);
    cr_assert_eq(x->retrain.optim.type, PL_OPTIM_SGD);
    cr_assert_eq(x->retrain.optim.lr, 0.01);
    cr_assert_eq(x->retrain.optim.momentum, 0.9);
    cr_assert_eq(x->retrain.optim.lr_schedule, PL_LR_STEP);
    cr_assert_eq(x->finetune.epochs, 1);
    cr_assert_eq(x->finetune.optim.type, PL_OPTIM_ADAM);
    cr_assert_eq(x->finetune.optim.lr, 0.0001);
    cr_assert_eq(x->finetune.optim.lr_schedule, PL_LR_COSINE);
    cr_assert_eq(x->finetune.optim.min_lr, 0.00001);
    const pl_prune_cfg *p = &x->prune;
    cr_assert_eq(p->enabled, 1);
    cr_assert_str_eq(p->criterion.plugin, "taylor");
    cr_assert_str_eq(param(&p->criterion, "batches"), "8");
    cr_assert_str_eq(p->schedule.plugin, "iterative");
    cr_assert_str_eq(param(&p->schedule, "steps"), "3");
    cr_assert_str_eq(param(&p->schedule, "ramp"), "cubic");
    cr_assert_eq(p->granularity, PL_GRAN_WEIGHT);
    cr_assert_eq(p->has_sparsity, 1);
    cr_assert_eq(p->sparsity, 0.75);
    cr_assert_eq(p->n_include, 3);
    cr_assert_str_eq(p->include[2], "fc1");
    cr_assert_eq(p->n_exclude, 1);
    cr_assert_str_eq(p->exclude[0], "fc2");
    cr_assert_eq(p->tolerance, 1);
    cr_assert_str_eq(x->report.dir, "out/full");
    cr_assert_str_eq(x->report.cache, "out/cache");
    cr_assert_eq(x->report.latency_runs, 7);
    cr_assert_eq(x->report.plots, 0);
    cr_assert_eq(x->n_plugin_path, 2);
    cr_assert_str_eq(x->plugin_path[1], "/opt/prunelab");
    cr_assert_eq(x->max_runs, 10);
    pl_experiment_free(x);
}

Test(config, seed_experiment_is_the_pytorch_example)
{
    pl_experiment *x = load1("experiments/seed.yaml", NULL, 0);
    cr_assert_str_eq(x->name, "seed");
    cr_assert_eq(x->seed, 1);
    cr_assert_str_eq(x->model, "configs/models/simple_cnn.yaml");
    cr_assert_str_eq(x->dataset.plugin, "idx");
    cr_assert_str_eq(param(&x->dataset, "path"), "data/mnist");
    cr_assert_str_eq(param(&x->dataset, "normalize.mean"), "0.1307");
    cr_assert_str_eq(param(&x->dataset, "normalize.std"), "0.3081");
    cr_assert_str_eq(x->backend.plugin, "simd");
    cr_assert_eq(x->train.epochs, 1);
    cr_assert_eq(x->train.batch_size, 64);
    cr_assert_eq(x->train.optim.type, PL_OPTIM_ADAM);
    cr_assert_eq(x->train.optim.lr, 0.001);
    cr_assert_eq(x->prune.enabled, 1);
    cr_assert_str_eq(x->prune.criterion.plugin, "l1");
    cr_assert_str_eq(x->prune.schedule.plugin, "oneshot");
    cr_assert_eq(x->prune.granularity, PL_GRAN_CHANNEL);
    cr_assert_eq(x->prune.has_sparsity, 0);
    cr_assert_eq(x->prune.n_layers, 1);
    cr_assert_str_eq(x->prune.layers[0].layer, "conv1");
    cr_assert_eq(x->prune.layers[0].count, 2);
    cr_assert_eq(x->prune.layers[0].fraction, -1);
    cr_assert_eq(x->retrain.epochs, 1);
    cr_assert_eq(x->retrain.optim.lr, 0.001);
    cr_assert_eq(x->finetune.epochs, 0);
    cr_assert_str_eq(x->report.dir, "reports/seed");
    pl_experiment_free(x);
}

/* ---- YAML errors ------------------------------------------------------------ */

Test(config_errors, not_yaml)
{
    expect_err(FIX "not_yaml.yaml", NULL, 0, FIX "not_yaml.yaml:3:18: invalid YAML", "flow mapping");
}

Test(config_errors, missing_file)
{
    pl_config *cfg;
    pl_error err;
    cr_assert_neq(pl_config_load(FIX "no_such_file.yaml", NULL, 0, &cfg, &err), PL_OK);
    cr_assert_str_eq(err.msg, FIX "no_such_file.yaml: cannot open: No such file or directory");
}

Test(config_errors, empty_file)
{
    expect_err(FIX "empty.yaml", NULL, 0, FIX "empty.yaml: empty experiment file", "");
}

Test(config_errors, tab_indented)
{
    expect_err(FIX "tab.yaml", NULL, 0, FIX "tab.yaml:4:1: invalid YAML", "tabs");
}

Test(config_errors, truncated)
{
    expect_err(FIX "truncated.yaml", NULL, 0, FIX "truncated.yaml:4:1: invalid YAML", "3:8");
}

Test(config_errors, duplicate_key)
{
    expect_err(FIX "dup_key.yaml", NULL, 0, FIX "dup_key.yaml:5:3: duplicate key 'epochs' (first at line 4)", "");
}

Test(config_errors, anchors_and_aliases)
{
    expect_err(FIX "anchor.yaml", NULL, 0, FIX "anchor.yaml:3:8: anchors (&t) are not supported", "");
}

Test(config_errors, tags)
{
    expect_err(FIX "tag.yaml", NULL, 0, FIX "tag.yaml:3:7: tags", "not supported");
}

Test(config_errors, multiple_documents)
{
    expect_err(FIX "multi_doc.yaml", NULL, 0, FIX "multi_doc.yaml:3:1: more than one YAML document", "");
}

Test(config_errors, top_level_not_a_map)
{
    expect_err(FIX "top_list.yaml", NULL, 0, FIX "top_list.yaml:1:1: an experiment file is a map", "not a list");
}

/* ---- schema errors ------------------------------------------------------------- */

Test(config_errors, unknown_key_with_suggestion)
{
    expect_err(FIX "unknown_key.yaml", NULL, 0,
               FIX "unknown_key.yaml:4:3: unknown key 'epochz' in train (did you mean 'epochs'?)", "");
}

Test(config_errors, wrong_type_integer)
{
    expect_err(FIX "wrong_type.yaml", NULL, 0,
               FIX "wrong_type.yaml:4:15: train.batch_size: expected an integer (got 'many')", "");
}

Test(config_errors, wrong_type_map)
{
    expect_err(FIX "wrong_type_map.yaml", NULL, 0, FIX "wrong_type_map.yaml:3:8: train: expected a map", "");
}

Test(config_errors, wrong_type_bool)
{
    expect_err(FIX "wrong_type_bool.yaml", NULL, 0,
               FIX "wrong_type_bool.yaml:3:17: report.plots: expected true/false (got 'yes')", "");
}

Test(config_errors, range_train_epochs)
{
    expect_err(FIX "range_epochs.yaml", NULL, 0, FIX "range_epochs.yaml:3:17: train.epochs must be >= 1 (got 0",
               "");
}

Test(config_errors, range_negative_epochs)
{
    expect_err(FIX "range_epochs_neg.yaml", NULL, 0,
               FIX "range_epochs_neg.yaml:3:19: retrain.epochs must be >= 0 (got -1)", "");
}

Test(config_errors, range_batch_size)
{
    expect_err(FIX "range_batch.yaml", NULL, 0, FIX "range_batch.yaml:3:21: train.batch_size must be >= 1 (got 0)",
               "");
}

Test(config_errors, range_lr_zero)
{
    expect_err(FIX "range_lr.yaml", NULL, 0,
               FIX "range_lr.yaml:3:25: train.optimizer.lr must be a finite number > 0 (got 0)", "");
}

Test(config_errors, range_lr_nan)
{
    expect_err(FIX "range_lr_nan.yaml", NULL, 0,
               FIX "range_lr_nan.yaml:3:16: finetune.lr must be a finite number > 0 (got nan)", "");
}

Test(config_errors, range_lr_inf)
{
    expect_err(FIX "range_lr_inf.yaml", NULL, 0,
               FIX "range_lr_inf.yaml:3:25: train.optimizer.lr must be a finite number > 0 (got inf)", "");
}

Test(config_errors, range_sparsity)
{
    expect_err(FIX "range_sparsity.yaml", NULL, 0,
               FIX "range_sparsity.yaml:3:19: prune.sparsity must be in [0, 1) (got 1;", "every unit");
}

Test(config_errors, range_fraction)
{
    expect_err(FIX "range_fraction.yaml", NULL, 0,
               FIX "range_fraction.yaml:3:36: prune.layers.conv1.fraction must be in [0, 1) (got 1.5", "");
}

Test(config_errors, range_count)
{
    expect_err(FIX "range_count.yaml", NULL, 0,
               FIX "range_count.yaml:3:33: prune.layers.conv1.count must be >= 0 (got -1)", "");
}

Test(config_errors, range_beta)
{
    expect_err(FIX "range_beta.yaml", NULL, 0,
               FIX "range_beta.yaml:3:28: train.optimizer.beta2 must be in [0, 1) (got 1)", "");
}

Test(config_errors, range_eps)
{
    expect_err(FIX "range_eps.yaml", NULL, 0,
               FIX "range_eps.yaml:3:26: train.optimizer.eps must be a finite number > 0 (got 0)", "");
}

Test(config_errors, range_momentum)
{
    expect_err(FIX "range_momentum.yaml", NULL, 0,
               FIX "range_momentum.yaml:3:42: train.optimizer.momentum must be a finite number >= 0 (got -0.5)", "");
}

Test(config_errors, range_latency_runs)
{
    expect_err(FIX "range_latency.yaml", NULL, 0,
               FIX "range_latency.yaml:3:24: report.latency_runs must be >= 1 (got 0", "");
}

Test(config_errors, range_max_runs)
{
    expect_err(FIX "range_max_runs.yaml", NULL, 0,
               FIX "range_max_runs.yaml:3:20: limits.max_runs must be >= 1 (got 0)", "");
}

Test(config_errors, missing_name)
{
    expect_err(FIX "missing_name.yaml", NULL, 0, FIX "missing_name.yaml:1:1: missing required key 'name'", "");
}

Test(config_errors, missing_model)
{
    /* reported at the map's position, which starts after the comment */
    expect_err(FIX "missing_model.yaml", NULL, 0, FIX "missing_model.yaml:2:1: missing required key 'model'", "");
}

Test(config_errors, bad_experiment_name)
{
    expect_err(FIX "bad_name.yaml", NULL, 0, FIX "bad_name.yaml:1:7: name 'a b' must match [A-Za-z0-9_.-]+", "");
}

Test(config_errors, sparsity_and_layers)
{
    expect_err(FIX "sparsity_layers.yaml", NULL, 0, FIX "sparsity_layers.yaml:5:11: prune: give either sparsity",
               "not both");
}

Test(config_errors, prune_without_target)
{
    expect_err(FIX "prune_empty.yaml", NULL, 0, FIX "prune_empty.yaml:3:8: prune: missing 'sparsity'", "layers");
}

Test(config_errors, lr_shorthand_and_optimizer_lr)
{
    expect_err(FIX "lr_both.yaml", NULL, 0, FIX "lr_both.yaml:3:15: retrain.lr: give retrain.lr or", "not both");
}

Test(config_errors, plugin_name_with_slash)
{
    expect_err(FIX "plugin_slash.yaml", NULL, 0,
               FIX "plugin_slash.yaml:3:20: prune.criterion: plugin name 'a/b' must match [a-z0-9_]+ "
                   "(a name, never a path)", "");
}

Test(config_errors, plugin_name_with_dotdot)
{
    expect_err(FIX "plugin_dotdot.yaml", NULL, 0,
               FIX "plugin_dotdot.yaml:3:19: backend: plugin name '../x' must match [a-z0-9_]+", "never a path");
}

Test(config_errors, plugin_name_upper_case)
{
    expect_err(FIX "plugin_upper.yaml", NULL, 0, FIX "plugin_upper.yaml:3:10: dataset: plugin name 'MNIST'", "");
}

/* ---- --set ------------------------------------------------------------------------ */

Test(config_set, unknown_key_with_suggestion)
{
    const char *sets[] = {"prune.sparsityy=0.5"};
    expect_err(FIX "valid_min.yaml", sets, 1,
               "--set prune.sparsityy=0.5: unknown key 'sparsityy' in prune (did you mean 'sparsity'?)", "");
}

Test(config_set, bad_values_are_checked_like_the_file)
{
    const char *s1[] = {"train.epochs=0"};
    expect_err(FIX "valid_min.yaml", s1, 1, "--set train.epochs=0: train.epochs must be >= 1", "");
    const char *s2[] = {"prune.criterion=../x", "prune.sparsity=0.5"};
    expect_err(FIX "valid_min.yaml", s2, 2, "--set prune.criterion=../x: prune.criterion: plugin name '../x'", "");
    const char *s3[] = {"seed.x=1"};
    expect_err(FIX "valid_min.yaml", s3, 1, "--set seed.x=1: unknown key 'x' in seed", "");
    const char *s4[] = {"prune.sparsity"};
    expect_err(FIX "valid_min.yaml", s4, 1, "--set prune.sparsity: expected key=value", "");
    const char *s5[] = {"sweep.seed=1"};
    expect_err(FIX "valid_min.yaml", s5, 1, "--set sweep.seed=1: 'sweep' cannot be set", "");
}

Test(config_set, values_override_the_file_and_create_sections)
{
    const char *sets[] = {"seed=7", "finetune.epochs=2", "prune.sparsity=0.25", "prune.include=conv1",
                          "report.dir=/tmp/elsewhere", "name=renamed"};
    pl_experiment *x = load1(FIX "valid_min.yaml", sets, 6);
    cr_assert_eq(x->seed, 7);
    cr_assert_eq(x->finetune.epochs, 2);
    cr_assert_eq(x->prune.enabled, 1);
    cr_assert_eq(x->prune.sparsity, 0.25);
    cr_assert_eq(x->prune.n_include, 1);
    cr_assert_str_eq(x->prune.include[0], "conv1");
    cr_assert_str_eq(x->report.dir, "/tmp/elsewhere");
    cr_assert_str_eq(x->report.cache, "/tmp/elsewhere/cache");
    cr_assert_str_eq(x->name, "renamed");
    pl_experiment_free(x);
}

/* `--set X=NAME` and `--set X.plugin=NAME` set the name in either form */
static void check_plugin_forms(const char *file, const char *set, const char *want_batches)
{
    const char *sets[] = {set, "prune.sparsity=0.5"};
    pl_experiment *x = load1(file, sets, 2);
    cr_assert_str_eq(x->prune.criterion.plugin, "l2", "%s with %s", file, set);
    if (want_batches)
        cr_assert_str_eq(param(&x->prune.criterion, "batches"), want_batches);
    else
        cr_assert_eq(x->prune.criterion.n_params, 0);
    pl_experiment_free(x);
}

Test(config_set, plugin_name_in_scalar_and_map_form)
{
    check_plugin_forms(FIX "valid_min.yaml", "prune.criterion=l2", NULL);
    check_plugin_forms(FIX "valid_min.yaml", "prune.criterion.plugin=l2", NULL);
    check_plugin_forms(FIX "plugin_map.yaml", "prune.criterion=l2", "4");
    check_plugin_forms(FIX "plugin_map.yaml", "prune.criterion.plugin=l2", "4");
    /* the same for schedule, dataset and backend */
    const char *sets[] = {"prune.schedule.plugin=iterative", "dataset=synthetic", "backend.plugin=ref"};
    pl_experiment *x = load1(FIX "plugin_map.yaml", sets, 3);
    cr_assert_str_eq(x->prune.schedule.plugin, "iterative");
    cr_assert_str_eq(x->dataset.plugin, "synthetic");
    cr_assert_str_eq(x->backend.plugin, "ref");
    pl_experiment_free(x);
}

Test(config_set, plugin_parameters_pass_through)
{
    const char *sets[] = {"prune.criterion.batches=8", "dataset.normalize.mean=0.5"};
    pl_experiment *x = load1("experiments/seed.yaml", sets, 2);
    cr_assert_str_eq(x->prune.criterion.plugin, "l1");
    cr_assert_str_eq(param(&x->prune.criterion, "batches"), "8");
    for (size_t i = 0; i < x->prune.criterion.n_params; i++) {
        cr_assert_str_eq(x->prune.criterion.params[i].file, "--set prune.criterion.batches=8");
        cr_assert_eq(x->prune.criterion.params[i].line, 0);
    }
    cr_assert_str_eq(param(&x->dataset, "normalize.mean"), "0.5");
    cr_assert_str_eq(param(&x->dataset, "normalize.std"), "0.3081");
    pl_experiment_free(x);
}

/* ---- sweeps ----------------------------------------------------------------------- */

Test(config_sweep, expands_in_written_order_last_key_fastest)
{
    pl_config *cfg = load_ok(FIX "sweep.yaml", NULL, 0);
    cr_assert_eq(pl_config_run_count(cfg), 3 * 2 * 2 * 2);
    cr_assert_eq(pl_config_sweep_axes(cfg), 4);
    size_t nv;
    cr_assert_str_eq(pl_config_sweep_key(cfg, 0, &nv), "prune.criterion");
    cr_assert_eq(nv, 3);
    cr_assert_str_eq(pl_config_sweep_key(cfg, 3, &nv), "seed");
    cr_assert_eq(nv, 2);
    cr_assert_str_eq(pl_config_sweep_value(cfg, 0, 2), "random");
    cr_assert_null(pl_config_sweep_value(cfg, 0, 3));

    static const char *crit[] = {"l1", "l2", "random"};
    static const char *sched[] = {"oneshot", "iterative"};
    static const double sp[] = {0.5, 0.75};
    for (size_t i = 0; i < 24; i++) {
        pl_experiment *x = run_of(cfg, i);
        cr_assert_eq(x->run_index, i);
        cr_assert_str_eq(x->prune.criterion.plugin, crit[i / 8]);
        cr_assert_str_eq(x->prune.schedule.plugin, sched[(i / 4) % 2]);
        cr_assert_eq(x->prune.sparsity, sp[(i / 2) % 2]);
        cr_assert_eq(x->seed, 1 + i % 2);
        if (i == 5)
            cr_assert_str_eq(x->sweep_desc,
                             "prune.criterion=l1 prune.schedule.plugin=iterative prune.sparsity=0.5 seed=2");
        pl_experiment_free(x);
    }
    pl_experiment *x = NULL;
    pl_error err;
    cr_assert_neq(pl_config_expand(cfg, 24, &x, &err), PL_OK);
    cr_assert_null(x);
    pl_config_free(cfg);
}

Test(config_sweep, zero_runs)
{
    expect_err(FIX "sweep_zero.yaml", NULL, 0, FIX "sweep_zero.yaml:5:19: sweep 'prune.sparsity' has no values",
               "zero runs");
}

Test(config_sweep, beyond_max_runs)
{
    expect_err(FIX "sweep_too_many.yaml", NULL, 0,
               FIX "sweep_too_many.yaml:6:3: sweep expands to 6 runs, more than limits.max_runs = 5", "");
    const char *sets[] = {"limits.max_runs=6"};
    pl_config *cfg = load_ok(FIX "sweep_too_many.yaml", sets, 1);
    cr_assert_eq(pl_config_run_count(cfg), 6);
    pl_config_free(cfg);
}

Test(config_sweep, every_run_is_validated_at_the_sweep_value)
{
    expect_err(FIX "sweep_bad_value.yaml", NULL, 0,
               FIX "sweep_bad_value.yaml:5:30: prune.sparsity must be in [0, 1) (got 1.5", "");
}

Test(config_sweep, keys_are_checked)
{
    expect_err(FIX "sweep_unknown_key.yaml", NULL, 0,
               FIX "sweep_unknown_key.yaml:4:3: unknown key 'epochz' in train (did you mean 'epochs'?)", "");
}

/* ---- dump and identity ----------------------------------------------------------- */

static void ids(const char *file, const char *const *sets, size_t n, char run_id[17], char base[17])
{
    pl_experiment *x = load1(file, sets, n);
    memcpy(run_id, x->run_id, 17);
    pl_experiment_baseline_key(x, base);
    pl_experiment_free(x);
}

Test(config_identity, run_id_ignores_output_and_name_but_not_sparsity)
{
    char a[17], b[17], c[17], d[17], ba[17], bb[17], bc[17], bd[17];
    const char *s0[] = {"prune.sparsity=0.5"};
    const char *s1[] = {"prune.sparsity=0.5", "report.dir=/tmp/out", "name=other", "limits.max_runs=3",
                        "report.latency_runs=9"};
    const char *s2[] = {"prune.sparsity=0.75"};
    const char *s3[] = {"prune.sparsity=0.5", "seed=2"};
    ids(FIX "valid_min.yaml", s0, 1, a, ba);
    ids(FIX "valid_min.yaml", s1, 5, b, bb);
    ids(FIX "valid_min.yaml", s2, 1, c, bc);
    ids(FIX "valid_min.yaml", s3, 2, d, bd);
    cr_assert_eq(strlen(a), 16);
    cr_assert_eq(strspn(a, "0123456789abcdef"), 16);
    cr_assert_str_eq(a, b);
    cr_assert_str_neq(a, c);
    cr_assert_str_neq(a, d);
    /* the baseline depends on seed, model, dataset, backend and train only */
    cr_assert_str_eq(ba, bb);
    cr_assert_str_eq(ba, bc);
    cr_assert_str_neq(ba, bd);
    /* same config, same id, load after load */
    char a2[17], ba2[17];
    ids(FIX "valid_min.yaml", s0, 1, a2, ba2);
    cr_assert_str_eq(a, a2);
}

/* prune.recalibrate_bn: 0 (the default) keeps every older run id; a number
 * makes a different run on the same baseline */
Test(config_identity, recalibrate_bn_only_when_set)
{
    char a[17], b[17], c[17], ba[17], bb[17], bc[17];
    const char *s0[] = {"prune.sparsity=0.5"};
    const char *s1[] = {"prune.sparsity=0.5", "prune.recalibrate_bn=0"};
    const char *s2[] = {"prune.sparsity=0.5", "prune.recalibrate_bn=50"};
    ids(FIX "valid_min.yaml", s0, 1, a, ba);
    ids(FIX "valid_min.yaml", s1, 2, b, bb);
    ids(FIX "valid_min.yaml", s2, 2, c, bc);
    cr_assert_str_eq(a, b);
    cr_assert_str_neq(a, c);
    cr_assert_str_eq(ba, bc);
    pl_experiment *x = load1(FIX "valid_min.yaml", s2, 2);
    char *d = pl_experiment_dump(x);
    cr_assert(strstr(d, "prune.recalibrate_bn: 50\n"), "%s", d);
    free(d);
    pl_experiment_free(x);
}

Test(config_identity, dump_is_complete_and_canonical)
{
    pl_experiment *x = load1("experiments/seed.yaml", NULL, 0);
    char *d = pl_experiment_dump(x);
    cr_assert_not_null(d);
    static const char *lines[] = {
        "name: seed\n", "seed: 1\n", "model: configs/models/simple_cnn.yaml\n", "dataset.plugin: idx\n",
        "dataset.normalize.mean: 0.1307\n", "dataset.path: data/mnist\n", "backend.plugin: simd\n",
        "train.optimizer.lr: 0.001\n", "train.optimizer.beta1: 0.90000000000000002\n",
        "retrain.epochs: 1\n", "finetune.epochs: 0\n", "prune.criterion.plugin: l1\n",
        "prune.layers.conv1.count: 2\n", "report.dir: reports/seed\n", "limits.max_runs: 1000\n"};
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        cr_assert(strstr(d, lines[i]), "dump lacks '%s':\n%s", lines[i], d);
    /* parameters are sorted: normalize.* before path */
    cr_assert_lt(strstr(d, "dataset.normalize.std"), strstr(d, "dataset.path"));
    char *d2 = pl_experiment_dump(x);
    cr_assert_str_eq(d, d2);
    free(d);
    free(d2);
    pl_experiment_free(x);
}

/* ---- model_init: and train.epochs: 0 (given weights) -------------------------------- */

Test(config_model_init, absent_keeps_the_dump_and_ids)
{
    pl_experiment *x = load1(FIX "valid_min.yaml", NULL, 0);
    char *d = pl_experiment_dump(x);
    cr_assert_null(strstr(d, "model_init"), "%s", d);
    cr_assert_null(x->model_init);
    free(d);
    pl_experiment_free(x);
}

Test(config_model_init, path_is_in_the_ids_without_an_identity)
{
    char a[17], b[17], c[17], ba[17], bb[17], bc[17];
    const char *s1[] = {"model_init=one.ckpt"};
    const char *s2[] = {"model_init=two.ckpt"};
    ids(FIX "valid_min.yaml", NULL, 0, a, ba);
    ids(FIX "valid_min.yaml", s1, 1, b, bb);
    ids(FIX "valid_min.yaml", s2, 1, c, bc);
    cr_assert_str_neq(a, b);
    cr_assert_str_neq(b, c);
    cr_assert_str_neq(ba, bb); /* the baseline starts from it */
    cr_assert_str_neq(bb, bc);
    pl_experiment *x = load1(FIX "valid_min.yaml", s1, 1);
    char *d = pl_experiment_dump(x);
    cr_assert(strstr(d, "\nmodel_init: one.ckpt\n"), "%s", d);
    cr_assert_str_eq(x->model_init, "one.ckpt");
    cr_assert_eq(x->model_init_line, 0); /* from --set: blamed on the --set */
    free(d);
    pl_experiment_free(x);
}

/* with an identity, model_init's digest ("model.init:") stands for it, not its path */
Test(config_model_init, content_is_the_identity)
{
    const char *s1[] = {"model_init=one.ckpt"};
    const char *s2[] = {"model_init=elsewhere/two.ckpt"};
    char id_a[17], id_b[17], id_c[17], k_a[17], k_b[17], k_c[17];
    const char *lines[3] = {"model.content: sha256:00\nmodel.init: sha256:aa\n",
                            "model.content: sha256:00\nmodel.init: sha256:aa\n",
                            "model.content: sha256:00\nmodel.init: sha256:bb\n"};
    const char *const *sets[3] = {s1, s2, s1};
    char *idv[3] = {id_a, id_b, id_c}, *kv[3] = {k_a, k_b, k_c};
    for (int i = 0; i < 3; i++) {
        pl_experiment *x = load1(FIX "valid_min.yaml", sets[i], 1);
        char *ident = strdup(lines[i]);
        cr_assert_eq(pl_experiment_set_identity(x, ident), PL_OK);
        memcpy(idv[i], x->run_id, 17);
        cr_assert_eq(pl_experiment_baseline_key(x, kv[i]), PL_OK);
        pl_experiment_free(x);
    }
    cr_assert_str_eq(id_a, id_b); /* same bytes under another name: the same run */
    cr_assert_str_eq(k_a, k_b);
    cr_assert_str_neq(id_a, id_c); /* other bytes: another run, another baseline */
    cr_assert_str_neq(k_a, k_c);
}

Test(config_model_init, epochs_zero_needs_weights)
{
    const char *s0[] = {"train.epochs=0"};
    expect_err(FIX "valid_min.yaml", s0, 1,
               "--set train.epochs=0: train.epochs must be >= 1 (got 0; the baseline needs at least one epoch",
               "needs model_init: FILE.ckpt or an .onnx model");
    const char *s1[] = {"train.epochs=0", "model_init=base.ckpt"};
    pl_experiment *x = load1(FIX "valid_min.yaml", s1, 2);
    cr_assert_eq(x->train.epochs, 0);
    pl_experiment_free(x);
    const char *s2[] = {"train.epochs=0", "model=net.onnx"};
    x = load1(FIX "valid_min.yaml", s2, 2);
    cr_assert_eq(x->train.epochs, 0);
    pl_experiment_free(x);
    const char *s3[] = {"train.epochs=-1", "model_init=base.ckpt"};
    expect_err(FIX "valid_min.yaml", s3, 2, "--set train.epochs=-1: train.epochs must be >= 0 (got -1)", "");
    const char *s4[] = {"model_init="};
    expect_err(FIX "valid_min.yaml", s4, 1, "--set model_init=: model_init: expected", "");
    const char *s5[] = {"model_int=a.ckpt"};
    expect_err(FIX "valid_min.yaml", s5, 1, "--set model_int=a.ckpt: unknown key 'model_int' at top level (did you mean 'model_init'?)", "");
}

/* ---- helpers ------------------------------------------------------------------------ */

Test(config_helpers, suggest_uses_edit_distance)
{
    static const char *const c[] = {"epochs", "batch_size", "optimizer", "lr_schedule"};
    cr_assert_str_eq(pl_suggest("epochz", c, 4), "epochs");
    cr_assert_str_eq(pl_suggest("batchsize", c, 4), "batch_size");
    cr_assert_str_eq(pl_suggest("optimiser", c, 4), "optimizer");
    cr_assert_null(pl_suggest("lr", c, 4));
    cr_assert_null(pl_suggest("zzzzzz", c, 4));
    static const char *const d[] = {"p", "eps"};
    cr_assert_str_eq(pl_suggest("q", d, 2), "p"); /* distance 1 always allowed */
}

Test(config_helpers, yaml_tree_keeps_positions)
{
    pl_node *root;
    pl_error err;
    const char *text = "a: 1\nb:\n  c: 'x'\n  d: [1, 2]\n";
    cr_assert_eq(pl_yaml_parse_string("mem", text, &root, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(root->type, PL_NODE_MAP);
    cr_assert_str_eq(root->file, "mem");
    const pl_node *b = pl_node_get(root, "b");
    cr_assert_eq(b->type, PL_NODE_MAP);
    cr_assert_eq(root->key_line[1], 2);
    cr_assert_eq(root->key_col[1], 1);
    const pl_node *c = pl_node_get(b, "c");
    cr_assert_str_eq(c->scalar, "x");
    cr_assert_eq(c->quoted, 1);
    cr_assert_eq(c->line, 3);
    cr_assert_eq(c->col, 6);
    const pl_node *d = pl_node_get(b, "d");
    cr_assert_eq(d->type, PL_NODE_SEQ);
    cr_assert_eq(d->n, 2);
    cr_assert_eq(d->items[1]->col, 10);
    cr_assert_null(pl_node_get(root, "zz"));
    cr_assert_null(pl_node_get(c, "x"));
    pl_node *copy = pl_node_clone(root);
    cr_assert_str_eq(pl_node_get(pl_node_get(copy, "b"), "c")->scalar, "x");
    pl_node_free(copy);
    pl_node_free(root);

    cr_assert_eq(pl_yaml_parse_string("mem", "a: [1, {b: 2}]\n? [x]\n: 3\n", &root, &err), PL_ECONFIG);
    cr_assert_str_eq(err.msg, "mem:2:3: keys must be plain scalars, not maps or lists");
}

/* docs/config-keys.md is the schema's own text: `prunelab config-keys` and
 * pl_config_keys_markdown both print it, so a key cannot change without its
 * documentation (regenerate: build/prunelab config-keys > docs/config-keys.md). */
Test(config, key_reference_is_generated_from_the_schema)
{
    char *md = pl_config_keys_markdown();
    cr_assert(md);
    pltest_generated_doc("docs/config-keys.md", "config-keys", md);
    /* one row a key, written where the key is decoded: spot checks */
    cr_expect(strstr(md, "| `train.optimizer.lr` | number | 0.001 | a finite number > 0 |"));
    cr_expect(strstr(md, "| `prune.granularity` | choice | channel | weight, channel, neuron, layer |"));
    cr_expect(strstr(md, "| `dataset.augment.crop_pad` | integer | 0 | [0, 4096] pixels |"));
    cr_expect(strstr(md, "| `limits.max_runs` | integer | 1000 | >= 1 |"));
    cr_expect(!strstr(md, "`retrain.epochs`"), "retrain's keys are train's, listed once");
    free(md);
}
