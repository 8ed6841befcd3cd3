/*
 * tests/unit/test_grpc_frame.c - gRPC length-prefixed framing (src/server/grpc_frame.c):
 * messages split anywhere by HTTP/2, limits, bad flags, truncation, and the
 * percent-encoding of grpc-message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/grpc_frame.h"

/* What a body parsed into: the messages, concatenated with a '|' after each. */
typedef struct collected {
    char text[4096];
    size_t len;
    unsigned prefixes;
    unsigned ends;
    bool compressed[16];
    uint32_t lengths[16];
} collected;

/* Feeds `body` in pieces of `step` bytes (0 = all at once) and collects events.
 * Returns the first error, or the result of finish(). */
static clew_status parse_in_steps(const uint8_t *body, size_t len, size_t step, uint64_t max,
                                  collected *out, char *msg, size_t msg_size)
{
    clew_grpc_frame_parser p;
    clew__grpc_frame_init(&p, max);
    memset(out, 0, sizeof(*out));
    size_t off = 0;
    do {
        size_t piece = step == 0 || len - off < step ? len - off : step;
        const uint8_t *in = body + off;
        size_t left = piece;
        clew_grpc_frame_out ev;
        do {
            size_t used = 0;
            clew_status rc = clew__grpc_frame_feed(&p, in, left, &used, &ev, msg, msg_size);
            if (rc != CLEW_OK) {
                return rc;
            }
            assert_true(used <= left);
            in += used;
            left -= used;
            switch (ev.ev) {
            case CLEW_GRPC_EV_PREFIX:
                assert_true(out->prefixes < 16);
                out->compressed[out->prefixes] = ev.compressed;
                out->lengths[out->prefixes] = ev.length;
                out->prefixes++;
                break;
            case CLEW_GRPC_EV_DATA:
                assert_true(ev.data_len > 0);
                assert_true(out->len + ev.data_len < sizeof(out->text));
                memcpy(out->text + out->len, ev.data, ev.data_len);
                out->len += ev.data_len;
                break;
            case CLEW_GRPC_EV_END:
                out->text[out->len++] = '|';
                out->ends++;
                break;
            case CLEW_GRPC_EV_NONE:
                break;
            }
        } while (left > 0 || ev.ev != CLEW_GRPC_EV_NONE);
        off += piece;
    } while (off < len);
    out->text[out->len] = '\0';
    return clew__grpc_frame_finish(&p, msg, msg_size);
}

/* Frames each NUL-terminated string as one message (flag 0) into buf. */
static size_t frame_all(uint8_t *buf, size_t cap, const char *const *msgs, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t m = strlen(msgs[i]);
        assert_true(len + CLEW_GRPC_PREFIX_LEN + m <= cap);
        clew__grpc_frame_prefix(buf + len, false, (uint32_t)m);
        memcpy(buf + len + CLEW_GRPC_PREFIX_LEN, msgs[i], m);
        len += CLEW_GRPC_PREFIX_LEN + m;
    }
    return len;
}

/* The prefix is one flag byte and a big-endian 32-bit length. */
static void test_prefix_layout(void **state)
{
    (void)state;
    uint8_t p[CLEW_GRPC_PREFIX_LEN];
    clew__grpc_frame_prefix(p, true, 0x01020304u);
    const uint8_t want[] = {1, 1, 2, 3, 4};
    assert_memory_equal(p, want, sizeof(want));
    clew__grpc_frame_prefix(p, false, 70000);
    const uint8_t want2[] = {0, 0, 1, 0x11, 0x70};
    assert_memory_equal(p, want2, sizeof(want2));
}

/* One message delivered whole gives PREFIX, DATA, END, and finish() accepts the body. */
static void test_single_message(void **state)
{
    (void)state;
    uint8_t body[64];
    const char *msgs[] = {"hello grpc"};
    size_t len = frame_all(body, sizeof(body), msgs, 1);
    collected c;
    char msg[200];
    assert_int_equal(parse_in_steps(body, len, 0, 1024, &c, msg, sizeof(msg)), CLEW_OK);
    assert_string_equal(c.text, "hello grpc|");
    assert_int_equal(c.prefixes, 1);
    assert_int_equal(c.lengths[0], 10);
    assert_false(c.compressed[0]);
}

/* HTTP/2 may cut a body anywhere, even inside the 5-byte prefix: every split
 * size gives the same messages. */
static void test_every_split(void **state)
{
    (void)state;
    uint8_t body[256];
    const char *msgs[] = {"first", "", "third message", "x"};
    size_t len = frame_all(body, sizeof(body), msgs, 4);
    for (size_t step = 1; step <= len; step++) {
        collected c;
        char msg[200];
        assert_int_equal(parse_in_steps(body, len, step, 1024, &c, msg, sizeof(msg)), CLEW_OK);
        assert_string_equal(c.text, "first||third message|x|");
        assert_int_equal(c.prefixes, 4);
        assert_int_equal(c.ends, 4);
        assert_int_equal(c.lengths[1], 0);
    }
}

/* A zero-length message is valid (an empty ExportTraceServiceRequest encodes to
 * nothing) and needs no bytes after its prefix. */
static void test_empty_message(void **state)
{
    (void)state;
    const uint8_t body[] = {0, 0, 0, 0, 0};
    collected c;
    char msg[200];
    assert_int_equal(parse_in_steps(body, sizeof(body), 0, 16, &c, msg, sizeof(msg)), CLEW_OK);
    assert_string_equal(c.text, "|");
    assert_int_equal(c.ends, 1);
}

/* The compressed flag is reported per message. */
static void test_compressed_flag(void **state)
{
    (void)state;
    const uint8_t body[] = {1, 0, 0, 0, 2, 'g', 'z'};
    collected c;
    char msg[200];
    assert_int_equal(parse_in_steps(body, sizeof(body), 3, 16, &c, msg, sizeof(msg)), CLEW_OK);
    assert_true(c.compressed[0]);
    assert_string_equal(c.text, "gz|");
}

/* A flag other than 0 or 1 is a framing error, and the parser stays failed. */
static void test_bad_flag(void **state)
{
    (void)state;
    const uint8_t body[] = {2, 0, 0, 0, 1, 'x'};
    clew_grpc_frame_parser p;
    clew__grpc_frame_init(&p, 16);
    clew_grpc_frame_out ev;
    size_t used;
    char msg[200] = "";
    assert_int_equal(clew__grpc_frame_feed(&p, body, sizeof(body), &used, &ev, msg, sizeof(msg)),
                     CLEW_EPARSE);
    assert_non_null(strstr(msg, "compressed flag 2"));
    assert_int_equal(clew__grpc_frame_feed(&p, body + 5, 1, &used, &ev, msg, sizeof(msg)),
                     CLEW_EPARSE);
    assert_int_equal(clew__grpc_frame_finish(&p, msg, sizeof(msg)), CLEW_EPARSE);
}

/* A message over the limit is refused on its prefix, before any byte of it is
 * delivered (so the receiver never buffers it); exactly the limit is fine. */
static void test_limit(void **state)
{
    (void)state;
    uint8_t body[5 + 8];
    clew__grpc_frame_prefix(body, false, 8);
    memset(body + 5, 'a', 8);
    collected c;
    char msg[200] = "";
    assert_int_equal(parse_in_steps(body, sizeof(body), 0, 8, &c, msg, sizeof(msg)), CLEW_OK);
    assert_int_equal(parse_in_steps(body, sizeof(body), 0, 7, &c, msg, sizeof(msg)), CLEW_ETOOBIG);
    assert_int_equal(c.len, 0);
    assert_non_null(strstr(msg, "8 bytes, more than the limit of 7 bytes"));

    /* the largest length the prefix can say */
    const uint8_t huge[] = {0, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(parse_in_steps(huge, sizeof(huge), 0, 64u << 20, &c, msg, sizeof(msg)),
                     CLEW_ETOOBIG);
    assert_non_null(strstr(msg, "4294967295 bytes"));
}

/* A body that stops inside a prefix or a message is truncated: finish() says
 * where, so the client learns what went wrong. */
static void test_truncated(void **state)
{
    (void)state;
    collected c;
    char msg[200] = "";
    const uint8_t in_prefix[] = {0, 0, 0};
    assert_int_equal(parse_in_steps(in_prefix, sizeof(in_prefix), 0, 16, &c, msg, sizeof(msg)),
                     CLEW_EPARSE);
    assert_non_null(strstr(msg, "3 of 5"));
    const uint8_t in_msg[] = {0, 0, 0, 0, 9, 'a', 'b'};
    assert_int_equal(parse_in_steps(in_msg, sizeof(in_msg), 1, 16, &c, msg, sizeof(msg)),
                     CLEW_EPARSE);
    assert_non_null(strstr(msg, "2 of 9"));
    /* an empty body is not truncated: the receiver decides that no message is an error */
    assert_int_equal(parse_in_steps((const uint8_t *)"", 0, 0, 16, &c, msg, sizeof(msg)), CLEW_OK);
    assert_int_equal(c.prefixes, 0);
}

/* grpc-message: printable ASCII except '%' as is, everything else %XX, so UTF-8
 * and control characters survive the trip through an HTTP/2 header. */
static void test_percent_encode(void **state)
{
    (void)state;
    char out[64];
    const char in[] = "bad: 100% \xc3\xa9\n\x7f~";
    size_t n = clew__grpc_percent_encode(in, sizeof(in) - 1, out, sizeof(out));
    assert_string_equal(out, "bad: 100%25 %C3%A9%0A%7F~");
    assert_int_equal(n, strlen(out));
    /* truncation never splits an escape */
    char small[5];
    clew__grpc_percent_encode("ab\xff", 3, small, sizeof(small));
    assert_string_equal(small, "ab");
    char fits[6];
    clew__grpc_percent_encode("ab\xff", 3, fits, sizeof(fits));
    assert_string_equal(fits, "ab%FF");
    assert_int_equal(clew__grpc_percent_encode("x", 1, out, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_layout),   cmocka_unit_test(test_single_message),
        cmocka_unit_test(test_every_split),     cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_compressed_flag), cmocka_unit_test(test_bad_flag),
        cmocka_unit_test(test_limit),           cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_percent_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
