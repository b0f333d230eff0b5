/* The CPU linear backend and the ss_linear dispatch (linear.c):
 *   - property: for random shapes and every pattern 2_4..2_16, 2_inf, the slid
 *     linear (weights pruned + slid, (n, K')) equals the pruned-dense linear
 *     ((n, k)) bit for bit, INT8 and FP8, every output/scale/bias combination;
 *   - both equal an independent reference written here from the formulas in
 *     slidesparse/linear.h and quant.h (quant, GEMM, dequant separately);
 *   - shapes large enough for several cache tiles and K chunks, thread-count
 *     independence, scratch growth, zero-filled padding rows;
 *   - every rejected descriptor, the 2:4 check's message, supports() reasons.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "support/linear_inputs.h"

// --- the independent reference ------------------------------------------------------------

/* quant.h: a = max(max|x|, 1e-12); INT8 q = clamp(rint(x * (127/a))), scale a/127;
 * FP8 q = e4m3(clamp(x * (448/a), +-448)), scale a/448. q: (m, k), unlifted. */
static void ref_quant(ss_dtype t, const uint16_t *x, int64_t m, int64_t k, uint8_t *q,
                      float *sa) {
    float qmax = t == SS_DTYPE_I8 ? 127.0f : 448.0f;
    for (int64_t i = 0; i < m; i++) {
        float a = 1e-12f;
        for (int64_t j = 0; j < k; j++) {
            float v = fabsf(ss_bf16_to_f32(x[i * k + j]));
            if (v > a)
                a = v;
        }
        float inv = qmax / a;
        for (int64_t j = 0; j < k; j++) {
            float v = ss_bf16_to_f32(x[i * k + j]) * inv;
            if (t == SS_DTYPE_I8) {
                v = rintf(v);
                v = v < -128.0f ? -128.0f : v > 127.0f ? 127.0f : v;
                q[i * k + j] = (uint8_t)(int8_t)v;
            } else {
                v = v < -448.0f ? -448.0f : v > 448.0f ? 448.0f : v;
                q[i * k + j] = ss_f32_to_e4m3(v);
            }
        }
        sa[i] = a / qmax;
    }
}

static double elem(ss_dtype t, const uint8_t *p, int64_t i) {
    return t == SS_DTYPE_I8 ? (double)(int8_t)p[i] : (double)ss_e4m3_to_f32(p[i]);
}

/* D[m, n] = sum_j q[m, j] * w[n, j] over the k logical columns (no lifting):
 * exact in double for both INT8 and e4m3 at these sizes. */
static double ref_dot(ss_dtype t, const uint8_t *q, const uint8_t *w, int64_t k) {
    double s = 0.0;
    for (int64_t j = 0; j < k; j++)
        s += elem(t, q, j) * elem(t, w, j);
    return s;
}

/* linear.h dequant: three separately rounded float ops. */
static float ref_dequant(float dv, float sa, float sb, const uint16_t *bias, int64_t n) {
    float t = dv * sa;
    t = t * sb;
    if (bias)
        t = t + ss_bf16_to_f32(bias[n]);
    return t;
}

// --- one comparison ------------------------------------------------------------------------

typedef struct {
    ss_dtype wdt;
    int64_t m, n, k;
    ss_pattern p;
    uint8_t *wd;     // (n, k) pruned dense weight
    uint8_t *ws;     // (n, K') slid weight
    uint16_t *x;     // (m, k) BF16
    uint16_t *bias;  // (n) BF16
    float *scale;    // (n)
} case_t;

static ss_linear *make_linear(ss_context *ctx, const case_t *c, int slid, ss_dtype gemm_out,
                              ss_dtype out, int per_channel, int with_bias) {
    ss_linear_desc d = ss_linear_desc_default("layers.0.mlp.up_proj.weight", c->n, c->k, c->wdt);
    d.pattern = slid ? c->p : SS_PATTERN_DENSE;
    d.gemm_out = gemm_out;
    d.out_dtype = out;
    d.per_channel = per_channel;
    ss_linear_weights w = {slid ? c->ws : c->wd, c->scale, with_bias ? c->bias : NULL};
    ss_linear *lin = NULL;
    assert_ok(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &w, &lin));
    return lin;
}

/* Runs the stages of lin on c->x and checks each against the reference:
 * quant's scale (and zero padding rows), the GEMM exactly, dequant exactly,
 * and forward == the stages. bias: what lin was given. Returns the forward
 * output (caller frees). */
static void *check_linear(ss_linear *lin, const case_t *c, const uint8_t *qref,
                          const float *saref, const uint16_t *bias) {
    const ss_linear_desc *d = ss_linear_get_desc(lin);
    int64_t m = c->m, n = c->n, qc = ss_linear_q_cols(lin), mp = ss_linear_m_pad(m);
    size_t ds = ss_dtype_size(d->gemm_out), ys = ss_dtype_size(d->out_dtype);
    uint8_t *q = malloc((size_t)(mp * qc));
    float *sa = malloc((size_t)mp * sizeof *sa);
    void *dd = malloc((size_t)(m * n) * ds), *y = malloc((size_t)(m * n) * ys);
    void *yref = malloc((size_t)(m * n) * ys), *y2 = malloc((size_t)(m * n) * ys);
    memset(q, 0x55, (size_t)(mp * qc));
    for (int64_t i = 0; i < mp; i++)
        sa[i] = -1.0f;

    assert_ok(ss_linear_quant(lin, c->x, m, q, sa));
    for (int64_t i = 0; i < m; i++)
        assert_true(sa[i] == saref[i]);
    for (int64_t i = m; i < mp; i++) {
        assert_true(sa[i] == 0.0f);
        for (int64_t j = 0; j < qc; j++)
            assert_int_equal(q[i * qc + j], 0);
    }

    assert_ok(ss_linear_gemm(lin, q, m, dd));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double ref = ref_dot(c->wdt, qref + i * c->k, c->wd + j * c->k, c->k);
            size_t o = (size_t)(i * n + j);
            float dv;
            if (d->gemm_out == SS_DTYPE_I32) {
                assert_int_equal(((int32_t *)dd)[o], (int32_t)ref);
                dv = (float)((int32_t *)dd)[o];
            } else if (d->gemm_out == SS_DTYPE_F32) {
                if (((float *)dd)[o] != (float)ref)
                    fail_msg("%s: D[%lld,%lld] = %.9g, reference %.9g", d->name, (long long)i,
                             (long long)j, ((float *)dd)[o], (float)ref);
                dv = ((float *)dd)[o];
            } else {
                assert_int_equal(((uint16_t *)dd)[o], ss_f32_to_bf16((float)ref));
                dv = ss_bf16_to_f32(((uint16_t *)dd)[o]);
            }
            float t = ref_dequant(dv, saref[i], c->scale[d->per_channel ? j : 0], bias, j);
            if (d->out_dtype == SS_DTYPE_F32)
                ((float *)yref)[o] = t;
            else
                ((uint16_t *)yref)[o] = ss_f32_to_bf16(t);
        }

    assert_ok(ss_linear_dequant(lin, dd, sa, m, y));
    assert_memory_equal(y, yref, (size_t)(m * n) * ys);
    assert_ok(ss_linear_forward(lin, c->x, m, y2));
    assert_memory_equal(y, y2, (size_t)(m * n) * ys);
    free(q);
    free(sa);
    free(dd);
    free(y2);
    free(yref);
    return y;
}

/* Builds a case: random weight pruned to p (the "pruned-dense" operand) and its
 * slid form, random activations, scales, bias. */
static case_t make_case(ss_rng *r, ss_dtype wdt, ss_pattern p, int64_t m, int64_t n, int64_t k) {
    case_t c = {wdt, m, n, k, p, NULL, NULL, NULL, NULL, NULL};
    c.wd = ss_test_random_weight(r, wdt, n, k);
    assert_ok(ss_prune(wdt, c.wd, n, k, p, SS_DTYPE_F32, NULL));
    c.ws = malloc((size_t)(n * ss_slid_k(p, k)));
    assert_ok(ss_slide(wdt, c.wd, n, k, p, c.ws));
    c.x = ss_test_random_bf16(r, m * k, 3.0);
    c.bias = ss_test_random_bf16(r, n, 1.0);
    c.scale = ss_test_random_scales(r, n);
    return c;
}

static void free_case(case_t *c) {
    free(c->wd);
    free(c->ws);
    free(c->x);
    free(c->bias);
    free(c->scale);
}

/* K that is not a multiple of L (nor of 32 when L divides 32). */
static int64_t random_k(ss_rng *r, ss_pattern p) {
    for (;;) {
        int64_t k = ss_rng_range(r, 3, 260);
        if (p.l == 0 || k % p.l != 0)
            return k;
    }
}

/* For every output combination: slid == pruned-dense bit for bit, and both ==
 * the reference. `gemm_outs` lists the GEMM output dtypes to try. */
static void check_case(ss_context *ctx, const case_t *c, const ss_dtype *gemm_outs, int ngo) {
    uint8_t *qref = malloc((size_t)(c->m * c->k));
    float *saref = malloc((size_t)c->m * sizeof *saref);
    ref_quant(c->wdt, c->x, c->m, c->k, qref, saref);
    for (int g = 0; g < ngo; g++)
        for (int combo = 0; combo < 8; combo++) {
            ss_dtype out = combo & 1 ? SS_DTYPE_F32 : SS_DTYPE_BF16;
            int per_channel = (combo >> 1) & 1, with_bias = (combo >> 2) & 1;
            const uint16_t *bias = with_bias ? c->bias : NULL;
            ss_linear *dense = make_linear(ctx, c, 0, gemm_outs[g], out, per_channel, with_bias);
            ss_linear *slid = make_linear(ctx, c, 1, gemm_outs[g], out, per_channel, with_bias);
            assert_int_equal(ss_linear_q_cols(slid), ss_slid_k(c->p, c->k));
            assert_int_equal(ss_linear_q_cols(dense), ss_ceil32(c->k));
            void *yd = check_linear(dense, c, qref, saref, bias);
            void *ys = check_linear(slid, c, qref, saref, bias);
            char pat[16];
            if (memcmp(yd, ys, (size_t)(c->m * c->n) * ss_dtype_size(out)) != 0)
                fail_msg("%s %s m=%lld n=%lld k=%lld combo %d: slid != pruned dense",
                         ss_dtype_name(c->wdt), ss_pattern_format(c->p, pat, sizeof pat),
                         (long long)c->m, (long long)c->n, (long long)c->k, combo);
            free(yd);
            free(ys);
            ss_linear_destroy(dense);
            ss_linear_destroy(slid);
        }
    free(qref);
    free(saref);
}

static void property_slid_equals_dense(ss_dtype wdt, const ss_dtype *gemm_outs, int ngo,
                                       uint64_t seed) {
    ss_rng r = {seed};
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    for (size_t pi = 0; pi < SS_TEST_NPAT; pi++) {
        ss_pattern p;
        assert_ok(ss_pattern_parse(ss_test_patterns[pi], &p));
        for (int rep = 0; rep < 3; rep++) {
            /* M covers 1, a multiple of 16, and up to 300. */
            int64_t m = rep == 0 ? 1 : rep == 1 ? 16 * ss_rng_range(&r, 1, 4)
                                                : ss_rng_range(&r, 2, 300);
            int64_t n = ss_rng_range(&r, 1, 70), k = random_k(&r, p);
            case_t c = make_case(&r, wdt, p, m, n, k);
            check_case(ctx, &c, gemm_outs, ngo);
            free_case(&c);
        }
    }
    ss_context_destroy(ctx);
}

static void test_int8_slid_equals_dense(void **state) {
    const ss_dtype go[] = {SS_DTYPE_COUNT, SS_DTYPE_BF16};
    property_slid_equals_dense(SS_DTYPE_I8, go, 2, 0x5EED1);
}

/* FP8: the GEMM sums exact e4m3 products exactly in double (cpu_gemm.c), so the
 * slid and dense sums -- the same nonzero products in another order -- are the
 * same real number and round identically: asserted bit for bit, no tolerance. */
static void test_fp8_slid_equals_dense(void **state) {
    const ss_dtype go[] = {SS_DTYPE_F32, SS_DTYPE_BF16};
    property_slid_equals_dense(SS_DTYPE_F8_E4M3, go, 2, 0x5EED2);
}

/* Several tiles in M and N and several K chunks (K' > 1024), and the result is
 * the same on 1 and 2 threads. */
static void test_large_shapes_threads(void **state) {
    ss_rng r = {77};
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    const char *pats[] = {"2_8", "2_4"};
    const ss_dtype wdts[] = {SS_DTYPE_I8, SS_DTYPE_F8_E4M3};
    for (int i = 0; i < 2; i++) {
        ss_pattern p;
        assert_ok(ss_pattern_parse(pats[i], &p));
        case_t c = make_case(&r, wdts[i], p, 133, 150, 1499);
        uint8_t *qref = malloc((size_t)(c.m * c.k));
        float *saref = malloc((size_t)c.m * sizeof *saref);
        ref_quant(c.wdt, c.x, c.m, c.k, qref, saref);
        ss_linear *slid = make_linear(ctx, &c, 1, SS_DTYPE_COUNT, SS_DTYPE_F32, 1, 1);
        ss_linear *dense = make_linear(ctx, &c, 0, SS_DTYPE_COUNT, SS_DTYPE_F32, 1, 1);
        int saved = omp_get_max_threads();
        omp_set_num_threads(1);
        void *y1 = check_linear(slid, &c, qref, saref, c.bias);
        omp_set_num_threads(2);
        void *y2 = check_linear(slid, &c, qref, saref, c.bias);
        void *y3 = check_linear(dense, &c, qref, saref, c.bias);
        omp_set_num_threads(saved);
        assert_memory_equal(y1, y2, (size_t)(c.m * c.n) * sizeof(float));
        assert_memory_equal(y1, y3, (size_t)(c.m * c.n) * sizeof(float));
        free(y1);
        free(y2);
        free(y3);
        free(qref);
        free(saref);
        ss_linear_destroy(slid);
        ss_linear_destroy(dense);
        free_case(&c);
    }
    ss_context_destroy(ctx);
}

/* The generic forward's scratch grows and is reused: forwards of 5, 200, 3
 * rows through one linear equal forwards through fresh linears. */
static void test_scratch_growth(void **state) {
    ss_rng r = {99};
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    ss_pattern p;
    assert_ok(ss_pattern_parse("2_6", &p));
    case_t c = make_case(&r, SS_DTYPE_I8, p, 200, 40, 100);
    ss_linear *lin = make_linear(ctx, &c, 1, SS_DTYPE_COUNT, SS_DTYPE_BF16, 1, 0);
    const int64_t ms[] = {5, 200, 3, 0};
    for (int i = 0; i < 4; i++) {
        uint16_t *y = calloc((size_t)(ms[i] * c.n) + 1, 2), *y2 = calloc((size_t)(ms[i] * c.n) + 1, 2);
        ss_linear *fresh = make_linear(ctx, &c, 1, SS_DTYPE_COUNT, SS_DTYPE_BF16, 1, 0);
        assert_ok(ss_linear_forward(lin, c.x, ms[i], y));
        assert_ok(ss_linear_forward(fresh, c.x, ms[i], y2));
        assert_memory_equal(y, y2, (size_t)(ms[i] * c.n) * 2);
        ss_linear_destroy(fresh);
        free(y);
        free(y2);
    }
    ss_linear_destroy(lin);
    free_case(&c);
    ss_context_destroy(ctx);
}

/* BF16 weights (dense only): small integers in x and w make every product and
 * sum exact, so the output is compared exactly with the plain formula. */
static void test_bf16_weights(void **state) {
    ss_rng r = {5};
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    int64_t m = 37, n = 29, k = 75;
    uint16_t *x = malloc((size_t)(m * k) * 2), *w = malloc((size_t)(n * k) * 2);
    for (int64_t i = 0; i < m * k; i++)
        x[i] = ss_f32_to_bf16((float)ss_rng_range(&r, -8, 8));
    for (int64_t i = 0; i < n * k; i++)
        w[i] = ss_f32_to_bf16((float)ss_rng_range(&r, -8, 8) * 0.5f);
    uint16_t *bias = ss_test_random_bf16(&r, n, 1.0);
    ss_linear_desc d = ss_linear_desc_default("lm_head.weight", n, k, SS_DTYPE_BF16);
    d.out_dtype = SS_DTYPE_F32;
    ss_linear_weights wt = {w, NULL, bias};
    ss_linear *lin = NULL;
    assert_ok(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &wt, &lin));
    assert_int_equal(ss_linear_get_desc(lin)->gemm_out, SS_DTYPE_F32);
    float *y = malloc((size_t)(m * n) * sizeof *y);
    assert_ok(ss_linear_forward(lin, x, m, y));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t t = 0; t < k; t++)
                s += (double)ss_bf16_to_f32(x[i * k + t]) * ss_bf16_to_f32(w[j * k + t]);
            float want = (float)s + ss_bf16_to_f32(bias[j]);
            assert_true(y[i * n + j] == want);
        }
    free(y);
    free(x);
    free(w);
    free(bias);
    ss_linear_destroy(lin);
    ss_context_destroy(ctx);
}

// --- errors and small contracts ----------------------------------------------------------------

static void test_not_24_valid_rejected(void **state) {
    ss_rng r = {11};
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    ss_pattern p;
    assert_ok(ss_pattern_parse("2_8", &p));
    case_t c = make_case(&r, SS_DTYPE_I8, p, 4, 6, 40);
    int64_t kp = ss_slid_k(p, c.k);
    /* Row 3, window at columns 8..11: three nonzeros. */
    int8_t *row = (int8_t *)c.ws + 3 * kp;
    row[8] = 1, row[9] = 2, row[10] = 3, row[11] = 0;
    ss_linear_desc d = ss_linear_desc_default("layers.3.self_attn.o_proj.weight", c.n, c.k,
                                              SS_DTYPE_I8);
    d.pattern = p;
    ss_linear_weights w = {c.ws, c.scale, NULL};
    ss_linear *lin = (ss_linear *)&c; /* must be reset to NULL on failure */
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &w, &lin), SS_EINVAL,
                 "tensor 'layers.3.self_attn.o_proj.weight': row 3 columns 8..11 hold 3 "
                 "nonzeros, not 2:4-valid");
    assert_null(lin);
    /* The dense path does not require 2:4 (a dense weight is any weight). */
    d.pattern = SS_PATTERN_DENSE;
    w.w = c.wd;
    assert_ok(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &w, &lin));
    ss_linear_destroy(lin);
    free_case(&c);
    ss_context_destroy(ctx);
}

static void test_bad_desc(void **state) {
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    int8_t wbuf[64 * 64] = {0};
    float scale[64] = {1};
    ss_linear_weights w = {wbuf, scale, NULL};
    ss_linear *lin = NULL;
    ss_linear_desc d0 = ss_linear_desc_default("t.weight", 16, 32, SS_DTYPE_I8), d;

    d = d0, d.n = 0;
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &w, &lin), SS_EINVAL, "n, k > 0");
    d = d0, d.k = -3;
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &w, &lin), SS_EINVAL, "found n=16 k=-3");
    d = d0, d.wdtype = SS_DTYPE_F32;
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &w, &lin), SS_EINVAL,
                 "weight dtype must be I8, F8_E4M3 or BF16");
    d = d0, d.wdtype = SS_DTYPE_BF16, d.pattern = (ss_pattern){2, 8};
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &w, &lin), SS_EINVAL,
                 "BF16 weights run dense only");
    d = d0, d.pattern = (ss_pattern){2, 5};
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &w, &lin), SS_EINVAL, "'t.weight'");
    d = d0, d.pattern = (ss_pattern){3, 8};
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &w, &lin), SS_EINVAL, "pattern");
    d = d0, d.gemm_out = SS_DTYPE_F32;
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &w, &lin), SS_EINVAL,
                 "must be I32 or BF16, found F32");
    d = d0, d.wdtype = SS_DTYPE_F8_E4M3, d.gemm_out = SS_DTYPE_I32;
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &w, &lin), SS_EINVAL,
                 "must be F32 or BF16, found I32");
    d = d0, d.out_dtype = SS_DTYPE_I8;
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &w, &lin), SS_EINVAL,
                 "output dtype must be BF16 or F32, found I8");
    d = d0, d.per_channel = 2;
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &w, &lin), SS_EINVAL, "per_channel");
    d = d0;
    ss_linear_weights nw = {NULL, scale, NULL}, ns = {wbuf, NULL, NULL};
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &nw, &lin), SS_EINVAL,
                 "tensor 't.weight': weight data is NULL");
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &ns, &lin), SS_EINVAL,
                 "need a weight scale");
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, &d, NULL, &lin), SS_EINVAL, "NULL");
    assert_fails(ss_linear_create(NULL, SS_BACKEND_CPU, &d, &w, &lin), SS_EINVAL, "context");
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CPU, NULL, &w, &lin), SS_EINVAL, "descriptor");
    assert_fails(ss_linear_create(ctx, (ss_backend)7, &d, &w, &lin), SS_EUNSUPPORTED,
                 "unknown backend");
    assert_null(lin);

    /* A valid one, then bad stage calls. */
    assert_ok(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &w, &lin));
    assert_string_equal(ss_linear_get_desc(lin)->name, "t.weight");
    assert_int_equal(ss_linear_get_desc(lin)->gemm_out, SS_DTYPE_I32);
    uint16_t x[32] = {0};
    assert_fails(ss_linear_forward(lin, x, -1, wbuf), SS_EINVAL, "expected m >= 0, found -1");
    assert_fails(ss_linear_forward(lin, NULL, 2, wbuf), SS_EINVAL, "NULL buffer");
    assert_fails(ss_linear_quant(lin, x, 1, wbuf, NULL), SS_EINVAL, "scale buffer is NULL");
    assert_ok(ss_linear_forward(lin, x, 0, NULL)); /* zero rows: nothing to do */
    ss_linear_destroy(lin);
    ss_linear_destroy(NULL);
    ss_context_destroy(ctx);
}

static void test_supports_and_context(void **state) {
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    assert_int_equal(ss_context_device(ctx), -1);
    assert_null(ss_context_stream(ctx));
    ss_context_set_stream(ctx, (void *)ctx);
    assert_ptr_equal(ss_context_stream(ctx), ctx);
    ss_context_set_stream(ctx, NULL);

    /* CPU runs every legal (dtype, pattern). */
    for (size_t pi = 0; pi < SS_TEST_NPAT; pi++) {
        ss_pattern p;
        assert_ok(ss_pattern_parse(ss_test_patterns[pi], &p));
        assert_null(ss_linear_supports(ctx, SS_BACKEND_CPU, SS_DTYPE_I8, p));
        assert_null(ss_linear_supports(ctx, SS_BACKEND_CPU, SS_DTYPE_F8_E4M3, p));
        assert_non_null(ss_linear_supports(ctx, SS_BACKEND_CPU, SS_DTYPE_BF16, p));
    }
    assert_null(ss_linear_supports(ctx, SS_BACKEND_CPU, SS_DTYPE_BF16, SS_PATTERN_DENSE));
    assert_non_null(ss_linear_supports(ctx, SS_BACKEND_CPU, SS_DTYPE_F16, SS_PATTERN_DENSE));
    assert_string_equal(ss_linear_supports(ctx, SS_BACKEND_COUNT, SS_DTYPE_I8, SS_PATTERN_DENSE),
                        "unknown backend");
#ifndef SS_HAVE_CUDA
    assert_string_equal(ss_linear_supports(ctx, SS_BACKEND_CUBLASLT, SS_DTYPE_I8, SS_PATTERN_DENSE),
                        "built without CUDA");
    assert_string_equal(ss_linear_supports(ctx, SS_BACKEND_CUSPARSELT, SS_DTYPE_I8, SS_PATTERN_INF),
                        "built without CUDA");
    assert_int_equal(ss_cuda_device_count(), 0);
#endif
#ifndef SS_HAVE_SM90SP
    /* the CUTLASS backend says what it lacks */
    assert_string_equal(ss_linear_supports(ctx, SS_BACKEND_SM90SP, SS_DTYPE_I8, (ss_pattern){2, 8}),
                        "needs sm_90 and a build with CUTLASS");
    /* its dense baseline (same kernel family, same fused epilogue) likewise */
    assert_string_equal(ss_linear_supports(ctx, SS_BACKEND_SM90DENSE, SS_DTYPE_I8, SS_PATTERN_DENSE),
                        "needs sm_90 and a build with CUTLASS");
#else
    assert_string_equal(ss_linear_supports(ctx, SS_BACKEND_SM90SP, SS_DTYPE_I8, (ss_pattern){2, 8}),
                        "GPU backend needs a context with a CUDA device");
    assert_string_equal(ss_linear_supports(ctx, SS_BACKEND_SM90DENSE, SS_DTYPE_I8, SS_PATTERN_DENSE),
                        "GPU backend needs a context with a CUDA device");
    /* built in, the generic rules come first: BF16 runs dense only */
    assert_string_equal(ss_linear_supports(ctx, SS_BACKEND_SM90DENSE, SS_DTYPE_BF16, (ss_pattern){2, 8}),
                        "BF16 weights run dense only");
#endif
#ifndef SS_HAVE_CUDA
    ss_context *g = (ss_context *)ctx;
    assert_fails(ss_context_create(0, &g), SS_EUNSUPPORTED, "this build has no CUDA");
    assert_null(g);
    int8_t wb[32] = {0};
    float sc = 1.0f;
    ss_linear_desc d = ss_linear_desc_default("w", 1, 32, SS_DTYPE_I8);
    ss_linear_weights w = {wb, &sc, NULL};
    ss_linear *lin = NULL;
    assert_fails(ss_linear_create(ctx, SS_BACKEND_CUBLASLT, &d, &w, &lin), SS_EUNSUPPORTED,
                 "tensor 'w': backend cublaslt cannot run I8 dense: built without CUDA");
#else
    /* A GPU backend needs a GPU context. */
    assert_non_null(ss_linear_supports(ctx, SS_BACKEND_CUBLASLT, SS_DTYPE_I8, SS_PATTERN_DENSE));
#endif
    ss_context *bad = ctx;
    assert_fails(ss_context_create(-2, &bad), SS_EINVAL, "found -2");
    assert_null(bad);
    assert_fails(ss_context_create(-1, NULL), SS_EINVAL, "NULL");
    ss_context_destroy(ctx);
    ss_context_destroy(NULL);
}

static void test_names_and_sizes(void **state) {
    for (int b = 0; b < SS_BACKEND_COUNT; b++) {
        ss_backend got;
        assert_ok(ss_backend_parse(ss_backend_name((ss_backend)b), &got));
        assert_int_equal(got, b);
    }
    assert_string_equal(ss_backend_name(SS_BACKEND_CPU), "cpu");
    assert_string_equal(ss_backend_name(SS_BACKEND_CUBLASLT), "cublaslt");
    assert_string_equal(ss_backend_name(SS_BACKEND_CUSPARSELT), "cusparselt");
    assert_string_equal(ss_backend_name(SS_BACKEND_SM90SP), "sm90sp");
    assert_string_equal(ss_backend_name(SS_BACKEND_SM90DENSE), "sm90dense");
    ss_backend b;
    assert_fails(ss_backend_parse("sm90", &b), SS_EINVAL, "sm90dense");
    assert_fails(ss_backend_parse("cuBLAS", &b), SS_EINVAL, "found 'cuBLAS'");
    assert_fails(ss_backend_parse(NULL, &b), SS_EINVAL, "backend");
    assert_int_equal(ss_linear_m_pad(0), 0);
    assert_int_equal(ss_linear_m_pad(1), 16);
    assert_int_equal(ss_linear_m_pad(16), 16);
    assert_int_equal(ss_linear_m_pad(17), 32);
    ss_linear_desc d = ss_linear_desc_default("x", 3, 5, SS_DTYPE_F8_E4M3);
    assert_int_equal(d.gemm_out, SS_DTYPE_COUNT);
    assert_int_equal(d.out_dtype, SS_DTYPE_BF16);
    assert_int_equal(d.per_channel, 1);
    assert_true(ss_pattern_is_dense(d.pattern));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int8_slid_equals_dense),
        cmocka_unit_test(test_fp8_slid_equals_dense),
        cmocka_unit_test(test_large_shapes_threads),
        cmocka_unit_test(test_scratch_growth),
        cmocka_unit_test(test_bf16_weights),
        cmocka_unit_test(test_not_24_valid_rejected),
        cmocka_unit_test(test_bad_desc),
        cmocka_unit_test(test_supports_and_context),
        cmocka_unit_test(test_names_and_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
