/* Dense linear layers through cuBLASLt (SPEC §5): INT8 -> INT32 (compute 32I),
 * FP8 e4m3 -> BF16 or F32 (compute 32F), BF16 -> BF16 or F32 (compute 32F).
 *
 * Layout trick: W row-major (n, kq) is a column-major kq x n matrix used
 * transposed; the activations (m_pad, kq) are column-major kq x m_pad; D is
 * column-major n_pad x m_pad (ld n_pad) = row-major (m_pad, n_pad).
 * K is zero-padded to kq = ceil32(K) and N to n_pad = ceil32(N) at creation.
 *
 * The algorithm for each M bucket (m_pad) comes from ss_cublaslt_pick_algo,
 * the hook the tuning table plugs into; it is asked once per bucket and the
 * layouts + algorithm are cached in the linear, never rebuilt per call.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "linear/cuda_state.h"

#define SS_LT_PLANS 32
#define SS_LT_MAX_WORKSPACE ((size_t)32 << 20)

typedef struct {
    int64_t m_pad;               /* first (ss_gpu_plan_slot); 0 = empty slot */
    cublasLtMatrixLayout_t lb, ld;
    cublasLtMatmulAlgo_t algo;
    size_t workspace;
} lt_plan;
_Static_assert(offsetof(lt_plan, m_pad) == 0, "ss_gpu_plan_slot reads m_pad first");

typedef struct {
    ss_gpu_linear g;       /* first */
    void *w;               /* (n_pad, kq) of qdt, device */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la;
    cudaDataType_t in_t, out_t;
    lt_plan plans[SS_LT_PLANS];
    int next_evict;
} lt_linear;

/* cuBLASLt's heuristic: up to `want` results within the workspace cap. */
static cublasStatus_t lt_heuristic(cublasLtHandle_t lt, cublasLtMatmulDesc_t op,
                                   cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                                   cublasLtMatrixLayout_t ld, int want,
                                   cublasLtMatmulHeuristicResult_t *res, int *found) {
    cublasLtMatmulPreference_t pref = NULL;
    size_t cap = SS_LT_MAX_WORKSPACE;
    *found = 0;
    cublasStatus_t s = cublasLtMatmulPreferenceCreate(&pref);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                 &cap, sizeof cap);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, ld, ld, pref, want, res, found);
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    return s;
}

/* A stored algorithm, if cuBLASLt accepts it for these descriptors (a table
 * from another shape or library never gets applied). */
static int lt_algo_usable(cublasLtHandle_t lt, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t la,
                          cublasLtMatrixLayout_t lb, cublasLtMatrixLayout_t ld,
                          const uint8_t *opaque, cublasLtMatmulAlgo_t *algo, size_t *workspace) {
    cublasLtMatmulHeuristicResult_t chk;
    memcpy(algo, opaque, sizeof *algo);
    if (cublasLtMatmulAlgoCheck(lt, op, la, lb, ld, ld, algo, &chk) != CUBLAS_STATUS_SUCCESS ||
        chk.state != CUBLAS_STATUS_SUCCESS || chk.workspaceSize > SS_LT_MAX_WORKSPACE)
        return 0;
    *workspace = chk.workspaceSize;
    return 1;
}

/* The tuning hook: the algorithm for `key` from the context's tuner (the
 * tuning table of slidesparse/tune.h, loaded on first use) when cuBLASLt
 * accepts it, else cuBLASLt's heuristic, top-1 within the workspace cap. */
static ss_status ss_cublaslt_pick_algo(ss_context *ctx, const ss_gpu_tune_key *key,
                                       cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t la,
                                       cublasLtMatrixLayout_t lb, cublasLtMatrixLayout_t ld,
                                       cublasLtMatmulAlgo_t *algo, size_t *workspace,
                                       const char *name) {
    ss_cuda_state *st = ss_cuda(ctx);
    const ss_algo *a = ss_gpu_tuned(ctx, SS_BACKEND_CUBLASLT, key);
    if (a && a->has_opaque && lt_algo_usable(st->lt, op, la, lb, ld, a->opaque, algo, workspace))
        return SS_OK;
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t s = lt_heuristic(st->lt, op, la, lb, ld, 1, &res, &found);
    if (s != CUBLAS_STATUS_SUCCESS || found == 0)
        return ss_fail(SS_EUNSUPPORTED,
                       "tensor '%s': cuBLASLt has no algorithm for %s -> %s, M %lld N %lld K %lld "
                       "(status %d: %s)", name, ss_dtype_name(key->in), ss_dtype_name(key->out),
                       (long long)key->m_bucket, (long long)key->n, (long long)key->k, (int)s,
                       cublasLtGetStatusString(s));
    *algo = res.algo;
    *workspace = res.workspaceSize;
    return SS_OK;
}

static void plan_clear(lt_plan *p) {
    if (p->lb)
        cublasLtMatrixLayoutDestroy(p->lb);
    if (p->ld)
        cublasLtMatrixLayoutDestroy(p->ld);
    memset(p, 0, sizeof *p);
}

/* The cached plan for m_pad, built on first use. */
static ss_status plan_get(lt_linear *c, int64_t mp, lt_plan **out) {
    ss_gpu_linear *g = &c->g;
    int hit;
    int slot = ss_gpu_plan_slot(c->plans, sizeof *c->plans, SS_LT_PLANS, mp, &c->next_evict, &hit);
    lt_plan *p = &c->plans[slot];
    if (hit) {
        *out = p;
        return SS_OK;
    }
    plan_clear(p); /* an evicted plan; no-op on an empty slot */
    ss_cuda_state *st = ss_cuda(g->ctx);
    if (cublasLtMatrixLayoutCreate(&p->lb, c->in_t, (uint64_t)g->kq, (uint64_t)mp, g->kq) !=
            CUBLAS_STATUS_SUCCESS ||
        cublasLtMatrixLayoutCreate(&p->ld, c->out_t, (uint64_t)g->n_pad, (uint64_t)mp,
                                   g->n_pad) != CUBLAS_STATUS_SUCCESS) {
        plan_clear(p);
        return ss_fail(SS_ECUDA, "tensor '%s': cuBLASLt layout for M %lld failed", g->name,
                       (long long)mp);
    }
    ss_gpu_tune_key key = ss_gpu_linear_key(g, mp);
    ss_status s = ss_cublaslt_pick_algo(g->ctx, &key, c->op, c->la, p->lb, p->ld, &p->algo,
                                        &p->workspace, g->name);
    if (s == SS_OK)
        s = ss_cuda_buf_reserve(&st->workspace, p->workspace, g->name, "GEMM workspace");
    if (s != SS_OK) {
        plan_clear(p);
        return s;
    }
    p->m_pad = mp;
    *out = p;
    return SS_OK;
}

static ss_status lt_gemm_raw(ss_gpu_linear *g, const void *q, int64_t mp, void *d) {
    lt_linear *c = (lt_linear *)g;
    lt_plan *p = NULL;
    SS_TRY(plan_get(c, mp, &p));
    ss_cuda_state *st = ss_cuda(g->ctx);
    int32_t ai = 1, bi = 0;
    float af = 1.0f, bf = 0.0f;
    const void *alpha = g->qdt == SS_DTYPE_I8 ? (const void *)&ai : (const void *)&af;
    const void *beta = g->qdt == SS_DTYPE_I8 ? (const void *)&bi : (const void *)&bf;
    cublasStatus_t s = cublasLtMatmul(st->lt, c->op, alpha, c->w, c->la, q, p->lb, beta, d, p->ld,
                                      d, p->ld, &p->algo, st->workspace.p, p->workspace,
                                      ss_cuda_stream(g->ctx));
    if (s != CUBLAS_STATUS_SUCCESS)
        return ss_fail(SS_ECUDA, "tensor '%s': cublasLtMatmul M %lld N %lld K %lld: %s", g->name,
                       (long long)mp, (long long)g->n_pad, (long long)g->kq,
                       cublasLtGetStatusString(s));
    return SS_OK;
}

static void lt_destroy(ss_linear *lin) {
    lt_linear *c = (lt_linear *)lin;
    if (!c)
        return;
    /* queued GEMMs may still read the weights */
    cudaStreamSynchronize(ss_cuda_stream(c->g.ctx));
    for (int i = 0; i < SS_LT_PLANS; i++)
        plan_clear(&c->plans[i]);
    if (c->la)
        cublasLtMatrixLayoutDestroy(c->la);
    if (c->op)
        cublasLtMatmulDescDestroy(c->op);
    if (c->w)
        cudaFree(c->w);
    ss_gpu_linear_fini(&c->g);
    free(c);
}

static const char *lt_supports(const ss_context *ctx, ss_dtype wdtype, ss_pattern p) {
    if (!ss_pattern_is_dense(p))
        return "cuBLASLt runs dense weights only (slid patterns go to cusparselt)";
    if (wdtype != SS_DTYPE_I8 && wdtype != SS_DTYPE_F8_E4M3 && wdtype != SS_DTYPE_BF16)
        return "cuBLASLt takes I8, F8_E4M3 or BF16 weights";
    return ss_cuda_dtype_reason(ss_cuda(ctx), wdtype);
}

static ss_status lt_create(ss_context *ctx, const ss_linear_desc *d, const ss_linear_weights *w,
                           ss_linear **out) {
    if (d->wdtype == SS_DTYPE_I8 && d->gemm_out != SS_DTYPE_I32)
        return ss_fail(SS_EUNSUPPORTED, "tensor '%s': cuBLASLt INT8 GEMM writes I32, found "
                       "gemm_out %s", d->name, ss_dtype_name(d->gemm_out));
    lt_linear *c = calloc(1, sizeof *c);
    if (!c)
        return ss_fail(SS_ENOMEM, "tensor '%s': out of host memory", d->name);
    ss_gpu_linear *g = &c->g;
    ss_status s = ss_gpu_linear_init(g, ctx, d, w, lt_gemm_raw);
    if (s != SS_OK)
        goto fail;
    s = ss_gpu_upload_rows(&c->w, w->w, d->n, d->k, g->n_pad, g->kq, ss_dtype_size(d->wdtype),
                           g->name);
    if (s != SS_OK)
        goto fail;
    c->in_t = ss_cuda_data_type(d->wdtype);
    c->out_t = ss_cuda_data_type(d->gemm_out);
    int i8 = d->wdtype == SS_DTYPE_I8;
    cublasOperation_t T = CUBLAS_OP_T;
    if (cublasLtMatmulDescCreate(&c->op, i8 ? CUBLAS_COMPUTE_32I : CUBLAS_COMPUTE_32F,
                                 i8 ? CUDA_R_32I : CUDA_R_32F) != CUBLAS_STATUS_SUCCESS ||
        cublasLtMatmulDescSetAttribute(c->op, CUBLASLT_MATMUL_DESC_TRANSA, &T, sizeof T) !=
            CUBLAS_STATUS_SUCCESS ||
        cublasLtMatrixLayoutCreate(&c->la, c->in_t, (uint64_t)g->kq, (uint64_t)g->n_pad, g->kq) !=
            CUBLAS_STATUS_SUCCESS) {
        s = ss_fail(SS_ECUDA, "tensor '%s': cuBLASLt descriptor creation failed", d->name);
        goto fail;
    }
    *out = &g->base;
    return SS_OK;
fail:
    lt_destroy(&g->base);
    return s;
}

// --- the tuner's candidates (linear.h) ------------------------------------------------

#define SS_LT_CANDIDATES 32

/* The heuristic's list for this M bucket ("ask for many"); 0 when none. */
static int lt_candidates(lt_linear *c, int64_t mp, cublasLtMatmulHeuristicResult_t *res) {
    lt_plan *p = NULL;
    if (plan_get(c, mp, &p) != SS_OK) {
        ss_clear_error();
        return 0;
    }
    int found = 0;
    if (lt_heuristic(ss_cuda(c->g.ctx)->lt, c->op, c->la, p->lb, p->ld, SS_LT_CANDIDATES, res,
                     &found) != CUBLAS_STATUS_SUCCESS)
        return 0;
    return found;
}

static int lt_algo_count(ss_linear *lin, int64_t mp) {
    cublasLtMatmulHeuristicResult_t res[SS_LT_CANDIDATES];
    return lt_candidates((lt_linear *)lin, mp, res);
}

static ss_status lt_algo_get(ss_linear *lin, int64_t mp, int i, ss_algo *out) {
    lt_linear *c = (lt_linear *)lin;
    cublasLtMatmulHeuristicResult_t res[SS_LT_CANDIDATES];
    int n = lt_candidates(c, mp, res);
    if (i < 0 || i >= n)
        return ss_fail(SS_EINVAL, "tensor '%s': cuBLASLt candidate %d of %d", c->g.name, i, n);
    memset(out, 0, sizeof *out);
    out->backend = SS_BACKEND_CUBLASLT;
    out->workspace = res[i].workspaceSize;
    out->has_opaque = 1;
    _Static_assert(sizeof(cublasLtMatmulAlgo_t) <= SS_ALGO_OPAQUE_BYTES, "opaque algo size");
    memcpy(out->opaque, &res[i].algo, sizeof res[i].algo);
    int id = -1, sk = 1;
    size_t w = 0;
    cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof id, &w);
    cublasLtMatmulAlgoConfigGetAttribute(&res[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &sk,
                                         sizeof sk, &w);
    out->alg_id = id;
    out->split_k = sk;
    snprintf(out->desc, sizeof out->desc, "heuristic #%d (id %d, split_k %d)", i, id, sk);
    return SS_OK;
}

static ss_status lt_algo_set(ss_linear *lin, int64_t mp, const ss_algo *a) {
    lt_linear *c = (lt_linear *)lin;
    ss_gpu_linear *g = &c->g;
    ss_cuda_state *st = ss_cuda(g->ctx);
    lt_plan *p = NULL;
    SS_TRY(plan_get(c, mp, &p));
    cublasLtMatmulAlgo_t algo;
    size_t ws = 0;
    if (!a) {
        ss_gpu_tune_key key = ss_gpu_linear_key(g, mp);
        SS_TRY(ss_cublaslt_pick_algo(g->ctx, &key, c->op, c->la, p->lb, p->ld, &algo, &ws, g->name));
    } else if (!a->has_opaque ||
               !lt_algo_usable(st->lt, c->op, c->la, p->lb, p->ld, a->opaque, &algo, &ws)) {
        return ss_fail(SS_EUNSUPPORTED, "tensor '%s': cuBLASLt rejects algorithm '%s' for M %lld",
                       g->name, a->desc, (long long)mp);
    }
    SS_TRY(ss_cuda_buf_reserve(&st->workspace, ws, g->name, "GEMM workspace"));
    p->algo = algo;
    p->workspace = ws;
    return SS_OK;
}

const ss_backend_ops ss_backend_cublaslt = {
    .name = "cublaslt",
    .supports = lt_supports,
    .create = lt_create,
    .quant = ss_gpu_quant,
    .gemm = ss_gpu_gemm,
    .dequant = ss_gpu_dequant,
    .forward = ss_gpu_forward,
    .quant_rmsnorm = ss_gpu_quant_rmsnorm,
    .forward_rmsnorm = ss_gpu_forward_rmsnorm,
    .dequant_glu = ss_gpu_dequant_glu,
    .dequant_residual = ss_gpu_dequant_residual,
    .forward_glu = ss_gpu_forward_glu,
    .forward_residual = ss_gpu_forward_residual,
    .residual_rmsnorm_quant = ss_gpu_residual_rmsnorm_quant,
    .destroy = lt_destroy,
    .algo_count = lt_algo_count,
    .algo_get = lt_algo_get,
    .algo_set = lt_algo_set,
};
