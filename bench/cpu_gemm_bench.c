/* cpu_gemm_bench — throughput of the CPU reference linear (backend "cpu").
 *
 * Build (not part of the CMake build; needs the static library):
 *   cmake --build BUILD --target slidesparse_static
 *   cc -O3 -fopenmp -Iinclude -Isrc bench/cpu_gemm_bench.c BUILD/libslidesparse.a -ljansson -lm \
 *      -o /tmp/cpu_gemm_bench
 * Run:
 *   /tmp/cpu_gemm_bench [threads]        (default 2: what CI machines have)
 *
 * For each shape it times the GEMM stage alone (ss_linear_gemm on quantized
 * activations) and the whole forward (quant + GEMM + dequant, BF16 out), and
 * prints ms and GOPS = 2*M*N*K / time with K the layer's logical K (for slid
 * patterns the GEMM does 2*M*N*K' operations; that rate is printed too).
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slidesparse.h"

#define CHECK(x)                                                                  \
    do {                                                                          \
        ss_status s_ = (x);                                                       \
        if (s_ != SS_OK) {                                                        \
            fprintf(stderr, "%s: %s: %s\n", #x, ss_status_name(s_), ss_last_error()); \
            exit(1);                                                              \
        }                                                                         \
    } while (0)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    const char *label;
    ss_dtype wdt;
    const char *pattern;
    int64_t m, n, k;
} shape;

static uint64_t rng_state = 12345;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

static void cpu_banner(int threads) {
    char model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    if (f)
        fclose(f);
    __builtin_cpu_init();
    printf("# slidesparse %s cpu_gemm_bench: %s, %d threads, avx2 %d, avx512bw %d\n",
           SS_VERSION_STRING, model, threads, __builtin_cpu_supports("avx2"),
           __builtin_cpu_supports("avx512bw"));
}

/* Runs fn-equivalent (gemm or forward) until 0.5 s have passed; ms per call. */
static double time_stage(ss_linear *lin, int forward, const uint16_t *x, const void *q,
                         int64_t m, void *d, void *y) {
    int iters = 0;
    double t0 = now(), t;
    do {
        if (forward)
            CHECK(ss_linear_forward(lin, x, m, y));
        else
            CHECK(ss_linear_gemm(lin, q, m, d));
        iters++;
        t = now() - t0;
    } while (t < 0.5 || iters < 2);
    return 1e3 * t / iters;
}

static void run(ss_context *ctx, const shape *s) {
    ss_pattern p = SS_PATTERN_DENSE;
    if (strcmp(s->pattern, "dense"))
        CHECK(ss_pattern_parse(s->pattern, &p));
    int64_t k = s->k, kq = ss_slid_k(p, k), m = s->m, n = s->n;
    /* A ternary-like weight (BitNet): -1/0/+1, pruned and slid for sparse patterns. */
    uint8_t *w = malloc((size_t)(n * k)), *ws = malloc((size_t)(n * kq));
    for (int64_t i = 0; i < n * k; i++) {
        int v = (int)(rnd() % 3) - 1;
        w[i] = s->wdt == SS_DTYPE_I8 ? (uint8_t)(int8_t)v : ss_f32_to_e4m3((float)v);
    }
    const void *wgiven = w;
    if (!ss_pattern_is_dense(p)) {
        CHECK(ss_prune(s->wdt, w, n, k, p, SS_DTYPE_F32, NULL));
        CHECK(ss_slide(s->wdt, w, n, k, p, ws));
        wgiven = ws;
    }
    float scale = 0.01f;
    ss_linear_desc d = ss_linear_desc_default("bench", n, k, s->wdt);
    d.pattern = p;
    d.per_channel = 0;
    ss_linear_weights wt = {wgiven, &scale, NULL};
    ss_linear *lin;
    CHECK(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &wt, &lin));

    int64_t mp = ss_linear_m_pad(m), qc = ss_linear_q_cols(lin);
    uint16_t *x = malloc((size_t)(m * k) * 2);
    for (int64_t i = 0; i < m * k; i++)
        x[i] = ss_f32_to_bf16((float)((int)(rnd() % 2001) - 1000) / 500.0f);
    void *q = malloc((size_t)(mp * qc)), *dd = malloc((size_t)(m * n) * 4);
    float *sa = malloc((size_t)mp * sizeof *sa);
    uint16_t *y = malloc((size_t)(m * n) * 2);
    CHECK(ss_linear_quant(lin, x, m, q, sa));

    double tg = time_stage(lin, 0, x, q, m, dd, y), tf = time_stage(lin, 1, x, q, m, dd, y);
    double ops = 2.0 * (double)m * (double)n * (double)k;
    printf("%-12s %-7s %-6s M=%-5lld N=%-6lld K=%-5lld K'=%-6lld  gemm %9.3f ms %7.1f GOPS"
           " (%7.1f on K')   forward %9.3f ms %7.1f GOPS\n",
           s->label, ss_dtype_name(s->wdt), s->pattern, (long long)m, (long long)n, (long long)k,
           (long long)qc, tg, ops / tg * 1e-6, ops * (double)qc / (double)k / tg * 1e-6, tf,
           ops / tf * 1e-6);
    fflush(stdout);
    ss_linear_destroy(lin);
    free(w);
    free(ws);
    free(x);
    free(q);
    free(dd);
    free(sa);
    free(y);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1) {
        fprintf(stderr, "usage: %s [threads >= 1]\n", argv[0]);
        return 2;
    }
    omp_set_num_threads(threads);
    cpu_banner(threads);
    /* BitNet b1.58 2B projections (SPEC §6): o (2560, 2560), down (2560, 6912),
     * gate_up (13824, 2560); M=256 is a prefill chunk, M=1 a decode step. */
    const shape shapes[] = {
        {"square", SS_DTYPE_I8, "dense", 256, 2560, 2560},
        {"bitnet.o", SS_DTYPE_I8, "2_8", 256, 2560, 2560},
        {"bitnet.down", SS_DTYPE_I8, "dense", 256, 2560, 6912},
        {"bitnet.gu", SS_DTYPE_I8, "dense", 256, 13824, 2560},
        {"bitnet.o", SS_DTYPE_I8, "dense", 1, 2560, 2560},
        {"square", SS_DTYPE_F8_E4M3, "dense", 256, 2560, 2560},
    };
    ss_context *ctx;
    CHECK(ss_context_create(-1, &ctx));
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        run(ctx, &shapes[i]);
    ss_context_destroy(ctx);
    return 0;
}
