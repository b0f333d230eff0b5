/* Internal to attention.cu (included inside its anonymous namespace, after
 * attention_mma.cuh): decode kernel v3, built for the KV-read bound.
 *
 * decode_kernel / decode2_kernel keep one block of 8 warps per (sequence, kv
 * head) and walk the keys with dependent global loads; at 64 sequences x 272
 * that is 320 blocks of mostly idle warps (~0.75-0.95 TB/s). Here:
 *
 * - The keys of a (sequence, kv head) are split over a thread-block cluster of
 *   n_split blocks (1..8, chosen on the host from the tile count: the fewest
 *   that give one block per SM); block `rank` takes a contiguous 16-aligned
 *   range of ~n_keys / n_split keys, computed on the device from the position.
 * - A block stages 64-key K and V tiles in shared memory by cp.async (16-byte
 *   copies, the same swizzled tile as the prefill kernel), two stages in
 *   flight: 32-64 KB of loads outstanding per block, up to 3 blocks per SM.
 *   An FP8 cache's stages hold the raw E4M3 tiles and their rows' scales (the
 *   same cp.async ring, half the bytes); each warp dequantizes its 16 rows of
 *   a landed stage into one BF16 tile pair just before its mma, so the
 *   copies of the next tiles stay in flight during the conversion and math.
 * - All query heads of the tile are computed from the same K/V reads, on the
 *   tensor cores: the heads are the 16 rows of the mma A operand (GQA group of
 *   4 -> rows 0..3, the rest zero), warp w takes keys 16 w .. 16 w + 15 of a
 *   tile: S = Q K^T (8 mma pairs), online softmax in the log2 domain, O += P V
 *   (8 ldmatrix.trans + 16 mma), FP32 accumulation; P is rounded to BF16 for
 *   the mma, as in the prefill kernel.
 * - Each warp leaves (m, l, o) per head in its block's shared memory; after a
 *   cluster barrier, block `rank` merges elements rank, rank + n_split, ... of
 *   the (heads x 128) output over every warp of every block of the cluster
 *   through distributed shared memory, and a second barrier keeps the shared
 *   memory alive until every reader is done. No global scratch.
 * - PDL (SS_ATTN_PDL): on a pure decode batch every key but the row's own
 *   (position n_keys - 1, just written by rope_kv, the kernel before) was
 *   written by an earlier forward, so a block issues its first stages' K/V
 *   copies for those keys before griddepcontrol.wait, while rope_kv drains;
 *   after the wait it copies the new key's row (at most one per block) into
 *   its stage and reads the queries. Other batches wait first.
 * (attention.cu includes <cooperative_groups.h> outside the namespace.)
 */

constexpr int D3_WARPS = 4;
constexpr int D3_THREADS = D3_WARPS * 32;
constexpr int D3_STAGES = 2;
constexpr int D3_SMEM = D3_STAGES * 2 * MMA_TILE_BYTES; /* 64 KB */
/* FP8: the BF16 tile pair the warps dequantize into, then the raw stages: 65 KB. */
constexpr int D3_SMEM_FP8 = 2 * MMA_TILE_BYTES + D3_STAGES * MMA_RAW_STAGE;
constexpr int D3_ROWS = 16;                              /* heads per pass (mma rows) */
constexpr int D3_MAX_SPLIT = 8;                          /* portable cluster size */
constexpr int D3_BLOCKS_PER_SM = 3;

/* Partials in the (then idle) stage memory: o (D3_WARPS, D3_ROWS, MMA_HD),
 * then m and l (D3_WARPS, D3_ROWS) each; 33 KB of the 64. */
constexpr int D3_PO = 0;
constexpr int D3_PM = D3_WARPS * D3_ROWS * MMA_HD;
constexpr int D3_PL = D3_PM + D3_WARPS * D3_ROWS;
static_assert((D3_PL + D3_WARPS * D3_ROWS) * 4 <= D3_SMEM, "partials fit in the stage memory");
/* The H100's 228 KB per SM, 1 KB of it reserved per block. */
static_assert(D3_BLOCKS_PER_SM * (D3_SMEM_FP8 + 1024) <= 228 * 1024, "3 FP8 blocks per SM");

template <bool FP8> constexpr int d3_smem() { return FP8 ? D3_SMEM_FP8 : D3_SMEM; }

/* Offset of stage s in the dynamic shared memory: its K tile (V follows),
 * or for FP8 its raw stage (MMA_RAW_STAGE layout). */
template <bool FP8> __device__ __forceinline__ uint32_t d3_stage(int s) {
    return FP8 ? raw_stage(s) : (uint32_t)(s * 2 * MMA_TILE_BYTES);
}

/* load_kv_tile (BF16) that leaves rows k_skip <= p < n_keys untouched (no
 * copy, no zero fill): decode3_kernel writes them itself after the PDL wait.
 * load_kv_raw does the same for FP8. */
template <int THREADS>
__device__ __forceinline__ void load_kv_tile_below(uint32_t sk, uint32_t sv, const ss_kv_layer &cache,
                                                   const int32_t *table, int64_t kv_row, int kvh, int k0,
                                                   int n_keys, int k_skip) {
    const uint16_t *kc = (const uint16_t *)cache.k, *vc = (const uint16_t *)cache.v;
#pragma unroll
    for (int i = 0; i < MMA_BN * 16 / THREADS; i++) {
        const int idx = threadIdx.x + i * THREADS, r = idx >> 4, c = idx & 15, p = k0 + r;
        if (p >= k_skip && p < n_keys)
            continue;
        const bool ok = p < n_keys;
        const int64_t off = ok ? kv_slot(table, p) * kv_row + (int64_t)kvh * MMA_HD + c * 8 : 0;
        cp_async16(sk + swz(r, c), kc + off, ok);
        cp_async16(sv + swz(r, c), vc + off, ok);
    }
}

/* Block: split `rank` of tile blockIdx.x / n_split (1-row tiles only; the
 * whole cluster of a longer tile returns at once). prefetch: the batch is
 * pure decode (the K/V copies of older keys may start before the PDL wait). */
template <bool FP8>
__global__ void __launch_bounds__(D3_THREADS, D3_BLOCKS_PER_SM)
decode3_kernel(const uint16_t *__restrict__ qkv, const ss_tok_info *__restrict__ tok,
               const ss_attn_tile *__restrict__ tiles, const int32_t *__restrict__ tables, int max_blocks,
               ss_kv_layer cache, int nh, int nkv, float sl2, int n_split, int prefetch,
               uint16_t *__restrict__ out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    namespace cg = cooperative_groups;
    const cg::cluster_group cluster = cg::this_cluster();
    const int rank = (int)cluster.block_rank();
    const ss_attn_tile tile = tiles[blockIdx.x / n_split]; /* batch metadata: before the PDL wait */
    if (tile.nq != 1) {
        ss_pdl_wait(); /* every block waits before it exits (pdl.cuh) */
        return;        /* same tile for the whole cluster: nobody waits at a barrier */
    }
    extern __shared__ __align__(128) uint8_t smem_raw[];
    const uint32_t sbase = smem_u32(smem_raw);
    float *part = (float *)smem_raw;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, tq = lane & 3; /* fragment row group and column pair */
    const int group = nh / nkv, kvh = tile.head0 / group;
    const int64_t row_len = (int64_t)(nh + 2 * nkv) * MMA_HD, kv_row = (int64_t)nkv * MMA_HD;
    const int32_t *table = tables + (int64_t)tile.seq * max_blocks;
    const int n_keys = tok[tile.row0].pos + 1;
    /* This block's keys: [k_begin, k_end), 16-aligned ranges (a warp's share of a tile). */
    const int span = ((n_keys + n_split - 1) / n_split + 15) & ~15;
    const int k_begin = min(n_keys, rank * span), k_end = min(n_keys, k_begin + span);
    const int n_t = (k_end - k_begin + MMA_BN - 1) / MMA_BN;
    /* Keys >= k_new may be rope_kv's (the previous kernel's) output. */
    const int k_new = prefetch ? n_keys - 1 : 0;
    if (!prefetch) {
        ss_pdl_wait();
        ss_pdl_trigger();
    }

    for (int h0 = 0; h0 < tile.nheads; h0 += D3_ROWS) {
        const int nhp = min(D3_ROWS, tile.nheads - h0);
        const bool early = prefetch && h0 == 0; /* this pass's stages are issued before the wait */
#pragma unroll
        for (int s = 0; s < D3_STAGES; s++) {
            if (s < n_t) {
                const uint32_t st = sbase + d3_stage<FP8>(s);
                const int k0 = k_begin + s * MMA_BN, k_skip = early ? k_new : 0x7fffffff;
                if (FP8)
                    load_kv_raw<D3_THREADS>(st, cache, table, nkv, kvh, k0, k_end, k_skip);
                else
                    load_kv_tile_below<D3_THREADS>(st, st + MMA_TILE_BYTES, cache, table, kv_row, kvh, k0, k_end,
                                                   k_skip);
            }
            cp_async_commit(); /* empty groups too: wait<STAGES-1> below counts tiles */
        }
        if (early) {
            ss_pdl_wait(); /* rope_kv done: the new key's row and the queries are in memory */
            ss_pdl_trigger();
            /* The row of key k_new, where an issued stage holds it: 16 K and
             * 16 V chunks (FP8: 8 and 8 raw chunks and the two scales) by
             * plain copies (visible after the barrier before the stage is
             * read; cp.async never touches that row). */
            const int s = (k_new - k_begin) / MMA_BN;
            if (k_new >= k_begin && k_new < k_end && s < D3_STAGES && threadIdx.x < (FP8 ? 16 : 32)) {
                const int r = k_new - k_begin - s * MMA_BN;
                const int64_t srow = kv_slot(table, k_new) * nkv + kvh;
                if (FP8) {
                    const bool v = threadIdx.x >= 8;
                    const int c = threadIdx.x & 7;
                    uint8_t *raw = smem_raw + d3_stage<FP8>(s);
                    *(uint4 *)(raw + (v ? MMA_RAW_BYTES : 0) + r * MMA_HD + c * 16) =
                        *(const uint4 *)((const uint8_t *)(v ? cache.v : cache.k) + srow * MMA_HD + c * 16);
                    if (c == 0)
                        ((float *)(raw + 2 * MMA_RAW_BYTES))[(v ? MMA_BN : 0) + r] = (v ? cache.vs : cache.ks)[srow];
                } else {
                    const int c = threadIdx.x & 15;
                    const int64_t off = srow * MMA_HD + c * 8;
                    const uint32_t at =
                        d3_stage<FP8>(s) + (threadIdx.x < 16 ? 0u : (uint32_t)MMA_TILE_BYTES) + swz(r, c);
                    *(uint4 *)(smem_raw + at) = threadIdx.x < 16 ? ss_kv_load8<FP8>(cache.k, cache.ks, off, srow)
                                                                 : ss_kv_load8<FP8>(cache.v, cache.vs, off, srow);
                }
            }
        }
        /* Q fragments: row r = head h0 + r (zero past nhp), 8 k-steps of 16 dims. */
        uint32_t qf[8][4];
        {
            const uint32_t *qa = (const uint32_t *)(qkv + tile.row0 * row_len + (int64_t)(tile.head0 + h0 + g) * MMA_HD);
            const uint32_t *qb = qa + 8 * MMA_HD / 2;
            const bool va = g < nhp, vb = g + 8 < nhp;
#pragma unroll
            for (int kb = 0; kb < 8; kb++) {
                const int w = kb * 8 + tq;
                qf[kb][0] = va ? qa[w] : 0u;
                qf[kb][1] = vb ? qb[w] : 0u;
                qf[kb][2] = va ? qa[w + 4] : 0u;
                qf[kb][3] = vb ? qb[w + 4] : 0u;
            }
        }
        float o[16][4];
#pragma unroll
        for (int i = 0; i < 16; i++)
            o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
        float ma = -INFINITY, mb = -INFINITY, la = 0.0f, lb = 0.0f;

        for (int j = 0; j < n_t; j++) {
            cp_async_wait<D3_STAGES - 1>();
            __syncthreads(); /* tile j visible to every warp */
            /* FP8: the one BF16 tile pair, at offset 0 */
            const uint32_t sk = sbase + (FP8 ? 0u : d3_stage<FP8>(j % D3_STAGES)), sv = sk + MMA_TILE_BYTES;
            const int k0 = k_begin + j * MMA_BN + warp * 16; /* this warp's first key */
            if (k0 < k_end) {
                if (FP8) { /* only this warp reads its 16 rows: no block barrier */
                    dequant_kv_rows<16, 32>(sk, sv, smem_raw + d3_stage<FP8>(j % D3_STAGES), warp * 16, lane);
                    __syncwarp();
                }
                /* S (16 heads x 16 keys) = Q K^T. */
                float s[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
                const int kr = warp * 16 + (lane & 7) + ((lane >> 4) << 3);
#pragma unroll
                for (int kb = 0; kb < 8; kb++) {
                    uint32_t b0, b1, b2, b3;
                    ldsm_x4(sk + swz(kr, kb * 2 + ((lane >> 3) & 1)), b0, b1, b2, b3);
                    mma_bf16(s[0], qf[kb], b0, b1);
                    mma_bf16(s[1], qf[kb], b2, b3);
                }
                if (k0 + 16 > k_end) { /* tail: keys past the context (zero rows) */
#pragma unroll
                    for (int nt = 0; nt < 2; nt++) {
                        const int key = k0 + nt * 8 + tq * 2;
                        if (key >= k_end) s[nt][0] = s[nt][2] = -INFINITY;
                        if (key + 1 >= k_end) s[nt][1] = s[nt][3] = -INFINITY;
                    }
                }
                /* Online softmax: a row's 16 scores sit in the 4 lanes of its group. */
                float xa = fmaxf(ma, fmaxf(fmaxf(s[0][0], s[0][1]), fmaxf(s[1][0], s[1][1])));
                float xb = fmaxf(mb, fmaxf(fmaxf(s[0][2], s[0][3]), fmaxf(s[1][2], s[1][3])));
                xa = fmaxf(xa, __shfl_xor_sync(0xffffffffu, xa, 1));
                xa = fmaxf(xa, __shfl_xor_sync(0xffffffffu, xa, 2));
                xb = fmaxf(xb, __shfl_xor_sync(0xffffffffu, xb, 1));
                xb = fmaxf(xb, __shfl_xor_sync(0xffffffffu, xb, 2));
                /* key k0 is visible, so xa, xb are finite from here on */
                const float oa = xa * sl2, ob = xb * sl2;
                const float alpha_a = exp2f(ma * sl2 - oa), alpha_b = exp2f(mb * sl2 - ob);
                ma = xa, mb = xb;
                float sa = 0.0f, sb = 0.0f;
                uint32_t pf[4]; /* P (16 x 16 keys) as one A fragment */
#pragma unroll
                for (int nt = 0; nt < 2; nt++) {
                    const float p0 = exp2f(fmaf(s[nt][0], sl2, -oa)), p1 = exp2f(fmaf(s[nt][1], sl2, -oa));
                    const float p2 = exp2f(fmaf(s[nt][2], sl2, -ob)), p3 = exp2f(fmaf(s[nt][3], sl2, -ob));
                    sa += p0 + p1;
                    sb += p2 + p3;
                    pf[nt * 2 + 0] = pack_bf2(p0, p1);
                    pf[nt * 2 + 1] = pack_bf2(p2, p3);
                }
                la = la * alpha_a + sa;
                lb = lb * alpha_b + sb;
#pragma unroll
                for (int i = 0; i < 16; i++) {
                    o[i][0] *= alpha_a, o[i][1] *= alpha_a;
                    o[i][2] *= alpha_b, o[i][3] *= alpha_b;
                }
                /* O (16 x 128) += P V: V^T fragments by ldmatrix.trans. */
                const int vr = warp * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
#pragma unroll
                for (int dp = 0; dp < 8; dp++) {
                    uint32_t b0, b1, b2, b3;
                    ldsm_x4_t(sv + swz(vr, dp * 2 + (lane >> 4)), b0, b1, b2, b3);
                    mma_bf16(o[2 * dp], pf, b0, b1);
                    mma_bf16(o[2 * dp + 1], pf, b2, b3);
                }
            }
            __syncthreads(); /* tile j consumed before its stage is refilled */
            if (j + D3_STAGES < n_t) {
                const uint32_t st = sbase + d3_stage<FP8>(j % D3_STAGES);
                const int k0n = k_begin + (j + D3_STAGES) * MMA_BN;
                if (FP8)
                    load_kv_raw<D3_THREADS>(st, cache, table, nkv, kvh, k0n, k_end, 0x7fffffff);
                else
                    load_kv_tile<D3_THREADS>(st, st + MMA_TILE_BYTES, cache, table, kv_row, kvh, k0n, k_end);
            }
            cp_async_commit();
        }
        cp_async_wait<0>(); /* only empty groups can be pending; the stages become the partials */
        __syncthreads();

        /* This warp's partial: rows g (a) and g + 8 (b); m in the log2 domain
         * (-inf and l = 0 for a warp that saw no key). */
        la += __shfl_xor_sync(0xffffffffu, la, 1);
        la += __shfl_xor_sync(0xffffffffu, la, 2);
        lb += __shfl_xor_sync(0xffffffffu, lb, 1);
        lb += __shfl_xor_sync(0xffffffffu, lb, 2);
        float *po = part + D3_PO + warp * D3_ROWS * MMA_HD;
#pragma unroll
        for (int nt = 0; nt < 16; nt++) {
            const int d = nt * 8 + tq * 2;
            if (g < nhp)
                *(float2 *)&po[g * MMA_HD + d] = make_float2(o[nt][0], o[nt][1]);
            if (g + 8 < nhp)
                *(float2 *)&po[(g + 8) * MMA_HD + d] = make_float2(o[nt][2], o[nt][3]);
        }
        if (tq == 0) {
            part[D3_PM + warp * D3_ROWS + g] = ma * sl2;
            part[D3_PL + warp * D3_ROWS + g] = la;
            part[D3_PM + warp * D3_ROWS + g + 8] = mb * sl2;
            part[D3_PL + warp * D3_ROWS + g + 8] = lb;
        }
        cluster.sync(); /* every block's partials written and visible cluster-wide */

        uint16_t *dst = out + tile.row0 * (int64_t)nh * MMA_HD + (int64_t)(tile.head0 + h0) * MMA_HD; // (nhp, 128)
        for (int e = rank * D3_THREADS + threadIdx.x; e < nhp * MMA_HD; e += n_split * D3_THREADS) {
            const int hh = e / MMA_HD, d = e % MMA_HD;
            float mx = -INFINITY;
            for (int r = 0; r < n_split; r++) {
                const float *pr = cluster.map_shared_rank(part, r);
#pragma unroll
                for (int w = 0; w < D3_WARPS; w++)
                    mx = fmaxf(mx, pr[D3_PM + w * D3_ROWS + hh]);
            }
            float ls = 0.0f, os = 0.0f;
            for (int r = 0; r < n_split; r++) {
                const float *pr = cluster.map_shared_rank(part, r);
#pragma unroll
                for (int w = 0; w < D3_WARPS; w++) {
                    const float f = exp2f(pr[D3_PM + w * D3_ROWS + hh] - mx); /* 0 for a warp without keys */
                    ls += pr[D3_PL + w * D3_ROWS + hh] * f;
                    os += pr[D3_PO + (w * D3_ROWS + hh) * MMA_HD + d] * f;
                }
            }
            dst[e] = ss_to_bf(os / ls);
        }
        cluster.sync(); /* readers done before the next pass (or exit) reuses the memory */
    }
#endif
}

/* Per device, once per process: the 64 / 65 KB shared memory opt-in and the SM
 * count (cudaFuncSetAttribute costs a driver call per launch otherwise).
 * Benign race: two threads may both do the idempotent setup. */
struct Decode3Setup {
    int ready, n_sm, ok;
};

template <bool FP8>
cudaError_t decode3_setup(int *n_sm, bool *ok) {
    static Decode3Setup setup[MAX_DEVICES]; /* per instantiation */
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess)
        return e;
    if (dev < 0 || dev >= MAX_DEVICES)
        return cudaErrorInvalidDevice;
    Decode3Setup *s = &setup[dev];
    if (!__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE)) {
        int major = 0, sms = 0;
        if ((e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev)) != cudaSuccess ||
            (e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess)
            return e;
        if (major >= 9 && (e = cudaFuncSetAttribute(decode3_kernel<FP8>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                    d3_smem<FP8>())) != cudaSuccess)
            return e;
        s->n_sm = sms, s->ok = major >= 9;
        __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
    }
    *n_sm = s->n_sm;
    *ok = s->ok != 0;
    return cudaSuccess;
}

/* Splits per tile: the smallest power of two (<= 8) that gives one block
 * per SM; n_tiles counts every tile (decode and prefill alike). Splitting
 * further costs more (cluster scheduling, two cluster barriers, the merge)
 * than it wins once every SM has work: H100 sweep (dev_attention), 64 seqs x
 * 272: 25.0 / 31.5 / 42.2 / 63.6 us at clusters of 1 / 2 / 4 / 8; 512 x 272:
 * 141 / 160 / 241 / 444 us; 8 x 4096 (40 tiles): 102 / 54.5 / 39.1 / 39.8 us. */
int decode3_splits(int64_t n_tiles, int n_sm) {
    int n = 1;
    while (n < D3_MAX_SPLIT && n_tiles * n < n_sm)
        n *= 2;
    return n;
}

/* Needs cc >= 9.0 (clusters); *ran = false where it is not available.
 * splits: cluster size, 0 = decode3_splits. prefetch: pure decode batch
 * (every key but each row's own was written before this forward). */
template <bool FP8>
cudaError_t launch_decode3(const uint16_t *qkv, const ss_tok_info *tok, const ss_attn_tile *tiles, int64_t n_tiles,
                           const int32_t *tables, int max_blocks, const ss_kv_layer &cache, int nh, int nkv,
                           uint16_t *out, int splits, bool pdl, bool prefetch, cudaStream_t stream, bool *ran) {
    int n_sm = 0;
    bool ok = false;
    *ran = false;
    cudaError_t e = decode3_setup<FP8>(&n_sm, &ok);
    if (e != cudaSuccess || !ok)
        return e;
    const int n_split = splits > 0 ? splits : decode3_splits(n_tiles, n_sm);
    if (n_tiles * n_split > 0x7fffffffLL)
        return cudaErrorInvalidValue;
    const float sl2 = LOG2E / sqrtf((float)MMA_HD);
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)(n_tiles * n_split));
    cfg.blockDim = dim3(D3_THREADS);
    cfg.dynamicSmemBytes = d3_smem<FP8>();
    cfg.stream = stream;
    cudaLaunchAttribute attr[2];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = (unsigned)n_split;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization; /* linear/kernels/pdl.cuh */
    attr[1].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = pdl ? 2 : 1;
    e = cudaLaunchKernelEx(&cfg, decode3_kernel<FP8>, qkv, tok, tiles, tables, max_blocks, cache, nh, nkv, sl2,
                           n_split, prefetch ? 1 : 0, out);
    *ran = e == cudaSuccess;
    return e;
}
