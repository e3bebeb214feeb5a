/*
 * surgery.h — structural surgery: a model physically loses output units of
 * one layer (and every input that read them), or a whole block of layers.
 * The pruner (prune.c, layer_prune.c) decides what goes; this cuts.
 *
 *     uint8_t keep[] = {1, 0, 1, 1};          // drop conv1's channel 1
 *     pl_model_remove_units(m, pl_model_find(m, "conv1"), keep, &err);
 *
 * Surviving weights, biases, masks and batchnorm statistics are kept
 * exactly (moved, never recomputed); gradients and optimizer state are
 * scratch and start again at zero (pl_layer_scratch_reset); activation
 * buffers are dropped (pl_model_reserve again). Shapes are recomputed by
 * the model's shape rule, so a valid model stays valid.
 */
#ifndef PL_SURGERY_H
#define PL_SURGERY_H

#include "model.h"

/* Removes output units of layer `li` whose keep[u] == 0 (keep has out_c
 * entries) and everything tied to them by the graph (groups.h): the
 * channels of every producer sharing an add with it, batchnorm channels,
 * depthwise slices, every consumer's input channels (concat offsets,
 * flatten→linear column blocks). PL_EINVAL for a layer without units to
 * cut, the output layer, a channel tied to the model's input, outputs or a
 * grouped conv2d, or a keep[] that removes every unit of a group. */
pl_status pl_model_remove_units(pl_model *m, int li, const uint8_t *keep, pl_error *err);

struct pl_groups;
/* Removes units u of group g with drop[g][u] != 0 (drop[g] may be NULL),
 * for groups derived from m as it is (pl_groups_derive), then reshapes.
 * PL_EINVAL for a group that is not prunable or would lose every unit. */
pl_status pl_model_remove_group_units(pl_model *m, const struct pl_groups *G, const uint8_t *const *drop,
                                      pl_error *err);
/* The cut alone, without reshaping: every channel whose node is dead[]
 * (indexed by node, see groups.h) goes from every layer that holds it.
 * Checks first and moves nothing on error. */
pl_status pl__model_cut(pl_model *m, const struct pl_groups *G, const uint8_t *dead, pl_error *err);

/* A removable block starts at a conv2d or linear layer that is not the
 * output layer and takes with it the batchnorm2d, relu and dropout layers
 * that directly follow; it is removable when its input shape equals its
 * output shape. Writes up to `cap` head indices and block lengths (layers,
 * head included); returns how many blocks there are. */
int pl_layer_blocks(const pl_model *m, int *head, int *len, int cap);
/* Layers in the block headed by layer `head`: the head and the batchnorm2d,
 * relu and dropout layers that directly follow it. In a graph model (add,
 * concat or grouped conv2d anywhere), a block is instead a residual branch
 * with its add: head reads x, the add sums x (an identity shortcut) and the
 * branch's end, and no other layer reads inside the branch; removing it
 * leaves the add's readers reading x. 0 when `head` starts no block. */
int pl_layer_block_len(const pl_model *m, int head);

/* Removes layers [first, first + len) and reconnects the graph (shapes are
 * recomputed; the rest of the model keeps every weight). PL_EINVAL when the
 * span's input and output shapes differ or it holds the output layer. */
pl_status pl_model_remove_layers(pl_model *m, int first, int len, pl_error *err);

#endif
