/* main.c — the prunelab command line. The only place that prints errors and
 * chooses exit codes: 0 ok, 1 a run failed / compare found a regression,
 * 2 usage or configuration error. */
#include "bench.h"
#include "cli_help.h"
#include "config.h"
#include "model_eval.h"
#include "onnx_export.h"
#include "onnx_import.h"
#include "plugin_check.h"
#include "registry.h"
#include "result.h"
#include "run.h"
#include "sensitivity.h"
#include "share_path.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void pl_log_set_level(int level);

static volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static const char usage[] =
    "usage: prunelab <command> [options]\n"
    "\n"
    "commands:\n"
    "  run EXPERIMENT.yaml [--set key=value]... [--out DIR] [--shard I/N] [--executor NAME]\n"
    "                         train, prune, retrain, fine-tune, evaluate; write the report\n"
    "  validate EXPERIMENT.yaml [--set key=value]...\n"
    "                         check the experiment and print the resolved plan\n"
    "  sensitivity EXPERIMENT.yaml [--ratios R,...] [--max-drop POINTS] [--set key=value]... [--out DIR]\n"
    "                         prune each layer (or group) alone at each ratio, no retraining\n"
    "  plugins                list the plugins found (kind, name, version, file)\n"
    "  plugin-check NAME|FILE.so [--kind K]\n"
    "                         run a plugin (name or .so path) through its contract; exit 1 if a check fails\n"
    "  compare BASELINE.csv CURRENT.csv [--tolerance acc=0.5,params=0,macs=0] [--only-common]\n"
    "                         exit 1 when a metric moved beyond tolerance\n"
    "  report DIR             rebuild results.csv/.md, layers.csv and plots from DIR/runs\n"
    "  export CKPT -o FILE.onnx [--fold-bn]\n"
    "                         write a checkpoint as ONNX (opset 13) for other runtimes\n"
    "  eval MODEL [EXPERIMENT.yaml] [--set dataset...]... [--logits FILE.csv]\n"
    "                         test accuracy, params and MACs of a checkpoint or ONNX file\n"
    "  bench [--backend NAME]... [--model FILE] [--runs N] [--csv FILE]\n"
    "                         speed on this machine: training epoch, inference, FMA peak,\n"
    "                         vgg_mini convolutions, sparse LeNet-300-100 (1 and --threads)\n"
    "\n"
    "global options:\n"
    "  --plugin-path DIR      search DIR for plugins first (repeatable)\n"
    "  --threads N            worker threads for the backend (default: all cores)\n"
    "  --quiet                only errors and the final table\n"
    "  --help, --version      (prunelab COMMAND --help: that command's options and an example)\n"
    "\n"
    "exit status: 0 success, 1 a run failed or compare found a regression, 2 usage or\n"
    "configuration error. See README.md for the experiment format.\n";

typedef struct cli {
    const char *cmd;
    const char *args[4];
    int n_args;
    const char *sets[256];
    size_t n_sets;
    const char *paths[32];
    int n_paths;
    const char *out;
    const char *tolerance;
    const char *backends[8];
    int n_backends;
    const char *model;
    const char *csv;  /* bench --csv */
    const char *kind; /* plugin-check --kind */
    int runs;
    int threads;
    int quiet;
    int shard_i, shard_n;
    const char *executor; /* run --executor */
    const char *ratios;   /* sensitivity --ratios */
    const char *max_drop; /* sensitivity --max-drop */
    const char *output;   /* export -o */
    int fold_bn;          /* export --fold-bn */
    const char *logits;   /* eval --logits */
    int help;              /* --help: the command's own help when one is given */
    int only_common;       /* compare --only-common */
    const char *given[16]; /* options given, checked against the command (cli_help.c) */
    int n_given;
} cli;

static void note_option(cli *c, const char *opt)
{
    for (int i = 0; i < c->n_given; i++)
        if (!strcmp(c->given[i], opt))
            return;
    if (c->n_given < 16)
        c->given[c->n_given++] = opt;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "prunelab: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see prunelab --help)\n");
    return 2;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, cli *c)
{
    memset(c, 0, sizeof *c);
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    c->threads = nproc > 0 ? (int)(nproc > 64 ? 64 : nproc) : 1;
    c->runs = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
#define TAKE(opt)                                                                                  \
    (!strcmp(a, opt) ? (i + 1 < argc ? (val = argv[++i], 1) : -1)                                 \
                     : (!strncmp(a, opt "=", sizeof(opt)) ? (val = a + sizeof(opt), 1) : 0))
        int t;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            c->help = 1;
        } else if (!strcmp(a, "--only-common")) {
            c->only_common = 1;
            note_option(c, "--only-common");
        } else if (!strcmp(a, "--fold-bn")) {
            c->fold_bn = 1;
            note_option(c, "--fold-bn");
        } else if (!strcmp(a, "--version")) {
            c->cmd = "version";
            return 0;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            c->quiet = 1;
            note_option(c, "--quiet");
        } else if ((t = TAKE("--set")) != 0) {
            note_option(c, "--set");
            if (t < 0)
                return usage_error("%s needs key=value", a);
            if (c->n_sets >= 256)
                return usage_error("too many %s options", "--set");
            c->sets[c->n_sets++] = val;
        } else if ((t = TAKE("--plugin-path")) != 0) {
            note_option(c, "--plugin-path");
            if (t < 0 || c->n_paths >= 32)
                return usage_error("%s needs a directory (at most 32)", a);
            c->paths[c->n_paths++] = val;
        } else if ((t = TAKE("--out")) != 0) {
            note_option(c, "--out");
            if (t < 0 || !*val)
                return usage_error("%s needs a directory", a);
            c->out = val;
        } else if ((t = TAKE("--tolerance")) != 0) {
            note_option(c, "--tolerance");
            if (t < 0)
                return usage_error("%s needs key=value,...", a);
            c->tolerance = val;
        } else if ((t = TAKE("--backend")) != 0) {
            note_option(c, "--backend");
            if (t < 0 || c->n_backends >= 8)
                return usage_error("%s needs a backend name", a);
            c->backends[c->n_backends++] = val;
        } else if ((t = TAKE("--kind")) != 0) {
            note_option(c, "--kind");
            if (t < 0)
                return usage_error("%s needs criterion, schedule, dataset or backend", a);
            c->kind = val;
        } else if ((t = TAKE("--model")) != 0) {
            note_option(c, "--model");
            if (t < 0)
                return usage_error("%s needs a model file", a);
            c->model = val;
        } else if ((t = TAKE("--csv")) != 0) {
            note_option(c, "--csv");
            if (t < 0 || !*val)
                return usage_error("%s needs a file name", a);
            c->csv = val;
        } else if ((t = TAKE("--runs")) != 0) {
            note_option(c, "--runs");
            if (t < 0 || parse_int(val, 1, 1000, &c->runs))
                return usage_error("--runs needs an integer in 1..1000, got '%s'", t < 0 ? "" : val);
        } else if ((t = TAKE("--threads")) != 0) {
            note_option(c, "--threads");
            if (t < 0 || parse_int(val, 1, 256, &c->threads))
                return usage_error("--threads needs an integer in 1..256, got '%s'", t < 0 ? "" : val);
        } else if ((t = TAKE("--shard")) != 0) {
            note_option(c, "--shard");
            /* whole numbers only, range-checked (sscanf's %d overflowed) */
            int si = 0, sn = 0;
            char num[32];
            const char *sl = t < 0 ? NULL : strchr(val, '/');
            if (!sl || (size_t)(sl - val) >= sizeof num ||
                (snprintf(num, sizeof num, "%.*s", (int)(sl - val), val), parse_int(num, 1, INT_MAX, &si)) ||
                parse_int(sl + 1, 1, INT_MAX, &sn) || si > sn || !isdigit((unsigned char)val[0]) ||
                !isdigit((unsigned char)sl[1]))
                return usage_error("--shard needs I/N with 1 <= I <= N, got '%s'", t < 0 ? "" : val);
            c->shard_i = si;
            c->shard_n = sn;
        } else if ((t = TAKE("-o")) != 0 || (t = TAKE("--output")) != 0) {
            note_option(c, "-o");
            if (t < 0 || !*val)
                return usage_error("%s needs an output file (FILE.onnx)", a);
            c->output = val;
        } else if ((t = TAKE("--logits")) != 0) {
            note_option(c, "--logits");
            if (t < 0 || !*val)
                return usage_error("%s needs a file name (FILE.csv)", a);
            c->logits = val;
        } else if ((t = TAKE("--executor")) != 0) {
            note_option(c, "--executor");
            if (t < 0 || !*val)
                return usage_error("%s needs an executor name (local, mpi)", a);
            c->executor = val;
        } else if ((t = TAKE("--ratios")) != 0) {
            note_option(c, "--ratios");
            if (t < 0 || !*val)
                return usage_error("%s needs ratios such as 0.1,0.3,0.5", a);
            c->ratios = val;
        } else if ((t = TAKE("--max-drop")) != 0) {
            note_option(c, "--max-drop");
            if (t < 0 || !*val)
                return usage_error("%s needs accuracy points such as 1.0", a);
            c->max_drop = val;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option '%s'", a);
        } else if (!c->cmd) {
            c->cmd = a;
        } else if (c->n_args < 4) {
            c->args[c->n_args++] = a;
        } else {
            return usage_error("too many arguments ('%s')", a);
        }
#undef TAKE
    }
    if (c->help) { /* `prunelab --help`, `prunelab run --help`, `prunelab help run` */
        if (c->cmd && !strcmp(c->cmd, "help"))
            c->cmd = c->n_args ? c->args[0] : NULL;
        if (c->cmd && !pl__cli_help(c->cmd))
            return usage_error("unknown command '%s'", c->cmd);
        return 0;
    }
    if (c->cmd && !strcmp(c->cmd, "help")) {
        if (c->n_args && !pl__cli_help(c->args[0]))
            return usage_error("unknown command '%s'", c->args[0]);
        c->help = 1;
        c->cmd = c->n_args ? c->args[0] : NULL;
        return 0;
    }
    if (c->cmd && pl__cli_help(c->cmd))
        for (int i = 0; i < c->n_given; i++)
            if (!pl__cli_option_applies(c->cmd, c->given[i])) {
                fprintf(stderr, "prunelab: %s does not apply to '%s' (see prunelab %s --help)\n",
                        c->given[i], c->cmd, c->cmd);
                return 2;
            }
    return 0;
}

/* ---- plugins ---------------------------------------------------------------- */

typedef struct list_ctx {
    int n, bad;
} list_ctx;

static void list_one(void *ud, const pl_plugin *p, const char *shadowed)
{
    list_ctx *lc = ud;
    const pl_plugin_desc *d = pl_plugin_get_desc(p);
    if (lc->n++ == 0)
        printf("%-10s %-10s %-8s %-52s %s\n", "KIND", "NAME", "VERSION", "DESCRIPTION", "FILE");
    printf("%-10s %-10s %-8s %-52s %s\n", pl_kind_name(d->kind), d->name, d->version, d->description,
           pl_plugin_path(p));
    if (shadowed)
        printf("%-10s %-10s %-8s %-52s %s\n", "", "", "", "(shadows)", shadowed);
}

static void list_bad(void *ud, const char *path, const pl_error *why)
{
    list_ctx *lc = ud;
    lc->bad++;
    /* most load errors already start with the file's path */
    if (!strncmp(why->msg, path, strlen(path)))
        fprintf(stderr, "prunelab: warning: skipping %s\n", why->msg);
    else
        fprintf(stderr, "prunelab: warning: skipping %s: %s\n", path, why->msg);
}

/* ---- main ------------------------------------------------------------------------ */

static int fail(const pl_error *e)
{
    fprintf(stderr, "prunelab: %s\n", e->msg[0] ? e->msg : pl_status_str(e->code));
    return pl_status_exit_code(e->code);
}

static int run_command(int argc, char **argv);

/* Output that never arrived is a failure: `validate > /dev/full` or a full
 * disk must not exit 0 with an empty file. */
int main(int argc, char **argv)
{
    int code = run_command(argc, argv);
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "prunelab: standard output: write error: %s (disk full, or the output closed?); the "
                "output is incomplete\n", errno ? strerror(errno) : "a write failed");
        if (code == 0)
            code = pl_status_exit_code(PL_EIO);
    }
    return code;
}

static int run_command(int argc, char **argv)
{
    /* SIGINT/SIGTERM end the program at once until a run installs its
     * handler: a shell starts background jobs with SIGINT ignored, and an
     * inherited "ignore" made a long sweep check unkillable. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    cli c;
    int rc = parse_args(argc, argv, &c);
    if (rc)
        return rc;
    if (c.help) {
        fputs(c.cmd ? pl__cli_help(c.cmd) : usage, stdout);
        return 0;
    }
    if (!c.cmd) {
        fputs(usage, stderr);
        return 2;
    }
    if (!strcmp(c.cmd, "version")) {
        printf("prunelab %s (commit %s, plugin ABI %d.%d)\n", PL_VERSION, PL_GIT_COMMIT, PL_ABI_MAJOR,
               PL_ABI_MINOR);
        return 0;
    }
    /* not in --help: write docs/config-keys.md from the schema, docs/onnx-operators.md from the importer's table */
    if (!strcmp(c.cmd, "config-keys") || !strcmp(c.cmd, "onnx-ops")) {
        if (c.n_args)
            return usage_error(c.cmd[0] == 'c' ? "config-keys takes no arguments (got '%s')"
                                               : "onnx-ops takes no arguments (got '%s')", c.args[0]);
        char *md = c.cmd[0] == 'c' ? pl_config_keys_markdown() : pl_onnx_ops_markdown();
        if (!md) {
            fputs("prunelab: out of memory\n", stderr);
            return 1;
        }
        fputs(md, stdout);
        free(md);
        return 0;
    }
    if (c.quiet)
        pl_log_set_level(2);
    pl_error err;
    pl_error_clear(&err);
    pl_registry *reg = pl_registry_new(argv[0]);
    if (!reg) {
        fputs("prunelab: out of memory\n", stderr);
        return 1;
    }
    for (int i = 0; i < c.n_paths; i++)
        pl_registry_add_path(reg, c.paths[i], &err);

    int code = 0;
    if (!strcmp(c.cmd, "run") || !strcmp(c.cmd, "validate") || !strcmp(c.cmd, "sensitivity")) {
        if (c.n_args != 1) {
            code = usage_error("%s needs exactly one EXPERIMENT.yaml", c.cmd);
            goto out;
        }
        pl_config *cfg;
        char xfile[4096]; /* `prunelab run seed`: a bundled recipe (share_path.c) */
        pl_status s = pl_share_resolve(PL_SHARE_EXPERIMENTS, c.args[0], xfile, sizeof xfile, &err);
        if (s == PL_OK)
            s = pl_config_load(xfile, c.sets, c.n_sets, &cfg, &err);
        if (s == PL_ENOTFOUND || s == PL_EIO) {
            /* the file itself could not be read */
            char why[sizeof err.msg];
            snprintf(why, sizeof why, "%s", err.msg);
            pl_error_set(&err, s, "%s (check the EXPERIMENT.yaml path; it is relative to the working directory)",
                         why);
        }
        if (s) {
            code = fail(&err);
            goto out;
        }
        /* the experiment's plugin_path: comes after --plugin-path */
        pl_experiment *x0;
        if (pl_config_expand(cfg, 0, &x0, &err) == PL_OK) {
            for (size_t i = 0; i < x0->n_plugin_path; i++)
                pl_registry_add_path(reg, x0->plugin_path[i], &err);
            pl_experiment_free(x0);
        }
        if (!strcmp(c.cmd, "validate")) {
            /* the plan is printed only when everything checked out: an error
             * is one line on stderr, never after half a plan */
            char *plan = NULL;
            size_t plan_len = 0;
            FILE *mem = open_memstream(&plan, &plan_len);
            s = pl_validate_config(reg, cfg, mem ? mem : stdout, &err);
            if (mem) {
                fclose(mem);
                if (s == PL_OK && plan)
                    fwrite(plan, 1, plan_len, stdout);
                free(plan);
            }
        } else if (!strcmp(c.cmd, "sensitivity")) {
            pl_sens_opts so = {.out_dir = c.out, .max_drop = -1, .threads = c.threads, .quiet = c.quiet,
                               .out = stdout, .interrupted = &interrupted};
            char *end = NULL;
            if (c.ratios && pl_sens_parse_ratios(c.ratios, &so, &err)) {
                pl_config_free(cfg);
                code = usage_error("%s", err.msg);
                goto out;
            }
            if (c.max_drop && (so.max_drop = strtod(c.max_drop, &end), *end || !(so.max_drop >= 0) ||
                                                                        so.max_drop > 100)) {
                pl_config_free(cfg);
                code = usage_error("--max-drop needs accuracy points in 0..100, got '%s'", c.max_drop);
                goto out;
            }
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sigaction(SIGINT, &sa, NULL);
            sigaction(SIGTERM, &sa, NULL);
            s = pl_sensitivity_config(reg, cfg, &so, &err);
        } else {
            /* Only now: a run has finished records and temporary files to
             * keep tidy on SIGINT/SIGTERM; loading and checking the config
             * (and `validate`) write nothing, so the default action (exit at
             * once) is the right one there. */
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sigaction(SIGINT, &sa, NULL);
            sigaction(SIGTERM, &sa, NULL);
            pl_run_opts o = {.threads = c.threads, .out_dir = c.out, .progress = PL_PROGRESS_AUTO,
                             .quiet = c.quiet, .shard_i = c.shard_i, .shard_n = c.shard_n,
                             .interrupted = &interrupted, .out = stdout, .executor = c.executor};
            s = pl_run_config(reg, cfg, &o, &err);
        }
        pl_config_free(cfg);
        if (s)
            code = fail(&err);
    } else if (!strcmp(c.cmd, "plugins")) {
        if (c.n_args != 0) {
            code = usage_error("plugins takes no arguments (got '%s')", c.args[0]);
            goto out;
        }
        list_ctx lc = {0};
        pl_registry_each(reg, list_one, list_bad, &lc);
        if (lc.n == 0) {
            fprintf(stderr, "prunelab: no plugins found (use --plugin-path or PRUNELAB_PLUGIN_PATH)\n");
            code = 1;
        }
    } else if (!strcmp(c.cmd, "compare")) {
        if (c.n_args != 2) {
            code = usage_error("%s needs BASELINE.csv CURRENT.csv", c.cmd);
            goto out;
        }
        int regressed = 0;
        pl_status s = pl_compare_files_ex(c.args[0], c.args[1], c.tolerance, c.only_common, stdout,
                                          &regressed, &err);
        code = s ? fail(&err) : regressed ? 1 : 0;
    } else if (!strcmp(c.cmd, "report")) {
        if (c.n_args != 1) {
            code = usage_error("%s needs a report DIR", c.cmd);
            goto out;
        }
        pl_status s = pl_report_rebuild(c.args[0], 1, stdout, &err);
        if (s)
            code = fail(&err);
    } else if (!strcmp(c.cmd, "bench")) {
        if (c.n_args != 0) {
            code = usage_error("bench takes no arguments (got '%s'; use --model/--backend)", c.args[0]);
            goto out;
        }
        char model_file[4096]; /* --model NAME: a bundled model (share_path.c) */
        pl_status ms = pl_share_resolve(PL_SHARE_MODELS, c.model ? c.model : "simple_cnn", model_file,
                                        sizeof model_file, &err);
        if (ms) {
            code = fail(&err);
            goto out;
        }
        pl_bench_opts bo = {.model = model_file,
                            .runs = c.runs, .threads = c.threads, .n_backends = c.n_backends,
                            .csv_path = c.csv};
        for (int i = 0; i < c.n_backends; i++)
            bo.backends[i] = c.backends[i];
        pl_status s = pl_bench_run(reg, &bo, stdout, &err);
        if (s)
            code = fail(&err);
    } else if (!strcmp(c.cmd, "plugin-check")) {
        if (c.n_args != 1) {
            code = usage_error("%s needs exactly one plugin NAME", c.cmd);
            goto out;
        }
        int kind = 0, failed = 0;
        pl_status s = pl_plugin_check_kind(c.kind, &kind, &err);
        if (s == PL_OK)
            s = pl_plugin_check(reg, c.args[0], kind, stdout, &failed, &err);
        code = s ? fail(&err) : failed ? 1 : 0;
    } else if (!strcmp(c.cmd, "export")) {
        if (c.n_args != 1) {
            code = usage_error("%s needs exactly one checkpoint (prunelab export CKPT -o FILE.onnx)", c.cmd);
            goto out;
        }
        if (!c.output) {
            code = usage_error("%s needs -o FILE.onnx (where to write the model)", c.cmd);
            goto out;
        }
        pl_onnx_export_stats st;
        pl_status s = pl_onnx_export_checkpoint(c.args[0], c.output, c.fold_bn, &st, &err);
        if (s)
            code = fail(&err);
        else if (!c.quiet)
            printf("wrote %s: %d nodes, %d initializers, %lld parameters (%lld masked weights as zeros%s)\n",
                   c.output, st.nodes, st.initializers, (long long)st.floats, (long long)st.zeros_masked,
                   c.fold_bn ? (st.folded ? ", batchnorm folded" : ", no batchnorm to fold") : "");
    } else if (!strcmp(c.cmd, "eval")) {
        if (c.n_args < 1 || c.n_args > 2) {
            code = usage_error("%s needs MODEL (a checkpoint or .onnx) and optionally EXPERIMENT.yaml", c.cmd);
            goto out;
        }
        pl_eval_opts eo = {.model = c.args[0], .experiment = c.n_args > 1 ? c.args[1] : NULL, .sets = c.sets,
                           .n_sets = c.n_sets, .logits_csv = c.logits, .threads = c.threads, .out = stdout};
        pl_status s = pl_eval_run(reg, &eo, &err);
        if (s)
            code = fail(&err);
    } else {
        code = usage_error("unknown command '%s'", c.cmd);
    }
out:
    pl_registry_free(reg);
    return code;
}
