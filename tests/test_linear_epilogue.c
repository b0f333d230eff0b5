/* The fused epilogues on the CPU backend (ss_linear_forward_glu / _residual
 * and their dequant stages ss_linear_dequant_glu / _residual):
 *   - fused == the engine's unfused chain bit for bit: ss_linear_forward
 *     (or _rmsnorm) then ss_glu_cpu / ss_residual_add_cpu, and the stage
 *     form on one GEMM output: ss_linear_dequant then the same op;
 *     INT8 / FP8 / BF16 weights, dense and slid patterns, GEMM output I32 /
 *     F32 / BF16, odd and even inter, M = 1, 17, 40, relu2 and SiLU, with
 *     and without the fused RMSNorm, with and without bias;
 *   - gate | up order: swapping the halves of the weight changes the result;
 *   - argument checks (F32 output, odd n, NULL scales) and m = 0.
 */
#include <math.h>
#include <string.h>

#include "engine/ops.h"
#include "support/linear_inputs.h"

static const char *const patterns[] = {"dense", "2_4", "2_8", "2_inf"};

typedef struct {
    ss_dtype wdt;
    ss_pattern p;
    ss_dtype gemm_out; /* SS_DTYPE_COUNT = default */
    int64_t n, k;
    int bias;
} lin_case;

/* Weights of c (slid when c->p is) and the CPU linear over them. */
static ss_linear *make_lin(ss_context *ctx, ss_rng *r, const lin_case *c, void **w_out,
                           float **scale_out, uint16_t **bias_out) {
    void *wd = ss_test_random_weight(r, c->wdt, c->n, c->k);
    void *w = wd;
    if (!ss_pattern_is_dense(c->p)) {
        assert_ok(ss_prune(c->wdt, wd, c->n, c->k, c->p, SS_DTYPE_F32, NULL));
        w = malloc((size_t)(c->n * ss_slid_k(c->p, c->k)) * ss_dtype_size(c->wdt));
        assert_ok(ss_slide(c->wdt, wd, c->n, c->k, c->p, w));
        free(wd);
    }
    float *scale = c->wdt == SS_DTYPE_BF16 ? NULL : ss_test_random_scales(r, c->n);
    uint16_t *bias = c->bias ? ss_test_random_bf16(r, c->n, 1.0) : NULL;
    ss_linear_desc d = ss_linear_desc_default("epilogue", c->n, c->k, c->wdt);
    d.pattern = c->p;
    d.gemm_out = c->gemm_out;
    ss_linear_weights lw = {.w = w, .w_scale = scale, .bias = bias};
    ss_linear *lin = NULL;
    assert_ok(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &lw, &lin));
    *w_out = w;
    *scale_out = scale;
    *bias_out = bias;
    return lin;
}

static void describe(const lin_case *c, int64_t m, const char *what, char *buf, size_t n) {
    char pat[16];
    snprintf(buf, n, "%s %s gemm_out %s n=%lld k=%lld m=%lld bias=%d: %s", ss_dtype_name(c->wdt),
             ss_pattern_format(c->p, pat, sizeof pat),
             c->gemm_out == SS_DTYPE_COUNT ? "default" : ss_dtype_name(c->gemm_out), (long long)c->n,
             (long long)c->k, (long long)m, c->bias, what);
}

static void expect_equal(const void *a, const void *b, size_t bytes, const lin_case *c, int64_t m,
                         const char *what) {
    if (memcmp(a, b, bytes) != 0) {
        char buf[256];
        describe(c, m, what, buf, sizeof buf);
        fail_msg("%s", buf);
    }
}

/* Fused vs unfused for one case and m: whole forwards (no norm and norm) and
 * the stage form on one GEMM output. */
static void check_case(ss_context *ctx, ss_rng *r, const lin_case *c, int64_t m) {
    void *w;
    float *scale;
    uint16_t *bias;
    ss_linear *lin = make_lin(ctx, r, c, &w, &scale, &bias);
    int64_t n = c->n, k = c->k, inter = n / 2;
    uint16_t *x = ss_test_random_bf16(r, m * k, 2.0);
    uint16_t *gamma = ss_test_random_bf16(r, k, 1.0);
    uint16_t *resid0 = ss_test_random_bf16(r, m * n, 4.0);
    uint16_t *y = malloc((size_t)(m * n) * 2);
    uint16_t *a1 = malloc((size_t)(m * inter + 1) * 2), *a2 = malloc((size_t)(m * inter + 1) * 2);
    uint16_t *r1 = malloc((size_t)(m * n) * 2), *r2 = malloc((size_t)(m * n) * 2);
    float eps = 1e-5f;

    for (int norm = 0; norm < 2; norm++) {
        const uint16_t *gm = norm ? gamma : NULL;
        if (norm)
            assert_ok(ss_linear_forward_rmsnorm(lin, x, gamma, eps, m, y));
        else
            assert_ok(ss_linear_forward(lin, x, m, y));
        if (n % 2 == 0)
            for (int relu2 = 0; relu2 < 2; relu2++) {
                ss_glu_cpu(y, m, inter, relu2, a1);
                memset(a2, 0x7f, (size_t)(m * inter) * 2);
                assert_ok(ss_linear_forward_glu(lin, x, gm, eps, m, relu2, a2));
                expect_equal(a1, a2, (size_t)(m * inter) * 2, c, m,
                             relu2 ? "forward_glu (relu2) != forward then glu"
                                   : "forward_glu (silu) != forward then glu");
            }
        memcpy(r1, resid0, (size_t)(m * n) * 2);
        memcpy(r2, resid0, (size_t)(m * n) * 2);
        ss_residual_add_cpu(r1, y, m, n);
        assert_ok(ss_linear_forward_residual(lin, x, gm, eps, m, r2));
        expect_equal(r1, r2, (size_t)(m * n) * 2, c, m,
                     norm ? "forward_residual (norm) != forward_rmsnorm then residual add"
                          : "forward_residual != forward then residual add");
    }

    /* The stage form on one GEMM output. */
    int64_t mp = ss_linear_m_pad(m), qc = ss_linear_q_cols(lin);
    void *q = malloc((size_t)(mp * qc) * ss_dtype_size(c->wdt));
    float *sa = malloc((size_t)mp * sizeof(float));
    void *d = malloc((size_t)(m * n) * 4);
    assert_ok(ss_linear_quant(lin, x, m, q, sa));
    assert_ok(ss_linear_gemm(lin, q, m, d));
    assert_ok(ss_linear_dequant(lin, d, sa, m, y));
    if (n % 2 == 0) {
        ss_glu_cpu(y, m, inter, 1, a1);
        assert_ok(ss_linear_dequant_glu(lin, d, sa, m, 1, a2));
        expect_equal(a1, a2, (size_t)(m * inter) * 2, c, m, "dequant_glu != dequant then glu");
    }
    memcpy(r1, resid0, (size_t)(m * n) * 2);
    memcpy(r2, resid0, (size_t)(m * n) * 2);
    ss_residual_add_cpu(r1, y, m, n);
    assert_ok(ss_linear_dequant_residual(lin, d, sa, m, r2));
    expect_equal(r1, r2, (size_t)(m * n) * 2, c, m, "dequant_residual != dequant then add");

    /* ss_linear_gemm_op == the stages it stands for (the CPU backend runs them) */
    void *d2 = malloc((size_t)(mp * n) * 4);
    uint16_t *y2 = malloc((size_t)(m * n) * 2);
    assert_false(ss_linear_gemm_op_fused(lin, m, SS_LINEAR_OP_PLAIN));
    assert_ok(ss_linear_gemm_op(lin, q, sa, m, SS_LINEAR_OP_PLAIN, d2, y2));
    expect_equal(y, y2, (size_t)(m * n) * 2, c, m, "gemm_op plain != gemm then dequant");
    if (n % 2 == 0) {
        memset(a2, 0x7f, (size_t)(m * inter) * 2);
        assert_ok(ss_linear_gemm_op(lin, q, sa, m, SS_LINEAR_OP_GLU_RELU2, d2, a2));
        expect_equal(a1, a2, (size_t)(m * inter) * 2, c, m, "gemm_op glu != dequant then glu");
    }
    memcpy(r2, resid0, (size_t)(m * n) * 2);
    assert_ok(ss_linear_gemm_op(lin, q, sa, m, SS_LINEAR_OP_RESIDUAL, d2, r2));
    expect_equal(r1, r2, (size_t)(m * n) * 2, c, m, "gemm_op residual != dequant then add");
    free(d2);
    free(y2);

    free(q);
    free(sa);
    free(d);
    free(x);
    free(gamma);
    free(resid0);
    free(y);
    free(a1);
    free(a2);
    free(r1);
    free(r2);
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
    const ss_dtype outs[] = {SS_DTYPE_COUNT, SS_DTYPE_BF16};
    for (size_t pi = 0; pi < sizeof patterns / sizeof *patterns; pi++) {
        ss_pattern p;
        assert_ok(ss_pattern_parse(patterns[pi], &p));
        if (wdt == SS_DTYPE_BF16 && !ss_pattern_is_dense(p))
            continue; /* BF16 weights run dense only */
        for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++)
            for (int oi = 0; oi < 2; oi++) {
                /* odd inter, inter % 8 == 0, and an odd n (residual only) */
                int64_t ns[3] = {2 * (2 * ss_rng_range(&r, 1, 20) + 1), 16 * ss_rng_range(&r, 1, 4),
                                 2 * ss_rng_range(&r, 1, 20) + 1};
                for (int ni = 0; ni < 3; ni++) {
                    lin_case c = {.wdt = wdt, .p = p, .gemm_out = outs[oi], .n = ns[ni],
                                  .k = ss_rng_range(&r, 5, 200), .bias = (int)ss_rng_range(&r, 0, 1)};
                    check_case(ctx, &r, &c, ms[mi]);
                }
            }
    }
    ss_context_destroy(ctx);
}

static void test_int8(void **state) {
    (void)state;
    sweep(SS_DTYPE_I8, 11);
}
static void test_fp8(void **state) {
    (void)state;
    sweep(SS_DTYPE_F8_E4M3, 22);
}
static void test_bf16(void **state) {
    (void)state;
    sweep(SS_DTYPE_BF16, 33);
}

/* Columns [0, n/2) are the gate: a weight whose halves are swapped gives
 * another activation (relu2(g) * u != relu2(u) * g for random rows). */
static void test_gate_then_up(void **state) {
    (void)state;
    ss_rng r = {44};
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    int64_t inter = 24, n = 2 * inter, k = 64, m = 3;
    uint16_t *w = ss_test_random_bf16(&r, n * k, 0.2), *ws = malloc((size_t)(n * k) * 2);
    memcpy(ws, w + inter * k, (size_t)(inter * k) * 2);
    memcpy(ws + inter * k, w, (size_t)(inter * k) * 2);
    ss_linear_desc d = ss_linear_desc_default("gate_up", n, k, SS_DTYPE_BF16);
    ss_linear *l1 = NULL, *l2 = NULL;
    ss_linear_weights lw1 = {.w = w}, lw2 = {.w = ws};
    assert_ok(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &lw1, &l1));
    assert_ok(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &lw2, &l2));
    uint16_t *x = ss_test_random_bf16(&r, m * k, 1.0), a1[3 * 24], a2[3 * 24], y[3 * 48];
    assert_ok(ss_linear_forward_glu(l1, x, NULL, 0.0f, m, 1, a1));
    assert_ok(ss_linear_forward_glu(l2, x, NULL, 0.0f, m, 1, a2));
    assert_true(memcmp(a1, a2, sizeof a1) != 0);
    /* and a1 is relu2(first half) * second half of the plain output */
    assert_ok(ss_linear_forward(l1, x, m, y));
    for (int64_t j = 0; j < inter; j++) {
        float g = ss_bf16_to_f32(y[j]), u = ss_bf16_to_f32(y[inter + j]);
        float a = g > 0.0f ? g * g : 0.0f;
        assert_int_equal(a1[j], ss_f32_to_bf16(a * u));
    }
    free(w);
    free(ws);
    free(x);
    ss_linear_destroy(l1);
    ss_linear_destroy(l2);
    ss_context_destroy(ctx);
}

static void test_rejects(void **state) {
    (void)state;
    ss_rng r = {55};
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    void *w;
    float *scale;
    uint16_t *bias;
    lin_case c = {.wdt = SS_DTYPE_I8, .p = SS_PATTERN_DENSE, .gemm_out = SS_DTYPE_COUNT, .n = 9,
                  .k = 32, .bias = 1};
    ss_linear *odd = make_lin(ctx, &r, &c, &w, &scale, &bias);
    uint16_t x[32] = {0}, act[16] = {0}, resid[16] = {0};
    int32_t d[16] = {0};
    float sa[16] = {0};
    assert_fails(ss_linear_forward_glu(odd, x, NULL, 0.0f, 1, 1, act), SS_EINVAL, "even n");
    assert_fails(ss_linear_dequant_glu(odd, d, sa, 1, 1, act), SS_EINVAL, "even n");
    assert_fails(ss_linear_dequant_residual(odd, d, NULL, 1, resid), SS_EINVAL, "scale");
    assert_ok(ss_linear_forward_residual(odd, x, NULL, -1.0f, 1, resid)); /* eps unused */
    assert_fails(ss_linear_forward_residual(odd, x, x, -1.0f, 1, resid), SS_EINVAL, "eps");
    assert_fails(ss_linear_forward_residual(NULL, x, NULL, 0.0f, 1, resid), SS_EINVAL, "NULL");
    assert_ok(ss_linear_forward_residual(odd, NULL, NULL, 0.0f, 0, NULL));
    assert_fails(ss_linear_forward_glu(odd, NULL, NULL, 0.0f, 0, 1, NULL), SS_EINVAL, "even n");
    int8_t q[16 * 32] = {0};
    assert_fails(ss_linear_gemm_op(odd, q, sa, 1, SS_LINEAR_OP_GLU_SILU, d, act), SS_EINVAL, "even n");
    assert_fails(ss_linear_gemm_op(odd, q, sa, 1, (ss_linear_op)7, d, resid), SS_EINVAL, "unknown op");
    assert_fails(ss_linear_gemm_op(odd, q, sa, 1, SS_LINEAR_OP_RESIDUAL, NULL, resid), SS_EINVAL,
                 "scratch");
    assert_ok(ss_linear_gemm_op(odd, NULL, NULL, 0, SS_LINEAR_OP_PLAIN, NULL, NULL));
    free(w);
    free(scale);
    free(bias);
    ss_linear_destroy(odd);

    ss_linear_desc dd = ss_linear_desc_default("f32out", 8, 32, SS_DTYPE_I8);
    dd.out_dtype = SS_DTYPE_F32;
    int8_t wq[8 * 32] = {0};
    float ws[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    ss_linear_weights lw = {.w = wq, .w_scale = ws};
    ss_linear *f32 = NULL;
    assert_ok(ss_linear_create(ctx, SS_BACKEND_CPU, &dd, &lw, &f32));
    assert_fails(ss_linear_forward_glu(f32, x, NULL, 0.0f, 1, 0, act), SS_EUNSUPPORTED, "BF16 output");
    assert_fails(ss_linear_forward_residual(f32, x, NULL, 0.0f, 1, resid), SS_EUNSUPPORTED,
                 "BF16 output");
    ss_linear_destroy(f32);
    ss_context_destroy(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int8),
        cmocka_unit_test(test_fp8),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_gate_then_up),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
