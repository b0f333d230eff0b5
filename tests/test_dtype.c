/* dtypes: names, parsing, sizes, element loads, tensor views, and the float
 * conversions checked exhaustively against an independent reference.
 *
 * The reference decodes a bit pattern from its fields with ldexp, and encodes
 * by searching the sorted table of every finite value of the format for the
 * nearest one in double (ties to the even code), then applying the overflow
 * rule of core.h. It shares no code with core/dtype_inline.h. */
#include "support/ss_test.h"

#include "core/dtype_inline.h"

#include <math.h>
#include <string.h>

// --- an independent reference for the narrow float formats -------------------------

typedef struct {
    const char *name;
    int ebits, mbits, bias;
    int ieee;     /* 1: all-ones exponent is Inf/NaN; 0: OCP "fn", only S.1111.111 is NaN */
    int nfinite;  /* finite non-negative codes are 0 .. nfinite-1, increasing in value */
    double *vals; /* (nfinite) value of each finite non-negative code */
} fmt;

static fmt F_BF16 = {"BF16", 8, 7, 127, 1, 0, NULL};
static fmt F_F16 = {"F16", 5, 10, 15, 1, 0, NULL};
static fmt F_E4M3 = {"E4M3", 4, 3, 7, 0, 0, NULL};
static fmt F_E5M2 = {"E5M2", 5, 2, 15, 1, 0, NULL};

static int fmt_bits(const fmt *f) { return 1 + f->ebits + f->mbits; }

/* Value of a bit pattern from its fields: (-1)^s * 2^(e-bias) * 1.m, or
 * 2^(1-bias) * 0.m for e == 0. */
static double ref_decode(const fmt *f, uint32_t code) {
    uint32_t emax = (1u << f->ebits) - 1, mmax = (1u << f->mbits) - 1;
    int s = (code >> (f->ebits + f->mbits)) & 1;
    uint32_t e = (code >> f->mbits) & emax, m = code & mmax;
    double v;
    if (f->ieee && e == emax)
        v = m ? NAN : INFINITY;
    else if (!f->ieee && e == emax && m == mmax)
        v = NAN;
    else if (e == 0)
        v = ldexp((double)m, 1 - f->bias - f->mbits);
    else
        v = ldexp((double)((1u << f->mbits) + m), (int)e - f->bias - f->mbits);
    return s ? -v : v;
}

static void fmt_init(fmt *f) {
    if (f->vals)
        return;
    f->nfinite = f->ieee ? (int)(((1u << f->ebits) - 1) << f->mbits) : (1 << (f->ebits + f->mbits)) - 1;
    f->vals = malloc(sizeof(double) * (size_t)f->nfinite);
    assert_non_null(f->vals);
    for (int c = 0; c < f->nfinite; c++) {
        f->vals[c] = ref_decode(f, (uint32_t)c);
        assert_true(isfinite(f->vals[c]));
        if (c)
            assert_true(f->vals[c] > f->vals[c - 1]);
    }
}

/* Encoding of a non-NaN x by the rules of core.h: nearest, ties to the even
 * code; IEEE formats overflow to Inf from max + ulp(max)/2 on (a tie there
 * goes to the even neighbour, which is 2^(emax+1) = Inf); E4M3 saturates. */
static uint32_t ref_encode(const fmt *f, double x) {
    uint32_t sign = signbit(x) ? 1u << (fmt_bits(f) - 1) : 0;
    uint32_t inf = (uint32_t)f->nfinite; /* IEEE: the code just past the last finite */
    double a = fabs(x), *v = f->vals;
    int n = f->nfinite;
    double maxv = v[n - 1], half_ulp = (v[n - 1] - v[n - 2]) / 2;
    if (f->ieee && a >= maxv + half_ulp)
        return sign | inf;
    if (!f->ieee && a >= maxv)
        return sign | (uint32_t)(n - 1);
    int lo = 0, hi = n - 1; /* largest i with v[i] <= a */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (v[mid] <= a)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (v[lo] == a || lo == n - 1)
        return sign | (uint32_t)lo;
    double dlo = a - v[lo], dhi = v[lo + 1] - a;
    int pick = dlo < dhi ? lo : dhi < dlo ? lo + 1 : (lo % 2 == 0 ? lo : lo + 1);
    return sign | (uint32_t)pick;
}

// --- the conversions under test, by format ---------------------------------------------

static double impl_decode(const fmt *f, uint32_t c) {
    if (f == &F_BF16)
        return ss_bf16_to_f32((uint16_t)c);
    if (f == &F_F16)
        return ss_f16_to_f32((uint16_t)c);
    if (f == &F_E4M3)
        return ss_e4m3_to_f32((uint8_t)c);
    return ss_e5m2_to_f32((uint8_t)c);
}

static uint32_t impl_encode(const fmt *f, float x) {
    if (f == &F_BF16)
        return ss_f32_to_bf16(x);
    if (f == &F_F16)
        return ss_f32_to_f16(x);
    if (f == &F_E4M3)
        return ss_f32_to_e4m3(x);
    return ss_f32_to_e5m2(x);
}

/* Same value, and the same sign for zeros (0 == -0 in double). */
static int same_value(double a, double b) { return a == b && signbit(a) == signbit(b); }

static void init_all(void) {
    fmt_init(&F_BF16);
    fmt_init(&F_F16);
    fmt_init(&F_E4M3);
    fmt_init(&F_E5M2);
}

static fmt *const ALL[] = {&F_BF16, &F_F16, &F_E4M3, &F_E5M2};

// --- exhaustive decode + round trip ---------------------------------------------------

static void check_every_pattern(fmt *f) {
    fmt_init(f);
    uint32_t n = 1u << fmt_bits(f), signbit_ = n >> 1;
    for (uint32_t c = 0; c < n; c++) {
        double want = ref_decode(f, c), got = impl_decode(f, c);
        if (isnan(want)) {
            if (!isnan(got) || !!signbit(got) != !!(c & signbit_))
                fail_msg("%s 0x%x: decoded %g, expected a NaN with sign %d", f->name, c, got, !!(c & signbit_));
            uint32_t back = impl_encode(f, (float)got);
            if (!isnan(ref_decode(f, back)) || !!(back & signbit_) != !!(c & signbit_))
                fail_msg("%s 0x%x: NaN re-encoded as 0x%x, not a NaN of the same sign", f->name, c, back);
            continue;
        }
        if (!same_value(want, got))
            fail_msg("%s 0x%x: decoded %.9g, expected %.9g", f->name, c, got, want);
        uint32_t back = impl_encode(f, (float)got);
        if (back != c)
            fail_msg("%s 0x%x: decode -> %.9g -> encode gave 0x%x", f->name, c, got, back);
    }
}

static void test_bf16_every_pattern(void **state) { check_every_pattern(&F_BF16); }
static void test_f16_every_pattern(void **state) { check_every_pattern(&F_F16); }
static void test_e4m3_every_pattern(void **state) { check_every_pattern(&F_E4M3); }
static void test_e5m2_every_pattern(void **state) { check_every_pattern(&F_E5M2); }

// --- rounding sweep ----------------------------------------------------------------

/* Expected encoding of a NaN input, from core.h's rules, checked as
 * properties (NaN, sign kept, quiet) where the exact pattern is not fixed. */
static void check_nan_encoding(const fmt *f, float x, uint32_t got) {
    uint32_t sign = signbit(x) ? 1u << (fmt_bits(f) - 1) : 0;
    if (f == &F_E4M3) {
        if (got != (sign | 0x7Fu))
            fail_msg("E4M3(NaN sign %d) = 0x%x, expected 0x%x", !!sign, got, sign | 0x7Fu);
    } else if (f == &F_E5M2) {
        if (got != (sign | 0x7Eu))
            fail_msg("E5M2(NaN sign %d) = 0x%x, expected 0x%x", !!sign, got, sign | 0x7Eu);
    } else {
        uint32_t quiet = 1u << (f->mbits - 1);
        if (!isnan(ref_decode(f, got)) || (got & sign) != sign || !(got & quiet) ||
            (!sign && (got >> (fmt_bits(f) - 1))))
            fail_msg("%s(NaN 0x%08x) = 0x%x, expected a quiet NaN of the same sign", f->name,
                     ss_f32_bits(x), got);
    }
}

static long g_checked;

static void check_encode_all(float x) {
    for (size_t k = 0; k < sizeof ALL / sizeof ALL[0]; k++) {
        fmt *f = ALL[k];
        uint32_t got = impl_encode(f, x);
        if (isnan(x)) {
            check_nan_encoding(f, x, got);
            continue;
        }
        uint32_t want = ref_encode(f, (double)x);
        if (got != want)
            fail_msg("%s(%.9g = 0x%08x) = 0x%x, expected 0x%x (%.9g)", f->name, (double)x, ss_f32_bits(x), got,
                     want, ref_decode(f, want));
        /* The inline versions are what the hot loops use: same results. */
        uint32_t inl = f == &F_BF16 ? ss_f32_to_bf16_inline(x)
                       : f == &F_F16 ? ss_f32_to_f16_inline(x)
                       : f == &F_E4M3 ? ss_f32_to_e4m3_inline(x)
                                      : ss_f32_to_e5m2_inline(x);
        assert_int_equal(inl, got);
    }
    g_checked++;
}

/* x, its negation, and both float neighbours of each. */
static void check_encode_near(float x) {
    float xs[2] = {x, -x};
    for (int i = 0; i < 2; i++) {
        check_encode_all(xs[i]);
        check_encode_all(nextafterf(xs[i], INFINITY));
        check_encode_all(nextafterf(xs[i], -INFINITY));
    }
}

static void test_encode_every_bf16_value(void **state) {
    init_all();
    for (uint32_t h = 0; h < 65536; h++)
        check_encode_all(ss_bits_f32(h << 16));
}

/* Every midpoint between adjacent finite values of each format (and between
 * the largest finite and the next power of two, the overflow threshold) is a
 * float; each is a tie, and its neighbours must round away from it. */
static void test_encode_midpoints(void **state) {
    init_all();
    long ties = 0;
    for (size_t k = 0; k < sizeof ALL / sizeof ALL[0]; k++) {
        fmt *f = ALL[k];
        int n = f->nfinite;
        for (int c = 0; c < n; c++) {
            double next = c + 1 < n ? f->vals[c + 1] : f->vals[c] + (f->vals[c] - f->vals[c - 1]);
            double mid = (f->vals[c] + next) / 2;
            float m = (float)mid;
            assert_true((double)m == mid);
            check_encode_near(m);
            check_encode_near((float)f->vals[c]);
            ties++;
        }
    }
    assert_true(ties > 60000);
}

static void test_encode_random_bits(void **state) {
    init_all();
    ss_rng r = {12345};
    for (int i = 0; i < 1000000; i++)
        check_encode_all(ss_bits_f32((uint32_t)ss_rng_next(&r)));
}

/* Random floats with exponents where the narrow formats live (2^-30 .. 2^20),
 * since uniform bit patterns are mostly far outside them. */
static void test_encode_random_in_range(void **state) {
    init_all();
    ss_rng r = {777};
    for (int i = 0; i < 500000; i++) {
        uint32_t e = (uint32_t)ss_rng_range(&r, 127 - 30, 127 + 20);
        uint32_t u = ((uint32_t)ss_rng_next(&r) & 0x807FFFFFu) | (e << 23);
        check_encode_all(ss_bits_f32(u));
    }
}

/* The rules stated in core.h, spelled out once with literal values so a
 * reader sees them checked (the sweeps above cover them too). */
static void test_special_values(void **state) {
    assert_int_equal(ss_f32_to_e4m3(INFINITY), 0x7E);
    assert_int_equal(ss_f32_to_e4m3(-INFINITY), 0xFE);
    assert_int_equal(ss_f32_to_e4m3(1e30f), 0x7E);
    assert_int_equal(ss_f32_to_e4m3(464.0f), 0x7E); /* a tie that would round into the NaN code */
    assert_int_equal(ss_f32_to_e4m3(NAN), 0x7F);
    assert_int_equal(ss_f32_to_e4m3(-NAN), 0xFF);
    assert_int_equal(ss_f32_to_e4m3(-0.0f), 0x80);
    assert_true(ss_e4m3_to_f32(0x7E) == 448.0f);
    assert_true(ss_e4m3_to_f32(0x01) == 0x1p-9f);
    assert_true(isnan(ss_e4m3_to_f32(0x7F)) && isnan(ss_e4m3_to_f32(0xFF)));
    assert_true(ss_e4m3_to_f32(0x78) == 256.0f); /* exponent 15 is finite in e4m3fn */

    assert_int_equal(ss_f32_to_e5m2(INFINITY), 0x7C);
    assert_int_equal(ss_f32_to_e5m2(-INFINITY), 0xFC);
    assert_int_equal(ss_f32_to_e5m2(61440.0f), 0x7C); /* max 57344 + half ulp -> Inf */
    assert_int_equal(ss_f32_to_e5m2(61439.0f), 0x7B);
    assert_int_equal(ss_f32_to_e5m2(NAN), 0x7E);
    assert_int_equal(ss_f32_to_e5m2(-NAN), 0xFE);
    assert_true(ss_e5m2_to_f32(0x7B) == 57344.0f);
    assert_true(isinf(ss_e5m2_to_f32(0x7C)));

    assert_int_equal(ss_f32_to_f16(65520.0f), 0x7C00);
    assert_int_equal(ss_f32_to_f16(65519.0f), 0x7BFF);
    assert_int_equal(ss_f32_to_f16(0x1p-25f), 0x0000); /* tie between 0 and 2^-24 -> even (0) */
    assert_int_equal(ss_f32_to_f16(0x1.8p-24f), 0x0002);
    assert_int_equal(ss_f32_to_bf16(-0.0f), 0x8000);
    assert_int_equal(ss_f32_to_bf16(0x1.ffp127f), 0x7F80); /* halfway past the max -> Inf */
    assert_int_equal(ss_f32_to_bf16(-NAN) & 0xFFC0u, 0xFFC0u);
}

/* e5m2 must round from f32 directly: rounding through f16 first would turn
 * a value just above an e5m2 tie into the tie and then round it to even. */
static void test_e5m2_no_double_rounding(void **state) {
    float x = nextafterf(1.125f, INFINITY); /* 1.125 is the tie between 1.0 and 1.25 */
    assert_int_equal(ss_f32_to_e5m2(x), 0x3D);
    assert_int_equal(ss_f32_to_e5m2(1.125f), 0x3C);
}

// --- names, sizes, parsing, loads, tensors -------------------------------------------

static void test_names_and_parse(void **state) {
    static const size_t sizes[SS_DTYPE_COUNT] = {2, 2, 4, 8, 1, 1, 2, 4, 8, 1, 1, 1};
    static const char *const names[SS_DTYPE_COUNT] = {"BF16", "F16", "F32", "F64", "I8", "U8",
                                                      "I16", "I32", "I64", "BOOL", "F8_E4M3", "F8_E5M2"};
    for (int t = 0; t < SS_DTYPE_COUNT; t++) {
        assert_int_equal(ss_dtype_size((ss_dtype)t), sizes[t]);
        assert_string_equal(ss_dtype_name((ss_dtype)t), names[t]);
        ss_dtype back = SS_DTYPE_COUNT;
        assert_ok(ss_dtype_parse(names[t], &back));
        assert_int_equal(back, t);
    }
    assert_int_equal(ss_dtype_size(SS_DTYPE_COUNT), 0);
    assert_string_equal(ss_dtype_name((ss_dtype)99), "UNKNOWN");

    static const struct {
        const char *s;
        ss_dtype t;
    } aliases[] = {{"int8", SS_DTYPE_I8},   {"fp8", SS_DTYPE_F8_E4M3}, {"bf16", SS_DTYPE_BF16},
                   {"fp16", SS_DTYPE_F16},  {"fp32", SS_DTYPE_F32}};
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        ss_dtype t = SS_DTYPE_COUNT;
        assert_ok(ss_dtype_parse(aliases[i].s, &t));
        assert_int_equal(t, aliases[i].t);
    }

    const char *bad[] = {"Bf16", "f32", "i8", "INT8", "", "F8_E4M3 ", "F8", "e4m3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ss_dtype t = SS_DTYPE_I8;
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_fails(ss_dtype_parse(bad[i], &t), SS_EINVAL, quoted);
        assert_fails(ss_dtype_parse(bad[i], &t), SS_EINVAL, "F8_E5M2");
        assert_fails(ss_dtype_parse(bad[i], &t), SS_EINVAL, "fp8");
        assert_int_equal(t, SS_DTYPE_I8); /* untouched on failure */
    }
    ss_dtype t;
    assert_fails(ss_dtype_parse(NULL, &t), SS_EINVAL, "NULL");
}

static void test_load(void **state) {
    /* One byte of offset: safetensors data need not be aligned. */
    unsigned char buf[1 + 2 * 8];
    float f[2] = {1.5f, -2.25f};
    double d[2] = {0.1, -3e300};
    int64_t i64[2] = {-((int64_t)1 << 40), 7};
    int32_t i32[2] = {-100000, 3};
    int16_t i16[2] = {-300, 301};
    uint16_t bf[2] = {ss_f32_to_bf16(3.0f), ss_f32_to_bf16(-0.5f)};
    uint16_t hf[2] = {ss_f32_to_f16(0.25f), ss_f32_to_f16(-6.0f)};

#define CHECK2(type, arr, a0, a1)                         \
    memcpy(buf + 1, arr, sizeof arr);                    \
    assert_true(ss_dtype_load(type, buf + 1, 0) == (a0)); \
    assert_true(ss_dtype_load(type, buf + 1, 1) == (a1));
    CHECK2(SS_DTYPE_F32, f, 1.5, -2.25);
    CHECK2(SS_DTYPE_F64, d, 0.1, -3e300);
    CHECK2(SS_DTYPE_I64, i64, -1099511627776.0, 7.0);
    CHECK2(SS_DTYPE_I32, i32, -100000.0, 3.0);
    CHECK2(SS_DTYPE_I16, i16, -300.0, 301.0);
    CHECK2(SS_DTYPE_BF16, bf, 3.0, -0.5);
    CHECK2(SS_DTYPE_F16, hf, 0.25, -6.0);
#undef CHECK2
    unsigned char bytes[4] = {0x00, 0x38, 0xFE, 0x7F}; /* e4m3 0x38 = 1.0, 0xFE = -448 */
    assert_true(ss_dtype_load(SS_DTYPE_I8, bytes, 2) == -2.0);
    assert_true(ss_dtype_load(SS_DTYPE_U8, bytes, 2) == 254.0);
    assert_true(ss_dtype_load(SS_DTYPE_BOOL, bytes, 0) == 0.0);
    assert_true(ss_dtype_load(SS_DTYPE_BOOL, bytes, 2) == 1.0);
    assert_true(ss_dtype_load(SS_DTYPE_F8_E4M3, bytes, 1) == 1.0);
    assert_true(ss_dtype_load(SS_DTYPE_F8_E4M3, bytes, 2) == -448.0);
    assert_true(isnan(ss_dtype_load(SS_DTYPE_F8_E4M3, bytes, 3)));
    assert_true(ss_dtype_load(SS_DTYPE_F8_E5M2, bytes, 1) == 0.5); /* 0.01110.00 = 2^-1 */
    assert_true(isnan(ss_dtype_load(SS_DTYPE_COUNT, bytes, 0)));
}

/* Arrays to BF16: every F16 pattern (BF16 of its exact value), F32 ties to
 * even, BF16 copied, unaligned sources, and dtypes it does not take. */
static void test_array_to_bf16(void **state) {
    unsigned char buf[1 + 65536 * 2];
    uint16_t out[65536];
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t v = (uint16_t)h;
        memcpy(buf + 1 + 2 * h, &v, 2);
    }
    assert_true(ss_dtype_to_bf16(SS_DTYPE_F16, buf + 1, 65536, out));
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t want = ss_f32_to_bf16(ss_f16_to_f32((uint16_t)h));
        if (out[h] != want)
            fail_msg("F16 0x%04x -> BF16 0x%04x, expected 0x%04x", h, out[h], want);
    }
    /* 1 + 2^-8 ties to 1 (even); 1 + 3*2^-8 ties up; just above a tie rounds up */
    const uint32_t f32[] = {0x3F808000u, 0x3F818000u, 0x3F808001u, 0xC0490FDBu, 0x7F7FFFFFu, 0x00000001u};
    const uint16_t want[] = {0x3F80, 0x3F82, 0x3F81, 0xC049, 0x7F80, 0x0000};
    memcpy(buf + 1, f32, sizeof f32);
    assert_true(ss_dtype_to_bf16(SS_DTYPE_F32, buf + 1, 6, out));
    assert_memory_equal(out, want, sizeof want);
    assert_true(ss_dtype_to_bf16(SS_DTYPE_BF16, buf + 1, 3, out));
    assert_memory_equal(out, buf + 1, 6);
    out[0] = 0x1234;
    assert_false(ss_dtype_to_bf16(SS_DTYPE_I64, buf + 1, 1, out));
    assert_false(ss_dtype_to_bf16(SS_DTYPE_F64, buf + 1, 1, out));
    assert_int_equal(out[0], 0x1234); /* untouched */
    assert_true(ss_dtype_is_dense_float(SS_DTYPE_F16) && ss_dtype_is_dense_float(SS_DTYPE_F32) &&
                ss_dtype_is_dense_float(SS_DTYPE_BF16));
    assert_false(ss_dtype_is_dense_float(SS_DTYPE_F64) || ss_dtype_is_dense_float(SS_DTYPE_I8) ||
                 ss_dtype_is_dense_float(SS_DTYPE_F8_E4M3));
}

static void test_tensor_views(void **state) {
    int8_t data[6];
    ss_tensor t = ss_tensor_2d(SS_DTYPE_I16, 2, 3, data);
    assert_int_equal(t.ndim, 2);
    assert_int_equal(t.shape[0], 2);
    assert_int_equal(t.shape[1], 3);
    assert_ptr_equal(t.data, data);
    assert_int_equal(t.on_device, 0);
    assert_int_equal(ss_tensor_numel(&t), 6);
    assert_int_equal(ss_tensor_nbytes(&t), 12);

    ss_tensor s = {.dtype = SS_DTYPE_F32, .ndim = 0};
    assert_int_equal(ss_tensor_numel(&s), 1);
    assert_int_equal(ss_tensor_nbytes(&s), 4);

    ss_tensor big = {.dtype = SS_DTYPE_BF16, .ndim = 3, .shape = {30, 13824, 2560}};
    assert_int_equal(ss_tensor_numel(&big), (int64_t)30 * 13824 * 2560);
    assert_int_equal(ss_tensor_nbytes(&big), (size_t)30 * 13824 * 2560 * 2);

    ss_tensor empty = {.dtype = SS_DTYPE_F32, .ndim = 2, .shape = {0, 5}};
    assert_int_equal(ss_tensor_numel(&empty), 0);
    assert_int_equal(ss_tensor_nbytes(&empty), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_every_pattern),
        cmocka_unit_test(test_f16_every_pattern),
        cmocka_unit_test(test_e4m3_every_pattern),
        cmocka_unit_test(test_e5m2_every_pattern),
        cmocka_unit_test(test_encode_every_bf16_value),
        cmocka_unit_test(test_encode_midpoints),
        cmocka_unit_test(test_encode_random_bits),
        cmocka_unit_test(test_encode_random_in_range),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_e5m2_no_double_rounding),
        cmocka_unit_test(test_names_and_parse),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_array_to_bf16),
        cmocka_unit_test(test_tensor_views),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (size_t k = 0; k < sizeof ALL / sizeof ALL[0]; k++)
        free(ALL[k]->vals);
    return rc;
}
