/* The RMSNorm-fused linear entry points on the CPU backend
 * (ss_linear_forward_rmsnorm, ss_linear_quant_rmsnorm):
 *   - fused == ss_rmsnorm_cpu (the engine's norm) then the plain stage, bit for
 *     bit: quant (q, sa, padding rows) and whole forward, INT8 / FP8 / BF16
 *     weights, dense and several slid patterns, odd K, M = 1, 17 and more;
 *   - the norm really happens: rows scaled by a constant quantize alike, and
 *     gamma = 2 doubles the BF16 forward (exact);
 *   - argument checks (NULL gamma, bad eps) and m = 0.
 */
#include <math.h>
#include <string.h>

#include "engine/ops.h"
#include "support/linear_inputs.h"

static const char *const patterns[] = {"dense", "2_4", "2_6", "2_8", "2_12", "2_inf"};

static ss_linear *make_lin(ss_context *ctx, ss_rng *r, ss_dtype wdt, ss_pattern p, int64_t n,
                           int64_t k, void **wd_out, float **scale_out, uint16_t **bias_out) {
    void *wd = ss_test_random_weight(r, wdt, n, k);
    void *w = wd;
    if (!ss_pattern_is_dense(p)) {
        assert_ok(ss_prune(wdt, wd, n, k, p, SS_DTYPE_F32, NULL));
        w = malloc((size_t)(n * ss_slid_k(p, k)) * ss_dtype_size(wdt));
        assert_ok(ss_slide(wdt, wd, n, k, p, w));
        free(wd);
    }
    float *scale = wdt == SS_DTYPE_BF16 ? NULL : ss_test_random_scales(r, n);
    uint16_t *bias = ss_test_random_bf16(r, n, 1.0);
    ss_linear_desc d = ss_linear_desc_default("fused", n, k, wdt);
    d.pattern = p;
    ss_linear_weights lw = {.w = w, .w_scale = scale, .bias = bias};
    ss_linear *lin = NULL;
    assert_ok(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &lw, &lin));
    *wd_out = w;
    *scale_out = scale;
    *bias_out = bias;
    return lin;
}

/* Fused vs norm-then-plain for one (dtype, pattern, m, k). */
static void check_equal(ss_context *ctx, ss_rng *r, ss_dtype wdt, ss_pattern p, int64_t m,
                        int64_t k) {
    int64_t n = ss_rng_range(r, 1, 40);
    void *w;
    float *scale;
    uint16_t *bias;
    ss_linear *lin = make_lin(ctx, r, wdt, p, n, k, &w, &scale, &bias);
    uint16_t *x = ss_test_random_bf16(r, m * k, 2.0);
    uint16_t *gamma = ss_test_random_bf16(r, k, 1.0);
    uint16_t *h = malloc((size_t)(m * k) * 2);
    float eps = 1e-5f;
    ss_rmsnorm_cpu(x, gamma, m, k, eps, h);

    int64_t qc = ss_linear_q_cols(lin), mp = ss_linear_m_pad(m);
    size_t qbytes = (size_t)(mp * qc) * ss_dtype_size(wdt);
    uint8_t *q1 = malloc(qbytes), *q2 = malloc(qbytes);
    float *sa1 = malloc((size_t)mp * sizeof(float)), *sa2 = malloc((size_t)mp * sizeof(float));
    memset(q1, 0x55, qbytes);
    memset(q2, 0x33, qbytes);
    assert_ok(ss_linear_quant(lin, h, m, q1, sa1));
    assert_ok(ss_linear_quant_rmsnorm(lin, x, gamma, eps, m, q2, sa2));
    assert_memory_equal(q1, q2, qbytes);
    assert_memory_equal(sa1, sa2, (size_t)mp * sizeof(float));

    size_t ybytes = (size_t)(m * n) * 2;
    uint16_t *y1 = malloc(ybytes), *y2 = malloc(ybytes);
    assert_ok(ss_linear_forward(lin, h, m, y1));
    assert_ok(ss_linear_forward_rmsnorm(lin, x, gamma, eps, m, y2));
    if (memcmp(y1, y2, ybytes) != 0) {
        char pat[16];
        fail_msg("%s %s m=%lld k=%lld: fused forward != norm then forward", ss_dtype_name(wdt),
                 ss_pattern_format(p, pat, sizeof pat), (long long)m, (long long)k);
    }
    free(y1);
    free(y2);
    free(q1);
    free(q2);
    free(sa1);
    free(sa2);
    free(h);
    free(x);
    free(gamma);
    free(w);
    free(scale);
    free(bias);
    ss_linear_destroy(lin);
}

static void sweep(ss_dtype wdt, uint64_t seed) {
    ss_rng r = {seed};
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    static const int64_t ms[] = {1, 17, 40};
    for (size_t pi = 0; pi < sizeof patterns / sizeof *patterns; pi++) {
        ss_pattern p;
        assert_ok(ss_pattern_parse(patterns[pi], &p));
        if (wdt == SS_DTYPE_BF16 && !ss_pattern_is_dense(p))
            continue; /* BF16 weights run dense only */
        for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++) {
            /* odd K, K % 8 == 0, and a K of many groups */
            int64_t ks[3] = {2 * ss_rng_range(&r, 1, 60) + 1, 8 * ss_rng_range(&r, 1, 40),
                             ss_rng_range(&r, 300, 700)};
            for (int ki = 0; ki < 3; ki++)
                check_equal(ctx, &r, wdt, p, ms[mi], ks[ki]);
        }
    }
    ss_context_destroy(ctx);
}

static void test_int8(void **state) {
    (void)state;
    sweep(SS_DTYPE_I8, 101);
}
static void test_fp8(void **state) {
    (void)state;
    sweep(SS_DTYPE_F8_E4M3, 202);
}
static void test_bf16(void **state) {
    (void)state;
    sweep(SS_DTYPE_BF16, 303);
}

/* A row times 2^j has the same RMSNorm (powers of two scale exactly, eps = 0),
 * so its quantized row and scale equal the original's: the fused stage does
 * normalize. With gamma = 2 the normed row doubles exactly, so a BF16 linear
 * without bias doubles. */
static void test_norm_is_applied(void **state) {
    (void)state;
    ss_rng r = {7};
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    int64_t k = 96, n = 24;
    void *w;
    float *scale;
    uint16_t *bias;
    ss_linear *lin = make_lin(ctx, &r, SS_DTYPE_I8, (ss_pattern){2, 8}, n, k, &w, &scale, &bias);
    uint16_t *x = ss_test_random_bf16(&r, 2 * k, 1.0), gamma[96];
    for (int64_t j = 0; j < k; j++) {
        gamma[j] = ss_f32_to_bf16(1.0f);
        x[k + j] = ss_f32_to_bf16(ss_bf16_to_f32(x[j]) * 64.0f);
    }
    int64_t qc = ss_linear_q_cols(lin);
    int8_t *q = malloc((size_t)(16 * qc));
    float sa[16];
    assert_ok(ss_linear_quant_rmsnorm(lin, x, gamma, 0.0f, 2, q, sa));
    assert_memory_equal(q, q + qc, (size_t)qc);
    assert_true(sa[0] == sa[1]);
    free(q);
    free(w);
    free(scale);
    free(bias);
    ss_linear_destroy(lin);

    ss_linear_desc d = ss_linear_desc_default("bf16", n, k, SS_DTYPE_BF16);
    uint16_t *wb = ss_test_random_bf16(&r, n * k, 0.1);
    ss_linear_weights lw = {.w = wb};
    assert_ok(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &lw, &lin));
    uint16_t y1[24], y2[24], g2[96];
    for (int64_t j = 0; j < k; j++)
        g2[j] = ss_f32_to_bf16(2.0f);
    assert_ok(ss_linear_forward_rmsnorm(lin, x, gamma, 1e-5f, 1, y1));
    assert_ok(ss_linear_forward_rmsnorm(lin, x, g2, 1e-5f, 1, y2));
    for (int64_t j = 0; j < n; j++)
        assert_true(ss_bf16_to_f32(y2[j]) == 2.0f * ss_bf16_to_f32(y1[j]));
    free(wb);
    free(x);
    ss_linear_destroy(lin);
    ss_context_destroy(ctx);
}

static void test_rejects(void **state) {
    (void)state;
    ss_rng r = {9};
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    void *w;
    float *scale;
    uint16_t *bias;
    ss_linear *lin = make_lin(ctx, &r, SS_DTYPE_I8, SS_PATTERN_DENSE, 8, 32, &w, &scale, &bias);
    uint16_t x[32] = {0}, gamma[32] = {0}, y[8];
    int8_t q[16 * 32];
    float sa[16];
    assert_fails(ss_linear_forward_rmsnorm(lin, x, NULL, 1e-5f, 1, y), SS_EINVAL, "gamma");
    assert_fails(ss_linear_quant_rmsnorm(lin, x, NULL, 1e-5f, 1, q, sa), SS_EINVAL, "gamma");
    assert_fails(ss_linear_forward_rmsnorm(lin, x, gamma, -1.0f, 1, y), SS_EINVAL, "eps");
    assert_fails(ss_linear_forward_rmsnorm(lin, x, gamma, NAN, 1, y), SS_EINVAL, "eps");
    assert_fails(ss_linear_forward_rmsnorm(lin, x, gamma, INFINITY, 1, y), SS_EINVAL, "eps");
    assert_fails(ss_linear_quant_rmsnorm(lin, x, gamma, 1e-5f, 1, q, NULL), SS_EINVAL, "scale");
    assert_fails(ss_linear_forward_rmsnorm(NULL, x, gamma, 1e-5f, 1, y), SS_EINVAL, "NULL");
    assert_ok(ss_linear_forward_rmsnorm(lin, NULL, NULL, 1e-5f, 0, NULL));
    /* an all-zero row: inv = 1/sqrt(eps), h = 0, q = 0 */
    assert_ok(ss_linear_quant_rmsnorm(lin, x, gamma, 1e-5f, 1, q, sa));
    for (int j = 0; j < 32; j++)
        assert_int_equal(q[j], 0);
    free(w);
    free(scale);
    free(bias);
    ss_linear_destroy(lin);
    ss_context_destroy(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int8),
        cmocka_unit_test(test_fp8),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_norm_is_applied),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
