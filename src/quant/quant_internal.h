/* Internal: the one-value quantizers shared by the activation and weight
 * quantizers (quant.h spells out the formulas; the CUDA kernels must match
 * them bit for bit, so every float operation here is a single IEEE op). */
#ifndef SS_QUANT_INTERNAL_H
#define SS_QUANT_INTERNAL_H

#include "core/dtype_inline.h"
#include "slidesparse/core.h"

#include <math.h>

#define SS_QUANT_I8_MAX 127.0f
#define SS_QUANT_E4M3_MAX 448.0f
#define SS_QUANT_ABSMAX_FLOOR 1e-12f

/* q = clamp(rintf(x * inv), -128, 127); rintf rounds half to even in the
 * default rounding mode. */
static inline int8_t ss_quant_i8(float x, float inv) {
    float r = rintf(x * inv);
    if (r > 127.0f)
        r = 127.0f;
    if (r < -128.0f)
        r = -128.0f;
    return (int8_t)r;
}

/* q = e4m3(clamp(x * inv, -448, 448)). */
static inline uint8_t ss_quant_e4m3(float x, float inv) {
    float v = x * inv;
    if (v > SS_QUANT_E4M3_MAX)
        v = SS_QUANT_E4M3_MAX;
    if (v < -SS_QUANT_E4M3_MAX)
        v = -SS_QUANT_E4M3_MAX;
    return ss_f32_to_e4m3_inline(v);
}

/* The largest representable value of a quantized dtype (127 or 448). */
static inline float ss_quant_qmax(ss_dtype qdt) {
    return qdt == SS_DTYPE_I8 ? SS_QUANT_I8_MAX : SS_QUANT_E4M3_MAX;
}

#endif
