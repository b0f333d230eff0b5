/* Patterns: parse/format, the K' table of SPEC §1, expansion and ideal
 * speedup, and the invariants of the lifting index map. */
#include "support/ss_test.h"

#include <math.h>
#include <string.h>

static const int all_l[] = {4, 6, 8, 10, 12, 14, 16};
#define N_L (int)(sizeof all_l / sizeof all_l[0])

static void test_parse_format(void **state) {
    (void)state;
    ss_pattern p;
    char buf[32];
    for (int i = 0; i < N_L; i++) {
        char s[16];
        snprintf(s, sizeof s, "2_%d", all_l[i]);
        assert_ok(ss_pattern_parse(s, &p));
        assert_int_equal(p.z, 2);
        assert_int_equal(p.l, all_l[i]);
        assert_string_equal(ss_pattern_format(p, buf, sizeof buf), s);
        /* the paper's (L-2):L notation names the same pattern */
        snprintf(s, sizeof s, "%d:%d", all_l[i] - 2, all_l[i]);
        ss_pattern q;
        assert_ok(ss_pattern_parse(s, &q));
        assert_int_equal(q.z, p.z);
        assert_int_equal(q.l, p.l);
    }
    assert_ok(ss_pattern_parse("6:8", &p));
    assert_string_equal(ss_pattern_format(p, buf, sizeof buf), "2_8");
    assert_ok(ss_pattern_parse("2_inf", &p));
    assert_true(ss_pattern_is_inf(p));
    assert_false(ss_pattern_is_dense(p));
    assert_string_equal(ss_pattern_format(p, buf, sizeof buf), "2_inf");
    assert_ok(ss_pattern_parse("inf", &p));
    assert_true(ss_pattern_is_inf(p));
    assert_true(ss_pattern_is_dense(SS_PATTERN_DENSE));
    assert_string_equal(ss_pattern_format(SS_PATTERN_DENSE, buf, sizeof buf), "dense");
}

static void test_parse_rejects(void **state) {
    (void)state;
    const char *bad[] = {"2_7", "3_8", "2_2", "2_", "x", "2_8x", "", "4:6:8", "2_0", "_8",
                         "5:8", "2:8", "-2_8", "2_-8", "2__8", " 2_8", "2_8 ", "2_inff",
                         "2_99999999999", "2_3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ss_pattern p = {7, 7};
        ss_status s = ss_pattern_parse(bad[i], &p);
        if (s != SS_EINVAL)
            fail_msg("pattern '%s' accepted (%s)", bad[i], ss_status_name(s));
        assert_non_null(strstr(ss_last_error(), "pattern"));
        assert_null(strchr(ss_last_error(), '\n'));
    }
    assert_fails(ss_pattern_parse("3_8", &(ss_pattern){0, 0}), SS_EINVAL, "3_8");
}

/* SPEC §1 table, typed in from the spec. */
static void test_k_table(void **state) {
    (void)state;
    struct {
        const char *pat;
        double e;
        int64_t k2560, k6912;
        double bound;
    } rows[] = {
        {"2_4", 1.000, 2560, 6912, 2.00},   {"2_6", 1.333, 3424, 9216, 1.50},
        {"2_8", 1.500, 3840, 10368, 1.333}, {"2_10", 1.600, 4096, 11072, 1.25},
        {"2_12", 1.667, 4288, 11520, 1.20}, {"2_14", 1.714, 4416, 11872, 1.167},
        {"2_16", 1.750, 4480, 12096, 1.143}, {"2_inf", 2.000, 5120, 13824, 1.00},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        ss_pattern p;
        assert_ok(ss_pattern_parse(rows[i].pat, &p));
        assert_int_equal(ss_slid_k(p, 2560), rows[i].k2560);
        assert_int_equal(ss_slid_k(p, 6912), rows[i].k6912);
        assert_true(fabs(ss_pattern_expansion(p) - rows[i].e) < 6e-4);
        assert_true(fabs(ss_pattern_ideal_speedup(p) - rows[i].bound) < 6e-4);
        assert_true(ss_slid_k(p, 2560) % 32 == 0);
    }
    /* dense: K padded to 32 */
    assert_int_equal(ss_slid_k(SS_PATTERN_DENSE, 2560), 2560);
    assert_int_equal(ss_slid_k(SS_PATTERN_DENSE, 100), 128);
    assert_true(ss_pattern_expansion(SS_PATTERN_DENSE) == 1.0);
    assert_int_equal(ss_ceil32(0), 0);
    assert_int_equal(ss_ceil32(1), 32);
    assert_int_equal(ss_ceil32(32), 32);
    assert_int_equal(ss_ceil32(33), 64);
}

/* Sizes from the definitions: Kp = ceil(K/L)*L, K'raw = (Kp/L)*4(N-1). */
static void test_sizes(void **state) {
    (void)state;
    for (int i = 0; i < N_L; i++) {
        ss_pattern p = {2, all_l[i]};
        int64_t l = all_l[i];
        for (int64_t k = 0; k < 200; k++) {
            int64_t kp = (k + l - 1) / l * l;
            assert_int_equal(ss_padded_k(p, k), kp);
            assert_int_equal(ss_slid_k_raw(p, k), kp / l * (2 * l - 4));
            assert_int_equal(ss_pattern_group_len(p, k), l);
        }
    }
    for (int64_t k = 1; k < 50; k++) {
        int64_t c2 = (k + 1) / 2 * 2;
        assert_int_equal(ss_pattern_group_len(SS_PATTERN_INF, k), c2 + 2);
        assert_int_equal(ss_slid_k_raw(SS_PATTERN_INF, k), 2 * c2);
    }
}

/* Checks the lift map of (p, k) against the SPEC §4 formula and its
 * structural invariants. */
static void check_lift(ss_pattern p, int64_t k) {
    int64_t ks = ss_slid_k(p, k), raw = ss_slid_k_raw(p, k);
    int64_t l = ss_pattern_group_len(p, k), g = 2 * l - 4;
    int32_t *map = malloc((size_t)ks * sizeof *map);
    int *uses = calloc((size_t)k + 1, sizeof *uses);
    assert_non_null(map);
    assert_non_null(uses);
    assert_ok(ss_lift_map(p, k, map));
    for (int64_t j = 0; j < ks; j++) {
        assert_int_equal(map[j], ss_lift_src(p, k, j));
        int64_t want = -1;
        if (j < raw) {
            int64_t gi = j / g, r = j % g, w = r / 4, lane = r % 4;
            want = gi * l + 2 * w + lane;
            if (want >= k)
                want = -1;
        }
        assert_int_equal(map[j], want);
        if (map[j] >= 0) {
            assert_true(map[j] < k);
            uses[map[j]]++;
        }
    }
    /* Each input is lifted once at a group's first/last pair, twice where two
     * windows overlap. */
    for (int64_t i = 0; i < k; i++) {
        int64_t pos = i % l;
        int want = (pos < 2 || pos >= l - 2) ? 1 : 2;
        if (uses[i] != want)
            fail_msg("k=%lld l=%lld: input %lld lifted %d times, expected %d", (long long)k,
                     (long long)l, (long long)i, uses[i], want);
    }
    assert_int_equal(ss_lift_src(p, k, ks), -1);
    assert_int_equal(ss_lift_src(p, k, -1), -1);
    free(map);
    free(uses);
}

static void test_lift_map(void **state) {
    (void)state;
    const int64_t ks[] = {1, 2, 3, 5, 8, 31, 64, 100, 2560, 6912};
    for (size_t a = 0; a < sizeof ks / sizeof ks[0]; a++) {
        for (int i = 0; i < N_L; i++)
            check_lift((ss_pattern){2, all_l[i]}, ks[a]);
        check_lift(SS_PATTERN_INF, ks[a]);
    }
    /* dense: identity, zero padding */
    int32_t map[128];
    assert_ok(ss_lift_map(SS_PATTERN_DENSE, 100, map));
    for (int j = 0; j < 128; j++)
        assert_int_equal(map[j], j < 100 ? j : -1);
    /* SPEC §3 example: 6:8, x' = [x0..x3 | x2..x5 | x4..x7] */
    const int32_t want[12] = {0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7};
    int32_t m8[32];
    assert_ok(ss_lift_map((ss_pattern){2, 8}, 8, m8));
    for (int j = 0; j < 32; j++)
        assert_int_equal(m8[j], j < 12 ? want[j] : -1);
    assert_fails(ss_lift_map((ss_pattern){3, 8}, 8, m8), SS_EINVAL, "pattern");
}

static void test_elem_is_zero(void **state) {
    (void)state;
    float f[3] = {0.0f, -0.0f, 1e-30f};
    assert_true(ss_elem_is_zero(SS_DTYPE_F32, f, 0));
    assert_true(ss_elem_is_zero(SS_DTYPE_F32, f, 1));
    assert_false(ss_elem_is_zero(SS_DTYPE_F32, f, 2));
    uint16_t h[2] = {0x8000, 0x0001};
    assert_true(ss_elem_is_zero(SS_DTYPE_BF16, h, 0));
    assert_false(ss_elem_is_zero(SS_DTYPE_BF16, h, 1));
    uint8_t b[2] = {0x80, 0x80};
    assert_true(ss_elem_is_zero(SS_DTYPE_F8_E4M3, b, 0));
    assert_false(ss_elem_is_zero(SS_DTYPE_I8, b, 1)); /* int8 -128 */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_format), cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_k_table),      cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_lift_map),     cmocka_unit_test(test_elem_is_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
