/* slidesparse/linear.h — the one linear-layer interface every model layer,
 * the kernel benchmark and the tuner call (DESIGN: "the seam").
 *
 *   Y[m, n] = dequant( GEMM( quant(+lift)(X[m, :]), W'[n, :] ) ) (+ bias[n])
 *
 * Stages and their exact arithmetic (SPEC §4; all backends must agree):
 *   quant : slidesparse/quant.h ss_quant_act_ref (per-token scale sa[m]).
 *   GEMM  : D[m, n] = sum_j q[m, j] * w[n, j]
 *           I8 x I8  -> I32 exact;  E4M3 x E4M3 -> F32 (or BF16 when gemm_out says so).
 *           BF16 weights: x (BF16) * w (BF16) -> F32 accumulate, no quantization.
 *   dequant: t = (float)D * sa[m];  t = t * sb[n or 0];  t = t + (float)bias[n];
 *            Y = bf16(t) (or t for F32 output). Three separately rounded IEEE
 *            ops, no fused multiply-add, so the CPU and the GPU agree bit for bit.
 *
 * Buffers: the CPU backend takes host pointers; GPU backends take device
 * pointers and run on the context's stream. Weights are handed over in host
 * memory at creation (backends copy/compress them once).
 */
#ifndef SLIDESPARSE_LINEAR_H
#define SLIDESPARSE_LINEAR_H

#include "slidesparse/core.h"
#include "slidesparse/sparse.h"

#ifdef __cplusplus
extern "C" {
#endif

// --- context ---------------------------------------------------------------------

typedef struct ss_context ss_context; /* opaque: device, library handles, stream,
                                         GEMM workspace (owned here, so CUDA graphs
                                         can capture forwards), tuner */

/* device: CUDA ordinal, or -1 for a CPU-only context. A CUDA build without a
 * device, or a CPU-only build, fails with SS_EUNSUPPORTED for device >= 0
 * (ss_context_check_device's message). */
ss_status ss_context_create(int device, ss_context **out);
/* Before any work: SS_EUNSUPPORTED "no CUDA device: <what> needs a GPU" when
 * device >= 0 and no GPU is visible (or this build has none), "no CUDA device
 * D: ..." when D is out of range; SS_OK for device < 0. what: "backend
 * cublaslt", "--backend gpu". */
ss_status ss_context_check_device(const char *what, int device);
void ss_context_destroy(ss_context *ctx);
int ss_context_device(const ss_context *ctx);
/* cudaStream_t as void* (NULL = legacy default stream). */
void ss_context_set_stream(ss_context *ctx, void *stream);
void *ss_context_stream(const ss_context *ctx);

/* One line: GPU name, compute capability, SMs, memory, cuBLASLt and
 * cuSPARSELt run-time versions, and a warning when cuSPARSELt < 0.8.1 (known
 * Hopper regressions); "CPU (no device)" for a CPU context. SS_EINVAL when buf
 * (n bytes) is too small. */
ss_status ss_context_describe(const ss_context *ctx, char *buf, size_t n);

/* Number of CUDA devices visible to this build (0 in a CPU-only build or when
 * the driver finds none). */
int ss_cuda_device_count(void);

// --- backends ---------------------------------------------------------------------

typedef enum {
    SS_BACKEND_CPU = 0,     /* exact reference, OpenMP */
    SS_BACKEND_CUBLASLT,    /* dense INT8 / FP8 / BF16 */
    SS_BACKEND_CUSPARSELT,  /* 2:4 sparse on slid weights */
    SS_BACKEND_SM90SP,      /* 2:4 sparse INT8 on sm_90 (CUTLASS), dequant fused into
                               the GEMM: its GEMM stage writes the BF16 output */
    SS_BACKEND_SM90DENSE,   /* dense INT8 on sm_90: sm90sp's kernel family with a dense
                               operand and the same fused epilogue (the honest dense
                               baseline of sm90sp); stages as sm90sp */
    SS_BACKEND_COUNT
} ss_backend;

const char *ss_backend_name(ss_backend b);
ss_status ss_backend_parse(const char *s, ss_backend *out);

typedef struct {
    const char *name;    /* tensor name, for error text */
    int64_t n, k;        /* output features, logical inputs (K before sliding) */
    ss_dtype wdtype;     /* SS_DTYPE_I8, SS_DTYPE_F8_E4M3, or SS_DTYPE_BF16 */
    ss_pattern pattern;  /* SS_PATTERN_DENSE: w is (n, k); otherwise slid (n, K') */
    ss_dtype gemm_out;   /* GEMM output dtype (I32 / F32 / BF16);
                            SS_DTYPE_COUNT = backend default (I8: I32, FP8: F32) */
    ss_dtype out_dtype;  /* SS_DTYPE_BF16 (default) or SS_DTYPE_F32 */
    int per_channel;     /* w_scale has n entries (1) or one (0) */
} ss_linear_desc;

/* Defaults: gemm_out = COUNT, out_dtype = BF16, per_channel = 1, dense. */
ss_linear_desc ss_linear_desc_default(const char *name, int64_t n, int64_t k,
                                      ss_dtype wdtype);

typedef struct {
    const void *w;         /* (n, k) or slid (n, K'), dtype wdtype, host memory */
    const float *w_scale;  /* (n) or (1); NULL for BF16 weights (treated as 1) */
    const uint16_t *bias;  /* (n) BF16, or NULL */
} ss_linear_weights;

/* NULL when backend b can run (wdtype, pattern) in ctx, else a static reason
 * ("FP8 needs compute capability >= 8.9", "built without cuSPARSELt", ...). */
const char *ss_linear_supports(const ss_context *ctx, ss_backend b, ss_dtype wdtype,
                               ss_pattern pattern);

typedef struct ss_linear ss_linear; /* opaque */

/* Validates shapes and, for slid patterns, that w is 2:4-valid (SS_EINVAL with
 * the tensor name otherwise); copies/compresses the weights. */
ss_status ss_linear_create(ss_context *ctx, ss_backend b, const ss_linear_desc *d,
                           const ss_linear_weights *w, ss_linear **out);
void ss_linear_destroy(ss_linear *lin);
const ss_linear_desc *ss_linear_get_desc(const ss_linear *lin);

/* y (m, n) out_dtype = linear(x (m, k) BF16). */
ss_status ss_linear_forward(ss_linear *lin, const uint16_t *x, int64_t m, void *y);

/* y (m, n) = linear(rmsnorm(x) * gamma): the RMSNorm in front of a projection
 * fused into its quant stage (the row is read once; no normed copy is
 * written). Per row, HF's rounding points (as the engine's norm):
 *   inv = 1 / sqrt(sum_j x[j]^2 / k + eps)   (float; each op rounded)
 *   h[j] = bf16(gamma[j] * bf16(x[j] * inv)),  then y = linear(h).
 * gamma (k) BF16 lives where x does (host for the CPU backend, device for
 * the GPU ones); eps finite and >= 0. The CPU backend equals the norm
 * followed by ss_linear_forward bit for bit; the GPU backends sum the squares
 * in another order, the only difference. */
ss_status ss_linear_forward_rmsnorm(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                    float eps, int64_t m, void *y);

/* The elementwise op after a projection fused into its dequant stage (the
 * GEMM output is read once; the BF16 projection output is never written).
 * Both take gamma == NULL for no norm, else the RMSNorm of
 * ss_linear_forward_rmsnorm in front. BF16 output only: a linear created
 * with out_dtype F32 fails with SS_EUNSUPPORTED.
 *
 * ss_linear_forward_glu: act (m, n/2) BF16 = glu(y), y = the BF16 output of
 * the forward (n even; columns [0, n/2) are the gate, [n/2, n) the up
 * projection, as the engine's fused gate_up rows), per element
 *   g = y[r, c], u = y[r, n/2 + c] (each the bf16 of its dequant)
 *   relu2 != 0: a = g > 0 ? g * g : 0      (BitNet, HF "relu2")
 *   relu2 == 0: a = g / (1 + exp(-g))      (SiLU; each op rounded)
 *   act[r, c] = bf16(a * u)
 * exactly the engine's ss_glu_cpu / ss_glu_cuda on y (the GPU's expf is the
 * device's, as in ss_glu_cuda: SiLU agrees with the CPU to rounding only).
 *
 * ss_linear_forward_residual: resid (m, n) BF16 is the residual stream,
 *   resid[r, c] = bf16(resid[r, c] + y[r, c])  (float add)
 * exactly the engine's residual add after the plain forward. resid must not
 * overlap x. */
ss_status ss_linear_forward_glu(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                float eps, int64_t m, int relu2, uint16_t *act);
ss_status ss_linear_forward_residual(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                     float eps, int64_t m, uint16_t *resid);

// --- stages (benchmarks and tests) ---------------------------------------------------

/* Width of the quantized activations: K' for slid patterns, ceil32(K) dense. */
int64_t ss_linear_q_cols(const ss_linear *lin);
/* Rows the GEMM stage needs allocated for m tokens (m rounded up to 16). */
int64_t ss_linear_m_pad(int64_t m);

/* q (m_pad, q_cols) of wdtype, sa (m_pad). Rows >= m are zero-filled. */
ss_status ss_linear_quant(ss_linear *lin, const uint16_t *x, int64_t m, void *q, float *sa);
/* The quant stage of ss_linear_forward_rmsnorm: q, sa as ss_linear_quant of h. */
ss_status ss_linear_quant_rmsnorm(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                  float eps, int64_t m, void *q, float *sa);
/* d (m, n) of gemm_out (row-major). On the cusparselt backend q must be
 * allocated with 4096 bytes of slack past (m_pad, q_cols): cuSPARSELt 0.8 reads
 * the last K tile whole (ss_linear_forward's own scratch has the slack).
 * sm90sp fuses the dequant into the GEMM: its gemm_out is BF16 and d is the
 * layer's output y, computed with the token scales of the last
 * ss_linear_quant(_rmsnorm) on this linear (call the stages in order on the
 * same buffers); its dequant stage then copies d to y (sa unused) and the
 * _glu / _residual stages apply only the op. */
ss_status ss_linear_gemm(ss_linear *lin, const void *q, int64_t m, void *d);
/* y (m, n) of out_dtype. */
ss_status ss_linear_dequant(ss_linear *lin, const void *d, const float *sa, int64_t m,
                            void *y);
/* The dequant stages of ss_linear_forward_glu / _residual: d (m, n) of
 * gemm_out and sa (m) as ss_linear_dequant takes them; act (m, n/2) BF16;
 * resid (m, n) BF16 updated in place. */
ss_status ss_linear_dequant_glu(ss_linear *lin, const void *d, const float *sa, int64_t m,
                                int relu2, uint16_t *act);
ss_status ss_linear_dequant_residual(ss_linear *lin, const void *d, const float *sa, int64_t m,
                                     uint16_t *resid);

/* The GEMM stage followed by the dequant stage and the elementwise op that
 * comes after the projection, for a caller that has quantized already (the
 * engine between its fused norm / quant kernels):
 *   SS_LINEAR_OP_PLAIN       out (m, n)   = ss_linear_dequant of the GEMM
 *   SS_LINEAR_OP_GLU_RELU2 / SS_LINEAR_OP_GLU_SILU
 *                            out (m, n/2) = ss_linear_dequant_glu (n even)
 *   SS_LINEAR_OP_RESIDUAL    out (m, n)  += as ss_linear_dequant_residual
 * with exactly their results. q, sa: the quant stage's output for m rows
 * (q allocated for m_pad rows, as ss_linear_gemm takes it). d: scratch of
 * (m_pad, n) 4-byte values for the unfused form. A backend whose GEMM can
 * apply the op itself runs one kernel and leaves d untouched:
 * ss_linear_gemm_op_fused says whether it does at m rows. BF16 output only. */
typedef enum {
    SS_LINEAR_OP_PLAIN = 0,
    SS_LINEAR_OP_GLU_RELU2,
    SS_LINEAR_OP_GLU_SILU,
    SS_LINEAR_OP_RESIDUAL,
} ss_linear_op;

ss_status ss_linear_gemm_op(ss_linear *lin, const void *q, const float *sa, int64_t m,
                            ss_linear_op op, void *d, uint16_t *out);
int ss_linear_gemm_op_fused(ss_linear *lin, int64_t m, ss_linear_op op);

/* The seam between two projections of a pre-norm block, in one pass over the
 * residual stream: a's residual-fused dequant followed by the RMSNorm-fused
 * quant stage of the next projection b,
 *   ss_linear_dequant_residual(a, d, sa, m, resid);
 *   ss_linear_quant_rmsnorm(b, resid, gamma, eps, m, q, sq);
 * with exactly their results (resid updated in place, bit for bit; q
 * (m_pad, q_cols of b) of b's wdtype and sq (m_pad) as b's quant stage writes
 * them). d, sa: a's GEMM output (m, n of a) and token scales; gamma (k of b)
 * BF16. a and b share a context, a->n == b->k, a's out_dtype is BF16. The GPU
 * backends (cublaslt, cusparselt) run one row kernel (the residual row is
 * read once and stays in registers through the norm and the quant); the CPU
 * backend, the backends that fuse the dequant into the GEMM (sm90sp,
 * sm90dense) and any call the kernel cannot take (K % 8, alignment, BF16
 * activations) run the two stages. */
ss_status ss_linear_residual_rmsnorm_quant(ss_linear *a, const void *d, const float *sa, int64_t m,
                                           uint16_t *resid, ss_linear *b, const uint16_t *gamma,
                                           float eps, void *q, float *sq);

// --- algorithms (a backend's candidates, for the tuner) ------------------------------

#define SS_ALGO_OPAQUE_BYTES 64

/* One GEMM algorithm choice. cuSPARSELt: alg_id + split_k (0 = library
 * default, -1 = Segment-K on SM90+). cuBLASLt: the opaque cublasLtMatmulAlgo_t
 * (has_opaque), alg_id / split_k are informative. CPU: the one algorithm. */
typedef struct {
    ss_backend backend;
    int alg_id;
    int split_k;
    int split_k_max;    /* candidates: > 0 asks the search to try split_k 1,2,4.. <= max */
    int segment_k;      /* candidates: 1 when split_k -1 (Segment-K) may be tried */
    uint64_t workspace; /* bytes */
    int has_opaque;
    uint8_t opaque[SS_ALGO_OPAQUE_BYTES];
    char desc[64];
} ss_algo;

/* Candidates a linear's backend offers for the M bucket of m (0 when the
 * backend has no choice: the CPU backend). */
int ss_linear_algo_count(ss_linear *lin, int64_t m);
ss_status ss_linear_algo_get(ss_linear *lin, int64_t m, int i, ss_algo *out);
/* Workspace bytes algorithm a (alg id, split_k, opaque algo) needs at the M
 * bucket of m: cuSPARSELt asks a plan built with a's settings; a backend
 * whose candidates already carry it answers a->workspace. */
ss_status ss_linear_algo_workspace(ss_linear *lin, int64_t m, const ss_algo *a, uint64_t *bytes);
/* Pins algorithm a for the M bucket of m (a == NULL: back to the tuner or the
 * heuristic). SS_EUNSUPPORTED when the backend has no choice. */
ss_status ss_linear_algo_set(ss_linear *lin, int64_t m, const ss_algo *a);

/* Our quant(+slide) kernel's launch configuration: vecs = 16-byte loads per
 * thread in the row-in-registers kernel (1, 2, 4 or 8; 0 = the library's
 * automatic choice), pdl = 1 launches it as a programmatic dependent launch
 * (cc >= 9.0). */
typedef struct {
    int vecs;
    int pdl;
} ss_quant_launch;

// --- tuned choices ---------------------------------------------------------------------

/* Where a context's GPU backends find what a tuning run chose. This layer
 * knows no tuning table: whoever holds one (slidesparse/tune.h,
 * ss_context_set_tuning) installs a tuner; without one every backend uses
 * its heuristic and the automatic quant launch. The functions are called
 * when a backend plans a GEMM or launches a quant stage, on the calling
 * thread. */
typedef struct ss_tuner {
    /* The GEMM algorithm tuned for backend b, dtypes in -> out, n (ceil32(N)),
     * k (the GEMM's K: ceil32(K) dense, K' slid) at the M bucket m; NULL: none,
     * the heuristic applies. The pointer is read at once, not kept. */
    const ss_algo *(*gemm)(void *user, ss_context *ctx, ss_backend b, ss_dtype in,
                           ss_dtype out, int64_t n, int64_t k, int64_t m);
    /* 1 with *out filled: the quant(+slide) launch tuned for (qdt, k, k_out)
     * at the M bucket of m; 0: the automatic choice. */
    int (*quant)(void *user, ss_context *ctx, ss_dtype qdt, int64_t k, int64_t k_out, int64_t m,
                 ss_quant_launch *out);
    /* Frees user when the context is destroyed or gets another tuner; may be NULL. */
    void (*release)(void *user);
} ss_tuner;

/* Installs tuner t with user (t NULL: none). t is not copied: it must outlive
 * the context (a static table). The previous tuner's release runs first.
 * Linears already planned keep their choices. */
ss_status ss_context_set_tuner(ss_context *ctx, const ss_tuner *t, void *user);
/* The user pointer ctx's tuner was installed with when that tuner is t, else
 * NULL (how the tuner's owner finds its state again). */
void *ss_context_tuner_user(const ss_context *ctx, const ss_tuner *t);

#ifdef __cplusplus
}
#endif
#endif
