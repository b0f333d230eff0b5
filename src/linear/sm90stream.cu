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
__device__ __forceinline__ void cp_async_wait1() { asm volatile("cp.async.wait_group 1;" ::: "memory"); }
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wg_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory"); }
/* cp.async writes shared memory through the generic proxy; wgmma reads it
 * through the async proxy */
__device__ __forceinline__ void fence_async_smem() {
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

/* mbarrier and the bulk copy engine (cp.async.bulk, no tensor map: a weight
 * chunk is one contiguous run of records) */
__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    asm volatile("{\n"
                 ".reg .pred p;\n"
                 "WAIT_%=:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
                 "@!p bra WAIT_%=;\n"
                 "}" ::"r"(bar), "r"(parity) : "memory");
}
__device__ __forceinline__ void bulk_load(uint32_t dst, const void *src, uint32_t bytes, uint32_t bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
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
        cp_async_wait1(); /* this chunk's rows have landed (this thread's copies) */
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
            /* SPEC's epilogue, each op rounded, then BF16 */
            int br = r + 64 * c; /* block row: the up row of a GLU pair is 64 on */
            f = __fmul_rn(f, e_sa[tok]);
            f = __fmul_rn(f, e_sb[br]);
            v[c] = bf16_round(__fadd_rn(f, e_bias[br]));
        }
        uint16_t *dst = p.y + (size_t)tok * p.ldy + col;
        if (glu) {
            /* the engine's glu_act with its rounding points (kernels/dequant.cu) */
            float g = v[0], u = v[1];
            float a = p.op == SS_STREAM_OP_GLU_RELU2 ? (g > 0.0f ? __fmul_rn(g, g) : 0.0f)
                                                     : g / __fadd_rn(1.0f, expf(-g));
            *dst = bf16_bits(__fmul_rn(a, u));
        } else if (p.op == SS_STREAM_OP_RESIDUAL) {
            *dst = bf16_bits(__fadd_rn(bf16_to_float(*dst), v[0]));
        } else {
            *dst = bf16_bits(v[0]);
        }
    }
    pc.mark(SS_STREAM_TRACE_EPILOGUE);
    pc.finish(nchunks);
#endif
}

// --- host ---------------------------------------------------------------------------------------

typedef void (*kernel_fn)(const Params);

struct Config {
    int wgs, waves;
    const char *name;
};
const Config kConfigs[SS_STREAM_CONFIGS] = {{1, 1, "wg1 w1"}, {1, 2, "wg1 w2"}, {1, 4, "wg1 w4"},
                                            {2, 1, "wg2 w1"}, {2, 2, "wg2 w2"}, {2, 4, "wg2 w4"}};
constexpr int kMaxSplits = 8; /* portable cluster size */

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

cudaError_t ss_stream_prepare(void) {
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
    g.wgs = glu ? 2 : cf.wgs; /* a gate tile and its up tile per block */
    g.row_blocks = ((int)ss_stream_tiles(a->n) + g.wgs - 1) / g.wgs;
    split_k(g.row_blocks, (int)ss_stream_steps(a->sparse, a->kq), chunk_steps(tokens_tile(a->m_pad)), cf.waves,
            a->sms, &g.splits, &g.steps_per_split);
    return g;
}
} // namespace

cudaError_t ss_stream_grid(const ss_stream_args *a, int *grid_x, int *grid_y) {
    if (a->config < 0 || a->config >= SS_STREAM_CONFIGS || a->m_pad > SS_STREAM_MAX_M || a->m_pad <= 0)
        return cudaErrorInvalidValue;
    Grid g = grid_of(a);
    *grid_x = g.row_blocks;
    *grid_y = g.splits;
    return cudaSuccess;
}

cudaError_t ss_stream_gemm(const ss_stream_args *a, cudaStream_t stream) {
    if (a->config < 0 || a->config >= SS_STREAM_CONFIGS || a->m_pad > SS_STREAM_MAX_M || a->m <= 0 ||
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
    kernel_fn f = pick(a->fp8, a->sparse, nt, g.wgs, &smem);

    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)g.row_blocks, (unsigned)g.splits, 1);
    cfg.blockDim = dim3((unsigned)(g.wgs * 128), 1, 1);
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
