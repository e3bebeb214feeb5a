/*
 * cli_help.c — per-command help texts and option applicability (see
 * cli_help.h). The texts are golden files in tests/fixtures/help/, so a
 * change here is a visible change to the CLI.
 */
#include "cli_help.h"

#include <stddef.h>
#include <string.h>

typedef struct cmd_help {
    const char *cmd;
    const char *options; /* space-separated options beyond the global ones */
    const char *text;
} cmd_help;

#define PL__GLOBAL_OPTS                                                                            \
    "global options:\n"                                                                            \
    "  --plugin-path DIR      search DIR for plugins first (repeatable)\n"                         \
    "  --threads N            worker threads for the backend (default: all cores)\n"               \
    "  --quiet                only errors and the final table\n"

static const cmd_help cmds[] = {
    {"run", "--set --out --shard --executor",
     "usage: prunelab run EXPERIMENT.yaml [--set key=value]... [--out DIR] [--shard I/N]\n"
     "                    [--executor local|mpi]\n"
     "\n"
     "Trains, prunes, retrains, fine-tunes and evaluates every run of the experiment\n"
     "(one, or the cross product of its sweep:), writes a record per run to DIR/runs/\n"
     "and rebuilds the report (results.csv, results.md, results.tex, layers.csv,\n"
     "history.csv, plots). Finished runs are skipped, so a killed sweep resumes.\n"
     "\n"
     "options:\n"
     "  --set key=value        override a dotted key (repeatable); key=null removes it\n"
     "  --out DIR              write the report to DIR instead of report.dir\n"
     "  --shard I/N            run only runs k with k mod N = I-1 (1-based)\n"
     "  --executor NAME        who runs the sweep: local (default, this process) or mpi\n"
     "                         (under mpirun: the runs spread over the ranks)\n" PL__GLOBAL_OPTS
     "\n"
     "example:\n"
     "  prunelab run experiments/seed.yaml --set prune.layers=null --set prune.sparsity=0.5\n"},
    {"validate", "--set",
     "usage: prunelab validate EXPERIMENT.yaml [--set key=value]...\n"
     "\n"
     "Checks everything a run would need without training: keys, types and ranges,\n"
     "that every named plugin is found and accepts its parameters, that the dataset\n"
     "opens and fits the model, and that the prune targets resolve. Prints the\n"
     "resolved plan (the model's layers with params and MACs, plugins, phases, and\n"
     "the first 12 runs of a sweep).\n"
     "\n"
     "options:\n"
     "  --set key=value        override a dotted key (repeatable); key=null removes it\n" PL__GLOBAL_OPTS
     "\n"
     "example:\n"
     "  prunelab validate experiments/compare-criteria.yaml --set seed=2\n"},
    {"sensitivity", "--set --out --ratios --max-drop",
     "usage: prunelab sensitivity EXPERIMENT.yaml [--ratios R,...] [--max-drop POINTS]\n"
     "                            [--set key=value]... [--out DIR]\n"
     "\n"
     "How much each prunable unit can lose on its own. Trains the experiment's\n"
     "baseline (or reuses the one `run` cached in the same report folder), then\n"
     "prunes every unit alone - a pruning group at channel or neuron granularity, a\n"
     "layer at weight granularity - with the experiment's criterion in one shot, at\n"
     "each ratio, and evaluates it without retraining. Writes DIR/sensitivity.csv\n"
     "(unit, members, ratio, achieved, accuracy, acc_drop, params, macs) and\n"
     "DIR/sensitivity.{svg,png}. The experiment must be one run (no sweep:).\n"
     "\n"
     "options:\n"
     "  --ratios R,...         ratios in (0, 1), ascending (default 0.1,0.2,...,0.9)\n"
     "  --max-drop POINTS      also write DIR/sensitivity_layers.yaml: a prune.layers\n"
     "                         block giving each unit the largest ratio whose accuracy\n"
     "                         drop stays within POINTS\n"
     "  --set key=value        override a dotted key (repeatable); key=null removes it\n"
     "  --out DIR              the report folder instead of report.dir\n" PL__GLOBAL_OPTS
     "\n"
     "example:\n"
     "  prunelab sensitivity experiments/seed.yaml --max-drop 1.0\n"},
    {"plugins", "",
     "usage: prunelab plugins\n"
     "\n"
     "Lists kind, name, version, description and file of every plugin on the search\n"
     "path, and what a plugin shadows.\n"
     "\n" PL__GLOBAL_OPTS
     "\n"
     "example:\n"
     "  prunelab plugins --plugin-path /tmp/absmax\n"},
    {"plugin-check", "--kind",
     "usage: prunelab plugin-check NAME|FILE.so [--kind criterion|schedule|dataset|backend]\n"
     "\n"
     "Runs one plugin through its contract, each check in a child process, and\n"
     "prints a pass/fail table. Exit 0: all pass; 1: a check failed; 2: not found.\n"
     "\n"
     "options:\n"
     "  --kind K               the plugin's kind, when NAME is ambiguous\n" PL__GLOBAL_OPTS
     "\n"
     "example:\n"
     "  prunelab plugin-check taylor\n"},
    {"compare", "--tolerance --only-common",
     "usage: prunelab compare BASELINE.csv CURRENT.csv [--tolerance acc=0.5,params=0,macs=0]\n"
     "                        [--only-common]\n"
     "\n"
     "Matches two results.csv files by run_id and prints a Markdown table of every\n"
     "metric that moved. Exit 1 when a metric moved beyond its tolerance in the bad\n"
     "direction, or a row of the baseline is missing.\n"
     "\n"
     "options:\n"
     "  --tolerance K=V,...    allowed moves: acc (points), params, macs, sparsity\n"
     "  --only-common          compare only the rows both files have (e.g. a shard)\n" PL__GLOBAL_OPTS
     "\n"
     "example:\n"
     "  prunelab compare reports/baselines/nightly.csv reports/nightly/results.csv --tolerance acc=0.3\n"},
    {"report", "",
     "usage: prunelab report DIR\n"
     "\n"
     "Rebuilds results.csv, results.md, results.tex, layers.csv, history.csv and the\n"
     "plots from the finished run records in DIR/runs/ (e.g. after merging shards).\n"
     "\n" PL__GLOBAL_OPTS
     "\n"
     "example:\n"
     "  prunelab report reports/compare-criteria\n"},
    {"export", "-o --fold-bn",
     "usage: prunelab export CKPT -o FILE.onnx [--fold-bn]\n"
     "\n"
     "Writes a checkpoint (a run's models/<run_id>.ckpt, a cached baseline) as an\n"
     "ONNX file (opset 13) of the physically pruned model: batch dimension N, input\n"
     "'input' [N,C,H,W], output 'logits' [N,classes], weights as initializers named\n"
     "after the layers, masked weights as zeros, batchnorm as BatchNormalization.\n"
     "\n"
     "options:\n"
     "  -o, --output FILE      the ONNX file to write (atomically)\n"
     "  --fold-bn              fold each batchnorm into the conv before it, when nothing\n"
     "                         else reads that conv\n" PL__GLOBAL_OPTS
     "\n"
     "example:\n"
     "  prunelab export reports/seed/models/3f2a9c1e0b7d4a56.ckpt -o seed.onnx --fold-bn\n"},
    {"eval", "--set --logits",
     "usage: prunelab eval MODEL [EXPERIMENT.yaml] [--set key=value]... [--logits FILE.csv]\n"
     "\n"
     "Prints the test accuracy, params and MACs of MODEL, a checkpoint or an ONNX\n"
     "file, on the dataset of EXPERIMENT.yaml (its dataset:, backend: and seed:) or\n"
     "of --set dataset.plugin=NAME --set dataset.path=DIR.\n"
     "\n"
     "options:\n"
     "  --set key=value        override a dotted key of the experiment (repeatable)\n"
     "  --logits FILE          also write every test image's logits as CSV\n"
     "                         (index,label,logit0,...)\n" PL__GLOBAL_OPTS
     "\n"
     "example:\n"
     "  prunelab eval seed.onnx --set dataset.plugin=idx --set dataset.path=data/mnist\n"},
    {"bench", "--backend --model --runs --csv",
     "usage: prunelab bench [--backend NAME]... [--model FILE] [--runs N] [--csv FILE]\n"
     "\n"
     "Times the engine on this machine at 1 thread and at --threads: a training\n"
     "epoch, inference, the FMA peak, vgg_mini convolutions and sparse LeNet-300-100.\n"
     "\n"
     "options:\n"
     "  --backend NAME         a backend to time (repeatable; default: ref and simd)\n"
     "  --model FILE           the model of the training epoch (default: simple_cnn)\n"
     "  --runs N               timed repetitions per figure, the median is reported (5)\n"
     "  --csv FILE             also write every figure in long form\n" PL__GLOBAL_OPTS
     "\n"
     "example:\n"
     "  prunelab bench --backend simd --runs 7 --csv bench.csv\n"},
};

static const cmd_help *find_command(const char *cmd)
{
    for (size_t i = 0; cmd && i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmds[i].cmd, cmd))
            return &cmds[i];
    return NULL;
}

const char *pl__cli_help(const char *cmd)
{
    const cmd_help *h = find_command(cmd);
    return h ? h->text : NULL;
}

int pl__cli_option_applies(const char *cmd, const char *opt)
{
    if (!strcmp(opt, "--plugin-path") || !strcmp(opt, "--threads") || !strcmp(opt, "--quiet"))
        return 1;
    const cmd_help *h = find_command(cmd);
    if (!h)
        return 0;
    size_t n = strlen(opt);
    for (const char *p = h->options; (p = strstr(p, opt)) != NULL; p += n)
        if ((p == h->options || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}
