/* dev harness: where the weight-streaming decode GEMM's time goes
 * (src/linear/sm90stream.cu, the sm90 backends' opt-in SS_STREAM candidate).
 *
 * Measured before this harness (H100, docs/results/h100.md §6.0a): the stream
 * GEMM is 1.1-3.0x slower than the CUTLASS kernels at decode sizes in both of
 * its forms (weights loaded into registers, then bulk-copied into a
 * shared-memory ring), and Nsight Compute finds no busy unit: DRAM 14%, SM
 * 14%, warps issuing every 7.4 cycles (spinning on barriers). So the time is
 * a serial chain, and this harness says which link is long: every block's
 * thread 0 adds the SM cycles of each phase (ss_stream_args.trace):
 * prologue, waiting for token rows, waiting for weight stages, fragments +
 * wgmma, the per-chunk barrier and refill, the split-K exchange, the
 * epilogue; plus globaltimer at each block's start and end (the launch and
 * cluster scheduling spread).
 *
 * For each BitNet-2B projection at M 64 (and 128 with `all`), dense and 2:4,
 * every configuration: the launch's time by events (median of 9 batches of
 * 20, weights rotated through > 4x L2), then one traced launch: per phase the
 * median and the max over blocks (µs at the device's SM clock), the chunks
 * per block, and the spread of block starts / ends. The numbers are a
 * diagnosis, not a result: the GPU tests check the kernel's output.
 * Usage: dev_stream_phases [all]
 *
 * Measured (H100, docs/results/h100.md §6.0b): a block never waits for its
 * weights (0.2-0.7 µs of weight wait); it spends ~10 µs of fixed prologue,
 * split-K exchange and epilogue, so a per-projection kernel of this shape
 * cannot approach the weight bytes at M 64.
 */
#include <algorithm>
#include <stdint.h>
#include <string.h>
#include <vector>

#include "dev_common.h"

#if defined(SS_HAVE_SM90SP)
#include "linear/sm90stream.h"
#include "linear/stream_layout.h"

namespace {

struct Shape {
    const char *name;
    int n, k;
};
/* BitNet-2B (SPEC §6): qkv and gate_up fused; 2:4 runs at K' = K (2_4) */
const Shape kShapes[] = {{"qkv", 3840, 2560}, {"o", 2560, 2560}, {"gate_up", 13824, 2560}, {"down", 2560, 6912}};

const char *const kPhase[] = {"prologue", "token wait", "weight wait", "frags+wgmma", "barrier+refill",
                              "exchange", "epilogue"};
constexpr int kPhases = 7; /* slots SS_STREAM_TRACE_PROLOGUE .. _EPILOGUE */

/* Random INT8 weights (n, k); 2:4: two of every four zeroed. */
std::vector<int8_t> weights(int n, int k, int sparse, uint64_t seed) {
    std::vector<int8_t> w((size_t)n * k);
    for (size_t i = 0; i < w.size(); i++)
        w[i] = (int8_t)(lcg(&seed) % 255 - 127);
    if (sparse)
        for (size_t i = 0; i < w.size(); i += 4) {
            int z = (int)(lcg(&seed) % 6); /* which pair of the four stays */
            static const int keep[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
            for (int j = 0; j < 4; j++)
                if (j != keep[z][0] && j != keep[z][1])
                    w[i + j] = 0;
        }
    return w;
}

void run_shape(const Shape &s, int sparse, int m, int sms, double sm_ghz) {
    size_t wbytes = ss_stream_bytes(sparse, s.n, s.k);
    int sets = rotation_sets(wbytes);
    std::vector<void *> w(sets);
    std::vector<int8_t> host = weights(s.n, s.k, sparse, 1);
    std::vector<uint8_t> packed(wbytes);
    SS_CK(sparse ? ss_stream_pack_sparse(SS_DTYPE_I8, host.data(), s.n, s.k, packed.data(), s.name)
                 : ss_stream_pack_dense(host.data(), s.n, s.k, s.k, packed.data()));
    for (int i = 0; i < sets; i++) {
        CK(cudaMalloc(&w[i], wbytes));
        CK(cudaMemcpy(w[i], packed.data(), wbytes, cudaMemcpyHostToDevice));
    }
    int m_pad = (m + 15) / 16 * 16;
    void *q;
    float *sa, *sb;
    uint16_t *bias, *y;
    CK(cudaMalloc(&q, (size_t)m_pad * s.k));
    CK(cudaMemset(q, 1, (size_t)m_pad * s.k));
    CK(cudaMalloc(&sa, m_pad * sizeof(float)));
    CK(cudaMemset(sa, 0, m_pad * sizeof(float)));
    CK(cudaMalloc(&sb, s.n * sizeof(float)));
    CK(cudaMemset(sb, 0, s.n * sizeof(float)));
    CK(cudaMalloc(&bias, s.n * sizeof(uint16_t)));
    CK(cudaMemset(bias, 0, s.n * sizeof(uint16_t)));
    CK(cudaMalloc(&y, (size_t)m * s.n * sizeof(uint16_t)));
    for (int cfg = 0; cfg < SS_STREAM_WGMMA_CONFIGS; cfg++) { /* the traced form */
        ss_stream_args a = {w[0], q, sa, sb, bias, y, m, m_pad, s.n, s.k, s.n, 0, sparse, cfg, sms, 0,
                            SS_STREAM_OP_PLAIN, nullptr};
        double us = time_us([&](int i) {
            a.w = w[i];
            CK(ss_stream_gemm(&a, 0));
        }, sets);
        int gx, gy;
        CK(ss_stream_grid(&a, &gx, &gy));
        int blocks = gx * gy;
        unsigned long long *trace;
        CK(cudaMalloc(&trace, (size_t)blocks * SS_STREAM_TRACE_SLOTS * 8));
        a.w = w[sets - 1];
        a.trace = trace;
        CK(ss_stream_gemm(&a, 0));
        CK(cudaDeviceSynchronize());
        std::vector<unsigned long long> t((size_t)blocks * SS_STREAM_TRACE_SLOTS);
        CK(cudaMemcpy(t.data(), trace, t.size() * 8, cudaMemcpyDeviceToHost));
        CK(cudaFree(trace));
        unsigned long long s0 = ~0ull, s1 = 0, e0 = ~0ull, e1 = 0;
        std::vector<double> ph[kPhases], chunks;
        for (int b = 0; b < blocks; b++) {
            const unsigned long long *r = &t[(size_t)b * SS_STREAM_TRACE_SLOTS];
            s0 = std::min(s0, r[SS_STREAM_TRACE_START_NS]);
            s1 = std::max(s1, r[SS_STREAM_TRACE_START_NS]);
            e0 = std::min(e0, r[SS_STREAM_TRACE_END_NS]);
            e1 = std::max(e1, r[SS_STREAM_TRACE_END_NS]);
            for (int p = 0; p < kPhases; p++)
                ph[p].push_back((double)r[SS_STREAM_TRACE_PROLOGUE + p] / (sm_ghz * 1e3));
            chunks.push_back((double)r[SS_STREAM_TRACE_CHUNKS]);
        }
        printf("%-7s %-5s M %3d %s: %7.1f us (%.2f TB/s), grid %d x %d, chunks/block %.0f | starts spread "
               "%.1f us, ends spread %.1f us, first start to last end %.1f us\n",
               s.name, sparse ? "2:4" : "dense", m, ss_stream_config_name(cfg), us, wbytes / us * 1e-6, gx, gy,
               median_of(chunks), (s1 - s0) * 1e-3, (e1 - e0) * 1e-3, (e1 - s0) * 1e-3);
        printf("        per block, median / max µs:");
        for (int p = 0; p < kPhases; p++)
            printf("  %s %.2f / %.2f", kPhase[p], median_of(ph[p]), *std::max_element(ph[p].begin(), ph[p].end()));
        printf("\n");
    }
    for (void *p : w)
        cudaFree(p);
    cudaFree(q);
    cudaFree(sa);
    cudaFree(sb);
    cudaFree(bias);
    cudaFree(y);
}

} // namespace

int main(int argc, char **argv) {
    int all = argc > 1 && !strcmp(argv[1], "all");
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
        printf("skipped: no CUDA device\n");
        return 0;
    }
    if (prop.major != 9 || prop.minor != 0) {
        printf("skipped: the stream GEMM needs cc 9.0 (found %d.%d)\n", prop.major, prop.minor);
        return 0;
    }
    dev_banner();
    CK(ss_stream_prepare());
    int clock_khz = 0;
    CK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0));
    double ghz = clock_khz * 1e-6;
    printf("# phase cycles converted at the %.2f GHz SM clock the device reports\n", ghz);
    for (int m : {64, 128}) {
        if (m == 128 && !all)
            break;
        for (int sparse = 0; sparse < 2; sparse++)
            for (const Shape &s : kShapes)
                run_shape(s, sparse, m, prop.multiProcessorCount, ghz);
    }
    return 0;
}
#else
int main(void) {
    printf("skipped: built without the sm90 backends (CUTLASS)\n");
    return 0;
}
#endif
