/* Token ids -> text, whole or streamed, and the lookups by id and text. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer_internal.h"
#include "unicode.h"

int32_t ss_tokenizer_n_ids(const ss_tokenizer *t) { return t->n_ids; }

int32_t ss_tokenizer_find(const ss_tokenizer *t, const char *token) {
    return ss_strmap_get(&t->by_text, token, strlen(token));
}

int ss_tokenizer_is_special(const ss_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_ids && (t->tok[id].flags & SS_TOK_SPECIAL);
}

// --- byte buffers -----------------------------------------------------------------------

typedef struct {
    char *p;
    size_t len, cap;
} strbuf;

/* Room for `more` bytes and a NUL. */
static ss_status sb_reserve(strbuf *b, size_t more) {
    if (b->len + more + 1 <= b->cap)
        return SS_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return ss_fail(SS_ENOMEM, "tokenizer: out of memory for %zu bytes of text", cap);
    b->p = p, b->cap = cap;
    return SS_OK;
}

/* The bytes token id decodes to (none for an id without a token, or a
 * special one when skipping them). */
static void token_bytes(const ss_tokenizer *t, int32_t id, int skip_special, const uint8_t **p, size_t *n) {
    *n = 0;
    if (id < 0 || id >= t->n_ids || !t->tok[id].flags || (skip_special && (t->tok[id].flags & SS_TOK_SPECIAL)))
        return;
    *p = (const uint8_t *)t->arena + t->tok[id].dec_off;
    *n = t->tok[id].dec_len;
}

/* Appends s[0..n) with each maximal invalid subpart replaced by U+FFFD (as
 * lossy UTF-8 decoding does); returns the bytes consumed, which is less than
 * n only when !complete and the tail is a truncated but well-formed start. */
static ss_status append_lossy(strbuf *b, const uint8_t *s, size_t n, int complete, size_t *used) {
    SS_TRY(sb_reserve(b, 3 * n)); /* worst case: every byte becomes EF BF BD */
    size_t i = 0;
    while (i < n) {
        size_t j = i + ss_utf8_valid_prefix(s + i, n - i);
        memcpy(b->p + b->len, s + i, j - i);
        b->len += j - i;
        if (j == n) {
            i = j;
            break;
        }
        size_t bad = ss_utf8_invalid_len(s + j, n - j, complete);
        if (bad == 0) {
            i = j;
            break;
        }
        memcpy(b->p + b->len, "\xEF\xBF\xBD", 3);
        b->len += 3;
        i = j + bad;
    }
    b->p[b->len] = 0;
    *used = i;
    return SS_OK;
}

ss_status ss_tokenizer_decode(const ss_tokenizer *t, const int32_t *ids, int64_t n, int skip_special,
                              char **text, size_t *len) {
    strbuf raw = {0}, out = {0};
    size_t used;
    *text = NULL, *len = 0;
    ss_status st = sb_reserve(&raw, 0);
    for (int64_t i = 0; i < n && st == SS_OK; i++) {
        const uint8_t *p;
        size_t k;
        token_bytes(t, ids[i], skip_special, &p, &k);
        if (k && (st = sb_reserve(&raw, k)) == SS_OK) {
            memcpy(raw.p + raw.len, p, k);
            raw.len += k;
        }
    }
    if (st == SS_OK)
        st = append_lossy(&out, (const uint8_t *)raw.p, raw.len, 1, &used);
    free(raw.p);
    if (st != SS_OK) {
        free(out.p);
        return st;
    }
    *text = out.p, *len = out.len;
    return SS_OK;
}

// --- streaming ----------------------------------------------------------------------------

struct ss_detokenizer {
    const ss_tokenizer *t;
    int skip_special;
    uint8_t held[4]; /* the start of a character the next token may finish */
    size_t n_held;
    strbuf in, out;
};

ss_status ss_detokenizer_create(const ss_tokenizer *t, int skip_special, ss_detokenizer **out) {
    *out = calloc(1, sizeof **out);
    if (!*out)
        return ss_fail(SS_ENOMEM, "tokenizer: out of memory");
    (*out)->t = t;
    (*out)->skip_special = skip_special;
    return SS_OK;
}

void ss_detokenizer_destroy(ss_detokenizer *d) {
    if (!d)
        return;
    free(d->in.p);
    free(d->out.p);
    free(d);
}

ss_status ss_detokenizer_push(ss_detokenizer *d, int32_t id, const char **text, size_t *len) {
    const uint8_t *p;
    size_t k, used;
    token_bytes(d->t, id, d->skip_special, &p, &k);
    d->in.len = d->out.len = 0;
    SS_TRY(sb_reserve(&d->in, d->n_held + k));
    memcpy(d->in.p, d->held, d->n_held);
    if (k)
        memcpy(d->in.p + d->n_held, p, k);
    d->in.len = d->n_held + k;
    SS_TRY(append_lossy(&d->out, (const uint8_t *)d->in.p, d->in.len, 0, &used));
    d->n_held = d->in.len - used; /* at most 3: a truncated well-formed start */
    memcpy(d->held, d->in.p + used, d->n_held);
    *text = d->out.p, *len = d->out.len;
    return SS_OK;
}

ss_status ss_detokenizer_finish(ss_detokenizer *d, const char **text, size_t *len) {
    size_t used;
    d->out.len = 0;
    SS_TRY(append_lossy(&d->out, d->held, d->n_held, 1, &used));
    d->n_held = 0;
    *text = d->out.p, *len = d->out.len;
    return SS_OK;
}
