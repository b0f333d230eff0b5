/* A linear layer under test with synthetic weights, its CPU twin, buffers,
 * validation and the timing loop (see fixture.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "slidesparse/sparse.h"
#include "tune/fixture.h"
#ifdef SS_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

// --- memory in the backend's space -------------------------------------------------------

static inline ss_status cuda_check(int err, const char *what) {
#ifdef SS_HAVE_CUDA
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return ss_fail(err == cudaErrorMemoryAllocation ? SS_ENOMEM : SS_ECUDA, "fixture: %s: %s",
                       what, cudaGetErrorString((cudaError_t)err));
    }
#endif
    return SS_OK;
}

static ss_status buf_alloc(const ss_fixture *f, void **p, size_t bytes, const char *what) {
    *p = NULL;
#ifdef SS_HAVE_CUDA
    if (f->on_device) {
        SS_TRY(cuda_check(cudaMalloc(p, bytes ? bytes : 1), what));
        return cuda_check(cudaMemset(*p, 0, bytes), what);
    }
#endif
    *p = calloc(1, bytes ? bytes : 1);
    return *p ? SS_OK : ss_fail(SS_ENOMEM, "fixture: %s: out of memory for %zu bytes", what, bytes);
}

static void buf_free(const ss_fixture *f, void *p) {
    if (!p)
        return;
#ifdef SS_HAVE_CUDA
    if (f->on_device) {
        cudaFree(p);
        return;
    }
#endif
    free(p);
}

static ss_status copy(const ss_fixture *f, void *dst, const void *src, size_t bytes, int to_dev) {
#ifdef SS_HAVE_CUDA
    if (f->on_device)
        return cuda_check(cudaMemcpy(dst, src, bytes,
                                     to_dev ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost),
                          "copy");
#endif
    memcpy(dst, src, bytes);
    return SS_OK;
}

/* Fills rows [0, rows) of dst (row_bytes each) with the 16-row tile, doubling
 * the copied block so a large buffer takes log2(rows/16) copies. */
static ss_status tile_rows(const ss_fixture *f, void *dst, const void *tile, size_t row_bytes,
                           int64_t rows) {
    SS_TRY(copy(f, dst, tile, row_bytes * SS_FIX_ROWS, 1));
    for (int64_t done = SS_FIX_ROWS; done < rows;) {
        int64_t c = done < rows - done ? done : rows - done;
        char *to = (char *)dst + (size_t)done * row_bytes;
#ifdef SS_HAVE_CUDA
        if (f->on_device)
            SS_TRY(cuda_check(cudaMemcpy(to, dst, (size_t)c * row_bytes, cudaMemcpyDeviceToDevice),
                              "tiling"));
        else
#endif
            memcpy(to, dst, (size_t)c * row_bytes);
        done += c;
    }
    return SS_OK;
}

// --- synthetic data -------------------------------------------------------------------------

static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unif(uint64_t *s) { return (double)(mix(s) >> 11) * (1.0 / 9007199254740992.0); }

/* Random quantized values: I8 in [-127, 127], E4M3 of a spread of magnitudes. */
static void fill_q(ss_dtype t, uint8_t *p, size_t n, uint64_t *s) {
    for (size_t i = 0; i < n; i++) {
        if (t == SS_DTYPE_I8)
            p[i] = (uint8_t)(int8_t)((int)(mix(s) % 255) - 127);
        else
            p[i] = ss_f32_to_e4m3((float)((unif(s) * 2.0 - 1.0) * 16.0));
    }
}

// --- memory needs --------------------------------------------------------------------------------

ss_fixture_need ss_fixture_bytes(ss_backend b, int64_t n, int64_t k, ss_dtype wdtype,
                                 ss_pattern p, int64_t m_max) {
    double qs = (double)ss_dtype_size(wdtype), kq = (double)ss_slid_k(p, k), dn = (double)n;
    double m = (double)ss_linear_m_pad(m_max);
    double w = dn * kq * qs; /* one copy of the weights as a linear holds them */
    /* x (BF16), q, sa, d (<= 4 bytes), y (BF16) */
    double bufs = m * ((double)k * 2 + kq * qs + 4 + dn * 4 + dn * 2);
    /* generated dense + slid, the CPU reference's copy */
    ss_fixture_need need = {.host = dn * (double)k * qs + w + w};
    if (b == SS_BACKEND_CPU)
        need.host += w + bufs;
    else
        need.device = 2 * w + bufs + (256 << 20); /* + compressed copy, L2 flush, workspace */
    return need;
}

/* Host memory free for us now, in bytes (0 when unknown). */
static double host_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

static ss_status check_memory(ss_context *ctx, ss_fixture_need need, const char *what) {
    double gb = 1e9, avail = host_available();
    if (avail > 0 && need.host > avail)
        return ss_fail(SS_ENOMEM, "%s needs about %.1f GB of host memory, %.1f GB available; use "
                       "smaller sizes", what, need.host / gb, avail / gb);
#ifdef SS_HAVE_CUDA
    size_t free_b = 0, total_b = 0;
    if (need.device > 0 && ss_context_device(ctx) >= 0 &&
        cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && need.device > (double)free_b)
        return ss_fail(SS_ENOMEM, "%s needs about %.1f GB of device memory, %.1f GB free on the "
                       "GPU; use smaller sizes", what, need.device / gb, (double)free_b / gb);
#else
    (void)ctx;
#endif
    return SS_OK;
}

ss_status ss_fixture_check_cases(ss_context *ctx, ss_backend b, const ss_fixture_cases *c) {
    ss_fixture_need worst = {0, 0};
    char what[200] = "";
    for (int d = 0; d < c->n_dtypes; d++)
        for (int j = 0; j < c->n_shapes; j++)
            for (int pi = -1; pi < c->n_patterns; pi++) {
                ss_pattern p = pi < 0 ? SS_PATTERN_DENSE : c->patterns[pi];
                int64_t m = c->m_per_shape ? c->ms[j] : 0;
                for (int i = 0; !c->m_per_shape && i < c->n_m; i++)
                    m = c->ms[i] > m ? c->ms[i] : m;
                const ss_proj_shape *sh = &c->shapes[j];
                ss_fixture_need nd = ss_fixture_bytes(b, sh->n, sh->k, c->dtypes[d], p, m);
                if (nd.host + nd.device <= worst.host + worst.device)
                    continue;
                worst = nd;
                char pat[16];
                snprintf(what, sizeof what, "%s (N %lld, K %lld) %s %s at M %lld", sh->name,
                         (long long)sh->n, (long long)sh->k, ss_dtype_name(c->dtypes[d]),
                         ss_pattern_format(p, pat, sizeof pat), (long long)m);
            }
    return check_memory(ctx, worst, what);
}

// --- create / free -----------------------------------------------------------------------------

void ss_fixture_free(ss_fixture *f) {
    if (!f)
        return;
    ss_linear_destroy(f->lin);
    ss_linear_destroy(f->ref);
    buf_free(f, f->x);
    buf_free(f, f->q);
    buf_free(f, f->sa);
    buf_free(f, f->d);
    buf_free(f, f->y);
    buf_free(f, f->flush);
    buf_free(f, f->lq);
    buf_free(f, f->lsa);
    free(f->q_host);
    free(f->d_ref);
    memset(f, 0, sizeof *f);
}

/* Host weights (n, kq of the pattern) and scales. */
static ss_status make_weights(ss_dtype t, int64_t n, int64_t k, ss_pattern p, uint64_t *s,
                              void **w_out, float **sc_out) {
    int64_t kq = ss_slid_k(p, k);
    uint8_t *dense = malloc((size_t)n * (size_t)k), *slid = NULL;
    float *sc = malloc((size_t)n * sizeof *sc);
    ss_status st = SS_OK;
    if (!dense || !sc) {
        st = ss_fail(SS_ENOMEM, "fixture: out of memory for %lld x %lld weights", (long long)n,
                     (long long)k);
        goto fail;
    }
    fill_q(t, dense, (size_t)n * (size_t)k, s);
    for (int64_t i = 0; i < n; i++)
        sc[i] = (float)(0.5 + unif(s));
    if (ss_pattern_is_dense(p)) {
        *w_out = dense;
        *sc_out = sc;
        return SS_OK;
    }
    slid = malloc((size_t)n * (size_t)kq);
    if (!slid) {
        st = ss_fail(SS_ENOMEM, "fixture: out of memory for slid weights");
        goto fail;
    }
    st = ss_prune(t, dense, n, k, p, t, NULL);
    if (st == SS_OK)
        st = ss_slide(t, dense, n, k, p, slid);
    if (st != SS_OK)
        goto fail;
    free(dense);
    *w_out = slid;
    *sc_out = sc;
    return SS_OK;
fail:
    free(dense);
    free(slid);
    free(sc);
    return st;
}

ss_status ss_fixture_create(ss_context *ctx, ss_backend b, const char *name, int64_t n,
                            int64_t k, ss_dtype wdtype, ss_pattern p, int64_t m_max,
                            uint64_t seed, ss_fixture *f) {
    memset(f, 0, sizeof *f);
    if (!ctx || m_max <= 0 || n <= 0 || k <= 0)
        return ss_fail(SS_EINVAL, "fixture '%s': expected a context and positive n, k, m", name);
    uint64_t s = seed ^ ((uint64_t)n << 32) ^ (uint64_t)k ^ ((uint64_t)p.l << 56);
    f->ctx = ctx;
    f->backend = b;
    f->on_device = b != SS_BACKEND_CPU;
    f->n = n;
    f->k = k;
    f->kq = ss_slid_k(p, k);
    f->m_max = ss_linear_m_pad(m_max);
    void *w = NULL;
    float *sc = NULL;
    uint16_t *xt = NULL;
    ss_status st = make_weights(wdtype, n, k, p, &s, &w, &sc);
    if (st != SS_OK)
        return st;
    f->desc = ss_linear_desc_default(name, n, k, wdtype);
    f->desc.pattern = p;
    ss_linear_weights lw = {.w = w, .w_scale = sc, .bias = NULL};
    st = ss_linear_create(ctx, b, &f->desc, &lw, &f->lin);
    if (st == SS_OK)
        st = ss_linear_create(ctx, SS_BACKEND_CPU, &f->desc, &lw, &f->ref);
    free(w);
    free(sc);
    if (st != SS_OK)
        goto fail;
    f->desc = *ss_linear_get_desc(f->lin);
    f->fused = f->desc.gemm_out != ss_linear_get_desc(f->ref)->gemm_out;
    size_t qs = ss_dtype_size(wdtype), ds = ss_dtype_size(f->desc.gemm_out);
    size_t rows = (size_t)f->m_max;
    f->q_host = malloc((size_t)SS_FIX_ROWS * (size_t)f->kq * qs);
    f->d_ref = malloc((size_t)SS_FIX_ROWS * (size_t)n * ds);
    xt = malloc((size_t)SS_FIX_ROWS * (size_t)k * 2);
    if (!f->q_host || !f->d_ref || !xt) {
        st = ss_fail(SS_ENOMEM, "fixture '%s': out of memory", name);
        goto fail;
    }
    fill_q(wdtype, f->q_host, (size_t)SS_FIX_ROWS * (size_t)f->kq, &s);
    for (size_t i = 0; i < (size_t)SS_FIX_ROWS * (size_t)k; i++)
        xt[i] = ss_f32_to_bf16((float)(unif(&s) * 4.0 - 2.0));
    /* fused (sm90sp): the GEMM stage's output is the layer's, so the reference
     * is the CPU forward of the x tile (q and sa come from its quant below) */
    st = f->fused ? ss_linear_forward(f->ref, xt, SS_FIX_ROWS, f->d_ref)
                  : ss_linear_gemm(f->ref, f->q_host, SS_FIX_ROWS, f->d_ref);
    if (st == SS_OK)
        st = buf_alloc(f, (void **)&f->x, rows * (size_t)k * 2, "activations");
    if (st == SS_OK)
        st = buf_alloc(f, &f->q, rows * (size_t)f->kq * qs, "quantized activations");
    if (st == SS_OK)
        st = buf_alloc(f, (void **)&f->sa, rows * sizeof(float), "token scales");
    if (st == SS_OK)
        st = buf_alloc(f, &f->d, rows * (size_t)n * ds, "GEMM output");
    if (st == SS_OK)
        st = buf_alloc(f, &f->y, rows * (size_t)n * 2, "layer output");
    if (st == SS_OK)
        st = tile_rows(f, f->q, f->q_host, (size_t)f->kq * qs, f->m_max);
    if (st == SS_OK)
        st = tile_rows(f, f->x, xt, (size_t)k * 2, f->m_max);
    /* the fused GEMM stage reads the token scales of the linear's last quant */
    if (st == SS_OK && f->fused)
        st = ss_linear_quant(f->lin, f->x, f->m_max, f->q, f->sa);
#ifdef SS_HAVE_CUDA
    if (st == SS_OK && f->on_device) {
        int l2 = 0, dev = ss_context_device(ctx);
        if (cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev) != cudaSuccess)
            l2 = 64 << 20;
        f->flush_bytes = 2 * (size_t)l2;
        st = buf_alloc(f, &f->flush, f->flush_bytes, "L2 flush buffer");
    }
#endif
    if (st != SS_OK)
        goto fail;
    free(xt);
    return SS_OK;
fail:
    free(xt);
    ss_fixture_free(f);
    return st;
}

// --- validation -----------------------------------------------------------------------------------

static double d_value(ss_dtype t, const void *d, size_t i) { return ss_dtype_load(t, d, i); }

static ss_status compare_block(const ss_fixture *f, const void *got, int64_t row0, int *ok,
                               char *why, size_t wn) {
    ss_dtype t = f->desc.gemm_out;
    size_t cnt = (size_t)SS_FIX_ROWS * (size_t)f->n;
    double maxref = 0;
    for (size_t i = 0; i < cnt; i++)
        maxref = fmax(maxref, fabs(d_value(t, f->d_ref, i)));
    /* FP8: Hopper tensor cores accumulate with fewer mantissa bits than FP32 */
    double tol = t == SS_DTYPE_I32 || (f->fused && f->desc.wdtype == SS_DTYPE_I8)
                     ? 0.0 : 1e-2 * fmax(maxref, 1.0);
    for (size_t i = 0; i < cnt; i++) {
        double a = d_value(t, got, i), r = d_value(t, f->d_ref, i);
        if (!(fabs(a - r) <= tol)) {
            *ok = 0;
            snprintf(why, wn, "row %lld col %lld: got %.9g, CPU reference %.9g (tolerance %.3g)",
                     (long long)(row0 + (int64_t)(i / (size_t)f->n)),
                     (long long)(i % (size_t)f->n), a, r, tol);
            return SS_OK;
        }
    }
    return SS_OK;
}

ss_status ss_fixture_validate(ss_fixture *f, int64_t m, int *ok, char *why, size_t wn) {
    *ok = 1;
    if (why && wn)
        why[0] = '\0';
    int64_t mp = ss_linear_m_pad(m);
    if (mp > f->m_max)
        return ss_fail(SS_EINVAL, "fixture '%s': m %lld beyond the %lld rows allocated",
                       f->desc.name, (long long)m, (long long)f->m_max);
    size_t ds = ss_dtype_size(f->desc.gemm_out);
    size_t blk = (size_t)SS_FIX_ROWS * (size_t)f->n * ds;
    void *got = malloc(blk);
    if (!got)
        return ss_fail(SS_ENOMEM, "fixture: out of memory for validation");
    ss_status s = ss_linear_gemm(f->lin, f->q, mp, f->d);
    int64_t last = mp - SS_FIX_ROWS;
    for (int pass = 0; s == SS_OK && pass < 2 && *ok; pass++) {
        int64_t row0 = pass ? last : 0;
        s = copy(f, got, (char *)f->d + (size_t)row0 * (size_t)f->n * ds, blk, 0);
        if (s == SS_OK)
            s = compare_block(f, got, row0, ok, why, wn);
    }
    free(got);
    return s;
}

// --- timing -------------------------------------------------------------------------------------

static ss_status run_stage(ss_fixture *f, ss_fix_stage st, int64_t m) {
    switch (st) {
    case SS_FIX_GEMM: return ss_linear_gemm(f->lin, f->q, m, f->d);
    case SS_FIX_QUANT: return ss_linear_quant(f->lin, f->x, m, f->q, f->sa);
    case SS_FIX_DEQUANT: return ss_linear_dequant(f->lin, f->d, f->sa, m, f->y);
    case SS_FIX_QUANT_LAUNCH: return ss_fixture_quant_launch(f, m);
    default: return ss_linear_forward(f->lin, f->x, m, f->y);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#ifdef SS_HAVE_CUDA
static void pause_us(int us) {
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* The probe runs on this thread after every iteration is queued and before
 * the synchronize, from the first timed event's completion to the last's:
 * the thread has nothing else to do then, no second thread or shared state is
 * needed, and the window holds the timed iterations only (the warm-up, where
 * an idle GPU ramps its clock up, is left out). A loop that ends before the
 * first poll still gets one reading, taken right after it. */
static ss_status probe_timed(cudaEvent_t first, cudaEvent_t last, const ss_fix_probe *p) {
    cudaError_t e;
    while ((e = cudaEventQuery(first)) == cudaErrorNotReady)
        pause_us(20);
    if (e != cudaSuccess)
        return cuda_check(e, "event query");
    do {
        p->sample(p->user);
        if ((e = cudaEventQuery(last)) == cudaErrorNotReady)
            pause_us(p->interval_us > 0 ? p->interval_us : 1000);
    } while (e == cudaErrorNotReady);
    return cuda_check(e, "event query");
}

static ss_status time_gpu(ss_fixture *f, ss_fix_stage stage, int64_t m, int warmup, int repeat,
                          int no_flush, const ss_fix_probe *probe, double *t) {
    cudaStream_t s = (cudaStream_t)ss_context_stream(f->ctx);
    cudaEvent_t *ev = calloc((size_t)repeat * 2, sizeof *ev);
    ss_status st = ev ? SS_OK : ss_fail(SS_ENOMEM, "fixture: out of memory for events");
    int made = 0;
    for (; st == SS_OK && made < 2 * repeat; made++)
        st = cuda_check(cudaEventCreate(&ev[made]), "event");
    for (int i = 0; st == SS_OK && i < warmup; i++)
        st = run_stage(f, stage, m);
    for (int i = 0; st == SS_OK && i < repeat; i++) {
        /* the flush evicts the operands from L2, as a model's next layer would */
        if (!no_flush)
            st = cuda_check(cudaMemsetAsync(f->flush, i & 0xff, f->flush_bytes, s), "L2 flush");
        if (st == SS_OK)
            st = cuda_check(cudaEventRecord(ev[2 * i], s), "event record");
        if (st == SS_OK)
            st = run_stage(f, stage, m);
        if (st == SS_OK)
            st = cuda_check(cudaEventRecord(ev[2 * i + 1], s), "event record");
    }
    if (st == SS_OK && probe)
        st = probe_timed(ev[0], ev[2 * repeat - 1], probe);
    if (st == SS_OK)
        st = cuda_check(cudaStreamSynchronize(s), "synchronize");
    for (int i = 0; st == SS_OK && i < repeat; i++) {
        float ms = 0;
        st = cuda_check(cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]), "event time");
        t[i] = 1e3 * (double)ms;
    }
    for (int i = 0; i < made; i++)
        cudaEventDestroy(ev[i]);
    free(ev);
    return st;
}
#endif

ss_status ss_fixture_time(ss_fixture *f, ss_fix_stage stage, int64_t m, int warmup, int repeat,
                          int no_flush, double *us) {
    return ss_fixture_time_probed(f, stage, m, warmup, repeat, no_flush, NULL, us);
}

ss_status ss_fixture_time_probed(ss_fixture *f, ss_fix_stage stage, int64_t m, int warmup,
                                 int repeat, int no_flush, const ss_fix_probe *probe, double *us) {
    (void)probe; /* GPU fixtures only */
    if (repeat <= 0)
        repeat = 1;
    if (ss_linear_m_pad(m) > f->m_max)
        return ss_fail(SS_EINVAL, "fixture '%s': m %lld beyond the %lld rows allocated",
                       f->desc.name, (long long)m, (long long)f->m_max);
    double *t = calloc((size_t)repeat, sizeof *t);
    if (!t)
        return ss_fail(SS_ENOMEM, "fixture: out of memory");
    /* one untimed call: plans, workspace and scratch are built here */
    ss_status st = run_stage(f, stage, m);
#ifdef SS_HAVE_CUDA
    if (st == SS_OK && f->on_device) {
        st = cuda_check(cudaStreamSynchronize((cudaStream_t)ss_context_stream(f->ctx)), "sync");
        if (st == SS_OK)
            st = time_gpu(f, stage, m, warmup, repeat, no_flush, probe, t);
        goto done;
    }
#endif
    /* CPU: the monotonic clock; no flush (the CPU path is for correctness in CI,
     * its numbers are only indicative) */
    for (int i = 0; st == SS_OK && i < warmup; i++)
        st = run_stage(f, stage, m);
    for (int i = 0; st == SS_OK && i < repeat; i++) {
        double a = ss_monotonic_s();
        st = run_stage(f, stage, m);
        t[i] = 1e6 * (ss_monotonic_s() - a);
    }
    goto done; /* keeps the label used in CPU-only builds */
done:
    if (st == SS_OK)
        *us = median(t, repeat);
    free(t);
    return st;
}

double ss_fixture_bandwidth(ss_context *ctx) {
#ifdef SS_HAVE_CUDA
    if (ss_context_device(ctx) < 0)
        return 0;
    size_t bytes = (size_t)512 << 20;
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    double gbs = 0;
    cudaStream_t s = (cudaStream_t)ss_context_stream(ctx);
    if (cudaMalloc(&a, bytes) == cudaSuccess && cudaMalloc(&b, bytes) == cudaSuccess &&
        cudaEventCreate(&e0) == cudaSuccess && cudaEventCreate(&e1) == cudaSuccess) {
        int reps = 10;
        cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, s);
        cudaEventRecord(e0, s);
        for (int i = 0; i < reps; i++)
            cudaMemcpyAsync(i % 2 ? a : b, i % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice, s);
        cudaEventRecord(e1, s);
        float ms = 0;
        if (cudaEventSynchronize(e1) == cudaSuccess &&
            cudaEventElapsedTime(&ms, e0, e1) == cudaSuccess && ms > 0)
            gbs = 2.0 * (double)bytes * reps / (1e-3 * ms) / 1e9;
    }
    (void)cudaGetLastError();
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    cudaFree(a);
    cudaFree(b);
    return gbs;
#else
    (void)ctx;
    return 0;
#endif
}

void ss_fix_log(ss_log_fn log, void *user, const char *fmt, ...) {
    if (!log)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log(user, buf);
}
