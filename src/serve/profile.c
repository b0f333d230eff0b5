/* Per-stage profile of one step on the CPU engine, by replay: right after a
 * step's forward (before its sequences are committed, so every block table is
 * still valid) the same stages run again on scratch data of the same shapes,
 * each timed on its own — linear quant(+lift), GEMM, dequant through the
 * ss_linear stage functions, attention over the real cache, norms and
 * elementwise ops, final norm + lm_head. The cache is only read (keys and
 * values are not rewritten), so the replay changes no result. It costs one
 * more forward per step and runs only under --profile; the engine itself has
 * no timing points. GPU engines need event-based timing instead
 * (SS_EUNSUPPORTED here). */
#include "profile.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "engine/cuda/engine_gpu.h"
#include "engine/model.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    uint16_t *x, *h, *qkv, *att, *gu, *act, *proj; /* as in forward.c, (t, width) */
    void *q;      // (m_pad, q_cols) quantized activations, widest linear
    float *sa;    // (m_pad)
    void *d;      // (m_pad, n) GEMM output, widest linear
    void *y;      // (t, n) dequant output (F32 for lm_head)
    ss_tok_info *tok; // (t)
} replay_buf;

static void buf_free(replay_buf *b) {
    free(b->x);
    free(b->h);
    free(b->qkv);
    free(b->att);
    free(b->gu);
    free(b->act);
    free(b->proj);
    free(b->q);
    free(b->sa);
    free(b->d);
    free(b->y);
    free(b->tok);
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Widest quantized row (bytes) and output row (4 bytes per element). */
static void linear_widths(const ss_linear *l, size_t *qrow, size_t *drow) {
    const ss_linear_desc *d = ss_linear_get_desc(l);
    *qrow = max_sz(*qrow, (size_t)ss_linear_q_cols(l) * 2);
    *drow = max_sz(*drow, (size_t)d->n * 4);
}

static ss_status buf_alloc(const ss_model *m, int64_t t, replay_buf *b) {
    memset(b, 0, sizeof *b);
    const ss_model_config *c = &m->cfg;
    size_t tt = (size_t)t, mp = (size_t)ss_linear_m_pad(t), hd = (size_t)c->head_dim;
    size_t qd = (size_t)c->num_attention_heads * hd, kvd = (size_t)c->num_key_value_heads * hd;
    size_t hmax = max_sz(qd, (size_t)c->hidden_size), qrow = 0, drow = 0;
    for (int i = 0; i < c->num_hidden_layers; i++) {
        const ss_layer *L = &m->layers[i];
        linear_widths(L->qkv, &qrow, &drow);
        linear_widths(L->o, &qrow, &drow);
        linear_widths(L->gate_up, &qrow, &drow);
        linear_widths(L->down, &qrow, &drow);
    }
    linear_widths(m->lm_head, &qrow, &drow);
    b->x = calloc(tt * (size_t)c->hidden_size, 2);
    b->h = calloc(tt * hmax, 2);
    b->qkv = calloc(tt * (qd + 2 * kvd), 2);
    b->att = calloc(tt * qd, 2);
    b->gu = calloc(tt * 2 * (size_t)c->intermediate_size, 2);
    b->act = calloc(tt * (size_t)c->intermediate_size, 2);
    b->proj = calloc(tt * (size_t)c->hidden_size, 2);
    b->q = calloc(mp * qrow, 1);
    b->sa = calloc(mp, sizeof *b->sa);
    b->d = calloc(mp * drow, 1);
    b->y = calloc(tt * drow, 1);
    b->tok = calloc(tt, sizeof *b->tok);
    if (!b->x || !b->h || !b->qkv || !b->att || !b->gu || !b->act || !b->proj || !b->q || !b->sa || !b->d ||
        !b->y || !b->tok) {
        buf_free(b);
        return ss_fail(SS_ENOMEM, "profile: out of memory for %lld tokens", (long long)t);
    }
    /* Activations of magnitude ~1 (BF16 1.0 +- small steps), so quantization
     * sees ordinary rows; the values do not matter for the timing. */
    for (size_t i = 0; i < tt * (size_t)c->hidden_size; i++)
        b->x[i] = (uint16_t)(0x3f80 + (i * 37 % 64));
    return SS_OK;
}

/* quant -> GEMM -> dequant of one linear on m rows of x, each stage timed. */
static ss_status time_linear(ss_linear *l, const uint16_t *x, int64_t m, replay_buf *b, ss_stage_times *st,
                             int lm_head) {
    double t0 = now_s();
    SS_TRY(ss_linear_quant(l, x, m, b->q, b->sa));
    double t1 = now_s();
    SS_TRY(ss_linear_gemm(l, b->q, m, b->d));
    double t2 = now_s();
    SS_TRY(ss_linear_dequant(l, b->d, b->sa, m, b->y));
    double t3 = now_s();
    if (lm_head) {
        st->lm_head_s += t3 - t0;
    } else {
        st->quant_s += t1 - t0;
        st->gemm_s += t2 - t1;
        st->dequant_s += t3 - t2;
    }
    return SS_OK;
}

int ss_profile_replay_supported(const ss_model *m) { return ss_context_device(m->ctx) < 0; }

ss_status ss_profile_replay(ss_model *m, ss_kv_cache *c, const ss_seq_step *seqs, int n_seqs,
                            ss_stage_times *st) {
    memset(st, 0, sizeof *st);
    if (!ss_profile_replay_supported(m))
        return ss_fail(SS_EUNSUPPORTED, "profile: the stage replay runs on the CPU engine only");
    const ss_model_config *cfg = &m->cfg;
    const ss_engine_ops *op = m->ops;
    int64_t t = 0;
    for (int i = 0; i < n_seqs; i++)
        t += seqs[i].n_tokens;
    replay_buf b;
    SS_TRY(buf_alloc(m, t, &b));
    for (int64_t r = 0, i = 0; i < n_seqs; i++)
        for (int64_t j = 0; j < seqs[i].n_tokens; j++, r++)
            b.tok[r] = (ss_tok_info){.seq = (int32_t)i, .pos = (int32_t)(seqs[i].start_pos + j)};
    int nh = cfg->num_attention_heads, nkv = cfg->num_key_value_heads, hd = cfg->head_dim;
    int64_t h = cfg->hidden_size, qd = (int64_t)nh * hd, inter = cfg->intermediate_size;
    float eps = (float)cfg->rms_norm_eps;
    ss_status rc = SS_OK;
    double t0;
    for (int li = 0; li < cfg->num_hidden_layers && rc == SS_OK; li++) {
        const ss_layer *L = &m->layers[li];
        t0 = now_s();
        op->rmsnorm(b.x, L->in_norm, t, h, eps, b.h);
        st->norms_s += now_s() - t0;
        if ((rc = time_linear(L->qkv, b.h, t, &b, st, 0)) != SS_OK)
            break;
        t0 = now_s();
        op->rope(b.qkv, b.tok, t, nh, nkv, hd, m->inv_freq);
        st->norms_s += now_s() - t0;
        /* kv_write is skipped: the cache holds the step's real keys/values. */
        t0 = now_s();
        op->attention(c, li, b.qkv, b.tok, t, seqs, nh, b.att);
        st->attention_s += now_s() - t0;
        t0 = now_s();
        if (L->attn_sub_norm)
            op->rmsnorm(b.att, L->attn_sub_norm, t, qd, eps, b.h);
        st->norms_s += now_s() - t0;
        if ((rc = time_linear(L->o, b.h, t, &b, st, 0)) != SS_OK)
            break;
        t0 = now_s();
        op->residual_add(b.x, b.proj, t, h);
        op->rmsnorm(b.x, L->post_norm, t, h, eps, b.h);
        st->norms_s += now_s() - t0;
        if ((rc = time_linear(L->gate_up, b.h, t, &b, st, 0)) != SS_OK)
            break;
        t0 = now_s();
        op->glu(b.gu, t, inter, cfg->arch == SS_ARCH_BITNET, b.act);
        if (L->ffn_sub_norm)
            op->rmsnorm(b.act, L->ffn_sub_norm, t, inter, eps, b.gu);
        st->norms_s += now_s() - t0;
        if ((rc = time_linear(L->down, b.act, t, &b, st, 0)) != SS_OK)
            break;
        t0 = now_s();
        op->residual_add(b.x, b.proj, t, h);
        st->norms_s += now_s() - t0;
    }
    if (rc == SS_OK) {
        t0 = now_s();
        op->rmsnorm(b.x, m->final_norm, n_seqs, h, eps, b.h);
        st->lm_head_s += now_s() - t0;
        rc = time_linear(m->lm_head, b.h, n_seqs, &b, st, 1);
    }
    buf_free(&b);
    return rc;
}

// --- GPU engine: events inside the forward -------------------------------------------------------

int ss_profile_gpu_supported(const ss_model *m) {
#ifdef SS_HAVE_CUDA
    return m->gpu != NULL;
#else
    (void)m;
    return 0;
#endif
}

ss_status ss_profile_gpu_enable(ss_model *m, int on) {
#ifdef SS_HAVE_CUDA
    return ss_engine_gpu_set_profile(m, on);
#else
    (void)m;
    (void)on;
    return ss_fail(SS_EUNSUPPORTED, "profile: built without CUDA");
#endif
}

void ss_profile_gpu_read(const ss_model *m, ss_stage_times *st) {
    memset(st, 0, sizeof *st);
#ifdef SS_HAVE_CUDA
    double s[SS_GPU_STAGE_COUNT];
    ss_engine_gpu_stage_times(m, s);
    st->quant_s = s[SS_GPU_STAGE_QUANT];
    st->gemm_s = s[SS_GPU_STAGE_GEMM];
    st->dequant_s = s[SS_GPU_STAGE_DEQUANT];
    st->attention_s = s[SS_GPU_STAGE_ATTENTION];
    st->norms_s = s[SS_GPU_STAGE_NORMS];
    st->lm_head_s = s[SS_GPU_STAGE_LM_HEAD];
    st->sampling_s = s[SS_GPU_STAGE_SAMPLING];
#else
    (void)m;
#endif
}
