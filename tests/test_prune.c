/* Pruning to 2:L (SPEC §2) against a brute-force reference: per group, sort
 * the entries by (|w|, |ref|, index) with the values read through
 * ss_dtype_load, count the zeros (padding included), zero the smallest
 * nonzeros until the group has 2 zeros. */
#include "support/ss_test.h"

#include <math.h>
#include <string.h>

static const ss_dtype dtypes[] = {SS_DTYPE_I8, SS_DTYPE_F8_E4M3, SS_DTYPE_BF16, SS_DTYPE_F32};

/* Random values of dtype t, about `zero_frac` exact zeros (and some -0.0),
 * with a narrow range so that magnitude ties are common. */
static void fill_random(ss_dtype t, void *w, int64_t count, double zero_frac, ss_rng *r) {
    for (int64_t i = 0; i < count; i++) {
        double u = (double)ss_rng_below(r, 1000) / 1000.0;
        int zero = u < zero_frac;
        int negzero = zero && ss_rng_below(r, 2);
        float f = zero ? (negzero ? -0.0f : 0.0f) : (float)ss_rng_range(r, -6, 6) * 0.5f;
        if (!zero && f == 0.0f)
            f = 0.25f;
        switch (t) {
        case SS_DTYPE_I8: ((int8_t *)w)[i] = (int8_t)(zero ? 0 : ss_rng_range(r, -128, 127)); break;
        case SS_DTYPE_F8_E4M3: ((uint8_t *)w)[i] = ss_f32_to_e4m3(f); break;
        case SS_DTYPE_BF16: ((uint16_t *)w)[i] = ss_f32_to_bf16(f); break;
        default: ((float *)w)[i] = f; break;
        }
    }
}

static double mag(ss_dtype t, const void *w, int64_t i) { return fabs(ss_dtype_load(t, w, (size_t)i)); }

/* The reference: returns a pruned copy. */
static void *brute_prune(ss_dtype t, const void *w, int64_t n, int64_t k, int l, ss_dtype rt,
                         const void *ref) {
    size_t sz = ss_dtype_size(t);
    unsigned char *out = malloc((size_t)(n * k) * sz + 1);
    memcpy(out, w, (size_t)(n * k) * sz);
    for (int64_t row = 0; row < n; row++)
        for (int64_t b = 0; b < k; b += l) {
            int64_t idx[64], cnt = 0, zeros = l;
            for (int64_t i = b; i < b + l && i < k; i++) {
                zeros--;
                if (mag(t, w, row * k + i) == 0.0)
                    zeros++;
                else
                    idx[cnt++] = row * k + i;
            }
            /* selection sort by (|w|, |ref|, index) */
            for (int64_t a = 0; a < cnt; a++)
                for (int64_t c = a + 1; c < cnt; c++) {
                    double ma = mag(t, w, idx[a]), mc = mag(t, w, idx[c]);
                    double ra = ref ? mag(rt, ref, idx[a]) : 0, rc = ref ? mag(rt, ref, idx[c]) : 0;
                    if (mc < ma || (mc == ma && (rc < ra || (rc == ra && idx[c] < idx[a])))) {
                        int64_t tmp = idx[a];
                        idx[a] = idx[c];
                        idx[c] = tmp;
                    }
                }
            for (int64_t a = 0; a < cnt && zeros < 2; a++, zeros++)
                memset(out + (size_t)idx[a] * sz, 0, sz);
        }
    /* -0.0 becomes +0.0 */
    for (int64_t i = 0; i < n * k; i++)
        if (mag(t, out, i) == 0.0)
            memset(out + (size_t)i * sz, 0, sz);
    return out;
}

static void check_against_brute(ss_dtype t, int64_t n, int64_t k, int l, ss_dtype rt, int use_ref,
                                double zero_frac, ss_rng *rng) {
    size_t sz = ss_dtype_size(t);
    void *w = malloc((size_t)(n * k) * sz + 1), *ref = malloc((size_t)(n * k) * 4 + 1);
    fill_random(t, w, n * k, zero_frac, rng);
    fill_random(rt, ref, n * k, 0.1, rng);
    void *want = brute_prune(t, w, n, k, l, rt, use_ref ? ref : NULL);
    ss_pattern p = {2, l};
    assert_ok(ss_prune(t, w, n, k, p, rt, use_ref ? ref : NULL));
    int64_t br, bg;
    if (!ss_check_pattern(t, w, n, k, p, &br, &bg))
        fail_msg("%s k=%lld l=%d: row %lld group %lld has < 2 zeros", ss_dtype_name(t),
                 (long long)k, l, (long long)br, (long long)bg);
    for (int64_t i = 0; i < n * k; i++)
        if (memcmp((char *)w + i * sz, (char *)want + i * sz, sz))
            fail_msg("%s k=%lld l=%d ref=%d: element [%lld, %lld] = %g, brute force %g",
                     ss_dtype_name(t), (long long)k, l, use_ref, (long long)(i / k),
                     (long long)(i % k), ss_dtype_load(t, w, (size_t)i),
                     ss_dtype_load(t, want, (size_t)i));
    /* idempotence */
    void *again = malloc((size_t)(n * k) * sz + 1);
    memcpy(again, w, (size_t)(n * k) * sz);
    assert_ok(ss_prune(t, again, n, k, p, rt, use_ref ? ref : NULL));
    assert_memory_equal(again, w, (size_t)(n * k) * sz);
    free(again);
    free(want);
    free(w);
    free(ref);
}

static void test_brute_force(void **state) {
    (void)state;
    ss_rng rng = {3};
    const int64_t ks[] = {1, 4, 7, 16, 33, 100};
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++)
        for (int l = 4; l <= 16; l += 2)
            for (size_t a = 0; a < sizeof ks / sizeof ks[0]; a++)
                for (int use_ref = 0; use_ref < 2; use_ref++)
                    for (int z = 0; z < 3; z++)
                        check_against_brute(dtypes[d], 9, ks[a], l,
                                            use_ref == 1 && z == 1 ? SS_DTYPE_F32 : SS_DTYPE_BF16,
                                            use_ref, z * 0.2, &rng);
}

/* Direct statement of the rule: every kept nonzero is at least as large as
 * every entry pruned. */
static void test_keeps_largest(void **state) {
    (void)state;
    ss_rng rng = {5};
    const int64_t n = 64, k = 2560;
    float *w = malloc((size_t)(n * k) * 4), *orig = malloc((size_t)(n * k) * 4);
    for (int64_t i = 0; i < n * k; i++)
        orig[i] = w[i] = (float)ss_rng_normal(&rng);
    assert_ok(ss_prune(SS_DTYPE_F32, w, n, k, (ss_pattern){2, 8}, SS_DTYPE_F32, NULL));
    for (int64_t b = 0; b < n * k; b += 8) {
        float min_kept = INFINITY, max_cut = 0;
        int cut = 0;
        for (int i = 0; i < 8; i++) {
            if (w[b + i] == 0.0f) {
                cut++;
                max_cut = fmaxf(max_cut, fabsf(orig[b + i]));
            } else {
                assert_true(w[b + i] == orig[b + i]);
                min_kept = fminf(min_kept, fabsf(w[b + i]));
            }
        }
        assert_int_equal(cut, 2);
        assert_true(max_cut <= min_kept);
    }
    free(w);
    free(orig);
}

static void test_tie_break(void **state) {
    (void)state;
    const ss_pattern p = {2, 4};
    int8_t w[4] = {1, -1, 1, 1};
    assert_ok(ss_prune(SS_DTYPE_I8, w, 1, 4, p, SS_DTYPE_F32, NULL));
    assert_memory_equal(w, ((int8_t[]){0, 0, 1, 1}), 4); /* lowest index first */
    int8_t v[4] = {1, -1, 1, 1};
    float ref[4] = {5.0f, -1.0f, 3.0f, 2.0f};
    assert_ok(ss_prune(SS_DTYPE_I8, v, 1, 4, p, SS_DTYPE_F32, ref));
    assert_memory_equal(v, ((int8_t[]){1, 0, 1, 0}), 4); /* smallest |ref| first */
    int8_t u[4] = {-1, 1, 1, 1};
    uint16_t rb[4] = {ss_f32_to_bf16(2.0f), ss_f32_to_bf16(-2.0f), ss_f32_to_bf16(1.0f),
                      ss_f32_to_bf16(2.0f)};
    assert_ok(ss_prune(SS_DTYPE_I8, u, 1, 4, p, SS_DTYPE_BF16, rb));
    assert_memory_equal(u, ((int8_t[]){0, 1, 0, 1}), 4); /* |ref| tie -> index */
    /* magnitude before ref: 2 is kept over 1 even with a tiny ref */
    int8_t m[4] = {2, 1, 1, 3};
    float rm[4] = {0.0f, 9.0f, 8.0f, 7.0f};
    assert_ok(ss_prune(SS_DTYPE_I8, m, 1, 4, p, SS_DTYPE_F32, rm));
    assert_memory_equal(m, ((int8_t[]){2, 0, 0, 3}), 4);
    /* int8 -128 is the largest magnitude */
    int8_t s[4] = {-128, 127, -127, 5};
    assert_ok(ss_prune(SS_DTYPE_I8, s, 1, 4, p, SS_DTYPE_F32, NULL));
    assert_memory_equal(s, ((int8_t[]){-128, 0, -127, 0}), 4); /* |127| tie -> index */
}

static void test_existing_zeros(void **state) {
    (void)state;
    const ss_pattern p = {2, 4};
    int8_t a[4] = {0, 3, 1, 2};
    assert_ok(ss_prune(SS_DTYPE_I8, a, 1, 4, p, SS_DTYPE_F32, NULL));
    assert_memory_equal(a, ((int8_t[]){0, 3, 0, 2}), 4);
    int8_t b[4] = {0, 1, 0, 1};
    assert_ok(ss_prune(SS_DTYPE_I8, b, 1, 4, p, SS_DTYPE_F32, NULL));
    assert_memory_equal(b, ((int8_t[]){0, 1, 0, 1}), 4);
    float f[4] = {-0.0f, 3.0f, 1.0f, 2.0f};
    assert_ok(ss_prune(SS_DTYPE_F32, f, 1, 4, p, SS_DTYPE_F32, NULL));
    assert_false(signbit(f[0])); /* -0.0 counted as zero and made +0.0 */
    assert_true(f[1] == 3.0f && f[2] == 0.0f && f[3] == 2.0f);
    /* padding counts: K = 6, L = 4: the second group (inputs 4, 5 + 2 padding) is kept */
    int8_t c[6] = {1, 2, 3, 4, 5, 6};
    assert_ok(ss_prune(SS_DTYPE_I8, c, 1, 6, p, SS_DTYPE_F32, NULL));
    assert_memory_equal(c, ((int8_t[]){0, 0, 3, 4, 5, 6}), 6);
    /* K = 7, L = 4: one padding slot, one more entry pruned */
    int8_t d[7] = {1, 2, 3, 4, 7, 5, 6};
    assert_ok(ss_prune(SS_DTYPE_I8, d, 1, 7, p, SS_DTYPE_F32, NULL));
    assert_memory_equal(d, ((int8_t[]){0, 0, 3, 4, 7, 0, 6}), 7);
}

static void test_inf_and_dense(void **state) {
    (void)state;
    int8_t w[5] = {1, 2, 3, 4, 5};
    assert_ok(ss_prune(SS_DTYPE_I8, w, 1, 5, SS_PATTERN_INF, SS_DTYPE_F32, NULL));
    assert_memory_equal(w, ((int8_t[]){1, 2, 3, 4, 5}), 5);
    assert_true(ss_check_pattern(SS_DTYPE_I8, w, 1, 5, SS_PATTERN_INF, NULL, NULL));
    assert_ok(ss_prune(SS_DTYPE_I8, w, 1, 5, SS_PATTERN_DENSE, SS_DTYPE_F32, NULL));
    assert_memory_equal(w, ((int8_t[]){1, 2, 3, 4, 5}), 5);
    assert_fails(ss_prune(SS_DTYPE_F64, w, 1, 5, (ss_pattern){2, 4}, SS_DTYPE_F32, NULL),
                 SS_EINVAL, "F64");
    assert_fails(ss_prune(SS_DTYPE_I8, w, 1, 5, (ss_pattern){2, 5}, SS_DTYPE_F32, NULL),
                 SS_EINVAL, "pattern");
}

static void test_check_and_detect(void **state) {
    (void)state;
    /* row 1, group 1 (inputs 8..15) of 2_8 has one zero */
    int8_t w[2 * 16];
    for (int i = 0; i < 32; i++)
        w[i] = i % 4 < 2 ? 0 : 1; /* 2_4-valid */
    assert_int_equal(ss_detect_pattern_l(SS_DTYPE_I8, w, 2, 16), 4);
    for (int i = 24; i < 32; i++)
        w[i] = 1;
    w[26] = 0;
    int64_t r, g;
    assert_false(ss_check_pattern(SS_DTYPE_I8, w, 2, 16, (ss_pattern){2, 8}, &r, &g));
    assert_int_equal(r, 1);
    assert_int_equal(g, 1);
    /* 2_10: inputs 0..9 hold 4 zeros, 10..15 + 4 padding */
    assert_int_equal(ss_detect_pattern_l(SS_DTYPE_I8, w, 2, 16), 10);
    int8_t ones[20];
    memset(ones, 1, sizeof ones);
    assert_int_equal(ss_detect_pattern_l(SS_DTYPE_I8, ones, 1, 20), 0);
    /* a dense-pruned 2_10 matrix is detected as at most 10, and the smaller
     * L it reports holds */
    ss_rng rng = {1};
    int8_t m[8 * 40];
    for (int i = 0; i < 8 * 40; i++)
        m[i] = (int8_t)(ss_rng_range(&rng, 1, 100));
    assert_ok(ss_prune(SS_DTYPE_I8, m, 8, 40, (ss_pattern){2, 10}, SS_DTYPE_F32, NULL));
    int l = ss_detect_pattern_l(SS_DTYPE_I8, m, 8, 40);
    assert_true(l >= 4 && l <= 10);
    assert_true(ss_check_pattern(SS_DTYPE_I8, m, 8, 40, (ss_pattern){2, l}, NULL, NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_brute_force),    cmocka_unit_test(test_keeps_largest),
        cmocka_unit_test(test_tie_break),      cmocka_unit_test(test_existing_zeros),
        cmocka_unit_test(test_inf_and_dense),  cmocka_unit_test(test_check_and_detect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
