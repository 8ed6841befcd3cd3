/*
 * tests/fuzz/fuzz_tail_config.c - feeds bytes to the `tail_sampling` YAML parser and
 * to the --sampling preset parser, then checks their promises: a refusal carries a
 * non-empty "name:line: reason" (preset: "--sampling: ...") and no config; an accepted
 * config drives the engine over a few spans that touch every attribute key it names,
 * and every decision is KEPT or DROPPED with an adjusted count of at least 1.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "sampling/sampler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fuzz_clock_ns;

static uint64_t fuzz_clock(void *ud)
{
    (void)ud;
    return fuzz_clock_ns;
}

static void on_decision(const clew_tail_decision *d, void *ud)
{
    (void)ud;
    if ((d->state != CLEW_TRACE_KEPT && d->state != CLEW_TRACE_DROPPED) ||
        !(d->adjusted_count >= 1.0)) {
        abort();
    }
}

static void drive(clew_tail_config *c)
{
    /* the parsed bounds allow huge tables; the fuzzer checks logic, not RAM */
    c->num_traces = c->num_traces > 64 ? 64 : c->num_traces;
    c->sampled_cache_size = c->sampled_cache_size > 64 ? 64 : c->sampled_cache_size;
    c->non_sampled_cache_size = c->non_sampled_cache_size > 64 ? 64 : c->non_sampled_cache_size;
    clew_tail_hooks h = {.on_decision = on_decision, .clock = fuzz_clock};
    clew_tail_engine *e;
    if (clew__tail_engine_new(c, &h, &e) != CLEW_OK) {
        abort();
    }
    clew_kv kv[CLEW_TAIL_MAX_ATTR_KEYS];
    clew_resource res;
    memset(&res, 0, sizeof(res));
    for (int round = 0; round < 3; round++) {
        clew_span_data s;
        memset(&s, 0, sizeof(s));
        for (size_t i = 0; i < c->n_attr_keys; i++) {
            kv[i].key = (clew_str){c->attr_keys[i], strlen(c->attr_keys[i])};
            memset(&kv[i].value, 0, sizeof(kv[i].value));
            switch ((i + (size_t)round) % 3) {
            case 0:
                kv[i].value.type = CLEW_VALUE_STRING;
                kv[i].value.u.s = (clew_str){"value1", 6};
                break;
            case 1:
                kv[i].value.type = CLEW_VALUE_INT;
                kv[i].value.u.i = 75;
                break;
            default:
                kv[i].value.type = CLEW_VALUE_BOOL;
                kv[i].value.u.b = true;
                break;
            }
        }
        s.attrs.items = kv;
        s.attrs.n = (uint32_t)c->n_attr_keys;
        s.resource = &res;
        s.trace_id.bytes[15] = (uint8_t)(round + 1);
        s.span_id.bytes[7] = 1;
        s.start_ns = 1000;
        s.end_ns = 1000 + (uint64_t)round * 3000000000u;
        s.status_code = (clew_status_code)(round % 3);
        s.trace_state = (clew_str){"ot=th:8,key3=value1", 19};
        const clew_span_data *p = &s;
        if (clew__tail_observe_spans(e, &p, 1) != CLEW_OK) {
            abort();
        }
        fuzz_clock_ns += 1000000000u;
        (void)clew__tail_tick(e);
    }
    (void)clew__tail_flush(e);
    clew__tail_engine_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clew_tail_config *c = NULL;
    clew_config_error err;
    clew_status rc = clew__tail_config_load_buffer("fuzz.yaml", (const char *)data, size, &c, &err);
    if (rc != CLEW_OK) {
        if (c != NULL || strncmp(err.msg, "fuzz.yaml", 9) != 0 ||
            memchr(err.msg, '\0', sizeof(err.msg)) == NULL) {
            abort();
        }
    } else if (c != NULL) {
        drive(c);
        clew__tail_config_free(c);
    }

    /* the same bytes as a preset string */
    if (size < 256) {
        char s[256];
        memcpy(s, data, size);
        s[size] = '\0';
        c = NULL;
        rc = clew__tail_preset_parse(s, &c, &err);
        if (rc != CLEW_OK) {
            if (c != NULL || (rc == CLEW_EINVAL && strncmp(err.msg, "--sampling:", 11) != 0)) {
                abort();
            }
        } else if (c != NULL) {
            drive(c);
            clew__tail_config_free(c);
        }
    }
    return 0;
}
