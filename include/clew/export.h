/*
 * clew/export.h - symbol visibility and attribute macros shared by the public headers.
 *
 * libclew is built with -fvisibility=hidden; only declarations marked CLEW_EXPORT
 * are part of the ABI.
 */
#ifndef CLEW_EXPORT_H
#define CLEW_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define CLEW_EXPORT               __attribute__((visibility("default")))
#define CLEW_NODISCARD            __attribute__((warn_unused_result))
#define CLEW_DEPRECATED(ver, msg) __attribute__((deprecated("since " ver ": " msg)))
#else
#define CLEW_EXPORT
#define CLEW_NODISCARD
#define CLEW_DEPRECATED(ver, msg)
#endif

#endif /* CLEW_EXPORT_H */
