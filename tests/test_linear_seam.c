/* ss_linear_residual_rmsnorm_quant on the CPU backend (the seam between two
 * projections: a's residual-fused dequant, then b's RMSNorm-fused quant):
 *   - equals ss_linear_dequant_residual(a) followed by
 *     ss_linear_quant_rmsnorm(b) bit for bit (resid, q, sq), including the
 *     padding rows; INT8 and FP8 activations for b, dense and slid b (the
 *     lift), per-channel and per-tensor scale of a, with and without bias,
 *     GEMM output I32 / F32 / BF16 of a, M = 1, 17, 40;
 *   - argument checks: two contexts, a's n != b's k, F32 output of a, NULL
 *     gamma / scale buffers, a negative eps; m = 0 touches nothing.
 */
#include <string.h>

#include "support/linear_inputs.h"

typedef struct {
    ss_dtype wdt;
    const char *pattern;
    ss_dtype gemm_out; /* SS_DTYPE_COUNT = default */
    int per_channel, bias;
} seam_lin;

/* A CPU linear (n, k) of c's kind; its host buffers go to bufs[0..2]. */
static ss_linear *make_lin(ss_context *ctx, ss_rng *r, const seam_lin *c, int64_t n, int64_t k,
                           void *bufs[3]) {
    ss_pattern p;
    assert_ok(ss_pattern_parse(c->pattern, &p));
    void *w = ss_test_random_slid_weight(r, c->wdt, n, k, p);
    float *scale = ss_test_random_scales(r, n);
    uint16_t *bias = c->bias ? ss_test_random_bf16(r, n, 1.0) : NULL;
    ss_linear_desc d = ss_linear_desc_default("seam", n, k, c->wdt);
    d.pattern = p;
    d.gemm_out = c->gemm_out;
    d.per_channel = c->per_channel;
    ss_linear_weights lw = {.w = w, .w_scale = scale, .bias = bias};
    ss_linear *lin = NULL;
    assert_ok(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &lw, &lin));
    bufs[0] = w, bufs[1] = scale, bufs[2] = bias;
    return lin;
}

static void check_seam(ss_context *ctx, ss_rng *r, const seam_lin *ca, const seam_lin *cb, int64_t m) {
    const int64_t h = 72, k = 40, nb = 48; /* a: (h, k), b: (nb, h) */
    void *ba[3], *bb[3];
    ss_linear *a = make_lin(ctx, r, ca, h, k, ba), *b = make_lin(ctx, r, cb, nb, h, bb);
    int64_t mp = ss_linear_m_pad(m), qc = ss_linear_q_cols(b);
    ss_dtype go = ss_linear_get_desc(a)->gemm_out;
    /* a's GEMM output from a real quant + GEMM, so d has a's dtype and range */
    uint16_t *x = ss_test_random_bf16(r, m * k, 2.0), *resid = ss_test_random_bf16(r, m * h, 4.0);
    uint16_t *gamma = ss_test_random_bf16(r, h, 1.0);
    void *qa = malloc((size_t)(mp * ss_linear_q_cols(a)) * ss_dtype_size(ca->wdt));
    void *d = malloc((size_t)(mp * h) * ss_dtype_size(go));
    float *sa = malloc((size_t)mp * sizeof(float));
    assert_ok(ss_linear_quant(a, x, m, qa, sa));
    assert_ok(ss_linear_gemm(a, qa, m, d));

    size_t qbytes = (size_t)(mp * qc) * ss_dtype_size(cb->wdt), rbytes = (size_t)(m * h) * 2;
    uint16_t *r1 = malloc(rbytes), *r2 = malloc(rbytes);
    void *q1 = malloc(qbytes), *q2 = malloc(qbytes);
    float *s1 = malloc((size_t)mp * sizeof(float)), *s2 = malloc((size_t)mp * sizeof(float));
    memcpy(r1, resid, rbytes);
    memcpy(r2, resid, rbytes);
    memset(q1, 0x5A, qbytes), memset(q2, 0xA5, qbytes); /* padding rows must be written */
    memset(s1, 0x5A, (size_t)mp * 4), memset(s2, 0xA5, (size_t)mp * 4);
    const float eps = 1e-5f;
    assert_ok(ss_linear_dequant_residual(a, d, sa, m, r1));
    assert_ok(ss_linear_quant_rmsnorm(b, r1, gamma, eps, m, q1, s1));
    assert_ok(ss_linear_residual_rmsnorm_quant(a, d, sa, m, r2, b, gamma, eps, q2, s2));
    char what[160];
    snprintf(what, sizeof what, "a %s %s gemm_out %s pc=%d bias=%d -> b %s %s, m=%lld",
             ss_dtype_name(ca->wdt), ca->pattern, ss_dtype_name(go), ca->per_channel, ca->bias,
             ss_dtype_name(cb->wdt), cb->pattern, (long long)m);
    if (memcmp(r1, r2, rbytes) != 0)
        fail_msg("%s: residual differs from the two-stage chain", what);
    if (memcmp(q1, q2, qbytes) != 0)
        fail_msg("%s: quantized activations differ from the two-stage chain", what);
    if (memcmp(s1, s2, (size_t)mp * sizeof(float)) != 0)
        fail_msg("%s: token scales differ from the two-stage chain", what);
    if (memcmp(r1, resid, rbytes) == 0)
        fail_msg("%s: the residual stream was not updated", what);

    free(x), free(resid), free(gamma), free(qa), free(d), free(sa);
    free(r1), free(r2), free(q1), free(q2), free(s1), free(s2);
    for (int i = 0; i < 3; i++)
        free(ba[i]), free(bb[i]);
    ss_linear_destroy(a);
    ss_linear_destroy(b);
}

static void test_equals_two_stages(void **state) {
    (void)state;
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    ss_rng r = {4242};
    static const seam_lin as[] = {
        {SS_DTYPE_I8, "dense", SS_DTYPE_COUNT, 1, 0},  {SS_DTYPE_I8, "2_8", SS_DTYPE_COUNT, 0, 1},
        {SS_DTYPE_F8_E4M3, "dense", SS_DTYPE_COUNT, 1, 1}, {SS_DTYPE_I8, "dense", SS_DTYPE_BF16, 1, 1},
    };
    static const seam_lin bs[] = {
        {SS_DTYPE_I8, "dense", SS_DTYPE_COUNT, 1, 0}, {SS_DTYPE_I8, "2_6", SS_DTYPE_COUNT, 1, 0},
        {SS_DTYPE_F8_E4M3, "2_inf", SS_DTYPE_COUNT, 1, 0},
    };
    static const int64_t ms[] = {1, 17, 40};
    for (size_t i = 0; i < sizeof as / sizeof *as; i++)
        for (size_t j = 0; j < sizeof bs / sizeof *bs; j++)
            for (int mi = 0; mi < 3; mi++)
                check_seam(ctx, &r, &as[i], &bs[j], ms[mi]);
    ss_context_destroy(ctx);
}

static void test_rejects(void **state) {
    (void)state;
    ss_context *ctx = NULL, *ctx2 = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    assert_ok(ss_context_create(-1, &ctx2));
    ss_rng r = {77};
    const seam_lin c = {SS_DTYPE_I8, "dense", SS_DTYPE_COUNT, 1, 0};
    void *ba[3], *bb[3], *bc[3], *bd[3], *be[3];
    ss_linear *a = make_lin(ctx, &r, &c, 64, 32, ba), *b = make_lin(ctx, &r, &c, 16, 64, bb);
    ss_linear *wrong_k = make_lin(ctx, &r, &c, 16, 48, bc), *other = make_lin(ctx2, &r, &c, 16, 64, bd);
    /* a linear with F32 output */
    void *w = ss_test_random_weight(&r, SS_DTYPE_I8, 64, 32);
    float *scale = ss_test_random_scales(&r, 64);
    ss_linear_desc d = ss_linear_desc_default("seam_f32", 64, 32, SS_DTYPE_I8);
    d.out_dtype = SS_DTYPE_F32;
    ss_linear_weights lw = {.w = w, .w_scale = scale};
    ss_linear *f32 = NULL;
    assert_ok(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &lw, &f32));
    be[0] = w, be[1] = scale, be[2] = NULL;

    const int64_t m = 3, mp = ss_linear_m_pad(m);
    int32_t *dd = calloc((size_t)(m * 64), sizeof *dd);
    float sa[16] = {0}, sq[16];
    uint16_t resid[3 * 64] = {0}, gamma[64] = {0};
    int8_t *q = calloc((size_t)(mp * ss_linear_q_cols(b)), 1);
    assert_ok(ss_linear_residual_rmsnorm_quant(a, dd, sa, m, resid, b, gamma, 1e-5f, q, sq));
    assert_fails(ss_linear_residual_rmsnorm_quant(a, dd, sa, m, resid, wrong_k, gamma, 1e-5f, q, sq),
                 SS_EINVAL, "k of the second");
    assert_fails(ss_linear_residual_rmsnorm_quant(a, dd, sa, m, resid, other, gamma, 1e-5f, q, sq),
                 SS_EINVAL, "one context");
    assert_fails(ss_linear_residual_rmsnorm_quant(f32, dd, sa, m, resid, b, gamma, 1e-5f, q, sq),
                 SS_EUNSUPPORTED, "BF16 output");
    assert_fails(ss_linear_residual_rmsnorm_quant(a, dd, sa, m, resid, b, NULL, 1e-5f, q, sq),
                 SS_EINVAL, "gamma");
    assert_fails(ss_linear_residual_rmsnorm_quant(a, dd, sa, m, resid, b, gamma, -1.0f, q, sq),
                 SS_EINVAL, "eps");
    assert_fails(ss_linear_residual_rmsnorm_quant(a, dd, NULL, m, resid, b, gamma, 1e-5f, q, sq),
                 SS_EINVAL, "input scale");
    assert_fails(ss_linear_residual_rmsnorm_quant(a, dd, sa, m, resid, b, gamma, 1e-5f, q, NULL),
                 SS_EINVAL, "output scale");
    assert_fails(ss_linear_residual_rmsnorm_quant(a, dd, sa, m, resid, NULL, gamma, 1e-5f, q, sq),
                 SS_EINVAL, "linear is NULL");
    /* m = 0: nothing read or written, NULL buffers allowed */
    assert_ok(ss_linear_residual_rmsnorm_quant(a, NULL, NULL, 0, NULL, b, NULL, 1e-5f, NULL, NULL));

    free(dd);
    free(q);
    void **bufs[] = {ba, bb, bc, bd, be};
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 3; j++)
            free(bufs[i][j]);
    ss_linear_destroy(a), ss_linear_destroy(b), ss_linear_destroy(wrong_k), ss_linear_destroy(other);
    ss_linear_destroy(f32);
    ss_context_destroy(ctx);
    ss_context_destroy(ctx2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equals_two_stages),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
