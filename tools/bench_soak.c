/* bench decode --soak: repeat the decode workload of one M until the wall time
 * is spent and check that memory stops growing after the first repetition
 * (the target: no memory growth across a 10-minute decode run). Device memory is
 * cudaMemGetInfo's total - free (through ss_device_memory), host memory the
 * process's VmRSS / VmHWM from /proc/self/status. See bench_soak.h for the
 * tolerances and why. */
#include "bench_soak.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/cuda/engine_gpu.h"
#include "slidesparse/bench.h"

#define MB 1048576.0

/* Under AddressSanitizer freed memory sits in its quarantine (up to 256 MB by
 * default) instead of going back to malloc, so the RSS climbs over the first
 * repetitions without any leak: the host verdict is printed but not judged
 * (LeakSanitizer reports real host leaks at exit). */
#if defined(__SANITIZE_ADDRESS__)
#define SOAK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SOAK_ASAN 1
#endif
#endif
#ifndef SOAK_ASAN
#define SOAK_ASAN 0
#endif

// --- memory probes ----------------------------------------------------------------------

typedef struct {
    double rss_mb, peak_mb; /* VmRSS, VmHWM */
} host_mem;

/* VmRSS and VmHWM of this process; 0 when /proc/self/status lacks them. */
static int host_memory(host_mem *h) {
    memset(h, 0, sizeof *h);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        long long kb;
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) {
            h->rss_mb = (double)kb * 1024 / MB;
            found |= 1;
        } else if (sscanf(line, "VmHWM: %lld kB", &kb) == 1) {
            h->peak_mb = (double)kb * 1024 / MB;
            found |= 2;
        }
    }
    fclose(f);
    return found == 3;
}

/* Device memory in use (total - free), MB; on a CPU context *has = 0. */
static ss_status device_used(ss_context *ctx, int *has, double *mb) {
    *has = 0;
    *mb = 0;
    if (ss_context_device(ctx) < 0)
        return SS_OK;
    size_t fr = 0, tot = 0;
    ss_status s = ss_device_memory(ctx, &fr, &tot);
    if (s != SS_OK)
        return s;
    *has = 1;
    *mb = (double)(tot - fr) / MB;
    return SS_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// --- the repetitions ----------------------------------------------------------------------

typedef struct {
    int rep;            /* 1-based */
    double elapsed_s;   /* wall time since the soak began */
    double tokens_per_s;
    double dev_mb;      /* device used, when the context has a device */
    host_mem host;
} soak_sample;

typedef struct {
    soak_sample *v; // (n)
    int n, cap;
    int has_dev;
} soak_log;

static int log_add(soak_log *l, const soak_sample *s) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        soak_sample *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return 0;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *s;
    return 1;
}

/* One line per repetition; the deltas are against the first repetition. */
static void print_sample(const soak_log *l, const soak_sample *s) {
    const soak_sample *b = &l->v[0];
    printf("soak rep %d: elapsed %.2f s, %.1f tokens/s", s->rep, s->elapsed_s, s->tokens_per_s);
    if (l->has_dev)
        printf(", device used %.1f MB, delta %+.1f MB", s->dev_mb, s->dev_mb - b->dev_mb);
    printf(", host RSS %.1f MB, delta %+.1f MB, peak %.1f MB", s->host.rss_mb, s->host.rss_mb - b->host.rss_mb,
           s->host.peak_mb);
    if (s->rep == 1)
        printf(" (baseline)");
    printf("\n");
    fflush(stdout);
}

/* <out>/soak_<M>.csv with every repetition so far (device columns empty on
 * the CPU); temp + rename, so a kill leaves the previous complete file. */
static ss_status save_log(const soak_log *l, int64_t m, const char *path) {
    ss_csv c = {0};
    ss_csv_line(&c, "M,repetition,elapsed_s,tokens_per_s,device_used_mb,device_delta_mb,host_rss_mb,"
                    "host_rss_delta_mb,host_peak_rss_mb");
    const soak_sample *b = &l->v[0];
    for (int i = 0; i < l->n; i++) {
        const soak_sample *s = &l->v[i];
        char dev[64] = ",";
        if (l->has_dev)
            snprintf(dev, sizeof dev, "%.1f,%.1f", s->dev_mb, s->dev_mb - b->dev_mb);
        ss_csv_line(&c, "%lld,%d,%.3f,%.2f,%s,%.1f,%.1f,%.1f", (long long)m, s->rep, s->elapsed_s,
                    s->tokens_per_s, dev, s->host.rss_mb, s->host.rss_mb - b->host.rss_mb, s->host.peak_mb);
    }
    ss_status st = ss_csv_save(&c, path);
    ss_csv_free(&c);
    return st;
}

/* Measures one point: device used (when there is a device) and host memory. */
static int probe(const bench_soak_opts *o, soak_sample *s, int *has_dev) {
    ss_status st = device_used(o->ctx, has_dev, &s->dev_mb);
    if (st != SS_OK)
        return cli_lib_error(o->cmd, st);
    if (!host_memory(&s->host))
        return cli_error(o->cmd, "soak: /proc/self/status has no VmRSS / VmHWM lines to read the host memory from");
    return 0;
}

/* The verdict on the last repetition against the first; returns the exit status. */
static int verdict(const bench_soak_opts *o, const soak_log *l) {
    const soak_sample *b = &l->v[0], *e = &l->v[l->n - 1];
    const char *what = l->has_dev ? "device memory" : "host RSS";
    double x = l->has_dev ? b->dev_mb : b->host.rss_mb, y = l->has_dev ? e->dev_mb : e->host.rss_mb;
    double tol = SOAK_DEVICE_TOL_MB;
    if (!l->has_dev) {
        tol = SOAK_HOST_TOL_FRAC * x;
        if (tol < SOAK_HOST_TOL_MB)
            tol = SOAK_HOST_TOL_MB;
    }
    int judged = l->has_dev || !SOAK_ASAN;
    printf("soak: %d repetitions in %.1f s, %s after first repetition %.1f MB, at end %.1f MB, growth %.1f MB",
           l->n, e->elapsed_s, what, x, y, y - x);
    if (judged)
        printf(" (tolerance %.1f MB)\n", tol);
    else
        printf(" (not judged: AddressSanitizer's quarantine keeps freed memory resident)\n");
    if (l->has_dev)
        printf("soak: host RSS after first repetition %.1f MB, at end %.1f MB, growth %.1f MB, peak %.1f MB"
               " (not judged on a GPU context)\n",
               b->host.rss_mb, e->host.rss_mb, e->host.rss_mb - b->host.rss_mb, e->host.peak_mb);
    fflush(stdout);
    if (judged && y - x > tol) {
        cli_error(o->cmd, "soak: %s grew by %.1f MB over %d repetitions after the first, beyond the tolerance of %.1f MB",
                  what, y - x, l->n - 1, tol);
        return SOAK_EXIT_GROWTH;
    }
    return 0;
}

int bench_soak(const bench_soak_opts *o) {
    const ss_workload *w = o->w;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/soak_%lld.csv", o->out_dir, (long long)w->m) >= (int)sizeof path)
        return cli_error(o->cmd, "--out '%.64s...': path too long", o->out_dir);
    soak_log l = {0};
    soak_sample s = {0};
    int rc = probe(o, &s, &l.has_dev);
    if (rc)
        return rc;
    printf("soak: M %lld, at least 2 repetitions, then until %g s have passed\n", (long long)w->m, o->seconds);
    printf("soak: after load:");
    if (l.has_dev)
        printf(" device used %.1f MB,", s.dev_mb);
    printf(" host RSS %.1f MB (peak %.1f MB)\n", s.host.rss_mb, s.host.peak_mb);
    fflush(stdout);

    double t0 = now_s();
    for (int rep = 1;; rep++) {
        ss_throughput_row row;
        ss_status st = ss_throughput_run(o->model, o->kv_blocks, w, w->num_prompts, o->seed, o->serve, &row);
        if (st != SS_OK) {
            rc = cli_lib_error(o->cmd, st);
            goto done;
        }
        if (row.stats.stopped) {
            if (l.n)
                cli_error(o->cmd, "interrupted at soak repetition %d; %s holds the %d completed ones", rep, path, l.n);
            else
                cli_error(o->cmd, "interrupted at soak repetition 1; nothing written");
            rc = 130;
            goto done;
        }
        s = (soak_sample){.rep = rep, .elapsed_s = now_s() - t0, .tokens_per_s = row.tokens_per_s};
        int has_dev;
        if ((rc = probe(o, &s, &has_dev)))
            goto done;
        if (!log_add(&l, &s)) {
            rc = cli_error(o->cmd, "soak: out of memory for the log of %d repetitions", rep);
            goto done;
        }
        print_sample(&l, &s);
        int64_t captures = 0, replays = 0;
        ss_engine_gpu_graph_counts(o->model, &captures, &replays);
        if (captures || replays) /* captures after the first repetition would be new graph memory */
            printf("  decode CUDA graphs so far: %lld captures, %lld replays\n", (long long)captures,
                   (long long)replays);
        if ((st = save_log(&l, w->m, path)) != SS_OK) {
            rc = cli_lib_error(o->cmd, st);
            goto done;
        }
        if (rep >= 2 && s.elapsed_s >= o->seconds)
            break;
    }
    printf("wrote %s\n", path);
    rc = verdict(o, &l);
done:
    free(l.v);
    return rc;
}
