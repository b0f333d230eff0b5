/* The model graph on the GPU (see engine_gpu.h): device copies of the
 * model's small tensors, scratch that grows only when a larger batch
 * arrives, the per-forward metadata upload, and the layer loop. The loop is
 * the CPU graph of forward.c with device ops; every pointer it uses is stable
 * between forwards of the same size, and every launch goes on the context's
 * stream, so decode steps are captured in CUDA graphs (on by default;
 * SS_CUDA_GRAPHS=0 turns them off; see "decode graphs" below).
 */
#ifdef SS_HAVE_CUDA

#include "engine/cuda/engine_gpu.h"

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels.h"
#include "stage_clock.h"
#include "linear/cuda_state.h" /* the context's GEMM workspace and scratch: addresses a graph bakes in */

/* Device activations for up to cap_t tokens and cap_seqs sequences. */
typedef struct {
    int64_t cap_t;
    uint16_t *x;    // (t, hidden) residual stream
    uint16_t *h;    // (t, max(hidden, nh*hd)) normed input
    uint16_t *qkv;  // (t, (nh + 2*nkv) * hd)
    uint16_t *att;  // (t, nh*hd)
    uint16_t *act;  // (t, intermediate)
    /* No o / down / gate_up outputs: their residual add and GLU run inside
     * the dequant stage (ss_linear_forward_residual / _glu). */
    int cap_seqs;
    uint16_t *last;  // (n_seqs, hidden) final-normed last rows
    float *logits;   // (n_seqs, vocab)
    int32_t *next;   // (n_seqs)
} gpu_scratch;

/* Decode graphs: one per bucket of 2^i sequences. A captured step bakes in
 * device addresses (scratch, the context's GEMM workspace and forward
 * scratch, the KV pool, the fixed metadata buffer); buffers only grow, so a
 * graph is replayed only while every one of them is unchanged, and captured
 * again otherwise. */
#define GRAPH_BUCKETS 10
#define GRAPH_MAX_SEQS (1 << (GRAPH_BUCKETS - 1))
#define GRAPH_KEY_PTRS 23

typedef struct {
    const void *p[GRAPH_KEY_PTRS];
    int64_t n_blocks;
    int kv_dtype;
} graph_key;

typedef struct {
    cudaGraphExec_t exec; /* NULL: not captured */
    graph_key key;
} decode_graph;

typedef struct {
    int on;
    decode_graph g[GRAPH_BUCKETS];
    void *meta_dev;        /* fixed device metadata, sized for the largest bucket */
    size_t meta_cap;
    cudaStream_t cap;      /* capture stream (the context's may be the legacy one) */
    ss_seq_step *steps;    // (GRAPH_MAX_SEQS) the real steps, then dummy rows
    ss_kv_seq dummy;       /* a dummy row's "sequence": one free block */
    int32_t dummy_block, dummy_tok;
    int64_t captures, replays;
} decode_graphs;

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
    int attn_variant;      /* SS_ATTN_AUTO, or SS_ATTN_DECODE2 (SS_ATTN_DECODE=2) */
    int seams;             /* layer_forward runs the seams (seams_on, decided at load) */
    int pdl;               /* our kernels as programmatic dependent launches (decided at load) */
    decode_graphs gr;
    /* Profile only: the stage clock and the staged linears' buffers. */
    ss_stage_clock *clock;
    ss_cuda_buf pq, psa, pd; // (m_pad, q_cols) + slack, (m_pad), (m, n) of the widest linear
    double stage_s[SS_GPU_STAGE_COUNT];
    /* The seams (layer_forward): o and down run their stages apart, and the
     * residual add after each is fused with the next projection's norm +
     * quant. cq, csa: o's / down's quantized input and token scales; cd: a
     * GEMM output (m_pad, n) of the widest projection; nq, nsa: what the
     * fused kernel writes for gate_up / the next layer's qkv, kept apart from
     * cq, csa which it reads. Grown before the layer loop, never inside. */
    ss_cuda_buf cq, csa, cd, nq, nsa;
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
        cudaFree(s->act);
        s->x = s->h = s->qkv = s->att = s->act = NULL;
        s->cap_t = 0;
        SS_TRY(dev_alloc((void **)&s->x, tt * hid * 2, "scratch x"));
        SS_TRY(dev_alloc((void **)&s->h, tt * hmax * 2, "scratch h"));
        SS_TRY(dev_alloc((void **)&s->qkv, tt * (qd + 2 * kvd) * 2, "scratch qkv"));
        SS_TRY(dev_alloc((void **)&s->att, tt * qd * 2, "scratch att"));
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

static void graphs_drop(decode_graphs *gr) {
    for (int i = 0; i < GRAPH_BUCKETS; i++) {
        if (gr->g[i].exec)
            cudaGraphExecDestroy(gr->g[i].exec);
        gr->g[i].exec = NULL;
    }
}

static void graphs_free(decode_graphs *gr) {
    graphs_drop(gr);
    cudaFree(gr->meta_dev);
    if (gr->cap)
        cudaStreamDestroy(gr->cap);
    free(gr->steps);
    memset(gr, 0, sizeof *gr);
}

static int env_is(const char *name, const char *value) {
    const char *v = getenv(name);
    return v && strcmp(v, value) == 0;
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
    graphs_free(&g->gr);
    ss_stage_clock_destroy(g->clock);
    ss_cuda_buf_free(&g->pq);
    ss_cuda_buf_free(&g->psa);
    ss_cuda_buf_free(&g->pd);
    ss_cuda_buf_free(&g->cq);
    ss_cuda_buf_free(&g->csa);
    ss_cuda_buf_free(&g->cd);
    ss_cuda_buf_free(&g->nq);
    ss_cuda_buf_free(&g->nsa);
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

/* Whether layer_forward runs the seams: every projection's GEMM output is the
 * raw accumulator (I32 / F32), not a GEMM with the dequant fused in (sm90sp,
 * sm90dense write BF16 there: their dequant stage would be one more copy). */
static int seams_on(const ss_model *m) {
    if (env_is("SS_SEAMS", "0")) /* A/B measurements */
        return 0;
    for (int li = 0; li < m->cfg.num_hidden_layers; li++) {
        const ss_layer *L = &m->layers[li];
        const ss_linear *ls[4] = {L->qkv, L->o, L->gate_up, L->down};
        for (int i = 0; i < 4; i++) {
            const ss_linear_desc *d = ss_linear_get_desc(ls[i]);
            if (d->gemm_out == SS_DTYPE_BF16 || d->out_dtype != SS_DTYPE_BF16)
                return 0;
        }
    }
    return 1;
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
    g->attn_variant = env_is("SS_ATTN_DECODE", "2") ? SS_ATTN_DECODE2 : SS_ATTN_AUTO;
    g->gr.on = !env_is("SS_CUDA_GRAPHS", "0"); /* default on since validated on the H100 */
    g->seams = seams_on(m); /* fixed for the model's life: its graphs bake one path in */
    /* Programmatic dependent launch (linear/kernels/pdl.cuh): each kernel of
     * the forward may be scheduled while the previous one drains, its
     * launch and prologue (metadata, constant tables) hidden behind that
     * kernel's tail, and waits for it before touching its outputs. On by
     * default at cc >= 9.0 for batches of <= SS_PDL_MAX_ROWS tokens (decode;
     * large prefills lose by it); SS_PDL=0 turns it off (A/B measurements).
     * Fixed for the model's life like the seams; the linears decide the same
     * way for their kernels when they are made. Bits never depend on it. */
    g->pdl = ss_kernel_pdl_on(ss_context_device(m->ctx));
    m->gpu = g;
    return SS_OK;
fail:
    ss_engine_gpu_destroy(g);
    return s;
}

void ss_engine_gpu_set_graphs(ss_model *m, int on) {
    if (!m->gpu)
        return;
    if (!on)
        graphs_drop(&m->gpu->gr);
    m->gpu->gr.on = on;
}

int ss_engine_gpu_pdl(const ss_model *m) { return m->gpu ? m->gpu->pdl : 0; }

void ss_engine_gpu_graph_counts(const ss_model *m, int64_t *captures, int64_t *replays) {
    *captures = m->gpu ? m->gpu->gr.captures : 0;
    *replays = m->gpu ? m->gpu->gr.replays : 0;
}

ss_status ss_engine_gpu_set_profile(ss_model *m, int on) {
    ss_engine_gpu *g = m->gpu;
    if (!g)
        return ss_fail(SS_EUNSUPPORTED, "engine: the GPU stage profile needs a model on a GPU backend");
    memset(g->stage_s, 0, sizeof g->stage_s);
    if (!on) {
        ss_stage_clock_destroy(g->clock);
        g->clock = NULL;
        ss_cuda_buf_free(&g->pq);
        ss_cuda_buf_free(&g->psa);
        ss_cuda_buf_free(&g->pd);
        return SS_OK;
    }
    return g->clock ? SS_OK : ss_stage_clock_create(&g->clock);
}

void ss_engine_gpu_stage_times(const ss_model *m, double secs[SS_GPU_STAGE_COUNT]) {
    for (int i = 0; i < SS_GPU_STAGE_COUNT; i++)
        secs[i] = m->gpu ? m->gpu->stage_s[i] : 0.0;
}

// --- KV pool ---------------------------------------------------------------------------------

ss_status ss_engine_gpu_kv_alloc(ss_kv_cache *c, size_t elems) {
    size_t bytes = elems * ss_kv_elem_size(c), sbytes = elems / (size_t)c->head_dim * sizeof(float);
    c->on_device = 1;
    SS_TRY(dev_alloc((void **)&c->k, bytes, "kv cache keys"));
    SS_TRY(dev_alloc((void **)&c->v, bytes, "kv cache values"));
    /* Zeroed like the CPU pool: slots are only read after they are written,
     * but a clean pool keeps memcheck's initcheck quiet. */
    CU(cudaMemset(c->k, 0, bytes), "kv cache memset");
    CU(cudaMemset(c->v, 0, bytes), "kv cache memset");
    if (c->dtype == SS_KV_DTYPE_FP8) {
        SS_TRY(dev_alloc((void **)&c->ks, sbytes, "kv cache key scales"));
        SS_TRY(dev_alloc((void **)&c->vs, sbytes, "kv cache value scales"));
        CU(cudaMemset(c->ks, 0, sbytes), "kv cache memset");
        CU(cudaMemset(c->vs, 0, sbytes), "kv cache memset");
    }
    return SS_OK;
}

void ss_engine_gpu_kv_free(ss_kv_cache *c) {
    cudaFree(c->k);
    cudaFree(c->v);
    cudaFree(c->ks);
    cudaFree(c->vs);
    c->k = c->v = NULL;
    c->ks = c->vs = NULL;
}

ss_status ss_engine_gpu_to_host(void *dst, const void *src, size_t bytes) {
    CU(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "kv cache read");
    return SS_OK;
}

/* Layer li's slice of the pool, as the kernels take it. */
static ss_kv_layer kv_layer_of(const ss_kv_cache *c, int li) {
    size_t off = ss_kv_offset(c, li, 0, 0), soff = ss_kv_scale_offset(c, li, 0, 0);
    int fp8 = c->dtype == SS_KV_DTYPE_FP8;
    return (ss_kv_layer){.k = (uint8_t *)c->k + off * ss_kv_elem_size(c),
                         .v = (uint8_t *)c->v + off * ss_kv_elem_size(c),
                         .ks = fp8 ? c->ks + soff : NULL,
                         .vs = fp8 ? c->vs + soff : NULL,
                         .fp8 = fp8};
}

// --- batch metadata --------------------------------------------------------------------------

/* Where each section lives in the metadata buffer (byte offsets, 16-aligned). */
typedef struct {
    size_t tok, ids, last, tables, tiles, total;
    int max_blocks;
    int64_t n_tiles;
    int heads_per_tile, rows_per_tile;
    int pure_decode; /* one token per sequence: no prefill rows in this batch */
} meta_layout;

static meta_layout layout_tiling(const ss_model_config *c) {
    meta_layout L = {0};
    int group = c->num_attention_heads / c->num_key_value_heads;
    L.heads_per_tile = group < SS_ATTN_ITEMS ? group : SS_ATTN_ITEMS;
    L.rows_per_tile = SS_ATTN_ITEMS / L.heads_per_tile;
    return L;
}

static int head_splits(const ss_model_config *c, const meta_layout *L) {
    int group = c->num_attention_heads / c->num_key_value_heads;
    return (group + L->heads_per_tile - 1) / L->heads_per_tile;
}

/* Section offsets for t tokens and n_seqs sequences (max_blocks, n_tiles set). */
static void layout_place(meta_layout *L, int n_seqs, int64_t t) {
    size_t at = 0;
    L->pure_decode = t == n_seqs; /* every sequence brings >= 1 token */
    L->tok = at;    at += align16((size_t)t * sizeof(ss_tok_info));
    L->ids = at;    at += align16((size_t)t * sizeof(int32_t));
    L->last = at;   at += align16((size_t)n_seqs * sizeof(int32_t));
    L->tables = at; at += align16((size_t)n_seqs * (size_t)L->max_blocks * sizeof(int32_t));
    L->tiles = at;  at += align16((size_t)L->n_tiles * sizeof(ss_attn_tile));
    L->total = at;
}

static meta_layout layout_batch(const ss_model_config *c, const ss_seq_step *seqs, int n_seqs, int64_t t) {
    meta_layout L = layout_tiling(c);
    int splits = head_splits(c, &L);
    /* Clamped to what a valid batch can need: an invalid one is sized small
     * here and rejected, with its message, by ss_engine_prepare_batch. */
    int64_t end_max = c->max_position_embeddings;
    for (int i = 0; i < n_seqs; i++) {
        int64_t end = seqs[i].start_pos + seqs[i].n_tokens;
        end = end < 1 ? 1 : end > end_max ? end_max : end;
        int64_t nb = (end + SS_KV_BLOCK - 1) / SS_KV_BLOCK;
        if (nb > L.max_blocks)
            L.max_blocks = (int)nb;
        L.n_tiles += (int64_t)c->num_key_value_heads * splits *
                     ((seqs[i].n_tokens + L.rows_per_tile - 1) / L.rows_per_tile);
    }
    layout_place(&L, n_seqs, t);
    return L;
}

/* A decode graph's layout for b sequences of one token: fixed whatever the
 * positions (tables as wide as max_position_embeddings needs), so the
 * captured kernels' arguments hold for every step of the bucket. */
static meta_layout layout_decode(const ss_model_config *c, int b) {
    meta_layout L = layout_tiling(c);
    L.max_blocks = (c->max_position_embeddings + SS_KV_BLOCK - 1) / SS_KV_BLOCK;
    L.n_tiles = (int64_t)b * c->num_key_value_heads * head_splits(c, &L);
    layout_place(&L, b, b);
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
    const int32_t *ids;
    const int32_t *last;
    const int32_t *tables;
    const ss_attn_tile *tiles;
    int max_blocks;
    int64_t n_tiles;
    int pure_decode;
} dev_batch;

static dev_batch dev_batch_at(const meta_layout *L, const uint8_t *dev) {
    return (dev_batch){.tok = (const ss_tok_info *)(dev + L->tok), .ids = (const int32_t *)(dev + L->ids),
                       .last = (const int32_t *)(dev + L->last), .tables = (const int32_t *)(dev + L->tables),
                       .tiles = (const ss_attn_tile *)(dev + L->tiles), .max_blocks = L->max_blocks,
                       .n_tiles = L->n_tiles, .pure_decode = L->pure_decode};
}

/* Profile only: the work queued since the previous mark was `stage`. */
#define MARK(g, stage, st)                                                  \
    do {                                                                    \
        if ((g)->clock)                                                     \
            SS_TRY(ss_stage_clock_mark((g)->clock, (stage), (st)));         \
    } while (0)

/* Grows the staged linear's buffers for m rows of l (profile only). */
static ss_status profile_reserve(ss_engine_gpu *g, const ss_linear *l, int64_t m) {
    const ss_linear_desc *d = ss_linear_get_desc(l);
    size_t mp = (size_t)ss_linear_m_pad(m);
    SS_TRY(ss_cuda_buf_reserve(&g->pq, mp * (size_t)ss_linear_q_cols(l) * ss_dtype_size(d->wdtype) + SS_GPU_GEMM_SLACK,
                               d->name, "profile: quantized activations"));
    SS_TRY(ss_cuda_buf_reserve(&g->psa, mp * sizeof(float), d->name, "profile: token scales"));
    /* 4 bytes covers every GEMM output dtype (I32, F32, BF16). */
    return ss_cuda_buf_reserve(&g->pd, (size_t)m * (size_t)d->n * 4, d->name, "profile: GEMM output");
}

/* y = l(x) on m rows, or y = l(rmsnorm(x) * gamma) when gamma != NULL (the
 * norm fused into the quant kernel: x is read once, no normed copy): the
 * fused forward, or (profiling) its three stages apart with a mark after
 * each (all three as `lm` when lm != COUNT). A fused norm is timed inside
 * SS_GPU_STAGE_QUANT, not SS_GPU_STAGE_NORMS. */
static ss_status linear_norm(ss_engine_gpu *g, ss_linear *l, const uint16_t *x, const uint16_t *gamma, float eps,
                             int64_t m, void *y, ss_gpu_stage lm, cudaStream_t st) {
    if (!g->clock)
        return gamma ? ss_linear_forward_rmsnorm(l, x, gamma, eps, m, y) : ss_linear_forward(l, x, m, y);
    int head = lm != SS_GPU_STAGE_COUNT;
    SS_TRY(profile_reserve(g, l, m));
    if (gamma)
        SS_TRY(ss_linear_quant_rmsnorm(l, x, gamma, eps, m, g->pq.p, g->psa.p)); /* norm + quant */
    else
        SS_TRY(ss_linear_quant(l, x, m, g->pq.p, g->psa.p));
    MARK(g, head ? lm : SS_GPU_STAGE_QUANT, st);
    SS_TRY(ss_linear_gemm(l, g->pq.p, m, g->pd.p));
    MARK(g, head ? lm : SS_GPU_STAGE_GEMM, st);
    SS_TRY(ss_linear_dequant(l, g->pd.p, g->psa.p, m, y));
    MARK(g, head ? lm : SS_GPU_STAGE_DEQUANT, st);
    return SS_OK;
}

/* The elementwise op after a projection, fused into its dequant stage. */
typedef enum { FUSE_GLU, FUSE_RESIDUAL } fused_op;

/* out = glu(l(norm(x))) (FUSE_GLU: act (m, n/2), relu2 or SiLU) or
 * out += l(norm(x)) (FUSE_RESIDUAL: the residual stream (m, n)); gamma NULL
 * = no norm. The projection's BF16 output is never written: the dequant
 * kernel rounds it as the plain dequant does and applies the op in
 * registers, so the result is bit-identical to linear_norm followed by
 * ss_glu_cuda / ss_residual_add_cuda. Profiling runs the stages apart;
 * SS_GPU_STAGE_DEQUANT then includes the GLU / residual add (they no longer
 * appear under SS_GPU_STAGE_NORMS). */
static ss_status linear_fused(ss_engine_gpu *g, ss_linear *l, const uint16_t *x, const uint16_t *gamma,
                              float eps, int64_t m, fused_op op, int relu2, uint16_t *out, cudaStream_t st) {
    if (!g->clock)
        return op == FUSE_GLU ? ss_linear_forward_glu(l, x, gamma, eps, m, relu2, out)
                              : ss_linear_forward_residual(l, x, gamma, eps, m, out);
    SS_TRY(profile_reserve(g, l, m));
    if (gamma)
        SS_TRY(ss_linear_quant_rmsnorm(l, x, gamma, eps, m, g->pq.p, g->psa.p)); /* norm + quant */
    else
        SS_TRY(ss_linear_quant(l, x, m, g->pq.p, g->psa.p));
    MARK(g, SS_GPU_STAGE_QUANT, st);
    SS_TRY(ss_linear_gemm(l, g->pq.p, m, g->pd.p));
    MARK(g, SS_GPU_STAGE_GEMM, st);
    if (op == FUSE_GLU)
        SS_TRY(ss_linear_dequant_glu(l, g->pd.p, g->psa.p, m, relu2, out));
    else
        SS_TRY(ss_linear_dequant_residual(l, g->pd.p, g->psa.p, m, out));
    MARK(g, SS_GPU_STAGE_DEQUANT, st);
    return SS_OK;
}

static ss_status linear(ss_engine_gpu *g, ss_linear *l, const uint16_t *x, int64_t m, void *y, ss_gpu_stage lm,
                        cudaStream_t st) {
    return linear_norm(g, l, x, NULL, 0.0f, m, y, lm, st);
}

/* Grows the seam buffers for m rows of every projection (before the layer
 * loop: nq holds the next layer's qkv input across layers). */
static ss_status seams_reserve(ss_engine_gpu *g, const ss_model *m, int64_t t) {
    size_t mp = (size_t)ss_linear_m_pad(t);
    for (int li = 0; li < m->cfg.num_hidden_layers; li++) {
        const ss_layer *L = &m->layers[li];
        const ss_linear *ls[4] = {L->qkv, L->o, L->gate_up, L->down};
        for (int i = 0; i < 4; i++) {
            const ss_linear_desc *d = ss_linear_get_desc(ls[i]);
            size_t qb = mp * (size_t)ss_linear_q_cols(ls[i]) * ss_dtype_size(d->wdtype) + SS_GPU_GEMM_SLACK;
            SS_TRY(ss_cuda_buf_reserve(&g->cq, qb, d->name, "seam: quantized activations"));
            SS_TRY(ss_cuda_buf_reserve(&g->nq, qb, d->name, "seam: next quantized activations"));
            SS_TRY(ss_cuda_buf_reserve(&g->csa, mp * sizeof(float), d->name, "seam: token scales"));
            SS_TRY(ss_cuda_buf_reserve(&g->nsa, mp * sizeof(float), d->name, "seam: next token scales"));
            /* 4 bytes covers I32 and F32 */
            SS_TRY(ss_cuda_buf_reserve(&g->cd, mp * (size_t)d->n * 4, d->name, "seam: GEMM output"));
        }
    }
    return SS_OK;
}

/* The GEMM of l on its quantized input q over all m_pad rows (the padding
 * rows are zero; the caller's (m, n) view needs no trimming copy), into cd. */
static ss_status seam_gemm(ss_engine_gpu *g, ss_linear *l, const void *q, int64_t m, cudaStream_t st) {
    SS_TRY(ss_linear_gemm(l, q, ss_linear_m_pad(m), g->cd.p));
    MARK(g, SS_GPU_STAGE_GEMM, st);
    return SS_OK;
}

/* quant (+ the norm when gamma != NULL) of x into cq, csa. */
static ss_status seam_quant(ss_engine_gpu *g, ss_linear *l, const uint16_t *x, const uint16_t *gamma,
                            float eps, int64_t m, cudaStream_t st) {
    if (gamma)
        SS_TRY(ss_linear_quant_rmsnorm(l, x, gamma, eps, m, g->cq.p, g->csa.p));
    else
        SS_TRY(ss_linear_quant(l, x, m, g->cq.p, g->csa.p));
    MARK(g, SS_GPU_STAGE_QUANT, st);
    return SS_OK;
}

/* The GEMM of l on q (token scales sa) with its dequant and op, into out:
 * one kernel where the backend's GEMM applies the op (ss_linear_gemm_op_fused),
 * else the GEMM into cd and the op's dequant kernel (timed apart). */
static ss_status seam_gemm_op(ss_engine_gpu *g, ss_linear *l, const void *q, const float *sa, int64_t m,
                              ss_linear_op op, uint16_t *out, cudaStream_t st) {
    if (ss_linear_gemm_op_fused(l, m, op)) {
        SS_TRY(ss_linear_gemm_op(l, q, sa, m, op, g->cd.p, out));
        MARK(g, SS_GPU_STAGE_GEMM, st);
        return SS_OK;
    }
    SS_TRY(seam_gemm(g, l, q, m, st)); /* the stages of ss_linear_gemm_op, each timed */
    if (op == SS_LINEAR_OP_GLU_RELU2 || op == SS_LINEAR_OP_GLU_SILU)
        SS_TRY(ss_linear_dequant_glu(l, g->cd.p, sa, m, op == SS_LINEAR_OP_GLU_RELU2, out));
    else
        SS_TRY(ss_linear_dequant(l, g->cd.p, sa, m, out));
    MARK(g, SS_GPU_STAGE_DEQUANT, st);
    return SS_OK;
}

/* x += l(x_in) for o / down, then next's norm + quant of the new x into nq,
 * nsa (next == NULL: the last layer, no quant). The GEMM applies the residual
 * add itself where it can (ss_linear_gemm_op_fused): GEMM(+residual), then
 * norm + quant; else GEMM, then the residual add + norm + quant in one kernel
 * (ss_linear_residual_rmsnorm_quant). q, sa: l's quantized input. */
static ss_status seam_residual(ss_engine_gpu *g, ss_linear *l, const void *q, const float *sa, int64_t m,
                               uint16_t *x, ss_linear *next, const uint16_t *gamma, float eps, cudaStream_t st) {
    if (ss_linear_gemm_op_fused(l, m, SS_LINEAR_OP_RESIDUAL)) {
        SS_TRY(seam_gemm_op(g, l, q, sa, m, SS_LINEAR_OP_RESIDUAL, x, st));
        if (next)
            SS_TRY(ss_linear_quant_rmsnorm(next, x, gamma, eps, m, g->nq.p, g->nsa.p));
        MARK(g, SS_GPU_STAGE_QUANT, st);
        return SS_OK;
    }
    SS_TRY(seam_gemm(g, l, q, m, st));
    if (next)
        SS_TRY(ss_linear_residual_rmsnorm_quant(l, g->cd.p, sa, m, x, next, gamma, eps, g->nq.p, g->nsa.p));
    else
        SS_TRY(ss_linear_dequant_residual(l, g->cd.p, sa, m, x));
    MARK(g, SS_GPU_STAGE_DEQUANT, st);
    return SS_OK;
}

/* One decoder layer. With seams (seams_on): o and down run quant -> GEMM
 * through the stage API, and their residual add is one kernel with the norm
 * + quant of the projection after it (gate_up; the next layer's qkv, whose
 * quantized input then waits in nq, nsa: qkv_ready). Kernels per layer:
 * [qkv GEMM] [dequant] [rope + kv] [attention] [quant o] [GEMM] [residual +
 * norm + quant gate_up] [GEMM] [dequant + glu] [quant down] [GEMM] [residual
 * + norm + quant qkv]; results bit-identical to the unfused chain. */
static ss_status layer_forward(ss_model *m, ss_kv_cache *kc, int li, const dev_batch *b, int64_t t,
                               int seams, int pdl, cudaStream_t st) {
    const ss_model_config *cfg = &m->cfg;
    ss_engine_gpu *g = m->gpu;
    gpu_scratch *s = &g->s;
    const ss_layer *L = &m->layers[li];
    int nh = cfg->num_attention_heads, nkv = cfg->num_key_value_heads, hd = cfg->head_dim;
    float eps = (float)cfg->rms_norm_eps;
    size_t per_layer = 4 * (size_t)g->norm_len;
    const uint16_t *norms = g->norms + (size_t)li * per_layer;
    const uint16_t *attn_sub = L->attn_sub_norm ? norms + 2 * g->norm_len : NULL;
    const uint16_t *ffn_sub = L->ffn_sub_norm ? norms + 3 * g->norm_len : NULL;
    const ss_kv_layer kvl = kv_layer_of(kc, li);
    const ss_gpu_stage none = SS_GPU_STAGE_COUNT;
    int relu2 = cfg->arch == SS_ARCH_BITNET;

    if (seams && li > 0) { /* input_layernorm + quant ran in the previous layer's last kernel */
        SS_TRY(seam_gemm_op(g, L->qkv, g->nq.p, g->nsa.p, t, SS_LINEAR_OP_PLAIN, s->qkv, st));
    } else { /* the RMSNorm runs inside the quant kernel (linear_norm) */
        SS_TRY(linear_norm(g, L->qkv, s->x, norms, eps, t, s->qkv, none, st)); /* input_layernorm */
    }
    CU(ss_rope_kv_write_cuda(s->qkv, b->tok, t, nh, nkv, hd, g->inv_freq, &kvl, b->tables, b->max_blocks, pdl,
                             st),
       "rope + kv write");
    MARK(g, SS_GPU_STAGE_NORMS, st);
    CU(ss_attention_cuda_kv(s->qkv, b->tok, b->tiles, b->n_tiles, b->tables, b->max_blocks, &kvl, nh, nkv, hd,
                            s->att,
                            g->attn_variant | (b->pure_decode ? SS_ATTN_PURE_DECODE : 0) | (pdl ? SS_ATTN_PDL : 0),
                            st),
       "attention");
    MARK(g, SS_GPU_STAGE_ATTENTION, st);
    if (!seams) {
        /* attn_sub_norm (BitNet); x += o(att): the residual add inside o's dequant */
        SS_TRY(linear_fused(g, L->o, s->att, attn_sub, eps, t, FUSE_RESIDUAL, 0, s->x, st));
        /* post_attention_layernorm; act = glu(gate_up(x)) inside gate_up's dequant */
        SS_TRY(linear_fused(g, L->gate_up, s->x, norms + g->norm_len, eps, t, FUSE_GLU, relu2, s->act, st));
        /* ffn_sub_norm (BitNet): glu -> norm + quant -> down; x += down(act) */
        return linear_fused(g, L->down, s->act, ffn_sub, eps, t, FUSE_RESIDUAL, 0, s->x, st);
    }
    /* attn_sub_norm (BitNet) + quant -> o; x += o(att) and post_attention_layernorm + gate_up's quant */
    SS_TRY(seam_quant(g, L->o, s->att, attn_sub, eps, t, st));
    SS_TRY(seam_residual(g, L->o, g->cq.p, g->csa.p, t, s->x, L->gate_up, norms + g->norm_len, eps, st));
    /* act = glu(gate_up(x)): in gate_up's GEMM epilogue or its dequant */
    SS_TRY(seam_gemm_op(g, L->gate_up, g->nq.p, g->nsa.p, t,
                        relu2 ? SS_LINEAR_OP_GLU_RELU2 : SS_LINEAR_OP_GLU_SILU, s->act, st));
    /* ffn_sub_norm (BitNet) + quant -> down; x += down(act) and the next layer's input_layernorm + qkv quant */
    SS_TRY(seam_quant(g, L->down, s->act, ffn_sub, eps, t, st));
    int last = li + 1 == cfg->num_hidden_layers;
    return seam_residual(g, L->down, g->cq.p, g->csa.p, t, s->x, last ? NULL : m->layers[li + 1].qkv,
                         last ? NULL : norms + per_layer, eps, st);
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

/* Everything between the metadata upload and the result copies, on `st`:
 * embedding, the layers, final norm + lm_head for n_rows last rows, and the
 * argmax when asked. What a decode graph captures. */
static ss_status body(ss_model *m, ss_kv_cache *c, const dev_batch *b, int64_t t, int n_rows, int argmax,
                      cudaStream_t st) {
    const ss_model_config *cfg = &m->cfg;
    ss_engine_gpu *g = m->gpu;
    gpu_scratch *s = &g->s;
    int64_t h = cfg->hidden_size;
    int seams = g->seams;
    int pdl = ss_pdl_for(g->pdl, t); /* as the linears decide for their kernels */
    if (seams)
        SS_TRY(seams_reserve(g, m, t)); /* grows only before the first step of a size: never in a capture */
    CU(ss_embed_cuda(g->embed, b->ids, t, h, s->x, pdl, st), "embedding gather");
    MARK(g, SS_GPU_STAGE_NORMS, st);
    for (int li = 0; li < cfg->num_hidden_layers; li++) {
        SS_TRY(layer_forward(m, c, li, b, t, seams, pdl, st));
        if (m->hook)
            SS_TRY(call_hook(m, li, t, st));
    }
    /* Logits only for the last new token of each sequence. */
    CU(ss_rmsnorm_cuda(s->x, b->last, g->final_norm, n_rows, h, (float)cfg->rms_norm_eps, s->last, pdl, st),
       "final norm");
    MARK(g, SS_GPU_STAGE_LM_HEAD, st);
    SS_TRY(linear(g, m->lm_head, s->last, n_rows, s->logits, SS_GPU_STAGE_LM_HEAD, st));
    if (argmax) {
        CU(ss_argmax_cuda(s->logits, n_rows, cfg->vocab_size, s->next, pdl, st), "argmax");
        MARK(g, SS_GPU_STAGE_SAMPLING, st);
    }
    return SS_OK;
}

/* Copies the results of the first n_seqs rows out, synchronizes once (the
 * pinned metadata may then be overwritten), and commits the positions. */
static ss_status finish(ss_model *m, const ss_seq_step *seqs, int n_seqs, float *logits, int32_t *next,
                        cudaStream_t st) {
    gpu_scratch *s = &m->gpu->s;
    if (next)
        CU(cudaMemcpyAsync(next, s->next, (size_t)n_seqs * sizeof *next, cudaMemcpyDeviceToHost, st),
           "next ids copy");
    if (logits)
        CU(cudaMemcpyAsync(logits, s->logits, (size_t)n_seqs * (size_t)m->cfg.vocab_size * sizeof *logits,
                           cudaMemcpyDeviceToHost, st), "logits copy");
    CU(cudaStreamSynchronize(st), "forward");
    if (m->gpu->clock)
        SS_TRY(ss_stage_clock_read(m->gpu->clock, m->gpu->stage_s));
    for (int i = 0; i < n_seqs; i++) {
        int64_t end = seqs[i].start_pos + seqs[i].n_tokens;
        if (end > seqs[i].kv->n_tokens)
            seqs[i].kv->n_tokens = end;
    }
    return SS_OK;
}

// --- decode graphs -----------------------------------------------------------------------------

/* Bucket index of a batch that a graph can run, else -1. t == n_seqs with
 * every n_tokens >= 1 (checked by prepare_batch) means one token each. */
static int graph_bucket(const ss_model *m, int n_seqs, int64_t t) {
    const ss_engine_gpu *g = m->gpu;
    if (!g->gr.on || m->hook || g->clock || n_seqs < 1 || n_seqs > GRAPH_MAX_SEQS || t != n_seqs)
        return -1;
    int i = 0;
    while ((1 << i) < n_seqs)
        i++;
    return i;
}

static graph_key graph_key_now(const ss_model *m, const ss_kv_cache *c) {
    const ss_engine_gpu *g = m->gpu;
    const gpu_scratch *s = &g->s;
    const ss_cuda_state *cs = ss_cuda(m->ctx);
    graph_key k;
    memset(&k, 0, sizeof k);
    const void *p[GRAPH_KEY_PTRS] = {s->x, s->h, s->qkv, s->att, s->act, s->last, s->logits,
                                     s->next, cs->workspace.p, cs->scratch_q.p, cs->scratch_sa.p,
                                     cs->scratch_d.p, c, c->k, c->v, c->ks, c->vs, g->gr.meta_dev, g->cq.p,
                                     g->csa.p, g->cd.p, g->nq.p, g->nsa.p};
    memcpy(k.p, p, sizeof p);
    k.n_blocks = c->n_blocks;
    k.kv_dtype = (int)c->dtype; /* the captured kernels are the dtype's */
    return k;
}

/* The fixed device metadata (largest bucket), the capture stream and the
 * padded step array, made on the first graph step. */
static ss_status graphs_ready(ss_engine_gpu *g, const ss_model_config *cfg) {
    decode_graphs *gr = &g->gr;
    if (gr->meta_dev)
        return SS_OK;
    meta_layout L = layout_decode(cfg, GRAPH_MAX_SEQS);
    gr->steps = calloc(GRAPH_MAX_SEQS, sizeof *gr->steps);
    if (!gr->steps)
        return ss_fail(SS_ENOMEM, "engine (GPU): out of memory for decode graph steps");
    CU(cudaStreamCreateWithFlags(&gr->cap, cudaStreamNonBlocking), "decode graph capture stream");
    SS_TRY(dev_alloc(&gr->meta_dev, L.total, "decode graph metadata"));
    gr->meta_cap = L.total;
    return SS_OK;
}

/* Captures body() for bucket b on the capture stream (the linears follow the
 * context's stream, switched for the capture). Every plan and buffer exists:
 * the same step just ran eagerly. */
static ss_status graph_capture(ss_model *m, ss_kv_cache *c, const dev_batch *db, int bi) {
    ss_engine_gpu *g = m->gpu;
    decode_graphs *gr = &g->gr;
    int b = 1 << bi;
    void *old = ss_context_stream(m->ctx);
    ss_context_set_stream(m->ctx, gr->cap);
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamBeginCapture(gr->cap, cudaStreamCaptureModeThreadLocal);
    ss_status s = e == cudaSuccess ? body(m, c, db, b, b, 1, gr->cap) : cuda_fail(e, "decode graph begin capture");
    if (e == cudaSuccess) {
        cudaError_t e2 = cudaStreamEndCapture(gr->cap, &graph);
        if (s == SS_OK && e2 != cudaSuccess)
            s = cuda_fail(e2, "decode graph capture");
    }
    ss_context_set_stream(m->ctx, old);
    if (s == SS_OK) {
        e = cudaGraphInstantiate(&gr->g[bi].exec, graph, 0);
        if (e != cudaSuccess) {
            gr->g[bi].exec = NULL;
            s = cuda_fail(e, "decode graph instantiate");
        }
    }
    if (graph)
        cudaGraphDestroy(graph);
    if (s != SS_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", ss_last_error());
        return ss_fail(s, "engine (GPU): decode graph of %d sequences (SS_CUDA_GRAPHS=0 turns graphs off): %s", b, why);
    }
    gr->g[bi].key = graph_key_now(m, c);
    gr->captures++;
    return SS_OK;
}

/* A pure decode step through bucket bi's graph: the batch padded to 2^bi
 * rows with dummy rows (token 0 at position 0 of a block that is free right
 * now: its slots are written before any sequence that later takes the block
 * reads them), the metadata uploaded to the fixed buffer, then a replay — or,
 * when the graph is missing or stale, the step run eagerly and captured.
 * *ran = 0 (nothing done) when no block is free for the dummy rows. */
static ss_status forward_graph(ss_model *m, ss_kv_cache *c, const ss_seq_step *seqs, int n_seqs, int bi,
                               float *logits, int32_t *next, cudaStream_t st, int *ran) {
    const ss_model_config *cfg = &m->cfg;
    ss_engine_gpu *g = m->gpu;
    decode_graphs *gr = &g->gr;
    int b = 1 << bi;
    *ran = 0;
    meta_layout L = layout_decode(cfg, b);
    SS_TRY(graphs_ready(g, cfg));
    SS_TRY(meta_reserve(g, L.total));
    SS_TRY(scratch_reserve(cfg, &g->s, b, b));
    uint8_t *host = g->meta_host;
    ss_tok_info *tok = (ss_tok_info *)(host + L.tok);
    SS_TRY(ss_engine_prepare_batch(m, c, seqs, n_seqs, tok));
    if (b > n_seqs && c->n_free == 0)
        return SS_OK;
    memcpy(gr->steps, seqs, (size_t)n_seqs * sizeof *seqs);
    if (b > n_seqs) {
        gr->dummy_block = c->free_list[c->n_free - 1];
        gr->dummy_tok = 0;
        gr->dummy = (ss_kv_seq){.blocks = &gr->dummy_block, .n_blocks = 1, .cap = 1, .n_tokens = 0};
        for (int i = n_seqs; i < b; i++) {
            gr->steps[i] = (ss_seq_step){.tokens = &gr->dummy_tok, .n_tokens = 1, .start_pos = 0, .kv = &gr->dummy};
            tok[i] = (ss_tok_info){.seq = i, .pos = 0};
        }
    }
    fill_meta(cfg, &L, gr->steps, b, host);
    CU(cudaMemcpyAsync(gr->meta_dev, host, L.total, cudaMemcpyHostToDevice, st), "batch metadata upload");
    dev_batch db = dev_batch_at(&L, gr->meta_dev);
    decode_graph *dg = &gr->g[bi];
    graph_key key = graph_key_now(m, c);
    if (dg->exec && memcmp(&key, &dg->key, sizeof key) == 0) {
        CU(cudaGraphLaunch(dg->exec, st), "decode graph launch");
        gr->replays++;
    } else {
        if (dg->exec)
            cudaGraphExecDestroy(dg->exec);
        dg->exec = NULL;
        SS_TRY(body(m, c, &db, b, b, 1, st));
        CU(cudaStreamSynchronize(st), "decode graph warm-up");
        SS_TRY(graph_capture(m, c, &db, bi));
    }
    *ran = 1;
    return finish(m, seqs, n_seqs, logits, next, st);
}

static ss_status forward(ss_model *m, ss_kv_cache *c, const ss_seq_step *seqs, int n_seqs, int64_t t,
                         float *logits, int32_t *next, cudaStream_t st) {
    const ss_model_config *cfg = &m->cfg;
    ss_engine_gpu *g = m->gpu;
    if (!c->on_device)
        return ss_fail(SS_EINVAL, "forward: the KV cache is in host memory but the model runs on the GPU (create the cache after loading)");
    if (t > INT32_MAX)
        return ss_fail(SS_EINVAL, "forward: %lld tokens in one batch, expected < 2^31", (long long)t);
    int bi = graph_bucket(m, n_seqs, t);
    if (bi >= 0) {
        int ran = 0;
        SS_TRY(forward_graph(m, c, seqs, n_seqs, bi, logits, next, st, &ran));
        if (ran)
            return SS_OK;
    }
    meta_layout L = layout_batch(cfg, seqs, n_seqs, t);
    SS_TRY(meta_reserve(g, L.total));
    SS_TRY(scratch_reserve(cfg, &g->s, t, n_seqs));
    uint8_t *host = g->meta_host, *dev = g->meta_dev;
    SS_TRY(ss_engine_prepare_batch(m, c, seqs, n_seqs, (ss_tok_info *)(host + L.tok)));
    fill_meta(cfg, &L, seqs, n_seqs, host);
    CU(cudaMemcpyAsync(dev, host, L.total, cudaMemcpyHostToDevice, st), "batch metadata upload");
    if (g->clock)
        SS_TRY(ss_stage_clock_start(g->clock, st));
    dev_batch b = dev_batch_at(&L, dev);
    SS_TRY(body(m, c, &b, t, n_seqs, next != NULL, st));
    return finish(m, seqs, n_seqs, logits, next, st);
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
/* CPU-only build: the switches and counters exist (tests link them) and
 * report that nothing runs on a GPU. */
#include "engine/cuda/engine_gpu.h"
#include "core/error.h"

void ss_engine_gpu_set_graphs(ss_model *m, int on) { (void)m, (void)on; }
int ss_engine_gpu_pdl(const ss_model *m) {
    (void)m;
    return 0;
}
void ss_engine_gpu_graph_counts(const ss_model *m, int64_t *captures, int64_t *replays) {
    (void)m;
    *captures = *replays = 0;
}
ss_status ss_engine_gpu_set_profile(ss_model *m, int on) {
    (void)m, (void)on;
    return ss_fail(SS_EUNSUPPORTED, "engine: built without CUDA, no GPU stage profile");
}
void ss_engine_gpu_stage_times(const ss_model *m, double secs[SS_GPU_STAGE_COUNT]) {
    (void)m;
    for (int i = 0; i < SS_GPU_STAGE_COUNT; i++)
        secs[i] = 0.0;
}
#endif /* SS_HAVE_CUDA */
