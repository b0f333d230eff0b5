/* dev harness: dequant_bias, the GEMM epilogue (SPEC §4, linear.h)
 *   Y = out(((float)D * sa[m]) * sb[n or 0] + bias[n])
 *   1. CPU reference (written here) vs the kernel: D in I32 / F32 / BF16, Y in
 *      BF16 / F32, per-channel and per-tensor scale, with and without bias,
 *      vector (n % 8 == 0) and scalar paths: bit-exact.
 *   2. timing, M in {4096, 16384}, N in {2560, 3840, 6912, 13824}: µs, GB/s
 *      (D read + Y written + scales/bias), % of the device-to-device copy.
 *   3. dequant_glu / dequant_residual (the engine's next elementwise op fused
 *      into the epilogue): vs the CPU reference (relu2 GLU, residual add;
 *      bit-exact) and vs the unfused GPU pair dequant_bias -> ss_glu_cuda /
 *      ss_residual_add_cuda (relu2 and SiLU; bit-exact); vector and scalar
 *      paths, ldd > n.
 *   4. timing of the fused kernels at the BitNet-2B shapes (gate_up N 13824
 *      -> inter 6912; o / down N 2560), M in {4096, 16384}, D I32 (INT8) and
 *      F32 (FP8): µs, GB/s (D read + act written, or D read + x read and
 *      written), %D2D, and the unfused pair's µs and the saving beside it.
 * Usage: dev_dequant_bias [quick | fused]   (fused: sections 3 and 4 only)
 *
 * Conclusion (H100, 2026-11-25; docs/results/h100.md §5): dequant_bias is
 * bit-exact and runs at 87-102% of the device copy for I32 / F32 input at
 * every M >= 4096 (BF16 input, cuSPARSELt's optional output, 82.9% at M 4096,
 * N 2560); dequant_glu / dequant_residual run at 90-104% and take 46% / 34% off
 * the unfused pair, so the engine runs the fused forms.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "dev_common.h"
#include "engine/cuda/kernels.h" /* the unfused pair: ss_glu_cuda, ss_residual_add_cuda */
#include "linear/kernels/kernels.h"
#include "slidesparse.h"

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

// --- 3. the fused epilogues: validation ---------------------------------------------------

/* bf16(dequant) as float, the value the plain epilogue hands on (ref's rounding). */
static float ref_y(ss_dtype dt, const void *d, size_t i, float sa, float sb, const uint16_t *bias,
                   int64_t c) {
    volatile float t = d_value(dt, d, i) * sa;
    t = t * sb;
    if (bias)
        t = t + ss_bf16_to_f32(bias[c]);
    return ss_bf16_to_f32(ss_f32_to_bf16(t));
}

struct fused_inputs {
    int64_t m, n, ldd;
    ss_dtype dt;
    std::vector<uint8_t> d; /* (m, ldd) */
    std::vector<float> sa, sb;
    std::vector<uint16_t> bias, x; /* (n), (m, n) residual stream */
};

static fused_inputs make_inputs(ss_dtype dt, int64_t m, int64_t n, int64_t ldd) {
    fused_inputs in{m, n, ldd, dt};
    in.d.resize((size_t)(m * ldd) * ss_dtype_size(dt));
    fill_d(dt, in.d.data(), (size_t)(m * ldd), (uint64_t)(m * 11 + n + dt));
    in.sa.resize(m);
    in.sb.resize(n);
    in.bias.resize(n);
    in.x.resize((size_t)(m * n));
    uint64_t seed = 9;
    for (auto &v : in.sa)
        v = (float)(lcg(&seed) % 1000 + 1) / 1270000.0f;
    for (auto &v : in.sb)
        v = (float)(lcg(&seed) % 1000 + 1) / 310000.0f;
    for (auto &v : in.bias)
        v = ss_f32_to_bf16((float)((int)(lcg(&seed) % 2001) - 1000) / 1000.0f);
    for (auto &v : in.x)
        v = ss_f32_to_bf16((float)((int)(lcg(&seed) % 2001) - 1000) / 100.0f);
    return in;
}

/* The fused kernel (op 0: glu relu2, 1: glu silu, 2: residual) on `in`, and
 * the unfused GPU pair; returns the host results. */
static void run_gpu(const fused_inputs &in, int op, int pc, int wb, std::vector<uint16_t> &fused,
                    std::vector<uint16_t> &pair) {
    int64_t m = in.m, n = in.n, on = op < 2 ? n / 2 : n;
    uint8_t *dd = upload(in.d.data(), in.d.size());
    float *dsa = upload(in.sa.data(), m), *dsb = upload(in.sb.data(), n);
    uint16_t *db = upload(in.bias.data(), n), *dy, *o1 = upload(in.x.data(), in.x.size()),
             *o2 = upload(in.x.data(), in.x.size());
    CK(cudaMalloc(&dy, (size_t)(m * n) * 2));
    const uint16_t *b = wb ? db : NULL;
    if (op < 2)
        CK(ss_kernel_dequant_glu(in.dt, dd, in.ldd, dsa, dsb, pc, b, m, n / 2, op == 0, o1, 0));
    else
        CK(ss_kernel_dequant_residual(in.dt, dd, in.ldd, dsa, dsb, pc, b, m, n, o1, 0));
    CK(ss_kernel_dequant_bias(in.dt, dd, in.ldd, dsa, dsb, pc, b, m, n, SS_DTYPE_BF16, dy, 0));
    if (op < 2)
        CK(ss_glu_cuda(dy, m, n / 2, op == 0, o2, 0));
    else
        CK(ss_residual_add_cuda(o2, dy, m, n, 0));
    fused.resize((size_t)(m * on));
    pair.resize((size_t)(m * on));
    CK(cudaMemcpy(fused.data(), o1, fused.size() * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(pair.data(), o2, pair.size() * 2, cudaMemcpyDeviceToHost));
    cudaFree(dd);
    cudaFree(dsa);
    cudaFree(dsb);
    cudaFree(db);
    cudaFree(dy);
    cudaFree(o1);
    cudaFree(o2);
}

/* CPU reference of op 0 (relu2 GLU) or 2 (residual add). */
static std::vector<uint16_t> ref_fused(const fused_inputs &in, int op, int pc, int wb) {
    int64_t m = in.m, n = in.n, on = op < 2 ? n / 2 : n;
    std::vector<uint16_t> out((size_t)(m * on));
    const uint16_t *b = wb ? in.bias.data() : NULL;
    for (int64_t r = 0; r < m; r++)
        for (int64_t c = 0; c < on; c++) {
            size_t i = (size_t)(r * in.ldd + c);
            float y = ref_y(in.dt, in.d.data(), i, in.sa[r], in.sb[pc ? c : 0], b, c);
            volatile float t;
            if (op == 0) {
                float u = ref_y(in.dt, in.d.data(), i + on, in.sa[r], in.sb[pc ? on + c : 0], b, on + c);
                t = y > 0.0f ? y * y : 0.0f;
                t = t * u;
            } else {
                t = ss_bf16_to_f32(in.x[(size_t)(r * n + c)]) + y;
            }
            out[(size_t)(r * on + c)] = ss_f32_to_bf16(t);
        }
    return out;
}

static int validate_fused(void) {
    int fails = 0, cases = 0;
    /* (m, n, ldd): vector path, ldd > n (the forward's n_pad), scalar paths */
    const int64_t shapes[][3] = {{37, 96, 96}, {33, 80, 96}, {5, 42, 42}, {9, 90, 96}, {64, 2560, 2560}};
    static const char *const ops[] = {"glu relu2", "glu silu", "residual"};
    for (auto &s : shapes)
        for (ss_dtype dt : {SS_DTYPE_I32, SS_DTYPE_F32, SS_DTYPE_BF16})
            for (int op = 0; op < 3; op++)
                for (int pc = 0; pc < 2; pc++)
                    for (int wb = 0; wb < 2; wb++) {
                        fused_inputs in = make_inputs(dt, s[0], s[1], s[2]);
                        std::vector<uint16_t> fused, pair;
                        run_gpu(in, op, pc, wb, fused, pair);
                        cases++;
                        bool bad = fused != pair;
                        if (op != 1)
                            bad = bad || fused != ref_fused(in, op, pc, wb);
                        if (bad) {
                            fails++;
                            printf("  MISMATCH %s D %s m=%lld n=%lld ldd=%lld pc=%d bias=%d (%s)\n", ops[op],
                                   ss_dtype_name(dt), (long long)s[0], (long long)s[1], (long long)s[2], pc,
                                   wb, fused != pair ? "vs the unfused pair" : "vs the CPU");
                        }
                    }
    printf("validation (fused glu / residual): %d cases, %d mismatching  %s\n", cases, fails,
           fails ? "FAIL" : "OK (bit-exact vs the unfused pair and the CPU)");
    return fails != 0;
}

// --- 4. the fused epilogues: timing -----------------------------------------------------------

static void bench_fused(double d2d, int quick) {
    printf("\n%-9s %-5s %6s %6s | %9s %8s %6s | %11s %7s\n", "op", "D", "M", "N", "us", "GB/s", "%D2D",
           "unfused us", "saved");
    for (int64_t m : {4096, 16384})
        for (int op = 0; op < 2; op++)
            for (ss_dtype dt : {SS_DTYPE_I32, SS_DTYPE_F32}) {
                if (quick && (m != 4096 || dt == SS_DTYPE_F32))
                    continue;
                int64_t n = op == 0 ? 13824 : 2560, on = op == 0 ? n / 2 : n;
                size_t cnt = (size_t)(m * n), des = ss_dtype_size(dt);
                /* fused: D read + act written (glu), or D read + x read and written */
                double bytes = (double)cnt * des + (double)(m * on) * 2 * (op == 0 ? 1 : 2) + m * 4.0 + n * 6.0;
                int sets = rotation_sets((size_t)(bytes + (double)cnt * 4));
                std::vector<void *> ds(sets);
                std::vector<uint16_t *> outs(sets), ys(sets);
                for (int i = 0; i < sets; i++) {
                    CK(cudaMalloc(&ds[i], cnt * des));
                    CK(cudaMemset(ds[i], 0x11, cnt * des));
                    CK(cudaMalloc(&outs[i], (size_t)(m * on) * 2));
                    CK(cudaMemset(outs[i], 0x3c, (size_t)(m * on) * 2));
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
                    if (op == 0)
                        ss_kernel_dequant_glu(dt, ds[i], n, sa, sb, 1, NULL, m, on, 1, outs[i], 0);
                    else
                        ss_kernel_dequant_residual(dt, ds[i], n, sa, sb, 1, NULL, m, n, outs[i], 0);
                }, sets);
                double us_pair = time_us([&](int i) {
                    ss_kernel_dequant_bias(dt, ds[i], n, sa, sb, 1, NULL, m, n, SS_DTYPE_BF16, ys[i], 0);
                    if (op == 0)
                        ss_glu_cuda(ys[i], m, on, 1, outs[i], 0);
                    else
                        ss_residual_add_cuda(outs[i], ys[i], m, n, 0);
                }, sets);
                CK(cudaGetLastError());
                double gbs = bytes / (us * 1e3);
                printf("%-9s %-5s %6lld %6lld | %9.2f %8.0f %5.1f%% | %11.2f %6.1f%%\n",
                       op == 0 ? "glu" : "residual", ss_dtype_name(dt), (long long)m, (long long)n, us, gbs,
                       100 * gbs / d2d, us_pair, 100 * (us_pair - us) / us_pair);
                for (int i = 0; i < sets; i++) {
                    cudaFree(ds[i]);
                    cudaFree(outs[i]);
                    cudaFree(ys[i]);
                }
                cudaFree(sa);
                cudaFree(sb);
                cudaFree(bias);
            }
}

int main(int argc, char **argv) {
    int quick = argc > 1 && !strcmp(argv[1], "quick");
    int fused = argc > 1 && !strcmp(argv[1], "fused");
    dev_banner();
    int bad = fused ? 0 : validate();
    bad |= validate_fused();
    double d2d = d2d_copy_gbs();
    printf("D2D copy: %.0f GB/s (read + write)\n", d2d);
    if (!fused)
        bench(d2d, quick);
    bench_fused(d2d, quick);
    return bad;
}
