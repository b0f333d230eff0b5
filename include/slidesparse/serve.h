/* slidesparse/serve.h — continuous batching (scheduler + serving loop) and the
 * prefill / decode throughput benchmarks (tasks 4-5, SPEC §8).
 *
 * Scheduler (vLLM style, chunked prefill): a FIFO waiting queue and a running
 * set in admission order. Each step builds one batch of at most
 * max_num_batched_tokens (T) tokens over at most max_num_seqs (S) sequences:
 *   1. every running sequence, oldest first: a decoding one gets its 1 token,
 *      one still prefilling (or recomputing) a chunk of what is left — the
 *      chunk leaves one token of budget for each decoding sequence behind it,
 *      so decode tokens are scheduled every step (T >= S is required);
 *   2. when nothing was preempted, waiting sequences are admitted (FIFO) while
 *      fewer than S run and budget is left; a prompt longer than the budget
 *      is chunked.
 * KV blocks come from the engine's paged pool: a sequence's blocks are
 * reserved before the forward for every position it will write. When the
 * pool is exhausted the NEWEST running sequence not yet in the batch is
 * preempted: its blocks are freed and it goes back to the front of the
 * waiting queue keeping its generated tokens, to be recomputed (prompt +
 * generated as one prefill) later. Greedy sampling on batch-invariant
 * numerics makes a recomputed sequence produce the same tokens. A request
 * whose prompt + output can never fit the pool (or max_position_embeddings)
 * is refused when added, so preemption always makes progress.
 *
 * The library never prints; the serving loop reports per-step timings through
 * a callback (host = scheduling + block tables + commit; forward; sampling).
 */
#ifndef SLIDESPARSE_SERVE_H
#define SLIDESPARSE_SERVE_H

#include <signal.h>

#include "slidesparse/core.h"
#include "slidesparse/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

// --- scheduler -----------------------------------------------------------------------

typedef struct {
    int max_num_seqs;               /* S >= 1 */
    int64_t max_num_batched_tokens; /* T >= S */
} ss_sched_config;

typedef struct {
    const int32_t *prompt; /* (n_prompt) token ids, copied by ss_scheduler_add */
    int64_t n_prompt;      /* >= 1 */
    int64_t max_new;       /* >= 1 tokens to generate */
} ss_request;

/* One step's batch; the arrays belong to the scheduler and stay valid until
 * the next ss_scheduler_schedule. */
typedef struct {
    ss_seq_step *steps;  // (n) the forward's input
    int64_t *ids;        // (n) request id of each entry
    int *sample;         // (n) 1: this entry's logits give its next token
    int n;
    int64_t n_tokens;    /* sum of steps[i].n_tokens (<= T) */
    int64_t n_decode;    /* entries scheduling one token of a decoding sequence */
    int preempted;       /* sequences preempted while building this batch */
} ss_sched_batch;

typedef struct ss_scheduler ss_scheduler; /* opaque */

/* kv: the pool (shared with nothing else while the scheduler runs); m gives
 * the vocabulary and max_position_embeddings for request checks. */
ss_status ss_scheduler_create(const ss_model *m, ss_kv_cache *kv, const ss_sched_config *c,
                              ss_scheduler **out);
/* Releases every sequence's blocks back to the pool. */
void ss_scheduler_destroy(ss_scheduler *s);
/* Queues r; *id (may be NULL) gets its id (0, 1, ... in order of adding).
 * SS_EINVAL for ids out of vocabulary or prompt + max_new beyond
 * max_position_embeddings; SS_ENOMEM when the request alone needs more KV
 * blocks than the pool holds. */
ss_status ss_scheduler_add(ss_scheduler *s, const ss_request *r, int64_t *id);
/* Builds the next batch (b->n == 0 only when nothing is left). */
ss_status ss_scheduler_schedule(ss_scheduler *s, ss_sched_batch *b);
/* After the forward of the last batch: tokens (b->n), one per entry (read
 * only where sample[i]); appends them, retires finished sequences (freeing
 * their blocks). */
ss_status ss_scheduler_commit(ss_scheduler *s, const int32_t *tokens);
/* Ends request id early, between a commit and the next schedule (a stop id
 * or string seen, a client gone): it leaves the waiting queue or the running
 * set, its KV blocks go back to the pool and its memory is freed (its output
 * is then NULL). On a request that finished (max_new reached) it frees the
 * memory only, so a long-running server calls it for every request it is
 * done with. SS_EINVAL for an unknown or cancelled id, or while a batch awaits
 * its commit. */
ss_status ss_scheduler_cancel(ss_scheduler *s, int64_t id);
/* 1 when no sequence waits or runs. */
int ss_scheduler_done(const ss_scheduler *s);
int ss_scheduler_n_running(const ss_scheduler *s);
int ss_scheduler_n_waiting(const ss_scheduler *s);
int64_t ss_scheduler_preemptions(const ss_scheduler *s);
ss_kv_cache *ss_scheduler_kv(const ss_scheduler *s);
/* Generated tokens of request id so far (*n of them; NULL for an unknown id);
 * *finished (may be NULL) is 1 once it has max_new. */
const int32_t *ss_scheduler_output(const ss_scheduler *s, int64_t id, int64_t *n, int *finished);

// --- serving loop ----------------------------------------------------------------------

/* Seconds per stage of a forward (profile). On the CPU engine they come from
 * a replay of the step's stages right after its forward (one more forward
 * per step; the cache is only read); on the GPU engine from cudaEvents
 * between the stages of the forward itself (the linears then run as three
 * stage calls; no layer hook is installed, so layers_s stays NULL). */
typedef struct {
    double quant_s;     /* activation quant (+ lift) of every projection */
    double gemm_s;
    double dequant_s;   /* dequant (+ bias) epilogues */
    double attention_s;
    double norms_s;     /* RMSNorms, RoPE, GLU, residual adds */
    double lm_head_s;   /* final norm + lm_head (all three stages) */
    double sampling_s;  /* on-device argmax (GPU engine; 0 on the CPU engine) */
} ss_stage_times;

typedef struct {
    int64_t step;
    int n_seqs;
    int64_t n_tokens, n_decode;
    int64_t kv_rows;   /* cache rows attention reads per layer and KV head:
                          the sum over sequences of their context through this step */
    double host_s;     /* schedule + commit (block tables, bookkeeping) */
    double forward_s;  /* ss_model_forward */
    double sample_s;   /* greedy sampling */
    /* With profile: the forward split at the engine's layer hook. layers_s[i]
     * = time from the previous layer's end (the forward's start for layer 0,
     * so it includes embedding + batch preparation); head_s = final norm +
     * lm_head (+ logits copy). */
    const double *layers_s; // (n_layers) or NULL
    int n_layers;
    double head_s;
    /* With profile on the CPU engine: the replayed stages (else NULL). */
    const ss_stage_times *stages;
} ss_step_timing;

typedef void (*ss_step_fn)(void *user, const ss_step_timing *t);

typedef struct {
    const volatile sig_atomic_t *stop; /* non-zero: stop before the next step (may be NULL) */
    int profile;                       /* per-layer times through the layer hook */
    ss_step_fn on_step;                /* may be NULL */
    void *user;
} ss_serve_opts;

typedef struct {
    int64_t steps, tokens;        /* forwards run, tokens through them (recompute included) */
    int64_t generated;            /* tokens sampled */
    int64_t kv_rows;              /* ss_step_timing.kv_rows summed over steps */
    double host_s, forward_s, sample_s;
    double elapsed_s;             /* wall time of the loop, the profile replay excluded */
    double replay_s;              /* profile replay (CPU engine) */
    double max_host_frac;         /* max over steps of host / (host + forward + sample) */
    double head_s, layers_s;      /* profile only */
    ss_stage_times stages;        /* profile only, CPU engine: sums over steps */
    int has_stages;
    int64_t preemptions;
    int stopped;                  /* 1: *stop was seen, the scheduler is not done */
} ss_serve_stats;

/* Runs steps until the scheduler is done (or *stop). The model's layer hook is
 * replaced while profiling and cleared afterwards. */
ss_status ss_serve_run(ss_model *m, ss_scheduler *s, const ss_serve_opts *o, ss_serve_stats *st);

// --- KV pool sizing ------------------------------------------------------------------------

/* Bytes of one KV block (keys + values, all layers) for config c and KV
 * dtype d (FP8: 1 byte per element + a 4-byte scale per row, ~half of BF16,
 * so a memory budget holds ~2x the blocks). */
size_t ss_kv_block_bytes(const ss_model_config *c, ss_kv_dtype d);
/* Free and total memory of ctx's device (SS_EUNSUPPORTED on a CPU context). */
ss_status ss_device_memory(const ss_context *ctx, size_t *free_b, size_t *total_b);

// --- throughput benchmarks ------------------------------------------------------------------

typedef enum { SS_STAGE_PREFILL = 0, SS_STAGE_DECODE = 1 } ss_stage;

const char *ss_stage_name(ss_stage st); /* "prefill", "decode" */

/* The SPEC §8 workload of one M (num_prompts before any scaling). */
typedef struct {
    int64_t m;
    int64_t prompt_len, output_len;
    int max_num_seqs;
    int64_t num_prompts;
    int64_t max_num_batched_tokens;
} ss_workload;

/* SS_EINVAL naming the supported values when m is not one of them:
 * prefill 512, 1024, ..., 32768; decode 64, 128, 256, 512. */
ss_status ss_workload_make(ss_stage st, int64_t m, ss_workload *out);
/* num_prompts scaled by f (0 < f <= 1), never fewer than one full wave of
 * max_num_seqs prompts (so decode, where R = S = M, is never scaled). */
int64_t ss_workload_scaled_prompts(const ss_workload *w, double f);

typedef struct {
    double int8_tops, fp8_tops; /* dense tensor-core peak */
    double bw_tbs;              /* HBM bandwidth */
    const char *label;
} ss_peak;

/* The peak table entry for a device name ("NVIDIA H100 80GB HBM3", ...), or
 * NULL (CPU and unknown devices). */
const ss_peak *ss_peak_lookup(const char *gpu_name);

typedef struct {
    ss_workload w;
    int64_t num_prompts;        /* after scaling */
    int64_t input_tokens, output_tokens;
    double elapsed_s;
    double requests_per_s, tokens_per_s;
    ss_serve_stats stats;
} ss_throughput_row;

/* One measured run of workload w with `num_prompts` random prompts (ids
 * uniform in [0, vocab) from seed) on a pool of kv_blocks blocks: a warm-up
 * serve first (min(S, num_prompts) prompts, 2 output tokens), then the timed
 * serve. A workload that cannot fit (prompt + output beyond
 * max_position_embeddings, or one sequence beyond the pool) fails with one
 * line before anything runs. Stopped by *o->stop: SS_OK with
 * row->stats.stopped = 1 (the row must not be recorded). */
ss_status ss_throughput_run(ss_model *m, int32_t kv_blocks, const ss_workload *w,
                            int64_t num_prompts, uint64_t seed, const ss_serve_opts *o,
                            ss_throughput_row *row);

/* Projection weights of the model: dense-equivalent parameters (N*K summed
 * over the fused projections of every layer) and the bytes a step reads (the
 * quantized or slid-and-compressed projections at 1 byte per stored value +
 * 2:4 metadata, plus the BF16 lm_head). */
void ss_model_weight_stats(const ss_model_config *c, double *params, double *bytes_per_step);
/* Bytes of keys and values one cache row holds over all layers and KV heads
 * in KV dtype d (what attention reads per row of ss_serve_stats.kv_rows:
 * BF16 2 bytes per element; FP8 1 byte per element + the rows' scales). */
double ss_model_kv_row_bytes(const ss_model_config *c, ss_kv_dtype d);
/* Device-to-device copy rate of ctx's GPU in TB/s, bytes read plus bytes
 * written (a 256 MB cudaMemcpy, median of 10 after a warm-up): the measured
 * ceiling a memory-bound step is compared against. SS_EUNSUPPORTED on a CPU
 * context. */
ss_status ss_device_copy_tbs(const ss_context *ctx, double *tbs);

/* <Model> of the CSV name: the checkpoint folder's base name without a
 * "-SlideSparse-2_L" and then an "-INT8"/"-FP8"/"-BF16" suffix. */
void ss_model_stem(const char *dir, char *buf, size_t n);

/* CSV header, SPEC §8 column order (N is max_num_batched_tokens, T). */
#define SS_THROUGHPUT_CSV_HEADER \
    "M,prompt_len,max_num_seqs,num_prompts,N,output_len,requests_per_s,tokens_per_s,elapsed_time_s"

/* Merges rows into the CSV at path (rows of other M already there are kept,
 * rows of the same M, every run of it, replaced; sorted by M) and writes it atomically (temp +
 * fsync + rename), creating the parent folders. A file with another header
 * is replaced. */
ss_status ss_throughput_save(const char *path, const ss_throughput_row *rows, int n);
/* Adds row to the CSV at path as one more run of its M: the rows already
 * there, those of the same M included, are kept and the new one follows
 * them (sorted by M; the runs of one M in the order written). Written like
 * ss_throughput_save; at most 256 rows. */
ss_status ss_throughput_append(const char *path, const ss_throughput_row *row);

/* Scans <stage_root>/<device folder>/ for <backend>[/<2_L>]/<model>_<stage>.csv
 * files and writes <device folder>/<model>_<stage>_speedup.csv (rows M;
 * columns: the dense baseline's tokens/s, then tokens/s ratio vs the baseline
 * per other backend/pattern). An M with several rows (runs, ss_throughput_append)
 * counts with the median of their tokens/s. *written = 0 when fewer than two
 * results exist. */
ss_status ss_throughput_speedup(const char *device_dir, const char *model, ss_stage st,
                                int *written);

#ifdef __cplusplus
}
#endif
#endif
