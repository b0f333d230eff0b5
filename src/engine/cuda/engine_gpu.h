/* Internal: the GPU half of the engine (engine_gpu.c, CUDA builds only).
 *
 * A model loaded on a GPU backend keeps everything the forward touches on the
 * device: embeddings, norm weights, RoPE frequencies, the activations of a
 * batch (scratch sized for a maximum batched token count, grown only when a
 * larger batch arrives) and the KV cache pool. A forward uploads the batch
 * metadata (token ids, (seq, pos) per token, block tables, attention tiles) in
 * one copy from a pinned staging buffer, launches one kernel per op on the
 * context's stream, and synchronizes once, where logits or sampled ids are
 * read back. No declaration here needs CUDA headers, so model.c / forward.c
 * include it in every build and call it under SS_HAVE_CUDA.
 */
#ifndef SS_ENGINE_GPU_H
#define SS_ENGINE_GPU_H

#include "engine/model.h"

typedef struct ss_engine_gpu ss_engine_gpu; /* opaque */

/* Checks the GPU graph's limits (head_dim), uploads m's embeddings, norms and
 * inv_freq and allocates scratch; sets m->gpu. */
ss_status ss_engine_gpu_init(ss_model *m);
void ss_engine_gpu_destroy(ss_engine_gpu *g);

/* ss_model_forward on the device for t tokens (validated by the caller).
 * logits (n_seqs, vocab) host F32 or NULL; next (n_seqs) host greedy ids or
 * NULL (argmax on the device). */
ss_status ss_engine_gpu_forward(ss_model *m, ss_kv_cache *c, const ss_seq_step *seqs, int n_seqs,
                                int64_t t, float *logits, int32_t *next);

/* The KV pool on the device (zeroed); c->on_device set. */
ss_status ss_engine_gpu_kv_alloc(ss_kv_cache *c, size_t elems);
void ss_engine_gpu_kv_free(ss_kv_cache *c);

#endif
