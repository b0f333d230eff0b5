/* The files a model configuration implies: its config.json text and its
 * tensor list (the presets themselves: src/io/preset.c). */
#include "prep_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

// --- config.json ------------------------------------------------------------------------

json_t *prep_config_json(const ss_model_config *c) {
    json_t *j = json_object();
    json_object_set_new(j, "architectures", json_pack("[s]", c->architecture));
    if (c->arch != SS_ARCH_QWEN2) /* Qwen2 configs omit it: their q/k/v biases are implied */
        json_object_set_new(j, "attention_bias", json_boolean(c->attention_bias));
    json_object_set_new(j, "attention_dropout", json_real(0.0));
    json_object_set_new(j, "bos_token_id", json_integer(c->bos_token_id));
    json_object_set_new(j, "eos_token_id", json_integer(c->eos_token_id));
    if (c->arch != SS_ARCH_QWEN2 && c->head_dim * c->num_attention_heads != c->hidden_size)
        json_object_set_new(j, "head_dim", json_integer(c->head_dim));
    else if (c->arch == SS_ARCH_LLAMA)
        json_object_set_new(j, "head_dim", json_integer(c->head_dim));
    json_object_set_new(j, "hidden_act", json_string(c->hidden_act));
    json_object_set_new(j, "hidden_size", json_integer(c->hidden_size));
    json_object_set_new(j, "initializer_range", json_real(0.02));
    json_object_set_new(j, "intermediate_size", json_integer(c->intermediate_size));
    json_object_set_new(j, "max_position_embeddings", json_integer(c->max_position_embeddings));
    if (c->arch == SS_ARCH_LLAMA)
        json_object_set_new(j, "mlp_bias", json_false());
    json_object_set_new(j, "model_type", json_string(c->model_type));
    json_object_set_new(j, "num_attention_heads", json_integer(c->num_attention_heads));
    json_object_set_new(j, "num_hidden_layers", json_integer(c->num_hidden_layers));
    json_object_set_new(j, "num_key_value_heads", json_integer(c->num_key_value_heads));
    json_object_set_new(j, "rms_norm_eps", json_real(c->rms_norm_eps));
    if (c->arch == SS_ARCH_LLAMA)
        json_object_set_new(j, "rope_scaling",
                            json_pack("{s:f,s:f,s:f,s:i,s:s}", "factor", 32.0, "high_freq_factor",
                                      4.0, "low_freq_factor", 1.0,
                                      "original_max_position_embeddings", 8192, "rope_type",
                                      "llama3"));
    json_object_set_new(j, "rope_theta", json_real(c->rope_theta));
    json_object_set_new(j, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    json_object_set_new(j, "torch_dtype", json_string("bfloat16"));
    json_object_set_new(j, "transformers_version", json_string("4.52.0"));
    json_object_set_new(j, "use_cache", json_true());
    if (c->arch == SS_ARCH_QWEN2) {
        json_object_set_new(j, "use_sliding_window", json_false());
        json_object_set_new(j, "sliding_window", json_integer(c->max_position_embeddings));
        json_object_set_new(j, "max_window_layers", json_integer(c->num_hidden_layers));
    }
    json_object_set_new(j, "vocab_size", json_integer(c->vocab_size));
    return j;
}

// --- the tensors of a model ------------------------------------------------------------------

ss_tensor_role ss_tensor_role_of(const char *name) {
    static const char *projs[] = {"q_proj.weight",    "k_proj.weight",  "v_proj.weight",
                                  "o_proj.weight",    "gate_proj.weight", "up_proj.weight",
                                  "down_proj.weight"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof projs / sizeof projs[0]; i++) {
        size_t m = strlen(projs[i]);
        if (n > m && name[n - m - 1] == '.' && strcmp(name + n - m, projs[i]) == 0)
            return SS_ROLE_PROJ;
    }
    if (strcmp(name, "model.embed_tokens.weight") == 0)
        return SS_ROLE_EMBED;
    if (strcmp(name, "lm_head.weight") == 0)
        return SS_ROLE_LM_HEAD;
    if (n > 10 && strcmp(name + n - 10, "_proj.bias") == 0)
        return SS_ROLE_BIAS;
    if (n > 11 && strcmp(name + n - 11, "norm.weight") == 0)
        return SS_ROLE_NORM;
    return SS_ROLE_COUNT;
}

typedef struct {
    ss_expected_tensor *t;
    size_t n, cap;
} tensor_list;

static int push(tensor_list *l, ss_tensor_role role, int64_t d0, int64_t d1, const char *fmt,
                int layer, const char *leaf) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        ss_expected_tensor *t = realloc(l->t, cap * sizeof *t);
        if (!t)
            return 0;
        l->t = t;
        l->cap = cap;
    }
    ss_expected_tensor *e = &l->t[l->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, fmt, layer, leaf);
    e->role = role;
    e->ndim = d1 > 0 ? 2 : 1;
    e->shape[0] = d0;
    e->shape[1] = d1 > 0 ? d1 : 0;
    return 1;
}

ss_status ss_model_tensors(const ss_model_config *c, ss_expected_tensor **out, size_t *n) {
    *out = NULL;
    *n = 0;
    int64_t h = c->hidden_size, f = c->intermediate_size, v = c->vocab_size;
    int64_t hd = c->head_dim > 0 ? c->head_dim : (c->num_attention_heads ? h / c->num_attention_heads : 0);
    int64_t q = c->num_attention_heads * hd, kv = c->num_key_value_heads * hd;
    if (h <= 0 || f <= 0 || v <= 0 || q <= 0 || kv <= 0 || c->num_hidden_layers <= 0)
        return ss_fail(SS_EINVAL, "model config: sizes must be positive (hidden %lld, intermediate "
                       "%lld, vocab %lld, heads x head_dim %lld, layers %d)",
                       (long long)h, (long long)f, (long long)v, (long long)q, c->num_hidden_layers);
    int bitnet = c->arch == SS_ARCH_BITNET;
    int bias = c->attention_bias;
    tensor_list l = {0};
    int ok = push(&l, SS_ROLE_EMBED, v, h, "model.embed_tokens.weight%.0d%s", 0, "");
    for (int i = 0; ok && i < c->num_hidden_layers; i++) {
        const char *L = "model.layers.%d.%s";
        ok = ok && push(&l, SS_ROLE_NORM, h, 0, L, i, "input_layernorm.weight");
        ok = ok && push(&l, SS_ROLE_PROJ, q, h, L, i, "self_attn.q_proj.weight");
        if (bias)
            ok = ok && push(&l, SS_ROLE_BIAS, q, 0, L, i, "self_attn.q_proj.bias");
        ok = ok && push(&l, SS_ROLE_PROJ, kv, h, L, i, "self_attn.k_proj.weight");
        if (bias)
            ok = ok && push(&l, SS_ROLE_BIAS, kv, 0, L, i, "self_attn.k_proj.bias");
        ok = ok && push(&l, SS_ROLE_PROJ, kv, h, L, i, "self_attn.v_proj.weight");
        if (bias)
            ok = ok && push(&l, SS_ROLE_BIAS, kv, 0, L, i, "self_attn.v_proj.bias");
        if (bitnet)
            ok = ok && push(&l, SS_ROLE_NORM, q, 0, L, i, "self_attn.attn_sub_norm.weight");
        ok = ok && push(&l, SS_ROLE_PROJ, h, q, L, i, "self_attn.o_proj.weight");
        ok = ok && push(&l, SS_ROLE_NORM, h, 0, L, i, "post_attention_layernorm.weight");
        ok = ok && push(&l, SS_ROLE_PROJ, f, h, L, i, "mlp.gate_proj.weight");
        ok = ok && push(&l, SS_ROLE_PROJ, f, h, L, i, "mlp.up_proj.weight");
        if (bitnet)
            ok = ok && push(&l, SS_ROLE_NORM, f, 0, L, i, "mlp.ffn_sub_norm.weight");
        ok = ok && push(&l, SS_ROLE_PROJ, h, f, L, i, "mlp.down_proj.weight");
    }
    ok = ok && push(&l, SS_ROLE_NORM, h, 0, "model.norm.weight%.0d%s", 0, "");
    if (!c->tie_word_embeddings)
        ok = ok && push(&l, SS_ROLE_LM_HEAD, v, h, "lm_head.weight%.0d%s", 0, "");
    if (!ok) {
        free(l.t);
        return ss_fail(SS_ENOMEM, "model config: out of memory listing %zu tensors", l.n);
    }
    *out = l.t;
    *n = l.n;
    return SS_OK;
}
