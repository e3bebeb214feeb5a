/* plugin_check_dataset.c — plugin-check rows for dataset plugins (what is
 * checked: plugin_check.h). */
#include "plugin_check_kinds.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK_READ_N 4

/* Reads first, last, middle and first again of an open split into fenced
 * buffers; 1 if the contract held (the buffers are returned in img and lab). */
static int ck_read(pl_instance *in, void *h, const pl_dataset_info *info, float **img,
                   int32_t **lab, char *why, size_t wn)
{
    const pl_dataset_ops *ops = pl_instance_ops(in);
    const int64_t chw = (int64_t)info->channels * info->height * info->width;
    const int64_t idx[CK_READ_N] = {0, info->count - 1, info->count / 2, 0};
    float *x = pl__ck_fguard_new(CK_READ_N * chw);
    float *lf = pl__ck_fguard_new(CK_READ_N); /* labels are int32: same size, same fence */
    *img = x;
    *lab = (int32_t *)lf;
    if (!x || !lf) {
        pl__ck_why(why, wn, "plugin-check ran out of memory for %lld values", (long long)(CK_READ_N * chw));
        return 0;
    }
    int32_t *y = (int32_t *)lf;
    for (int i = 0; i < CK_READ_N; i++)
        memcpy(&y[i], &ck_sentinel32, sizeof y[i]);
    pl_status st = ops->read(pl_instance_state(in), h, idx, CK_READ_N, x, y);
    size_t len0 = strlen(why);
    if (st != PL_OK) {
        pl__ck_why(why, wn, "read() returned %d (%s)", (int)st, pl__ck_plugin_error(in, st));
        return 0;
    }
    pl__ck_fguard_ok(x, CK_READ_N * chw, why, wn);
    char lwhy[256] = "";
    if (!pl__ck_fguard_ok(lf, CK_READ_N, lwhy, sizeof lwhy))
        pl__ck_why(why, wn, "labels: %s", lwhy);
    for (int64_t i = 0; i < CK_READ_N * chw; i++)
        if (!isfinite(x[i])) {
            pl__ck_why(why, wn, "image value %lld (example %lld) is %g (not written or not finite)",
                   (long long)(i % chw), (long long)idx[i / chw], x[i]);
            break;
        }
    for (int i = 0; i < CK_READ_N; i++)
        if (y[i] < 0 || y[i] >= info->classes) {
            pl__ck_why(why, wn, "label of example %lld is %d, outside [0, %d)", (long long)idx[i], y[i],
                   info->classes);
            break;
        }
    if (strlen(why) == len0 &&
        (memcmp(x, x + 3 * chw, (size_t)chw * sizeof *x) || y[0] != y[3]))
        pl__ck_why(why, wn, "example 0 read twice in one batch differs");
    return strlen(why) == len0;
}

void pl__ck_dataset(pl__ck *c)
{
    static const pl_split splits[] = {PL_SPLIT_TRAIN, PL_SPLIT_TEST};
    const pl_dataset_ops *ops = pl_plugin_get_desc(c->plugin)->ops;
    pl_instance *a = pl__ck_params(c, 1);
    if (!a) {
        pl__ck_row(c, CK_SKIP, "dataset checks", "no instance to check");
        return;
    }
    for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
        const char *sn = splits[s] == PL_SPLIT_TRAIN ? "train" : "test";
        char name[48], why[960] = "";
        snprintf(name, sizeof name, "open %s", sn);
        pl__ck_begin(c, name);
        pl_dataset_info info;
        memset(&info, 0, sizeof info);
        void *h = NULL;
        pl_status st = ops->open(pl_instance_state(a), splits[s], &h, &info);
        if (st != PL_OK) {
            pl__ck_row(c, CK_SKIP, name, "cannot open with the default parameters: %s",
                   pl__ck_plugin_error(a, st));
            continue;
        }
        if (info.count <= 0 || info.channels <= 0 || info.height <= 0 || info.width <= 0 ||
            info.classes <= 0 || memchr(info.checksum, 0, sizeof info.checksum) == NULL) {
            pl__ck_row(c, CK_FAIL, name, "implausible info: %lld examples, %dx%dx%d, %d classes%s",
                   (long long)info.count, info.channels, info.height, info.width, info.classes,
                   memchr(info.checksum, 0, sizeof info.checksum) ? "" : ", checksum not terminated");
            ops->close(pl_instance_state(a), h);
            continue;
        }
        pl__ck_row(c, CK_PASS, name, "%lld examples, %dx%dx%d, %d classes, %s", (long long)info.count,
               info.channels, info.height, info.width, info.classes,
               info.checksum[0] ? info.checksum : "no checksum");

        snprintf(name, sizeof name, "read %s", sn);
        pl__ck_begin(c, name);
        float *x = NULL;
        int32_t *y = NULL;
        int ok = ck_read(a, h, &info, &x, &y, why, sizeof why);
        if (ok)
            pl__ck_row(c, CK_PASS, name, "examples 0, %lld, %lld: finite, labels in range, guards intact, repeatable",
                   (long long)info.count - 1, (long long)info.count / 2);
        else
            pl__ck_row(c, CK_FAIL, name, "%s", why);

        snprintf(name, sizeof name, "deterministic %s", sn);
        pl__ck_begin(c, name);
        if (ok) {
            char ewhy[1024] = "";
            why[0] = 0;
            pl_instance *b = pl__ck_instance(c, 1, ewhy, sizeof ewhy);
            void *h2 = NULL;
            pl_dataset_info info2;
            memset(&info2, 0, sizeof info2);
            float *x2 = NULL;
            int32_t *y2 = NULL;
            const int64_t chw = (int64_t)info.channels * info.height * info.width;
            if (!b)
                pl__ck_why(why, sizeof why, "a second instance failed: %s", ewhy);
            else if ((st = ops->open(pl_instance_state(b), splits[s], &h2, &info2)) != PL_OK)
                pl__ck_why(why, sizeof why, "a second instance cannot open the split: %s",
                       pl__ck_plugin_error(b, st));
            else if (info2.count != info.count || info2.classes != info.classes ||
                     strcmp(info2.checksum, info.checksum))
                pl__ck_why(why, sizeof why, "a second instance reports different info");
            else if (ck_read(b, h2, &info2, &x2, &y2, why, sizeof why) &&
                     (memcmp(x, x2, (size_t)(CK_READ_N * chw) * sizeof *x) ||
                      memcmp(y, y2, CK_READ_N * sizeof *y)))
                pl__ck_why(why, sizeof why, "a second instance with the same seed read different examples");
            if (h2)
                ops->close(pl_instance_state(b), h2);
            pl__ck_fguard_free(x2);
            pl__ck_fguard_free((float *)y2);
            pl_instance_free(b);
            if (why[0])
                pl__ck_row(c, CK_FAIL, name, "%s", why);
            else
                pl__ck_row(c, CK_PASS, name, "a second instance with seed %d reads the same examples", CK_SEED);
        } else {
            pl__ck_row(c, CK_SKIP, name, "read failed");
        }
        pl__ck_fguard_free(x);
        pl__ck_fguard_free((float *)y);
        ops->close(pl_instance_state(a), h);
    }
    pl_instance_free(a);
}
