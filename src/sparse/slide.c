/* The sliding-window decomposition (SPEC §3), its inverse, and the 2:4 check.
 *
 * The SPEC's `taken[]` array is carried as two bits: when window w starts,
 * everything left of input 2w is placed (or the group has failed), so the only
 * inputs of window w that an earlier window can have taken are its lanes 0 and
 * 1 (the previous window's lanes 2 and 3). Per window:
 *     avail = nonzero lanes & ~taken;  sel = the lowest two bits of avail;
 *     a nonzero of lanes 0-1 left unselected can never be placed -> failure;
 *     taken for the next window = sel >> 2.
 * After the last window, an unselected nonzero in lanes 2-3 is a failure too.
 * Failure happens exactly when the group has more than L-2 nonzeros.
 */
#include "core/error.h"
#include "sparse/geometry.h"

#include <string.h>

// --- per-window tables ------------------------------------------------------------------

/* The lowest two set bits of a 4-bit mask. */
static const uint8_t first_two[16] = {0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x3,
                                      0x8, 0x9, 0xA, 0x3, 0xC, 0x5, 0x6, 0x3};

// --- slide ----------------------------------------------------------------------------------

/* Slides groups g0.. of one row and zero-fills the columns past K'raw;
 * returns the first group that does not fit, or -1. out is fully written
 * either way. */
#define DEFINE_SLIDE_GROUPS(NAME, T)                                                      \
    static int64_t NAME(const T *w, T *out, const ss_slide_geom *g, T nzmask, int64_t g0) {  \
        int64_t bad = -1, k = g->k;                                                       \
        for (int64_t gi = g0; gi < g->groups; gi++) {                                     \
            const int64_t base = gi * g->l;                                               \
            T *o = out + gi * g->g;                                                       \
            unsigned taken = 0, left = 0, avail = 0, sel = 0;                             \
            for (int64_t win = 0; win < g->wins; win++) {                                 \
                const int64_t p = base + 2 * win;                                         \
                T v0, v1, v2, v3;                                                         \
                if (p + 3 < k) {                                                          \
                    v0 = w[p], v1 = w[p + 1], v2 = w[p + 2], v3 = w[p + 3];               \
                } else { /* the window reaches into the zero padding */                  \
                    v0 = p < k ? w[p] : 0, v1 = p + 1 < k ? w[p + 1] : 0;                 \
                    v2 = p + 2 < k ? w[p + 2] : 0, v3 = 0;                                \
                }                                                                         \
                unsigned nz = (unsigned)((v0 & nzmask) != 0) |                            \
                              (unsigned)((v1 & nzmask) != 0) << 1 |                       \
                              (unsigned)((v2 & nzmask) != 0) << 2 |                       \
                              (unsigned)((v3 & nzmask) != 0) << 3;                        \
                avail = nz & ~taken, sel = first_two[avail];                              \
                left |= avail & ~sel & 3u;                                                \
                o[4 * win + 0] = (sel & 1u) ? v0 : 0;                                     \
                o[4 * win + 1] = (sel & 2u) ? v1 : 0;                                     \
                o[4 * win + 2] = (sel & 4u) ? v2 : 0;                                     \
                o[4 * win + 3] = (sel & 8u) ? v3 : 0;                                     \
                taken = sel >> 2;                                                         \
            }                                                                             \
            left |= avail & ~sel; /* the last window's lanes 2-3 */                       \
            if (left && bad < 0)                                                          \
                bad = gi;                                                                 \
        }                                                                                 \
        for (int64_t j = g->kraw; j < g->kslid; j++)                                      \
            out[j] = 0;                                                                   \
        return bad;                                                                       \
    }

DEFINE_SLIDE_GROUPS(slide_groups_16, uint16_t)
DEFINE_SLIDE_GROUPS(slide_groups_32, uint32_t)

/* Byte bits of the selected lanes, for one 4-lane window loaded as a uint32
 * (lane i = byte i: little-endian). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "slide.c: the one-byte window path assumes a little-endian host"
#endif
static const uint32_t lane_bytes[16] = {
    0x00000000u, 0x000000FFu, 0x0000FF00u, 0x0000FFFFu, 0x00FF0000u, 0x00FF00FFu,
    0x00FFFF00u, 0x00FFFFFFu, 0xFF000000u, 0xFF0000FFu, 0xFF00FF00u, 0xFF00FFFFu,
    0xFFFF0000u, 0xFFFF00FFu, 0xFFFFFF00u, 0xFFFFFFFFu};

/* Nonzero lanes of a window as 4 bits: bit 7 of each byte of t is set iff the
 * byte (masked by nz7: 0x7F for FP8, 0xFF for int8) is nonzero. */
static inline unsigned nz_lanes8(uint32_t v, uint32_t nzmask4) {
    v &= nzmask4;
    uint32_t t = (((v & 0x7F7F7F7Fu) + 0x7F7F7F7Fu) | v) & 0x80808080u;
    return (t >> 7 | t >> 14 | t >> 21 | t >> 28) & 0xFu;
}

/* One-byte elements: each window is one 32-bit word (4 lanes). Windows that
 * reach past K (the last group's padding; for 2_inf the last window or two)
 * assemble the word from the bytes that exist. */
static int64_t slide_row_8(const uint8_t *w, uint8_t *out, const ss_slide_geom *g, uint8_t nzmask) {
    const uint32_t nzmask4 = nzmask * 0x01010101u;
    const int64_t k = g->k;
    int64_t bad = -1;
    for (int64_t gi = 0; gi < g->groups; gi++) {
        const int64_t base = gi * g->l;
        /* windows [0, full) read inputs < k only: base + 2*win + 3 < k */
        int64_t full = k - base >= 4 ? (k - base - 4) / 2 + 1 : 0;
        if (full > g->wins)
            full = g->wins;
        uint8_t *o = out + gi * g->g;
        unsigned taken = 0, left = 0, avail = 0, sel = 0;
        for (int64_t win = 0; win < g->wins; win++) {
            const int64_t p = base + 2 * win;
            uint32_t v = 0;
            if (win < full)
                memcpy(&v, w + p, 4);
            else
                for (int lane = 0; lane < 4 && p + lane < k; lane++)
                    v |= (uint32_t)w[p + lane] << (8 * lane);
            avail = nz_lanes8(v, nzmask4) & ~taken;
            sel = first_two[avail];
            left |= avail & ~sel & 3u;
            v &= lane_bytes[sel];
            memcpy(o + 4 * win, &v, 4);
            taken = sel >> 2;
        }
        left |= avail & ~sel; /* the last window's lanes 2-3 */
        if (left && bad < 0)
            bad = gi;
    }
    memset(out + g->kraw, 0, (size_t)(g->kslid - g->kraw));
    return bad;
}

static int64_t slide_row_16(const uint16_t *w, uint16_t *out, const ss_slide_geom *g, uint16_t m) {
    return slide_groups_16(w, out, g, m, 0);
}

static int64_t slide_row_32(const uint32_t *w, uint32_t *out, const ss_slide_geom *g, uint32_t m) {
    return slide_groups_32(w, out, g, m, 0);
}

static int64_t slide_row(ss_elem_kind e, const void *w, void *out, int64_t row,
                         const ss_slide_geom *g) {
    const unsigned char *wr = (const unsigned char *)w + (size_t)(row * g->k) * (size_t)e.size;
    unsigned char *orow = (unsigned char *)out + (size_t)(row * g->kslid) * (size_t)e.size;
    switch (e.size) {
    case 1: return slide_row_8((const uint8_t *)wr, (uint8_t *)orow, g, (uint8_t)e.nzmask);
    case 2: return slide_row_16((const uint16_t *)wr, (uint16_t *)orow, g, (uint16_t)e.nzmask);
    default: return slide_row_32((const uint32_t *)wr, (uint32_t *)orow, g, e.nzmask);
    }
}

/* Dense "pattern": the row copied and zero-padded to ceil32(k). */
static void pad_rows(size_t esz, const void *in, int64_t n, int64_t kin, int64_t kout, void *out) {
    int64_t kc = kin < kout ? kin : kout;
#pragma omp parallel for schedule(static) if (n * kout >= SS_PAR_MIN_ELEMS)
    for (int64_t row = 0; row < n; row++) {
        unsigned char *o = (unsigned char *)out + (size_t)(row * kout) * esz;
        memcpy(o, (const unsigned char *)in + (size_t)(row * kin) * esz, (size_t)kc * esz);
        memset(o + (size_t)kc * esz, 0, (size_t)(kout - kc) * esz);
    }
}

static ss_status check_args(const char *what, ss_dtype t, const void *in, const void *out, int64_t n,
                            int64_t k, ss_elem_kind *e) {
    if (!ss_elem_kind_of(t, e))
        return ss_fail(SS_EINVAL, "%s: dtype %s: expected an 8-, 16- or 32-bit type", what,
                       ss_dtype_name(t));
    if (n < 0 || k < 0 || ((!in || !out) && n > 0))
        return ss_fail(SS_EINVAL, "%s: expected (n, k) buffers with n, k >= 0, found (%lld, %lld)",
                       what, (long long)n, (long long)k);
    return SS_OK;
}

ss_status ss_slide(ss_dtype t, const void *w, int64_t n, int64_t k, ss_pattern p, void *out) {
    ss_elem_kind e;
    SS_TRY(check_args("slide", t, w, out, n, k, &e));
    SS_TRY(ss_pattern_check("slide", p));
    if (ss_pattern_is_dense(p)) {
        pad_rows((size_t)e.size, w, n, k, ss_ceil32(k), out);
        return SS_OK;
    }
    ss_slide_geom g;
    SS_TRY(ss_slide_geom_init("slide", p, k, &g));
    int64_t first = n;
#pragma omp parallel for schedule(static) reduction(min : first) if (n * k >= SS_PAR_MIN_ELEMS)
    for (int64_t row = 0; row < n; row++)
        if (slide_row(e, w, out, row, &g) >= 0 && row < first)
            first = row;
    if (first == n)
        return SS_OK;
    int64_t gi = slide_row(e, w, out, first, &g), nz = 0;
    for (int64_t i = gi * g.l; i < (gi + 1) * g.l && i < k; i++)
        nz += !ss_elem_is_zero(t, (const unsigned char *)w + (size_t)(first * k) * (size_t)e.size, i);
    char pat[32];
    return ss_fail(SS_EINVAL,
                   "slide: row %lld group %lld (inputs %lld..%lld): expected at most %lld nonzeros "
                   "for pattern %s, found %lld (weights not pruned)",
                   (long long)first, (long long)gi, (long long)(gi * g.l),
                   (long long)((gi + 1) * g.l - 1), (long long)(g.l - 2),
                   ss_pattern_format(p, pat, sizeof pat), (long long)nz);
}

// --- unslide ----------------------------------------------------------------------------------

/* Where an unslide row went wrong: slid column, and the input it maps to (-1:
 * none). */
typedef struct {
    int64_t col, src;
} unslide_err;

#define DEFINE_UNSLIDE_ROW(NAME, T)                                                       \
    static int NAME(const T *s, T *out, const ss_slide_geom *g, T nzmask, unslide_err *err) { \
        for (int64_t i = 0; i < g->k; i++)                                                \
            out[i] = 0;                                                                   \
        for (int64_t gi = 0; gi < g->groups; gi++)                                        \
            for (int64_t win = 0; win < g->wins; win++)                                   \
                for (int lane = 0; lane < 4; lane++) {                                    \
                    int64_t j = gi * g->g + 4 * win + lane;                               \
                    int64_t src = gi * g->l + 2 * win + lane;                             \
                    if (!(s[j] & nzmask))                                                 \
                        continue;                                                         \
                    if (src >= g->k || (out[src] & nzmask)) {                             \
                        *err = (unslide_err){j, src >= g->k ? -1 : src};                  \
                        return 1;                                                         \
                    }                                                                     \
                    out[src] = s[j];                                                      \
                }                                                                         \
        for (int64_t j = g->kraw; j < g->kslid; j++)                                      \
            if (s[j] & nzmask) {                                                          \
                *err = (unslide_err){j, -1};                                              \
                return 1;                                                                 \
            }                                                                             \
        return 0;                                                                         \
    }

DEFINE_UNSLIDE_ROW(unslide_row_8, uint8_t)
DEFINE_UNSLIDE_ROW(unslide_row_16, uint16_t)
DEFINE_UNSLIDE_ROW(unslide_row_32, uint32_t)

static int unslide_row(ss_elem_kind e, const void *s, void *out, int64_t row, const ss_slide_geom *g,
                       unslide_err *err) {
    const unsigned char *sr = (const unsigned char *)s + (size_t)(row * g->kslid) * (size_t)e.size;
    unsigned char *orow = (unsigned char *)out + (size_t)(row * g->k) * (size_t)e.size;
    switch (e.size) {
    case 1: return unslide_row_8((const uint8_t *)sr, (uint8_t *)orow, g, (uint8_t)e.nzmask, err);
    case 2:
        return unslide_row_16((const uint16_t *)sr, (uint16_t *)orow, g, (uint16_t)e.nzmask, err);
    default: return unslide_row_32((const uint32_t *)sr, (uint32_t *)orow, g, e.nzmask, err);
    }
}

ss_status ss_unslide(ss_dtype t, const void *slid, int64_t n, int64_t k, ss_pattern p, void *out) {
    ss_elem_kind e;
    SS_TRY(check_args("unslide", t, slid, out, n, k, &e));
    SS_TRY(ss_pattern_check("unslide", p));
    if (ss_pattern_is_dense(p)) {
        int64_t kp = ss_ceil32(k);
        for (int64_t row = 0; row < n; row++)
            for (int64_t j = k; j < kp; j++)
                if (!ss_elem_is_zero(t, (const unsigned char *)slid + (size_t)(row * kp) * (size_t)e.size, j))
                    return ss_fail(SS_EINVAL, "unslide: row %lld column %lld: expected 0 in the padding beyond K=%lld, found a nonzero",
                                   (long long)row, (long long)j, (long long)k);
        pad_rows((size_t)e.size, slid, n, kp, k, out);
        return SS_OK;
    }
    ss_slide_geom g;
    SS_TRY(ss_slide_geom_init("unslide", p, k, &g));
    int64_t first = n;
#pragma omp parallel for schedule(static) reduction(min : first) if (n * k >= SS_PAR_MIN_ELEMS)
    for (int64_t row = 0; row < n; row++) {
        unslide_err err;
        if (unslide_row(e, slid, out, row, &g, &err) && row < first)
            first = row;
    }
    if (first == n)
        return SS_OK;
    unslide_err err;
    unslide_row(e, slid, out, first, &g, &err);
    if (err.src < 0)
        return ss_fail(SS_EINVAL,
                       "unslide: row %lld column %lld: expected 0 (the column lifts no input), found a nonzero",
                       (long long)first, (long long)err.col);
    return ss_fail(SS_EINVAL,
                   "unslide: row %lld column %lld: expected one nonzero per input, found a second "
                   "nonzero for input %lld",
                   (long long)first, (long long)err.col, (long long)err.src);
}

// --- 2:4 -----------------------------------------------------------------------------------------

/* First column (start of a group of 4) with more than 2 nonzeros, or -1. */
#define DEFINE_CHECK24_ROW(NAME, T)                                                 \
    static int64_t NAME(const T *w, int64_t kp, T nzmask) {                        \
        for (int64_t c = 0; c < kp; c += 4) {                                       \
            int nz = 0;                                                             \
            for (int64_t i = c; i < c + 4 && i < kp; i++)                           \
                nz += (w[i] & nzmask) != 0;                                         \
            if (nz > 2)                                                             \
                return c;                                                           \
        }                                                                           \
        return -1;                                                                  \
    }

DEFINE_CHECK24_ROW(check24_row_8, uint8_t)
DEFINE_CHECK24_ROW(check24_row_16, uint16_t)
DEFINE_CHECK24_ROW(check24_row_32, uint32_t)

static int64_t check24_row(ss_elem_kind e, const void *w, int64_t row, int64_t kp) {
    const unsigned char *wr = (const unsigned char *)w + (size_t)(row * kp) * (size_t)e.size;
    switch (e.size) {
    case 1: return check24_row_8((const uint8_t *)wr, kp, (uint8_t)e.nzmask);
    case 2: return check24_row_16((const uint16_t *)wr, kp, (uint16_t)e.nzmask);
    default: return check24_row_32((const uint32_t *)wr, kp, e.nzmask);
    }
}

int ss_check_24(ss_dtype t, const void *w, int64_t n, int64_t kp, int64_t *bad_row,
                int64_t *bad_col) {
    ss_elem_kind e;
    if (bad_row)
        *bad_row = -1;
    if (bad_col)
        *bad_col = -1;
    if (!ss_elem_kind_of(t, &e) || n < 0 || kp < 0 || (!w && n * kp > 0))
        return 0;
    int64_t first = n;
#pragma omp parallel for schedule(static) reduction(min : first) if (n * kp >= SS_PAR_MIN_ELEMS)
    for (int64_t row = 0; row < n; row++)
        if (row < first && check24_row(e, w, row, kp) >= 0)
            first = row;
    if (first == n)
        return 1;
    if (bad_row)
        *bad_row = first;
    if (bad_col)
        *bad_col = check24_row(e, w, first, kp);
    return 0;
}
