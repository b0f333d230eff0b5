/* The paged KV cache: a pool of blocks of SS_KV_BLOCK token slots and per
 * sequence block tables (layout in slidesparse/engine.h). Blocks are handed
 * out from a free-list stack, so any block can serve any sequence. */
#include "engine/ops.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "engine/model.h"
#include "engine/cuda/engine_gpu.h"

ss_status ss_kv_cache_create(const ss_model *m, int32_t n_blocks, ss_kv_cache **out) {
    *out = NULL;
    const ss_model_config *cfg = ss_model_get_config(m);
    if (n_blocks <= 0)
        return ss_fail(SS_EINVAL, "kv cache: n_blocks %d, expected > 0", (int)n_blocks);
    ss_kv_cache *c = calloc(1, sizeof *c);
    if (!c)
        return ss_fail(SS_ENOMEM, "kv cache: out of memory");
    c->n_layers = cfg->num_hidden_layers;
    c->n_kv_heads = cfg->num_key_value_heads;
    c->head_dim = cfg->head_dim;
    c->n_blocks = n_blocks;
    size_t elems = (size_t)c->n_layers * (size_t)n_blocks * SS_KV_BLOCK * (size_t)c->n_kv_heads *
                   (size_t)c->head_dim;
#ifdef SS_HAVE_CUDA
    if (m->gpu) {
        /* A GPU model keeps its pool on the device; tables stay on the host. */
        ss_status s = ss_engine_gpu_kv_alloc(c, elems);
        if (s != SS_OK) {
            ss_kv_cache_destroy(c);
            return s;
        }
    }
#endif
    if (!c->on_device) {
        c->k = calloc(elems, sizeof *c->k);
        c->v = calloc(elems, sizeof *c->v);
    }
    c->free_list = malloc((size_t)n_blocks * sizeof *c->free_list);
    if (!c->k || !c->v || !c->free_list) {
        ss_kv_cache_destroy(c);
        return ss_fail(SS_ENOMEM, "kv cache: cannot allocate %d blocks (%zu bytes)", (int)n_blocks,
                       2 * elems * sizeof(uint16_t));
    }
    /* Stack order: block 0 is handed out first. */
    for (int32_t i = 0; i < n_blocks; i++)
        c->free_list[i] = n_blocks - 1 - i;
    c->n_free = n_blocks;
    *out = c;
    return SS_OK;
}

void ss_kv_cache_destroy(ss_kv_cache *c) {
    if (!c)
        return;
#ifdef SS_HAVE_CUDA
    if (c->on_device)
        ss_engine_gpu_kv_free(c);
#endif
    if (!c->on_device) {
        free(c->k);
        free(c->v);
    }
    free(c->free_list);
    free(c);
}

int32_t ss_kv_cache_free_blocks(const ss_kv_cache *c) { return c->n_free; }
int32_t ss_kv_cache_total_blocks(const ss_kv_cache *c) { return c->n_blocks; }

void ss_kv_seq_init(ss_kv_seq *s) { memset(s, 0, sizeof *s); }

ss_status ss_kv_seq_reserve(ss_kv_cache *c, ss_kv_seq *s, int64_t n_tokens) {
    int64_t need = (n_tokens + SS_KV_BLOCK - 1) / SS_KV_BLOCK;
    if (need <= s->n_blocks)
        return SS_OK;
    if (need - s->n_blocks > c->n_free)
        return ss_fail(SS_ENOMEM, "kv cache: %lld tokens need %lld more blocks, %d of %d free",
                       (long long)n_tokens, (long long)(need - s->n_blocks), (int)c->n_free,
                       (int)c->n_blocks);
    if (need > s->cap) {
        int32_t cap = s->cap ? s->cap : 4;
        while (cap < need)
            cap *= 2;
        int32_t *b = realloc(s->blocks, (size_t)cap * sizeof *b);
        if (!b)
            return ss_fail(SS_ENOMEM, "kv cache: block table of %d entries", (int)cap);
        s->blocks = b;
        s->cap = cap;
    }
    while (s->n_blocks < need)
        s->blocks[s->n_blocks++] = c->free_list[--c->n_free];
    return SS_OK;
}

void ss_kv_seq_release(ss_kv_cache *c, ss_kv_seq *s) {
    for (int32_t i = s->n_blocks - 1; i >= 0; i--)
        c->free_list[c->n_free++] = s->blocks[i];
    free(s->blocks);
    ss_kv_seq_init(s);
}

void ss_kv_write_cpu(ss_kv_cache *c, int layer, const uint16_t *qkv, const ss_tok_info *tok,
                     int64_t t, const ss_seq_step *seqs, int nh) {
    int nkv = c->n_kv_heads, hd = c->head_dim;
    int64_t row = (int64_t)(nh + 2 * nkv) * hd;
    size_t width = (size_t)nkv * (size_t)hd;
    for (int64_t r = 0; r < t; r++) {
        const ss_kv_seq *kv = seqs[tok[r].seq].kv;
        int32_t pos = tok[r].pos;
        size_t off = ss_kv_offset(c, layer, kv->blocks[pos / SS_KV_BLOCK], pos % SS_KV_BLOCK);
        const uint16_t *k = qkv + r * row + (int64_t)nh * hd; // (nkv, hd), then v
        memcpy(c->k + off, k, width * sizeof *k);
        memcpy(c->v + off, k + width, width * sizeof *k);
    }
}
