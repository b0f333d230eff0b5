/* tokenizer.json -> ss_tokenizer (the accepted schema is in
 * include/slidesparse/tokenizer.h). The file is untrusted: every field is
 * type-checked, every id range-checked, every merge resolved against the
 * vocabulary, and the first problem fails the load with one line naming the
 * file and the field. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "io/json_util.h"
#include "tokenizer_internal.h"
#include "unicode.h"

#define TOKENIZER_MAX_BYTES ((size_t)512 << 20) /* Llama 3's is 9 MB */
#define TOKENIZER_MAX_ID (1 << 30)

/* SS_EFORMAT (or st) with "<file>: <message>". */
static ss_status SS_PRINTF(3, 4) bad_st(const ss_tokenizer *t, ss_status st, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ss_fail(st, "%s: %s", t->label, msg);
}
#define bad(t, ...) bad_st((t), SS_EFORMAT, __VA_ARGS__)

// --- arena --------------------------------------------------------------------------

/* Appends len bytes (and a NUL, not counted) to the arena; *off gets their
 * offset. Offsets are 32-bit: the arena stays below 4 GiB. s must not point
 * into the arena (it may move), and only offsets into it outlive a call. */
static ss_status arena_add(ss_tokenizer *t, const void *s, size_t len, uint32_t *off) {
    if (t->arena_len + len + 1 > UINT32_MAX)
        return bad(t, "token texts exceed 4 GiB");
    if (t->arena_len + len + 1 > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap : 4096;
        while (cap < t->arena_len + len + 1)
            cap *= 2;
        char *p = realloc(t->arena, cap);
        if (!p)
            return ss_fail(SS_ENOMEM, "%s: out of memory for token texts", t->label);
        t->arena = p, t->arena_cap = cap;
    }
    memcpy(t->arena + t->arena_len, s, len);
    t->arena[t->arena_len + len] = 0;
    *off = (uint32_t)t->arena_len;
    t->arena_len += len + 1;
    return SS_OK;
}

static const char *arena_str(const ss_tokenizer *t, uint32_t off) { return t->arena + off; }

// --- typed getters ----------------------------------------------------------------------

/* An optional boolean (def when absent or null). */
static ss_status get_bool(const ss_tokenizer *t, json_t *o, const char *where, const char *key, int def,
                          int *out) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return SS_OK;
    }
    if (!json_is_boolean(v))
        return bad(t, "%s.%s: expected a boolean, found %s", where, key, ss_json_type_word(v));
    *out = json_is_true(v);
    return SS_OK;
}

/* "type" of a component object, "" when absent. */
static ss_status get_type(const ss_tokenizer *t, json_t *o, const char *where, const char **out) {
    if (!json_is_object(o))
        return bad(t, "%s: expected an object, found %s", where, ss_json_type_word(o));
    json_t *v = json_object_get(o, "type");
    if (v && !json_is_string(v))
        return bad(t, "%s.type: expected a string, found %s", where, ss_json_type_word(v));
    *out = v ? json_string_value(v) : "";
    return SS_OK;
}

static ss_status get_array(const ss_tokenizer *t, json_t *o, const char *where, const char *key, json_t **out) {
    json_t *v = json_object_get(o, key);
    if (!json_is_array(v))
        return bad(t, "%s.%s: expected an array, found %s", where, key, v ? ss_json_type_word(v) : "nothing");
    *out = v;
    return SS_OK;
}

/* A field that must be null, absent or the empty string (BPE options this
 * tokenizer does not implement). */
static ss_status require_empty(const ss_tokenizer *t, json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
        return SS_OK;
    return bad_st(t, SS_EUNSUPPORTED, "model.%s: only null or \"\" is supported (byte-level BPE)", key);
}

// --- model: vocabulary ------------------------------------------------------------------

/* Collected before the id table exists (ids are validated against counts). */
typedef struct {
    uint32_t *off, *len; /* (n) key text in the arena */
    int32_t *id;
    size_t n;
} vocab_list;

static ss_status read_vocab(ss_tokenizer *t, json_t *vocab, vocab_list *vl) {
    if (!json_is_object(vocab))
        return bad(t, "model.vocab: expected an object, found %s", vocab ? ss_json_type_word(vocab) : "nothing");
    size_t n = json_object_size(vocab);
    vl->off = malloc((n + 1) * sizeof *vl->off);
    vl->len = malloc((n + 1) * sizeof *vl->len);
    vl->id = malloc((n + 1) * sizeof *vl->id);
    if (!vl->off || !vl->len || !vl->id)
        return ss_fail(SS_ENOMEM, "%s: out of memory for %zu vocabulary entries", t->label, n);
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach(vocab, key, klen, v) {
        if (!json_is_integer(v))
            return bad(t, "model.vocab['%.64s']: expected an integer id, found %s", key, ss_json_type_word(v));
        if (json_integer_value(v) < 0 || json_integer_value(v) >= TOKENIZER_MAX_ID)
            return bad(t, "model.vocab['%.64s']: id %lld, expected 0..%d", key, (long long)json_integer_value(v),
                       TOKENIZER_MAX_ID - 1);
        vl->id[vl->n] = (int32_t)json_integer_value(v);
        vl->len[vl->n] = (uint32_t)klen;
        SS_TRY(arena_add(t, key, klen, &vl->off[vl->n]));
        vl->n++;
    }
    return SS_OK;
}

// --- added tokens -------------------------------------------------------------------------

typedef struct {
    int32_t id;
    uint32_t off, len;
    int special, lstrip, rstrip, normalized;
} added_def;

static ss_status read_added_one(ss_tokenizer *t, json_t *a, size_t i, added_def *d) {
    char where[64];
    snprintf(where, sizeof where, "added_tokens[%zu]", i);
    if (!json_is_object(a))
        return bad(t, "%s: expected an object, found %s", where, ss_json_type_word(a));
    json_t *id = json_object_get(a, "id"), *content = json_object_get(a, "content");
    if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= TOKENIZER_MAX_ID)
        return bad(t, "%s.id: expected an id in 0..%d", where, TOKENIZER_MAX_ID - 1);
    if (!json_is_string(content))
        return bad(t, "%s.content: expected a string, found %s", where,
                   content ? ss_json_type_word(content) : "nothing");
    int single_word = 0;
    d->id = (int32_t)json_integer_value(id);
    SS_TRY(get_bool(t, a, where, "special", 0, &d->special));
    SS_TRY(get_bool(t, a, where, "lstrip", 0, &d->lstrip));
    SS_TRY(get_bool(t, a, where, "rstrip", 0, &d->rstrip));
    SS_TRY(get_bool(t, a, where, "normalized", !d->special, &d->normalized));
    SS_TRY(get_bool(t, a, where, "single_word", 0, &single_word));
    if (single_word)
        return bad_st(t, SS_EUNSUPPORTED, "%s ('%.64s'): single_word is not supported", where,
                      json_string_value(content));
    d->len = (uint32_t)json_string_length(content);
    return arena_add(t, json_string_value(content), json_string_length(content), &d->off);
}

static ss_status read_added(ss_tokenizer *t, json_t *root, added_def **defs, size_t *n) {
    json_t *arr = json_object_get(root, "added_tokens");
    *n = 0;
    if (!arr || json_is_null(arr))
        return SS_OK;
    if (!json_is_array(arr))
        return bad(t, "added_tokens: expected an array, found %s", ss_json_type_word(arr));
    if (!(*defs = calloc(json_array_size(arr) + 1, sizeof **defs)))
        return ss_fail(SS_ENOMEM, "%s: out of memory for added tokens", t->label);
    for (size_t i = 0; i < json_array_size(arr); i++, (*n)++)
        SS_TRY(read_added_one(t, json_array_get(arr, i), i, &(*defs)[i]));
    return SS_OK;
}

// --- the id table ---------------------------------------------------------------------------

static int same_text(const ss_tokenizer *t, const ss_tok_entry *e, uint32_t off, uint32_t len) {
    return e->len == len && memcmp(t->arena + e->off, t->arena + off, len) == 0;
}

/* Sizes the table by the largest id (bounded by the number of tokens, so a
 * hostile file cannot make it huge) and files every token under its id. */
static ss_status build_ids(ss_tokenizer *t, const vocab_list *vl, const added_def *ad, size_t n_added) {
    int64_t max_id = -1, limit = 2 * (int64_t)(vl->n + n_added) + 1024;
    for (size_t i = 0; i < vl->n; i++)
        max_id = vl->id[i] > max_id ? vl->id[i] : max_id;
    for (size_t i = 0; i < n_added; i++)
        max_id = ad[i].id > max_id ? ad[i].id : max_id;
    if (max_id >= limit)
        return bad(t, "token id %lld is too sparse for %zu tokens (ids must stay below %lld)", (long long)max_id,
                   vl->n + n_added, (long long)limit);
    t->n_ids = (int32_t)(max_id + 1);
    if (!(t->tok = calloc((size_t)t->n_ids + 1, sizeof *t->tok)))
        return ss_fail(SS_ENOMEM, "%s: out of memory for %d tokens", t->label, t->n_ids);
    for (size_t i = 0; i < vl->n; i++) {
        ss_tok_entry *e = &t->tok[vl->id[i]];
        if (e->flags)
            return bad(t, "model.vocab: id %d is given to both '%.64s' and '%.64s'", vl->id[i],
                       arena_str(t, e->off), arena_str(t, vl->off[i]));
        *e = (ss_tok_entry){.off = vl->off[i], .len = vl->len[i], .flags = SS_TOK_PRESENT};
    }
    for (size_t i = 0; i < n_added; i++) {
        ss_tok_entry *e = &t->tok[ad[i].id];
        if (e->flags && !same_text(t, e, ad[i].off, ad[i].len))
            return bad(t, "added_tokens: id %d is both '%.64s' and '%.64s'", ad[i].id, arena_str(t, ad[i].off),
                       arena_str(t, e->off));
        if (!e->flags)
            *e = (ss_tok_entry){.off = ad[i].off, .len = ad[i].len};
        e->flags |= SS_TOK_PRESENT | SS_TOK_ADDED | (ad[i].special ? SS_TOK_SPECIAL : 0);
    }
    return SS_OK;
}

/* The text -> id maps: the vocabulary alone (what BPE looks up) and every
 * token (added ones win). An added token whose content the vocabulary spells
 * with another id is a contradiction. */
static ss_status build_maps(ss_tokenizer *t, const vocab_list *vl, const added_def *ad, size_t n_added) {
    int32_t old;
    SS_TRY(ss_strmap_init(&t->vocab, vl->n, &t->arena));
    SS_TRY(ss_strmap_init(&t->by_text, vl->n + n_added, &t->arena));
    for (size_t i = 0; i < vl->n; i++) {
        SS_TRY(ss_strmap_put(&t->vocab, vl->off[i], vl->len[i], vl->id[i], &old));
        SS_TRY(ss_strmap_put(&t->by_text, vl->off[i], vl->len[i], vl->id[i], &old));
    }
    for (size_t i = 0; i < n_added; i++) {
        const char *k = arena_str(t, ad[i].off);
        int32_t in_vocab = ss_strmap_get(&t->vocab, k, ad[i].len);
        if (in_vocab >= 0 && in_vocab != ad[i].id)
            return bad(t, "added token '%.64s' has id %d but the vocabulary gives it id %d", k, ad[i].id, in_vocab);
        SS_TRY(ss_strmap_put(&t->by_text, ad[i].off, ad[i].len, ad[i].id, &old));
    }
    return SS_OK;
}

// --- merges ---------------------------------------------------------------------------------

/* One merge, "a b" or ["a", "b"], into its two parts. */
static ss_status merge_parts(const ss_tokenizer *t, json_t *m, size_t i, const char **a, size_t *na,
                             const char **b, size_t *nb) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m), *sp = memchr(s, ' ', json_string_length(m));
        if (!sp || memchr(sp + 1, ' ', json_string_length(m) - (size_t)(sp - s) - 1))
            return bad(t, "model.merges[%zu]: '%.64s' is not two tokens separated by one space", i, s);
        *a = s, *na = (size_t)(sp - s), *b = sp + 1, *nb = json_string_length(m) - *na - 1;
        return SS_OK;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0)), *na = json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1)), *nb = json_string_length(json_array_get(m, 1));
        return SS_OK;
    }
    return bad(t, "model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"], found %s", i, ss_json_type_word(m));
}

static ss_status read_merges(ss_tokenizer *t, json_t *merges) {
    size_t n = json_array_size(merges), cap = 256;
    char *buf = malloc(cap);
    ss_status st = buf ? ss_pairmap_init(&t->merges, n) : ss_fail(SS_ENOMEM, "%s: out of memory", t->label);
    for (size_t i = 0; i < n && st == SS_OK && i < INT32_MAX; i++) {
        const char *a = "", *b = "";
        size_t na = 0, nb = 0;
        if ((st = merge_parts(t, json_array_get(merges, i), i, &a, &na, &b, &nb)) != SS_OK)
            break;
        int32_t ia = ss_strmap_get(&t->vocab, a, na), ib = ss_strmap_get(&t->vocab, b, nb);
        if (ia < 0 || ib < 0) {
            st = bad(t, "model.merges[%zu]: '%.64s' is not in the vocabulary", i, ia < 0 ? a : b);
            break;
        }
        if (na + nb > cap) {
            char *p = realloc(buf, cap = 2 * (na + nb));
            if (!p) {
                st = ss_fail(SS_ENOMEM, "%s: out of memory", t->label);
                break;
            }
            buf = p;
        }
        memcpy(buf, a, na);
        memcpy(buf + na, b, nb);
        int32_t im = ss_strmap_get(&t->vocab, buf, na + nb);
        if (im < 0)
            st = bad(t, "model.merges[%zu]: the merged token '%.*s' is not in the vocabulary", i,
                     (int)(na + nb > 64 ? 64 : na + nb), buf);
        else
            st = ss_pairmap_put(&t->merges, ia, ib, (int32_t)i, im);
    }
    free(buf);
    return st;
}

static ss_status read_model_options(ss_tokenizer *t, json_t *model) {
    const char *type = "";
    SS_TRY(get_type(t, model, "model", &type));
    if (*type && strcmp(type, "BPE") != 0)
        return bad_st(t, SS_EUNSUPPORTED, "model.type '%.32s' is not supported (only BPE)", type);
    int byte_fallback = 0;
    SS_TRY(get_bool(t, model, "model", "ignore_merges", 0, &t->ignore_merges));
    SS_TRY(get_bool(t, model, "model", "fuse_unk", 0, &t->fuse_unk));
    SS_TRY(get_bool(t, model, "model", "byte_fallback", 0, &byte_fallback));
    if (byte_fallback)
        return bad_st(t, SS_EUNSUPPORTED, "model.byte_fallback: a SentencePiece-style BPE is not supported "
                                          "(only byte-level BPE)");
    json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && !(json_is_number(dropout) && json_number_value(dropout) == 0))
        return bad_st(t, SS_EUNSUPPORTED, "model.dropout: only null or 0 is supported");
    SS_TRY(require_empty(t, model, "continuing_subword_prefix"));
    return require_empty(t, model, "end_of_word_suffix");
}

static ss_status read_unk(ss_tokenizer *t, json_t *model) {
    json_t *unk = json_object_get(model, "unk_token");
    t->unk_id = -1;
    if (!unk || json_is_null(unk))
        return SS_OK;
    if (!json_is_string(unk))
        return bad(t, "model.unk_token: expected a string or null, found %s", ss_json_type_word(unk));
    t->unk_id = ss_strmap_get(&t->vocab, json_string_value(unk), json_string_length(unk));
    if (t->unk_id < 0)
        return bad(t, "model.unk_token '%.64s' is not in the vocabulary", json_string_value(unk));
    return SS_OK;
}

// --- byte-level tables, decoded bytes, added-token sets ------------------------------------------

static void fill_bytelevel(ss_tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        uint8_t u[4];
        t->bl_len[b] = (uint8_t)ss_utf8_put(ss_bytelevel_char((uint8_t)b), u);
        memcpy(t->bl_utf8[b], u, 2);
        t->byte_id[b] = ss_strmap_get(&t->vocab, (const char *)u, t->bl_len[b]);
    }
}

/* What each token decodes to: its characters mapped back through the
 * byte-level alphabet, or (when one is outside it) its own UTF-8 bytes. */
static ss_status fill_decoded(ss_tokenizer *t) {
    uint8_t *tmp = NULL;
    size_t cap = 0;
    ss_status st = SS_OK;
    for (int32_t id = 0; id < t->n_ids && st == SS_OK; id++) {
        ss_tok_entry *e = &t->tok[id];
        if (!e->flags)
            continue;
        if (e->len > cap) {
            uint8_t *p = realloc(tmp, cap = e->len);
            if (!p) {
                st = ss_fail(SS_ENOMEM, "%s: out of memory", t->label);
                break;
            }
            tmp = p;
        }
        const uint8_t *s = (const uint8_t *)t->arena + e->off;
        size_t i = 0, k = 0;
        uint32_t cp;
        int byte;
        while (i < e->len && ss_utf8_next(s, e->len, &i, &cp) && (byte = ss_bytelevel_byte(cp)) >= 0)
            tmp[k++] = (uint8_t)byte;
        if (i < e->len) { /* a character outside the alphabet: the text as it is */
            memcpy(tmp, s, e->len); /* arena_add may move the arena s points into */
            k = e->len;
        }
        st = arena_add(t, tmp, k, &e->dec_off);
        e->dec_len = (uint32_t)k;
    }
    free(tmp);
    return st;
}

static int added_less(const ss_tokenizer *t, const ss_added_token *a, const ss_added_token *b) {
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(t->arena + a->off, t->arena + b->off, n);
    return c ? c < 0 : a->len < b->len;
}

/* Sorted by bytes so a match scan looks only at the tokens with the right
 * first byte. A bottom-up merge sort: qsort's comparator could not reach the
 * arena without global state. */
static ss_status sort_added(const ss_tokenizer *t, ss_added_set *s) {
    ss_added_token *tmp = malloc((s->n + 1) * sizeof *tmp), *a = s->tok, *b = tmp;
    if (!tmp)
        return ss_fail(SS_ENOMEM, "%s: out of memory", t->label);
    for (size_t w = 1; w < s->n; w *= 2) {
        for (size_t lo = 0; lo < s->n; lo += 2 * w) {
            size_t mid = lo + w < s->n ? lo + w : s->n, hi = lo + 2 * w < s->n ? lo + 2 * w : s->n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid || j < hi)
                b[k++] = (j >= hi || (i < mid && !added_less(t, &a[j], &a[i]))) ? a[i++] : a[j++];
        }
        ss_added_token *x = a;
        a = b, b = x;
    }
    if (a != s->tok)
        memcpy(s->tok, a, s->n * sizeof *a);
    free(tmp);
    size_t k = 0;
    for (int b = 0; b <= 256; b++) {
        while (k < s->n && (uint8_t)t->arena[s->tok[k].off] < b)
            k++;
        s->first[b] = (uint32_t)k;
    }
    return SS_OK;
}

static ss_status build_added_sets(ss_tokenizer *t, const added_def *ad, size_t n) {
    t->raw_added.tok = calloc(n + 1, sizeof *t->raw_added.tok);
    t->norm_added.tok = calloc(n + 1, sizeof *t->norm_added.tok);
    if (!t->raw_added.tok || !t->norm_added.tok)
        return ss_fail(SS_ENOMEM, "%s: out of memory for added tokens", t->label);
    for (size_t i = 0; i < n; i++) {
        if (ad[i].len == 0)
            continue; /* never matches, as in the reference */
        ss_added_set *s = ad[i].normalized ? &t->norm_added : &t->raw_added;
        ss_added_token *a = &s->tok[s->n++];
        *a = (ss_added_token){.id = ad[i].id, .off = ad[i].off, .len = ad[i].len,
                              .lstrip = (uint8_t)ad[i].lstrip, .rstrip = (uint8_t)ad[i].rstrip};
        if (ad[i].normalized && t->nfc) { /* matched against NFC text: match its NFC */
            uint8_t *nfc;
            size_t nn;
            SS_TRY(ss_uc_nfc((const uint8_t *)t->arena + a->off, a->len, &nfc, &nn));
            ss_status st = arena_add(t, nfc, nn, &a->off);
            a->len = (uint32_t)nn;
            free(nfc);
            SS_TRY(st);
        }
    }
    SS_TRY(sort_added(t, &t->raw_added));
    return sort_added(t, &t->norm_added);
}

// --- normalizer, pre-tokenizer, post-processor, decoder --------------------------------------------

/* A Sequence component: fn on each element of o[key], named where.key[i]. */
typedef ss_status (*element_fn)(ss_tokenizer *t, json_t *e, const char *where, void *ctx);

static ss_status read_each(ss_tokenizer *t, json_t *o, const char *where, const char *key, element_fn fn,
                           void *ctx) {
    json_t *arr = NULL;
    SS_TRY(get_array(t, o, where, key, &arr));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char w[96];
        snprintf(w, sizeof w, "%s.%s[%zu]", where, key, i);
        SS_TRY(fn(t, json_array_get(arr, i), w, ctx));
    }
    return SS_OK;
}

static ss_status read_normalizer(ss_tokenizer *t, json_t *n, const char *where, void *ctx) {
    if (!n || json_is_null(n))
        return SS_OK;
    const char *type = "";
    SS_TRY(get_type(t, n, where, &type));
    if (strcmp(type, "NFC") == 0) {
        t->nfc = 1;
        return SS_OK;
    }
    if (strcmp(type, "Sequence") != 0)
        return bad_st(t, SS_EUNSUPPORTED, "%s: type '%.32s' is not supported (NFC or a Sequence of NFC)", where, type);
    return read_each(t, n, where, "normalizers", read_normalizer, ctx);
}

static ss_status read_split(ss_tokenizer *t, json_t *s, const char *where) {
    json_t *pat = json_object_get(s, "pattern"), *re = json_is_object(pat) ? json_object_get(pat, "Regex") : NULL;
    json_t *behavior = json_object_get(s, "behavior");
    int invert = 0;
    if (!json_is_string(re))
        return bad_st(t, SS_EUNSUPPORTED, "%s.pattern: only {\"Regex\": ...} is supported", where);
    ss_pretok_style style = ss_pretok_style_of(json_string_value(re), json_string_length(re));
    if (style == SS_PRETOK_NONE)
        return bad_st(t, SS_EUNSUPPORTED, "%s.pattern: regex '%.80s' is not one of the supported ones "
                                          "(Llama 3, Qwen2, GPT-2)", where, json_string_value(re));
    if (!json_is_string(behavior) || strcmp(json_string_value(behavior), "Isolated") != 0)
        return bad_st(t, SS_EUNSUPPORTED, "%s.behavior: only \"Isolated\" is supported", where);
    SS_TRY(get_bool(t, s, where, "invert", 0, &invert));
    if (invert)
        return bad_st(t, SS_EUNSUPPORTED, "%s.invert: only false is supported", where);
    if (t->n_split == SS_TOK_MAX_SPLITS)
        return bad_st(t, SS_EUNSUPPORTED, "%s: more than %d Split steps", where, SS_TOK_MAX_SPLITS);
    t->split[t->n_split++] = style;
    return SS_OK;
}

/* One step of the pre-tokenizer; *seen_bl counts ByteLevel steps (one, last). */
static ss_status read_pretok_step(ss_tokenizer *t, json_t *p, const char *where, void *ctx) {
    int *seen_bl = ctx;
    const char *type = "";
    SS_TRY(get_type(t, p, where, &type));
    if (*seen_bl)
        return bad_st(t, SS_EUNSUPPORTED, "%s: nothing may follow the ByteLevel pre-tokenizer", where);
    if (strcmp(type, "Split") == 0)
        return read_split(t, p, where);
    if (strcmp(type, "ByteLevel") == 0) {
        *seen_bl = 1;
        SS_TRY(get_bool(t, p, where, "add_prefix_space", 1, &t->prefix_space));
        return get_bool(t, p, where, "use_regex", 1, &t->bl_regex);
    }
    return bad_st(t, SS_EUNSUPPORTED, "%s: type '%.32s' is not supported (Split, ByteLevel)", where, type);
}

static ss_status read_pretokenizer(ss_tokenizer *t, json_t *p) {
    const char *type = "";
    int seen_bl = 0;
    if (!p || json_is_null(p))
        return bad_st(t, SS_EUNSUPPORTED, "pre_tokenizer: none; a byte-level BPE needs a ByteLevel pre-tokenizer");
    SS_TRY(get_type(t, p, "pre_tokenizer", &type));
    if (strcmp(type, "Sequence") == 0)
        SS_TRY(read_each(t, p, "pre_tokenizer", "pretokenizers", read_pretok_step, &seen_bl));
    else
        SS_TRY(read_pretok_step(t, p, "pre_tokenizer", &seen_bl));
    if (!seen_bl)
        return bad_st(t, SS_EUNSUPPORTED, "pre_tokenizer: no ByteLevel step; only byte-level BPE is supported");
    return SS_OK;
}

/* The ids of one special token of a template, appended to the prefix (before
 * $A) or the suffix. */
static ss_status template_special(ss_tokenizer *t, json_t *specials, const char *name, int after) {
    json_t *st = json_object_get(specials, name), *ids = json_is_object(st) ? json_object_get(st, "ids") : NULL;
    if (!json_is_array(ids))
        return bad(t, "post_processor.special_tokens['%.64s']: missing or without an \"ids\" array", name);
    for (size_t i = 0; i < json_array_size(ids); i++) {
        json_t *v = json_array_get(ids, i);
        int *n = after ? &t->n_suffix : &t->n_prefix;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= t->n_ids ||
            !t->tok[json_integer_value(v)].flags)
            return bad(t, "post_processor.special_tokens['%.64s'].ids[%zu]: not a token id", name, i);
        if (*n == SS_TOK_MAX_TEMPLATE)
            return bad_st(t, SS_EUNSUPPORTED, "post_processor: more than %d special tokens on one side",
                          SS_TOK_MAX_TEMPLATE);
        (after ? t->suffix : t->prefix)[(*n)++] = (int32_t)json_integer_value(v);
    }
    return SS_OK;
}

static ss_status read_template(ss_tokenizer *t, json_t *p) {
    json_t *single = NULL, *specials = json_object_get(p, "special_tokens");
    SS_TRY(get_array(t, p, "post_processor", "single", &single));
    int seen_a = 0;
    for (size_t i = 0; i < json_array_size(single); i++) {
        json_t *item = json_array_get(single, i);
        json_t *sp = json_object_get(item, "SpecialToken"), *seq = json_object_get(item, "Sequence");
        json_t *id = json_object_get(sp ? sp : seq, "id");
        if (!json_is_string(id))
            return bad(t, "post_processor.single[%zu]: expected {\"SpecialToken\": {\"id\": ...}} or "
                          "{\"Sequence\": {\"id\": \"A\"}}", i);
        if (seq && (strcmp(json_string_value(id), "A") != 0 || seen_a++))
            return bad(t, "post_processor.single[%zu]: the single template holds sequence A once", i);
        if (sp)
            SS_TRY(template_special(t, specials, json_string_value(id), seen_a));
    }
    if (!seen_a)
        return bad(t, "post_processor.single: no sequence A");
    return SS_OK;
}

static ss_status read_postprocessor(ss_tokenizer *t, json_t *p, const char *where, void *ctx) {
    if (!p || json_is_null(p))
        return SS_OK;
    const char *type = "";
    SS_TRY(get_type(t, p, where, &type));
    if (strcmp(type, "ByteLevel") == 0)
        return SS_OK; /* offsets only */
    if (strcmp(type, "TemplateProcessing") == 0)
        return read_template(t, p);
    if (strcmp(type, "Sequence") != 0)
        return bad_st(t, SS_EUNSUPPORTED, "%s: type '%.32s' is not supported (ByteLevel, TemplateProcessing)",
                      where, type);
    return read_each(t, p, where, "processors", read_postprocessor, ctx);
}

static ss_status read_decoder(ss_tokenizer *t, json_t *d) {
    const char *type = "";
    if (!d || json_is_null(d))
        return bad_st(t, SS_EUNSUPPORTED, "decoder: none; a byte-level BPE needs the ByteLevel decoder");
    SS_TRY(get_type(t, d, "decoder", &type));
    json_t *arr = json_object_get(d, "decoders");
    if (strcmp(type, "Sequence") == 0 && json_is_array(arr) && json_array_size(arr) == 1)
        SS_TRY(get_type(t, json_array_get(arr, 0), "decoder.decoders[0]", &type));
    if (strcmp(type, "ByteLevel") != 0)
        return bad_st(t, SS_EUNSUPPORTED, "decoder: type '%.32s' is not supported (only ByteLevel)", type);
    return SS_OK;
}

// --- entry points ----------------------------------------------------------------------------------

static ss_status parse_root(ss_tokenizer *t, json_t *root) {
    json_t *model = json_object_get(root, "model"), *merges = NULL;
    vocab_list vl = {0};
    added_def *ad = NULL;
    size_t n_added = 0;
    ss_status st;
    if (!json_is_object(model)) {
        st = bad(t, "model: expected an object, found %s", model ? ss_json_type_word(model) : "nothing");
        goto fail;
    }
    if ((st = read_model_options(t, model)) != SS_OK || (st = read_vocab(t, json_object_get(model, "vocab"), &vl)) ||
        (st = read_added(t, root, &ad, &n_added)) || (st = build_ids(t, &vl, ad, n_added)) ||
        (st = build_maps(t, &vl, ad, n_added)) || (st = read_unk(t, model)) ||
        (st = get_array(t, model, "model", "merges", &merges)) || (st = read_merges(t, merges)))
        goto fail;
    fill_bytelevel(t);
    if ((st = read_normalizer(t, json_object_get(root, "normalizer"), "normalizer", NULL)) ||
        (st = read_pretokenizer(t, json_object_get(root, "pre_tokenizer"))) ||
        (st = read_postprocessor(t, json_object_get(root, "post_processor"), "post_processor", NULL)) ||
        (st = read_decoder(t, json_object_get(root, "decoder"))) || (st = build_added_sets(t, ad, n_added)) ||
        (st = fill_decoded(t)))
        goto fail;
fail:
    free(vl.off);
    free(vl.len);
    free(vl.id);
    free(ad);
    return st;
}

ss_status ss_tokenizer_parse(const char *json, size_t len, const char *label, ss_tokenizer **out) {
    *out = NULL;
    ss_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return ss_fail(SS_ENOMEM, "%s: out of memory", label);
    snprintf(t->label, sizeof t->label, "%s", label);
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    ss_status st;
    if (!root)
        st = bad(t, "not valid JSON: %s (line %d, column %d)", err.text, err.line, err.column);
    else if (!json_is_object(root))
        st = bad(t, "expected a JSON object at the top, found %s", ss_json_type_word(root));
    else
        st = parse_root(t, root);
    json_decref(root);
    if (st != SS_OK) {
        ss_tokenizer_destroy(t);
        return st;
    }
    *out = t;
    return SS_OK;
}

ss_status ss_tokenizer_load(const char *path, ss_tokenizer **out) {
    char *buf;
    size_t len;
    *out = NULL;
    SS_TRY(ss_read_file(path, TOKENIZER_MAX_BYTES, &buf, &len));
    ss_status st = ss_tokenizer_parse(buf, len, path, out);
    free(buf);
    return st;
}

void ss_tokenizer_destroy(ss_tokenizer *t) {
    if (!t)
        return;
    ss_strmap_free(&t->vocab);
    ss_strmap_free(&t->by_text);
    ss_pairmap_free(&t->merges);
    free(t->raw_added.tok);
    free(t->norm_added.tok);
    free(t->tok);
    free(t->arena);
    free(t);
}
