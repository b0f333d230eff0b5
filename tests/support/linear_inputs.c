#include "linear_inputs.h"

const char *const ss_test_patterns[SS_TEST_NPAT] = {"2_4",  "2_6",  "2_8",  "2_10",
                                                    "2_12", "2_14", "2_16", "2_inf"};

void *ss_test_random_weight(ss_rng *r, ss_dtype t, int64_t n, int64_t k) {
    size_t es = ss_dtype_size(t);
    uint8_t *w = malloc((size_t)(n * k) * es);
    for (int64_t i = 0; i < n * k; i++) {
        if (t == SS_DTYPE_BF16) {
            ((uint16_t *)w)[i] = ss_f32_to_bf16((float)ss_rng_normal(r));
            continue;
        }
        uint8_t b = (uint8_t)ss_rng_below(r, 256);
        if (t == SS_DTYPE_F8_E4M3 && (b & 0x7F) == 0x7F)
            b = 0x3F;
        if (ss_rng_below(r, 10) == 0)
            b = 0;
        w[i] = b;
    }
    return w;
}

uint16_t *ss_test_random_bf16(ss_rng *r, int64_t count, double scale) {
    uint16_t *x = malloc((size_t)count * sizeof *x);
    for (int64_t i = 0; i < count; i++)
        x[i] = ss_f32_to_bf16((float)(ss_rng_normal(r) * scale));
    return x;
}

float *ss_test_random_scales(ss_rng *r, int64_t n) {
    float *s = malloc((size_t)n * sizeof *s);
    for (int64_t i = 0; i < n; i++)
        s[i] = (float)(0.001 + 0.02 * (double)ss_rng_below(r, 1000) / 1000.0);
    return s;
}

void *ss_test_random_slid_weight(ss_rng *r, ss_dtype t, int64_t n, int64_t k, ss_pattern p) {
    void *w = ss_test_random_weight(r, t, n, k);
    if (ss_pattern_is_dense(p))
        return w;
    assert_ok(ss_prune(t, w, n, k, p, SS_DTYPE_F32, NULL));
    void *slid = malloc((size_t)(n * ss_slid_k(p, k)) * ss_dtype_size(t));
    assert_non_null(slid);
    assert_ok(ss_slide(t, w, n, k, p, slid));
    free(w);
    return slid;
}
