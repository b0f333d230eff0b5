/* CSV text built in memory and written atomically (temp + fsync + rename), so
 * a reader never sees half a table. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "slidesparse/bench.h"
#include "tune/fixture.h"

void ss_csv_line(ss_csv *c, const char *fmt, ...) {
    if (!c || c->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (w < 0) {
        c->failed = 1;
        return;
    }
    size_t need = c->len + (size_t)w + 2;
    if (need > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < need)
            cap *= 2;
        char *s = realloc(c->s, cap);
        if (!s) {
            c->failed = 1;
            return;
        }
        c->s = s;
        c->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(c->s + c->len, (size_t)w + 1, fmt, ap);
    va_end(ap);
    c->len += (size_t)w;
    c->s[c->len++] = '\n';
    c->s[c->len] = '\0';
}

const char *ss_csv_field(const char *s, char *buf, size_t n) {
    if (!buf || n == 0)
        return "";
    if (!s)
        s = "";
    if (!strpbrk(s, ",\"\n\r")) {
        snprintf(buf, n, "%s", s);
        return buf;
    }
    size_t j = 0;
    buf[j++] = '"';
    for (; *s && j + 3 < n; s++) {
        if (*s == '"')
            buf[j++] = '"';
        buf[j++] = *s == '\n' || *s == '\r' ? ' ' : *s;
    }
    buf[j++] = '"';
    buf[j] = '\0';
    return buf;
}

ss_status ss_csv_save(const ss_csv *c, const char *path) {
    if (!c || !path)
        return ss_fail(SS_EINVAL, "csv: table or path is NULL");
    if (c->failed)
        return ss_fail(SS_ENOMEM, "%s: out of memory while building the CSV", path);
    return ss_save_file(path, c->s ? c->s : "", c->len);
}

void ss_csv_free(ss_csv *c) {
    if (!c)
        return;
    free(c->s);
    memset(c, 0, sizeof *c);
}
