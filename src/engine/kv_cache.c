/* The paged KV cache: a pool of blocks of SS_KV_BLOCK token slots and per
 * sequence block tables (layout in slidesparse/engine.h), BF16 or FP8 with a
 * scale per (token, kv head) row. Blocks are handed out from a free-list
 * stack, so any block can serve any sequence. */
#include "engine/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype_inline.h"
#include "core/error.h"
#include "engine/model.h"
#include "engine/cuda/engine_gpu.h"

// --- KV dtypes, the FP8 row quantization --------------------------------------------------

ss_status ss_kv_dtype_parse(const char *s, ss_kv_dtype *out) {
    if (s && !strcmp(s, "bf16")) {
        *out = SS_KV_DTYPE_BF16;
        return SS_OK;
    }
    if (s && !strcmp(s, "fp8")) {
        *out = SS_KV_DTYPE_FP8;
        return SS_OK;
    }
    return ss_fail(SS_EINVAL, "kv dtype '%s', expected bf16 or fp8", s ? s : "(null)");
}

const char *ss_kv_dtype_name(ss_kv_dtype d) { return d == SS_KV_DTYPE_FP8 ? "fp8" : "bf16"; }

size_t ss_kv_row_bytes(ss_kv_dtype d, int head_dim) {
    return d == SS_KV_DTYPE_FP8 ? (size_t)head_dim + sizeof(float) : 2 * (size_t)head_dim;
}

void ss_model_set_kv_dtype(ss_model *m, ss_kv_dtype d) { m->kv_dtype = d; }
ss_kv_dtype ss_model_get_kv_dtype(const ss_model *m) { return m->kv_dtype; }
ss_kv_dtype ss_kv_cache_dtype(const ss_kv_cache *c) { return c->dtype; }

/* The arithmetic of engine.h, as quant.cu's FP8 activation rows: each float
 * operation rounds once (-ffp-contract=off), so the GPU's __fdiv_rn /
 * __fmul_rn twins store the same bits. */
void ss_kv_quant_row(const uint16_t *x, int n, uint8_t *q, float *scale) {
    float a = 0.0f;
    for (int i = 0; i < n; i++) {
        float v = fabsf(ss_bf16_to_f32_inline(x[i]));
        a = v > a ? v : a;
    }
    a = a > 1e-12f ? a : 1e-12f;
    float inv = 448.0f / a;
    for (int i = 0; i < n; i++) {
        float t = ss_bf16_to_f32_inline(x[i]) * inv;
        t = t < -448.0f ? -448.0f : t > 448.0f ? 448.0f : t;
        q[i] = ss_f32_to_e4m3_inline(t);
    }
    *scale = a / 448.0f;
}

void ss_kv_dequant_row(const uint8_t *q, int n, float scale, uint16_t *y) {
    for (int i = 0; i < n; i++)
        y[i] = ss_f32_to_bf16_inline(ss_e4m3_to_f32_inline(q[i]) * scale);
}

// --- the pool -----------------------------------------------------------------------------

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
    c->dtype = m->kv_dtype;
    const int fp8 = c->dtype == SS_KV_DTYPE_FP8;
    size_t rows = (size_t)c->n_layers * (size_t)n_blocks * SS_KV_BLOCK * (size_t)c->n_kv_heads;
    size_t elems = rows * (size_t)c->head_dim;
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
        c->k = calloc(elems, ss_kv_elem_size(c));
        c->v = calloc(elems, ss_kv_elem_size(c));
        if (fp8) {
            c->ks = calloc(rows, sizeof *c->ks);
            c->vs = calloc(rows, sizeof *c->vs);
        }
    }
    c->free_list = malloc((size_t)n_blocks * sizeof *c->free_list);
    if (!c->k || !c->v || (fp8 && (!c->ks || !c->vs)) || !c->free_list) {
        ss_kv_cache_destroy(c);
        return ss_fail(SS_ENOMEM, "kv cache: cannot allocate %d blocks (%zu bytes, %s)", (int)n_blocks,
                       2 * rows * ss_kv_row_bytes(c->dtype, c->head_dim), ss_kv_dtype_name(c->dtype));
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
        free(c->ks);
        free(c->vs);
    }
    free(c->free_list);
    free(c);
}

ss_status ss_kv_cache_read_slot(const ss_kv_cache *c, int layer, int32_t block, int slot, void *k,
                                void *v, float *k_scale, float *v_scale) {
    if (layer < 0 || layer >= c->n_layers || block < 0 || block >= c->n_blocks || slot < 0 ||
        slot >= SS_KV_BLOCK)
        return ss_fail(SS_EINVAL, "kv cache: slot (layer %d, block %d, slot %d) outside %d layers x %d blocks x %d",
                       layer, (int)block, slot, c->n_layers, (int)c->n_blocks, SS_KV_BLOCK);
    size_t es = ss_kv_elem_size(c), width = (size_t)c->n_kv_heads * (size_t)c->head_dim * es;
    size_t off = ss_kv_offset(c, layer, block, slot) * es, soff = ss_kv_scale_offset(c, layer, block, slot);
    size_t sbytes = (size_t)c->n_kv_heads * sizeof(float);
    const int fp8 = c->dtype == SS_KV_DTYPE_FP8;
#ifdef SS_HAVE_CUDA
    if (c->on_device) {
        SS_TRY(ss_engine_gpu_to_host(k, (const uint8_t *)c->k + off, width));
        SS_TRY(ss_engine_gpu_to_host(v, (const uint8_t *)c->v + off, width));
        if (fp8 && k_scale)
            SS_TRY(ss_engine_gpu_to_host(k_scale, c->ks + soff, sbytes));
        if (fp8 && v_scale)
            SS_TRY(ss_engine_gpu_to_host(v_scale, c->vs + soff, sbytes));
        return SS_OK;
    }
#endif
    memcpy(k, (const uint8_t *)c->k + off, width);
    memcpy(v, (const uint8_t *)c->v + off, width);
    if (fp8 && k_scale)
        memcpy(k_scale, c->ks + soff, sbytes);
    if (fp8 && v_scale)
        memcpy(v_scale, c->vs + soff, sbytes);
    return SS_OK;
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
        int32_t pos = tok[r].pos, blk = kv->blocks[pos / SS_KV_BLOCK];
        size_t off = ss_kv_offset(c, layer, blk, pos % SS_KV_BLOCK);
        const uint16_t *k = qkv + r * row + (int64_t)nh * hd; // (nkv, hd), then v
        if (c->dtype == SS_KV_DTYPE_BF16) {
            memcpy((uint16_t *)c->k + off, k, width * sizeof *k);
            memcpy((uint16_t *)c->v + off, k + width, width * sizeof *k);
            continue;
        }
        size_t soff = ss_kv_scale_offset(c, layer, blk, pos % SS_KV_BLOCK);
        for (int h = 0; h < nkv; h++) {
            ss_kv_quant_row(k + (size_t)h * hd, hd, (uint8_t *)c->k + off + (size_t)h * hd, c->ks + soff + h);
            ss_kv_quant_row(k + width + (size_t)h * hd, hd, (uint8_t *)c->v + off + (size_t)h * hd,
                            c->vs + soff + h);
        }
    }
}
