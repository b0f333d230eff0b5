/* dev/attention.cu — the engine's paged GQA attention kernels
 * (src/engine/cuda/attention.cu) in isolation: a CPU reference (double
 * softmax), validation of every variant on small and BitNet-2B-shaped batches
 * (prefill chunks, decode, mixed), then timings of every variant.
 *
 * Variants (STYLE.md ladder):
 *   1  the SIMT kernel before the tensor-core rewrite, 16-item tiles (copied
 *      here verbatim: the baseline row)
 *   2  SS_ATTN_SIMT: the engine's SIMT kernel for every tile (256-item tiles; the
 *      path of every head_dim other than 128)
 *   3  SS_ATTN_MMA_H1: tensor-core prefill, one head per block + split-key decode
 *   4  SS_ATTN_DECODE1 (the engine before decode v3; SS_ATTN_DECODE=1):
 *      tensor-core prefill, 2 heads per block sharing K/V tiles + split-key
 *      decode v1 (8 warps per (sequence, kv head))
 *   5  SS_ATTN_DECODE2 (the engine with SS_ATTN_DECODE=2): as 4, with the v2
 *      decode kernel (a chunk's value rows loaded before the first FMA,
 *      16-byte loads, two keys per warp load)
 *   6  SS_ATTN_DECODE3 (the engine's default; SS_ATTN_DECODE=3): as 4, with
 *      the v3 decode kernel (keys split over a cluster of blocks, cp.async
 *      K/V tiles, the GQA heads as tensor-core rows, DSMEM merge)
 *   7  as 6 with SS_ATTN_PURE_DECODE (no tensor-core prefill launch; pure
 *      decode batches only)
 *   8  as 6 on an FP8 KV pool (--kv-dtype fp8: e4m3 + a scale per row,
 *      ss_attention_cuda_kv; pure decode batches with the pure-decode flag,
 *      as the engine runs them), validated against the reference over the
 *      dequantized rows; its GB/s count the FP8 bytes read
 *   9  as 4 (decode v1) on the FP8 pool
 *
 *   dev_attention [quick | validate]
 *
 * Validation: every output row (or a strided sample for the big cases) vs the
 * reference; normalized max error (max|gpu - ref| / max|ref|) must stay below
 * 1e-2 (the output is BF16: 2^-9 relative per element, plus float
 * accumulation). The first mismatches are printed.
 * Timing (median of batches, cudaEvents): prefill of S sequences x P tokens
 * (BitNet-2B: 20 heads, 5 kv heads, hd 128) in TFLOPS (4 * hd flops per
 * (query, key, head) pair) and tokens/s of the attention alone; decode of B
 * sequences at context C in GB/s of KV read (the bound for decode). Decode
 * timings rotate over copies of the K/V pools that together exceed 4x L2, so
 * small cases are not served from L2.
 *
 * Conclusion (H100, 2026-11-25; docs/results/h100.md §6.3): the tensor-core
 * prefill (variant 4, two heads per block) reaches 183 TFLOPS at 16 x 1024,
 * 20x the first SIMT kernel (variant 3, one head per block, is within 2%);
 * decode v3 (variant 6, the engine's default) reads the KV cache at 2.1-2.5
 * TB/s on every case of >= 84 MB (1.78 TB/s at 64 x 272) where v1 reached
 * 1.1-1.2 and v2 ~1 TB/s; a cluster split pays only while the tiles leave SMs
 * idle (the launcher picks the fewest blocks that give one per SM).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <vector>

#include "dev_common.h"
#include "engine/cuda/bf16.cuh"
#include "engine/cuda/kernels.h"

// --- variant 1: the SIMT kernel before the tensor-core rewrite (verbatim, 16-item tiles) ----

namespace v1 {


constexpr int OLD_ITEMS = 16; /* items per block (the old SS_ATTN_ITEMS) */
constexpr int BK = 32;        /* keys per tile */
constexpr int WARPS = 4;
constexpr int ITEMS = OLD_ITEMS / WARPS; /* items per warp */

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
size_t v1_smem(int hd) {
    return (size_t)OLD_ITEMS * hd * sizeof(float) + 2 * (size_t)BK * (hd + 2) * sizeof(uint16_t);
}

/* DPL: output columns per lane, hd <= 32 * DPL; hd even. */
template <int DPL>
__global__ void __launch_bounds__(WARPS * 32, 4)
v1_kernel(const uint16_t *__restrict__ qkv, const ss_tok_info *__restrict__ tok,
                 const ss_attn_tile *__restrict__ tiles, const int32_t *__restrict__ tables,
                 int max_blocks, const uint16_t *__restrict__ kc, const uint16_t *__restrict__ vc,
                 int nh, int nkv, int hd, float scale, uint16_t *__restrict__ out) {
    extern __shared__ float smem[];
    float *qs = smem;                                        // (OLD_ITEMS, hd)
    uint16_t *ks = (uint16_t *)(qs + OLD_ITEMS * hd);    // (BK, hd + 2)
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
    for (int e = threadIdx.x; e < OLD_ITEMS * hd; e += blockDim.x) {
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
cudaError_t v1_launch(const uint16_t *qkv, const ss_tok_info *tok, const ss_attn_tile *tiles,
                   int64_t n_tiles, const int32_t *tables, int max_blocks, const uint16_t *kc,
                   const uint16_t *vc, int nh, int nkv, int hd, uint16_t *out, cudaStream_t stream) {
    const size_t smem = v1_smem(hd);
    if (smem > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(v1_kernel<DPL>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess)
            return e;
    }
    const float scale = 1.0f / sqrtf((float)hd);
    v1_kernel<DPL><<<(unsigned)n_tiles, WARPS * 32, smem, stream>>>(
        qkv, tok, tiles, tables, max_blocks, kc, vc, nh, nkv, hd, scale, out);
    return cudaGetLastError();
}


cudaError_t run(const uint16_t *qkv, const ss_tok_info *tok, const ss_attn_tile *tiles, int64_t n_tiles,
               const int32_t *tables, int max_blocks, const uint16_t *k, const uint16_t *v, int nh, int nkv,
               int hd, uint16_t *out) {
    if (hd <= 32)
        return v1_launch<1>(qkv, tok, tiles, n_tiles, tables, max_blocks, k, v, nh, nkv, hd, out, 0);
    if (hd <= 64)
        return v1_launch<2>(qkv, tok, tiles, n_tiles, tables, max_blocks, k, v, nh, nkv, hd, out, 0);
    if (hd <= 128)
        return v1_launch<4>(qkv, tok, tiles, n_tiles, tables, max_blocks, k, v, nh, nkv, hd, out, 0);
    return v1_launch<8>(qkv, tok, tiles, n_tiles, tables, max_blocks, k, v, nh, nkv, hd, out, 0);
}
} // namespace v1

// --- host helpers ---------------------------------------------------------------------------

static float bf2f(uint16_t u) {
    uint32_t v = (uint32_t)u << 16;
    float f;
    memcpy(&f, &v, 4);
    return f;
}

static uint16_t f2bf(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

struct Seq {
    int start, n; /* new tokens at positions start..start+n-1; start keys cached before */
};

/* One batch on the device, laid out as the engine lays it out. */
struct Batch {
    int nh, nkv, hd, max_blocks, n_blocks;
    int64_t t, n_tiles;
    std::vector<Seq> seqs;
    std::vector<uint16_t> qkv, k, v; // (t, (nh+2nkv) hd); pool (n_blocks, 16, nkv, hd)
    std::vector<uint8_t> k8, v8;     // the pool as FP8 (ss_kv_quant_row per row)
    std::vector<float> ks, vs;       // (n_blocks, 16, nkv) its row scales
    std::vector<uint16_t> kd, vd;    // its dequantized rows: what the FP8 variants read
    std::vector<ss_tok_info> tok;
    std::vector<int32_t> tables;     // (n_seqs, max_blocks)
    std::vector<ss_attn_tile> tiles, tiles16; // engine split (SS_ATTN_ITEMS); variant 1's (16 items)
    int64_t n_tiles16;
    uint16_t *d_qkv = nullptr, *d_k = nullptr, *d_v = nullptr, *d_out = nullptr;
    ss_kv_layer kv8 = {};
    ss_tok_info *d_tok = nullptr;
    int32_t *d_tables = nullptr;
    ss_attn_tile *d_tiles = nullptr, *d_tiles16 = nullptr;
};

/* The engine's tile split (src/engine/cuda/engine_gpu.c fill_meta) for
 * `items` items per tile. */
static std::vector<ss_attn_tile> make_tiles(const Batch &b, int items) {
    std::vector<ss_attn_tile> tiles;
    int group = b.nh / b.nkv, hp = std::min(group, items), rq = items / hp;
    int64_t row0 = 0;
    for (size_t i = 0; i < b.seqs.size(); i++) {
        int n = b.seqs[i].n;
        for (int kvh = 0; kvh < b.nkv; kvh++)
            for (int hs = 0; hs < group; hs += hp)
                for (int r = 0; r < n; r += rq)
                    tiles.push_back({(int32_t)i, (int32_t)(row0 + r), std::min(rq, n - r),
                                     kvh * group + hs, std::min(hp, group - hs)});
        row0 += n;
    }
    return tiles;
}

static void build(Batch &b, int nh, int nkv, int hd, const std::vector<Seq> &seqs) {
    b.nh = nh, b.nkv = nkv, b.hd = hd, b.seqs = seqs;
    b.t = 0;
    b.max_blocks = 0;
    int total_blocks = 0;
    for (const Seq &s : seqs) {
        b.t += s.n;
        int nb = (s.start + s.n + SS_KV_BLOCK - 1) / SS_KV_BLOCK;
        b.max_blocks = std::max(b.max_blocks, nb);
        total_blocks += nb;
    }
    b.n_blocks = total_blocks + 3; /* a few unused blocks */
    /* Blocks handed out in a shuffled order: tables are not the identity. */
    std::vector<int32_t> ids(b.n_blocks);
    for (int i = 0; i < b.n_blocks; i++)
        ids[i] = i;
    for (int i = b.n_blocks - 1; i > 0; i--) {
        rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
        std::swap(ids[i], ids[rng_state % (uint64_t)(i + 1)]);
    }
    b.tables.assign(seqs.size() * (size_t)b.max_blocks, 0);
    int next = 0;
    for (size_t i = 0; i < seqs.size(); i++) {
        int nb = (seqs[i].start + seqs[i].n + SS_KV_BLOCK - 1) / SS_KV_BLOCK;
        for (int j = 0; j < nb; j++)
            b.tables[i * b.max_blocks + j] = ids[next++];
    }
    size_t row = (size_t)(nh + 2 * nkv) * hd, pool = (size_t)b.n_blocks * SS_KV_BLOCK * nkv * hd;
    b.qkv.resize((size_t)b.t * row);
    for (auto &x : b.qkv)
        x = f2bf(2.0f * frand());
    b.k.resize(pool);
    b.v.resize(pool);
    for (auto &x : b.k)
        x = f2bf(2.0f * frand());
    for (auto &x : b.v)
        x = f2bf(frand());
    const size_t n_rows = pool / hd;
    b.k8.resize(pool), b.v8.resize(pool), b.kd.resize(pool), b.vd.resize(pool);
    b.ks.resize(n_rows), b.vs.resize(n_rows);
    for (size_t r = 0; r < n_rows; r++) {
        ss_kv_quant_row(&b.k[r * hd], hd, &b.k8[r * hd], &b.ks[r]);
        ss_kv_quant_row(&b.v[r * hd], hd, &b.v8[r * hd], &b.vs[r]);
        ss_kv_dequant_row(&b.k8[r * hd], hd, b.ks[r], &b.kd[r * hd]);
        ss_kv_dequant_row(&b.v8[r * hd], hd, b.vs[r], &b.vd[r * hd]);
    }
    b.kv8.fp8 = 1;
    CK(cudaMalloc(&b.kv8.k, pool));
    CK(cudaMalloc(&b.kv8.v, pool));
    CK(cudaMalloc(&b.kv8.ks, n_rows * 4));
    CK(cudaMalloc(&b.kv8.vs, n_rows * 4));
    CK(cudaMemcpy(b.kv8.k, b.k8.data(), pool, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b.kv8.v, b.v8.data(), pool, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b.kv8.ks, b.ks.data(), n_rows * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b.kv8.vs, b.vs.data(), n_rows * 4, cudaMemcpyHostToDevice));
    b.tok.clear();
    for (size_t i = 0; i < seqs.size(); i++)
        for (int j = 0; j < seqs[i].n; j++)
            b.tok.push_back({(int32_t)i, seqs[i].start + j});
    b.tiles = make_tiles(b, SS_ATTN_ITEMS);
    b.tiles16 = make_tiles(b, 16);
    b.n_tiles = (int64_t)b.tiles.size();
    b.n_tiles16 = (int64_t)b.tiles16.size();
    CK(cudaMalloc(&b.d_qkv, b.qkv.size() * 2));
    CK(cudaMalloc(&b.d_k, pool * 2));
    CK(cudaMalloc(&b.d_v, pool * 2));
    CK(cudaMalloc(&b.d_out, (size_t)b.t * nh * hd * 2));
    CK(cudaMalloc(&b.d_tok, b.tok.size() * sizeof(ss_tok_info)));
    CK(cudaMalloc(&b.d_tables, std::max<size_t>(1, b.tables.size()) * 4));
    CK(cudaMalloc(&b.d_tiles, b.tiles.size() * sizeof(ss_attn_tile)));
    CK(cudaMemcpy(b.d_qkv, b.qkv.data(), b.qkv.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b.d_k, b.k.data(), pool * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b.d_v, b.v.data(), pool * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b.d_tok, b.tok.data(), b.tok.size() * sizeof(ss_tok_info), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b.d_tables, b.tables.data(), b.tables.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b.d_tiles, b.tiles.data(), b.tiles.size() * sizeof(ss_attn_tile), cudaMemcpyHostToDevice));
    CK(cudaMalloc(&b.d_tiles16, b.tiles16.size() * sizeof(ss_attn_tile)));
    CK(cudaMemcpy(b.d_tiles16, b.tiles16.data(), b.tiles16.size() * sizeof(ss_attn_tile), cudaMemcpyHostToDevice));
    CK(cudaMemset(b.d_out, 0xff, (size_t)b.t * nh * hd * 2)); /* NaN: unwritten rows show */
}

static void release(Batch &b) {
    cudaFree(b.d_qkv), cudaFree(b.d_k), cudaFree(b.d_v), cudaFree(b.d_out);
    cudaFree(b.kv8.k), cudaFree(b.kv8.v), cudaFree(b.kv8.ks), cudaFree(b.kv8.vs);
    cudaFree(b.d_tok), cudaFree(b.d_tables), cudaFree(b.d_tiles), cudaFree(b.d_tiles16);
}

static const int N_VARIANTS = 9;
static const char *variant_name[N_VARIANTS + 1] = {"", "1 old SIMT (16-item tiles)", "2 SIMT (256-item tiles)",
                                                   "3 MMA 1 head/block + decode v1",
                                                   "4 MMA 2 heads/block + decode v1",
                                                   "5 as 4 + decode v2 (SS_ATTN_DECODE=2)",
                                                   "6 as 4 + decode v3 (engine default)",
                                                   "7 v3, pure-decode flag",
                                                   "8 as 6, FP8 KV",
                                                   "9 as 4 (decode v1), FP8 KV"};

static bool fp8_variant(int variant) { return variant >= 8; }

static bool pure_decode(const Batch &b) { return b.t == (int64_t)b.seqs.size(); }

static int force_split = 0; /* v6/v7: cluster size forced (0: the kernel's choice) */

static cudaError_t run(const Batch &b, int variant) {
    static const int code[N_VARIANTS + 1] = {0, 0, SS_ATTN_SIMT, SS_ATTN_MMA_H1, SS_ATTN_DECODE1, SS_ATTN_DECODE2,
                                             SS_ATTN_DECODE3, SS_ATTN_DECODE3 | SS_ATTN_PURE_DECODE,
                                             SS_ATTN_DECODE3, SS_ATTN_DECODE1};
    if (variant == 1)
        return v1::run(b.d_qkv, b.d_tok, b.d_tiles16, b.n_tiles16, b.d_tables, b.max_blocks, b.d_k, b.d_v, b.nh,
                       b.nkv, b.hd, b.d_out);
    const int split = variant >= 6 ? SS_ATTN_DECODE3_SPLITS(force_split) : 0;
    if (fp8_variant(variant)) /* with the engine's pure-decode flag where it would set it */
        return ss_attention_cuda_kv(b.d_qkv, b.d_tok, b.d_tiles, b.n_tiles, b.d_tables, b.max_blocks, &b.kv8, b.nh,
                                    b.nkv, b.hd, b.d_out,
                                    code[variant] | split | (pure_decode(b) ? SS_ATTN_PURE_DECODE : 0), 0);
    return ss_attention_cuda_variant(b.d_qkv, b.d_tok, b.d_tiles, b.n_tiles, b.d_tables, b.max_blocks, b.d_k,
                                     b.d_v, b.nh, b.nkv, b.hd, b.d_out, code[variant] | split, 0);
}

/* Reference for one (row, head): double softmax over positions 0..pos, over
 * the dequantized FP8 rows when fp8. */
static void ref_row(const Batch &b, int64_t r, int h, bool fp8, std::vector<double> &o) {
    const std::vector<uint16_t> &kk = fp8 ? b.kd : b.k, &vv = fp8 ? b.vd : b.v;
    int hd = b.hd, nkv = b.nkv, kvh = h / (b.nh / nkv);
    const ss_tok_info tk = b.tok[r];
    const uint16_t *q = &b.qkv[(size_t)r * (b.nh + 2 * nkv) * hd + (size_t)h * hd];
    const int32_t *tab = &b.tables[(size_t)tk.seq * b.max_blocks];
    std::vector<double> s(tk.pos + 1);
    double mx = -1e300;
    for (int j = 0; j <= tk.pos; j++) {
        size_t off = ((size_t)tab[j / SS_KV_BLOCK] * SS_KV_BLOCK + j % SS_KV_BLOCK) * nkv * hd + (size_t)kvh * hd;
        double d = 0;
        for (int c = 0; c < hd; c++)
            d += (double)bf2f(q[c]) * bf2f(kk[off + c]);
        s[j] = d / sqrt((double)hd);
        mx = std::max(mx, s[j]);
    }
    o.assign(hd, 0.0);
    double sum = 0;
    for (int j = 0; j <= tk.pos; j++) {
        size_t off = ((size_t)tab[j / SS_KV_BLOCK] * SS_KV_BLOCK + j % SS_KV_BLOCK) * nkv * hd + (size_t)kvh * hd;
        double p = exp(s[j] - mx);
        sum += p;
        for (int c = 0; c < hd; c++)
            o[c] += p * bf2f(vv[off + c]);
    }
    for (int c = 0; c < hd; c++)
        o[c] /= sum;
}

/* Runs variant once (output poisoned with NaN first) and compares rows
 * r % stride == 0 (and the last row); 0 = pass. */
static int validate(const char *name, Batch &b, int64_t stride, int variant) {
    CK(cudaMemset(b.d_out, 0xff, (size_t)b.t * b.nh * b.hd * 2));
    CK(run(b, variant));
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    std::vector<uint16_t> out((size_t)b.t * b.nh * b.hd);
    CK(cudaMemcpy(out.data(), b.d_out, out.size() * 2, cudaMemcpyDeviceToHost));
    double md = 0, mr = 0;
    int shown = 0;
    int64_t rows = 0;
    std::vector<double> o;
    for (int64_t r = 0; r < b.t; r++) {
        if (r % stride != 0 && r != b.t - 1)
            continue;
        rows++;
        for (int h = 0; h < b.nh; h++) {
            ref_row(b, r, h, fp8_variant(variant), o);
            for (int c = 0; c < b.hd; c++) {
                double g = bf2f(out[((size_t)r * b.nh + h) * b.hd + c]);
                double d = fabs(g - o[c]);
                if (!(d <= 2e-2 * std::max(1.0, fabs(o[c]))) && shown < 5) {
                    printf("  mismatch %s row %lld head %d col %d: gpu %.6f ref %.6f\n", name, (long long)r, h, c, g, o[c]);
                    shown++;
                }
                md = (d > md || d != d) ? d : md;
                mr = std::max(mr, fabs(o[c]));
            }
        }
    }
    double rel = md / std::max(mr, 1e-30);
    int ok = rel <= 1e-2;
    printf("%s v%d %-44s rows %6lld  max diff %.3e (normalized %.3e, tol 1e-02)\n", ok ? "OK " : "BAD", variant,
           name, (long long)rows, md, rel);
    return ok ? 0 : 1;
}

// --- main ------------------------------------------------------------------------------------

static std::vector<Seq> uniform(int n_seqs, int start, int n) { return std::vector<Seq>(n_seqs, Seq{start, n}); }

/* One decode token per sequence, contexts spread evenly over lo..hi (the
 * decode bench's running set: prompts of 16 plus 0..256 generated tokens). */
static std::vector<Seq> decode_mix(int n_seqs, int lo, int hi) {
    std::vector<Seq> s;
    for (int i = 0; i < n_seqs; i++)
        s.push_back(Seq{lo - 1 + (int)((int64_t)i * (hi - lo) / std::max(1, n_seqs - 1)), 1});
    return s;
}

int main(int argc, char **argv) {
    const bool quick = argc > 1 && strcmp(argv[1], "quick") == 0;
    const bool validate_only = argc > 1 && strcmp(argv[1], "validate") == 0; /* e.g. under compute-sanitizer */
    dev_banner();
    int fails = 0;
    struct Case {
        const char *name;
        int nh, nkv, hd;
        std::vector<Seq> seqs;
        int64_t stride;
    };
    std::vector<Case> cases = {
        {"tiny bitnet (6/2 heads, hd 16) prefill", 6, 2, 16, {{0, 1}, {0, 17}, {0, 40}}, 1},
        {"tiny qwen2 (5/1, hd 16) mixed", 5, 1, 16, {{20, 1}, {0, 3}, {5, 4}, {33, 1}}, 1},
        {"hd 18 (scalar loads), group 3", 6, 2, 18, {{0, 35}, {40, 1}}, 1},
        {"hd 64, group 1", 4, 4, 64, {{0, 70}, {100, 1}}, 1},
        {"group 20 (> 16 items: head split)", 20, 1, 32, {{0, 9}, {50, 1}}, 1},
        {"bitnet-2b (20/5, hd 128) prefill 2x300", 20, 5, 128, uniform(2, 0, 300), 7},
        {"bitnet-2b decode 64 seqs at 271", 20, 5, 128, uniform(64, 271, 1), 1},
        {"bitnet-2b chunked prefill 100 after 200", 20, 5, 128, uniform(3, 200, 100), 5},
        {"hd 256 (dynamic smem > 48 KB)", 8, 2, 256, {{0, 50}, {64, 1}}, 3},
        /* head_dim 128 edge cases of the tensor-core and decode kernels */
        {"bitnet-2b mixed (decode, chunks, tails)", 20, 5, 128,
         {{0, 1}, {700, 1}, {0, 2}, {13, 77}, {64, 64}, {5, 3}, {0, 129}, {1000, 1}, {250, 6}}, 1},
        {"hd 128 group 1 (256-row tiles)", 3, 3, 128, {{0, 300}, {37, 260}, {90, 1}}, 3},
        {"hd 128 group 5 (odd heads per block)", 10, 2, 128, {{0, 70}, {0, 1}, {31, 33}}, 1},
        {"hd 128 group 20 (12-row tiles)", 20, 1, 128, {{0, 50}, {300, 1}, {7, 13}}, 1},
        /* decode v3: 8-block clusters over long contexts, 16-key tails, 2 head passes */
        {"bitnet-2b decode 8 seqs at 4096", 20, 5, 128, uniform(8, 4095, 1), 1},
        {"bitnet-2b decode mix 512 seqs at 16..272", 20, 5, 128, decode_mix(512, 16, 272), 3},
        {"decode group 20, contexts 1..1500", 20, 1, 128, {{0, 1}, {14, 1}, {16, 1}, {17, 1}, {1499, 1}}, 1},
        {"decode group 8, 2 seqs (8-way split)", 16, 2, 128, {{0, 1}, {999, 1}}, 1},
    };
    for (Case &c : cases) {
        Batch b;
        build(b, c.nh, c.nkv, c.hd, c.seqs);
        for (int v = 1; v <= N_VARIANTS; v++)
            if (v != 7 || pure_decode(b))
                fails += validate(c.name, b, c.stride, v);
        if (pure_decode(b)) { /* FP8 under v3 at every cluster size */
            for (int sp = 1; sp <= 8; sp *= 2) {
                force_split = sp;
                std::string name = std::string(c.name) + " [cluster " + std::to_string(sp) + "]";
                fails += validate(name.c_str(), b, c.stride, 8);
                force_split = 0;
            }
        }
        if (pure_decode(b)) /* v3 at every cluster size */
            for (int sp = 1; sp <= 8; sp *= 2) {
                force_split = sp;
                std::string name = std::string(c.name) + " [cluster " + std::to_string(sp) + "]";
                fails += validate(name.c_str(), b, c.stride, 7);
                force_split = 0;
            }
        release(b);
    }
    if (fails)
        printf("attention: %d validation(s) FAILED (timings follow anyway)\n", fails);
    if (validate_only)
        return fails ? 1 : 0;
    /* Timings: BitNet-2B shapes, every variant. */
    struct Timing {
        const char *name;
        std::vector<Seq> seqs;
    };
    std::vector<Timing> timings = {
        {"decode 64 seqs at 272", uniform(64, 271, 1)},
        {"decode 64 seqs at 1024", uniform(64, 1023, 1)},
        {"decode 256 seqs at 272", uniform(256, 271, 1)},
        {"decode 512 seqs at 272", uniform(512, 271, 1)},
        {"decode 8 seqs at 4096", uniform(8, 4095, 1)},
        {"decode mix 512 at 16..272", decode_mix(512, 16, 272)},
        {"prefill 16 x 1024 (M = 16384)", uniform(16, 0, 1024)},
        {"prefill 4 x 1024 (M = 4096)", uniform(4, 0, 1024)},
        {"chunked 16 x 512 after 512", uniform(16, 512, 512)},
    };
    if (quick)
        timings.resize(1);
    printf("# timings (BitNet-2B: 20 heads, 5 kv heads, hd 128; median of cudaEvent batches)\n");
    std::vector<std::string> table;
    for (const Timing &tm : timings) {
        Batch b;
        build(b, 20, 5, 128, tm.seqs);
        const bool decode = pure_decode(b);
        double pairs = 0; /* (query, key) pairs per head */
        for (const Seq &s : b.seqs)
            pairs += (double)s.n * s.start + (double)s.n * (s.n + 1) / 2.0;
        double flops = 4.0 * pairs * b.hd * b.nh;
        double kv_bytes = 0, kv_bytes8 = 0; /* distinct K and V rows read: BF16, FP8 (+ the scales) */
        for (const Seq &s : b.seqs) {
            kv_bytes += 2.0 * (s.start + s.n) * b.nkv * b.hd * 2;
            kv_bytes8 += 2.0 * (s.start + s.n) * b.nkv * (b.hd + 4);
        }
        /* Decode: copies of the K/V pools, rotated, so that L2 does not hold them. */
        const size_t pool = (size_t)b.n_blocks * SS_KV_BLOCK * b.nkv * b.hd * 2;
        const int sets = decode ? rotation_sets(2 * pool) : 1;
        std::vector<uint16_t *> ks(sets, b.d_k), vs(sets, b.d_v);
        std::vector<ss_kv_layer> k8s(sets, b.kv8);
        for (int i = 1; i < sets; i++) {
            CK(cudaMalloc(&ks[i], pool));
            CK(cudaMalloc(&vs[i], pool));
            CK(cudaMemcpy(ks[i], b.d_k, pool, cudaMemcpyDeviceToDevice));
            CK(cudaMemcpy(vs[i], b.d_v, pool, cudaMemcpyDeviceToDevice));
            const size_t p8 = pool / 2, rows8 = pool / 2 / b.hd * 4; /* E4M3 bytes; scale bytes */
            CK(cudaMalloc(&k8s[i].k, p8));
            CK(cudaMalloc(&k8s[i].v, p8));
            CK(cudaMalloc(&k8s[i].ks, rows8));
            CK(cudaMalloc(&k8s[i].vs, rows8));
            CK(cudaMemcpy(k8s[i].k, b.kv8.k, p8, cudaMemcpyDeviceToDevice));
            CK(cudaMemcpy(k8s[i].v, b.kv8.v, p8, cudaMemcpyDeviceToDevice));
            CK(cudaMemcpy(k8s[i].ks, b.kv8.ks, rows8, cudaMemcpyDeviceToDevice));
            CK(cudaMemcpy(k8s[i].vs, b.kv8.vs, rows8, cudaMemcpyDeviceToDevice));
        }
        for (int v = 1; v <= N_VARIANTS; v++) {
            if (v == 2 && !decode)
                continue; /* variant 2 = variant 1's kernel on 16x bigger tiles: slower, not timed for prefill */
            if (((v >= 5 && v <= 7) || v == 9) && !decode)
                continue; /* variants 5..7 differ from 4 in decode tiles only, 9 from 8 too */
            double us = time_us(
                [&](int i) {
                    b.d_k = ks[i], b.d_v = vs[i], b.kv8 = k8s[i];
                    run(b, v);
                },
                sets, 5, 7);
            b.d_k = ks[0], b.d_v = vs[0], b.kv8 = k8s[0];
            const double kvb = fp8_variant(v) ? kv_bytes8 : kv_bytes;
            char line[256];
            snprintf(line, sizeof line, "%-28s %-38s %9.1f us %7.2f TFLOPS %8.1f GB/s KV (3 TB/s floor %6.1f us) %10.0f tok/s", tm.name,
                     variant_name[v], us, flops / us / 1e6, kvb / us / 1e3, kvb / 3e6, (double)b.t / us * 1e6);
            printf("%s\n", line);
            table.push_back(line);
        }
        for (int sp = 1; decode && sp <= 8; sp *= 2) { /* v3's cluster size sweep */
            force_split = sp;
            double us = time_us(
                [&](int i) {
                    b.d_k = ks[i], b.d_v = vs[i];
                    run(b, 7);
                },
                sets, 5, 7);
            b.d_k = ks[0], b.d_v = vs[0];
            force_split = 0;
            char line[256];
            snprintf(line, sizeof line, "%-28s 7 v3 pure, cluster of %d %14s %9.1f us %8.1f GB/s KV", tm.name, sp, "",
                     us, kv_bytes / us / 1e3);
            printf("%s\n", line);
            table.push_back(line);
        }
        for (int i = 1; i < sets; i++) {
            cudaFree(ks[i]), cudaFree(vs[i]);
            cudaFree(k8s[i].k), cudaFree(k8s[i].v), cudaFree(k8s[i].ks), cudaFree(k8s[i].vs);
        }
        release(b);
    }
    CK(cudaGetLastError());
    printf("\n# summary\n");
    for (const std::string &l : table)
        printf("%s\n", l.c_str());
    if (fails)
        printf("attention: %d validation(s) FAILED\n", fails);
    return fails ? 1 : 0;
}
