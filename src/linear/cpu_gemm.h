/* Internal: the CPU reference GEMM kernels behind src/linear/cpu.c.
 *
 *   D[m, n] = sum_j a[m, j] * b[n, j]      (both operands row-major, K contiguous)
 *
 * Integer path: int16 activations (the INT8 values widened once per call) times
 * int8 weights (kept at 1 byte: half the memory traffic, which is what bounds
 * decode-sized M), widened in registers, so the inner loop is a 16x16->32
 * multiply-accumulate that compilers turn into pmaddwd; int32 accumulation,
 * exact.
 *
 * Float path: float operands (decoded FP8 or BF16 values), every product taken
 * exactly in double and summed in double in a fixed order (see cpu_gemm.c for
 * why this is exact, hence order independent, for FP8).
 *
 * Both are cache blocked over M, N and K and parallel (OpenMP) over M x N tiles;
 * they never allocate and never fail.
 */
#ifndef SS_LINEAR_CPU_GEMM_H
#define SS_LINEAR_CPU_GEMM_H

#include <stdint.h>

#include "slidesparse/core.h"

/* a: (m, k) int16 (INT8 values), b: (n, k) int8, k a multiple of 32 (q_cols always is).
 * d: (m, n) of dt = SS_DTYPE_I32 (exact), SS_DTYPE_F32 ((float)acc) or
 * SS_DTYPE_BF16 (bf16((float)acc)). */
void ss_cpu_gemm_i8(const int16_t *a, const int8_t *b, int64_t m, int64_t n, int64_t k,
                    ss_dtype dt, void *d);

/* a: (m, k) float, b: (n, k) float, k a multiple of 32.
 * d: (m, n) of dt = SS_DTYPE_F32 ((float)sum) or SS_DTYPE_BF16 (bf16((float)sum)). */
void ss_cpu_gemm_f32(const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                     ss_dtype dt, void *d);

#endif
