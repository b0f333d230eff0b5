/* The RMSNorm reference (slidesparse/quant.h): here, below both the engine
 * (its norm op) and the linear layer (the norm fused into the quant stage),
 * so that the two share one spelling of the arithmetic. */
#include "slidesparse/quant.h"

#include <math.h>

#include "core/dtype_inline.h"

void ss_rmsnorm_ref(const uint16_t *x, const uint16_t *w, int64_t t, int64_t n, float eps,
                    uint16_t *y) {
#pragma omp parallel for schedule(static) if (t * n >= ((int64_t)1 << 16))
    for (int64_t r = 0; r < t; r++) {
        const uint16_t *xr = x + r * n; // (n)
        uint16_t *yr = y + r * n;       // (n)
        float ss = 0.0f;
        for (int64_t j = 0; j < n; j++) {
            float v = ss_bf16_to_f32_inline(xr[j]);
            ss += v * v;
        }
        float inv = 1.0f / sqrtf(ss / (float)n + eps);
        for (int64_t j = 0; j < n; j++) {
            float h = ss_bf16_to_f32_inline(ss_f32_to_bf16_inline(ss_bf16_to_f32_inline(xr[j]) * inv));
            yr[j] = ss_f32_to_bf16_inline(ss_bf16_to_f32_inline(w[j]) * h);
        }
    }
}
