/* slidesparse/bench.h — the kernel benchmark (tasks 6-8, SPEC §8), the device
 * banner and the CSV writer.
 *
 * Two levels are measured for every (dtype, projection, M, backend/pattern):
 *   gemm   : the GEMM alone on quantized activations, with the tuned algorithm;
 *   linear : the whole layer a model pays, quant(+slide) + GEMM + dequant
 *            (ss_linear_forward).
 * Timing: CUDA events around each iteration, warm-up first, L2 flushed (a
 * 2 x L2 memset) before every timed iteration, median of the repeats; plans,
 * workspace and scratch are built by one untimed call first. The CPU backend
 * (CI, no GPU) is timed with the monotonic clock and not flushed.
 * TOPS = 2 M N K / t with the logical K (dense-equivalent work), so dense and
 * every pattern compare directly; speedup = t_dense / t_pattern at the same
 * level; ideal = N/(N-1); slid efficiency = (t_2_4 / t_pattern) * e (SPEC §1),
 * with 2_4 run on the same K ("native 2:4").
 *
 * Output layout (CSV, each written atomically):
 *   <out>/benchmark_kernel/cuBLASLt/<GPU>_cc<cc>_<INT8|FP8>_<toolchain>/
 *       <Model>_<proj>.csv       dense rows, per M and level
 *       <Model>_total.csv        the four projections of one layer summed
 *   <out>/benchmark_kernel/sm90dense/...   (opts.sm90dense) dense rows, as cuBLASLt's
 *   <out>/benchmark_kernel/cuSPARSELt/<GPU>_cc<cc>_<INT8|FP8>_<toolchain>/
 *       <Model>_<proj>.csv       one row per (M, pattern, level)
 *       <Model>_total.csv        per (M, pattern, level): sum of latencies,
 *                                speedup = sum dense / sum sparse
 * On the CPU backend the folders are named the same way (CPU_cc0_<dtype>_cpu).
 * Columns (every file): gpu, cc, dtype, cublaslt, cusparselt, toolchain,
 *   model, proj, M, N, K, K_slid, backend, pattern, level, latency_us, tops,
 *   speedup, ideal, slid_eff, alg_id, split_k, algo, sm_mhz_mean, sm_mhz_min,
 *   power_w, power_capped
 * (total rows: proj "total", N and K of the layer sum, alg and clock fields
 * empty). The clock fields describe the GPU while that row's timed
 * iterations ran (NVML, sampled about every millisecond from the first timed
 * event to the last, src/bench/clocks.h): mean and lowest SM clock in MHz,
 * mean board power in W, and the fraction (0..1) of samples in which a
 * power or thermal clock event reason (SW power cap, HW slowdown, SW / HW
 * thermal, HW power brake) was active. Empty on the CPU backend, without
 * the NVML library (no driver) or with opts.no_clocks.
 */
#ifndef SLIDESPARSE_BENCH_H
#define SLIDESPARSE_BENCH_H

#include "slidesparse/core.h"
#include "slidesparse/linear.h"
#include "slidesparse/tune.h"

#ifdef __cplusplus
extern "C" {
#endif

// --- device banner -------------------------------------------------------------------

typedef struct {
    ss_tune_key key;
    char describe[512];   /* ss_context_describe */
    int sms;
    int clock_mhz;        /* SM clock (max) */
    int mem_clock_mhz;
    int bus_bits;
    double hbm_gbs;       /* measured copy bandwidth; 0 when not measured / CPU */
    double peak_tops;     /* nominal dense INT8/FP8 tensor peak at clock_mhz; 0 unknown */
} ss_device_info;

/* measure_bw: time a device-to-device copy (about 50 ms). */
ss_status ss_device_info_get(ss_context *ctx, int measure_bw, ss_device_info *out);
/* Multi-line banner text (each line ends with '\n'). */
ss_status ss_device_banner(const ss_device_info *d, char *buf, size_t n);

// --- CSV ---------------------------------------------------------------------------------

typedef struct {
    char *s;
    size_t len, cap;
    int failed; /* out of memory on some append: save fails */
} ss_csv;

/* Appends one line (a '\n' is added). */
void ss_csv_line(ss_csv *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* A field quoted when it holds a comma, quote or newline; returns buf. */
const char *ss_csv_field(const char *s, char *buf, size_t n);
/* mkdir -p of the parent, then temp + fsync + rename. */
ss_status ss_csv_save(const ss_csv *c, const char *path);
void ss_csv_free(ss_csv *c);

// --- the kernel benchmark -------------------------------------------------------------------

typedef enum { SS_LEVEL_GEMM = 0, SS_LEVEL_LINEAR = 1 } ss_bench_level;

/* The GPU's clock and power while one timed loop ran (or a samples-weighted
 * merge of several, ss_bench_clock_summary). */
typedef struct {
    int samples;          /* 0: not recorded */
    double sm_mhz_mean, sm_mhz_min;
    double power_w;       /* mean board power; < 0: not readable */
    double capped;        /* fraction of samples with a power / thermal clock event
                             reason active; < 0: reasons not readable */
} ss_bench_clock;

typedef struct {
    ss_dtype dtype;
    int proj;             /* index into the shapes */
    int64_t m, n, k, k_slid;
    ss_backend backend;
    ss_pattern pattern;   /* SS_PATTERN_DENSE for the dense backend */
    double us[2];         /* per ss_bench_level */
    int alg_id, split_k;
    char algo[64];        /* desc, or "heuristic" */
    ss_bench_clock clk[2]; /* per ss_bench_level: during the timed iterations */
} ss_bench_row;

typedef struct {
    ss_context *ctx;
    const char *model;            /* file stem: "BitNet-2B" */
    const ss_proj_shape *shapes;  /* ignored in square mode */
    int n_shapes;
    const ss_dtype *dtypes;
    int n_dtypes;
    const ss_pattern *patterns;   /* 2_4 (native) is always measured too */
    int n_patterns;
    const int64_t *ms;            /* NULL: 64, 128, ..., 16384 */
    int n_m;
    int square;                   /* M = N = K for every M (the paper's sweep) */
    const char *out_root;         /* CSVs under <out_root>/benchmark_kernel/...; NULL: none */
    const char *tuning_root;      /* NULL: "tuning" */
    int no_tune;                  /* shapes the table lacks run the heuristic */
    int warmup, repeat;           /* <= 0: 25 / 100 */
    int no_flush;
    uint64_t seed;
    ss_tune_progress_fn progress;
    void *user;
    ss_log_fn log;
    int sm90sp;                   /* sparse side on the sm90sp backend (CUTLASS, dequant
                                     fused; GEMM level = the fused GEMM) instead of
                                     cuSPARSELt; CSVs under benchmark_kernel/sm90sp */
    int sm90dense;                /* dense side also on sm90dense (sm90sp's kernel family,
                                     dense operand, same fused epilogue; GPU only), CSVs
                                     under benchmark_kernel/sm90dense; every speedup is
                                     then against the best dense per (projection, M,
                                     level) of cuBLASLt and sm90dense */
    int no_clocks;                /* do not sample the SM clock / power (NVML) */
} ss_bench_kernel_opts;

typedef struct {
    ss_bench_row *rows;
    size_t n_rows;
    int tuned, reused;            /* table entries searched now / found */
    char table_status[2048];
    char dirs[2][1024];           /* last cuBLASLt / cuSPARSELt folder written */
    char dense2_dir[1024];        /* last sm90dense folder written (--sm90dense) */
    char clock_note[512];         /* how clocks were sampled, or why they were not
                                     ("not recorded: ...") */
} ss_bench_kernel_result;

ss_status ss_bench_kernel(const ss_bench_kernel_opts *o, ss_bench_kernel_result *res);
void ss_bench_kernel_result_free(ss_bench_kernel_result *r);

/* Sum over the projections of one layer of `level` latency for (dtype,
 * backend/pattern, m); SS_EINVAL when some projection has no row. Dense with
 * two dense backends measured: each projection's fastest at `level` (the
 * best dense). */
ss_status ss_bench_total(const ss_bench_kernel_result *r, int n_proj, ss_dtype dt, ss_pattern p,
                         int64_t m, ss_bench_level level, double *us);
/* The same sum over the rows of backend be only (SS_BACKEND_COUNT: as
 * ss_bench_total). */
ss_status ss_bench_total_on(const ss_bench_kernel_result *r, int n_proj, ss_dtype dt,
                            ss_backend be, ss_pattern p, int64_t m, ss_bench_level level,
                            double *us);

/* The clock records of one side's rows (sparse 0: dense backends; 1: every
 * pattern), narrowed to dtype (negative: any), m (0: any) and level
 * (negative: both), merged weighted by samples (min: the lowest). samples 0:
 * nothing recorded there. */
ss_bench_clock ss_bench_clock_summary(const ss_bench_kernel_result *r, int sparse, int dtype,
                                      int64_t m, int level);

#ifdef __cplusplus
}
#endif
#endif
