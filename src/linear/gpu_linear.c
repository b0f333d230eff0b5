/* The part of a linear layer both GPU backends share (CUDA builds): device
 * weight scales and bias, quant (+lift) and dequant (+bias) through our
 * kernels, the staged GEMM (library GEMM on m_pad x n_pad, then the caller's
 * (m, n) view) and the fused forward through context-owned scratch.
 */
#ifdef SS_HAVE_CUDA
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "linear/cuda_state.h"
#include "slidesparse/quant.h"

static int64_t ceil32(int64_t x) { return (x + 31) / 32 * 32; }

/* Whether g's kernels on m rows are programmatic dependent launches. */
static int pdl_at(const ss_gpu_linear *g, int64_t m) { return ss_pdl_for(g->pdl, m); }

cudaDataType_t ss_cuda_data_type(ss_dtype t) {
    switch (t) {
    case SS_DTYPE_I8: return CUDA_R_8I;
    case SS_DTYPE_F8_E4M3: return CUDA_R_8F_E4M3;
    case SS_DTYPE_BF16: return CUDA_R_16BF;
    case SS_DTYPE_I32: return CUDA_R_32I;
    default: return CUDA_R_32F;
    }
}

ss_gpu_tune_key ss_gpu_linear_key(const ss_gpu_linear *g, int64_t m_pad) {
    return (ss_gpu_tune_key){.m_bucket = m_pad, .n = g->n_pad, .k = g->kq, .in = g->qdt, .out = g->ddt};
}

const ss_algo *ss_gpu_tuned(ss_context *ctx, ss_backend b, const ss_gpu_tune_key *key) {
    if (!ctx || !ctx->tuner || !ctx->tuner->gemm)
        return NULL;
    return ctx->tuner->gemm(ctx->tuner_user, ctx, b, key->in, key->out, key->n, key->k,
                            key->m_bucket);
}

int ss_gpu_tuned_quant(ss_context *ctx, ss_dtype qdt, int64_t k, int64_t k_out, int64_t m,
                       ss_quant_launch *out) {
    if (!ctx || !ctx->tuner || !ctx->tuner->quant)
        return 0;
    return ctx->tuner->quant(ctx->tuner_user, ctx, qdt, k, k_out, m, out);
}

int ss_gpu_plan_slot(const void *plans, size_t size, int n, int64_t m_pad, int *next_evict,
                     int *hit) {
    const char *base = plans;
    int64_t mp;
    *hit = 0;
    for (int i = 0; i < n; i++) {
        memcpy(&mp, base + (size_t)i * size, sizeof mp);
        if (mp == m_pad) {
            *hit = 1;
            return i;
        }
    }
    for (int i = 0; i < n; i++) {
        memcpy(&mp, base + (size_t)i * size, sizeof mp);
        if (mp == 0)
            return i;
    }
    int slot = *next_evict;
    *next_evict = (*next_evict + 1) % n;
    return slot;
}

ss_status ss_gpu_upload_rows(void **dst, const void *src, int64_t n, int64_t k, int64_t n_pad,
                             int64_t kpad, size_t esz, const char *name) {
    size_t bytes = (size_t)n_pad * (size_t)kpad * esz;
    SS_TRY(ss_cuda_alloc(dst, bytes, name, "weights"));
    cudaError_t e = cudaSuccess;
    if (n_pad != n || kpad != k)
        e = cudaMemset(*dst, 0, bytes);
    if (e == cudaSuccess)
        e = cudaMemcpy2D(*dst, (size_t)kpad * esz, src, (size_t)k * esz, (size_t)k * esz,
                         (size_t)n, cudaMemcpyHostToDevice);
    if (e != cudaSuccess) {
        cudaFree(*dst);
        *dst = NULL;
        return ss_cuda_fail(e, name, "uploading weights");
    }
    return SS_OK;
}

ss_status ss_gpu_linear_init(ss_gpu_linear *g, ss_context *ctx, const ss_linear_desc *d,
                             const ss_linear_weights *w, ss_gpu_gemm_fn gemm_raw) {
    snprintf(g->name, sizeof g->name, "%s", d->name ? d->name : "(unnamed)");
    g->ctx = ctx;
    g->n = d->n;
    g->n_pad = ceil32(d->n);
    g->k = d->k;
    g->kq = ss_slid_k(d->pattern, d->k);
    g->qdt = d->wdtype;
    g->ddt = d->gemm_out;
    g->ydt = d->out_dtype;
    g->gemm_raw = gemm_raw;
    g->pdl = ss_kernel_pdl_on(ss_context_device(ctx));
    g->geo = (ss_lift_geom){.k = d->k, .k_out = g->kq, .k_raw = d->k, .l = 0, .g = 0};
    if (!ss_pattern_is_dense(d->pattern)) {
        int64_t l = ss_pattern_group_len(d->pattern, d->k);
        g->geo.l = (int)l;
        g->geo.g = (int)(2 * l - 4); /* G = 4(N-1), N = L/2 */
        g->geo.k_raw = ss_slid_k_raw(d->pattern, d->k);
    }
    /* BF16 weights have no scale: 1.0 keeps one epilogue (x * 1.0f is exact). */
    int64_t ns = d->per_channel && w->w_scale ? d->n : 1;
    g->sb_per_channel = d->per_channel && w->w_scale;
    float one = 1.0f;
    SS_TRY(ss_cuda_alloc((void **)&g->sb, (size_t)ns * sizeof(float), g->name, "weight scale"));
    cudaError_t e = cudaMemcpy(g->sb, w->w_scale ? w->w_scale : &one, (size_t)ns * sizeof(float),
                               cudaMemcpyHostToDevice);
    if (e != cudaSuccess)
        return ss_cuda_fail(e, g->name, "uploading weight scale");
    if (w->bias) {
        SS_TRY(ss_cuda_alloc((void **)&g->bias, (size_t)d->n * 2, g->name, "bias"));
        e = cudaMemcpy(g->bias, w->bias, (size_t)d->n * 2, cudaMemcpyHostToDevice);
        if (e != cudaSuccess)
            return ss_cuda_fail(e, g->name, "uploading bias");
    }
    return SS_OK;
}

void ss_gpu_linear_fini(ss_gpu_linear *g) {
    if (g->sb)
        cudaFree(g->sb);
    if (g->bias)
        cudaFree(g->bias);
    g->sb = NULL;
    g->bias = NULL;
}

/* The launch configuration tuned for g's quant stage at m, when the row
 * kernel can take (x, gamma, q): 1 with *cfg filled; else 0, *cfg automatic. */
static int tuned_quant(ss_gpu_linear *g, const uint16_t *x, const uint16_t *gamma, const void *q,
                       int64_t m, ss_quant_launch *cfg) {
    if (ss_kernel_quant_rows_fit(g->qdt, x, gamma, g->geo, q) &&
        ss_gpu_tuned_quant(g->ctx, g->qdt, g->k, g->kq, m, cfg))
        return 1;
    *cfg = (ss_quant_launch){0, 0};
    return 0;
}

/* The quant(+lift) launch, with the RMSNorm prologue when gamma != NULL. A
 * launch configuration tuned for (qdt, K, K', M) (the context's tuner)
 * picks the row kernel's vectors per thread; a call the row kernel cannot
 * take (BF16, K % 8, alignment), or a tuned vecs it refuses, gets the
 * automatic choice. PDL follows pdl_at (SS_PDL, batch size), not the tuned flag: that
 * was measured behind a plain kernel, while in a forward every kernel around
 * this one is a dependent launch too, and SS_PDL=0 must turn all off. */
static cudaError_t quant_launch(ss_gpu_linear *g, const uint16_t *x, const uint16_t *gamma,
                                float eps, int64_t m, int64_t mp, void *q, float *sa) {
    cudaStream_t s = ss_cuda_stream(g->ctx);
    ss_quant_launch cfg;
    if (tuned_quant(g, x, gamma, q, m, &cfg)) {
        cudaError_t e = gamma ? ss_kernel_quant_rmsnorm(g->qdt, x, gamma, eps, m, mp, g->geo, q, sa,
                                                        cfg.vecs, pdl_at(g, m), s)
                              : ss_kernel_quant_vecs(g->qdt, x, m, mp, g->geo, q, sa, cfg.vecs,
                                                     pdl_at(g, m), s);
        if (e != cudaErrorInvalidValue) /* refused before launching: nothing is queued */
            return e;
        (void)cudaGetLastError(); /* a refusal inside the runtime left it as the last error */
    }
    return gamma ? ss_kernel_quant_rmsnorm(g->qdt, x, gamma, eps, m, mp, g->geo, q, sa, 0, pdl_at(g, m), s)
                 : ss_kernel_quant_pdl(g->qdt, x, m, mp, g->geo, q, sa, 0, pdl_at(g, m), s);
}

ss_status ss_gpu_quant(ss_linear *lin, const uint16_t *x, int64_t m, void *q, float *sa) {
    ss_gpu_linear *g = (ss_gpu_linear *)lin;
    cudaError_t e = quant_launch(g, x, NULL, 0.0f, m, ss_linear_m_pad(m), q, sa);
    return e == cudaSuccess ? SS_OK : ss_cuda_fail(e, g->name, "quant kernel");
}

ss_status ss_gpu_quant_rmsnorm(ss_linear *lin, const uint16_t *x, const uint16_t *gamma, float eps,
                               int64_t m, void *q, float *sa) {
    ss_gpu_linear *g = (ss_gpu_linear *)lin;
    cudaError_t e = quant_launch(g, x, gamma, eps, m, ss_linear_m_pad(m), q, sa);
    return e == cudaSuccess ? SS_OK : ss_cuda_fail(e, g->name, "rmsnorm + quant kernel");
}

ss_status ss_gpu_dequant(ss_linear *lin, const void *d, const float *sa, int64_t m, void *y) {
    ss_gpu_linear *g = (ss_gpu_linear *)lin;
    cudaError_t e = ss_kernel_dequant_bias_pdl(g->ddt, d, g->n, sa, g->sb, g->sb_per_channel, g->bias,
                                               m, g->n, g->ydt, y, pdl_at(g, m), ss_cuda_stream(g->ctx));
    return e == cudaSuccess ? SS_OK : ss_cuda_fail(e, g->name, "dequant kernel");
}

/* The libraries run on m_pad x n_pad; the caller's d is (m, n): when the two
 * differ, the GEMM writes the context's scratch and a 2-D copy trims it. */
ss_status ss_gpu_gemm(ss_linear *lin, const void *q, int64_t m, void *d) {
    ss_gpu_linear *g = (ss_gpu_linear *)lin;
    int64_t mp = ss_linear_m_pad(m);
    if (mp == m && g->n_pad == g->n)
        return g->gemm_raw(g, q, mp, d);
    ss_cuda_state *st = ss_cuda(g->ctx);
    size_t esz = ss_dtype_size(g->ddt);
    SS_TRY(ss_cuda_buf_reserve(&st->scratch_d, (size_t)mp * (size_t)g->n_pad * esz, g->name,
                               "GEMM output scratch"));
    SS_TRY(g->gemm_raw(g, q, mp, st->scratch_d.p));
    cudaError_t e = cudaMemcpy2DAsync(d, (size_t)g->n * esz, st->scratch_d.p,
                                      (size_t)g->n_pad * esz, (size_t)g->n * esz, (size_t)m,
                                      cudaMemcpyDeviceToDevice, ss_cuda_stream(g->ctx));
    return e == cudaSuccess ? SS_OK : ss_cuda_fail(e, g->name, "trimming GEMM output");
}

/* What follows the GEMM in a forward: the plain dequant into y, or dequant
 * fused with the gated activation (act) or the residual add (resid). */
typedef enum { EPI_PLAIN, EPI_GLU, EPI_RESIDUAL } epi_kind;

typedef struct {
    epi_kind kind;
    int relu2;    /* EPI_GLU */
    void *out;    /* y, act or resid */
} epilogue;

static ss_status epilogue_launch(ss_gpu_linear *g, const epilogue *ep, const void *d, int64_t ldd,
                                 const float *sa, int64_t m) {
    cudaStream_t s = ss_cuda_stream(g->ctx);
    cudaError_t e;
    const char *what;
    switch (ep->kind) {
    case EPI_GLU:
        e = ss_kernel_dequant_glu_pdl(g->ddt, d, ldd, sa, g->sb, g->sb_per_channel, g->bias, m,
                                      g->n / 2, ep->relu2, ep->out, pdl_at(g, m), s);
        what = "dequant + glu kernel";
        break;
    case EPI_RESIDUAL:
        e = ss_kernel_dequant_residual_pdl(g->ddt, d, ldd, sa, g->sb, g->sb_per_channel, g->bias,
                                           m, g->n, ep->out, pdl_at(g, m), s);
        what = "dequant + residual kernel";
        break;
    default:
        e = ss_kernel_dequant_bias_pdl(g->ddt, d, ldd, sa, g->sb, g->sb_per_channel, g->bias, m,
                                       g->n, g->ydt, ep->out, pdl_at(g, m), s);
        what = "dequant kernel";
    }
    return e == cudaSuccess ? SS_OK : ss_cuda_fail(e, g->name, what);
}

ss_status ss_gpu_dequant_glu(ss_linear *lin, const void *d, const float *sa, int64_t m, int relu2,
                             uint16_t *act) {
    ss_gpu_linear *g = (ss_gpu_linear *)lin;
    epilogue ep = {EPI_GLU, relu2, act};
    return epilogue_launch(g, &ep, d, g->n, sa, m);
}

ss_status ss_gpu_dequant_residual(ss_linear *lin, const void *d, const float *sa, int64_t m,
                                  uint16_t *resid) {
    ss_gpu_linear *g = (ss_gpu_linear *)lin;
    epilogue ep = {EPI_RESIDUAL, 0, resid};
    return epilogue_launch(g, &ep, d, g->n, sa, m);
}

/* a's dequant + residual add and b's norm + quant in one row kernel, with the
 * launch configuration quant_launch would give b's quant stage (so the sum
 * of squares runs in the same order: the same bits as the two stages); the
 * two stages where the kernel refuses the call. */
ss_status ss_gpu_residual_rmsnorm_quant(ss_linear *a, const void *d, const float *sa, int64_t m,
                                        uint16_t *resid, ss_linear *b, const uint16_t *gamma,
                                        float eps, void *q, float *sq) {
    ss_gpu_linear *ga = (ss_gpu_linear *)a, *gb = (ss_gpu_linear *)b;
    cudaStream_t s = ss_cuda_stream(gb->ctx);
    int64_t mp = ss_linear_m_pad(m);
    ss_quant_launch cfg;
    tuned_quant(gb, resid, gamma, q, m, &cfg);
    cudaError_t e = ss_kernel_residual_quant_rmsnorm(ga->ddt, d, ga->n, sa, ga->sb, ga->sb_per_channel,
                                                     ga->bias, resid, gb->qdt, gamma, eps, m, mp,
                                                     gb->geo, q, sq, cfg.vecs, pdl_at(gb, m), s);
    if (e == cudaErrorInvalidValue) { /* refused before launching: nothing is queued */
        (void)cudaGetLastError(); /* a refusal inside the runtime left it as the last error */
        SS_TRY(ss_gpu_dequant_residual(a, d, sa, m, resid));
        return ss_gpu_quant_rmsnorm(b, resid, gamma, eps, m, q, sq);
    }
    return e == cudaSuccess ? SS_OK : ss_cuda_fail(e, gb->name, "residual + rmsnorm + quant kernel");
}

/* quant (+ the norm when gamma != NULL) -> GEMM -> the epilogue through the
 * context's scratch. */
static ss_status forward(ss_gpu_linear *g, const uint16_t *x, const uint16_t *gamma, float eps,
                         int64_t m, const epilogue *ep) {
    ss_cuda_state *st = ss_cuda(g->ctx);
    int64_t mp = ss_linear_m_pad(m);
    SS_TRY(ss_cuda_buf_reserve(&st->scratch_q,
                               (size_t)mp * (size_t)g->kq * ss_dtype_size(g->qdt) + SS_GPU_GEMM_SLACK,
                               g->name, "quantized activations"));
    SS_TRY(ss_cuda_buf_reserve(&st->scratch_sa, (size_t)mp * sizeof(float), g->name,
                               "token scales"));
    SS_TRY(ss_cuda_buf_reserve(&st->scratch_d, (size_t)mp * (size_t)g->n_pad * ss_dtype_size(g->ddt),
                               g->name, "GEMM output"));
    cudaError_t e = quant_launch(g, x, gamma, eps, m, mp, st->scratch_q.p, st->scratch_sa.p);
    if (e != cudaSuccess)
        return ss_cuda_fail(e, g->name, gamma ? "rmsnorm + quant kernel" : "quant kernel");
    SS_TRY(g->gemm_raw(g, st->scratch_q.p, mp, st->scratch_d.p));
    return epilogue_launch(g, ep, st->scratch_d.p, g->n_pad, st->scratch_sa.p, m);
}

ss_status ss_gpu_forward(ss_linear *lin, const uint16_t *x, int64_t m, void *y) {
    epilogue ep = {EPI_PLAIN, 0, y};
    return forward((ss_gpu_linear *)lin, x, NULL, 0.0f, m, &ep);
}

ss_status ss_gpu_forward_rmsnorm(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                 float eps, int64_t m, void *y) {
    epilogue ep = {EPI_PLAIN, 0, y};
    return forward((ss_gpu_linear *)lin, x, gamma, eps, m, &ep);
}

ss_status ss_gpu_forward_glu(ss_linear *lin, const uint16_t *x, const uint16_t *gamma, float eps,
                             int64_t m, int relu2, uint16_t *act) {
    epilogue ep = {EPI_GLU, relu2, act};
    return forward((ss_gpu_linear *)lin, x, gamma, eps, m, &ep);
}

ss_status ss_gpu_forward_residual(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                  float eps, int64_t m, uint16_t *resid) {
    epilogue ep = {EPI_RESIDUAL, 0, resid};
    return forward((ss_gpu_linear *)lin, x, gamma, eps, m, &ep);
}
#endif
