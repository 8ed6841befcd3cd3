/*
 * tests/unit/test_baggage.c - W3C Baggage (wire.md §2.2): grammar, OWS,
 * percent-encoding both ways, properties, limits, the API and the baggage
 * propagator. Each test names the rule it checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clew/propagation.h"
#include "common/alloc.h"

#define S(lit) ((clew_str){(lit), sizeof(lit) - 1})

static clew_baggage *bag_new(void)
{
    clew_baggage *b = NULL;
    assert_int_equal(clew_baggage_create(&b), CLEW_OK);
    return b;
}

static clew_baggage *parsed(const char *s)
{
    clew_baggage *b = bag_new();
    assert_int_equal(clew_baggage_parse(b, s, strlen(s)), CLEW_OK);
    return b;
}

/* Value of key as a NUL-terminated string; "<absent>" when missing. */
static const char *val(const clew_baggage *b, const char *key)
{
    static char out[9000];
    clew_str v;
    if (clew_baggage_get(b, (clew_str){key, strlen(key)}, &v, NULL) != CLEW_OK) {
        return "<absent>";
    }
    snprintf(out, sizeof(out), "%.*s", (int)v.len, v.ptr);
    return out;
}

static const char *meta(const clew_baggage *b, const char *key)
{
    static char out[9000];
    clew_str v, m;
    if (clew_baggage_get(b, (clew_str){key, strlen(key)}, &v, &m) != CLEW_OK) {
        return "<absent>";
    }
    snprintf(out, sizeof(out), "%.*s", (int)m.len, m.ptr);
    return out;
}

static const char *fmt(const clew_baggage *b)
{
    static char out[CLEW_BAGGAGE_MAX_BYTES + 1];
    assert_int_equal(clew_baggage_format(b, out, sizeof(out), NULL), CLEW_OK);
    return out;
}

/* §2.2 list-member = key "=" value; members kept in order. */
static void test_parse_basic(void **state)
{
    (void)state;
    clew_baggage *b = parsed("userId=alice,serverNode=DF%2028,isProduction=false");
    assert_int_equal(clew_baggage_count(b), 3);
    assert_string_equal(val(b, "userId"), "alice");
    assert_string_equal(val(b, "serverNode"), "DF 28");
    assert_string_equal(val(b, "isProduction"), "false");
    clew_str k;
    assert_int_equal(clew_baggage_entry(b, 1, &k, NULL, NULL), CLEW_OK);
    assert_memory_equal(k.ptr, "serverNode", k.len);
    assert_int_equal(clew_baggage_entry(b, 3, &k, NULL, NULL), CLEW_ENOTFOUND);
    clew_baggage_destroy(b);
}

/* §2.2 OWS around keys, "=", values, ";" and properties is not part of them. */
static void test_ows(void **state)
{
    (void)state;
    clew_baggage *b = parsed(" \tk1 \t= \tv1 \t, k2 = v2 ; p1 = x ; p2 \t,k3=v3");
    assert_string_equal(val(b, "k1"), "v1");
    assert_string_equal(val(b, "k2"), "v2");
    assert_string_equal(meta(b, "k2"), "p1=x;p2");
    assert_string_equal(val(b, "k3"), "v3");
    clew_baggage_destroy(b);
}

/* §2.2 key = token: case-sensitive, not lowercase-only. */
static void test_key_token(void **state)
{
    (void)state;
    clew_baggage *b = parsed("Key=1,key=2,a!#$&'*+-.^_`|~z=3");
    assert_string_equal(val(b, "Key"), "1");
    assert_string_equal(val(b, "key"), "2");
    assert_string_equal(val(b, "a!#$&'*+-.^_`|~z"), "3");
    clew_baggage_destroy(b);
}

/* §2.2 values may contain "="; an empty value is allowed. */
static void test_value_equals_and_empty(void **state)
{
    (void)state;
    clew_baggage *b = parsed("a=b=c,e=");
    assert_string_equal(val(b, "a"), "b=c");
    assert_string_equal(val(b, "e"), "");
    clew_baggage_destroy(b);
}

/* §2.2 percent-decoding on receipt, either hex case; "%" itself encoded as %25. */
static void test_percent_decode(void **state)
{
    (void)state;
    clew_baggage *b = parsed("a=%2c%2C,b=100%25,c=caf%C3%A9,d=%22q%22%3B%5C,e=%00x");
    assert_string_equal(val(b, "a"), ",,");
    assert_string_equal(val(b, "b"), "100%");
    assert_string_equal(val(b, "c"), "caf\xc3\xa9");
    assert_string_equal(val(b, "d"), "\"q\";\\");
    clew_str v;
    assert_int_equal(clew_baggage_get(b, S("e"), &v, NULL), CLEW_OK);
    assert_int_equal(v.len, 2);
    assert_memory_equal(v.ptr, "\0x", 2);
    clew_baggage_destroy(b);
}

/* §2.2 on decode, invalid UTF-8 becomes U+FFFD. */
static void test_invalid_utf8_replaced(void **state)
{
    (void)state;
    clew_baggage *b = parsed("a=x%FFy,b=%E2%82,c=%C0%AF,d=%ED%A0%80,e=%F0%9F%98%80");
    assert_string_equal(val(b, "a"), "x\xef\xbf\xbdy");
    assert_string_equal(val(b, "b"), "\xef\xbf\xbd"); /* truncated sequence: one U+FFFD */
    assert_string_equal(val(b, "c"), "\xef\xbf\xbd\xef\xbf\xbd");             /* overlong */
    assert_string_equal(val(b, "d"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* surrogate */
    assert_string_equal(val(b, "e"), "\xf0\x9f\x98\x80");                     /* valid emoji */
    clew_baggage_destroy(b);
}

/* §2.2 malformed members are dropped (MAY), valid neighbours kept. */
static void test_invalid_members_dropped(void **state)
{
    (void)state;
    clew_baggage *b = parsed("ok1=1,novalue,k y=2,=3,v=a b,q=\"x\",bs=a\\b,bad=%G1,pc=%2,"
                             "pr=1;,pr2=1;=x,pr3=1;p=a b,ok2=2");
    assert_int_equal(clew_baggage_count(b), 2);
    assert_string_equal(val(b, "ok1"), "1");
    assert_string_equal(val(b, "ok2"), "2");
    clew_baggage_destroy(b);
}

/* §2.2 empty list members (",,") are skipped; an empty header gives no members. */
static void test_empty(void **state)
{
    (void)state;
    clew_baggage *b = parsed(" , ,a=1,, ");
    assert_int_equal(clew_baggage_count(b), 1);
    clew_baggage_destroy(b);
    b = parsed("");
    assert_int_equal(clew_baggage_count(b), 0);
    assert_string_equal(fmt(b), "");
    clew_baggage_destroy(b);
}

/* §2.2 properties are kept: `key OWS "=" OWS value` or a bare key. */
static void test_properties(void **state)
{
    (void)state;
    clew_baggage *b = parsed("k=v;metadata=m%201;flag,k2=v2;a=;b");
    assert_string_equal(meta(b, "k"), "metadata=m%201;flag");
    assert_string_equal(meta(b, "k2"), "a=;b");
    assert_string_equal(fmt(b), "k=v;metadata=m%201;flag,k2=v2;a=;b");
    clew_baggage_destroy(b);
}

/* §2.2 duplicates possible; order SHOULD be preserved. */
static void test_duplicates_preserved(void **state)
{
    (void)state;
    clew_baggage *b = parsed("a=1,b=2,a=3");
    assert_int_equal(clew_baggage_count(b), 3);
    assert_string_equal(val(b, "a"), "1");
    assert_string_equal(fmt(b), "a=1,b=2,a=3");
    clew_baggage_destroy(b);
}

/* §2.2 encoding: bytes outside baggage-octet MUST be percent-encoded, "%" always. */
static void test_percent_encode(void **state)
{
    (void)state;
    clew_baggage *b = bag_new();
    assert_int_equal(clew_baggage_set(b, S("k"), S("a b,c;d\"e\\f%g=h\xc3\xa9\x7f\x01"), S("")),
                     CLEW_OK);
    assert_string_equal(fmt(b), "k=a%20b%2Cc%3Bd%22e%5Cf%25g=h%C3%A9%7F%01");
    clew_baggage_destroy(b);
}

/* Round trip: every byte 0x00-0x7f plus valid UTF-8 survives format then parse. */
static void test_round_trip(void **state)
{
    (void)state;
    char v[200];
    size_t n = 0;
    for (int c = 0; c < 0x80; c++) {
        v[n++] = (char)c;
    }
    memcpy(v + n, "\xe2\x82\xac\xf0\x9f\x98\x80", 7);
    n += 7;
    clew_baggage *a = bag_new();
    assert_int_equal(clew_baggage_set(a, S("all"), (clew_str){v, n}, S("p=1;q")), CLEW_OK);
    assert_int_equal(clew_baggage_set(a, S("plain"), S("x"), S("")), CLEW_OK);
    char out[CLEW_BAGGAGE_MAX_BYTES + 1];
    size_t len = 0;
    assert_int_equal(clew_baggage_format(a, out, sizeof(out), &len), CLEW_OK);
    assert_int_equal(len, strlen(out));
    clew_baggage *b = bag_new();
    assert_int_equal(clew_baggage_parse(b, out, len), CLEW_OK);
    assert_true(clew_baggage_equal(a, b));
    clew_baggage_destroy(a);
    clew_baggage_destroy(b);
}

/* §2.2 limits: 64 members MUST be propagated; beyond, members MAY be dropped, whole. */
static void test_member_limit(void **state)
{
    (void)state;
    char hdr[2000];
    size_t n = 0;
    for (int i = 0; i < 65; i++) {
        n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, "%sk%d=%d", i ? "," : "", i, i);
        if (i == 63) {
            clew_baggage *b = parsed(hdr);
            assert_int_equal(clew_baggage_count(b), 64);
            assert_string_equal(fmt(b), hdr);
            clew_baggage_destroy(b);
        }
    }
    clew_baggage *b = parsed(hdr);
    assert_int_equal(clew_baggage_count(b), 64);
    assert_string_equal(val(b, "k64"), "<absent>");
    clew_baggage_destroy(b);
}

/* §2.2 limits: 8192 bytes MUST be propagated; never a partial member. */
static void test_byte_limit(void **state)
{
    (void)state;
    static char hdr[9000];
    /* two members: "a=" + 4000 x, "," "b=" + (8192 - 4002 - 3) x = exactly 8192 */
    size_t first = 4000, second = 8192 - (2 + first) - 1 - 2;
    memset(hdr, 'x', sizeof(hdr));
    memcpy(hdr, "a=", 2);
    hdr[2 + first] = ',';
    memcpy(hdr + 3 + first, "b=", 2);
    hdr[8192] = '\0';
    assert_int_equal(strlen(hdr), 8192);
    clew_baggage *b = parsed(hdr);
    assert_int_equal(clew_baggage_count(b), 2);
    assert_int_equal(strlen(val(b, "b")), second);
    clew_baggage_destroy(b);
    /* one byte more: the second member is dropped whole */
    hdr[8192] = 'x';
    hdr[8193] = '\0';
    b = parsed(hdr);
    assert_int_equal(clew_baggage_count(b), 1);
    assert_string_equal(val(b, "b"), "<absent>");
    clew_baggage_destroy(b);
}

/* §2.2 multiple baggage headers are combined; the limits apply to the combination. */
static void test_multiple_headers(void **state)
{
    (void)state;
    clew_header items[3] = {
        {S("baggage"), S("a=1,b=2")}, {S("other"), S("x")}, {S("Baggage"), S("c=3")}};
    clew_header_list l;
    clew_header_list_init(&l, items, 3, 3, NULL, 0);
    clew_carrier c = clew_http_headers_carrier(&l);
    clew_baggage *b = bag_new();
    clew_span_context sc;
    assert_int_equal(clew_propagator_extract(clew_propagator_baggage(), &c, &sc, b),
                     CLEW_ENOTFOUND);
    assert_string_equal(fmt(b), "a=1,b=2,c=3");
    clew_baggage_destroy(b);
}

/* §2.2 the limits apply to the combination of all baggage headers. */
static void test_limits_across_headers(void **state)
{
    (void)state;
    static char h1[1000], h2[1000];
    size_t n1 = 0, n2 = 0;
    for (int i = 0; i < 40; i++) {
        n1 += (size_t)snprintf(h1 + n1, sizeof(h1) - n1, "%sa%d=%d", i ? "," : "", i, i);
        n2 += (size_t)snprintf(h2 + n2, sizeof(h2) - n2, "%sb%d=%d", i ? "," : "", i, i);
    }
    clew_header items[2] = {{S("baggage"), {h1, n1}}, {S("baggage"), {h2, n2}}};
    clew_header_list l;
    clew_header_list_init(&l, items, 2, 2, NULL, 0);
    clew_carrier c = clew_http_headers_carrier(&l);
    clew_baggage *b = bag_new();
    clew_span_context sc;
    assert_int_equal(clew_propagator_extract(clew_propagator_baggage(), &c, &sc, b),
                     CLEW_ENOTFOUND);
    assert_int_equal(clew_baggage_count(b), 64);
    assert_string_equal(val(b, "a39"), "39");
    assert_string_equal(val(b, "b23"), "23");
    assert_string_equal(val(b, "b24"), "<absent>");
    clew_baggage_destroy(b);
}

/* API: set keeps the position of an existing key and removes its duplicates. */
static void test_set_get_remove(void **state)
{
    (void)state;
    clew_baggage *b = parsed("a=1,b=2,a=3,c=4");
    assert_int_equal(clew_baggage_set(b, S("a"), S("9"), S("p")), CLEW_OK);
    assert_string_equal(fmt(b), "a=9;p,b=2,c=4");
    assert_int_equal(clew_baggage_set(b, S("d"), S(""), S("")), CLEW_OK);
    assert_string_equal(fmt(b), "a=9;p,b=2,c=4,d=");
    assert_int_equal(clew_baggage_remove(b, S("b")), CLEW_OK);
    assert_int_equal(clew_baggage_remove(b, S("b")), CLEW_ENOTFOUND);
    assert_string_equal(fmt(b), "a=9;p,c=4,d=");
    clew_str v = {"untouched", 9};
    assert_int_equal(clew_baggage_get(b, S("zz"), &v, NULL), CLEW_ENOTFOUND);
    assert_int_equal(v.len, 9);
    clew_baggage_clear(b);
    assert_int_equal(clew_baggage_count(b), 0);
    clew_baggage_destroy(b);
    clew_baggage_destroy(NULL);
}

/* API: set validates the key (token) and the metadata (properties). */
static void test_set_validates(void **state)
{
    (void)state;
    clew_baggage *b = bag_new();
    assert_int_equal(clew_baggage_set(b, S("a b"), S("1"), S("")), CLEW_EINVAL);
    assert_int_equal(clew_baggage_set(b, S(""), S("1"), S("")), CLEW_EINVAL);
    assert_int_equal(clew_baggage_set(b, S("k=v"), S("1"), S("")), CLEW_EINVAL);
    assert_int_equal(clew_baggage_set(b, S("k"), S("1"), S("p q")), CLEW_EINVAL);
    assert_int_equal(clew_baggage_set(b, S("k"), S("1"), S(";p")), CLEW_EINVAL);
    assert_int_equal(clew_baggage_count(b), 0);
    clew_baggage_destroy(b);
}

/* API: the list never exceeds what MUST be propagated (64 members, 8192 bytes). */
static void test_set_limits(void **state)
{
    (void)state;
    clew_baggage *b = bag_new();
    char k[16];
    for (int i = 0; i < 64; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(clew_baggage_set(b, (clew_str){k, strlen(k)}, S("v"), S("")), CLEW_OK);
    }
    assert_int_equal(clew_baggage_set(b, S("one-more"), S("v"), S("")), CLEW_ETOOBIG);
    assert_int_equal(clew_baggage_set(b, S("k0"), S("w"), S("")), CLEW_OK); /* update is fine */
    clew_baggage_clear(b);
    static char big[3000];
    memset(big, ' ', sizeof(big)); /* each space encodes to 3 bytes */
    assert_int_equal(clew_baggage_set(b, S("a"), (clew_str){big, 2729}, S("")), CLEW_OK);
    assert_int_equal(clew_baggage_set(b, S("b"), (clew_str){big, 1}, S("")), CLEW_ETOOBIG);
    assert_int_equal(strlen(fmt(b)), 2 + 3 * 2729);
    char small[10];
    assert_int_equal(clew_baggage_format(b, small, sizeof(small), NULL), CLEW_ETOOBIG);
    clew_baggage_destroy(b);
}

/* Propagator: inject writes one baggage header; extract reads it back. */
static void test_propagator_round_trip(void **state)
{
    (void)state;
    clew_baggage *a = parsed("user=al%20ice;ttl=30,n=1");
    clew_header items[4];
    char buf[256];
    clew_header_list l;
    clew_header_list_init(&l, items, 0, 4, buf, sizeof(buf));
    clew_carrier c = clew_http_headers_carrier(&l);
    assert_int_equal(clew_propagator_inject(clew_propagator_baggage(), NULL, a, &c), CLEW_OK);
    assert_int_equal(l.count, 1);
    /* §2.2 the header name SHOULD be lowercase */
    assert_memory_equal(items[0].name.ptr, "baggage", items[0].name.len);
    assert_int_equal(items[0].value.len, strlen("user=al%20ice;ttl=30,n=1"));
    assert_memory_equal(items[0].value.ptr, "user=al%20ice;ttl=30,n=1", items[0].value.len);
    clew_baggage *b = bag_new();
    clew_span_context sc;
    assert_int_equal(clew_propagator_extract(clew_propagator_baggage(), &c, &sc, b),
                     CLEW_ENOTFOUND);
    assert_true(clew_baggage_equal(a, b));
    /* an empty list injects nothing */
    clew_baggage_clear(a);
    clew_header_list_init(&l, items, 0, 4, buf, sizeof(buf));
    assert_int_equal(clew_propagator_inject(clew_propagator_baggage(), NULL, a, &c), CLEW_OK);
    assert_int_equal(l.count, 0);
    clew_baggage_destroy(a);
    clew_baggage_destroy(b);
}

/* Out of memory: parse reports CLEW_ENOMEM and leaks nothing (ASan checks). */
static void test_oom(void **state)
{
    (void)state;
    for (long n = 0; n < 8; n++) {
        clew_baggage *b = bag_new();
        clew__alloc_fail_after(n);
        clew_status rc = clew_baggage_parse(b, "a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9", 35);
        clew__alloc_fail_after(-1);
        assert_true(rc == CLEW_OK || rc == CLEW_ENOMEM);
        if (rc == CLEW_ENOMEM) {
            assert_true(clew_baggage_count(b) < 9);
        }
        clew_baggage_destroy(b);
    }
    clew_baggage *b = NULL;
    clew__alloc_fail_after(0);
    assert_int_equal(clew_baggage_create(&b), CLEW_ENOMEM);
    clew__alloc_fail_after(-1);
    assert_null(b);
    b = parsed("a=1,b=2");
    clew__alloc_fail_after(0);
    assert_int_equal(clew_baggage_set(b, S("a"), S("new"), S("")), CLEW_ENOMEM);
    assert_int_equal(clew_baggage_set(b, S("c"), S("3"), S("")), CLEW_ENOMEM);
    clew__alloc_fail_after(-1);
    assert_string_equal(fmt(b), "a=1,b=2"); /* unchanged after a failed set */
    clew_baggage_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_ows),
        cmocka_unit_test(test_key_token),
        cmocka_unit_test(test_value_equals_and_empty),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_invalid_utf8_replaced),
        cmocka_unit_test(test_invalid_members_dropped),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_duplicates_preserved),
        cmocka_unit_test(test_percent_encode),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_member_limit),
        cmocka_unit_test(test_byte_limit),
        cmocka_unit_test(test_multiple_headers),
        cmocka_unit_test(test_limits_across_headers),
        cmocka_unit_test(test_set_get_remove),
        cmocka_unit_test(test_set_validates),
        cmocka_unit_test(test_set_limits),
        cmocka_unit_test(test_propagator_round_trip),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
