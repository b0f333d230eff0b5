/* Causal GQA attention over the paged KV cache (flash style: FP32 online
 * softmax and accumulation, BF16 output rounded once), for prefill chunks and
 * decode steps alike. Three kernels share one work list of ss_attn_tile
 * (up to SS_ATTN_ITEMS (query row, query head) items of one kv head):
 *
 * - mma_kernel (head_dim 128, tiles of >= 2 rows): tensor-core prefill,
 *   flash-attention-2 style. A block holds HPC heads x 64 query rows (one warp
 *   per 16 rows of one head, Q fragments in registers); key/value tiles of 64
 *   positions (4 cache blocks, gathered through the block table) are staged
 *   in shared memory by cp.async, double buffered, and shared by the block's
 *   heads. S = Q K^T and O += P V are mma.sync m16n8k16 BF16 -> FP32; P stays
 *   in registers (the accumulator layout of S is the A layout of P V). The
 *   softmax runs in the log2 domain (exp2f, scale * log2 e folded into one
 *   FMA); the causal mask is applied only on tiles that reach past the first
 *   row's position.
 * - decode_kernel (head_dim 128, 1-row tiles): one block of 8 warps per
 *   (sequence, kv head); the context is split across the warps (32 keys per
 *   warp step, lane = key, 16-byte loads of the key row), each warp keeps its
 *   own (m, l, o) for up to 4 heads, and the warps' partials are merged in
 *   shared memory at the end. decode2_kernel (SS_ATTN_DECODE2, opt-in) is the
 *   same split with the chunk's value rows loaded before the first FMA.
 * - decode3_kernel (head_dim 128, 1-row tiles, cc >= 9.0; the default decode
 *   kernel, attention_cluster_decode.cuh): the keys of a (sequence, kv head)
 *   split over a cluster of up to 8 blocks, K/V tiles staged by cp.async,
 *   the GQA group's heads as the rows of tensor-core mma, partials merged
 *   through distributed shared memory.
 * - simt_kernel (every other head_dim, and SS_ATTN_SIMT): 4 warps, 16 items
 *   at a time; lane = key scores, warp = item.
 *
 * FP8 KV (ss_kv_layer.fp8, every kernel a template on it): the kernels read
 * each cache chunk through ss_kv_load8 / 4 / 2 (kv_fp8.cuh), which for FP8
 * loads half the bytes plus the row's scale and returns the same BF16 words
 * the CPU reference dequantizes to; everything after the load is the BF16
 * path. cp.async cannot convert, so the tensor-core kernels (mma_kernel,
 * decode3_kernel) copy the raw E4M3 tiles and their rows' scales by cp.async
 * into their stage ring (half the bytes of a BF16 stage) and dequantize a
 * stage from shared memory into one BF16 tile pair once it has landed: the
 * copies of the next tiles stay in flight during the math, as with BF16.
 *
 * With SS_ATTN_PDL each kernel is a programmatic dependent launch: a block
 * reads its tile (batch metadata) while rope_kv drains, then waits for it
 * (linear/kernels/pdl.cuh) before any query, cache or output access; blocks
 * that skip their tile wait too.
 */
#include <cooperative_groups.h> /* clusters (attention_cluster_decode.cuh) */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "bf16.cuh"
#include "kernels.h"
#include "kv_fp8.cuh"
#include "linear/kernels/pdl.cuh" /* SS_ATTN_PDL: every kernel reads its tile, then waits */

namespace {

constexpr float LOG2E = 1.4426950408889634f;

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

constexpr int MAX_DEVICES = 64;

/* cudaFuncSetAttribute(MaxDynamicSharedMemorySize) once per device and
 * kernel instead of per launch (a driver call each time). done: the caller's
 * static flags for this kernel. Benign race: the call is idempotent. */
cudaError_t opt_in_smem(int (&done)[MAX_DEVICES], const void *kernel, int bytes) {
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess)
        return e;
    const bool cached = dev >= 0 && dev < MAX_DEVICES;
    if (cached && __atomic_load_n(&done[dev], __ATOMIC_ACQUIRE))
        return cudaSuccess;
    e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (e == cudaSuccess && cached)
        __atomic_store_n(&done[dev], 1, __ATOMIC_RELEASE);
    return e;
}

/* Cache slot (block * SS_KV_BLOCK + offset) of position p. */
__device__ __forceinline__ int64_t kv_slot(const int32_t *table, int p) {
    return (int64_t)table[p / SS_KV_BLOCK] * SS_KV_BLOCK + p % SS_KV_BLOCK;
}

// --- SIMT kernel (any head_dim) -----------------------------------------------------------------

constexpr int SBK = 32;   /* keys per tile */
constexpr int SWARPS = 4;
constexpr int SITEMS = 16; /* items per pass of a block */
constexpr int SIPW = SITEMS / SWARPS;

/* Shared memory: q (SITEMS, hd) float, then k and v (SBK, hd + 2) BF16 (rows
 * padded to an odd number of words: lane = key reads are conflict free). */
size_t simt_smem(int hd) {
    return (size_t)SITEMS * hd * sizeof(float) + 2 * (size_t)SBK * (hd + 2) * sizeof(uint16_t);
}

/* DPL: output columns per lane, hd <= 32 * DPL; hd even. The tile's items go
 * 16 at a time (item it = row it / nheads, head it % nheads). */
template <int DPL, bool FP8>
__global__ void __launch_bounds__(SWARPS * 32, 4)
simt_kernel(const uint16_t *__restrict__ qkv, const ss_tok_info *__restrict__ tok,
            const ss_attn_tile *__restrict__ tiles, const int32_t *__restrict__ tables,
            int max_blocks, ss_kv_layer kv, int nh, int nkv, int hd, float scale, uint16_t *__restrict__ out) {
    extern __shared__ float smem[];
    float *qs = smem;                                  // (SITEMS, hd)
    uint16_t *ks = (uint16_t *)(qs + SITEMS * hd);     // (SBK, hd + 2)
    uint16_t *vs = ks + SBK * (hd + 2);                // (SBK, hd + 2)
    const int kstr = hd + 2;
    const ss_attn_tile tile = tiles[blockIdx.x]; /* batch metadata: before the PDL wait */
    ss_pdl_wait(); /* qkv and the cache rows: written by rope_kv */
    ss_pdl_trigger();
    const int group = nh / nkv, kvh = tile.head0 / group;
    const int n_all = tile.nq * tile.nheads;
    const int64_t row_len = (int64_t)(nh + 2 * nkv) * hd;
    const int32_t *table = tables + (int64_t)tile.seq * max_blocks;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const bool vec = (hd & 7) == 0;

    for (int i0 = 0; i0 < n_all; i0 += SITEMS) {
        const int n_items = min(SITEMS, n_all - i0);
        __syncthreads(); /* the previous pass is done with qs */
        /* Queries of this pass (zero for unused items: their scores stay finite). */
        for (int e = threadIdx.x; e < SITEMS * hd; e += blockDim.x) {
            const int it = e / hd, d = e - it * hd;
            float q = 0.0f;
            if (it < n_items) {
                const int64_t r = tile.row0 + (i0 + it) / tile.nheads;
                const int h = tile.head0 + (i0 + it) % tile.nheads;
                q = ss_bf(qkv[r * row_len + (int64_t)h * hd + d]);
            }
            qs[e] = q;
        }
        int qpos[SIPW];
        float m[SIPW], l[SIPW], o[SIPW][DPL];
#pragma unroll
        for (int j = 0; j < SIPW; j++) {
            const int it = warp + SWARPS * j;
            qpos[j] = it < n_items ? tok[tile.row0 + (i0 + it) / tile.nheads].pos : -1;
            m[j] = -INFINITY;
            l[j] = 0.0f;
#pragma unroll
            for (int c = 0; c < DPL; c++)
                o[j][c] = 0.0f;
        }
        /* Rows have increasing positions: the pass's last one sees the most keys. */
        const int n_keys = tok[tile.row0 + (i0 + n_items - 1) / tile.nheads].pos + 1;

        for (int k0 = 0; k0 < n_keys; k0 += SBK) {
            const int nk = min(SBK, n_keys - k0);
            __syncthreads(); /* the previous tile is consumed (and qs is written) */
            if (vec) {
                const int vpr = hd / 8;
                for (int e = threadIdx.x; e < SBK * vpr; e += blockDim.x) {
                    const int kk = e / vpr, c = (e - kk * vpr) * 8;
                    uint4 kv4 = make_uint4(0, 0, 0, 0), vv4 = make_uint4(0, 0, 0, 0);
                    if (kk < nk) {
                        const int64_t srow = kv_slot(table, k0 + kk) * nkv + kvh, off = srow * hd + c;
                        kv4 = ss_kv_load8<FP8>(kv.k, kv.ks, off, srow);
                        vv4 = ss_kv_load8<FP8>(kv.v, kv.vs, off, srow);
                    }
                    uint32_t *kd = (uint32_t *)(ks + kk * kstr + c), *vd = (uint32_t *)(vs + kk * kstr + c);
                    kd[0] = kv4.x; kd[1] = kv4.y; kd[2] = kv4.z; kd[3] = kv4.w;
                    vd[0] = vv4.x; vd[1] = vv4.y; vd[2] = vv4.z; vd[3] = vv4.w;
                }
            } else {
                const int wpr = hd / 2; /* 4-byte words per row */
                for (int e = threadIdx.x; e < SBK * wpr; e += blockDim.x) {
                    const int kk = e / wpr, c = (e - kk * wpr) * 2;
                    uint32_t kw = 0, vw = 0;
                    if (kk < nk) {
                        const int64_t srow = kv_slot(table, k0 + kk) * nkv + kvh, off = srow * hd + c;
                        kw = ss_kv_load2<FP8>(kv.k, kv.ks, off, srow);
                        vw = ss_kv_load2<FP8>(kv.v, kv.vs, off, srow);
                    }
                    *(uint32_t *)(ks + kk * kstr + c) = kw;
                    *(uint32_t *)(vs + kk * kstr + c) = vw;
                }
            }
            __syncthreads();

            /* Lane j scores key k0 + j for every item of this warp. */
            float sc[SIPW];
#pragma unroll
            for (int j = 0; j < SIPW; j++)
                sc[j] = 0.0f;
            {
                const uint32_t *kr = (const uint32_t *)(ks + lane * kstr); // (hd / 2) pairs
                for (int d2 = 0; d2 < hd / 2; d2++) {
                    const uint32_t kw = kr[d2];
                    const float ka = __uint_as_float(kw << 16), kb = __uint_as_float(kw & 0xffff0000u);
#pragma unroll
                    for (int j = 0; j < SIPW; j++) {
                        const float *q = qs + (warp + SWARPS * j) * hd + 2 * d2;
                        sc[j] += q[0] * ka + q[1] * kb;
                    }
                }
            }
#pragma unroll
            for (int j = 0; j < SIPW; j++) {
                const bool ok = lane < nk && k0 + lane <= qpos[j];
                const float s = ok ? sc[j] * scale : -INFINITY;
                const float mt = warp_max(s);
                if (mt == -INFINITY)
                    continue; /* no visible key in this tile (same in every lane) */
                const float mn = fmaxf(m[j], mt);
                const float alpha = expf(m[j] - mn); /* m = -inf on the first visible tile: 0 */
                const float p = ok ? expf(s - mn) : 0.0f;
                l[j] = l[j] * alpha + warp_sum(p);
                m[j] = mn;
#pragma unroll
                for (int c = 0; c < DPL; c++)
                    o[j][c] *= alpha;
                for (int kk = 0; kk < nk; kk++) {
                    const float pk = __shfl_sync(0xffffffffu, p, kk);
                    const uint16_t *vr = vs + kk * kstr;
#pragma unroll
                    for (int c = 0; c < DPL; c++) {
                        const int d = lane + 32 * c;
                        if (d < hd)
                            o[j][c] += pk * ss_bf(vr[d]);
                    }
                }
            }
        }

#pragma unroll
        for (int j = 0; j < SIPW; j++) {
            const int it = warp + SWARPS * j;
            if (it >= n_items)
                continue;
            const int64_t r = tile.row0 + (i0 + it) / tile.nheads;
            const int h = tile.head0 + (i0 + it) % tile.nheads;
            uint16_t *dst = out + r * (int64_t)nh * hd + (int64_t)h * hd; // (hd)
            const float inv_l = 1.0f / l[j];
#pragma unroll
            for (int c = 0; c < DPL; c++) {
                const int d = lane + 32 * c;
                if (d < hd)
                    dst[d] = ss_to_bf(o[j][c] * inv_l);
            }
        }
    }
}

template <int DPL, bool FP8>
cudaError_t launch_simt(const uint16_t *qkv, const ss_tok_info *tok, const ss_attn_tile *tiles,
                        int64_t n_tiles, const int32_t *tables, int max_blocks, const ss_kv_layer &kv, int nh,
                        int nkv, int hd, uint16_t *out, bool pdl, cudaStream_t stream) {
    const size_t smem = simt_smem(hd);
    if (smem > 48 * 1024) {
        static int opted[MAX_DEVICES]; /* per instantiation; the largest smem of this DPL */
        cudaError_t e = opt_in_smem(opted, (const void *)simt_kernel<DPL, FP8>, (int)simt_smem(32 * DPL));
        if (e != cudaSuccess)
            return e;
    }
    const float scale = 1.0f / sqrtf((float)hd);
    return ss_launch(pdl, simt_kernel<DPL, FP8>, dim3((unsigned)n_tiles), dim3(SWARPS * 32), smem, stream, qkv,
                     tok, tiles, tables, max_blocks, kv, nh, nkv, hd, scale, out);
}

template <bool FP8>
cudaError_t simt(const uint16_t *qkv, const ss_tok_info *tok, const ss_attn_tile *tiles, int64_t n_tiles,
                 const int32_t *tables, int max_blocks, const ss_kv_layer &kv, int nh, int nkv, int hd,
                 uint16_t *out, bool pdl, cudaStream_t stream) {
    if (hd <= 32)
        return launch_simt<1, FP8>(qkv, tok, tiles, n_tiles, tables, max_blocks, kv, nh, nkv, hd, out, pdl, stream);
    if (hd <= 64)
        return launch_simt<2, FP8>(qkv, tok, tiles, n_tiles, tables, max_blocks, kv, nh, nkv, hd, out, pdl, stream);
    if (hd <= 128)
        return launch_simt<4, FP8>(qkv, tok, tiles, n_tiles, tables, max_blocks, kv, nh, nkv, hd, out, pdl, stream);
    return launch_simt<8, FP8>(qkv, tok, tiles, n_tiles, tables, max_blocks, kv, nh, nkv, hd, out, pdl, stream);
}

#include "attention_mma.cuh"
#include "attention_cluster_decode.cuh"

/* Decode kernel version (1, 2, 3) of SS_ATTN_AUTO: SS_ATTN_DECODE=1|2|3 in
 * the environment (read once per process, like the engine's other switches),
 * else DEFAULT_DECODE. Benign race: every reader computes the same value. */
constexpr int DEFAULT_DECODE = 3;

int auto_decode_version() {
    static int version; /* 0: not read yet */
    int v = __atomic_load_n(&version, __ATOMIC_ACQUIRE);
    if (v == 0) {
        const char *s = getenv("SS_ATTN_DECODE");
        v = s && s[0] >= '1' && s[0] <= '3' && s[1] == 0 ? s[0] - '0' : DEFAULT_DECODE;
        __atomic_store_n(&version, v, __ATOMIC_RELEASE);
    }
    return v;
}

/* The launcher behind the three entry points (variants: kernels.h). */
template <bool FP8>
cudaError_t dispatch(const uint16_t *qkv, const ss_tok_info *tok, const ss_attn_tile *tiles, int64_t n_tiles,
                     const int32_t *tables, int max_blocks, const ss_kv_layer &kv, int nh, int nkv, int hd,
                     uint16_t *out, int variant, cudaStream_t stream) {
    const bool pure_decode = (variant & SS_ATTN_PURE_DECODE) != 0;
    const bool pdl = (variant & SS_ATTN_PDL) != 0;
    const int splits = (variant >> 12) & 15; /* SS_ATTN_DECODE3_SPLITS, 0: chosen here */
    variant &= 0xff;
    if (splits & (splits - 1) || splits > D3_MAX_SPLIT)
        return cudaErrorInvalidValue;
    if (n_tiles <= 0)
        return cudaSuccess;
    if (hd <= 0 || (hd & 1) || hd > SS_ATTN_MAX_HD || n_tiles > 0x7fffffff || nkv <= 0 || nh % nkv)
        return cudaErrorInvalidValue;
    if (hd != MMA_HD || variant == SS_ATTN_SIMT)
        return simt<FP8>(qkv, tok, tiles, n_tiles, tables, max_blocks, kv, nh, nkv, hd, out, pdl, stream);
    /* Tiles of >= 2 rows to the tensor cores, 1-row tiles to the decode
     * kernel; each kernel's blocks skip the other kind. On a batch the caller
     * knows to be pure decode, the tensor-core grid (all empty blocks) is not
     * launched at all. */
    const int group = nh / nkv, max_heads = group < SS_ATTN_ITEMS ? group : SS_ATTN_ITEMS;
    cudaError_t e = cudaSuccess;
    if (!pure_decode)
        e = variant == SS_ATTN_MMA_H1
                ? launch_mma<1, FP8>(qkv, tok, tiles, n_tiles, tables, max_blocks, kv, nh, nkv, max_heads, out, pdl,
                                     stream)
                : launch_mma<2, FP8>(qkv, tok, tiles, n_tiles, tables, max_blocks, kv, nh, nkv, max_heads, out, pdl,
                                     stream);
    if (e != cudaSuccess)
        return e;
    const int version = variant == SS_ATTN_DECODE2   ? 2
                        : variant == SS_ATTN_DECODE3 ? 3
                        : variant == SS_ATTN_AUTO    ? auto_decode_version()
                                                     : 1; /* SS_ATTN_DECODE1, SS_ATTN_MMA_H1 */
    if (version == 2)
        return launch_decode2<FP8>(qkv, tok, tiles, n_tiles, tables, max_blocks, kv, nh, nkv, out, pdl, stream);
    if (version == 3) {
        bool ran = false;
        e = launch_decode3<FP8>(qkv, tok, tiles, n_tiles, tables, max_blocks, kv, nh, nkv, out, splits, pdl,
                                pure_decode, stream, &ran);
        if (e != cudaSuccess || ran)
            return e;
        /* no thread-block clusters before cc 9.0: v1 */
    }
    return launch_decode<FP8>(qkv, tok, tiles, n_tiles, tables, max_blocks, kv, nh, nkv, out, pdl, stream);
}

} // namespace

extern "C" cudaError_t ss_attention_cuda_kv(const uint16_t *qkv, const ss_tok_info *tok, const ss_attn_tile *tiles,
                                            int64_t n_tiles, const int32_t *tables, int max_blocks,
                                            const ss_kv_layer *kv, int nh, int nkv, int hd, uint16_t *out,
                                            int variant, cudaStream_t stream) {
    if (kv->fp8)
        return dispatch<true>(qkv, tok, tiles, n_tiles, tables, max_blocks, *kv, nh, nkv, hd, out, variant, stream);
    return dispatch<false>(qkv, tok, tiles, n_tiles, tables, max_blocks, *kv, nh, nkv, hd, out, variant, stream);
}

extern "C" cudaError_t ss_attention_cuda_variant(const uint16_t *qkv, const ss_tok_info *tok,
                                                 const ss_attn_tile *tiles, int64_t n_tiles,
                                                 const int32_t *tables, int max_blocks,
                                                 const uint16_t *k_layer, const uint16_t *v_layer,
                                                 int nh, int nkv, int hd, uint16_t *out, int variant,
                                                 cudaStream_t stream) {
    const ss_kv_layer kv = {.k = (void *)k_layer, .v = (void *)v_layer, .ks = NULL, .vs = NULL, .fp8 = 0};
    return dispatch<false>(qkv, tok, tiles, n_tiles, tables, max_blocks, kv, nh, nkv, hd, out, variant, stream);
}

extern "C" cudaError_t ss_attention_cuda(const uint16_t *qkv, const ss_tok_info *tok,
                                         const ss_attn_tile *tiles, int64_t n_tiles,
                                         const int32_t *tables, int max_blocks,
                                         const uint16_t *k_layer, const uint16_t *v_layer, int nh,
                                         int nkv, int hd, uint16_t *out, cudaStream_t stream) {
    return ss_attention_cuda_variant(qkv, tok, tiles, n_tiles, tables, max_blocks, k_layer, v_layer, nh,
                                     nkv, hd, out, SS_ATTN_AUTO, stream);
}
