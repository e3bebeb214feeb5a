/*
 * checkpoint.h — saving a model (and a free-text blob) to one versioned,
 * checksummed file, and loading it back without trusting the bytes.
 *
 * Used for the cached baseline a sweep shares, for the final model each run
 * leaves in its report folder, and for starting a run from a trained model.
 *
 *     pl_error err;
 *     if (pl_checkpoint_save("base.ckpt", m, "key=3f2a acc=96.6", 0, &err)) ...
 *     pl_model *m2;
 *     char *meta;
 *     if (pl_checkpoint_load("base.ckpt", &m2, &meta, &err)) ... // err.msg: one line
 *     pl_model_bind(m2, ops, state);
 *     pl_model_reserve(m2, 64, &err);   // activations are not part of a checkpoint
 *     ...
 *     free(meta);
 *     pl_model_free(m2);
 *
 * File format, version 2 (version 1 is the same without the graph fields:
 * a chain; chains are still written as version 1). Every integer is little-endian; floats are IEEE-754
 * binary32 (f32) or binary64 (f64) bit patterns stored as little-endian
 * integers of the same width.
 *
 *     offset 0        magic "PLCKPT\0\0" (8 bytes)
 *     offset 8        u32 format version (1, 2, 3 or 4)
 *     offset 12       u32 flags (PL_CKPT_*; unknown bits are refused)
 *     offset 16       u64 payload length P
 *     offset 24       payload (P bytes)
 *     offset 24 + P   u64 checksum: FNV-1a 64 (pl_fnv1a, offset basis
 *                     14695981039346656037) over the P payload bytes
 *
 * The file is exactly 32 + P bytes. Payload, in order (str = u32 length
 * 1..63 then the bytes, no NUL):
 *
 *     u64 meta length, meta bytes (no NUL inside)
 *     str model name; i32 in_c, in_h, in_w, classes; u64 seed, dropout_calls
 *     u32 n_layers, then per layer:
 *       str name; u32 type (pl_layer_type value)
 *       i32 kh kw sh sw ph pw; i32 has_bias (0/1)
 *       version 2 to 4: i32 groups (>= 1; 1 unless conv2d); i32 n_in
 *         (1, add/concat 2..16); i32 in[n_in] (index of an earlier layer,
 *         -1 the model input). Version 1: groups 1, in = {index - 1}.
 *       version 3 and 4: i32 pad_xb, pad_xr (extra bottom/right padding,
 *         -65536..65536), dil_h, dil_w (0..65536; 0 and 1 mean none),
 *         excl_pad (0/1, avgpool2d only); all 0 for layers other than
 *         conv2d and the pools. Versions 1 and 2: all 0. Written only when
 *         some layer has one of them set (ONNX imports).
 *       version 4 only: i32 ch0, ch1 (slice: its channels [ch0, ch1) of
 *         its input, 0 <= ch0 < ch1; 0, 0 for every other type). Written
 *         only when the model has a slice layer (packed ONNX inputs).
 *       f64 p, eps, momentum
 *       i32 in_c in_h in_w out_c out_h out_w; i32 orig_units, removed_units
 *       i64 nw, nb
 *       f32 w[nw], f32 b[nb]
 *       u8 has_mask (0/1), then f32 mask[nw] when 1
 *       batchnorm2d only: f32 run_mean[in_c], run_var[in_c]
 *       with PL_CKPT_OPTIM only: when nw > 0, u8 present (0/1) then
 *         f32 opt_m_w[nw], opt_v_w[nw] when 1; when nb > 0 the same for
 *         opt_m_b[nb], opt_v_b[nb]
 *
 * Loading checks the header, the length against the file size and the
 * checksum, then validates the whole payload before allocating anything:
 * every count is checked against the bytes that remain, size arithmetic is
 * overflow-checked, and the shapes are recomputed from the model input
 * (kernel/stride/padding rules, parameter counts, each layer's inputs =
 * earlier layers' outputs, every output but the last read by a later
 * layer, last output = classes), so no file can make
 * forward() read out of bounds. Saving runs the same validation on what it is
 * about to write, so every saved file loads.
 */
#ifndef PL_CHECKPOINT_H
#define PL_CHECKPOINT_H

#include "error.h"
#include "model.h"

#define PL_CKPT_VERSION 4u

/* Flags for pl_checkpoint_save (persisted in the header; append only). */
enum {
    PL_CKPT_OPTIM = 1u << 0 /* include optimizer state (opt_m_*, opt_v_*) where present */
};

/* Writes m (parameters, masks, batchnorm statistics, bookkeeping; optimizer
 * state with PL_CKPT_OPTIM) and `meta` (NUL-terminated text, may be NULL =
 * empty) to `path` atomically: "<path>.tmp.<pid>" is written, flushed,
 * fsync'ed and renamed over `path`; on any failure the temporary file is
 * removed and `path` is left as it was. Borrows m and meta for the call.
 * Errors: PL_EIO (cannot create/write/rename), PL_EINVAL (unknown flags or a
 * model whose shapes are inconsistent), PL_ENOMEM. */
pl_status pl_checkpoint_save(const char *path, const pl_model *m, const char *meta,
                             unsigned flags, pl_error *err);

/* Reads `path` into a new, complete model (parameters, gradient buffers,
 * masks, statistics, optimizer state if saved; no activations and no backend:
 * call pl_model_bind and pl_model_reserve). The caller frees *out with
 * pl_model_free and, when `meta` is non-NULL, *meta with free() (an empty
 * string when none was saved). On error *out and *meta are left untouched.
 * Errors: PL_EIO (cannot open/read), PL_EFORMAT (not a checkpoint, newer
 * version, truncated, checksum mismatch, inconsistent contents), PL_ENOMEM. */
pl_status pl_checkpoint_load(const char *path, pl_model **out, char **meta, pl_error *err);

#endif
