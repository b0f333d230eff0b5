/* The weight-streaming decode GEMM (sm90stream.h says what and why). sm_90a.
 *
 * Work: block (x, y) = WGS warpgroups x 64 weight rows (tile x*WGS + wg) over
 * the y-th of S K ranges; the S blocks of one row block form a cluster.
 *
 * Main loop, per chunk of D K steps (a step = one wgmma: 32 K bytes dense,
 * 64 K' bytes 2:4):
 *   - weights: each warpgroup owns a ring of NS shared-memory stages; a chunk
 *     of its tile is one contiguous run of records (stream_layout.h), so one
 *     thread moves it with one cp.async.bulk completing on the stage's
 *     mbarrier. The first NS chunks are requested before griddepcontrol.wait
 *     (no kernel writes weights: under PDL the stream starts while the
 *     previous kernel finishes), a stage is refilled NS chunks ahead as soon
 *     as its warpgroup has read it. Why not loads into registers: measured on
 *     the H100, one 16 KB chunk in flight per warpgroup through the load
 *     units kept that first form at 0.45-0.74 TB/s (docs/results/h100.md);
 *   - tokens: the next chunk's rows go to the other of two buffers by
 *     cp.async (zero-filled past the batch, past K' and past the K range);
 *   - each thread reads its A fragments (and 2:4 metadata) of the D steps
 *     from the stage, one 16-byte ld.shared each (a warp reads 512 B in a
 *     row: no bank conflict), and D wgmmas (A from registers, tokens from
 *     shared memory) run, then wait_group 0.
 * Epilogue: see the split-K reduction below; dequant (+ GLU / residual) as
 * sm90stream.h states.
 */
#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <type_traits>

#include "linear/kernels/bulk_copy.cuh"
#include "linear/kernels/pdl.cuh"
#include "sm90stream.h"
#include "sm90stream_mma.cuh"
#include "stream_layout.h"

namespace cg = cooperative_groups;

namespace {

struct Params {
    const uint8_t *w, *q;
    const float *sa, *sb;
    const uint16_t *bias;
    uint16_t *y;
    int m, m_pad, n, kq, ldy;
    int tiles, steps, steps_per_split;
    int op; /* ss_stream_op */
    unsigned long long *trace; /* NULL, or SS_STREAM_TRACE_SLOTS words per block */
};

/* Steps per chunk: D = 8 keeps 16 KB (dense) / 20 KB (2:4) of weights in
 * flight per warpgroup; at 128 tokens the accumulators need the registers. */
__host__ __device__ constexpr int chunk_steps(int nt) { return nt == 128 ? 4 : 8; }
constexpr int kMaxSplitsDev = 8; /* portable cluster size: the most K ranges */

/* Shared memory: two token buffers of one chunk, the partials the cluster's
 * blocks send this block (S shares of the NT x R tile, + slack for the
 * rounding of S), and the epilogue's token scales, weight scales and bias. */
template <bool SP, int NT, int WGS> constexpr int bufs_bytes() {
    return 2 * NT * chunk_steps(NT) * (SP ? SS_STREAM_SPARSE_STEP : SS_STREAM_DENSE_STEP);
}
template <int NT, int WGS> constexpr int recv_words() { return NT * WGS * 64 + 16; }
/* Weight stages per warpgroup: each holds one chunk's records (D steps, one
 * bulk copy); ~48-64 KB of weights in flight per warpgroup, fewer stages
 * where two warpgroups share the block's shared memory. */
template <bool SP, int WGS> constexpr int stages() { return WGS == 2 ? 2 : SP ? 3 : 4; }
template <bool SP, int NT> constexpr int stage_bytes() {
    return chunk_steps(NT) * (SP ? SS_STREAM_SPARSE_RECORD : SS_STREAM_DENSE_RECORD);
}
template <bool SP, int NT, int WGS> constexpr int ring_bytes() {
    return WGS * stages<SP, WGS>() * stage_bytes<SP, NT>();
}
template <bool SP, int NT, int WGS> constexpr int smem_bytes() {
    return bufs_bytes<SP, NT, WGS>() + ring_bytes<SP, NT, WGS>() + recv_words<NT, WGS>() * 4 +
           (NT + 2 * WGS * 64) * 4 + WGS * stages<SP, WGS>() * 8;
}

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SS_STREAM_DEVICE 1

__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
/* cp.async.wait_group takes an immediate: at most n groups still pending
 * (n > 31: 31, which waits for more than asked, so is still correct) */
template <int N> __device__ __forceinline__ void cp_async_wait_le(int n) {
    if constexpr (N == 0) {
        asm volatile("cp.async.wait_group 0;" ::: "memory");
    } else if (n >= N) {
        asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
    } else {
        cp_async_wait_le<N - 1>(n);
    }
}
__device__ __forceinline__ void cp_async_wait_pending(int n) { cp_async_wait_le<31>(n); }
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wg_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory"); }
/* cp.async writes shared memory through the generic proxy; wgmma reads it
 * through the async proxy */
__device__ __forceinline__ void fence_async_smem() {
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

__device__ __forceinline__ unsigned long long global_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}
/* Thread 0's phase clock (the trace): cycles since the last mark, added to
 * a slot in shared memory (no registers held across the kernel but the
 * pointer and the last stamp). Thread 0 takes part in every barrier and wait
 * of the block, so its time is the block's. Off (out NULL): a predicate. */
struct PhaseClock {
    unsigned long long *out, *acc; /* this block's global slots (NULL: off); shared sums */
    long long last;
    __device__ void start(unsigned long long *o, unsigned long long *sh) {
        out = o;
        acc = sh;
        if (out) {
            for (int i = 0; i < SS_STREAM_TRACE_SLOTS; i++)
                acc[i] = 0;
            acc[SS_STREAM_TRACE_START_NS] = global_ns();
            last = clock64();
        }
    }
    __device__ __forceinline__ void mark(int slot) {
        if (out) {
            long long now = clock64();
            acc[slot] += (unsigned long long)(now - last);
            last = now;
        }
    }
    __device__ void finish(int chunks) {
        if (out) {
            acc[SS_STREAM_TRACE_END_NS] = global_ns();
            acc[SS_STREAM_TRACE_CHUNKS] = (unsigned long long)chunks;
            for (int i = 0; i < SS_STREAM_TRACE_SLOTS; i++)
                out[i] = acc[i];
        }
    }
};

/* the 128 threads of warpgroup wg (named barrier 1 + wg; 0 is __syncthreads) */
__device__ __forceinline__ void wg_bar(int wg) {
    asm volatile("bar.sync %0, 128;" ::"r"(1 + wg) : "memory");
}
__device__ __forceinline__ uint4 lds128(uint32_t a) {
    uint4 v;
    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(a));
    return v;
}
__device__ __forceinline__ uint32_t lds32(uint32_t a) {
    uint32_t v;
    asm volatile("ld.shared.u32 %0, [%1];" : "=r"(v) : "r"(a));
    return v;
}

/* Descriptor of a K-major token tile without swizzle: 8-row x 16-byte core
 * matrices, K-adjacent ones 128 B apart (LBO), 8-row groups kc * 8 B apart
 * (SBO), as dev/wgmma_peak.cu's interleaved layout. */
__device__ __forceinline__ uint64_t tile_desc(uint32_t addr, int kc) {
    return (uint64_t)((addr & 0x3FFFF) >> 4) | (uint64_t)(128 >> 4) << 16 |
           (uint64_t)((kc * 8) >> 4) << 32;
}

/* Byte offset of (token row r, K byte k) in a chunk buffer of kc K bytes. */
__device__ __forceinline__ uint32_t tile_off(int r, int k, int kc) {
    return (uint32_t)((r >> 3) * (kc * 8) + (k >> 4) * 128 + (r & 7) * 16);
}

__device__ __forceinline__ float bf16_to_float(uint16_t b) { return __uint_as_float((uint32_t)b << 16); }
__device__ __forceinline__ uint16_t bf16_bits(float v) {
    __nv_bfloat16 b = __float2bfloat16_rn(v);
    return *reinterpret_cast<uint16_t *>(&b);
}
/* v rounded to BF16 and back (the value the unfused chain writes and reads) */
__device__ __forceinline__ float bf16_round(float v) { return bf16_to_float(bf16_bits(v)); }

/* SPEC's epilogue of one accumulated value: each op rounded, then BF16 */
__device__ __forceinline__ float dequant_bf16(float acc, float sa, float sb, float bias) {
    return bf16_round(__fadd_rn(__fmul_rn(__fmul_rn(acc, sa), sb), bias));
}

/* The op on the dequantized value(s) into dst (sm90stream.h): GLU from the
 * gate value v and the up value u with the engine's glu_act and its rounding
 * points (kernels/dequant.cu), RESIDUAL added to the stream in place. */
__device__ __forceinline__ void store_op(int op, uint16_t *dst, float v, float u) {
    if (op == SS_STREAM_OP_GLU_RELU2 || op == SS_STREAM_OP_GLU_SILU) {
        float a = op == SS_STREAM_OP_GLU_RELU2 ? (v > 0.0f ? __fmul_rn(v, v) : 0.0f) : v / __fadd_rn(1.0f, expf(-v));
        *dst = bf16_bits(__fmul_rn(a, u));
    } else if (op == SS_STREAM_OP_RESIDUAL) {
        *dst = bf16_bits(__fadd_rn(bf16_to_float(*dst), v));
    } else {
        *dst = bf16_bits(v);
    }
}
#endif

template <bool FP8, bool SP, int NT, int WGS>
__global__ void __launch_bounds__(WGS * 128) stream_kernel(const Params p) {
#ifdef SS_STREAM_DEVICE
    constexpr int D = chunk_steps(NT);
    constexpr int STEPK = SP ? SS_STREAM_SPARSE_STEP : SS_STREAM_DENSE_STEP;
    constexpr int REC = SP ? SS_STREAM_SPARSE_RECORD : SS_STREAM_DENSE_RECORD;
    constexpr int KC = D * STEPK;
    constexpr int R = WGS * 64;
    constexpr uint32_t kFiller = 0xCCCCCCCCu;   /* legal 2:4 nibbles (0, 3) for zero A */
    extern __shared__ __align__(128) uint8_t smem[];
    const uint32_t sbase = (uint32_t)__cvta_generic_to_shared(smem);
    /* token buffer i of 2 (arithmetic, not an array: a run-time index would
     * put the array in local memory) */
    auto buf = [&](int i) { return sbase + (uint32_t)(i * NT * KC); };

    const int tid = threadIdx.x, wg = tid >> 7, t = tid & 127;
    /* GLU: warpgroup 1 takes the up tile of warpgroup 0's gate tile (n / 2 rows on) */
    const bool glu = p.op == SS_STREAM_OP_GLU_RELU2 || p.op == SS_STREAM_OP_GLU_SILU;
    const int tile = glu ? blockIdx.x + wg * (p.tiles / 2) : blockIdx.x * WGS + wg;
    const bool tile_ok = tile < p.tiles;
    const int s_begin = blockIdx.y * p.steps_per_split;
    const int nsteps = max(0, min(p.steps, s_begin + p.steps_per_split) - s_begin);
    const int nchunks = (nsteps + D - 1) / D;
    const int k_end = min(p.kq, (s_begin + nsteps) * STEPK);
    const uint8_t *wb = p.w + ((size_t)(tile_ok ? tile : 0) * p.steps + s_begin) * REC;

    constexpr int NS = stages<SP, WGS>(), SB = stage_bytes<SP, NT>();
    /* this warpgroup's stage ring, its full barriers, the epilogue's buffers */
    const uint32_t ring = sbase + bufs_bytes<SP, NT, WGS>() + wg * NS * SB;
    uint32_t *recv = reinterpret_cast<uint32_t *>(smem + bufs_bytes<SP, NT, WGS>() + ring_bytes<SP, NT, WGS>());
    float *e_sa = reinterpret_cast<float *>(recv + recv_words<NT, WGS>()), *e_sb = e_sa + NT, *e_bias = e_sb + R;
    const uint32_t bars = (uint32_t)__cvta_generic_to_shared(e_bias + R) + wg * NS * 8;

    uint32_t acc[NT / 2];
#pragma unroll
    for (int i = 0; i < NT / 2; i++)
        acc[i] = 0;
    __shared__ unsigned long long trace_acc[SS_STREAM_TRACE_SLOTS];
    PhaseClock pc;
    pc.start(p.trace && tid == 0 ? p.trace + (size_t)(blockIdx.y * gridDim.x + blockIdx.x) * SS_STREAM_TRACE_SLOTS
                                 : nullptr,
             trace_acc);

    /* chunk c's weight records (whole steps, fewer in the last chunk) into
     * stage c % NS: one bulk copy by the warpgroup's first thread */
    auto issue = [&](int c) {
        int n = min(D, nsteps - c * D);
        uint32_t bar = bars + (c % NS) * 8, bytes = (uint32_t)(n * REC);
        mbar_expect_tx(bar, bytes);
        bulk_load(ring + (c % NS) * SB, wb + (size_t)c * D * REC, bytes, bar);
    };
    /* the token rows of chunk c into buffer `dst` (every thread of the block) */
    auto load_b = [&](int c, uint32_t dst) {
        const int k0 = (s_begin + c * D) * STEPK;
        for (int i = tid; i < NT * (KC / 16); i += WGS * 128) {
            int r = i / (KC / 16), kk = (i % (KC / 16)) * 16;
            bool ok = r < p.m_pad && k0 + kk < k_end;
            const uint8_t *src = ok ? p.q + (size_t)r * p.kq + k0 + kk : p.q;
            cp_async16(dst + tile_off(r, kk, KC), src, ok ? 16 : 0);
        }
    };

    /* output channel of block row r (GLU: warpgroup 1's rows are the up tile) */
    auto chan = [&](int r) {
        return (glu ? blockIdx.x + (r >> 6) * (p.tiles / 2) : blockIdx.x * WGS + (r >> 6)) * 64 + (r & 63);
    };

    if (t == 0)
        for (int i = 0; i < NS; i++)
            mbar_init(bars + i * 8, 1);
    /* the barriers' initialization visible to the copy engine, then to all */
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    __syncthreads();
    /* weights only (no kernel writes them): the first NS chunks are requested
     * before the wait, so under PDL their stream overlaps the previous kernel */
    if (t == 0 && tile_ok)
        for (int c = 0; c < NS && c < nchunks; c++)
            issue(c);
    /* the epilogue's operands, fetched now so that their latency hides in the
     * main loop (its barriers publish them); sa is the quant kernel's output */
    for (int r = tid; r < R; r += WGS * 128) {
        int c = chan(r);
        e_sb[r] = c < p.n ? p.sb[c] : 0.0f;
        e_bias[r] = c < p.n ? bf16_to_float(p.bias[c]) : 0.0f;
    }
    ss_pdl_wait();
    for (int r = tid; r < NT; r += WGS * 128)
        e_sa[r] = r < p.m_pad ? p.sa[r] : 0.0f;
    if (nchunks > 0)
        load_b(0, buf(0));
    cp_async_commit();
    pc.mark(SS_STREAM_TRACE_PROLOGUE);
    for (int c = 0; c < nchunks; c++) {
        const uint32_t bb = buf(c & 1);
        if (c + 1 < nchunks)
            load_b(c + 1, buf((c + 1) & 1));
        cp_async_commit();
        cp_async_wait_pending(1); /* this chunk's rows have landed (this thread's copies) */
        fence_async_smem();
        __syncthreads();
        pc.mark(SS_STREAM_TRACE_TOKEN_WAIT);
        /* this chunk's weights: A fragments (and 2:4 metadata) from the stage */
        uint4 a[D];
        uint32_t e[D];
        const uint32_t st = ring + (c % NS) * SB;
        if (tile_ok)
            mbar_wait(bars + (c % NS) * 8, (uint32_t)((c / NS) & 1));
        pc.mark(SS_STREAM_TRACE_WEIGHT_WAIT);
#pragma unroll
        for (int d = 0; d < D; d++) {
            bool ok = tile_ok && c * D + d < nsteps;
            a[d] = ok ? lds128(st + d * REC + 16 * t) : make_uint4(0, 0, 0, 0);
            if constexpr (SP)
                e[d] = ok ? lds32(st + d * REC + SS_STREAM_META_OFFSET + 4 * t) : kFiller;
            else
                e[d] = 0;
        }
        const uint64_t db = tile_desc(bb, KC);
        wg_fence();
#pragma unroll
        for (int d = 0; d < D; d++)
            mma<NT, FP8, SP>(acc, a[d], db + (uint64_t)((d * STEPK / 16) * 8), e[d]);
        wg_commit();
        wg_wait0();
        pc.mark(SS_STREAM_TRACE_MMA);
        wg_bar(wg); /* every thread of the warpgroup has read the stage: refill it */
        if (t == 0 && tile_ok && c + NS < nchunks)
            issue(c + NS);
        __syncthreads(); /* token buffer c & 1 is refilled two chunks on */
        pc.mark(SS_STREAM_TRACE_REFILL);
    }
    ss_pdl_trigger();

    /* Split-K reduction: element e = (token, row) of the tile belongs to rank
     * e / per; every block sends its partial of e to the owner's `recv` (a
     * distributed-shared-memory store: no round trip, unlike a remote load),
     * then one cluster barrier, then each rank sums its elements' S partials
     * from its own shared memory in rank order (S32: exact; F32: a fixed
     * order). GLU: an element is a (token, gate row) pair, both partials go to
     * one owner. recv is not the token buffers, so a peer still in its main
     * loop is never overwritten. */
    cg::cluster_group cl = cg::this_cluster();
    const int S = (int)gridDim.y, rank = (int)blockIdx.y;
    constexpr int kPairMax = 2;
    const int RO = glu ? 64 : R, pair = glu ? 2 : 1, per = (NT * RO + S - 1) / S;
    {
        const int w = t >> 5, l = t & 31;
#pragma unroll
        for (int i = 0; i < NT / 2; i++) {
            int row = wg * 64 + 16 * w + (l >> 2) + 8 * ((i >> 1) & 1);
            int tok = 8 * (i >> 2) + 2 * (l & 3) + (i & 1);
            int e = tok * RO + (glu ? (row & 63) : row), owner = e / per;
            cl.map_shared_rank(recv, owner)[((rank * per) + e - owner * per) * pair + (glu ? row >> 6 : 0)] = acc[i];
        }
    }
    cl.sync();
    pc.mark(SS_STREAM_TRACE_EXCHANGE);
    for (int idx = tid; idx < per; idx += WGS * 128) {
        int e = rank * per + idx;
        if (e >= NT * RO)
            break;
        int tok = e / RO, r = e % RO;
        int col = glu ? blockIdx.x * 64 + r : chan(r); /* output column */
        if (tok >= p.m || col >= (glu ? p.n / 2 : p.n))
            continue;
        float v[kPairMax];
#pragma unroll
        for (int c = 0; c < kPairMax; c++) {
            if (c >= pair)
                break;
            float f;
            if constexpr (FP8) {
                f = 0.0f;
#pragma unroll
                for (int j = 0; j < kMaxSplitsDev; j++)
                    if (j < S)
                        f = __fadd_rn(f, __uint_as_float(recv[(j * per + idx) * pair + c]));
            } else {
                int32_t s32 = 0;
#pragma unroll
                for (int j = 0; j < kMaxSplitsDev; j++)
                    if (j < S)
                        s32 += (int32_t)recv[(j * per + idx) * pair + c];
                f = __int2float_rn(s32);
            }
            int br = r + 64 * c; /* block row: the up row of a GLU pair is 64 on */
            v[c] = dequant_bf16(f, e_sa[tok], e_sb[br], e_bias[br]);
        }
        store_op(p.op, p.y + (size_t)tok * p.ldy + col, v[0], glu ? v[1] : 0.0f);
    }
    pc.mark(SS_STREAM_TRACE_EPILOGUE);
    pc.finish(nchunks);
#endif
}

/* The register form (configurations SS_STREAM_WGMMA_CONFIGS ..; dense weights,
 * at most 64 tokens): mma.sync with the tokens as A (16-token m-tiles, one
 * ldmatrix.x4 each per 32-byte K step) and the weights as B, read from the
 * same stream layout: a lane's 16 bytes of a record's warp slice
 * {W[g][4q..], W[g+8][4q..], W[g][16+4q..], W[g+8][16+4q..]} are the B
 * fragments (b0, b1) of two 8-row groups, so a warp streams 32 rows (half a
 * record) per step with two 16-byte loads per lane straight into registers,
 * D steps in flight, and reuses each step's token fragments over its four
 * row groups. Block = WR warps along the rows x WK along its K range, no
 * barrier in the main loop (the block's token columns arrive once, after
 * the PDL wait; the weights are requested before it). Split-K over a
 * cluster of S blocks (grid y): each leaves its partial tile in its shared
 * memory (its WK warps' partials summed first, in warp order), block r
 * sums slice r of the tile over the S ranks (rank order: exact for S32, a
 * fixed order for F32) by distributed shared-memory loads, all S in flight
 * at once, and applies the epilogue. GLU: the first WR / 2 warps
 * take gate rows, the others the up rows n / 2 further. Why: measured on the
 * H100 (dev/decode_gemm.cu) this keeps the weights streaming where the wgmma
 * form waits on its per-chunk barriers. */
template <bool FP8> struct SyncAcc;
template <> struct SyncAcc<false> {
    typedef int32_t T;
    static __device__ __forceinline__ void add(T &a, T b) { a += b; }
    static __device__ __forceinline__ float value(T a) { return __int2float_rn(a); }
    static __device__ __forceinline__ T bits(uint32_t u) { return (T)u; }
    static __device__ __forceinline__ uint32_t word(T a) { return (uint32_t)a; }
};
template <> struct SyncAcc<true> {
    typedef float T;
    static __device__ __forceinline__ void add(T &a, T b) { a = __fadd_rn(a, b); }
    static __device__ __forceinline__ float value(T a) { return a; }
    static __device__ __forceinline__ T bits(uint32_t u) { return __uint_as_float(u); }
    static __device__ __forceinline__ uint32_t word(T a) { return __float_as_uint(a); }
};

constexpr int kSyncChunk = 8; /* K steps per token chunk of the register form (a multiple of D) */
/* The register form's shared memory, one formula for the kernel and its
 * launch: the token columns of a block's K range (16 mt rows of at most
 * steps / s + 1 steps, padded by 16 bytes: no ldmatrix bank conflict),
 * aliased afterwards by the wk partial tiles (16 mt tokens x 32 wr rows,
 * padded by 8 words); then sa, sb, bias. */
__host__ __device__ constexpr int sync_token_ld(int steps, int s) { return (steps / s + 1) * SS_STREAM_DENSE_STEP + 16; }
__host__ __device__ constexpr int sync_token_bytes(int mt, int steps, int s) { return 16 * mt * sync_token_ld(steps, s); }
__host__ __device__ constexpr int sync_part_ld(int wr) { return 32 * wr + 8; }
__host__ __device__ constexpr int sync_region_bytes(int mt, int wr, int wk, int steps, int s) {
    const int tokens = sync_token_bytes(mt, steps, s), parts = wk * 16 * mt * sync_part_ld(wr) * 4;
    return tokens > parts ? tokens : parts;
}
__host__ __device__ constexpr int sync_scalar_bytes(int mt, int wr) { return (16 * mt + 2 * 32 * wr) * 4; }
/* the weight ring: p steps of 1 KB (32 rows x 32 bytes) per warp */
__host__ __device__ constexpr int sync_ring_bytes(int wr, int wk, int p) { return wr * wk * p * 1024; }
__host__ __device__ constexpr int sync_smem_bytes(int mt, int wr, int wk, int p, int steps, int s) {
    return sync_region_bytes(mt, wr, wk, steps, s) + sync_scalar_bytes(mt, wr) + sync_ring_bytes(wr, wk, p);
}

#ifdef SS_STREAM_DEVICE
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
/* weights are read once: no L1 allocation */
__device__ __forceinline__ uint4 ld_stream(const uint4 *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}
template <bool FP8>
__device__ __forceinline__ void mma_sync(typename SyncAcc<FP8>::T (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
    if constexpr (FP8)
        asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                     "{%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    else
        asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                     "{%8,%9}, {%0,%1,%2,%3};"
                     : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif

template <bool FP8, int MT, int WR, int WK, int D, int P>
__global__ void __launch_bounds__(WR *WK * 32) sync_kernel(const Params p) {
#ifdef SS_STREAM_DEVICE
    typedef SyncAcc<FP8> A;
    typedef typename A::T Acc;
    constexpr int NT = 16 * MT, kThreads = WR * WK * 32, R = 32 * WR, LDP = sync_part_ld(WR);
    static_assert(kSyncChunk % D == 0, "a token chunk holds whole rounds of the D weight registers");
    extern __shared__ __align__(128) uint8_t smem[];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, q = lane & 3;
    const int wr = warp % WR, wk = warp / WR;
    const int S = (int)gridDim.y, split = (int)blockIdx.y, rb = (int)blockIdx.x;
    const bool glu = p.op == SS_STREAM_OP_GLU_RELU2 || p.op == SS_STREAM_OP_GLU_SILU;
    /* 32-row group of block row group j (GLU: the second half are the up rows) */
    auto group = [&](int j) {
        return glu ? (j < WR / 2 ? rb * (WR / 2) + j : p.n / 64 + rb * (WR / 2) + j - WR / 2) : rb * WR + j;
    };
    auto chan = [&](int r) { return group(r >> 5) * 32 + (r & 31); };
    const int rg = group(wr);
    const bool rg_ok = (rg >> 1) < p.tiles;
    const int steps = p.steps;
    /* the block's steps [b0, b1), the warp's [w0, w0 + ws) */
    const int b0 = split * steps / S, b1 = (split + 1) * steps / S, bsteps = b1 - b0;
    const int w0 = b0 + wk * bsteps / WK, ws = rg_ok ? b0 + (wk + 1) * bsteps / WK - w0 : 0;
    const uint4 *w = reinterpret_cast<const uint4 *>(p.w) + ((size_t)(rg >> 1) * steps + w0) * 128 + (rg & 1) * 64 + lane;

    const int ld = sync_token_ld(steps, S); /* token row pitch */
    const int region = sync_region_bytes(MT, WR, WK, steps, S);
    float *e_sa = reinterpret_cast<float *>(smem + region), *e_sb = e_sa + NT, *e_bias = e_sb + R;
    const uint32_t sbase = (uint32_t)__cvta_generic_to_shared(smem);
    /* P = 0: D steps in flight per warp, in registers. P > 0: P steps per
     * warp in a shared-memory ring filled by cp.async, so the bytes in flight
     * are not bounded by the registers the accumulators leave. Each lane reads
     * back exactly the 32 bytes it copied: its own cp.async.wait_group is all
     * the ring needs. A thread's groups, in order: W0 .. W(P-1), the token
     * chunks, then one per step s (W(s + P), maybe empty). */
    uint4 a[P ? 1 : D][2];
    const uint32_t ring = sbase + region + sync_scalar_bytes(MT, WR) + (warp * P * 64 + lane) * 16;
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
                cp_async16(ring + d * 1024, w + d * 128, 16);
                cp_async16(ring + d * 1024 + 512, w + d * 128 + 32, 16);
            }
            cp_async_commit();
        }
    }
    for (int r = tid; r < R; r += kThreads) { /* weights-side operands: before the wait */
        const int c = chan(r);
        const bool ok = c < p.n && (group(r >> 5) >> 1) < p.tiles;
        e_sb[r] = ok ? p.sb[c] : 0.0f;
        e_bias[r] = ok ? bf16_to_float(p.bias[c]) : 0.0f;
    }
    ss_pdl_wait();
    for (int r = tid; r < NT; r += kThreads)
        e_sa[r] = r < p.m_pad ? p.sa[r] : 0.0f;
    /* the token columns of the block's K range, in chunks of kSyncChunk steps
     * of every K slice (chunk j = steps w0 + j kSyncChunk .. of each slice),
     * one cp.async group each: the MMAs of chunk j start when it has landed,
     * while the later chunks are still on their way */
    const int max_ws = (bsteps + WK - 1) / WK, nchunks = (max_ws + kSyncChunk - 1) / kSyncChunk;
    for (int j = 0; j < nchunks; j++) {
        for (int i = tid; i < NT * WK * kSyncChunk * 2; i += kThreads) {
            const int half = i & 1, st = (i >> 1) % kSyncChunk, v = (i >> 1) / kSyncChunk % WK,
                      r = (i >> 1) / kSyncChunk / WK;
            const int v0 = b0 + v * bsteps / WK, v1 = b0 + (v + 1) * bsteps / WK, s = v0 + j * kSyncChunk + st;
            const bool ok = r < p.m_pad;
            if (s < v1)
                cp_async16(sbase + r * ld + (s - b0) * SS_STREAM_DENSE_STEP + half * 16,
                           ok ? p.q + (size_t)r * p.kq + s * SS_STREAM_DENSE_STEP + half * 16 : p.q, ok ? 16 : 0);
        }
        cp_async_commit();
    }

    Acc acc[MT][4][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int G = 0; G < 4; G++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                acc[mt][G][e] = 0;
    /* ldmatrix.x4: lanes 8i..8i+7 address matrix i's rows (+8 rows if i is odd, +16 bytes if i >= 2) */
    const uint32_t xl = sbase + ((lane & 7) + ((lane >> 3) & 1) * 8) * ld + (lane >> 4) * 16 +
                        (w0 - b0) * SS_STREAM_DENSE_STEP;
    /* one step: the token fragments of step s against the weights (v0, v1) */
    auto step = [&](int s, const uint4 &v0, const uint4 &v1) {
        uint32_t x[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
            ldsm_x4(x[mt], xl + mt * 16 * ld + s * SS_STREAM_DENSE_STEP);
#pragma unroll
        for (int G = 0; G < 4; G++) {
            /* rows 8G..8G+7 of the warp's 32: b0 = v.x / v.y, b1 = v.z / v.w */
            const uint4 &v = (G >> 1) ? v1 : v0;
            const uint32_t lo = (G & 1) ? v.y : v.x, hi = (G & 1) ? v.w : v.z;
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
                mma_sync<FP8>(acc[mt][G], x[mt], lo, hi);
        }
    };
    for (int j = 0; j < nchunks; j++) {
        /* the ring's groups: chunk j is followed by the later chunks and one group per step done */
        cp_async_wait_pending(P ? nchunks - 1 - j + min(j * kSyncChunk, ws) : nchunks - 1 - j);
        __syncthreads(); /* chunk j of every slice has landed (every thread's copies) */
        if constexpr (P == 0) {
            for (int sb = j * kSyncChunk; sb < (j + 1) * kSyncChunk && sb < ws; sb += D) {
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
            for (int s = j * kSyncChunk; s < (j + 1) * kSyncChunk && s < ws; s++) {
                if (s < P)
                    cp_async_wait_pending(P + nchunks - 1);
                else
                    cp_async_wait_le<P - 1>(P - 1); /* the immediate itself */
                const uint32_t slot = ring + (s % P) * 1024;
                step(s, lds128(slot), lds128(slot + 512));
                if (s + P < ws) { /* the MMAs have consumed the slot */
                    cp_async16(slot, w + (s + P) * 128, 16);
                    cp_async16(slot + 512, w + (s + P) * 128 + 32, 16);
                }
                cp_async_commit();
            }
        }
    }
    if constexpr (P > 0)
        cp_async_wait_pending(0); /* no copy outlives the loop */
    ss_pdl_trigger();

    /* partials: acc[mt][G][e] is token 16 mt + g (+8 for e >= 2), block row 32 wr + 8 G + 2 q + (e & 1) */
    __syncthreads(); /* the token columns are dead: their shared memory takes the partials */
    Acc *part = reinterpret_cast<Acc *>(smem);
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int G = 0; G < 4; G++) {
            Acc *pp = part + (wk * NT + mt * 16 + g) * LDP + wr * 32 + G * 8 + 2 * q;
            pp[0] = acc[mt][G][0], pp[1] = acc[mt][G][1];
            pp[8 * LDP] = acc[mt][G][2], pp[8 * LDP + 1] = acc[mt][G][3];
        }
    if constexpr (WK > 1) { /* the WK partials summed into the first, so a rank is one load per item below */
        __syncthreads();
        for (int i = tid; i < NT * R / 4; i += kThreads) {
            Acc *p0 = part + (i / (R / 4)) * LDP + (i % (R / 4)) * 4;
            const uint4 u0 = *reinterpret_cast<const uint4 *>(p0);
            Acc s0[4] = {A::bits(u0.x), A::bits(u0.y), A::bits(u0.z), A::bits(u0.w)};
#pragma unroll
            for (int v = 1; v < WK; v++) {
                const uint4 u = *reinterpret_cast<const uint4 *>(p0 + v * NT * LDP);
                A::add(s0[0], A::bits(u.x)), A::add(s0[1], A::bits(u.y));
                A::add(s0[2], A::bits(u.z)), A::add(s0[3], A::bits(u.w));
            }
            *reinterpret_cast<uint4 *>(p0) = make_uint4(A::word(s0[0]), A::word(s0[1]), A::word(s0[2]), A::word(s0[3]));
        }
    }
    cg::cluster_group cl = cg::this_cluster();
    cl.sync(); /* every block's partials are written */
    /* this block's slice of the output items: (token, 4 block rows); GLU: 4 gate rows (+ their up rows) */
    const int RO = glu ? R / 2 : R, items = NT * RO / 4;
    const int lo = split * items / S, hi = (split + 1) * items / S;
    for (int it = lo + tid; it < hi; it += kThreads) {
        const int tok = it / (RO / 4), r = (it % (RO / 4)) * 4;
        /* every rank's loads in flight before the first add: one round trip
         * through distributed shared memory instead of S */
        uint4 u[2][kMaxSplitsDev];
#pragma unroll
        for (int c = 0; c < kMaxSplitsDev; c++)
            if (c < S) {
                const Acc *pc = cl.map_shared_rank(part, c) + tok * LDP + r;
                u[0][c] = *reinterpret_cast<const uint4 *>(pc);
                if (glu)
                    u[1][c] = *reinterpret_cast<const uint4 *>(pc + RO);
            }
        Acc sum[2][4];
#pragma unroll
        for (int h = 0; h < 2; h++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                sum[h][e] = 0;
#pragma unroll
        for (int c = 0; c < kMaxSplitsDev; c++)
#pragma unroll
            for (int h = 0; h < 2; h++)
                if (c < S && (h == 0 || glu)) {
                    A::add(sum[h][0], A::bits(u[h][c].x)), A::add(sum[h][1], A::bits(u[h][c].y));
                    A::add(sum[h][2], A::bits(u[h][c].z)), A::add(sum[h][3], A::bits(u[h][c].w));
                }
        if (tok >= p.m)
            continue;
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int col = chan(r + e);
            if (col >= (glu ? p.n / 2 : p.n))
                continue;
            float v[2] = {0.0f, 0.0f};
#pragma unroll
            for (int h = 0; h < 2; h++) {
                if (h == 1 && !glu)
                    break;
                const int br = r + e + h * RO; /* the up row of a GLU pair is RO on */
                v[h] = dequant_bf16(A::value(sum[h][e]), e_sa[tok], e_sb[br], e_bias[br]);
            }
            store_op(p.op, p.y + (size_t)tok * p.ldy + col, v[0], v[1]);
        }
    }
    cl.sync(); /* the other blocks are done reading this block's partials */
#endif
}

// --- host ---------------------------------------------------------------------------------------

typedef void (*kernel_fn)(const Params);

/* wgmma form: warpgroups per block x blocks per SM aimed at; register
 * (mma.sync) form: warps along rows x along K, blocks per SM aimed at. */
struct Config {
    int wgs, waves, wr, wk, ring;
    const char *name;
};
constexpr Config kConfigs[SS_STREAM_CONFIGS] = {
    {1, 1, 0, 0, 0, "wg1 w1"},   {1, 2, 0, 0, 0, "wg1 w2"},   {1, 4, 0, 0, 0, "wg1 w4"},
    {2, 1, 0, 0, 0, "wg2 w1"},   {2, 2, 0, 0, 0, "wg2 w2"},   {2, 4, 0, 0, 0, "wg2 w4"},
    {0, 2, 4, 2, 0, "sync 4x2"}, {0, 2, 4, 1, 0, "sync 4x1"}, {0, 2, 2, 4, 0, "sync 2x4"},
    {0, 1, 4, 2, 16, "ring 4x2"}, {0, 2, 4, 1, 16, "ring 4x1"}, {0, 2, 2, 2, 16, "ring 2x2"}};
constexpr int kMaxSplits = 8; /* portable cluster size */
constexpr int kSyncD = 4;     /* the register form's steps in flight per warp */
constexpr int kSyncTokenBytes = 160 * 1024; /* the register form's token columns per block, at most */
constexpr int kSyncSmemBytes = 227 * 1024;  /* a block's shared memory, at most (sm_90) */

bool is_sync(int config) { return config >= SS_STREAM_WGMMA_CONFIGS; }
int sync_mt(int m_pad) { return m_pad <= 16 ? 1 : m_pad <= 32 ? 2 : 4; }

template <bool FP8, int MT, int C> kernel_fn sync_of() {
    return sync_kernel<FP8, MT, kConfigs[C].wr, kConfigs[C].wk, kSyncD, kConfigs[C].ring>;
}
template <bool FP8, int MT> kernel_fn pick_sync_cfg(int config) {
    constexpr int W = SS_STREAM_WGMMA_CONFIGS;
    static_assert(SS_STREAM_CONFIGS - W == 6, "one case per register-form candidate");
    switch (config - W) {
    case 0: return sync_of<FP8, MT, W>();
    case 1: return sync_of<FP8, MT, W + 1>();
    case 2: return sync_of<FP8, MT, W + 2>();
    case 3: return sync_of<FP8, MT, W + 3>();
    case 4: return sync_of<FP8, MT, W + 4>();
    default: return sync_of<FP8, MT, W + 5>();
    }
}
template <bool FP8> kernel_fn pick_sync_mt(int mt, int config) {
    return mt == 1 ? pick_sync_cfg<FP8, 1>(config) : mt == 2 ? pick_sync_cfg<FP8, 2>(config) : pick_sync_cfg<FP8, 4>(config);
}
kernel_fn pick_sync(int fp8, int mt, int config) {
    return fp8 ? pick_sync_mt<true>(mt, config) : pick_sync_mt<false>(mt, config);
}
/* The register form's cluster size: about `waves` blocks per SM, at least
 * one step per warp, the token columns within kSyncTokenBytes and the whole
 * block within kSyncSmemBytes; 0 when even kMaxSplits ranges do not fit. */
int sync_splits(int row_blocks, int steps, const Config &c, int sms, int mt) {
    int s = (c.waves * sms + row_blocks - 1) / row_blocks;
    s = s < 1 ? 1 : s > kMaxSplits ? kMaxSplits : s;
    if (s > steps / c.wk)
        s = steps / c.wk > 0 ? steps / c.wk : 1;
    auto fits = [&](int s) {
        return sync_token_bytes(mt, steps, s) <= kSyncTokenBytes &&
               sync_smem_bytes(mt, c.wr, c.wk, c.ring, steps, s) <= kSyncSmemBytes;
    };
    while (s < kMaxSplits && !fits(s))
        s++;
    return fits(s) ? s : 0;
}

template <bool FP8, bool SP, int NT> kernel_fn pick_wgs(int wgs, int *smem) {
    if (wgs == 2) {
        *smem = smem_bytes<SP, NT, 2>();
        return stream_kernel<FP8, SP, NT, 2>;
    }
    *smem = smem_bytes<SP, NT, 1>();
    return stream_kernel<FP8, SP, NT, 1>;
}

template <bool FP8, bool SP> kernel_fn pick_nt(int nt, int wgs, int *smem) {
    switch (nt) {
    case 16: return pick_wgs<FP8, SP, 16>(wgs, smem);
    case 32: return pick_wgs<FP8, SP, 32>(wgs, smem);
    case 64: return pick_wgs<FP8, SP, 64>(wgs, smem);
    default: return pick_wgs<FP8, SP, 128>(wgs, smem);
    }
}

kernel_fn pick(int fp8, int sparse, int nt, int wgs, int *smem) {
    if (fp8)
        return sparse ? pick_nt<true, true>(nt, wgs, smem) : pick_nt<true, false>(nt, wgs, smem);
    return sparse ? pick_nt<false, true>(nt, wgs, smem) : pick_nt<false, false>(nt, wgs, smem);
}

int tokens_tile(int m_pad) { return m_pad <= 16 ? 16 : m_pad <= 32 ? 32 : m_pad <= 64 ? 64 : 128; }

/* S K ranges for the row blocks: about `waves` blocks per SM in all, at most
 * a portable cluster, at least one chunk each; whole chunks per range. */
void split_k(int row_blocks, int steps, int d, int waves, int sms, int *splits, int *per) {
    int chunks = (steps + d - 1) / d;
    int s = (waves * sms + row_blocks - 1) / row_blocks;
    s = s < 1 ? 1 : s > kMaxSplits ? kMaxSplits : s;
    s = s > chunks ? chunks : s;
    int per_chunks = (chunks + s - 1) / s;
    *per = per_chunks * d;
    *splits = (steps + *per - 1) / *per;
}

} // namespace

int ss_stream_glu_fits(int n) { return n > 0 && (n / 2) % SS_STREAM_TILE_ROWS == 0 && n % 2 == 0; }

const char *ss_stream_config_name(int config) {
    return config >= 0 && config < SS_STREAM_CONFIGS ? kConfigs[config].name : "?";
}

int ss_stream_config_count(int sparse, int m_pad, int64_t kq) {
    if (m_pad <= 0 || m_pad > SS_STREAM_MAX_M)
        return 0;
    const int steps = (int)ss_stream_steps(sparse, kq), mt = sync_mt(m_pad);
    if (sparse || m_pad > SS_STREAM_SYNC_MAX_M || sync_token_bytes(mt, steps, kMaxSplits) > kSyncTokenBytes)
        return SS_STREAM_WGMMA_CONFIGS;
    /* the ring candidates come last: all of them where the largest ring fits beside the tokens */
    for (int c = SS_STREAM_REG_CONFIGS; c < SS_STREAM_CONFIGS; c++) {
        const Config &cf = kConfigs[c];
        if (sync_smem_bytes(mt, cf.wr, cf.wk, cf.ring, steps, kMaxSplits) > kSyncSmemBytes)
            return SS_STREAM_REG_CONFIGS;
    }
    return SS_STREAM_CONFIGS;
}

cudaError_t ss_stream_prepare(void) {
    for (int fp8 = 0; fp8 < 2; fp8++)
        for (int mt = 1; mt <= 4; mt *= 2)
            for (int c = SS_STREAM_WGMMA_CONFIGS; c < SS_STREAM_CONFIGS; c++) {
                cudaError_t e = cudaFuncSetAttribute(pick_sync(fp8, mt, c),
                                                     cudaFuncAttributeMaxDynamicSharedMemorySize, kSyncSmemBytes);
                if (e != cudaSuccess)
                    return e;
            }
    for (int fp8 = 0; fp8 < 2; fp8++)
        for (int sp = 0; sp < 2; sp++)
            for (int nt = 16; nt <= 128; nt *= 2)
                for (int wgs = 1; wgs <= 2; wgs++) {
                    int smem = 0;
                    kernel_fn f = pick(fp8, sp, nt, wgs, &smem);
                    cudaError_t e =
                        cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
                    if (e != cudaSuccess)
                        return e;
                }
    return cudaSuccess;
}

/* The launch shape of a: warpgroups per block, blocks along N (grid x), K
 * ranges (grid y, the cluster) and steps per range. */
namespace {
struct Grid {
    int wgs, row_blocks, splits, steps_per_split;
};
Grid grid_of(const ss_stream_args *a) {
    const Config &cf = kConfigs[a->config];
    int glu = a->op == SS_STREAM_OP_GLU_RELU2 || a->op == SS_STREAM_OP_GLU_SILU;
    Grid g;
    if (is_sync(a->config)) { /* blocks of 32 wr rows (GLU: 16 wr gate + 16 wr up rows) */
        const int rows = 32 * cf.wr, steps = (int)ss_stream_steps(0, a->kq);
        g.wgs = 0;
        g.row_blocks = glu ? (a->n / 2) / (rows / 2) : ((int)ss_stream_tiles(a->n) * 64 + rows - 1) / rows;
        g.splits = sync_splits(g.row_blocks, steps, cf, a->sms, sync_mt(a->m_pad));
        g.steps_per_split = 0;
        return g;
    }
    g.wgs = glu ? 2 : cf.wgs; /* a gate tile and its up tile per block */
    g.row_blocks = ((int)ss_stream_tiles(a->n) + g.wgs - 1) / g.wgs;
    split_k(g.row_blocks, (int)ss_stream_steps(a->sparse, a->kq), chunk_steps(tokens_tile(a->m_pad)), cf.waves,
            a->sms, &g.splits, &g.steps_per_split);
    return g;
}
} // namespace

cudaError_t ss_stream_grid(const ss_stream_args *a, int *grid_x, int *grid_y) {
    if (a->config < 0 || a->config >= ss_stream_config_count(a->sparse, a->m_pad, a->kq))
        return cudaErrorInvalidValue;
    Grid g = grid_of(a);
    *grid_x = g.row_blocks;
    *grid_y = g.splits;
    return cudaSuccess;
}

cudaError_t ss_stream_gemm(const ss_stream_args *a, cudaStream_t stream) {
    if (a->config < 0 || a->config >= ss_stream_config_count(a->sparse, a->m_pad, a->kq) || a->m <= 0 ||
        a->m > a->m_pad || a->kq % 32 != 0)
        return cudaErrorInvalidValue;
    int nt = tokens_tile(a->m_pad);
    Params p;
    p.w = (const uint8_t *)a->w;
    p.q = (const uint8_t *)a->q;
    p.sa = a->sa;
    p.sb = a->sb;
    p.bias = a->bias;
    p.y = a->y;
    p.m = a->m;
    p.m_pad = a->m_pad;
    p.n = a->n;
    p.kq = a->kq;
    p.ldy = a->ldy;
    p.tiles = (int)ss_stream_tiles(a->n);
    p.steps = (int)ss_stream_steps(a->sparse, a->kq);
    p.op = a->op;
    p.trace = a->trace;
    int glu = a->op == SS_STREAM_OP_GLU_RELU2 || a->op == SS_STREAM_OP_GLU_SILU;
    if (glu && !ss_stream_glu_fits(a->n))
        return cudaErrorInvalidValue;
    Grid g = grid_of(a);
    p.steps_per_split = g.steps_per_split;
    int smem = 0;
    kernel_fn f;
    unsigned threads = (unsigned)(g.wgs * 128);
    if (is_sync(a->config)) {
        const Config &cf = kConfigs[a->config];
        if (g.splits == 0 || (glu && cf.wr % 2))
            return cudaErrorInvalidValue;
        f = pick_sync(a->fp8, sync_mt(a->m_pad), a->config);
        smem = sync_smem_bytes(sync_mt(a->m_pad), cf.wr, cf.wk, cf.ring, p.steps, g.splits);
        threads = (unsigned)(cf.wr * cf.wk * 32);
    } else {
        f = pick(a->fp8, a->sparse, nt, g.wgs, &smem);
    }

    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)g.row_blocks, (unsigned)g.splits, 1);
    cfg.blockDim = dim3(threads, 1, 1);
    cfg.dynamicSmemBytes = (size_t)smem;
    cfg.stream = stream;
    cudaLaunchAttribute attr[2];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = 1;
    attr[0].val.clusterDim.y = (unsigned)g.splits;
    attr[0].val.clusterDim.z = 1;
    attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[1].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = a->pdl ? 2 : 1;
    return cudaLaunchKernelEx(&cfg, f, p);
}
