/*
 * src/query/jaeger_json.h - the Jaeger v1 "UI model" JSON of a trace (wire.md §5.1),
 * as returned inside data[] by GET /api/traces/{id} and the v1 search.
 *
 * OTLP fields without a Jaeger counterpart become tags the way Jaeger's own OTLP
 * translation names them (span.kind, otel.status_code, error, otel.scope.name, ...),
 * events become logs, links become FOLLOWS_FROM references, and each distinct
 * resource becomes a process (p1, p2, ...).
 *
 * Ownership: reads the trace, appends to `out`. Thread-safety: pure.
 */
#ifndef CLEW_QUERY_JAEGER_JSON_H
#define CLEW_QUERY_JAEGER_JSON_H

#include "clew/status.h"
#include "clew/types.h"
#include "common/buf.h"
#include "store/store.h"

/* Appends one trace object {"traceID","spans","processes","warnings","clew"}. */
CLEW_NODISCARD clew_status clew__jaeger_trace_json(const clew_trace_result *t, clew_buf *out);
/* The trace-level metadata object both APIs carry as "clew": {"state", "keptReason",
 * "adjustedCount", "tenant"}. */
CLEW_NODISCARD clew_status clew__trace_meta_json(const clew_trace_meta *m, clew_buf *out);

/* Jaeger's id text: 16 hex digits for a 64-bit id (upper 8 bytes zero), else 32. */
void clew__jaeger_trace_id_hex(const clew_trace_id *id, char out[33]);

/* Parses 1..32 hex digits (either case), left-padded with zeros to 128 bits, as
 * Jaeger accepts trace ids. False for anything else, including the all-zero id. */
bool clew__jaeger_trace_id_parse(const char *s, size_t len, clew_trace_id *out);

#endif /* CLEW_QUERY_JAEGER_JSON_H */
