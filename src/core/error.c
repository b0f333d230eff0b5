/* Status names and the thread-local error text: the only mutable global state
 * in the library. */
#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char ss_error_text[SS_ERROR_MAX];

const char *ss_status_name(ss_status s) {
    static const char *const names[SS_STATUS_COUNT] = {
        [SS_OK] = "SS_OK",
        [SS_EINVAL] = "SS_EINVAL",
        [SS_EIO] = "SS_EIO",
        [SS_EFORMAT] = "SS_EFORMAT",
        [SS_ENOMEM] = "SS_ENOMEM",
        [SS_EUNSUPPORTED] = "SS_EUNSUPPORTED",
        [SS_ECUDA] = "SS_ECUDA",
        [SS_ENOSPC] = "SS_ENOSPC",
        [SS_EEXIST] = "SS_EEXIST",
    };
    return (unsigned)s < SS_STATUS_COUNT ? names[s] : "SS_UNKNOWN";
}

const char *ss_last_error(void) { return ss_error_text; }

void ss_clear_error(void) { ss_error_text[0] = '\0'; }

/* Keeps the message on one line: a multi-line error breaks log parsing. */
static void flatten(char *s) {
    for (; *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
}

static ss_status vfail(ss_status s, const char *suffix, const char *fmt, va_list ap) {
    int n = vsnprintf(ss_error_text, sizeof ss_error_text, fmt, ap);
    if (suffix && n >= 0 && (size_t)n < sizeof ss_error_text)
        snprintf(ss_error_text + n, sizeof ss_error_text - (size_t)n, ": %s", suffix);
    flatten(ss_error_text);
    return s;
}

ss_status ss_fail(ss_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(s, NULL, fmt, ap);
    va_end(ap);
    return s;
}

ss_status ss_fail_errno(int err, const char *fmt, ...) {
    ss_status s = err == ENOSPC ? SS_ENOSPC : err == ENOMEM ? SS_ENOMEM : SS_EIO;
    va_list ap;
    va_start(ap, fmt);
    vfail(s, strerror(err), fmt, ap);
    va_end(ap);
    return s;
}
