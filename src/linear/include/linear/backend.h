/* Internal: the backend table behind ss_linear (STYLE: backends are tables of
 * { .name, .supports, .create, .forward stages, .destroy }).
 *
 * linear.c owns the public functions: it validates arguments once, picks the
 * table, and calls through it; a backend is added by writing one file that
 * defines an ss_backend_ops and listing it in linear.c.
 */
#ifndef SS_LINEAR_BACKEND_H
#define SS_LINEAR_BACKEND_H

#include "slidesparse/linear.h"

/* The context: everything a GPU backend shares between linear layers. */
struct ss_context {
    int device;           /* -1: CPU only */
    void *stream;         /* cudaStream_t */
    void *gpu;            /* struct ss_cuda_state * (cuda_context.c), NULL on CPU */
    const ss_tuner *tuner; /* ss_context_set_tuner; NULL: heuristics */
    void *tuner_user;
};

/* Common part of every ss_linear; backends embed it first in their struct. */
struct ss_linear {
    const struct ss_backend_ops *ops;
    ss_context *ctx;
    ss_linear_desc desc;
    char name[128];       /* desc.name points here */
    int64_t q_cols;       /* ss_linear_q_cols */
    /* Scratch of the generic forward (linear.c), grown on demand through
     * ops->buf_alloc/buf_free; rows = m_pad it was sized for. */
    void *scratch_q;      // (scratch_rows, q_cols) of wdtype
    float *scratch_sa;    // (scratch_rows)
    void *scratch_d;      // (scratch_rows, n) of gemm_out
    int64_t scratch_rows;
};

typedef struct ss_backend_ops {
    const char *name;
    /* NULL when supported, else a static reason. */
    const char *(*supports)(const ss_context *ctx, ss_dtype wdtype, ss_pattern p);
    /* Allocates the backend's struct (which begins with struct ss_linear),
     * copies/compresses weights. linear.c has validated d and w, and fills in the
     * common part after create returns. */
    ss_status (*create)(ss_context *ctx, const ss_linear_desc *d, const ss_linear_weights *w,
                        ss_linear **out);
    ss_status (*quant)(ss_linear *lin, const uint16_t *x, int64_t m, void *q, float *sa);
    ss_status (*gemm)(ss_linear *lin, const void *q, int64_t m, void *d);
    ss_status (*dequant)(ss_linear *lin, const void *d, const float *sa, int64_t m, void *y);
    /* Whole forward; NULL = quant -> gemm -> dequant through scratch owned by lin. */
    ss_status (*forward)(ss_linear *lin, const uint16_t *x, int64_t m, void *y);
    void (*destroy)(ss_linear *lin);
    /* Memory for the generic forward's scratch; NULL = host malloc/free (a
     * backend on device memory that leaves .forward NULL must set these). */
    void *(*buf_alloc)(ss_linear *lin, size_t bytes);
    void (*buf_free)(ss_linear *lin, void *p);
    /* Optional (the tuner's candidate interface, slidesparse/linear.h); NULL =
     * one algorithm, nothing to choose. m_pad is the M bucket. algo_set with
     * a == NULL unpins (back to the table or the heuristic). */
    int (*algo_count)(ss_linear *lin, int64_t m_pad);
    ss_status (*algo_get)(ss_linear *lin, int64_t m_pad, int i, ss_algo *out);
    ss_status (*algo_set)(ss_linear *lin, int64_t m_pad, const ss_algo *a);
    /* Optional: workspace bytes a needs at m_pad (NULL = a->workspace is exact). */
    ss_status (*algo_workspace)(ss_linear *lin, int64_t m_pad, const ss_algo *a, uint64_t *bytes);
    /* The RMSNorm-fused stage and forward (linear.h ss_linear_*_rmsnorm);
     * linear.c has checked gamma and eps. quant_rmsnorm is required;
     * forward_rmsnorm NULL = quant_rmsnorm -> gemm -> dequant through the
     * generic forward's scratch. */
    ss_status (*quant_rmsnorm)(ss_linear *lin, const uint16_t *x, const uint16_t *gamma, float eps,
                               int64_t m, void *q, float *sa);
    ss_status (*forward_rmsnorm)(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                 float eps, int64_t m, void *y);
    /* The GLU- / residual-fused dequant stage and forward (linear.h
     * ss_linear_*_glu / *_residual); linear.c has checked n even (glu) and a
     * BF16 out_dtype. gamma NULL = no norm. The dequant stages are required;
     * the forwards NULL = quant(_rmsnorm) -> gemm -> fused dequant through
     * the generic forward's scratch. */
    ss_status (*dequant_glu)(ss_linear *lin, const void *d, const float *sa, int64_t m, int relu2,
                             uint16_t *act);
    ss_status (*dequant_residual)(ss_linear *lin, const void *d, const float *sa, int64_t m,
                                  uint16_t *resid);
    ss_status (*forward_glu)(ss_linear *lin, const uint16_t *x, const uint16_t *gamma, float eps,
                             int64_t m, int relu2, uint16_t *act);
    ss_status (*forward_residual)(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                  float eps, int64_t m, uint16_t *resid);
    /* Optional (linear.h ss_linear_residual_rmsnorm_quant): a's residual-fused
     * dequant and b's RMSNorm-fused quant in one pass; linear.c has checked
     * the arguments and calls it only when a and b share this function (NULL
     * = the two stages). */
    ss_status (*residual_rmsnorm_quant)(ss_linear *a, const void *d, const float *sa, int64_t m,
                                        uint16_t *resid, ss_linear *b, const uint16_t *gamma,
                                        float eps, void *q, float *sq);
    /* Optional (linear.h ss_linear_gemm_op): the GEMM with the dequant and the
     * op in its own epilogue; linear.c has checked the arguments. Returns
     * SS_EUNSUPPORTED (no error text) when it cannot at this m / op, and
     * linear.c then runs the stages. gemm_op_fused says beforehand. */
    ss_status (*gemm_op)(ss_linear *lin, const void *q, const float *sa, int64_t m, int op,
                         uint16_t *out);
    int (*gemm_op_fused)(ss_linear *lin, int64_t m, int op);
    /* 1: the dequant is fused into the GEMM (sm90sp, sm90dense): the GEMM stage writes the
     * dequantized BF16 output (linear.c sets desc.gemm_out = BF16), reading the
     * token scales of the linear's last quant stage; dequant only copies it. */
    int gemm_fused;
} ss_backend_ops;

extern const ss_backend_ops ss_backend_cpu;
#ifdef SS_HAVE_CUDA
extern const ss_backend_ops ss_backend_cublaslt;
#endif
#ifdef SS_HAVE_CUSPARSELT
extern const ss_backend_ops ss_backend_cusparselt;
#endif
#ifdef SS_HAVE_SM90SP
extern const ss_backend_ops ss_backend_sm90sp;    /* sm90sp.cu (C++, CUTLASS) */
extern const ss_backend_ops ss_backend_sm90dense; /* sm90sp.cu: the dense baseline */
#endif

/* cuda_context.c (CUDA builds only): creates/destroys ctx->gpu. */
#ifdef SS_HAVE_CUDA
ss_status ss_cuda_context_init(ss_context *ctx);
void ss_cuda_context_fini(ss_context *ctx);
#endif

#endif
