/* dev harness: dequant_bias, the GEMM epilogue (SPEC §4, linear.h)
 *   Y = out(((float)D * sa[m]) * sb[n or 0] + bias[n])
 *   1. CPU reference (written here) vs the kernel: D in I32 / F32 / BF16, Y in
 *      BF16 / F32, per-channel and per-tensor scale, with and without bias,
 *      vector (n % 8 == 0) and scalar paths: bit-exact.
 *   2. timing, M in {4096, 16384}, N in {2560, 3840, 6912, 13824}: µs, GB/s
 *      (D read + Y written + scales/bias), % of the device-to-device copy.
 * Usage: dev_dequant_bias [quick]
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "dev_common.h"
#include "linear/kernels/kernels.h"
#include "slidesparse.h"

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

static void fill_d(ss_dtype t, void *d, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) {
        int32_t v = (int32_t)(lcg(&seed) % 2000001) - 1000000;
        if (t == SS_DTYPE_I32)
            ((int32_t *)d)[i] = v;
        else if (t == SS_DTYPE_F32)
            ((float *)d)[i] = (float)v * 0.37f;
        else
            ((uint16_t *)d)[i] = ss_f32_to_bf16((float)v * 0.37f);
    }
}

static float d_value(ss_dtype t, const void *d, size_t i) {
    if (t == SS_DTYPE_I32)
        return (float)((const int32_t *)d)[i];
    if (t == SS_DTYPE_F32)
        return ((const float *)d)[i];
    return ss_bf16_to_f32(((const uint16_t *)d)[i]);
}

/* Three separately rounded ops; volatile keeps the host compiler from fusing. */
static void ref(ss_dtype dt, const void *d, const float *sa, const float *sb, int pc,
                const uint16_t *bias, int64_t m, int64_t n, ss_dtype yt, void *y) {
    for (int64_t r = 0; r < m; r++)
        for (int64_t c = 0; c < n; c++) {
            size_t i = (size_t)(r * n + c);
            volatile float t = d_value(dt, d, i) * sa[r];
            t = t * sb[pc ? c : 0];
            if (bias)
                t = t + ss_bf16_to_f32(bias[c]);
            if (yt == SS_DTYPE_F32)
                ((float *)y)[i] = t;
            else
                ((uint16_t *)y)[i] = ss_f32_to_bf16(t);
        }
}

template <class T> static T *upload(const T *h, size_t n) {
    T *d;
    CK(cudaMalloc(&d, n * sizeof(T) + 16));
    CK(cudaMemcpy(d, h, n * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

static int validate(void) {
    int fails = 0, cases = 0;
    const int64_t shapes[][2] = {{37, 96}, {5, 41}, {64, 2560}};
    for (auto &s : shapes)
        for (ss_dtype dt : {SS_DTYPE_I32, SS_DTYPE_F32, SS_DTYPE_BF16})
            for (ss_dtype yt : {SS_DTYPE_BF16, SS_DTYPE_F32})
                for (int pc = 0; pc < 2; pc++)
                    for (int wb = 0; wb < 2; wb++) {
                        int64_t m = s[0], n = s[1];
                        size_t cnt = (size_t)(m * n), es = ss_dtype_size(dt), ys = ss_dtype_size(yt);
                        std::vector<uint8_t> d(cnt * es), y(cnt * ys), yg(cnt * ys);
                        fill_d(dt, d.data(), cnt, (uint64_t)(m * 7 + n + dt));
                        std::vector<float> sa(m), sb(n);
                        std::vector<uint16_t> bias(n);
                        uint64_t seed = 5;
                        for (auto &v : sa)
                            v = (float)(lcg(&seed) % 1000 + 1) / 127000.0f;
                        for (auto &v : sb)
                            v = (float)(lcg(&seed) % 1000 + 1) / 31000.0f;
                        for (auto &v : bias)
                            v = ss_f32_to_bf16((float)((int)(lcg(&seed) % 2001) - 1000) / 100.0f);
                        ref(dt, d.data(), sa.data(), sb.data(), pc, wb ? bias.data() : NULL, m, n, yt,
                            y.data());
                        uint8_t *dd = upload(d.data(), d.size()), *dy;
                        float *dsa = upload(sa.data(), m), *dsb = upload(sb.data(), n);
                        uint16_t *db = upload(bias.data(), n);
                        CK(cudaMalloc(&dy, y.size()));
                        CK(ss_kernel_dequant_bias(dt, dd, n, dsa, dsb, pc, wb ? db : NULL, m, n, yt, dy, 0));
                        CK(cudaMemcpy(yg.data(), dy, y.size(), cudaMemcpyDeviceToHost));
                        cases++;
                        if (memcmp(y.data(), yg.data(), y.size())) {
                            fails++;
                            printf("  MISMATCH D %s Y %s m=%lld n=%lld pc=%d bias=%d\n",
                                   ss_dtype_name(dt), ss_dtype_name(yt), (long long)m, (long long)n, pc, wb);
                        }
                        cudaFree(dd);
                        cudaFree(dy);
                        cudaFree(dsa);
                        cudaFree(dsb);
                        cudaFree(db);
                    }
    printf("validation: %d cases, %d mismatching  %s\n", cases, fails, fails ? "FAIL" : "OK (bit-exact)");
    return fails != 0;
}

static void bench(double d2d, int quick) {
    printf("\n%-5s %-5s %6s %6s | %9s %8s %6s\n", "D", "Y", "M", "N", "us", "GB/s", "%D2D");
    for (int64_t m : {4096, 16384})
        for (int64_t n : {2560, 3840, 6912, 13824})
            for (ss_dtype dt : {SS_DTYPE_I32, SS_DTYPE_BF16, SS_DTYPE_F32}) {
                if (quick && (m != 4096 || dt == SS_DTYPE_F32))
                    continue;
                ss_dtype yt = SS_DTYPE_BF16;
                size_t cnt = (size_t)(m * n);
                double bytes = (double)cnt * (ss_dtype_size(dt) + ss_dtype_size(yt)) + m * 4.0 + n * 6.0;
                int sets = rotation_sets((size_t)bytes);
                std::vector<void *> ds(sets), ys(sets);
                for (int i = 0; i < sets; i++) {
                    CK(cudaMalloc(&ds[i], cnt * ss_dtype_size(dt)));
                    CK(cudaMemset(ds[i], 0x11, cnt * ss_dtype_size(dt)));
                    CK(cudaMalloc(&ys[i], cnt * 2));
                }
                float *sa, *sb;
                uint16_t *bias;
                CK(cudaMalloc(&sa, m * 4));
                CK(cudaMalloc(&sb, n * 4));
                CK(cudaMalloc(&bias, n * 2));
                CK(cudaMemset(sa, 0, m * 4));
                CK(cudaMemset(sb, 0, n * 4));
                CK(cudaMemset(bias, 0, n * 2));
                double us = time_us([&](int i) {
                    ss_kernel_dequant_bias(dt, ds[i], n, sa, sb, 1, bias, m, n, yt, ys[i], 0);
                }, sets);
                double gbs = bytes / (us * 1e3);
                printf("%-5s %-5s %6lld %6lld | %9.2f %8.0f %5.1f%%\n", ss_dtype_name(dt),
                       ss_dtype_name(yt), (long long)m, (long long)n, us, gbs, 100 * gbs / d2d);
                for (int i = 0; i < sets; i++) {
                    cudaFree(ds[i]);
                    cudaFree(ys[i]);
                }
                cudaFree(sa);
                cudaFree(sb);
                cudaFree(bias);
            }
}

int main(int argc, char **argv) {
    int quick = argc > 1 && !strcmp(argv[1], "quick");
    dev_banner();
    int bad = validate();
    double d2d = d2d_copy_gbs();
    printf("D2D copy: %.0f GB/s (read + write)\n", d2d);
    bench(d2d, quick);
    return bad;
}
