/*
 * groups.h — pruning groups: the sets of channels (or neurons) of a graph
 * model that can only be removed together.
 *
 * Every channel a dense conv2d or linear layer produces, and every channel
 * of the model's input, is a node. The graph ties nodes together:
 *   - batchnorm2d, relu, dropout, max/avg pooling, global_avgpool and
 *     flatten pass their input's channels through;
 *   - add unifies channel c of every input (its inputs share one channel
 *     space, so all their producers lose the same index);
 *   - concat's channels are its inputs' channels one after the other (a
 *     consumer of the concat loses the offset column of a removed one);
 *   - a depthwise conv2d (groups == in == out channels) passes its input's
 *     channel through; its weight slice and output channel go with it;
 *   - a flatten's consumer reads h*w columns per channel.
 * Nodes tied together (union-find) form one unit: removing it removes
 * every member channel, the batchnorm channels, depthwise slices and
 * consumer inputs on the way. A unit's members are the (layer, channel)
 * pairs of the dense conv/linear and depthwise layers it holds. Units with
 * the same member layers form one group (for a chain model: one group per
 * conv2d/linear layer, unit u = its channel u), which criteria and
 * schedules see as one prunable layer.
 *
 * A group is not prunable when one of its units touches the model's input
 * channels, the output layer's outputs (the classes), a grouped conv2d
 * that is not depthwise (its channel spaces stay whole: removing a
 * channel would unbalance its groups), or a slice layer (what it reads
 * and what it makes: its channel range sits at fixed offsets).
 *
 *     pl_groups G;
 *     pl_groups_derive(m, &G, &err);
 *     for (int g = 0; g < G.n; g++) ... G.g[g].units, G.g[g].e[u * width + k]
 *     pl_groups_free(&G);
 */
#ifndef PL_GROUPS_H
#define PL_GROUPS_H

#include "model.h"

#include <stdio.h>

/* Why a group is not prunable (flags, or-ed over its units' nodes). */
#define PL_GROUP_INPUT 1u   /* tied to the model's input channels */
#define PL_GROUP_OUTPUT 2u  /* tied to the output layer's outputs */
#define PL_GROUP_FIXED 4u   /* tied to a grouped (not depthwise) conv2d, or a concat of flattened inputs */
#define PL_GROUP_SLICE 8u   /* read or made by a slice layer (its channel offsets are fixed) */

typedef struct pl_group_entry {
    int layer; /* a dense conv2d/linear or depthwise conv2d */
    int chan;  /* its output channel */
} pl_group_entry;

typedef struct pl_group {
    int units;           /* current units */
    int width;           /* member entries per unit (the same layers for every unit) */
    pl_group_entry *e;   /* [units][width], ascending by layer within a unit; units
                          * ascending by their first entry's channel */
    unsigned flags;      /* PL_GROUP_*; 0 = prunable */
    pl_layer_type kind;  /* PL_LAYER_CONV2D or PL_LAYER_LINEAR when every member is one, else 0 */
} pl_group;

typedef struct pl_groups {
    int n;
    pl_group *g;
    /* the channel space of every layer's output: map[i][c] is the node of
     * channel c (for a flatten: of input channel c, which spans block[i]
     * output columns) */
    int n_layers;
    int **map;
    int *map_n;
    int64_t *block;
    int n_nodes;
    int *root;           /* union-find, fully compressed after derivation */
    int *node_group;     /* per root node: its group, or -1 */
    int *node_unit;      /* per root node: its unit in that group */
} pl_groups;

/* Derives the groups of the model as it is now. Deterministic: groups
 * are ordered by their member layers (for a chain: layer order). */
pl_status pl_groups_derive(const pl_model *m, pl_groups *G, pl_error *err);
void pl_groups_free(pl_groups *G);
/* The one layer that reads layer li's output, or -1 when none or several do. */
int pl_model_sole_consumer(const pl_model *m, int li);
/* The group layer `li` is a member of (-1 if none). */
int pl_groups_find(const pl_groups *G, int li);
/* A group's distinct member layers, ascending, into out (cap entries);
 * returns how many. */
int pl_group_members(const pl_group *g, int *out, int cap);
/* 1 when channel or neuron granularity (gran) can prune g: no PL_GROUP_*
 * flag, and every member of the granularity's kind (conv2d, linear). */
int pl_group_fits(const pl_group *g, pl_granularity gran);
/* Prints the groups (members, units, what one unit removes) to f. */
void pl_groups_print(const pl_model *m, const pl_groups *G, FILE *f);

#endif
