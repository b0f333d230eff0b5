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

/* Switches, read once by ss_engine_gpu_init from the environment:
 *   SS_CUDA_GRAPHS     (default on; =0 turns it off) pure decode batches (every sequence 1 new token, at
 *                      most 512) replay a CUDA graph captured per batch-size
 *                      bucket (1, 2, 4, ..., 512); the batch is padded to the
 *                      bucket with dummy rows that write only a free KV block
 *                      and whose outputs are dropped. Off while a layer hook
 *                      is set or while profiling.
 *   SS_ATTN_DECODE=1|2|3 the decode attention kernel (default 3 on cc >= 9.0,
 *                      read by the attention launcher). */
void ss_engine_gpu_set_graphs(ss_model *m, int on);
/* Decode graphs captured and replayed so far (tests, benchmarks). */
void ss_engine_gpu_graph_counts(const ss_model *m, int64_t *captures, int64_t *replays);
/* 1 when the model's kernels run as programmatic dependent launches
 * (decided at load: SS_PDL, cc >= 9.0; then for forwards of at most
 * SS_PDL_MAX_ROWS tokens); 0 otherwise and without CUDA. */
int ss_engine_gpu_pdl(const ss_model *m);

/* Stages of the per-stage profile (src/serve --profile on a GPU model). */
typedef enum {
    SS_GPU_STAGE_QUANT = 0,  /* activation quant (+ lift) of every projection */
    SS_GPU_STAGE_GEMM,
    SS_GPU_STAGE_DEQUANT,    /* dequant (+ bias), with the GLU (gate_up) and the
                                residual adds (o, down) fused in */
    SS_GPU_STAGE_ATTENTION,
    SS_GPU_STAGE_NORMS,      /* embedding, RoPE + KV write (the RMSNorms run inside the
                                quant stage, GLU / residual adds inside dequant) */
    SS_GPU_STAGE_LM_HEAD,    /* final norm + lm_head (all three stages) */
    SS_GPU_STAGE_SAMPLING,   /* on-device argmax */
    SS_GPU_STAGE_COUNT
} ss_gpu_stage;

/* on = 1: every forward records cudaEvents between stages (the linears run
 * as quant -> GEMM -> dequant through the stage API, same results) and
 * ss_engine_gpu_stage_times returns the last forward's split; 0: no events. */
ss_status ss_engine_gpu_set_profile(ss_model *m, int on);
/* Seconds per stage of the last forward (zeros when profiling is off). */
void ss_engine_gpu_stage_times(const ss_model *m, double secs[SS_GPU_STAGE_COUNT]);

/* The KV pool on the device (zeroed): k, v of elems elements of c->dtype,
 * and for FP8 the scales ks, vs (elems / head_dim); c->on_device set. */
ss_status ss_engine_gpu_kv_alloc(ss_kv_cache *c, size_t elems);
void ss_engine_gpu_kv_free(ss_kv_cache *c);
/* Synchronous device -> host copy of bytes (tests reading the cache). */
ss_status ss_engine_gpu_to_host(void *dst, const void *src, size_t bytes);

#endif
