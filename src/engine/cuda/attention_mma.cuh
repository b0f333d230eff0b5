/* Internal to attention.cu (included inside its anonymous namespace): the
 * head_dim 128 kernels, tensor-core prefill (mma_kernel) and split-key decode
 * (decode_kernel). See attention.cu's top comment for the scheme. */

constexpr int MMA_HD = 128;
constexpr int MMA_BM = 64;           /* query rows per head per block */
constexpr int MMA_BN = 64;           /* keys per tile */
constexpr int MMA_ROW_BYTES = MMA_HD * 2;
constexpr int MMA_TILE_BYTES = MMA_BN * MMA_ROW_BYTES; /* one K or V tile: 16 KB */
constexpr int MMA_SMEM = 4 * MMA_TILE_BYTES;           /* K, V x 2 stages */
/* FP8 cache: a stage holds the raw tiles, K (64, 128) E4M3 then V, then
 * their rows' scales, ks (64) and vs (64) float: 16.5 KB. */
constexpr int MMA_RAW_BYTES = MMA_BN * MMA_HD;
constexpr int MMA_RAW_STAGE = 2 * MMA_RAW_BYTES + 2 * MMA_BN * 4;
/* FP8 prefill: one BF16 K, V tile pair (what the mma reads), then 2 raw stages: 65 KB. */
constexpr int MMA_SMEM_FP8 = 2 * MMA_TILE_BYTES + 2 * MMA_RAW_STAGE;

// --- PTX wrappers -------------------------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_u32(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* 16 bytes global -> shared, zero-filled when !valid (src then unread). */
__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(valid ? 16 : 0));
}
/* 4 bytes global -> shared (a scale), zero-filled when !valid. */
__device__ __forceinline__ void cp_async4(uint32_t dst, const void *src, bool valid) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm_x4(uint32_t addr, uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t addr, uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}

/* c (16x8 f32) += a (16x16 bf16, row) * b (16x8 bf16, col). */
__device__ __forceinline__ void mma_bf16(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* 16 bytes registers -> shared. */
__device__ __forceinline__ void st_shared16(uint32_t addr, uint4 v) {
    asm volatile("st.shared.v4.b32 [%0], {%1,%2,%3,%4};\n" ::"r"(addr), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
                 : "memory");
}

/* Two floats -> bf16x2 (lo in the low half), round to nearest even. */
__device__ __forceinline__ uint32_t pack_bf2(float lo, float hi) {
    uint32_t r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

/* Byte offset of 16-byte chunk `c` of row `r` in a (rows, 128) BF16 tile:
 * chunk index XOR (row % 8), so the 8 rows of one ldmatrix hit 8 distinct
 * 16-byte bank groups. */
__device__ __forceinline__ uint32_t swz(int r, int c) {
    return (uint32_t)(r * MMA_ROW_BYTES + ((c ^ (r & 7)) << 4));
}

// --- tensor-core prefill --------------------------------------------------------------------------

/* Stages keys k0..k0+63 of kv head kvh (K and V, BF16) into sk / sv by
 * cp.async (the caller commits and waits); positions >= n_keys are
 * zero-filled (their cache blocks may not exist). */
template <int THREADS>
__device__ __forceinline__ void load_kv_tile(uint32_t sk, uint32_t sv, const ss_kv_layer &cache,
                                             const int32_t *table, int64_t kv_row, int kvh, int k0, int n_keys) {
    const uint16_t *kc = (const uint16_t *)cache.k, *vc = (const uint16_t *)cache.v;
#pragma unroll
    for (int i = 0; i < MMA_BN * 16 / THREADS; i++) {
        const int idx = threadIdx.x + i * THREADS, r = idx >> 4, c = idx & 15, p = k0 + r;
        const bool ok = p < n_keys;
        const int64_t off = ok ? kv_slot(table, p) * kv_row + (int64_t)kvh * MMA_HD + c * 8 : 0;
        cp_async16(sk + swz(r, c), kc + off, ok);
        cp_async16(sv + swz(r, c), vc + off, ok);
    }
}

/* load_kv_tile of an FP8 cache: the raw bytes and scales of keys k0..k0+63
 * into the stage at st (MMA_RAW_STAGE layout) by cp.async, like the BF16
 * tiles, so the copy overlaps the math of earlier tiles (cp.async cannot
 * convert: dequant_kv_rows does, from shared memory, once the stage has
 * landed). Positions >= n_keys are zero-filled, scale 0 included: they
 * dequantize to the BF16 path's zero rows. Rows k_skip <= p < n_keys are left
 * untouched (decode3_kernel's rows written after the PDL wait). */
template <int THREADS>
__device__ __forceinline__ void load_kv_raw(uint32_t st, const ss_kv_layer &cache, const int32_t *table, int nkv,
                                            int kvh, int k0, int n_keys, int k_skip) {
    static_assert(THREADS >= 2 * MMA_BN && MMA_RAW_BYTES % (16 * THREADS) == 0, "chunks and scales split evenly");
    const uint8_t *kc = (const uint8_t *)cache.k, *vc = (const uint8_t *)cache.v;
#pragma unroll 2 /* not 4: decode3_kernel spilled */
    for (int i = 0; i < MMA_RAW_BYTES / 16 / THREADS; i++) {
        const int idx = threadIdx.x + i * THREADS, r = idx >> 3, p = k0 + r; /* 8 chunks a row */
        if (p >= k_skip && p < n_keys)
            continue;
        const bool ok = p < n_keys;
        const int64_t off = ok ? (kv_slot(table, p) * nkv + kvh) * MMA_HD + (idx & 7) * 16 : 0;
        cp_async16(st + idx * 16, kc + off, ok);
        cp_async16(st + MMA_RAW_BYTES + idx * 16, vc + off, ok);
    }
    if (threadIdx.x < 2 * MMA_BN) { /* ks, then vs */
        const int r = threadIdx.x & (MMA_BN - 1), p = k0 + r;
        if (p >= k_skip && p < n_keys)
            return;
        const bool ok = p < n_keys;
        const int64_t srow = ok ? kv_slot(table, p) * nkv + kvh : 0;
        cp_async4(st + 2 * MMA_RAW_BYTES + threadIdx.x * 4, (threadIdx.x < MMA_BN ? cache.ks : cache.vs) + srow, ok);
    }
}

/* Offset of raw stage s in an FP8 kernel's shared memory: after its one
 * BF16 K, V tile pair. */
__device__ __forceinline__ uint32_t raw_stage(int s) { return (uint32_t)(2 * MMA_TILE_BYTES + s * MMA_RAW_STAGE); }

/* Rows r0..r0+N-1 of a landed raw stage (raw: its shared memory) into the
 * swizzled BF16 tiles sk / sv, by THREADS threads (t: this one's index):
 * ss_kv_dequant8 per 8-element chunk, the same BF16 words the CPU reference
 * dequantizes to. */
template <int N, int THREADS>
__device__ __forceinline__ void dequant_kv_rows(uint32_t sk, uint32_t sv, const uint8_t *raw, int r0, int t) {
    const float *ks = (const float *)(raw + 2 * MMA_RAW_BYTES), *vs = ks + MMA_BN;
#pragma unroll
    for (int i = 0; i < N * 16 / THREADS; i++) {
        const int idx = t + i * THREADS, r = r0 + (idx >> 4), c = idx & 15;
        const uint2 k8 = *(const uint2 *)(raw + r * MMA_HD + c * 8);
        const uint2 v8 = *(const uint2 *)(raw + MMA_RAW_BYTES + r * MMA_HD + c * 8);
        st_shared16(sk + swz(r, c), ss_kv_dequant8(k8, ks[r]));
        st_shared16(sv + swz(r, c), ss_kv_dequant8(v8, vs[r]));
    }
}

/* Block: HPC heads x 64 rows of one tile (tiles of >= 2 rows; 1-row tiles
 * return at once). grid (n_tiles, ceil(max heads per tile / HPC)); blocks go
 * in reverse tile order, so the long causal rows (last in each sequence)
 * start first. Warp w: head w / 4, rows 16 (w % 4) ..+15. */
template <int HPC, bool FP8>
__global__ void __launch_bounds__(HPC * 128, 2 / HPC > 0 ? 2 / HPC : 1)
mma_kernel(const uint16_t *__restrict__ qkv, const ss_tok_info *__restrict__ tok,
           const ss_attn_tile *__restrict__ tiles, int n_tiles, const int32_t *__restrict__ tables,
           int max_blocks, ss_kv_layer cache, int nh, int nkv, float sl2, uint16_t *__restrict__ out) {
    constexpr int THREADS = HPC * 128;
    const ss_attn_tile tile = tiles[n_tiles - 1 - (int)blockIdx.x]; /* batch metadata: before the PDL wait */
    const int hb = (int)blockIdx.y * HPC;
    ss_pdl_wait(); /* every block, the empty ones too (pdl.cuh) */
    ss_pdl_trigger();
    if (tile.nq < 2 || hb >= tile.nheads)
        return;
    extern __shared__ __align__(128) uint8_t smem_raw[];
    const uint32_t sbase = smem_u32(smem_raw);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wh = warp >> 2, wr = (warp & 3) * 16; /* warp's head (in block) and first row */
    const bool active = hb + wh < tile.nheads;
    const int h = tile.head0 + hb + (active ? wh : 0);
    const int group = nh / nkv, kvh = tile.head0 / group;
    const int64_t row_len = (int64_t)(nh + 2 * nkv) * MMA_HD, kv_row = (int64_t)nkv * MMA_HD;
    const int32_t *table = tables + (int64_t)tile.seq * max_blocks;
    const int g = lane >> 2, tq = lane & 3; /* fragment row group and column pair */

    for (int r0 = 0; r0 < tile.nq; r0 += MMA_BM) {
        const int nr = min(MMA_BM, tile.nq - r0);
        const int64_t row0 = tile.row0 + r0;
        const int first_pos = tok[row0].pos;
        const int n_keys = tok[row0 + nr - 1].pos + 1;
        /* This thread's two rows (g, g + 8 of the warp's 16): positions for the
         * mask; rows past the tile compute on zero queries and are dropped. */
        const int ra = wr + g, rb = ra + 8;
        const int pa = ra < nr ? tok[row0 + ra].pos : 0x7fffffff;
        const int pb = rb < nr ? tok[row0 + rb].pos : 0x7fffffff;

        __syncthreads(); /* the previous row block is done with shared memory */
        if (FP8)
            load_kv_raw<THREADS>(sbase + raw_stage(0), cache, table, nkv, kvh, 0, n_keys, 0x7fffffff);
        else
            load_kv_tile<THREADS>(sbase, sbase + MMA_TILE_BYTES, cache, table, kv_row, kvh, 0, n_keys);
        cp_async_commit();

        /* Q fragments (A layout, 8 k-steps of 16 dims), straight from global. */
        uint32_t qf[8][4];
        {
            const uint32_t *qa = (const uint32_t *)(qkv + (row0 + ra) * row_len + (int64_t)h * MMA_HD);
            const uint32_t *qb = (const uint32_t *)(qkv + (row0 + rb) * row_len + (int64_t)h * MMA_HD);
#pragma unroll
            for (int kb = 0; kb < 8; kb++) {
                const int w = kb * 8 + tq; /* word (2 dims) index */
                qf[kb][0] = ra < nr ? qa[w] : 0u;
                qf[kb][1] = rb < nr ? qb[w] : 0u;
                qf[kb][2] = ra < nr ? qa[w + 4] : 0u;
                qf[kb][3] = rb < nr ? qb[w + 4] : 0u;
            }
        }
        float o[16][4];
#pragma unroll
        for (int i = 0; i < 16; i++)
            o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
        float ma = -INFINITY, mb = -INFINITY, la = 0.0f, lb = 0.0f;

        const int n_tiles_k = (n_keys + MMA_BN - 1) / MMA_BN;
        for (int j = 0; j < n_tiles_k; j++) {
            const int k0 = j * MMA_BN;
            /* FP8: the one BF16 tile pair, at offset 0 */
            const uint32_t st = sbase + (uint32_t)(FP8 ? 0 : (j & 1) * 2 * MMA_TILE_BYTES);
            if (j + 1 < n_tiles_k) {
                if (FP8) {
                    load_kv_raw<THREADS>(sbase + raw_stage((j + 1) & 1), cache, table, nkv, kvh, k0 + MMA_BN, n_keys,
                                         0x7fffffff);
                } else {
                    const uint32_t sn = sbase + (uint32_t)(((j + 1) & 1) * 2 * MMA_TILE_BYTES);
                    load_kv_tile<THREADS>(sn, sn + MMA_TILE_BYTES, cache, table, kv_row, kvh, k0 + MMA_BN, n_keys);
                }
                cp_async_commit();
                cp_async_wait<1>();
            } else {
                cp_async_wait<0>();
            }
            __syncthreads(); /* tile j visible to every warp */
            if (FP8) { /* every warp reads all 64 keys: converted by the block */
                dequant_kv_rows<MMA_BN, THREADS>(st, st + MMA_TILE_BYTES, smem_raw + raw_stage(j & 1), 0, threadIdx.x);
                __syncthreads(); /* BF16 tile j complete; raw stage j & 1 free for tile j + 2 */
            }

            if (active) {
                const uint32_t sk = st, sv = st + MMA_TILE_BYTES;
                /* S (16 x 64) = Q K^T: 8 n-tiles of 8 keys. */
                float s[8][4];
#pragma unroll
                for (int i = 0; i < 8; i++)
                    s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
                for (int kb = 0; kb < 8; kb++) {
#pragma unroll
                    for (int np = 0; np < 4; np++) {
                        uint32_t b0, b1, b2, b3;
                        const int key = np * 16 + (lane & 7) + ((lane >> 4) << 3);
                        ldsm_x4(sk + swz(key, kb * 2 + ((lane >> 3) & 1)), b0, b1, b2, b3);
                        mma_bf16(s[2 * np], qf[kb], b0, b1);
                        mma_bf16(s[2 * np + 1], qf[kb], b2, b3);
                    }
                }
                if (k0 + MMA_BN - 1 > first_pos) { /* diagonal (or tail) tile */
#pragma unroll
                    for (int nt = 0; nt < 8; nt++) {
                        const int key = k0 + nt * 8 + tq * 2;
                        if (key > pa) s[nt][0] = -INFINITY;
                        if (key + 1 > pa) s[nt][1] = -INFINITY;
                        if (key > pb) s[nt][2] = -INFINITY;
                        if (key + 1 > pb) s[nt][3] = -INFINITY;
                    }
                }
                /* Online softmax, rows a (g) and b (g + 8): a row's 64 scores
                 * sit in the 4 lanes of its group. */
                float xa = ma, xb = mb;
#pragma unroll
                for (int nt = 0; nt < 8; nt++) {
                    xa = fmaxf(xa, fmaxf(s[nt][0], s[nt][1]));
                    xb = fmaxf(xb, fmaxf(s[nt][2], s[nt][3]));
                }
                xa = fmaxf(xa, __shfl_xor_sync(0xffffffffu, xa, 1));
                xa = fmaxf(xa, __shfl_xor_sync(0xffffffffu, xa, 2));
                xb = fmaxf(xb, __shfl_xor_sync(0xffffffffu, xb, 1));
                xb = fmaxf(xb, __shfl_xor_sync(0xffffffffu, xb, 2));
                /* A row with no visible key yet keeps m = -inf: offset 0 keeps exp2 finite. */
                const float oa = xa == -INFINITY ? 0.0f : xa * sl2;
                const float ob = xb == -INFINITY ? 0.0f : xb * sl2;
                const float alpha_a = exp2f(ma * sl2 - oa), alpha_b = exp2f(mb * sl2 - ob);
                ma = xa, mb = xb;
                float sa = 0.0f, sb = 0.0f;
                uint32_t pf[4][4]; /* P as A fragments, 4 k-steps of 16 keys */
#pragma unroll
                for (int nt = 0; nt < 8; nt++) {
                    const float p0 = exp2f(fmaf(s[nt][0], sl2, -oa)), p1 = exp2f(fmaf(s[nt][1], sl2, -oa));
                    const float p2 = exp2f(fmaf(s[nt][2], sl2, -ob)), p3 = exp2f(fmaf(s[nt][3], sl2, -ob));
                    sa += p0 + p1;
                    sb += p2 + p3;
                    pf[nt >> 1][(nt & 1) * 2 + 0] = pack_bf2(p0, p1);
                    pf[nt >> 1][(nt & 1) * 2 + 1] = pack_bf2(p2, p3);
                }
                la = la * alpha_a + sa;
                lb = lb * alpha_b + sb;
#pragma unroll
                for (int i = 0; i < 16; i++) {
                    o[i][0] *= alpha_a, o[i][1] *= alpha_a;
                    o[i][2] *= alpha_b, o[i][3] *= alpha_b;
                }
                /* O (16 x 128) += P V: V^T fragments by ldmatrix.trans. */
#pragma unroll
                for (int kb = 0; kb < 4; kb++) {
#pragma unroll
                    for (int dp = 0; dp < 8; dp++) {
                        uint32_t b0, b1, b2, b3;
                        const int key = kb * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
                        ldsm_x4_t(sv + swz(key, dp * 2 + (lane >> 4)), b0, b1, b2, b3);
                        mma_bf16(o[2 * dp], pf[kb], b0, b1);
                        mma_bf16(o[2 * dp + 1], pf[kb], b2, b3);
                    }
                }
            }
            __syncthreads(); /* tile j consumed before its buffer is refilled */
        }

        if (active) {
            la += __shfl_xor_sync(0xffffffffu, la, 1);
            la += __shfl_xor_sync(0xffffffffu, la, 2);
            lb += __shfl_xor_sync(0xffffffffu, lb, 1);
            lb += __shfl_xor_sync(0xffffffffu, lb, 2);
            const float ia = 1.0f / la, ib = 1.0f / lb;
            uint16_t *da = out + (row0 + ra) * (int64_t)nh * MMA_HD + (int64_t)h * MMA_HD + tq * 2;
            uint16_t *db = out + (row0 + rb) * (int64_t)nh * MMA_HD + (int64_t)h * MMA_HD + tq * 2;
#pragma unroll
            for (int nt = 0; nt < 16; nt++) {
                if (ra < nr)
                    *(uint32_t *)(da + nt * 8) = pack_bf2(o[nt][0] * ia, o[nt][1] * ia);
                if (rb < nr)
                    *(uint32_t *)(db + nt * 8) = pack_bf2(o[nt][2] * ib, o[nt][3] * ib);
            }
        }
    }
}

template <int HPC, bool FP8>
cudaError_t launch_mma(const uint16_t *qkv, const ss_tok_info *tok, const ss_attn_tile *tiles,
                       int64_t n_tiles, const int32_t *tables, int max_blocks, const ss_kv_layer &cache, int nh,
                       int nkv, int max_heads, uint16_t *out, bool pdl, cudaStream_t stream) {
    static int opted[MAX_DEVICES]; /* one set per instantiation */
    const int smem = FP8 ? MMA_SMEM_FP8 : MMA_SMEM;
    cudaError_t e = opt_in_smem(opted, (const void *)mma_kernel<HPC, FP8>, smem);
    if (e != cudaSuccess)
        return e;
    const float sl2 = LOG2E / sqrtf((float)MMA_HD);
    const dim3 grid((unsigned)n_tiles, (unsigned)((max_heads + HPC - 1) / HPC));
    return ss_launch(pdl, mma_kernel<HPC, FP8>, grid, dim3(HPC * 128), smem, stream, qkv, tok, tiles,
                     (int)n_tiles, tables, max_blocks, cache, nh, nkv, sl2, out);
}

// --- split-key decode ---------------------------------------------------------------------------

constexpr int DEC_WARPS = 8;
constexpr int DEC_HEADS = 4; /* heads per pass */

/* Both decode kernels end alike: each warp left a partial (max m, sum l, o) per
 * head over its share of the keys; the block rescales them to the common max
 * and writes o / l for nhp heads. out: (nhp, MMA_HD) BF16, heads contiguous.
 * Callers __syncthreads() after writing po/pm/pl. */
__device__ __forceinline__ void merge_warp_partials(const float (*po)[DEC_HEADS][MMA_HD],
                                                    const float (*pm)[DEC_HEADS],
                                                    const float (*pl)[DEC_HEADS], int nhp,
                                                    uint16_t *out) {
    for (int e = threadIdx.x; e < nhp * MMA_HD; e += blockDim.x) {
        const int hh = e / MMA_HD, d = e % MMA_HD;
        float mx = -INFINITY;
#pragma unroll
        for (int w = 0; w < DEC_WARPS; w++)
            mx = fmaxf(mx, pm[w][hh]);
        float ls = 0.0f, os = 0.0f;
#pragma unroll
        for (int w = 0; w < DEC_WARPS; w++) {
            const float f = exp2f(pm[w][hh] - mx);
            ls += pl[w][hh] * f;
            os += po[w][hh][d] * f;
        }
        out[(int64_t)hh * MMA_HD + d] = ss_to_bf(os / ls);
    }
}

/* Block: one 1-row tile (other tiles return at once); heads go DEC_HEADS at
 * a time. Warp w scores keys 32 c + lane for chunks c = w, w + 8, ...: lane =
 * key for Q K (the key row by 16-byte loads), lane = 4 output dims for P V
 * (the value row by one coalesced warp load per key). */
template <bool FP8>
__global__ void __launch_bounds__(DEC_WARPS * 32)
decode_kernel(const uint16_t *__restrict__ qkv, const ss_tok_info *__restrict__ tok,
              const ss_attn_tile *__restrict__ tiles, const int32_t *__restrict__ tables, int max_blocks,
              ss_kv_layer cache, int nh, int nkv, float sl2, uint16_t *__restrict__ out) {
    const ss_attn_tile tile = tiles[blockIdx.x]; /* batch metadata: before the PDL wait */
    ss_pdl_wait();
    ss_pdl_trigger();
    if (tile.nq != 1)
        return;
    __shared__ __align__(16) float qs[DEC_HEADS][MMA_HD];                /* queries * scale * log2 e */
    __shared__ __align__(16) float po[DEC_WARPS][DEC_HEADS][MMA_HD];     /* each warp's o */
    __shared__ float pm[DEC_WARPS][DEC_HEADS], pl[DEC_WARPS][DEC_HEADS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int group = nh / nkv, kvh = tile.head0 / group;
    const int64_t row_len = (int64_t)(nh + 2 * nkv) * MMA_HD, kv_row = (int64_t)nkv * MMA_HD;
    const int32_t *table = tables + (int64_t)tile.seq * max_blocks;
    const int n_keys = tok[tile.row0].pos + 1;
    const int n_chunks = (n_keys + 31) / 32;

    for (int h0 = 0; h0 < tile.nheads; h0 += DEC_HEADS) {
        const int nhp = min(DEC_HEADS, tile.nheads - h0);
        __syncthreads(); /* the previous pass is done with qs and po */
        for (int e = threadIdx.x; e < DEC_HEADS * MMA_HD; e += blockDim.x) {
            const int hh = e / MMA_HD, d = e % MMA_HD;
            qs[hh][d] = hh < nhp ? ss_bf(qkv[tile.row0 * row_len + (int64_t)(tile.head0 + h0 + hh) * MMA_HD + d]) * sl2
                                 : 0.0f;
        }
        __syncthreads();
        float m[DEC_HEADS], l[DEC_HEADS], o[DEC_HEADS][4];
#pragma unroll
        for (int hh = 0; hh < DEC_HEADS; hh++) {
            m[hh] = -INFINITY, l[hh] = 0.0f;
            o[hh][0] = o[hh][1] = o[hh][2] = o[hh][3] = 0.0f;
        }
        for (int c = warp; c < n_chunks; c += DEC_WARPS) {
            const int p = c * 32 + lane;
            const bool ok = p < n_keys;
            const int64_t base = ok ? kv_slot(table, p) * kv_row + (int64_t)kvh * MMA_HD : 0;
            float sc[DEC_HEADS] = {0.0f, 0.0f, 0.0f, 0.0f};
            uint4 kv[16];
#pragma unroll
            for (int i = 0; i < 16; i++)
                kv[i] = ok ? ss_kv_load8<FP8>(cache.k, cache.ks, base + i * 8, base / MMA_HD) : make_uint4(0, 0, 0, 0);
#pragma unroll
            for (int i = 0; i < 16; i++) {
                float kf[8];
                ss_unpack8(kv[i], kf);
#pragma unroll
                for (int hh = 0; hh < DEC_HEADS; hh++) {
                    const float4 qa = *(const float4 *)&qs[hh][i * 8];
                    const float4 qb = *(const float4 *)&qs[hh][i * 8 + 4];
                    sc[hh] += qa.x * kf[0] + qa.y * kf[1] + qa.z * kf[2] + qa.w * kf[3] + qb.x * kf[4] +
                              qb.y * kf[5] + qb.z * kf[6] + qb.w * kf[7];
                }
            }
            float pr[DEC_HEADS];
#pragma unroll
            for (int hh = 0; hh < DEC_HEADS; hh++) {
                const float s = ok ? sc[hh] : -INFINITY;
                const float mn = fmaxf(m[hh], warp_max(s)); /* finite: lane 0's key is visible */
                const float alpha = exp2f(m[hh] - mn);
                pr[hh] = exp2f(s - mn);
                l[hh] = l[hh] * alpha + warp_sum(pr[hh]);
                m[hh] = mn;
#pragma unroll
                for (int i = 0; i < 4; i++)
                    o[hh][i] *= alpha;
            }
            const int nk = min(32, n_keys - c * 32);
            for (int j = 0; j < nk; j++) {
                const int64_t vb = __shfl_sync(0xffffffffu, base, j);
                const uint2 vw = ss_kv_load4<FP8>(cache.v, cache.vs, vb + lane * 4, vb / MMA_HD);
                const float v0 = __uint_as_float(vw.x << 16), v1 = __uint_as_float(vw.x & 0xffff0000u);
                const float v2 = __uint_as_float(vw.y << 16), v3 = __uint_as_float(vw.y & 0xffff0000u);
#pragma unroll
                for (int hh = 0; hh < DEC_HEADS; hh++) {
                    const float pj = __shfl_sync(0xffffffffu, pr[hh], j);
                    o[hh][0] += pj * v0, o[hh][1] += pj * v1, o[hh][2] += pj * v2, o[hh][3] += pj * v3;
                }
            }
        }
        /* Merge the warps' partials (a warp without keys has m = -inf, l = 0). */
#pragma unroll
        for (int hh = 0; hh < DEC_HEADS; hh++) {
            *(float4 *)&po[warp][hh][lane * 4] = make_float4(o[hh][0], o[hh][1], o[hh][2], o[hh][3]);
            if (lane == 0)
                pm[warp][hh] = m[hh], pl[warp][hh] = l[hh];
        }
        __syncthreads();
        merge_warp_partials(po, pm, pl, nhp,
                            out + tile.row0 * (int64_t)nh * MMA_HD + (int64_t)(tile.head0 + h0) * MMA_HD);
    }
}

template <bool FP8>
cudaError_t launch_decode(const uint16_t *qkv, const ss_tok_info *tok, const ss_attn_tile *tiles, int64_t n_tiles,
                          const int32_t *tables, int max_blocks, const ss_kv_layer &cache, int nh, int nkv,
                          uint16_t *out, bool pdl, cudaStream_t stream) {
    const float sl2 = LOG2E / sqrtf((float)MMA_HD);
    return ss_launch(pdl, decode_kernel<FP8>, dim3((unsigned)n_tiles), dim3(DEC_WARPS * 32), 0, stream, qkv, tok,
                     tiles, tables, max_blocks, cache, nh, nkv, sl2, out);
}

// --- split-key decode, v2: value rows loaded up front ---------------------------------------------

/* decode_kernel's P V loop loads the value row of one key at a time behind a
 * shuffle of its address (8 bytes per lane, a dependent chain of 32 loads per
 * chunk): ~1.1-1.2 TB/s on the H100. Here a warp issues the whole chunk's
 * value loads together with its key loads, before any FMA: 16-byte loads,
 * half-warp h (lanes 16h..16h+15, 8 dims each) takes keys 2i + h, so one load
 * instruction covers two value rows. The half-warps' partial sums are added at
 * the merge. Same block / warp / chunk split, same online softmax. */
template <bool FP8>
__global__ void __launch_bounds__(DEC_WARPS * 32, 1)
decode2_kernel(const uint16_t *__restrict__ qkv, const ss_tok_info *__restrict__ tok,
               const ss_attn_tile *__restrict__ tiles, const int32_t *__restrict__ tables, int max_blocks,
               ss_kv_layer cache, int nh, int nkv, float sl2, uint16_t *__restrict__ out) {
    const ss_attn_tile tile = tiles[blockIdx.x]; /* batch metadata: before the PDL wait */
    ss_pdl_wait();
    ss_pdl_trigger();
    if (tile.nq != 1)
        return;
    __shared__ __align__(16) float qs[DEC_HEADS][MMA_HD];            /* queries * scale * log2 e */
    __shared__ __align__(16) float po[DEC_WARPS][DEC_HEADS][MMA_HD]; /* each warp's o */
    __shared__ float pm[DEC_WARPS][DEC_HEADS], pl[DEC_WARPS][DEC_HEADS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int half = lane >> 4, d0 = (lane & 15) * 8; /* P V: key parity and first dim of this lane */
    const int group = nh / nkv, kvh = tile.head0 / group;
    const int64_t row_len = (int64_t)(nh + 2 * nkv) * MMA_HD, kv_row = (int64_t)nkv * MMA_HD;
    const int32_t *table = tables + (int64_t)tile.seq * max_blocks;
    const int n_keys = tok[tile.row0].pos + 1;
    const int n_chunks = (n_keys + 31) / 32;

    for (int h0 = 0; h0 < tile.nheads; h0 += DEC_HEADS) {
        const int nhp = min(DEC_HEADS, tile.nheads - h0);
        __syncthreads(); /* the previous pass is done with qs and po */
        for (int e = threadIdx.x; e < DEC_HEADS * MMA_HD; e += blockDim.x) {
            const int hh = e / MMA_HD, d = e % MMA_HD;
            qs[hh][d] = hh < nhp ? ss_bf(qkv[tile.row0 * row_len + (int64_t)(tile.head0 + h0 + hh) * MMA_HD + d]) * sl2
                                 : 0.0f;
        }
        __syncthreads();
        float m[DEC_HEADS], l[DEC_HEADS], o[DEC_HEADS][8];
#pragma unroll
        for (int hh = 0; hh < DEC_HEADS; hh++) {
            m[hh] = -INFINITY, l[hh] = 0.0f;
#pragma unroll
            for (int i = 0; i < 8; i++)
                o[hh][i] = 0.0f;
        }
        for (int c = warp; c < n_chunks; c += DEC_WARPS) {
            const int p = c * 32 + lane;
            const bool ok = p < n_keys;
            const int64_t base = ok ? kv_slot(table, p) * kv_row + (int64_t)kvh * MMA_HD : 0;
            /* Every load of the chunk in flight before the first FMA. */
            uint4 kv[16], vv[16];
#pragma unroll
            for (int i = 0; i < 16; i++)
                kv[i] = ok ? ss_kv_load8<FP8>(cache.k, cache.ks, base + i * 8, base / MMA_HD) : make_uint4(0, 0, 0, 0);
#pragma unroll
            for (int i = 0; i < 16; i++) {
                const int j = 2 * i + half; /* key of the chunk */
                const int64_t vb = __shfl_sync(0xffffffffu, base, j);
                const bool vok = c * 32 + j < n_keys;
                vv[i] = vok ? ss_kv_load8<FP8>(cache.v, cache.vs, vb + d0, vb / MMA_HD) : make_uint4(0, 0, 0, 0);
            }
            float sc[DEC_HEADS] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int i = 0; i < 16; i++) {
                float kf[8];
                ss_unpack8(kv[i], kf);
#pragma unroll
                for (int hh = 0; hh < DEC_HEADS; hh++) {
                    const float4 qa = *(const float4 *)&qs[hh][i * 8];
                    const float4 qb = *(const float4 *)&qs[hh][i * 8 + 4];
                    sc[hh] += qa.x * kf[0] + qa.y * kf[1] + qa.z * kf[2] + qa.w * kf[3] + qb.x * kf[4] +
                              qb.y * kf[5] + qb.z * kf[6] + qb.w * kf[7];
                }
            }
            float pr[DEC_HEADS];
#pragma unroll
            for (int hh = 0; hh < DEC_HEADS; hh++) {
                const float s = ok ? sc[hh] : -INFINITY;
                const float mn = fmaxf(m[hh], warp_max(s)); /* finite: lane 0's key is visible */
                const float alpha = exp2f(m[hh] - mn);
                pr[hh] = exp2f(s - mn);
                l[hh] = l[hh] * alpha + warp_sum(pr[hh]);
                m[hh] = mn;
#pragma unroll
                for (int i = 0; i < 8; i++)
                    o[hh][i] *= alpha;
            }
#pragma unroll
            for (int i = 0; i < 16; i++) {
                float vf[8];
                ss_unpack8(vv[i], vf);
#pragma unroll
                for (int hh = 0; hh < DEC_HEADS; hh++) {
                    const float pj = __shfl_sync(0xffffffffu, pr[hh], 2 * i + half); /* 0 past n_keys */
#pragma unroll
                    for (int d = 0; d < 8; d++)
                        o[hh][d] += pj * vf[d];
                }
            }
        }
        /* Half-warps hold even / odd keys of the same dims: add them, then
         * merge the warps' partials (a warp without keys has m = -inf, l = 0). */
#pragma unroll
        for (int hh = 0; hh < DEC_HEADS; hh++) {
#pragma unroll
            for (int d = 0; d < 8; d++)
                o[hh][d] += __shfl_xor_sync(0xffffffffu, o[hh][d], 16);
            if (half == 0) {
                *(float4 *)&po[warp][hh][d0] = make_float4(o[hh][0], o[hh][1], o[hh][2], o[hh][3]);
                *(float4 *)&po[warp][hh][d0 + 4] = make_float4(o[hh][4], o[hh][5], o[hh][6], o[hh][7]);
            }
            if (lane == 0)
                pm[warp][hh] = m[hh], pl[warp][hh] = l[hh];
        }
        __syncthreads();
        merge_warp_partials(po, pm, pl, nhp,
                            out + tile.row0 * (int64_t)nh * MMA_HD + (int64_t)(tile.head0 + h0) * MMA_HD);
    }
}

template <bool FP8>
cudaError_t launch_decode2(const uint16_t *qkv, const ss_tok_info *tok, const ss_attn_tile *tiles, int64_t n_tiles,
                           const int32_t *tables, int max_blocks, const ss_kv_layer &cache, int nh, int nkv,
                           uint16_t *out, bool pdl, cudaStream_t stream) {
    const float sl2 = LOG2E / sqrtf((float)MMA_HD);
    return ss_launch(pdl, decode2_kernel<FP8>, dim3((unsigned)n_tiles), dim3(DEC_WARPS * 32), 0, stream, qkv, tok,
                     tiles, tables, max_blocks, cache, nh, nkv, sl2, out);
}
