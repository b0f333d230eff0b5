/* The public ss_linear / ss_context functions: argument checks done once here,
 * then a call through the backend table (linear/backend.h). Adding a
 * backend = one file defining an ss_backend_ops + one row in `backends`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "linear/backend.h"

// --- the backend table ---------------------------------------------------------------

static const struct {
    const char *name;
    const ss_backend_ops *ops; /* NULL when not compiled in */
    const char *missing;       /* why, when ops is NULL */
} backends[SS_BACKEND_COUNT] = {
    [SS_BACKEND_CPU] = {"cpu", &ss_backend_cpu, NULL},
#ifdef SS_HAVE_CUDA
    [SS_BACKEND_CUBLASLT] = {"cublaslt", &ss_backend_cublaslt, NULL},
#else
    [SS_BACKEND_CUBLASLT] = {"cublaslt", NULL, "built without CUDA"},
#endif
#if defined(SS_HAVE_CUSPARSELT)
    [SS_BACKEND_CUSPARSELT] = {"cusparselt", &ss_backend_cusparselt, NULL},
#elif defined(SS_HAVE_CUDA)
    [SS_BACKEND_CUSPARSELT] = {"cusparselt", NULL, "built without cuSPARSELt"},
#else
    [SS_BACKEND_CUSPARSELT] = {"cusparselt", NULL, "built without CUDA"},
#endif
#if defined(SS_HAVE_SM90SP)
    [SS_BACKEND_SM90SP] = {"sm90sp", &ss_backend_sm90sp, NULL},
    [SS_BACKEND_SM90DENSE] = {"sm90dense", &ss_backend_sm90dense, NULL},
#else
    [SS_BACKEND_SM90SP] = {"sm90sp", NULL, "needs sm_90 and a build with CUTLASS"},
    [SS_BACKEND_SM90DENSE] = {"sm90dense", NULL, "needs sm_90 and a build with CUTLASS"},
#endif
};

const char *ss_backend_name(ss_backend b) {
    return (unsigned)b < SS_BACKEND_COUNT ? backends[b].name : "unknown";
}

ss_status ss_backend_parse(const char *s, ss_backend *out) {
    for (int b = 0; s && b < SS_BACKEND_COUNT; b++)
        if (!strcmp(s, backends[b].name)) {
            *out = (ss_backend)b;
            return SS_OK;
        }
    return ss_fail(SS_EINVAL, "backend: expected cpu, cublaslt, cusparselt, sm90sp or sm90dense, found '%s'",
                   s ? s : "(null)");
}

// --- context ---------------------------------------------------------------------------

#ifndef SS_HAVE_CUDA
int ss_cuda_device_count(void) { return 0; }
#endif

ss_status ss_context_check_device(const char *what, int device) {
    if (device < 0)
        return SS_OK;
#ifndef SS_HAVE_CUDA
    return ss_fail(SS_EUNSUPPORTED, "no CUDA device: %s needs a GPU, and this build has no CUDA "
                   "(use --backend cpu)", what);
#else
    int count = ss_cuda_device_count();
    if (count == 0)
        return ss_fail(SS_EUNSUPPORTED, "no CUDA device: %s needs a GPU (use --backend cpu)", what);
    if (device >= count)
        return ss_fail(SS_EUNSUPPORTED, "no CUDA device %d: %s needs a GPU, and %d %s visible "
                       "(--device 0..%d)", device, what, count, count == 1 ? "is" : "are", count - 1);
    return SS_OK;
#endif
}

ss_status ss_context_create(int device, ss_context **out) {
    if (!out)
        return ss_fail(SS_EINVAL, "context: out pointer is NULL");
    *out = NULL;
    if (device < -1)
        return ss_fail(SS_EINVAL, "context: expected device -1 (CPU) or a CUDA ordinal, found %d",
                       device);
    char what[48];
    snprintf(what, sizeof what, "a context on device %d", device);
    SS_TRY(ss_context_check_device(what, device));
    ss_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return ss_fail(SS_ENOMEM, "context: out of memory");
    ctx->device = device;
#ifdef SS_HAVE_CUDA
    if (device >= 0) {
        ss_status s = ss_cuda_context_init(ctx);
        if (s != SS_OK) {
            free(ctx);
            return s;
        }
    }
#endif
    *out = ctx;
    return SS_OK;
}

void ss_context_destroy(ss_context *ctx) {
    if (!ctx)
        return;
    (void)ss_context_set_tuner(ctx, NULL, NULL); /* the tuner's state */
#ifdef SS_HAVE_CUDA
    if (ctx->device >= 0)
        ss_cuda_context_fini(ctx);
#endif
    free(ctx);
}

ss_status ss_context_set_tuner(ss_context *ctx, const ss_tuner *t, void *user) {
    if (!ctx)
        return ss_fail(SS_EINVAL, "tuner: context is NULL");
    if (ctx->tuner && ctx->tuner->release)
        ctx->tuner->release(ctx->tuner_user);
    ctx->tuner = t;
    ctx->tuner_user = t ? user : NULL;
    return SS_OK;
}

void *ss_context_tuner_user(const ss_context *ctx, const ss_tuner *t) {
    return ctx && t && ctx->tuner == t ? ctx->tuner_user : NULL;
}

int ss_context_device(const ss_context *ctx) { return ctx ? ctx->device : -1; }
void ss_context_set_stream(ss_context *ctx, void *stream) {
    if (ctx)
        ctx->stream = stream;
}
void *ss_context_stream(const ss_context *ctx) { return ctx ? ctx->stream : NULL; }

// --- descriptors -------------------------------------------------------------------------

ss_linear_desc ss_linear_desc_default(const char *name, int64_t n, int64_t k, ss_dtype wdtype) {
    return (ss_linear_desc){
        .name = name,
        .n = n,
        .k = k,
        .wdtype = wdtype,
        .pattern = SS_PATTERN_DENSE,
        .gemm_out = SS_DTYPE_COUNT,
        .out_dtype = SS_DTYPE_BF16,
        .per_channel = 1,
    };
}

static int pattern_valid(ss_pattern p) {
    return ss_pattern_is_dense(p) || (p.z == 2 && (p.l == 0 || (p.l >= 4 && p.l % 2 == 0)));
}

/* Reasons no backend can run (wdtype, pattern): checked before any table. */
static const char *generic_reason(ss_dtype wdtype, ss_pattern p) {
    if (wdtype != SS_DTYPE_I8 && wdtype != SS_DTYPE_F8_E4M3 && wdtype != SS_DTYPE_BF16)
        return "weight dtype must be I8, F8_E4M3 or BF16";
    if (!pattern_valid(p))
        return "pattern must be dense or 2_L with even L >= 4 (or 2_inf)";
    if (wdtype == SS_DTYPE_BF16 && !ss_pattern_is_dense(p))
        return "BF16 weights run dense only";
    return NULL;
}

const char *ss_linear_supports(const ss_context *ctx, ss_backend b, ss_dtype wdtype,
                               ss_pattern pattern) {
    if ((unsigned)b >= SS_BACKEND_COUNT)
        return "unknown backend";
    if (!backends[b].ops)
        return backends[b].missing;
    const char *why = generic_reason(wdtype, pattern);
    if (why)
        return why;
    if (b != SS_BACKEND_CPU && (!ctx || ctx->device < 0))
        return "GPU backend needs a context with a CUDA device";
    return backends[b].ops->supports(ctx, wdtype, pattern);
}

/* The GEMM output dtype `gemm_out` resolves to, or SS_DTYPE_COUNT when illegal. */
static ss_dtype resolve_gemm_out(ss_dtype wdtype, ss_dtype g) {
    if (g == SS_DTYPE_COUNT)
        return wdtype == SS_DTYPE_I8 ? SS_DTYPE_I32 : SS_DTYPE_F32;
    if (g == SS_DTYPE_BF16 || (wdtype == SS_DTYPE_I8 ? g == SS_DTYPE_I32 : g == SS_DTYPE_F32))
        return g;
    return SS_DTYPE_COUNT;
}

/* Checks d and w for tensor `name`; on success *fixed is d with gemm_out resolved. */
static ss_status check_desc(const ss_linear_desc *d, const ss_linear_weights *w,
                            const char *name, ss_linear_desc *fixed) {
    if (d->n <= 0 || d->k <= 0)
        return ss_fail(SS_EINVAL, "tensor '%s': expected n, k > 0, found n=%lld k=%lld", name,
                       (long long)d->n, (long long)d->k);
    const char *why = generic_reason(d->wdtype, d->pattern);
    if (why)
        return ss_fail(SS_EINVAL, "tensor '%s': %s, found %s pattern {%d,%d}", name, why,
                       ss_dtype_name(d->wdtype), d->pattern.z, d->pattern.l);
    *fixed = *d;
    fixed->gemm_out = resolve_gemm_out(d->wdtype, d->gemm_out);
    if (fixed->gemm_out == SS_DTYPE_COUNT)
        return ss_fail(SS_EINVAL, "tensor '%s': GEMM output for %s weights must be %s or BF16, "
                       "found %s", name, ss_dtype_name(d->wdtype),
                       d->wdtype == SS_DTYPE_I8 ? "I32" : "F32", ss_dtype_name(d->gemm_out));
    if (d->out_dtype != SS_DTYPE_BF16 && d->out_dtype != SS_DTYPE_F32)
        return ss_fail(SS_EINVAL, "tensor '%s': output dtype must be BF16 or F32, found %s", name,
                       ss_dtype_name(d->out_dtype));
    if (d->per_channel != 0 && d->per_channel != 1)
        return ss_fail(SS_EINVAL, "tensor '%s': per_channel must be 0 or 1, found %d", name,
                       d->per_channel);
    /* K' < 2^31 keeps every index and the lift map in int32 on the GPU. */
    int64_t qc = ss_slid_k(d->pattern, d->k);
    if (qc >= ((int64_t)1 << 31) || d->n >= ((int64_t)1 << 31))
        return ss_fail(SS_EINVAL, "tensor '%s': expected n and K' < 2^31, found n=%lld K'=%lld",
                       name, (long long)d->n, (long long)qc);
    if (!w || !w->w)
        return ss_fail(SS_EINVAL, "tensor '%s': weight data is NULL", name);
    if (!w->w_scale && d->wdtype != SS_DTYPE_BF16)
        return ss_fail(SS_EINVAL, "tensor '%s': %s weights need a weight scale, found NULL", name,
                       ss_dtype_name(d->wdtype));
    return SS_OK;
}

/* Slid weights (n, K') must be 2:4-valid, or the sparse GEMM would be wrong. */
static ss_status check_slid_24(const ss_linear_desc *d, const void *w, const char *name) {
    int64_t qc = ss_slid_k(d->pattern, d->k), r = 0, c = 0;
    if (ss_check_24(d->wdtype, w, d->n, qc, &r, &c))
        return SS_OK;
    c -= c % 4;
    const char *row = (const char *)w + (size_t)r * (size_t)qc * ss_dtype_size(d->wdtype);
    int nz = 0;
    for (int64_t j = c; j < c + 4 && j < qc; j++)
        nz += !ss_elem_is_zero(d->wdtype, row, j);
    return ss_fail(SS_EINVAL,
                   "tensor '%s': row %lld columns %lld..%lld hold %d nonzeros, not 2:4-valid",
                   name, (long long)r, (long long)c, (long long)(c + 3), nz);
}

// --- create / destroy ----------------------------------------------------------------------

ss_status ss_linear_create(ss_context *ctx, ss_backend b, const ss_linear_desc *d,
                           const ss_linear_weights *w, ss_linear **out) {
    if (!out)
        return ss_fail(SS_EINVAL, "linear: out pointer is NULL");
    *out = NULL;
    if (!d)
        return ss_fail(SS_EINVAL, "linear: descriptor is NULL");
    const char *name = d->name ? d->name : "(unnamed)";
    if (!ctx)
        return ss_fail(SS_EINVAL, "tensor '%s': context is NULL", name);
    ss_linear_desc fixed;
    SS_TRY(check_desc(d, w, name, &fixed));
    const char *why = ss_linear_supports(ctx, b, d->wdtype, d->pattern);
    if (why) {
        char pat[32];
        return ss_fail(SS_EUNSUPPORTED, "tensor '%s': backend %s cannot run %s %s: %s", name,
                       ss_backend_name(b), ss_dtype_name(d->wdtype),
                       ss_pattern_format(d->pattern, pat, sizeof pat), why);
    }
    if (!ss_pattern_is_dense(d->pattern))
        SS_TRY(check_slid_24(d, w->w, name));

    const ss_backend_ops *ops = backends[b].ops;
    ss_linear *lin = NULL;
    fixed.name = name;
    SS_TRY(ops->create(ctx, &fixed, w, &lin));
    lin->ops = ops;
    lin->ctx = ctx;
    lin->desc = fixed;
    snprintf(lin->name, sizeof lin->name, "%s", name);
    lin->desc.name = lin->name;
    if (ops->gemm_fused)
        lin->desc.gemm_out = SS_DTYPE_BF16; /* the GEMM stage writes the dequantized output */
    lin->q_cols = ss_slid_k(fixed.pattern, fixed.k);
    lin->scratch_q = lin->scratch_d = NULL;
    lin->scratch_sa = NULL;
    lin->scratch_rows = 0;
    *out = lin;
    return SS_OK;
}

static void buf_free(ss_linear *lin, void *p) {
    if (!p)
        return;
    if (lin->ops->buf_free)
        lin->ops->buf_free(lin, p);
    else
        free(p);
}

static void *buf_alloc(ss_linear *lin, size_t bytes) {
    return lin->ops->buf_alloc ? lin->ops->buf_alloc(lin, bytes) : malloc(bytes);
}

static void scratch_free(ss_linear *lin) {
    buf_free(lin, lin->scratch_q);
    buf_free(lin, lin->scratch_sa);
    buf_free(lin, lin->scratch_d);
    lin->scratch_q = lin->scratch_d = NULL;
    lin->scratch_sa = NULL;
    lin->scratch_rows = 0;
}

void ss_linear_destroy(ss_linear *lin) {
    if (!lin)
        return;
    scratch_free(lin);
    lin->ops->destroy(lin);
}

const ss_linear_desc *ss_linear_get_desc(const ss_linear *lin) { return lin ? &lin->desc : NULL; }

int64_t ss_linear_q_cols(const ss_linear *lin) { return lin ? lin->q_cols : 0; }

int64_t ss_linear_m_pad(int64_t m) { return m <= 0 ? 0 : (m + 15) / 16 * 16; }

// --- stages ----------------------------------------------------------------------------------

static ss_status check_call(const ss_linear *lin, int64_t m, const void *in, const void *out,
                            const char *stage) {
    if (!lin)
        return ss_fail(SS_EINVAL, "linear %s: linear is NULL", stage);
    if (m < 0)
        return ss_fail(SS_EINVAL, "tensor '%s': %s: expected m >= 0, found %lld", lin->name,
                       stage, (long long)m);
    if (m > 0 && (!in || !out))
        return ss_fail(SS_EINVAL, "tensor '%s': %s: NULL buffer for %lld rows", lin->name, stage,
                       (long long)m);
    return SS_OK;
}

ss_status ss_linear_quant(ss_linear *lin, const uint16_t *x, int64_t m, void *q, float *sa) {
    SS_TRY(check_call(lin, m, x, q, "quant"));
    if (m > 0 && !sa)
        return ss_fail(SS_EINVAL, "tensor '%s': quant: scale buffer is NULL", lin->name);
    return m == 0 ? SS_OK : lin->ops->quant(lin, x, m, q, sa); /* m_pad(0) = 0 rows */
}

/* gamma and eps of the RMSNorm-fused calls. */
static ss_status check_norm(const ss_linear *lin, int64_t m, const uint16_t *gamma, float eps) {
    if (m > 0 && !gamma)
        return ss_fail(SS_EINVAL, "tensor '%s': rmsnorm: gamma (%lld BF16) is NULL", lin->name,
                       (long long)lin->desc.k);
    if (!(eps >= 0.0f) || eps > 3.4e38f)
        return ss_fail(SS_EINVAL, "tensor '%s': rmsnorm: expected a finite eps >= 0, found %g",
                       lin->name, (double)eps);
    return SS_OK;
}

ss_status ss_linear_quant_rmsnorm(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                  float eps, int64_t m, void *q, float *sa) {
    SS_TRY(check_call(lin, m, x, q, "quant_rmsnorm"));
    SS_TRY(check_norm(lin, m, gamma, eps));
    if (m > 0 && !sa)
        return ss_fail(SS_EINVAL, "tensor '%s': quant_rmsnorm: scale buffer is NULL", lin->name);
    return m == 0 ? SS_OK : lin->ops->quant_rmsnorm(lin, x, gamma, eps, m, q, sa);
}

ss_status ss_linear_gemm(ss_linear *lin, const void *q, int64_t m, void *d) {
    SS_TRY(check_call(lin, m, q, d, "gemm"));
    return m == 0 ? SS_OK : lin->ops->gemm(lin, q, m, d);
}

ss_status ss_linear_dequant(ss_linear *lin, const void *d, const float *sa, int64_t m, void *y) {
    SS_TRY(check_call(lin, m, d, y, "dequant"));
    if (m > 0 && !sa)
        return ss_fail(SS_EINVAL, "tensor '%s': dequant: scale buffer is NULL", lin->name);
    return m == 0 ? SS_OK : lin->ops->dequant(lin, d, sa, m, y);
}

/* Grows the generic forward's scratch to hold m_pad rows. */
static ss_status scratch_reserve(ss_linear *lin, int64_t mp) {
    if (mp <= lin->scratch_rows)
        return SS_OK;
    scratch_free(lin);
    size_t rows = (size_t)mp;
    lin->scratch_q = buf_alloc(lin, rows * (size_t)lin->q_cols * ss_dtype_size(lin->desc.wdtype));
    lin->scratch_sa = buf_alloc(lin, rows * sizeof(float));
    lin->scratch_d = buf_alloc(lin, rows * (size_t)lin->desc.n * ss_dtype_size(lin->desc.gemm_out));
    if (!lin->scratch_q || !lin->scratch_sa || !lin->scratch_d) {
        scratch_free(lin);
        return ss_fail(SS_ENOMEM, "tensor '%s': out of memory for forward scratch of %lld rows",
                       lin->name, (long long)mp);
    }
    lin->scratch_rows = mp;
    return SS_OK;
}

ss_status ss_linear_forward(ss_linear *lin, const uint16_t *x, int64_t m, void *y) {
    SS_TRY(check_call(lin, m, x, y, "forward"));
    if (m == 0)
        return SS_OK;
    if (lin->ops->forward)
        return lin->ops->forward(lin, x, m, y);
    SS_TRY(scratch_reserve(lin, ss_linear_m_pad(m)));
    SS_TRY(lin->ops->quant(lin, x, m, lin->scratch_q, lin->scratch_sa));
    SS_TRY(lin->ops->gemm(lin, lin->scratch_q, m, lin->scratch_d));
    return lin->ops->dequant(lin, lin->scratch_d, lin->scratch_sa, m, y);
}

ss_status ss_linear_forward_rmsnorm(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                    float eps, int64_t m, void *y) {
    SS_TRY(check_call(lin, m, x, y, "forward_rmsnorm"));
    SS_TRY(check_norm(lin, m, gamma, eps));
    if (m == 0)
        return SS_OK;
    if (lin->ops->forward_rmsnorm)
        return lin->ops->forward_rmsnorm(lin, x, gamma, eps, m, y);
    SS_TRY(scratch_reserve(lin, ss_linear_m_pad(m)));
    SS_TRY(lin->ops->quant_rmsnorm(lin, x, gamma, eps, m, lin->scratch_q, lin->scratch_sa));
    SS_TRY(lin->ops->gemm(lin, lin->scratch_q, m, lin->scratch_d));
    return lin->ops->dequant(lin, lin->scratch_d, lin->scratch_sa, m, y);
}

// --- the GLU- and residual-fused dequant ------------------------------------------------------

/* What the fused epilogues need of lin: BF16 output, an even n for the GLU. */
static ss_status check_fused(const ss_linear *lin, int glu, const char *stage) {
    if (lin->desc.out_dtype != SS_DTYPE_BF16)
        return ss_fail(SS_EUNSUPPORTED, "tensor '%s': %s: needs BF16 output, found out_dtype %s",
                       lin->name, stage, ss_dtype_name(lin->desc.out_dtype));
    if (glu && lin->desc.n % 2 != 0)
        return ss_fail(SS_EINVAL, "tensor '%s': %s: expected an even n (gate | up), found n=%lld",
                       lin->name, stage, (long long)lin->desc.n);
    if (glu ? !lin->ops->dequant_glu : !lin->ops->dequant_residual)
        return ss_fail(SS_EUNSUPPORTED, "tensor '%s': %s: backend %s has no fused epilogue",
                       lin->name, stage, lin->ops->name);
    return SS_OK;
}

ss_status ss_linear_dequant_glu(ss_linear *lin, const void *d, const float *sa, int64_t m,
                                int relu2, uint16_t *act) {
    SS_TRY(check_call(lin, m, d, act, "dequant_glu"));
    SS_TRY(check_fused(lin, 1, "dequant_glu"));
    if (m > 0 && !sa)
        return ss_fail(SS_EINVAL, "tensor '%s': dequant_glu: scale buffer is NULL", lin->name);
    return m == 0 ? SS_OK : lin->ops->dequant_glu(lin, d, sa, m, relu2 != 0, act);
}

ss_status ss_linear_dequant_residual(ss_linear *lin, const void *d, const float *sa, int64_t m,
                                     uint16_t *resid) {
    SS_TRY(check_call(lin, m, d, resid, "dequant_residual"));
    SS_TRY(check_fused(lin, 0, "dequant_residual"));
    if (m > 0 && !sa)
        return ss_fail(SS_EINVAL, "tensor '%s': dequant_residual: scale buffer is NULL", lin->name);
    return m == 0 ? SS_OK : lin->ops->dequant_residual(lin, d, sa, m, resid);
}

// --- the GEMM with its epilogue op ---------------------------------------------------------------

int ss_linear_gemm_op_fused(ss_linear *lin, int64_t m, ss_linear_op op) {
    return lin && m > 0 && lin->ops->gemm_op_fused && lin->ops->gemm_op_fused(lin, m, (int)op);
}

ss_status ss_linear_gemm_op(ss_linear *lin, const void *q, const float *sa, int64_t m,
                            ss_linear_op op, void *d, uint16_t *out) {
    SS_TRY(check_call(lin, m, q, out, "gemm_op"));
    if ((unsigned)op > SS_LINEAR_OP_RESIDUAL)
        return ss_fail(SS_EINVAL, "tensor '%s': gemm_op: unknown op %d", lin->name, (int)op);
    int glu = op == SS_LINEAR_OP_GLU_RELU2 || op == SS_LINEAR_OP_GLU_SILU;
    if (op != SS_LINEAR_OP_PLAIN)
        SS_TRY(check_fused(lin, glu, "gemm_op"));
    if (m > 0 && (!sa || !d))
        return ss_fail(SS_EINVAL, "tensor '%s': gemm_op: scale or scratch buffer is NULL", lin->name);
    if (m == 0)
        return SS_OK;
    if (ss_linear_gemm_op_fused(lin, m, op))
        return lin->ops->gemm_op(lin, q, sa, m, (int)op, out);
    /* the stages; the GEMM over all m_pad rows (the quant stage zeroed the
     * padding), so no backend trims its output into d */
    SS_TRY(lin->ops->gemm(lin, q, ss_linear_m_pad(m), d));
    if (glu)
        return lin->ops->dequant_glu(lin, d, sa, m, op == SS_LINEAR_OP_GLU_RELU2, out);
    if (op == SS_LINEAR_OP_RESIDUAL)
        return lin->ops->dequant_residual(lin, d, sa, m, out);
    return lin->ops->dequant(lin, d, sa, m, out);
}

/* quant (+ norm) -> GEMM into the generic forward's scratch. */
static ss_status scratch_quant_gemm(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                    float eps, int64_t m) {
    SS_TRY(scratch_reserve(lin, ss_linear_m_pad(m)));
    if (gamma)
        SS_TRY(lin->ops->quant_rmsnorm(lin, x, gamma, eps, m, lin->scratch_q, lin->scratch_sa));
    else
        SS_TRY(lin->ops->quant(lin, x, m, lin->scratch_q, lin->scratch_sa));
    return lin->ops->gemm(lin, lin->scratch_q, m, lin->scratch_d);
}

ss_status ss_linear_forward_glu(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                float eps, int64_t m, int relu2, uint16_t *act) {
    SS_TRY(check_call(lin, m, x, act, "forward_glu"));
    SS_TRY(check_fused(lin, 1, "forward_glu"));
    if (gamma)
        SS_TRY(check_norm(lin, m, gamma, eps));
    if (m == 0)
        return SS_OK;
    relu2 = relu2 != 0;
    if (lin->ops->forward_glu)
        return lin->ops->forward_glu(lin, x, gamma, eps, m, relu2, act);
    SS_TRY(scratch_quant_gemm(lin, x, gamma, eps, m));
    return lin->ops->dequant_glu(lin, lin->scratch_d, lin->scratch_sa, m, relu2, act);
}

ss_status ss_linear_forward_residual(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                     float eps, int64_t m, uint16_t *resid) {
    SS_TRY(check_call(lin, m, x, resid, "forward_residual"));
    SS_TRY(check_fused(lin, 0, "forward_residual"));
    if (gamma)
        SS_TRY(check_norm(lin, m, gamma, eps));
    if (m == 0)
        return SS_OK;
    if (lin->ops->forward_residual)
        return lin->ops->forward_residual(lin, x, gamma, eps, m, resid);
    SS_TRY(scratch_quant_gemm(lin, x, gamma, eps, m));
    return lin->ops->dequant_residual(lin, lin->scratch_d, lin->scratch_sa, m, resid);
}

// --- the residual add of one projection fused with the norm + quant of the next ------------

ss_status ss_linear_residual_rmsnorm_quant(ss_linear *a, const void *d, const float *sa, int64_t m,
                                           uint16_t *resid, ss_linear *b, const uint16_t *gamma,
                                           float eps, void *q, float *sq) {
    SS_TRY(check_call(a, m, d, resid, "residual_rmsnorm_quant"));
    SS_TRY(check_call(b, m, resid, q, "residual_rmsnorm_quant"));
    if (a->ctx != b->ctx)
        return ss_fail(SS_EINVAL, "tensors '%s' -> '%s': residual_rmsnorm_quant: expected one "
                       "context, found two", a->name, b->name);
    if (a->desc.n != b->desc.k)
        return ss_fail(SS_EINVAL, "tensors '%s' -> '%s': residual_rmsnorm_quant: expected n of "
                       "the first == k of the second, found %lld and %lld", a->name, b->name,
                       (long long)a->desc.n, (long long)b->desc.k);
    SS_TRY(check_fused(a, 0, "residual_rmsnorm_quant"));
    SS_TRY(check_norm(b, m, gamma, eps));
    if (m > 0 && (!sa || !sq))
        return ss_fail(SS_EINVAL, "tensors '%s' -> '%s': residual_rmsnorm_quant: %s scale buffer "
                       "is NULL", a->name, b->name, !sa ? "input" : "output");
    if (m == 0)
        return SS_OK;
    if (a->ops->residual_rmsnorm_quant && a->ops->residual_rmsnorm_quant == b->ops->residual_rmsnorm_quant)
        return a->ops->residual_rmsnorm_quant(a, d, sa, m, resid, b, gamma, eps, q, sq);
    SS_TRY(a->ops->dequant_residual(a, d, sa, m, resid));
    return b->ops->quant_rmsnorm(b, resid, gamma, eps, m, q, sq);
}
