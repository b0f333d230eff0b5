/* dev harness: a decode-size INT8 GEMM that streams the weights the way
 * dev_layer_stream's read loop does, against cuBLASLt.
 *
 * Why: with no math, one kernel per projection streams a BitNet-2B step's
 * weights in ~1.0 ms on the H100, where the engine's GEMMs take 2.0-2.3 ms
 * (docs/results/h100.md §6.0c): at M 64 the GEMM kernels are the gap. The
 * first form of this harness (64-row blocks, each filling all its token
 * columns before the first MMA, 2 KB of token fragments from shared memory
 * per 512-byte weight fragment, split-K through a workspace) reached 0.45x
 * cuBLASLt. This form changes the three things that measurement named:
 *
 *   - roles swapped: the tokens are mma.sync.m16n8k32's A operand (4 m-tiles
 *     of 16 tokens, one ldmatrix.x4 each per 32-column step) and the weights
 *     its B operand, so one 16-byte load per lane carries the B fragments of
 *     two 8-row groups; a warp owns 32 rows and reuses each step's token
 *     fragments across its four row groups (1 byte of shared-memory reads per
 *     weight byte streamed ... 2 with the A tiles, instead of 4);
 *   - the weights are requested before griddepcontrol.wait (no kernel writes
 *     them), D steps in flight per warp, the token columns after the wait;
 *   - split-K over a thread-block cluster: S blocks along K leave their
 *     partial tiles in shared memory, and block r of the cluster sums slice
 *     r of the tile over the S ranks through distributed shared memory (no
 *     workspace, no memset, no atomics; int32, so exact in any order).
 *
 * Kernel: D[64 x N] (int32, row-major by token) = X[64 x K] . W[N x K]^T.
 * W is in the engine's stream layout (src/linear/stream_layout.h: per
 * 64-row tile and 32-column step a 2 KB record, warp w's 512 bytes the
 * m16n8k32 A fragments of rows 16w..16w+15): a lane's 16 bytes
 * {W[g][4q..], W[g+8][4q..], W[g][16+4q..], W[g+8][16+4q..]} are also the B
 * fragments (b0, b1) of the two 8-row groups, so a warp streams half a
 * record (32 rows) per step with two 16-byte loads per lane.
 * Block = WR x WK warps: WR warps along rows (32 each), WK along the block's
 * K range. Grid (S, N / (32 WR)), clusters of (S, 1, 1).
 *
 * Two ways to keep weights in flight: D steps per warp in registers (the
 * engine's register form), or P steps per warp in a shared-memory ring
 * filled by cp.async. Why the ring: with 64 tokens the accumulators take 64
 * registers per thread, so the register form holds at most ~32-64 KB of
 * weights in flight per SM, where the read loop of dev_layer_stream needs
 * ~128 KB per SM to reach the copy rate (§6.0c); the ring holds 8-16 KB per
 * warp at no register cost (each lane reads back the 32 bytes it copied, so
 * its own cp.async.wait_group is the only synchronization).
 *
 * Checked against the CPU (bit for bit) for every configuration; timed per
 * projection over weight sets rotated past L2, and as a layer (qkv, o,
 * gate_up, down back to back, each its best configuration) against the same
 * four cuBLASLt GEMMs. Built with -DDG_SKIP=bits it leaves phases out to
 * time the rest (1 = the MMAs, 2 = the cluster exchange, 4 = the token
 * columns; results unchecked).
 * Then the resident form (below): the projections as one dependent chain
 * (each one's outputs requantized into the next one's tokens) in one kernel,
 * against the same chain run one kernel per projection (cuBLASLt, and the
 * best launches above) with a requant kernel between; DG_RESIDENT=0 skips it.
 * Its best configuration is then compared in alternating rounds, with the
 * grid barrier fenced and in release/acquire form, first with the shift as
 * the seam and then with the engine's (BF16 dequant, per-token absmax quant).
 * Usage: [DG_SHAPES=N:K,...] [DG_VERBOSE=1] [DG_NO_MULTICAST=1] [DG_RESIDENT=0] dev_decode_gemm
 * Build: the CMake target, or nvcc -std=c++17 -O3 -arch=sm_90a -Idev -Isrc -Isrc/linear/include
 *        -Isrc/core/include dev/decode_gemm.cu -lcublasLt (add -DDG_SKIP=b or -DDG_EXCHANGE=x)
 */
#include <cooperative_groups.h>
#include <cublasLt.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype_inline.h"
#include "dev_common.h"
#include "engine/cuda/bf16.cuh"
#include "linear/kernels/bulk_copy.cuh"

namespace cg = cooperative_groups;

namespace {

constexpr int kM = 64;    /* tokens */
constexpr int kPad = 16;  /* bytes of padding per token row in shared memory (ldmatrix: no bank conflict) */
constexpr int kMaxS = 8;  /* portable cluster size */
constexpr int kMaxS3 = 16; /* K ranges of the exchange through global memory (no cluster) */
constexpr int kChunk = 8; /* K steps per token chunk (a multiple of every D) */

template <int WR, int WK> __host__ __device__ constexpr int part_ld() { return 32 * WR + 8; }
/* the push exchange's receive slots: S shares of the 64 x 32 WR tile (+ the rounding of S) */
constexpr size_t recv_bytes(int wr) { return ((size_t)kM * 8 * wr + kMaxS) * 16; }

/* Shared memory: the token columns of the block's K range, then (aliased) the WK partial tiles. */
template <int WR, int WK> __host__ __device__ size_t block_smem(int max_bsteps) {
    size_t tokens = (size_t)kM * (max_bsteps * 32 + kPad);
    size_t parts = (size_t)WK * kM * part_ld<WR, WK>() * 4;
    return tokens > parts ? tokens : parts;
}

/* sm_90 only (clusters, griddepcontrol): the CI build compiles this file for sm_80 too */
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
__device__ __forceinline__ void mma_s8(int (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void *smem) {
    uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem) {
    uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(gmem));
}

/* cp.async.wait_group takes an immediate: at most n groups still pending
 * (n > 31: 31, which waits for more than asked: still correct) */
template <int N> __device__ __forceinline__ void wait_pending_le(int n) {
    if constexpr (N == 0) {
        asm volatile("cp.async.wait_group 0;" ::: "memory");
    } else {
        if (n >= N)
            asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
        else
            wait_pending_le<N - 1>(n);
    }
}
__device__ __forceinline__ void wait_pending(int n) { wait_pending_le<31>(n); }

/* Weights are read once: no L1 allocation. */
__device__ __forceinline__ uint4 ld_stream(const uint4 *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

/* the multicast form (sm_90a), beside linear/kernels/bulk_copy.cuh's mbarrier and bulk copy */
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
/* one arrival on the barrier at the same offset in cluster block `rank` */
__device__ __forceinline__ void mbar_arrive_at(uint32_t bar, int rank) {
    uint32_t remote;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(bar), "r"(rank));
    asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];" ::"r"(remote) : "memory");
}
/* the same bytes to the same offset in every block of `mask`, each block's barrier at `bar` told */
__device__ __forceinline__ void bulk_load_multicast(uint32_t dst, const void *src, uint32_t bytes, uint32_t bar,
                                                    uint16_t mask) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1], "
                 "%2, [%3], %4;" ::"r"(dst), "l"(src), "r"(bytes), "r"(bar), "h"(mask) : "memory");
}
__device__ __forceinline__ void cluster_barrier() {
    asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
#endif

#endif

/* Phase switches for timing only (results are wrong, the check is off):
 * DG_SKIP bit 0 = no ldmatrix / MMA (the weights folded into the
 * accumulators by XOR so their loads stay live), bit 1 = no cluster
 * exchange (each block stores its own partial), bit 2 = no token columns. */
#ifndef DG_SKIP
#define DG_SKIP 0
#endif
constexpr bool kSkipMma = DG_SKIP & 1, kSkipExchange = DG_SKIP & 2, kSkipTokens = DG_SKIP & 4;
/* The split-K exchange, -DDG_EXCHANGE=x: 0 = pull, one rank after the other
 * (the engine's form); 1 = pull with every rank's loads in flight at once;
 * 2 = push into the owner's receive slots, one cluster barrier; 3 = no
 * cluster: through a global workspace, the last block of a row block sums. */
#ifndef DG_EXCHANGE
#define DG_EXCHANGE 0
#endif
constexpr int kExchange = DG_EXCHANGE;
/* the multicast form needs the arch-specific target (-arch=sm_90a): whether
 * this build has it, asked of the device code (the host pass cannot tell) */
__global__ void multicast_probe(int *built) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    *built = 1;
#else
    *built = 0;
#endif
}
bool multicast_built() {
    int *d, h = 0;
    CK(cudaMalloc(&d, sizeof *d));
    multicast_probe<<<1, 1>>>(d);
    CK(cudaMemcpy(&h, d, sizeof h, cudaMemcpyDeviceToHost));
    CK(cudaFree(d));
    return h == 1;
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
/* One 32-column step of a warp's 32 rows against MT m-tiles of 16 tokens: the
 * token fragments by ldmatrix from `xl` (the lane's row address, `ld` bytes
 * per token row) at column `col`, the weights (v0, v1) as B. DG_SKIP bit 0:
 * the weights folded into the accumulators instead, so their loads stay live. */
template <int MT>
__device__ __forceinline__ void mma_step(int (&acc)[MT][4][4], const uint8_t *xl, int ld, int col, const uint4 &v0,
                                         const uint4 &v1) {
    if constexpr (kSkipMma) {
        acc[0][0][0] ^= v0.x ^ v0.y ^ v0.z ^ v0.w;
        acc[0][0][1] ^= v1.x ^ v1.y ^ v1.z ^ v1.w;
    } else {
        uint32_t A[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
            ldsm_x4(A[mt], xl + mt * 16 * ld + col);
#pragma unroll
        for (int G = 0; G < 4; G++) {
            /* row group G = rows 8G..8G+7 of the warp's 32: b0 = v.x / v.y, b1 = v.z / v.w */
            const uint4 &v = (G >> 1) ? v1 : v0;
            const uint32_t lo = (G & 1) ? v.y : v.x, hi = (G & 1) ? v.w : v.z;
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
                mma_s8(acc[mt][G], A[mt], lo, hi);
        }
    }
}

/* A block's share of a projection: its K split `split` of S and row block rb
 * (every field uniform over the block but ws and w, which are the warp's K
 * slice; `on` is the resident form's: whether the block has work this round). */
struct Share {
    bool on;
    int rb, split, b0, bsteps, w0, ws, ld, nchunks;
    const uint4 *w;
};
template <int WR, int WK>
__device__ __forceinline__ Share share_at(const uint4 *wl, int k, int S, int split, int rb) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, wr = warp % WR, wk = warp / WR;
    const int steps = k / 32;
    Share sh;
    sh.on = true, sh.rb = rb, sh.split = split;
    /* the block's steps [b0, b0 + bsteps) of K, the warp's [w0, w0 + ws) within them */
    sh.b0 = split * steps / S;
    sh.bsteps = (split + 1) * steps / S - sh.b0;
    sh.w0 = sh.b0 + wk * sh.bsteps / WK;
    sh.ws = sh.b0 + (wk + 1) * sh.bsteps / WK - sh.w0;
    const int rg = rb * WR + wr; /* 32-row group: half (rg & 1) of 64-row tile rg / 2 */
    sh.w = wl + ((size_t)(rg >> 1) * steps + sh.w0) * 128 + (rg & 1) * 64 + lane;
    sh.ld = (steps / S + 1) * 32 + kPad;
    sh.nchunks = ((sh.bsteps + WK - 1) / WK + kChunk - 1) / kChunk;
    return sh;
}

/* The token columns of a block's K range (steps [b0, b0 + bsteps) of the 64
 * token rows, row stride ld in shared memory), in nchunks chunks of kChunk
 * steps of every one of the WK warp slices (chunk j = steps w0 + j kChunk ..
 * of each slice), one cp.async group each: the MMAs of chunk j start when it
 * has landed, while the later chunks are still on their way. */
template <int WR, int WK>
__device__ __forceinline__ void load_tokens(uint8_t *smem, const int8_t *x, int k, int b0, int bsteps, int ld,
                                            int nchunks) {
    for (int j = 0; j < nchunks; j++) {
        if (!kSkipTokens)
            for (int i = threadIdx.x; i < kM * WK * kChunk * 2; i += WR * WK * 32) {
                const int half = i & 1, st = (i >> 1) % kChunk, v = (i >> 1) / kChunk % WK,
                          r = (i >> 1) / kChunk / WK;
                const int v0 = b0 + v * bsteps / WK, v1 = b0 + (v + 1) * bsteps / WK, s = v0 + j * kChunk + st;
                if (s < v1)
                    cp_async16(smem + r * ld + (s - b0) * 32 + half * 16, x + (size_t)r * k + s * 32 + half * 16);
            }
        asm volatile("cp.async.commit_group;" ::: "memory");
    }
}

/* The first D steps of a warp's weights (w: the lane's first record of its K slice, ws steps). */
template <int D> __device__ __forceinline__ void preload(uint4 (&a)[D][2], const uint4 *w, int ws) {
#pragma unroll
    for (int d = 0; d < D; d++)
        if (d < ws) {
            a[d][0] = ld_stream(w + d * 128);
            a[d][1] = ld_stream(w + d * 128 + 32);
        }
}

/* The register form's main loop: ws steps of the warp's K slice against the
 * token columns as their chunks land (load_tokens' groups being the last
 * committed), D steps of weights in flight, each refilled once its MMAs
 * have used it. xl: the lane's ldmatrix address of the slice's first step. */
template <int D>
__device__ __forceinline__ void register_loop(int (&acc)[4][4][4], uint4 (&a)[D][2], const uint4 *w, int ws,
                                              const uint8_t *xl, int ld, int nchunks) {
    static_assert(kChunk % D == 0, "a step's token columns must have landed with its chunk");
    for (int j = 0; j < nchunks; j++) {
        wait_pending(nchunks - 1 - j);
        __syncthreads(); /* chunk j of every slice has landed (every thread's copies) */
        for (int sb = j * kChunk; sb < (j + 1) * kChunk && sb < ws; sb += D) {
#pragma unroll
            for (int d = 0; d < D; d++) {
                const int s = sb + d;
                if (s < ws) {
                    mma_step<4>(acc, xl, ld, s * 32, a[d][0], a[d][1]);
                    if (s + D < ws) {
                        a[d][0] = ld_stream(w + (s + D) * 128);
                        a[d][1] = ld_stream(w + (s + D) * 128 + 32);
                    }
                }
            }
        }
    }
}

/* The ring form: P steps per warp in a shared-memory ring filled by cp.async
 * (no registers held per step in flight); `ring` is the lane's slot of the
 * warp's ring, and each lane reads back exactly the 32 bytes it copied, so
 * its own cp.async.wait_group is the only synchronization the ring needs.
 * Group order per thread: W0 .. W(P-1) (ring_preload), the nchunks token
 * chunks (load_tokens), then one group per step s (W(s + P), possibly empty). */
template <int P> __device__ __forceinline__ void ring_preload(uint4 *ring, const uint4 *w, int ws) {
#pragma unroll
    for (int d = 0; d < P; d++) {
        if (d < ws) {
            cp_async16(ring + d * 64, w + d * 128);
            cp_async16(ring + d * 64 + 32, w + d * 128 + 32);
        }
        asm volatile("cp.async.commit_group;" ::: "memory");
    }
}
/* The ring form's main loop (register_loop's counterpart); the ring is empty when it returns. */
template <int P>
__device__ __forceinline__ void ring_loop(int (&acc)[4][4][4], uint4 *ring, const uint4 *w, int ws,
                                          const uint8_t *xl, int ld, int nchunks) {
    for (int j = 0; j < nchunks; j++) {
        /* chunk j's group is followed by the later chunks' and one per step done */
        wait_pending(nchunks - 1 - j + min(j * kChunk, ws));
        __syncthreads(); /* chunk j of every slice has landed (every thread's copies) */
        for (int s = j * kChunk; s < (j + 1) * kChunk && s < ws; s++) {
            if (s < P)
                wait_pending(P + nchunks - 1);
            else
                asm volatile("cp.async.wait_group %0;" ::"n"(P - 1) : "memory");
            uint4 *slot = ring + (s % P) * 64;
            const uint4 v0 = slot[0], v1 = slot[32];
            mma_step<4>(acc, xl, ld, s * 32, v0, v1);
            if (s + P < ws) { /* after the MMAs used v0 / v1: the slot is free */
                cp_async16(slot, w + (s + P) * 128);
                cp_async16(slot + 32, w + (s + P) * 128 + 32);
            }
            asm volatile("cp.async.commit_group;" ::: "memory");
        }
    }
    asm volatile("cp.async.wait_group 0;" ::: "memory");
}

/* A block's partial tile into shared memory (the token columns are dead):
 * acc[mt][G][e] is token mt*16 + g (+8 for e >= 2), row wr*32 + G*8 + 2q + (e & 1);
 * warp slice wk's tile at part + wk * kM * part_ld. */
template <int WR, int WK> __device__ __forceinline__ void store_partials(int *part, const int (&acc)[4][4][4]) {
    constexpr int kLd = part_ld<WR, WK>();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    const int wr = warp % WR, wk = warp / WR;
#pragma unroll
    for (int mt = 0; mt < 4; mt++)
#pragma unroll
        for (int G = 0; G < 4; G++) {
            int *p = part + (wk * kM + mt * 16 + g) * kLd + wr * 32 + G * 8 + 2 * q;
            *(int2 *)p = make_int2(acc[mt][G][0], acc[mt][G][1]);
            *(int2 *)(p + 8 * kLd) = make_int2(acc[mt][G][2], acc[mt][G][3]);
        }
}

/* item i (a token, 4 rows) of warp slice v's partial tile */
template <int WR, int WK> __device__ __forceinline__ int4 item_at(const int *pt, int v, int i) {
    constexpr int kLd = part_ld<WR, WK>(), kRows = 32 * WR;
    return *(const int4 *)(pt + (v * kM + i / (kRows / 4)) * kLd + (i % (kRows / 4)) * 4);
}

/* Item i summed over the S cluster ranks rank0 .. rank0 + S - 1 and their WK
 * warp slices, rank after rank (the pull exchange; int32: exact in any order). */
template <int WR, int WK>
__device__ __forceinline__ int4 pull_sum(cg::cluster_group &cluster, int *part, int rank0, int S, int i) {
    int4 sum = make_int4(0, 0, 0, 0);
    for (int c = 0; c < S; c++) {
        const int *pc = cluster.map_shared_rank(part, rank0 + c);
#pragma unroll
        for (int v = 0; v < WK; v++) {
            const int4 u = item_at<WR, WK>(pc, v, i);
            sum.x += u.x, sum.y += u.y, sum.z += u.z, sum.w += u.w;
        }
    }
    return sum;
}
#endif

template <int WR, int WK, int D, int MINB, int P>
__global__ void __launch_bounds__(WR *WK * 32, MINB)
    decode_gemm(const uint4 *__restrict__ wl, const int8_t *__restrict__ x, int n, int k, int *__restrict__ out,
                int *__restrict__ work, unsigned *__restrict__ count) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    constexpr int kThreads = WR * WK * 32, kRows = 32 * WR;
    extern __shared__ __align__(16) uint8_t smem[];
    cg::cluster_group cluster = cg::this_cluster();
    const int S = gridDim.x, split = blockIdx.x, rb = blockIdx.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int steps = k / 32;
    const Share sh = share_at<WR, WK>(wl, k, S, split, rb);
    const int b0 = sh.b0, bsteps = sh.bsteps, w0 = sh.w0, ws = sh.ws, ld = sh.ld, nchunks = sh.nchunks;
    const uint4 *w = sh.w;

    /* P = 0: D steps in registers. P > 0: P steps per warp in a shared-memory
     * ring (ring_preload, ring_loop), after the token columns. */
    uint4 a[P ? 1 : D][2];
    uint4 *ring = reinterpret_cast<uint4 *>(smem + block_smem<WR, WK>(steps / S + 1)) + warp * P * 64 + lane;
    if constexpr (P == 0)
        preload<D>(a, w, ws);
    else
        ring_preload<P>(ring, w, ws);
    if constexpr (kExchange == 2 && !kSkipExchange) /* a block may write another's shared memory only once that one runs */
        asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;");
    asm volatile("griddepcontrol.wait;" ::: "memory");

    load_tokens<WR, WK>(smem, x, k, b0, bsteps, ld, nchunks);

    int acc[4][4][4];
#pragma unroll
    for (int mt = 0; mt < 4; mt++)
#pragma unroll
        for (int G = 0; G < 4; G++)
            acc[mt][G][0] = acc[mt][G][1] = acc[mt][G][2] = acc[mt][G][3] = 0;
    /* ldmatrix.x4: lanes 8i..8i+7 address the rows of matrix i = (rows +8 if i odd, bytes +16 if i >= 2) */
    const uint8_t *xl = smem + ((lane & 7) + ((lane >> 3) & 1) * 8) * ld + (lane >> 4) * 16 + (w0 - b0) * 32;
    if constexpr (P == 0)
        register_loop<D>(acc, a, w, ws, xl, ld, nchunks);
    else
        ring_loop<P>(acc, ring, w, ws, xl, ld, nchunks);

    if constexpr (kSkipExchange) {
        int sum = 0;
#pragma unroll
        for (int mt = 0; mt < 4; mt++)
#pragma unroll
            for (int G = 0; G < 4; G++)
                sum += acc[mt][G][0] + acc[mt][G][1] + acc[mt][G][2] + acc[mt][G][3];
        out[((size_t)(rb * S + split) * kThreads + threadIdx.x) % ((size_t)kM * n)] = sum;
        return;
    }
    __syncthreads(); /* the token columns are dead: their shared memory takes the partials */
    int *part = (int *)smem;
    store_partials<WR, WK>(part, acc);
    /* block r of the cluster owns slice r of the 64 x kRows tile's items (a token, 4 rows) */
    constexpr int kItems = kM * kRows / 4;
    const int lo = split * kItems / S, hi = (split + 1) * kItems / S;
    auto warps_sum = [&](int i) { /* item i summed over the block's WK warps, in warp order */
        int4 sum = item_at<WR, WK>(part, 0, i);
#pragma unroll
        for (int v = 1; v < WK; v++) {
            const int4 u = item_at<WR, WK>(part, v, i);
            sum.x += u.x, sum.y += u.y, sum.z += u.z, sum.w += u.w;
        }
        return sum;
    };
    auto store_item = [&](int i, int4 sum) {
        *(int4 *)(out + (size_t)(i / (kRows / 4)) * n + rb * kRows + (i % (kRows / 4)) * 4) = sum;
    };
    if constexpr (kExchange == 3) {
        /* no cluster: the block's WK partials summed, stored to a global
         * workspace (slot `split` of its row block), and the block exits unless
         * it is the row block's last to arrive; that one sums the S slots in
         * rank order (exact in int32) and stores the tile. Why: a block whose
         * K range is done frees its SM for the next kernel at once, where a
         * cluster barrier holds every block until the cluster's slowest. */
        __syncthreads();
        int *slot = work + ((size_t)rb * S + split) * kItems * 4;
        for (int i = threadIdx.x; i < kItems; i += kThreads)
            __stcg((int4 *)slot + i, warps_sum(i));
        __threadfence();
        __syncthreads();
        if (!__syncthreads_or(threadIdx.x == 0 && atomicAdd(count + rb, 1u) == (unsigned)S - 1))
            return;
        __threadfence(); /* the other blocks' slots, seen after their counts */
        const int4 *slots = (const int4 *)(work + (size_t)rb * S * kItems * 4);
        for (int i = threadIdx.x; i < kItems; i += kThreads) {
            int4 u[kMaxS3];
#pragma unroll
            for (int c = 0; c < kMaxS3; c++)
                if (c < S)
                    u[c] = __ldcg(slots + (size_t)c * kItems + i);
            int4 sum = make_int4(0, 0, 0, 0);
#pragma unroll
            for (int c = 0; c < kMaxS3; c++)
                if (c < S)
                    sum.x += u[c].x, sum.y += u[c].y, sum.z += u[c].z, sum.w += u[c].w;
            store_item(i, sum);
        }
        if (threadIdx.x == 0)
            count[rb] = 0; /* ready for the next launch */
        return;
    }
    if constexpr (kExchange == 2) {
        /* push: the block sums its WK partials and sends each item to its owner's
         * receive slots (slot `split` of S); one cluster barrier, then every
         * owner sums S local slots. No block reads another's shared memory after
         * the barrier, so none waits for the others before it exits. */
        int4 *recv = reinterpret_cast<int4 *>(smem + block_smem<WR, WK>(steps / S + 1) + WR * WK * P * 1024);
        const int slice = (kItems + S - 1) / S;
        asm volatile("barrier.cluster.wait.aligned;" ::: "memory"); /* every block of the cluster has started */
        __syncthreads();
        for (int i = threadIdx.x; i < kItems; i += kThreads) {
            const int4 sum = warps_sum(i);
            int c = i * S / kItems;
            while ((c + 1) * kItems / S <= i)
                c++;
            int4 *dst = cluster.map_shared_rank(recv, c);
            dst[split * slice + i - c * kItems / S] = sum;
        }
        cluster.sync(); /* every item has reached its owner */
        for (int i = lo + threadIdx.x; i < hi; i += kThreads) {
            int4 sum = make_int4(0, 0, 0, 0);
            for (int c = 0; c < S; c++) {
                const int4 u = recv[c * slice + i - lo];
                sum.x += u.x, sum.y += u.y, sum.z += u.z, sum.w += u.w;
            }
            store_item(i, sum);
        }
        return;
    }
    cluster.sync(); /* every block's partials are written */
    for (int i = lo + threadIdx.x; i < hi; i += kThreads) {
        int4 sum = make_int4(0, 0, 0, 0);
        if constexpr (kExchange == 1) {
            /* every rank's loads issued before the first add: one round trip, not S */
            int4 u[kMaxS][WK];
#pragma unroll
            for (int c = 0; c < kMaxS; c++)
                if (c < S) {
                    const int *pc = cluster.map_shared_rank(part, c);
#pragma unroll
                    for (int v = 0; v < WK; v++)
                        u[c][v] = item_at<WR, WK>(pc, v, i);
                }
#pragma unroll
            for (int c = 0; c < kMaxS; c++)
                if (c < S)
#pragma unroll
                    for (int v = 0; v < WK; v++)
                        sum.x += u[c][v].x, sum.y += u[c][v].y, sum.z += u[c][v].z, sum.w += u[c][v].w;
        } else {
            sum = pull_sum<WR, WK>(cluster, part, 0, S, i);
        }
        store_item(i, sum);
    }
    cluster.sync(); /* the other blocks are done reading this block's partials */
#else
    __trap(); /* clusters and griddepcontrol: sm_90 */
#endif
}

/* The multicast form: the 64 tokens split over a cluster of C blocks instead
 * of K. Why: at 64 tokens a K range's int32 partial is 256 bytes per row,
 * against K / S weight bytes per row, so every split of K exchanges 40% as
 * many bytes as it streams (qkv, S 4), through distributed shared memory or
 * global memory, and waits for it (§6.0e, §6.0f). Here each block owns 64 / C
 * tokens over the whole K of its R = 32 WR rows, so it owns its outputs: no
 * exchange. The weights still leave HBM and L2 once: the cluster's rank 0
 * streams the row block's records (bulk copies of SK steps per 64-row tile)
 * into every block's ring of NS stages at once (multicast); each block's
 * barrier counts the bytes it received, and each consumer warp of the cluster
 * frees a stage by one arrival on rank 0's barrier for it. One producer warp
 * per block (lane 0) arms the block's barriers and, on rank 0, issues the
 * copies; WR x WK consumer warps (WK along the steps of a stage, summed at
 * the end). Grid (C, N / R), clusters of (C, 1, 1). sm_90a (multicast). */
/* the token rows, later (WK > 1) the WK warps' partial tiles */
template <int WR, int WK, int C> __host__ __device__ constexpr size_t mc_token_bytes(int k) {
    const size_t rows = (size_t)(kM / C) * (k + kPad), parts = WK > 1 ? (size_t)WK * (kM / C) * (32 * WR + 8) * 4 : 0;
    return ((rows > parts ? rows : parts) + 15) / 16 * 16;
}
template <int WR, int SK> __host__ __device__ constexpr int mc_stage_bytes() { return WR / 2 * SK * 2048; }
template <int WR, int WK, int C, int SK, int NS> size_t mc_smem(int k) {
    return (size_t)NS * mc_stage_bytes<WR, SK>() + mc_token_bytes<WR, WK, C>(k) + 2 * NS * 8;
}

template <int WR, int WK, int C, int SK, int NS>
__global__ void __launch_bounds__(WR *WK * 32 + 32, 1)
    decode_gemm_mc(const uint4 *__restrict__ wl, const int8_t *__restrict__ x, int n, int k, int *__restrict__ out,
                   int *, unsigned *) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int T = kM / C, MT = T / 16, NW = WR * WK, R = 32 * WR, TILES = R / 64, SB = mc_stage_bytes<WR, SK>();
    constexpr int CS = SK >= kChunk ? 1 : kChunk / SK; /* fills per token chunk */
    static_assert(WR % 2 == 0 && T % 16 == 0, "whole 64-row tiles, whole m16 token tiles");
    extern __shared__ __align__(16) uint8_t smem[]; /* the bulk copies need 16 */
    const int steps = k / 32, fills = (steps + SK - 1) / SK, nch = (fills + CS - 1) / CS;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    const int rank = blockIdx.x, ld = k + kPad;
    uint8_t *tok = smem + NS * SB;
    const uint32_t full = smem_addr(tok + mc_token_bytes<WR, WK, C>(k)), empty = full + NS * 8;
    if (threadIdx.x == 0)
        for (int i = 0; i < NS; i++) {
            mbar_init(full + i * 8, 1);
            mbar_init(empty + i * 8, C * NW);
        }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    cluster_barrier(); /* every block's barriers exist before a copy or an arrival reaches them */
    asm volatile("griddepcontrol.launch_dependents;");

    if (warp == NW) { /* the producer: no kernel writes the weights, so no PDL wait */
        if (lane == 0) {
            const uint8_t *wrow = reinterpret_cast<const uint8_t *>(wl) + (size_t)blockIdx.y * TILES * steps * 2048;
            for (int f = 0; f < fills; f++) {
                const int st = f % NS;
                const uint32_t prev = ((f / NS) & 1) ^ 1, run = (uint32_t)min(SK, steps - f * SK) * 2048;
                if (f >= NS) /* this block's consumers have seen fill f - NS: its phase is over */
                    mbar_wait(full + st * 8, prev);
                mbar_expect_tx(full + st * 8, run * TILES);
                if (rank == 0) {
                    if (f >= NS) /* every consumer warp of the cluster is done with fill f - NS */
                        mbar_wait(empty + st * 8, prev);
                    for (int t = 0; t < TILES; t++) {
                        const uint32_t dst = smem_addr(smem + st * SB + t * SK * 2048);
                        const uint8_t *src = wrow + ((size_t)t * steps + (size_t)f * SK) * 2048;
                        if constexpr (C == 1)
                            bulk_load(dst, src, run, full + st * 8);
                        else
                            bulk_load_multicast(dst, src, run, full + st * 8, (uint16_t)((1u << C) - 1));
                    }
                }
            }
        }
        __syncwarp();
        cluster_barrier(); /* no block exits while a copy or an arrival may still reach it */
        return;
    }

    const int wr = warp % WR, wk = warp / WR, tok0 = rank * T;
    asm volatile("griddepcontrol.wait;" ::: "memory");
    /* the block's token rows, in chunks of CS fills (one cp.async group each) */
    for (int j = 0; j < nch; j++) {
        if (!kSkipTokens)
            for (int i = threadIdx.x; i < T * CS * SK * 2; i += NW * 32) {
                const int r = i / (CS * SK * 2), piece = i % (CS * SK * 2), st = j * CS * SK + piece / 2;
                if (st < steps)
                    cp_async16(tok + r * ld + st * 32 + (piece & 1) * 16,
                               x + (size_t)(tok0 + r) * k + st * 32 + (piece & 1) * 16);
            }
        asm volatile("cp.async.commit_group;" ::: "memory");
    }
    int acc[MT][4][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int G = 0; G < 4; G++)
            acc[mt][G][0] = acc[mt][G][1] = acc[mt][G][2] = acc[mt][G][3] = 0;
    const uint8_t *xl = tok + ((lane & 7) + ((lane >> 3) & 1) * 8) * ld + (lane >> 4) * 16;
    for (int f = 0; f < fills; f++) {
        if (f % CS == 0) {
            wait_pending(nch - 1 - f / CS);
            asm volatile("bar.sync 1, %0;" ::"n"(NW * 32) : "memory"); /* the chunk's rows, every thread's copies */
        }
        const int st = f % NS, in = min(SK, steps - f * SK);
        mbar_wait(full + st * 8, (f / NS) & 1);
        const uint4 *rec = reinterpret_cast<const uint4 *>(smem + st * SB) + (wr >> 1) * SK * 128 + (wr & 1) * 64 + lane;
#pragma unroll
        for (int j = wk; j < SK; j += WK) {
            if (j < in) {
                const uint4 v0 = rec[j * 128], v1 = rec[j * 128 + 32];
                mma_step<MT>(acc, xl, ld, (f * SK + j) * 32, v0, v1);
            }
        }
        __syncwarp(); /* every lane's reads of the stage are done (the MMAs used them) */
        if (lane == 0)
            mbar_arrive_at(empty + st * 8, 0);
    }
    /* acc[mt][G][e]: token tok0 + mt*16 + g (+8 for e >= 2), row wr*32 + G*8 + 2q + (e & 1) */
    const int row0 = blockIdx.y * R;
    if constexpr (WK == 1) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int G = 0; G < 4; G++) {
                int *o = out + (size_t)(tok0 + mt * 16 + g) * n + row0 + wr * 32 + G * 8 + 2 * q;
                *(int2 *)o = make_int2(acc[mt][G][0], acc[mt][G][1]);
                *(int2 *)(o + 8 * (size_t)n) = make_int2(acc[mt][G][2], acc[mt][G][3]);
            }
    } else { /* the WK warps' partials through shared memory (the token rows are dead) */
        constexpr int LD = R + 8;
        asm volatile("bar.sync 1, %0;" ::"n"(NW * 32) : "memory");
        int *part = reinterpret_cast<int *>(tok);
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int G = 0; G < 4; G++) {
                int *p = part + (wk * T + mt * 16 + g) * LD + wr * 32 + G * 8 + 2 * q;
                *(int2 *)p = make_int2(acc[mt][G][0], acc[mt][G][1]);
                *(int2 *)(p + 8 * LD) = make_int2(acc[mt][G][2], acc[mt][G][3]);
            }
        asm volatile("bar.sync 1, %0;" ::"n"(NW * 32) : "memory");
        for (int i = threadIdx.x; i < T * R / 4; i += NW * 32) {
            const int t = i / (R / 4), c4 = (i % (R / 4)) * 4;
            int4 sum = *(const int4 *)(part + t * LD + c4);
#pragma unroll
            for (int v = 1; v < WK; v++) {
                const int4 u = *(const int4 *)(part + (v * T + t) * LD + c4);
                sum.x += u.x, sum.y += u.y, sum.z += u.z, sum.w += u.w;
            }
            *(int4 *)(out + (size_t)(tok0 + t) * n + row0 + c4) = sum;
        }
    }
    cluster_barrier();
#else
    __trap(); /* multicast bulk copies: sm_90a */
#endif
}

/* The resident form: one kernel runs a chain of dependent projections (a
 * layer: qkv -> o -> gate_up -> down), each projection's outputs requantized
 * into the next one's tokens, with a grid-wide barrier between them.
 * Why: swept over K, each projection kernel pays a fixed 4-7 µs (launch, the
 * first loads, the split-K exchange's wait, the last block's drain) on top of
 * its bytes (§6.0f); a grid that stays resident pays the launch once per
 * chain, and each block requests the next projection's weights (into L2 by a
 * bulk prefetch, then its first D steps into registers) before it waits for
 * the exchange and the barrier, so the weight stream does not stop while the
 * partials are summed.
 * Grid: as many clusters of C blocks as fit at once (the barrier needs every
 * block resident); projection p splits K S_p ways (S_p divides C), so a
 * cluster holds C / S_p row blocks at a time, and the clusters take the row
 * blocks round by round. Each register-form step is the per-projection
 * kernel's (load_tokens, register_loop, store_partials, pull_sum). */
constexpr int kMaxChain = 4;
/* x0 = X; x(p+1)[t][c] = requant(out_p[t][c]) for c < K(p+1): the next projection's tokens */
__host__ __device__ inline int8_t requant(int v, int shift) {
    v >>= shift; /* arithmetic: the CPU reference shifts the same way */
    return (int8_t)(v < -127 ? -127 : v > 127 ? 127 : v);
}
/* The engine's seam instead of the shift (Chain::seam): out_p dequantized by a
 * per-channel scale into BF16 (the engine's hidden state), then each token row
 * quantized by its absmax over the whole row (quant.h: a = max(absmax, 1e-12),
 * q = rint(v * RN(127 / a))). The absmax needs every block's outputs, so the
 * resident chain pays a second grid barrier per seam; norms and residuals are
 * elementwise around it (an RMS factor cancels out of q). Host and device
 * round the same way (RN products, no contraction). */
__host__ __device__ inline float seam_dequant(int sum, float sw) { /* the BF16 value, as a float */
#ifdef __CUDA_ARCH__
    return ss_bf(ss_to_bf(__fmul_rn(__int2float_rn(sum), sw)));
#else
    return ss_bf16_to_f32_inline(ss_f32_to_bf16_inline((float)sum * sw));
#endif
}
__host__ __device__ inline float seam_inv(float absmax) {
    const float a = absmax > 1e-12f ? absmax : 1e-12f;
#ifdef __CUDA_ARCH__
    return __fdiv_rn(127.0f, a);
#else
    return 127.0f / a;
#endif
}
__host__ __device__ inline int8_t seam_quant(float v, float inv) {
#ifdef __CUDA_ARCH__
    const float t = rintf(__fmul_rn(v, inv));
#else
    const float t = rintf(v * inv);
#endif
    return (int8_t)(t < -128.0f ? -128.0f : t > 127.0f ? 127.0f : t);
}
struct ChainProj {
    const uint4 *wl;  /* weights, stream layout */
    const int8_t *x;  /* its tokens, 64 x k */
    int8_t *next;     /* the next projection's tokens (64 x kn), or null: int32 to out */
    int *out;
    const float *sw;  /* the token-quant seam's per-channel scales (n) */
    uint16_t *h;      /* its dequantized outputs (64 x kn, BF16 bits) */
    int n, k, kn, shift, s;
    int ring; /* the ring form (the kernel's P steps per warp in shared memory), else the register form */
};
struct Chain {
    ChainProj p[kMaxChain];
    int count;
    int prefetch;   /* steps per 64-row tile of the next projection requested into L2 ahead (0: none) */
    unsigned base;  /* the barrier count when this launch starts (it only grows) */
    unsigned *bar;  /* [0] the arrival count, [1] set when a wait timed out (blocks not co-resident) */
    long long *stamps; /* or null: per block and projection kStamps clock64 readings (phase ends) */
    int ring_at;       /* the weight rings' byte offset in shared memory (after the token columns) */
    int seam_at;       /* the token-quant seam's per-token absmax and 127 / absmax (kSeamSmem bytes, last) */
    int seam;          /* 0: the shift; the token-quant seam 1: quantized by its producers between two
                        * grid barriers, 2: by its consumers as they load their token columns (one) */
    unsigned *amax;    /* the token-quant seam's per-token absmax (float bits): [2][kMaxChain][kM] */
    int bank;          /* this launch's half of amax; it zeroes the other one for the next launch */
    int release;       /* the grid barrier's release/acquire form (grid_arrive) */
    int check;         /* seam 2: one block per K range also stores its tokens (the bit check's launch) */
};
/* dynamic, not static: one block per SM takes the whole opt-in maximum, and static shared
 * memory would push it over */
constexpr int kSeamSmem = 2 * kM * 4;
/* phase ends of a projection in a block: its start (the barrier passed), the MMAs done, the
 * cluster's partials visible (the exchange's wait), the block's slice summed and its stores
 * issued, the arrival at the grid barrier (its fence and count) done; with the token-quant
 * seam also the first barrier passed and the quantized tokens stored (the next projection's
 * start is then the second barrier passed) */
constexpr int kStamps = 7;

template <int WR>
__host__ __device__ inline int rounds_of(const ChainProj &p, int C, int ncl) {
    const int groups = ncl * (C / p.s), rbs = p.n / (32 * WR);
    return (rbs + groups - 1) / groups;
}
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
/* the block's share of round `round` of projection p: cluster rank `rank` holds split rank % S
 * of row block (round * ncl + cluster) * (C / S) + rank / S */
template <int WR, int WK> __device__ Share share_of(const ChainProj &p, int round, int rank, int C, int ncl) {
    const int rb = (round * ncl + (int)blockIdx.x / C) * (C / p.s) + rank / p.s;
    Share sh = share_at<WR, WK>(p.wl, p.k, p.s, rank % p.s, rb);
    sh.on = rb < p.n / (32 * WR);
    return sh;
}

/* the first `steps` steps of each of the block's 64-row tiles of share `sh` into L2 */
template <int WR> __device__ __forceinline__ void prefetch_l2(const ChainProj &p, const Share &sh, int steps) {
    if (threadIdx.x < WR / 2 && sh.on && steps > 0) {
        const int tile = sh.rb * (WR / 2) + threadIdx.x, n = min(steps, sh.bsteps);
        const uint4 *src = p.wl + ((size_t)tile * (p.k / 32) + sh.b0) * 128;
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(src), "r"(n * 2048) : "memory");
    }
}

/* The block's WK warp slices summed into slice 0, in place (each item by one thread), so that
 * the exchange pulls one int4 per rank and item instead of WK. */
template <int WR, int WK> __device__ __forceinline__ void fold_slices(int *part) {
    constexpr int kLd = part_ld<WR, WK>(), kRows = 32 * WR;
    if constexpr (WK > 1) {
        __syncthreads(); /* every warp's partials are stored */
        for (int i = threadIdx.x; i < kM * kRows / 4; i += WR * WK * 32) {
            int4 sum = item_at<WR, WK>(part, 0, i);
#pragma unroll
            for (int v = 1; v < WK; v++) {
                const int4 u = item_at<WR, WK>(part, v, i);
                sum.x += u.x, sum.y += u.y, sum.z += u.z, sum.w += u.w;
            }
            *(int4 *)(part + (i / (kRows / 4)) * kLd + (i % (kRows / 4)) * 4) = sum;
        }
    }
}
/* Item i of the folded slices summed over ranks rank0 .. rank0 + S - 1 with every rank's
 * load issued before the first add: one round trip through distributed shared memory, not S. */
template <int WR, int WK>
__device__ __forceinline__ int4 pull_folded(cg::cluster_group &cluster, int *part, int rank0, int S, int i) {
    int4 u[kMaxS];
#pragma unroll
    for (int c = 0; c < kMaxS; c++)
        if (c < S)
            u[c] = item_at<WR, WK>(cluster.map_shared_rank(part, rank0 + c), 0, i);
    int4 sum = make_int4(0, 0, 0, 0);
#pragma unroll
    for (int c = 0; c < kMaxS; c++)
        if (c < S)
            sum.x += u[c].x, sum.y += u[c].y, sum.z += u[c].z, sum.w += u[c].w;
    return sum;
}

/* The grid barrier: arrivals count up from the launch's base; a block waits
 * until the count reaches `target` (every block of the grid arrived). The
 * caller synchronizes the block before it arrives (its stores issued).
 * `release`: the arrival is one release reduction and the wait's acquire load
 * is its only fence, instead of a full fence on each side (what the
 * acquire/release pattern needs, at less cost if the fences are what the
 * barrier's time goes to). */
__device__ __forceinline__ void grid_arrive(unsigned *bar, bool release) {
    if (threadIdx.x == 0) {
        if (release) {
            asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(bar) : "memory");
        } else {
            __threadfence();
            atomicAdd(bar, 1u);
        }
    }
}
__device__ __forceinline__ void grid_wait(unsigned *bar, unsigned target, bool release) {
    if (threadIdx.x == 0) {
        const long long t0 = clock64();
        unsigned v;
        for (;;) {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(bar) : "memory");
            if ((int)(v - target) >= 0)
                break;
            if (clock64() - t0 > (1ll << 28)) { /* ~0.1 s: some block never started; say so, do not hang */
                atomicExch(bar + 1, 1u);
                break;
            }
        }
        if (!release)
            __threadfence();
    }
    __syncthreads();
}

/* The token-quant seam's first half, for one item of the block's sum (4 rows of token t from
 * `row`): dequantized to BF16 and stored, the warp's absmax into the block's per-token max.
 * Every lane of the warp calls it with the same t: a slice is a multiple of 256 items (the
 * block's threads) and starts at one, 32 WR / 4 items a token. */
__device__ __forceinline__ void seam_store(const ChainProj &p, const int4 &sum, int t, int row, unsigned *smax) {
    float m = 0.0f;
    if (row < p.kn) {
        const float v[4] = {seam_dequant(sum.x, p.sw[row]), seam_dequant(sum.y, p.sw[row + 1]),
                            seam_dequant(sum.z, p.sw[row + 2]), seam_dequant(sum.w, p.sw[row + 3])};
        uint2 b;
        b.x = (__float_as_uint(v[0]) >> 16) | (__float_as_uint(v[1]) & 0xffff0000u);
        b.y = (__float_as_uint(v[2]) >> 16) | (__float_as_uint(v[3]) & 0xffff0000u);
        *(uint2 *)(p.h + (size_t)t * p.kn + row) = b;
        m = fmaxf(fmaxf(fabsf(v[0]), fabsf(v[1])), fmaxf(fabsf(v[2]), fabsf(v[3])));
    }
    /* |v| as bits orders as the floats do */
    const unsigned w = __reduce_max_sync(0xffffffffu, __float_as_uint(m));
    if ((threadIdx.x & 31) == 0 && w)
        atomicMax(smax + t, w);
}
/* Each token's 127 / absmax once per block (block-wide: every thread calls it), after the grid
 * barrier that makes every absmax final. */
__device__ __forceinline__ void seam_inverses(const unsigned *amax, float *sinv) {
    if (threadIdx.x < kM)
        sinv[threadIdx.x] = seam_inv(__uint_as_float(__ldcg(amax + threadIdx.x)));
    __syncthreads();
}
/* Four BF16 (two words, element 0 the low half of lo) quantized into four int8 bytes, in order. */
__device__ __forceinline__ uint32_t seam_quant4(uint32_t lo, uint32_t hi, float inv) {
    return (uint32_t)(uint8_t)seam_quant(__uint_as_float(lo << 16), inv) |
           (uint32_t)(uint8_t)seam_quant(__uint_as_float(lo & 0xffff0000u), inv) << 8 |
           (uint32_t)(uint8_t)seam_quant(__uint_as_float(hi << 16), inv) << 16 |
           (uint32_t)(uint8_t)seam_quant(__uint_as_float(hi & 0xffff0000u), inv) << 24;
}
/* Its second half, after the grid barrier: the block's own items of projection p read back and
 * quantized into the next projection's tokens. */
template <int WR, int WK>
__device__ __forceinline__ void seam_quantize(const ChainProj &p, const unsigned *amax, float *sinv, int C, int ncl,
                                              int rank) {
    constexpr int kThreads = WR * WK * 32, kRows = 32 * WR, kItems = kM * kRows / 4;
    seam_inverses(amax, sinv);
    const int rounds = rounds_of<WR>(p, C, ncl);
    for (int r = 0; r < rounds; r++) {
        const Share q = share_of<WR, WK>(p, r, rank, C, ncl);
        if (!q.on)
            continue;
        const int lo = q.split * kItems / p.s, hi = (q.split + 1) * kItems / p.s;
        for (int i = lo + (int)threadIdx.x; i < hi; i += kThreads) {
            const int t = i / (kRows / 4), row = q.rb * kRows + (i % (kRows / 4)) * 4;
            if (row >= p.kn)
                continue;
            const uint2 b = *(const uint2 *)(p.h + (size_t)t * p.kn + row);
            *(uint32_t *)(p.next + (size_t)t * p.kn + row) = seam_quant4(b.x, b.y, sinv[t]);
        }
    }
}

/* The token-quant seam without its second barrier (Chain::seam 2): a block quantizes the token
 * columns of its K range from the previous projection's BF16 outputs as it loads them (plain
 * loads, kB units of 16 columns in flight per thread; then the nchunks groups load_tokens would
 * have committed, empty, so that the main loops' group counts hold). Twice the bytes of int8
 * tokens, and not overlapped with the first MMAs: what it costs against a barrier. `x`, for
 * one block per K range in the checked launch, also gets them in global memory. */
template <int WR, int WK>
__device__ __forceinline__ void load_tokens_quant(uint8_t *smem, const uint16_t *h, const unsigned *amax, float *sinv,
                                                  int8_t *x, int k, int b0, int bsteps, int ld, int nchunks) {
    constexpr int kThreads = WR * WK * 32, kB = 4;
    const int units = bsteps * 2, total = kM * units;
    seam_inverses(amax, sinv);
    for (int i0 = threadIdx.x; i0 < total; i0 += kB * kThreads) {
        uint4 u[kB][2];
#pragma unroll
        for (int b = 0; b < kB; b++) {
            const int i = i0 + b * kThreads;
            if (i < total) {
                const uint4 *src = (const uint4 *)(h + (size_t)(i / units) * k + b0 * 32 + (i % units) * 16);
                u[b][0] = __ldcg(src), u[b][1] = __ldcg(src + 1);
            }
        }
#pragma unroll
        for (int b = 0; b < kB; b++) {
            const int i = i0 + b * kThreads;
            if (i < total) {
                const float v = sinv[i / units];
                const uint4 q = make_uint4(seam_quant4(u[b][0].x, u[b][0].y, v), seam_quant4(u[b][0].z, u[b][0].w, v),
                                           seam_quant4(u[b][1].x, u[b][1].y, v), seam_quant4(u[b][1].z, u[b][1].w, v));
                *(uint4 *)(smem + (i / units) * ld + (i % units) * 16) = q;
                if (x)
                    *(uint4 *)(x + (size_t)(i / units) * k + b0 * 32 + (i % units) * 16) = q;
            }
        }
    }
    for (int j = 0; j < nchunks; j++)
        asm volatile("cp.async.commit_group;" ::: "memory");
}
#endif

template <int WR, int WK, int D, int MINB, int P>
__global__ void __launch_bounds__(WR *WK * 32, MINB) resident_chain(const __grid_constant__ Chain ch) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    constexpr int kThreads = WR * WK * 32, kRows = 32 * WR, kItems = kM * kRows / 4;
    static_assert(WR % 2 == 0, "whole 64-row tiles per block (the L2 prefetch)");
    extern __shared__ __align__(16) uint8_t smem[];
    cg::cluster_group cluster = cg::this_cluster();
    const int C = (int)cluster.num_blocks(), rank = (int)cluster.block_rank(), ncl = gridDim.x / C;
    const int lane = threadIdx.x & 31;
    int *part = (int *)smem;
    uint4 a[D][2];
    uint4 *ring = reinterpret_cast<uint4 *>(smem + ch.ring_at) + (threadIdx.x >> 5) * P * 64 + lane;
    int acc[4][4][4];
    /* a share's first weights requested (registers, or the ring), then its main loop */
    auto request = [&](const ChainProj &q, const Share &s) {
        if (!s.on)
            return;
        if constexpr (P > 0)
            if (q.ring)
                return ring_preload<P>(ring, s.w, s.ws);
        preload<D>(a, s.w, s.ws);
    };
    auto main_loop = [&](const ChainProj &q, const Share &s, const uint8_t *xl) {
        if constexpr (P > 0)
            if (q.ring)
                return ring_loop<P>(acc, ring, s.w, s.ws, xl, s.ld, s.nchunks);
        register_loop<D>(acc, a, s.w, s.ws, xl, s.ld, s.nchunks);
    };
    unsigned target = ch.base;
    long long *stamp = ch.stamps ? ch.stamps + (size_t)blockIdx.x * kMaxChain * kStamps : nullptr;
    auto mark = [&](int pi, int phase) { /* thread 0, after a block-wide synchronization */
        if (stamp && threadIdx.x == 0)
            stamp[pi * kStamps + phase] = clock64();
    };
    unsigned *smax = (unsigned *)(smem + ch.seam_at); /* the token-quant seam: the block's per-token absmax */
    float *sinv = (float *)(smax + kM);
    if (threadIdx.x < kM)
        smax[threadIdx.x] = 0;
    Share sh = share_of<WR, WK>(ch.p[0], 0, rank, C, ncl);
    request(ch.p[0], sh); /* no kernel writes the weights: requested before the PDL wait */
    asm volatile("griddepcontrol.launch_dependents;");
    asm volatile("griddepcontrol.wait;" ::: "memory");
    if (blockIdx.x == 0) /* the previous launch, which used that half, is complete */
        for (int i = threadIdx.x; i < kMaxChain * kM; i += kThreads)
            ch.amax[(ch.bank ^ 1) * kMaxChain * kM + i] = 0;
    mark(0, 0);
    for (int pi = 0; pi < ch.count; pi++) {
        const ChainProj &p = ch.p[pi];
        const int rounds = rounds_of<WR>(p, C, ncl);
        for (int r = 0; r < rounds; r++) {
            if (r > 0) {
                sh = share_of<WR, WK>(p, r, rank, C, ncl);
                request(p, sh);
            }
#pragma unroll
            for (int mt = 0; mt < 4; mt++)
#pragma unroll
                for (int G = 0; G < 4; G++)
                    acc[mt][G][0] = acc[mt][G][1] = acc[mt][G][2] = acc[mt][G][3] = 0;
            if (sh.on) {
                if (ch.seam == 2 && pi > 0)
                    load_tokens_quant<WR, WK>(smem, ch.p[pi - 1].h, ch.amax + (ch.bank * kMaxChain + pi - 1) * kM,
                                              sinv,
                                              ch.check && r == 0 && (int)blockIdx.x < C && rank < p.s
                                                  ? const_cast<int8_t *>(p.x)
                                                  : nullptr,
                                              p.k, sh.b0, sh.bsteps, sh.ld, sh.nchunks);
                else
                    load_tokens<WR, WK>(smem, p.x, p.k, sh.b0, sh.bsteps, sh.ld, sh.nchunks);
                const uint8_t *xl =
                    smem + ((lane & 7) + ((lane >> 3) & 1) * 8) * sh.ld + (lane >> 4) * 16 + (sh.w0 - sh.b0) * 32;
                main_loop(p, sh, xl);
            }
            if (r == rounds - 1 && pi + 1 < ch.count) /* the next projection's bytes stream meanwhile */
                prefetch_l2<WR>(ch.p[pi + 1], share_of<WR, WK>(ch.p[pi + 1], 0, rank, C, ncl), ch.prefetch);
            __syncthreads(); /* the token columns are dead: their shared memory takes the partials */
            mark(pi, 1);
            store_partials<WR, WK>(part, acc);
            fold_slices<WR, WK>(part);
            cluster.sync(); /* every block's partials are written */
            mark(pi, 2);
            if (sh.on) {
                /* rank `split` of the row block's S ranks owns slice `split` of its items */
                const int lo = sh.split * kItems / p.s, hi = (sh.split + 1) * kItems / p.s;
                for (int i = lo + (int)threadIdx.x; i < hi; i += kThreads) {
                    const int4 sum = pull_folded<WR, WK>(cluster, part, rank - sh.split, p.s, i);
                    const int t = i / (kRows / 4), row = sh.rb * kRows + (i % (kRows / 4)) * 4;
                    if (!p.next)
                        *(int4 *)(p.out + (size_t)t * p.n + row) = sum;
                    else if (ch.seam)
                        seam_store(p, sum, t, row, smax);
                    else if (row < p.kn)
                        *(char4 *)(p.next + (size_t)t * p.kn + row) =
                            make_char4(requant(sum.x, p.shift), requant(sum.y, p.shift), requant(sum.z, p.shift),
                                       requant(sum.w, p.shift));
                }
            }
            /* the other blocks are done reading this block's partials before it
             * refills its shared memory (between projections the barrier says so) */
            if (r + 1 < rounds || pi + 1 == ch.count)
                cluster.sync();
        }
        unsigned *amax = ch.amax + (ch.bank * kMaxChain + pi) * kM;
        if (ch.seam && pi + 1 < ch.count) { /* the block's per-token absmax into the grid's */
            __syncthreads();
            if (threadIdx.x < kM) {
                if (smax[threadIdx.x])
                    atomicMax(amax + threadIdx.x, smax[threadIdx.x]);
                smax[threadIdx.x] = 0;
            }
        }
        __syncthreads(); /* the block's stores are issued */
        mark(pi, 3);
        if (pi + 1 < ch.count) {
            grid_arrive(ch.bar, ch.release);
            mark(pi, 4); /* thread 0 arrived: its fence and count are done */
            sh = share_of<WR, WK>(ch.p[pi + 1], 0, rank, C, ncl);
            request(ch.p[pi + 1], sh); /* while the other blocks finish */
            target += gridDim.x;
            grid_wait(ch.bar, target, ch.release);
            if (ch.seam == 1) { /* every absmax is final: quantize, then wait until every token is */
                mark(pi, 5);
                seam_quantize<WR, WK>(p, amax, sinv, C, ncl, rank);
                __syncthreads();
                mark(pi, 6);
                grid_arrive(ch.bar, ch.release);
                target += gridDim.x;
                grid_wait(ch.bar, target, ch.release);
            }
            mark(pi + 1, 0);
        }
    }
#else
    __trap(); /* clusters, griddepcontrol, bulk prefetch: sm_90 */
#endif
}

/* W (n x k, row-major; n a multiple of 64, k of 32) -> the stream layout (stream_layout.h, dense). */
std::vector<uint8_t> stream_layout(const std::vector<int8_t> &w, int n, int k) {
    std::vector<uint8_t> o((size_t)n * k);
    const int steps = k / 32;
    for (int T = 0; T < n / 64; T++)
        for (int s = 0; s < steps; s++)
            for (int t = 0; t < 128; t++) {
                uint8_t *p = o.data() + (((size_t)T * steps + s) * 128 + t) * 16;
                const int r0 = 64 * T + 16 * (t >> 5) + (t & 31) / 4, c = s * 32 + 4 * (t & 3);
                memcpy(p, w.data() + (size_t)r0 * k + c, 4);
                memcpy(p + 4, w.data() + (size_t)(r0 + 8) * k + c, 4);
                memcpy(p + 8, w.data() + (size_t)r0 * k + c + 16, 4);
                memcpy(p + 12, w.data() + (size_t)(r0 + 8) * k + c + 16, 4);
            }
    return o;
}

typedef void (*Kern)(const uint4 *, const int8_t *, int, int, int *, int *, unsigned *);

struct Config {
    Kern kern;
    int wr, wk, d, minb, p;
    size_t (*smem)(int);
    /* the block's shared memory: tokens / partials for max_bsteps steps, then the weight ring (P KB per warp) */
    size_t bytes(int max_bsteps) const {
        return smem(max_bsteps) + (size_t)wr * wk * p * 1024 + (kExchange == 2 ? recv_bytes(wr) : 0);
    }
};
template <int WR, int WK, int D, int MINB, int P = 0> Config config() {
    return {decode_gemm<WR, WK, D, MINB, P>, WR, WK, D, MINB, P, block_smem<WR, WK>};
}
constexpr size_t kMaxSmem = 227 * 1024;

/* the multicast form: C blocks along the tokens, SK steps per stage, NS stages */
struct McConfig {
    Kern kern;
    int wr, wk, c, sk, ns;
    size_t (*smem)(int k);
};
template <int WR, int WK, int C, int SK, int NS> McConfig mc_config() {
    return {decode_gemm_mc<WR, WK, C, SK, NS>, WR, WK, C, SK, NS, mc_smem<WR, WK, C, SK, NS>};
}

/* one of the split-K forms with S K ranges, or (m set) the multicast form */
struct Launch {
    const Config *c;
    int s;
    const McConfig *m;
};
int form_of(const Launch &l) { return l.m ? 2 : l.c->p > 0; }

/* "WRxWK, D d" or "WRxWK, ring P", then min blocks per SM and the cluster size;
 * "WRxWK, mc C, SK s x NS" for the multicast form */
void describe(const Launch &l, char *buf, size_t len) {
    if (l.m) {
        snprintf(buf, len, "%dx%d, mc %d, SK %d x %d", l.m->wr, l.m->wk, l.m->c, l.m->sk, l.m->ns);
        return;
    }
    const Config &c = *l.c;
    snprintf(buf, len, "%dx%d, %s %d, %d, S %d", c.wr, c.wk, c.p ? "ring" : "D", c.p ? c.p : c.d, c.minb, l.s);
}

/* the exchange through global memory (DG_EXCHANGE 3): a workspace slot per K range of a row block
 * (at most 13824 rows x 16 ranges x 64 tokens x int32), a zeroed arrival count per row block */
int *g_ws;
unsigned *g_count;
constexpr size_t kWsBytes = (size_t)13824 * kMaxS3 * kM * 4;
constexpr int kCounts = 1024;

/* a launch's attributes: clusters of `cluster` blocks along x, PDL on or off (the second one) */
void launch_attrs(cudaLaunchAttribute (&at)[2], int cluster, bool pdl) {
    at[0].id = cudaLaunchAttributeClusterDimension;
    at[0].val.clusterDim.x = cluster, at[0].val.clusterDim.y = 1, at[0].val.clusterDim.z = 1;
    at[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[1].val.programmaticStreamSerializationAllowed = pdl;
}

void launch(const Launch &l, const uint8_t *wl, const int8_t *x, int n, int k, int *out, bool pdl) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[2];
    Kern kern;
    if (l.m) { /* blocks along the tokens (the cluster), row blocks; one producer warp more */
        cfg.gridDim = dim3(l.m->c, n / (32 * l.m->wr));
        cfg.blockDim = dim3(l.m->wr * l.m->wk * 32 + 32);
        cfg.dynamicSmemBytes = l.m->smem(k);
        launch_attrs(at, l.m->c, pdl);
        kern = l.m->kern;
    } else {
        const Config &c = *l.c;
        cfg.gridDim = dim3(l.s, n / (32 * c.wr));
        cfg.blockDim = dim3(c.wr * c.wk * 32);
        cfg.dynamicSmemBytes = c.bytes(k / 32 / l.s + 1);
        launch_attrs(at, kExchange == 3 ? 1 : l.s, pdl);
        kern = c.kern;
    }
    cfg.attrs = at, cfg.numAttrs = 2;
    CK(cudaLaunchKernelEx(&cfg, kern, (const uint4 *)wl, x, n, k, out, g_ws, g_count));
}

struct Shape {
    const char *name;
    int n, k;
};

/* One projection: weights (rotated copies, plain and laid out), tokens, reference, buffers. */
struct Proj {
    Shape sh;
    size_t wb;
    int sets;
    int8_t *d_w, *d_x;
    uint8_t *d_wl;
    int *d_out;
    std::vector<int> ref;
    std::vector<int8_t> w, x; /* the resident form's chain reference starts from them */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t lt_algo;
    Launch best;
};

/* out[t][r] = sum_c x[t][c] w[r][c] over the kM token rows, exact in int32 */
std::vector<int> cpu_gemm(const int8_t *x, const int8_t *w, int n, int k) {
    std::vector<int> out((size_t)kM * n);
    for (int t = 0; t < kM; t++)
        for (int r = 0; r < n; r++) {
            int s = 0;
            for (int c = 0; c < k; c++)
                s += (int)x[(size_t)t * k + c] * (int)w[(size_t)r * k + c];
            out[(size_t)t * n + r] = s;
        }
    return out;
}

void check(const Proj &p, const char *what) {
    if (DG_SKIP)
        return;
    std::vector<int> got(p.ref.size());
    CK(cudaMemcpy(got.data(), p.d_out, got.size() * 4, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < got.size(); i++)
        if (got[i] != p.ref[i]) {
            fprintf(stderr, "%s %s: mismatch at token %zu row %zu: %d != %d\n", p.sh.name, what, i / p.sh.n,
                    i % p.sh.n, got[i], p.ref[i]);
            exit(1);
        }
}


/* ---- the resident form's host side ---- */
__global__ void requant_rows(const int *out, int n, int8_t *next, int kn, int shift) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < kM * kn)
        next[i] = requant(out[(size_t)(i / kn) * n + i % kn], shift);
}
/* The token-quant seam as one kernel per seam (a block per token row): dequantized into BF16 and
 * stored, the row's absmax, the row quantized (the engine's dequant and quant kernels fused). */
__global__ void seam_rows(const int *out, int n, const float *sw, uint16_t *h, int8_t *next, int kn) {
    const int t = blockIdx.x;
    __shared__ float wmax[32];
    float m = 0.0f;
    for (int c = threadIdx.x * 4; c < kn; c += blockDim.x * 4) {
        const int4 sum = *(const int4 *)(out + (size_t)t * n + c);
        const float v[4] = {seam_dequant(sum.x, sw[c]), seam_dequant(sum.y, sw[c + 1]), seam_dequant(sum.z, sw[c + 2]),
                            seam_dequant(sum.w, sw[c + 3])};
        for (int j = 0; j < 4; j++) {
            h[(size_t)t * kn + c + j] = (uint16_t)(__float_as_uint(v[j]) >> 16);
            m = fmaxf(m, fabsf(v[j]));
        }
    }
    for (int o = 16; o; o >>= 1)
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if ((threadIdx.x & 31) == 0)
        wmax[threadIdx.x >> 5] = m;
    __syncthreads();
    m = 0.0f;
    for (int w = 0; w < (int)blockDim.x / 32; w++)
        m = fmaxf(m, wmax[w]);
    const float inv = seam_inv(m);
    for (int c = threadIdx.x * 4; c < kn; c += blockDim.x * 4) /* the thread's own stores read back */
        for (int j = 0; j < 4; j++)
            next[(size_t)t * kn + c + j] = seam_quant(ss_bf(h[(size_t)t * kn + c + j]), inv);
}

typedef void (*ChainKern)(Chain);
struct ResidentConfig {
    ChainKern kern;
    int wr, wk, d, minb, p;
    size_t (*smem)(int max_bsteps);
    /* shared memory per block: all of it at one block per SM, else an even share (so the
     * occupancy, and with it the number of clusters, is the same for every chain) */
    size_t budget() const { return minb == 1 ? kMaxSmem : (228 / minb - 1) * 1024; }
    size_t ring_bytes() const { return (size_t)wr * wk * p * 1024; }
    /* the token columns / partials at the start, then the rings, the seam's per-token values last */
    size_t need(int k, int s, bool ring) const {
        return smem(k / 32 / s + 1) + (ring ? ring_bytes() : 0) + kSeamSmem;
    }
};
template <int WR, int WK, int D, int MINB, int P = 0> ResidentConfig resident_config() {
    return {resident_chain<WR, WK, D, MINB, P>, WR, WK, D, MINB, P, block_smem<WR, WK>};
}

/* the chain's buffers: tokens x_p (x_0 = the first projection's), int32 outputs, and the CPU's */
struct ChainData {
    std::vector<Proj> *projs;
    std::vector<int8_t *> d_x;
    std::vector<int *> d_out;
    std::vector<int> shift;
    int seam; /* Chain::seam: which seam the references and the launches use */
    std::vector<std::vector<float>> sw; /* the token-quant seam's per-channel scales */
    std::vector<float *> d_sw;
    std::vector<uint16_t *> d_h;
    unsigned *d_amax;
    int bank;
    int release; /* Chain::release */
    int check;   /* Chain::check */
    std::vector<std::vector<int8_t>> x;
    std::vector<std::vector<int>> out;
    unsigned *d_bar; /* the barrier's count and timeout flag */
    unsigned bar_count; /* arrivals so far: the next launch's base */
};

/* out_p = W_p . x_p on the CPU; x_(p+1) = requant(out_p) with a shift that brings its RMS near 32,
 * or (cd.seam) the token-quant seam with per-channel scales of about 2^-shift (the shift's, set
 * by the first call: the device has its copy) */
void chain_reference(ChainData &cd) {
    std::vector<Proj> &projs = *cd.projs;
    const size_t count = projs.size();
    cd.x.assign(count, {}), cd.out.assign(count, {}), cd.shift.assign(count, 0);
    if (cd.sw.size() != count)
        cd.sw.assign(count, {});
    cd.x[0] = projs[0].x;
    for (size_t p = 0; p < count; p++) {
        const int n = projs[p].sh.n, k = projs[p].sh.k;
        std::vector<int> &o = cd.out[p];
        o = p ? cpu_gemm(cd.x[p].data(), projs[p].w.data(), n, k) : projs[0].ref; /* x_0 is its own tokens */
        if (p + 1 == count)
            break;
        double sq = 0;
        for (int v : o)
            sq += (double)v * v;
        const double rms = sqrt(sq / o.size());
        int sh = 0;
        while (sh < 30 && rms / (double)(1 << (sh + 1)) >= 32)
            sh++;
        cd.shift[p] = sh;
        const int kn = projs[p + 1].sh.k;
        cd.x[p + 1].resize((size_t)kM * kn);
        if (cd.sw[p].empty())
            for (int c = 0; c < n; c++)
                cd.sw[p].push_back(ldexpf(0.75f + (float)(((uint32_t)c * 2654435761u) >> 24) / 512.0f, -sh));
        std::vector<float> v(kn);
        for (int t = 0; t < kM; t++) {
            const int *ot = o.data() + (size_t)t * n;
            int8_t *xt = cd.x[p + 1].data() + (size_t)t * kn;
            if (!cd.seam) {
                for (int c = 0; c < kn; c++)
                    xt[c] = requant(ot[c], sh);
                continue;
            }
            float a = 0.0f;
            for (int c = 0; c < kn; c++)
                a = std::max(a, fabsf(v[c] = seam_dequant(ot[c], cd.sw[p][c])));
            const float inv = seam_inv(a);
            for (int c = 0; c < kn; c++)
                xt[c] = seam_quant(v[c], inv);
        }
    }
}

/* every x_p and the last projection's int32 out (or, one projection alone, its out) as the CPU has them */
void chain_check(const ChainData &cd, const char *what, size_t first, size_t count, const int *d_last) {
    std::vector<Proj> &projs = *cd.projs;
    for (size_t p = first + 1; p < first + count; p++) {
        std::vector<int8_t> got(cd.x[p].size());
        CK(cudaMemcpy(got.data(), cd.d_x[p], got.size(), cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < got.size(); i++)
            if (got[i] != cd.x[p][i]) {
                fprintf(stderr, "%s: tokens of %s: mismatch at token %zu column %zu: %d != %d\n", what,
                        projs[p].sh.name, i / projs[p].sh.k, i % projs[p].sh.k, got[i], cd.x[p][i]);
                exit(1);
            }
    }
    const size_t last = first + count - 1;
    std::vector<int> got(cd.out[last].size());
    CK(cudaMemcpy(got.data(), d_last, got.size() * 4, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < got.size(); i++)
        if (got[i] != cd.out[last][i]) {
            fprintf(stderr, "%s: %s: mismatch at token %zu row %zu: %d != %d\n", what, projs[last].sh.name,
                    i / projs[last].sh.n, i % projs[last].sh.n, got[i], cd.out[last][i]);
            exit(1);
        }
}

/* whether a grid barrier of the launches since the last call timed out (the flag is cleared);
 * every block still arrived, so the count stays right for the next launch */
bool barrier_timed_out(ChainData &cd) {
    unsigned flag = 0;
    CK(cudaMemcpy(&flag, cd.d_bar + 1, sizeof flag, cudaMemcpyDeviceToHost));
    if (flag)
        CK(cudaMemset(cd.d_bar + 1, 0, sizeof flag));
    return flag != 0;
}

/* one launch of the resident kernel over projections [first, first + count) with splits s[],
 * weights of rotation set i, the last one's int32 into d_out[first + count - 1] */
void launch_chain(ChainData &cd, const ResidentConfig &rc, int C, int ncl, size_t first, size_t count,
                  const int *s, const int *ring, int prefetch, int i, bool pdl, long long *stamps = nullptr) {
    std::vector<Proj> &projs = *cd.projs;
    Chain ch = {};
    ch.count = (int)count, ch.prefetch = prefetch, ch.base = cd.bar_count, ch.bar = cd.d_bar, ch.stamps = stamps;
    ch.seam_at = (int)(rc.budget() - kSeamSmem);
    ch.ring_at = (int)(ch.seam_at - rc.ring_bytes());
    ch.check = cd.check;
    ch.seam = cd.seam, ch.amax = cd.d_amax, ch.bank = cd.bank, ch.release = cd.release;
    cd.bank ^= 1;
    for (size_t j = 0; j < count; j++) {
        const Proj &p = projs[first + j];
        const bool last = j + 1 == count;
        ch.p[j] = {(const uint4 *)(p.d_wl + p.wb * (i % p.sets)), cd.d_x[first + j], last ? nullptr : cd.d_x[first + j + 1],
                   cd.d_out[first + j], cd.d_sw[first + j], cd.d_h[first + j], p.sh.n, p.sh.k,
                   last ? 0 : projs[first + j + 1].sh.k, cd.shift[first + j], s[j], ring[j]};
    }
    cd.bar_count += (unsigned)(count - 1) * (cd.seam == 1 ? 2 : 1) * ncl * C;
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[2];
    launch_attrs(at, C, pdl);
    cfg.gridDim = dim3(ncl * C), cfg.blockDim = dim3(rc.wr * rc.wk * 32), cfg.dynamicSmemBytes = rc.budget();
    cfg.attrs = at, cfg.numAttrs = 2;
    CK(cudaLaunchKernelEx(&cfg, rc.kern, ch));
}

/* Where the best resident chain's time goes: per projection, the median and the slowest block's
 * time in each phase (clock64 in each block; the last of a few timed runs). */
void chain_phases(ChainData &cd, const ResidentConfig &rc, int C, int ncl, const int *s, const int *ring, int pf,
                  int sets) {
    std::vector<Proj> &projs = *cd.projs;
    const size_t count = projs.size(), blocks = (size_t)ncl * C;
    long long *d_st;
    CK(cudaMalloc(&d_st, blocks * kMaxChain * kStamps * sizeof *d_st));
    for (int i = 0; i < 2 * sets; i++)
        launch_chain(cd, rc, C, ncl, 0, count, s, ring, pf, i, true, i + 1 == 2 * sets ? d_st : nullptr);
    CK(cudaDeviceSynchronize());
    if (barrier_timed_out(cd)) {
        printf("# the best chain's phases: not shown (a grid barrier timed out in these runs)\n");
        CK(cudaFree(d_st));
        return;
    }
    std::vector<long long> st(blocks * kMaxChain * kStamps);
    CK(cudaMemcpy(st.data(), d_st, st.size() * sizeof st[0], cudaMemcpyDeviceToHost));
    CK(cudaFree(d_st));
    int khz = 0;
    CK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0));
    const double per_us = khz / 1e3;
    printf("# the best chain's phases per projection (us; median / slowest block, %.0f MHz clock64):\n", per_us);
    printf("#   %-8s %6s | %15s %15s %15s %15s %15s", "proj", "blocks", "MMAs", "exchange wait", "sum + store",
           "arrival fence", "grid barrier");
    if (cd.seam == 1) /* the token-quant seam: the quantization, then the second barrier */
        printf(" %15s %15s", "quantize", "barrier 2");
    printf("\n");
    for (size_t p = 0; p < count; p++) {
        std::vector<double> ph[7];
        const int per = C / s[p], rbs = projs[p].sh.n / (32 * rc.wr);
        for (size_t b = 0; b < blocks; b++) {
            if ((int)(b / C) * per + (int)(b % C) / s[p] >= rbs)
                continue; /* idle in the first round */
            const long long *t = st.data() + (b * kMaxChain + p) * kStamps;
            ph[0].push_back((t[1] - t[0]) / per_us);
            ph[1].push_back((t[2] - t[1]) / per_us);
            ph[2].push_back((t[3] - t[2]) / per_us);
            if (p + 1 < count) {
                ph[3].push_back((t[4] - t[3]) / per_us);
                if (cd.seam == 1) {
                    ph[4].push_back((t[5] - t[4]) / per_us);
                    ph[5].push_back((t[6] - t[5]) / per_us);
                    ph[6].push_back((t[kStamps] - t[6]) / per_us);
                } else {
                    ph[4].push_back((t[kStamps] - t[4]) / per_us);
                }
            }
        }
        printf("#   %-8s %6zu |", projs[p].sh.name, ph[0].size());
        for (int c = 0; c < (cd.seam == 1 ? 7 : 5); c++) {
            std::vector<double> &v = ph[c];
            if (v.empty()) {
                printf(" %15s", "-");
                continue;
            }
            std::sort(v.begin(), v.end());
            printf("   %5.2f / %5.2f", v[v.size() / 2], v.back());
        }
        printf("\n");
    }
}

/* Named chains compared under one seam: each checked, the resident one's phases (both barrier
 * forms, each of `forms`: Chain::seam values), then 5 alternating rounds, the medians against the
 * first (cuBLASLt's chain moves by several % from process to process: its pick among the top 8,
 * clocks). A chain may set cd.seam / cd.release for its launches; it restores them. */
typedef std::pair<std::string, std::function<void(int)>> NamedChain;
void compare_chains(ChainData &cd, const char *seam, const std::vector<NamedChain> &chains,
                    const std::vector<int> &forms, const std::function<void()> &phases, int sets) {
    const size_t count = cd.projs->size();
    for (const NamedChain &c : chains) {
        for (size_t p = 1; p < count; p++)
            CK(cudaMemset(cd.d_x[p], 0, cd.x[p].size()));
        cd.check = 1;
        c.second(0);
        cd.check = 0;
        CK(cudaDeviceSynchronize());
        if (barrier_timed_out(cd)) {
            printf("# the chains with %s: skipped (a grid barrier timed out)\n", seam);
            return;
        }
        chain_check(cd, c.first.c_str(), 0, count, cd.d_out[count - 1]);
    }
    const int seam0 = cd.seam;
    for (int form : forms)
        for (cd.release = 0; cd.release < 2; cd.release++) {
            cd.seam = form;
            printf("# with %s (form %d), the %s barrier:\n", seam, form, cd.release ? "release/acquire" : "fenced");
            phases();
        }
    cd.release = 0, cd.seam = seam0;
    std::vector<std::vector<double>> r(chains.size());
    for (int round = 0; round < 5; round++) {
        printf("##  %s, alternating round %d:", seam, round);
        for (size_t c = 0; c < chains.size(); c++) {
            r[c].push_back(time_us(chains[c].second, sets));
            printf("%s %s %.2f us", c ? "," : "", chains[c].first.c_str(), r[c].back());
        }
        printf("\n");
    }
    /* the last chain's output (a consumer-quantized chain stores no tokens outside its checked launch) */
    chain_check(cd, "the last chain (after the rounds)", 0, count, cd.d_out[count - 1]);
    printf("chain with %s, median of 5 alternating rounds:", seam);
    for (size_t c = 0; c < chains.size(); c++)
        printf("%s %s %.2f us", c ? "," : "", chains[c].first.c_str(), median_of(r[c]));
    for (size_t c = 1; c < chains.size(); c++)
        printf("%s %s %.2fx", c > 1 ? "," : ";", chains[c].first.c_str(), median_of(r[0]) / median_of(r[c]));
    printf(" %s's chain\n", chains[0].first.c_str());
}

/* The resident form against the same chain run one kernel per projection (cuBLASLt, and the
 * best split-K launches above), each followed by a requant kernel. */
void resident(std::vector<Proj> &projs, cublasLtHandle_t lt, void *lt_ws, size_t lt_ws_bytes, int sets,
              double layer_lt) {
    if (getenv("DG_RESIDENT") && !atoi(getenv("DG_RESIDENT"))) {
        printf("# the resident form: skipped (DG_RESIDENT=0)\n");
        return;
    }
    const size_t count = projs.size();
    bool chains = count <= (size_t)kMaxChain;
    for (size_t p = 0; p + 1 < count; p++)
        chains = chains && projs[p + 1].sh.k <= projs[p].sh.n;
    if (!chains) {
        printf("# the resident form: skipped (a chain needs at most %d projections, each K <= the previous N)\n",
               kMaxChain);
        return;
    }
    if (DG_SKIP || kExchange) { /* it sums by pulling (DG_EXCHANGE 0) and checks its results */
        printf("# the resident form: skipped (a DG_SKIP or DG_EXCHANGE build)\n");
        return;
    }
    ChainData cd = {};
    cd.projs = &projs;
    chain_reference(cd);
    cd.d_x.assign(count, nullptr), cd.d_out.assign(count, nullptr);
    cd.d_x[0] = projs[0].d_x;
    for (size_t p = 0; p < count; p++) {
        if (p)
            CK(cudaMalloc(&cd.d_x[p], cd.x[p].size()));
        CK(cudaMalloc(&cd.d_out[p], cd.out[p].size() * 4));
    }
    CK(cudaMalloc(&cd.d_bar, 2 * sizeof *cd.d_bar));
    CK(cudaMemset(cd.d_bar, 0, 2 * sizeof *cd.d_bar));
    cd.d_sw.assign(count, nullptr), cd.d_h.assign(count, nullptr);
    for (size_t p = 0; p + 1 < count; p++) {
        CK(cudaMalloc(&cd.d_sw[p], cd.sw[p].size() * 4));
        CK(cudaMemcpy(cd.d_sw[p], cd.sw[p].data(), cd.sw[p].size() * 4, cudaMemcpyHostToDevice));
        CK(cudaMalloc(&cd.d_h[p], cd.x[p + 1].size() * 2));
    }
    CK(cudaMalloc(&cd.d_amax, 2 * kMaxChain * kM * sizeof *cd.d_amax));
    CK(cudaMemset(cd.d_amax, 0, 2 * kMaxChain * kM * sizeof *cd.d_amax));
    printf("# the resident form: %zu projections as one chain, x(p+1) = requant(out_p >> shift) (shifts", count);
    for (size_t p = 0; p + 1 < count; p++)
        printf(" %d", cd.shift[p]);
    printf("), against the chain as one kernel per projection + a requant kernel\n");
    auto requant_launch = [&](size_t p) {
        const int kn = projs[p + 1].sh.k;
        if (cd.seam)
            seam_rows<<<kM, 256>>>(cd.d_out[p], projs[p].sh.n, cd.d_sw[p], cd.d_h[p], cd.d_x[p + 1], kn);
        else
            requant_rows<<<(kM * kn + 255) / 256, 256>>>(cd.d_out[p], projs[p].sh.n, cd.d_x[p + 1], kn, cd.shift[p]);
    };
    const int one = 1, zero = 0;
    auto lt_chain = [&](int i) {
        for (size_t p = 0; p < count; p++) {
            const Proj &q = projs[p];
            cublasLtMatmul(lt, q.op, &one, q.d_w + q.wb * (i % q.sets), q.la, cd.d_x[p], q.lb, &zero, cd.d_out[p], q.lc,
                           cd.d_out[p], q.lc, &q.lt_algo, lt_ws, lt_ws_bytes, 0);
            if (p + 1 < count)
                requant_launch(p);
        }
    };
    auto ours_chain = [&](int i) {
        for (size_t p = 0; p < count; p++) {
            const Proj &q = projs[p];
            launch(q.best, q.d_wl + q.wb * (i % q.sets), cd.d_x[p], q.sh.n, q.sh.k, cd.d_out[p], true);
            if (p + 1 < count)
                requant_launch(p);
        }
    };
    lt_chain(0);
    CK(cudaDeviceSynchronize());
    chain_check(cd, "cuBLASLt chain", 0, count, cd.d_out[count - 1]);
    const double t_lt = time_us(lt_chain, sets);
    ours_chain(0);
    CK(cudaDeviceSynchronize());
    chain_check(cd, "per-projection chain", 0, count, cd.d_out[count - 1]);
    const double t_ours = time_us(ours_chain, sets);

    /* one block per SM: at two, the grid barrier timed out once launches overlapped (PDL),
     * most likely because the next grid's first clusters, placed early in the free slots, left
     * a packing in which the rest no longer fit (see the docs) */
    /* registers (D steps per warp), then with a ring of P steps per warp that each projection
     * may take instead */
    static const ResidentConfig rconfigs[] = {resident_config<8, 1, 4, 1, 8>(), resident_config<8, 1, 4, 1, 12>(),
                                              resident_config<4, 2, 8, 1, 12>(), resident_config<8, 1, 8, 1, 8>()};
    static const int prefetches[] = {0, 4, 16, 1 << 16};
    const bool verbose = getenv("DG_VERBOSE") && atoi(getenv("DG_VERBOSE"));
    double t_best = 1e30;
    char best[160] = "";
    struct {
        const ResidentConfig *rc;
        int C, ncl, pf, s[kMaxChain], ring[kMaxChain];
    } bl = {};
    for (const ResidentConfig &rc : rconfigs) {
        CK(cudaFuncSetAttribute(rc.kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)rc.budget()));
        for (int C = 2; C <= kMaxS; C *= 2) {
            cudaLaunchConfig_t q = {};
            cudaLaunchAttribute at[2];
            launch_attrs(at, C, false);
            q.gridDim = dim3(C), q.blockDim = dim3(rc.wr * rc.wk * 32), q.dynamicSmemBytes = rc.budget();
            q.attrs = at, q.numAttrs = 1; /* the cluster's size alone */
            int ncl = 0;
            if (cudaOccupancyMaxActiveClusters(&ncl, rc.kern, &q) != cudaSuccess || ncl < 1) {
                cudaGetLastError();
                continue;
            }
            /* each projection's split and form: the fastest alone (one projection, no barrier) */
            int s[kMaxChain], ring[kMaxChain] = {};
            double alone[kMaxChain], alone_sum = 0, form_best[kMaxChain][2];
            bool ok = true;
            for (size_t p = 0; p < count && ok; p++) {
                alone[p] = 1e30, s[p] = 0, form_best[p][0] = form_best[p][1] = 0;
                for (int form = 0; form <= (rc.p > 0); form++)
                    for (int sp = 1; sp <= C; sp *= 2) {
                        const int k = projs[p].sh.k;
                        if (k / 32 / sp < rc.wk || rc.need(k, sp, form) > rc.budget() || projs[p].sh.n % (32 * rc.wr))
                            continue;
                        auto run = [&](int i) { launch_chain(cd, rc, C, ncl, p, 1, &sp, &form, 0, i, true); };
                        CK(cudaMemset(cd.d_out[p], 0xff, cd.out[p].size() * 4));
                        run(0);
                        CK(cudaDeviceSynchronize());
                        chain_check(cd, "resident, one projection", p, 1, cd.d_out[p]);
                        const double t = time_us(run, projs[p].sets);
                        if (t < alone[p])
                            alone[p] = t, s[p] = sp, ring[p] = form;
                        if (!form_best[p][form] || t < form_best[p][form])
                            form_best[p][form] = t;
                    }
                ok = s[p] > 0;
                alone_sum += alone[p];
            }
            if (!ok)
                continue;
            char desc[160];
            int len = snprintf(desc, sizeof desc, "%dx%d, D %d", rc.wr, rc.wk, rc.d);
            if (rc.p)
                len += snprintf(desc + len, sizeof desc - len, ", ring %d", rc.p);
            len += snprintf(desc + len, sizeof desc - len, ", %d/SM, %d clusters of %d, S", rc.minb, ncl, C);
            for (size_t p = 0; p < count; p++) /* "r": that projection in the ring form */
                len += snprintf(desc + len, sizeof desc - len, "%s%d%s", p ? "/" : " ", s[p], ring[p] ? "r" : "");
            if (verbose)
                for (size_t p = 0; p < count; p++)
                    printf("##  resident %-44s %s alone: %.2f us (best register form %.2f, ring %.2f)\n", desc,
                           projs[p].sh.name, alone[p], form_best[p][0], form_best[p][1]);
            for (int pf : prefetches) {
                auto run = [&](int i) { launch_chain(cd, rc, C, ncl, 0, count, s, ring, pf, i, true); };
                for (size_t p = 1; p < count; p++)
                    CK(cudaMemset(cd.d_x[p], 0, cd.x[p].size()));
                CK(cudaMemset(cd.d_out[count - 1], 0xff, cd.out[count - 1].size() * 4));
                run(0);
                CK(cudaDeviceSynchronize());
                /* a barrier that timed out (the first launch's or a timed one's) voids the configuration */
                auto timed_out = [&] {
                    const bool out = barrier_timed_out(cd);
                    if (out)
                        printf("##  resident %-44s skipped: a grid barrier timed out (not every block resident)\n",
                               desc);
                    return out;
                };
                if (timed_out())
                    break;
                chain_check(cd, "resident chain", 0, count, cd.d_out[count - 1]);
                const double t = time_us(run, sets);
                if (timed_out())
                    break;
                if (verbose || pf == 0)
                    printf("##  resident %-44s L2 ahead %5d: %8.2f us (alone summed %.2f)\n", desc, pf, t, alone_sum);
                if (t < t_best) {
                    t_best = t;
                    snprintf(best, sizeof best, "%s, L2 ahead %d", desc, pf);
                    bl.rc = &rc, bl.C = C, bl.ncl = ncl, bl.pf = pf;
                    std::copy(s, s + kMaxChain, bl.s);
                    std::copy(ring, ring + kMaxChain, bl.ring);
                }
            }
        }
    }
    if (bl.rc) { /* the best configuration again: both barrier forms, then the engine's seam */
        auto phases = [&] { chain_phases(cd, *bl.rc, bl.C, bl.ncl, bl.s, bl.ring, bl.pf, sets); };
        auto best_run = [&](int i) { launch_chain(cd, *bl.rc, bl.C, bl.ncl, 0, count, bl.s, bl.ring, bl.pf, i, true); };
        auto best_release = [&](int i) {
            cd.release = 1;
            best_run(i);
            cd.release = 0;
        };
        compare_chains(cd, "the shift",
                       {{"cuBLASLt + requant kernels", lt_chain}, {"ours per projection + requant kernels", ours_chain},
                        {"resident", best_run}, {"resident, release/acquire barrier", best_release}},
                       {0}, phases, sets);
        cd.seam = 1;
        chain_reference(cd);
        printf("# the token-quant seam: BF16 dequant by per-channel scales, each token row's absmax, quant; the "
               "resident chain quantizing at its producers between two grid barriers per seam (form 1) or at "
               "its consumers' token loads after one (form 2), the others with a seam kernel\n");
        auto at_load = [&](const std::function<void(int)> &run) {
            return [&, run](int i) {
                cd.seam = 2;
                run(i);
                cd.seam = 1;
            };
        };
        compare_chains(cd, "the token-quant seam",
                       {{"cuBLASLt + seam kernels", lt_chain}, {"ours per projection + seam kernels", ours_chain},
                        {"resident", best_run}, {"resident, release/acquire barrier", best_release},
                        {"resident, quantized at load", at_load(best_run)},
                        {"resident, quantized at load, release/acquire barrier", at_load(best_release)}},
                       {1, 2}, phases, sets);
        cd.seam = 0;
        chain_reference(cd);
    }
    printf("chain (%zu, requantized between): cuBLASLt + requant kernels %.2f us, ours per projection + requant "
           "kernels %.2f us, resident %.2f us (%s): %.2fx cuBLASLt's chain, %.2fx its GEMMs alone (%.2f us)\n",
           count, t_lt, t_ours, t_best, best, t_lt / t_best, layer_lt / t_best, layer_lt);
    for (size_t p = 1; p < count; p++)
        cudaFree(cd.d_x[p]);
    for (size_t p = 0; p < count; p++)
        cudaFree(cd.d_out[p]), cudaFree(cd.d_sw[p]), cudaFree(cd.d_h[p]);
    cudaFree(cd.d_bar);
    cudaFree(cd.d_amax);
}

} // namespace

int main() {
    setvbuf(stdout, nullptr, _IOLBF, 0); /* a run stopped by a timeout keeps what it printed */
    /* DG_SHAPES="N:K,N:K,..." replaces BitNet-2B's four projections (e.g. a sweep of K at one N
     * splits each kernel's time into a fixed part and a part per weight byte); DG_VERBOSE=1 prints
     * every configuration and K split, not only the best of each form */
    std::vector<Shape> shapes = {{"qkv", 3840, 2560}, {"o", 2560, 2560}, {"gate_up", 13824, 2560}, {"down", 2560, 6912}};
    std::vector<std::string> names;
    if (const char *env = getenv("DG_SHAPES")) {
        shapes.clear();
        for (const char *c = env; *c;) {
            int n = 0, k = 0, used = 0;
            if (sscanf(c, "%d:%d%n", &n, &k, &used) != 2 || n <= 0 || k <= 0 || n % 64 || k % 32) {
                fprintf(stderr, "DG_SHAPES: expected N:K pairs (N a multiple of 64, K of 32) at '%s'\n", c);
                return 1;
            }
            names.push_back(std::to_string(n) + "x" + std::to_string(k));
            shapes.push_back({nullptr, n, k});
            c += used;
            c += *c == ',';
        }
        if (shapes.empty()) {
            fprintf(stderr, "DG_SHAPES: empty (expected N:K pairs)\n");
            return 1;
        }
        for (size_t i = 0; i < shapes.size(); i++)
            shapes[i].name = names[i].c_str();
    }
    dev_banner();
    const double copy_gbs = d2d_copy_gbs();
    printf("# device copy %.3f TB/s (read + write); M = %d tokens, INT8, int32 out\n", copy_gbs / 1e3, kM);
    const bool verbose = getenv("DG_VERBOSE") && atoi(getenv("DG_VERBOSE"));
    /* registers (D steps in flight per warp), then the shared-memory ring (P steps) */
    static const Config configs[] = {config<4, 2, 4, 2>(),     config<4, 2, 4, 1>(),     config<4, 2, 8, 1>(),
                                     config<2, 4, 4, 2>(),     config<4, 1, 4, 2>(),     config<8, 1, 4, 1>(),
                                     config<2, 2, 4, 4>(),     config<2, 2, 8, 2>(),     config<4, 2, 0, 1, 8>(),
                                     config<4, 2, 0, 1, 12>(), config<4, 2, 0, 1, 16>(), config<4, 1, 0, 2, 8>(),
                                     config<4, 1, 0, 1, 16>(), config<2, 2, 0, 2, 12>(), config<8, 1, 0, 1, 12>(),
                                     config<2, 4, 0, 1, 16>(), config<1, 8, 4, 2>(),     config<1, 4, 8, 2>()};
    /* the multicast form: C blocks along the tokens x R rows, SK steps per stage, NS stages */
    static const McConfig mc_configs[] = {
        mc_config<4, 1, 4, 4, 6>(), mc_config<4, 2, 4, 4, 6>(), mc_config<2, 2, 4, 4, 8>(), mc_config<8, 1, 4, 2, 6>(),
        mc_config<4, 1, 2, 4, 6>(), mc_config<2, 2, 2, 4, 8>(), mc_config<4, 2, 2, 2, 8>(), mc_config<2, 2, 1, 4, 6>(),
        mc_config<4, 2, 1, 2, 4>()};
    for (const McConfig &m : mc_configs)
        CK(cudaFuncSetAttribute(m.kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kMaxSmem));
    const bool multicast = multicast_built() && !getenv("DG_NO_MULTICAST");
    if (!multicast)
        printf("# the multicast form: skipped (%s)\n",
               getenv("DG_NO_MULTICAST") ? "DG_NO_MULTICAST" : "built without -arch=sm_90a");
    if (kExchange == 3) {
        CK(cudaMalloc(&g_ws, kWsBytes));
        CK(cudaMalloc(&g_count, kCounts * sizeof *g_count));
        CK(cudaMemset(g_count, 0, kCounts * sizeof *g_count));
    }
    for (const Config &c : configs)
        CK(cudaFuncSetAttribute(c.kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kMaxSmem));
    printf("# split-K exchange (DG_EXCHANGE %d): %s\n", kExchange,
           kExchange == 3 ? "no cluster: global workspace, the row block's last block sums"
           : kExchange == 2 ? "push to the owner, one cluster barrier"
           : kExchange == 1 ? "pull, all ranks' loads at once" : "pull, one rank after the other");
    if (DG_SKIP)
        printf("# DG_SKIP %d: phases left out (%s%s%s), results not checked\n", DG_SKIP, kSkipMma ? "MMA " : "",
               kSkipExchange ? "exchange " : "", kSkipTokens ? "tokens" : "");
    cublasLtHandle_t lt;
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "cublasLtCreate failed\n");
        return 1;
    }
    void *lt_ws;
    const size_t lt_ws_bytes = 32 << 20;
    CK(cudaMalloc(&lt_ws, lt_ws_bytes));
    const int one = 1, zero = 0;
    std::vector<Proj> projs;
    double sum_lt = 0, sum_best = 0, sum_bytes = 0;
    printf("%-8s %6s %6s %9s %7s | %-26s %8s %7s %8s | %9s\n", "proj", "N", "K", "cuBLASLt", "TB/s",
           "ours (WRxWK, D, minB, S)", "us", "TB/s", "vs cuBL", "no PDL us");
    for (const Shape &sh : shapes) {
        Proj p = {};
        p.sh = sh;
        const int n = sh.n, k = sh.k;
        p.wb = (size_t)n * k;
        p.sets = rotation_sets(p.wb);
        uint64_t seed = 42 + n + k;
        std::vector<int8_t> &w = p.w, &x = p.x;
        w.resize(p.wb), x.resize((size_t)kM * k);
        for (auto &v : w)
            v = (int8_t)(lcg(&seed) % 255 - 127);
        for (auto &v : x)
            v = (int8_t)(lcg(&seed) % 255 - 127);
        p.ref = cpu_gemm(x.data(), w.data(), n, k);
        std::vector<uint8_t> wl = stream_layout(w, n, k);
        CK(cudaMalloc(&p.d_w, p.wb * p.sets));
        CK(cudaMalloc(&p.d_wl, p.wb * p.sets));
        for (int i = 0; i < p.sets; i++) {
            CK(cudaMemcpy(p.d_w + p.wb * i, w.data(), p.wb, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(p.d_wl + p.wb * i, wl.data(), p.wb, cudaMemcpyHostToDevice));
        }
        CK(cudaMalloc(&p.d_x, x.size()));
        CK(cudaMemcpy(p.d_x, x.data(), x.size(), cudaMemcpyHostToDevice));
        CK(cudaMalloc(&p.d_out, p.ref.size() * 4));

        /* cuBLASLt as the engine calls it: D (n x 64, column-major) = W^T' x X', best of the top 8 */
        cublasOperation_t T = CUBLAS_OP_T;
        cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32I, CUDA_R_32I);
        cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &T, sizeof T);
        cublasLtMatrixLayoutCreate(&p.la, CUDA_R_8I, k, n, k);
        cublasLtMatrixLayoutCreate(&p.lb, CUDA_R_8I, k, kM, k);
        cublasLtMatrixLayoutCreate(&p.lc, CUDA_R_32I, n, kM, n);
        cublasLtMatmulPreference_t pref;
        cublasLtMatmulPreferenceCreate(&pref);
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &lt_ws_bytes,
                                             sizeof lt_ws_bytes);
        cublasLtMatmulHeuristicResult_t heur[8];
        int nh = 0;
        cublasLtMatmulAlgoGetHeuristic(lt, p.op, p.la, p.lb, p.lc, p.lc, pref, 8, heur, &nh);
        cublasLtMatmulPreferenceDestroy(pref);
        double t_lt = 1e30;
        for (int h = 0; h < nh; h++) {
            auto run = [&](int i) {
                cublasLtMatmul(lt, p.op, &one, p.d_w + p.wb * i, p.la, p.d_x, p.lb, &zero, p.d_out, p.lc, p.d_out,
                               p.lc, &heur[h].algo, lt_ws, lt_ws_bytes, 0);
            };
            CK(cudaMemset(p.d_out, 0xff, p.ref.size() * 4));
            run(0);
            CK(cudaDeviceSynchronize());
            check(p, "cuBLASLt");
            const double t = time_us(run, p.sets);
            if (t < t_lt)
                t_lt = t, p.lt_algo = heur[h].algo;
        }

        /* ours: every configuration x cluster size, PDL on (as the engine launches its kernels) */
        double t_best = 1e30, t_form[3] = {1e30, 1e30, 1e30};
        Launch best_form[3] = {};
        std::vector<Launch> launches;
        for (const Config &c : configs)
            for (int s = 1; s <= (kExchange == 3 ? kMaxS3 : kMaxS); s++)
                if (n % (32 * c.wr) == 0 && k / 32 / s >= c.wk && c.bytes(k / 32 / s + 1) <= kMaxSmem)
                    launches.push_back({&c, s, nullptr});
        if (multicast) /* (no split of K: DG_SKIP 2 changes nothing in it) */
            for (const McConfig &m : mc_configs)
                if (n % (32 * m.wr) == 0 && m.smem(k) <= kMaxSmem)
                    launches.push_back({nullptr, 0, &m});
        for (const Launch &l : launches) {
            auto run = [&](int i) { launch(l, p.d_wl + p.wb * i, p.d_x, n, k, p.d_out, true); };
            CK(cudaMemset(p.d_out, 0xff, p.ref.size() * 4));
            run(0);
            CK(cudaDeviceSynchronize());
            check(p, "ours");
            const double t = time_us(run, p.sets);
            if (verbose) {
                char cfg[40];
                describe(l, cfg, sizeof cfg);
                printf("##  %-8s %-26s %8.2f us\n", sh.name, cfg, t);
            }
            if (t < t_best)
                t_best = t, p.best = l;
            if (t < t_form[form_of(l)])
                t_form[form_of(l)] = t, best_form[form_of(l)] = l;
        }
        char cfg[40];
        static const char *const form_names[3] = {"register", "ring", "multicast"};
        for (int f = 0; f < 3; f++)
            if (t_form[f] < 1e30) {
                describe(best_form[f], cfg, sizeof cfg);
                printf("#   %-8s best %s form: %s: %.2f us\n", sh.name, form_names[f], cfg, t_form[f]);
            }
        const double t_nopdl =
            time_us([&](int i) { launch(p.best, p.d_wl + p.wb * i, p.d_x, n, k, p.d_out, false); }, p.sets);
        describe(p.best, cfg, sizeof cfg);
        printf("%-8s %6d %6d %9.2f %7.3f | %-26s %8.2f %7.3f %7.2fx | %9.2f\n", sh.name, n, k, t_lt,
               p.wb / (t_lt * 1e6), cfg, t_best, p.wb / (t_best * 1e6), t_lt / t_best, t_nopdl);
        sum_lt += t_lt, sum_best += t_best, sum_bytes += (double)p.wb;
        projs.push_back(p);
    }
    printf("%-8s %6s %6s %9.2f %7.3f | %-26s %8.2f %7.3f %7.2fx   (bytes at the copy rate: %.1f us)\n", "summed",
           "", "", sum_lt, sum_bytes / (sum_lt * 1e6), "best per projection", sum_best,
           sum_bytes / (sum_best * 1e6), sum_lt / sum_best, sum_bytes / (copy_gbs * 1e3));

    /* a layer: the four projections back to back, each on its own rotated weights */
    int sets = 1;
    for (const Proj &p : projs)
        sets = std::max(sets, p.sets);
    const double layer_lt = time_us(
        [&](int i) {
            for (const Proj &p : projs)
                cublasLtMatmul(lt, p.op, &one, p.d_w + p.wb * (i % p.sets), p.la, p.d_x, p.lb, &zero, p.d_out,
                               p.lc, p.d_out, p.lc, &p.lt_algo, lt_ws, lt_ws_bytes, 0);
        },
        sets);
    double layer_ours[2];
    for (int pdl = 0; pdl < 2; pdl++)
        layer_ours[pdl] = time_us(
            [&](int i) {
                for (const Proj &p : projs)
                    launch(p.best, p.d_wl + p.wb * (i % p.sets), p.d_x, p.sh.n, p.sh.k, p.d_out, pdl);
            },
            sets);
    for (const Proj &p : projs) { /* the layer runs left each output correct */
        launch(p.best, p.d_wl, p.d_x, p.sh.n, p.sh.k, p.d_out, true);
        CK(cudaDeviceSynchronize());
        check(p, "ours (layer)");
    }
    printf("layer (%zu back to back): cuBLASLt %.2f us (%.3f TB/s), ours %.2f us (%.3f TB/s, %.2fx), ours without PDL "
           "%.2f us\n",
           projs.size(), layer_lt, sum_bytes / (layer_lt * 1e6), layer_ours[1], sum_bytes / (layer_ours[1] * 1e6),
           layer_lt / layer_ours[1], layer_ours[0]);

    resident(projs, lt, lt_ws, lt_ws_bytes, sets, layer_lt);

    for (Proj &p : projs) {
        cublasLtMatrixLayoutDestroy(p.la), cublasLtMatrixLayoutDestroy(p.lb), cublasLtMatrixLayoutDestroy(p.lc);
        cublasLtMatmulDescDestroy(p.op);
        cudaFree(p.d_w), cudaFree(p.d_wl), cudaFree(p.d_x), cudaFree(p.d_out);
    }
    CK(cudaFree(lt_ws));
    cudaFree(g_ws), cudaFree(g_count);
    cublasLtDestroy(lt);
    return 0;
}
