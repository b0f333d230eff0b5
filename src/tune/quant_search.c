/* The launch-configuration search of our quant(+slide) kernel (its launch
 * configuration per K is tuned like a GEMM algorithm): the row-in-registers kernel with
 * vecs 1, 2, 4, 8 sixteen-byte loads per thread, each plain and (cc >= 9.0)
 * as a programmatic dependent launch, plus the automatic choice. Every
 * candidate's q and sa are compared bit-exactly with the CPU quantizer (the
 * fixture's CPU twin) on the first and last 16 tiled rows before it may win;
 * timing is the fixture's loop (warm-up, L2 flush, median). Within 2.5% of
 * the fastest the automatic choice wins: a table entry should only change
 * what runs for a measurable reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tune/fixture.h"
#ifdef SS_HAVE_CUDA
#include "linear/cuda_state.h"
#include "linear/kernels/kernels.h"
#endif

#define SS_QUANT_NEAR 1.025
#define SS_QUANT_CANDS 10 /* auto, auto+pdl, vecs {1,2,4,8} x pdl {0,1} */

void ss_quant_launch_desc(ss_quant_launch l, char *buf, size_t n) {
    if (l.vecs == 0)
        snprintf(buf, n, "auto%s", l.pdl ? " pdl" : "");
    else
        snprintf(buf, n, "vec%d%s", l.vecs, l.pdl ? " pdl" : "");
}

#ifndef SS_HAVE_CUDA

ss_status ss_fixture_quant_launch(ss_fixture *f, int64_t m) {
    (void)m;
    return ss_fail(SS_EUNSUPPORTED, "fixture '%s': kernel launch configurations need a CUDA build",
                   f->desc.name);
}

ss_status ss_tune_quant_search(ss_fixture *f, int64_t m, int warmup, int repeat, int no_flush,
                               ss_tune_progress_fn progress, void *user, ss_tune_progress *pg,
                               ss_tune_kernel_entry *e) {
    (void)warmup, (void)repeat, (void)no_flush, (void)progress, (void)user, (void)pg, (void)e;
    return ss_fixture_quant_launch(f, m);
}

#else

ss_status ss_fixture_quant_launch(ss_fixture *f, int64_t m) {
    if (!f->on_device || !f->lq || !f->lsa)
        return ss_fail(SS_EINVAL, "fixture '%s': quant launch needs a GPU fixture with its buffers",
                       f->desc.name);
    /* both GPU backends embed ss_gpu_linear first: its geometry is the one the
     * layer's own quant stage launches with */
    const ss_gpu_linear *g = (const ss_gpu_linear *)f->lin;
    cudaStream_t s = ss_cuda_stream(f->ctx);
    int64_t mp = ss_linear_m_pad(m);
    ss_quant_launch l = f->launch;
    cudaError_t e = l.vecs == 0 && !l.pdl
                        ? ss_kernel_quant(g->qdt, f->x, m, mp, g->geo, f->lq, f->lsa, 0, s)
                        : ss_kernel_quant_vecs(g->qdt, f->x, m, mp, g->geo, f->lq, f->lsa, l.vecs,
                                               l.pdl, s);
    if (e == cudaSuccess)
        return SS_OK;
    (void)cudaGetLastError();
    char d[32];
    ss_quant_launch_desc(l, d, sizeof d);
    return ss_fail(e == cudaErrorInvalidValue ? SS_EUNSUPPORTED : SS_ECUDA,
                   "tensor '%s': quant kernel %s, K %lld -> %lld: %s", f->desc.name, d,
                   (long long)f->k, (long long)f->kq, cudaGetErrorString(e));
}

/* The CPU quantizer's answer for the 16-row tile (every block of 16 rows of
 * the fixture's activations is that tile). */
typedef struct {
    uint8_t *q;  // (16, kq) of wdtype
    float *sa;   // (16)
    size_t row_bytes;
} quant_ref;

static ss_status ref_make(ss_fixture *f, quant_ref *r) {
    memset(r, 0, sizeof *r);
    if (ss_linear_q_cols(f->ref) != f->kq)
        return ss_fail(SS_EINVAL, "fixture '%s': CPU twin has %lld q columns, GPU layer %lld",
                       f->desc.name, (long long)ss_linear_q_cols(f->ref), (long long)f->kq);
    r->row_bytes = (size_t)f->kq * ss_dtype_size(f->desc.wdtype);
    uint16_t *x = malloc((size_t)SS_FIX_ROWS * (size_t)f->k * 2);
    r->q = malloc((size_t)SS_FIX_ROWS * r->row_bytes);
    r->sa = malloc(SS_FIX_ROWS * sizeof *r->sa);
    ss_status s = x && r->q && r->sa ? SS_OK : ss_fail(SS_ENOMEM, "fixture: out of memory");
    if (s == SS_OK && cudaMemcpy(x, f->x, (size_t)SS_FIX_ROWS * (size_t)f->k * 2,
                                 cudaMemcpyDeviceToHost) != cudaSuccess) {
        (void)cudaGetLastError();
        s = ss_fail(SS_ECUDA, "fixture '%s': reading the activation tile back", f->desc.name);
    }
    if (s == SS_OK)
        s = ss_linear_quant(f->ref, x, SS_FIX_ROWS, r->q, r->sa);
    free(x);
    if (s != SS_OK) {
        free(r->q);
        free(r->sa);
        memset(r, 0, sizeof *r);
    }
    return s;
}

static void ref_free(quant_ref *r) {
    free(r->q);
    free(r->sa);
}

/* Rows [0, 16) and [mp - 16, mp) of lq / lsa against the reference, bit for
 * bit (the kernels spell out every float op as the CPU does). */
static ss_status ref_check(ss_fixture *f, const quant_ref *r, int64_t mp, int *ok, char *why,
                           size_t wn) {
    *ok = 1;
    size_t qb = (size_t)SS_FIX_ROWS * r->row_bytes;
    uint8_t *q = malloc(qb);
    float sa[SS_FIX_ROWS];
    if (!q)
        return ss_fail(SS_ENOMEM, "fixture: out of memory");
    ss_status s = SS_OK;
    for (int pass = 0; pass < 2 && *ok && s == SS_OK; pass++) {
        int64_t row0 = pass ? mp - SS_FIX_ROWS : 0;
        if (cudaMemcpy(q, (uint8_t *)f->lq + (size_t)row0 * r->row_bytes, qb,
                       cudaMemcpyDeviceToHost) != cudaSuccess ||
            cudaMemcpy(sa, f->lsa + row0, sizeof sa, cudaMemcpyDeviceToHost) != cudaSuccess) {
            (void)cudaGetLastError();
            s = ss_fail(SS_ECUDA, "fixture '%s': reading quant output back", f->desc.name);
            break;
        }
        for (int i = 0; i < SS_FIX_ROWS && *ok; i++) {
            if (memcmp(&sa[i], &r->sa[i], sizeof sa[i]) != 0) {
                *ok = 0;
                snprintf(why, wn, "row %lld: scale %.9g, CPU reference %.9g", (long long)(row0 + i),
                         sa[i], r->sa[i]);
            }
        }
        for (size_t i = 0; i < qb && *ok; i++)
            if (q[i] != r->q[i]) {
                *ok = 0;
                snprintf(why, wn, "row %lld byte %zu: 0x%02x, CPU reference 0x%02x",
                         (long long)(row0 + (int64_t)(i / r->row_bytes)), i % r->row_bytes, q[i],
                         r->q[i]);
            }
    }
    free(q);
    return s;
}

typedef struct {
    ss_quant_launch l;
    double us;
} qresult;

static int by_us(const void *a, const void *b) {
    double x = ((const qresult *)a)->us, y = ((const qresult *)b)->us;
    return (x > y) - (x < y);
}

/* Validates then times f->launch; *us < 0 when the kernel does not take it
 * or its output is wrong (`why` says which). */
static ss_status try_launch(ss_fixture *f, const quant_ref *r, int64_t mp, int warmup, int repeat,
                            int no_flush, double *us, char *why, size_t wn) {
    *us = -1;
    size_t qb = (size_t)mp * r->row_bytes;
    /* poison: a launch that writes nothing must not pass on an earlier one's output */
    if (cudaMemset(f->lq, 0xA5, qb) != cudaSuccess ||
        cudaMemset(f->lsa, 0xA5, (size_t)mp * sizeof(float)) != cudaSuccess) {
        (void)cudaGetLastError();
        return ss_fail(SS_ECUDA, "fixture '%s': clearing quant buffers", f->desc.name);
    }
    ss_status s = ss_fixture_quant_launch(f, mp);
    if (s == SS_OK && cudaStreamSynchronize(ss_cuda_stream(f->ctx)) != cudaSuccess) {
        (void)cudaGetLastError();
        s = ss_fail(SS_ECUDA, "fixture '%s': quant kernel failed", f->desc.name);
    }
    int ok = 0;
    if (s == SS_OK)
        s = ref_check(f, r, mp, &ok, why, wn);
    if (s == SS_OK && !ok)
        return SS_OK;
    if (s == SS_OK)
        s = ss_fixture_time(f, SS_FIX_QUANT_LAUNCH, mp, warmup, repeat, no_flush, us);
    if (s == SS_EUNSUPPORTED || s == SS_ECUDA) { /* not a configuration for this shape */
        snprintf(why, wn, "%s", ss_last_error());
        ss_clear_error();
        *us = -1;
        return SS_OK;
    }
    return s;
}

/* Buffers of the launch search, allocated once per fixture (m_max rows). */
static ss_status launch_buffers(ss_fixture *f) {
    if (f->lq)
        return SS_OK;
    size_t qb = (size_t)f->m_max * (size_t)f->kq * ss_dtype_size(f->desc.wdtype);
    if (cudaMalloc(&f->lq, qb) != cudaSuccess ||
        cudaMalloc((void **)&f->lsa, (size_t)f->m_max * sizeof(float)) != cudaSuccess) {
        (void)cudaGetLastError();
        return ss_fail(SS_ENOMEM, "fixture '%s': out of device memory for %zu bytes of quant "
                       "output", f->desc.name, qb);
    }
    return SS_OK;
}

static int candidates(const ss_fixture *f, ss_quant_launch *c) {
    int pdl = ss_cuda(f->ctx)->cc_major >= 9, n = 0;
    c[n++] = (ss_quant_launch){0, 0};
    if (pdl)
        c[n++] = (ss_quant_launch){0, 1};
    for (int v = 1; v <= 8; v *= 2)
        for (int p = 0; p <= pdl; p++)
            c[n++] = (ss_quant_launch){v, p};
    return n;
}

static void fill_entry(const ss_fixture *f, int64_t mp, qresult *r, int nr, ss_tune_kernel_entry *e) {
    qsort(r, (size_t)nr, sizeof *r, by_us);
    int best = 0;
    for (int i = 0; i < nr; i++)
        if (r[i].l.vecs == 0 && !r[i].l.pdl && r[i].us <= r[0].us * SS_QUANT_NEAR)
            best = i;
    memset(e, 0, sizeof *e);
    snprintf(e->kernel, sizeof e->kernel, "quant");
    e->qdt = f->desc.wdtype;
    e->k = f->k;
    e->k_out = f->kq;
    e->m = mp;
    e->best = r[best].l;
    e->top[0].launch = r[best].l;
    e->top[0].us = r[best].us;
    e->n_top = 1;
    for (int i = 0; i < nr && e->n_top < SS_TUNE_TOP; i++)
        if (i != best) {
            e->top[e->n_top].launch = r[i].l;
            e->top[e->n_top++].us = r[i].us;
        }
}

ss_status ss_tune_quant_search(ss_fixture *f, int64_t m, int warmup, int repeat, int no_flush,
                               ss_tune_progress_fn progress, void *user, ss_tune_progress *pg,
                               ss_tune_kernel_entry *e) {
    if (!f->on_device)
        return ss_fail(SS_EUNSUPPORTED, "fixture '%s': kernel launch configurations are a GPU "
                       "matter", f->desc.name);
    int64_t mp = ss_linear_m_pad(m);
    SS_TRY(launch_buffers(f));
    quant_ref ref;
    SS_TRY(ref_make(f, &ref));
    ss_quant_launch c[SS_QUANT_CANDS];
    qresult r[SS_QUANT_CANDS];
    int nc = candidates(f, c), nr = 0;
    char why[256] = "", desc[32];
    ss_status s = SS_OK;
    for (int i = 0; i < nc && s == SS_OK; i++) {
        ss_quant_launch_desc(c[i], desc, sizeof desc);
        if (progress && pg) {
            pg->candidate = desc;
            progress(user, pg);
        }
        f->launch = c[i];
        double us;
        s = try_launch(f, &ref, mp, warmup, repeat, no_flush, &us, why, sizeof why);
        if (s == SS_OK && us >= 0)
            r[nr++] = (qresult){c[i], us};
    }
    f->launch = (ss_quant_launch){0, 0};
    ref_free(&ref);
    if (s == SS_OK && nr == 0)
        s = ss_fail(SS_EUNSUPPORTED, "tensor '%s': quant K %lld -> %lld M %lld: no launch "
                    "configuration ran and matched the CPU reference (last: %s)", f->desc.name,
                    (long long)f->k, (long long)f->kq, (long long)mp, why);
    if (s == SS_OK)
        fill_entry(f, mp, r, nr, e);
    return s;
}

#endif

/* "vec2 pdl 5.10 us (auto 5.40 us)" for the tuner's log line. */
void ss_tune_quant_describe(const ss_tune_kernel_entry *e, char *buf, size_t n) {
    char b[32], o[32];
    ss_quant_launch_desc(e->best, b, sizeof b);
    int w = snprintf(buf, n, "%s %.2f us", b, e->top[0].us);
    for (int i = 1; i < e->n_top && w >= 0 && (size_t)w < n; i++) {
        ss_quant_launch_desc(e->top[i].launch, o, sizeof o);
        w += snprintf(buf + w, n - (size_t)w, "%s%s %.2f us%s", i == 1 ? " (then " : ", ", o,
                      e->top[i].us, i + 1 == e->n_top ? ")" : "");
    }
}
