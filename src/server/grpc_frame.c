/*
 * src/server/grpc_frame.c - incremental gRPC message framing; see grpc_frame.h.
 */
#include "server/grpc_frame.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void set_msg(char *msg, size_t msg_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_msg(char *msg, size_t msg_size, const char *fmt, ...)
{
    if (msg == NULL || msg_size == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msg_size, fmt, ap);
    va_end(ap);
}

void clew__grpc_frame_init(clew_grpc_frame_parser *p, uint64_t max_message)
{
    memset(p, 0, sizeof(*p));
    p->max_message = max_message;
}

static clew_status fail(clew_grpc_frame_parser *p, clew_status rc)
{
    p->failed = true;
    p->fail_rc = rc;
    return rc;
}

clew_status clew__grpc_frame_feed(clew_grpc_frame_parser *p, const uint8_t *in, size_t len,
                                  size_t *used, clew_grpc_frame_out *out, char *msg,
                                  size_t msg_size)
{
    memset(out, 0, sizeof(*out));
    *used = 0;
    if (p->failed) {
        set_msg(msg, msg_size, "the message framing was already invalid");
        return p->fail_rc;
    }
    if (p->in_message) {
        if (p->got == p->length) {
            /* END is reported on the call after the last byte, so a message of
             * zero bytes needs no input at all */
            p->in_message = false;
            p->messages++;
            out->ev = CLEW_GRPC_EV_END;
            return CLEW_OK;
        }
        size_t want = p->length - p->got;
        size_t take = len < want ? len : want;
        if (take == 0) {
            return CLEW_OK;
        }
        p->got += (uint32_t)take;
        out->ev = CLEW_GRPC_EV_DATA;
        out->data = in;
        out->data_len = take;
        *used = take;
        return CLEW_OK;
    }
    size_t take = CLEW_GRPC_PREFIX_LEN - p->prefix_len;
    if (take > len) {
        take = len;
    }
    if (take > 0) {
        memcpy(p->prefix + p->prefix_len, in, take);
        p->prefix_len = (uint8_t)(p->prefix_len + take);
    }
    *used = take;
    if (p->prefix_len < CLEW_GRPC_PREFIX_LEN) {
        return CLEW_OK;
    }
    uint8_t flag = p->prefix[0];
    uint32_t length = ((uint32_t)p->prefix[1] << 24) | ((uint32_t)p->prefix[2] << 16) |
                      ((uint32_t)p->prefix[3] << 8) | (uint32_t)p->prefix[4];
    if (flag > 1) {
        set_msg(msg, msg_size, "message %llu has compressed flag %u; gRPC allows only 0 or 1",
                (unsigned long long)p->messages + 1, (unsigned)flag);
        return fail(p, CLEW_EPARSE);
    }
    if ((uint64_t)length > p->max_message) {
        set_msg(msg, msg_size, "message %llu is %lu bytes, more than the limit of %llu bytes",
                (unsigned long long)p->messages + 1, (unsigned long)length,
                (unsigned long long)p->max_message);
        return fail(p, CLEW_ETOOBIG);
    }
    p->prefix_len = 0;
    p->in_message = true;
    p->compressed = flag == 1;
    p->length = length;
    p->got = 0;
    out->ev = CLEW_GRPC_EV_PREFIX;
    out->compressed = p->compressed;
    out->length = length;
    return CLEW_OK;
}

clew_status clew__grpc_frame_finish(const clew_grpc_frame_parser *p, char *msg, size_t msg_size)
{
    if (p->failed) {
        set_msg(msg, msg_size, "the message framing was invalid");
        return p->fail_rc;
    }
    if (p->prefix_len > 0) {
        set_msg(msg, msg_size, "the body ends inside a message prefix (%u of 5 bytes)",
                (unsigned)p->prefix_len);
        return CLEW_EPARSE;
    }
    if (p->in_message && p->got < p->length) {
        set_msg(msg, msg_size, "the body ends inside message %llu (%lu of %lu bytes)",
                (unsigned long long)p->messages + 1, (unsigned long)p->got,
                (unsigned long)p->length);
        return CLEW_EPARSE;
    }
    return CLEW_OK;
}

void clew__grpc_frame_prefix(uint8_t out[CLEW_GRPC_PREFIX_LEN], bool compressed, uint32_t length)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(length >> 24);
    out[2] = (uint8_t)(length >> 16);
    out[3] = (uint8_t)(length >> 8);
    out[4] = (uint8_t)length;
}

size_t clew__grpc_percent_encode(const char *in, size_t len, char *out, size_t out_size)
{
    static const char HEX[] = "0123456789ABCDEF";
    if (out_size == 0) {
        return 0;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch >= 0x20 && ch <= 0x7e && ch != '%') {
            if (n + 1 >= out_size) {
                break;
            }
            out[n++] = (char)ch;
        } else {
            if (n + 3 >= out_size) {
                break;
            }
            out[n++] = '%';
            out[n++] = HEX[ch >> 4];
            out[n++] = HEX[ch & 15];
        }
    }
    out[n] = '\0';
    return n;
}
