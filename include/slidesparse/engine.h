/* slidesparse/engine.h — the model graph (BitNet b1.58, Llama, Qwen2), paged
 * KV cache, batched forward, sampling (greedy, temperature / top-k / top-p)
 * and generation.
 *
 * A model is loaded from a checkpoint directory (BF16, INT8/FP8 quantized, or
 * SlideSparse slid); every projection becomes one ss_linear on the chosen
 * backend: q/k/v fused into one (rows concatenated), gate/up fused into one.
 * Per-tensor weight scales (BitNet) become per-channel scales of the fused
 * layer, which computes exactly the same numbers (dequant multiplies by sb[n]).
 * Embeddings and lm_head stay BF16 (lm_head: a BF16 ss_linear on the dense
 * backend of the same device, F32 output).
 *
 * Numerics (CPU now; the GPU engine rounds at the same points):
 *   activations between ops are BF16; RMSNorm, RoPE, softmax and attention
 *   accumulate in float; residual adds are float adds rounded to BF16.
 *   RMSNorm follows HF: y = bf16(w * bf16(x * rsqrt(mean(x^2) + eps))).
 *
 * KV cache: a pool of blocks of SS_KV_BLOCK tokens; layout of the pool
 *   k, v: (layers, n_blocks, SS_KV_BLOCK, kv_heads, head_dim) BF16, or E4M3
 *   k_scale, v_scale: (layers, n_blocks, SS_KV_BLOCK, kv_heads) F32 (E4M3 only)
 * Each sequence owns a block table (indices into the pool) that grows as
 * tokens are written; position p of a sequence lives in block
 * table[p / SS_KV_BLOCK], slot p % SS_KV_BLOCK. The scheduler and the GPU
 * engine use the same layout.
 *
 * FP8 KV (SS_KV_DTYPE_FP8, the model's setting when a cache is created): each
 * (token, kv head) row of head_dim keys or values is quantized on write with
 * its own F32 scale, as the per-token activation quantization (SPEC §4):
 *   a = max(max|x|, 1e-12f); inv = 448 / a; q = e4m3(clamp(x * inv, -448, 448))
 *   (round to nearest even, saturating); scale = a / 448
 * every op one IEEE round-to-nearest-even operation, so the CPU and the GPU
 * store the same bits. Attention reads x' = bf16(f32(q) * scale) and then
 * runs exactly as on a BF16 cache: an FP8 cache is a BF16 cache holding x'.
 * Per element |x' - x| <= |x| / 14 + a / 2^17: half an e4m3 step (2^-4
 * relative for normals, a * 2^-10 / 448 for subnormals) plus the BF16
 * rounding of x' (2^-8 relative) and the F32 roundings of inv and scale.
 * 1 byte per element plus 4 bytes per row instead of 2 bytes per element.
 */
#ifndef SLIDESPARSE_ENGINE_H
#define SLIDESPARSE_ENGINE_H

#include "slidesparse/core.h"
#include "slidesparse/io.h"
#include "slidesparse/linear.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SS_KV_BLOCK 16

// --- model -------------------------------------------------------------------------

typedef struct ss_model ss_model; /* opaque */

/* Loads DIR with every projection on backend b (lm_head on the dense backend
 * of the same device). Fails with one line for: unsupported architecture,
 * tensors missing or with shapes contradicting config.json, a SlideSparse
 * checkpoint on a dense backend, a BF16 checkpoint on cuSPARSELt, or a
 * backend that ctx cannot run. */
ss_status ss_model_load(ss_context *ctx, ss_backend b, const char *dir, ss_model **out);
void ss_model_destroy(ss_model *m);
/* The checkpoint-kind / backend rule ss_model_load applies, for callers that
 * validate before loading: SlideSparse checkpoints run on cusparselt or cpu,
 * dense ones (BF16, INT8, FP8) on cublaslt or cpu. `dir` names it in errors. */
ss_status ss_model_check_backend(const char *dir, const ss_model_config *c, ss_backend b);
const ss_model_config *ss_model_get_config(const ss_model *m);

/* Called after every decoder layer with the residual stream of the whole
 * batch, x (t, hidden) BF16 in host memory (tests compare it per layer). */
typedef void (*ss_layer_hook)(void *user, int layer, const uint16_t *x, int64_t t);
void ss_model_set_layer_hook(ss_model *m, ss_layer_hook fn, void *user);

// --- paged KV cache -----------------------------------------------------------------

typedef struct ss_kv_cache ss_kv_cache; /* opaque: the block pool */

typedef enum { SS_KV_DTYPE_BF16 = 0, SS_KV_DTYPE_FP8 = 1 } ss_kv_dtype;

/* "bf16" / "fp8" (SS_EINVAL naming both otherwise). */
ss_status ss_kv_dtype_parse(const char *s, ss_kv_dtype *out);
const char *ss_kv_dtype_name(ss_kv_dtype d);
/* Bytes one cache row (one token, one kv head, keys or values) takes:
 * 2 * head_dim for BF16, head_dim + 4 (the scale) for FP8. */
size_t ss_kv_row_bytes(ss_kv_dtype d, int head_dim);

/* The KV dtype of caches created for m from now on (default BF16; ss_generate
 * and ss_eval_perplexity create theirs from it too). */
void ss_model_set_kv_dtype(ss_model *m, ss_kv_dtype d);
ss_kv_dtype ss_model_get_kv_dtype(const ss_model *m);
ss_kv_dtype ss_kv_cache_dtype(const ss_kv_cache *c);

/* The FP8 KV row quantization above (the reference both engines follow):
 * x (n) BF16 -> q (n) E4M3, *scale. */
void ss_kv_quant_row(const uint16_t *x, int n, uint8_t *q, float *scale);
/* y (n) = bf16(f32(q) * scale), what attention reads. */
void ss_kv_dequant_row(const uint8_t *q, int n, float scale, uint16_t *y);

/* Copies slot `slot` of block `block` of layer `layer` to the host (from the
 * device for a GPU model): k, v (kv_heads * head_dim) elements of the cache
 * dtype (uint16 BF16 bits or E4M3 bytes); k_scale, v_scale (kv_heads) F32,
 * FP8 only (may be NULL). SS_EINVAL for indices out of range. */
ss_status ss_kv_cache_read_slot(const ss_kv_cache *c, int layer, int32_t block, int slot, void *k,
                                void *v, float *k_scale, float *v_scale);

typedef struct {
    int32_t *blocks;   /* (cap) block ids, the first n_blocks in use */
    int32_t n_blocks;
    int32_t cap;
    int64_t n_tokens;  /* positions 0..n_tokens-1 hold keys/values */
} ss_kv_seq;

/* n_blocks blocks for model m's layers / kv heads / head dim, in m's KV dtype. */
ss_status ss_kv_cache_create(const ss_model *m, int32_t n_blocks, ss_kv_cache **out);
void ss_kv_cache_destroy(ss_kv_cache *c);
int32_t ss_kv_cache_free_blocks(const ss_kv_cache *c);
int32_t ss_kv_cache_total_blocks(const ss_kv_cache *c);

/* An empty sequence (no blocks). */
void ss_kv_seq_init(ss_kv_seq *s);
/* Makes s hold blocks for positions 0..n_tokens-1 (allocating from the pool);
 * SS_ENOMEM with the counts when the pool is exhausted (s is unchanged). */
ss_status ss_kv_seq_reserve(ss_kv_cache *c, ss_kv_seq *s, int64_t n_tokens);
/* Returns s's blocks to the pool and frees its table. */
void ss_kv_seq_release(ss_kv_cache *c, ss_kv_seq *s);

// --- forward -------------------------------------------------------------------------

typedef struct {
    const int32_t *tokens; /* (n_tokens) new tokens */
    int64_t n_tokens;      /* >= 1 */
    int64_t start_pos;     /* position of tokens[0]; <= kv->n_tokens */
    ss_kv_seq *kv;         /* the sequence's cache (grown as needed) */
} ss_seq_step;

/* One forward over a batch of sequences (prefill chunks and decode steps
 * alike): writes the keys/values of positions start_pos..start_pos+n-1 of each
 * sequence, attends causally over 0..that position, and writes the logits of
 * the LAST new token of each sequence: logits (n_seqs, vocab) F32. Sequences do
 * not see each other. */
ss_status ss_model_forward(ss_model *m, ss_kv_cache *c, const ss_seq_step *seqs,
                           int n_seqs, float *logits);
/* ss_model_forward that also (or only) returns the greedy id of each sequence:
 * next (n_seqs). logits may be NULL: a GPU model then samples on the device and
 * copies back n_seqs ids instead of n_seqs x vocab floats (what a serving loop
 * wants every step). */
ss_status ss_model_forward_next(ss_model *m, ss_kv_cache *c, const ss_seq_step *seqs, int n_seqs,
                                float *logits, int32_t *next);

// --- sampling, generation -------------------------------------------------------------

/* argmax (lowest index on ties; NaN never wins). */
int32_t ss_sample_greedy(const float *logits, int64_t vocab);
/* FNV-1a 64 over the float bit patterns of logits (n). */
uint64_t ss_logits_hash(const float *logits, int64_t n);

/* Sampling settings. temperature 0 is greedy (and then top_k, top_p and
 * seed do not matter). Otherwise, as in Hugging Face's generate: logits /
 * temperature, keep the top_k largest (0: all), keep the smallest set of the
 * most likely whose probability reaches top_p (1: all), draw from what is
 * left with a generator seeded by seed. */
typedef struct {
    float temperature; /* >= 0 */
    int32_t top_k;     /* >= 0 */
    float top_p;       /* in (0, 1] */
    uint64_t seed;
} ss_sampling;

/* CPU reference sampler: the same logits, settings and seed give the same ids
 * on every machine and thread count (one generator per sampler, float logits
 * turned into double weights, sums in a fixed order). */
typedef struct ss_sampler ss_sampler; /* opaque */

/* SS_EINVAL with the setting for values outside the ranges above. */
ss_status ss_sampler_create(const ss_sampling *p, int64_t vocab, ss_sampler **out);
/* The next id for logits (vocab) F32 in host memory. NaN logits never win. */
int32_t ss_sampler_next(ss_sampler *s, const float *logits);
void ss_sampler_destroy(ss_sampler *s);

/* Called with each generated id but a stop id, in order; nonzero stops the
 * generation after that id. */
typedef int (*ss_token_fn)(void *user, int32_t id);

typedef struct {
    int64_t max_new;          /* >= 1 */
    ss_sampler *sampler;      /* NULL: greedy */
    const int32_t *stop_ids;  /* generation ends at one of these (it is the last id of out) */
    int n_stop_ids;
    ss_token_fn on_token;     /* may be NULL */
    void *user;
} ss_generate_opts;

/* Generation of one prompt: prefill, then up to max_new decode steps, over a
 * private KV cache. out (max_new) gets the ids, *n_out how many. last_logits
 * (vocab), may be NULL: the logits of the step that produced the last id (a
 * GPU model then copies logits back every step when the generation can stop
 * early, else only at the last step). Validates ids against the vocabulary
 * and the length against max_position_embeddings (SS_EINVAL, one line). A
 * sampler on a GPU model samples on the host from logits copied back each step. */
ss_status ss_generate(ss_model *m, const int32_t *prompt, int64_t n_prompt, const ss_generate_opts *o,
                      int32_t *out, int64_t *n_out, float *last_logits);

/* ss_generate, greedy, exactly max_new ids, no stop. */
ss_status ss_generate_greedy(ss_model *m, const int32_t *prompt, int64_t n_prompt,
                             int64_t max_new, int32_t *out, float *last_logits);

// --- perplexity ------------------------------------------------------------------------

/* Teacher-forced evaluation settings. Windows of `context` tokens start at
 * 0, stride, 2 x stride, ... until one reaches the end of the ids; each
 * window runs in a fresh sequence, and the tokens it scores are those no
 * earlier window scored (its first token never: it has no context). With
 * stride == context the windows do not overlap; a smaller stride gives every
 * scored token more context and costs more forwards. */
typedef struct {
    int64_t context; /* 2..max_position_embeddings; 0: min(max_position_embeddings, 512) */
    int64_t stride;  /* 1..context; 0: context */
} ss_eval_opts;

typedef struct {
    int64_t n_tokens;  /* tokens scored */
    int64_t n_windows;
    double nll_sum;    /* sum of -log p(token | the tokens before it in its window), nats */
    double mean_nll;   /* nll_sum / n_tokens */
    double perplexity; /* exp(mean_nll) */
} ss_eval_result;

/* The negative log-likelihood of each next token of ids (n >= 2, each in the
 * vocabulary) under m, windows as above. Each window goes through one
 * sequence's KV cache one token at a time (a one-token prefill, then decode
 * steps), and each step's F32 logits are scored with a log-softmax in double
 * precision (max subtracted). SS_EINVAL (one line) for bad settings or ids,
 * and for non-finite logits, naming the position. */
ss_status ss_eval_perplexity(ss_model *m, const int32_t *ids, int64_t n, const ss_eval_opts *o,
                             ss_eval_result *out);
/* -log softmax(logits)[target] in double precision (max subtracted); NaN when
 * a logit is not finite. */
double ss_eval_token_nll(const float *logits, int64_t vocab, int32_t target);

#ifdef __cplusplus
}
#endif
#endif
