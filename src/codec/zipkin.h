/*
 * src/codec/zipkin.h - Zipkin v2 JSON codec, both directions, and a Zipkin v1 JSON
 * decoder (docs/internals/zipkin.md).
 *
 * The mapping follows the OpenTelemetry Collector's Zipkin receiver and exporter
 * (pkg/translator/zipkin/zipkinv2), so spans received on the Zipkin port look the
 * same as if a Collector had turned them into OTLP first.
 *
 * Decoding has the contract of the OTLP decoders (codec/otlp.h): every pointer in the
 * batch lives in `arena` (strings are copied; the input may be freed afterwards).
 * Spans that cannot be stored (bad or missing ids, missing timestamp, ...) are left
 * out and counted in batch->rejected with the first reason in batch->reject_reason;
 * the rest is kept. A body that is not a JSON array of objects, or a field of the
 * wrong JSON type, fails the request with CLEW_EPARSE and `err` names the path, e.g.
 * "[3].timestamp: expected a number". A limit on the arena gives CLEW_ETOOBIG.
 * `out` is written only on success.
 *
 * Encoding appends a JSON array of Zipkin v2 spans to `out` (bounded: CLEW_ETOOBIG
 * when its max is reached). The spans are borrowed for the call.
 *
 * Thread-safety: no shared state; concurrent calls on different arenas/buffers are fine.
 */
#ifndef CLEW_CODEC_ZIPKIN_H
#define CLEW_CODEC_ZIPKIN_H

#include <stddef.h>

#include "clew/status.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/error.h"
#include "model/model.h"

/* POST /api/v2/spans body (Content-Type application/json) -> batch. */
CLEW_NODISCARD clew_status clew__zipkin_v2_decode(const char *data, size_t len, clew_arena *arena,
                                                  clew_batch *out, clew_error *err);

/* POST /api/v1/spans body (Zipkin v1 JSON: annotations cs/cr/sr/ss/ms/mr and
 * binaryAnnotations) -> batch. Each v1 span becomes one or two v2 spans (a v1 span
 * holding both client and server annotations is split, its server half shared) and
 * then maps exactly as v2 does; rejection messages index the converted spans. */
CLEW_NODISCARD clew_status clew__zipkin_v1_decode(const char *data, size_t len, clew_arena *arena,
                                                  clew_batch *out, clew_error *err);

/* spans -> `[span, ...]` as GET /api/v2/trace/{id} returns it. */
CLEW_NODISCARD clew_status clew__zipkin_v2_encode(const clew_span_data *const *spans, size_t n,
                                                  clew_buf *out);

#endif /* CLEW_CODEC_ZIPKIN_H */
