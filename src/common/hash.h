/*
 * src/common/hash.h - a small, fast, non-cryptographic 64-bit hash (FNV-1a with a
 * final avalanche step). Used for interning resources and scopes and for hash tables;
 * never for anything an attacker could exploit beyond a slower lookup.
 */
#ifndef CLEW_COMMON_HASH_H
#define CLEW_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#define CLEW_HASH_SEED 0xcbf29ce484222325ull

uint64_t clew__hash_bytes(uint64_t h, const void *p, size_t n);
uint64_t clew__hash_u64(uint64_t h, uint64_t v);
/* Final mix; apply once to the accumulated hash before using it as a table index. */
uint64_t clew__hash_finish(uint64_t h);

#endif /* CLEW_COMMON_HASH_H */
