/* Z:L patterns: parsing, formatting, the K' arithmetic and the lifting index
 * map (SPEC §1, §4). */
#include "core/error.h"
#include "sparse/geometry.h"

#include <stdio.h>
#include <string.h>

// --- validation -----------------------------------------------------------------

ss_status ss_pattern_check(const char *what, ss_pattern p) {
    if (ss_pattern_is_dense(p) || ss_pattern_is_inf(p))
        return SS_OK;
    if (p.z != 2 || p.l < 4 || p.l % 2 != 0 || p.l > SS_PATTERN_MAX_L)
        return ss_fail(SS_EINVAL, "%s: pattern {z=%d, l=%d}: expected z=2 and even 4 <= l <= %d",
                       what, p.z, p.l, SS_PATTERN_MAX_L);
    return SS_OK;
}

int ss_pattern_is_dense(ss_pattern p) { return p.z == 0 && p.l == 0; }

int ss_pattern_is_inf(ss_pattern p) { return p.z == 2 && p.l == 0; }

// --- parse / format ---------------------------------------------------------------

/* Parses a non-empty run of decimal digits, at most 9 of them; returns the
 * number of characters consumed, 0 when there is no number. */
static int parse_uint(const char *s, long *out) {
    int n = 0;
    long v = 0;
    while (s[n] >= '0' && s[n] <= '9') {
        if (n == 9)
            return 0;
        v = v * 10 + (s[n] - '0');
        n++;
    }
    *out = v;
    return n;
}

ss_status ss_pattern_parse(const char *s, ss_pattern *out) {
    if (!s || !out)
        return ss_fail(SS_EINVAL, "pattern: NULL argument");
    if (!strcmp(s, "2_inf") || !strcmp(s, "inf")) {
        *out = SS_PATTERN_INF;
        return SS_OK;
    }
    if (!strcmp(s, "dense")) {
        *out = SS_PATTERN_DENSE;
        return SS_OK;
    }
    long a, l;
    int na = parse_uint(s, &a);
    char sep = na ? s[na] : '\0';
    int nl = (sep == '_' || sep == ':') ? parse_uint(s + na + 1, &l) : 0;
    if (!na || !nl || s[na + 1 + nl] != '\0')
        return ss_fail(SS_EINVAL,
                       "pattern '%s': expected Z_L (e.g. 2_8), (L-2):L (e.g. 6:8) or 2_inf", s);
    if (l < 4 || l % 2 != 0 || l > SS_PATTERN_MAX_L)
        return ss_fail(SS_EINVAL, "pattern '%s': expected an even group length 4 <= L <= %d, found %ld",
                       s, SS_PATTERN_MAX_L, l);
    /* "Z_L" names the zeros; "N:M" the kept entries, which must be L-2. */
    long want = sep == '_' ? 2 : l - 2;
    if (a != want)
        return ss_fail(SS_EINVAL, "pattern '%s': expected %ld%c%ld (2 zeros per group of %ld), found %ld",
                       s, want, sep, l, l, a);
    *out = (ss_pattern){2, (int)l};
    return SS_OK;
}

const char *ss_pattern_format(ss_pattern p, char *buf, size_t n) {
    if (!buf || n == 0)
        return buf;
    if (ss_pattern_is_dense(p))
        snprintf(buf, n, "dense");
    else if (ss_pattern_is_inf(p))
        snprintf(buf, n, "%d_inf", p.z);
    else
        snprintf(buf, n, "%d_%d", p.z, p.l);
    return buf;
}

// --- sizes ------------------------------------------------------------------------

int64_t ss_ceil32(int64_t x) { return (x + 31) / 32 * 32; }

static int64_t ceil2(int64_t x) { return (x + 1) / 2 * 2; }

int64_t ss_pattern_group_len(ss_pattern p, int64_t k) {
    if (ss_pattern_is_dense(p))
        return k;
    if (ss_pattern_is_inf(p))
        return ceil2(k) + 2;
    return p.l;
}

double ss_pattern_expansion(ss_pattern p) {
    if (ss_pattern_is_dense(p))
        return 1.0;
    if (ss_pattern_is_inf(p))
        return 2.0;
    return (double)(2 * p.l - 4) / (double)p.l;
}

double ss_pattern_ideal_speedup(ss_pattern p) {
    if (ss_pattern_is_dense(p))
        return 1.0;
    return 2.0 / ss_pattern_expansion(p);
}

int64_t ss_padded_k(ss_pattern p, int64_t k) {
    if (ss_pattern_is_dense(p))
        return k;
    int64_t l = ss_pattern_group_len(p, k);
    return (k + l - 1) / l * l;
}

int64_t ss_slid_k_raw(ss_pattern p, int64_t k) {
    if (ss_pattern_is_dense(p))
        return k;
    int64_t l = ss_pattern_group_len(p, k);
    return ss_padded_k(p, k) / l * (2 * l - 4);
}

int64_t ss_slid_k(ss_pattern p, int64_t k) {
    if (ss_pattern_is_dense(p))
        return ss_ceil32(k);
    return ss_ceil32(ss_slid_k_raw(p, k));
}

ss_status ss_slide_geom_init(const char *what, ss_pattern p, int64_t k, ss_slide_geom *g) {
    SS_TRY(ss_pattern_check(what, p));
    if (ss_pattern_is_dense(p))
        return ss_fail(SS_EINVAL, "%s: expected a Z:L pattern or 2_inf, found dense", what);
    if (k < 0 || k > ((int64_t)1 << 40))
        return ss_fail(SS_EINVAL, "%s: expected 0 <= K <= 2^40 inputs per row, found %lld", what,
                       (long long)k);
    g->k = k;
    g->l = ss_pattern_group_len(p, k);
    g->g = 2 * g->l - 4;
    g->wins = g->l / 2 - 1;
    g->kp = ss_padded_k(p, k);
    g->groups = g->kp / g->l;
    g->kraw = g->groups * g->g;
    g->kslid = ss_ceil32(g->kraw);
    return SS_OK;
}

// --- the lifting map ----------------------------------------------------------------

int64_t ss_lift_src(ss_pattern p, int64_t k, int64_t j) {
    if (j < 0)
        return -1;
    if (ss_pattern_is_dense(p))
        return j < k ? j : -1;
    if (ss_pattern_check("lift", p) != SS_OK || k < 0)
        return -1;
    int64_t l = ss_pattern_group_len(p, k), gsz = 2 * l - 4;
    if (j >= ss_slid_k_raw(p, k))
        return -1;
    int64_t r = j % gsz, src = j / gsz * l + 2 * (r / 4) + r % 4;
    return src < k ? src : -1;
}

ss_status ss_lift_map(ss_pattern p, int64_t k, int32_t *map) {
    if (!map)
        return ss_fail(SS_EINVAL, "lift map: NULL output");
    int64_t kslid;
    if (ss_pattern_is_dense(p)) {
        if (k < 0 || ss_ceil32(k) > INT32_MAX)
            return ss_fail(SS_EINVAL, "lift map: expected 0 <= K < 2^31, found %lld", (long long)k);
        kslid = ss_ceil32(k);
        for (int64_t j = 0; j < kslid; j++)
            map[j] = j < k ? (int32_t)j : -1;
        return SS_OK;
    }
    ss_slide_geom g;
    SS_TRY(ss_slide_geom_init("lift map", p, k, &g));
    kslid = g.kslid;
    if (kslid > INT32_MAX)
        return ss_fail(SS_EINVAL, "lift map: K=%lld: expected K' < 2^31, found %lld", (long long)k,
                       (long long)kslid);
    int32_t *o = map;
    for (int64_t gi = 0; gi < g.groups; gi++)
        for (int64_t w = 0; w < g.wins; w++)
            for (int lane = 0; lane < 4; lane++) {
                int64_t src = gi * g.l + 2 * w + lane;
                *o++ = src < k ? (int32_t)src : -1;
            }
    for (int64_t j = g.kraw; j < kslid; j++)
        *o++ = -1;
    return SS_OK;
}

// --- elements -----------------------------------------------------------------------

int ss_elem_is_zero(ss_dtype t, const void *row, int64_t i) {
    ss_elem_kind e;
    if (!ss_elem_kind_of(t, &e))
        return ss_dtype_load(t, row, (size_t)i) == 0.0;
    const unsigned char *b = (const unsigned char *)row + (size_t)i * (size_t)e.size;
    uint32_t v = 0;
    switch (e.size) {
    case 1: v = b[0]; break;
    case 2: { uint16_t h; memcpy(&h, b, 2); v = h; } break;
    default: memcpy(&v, b, 4); break;
    }
    return (v & e.nzmask) == 0;
}
