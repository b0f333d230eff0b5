/* The weight layout of the weight-streaming decode GEMM (src/linear/stream_layout.h):
 * where single elements land (the fragment map written out by hand for a few
 * positions, so a transposed or shifted map fails), unpack(pack(W)) == W for
 * dense and 2:4 weights of ragged shapes (rows past a 64-row tile, K' not a
 * multiple of the 64-column 2:4 step), the padding is zero, every metadata
 * nibble is one of the ISA's six pairs, and bad input is refused by name. */
#include "support/linear_inputs.h"

#include <string.h>

#include "linear/stream_layout.h"
#include "slidesparse/compress24.h"

static uint8_t *packed_dense(const uint8_t *w, int64_t n, int64_t k, int64_t kq) {
    size_t bytes = ss_stream_bytes(0, n, kq);
    uint8_t *out = malloc(bytes);
    assert_non_null(out);
    memset(out, 0xAB, bytes); /* poison: pack must write every byte */
    assert_ok(ss_stream_pack_dense(w, n, k, kq, out));
    return out;
}

static void test_sizes(void **state) {
    (void)state;
    assert_int_equal(ss_stream_tiles(64), 1);
    assert_int_equal(ss_stream_tiles(65), 2);
    assert_int_equal(ss_stream_steps(0, 2560), 80);
    assert_int_equal(ss_stream_steps(1, 3424), 54); /* 2_6 at K 2560: 53.5 steps -> 54 */
    assert_int_equal(ss_stream_bytes(0, 3840, 2560), (size_t)3840 * 2560);
    /* 2:4: 0.625 bytes per K' column of a full tile */
    assert_int_equal(ss_stream_bytes(1, 128, 3840), (size_t)128 * 3840 * 5 / 8);
    assert_int_equal(ss_stream_bytes(0, 0, 64), 0);
    assert_int_equal(ss_stream_bytes(1, 64, 0), 0);
}

/* Single bytes at hand-computed offsets: thread t = 32 w + l holds rows
 * 16w + l/4 (+8), columns 4(l%4) (+16) of its step. */
static void test_dense_positions(void **state) {
    (void)state;
    int64_t n = 130, k = 70, kq = 96; /* 3 tiles, 3 steps */
    uint8_t *w = calloc((size_t)(n * k), 1);
    assert_non_null(w);
    w[0 * k + 0] = 1;   /* thread 0, word 0 */
    w[8 * k + 0] = 2;   /* thread 0, word 1 (row r0 + 8) */
    w[0 * k + 16] = 3;  /* thread 0, word 2 (column c + 16) */
    w[0 * k + 5] = 4;   /* thread 1 (l % 4 = 1: columns 4..7), byte 1 */
    w[17 * k + 0] = 5;  /* warp 1, lane 4 (row 16 + 1) */
    w[0 * k + 33] = 6;  /* step 1, thread 0, byte 1 */
    w[64 * k + 0] = 7;  /* tile 1, step 0 */
    w[129 * k + 69] = 8; /* tile 2: row 1 (lane 4), column 69 = step 2, col 5 (lane 5, byte 1) */
    uint8_t *p = packed_dense(w, n, k, kq);
    assert_int_equal(p[0], 1);
    assert_int_equal(p[4], 2);
    assert_int_equal(p[8], 3);
    assert_int_equal(p[16 + 1], 4);
    assert_int_equal(p[16 * (32 + 4)], 5);
    assert_int_equal(p[2048 + 1], 6);
    assert_int_equal(p[3 * 2048], 7);
    assert_int_equal(p[(2 * 3 + 2) * 2048 + 16 * 5 + 1], 8);
    size_t nonzero = 0;
    for (size_t i = 0; i < ss_stream_bytes(0, n, kq); i++)
        nonzero += p[i] != 0;
    assert_int_equal(nonzero, 8); /* padding rows / columns are zero */
    free(p);
    free(w);
}

static void dense_round_trip(int64_t n, int64_t k, uint64_t seed) {
    ss_rng r = {seed};
    int64_t kq = (k + 31) / 32 * 32;
    uint8_t *w = ss_test_random_weight(&r, SS_DTYPE_I8, n, k);
    uint8_t *p = packed_dense(w, n, k, kq);
    uint8_t *back = malloc((size_t)(n * kq));
    assert_non_null(back);
    memset(back, 0xAB, (size_t)(n * kq));
    assert_ok(ss_stream_unpack(0, p, n, kq, back));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < kq; j++)
            assert_int_equal(back[i * kq + j], j < k ? w[i * k + j] : 0);
    free(back);
    free(p);
    free(w);
}

static void test_dense_round_trip(void **state) {
    (void)state;
    dense_round_trip(1, 1, 1);
    dense_round_trip(64, 32, 2);
    dense_round_trip(200, 2565, 3);
    dense_round_trip(3840 / 10, 2560, 4);
}

/* 2:4 round trip on slid weights of pattern p (dtype t), nibble legality,
 * and a hand-placed metadata nibble. */
static void sparse_round_trip(ss_dtype t, const char *pat, int64_t n, int64_t k, uint64_t seed) {
    ss_rng r = {seed};
    ss_pattern p;
    assert_ok(ss_pattern_parse(pat, &p));
    int64_t kq = ss_slid_k(p, k);
    uint8_t *w = ss_test_random_slid_weight(&r, t, n, k, p);
    size_t bytes = ss_stream_bytes(1, n, kq);
    uint8_t *pk = malloc(bytes), *back = malloc((size_t)(n * kq));
    assert_non_null(pk);
    assert_non_null(back);
    memset(pk, 0xAB, bytes);
    assert_ok(ss_stream_pack_sparse(t, w, n, kq, pk, "t.weight"));
    int64_t steps = ss_stream_steps(1, kq), tiles = ss_stream_tiles(n);
    for (int64_t rec = 0; rec < tiles * steps; rec++)
        for (int th = 0; th < 128; th++) {
            uint32_t word;
            memcpy(&word, pk + rec * SS_STREAM_SPARSE_RECORD + SS_STREAM_META_OFFSET + 4 * th, 4);
            for (int j = 0; j < 8; j++) {
                int a, b;
                assert_true(ss_meta24_decode((word >> (4 * j)) & 15u, &a, &b));
            }
        }
    assert_ok(ss_stream_unpack(1, pk, n, kq, back));
    for (int64_t i = 0; i < n * kq; i++) {
        /* a -0.0 in a dropped position comes back as +0 (compress24.h) */
        uint8_t want = ss_elem_is_zero(t, w, i) ? 0 : w[i];
        uint8_t got = ss_elem_is_zero(t, back, i) ? 0 : back[i];
        assert_int_equal(got, want);
    }
    free(back);
    free(pk);
    free(w);
}

static void test_sparse_round_trip(void **state) {
    (void)state;
    sparse_round_trip(SS_DTYPE_I8, "2_4", 64, 256, 10);
    sparse_round_trip(SS_DTYPE_I8, "2_6", 130, 2560, 11); /* K' 3424: a half step at the end */
    sparse_round_trip(SS_DTYPE_I8, "2_8", 70, 2565, 12);
    sparse_round_trip(SS_DTYPE_F8_E4M3, "2_8", 100, 640, 13);
    sparse_round_trip(SS_DTYPE_F8_E4M3, "2_16", 65, 320, 14);
}

/* Thread (w, l)'s metadata word holds row 16w + l/4 + 8(l%2), groups
 * 8((l/2)%2) .. +7; the values word 0 of thread 0 holds row 0's first
 * compressed bytes. */
static void test_sparse_positions(void **state) {
    (void)state;
    int64_t n = 64, kq = 64;
    uint8_t w[64 * 64];
    memset(w, 0, sizeof w);
    w[0 * 64 + 1] = 11; /* row 0, group 0: kept (1, 3) */
    w[8 * 64 + 6] = 12; /* row 8, group 1: kept (2, 3) */
    w[0 * 64 + 33] = 13; w[0 * 64 + 34] = 14; /* row 0, group 8: kept (1, 2) */
    w[21 * 64 + 12] = 15; /* row 21 = 16 + 5: warp 1, lane 4*5+0; group 3: (0, 3) */
    uint8_t pk[SS_STREAM_SPARSE_RECORD];
    assert_ok(ss_stream_pack_sparse(SS_DTYPE_I8, w, n, kq, pk, "t.weight"));
    uint32_t m0, m1, m2, m21;
    memcpy(&m0, pk + SS_STREAM_META_OFFSET + 4 * 0, 4);
    memcpy(&m1, pk + SS_STREAM_META_OFFSET + 4 * 1, 4);
    memcpy(&m2, pk + SS_STREAM_META_OFFSET + 4 * 2, 4);
    memcpy(&m21, pk + SS_STREAM_META_OFFSET + 4 * (32 + 20), 4);
    assert_int_equal(m0 & 15u, 1u | 3u << 2);
    assert_int_equal((m1 >> 4) & 15u, 2u | 3u << 2);
    assert_int_equal(m2 & 15u, 1u | 2u << 2);
    assert_int_equal((m21 >> 12) & 15u, 0u | 3u << 2);
    /* values: thread 0 word 0 = row 0's compressed columns 0..3 = (w1, 0, ...);
     * thread 0 word 2 = columns 16..19 = group 8's pair (13, 14) */
    assert_int_equal(pk[0], 11);
    assert_int_equal(pk[8], 13);
    assert_int_equal(pk[9], 14);
}

static void test_reject(void **state) {
    (void)state;
    uint8_t w[64 * 32], out[SS_STREAM_SPARSE_RECORD];
    memset(w, 0, sizeof w);
    w[5 * 32 + 8] = w[5 * 32 + 9] = w[5 * 32 + 10] = 1; /* 3 nonzeros in a group of 4 */
    assert_fails(ss_stream_pack_sparse(SS_DTYPE_I8, w, 64, 32, out, "layers.0.mlp.up_proj.weight"),
                 SS_EINVAL, "layers.0.mlp.up_proj.weight");
    memset(w, 0, sizeof w);
    assert_fails(ss_stream_pack_sparse(SS_DTYPE_BF16, w, 32, 32, out, "x.weight"), SS_EINVAL,
                 "expected I8 or F8_E4M3");
    assert_fails(ss_stream_pack_sparse(SS_DTYPE_I8, w, 64, 30, out, "x.weight"), SS_EINVAL,
                 "K' % 32 == 0");
    assert_fails(ss_stream_pack_dense(w, 64, 33, 32, out), SS_EINVAL, "k <= kq");
    assert_fails(ss_stream_unpack(0, NULL, 64, 32, w), SS_EINVAL, "buffers");
    /* an illegal nibble (two equal indices) is refused on unpack */
    assert_ok(ss_stream_pack_sparse(SS_DTYPE_I8, w, 64, 32, out, "x.weight"));
    out[SS_STREAM_META_OFFSET] = 0x00;
    uint8_t back[64 * 32];
    assert_fails(ss_stream_unpack(1, out, 64, 32, back), SS_EINVAL, "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),           cmocka_unit_test(test_dense_positions),
        cmocka_unit_test(test_dense_round_trip), cmocka_unit_test(test_sparse_round_trip),
        cmocka_unit_test(test_sparse_positions), cmocka_unit_test(test_reject),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
