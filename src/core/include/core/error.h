/* Internal: setting the thread-local error text.
 *
 *   return ss_fail(SS_EFORMAT, "%s: tensor '%s': data_offsets end %llu past buffer of %zu bytes", ...);
 *
 * The message is one line (newlines are replaced by spaces), truncated to
 * SS_ERROR_MAX bytes. It should name the file/tensor, the expectation and what
 * was found.
 */
#ifndef SS_CORE_ERROR_H
#define SS_CORE_ERROR_H

#include "slidesparse/core.h"

#define SS_ERROR_MAX 1024

#if defined(__GNUC__)
#define SS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SS_PRINTF(a, b)
#endif

/* Sets this thread's error text and returns s. */
ss_status ss_fail(ss_status s, const char *fmt, ...) SS_PRINTF(2, 3);

/* ss_fail with ": <strerror(errno)>" appended; maps ENOSPC to SS_ENOSPC,
 * ENOMEM to SS_ENOMEM, everything else to SS_EIO. */
ss_status ss_fail_errno(int err, const char *fmt, ...) SS_PRINTF(2, 3);

/* Propagate a failing status. */
#define SS_TRY(expr)                      \
    do {                                  \
        ss_status ss_try_s_ = (expr);     \
        if (ss_try_s_ != SS_OK)           \
            return ss_try_s_;             \
    } while (0)

#endif
