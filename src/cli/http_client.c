/*
 * src/cli/http_client.c - libcurl GET wrapper for the CLI; see http_client.h.
 */
#include "cli/http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/commands.h"
#include "common/alloc.h"

struct clew_http_client {
    CURL *curl;
    char *base; /* normalised: scheme://host[:port][/prefix], no trailing '/' */
};

const char *clew__http_base_url(const char *flag)
{
    if (flag != NULL) {
        return flag;
    }
    const char *env = getenv("CLEW_SERVER");
    if (env != NULL && env[0] != '\0') {
        return env;
    }
    return CLEW_HTTP_DEFAULT_SERVER;
}

static clew_status normalise_base(const char *in, char **out)
{
    clew_buf b;
    clew__buf_init(&b, 8192);
    const char *sep = strstr(in, "://");
    clew_status rc = CLEW_OK;
    if (sep == NULL) {
        rc = clew__buf_puts(&b, "http://");
        sep = in;
    } else {
        size_t slen = (size_t)(sep - in);
        if (!((slen == 4 && strncasecmp(in, "http", 4) == 0) ||
              (slen == 5 && strncasecmp(in, "https", 5) == 0))) {
            clew__buf_deinit(&b);
            return CLEW_EINVAL;
        }
        sep += 3;
    }
    if (*sep == '\0' || *sep == '/') {
        clew__buf_deinit(&b);
        return CLEW_EINVAL;
    }
    for (const char *p = in; *p; p++) {
        /* Whitespace and control bytes have no place in a URL; refusing them
         * here gives a clear message instead of a confusing curl error. */
        if ((unsigned char)*p <= 0x20 || *p == 0x7F) {
            clew__buf_deinit(&b);
            return CLEW_EINVAL;
        }
    }
    rc = rc ? rc : clew__buf_puts(&b, in);
    while (rc == CLEW_OK && b.len > 0 && b.data[b.len - 1] == '/') {
        b.data[--b.len] = '\0';
    }
    if (rc != CLEW_OK) {
        clew__buf_deinit(&b);
        return rc == CLEW_ETOOBIG ? CLEW_EINVAL : rc;
    }
    *out = clew__buf_take(&b, NULL);
    return CLEW_OK;
}

clew_status clew__http_client_create(const char *base_url, clew_http_client **out)
{
    char *base = NULL;
    clew_status rc = normalise_base(base_url, &base);
    if (rc != CLEW_OK) {
        return rc;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        clew__free(base);
        return CLEW_EIO;
    }
    clew_http_client *c = clew__calloc(1, sizeof(*c));
    if (c == NULL) {
        clew__free(base);
        curl_global_cleanup();
        return CLEW_ENOMEM;
    }
    c->base = base;
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        clew__http_client_destroy(c);
        return CLEW_EIO;
    }
    *out = c;
    return CLEW_OK;
}

void clew__http_client_destroy(clew_http_client *c)
{
    if (c == NULL) {
        return;
    }
    if (c->curl != NULL) {
        curl_easy_cleanup(c->curl);
    }
    clew__free(c->base);
    clew__free(c);
    curl_global_cleanup();
}

const char *clew__http_client_base(const clew_http_client *c)
{
    return c->base;
}

clew_status clew__http_escape(clew_http_client *c, clew_buf *out, const char *s)
{
    size_t len = strlen(s);
    if (len > (size_t)0x7fffffff) {
        return CLEW_ETOOBIG;
    }
    char *e = curl_easy_escape(c->curl, s, (int)len);
    if (e == NULL) {
        return CLEW_ENOMEM;
    }
    clew_status rc = clew__buf_puts(out, e);
    curl_free(e);
    return rc;
}

clew_status clew__http_add_param(clew_http_client *c, clew_buf *out, const char *key,
                                 const char *value)
{
    bool first = out->data == NULL || strchr(out->data, '?') == NULL;
    clew_status rc = clew__buf_putc(out, first ? '?' : '&');
    rc = rc ? rc : clew__http_escape(c, out, key);
    rc = rc ? rc : clew__buf_putc(out, '=');
    return rc ? rc : clew__http_escape(c, out, value);
}

void clew__http_response_init(clew_http_response *r)
{
    r->status = 0;
    clew__buf_init(&r->body, CLEW_HTTP_MAX_BODY);
    r->error[0] = '\0';
    r->too_big = false;
}

void clew__http_response_deinit(clew_http_response *r)
{
    clew__buf_deinit(&r->body);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    clew_http_response *r = ud;
    size_t n = size * nmemb;
    clew_status rc = clew__buf_append(&r->body, ptr, n);
    if (rc != CLEW_OK) {
        r->too_big = rc == CLEW_ETOOBIG;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    return n;
}

clew_status clew__http_get(clew_http_client *c, const char *path_and_query,
                           clew_http_response *resp)
{
    clew_buf url;
    clew__buf_init(&url, 1 << 20);
    clew_status rc = clew__buf_puts(&url, c->base);
    rc = rc ? rc : clew__buf_puts(&url, path_and_query);
    if (rc != CLEW_OK) {
        clew__buf_deinit(&url);
        snprintf(resp->error, sizeof(resp->error), "the request URL is too long");
        return rc;
    }
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    CURL *h = c->curl;
    curl_easy_reset(h);
    CURLcode cc = CURLE_OK;
    /* Each setopt result is checked through the first failure only: a failure
     * here means an option libcurl does not know, which the next call reports. */
    cc = curl_easy_setopt(h, CURLOPT_URL, url.data);
    if (cc == CURLE_OK) {
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CLEW_HTTP_CONNECT_MS);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, CLEW_HTTP_TOTAL_MS);
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CLEW_HTTP_MAX_BODY);
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(h, CURLOPT_USERAGENT, "clew-cli");
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        cc = curl_easy_perform(h);
    }
    clew__buf_deinit(&url);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        return CLEW_OK;
    }
    long os_errno = 0;
    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    if (resp->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        resp->too_big = true;
        snprintf(resp->error, sizeof(resp->error), "the answer is larger than %zu MiB",
                 CLEW_HTTP_MAX_BODY >> 20);
        return CLEW_ETOOBIG;
    }
    if (cc == CURLE_WRITE_ERROR) {
        snprintf(resp->error, sizeof(resp->error), "out of memory");
        return CLEW_ENOMEM;
    }
    if (cc == CURLE_COULDNT_CONNECT && os_errno != 0) {
        snprintf(resp->error, sizeof(resp->error), "%s", strerror((int)os_errno));
    } else if (errbuf[0] != '\0') {
        snprintf(resp->error, sizeof(resp->error), "%s", errbuf);
    } else {
        snprintf(resp->error, sizeof(resp->error), "%s", curl_easy_strerror(cc));
    }
    return cc == CURLE_OPERATION_TIMEDOUT ? CLEW_ETIMEDOUT : CLEW_ENET;
}

int clew__http_report_failure(const clew_http_client *c, clew_status rc,
                              const clew_http_response *resp)
{
    if (rc == CLEW_ETOOBIG) {
        fprintf(stderr, "clew: the answer from %s is larger than %zu MiB; narrow the query\n",
                c->base, CLEW_HTTP_MAX_BODY >> 20);
    } else if (rc == CLEW_ETIMEDOUT) {
        fprintf(stderr,
                "clew: the clew server at %s did not answer in time (%s); is it overloaded?\n",
                c->base, resp->error);
    } else if (rc == CLEW_ENET) {
        fprintf(stderr,
                "clew: cannot reach the clew server at %s (%s); start it with 'clew serve' or "
                "set --server\n",
                c->base, resp->error);
    } else {
        fprintf(stderr, "clew: request to %s failed: %s\n", c->base,
                resp->error[0] ? resp->error : clew_strerror(rc));
    }
    return CLEW_EXIT_IO;
}

int clew__http_report_status(const clew_http_client *c, const clew_http_response *resp)
{
    char msg[256] = "";
    json_t *j = resp->body.len ? json_loadb(resp->body.data, resp->body.len, 0, NULL) : NULL;
    if (j != NULL) {
        /* v3 {"error":{"message"}}, v1 {"errors":[{"msg"}]} */
        const json_t *m = json_object_get(json_object_get(j, "error"), "message");
        if (!json_is_string(m)) {
            m = json_object_get(json_array_get(json_object_get(j, "errors"), 0), "msg");
        }
        if (json_is_string(m)) {
            snprintf(msg, sizeof(msg), ": %s", json_string_value(m));
        }
        json_decref(j);
    }
    for (char *p = msg; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7F) {
            *p = '?'; /* keep server-supplied text from driving the terminal */
        }
    }
    fprintf(stderr, "clew: the server at %s answered HTTP %ld%s\n", c->base, resp->status, msg);
    /* 400 means the server found the request's input wrong, which is the user's
     * to fix, not a server or network problem. */
    return resp->status == 400 ? CLEW_EXIT_BADINPUT : CLEW_EXIT_IO;
}

int clew__http_open(const char *server, clew_http_client **out)
{
    const char *base = clew__http_base_url(server);
    clew_status st = clew__http_client_create(base, out);
    if (st == CLEW_EINVAL) {
        fprintf(stderr, "clew: '%s' is not a usable server URL (expected http://HOST:PORT).\n",
                base);
        return CLEW_EXIT_BADINPUT;
    }
    if (st != CLEW_OK) {
        fprintf(stderr, "clew: cannot set up the HTTP client: %s.\n", clew_strerror(st));
        return CLEW_EXIT_IO;
    }
    return CLEW_EXIT_OK;
}

int clew__cli_print_json(const json_t *j)
{
    if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
        fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
        fprintf(stderr, "clew: cannot write to standard output.\n");
        return CLEW_EXIT_IO;
    }
    return CLEW_EXIT_OK;
}
