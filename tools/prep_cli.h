/* Shared by the prep commands (synth, quantize, convert, verify): the
 * library's progress callback drawn with tools/progress.h. */
#ifndef SS_PREP_CLI_H
#define SS_PREP_CLI_H

#include <stdint.h>
#include "progress.h"

typedef struct {
    const char *label;
    ss_progress *bar;  /* created on the first callback, when the totals are known */
    long slow_ms;      /* SS_TEST_SLOW_MS: tests sleep between tensors to kill midway */
} prep_cli_progress;

void prep_cli_progress_init(prep_cli_progress *p, const char *label);
/* ss_prep_progress_fn */
void prep_cli_progress_cb(void *user, int64_t i, int64_t n, int64_t bytes_done, int64_t bytes_total);
/* Final line when ok; frees. */
void prep_cli_progress_done(prep_cli_progress *p, int ok);

#endif
