/* Byte-pair encoding of one pre-token, the way the `tokenizers` package does
 * it: every byte starts as its own symbol; the pair with the lowest merge
 * rank (leftmost on ties) is merged, its neighbours' new pairs are queued,
 * and so on until no adjacent pair has a merge. A min-heap of candidate
 * merges makes that O(n log n); an entry whose pair has changed since it was
 * queued is dropped when popped (the reference checks the same thing: that
 * the current pair still merges to the queued id). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer_internal.h"

typedef struct {
    int32_t rank, merged;
    int32_t pos; /* the left symbol */
} merge_cand;

typedef struct {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    int alive;
} symbol;

typedef struct {
    merge_cand *v;
    size_t n;
} heap;

static int cand_less(const merge_cand *a, const merge_cand *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(heap *h, merge_cand c) {
    size_t i = h->n++;
    while (i > 0 && cand_less(&c, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = c;
}

static merge_cand heap_pop(heap *h) {
    merge_cand top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && cand_less(&h->v[c + 1], &h->v[c]))
            c++;
        if (!cand_less(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

/* Queues the merge of symbol pos with its right neighbour, if there is one. */
static void queue_pair(const ss_tokenizer *t, heap *h, const symbol *s, int32_t pos) {
    if (pos < 0 || s[pos].next < 0)
        return;
    const ss_pair_slot *m = ss_pairmap_get(&t->merges, s[pos].id, s[s[pos].next].id);
    if (m)
        heap_push(h, (merge_cand){.rank = m->rank, .merged = m->merged, .pos = pos});
}

static void merge_all(const ss_tokenizer *t, symbol *s, int32_t n, heap *h) {
    for (int32_t i = 0; i + 1 < n; i++)
        queue_pair(t, h, s, i);
    while (h->n) {
        merge_cand c = heap_pop(h);
        symbol *l = &s[c.pos];
        if (!l->alive || l->next < 0)
            continue;
        symbol *r = &s[l->next];
        const ss_pair_slot *m = ss_pairmap_get(&t->merges, l->id, r->id);
        if (!m || m->merged != c.merged)
            continue; /* stale: the pair changed since it was queued */
        l->id = c.merged;
        r->alive = 0;
        l->next = r->next;
        if (r->next >= 0)
            s[r->next].prev = c.pos;
        queue_pair(t, h, s, l->prev);
        queue_pair(t, h, s, c.pos);
    }
}

/* The initial symbols: one per byte; a byte without a token becomes the
 * unknown token (consecutive ones fused when fuse_unk) or is dropped. */
static int32_t initial_symbols(const ss_tokenizer *t, const uint8_t *bytes, size_t len, int prefix_space,
                               symbol *s) {
    int32_t n = 0;
    for (size_t i = 0; i < len + (size_t)prefix_space; i++) {
        uint8_t b = prefix_space ? (i == 0 ? ' ' : bytes[i - 1]) : bytes[i];
        int32_t id = t->byte_id[b];
        if (id < 0) {
            if (t->unk_id < 0 || (t->fuse_unk && n > 0 && s[n - 1].id == t->unk_id))
                continue;
            id = t->unk_id;
        }
        s[n] = (symbol){.id = id, .prev = n - 1, .next = -1, .alive = 1};
        if (n > 0)
            s[n - 1].next = n;
        n++;
    }
    return n;
}

/* ignore_merges: a pre-token that is itself in the vocabulary is one token. */
static int32_t whole_word_id(const ss_tokenizer *t, const uint8_t *bytes, size_t len, int prefix_space,
                             char *buf) {
    size_t k = 0;
    for (size_t i = 0; i < len + (size_t)prefix_space; i++) {
        uint8_t b = prefix_space ? (i == 0 ? ' ' : bytes[i - 1]) : bytes[i];
        memcpy(buf + k, t->bl_utf8[b], t->bl_len[b]);
        k += t->bl_len[b];
    }
    return ss_strmap_get(&t->vocab, buf, k);
}

ss_status ss_bpe_encode(const ss_tokenizer *t, const uint8_t *bytes, size_t len, int prefix_space,
                        ss_idvec *out) {
    size_t n = len + (size_t)(prefix_space != 0);
    if (n == 0)
        return SS_OK;
    if (n > INT32_MAX / 2)
        return ss_fail(SS_EINVAL, "tokenizer: a pre-token of %zu bytes is too long", n);
    prefix_space = prefix_space != 0;
    symbol *s = malloc(n * sizeof *s);
    heap h = {.v = malloc(2 * n * sizeof *h.v), .n = 0};
    char *word = t->ignore_merges ? malloc(2 * n) : NULL;
    ss_status st = SS_OK;
    if (!s || !h.v || (t->ignore_merges && !word)) {
        st = ss_fail(SS_ENOMEM, "tokenizer: out of memory encoding a pre-token of %zu bytes", n);
        goto fail;
    }
    int32_t whole = word ? whole_word_id(t, bytes, len, prefix_space, word) : -1;
    if (whole >= 0) {
        st = ss_idvec_push(out, whole);
        goto fail;
    }
    int32_t m = initial_symbols(t, bytes, len, prefix_space, s);
    merge_all(t, s, m, &h);
    for (int32_t i = 0; i < m && st == SS_OK; i++)
        if (s[i].alive)
            st = ss_idvec_push(out, s[i].id);
fail:
    free(s);
    free(h.v);
    free(word);
    return st;
}
