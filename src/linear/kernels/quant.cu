/* quant_slide and quant_only (SPEC §4).
 *
 * Arithmetic, exactly as ss_quant_act_ref:
 *   a = max(max|x|, 1e-12f)
 *   INT8: inv = 127/a; q = clamp(rintf(x*inv), -128, 127); sa = a/127
 *   FP8 : inv = 448/a; q = e4m3(clamp(x*inv, -448, 448));  sa = a/448
 * Each op is a single IEEE round-to-nearest-even operation (__fdiv_rn,
 * __fmul_rn); e4m3 is __nv_cvt_float_to_fp8(.., __NV_SATFINITE, __NV_E4M3),
 * round to nearest even with saturation, as ss_f32_to_e4m3.
 *
 * Two kernels:
 *   quant_rows_kernel (the default: K % 8 == 0, 16-byte aligned x and q, INT8
 *     or FP8): one block per token row holds the row in registers (V 16-byte
 *     loads per thread, all in flight at once), quantizes every input once,
 *     and either stores it in place (dense, 2_4: the lift is the identity) or
 *     stages the quantized row in shared memory and gathers 16 output bytes
 *     per thread, the group length a compile-time constant so that j / G is a
 *     multiply (the issue-bound part of the older kernels).
 *   quant_rows_norm_kernel: the same with an RMSNorm prologue (the row is
 *     normalized and scaled by gamma in registers before the absmax), so a
 *     linear whose input is an RMSNorm's output reads the row once;
 *     quant_norm_kernel is its any-K / BF16-output fallback (row in shared
 *     memory).
 *   quant_kernel / quant_kernel_pipe (the previous kernels, any K, BF16
 *     output; kept for those cases and as dev variants): one 4-column window
 *     per thread with the group index from a corrected float division.
 */
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_pipeline.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "linear/kernels/kernels.h"
#include "linear/kernels/pdl.cuh"
#include "resid_prologue.cuh"

namespace {

enum QKind { Q_I8 = 0, Q_E4M3 = 1, Q_BF16 = 2 };

__device__ __forceinline__ float bf16_bits_to_f32(uint32_t h) { return __uint_as_float(h << 16); }

__device__ __forceinline__ float block_max(float v, float *red) {
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        int nw = (blockDim.x + 31) >> 5;
        v = lane < nw ? red[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1)
            v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
        if (lane == 0)
            red[0] = v;
    }
    __syncthreads();
    return red[0];
}

template <int Q>
__device__ __forceinline__ uint32_t quantize(uint32_t bits, float inv) {
    float x = bf16_bits_to_f32(bits);
    if (Q == Q_I8) {
        float t = rintf(__fmul_rn(x, inv));
        t = fminf(fmaxf(t, -128.0f), 127.0f);
        return (uint32_t)(uint8_t)(int8_t)(int)t;
    } else if (Q == Q_E4M3) {
        float t = fminf(fmaxf(__fmul_rn(x, inv), -448.0f), 448.0f);
        return (uint32_t)__nv_cvt_float_to_fp8(t, __NV_SATFINITE, __NV_E4M3);
    } else {
        return bits;
    }
}

/* Pass 2, shared by both kernels: one 4-column window per thread. A window's
 * 4 inputs are consecutive and start at an even index, so they are two
 * aligned 32-bit words of the row in shared memory: consecutive threads read
 * consecutive words (no bank conflicts) and write consecutive 4-byte (8-byte
 * for BF16) words. */
template <int Q>
__device__ __forceinline__ void write_row(const uint32_t *__restrict__ row32, const ss_lift_geom &geo,
                                          float inv, uint8_t *__restrict__ qrow) {
    constexpr int ESZ = Q == Q_BF16 ? 2 : 1;
    const int32_t k = (int32_t)geo.k;
    const bool lift = geo.l != 0;
    const uint32_t g = (uint32_t)geo.g, l = (uint32_t)geo.l, k_raw = (uint32_t)geo.k_raw;
    const float inv_g = lift ? 1.0f / (float)g : 0.0f;
    const int nwin = (int)(geo.k_out >> 2);
    for (int w = threadIdx.x; w < nwin; w += blockDim.x) {
        const uint32_t j = (uint32_t)w << 2;
        int32_t s = -1; // first input of this window, -1 = all zero
        if (!lift) {
            if (j < (uint32_t)k)
                s = (int32_t)j;
        } else if (j < k_raw) {
            // j / g through a float reciprocal, corrected to the exact quotient
            uint32_t gi = __float2uint_rz(__uint2float_rn(j) * inv_g);
            while (gi * g > j)
                gi--;
            while ((gi + 1) * g <= j)
                gi++;
            s = (int32_t)(gi * l + ((j - gi * g) >> 1)); // gL + 2 * (r / 4), r = j - gi*g
        }
        uint32_t v[4] = {0u, 0u, 0u, 0u};
        if (s >= 0 && s < k) { // windows past K (zero padding of Kp) read nothing
            const uint32_t a = row32[s >> 1], b = s + 2 < k ? row32[(s >> 1) + 1] : 0u;
            const uint32_t in[4] = {a & 0xffffu, a >> 16, b & 0xffffu, b >> 16};
#pragma unroll
            for (int lane = 0; lane < 4; lane++)
                if (s + lane < k)
                    v[lane] = quantize<Q>(in[lane], inv);
        }
        if (ESZ == 1)
            ((uint32_t *)qrow)[w] = v[0] | (v[1] << 8) | (v[2] << 16) | (v[3] << 24);
        else
            ((uint2 *)qrow)[w] = make_uint2(v[0] | (v[1] << 16), v[2] | (v[3] << 16));
    }
}

/* inv = qmax / a and the token scale a / qmax (quant.h), a = max(amax, 1e-12). */
template <int Q>
__device__ __forceinline__ float token_inv(float amax, int64_t r, float *sa) {
    const float a = fmaxf(amax, 1e-12f);
    float inv = 1.0f;
    if (Q == Q_I8)
        inv = __fdiv_rn(127.0f, a);
    else if (Q == Q_E4M3)
        inv = __fdiv_rn(448.0f, a);
    if (threadIdx.x == 0)
        sa[r] = Q == Q_I8 ? __fdiv_rn(a, 127.0f) : Q == Q_E4M3 ? __fdiv_rn(a, 448.0f) : 1.0f;
    return inv;
}

__device__ __forceinline__ float absmax8(uint4 v, float amax) {
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int e = 0; e < 4; e++) {
        amax = fmaxf(amax, __uint_as_float((w[e] & 0x7fffu) << 16));
        amax = fmaxf(amax, __uint_as_float(w[e] & 0x7fff0000u));
    }
    return amax;
}

/* Q_BF16 output is 2 bytes per element, the others 1. */
template <int Q>
__global__ void quant_kernel(const uint16_t *__restrict__ x, int64_t m, ss_lift_geom geo,
                             bool vec_load, uint8_t *__restrict__ q, float *__restrict__ sa) {
    extern __shared__ uint16_t row[]; // (ceil8(k)) the token's BF16 bits
    __shared__ float red[32];
    constexpr int ESZ = Q == Q_BF16 ? 2 : 1;
    const int64_t r = blockIdx.x;
    uint4 *qrow = (uint4 *)(q + r * geo.k_out * ESZ);
    const int chunks = (int)(geo.k_out * ESZ / 16);
    ss_pdl_wait(); // x is the previous kernel's output; padding rows write q (pdl.cuh)
    ss_pdl_trigger();

    if (r >= m) { // padding rows of the GEMM operand
        for (int c = threadIdx.x; c < chunks; c += blockDim.x)
            qrow[c] = make_uint4(0, 0, 0, 0);
        if (threadIdx.x == 0)
            sa[r] = 0.0f;
        return;
    }

    // pass 1: read the row once (into shared memory) and take its absmax
    const int32_t k = (int32_t)geo.k;
    const uint16_t *xr = x + r * geo.k;
    float amax = 0.0f;
    if (vec_load) {
        const uint4 *xv = (const uint4 *)xr;
        uint4 *rv = (uint4 *)row;
        const int nv = k >> 3;
#pragma unroll 4
        for (int i = threadIdx.x; i < nv; i += blockDim.x) {
            uint4 v = __ldg(xv + i);
            rv[i] = v;
            amax = absmax8(v, amax);
        }
    } else {
        for (int i = threadIdx.x; i < k; i += blockDim.x) {
            uint16_t h = xr[i];
            row[i] = h;
            amax = fmaxf(amax, __uint_as_float((uint32_t)(h & 0x7fffu) << 16));
        }
    }
    amax = block_max(amax, red); // also the barrier that publishes row[]
    const float inv = token_inv<Q>(amax, r, sa);
    write_row<Q>((const uint32_t *)row, geo, inv, (uint8_t *)qrow);
}

/* The pipelined kernel (K a multiple of 8, x 16-byte aligned): persistent
 * blocks walk rows r, r + gridDim.x, ...; the next row is copied into the
 * other half of shared memory (cp.async) while this one is quantized and
 * written, so that reads and writes overlap on every SM instead of
 * alternating wave by wave. Padding rows (m <= r < m_pad) are zero-filled. */
template <int Q>
__global__ void quant_kernel_pipe(const uint16_t *__restrict__ x, int64_t m, int64_t m_pad,
                                  ss_lift_geom geo, uint8_t *__restrict__ q,
                                  float *__restrict__ sa) {
    extern __shared__ uint4 smem4[]; // 2 x (k / 8): double buffer of BF16 rows
    __shared__ float red[32];
    constexpr int ESZ = Q == Q_BF16 ? 2 : 1;
    const int kv = (int)(geo.k >> 3);
    int cur = 0;
    int64_t r = blockIdx.x;
    ss_pdl_wait(); // the first copy reads x, the previous kernel's output (pdl.cuh)
    ss_pdl_trigger();
    if (r < m) {
        const uint4 *src = (const uint4 *)(x + r * geo.k);
        for (int i = threadIdx.x; i < kv; i += blockDim.x)
            __pipeline_memcpy_async(smem4 + i, src + i, 16);
    }
    __pipeline_commit();
    for (; r < m; r += gridDim.x) {
        const int64_t nx = r + gridDim.x;
        uint4 *buf = smem4 + cur * kv;
        if (nx < m) {
            const uint4 *src = (const uint4 *)(x + nx * geo.k);
            uint4 *dst = smem4 + (cur ^ 1) * kv;
            for (int i = threadIdx.x; i < kv; i += blockDim.x)
                __pipeline_memcpy_async(dst + i, src + i, 16);
        }
        __pipeline_commit();
        __pipeline_wait_prior(1); // this thread's copies of row r have landed
        float amax = 0.0f;
        for (int i = threadIdx.x; i < kv; i += blockDim.x)
            amax = absmax8(buf[i], amax);
        amax = block_max(amax, red); // barrier: every thread's copies visible
        const float inv = token_inv<Q>(amax, r, sa);
        write_row<Q>((const uint32_t *)buf, geo, inv, q + r * geo.k_out * ESZ);
        __syncthreads(); // buf is refilled two rows later
        cur ^= 1;
    }
    __pipeline_wait_prior(0);
    const int chunks = (int)(geo.k_out * ESZ / 16);
    for (int64_t pr = m + blockIdx.x; pr < m_pad; pr += gridDim.x) {
        uint4 *qrow = (uint4 *)(q + pr * geo.k_out * ESZ);
        for (int c = threadIdx.x; c < chunks; c += blockDim.x)
            qrow[c] = make_uint4(0, 0, 0, 0);
        if (threadIdx.x == 0)
            sa[pr] = 0.0f;
    }
}

// --- the row-in-registers kernel ----------------------------------------------------------

__device__ __forceinline__ float bf16_lo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }

/* Running max of |x| over two BF16 per word, in BF16 (exact: BF16 -> float
 * preserves order). max.bf16x2 returns the non-NaN operand, as fmaxf does, so
 * NaN inputs are skipped exactly as in the reference. */
__device__ __forceinline__ uint32_t absmax_bf16x2(uint32_t acc, uint32_t w) {
    __nv_bfloat162 a = *reinterpret_cast<__nv_bfloat162 *>(&acc);
    uint32_t aw = w & 0x7fff7fffu;
    __nv_bfloat162 b = *reinterpret_cast<__nv_bfloat162 *>(&aw);
    a = __hmax2(a, b);
    return *reinterpret_cast<uint32_t *>(&a);
}

/* Four BF16 (two words) -> four quantized bytes, element 0 in the low byte.
 *
 * INT8: rintf(t) for |t| < 2^22 is t + 1.5*2^23 in one IEEE add (the sum lies
 * in [2^23, 2^24), where the spacing is 1 and 1.5*2^23 is even, so ties go to
 * even as rintf's do), and the integer is the low byte of the sum's bits. The
 * clamps of the reference reduce to fmaxf(t, -128): |x| <= a and
 * inv = RN(127/a) give |t| <= 127 (1 + 2^-24)^2 < 127.5, so the upper clamp
 * never changes the rounded value and the lower one only catches NaN
 * (fmaxf(NaN, -128) = -128, as in the reference).
 * FP8: likewise |t| <= 448 (1 + 2^-24)^2, which SATFINITE rounds to 448 as the
 * reference does after clamping; fmaxf(t, -448) maps NaN to -448. */
template <int Q> __device__ __forceinline__ uint32_t quant4(uint32_t w0, uint32_t w1, float inv) {
    const float x0 = bf16_lo(w0), x1 = bf16_hi(w0), x2 = bf16_lo(w1), x3 = bf16_hi(w1);
    if (Q == Q_I8) {
        const float magic = 12582912.0f; // 1.5 * 2^23
        const uint32_t t0 = __float_as_uint(__fadd_rn(fmaxf(__fmul_rn(x0, inv), -128.0f), magic));
        const uint32_t t1 = __float_as_uint(__fadd_rn(fmaxf(__fmul_rn(x1, inv), -128.0f), magic));
        const uint32_t t2 = __float_as_uint(__fadd_rn(fmaxf(__fmul_rn(x2, inv), -128.0f), magic));
        const uint32_t t3 = __float_as_uint(__fadd_rn(fmaxf(__fmul_rn(x3, inv), -128.0f), magic));
        return __byte_perm(__byte_perm(t0, t1, 0x0040), __byte_perm(t2, t3, 0x0040), 0x5410);
    } else {
        const float t0 = fmaxf(__fmul_rn(x0, inv), -448.0f), t1 = fmaxf(__fmul_rn(x1, inv), -448.0f);
        const float t2 = fmaxf(__fmul_rn(x2, inv), -448.0f), t3 = fmaxf(__fmul_rn(x3, inv), -448.0f);
        const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(t0, t1), __NV_SATFINITE, __NV_E4M3);
        const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(t2, t3), __NV_SATFINITE, __NV_E4M3);
        return lo | (hi << 16);
    }
}

template <int Q> __device__ __forceinline__ uint2 quant8(uint4 v, float inv) {
    return make_uint2(quant4<Q>(v.x, v.y, inv), quant4<Q>(v.z, v.w, inv));
}

/* Lift modes of quant_rows_kernel: H = L/2 pairs of inputs per group, the
 * group's G/4 = H - 1 output words (4 bytes) each reading pairs w and w + 1.
 * Output word o of the row therefore starts at pair p = o + o / (H - 1). */
enum {
    LIFT_IDENTITY = -1, // dense and 2_4: output byte j is input j
    LIFT_ONE_GROUP = -2, // every output word in group 0 (2_inf, K <= L): p = o
    LIFT_RUNTIME = 0,   // other L: a run-time division
};

/* Static shared memory of the row kernels (red[32] + the norm's part[32]) on top of
 * the dynamic row: a launch whose total passes 48 KB needs the opt-in. */
constexpr size_t kStaticSmemMax = 256;

/* How quant_rows_body gathers a lifted row (see GM there). */
enum { GATHER_AUTO = 0, GATHER_WORDS = 1, GATHER_STAGED = 2 };

/* GATHER_AUTO's choice for H (H3 tiles for 2_6, warp-staged tiles for 2_8 and
 * wider with a compile-time H, per word otherwise). H100, 20 PDL launches in a
 * graph at M 4096, K 2560 (the 85%-of-copy target): per word 83.6 / 84.5 / 85.1%
 * of D2D for 2_8 / 2_10 / 2_16, staged 85.3 / 86.3 / 85.3%; the same or
 * better at M 16384 and K 6912. */
__host__ __device__ constexpr bool staged_auto(int h) { return h >= 4; }

/* Sum over the block, the same value in every thread (blockDim.x a multiple
 * of 32): xor shuffles within a warp (commutative pairs, so every lane holds
 * the same bits), then every thread adds the warp sums in warp order. The
 * RMSNorm prologue's sum of squares; its order differs from the CPU's
 * sequential sum, which is the only difference between the two. */
__device__ __forceinline__ float block_sum_all(float v) {
    __shared__ float part[32];
    for (int o = 16; o > 0; o >>= 1)
        v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, o));
    if ((threadIdx.x & 31) == 0)
        part[threadIdx.x >> 5] = v;
    __syncthreads();
    float s = 0.0f;
    for (int w = 0; w < (int)((blockDim.x + 31) >> 5); w++)
        s = __fadd_rn(s, part[w]);
    return s;
}

/* inv = 1 / sqrt(ss / k + eps), each op one IEEE rounding, as rmsnorm_kernel
 * (src/engine/cuda/ops.cu) and ss_rmsnorm_cpu spell it. */
__device__ __forceinline__ float rms_inv(float ss, int64_t k, float eps) {
    return __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(ss, (float)k), eps)));
}

__device__ __forceinline__ float sumsq8(uint4 v, float ss) {
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int e = 0; e < 4; e++) {
        const float a = bf16_lo(w[e]), b = bf16_hi(w[e]);
        ss = __fadd_rn(ss, __fmul_rn(a, a));
        ss = __fadd_rn(ss, __fmul_rn(b, b));
    }
    return ss;
}

/* Two BF16 of x (one word) -> bf16(gamma * bf16(x * inv)) (HF's rounding
 * points). cvt.rn.bf16x2 rounds to nearest even as ss_f32_to_bf16 does; only
 * a NaN's payload may differ, and every NaN quantizes alike. */
__device__ __forceinline__ uint32_t norm2(uint32_t xw, uint32_t gw, float inv) {
    __nv_bfloat162 h = __floats2bfloat162_rn(__fmul_rn(bf16_lo(xw), inv), __fmul_rn(bf16_hi(xw), inv));
    const uint32_t hw = *reinterpret_cast<uint32_t *>(&h);
    h = __floats2bfloat162_rn(__fmul_rn(bf16_lo(gw), bf16_lo(hw)), __fmul_rn(bf16_hi(gw), bf16_hi(hw)));
    return *reinterpret_cast<uint32_t *>(&h);
}

__device__ __forceinline__ uint4 norm8(uint4 x, uint4 g, float inv) {
    return make_uint4(norm2(x.x, g.x, inv), norm2(x.y, g.y, inv), norm2(x.z, g.z, inv),
                      norm2(x.w, g.w, inv));
}

/* The gather of a lift with H pairs per group (H = L/2, compile time), in
 * tiles: a tile is NG whole groups whose H - 1 output words per group fill
 * whole 16-byte chunks (S = NG (H - 1) words, a multiple of 4) and whose
 * NG H pairs fill whole words of the staged row (NG H even). One thread per
 * tile reads its NQ = NG H / 2 words of the staged row (16-byte loads where
 * NQ % 4 == 0), forms the S words with shifts fixed at compile time, and
 * stores S / 4 chunks. gather_words instead divides, indexes shared memory
 * twice and funnel-shifts by a run-time amount for every output word.
 * Used for H = 3 (2_6) only, where a tile is one chunk, so a warp still
 * stores 512 contiguous bytes: H100, 20 PDL launches in a graph, M 4096
 * K 2560: 84.9% of D2D (85.4% with vecs 4) against 83.5% per word; M 16384
 * and K 6912 gain 0.2-1.1 points. For H > 3 a thread stores S / 4 > 1 chunks
 * S * 4 bytes apart, so every store instruction writes half sectors: measured
 * 2_8 74.8%, 2_10 84.0%, 2_16 55.2% against 83.4 / 84.4 / 84.9% per word;
 * those patterns keep gather_words. */
__host__ __device__ constexpr int tile_groups(int h) { return (h - 1) % 4 == 0 ? (h % 2 ? 2 : 1) : (h - 1) % 2 == 0 ? 2 : 4; }

/* Tile s of the staged row: its NQ words into w. */
template <int H, int NQ>
__device__ __forceinline__ void tile_load(const uint32_t *__restrict__ qw, int s, uint32_t (&w)[NQ]) {
    if (NQ % 4 == 0) {
#pragma unroll
        for (int i = 0; i < NQ / 4; i++) {
            const uint4 a = ((const uint4 *)qw)[s * (NQ / 4) + i];
            w[4 * i] = a.x, w[4 * i + 1] = a.y, w[4 * i + 2] = a.z, w[4 * i + 3] = a.w;
        }
    } else {
#pragma unroll
        for (int i = 0; i < NQ; i++)
            w[i] = qw[s * NQ + i];
    }
}

/* Chunk k of tile s (S words), words from K'raw on zero. */
template <int H, int S, int NQ>
__device__ __forceinline__ uint4 tile_chunk(const uint32_t (&w)[NQ], int s, int k, uint32_t words_raw) {
    uint32_t o4[4];
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const int wl = 4 * k + j, p = wl / (H - 1) * H + wl % (H - 1); // pair of word wl
        // p + 1 < NG H always (the last word of a group ends one pair early)
        const uint32_t val = p & 1 ? __funnelshift_r(w[p >> 1], w[(p >> 1) + 1], 16) : w[p >> 1];
        o4[j] = (uint32_t)(s * S + wl) < words_raw ? val : 0u; // K'raw .. K' is zero
    }
    return make_uint4(o4[0], o4[1], o4[2], o4[3]);
}

/* STAGED (dev variant): the chunks of a warp's 32 tiles go to the warp's
 * stage in shared memory (32 S / 4 chunks, after the staged row) and the
 * warp stores them as contiguous chunks, so that every store instruction
 * writes whole sectors as the per-word gather's do, for every H. Measured:
 * staged_auto above. */
template <int H, bool STAGED>
__device__ __forceinline__ void gather_tiles(const uint32_t *__restrict__ qw, uint32_t words_raw,
                                             int kout, uint8_t *__restrict__ qrow,
                                             uint4 *__restrict__ stage) {
    constexpr int NG = tile_groups(H), S = NG * (H - 1), NQ = NG * H / 2, C = S / 4;
    static_assert(S % 4 == 0 && (NG * H) % 2 == 0, "a tile is whole chunks and whole words");
    const int t = threadIdx.x, nt = blockDim.x, nchunk = kout / 16;
    const int ntile = (int)((words_raw + S - 1) / S);
    uint4 *q4 = (uint4 *)qrow;
    if (!STAGED) {
        for (int s = t; s < ntile; s += nt) {
            uint32_t w[NQ];
            tile_load<H>(qw, s, w);
#pragma unroll
            for (int k = 0; k < C; k++) {
                const uint4 o = tile_chunk<H, S>(w, s, k, words_raw);
                if (s * C + k < nchunk)
                    q4[s * C + k] = o;
            }
        }
    } else {
        const int lane = t & 31;
        uint4 *st = stage + (t >> 5) * 32 * C;
#pragma unroll 1
        for (int s0 = t - lane; s0 < ntile; s0 += nt) { // the warp's tiles s0 .. s0 + 31
            const int s = s0 + lane;
            if (s < ntile) {
                uint32_t w[NQ];
                tile_load<H>(qw, s, w);
#pragma unroll
                for (int k = 0; k < C; k++)
                    st[lane * C + k] = tile_chunk<H, S>(w, s, k, words_raw);
            }
            __syncwarp();
            const int n = (ntile - s0 < 32 ? ntile - s0 : 32) * C;
#pragma unroll 1
            for (int j = lane; j < n; j += 32)
                if (s0 * C + j < nchunk)
                    q4[s0 * C + j] = st[j];
            __syncwarp(); // the stage is refilled by the warp's next tiles
        }
    }
    for (int c = ntile * C + t; c < nchunk; c += nt)
        q4[c] = make_uint4(0, 0, 0, 0);
}

/* The per-word gather: every H but 3 by default. */
template <int H>
__device__ __forceinline__ void gather_words(const uint32_t *__restrict__ qw, uint32_t words_raw,
                                             int hm1, int kout, uint8_t *__restrict__ qrow) {
    const int t = threadIdx.x, nt = blockDim.x;
    for (int c = t; c < kout / 16; c += nt) {
        uint32_t o4[4];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const uint32_t o = 4 * c + j;
            const uint32_t g = H == LIFT_ONE_GROUP ? 0
                               : H == LIFT_RUNTIME ? o / (uint32_t)hm1
                                                   : o / (uint32_t)(H > 1 ? H - 1 : 1);
            const uint32_t p = o + g;
            o4[j] = 0u; // K'raw .. K' is zero (and its p may lie past the staged row)
            if (o < words_raw)
                o4[j] = __funnelshift_r(qw[p >> 1], qw[(p >> 1) + 1], (p & 1) << 4);
        }
        ((uint4 *)qrow)[c] = make_uint4(o4[0], o4[1], o4[2], o4[3]);
    }
}

/* One block per row r of x (rows >= m: zero row, sa = 0). Thread t holds the
 * 16-byte vectors t, t + T, ... (V of them, T = blockDim.x, T * V >= K / 8).
 * Shared memory (lifted modes): the quantized row, zero from K up to Kp + 68
 * bytes, so that every pair a gather reads exists (a tile may end up to
 * 2H(NG - 1) <= 48 bytes past Kp).
 * GM, the gather of lifted rows: GATHER_AUTO (tiles for H = 3, warp-staged
 * tiles for H >= 4, per word for a run-time H: staged_auto), GATHER_WORDS (per
 * word), GATHER_STAGED (warp-staged tiles, H >= 3); the last two are dev
 * variants.
 * PRO, the prologue: PRO_NORM replaces the row in registers by its RMSNorm
 * times gamma (k, 16-byte aligned); PRO_RESID first builds the row as the
 * residual stream plus the previous projection's dequantized output (ep,
 * resid_prologue.cuh) and stores it back, then normalizes as PRO_NORM (x is
 * then unused: the row is ep->resid's). The plain kernel instantiates
 * PRO_NONE and is the code it was before the prologues existed. */
enum { PRO_NONE = 0, PRO_NORM = 1, PRO_RESID = 2 };

template <int Q, int H, int V, int PRO, int GM>
__device__ __forceinline__ void quant_rows_body(const uint4 *__restrict__ x, int64_t m,
                                                const ss_lift_geom &geo, int hm1, int nz,
                                                uint8_t *__restrict__ q, float *__restrict__ sa,
                                                const uint4 *__restrict__ gamma, float eps,
                                                const resid_epi *ep = nullptr) {
    extern __shared__ uint4 qrow_s[]; // (ceil16(Kp + 4) / 16) quantized row, lifted modes
    __shared__ float red[32];
    const int t = threadIdx.x, nt = blockDim.x;
    const int nv = (int)(geo.k >> 3), kout = (int)geo.k_out;
    const int64_t r = blockIdx.x;
    uint8_t *qrow = q + r * geo.k_out;
#if __CUDA_ARCH__ >= 900
    // Programmatic dependent launch: a following kernel launched with the
    // attribute may be scheduled from now on (it waits for us itself); when
    // this one was launched with it, wait for the previous grid to finish and
    // flush before touching memory (a no-op otherwise).
    asm volatile("griddepcontrol.launch_dependents;");
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
    if (r >= m) { // padding rows of the GEMM operand
        for (int c = t; c < kout / 16; c += nt)
            ((uint4 *)qrow)[c] = make_uint4(0, 0, 0, 0);
        if (t == 0)
            sa[r] = 0.0f;
        return;
    }
    uint4 v[V];
    if (PRO == PRO_RESID) { // the row is written back: plain loads, resid may alias nothing else
        uint4 *xr = ep->resid + r * nv;
#pragma unroll
        for (int i = 0; i < V; i++)
            v[i] = t + i * nt < nv ? xr[t + i * nt] : make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int i = 0; i < V; i++) // every load of d before the first store to resid
            if (t + i * nt < nv)
                v[i] = resid_add8(*ep, r, (int64_t)(t + i * nt) * 8, v[i]);
#pragma unroll
        for (int i = 0; i < V; i++)
            if (t + i * nt < nv)
                xr[t + i * nt] = v[i];
    } else {
        const uint4 *xr = x + r * nv;
#pragma unroll
        for (int i = 0; i < V; i++) // all loads issued before the first use
            v[i] = t + i * nt < nv ? __ldcs(xr + t + i * nt) : make_uint4(0, 0, 0, 0);
    }
    if (PRO != PRO_NONE) { // vectors past K are zero: they add nothing and stay zero
        float ss = 0.0f;
#pragma unroll
        for (int i = 0; i < V; i++)
            ss = sumsq8(v[i], ss);
        const float inv = rms_inv(block_sum_all(ss), geo.k, eps);
#pragma unroll
        for (int i = 0; i < V; i++)
            if (t + i * nt < nv)
                v[i] = norm8(v[i], __ldg(gamma + t + i * nt), inv);
    }
    uint32_t mx = 0;
#pragma unroll
    for (int i = 0; i < V; i++) {
        mx = absmax_bf16x2(mx, v[i].x);
        mx = absmax_bf16x2(mx, v[i].y);
        mx = absmax_bf16x2(mx, v[i].z);
        mx = absmax_bf16x2(mx, v[i].w);
    }
    float amax = fmaxf(bf16_lo(mx), bf16_hi(mx));
    for (int o = 16; o > 0; o >>= 1)
        amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    if ((t & 31) == 0)
        red[t >> 5] = amax;
    __syncthreads();
    for (int w = 0; w < (nt + 31) >> 5; w++) // every thread reads the few warp maxima
        amax = fmaxf(amax, red[w]);
    const float inv = token_inv<Q>(amax, r, sa);

    if (H == LIFT_IDENTITY) {
#pragma unroll
        for (int i = 0; i < V; i++)
            if (t + i * nt < nv)
                ((uint2 *)qrow)[t + i * nt] = quant8<Q>(v[i], inv);
        for (int u = nv + t; u < kout / 8; u += nt) // K .. K' is zero
            ((uint2 *)qrow)[u] = make_uint2(0, 0);
        return;
    }
    uint2 *qs = (uint2 *)qrow_s;
#pragma unroll
    for (int i = 0; i < V; i++)
        if (t + i * nt < nv)
            qs[t + i * nt] = quant8<Q>(v[i], inv);
    for (int u = nv + t; u < nz; u += nt) // nz = ceil8(Kp + 68) / 8
        qs[u] = make_uint2(0, 0);
    __syncthreads();
    const uint32_t *qw = (const uint32_t *)qrow_s;
    const uint32_t words_raw = (uint32_t)(geo.k_raw >> 2);
    if ((GM == GATHER_STAGED && H >= 3) || (GM == GATHER_AUTO && staged_auto(H)))
        gather_tiles<H >= 3 ? H : 3, true>(qw, words_raw, kout, qrow, qrow_s + (nz * 8 + 15) / 16);
    else if (GM == GATHER_AUTO && H == 3)
        gather_tiles<3, false>(qw, words_raw, kout, qrow, nullptr);
    else
        gather_words<H>(qw, words_raw, hm1, kout, qrow);
}

template <int Q, int H, int V, int GM>
__global__ void __launch_bounds__(1024)
quant_rows_kernel(const uint4 *__restrict__ x, int64_t m, ss_lift_geom geo, int hm1, int nz,
                  uint8_t *__restrict__ q, float *__restrict__ sa) {
    quant_rows_body<Q, H, V, PRO_NONE, GM>(x, m, geo, hm1, nz, q, sa, nullptr, 0.0f);
}

/* quant_rows_kernel with the RMSNorm prologue (gamma (k) BF16, eps). */
template <int Q, int H, int V>
__global__ void __launch_bounds__(1024)
quant_rows_norm_kernel(const uint4 *__restrict__ x, int64_t m, ss_lift_geom geo, int hm1, int nz,
                       uint8_t *__restrict__ q, float *__restrict__ sa,
                       const uint4 *__restrict__ gamma, float eps) {
    quant_rows_body<Q, H, V, PRO_NORM, GATHER_AUTO>(x, m, geo, hm1, nz, q, sa, gamma, eps);
}

/* quant_rows_norm_kernel with the residual prologue: the row is ep.resid's
 * row plus the previous projection's dequantized output, stored back. */
template <int Q, int H, int V>
__global__ void __launch_bounds__(1024)
quant_rows_resid_kernel(int64_t m, ss_lift_geom geo, int hm1, int nz, uint8_t *__restrict__ q,
                        float *__restrict__ sa, const uint4 *__restrict__ gamma, float eps,
                        resid_epi ep) {
    quant_rows_body<Q, H, V, PRO_RESID, GATHER_AUTO>(nullptr, m, geo, hm1, nz, q, sa, gamma, eps, &ep);
}

/* gamma == NULL: the plain kernel; else the one with the RMSNorm prologue.
 * GM: the gather (plain kernel only; the norm kernel takes GATHER_AUTO). */
template <int Q, int H, int V, int GM>
cudaError_t launch_rows_v(const uint16_t *x, const uint16_t *gamma, float eps, int64_t m_pad,
                          int64_t m, ss_lift_geom geo, void *q, float *sa, int threads, bool pdl,
                          cudaStream_t stream, const resid_epi *ep) {
    size_t smem = 0;
    int nz = 0;
    if (H != LIFT_IDENTITY) {
        const int64_t kp = geo.k_raw / geo.g * geo.l; // Kp = (K'raw / G) * L
        smem = (size_t)((kp + 68 + 15) / 16 * 16);
        nz = (int)((kp + 68 + 7) / 8);
        if ((GM == GATHER_STAGED && H >= 3) || (GM == GATHER_AUTO && staged_auto(H))) // the warps' stages
            smem = (size_t)(nz * 8 + 15) / 16 * 16 +
                   (size_t)threads * 4 * (size_t)(tile_groups(H) * (H - 1));
        if (smem + kStaticSmemMax > 48 * 1024) {
            cudaError_t e = ep ? cudaFuncSetAttribute(quant_rows_resid_kernel<Q, H, V>,
                                                      cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                      (int)smem)
                            : gamma ? cudaFuncSetAttribute(quant_rows_norm_kernel<Q, H, V>,
                                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                         (int)smem)
                                  : cudaFuncSetAttribute(quant_rows_kernel<Q, H, V, GM>,
                                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                         (int)smem);
            if (e != cudaSuccess)
                return e;
        }
    }
    const dim3 grid((unsigned)m_pad), block((unsigned)threads);
    if (ep)
        return ss_launch(pdl, quant_rows_resid_kernel<Q, H, V>, grid, block, smem, stream, m, geo,
                         geo.g / 4, nz, (uint8_t *)q, sa, (const uint4 *)gamma, eps, *ep);
    if (gamma)
        return ss_launch(pdl, quant_rows_norm_kernel<Q, H, V>, grid, block, smem, stream,
                         (const uint4 *)x, m, geo, geo.g / 4, nz, (uint8_t *)q, sa,
                         (const uint4 *)gamma, eps);
    return ss_launch(pdl, quant_rows_kernel<Q, H, V, GM>, grid, block, smem, stream, (const uint4 *)x,
                     m, geo, geo.g / 4, nz, (uint8_t *)q, sa);
}

template <int Q, int H>
cudaError_t launch_rows_h(const uint16_t *x, const uint16_t *gamma, float eps, int64_t m,
                          int64_t m_pad, ss_lift_geom geo, void *q, float *sa, int vecs, bool pdl,
                          int gm, cudaStream_t stream, const resid_epi *ep) {
    const int64_t nv = geo.k / 8;
    const int threads = (int)((nv + vecs - 1) / vecs + 31) / 32 * 32;
    if (threads > 1024)
        return cudaErrorInvalidValue;
    // a mode that runs the GATHER_AUTO code for this H instantiates nothing more
    if ((gm == GATHER_WORDS && H < 3) || (gm == GATHER_STAGED && H != 3) || gamma)
        gm = GATHER_AUTO;
#define SS_V(V)                                                                                   \
    (gm == GATHER_WORDS                                                                           \
         ? launch_rows_v<Q, H, V, H >= 3 ? GATHER_WORDS : GATHER_AUTO>(x, gamma, eps, m_pad, m,   \
                                                                       geo, q, sa, threads, pdl,  \
                                                                       stream, ep)                    \
     : gm == GATHER_STAGED                                                                        \
         ? launch_rows_v<Q, H, V, H == 3 ? GATHER_STAGED : GATHER_AUTO>(x, gamma, eps, m_pad, m,  \
                                                                        geo, q, sa, threads, pdl, \
                                                                        stream, ep)                   \
         : launch_rows_v<Q, H, V, GATHER_AUTO>(x, gamma, eps, m_pad, m, geo, q, sa, threads, pdl, \
                                               stream, ep))
    switch (vecs) {
    case 1: return SS_V(1);
    case 2: return SS_V(2);
    case 4: return SS_V(4);
    case 8: return SS_V(8);
    default: return cudaErrorInvalidValue;
    }
#undef SS_V
}

/* Can quant_rows_kernel take this call? (gamma: NULL, or 16-byte aligned) */
bool rows_kernel_fits(ss_dtype qdt, const uint16_t *x, ss_lift_geom geo, const void *q,
                      const uint16_t *gamma = nullptr) {
    return (qdt == SS_DTYPE_I8 || qdt == SS_DTYPE_F8_E4M3) && geo.k > 0 && geo.k % 8 == 0 &&
           (uintptr_t)x % 16 == 0 && (uintptr_t)q % 16 == 0 && (uintptr_t)gamma % 16 == 0 &&
           geo.k <= 8 * 1024 * 8;
}

/* vecs = 0: the automatic choice, the fewest vectors per thread with at most
 * 256 threads per row (K = 2560: 2 x 160; K = 6912: 4 x 224), so that short
 * blocks keep several rows per SM in flight. */
template <int Q>
cudaError_t launch_rows(const uint16_t *x, const uint16_t *gamma, float eps, int64_t m,
                        int64_t m_pad, ss_lift_geom geo, void *q, float *sa, int vecs, bool pdl,
                        cudaStream_t stream, int gm = GATHER_AUTO, const resid_epi *ep = nullptr) {
    if (m_pad <= 0)
        return cudaSuccess;
    if (vecs == 0)
        for (vecs = 1; vecs < 8 && geo.k / 8 > 256 * (int64_t)vecs; vecs *= 2) {
        }
#define SS_ROWS(H) launch_rows_h<Q, H>(x, gamma, eps, m, m_pad, geo, q, sa, vecs, pdl, gm, stream, ep)
    if (geo.l == 0 || geo.l == 4)
        return SS_ROWS(LIFT_IDENTITY);
    if (geo.k_raw <= geo.g)
        return SS_ROWS(LIFT_ONE_GROUP);
    switch (geo.l) {
    case 6: return SS_ROWS(3);
    case 8: return SS_ROWS(4);
    case 10: return SS_ROWS(5);
    case 12: return SS_ROWS(6);
    case 14: return SS_ROWS(7);
    case 16: return SS_ROWS(8);
    default: return SS_ROWS(LIFT_RUNTIME);
    }
#undef SS_ROWS
}

// --- the fused fallback: any K, any alignment, BF16 output -------------------------------

/* ss_f32_to_bf16 bit for bit (NaN payload included: the BF16 output keeps it). */
__device__ __forceinline__ uint16_t f32_to_bf16_bits(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* RMSNorm + quant(+lift) for the calls quant_rows_norm_kernel cannot take:
 * one block per row; the row is staged in shared memory, normalized there in
 * place (h = bf16(gamma * bf16(x * inv))), then quantized and lifted by
 * write_row as quant_kernel does. No scratch buffer, so a CUDA graph sees the
 * same addresses as with the row kernel. */
template <int Q>
__global__ void quant_norm_kernel(const uint16_t *__restrict__ x, const uint16_t *__restrict__ gamma,
                                  float eps, int64_t m, ss_lift_geom geo, uint8_t *__restrict__ q,
                                  float *__restrict__ sa) {
    extern __shared__ uint16_t row[]; // (ceil8(k)) the token's BF16 bits, then its norm
    __shared__ float red[32];
    constexpr int ESZ = Q == Q_BF16 ? 2 : 1;
    const int64_t r = blockIdx.x;
    uint4 *qrow = (uint4 *)(q + r * geo.k_out * ESZ);
    ss_pdl_wait(); // x is the previous kernel's output; padding rows write q (pdl.cuh)
    ss_pdl_trigger();
    if (r >= m) { // padding rows of the GEMM operand
        for (int c = threadIdx.x; c < (int)(geo.k_out * ESZ / 16); c += blockDim.x)
            qrow[c] = make_uint4(0, 0, 0, 0);
        if (threadIdx.x == 0)
            sa[r] = 0.0f;
        return;
    }
    const int32_t k = (int32_t)geo.k;
    const uint16_t *xr = x + r * geo.k;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < k; i += blockDim.x) {
        const uint16_t h = xr[i];
        const float f = bf16_lo(h);
        row[i] = h;
        ss = __fadd_rn(ss, __fmul_rn(f, f));
    }
    const float inv = rms_inv(block_sum_all(ss), geo.k, eps); // its barrier publishes row[]
    float amax = 0.0f;
    for (int i = threadIdx.x; i < k; i += blockDim.x) {
        const float hn = bf16_lo(f32_to_bf16_bits(__fmul_rn(bf16_lo(row[i]), inv)));
        const uint16_t h = f32_to_bf16_bits(__fmul_rn(bf16_lo(gamma[i]), hn));
        row[i] = h;
        amax = fmaxf(amax, bf16_lo(h & 0x7fffu));
    }
    amax = block_max(amax, red); // also the barrier that publishes the normed row
    const float tinv = token_inv<Q>(amax, r, sa);
    write_row<Q>((const uint32_t *)row, geo, tinv, (uint8_t *)qrow);
}

template <int Q>
cudaError_t launch_norm_simple(const uint16_t *x, const uint16_t *gamma, float eps, int64_t m,
                               int64_t m_pad, ss_lift_geom geo, void *q, float *sa, bool pdl,
                               cudaStream_t stream) {
    if (m_pad <= 0)
        return cudaSuccess;
    const size_t row_bytes = (size_t)((geo.k + 7) / 8 * 8) * sizeof(uint16_t);
    const int threads = geo.k_out / 4 > 2048 ? 256 : 128;
    if (row_bytes > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(quant_norm_kernel<Q>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)row_bytes);
        if (e != cudaSuccess)
            return e;
    }
    return ss_launch(pdl, quant_norm_kernel<Q>, dim3((unsigned)m_pad), dim3(threads), row_bytes, stream, x, gamma,
                     eps, m, geo, (uint8_t *)q, sa);
}

template <int Q>
cudaError_t launch(const uint16_t *x, int64_t m, int64_t m_pad, ss_lift_geom geo, void *q,
                   float *sa, int threads, bool pdl, cudaStream_t stream) {
    if (m_pad <= 0)
        return cudaSuccess;
    const bool vec = (geo.k % 8) == 0 && ((uintptr_t)x % 16) == 0;
    const size_t row_bytes = (size_t)((geo.k + 7) / 8 * 8) * sizeof(uint16_t);
    const bool row_kernel = threads < 0 || !vec || 2 * row_bytes > 200 * 1024;
    threads = threads < 0 ? -threads : threads;
    if (threads == 0) // a few windows per thread; small blocks keep many rows in flight
        threads = geo.k_out / 4 > 2048 ? 256 : 128;
    cudaError_t e = cudaSuccess;
    if (!row_kernel) {
        const size_t smem = 2 * row_bytes;
        if (smem + kStaticSmemMax > 48 * 1024)
            e = cudaFuncSetAttribute(quant_kernel_pipe<Q>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        int dev = 0, sms = 0, per_sm = 0;
        if (e == cudaSuccess)
            e = cudaGetDevice(&dev);
        if (e == cudaSuccess)
            e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
        if (e == cudaSuccess)
            e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, quant_kernel_pipe<Q>,
                                                              threads, smem);
        if (e != cudaSuccess)
            return e;
        int64_t grid = (int64_t)sms * (per_sm > 0 ? per_sm : 1);
        if (grid > m_pad)
            grid = m_pad;
        return ss_launch(pdl, quant_kernel_pipe<Q>, dim3((unsigned)grid), dim3(threads), smem, stream, x, m, m_pad,
                         geo, (uint8_t *)q, sa);
    }
    if (row_bytes > 48 * 1024)
        e = cudaFuncSetAttribute(quant_kernel<Q>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)row_bytes);
    if (e != cudaSuccess)
        return e;
    return ss_launch(pdl, quant_kernel<Q>, dim3((unsigned)m_pad), dim3(threads), row_bytes, stream, x, m, geo, vec,
                     (uint8_t *)q, sa);
}

} // namespace

extern "C" cudaError_t ss_kernel_quant_pdl(ss_dtype qdt, const uint16_t *x, int64_t m,
                                           int64_t m_pad, ss_lift_geom geo, void *q, float *sa,
                                           int threads, int pdl, cudaStream_t stream) {
    // 32-bit column indices inside the kernel (the lift map is int32 too)
    if (geo.k_out % 32 != 0 || m < 0 || m_pad < m || geo.k_out >= INT32_MAX / 2 ||
        geo.k >= INT32_MAX / 2 || (geo.l != 0 && (geo.g <= 0 || geo.g % 4 != 0)))
        return cudaErrorInvalidValue;
    if (threads == 0 && rows_kernel_fits(qdt, x, geo, q))
        return qdt == SS_DTYPE_I8 ? launch_rows<Q_I8>(x, nullptr, 0.0f, m, m_pad, geo, q, sa, 0, pdl != 0, stream)
                                  : launch_rows<Q_E4M3>(x, nullptr, 0.0f, m, m_pad, geo, q, sa, 0, pdl != 0, stream);
    switch (qdt) {
    case SS_DTYPE_I8: return launch<Q_I8>(x, m, m_pad, geo, q, sa, threads, pdl != 0, stream);
    case SS_DTYPE_F8_E4M3: return launch<Q_E4M3>(x, m, m_pad, geo, q, sa, threads, pdl != 0, stream);
    case SS_DTYPE_BF16: return launch<Q_BF16>(x, m, m_pad, geo, q, sa, threads, pdl != 0, stream);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t ss_kernel_quant(ss_dtype qdt, const uint16_t *x, int64_t m, int64_t m_pad,
                                       ss_lift_geom geo, void *q, float *sa, int threads,
                                       cudaStream_t stream) {
    return ss_kernel_quant_pdl(qdt, x, m, m_pad, geo, q, sa, threads, 0, stream);
}

extern "C" cudaError_t ss_kernel_quant_vecs(ss_dtype qdt, const uint16_t *x, int64_t m,
                                            int64_t m_pad, ss_lift_geom geo, void *q, float *sa,
                                            int vecs, int pdl, cudaStream_t stream) {
    if (geo.k_out % 32 != 0 || m < 0 || m_pad < m || geo.k_out >= INT32_MAX / 2 ||
        (geo.l != 0 && (geo.g <= 0 || geo.g % 4 != 0)) || !rows_kernel_fits(qdt, x, geo, q))
        return cudaErrorInvalidValue;
    return qdt == SS_DTYPE_I8 ? launch_rows<Q_I8>(x, nullptr, 0.0f, m, m_pad, geo, q, sa, vecs, pdl != 0, stream)
                              : launch_rows<Q_E4M3>(x, nullptr, 0.0f, m, m_pad, geo, q, sa, vecs, pdl != 0, stream);
}

extern "C" int ss_kernel_quant_rows_fit(ss_dtype qdt, const uint16_t *x, const uint16_t *gamma,
                                        ss_lift_geom geo, const void *q) {
    return rows_kernel_fits(qdt, x, geo, q, gamma) ? 1 : 0;
}

extern "C" cudaError_t ss_kernel_quant_rmsnorm(ss_dtype qdt, const uint16_t *x,
                                               const uint16_t *gamma, float eps, int64_t m,
                                               int64_t m_pad, ss_lift_geom geo, void *q,
                                               float *sa, int vecs, int pdl,
                                               cudaStream_t stream) {
    if (!gamma || geo.k_out % 32 != 0 || m < 0 || m_pad < m || geo.k_out >= INT32_MAX / 2 ||
        geo.k >= INT32_MAX / 2 || (geo.l != 0 && (geo.g <= 0 || geo.g % 4 != 0)))
        return cudaErrorInvalidValue;
    if (vecs >= 0 && rows_kernel_fits(qdt, x, geo, q, gamma)) {
        auto rows = qdt == SS_DTYPE_I8 ? launch_rows<Q_I8> : launch_rows<Q_E4M3>;
        cudaError_t e = rows(x, gamma, eps, m, m_pad, geo, q, sa, vecs, pdl != 0, stream, GATHER_AUTO, nullptr);
        if (e == cudaErrorInvalidValue && vecs != 0) // this vecs needs > 1024 threads
            e = rows(x, gamma, eps, m, m_pad, geo, q, sa, 0, pdl != 0, stream, GATHER_AUTO, nullptr);
        return e;
    }
    switch (qdt) {
    case SS_DTYPE_I8: return launch_norm_simple<Q_I8>(x, gamma, eps, m, m_pad, geo, q, sa, pdl != 0, stream);
    case SS_DTYPE_F8_E4M3:
        return launch_norm_simple<Q_E4M3>(x, gamma, eps, m, m_pad, geo, q, sa, pdl != 0, stream);
    case SS_DTYPE_BF16:
        return launch_norm_simple<Q_BF16>(x, gamma, eps, m, m_pad, geo, q, sa, pdl != 0, stream);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t ss_kernel_residual_quant_rmsnorm(
    ss_dtype ddt, const void *d, int64_t ldd, const float *sa_in, const float *sb, int sb_per_channel,
    const uint16_t *bias, uint16_t *resid, ss_dtype qdt, const uint16_t *gamma, float eps, int64_t m,
    int64_t m_pad, ss_lift_geom geo, void *q, float *sa, int vecs, int pdl, cudaStream_t stream) {
    const resid_epi ep = {d, ldd, ddt == SS_DTYPE_I32 ? 0 : ddt == SS_DTYPE_F32 ? 1 : ddt == SS_DTYPE_BF16 ? 2 : -1,
                          sa_in, sb, sb_per_channel, bias, (uint4 *)resid};
    if (!gamma || vecs < 0 || geo.k_out % 32 != 0 || m < 0 || m_pad < m ||
        geo.k_out >= INT32_MAX / 2 || (geo.l != 0 && (geo.g <= 0 || geo.g % 4 != 0)) ||
        !rows_kernel_fits(qdt, resid, geo, q, gamma) || !resid_epi_fits(ep, geo.k))
        return cudaErrorInvalidValue;
    auto rows = qdt == SS_DTYPE_I8 ? launch_rows<Q_I8> : launch_rows<Q_E4M3>;
    cudaError_t e = rows(nullptr, gamma, eps, m, m_pad, geo, q, sa, vecs, pdl != 0, stream, GATHER_AUTO, &ep);
    if (e == cudaErrorInvalidValue && vecs != 0) // this vecs needs > 1024 threads
        e = rows(nullptr, gamma, eps, m, m_pad, geo, q, sa, 0, pdl != 0, stream, GATHER_AUTO, &ep);
    return e;
}

/* The dev variants' launch: the row kernel with gather gm, no norm. */
static cudaError_t quant_rows_variant(ss_dtype qdt, const uint16_t *x, int64_t m, int64_t m_pad,
                                      ss_lift_geom geo, void *q, float *sa, int vecs, int pdl,
                                      cudaStream_t stream, int gm) {
    if (geo.k_out % 32 != 0 || m < 0 || m_pad < m || geo.k_out >= INT32_MAX / 2 ||
        (geo.l != 0 && (geo.g <= 0 || geo.g % 4 != 0)) || !rows_kernel_fits(qdt, x, geo, q))
        return cudaErrorInvalidValue;
    return qdt == SS_DTYPE_I8
               ? launch_rows<Q_I8>(x, nullptr, 0.0f, m, m_pad, geo, q, sa, vecs, pdl != 0, stream, gm)
               : launch_rows<Q_E4M3>(x, nullptr, 0.0f, m, m_pad, geo, q, sa, vecs, pdl != 0, stream, gm);
}

extern "C" cudaError_t ss_kernel_quant_gather(ss_dtype qdt, const uint16_t *x, int64_t m,
                                              int64_t m_pad, ss_lift_geom geo, void *q, float *sa,
                                              int vecs, int pdl, cudaStream_t stream) {
    return quant_rows_variant(qdt, x, m, m_pad, geo, q, sa, vecs, pdl, stream, GATHER_WORDS);
}

extern "C" cudaError_t ss_kernel_quant_staged(ss_dtype qdt, const uint16_t *x, int64_t m,
                                              int64_t m_pad, ss_lift_geom geo, void *q, float *sa,
                                              int vecs, int pdl, cudaStream_t stream) {
    return quant_rows_variant(qdt, x, m, m_pad, geo, q, sa, vecs, pdl, stream, GATHER_STAGED);
}
