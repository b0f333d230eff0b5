/* Random inputs shared by the linear-layer test programs (test_linear_cpu.c,
 * test_gpu_linear.c): weights, activations, scales and the patterns swept. */
#ifndef SS_LINEAR_INPUTS_H
#define SS_LINEAR_INPUTS_H

#include "ss_test.h"

/* Every slid pattern the linear tests sweep: 2_4 .. 2_16 and 2_inf. */
#define SS_TEST_NPAT 8
extern const char *const ss_test_patterns[SS_TEST_NPAT];

/* A random weight (n, k) of I8 or F8_E4M3 (no NaN encodings, ~1 in 10 zero)
 * or BF16 (standard normal); caller frees. */
void *ss_test_random_weight(ss_rng *r, ss_dtype t, int64_t n, int64_t k);
/* A random weight (n, k) pruned to pattern p and slid to (n, K') (dense p:
 * the random weight itself); caller frees. */
void *ss_test_random_slid_weight(ss_rng *r, ss_dtype t, int64_t n, int64_t k, ss_pattern p);
/* count BF16 values, normal with standard deviation `scale`; caller frees. */
uint16_t *ss_test_random_bf16(ss_rng *r, int64_t count, double scale);
/* n weight scales in [0.001, 0.021); caller frees. */
float *ss_test_random_scales(ss_rng *r, int64_t n);

#endif
