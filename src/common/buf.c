/*
 * src/common/buf.c - bounded growable buffer; see buf.h.
 */
#include "common/buf.h"
#include "common/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void clew__buf_init(clew_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : SIZE_MAX / 2;
}

void clew__buf_deinit(clew_buf *b)
{
    clew__free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void clew__buf_reset(clew_buf *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

char *clew__buf_take(clew_buf *b, size_t *out_len)
{
    char *p = b->data;
    if (out_len) {
        *out_len = b->len;
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

clew_status clew__buf_reserve(clew_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra) {
        return CLEW_ETOOBIG;
    }
    size_t need = b->len + extra + 1; /* + NUL */
    if (need <= b->cap) {
        return CLEW_OK;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    char *p = clew__realloc(b->data, cap);
    if (p == NULL) {
        return CLEW_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return CLEW_OK;
}

clew_status clew__buf_append(clew_buf *b, const void *p, size_t n)
{
    clew_status rc = clew__buf_reserve(b, n);
    if (rc != CLEW_OK) {
        return rc;
    }
    if (n) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return CLEW_OK;
}

clew_status clew__buf_putc(clew_buf *b, char c)
{
    return clew__buf_append(b, &c, 1);
}

clew_status clew__buf_puts(clew_buf *b, const char *s)
{
    return clew__buf_append(b, s, strlen(s));
}

clew_status clew__buf_vprintf(clew_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return CLEW_EINVAL;
    }
    if ((size_t)n < sizeof(small)) {
        return clew__buf_append(b, small, (size_t)n);
    }
    clew_status rc = clew__buf_reserve(b, (size_t)n);
    if (rc != CLEW_OK) {
        return rc;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return CLEW_OK;
}

clew_status clew__buf_printf(clew_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    clew_status rc = clew__buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

clew_status clew__buf_double(clew_buf *b, double d, int min_prec, bool json_real)
{
    char tmp[40];
    int n = 0;
    /* room is left for the ".0" below */
    for (int prec = min_prec; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof(tmp) - 3, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d) {
            break;
        }
    }
    if (n < 0) {
        return CLEW_EINVAL;
    }
    /* snprintf and strtod follow LC_NUMERIC, which a host program may have set to a
     * locale with a decimal comma; JSON always wants a point */
    for (int i = 0; i < n; i++) {
        if (tmp[i] == ',') {
            tmp[i] = '.';
        }
    }
    if (json_real && strpbrk(tmp, ".eE") == NULL) {
        tmp[n++] = '.';
        tmp[n++] = '0';
        tmp[n] = '\0';
    }
    return clew__buf_append(b, tmp, (size_t)n);
}

/* Length of a valid UTF-8 sequence starting at s (at most n bytes), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80) {
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* reject overlong forms, surrogates and values past U+10FFFF */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return len;
}

clew_status clew__buf_json_str(clew_buf *b, const char *s, size_t len)
{
    static const char hexd[] = "0123456789abcdef";
    clew_status rc = clew__buf_reserve(b, len + 2);
    if (rc != CLEW_OK) {
        return rc;
    }
    b->data[b->len++] = '"';
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* copy the longest run that needs no escaping in one go */
        size_t run = i;
        while (run < len && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\') {
            run++;
        }
        if (run > i) {
            if ((rc = clew__buf_append(b, p + i, run - i)) != CLEW_OK) {
                return rc;
            }
            i = run;
            continue;
        }
        unsigned char c = p[i];
        char esc[8];
        size_t elen = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
            elen = 2;
        } else if (c == '\r') {
            memcpy(esc, "\\r", 2);
            elen = 2;
        } else if (c == '\t') {
            memcpy(esc, "\\t", 2);
            elen = 2;
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hexd[c >> 4];
            esc[5] = hexd[c & 15];
            elen = 6;
        } else {
            size_t sl = utf8_seq_len(p + i, len - i);
            if (sl == 0) {
                if ((rc = clew__buf_append(b, "\xEF\xBF\xBD", 3)) != CLEW_OK) {
                    return rc;
                }
                i++;
            } else {
                if ((rc = clew__buf_append(b, p + i, sl)) != CLEW_OK) {
                    return rc;
                }
                i += sl;
            }
            continue;
        }
        if ((rc = clew__buf_append(b, esc, elen)) != CLEW_OK) {
            return rc;
        }
        i++;
    }
    return clew__buf_putc(b, '"');
}
