/* The prep commands' progress callback. */
#include "prep_cli.h"

#include <stdlib.h>
#include <time.h>

void prep_cli_progress_init(prep_cli_progress *p, const char *label) {
    p->label = label;
    p->bar = NULL;
    const char *s = getenv("SS_TEST_SLOW_MS");
    p->slow_ms = s ? strtol(s, NULL, 10) : 0;
}

void prep_cli_progress_cb(void *user, int64_t i, int64_t n, int64_t bytes_done, int64_t bytes_total) {
    prep_cli_progress *p = user;
    /* stdout: stderr stays the one-line error channel */
    if (!p->bar)
        p->bar = ss_progress_create(stdout, p->label, n, bytes_total);
    ss_progress_update(p->bar, i, bytes_done);
    if (p->slow_ms > 0) {
        struct timespec ts = {p->slow_ms / 1000, (p->slow_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void prep_cli_progress_done(prep_cli_progress *p, int ok) {
    if (ok)
        ss_progress_finish(p->bar);
    ss_progress_destroy(p->bar);
    p->bar = NULL;
    fflush(stdout);
}
