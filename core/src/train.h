/*
 * train.h — the training loop, evaluation and latency measurement.
 *
 * A phase (baseline train, retrain, fine-tune) runs `epochs` epochs of
 * seeded-shuffled minibatches with a FRESH optimizer (as the seed's PyTorch
 * code does). Shuffling uses the RNG stream "shuffle:<phase>:<epoch>" of the
 * run's seed, so a run is reproducible bit for bit on one backend.
 * Unstructured masks are enforced by the optimizer (gradient, state and
 * weight masked), so masked weights stay exactly zero.
 */
#ifndef PL_TRAIN_H
#define PL_TRAIN_H

#include "config.h"
#include "model.h"
#include "registry.h"
#include "rng.h"

#include <signal.h>

/* One opened split of a dataset plugin instance. */
typedef struct pl_data {
    pl_instance *inst;        /* borrowed */
    const pl_dataset_ops *ops;
    void *handle;
    pl_dataset_info info;
    pl_split split;
    /* set while a phase runs (pl_train_phase, pl_evaluate): a backend with
     * parallel_for over whose threads reads of a concurrent-read dataset
     * are split; NULL = read on the calling thread */
    const pl_backend_ops *par;
    void *par_state;
    pl_augment_cfg augment; /* applied by pl_train_phase to its batches only (augment.h) */
} pl_data;

pl_status pl_data_open(pl_instance *ds, pl_split split, pl_data *out, pl_error *err);
void pl_data_close(pl_data *d);
/* Reads examples [first, first+n) (or by indices if idx != NULL). */
pl_status pl_data_read(pl_data *d, const int64_t *idx, int64_t first, int n, float *x, int32_t *y,
                       pl_error *err);

/* Calibration batches: `batch` training images at a time, drawn with
 * replacement from the RNG stream `stream` of seed (the gradients and
 * activations criteria ask for, batchnorm recalibration). batch is clamped
 * to the split's size, and m's buffers are reserved for it; each
 * pl_calib_next fills x and y.
 *
 *     pl_calib c;
 *     s = pl_calib_open(&c, train, m, 64, seed, "calibration:0", err);
 *     for (int b = 0; b < batches && !s; b++)
 *         if (!(s = pl_calib_next(&c, err)))
 *             ... c.x, c.y, c.batch ...
 *     pl_calib_close(&c);                    (also after a failed open) */
typedef struct pl_calib {
    pl_data *data;            /* borrowed */
    pl_rng rng;
    int batch;
    float *x;                 /* [batch][in_c·in_h·in_w] */
    int32_t *y;
    int64_t *idx;
} pl_calib;

pl_status pl_calib_open(pl_calib *c, pl_data *train, pl_model *m, int batch, uint64_t seed,
                        const char *stream, pl_error *err);
pl_status pl_calib_next(pl_calib *c, pl_error *err);
void pl_calib_close(pl_calib *c);

typedef enum pl_progress { PL_PROGRESS_AUTO = 0, PL_PROGRESS_BAR, PL_PROGRESS_LINES, PL_PROGRESS_NONE } pl_progress;

struct pl_epoch_stats;
typedef struct pl_train_opts {
    pl_progress progress;
    FILE *out;                          /* progress lines (stdout) */
    volatile sig_atomic_t *interrupted; /* set by SIGINT/SIGTERM; may be NULL */
    /* history: called after each epoch with its training stats (epoch is
     * 1-based); it may set *test_acc (printed on the epoch line) and an
     * error stops the phase. NULL = none. Must not change the model. */
    pl_status (*on_epoch)(void *ud, const char *phase, int epoch, const struct pl_epoch_stats *st,
                          double *test_acc, pl_error *err);
    void *on_epoch_ud;
    int stop_after;                     /* > 0: end the phase after this many epochs, its
                                         * schedule unchanged (lottery-ticket rewinding) */
    pl_model *teacher;                  /* distill (distill.h): the dense baseline, bound to a
                                         * backend; used only when the phase has distill */
} pl_train_opts;

typedef struct pl_epoch_stats {
    double loss;     /* mean training loss over the epoch */
    double acc;      /* training accuracy (%) */
    double seconds;
    double images_per_s;
} pl_epoch_stats;

typedef struct pl_phase_stats {
    int epochs;
    pl_epoch_stats last;
    double seconds;  /* whole phase */
} pl_phase_stats;

/* Divergence rule (README "Divergence"): see pl_train_phase. */
#define PL_DIVERGE_FACTOR 10.0 /* epoch mean loss over this x the starting loss */
#define PL_DIVERGE_START 1     /* batches whose mean loss is the starting loss: the first
                                * only, since one step at a huge lr already explodes */

/* Trains `m` (bound to a backend) for cfg->epochs. Returns PL_EDIVERGED on
 * a non-finite loss, penalty, weight or bias, or when an epoch's mean loss
 * exceeds PL_DIVERGE_FACTOR x the phase's starting loss (its first batch's
 * loss before any update, at least ln(classes)); PL_EINTR when interrupted. */
pl_status pl_train_phase(pl_model *m, pl_data *train, const pl_phase_cfg *cfg, uint64_t seed,
                         const char *phase, const pl_train_opts *opts, pl_phase_stats *st,
                         pl_error *err);

/* What one training step measured. */
typedef struct pl_step_stats {
    double loss;          /* softmax cross-entropy summed over the batch */
    int64_t correct;      /* images the forward pass got right */
    double penalty;       /* the regularizer's P (0 without one) */
    double loss_seconds;  /* time in the loss and in the optimizer update, */
    double optim_seconds; /* measured only while the model is profiled (m->prof) */
} pl_step_stats;

struct pl_regularizer;
/* One training step on a batch of n images, as a phase takes it: forward
 * (train mode), softmax cross-entropy into dl (n x classes, the caller's),
 * the distillation term when kd is given (teacher is the dense model it
 * asks for; both NULL otherwise), backward, the regularizer's gradient
 * (reg may be NULL), and optimizer o's
 * update at learning rate lr. step counts from 1 (Adam's bias correction;
 * SGD starts its momentum at step 1). A non-finite loss or penalty is
 * PL_EDIVERGED before the update, with the value in *st and the message
 * "<phase> diverged: ... at epoch <epoch+1> step <step>" (epoch counts
 * from 0; this is the one place that words it). */
pl_status pl_train_step(pl_model *m, const float *x, const int32_t *y, int n, float *dl,
                        const struct pl_regularizer *reg, const pl_optim_cfg *o, const pl_distill_cfg *kd,
                        pl_model *teacher, double lr, int64_t step, const char *phase, int epoch,
                        pl_step_stats *st, pl_error *err);

/* Test accuracy (%) and mean loss over the whole split, batches of `batch`. */
pl_status pl_evaluate(pl_model *m, pl_data *test, int batch, double *acc, double *loss,
                      pl_error *err);

/* Median over `runs` timed eval passes over x[n] in batches of 1000,
 * reported as ms per 1000 images (one untimed warm-up pass first). */
pl_status pl_measure_latency(pl_model *m, const float *x, int64_t n, int runs, double *ms_per_1000,
                             pl_error *err);

/* Gradients of the loss for one batch (used by criteria that need them):
 * fills every layer's gw/gb; returns the batch loss. */
pl_status pl_model_gradients(pl_model *m, const float *x, const int32_t *y, int n, double *loss,
                             pl_error *err);

double pl_now(void); /* monotonic seconds */

#endif
