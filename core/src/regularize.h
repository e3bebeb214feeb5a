/*
 * regularize.h — sparsity regularisers added to the training loss, and the
 * per-layer weight / filter-norm statistics that show what they did.
 *
 * A phase (train, retrain, finetune) may carry `regularize: {type, coef,
 * layers}` (config.h, pl_reg_cfg). Over the weights W_l of each named
 * conv2d/linear layer l (biases and batchnorm never count), with λ = coef:
 *
 *   l1           P = λ · Σ_l Σ |w|                 ∂P/∂w = λ · sign(w)   (0 at w = 0)
 *   l2           P = λ/2 · Σ_l Σ w²                ∂P/∂w = λ · w
 *   group_lasso  P = λ · Σ_l Σ_u ‖w_u‖₂            ∂P/∂w = λ · w / ‖w_u‖₂ (0 when ‖w_u‖₂ = 0)
 *   bn_l1        P = λ · Σ_l Σ |γ|                 ∂P/∂γ = λ · sign(γ)   over batchnorm2d layers
 *                (network slimming, Liu et al. 2017; default: every batchnorm2d)
 *
 * where u runs over a layer's output units: conv filters w[u][cin][kh][kw],
 * linear rows w[u][in]. Group lasso (Yuan & Lin 2006; Wen et al. 2016 for
 * filters) drives whole filters towards zero so channel pruning finds them;
 * the groups are not scaled by sqrt(group size). l2 with Adam is the coupled
 * form (the penalty's gradient goes through the moments), unlike
 * optimizer.weight_decay which is applied by the backend. Masked weights are
 * zero, so they add nothing to P, and their gradient is masked again by the
 * optimizer.
 *
 * The trainer calls pl_regularizer_add_grad after backward and before the
 * optimizer step: the step then follows ∂(loss + P)/∂w, and the per-epoch
 * line reports the mean P over the epoch's steps next to the data loss.
 *
 *     pl_regularizer r;
 *     if (pl_regularizer_init(&r, m, &cfg->reg, "train", &err)) ...  // names checked here
 *     ... forward, softmax_xent, backward ...
 *     double pen = pl_regularizer_add_grad(&r, m);   // gw += ∂P/∂w; returns P
 *     ... optimizer step ...
 *     pl_regularizer_deinit(&r);
 *
 * Norm statistics (pl_norms_*): for every conv2d/linear layer the L2 norm of
 * each output unit's weights, summarised as quantiles, plus the raw sums the
 * three penalties are built from. run.c writes them per run to
 * DIR/norms/<run_id>.csv (stages "baseline" and "final") and gathers all runs
 * into DIR/norms.csv.
 */
#ifndef PL_REGULARIZE_H
#define PL_REGULARIZE_H

#include "config.h"
#include "model.h"

#include <stdio.h>

typedef struct pl_regularizer {
    pl_reg_type type;       /* PL_REG_NONE: add_grad does nothing and returns 0 */
    double coef;
    int *layers;            /* indices into the model the regularizer was made for */
    int n;
} pl_regularizer;

/* Resolves cfg->layers against m (default: every conv2d/linear but the
 * output layer). A name the model lacks or a layer without weights to
 * penalise is PL_ECONFIG naming "<phase>.regularize.layers". `r` owns its
 * index array until pl_regularizer_deinit; it is only valid for m's current
 * layer list (re-init after layer surgery). */
pl_status pl_regularizer_init(pl_regularizer *r, const pl_model *m, const pl_reg_cfg *cfg,
                              const char *phase, pl_error *err);
void pl_regularizer_deinit(pl_regularizer *r);
/* P at m's current weights (double sums in index order). */
double pl_regularizer_penalty(const pl_regularizer *r, const pl_model *m);
/* Adds ∂P/∂w to each regularised layer's gw and returns P. Nothing happens
 * (and 0 is returned) for PL_REG_NONE or coef 0, so a zero coefficient
 * leaves training bit for bit unchanged. */
double pl_regularizer_add_grad(const pl_regularizer *r, pl_model *m);
/* "l1", "group_lasso", "bn_l1", ... */
const char *pl_reg_type_name(pl_reg_type t);
/* "group_lasso 0.001 on conv1,conv2" (or "none") into buf. */
void pl_regularizer_describe(const pl_regularizer *r, const pl_model *m, char *buf, size_t n);

/* ---- norm distribution ---------------------------------------------------- */

typedef struct pl_norm_stats {
    char layer[64];
    char type[16];
    int units;              /* output units (filters / neurons) */
    int64_t weights;
    double l1;              /* Σ |w| */
    double l2sq;            /* Σ w² */
    double group;           /* Σ_u ‖w_u‖₂ */
    double q[5];            /* unit norms: min, 25 %, median, 75 %, max (linear interpolation) */
    double mean;            /* mean unit norm */
    double below_10pct;     /* share of units whose norm is < 0.1 × the layer's largest */
} pl_norm_stats;

/* Statistics of every conv2d/linear layer of m into a new array (*out,
 * caller frees with free()); PL_ENOMEM on failure. */
pl_status pl_norms_compute(const pl_model *m, pl_norm_stats **out, int *n, pl_error *err);

/* The CSV header and rows shared by the per-run and the gathered file:
 * run_id, stage, layer, type, units, weights, l1, l2sq, group_l2,
 * norm_min, norm_q25, norm_median, norm_q75, norm_max, norm_mean,
 * below_10pct_max, regularize, penalty. `penalty` is P of the train phase's
 * regularizer restricted to that layer (0 for layers it does not cover). */
extern const char pl_norms_csv_header[];
void pl_norms_csv_rows(FILE *f, const char *run_id, const char *stage, const pl_norm_stats *s, int n,
                       const pl_reg_cfg *reg, const pl_model *m);

/* Prints a per-layer table (layer, units, norm quantiles, share < 10 % of
 * max) for people. */
void pl_norms_print(FILE *f, const char *title, const pl_norm_stats *s, int n);

/* Writes DIR/norms/<run_id>.csv (atomically) with the stages "baseline"
 * (the trained model before pruning) and "final" (after every phase);
 * `reg` is the train phase's regularizer (its penalty column). When `print`
 * is non-NULL the two tables are printed there too. */
pl_status pl_norms_write_run(const char *dir, const char *run_id, const pl_model *baseline,
                             const pl_model *final, const pl_reg_cfg *reg, FILE *print, pl_error *err);

/* Rebuilds DIR/norms.csv from every DIR/norms/<run_id>.csv (sorted by file
 * name), written atomically. No DIR/norms folder = nothing to do. */
pl_status pl_norms_gather(const char *dir, pl_error *err);

#endif
