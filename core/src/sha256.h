/*
 * sha256.h — a small streaming SHA-256 (FIPS 180-4) for content identity (plugin files, model specs); the idx dataset plugin compiles this same file (plugins never link the host).
 *
 *     pl__sha256 h;
 *     pl__sha256_init(&h);
 *     pl__sha256_update(&h, buf, len);   // any number of times
 *     char hex[65];
 *     pl__sha256_hex(&h, hex);           // finishes; h must be re-initialised to reuse
 */
#ifndef PL_SHA256_H
#define PL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct pl__sha256 {
    uint32_t h[8];
    uint64_t bytes;       /* message length so far */
    unsigned char block[64];
    size_t fill;          /* bytes pending in block */
} pl__sha256;

void pl__sha256_init(pl__sha256 *s);
void pl__sha256_update(pl__sha256 *s, const void *data, size_t len);
/* Writes the digest as 64 lowercase hex digits plus NUL. */
void pl__sha256_hex(pl__sha256 *s, char out[65]);

#endif
