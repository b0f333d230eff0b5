/* Internal (kernel benchmark): the GPU's SM clock, board power and clock
 * event ("throttle") reasons read through NVML while a timed loop runs, and
 * the summary of those samples that goes into each CSV row (when the sparse
 * path is slower than expected, it says whether it ran at a lower,
 * power-capped clock).
 *
 * NVML is opened with dlopen at run time (nvml_abi.h): no build dependency;
 * on a machine without the driver ss_clocks_open returns no handle and says
 * why, and the benchmark leaves the clock columns empty.
 */
#ifndef SS_BENCH_CLOCKS_H
#define SS_BENCH_CLOCKS_H

#include <stddef.h>

#include "slidesparse/bench.h"

#ifdef __cplusplus
extern "C" { /* dev/wgmma_peak.cu samples with it too */
#endif

/* One reading. */
typedef struct {
    unsigned sm_mhz;           /* 0: the clock query failed */
    double power_w;            /* < 0: the power query failed */
    unsigned long long reasons; /* nvmlClocksEventReasons bits */
    int reasons_ok;            /* 0: the reasons query failed */
} ss_clock_sample;

/* Running sums of readings (pure; zero-initialize). */
typedef struct {
    int n;                     /* readings with an SM clock */
    double sum_mhz;
    unsigned min_mhz;
    int n_power;
    double sum_w;
    int n_reasons, n_capped;
} ss_clock_stats;

void ss_clock_stats_add(ss_clock_stats *st, const ss_clock_sample *s);
/* Mean / min SM clock, mean power, capped fraction (SS_NVML_REASONS_CAPPED:
 * SW power cap, HW slowdown, SW / HW thermal, HW power brake);
 * samples 0 when no reading had a clock. */
ss_bench_clock ss_clock_stats_summary(const ss_clock_stats *st);
/* ss_clock_stats_add over n readings, then the summary. */
ss_bench_clock ss_clock_summarize(const ss_clock_sample *s, int n);
/* a and b merged as if their samples had been summarized together: means
 * weighted by (clock) samples, min of the mins; exact when every query of a
 * reading succeeded, which is how NVML behaves on one GPU (a query it does
 * not serve fails every time). */
ss_bench_clock ss_clock_merge(ss_bench_clock a, ss_bench_clock b);

// --- the NVML sampler ------------------------------------------------------------------------

typedef struct ss_clocks ss_clocks;

/* NVML for the context's GPU (matched by PCI bus id, else by ordinal). On a
 * CPU context, without libnvidia-ml or when NVML refuses, *out = NULL and
 * `why` says why (this is not an error: the benchmark runs without clocks);
 * SS_ENOMEM only. On success `why` names the power source. */
ss_status ss_clocks_open(ss_context *ctx, ss_clocks **out, char *why, size_t n);
void ss_clocks_close(ss_clocks *c);
/* One reading now (a few to a few hundred microseconds of driver calls). */
void ss_clocks_read(ss_clocks *c, ss_clock_sample *out);

/* The fixture's probe target: reads into stats (user = ss_clock_recorder *). */
typedef struct {
    ss_clocks *clocks;
    ss_clock_stats stats;
} ss_clock_recorder;
void ss_clock_recorder_sample(void *user);

#ifdef __cplusplus
}
#endif

#endif
