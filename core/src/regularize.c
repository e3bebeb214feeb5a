/* regularize.c — L1 / L2 / group-lasso penalties and filter-norm statistics. */
#include "regularize.h"
#include "fileio.h"
#include "strbuf.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *pl_reg_type_name(pl_reg_type t)
{
    switch (t) {
    case PL_REG_NONE: return "none";
    case PL_REG_L1: return "l1";
    case PL_REG_L2: return "l2";
    case PL_REG_GROUP_LASSO: return "group_lasso";
    case PL_REG_BN_L1: return "bn_l1";
    }
    return "?";
}

/* Can penalty t apply to layer l? bn_l1: a batchnorm2d's scales; the
 * others: conv2d/linear weights. */
static int has_weights(pl_reg_type t, const pl_layer *l)
{
    if (t == PL_REG_BN_L1)
        return l->type == PL_LAYER_BATCHNORM2D && l->nw > 0;
    return (l->type == PL_LAYER_CONV2D || l->type == PL_LAYER_LINEAR) && l->nw > 0 && l->out_c > 0;
}

/* Does cfg cover layer i of m? (the default: every conv2d/linear but the
 * output layer; for bn_l1 every batchnorm2d) */
static int reg_covers(const pl_reg_cfg *cfg, const pl_model *m, int i)
{
    if (!cfg || cfg->type == PL_REG_NONE)
        return 0;
    if (!cfg->n_layers)
        return cfg->type == PL_REG_BN_L1 || pl_model_is_prunable(m, i);
    for (size_t k = 0; k < cfg->n_layers; k++)
        if (!strcmp(cfg->layers[k], m->layers[i].name))
            return 1;
    return 0;
}

pl_status pl_regularizer_init(pl_regularizer *r, const pl_model *m, const pl_reg_cfg *cfg,
                              const char *phase, pl_error *err)
{
    memset(r, 0, sizeof *r);
    if (!cfg || cfg->type == PL_REG_NONE)
        return PL_OK;
    for (size_t k = 0; k < cfg->n_layers; k++) {
        int i = pl_model_find(m, cfg->layers[k]);
        if (i < 0)
            return pl_error_set(err, PL_ECONFIG,
                                "%s.regularize.layers names '%s', which model %s does not have", phase,
                                cfg->layers[k], m->name);
        if (!has_weights(cfg->type, &m->layers[i]))
            return pl_error_set(err, PL_ECONFIG,
                                "%s.regularize.layers names '%s' (%s), which has no %s to penalise",
                                phase, cfg->layers[k], pl_layer_type_name(m->layers[i].type),
                                cfg->type == PL_REG_BN_L1 ? "batchnorm2d scales" : "conv2d/linear weights");
    }
    r->layers = malloc((size_t)(m->n_layers > 0 ? m->n_layers : 1) * sizeof *r->layers);
    if (!r->layers)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    for (int i = 0; i < m->n_layers; i++)
        if (has_weights(cfg->type, &m->layers[i]) && reg_covers(cfg, m, i))
            r->layers[r->n++] = i;
    if (!r->n) {
        free(r->layers);
        r->layers = NULL;
        return pl_error_set(err, PL_ECONFIG,
                            cfg->type == PL_REG_BN_L1
                                ? "%s.regularize: model %s has no batchnorm2d layer for bn_l1 (use l1, l2 or "
                                  "group_lasso on its weights%.0s)"
                                : "%s.regularize: model %s has no conv2d/linear layer besides the output layer "
                                  "(name the layers with %s.regularize.layers)",
                            phase, m->name, phase);
    }
    r->type = cfg->type;
    r->coef = cfg->coef;
    return PL_OK;
}

void pl_regularizer_deinit(pl_regularizer *r)
{
    free(r->layers);
    memset(r, 0, sizeof *r);
}

/* P of one layer, and (when g != NULL) g += ∂P/∂w. */
static double layer_penalty(pl_reg_type t, double coef, const pl_layer *l, float *g)
{
    double p = 0;
    const float *w = l->w;
    switch (t) {
    case PL_REG_L1:
    case PL_REG_BN_L1: /* on a batchnorm2d, w is gamma */
        for (int64_t i = 0; i < l->nw; i++) {
            p += fabs((double)w[i]);
            if (g && w[i] != 0.0f)
                g[i] += (float)(w[i] > 0 ? coef : -coef);
        }
        return coef * p;
    case PL_REG_L2:
        for (int64_t i = 0; i < l->nw; i++) {
            p += (double)w[i] * w[i];
            if (g)
                g[i] += (float)(coef * w[i]);
        }
        return 0.5 * coef * p;
    case PL_REG_GROUP_LASSO: {
        int64_t row = l->nw / l->out_c;
        for (int u = 0; u < l->out_c; u++) {
            const float *wu = w + (int64_t)u * row;
            double s = 0;
            for (int64_t i = 0; i < row; i++)
                s += (double)wu[i] * wu[i];
            double norm = sqrt(s);
            p += norm;
            if (g && norm > 0) {
                double k = coef / norm;
                float *gu = g + (int64_t)u * row;
                for (int64_t i = 0; i < row; i++)
                    gu[i] += (float)(k * wu[i]);
            }
        }
        return coef * p;
    }
    case PL_REG_NONE:
        break;
    }
    return 0;
}

double pl_regularizer_penalty(const pl_regularizer *r, const pl_model *m)
{
    double p = 0;
    if (r->type == PL_REG_NONE)
        return 0;
    for (int k = 0; k < r->n; k++)
        p += layer_penalty(r->type, r->coef, &m->layers[r->layers[k]], NULL);
    return p;
}

double pl_regularizer_add_grad(const pl_regularizer *r, pl_model *m)
{
    double p = 0;
    if (r->type == PL_REG_NONE || r->coef == 0)
        return 0;
    for (int k = 0; k < r->n; k++) {
        pl_layer *l = &m->layers[r->layers[k]];
        p += layer_penalty(r->type, r->coef, l, l->gw);
    }
    return p;
}

void pl_regularizer_describe(const pl_regularizer *r, const pl_model *m, char *buf, size_t n)
{
    if (r->type == PL_REG_NONE) {
        snprintf(buf, n, "none");
        return;
    }
    size_t k = (size_t)snprintf(buf, n, "%s %g on ", pl_reg_type_name(r->type), r->coef);
    for (int i = 0; i < r->n && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? "," : "", m->layers[r->layers[i]].name);
}

/* ---- norm distribution ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile q of sorted v[n], linear interpolation between order statistics. */
static double quantile(const double *v, int n, double q)
{
    double pos = q * (double)(n - 1);
    int lo = (int)floor(pos);
    int hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (pos - (double)lo) * (v[hi] - v[lo]);
}

pl_status pl_norms_compute(const pl_model *m, pl_norm_stats **out, int *n, pl_error *err)
{
    *out = NULL;
    *n = 0;
    int count = 0, maxu = 1;
    for (int i = 0; i < m->n_layers; i++)
        if (has_weights(PL_REG_L1, &m->layers[i])) { /* conv2d/linear */
            count++;
            if (m->layers[i].out_c > maxu)
                maxu = m->layers[i].out_c;
        }
    pl_norm_stats *s = calloc((size_t)(count ? count : 1), sizeof *s);
    double *norms = malloc((size_t)maxu * sizeof *norms);
    if (!s || !norms) {
        free(s);
        free(norms);
        return pl_error_set(err, PL_ENOMEM, "out of memory for norm statistics");
    }
    int k = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const pl_layer *l = &m->layers[i];
        if (!has_weights(PL_REG_L1, l))
            continue;
        pl_norm_stats *t = &s[k++];
        snprintf(t->layer, sizeof t->layer, "%s", l->name);
        snprintf(t->type, sizeof t->type, "%s", pl_layer_type_name(l->type));
        t->units = l->out_c;
        t->weights = l->nw;
        int64_t row = l->nw / l->out_c;
        double sum = 0;
        for (int u = 0; u < l->out_c; u++) {
            double a = 0, q = 0;
            for (int64_t j = 0; j < row; j++) {
                double w = l->w[(int64_t)u * row + j];
                a += fabs(w);
                q += w * w;
            }
            t->l1 += a;
            t->l2sq += q;
            norms[u] = sqrt(q);
            t->group += norms[u];
            sum += norms[u];
        }
        qsort(norms, (size_t)l->out_c, sizeof *norms, cmp_double);
        const double qs[5] = {0, 0.25, 0.5, 0.75, 1};
        for (int j = 0; j < 5; j++)
            t->q[j] = quantile(norms, l->out_c, qs[j]);
        t->mean = sum / (double)l->out_c;
        int small = 0;
        for (int u = 0; u < l->out_c; u++)
            small += norms[u] < 0.1 * t->q[4];
        t->below_10pct = (double)small / (double)l->out_c;
    }
    free(norms);
    *out = s;
    *n = count;
    return PL_OK;
}

const char pl_norms_csv_header[] =
    "run_id,stage,layer,type,units,weights,l1,l2sq,group_l2,norm_min,norm_q25,norm_median,norm_q75,"
    "norm_max,norm_mean,below_10pct_max,regularize,penalty\n";

void pl_norms_csv_rows(FILE *f, const char *run_id, const char *stage, const pl_norm_stats *s, int n,
                       const pl_reg_cfg *reg, const pl_model *m)
{
    for (int k = 0; k < n; k++) {
        const pl_norm_stats *t = &s[k];
        int i = pl_model_find(m, t->layer);
        int on = i >= 0 && reg_covers(reg, m, i);
        double pen = 0;
        char what[48] = "none";
        if (on) {
            pen = reg->type == PL_REG_L1 ? reg->coef * t->l1
                  : reg->type == PL_REG_L2 ? 0.5 * reg->coef * t->l2sq
                                            : reg->coef * t->group;
            snprintf(what, sizeof what, "%s:%g", pl_reg_type_name(reg->type), reg->coef);
        }
        fprintf(f, "%s,%s,%s,%s,%d,%lld,%.9g,%.9g,%.9g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.4f,%s,%.9g\n", run_id,
                stage, t->layer, t->type, t->units, (long long)t->weights, t->l1, t->l2sq, t->group, t->q[0],
                t->q[1], t->q[2], t->q[3], t->q[4], t->mean, t->below_10pct, what, pen);
    }
}

void pl_norms_print(FILE *f, const char *title, const pl_norm_stats *s, int n)
{
    fprintf(f, "%s: L2 norm per filter/neuron\n", title);
    fprintf(f, "  %-10s %6s %9s %9s %9s %9s %9s %8s\n", "layer", "units", "min", "q25", "median", "q75", "max",
            "<10%max");
    for (int k = 0; k < n; k++)
        fprintf(f, "  %-10s %6d %9.4f %9.4f %9.4f %9.4f %9.4f %7.1f%%\n", s[k].layer, s[k].units, s[k].q[0],
                s[k].q[1], s[k].q[2], s[k].q[3], s[k].q[4], 100.0 * s[k].below_10pct);
}

pl_status pl_norms_write_run(const char *dir, const char *run_id, const pl_model *baseline,
                             const pl_model *final, const pl_reg_cfg *reg, FILE *print, pl_error *err)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/norms", dir);
    pl_status s = pl_mkdirs(path, err);
    if (s)
        return s;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return pl_error_set(err, PL_ENOMEM, "out of memory");
    fputs(pl_norms_csv_header, f);
    const pl_model *ms[2] = {baseline, final};
    const char *stage[2] = {"baseline", "final"};
    for (int k = 0; k < 2 && !s; k++) {
        pl_norm_stats *st;
        int n;
        s = pl_norms_compute(ms[k], &st, &n, err);
        if (s)
            break;
        pl_norms_csv_rows(f, run_id, stage[k], st, n, reg, ms[k]);
        if (print)
            pl_norms_print(print, stage[k], st, n);
        free(st);
    }
    if (fclose(f) && !s)
        s = pl_error_set(err, PL_ENOMEM, "out of memory");
    if (!s) {
        snprintf(path, sizeof path, "%s/norms/%s.csv", dir, run_id);
        s = pl_write_atomic(path, text, len, err);
    }
    free(text);
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

pl_status pl_norms_gather(const char *dir, pl_error *err)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/norms", dir);
    DIR *d = opendir(path);
    if (!d)
        return PL_OK;
    char **names = NULL;
    size_t n = 0, cap = 0;
    pl_status s = PL_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".csv") || strstr(de->d_name, ".tmp."))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **q = realloc(names, cap * sizeof *q);
            if (!q) {
                s = pl_error_set(err, PL_ENOMEM, "out of memory");
                break;
            }
            names = q;
        }
        if (!(names[n] = strdup(de->d_name))) {
            s = pl_error_set(err, PL_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (!s && n)
        qsort(names, n, sizeof *names, cmp_str);
    pl__buf b = {0};
    pl__buf_puts(&b, pl_norms_csv_header);
    for (size_t i = 0; i < n && !s; i++) {
        char file[4700], *text = NULL;
        size_t len = 0;
        snprintf(file, sizeof file, "%s/%s", path, names[i]);
        s = pl__read_file(file, &text, &len, err);
        if (s)
            break;
        /* drop each file's own header line */
        const char *body = strncmp(text, "run_id,", 7) ? text : strchr(text, '\n');
        if (body && *body == '\n')
            body++;
        if (body)
            pl__buf_puts(&b, body);
        free(text);
    }
    if (!s && b.failed)
        s = pl_error_set(err, PL_ENOMEM, "out of memory");
    if (!s && n) {
        snprintf(path, sizeof path, "%s/norms.csv", dir);
        s = pl_write_atomic(path, b.data, b.len, err);
    }
    pl__buf_free(&b);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return s;
}
