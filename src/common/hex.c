/*
 * src/common/hex.c - hex and id helpers; see hex.h.
 */
#include "common/hex.h"

#include <string.h>

void clew__hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[in[i] >> 4];
        out[2 * i + 1] = d[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int clew__hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool clew__hex_decode(const char *in, size_t n_bytes, uint8_t *out)
{
    for (size_t i = 0; i < n_bytes; i++) {
        int hi = clew__hex_digit(in[2 * i]);
        int lo = clew__hex_digit(in[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    return true;
}

/* Decodes up to 2*n digits right-aligned into out[n]; odd lengths allowed. */
static bool hex_right_aligned(const char *s, size_t len, uint8_t *out, size_t n)
{
    if (len == 0 || len > 2 * n) {
        return false;
    }
    memset(out, 0, n);
    size_t nib = 2 * n - len; /* nibble index where s starts */
    for (size_t i = 0; i < len; i++, nib++) {
        int v = clew__hex_digit(s[i]);
        if (v < 0) {
            return false;
        }
        out[nib / 2] |= (uint8_t)((nib % 2) ? v : v << 4);
    }
    return true;
}

bool clew__trace_id_parse(const char *s, size_t len, clew_trace_id *out)
{
    clew_trace_id id;
    if (!hex_right_aligned(s, len, id.bytes, 16) || clew__trace_id_is_zero(&id)) {
        return false;
    }
    *out = id;
    return true;
}

bool clew__span_id_parse(const char *s, size_t len, clew_span_id *out)
{
    clew_span_id id;
    if (!hex_right_aligned(s, len, id.bytes, 8) || clew__span_id_is_zero(&id)) {
        return false;
    }
    *out = id;
    return true;
}

void clew__trace_id_hex(const clew_trace_id *id, char out[33])
{
    clew__hex_encode(id->bytes, 16, out);
}

void clew__span_id_hex(const clew_span_id *id, char out[17])
{
    clew__hex_encode(id->bytes, 8, out);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= p[i];
    }
    return acc == 0;
}

bool clew__trace_id_is_zero(const clew_trace_id *id)
{
    return all_zero(id->bytes, 16);
}

bool clew__span_id_is_zero(const clew_span_id *id)
{
    return all_zero(id->bytes, 8);
}

bool clew__trace_id_is_64bit(const clew_trace_id *id)
{
    return all_zero(id->bytes, 8);
}
