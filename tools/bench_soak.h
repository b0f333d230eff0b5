/* `slidesparse bench decode --soak SECONDS` (bench_soak.c): the decode
 * workload of one M served again and again, with the memory of the device
 * and of the process after every repetition, and a verdict on its growth. */
#ifndef SS_BENCH_SOAK_H
#define SS_BENCH_SOAK_H

#include "cli.h"
#include "slidesparse/serve.h"

/* Tolerances of the verdict (README / --help state them):
 *  device: used memory (cudaMemGetInfo total - free) may not grow by more than
 *    1 MB from the end of the first repetition to the end of the last. The
 *    driver hands out memory in pages of 2 MB or more, so any allocation that
 *    outlives a repetition shows as >= 2 MB; the first repetition is the
 *    baseline because it grows scratch and captures the decode graphs.
 *  host (CPU context only, no device memory): VmRSS may grow by at most
 *    max(16 MB, 2% of the RSS after the first repetition). glibc malloc keeps
 *    freed small blocks in its per-thread arenas and trims them lazily, and
 *    its dynamic mmap threshold moves buffers up to 32 MB that were mapped in
 *    the first repetition onto the heap in later ones, so a few MB of RSS
 *    drift is no leak; a leak of the serving loop (KV pool, prompts, per-step
 *    buffers) repeats every repetition and exceeds this within minutes.
 *    Not judged in an AddressSanitizer build (its quarantine holds freed
 *    memory resident; LeakSanitizer checks host leaks there). */
#define SOAK_DEVICE_TOL_MB 1.0
#define SOAK_HOST_TOL_MB 16.0
#define SOAK_HOST_TOL_FRAC 0.02
/* Exit status when memory grew beyond the tolerance. */
#define SOAK_EXIT_GROWTH 4

typedef struct {
    const char *cmd;            /* "bench decode", for the error lines */
    ss_context *ctx;
    ss_model *model;
    int32_t kv_blocks;
    const ss_workload *w;
    uint64_t seed;
    double seconds;             /* wall time after which no repetition starts */
    const char *out_dir;        /* <out_dir>/soak_<M>.csv */
    const ss_serve_opts *serve; /* stop flag (Ctrl-C), profile */
} bench_soak_opts;

/* Runs at least two repetitions of ss_throughput_run on o->w, then more until
 * o->seconds of wall time have passed (checked after each), printing the
 * memory after load and after every repetition and the final verdict;
 * rewrites <out_dir>/soak_<M>.csv atomically after every repetition. Returns
 * the exit status: 0, 1 (2 for bad input) on a library error, SOAK_EXIT_GROWTH
 * when memory grew beyond the tolerance, 130 when stopped by Ctrl-C. */
int bench_soak(const bench_soak_opts *o);

#endif
