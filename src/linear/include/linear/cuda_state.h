/* Internal (CUDA builds): what the GPU backends share through ss_context->gpu,
 * and the common part of a GPU linear layer (gpu_linear.c): device weight
 * scales and bias, the quant and dequant stages (our kernels), the staged GEMM
 * and the fused forward. A GPU backend supplies only create, the raw GEMM and
 * destroy.
 */
#ifndef SS_LINEAR_CUDA_STATE_H
#define SS_LINEAR_CUDA_STATE_H

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#ifdef SS_HAVE_CUSPARSELT
/* cuSPARSELt 0.8.x's header spells C++'s alignas in its structs; in C11 the
 * macro comes from <stdalign.h> (0.9+ does not need it). */
#include <stdalign.h>
#include <cusparseLt.h>
#endif

#include "linear/backend.h"
#include "linear/kernels/kernels.h"

/* cuSPARSELt (0.8, SM90) reads the activations in whole K tiles, up to this
 * many bytes past the end of the (m_pad, K') operand (seen by compute-sanitizer
 * with K' = 672: 512 bytes). Our scratch carries the slack; callers of the
 * staged GEMM on a GPU backend must too (slidesparse/linear.h). */
#define SS_GPU_GEMM_SLACK 4096

/* A device buffer that only grows (cudaFree + cudaMalloc): the GEMM workspace
 * and the fused forward's scratch. Growing happens when a plan is built or a
 * larger m is seen, never in steady state (so CUDA graphs can capture). */
typedef struct {
    void *p;
    size_t size;
} ss_cuda_buf;

typedef struct ss_cuda_state {
    int device;
    char gpu_name[256];
    int cc_major, cc_minor, sms;
    size_t total_mem;
    cublasLtHandle_t lt;
    size_t lt_version;
#ifdef SS_HAVE_CUSPARSELT
    cusparseLtHandle_t sp;
    int sp_ok;       /* cusparseLtInit succeeded */
    int sp_version;  /* major*1000000 + minor*100 + patch (CUSPARSELT_VERSION) */
#endif
    ss_cuda_buf workspace;            /* GEMM workspace, shared by all linears */
    ss_cuda_buf scratch_q, scratch_sa, scratch_d; /* fused forward / staged GEMM */
} ss_cuda_state;

static inline ss_cuda_state *ss_cuda(const ss_context *ctx) { return (ss_cuda_state *)ctx->gpu; }
static inline cudaStream_t ss_cuda_stream(const ss_context *ctx) { return (cudaStream_t)ctx->stream; }

/* SS_ECUDA naming the tensor and the call; clears CUDA's (non-sticky) error. */
ss_status ss_cuda_fail(cudaError_t e, const char *name, const char *what);
/* Grows b to at least `size` bytes; SS_ENOMEM naming the tensor on failure. */
ss_status ss_cuda_buf_reserve(ss_cuda_buf *b, size_t size, const char *name, const char *what);
void ss_cuda_buf_free(ss_cuda_buf *b);
/* cudaMalloc with SS_ENOMEM (naming tensor and size) on failure. */
ss_status ss_cuda_alloc(void **p, size_t size, const char *name, const char *what);

/* "FP8 needs compute capability >= 8.9" etc., or NULL. */
const char *ss_cuda_dtype_reason(const ss_cuda_state *st, ss_dtype wdtype);

// --- the common GPU linear ---------------------------------------------------------------

typedef struct ss_gpu_linear ss_gpu_linear;
/* D (n_pad rows, ld n_pad) x (m_pad columns), column-major = row-major
 * [m_pad, n_pad] of ddt: the library call. */
typedef ss_status (*ss_gpu_gemm_fn)(ss_gpu_linear *g, const void *q, int64_t m_pad, void *d);

struct ss_gpu_linear {
    struct ss_linear base;  /* first: linear.c fills it */
    ss_context *ctx;
    char name[128];
    int64_t n, n_pad;       /* n_pad = ceil32(n): the libraries' alignment */
    int64_t k, kq;          /* logical inputs; q columns (K' or ceil32(K)) */
    ss_lift_geom geo;
    ss_dtype qdt, ddt, ydt; /* activations / GEMM output / layer output */
    float *sb;              /* (n) or (1) device weight scale (1.0 for BF16) */
    int sb_per_channel;
    uint16_t *bias;         /* (n) device BF16, or NULL */
    ss_gpu_gemm_fn gemm_raw;
    int pdl;                /* our kernels as programmatic dependent launches
                               (ss_kernel_pdl_on at creation: SS_PDL, cc >= 9.0) */
};

/* Fills the common fields, uploads scales and bias. */
ss_status ss_gpu_linear_init(ss_gpu_linear *g, ss_context *ctx, const ss_linear_desc *d,
                             const ss_linear_weights *w, ss_gpu_gemm_fn gemm_raw);
void ss_gpu_linear_fini(ss_gpu_linear *g);

/* The stages of backend.h, shared by both GPU backends. */
ss_status ss_gpu_quant(ss_linear *lin, const uint16_t *x, int64_t m, void *q, float *sa);
ss_status ss_gpu_gemm(ss_linear *lin, const void *q, int64_t m, void *d);
ss_status ss_gpu_dequant(ss_linear *lin, const void *d, const float *sa, int64_t m, void *y);
ss_status ss_gpu_forward(ss_linear *lin, const uint16_t *x, int64_t m, void *y);
ss_status ss_gpu_quant_rmsnorm(ss_linear *lin, const uint16_t *x, const uint16_t *gamma, float eps,
                               int64_t m, void *q, float *sa);
ss_status ss_gpu_forward_rmsnorm(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                 float eps, int64_t m, void *y);
ss_status ss_gpu_dequant_glu(ss_linear *lin, const void *d, const float *sa, int64_t m, int relu2,
                             uint16_t *act);
ss_status ss_gpu_dequant_residual(ss_linear *lin, const void *d, const float *sa, int64_t m,
                                  uint16_t *resid);
ss_status ss_gpu_residual_rmsnorm_quant(ss_linear *a, const void *d, const float *sa, int64_t m,
                                        uint16_t *resid, ss_linear *b, const uint16_t *gamma,
                                        float eps, void *q, float *sq);
ss_status ss_gpu_forward_glu(ss_linear *lin, const uint16_t *x, const uint16_t *gamma, float eps,
                             int64_t m, int relu2, uint16_t *act);
ss_status ss_gpu_forward_residual(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                  float eps, int64_t m, uint16_t *resid);

/* Uploads host rows (n, k) of esz bytes into a zeroed device (n_pad, kpad). */
ss_status ss_gpu_upload_rows(void **dst, const void *src, int64_t n, int64_t k, int64_t n_pad,
                             int64_t kpad, size_t esz, const char *name);

/* The CUDA data type of a GEMM operand (I8, F8_E4M3, BF16, I32; F32 otherwise). */
cudaDataType_t ss_cuda_data_type(ss_dtype t);

// --- what the GPU backends' plan caches share --------------------------------------------

/* What an algorithm choice depends on (SPEC §7 key, less the GPU/library). */
typedef struct {
    int64_t m_bucket, n, k;
    ss_dtype in, out;
} ss_gpu_tune_key;

/* The key of g's GEMM on the M bucket m_pad (padded N and K'). */
ss_gpu_tune_key ss_gpu_linear_key(const ss_gpu_linear *g, int64_t m_pad);
/* The algorithm the context's tuner chose for `key` on backend b, or NULL. */
const ss_algo *ss_gpu_tuned(ss_context *ctx, ss_backend b, const ss_gpu_tune_key *key);
/* The quant launch the context's tuner chose: 1 with *out filled, else 0. */
int ss_gpu_tuned_quant(ss_context *ctx, ss_dtype qdt, int64_t k, int64_t k_out, int64_t m,
                       ss_quant_launch *out);

/* Plans cached per M bucket: `n` plans of `size` bytes each, whose first member
 * is `int64_t m_pad` (0 = empty slot). Returns the slot of the plan built for
 * m_pad (*hit = 1); else an empty slot, else the next one round robin (decode
 * with many distinct m), *hit = 0: the caller clears that slot and builds. */
int ss_gpu_plan_slot(const void *plans, size_t size, int n, int64_t m_pad, int *next_evict,
                     int *hit);

#endif
