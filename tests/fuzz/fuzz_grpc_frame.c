/*
 * tests/fuzz/fuzz_grpc_frame.c - the gRPC framing parser: arbitrary bodies, split
 * at fuzzer-chosen points, must never crash or read out of bounds, and must
 * parse to the same messages however they are split. The first input byte picks
 * the split size and the second the message limit; the rest is the body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/grpc_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct result {
    clew_status rc;
    uint64_t messages;
    uint64_t bytes;
    uint64_t hash; /* of the message bytes and boundaries, in order */
} result;

static void mix(uint64_t *h, uint8_t b)
{
    *h = (*h ^ b) * 1099511628211u;
}

static result run(const uint8_t *body, size_t len, size_t step, uint64_t max)
{
    clew_grpc_frame_parser p;
    clew__grpc_frame_init(&p, max);
    result r = {CLEW_OK, 0, 0, 1469598103934665603u};
    size_t off = 0;
    char msg[200];
    do {
        size_t piece = len - off < step ? len - off : step;
        const uint8_t *in = body + off;
        size_t left = piece;
        clew_grpc_frame_out ev;
        do {
            size_t used = 0;
            r.rc = clew__grpc_frame_feed(&p, in, left, &used, &ev, msg, sizeof(msg));
            if (r.rc != CLEW_OK) {
                return r;
            }
            if (used > left) {
                abort();
            }
            if (ev.ev == CLEW_GRPC_EV_DATA) {
                if (ev.data != in || ev.data_len != used || ev.data_len == 0) {
                    abort();
                }
                for (size_t i = 0; i < ev.data_len; i++) {
                    mix(&r.hash, ev.data[i]);
                }
                r.bytes += ev.data_len;
            } else if (ev.ev == CLEW_GRPC_EV_PREFIX) {
                if (ev.length > max || used > CLEW_GRPC_PREFIX_LEN) {
                    abort();
                }
                mix(&r.hash, ev.compressed ? 0xC1 : 0xC0);
            } else if (ev.ev == CLEW_GRPC_EV_END) {
                r.messages++;
                mix(&r.hash, 0xEE);
            }
            in += used;
            left -= used;
        } while (left > 0 || ev.ev != CLEW_GRPC_EV_NONE);
        off += piece;
    } while (off < len);
    msg[0] = '\0';
    r.rc = clew__grpc_frame_finish(&p, msg, sizeof(msg));
    if (r.rc != CLEW_OK && (msg[0] == '\0' || memchr(msg, '\0', sizeof(msg)) == NULL)) {
        abort(); /* every error explains itself */
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    size_t step = (size_t)data[0] % 16 + 1;
    uint64_t max = data[1] == 255 ? UINT32_MAX : (uint64_t)data[1] * 4;
    const uint8_t *body = data + 2;
    size_t len = size - 2;
    result whole = run(body, len, len > 0 ? len : 1, max);
    result split = run(body, len, step, max);
    result bytewise = run(body, len, 1, max);
    if (whole.rc != split.rc || whole.messages != split.messages || whole.hash != split.hash ||
        whole.bytes != split.bytes || whole.rc != bytewise.rc || whole.hash != bytewise.hash) {
        abort();
    }
    if (whole.bytes > len) {
        abort();
    }
    /* grpc-message of the body itself: never longer than asked, always terminated */
    char enc[97];
    size_t n = clew__grpc_percent_encode((const char *)body, len, enc, sizeof(enc));
    if (n >= sizeof(enc) || enc[n] != '\0' || strlen(enc) != n) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        if (enc[i] < 0x20 || enc[i] > 0x7e) {
            abort();
        }
    }
    return 0;
}
