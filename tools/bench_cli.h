/* Shared by `slidesparse tune` and `slidesparse bench kernel` (cmd_tune.c):
 * list parsing, model shapes, the context choice, and the progress / log
 * printers for the library's callbacks. */
#ifndef SS_BENCH_CLI_H
#define SS_BENCH_CLI_H

#include "cli.h"

#define BCLI_MAX_LIST 64

typedef struct {
    const char *cmd;         /* "tune", "bench kernel" */
    int quiet;
    int tty;
    double last_s;           /* last progress line drawn */
    int drawn;               /* a "\r" line is open on the terminal */
} bcli_out;

/* "64,128,1024": each 1..2^20; prints the error and returns 0 when malformed. */
int bcli_parse_m(const char *cmd, const char *opt, const char *s, int64_t *out, int *n);
/* "2_4,2_6,6:8,2_inf" (no dense, no repeats; ss_pattern_parse). */
int bcli_parse_patterns(const char *cmd, const char *s, ss_pattern *out, int *n);
/* "int8,fp8". */
int bcli_parse_dtypes(const char *cmd, const char *s, ss_dtype *out, int *n);
/* Shapes of --preset NAME or --model DIR; name gets the file stem ("BitNet-2B"). */
int bcli_shapes(const char *cmd, const char *preset, const char *model, ss_proj_shape out[4],
                char *name, size_t n);
/* Before any work: --out (and --tuning-dir, when not NULL) must be usable
 * folders and not inside the --model folder (when not NULL). */
int bcli_check_outputs(const char *cmd, const char *out, const char *tuning_dir, const char *model);
/* --backend (cli_backend_parse) and --device N -> a context (auto: GPU when one is visible). */
int bcli_context(const char *cmd, const cli_backend *be, const char *device, ss_context **out);

void bcli_out_init(bcli_out *o, const char *cmd, int quiet);
void bcli_progress(void *user, const ss_tune_progress *p); /* ss_tune_progress_fn */
void bcli_log(void *user, const char *line);               /* ss_log_fn */
void bcli_end_line(bcli_out *o);

#endif
