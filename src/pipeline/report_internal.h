/* Internal: the pieces of the run-all report (src/pipeline/report*.c).
 *   report.c          ss_pipe_report: reads the folder, puts the sections in order
 *   report_points.c   measured points: collected from the CSVs, ordered, queried
 *   report_summary.c  "Summary": best speedup per stage / dtype / model / pattern, verdict
 *   report_spread.c   repeated measurements: statistics, "Measurement spread", busy warning
 *   report_tables.c   per-stage tables (prefill, decode, kernels) and conclusions
 *   report_accuracy.c "Accuracy": perplexity of the dense and pruned models (task 9)
 *   report_run.c      the run's own record: header, tasks, checkpoints, tuning, skipped / failed
 *   report_plots.c    gnuplot scripts and PNGs of speedup / throughput vs M
 */
#ifndef SS_PIPELINE_REPORT_INTERNAL_H
#define SS_PIPELINE_REPORT_INTERNAL_H

#include <stdint.h>

#include "pipeline_internal.h"

// --- text buffer -------------------------------------------------------------------------------

typedef struct {
    char *s;
    size_t len, cap;
    int failed; /* out of memory: the report fails */
} sbuf;

void sbuf_put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes text atomically; 1 on success. */
int report_write_text(const char *path, const char *text);

// --- measured points -----------------------------------------------------------------------------

enum { ST_PREFILL = 0, ST_DECODE, ST_GEMM, ST_LINEAR, ST_COUNT };
extern const char *const report_stage_title[ST_COUNT]; /* "prefill", ..., "kernel whole linear" */
extern const char *const report_stage_file[ST_COUNT];  /* "prefill", ..., "kernel_linear" */

/* Measurements of one point beyond the first are kept as repeats: the
 * dense and native 2:4 sides are measured by every kernel task (6, 7, 8),
 * and a throughput CSV holds an M once per run (config throughput_repeats). */
enum { REP_MAX = SS_PIPE_MAX_REPEATS };

typedef struct {
    int stage, task;
    char dev[160], model[64], variant[32];
    char gpu[128], dtype[8]; /* GPU name as the device reports it, "INT8" / "FP8"; "" unknown */
    int64_t m;
    double tps, rps, el; /* throughput: after points_finish, the median of the runs */
    double us, ideal;    /* kernel: the first source's (task 7/8 before task 6) */
    double speedup;      /* vs dense at the same (stage, dev, model, M); 0 unknown */
    int n_rep;           /* measurements of this point (first source and repeats) */
    double rep[REP_MAX]; /* their tokens/s (prefill, decode) or µs (kernel) */
    double rep_rps[REP_MAX], rep_el[REP_MAX]; /* throughput: their requests/s, elapsed s */
} point;

typedef struct {
    point *p;
    int n, cap;
} points;

/* The measured value of p: tokens/s (higher is better) or µs (lower). */
static inline double point_value(const point *p) { return p->stage <= ST_DECODE ? p->tps : p->us; }

/* <out>/throughput_benchmark_results/<stage>/<dev>/<backend>/[<2_L>/]<Model>_<stage>.csv */
ss_status points_collect_throughput(points *ps, const char *out, int stage);
/* <out>/kernel_task<k>/benchmark_kernel/<side>/<dev>/<Model>_total.csv */
ss_status points_collect_kernel(points *ps, const char *out, int task);
/* Sorts (stage, dev, model, M, variant), sets each throughput point's tokens/s,
 * requests/s and elapsed s to the medians of its runs, and computes each
 * speedup over dense (throughput: median over median). */
void points_finish(points *ps);
/* GPU name and dtype of points known only by their folder name. */
void points_label(points *ps, const ss_pipe_status *st);

/* The dense point in p's cell (same stage, dev, model, M), or NULL. */
const point *points_dense_of(const points *ps, const point *p);
/* Distinct (dev, model) groups of a stage, in sorted order: calls fn per group [lo, hi). */
typedef void (*group_fn)(void *u, const points *ps, int stage, int lo, int hi);
void points_for_groups(const points *ps, int stage, group_fn fn, void *u);
/* The variants of [lo, hi) in order (dense first, then 2_4 < 2_6 < ... < 2_inf). */
int points_variants(const points *ps, int lo, int hi, char v[][32], int max);
/* The point of variant at M in [lo, hi), or NULL. */
const point *points_find(const points *ps, int lo, int hi, int64_t m, const char *variant);
/* Ideal speedup N/(N-1) of a variant name ("2_6" -> 1.5, "2_inf" -> 1); 0 when not a pattern. */
double report_ideal_of(const char *variant);
/* Pattern order of variant names for sorting: dense first, then by L, 2_inf last. */
int report_variant_cmp(const char *a, const char *b);

// --- sections ---------------------------------------------------------------------------------------

/* Repeats differing by more than this fraction of their median mark a busy machine. */
#define SPREAD_WARN 0.10

/* The median of v[0..n) (n >= 1; v is reordered). */
double report_median(double *v, int n);
/* min / median / max of p's measurements; returns their count. */
int spread_stats(const point *p, double *mn, double *med, double *mx);
/* (max - min) / median of p's repeats; 0 with one measurement. */
double spread_of(const point *p);
/* The repeated points spreading more than SPREAD_WARN: their count, the
 * number of repeated points, and the worst one. */
int spread_busy_points(const points *ps, int *repeated, const point **worst);
void report_busy_warning(sbuf *b, const points *ps);

void report_summary_section(sbuf *b, const points *ps, const ss_pipe_status *st);
void report_spread_section(sbuf *b, const points *ps);
void report_throughput_table(void *b, const points *ps, int stage, int lo, int hi);
void report_kernel_table(void *b, const points *ps, int stage, int lo, int hi);
void report_conclusions(sbuf *b, const points *ps);
void report_header(sbuf *b, const ss_pipe_status *st, const char *status_file);
void report_task_table(sbuf *b, const ss_pipe_status *st);
void report_prep_table(sbuf *b, const ss_pipe_status *st);
void report_tuning_section(sbuf *b, const ss_pipe_status *st, const char *dir);
void report_skip_lists(sbuf *b, const ss_pipe_status *st);
/* "## Accuracy": <dir>/accuracy/<dev>/<Model>_perplexity.csv. */
ss_status report_accuracy_section(sbuf *b, const char *dir);
/* "## Plots": writes <dir>/plots/ and links the PNGs gnuplot drew. */
ss_status report_plots_section(sbuf *b, const points *ps, const char *dir);

#endif
