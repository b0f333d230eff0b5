/* Progress reporting for long CLI commands (quantize, convert, verify, ...).
 *
 * It lives in tools/ because it prints, and the library never does: the CLI
 * owns the output and calls ss_progress_update between library calls.
 *
 * On a terminal it redraws one line with "\r" at most ~10 times a second:
 *   quantize  12/210  1234.5/4800.0 MB  617.3 MB/s  ETA 0:06
 * Otherwise (a log file, a pipe) it prints that line plainly at most once
 * every 2 seconds, plus once at finish. Every function accepts p == NULL and
 * does nothing, so a caller can pass the result of a failed create, or NULL
 * for --quiet, without checks.
 */
#ifndef SS_TOOLS_PROGRESS_H
#define SS_TOOLS_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ss_progress ss_progress;

/* A total <= 0 means "unknown": that part is left out of the line. Returns
 * NULL when out of memory (or when out is NULL). */
ss_progress *ss_progress_create(FILE *out, const char *label, int64_t total_items, int64_t total_bytes);
/* Cumulative counts so far. Draws only when the rate limit allows. */
void ss_progress_update(ss_progress *p, int64_t items_done, int64_t bytes_done);
/* Draws the final line (ending the terminal line with "\n"); idempotent. */
void ss_progress_finish(ss_progress *p);
/* Frees p. On a terminal, a line left unfinished (a failed run) is ended with
 * "\n" first, so the error message that follows starts on its own line. */
void ss_progress_destroy(ss_progress *p);

/* The line without "\r" or "\n": label, items i/n, MB done/total, MB/s, and
 * "ETA h:mm:ss" (or "done in ..." once everything is done; "ETA --:--" while
 * unknown). MB are 10^6 bytes. The ETA uses the byte fraction when the byte
 * total is known, else the item fraction. Writes at most n bytes including the
 * NUL (like snprintf) and returns the length the full line has. */
int ss_progress_format(char *buf, size_t n, const char *label, int64_t items_done, int64_t total_items,
                       int64_t bytes_done, int64_t total_bytes, double elapsed_s);

/* For tests: create with the terminal decision and the start time given
 * instead of taken from isatty() and CLOCK_MONOTONIC, then drive it with
 * explicit times (seconds on the same clock). */
ss_progress *ss_progress_create_at(FILE *out, const char *label, int64_t total_items, int64_t total_bytes,
                                   int tty, double start_s);
void ss_progress_update_at(ss_progress *p, int64_t items_done, int64_t bytes_done, double now_s);
void ss_progress_finish_at(ss_progress *p, double now_s);

#endif
