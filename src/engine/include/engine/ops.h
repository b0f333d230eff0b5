/* Internal: the small ops of the model graph, one file per concern (norm.c,
 * activation.c, rope.c, attention.c, kv_cache.c, sampler.c).
 *
 * Each op has a CPU implementation here (`*_cpu`, host pointers); the GPU
 * engine adds `*_cuda` twins with the same arguments (device pointers) and
 * forward.c picks the set through ss_engine_ops, so the graph is written once.
 * Activations are BF16 (uint16 bits); every op computes in float and rounds
 * its output to BF16 once.
 */
#ifndef SS_ENGINE_OPS_H
#define SS_ENGINE_OPS_H

#include "slidesparse/engine.h"

/* CPU ops open an OpenMP region only above this much work (elements touched):
 * a decode step of a small model is many tiny ops, and a parallel region costs
 * microseconds when idle cores wait for it and milliseconds when the cores are
 * shared (threads spinning at the barrier take the time the work needs). */
#define SS_ENGINE_PAR_MIN_WORK ((int64_t)1 << 16)

/* Per-token metadata of a flattened batch. */
typedef struct {
    int32_t seq;       /* index into the batch's sequences */
    int32_t pos;       /* absolute position in its sequence */
} ss_tok_info;

/* The pool behind ss_kv_cache (kv_cache.c). */
struct ss_kv_cache {
    int n_layers, n_kv_heads, head_dim;
    int32_t n_blocks;
    ss_kv_dtype dtype;
    void *k;            // (layers, n_blocks, SS_KV_BLOCK, kv_heads, head_dim) BF16 or E4M3
    void *v;            // same
    float *ks;          // (layers, n_blocks, SS_KV_BLOCK, kv_heads) FP8 only, else NULL
    float *vs;          // same
    int32_t *free_list; // (n_blocks) stack of free block ids
    int32_t n_free;
    int on_device;      /* k, v, ks, vs are device pointers (GPU model; cuda/engine_gpu.c) */
};

/* Element index of (layer, block, slot) in a pool buffer (k, v). */
static inline size_t ss_kv_offset(const ss_kv_cache *c, int layer, int32_t block, int slot) {
    size_t row = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    return (((size_t)layer * (size_t)c->n_blocks + (size_t)block) * SS_KV_BLOCK + (size_t)slot) * row;
}

/* Index of (layer, block, slot)'s first kv head in a scale buffer (ks, vs). */
static inline size_t ss_kv_scale_offset(const ss_kv_cache *c, int layer, int32_t block, int slot) {
    return (((size_t)layer * (size_t)c->n_blocks + (size_t)block) * SS_KV_BLOCK + (size_t)slot) *
           (size_t)c->n_kv_heads;
}

/* Bytes of one element of the pool's k / v. */
static inline size_t ss_kv_elem_size(const ss_kv_cache *c) {
    return c->dtype == SS_KV_DTYPE_FP8 ? 1 : 2;
}

typedef struct {
    /* y (t, n) = bf16(w * bf16(x * rsqrt(mean(x^2) + eps))); w (n) BF16. */
    void (*rmsnorm)(const uint16_t *x, const uint16_t *w, int64_t t, int64_t n, float eps,
                    uint16_t *y);
    /* Gated activation: gu (t, 2*i) = [gate | up]; y (t, i) = act(gate) * up.
     * relu2: relu(g)^2; silu: g / (1 + exp(-g)). */
    void (*glu)(const uint16_t *gu, int64_t t, int64_t i, int relu2, uint16_t *y);
    /* In place on qkv rows (t, (nh + 2*nkv) * hd): rotate q and k heads by
     * their token's position (HF rotate_half). inv_freq (hd/2). */
    void (*rope)(uint16_t *qkv, const ss_tok_info *tok, int64_t t, int nh, int nkv, int hd,
                 const float *inv_freq);
    /* Copies k and v of every token of qkv into the sequence's cache slots. */
    void (*kv_write)(ss_kv_cache *c, int layer, const uint16_t *qkv, const ss_tok_info *tok,
                     int64_t t, const ss_seq_step *seqs, int nh);
    /* out (t, nh*hd): causal GQA attention of each token over its sequence's
     * positions 0..pos. */
    void (*attention)(const ss_kv_cache *c, int layer, const uint16_t *qkv,
                      const ss_tok_info *tok, int64_t t, const ss_seq_step *seqs, int nh,
                      uint16_t *out);
    /* x (t, n) = bf16(x + d), float add. */
    void (*residual_add)(uint16_t *x, const uint16_t *d, int64_t t, int64_t n);
} ss_engine_ops;

void ss_rmsnorm_cpu(const uint16_t *x, const uint16_t *w, int64_t t, int64_t n, float eps,
                    uint16_t *y);
void ss_residual_add_cpu(uint16_t *x, const uint16_t *d, int64_t t, int64_t n);
void ss_glu_cpu(const uint16_t *gu, int64_t t, int64_t i, int relu2, uint16_t *y);
void ss_rope_inv_freq(double theta, int hd, float *inv_freq);
void ss_rope_cpu(uint16_t *qkv, const ss_tok_info *tok, int64_t t, int nh, int nkv, int hd,
                 const float *inv_freq);
void ss_kv_write_cpu(ss_kv_cache *c, int layer, const uint16_t *qkv, const ss_tok_info *tok,
                     int64_t t, const ss_seq_step *seqs, int nh);
void ss_attention_cpu(const ss_kv_cache *c, int layer, const uint16_t *qkv,
                      const ss_tok_info *tok, int64_t t, const ss_seq_step *seqs, int nh,
                      uint16_t *out);

extern const ss_engine_ops ss_engine_ops_cpu;

/* The GPU twins of these ops live in cuda/kernels.h (ss_rmsnorm_cuda, ...):
 * same arithmetic and rounding points, device pointers, and batch metadata
 * that is already on the device (block tables, attention tiles) instead of
 * host ss_seq_step; RoPE and the KV write are one kernel there. The graph on
 * the GPU is cuda/engine_gpu.c. */

#endif
