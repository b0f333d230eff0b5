/* Internal: our CUDA kernels behind C launchers (SPEC §4). Every float op is
 * spelled out as in slidesparse/quant.h and linear.h (__fdiv_rn, __fmul_rn,
 * __fadd_rn, rintf, no contraction) so that the results are bit-identical to
 * the CPU reference.
 *
 * Launchers return cudaSuccess or the launch error; they never synchronize.
 *
 * pdl != 0 (the launchers that take it) launches the kernel as a
 * programmatic dependent launch (cc >= 9.0, pdl.cuh): its blocks may be
 * scheduled while the previous kernel in the stream drains and wait for it
 * before touching memory. Results never depend on it. The launchers without
 * pdl launch plainly.
 */
#ifndef SS_LINEAR_KERNELS_H
#define SS_LINEAR_KERNELS_H

#include <stdint.h>
#include <cuda_runtime_api.h>

#include "slidesparse/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the activations are laid out for the GEMM: l = 0 means no lifting
 * (quant_only: column j takes input j, zero for j >= k); otherwise slid
 * columns j < k_raw take input (j / g)*l + 2*((j % g) / 4) + j % 4 (zero when
 * that is >= k), and columns >= k_raw are zero. */
typedef struct {
    int64_t k;      /* logical inputs per row */
    int64_t k_out;  /* q columns (multiple of 32) */
    int64_t k_raw;  /* slid columns before padding (dense: k) */
    int l, g;       /* group length L and slid columns per group G; l = 0: dense */
} ss_lift_geom;

/* quant_slide / quant_only, one block per token row.
 *   qdt:   SS_DTYPE_I8, SS_DTYPE_F8_E4M3, or SS_DTYPE_BF16 (copy + pad, sa = 1)
 *   x:     (m, k) BF16, device
 *   q:     (m_pad, k_out) of qdt; rows >= m are zero, sa[rows >= m] = 0
 *   sa:    (m_pad) per-token scale
 *   threads: 0 = automatic choice; > 0 = force the previous pipelined kernel
 *          with that block size; < 0 = force the previous simple
 *          one-row-per-block kernel with block size -threads (dev variants).
 * Automatic: INT8/FP8 with K % 8 == 0 and 16-byte aligned x and q take the
 * row-in-registers kernel (ss_kernel_quant_vecs); other K % 8 == 0 calls the
 * pipelined kernel (persistent blocks, next row prefetched with cp.async);
 * the rest the simple one. */
cudaError_t ss_kernel_quant(ss_dtype qdt, const uint16_t *x, int64_t m, int64_t m_pad,
                            ss_lift_geom geo, void *q, float *sa, int threads,
                            cudaStream_t stream);
/* ss_kernel_quant with pdl (every kernel it may pick). */
cudaError_t ss_kernel_quant_pdl(ss_dtype qdt, const uint16_t *x, int64_t m, int64_t m_pad,
                                ss_lift_geom geo, void *q, float *sa, int threads, int pdl,
                                cudaStream_t stream);

/* The row-in-registers kernel with `vecs` 16-byte loads per thread (1, 2, 4
 * or 8; 0 = automatic), block size ceil32(k / 8 / vecs), for the dev harness.
 * pdl != 0 launches it as a programmatic dependent launch (cc >= 9.0: its
 * blocks may be scheduled while the previous kernel drains; they wait for it
 * before touching memory). cudaErrorInvalidValue where it cannot take the
 * call (BF16 output, K % 8, x or q not 16-byte aligned, > 1024 threads). */
cudaError_t ss_kernel_quant_vecs(ss_dtype qdt, const uint16_t *x, int64_t m, int64_t m_pad,
                                 ss_lift_geom geo, void *q, float *sa, int vecs, int pdl,
                                 cudaStream_t stream);

/* ss_kernel_quant_vecs with the previous gather of the lifted row (the
 * earlier kernel): every output word located by a division and two shared
 * memory reads. It differs only for 2_6 (L = 6), which ss_kernel_quant_vecs
 * gathers in tiles with compile-time shifts. Same arguments and results. */
cudaError_t ss_kernel_quant_gather(ss_dtype qdt, const uint16_t *x, int64_t m, int64_t m_pad,
                                   ss_lift_geom geo, void *q, float *sa, int vecs, int pdl,
                                   cudaStream_t stream);

/* ss_kernel_quant_vecs with the lifted row gathered in tiles of whole groups
 * (compile-time shifts) for every L in 6..16, the chunks staged per warp in
 * shared memory and stored contiguously (measured on the H100: the automatic
 * choice for 2_8 .. 2_16, quant.cu staged_auto). Same arguments and results. */
cudaError_t ss_kernel_quant_staged(ss_dtype qdt, const uint16_t *x, int64_t m, int64_t m_pad,
                                   ss_lift_geom geo, void *q, float *sa, int vecs, int pdl,
                                   cudaStream_t stream);

/* 1 when the row-in-registers kernel can take the call: INT8/FP8, K % 8 == 0,
 * K <= 65536, x, q (and gamma unless NULL) 16-byte aligned. */
int ss_kernel_quant_rows_fit(ss_dtype qdt, const uint16_t *x, const uint16_t *gamma,
                             ss_lift_geom geo, const void *q);

/* RMSNorm fused into quant_slide / quant_only: quantizes (and lifts) the row
 *   h[j] = bf16(gamma[j] * bf16(x[j] * inv)),  inv = 1 / sqrt(ss / k + eps),
 * ss = sum of x[j]^2 in float (products and sums each rounded; block order),
 * exactly as ss_rmsnorm_cuda / ss_rmsnorm_cpu round, so the result equals
 * ss_kernel_quant on the norm's output up to the order of ss's sum.
 *   gamma: (k) BF16, device;  qdt, x, m, m_pad, geo, q, sa: as ss_kernel_quant.
 *   vecs >= 0: the row-in-registers kernel with that many 16-byte loads per
 *     thread (0 = automatic) where it fits (ss_kernel_quant_rows_fit and
 *     <= 1024 threads), else the fallback kernel (any K, BF16 output, the row
 *     normalized in shared memory; no scratch); vecs < 0 forces the fallback.
 *   pdl: as ss_kernel_quant_vecs (the row kernel and the fallback). */
cudaError_t ss_kernel_quant_rmsnorm(ss_dtype qdt, const uint16_t *x, const uint16_t *gamma,
                                    float eps, int64_t m, int64_t m_pad, ss_lift_geom geo,
                                    void *q, float *sa, int vecs, int pdl, cudaStream_t stream);

/* ss_kernel_dequant_residual of one projection then ss_kernel_quant_rmsnorm
 * of the next on the updated residual stream, in one row kernel (the
 * row-in-registers kernel with a prologue that builds the row as
 * bf16(resid + bf16(dequant(d))) with dequant_residual's rounding and stores
 * it back to resid): resid, q and sa equal the two kernels' bit for bit when
 * vecs picks the same block as ss_kernel_quant_rmsnorm does (same vecs), the
 * sum of squares then running in the same order.
 *   ddt, d (m, ldd), sa_in (m), sb, sb_per_channel, bias: as
 *     ss_kernel_dequant_residual (sa_in not NULL);  resid (m, k) BF16;
 *   qdt, gamma, eps, m, m_pad, geo, q, sa: as ss_kernel_quant_rmsnorm (the
 *     norm's k = geo.k = the producing projection's n);
 *   vecs >= 0 (0 = automatic), pdl: as ss_kernel_quant_vecs.
 * cudaErrorInvalidValue, before launching anything, where the row kernel
 * cannot take the call (ss_kernel_quant_rows_fit on resid, ldd % 8, 16-byte
 * alignment of d, resid, bias and per-channel sb): run the two kernels. */
cudaError_t ss_kernel_residual_quant_rmsnorm(ss_dtype ddt, const void *d, int64_t ldd,
                                             const float *sa_in, const float *sb, int sb_per_channel,
                                             const uint16_t *bias, uint16_t *resid, ss_dtype qdt,
                                             const uint16_t *gamma, float eps, int64_t m,
                                             int64_t m_pad, ss_lift_geom geo, void *q, float *sa,
                                             int vecs, int pdl, cudaStream_t stream);

/* dequant_bias: y[r, c] = out(((float)d[r, c] * sa[r]) * sb[c or 0] + bias[c])
 *   ddt:  SS_DTYPE_I32, SS_DTYPE_F32 or SS_DTYPE_BF16;  d: (m, ldd)
 *   sa:   (m) or NULL (treated as 1);  sb: (n) if sb_per_channel else (1), or NULL
 *   bias: (n) BF16 or NULL (no add: -0.0 stays -0.0)
 *   ydt:  SS_DTYPE_BF16 or SS_DTYPE_F32; y: (m, n) */
cudaError_t ss_kernel_dequant_bias(ss_dtype ddt, const void *d, int64_t ldd, const float *sa,
                                   const float *sb, int sb_per_channel, const uint16_t *bias,
                                   int64_t m, int64_t n, ss_dtype ydt, void *y,
                                   cudaStream_t stream);
cudaError_t ss_kernel_dequant_bias_pdl(ss_dtype ddt, const void *d, int64_t ldd, const float *sa,
                                       const float *sb, int sb_per_channel, const uint16_t *bias,
                                       int64_t m, int64_t n, ss_dtype ydt, void *y, int pdl,
                                       cudaStream_t stream);

/* dequant_bias (BF16 output) fused with the engine's gated activation:
 *   g = bf16(dequant(d[r, c])), u = bf16(dequant(d[r, inter + c])),
 *   act[r, c] = bf16(act(g) * u),  act = relu(g)^2 (relu2) or g / (1 + expf(-g))
 * with the rounding points of ss_glu_cuda (src/engine/cuda/ops.cu), so the
 * result equals dequant_bias then ss_glu_cuda bit for bit.
 *   d: (m, ldd), ldd >= 2 * inter;  sb, bias: (2 * inter) (sb or (1));  act: (m, inter) */
cudaError_t ss_kernel_dequant_glu(ss_dtype ddt, const void *d, int64_t ldd, const float *sa,
                                  const float *sb, int sb_per_channel, const uint16_t *bias,
                                  int64_t m, int64_t inter, int relu2, uint16_t *act,
                                  cudaStream_t stream);
cudaError_t ss_kernel_dequant_glu_pdl(ss_dtype ddt, const void *d, int64_t ldd, const float *sa,
                                      const float *sb, int sb_per_channel, const uint16_t *bias,
                                      int64_t m, int64_t inter, int relu2, uint16_t *act, int pdl,
                                      cudaStream_t stream);

/* dequant_bias (BF16 output) fused with the residual add:
 *   x[r, c] = bf16(x[r, c] + bf16(dequant(d[r, c])))   (ss_residual_add_cuda's rounding)
 *   d: (m, ldd), ldd >= n;  x: (m, n) BF16, read and written */
cudaError_t ss_kernel_dequant_residual(ss_dtype ddt, const void *d, int64_t ldd, const float *sa,
                                       const float *sb, int sb_per_channel, const uint16_t *bias,
                                       int64_t m, int64_t n, uint16_t *x, cudaStream_t stream);
cudaError_t ss_kernel_dequant_residual_pdl(ss_dtype ddt, const void *d, int64_t ldd,
                                           const float *sa, const float *sb, int sb_per_channel,
                                           const uint16_t *bias, int64_t m, int64_t n, uint16_t *x,
                                           int pdl, cudaStream_t stream);

/* 1 when the forward's kernels should run as programmatic dependent
 * launches on `device`: not SS_PDL=0 in the environment (A/B switch), cc >=
 * 9.0, and these kernels built with code for it. Read once where a model or
 * linear is made (its graphs bake the launches in), not per launch. */
int ss_kernel_pdl_on(int device);

/* Where PDL is on, only batches of at most this many rows (tokens) take it:
 * it pays where kernels are short and the gaps between them count (H100,
 * BitNet-2B INT8, cuBLASLt: decode M 64 +3.5%, M 512 even), and costs on
 * large grids (prefill M 16384 -2%: every block's wait, and dependents'
 * blocks resident early). Larger batches launch exactly as SS_PDL=0. */
#define SS_PDL_MAX_ROWS 512
/* The one rule every launcher follows: PDL for a batch of `rows` when the
 * switch decided at load (on: ss_kernel_pdl_on) allows it. */
static inline int ss_pdl_for(int on, int64_t rows) { return on && rows <= SS_PDL_MAX_ROWS; }

#ifdef __cplusplus
}
#endif
#endif
