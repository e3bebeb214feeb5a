/*
 * distill.h — knowledge distillation during retraining and fine-tuning
 * (Hinton, Vinyals & Dean 2015): the dense baseline (the trained model
 * before pruning) is the teacher, the pruned model the student.
 *
 * `retrain.distill: {alpha, temperature}` (or under finetune) replaces a
 * phase's per-example cross-entropy by, with a = alpha and T = temperature,
 *
 *   L = (1-a) · CE(z_s, y) + a · T² · KL( softmax(z_t/T) || softmax(z_s/T) )
 *
 *   ∂L/∂z_s = (1-a) · (softmax(z_s) - onehot(y)) + a · T · (p_s - p_t)
 *
 * where z_s, z_t are the student's and teacher's logits and p = softmax(z/T).
 * The T² keeps the soft term's gradient on the scale of the hard term's
 * as T changes. At a = 0 the loss and gradient are the cross-entropy's bit
 * for bit (the soft term is multiplied by an exact 0), so a run with
 * alpha 0 trains exactly as one without distillation.
 *
 * The trainer (train.c) calls pl_distill_batch after the backend's
 * softmax_xent, which has already written the cross-entropy gradient
 * (scaled by 1/n) into dl and the batch's summed loss into *loss:
 *
 *     pl_distill_batch(&cfg->distill, teacher, x, n, logits, dl, 1.0f/n, &ls, &err);
 *
 * The teacher runs an eval-mode forward (pl_model_infer) on the same batch;
 * it is never updated.
 */
#ifndef PL_DISTILL_H
#define PL_DISTILL_H

#include "config.h"
#include "model.h"

/* The loss on logits alone (no model): zs, zt are [n][k] student and
 * teacher logits, dl[n][k] holds the hard term's gradient already scaled
 * by `scale` and *loss its summed per-example loss; both become the
 * distillation loss's. Computed in double, stable for large logits and
 * tiny temperatures; any class count (a row's workspace is on the heap: if
 * it cannot be allocated, *loss is NaN and dl is left as it was;
 * pl_distill_batch reports that as PL_ENOMEM instead). */
void pl_distill_loss(int n, int k, const float *zs, const float *zt, double alpha, double temperature,
                     float scale, float *dl, double *loss);

/* The KL term alone, summed over the batch (no T², no alpha): tests. NaN
 * if its workspace cannot be allocated. */
double pl_distill_kl(int n, int k, const float *zs, const float *zt, double temperature);

/* Runs the teacher on x (eval mode) and applies pl_distill_loss with its
 * logits. teacher must be bound to a backend and have as many classes as
 * the student. PL_ECONFIG when it is missing or mismatched, PL_ENOMEM. */
pl_status pl_distill_batch(const pl_distill_cfg *cfg, pl_model *teacher, const float *x, int n, int classes,
                           const float *zs, float *dl, float scale, double *loss, pl_error *err);

#endif
