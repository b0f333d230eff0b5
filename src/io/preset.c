/* Built-in model presets: the configurations synth writes and the shape sets
 * the tuner and the benchmarks take by name. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "slidesparse/io.h"

// --- the preset table ---------------------------------------------------------------

typedef struct {
    const char *name;
    ss_arch arch;
    int hidden, intermediate, layers, heads, kv_heads, head_dim, vocab, max_pos;
    double eps, rope_theta;
    int tie, bias, bos, eos;
    const char *act;
} preset;

/* The full-size rows copy the published configs; the tiny ones keep K sizes
 * that are not multiples of every L (160, 192, 224, 432, 520, 608) so the
 * padding path of every pattern is exercised, and 2048 positions so every
 * bench prefill / decode workload fits (prompt 1024 + 1, 16 + 256). */
static const preset presets[] = {
    {"bitnet-2b", SS_ARCH_BITNET, 2560, 6912, 30, 20, 5, 128, 128256, 4096, 1e-5, 500000.0, 1, 0,
     128000, 128001, "relu2"},
    {"llama3.2-1b", SS_ARCH_LLAMA, 2048, 8192, 16, 32, 8, 64, 128256, 131072, 1e-5, 500000.0, 1, 0,
     128000, 128001, "silu"},
    {"qwen2.5-7b", SS_ARCH_QWEN2, 3584, 18944, 28, 28, 4, 128, 152064, 131072, 1e-6, 1000000.0, 0,
     1, 151643, 151643, "silu"},
    {"tiny-bitnet", SS_ARCH_BITNET, 160, 432, 2, 5, 1, 32, 512, 2048, 1e-5, 500000.0, 1, 0, 1, 2,
     "relu2"},
    {"tiny-llama", SS_ARCH_LLAMA, 192, 520, 3, 6, 2, 32, 512, 2048, 1e-5, 500000.0, 1, 0, 1, 2,
     "silu"},
    {"tiny-qwen2", SS_ARCH_QWEN2, 224, 608, 2, 7, 1, 32, 512, 2048, 1e-6, 1000000.0, 0, 1, 1, 2,
     "silu"},
};
#define N_PRESETS ((int)(sizeof presets / sizeof presets[0]))

static const char *arch_names[SS_ARCH_COUNT] = {"BitNetForCausalLM", "LlamaForCausalLM",
                                                "Qwen2ForCausalLM"};
static const char *model_types[SS_ARCH_COUNT] = {"bitnet", "llama", "qwen2"};

int ss_preset_count(void) { return N_PRESETS; }

const char *ss_preset_name(int i) { return i >= 0 && i < N_PRESETS ? presets[i].name : NULL; }

ss_status ss_preset_config(const char *name, ss_model_config *out) {
    const preset *p = NULL;
    for (int i = 0; i < N_PRESETS; i++)
        if (name && strcmp(name, presets[i].name) == 0)
            p = &presets[i];
    if (!p) {
        char list[256] = "";
        for (int i = 0; i < N_PRESETS; i++) {
            strncat(list, presets[i].name, sizeof list - strlen(list) - 1);
            if (i + 1 < N_PRESETS)
                strncat(list, ", ", sizeof list - strlen(list) - 1);
        }
        return ss_fail(SS_EINVAL, "unknown preset '%s': expected one of %s", name ? name : "(null)",
                       list);
    }
    memset(out, 0, sizeof *out);
    out->arch = p->arch;
    snprintf(out->architecture, sizeof out->architecture, "%s", arch_names[p->arch]);
    snprintf(out->model_type, sizeof out->model_type, "%s", model_types[p->arch]);
    out->hidden_size = p->hidden;
    out->intermediate_size = p->intermediate;
    out->num_hidden_layers = p->layers;
    out->num_attention_heads = p->heads;
    out->num_key_value_heads = p->kv_heads;
    out->head_dim = p->head_dim;
    out->vocab_size = p->vocab;
    out->max_position_embeddings = p->max_pos;
    out->rms_norm_eps = p->eps;
    out->rope_theta = p->rope_theta;
    out->tie_word_embeddings = p->tie;
    out->attention_bias = p->bias;
    out->bos_token_id = p->bos;
    out->eos_token_id = p->eos;
    out->eos_token_ids[0] = p->eos;
    out->n_eos_token_ids = p->eos >= 0;
    snprintf(out->hidden_act, sizeof out->hidden_act, "%s", p->act);
    out->kind = SS_WEIGHTS_BF16;
    out->weight_dtype = SS_DTYPE_BF16;
    out->pattern = SS_PATTERN_DENSE;
    return SS_OK;
}
