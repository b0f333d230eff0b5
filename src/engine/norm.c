/* RMSNorm and the residual add (CPU). Float accumulation; the rounding points
 * follow HF's BitNetRMSNorm / LlamaRMSNorm: normalize in float, round to the
 * activation dtype, then multiply by the weight and round again. */
#include "engine/ops.h"

#include <math.h>

#include "core/dtype_inline.h"
#include "slidesparse/quant.h"

void ss_rmsnorm_cpu(const uint16_t *x, const uint16_t *w, int64_t t, int64_t n, float eps,
                    uint16_t *y) {
    ss_rmsnorm_ref(x, w, t, n, eps, y); /* one spelling, shared with the fused quant stage */
}

void ss_residual_add_cpu(uint16_t *x, const uint16_t *d, int64_t t, int64_t n) {
    int64_t total = t * n;
    for (int64_t i = 0; i < total; i++)
        x[i] = ss_f32_to_bf16_inline(ss_bf16_to_f32_inline(x[i]) + ss_bf16_to_f32_inline(d[i]));
}
