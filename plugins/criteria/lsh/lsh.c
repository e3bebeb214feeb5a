/*
 * lsh — redundancy criterion: near-duplicate units found by
 * locality-sensitive hashing go first.
 *
 * For channel and neuron granularity each unit's weight vector x_u (masked
 * weights read as 0; the bias is not part of it) is hashed by random-
 * hyperplane LSH (Charikar 2002): in each of `tables` tables, `bits`
 * Gaussian hyperplanes h_b give the key bit [h_b · x_u >= 0]. The sign does
 * not depend on |x_u|, so this hashes the L2-normalised vector; two units
 * at angle θ agree on a bit with probability 1 − θ/π. The hyperplanes of
 * table t come from api->rng_seed(seed, "lsh:<layer>:<t>"), so they depend
 * only on the run's seed, the layer name and the unit size.
 *
 * Units whose keys agree in at least `min_tables` tables are linked, and
 * linked units form groups (union-find, so linking is transitive). Scores
 * (higher = keep):
 *   - a unit in no group:            ‖x_u‖
 *   - the strongest unit of a group: ‖x_u‖ (largest norm, ties → lower index)
 *   - every other group member:      ‖x_u‖ · (1 − max(0, cos(x_u, x_keep)))
 * so an exact duplicate scores 0 and the most redundant units are pruned
 * first. All-zero units (already pruned) score 0 and are not hashed.
 * Identical units have identical keys in every table, so they always
 * collide (min_tables <= tables is enforced at init) whatever the seed.
 *
 * Weight granularity has no vectors to compare: the score falls back to
 * |w| (0 where masked). Layer granularity (one unit) scores ‖x‖.
 *
 * Cost: tables·bits·unit_size Gaussian draws and dot products per unit,
 * plus tables·units²/2 key comparisons. Sums run in double, in index
 * order; nothing depends on the thread count, so scores are bit-for-bit
 * reproducible for a seed.
 *
 * With `merge: true` the plugin's merge slot (ABI 1.5) gives the host each
 * group member's kept twin and the least-squares factor c of its incoming
 * weights and bias onto the twin's; the host then folds c times the removed
 * unit's outgoing weights into the twin's (core/src/merge.h) instead of
 * only cutting them. lsh_merge.h is the same fold on plain arrays.
 */
#include <prunelab/plugin.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct lsh_state {
    const pl_env *env;
    int tables, bits, min_tables;
    int merge; /* offer twins to the host (merge slot, ABI 1.5) */
} lsh_state;

static pl_status lsh_init(const pl_env *env, void **state)
{
    const pl_host_api *api = env->api;
    lsh_state *s = api->alloc(sizeof *s);
    if (!s) {
        api->set_error(env->ctx, "out of memory");
        return PL_ENOMEM;
    }
    s->env = env;
    s->tables = (int)api->param_int(env->params, "tables");
    s->bits = (int)api->param_int(env->params, "bits");
    s->min_tables = (int)api->param_int(env->params, "min_tables");
    s->merge = api->param_bool(env->params, "merge");
    if (s->min_tables > s->tables) {
        api->set_error(env->ctx, "min_tables (%d) must not exceed tables (%d)", s->min_tables,
                       s->tables);
        api->free(s);
        return PL_EINVAL;
    }
    *state = s;
    return PL_OK;
}

static void lsh_fini(void *state)
{
    lsh_state *s = state;
    if (s)
        s->env->api->free(s);
}

static pl_status lsh_check_view(const pl_env *env, const pl_unit_view *v, const double *scores,
                                const int64_t *n_out)
{
    if (!v || !scores || !n_out) {
        env->api->set_error(env->ctx, "score() called with a NULL view or output");
        return PL_EINVAL;
    }
    if (!v->layer || !v->weight || v->units <= 0 || v->unit_size <= 0 ||
        v->units > INT64_MAX / v->unit_size) {
        env->api->set_error(env->ctx, "layer '%s': invalid unit view (units %lld, unit_size %lld, weight %s)",
                            v->layer ? v->layer : "?", (long long)v->units,
                            (long long)v->unit_size, v->weight ? "set" : "NULL");
        return PL_EINVAL;
    }
    const int64_t n = v->units * v->unit_size;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v->weight[i])) {
            env->api->set_error(env->ctx, "layer '%s': non-finite weight at index %lld", v->layer,
                                (long long)i);
            return PL_EPLUGIN;
        }
    return PL_OK;
}

/* Weight i as the criterion sees it: 0 where masked. */
static inline double lsh_w(const pl_unit_view *v, int64_t i)
{
    return v->mask && v->mask[i] == 0.0f ? 0.0 : (double)v->weight[i];
}

static double lsh_dot(const pl_unit_view *v, int64_t a, int64_t b)
{
    const int64_t d = v->unit_size;
    double s = 0.0;
    for (int64_t i = 0; i < d; i++)
        s += lsh_w(v, a * d + i) * lsh_w(v, b * d + i);
    return s;
}

/* Seeds r with the stream "lsh:<layer>:<table>". */
static pl_status lsh_seed_table(const pl_env *env, const char *layer, int table, pl_rng *r)
{
    char small[256];
    int n = snprintf(small, sizeof small, "lsh:%s:%d", layer, table);
    if (n < 0)
        return PL_EINVAL;
    if ((size_t)n < sizeof small) {
        env->api->rng_seed(r, env->seed, small);
        return PL_OK;
    }
    char *big = env->api->alloc((size_t)n + 1); /* a very long layer name */
    if (!big) {
        env->api->set_error(env->ctx, "out of memory for the stream name of layer '%s'", layer);
        return PL_ENOMEM;
    }
    snprintf(big, (size_t)n + 1, "lsh:%s:%d", layer, table);
    env->api->rng_seed(r, env->seed, big);
    env->api->free(big);
    return PL_OK;
}

/* n standard normal values (Box-Muller, both outputs used). */
static void lsh_gaussians(const pl_host_api *api, pl_rng *r, double *out, int64_t n)
{
    for (int64_t i = 0; i < n; i += 2) {
        const double u1 = 1.0 - api->rng_uniform(r); /* (0, 1] */
        const double u2 = api->rng_uniform(r);
        const double rad = sqrt(-2.0 * log(u1));
        out[i] = rad * cos(6.283185307179586 * u2);
        if (i + 1 < n)
            out[i + 1] = rad * sin(6.283185307179586 * u2);
    }
}

static int64_t lsh_find(int64_t *parent, int64_t u)
{
    while (parent[u] != u) {
        parent[u] = parent[parent[u]]; /* path halving */
        u = parent[u];
    }
    return u;
}

/* keys[t*units + u] for every live unit (norm > 0). */
static pl_status lsh_hash(const lsh_state *s, const pl_unit_view *v, const double *norm,
                          uint64_t *keys)
{
    const pl_env *env = s->env;
    const int64_t d = v->unit_size;
    double *planes = env->api->alloc((size_t)s->bits * (size_t)d * sizeof(double));
    if (!planes) {
        env->api->set_error(env->ctx, "layer '%s': out of memory for %d hyperplanes of %lld weights",
                            v->layer, s->bits, (long long)d);
        return PL_ENOMEM;
    }
    pl_status st = PL_OK;
    for (int t = 0; t < s->tables && st == PL_OK; t++) {
        pl_rng r;
        if ((st = lsh_seed_table(env, v->layer, t, &r)) != PL_OK)
            break;
        lsh_gaussians(env->api, &r, planes, (int64_t)s->bits * d);
        for (int64_t u = 0; u < v->units; u++) {
            uint64_t key = 0;
            if (norm[u] > 0.0)
                for (int b = 0; b < s->bits; b++) {
                    const double *h = planes + (int64_t)b * d;
                    double p = 0.0;
                    for (int64_t i = 0; i < d; i++)
                        p += h[i] * lsh_w(v, u * d + i);
                    if (p >= 0.0)
                        key |= (uint64_t)1 << b;
                }
            keys[(int64_t)t * v->units + u] = key;
        }
    }
    env->api->free(planes);
    return st;
}

/* Groups colliding units and writes the scores (see the top of the file). */
static pl_status lsh_group_score(const lsh_state *s, const pl_unit_view *v, const double *norm,
                                 double *scores, int64_t *twin)
{
    const pl_host_api *api = s->env->api;
    const int64_t U = v->units;
    uint64_t *keys = api->alloc((size_t)s->tables * (size_t)U * sizeof *keys);
    int64_t *parent = api->alloc((size_t)U * sizeof *parent);
    int64_t *keep = api->alloc((size_t)U * sizeof *keep);
    if (!keys || !parent || !keep) {
        api->free(keys);
        api->free(parent);
        api->free(keep);
        api->set_error(s->env->ctx, "layer '%s': out of memory for the hash tables of %lld units",
                       v->layer, (long long)U);
        return PL_ENOMEM;
    }
    pl_status st = lsh_hash(s, v, norm, keys);
    if (st == PL_OK) {
        for (int64_t u = 0; u < U; u++) {
            parent[u] = u;
            keep[u] = -1;
        }
        for (int64_t i = 0; i < U; i++) {
            if (norm[i] <= 0.0)
                continue;
            for (int64_t j = i + 1; j < U; j++) {
                if (norm[j] <= 0.0)
                    continue;
                int hits = 0;
                for (int t = 0; t < s->tables; t++)
                    hits += keys[(int64_t)t * U + i] == keys[(int64_t)t * U + j];
                if (hits >= s->min_tables) {
                    int64_t a = lsh_find(parent, i), b = lsh_find(parent, j);
                    if (a != b)
                        parent[a > b ? a : b] = a < b ? a : b;
                }
            }
        }
        /* the strongest member of each group; ties go to the lower index */
        for (int64_t u = 0; u < U; u++) {
            if (norm[u] <= 0.0)
                continue;
            int64_t r = lsh_find(parent, u);
            if (keep[r] < 0 || norm[u] > norm[keep[r]])
                keep[r] = u;
        }
        for (int64_t u = 0; u < U; u++) {
            if (norm[u] <= 0.0) {
                scores[u] = 0.0;
                continue;
            }
            const int64_t k = keep[lsh_find(parent, u)];
            if (twin) /* merge: every other group member stands in for the strongest */
                twin[u] = k == u ? -1 : k;
            if (k == u) {
                scores[u] = norm[u];
                continue;
            }
            double c = lsh_dot(v, u, k) / (norm[u] * norm[k]);
            c = c < 0.0 ? 0.0 : c > 1.0 ? 1.0 : c;
            scores[u] = norm[u] * (1.0 - c);
        }
    }
    api->free(keys);
    api->free(parent);
    api->free(keep);
    return st;
}

/* scores[] and, when twin is set, each unit's twin (-1 = none) */
static pl_status lsh_run(const lsh_state *s, const pl_unit_view *v, double *scores, int64_t *twin);

static pl_status lsh_score(void *state, const pl_unit_view *v, double *scores, int64_t *n_out)
{
    const lsh_state *s = state;
    pl_status st = lsh_check_view(s->env, v, scores, n_out);
    if (st != PL_OK)
        return st;
    if ((st = lsh_run(s, v, scores, NULL)) == PL_OK)
        *n_out = v->units;
    return st;
}

/* merge slot (ABI 1.5): twin = the strongest unit of u's group, coef = the
 * least-squares c of [w_u, b_u] ~ c·[w_k, b_k] (lsh_merge.h), kept only
 * when c > 0; with `merge: false` no unit has a twin (the host removes). */
static pl_status lsh_merge(void *state, const pl_unit_view *v, int64_t *twin, double *coef)
{
    const lsh_state *s = state;
    const pl_host_api *api = s->env->api;
    int64_t n_out = 0;
    if (!twin || !coef || !v)
        return lsh_check_view(s->env, v, NULL, NULL);
    for (int64_t u = 0; u < v->units; u++)
        twin[u] = -1, coef[u] = 0.0;
    if (!s->merge || v->granularity == PL_GRAN_WEIGHT || v->granularity == PL_GRAN_LAYER)
        return PL_OK;
    double *sc = api->alloc((size_t)v->units * sizeof *sc);
    if (!sc) {
        api->set_error(s->env->ctx, "layer '%s': out of memory", v->layer ? v->layer : "?");
        return PL_ENOMEM;
    }
    pl_status st = lsh_check_view(s->env, v, sc, &n_out);
    if (st == PL_OK)
        st = lsh_run(s, v, sc, twin);
    api->free(sc);
    if (st != PL_OK)
        return st;
    const int64_t d = v->unit_size;
    for (int64_t u = 0; u < v->units; u++) {
        const int64_t k = twin[u];
        if (k < 0)
            continue;
        double uk = v->bias ? (double)v->bias[u] * v->bias[k] : 0.0;
        double kk = v->bias ? (double)v->bias[k] * v->bias[k] : 0.0;
        for (int64_t i = 0; i < d; i++) {
            uk += lsh_w(v, u * d + i) * lsh_w(v, k * d + i);
            kk += lsh_w(v, k * d + i) * lsh_w(v, k * d + i);
        }
        coef[u] = kk > 0.0 ? uk / kk : 0.0;
        if (!(coef[u] > 0.0))
            twin[u] = -1, coef[u] = 0.0;
    }
    return PL_OK;
}

static pl_status lsh_run(const lsh_state *s, const pl_unit_view *v, double *scores, int64_t *twin)
{
    pl_status st;
    if (v->granularity == PL_GRAN_WEIGHT) {
        const int64_t n = v->units * v->unit_size;
        for (int64_t i = 0; i < n; i++)
            scores[i] = fabs(lsh_w(v, i));
        return PL_OK;
    }
    const int64_t d = v->unit_size;
    int64_t live = 0;
    for (int64_t u = 0; u < v->units; u++) {
        double ss = 0.0;
        for (int64_t i = 0; i < d; i++) {
            const double w = lsh_w(v, u * d + i);
            ss += w * w;
        }
        scores[u] = sqrt(ss); /* the norm, kept when u is in no group */
        live += ss > 0.0;
    }
    if (live >= 2) {
        /* the norms live in scores[] until lsh_group_score overwrites them */
        double *norm = s->env->api->alloc((size_t)v->units * sizeof *norm);
        if (!norm) {
            s->env->api->set_error(s->env->ctx, "layer '%s': out of memory", v->layer);
            return PL_ENOMEM;
        }
        memcpy(norm, scores, (size_t)v->units * sizeof *norm);
        st = lsh_group_score(s, v, norm, scores, twin);
        s->env->api->free(norm);
        if (st != PL_OK)
            return st;
    }
    return PL_OK;
}

static const pl_param_spec lsh_params[] = {
    {.name = "tables", .type = PL_PARAM_INT, .def = "4", .min = 1, .max = 64,
     .doc = "hash tables (independent sets of hyperplanes)"},
    {.name = "bits", .type = PL_PARAM_INT, .def = "8", .min = 1, .max = 64,
     .doc = "hyperplanes per table; more bits = only closer vectors collide"},
    {.name = "min_tables", .type = PL_PARAM_INT, .def = "2", .min = 1, .max = 64,
     .doc = "tables two units must collide in to count as near-duplicates (<= tables)"},
    {.name = "merge", .type = PL_PARAM_BOOL, .def = "false",
     .doc = "fold a removed duplicate's outgoing weights into its kept twin instead of only removing it"},
    {.name = NULL},
};

static const pl_criterion_ops lsh_ops = {
    .needs = 0,
    .score = lsh_score,
    .merge = lsh_merge,
    .reserved = {0},
};

PL_PLUGIN_EXPORT const pl_plugin_desc prunelab_plugin_desc = {
    PL_PLUGIN_DESC_HEADER,
    .kind = PL_KIND_CRITERION,
    .name = "lsh",
    .version = "1.1.0",
    .description = "redundancy: LSH near-duplicates score ||w||*(1-cos) to their kept twin, others ||w||",
    .params = lsh_params,
    .init = lsh_init,
    .fini = lsh_fini,
    .ops = &lsh_ops,
    .reserved = {0},
};
