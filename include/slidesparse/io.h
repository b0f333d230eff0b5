/* slidesparse/io.h — safetensors files, Hugging Face checkpoint directories,
 * model configuration, atomic output.
 *
 * Safetensors format (https://github.com/huggingface/safetensors):
 *   bytes 0..7   u64 little-endian N = header length
 *   bytes 8..8+N JSON object {name: {"dtype": "BF16", "shape": [..],
 *                "data_offsets": [begin, end]}, "__metadata__": {str: str}}
 *                (may be padded with trailing spaces)
 *   rest         the data buffer; offsets are relative to its start.
 * The reader rejects, with one line naming the file and the tensor: a header
 * past EOF, a non-object header, unknown dtype, negative or overflowing shapes,
 * offsets out of range, reversed, overlapping, not matching dtype x shape, or
 * leaving gaps in the buffer. Offsets and lengths are never trusted.
 */
#ifndef SLIDESPARSE_IO_H
#define SLIDESPARSE_IO_H

#include "slidesparse/core.h"
#include "slidesparse/sparse.h"

#ifdef __cplusplus
extern "C" {
#endif

// --- safetensors reader ------------------------------------------------------

typedef struct ss_safetensors ss_safetensors; /* opaque */

typedef struct {
    const char *name;
    ss_dtype dtype;
    int ndim;
    int64_t shape[SS_MAX_DIMS];
    const void *data;   /* zero-copy view into the mapping */
    size_t nbytes;
    const char *file;   /* path of the file that holds it (for error text) */
} ss_st_entry;

/* Maps `path` read-only and validates it completely. */
ss_status ss_safetensors_open(const char *path, ss_safetensors **out);
/* Validates an in-memory image (the fuzz entry point); `buf` must outlive the
 * handle; `label` names it in error messages. */
ss_status ss_safetensors_parse(const void *buf, size_t len, const char *label,
                               ss_safetensors **out);
void ss_safetensors_close(ss_safetensors *st);

size_t ss_safetensors_count(const ss_safetensors *st);
/* Entries are in data-offset order. */
const ss_st_entry *ss_safetensors_entry(const ss_safetensors *st, size_t i);
/* NULL when absent. */
const ss_st_entry *ss_safetensors_find(const ss_safetensors *st, const char *name);
/* __metadata__ value for key, or NULL. */
const char *ss_safetensors_metadata(const ss_safetensors *st, const char *key);

// --- safetensors streaming writer ---------------------------------------------

typedef struct ss_st_writer ss_st_writer; /* opaque */

/* Writes to "<path>.tmp.<pid>"; nothing appears at `path` until close. */
ss_status ss_st_writer_open(const char *path, ss_st_writer **out);
/* Declare every tensor (in write order) before the first write. */
ss_status ss_st_writer_declare(ss_st_writer *w, const char *name, ss_dtype dtype,
                               int ndim, const int64_t *shape);
ss_status ss_st_writer_set_metadata(ss_st_writer *w, const char *key, const char *value);
/* Appends data of the declared tensors in order; may be called in chunks of any
 * size. Writing more than declared is an error. */
ss_status ss_st_writer_write(ss_st_writer *w, const void *data, size_t nbytes);
/* Checks every declared byte was written, fsyncs, renames onto `path`, frees w. */
ss_status ss_st_writer_close(ss_st_writer *w);
/* Removes the temporary file and frees w (safe on NULL). */
void ss_st_writer_abort(ss_st_writer *w);

// --- model configuration (config.json) -----------------------------------------

typedef enum {
    SS_ARCH_BITNET = 0, /* BitNetForCausalLM */
    SS_ARCH_LLAMA,      /* LlamaForCausalLM, MistralForCausalLM */
    SS_ARCH_QWEN2,      /* Qwen2ForCausalLM */
    SS_ARCH_COUNT
} ss_arch;

typedef enum {
    SS_WEIGHTS_BF16 = 0,   /* the original dense checkpoint */
    SS_WEIGHTS_QUANTIZED,  /* quantization_config present */
    SS_WEIGHTS_SLID        /* slidesparse block present (implies quantized) */
} ss_weights_kind;

/* Where a quantized checkpoint's layout comes from. Both are read as ours:
 * a compressed-tensors checkpoint's weight_scale [N, 1] (BF16 / F16 / F32) is
 * presented as F32 [N] by ss_checkpoint_open. */
typedef enum {
    SS_QUANT_SOURCE_NATIVE = 0,          /* quant_method "slidesparse" (or none) */
    SS_QUANT_SOURCE_COMPRESSED_TENSORS   /* quant_method "compressed-tensors" (llm-compressor) */
} ss_quant_source;

#define SS_MAX_EOS_IDS 8

typedef struct {
    ss_arch arch;
    char architecture[64];      /* "BitNetForCausalLM" */
    char model_type[32];        /* "bitnet" */
    int hidden_size;
    int intermediate_size;
    int num_hidden_layers;
    int num_attention_heads;
    int num_key_value_heads;
    int head_dim;               /* hidden/heads when absent */
    int vocab_size;
    int max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    int tie_word_embeddings;
    int attention_bias;         /* q/k/v biases (Qwen2: 1) */
    int bos_token_id, eos_token_id;  /* -1 when absent; eos: the first of eos_token_ids */
    int eos_token_ids[SS_MAX_EOS_IDS]; /* every id that ends generation (Llama 3 lists several) */
    int n_eos_token_ids;
    char hidden_act[16];        /* "relu2", "silu" */
    /* quantization_config (when kind >= QUANTIZED) */
    ss_weights_kind kind;
    ss_dtype weight_dtype;      /* BF16, I8 or F8_E4M3 */
    int per_channel;            /* weight_scale [N] (1) or [1] (0) */
    ss_quant_source quant_source;
    char quant_format[24];      /* compressed-tensors "format" ("int-quantized", ...), else "" */
    /* slidesparse block (when kind == SLID) */
    ss_pattern pattern;
} ss_model_config;

/* Parses config.json text; `label` names the file in errors. Rejects missing or
 * mistyped required fields and unsupported architectures. */
ss_status ss_model_config_parse(const char *json, size_t len, const char *label,
                                ss_model_config *out);
ss_status ss_model_config_load(const char *path, ss_model_config *out);

// --- presets -----------------------------------------------------------------------

/* Number of built-in presets and their names ("bitnet-2b", "tiny-llama", ...). */
int ss_preset_count(void);
const char *ss_preset_name(int i);
/* The model configuration a preset describes (SS_WEIGHTS_BF16). SS_EINVAL
 * naming the valid presets when `name` is unknown. */
ss_status ss_preset_config(const char *name, ss_model_config *out);

// --- checkpoint directory -------------------------------------------------------

typedef struct ss_checkpoint ss_checkpoint; /* opaque */

/* Opens DIR/config.json and DIR/model.safetensors, or the shards listed in
 * DIR/model.safetensors.index.json (each validated; the index must name
 * exactly the tensors the shards hold). A compressed-tensors checkpoint is
 * presented in our layout: each weight_scale as F32 [N] (channel) or [1]
 * (tensor), converted from its BF16 / F16 / F32 [N, 1] or [1] values; its
 * tensors of unsupported schemes (zero points, static activation scales,
 * g_idx, packed weights, KV-cache scales) are refused naming the tensor. */
ss_status ss_checkpoint_open(const char *dir, ss_checkpoint **out);
void ss_checkpoint_close(ss_checkpoint *ck);
const ss_model_config *ss_checkpoint_config(const ss_checkpoint *ck);
const char *ss_checkpoint_dir(const ss_checkpoint *ck);
/* Raw config.json text (NUL-terminated), for tools that copy and extend it. */
const char *ss_checkpoint_config_json(const ss_checkpoint *ck);
size_t ss_checkpoint_count(const ss_checkpoint *ck);
const ss_st_entry *ss_checkpoint_entry(const ss_checkpoint *ck, size_t i);
const ss_st_entry *ss_checkpoint_find(const ss_checkpoint *ck, const char *name);

// --- atomic output directory ------------------------------------------------------

/* Everything a command writes goes to a temporary sibling directory that is
 * renamed onto the final path when complete, so a kill at any moment leaves
 * the old state or the complete new directory. Nothing that exists is ever
 * replaced unless force is given.
 *   begin: fails with SS_EEXIST when `final_dir` exists and !force, and with
 *          force when it is neither an empty folder nor holds `marker` (an
 *          earlier output: "config.json" for a checkpoint; NULL: anything
 *          goes), so --force never swaps away an unrelated folder; writes the
 *          temporary path (final_dir + ".tmp.<pid>", trailing slashes of
 *          final_dir ignored) into tmp (size n), which must stay valid until
 *          commit or abort (a signal handler may remove it meanwhile). First
 *          sweeps what killed processes left next to final_dir.
 *   commit: fsyncs, then moves tmp onto final_dir. Without force a final_dir
 *          that appeared since begin is an error (SS_EEXIST, "already exists";
 *          tmp stays for abort); with force it is replaced atomically.
 *   abort: removes the temporary directory recursively. */
ss_status ss_outdir_begin(const char *final_dir, int force, const char *marker, char *tmp,
                          size_t n);
ss_status ss_outdir_commit(const char *tmp, const char *final_dir, int force);
void ss_outdir_abort(const char *tmp);

/* Refuses (SS_EINVAL) an output that is the input or lies inside it (after
 * resolving links; neither needs to exist), and with `whole` (an output
 * directory replaced as a whole) also one that contains the input.
 * Paths that cannot be resolved pass: opening the input reports them. */
ss_status ss_outdir_check_input(const char *out, const char *in, int whole);

/* An output folder given on the command line, checked before any work: it
 * must be a writable folder, or not exist below a writable folder (SS_EINVAL
 * naming `what`, e.g. "--out", and the reason). Creates nothing. */
ss_status ss_outdir_check_writable(const char *dir, const char *what);

// --- cleanup when a signal ends the process ------------------------------------------

/* For the program's signal handlers; async-signal-safe.
 *   ss_cleanup_on_signal(sig): removes every temporary output this process is
 *     writing (and the folders it created for them, when empty) and returns
 *     1; returns 0 without removing anything while an output is being
 *     committed: the signal is recorded and raised again as soon as the
 *     commit is done, so the handler just returns.
 *   ss_cleanup_now(): removes them regardless (SIGBUS cannot wait).
 *   ss_cleanup_mapped_file(addr): the input file whose mapping holds addr
 *     (to name the file that shrank under us), or NULL. */
int ss_cleanup_on_signal(int sig);
void ss_cleanup_now(void);
const char *ss_cleanup_mapped_file(const void *addr);

#ifdef __cplusplus
}
#endif
#endif
