/*
 * tests/fuzz/fuzz_otlp_json.c - the OTLP/JSON decoder on arbitrary bytes.
 *
 * Decodes under a 64 MiB arena limit. When the input decodes, the batch goes
 * JSON -> decode and protobuf -> decode again, and all three batches must be
 * equal (rejected spans are not re-encoded, so the count is carried over); a
 * mismatch or an encoder failure aborts.
 */
#include <stdint.h>
#include <stdlib.h>

#include "codec/otlp.h"
#include "common/arena.h"
#include "common/buf.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_same(const clew_batch *b, clew_batch *again, clew_status rc)
{
    if (rc != CLEW_OK || again->rejected != 0) {
        abort();
    }
    again->rejected = b->rejected;
    if (!clew__batch_equal(b, again)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clew_arena a, a2;
    clew__arena_init(&a, 64 * 1024, 64u << 20);
    clew__arena_init(&a2, 64 * 1024, 64u << 20);
    clew_batch b, b2;
    clew_error err;
    clew_buf out;
    clew__buf_init(&out, 256u << 20);
    if (clew__otlp_json_decode((const char *)data, size, &a, &b, &err) == CLEW_OK) {
        if (clew__otlp_json_encode(&b, &out) != CLEW_OK) {
            abort();
        }
        check_same(&b, &b2, clew__otlp_json_decode(out.data, out.len, &a2, &b2, &err));
        clew__buf_reset(&out);
        clew__arena_reset(&a2);
        if (clew__otlp_pb_encode(&b, &out) != CLEW_OK) {
            abort();
        }
        check_same(&b, &b2,
                   clew__otlp_pb_decode((const uint8_t *)out.data, out.len, &a2, &b2, &err));
    }
    clew__buf_deinit(&out);
    clew__arena_deinit(&a);
    clew__arena_deinit(&a2);
    return 0;
}
