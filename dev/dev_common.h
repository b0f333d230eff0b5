/* Shared by the dev/ harnesses (STYLE: llm.c's dev/cuda): exiting check
 * macros, an input generator (lcg), a device banner, the measured
 * device-to-device copy bandwidth, and a timer that rotates input sets so
 * that L2 (50 MB on H100) does not hold them. */
#ifndef SS_DEV_COMMON_H
#define SS_DEV_COMMON_H

#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <algorithm>
#include <vector>

#define CK(x)                                                                              \
    do {                                                                                   \
        cudaError_t e_ = (x);                                                              \
        if (e_ != cudaSuccess) {                                                           \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

#define SS_CK(x)                                                                           \
    do {                                                                                   \
        ss_status s_ = (x);                                                                \
        if (s_ != SS_OK) {                                                                 \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, ss_last_error());   \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

/* The harnesses' input generator: a 64-bit LCG, top 53 bits. */
static inline uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

static inline void dev_banner(void) {
    cudaDeviceProp p;
    CK(cudaGetDeviceProperties(&p, 0));
    printf("# %s cc%d.%d, %d SMs, L2 %d MB, %.1f GiB\n", p.name, p.major, p.minor,
           p.multiProcessorCount, p.l2CacheSize >> 20, p.totalGlobalMem / 1073741824.0);
}

/* The middle element of v once sorted (the upper one of an even count); 0 when empty. */
static inline double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

/* Median over `reps` timed batches of `iters` calls of fn(i), i cycling over
 * the input sets; µs per call. Warm-up first. */
template <class F> static double time_us(F fn, int sets, int iters = 20, int reps = 9) {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int i = 0; i < 3 * sets; i++)
        fn(i % sets);
    CK(cudaDeviceSynchronize());
    std::vector<double> t;
    int k = 0;
    for (int r = 0; r < reps; r++) {
        CK(cudaEventRecord(a));
        for (int i = 0; i < iters; i++)
            fn(k++ % sets);
        CK(cudaEventRecord(b));
        CK(cudaEventSynchronize(b));
        float ms;
        CK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms * 1000.0 / iters);
    }
    CK(cudaGetLastError());
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return median_of(t);
}

/* Input sets needed so that the sets together exceed 4x L2. */
static inline int rotation_sets(size_t bytes_per_set) {
    size_t want = (size_t)256 << 20;
    int n = (int)((want + bytes_per_set - 1) / bytes_per_set);
    return std::max(1, std::min(n, 32));
}

/* Device-to-device copy bandwidth in GB/s (bytes read + written), 256 MB. */
static inline double d2d_copy_gbs(void) {
    size_t n = (size_t)256 << 20;
    void *a, *b;
    CK(cudaMalloc(&a, n));
    CK(cudaMalloc(&b, n));
    CK(cudaMemset(a, 1, n));
    double us = time_us([&](int) { cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice); }, 1, 10, 9);
    cudaFree(a);
    cudaFree(b);
    return 2.0 * n / (us * 1e3);
}

#endif
