/* UTF-8 coding, Unicode properties and NFC over the generated tables. */
#include "unicode.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

// --- UTF-8 -------------------------------------------------------------------------

/* Bytes of the sequence a lead byte starts (0: not a lead) and the range its
 * second byte must lie in (RFC 3629's table: it excludes overlong forms,
 * surrogates and values past U+10FFFF). */
static int utf8_lead(uint8_t b, uint8_t *lo, uint8_t *hi) {
    *lo = 0x80, *hi = 0xBF;
    if (b < 0x80)
        return 1;
    if (b < 0xC2)
        return 0;
    if (b < 0xE0)
        return 2;
    if (b < 0xF0) {
        if (b == 0xE0)
            *lo = 0xA0;
        else if (b == 0xED)
            *hi = 0x9F;
        return 3;
    }
    if (b < 0xF5) {
        if (b == 0xF0)
            *lo = 0x90;
        else if (b == 0xF4)
            *hi = 0x8F;
        return 4;
    }
    return 0;
}

/* Number of leading bytes of s[0..n) that fit the sequence s[0] starts (at
 * most its length); *need gets that length (0 for a bad lead). */
static size_t utf8_fit(const uint8_t *s, size_t n, int *need) {
    uint8_t lo, hi;
    *need = utf8_lead(s[0], &lo, &hi);
    if (*need == 0)
        return 0;
    size_t k = 1;
    for (; k < (size_t)*need && k < n; k++) {
        uint8_t b = s[k];
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
            break;
    }
    return k;
}

int ss_utf8_next(const uint8_t *s, size_t n, size_t *i, uint32_t *cp) {
    if (*i >= n)
        return 0;
    int need;
    const uint8_t *p = s + *i;
    if (utf8_fit(p, n - *i, &need) != (size_t)need || need == 0)
        return 0;
    static const uint8_t lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t c = p[0] & lead_mask[need];
    for (int k = 1; k < need; k++)
        c = (c << 6) | (p[k] & 0x3F);
    *cp = c;
    *i += (size_t)need;
    return 1;
}

int ss_utf8_put(uint32_t cp, uint8_t out[4]) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

size_t ss_utf8_valid_prefix(const uint8_t *s, size_t n) {
    size_t i = 0;
    uint32_t cp;
    while (i < n && ss_utf8_next(s, n, &i, &cp))
        ;
    return i;
}

size_t ss_utf8_invalid_len(const uint8_t *s, size_t n, int complete) {
    int need;
    size_t k = utf8_fit(s, n, &need);
    if (k == 0)
        return 1; /* not a lead byte: one replacement for it alone */
    if (k == n && k < (size_t)need && !complete)
        return 0; /* a well-formed start; more bytes may complete it */
    return k;
}

// --- properties ----------------------------------------------------------------------

/* bsearch comparators: a code point against an inclusive [lo, hi] range, a
 * ccc run, a decomposition entry, a composable pair. */
static int cmp_range(const void *key, const void *elem) {
    uint32_t cp = *(const uint32_t *)key;
    const uint32_t *r = elem;
    return cp < r[0] ? -1 : cp > r[1];
}

static int cmp_ccc(const void *key, const void *elem) {
    uint32_t cp = *(const uint32_t *)key;
    const ss_uc_ccc_range *r = elem;
    return cp < r->lo ? -1 : cp > r->hi;
}

static int cmp_decomp(const void *key, const void *elem) {
    uint32_t cp = *(const uint32_t *)key;
    const ss_uc_decomp_entry *d = elem;
    return cp < d->cp ? -1 : cp > d->cp;
}

static int cmp_pair(const void *key, const void *elem) {
    const uint32_t *ab = key;
    const ss_uc_decomp_entry *d = &ss_uc_decomp[*(const uint16_t *)elem];
    return ab[0] != d->first ? (ab[0] < d->first ? -1 : 1) : ab[1] < d->second ? -1 : ab[1] > d->second;
}

static int in_ranges(uint32_t cp, const uint32_t (*r)[2], size_t n) {
    return bsearch(&cp, r, n, sizeof *r, cmp_range) != NULL;
}

int ss_uc_is_letter(uint32_t cp) {
    if (cp < 0x80)
        return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return in_ranges(cp, ss_uc_letter_ranges, ss_uc_letter_count);
}

int ss_uc_is_number(uint32_t cp) {
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    return in_ranges(cp, ss_uc_number_ranges, ss_uc_number_count);
}

/* The White_Space property (PropList.txt; unchanged since Unicode 6.3): what
 * Oniguruma's and Rust's \s and char::is_whitespace match. */
int ss_uc_is_space(uint32_t cp) {
    if (cp < 0x80)
        return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

uint8_t ss_uc_ccc_of(uint32_t cp) {
    if (cp < 0x300)
        return 0;
    const ss_uc_ccc_range *r = bsearch(&cp, ss_uc_ccc, ss_uc_ccc_count, sizeof *ss_uc_ccc, cmp_ccc);
    return r ? r->ccc : 0;
}

// --- NFC -------------------------------------------------------------------------------

/* Hangul syllables compose and decompose by arithmetic (Unicode 3.12). */
enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7,
       L_COUNT = 19, V_COUNT = 21, T_COUNT = 28, N_COUNT = V_COUNT * T_COUNT,
       S_COUNT = L_COUNT * N_COUNT };

static const ss_uc_decomp_entry *find_decomp(uint32_t cp) {
    return bsearch(&cp, ss_uc_decomp, ss_uc_decomp_count, sizeof *ss_uc_decomp, cmp_decomp);
}

/* Appends the full canonical decomposition of cp to buf (at most 4 code
 * points: the longest in Unicode). */
static void decompose(uint32_t cp, uint32_t *buf, size_t *n) {
    if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
        uint32_t s = cp - S_BASE;
        buf[(*n)++] = L_BASE + s / N_COUNT;
        buf[(*n)++] = V_BASE + (s % N_COUNT) / T_COUNT;
        if (s % T_COUNT)
            buf[(*n)++] = T_BASE + s % T_COUNT;
        return;
    }
    const ss_uc_decomp_entry *d = cp >= 0xC0 ? find_decomp(cp) : NULL;
    if (!d) {
        buf[(*n)++] = cp;
        return;
    }
    decompose(d->first, buf, n);
    if (d->second)
        decompose(d->second, buf, n);
}

/* The primary composite of (a, b), or 0. */
static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE &&
        b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    const uint32_t ab[2] = {a, b};
    const uint16_t *i = bsearch(ab, ss_uc_comp_order, ss_uc_comp_count, sizeof *ss_uc_comp_order, cmp_pair);
    return i ? ss_uc_decomp[*i].cp : 0;
}

/* Stable sort of every run of non-starters by combining class. */
static void canonical_order(uint32_t *c, size_t n) {
    for (size_t i = 1; i < n; i++) {
        uint8_t cc = ss_uc_ccc_of(c[i]);
        if (cc == 0)
            continue;
        uint32_t x = c[i];
        size_t j = i;
        while (j > 0 && ss_uc_ccc_of(c[j - 1]) > cc) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = x;
    }
}

/* Canonical composition in place (the algorithm of UAX #15, 1.3): a
 * character joins the last starter unless a character between them is a
 * starter or has a class >= its own (then it is blocked). */
static size_t compose(uint32_t *c, size_t n) {
    if (n == 0)
        return 0;
    size_t starter = 0, out = 1;
    int last_cc = ss_uc_ccc_of(c[0]) ? 256 : 0; /* a leading non-starter blocks */
    for (size_t i = 1; i < n; i++) {
        int cc = ss_uc_ccc_of(c[i]);
        uint32_t comp = last_cc == 256 ? 0 : compose_pair(c[starter], c[i]);
        if (comp && (last_cc < cc || last_cc == 0)) {
            c[starter] = comp;
            continue;
        }
        if (cc == 0)
            starter = out;
        last_cc = cc;
        c[out++] = c[i];
    }
    return out;
}

ss_status ss_uc_nfc(const uint8_t *s, size_t n, uint8_t **out, size_t *out_n) {
    /* Below U+0300 every character is a starter that is its own NFC and
     * composes with nothing before it: such text is its own NFC. Its UTF-8
     * bytes are all < 0xCC. */
    size_t k = 0;
    while (k < n && s[k] < 0xCC)
        k++;
    uint32_t *cps = NULL;
    uint8_t *buf = NULL;
    if (k == n) {
        if (!(buf = malloc(n + 1)))
            goto oom;
        memcpy(buf, s, n);
        buf[n] = 0;
        *out = buf, *out_n = n;
        return SS_OK;
    }
    if (n > SIZE_MAX / (4 * sizeof *cps) || !(cps = malloc(4 * n * sizeof *cps)))
        goto oom;
    size_t m = 0, i = 0;
    uint32_t cp;
    while (i < n) {
        if (!ss_utf8_next(s, n, &i, &cp))
            cp = 0xFFFD, i++; /* callers pass valid text; never loop on junk */
        decompose(cp, cps, &m);
    }
    canonical_order(cps, m);
    m = compose(cps, m);
    if (!(buf = malloc(4 * m + 1)))
        goto oom;
    size_t len = 0;
    for (size_t j = 0; j < m; j++)
        len += (size_t)ss_utf8_put(cps[j], buf + len);
    buf[len] = 0;
    free(cps);
    *out = buf, *out_n = len;
    return SS_OK;
oom:
    free(cps);
    return ss_fail(SS_ENOMEM, "tokenizer: out of memory normalizing %zu bytes of text", n);
}
