/* Fixed-size open-addressing hash tables (maps.h). */
#include "maps.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Table size for n keys: a power of two at least 2n, so probes stay short
 * and the table is never full. */
static size_t table_cap(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    return cap;
}

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t mix64(uint64_t x) { /* splitmix64's finalizer */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// --- ss_strmap -----------------------------------------------------------------------

ss_status ss_strmap_init(ss_strmap *m, size_t n, char *const *base) {
    m->cap = table_cap(n);
    m->base = base;
    m->slots = malloc(m->cap * sizeof *m->slots);
    if (!m->slots)
        return ss_fail(SS_ENOMEM, "tokenizer: out of memory for a table of %zu tokens", n);
    for (size_t i = 0; i < m->cap; i++)
        m->slots[i].value = -1;
    return SS_OK;
}

void ss_strmap_free(ss_strmap *m) {
    free(m->slots);
    m->slots = NULL;
}

/* The slot holding key, or the empty slot where it would go; NULL when the
 * table is full. */
static ss_strmap_slot *strmap_find(const ss_strmap *m, const char *key, size_t len) {
    size_t mask = m->cap - 1;
    for (size_t i = hash_bytes(key, len) & mask, probes = 0; probes < m->cap; i = (i + 1) & mask, probes++) {
        ss_strmap_slot *s = &m->slots[i];
        if (s->value < 0 || (s->len == len && memcmp(*m->base + s->off, key, len) == 0))
            return s;
    }
    return NULL;
}

ss_status ss_strmap_put(ss_strmap *m, uint32_t off, uint32_t len, int32_t value, int32_t *old) {
    ss_strmap_slot *s = strmap_find(m, *m->base + off, len);
    if (!s)
        return ss_fail(SS_ENOMEM, "tokenizer: token table full");
    *old = s->value;
    s->off = off, s->len = len, s->value = value;
    return SS_OK;
}

int32_t ss_strmap_get(const ss_strmap *m, const char *key, size_t len) {
    const ss_strmap_slot *s = strmap_find(m, key, len);
    return s ? s->value : -1;
}

// --- ss_pairmap ------------------------------------------------------------------------

ss_status ss_pairmap_init(ss_pairmap *m, size_t n) {
    m->cap = table_cap(n);
    m->used = 0;
    m->slots = malloc(m->cap * sizeof *m->slots);
    if (!m->slots)
        return ss_fail(SS_ENOMEM, "tokenizer: out of memory for %zu merges", n);
    for (size_t i = 0; i < m->cap; i++)
        m->slots[i].key = UINT64_MAX;
    return SS_OK;
}

void ss_pairmap_free(ss_pairmap *m) {
    free(m->slots);
    m->slots = NULL;
}

static ss_pair_slot *pairmap_find(const ss_pairmap *m, uint64_t key) {
    size_t mask = m->cap - 1;
    for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) /* never full: used < cap / 2 */
        if (m->slots[i].key == key || m->slots[i].key == UINT64_MAX)
            return &m->slots[i];
}

ss_status ss_pairmap_put(ss_pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    ss_pair_slot *s = pairmap_find(m, key);
    if (s->key == UINT64_MAX) {
        if (2 * (m->used + 1) > m->cap)
            return ss_fail(SS_ENOMEM, "tokenizer: merge table full");
        m->used++;
    }
    s->key = key, s->rank = rank, s->merged = merged;
    return SS_OK;
}

const ss_pair_slot *ss_pairmap_get(const ss_pairmap *m, int32_t left, int32_t right) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    const ss_pair_slot *s = pairmap_find(m, key);
    return s->key == key ? s : NULL;
}
