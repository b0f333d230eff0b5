/* Shared helpers for the cmocka test programs. */
#ifndef SS_TEST_H
#define SS_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "slidesparse.h"

/* Fails the test with ss_last_error() when expr is not SS_OK. */
#define assert_ok(expr)                                                              \
    do {                                                                             \
        ss_status ss_t_ = (expr);                                                    \
        if (ss_t_ != SS_OK)                                                          \
            fail_msg("%s -> %s: %s", #expr, ss_status_name(ss_t_), ss_last_error()); \
    } while (0)

/* Asserts expr fails with status st and that the error text contains `needle`. */
#define assert_fails(expr, st, needle) ss_test_assert_fails((expr), (st), (needle), #expr, __FILE__, __LINE__)
void ss_test_assert_fails(ss_status got, ss_status want, const char *needle, const char *expr,
                          const char *file, int line);

/* Deterministic generator (splitmix64): tests are reproducible run to run. */
typedef struct { uint64_t s; } ss_rng;
uint64_t ss_rng_next(ss_rng *r);
/* Uniform in [0, n). */
uint64_t ss_rng_below(ss_rng *r, uint64_t n);
/* Uniform in [lo, hi]. */
int64_t ss_rng_range(ss_rng *r, int64_t lo, int64_t hi);
/* Standard normal (Box-Muller). */
double ss_rng_normal(ss_rng *r);

/* Creates a fresh temporary directory under $TMPDIR (or /tmp); buf >= 64 bytes. */
void ss_test_tmpdir(char *buf, size_t n);
/* rm -rf path (tests only). */
void ss_test_rmtree(const char *path);
/* Reads a whole file, NUL-terminated past its end; *len gets its size; caller frees. NULL
 * when unreadable. */
void *ss_test_read_file(const char *path, size_t *len);
void ss_test_write_file(const char *path, const void *data, size_t len);
/* 1 when path exists (lstat: a dangling link counts). */
int ss_test_exists(const char *path);
/* Number of entries of dir other than . and .. (0 when it cannot be opened). */
int ss_test_count_entries(const char *dir);

/* Copies checkpoint src (config.json + model.safetensors) to dst with every BF16 tensor rewritten as dtype `to` (F16
 * or F32) through the project's converters; every value must survive
 * the round trip back to BF16 exactly (F32 always does; F16 needs
 * ss_test_snap_f16_checkpoint first), else the test fails. Another `to`
 * (I16) keeps the raw BF16 bits under that dtype: a file of the wrong dtype. */
void ss_test_recast_checkpoint(const char *src, const char *dst, ss_dtype to);
/* Copies checkpoint src to dst (BF16 still) with every BF16 value replaced
 * by the BF16 of its nearest F16, so that F16 holds the result exactly. */
void ss_test_snap_f16_checkpoint(const char *src, const char *dst);
/* Runs `$SS_CLI sub args` (the CLI the test harness names), stdout and stderr
 * into buf (NUL-terminated, cut at n - 1); returns the exit code, -1 when it
 * did not exit, -2 when SS_CLI is not set (the caller skips its CLI checks). */
int ss_test_run_cli(const char *sub, const char *args, char *buf, size_t n);
/* Checkpoints a and b (folders) hold the same tensors: names, dtypes, shapes
 * and bytes; a difference fails the test naming the tensor. */
void ss_test_same_checkpoints(const char *a_dir, const char *b_dir);
/* F32 copy of checkpoint src with every BF16 value multiplied by mul (in F32). */
void ss_test_f32_scaled_checkpoint(const char *src, const char *dst, float mul);

/* For GPU test programs: when no CUDA device is visible prints
 * "skipped: no CUDA device" and returns 1 (the caller then exits 77, which
 * CTest reports as skipped). */
int ss_test_no_cuda(void);

#endif
