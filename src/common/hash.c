/*
 * src/common/hash.c - see hash.h.
 */
#include "common/hash.h"

uint64_t clew__hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t clew__hash_u64(uint64_t h, uint64_t v)
{
    return clew__hash_bytes(h, &v, sizeof(v));
}

uint64_t clew__hash_finish(uint64_t h)
{
    /* splitmix64 finaliser */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}
