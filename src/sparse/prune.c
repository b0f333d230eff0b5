/* Pruning to Z:L, the pattern check and pattern detection (SPEC §2).
 *
 * Order used to pick the entries to zero in a group: magnitude key, then the
 * reference magnitude (when a reference is given), then the index. Magnitudes
 * are compared as integer keys: |v| for int8, and for the float types the bits
 * with the sign cleared, which orders finite values, Inf and NaN exactly as
 * their magnitudes (sign-magnitude encoding).
 */
#include "core/error.h"
#include "sparse/geometry.h"

#include <stdlib.h>
#include <string.h>

// --- magnitude keys -------------------------------------------------------------------

static inline uint32_t key_i8(uint8_t v) {
    int x = (int8_t)v;
    return (uint32_t)(x < 0 ? -x : x);
}
static inline uint32_t key_f8(uint8_t v) { return v & 0x7Fu; }
static inline uint32_t key_h(uint16_t v) { return v & 0x7FFFu; }
static inline uint32_t key_f32(uint32_t v) { return v & 0x7FFFFFFFu; }

/* Reference magnitudes are only read on a tie, so one switch per read is fine. */
typedef struct {
    ss_dtype dtype;
    const unsigned char *data; /* (n, k) */
} ref_view;

static int ref_supported(ss_dtype t) {
    return t == SS_DTYPE_I8 || t == SS_DTYPE_F8_E4M3 || t == SS_DTYPE_F8_E5M2 ||
           t == SS_DTYPE_BF16 || t == SS_DTYPE_F16 || t == SS_DTYPE_F32;
}

static uint32_t ref_key(const ref_view *r, int64_t i) {
    switch (r->dtype) {
    case SS_DTYPE_I8: return key_i8(r->data[i]);
    case SS_DTYPE_F8_E4M3:
    case SS_DTYPE_F8_E5M2: return key_f8(r->data[i]);
    case SS_DTYPE_BF16:
    case SS_DTYPE_F16: {
        uint16_t h;
        memcpy(&h, r->data + 2 * i, 2);
        return key_h(h);
    }
    default: {
        uint32_t u;
        memcpy(&u, r->data + 4 * i, 4);
        return key_f32(u);
    }
    }
}

/* Is entry i (key ki) pruned before entry j (key kj)? i > j always (scan order),
 * so a full tie keeps j: the lower index is pruned first. */
static inline int prunes_before(uint32_t ki, int64_t i, uint32_t kj, int64_t j,
                                const ref_view *r, int64_t row_off) {
    if (ki != kj)
        return ki < kj;
    return r && ref_key(r, row_off + i) < ref_key(r, row_off + j);
}

// --- prune -------------------------------------------------------------------------------

/* One row: zero (2 - zeros) entries per group, normalize -0.0 to +0.0. Padding
 * (inputs >= k) counts as zeros. Typed by element T and its key function. */
#define DEFINE_PRUNE_ROW(NAME, T, KEY)                                                    \
    static void NAME(T *w, int64_t k, int64_t l, const ref_view *r, int64_t row_off) {   \
        for (int64_t b = 0; b < k; b += l) {                                              \
            int64_t end = b + l < k ? b + l : k;                                          \
            int64_t zeros = l - (end - b), i1 = -1, i2 = -1;                              \
            uint32_t k1 = 0, k2 = 0;                                                      \
            for (int64_t i = b; i < end; i++) {                                           \
                uint32_t ki = KEY(w[i]);                                                  \
                if (ki == 0) {                                                            \
                    w[i] = 0;                                                             \
                    zeros++;                                                              \
                } else if (i1 < 0 || prunes_before(ki, i, k1, i1, r, row_off)) {          \
                    i2 = i1, k2 = k1;                                                     \
                    i1 = i, k1 = ki;                                                      \
                } else if (i2 < 0 || prunes_before(ki, i, k2, i2, r, row_off)) {          \
                    i2 = i, k2 = ki;                                                      \
                }                                                                         \
            }                                                                             \
            if (zeros < 2 && i1 >= 0)                                                     \
                w[i1] = 0;                                                                \
            if (zeros < 1 && i2 >= 0)                                                     \
                w[i2] = 0;                                                                \
        }                                                                                 \
    }

/* Without a reference the order is (magnitude, index), which packs into one
 * integer: key << 13 | index in group (L <= 4096). Zeros have key 0, so they
 * sort first and "existing zeros count first" needs no counting: zero the two
 * smallest packed keys (re-zeroing a zero changes nothing). One trailing
 * padding slot enters as the sentinel (0, L-1); two or more leave the group
 * as it is. Branch-free min/max keeps random data from mispredicting. */
#define DEFINE_PRUNE_ROW_NOREF(NAME, T, KEY, FLOAT)                                       \
    static void NAME(T *w, int64_t k, int64_t l) {                                       \
        for (int64_t b = 0; b < k; b += l) {                                              \
            const int64_t len = b + l < k ? l : k - b;                                    \
            T *v = w + b;                                                                 \
            uint64_t m1 = UINT64_MAX, m2 = UINT64_MAX;                                    \
            for (int64_t i = 0; i < len; i++) {                                           \
                uint64_t key = KEY(v[i]), c = key << 13 | (uint64_t)i;                    \
                uint64_t lo = c < m1 ? c : m1, hi = c < m1 ? m1 : c;                      \
                m1 = lo;                                                                  \
                m2 = hi < m2 ? hi : m2;                                                   \
                if (FLOAT)                                                                \
                    v[i] = key ? v[i] : 0; /* -0.0 -> +0.0 */                             \
            }                                                                             \
            if (l - len >= 2)                                                             \
                continue;                                                                 \
            if (l - len == 1) {                                                           \
                uint64_t c = (uint64_t)(l - 1);                                           \
                m2 = c < m1 ? m1 : c < m2 ? c : m2;                                       \
                m1 = c < m1 ? c : m1;                                                     \
            }                                                                             \
            const uint64_t idx = (1u << 13) - 1;                                          \
            if ((int64_t)(m1 & idx) < len)                                                \
                v[m1 & idx] = 0;                                                          \
            if ((int64_t)(m2 & idx) < len)                                                \
                v[m2 & idx] = 0;                                                          \
        }                                                                                 \
    }

_Static_assert(SS_PATTERN_MAX_L < (1 << 13), "group index must fit the packed key");

DEFINE_PRUNE_ROW_NOREF(prune_noref_i8, uint8_t, key_i8, 0)
DEFINE_PRUNE_ROW_NOREF(prune_noref_f8, uint8_t, key_f8, 1)
DEFINE_PRUNE_ROW_NOREF(prune_noref_h, uint16_t, key_h, 1)
DEFINE_PRUNE_ROW_NOREF(prune_noref_f32, uint32_t, key_f32, 1)

/* 2_inf prunes nothing (the padding holds the zeros); only -0.0 -> +0.0. */
#define DEFINE_NORMALIZE_ROW(NAME, T, KEY)            \
    static void NAME(T *w, int64_t k) {               \
        for (int64_t i = 0; i < k; i++)               \
            w[i] = KEY(w[i]) ? w[i] : 0;              \
    }
DEFINE_NORMALIZE_ROW(normalize_f8, uint8_t, key_f8)
DEFINE_NORMALIZE_ROW(normalize_h, uint16_t, key_h)
DEFINE_NORMALIZE_ROW(normalize_f32, uint32_t, key_f32)

DEFINE_PRUNE_ROW(prune_row_i8, uint8_t, key_i8)
DEFINE_PRUNE_ROW(prune_row_f8, uint8_t, key_f8)
DEFINE_PRUNE_ROW(prune_row_h, uint16_t, key_h)
DEFINE_PRUNE_ROW(prune_row_f32, uint32_t, key_f32)

ss_status ss_prune(ss_dtype t, void *w, int64_t n, int64_t k, ss_pattern p, ss_dtype ref_dtype,
                   const void *ref) {
    SS_TRY(ss_pattern_check("prune", p));
    if (n < 0 || k < 0 || (!w && n * k > 0))
        return ss_fail(SS_EINVAL, "prune: expected a (n, k) buffer with n, k >= 0, found (%lld, %lld)",
                       (long long)n, (long long)k);
    if (ref && !ref_supported(ref_dtype))
        return ss_fail(SS_EINVAL, "prune: reference dtype %s: expected I8, F8, BF16, F16 or F32",
                       ss_dtype_name(ref_dtype));
    int sz;
    switch (t) {
    case SS_DTYPE_I8:
    case SS_DTYPE_F8_E4M3:
    case SS_DTYPE_F8_E5M2: sz = 1; break;
    case SS_DTYPE_BF16:
    case SS_DTYPE_F16: sz = 2; break;
    case SS_DTYPE_F32: sz = 4; break;
    default:
        return ss_fail(SS_EINVAL, "prune: dtype %s: expected I8, F8_E4M3, F8_E5M2, BF16, F16 or F32",
                       ss_dtype_name(t));
    }
    if (ss_pattern_is_dense(p))
        return SS_OK;
    int64_t l = ss_pattern_group_len(p, k);
    int inf = ss_pattern_is_inf(p);
    ref_view rv = {ref_dtype, ref}, *r = ref ? &rv : NULL;
#pragma omp parallel for schedule(static) if (n * k >= SS_PAR_MIN_ELEMS)
    for (int64_t row = 0; row < n; row++) {
        void *wr = (unsigned char *)w + (size_t)(row * k) * (size_t)sz;
        if (inf) {
            switch (t) {
            case SS_DTYPE_I8: break;
            case SS_DTYPE_BF16:
            case SS_DTYPE_F16: normalize_h(wr, k); break;
            case SS_DTYPE_F32: normalize_f32(wr, k); break;
            default: normalize_f8(wr, k); break;
            }
        } else if (!r) {
            switch (t) {
            case SS_DTYPE_I8: prune_noref_i8(wr, k, l); break;
            case SS_DTYPE_BF16:
            case SS_DTYPE_F16: prune_noref_h(wr, k, l); break;
            case SS_DTYPE_F32: prune_noref_f32(wr, k, l); break;
            default: prune_noref_f8(wr, k, l); break;
            }
        } else {
            switch (t) {
            case SS_DTYPE_I8: prune_row_i8(wr, k, l, r, row * k); break;
            case SS_DTYPE_BF16:
            case SS_DTYPE_F16: prune_row_h(wr, k, l, r, row * k); break;
            case SS_DTYPE_F32: prune_row_f32(wr, k, l, r, row * k); break;
            default: prune_row_f8(wr, k, l, r, row * k); break;
            }
        }
    }
    return SS_OK;
}

// --- check ---------------------------------------------------------------------------------

/* First group of a row with fewer than z zeros (padding counted), or -1. */
#define DEFINE_CHECK_ROW(NAME, T)                                                      \
    static int64_t NAME(const T *w, int64_t k, int64_t l, int z, uint32_t nzmask) {   \
        for (int64_t b = 0; b < k; b += l) {                                           \
            int64_t end = b + l < k ? b + l : k, nz = 0;                               \
            for (int64_t i = b; i < end; i++)                                          \
                nz += (w[i] & nzmask) != 0;                                            \
            if (l - nz < z)                                                            \
                return b / l;                                                          \
        }                                                                              \
        return -1;                                                                     \
    }

DEFINE_CHECK_ROW(check_row_8, uint8_t)
DEFINE_CHECK_ROW(check_row_16, uint16_t)
DEFINE_CHECK_ROW(check_row_32, uint32_t)

static int64_t check_row(ss_elem_kind e, const void *w, int64_t row, int64_t k, int64_t l, int z) {
    const unsigned char *wr = (const unsigned char *)w + (size_t)(row * k) * (size_t)e.size;
    switch (e.size) {
    case 1: return check_row_8((const uint8_t *)wr, k, l, z, e.nzmask);
    case 2: return check_row_16((const uint16_t *)wr, k, l, z, e.nzmask);
    default: return check_row_32((const uint32_t *)wr, k, l, z, e.nzmask);
    }
}

int ss_check_pattern(ss_dtype t, const void *w, int64_t n, int64_t k, ss_pattern p,
                     int64_t *bad_row, int64_t *bad_group) {
    ss_elem_kind e;
    if (bad_row)
        *bad_row = -1;
    if (bad_group)
        *bad_group = -1;
    if (ss_pattern_check("check pattern", p) != SS_OK || !ss_elem_kind_of(t, &e) || n < 0 || k < 0)
        return 0;
    if (ss_pattern_is_dense(p) || n == 0 || k == 0)
        return 1;
    int64_t l = ss_pattern_group_len(p, k), first = n;
    /* min-reduction: the reported row does not depend on the thread count */
#pragma omp parallel for schedule(static) reduction(min : first) if (n * k >= SS_PAR_MIN_ELEMS)
    for (int64_t row = 0; row < n; row++)
        if (row < first && check_row(e, w, row, k, l, p.z) >= 0)
            first = row;
    if (first == n)
        return 1;
    if (bad_row)
        *bad_row = first;
    if (bad_group)
        *bad_group = check_row(e, w, first, k, l, p.z);
    return 0;
}

int ss_detect_pattern_l(ss_dtype t, const void *w, int64_t n, int64_t k) {
    for (int l = 4; l <= 16; l += 2)
        if (ss_check_pattern(t, w, n, k, (ss_pattern){2, l}, NULL, NULL))
            return l;
    return 0;
}
