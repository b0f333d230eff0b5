/* quant_slide and quant_only (SPEC §4): one block per token row reads the row
 * once into shared memory while taking its absmax, then writes the quantized,
 * lifted (or just padded) row window by window (4 columns) and the per-token
 * scale.
 *
 * Arithmetic, exactly as ss_quant_act_ref:
 *   a = max(max|x|, 1e-12f)
 *   INT8: inv = 127/a; q = clamp(rintf(x*inv), -128, 127); sa = a/127
 *   FP8 : inv = 448/a; q = e4m3(clamp(x*inv, -448, 448));  sa = a/448
 * Each op is a single IEEE round-to-nearest-even operation (__fdiv_rn,
 * __fmul_rn); e4m3 is __nv_cvt_float_to_fp8(.., __NV_SATFINITE, __NV_E4M3),
 * round to nearest even with saturation, as ss_f32_to_e4m3.
 */
#include <cuda_fp8.h>
#include <cuda_pipeline.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "linear/kernels/kernels.h"

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

template <int Q>
cudaError_t launch(const uint16_t *x, int64_t m, int64_t m_pad, ss_lift_geom geo, void *q,
                   float *sa, int threads, cudaStream_t stream) {
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
        if (smem > 48 * 1024)
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
        quant_kernel_pipe<Q><<<(unsigned)grid, threads, smem, stream>>>(x, m, m_pad, geo,
                                                                        (uint8_t *)q, sa);
        return cudaGetLastError();
    }
    if (row_bytes > 48 * 1024)
        e = cudaFuncSetAttribute(quant_kernel<Q>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)row_bytes);
    if (e != cudaSuccess)
        return e;
    quant_kernel<Q><<<(unsigned)m_pad, threads, row_bytes, stream>>>(x, m, geo, vec,
                                                                     (uint8_t *)q, sa);
    return cudaGetLastError();
}

} // namespace

extern "C" cudaError_t ss_kernel_quant(ss_dtype qdt, const uint16_t *x, int64_t m, int64_t m_pad,
                                       ss_lift_geom geo, void *q, float *sa, int threads,
                                       cudaStream_t stream) {
    // 32-bit column indices inside the kernel (the lift map is int32 too)
    if (geo.k_out % 32 != 0 || m < 0 || m_pad < m || geo.k_out >= INT32_MAX / 2 ||
        geo.k >= INT32_MAX / 2 || (geo.l != 0 && (geo.g <= 0 || geo.g % 4 != 0)))
        return cudaErrorInvalidValue;
    switch (qdt) {
    case SS_DTYPE_I8: return launch<Q_I8>(x, m, m_pad, geo, q, sa, threads, stream);
    case SS_DTYPE_F8_E4M3: return launch<Q_E4M3>(x, m, m_pad, geo, q, sa, threads, stream);
    case SS_DTYPE_BF16: return launch<Q_BF16>(x, m, m_pad, geo, q, sa, threads, stream);
    default: return cudaErrorInvalidValue;
    }
}
