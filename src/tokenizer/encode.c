/* Text -> token ids: added tokens, normalization, pre-tokenization, BPE
 * (the order of the steps is in include/slidesparse/tokenizer.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer_internal.h"
#include "unicode.h"

ss_status ss_idvec_push(ss_idvec *v, int32_t id) {
    if (v->n == v->cap) {
        int64_t cap = v->cap ? 2 * v->cap : 64;
        int32_t *p = realloc(v->v, (size_t)cap * sizeof *p);
        if (!p)
            return ss_fail(SS_ENOMEM, "tokenizer: out of memory for %lld token ids", (long long)cap);
        v->v = p, v->cap = cap;
    }
    v->v[v->n++] = id;
    return SS_OK;
}

// --- the byte-level alphabet ----------------------------------------------------------

/* Printable bytes stand for themselves; the other 68 (0x00-0x20, 0x7F-0xA0,
 * 0xAD) become U+0100.. in byte order, so every byte is a visible character. */
uint32_t ss_bytelevel_char(uint8_t b) {
    if (b <= 0x20)
        return 256u + b;
    if (b >= 0x7F && b <= 0xA0)
        return 256u + 33 + (b - 0x7Fu);
    if (b == 0xAD)
        return 256u + 67;
    return b;
}

int ss_bytelevel_byte(uint32_t cp) {
    if (cp < 256)
        return (cp <= 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) ? -1 : (int)cp;
    if (cp < 256 + 33)
        return (int)(cp - 256);
    if (cp < 256 + 67)
        return (int)(cp - 256 - 33 + 0x7F);
    return cp == 256 + 67 ? 0xAD : -1;
}

// --- pre-tokenization + BPE ---------------------------------------------------------------

typedef struct {
    size_t a, b; /* code points [a, b) of the text */
} cp_range;

/* BPE of code points [a, b) of the text, optionally behind a prefix space:
 * the ByteLevel step, split by the GPT-2 regex when use_regex. */
static ss_status bytelevel_piece(const ss_tokenizer *t, const uint8_t *s, const uint32_t *cp, const size_t *off,
                                 cp_range r, uint32_t *tmp, ss_idvec *out) {
    int pre = t->prefix_space && cp[r.a] != ' ';
    if (!t->bl_regex)
        return ss_bpe_encode(t, s + off[r.a], off[r.b] - off[r.a], pre, out);
    /* The regex sees the prefixed piece: tmp = [' '] + cp[a..b). */
    size_t n = r.b - r.a + (size_t)pre;
    if (pre)
        tmp[0] = ' ';
    memcpy(tmp + pre, cp + r.a, (r.b - r.a) * sizeof *cp);
    for (size_t i = 0; i < n;) {
        size_t len = ss_pretok_match(SS_PRETOK_GPT2, tmp, n, i);
        int has_prefix = pre && i == 0;
        size_t from = r.a + i - (size_t)(pre && i > 0), to = r.a + i + len - (size_t)pre;
        SS_TRY(ss_bpe_encode(t, s + off[from], off[to] - off[from], has_prefix, out));
        i += len;
    }
    return SS_OK;
}

/* Split steps in order, each over every piece of the previous one (a piece
 * is matched on its own: no lookahead across its end). */
static size_t split_all(const ss_tokenizer *t, const uint32_t *cp, size_t n, cp_range *a, cp_range *b,
                        cp_range **res) {
    size_t na = 1;
    a[0] = (cp_range){0, n};
    for (int k = 0; k < t->n_split; k++) {
        size_t nb = 0;
        for (size_t p = 0; p < na; p++)
            for (size_t i = a[p].a; i < a[p].b;) {
                size_t len = ss_pretok_match(t->split[k], cp + a[p].a, a[p].b - a[p].a, i - a[p].a);
                b[nb++] = (cp_range){i, i + len};
                i += len;
            }
        cp_range *x = a;
        a = b, b = x, na = nb;
    }
    *res = a;
    return na;
}

/* Normalized text (no added tokens in it) -> ids. */
static ss_status pretokenize(const ss_tokenizer *t, const uint8_t *s, size_t n, ss_idvec *out) {
    uint32_t *cp = malloc((n + 1) * sizeof *cp), *tmp = malloc((n + 2) * sizeof *tmp);
    size_t *off = malloc((n + 1) * sizeof *off);
    cp_range *ra = malloc((n + 1) * sizeof *ra), *rb = malloc((n + 1) * sizeof *rb), *pieces;
    ss_status st = SS_OK;
    if (!cp || !tmp || !off || !ra || !rb) {
        st = ss_fail(SS_ENOMEM, "tokenizer: out of memory for %zu bytes of text", n);
        goto fail;
    }
    size_t m = 0, i = 0;
    while (i < n) {
        off[m] = i;
        if (!ss_utf8_next(s, n, &i, &cp[m++])) { /* validated by the caller */
            st = ss_fail(SS_EINVAL, "tokenizer: invalid UTF-8 at byte %zu", i);
            goto fail;
        }
    }
    off[m] = n;
    size_t np = split_all(t, cp, m, ra, rb, &pieces);
    for (size_t p = 0; p < np && st == SS_OK; p++)
        st = bytelevel_piece(t, s, cp, off, pieces[p], tmp, out);
fail:
    free(cp);
    free(tmp);
    free(off);
    free(ra);
    free(rb);
    return st;
}

// --- added tokens -----------------------------------------------------------------------

/* The leftmost, then longest, token of the set in s[from..n): its index or -1. */
static const ss_added_token *find_added(const ss_tokenizer *t, const ss_added_set *set, const uint8_t *s, size_t n,
                                        size_t from, size_t *at) {
    for (size_t p = from; p < n; p++) {
        const ss_added_token *best = NULL;
        for (uint32_t k = set->first[s[p]]; k < set->first[s[p] + 1]; k++) {
            const ss_added_token *a = &set->tok[k];
            if (a->len <= n - p && (!best || a->len > best->len) && memcmp(t->arena + a->off, s + p, a->len) == 0)
                best = a;
        }
        if (best) {
            *at = p;
            return best;
        }
    }
    return NULL;
}

/* Start of the whitespace run that ends at s[end] (lstrip). */
static size_t space_run_before(const uint8_t *s, size_t end) {
    while (end > 0) {
        size_t p = end - 1;
        while (p > 0 && (s[p] & 0xC0) == 0x80)
            p--;
        size_t q = p;
        uint32_t cp;
        if (!ss_utf8_next(s, end, &q, &cp) || !ss_uc_is_space(cp))
            break;
        end = p;
    }
    return end;
}

/* End of the whitespace run that starts at s[from] (rstrip). */
static size_t space_run_after(const uint8_t *s, size_t n, size_t from) {
    uint32_t cp;
    size_t q = from;
    while (q < n && ss_utf8_next(s, n, &q, &cp) && ss_uc_is_space(cp))
        from = q;
    return from;
}

typedef ss_status (*gap_fn)(const ss_tokenizer *t, const uint8_t *s, size_t n, ss_idvec *out);

/* Cuts the set's tokens out of s (lstrip / rstrip widen a cut over the
 * whitespace beside it, never back into the previous cut): each token's id
 * goes to out, each text between them through gap. */
static ss_status split_added(const ss_tokenizer *t, const ss_added_set *set, const uint8_t *s, size_t n, gap_fn gap,
                             ss_idvec *out) {
    size_t done = 0, at;
    const ss_added_token *a;
    while (set->n && (a = find_added(t, set, s, n, done, &at))) {
        size_t start = a->lstrip ? space_run_before(s, at) : at, stop = at + a->len;
        if (start < done)
            start = done;
        if (a->rstrip)
            stop = space_run_after(s, n, stop);
        if (start > done)
            SS_TRY(gap(t, s + done, start - done, out));
        SS_TRY(ss_idvec_push(out, a->id));
        done = stop;
    }
    return done < n ? gap(t, s + done, n - done, out) : SS_OK;
}

/* A part of the raw text between added tokens: normalize, then cut out the
 * tokens that match normalized text, then pre-tokenize the rest. */
static ss_status normalized_part(const ss_tokenizer *t, const uint8_t *s, size_t n, ss_idvec *out) {
    if (!t->nfc)
        return split_added(t, &t->norm_added, s, n, pretokenize, out);
    uint8_t *norm;
    size_t nn;
    SS_TRY(ss_uc_nfc(s, n, &norm, &nn));
    ss_status st = split_added(t, &t->norm_added, norm, nn, pretokenize, out);
    free(norm);
    return st;
}

ss_status ss_tokenizer_encode(const ss_tokenizer *t, const char *text, size_t len, int add_special,
                              int32_t **ids, int64_t *n) {
    *ids = NULL, *n = 0;
    size_t bad = ss_utf8_valid_prefix((const uint8_t *)text, len);
    if (bad < len)
        return ss_fail(SS_EINVAL, "tokenizer: the text is not valid UTF-8 (byte %zu of %zu)", bad, len);
    ss_idvec v = {0};
    ss_status st = SS_OK;
    for (int i = 0; add_special && i < t->n_prefix && st == SS_OK; i++)
        st = ss_idvec_push(&v, t->prefix[i]);
    if (st == SS_OK)
        st = split_added(t, &t->raw_added, (const uint8_t *)text, len, normalized_part, &v);
    for (int i = 0; add_special && i < t->n_suffix && st == SS_OK; i++)
        st = ss_idvec_push(&v, t->suffix[i]);
    if (st != SS_OK) {
        free(v.v);
        return st;
    }
    if (!v.v && !(v.v = malloc(sizeof *v.v))) /* an empty result is still a buffer to free */
        return ss_fail(SS_ENOMEM, "tokenizer: out of memory");
    *ids = v.v, *n = v.n;
    return SS_OK;
}
