/* 2:4 sparse INT8 / FP8 linear layers on Hopper (sm_90a) through CUTLASS's SM90 sparse
 * GEMM with the dequant fused into its epilogue (the kernel family and its
 * measurements: dev/cutlass/sparse_gemm_sm90.cu, docs/results/h100.md), and at
 * decode sizes the weight-streaming GEMM of sm90stream.cu.
 * Two backends share this file: sm90sp (2:4 weights, sparse wgmma) and
 * sm90dense (dense weights, plain wgmma: the same collectives, tiles, tile
 * orders and epilogue, the weight operand dense), so the sparse speedup is
 * measured against a dense baseline that has the fused epilogue too. The
 * kernel family lives in sm90_gemm.cuh; sm90dense.cu instantiates its dense
 * pair (a second unit, compiled in parallel).
 *
 * Mapping onto CUTLASS (D(M,N) = A(M,K) B(K,N)):
 *   A (sparse, K-major) = W' (n_pad, K') row-major     -> CUTLASS M = our n_pad
 *                         (sm90dense: W (n_pad, ceil32(K)), zero-padded, uncompressed)
 *   B (K-major)         = q (m, K') row-major          -> CUTLASS N = our m
 *   D (column-major)    = Y (m, n_pad) BF16 row-major
 * Operands: INT8 (S32 accumulation) or FP8 e4m3 (F32 accumulation, CUTLASS's
 * fast-accumulate FP8 mainloop: sm90_gemm.cuh), weights and activations of one type.
 * Epilogue (one EVT node): Y = bf16(((float)acc * sa[m]) * sb[n] + bias[n]), each
 * op rounded (__fmul_rn / __fadd_rn): SPEC §4, bit-identical to the CPU backend
 * for INT8; for FP8 the tensor cores' sums differ from the CPU's exact ones in
 * the last bits, so Y agrees within the FP8 tolerance of cuBLASLt / cuSPARSELt.
 * A missing bias is a bias of -0.0 (t + -0.0 == t for every t, -0.0 included),
 * a per-tensor scale is broadcast to n_pad entries, so one epilogue serves all.
 *
 * Stages (linear.h): there is no INT32 GEMM output. The GEMM stage is the fused
 * GEMM: it writes the dequantized BF16 (m, n) — the linear's gemm_out is BF16 —
 * and reads the token scales the last quant stage of this linear wrote (every
 * caller runs quant -> gemm -> dequant on the same buffers). The dequant stage
 * copies d to y (sa already applied); the GLU / residual stages apply the op to
 * that BF16 through the fused-dequant kernels with identity scales (x * 1, no
 * bias: exact), i.e. exactly ss_glu_cuda / ss_residual_add_cuda on y.
 *
 * Algorithms (the tuner's candidates): 4 variants x 5 tile orders of the
 * scheduler (runtime arguments: no instantiation), the same twenty for each
 * dtype. The variants: Cooperative 128x256 cluster 2x1, Pingpong 128x128 (K tile
 * 256 for the 2:4 kernels: sm90_gemm.cuh says why), and
 * two decompositions of one stream-K kernel with 128x64 tiles for decode
 * (sm90_gemm.cuh): CUTLASS's stream-K heuristic, and split-K by
 * sms / tiles (every SM streams 1/splits of a tile's weights; partial
 * tiles reduced in the workspace). The decompositions are runtime arguments
 * of the same kernel, so the tuner gets both for one instantiation.
 * Default: a shape heuristic. Split-K when the 128x64 tiles cannot fill the
 * SMs once but hold at least 8 k-blocks of work per SM; else the harness's table
 * (Pingpong 128x128 while those tiles fit in two waves, else Cooperative
 * 128x256 rastered along the weights). The 8: a stream-K / split-K launch
 * pays a workspace memset and the partials' reduction, which only more
 * k-blocks per SM amortize. On the H100 (BitNet-2B INT8, tuned top 3 of
 * each projection) the decompositions won gate_up and down at M 64 (down
 * 22.1 vs > 22.2 µs) but not qkv / o, whose 400-600 k-blocks Pingpong
 * streams faster (15.1 µs qkv); the rule reproduces those picks. Built only
 * with CUDA + CUTLASS headers + sm_90 in the arch list (CMakeLists.txt),
 * compiled for sm_90a alone.
 */
#include "sm90_gemm.cuh"
#include "sm90stream.h"

extern "C" {
#include "stream_layout.h"
}

namespace ss_sm90sp {
/* CUTLASS's 2:4 compressor for element type T (e4m3: -0.0 counts as zero, as
 * in ss_check_24). */
template <class T>
using CompressorUtil = cutlass::transform::kernel::StructuredSparseCompressorUtility<
    ProblemShape, T, LayoutTagA, SparseConfigOf<T>>;
template <class T>
using Compressor = cutlass::transform::device::TransformUniversalAdapter<
    cutlass::transform::kernel::StructuredSparseCompressor<ProblemShape, T, LayoutTagA,
                                                           SparseConfigOf<T>, cutlass::arch::Sm90>>;
} // namespace ss_sm90sp

using namespace ss_sm90sp;

// --- algorithms ------------------------------------------------------------------------

#define SM_VARIANTS 4
#define SM_ORDERS 5
#define SM_ALGOS (SM_VARIANTS * SM_ORDERS) /* the CUTLASS kernels; the stream GEMM's after them */
#define SM_PINS 32
#define SM_STREAMK 2 /* variant: Skinny, CUTLASS's stream-K heuristic */
#define SM_SPLITK 3  /* variant: Skinny, split-K by sms / tiles */

static const char *const kVariant[SM_VARIANTS] = {"coop128x256c2", "ping128x128c1",
                                                  "streamk128x64c1", "splitk128x64c1"};
/* h = CUTLASS's heuristic, M = raster along the weights, N = along the tokens; swizzle */
static const int kOrder[SM_ORDERS] = {0x00, 0x10, 0x20, 0x12, 0x22};
static const char *const kOrderName[SM_ORDERS] = {"h1", "M1", "N1", "M4", "N4"};

/* Candidates at M bucket mp: the CUTLASS kernels, and at decode sizes the
 * weight-streaming GEMM's configurations that apply to the linear (ids
 * SM_ALGOS ..). */
static int algo_total(int stream_on, int sparse, int64_t mp, int64_t kq) {
    return SM_ALGOS + (stream_on ? ss_stream_config_count(sparse, (int)(mp < INT32_MAX ? mp : 0), kq) : 0);
}

/* SS_STREAM=1 in the environment (read at linear creation) adds the stream
 * GEMM: its weight copy and its tuner candidates. Opt-in until its bulk-copy
 * form is measured: the register-streaming form it replaces was correct on
 * the H100 but slower than the CUTLASS kernels (docs/results/h100.md). */
static int stream_enabled(void) {
    const char *v = getenv("SS_STREAM");
    return v && strcmp(v, "1") == 0;
}

/* alg id = variant * SM_ORDERS + order index, or SM_ALGOS + stream configuration.
 * The stream GEMM is a tuner candidate only, not the heuristic's pick: its
 * register-streaming form measured slower than these kernels on the H100
 * (BitNet-2B INT8, M 64: 113 vs 77 us per layer, GEMM alone), so only a
 * tuning table that measured it faster selects it. */
static int heuristic_alg(int64_t m, int64_t n_pad, int64_t kq, int sms) {
    int64_t rows = (n_pad + 127) / 128, tiles = rows * ((m + 127) / 128);
    int64_t skinny = rows * ((m + 63) / 64), kblocks = skinny * ((kq + 127) / 128);
    if (skinny < (int64_t)sms && kblocks >= 8 * (int64_t)sms)
        return SM_SPLITK * SM_ORDERS + 0;
    return tiles <= 2 * (int64_t)sms ? 1 * SM_ORDERS + 0 : 0 * SM_ORDERS + 1;
}

/* The split-K variant's split count: enough splits of the 128x64 tiles to
 * give every SM one, at most one per k-block of 128. */
static int split_count(int64_t m, int64_t n_pad, int64_t kq, int sms) {
    int64_t tiles = ((n_pad + 127) / 128) * ((m + 63) / 64), kblocks = (kq + 127) / 128;
    int64_t s = (int64_t)sms / tiles;
    return (int)(s < 1 ? 1 : s > kblocks ? kblocks : s);
}

typedef struct {
    int64_t m_pad; /* first (ss_gpu_plan_slot); 0 = empty */
    int alg;
} sm_pin;

typedef struct {
    ss_gpu_linear g;       /* first */
    ss_backend backend;    /* SS_BACKEND_SM90SP or SS_BACKEND_SM90DENSE */
    void *wc, *meta;       /* compressed W' (n_pad, K') and its metadata, device;
                              sm90dense: W (n_pad, ceil32(K)) and NULL */
    void *stream_w;        /* the same weights in the stream GEMM's layout (stream_layout.h),
                              NULL when SS_STREAM=0 */
    float *sb_full;        // (n_pad) device: per-channel scale (broadcast when per-tensor)
    uint16_t *bias_full;   // (n_pad) device BF16: the bias, -0.0 where none
    const float *last_sa;  /* token scales of the last quant stage (the GEMM stage's) */
    sm_pin pins[SM_PINS];  /* the tuner's pins per M bucket */
    int next_evict;
} sm_linear;

static int pick_alg(sm_linear *c, int64_t m) {
    ss_gpu_linear *g = &c->g;
    int64_t mp = ss_linear_m_pad(m);
    for (int i = 0; i < SM_PINS; i++)
        if (c->pins[i].m_pad == mp)
            return c->pins[i].alg;
    ss_gpu_tune_key key = ss_gpu_linear_key(g, mp);
    const ss_algo *a = ss_gpu_tuned(g->ctx, c->backend, &key);
    if (a && a->alg_id >= 0 && a->alg_id < algo_total(c->stream_w != NULL, c->backend == SS_BACKEND_SM90SP, mp, g->kq))
        return a->alg_id;
    return heuristic_alg(m, g->n_pad, g->kq, ss_cuda(g->ctx)->sms);
}

/* Variant 0 (Coop), 1 (Ping) or 2 / 3 (Skinny: L.splits says which
 * decomposition) of the kernels for (sparse, T). */
template <bool Sparse, class T>
static ss_status run_variant(int variant, const Launch &L, ss_cuda_buf *ws, const char *name,
                             cudaStream_t s) {
    switch (variant) {
    case 0:
        return run<Coop<Sparse, T>>(L, ws, name, s);
    case 1:
        return run<Ping<Sparse, T>>(L, ws, name, s);
    default:
        return run<Skinny<Sparse, T>>(L, ws, name, s);
    }
}

/* The stream GEMM, configuration `config`, into y (m, ldy), its epilogue
 * applying op (sm90stream.h). */
static ss_status stream_gemm(sm_linear *c, int config, const void *q, const float *sa, int64_t m,
                             void *y, int64_t ldy, ss_stream_op op) {
    ss_gpu_linear *g = &c->g;
    ss_cuda_state *st = ss_cuda(g->ctx);
    ss_stream_args a = {c->stream_w, q, sa, c->sb_full, c->bias_full, (uint16_t *)y, (int)m,
                        (int)ss_linear_m_pad(m), (int)g->n, (int)g->kq, (int)ldy,
                        g->qdt == SS_DTYPE_F8_E4M3, c->backend == SS_BACKEND_SM90SP, config,
                        st->sms, ss_pdl_for(g->pdl, m), op, NULL};
    cudaError_t e = ss_stream_gemm(&a, ss_cuda_stream(g->ctx));
    return e == cudaSuccess ? SS_OK : ss_cuda_fail(e, g->name, "stream GEMM launch");
}

/* y (m, ldy) BF16 = dequant(W' q^T) with token scales sa, through algorithm
 * alg (pick_alg); the CUTLASS kernels need ldy == n_pad. */
static ss_status gemm_fused(sm_linear *c, int alg, const void *q, const float *sa, int64_t m,
                            void *y, int64_t ldy) {
    ss_gpu_linear *g = &c->g;
    ss_cuda_state *st = ss_cuda(g->ctx);
    int v = alg / SM_ORDERS;
    if (alg >= SM_ALGOS)
        return stream_gemm(c, alg - SM_ALGOS, q, sa, m, y, ldy, SS_STREAM_OP_PLAIN);
    Launch L = {c->wc, c->meta, q, sa, c->sb_full, c->bias_full, (int)m, (int)g->n_pad,
                (int)g->kq, y, st->device, st->sms, kOrder[alg % SM_ORDERS],
                v == SM_SPLITK ? split_count(m, g->n_pad, g->kq, st->sms) : 0,
                /* as gpu_linear.c decides for the quant / dequant kernels: PDL cost the
                   sm90dense prefill at M 16384 11% on the H100 (188k -> 167k tokens/s) */
                ss_pdl_for(g->pdl, m)};
    cudaStream_t s = ss_cuda_stream(g->ctx);
    ss_cuda_buf *ws = &st->workspace;
    int fp8 = g->qdt == SS_DTYPE_F8_E4M3;
    if (c->backend == SS_BACKEND_SM90DENSE)
        return fp8 ? run_variant<false, E4M3>(v, L, ws, g->name, s)
                   : run_variant<false, int8_t>(v, L, ws, g->name, s);
    return fp8 ? run_variant<true, E4M3>(v, L, ws, g->name, s)
               : run_variant<true, int8_t>(v, L, ws, g->name, s);
}

static const char *sm_name(const sm_linear *c) {
    return c->backend == SS_BACKEND_SM90DENSE ? "sm90dense" : "sm90sp";
}

/* The fused GEMM into the caller's y (m, n): directly when the row pitch
 * (n_pad == n) and y's alignment suit the TMA store, else through the
 * context's scratch and a 2-D copy. */
static ss_status gemm_into(sm_linear *c, const void *q, const float *sa, int64_t m, void *y) {
    ss_gpu_linear *g = &c->g;
    int alg = pick_alg(c, m);
    if ((g->n_pad == g->n && (uintptr_t)y % 16 == 0) || alg >= SM_ALGOS)
        return gemm_fused(c, alg, q, sa, m, y, g->n); /* the stream GEMM writes any row pitch */
    ss_cuda_state *st = ss_cuda(g->ctx);
    SS_TRY(ss_cuda_buf_reserve(&st->scratch_d, (size_t)m * (size_t)g->n_pad * 2, g->name,
                               "GEMM output scratch"));
    SS_TRY(gemm_fused(c, alg, q, sa, m, st->scratch_d.p, g->n_pad));
    cudaError_t e = cudaMemcpy2DAsync(y, (size_t)g->n * 2, st->scratch_d.p, (size_t)g->n_pad * 2,
                                      (size_t)g->n * 2, (size_t)m, cudaMemcpyDeviceToDevice,
                                      ss_cuda_stream(g->ctx));
    return e == cudaSuccess ? SS_OK : ss_cuda_fail(e, g->name, "trimming GEMM output");
}

// --- stages ----------------------------------------------------------------------------

static ss_status sm_quant(ss_linear *lin, const uint16_t *x, int64_t m, void *q, float *sa) {
    ((sm_linear *)lin)->last_sa = sa;
    return ss_gpu_quant(lin, x, m, q, sa);
}

static ss_status sm_quant_rmsnorm(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                  float eps, int64_t m, void *q, float *sa) {
    ((sm_linear *)lin)->last_sa = sa;
    return ss_gpu_quant_rmsnorm(lin, x, gamma, eps, m, q, sa);
}

static ss_status sm_gemm(ss_linear *lin, const void *q, int64_t m, void *d) {
    sm_linear *c = (sm_linear *)lin;
    if (!c->last_sa)
        return ss_fail(SS_EINVAL, "tensor '%s': %s GEMM stage: the dequant is fused into the "
                       "GEMM and needs the token scales of a quant stage on this linear first, "
                       "found none", c->g.name, sm_name(c));
    return gemm_into(c, q, c->last_sa, m, d);
}

/* d is already the BF16 output (the GEMM stage applied sa, sb and bias). */
static ss_status sm_dequant(ss_linear *lin, const void *d, const float *sa, int64_t m, void *y) {
    ss_gpu_linear *g = (ss_gpu_linear *)lin;
    if (d == y)
        return SS_OK;
    cudaError_t e = cudaMemcpyAsync(y, d, (size_t)m * (size_t)g->n * 2, cudaMemcpyDeviceToDevice,
                                    ss_cuda_stream(g->ctx));
    return e == cudaSuccess ? SS_OK : ss_cuda_fail(e, g->name, "copying the fused GEMM output");
}

/* The GLU / residual on a BF16 projection output (ld ldd): the fused-dequant
 * kernels with no scales and no bias are the identity on BF16 values, then
 * exactly ss_glu_cuda / ss_residual_add_cuda. */
static ss_status glu_on(ss_gpu_linear *g, const void *y, int64_t ldd, int64_t m, int relu2,
                        uint16_t *act) {
    cudaError_t e = ss_kernel_dequant_glu(SS_DTYPE_BF16, y, ldd, NULL, NULL, 0, NULL, m, g->n / 2,
                                          relu2, act, ss_cuda_stream(g->ctx));
    return e == cudaSuccess ? SS_OK : ss_cuda_fail(e, g->name, "glu kernel");
}

static ss_status residual_on(ss_gpu_linear *g, const void *y, int64_t ldd, int64_t m,
                             uint16_t *resid) {
    cudaError_t e = ss_kernel_dequant_residual(SS_DTYPE_BF16, y, ldd, NULL, NULL, 0, NULL, m, g->n,
                                               resid, ss_cuda_stream(g->ctx));
    return e == cudaSuccess ? SS_OK : ss_cuda_fail(e, g->name, "residual kernel");
}

static ss_status sm_dequant_glu(ss_linear *lin, const void *d, const float *sa, int64_t m,
                                int relu2, uint16_t *act) {
    ss_gpu_linear *g = (ss_gpu_linear *)lin;
    return glu_on(g, d, g->n, m, relu2, act);
}

static ss_status sm_dequant_residual(ss_linear *lin, const void *d, const float *sa, int64_t m,
                                     uint16_t *resid) {
    ss_gpu_linear *g = (ss_gpu_linear *)lin;
    return residual_on(g, d, g->n, m, resid);
}

// --- the GEMM with the op in its epilogue (linear.h ss_linear_gemm_op) ----------------------

static ss_stream_op stream_op_of(int op) {
    switch (op) {
    case SS_LINEAR_OP_GLU_RELU2: return SS_STREAM_OP_GLU_RELU2;
    case SS_LINEAR_OP_GLU_SILU: return SS_STREAM_OP_GLU_SILU;
    case SS_LINEAR_OP_RESIDUAL: return SS_STREAM_OP_RESIDUAL;
    default: return SS_STREAM_OP_PLAIN;
    }
}

static int is_glu(ss_stream_op so) { return so == SS_STREAM_OP_GLU_RELU2 || so == SS_STREAM_OP_GLU_SILU; }

/* The stream configuration that applies op at m in one kernel, or -1: the
 * CUTLASS kernels (and a GLU whose gate / up tiles cannot pair up) keep the
 * op kernel after the GEMM. */
static int fused_config(sm_linear *c, int64_t m, int op) {
    int alg = pick_alg(c, m);
    if (alg < SM_ALGOS || (is_glu(stream_op_of(op)) && !ss_stream_glu_fits((int)c->g.n)))
        return -1;
    return alg - SM_ALGOS;
}

static int sm_gemm_op_fused(ss_linear *lin, int64_t m, int op) {
    return fused_config((sm_linear *)lin, m, op) >= 0;
}

static ss_status sm_gemm_op(ss_linear *lin, const void *q, const float *sa, int64_t m, int op,
                            uint16_t *out) {
    sm_linear *c = (sm_linear *)lin;
    int config = fused_config(c, m, op);
    if (config < 0)
        return SS_EUNSUPPORTED;
    ss_stream_op so = stream_op_of(op);
    return stream_gemm(c, config, q, sa, m, out, is_glu(so) ? c->g.n / 2 : c->g.n, so);
}

// --- forwards: quant (+ norm) -> fused GEMM (-> GLU / residual) ------------------------

/* Quantizes x (normed when gamma != NULL) into the context's scratch. */
static ss_status quant_scratch(sm_linear *c, const uint16_t *x, const uint16_t *gamma, float eps,
                               int64_t m) {
    ss_gpu_linear *g = &c->g;
    ss_cuda_state *st = ss_cuda(g->ctx);
    int64_t mp = ss_linear_m_pad(m);
    SS_TRY(ss_cuda_buf_reserve(&st->scratch_q, (size_t)mp * (size_t)g->kq + SS_GPU_GEMM_SLACK,
                               g->name, "quantized activations"));
    SS_TRY(ss_cuda_buf_reserve(&st->scratch_sa, (size_t)mp * sizeof(float), g->name,
                               "token scales"));
    ss_linear *lin = &g->base;
    return gamma ? ss_gpu_quant_rmsnorm(lin, x, gamma, eps, m, st->scratch_q.p,
                                        (float *)st->scratch_sa.p)
                 : ss_gpu_quant(lin, x, m, st->scratch_q.p, (float *)st->scratch_sa.p);
}

static ss_status sm_forward_rmsnorm(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                    float eps, int64_t m, void *y) {
    sm_linear *c = (sm_linear *)lin;
    SS_TRY(quant_scratch(c, x, gamma, eps, m));
    ss_cuda_state *st = ss_cuda(c->g.ctx);
    return gemm_into(c, st->scratch_q.p, (const float *)st->scratch_sa.p, m, y);
}

static ss_status sm_forward(ss_linear *lin, const uint16_t *x, int64_t m, void *y) {
    return sm_forward_rmsnorm(lin, x, NULL, 0.0f, m, y);
}

/* quant -> fused GEMM into the context's (m, n_pad) scratch; *y points there. */
static ss_status forward_scratch(sm_linear *c, const uint16_t *x, const uint16_t *gamma, float eps,
                                 int64_t m, const void **y) {
    ss_gpu_linear *g = &c->g;
    ss_cuda_state *st = ss_cuda(g->ctx);
    SS_TRY(quant_scratch(c, x, gamma, eps, m));
    SS_TRY(ss_cuda_buf_reserve(&st->scratch_d, (size_t)m * (size_t)g->n_pad * 2, g->name,
                               "GEMM output"));
    SS_TRY(gemm_fused(c, pick_alg(c, m), st->scratch_q.p, (const float *)st->scratch_sa.p, m,
                      st->scratch_d.p, g->n_pad));
    *y = st->scratch_d.p;
    return SS_OK;
}

/* quant -> the GEMM with op in its epilogue, when the stream GEMM runs at m. */
static ss_status forward_op(sm_linear *c, const uint16_t *x, const uint16_t *gamma, float eps,
                            int64_t m, int op, uint16_t *out) {
    SS_TRY(quant_scratch(c, x, gamma, eps, m));
    ss_cuda_state *st = ss_cuda(c->g.ctx);
    return sm_gemm_op(&c->g.base, st->scratch_q.p, (const float *)st->scratch_sa.p, m, op, out);
}

static ss_status sm_forward_glu(ss_linear *lin, const uint16_t *x, const uint16_t *gamma, float eps,
                                int64_t m, int relu2, uint16_t *act) {
    sm_linear *c = (sm_linear *)lin;
    int op = relu2 ? SS_LINEAR_OP_GLU_RELU2 : SS_LINEAR_OP_GLU_SILU;
    if (sm_gemm_op_fused(lin, m, op))
        return forward_op(c, x, gamma, eps, m, op, act);
    const void *y = NULL;
    SS_TRY(forward_scratch(c, x, gamma, eps, m, &y));
    return glu_on(&c->g, y, c->g.n_pad, m, relu2, act);
}

static ss_status sm_forward_residual(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                     float eps, int64_t m, uint16_t *resid) {
    sm_linear *c = (sm_linear *)lin;
    if (sm_gemm_op_fused(lin, m, SS_LINEAR_OP_RESIDUAL))
        return forward_op(c, x, gamma, eps, m, SS_LINEAR_OP_RESIDUAL, resid);
    const void *y = NULL;
    SS_TRY(forward_scratch(c, x, gamma, eps, m, &y));
    return residual_on(&c->g, y, c->g.n_pad, m, resid);
}

// --- create / destroy ------------------------------------------------------------------

static ss_status no_raw_gemm(ss_gpu_linear *g, const void *q, int64_t m_pad, void *d) {
    return ss_fail(SS_EUNSUPPORTED, "tensor '%s': %s has no unfused GEMM", g->name,
                   sm_name((const sm_linear *)g));
}

static void sm_destroy(ss_linear *lin) {
    sm_linear *c = (sm_linear *)lin;
    if (!c)
        return;
    cudaStreamSynchronize(ss_cuda_stream(c->g.ctx));
    cudaFree(c->wc);
    cudaFree(c->meta);
    cudaFree(c->stream_w);
    cudaFree(c->sb_full);
    cudaFree(c->bias_full);
    ss_gpu_linear_fini(&c->g);
    free(c);
}

/* The rules both backends share (the pattern rule is each one's own). */
static const char *sm90_reason(const ss_context *ctx, ss_dtype wdtype, int dense) {
    const ss_cuda_state *st = ss_cuda(ctx);
    if (wdtype != SS_DTYPE_I8 && wdtype != SS_DTYPE_F8_E4M3)
        return dense ? "sm90dense takes I8 or F8_E4M3 weights"
                     : "sm90sp takes I8 or F8_E4M3 weights";
    if (st->cc_major != 9 || st->cc_minor != 0)
        return "needs sm_90 (compute capability 9.0) and a build with CUTLASS";
    return NULL;
}

static const char *sm_supports(const ss_context *ctx, ss_dtype wdtype, ss_pattern p) {
    if (ss_pattern_is_dense(p))
        return "dense weights: use cublaslt or sm90dense";
    return sm90_reason(ctx, wdtype, 0);
}

static const char *dense_supports(const ss_context *ctx, ss_dtype wdtype, ss_pattern p) {
    if (!ss_pattern_is_dense(p))
        return "sm90dense runs dense weights only (2:4 patterns: sm90sp)";
    return sm90_reason(ctx, wdtype, 1);
}

/* CUTLASS's SM90 compressor (element type T) on the device copy of W' (n_pad, K'). */
template <class T>
static ss_status compress_as(sm_linear *c, const void *w) {
    ss_gpu_linear *g = &c->g;
    ss_cuda_state *st = ss_cuda(g->ctx);
    cudaStream_t s = ss_cuda_stream(g->ctx);
    void *dense = NULL, *ws = NULL;
    ss_status rc = ss_gpu_upload_rows(&dense, w, g->n, g->kq, g->n_pad, g->kq, 1, g->name);
    if (rc != SS_OK)
        return rc;
    ProblemShape ps{(int)g->n_pad, 1, (int)g->kq, 1};
    auto stride_a = cutlass::make_cute_packed_stride(cutlass::gemm::TagToStrideA_t<LayoutTagA>{},
                                                     make_shape((int)g->n_pad, (int)g->kq, 1));
    CompressorUtil<T> u(ps, stride_a);
    size_t wc_bytes = u.get_compressed_tensor_A_bytes(), meta_bytes = u.get_tensor_E_bytes();
    cutlass::KernelHardwareInfo hw;
    hw.device_id = st->device;
    hw.sm_count = st->sms;
    Compressor<T> op;
    size_t ws_bytes = 0;
    cutlass::Status cs;
    cudaError_t e;
    rc = ss_cuda_alloc(&c->wc, wc_bytes, g->name, "compressed weights");
    if (rc == SS_OK)
        rc = ss_cuda_alloc(&c->meta, meta_bytes, g->name, "sparse metadata");
    if (rc != SS_OK) {
        cudaFree(dense);
        return rc;
    }
    typename Compressor<T>::Arguments args{ps, {(const T *)dense, stride_a, c->wc, c->meta}, {hw}};
    ws_bytes = Compressor<T>::get_workspace_size(args);
    if (ws_bytes && (rc = ss_cuda_alloc(&ws, ws_bytes, g->name, "compressor workspace")) != SS_OK)
        goto fail;
    cs = op.can_implement(args);
    if (cs == cutlass::Status::kSuccess)
        cs = op.initialize(args, ws, s);
    if (cs == cutlass::Status::kSuccess)
        cs = op.run(s);
    if (cs != cutlass::Status::kSuccess) {
        rc = ss_fail(SS_ECUDA, "tensor '%s': CUTLASS 2:4 compressor (n %lld, K' %lld): %s",
                     g->name, (long long)g->n_pad, (long long)g->kq,
                     cutlass::cutlassGetStatusString(cs));
        goto fail;
    }
    e = cudaStreamSynchronize(s);
    if (e != cudaSuccess)
        rc = ss_cuda_fail(e, g->name, "compressing weights");
fail:
    cudaFree(dense);
    cudaFree(ws);
    return rc;
}

static ss_status compress(sm_linear *c, const void *w) {
    return c->g.qdt == SS_DTYPE_F8_E4M3 ? compress_as<E4M3>(c, w) : compress_as<int8_t>(c, w);
}

/* sb broadcast to n_pad channels (0 in the padding), bias with -0.0 where absent. */
static ss_status upload_epilogue(sm_linear *c, const ss_linear_desc *d, const ss_linear_weights *w) {
    ss_gpu_linear *g = &c->g;
    size_t np = (size_t)g->n_pad;
    float *sb = (float *)calloc(np, sizeof *sb);
    uint16_t *bias = (uint16_t *)malloc(np * sizeof *bias);
    ss_status rc = SS_OK;
    cudaError_t e = cudaSuccess;
    if (!sb || !bias) {
        rc = ss_fail(SS_ENOMEM, "tensor '%s': out of host memory", g->name);
        goto fail;
    }
    for (size_t i = 0; i < (size_t)g->n; i++) {
        sb[i] = d->per_channel ? w->w_scale[i] : w->w_scale[0];
        bias[i] = w->bias ? w->bias[i] : (uint16_t)0x8000;
    }
    for (size_t i = (size_t)g->n; i < np; i++)
        bias[i] = 0x8000;
    rc = ss_cuda_alloc((void **)&c->sb_full, np * sizeof(float), g->name, "weight scale");
    if (rc == SS_OK)
        rc = ss_cuda_alloc((void **)&c->bias_full, np * 2, g->name, "bias");
    if (rc != SS_OK)
        goto fail;
    e = cudaMemcpy(c->sb_full, sb, np * sizeof(float), cudaMemcpyHostToDevice);
    if (e == cudaSuccess)
        e = cudaMemcpy(c->bias_full, bias, np * 2, cudaMemcpyHostToDevice);
    if (e != cudaSuccess)
        rc = ss_cuda_fail(e, g->name, "uploading the epilogue's scale and bias");
fail:
    free(sb);
    free(bias);
    return rc;
}

/* The weights once more in the stream GEMM's layout (packed on the host:
 * stream_layout.c is the CPU-tested definition of that layout). Decode-size
 * batches read these; the CUTLASS kernels read wc. */
static ss_status upload_stream(sm_linear *c, const void *w) {
    ss_gpu_linear *g = &c->g;
    int sparse = c->backend == SS_BACKEND_SM90SP;
    size_t bytes = ss_stream_bytes(sparse, g->n, g->kq);
    void *host = malloc(bytes);
    if (!host)
        return ss_fail(SS_ENOMEM, "tensor '%s': out of host memory (%zu bytes for the stream "
                       "layout)", g->name, bytes);
    ss_status rc = sparse ? ss_stream_pack_sparse(g->qdt, w, g->n, g->kq, host, g->name)
                          : ss_stream_pack_dense(w, g->n, g->k, g->kq, host);
    cudaError_t e = cudaSuccess;
    if (rc == SS_OK)
        rc = ss_cuda_alloc(&c->stream_w, bytes, g->name, "stream-layout weights");
    if (rc == SS_OK)
        e = cudaMemcpy(c->stream_w, host, bytes, cudaMemcpyHostToDevice);
    if (e == cudaSuccess)
        e = ss_stream_prepare();
    if (rc == SS_OK && e != cudaSuccess)
        rc = ss_cuda_fail(e, g->name, "uploading the stream-layout weights");
    free(host);
    return rc;
}

/* Both backends: sm90dense keeps W as the dense A operand (zero-padded to
 * (n_pad, ceil32(K)): zero columns add nothing), sm90sp compresses W'. */
static ss_status create_as(ss_backend b, ss_context *ctx, const ss_linear_desc *d,
                           const ss_linear_weights *w, ss_linear **out) {
    const char *bn = b == SS_BACKEND_SM90DENSE ? "sm90dense" : "sm90sp";
    if (d->out_dtype != SS_DTYPE_BF16)
        return ss_fail(SS_EUNSUPPORTED, "tensor '%s': %s writes BF16 output only (the fused "
                       "epilogue), found out_dtype %s", d->name, bn, ss_dtype_name(d->out_dtype));
    sm_linear *c = (sm_linear *)calloc(1, sizeof *c);
    if (!c)
        return ss_fail(SS_ENOMEM, "tensor '%s': out of host memory", d->name);
    c->backend = b;
    ss_gpu_linear *g = &c->g;
    ss_status s = ss_gpu_linear_init(g, ctx, d, w, no_raw_gemm);
    g->ddt = SS_DTYPE_BF16; /* the GEMM stage writes the dequantized output */
    /* 16-byte TMA rows of W' and q; always true (ss_slid_k pads to 32) */
    if (s == SS_OK && g->kq % 32 != 0)
        s = ss_fail(SS_EINVAL, "tensor '%s': %s expects K' %% 32 == 0, found K' %lld", d->name,
                    bn, (long long)g->kq);
    if (s == SS_OK)
        s = upload_epilogue(c, d, w);
    if (s == SS_OK && b == SS_BACKEND_SM90DENSE)
        s = ss_gpu_upload_rows(&c->wc, w->w, g->n, g->k, g->n_pad, g->kq, 1, g->name);
    else if (s == SS_OK)
        s = compress(c, w->w);
    if (s == SS_OK && stream_enabled())
        s = upload_stream(c, w->w);
    if (s != SS_OK) {
        sm_destroy(&g->base);
        return s;
    }
    *out = &g->base;
    return SS_OK;
}

static ss_status sm_create(ss_context *ctx, const ss_linear_desc *d, const ss_linear_weights *w,
                           ss_linear **out) {
    return create_as(SS_BACKEND_SM90SP, ctx, d, w, out);
}

static ss_status dense_create(ss_context *ctx, const ss_linear_desc *d, const ss_linear_weights *w,
                              ss_linear **out) {
    return create_as(SS_BACKEND_SM90DENSE, ctx, d, w, out);
}

// --- the tuner's candidates (linear.h) ----------------------------------------------

static int sm_algo_count(ss_linear *lin, int64_t mp) {
    sm_linear *c = (sm_linear *)lin;
    return algo_total(c->stream_w != NULL, c->backend == SS_BACKEND_SM90SP, ss_linear_m_pad(mp), c->g.kq);
}

static ss_status sm_algo_get(ss_linear *lin, int64_t mp, int i, ss_algo *out) {
    sm_linear *c = (sm_linear *)lin;
    int total = algo_total(c->stream_w != NULL, c->backend == SS_BACKEND_SM90SP, ss_linear_m_pad(mp), c->g.kq);
    if (i < 0 || i >= total)
        return ss_fail(SS_EINVAL, "tensor '%s': %s algorithm %d of %d", lin->name, sm_name(c), i,
                       total);
    memset(out, 0, sizeof *out);
    out->backend = c->backend;
    out->alg_id = i;
    out->split_k = 1;
    if (i >= SM_ALGOS)
        snprintf(out->desc, sizeof out->desc, "stream %s", ss_stream_config_name(i - SM_ALGOS));
    else
        snprintf(out->desc, sizeof out->desc, "%s %s", kVariant[i / SM_ORDERS],
                 kOrderName[i % SM_ORDERS]);
    return SS_OK;
}

static ss_status sm_algo_set(ss_linear *lin, int64_t mp, const ss_algo *a) {
    sm_linear *c = (sm_linear *)lin;
    int total = algo_total(c->stream_w != NULL, c->backend == SS_BACKEND_SM90SP, ss_linear_m_pad(mp), c->g.kq);
    if (a && (a->backend != c->backend || a->alg_id < 0 || a->alg_id >= total))
        return ss_fail(SS_EINVAL, "tensor '%s': expected an %s algorithm 0..%d, found %s %d",
                       lin->name, sm_name(c), total - 1, ss_backend_name(a->backend),
                       a->alg_id);
    int hit;
    int slot = ss_gpu_plan_slot(c->pins, sizeof *c->pins, SM_PINS, mp, &c->next_evict, &hit);
    c->pins[slot].m_pad = a ? mp : 0;
    c->pins[slot].alg = a ? a->alg_id : 0;
    return SS_OK;
}

static ss_backend_ops make_ops(const char *name,
                               const char *(*supports)(const ss_context *, ss_dtype, ss_pattern),
                               ss_status (*create)(ss_context *, const ss_linear_desc *,
                                                   const ss_linear_weights *, ss_linear **)) {
    ss_backend_ops o;
    memset(&o, 0, sizeof o);
    o.name = name;
    o.supports = supports;
    o.create = create;
    o.quant = sm_quant;
    o.gemm = sm_gemm;
    o.dequant = sm_dequant;
    o.forward = sm_forward;
    o.destroy = sm_destroy;
    o.algo_count = sm_algo_count;
    o.algo_get = sm_algo_get;
    o.algo_set = sm_algo_set;
    o.quant_rmsnorm = sm_quant_rmsnorm;
    o.forward_rmsnorm = sm_forward_rmsnorm;
    o.dequant_glu = sm_dequant_glu;
    o.dequant_residual = sm_dequant_residual;
    o.forward_glu = sm_forward_glu;
    o.forward_residual = sm_forward_residual;
    o.gemm_op = sm_gemm_op;
    o.gemm_op_fused = sm_gemm_op_fused;
    o.gemm_fused = 1;
    return o;
}

extern "C" const ss_backend_ops ss_backend_sm90sp = make_ops("sm90sp", sm_supports, sm_create);
extern "C" const ss_backend_ops ss_backend_sm90dense =
    make_ops("sm90dense", dense_supports, dense_create);
