/* slidesparse/pipeline.h — run-all: the whole benchmark pipeline (tasks 1-9)
 * in one resumable run, with a log, a status JSON and a Markdown report with
 * gnuplot plots (SPEC §8).
 *
 * Tasks (each calls the library function the matching CLI command calls):
 *   1 prepare base checkpoints   ss_synth (or a given / present HF checkpoint)
 *                                + ss_quantize_checkpoint per dtype
 *   2 convert                    ss_convert_checkpoint to every task-7 pattern
 *   3 tune                       ss_tune_run, coarse + fine
 *   4 prefill, 5 decode          ss_throughput_run per M, dense + every pattern,
 *                                throughput_repeats times (ss_throughput_append)
 *   6 kernel dense, 7 kernel 2_4..2_10, 8 kernel 2_12..2_inf   ss_bench_kernel
 *   9 accuracy                   ss_eval_perplexity of the dense checkpoint and every
 *                                task-7 pattern on one fixed sequence of 256 token ids
 *                                drawn from the seed (windows of 128, not overlapping)
 *
 * Outputs under `out`:
 *   checkpoints/<Stem>-BF16, <Stem>-INT8, <Stem>-FP8   (unless --model / config "base")
 *   checkpoints_slidesparse/<Stem>-<DT>-SlideSparse-2_L
 *   tuning/<GPU>_cc<cc>_<toolchain>/tuning.json
 *   throughput_benchmark_results/{prefill,decode}/<GPU>_cc<cc>_<DT>_<toolchain>/
 *       {<dense backend>,<sparse backend>/2_L}/<Stem>_{prefill,decode}.csv
 *   kernel_task<6|7|8>/benchmark_kernel/{cuBLASLt,cuSPARSELt}/<GPU>_cc<cc>_<DT>_<toolchain>/
 *       <Stem>_{qkv,o,gate_up,down,total}.csv    (one folder per task: each task
 *       measures its own dense baseline, so its speedups are self-consistent)
 *   accuracy/<GPU>_cc<cc>_<DT>_<toolchain>/<Stem>_perplexity.csv   columns gpu, cc,
 *       dtype, toolchain, backend, model, pattern ("dense" or 2_L), tokens,
 *       context, stride, seed, mean_nll, perplexity, seconds
 *   <name>_<stamp>.log, <name>_<stamp>_status.json, plots/, <GPU>_report_<date>.md
 *
 * Status JSON (rewritten atomically after every state change):
 *   {"format": "slidesparse-run-all", "version": 1, "name": ..., "stamp": ...,
 *    "log": file, "scale": "quick"|"full", "embedded_default": bool,
 *    "device": {"gpu", "cc", "cublaslt", "cusparselt", "toolchain", "describe"},
 *    "started": iso, "updated": iso, "total_seconds": s,
 *    "config": CONFIG (the schema below, every field present),
 *    "checkpoints": [{"role": "base"|"quantized"|"slid", "path", "origin", "reused": bool}],
 *    "tuning": {"tuned", "reused", "skipped", "path"},
 *    "tasks": [{"task": 1..9, "name", "state": "pending"|"running"|"done"|"skipped"|"failed",
 *               "seconds", "reason" (skipped), "error" (failed),
 *               "counts": {"done", "skipped", "failed"}, "notes": [string]}]}
 *
 * Config file (JSON; every key optional; wrong type or value: one-line error):
 *   {"out": "results", "name": "run_all", "tasks": [1,2,3,4,5,6,7,8,9],
 *    "models": ["bitnet-2b"], "dtypes": ["int8","fp8"],
 *    "sparsity": ["2_4","2_6","2_8","2_10"],             task 2/3/4/5/7/9 patterns
 *    "sparsity_task8": ["2_12","2_14","2_16","2_inf"],
 *    "m_prefill": [512,...,32768], "m_decode": [64,128,256,512],
 *    "m_kernel": [64,...,16384], "m_tune_coarse": [...], "m_tune_fine": [...],
 *    "tune_stages": ["coarse","fine"], "scale": "full"|"quick",
 *    "backend": "auto"|"gpu"|"cpu", "device": 0, "base": "DIR" (task 1 input),
 *    "checkpoints": "DIR" (default <out>/checkpoints), "warmup": 25, "repeat": 100,
 *    "throughput_repeats": 3 (1..16; 1 in the embedded default),
 *    "kv_memory_mb": 1024 (CPU KV pool), "gpu_memory_fraction": 0.8, "seed": 1}
 * throughput_repeats: tasks 4 and 5 measure each (model, backend, pattern, M)
 * point that many times, one CSV row per run; the speedup CSV and the report
 * take the median of the runs and show their spread.
 * Models are presets (bitnet-2b, llama3.2-1b, qwen2.5-7b, tiny-bitnet, ...).
 *
 * The library never prints: log lines and progress go through callbacks.
 */
#ifndef SLIDESPARSE_PIPELINE_H
#define SLIDESPARSE_PIPELINE_H

#include "slidesparse/core.h"
#include "slidesparse/sparse.h"
#include "slidesparse/tune.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SS_PIPE_TASKS 9
#define SS_PIPE_MAX_LIST 16
#define SS_PIPE_MAX_MODELS 4
#define SS_PIPE_MAX_REPEATS 16 /* throughput_repeats: 1..16 */

typedef struct {
    char out[1024];
    char name[64];
    int tasks[SS_PIPE_TASKS + 1];      /* tasks[k] = 1: task k runs (index 0 unused) */
    char models[SS_PIPE_MAX_MODELS][32];
    int n_models;
    ss_dtype dtypes[2];
    int n_dtypes;
    ss_pattern sparsity[SS_PIPE_MAX_LIST];
    int n_sparsity;
    ss_pattern sparsity8[SS_PIPE_MAX_LIST];
    int n_sparsity8;
    int64_t m_prefill[SS_PIPE_MAX_LIST], m_decode[SS_PIPE_MAX_LIST], m_kernel[SS_PIPE_MAX_LIST];
    int n_prefill, n_decode, n_kernel;
    int64_t m_coarse[SS_PIPE_MAX_LIST], m_fine[SS_PIPE_MAX_LIST];
    int n_coarse, n_fine;
    int coarse, fine;
    int quick;                          /* --scale quick: 1/16 of the prompts */
    int backend;                        /* 0 auto, 1 gpu, 2 cpu */
    int device;
    char base[1024];                    /* "" or a BF16 HF checkpoint for the first model */
    char checkpoints[1024];             /* "" = <out>/checkpoints */
    int warmup, repeat;
    int throughput_repeats;             /* runs of each task 4/5 point (1: the embedded default) */
    double kv_memory_mb, gpu_memory_fraction;
    uint64_t seed;
    int embedded;                       /* 1: the no-GPU embedded default */
} ss_pipe_config;

/* The SPEC §8 defaults (BitNet-2B, INT8 + FP8, SPEC M lists, full scale).
 * gpu = 0: the embedded default (tiny-bitnet, CPU backend, short M lists,
 * quick scale). */
void ss_pipe_config_default(ss_pipe_config *c, int gpu);
/* Applies a JSON config text on top of c (label names it in errors). */
ss_status ss_pipe_config_parse(const char *json, size_t len, const char *label, ss_pipe_config *c);
ss_status ss_pipe_config_load(const char *path, ss_pipe_config *c);
/* List setters shared by the CLI and the config file (SS_EINVAL, one line). */
ss_status ss_pipe_parse_tasks(const char *s, ss_pipe_config *c);
ss_status ss_pipe_parse_models(const char *s, ss_pipe_config *c);
ss_status ss_pipe_parse_dtypes(const char *s, ss_pipe_config *c);
ss_status ss_pipe_parse_sparsity(const char *s, ss_pipe_config *c);
/* Cross-field checks; creates `out` and proves it writable (SS_EIO). */
ss_status ss_pipe_config_check(ss_pipe_config *c);
/* JSON text of c (malloc'd), in the config-file schema. */
ss_status ss_pipe_config_dump(const ss_pipe_config *c, char **out);

// --- status -------------------------------------------------------------------------

typedef enum {
    SS_TASK_PENDING = 0,
    SS_TASK_RUNNING,
    SS_TASK_DONE,
    SS_TASK_SKIPPED,
    SS_TASK_FAILED,
    SS_TASK_STATE_COUNT
} ss_task_state;

const char *ss_task_state_name(ss_task_state s);
const char *ss_pipe_task_name(int task); /* 1..9 */

#define SS_PIPE_MAX_NOTES 32
#define SS_PIPE_MAX_CKPTS 64

typedef struct {
    int task;
    ss_task_state state;
    double seconds;
    char reason[512];   /* skipped */
    char error[1024];   /* failed */
    int n_done, n_skipped, n_failed;
    char notes[SS_PIPE_MAX_NOTES][256];
    int n_notes;
} ss_task_status;

typedef struct {
    char role[16];      /* base, quantized, slid */
    char path[1024];
    char origin[128];
    int reused;
} ss_ckpt_record;

typedef struct {
    char name[64], stamp[32], log[128];
    char started[32], updated[32];
    double total_seconds;
    int quick, embedded;
    ss_tune_key key;
    char describe[512];
    ss_pipe_config config;
    ss_task_status tasks[SS_PIPE_TASKS + 1]; /* [1..9] */
    ss_ckpt_record ckpts[SS_PIPE_MAX_CKPTS];
    int n_ckpts;
    int tune_tuned, tune_reused, tune_skipped;
    char tune_path[1024];
} ss_pipe_status;

ss_status ss_pipe_status_dump(const ss_pipe_status *st, char **out);
ss_status ss_pipe_status_parse(const char *json, size_t len, const char *label, ss_pipe_status *st);
/* Atomic rewrite (temp + fsync + rename): a kill or a full disk leaves the
 * previous file. */
ss_status ss_pipe_status_save(const ss_pipe_status *st, const char *path);
ss_status ss_pipe_status_load(const char *path, ss_pipe_status *st);
/* The newest "*_status.json" under dir (by its stamp), into path. SS_EIO when none. */
ss_status ss_pipe_status_find(const char *dir, char *path, size_t n);
/* Resume rule: done and skipped tasks are kept; running (interrupted),
 * failed and pending tasks are reset to pending with their counts cleared. */
void ss_pipe_status_prepare_resume(ss_pipe_status *st);

// --- the run ------------------------------------------------------------------------

typedef struct {
    int task, k, n;        /* task number; k-th of n tasks to run (1-based) */
    const char *name;
    const char *what;      /* the task's own progress ("" when none) */
    double task_frac;      /* 0..1, < 0 unknown */
    double elapsed_s, eta_s; /* whole run; eta < 0 unknown */
} ss_pipe_progress;

typedef void (*ss_pipe_progress_fn)(void *user, const ss_pipe_progress *p);

typedef struct {
    ss_pipe_config config;
    int resume;
    /* > 0: start no task once this many seconds have passed in this process;
     * the rest stay pending for a later --resume (one time-limited slice of
     * a long run). Not part of the run's configuration. */
    double stop_after_s;
    /* With resume: tasks (1..9, selected ones) that run again although they
     * are done, e.g. after a fix; their CSV rows are replaced per M. */
    int redo[SS_PIPE_TASKS + 1];
    ss_log_fn log;              /* every log line (also written to the log file) */
    ss_pipe_progress_fn progress;
    void *user;
} ss_pipe_opts;

typedef struct {
    int n_done, n_skipped, n_failed;
    int n_pending;  /* left for --resume by stop_after_s */
    char status_path[1200], log_path[1200], report_path[1200];
    char first_failure[1100]; /* "task 1: <its error>" of the first failed task, or "" */
} ss_pipe_result;

/* Runs the configured tasks, then writes the report. SS_OK when the run went
 * through (failed tasks are in the result and the status); an error when it
 * could not start (bad output folder, --resume without a status file). */
ss_status ss_pipe_run(const ss_pipe_opts *o, ss_pipe_result *res);

// --- report -------------------------------------------------------------------------

/* Regenerates <GPU>_report_<date>.md (and plots/) in dir from its newest
 * status JSON and the CSVs under it. report (n bytes) gets the path. Plots
 * need gnuplot on PATH; without it the report says so. */
ss_status ss_pipe_report(const char *dir, char *report, size_t n);

#ifdef __cplusplus
}
#endif
#endif
