/*
 * src/common/try.h - CLEW_TRY: propagate a failing clew_status to the caller.
 *
 * Most internal functions return clew_status and stop at the first failure; this
 * one macro keeps that early return uniform instead of a copy per file. It owns
 * nothing and has no state, so it is safe anywhere.
 */
#ifndef CLEW_COMMON_TRY_H
#define CLEW_COMMON_TRY_H

#include "clew/status.h"

/* Evaluates expr (a clew_status) once and returns it from the enclosing function
 * unless it is CLEW_OK. */
#define CLEW_TRY(expr)                                                                             \
    do {                                                                                           \
        clew_status clew_try_rc_ = (expr);                                                         \
        if (clew_try_rc_ != CLEW_OK) {                                                             \
            return clew_try_rc_;                                                                   \
        }                                                                                          \
    } while (0)

#endif /* CLEW_COMMON_TRY_H */
