/*
 * tests/unit/test_common.c - status codes, arena, bounded buffer, hex ids, durations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "clew/clew.h"
#include "common/alloc.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/hex.h"

static void status_strings(void **state)
{
    (void)state;
    assert_int_equal(CLEW_OK, 0);
    assert_true(CLEW_EPARSE < 0);
    assert_string_equal(clew_strerror(CLEW_OK), "success");
    assert_string_equal(clew_strerror(CLEW_ETOOBIG), "size limit exceeded");
    assert_string_equal(clew_status_name(CLEW_EPARSE), "CLEW_EPARSE");
    assert_string_equal(clew_strerror(-999), "unknown error");
    assert_string_equal(clew_status_name(42), "CLEW_UNKNOWN");
    assert_int_equal(clew_version(), CLEW_VERSION_NUM);
    assert_string_equal(clew_version_string(), CLEW_VERSION_STRING);
}

static void arena_limits(void **state)
{
    (void)state;
    clew_arena a;
    clew__arena_init(&a, 256, 1024);
    void *p = clew__arena_alloc(&a, 100);
    assert_non_null(p);
    assert_int_equal(((uintptr_t)p) % 8, 0);
    /* a 5000-byte allocation cannot fit under a 1 KiB limit */
    assert_null(clew__arena_alloc(&a, 5000));
    assert_true(a.over_limit);
    clew__arena_reset(&a);
    assert_false(a.over_limit);
    clew_str s = clew__arena_strdup(&a, "hello", 5);
    assert_int_equal(s.len, 5);
    assert_string_equal(s.ptr, "hello");
    uint64_t *z = clew__arena_calloc(&a, 4, sizeof(uint64_t));
    assert_non_null(z);
    assert_int_equal(z[0] | z[1] | z[2] | z[3], 0);
    clew__arena_deinit(&a);

    /* unlimited arena: many chunks, big one-offs */
    clew__arena_init(&a, 64, 0);
    for (int i = 0; i < 1000; i++) {
        char *q = clew__arena_alloc(&a, (size_t)(i % 300) + 1);
        assert_non_null(q);
        memset(q, 0xab, (size_t)(i % 300) + 1);
    }
    assert_true(a.used >= 1000);
    clew__arena_deinit(&a);
}

static void arena_oom(void **state)
{
    (void)state;
    clew_arena a;
    clew__arena_init(&a, 64, 0);
    clew__alloc_fail_after(0);
    assert_null(clew__arena_alloc(&a, 10));
    assert_false(a.over_limit); /* failure came from the allocator, not the limit */
    clew__alloc_fail_after(-1);
    assert_non_null(clew__arena_alloc(&a, 10));
    clew__arena_deinit(&a);
}

static void buf_bounded(void **state)
{
    (void)state;
    clew_buf b;
    clew__buf_init(&b, 10);
    assert_int_equal(clew__buf_puts(&b, "12345"), CLEW_OK);
    assert_int_equal(clew__buf_printf(&b, "%d", 678), CLEW_OK);
    assert_string_equal(b.data, "12345678");
    /* 3 more bytes would make 11 > max 10: refused, contents kept */
    assert_int_equal(clew__buf_puts(&b, "abc"), CLEW_ETOOBIG);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(clew__buf_puts(&b, "ab"), CLEW_OK);
    assert_int_equal(b.len, 10);
    size_t n;
    char *taken = clew__buf_take(&b, &n);
    assert_int_equal(n, 10);
    assert_string_equal(taken, "12345678ab");
    clew__free(taken);
    assert_null(b.data);
    clew__buf_deinit(&b);

    /* long printf goes through the slow path */
    clew__buf_init(&b, 0);
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(clew__buf_printf(&b, "<%s>", big), CLEW_OK);
    assert_int_equal(b.len, 601);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[600], '>');
    clew__buf_deinit(&b);
}

static void buf_json_escape(void **state)
{
    (void)state;
    clew_buf b;
    clew__buf_init(&b, 0);
    const char in[] = "a\"b\\c\n\t\x01\xc3\xa9\xff";
    assert_int_equal(clew__buf_json_str(&b, in, sizeof(in) - 1), CLEW_OK);
    /* é (valid UTF-8) passes through; 0xff (invalid) becomes U+FFFD */
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\t\\u0001\xc3\xa9\xef\xbf\xbd\"");
    clew__buf_reset(&b);
    /* overlong encoding of '/' and a lone surrogate are invalid too */
    assert_int_equal(clew__buf_json_str(&b, "\xc0\xaf\xed\xa0\x80", 5), CLEW_OK);
    assert_string_equal(b.data, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    clew__buf_deinit(&b);
}

static void hex_ids(void **state)
{
    (void)state;
    clew_trace_id t;
    char out[33];
    assert_true(clew__trace_id_parse("5B8EFFF798038103D269B633813FC60C", 32, &t));
    clew__trace_id_hex(&t, out);
    assert_string_equal(out, "5b8efff798038103d269b633813fc60c");
    assert_false(clew__trace_id_is_64bit(&t));
    /* 64-bit ids are zero-padded on the left */
    assert_true(clew__trace_id_parse("86154a4ba6e91385", 16, &t));
    clew__trace_id_hex(&t, out);
    assert_string_equal(out, "000000000000000086154a4ba6e91385");
    assert_true(clew__trace_id_is_64bit(&t));
    assert_false(clew__trace_id_parse("00000000000000000000000000000000", 32, &t));
    assert_false(clew__trace_id_parse("zz8efff798038103d269b633813fc60c", 32, &t));
    assert_false(clew__trace_id_parse("1", 0, &t));
    assert_false(clew__trace_id_parse("123456789012345678901234567890123", 33, &t));

    clew_span_id s;
    char sout[17];
    assert_true(clew__span_id_parse("eee19b7ec3c1b174", 16, &s));
    clew__span_id_hex(&s, sout);
    assert_string_equal(sout, "eee19b7ec3c1b174");
    assert_true(clew__span_id_parse("abc", 3, &s));
    clew__span_id_hex(&s, sout);
    assert_string_equal(sout, "0000000000000abc");
    assert_false(clew__span_id_parse("0000000000000000", 16, &s));
}

static void durations(void **state)
{
    (void)state;
    uint64_t ns = 0;
    assert_int_equal(clew__duration_parse("1.5s", 4, 0, &ns), CLEW_OK);
    assert_int_equal(ns, 1500000000ull);
    assert_int_equal(clew__duration_parse("250ms", 5, 0, &ns), CLEW_OK);
    assert_int_equal(ns, 250000000ull);
    assert_int_equal(clew__duration_parse("90us", 4, 0, &ns), CLEW_OK);
    assert_int_equal(ns, 90000ull);
    assert_int_equal(clew__duration_parse("1h30m", 5, 0, &ns), CLEW_OK);
    assert_int_equal(ns, 5400000000000ull);
    assert_int_equal(clew__duration_parse("100\xc2\xb5s", 6, 0, &ns), CLEW_OK);
    assert_int_equal(ns, 100000ull);
    /* bare numbers only with a default unit */
    assert_int_equal(clew__duration_parse("100", 3, 0, &ns), CLEW_EPARSE);
    assert_int_equal(clew__duration_parse("100", 3, 1000, &ns), CLEW_OK);
    assert_int_equal(ns, 100000ull);
    assert_int_equal(clew__duration_parse("-1s", 3, 0, &ns), CLEW_EPARSE);
    assert_int_equal(clew__duration_parse("1x", 2, 0, &ns), CLEW_EPARSE);
    assert_int_equal(clew__duration_parse("", 0, 0, &ns), CLEW_EPARSE);
    assert_int_equal(clew__duration_parse("1..2s", 5, 0, &ns), CLEW_EPARSE);

    char out[32];
    clew__duration_format(2400000000ull, out, sizeof(out));
    assert_string_equal(out, "2.40s");
    clew__duration_format(450000000ull, out, sizeof(out));
    assert_string_equal(out, "450.00ms");
    clew__duration_format(12, out, sizeof(out));
    assert_string_equal(out, "12ns");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(status_strings),  cmocka_unit_test(arena_limits),
        cmocka_unit_test(arena_oom),       cmocka_unit_test(buf_bounded),
        cmocka_unit_test(buf_json_escape), cmocka_unit_test(hex_ids),
        cmocka_unit_test(durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
