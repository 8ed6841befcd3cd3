/*
 * tests/fuzz/fuzz_wal_reader.c - the WAL segment reader on arbitrary bytes: it must never
 * crash, hang or allocate without bound; what it reports must be consistent (the good prefix
 * ends inside the input, the dropped bytes are the rest), and cutting the input where it
 * says gives a segment that reads back clean with the same records. Payloads of the known
 * types also go through their decoders, and a decoded DECISION re-encodes to the same bytes.
 *
 * The reader is the same code that replays segment files at open (clew__wal_open reads
 * files through the same scanner), here fed from memory so no file system is involved.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "store/embedded/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct tally {
    uint64_t records;
    uint64_t bytes;
    uint32_t hash; /* over positions, types and payloads, to compare two scans */
} tally;

static clew_status on_record(void *ud, clew_wal_pos pos, uint8_t type, const uint8_t *payload,
                             size_t len)
{
    tally *t = ud;
    if (type == 0 || pos.offset < CLEW_WAL_SEGMENT_HEADER) {
        abort();
    }
    t->records++;
    t->bytes += len;
    uint8_t head[17];
    memcpy(head, &pos.segment, 8);
    memcpy(head + 8, &pos.offset, 8);
    head[16] = type;
    t->hash = t->hash * 31u + clew__crc32c(head, sizeof(head)) + clew__crc32c(payload, len);
    if (type == CLEW_WAL_SPANS) {
        clew_str tenant;
        uint8_t enc;
        const uint8_t *b;
        size_t bl;
        if (clew__wal_spans_decode(payload, len, &tenant, &enc, &b, &bl) == CLEW_OK &&
            (b + bl != payload + len || tenant.len > len)) {
            abort();
        }
    } else if (type == CLEW_WAL_DECISION) {
        clew_wal_decision d;
        if (clew__wal_decision_decode(payload, len, &d) == CLEW_OK) {
            uint8_t *re = NULL;
            size_t rl = 0;
            if (clew__wal_decision_encode(&d, &re, &rl) != CLEW_OK || rl != len ||
                memcmp(re, payload, len) != 0) {
                abort();
            }
            clew__free(re);
        }
    }
    return CLEW_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A small record limit makes the "length over the limit" path reachable too. */
    size_t max_record = size > 0 && (data[size - 1] & 1) ? 64 : 0;
    tally a = {0, 0, 0};
    clew_wal_scan_result res;
    if (clew__wal_scan_buffer(data, size, UINT64_MAX, max_record, on_record, &a, &res) != CLEW_OK) {
        abort(); /* only the callback or ENOMEM may fail, and neither does here */
    }
    if (res.valid_end > size || res.dropped_bytes != size - res.valid_end ||
        res.records != a.records) {
        abort();
    }
    if (res.header != CLEW_OK) {
        if (res.records != 0 || res.valid_end != 0) {
            abort();
        }
        return 0;
    }
    if ((res.stop_reason == NULL) != (res.valid_end == size) ||
        (res.stop_reason != NULL && res.dropped_records == 0)) {
        abort();
    }
    /* What a torn-tail cut would leave reads back clean, with the same records. */
    tally b = {0, 0, 0};
    clew_wal_scan_result again;
    if (clew__wal_scan_buffer(data, (size_t)res.valid_end, UINT64_MAX, max_record, on_record, &b,
                              &again) != CLEW_OK ||
        again.header != CLEW_OK || again.stop_reason != NULL || b.records != a.records ||
        b.hash != a.hash || b.bytes != a.bytes) {
        abort();
    }
    return 0;
}
