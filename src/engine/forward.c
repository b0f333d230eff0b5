/* The model graph: one forward over a batch of sequences. Tokens of all
 * sequences are flattened into t rows so every projection is one ss_linear
 * call of m = t rows; attention keeps the sequences apart through the per-token
 * (seq, pos) table and each sequence's block table. */
#include "engine/model.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "engine/cuda/engine_gpu.h"

/* Scratch of one forward, sized for t tokens. */
typedef struct {
    uint16_t *x;     // (t, hidden) residual stream
    uint16_t *h;     // (t, max(hidden, nh*hd)) normed input / attention output
    uint16_t *qkv;   // (t, (nh + 2*nkv) * hd)
    uint16_t *att;   // (t, nh*hd)
    uint16_t *proj;  // (t, hidden) o / down output
    uint16_t *gu;    // (t, 2 * intermediate)
    uint16_t *act;   // (t, intermediate)
    ss_tok_info *tok; // (t)
} scratch;

static void scratch_free(scratch *s) {
    free(s->x);
    free(s->h);
    free(s->qkv);
    free(s->att);
    free(s->proj);
    free(s->gu);
    free(s->act);
    free(s->tok);
}

static ss_status scratch_alloc(const ss_model_config *c, int64_t t, scratch *s) {
    memset(s, 0, sizeof *s);
    size_t tt = (size_t)t, hd = (size_t)c->head_dim;
    size_t qd = (size_t)c->num_attention_heads * hd, kvd = (size_t)c->num_key_value_heads * hd;
    size_t hmax = qd > (size_t)c->hidden_size ? qd : (size_t)c->hidden_size;
    s->x = malloc(tt * (size_t)c->hidden_size * 2);
    s->h = malloc(tt * hmax * 2);
    s->qkv = malloc(tt * (qd + 2 * kvd) * 2);
    s->att = malloc(tt * qd * 2);
    s->proj = malloc(tt * (size_t)c->hidden_size * 2);
    s->gu = malloc(tt * 2 * (size_t)c->intermediate_size * 2);
    s->act = malloc(tt * (size_t)c->intermediate_size * 2);
    s->tok = malloc(tt * sizeof *s->tok);
    if (!s->x || !s->h || !s->qkv || !s->att || !s->proj || !s->gu || !s->act || !s->tok) {
        scratch_free(s);
        return ss_fail(SS_ENOMEM, "forward: out of memory for %lld tokens", (long long)t);
    }
    return SS_OK;
}

/* Checks the batch and grows each sequence's block table; fills tok. */
ss_status ss_engine_prepare_batch(const ss_model *m, ss_kv_cache *c, const ss_seq_step *seqs,
                                  int n_seqs, ss_tok_info *tok) {
    int64_t r = 0;
    for (int i = 0; i < n_seqs; i++) {
        const ss_seq_step *q = &seqs[i];
        int64_t end = q->start_pos + q->n_tokens;
        if (q->start_pos < 0 || q->start_pos > q->kv->n_tokens)
            return ss_fail(SS_EINVAL, "forward: sequence %d: start_pos %lld, expected 0..%lld (tokens cached)",
                           i, (long long)q->start_pos, (long long)q->kv->n_tokens);
        if (end > m->cfg.max_position_embeddings)
            return ss_fail(SS_EINVAL, "forward: sequence %d reaches position %lld, max_position_embeddings is %d",
                           i, (long long)end, m->cfg.max_position_embeddings);
        for (int64_t j = 0; j < q->n_tokens; j++) {
            if (q->tokens[j] < 0 || q->tokens[j] >= m->cfg.vocab_size)
                return ss_fail(SS_EINVAL, "forward: sequence %d token %lld: id %d is out of vocabulary (vocab_size %d)",
                               i, (long long)j, (int)q->tokens[j], m->cfg.vocab_size);
            tok[r++] = (ss_tok_info){.seq = i, .pos = (int32_t)(q->start_pos + j)};
        }
        SS_TRY(ss_kv_seq_reserve(c, q->kv, end));
    }
    return SS_OK;
}

static ss_status layer_forward(ss_model *m, ss_kv_cache *c, int li, const ss_seq_step *seqs,
                               int64_t t, scratch *s) {
    const ss_model_config *cfg = &m->cfg;
    const ss_engine_ops *op = m->ops;
    const ss_layer *L = &m->layers[li];
    int nh = cfg->num_attention_heads, nkv = cfg->num_key_value_heads, hd = cfg->head_dim;
    int64_t h = cfg->hidden_size, qd = (int64_t)nh * hd, inter = cfg->intermediate_size;
    float eps = (float)cfg->rms_norm_eps;

    op->rmsnorm(s->x, L->in_norm, t, h, eps, s->h);
    SS_TRY(ss_linear_forward(L->qkv, s->h, t, s->qkv));
    op->rope(s->qkv, s->tok, t, nh, nkv, hd, m->inv_freq);
    op->kv_write(c, li, s->qkv, s->tok, t, seqs, nh);
    op->attention(c, li, s->qkv, s->tok, t, seqs, nh, s->att);
    const uint16_t *o_in = s->att;
    if (L->attn_sub_norm) {
        op->rmsnorm(s->att, L->attn_sub_norm, t, qd, eps, s->h);
        o_in = s->h;
    }
    SS_TRY(ss_linear_forward(L->o, o_in, t, s->proj));
    op->residual_add(s->x, s->proj, t, h);

    op->rmsnorm(s->x, L->post_norm, t, h, eps, s->h);
    SS_TRY(ss_linear_forward(L->gate_up, s->h, t, s->gu));
    op->glu(s->gu, t, inter, cfg->arch == SS_ARCH_BITNET, s->act);
    const uint16_t *d_in = s->act;
    if (L->ffn_sub_norm) {
        /* gu is free again: reuse its first half for the normed activation. */
        op->rmsnorm(s->act, L->ffn_sub_norm, t, inter, eps, s->gu);
        d_in = s->gu;
    }
    SS_TRY(ss_linear_forward(L->down, d_in, t, s->proj));
    op->residual_add(s->x, s->proj, t, h);
    return SS_OK;
}

ss_status ss_model_forward(ss_model *m, ss_kv_cache *c, const ss_seq_step *seqs, int n_seqs,
                           float *logits) {
    return ss_model_forward_next(m, c, seqs, n_seqs, logits, NULL);
}

ss_status ss_model_forward_next(ss_model *m, ss_kv_cache *c, const ss_seq_step *seqs, int n_seqs,
                                float *logits, int32_t *next) {
    const ss_model_config *cfg = &m->cfg;
    if (n_seqs <= 0)
        return ss_fail(SS_EINVAL, "forward: n_seqs %d, expected >= 1", n_seqs);
    int64_t t = 0;
    for (int i = 0; i < n_seqs; i++) {
        if (seqs[i].n_tokens <= 0 || !seqs[i].tokens || !seqs[i].kv)
            return ss_fail(SS_EINVAL, "forward: sequence %d has %lld new tokens, expected >= 1 (and a kv sequence)",
                           i, (long long)seqs[i].n_tokens);
        t += seqs[i].n_tokens;
    }
#ifdef SS_HAVE_CUDA
    if (m->gpu)
        return ss_engine_gpu_forward(m, c, seqs, n_seqs, t, logits, next);
#endif
    if (!logits && !next)
        return ss_fail(SS_EINVAL, "forward: neither a logits buffer nor a next-token buffer");
    scratch s;
    SS_TRY(scratch_alloc(cfg, t, &s));
    int64_t h = cfg->hidden_size;
    ss_status st = ss_engine_prepare_batch(m, c, seqs, n_seqs, s.tok);
    if (st != SS_OK)
        goto done;
    for (int64_t r = 0, i = 0; i < n_seqs; i++)
        for (int64_t j = 0; j < seqs[i].n_tokens; j++, r++)
            memcpy(s.x + r * h, m->embed + (int64_t)seqs[i].tokens[j] * h, (size_t)h * 2);
    for (int li = 0; li < cfg->num_hidden_layers; li++) {
        if ((st = layer_forward(m, c, li, seqs, t, &s)) != SS_OK)
            goto done;
        if (m->hook)
            m->hook(m->hook_user, li, s.x, t);
    }
    for (int i = 0; i < n_seqs; i++) {
        int64_t end = seqs[i].start_pos + seqs[i].n_tokens;
        if (end > seqs[i].kv->n_tokens)
            seqs[i].kv->n_tokens = end;
    }
    /* Logits only for the last new token of each sequence. */
    for (int64_t r = 0, i = 0; i < n_seqs; i++) {
        r += seqs[i].n_tokens;
        memcpy(s.proj + i * h, s.x + (r - 1) * h, (size_t)h * 2);
    }
    m->ops->rmsnorm(s.proj, m->final_norm, n_seqs, h, (float)cfg->rms_norm_eps, s.h);
    /* Only next ids wanted: the logits live in a temporary, as on the GPU. */
    float *lg = logits ? logits : malloc((size_t)n_seqs * (size_t)cfg->vocab_size * sizeof *lg);
    if (!lg) {
        st = ss_fail(SS_ENOMEM, "forward: out of memory for the logits of %d sequences", n_seqs);
        goto done;
    }
    st = ss_linear_forward(m->lm_head, s.h, n_seqs, lg);
    if (st == SS_OK && next)
        for (int i = 0; i < n_seqs; i++)
            next[i] = ss_sample_greedy(lg + (int64_t)i * cfg->vocab_size, cfg->vocab_size);
    if (lg != logits)
        free(lg);
done:
    scratch_free(&s);
    return st;
}
