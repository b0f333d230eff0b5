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
 * Usage: [DG_SHAPES=N:K,...] [DG_VERBOSE=1] [DG_NO_MULTICAST=1] dev_decode_gemm
 * Build: the CMake target, or nvcc -std=c++17 -O3 -arch=sm_90a -Idev -Isrc/linear/include
 *        dev/decode_gemm.cu -lcublasLt (add -DDG_SKIP=b or -DDG_EXCHANGE=x)
 */
#include <cooperative_groups.h>
#include <cublasLt.h>
#include <stdint.h>
#include <string.h>
#include <string>
#include <vector>

#include "dev_common.h"
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
#endif

template <int WR, int WK, int D, int MINB, int P>
__global__ void __launch_bounds__(WR *WK * 32, MINB)
    decode_gemm(const uint4 *__restrict__ wl, const int8_t *__restrict__ x, int n, int k, int *__restrict__ out,
                int *__restrict__ work, unsigned *__restrict__ count) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    constexpr int kThreads = WR * WK * 32, kRows = 32 * WR, kLd = part_ld<WR, WK>();
    extern __shared__ __align__(16) uint8_t smem[];
    cg::cluster_group cluster = cg::this_cluster();
    const int S = gridDim.x, split = blockIdx.x, rb = blockIdx.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
    const int wr = warp % WR, wk = warp / WR;
    const int steps = k / 32;
    /* the block's steps [b0, b1) of K, the warp's [w0, w1) within them */
    const int b0 = split * steps / S, b1 = (split + 1) * steps / S, bsteps = b1 - b0;
    const int w0 = b0 + wk * bsteps / WK, w1 = b0 + (wk + 1) * bsteps / WK, ws = w1 - w0;
    const int rg = rb * WR + wr; /* 32-row group: half (rg & 1) of 64-row tile rg / 2 */
    const uint4 *w = wl + ((size_t)(rg >> 1) * steps + w0) * 128 + (rg & 1) * 64 + lane;
    const int ld = (steps / S + 1) * 32 + kPad;
    const int max_ws = (bsteps + WK - 1) / WK, nchunks = (max_ws + kChunk - 1) / kChunk;

    /* P = 0: D steps in registers. P > 0: P steps per warp in a shared-memory
     * ring filled by cp.async (no registers held per step in flight); each
     * lane reads back exactly the 32 bytes it copied, so its own
     * cp.async.wait_group is the only synchronization the ring needs. Group
     * order per thread: W0 .. W(P-1), the nchunks token chunks, then one
     * group per step s (W(s + P), possibly empty). */
    uint4 a[P ? 1 : D][2];
    uint4 *ring = reinterpret_cast<uint4 *>(smem + block_smem<WR, WK>(steps / S + 1)) + warp * P * 64 + lane;
    if constexpr (P == 0) {
#pragma unroll
        for (int d = 0; d < D; d++)
            if (d < ws) {
                a[d][0] = ld_stream(w + d * 128);
                a[d][1] = ld_stream(w + d * 128 + 32);
            }
    } else {
#pragma unroll
        for (int d = 0; d < P; d++) {
            if (d < ws) {
                cp_async16(ring + d * 64, w + d * 128);
                cp_async16(ring + d * 64 + 32, w + d * 128 + 32);
            }
            asm volatile("cp.async.commit_group;" ::: "memory");
        }
    }
    if constexpr (kExchange == 2 && !kSkipExchange) /* a block may write another's shared memory only once that one runs */
        asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;");
    asm volatile("griddepcontrol.wait;" ::: "memory");

    /* the token columns of the block's K range, in chunks of kChunk steps of
     * every K slice (chunk j = steps w0 + j kChunk .. of each slice), one
     * cp.async group each: the MMAs of chunk j start when it has landed,
     * while the later chunks are still on their way */
    for (int j = 0; j < nchunks; j++) {
        if (!kSkipTokens)
            for (int i = threadIdx.x; i < kM * WK * kChunk * 2; i += kThreads) {
                const int half = i & 1, st = (i >> 1) % kChunk, v = (i >> 1) / kChunk % WK,
                          r = (i >> 1) / kChunk / WK;
                const int v0 = b0 + v * bsteps / WK, v1 = b0 + (v + 1) * bsteps / WK, s = v0 + j * kChunk + st;
                if (s < v1)
                    cp_async16(smem + r * ld + (s - b0) * 32 + half * 16, x + (size_t)r * k + s * 32 + half * 16);
            }
        asm volatile("cp.async.commit_group;" ::: "memory");
    }

    int acc[4][4][4];
#pragma unroll
    for (int mt = 0; mt < 4; mt++)
#pragma unroll
        for (int G = 0; G < 4; G++)
            acc[mt][G][0] = acc[mt][G][1] = acc[mt][G][2] = acc[mt][G][3] = 0;
    /* ldmatrix.x4: lanes 8i..8i+7 address the rows of matrix i = (rows +8 if i odd, bytes +16 if i >= 2) */
    const uint8_t *xl = smem + ((lane & 7) + ((lane >> 3) & 1) * 8) * ld + (lane >> 4) * 16 + (w0 - b0) * 32;
    /* one step: the token fragments of step s against the weights (v0, v1) */
    auto step = [&](int s, const uint4 &v0, const uint4 &v1) { mma_step<4>(acc, xl, ld, s * 32, v0, v1); };
    for (int j = 0; j < nchunks; j++) {
        /* chunk j's group is followed by the later chunks' and one per step done */
        wait_pending(P ? nchunks - 1 - j + min(j * kChunk, ws) : nchunks - 1 - j);
        __syncthreads(); /* chunk j of every slice has landed (every thread's copies) */
        if constexpr (P == 0) {
            for (int sb = j * kChunk; sb < (j + 1) * kChunk && sb < ws; sb += D) {
#pragma unroll
                for (int d = 0; d < D; d++) {
                    const int s = sb + d;
                    if (s < ws) {
                        step(s, a[d][0], a[d][1]);
                        if (s + D < ws) {
                            a[d][0] = ld_stream(w + (s + D) * 128);
                            a[d][1] = ld_stream(w + (s + D) * 128 + 32);
                        }
                    }
                }
            }
        } else {
            for (int s = j * kChunk; s < (j + 1) * kChunk && s < ws; s++) {
                if (s < P)
                    wait_pending(P + nchunks - 1);
                else
                    asm volatile("cp.async.wait_group %0;" ::"n"(P - 1) : "memory");
                uint4 *slot = ring + (s % P) * 64;
                const uint4 v0 = slot[0], v1 = slot[32];
                step(s, v0, v1);
                if (s + P < ws) { /* after the MMAs used v0 / v1: the slot is free */
                    cp_async16(slot, w + (s + P) * 128);
                    cp_async16(slot + 32, w + (s + P) * 128 + 32);
                }
                asm volatile("cp.async.commit_group;" ::: "memory");
            }
        }
    }
    if constexpr (P > 0)
        asm volatile("cp.async.wait_group 0;" ::: "memory");

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
    /* partials: acc[mt][G][e] is token mt*16 + g (+8 for e >= 2), row wr*32 + G*8 + 2q + (e & 1) */
    __syncthreads(); /* the token columns are dead: their shared memory takes the partials */
    int *part = (int *)smem;
#pragma unroll
    for (int mt = 0; mt < 4; mt++)
#pragma unroll
        for (int G = 0; G < 4; G++) {
            int *p = part + (wk * kM + mt * 16 + g) * kLd + wr * 32 + G * 8 + 2 * q;
            *(int2 *)p = make_int2(acc[mt][G][0], acc[mt][G][1]);
            *(int2 *)(p + 8 * kLd) = make_int2(acc[mt][G][2], acc[mt][G][3]);
        }
    /* block r of the cluster owns slice r of the 64 x kRows tile's items (a token, 4 rows) */
    constexpr int kItems = kM * kRows / 4;
    const int lo = split * kItems / S, hi = (split + 1) * kItems / S;
    auto item_at = [&](const int *pt, int v, int i) {
        return *(const int4 *)(pt + (v * kM + i / (kRows / 4)) * kLd + (i % (kRows / 4)) * 4);
    };
    auto warps_sum = [&](int i) { /* item i summed over the block's WK warps, in warp order */
        int4 sum = item_at(part, 0, i);
#pragma unroll
        for (int v = 1; v < WK; v++) {
            const int4 u = item_at(part, v, i);
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
                        u[c][v] = item_at(pc, v, i);
                }
#pragma unroll
            for (int c = 0; c < kMaxS; c++)
                if (c < S)
#pragma unroll
                    for (int v = 0; v < WK; v++)
                        sum.x += u[c][v].x, sum.y += u[c][v].y, sum.z += u[c][v].z, sum.w += u[c][v].w;
        } else {
            for (int c = 0; c < S; c++) {
                const int *pc = cluster.map_shared_rank(part, c);
#pragma unroll
                for (int v = 0; v < WK; v++) {
                    const int4 u = item_at(pc, v, i);
                    sum.x += u.x, sum.y += u.y, sum.z += u.z, sum.w += u.w;
                }
            }
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

void launch(const Launch &l, const uint8_t *wl, const int8_t *x, int n, int k, int *out, bool pdl) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute at[2];
    at[0].id = cudaLaunchAttributeClusterDimension;
    at[0].val.clusterDim.y = 1, at[0].val.clusterDim.z = 1;
    Kern kern;
    if (l.m) { /* blocks along the tokens (the cluster), row blocks; one producer warp more */
        cfg.gridDim = dim3(l.m->c, n / (32 * l.m->wr));
        cfg.blockDim = dim3(l.m->wr * l.m->wk * 32 + 32);
        cfg.dynamicSmemBytes = l.m->smem(k);
        at[0].val.clusterDim.x = l.m->c;
        kern = l.m->kern;
    } else {
        const Config &c = *l.c;
        cfg.gridDim = dim3(l.s, n / (32 * c.wr));
        cfg.blockDim = dim3(c.wr * c.wk * 32);
        cfg.dynamicSmemBytes = c.bytes(k / 32 / l.s + 1);
        at[0].val.clusterDim.x = kExchange == 3 ? 1 : l.s;
        kern = c.kern;
    }
    at[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[1].val.programmaticStreamSerializationAllowed = pdl;
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
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t lt_algo;
    Launch best;
};

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
        std::vector<int8_t> w(p.wb), x((size_t)kM * k);
        for (auto &v : w)
            v = (int8_t)(lcg(&seed) % 255 - 127);
        for (auto &v : x)
            v = (int8_t)(lcg(&seed) % 255 - 127);
        p.ref.assign((size_t)kM * n, 0);
        for (int t = 0; t < kM; t++)
            for (int r = 0; r < n; r++) {
                int s = 0;
                for (int c = 0; c < k; c++)
                    s += (int)x[(size_t)t * k + c] * (int)w[(size_t)r * k + c];
                p.ref[(size_t)t * n + r] = s;
            }
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
