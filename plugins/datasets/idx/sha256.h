/*
 * sha256.h — a small streaming SHA-256 (FIPS 180-4) for dataset checksums.
 *
 *     idx_sha256 h;
 *     idx_sha256_init(&h);
 *     idx_sha256_update(&h, buf, len);   // any number of times
 *     char hex[65];
 *     idx_sha256_hex(&h, hex);           // finishes; h must be re-initialised to reuse
 */
#ifndef IDX_SHA256_H
#define IDX_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct idx_sha256 {
    uint32_t h[8];
    uint64_t bytes;       /* message length so far */
    unsigned char block[64];
    size_t fill;          /* bytes pending in block */
} idx_sha256;

void idx_sha256_init(idx_sha256 *s);
void idx_sha256_update(idx_sha256 *s, const void *data, size_t len);
/* Writes the digest as 64 lowercase hex digits plus NUL. */
void idx_sha256_hex(idx_sha256 *s, char out[65]);

#endif
