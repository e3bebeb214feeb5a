/*
 * prune.h — the host's half of pruning: which layers and how many units
 * (targets), scoring through the criterion plugin, selection (per layer or
 * one global ranking), masking (weight granularity) and, through
 * surgery.h, structural surgery (channel/neuron/layer granularity).
 *
 * The schedule plugin decides when and how much (its plan's progress per
 * step); the criterion plugin scores units; this file selects and cuts.
 *
 *     pl_pruner p;
 *     pl_pruner_init(&p, model, &x->prune, crit, sched, &err);
 *     for (int s = 0; s < p.plan.n_steps; s++) {
 *         pl_pruner_step(&p, s, &train, batch, seed, &err);
 *         ... retrain ...
 *     }
 *     pl_pruner_sparsity(&p, &target, &achieved);
 *     pl_pruner_free(&p);
 *
 * Selection rules: a unit's score comes from the criterion (higher = keep);
 * the lowest-scored alive units go first, ties broken by lower index. Per
 * layer at step t the target is round(progress[t] · remove_l) units removed
 * in total. Global scope: each layer's alive scores are normalised as the
 * plan says (pl_norm in plugin.h: divided by the layer's mean, LAMP, or
 * raw) so layers of different scale compare, ranked together, and each layer keeps at least max(1, ceil(floor·units)) and
 * loses at most floor(cap·units) units. No layer ever loses all its units;
 * the output layer is never pruned.
 *
 * Channel and neuron granularity prune pruning groups (groups.h), not
 * layers: for a chain model each conv2d/linear layer is its own group, so
 * everything above holds as written. In a graph model a group is the set
 * of layers whose channels must go together (producers of one add, a
 * depthwise conv and its producer, ...). The criterion scores every
 * member layer as before; a unit's score is its members' scores combined
 * by prune.group_reduction (mean, sum or max), and the group is then one
 * "layer" for selection, normalisation, floor and cap. prune.layers,
 * include and exclude name a group by any member.
 */
#ifndef PL_PRUNE_H
#define PL_PRUNE_H

#include "config.h"
#include "model.h"
#include "surgery.h"
#include "groups.h"
#include "registry.h"
#include "train.h"

typedef struct pl_prune_target {
    int layer;          /* index in the model */
    int64_t units;      /* original unit count (weights, channels or neurons) */
    int64_t remove;     /* final number of units to remove (requested) */
    int64_t removed;    /* removed so far */
    int *orig;          /* unused (pl_pruner.korig holds the kept indices) */
    int group;          /* channel/neuron: its pruning group in pl_pruner.G; weight: -1 */
} pl_prune_target;

typedef struct pl_pruner {
    pl_model *m;                 /* borrowed */
    pl_granularity gran;
    pl_instance *crit;           /* borrowed */
    unsigned needs;
    int calib_batches;
    pl_schedule_plan plan;
    pl_prune_target *t;
    int n;
    int64_t tolerance;
    int global;
    double requested;            /* prune.sparsity, or Σ remove / Σ units for prune.layers */
    int64_t layer_goal;          /* granularity layer: blocks to remove in total */
    pl_groups G;                 /* channel/neuron: the model's pruning groups, derived again after each cut */
    int *sl;                     /* layers the criterion scores, ascending (group members / weight targets) */
    int n_sl;
    int **korig;                 /* per model layer: original index of each current output unit, or NULL */
    pl_group_reduction reduce;   /* prune.group_reduction */
    int64_t merged;              /* units folded into their twins (criterion merge slot, merge.h) */
    int bn_batches;              /* prune.recalibrate_bn: batches re-estimating batchnorm statistics
                                  * after each step (bn_recalibrate.h), 0 = off */
} pl_pruner;

/* Resolves the layers in scope (prune.layers / prune.sparsity, include,
 * exclude; unknown or unprunable names are config errors naming the layer)
 * and asks the schedule for its plan. */
pl_status pl_pruner_init(pl_pruner *p, pl_model *m, const pl_prune_cfg *cfg, pl_instance *crit,
                         pl_instance *sched, pl_error *err);
/* Prunes to the plan's step `step` (0-based). `train` feeds calibration
 * batches of `batch` images to criteria that need gradients, and, with
 * prune.recalibrate_bn, the batches that re-estimate every batchnorm's
 * running statistics after the cut (stream "bn_recalibrate:<step>"). */
pl_status pl_pruner_step(pl_pruner *p, int step, pl_data *train, int batch, uint64_t seed,
                         pl_error *err);
/* Requested and achieved sparsity over all targeted units. The requested
 * value is prune.sparsity as written; a layer never loses its last unit, so
 * at sparsity 0.9 a 4-channel layer keeps one (0.75) and the achieved value
 * shows it. */
void pl_pruner_sparsity(const pl_pruner *p, double *target, double *achieved);
/* PL_OK, or PL_EMISSED with a message naming the first layer off target by
 * more than the tolerance. */
pl_status pl_pruner_check(const pl_pruner *p, pl_error *err);
void pl_pruner_free(pl_pruner *p);
/* The original output-unit indices layer `layer` (model index) still has
 * after channel/neuron surgery, ascending, *n of them; NULL when the layer
 * lost no unit (it kept every one of its units). */
const int *pl_pruner_kept(const pl_pruner *p, int layer, int *n);

/* validate: a graph model's pruning groups (members, units, what one unit
 * removes); nothing for a chain, whose groups are its layers. */
void pl_pruner_print_groups(const pl_pruner *p, FILE *f);

/* ---- granularity layer (layer_prune.c) ----------------------------------------
 *
 * A removable block starts at a conv2d or linear layer that is not the
 * output layer and takes with it the batchnorm2d, relu and dropout layers
 * that directly follow; it is removable when its input shape equals its
 * output shape (e.g. a 3x3 conv, stride 1, padding 1, C -> C channels, with
 * its batchnorm and ReLU; or a square linear layer), so the network still
 * composes without it. vgg_mini has two: conv2 (+bn2, relu) and conv4.
 * In a graph model the blocks are residual branches whose add has an
 * identity shortcut, the add included (pl_layer_block_len, surgery.h).
 *
 * Targets: prune.count N blocks, or prune.sparsity s = round(s * candidates)
 * blocks; prune.include/exclude name block heads (the conv2d/linear layer).
 * Ranking: the criterion plugin scores each candidate's head weights as ONE
 * unit (PL_GRAN_LAYER: units 1, unit_size = the layer's weight count) and
 * the score is divided by that weight count (for l1: the mean |w|), so
 * layers of different size compare; the lowest normalised score goes
 * first, ties to the earlier layer. The schedule's plan spreads the blocks
 * over its steps (step t removes up to round(progress[t] * N) in total),
 * re-scoring after each retraining; the scope (per layer / global) does not
 * matter, the ranking always spans the model. Sparsity (requested and
 * achieved) is the share of candidate blocks removed; pl_pruner_check
 * compares removed blocks with N. A model without a removable block is
 * PL_ECONFIG naming the model. */

/* pl_pruner_init / pl_pruner_step for PL_GRAN_LAYER (prune.c routes here). */
/* Fills g[k][b] (every k < n with g[k] != NULL) with layer layers[k]'s
 * weight gradient on calibration batch b (RNG stream "calibration:<step>",
 * training split). Shared by the unit and the layer pruner. */
pl_status pl__pruner_calibrate(pl_pruner *p, const int *layers, int n, pl_data *train, int batch, uint64_t seed,
                               int step, float ***g, pl_error *err);
/* The schedule's plan for `requested` over n_layers, checked (prune.c). */
pl_status pl__schedule_plan(pl_instance *sched, double requested, int n_layers, pl_schedule_plan *plan,
                            pl_error *err);
pl_status pl__layer_pruner_init(pl_pruner *p, pl_model *m, const pl_prune_cfg *cfg,
                                pl_instance *sched, pl_error *err);
pl_status pl__layer_pruner_step(pl_pruner *p, int step, pl_data *train, int batch, uint64_t seed,
                                pl_error *err);

struct pl_act;
/* The view score() gets for layer li (prune.c): units per p->gran, the
 * calibration gradients grads[batch] (or NULL), the activation statistics
 * act (or NULL; *as holds the copy v->act points to), bn_gamma when the
 * criterion needs it, shape[1] = in_c / groups for a grouped conv2d. The
 * merge slot gets the same view; the layer pruner starts from it. */
void pl__unit_view(const pl_pruner *p, int li, float **grads, const struct pl_act *act, pl_act_stats *as,
                   pl_unit_view *v);

/* Consumer weights saved by pl__pruner_merge before folding, so a failure
 * of the surgery that follows can put them back (all or nothing). */
typedef struct pl_merge_undo {
    int n;
    int *layer;   /* [p->n] consumer layer index */
    int64_t *nw;  /* its weight count when saved */
    float **w;    /* its weights before the fold */
} pl_merge_undo;

/* merge.c: before surgery, folds units to drop into their twins where the
 * criterion has a merge slot (PL_ABI_MINOR_MERGE) and the path allows it;
 * the criterion gets the view score() got (grads/act/slot as in
 * pl_pruner_step: slot[layer] indexes them, -1 for none). Records what it
 * changed in *undo; on error it has already put everything back. */
pl_status pl__pruner_merge(pl_pruner *p, uint8_t *const *drop, float ***grads, const struct pl_act *act,
                           const int *slot, pl_merge_undo *undo, pl_error *err);
/* Frees *undo; with restore != 0 first puts the saved weights back (only
 * into a consumer whose weight count is unchanged, i.e. not yet cut). */
void pl__merge_undo_end(pl_model *m, pl_merge_undo *undo, int restore);
/* ---- end granularity layer ---- */

/* Per-layer achieved sparsity under the granularity's definition. */
double pl_layer_sparsity(const pl_layer *l, pl_granularity g);
const char *pl_granularity_name(pl_granularity g);

#endif
