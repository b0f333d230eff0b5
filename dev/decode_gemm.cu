/* dev harness: a decode-size INT8 GEMM that streams the weights the way
 * dev_layer_stream's read loop does, against cuBLASLt.
 *
 * Why: with no math, one kernel per projection streams a BitNet-2B step's
 * weights in ~1.0 ms on the H100, where the engine's GEMMs take 2.0-2.3 ms
 * (docs/results/h100.md §6.0c): at M 64 the GEMM kernels are the gap. This
 * harness asks whether a GEMM shaped like the read loop keeps that rate with
 * the math in: every SM busy with several small blocks, each warp streaming
 * its own 16-row tile with D 16-byte loads in flight, tokens in shared memory.
 *
 * Kernel: D[64 x N] (int32, row-major by token) = X[64 x K] . W[N x K]^T.
 *   - W is laid out once for mma.sync.m16n8k32 (s8): per 16-row tile and
 *     32-column step, 512 bytes in which lane l's 16 bytes are its A fragment
 *     {a0, a1, a2, a3}, so one coalesced 16-byte load per lane per step;
 *   - block = 4 warps = 64 rows x a K range (split-K by S); the block's token
 *     columns by cp.async into shared memory (rows padded by 16 bytes: the
 *     B-fragment loads hit 32 distinct banks), issued after the first D weight
 *     loads so both are in flight together;
 *   - split-K reduction in the serial form: each split writes its partial to
 *     a workspace, the last block of a row group (atomic ticket) adds them in
 *     split order and writes D, then resets the ticket (graph-replay safe);
 *     int32 sums, so bit-exact in any order.
 * Checked against the CPU (bit for bit) and against cuBLASLt; timed per
 * projection over weight sets rotated past L2 (L2 flushed by rotation).
 * Usage: dev_decode_gemm
 *
 * Measured (H100, docs/results/h100.md §6.0c): 108 µs for the four BitNet-2B
 * projections against cuBLASLt's 49 µs (0.45x; best form: 16 warps per
 * block, S 1). Every A fragment meets 2 KB of token fragments from shared
 * memory, and the 64-row blocks leave SMs idle on the narrow projections:
 * the next form reuses token fragments across row tiles, splits K over a
 * cluster, and feeds wgmma from registers.
 */
#include <cublasLt.h>
#include <stdint.h>
#include <string.h>
#include <vector>

#include "dev_common.h"

namespace {

constexpr int kM = 64;     /* tokens */
constexpr int kTiles = 4;  /* 16-row tiles per block (64 rows) */
constexpr int kPad = 16;   /* bytes per token row of padding in shared memory */

/* Shared memory of a block: the token columns, then reused for the KW warps' partials. */
size_t block_smem(int kr, int kw) {
    size_t tokens = (size_t)kM * (kr + kPad), partials = kw > 1 ? (size_t)kTiles * kw * 16 * kM * 4 : 0;
    return std::max(tokens, partials);
}

__device__ __forceinline__ void mma_s8(int (&c)[4], const uint4 &a, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem) {
    uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(gmem));
}

/* grid: (N / 64) * S blocks, block b = row group b / S, split b % S; KW
 * warps along K per 16-row tile (4 * KW warps), D weight loads in flight per
 * warp. */
template <int D, int KW>
__global__ void __launch_bounds__(kTiles * KW * 32) decode_gemm(const uint4 *__restrict__ wl,
                                                               const int8_t *__restrict__ x, int n, int k, int splits,
                                                               int *__restrict__ ws, int *__restrict__ tickets,
                                                               int *__restrict__ out) {
    constexpr int kThreads = kTiles * KW * 32;
    extern __shared__ __align__(16) uint8_t xs[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    const int rg = blockIdx.x / splits, sp = blockIdx.x % splits;
    const int bsteps = k / 32 / splits, kr = bsteps * 32, ld = kr + kPad;
    const int tile = warp % kTiles, kw = warp / kTiles, steps = bsteps / KW, s_local = kw * steps;
    const int s0 = sp * bsteps + s_local; /* this warp's first step (global) */
    const int rt = rg * kTiles + tile;
    const uint4 *w = wl + ((size_t)rt * (k / 32) + s0) * 32 + lane;

    /* the first D weight steps, then the token columns [s0*32, s0*32 + kr) */
    uint4 a[D];
#pragma unroll
    for (int d = 0; d < D; d++)
        if (d < steps)
            a[d] = __ldg(w + (size_t)d * 32);
    for (int i = threadIdx.x; i < kM * (kr / 16); i += kThreads) {
        int r = i / (kr / 16), c = (i % (kr / 16)) * 16;
        cp_async16(xs + r * ld + c, x + (size_t)r * k + sp * kr + c);
    }
    asm volatile("cp.async.commit_group;\ncp.async.wait_group 0;" ::: "memory");
    __syncthreads();

    int acc[kM / 8][4];
#pragma unroll
    for (int j = 0; j < kM / 8; j++)
        acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0;
    for (int s = 0; s < steps; s += D) {
#pragma unroll
        for (int d = 0; d < D; d++) {
            if (s + d < steps) {
                const uint8_t *xr = xs + g * ld + (s_local + s + d) * 32 + 4 * q;
#pragma unroll
                for (int j = 0; j < kM / 8; j++) {
                    uint32_t b0 = *(const uint32_t *)(xr + 8 * j * ld), b1 = *(const uint32_t *)(xr + 8 * j * ld + 16);
                    mma_s8(acc[j], a[d], b0, b1);
                }
                if (s + d + D < steps)
                    a[d] = __ldg(w + (size_t)(s + d + D) * 32);
            }
        }
    }

    /* the KW partials of a tile summed by its kw = 0 warp, in kw order (through shared memory) */
    if (KW > 1) {
        __syncthreads(); /* every warp is done with the token columns */
        int *part = (int *)xs + (size_t)(tile * KW + kw) * 16 * kM;
        if (kw > 0)
#pragma unroll
            for (int j = 0; j < kM / 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    part[(j * 4 + e) * 32 + lane] = acc[j][e];
        __syncthreads();
        if (kw > 0)
            return;
#pragma unroll
        for (int j = 0; j < kM / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                for (int v = 1; v < KW; v++)
                    acc[j][e] += ((int *)xs + (size_t)(tile * KW + v) * 16 * kM)[(j * 4 + e) * 32 + lane];
    }
    /* (row, token) of acc[j][e]: row rt*16 + g (+8 for e >= 2), token 8j + 2q + (e & 1) */
    const int row0 = rt * 16 + g;
    if (splits == 1) {
#pragma unroll
        for (int j = 0; j < kM / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                out[(size_t)(8 * j + 2 * q + (e & 1)) * n + row0 + (e >> 1) * 8] = acc[j][e];
        return;
    }
#pragma unroll
    for (int j = 0; j < kM / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            __stcg(ws + ((size_t)sp * kM + 8 * j + 2 * q + (e & 1)) * n + row0 + (e >> 1) * 8, acc[j][e]);
    __threadfence();
    /* only the kw = 0 warps (threads 0 .. 4*32-1) are left: a named barrier over them */
    asm volatile("bar.sync 1, %0;" ::"n"(kTiles * 32) : "memory");
    __shared__ int last;
    if (threadIdx.x == 0)
        last = atomicAdd(tickets + rg, 1) == splits - 1;
    asm volatile("bar.sync 1, %0;" ::"n"(kTiles * 32) : "memory");
    if (!last)
        return;
    __threadfence();
#pragma unroll
    for (int j = 0; j < kM / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const size_t at = (size_t)(8 * j + 2 * q + (e & 1)) * n + row0 + (e >> 1) * 8;
            int sum = 0;
            for (int t = 0; t < splits; t++)
                sum += t == sp ? acc[j][e] : __ldcg(ws + (size_t)t * kM * n + at);
            out[at] = sum;
        }
    if (threadIdx.x == 0)
        tickets[rg] = 0;
}

/* W (n x k, row-major) -> the mma layout above. */
std::vector<uint8_t> mma_layout(const std::vector<int8_t> &w, int n, int k) {
    std::vector<uint8_t> o((size_t)n * k);
    size_t p = 0;
    for (int rt = 0; rt < n / 16; rt++)
        for (int s = 0; s < k / 32; s++)
            for (int l = 0; l < 32; l++) {
                int g = l >> 2, q = l & 3;
                const int rows[4] = {g, g + 8, g, g + 8}, cols[4] = {4 * q, 4 * q, 16 + 4 * q, 16 + 4 * q};
                for (int r = 0; r < 4; r++)
                    for (int e = 0; e < 4; e++)
                        o[p++] = (uint8_t)w[(size_t)(rt * 16 + rows[r]) * k + s * 32 + cols[r] + e];
            }
    return o;
}

struct Shape {
    const char *name;
    int n, k;
};

} // namespace

int main() {
    dev_banner();
    const double copy_gbs = d2d_copy_gbs();
    printf("# device copy %.3f TB/s (read + write); M = %d tokens, INT8, int32 out\n", copy_gbs / 1e3, kM);
    const Shape shapes[] = {{"qkv", 3840, 2560}, {"o", 2560, 2560}, {"gate_up", 13824, 2560}, {"down", 2560, 6912}};
    cublasLtHandle_t lt;
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "cublasLtCreate failed\n");
        return 1;
    }
    void *lt_ws;
    const size_t lt_ws_bytes = 32 << 20;
    CK(cudaMalloc(&lt_ws, lt_ws_bytes));
    int *tickets;
    CK(cudaMalloc(&tickets, 4096 * sizeof(int)));
    CK(cudaMemset(tickets, 0, 4096 * sizeof(int)));
    double sum_lt = 0, sum_best = 0, sum_bytes = 0;
    printf("%-8s %6s %6s %9s %9s | %-22s %9s %7s %9s\n", "proj", "N", "K", "cuBLASLt", "TB/s", "ours (S, D)", "us",
           "TB/s", "vs cuBLASLt");
    for (const Shape &sh : shapes) {
        const int n = sh.n, k = sh.k;
        const size_t wb = (size_t)n * k;
        const int sets = rotation_sets(wb);
        uint64_t seed = 42;
        std::vector<int8_t> w(wb), x((size_t)kM * k);
        for (auto &v : w)
            v = (int8_t)(lcg(&seed) % 255 - 127);
        for (auto &v : x)
            v = (int8_t)(lcg(&seed) % 255 - 127);
        std::vector<int> ref((size_t)kM * n);
        for (int t = 0; t < kM; t++)
            for (int r = 0; r < n; r++) {
                int s = 0;
                for (int c = 0; c < k; c++)
                    s += (int)x[(size_t)t * k + c] * (int)w[(size_t)r * k + c];
                ref[(size_t)t * n + r] = s;
            }
        std::vector<uint8_t> wl = mma_layout(w, n, k);
        int8_t *d_w, *d_x;
        uint8_t *d_wl;
        int *d_out, *d_ws;
        CK(cudaMalloc(&d_w, wb * sets));
        CK(cudaMalloc(&d_wl, wb * sets));
        for (int i = 0; i < sets; i++) {
            CK(cudaMemcpy(d_w + wb * i, w.data(), wb, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(d_wl + wb * i, wl.data(), wb, cudaMemcpyHostToDevice));
        }
        CK(cudaMalloc(&d_x, x.size()));
        CK(cudaMemcpy(d_x, x.data(), x.size(), cudaMemcpyHostToDevice));
        CK(cudaMalloc(&d_out, ref.size() * 4));
        CK(cudaMalloc(&d_ws, (size_t)32 * kM * n * 4));
        std::vector<int> got(ref.size());
        auto check = [&](const char *what) {
            CK(cudaMemcpy(got.data(), d_out, got.size() * 4, cudaMemcpyDeviceToHost));
            for (size_t i = 0; i < got.size(); i++)
                if (got[i] != ref[i]) {
                    fprintf(stderr, "%s %s: mismatch at token %zu row %zu: %d != %d\n", sh.name, what, i / n, i % n,
                            got[i], ref[i]);
                    exit(1);
                }
        };

        /* cuBLASLt as the engine calls it: D (n x 64, column-major) = W^T' x X', best of the top 8 */
        cublasLtMatmulDesc_t op;
        cublasLtMatrixLayout_t la, lb, lc;
        cublasOperation_t T = CUBLAS_OP_T;
        cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32I, CUDA_R_32I);
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &T, sizeof T);
        cublasLtMatrixLayoutCreate(&la, CUDA_R_8I, k, n, k);
        cublasLtMatrixLayoutCreate(&lb, CUDA_R_8I, k, kM, k);
        cublasLtMatrixLayoutCreate(&lc, CUDA_R_32I, n, kM, n);
        cublasLtMatmulPreference_t pref;
        cublasLtMatmulPreferenceCreate(&pref);
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &lt_ws_bytes,
                                             sizeof lt_ws_bytes);
        cublasLtMatmulHeuristicResult_t heur[8];
        int nh = 0;
        cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 8, heur, &nh);
        const int one = 1, zero = 0;
        double t_lt = 1e30;
        for (int h = 0; h < nh; h++) {
            auto run = [&](int i) {
                cublasLtMatmul(lt, op, &one, d_w + wb * i, la, d_x, lb, &zero, d_out, lc, d_out, lc, &heur[h].algo,
                               lt_ws, lt_ws_bytes, 0);
            };
            run(0);
            CK(cudaDeviceSynchronize());
            check("cuBLASLt");
            t_lt = std::min(t_lt, time_us(run, sets));
        }

        /* ours: every split count that divides the K steps, D 4 / 8 */
        double t_best = 1e30;
        int best_s = 0, best_d = 0, best_kw = 0;
        struct Variant {
            void (*kern)(const uint4 *, const int8_t *, int, int, int, int *, int *, int *);
            int d, kw;
        };
        const Variant variants[] = {{decode_gemm<8, 1>, 8, 1},
                                    {decode_gemm<16, 1>, 16, 1},
                                    {decode_gemm<8, 4>, 8, 4},
                                    {decode_gemm<16, 2>, 16, 2}};
        for (int s : {1, 2, 3, 4, 6, 8, 12, 16}) {
            for (const Variant &v : variants) {
                if ((k / 32) % (s * v.kw))
                    continue;
                const int kr = k / s;
                const size_t smem = block_smem(kr, v.kw);
                if (smem > 200 * 1024)
                    continue;
                auto kern = v.kern;
                const int d = v.d, threads = kTiles * v.kw * 32;
                CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
                auto run = [&](int i) {
                    kern<<<(n / 64) * s, threads, smem>>>((const uint4 *)(d_wl + wb * i), d_x, n, k, s, d_ws, tickets,
                                                          d_out);
                };
                CK(cudaMemset(d_out, 0xff, ref.size() * 4));
                run(0);
                CK(cudaDeviceSynchronize());
                check("ours");
                double t = time_us(run, sets);
                if (t < t_best)
                    t_best = t, best_s = s, best_d = d, best_kw = v.kw;
            }
        }
        char cfg[32];
        snprintf(cfg, sizeof cfg, "S %d, D %d, KW %d", best_s, best_d, best_kw);
        printf("%-8s %6d %6d %9.2f %9.3f | %-22s %9.2f %7.3f %8.2fx\n", sh.name, n, k, t_lt, wb / (t_lt * 1e6), cfg,
               t_best, wb / (t_best * 1e6), t_lt / t_best);
        sum_lt += t_lt, sum_best += t_best, sum_bytes += (double)wb;
        cublasLtMatmulPreferenceDestroy(pref);
        cublasLtMatrixLayoutDestroy(la), cublasLtMatrixLayoutDestroy(lb), cublasLtMatrixLayoutDestroy(lc);
        cublasLtMatmulDescDestroy(op);
        cudaFree(d_w), cudaFree(d_wl), cudaFree(d_x), cudaFree(d_out), cudaFree(d_ws);
    }
    printf("%-8s %6s %6s %9.2f %9.3f | %-22s %9.2f %7.3f %8.2fx   (bytes at the copy rate: %.1f us)\n", "4 summed", "",
           "", sum_lt, sum_bytes / (sum_lt * 1e6), "best per projection", sum_best, sum_bytes / (sum_best * 1e6),
           sum_lt / sum_best, sum_bytes / (copy_gbs * 1e3));
    CK(cudaFree(tickets));
    CK(cudaFree(lt_ws));
    cublasLtDestroy(lt);
    return 0;
}
