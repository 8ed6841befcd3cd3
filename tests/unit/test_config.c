/*
 * tests/unit/test_config.c - `clew serve` configuration: defaults, YAML, flags,
 * errors with their line numbers, sizes and listeners.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/config.h"

#define MIB (1024ull * 1024)

static clew_status load(clew_server_config *c, const char *yaml, clew_config_error *err)
{
    memset(err, 0, sizeof(*err));
    return clew__config_load_buffer(c, "test.yaml", yaml, strlen(yaml), err);
}

/* Asserts that loading `yaml` fails and that the message contains `want`. */
static void expect_error(const char *yaml, const char *want)
{
    clew_server_config c;
    clew__config_defaults(&c);
    clew_server_config before = c;
    clew_config_error err;
    clew_status rc = load(&c, yaml, &err);
    if (rc == CLEW_OK || strstr(err.msg, want) == NULL) {
        print_error("yaml: %s\nwant error containing: %s\ngot rc=%d msg: %s\n", yaml, want, rc,
                    err.msg);
        fail();
    }
    /* a failed load changes nothing */
    assert_memory_equal(&c, &before, sizeof(c));
}

static void test_defaults(void **state)
{
    (void)state;
    clew_server_config c;
    clew__config_defaults(&c);
    assert_string_equal(c.otlp_http.host, "127.0.0.1");
    assert_int_equal(c.otlp_http.port, 4318);
    assert_false(c.otlp_http.off);
    assert_string_equal(c.http.host, "127.0.0.1");
    assert_int_equal(c.http.port, 16686);
    assert_string_equal(c.data_dir, "./clew-data");
    assert_int_equal(c.storage, CLEW_STORAGE_EMBEDDED);
    assert_int_equal(c.max_memory, 512 * MIB);
    assert_int_equal(c.max_request_body, 64 * MIB);
    assert_int_equal(c.max_traces, 100000);
    assert_int_equal(c.log_level, CLEW_LOG_INFO);
    clew_config_error err;
    assert_int_equal(clew__config_validate(&c, &err), CLEW_OK);

    clew_budgets b;
    clew__config_budgets(&c, &b);
    assert_int_equal(b.ingest + b.store + b.query, c.max_memory);
    assert_true(b.ingest >= c.max_request_body);
    assert_true(b.store > b.ingest);
    assert_true(clew__config_workers(&c) >= 1);
}

static void test_yaml_values(void **state)
{
    (void)state;
    clew_server_config c;
    clew__config_defaults(&c);
    clew_config_error err;
    const char *yaml = "# a comment\n"
                       "otlp_http: \"0.0.0.0:14318\"\n"
                       "http: '[::1]:16000'\n"
                       "data_dir: /var/lib/clew\n"
                       "storage: memory\n"
                       "max_memory: 1GiB\n"
                       "max_traces: 5000\n"
                       "max_request_body: 4MiB\n"
                       "workers: 3\n"
                       "timeout: 5s\n"
                       "log_level: debug\n";
    assert_int_equal(load(&c, yaml, &err), CLEW_OK);
    assert_string_equal(c.otlp_http.host, "0.0.0.0");
    assert_int_equal(c.otlp_http.port, 14318);
    assert_string_equal(c.http.host, "::1");
    assert_int_equal(c.http.port, 16000);
    assert_string_equal(c.data_dir, "/var/lib/clew");
    assert_int_equal(c.max_memory, 1024 * MIB);
    assert_int_equal(c.max_traces, 5000);
    assert_int_equal(c.max_request_body, 4 * MIB);
    assert_int_equal(c.workers, 3);
    assert_int_equal(clew__config_workers(&c), 3);
    assert_int_equal(c.timeout_ns, 5000000000ull);
    assert_int_equal(c.log_level, CLEW_LOG_DEBUG);
    /* keys not named keep their values */
    assert_int_equal(c.shutdown_timeout_ns, 10000000000ull);
}

static void test_yaml_empty_and_off(void **state)
{
    (void)state;
    clew_server_config c, d;
    clew__config_defaults(&c);
    clew__config_defaults(&d);
    clew_config_error err;
    assert_int_equal(load(&c, "", &err), CLEW_OK);
    assert_int_equal(load(&c, "# only a comment\n", &err), CLEW_OK);
    assert_int_equal(load(&c, "---\n", &err), CLEW_OK);
    assert_memory_equal(&c, &d, sizeof(c));
    /* `off` stays a string: YAML 1.1 would make it a boolean */
    assert_int_equal(load(&c, "http: off\n", &err), CLEW_OK);
    assert_true(c.http.off);
    assert_false(c.otlp_http.off);
}

static void test_yaml_errors(void **state)
{
    (void)state;
    expect_error("workers: 2\nmax_memory: 12 potatoes\n",
                 "test.yaml:2: max_memory: '12 potatoes' is not a size (use e.g. 512MiB)");
    expect_error("\n\nbogus_key: 1\n", "test.yaml:3: unknown setting 'bogus_key'");
    expect_error("workers: 2\nworkers: 3\n", "test.yaml:2: 'workers' is set twice");
    expect_error("otlp_http: 4318\n", "test.yaml:1: otlp_http: '4318' is not a listen address");
    expect_error("http: \"::1:80\"\n", "test.yaml:1: http: '::1:80' is not a listen address");
    expect_error("http: \"h:99999\"\n", "is not a listen address");
    expect_error("storage: disk\n", "test.yaml:1: storage: 'disk' is not one of memory|embedded");
    expect_error("log_level: loud\n", "test.yaml:1: log_level: 'loud' is not one of");
    expect_error("workers: two\n", "test.yaml:1: workers: 'two' is not a whole number");
    expect_error("workers: 4KiB\n", "is not a whole number");
    expect_error("workers: 5000\n", "test.yaml:1: workers: '5000' is out of range (0 to 1024)");
    expect_error("max_memory: 1MiB\n", "max_memory: '1MiB' is out of range");
    expect_error("timeout: 30\n", "test.yaml:1: timeout: '30' is not a duration (use e.g. 30s)");
    expect_error("max_traces:\n", "test.yaml:1: max_traces: needs a value");
    expect_error("max_traces: [1, 2]\n", "test.yaml:1: max_traces: takes a single value");
    expect_error("a: &x 1\nmax_traces: *x\n", "test.yaml:1: unknown setting 'a'");
    expect_error("max_traces: 1\nworkers: *x\n", "test.yaml:2:");
    expect_error("- 1\n- 2\n", "test.yaml:1: the file must be a mapping");
    expect_error("just text\n", "the file must be a mapping");
    expect_error("workers: 1\n---\nworkers: 2\n", "test.yaml:2: only one YAML document");
    expect_error("section:\n  key: 1\n", "test.yaml:1: unknown setting 'section'");
    expect_error("workers: 1\nmax_traces: [1\n", "test.yaml:2: max_traces: takes a single value");
    expect_error("workers: 1\nmax_traces: 'abc\n", "test.yaml:3: not valid YAML");
    expect_error("{a: {b: {c: {d: {e: 1}}}}}\n", "unknown setting 'a'");
    expect_error("? [1, 2]\n: 3\n", "test.yaml:1: a key must be a plain name");
}

static void test_sizes(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(clew__parse_size("512MiB", &v), CLEW_OK);
    assert_int_equal(v, 512 * MIB);
    assert_int_equal(clew__parse_size("1GiB", &v), CLEW_OK);
    assert_int_equal(v, 1024 * MIB);
    assert_int_equal(clew__parse_size("1024", &v), CLEW_OK);
    assert_int_equal(v, 1024);
    assert_int_equal(clew__parse_size("1KiB", &v), CLEW_OK);
    assert_int_equal(v, 1024);
    assert_int_equal(clew__parse_size("1kb", &v), CLEW_OK);
    assert_int_equal(v, 1000);
    assert_int_equal(clew__parse_size("64 M", &v), CLEW_OK);
    assert_int_equal(v, 64 * MIB);
    assert_int_equal(clew__parse_size("0", &v), CLEW_OK);
    assert_int_equal(v, 0);
    const char *bad[] = {"",
                         "MiB",
                         "-1",
                         "1.5GiB",
                         "12 potatoes",
                         "1 MiB x",
                         "1XiB",
                         "99999999999999999999",
                         "17179869184GiB",
                         "1e6"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (clew__parse_size(bad[i], &v) == CLEW_OK) {
            print_error("'%s' was accepted as a size\n", bad[i]);
            fail();
        }
    }
    char out[40];
    clew__format_size(512 * MIB, out, sizeof(out));
    assert_string_equal(out, "512MiB");
    clew__format_size(1000, out, sizeof(out));
    assert_string_equal(out, "1000");
    clew__format_size(3 * 1024, out, sizeof(out));
    assert_string_equal(out, "3KiB");
}

static void test_listen(void **state)
{
    (void)state;
    clew_listen_addr a;
    assert_int_equal(clew__parse_listen("127.0.0.1:4318", &a), CLEW_OK);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 4318);
    assert_false(a.off);
    assert_int_equal(clew__parse_listen("[::1]:0", &a), CLEW_OK);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 0);
    assert_int_equal(clew__parse_listen("localhost:65535", &a), CLEW_OK);
    assert_int_equal(a.port, 65535);
    assert_int_equal(clew__parse_listen("off", &a), CLEW_OK);
    assert_true(a.off);
    const char *bad[] = {"",         "4318",      ":4318", "host:",       "host:65536",
                         "::1:4318", "[::1]4318", "[]:1",  "[1.2.3.4]:5", "a b:1",
                         "h:12a",    "h:-1",      "OFF x", "[::1]:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (clew__parse_listen(bad[i], &a) == CLEW_OK) {
            print_error("'%s' was accepted as a listen address\n", bad[i]);
            fail();
        }
    }
    char out[300];
    assert_int_equal(clew__parse_listen("[::1]:80", &a), CLEW_OK);
    clew__format_listen(&a, out, sizeof(out));
    assert_string_equal(out, "[::1]:80");
    assert_int_equal(clew__parse_listen("off", &a), CLEW_OK);
    clew__format_listen(&a, out, sizeof(out));
    assert_string_equal(out, "off");
}

/* Writes `text` to a temporary file and returns its path (static storage). */
static const char *write_temp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/clew-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_flags_override_file(void **state)
{
    (void)state;
    const char *path = write_temp("max_traces: 7\nworkers: 2\nhttp: \"127.0.0.1:1\"\n");
    char p[64];
    snprintf(p, sizeof(p), "%s", path);
    /* the flag comes before --config on the command line and still wins */
    char *argv[] = {"serve", "--max-traces", "9", "--config", p, "--http=off", NULL};
    clew_server_config c;
    clew_serve_args args;
    clew_config_error err;
    assert_int_equal(clew__config_from_args(&c, 6, argv, &args, &err), CLEW_OK);
    assert_int_equal(c.max_traces, 9);
    assert_int_equal(c.workers, 2);
    assert_true(c.http.off);
    assert_string_equal(args.config_path, p);
    assert_false(args.help);
    unlink(p);
}

static void test_flag_errors(void **state)
{
    (void)state;
    clew_server_config c;
    clew_serve_args args;
    clew_config_error err;

    char *a1[] = {"serve", "--max-memory", "12 potatoes", NULL};
    assert_int_equal(clew__config_from_args(&c, 3, a1, &args, &err), CLEW_EPARSE);
    assert_string_equal(err.msg, "--max-memory: '12 potatoes' is not a size (use e.g. 512MiB)");

    char *a2[] = {"serve", "--no-such-flag", "1", NULL};
    assert_int_equal(clew__config_from_args(&c, 3, a2, &args, &err), CLEW_EINVAL);
    assert_non_null(strstr(err.msg, "unknown option '--no-such-flag'"));

    char *a3[] = {"serve", "--workers", NULL};
    assert_int_equal(clew__config_from_args(&c, 2, a3, &args, &err), CLEW_EINVAL);
    assert_non_null(strstr(err.msg, "--workers needs a value"));

    char *a4[] = {"serve", "positional", NULL};
    assert_int_equal(clew__config_from_args(&c, 2, a4, &args, &err), CLEW_EINVAL);

    char *a5[] = {"serve", "--config", "/nonexistent/clew.yaml", NULL};
    assert_int_equal(clew__config_from_args(&c, 3, a5, &args, &err), CLEW_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/clew.yaml: cannot open"));

    /* a request limit larger than the ingest budget is refused */
    char *a6[] = {"serve", "--max-memory", "64MiB", "--max-request-body", "64MiB", NULL};
    assert_int_equal(clew__config_from_args(&c, 5, a6, &args, &err), CLEW_EPARSE);
    assert_non_null(strstr(err.msg, "does not fit the ingest budget"));

    /* the same port for both listeners */
    char *a7[] = {"serve", "--http", "127.0.0.1:4318", NULL};
    assert_int_equal(clew__config_from_args(&c, 3, a7, &args, &err), CLEW_EPARSE);

    char *a8[] = {"serve", "--storage", "embedded", "--help", NULL};
    assert_int_equal(clew__config_from_args(&c, 4, a8, &args, &err), CLEW_OK);
    assert_true(args.help);

    /* a bad file through --config keeps its file:line */
    const char *path = write_temp("workers: 1\n\nmax_memory: lots\n");
    char p[64];
    snprintf(p, sizeof(p), "%s", path);
    char *a9[] = {"serve", "--config", p, NULL};
    assert_int_equal(clew__config_from_args(&c, 3, a9, &args, &err), CLEW_EPARSE);
    char want[128];
    snprintf(want, sizeof(want), "%s:3: max_memory: 'lots' is not a size", p);
    assert_non_null(strstr(err.msg, want));
    unlink(p);
}

/* --help is generated from the option table: every setting shows up with its flag. */
static void test_help_and_print(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    clew__config_print_help(f);
    fclose(f);
    const char *flags[] = {"--otlp-http",  "--http ",      "--data-dir",         "--storage",
                           "--max-memory", "--max-traces", "--max-request-body", "--workers",
                           "--log-level",  "--config",     "--print-config",     "default: 512MiB",
                           "lossy"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (strstr(buf, flags[i]) == NULL) {
            print_error("--help lacks '%s'\n", flags[i]);
            fail();
        }
    }
    free(buf);

    /* --print-config output loads back into the same configuration */
    clew_server_config c, d;
    clew__config_defaults(&c);
    clew_config_error err;
    assert_int_equal(load(&c, "max_memory: 2GiB\nhttp: off\nworkers: 5\n", &err), CLEW_OK);
    buf = NULL;
    f = open_memstream(&buf, &len);
    clew__config_print(&c, f);
    fclose(f);
    assert_non_null(strstr(buf, "ingest:  512MiB"));
    assert_non_null(strstr(buf, "sampler: 0 "));
    clew__config_defaults(&d);
    assert_int_equal(clew__config_load_buffer(&d, "printed", buf, len, &err), CLEW_OK);
    assert_memory_equal(&c, &d, sizeof(c));
    free(buf);
}

/* The tail_sampling section belongs to the sampler's parser: the server's loader notes
 * where it is and skips it whole; --sampling takes a preset; the two together are refused. */
static void test_sampling_settings(void **state)
{
    (void)state;
    clew_server_config c;
    clew__config_defaults(&c);
    assert_string_equal(c.sampling, "off");
    assert_false(clew__config_sampling_on(&c));
    clew_config_error err;
    const char *yaml = "max_memory: 1GiB\n"
                       "tail_sampling:\n"
                       "  decision_wait: 5s\n"
                       "  policies:\n"
                       "    - {name: e, type: status_code, status_code: {status_codes: [ERROR]}}\n"
                       "    - name: d\n"
                       "      type: drop\n"
                       "      drop: {drop_sub_policy: [{name: x, type: always_sample}]}\n"
                       "workers: 3\n";
    assert_int_equal(load(&c, yaml, &err), CLEW_OK);
    assert_int_equal(c.tail_sampling_line, 2);
    assert_int_equal(c.workers, 3); /* keys after the section are still read */
    assert_true(clew__config_sampling_on(&c));
    clew_budgets b;
    clew__config_budgets(&c, &b);
    assert_int_equal(b.sampler, (1024u << 20) / 16);
    assert_int_equal(b.ingest + b.query + b.store + b.sampler, 1024u << 20);
    assert_int_equal(clew__config_validate(&c, &err), CLEW_OK);
    /* a preset as well: refused, naming both */
    assert_int_equal(clew__config_set(&c, "sampling", "errors+10%", "--sampling", &err), CLEW_OK);
    assert_int_equal(clew__config_validate(&c, &err), CLEW_EINVAL);
    assert_non_null(strstr(err.msg, "tail_sampling section (line 2)"));

    clew__config_defaults(&c);
    assert_int_equal(clew__config_set(&c, "sampling", "errors+slow:500ms+10%", "--sampling", &err),
                     CLEW_OK);
    assert_string_equal(c.sampling, "errors+slow:500ms+10%");
    assert_true(clew__config_sampling_on(&c));
    assert_int_equal(clew__config_set(&c, "sampling", "errors+sometimes", "--sampling", &err),
                     CLEW_EPARSE);
    assert_non_null(strstr(err.msg, "--sampling: "));
    assert_string_equal(c.sampling, "errors+slow:500ms+10%"); /* unchanged */
    expect_error("tail_sampling: {}\ntail_sampling: {}\n", "set twice");
    expect_error("tail_sampling:\n", "test.yaml:1: tail_sampling: must be a mapping");
    expect_error("tail_sampling: [a]\n", "must be a mapping");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_yaml_values),
        cmocka_unit_test(test_yaml_empty_and_off),
        cmocka_unit_test(test_yaml_errors),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_flags_override_file),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_help_and_print),
        cmocka_unit_test(test_sampling_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
