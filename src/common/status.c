/*
 * src/common/status.c - clew_strerror and clew_status_name from CLEW_STATUS_MAP.
 */
#include "clew/status.h"
#include "clew/version.h"

const char *clew_strerror(int status)
{
    switch (status) {
#define CLEW__STATUS_MSG(name, value, msg)                                                         \
    case value:                                                                                    \
        return msg;
        CLEW_STATUS_MAP(CLEW__STATUS_MSG)
#undef CLEW__STATUS_MSG
    default:
        return "unknown error";
    }
}

const char *clew_status_name(int status)
{
    switch (status) {
#define CLEW__STATUS_NAME(name, value, msg)                                                        \
    case value:                                                                                    \
        return #name;
        CLEW_STATUS_MAP(CLEW__STATUS_NAME)
#undef CLEW__STATUS_NAME
    default:
        return "CLEW_UNKNOWN";
    }
}

unsigned clew_version(void)
{
    return CLEW_VERSION_NUM;
}

const char *clew_version_string(void)
{
    return CLEW_VERSION_STRING;
}
