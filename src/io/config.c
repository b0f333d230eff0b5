/* config.json -> ss_model_config, for BitNet, Llama (and Mistral) and Qwen2
 * checkpoints.
 *
 * Accepted schema (fields not listed are ignored):
 *   architectures        array, [0] one of BitNetForCausalLM, LlamaForCausalLM,
 *                        MistralForCausalLM (arch Llama: the same layers),
 *                        Qwen2ForCausalLM                                 required
 *   sliding_window       Mistral only: null, or an integer >= max_position_embeddings
 *                        (attention is full over every position then); a smaller
 *                        window is SS_EUNSUPPORTED                 default null
 *   hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
 *   vocab_size           positive integers                               required
 *   num_key_value_heads  positive, divides num_attention_heads    default heads
 *   head_dim             positive                      default hidden / heads
 *   max_position_embeddings positive                          default 2048
 *   rms_norm_eps         number > 0                           default 1e-6
 *   rope_theta           number > 0                           default 10000
 *   tie_word_embeddings  boolean                              default false
 *   attention_bias       boolean        default false; Qwen2: always true (as
 *                        Hugging Face's Qwen2, which ignores the field)
 *   hidden_act           string (< 16 chars)  default "relu2" (BitNet), "silu"
 *   model_type           string (< 32 chars)                  default ""
 *   bos_token_id         integer, or array (first element), or null  default -1
 *   eos_token_id         integer, or array of up to SS_MAX_EOS_IDS (all kept in
 *                        eos_token_ids, the first in eos_token_id), or null  default -1
 *
 *   quantization_config (written by `slidesparse quantize`)    optional, then kind QUANTIZED
 *     { "quant_method": "slidesparse",                                    required
 *       "weights":     { "dtype": "int8" | "fp8_e4m3",                    required
 *                        "scheme": "per_channel" | "per_tensor",          required
 *                        "static": true },                                optional, must be true
 *       "activations": { "dtype": same as weights.dtype,                  required
 *                        "scheme": "per_token",                           required
 *                        "dynamic": true } }                              optional, must be true
 *     quant_method "compressed-tensors" (llm-compressor W8A8): src/io/compressed_tensors.c.
 *     Another quant_method (e.g. a Hugging Face "bitnet" block) is SS_EUNSUPPORTED.
 *
 *   slidesparse (written by `slidesparse convert`)              optional, then kind SLID
 *     { "pattern": "2_8",                       ss_pattern_parse syntax   required
 *       "Z": 2, "L": 8,                         must agree with pattern   optional
 *                                               (2_inf: L is 0 or null)
 *       "tensors": { "<name>": { "K": 2560, "K_slid": 3840 }, ... }        optional;
 *                  each value an object; K, K_slid positive integers when
 *                  present, and K_slid == ss_slid_k(pattern, K) when both are
 *       "source": "...", "version": "..." }     strings                   optional
 *     Without quantization_config a slid checkpoint keeps weight_dtype BF16.
 */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "compressed_tensors.h"
#include "io/fileutil.h"
#include "io/json_util.h"
#include "slidesparse/io.h"

#define SS_CONFIG_MAX ((size_t)16 << 20) /* a config.json is a few KB */

static const struct {
    const char *name;
    ss_arch arch;
} arch_names[] = {
    {"BitNetForCausalLM", SS_ARCH_BITNET},
    {"LlamaForCausalLM", SS_ARCH_LLAMA},
    {"MistralForCausalLM", SS_ARCH_LLAMA}, /* Llama's layers; sliding window checked */
    {"Qwen2ForCausalLM", SS_ARCH_QWEN2},
};
#define N_ARCH_NAMES (sizeof arch_names / sizeof arch_names[0])

// --- typed field getters (label + dotted path name the field in errors) ------------------

/* Integer in [lo, hi]; absent -> *out = def unless required. */
static ss_status get_int(const char *label, json_t *obj, const char *path, const char *key,
                         int required, long long lo, long long hi, int def, int *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return ss_fail(SS_EFORMAT, "%s: missing required field '%s%s'", label, path, key);
        *out = def;
        return SS_OK;
    }
    if (!json_is_integer(v))
        return ss_fail(SS_EFORMAT, "%s: field '%s%s' must be an integer, found %s", label, path, key,
                       ss_json_type_word(v));
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return ss_fail(SS_EFORMAT, "%s: field '%s%s' is %lld, expected %lld..%lld", label, path, key,
                       x, lo, hi);
    *out = (int)x;
    return SS_OK;
}

/* Positive finite number (integer or real); absent -> def. */
static ss_status get_pos_number(const char *label, json_t *obj, const char *key, double def,
                                double *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = def;
        return SS_OK;
    }
    if (!json_is_number(v))
        return ss_fail(SS_EFORMAT, "%s: field '%s' must be a number, found %s", label, key, ss_json_type_word(v));
    double x = json_number_value(v);
    if (!(x > 0) || !isfinite(x))
        return ss_fail(SS_EFORMAT, "%s: field '%s' is %g, expected a positive number", label, key, x);
    *out = x;
    return SS_OK;
}

static ss_status get_bool(const char *label, json_t *obj, const char *path, const char *key,
                          int def, int *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = def;
        return SS_OK;
    }
    if (!json_is_boolean(v))
        return ss_fail(SS_EFORMAT, "%s: field '%s%s' must be a boolean, found %s", label, path, key,
                       ss_json_type_word(v));
    *out = json_is_true(v);
    return SS_OK;
}

/* String copied into buf[n]; absent -> def (NULL: required). */
static ss_status get_string(const char *label, json_t *obj, const char *path, const char *key,
                            const char *def, char *buf, size_t n) {
    json_t *v = json_object_get(obj, key);
    const char *s = def;
    if (v) {
        if (!json_is_string(v))
            return ss_fail(SS_EFORMAT, "%s: field '%s%s' must be a string, found %s", label, path,
                           key, ss_json_type_word(v));
        s = json_string_value(v);
    } else if (!def) {
        return ss_fail(SS_EFORMAT, "%s: missing required field '%s%s'", label, path, key);
    }
    if (strlen(s) >= n)
        return ss_fail(SS_EFORMAT, "%s: field '%s%s' is %zu characters, at most %zu allowed", label,
                       path, key, strlen(s), n - 1);
    memcpy(buf, s, strlen(s) + 1);
    return SS_OK;
}

static ss_status get_object(const char *label, json_t *obj, const char *path, const char *key,
                            int required, json_t **out) {
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return required ? ss_fail(SS_EFORMAT, "%s: missing required field '%s%s'", label, path, key)
                        : SS_OK;
    if (!json_is_object(v))
        return ss_fail(SS_EFORMAT, "%s: field '%s%s' must be an object, found %s", label, path, key,
                       ss_json_type_word(v));
    *out = v;
    return SS_OK;
}

/* Token ids: an integer, an array of them (Llama 3 lists several eos), or
 * null; ids (cap) gets up to cap of them, *out the first (-1 when none). */
static ss_status get_token_ids(const char *label, json_t *obj, const char *key, int *out, int *ids, int cap,
                               int *n) {
    json_t *v = json_object_get(obj, key);
    *out = -1, *n = 0;
    if (!v || json_is_null(v))
        return SS_OK;
    size_t count = json_is_array(v) ? json_array_size(v) : 1;
    if (json_is_array(v) && (count == 0 || count > (size_t)cap))
        return ss_fail(SS_EFORMAT, "%s: field '%s' lists %zu ids, expected 1..%d", label, key, count, cap);
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > INT_MAX)
            return ss_fail(SS_EFORMAT, "%s: field '%s' must be a non-negative integer (or an array of them)",
                           label, key);
        ids[(*n)++] = (int)json_integer_value(e);
    }
    *out = ids[0];
    return SS_OK;
}

// --- sections ----------------------------------------------------------------------------

static ss_status parse_arch(const char *label, json_t *root, ss_model_config *c) {
    json_t *a = json_object_get(root, "architectures");
    if (!a)
        return ss_fail(SS_EFORMAT, "%s: missing required field 'architectures'", label);
    if (!json_is_array(a) || json_array_size(a) == 0 || !json_is_string(json_array_get(a, 0)))
        return ss_fail(SS_EFORMAT, "%s: field 'architectures' must be a non-empty array of strings", label);
    const char *name = json_string_value(json_array_get(a, 0));
    for (size_t i = 0; i < N_ARCH_NAMES; i++)
        if (strcmp(name, arch_names[i].name) == 0) {
            c->arch = arch_names[i].arch;
            snprintf(c->architecture, sizeof c->architecture, "%s", name);
            return SS_OK;
        }
    return ss_fail(SS_EUNSUPPORTED, "%s: unsupported architecture '%.64s' (supported: %s, %s, %s, %s)",
                   label, name, arch_names[0].name, arch_names[1].name, arch_names[2].name,
                   arch_names[3].name);
}

/* Mistral's sliding-window attention equals full attention when the window
 * covers every position; the engine has no windowed attention. */
static ss_status check_sliding_window(const char *label, json_t *root, const ss_model_config *c) {
    json_t *v = json_object_get(root, "sliding_window");
    /* Qwen2 configs carry a window with use_sliding_window false: only
     * Mistral's is in force. */
    if (strcmp(c->architecture, "MistralForCausalLM") != 0 || !v || json_is_null(v))
        return SS_OK;
    if (!json_is_integer(v))
        return ss_fail(SS_EFORMAT, "%s: field 'sliding_window' must be an integer or null, found %s", label,
                       ss_json_type_word(v));
    long long w = json_integer_value(v);
    if (w < c->max_position_embeddings)
        return ss_fail(SS_EUNSUPPORTED, "%s: sliding_window %lld is smaller than max_position_embeddings %d: "
                       "sliding-window attention is not supported (null or >= max_position_embeddings is)",
                       label, w, c->max_position_embeddings);
    return SS_OK;
}

static ss_status parse_dims(const char *label, json_t *root, ss_model_config *c) {
    const long long big = 1 << 20, vocab_max = 1 << 24;
    SS_TRY(get_int(label, root, "", "hidden_size", 1, 1, big, 0, &c->hidden_size));
    SS_TRY(get_int(label, root, "", "intermediate_size", 1, 1, 4 * big, 0, &c->intermediate_size));
    SS_TRY(get_int(label, root, "", "num_hidden_layers", 1, 1, 4096, 0, &c->num_hidden_layers));
    SS_TRY(get_int(label, root, "", "num_attention_heads", 1, 1, c->hidden_size, 0, &c->num_attention_heads));
    SS_TRY(get_int(label, root, "", "vocab_size", 1, 1, vocab_max, 0, &c->vocab_size));
    SS_TRY(get_int(label, root, "", "num_key_value_heads", 0, 1, c->num_attention_heads,
                   c->num_attention_heads, &c->num_key_value_heads));
    if (c->hidden_size % c->num_attention_heads)
        return ss_fail(SS_EFORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d",
                       label, c->hidden_size, c->num_attention_heads);
    if (c->num_attention_heads % c->num_key_value_heads)
        return ss_fail(SS_EFORMAT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                       label, c->num_attention_heads, c->num_key_value_heads);
    SS_TRY(get_int(label, root, "", "head_dim", 0, 1, big, c->hidden_size / c->num_attention_heads,
                   &c->head_dim));
    SS_TRY(get_int(label, root, "", "max_position_embeddings", 0, 1, 1 << 24, 2048,
                   &c->max_position_embeddings));
    return SS_OK;
}

static ss_status parse_rest(const char *label, json_t *root, ss_model_config *c) {
    SS_TRY(get_pos_number(label, root, "rms_norm_eps", 1e-6, &c->rms_norm_eps));
    SS_TRY(get_pos_number(label, root, "rope_theta", 10000.0, &c->rope_theta));
    SS_TRY(get_bool(label, root, "", "tie_word_embeddings", 0, &c->tie_word_embeddings));
    SS_TRY(get_bool(label, root, "", "attention_bias", c->arch == SS_ARCH_QWEN2, &c->attention_bias));
    /* One rule for every command (the tensor list of quantize / convert and
     * the engine both read this): Qwen2 has q/k/v biases whatever the field
     * says, as in Hugging Face's Qwen2, so a checkpoint without them is
     * rejected everywhere and one with them is never run without them. */
    if (c->arch == SS_ARCH_QWEN2)
        c->attention_bias = 1;
    SS_TRY(get_string(label, root, "", "hidden_act", c->arch == SS_ARCH_BITNET ? "relu2" : "silu",
                      c->hidden_act, sizeof c->hidden_act));
    SS_TRY(get_string(label, root, "", "model_type", "", c->model_type, sizeof c->model_type));
    int bos[SS_MAX_EOS_IDS], n_bos;
    SS_TRY(get_token_ids(label, root, "bos_token_id", &c->bos_token_id, bos, SS_MAX_EOS_IDS, &n_bos));
    SS_TRY(get_token_ids(label, root, "eos_token_id", &c->eos_token_id, c->eos_token_ids, SS_MAX_EOS_IDS,
                         &c->n_eos_token_ids));
    return SS_OK;
}

static ss_status quant_dtype(const char *label, const char *path, const char *s, ss_dtype *out) {
    if (strcmp(s, "int8") == 0)
        *out = SS_DTYPE_I8;
    else if (strcmp(s, "fp8_e4m3") == 0)
        *out = SS_DTYPE_F8_E4M3;
    else
        return ss_fail(SS_EFORMAT, "%s: field '%sdtype' is '%s', expected 'int8' or 'fp8_e4m3'", label, path, s);
    return SS_OK;
}

static ss_status parse_quant(const char *label, json_t *q, ss_model_config *c) {
    char method[32], wdt[16], wscheme[16], adt[16], ascheme[16];
    json_t *wq, *aq;
    int flag;
    const char *p = "quantization_config.";
    SS_TRY(get_string(label, q, p, "quant_method", NULL, method, sizeof method));
    if (strcmp(method, "compressed-tensors") == 0)
        return ss_ct_parse_config(label, q, c);
    if (strcmp(method, "slidesparse") != 0)
        return ss_fail(SS_EUNSUPPORTED, "%s: quantization_config.quant_method '%s' is not supported (expected "
                       "'slidesparse' or 'compressed-tensors')", label, method);
    SS_TRY(get_object(label, q, p, "weights", 1, &wq));
    SS_TRY(get_object(label, q, p, "activations", 1, &aq));
    const char *pw = "quantization_config.weights.", *pa = "quantization_config.activations.";
    SS_TRY(get_string(label, wq, pw, "dtype", NULL, wdt, sizeof wdt));
    SS_TRY(quant_dtype(label, pw, wdt, &c->weight_dtype));
    SS_TRY(get_string(label, wq, pw, "scheme", NULL, wscheme, sizeof wscheme));
    if (strcmp(wscheme, "per_channel") && strcmp(wscheme, "per_tensor"))
        return ss_fail(SS_EFORMAT, "%s: field '%sscheme' is '%s', expected 'per_channel' or 'per_tensor'",
                       label, pw, wscheme);
    c->per_channel = strcmp(wscheme, "per_channel") == 0;
    SS_TRY(get_bool(label, wq, pw, "static", 1, &flag));
    if (!flag)
        return ss_fail(SS_EUNSUPPORTED, "%s: field '%sstatic' is false; only static weight scales are supported", label, pw);
    ss_dtype act = SS_DTYPE_BF16;
    SS_TRY(get_string(label, aq, pa, "dtype", NULL, adt, sizeof adt));
    SS_TRY(quant_dtype(label, pa, adt, &act));
    /* The GEMM multiplies operands of one dtype (INT8 x INT8, FP8 x FP8). */
    if (act != c->weight_dtype)
        return ss_fail(SS_EUNSUPPORTED, "%s: activations dtype '%s' differs from weights dtype '%s'",
                       label, adt, wdt);
    SS_TRY(get_string(label, aq, pa, "scheme", NULL, ascheme, sizeof ascheme));
    if (strcmp(ascheme, "per_token"))
        return ss_fail(SS_EFORMAT, "%s: field '%sscheme' is '%s', expected 'per_token'", label, pa, ascheme);
    SS_TRY(get_bool(label, aq, pa, "dynamic", 1, &flag));
    if (!flag)
        return ss_fail(SS_EUNSUPPORTED, "%s: field '%sdynamic' is false; only dynamic activation scales are supported", label, pa);
    c->kind = SS_WEIGHTS_QUANTIZED;
    return SS_OK;
}

static ss_status parse_slid_tensors(const char *label, json_t *t, ss_pattern pat) {
    const char *name;
    json_t *v;
    json_object_foreach(t, name, v) {
        if (!json_is_object(v))
            return ss_fail(SS_EFORMAT, "%s: slidesparse.tensors '%s' must be an object, found %s",
                           label, name, ss_json_type_word(v));
        int k = 0, ks = 0;
        char path[96];
        snprintf(path, sizeof path, "slidesparse.tensors.%.60s.", name);
        SS_TRY(get_int(label, v, path, "K", 0, 1, INT_MAX, 0, &k));
        SS_TRY(get_int(label, v, path, "K_slid", 0, 1, INT_MAX, 0, &ks));
        if (k && ks && ss_slid_k(pat, k) != ks)
            return ss_fail(SS_EFORMAT, "%s: slidesparse.tensors '%s': K_slid %d does not match K %d (expected %lld)",
                           label, name, ks, k, (long long)ss_slid_k(pat, k));
    }
    return SS_OK;
}

static ss_status parse_slid(const char *label, json_t *b, ss_model_config *c) {
    char pat[32], pbuf[32];
    const char *p = "slidesparse.";
    SS_TRY(get_string(label, b, p, "pattern", NULL, pat, sizeof pat));
    if (ss_pattern_parse(pat, &c->pattern) != SS_OK)
        return ss_fail(SS_EFORMAT, "%s: field 'slidesparse.pattern' is '%s', expected a pattern like 2_8 or 2_inf",
                       label, pat);
    int z = 0, l = 0; /* set by get_int on success; initialized for -Wmaybe-uninitialized */
    SS_TRY(get_int(label, b, p, "Z", 0, 0, INT_MAX, c->pattern.z, &z));
    json_t *lv = json_object_get(b, "L");
    if (lv && json_is_null(lv) && ss_pattern_is_inf(c->pattern))
        l = 0;
    else
        SS_TRY(get_int(label, b, p, "L", 0, 0, INT_MAX, c->pattern.l, &l));
    if (z != c->pattern.z || l != c->pattern.l)
        return ss_fail(SS_EFORMAT, "%s: slidesparse Z=%d, L=%d disagree with pattern '%s' (%s)", label,
                       z, l, pat, ss_pattern_format(c->pattern, pbuf, sizeof pbuf));
    json_t *t;
    SS_TRY(get_object(label, b, p, "tensors", 0, &t));
    if (t)
        SS_TRY(parse_slid_tensors(label, t, c->pattern));
    /* Informational strings of any length (source is a directory path). */
    static const char *const info[] = {"source", "version"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(b, info[i]);
        if (v && !json_is_string(v))
            return ss_fail(SS_EFORMAT, "%s: field 'slidesparse.%s' must be a string, found %s", label,
                           info[i], ss_json_type_word(v));
    }
    c->kind = SS_WEIGHTS_SLID;
    return SS_OK;
}

// --- entry points --------------------------------------------------------------------------

ss_status ss_model_config_parse(const char *json, size_t len, const char *label,
                                ss_model_config *out) {
    if (!label)
        label = "config.json";
    memset(out, 0, sizeof *out);
    out->weight_dtype = SS_DTYPE_BF16;
    out->kind = SS_WEIGHTS_BF16;
    out->pattern = SS_PATTERN_DENSE;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ss_fail(SS_EFORMAT, "%s: invalid JSON at line %d column %d: %s", label, jerr.line,
                       jerr.column, jerr.text);
    ss_status s = SS_OK;
    json_t *q, *b;
    if (!json_is_object(root)) {
        s = ss_fail(SS_EFORMAT, "%s: expected a JSON object, found %s", label, ss_json_type_word(root));
        goto done;
    }
    if ((s = parse_arch(label, root, out)) != SS_OK || (s = parse_dims(label, root, out)) != SS_OK ||
        (s = parse_rest(label, root, out)) != SS_OK || (s = check_sliding_window(label, root, out)) != SS_OK)
        goto done;
    if ((s = get_object(label, root, "", "quantization_config", 0, &q)) != SS_OK ||
        (q && (s = parse_quant(label, q, out)) != SS_OK))
        goto done;
    if ((s = get_object(label, root, "", "slidesparse", 0, &b)) != SS_OK ||
        (b && (s = parse_slid(label, b, out)) != SS_OK))
        goto done;
done:
    json_decref(root);
    return s;
}

ss_status ss_model_config_load(const char *path, ss_model_config *out) {
    char *text;
    size_t len;
    SS_TRY(ss_read_file(path, SS_CONFIG_MAX, &text, &len));
    ss_status s = ss_model_config_parse(text, len, path, out);
    free(text);
    return s;
}
