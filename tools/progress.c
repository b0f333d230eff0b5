/* Progress line for long CLI commands: formatting (pure) and rate-limited
 * drawing on a terminal or a log. See progress.h. */
#include "progress.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TTY_INTERVAL_S 0.1 /* redraws per second on a terminal: ~10 */
#define LOG_INTERVAL_S 2.0 /* a log gets one line per 2 s, not a flood */

struct ss_progress {
    FILE *out;
    char label[64];
    int64_t total_items, total_bytes;
    int64_t items, bytes; /* last counts seen */
    int tty;
    int finished;
    double start_s, last_draw_s; /* last_draw_s < start_s: nothing drawn yet */
    int last_len;                /* width drawn on the terminal line, to blank leftovers */
};

// --- formatting ----------------------------------------------------------------------

/* snprintf that appends at *len and keeps counting past the end of buf. */
static void append(char *buf, size_t n, int *len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t at = (size_t)*len < n ? (size_t)*len : n;
    int k = vsnprintf(buf ? buf + at : NULL, n - at, fmt, ap);
    va_end(ap);
    if (k > 0)
        *len += k;
}

/* "m:ss" or "h:mm:ss"; rounded to the second. */
static void append_duration(char *buf, size_t n, int *len, double s) {
    if (!(s >= 0) || s > 3600.0 * 99999) {
        append(buf, n, len, "--:--");
        return;
    }
    long long t = (long long)(s + 0.5);
    if (t >= 3600)
        append(buf, n, len, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
    else
        append(buf, n, len, "%lld:%02lld", t / 60, t % 60);
}

int ss_progress_format(char *buf, size_t n, const char *label, int64_t items_done, int64_t total_items,
                       int64_t bytes_done, int64_t total_bytes, double elapsed_s) {
    int len = 0;
    if (buf && n)
        buf[0] = '\0';
    else
        buf = NULL, n = 0;
    append(buf, n, &len, "%s", label ? label : "");
    if (total_items > 0)
        append(buf, n, &len, "  %lld/%lld", (long long)items_done, (long long)total_items);
    else if (items_done > 0)
        append(buf, n, &len, "  %lld", (long long)items_done);

    const double mb = 1e6;
    int have_bytes = total_bytes > 0 || bytes_done > 0;
    if (total_bytes > 0)
        append(buf, n, &len, "  %.1f/%.1f MB", bytes_done / mb, total_bytes / mb);
    else if (bytes_done > 0)
        append(buf, n, &len, "  %.1f MB", bytes_done / mb);
    if (have_bytes && elapsed_s > 0)
        append(buf, n, &len, "  %.1f MB/s", bytes_done / mb / elapsed_s);

    /* The fraction done, from bytes when their total is known (tensors differ
     * in size by 1000x, so items are a poor clock), else from items. */
    double frac = total_bytes > 0 ? (double)bytes_done / (double)total_bytes
                  : total_items > 0 ? (double)items_done / (double)total_items
                                    : 0.0;
    if (frac >= 1.0) {
        append(buf, n, &len, "  done in ");
        append_duration(buf, n, &len, elapsed_s);
    } else {
        append(buf, n, &len, "  ETA ");
        append_duration(buf, n, &len, frac > 0 && elapsed_s > 0 ? elapsed_s * (1.0 - frac) / frac : -1.0);
    }
    return len;
}

// --- drawing -------------------------------------------------------------------------

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void draw(ss_progress *p, double now) {
    char line[512];
    int len = ss_progress_format(line, sizeof line, p->label, p->items, p->total_items, p->bytes,
                                 p->total_bytes, now - p->start_s);
    if (len >= (int)sizeof line)
        len = (int)sizeof line - 1;
    if (p->tty) {
        /* Spaces over what is left of a longer previous line. */
        int pad = p->last_len > len ? p->last_len - len : 0;
        fprintf(p->out, "\r%s%*s", line, pad, "");
        p->last_len = len + pad; /* what is on screen now, padding included */
    } else {
        fprintf(p->out, "%s\n", line);
    }
    fflush(p->out);
    p->last_draw_s = now;
}

ss_progress *ss_progress_create_at(FILE *out, const char *label, int64_t total_items, int64_t total_bytes,
                                   int tty, double start_s) {
    if (!out)
        return NULL;
    ss_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->out = out;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total_items = total_items;
    p->total_bytes = total_bytes;
    p->tty = tty;
    p->start_s = start_s;
    p->last_draw_s = -INFINITY;
    return p;
}

ss_progress *ss_progress_create(FILE *out, const char *label, int64_t total_items, int64_t total_bytes) {
    if (!out)
        return NULL;
    return ss_progress_create_at(out, label, total_items, total_bytes, isatty(fileno(out)), now_s());
}

void ss_progress_update_at(ss_progress *p, int64_t items_done, int64_t bytes_done, double now) {
    if (!p || p->finished)
        return;
    p->items = items_done;
    p->bytes = bytes_done;
    /* A terminal shows the line at once; a log waits LOG_INTERVAL_S from the
     * start, so a short command logs only its finish line. */
    double last = p->tty ? p->last_draw_s : (p->last_draw_s > p->start_s ? p->last_draw_s : p->start_s);
    if (now - last >= (p->tty ? TTY_INTERVAL_S : LOG_INTERVAL_S))
        draw(p, now);
}

void ss_progress_update(ss_progress *p, int64_t items_done, int64_t bytes_done) {
    if (p)
        ss_progress_update_at(p, items_done, bytes_done, now_s());
}

void ss_progress_finish_at(ss_progress *p, double now) {
    if (!p || p->finished)
        return;
    draw(p, now);
    if (p->tty)
        fputs("\n", p->out);
    fflush(p->out);
    p->finished = 1;
}

void ss_progress_finish(ss_progress *p) {
    if (p)
        ss_progress_finish_at(p, now_s());
}

void ss_progress_destroy(ss_progress *p) {
    if (!p)
        return;
    if (p->tty && !p->finished && p->last_draw_s > -INFINITY) {
        fputs("\n", p->out);
        fflush(p->out);
    }
    free(p);
}
