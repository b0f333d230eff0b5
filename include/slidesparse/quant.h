/* slidesparse/quant.h — weight and activation quantization, CPU reference
 * (SPEC §4, §6). These are the oracles the CUDA kernels are checked against,
 * so every float operation is spelled out:
 *
 * Activations, per token row m (x in BF16):
 *   a     = max(max_k |x[m,k]|, 1e-12f)                      (float)
 *   INT8: inv = 127.0f / a;  q = clamp(rintf(x * inv), -128, 127)
 *         scale[m] = a / 127.0f
 *   FP8 : inv = 448.0f / a;  q = e4m3(clamp(x * inv, -448, 448))
 *         scale[m] = a / 448.0f
 *   (rintf = round half to even; all products/quotients single IEEE ops.)
 *   With lifting, q'[m, j] = q[m, src(j)] (0 where src is -1); lifting never
 *   changes the absmax, so scale is identical to the unlifted one.
 *
 * Weights:
 *   BitNet ternary, per tensor: s = mean|W| (accumulated in double, rounded to
 *     float), T = clamp(rint(W / max(s, 1e-5)), -1, 1), scale[0] = s.
 *   Per channel absmax, row n: a = max(max|W[n,:]|, 1e-12), then as for
 *     activations with the row in place of the token; scale[n] = a/127 or a/448.
 *   NaN or Inf in W -> SS_EINVAL naming `name` and the element.
 */
#ifndef SLIDESPARSE_QUANT_H
#define SLIDESPARSE_QUANT_H

#include "slidesparse/core.h"
#include "slidesparse/sparse.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-token activation quantization.
 *   x:     (m, k) BF16 (uint16 bits), row stride k
 *   qdt:   SS_DTYPE_I8 or SS_DTYPE_F8_E4M3
 *   p:     lifting pattern; SS_PATTERN_DENSE = no lifting (quant_only)
 *   k_out: columns of q: >= ss_slid_k(p, k) (dense: >= ceil32(k)); the tail
 *          beyond the lifted/padded width is zero-filled
 *   q:     (m, k_out) out;  scale: (m) out */
ss_status ss_quant_act_ref(ss_dtype qdt, const uint16_t *x, int64_t m, int64_t k,
                           ss_pattern p, int64_t k_out, void *q, float *scale);

/* RMSNorm of t rows of n BF16 values with the BF16 weight w (n), HF's
 * rounding points (BitNetRMSNorm / LlamaRMSNorm): float sum of squares in
 * order, inv = 1 / sqrt(ss / n + eps), y = bf16(w * bf16(x * inv)). The
 * reference of the engine's norm and of the norm fused into the quant stage.
 * y (t, n) must not alias x. */
void ss_rmsnorm_ref(const uint16_t *x, const uint16_t *w, int64_t t, int64_t n, float eps,
                    uint16_t *y);

/* BitNet ternary absmean per tensor. w: (n, k) of dtype wdt (BF16/F16/F32);
 * q: (n, k) of qdt (I8 or F8_E4M3) with values exactly -1/0/+1; scale[0] = s. */
ss_status ss_quant_weight_ternary(const char *name, ss_dtype wdt, const void *w,
                                  int64_t n, int64_t k, ss_dtype qdt, void *q,
                                  float *scale);

/* Per-channel absmax. scale: (n). */
ss_status ss_quant_weight_per_channel(const char *name, ss_dtype wdt, const void *w,
                                      int64_t n, int64_t k, ss_dtype qdt, void *q,
                                      float *scale);

/* Checks a weight tensor for NaN/Inf; SS_EINVAL names `name`, row and column. */
ss_status ss_check_finite(const char *name, ss_dtype wdt, const void *w, int64_t n,
                          int64_t k);
/* The first NaN / Inf among n elements of dtype t (any dtype; integers have
 * none): returns 2 for NaN, 1 for Inf (*at = its index), 0 when all are finite. */
int ss_find_nonfinite(ss_dtype t, const void *data, int64_t n, int64_t *at);

#ifdef __cplusplus
}
#endif
#endif
