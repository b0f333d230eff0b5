/* slidesparse/prep.h — model preparation (tasks 1-2): synthetic checkpoints,
 * quantization, conversion to SlideSparse patterns, and the independent
 * verification of a converted checkpoint.
 *
 * Every function streams: one tensor (or one row block) is in memory at a time,
 * input pages are released after use, so peak RSS does not grow with the model.
 * Every output directory is written under a temporary sibling and renamed when
 * complete (ss_outdir_*): a kill at any moment leaves the old state or the
 * complete new directory; an error leaves no partial output.
 *
 * Output layout (SPEC §6):
 *   quantize: same tensor names; each projection "X.weight" becomes I8/F8_E4M3
 *     "X.weight" plus F32 "X.weight_scale" ([1] ternary BitNet, [N] otherwise);
 *     every other tensor is copied byte for byte. config.json gets
 *     "quantization_config": {"quant_method": "slidesparse",
 *        "weights": {"dtype": "int8"|"fp8_e4m3", "scheme": "per_tensor"|"per_channel", "static": true},
 *        "activations": {"dtype": same, "scheme": "per_token", "dynamic": true}}
 *   convert: as quantize, with every projection pruned to 2_L and slid to
 *     [N, K'], plus config.json "slidesparse": {"pattern": "2_8", "Z": 2, "L": 8,
 *        "tensors": {name: {"K": k, "K_slid": kp}}, "source": dir, "version": v,
 *        "tie_break": "bf16" (pruned from BF16: ties by |BF16|, then index) or
 *                     "index" (pruned from a quantized input: ties by index)}.
 *   Shards follow the input: a tensor of input shard i goes to output shard i.
 *
 * The library never prints: progress goes through a callback.
 */
#ifndef SLIDESPARSE_PREP_H
#define SLIDESPARSE_PREP_H

#include "slidesparse/core.h"
#include "slidesparse/io.h"
#include "slidesparse/sparse.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called after each tensor: i of n tensors done, bytes_done of bytes_total
 * input bytes processed. May be NULL. */
typedef void (*ss_prep_progress_fn)(void *user, int64_t i, int64_t n, int64_t bytes_done,
                                    int64_t bytes_total);

// --- the tensors a configuration implies ---------------------------------------------

typedef enum {
    SS_ROLE_EMBED = 0, /* model.embed_tokens.weight */
    SS_ROLE_NORM,      /* every *norm.weight (1-D) */
    SS_ROLE_PROJ,      /* q,k,v,o,gate,up,down: pruned and slid */
    SS_ROLE_BIAS,      /* q/k/v biases (Qwen2) */
    SS_ROLE_LM_HEAD,   /* lm_head.weight (untied models only) */
    SS_ROLE_COUNT
} ss_tensor_role;

typedef struct {
    char name[96];
    ss_tensor_role role;
    int ndim;
    int64_t shape[2]; /* (N, K) for projections, (n) for 1-D */
} ss_expected_tensor;

/* The dense (BF16) tensors of a model in HF order. *out is malloc'd (caller
 * frees). */
ss_status ss_model_tensors(const ss_model_config *cfg, ss_expected_tensor **out, size_t *n);

/* Role of a tensor name ("...q_proj.weight" -> PROJ). Unknown names -> COUNT. */
ss_tensor_role ss_tensor_role_of(const char *name);

// --- synth ---------------------------------------------------------------------------

typedef struct {
    const char *preset;
    const char *out_dir;
    uint64_t seed;
    int force;
    ss_prep_progress_fn progress;
    void *user;
} ss_synth_opts;

/* Writes config.json + model.safetensors (or shards + index above 5 GB) with
 * random BF16 weights: projections N(0, 1/K), norms 1 + N(0, 0.02^2),
 * embeddings / lm_head N(0, 0.02^2)... reproducible from (seed, name). */
ss_status ss_synth(const ss_synth_opts *o);

/* The value synth writes at element i of tensor `name` with standard deviation
 * std and mean `mean` (for tests: the generator is counter based). */
float ss_synth_value(uint64_t seed, const char *name, uint64_t i, float mean, float std);

// --- quantize ----------------------------------------------------------------------------

typedef struct {
    const char *in_dir;
    const char *out_dir;
    ss_dtype dtype; /* SS_DTYPE_I8 or SS_DTYPE_F8_E4M3 */
    int force;
    ss_prep_progress_fn progress;
    void *user;
} ss_quantize_opts;

ss_status ss_quantize_checkpoint(const ss_quantize_opts *o);

// --- convert -------------------------------------------------------------------------------

#define SS_PREP_MAX_PATTERNS 16

typedef struct {
    const char *in_dir;       /* BF16 or quantized checkpoint */
    const char *out_root;     /* NULL: "checkpoints_slidesparse" */
    const ss_pattern *patterns;
    int n_patterns;           /* 1 .. SS_PREP_MAX_PATTERNS, each 2_L with even L >= 4 */
    ss_dtype dtype;           /* I8 / F8_E4M3; SS_DTYPE_COUNT = input's (int8 from BF16) */
    int force;
    ss_prep_progress_fn progress;
    void *user;
    const char *source;       /* config.json's "source" (NULL: in_dir); for inputs read
                                 from a temporary folder that is renamed afterwards */
} ss_convert_opts;

/* "<out_root>/<basename(in_dir)>-SlideSparse-2_L". */
ss_status ss_convert_out_dir(const char *in_dir, const char *out_root, ss_pattern p, char *buf,
                             size_t n);

/* Reads the input once; every projection is quantized once and pruned + slid
 * for every pattern. All outputs are committed only when all are complete. */
ss_status ss_convert_checkpoint(const ss_convert_opts *o);

// --- verify ----------------------------------------------------------------------------------

typedef struct {
    const char *name;
    int64_t n, k, k_slid;
    int slide_ok;   /* slid bytes == slide(prune(quantize(dense))) */
    int scale_ok;   /* weight_scale matches */
    int valid_24;   /* every aligned 4 holds <= 2 nonzeros */
    int unslide_ok; /* unslide(slid) == pruned dense */
    int linear_ok;  /* slid linear == pruned dense linear on random activations */
    double max_abs_diff; /* of the linear outputs */
    const char *note;    /* first failure, or "" */
} ss_verify_row;

typedef void (*ss_verify_row_fn)(void *user, const ss_verify_row *r);

typedef struct {
    const char *dense_dir;
    const char *slid_dir;
    int64_t linear_rows;  /* rows checked through ss_linear per tensor; <= 0: all */
    int64_t linear_m;     /* activation rows (tokens); <= 0: 2 */
    uint64_t seed;
    ss_verify_row_fn row; /* one call per projection; may be NULL */
    void *user;
    ss_prep_progress_fn progress;
    void *progress_user;
} ss_verify_opts;

/* Returns SS_OK when the checkpoints could be compared (then *n_bad counts
 * mismatching tensors, including copied tensors that differ); an error when
 * they could not (unreadable, not a SlideSparse checkpoint, shapes differ). */
ss_status ss_verify_checkpoint(const ss_verify_opts *o, int *n_bad);

#ifdef __cplusplus
}
#endif
#endif
