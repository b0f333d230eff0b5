/* Quantization (SPEC §4, §6) against straightforward references written here:
 * the float formulas where rounding matters (x * inv in float, then a
 * round-half-even implemented in double, and an e4m3 encoder that searches all
 * 256 codes), double precision where it does not. */
#include "support/ss_test.h"

#include <math.h>
#include <string.h>

// --- references ----------------------------------------------------------------------------

/* Round half to even, without rintf. */
static double round_even(double v) {
    double f = floor(v), d = v - f;
    if (d > 0.5)
        return f + 1;
    if (d < 0.5)
        return f;
    return fmod(f, 2.0) == 0.0 ? f : f + 1;
}

/* e4m3fn value of a code, from the format definition. */
static double e4m3_value(int c) {
    int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
    double v = e ? ldexp(1.0 + m / 8.0, e - 7) : ldexp(m / 8.0, -6);
    return s ? -v : v;
}

/* Nearest e4m3 code to v (|v| <= 448), ties to the even mantissa. */
static uint8_t e4m3_nearest(double v) {
    int best = 0;
    double bd = INFINITY;
    for (int c = 0; c < 256; c++) {
        if ((c & 0x7F) == 0x7F)
            continue; /* NaN */
        double d = fabs(e4m3_value(c) - v);
        if (d < bd || (d == bd && (c & 1) == 0 && (best & 1) == 1)) {
            bd = d;
            best = c;
        }
    }
    if (e4m3_value(best) == 0.0)
        best = v < 0 || (v == 0 && signbit(v)) ? 0x80 : 0x00;
    return (uint8_t)best;
}

static float bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* One token row, unlifted: q (k), scale. */
static float ref_quant_row(ss_dtype qdt, const uint16_t *x, int64_t k, void *q) {
    double amax = 0;
    for (int64_t i = 0; i < k; i++)
        amax = fmax(amax, fabs((double)bf16(x[i])));
    float a = amax > 1e-12 ? (float)amax : 1e-12f;
    float qmax = qdt == SS_DTYPE_I8 ? 127.0f : 448.0f;
    float inv = qmax / a;
    for (int64_t i = 0; i < k; i++) {
        float v = bf16(x[i]) * inv;
        if (qdt == SS_DTYPE_I8) {
            double r = round_even(v);
            ((int8_t *)q)[i] = (int8_t)(r > 127 ? 127 : r < -128 ? -128 : r);
        } else {
            double c = v > 448 ? 448 : v < -448 ? -448 : v;
            ((uint8_t *)q)[i] = e4m3_nearest(c);
        }
    }
    return a / qmax;
}

static void random_bf16(uint16_t *x, int64_t count, double sd, ss_rng *r) {
    for (int64_t i = 0; i < count; i++)
        x[i] = ss_f32_to_bf16((float)(ss_rng_normal(r) * sd));
}

/* FP8 codes equal up to the sign of zero. */
static int same_code(ss_dtype qdt, uint8_t a, uint8_t b) {
    return a == b || (qdt == SS_DTYPE_F8_E4M3 && (a & 0x7F) == 0 && (b & 0x7F) == 0);
}

// --- activations ---------------------------------------------------------------------------

static void test_act_vs_reference(void **state) {
    (void)state;
    ss_rng rng = {17};
    const ss_dtype qdts[] = {SS_DTYPE_I8, SS_DTYPE_F8_E4M3};
    const int64_t ks[] = {1, 31, 100, 2560};
    for (int d = 0; d < 2; d++)
        for (size_t a = 0; a < sizeof ks / sizeof ks[0]; a++) {
            int64_t m = 6, k = ks[a], kout = ss_ceil32(k);
            uint16_t *x = malloc((size_t)(m * k) * 2);
            uint8_t *q = malloc((size_t)(m * kout)), *want = malloc((size_t)k);
            float *sc = malloc((size_t)m * 4);
            random_bf16(x, m * k, a % 2 ? 3.0 : 0.01, &rng);
            if (k > 1)
                memset(x + 2 * k, 0, (size_t)k * 2); /* an all-zero token: a = 1e-12 */
            assert_ok(ss_quant_act_ref(qdts[d], x, m, k, SS_PATTERN_DENSE, kout, q, sc));
            for (int64_t r = 0; r < m; r++) {
                float s = ref_quant_row(qdts[d], x + r * k, k, want);
                assert_memory_equal(&s, &sc[r], 4);
                for (int64_t i = 0; i < k; i++)
                    if (!same_code(qdts[d], q[r * kout + i], want[i]))
                        fail_msg("%s k=%lld [%lld,%lld]: x=%g q=0x%02x, reference 0x%02x",
                                 ss_dtype_name(qdts[d]), (long long)k, (long long)r, (long long)i,
                                 bf16(x[r * k + i]), q[r * kout + i], want[i]);
                for (int64_t i = k; i < kout; i++)
                    assert_int_equal(q[r * kout + i], 0);
            }
            free(x);
            free(q);
            free(want);
            free(sc);
        }
}

/* q'[j] = q[src(j)], zero where src = -1, tail zero, same scale. */
static void test_act_lifted(void **state) {
    (void)state;
    ss_rng rng = {23};
    const int64_t ks[] = {5, 64, 100, 2560};
    for (int d = 0; d < 2; d++) {
        ss_dtype qdt = d ? SS_DTYPE_F8_E4M3 : SS_DTYPE_I8;
        for (size_t a = 0; a < sizeof ks / sizeof ks[0]; a++)
            for (int l = 2; l <= 16; l += 2) {
                ss_pattern p = l == 2 ? SS_PATTERN_INF : (ss_pattern){2, l};
                int64_t m = 4, k = ks[a], kd = ss_ceil32(k), ks2 = ss_slid_k(p, k) + 7;
                uint16_t *x = malloc((size_t)(m * k) * 2);
                uint8_t *q = malloc((size_t)(m * kd)), *ql = malloc((size_t)(m * ks2));
                float *s = malloc((size_t)m * 4), *sl = malloc((size_t)m * 4);
                int32_t *map = malloc((size_t)ks2 * 4);
                random_bf16(x, m * k, 1.0, &rng);
                memset(ql, 0x55, (size_t)(m * ks2));
                assert_ok(ss_quant_act_ref(qdt, x, m, k, SS_PATTERN_DENSE, kd, q, s));
                assert_ok(ss_quant_act_ref(qdt, x, m, k, p, ks2, ql, sl));
                assert_ok(ss_lift_map(p, k, map));
                assert_memory_equal(s, sl, (size_t)m * 4);
                for (int64_t r = 0; r < m; r++)
                    for (int64_t j = 0; j < ks2; j++) {
                        int64_t src = j < ks2 - 7 ? map[j] : -1;
                        uint8_t want = src >= 0 ? q[r * kd + src] : 0;
                        if (ql[r * ks2 + j] != want)
                            fail_msg("l=%d k=%lld [%lld,%lld]: q'=0x%02x, q[src=%lld]=0x%02x", l,
                                     (long long)k, (long long)r, (long long)j, ql[r * ks2 + j],
                                     (long long)src, want);
                    }
                free(x);
                free(q);
                free(ql);
                free(s);
                free(sl);
                free(map);
            }
    }
}

/* x * inv exactly at .5: a = 127 gives inv = 1. */
static void test_rounding_ties(void **state) {
    (void)state;
    const float xs[] = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, -3.5f, 4.5f};
    const int8_t want[] = {127, 0, 2, 2, 0, -2, -2, 126, -4, 4};
    uint16_t x[10];
    for (int i = 0; i < 10; i++)
        x[i] = ss_f32_to_bf16(xs[i]);
    int8_t q[32];
    float s;
    assert_ok(ss_quant_act_ref(SS_DTYPE_I8, x, 1, 10, SS_PATTERN_DENSE, 32, q, &s));
    for (int i = 0; i < 10; i++)
        assert_int_equal(q[i], want[i]);
    assert_true(s == 1.0f);
    /* -128 is never produced from a symmetric absmax (-a * 127/a rounds to -127) */
    x[0] = ss_f32_to_bf16(-127.0f);
    assert_ok(ss_quant_act_ref(SS_DTYPE_I8, x, 1, 10, SS_PATTERN_DENSE, 32, q, &s));
    assert_int_equal(q[0], -127);
}

/* FP8: the absmax element lands on +-448 (code 0x7E / 0xFE) even when x*inv
 * rounds past 448, and no code decodes beyond 448. */
static void test_fp8_saturation(void **state) {
    (void)state;
    ss_rng rng = {29};
    const int64_t m = 200, k = 64;
    uint16_t *x = malloc((size_t)(m * k) * 2);
    uint8_t *q = malloc((size_t)(m * k));
    float *s = malloc((size_t)m * 4);
    random_bf16(x, m * k, 7.0, &rng);
    assert_ok(ss_quant_act_ref(SS_DTYPE_F8_E4M3, x, m, k, SS_PATTERN_DENSE, k, q, s));
    for (int64_t r = 0; r < m; r++) {
        int64_t imax = 0;
        for (int64_t i = 0; i < k; i++) {
            if (fabsf(bf16(x[r * k + i])) > fabsf(bf16(x[r * k + imax])))
                imax = i;
            assert_true(fabs(e4m3_value(q[r * k + i])) <= 448.0);
            assert_true((q[r * k + i] & 0x7F) != 0x7F);
        }
        assert_int_equal(q[r * k + imax] & 0x7F, 0x7E);
    }
    free(x);
    free(q);
    free(s);
}

static void test_act_args(void **state) {
    (void)state;
    uint16_t x[8] = {0};
    uint8_t q[64];
    float s;
    assert_fails(ss_quant_act_ref(SS_DTYPE_BF16, x, 1, 8, SS_PATTERN_DENSE, 32, q, &s), SS_EINVAL,
                 "I8");
    assert_fails(ss_quant_act_ref(SS_DTYPE_I8, x, 1, 8, (ss_pattern){2, 8}, 31, q, &s), SS_EINVAL,
                 "k_out");
    assert_fails(ss_quant_act_ref(SS_DTYPE_I8, x, 1, 8, SS_PATTERN_DENSE, 8, q, &s), SS_EINVAL,
                 "k_out");
}

// --- weights -------------------------------------------------------------------------------

static void test_ternary(void **state) {
    (void)state;
    ss_rng rng = {31};
    const int64_t n = 48, k = 200;
    uint16_t *w = malloc((size_t)(n * k) * 2);
    int8_t *q = malloc((size_t)(n * k));
    uint8_t *q8 = malloc((size_t)(n * k));
    random_bf16(w, n * k, 0.02, &rng);
    float s, s8;
    assert_ok(ss_quant_weight_ternary("t.weight", SS_DTYPE_BF16, w, n, k, SS_DTYPE_I8, q, &s));
    assert_ok(ss_quant_weight_ternary("t.weight", SS_DTYPE_BF16, w, n, k, SS_DTYPE_F8_E4M3, q8, &s8));
    double sum = 0;
    for (int64_t i = 0; i < n * k; i++)
        sum += fabs((double)bf16(w[i]));
    float want = (float)(sum / (double)(n * k));
    assert_true(s == want);
    assert_true(s8 == want);
    int seen[3] = {0};
    for (int64_t i = 0; i < n * k; i++) {
        double r = round_even((double)(bf16(w[i]) / want));
        int t = r > 1 ? 1 : r < -1 ? -1 : (int)r;
        assert_int_equal(q[i], t);
        assert_true(e4m3_value(q8[i]) == (double)t);
        seen[t + 1]++;
    }
    assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
    /* all zeros: scale 0, divisor floored at 1e-5, all T = 0 */
    memset(w, 0, (size_t)(n * k) * 2);
    assert_ok(ss_quant_weight_ternary("z", SS_DTYPE_BF16, w, n, k, SS_DTYPE_I8, q, &s));
    assert_true(s == 0.0f);
    for (int64_t i = 0; i < n * k; i++)
        assert_int_equal(q[i], 0);
    free(w);
    free(q);
    free(q8);
}

static void test_per_channel(void **state) {
    (void)state;
    ss_rng rng = {37};
    const int64_t n = 40, k = 300;
    float *w = malloc((size_t)(n * k) * 4);
    int8_t *q = malloc((size_t)(n * k));
    uint8_t *q8 = malloc((size_t)(n * k));
    float *s = malloc((size_t)n * 4), *s8 = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n * k; i++)
        w[i] = (float)(ss_rng_normal(&rng) * (1 + i / k)); /* channels of different range */
    assert_ok(ss_quant_weight_per_channel("p.weight", SS_DTYPE_F32, w, n, k, SS_DTYPE_I8, q, s));
    assert_ok(ss_quant_weight_per_channel("p.weight", SS_DTYPE_F32, w, n, k, SS_DTYPE_F8_E4M3, q8, s8));
    for (int64_t r = 0; r < n; r++) {
        double amax = 0;
        for (int64_t i = 0; i < k; i++)
            amax = fmax(amax, fabs(w[r * k + i]));
        assert_true(s[r] == (float)amax / 127.0f);
        assert_true(s8[r] == (float)amax / 448.0f);
        for (int64_t i = 0; i < k; i++) {
            double v = w[r * k + i];
            double err = fabs(v - q[r * k + i] * (double)s[r]);
            if (err > s[r] * 0.5 * (1 + 1e-5))
                fail_msg("int8 [%lld,%lld]: |w - q*s| = %g > s/2 = %g", (long long)r, (long long)i,
                         err, s[r] * 0.5);
            /* e4m3: half an ulp, 2^-4 relative; 2^-10 absolute near zero */
            double e8 = fabs(v - e4m3_value(q8[r * k + i]) * (double)s8[r]);
            assert_true(e8 <= fmax(fabs(v) * 0.0625, s8[r] * 0x1p-10) * (1 + 1e-5));
        }
    }
    free(w);
    free(q);
    free(q8);
    free(s);
    free(s8);
}

static void test_nonfinite_rejected(void **state) {
    (void)state;
    uint16_t w[4 * 5];
    int8_t q[20];
    float s[4];
    for (int i = 0; i < 20; i++)
        w[i] = ss_f32_to_bf16(0.5f);
    w[2 * 5 + 3] = 0x7FC0; /* NaN */
    assert_fails(ss_quant_weight_per_channel("model.layers.3.mlp.up_proj.weight", SS_DTYPE_BF16, w,
                                              4, 5, SS_DTYPE_I8, q, s),
                 SS_EINVAL, "model.layers.3.mlp.up_proj.weight");
    assert_non_null(strstr(ss_last_error(), "[2, 3]"));
    assert_non_null(strstr(ss_last_error(), "NaN"));
    w[2 * 5 + 3] = ss_f32_to_bf16(0.5f);
    w[1 * 5 + 0] = 0xFF80; /* -Inf */
    assert_fails(ss_quant_weight_ternary("q_proj", SS_DTYPE_BF16, w, 4, 5, SS_DTYPE_I8, q, s),
                 SS_EINVAL, "[1, 0]");
    assert_non_null(strstr(ss_last_error(), "q_proj"));
    assert_non_null(strstr(ss_last_error(), "Inf"));
    float f[3] = {1.0f, NAN, 2.0f};
    assert_fails(ss_check_finite("f", SS_DTYPE_F32, f, 1, 3), SS_EINVAL, "[0, 1]");
    f[1] = 0.0f;
    assert_ok(ss_check_finite("f", SS_DTYPE_F32, f, 1, 3));
    /* any dtype, flat: what prep checks copied tensors with, chunk by chunk */
    int64_t at = -1;
    assert_int_equal(ss_find_nonfinite(SS_DTYPE_F32, f, 3, &at), 0);
    w[1 * 5 + 0] = ss_f32_to_bf16(0.5f);
    w[17] = 0x7F80; /* +Inf */
    assert_int_equal(ss_find_nonfinite(SS_DTYPE_BF16, w, 20, &at), 1);
    assert_int_equal(at, 17);
    assert_int_equal(ss_find_nonfinite(SS_DTYPE_BF16, w, 17, &at), 0);
    uint8_t e4[4] = {0x10, 0x7E, 0xFF, 0x00}; /* 448 is finite, 0xFF is -NaN */
    assert_int_equal(ss_find_nonfinite(SS_DTYPE_F8_E4M3, e4, 4, &at), 2);
    assert_int_equal(at, 2);
    assert_int_equal(ss_find_nonfinite(SS_DTYPE_I8, e4, 4, &at), 0);
    assert_fails(ss_quant_weight_per_channel("i", SS_DTYPE_I8, q, 1, 3, SS_DTYPE_I8, q, s),
                 SS_EINVAL, "BF16");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_act_vs_reference), cmocka_unit_test(test_act_lifted),
        cmocka_unit_test(test_rounding_ties),    cmocka_unit_test(test_fp8_saturation),
        cmocka_unit_test(test_act_args),         cmocka_unit_test(test_ternary),
        cmocka_unit_test(test_per_channel),      cmocka_unit_test(test_nonfinite_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
