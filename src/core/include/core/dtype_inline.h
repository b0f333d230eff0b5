/* Internal: the float conversions of core.h as `static inline` functions, so
 * that per-element hot loops (quantizers, the CPU reference GEMM) inline them.
 * src/core/dtype.c exports thin wrappers; the rules are documented in
 * include/slidesparse/core.h ("Exact conversions").
 *
 * Everything is integer bit manipulation on the IEEE-754 binary32 encoding;
 * the only float arithmetic is exact (int -> float of small integers, scaling
 * by a power of two), so the result never depends on the FPU rounding mode,
 * and no FTZ/DAZ setting is involved because every output of a decoder is
 * built from its bits.
 */
#ifndef SS_CORE_DTYPE_INLINE_H
#define SS_CORE_DTYPE_INLINE_H

#include <stdint.h>
#include <string.h>

// --- bit casts ---------------------------------------------------------------

static inline uint32_t ss_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float ss_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

// --- shared rounding ------------------------------------------------------------

/* Rounds a finite, non-negative binary32 (its bits `a`, sign cleared) to a
 * narrower binary format with `mbits` mantissa bits and exponent bias `bias`,
 * to nearest, ties to even, and returns the magnitude bits (exponent field <<
 * mbits | mantissa). Results past the format's largest exponent are not
 * clamped: the caller turns them into Inf or saturates. A rounding carry out of
 * the mantissa lands in the exponent field, which is exactly the next binade.
 *
 * Precondition (true for F16, E4M3, E5M2): the format's smallest subnormal is
 * far above binary32's subnormals, so binary32 subnormal inputs round to 0. */
static inline uint32_t ss_round_f32_to_narrow_(uint32_t a, int mbits, int bias) {
    const uint32_t min_normal = (uint32_t)(127 - bias + 1) << 23; /* 2^(1-bias) */
    if (a >= min_normal) {
        const int shift = 23 - mbits;
        uint32_t odd = (a >> shift) & 1u;
        uint32_t r = (a + ((1u << (shift - 1)) - 1u) + odd) >> shift;
        return r - ((uint32_t)(127 - bias) << mbits);
    }
    /* Subnormal result: round (1.m * 2^(e-127)) / 2^(1-bias-mbits) to an
     * integer, i.e. the 24-bit significand shifted right by `shift`. A shift
     * of 25 or more leaves less than half of the smallest subnormal: 0. */
    int e = (int)(a >> 23);
    uint32_t sig = (a & 0x7FFFFFu) | 0x800000u;
    int shift = (151 - bias - mbits) - e;
    if (shift > 25)
        shift = 25;
    uint32_t q = sig >> shift;
    uint32_t rem = sig & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    q += (rem > half) | ((rem == half) & q & 1u);
    return q; /* q == 1 << mbits is the smallest normal: the encoding agrees */
}

// --- BF16 ----------------------------------------------------------------------

static inline float ss_bf16_to_f32_inline(uint16_t h) { return ss_bits_f32((uint32_t)h << 16); }

static inline uint16_t ss_f32_to_bf16_inline(float f) {
    uint32_t u = ss_f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) /* NaN: keep sign and top payload, force quiet */
        return (uint16_t)((u >> 16) | 0x0040u);
    /* Overflow carries into the exponent and yields exactly Inf (0x7F80). */
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// --- F16 -------------------------------------------------------------------------

static inline float ss_f16_to_f32_inline(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1Fu;
    uint32_t m = h & 0x3FFu;
    if (e == 0x1F) /* Inf or NaN: payload moves up, quiet bit stays the top bit */
        return ss_bits_f32(sign | 0x7F800000u | (m << 13));
    if (e == 0) /* zero or subnormal: m * 2^-24, exact */
        return ss_bits_f32(sign | ss_f32_bits((float)m * 0x1p-24f));
    return ss_bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

static inline uint16_t ss_f32_to_f16_inline(float f) {
    uint32_t u = ss_f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) /* NaN: quiet, top payload bits kept (as x86 F16C does) */
        return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
    uint32_t r = ss_round_f32_to_narrow_(a, 10, 15);
    return (uint16_t)(sign | (r < 0x7C00u ? r : 0x7C00u)); /* overflow and Inf -> Inf */
}

// --- F8 E4M3 (OCP e4m3fn) ----------------------------------------------------------

static inline float ss_e4m3_to_f32_inline(uint8_t b) {
    uint32_t sign = (uint32_t)(b & 0x80u) << 24;
    uint32_t em = b & 0x7Fu;
    if (em == 0x7F)
        return ss_bits_f32(sign | 0x7FC00000u);
    if (em < 8) /* exponent field 0: m * 2^-9, exact */
        return ss_bits_f32(sign | ss_f32_bits((float)em * 0x1p-9f));
    return ss_bits_f32(sign | ((em << 20) + (120u << 23)));
}

static inline uint8_t ss_f32_to_e4m3_inline(float f) {
    uint32_t u = ss_f32_bits(f);
    uint32_t sign = (u >> 24) & 0x80u;
    uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u)
        return (uint8_t)(sign | 0x7Fu);
    uint32_t r = ss_round_f32_to_narrow_(a, 3, 7);
    /* Saturating: anything that rounds past 448 (0x7E), Inf included, is 448;
     * this also keeps the NaN pattern 0x7F from being produced by rounding. */
    return (uint8_t)(sign | (r < 0x7Eu ? r : 0x7Eu));
}

// --- F8 E5M2 -----------------------------------------------------------------------

/* E5M2 is the top byte of an F16, so decoding goes through F16. */
static inline float ss_e5m2_to_f32_inline(uint8_t b) { return ss_f16_to_f32_inline((uint16_t)(b << 8)); }

static inline uint8_t ss_f32_to_e5m2_inline(float f) {
    uint32_t u = ss_f32_bits(f);
    uint32_t sign = (u >> 24) & 0x80u;
    uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u)
        return (uint8_t)(sign | 0x7Eu);
    uint32_t r = ss_round_f32_to_narrow_(a, 2, 15);
    return (uint8_t)(sign | (r < 0x7Cu ? r : 0x7Cu)); /* overflow and Inf -> Inf */
}

#endif
