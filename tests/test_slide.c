/* Sliding-window decomposition (SPEC §3): exhaustive over every mask with
 * <= L-2 nonzeros for L = 4..16, then multi-group rows, ragged K, 2_inf, the
 * SPEC example, and the failures of slide and unslide. Integer paths are
 * checked bit-exactly: W'·lift(x) == W·x in int32. */
#include "support/ss_test.h"

#include <string.h>

/* Per-row check of one slid matrix against its source: 2:4 validity, the dot
 * product with a random lifted x, and unslide(slide(W)) == W. */
static void check_slid_i8(const int8_t *w, int64_t n, int64_t k, ss_pattern p, ss_rng *rng) {
    int64_t ks = ss_slid_k(p, k);
    int8_t *s = malloc((size_t)(n * ks) + 1);  // (n, K')
    int8_t *back = malloc((size_t)(n * k) + 1); // (n, k)
    int32_t *map = malloc((size_t)ks * sizeof *map);
    int8_t *x = malloc((size_t)k + 1);
    assert_non_null(s);
    assert_non_null(back);
    assert_non_null(map);
    assert_non_null(x);
    memset(s, 0x5A, (size_t)(n * ks)); /* slide must overwrite everything */
    assert_ok(ss_slide(SS_DTYPE_I8, w, n, k, p, s));
    int64_t br, bc;
    if (!ss_check_24(SS_DTYPE_I8, s, n, ks, &br, &bc))
        fail_msg("k=%lld l=%d: slid row %lld not 2:4 at column %lld", (long long)k, p.l,
                 (long long)br, (long long)bc);
    assert_ok(ss_lift_map(p, k, map));
    for (int64_t r = 0; r < n; r++) {
        for (int64_t i = 0; i < k; i++)
            x[i] = (int8_t)ss_rng_range(rng, -128, 127);
        int32_t dense = 0, slid = 0;
        for (int64_t i = 0; i < k; i++)
            dense += (int32_t)w[r * k + i] * x[i];
        for (int64_t j = 0; j < ks; j++)
            slid += (int32_t)s[r * ks + j] * (map[j] >= 0 ? x[map[j]] : 0);
        if (dense != slid)
            fail_msg("k=%lld l=%d row %lld: W'x' = %d, Wx = %d", (long long)k, p.l, (long long)r,
                     slid, dense);
    }
    memset(back, 0x5A, (size_t)(n * k));
    assert_ok(ss_unslide(SS_DTYPE_I8, s, n, k, p, back));
    for (int64_t i = 0; i < n * k; i++)
        if (back[i] != w[i])
            fail_msg("k=%lld l=%d: unslide differs at row %lld col %lld: %d != %d", (long long)k,
                     p.l, (long long)(i / k), (long long)(i % k), back[i], w[i]);
    free(s);
    free(back);
    free(map);
    free(x);
}

static int8_t nonzero_i8(ss_rng *r) {
    int v = (int)ss_rng_range(r, -128, 126);
    return (int8_t)(v >= 0 ? v + 1 : v);
}

static void test_exhaustive(void **state) {
    (void)state;
    ss_rng rng = {42};
    for (int l = 4; l <= 16; l += 2) {
        ss_pattern p = {2, l};
        int64_t n = 0;
        int8_t *w = malloc((size_t)(1 << l) * (size_t)l); // (masks, l)
        assert_non_null(w);
        for (uint32_t mask = 0; mask < (1u << l); mask++) {
            if (__builtin_popcount(mask) > l - 2)
                continue;
            for (int i = 0; i < l; i++)
                w[n * l + i] = (mask >> i) & 1 ? nonzero_i8(&rng) : 0;
            n++;
        }
        check_slid_i8(w, n, l, p, &rng);
        /* every mask with L-1 or L nonzeros cannot fit */
        for (uint32_t mask = 0; mask < (1u << l); mask++) {
            if (__builtin_popcount(mask) < l - 1)
                continue;
            int8_t row[16], out[64];
            for (int i = 0; i < l; i++)
                row[i] = (mask >> i) & 1 ? nonzero_i8(&rng) : 0;
            assert_fails(ss_slide(SS_DTYPE_I8, row, 1, l, p, out), SS_EINVAL, "row 0 group 0");
        }
        free(w);
    }
}

/* Random rows pruned by construction: each group (padding included) has at
 * least 2 zeros. */
static void random_pruned(int8_t *w, int64_t n, int64_t k, int l, double density, ss_rng *rng) {
    for (int64_t r = 0; r < n; r++)
        for (int64_t b = 0; b < k; b += l) {
            int64_t end = b + l < k ? b + l : k, nz = 0, room = l - 2;
            for (int64_t i = b; i < end; i++) {
                int on = nz < room && (double)ss_rng_below(rng, 1000) < density * 1000.0;
                w[r * k + i] = on ? nonzero_i8(rng) : 0;
                nz += on;
            }
        }
}

static void test_multi_group(void **state) {
    (void)state;
    ss_rng rng = {7};
    const int64_t ks[] = {1, 3, 5, 17, 37, 64, 100, 255, 2560};
    for (int l = 4; l <= 16; l += 2)
        for (size_t a = 0; a < sizeof ks / sizeof ks[0]; a++) {
            int64_t k = ks[a], n = k > 1000 ? 8 : 24;
            int8_t *w = malloc((size_t)(n * k));
            assert_non_null(w);
            for (int d = 0; d < 3; d++) {
                random_pruned(w, n, k, l, d == 0 ? 0.3 : d == 1 ? 0.8 : 1.0, &rng);
                check_slid_i8(w, n, k, (ss_pattern){2, l}, &rng);
            }
            free(w);
        }
}

/* 2_inf: dense rows, no zeros at all, go through the slid path unchanged. */
static void test_inf_dense(void **state) {
    (void)state;
    ss_rng rng = {9};
    const int64_t ks[] = {1, 2, 3, 4, 7, 64, 101, 2560};
    for (size_t a = 0; a < sizeof ks / sizeof ks[0]; a++) {
        int64_t k = ks[a], n = 5;
        int8_t *w = malloc((size_t)(n * k));
        assert_non_null(w);
        for (int64_t i = 0; i < n * k; i++)
            w[i] = nonzero_i8(&rng);
        check_slid_i8(w, n, k, SS_PATTERN_INF, &rng);
        free(w);
    }
}

/* Wider element types: the same placement, bit patterns preserved. */
static void test_other_dtypes(void **state) {
    (void)state;
    ss_rng rng = {11};
    const int64_t n = 16, k = 50;
    const ss_pattern p = {2, 6};
    int8_t w8[16 * 50];
    random_pruned(w8, n, k, p.l, 0.9, &rng);
    uint16_t wb[16 * 50], bb[16 * 50];
    float wf[16 * 50], bf[16 * 50];
    int64_t ks = ss_slid_k(p, k);
    uint16_t *sb = malloc((size_t)(n * ks) * 2);
    float *sf = malloc((size_t)(n * ks) * 4);
    int8_t *s8 = malloc((size_t)(n * ks));
    for (int64_t i = 0; i < n * k; i++) {
        wf[i] = (float)w8[i] * 0.37f;
        wb[i] = ss_f32_to_bf16(wf[i]);
    }
    assert_ok(ss_slide(SS_DTYPE_I8, w8, n, k, p, s8));
    assert_ok(ss_slide(SS_DTYPE_BF16, wb, n, k, p, sb));
    assert_ok(ss_slide(SS_DTYPE_F32, wf, n, k, p, sf));
    for (int64_t j = 0; j < n * ks; j++) {
        assert_int_equal(s8[j] != 0, sb[j] != 0);
        assert_true(sf[j] == (float)s8[j] * 0.37f);
    }
    assert_ok(ss_unslide(SS_DTYPE_BF16, sb, n, k, p, bb));
    assert_ok(ss_unslide(SS_DTYPE_F32, sf, n, k, p, bf));
    assert_memory_equal(bb, wb, sizeof wb);
    assert_memory_equal(bf, wf, sizeof wf);
    free(sb);
    free(sf);
    free(s8);
}

/* SPEC §3, literally. */
static void test_spec_example(void **state) {
    (void)state;
    const int8_t w[8] = {5, 0, 7, 3, 0, 2, 9, 4};
    const int8_t want[12] = {5, 0, 7, 0, 0, 3, 0, 2, 0, 0, 9, 4};
    ss_pattern p;
    assert_ok(ss_pattern_parse("6:8", &p));
    assert_int_equal(ss_slid_k(p, 8), 32);
    int8_t s[32];
    assert_ok(ss_slide(SS_DTYPE_I8, w, 1, 8, p, s));
    for (int j = 0; j < 32; j++)
        assert_int_equal(s[j], j < 12 ? want[j] : 0);
    const int8_t x[8] = {1, -2, 3, -4, 5, -6, 7, -8};
    const int8_t xl[12] = {1, -2, 3, -4, 3, -4, 5, -6, 5, -6, 7, -8};
    int32_t d = 0, ds = 0;
    for (int i = 0; i < 8; i++)
        d += w[i] * x[i];
    for (int j = 0; j < 12; j++)
        ds += s[j] * xl[j];
    assert_int_equal(d, ds);
}

static void test_slide_unpruned(void **state) {
    (void)state;
    /* rows 0 and 2 fit 2_6; row 1 group 2 (inputs 12..17) has 5 nonzeros */
    int8_t w[3 * 20] = {0};
    for (int i = 12; i < 17; i++)
        w[20 + i] = 1;
    w[2 * 20 + 19] = 3;
    int8_t out[3 * 64];
    assert_fails(ss_slide(SS_DTYPE_I8, w, 3, 20, (ss_pattern){2, 6}, out), SS_EINVAL,
                 "row 1 group 2");
    /* the padded last group of K=20, L=8 (inputs 16..23) holds 4 real inputs:
     * all 4 nonzero still fit (the padding supplies the zeros) */
    int8_t v[20] = {0};
    for (int i = 16; i < 20; i++)
        v[i] = 2;
    assert_ok(ss_slide(SS_DTYPE_I8, v, 1, 20, (ss_pattern){2, 8}, out));
    assert_fails(ss_slide(SS_DTYPE_F64, v, 1, 20, (ss_pattern){2, 8}, out), SS_EINVAL, "F64");
    assert_fails(ss_slide(SS_DTYPE_I8, v, 1, 20, (ss_pattern){2, 7}, out), SS_EINVAL, "pattern");
}

static void test_unslide_corrupt(void **state) {
    (void)state;
    const ss_pattern p = {2, 8};
    int8_t back[2 * 6];
    /* K = 6: K'raw = 12, but inputs 6 and 7 are padding: columns 9, 10, 11
     * (sources 5, 6, 7 -> 10 and 11 lift nothing) */
    int8_t s[2 * 32] = {0};
    s[32 + 11] = 1;
    assert_fails(ss_unslide(SS_DTYPE_I8, s, 2, 6, p, back), SS_EINVAL, "row 1 column 11");
    memset(s, 0, sizeof s);
    s[20] = 4; /* beyond K'raw */
    assert_fails(ss_unslide(SS_DTYPE_I8, s, 2, 6, p, back), SS_EINVAL, "row 0 column 20");
    memset(s, 0, sizeof s);
    s[2] = 1; /* input 2 */
    s[4] = 1; /* input 2 again */
    assert_fails(ss_unslide(SS_DTYPE_I8, s, 2, 6, p, back), SS_EINVAL, "row 0 column 4");
    assert_non_null(strstr(ss_last_error(), "input 2"));
    /* -0.0 is zero: not a collision */
    float f[32] = {0}, fb[8];
    f[2] = 1.0f;
    f[4] = -0.0f;
    assert_ok(ss_unslide(SS_DTYPE_F32, f, 1, 8, p, fb));
    assert_true(fb[2] == 1.0f);
}

static void test_check_24(void **state) {
    (void)state;
    int8_t w[2 * 8] = {1, 1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 0};
    int64_t r, c;
    assert_true(ss_check_24(SS_DTYPE_I8, w, 1, 8, &r, &c));
    assert_false(ss_check_24(SS_DTYPE_I8, w, 2, 8, &r, &c));
    assert_int_equal(r, 1);
    assert_int_equal(c, 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exhaustive),      cmocka_unit_test(test_multi_group),
        cmocka_unit_test(test_inf_dense),       cmocka_unit_test(test_other_dtypes),
        cmocka_unit_test(test_spec_example),    cmocka_unit_test(test_slide_unpruned),
        cmocka_unit_test(test_unslide_corrupt), cmocka_unit_test(test_check_24),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
