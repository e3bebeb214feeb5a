/*
 * onnx_pb.c — ONNX files in and out through protobuf-c (onnx_pb.h).
 *
 * protobuf-c unpacks nested messages recursively with no depth limit, and
 * ONNX nests (a node's attribute holds a graph, whose nodes hold attributes
 * ...): a hostile file of a few megabytes could recurse deep enough to
 * overflow the stack. So before unpacking, wire_depth_ok walks the bytes
 * once, guided by the generated descriptors, allocating nothing, and
 * refuses nesting deeper than PL_ONNX_MAX_DEPTH or a malformed wire frame.
 */
#include "onnx_pb.h"

#include "fileio.h"

#include <stdlib.h>
#include <string.h>

/* Nesting depth of messages inside messages prunelab accepts; a CNN's
 * model is about 5 deep (model → graph → node → attribute → tensor). */
#define PL_ONNX_MAX_DEPTH 32
#define PL_ONNX_DEPTH_TEXT "32"

static void *pb_alloc(void *data, size_t size)
{
    (void)data;
    return malloc(size ? size : 1); /* the host hook (CMake renames malloc) */
}

static void pb_free(void *data, void *p)
{
    (void)data;
    free(p);
}

ProtobufCAllocator pl__onnx_allocator = {pb_alloc, pb_free, NULL};

/* Reads one base-128 varint at *p (< end); 0 on a truncated or over-long one. */
static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 1;
        }
    }
    return 0;
}

/* 1 when [p, end) is a well-framed message of type d whose sub-messages
 * nest at most `left` more levels; *why says what is wrong otherwise. */
static int wire_depth_ok(const uint8_t *p, const uint8_t *end, const ProtobufCMessageDescriptor *d, int left,
                         const char **why)
{
    while (p < end) {
        uint64_t key, n;
        if (!varint(&p, end, &key)) {
            *why = "truncated field key";
            return 0;
        }
        switch (key & 7) {
        case 0: /* varint */
            if (!varint(&p, end, &n)) {
                *why = "truncated varint";
                return 0;
            }
            break;
        case 1: /* 64-bit */
            if ((size_t)(end - p) < 8) {
                *why = "truncated 64-bit field";
                return 0;
            }
            p += 8;
            break;
        case 5: /* 32-bit */
            if ((size_t)(end - p) < 4) {
                *why = "truncated 32-bit field";
                return 0;
            }
            p += 4;
            break;
        case 2: { /* length-delimited: bytes, string, packed, or a message */
            if (!varint(&p, end, &n) || n > (uint64_t)(end - p)) {
                *why = "length runs past the end of its message";
                return 0;
            }
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (left == 0) {
                    *why = "messages nested deeper than " PL_ONNX_DEPTH_TEXT;
                    return 0;
                }
                if (!wire_depth_ok(p, p + n, f->descriptor, left - 1, why))
                    return 0;
            }
            p += n;
            break;
        }
        default: /* 3, 4: groups (unused by ONNX); 6, 7: invalid */
            *why = "unsupported wire type";
            return 0;
        }
    }
    return 1;
}

pl_status pl_onnx_unpack(const uint8_t *data, size_t len, const char *what, Onnx__ModelProto **out,
                         pl_error *err)
{
    *out = NULL;
    const char *why = NULL;
    if (len == 0)
        return pl_error_set(err, PL_EFORMAT, "%s: empty file, not an ONNX model (give a .onnx file)", what);
    if (!wire_depth_ok(data, data + len, &onnx__model_proto__descriptor, PL_ONNX_MAX_DEPTH, &why))
        return pl_error_set(err, PL_EFORMAT, "%s: not an ONNX model: %s (is it a .onnx file, complete?)", what,
                            why);
    Onnx__ModelProto *m = onnx__model_proto__unpack(&pl__onnx_allocator, len, data);
    if (!m)
        /* the framing was checked: what remains is a field of the wrong
         * type or size, or memory */
        return pl_error_set(err, PL_EFORMAT,
                            "%s: not an ONNX model: protobuf-c could not decode it (a field has the wrong type, "
                            "or memory ran out; re-export the model)",
                            what);
    *out = m;
    return PL_OK;
}

pl_status pl_onnx_read(const char *path, Onnx__ModelProto **out, pl_error *err)
{
    *out = NULL;
    char *data;
    size_t len;
    pl_status s = pl__read_file(path, &data, &len, err);
    if (s)
        return s;
    s = pl_onnx_unpack((const uint8_t *)data, len, path, out, err);
    free(data);
    return s;
}

void pl_onnx_free(Onnx__ModelProto *m)
{
    if (m)
        onnx__model_proto__free_unpacked(m, &pl__onnx_allocator);
}

pl_status pl_onnx_write(const char *path, const Onnx__ModelProto *m, pl_error *err)
{
    size_t n = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return pl_error_set(err, PL_ENOMEM, "%s: out of memory packing the ONNX model (%zu bytes)", path, n);
    size_t got = onnx__model_proto__pack(m, buf);
    pl_status s = got == n ? pl_write_atomic(path, buf, n, err)
                           : pl_error_set(err, PL_EFORMAT, "%s: protobuf-c packed %zu of %zu bytes", path, got, n);
    free(buf);
    return s;
}
