/*
 * tests/fuzz/fuzz_zipkin_json.c - the Zipkin v2 (and v1) JSON decoders on arbitrary bytes.
 *
 * Decodes under a 64 MiB arena limit. When the input decodes, the spans are
 * encoded back to Zipkin JSON and decoded again: that must succeed, reject
 * nothing, and give the same number of spans with the same ids, names, kinds,
 * times and status codes, in the same order (the Zipkin mapping is not exact
 * for everything: tags come back as strings, an absent service becomes
 * "unknown_service"). A mismatch or an encoder failure aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/zipkin.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "common/buf.h"
#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct span_list {
    const clew_span_data **v;
    size_t n;
} span_list;

static bool collect(const clew_span_data *s, void *ud)
{
    span_list *l = ud;
    l->v[l->n++] = s;
    return true;
}

static bool same_core(const clew_span_data *a, const clew_span_data *b)
{
    return memcmp(&a->trace_id, &b->trace_id, sizeof(a->trace_id)) == 0 &&
           memcmp(&a->span_id, &b->span_id, sizeof(a->span_id)) == 0 &&
           memcmp(&a->parent_span_id, &b->parent_span_id, sizeof(a->parent_span_id)) == 0 &&
           a->name.len == b->name.len && memcmp(a->name.ptr, b->name.ptr, a->name.len) == 0 &&
           a->kind == b->kind && a->start_ns == b->start_ns && a->end_ns == b->end_ns &&
           a->status_code == b->status_code && a->n_events == b->n_events;
}

/* Encodes the decoded batch `b` and decodes the result as v2; aborts on a mismatch. */
static void round_trip(const clew_batch *b)
{
    clew_arena a2;
    clew__arena_init(&a2, 64 * 1024, 64u << 20);
    clew_buf out;
    clew__buf_init(&out, 256u << 20);
    clew_batch b2;
    clew_error err;
    span_list l1 = {NULL, 0}, l2 = {NULL, 0};
    size_t n = b->n_spans > 0 ? b->n_spans : 1;
    l1.v = clew__calloc(n, sizeof(*l1.v));
    l2.v = clew__calloc(n, sizeof(*l2.v));
    if (l1.v == NULL || l2.v == NULL) {
        abort();
    }
    clew__batch_foreach(b, collect, &l1);
    if (l1.n != b->n_spans || clew__zipkin_v2_encode(l1.v, l1.n, &out) != CLEW_OK) {
        abort();
    }
    if (clew__zipkin_v2_decode(out.data, out.len, &a2, &b2, &err) != CLEW_OK || b2.rejected != 0 ||
        b2.n_spans != b->n_spans) {
        abort();
    }
    clew__batch_foreach(&b2, collect, &l2);
    for (size_t i = 0; i < l1.n; i++) {
        if (!same_core(l1.v[i], l2.v[i])) {
            abort();
        }
    }
    clew__free(l1.v);
    clew__free(l2.v);
    clew__buf_deinit(&out);
    clew__arena_deinit(&a2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clew_arena a;
    clew__arena_init(&a, 64 * 1024, 64u << 20);
    clew_batch b;
    clew_error err;
    if (clew__zipkin_v2_decode((const char *)data, size, &a, &b, &err) == CLEW_OK) {
        round_trip(&b);
    }
    clew__arena_reset(&a);
    if (clew__zipkin_v1_decode((const char *)data, size, &a, &b, &err) == CLEW_OK) {
        round_trip(&b);
    }
    clew__arena_deinit(&a);
    return 0;
}
