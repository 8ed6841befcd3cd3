/*
 * tests/unit/test_cli_search.c - pieces of `clew search` / `clew services` and
 * of the CLI's option parser that need no server: summarising Jaeger v1 search
 * results (tests/unit/data/search_v1.json), the tags JSON, URL building, and the
 * table-driven option parser.
 *
 * The CLI sources are not in a library, so the files under test are included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli_options.c"
#include "cli/cmd_search.c"
#include "cli/http_client.c"

static json_t *load_fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/unit/data/%s", CLEW_SOURCE_DIR, name);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (j == NULL) {
        fail_msg("%s: %s", path, err.text);
    }
    return j;
}

static void test_summarise_search_results(void **state)
{
    (void)state;
    json_t *body = load_fixture("search_v1.json");
    const json_t *data = json_object_get(body, "data");
    assert_int_equal(json_array_size(data), 2);

    trace_row r;
    assert_true(summarise(json_array_get(data, 0), &r));
    assert_string_equal(r.id, "5b8efff798038103d269b633813fc60c");
    assert_int_equal(r.spans, 3);
    assert_int_equal(r.errors, 1); /* the error=true tag on Charge */
    assert_int_equal(r.start_us, 1700000000000000);
    assert_int_equal(r.duration_us, 3000000);
    /* the root is the span without a parent in the trace, though listed second */
    assert_string_equal(r.root_service, "checkout");
    assert_string_equal(r.root_op, "POST /checkout");

    /* an inline "process" and a parent that is not in the trace */
    assert_true(summarise(json_array_get(data, 1), &r));
    assert_string_equal(r.root_service, "inventory");
    assert_string_equal(r.root_op, "orphan child");
    assert_int_equal(r.duration_us, 1500);
    assert_int_equal(r.errors, 0);
    json_decref(body);

    /* a trace without spans is not a row */
    json_t *empty = json_loads("{\"traceID\":\"ab\",\"spans\":[]}", 0, NULL);
    assert_false(summarise(empty, &r));
    json_decref(empty);
}

static void test_tags_json(void **state)
{
    (void)state;
    const char *tags[] = {"http.method=POST", "note=a=b", "http.method=GET", "empty="};
    clew_buf b;
    clew__buf_init(&b, 1 << 16);
    assert_int_equal(tags_to_json(tags, 4, &b), CLEW_EXIT_OK);
    /* sorted keys, the last of a repeated key wins, values may contain '=' */
    assert_string_equal(b.data, "{\"empty\":\"\",\"http.method\":\"GET\",\"note\":\"a=b\"}");
    clew__buf_deinit(&b);

    const char *bad[] = {"k=\xff\xfe"};
    clew__buf_init(&b, 1 << 16);
    assert_int_equal(tags_to_json(bad, 1, &b), CLEW_EXIT_BADINPUT);
    clew__buf_deinit(&b);
}

static void test_url_building(void **state)
{
    (void)state;
    clew_http_client *c = NULL;
    assert_int_equal(clew__http_client_create("127.0.0.1:9/", &c), CLEW_OK);
    assert_string_equal(clew__http_client_base(c), "http://127.0.0.1:9");
    clew_buf b;
    clew__buf_init(&b, 4096);
    assert_int_equal(clew__buf_puts(&b, "/api/traces"), CLEW_OK);
    assert_int_equal(clew__http_add_param(c, &b, "service", "a b&c"), CLEW_OK);
    assert_int_equal(clew__http_add_param(c, &b, "tags", "{\"k\":\"v\"}"), CLEW_OK);
    assert_string_equal(b.data, "/api/traces?service=a%20b%26c&tags=%7B%22k%22%3A%22v%22%7D");
    clew__buf_deinit(&b);
    clew__http_client_destroy(c);

    assert_int_equal(clew__http_client_create("ftp://host", &c), CLEW_EINVAL);
    assert_int_equal(clew__http_client_create("http://", &c), CLEW_EINVAL);
    assert_int_equal(clew__http_client_create("http://a b", &c), CLEW_EINVAL);
    assert_int_equal(clew__http_client_create("HTTPS://host:1/prefix//", &c), CLEW_OK);
    assert_string_equal(clew__http_client_base(c), "HTTPS://host:1/prefix");
    clew__http_client_destroy(c);
}

static void test_base_url_precedence(void **state)
{
    (void)state;
    setenv("CLEW_SERVER", "http://from-env:1", 1);
    assert_string_equal(clew__http_base_url("http://flag:2"), "http://flag:2");
    assert_string_equal(clew__http_base_url(NULL), "http://from-env:1");
    setenv("CLEW_SERVER", "", 1);
    assert_string_equal(clew__http_base_url(NULL), CLEW_HTTP_DEFAULT_SERVER);
    unsetenv("CLEW_SERVER");
    assert_string_equal(clew__http_base_url(NULL), "http://127.0.0.1:16686");
}

static void test_unreachable_server(void **state)
{
    (void)state;
    /* A port that is bound but not listening refuses connections, and holding
     * it keeps anyone else from listening there during the test. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    clew_http_client *c = NULL;
    assert_int_equal(clew__http_client_create(url, &c), CLEW_OK);
    clew_http_response r;
    clew__http_response_init(&r);
    clew_status rc = clew__http_get(c, "/api/services", &r);
    assert_int_equal(rc, CLEW_ENET);
    assert_string_equal(r.error, "Connection refused");
    assert_int_equal(clew__http_report_failure(c, rc, &r), CLEW_EXIT_IO);
    clew__http_response_deinit(&r);
    clew__http_client_destroy(c);
    close(fd);
}

/* The parser on the search command's real table. */
static void test_option_parser(void **state)
{
    (void)state;
    char *argv[] = {"search", "-sfront", "--operation=GET /", "pos", "-n", "5",
                    "--json", "--",      "--not-an-option"};
    int argc = (int)(sizeof(argv) / sizeof(argv[0]));
    clew_cli_parser p;
    clew__cli_parser_init(&p, &clew__search_spec, argc, argv);
    const clew_cli_opt *o;
    const char *v;
    assert_int_equal(clew__cli_next(&p, &o, &v), CLEW_CLI_OPTION);
    assert_int_equal(o->id, OPT_SERVICE);
    assert_string_equal(v, "front");
    assert_int_equal(clew__cli_next(&p, &o, &v), CLEW_CLI_OPTION);
    assert_int_equal(o->id, OPT_OPERATION);
    assert_string_equal(v, "GET /");
    assert_int_equal(clew__cli_next(&p, &o, &v), CLEW_CLI_POSITIONAL);
    assert_string_equal(v, "pos");
    assert_int_equal(clew__cli_next(&p, &o, &v), CLEW_CLI_OPTION);
    assert_int_equal(o->id, OPT_LIMIT);
    assert_string_equal(v, "5");
    assert_int_equal(clew__cli_next(&p, &o, &v), CLEW_CLI_OPTION);
    assert_int_equal(o->id, OPT_JSON);
    assert_null(v);
    assert_int_equal(clew__cli_next(&p, &o, &v), CLEW_CLI_POSITIONAL);
    assert_string_equal(v, "--not-an-option");
    assert_int_equal(clew__cli_next(&p, &o, &v), CLEW_CLI_DONE);

    char *bad1[] = {"search", "--json=yes"};
    clew__cli_parser_init(&p, &clew__search_spec, 2, bad1);
    assert_int_equal(clew__cli_next(&p, &o, &v), CLEW_CLI_ERROR);
    char *bad2[] = {"search", "--limit"};
    clew__cli_parser_init(&p, &clew__search_spec, 2, bad2);
    assert_int_equal(clew__cli_next(&p, &o, &v), CLEW_CLI_ERROR);
    char *bad3[] = {"search", "-x"};
    clew__cli_parser_init(&p, &clew__search_spec, 2, bad3);
    assert_int_equal(clew__cli_next(&p, &o, &v), CLEW_CLI_ERROR);
    char *help[] = {"search", "-h"};
    clew__cli_parser_init(&p, &clew__search_spec, 2, help);
    assert_int_equal(clew__cli_next(&p, &o, &v), CLEW_CLI_OPTION);
    assert_int_equal(o->id, CLEW_CLI_OPT_HELP);

    long n;
    assert_true(clew__cli_parse_long("42", 1, 100, &n) && n == 42);
    assert_false(clew__cli_parse_long("42x", 1, 100, &n));
    assert_false(clew__cli_parse_long("", 1, 100, &n));
    assert_false(clew__cli_parse_long("101", 1, 100, &n));
    assert_false(clew__cli_parse_long("99999999999999999999999", 1, 100, &n));
}

static void test_help_lists_every_option(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    clew__cli_print_help(&clew__search_spec, f);
    fclose(f);
    for (size_t i = 0; i < clew__search_spec.n_opts; i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", clew__search_spec.opts[i].long_name);
        if (strstr(text, flag) == NULL) {
            fail_msg("help lacks %s", flag);
        }
    }
    assert_non_null(strstr(text, "Usage: clew search [options]"));
    assert_non_null(strstr(text, "-h, --help"));
    free(text); /* from open_memstream */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summarise_search_results),
        cmocka_unit_test(test_tags_json),
        cmocka_unit_test(test_url_building),
        cmocka_unit_test(test_base_url_precedence),
        cmocka_unit_test(test_unreachable_server),
        cmocka_unit_test(test_option_parser),
        cmocka_unit_test(test_help_lists_every_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
