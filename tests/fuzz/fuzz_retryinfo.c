/*
 * tests/fuzz/fuzz_retryinfo.c - the grpc-status-details-bin parser behind the
 * OTLP/gRPC exporter's RESOURCE_EXHAUSTED retry rule. Input byte 0 picks the
 * mode: even = the rest is the header value as received (base64 text), odd =
 * the rest is a raw google.rpc.Status, base64-encoded here so the fuzzer works
 * on the protobuf structure. Never a crash; only the documented results; the
 * retry decision for RESOURCE_EXHAUSTED agrees with the parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "sdk/sdk_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RAW (CLEW__GRPC_DETAILS_MAX / 4 * 3 + 64)

static void check(const char *text, size_t len)
{
    uint64_t d = 0;
    clew_status rc = clew__grpc_retry_info(text, len, &d);
    if (rc != CLEW_OK && rc != CLEW_ENOTFOUND && rc != CLEW_EPARSE && rc != CLEW_ETOOBIG) {
        abort();
    }
    uint64_t d2 = 0;
    bool retry = clew__grpc_retryable(8, text, len, &d2);
    if (retry != (rc == CLEW_OK) || (retry && d2 != d)) {
        abort();
    }
    /* the always-retryable codes stay retryable whatever the details say */
    if (!clew__grpc_retryable(14, text, len, &d2)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    if ((data[0] & 1) == 0) {
        check((const char *)p, n);
        return 0;
    }
    if (n > MAX_RAW) {
        n = MAX_RAW;
    }
    static char text[CLEW_BASE64_LEN(MAX_RAW)];
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        clew__base64_quad(p + i, n - i, text + o);
        o += 4;
    }
    check(text, o);
    return 0;
}
