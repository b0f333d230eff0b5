/* RMSNorm and the residual add (CPU). Float accumulation; the rounding points
 * follow HF's BitNetRMSNorm / LlamaRMSNorm: normalize in float, round to the
 * activation dtype, then multiply by the weight and round again. */
#include "engine/ops.h"

#include <math.h>

#include "core/dtype_inline.h"

void ss_rmsnorm_cpu(const uint16_t *x, const uint16_t *w, int64_t t, int64_t n, float eps,
                    uint16_t *y) {
#pragma omp parallel for schedule(static) if (t * n >= SS_ENGINE_PAR_MIN_WORK)
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

void ss_residual_add_cpu(uint16_t *x, const uint16_t *d, int64_t t, int64_t n) {
    int64_t total = t * n;
    for (int64_t i = 0; i < total; i++)
        x[i] = ss_f32_to_bf16_inline(ss_bf16_to_f32_inline(x[i]) + ss_bf16_to_f32_inline(d[i]));
}
