/*
 * src/common/base64.c - base64 encoding and decoding; see base64.h.
 */
#include "common/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void clew__base64_quad(const uint8_t *p, size_t left, char q[4])
{
    uint32_t v = (uint32_t)p[0] << 16;
    if (left > 1) {
        v |= (uint32_t)p[1] << 8;
    }
    if (left > 2) {
        v |= p[2];
    }
    q[0] = alphabet[(v >> 18) & 63];
    q[1] = alphabet[(v >> 12) & 63];
    q[2] = left > 1 ? alphabet[(v >> 6) & 63] : '=';
    q[3] = left > 2 ? alphabet[v & 63] : '=';
}

clew_status clew__buf_base64(clew_buf *b, const uint8_t *p, size_t n, bool quoted)
{
    if (n > (SIZE_MAX - 3) / 4 * 3) {
        return CLEW_ETOOBIG;
    }
    size_t out = CLEW_BASE64_LEN(n) + (quoted ? 2 : 0);
    clew_status rc = clew__buf_reserve(b, out);
    if (rc != CLEW_OK) {
        return rc;
    }
    /* reserved once, so the loop writes without per-group bounds checks: bytes
     * values can be large and this is on the export path */
    char *w = b->data + b->len;
    if (quoted) {
        *w++ = '"';
    }
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *w++ = alphabet[v >> 18];
        *w++ = alphabet[(v >> 12) & 63];
        *w++ = alphabet[(v >> 6) & 63];
        *w++ = alphabet[v & 63];
    }
    if (i < n) {
        clew__base64_quad(p + i, n - i, w);
        w += 4;
    }
    if (quoted) {
        *w = '"';
    }
    b->len += out;
    b->data[b->len] = '\0';
    return CLEW_OK;
}

size_t clew__base64_decoded_len(const char *s, size_t *len)
{
    size_t n = *len;
    while (n > 0 && s[n - 1] == '=') {
        n--;
    }
    *len = n;
    if (n % 4 == 1) {
        return SIZE_MAX;
    }
    return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
}

static int digit(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

bool clew__base64_decode(const char *s, size_t len, uint8_t *out)
{
    uint32_t acc = 0;
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        int v = digit((unsigned char)s[i]);
        if (v < 0) {
            return false;
        }
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[w++] = (uint8_t)(acc >> 16);
            out[w++] = (uint8_t)(acc >> 8);
            out[w++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (len % 4 == 2) {
        out[w] = (uint8_t)(acc >> 4);
    } else if (len % 4 == 3) {
        out[w] = (uint8_t)(acc >> 10);
        out[w + 1] = (uint8_t)(acc >> 2);
    }
    return true;
}
