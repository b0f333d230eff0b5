/* Per-token activation quantization, with or without lifting (SPEC §4): the
 * CPU reference the fused CUDA quant(+slide) kernels are checked against.
 *
 * Lifting is quantize-then-gather: each slid column quantizes its source
 * input again (x is read ~e times), which gives q'[j] == q[src(j)] bit for bit
 * without a scratch row.
 */
#include "core/error.h"
#include "quant_internal.h"
#include "sparse/geometry.h"
#include "slidesparse/quant.h"

/* a = max(max|x|, 1e-12f). NaN is ignored by the comparison, as fmaxf would. */
static float row_absmax(const uint16_t *x, int64_t k) {
    float a = 0.0f;
    for (int64_t i = 0; i < k; i++) {
        float v = fabsf(ss_bf16_to_f32_inline(x[i]));
        if (v > a)
            a = v;
    }
    return a > SS_QUANT_ABSMAX_FLOOR ? a : SS_QUANT_ABSMAX_FLOOR;
}

/* One row, typed by the output element and its quantizer. g == NULL: no
 * lifting (q[j] = quant(x[j]) for j < k). Columns past the written width are
 * zero up to k_out. */
#define DEFINE_QUANT_ROW(NAME, T, QUANT)                                                  \
    static void NAME(const uint16_t *x, int64_t k, const ss_slide_geom *g, float inv,     \
                     int64_t k_out, T *q) {                                               \
        int64_t j = 0;                                                                    \
        if (!g) {                                                                         \
            for (; j < k; j++)                                                            \
                q[j] = QUANT(ss_bf16_to_f32_inline(x[j]), inv);                           \
        } else {                                                                          \
            for (int64_t gi = 0; gi < g->groups; gi++)                                    \
                for (int64_t src = gi * g->l, w = 0; w < g->wins; w++, src += 2)          \
                    for (int lane = 0; lane < 4; lane++, j++)                             \
                        q[j] = src + lane < k                                             \
                                   ? QUANT(ss_bf16_to_f32_inline(x[src + lane]), inv)     \
                                   : 0;                                                   \
        }                                                                                 \
        for (; j < k_out; j++)                                                            \
            q[j] = 0;                                                                     \
    }

DEFINE_QUANT_ROW(quant_row_i8, int8_t, ss_quant_i8)
DEFINE_QUANT_ROW(quant_row_e4m3, uint8_t, ss_quant_e4m3)

ss_status ss_quant_act_ref(ss_dtype qdt, const uint16_t *x, int64_t m, int64_t k, ss_pattern p,
                           int64_t k_out, void *q, float *scale) {
    if (qdt != SS_DTYPE_I8 && qdt != SS_DTYPE_F8_E4M3)
        return ss_fail(SS_EINVAL, "quant act: output dtype %s: expected I8 or F8_E4M3",
                       ss_dtype_name(qdt));
    if (m < 0 || k < 0 || ((!x || !q || !scale) && m > 0))
        return ss_fail(SS_EINVAL, "quant act: expected (m, k) buffers with m, k >= 0, found (%lld, %lld)",
                       (long long)m, (long long)k);
    ss_slide_geom geom, *g = NULL;
    int64_t width = ss_ceil32(k);
    if (!ss_pattern_is_dense(p)) {
        SS_TRY(ss_slide_geom_init("quant act", p, k, &geom));
        g = &geom;
        width = geom.kslid;
    } else {
        SS_TRY(ss_pattern_check("quant act", p));
    }
    if (k_out < width)
        return ss_fail(SS_EINVAL, "quant act: K=%lld: expected k_out >= %lld, found %lld",
                       (long long)k, (long long)width, (long long)k_out);
    const float qmax = ss_quant_qmax(qdt);
#pragma omp parallel for schedule(static) if (m * k >= SS_PAR_MIN_ELEMS)
    for (int64_t row = 0; row < m; row++) {
        const uint16_t *xr = x + row * k;
        float a = row_absmax(xr, k);
        float inv = qmax / a;
        scale[row] = a / qmax;
        if (qdt == SS_DTYPE_I8)
            quant_row_i8(xr, k, g, inv, k_out, (int8_t *)q + row * k_out);
        else
            quant_row_e4m3(xr, k, g, inv, k_out, (uint8_t *)q + row * k_out);
    }
    return SS_OK;
}
