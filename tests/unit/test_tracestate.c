/*
 * tests/unit/test_tracestate.c - the W3C tracestate list (wire.md §1.2, Level 2
 * key grammar, and the `ot` entry of §3.3), including the W3C test-suite cases.
 * Each test names the rule it checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clew/context.h"

static clew_status parse(const char *s, clew_tracestate *ts)
{
    return clew_tracestate_parse(s, strlen(s), ts);
}

/* The value of key in ts as a NUL-terminated string; "<absent>" when missing. */
static const char *get(const clew_tracestate *ts, const char *key)
{
    static char out[600];
    clew_str v;
    if (clew_tracestate_get(ts, key, &v) != CLEW_OK) {
        return "<absent>";
    }
    snprintf(out, sizeof(out), "%.*s", (int)v.len, v.ptr);
    return out;
}

static const char *str(const clew_tracestate *ts)
{
    static char out[600];
    assert_int_equal(clew_tracestate_format(ts, out, sizeof(out), NULL), CLEW_OK);
    return out;
}

/* Repeats c n times into buf (NUL-terminated). */
static char *rep(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* §1.2 list of key=value members; order kept. */
static void test_parse_basic(void **state)
{
    (void)state;
    clew_tracestate ts;
    assert_int_equal(parse("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", &ts), CLEW_OK);
    assert_int_equal(clew_tracestate_count(&ts), 2);
    assert_string_equal(get(&ts, "congo"), "t61rcWkgMzE");
    assert_string_equal(get(&ts, "rojo"), "00f067aa0ba902b7");
    assert_string_equal(get(&ts, "nope"), "<absent>");
    clew_str k, v;
    assert_int_equal(clew_tracestate_member(&ts, 1, &k, &v), CLEW_OK);
    assert_int_equal(k.len, 4);
    assert_memory_equal(k.ptr, "rojo", 4);
    assert_int_equal(clew_tracestate_member(&ts, 2, &k, &v), CLEW_ENOTFOUND);
}

/* §1.2 "Vendors MUST accept empty tracestate headers"; empty and OWS-only members allowed. */
static void test_empty_members(void **state)
{
    (void)state;
    clew_tracestate ts;
    assert_int_equal(parse("", &ts), CLEW_OK);
    assert_int_equal(clew_tracestate_count(&ts), 0);
    assert_int_equal(parse(" \t ", &ts), CLEW_OK);
    assert_int_equal(clew_tracestate_count(&ts), 0);
    assert_int_equal(parse("foo=1,,  ,\t,bar=2,", &ts), CLEW_OK);
    assert_string_equal(str(&ts), "foo=1,bar=2");
}

/* test_tracestate_ows_handling: OWS around members is not part of them. */
static void test_ows_handling(void **state)
{
    (void)state;
    const char *cases[] = {"foo=1 \t , \t bar=2, \t baz=3", "foo=1\t \t,\t \tbar=2,\t \tbaz=3"};
    for (size_t i = 0; i < 2; i++) {
        clew_tracestate ts;
        assert_int_equal(parse(cases[i], &ts), CLEW_OK);
        assert_string_equal(get(&ts, "foo"), "1");
        assert_string_equal(get(&ts, "bar"), "2");
        assert_string_equal(get(&ts, "baz"), "3");
    }
    const char *single[] = {" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"};
    for (size_t i = 0; i < 5; i++) {
        clew_tracestate ts;
        assert_int_equal(parse(single[i], &ts), CLEW_OK);
        assert_string_equal(get(&ts, "foo"), "1");
    }
}

/* §1.2 value: leading spaces belong to the value, trailing ones are OWS. */
static void test_value_leading_space(void **state)
{
    (void)state;
    clew_tracestate ts;
    assert_int_equal(parse("foo=  bar  ", &ts), CLEW_OK);
    assert_string_equal(get(&ts, "foo"), "  bar");
}

/* test_tracestate_all_allowed_characters: every legal key and value character. */
static void test_all_allowed_characters(void **state)
{
    (void)state;
    char key[80], value[200], hdr[300];
    snprintf(key, sizeof(key), "%s", "abcdefghijklmnopqrstuvwxyz0123456789_-*/");
    size_t n = 0;
    for (int c = 0x20; c <= 0x7e; c++) {
        if (c != ',' && c != '=') {
            value[n++] = (char)c;
        }
    }
    value[n] = '\0';
    clew_tracestate ts;
    snprintf(hdr, sizeof(hdr), "%s=%s", key, value);
    assert_int_equal(parse(hdr, &ts), CLEW_OK);
    assert_string_equal(get(&ts, key), value);
    char vkey[100];
    snprintf(vkey, sizeof(vkey), "%s@a-z0-9_-*/", key);
    snprintf(hdr, sizeof(hdr), "%s=%s", vkey, value);
    assert_int_equal(parse(hdr, &ts), CLEW_OK);
    assert_string_equal(get(&ts, vkey), value);
}

/* test_tracestate_key_illegal_characters: the whole header is discarded. */
static void test_key_illegal_characters(void **state)
{
    (void)state;
    clew_tracestate ts;
    assert_int_equal(parse("foo =1", &ts), CLEW_EPARSE);
    assert_int_equal(parse("FOO=1", &ts), CLEW_EPARSE);
    assert_int_equal(parse("foo.bar=1", &ts), CLEW_EPARSE);
    assert_int_equal(parse("bar=2,foo.bar=1", &ts), CLEW_EPARSE);
    assert_int_equal(parse("=1", &ts), CLEW_EPARSE);
    assert_int_equal(parse("foo", &ts), CLEW_EPARSE);
    assert_int_equal(parse("_foo=1", &ts), CLEW_EPARSE);
    /* Level 2: a key may start with a digit. */
    assert_int_equal(parse("1foo=1", &ts), CLEW_OK);
}

/* §1.2 Level 2 key grammar: any number of "@" but not first (the `foo@` cases). */
static void test_key_vendor_format_level2(void **state)
{
    (void)state;
    clew_tracestate ts;
    assert_int_equal(parse("foo@=1,bar=2", &ts), CLEW_OK);
    assert_string_equal(get(&ts, "bar"), "2");
    assert_string_equal(get(&ts, "foo@"), "1");
    assert_int_equal(parse("foo@@bar=1,bar=2", &ts), CLEW_OK);
    assert_int_equal(parse("foo@bar@baz=1,bar=2", &ts), CLEW_OK);
    assert_int_equal(parse("t@vvvvvvvvvvvvvvv=1", &ts), CLEW_OK);
    assert_int_equal(parse("@foo=1,bar=2", &ts), CLEW_EPARSE);
}

/* test_tracestate_key_length_limit (Level 2): 256-char key valid, 257 invalid. */
static void test_key_length_limit(void **state)
{
    (void)state;
    char key[300], hdr[400];
    clew_tracestate ts;
    snprintf(hdr, sizeof(hdr), "%s=1", rep(key, 'z', 256));
    assert_int_equal(parse(hdr, &ts), CLEW_OK);
    assert_string_equal(get(&ts, key), "1");
    snprintf(hdr, sizeof(hdr), "foo=1,%s=1", rep(key, 'z', 257));
    assert_int_equal(parse(hdr, &ts), CLEW_EPARSE);
    /* Level 2 drops Level 1's tenant/system lengths: a 242-char tenant is fine. */
    snprintf(hdr, sizeof(hdr), "%s@v=1", rep(key, 't', 242));
    assert_int_equal(parse(hdr, &ts), CLEW_OK);
}

/* test_tracestate_value_illegal_characters: `foo=bar=baz`, `foo=`, controls, DEL. */
static void test_value_illegal_characters(void **state)
{
    (void)state;
    clew_tracestate ts;
    assert_int_equal(parse("foo=bar=baz", &ts), CLEW_EPARSE);
    assert_int_equal(parse("foo=,bar=3", &ts), CLEW_EPARSE);
    assert_int_equal(parse("foo=\x7f", &ts), CLEW_EPARSE);
    assert_int_equal(parse("foo=a\x01", &ts), CLEW_EPARSE);
    assert_int_equal(parse("foo=\xc3\xa9", &ts), CLEW_EPARSE);
    assert_int_equal(parse("foo=a\tb", &ts), CLEW_EPARSE);
}

/* §1.2 value is 1-256 characters. */
static void test_value_length_limit(void **state)
{
    (void)state;
    char v[300], hdr[400];
    clew_tracestate ts;
    snprintf(hdr, sizeof(hdr), "k=%s", rep(v, 'v', 256));
    assert_int_equal(parse(hdr, &ts), CLEW_OK);
    snprintf(hdr, sizeof(hdr), "k=%s", rep(v, 'v', 257));
    assert_int_equal(parse(hdr, &ts), CLEW_EPARSE);
}

/* test_tracestate_member_count_limit: 32 members kept, 33 discard the header. */
static void test_member_count_limit(void **state)
{
    (void)state;
    char hdr[400];
    size_t n = 0;
    for (int i = 1; i <= 33; i++) {
        n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, "%sbar%02d=%02d", i > 1 ? "," : "", i, i);
        if (i == 32) {
            clew_tracestate ts;
            assert_int_equal(parse(hdr, &ts), CLEW_OK);
            assert_int_equal(clew_tracestate_count(&ts), 32);
            assert_string_equal(get(&ts, "bar01"), "01");
            assert_string_equal(get(&ts, "bar32"), "32");
        }
    }
    clew_tracestate ts;
    clew_tracestate_init(&ts);
    assert_int_equal(parse(hdr, &ts), CLEW_EPARSE);
    assert_int_equal(clew_tracestate_count(&ts), 0);
}

/* test_tracestate_duplicated_keys: receivers MAY discard duplicates; we keep the first. */
static void test_duplicated_keys(void **state)
{
    (void)state;
    clew_tracestate ts;
    assert_int_equal(parse("foo=1,bar=2,foo=3", &ts), CLEW_OK);
    assert_string_equal(str(&ts), "foo=1,bar=2");
}

/* §1.2 truncation: only whole members; first those longer than 128 characters
 * (right-most first), then from the right. */
static void test_truncation_order(void **state)
{
    (void)state;
    char v[300], hdr[1200];
    /* a=short, l1 (200 chars member), b=short, l2 (200 chars), c... total > 512 */
    rep(v, 'x', 196); /* "l1=" + 196 + = 199 chars */
    snprintf(hdr, sizeof(hdr), "a=1,l1=%s,b=2,l2=%s,c=3,l3=%s,d=4", v, v, v);
    clew_tracestate ts;
    assert_int_equal(parse(hdr, &ts), CLEW_OK);
    /* Removing l3 (right-most long member) leaves 4*3+2*199+5 = 415 <= 512. */
    assert_string_equal(get(&ts, "l3"), "<absent>");
    assert_string_not_equal(get(&ts, "l1"), "<absent>");
    assert_string_not_equal(get(&ts, "l2"), "<absent>");
    assert_string_equal(get(&ts, "d"), "4");
    assert_true(clew_tracestate_str(&ts).len <= CLEW_TRACESTATE_CAPACITY);

    /* No long members: remove from the right until it fits. */
    size_t n = 0;
    char big[1200];
    rep(v, 'y', 100); /* each member "kNN=" + 100 = 104 chars */
    for (int i = 0; i < 6; i++) {
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%sk%02d=%s", i ? "," : "", i, v);
    }
    assert_int_equal(parse(big, &ts), CLEW_OK);
    assert_int_equal(clew_tracestate_count(&ts), 4); /* 4*104+3 = 419; 5 would be 524 */
    assert_string_equal(get(&ts, "k04"), "<absent>");
    assert_string_not_equal(get(&ts, "k03"), "<absent>");

    /* Exactly 512 characters are propagated whole (the spec's SHOULD minimum). */
    rep(v, 'z', 253); /* two members of 255 and 256 characters */
    snprintf(big, sizeof(big), "a=%.*s,b=%.*s", 253, v, 253, v);
    assert_int_equal(strlen(big), 511);
    assert_int_equal(parse(big, &ts), CLEW_OK);
    assert_int_equal(clew_tracestate_count(&ts), 2);
    snprintf(big, sizeof(big), "a=%.*s,bb=%.*s", 253, v, 253, v);
    assert_int_equal(strlen(big), 512);
    assert_int_equal(parse(big, &ts), CLEW_OK);
    assert_int_equal(clew_tracestate_count(&ts), 2);
}

/* §1.2 mutation: a modified or added key moves to the left; the rest keeps its order. */
static void test_set_moves_left(void **state)
{
    (void)state;
    clew_tracestate ts;
    assert_int_equal(parse("a=1,b=2,c=3", &ts), CLEW_OK);
    assert_int_equal(clew_tracestate_set(&ts, "b", "20"), CLEW_OK);
    assert_string_equal(str(&ts), "b=20,a=1,c=3");
    assert_int_equal(clew_tracestate_set(&ts, "d", "4"), CLEW_OK);
    assert_string_equal(str(&ts), "d=4,b=20,a=1,c=3");
}

/* OTel API: every mutation validates input and never yields invalid state. */
static void test_set_validates(void **state)
{
    (void)state;
    clew_tracestate ts;
    assert_int_equal(parse("a=1", &ts), CLEW_OK);
    assert_int_equal(clew_tracestate_set(&ts, "B", "1"), CLEW_EINVAL);
    assert_int_equal(clew_tracestate_set(&ts, "@b", "1"), CLEW_EINVAL);
    assert_int_equal(clew_tracestate_set(&ts, "b", ""), CLEW_EINVAL);
    assert_int_equal(clew_tracestate_set(&ts, "b", "x,y"), CLEW_EINVAL);
    assert_int_equal(clew_tracestate_set(&ts, "b", "x=y"), CLEW_EINVAL);
    assert_int_equal(clew_tracestate_set(&ts, "b", "x "), CLEW_EINVAL);
    assert_int_equal(clew_tracestate_set(&ts, "", "x"), CLEW_EINVAL);
    assert_string_equal(str(&ts), "a=1");
    /* A 256-char key with a 256-char value is 513 characters: cannot be held. */
    char k[300], v[300];
    assert_int_equal(clew_tracestate_set(&ts, rep(k, 'k', 256), rep(v, 'v', 256)), CLEW_ETOOBIG);
    assert_string_equal(str(&ts), "a=1");
}

/* §1.2 max 32 members: adding a 33rd removes the right-most. */
static void test_set_33rd_removes_rightmost(void **state)
{
    (void)state;
    clew_tracestate ts;
    clew_tracestate_init(&ts);
    char k[8];
    for (int i = 1; i <= 32; i++) {
        snprintf(k, sizeof(k), "k%02d", i);
        assert_int_equal(clew_tracestate_set(&ts, k, "v"), CLEW_OK);
    }
    /* k01 is now right-most */
    assert_int_equal(clew_tracestate_count(&ts), 32);
    assert_int_equal(clew_tracestate_set(&ts, "new", "v"), CLEW_OK);
    assert_int_equal(clew_tracestate_count(&ts), 32);
    assert_string_equal(get(&ts, "k01"), "<absent>");
    assert_string_equal(get(&ts, "k02"), "v");
    clew_str key;
    assert_int_equal(clew_tracestate_member(&ts, 0, &key, NULL), CLEW_OK);
    assert_memory_equal(key.ptr, "new", 3);
    /* Updating an existing key of a full list removes nothing. */
    assert_int_equal(clew_tracestate_set(&ts, "k02", "w"), CLEW_OK);
    assert_int_equal(clew_tracestate_count(&ts), 32);
}

/* §1.2 truncation applies to set too, never removing the member just set. */
static void test_set_truncates(void **state)
{
    (void)state;
    clew_tracestate ts;
    char v[300];
    rep(v, 'x', 200);
    clew_tracestate_init(&ts);
    assert_int_equal(clew_tracestate_set(&ts, "long", v), CLEW_OK); /* 205 chars */
    assert_int_equal(clew_tracestate_set(&ts, "s1", "1"), CLEW_OK);
    assert_int_equal(clew_tracestate_set(&ts, "s2", "2"), CLEW_OK);
    /* s2=2,s1=1,long=... is 214; adding another 205-char member still fits (420) */
    assert_int_equal(clew_tracestate_set(&ts, "long2", v), CLEW_OK);
    assert_int_equal(clew_tracestate_count(&ts), 4);
    /* a third long member would make 627: the right-most long member goes first */
    assert_int_equal(clew_tracestate_set(&ts, "long3", v), CLEW_OK);
    assert_string_equal(get(&ts, "long"), "<absent>");
    assert_string_not_equal(get(&ts, "long2"), "<absent>");
    assert_string_equal(get(&ts, "s1"), "1");
    assert_string_equal(get(&ts, "s2"), "2");
    assert_true(clew_tracestate_str(&ts).len <= CLEW_TRACESTATE_CAPACITY);
}

/* Delete removes one member and keeps the order of the rest. */
static void test_delete(void **state)
{
    (void)state;
    clew_tracestate ts;
    assert_int_equal(parse("a=1,b=2,c=3", &ts), CLEW_OK);
    assert_int_equal(clew_tracestate_delete(&ts, "b"), CLEW_OK);
    assert_string_equal(str(&ts), "a=1,c=3");
    assert_int_equal(clew_tracestate_delete(&ts, "b"), CLEW_ENOTFOUND);
    assert_int_equal(clew_tracestate_delete(&ts, "a"), CLEW_OK);
    assert_int_equal(clew_tracestate_delete(&ts, "c"), CLEW_OK);
    assert_int_equal(clew_tracestate_count(&ts), 0);
    assert_string_equal(str(&ts), "");
}

/* Format writes the header form and refuses a too small buffer. */
static void test_format(void **state)
{
    (void)state;
    clew_tracestate ts, back;
    assert_int_equal(parse(" a=1 ,\tb=x y", &ts), CLEW_OK);
    char out[16];
    size_t n = 0;
    assert_int_equal(clew_tracestate_format(&ts, out, 9, &n), CLEW_ETOOBIG);
    assert_int_equal(clew_tracestate_format(&ts, out, sizeof(out), &n), CLEW_OK);
    assert_string_equal(out, "a=1,b=x y");
    assert_int_equal(n, 9);
    assert_int_equal(clew_tracestate_parse(out, n, &back), CLEW_OK);
    assert_true(clew_tracestate_equal(&ts, &back));
}

/* §3.3 OTel's `ot` entry: sub-keys in one value; stored and forwarded as-is. */
static void test_ot_entry(void **state)
{
    (void)state;
    clew_tracestate ts;
    assert_int_equal(parse("vendor=x,ot=th:c;rv:0123456789abcd", &ts), CLEW_OK);
    assert_string_equal(get(&ts, "ot"), "th:c;rv:0123456789abcd");
    /* A sampler raising th rewrites ot, which then moves to the left. */
    assert_int_equal(clew_tracestate_set(&ts, "ot", "th:fd70a4;rv:0123456789abcd"), CLEW_OK);
    assert_string_equal(str(&ts), "ot=th:fd70a4;rv:0123456789abcd,vendor=x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_empty_members),
        cmocka_unit_test(test_ows_handling),
        cmocka_unit_test(test_value_leading_space),
        cmocka_unit_test(test_all_allowed_characters),
        cmocka_unit_test(test_key_illegal_characters),
        cmocka_unit_test(test_key_vendor_format_level2),
        cmocka_unit_test(test_key_length_limit),
        cmocka_unit_test(test_value_illegal_characters),
        cmocka_unit_test(test_value_length_limit),
        cmocka_unit_test(test_member_count_limit),
        cmocka_unit_test(test_duplicated_keys),
        cmocka_unit_test(test_truncation_order),
        cmocka_unit_test(test_set_moves_left),
        cmocka_unit_test(test_set_validates),
        cmocka_unit_test(test_set_33rd_removes_rightmost),
        cmocka_unit_test(test_set_truncates),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_ot_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
