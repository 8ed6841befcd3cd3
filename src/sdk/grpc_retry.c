/*
 * src/sdk/grpc_retry.c - the OTLP/gRPC exporter's retry rules, kept apart from
 * the transport (otlp_http.c) so they can be unit-tested and fuzzed without a
 * server.
 *
 * The OTLP specification retries CANCELLED, DEADLINE_EXCEEDED, ABORTED,
 * OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS always, and RESOURCE_EXHAUSTED only
 * when the server says recovery is possible: the grpc-status-details-bin
 * trailer (a base64 google.rpc.Status) carries a google.rpc.RetryInfo detail.
 * Its retry_delay is then the wait before the next attempt.
 *
 * Messages walked here (field numbers from the googleapis protos):
 *   google.rpc.Status   { int32 code = 1; string message = 2; repeated Any details = 3; }
 *   google.protobuf.Any { string type_url = 1; bytes value = 2; }
 *   google.rpc.RetryInfo { google.protobuf.Duration retry_delay = 1; }
 *   google.protobuf.Duration { int64 seconds = 1; int32 nanos = 2; }
 * The trailer is untrusted: every length is checked against what is left, the
 * decoded size is bounded and no memory is allocated (the decode buffer is on
 * the stack).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/base64.h"
#include "sdk/sdk_internal.h"

#define RETRY_INFO_TYPE "type.googleapis.com/google.rpc.RetryInfo"

/* google.protobuf.Duration's documented range: about 10,000 years. */
#define DURATION_MAX_SECONDS 315576000000ll

typedef struct pb_cursor {
    const uint8_t *p, *end;
} pb_cursor;

static bool pb_varint(pb_cursor *c, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (c->p == c->end) {
            return false;
        }
        uint8_t b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false; /* more than 10 bytes */
}

/* Reads one field's key and, for length-delimited fields, its payload into
 * *sub; other wire types are skipped. False on a malformed or truncated field. */
static bool pb_field(pb_cursor *c, uint32_t *field, uint32_t *wire, uint64_t *varint,
                     pb_cursor *sub)
{
    uint64_t key;
    if (!pb_varint(c, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX) {
        return false;
    }
    *field = (uint32_t)(key >> 3);
    *wire = (uint32_t)(key & 7);
    size_t left = (size_t)(c->end - c->p);
    switch (*wire) {
    case 0:
        return pb_varint(c, varint);
    case 1:
        if (left < 8) {
            return false;
        }
        c->p += 8;
        return true;
    case 2: {
        uint64_t n;
        if (!pb_varint(c, &n) || n > (uint64_t)(c->end - c->p)) {
            return false;
        }
        sub->p = c->p;
        sub->end = c->p + n;
        c->p += n;
        return true;
    }
    case 5:
        if (left < 4) {
            return false;
        }
        c->p += 4;
        return true;
    default:
        return false; /* groups (3, 4) are not used by these messages; 6, 7 do not exist */
    }
}

/* google.protobuf.Duration -> nanoseconds; false when malformed or negative. */
static bool parse_duration(pb_cursor c, uint64_t *out_ns)
{
    int64_t seconds = 0, nanos = 0;
    while (c.p < c.end) {
        uint32_t field, wire;
        uint64_t v = 0;
        pb_cursor sub;
        if (!pb_field(&c, &field, &wire, &v, &sub)) {
            return false;
        }
        if (field == 1 && wire == 0) {
            seconds = (int64_t)v;
        } else if (field == 2 && wire == 0) {
            nanos = (int64_t)(int32_t)(uint32_t)v;
        } else if (field <= 2) {
            return false; /* a known field with the wrong wire type */
        }
    }
    /* a negative wait means nothing sensible; Duration's own range bounds the rest */
    if (seconds < 0 || seconds > DURATION_MAX_SECONDS || nanos < 0 || nanos > 999999999) {
        return false;
    }
    /* Duration allows ~10,000 years, more than a uint64 of nanoseconds holds (~584 years):
     * saturate below UINT64_MAX (which means "no delay given"); any such wait is past every
     * export deadline, so the exporter gives up either way */
    if ((uint64_t)seconds > (UINT64_MAX - 1 - 999999999u) / 1000000000u) {
        *out_ns = UINT64_MAX - 1;
        return true;
    }
    *out_ns = (uint64_t)seconds * 1000000000u + (uint64_t)nanos;
    return true;
}

/* google.rpc.RetryInfo: *out_ns = retry_delay, UINT64_MAX when absent. */
static bool parse_retry_info(pb_cursor c, uint64_t *out_ns)
{
    *out_ns = UINT64_MAX;
    while (c.p < c.end) {
        uint32_t field, wire;
        uint64_t v;
        pb_cursor sub;
        if (!pb_field(&c, &field, &wire, &v, &sub)) {
            return false;
        }
        if (field == 1) {
            /* a repeated message field merges; the last one wins for scalars */
            if (wire != 2 || !parse_duration(sub, out_ns)) {
                return false;
            }
        }
    }
    return true;
}

/* google.protobuf.Any: CLEW_OK and the delay when it is a RetryInfo,
 * CLEW_ENOTFOUND for any other type, CLEW_EPARSE when malformed. */
static clew_status parse_any(pb_cursor c, uint64_t *out_ns)
{
    pb_cursor type = {NULL, NULL}, value = {NULL, NULL};
    bool has_type = false;
    while (c.p < c.end) {
        uint32_t field, wire;
        uint64_t v;
        pb_cursor sub;
        if (!pb_field(&c, &field, &wire, &v, &sub)) {
            return CLEW_EPARSE;
        }
        if (field == 1 || field == 2) {
            if (wire != 2) {
                return CLEW_EPARSE;
            }
            if (field == 1) {
                type = sub;
                has_type = true;
            } else {
                value = sub;
            }
        }
    }
    size_t tl = has_type ? (size_t)(type.end - type.p) : 0;
    if (tl != sizeof(RETRY_INFO_TYPE) - 1 || memcmp(type.p, RETRY_INFO_TYPE, tl) != 0) {
        return CLEW_ENOTFOUND;
    }
    if (value.p == NULL) {
        *out_ns = UINT64_MAX; /* an empty RetryInfo: no delay given */
        return CLEW_OK;
    }
    return parse_retry_info(value, out_ns) ? CLEW_OK : CLEW_EPARSE;
}

clew_status clew__grpc_retry_info(const char *value, size_t len, uint64_t *delay_ns)
{
    if (value == NULL || delay_ns == NULL) {
        return CLEW_EINVAL;
    }
    /* gRPC sends binary metadata unpadded, but padding is accepted; so is
     * surrounding whitespace from the header line */
    while (len > 0 && (value[0] == ' ' || value[0] == '\t')) {
        value++;
        len--;
    }
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t' || value[len - 1] == '\r' ||
                       value[len - 1] == '\n')) {
        len--;
    }
    if (len > CLEW__GRPC_DETAILS_MAX) {
        return CLEW_ETOOBIG;
    }
    size_t n = clew__base64_decoded_len(value, &len);
    if (n == SIZE_MAX) {
        return CLEW_EPARSE;
    }
    uint8_t buf[CLEW__GRPC_DETAILS_MAX / 4 * 3 + 3];
    if (n > sizeof(buf) || !clew__base64_decode(value, len, buf)) {
        return CLEW_EPARSE;
    }
    pb_cursor c = {buf, buf + n};
    clew_status found = CLEW_ENOTFOUND;
    uint64_t delay = UINT64_MAX;
    while (c.p < c.end) {
        uint32_t field, wire;
        uint64_t v;
        pb_cursor sub;
        if (!pb_field(&c, &field, &wire, &v, &sub)) {
            return CLEW_EPARSE;
        }
        if ((field == 1 && wire != 0) || ((field == 2 || field == 3) && wire != 2)) {
            return CLEW_EPARSE;
        }
        if (field != 3) {
            continue;
        }
        uint64_t d;
        clew_status rc = parse_any(sub, &d);
        if (rc == CLEW_EPARSE) {
            return rc;
        }
        if (rc == CLEW_OK && found != CLEW_OK) {
            /* the first RetryInfo decides; the rest of the message is still checked */
            found = CLEW_OK;
            delay = d;
        }
    }
    if (found == CLEW_OK) {
        *delay_ns = delay;
    }
    return found;
}

bool clew__grpc_retryable(int grpc_status, const char *details, size_t details_len,
                          uint64_t *delay_ns)
{
    *delay_ns = UINT64_MAX;
    switch (grpc_status) {
    case 1:  /* CANCELLED */
    case 4:  /* DEADLINE_EXCEEDED */
    case 10: /* ABORTED */
    case 11: /* OUT_OF_RANGE */
    case 14: /* UNAVAILABLE */
    case 15: /* DATA_LOSS */
        /* a RetryInfo here still tells how long to wait */
        if (details != NULL && clew__grpc_retry_info(details, details_len, delay_ns) != CLEW_OK) {
            *delay_ns = UINT64_MAX;
        }
        return true;
    case 8: /* RESOURCE_EXHAUSTED: only when the server says recovery is possible */
        if (details == NULL) {
            return false;
        }
        if (clew__grpc_retry_info(details, details_len, delay_ns) != CLEW_OK) {
            *delay_ns = UINT64_MAX;
            return false;
        }
        return true;
    default:
        return false;
    }
}
