/* slidesparse/tune.h — algorithm search and tuning tables (SPEC §7).
 *
 * A tuning table holds, per (backend, dtype in/out, N, K or K', M), the best
 * GEMM algorithm and the top 3 with latency and TOPS. One table per GPU name +
 * compute capability + library versions; it lives in
 *     <root>/<GPU>_cc<cc>_<toolchain>/tuning.json
 * (<GPU> with every character outside [A-Za-z0-9.-] replaced by '_'; the CPU
 * context uses "CPU_cc0_cpu"). A table whose key differs from the running
 * context (another GPU, another cuBLASLt/cuSPARSELt/CUDA version) is ignored
 * with a warning, never applied.
 *
 * File format (JSON, written atomically: temp + fsync + rename):
 *   {"format": "slidesparse-tuning", "version": 1,
 *    "key": {"gpu": "NVIDIA H100 80GB HBM3", "cc": 90, "cublaslt": "130100",
 *            "cusparselt": "0.8.0", "toolchain": "cuda13.0"},
 *    "entries": [
 *      {"backend": "cusparselt", "in": "I8", "out": "I32", "n": 3840, "k": 3424,
 *       "m": 64,
 *       "best": ALGO,
 *       "top": [{"algo": ALGO, "us": 12.4, "tops": 135.2}, ...]}]}   (1..3)
 *   ALGO = {"backend": "cusparselt", "alg_id": 3, "split_k": 1, "workspace": 0,
 *           "algo": "<128 hex digits>" (cuBLASLt only), "desc": "..."}
 * n is ceil32(N) and k the GEMM's K (ceil32(K) dense, K' slid); m is the
 * M bucket (multiple of 16). Lookup: among entries of the same (backend, in,
 * out, n, k) the smallest m >= requested, else the largest.
 *
 * Optional (a table without it loads, with no kernel entries): our kernels'
 * launch configurations, a top-level array beside "entries":
 *    "kernels": [
 *      {"kernel": "quant", "qdt": "I8", "k": 2560, "k_out": 3840, "m": 4096,
 *       "best": {"vecs": 2, "pdl": 1},
 *       "top": [{"vecs": 2, "pdl": 1, "us": 5.1}, ...]}]              (1..3)
 * kernel "quant" is the quant(+slide) kernel, qdt I8 or F8_E4M3, k its
 * logical K, k_out the q columns (ceil32(K) dense, K' slid: a multiple of
 * 32), vecs 0 (automatic), 1, 2, 4 or 8, pdl 0 or 1.
 * Same lookup rule per (kernel, qdt, k, k_out).
 *
 * The library never prints: the search reports progress through a callback
 * and the table loader's decision is a status string (and a log callback).
 */
#ifndef SLIDESPARSE_TUNE_H
#define SLIDESPARSE_TUNE_H

#include "slidesparse/core.h"
#include "slidesparse/io.h"
#include "slidesparse/linear.h"

#ifdef __cplusplus
extern "C" {
#endif

// --- the key of a table ----------------------------------------------------------------

typedef struct {
    char gpu[128];        /* device name, "CPU" for the CPU context */
    int cc;               /* major*10 + minor; 0 on the CPU */
    char cublaslt[32];    /* run-time versions, "none" when absent */
    char cusparselt[32];
    char toolchain[32];   /* "cuda13.0" (CUDA runtime), "cpu" */
} ss_tune_key;

/* The key of the running context. */
ss_status ss_tune_key_of(const ss_context *ctx, ss_tune_key *out);
/* "<GPU>_cc<cc>_<toolchain>" (sanitized); also the benchmark folder stem. */
const char *ss_tune_key_dir(const ss_tune_key *k, char *buf, size_t n);
int ss_tune_key_equal(const ss_tune_key *a, const ss_tune_key *b);

// --- tables -------------------------------------------------------------------------------

#define SS_TUNE_TOP 3

typedef struct {
    ss_backend backend;
    ss_dtype in, out;
    int64_t n, k, m;
    ss_algo best;
    int n_top;
    struct {
        ss_algo algo;
        double us, tops;
    } top[SS_TUNE_TOP];
} ss_tune_entry;

typedef struct ss_tune_table ss_tune_table; /* opaque */

ss_status ss_tune_table_create(const ss_tune_key *key, ss_tune_table **out);
void ss_tune_table_free(ss_tune_table *t);
const ss_tune_key *ss_tune_table_key(const ss_tune_table *t);
size_t ss_tune_table_count(const ss_tune_table *t);
const ss_tune_entry *ss_tune_table_entry(const ss_tune_table *t, size_t i);

/* Parses a table (untrusted bytes: every field type- and range-checked;
 * SS_EFORMAT naming `label` and the entry). */
ss_status ss_tune_table_parse(const char *json, size_t len, const char *label,
                              ss_tune_table **out);
/* JSON text (malloc'd, NUL-terminated). */
ss_status ss_tune_table_dump(const ss_tune_table *t, char **out);
ss_status ss_tune_table_load(const char *path, ss_tune_table **out);
/* Atomic write; creates the parent folder. */
ss_status ss_tune_table_save(const ss_tune_table *t, const char *path);

/* Adds e, replacing an entry with the same (backend, in, out, n, k, m). */
ss_status ss_tune_table_put(ss_tune_table *t, const ss_tune_entry *e);
/* The entry for m by the lookup rule, or NULL when the shape has none. */
const ss_tune_entry *ss_tune_table_lookup(const ss_tune_table *t, ss_backend b, ss_dtype in,
                                          ss_dtype out, int64_t n, int64_t k, int64_t m);
/* An entry tuned at exactly this m, or NULL. */
const ss_tune_entry *ss_tune_table_find(const ss_tune_table *t, ss_backend b, ss_dtype in,
                                        ss_dtype out, int64_t n, int64_t k, int64_t m);

/* Our quant(+slide) kernel's launch configuration (ss_quant_launch,
 * slidesparse/linear.h), tuned per (dtype, K, K_out, M) alongside the GEMMs.
 * The search measures {0, 0} as the library's own choice (ss_kernel_quant,
 * threads 0) and every other value as ss_kernel_quant_vecs(vecs, pdl); a layer
 * whose call that kernel refuses (cudaErrorInvalidValue: alignment) falls back
 * to the automatic one. */

/* One kernel-launch entry (the "kernels" array). */
typedef struct {
    char kernel[16];      /* "quant" */
    ss_dtype qdt;         /* SS_DTYPE_I8 / SS_DTYPE_F8_E4M3 */
    int64_t k, k_out, m;  /* m: the M bucket */
    ss_quant_launch best;
    int n_top;
    struct {
        ss_quant_launch launch;
        double us;
    } top[SS_TUNE_TOP];
} ss_tune_kernel_entry;

size_t ss_tune_table_kernel_count(const ss_tune_table *t);
const ss_tune_kernel_entry *ss_tune_table_kernel_entry(const ss_tune_table *t, size_t i);
/* Adds e (range-checked like the parser: SS_EINVAL), replacing an entry with
 * the same (kernel, qdt, k, k_out, m). */
ss_status ss_tune_table_put_kernel(ss_tune_table *t, const ss_tune_kernel_entry *e);
/* By the lookup rule (smallest m >= requested, else the largest), or NULL. */
const ss_tune_kernel_entry *ss_tune_table_lookup_kernel(const ss_tune_table *t,
                                                        const char *kernel, ss_dtype qdt,
                                                        int64_t k, int64_t k_out, int64_t m);
/* Tuned at exactly this m, or NULL. */
const ss_tune_kernel_entry *ss_tune_table_find_kernel(const ss_tune_table *t, const char *kernel,
                                                      ss_dtype qdt, int64_t k, int64_t k_out,
                                                      int64_t m);

/* "<root>/<key dir>/tuning.json". */
ss_status ss_tune_table_path(const char *root, const ss_tune_key *key, char *buf, size_t n);

/* Loads the table for ctx's key under root. Missing file: SS_OK, *out NULL,
 * status "no tuning table at PATH; using heuristics". A table for another key:
 * SS_OK, *out NULL, status "ignoring tuning table PATH: tuned for ...". A
 * corrupt file: SS_OK, *out NULL, status "ignoring corrupt tuning table ...".
 * status (n bytes) may be NULL. */
ss_status ss_tune_table_open(const ss_context *ctx, const char *root, ss_tune_table **out,
                             char *status, size_t n);

// --- the table a context applies ------------------------------------------------------------

typedef void (*ss_log_fn)(void *user, const char *line);

/* Installs this layer's tuner on ctx (ss_context_set_tuner, slidesparse/linear.h):
 * the GPU linears of ctx then look for their table under root (NULL:
 * $SS_TUNING_DIR, else "tuning"), and log hears, once, what was loaded or
 * ignored. The table is opened on the first GEMM plan that needs an algorithm.
 * A context this was never called on uses the heuristics. */
ss_status ss_context_set_tuning(ss_context *ctx, const char *root, ss_log_fn log, void *user);
/* The loader's decision ("" until a lookup happened). */
const char *ss_context_tuning_status(const ss_context *ctx);
/* The entry a backend applies for a GEMM (NULL: use the heuristic). */
const ss_tune_entry *ss_context_tuned(ss_context *ctx, ss_backend b, ss_dtype in, ss_dtype out,
                                      int64_t n, int64_t k, int64_t m);
/* The tuned quant launch for (qdt, k, k_out) at the M bucket of m in ctx's
 * table (same lookup rule as the GEMM entries): 1 with *out filled, or 0 when
 * the table has none (then the automatic choice applies). */
int ss_context_tuned_quant(ss_context *ctx, ss_dtype qdt, int64_t k, int64_t k_out, int64_t m,
                           ss_quant_launch *out);
/* Forgets the table ctx applied, so the next lookup reads the file again:
 * ss_tune_run calls it after saving (a run-all tunes and then benchmarks in
 * one process; without this the benchmarks kept the table as it was before
 * tuning). Linears already planned keep their choices. */
void ss_context_tuning_reload(ss_context *ctx);
/* Removes what ss_context_set_tuning installed and frees the table (the
 * context's destroy does it too). */
void ss_context_tuning_release(ss_context *ctx);

// --- model shapes -------------------------------------------------------------------------------

typedef struct {
    char name[16]; /* "qkv", "o", "gate_up", "down" */
    int64_t n, k;
} ss_proj_shape;

/* The four projections of one layer (qkv and gate_up fused) of a config. */
ss_status ss_model_shapes(const ss_model_config *cfg, ss_proj_shape out[4]);
/* Built-in shape sets: "bitnet-2b", "llama3.2-1b", "llama3.2-3b", "qwen2.5-7b",
 * "qwen2.5-14b" (SPEC §6), and every preset (slidesparse/io.h). SS_EINVAL listing them. */
ss_status ss_preset_shapes(const char *name, ss_proj_shape out[4]);

// --- the search ------------------------------------------------------------------------------------

typedef struct {
    const char *what;      /* "coarse qkv I8 M 256" ... */
    int index, total;      /* step i (0-based) of n (shape x dtype x pattern x M) */
    const char *candidate; /* current candidate's desc, or "" */
    double elapsed_s, eta_s; /* eta < 0: unknown */
} ss_tune_progress;
typedef void (*ss_tune_progress_fn)(void *user, const ss_tune_progress *p);

typedef struct {
    ss_context *ctx;            /* CPU context: the CPU backend stands in for both */
    const ss_proj_shape *shapes;
    int n_shapes;
    const ss_dtype *dtypes;     /* SS_DTYPE_I8 / SS_DTYPE_F8_E4M3 */
    int n_dtypes;
    const ss_pattern *patterns; /* fine stage */
    int n_patterns;
    int coarse, fine;           /* which stages run */
    /* GPU contexts: the backend of the coarse (dense) and of the fine (slid)
     * stage; SS_BACKEND_CPU (0) = cuBLASLt / cuSPARSELt. E.g. SS_BACKEND_SM90DENSE
     * / SS_BACKEND_SM90SP tune those backends' tile variants x tile orders. */
    ss_backend dense_backend, sparse_backend;
    const int64_t *m_coarse;    /* NULL: 256, 1024, 4096, 16384, 32768 */
    int n_m_coarse;
    const int64_t *m_fine;      /* NULL: 64, 128, ..., 32768 */
    int n_m_fine;
    const char *root;           /* tables folder; NULL: "tuning" */
    int retune;                 /* re-time entries the table already has */
    int warmup, repeat;         /* per candidate; <= 0: 25 / 50 */
    int no_flush;               /* skip the L2 flush between iterations */
    int log_candidates;         /* every timed candidate, not only the table's top 3, to log */
    uint64_t seed;
    ss_tune_progress_fn progress;
    void *user;
    ss_log_fn log;              /* skipped combinations, the table decision */
} ss_tune_opts;

typedef struct {
    int tuned, reused, skipped;
    int launches_tuned;         /* quant launch entries measured (GPU) */
    char path[1024];            /* the table written */
} ss_tune_result;

/* Tunes every requested (stage, shape, dtype, pattern, M) that the table does
 * not hold yet (all with retune) and saves the table after each shape. A
 * combination the device cannot run is skipped with its reason (log). */
ss_status ss_tune_run(const ss_tune_opts *o, ss_tune_result *res);

/* Seconds on a monotonic clock. */
double ss_monotonic_s(void);

#ifdef __cplusplus
}
#endif
#endif
