/*
 * examples/install-check/main.c - a program built only against an installed libclew
 * (pkg-config or find_package(clew)), to prove the installed headers and libraries are
 * complete: it checks the header and library versions agree, and parses and re-formats a
 * W3C traceparent.
 */
#include <stdio.h>
#include <string.h>

#include <clew/clew.h>

int main(void)
{
    if (clew_version() != CLEW_VERSION_NUM) {
        fprintf(stderr, "header %s but library %s\n", CLEW_VERSION_STRING, clew_version_string());
        return 1;
    }
    const char *in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    clew_span_context sc;
    clew_span_context_init(&sc);
    if (clew_traceparent_parse(in, strlen(in), &sc) != CLEW_OK ||
        !clew_span_context_is_valid(&sc)) {
        fprintf(stderr, "traceparent did not parse\n");
        return 1;
    }
    char out[CLEW_TRACEPARENT_SIZE];
    if (clew_traceparent_format(&sc, out) != CLEW_OK || strcmp(out, in) != 0) {
        fprintf(stderr, "traceparent did not round-trip\n");
        return 1;
    }
    printf("libclew %s ok: %s\n", clew_version_string(), out);
    return 0;
}
