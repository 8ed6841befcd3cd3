/*
 * tests/fuzz/fuzz_otlp_pb.c - the OTLP protobuf decoder on arbitrary bytes.
 *
 * Decodes under a 64 MiB arena limit. When the input decodes, the batch is
 * encoded again and decoded again, and both decodes must be equal (spans rejected
 * the first time are not in the batch, so they are not re-encoded); a mismatch or
 * an encoder failure aborts. The JSON encoder is run on the batch too, for its
 * escaping and number formatting.
 */
#include <stdint.h>
#include <stdlib.h>

#include "codec/otlp.h"
#include "common/arena.h"
#include "common/buf.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clew_arena a, a2;
    clew__arena_init(&a, 64 * 1024, 64u << 20);
    clew__arena_init(&a2, 64 * 1024, 64u << 20);
    clew_batch b, b2;
    clew_error err;
    clew_buf out, json;
    clew__buf_init(&out, 256u << 20);
    clew__buf_init(&json, 256u << 20);
    if (clew__otlp_pb_decode(data, size, &a, &b, &err) == CLEW_OK) {
        if (clew__otlp_pb_encode(&b, &out) != CLEW_OK) {
            abort();
        }
        clew_status rc = clew__otlp_pb_decode((const uint8_t *)out.data, out.len, &a2, &b2, &err);
        if (rc != CLEW_OK || b2.rejected != 0) {
            abort();
        }
        b2.rejected = b.rejected;
        if (!clew__batch_equal(&b, &b2)) {
            abort();
        }
        if (clew__otlp_json_encode(&b, &json) != CLEW_OK) {
            abort();
        }
    }
    clew__buf_deinit(&out);
    clew__buf_deinit(&json);
    clew__arena_deinit(&a);
    clew__arena_deinit(&a2);
    return 0;
}
