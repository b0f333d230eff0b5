/* Causal GQA attention over the paged KV cache, flash-attention style (SIMT,
 * FP32 softmax and accumulation), for prefill chunks and decode steps alike.
 *
 * One block (4 warps) per ss_attn_tile: up to SS_ATTN_ITEMS (query row, query
 * head) items that share one kv head, so each key/value tile read from the
 * cache serves every head of the GQA group (decode: one block per (sequence,
 * kv head); prefill: several query rows per block). Warp w owns items w,
 * w + 4, w + 8, w + 12 and keeps, per item, the running max m, the running
 * sum l and its slice of the output (lane + 32 c for c < DPL).
 *
 * Per key tile (BK = 32 positions = two cache blocks, resolved through the
 * sequence's block table): K and V go to shared memory (rows padded to an odd
 * number of words, so lane = key reads are bank-conflict free), lane j scores
 * key j against each item's query, masks positions > the item's position,
 * and the online softmax rescales o and l. The output is o / l rounded once.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "engine/cuda/bf16.cuh"
#include "engine/cuda/kernels.h"

namespace {

constexpr int BK = 32;        /* keys per tile */
constexpr int WARPS = 4;
constexpr int ITEMS = SS_ATTN_ITEMS / WARPS; /* items per warp */

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

/* Shared memory: q (ITEMS_ALL, hd) float, then k and v (BK, hd + 2) BF16. */
size_t smem_bytes(int hd) {
    return (size_t)SS_ATTN_ITEMS * hd * sizeof(float) + 2 * (size_t)BK * (hd + 2) * sizeof(uint16_t);
}

/* DPL: output columns per lane, hd <= 32 * DPL; hd even. */
template <int DPL>
__global__ void __launch_bounds__(WARPS * 32, 4)
attention_kernel(const uint16_t *__restrict__ qkv, const ss_tok_info *__restrict__ tok,
                 const ss_attn_tile *__restrict__ tiles, const int32_t *__restrict__ tables,
                 int max_blocks, const uint16_t *__restrict__ kc, const uint16_t *__restrict__ vc,
                 int nh, int nkv, int hd, float scale, uint16_t *__restrict__ out) {
    extern __shared__ float smem[];
    float *qs = smem;                                        // (SS_ATTN_ITEMS, hd)
    uint16_t *ks = (uint16_t *)(qs + SS_ATTN_ITEMS * hd);    // (BK, hd + 2)
    uint16_t *vs = ks + BK * (hd + 2);                       // (BK, hd + 2)
    const int kstr = hd + 2;
    const ss_attn_tile tile = tiles[blockIdx.x];
    const int group = nh / nkv, kvh = tile.head0 / group;
    const int n_items = tile.nq * tile.nheads;
    const int64_t row_len = (int64_t)(nh + 2 * nkv) * hd;
    const int64_t kv_row = (int64_t)nkv * hd;
    const int32_t *table = tables + (int64_t)tile.seq * max_blocks;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

    /* Queries of all items (zero for unused items: their scores stay finite). */
    for (int e = threadIdx.x; e < SS_ATTN_ITEMS * hd; e += blockDim.x) {
        const int it = e / hd, d = e - it * hd;
        float q = 0.0f;
        if (it < n_items) {
            const int64_t r = tile.row0 + it / tile.nheads;
            const int h = tile.head0 + it % tile.nheads;
            q = ss_bf(qkv[r * row_len + (int64_t)h * hd + d]);
        }
        qs[e] = q;
    }
    int qpos[ITEMS];
    float m[ITEMS], l[ITEMS], o[ITEMS][DPL];
#pragma unroll
    for (int j = 0; j < ITEMS; j++) {
        const int it = warp + WARPS * j;
        qpos[j] = it < n_items ? tok[tile.row0 + it / tile.nheads].pos : -1;
        m[j] = -INFINITY;
        l[j] = 0.0f;
#pragma unroll
        for (int c = 0; c < DPL; c++)
            o[j][c] = 0.0f;
    }
    /* Rows have increasing positions: the last one sees the most keys. */
    const int n_keys = tok[tile.row0 + tile.nq - 1].pos + 1;
    const bool vec = (hd & 7) == 0;

    for (int k0 = 0; k0 < n_keys; k0 += BK) {
        const int nk = min(BK, n_keys - k0);
        __syncthreads(); /* the previous tile is consumed (and qs is written) */
        if (vec) {
            const int vpr = hd / 8;
            for (int e = threadIdx.x; e < BK * vpr; e += blockDim.x) {
                const int kk = e / vpr, c = (e - kk * vpr) * 8;
                uint4 kv4 = make_uint4(0, 0, 0, 0), vv4 = make_uint4(0, 0, 0, 0);
                if (kk < nk) {
                    const int p = k0 + kk;
                    const int64_t off = ((int64_t)table[p / SS_KV_BLOCK] * SS_KV_BLOCK + p % SS_KV_BLOCK) * kv_row +
                                        (int64_t)kvh * hd + c;
                    kv4 = *(const uint4 *)(kc + off);
                    vv4 = *(const uint4 *)(vc + off);
                }
                uint32_t *kd = (uint32_t *)(ks + kk * kstr + c), *vd = (uint32_t *)(vs + kk * kstr + c);
                kd[0] = kv4.x; kd[1] = kv4.y; kd[2] = kv4.z; kd[3] = kv4.w;
                vd[0] = vv4.x; vd[1] = vv4.y; vd[2] = vv4.z; vd[3] = vv4.w;
            }
        } else {
            const int wpr = hd / 2; /* 4-byte words per row */
            for (int e = threadIdx.x; e < BK * wpr; e += blockDim.x) {
                const int kk = e / wpr, c = (e - kk * wpr) * 2;
                uint32_t kw = 0, vw = 0;
                if (kk < nk) {
                    const int p = k0 + kk;
                    const int64_t off = ((int64_t)table[p / SS_KV_BLOCK] * SS_KV_BLOCK + p % SS_KV_BLOCK) * kv_row +
                                        (int64_t)kvh * hd + c;
                    kw = *(const uint32_t *)(kc + off);
                    vw = *(const uint32_t *)(vc + off);
                }
                *(uint32_t *)(ks + kk * kstr + c) = kw;
                *(uint32_t *)(vs + kk * kstr + c) = vw;
            }
        }
        __syncthreads();

        /* Lane j scores key k0 + j for every item of this warp. */
        float sc[ITEMS];
#pragma unroll
        for (int j = 0; j < ITEMS; j++)
            sc[j] = 0.0f;
        {
            const uint32_t *kr = (const uint32_t *)(ks + lane * kstr); // (hd / 2) pairs
            for (int d2 = 0; d2 < hd / 2; d2++) {
                const uint32_t kw = kr[d2];
                const float ka = __uint_as_float(kw << 16), kb = __uint_as_float(kw & 0xffff0000u);
#pragma unroll
                for (int j = 0; j < ITEMS; j++) {
                    const float *q = qs + (warp + WARPS * j) * hd + 2 * d2;
                    sc[j] += q[0] * ka + q[1] * kb;
                }
            }
        }
#pragma unroll
        for (int j = 0; j < ITEMS; j++) {
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
    for (int j = 0; j < ITEMS; j++) {
        const int it = warp + WARPS * j;
        if (it >= n_items)
            continue;
        const int64_t r = tile.row0 + it / tile.nheads;
        const int h = tile.head0 + it % tile.nheads;
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

template <int DPL>
cudaError_t launch(const uint16_t *qkv, const ss_tok_info *tok, const ss_attn_tile *tiles,
                   int64_t n_tiles, const int32_t *tables, int max_blocks, const uint16_t *kc,
                   const uint16_t *vc, int nh, int nkv, int hd, uint16_t *out, cudaStream_t stream) {
    const size_t smem = smem_bytes(hd);
    if (smem > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(attention_kernel<DPL>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess)
            return e;
    }
    const float scale = 1.0f / sqrtf((float)hd);
    attention_kernel<DPL><<<(unsigned)n_tiles, WARPS * 32, smem, stream>>>(
        qkv, tok, tiles, tables, max_blocks, kc, vc, nh, nkv, hd, scale, out);
    return cudaGetLastError();
}

} // namespace

extern "C" cudaError_t ss_attention_cuda(const uint16_t *qkv, const ss_tok_info *tok,
                                         const ss_attn_tile *tiles, int64_t n_tiles,
                                         const int32_t *tables, int max_blocks,
                                         const uint16_t *k_layer, const uint16_t *v_layer, int nh,
                                         int nkv, int hd, uint16_t *out, cudaStream_t stream) {
    if (n_tiles <= 0)
        return cudaSuccess;
    if (hd <= 0 || (hd & 1) || hd > SS_ATTN_MAX_HD || n_tiles > 0x7fffffff)
        return cudaErrorInvalidValue;
    if (hd <= 32)
        return launch<1>(qkv, tok, tiles, n_tiles, tables, max_blocks, k_layer, v_layer, nh, nkv, hd, out, stream);
    if (hd <= 64)
        return launch<2>(qkv, tok, tiles, n_tiles, tables, max_blocks, k_layer, v_layer, nh, nkv, hd, out, stream);
    if (hd <= 128)
        return launch<4>(qkv, tok, tiles, n_tiles, tables, max_blocks, k_layer, v_layer, nh, nkv, hd, out, stream);
    return launch<8>(qkv, tok, tiles, n_tiles, tables, max_blocks, k_layer, v_layer, nh, nkv, hd, out, stream);
}
