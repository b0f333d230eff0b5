/* 2:4 compressor for wgmma.mma_async.sp (include/slidesparse/compress24.h):
 * exhaustive over every 2:4 mask of a group and every pair of masks, random
 * rows up to kp = 13824, for every supported dtype; decompress(compress(W))
 * == W bit for bit; every metadata nibble is one of the six pairs the PTX ISA
 * allows (idx0 < idx1) and covers the group's nonzeros; rejections; sizes. */
#include "support/ss_test.h"

#include <string.h>

static const ss_dtype k_types[] = {SS_DTYPE_I8, SS_DTYPE_F8_E4M3, SS_DTYPE_F8_E5M2, SS_DTYPE_BF16,
                                   SS_DTYPE_F16};
#define N_TYPES (sizeof k_types / sizeof k_types[0])

// --- helpers ---------------------------------------------------------------------------------------

static uint32_t get_bits(const void *a, size_t sz, int64_t i) {
    const unsigned char *p = (const unsigned char *)a + (size_t)i * sz;
    if (sz == 1)
        return p[0];
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

static void set_bits(void *a, size_t sz, int64_t i, uint32_t v) {
    unsigned char *p = (unsigned char *)a + (size_t)i * sz;
    if (sz == 1) {
        p[0] = (unsigned char)v;
    } else {
        uint16_t h = (uint16_t)v;
        memcpy(p, &h, 2);
    }
}

/* Random bits that are nonzero for dtype t (not +0, not -0). */
static uint32_t random_nonzero(ss_dtype t, size_t sz, ss_rng *rng) {
    for (;;) {
        uint32_t v = (uint32_t)ss_rng_next(rng) & (sz == 1 ? 0xFFu : 0xFFFFu);
        unsigned char buf[2];
        set_bits(buf, sz, 0, v);
        if (!ss_elem_is_zero(t, buf, 0))
            return v;
    }
}

/* Compresses w (n, kp), checks every group's nibble against the ISA rule and
 * the values against w, then the round trip. -0 in a dropped position must
 * come back as +0, everything else bit for bit. */
static void round_trip(ss_dtype t, const void *w, int64_t n, int64_t kp) {
    size_t sz = ss_dtype_size(t);
    size_t vb = ss_compress24_values_bytes(t, n, kp), mb = ss_compress24_meta_bytes(n, kp);
    unsigned char *vals = malloc(vb + 1);     // (n, kp/2)
    uint8_t *meta = malloc(mb + 1);           // (n, ceil(kp/8))
    unsigned char *back = malloc((size_t)(n * kp) * sz + 1); // (n, kp)
    assert_non_null(vals);
    assert_non_null(meta);
    assert_non_null(back);
    memset(meta, 0xFF, mb + 1);
    assert_ok(ss_compress24(t, w, n, kp, vals, meta));
    int64_t mrow = ss_meta24_row_bytes(kp);
    for (int64_t r = 0; r < n; r++) {
        for (int64_t g = 0; g < kp / 4; g++) {
            unsigned nib = (meta[r * mrow + g / 2] >> (4 * (g % 2))) & 15u;
            int i0 = (int)(nib & 3u), i1 = (int)(nib >> 2);
            if (!(i0 < i1))
                fail_msg("%s row %lld group %lld: nibble 0x%X is not two increasing indices",
                         ss_dtype_name(t), (long long)r, (long long)g, nib);
            int d0, d1;
            assert_true(ss_meta24_decode(nib, &d0, &d1));
            assert_int_equal(d0, i0);
            assert_int_equal(d1, i1);
            for (int i = 0; i < 4; i++)
                if (!ss_elem_is_zero(t, w, r * kp + 4 * g + i) && i != i0 && i != i1)
                    fail_msg("%s row %lld group %lld: nonzero at %d not kept by nibble 0x%X",
                             ss_dtype_name(t), (long long)r, (long long)g, i, nib);
            assert_int_equal(get_bits(vals, sz, r * (kp / 2) + 2 * g), get_bits(w, sz, r * kp + 4 * g + i0));
            assert_int_equal(get_bits(vals, sz, r * (kp / 2) + 2 * g + 1), get_bits(w, sz, r * kp + 4 * g + i1));
        }
        if ((kp / 4) % 2) /* odd group count: the spare high nibble is 0 */
            assert_int_equal(meta[r * mrow + mrow - 1] >> 4, 0);
    }
    memset(back, 0x5A, (size_t)(n * kp) * sz + 1);
    assert_ok(ss_decompress24(t, vals, meta, n, kp, back));
    for (int64_t i = 0; i < n * kp; i++) {
        uint32_t want = ss_elem_is_zero(t, w, i) ? 0u : get_bits(w, sz, i);
        uint32_t got = get_bits(back, sz, i);
        /* a zero may come back with its own bits only if it was kept */
        if (got != want && !(ss_elem_is_zero(t, w, i) && got == get_bits(w, sz, i)))
            fail_msg("%s element %lld (row %lld col %lld): wrote 0x%X, read back 0x%X",
                     ss_dtype_name(t), (long long)i, (long long)(i / kp), (long long)(i % kp),
                     get_bits(w, sz, i), got);
    }
    free(vals);
    free(meta);
    free(back);
}

/* The 11 masks of 4 bits with at most 2 set. */
static int masks_24(unsigned out[16]) {
    int m = 0;
    for (unsigned b = 0; b < 16; b++)
        if (__builtin_popcount(b) <= 2)
            out[m++] = b;
    return m;
}

static void fill_group(ss_dtype t, size_t sz, void *w, int64_t at, unsigned mask, ss_rng *rng) {
    for (int i = 0; i < 4; i++)
        set_bits(w, sz, at + i, (mask >> i) & 1u ? random_nonzero(t, sz, rng) : 0u);
}

// --- tests ---------------------------------------------------------------------------------------------

/* Every mask as a one-group row, and every ordered pair of masks as a
 * two-group row (so both nibbles of a byte are exercised), many value draws. */
static void test_exhaustive_masks(void **state) {
    (void)state;
    ss_rng rng = {24};
    unsigned masks[16];
    int m = masks_24(masks);
    assert_int_equal(m, 11);
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        ss_dtype t = k_types[ti];
        size_t sz = ss_dtype_size(t);
        unsigned char w1[4 * 2], w2[8 * 2 * 11 * 11];
        for (int rep = 0; rep < 50; rep++)
            for (int a = 0; a < m; a++) {
                fill_group(t, sz, w1, 0, masks[a], &rng);
                round_trip(t, w1, 1, 4);
            }
        for (int rep = 0; rep < 10; rep++) {
            int64_t row = 0;
            for (int a = 0; a < m; a++)
                for (int b = 0; b < m; b++, row++) {
                    fill_group(t, sz, w2, row * 8, masks[a], &rng);
                    fill_group(t, sz, w2, row * 8 + 4, masks[b], &rng);
                }
            round_trip(t, w2, row, 8);
        }
    }
}

/* The documented fill rule for groups with < 2 nonzeros (header rule 4). */
static void test_fill_rule(void **state) {
    (void)state;
    int8_t w[4];
    int8_t v[2];
    uint8_t meta;
    static const unsigned want[5] = {0x0C /* (0,3) none */, 0x0C /* (0,3) */, 0x0D /* (1,3) */,
                                     0x0E /* (2,3) */, 0x0C /* (0,3) */};
    for (int nz = -1; nz < 4; nz++) {
        memset(w, 0, sizeof w);
        if (nz >= 0)
            w[nz] = 7;
        assert_ok(ss_compress24(SS_DTYPE_I8, w, 1, 4, v, &meta));
        assert_int_equal(meta, want[nz + 1]);
    }
}

/* Random 2:4 rows (random masks per group), kp up to 13824, several rows so
 * the parallel path runs too. */
static void test_random_rows(void **state) {
    (void)state;
    ss_rng rng = {1384};
    unsigned masks[16];
    int m = masks_24(masks);
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        ss_dtype t = k_types[ti];
        size_t sz = ss_dtype_size(t);
        for (int rep = 0; rep < 6; rep++) {
            int64_t kp = rep == 0 ? 13824 : 4 * ss_rng_range(&rng, 1, 13824 / 4);
            int64_t n = rep == 0 ? 8 : ss_rng_range(&rng, 1, 4);
            unsigned char *w = malloc((size_t)(n * kp) * sz);
            assert_non_null(w);
            for (int64_t g = 0; g < n * kp / 4; g++)
                fill_group(t, sz, w, 4 * g, masks[ss_rng_below(&rng, (uint64_t)m)], &rng);
            int64_t br, bc;
            assert_true(ss_check_24(t, w, n, kp, &br, &bc));
            round_trip(t, w, n, kp);
            free(w);
        }
    }
}

/* -0.0 counts as zero (ss_check_24 semantics): a group with two nonzeros and
 * a -0 is accepted; a kept -0 keeps its bits, a dropped one comes back +0. */
static void test_negative_zero(void **state) {
    (void)state;
    uint8_t w[8] = {0x80, 0x38, 0x00, 0x40, /* -0, 1.0, 0, 2.0 (e4m3) */
                    0x00, 0x00, 0x00, 0x80}; /* only -0 at 3: kept as (0,3) */
    uint8_t v[4], meta, back[8];
    assert_true(ss_check_24(SS_DTYPE_F8_E4M3, w, 1, 8, NULL, NULL));
    assert_ok(ss_compress24(SS_DTYPE_F8_E4M3, w, 1, 8, v, &meta));
    assert_ok(ss_decompress24(SS_DTYPE_F8_E4M3, v, &meta, 1, 8, back));
    static const uint8_t want[8] = {0x00, 0x38, 0x00, 0x40, 0x00, 0x00, 0x00, 0x80};
    assert_memory_equal(back, want, 8);
    round_trip(SS_DTYPE_F8_E4M3, w, 1, 8);
}

/* A group with 3 or 4 nonzeros is rejected naming the FIRST bad row and its
 * group, also through the parallel path; compress agrees with ss_check_24. */
static void test_reject(void **state) {
    (void)state;
    int64_t n = 8, kp = 13824;
    int8_t *w = calloc((size_t)(n * kp), 1);
    int8_t *v = malloc((size_t)(n * kp / 2));
    uint8_t *meta = malloc((size_t)(n * kp / 8));
    assert_non_null(w);
    assert_non_null(v);
    assert_non_null(meta);
    w[7 * kp + 4] = w[7 * kp + 5] = w[7 * kp + 6] = 1;     /* row 7 group 1 */
    w[3 * kp + 20] = w[3 * kp + 21] = w[3 * kp + 22] = w[3 * kp + 23] = -1; /* row 3 group 5 */
    assert_false(ss_check_24(SS_DTYPE_I8, w, n, kp, NULL, NULL));
    assert_fails(ss_compress24(SS_DTYPE_I8, w, n, kp, v, meta), SS_EINVAL,
                 "row 3 group 5 (columns 20..23)");
    w[3 * kp + 20] = 0;
    w[3 * kp + 21] = 0;
    assert_fails(ss_compress24(SS_DTYPE_I8, w, n, kp, v, meta), SS_EINVAL, "row 7 group 1");
    w[7 * kp + 6] = 0;
    assert_true(ss_check_24(SS_DTYPE_I8, w, n, kp, NULL, NULL));
    assert_ok(ss_compress24(SS_DTYPE_I8, w, n, kp, v, meta));
    free(w);
    free(v);
    free(meta);
}

static void test_bad_args(void **state) {
    (void)state;
    int8_t w[8] = {0};
    int8_t v[4];
    uint8_t meta[1];
    assert_fails(ss_compress24(SS_DTYPE_I8, w, 1, 6, v, meta), SS_EINVAL, "kp=6");
    assert_fails(ss_compress24(SS_DTYPE_F32, w, 1, 4, v, meta), SS_EINVAL, "F32");
    assert_fails(ss_compress24(SS_DTYPE_I8, NULL, 1, 4, v, meta), SS_EINVAL, "non-NULL");
    assert_ok(ss_compress24(SS_DTYPE_I8, NULL, 0, 4, NULL, NULL));
    /* Illegal nibbles are rejected by decompress, naming row and group. */
    static const unsigned bad[] = {0x0, 0x5, 0xA, 0xF, 0x1, 0x6, 0x2 /* (2,0) */, 0x7 /* (3,1) */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int a, b;
        assert_false(ss_meta24_decode(bad[i], &a, &b));
        meta[0] = (uint8_t)(0x4 | bad[i] << 4); /* group 0 fine, group 1 bad */
        assert_fails(ss_decompress24(SS_DTYPE_I8, v, meta, 1, 8, w), SS_EINVAL, "row 0 group 1");
    }
    int legal = 0;
    for (unsigned nib = 0; nib < 16; nib++) {
        int a, b;
        legal += ss_meta24_decode(nib, &a, &b);
    }
    assert_int_equal(legal, 6);
}

static void test_sizes(void **state) {
    (void)state;
    assert_int_equal(ss_compress24_values_bytes(SS_DTYPE_I8, 3, 64), 96);
    assert_int_equal(ss_compress24_values_bytes(SS_DTYPE_F8_E4M3, 3, 64), 96);
    assert_int_equal(ss_compress24_values_bytes(SS_DTYPE_BF16, 3, 64), 192);
    assert_int_equal(ss_compress24_meta_bytes(3, 64), 24);
    assert_int_equal(ss_compress24_meta_bytes(2, 4), 2);
    assert_int_equal(ss_compress24_meta_bytes(2, 12), 4);
    assert_int_equal(ss_compress24_meta_bytes(5, 13824), 5 * 1728);
    assert_int_equal(ss_meta24_row_bytes(0), 0);
    assert_int_equal(ss_compress24_values_bytes(SS_DTYPE_I8, 1, 6), 0);
    assert_int_equal(ss_compress24_values_bytes(SS_DTYPE_F32, 1, 8), 0);
    assert_int_equal(ss_compress24_meta_bytes(-1, 8), 0);
    assert_true(ss_compress24_supports(SS_DTYPE_I8));
    assert_true(ss_compress24_supports(SS_DTYPE_F8_E4M3));
    assert_true(ss_compress24_supports(SS_DTYPE_BF16));
    assert_false(ss_compress24_supports(SS_DTYPE_F32));
    assert_false(ss_compress24_supports(SS_DTYPE_U8));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exhaustive_masks), cmocka_unit_test(test_fill_rule),
        cmocka_unit_test(test_random_rows),      cmocka_unit_test(test_negative_zero),
        cmocka_unit_test(test_reject),           cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
