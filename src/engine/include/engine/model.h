/* Internal: the loaded model (model.c) that forward.c runs. */
#ifndef SS_ENGINE_MODEL_H
#define SS_ENGINE_MODEL_H

#include "engine/ops.h"

typedef struct {
    ss_linear *qkv;          /* (nh + 2*nkv) * hd rows: q | k | v */
    ss_linear *o;
    ss_linear *gate_up;      /* 2 * intermediate rows: gate | up */
    ss_linear *down;
    uint16_t *in_norm;       // (hidden) BF16
    uint16_t *post_norm;     // (hidden)
    uint16_t *attn_sub_norm; // (nh*hd) BitNet only, else NULL
    uint16_t *ffn_sub_norm;  // (intermediate) BitNet only, else NULL
} ss_layer;

struct ss_model {
    ss_model_config cfg;
    ss_context *ctx;
    ss_backend backend;
    const ss_engine_ops *ops;
    ss_layer *layers;        // (num_hidden_layers)
    uint16_t *embed;         // (vocab, hidden) BF16
    uint16_t *final_norm;    // (hidden)
    ss_linear *lm_head;      /* BF16 weights, F32 logits */
    float *inv_freq;         // (head_dim / 2)
    ss_layer_hook hook;
    void *hook_user;
    struct ss_engine_gpu *gpu; /* device state (cuda/engine_gpu.h); NULL on the CPU */
    ss_kv_dtype kv_dtype;      /* of the caches created from now on */
};

/* Checks a batch, grows each sequence's block table, fills tok (t) (forward.c). */
ss_status ss_engine_prepare_batch(const ss_model *m, ss_kv_cache *c, const ss_seq_step *seqs,
                                  int n_seqs, ss_tok_info *tok);

#endif
