/* Internal: the streaming pass shared by quantize and convert. */
#ifndef SS_PREP_TRANSFORM_H
#define SS_PREP_TRANSFORM_H

#include "prep_internal.h"

typedef struct {
    const char *cmd;       /* "quantize" / "convert", for messages */
    const char *in_dir;
    int n_out;             /* 1 .. SS_PREP_MAX_PATTERNS */
    const char *final_dir[SS_PREP_MAX_PATTERNS];
    ss_pattern pat[SS_PREP_MAX_PATTERNS]; /* SS_PATTERN_DENSE: quantize only */
    ss_dtype dtype;        /* SS_DTYPE_COUNT: the input's (int8 from BF16) */
    int require_bf16;      /* quantize: a quantized input is an error */
    const char *source;    /* recorded as the slid outputs' source (NULL: in_dir) */
    int force;
    ss_prep_progress_fn progress;
    void *user;
} prep_job;

ss_status prep_run(const prep_job *job);

#endif
