/* The device banner at the top of every benchmark output (STYLE 8): name,
 * compute capability, SMs, clocks, measured copy bandwidth, nominal peak. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "slidesparse/bench.h"
#include "tune/fixture.h"
#ifdef SS_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

/* Dense INT8 / FP8 tensor-core operations per SM per clock (vendor peak
 * figures divided by SMs x boost clock): A100 624 TOPS, L4/4090 (Ada), H100
 * SXM 1979 TOPS at 1830 MHz, B200. 0 = unknown. */
#ifdef SS_HAVE_CUDA
static double ops_per_sm_clock(int cc) {
    switch (cc) {
    case 80: return 4096;
    case 86: case 87: case 89: return 2048;
    case 90: return 8192;
    case 100: return 16384;
    default: return 0;
    }
}
#endif

ss_status ss_device_info_get(ss_context *ctx, int measure_bw, ss_device_info *out) {
    if (!ctx || !out)
        return ss_fail(SS_EINVAL, "device info: context or out is NULL");
    memset(out, 0, sizeof *out);
    SS_TRY(ss_tune_key_of(ctx, &out->key));
    SS_TRY(ss_context_describe(ctx, out->describe, sizeof out->describe));
#ifdef SS_HAVE_CUDA
    int dev = ss_context_device(ctx);
    if (dev >= 0) {
        int v = 0;
        if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess)
            out->sms = v;
        if (cudaDeviceGetAttribute(&v, cudaDevAttrClockRate, dev) == cudaSuccess)
            out->clock_mhz = v / 1000;
        if (cudaDeviceGetAttribute(&v, cudaDevAttrMemoryClockRate, dev) == cudaSuccess)
            out->mem_clock_mhz = v / 1000;
        if (cudaDeviceGetAttribute(&v, cudaDevAttrGlobalMemoryBusWidth, dev) == cudaSuccess)
            out->bus_bits = v;
        (void)cudaGetLastError();
        out->peak_tops = ops_per_sm_clock(out->key.cc) * out->sms * out->clock_mhz * 1e6 * 1e-12;
        if (measure_bw)
            out->hbm_gbs = ss_fixture_bandwidth(ctx);
    }
#else
    (void)measure_bw;
#endif
    return SS_OK;
}

ss_status ss_device_banner(const ss_device_info *d, char *buf, size_t n) {
    if (!d || !buf || n == 0)
        return ss_fail(SS_EINVAL, "device banner: info or buffer is NULL");
    char dir[256];
    int w;
    if (d->key.cc == 0)
        w = snprintf(buf, n, "== device: %s\n== results folder stem: %s\n", d->describe,
                     ss_tune_key_dir(&d->key, dir, sizeof dir));
    else
        w = snprintf(buf, n,
                     "== device: %s\n"
                     "== %d SMs, SM clock %d MHz, memory clock %d MHz, %d-bit bus\n"
                     "== measured copy bandwidth %.0f GB/s; nominal dense INT8/FP8 peak %.0f TOPS "
                     "at %d MHz\n"
                     "== toolchain %s, cuBLASLt %s, cuSPARSELt %s; folder stem %s\n",
                     d->describe, d->sms, d->clock_mhz, d->mem_clock_mhz, d->bus_bits, d->hbm_gbs,
                     d->peak_tops, d->clock_mhz, d->key.toolchain, d->key.cublaslt,
                     d->key.cusparselt, ss_tune_key_dir(&d->key, dir, sizeof dir));
    if (w < 0 || (size_t)w >= n)
        return ss_fail(SS_EINVAL, "device banner: buffer of %zu bytes too small", n);
    return SS_OK;
}
