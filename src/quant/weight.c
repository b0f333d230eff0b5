/* Weight quantization (SPEC §6): BitNet ternary absmean per tensor, absmax
 * per output channel, and the NaN/Inf check that guards both. */
#include "core/error.h"
#include "quant_internal.h"
#include "sparse/geometry.h"
#include "slidesparse/quant.h"

#include <stdlib.h>

#define SS_TERNARY_SCALE_FLOOR 1e-5f

// --- element loads -------------------------------------------------------------------------

static inline float load_bf16(const void *w, int64_t i) {
    return ss_bf16_to_f32_inline(((const uint16_t *)w)[i]);
}
static inline float load_f16(const void *w, int64_t i) {
    return ss_f16_to_f32_inline(((const uint16_t *)w)[i]);
}
static inline float load_f32(const void *w, int64_t i) { return ((const float *)w)[i]; }

static ss_status check_float_weight(const char *what, const char *name, ss_dtype wdt, ss_dtype qdt,
                                    const void *w, int64_t n, int64_t k, const void *q,
                                    const float *scale) {
    if (wdt != SS_DTYPE_BF16 && wdt != SS_DTYPE_F16 && wdt != SS_DTYPE_F32)
        return ss_fail(SS_EINVAL, "%s: tensor '%s': expected BF16, F16 or F32 weights, found %s", what,
                       name, ss_dtype_name(wdt));
    if (qdt != SS_DTYPE_I8 && qdt != SS_DTYPE_F8_E4M3)
        return ss_fail(SS_EINVAL, "%s: tensor '%s': expected output dtype I8 or F8_E4M3, found %s",
                       what, name, ss_dtype_name(qdt));
    if (n < 0 || k < 0 || ((!w || !q || !scale) && n * k > 0))
        return ss_fail(SS_EINVAL, "%s: tensor '%s': expected (n, k) buffers with n, k >= 0, found (%lld, %lld)",
                       what, name, (long long)n, (long long)k);
    return ss_check_finite(name, wdt, w, n, k);
}

// --- finiteness -----------------------------------------------------------------------------

/* 1 when element i is NaN or Inf (2 for NaN, so the message can say which). */
static int nonfinite(ss_dtype t, const void *w, int64_t i) {
    uint32_t u;
    switch (t) {
    case SS_DTYPE_BF16: u = ((const uint16_t *)w)[i]; return (u & 0x7F80u) != 0x7F80u ? 0 : (u & 0x7Fu) ? 2 : 1;
    case SS_DTYPE_F16: u = ((const uint16_t *)w)[i]; return (u & 0x7C00u) != 0x7C00u ? 0 : (u & 0x3FFu) ? 2 : 1;
    case SS_DTYPE_F32: u = ((const uint32_t *)w)[i]; return (u & 0x7F800000u) != 0x7F800000u ? 0 : (u & 0x7FFFFFu) ? 2 : 1;
    case SS_DTYPE_F8_E4M3: return (((const uint8_t *)w)[i] & 0x7Fu) == 0x7Fu ? 2 : 0;
    case SS_DTYPE_F8_E5M2: u = ((const uint8_t *)w)[i]; return (u & 0x7Cu) != 0x7Cu ? 0 : (u & 0x3u) ? 2 : 1;
    case SS_DTYPE_F64: {
        double d = ((const double *)w)[i];
        return isnan(d) ? 2 : isinf(d) ? 1 : 0;
    }
    default: return 0;
    }
}

static int64_t first_nonfinite_col(ss_dtype t, const void *w, int64_t row, int64_t k) {
    for (int64_t c = 0; c < k; c++)
        if (nonfinite(t, w, row * k + c))
            return c;
    return -1;
}

int ss_find_nonfinite(ss_dtype t, const void *data, int64_t n, int64_t *at) {
    int64_t i = n > 0 ? first_nonfinite_col(t, data, 0, n) : -1;
    if (i < 0)
        return 0;
    *at = i;
    return nonfinite(t, data, i);
}

ss_status ss_check_finite(const char *name, ss_dtype wdt, const void *w, int64_t n, int64_t k) {
    if (!name)
        name = "?";
    if (n < 0 || k < 0 || (!w && n * k > 0))
        return ss_fail(SS_EINVAL, "check finite: tensor '%s': expected an (n, k) buffer, found (%lld, %lld)",
                       name, (long long)n, (long long)k);
    int64_t first = n;
#pragma omp parallel for schedule(static) reduction(min : first) if (n * k >= SS_PAR_MIN_ELEMS)
    for (int64_t row = 0; row < n; row++)
        if (row < first && first_nonfinite_col(wdt, w, row, k) >= 0)
            first = row;
    if (first == n)
        return SS_OK;
    int64_t col = first_nonfinite_col(wdt, w, first, k);
    return ss_fail(SS_EINVAL, "tensor '%s': expected finite values, found %s at [%lld, %lld]", name,
                   nonfinite(wdt, w, first * k + col) == 2 ? "NaN" : "Inf", (long long)first,
                   (long long)col);
}

// --- ternary ------------------------------------------------------------------------------------

#define DEFINE_ABS_SUM(NAME, LOAD)                                  \
    static double NAME(const void *w, int64_t off, int64_t k) {     \
        double s = 0.0;                                             \
        for (int64_t i = 0; i < k; i++)                             \
            s += fabs((double)LOAD(w, off + i));                    \
        return s;                                                   \
    }
DEFINE_ABS_SUM(abs_sum_bf16, load_bf16)
DEFINE_ABS_SUM(abs_sum_f16, load_f16)
DEFINE_ABS_SUM(abs_sum_f32, load_f32)

/* T = clamp(rintf(w / d), -1, 1), written as I8 or as the e4m3 code of T. */
#define DEFINE_TERNARY_ROW(NAME, LOAD)                                                         \
    static void NAME(const void *w, int64_t off, int64_t k, float d, ss_dtype qdt, void *q) {  \
        const uint8_t e4m3[3] = {ss_f32_to_e4m3_inline(-1.0f), 0, ss_f32_to_e4m3_inline(1.0f)}; \
        for (int64_t i = 0; i < k; i++) {                                                      \
            float r = rintf(LOAD(w, off + i) / d);                                             \
            int t = r > 1.0f ? 1 : r < -1.0f ? -1 : (int)r;                                    \
            if (qdt == SS_DTYPE_I8)                                                            \
                ((int8_t *)q)[off + i] = (int8_t)t;                                            \
            else                                                                               \
                ((uint8_t *)q)[off + i] = e4m3[t + 1];                                         \
        }                                                                                      \
    }
DEFINE_TERNARY_ROW(ternary_row_bf16, load_bf16)
DEFINE_TERNARY_ROW(ternary_row_f16, load_f16)
DEFINE_TERNARY_ROW(ternary_row_f32, load_f32)

ss_status ss_quant_weight_ternary(const char *name, ss_dtype wdt, const void *w, int64_t n,
                                  int64_t k, ss_dtype qdt, void *q, float *scale) {
    if (!name)
        name = "?";
    SS_TRY(check_float_weight("ternary", name, wdt, qdt, w, n, k, q, scale));
    /* Row sums, then their sum in row order: the mean does not depend on the
     * thread count. */
    double *rows = malloc((size_t)(n > 0 ? n : 1) * sizeof *rows);
    if (!rows)
        return ss_fail(SS_ENOMEM, "ternary: tensor '%s': cannot allocate %lld row sums", name,
                       (long long)n);
#pragma omp parallel for schedule(static) if (n * k >= SS_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < n; r++)
        rows[r] = wdt == SS_DTYPE_BF16  ? abs_sum_bf16(w, r * k, k)
                  : wdt == SS_DTYPE_F16 ? abs_sum_f16(w, r * k, k)
                                        : abs_sum_f32(w, r * k, k);
    double total = 0.0;
    for (int64_t r = 0; r < n; r++)
        total += rows[r];
    free(rows);
    float s = n * k > 0 ? (float)(total / (double)(n * k)) : 0.0f;
    float d = s > SS_TERNARY_SCALE_FLOOR ? s : SS_TERNARY_SCALE_FLOOR;
#pragma omp parallel for schedule(static) if (n * k >= SS_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < n; r++) {
        if (wdt == SS_DTYPE_BF16)
            ternary_row_bf16(w, r * k, k, d, qdt, q);
        else if (wdt == SS_DTYPE_F16)
            ternary_row_f16(w, r * k, k, d, qdt, q);
        else
            ternary_row_f32(w, r * k, k, d, qdt, q);
    }
    scale[0] = s;
    return SS_OK;
}

// --- per channel ------------------------------------------------------------------------------

/* One output channel: absmax, then the activation quantizer with the row in
 * place of the token. Returns the scale. */
#define DEFINE_CHANNEL_ROW(NAME, LOAD)                                                  \
    static float NAME(const void *w, int64_t off, int64_t k, ss_dtype qdt, void *q) {   \
        float a = 0.0f, qmax = ss_quant_qmax(qdt);                                      \
        for (int64_t i = 0; i < k; i++) {                                               \
            float v = fabsf(LOAD(w, off + i));                                          \
            if (v > a)                                                                  \
                a = v;                                                                  \
        }                                                                               \
        if (!(a > SS_QUANT_ABSMAX_FLOOR))                                               \
            a = SS_QUANT_ABSMAX_FLOOR;                                                  \
        float inv = qmax / a;                                                           \
        if (qdt == SS_DTYPE_I8)                                                         \
            for (int64_t i = 0; i < k; i++)                                             \
                ((int8_t *)q)[off + i] = ss_quant_i8(LOAD(w, off + i), inv);            \
        else                                                                            \
            for (int64_t i = 0; i < k; i++)                                             \
                ((uint8_t *)q)[off + i] = ss_quant_e4m3(LOAD(w, off + i), inv);         \
        return a / qmax;                                                                \
    }
DEFINE_CHANNEL_ROW(channel_row_bf16, load_bf16)
DEFINE_CHANNEL_ROW(channel_row_f16, load_f16)
DEFINE_CHANNEL_ROW(channel_row_f32, load_f32)

ss_status ss_quant_weight_per_channel(const char *name, ss_dtype wdt, const void *w, int64_t n,
                                      int64_t k, ss_dtype qdt, void *q, float *scale) {
    if (!name)
        name = "?";
    SS_TRY(check_float_weight("per-channel quant", name, wdt, qdt, w, n, k, q, scale));
#pragma omp parallel for schedule(static) if (n * k >= SS_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < n; r++)
        scale[r] = wdt == SS_DTYPE_BF16  ? channel_row_bf16(w, r * k, k, qdt, q)
                   : wdt == SS_DTYPE_F16 ? channel_row_f16(w, r * k, k, qdt, q)
                                         : channel_row_f32(w, r * k, k, qdt, q);
    return SS_OK;
}
