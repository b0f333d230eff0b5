/* The gated MLP activation (CPU): y = act(gate) * up, computed in float and
 * rounded once. BitNet uses relu(g)^2 (HF "relu2"), Llama/Qwen2 SiLU. */
#include "engine/ops.h"

#include <math.h>

#include "core/dtype_inline.h"

void ss_glu_cpu(const uint16_t *gu, int64_t t, int64_t i, int relu2, uint16_t *y) {
#pragma omp parallel for schedule(static) if (t * i >= SS_ENGINE_PAR_MIN_WORK)
    for (int64_t r = 0; r < t; r++) {
        const uint16_t *g = gu + r * 2 * i; // (i) gate, then (i) up
        const uint16_t *u = g + i;
        uint16_t *yr = y + r * i;
        for (int64_t j = 0; j < i; j++) {
            float gv = ss_bf16_to_f32_inline(g[j]);
            float a = relu2 ? (gv > 0.0f ? gv * gv : 0.0f) : gv / (1.0f + expf(-gv));
            yr[j] = ss_f32_to_bf16_inline(a * ss_bf16_to_f32_inline(u[j]));
        }
    }
}
