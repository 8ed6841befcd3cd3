/*
 * src/server/grpc_frame.h - gRPC's length-prefixed message framing, parsed
 * incrementally, and the percent-encoding of grpc-message.
 *
 * A gRPC request body (the DATA frames of one HTTP/2 stream) is a sequence of
 *   1 byte   compressed flag (0 = plain, 1 = compressed with grpc-encoding)
 *   4 bytes  message length, big-endian
 *   N bytes  message
 * The parser takes the body in whatever pieces HTTP/2 delivers it (a DATA frame
 * may end anywhere, even inside the 5-byte prefix) and reports, per call, one
 * event: a prefix was complete (flag and length known, so the caller can refuse a
 * message over its limit before any of it is buffered), a piece of message bytes,
 * or the end of a message. It copies nothing and allocates nothing: message bytes
 * are reported as views into the caller's input.
 *
 * Ownership: the parser is a plain value the caller owns; no deinit.
 * Thread-safety: none; one parser per stream, used by one thread at a time.
 * Pure: no I/O, no globals (unit-tested and fuzzed on its own).
 */
#ifndef CLEW_SERVER_GRPC_FRAME_H
#define CLEW_SERVER_GRPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clew/status.h"

#define CLEW_GRPC_PREFIX_LEN 5

typedef enum clew_grpc_frame_event {
    CLEW_GRPC_EV_NONE = 0, /* the input was used up without completing anything */
    CLEW_GRPC_EV_PREFIX,   /* ev->compressed and ev->length are set */
    CLEW_GRPC_EV_DATA,     /* ev->data, ev->data_len: the next piece of the message */
    CLEW_GRPC_EV_END,      /* the message of the last PREFIX is complete */
} clew_grpc_frame_event;

typedef struct clew_grpc_frame_out {
    clew_grpc_frame_event ev;
    bool compressed;
    uint32_t length;
    const uint8_t *data;
    size_t data_len;
} clew_grpc_frame_out;

typedef struct clew_grpc_frame_parser {
    uint64_t max_message; /* a prefix announcing more is refused (CLEW_ETOOBIG) */
    uint8_t prefix[CLEW_GRPC_PREFIX_LEN];
    uint8_t prefix_len; /* bytes of the current prefix seen */
    bool in_message;    /* prefix done, message bytes pending or END not yet reported */
    bool compressed;
    uint32_t length;
    uint32_t got;      /* message bytes reported so far */
    uint64_t messages; /* complete messages */
    bool failed;       /* an error was returned; every later call repeats it */
    clew_status fail_rc;
} clew_grpc_frame_parser;

void clew__grpc_frame_init(clew_grpc_frame_parser *p, uint64_t max_message);

/*
 * Parses from in[0..len): consumes what it needs for one event, writes the
 * number of bytes used to *used and the event to *out. Call again with the rest
 * of the input until *used == len and out->ev == CLEW_GRPC_EV_NONE (or, simpler,
 * while len > 0 or out->ev != NONE). A zero-length message gives PREFIX then END.
 *
 * Errors (the parser stays failed): CLEW_EPARSE when the flag byte is neither 0
 * nor 1; CLEW_ETOOBIG when the length exceeds max_message. `msg` (may be NULL)
 * gets a sentence for the client.
 */
CLEW_NODISCARD clew_status clew__grpc_frame_feed(clew_grpc_frame_parser *p, const uint8_t *in,
                                                 size_t len, size_t *used, clew_grpc_frame_out *out,
                                                 char *msg, size_t msg_size);

/*
 * At the end of the body: CLEW_OK when it ended on a message boundary,
 * CLEW_EPARSE (with a sentence in msg) when it stopped inside a prefix or a
 * message.
 */
CLEW_NODISCARD clew_status clew__grpc_frame_finish(const clew_grpc_frame_parser *p, char *msg,
                                                   size_t msg_size);

/* Writes the 5-byte prefix of a message of `length` bytes. */
void clew__grpc_frame_prefix(uint8_t out[CLEW_GRPC_PREFIX_LEN], bool compressed, uint32_t length);

/*
 * grpc-message as the gRPC HTTP/2 protocol wants it: bytes outside printable
 * ASCII (0x20..0x7E) and '%' become %XX (upper-case hex), so UTF-8 survives
 * byte by byte. Truncates at a whole escape to fit out_size (always
 * NUL-terminated when out_size > 0). Returns the length written.
 */
size_t clew__grpc_percent_encode(const char *in, size_t len, char *out, size_t out_size);

#endif /* CLEW_SERVER_GRPC_FRAME_H */
