/* 2:4 sparse linear layers on slid weights through cuSPARSELt (SPEC §5).
 *
 * The weight is the structured operand: W' row-major (n, K') is a
 * column-major K' x n_pad matrix (ld K', 50% sparsity) used transposed; the
 * activations (m_pad, K') are dense K' x m_pad, not transposed; D is N x m_pad
 * column-major = row-major (m_pad, n_pad). INT8 -> compute 32I, D INT32
 * (exact, the default) or BF16; FP8 -> compute 32F, D F32 or BF16.
 *
 * At creation the weights are uploaded (n padded to ceil32 with zero rows),
 * checked on the device (cusparseLtSpMMAPruneCheck2) and compressed once;
 * the dense copy is freed. Plans are cached per (M bucket = m_pad, N, K',
 * dtypes, alg, split_k) in the linear and built on first use of a bucket,
 * never per call; the workspace belongs to the context.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "linear/cuda_state.h"

#define SS_SP_PLANS 32

/* The tuning choice (SPEC §7; key: ss_gpu_tune_key): alg id -1 = library default,
 * split_k 0 = library default, -1 = Segment-K (SM90+). */
typedef struct {
    int alg_id, split_k;
} ss_cusparselt_choice;

/* The tuning hook: the context's tuner (ss_context_set_tuner; the tuning
 * table of slidesparse/tune.h, loaded on first use) for this key, else the library's default algorithm (no search,
 * so that creation stays fast and deterministic). */
static ss_cusparselt_choice ss_cusparselt_pick_alg(ss_context *ctx, const ss_gpu_tune_key *key) {
    const ss_algo *a = ss_gpu_tuned(ctx, SS_BACKEND_CUSPARSELT, key);
    if (a)
        return (ss_cusparselt_choice){.alg_id = a->alg_id, .split_k = a->split_k};
    return (ss_cusparselt_choice){.alg_id = -1, .split_k = 0};
}

typedef struct {
    int64_t m_pad; /* first (ss_gpu_plan_slot); 0 = empty */
    ss_cusparselt_choice choice;
    cusparseLtMatDescriptor_t mb, mc;
    cusparseLtMatmulDescriptor_t mm;
    cusparseLtMatmulAlgSelection_t sel;
    cusparseLtMatmulPlan_t plan;
    int have_b, have_c, have_sel, have_plan;
    size_t workspace;
} sp_plan;
_Static_assert(offsetof(sp_plan, m_pad) == 0, "ss_gpu_plan_slot reads m_pad first");

typedef struct {
    ss_gpu_linear g;              /* first */
    cusparseLtMatDescriptor_t ma; /* structured K' x n_pad */
    int have_ma;
    void *wc;                     /* compressed weights, device */
    cudaDataType_t in_t, out_t;
    cusparseComputeType compute;
    sp_plan plans[SS_SP_PLANS];
    int next_evict;
} sp_linear;

static ss_status sp_fail(cusparseStatus_t s, const char *name, const char *what) {
    return ss_fail(SS_ECUDA, "tensor '%s': %s failed: cuSPARSELt status %d", name, what, (int)s);
}

static void plan_clear(sp_plan *p) {
    if (p->have_plan)
        cusparseLtMatmulPlanDestroy(&p->plan);
    if (p->have_sel)
        cusparseLtMatmulAlgSelectionDestroy(&p->sel);
    if (p->have_b)
        cusparseLtMatDescriptorDestroy(&p->mb);
    if (p->have_c)
        cusparseLtMatDescriptorDestroy(&p->mc);
    memset(p, 0, sizeof *p);
}

#define SP_TRY(call, what)                                   \
    do {                                                     \
        cusparseStatus_t st_ = (call);                       \
        if (st_ != CUSPARSE_STATUS_SUCCESS) {                \
            s = sp_fail(st_, g->name, what);                 \
            goto fail;                                       \
        }                                                    \
    } while (0)

/* Builds the plan for mp with `choice` (the tuner's pin), or the table's /
 * the default one when choice is NULL. reserve = 0 only asks the workspace
 * size (the tuner's query) without growing the context's buffer. */
static ss_status plan_build_ex(sp_linear *c, int64_t mp, sp_plan *p,
                               const ss_cusparselt_choice *choice, int reserve) {
    ss_gpu_linear *g = &c->g;
    ss_cuda_state *st = ss_cuda(g->ctx);
    const cusparseLtHandle_t *h = &st->sp;
    ss_status s = SS_OK;
    ss_gpu_tune_key key = ss_gpu_linear_key(g, mp);
    p->choice = choice ? *choice : ss_cusparselt_pick_alg(g->ctx, &key);
    SP_TRY(cusparseLtDenseDescriptorInit(h, &p->mb, (int64_t)g->kq, mp, g->kq, 16, c->in_t,
                                         CUSPARSE_ORDER_COL), "dense descriptor (activations)");
    p->have_b = 1;
    SP_TRY(cusparseLtDenseDescriptorInit(h, &p->mc, g->n_pad, mp, g->n_pad, 16, c->out_t,
                                         CUSPARSE_ORDER_COL), "dense descriptor (output)");
    p->have_c = 1;
    SP_TRY(cusparseLtMatmulDescriptorInit(h, &p->mm, CUSPARSE_OPERATION_TRANSPOSE,
                                          CUSPARSE_OPERATION_NON_TRANSPOSE, &c->ma, &p->mb, &p->mc,
                                          &p->mc, c->compute), "matmul descriptor");
    SP_TRY(cusparseLtMatmulAlgSelectionInit(h, &p->sel, &p->mm, CUSPARSELT_MATMUL_ALG_DEFAULT),
           "algorithm selection");
    p->have_sel = 1;
    if (p->choice.alg_id >= 0)
        SP_TRY(cusparseLtMatmulAlgSetAttribute(h, &p->sel, CUSPARSELT_MATMUL_ALG_CONFIG_ID,
                                               &p->choice.alg_id, sizeof p->choice.alg_id),
               "setting alg id");
    if (p->choice.split_k != 0)
        SP_TRY(cusparseLtMatmulAlgSetAttribute(h, &p->sel, CUSPARSELT_MATMUL_SPLIT_K,
                                               &p->choice.split_k, sizeof p->choice.split_k),
               "setting split_k");
    SP_TRY(cusparseLtMatmulPlanInit(h, &p->plan, &p->mm, &p->sel), "plan");
    p->have_plan = 1;
    SP_TRY(cusparseLtMatmulGetWorkspace(h, &p->plan, &p->workspace), "workspace query");
    if (!reserve) {
        p->m_pad = mp;
        return SS_OK;
    }
    s = ss_cuda_buf_reserve(&st->workspace, p->workspace + SS_GPU_GEMM_SLACK, g->name,
                            "GEMM workspace");
    if (s != SS_OK)
        goto fail;
    p->m_pad = mp;
    return SS_OK;
fail:
    plan_clear(p);
    return s;
}

static ss_status plan_build_with(sp_linear *c, int64_t mp, sp_plan *p,
                                 const ss_cusparselt_choice *choice) {
    return plan_build_ex(c, mp, p, choice, 1);
}

/* Workspace of (alg id, split_k) at mp, from a scratch plan: the size depends
 * on both (split-K keeps partial sums there), so the candidate list's 0 would
 * make the search's "less workspace" tie-break meaningless. */
static ss_status plan_workspace(sp_linear *c, int64_t mp, ss_cusparselt_choice ch,
                                uint64_t *bytes) {
    sp_plan tmp;
    memset(&tmp, 0, sizeof tmp);
    SS_TRY(plan_build_ex(c, mp, &tmp, &ch, 0));
    *bytes = (uint64_t)tmp.workspace;
    plan_clear(&tmp);
    return SS_OK;
}

/* A tuned choice the library refuses (a table from a run with other limits)
 * falls back to the default rather than failing the layer. */
static ss_status plan_build(sp_linear *c, int64_t mp, sp_plan *p) {
    ss_status s = plan_build_with(c, mp, p, NULL);
    if (s != SS_OK) {
        ss_cusparselt_choice def = {.alg_id = -1, .split_k = 0};
        s = plan_build_with(c, mp, p, &def);
    }
    return s;
}

static ss_status plan_get(sp_linear *c, int64_t mp, sp_plan **out) {
    int hit;
    int slot = ss_gpu_plan_slot(c->plans, sizeof *c->plans, SS_SP_PLANS, mp, &c->next_evict, &hit);
    if (hit) {
        *out = &c->plans[slot];
        return SS_OK;
    }
    plan_clear(&c->plans[slot]); /* an evicted plan; no-op on an empty slot */
    SS_TRY(plan_build(c, mp, &c->plans[slot]));
    *out = &c->plans[slot];
    return SS_OK;
}

static ss_status sp_gemm_raw(ss_gpu_linear *g, const void *q, int64_t mp, void *d) {
    sp_linear *c = (sp_linear *)g;
    sp_plan *p = NULL;
    SS_TRY(plan_get(c, mp, &p));
    ss_cuda_state *st = ss_cuda(g->ctx);
    float alpha = 1.0f, beta = 0.0f;
    cudaStream_t stream = ss_cuda_stream(g->ctx);
    cusparseStatus_t r = cusparseLtMatmul(&st->sp, &p->plan, &alpha, c->wc, q, &beta, d, d,
                                          st->workspace.p, &stream, 1);
    if (r != CUSPARSE_STATUS_SUCCESS)
        return ss_fail(SS_ECUDA, "tensor '%s': cusparseLtMatmul M %lld N %lld K' %lld: status %d",
                       g->name, (long long)mp, (long long)g->n_pad, (long long)g->kq, (int)r);
    return SS_OK;
}

static void sp_destroy(ss_linear *lin) {
    sp_linear *c = (sp_linear *)lin;
    if (!c)
        return;
    cudaStreamSynchronize(ss_cuda_stream(c->g.ctx));
    for (int i = 0; i < SS_SP_PLANS; i++)
        plan_clear(&c->plans[i]);
    if (c->have_ma)
        cusparseLtMatDescriptorDestroy(&c->ma);
    if (c->wc)
        cudaFree(c->wc);
    ss_gpu_linear_fini(&c->g);
    free(c);
}

static const char *sp_supports(const ss_context *ctx, ss_dtype wdtype, ss_pattern p) {
    const ss_cuda_state *st = ss_cuda(ctx);
    if (ss_pattern_is_dense(p))
        return "cuSPARSELt runs slid (2_L) weights only";
    if (wdtype != SS_DTYPE_I8 && wdtype != SS_DTYPE_F8_E4M3)
        return "cuSPARSELt backend takes I8 or F8_E4M3 weights";
    if (!st->sp_ok)
        return "cuSPARSELt could not be initialized on this GPU";
    return ss_cuda_dtype_reason(st, wdtype);
}

/* Uploads, prune-checks and compresses the slid weights; frees the dense copy. */
static ss_status compress_weights(sp_linear *c, const ss_linear_desc *d, const void *w) {
    ss_gpu_linear *g = &c->g;
    ss_cuda_state *st = ss_cuda(g->ctx);
    const cusparseLtHandle_t *h = &st->sp;
    cudaStream_t stream = ss_cuda_stream(g->ctx);
    void *dense = NULL, *cbuf = NULL;
    int *d_invalid = NULL, invalid = 0;
    size_t csize = 0, cbsize = 0;
    ss_status s = ss_gpu_upload_rows(&dense, w, d->n, g->kq, g->n_pad, g->kq,
                                     ss_dtype_size(d->wdtype), g->name);
    if (s != SS_OK)
        goto fail;
    s = ss_cuda_alloc((void **)&d_invalid, sizeof(int), g->name, "prune check flag");
    if (s != SS_OK)
        goto fail;
    /* the check only raises the flag: it must start at 0 */
    cudaError_t e = cudaMemsetAsync(d_invalid, 0, sizeof(int), stream);
    if (e != cudaSuccess) {
        s = ss_cuda_fail(e, g->name, "prune check flag");
        goto fail;
    }
    SP_TRY(cusparseLtSpMMAPruneCheck2(h, &c->ma, 1, CUSPARSE_OPERATION_TRANSPOSE, dense, d_invalid,
                                      stream), "prune check");
    e = cudaMemcpyAsync(&invalid, d_invalid, sizeof invalid, cudaMemcpyDeviceToHost,
                                    stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(stream);
    if (e != cudaSuccess) {
        s = ss_cuda_fail(e, g->name, "prune check");
        goto fail;
    }
    if (invalid) {
        s = ss_fail(SS_EINVAL, "tensor '%s': expected 2:4-valid slid weights (n %lld, K' %lld), "
                    "cusparseLtSpMMAPruneCheck found a group of 4 with more than 2 nonzeros",
                    g->name, (long long)d->n, (long long)g->kq);
        goto fail;
    }
    SP_TRY(cusparseLtSpMMACompressedSize2(h, &c->ma, &csize, &cbsize), "compressed size");
    /* the kernels read whole tiles past the reported size (compute-sanitizer) */
    s = ss_cuda_alloc(&c->wc, csize + SS_GPU_GEMM_SLACK, g->name, "compressed weights");
    if (s == SS_OK && cbsize)
        s = ss_cuda_alloc(&cbuf, cbsize, g->name, "compression buffer");
    if (s != SS_OK)
        goto fail;
    SP_TRY(cusparseLtSpMMACompress2(h, &c->ma, 1, CUSPARSE_OPERATION_TRANSPOSE, dense, c->wc, cbuf,
                                    stream), "compression");
    e = cudaStreamSynchronize(stream);
    if (e != cudaSuccess)
        s = ss_cuda_fail(e, g->name, "compression");
fail:
    if (dense)
        cudaFree(dense);
    if (cbuf)
        cudaFree(cbuf);
    if (d_invalid)
        cudaFree(d_invalid);
    return s;
}

static ss_status sp_create(ss_context *ctx, const ss_linear_desc *d, const ss_linear_weights *w,
                           ss_linear **out) {
    sp_linear *c = calloc(1, sizeof *c);
    if (!c)
        return ss_fail(SS_ENOMEM, "tensor '%s': out of host memory", d->name);
    ss_gpu_linear *g = &c->g;
    ss_status s = ss_gpu_linear_init(g, ctx, d, w, sp_gemm_raw);
    if (s != SS_OK)
        goto fail;
    c->in_t = ss_cuda_data_type(d->wdtype);
    c->out_t = ss_cuda_data_type(d->gemm_out);
    c->compute = d->wdtype == SS_DTYPE_I8 ? CUSPARSE_COMPUTE_32I : CUSPARSE_COMPUTE_32F;
    ss_cuda_state *st = ss_cuda(ctx);
    SP_TRY(cusparseLtStructuredDescriptorInit(&st->sp, &c->ma, g->kq, g->n_pad, g->kq, 16, c->in_t,
                                              CUSPARSE_ORDER_COL, CUSPARSELT_SPARSITY_50_PERCENT),
           "structured descriptor (weights)");
    c->have_ma = 1;
    s = compress_weights(c, d, w->w);
    if (s != SS_OK)
        goto fail;
    *out = &g->base;
    return SS_OK;
fail:
    sp_destroy(&g->base);
    return s;
}

// --- the tuner's candidates (linear.h) ------------------------------------------------

/* Every alg id of this M bucket (split_k searched by the tuner; Segment-K on SM90+). */
static int sp_algo_count(ss_linear *lin, int64_t mp) {
    sp_linear *c = (sp_linear *)lin;
    sp_plan *p = NULL;
    if (plan_get(c, mp, &p) != SS_OK) {
        ss_clear_error();
        return 0;
    }
    int max_id = 0;
    if (cusparseLtMatmulAlgGetAttribute(&ss_cuda(c->g.ctx)->sp, &p->sel,
                                        CUSPARSELT_MATMUL_ALG_CONFIG_MAX_ID, &max_id,
                                        sizeof max_id) != CUSPARSE_STATUS_SUCCESS)
        return 0;
    return max_id > 0 ? max_id : 0;
}

static ss_status sp_algo_get(ss_linear *lin, int64_t mp, int i, ss_algo *out) {
    sp_linear *c = (sp_linear *)lin;
    const ss_cuda_state *st = ss_cuda(c->g.ctx);
    memset(out, 0, sizeof *out);
    out->backend = SS_BACKEND_CUSPARSELT;
    out->alg_id = i;
    out->split_k = 1;
    out->split_k_max = 8;
    out->segment_k = st->cc_major >= 9;
    snprintf(out->desc, sizeof out->desc, "alg %d", i);
    /* the size at split_k 1; the search asks again for the split_k it times */
    if (plan_workspace(c, mp, (ss_cusparselt_choice){.alg_id = i, .split_k = 1},
                       &out->workspace) != SS_OK)
        ss_clear_error(); /* the library refuses this id here: algo_set will say so */
    return SS_OK;
}

static ss_status sp_algo_workspace(ss_linear *lin, int64_t mp, const ss_algo *a,
                                   uint64_t *bytes) {
    ss_cusparselt_choice ch = {.alg_id = a->alg_id, .split_k = a->split_k};
    return plan_workspace((sp_linear *)lin, mp, ch, bytes);
}

static ss_status sp_algo_set(ss_linear *lin, int64_t mp, const ss_algo *a) {
    sp_linear *c = (sp_linear *)lin;
    sp_plan *p = NULL;
    SS_TRY(plan_get(c, mp, &p));
    plan_clear(p);
    if (!a)
        return plan_build(c, mp, p);
    ss_cusparselt_choice ch = {.alg_id = a->alg_id, .split_k = a->split_k};
    return plan_build_with(c, mp, p, &ch);
}

const ss_backend_ops ss_backend_cusparselt = {
    .name = "cusparselt",
    .supports = sp_supports,
    .create = sp_create,
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
    .destroy = sp_destroy,
    .algo_count = sp_algo_count,
    .algo_get = sp_algo_get,
    .algo_set = sp_algo_set,
    .algo_workspace = sp_algo_workspace,
};
