/* Causal attention with GQA over the paged KV cache (CPU). Scores, softmax and
 * the weighted sum of values accumulate in float; the output is rounded once.
 * Query head h reads kv head h / (nh / nkv); an FP8 cache's rows are read as
 * their BF16 dequantization (engine.h). Two passes over the keys (max,
 * then exp-sum and values) so no per-thread score buffer is needed. */
#include "engine/ops.h"

#include <math.h>

#include "core/dtype_inline.h"

/* Row j of kv head kvh in pool (k or v) as BF16: the pool itself for a BF16
 * cache; for FP8 the row dequantized into buf (hd), exactly what the GPU
 * kernels stage (engine.h: x' = bf16(f32(q) * scale)). */
static const uint16_t *kv_row(const ss_kv_cache *c, const void *pool, const float *scales, int layer,
                              const ss_kv_seq *kv, int64_t j, int kvh, uint16_t *buf) {
    int32_t blk = kv->blocks[j / SS_KV_BLOCK];
    int slot = (int)(j % SS_KV_BLOCK);
    size_t off = ss_kv_offset(c, layer, blk, slot) + (size_t)kvh * (size_t)c->head_dim;
    if (c->dtype == SS_KV_DTYPE_BF16)
        return (const uint16_t *)pool + off;
    ss_kv_dequant_row((const uint8_t *)pool + off, c->head_dim,
                      scales[ss_kv_scale_offset(c, layer, blk, slot) + (size_t)kvh], buf);
    return buf;
}

static float dot_bf16(const uint16_t *a, const uint16_t *b, int n) {
    float s = 0.0f;
    for (int d = 0; d < n; d++)
        s += ss_bf16_to_f32_inline(a[d]) * ss_bf16_to_f32_inline(b[d]);
    return s;
}

void ss_attention_cpu(const ss_kv_cache *c, int layer, const uint16_t *qkv,
                      const ss_tok_info *tok, int64_t t, const ss_seq_step *seqs, int nh,
                      uint16_t *out) {
    int nkv = c->n_kv_heads, hd = c->head_dim, group = nh / nkv;
    int64_t row = (int64_t)(nh + 2 * nkv) * hd;
    float scale = 1.0f / sqrtf((float)hd);
    int64_t work = 0; /* (query, key) pairs x head_dim x heads */
    for (int64_t r = 0; r < t; r++)
        work += (int64_t)tok[r].pos + 1;
    work *= (int64_t)nh * hd;
#pragma omp parallel for collapse(2) schedule(static) if (work >= SS_ENGINE_PAR_MIN_WORK)
    for (int64_t r = 0; r < t; r++) {
        for (int h = 0; h < nh; h++) {
            const ss_kv_seq *kv = seqs[tok[r].seq].kv;
            const uint16_t *q = qkv + r * row + (int64_t)h * hd; // (hd)
            int kvh = h / group;
            int64_t n = (int64_t)tok[r].pos + 1;
            uint16_t kb[512], vb[512]; /* FP8 rows dequantized; hd <= 512 is checked at load */
            float mx = -INFINITY;
            for (int64_t j = 0; j < n; j++) {
                float s = dot_bf16(q, kv_row(c, c->k, c->ks, layer, kv, j, kvh, kb), hd) * scale;
                mx = s > mx ? s : mx;
            }
            float acc[512] = {0}; /* hd <= 512 is checked at load */
            float sum = 0.0f;
            for (int64_t j = 0; j < n; j++) {
                float p = expf(dot_bf16(q, kv_row(c, c->k, c->ks, layer, kv, j, kvh, kb), hd) * scale - mx);
                const uint16_t *v = kv_row(c, c->v, c->vs, layer, kv, j, kvh, vb);
                sum += p;
                for (int d = 0; d < hd; d++)
                    acc[d] += p * ss_bf16_to_f32_inline(v[d]);
            }
            uint16_t *o = out + r * (int64_t)nh * hd + (int64_t)h * hd; // (hd)
            for (int d = 0; d < hd; d++)
                o[d] = ss_f32_to_bf16_inline(acc[d] / sum);
        }
    }
}
