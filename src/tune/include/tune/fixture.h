/* Internal (tuner and kernel benchmark): one linear layer with synthetic
 * weights on a backend, its CPU reference twin, and buffers for up to m_max
 * tokens, plus the timing loop (CUDA events on a GPU context, the monotonic
 * clock on the CPU one).
 *
 * Activations are 16 random rows tiled down the whole buffer, so a GEMM's
 * first 16 output rows (and every later block of 16) can be checked against
 * the CPU reference on those 16 rows alone: validation costs the same at any M.
 */
#ifndef SS_TUNE_FIXTURE_H
#define SS_TUNE_FIXTURE_H

#include "core/error.h" /* SS_PRINTF */
#include "slidesparse/linear.h"
#include "slidesparse/tune.h"

#define SS_FIX_ROWS 16

typedef struct {
    ss_context *ctx;
    ss_backend backend;
    int on_device;
    ss_linear *lin;       /* the backend under test */
    ss_linear *ref;       /* CPU, same weights */
    ss_linear_desc desc;  /* as created (gemm_out resolved) */
    int fused;            /* the GEMM stage writes the dequantized BF16 (sm90sp): d_ref is
                             the CPU forward of the x tile, q and sa its quantization */
    int64_t n, k, kq;     /* kq: GEMM K (ceil32(K) or K') */
    int64_t m_max;        /* rows the buffers hold (multiple of 16) */
    void *q_host;         // (16, kq) of wdtype: the tile
    void *d_ref;          // (16, n) of gemm_out: reference GEMM of the tile (fused: Y)
    /* buffers in the backend's memory (device or host) */
    uint16_t *x;          // (m_max, k) BF16
    void *q;              // (m_max, kq) of wdtype
    float *sa;            // (m_max)
    void *d;              // (m_max, n) of gemm_out
    void *y;              // (m_max, n) BF16
    void *flush;          /* 2 x L2 bytes, written before every timed iteration */
    size_t flush_bytes;
    /* SS_FIX_QUANT_LAUNCH: the configuration timed and its own outputs, so
     * that the GEMM's input tile in q stays intact (quant_search.c) */
    ss_quant_launch launch;
    void *lq;             // (m_max, kq) of wdtype, device
    float *lsa;           // (m_max), device
} ss_fixture;

/* Synthetic weights (seeded): random I8 / E4M3 values pruned to the pattern
 * and slid, per-channel scales in [0.5, 1.5). */
ss_status ss_fixture_create(ss_context *ctx, ss_backend b, const char *name, int64_t n,
                            int64_t k, ss_dtype wdtype, ss_pattern p, int64_t m_max,
                            uint64_t seed, ss_fixture *f);
void ss_fixture_free(ss_fixture *f);

/* What ss_fixture_create would allocate for these sizes, in bytes, on the host
 * and on the device (an estimate of the large buffers: the weights, their
 * slid and reference copies, the m_max-row activation and output buffers). */
typedef struct {
    double host, device;
} ss_fixture_need;
ss_fixture_need ss_fixture_bytes(ss_backend b, int64_t n, int64_t k, ss_dtype wdtype,
                                 ss_pattern p, int64_t m_max);
/* The fixtures of a run: every shape x dtype x (dense and each pattern) at
 * the largest M (m_per_shape: shape j runs at ms[j] only, the square sweep). */
typedef struct {
    const ss_proj_shape *shapes;
    int n_shapes;
    const ss_dtype *dtypes;
    int n_dtypes;
    const ss_pattern *patterns;
    int n_patterns;
    const int64_t *ms;
    int n_m;
    int m_per_shape;
} ss_fixture_cases;
/* Before any work: SS_ENOMEM naming the largest case, "needs about X GB of
 * host (device) memory, Y GB available", when it exceeds what is free now
 * (host: MemAvailable; device: cudaMemGetInfo of ctx's device). */
ss_status ss_fixture_check_cases(ss_context *ctx, ss_backend b, const ss_fixture_cases *c);

/* Runs the GEMM at m on the tiled activations and compares its first and last
 * 16 rows with the CPU reference: I8 bit-exact, FP8 within 1e-2 of the
 * largest reference magnitude. *ok = 0 names the mismatch in `why`. */
ss_status ss_fixture_validate(ss_fixture *f, int64_t m, int *ok, char *why, size_t n);

typedef enum {
    SS_FIX_GEMM = 0,  /* ss_linear_gemm on quantized activations */
    SS_FIX_LINEAR,    /* quant(+slide) + GEMM + dequant through the stage API */
    SS_FIX_QUANT,
    SS_FIX_DEQUANT,
    SS_FIX_QUANT_LAUNCH, /* our quant kernel with f->launch into lq / lsa (GPU) */
} ss_fix_stage;

/* Median latency in microseconds of `stage` at m over `repeat` iterations
 * after `warmup`, L2 flushed before each (unless no_flush). Nothing is
 * allocated or planned inside the timed region (one untimed call first). */
ss_status ss_fixture_time(ss_fixture *f, ss_fix_stage stage, int64_t m, int warmup, int repeat,
                          int no_flush, double *us);

/* Called over and over while the GPU runs the timed iterations (from the
 * completion of the first timed event until the last one completed, at
 * least once), `interval_us` apart; the kernel benchmark reads the SM clock
 * and power there (bench/clocks.h). Never called on a CPU fixture. */
typedef struct {
    void (*sample)(void *user);
    void *user;
    int interval_us;
} ss_fix_probe;

/* ss_fixture_time with a probe (NULL: none, as ss_fixture_time). */
ss_status ss_fixture_time_probed(ss_fixture *f, ss_fix_stage stage, int64_t m, int warmup,
                                 int repeat, int no_flush, const ss_fix_probe *probe, double *us);

/* Measured device-to-device copy bandwidth (GB/s, read + write); 0 on CPU. */
double ss_fixture_bandwidth(ss_context *ctx);

/* One search (tuner internal): every candidate of f->lin at m; cand_log
 * (may be NULL) gets one line per timed candidate. */
ss_status ss_tune_search(ss_fixture *f, int64_t m, int warmup, int repeat, int no_flush,
                         ss_tune_progress_fn progress, void *user, ss_tune_progress *pg,
                         ss_log_fn cand_log, ss_tune_entry *e);

/* The launch search of our quant(+slide) kernel at m (quant_search.c): every
 * configuration the kernel takes plus the automatic one, each checked
 * bit-exactly against the CPU quantizer before it may win. GPU fixtures only
 * (SS_EUNSUPPORTED elsewhere, or when no configuration matched). */
ss_status ss_tune_quant_search(ss_fixture *f, int64_t m, int warmup, int repeat, int no_flush,
                               ss_tune_progress_fn progress, void *user, ss_tune_progress *pg,
                               ss_tune_kernel_entry *e);
/* "auto", "vec2 pdl", ...: a launch configuration in log lines. */
void ss_quant_launch_desc(ss_quant_launch l, char *buf, size_t n);
/* "vec2 pdl 5.10 us (then auto 5.40 us, ...)": an entry for the tuner's log. */
void ss_tune_quant_describe(const ss_tune_kernel_entry *e, char *buf, size_t n);
/* One launch of SS_FIX_QUANT_LAUNCH (SS_EUNSUPPORTED: the kernel does not take
 * f->launch for this shape). */
ss_status ss_fixture_quant_launch(ss_fixture *f, int64_t m);

/* printf into a line for an ss_log_fn (the tuner's and the benchmark's log
 * callback); nothing when log is NULL. Lines are cut at 1023 bytes. */
void ss_fix_log(ss_log_fn log, void *user, const char *fmt, ...) SS_PRINTF(3, 4);

#endif
