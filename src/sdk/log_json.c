/*
 * src/sdk/log_json.c - clew_log_json: one JSON log line carrying the current
 * span's trace_id and span_id, so logs and traces can be joined.
 *
 * The line is built in a stack buffer first (a heap buffer only for lines
 * longer than 4 KiB) and written with a single fwrite / write, so concurrent
 * writers do not interleave within a line.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/hex.h"
#include "clew/log.h"
#include "sdk/sdk_internal.h"

static clew_status put_json_value(clew_buf *b, const clew_attr *a, unsigned depth)
{
    switch (a->type) {
    case CLEW_ATTR_KVLIST: {
        const clew_attr *m = a->v.array.items;
        if (depth >= CLEW_ATTR_MAX_DEPTH || (m == NULL && a->v.array.n > 0)) {
            return clew__buf_puts(b, "null"); /* too deep to be a sane log field */
        }
        clew_status rc = clew__buf_putc(b, '{');
        for (size_t i = 0; i < a->v.array.n && rc == CLEW_OK; i++) {
            const char *k = m[i].key != NULL ? m[i].key : "";
            if (i > 0) {
                rc = clew__buf_putc(b, ',');
            }
            if (rc == CLEW_OK) {
                rc = clew__buf_json_str(b, k, strlen(k));
            }
            if (rc == CLEW_OK) {
                rc = clew__buf_putc(b, ':');
            }
            if (rc == CLEW_OK) {
                rc = put_json_value(b, &m[i], depth + 1);
            }
        }
        return rc == CLEW_OK ? clew__buf_putc(b, '}') : rc;
    }
    case CLEW_ATTR_STRING:
        return clew__buf_json_str(b, a->v.s.ptr ? a->v.s.ptr : "", a->v.s.ptr ? a->v.s.len : 0);
    case CLEW_ATTR_BYTES: {
        clew_status rc = clew__buf_putc(b, '"');
        const unsigned char *p = (const unsigned char *)a->v.s.ptr;
        for (size_t i = 0; i < a->v.s.len && rc == CLEW_OK; i++) {
            rc = clew__buf_printf(b, "%02x", p[i]);
        }
        return rc == CLEW_OK ? clew__buf_putc(b, '"') : rc;
    }
    case CLEW_ATTR_BOOL:
        return clew__buf_puts(b, a->v.b ? "true" : "false");
    case CLEW_ATTR_INT:
        return clew__buf_printf(b, "%" PRId64, a->v.i);
    case CLEW_ATTR_DOUBLE:
        if (!isfinite(a->v.d)) {
            return clew__buf_puts(b, isnan(a->v.d) ? "\"NaN\""
                                     : a->v.d > 0  ? "\"Infinity\""
                                                   : "\"-Infinity\"");
        }
        return clew__buf_double(b, a->v.d, 1, false);
    case CLEW_ATTR_STRING_ARRAY:
    case CLEW_ATTR_BOOL_ARRAY:
    case CLEW_ATTR_INT_ARRAY:
    case CLEW_ATTR_DOUBLE_ARRAY: {
        clew_status rc = clew__buf_putc(b, '[');
        for (size_t i = 0; i < a->v.array.n && rc == CLEW_OK; i++) {
            clew_attr e;
            if (a->type == CLEW_ATTR_STRING_ARRAY) {
                e = clew_attr_str(NULL, ((const char *const *)a->v.array.items)[i]);
            } else if (a->type == CLEW_ATTR_BOOL_ARRAY) {
                e = clew_attr_bool(NULL, ((const bool *)a->v.array.items)[i]);
            } else if (a->type == CLEW_ATTR_INT_ARRAY) {
                e = clew_attr_int(NULL, ((const int64_t *)a->v.array.items)[i]);
            } else {
                e = clew_attr_double(NULL, ((const double *)a->v.array.items)[i]);
            }
            if (i > 0) {
                rc = clew__buf_putc(b, ',');
            }
            if (rc == CLEW_OK) {
                rc = put_json_value(b, &e, depth);
            }
        }
        return rc == CLEW_OK ? clew__buf_putc(b, ']') : rc;
    }
    }
    return clew__buf_puts(b, "null");
}

static clew_status build_line(clew_buf *b, const char *level, const char *message,
                              const clew_attr *fields, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    clew_status rc =
        clew__buf_printf(b, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ\"", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
    if (rc == CLEW_OK) {
        rc = clew__buf_puts(b, ",\"level\":");
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_json_str(b, level, strlen(level));
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_puts(b, ",\"message\":");
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_json_str(b, message, strlen(message));
    }
    clew_span *cur = clew_span_current();
    if (rc == CLEW_OK && cur != NULL && cur->pool != NULL) {
        char tid[33], sid[17];
        clew__span_ensure_id(cur);
        clew__trace_id_hex(&cur->ctx.trace_id, tid);
        clew__span_id_hex(&cur->ctx.span_id, sid);
        rc = clew__buf_printf(b, ",\"trace_id\":\"%s\",\"span_id\":\"%s\"", tid, sid);
    }
    for (size_t i = 0; i < n && fields != NULL && rc == CLEW_OK; i++) {
        if (fields[i].key == NULL) {
            continue;
        }
        rc = clew__buf_putc(b, ',');
        if (rc == CLEW_OK) {
            rc = clew__buf_json_str(b, fields[i].key, strlen(fields[i].key));
        }
        if (rc == CLEW_OK) {
            rc = clew__buf_putc(b, ':');
        }
        if (rc == CLEW_OK) {
            rc = put_json_value(b, &fields[i], 0);
        }
    }
    if (rc == CLEW_OK) {
        rc = clew__buf_puts(b, "}\n");
    }
    return rc;
}

clew_status clew_log_json(FILE *f, const char *level, const char *message, const clew_attr *fields,
                          size_t n)
{
    if (f == NULL || level == NULL || message == NULL) {
        return CLEW_EINVAL;
    }
    clew_buf b;
    clew__buf_init(&b, 1u << 20);
    clew_status rc = build_line(&b, level, message, fields, n);
    if (rc == CLEW_OK && fwrite(b.data, 1, b.len, f) != b.len) {
        rc = CLEW_EIO;
    }
    clew__buf_deinit(&b);
    return rc;
}

clew_status clew_log_json_fd(int fd, const char *level, const char *message,
                             const clew_attr *fields, size_t n)
{
    if (fd < 0 || level == NULL || message == NULL) {
        return CLEW_EINVAL;
    }
    clew_buf b;
    clew__buf_init(&b, 1u << 20);
    clew_status rc = build_line(&b, level, message, fields, n);
    size_t off = 0;
    while (rc == CLEW_OK && off < b.len) {
        ssize_t w = write(fd, b.data + off, b.len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rc = CLEW_EIO;
            break;
        }
        off += (size_t)w;
    }
    clew__buf_deinit(&b);
    return rc;
}
