/*
 * src/codec/otlp.h - OTLP trace codecs: protobuf and JSON, both directions.
 *
 * Decoders build a clew_batch whose every pointer lives in `arena` (or points into
 * the input buffer, which must then outlive the batch: the protobuf decoder is
 * zero-copy for strings and bytes). Spans that fail validation (trace id not 16
 * bytes or all zero, span id not 8 bytes or all zero, parent id neither empty nor
 * 8 bytes) are left out of the batch and counted in batch->rejected with the first
 * reason in batch->reject_reason; the rest of the request is kept. Malformed input
 * (bad wire format, bad JSON, wrong types) fails the whole request with CLEW_EPARSE
 * and `err` says what and where. A limit on the arena gives CLEW_ETOOBIG.
 *
 * Encoders append to `out` (bounded: CLEW_ETOOBIG when its max is reached).
 */
#ifndef CLEW_CODEC_OTLP_H
#define CLEW_CODEC_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "clew/status.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/error.h"
#include "model/model.h"

/* ExportTraceServiceRequest (or TracesData: same field 1) in protobuf. */
CLEW_NODISCARD clew_status clew__otlp_pb_decode(const uint8_t *data, size_t len, clew_arena *arena,
                                                clew_batch *out, clew_error *err);
CLEW_NODISCARD clew_status clew__otlp_pb_encode(const clew_batch *b, clew_buf *out);

/* The same messages in OTLP/JSON (wire.md §4.1: hex ids, integer enums, 64-bit
 * integers as strings on output and numbers or strings on input, lowerCamelCase
 * keys, unknown keys ignored). */
CLEW_NODISCARD clew_status clew__otlp_json_decode(const char *data, size_t len, clew_arena *arena,
                                                  clew_batch *out, clew_error *err);
CLEW_NODISCARD clew_status clew__otlp_json_encode(const clew_batch *b, clew_buf *out);

/* ExportTraceServiceResponse: partial_success only when rejected > 0 or message set. */
CLEW_NODISCARD clew_status clew__otlp_pb_encode_response(uint64_t rejected, clew_str message,
                                                         clew_buf *out);
CLEW_NODISCARD clew_status clew__otlp_json_encode_response(uint64_t rejected, clew_str message,
                                                           clew_buf *out);
/* google.rpc.Status {code, message} for 4xx/5xx answers. */
CLEW_NODISCARD clew_status clew__rpc_status_pb_encode(int32_t code, clew_str message,
                                                      clew_buf *out);
CLEW_NODISCARD clew_status clew__rpc_status_json_encode(int32_t code, clew_str message,
                                                        clew_buf *out);

#endif /* CLEW_CODEC_OTLP_H */
