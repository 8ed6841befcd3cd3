/*
 * src/server/limits.c - span limits at ingest; see limits.h and
 * docs/internals/limits.md.
 */
#include "server/limits.h"

#include <stdbool.h>
#include <stddef.h>

const char *const clew__limit_names[CLEW_LIMIT_COUNT] = {
    "span_attributes",        "event_attributes", "link_attributes",
    "attribute_value_length", "events",           "links",
};

/* Dropped counts are uint32 on the wire: saturate rather than wrap, so a huge
 * drop never reads as a small one. */
static uint32_t add_sat(uint32_t a, uint64_t b)
{
    uint64_t s = (uint64_t)a + b;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* The longest prefix of s that is at most `max` bytes and does not end inside a
 * UTF-8 sequence (a lead byte followed by fewer continuation bytes than it
 * announces). Invalid UTF-8 is cut at `max` as is. */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t cut = max;
    /* step back over continuation bytes (10xxxxxx) to the start of the character
     * that straddles the cut, at most 3 of them */
    size_t back = 0;
    while (back < 3 && cut - back > 0 && ((unsigned char)s[cut - back] & 0xC0) == 0x80) {
        back++;
    }
    if (((unsigned char)s[cut - back] & 0xC0) == 0x80) {
        return max; /* not UTF-8 here: no boundary to respect */
    }
    /* s[cut - back] starts the character cut by `max` (back == 0: `max` itself is a
     * boundary, since s[max] starts a character) */
    return cut - back;
}

/* Truncates v (recursively through arrays and key lists); true if anything was cut. */
static bool limit_value(clew_value *v, uint64_t max_len, unsigned depth)
{
    bool cut = false;
    switch (v->type) {
    case CLEW_VALUE_STRING:
        if (v->u.s.len > max_len) {
            v->u.s.len = utf8_cut(v->u.s.ptr, (size_t)max_len);
            cut = true;
        }
        break;
    case CLEW_VALUE_BYTES:
        if (v->u.s.len > max_len) {
            v->u.s.len = (size_t)max_len;
            cut = true;
        }
        break;
    case CLEW_VALUE_ARRAY:
        /* decoders bound nesting; the depth check only keeps this loop finite
         * for a batch built some other way */
        if (depth < 64) {
            for (uint32_t i = 0; i < v->u.array.n; i++) {
                cut |= limit_value(&v->u.array.items[i], max_len, depth + 1);
            }
        }
        break;
    case CLEW_VALUE_KVLIST:
        if (depth < 64) {
            for (uint32_t i = 0; i < v->u.kvlist.n; i++) {
                cut |= limit_value(&v->u.kvlist.items[i].value, max_len, depth + 1);
            }
        }
        break;
    default:
        break;
    }
    return cut;
}

/* Applies a count limit and the value length limit to one attribute list.
 * Sets *counted / *truncated when they changed something. */
static void limit_attrs(clew_attrs *a, uint32_t max_count, uint64_t max_len, bool *counted,
                        bool *truncated)
{
    if (max_count != 0 && a->n > max_count) {
        a->dropped = add_sat(a->dropped, a->n - max_count);
        a->n = max_count;
        *counted = true;
    }
    if (max_len != 0) {
        for (uint32_t i = 0; i < a->n; i++) {
            if (limit_value(&a->items[i].value, max_len, 0)) {
                *truncated = true;
            }
        }
    }
}

static void count(const clew_limits *l, clew_limit_what what)
{
    if (l->counters != NULL) {
        atomic_fetch_add_explicit(&l->counters[what], 1, memory_order_relaxed);
    }
}

/* Limits one span; true if anything in it was cut. */
static bool limit_span(const clew_limits *l, clew_span_data *sp)
{
    bool hit[CLEW_LIMIT_COUNT] = {false};
    uint64_t len = l->attribute_value_length;

    limit_attrs(&sp->attrs, l->span_attribute_count, len, &hit[CLEW_LIMIT_SPAN_ATTRIBUTES],
                &hit[CLEW_LIMIT_VALUE_LENGTH]);
    if (l->span_event_count != 0 && sp->n_events > l->span_event_count) {
        sp->dropped_events = add_sat(sp->dropped_events, sp->n_events - l->span_event_count);
        sp->n_events = l->span_event_count;
        hit[CLEW_LIMIT_EVENTS] = true;
    }
    for (uint32_t i = 0; i < sp->n_events; i++) {
        limit_attrs(&sp->events[i].attrs, l->event_attribute_count, len,
                    &hit[CLEW_LIMIT_EVENT_ATTRIBUTES], &hit[CLEW_LIMIT_VALUE_LENGTH]);
    }
    if (l->span_link_count != 0 && sp->n_links > l->span_link_count) {
        sp->dropped_links = add_sat(sp->dropped_links, sp->n_links - l->span_link_count);
        sp->n_links = l->span_link_count;
        hit[CLEW_LIMIT_LINKS] = true;
    }
    for (uint32_t i = 0; i < sp->n_links; i++) {
        limit_attrs(&sp->links[i].attrs, l->link_attribute_count, len,
                    &hit[CLEW_LIMIT_LINK_ATTRIBUTES], &hit[CLEW_LIMIT_VALUE_LENGTH]);
    }
    bool any = false;
    for (int w = 0; w < CLEW_LIMIT_COUNT; w++) {
        if (hit[w]) {
            count(l, (clew_limit_what)w);
            any = true;
        }
    }
    return any;
}

clew_status clew__limits_apply_changed(const clew_limits *limits, clew_batch *batch,
                                       clew_arena *arena, bool *changed)
{
    (void)arena; /* truncation shrinks lengths in place: nothing to allocate */
    *changed = false;
    if (limits == NULL || batch == NULL) {
        return CLEW_EINVAL;
    }
    bool any = false;
    for (size_t r = 0; r < batch->n_rs; r++) {
        clew_resource_spans *rs = &batch->rs[r];
        for (size_t s = 0; s < rs->n_scopes; s++) {
            clew_scope_spans *ss = &rs->scopes[s];
            for (size_t i = 0; i < ss->n_spans; i++) {
                any |= limit_span(limits, &ss->spans[i]);
            }
        }
    }
    *changed = any;
    return CLEW_OK;
}

clew_status clew__limits_apply(const clew_limits *limits, clew_batch *batch, clew_arena *arena)
{
    bool changed;
    return clew__limits_apply_changed(limits, batch, arena, &changed);
}
