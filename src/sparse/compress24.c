/* 2:4 compression of the sparse wgmma operand into the logical format of
 * include/slidesparse/compress24.h (values + one 4-bit index pair per group). */
#include "slidesparse/compress24.h"

#include <string.h>

#include "core/error.h"
#include "sparse/geometry.h"

// --- sizes ---------------------------------------------------------------------------------------

int ss_compress24_supports(ss_dtype t) {
    switch (t) {
    case SS_DTYPE_I8:
    case SS_DTYPE_F8_E4M3:
    case SS_DTYPE_F8_E5M2:
    case SS_DTYPE_BF16:
    case SS_DTYPE_F16: return 1;
    default: return 0;
    }
}

int64_t ss_meta24_row_bytes(int64_t kp) { return kp <= 0 ? 0 : (kp + 7) / 8; }

static int shape_ok(int64_t n, int64_t kp) { return n >= 0 && kp >= 0 && kp % 4 == 0; }

size_t ss_compress24_values_bytes(ss_dtype t, int64_t n, int64_t kp) {
    if (!ss_compress24_supports(t) || !shape_ok(n, kp))
        return 0;
    return (size_t)n * (size_t)(kp / 2) * ss_dtype_size(t);
}

size_t ss_compress24_meta_bytes(int64_t n, int64_t kp) {
    if (!shape_ok(n, kp))
        return 0;
    return (size_t)n * (size_t)ss_meta24_row_bytes(kp);
}

// --- one group -------------------------------------------------------------------------------------

int ss_meta24_decode(unsigned nibble, int *idx0, int *idx1) {
    int a = (int)(nibble & 3u), b = (int)((nibble >> 2) & 3u);
    if (nibble > 15u || a >= b)
        return 0; /* equal indices are UB in the ISA; a > b is not "ordered" */
    *idx0 = a;
    *idx1 = b;
    return 1;
}

/* The kept pair for a group whose nonzero positions are the set bits of
 * nzbits (<= 2 of them): the nonzeros, filled up from {3, 0} (header, rule 4).
 * Returns the nibble idx0 | idx1 << 2. */
static unsigned pick_pair(unsigned nzbits) {
    static const int fill[2] = {3, 0};
    unsigned kept = nzbits;
    for (int f = 0; f < 2 && __builtin_popcount(kept) < 2; f++)
        kept |= 1u << fill[f];
    int idx0 = __builtin_ctz(kept);
    int idx1 = 31 - __builtin_clz(kept);
    return (unsigned)idx0 | (unsigned)idx1 << 2;
}

static uint32_t load_bits(const unsigned char *p, int size) {
    if (size == 1)
        return p[0];
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

// --- compress ----------------------------------------------------------------------------------------

/* Compresses one row; returns the first group with > 2 nonzeros, or -1. */
static int64_t compress_row(const unsigned char *w, int64_t kp, ss_elem_kind e,
                            unsigned char *vals, uint8_t *meta) {
    size_t sz = (size_t)e.size;
    int64_t groups = kp / 4;
    memset(meta, 0, (size_t)ss_meta24_row_bytes(kp));
    for (int64_t g = 0; g < groups; g++) {
        const unsigned char *src = w + (size_t)(4 * g) * sz;
        unsigned nz = 0;
        for (int i = 0; i < 4; i++)
            if (load_bits(src + (size_t)i * sz, e.size) & e.nzmask)
                nz |= 1u << i;
        if (__builtin_popcount(nz) > 2)
            return g;
        unsigned nib = pick_pair(nz);
        memcpy(vals + (size_t)(2 * g) * sz, src + (size_t)(nib & 3u) * sz, sz);
        memcpy(vals + (size_t)(2 * g + 1) * sz, src + (size_t)(nib >> 2) * sz, sz);
        meta[g / 2] |= (uint8_t)(nib << (4 * (g % 2)));
    }
    return -1;
}

ss_status ss_compress24(ss_dtype t, const void *w, int64_t n, int64_t kp, void *values,
                        uint8_t *meta) {
    ss_elem_kind e;
    if (!ss_compress24_supports(t) || !ss_elem_kind_of(t, &e))
        return ss_fail(SS_EINVAL, "compress24: expected dtype I8, F8_E4M3, F8_E5M2, BF16 or F16, found %s",
                       ss_dtype_name(t));
    if (!shape_ok(n, kp))
        return ss_fail(SS_EINVAL, "compress24: expected n >= 0 and kp >= 0 a multiple of 4, found n=%lld kp=%lld",
                       (long long)n, (long long)kp);
    if (n * kp > 0 && (!w || !values || !meta))
        return ss_fail(SS_EINVAL, "compress24: expected non-NULL w, values and meta for a %lldx%lld matrix",
                       (long long)n, (long long)kp);
    size_t sz = (size_t)e.size;
    int64_t mrow = ss_meta24_row_bytes(kp);
    int64_t first = n, first_group = -1;
#pragma omp parallel for schedule(static) reduction(min : first) if (n * kp >= SS_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < n; r++) {
        int64_t g = compress_row((const unsigned char *)w + (size_t)(r * kp) * sz, kp, e,
                                 (unsigned char *)values + (size_t)(r * (kp / 2)) * sz,
                                 meta + (size_t)(r * mrow));
        if (g >= 0 && r < first)
            first = r;
    }
    if (first == n)
        return SS_OK;
    /* Re-run the first bad row alone to name its group (rows are independent). */
    first_group = compress_row((const unsigned char *)w + (size_t)(first * kp) * sz, kp, e,
                               (unsigned char *)values + (size_t)(first * (kp / 2)) * sz,
                               meta + (size_t)(first * mrow));
    return ss_fail(SS_EINVAL,
                   "compress24: row %lld group %lld (columns %lld..%lld): expected at most 2 "
                   "nonzeros of 4 (2:4), found more",
                   (long long)first, (long long)first_group, (long long)(4 * first_group),
                   (long long)(4 * first_group + 3));
}

// --- decompress -----------------------------------------------------------------------------------------

/* Decompresses one row; returns the first group with an illegal nibble, or -1. */
static int64_t decompress_row(const unsigned char *vals, const uint8_t *meta, int64_t kp,
                              size_t sz, unsigned char *out) {
    memset(out, 0, (size_t)kp * sz); /* +0 for every dtype handled here */
    for (int64_t g = 0; g < kp / 4; g++) {
        unsigned nib = (meta[g / 2] >> (4 * (g % 2))) & 15u;
        int i0, i1;
        if (!ss_meta24_decode(nib, &i0, &i1))
            return g;
        memcpy(out + (size_t)(4 * g + i0) * sz, vals + (size_t)(2 * g) * sz, sz);
        memcpy(out + (size_t)(4 * g + i1) * sz, vals + (size_t)(2 * g + 1) * sz, sz);
    }
    return -1;
}

ss_status ss_decompress24(ss_dtype t, const void *values, const uint8_t *meta, int64_t n,
                          int64_t kp, void *out) {
    ss_elem_kind e;
    if (!ss_compress24_supports(t) || !ss_elem_kind_of(t, &e))
        return ss_fail(SS_EINVAL, "decompress24: expected dtype I8, F8_E4M3, F8_E5M2, BF16 or F16, found %s",
                       ss_dtype_name(t));
    if (!shape_ok(n, kp))
        return ss_fail(SS_EINVAL, "decompress24: expected n >= 0 and kp >= 0 a multiple of 4, found n=%lld kp=%lld",
                       (long long)n, (long long)kp);
    if (n * kp > 0 && (!values || !meta || !out))
        return ss_fail(SS_EINVAL, "decompress24: expected non-NULL values, meta and out for a %lldx%lld matrix",
                       (long long)n, (long long)kp);
    size_t sz = (size_t)e.size;
    int64_t mrow = ss_meta24_row_bytes(kp);
    int64_t first = n;
#pragma omp parallel for schedule(static) reduction(min : first) if (n * kp >= SS_PAR_MIN_ELEMS)
    for (int64_t r = 0; r < n; r++) {
        int64_t g = decompress_row((const unsigned char *)values + (size_t)(r * (kp / 2)) * sz,
                                   meta + (size_t)(r * mrow), kp, sz,
                                   (unsigned char *)out + (size_t)(r * kp) * sz);
        if (g >= 0 && r < first)
            first = r;
    }
    if (first == n)
        return SS_OK;
    int64_t g = decompress_row((const unsigned char *)values + (size_t)(first * (kp / 2)) * sz,
                               meta + (size_t)(first * mrow), kp, sz,
                               (unsigned char *)out + (size_t)(first * kp) * sz);
    unsigned nib = (meta[(size_t)(first * mrow) + (size_t)(g / 2)] >> (4 * (g % 2))) & 15u;
    return ss_fail(SS_EINVAL,
                   "decompress24: row %lld group %lld: expected a metadata nibble of two increasing "
                   "indices (0b0100, 0b1000, 0b1001, 0b1100, 0b1101, 0b1110), found 0x%X",
                   (long long)first, (long long)g, nib);
}
