/*
 * clew/exporter.h - span exporters: OTLP/HTTP (protobuf or JSON), console,
 * file (OTLP JSON lines), a user callback, and none.
 *
 * (The processor part - batch or simple - is chosen in clew_provider_config,
 * clew/trace.h. This header is not "clew/export.h": that name holds the
 * visibility macros.)
 *
 * Ownership: an exporter is created by the caller and handed to a provider,
 * which owns it from then on (clew_exporter_destroy is only for one that was
 * never handed over). Strings in configs are copied.
 *
 * Thread-safety: a provider never calls its exporter concurrently (the batch
 * processor has one export thread; the simple processor serialises calls).
 */
#ifndef CLEW_EXPORTER_H
#define CLEW_EXPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "clew/export.h"
#include "clew/status.h"
#include "clew/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum clew_otlp_protocol {
    CLEW_OTLP_HTTP_PROTOBUF = 0, /* application/x-protobuf (default) */
    CLEW_OTLP_HTTP_JSON = 1,     /* application/json */
    CLEW_OTLP_GRPC = 2,          /* OTLP/gRPC over HTTP/2 (h2c for http://); added in 0.1 */
} clew_otlp_protocol;

/* Request body compression (OTEL_EXPORTER_OTLP_COMPRESSION). Added in 0.1. */
typedef enum clew_otlp_compression {
    CLEW_OTLP_COMPRESSION_NONE = 0,
    CLEW_OTLP_COMPRESSION_GZIP = 1, /* HTTP: Content-Encoding: gzip; gRPC: grpc-encoding: gzip */
} clew_otlp_compression;

/* OTLP/HTTP exporter settings; clew_otlp_config_init gives the defaults. */
typedef struct clew_otlp_config {
    /* HTTP protocols: the full URL spans are POSTed to, used as is (default
     * "http://localhost:4318/v1/traces"). From OTEL_EXPORTER_OTLP_ENDPOINT the
     * SDK appends "v1/traces" itself. gRPC: scheme, host and port of the
     * collector (e.g. "http://localhost:4317"); a path is replaced by the
     * TraceService/Export method path. */
    const char *url;
    clew_otlp_protocol protocol;
    /* Extra request headers as in OTEL_EXPORTER_OTLP_HEADERS: "k=v,k2=v2",
     * values percent-decoded. NULL = none. */
    const char *headers;
    uint32_t timeout_ms;               /* per export, retries included; default 10000 */
    const char *ca_file;               /* OTEL_EXPORTER_OTLP_CERTIFICATE */
    const char *client_key_file;       /* OTEL_EXPORTER_OTLP_CLIENT_KEY */
    const char *client_cert_file;      /* OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE */
    uint32_t retry_initial_ms;         /* first backoff, default 200 */
    uint32_t retry_max_ms;             /* backoff cap, default 5000 */
    clew_otlp_compression compression; /* default none; added in 0.1 */
} clew_otlp_config;

/* clew_otlp_config_init - the defaults above. Added in 0.1. */
CLEW_EXPORT void clew_otlp_config_init(clew_otlp_config *c);

/*
 * clew_exporter_otlp_http - an exporter that POSTs ExportTraceServiceRequests
 * through libcurl, reusing one keep-alive handle. Retries 429, 502, 503, 504
 * and connection errors with exponential backoff and jitter, honouring
 * Retry-After (seconds or HTTP-date), until the export timeout; any other
 * status (400 included) is final. Bodies are gzipped when config->compression
 * says so.
 * With protocol CLEW_OTLP_GRPC it speaks OTLP/gRPC instead (HTTP/2 with prior
 * knowledge for http://, ALPN for https://): the gRPC status comes from the
 * response trailers; UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE,
 * DATA_LOSS and CANCELLED are retried with the same backoff, anything else
 * (RESOURCE_EXHAUSTED included: RetryInfo details are not parsed) is final.
 * `config` is borrowed; caller owns *out until a provider takes it.
 * Returns CLEW_OK, CLEW_EINVAL (bad URL or headers), CLEW_ENOMEM. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_exporter_otlp_http(const clew_otlp_config *config,
                                                               clew_exporter **out);

/*
 * clew_exporter_console - writes each batch to `f` (borrowed; must outlive the
 * exporter) as an indented tree per trace: name, duration, ids, attributes.
 * Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_exporter_console(FILE *f, clew_exporter **out);

/*
 * clew_exporter_file - appends one OTLP/JSON ExportTraceServiceRequest per line
 * to the file at `path` (copied; opened for append when created, closed on
 * destroy). Returns CLEW_OK, CLEW_EIO (cannot open), CLEW_ENOMEM. Added in 0.1.
 */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_exporter_file(const char *path, clew_exporter **out);

/*
 * A user exporter: receives each batch as an encoded OTLP protobuf
 * ExportTraceServiceRequest (`data`, `len` bytes, borrowed for the call).
 * Return CLEW_OK when the batch was accepted, anything else counts it as
 * failed. Called from the export thread.
 */
typedef clew_status (*clew_export_fn)(void *ud, const uint8_t *data, size_t len);

/* clew_exporter_callback - an exporter calling `fn(ud, ...)`. Added in 0.1. */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_exporter_callback(clew_export_fn fn, void *ud,
                                                              clew_exporter **out);

/* clew_exporter_none - accepts and discards everything. Added in 0.1. */
CLEW_EXPORT CLEW_NODISCARD clew_status clew_exporter_none(clew_exporter **out);

/* clew_exporter_destroy - free an exporter no provider owns; NULL is a no-op. Added in 0.1. */
CLEW_EXPORT void clew_exporter_destroy(clew_exporter *e);

#ifdef __cplusplus
}
#endif

#endif /* CLEW_EXPORTER_H */
