/* Loading a checkpoint into an ss_model: validates every tensor against
 * config.json, fuses q/k/v and gate/up row-wise into one ss_linear each, and
 * keeps norms and embeddings in BF16. */
#include "engine/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype_inline.h"
#include "core/error.h"
#include "engine/cuda/engine_gpu.h"

const ss_engine_ops ss_engine_ops_cpu = {
    .rmsnorm = ss_rmsnorm_cpu,
    .glu = ss_glu_cpu,
    .rope = ss_rope_cpu,
    .kv_write = ss_kv_write_cpu,
    .attention = ss_attention_cpu,
    .residual_add = ss_residual_add_cpu,
};

// --- tensors -----------------------------------------------------------------------

static const char *shape_str(const ss_st_entry *e, char *buf, size_t n) {
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < e->ndim && at < n; d++)
        at += (size_t)snprintf(buf + at, n - at, "%s%lld", d ? ", " : "", (long long)e->shape[d]);
    if (at < n)
        snprintf(buf + at, n - at, "]");
    return buf;
}

/* The tensor `name` with shape (rows) or (rows, cols) (cols < 0: 1-D). */
static ss_status find_shaped(const ss_checkpoint *ck, const char *name, int64_t rows, int64_t cols,
                             const ss_st_entry **out) {
    const ss_st_entry *e = ss_checkpoint_find(ck, name);
    if (!e)
        return ss_fail(SS_EFORMAT, "%s: tensor '%s' is missing", ss_checkpoint_dir(ck), name);
    int want_nd = cols < 0 ? 1 : 2;
    if (e->ndim != want_nd || e->shape[0] != rows || (cols >= 0 && e->shape[1] != cols)) {
        char got[96];
        if (cols < 0)
            return ss_fail(SS_EFORMAT, "%s: tensor '%s': expected shape [%lld] from config.json, found %s",
                           ss_checkpoint_dir(ck), name, (long long)rows, shape_str(e, got, sizeof got));
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': expected shape [%lld, %lld] from config.json, found %s",
                       ss_checkpoint_dir(ck), name, (long long)rows, (long long)cols,
                       shape_str(e, got, sizeof got));
    }
    *out = e;
    return SS_OK;
}

/* Copies a float tensor (BF16, F16 or F32) into dst as BF16 (exact for BF16
 * sources, nearest-even for the others). */
static ss_status to_bf16(const ss_st_entry *e, uint16_t *dst, size_t n) {
    if (!ss_dtype_to_bf16(e->dtype, e->data, n, dst))
        return ss_fail(SS_EFORMAT, "%s: tensor '%s': expected dtype BF16, F16 or F32, found %s",
                       e->file, e->name, ss_dtype_name(e->dtype));
    return SS_OK;
}

/* A 1-D (n) or 2-D (rows, cols) float tensor as a fresh BF16 copy. */
static ss_status load_bf16(const ss_checkpoint *ck, const char *name, int64_t rows, int64_t cols,
                           uint16_t **out) {
    const ss_st_entry *e;
    SS_TRY(find_shaped(ck, name, rows, cols, &e));
    size_t n = (size_t)rows * (size_t)(cols < 0 ? 1 : cols);
    uint16_t *p = malloc(n * sizeof *p);
    if (!p)
        return ss_fail(SS_ENOMEM, "%s: tensor '%s': out of memory", ss_checkpoint_dir(ck), name);
    ss_status s = to_bf16(e, p, n);
    if (s != SS_OK) {
        free(p);
        return s;
    }
    *out = p;
    return SS_OK;
}

// --- projections ---------------------------------------------------------------------

typedef struct {
    const char *name; /* "self_attn.q_proj" */
    int64_t n;
} proj_part;

/* Copies one part's weight rows, scales and bias into the fused buffers at row r0. */
static ss_status load_part(const ss_model *m, const ss_checkpoint *ck, const char *base,
                           int64_t n, int64_t wcols, ss_dtype wdt, int with_bias, int64_t r0,
                           uint8_t *w, float *scale, uint16_t *bias) {
    char name[256];
    const ss_st_entry *e;
    snprintf(name, sizeof name, "%s.weight", base);
    SS_TRY(find_shaped(ck, name, n, wcols, &e));
    size_t row_bytes = (size_t)wcols * ss_dtype_size(wdt);
    if (wdt == SS_DTYPE_BF16) {
        /* Unquantized weights: BF16 as is, F16 and F32 rounded to BF16. */
        SS_TRY(to_bf16(e, (uint16_t *)(w + (size_t)r0 * row_bytes), (size_t)n * (size_t)wcols));
    } else {
        if (e->dtype != wdt)
            return ss_fail(SS_EFORMAT, "%s: tensor '%s': expected dtype %s (quantization_config), found %s",
                           e->file, name, ss_dtype_name(wdt), ss_dtype_name(e->dtype));
        memcpy(w + (size_t)r0 * row_bytes, e->data, (size_t)n * row_bytes);
    }
    if (scale) {
        snprintf(name, sizeof name, "%s.weight_scale", base);
        e = ss_checkpoint_find(ck, name);
        if (!e)
            return ss_fail(SS_EFORMAT, "%s: tensor '%s' is missing (quantized weights need a scale)",
                           ss_checkpoint_dir(ck), name);
        int64_t numel = e->ndim == 0 ? 1 : e->shape[0];
        if (e->dtype != SS_DTYPE_F32 || e->ndim > 1 || (numel != n && numel != 1)) {
            char got[96];
            return ss_fail(SS_EFORMAT, "%s: tensor '%s': expected F32 [%lld] or [1], found %s %s",
                           ss_checkpoint_dir(ck), name, (long long)n, ss_dtype_name(e->dtype),
                           shape_str(e, got, sizeof got));
        }
        /* A per-tensor scale becomes n equal per-channel scales of the fused layer. */
        for (int64_t i = 0; i < n; i++)
            memcpy(&scale[r0 + i], (const float *)e->data + (numel == 1 ? 0 : i), sizeof(float));
    }
    if (with_bias) {
        snprintf(name, sizeof name, "%s.bias", base);
        SS_TRY(find_shaped(ck, name, n, -1, &e));
        SS_TRY(to_bf16(e, bias + r0, (size_t)n));
    }
    return SS_OK;
}

/* One ss_linear over the parts' rows concatenated (q|k|v, gate|up, or one). */
static ss_status load_linear(ss_model *m, const ss_checkpoint *ck, int layer, const proj_part *parts,
                             int n_parts, int64_t k, int with_bias, const char *label,
                             ss_linear **out) {
    const ss_model_config *c = &m->cfg;
    ss_dtype wdt = c->kind == SS_WEIGHTS_BF16 ? SS_DTYPE_BF16 : c->weight_dtype;
    ss_pattern pat = c->kind == SS_WEIGHTS_SLID ? c->pattern : SS_PATTERN_DENSE;
    int64_t wcols = ss_pattern_is_dense(pat) ? k : ss_slid_k(pat, k);
    int64_t n_total = 0;
    for (int i = 0; i < n_parts; i++)
        n_total += parts[i].n;
    uint8_t *w = malloc((size_t)n_total * (size_t)wcols * ss_dtype_size(wdt));
    float *scale = wdt == SS_DTYPE_BF16 ? NULL : malloc((size_t)n_total * sizeof *scale);
    uint16_t *bias = with_bias ? malloc((size_t)n_total * sizeof *bias) : NULL;
    ss_status s = SS_OK;
    char name[256];
    if (!w || (wdt != SS_DTYPE_BF16 && !scale) || (with_bias && !bias)) {
        s = ss_fail(SS_ENOMEM, "%s: layer %d %s: out of memory", ss_checkpoint_dir(ck), layer, label);
        goto fail;
    }
    for (int i = 0, r0 = 0; i < n_parts; r0 += (int)parts[i].n, i++) {
        snprintf(name, sizeof name, "model.layers.%d.%s", layer, parts[i].name);
        s = load_part(m, ck, name, parts[i].n, wcols, wdt, with_bias, r0, w, scale, bias);
        if (s != SS_OK)
            goto fail;
    }
    snprintf(name, sizeof name, "model.layers.%d.%s", layer, label);
    ss_linear_desc d = ss_linear_desc_default(name, n_total, k, wdt);
    d.pattern = pat;
    ss_linear_weights lw = {.w = w, .w_scale = scale, .bias = bias};
    s = ss_linear_create(m->ctx, m->backend, &d, &lw, out);
fail:
    free(w);
    free(scale);
    free(bias);
    return s;
}

static ss_status load_layer(ss_model *m, const ss_checkpoint *ck, int i) {
    const ss_model_config *c = &m->cfg;
    ss_layer *L = &m->layers[i];
    int64_t h = c->hidden_size, inter = c->intermediate_size;
    int64_t qd = (int64_t)c->num_attention_heads * c->head_dim;
    int64_t kvd = (int64_t)c->num_key_value_heads * c->head_dim;
    const proj_part qkv[] = {{"self_attn.q_proj", qd}, {"self_attn.k_proj", kvd}, {"self_attn.v_proj", kvd}};
    const proj_part o[] = {{"self_attn.o_proj", h}};
    const proj_part gu[] = {{"mlp.gate_proj", inter}, {"mlp.up_proj", inter}};
    const proj_part down[] = {{"mlp.down_proj", h}};
    char name[256];
    SS_TRY(load_linear(m, ck, i, qkv, 3, h, c->attention_bias, "self_attn.qkv_proj", &L->qkv));
    SS_TRY(load_linear(m, ck, i, o, 1, qd, 0, "self_attn.o_proj", &L->o));
    SS_TRY(load_linear(m, ck, i, gu, 2, h, 0, "mlp.gate_up_proj", &L->gate_up));
    SS_TRY(load_linear(m, ck, i, down, 1, inter, 0, "mlp.down_proj", &L->down));
    snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", i);
    SS_TRY(load_bf16(ck, name, h, -1, &L->in_norm));
    snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", i);
    SS_TRY(load_bf16(ck, name, h, -1, &L->post_norm));
    if (c->arch == SS_ARCH_BITNET) {
        snprintf(name, sizeof name, "model.layers.%d.self_attn.attn_sub_norm.weight", i);
        SS_TRY(load_bf16(ck, name, qd, -1, &L->attn_sub_norm));
        snprintf(name, sizeof name, "model.layers.%d.mlp.ffn_sub_norm.weight", i);
        SS_TRY(load_bf16(ck, name, inter, -1, &L->ffn_sub_norm));
    }
    return SS_OK;
}

// --- model -------------------------------------------------------------------------

/* What the graph assumes of the config, beyond what io validated. */
static ss_status check_config(const char *dir, const ss_model_config *c) {
    if (c->arch != SS_ARCH_BITNET && c->arch != SS_ARCH_LLAMA && c->arch != SS_ARCH_QWEN2)
        return ss_fail(SS_EUNSUPPORTED, "%s: unsupported architecture '%s'", dir, c->architecture);
    const char *want_act = c->arch == SS_ARCH_BITNET ? "relu2" : "silu";
    if (strcmp(c->hidden_act, want_act) != 0)
        return ss_fail(SS_EUNSUPPORTED, "%s: %s with hidden_act '%s' is unsupported (expected '%s')", dir,
                       c->architecture, c->hidden_act, want_act);
    if (c->num_key_value_heads <= 0 || c->num_attention_heads % c->num_key_value_heads != 0)
        return ss_fail(SS_EFORMAT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                       dir, c->num_attention_heads, c->num_key_value_heads);
    if (c->head_dim % 2 != 0 || c->head_dim > 512)
        return ss_fail(SS_EUNSUPPORTED, "%s: head_dim %d, expected even and <= 512", dir, c->head_dim);
    return SS_OK;
}

/* Which backends can run which checkpoint kind (one line when not). */
ss_status ss_model_check_backend(const char *dir, const ss_model_config *c, ss_backend b) {
    char pb[32];
    if (c->kind == SS_WEIGHTS_SLID && b == SS_BACKEND_CUBLASLT)
        return ss_fail(SS_EINVAL, "%s: SlideSparse checkpoint (pattern %s) cannot run on the dense backend cublaslt; use --backend cusparselt or cpu",
                       dir, ss_pattern_format(c->pattern, pb, sizeof pb));
    if (c->kind != SS_WEIGHTS_SLID && b == SS_BACKEND_CUSPARSELT)
        return ss_fail(SS_EINVAL, "%s: backend cusparselt needs a SlideSparse checkpoint, this one is %s",
                       dir, c->kind == SS_WEIGHTS_BF16 ? "dense unquantized" : "dense quantized");
    return SS_OK;
}

ss_status ss_model_load(ss_context *ctx, ss_backend b, const char *dir, ss_model **out) {
    *out = NULL;
    ss_checkpoint *ck = NULL;
    ss_model *m = NULL;
    ss_status s = ss_checkpoint_open(dir, &ck);
    if (s != SS_OK)
        return s;
    const ss_model_config *c = ss_checkpoint_config(ck);
    if ((s = check_config(dir, c)) != SS_OK || (s = ss_model_check_backend(dir, c, b)) != SS_OK)
        goto fail;
#ifndef SS_HAVE_CUDA
    if (b != SS_BACKEND_CPU) {
        s = ss_fail(SS_EUNSUPPORTED, "%s: backend %s: this build has no CUDA (use --backend cpu)", dir,
                    ss_backend_name(b));
        goto fail;
    }
#endif
    if ((b == SS_BACKEND_CPU) != (ss_context_device(ctx) < 0)) {
        s = ss_fail(SS_EINVAL, "%s: backend %s needs a %s context, found device %d", dir, ss_backend_name(b),
                    b == SS_BACKEND_CPU ? "CPU (device -1)" : "CUDA (device >= 0)", ss_context_device(ctx));
        goto fail;
    }
    ss_dtype wdt = c->kind == SS_WEIGHTS_BF16 ? SS_DTYPE_BF16 : c->weight_dtype;
    const char *why = ss_linear_supports(ctx, b, wdt, c->kind == SS_WEIGHTS_SLID ? c->pattern : SS_PATTERN_DENSE);
    if (why) {
        s = ss_fail(SS_EUNSUPPORTED, "%s: backend %s cannot run %s weights: %s", dir, ss_backend_name(b),
                    ss_dtype_name(wdt), why);
        goto fail;
    }
    m = calloc(1, sizeof *m);
    if (!m || !(m->layers = calloc((size_t)c->num_hidden_layers, sizeof *m->layers)) ||
        !(m->inv_freq = malloc((size_t)c->head_dim / 2 * sizeof *m->inv_freq))) {
        s = ss_fail(SS_ENOMEM, "%s: out of memory", dir);
        goto fail;
    }
    m->cfg = *c;
    m->ctx = ctx;
    m->backend = b;
    m->ops = &ss_engine_ops_cpu; /* the GPU engine picks its table here */
    ss_rope_inv_freq(c->rope_theta, c->head_dim, m->inv_freq);
    int64_t v = c->vocab_size, h = c->hidden_size;
    if ((s = load_bf16(ck, "model.embed_tokens.weight", v, h, &m->embed)) != SS_OK ||
        (s = load_bf16(ck, "model.norm.weight", h, -1, &m->final_norm)) != SS_OK)
        goto fail;
    for (int i = 0; i < c->num_hidden_layers; i++)
        if ((s = load_layer(m, ck, i)) != SS_OK)
            goto fail;
    {
        uint16_t *head = m->embed, *own = NULL;
        if (!c->tie_word_embeddings) {
            if ((s = load_bf16(ck, "lm_head.weight", v, h, &own)) != SS_OK)
                goto fail;
            head = own;
        }
        ss_linear_desc d = ss_linear_desc_default("lm_head", v, h, SS_DTYPE_BF16);
        d.out_dtype = SS_DTYPE_F32;
        ss_linear_weights lw = {.w = head};
        ss_backend hb = b == SS_BACKEND_CPU ? SS_BACKEND_CPU : SS_BACKEND_CUBLASLT;
        s = ss_linear_create(ctx, hb, &d, &lw, &m->lm_head);
        free(own);
        if (s != SS_OK)
            goto fail;
    }
#ifdef SS_HAVE_CUDA
    /* The device copies of embeddings and norms, and the scratch; the host
     * copies stay (the layer hook and the CPU-side checks read them). */
    if (b != SS_BACKEND_CPU && (s = ss_engine_gpu_init(m)) != SS_OK)
        goto fail;
#endif
    ss_checkpoint_close(ck);
    *out = m;
    return SS_OK;
fail:
    ss_model_destroy(m);
    ss_checkpoint_close(ck);
    return s;
}

void ss_model_destroy(ss_model *m) {
    if (!m)
        return;
    for (int i = 0; m->layers && i < m->cfg.num_hidden_layers; i++) {
        ss_layer *L = &m->layers[i];
        ss_linear_destroy(L->qkv);
        ss_linear_destroy(L->o);
        ss_linear_destroy(L->gate_up);
        ss_linear_destroy(L->down);
        free(L->in_norm);
        free(L->post_norm);
        free(L->attn_sub_norm);
        free(L->ffn_sub_norm);
    }
    free(m->layers);
#ifdef SS_HAVE_CUDA
    ss_engine_gpu_destroy(m->gpu);
#endif
    ss_linear_destroy(m->lm_head);
    free(m->embed);
    free(m->final_norm);
    free(m->inv_freq);
    free(m);
}

const ss_model_config *ss_model_get_config(const ss_model *m) { return &m->cfg; }

void ss_model_set_layer_hook(ss_model *m, ss_layer_hook fn, void *user) {
    m->hook = fn;
    m->hook_user = user;
}
