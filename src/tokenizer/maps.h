/* Internal: the two hash tables of a tokenizer, open addressing with linear
 * probing, sized once at load (no growth, no deletion).
 *   ss_strmap   byte string -> int32 (token text -> id); keys are (offset,
 *               length) in a buffer the map reaches through *base, so the
 *               buffer may move (realloc) while the map lives
 *   ss_pairmap  (left id, right id) -> (rank, merged id): the merges
 */
#ifndef SS_TOKENIZER_MAPS_H
#define SS_TOKENIZER_MAPS_H

#include <stddef.h>
#include <stdint.h>

#include "slidesparse/core.h"

typedef struct {
    uint32_t off, len;
    int32_t value; /* -1: empty slot */
} ss_strmap_slot;

typedef struct {
    ss_strmap_slot *slots; /* (cap) */
    size_t cap;            /* power of two, >= 2 x capacity asked */
    char *const *base;     /* the keys' buffer */
} ss_strmap;

/* Room for n keys that live in *base. */
ss_status ss_strmap_init(ss_strmap *m, size_t n, char *const *base);
void ss_strmap_free(ss_strmap *m);
/* Inserts or replaces the key (*base)[off .. off+len) with value >= 0; *old
 * gets the previous value or -1. SS_ENOMEM when the table is full (over 2x
 * the keys asked for). */
ss_status ss_strmap_put(ss_strmap *m, uint32_t off, uint32_t len, int32_t value, int32_t *old);
/* The value of key, or -1. */
int32_t ss_strmap_get(const ss_strmap *m, const char *key, size_t len);

typedef struct {
    uint64_t key; /* left << 32 | right; UINT64_MAX when empty */
    int32_t rank, merged;
} ss_pair_slot;

typedef struct {
    ss_pair_slot *slots;
    size_t cap;
    size_t used;
} ss_pairmap;

ss_status ss_pairmap_init(ss_pairmap *m, size_t n);
void ss_pairmap_free(ss_pairmap *m);
/* Inserts or replaces (a later merge of the same pair wins, as in the
 * reference implementation). */
ss_status ss_pairmap_put(ss_pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged);
/* The slot of (left, right), or NULL. */
const ss_pair_slot *ss_pairmap_get(const ss_pairmap *m, int32_t left, int32_t right);

#endif
