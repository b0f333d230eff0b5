/* The CPU reference backend: exact, host memory, OpenMP (SPEC §4; the
 * arithmetic of every stage is spelled out in slidesparse/linear.h).
 *
 * At create the weights are widened once into the layout the GEMM kernels
 * want, padded with zeros to q_cols columns:
 *   I8       -> int8   (n, q_cols)   as given
 *   F8_E4M3  -> float  (n, q_cols)   exact decode
 *   BF16     -> float  (n, q_cols)   exact decode
 * Activations are widened the same way on every GEMM call.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype_inline.h"
#include "core/error.h"
#include "linear/backend.h"
#include "cpu_gemm.h"
#include "slidesparse/quant.h"

typedef struct {
    struct ss_linear base;
    void *w;        // (n, q_cols) int8 for I8, float for F8_E4M3 / BF16
    float *w_scale; // (n) or (1); 1.0 for BF16 weights
    float *bias;    // (n) or NULL: the BF16 bias widened once
} cpu_linear;

static const char *cpu_supports(const ss_context *ctx, ss_dtype wdtype, ss_pattern p) {
    return NULL; /* linear.c already rejected what no backend can do */
}

// --- create / destroy ----------------------------------------------------------------

static void cpu_destroy(ss_linear *lin) {
    cpu_linear *c = (cpu_linear *)lin;
    if (!c)
        return;
    free(c->w);
    free(c->w_scale);
    free(c->bias);
    free(c);
}

/* Row n of the weight as given (k_in columns) widened into dst (q_cols columns). */
static void widen_weight_row(ss_dtype wdt, const void *src, int64_t k_in, int64_t q_cols,
                             void *dst) {
    if (wdt == SS_DTYPE_I8) {
        memcpy(dst, src, (size_t)k_in);
        memset((int8_t *)dst + k_in, 0, (size_t)(q_cols - k_in));
        return;
    }
    float *d = dst;
    for (int64_t j = 0; j < k_in; j++)
        d[j] = wdt == SS_DTYPE_BF16 ? ss_bf16_to_f32(((const uint16_t *)src)[j])
                                    : ss_e4m3_to_f32(((const uint8_t *)src)[j]);
    for (int64_t j = k_in; j < q_cols; j++)
        d[j] = 0.0f;
}

static ss_status cpu_create(ss_context *ctx, const ss_linear_desc *d, const ss_linear_weights *w,
                            ss_linear **out) {
    int64_t q_cols = ss_slid_k(d->pattern, d->k);
    /* Slid weights are already (n, K'); dense ones (n, k) are padded to ceil32(k). */
    int64_t k_in = ss_pattern_is_dense(d->pattern) ? d->k : q_cols;
    size_t welem = d->wdtype == SS_DTYPE_I8 ? 1 : sizeof(float);
    size_t in_elem = ss_dtype_size(d->wdtype);
    int64_t ns = d->per_channel ? d->n : 1;

    cpu_linear *c = calloc(1, sizeof *c);
    if (!c)
        return ss_fail(SS_ENOMEM, "tensor '%s': out of memory for the CPU linear", d->name);
    c->w = malloc((size_t)d->n * (size_t)q_cols * welem);
    c->w_scale = malloc((size_t)ns * sizeof(float));
    c->bias = w->bias ? malloc((size_t)d->n * sizeof(float)) : NULL;
    if (!c->w || !c->w_scale || (w->bias && !c->bias))
        goto nomem;

    for (int64_t r = 0; r < d->n; r++)
        widen_weight_row(d->wdtype, (const char *)w->w + (size_t)r * (size_t)k_in * in_elem, k_in,
                         q_cols, (char *)c->w + (size_t)r * (size_t)q_cols * welem);
    for (int64_t r = 0; r < ns; r++)
        c->w_scale[r] = w->w_scale ? w->w_scale[r] : 1.0f;
    for (int64_t r = 0; w->bias && r < d->n; r++)
        c->bias[r] = ss_bf16_to_f32(w->bias[r]);
    *out = &c->base;
    return SS_OK;

nomem:
    cpu_destroy(&c->base);
    return ss_fail(SS_ENOMEM, "tensor '%s': out of memory for %lld x %lld CPU weights", d->name,
                   (long long)d->n, (long long)q_cols);
}

// --- stages ----------------------------------------------------------------------------

static ss_status cpu_quant(ss_linear *lin, const uint16_t *x, int64_t m, void *q, float *sa) {
    const ss_linear_desc *d = &lin->desc;
    int64_t qc = lin->q_cols, mp = ss_linear_m_pad(m);
    size_t es = ss_dtype_size(d->wdtype);
    if (d->wdtype == SS_DTYPE_BF16) {
        /* BF16 weights take the activations as they are: copy, zero-pad columns. */
        for (int64_t r = 0; r < m; r++) {
            uint16_t *qr = (uint16_t *)q + r * qc;
            memcpy(qr, x + r * d->k, (size_t)d->k * sizeof(uint16_t));
            memset(qr + d->k, 0, (size_t)(qc - d->k) * sizeof(uint16_t));
            sa[r] = 1.0f;
        }
    } else if (m > 0) {
        SS_TRY(ss_quant_act_ref(d->wdtype, x, m, d->k, d->pattern, qc, q, sa));
    }
    memset((char *)q + (size_t)m * (size_t)qc * es, 0, (size_t)(mp - m) * (size_t)qc * es);
    for (int64_t r = m; r < mp; r++)
        sa[r] = 0.0f;
    return SS_OK;
}

/* The norm exactly as the engine's (ss_rmsnorm_ref), then the ordinary
 * quant stage on its BF16 output. */
static ss_status cpu_quant_rmsnorm(ss_linear *lin, const uint16_t *x, const uint16_t *gamma,
                                   float eps, int64_t m, void *q, float *sa) {
    int64_t k = lin->desc.k;
    uint16_t *h = malloc((size_t)m * (size_t)k * sizeof *h); // (m, k)
    if (!h)
        return ss_fail(SS_ENOMEM, "tensor '%s': out of memory for %lld x %lld normed rows",
                       lin->name, (long long)m, (long long)k);
    ss_rmsnorm_ref(x, gamma, m, k, eps, h);
    ss_status s = cpu_quant(lin, h, m, q, sa);
    free(h);
    return s;
}

static ss_status cpu_gemm(ss_linear *lin, const void *q, int64_t m, void *dout) {
    cpu_linear *c = (cpu_linear *)lin;
    const ss_linear_desc *d = &lin->desc;
    int64_t qc = lin->q_cols;
    size_t count = (size_t)m * (size_t)qc;
    void *a = malloc(count * (d->wdtype == SS_DTYPE_I8 ? sizeof(int16_t) : sizeof(float)));
    if (!a && count)
        return ss_fail(SS_ENOMEM, "tensor '%s': out of memory for %lld x %lld activations",
                       d->name, (long long)m, (long long)qc);
    if (d->wdtype == SS_DTYPE_I8) {
        const int8_t *s = q;
        int16_t *t = a;
        for (size_t i = 0; i < count; i++)
            t[i] = s[i];
        ss_cpu_gemm_i8(a, c->w, m, d->n, qc, d->gemm_out, dout);
    } else {
        float *t = a;
        for (size_t i = 0; i < count; i++)
            t[i] = d->wdtype == SS_DTYPE_BF16 ? ss_bf16_to_f32(((const uint16_t *)q)[i])
                                              : ss_e4m3_to_f32(((const uint8_t *)q)[i]);
        ss_cpu_gemm_f32(a, c->w, m, d->n, qc, d->gemm_out, dout);
    }
    free(a);
    return SS_OK;
}

/* Element i of a GEMM output as float: the first rounding of the epilogue. */
static float gemm_value(ss_dtype t, const void *d, size_t i) {
    switch (t) {
    case SS_DTYPE_I32: return (float)((const int32_t *)d)[i];
    case SS_DTYPE_BF16: return ss_bf16_to_f32(((const uint16_t *)d)[i]);
    default: return ((const float *)d)[i];
    }
}

/* Element (r, j) of the layer output before its final rounding: three
 * separately rounded float ops (linear.h); separate statements and
 * -ffp-contract=off keep the compiler from fusing them. */
static float dequant_value(const cpu_linear *c, const void *dd, const float *sa, int64_t r,
                           int64_t j) {
    const ss_linear_desc *d = &c->base.desc;
    float t = gemm_value(d->gemm_out, dd, (size_t)r * (size_t)d->n + (size_t)j) * sa[r];
    t = t * c->w_scale[d->per_channel ? j : 0];
    if (c->bias)
        t = t + c->bias[j];
    return t;
}

/* bf16(dequant) as float: the value the plain forward hands on. */
static float dequant_bf16(const cpu_linear *c, const void *dd, const float *sa, int64_t r,
                          int64_t j) {
    return ss_bf16_to_f32_inline(ss_f32_to_bf16_inline(dequant_value(c, dd, sa, r, j)));
}

static ss_status cpu_dequant(ss_linear *lin, const void *dd, const float *sa, int64_t m,
                             void *y) {
    const cpu_linear *c = (const cpu_linear *)lin;
    int64_t n = lin->desc.n;
    int f32 = lin->desc.out_dtype == SS_DTYPE_F32;
#pragma omp parallel for schedule(static) if (m * n >= (1 << 16))
    for (int64_t r = 0; r < m; r++)
        for (int64_t j = 0; j < n; j++) {
            size_t i = (size_t)r * (size_t)n + (size_t)j;
            float t = dequant_value(c, dd, sa, r, j);
            if (f32)
                ((float *)y)[i] = t;
            else
                ((uint16_t *)y)[i] = ss_f32_to_bf16(t);
        }
    return SS_OK;
}

/* The engine's ss_glu_cpu (src/engine/activation.c; the engine sits above this
 * layer, so it is spelled out again and the tests hold the two equal bit for
 * bit) on the bf16 outputs: gate = columns [0, n/2), up = [n/2, n). */
static ss_status cpu_dequant_glu(ss_linear *lin, const void *dd, const float *sa, int64_t m,
                                 int relu2, uint16_t *act) {
    const cpu_linear *c = (const cpu_linear *)lin;
    int64_t inter = lin->desc.n / 2;
#pragma omp parallel for schedule(static) if (m * inter >= (1 << 16))
    for (int64_t r = 0; r < m; r++)
        for (int64_t j = 0; j < inter; j++) {
            float gv = dequant_bf16(c, dd, sa, r, j);
            float u = dequant_bf16(c, dd, sa, r, inter + j);
            float a = relu2 ? (gv > 0.0f ? gv * gv : 0.0f) : gv / (1.0f + expf(-gv));
            act[r * inter + j] = ss_f32_to_bf16_inline(a * u);
        }
    return SS_OK;
}

/* The engine's ss_residual_add_cpu (src/engine/norm.c) on the bf16 outputs. */
static ss_status cpu_dequant_residual(ss_linear *lin, const void *dd, const float *sa, int64_t m,
                                      uint16_t *resid) {
    const cpu_linear *c = (const cpu_linear *)lin;
    int64_t n = lin->desc.n;
#pragma omp parallel for schedule(static) if (m * n >= (1 << 16))
    for (int64_t r = 0; r < m; r++)
        for (int64_t j = 0; j < n; j++) {
            uint16_t *x = resid + r * n + j;
            *x = ss_f32_to_bf16_inline(ss_bf16_to_f32_inline(*x) + dequant_bf16(c, dd, sa, r, j));
        }
    return SS_OK;
}

const ss_backend_ops ss_backend_cpu = {
    .name = "cpu",
    .supports = cpu_supports,
    .create = cpu_create,
    .quant = cpu_quant,
    .gemm = cpu_gemm,
    .dequant = cpu_dequant,
    .forward = NULL, /* the generic quant -> gemm -> dequant in linear.c */
    .destroy = cpu_destroy,
    .quant_rmsnorm = cpu_quant_rmsnorm,
    .forward_rmsnorm = NULL, /* the generic one in linear.c */
    .dequant_glu = cpu_dequant_glu,
    .dequant_residual = cpu_dequant_residual,
    .forward_glu = NULL,      /* the generic ones in linear.c */
    .forward_residual = NULL,
};
