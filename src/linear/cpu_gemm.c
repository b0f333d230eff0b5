/* CPU GEMM kernels (see cpu_gemm.h): cache-blocked, OpenMP over M x N tiles,
 * with inner loops written so that gcc -O3 vectorizes them for baseline
 * x86-64 (SSE2), plus AVX2 / AVX-512 clones picked at load time where the
 * toolchain supports function multi-versioning.
 *
 * Blocking: one OpenMP work item is a TM x TN tile of D; it walks K in chunks
 * of TK so that its TM + TN operand rows (INT8: 64 x 2 KiB + 64 x 1 KiB) stay
 * in L2, and inside a chunk a MR x NR register micro-kernel reads MR + NR rows
 * of TK elements (12 KiB) from L1. Partial sums live in a
 * per-tile accumulator on the stack until the last chunk, then are converted
 * to the output dtype once.
 */
#include "cpu_gemm.h"

#include <string.h>

enum { TM = 64, TN = 64, TK = 1024, MR = 4, NR = 4 };

/* Below this many multiply-adds (~80 us on one core) the GEMM runs on the
 * calling thread: on an idle machine a parallel region costs microseconds, but
 * when the cores are shared (ctest -j, CI runners) its closing barrier waits
 * for a descheduled thread -- measured 8 ms instead of 0.2 ms for
 * 1 x 2560 x 2560 on 2 loaded cores. Decode steps of small models stay below. */
#define SS_GEMM_PARALLEL_MIN (1 << 23)

/* Measured on Zen 4, INT8 256x2560x2560, one thread (CPU time): default (SSE2)
 * 70 GOPS, avx2 119, x86-64-v4 (AVX-512) 130-139. gcc < 12 does not know arch=x86-64-v4. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_ADDRESS__) && __GNUC__ >= 12
#define SS_GEMM_CLONES __attribute__((target_clones("default", "avx2", "arch=x86-64-v4")))
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_ADDRESS__)
#define SS_GEMM_CLONES __attribute__((target_clones("default", "avx2")))
#else
#define SS_GEMM_CLONES
#endif

#define SS_ALWAYS_INLINE static inline __attribute__((always_inline))

// --- integer path ------------------------------------------------------------------

/* c[i, j] += sum_{k < kc} a[i, k] * b[j, k] for i < mr, j < nr (mr <= MR,
 * nr <= NR, constants after inlining so the i/j loops unroll and the k loop
 * becomes mr*nr vector dot products). kc is a multiple of 32. */
SS_ALWAYS_INLINE void kern_i8(int mr, int nr, const int16_t *restrict a, int64_t lda,
                              const int8_t *restrict b, int64_t ldb, int64_t kc,
                              int32_t *restrict c, int64_t ldc) {
    int32_t acc[MR][NR] = {{0}};
    for (int64_t k = 0; k < kc; k++)
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++)
                acc[i][j] += (int32_t)a[i * lda + k] * (int32_t)b[j * ldb + k];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            c[i * ldc + j] += acc[i][j];
}

/* One K chunk of one tile: c (tm, tn) += a (tm, kc) . b (tn, kc)^T. */
SS_GEMM_CLONES
static void tile_i8(const int16_t *a, int64_t lda, const int8_t *b, int64_t ldb, int64_t tm,
                    int64_t tn, int64_t kc, int32_t *c, int64_t ldc) {
    int64_t i = 0;
    for (; i + MR <= tm; i += MR) {
        int64_t j = 0;
        for (; j + NR <= tn; j += NR)
            kern_i8(MR, NR, a + i * lda, lda, b + j * ldb, ldb, kc, c + i * ldc + j, ldc);
        for (; j < tn; j++)
            kern_i8(MR, 1, a + i * lda, lda, b + j * ldb, ldb, kc, c + i * ldc + j, ldc);
    }
    for (; i < tm; i++) {
        int64_t j = 0;
        for (; j + NR <= tn; j += NR)
            kern_i8(1, NR, a + i * lda, lda, b + j * ldb, ldb, kc, c + i * ldc + j, ldc);
        for (; j < tn; j++)
            kern_i8(1, 1, a + i * lda, lda, b + j * ldb, ldb, kc, c + i * ldc + j, ldc);
    }
}

static void store_i32(const int32_t *acc, int64_t tm, int64_t tn, ss_dtype dt, void *d,
                      int64_t ldd, int64_t row0, int64_t col0) {
    for (int64_t i = 0; i < tm; i++) {
        const int32_t *s = acc + i * TN;
        int64_t o = (row0 + i) * ldd + col0;
        if (dt == SS_DTYPE_I32)
            memcpy((int32_t *)d + o, s, (size_t)tn * sizeof(int32_t));
        else if (dt == SS_DTYPE_F32)
            for (int64_t j = 0; j < tn; j++)
                ((float *)d)[o + j] = (float)s[j];
        else
            for (int64_t j = 0; j < tn; j++)
                ((uint16_t *)d)[o + j] = ss_f32_to_bf16((float)s[j]);
    }
}

void ss_cpu_gemm_i8(const int16_t *a, const int8_t *b, int64_t m, int64_t n, int64_t k,
                    ss_dtype dt, void *d) {
    int64_t mt = (m + TM - 1) / TM, nt = (n + TN - 1) / TN;
    int parallel = (double)m * (double)n * (double)k >= SS_GEMM_PARALLEL_MIN;
#pragma omp parallel for collapse(2) schedule(dynamic) if (parallel)
    for (int64_t ti = 0; ti < mt; ti++)
        for (int64_t tj = 0; tj < nt; tj++) {
            int32_t acc[TM * TN];
            int64_t r0 = ti * TM, c0 = tj * TN;
            int64_t tm = m - r0 < TM ? m - r0 : TM, tn = n - c0 < TN ? n - c0 : TN;
            memset(acc, 0, sizeof acc);
            for (int64_t k0 = 0; k0 < k; k0 += TK) {
                int64_t kc = k - k0 < TK ? k - k0 : TK;
                tile_i8(a + r0 * k + k0, k, b + c0 * k + k0, k, tm, tn, kc, acc, TN);
            }
            store_i32(acc, tm, tn, dt, d, n, r0, c0);
        }
}

// --- float path ----------------------------------------------------------------------

/* Why double: a product of two e4m3 values has at most 8 significant bits and
 * lies in [2^-18, 448^2 < 2^18], so it is exact in float and in double; any
 * sum of such products is a multiple of 2^-18 below K * 2^18 in magnitude, so
 * it is exact in double (53 bits) for K < 2^17 -- far above any K' we use.
 * Exact sums do not depend on the order of summation, which is what lets the
 * blocked, vectorized loops below (and the slid vs. dense layouts, which sum
 * the same nonzero products in a different order) agree bit for bit. For BF16
 * operands products are exact too but sums may round; the order here is fixed
 * (SL partial sums per k residue, then combined left to right), so results are
 * deterministic run to run and across thread counts. */
enum { SL = 8 };

SS_ALWAYS_INLINE void kern_f32(int mr, int nr, const float *restrict a, int64_t lda,
                               const float *restrict b, int64_t ldb, int64_t kc,
                               double *restrict c, int64_t ldc) {
    double acc[MR][NR][SL] = {{{0}}};
    for (int64_t k = 0; k < kc; k += SL)
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++)
                for (int l = 0; l < SL; l++)
                    acc[i][j][l] += (double)a[i * lda + k + l] * (double)b[j * ldb + k + l];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            double s = c[i * ldc + j];
            for (int l = 0; l < SL; l++)
                s += acc[i][j][l];
            c[i * ldc + j] = s;
        }
}

SS_GEMM_CLONES
static void tile_f32(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t tm,
                     int64_t tn, int64_t kc, double *c, int64_t ldc) {
    enum { FR = 4 }; /* measured best of 1, 2, 4 (spills, but fewer loads) */
    int64_t i = 0;
    for (; i + FR <= tm; i += FR) {
        int64_t j = 0;
        for (; j + FR <= tn; j += FR)
            kern_f32(FR, FR, a + i * lda, lda, b + j * ldb, ldb, kc, c + i * ldc + j, ldc);
        for (; j < tn; j++)
            kern_f32(FR, 1, a + i * lda, lda, b + j * ldb, ldb, kc, c + i * ldc + j, ldc);
    }
    for (; i < tm; i++)
        for (int64_t j = 0; j < tn; j++)
            kern_f32(1, 1, a + i * lda, lda, b + j * ldb, ldb, kc, c + i * ldc + j, ldc);
}

void ss_cpu_gemm_f32(const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                     ss_dtype dt, void *d) {
    enum { FTM = 32, FTN = 32 };
    int64_t mt = (m + FTM - 1) / FTM, nt = (n + FTN - 1) / FTN;
    int parallel = (double)m * (double)n * (double)k >= SS_GEMM_PARALLEL_MIN;
#pragma omp parallel for collapse(2) schedule(dynamic) if (parallel)
    for (int64_t ti = 0; ti < mt; ti++)
        for (int64_t tj = 0; tj < nt; tj++) {
            double acc[FTM * FTN];
            int64_t r0 = ti * FTM, c0 = tj * FTN;
            int64_t tm = m - r0 < FTM ? m - r0 : FTM, tn = n - c0 < FTN ? n - c0 : FTN;
            for (int64_t x = 0; x < FTM * FTN; x++)
                acc[x] = 0.0;
            for (int64_t k0 = 0; k0 < k; k0 += TK) {
                int64_t kc = k - k0 < TK ? k - k0 : TK;
                tile_f32(a + r0 * k + k0, k, b + c0 * k + k0, k, tm, tn, kc, acc, FTN);
            }
            for (int64_t i = 0; i < tm; i++)
                for (int64_t j = 0; j < tn; j++) {
                    float v = (float)acc[i * FTN + j];
                    int64_t o = (r0 + i) * n + c0 + j;
                    if (dt == SS_DTYPE_BF16)
                        ((uint16_t *)d)[o] = ss_f32_to_bf16(v);
                    else
                        ((float *)d)[o] = v;
                }
        }
}
