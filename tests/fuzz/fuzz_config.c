/*
 * tests/fuzz/fuzz_config.c - feeds bytes to the `clew serve` YAML config loader
 * (clew__config_load_buffer), then checks the loader's promises: on success the
 * result validates or is refused with a message and prints; on failure the
 * configuration is untouched and the message is a non-empty string.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clew_server_config c, before;
    clew__config_defaults(&c);
    before = c;
    clew_config_error err;
    memset(&err, 0, sizeof(err));
    clew_status rc = clew__config_load_buffer(&c, "fuzz.yaml", (const char *)data, size, &err);
    if (rc != CLEW_OK) {
        if (memcmp(&c, &before, sizeof(c)) != 0 || err.msg[0] == '\0' ||
            memchr(err.msg, '\0', sizeof(err.msg)) == NULL) {
            abort();
        }
        return 0;
    }
    /* a loaded configuration is printable, and what is printed loads back the same */
    clew_config_error verr;
    memset(&verr, 0, sizeof(verr));
    if (clew__config_validate(&c, &verr) != CLEW_OK && verr.msg[0] == '\0') {
        abort();
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL) {
        return 0;
    }
    clew__config_print(&c, f);
    fclose(f);
    clew_server_config again;
    clew__config_defaults(&again);
    rc = clew__config_load_buffer(&again, "printed", buf, len, &err);
    if (rc != CLEW_OK || memcmp(&c, &again, sizeof(c)) != 0) {
        abort();
    }
    free(buf);
    return 0;
}
