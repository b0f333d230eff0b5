/* The model graph on the GPU (see engine_gpu.h): device copies of the
 * model's small tensors, scratch that grows only when a larger batch
 * arrives, the per-forward metadata upload, and the layer loop. The loop is
 * the CPU graph of forward.c with device ops; every pointer it uses is stable
 * between forwards of the same size, and every launch goes on the context's
 * stream, so decode steps can later be captured in a CUDA graph.
 */
#ifdef SS_HAVE_CUDA

#include "engine/cuda/engine_gpu.h"

#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "engine/cuda/kernels.h"

/* Device activations for up to cap_t tokens and cap_seqs sequences. */
typedef struct {
    int64_t cap_t;
    uint16_t *x;    // (t, hidden) residual stream
    uint16_t *h;    // (t, max(hidden, nh*hd)) normed input
    uint16_t *qkv;  // (t, (nh + 2*nkv) * hd)
    uint16_t *att;  // (t, nh*hd)
    uint16_t *proj; // (t, hidden) o / down output
    uint16_t *gu;   // (t, 2 * intermediate)
    uint16_t *act;  // (t, intermediate)
    int cap_seqs;
    uint16_t *last;  // (n_seqs, hidden) final-normed last rows
    float *logits;   // (n_seqs, vocab)
    int32_t *next;   // (n_seqs)
} gpu_scratch;

struct ss_engine_gpu {
    uint16_t *embed;       // (vocab, hidden)
    uint16_t *final_norm;  // (hidden)
    uint16_t *norms;       // (layers, 4, norm_len) in, post, attn_sub, ffn_sub (zero-padded)
    int64_t norm_len;      /* max(hidden, nh*hd, intermediate) */
    float *inv_freq;       // (head_dim / 2)
    gpu_scratch s;
    /* Batch metadata: one pinned host buffer, mirrored on the device. */
    size_t meta_cap;       /* bytes */
    void *meta_host, *meta_dev;
    uint16_t *hook_host;   // (t, hidden) host copy for the layer hook
    size_t hook_cap;       /* bytes */
};

// --- helpers ---------------------------------------------------------------------------------

static ss_status cuda_fail(cudaError_t e, const char *what) {
    (void)cudaGetLastError(); /* clear a non-sticky error */
    if (e == cudaErrorMemoryAllocation)
        return ss_fail(SS_ENOMEM, "engine (GPU): %s: out of device memory", what);
    return ss_fail(SS_ECUDA, "engine (GPU): %s: %s", what, cudaGetErrorString(e));
}

#define CU(call, what)                          \
    do {                                        \
        cudaError_t cu_e_ = (call);             \
        if (cu_e_ != cudaSuccess)               \
            return cuda_fail(cu_e_, (what));    \
    } while (0)

static ss_status dev_alloc(void **p, size_t bytes, const char *what) {
    *p = NULL;
    CU(cudaMalloc(p, bytes ? bytes : 16), what);
    return SS_OK;
}

static ss_status upload(void **dst, const void *src, size_t bytes, const char *what) {
    SS_TRY(dev_alloc(dst, bytes, what));
    CU(cudaMemcpy(*dst, src, bytes, cudaMemcpyHostToDevice), what);
    return SS_OK;
}

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

static void scratch_free(gpu_scratch *s) {
    cudaFree(s->x);
    cudaFree(s->h);
    cudaFree(s->qkv);
    cudaFree(s->att);
    cudaFree(s->proj);
    cudaFree(s->gu);
    cudaFree(s->act);
    cudaFree(s->last);
    cudaFree(s->logits);
    cudaFree(s->next);
    memset(s, 0, sizeof *s);
}

/* Grows the activations to hold t tokens (rounded up, so a growing prefill
 * does not reallocate every step) and n_seqs sequences. */
static ss_status scratch_reserve(const ss_model_config *c, gpu_scratch *s, int64_t t, int n_seqs) {
    if (t > s->cap_t) {
        int64_t cap = s->cap_t ? s->cap_t : 256;
        while (cap < t)
            cap *= 2;
        size_t tt = (size_t)cap, hd = (size_t)c->head_dim, hid = (size_t)c->hidden_size;
        size_t qd = (size_t)c->num_attention_heads * hd, kvd = (size_t)c->num_key_value_heads * hd;
        size_t hmax = qd > hid ? qd : hid, inter = (size_t)c->intermediate_size;
        cudaFree(s->x); cudaFree(s->h); cudaFree(s->qkv); cudaFree(s->att);
        cudaFree(s->proj); cudaFree(s->gu); cudaFree(s->act);
        s->x = s->h = s->qkv = s->att = s->proj = s->gu = s->act = NULL;
        s->cap_t = 0;
        SS_TRY(dev_alloc((void **)&s->x, tt * hid * 2, "scratch x"));
        SS_TRY(dev_alloc((void **)&s->h, tt * hmax * 2, "scratch h"));
        SS_TRY(dev_alloc((void **)&s->qkv, tt * (qd + 2 * kvd) * 2, "scratch qkv"));
        SS_TRY(dev_alloc((void **)&s->att, tt * qd * 2, "scratch att"));
        SS_TRY(dev_alloc((void **)&s->proj, tt * hid * 2, "scratch proj"));
        SS_TRY(dev_alloc((void **)&s->gu, tt * 2 * inter * 2, "scratch gate_up"));
        SS_TRY(dev_alloc((void **)&s->act, tt * inter * 2, "scratch act"));
        s->cap_t = cap;
    }
    if (n_seqs > s->cap_seqs) {
        int cap = s->cap_seqs ? s->cap_seqs : 64;
        while (cap < n_seqs)
            cap *= 2;
        cudaFree(s->last); cudaFree(s->logits); cudaFree(s->next);
        s->last = NULL; s->logits = NULL; s->next = NULL;
        s->cap_seqs = 0;
        SS_TRY(dev_alloc((void **)&s->last, (size_t)cap * (size_t)c->hidden_size * 2, "scratch last rows"));
        SS_TRY(dev_alloc((void **)&s->logits, (size_t)cap * (size_t)c->vocab_size * sizeof(float), "scratch logits"));
        SS_TRY(dev_alloc((void **)&s->next, (size_t)cap * sizeof(int32_t), "scratch next ids"));
        s->cap_seqs = cap;
    }
    return SS_OK;
}

static ss_status meta_reserve(ss_engine_gpu *g, size_t bytes) {
    if (bytes <= g->meta_cap)
        return SS_OK;
    size_t cap = g->meta_cap ? g->meta_cap : 4096;
    while (cap < bytes)
        cap *= 2;
    cudaFreeHost(g->meta_host);
    cudaFree(g->meta_dev);
    g->meta_host = g->meta_dev = NULL;
    g->meta_cap = 0;
    CU(cudaMallocHost(&g->meta_host, cap), "pinned batch metadata");
    SS_TRY(dev_alloc(&g->meta_dev, cap, "batch metadata"));
    g->meta_cap = cap;
    return SS_OK;
}

// --- load ------------------------------------------------------------------------------------

void ss_engine_gpu_destroy(ss_engine_gpu *g) {
    if (!g)
        return;
    cudaFree(g->embed);
    cudaFree(g->final_norm);
    cudaFree(g->norms);
    cudaFree(g->inv_freq);
    scratch_free(&g->s);
    cudaFreeHost(g->meta_host);
    cudaFree(g->meta_dev);
    free(g->hook_host);
    free(g);
}

/* The four norm weights of every layer in one device buffer. */
static ss_status upload_norms(ss_engine_gpu *g, const ss_model *m) {
    const ss_model_config *c = &m->cfg;
    int64_t qd = (int64_t)c->num_attention_heads * c->head_dim, len = c->hidden_size;
    if (qd > len)
        len = qd;
    if (c->intermediate_size > len)
        len = c->intermediate_size;
    g->norm_len = len;
    size_t per_layer = 4 * (size_t)len;
    uint16_t *host = calloc((size_t)c->num_hidden_layers * per_layer, sizeof *host);
    if (!host)
        return ss_fail(SS_ENOMEM, "engine (GPU): out of host memory for norm weights");
    for (int i = 0; i < c->num_hidden_layers; i++) {
        const ss_layer *L = &m->layers[i];
        uint16_t *dst = host + (size_t)i * per_layer;
        memcpy(dst, L->in_norm, (size_t)c->hidden_size * 2);
        memcpy(dst + len, L->post_norm, (size_t)c->hidden_size * 2);
        if (L->attn_sub_norm)
            memcpy(dst + 2 * len, L->attn_sub_norm, (size_t)qd * 2);
        if (L->ffn_sub_norm)
            memcpy(dst + 3 * len, L->ffn_sub_norm, (size_t)c->intermediate_size * 2);
    }
    ss_status s = upload((void **)&g->norms, host, (size_t)c->num_hidden_layers * per_layer * 2, "norm weights");
    free(host);
    return s;
}

ss_status ss_engine_gpu_init(ss_model *m) {
    const ss_model_config *c = &m->cfg;
    if (c->head_dim > SS_ATTN_MAX_HD)
        return ss_fail(SS_EUNSUPPORTED, "engine (GPU): head_dim %d, the attention kernel handles <= %d",
                       c->head_dim, SS_ATTN_MAX_HD);
    ss_engine_gpu *g = calloc(1, sizeof *g);
    if (!g)
        return ss_fail(SS_ENOMEM, "engine (GPU): out of memory");
    ss_status s;
    cudaError_t e = cudaSetDevice(ss_context_device(m->ctx));
    if (e != cudaSuccess) {
        s = cuda_fail(e, "cudaSetDevice");
        goto fail;
    }
    size_t h = (size_t)c->hidden_size;
    if ((s = upload((void **)&g->embed, m->embed, (size_t)c->vocab_size * h * 2, "embeddings")) != SS_OK ||
        (s = upload((void **)&g->final_norm, m->final_norm, h * 2, "final norm")) != SS_OK ||
        (s = upload((void **)&g->inv_freq, m->inv_freq, (size_t)c->head_dim / 2 * sizeof(float), "rope inv_freq")) != SS_OK ||
        (s = upload_norms(g, m)) != SS_OK || (s = scratch_reserve(c, &g->s, 256, 64)) != SS_OK ||
        (s = meta_reserve(g, 64 * 1024)) != SS_OK)
        goto fail;
    m->gpu = g;
    return SS_OK;
fail:
    ss_engine_gpu_destroy(g);
    return s;
}

// --- KV pool ---------------------------------------------------------------------------------

ss_status ss_engine_gpu_kv_alloc(ss_kv_cache *c, size_t elems) {
    size_t bytes = elems * sizeof(uint16_t);
    c->on_device = 1;
    SS_TRY(dev_alloc((void **)&c->k, bytes, "kv cache keys"));
    SS_TRY(dev_alloc((void **)&c->v, bytes, "kv cache values"));
    /* Zeroed like the CPU pool: slots are only read after they are written,
     * but a clean pool keeps memcheck's initcheck quiet. */
    CU(cudaMemset(c->k, 0, bytes), "kv cache memset");
    CU(cudaMemset(c->v, 0, bytes), "kv cache memset");
    return SS_OK;
}

void ss_engine_gpu_kv_free(ss_kv_cache *c) {
    cudaFree(c->k);
    cudaFree(c->v);
    c->k = c->v = NULL;
}

// --- batch metadata --------------------------------------------------------------------------

/* Where each section lives in the metadata buffer (byte offsets, 16-aligned). */
typedef struct {
    size_t tok, ids, last, tables, tiles, total;
    int max_blocks;
    int64_t n_tiles;
    int heads_per_tile, rows_per_tile;
} meta_layout;

static meta_layout layout_batch(const ss_model_config *c, const ss_seq_step *seqs, int n_seqs, int64_t t) {
    meta_layout L = {0};
    int group = c->num_attention_heads / c->num_key_value_heads;
    L.heads_per_tile = group < SS_ATTN_ITEMS ? group : SS_ATTN_ITEMS;
    L.rows_per_tile = SS_ATTN_ITEMS / L.heads_per_tile;
    int head_splits = (group + L.heads_per_tile - 1) / L.heads_per_tile;
    /* Clamped to what a valid batch can need: an invalid one is sized small
     * here and rejected, with its message, by ss_engine_prepare_batch. */
    int64_t end_max = c->max_position_embeddings;
    for (int i = 0; i < n_seqs; i++) {
        int64_t end = seqs[i].start_pos + seqs[i].n_tokens;
        end = end < 1 ? 1 : end > end_max ? end_max : end;
        int64_t nb = (end + SS_KV_BLOCK - 1) / SS_KV_BLOCK;
        if (nb > L.max_blocks)
            L.max_blocks = (int)nb;
        L.n_tiles += (int64_t)c->num_key_value_heads * head_splits *
                     ((seqs[i].n_tokens + L.rows_per_tile - 1) / L.rows_per_tile);
    }
    size_t at = 0;
    L.tok = at;    at += align16((size_t)t * sizeof(ss_tok_info));
    L.ids = at;    at += align16((size_t)t * sizeof(int32_t));
    L.last = at;   at += align16((size_t)n_seqs * sizeof(int32_t));
    L.tables = at; at += align16((size_t)n_seqs * (size_t)L.max_blocks * sizeof(int32_t));
    L.tiles = at;  at += align16((size_t)L.n_tiles * sizeof(ss_attn_tile));
    L.total = at;
    return L;
}

/* Fills the pinned buffer (after prepare_batch reserved the blocks). */
static void fill_meta(const ss_model_config *c, const meta_layout *L, const ss_seq_step *seqs,
                      int n_seqs, uint8_t *base) {
    int32_t *ids = (int32_t *)(base + L->ids), *last = (int32_t *)(base + L->last);
    int32_t *tables = (int32_t *)(base + L->tables);
    ss_attn_tile *tiles = (ss_attn_tile *)(base + L->tiles);
    int group = c->num_attention_heads / c->num_key_value_heads;
    int64_t row0 = 0, nt = 0;
    for (int i = 0; i < n_seqs; i++) {
        const ss_seq_step *q = &seqs[i];
        memcpy(ids + row0, q->tokens, (size_t)q->n_tokens * sizeof *ids);
        last[i] = (int32_t)(row0 + q->n_tokens - 1);
        memset(tables + (size_t)i * L->max_blocks, 0, (size_t)L->max_blocks * sizeof *tables);
        memcpy(tables + (size_t)i * L->max_blocks, q->kv->blocks,
               (size_t)(q->kv->n_blocks < L->max_blocks ? q->kv->n_blocks : L->max_blocks) * sizeof *tables);
        for (int kvh = 0; kvh < c->num_key_value_heads; kvh++)
            for (int hs = 0; hs < group; hs += L->heads_per_tile)
                for (int64_t r = 0; r < q->n_tokens; r += L->rows_per_tile) {
                    int64_t nq = q->n_tokens - r < L->rows_per_tile ? q->n_tokens - r : L->rows_per_tile;
                    int nhp = group - hs < L->heads_per_tile ? group - hs : L->heads_per_tile;
                    tiles[nt++] = (ss_attn_tile){.seq = i, .row0 = (int32_t)(row0 + r), .nq = (int32_t)nq,
                                                 .head0 = kvh * group + hs, .nheads = nhp};
                }
        row0 += q->n_tokens;
    }
}

// --- forward ---------------------------------------------------------------------------------

typedef struct {
    const ss_tok_info *tok;
    const int32_t *tables;
    const ss_attn_tile *tiles;
    int max_blocks;
    int64_t n_tiles;
} dev_batch;

static ss_status layer_forward(ss_model *m, ss_kv_cache *kc, int li, const dev_batch *b, int64_t t,
                               cudaStream_t st) {
    const ss_model_config *cfg = &m->cfg;
    ss_engine_gpu *g = m->gpu;
    gpu_scratch *s = &g->s;
    const ss_layer *L = &m->layers[li];
    int nh = cfg->num_attention_heads, nkv = cfg->num_key_value_heads, hd = cfg->head_dim;
    int64_t h = cfg->hidden_size, qd = (int64_t)nh * hd, inter = cfg->intermediate_size;
    float eps = (float)cfg->rms_norm_eps;
    const uint16_t *norms = g->norms + (size_t)li * 4 * (size_t)g->norm_len;
    size_t layer_off = ss_kv_offset(kc, li, 0, 0);

    CU(ss_rmsnorm_cuda(s->x, NULL, norms, t, h, eps, s->h, st), "input_layernorm");
    SS_TRY(ss_linear_forward(L->qkv, s->h, t, s->qkv));
    CU(ss_rope_kv_write_cuda(s->qkv, b->tok, t, nh, nkv, hd, g->inv_freq, kc->k + layer_off,
                             kc->v + layer_off, b->tables, b->max_blocks, st), "rope + kv write");
    CU(ss_attention_cuda(s->qkv, b->tok, b->tiles, b->n_tiles, b->tables, b->max_blocks,
                         kc->k + layer_off, kc->v + layer_off, nh, nkv, hd, s->att, st), "attention");
    const uint16_t *o_in = s->att;
    if (L->attn_sub_norm) {
        CU(ss_rmsnorm_cuda(s->att, NULL, norms + 2 * g->norm_len, t, qd, eps, s->h, st), "attn_sub_norm");
        o_in = s->h;
    }
    SS_TRY(ss_linear_forward(L->o, o_in, t, s->proj));
    CU(ss_residual_add_cuda(s->x, s->proj, t, h, st), "residual add");

    CU(ss_rmsnorm_cuda(s->x, NULL, norms + g->norm_len, t, h, eps, s->h, st), "post_attention_layernorm");
    SS_TRY(ss_linear_forward(L->gate_up, s->h, t, s->gu));
    CU(ss_glu_cuda(s->gu, t, inter, cfg->arch == SS_ARCH_BITNET, s->act, st), "glu");
    const uint16_t *d_in = s->act;
    if (L->ffn_sub_norm) {
        /* gu is free again: its first half takes the normed activation. */
        CU(ss_rmsnorm_cuda(s->act, NULL, norms + 3 * g->norm_len, t, inter, eps, s->gu, st), "ffn_sub_norm");
        d_in = s->gu;
    }
    SS_TRY(ss_linear_forward(L->down, d_in, t, s->proj));
    CU(ss_residual_add_cuda(s->x, s->proj, t, h, st), "residual add");
    return SS_OK;
}

/* Hands the residual stream to the layer hook (a host copy: tests only). */
static ss_status call_hook(ss_model *m, int li, int64_t t, cudaStream_t st) {
    ss_engine_gpu *g = m->gpu;
    size_t bytes = (size_t)t * (size_t)m->cfg.hidden_size * 2;
    if (bytes > g->hook_cap) {
        uint16_t *p = realloc(g->hook_host, bytes);
        if (!p)
            return ss_fail(SS_ENOMEM, "engine (GPU): layer hook buffer of %zu bytes", bytes);
        g->hook_host = p;
        g->hook_cap = bytes;
    }
    CU(cudaMemcpyAsync(g->hook_host, g->s.x, bytes, cudaMemcpyDeviceToHost, st), "layer hook copy");
    CU(cudaStreamSynchronize(st), "layer hook sync");
    m->hook(m->hook_user, li, g->hook_host, t);
    return SS_OK;
}

static ss_status forward(ss_model *m, ss_kv_cache *c, const ss_seq_step *seqs, int n_seqs, int64_t t,
                         float *logits, int32_t *next, cudaStream_t st) {
    const ss_model_config *cfg = &m->cfg;
    ss_engine_gpu *g = m->gpu;
    if (!c->on_device)
        return ss_fail(SS_EINVAL, "forward: the KV cache is in host memory but the model runs on the GPU (create the cache after loading)");
    if (t > INT32_MAX)
        return ss_fail(SS_EINVAL, "forward: %lld tokens in one batch, expected < 2^31", (long long)t);
    meta_layout L = layout_batch(cfg, seqs, n_seqs, t);
    SS_TRY(meta_reserve(g, L.total));
    SS_TRY(scratch_reserve(cfg, &g->s, t, n_seqs));
    uint8_t *host = g->meta_host, *dev = g->meta_dev;
    SS_TRY(ss_engine_prepare_batch(m, c, seqs, n_seqs, (ss_tok_info *)(host + L.tok)));
    fill_meta(cfg, &L, seqs, n_seqs, host);
    CU(cudaMemcpyAsync(dev, host, L.total, cudaMemcpyHostToDevice, st), "batch metadata upload");
    dev_batch b = {.tok = (const ss_tok_info *)(dev + L.tok), .tables = (const int32_t *)(dev + L.tables),
                   .tiles = (const ss_attn_tile *)(dev + L.tiles), .max_blocks = L.max_blocks,
                   .n_tiles = L.n_tiles};
    gpu_scratch *s = &g->s;
    int64_t h = cfg->hidden_size;
    CU(ss_embed_cuda(g->embed, (const int32_t *)(dev + L.ids), t, h, s->x, st), "embedding gather");
    for (int li = 0; li < cfg->num_hidden_layers; li++) {
        SS_TRY(layer_forward(m, c, li, &b, t, st));
        if (m->hook)
            SS_TRY(call_hook(m, li, t, st));
    }
    /* Logits only for the last new token of each sequence. */
    CU(ss_rmsnorm_cuda(s->x, (const int32_t *)(dev + L.last), g->final_norm, n_seqs, h,
                       (float)cfg->rms_norm_eps, s->last, st), "final norm");
    SS_TRY(ss_linear_forward(m->lm_head, s->last, n_seqs, s->logits));
    if (next) {
        CU(ss_argmax_cuda(s->logits, n_seqs, cfg->vocab_size, s->next, st), "argmax");
        CU(cudaMemcpyAsync(next, s->next, (size_t)n_seqs * sizeof *next, cudaMemcpyDeviceToHost, st),
           "next ids copy");
    }
    if (logits)
        CU(cudaMemcpyAsync(logits, s->logits, (size_t)n_seqs * (size_t)cfg->vocab_size * sizeof *logits,
                           cudaMemcpyDeviceToHost, st), "logits copy");
    /* The one synchronization: results are read, and the pinned metadata may
     * be overwritten by the next forward. */
    CU(cudaStreamSynchronize(st), "forward");
    for (int i = 0; i < n_seqs; i++) {
        int64_t end = seqs[i].start_pos + seqs[i].n_tokens;
        if (end > seqs[i].kv->n_tokens)
            seqs[i].kv->n_tokens = end;
    }
    return SS_OK;
}

ss_status ss_engine_gpu_forward(ss_model *m, ss_kv_cache *c, const ss_seq_step *seqs, int n_seqs,
                                int64_t t, float *logits, int32_t *next) {
    cudaStream_t st = (cudaStream_t)ss_context_stream(m->ctx);
    ss_status s = forward(m, c, seqs, n_seqs, t, logits, next, st);
    if (s != SS_OK) {
        /* Work queued before the failure may still read the pinned metadata. */
        (void)cudaStreamSynchronize(st);
        (void)cudaGetLastError();
    }
    return s;
}

#else
typedef int ss_engine_gpu_not_built; /* CPU-only build: nothing here */
#endif /* SS_HAVE_CUDA */
