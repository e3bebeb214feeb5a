/*
 * dataset.augment (augment.h): the crop and flip of one small image checked
 * by hand, the in-place shift against a plain copy for every offset, a
 * batch's draws fixed by (seed, phase, epoch, batch) and different for
 * another seed, every offset and both flips drawn, nothing done when off;
 * the schema (defaults, ranges, taken out of the plugin's parameters, in
 * the identity and the baseline key) with errors at file:line:col; a
 * training phase sees augmented batches, evaluation does not.
 */
#include "augment.h"
#include "config.h"
#include "model.h"
#include "pltest.h"
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

Test(augment_image, shift_and_flip_by_hand)
{
    /* 1 channel 3x3:   1 2 3
     *                  4 5 6
     *                  7 8 9 */
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    /* dy 1, dx -1: out(y, x) = in(y+1, x-1) -> 0 4 5 / 0 7 8 / 0 0 0 */
    pl_augment_image(x, 1, 3, 3, 1, -1, 0);
    float want1[9] = {0, 4, 5, 0, 7, 8, 0, 0, 0};
    cr_expect(!memcmp(x, want1, sizeof x), "shift: %g %g %g / %g %g %g / %g %g %g", x[0], x[1], x[2], x[3], x[4],
              x[5], x[6], x[7], x[8]);
    /* then mirrored: 5 4 0 / 8 7 0 / 0 0 0 */
    float y[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    pl_augment_image(y, 1, 3, 3, 1, -1, 1);
    float want2[9] = {5, 4, 0, 8, 7, 0, 0, 0, 0};
    cr_expect(!memcmp(y, want2, sizeof y), "shift+flip: %g %g %g / %g %g %g / %g %g %g", y[0], y[1], y[2], y[3],
              y[4], y[5], y[6], y[7], y[8]);
    /* flip only, 2 channels of 1x4: rows reversed per channel */
    float z[8] = {1, 2, 3, 4, 5, 6, 7, 8}, want3[8] = {4, 3, 2, 1, 8, 7, 6, 5};
    pl_augment_image(z, 2, 1, 4, 0, 0, 1);
    cr_expect(!memcmp(z, want3, sizeof z));
    /* dy -1, dx 2 on 2x3 (6 values): out(y,x) = in(y-1, x+2) -> 0 0 0 / 3 0 0 */
    float w[6] = {1, 2, 3, 4, 5, 6}, want4[6] = {0, 0, 0, 3, 0, 0};
    pl_augment_image(w, 1, 2, 3, -1, 2, 0);
    cr_expect(!memcmp(w, want4, sizeof w), "%g %g %g / %g %g %g", w[0], w[1], w[2], w[3], w[4], w[5]);
}

Test(augment_image, in_place_equals_a_plain_copy_for_every_offset)
{
    enum { C = 2, H = 5, W = 7 };
    float in[C * H * W], x[C * H * W], want[C * H * W];
    for (int i = 0; i < C * H * W; i++)
        in[i] = (float)(i + 1);
    for (int dy = -(H - 1); dy < H; dy++)
        for (int dx = -(W - 1); dx < W; dx++)
            for (int f = 0; f < 2; f++) {
                for (int c = 0; c < C; c++)
                    for (int r = 0; r < H; r++)
                        for (int q = 0; q < W; q++) {
                            int sq = f ? W - 1 - q : q; /* flip after the shift */
                            int sy = r + dy, sx = sq + dx;
                            want[(c * H + r) * W + q] =
                                sy >= 0 && sy < H && sx >= 0 && sx < W ? in[(c * H + sy) * W + sx] : 0.0f;
                        }
                memcpy(x, in, sizeof x);
                pl_augment_image(x, C, H, W, dy, dx, f);
                cr_expect(!memcmp(x, want, sizeof x), "dy %d dx %d flip %d", dy, dx, f);
            }
}

enum { N = 64, IC = 3, IH = 6, IW = 6, IMG = IC * IH * IW };

static void fill(float *x)
{
    for (int i = 0; i < N * IMG; i++)
        x[i] = (float)(1 + i % 997);
}

Test(augment_batch, deterministic_per_seed_and_off_is_a_no_op)
{
    static float a[N * IMG], b[N * IMG], c[N * IMG], orig[N * IMG];
    pl_augment_cfg cfg = {.crop_pad = 2, .hflip = 1};
    fill(orig);
    memcpy(a, orig, sizeof a);
    memcpy(b, orig, sizeof b);
    pl_augment_batch(&cfg, 7, "train", 0, 128, a, N, IC, IH, IW);
    pl_augment_batch(&cfg, 7, "train", 0, 128, b, N, IC, IH, IW);
    cr_expect(!memcmp(a, b, sizeof a), "same seed, phase, epoch and batch: same images");
    cr_expect(memcmp(a, orig, sizeof a), "augmentation changed nothing");
    const struct { uint64_t seed; const char *phase; int ep; int64_t first; } other[] = {
        {8, "train", 0, 128}, {7, "retrain", 0, 128}, {7, "train", 1, 128}, {7, "train", 0, 192}};
    for (int k = 0; k < 4; k++) {
        memcpy(c, orig, sizeof c);
        pl_augment_batch(&cfg, other[k].seed, other[k].phase, other[k].ep, other[k].first, c, N, IC, IH, IW);
        cr_expect(memcmp(a, c, sizeof a), "case %d: another seed/phase/epoch/batch gives the same images", k);
    }
    pl_augment_cfg off = {0};
    memcpy(c, orig, sizeof c);
    pl_augment_batch(&off, 7, "train", 0, 0, c, N, IC, IH, IW);
    pl_augment_batch(NULL, 7, "train", 0, 0, c, N, IC, IH, IW);
    cr_expect(!memcmp(c, orig, sizeof c), "augment off must not touch the batch");
}

Test(augment_batch, every_offset_and_both_flips_are_drawn)
{
    /* one-hot images: the 1 lands where (dy, dx, flip) put it, which tells the draw */
    enum { M = 1000, S = 9 };
    static float x[M * S * S];
    memset(x, 0, sizeof x);
    for (int i = 0; i < M; i++)
        x[i * S * S + 4 * S + 3] = 1; /* (4, 3): 4 - dy, then flip */
    pl_augment_cfg cfg = {.crop_pad = 2, .hflip = 1};
    pl_augment_batch(&cfg, 3, "train", 0, 0, x, M, 1, S, S);
    int seen[S * S] = {0};
    for (int i = 0; i < M; i++)
        for (int p = 0; p < S * S; p++)
            seen[p] += x[i * S * S + p] == 1; /* unflipped column 3 - dx in [1, 5]; flipped 8 - that */
    int cells = 0;
    for (int p = 0; p < S * S; p++)
        cells += seen[p] > 0;
    /* rows 2..6 x columns 1..7 (unflipped 1..5 and flipped 3..7): 5 x 7 = 35 cells */
    cr_expect_eq(cells, 35, "%d distinct positions", cells);
    for (int r = 0; r < S; r++)
        for (int q = 0; q < S; q++)
            if (seen[r * S + q])
                cr_expect(r >= 2 && r <= 6 && q >= 1 && q <= 7, "the pixel reached (%d, %d)", r, q);
    int right = 0, left = 0; /* columns 6, 7 only by a flip; 1, 2 only without */
    for (int r = 0; r < S; r++)
        right += seen[r * S + 6] + seen[r * S + 7], left += seen[r * S + 1] + seen[r * S + 2];
    cr_expect(right > 150 && left > 150, "flips %d / unflipped %d of about 200 each", right, left);
}

/* ---- configuration ------------------------------------------------------------------ */

#define HEAD "name: a\nmodel: configs/models/simple_cnn.yaml\n"
#define TAIL "train: {epochs: 1}\n"

Test(augment_config, decodes_leaves_the_plugin_params_and_is_in_the_identity)
{
    pl_experiment *x;
    pl_error err;
    cr_assert_eq(pltest_experiment_text(HEAD "dataset:\n  plugin: synthetic\n  noise: 2\n  augment: {crop_pad: 3, hflip: true}\n" TAIL,
                           NULL, 0, &x, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(x->augment.crop_pad, 3);
    cr_expect_eq(x->augment.hflip, 1);
    cr_expect_eq(x->dataset.n_params, 1, "only noise is the plugin's");
    cr_expect_str_eq(x->dataset.params[0].key, "noise");
    char *d = pl_experiment_dump(x);
    cr_expect(strstr(d, "dataset.augment.crop_pad: 3\ndataset.augment.hflip: true\n"), "%s", d);
    free(d);
    char with[17], base1[17];
    memcpy(with, x->run_id, 17);
    pl_experiment_baseline_key(x, base1);
    pl_experiment_free(x);

    const char *plain = HEAD "dataset:\n  plugin: synthetic\n  noise: 2\n" TAIL;
    cr_assert_eq(pltest_experiment_text(plain, NULL, 0, &x, &err), PL_OK, "%s", err.msg);
    char base2[17];
    pl_experiment_baseline_key(x, base2);
    cr_expect_str_neq(with, x->run_id, "a run with augmentation is another run");
    cr_expect_str_neq(base1, base2, "and trains another baseline");
    char *d2 = pl_experiment_dump(x);
    cr_expect(!strstr(d2, "augment"), "%s", d2);
    free(d2);
    char none[17];
    memcpy(none, x->run_id, 17);
    pl_experiment_free(x);

    /* --set works, each value changes the identity; all off = no augmentation */
    const char *sets[][2] = {{"dataset.augment.crop_pad=3", NULL}, {"dataset.augment.hflip=true", NULL},
                             {"dataset.augment.crop_pad=0", "dataset.augment.hflip=false"}};
    char ids[3][17];
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(pltest_experiment_text(plain, sets[k], sets[k][1] ? 2 : 1, &x, &err), PL_OK, "%s", err.msg);
        cr_expect_eq(x->dataset.n_params, 1, "--set %s reached the plugin", sets[k][0]);
        memcpy(ids[k], x->run_id, 17);
        pl_experiment_free(x);
    }
    cr_expect_str_neq(ids[0], ids[1]);
    cr_expect_str_neq(ids[0], none);
    cr_expect_str_neq(ids[1], none);
    cr_expect_str_eq(ids[2], none, "crop_pad 0 and no flip is no augmentation");
}

Test(augment_config, bad_values_are_one_line_errors_at_the_key)
{
    struct { const char *aug; const char *part; } c[] = {
        {"{crop_pad: -1}", ":5:23: dataset.augment.crop_pad must be in [0, 4096]"},
        {"{crop_pad: 1.5}", ":5:23: dataset.augment.crop_pad"},
        {"{crop_pad: 5000}", "dataset.augment.crop_pad must be in [0, 4096] pixels (got 5000"},
        {"{hflip: maybe}", ":5:20: dataset.augment.hflip"},
        {"{crop: 4}", "unknown key 'crop'"},
        {"4", ":5:12: dataset.augment"},
    };
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        char text[512];
        snprintf(text, sizeof text, HEAD "dataset:\n  plugin: synthetic\n  augment: %s\n" TAIL, c[k].aug);
        pl_experiment *x;
        pl_error err = {0};
        cr_expect_eq(pltest_experiment_text(text, NULL, 0, &x, &err), PL_ECONFIG, "%s was accepted", c[k].aug);
        cr_expect(strstr(err.msg, c[k].part), "%s: '%s' lacks '%s'", c[k].aug, err.msg, c[k].part);
        cr_expect(!strchr(err.msg, '\n'), "one line: %s", err.msg);
    }
}

/* ---- training and evaluation -------------------------------------------------------- */

static pl_model *train_tiny(pl_data *d)
{
    pl_error err;
    pl_model *m = pltest_model(PLTEST_TINY_YAML, 2);
    pltest_bind_ref(m);
    pl_phase_cfg cfg = {.epochs = 1, .batch_size = 32,
                        .optim = {.type = PL_OPTIM_ADAM, .lr = 3e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                                  .lr_schedule = PL_LR_CONSTANT}};
    pl_train_opts o = {.progress = PL_PROGRESS_NONE};
    pl_phase_stats st;
    cr_assert_eq(pl_train_phase(m, d, &cfg, 7, "train", &o, &st, &err), PL_OK, "%s", err.msg);
    return m;
}

Test(augment_train, training_batches_only)
{
    const char *kv[] = {"height=8", "width=8", "classes=4", "train_count=256", "test_count=128", NULL};
    pl_instance *ds = pltest_instance(PL_KIND_DATASET, "synthetic", kv, 3, 1);
    pl_data tr, te;
    pl_error err;
    cr_assert_eq(pl_data_open(ds, PL_SPLIT_TRAIN, &tr, &err), PL_OK, "%s", err.msg);
    cr_assert_eq(pl_data_open(ds, PL_SPLIT_TEST, &te, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(tr.augment.crop_pad, 0, "opened data is not augmented");
    pl_model *plain = train_tiny(&tr), *again;
    tr.augment = (pl_augment_cfg){.crop_pad = 2, .hflip = 1};
    pl_model *aug = train_tiny(&tr);
    cr_expect(!pltest_same_weights(plain, aug, 0), "augmentation did not reach the training batches");
    again = train_tiny(&tr);
    cr_expect(pltest_same_weights(aug, again, 0), "augmented training is not reproducible");
    /* reads (calibration, evaluation) are never augmented */
    float a[16 * 64], b[16 * 64];
    int32_t ya[16], yb[16];
    cr_assert_eq(pl_data_read(&tr, NULL, 0, 16, a, ya, &err), PL_OK);
    tr.augment = (pl_augment_cfg){0};
    cr_assert_eq(pl_data_read(&tr, NULL, 0, 16, b, yb, &err), PL_OK);
    cr_expect(!memcmp(a, b, sizeof a), "pl_data_read augmented");
    double acc1, acc2;
    pltest_bind_ref(aug);
    cr_assert_eq(pl_evaluate(aug, &te, 64, &acc1, NULL, &err), PL_OK, "%s", err.msg);
    te.augment = (pl_augment_cfg){.crop_pad = 3, .hflip = 1};
    cr_assert_eq(pl_evaluate(aug, &te, 64, &acc2, NULL, &err), PL_OK, "%s", err.msg);
    cr_expect_eq(acc1, acc2, "evaluation saw augmented images");
    pl_model_free(plain);
    pl_model_free(aug);
    pl_model_free(again);
    pl_data_close(&tr);
    pl_data_close(&te);
    pl_instance_free(ds);
}
