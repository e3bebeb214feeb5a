/*
 * onnx_pb.h — reading and writing ONNX files as protobuf messages.
 *
 * The message types (Onnx__ModelProto, Onnx__GraphProto, Onnx__NodeProto,
 * Onnx__TensorProto, ...) are C code that protoc-c generates at build time
 * from the onnx.proto Debian's libonnx-dev ships (cmake/onnx_proto.cmake);
 * nothing generated is committed. This file is the one place that talks to
 * protobuf-c: every byte it unpacks is bounded, and every allocation goes
 * through the host's allocator hook (alloc.c), so allocation-failure
 * injection covers parsing too.
 *
 *     Onnx__ModelProto *mp;
 *     if (pl_onnx_read("net.onnx", &mp, &err)) ...   // one-line error in err
 *     ... mp->graph->node[i]->op_type ...
 *     pl_onnx_free(mp);
 *
 * The importer (onnx_import.c) and exporter (onnx_export.c) build on it.
 */
#ifndef PL_ONNX_PB_H
#define PL_ONNX_PB_H

#include "error.h"
#include "fileio.h"
#include "onnx.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* Largest ONNX file prunelab reads (the host's bound on any file it reads),
 * far above any network it can train. */
#define PL_ONNX_MAX_BYTES ((size_t)PL__READ_MAX_BYTES)

/* The allocator protobuf-c uses for everything it unpacks (host hook). */
extern ProtobufCAllocator pl__onnx_allocator;

/* Reads path (a regular file of at most PL_ONNX_MAX_BYTES) and unpacks it
 * as an ONNX ModelProto. PL_EIO for a missing/unreadable/oversized file,
 * PL_EFORMAT when the bytes are not a
 * protobuf ModelProto; the message names path and gives a hint. */
pl_status pl_onnx_read(const char *path, Onnx__ModelProto **out, pl_error *err);
/* The same from bytes in memory (`what` names them in errors): the fuzz
 * harness's entry point. */
pl_status pl_onnx_unpack(const uint8_t *data, size_t len, const char *what, Onnx__ModelProto **out,
                         pl_error *err);
/* Frees a model from pl_onnx_read/pl_onnx_unpack (NULL is fine). */
void pl_onnx_free(Onnx__ModelProto *m);
/* Packs m and writes it to path atomically (pl_write_atomic): a reader
 * never sees half a file, and on error nothing is left behind. */
pl_status pl_onnx_write(const char *path, const Onnx__ModelProto *m, pl_error *err);

#endif
