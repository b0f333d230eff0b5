/* Internal: the FP8 KV rows on the device, bit-compatible with
 * ss_kv_quant_row / ss_kv_dequant_row (engine/kv_cache.c; arithmetic in
 * slidesparse/engine.h). Every float operation is one IEEE round-to-nearest-
 * even operation (__fdiv_rn, __fmul_rn), e4m3 conversion rounds to nearest
 * even and saturates (__NV_SATFINITE, after the clamp), and e4m3 -> half ->
 * float is exact, so both engines store and read the same bits. */
#ifndef SS_ENGINE_CUDA_KV_FP8_CUH
#define SS_ENGINE_CUDA_KV_FP8_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <stdint.h>

#include "bf16.cuh"

/* Quantizes one row x (n) BF16 into q (n) E4M3 and *scale, by one warp (every
 * lane calls it with the same arguments; lane 0 writes the scale). */
__device__ __forceinline__ void ss_kv_quant_row_warp(const uint16_t *x, int n, uint8_t *q, float *scale) {
    const int lane = threadIdx.x & 31;
    float a = 0.0f;
    for (int i = lane; i < n; i += 32)
        a = fmaxf(a, fabsf(ss_bf(x[i])));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, o));
    a = fmaxf(a, 1e-12f);
    const float inv = __fdiv_rn(448.0f, a);
    for (int i = lane; i < n; i += 32) {
        const float t = fminf(fmaxf(__fmul_rn(ss_bf(x[i]), inv), -448.0f), 448.0f);
        q[i] = (uint8_t)__nv_cvt_float_to_fp8(t, __NV_SATFINITE, __NV_E4M3);
    }
    if (lane == 0)
        *scale = __fdiv_rn(a, 448.0f);
}

/* Two E4M3 (element 0 in the low byte) -> bf16x2 of f32(q) * s (element 0
 * in the low half). The attention kernels run this on every cached element,
 * so the two products are rounded to BF16 by one cvt.rn.bf16x2.f32 rather
 * than ss_to_bf's integer sequence each: the same round to nearest even, and
 * the products are finite (|f32(q)| <= 448, s = absmax / 448), so the
 * instruction's canonical NaN (where ss_to_bf keeps the payload) never
 * arises and the bits equal ss_kv_dequant_row's. */
__device__ __forceinline__ uint32_t ss_kv_dequant2(uint32_t two, float s) {
    const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(two & 0xffffu), __NV_E4M3);
    const float lo = __half2float(__ushort_as_half(h.x)), hi = __half2float(__ushort_as_half(h.y));
    const __nv_bfloat162_raw b = __floats2bfloat162_rn(__fmul_rn(lo, s), __fmul_rn(hi, s)); /* .x = lo */
    return (uint32_t)b.x | ((uint32_t)b.y << 16);
}

/* 8 E4M3 (one 8-byte word) -> 8 BF16 (one 16-byte word), the layout of a
 * BF16 row's 16-byte chunk. */
__device__ __forceinline__ uint4 ss_kv_dequant8(uint2 raw, float s) {
    return make_uint4(ss_kv_dequant2(raw.x, s), ss_kv_dequant2(raw.x >> 16, s), ss_kv_dequant2(raw.y, s),
                      ss_kv_dequant2(raw.y >> 16, s));
}

/* 8 consecutive elements (element offset off, a multiple of 8) of a BF16 or
 * E4M3 pool as 8 BF16; srow: the row's scale index (FP8 only). */
template <bool FP8>
__device__ __forceinline__ uint4 ss_kv_load8(const void *pool, const float *scales, int64_t off, int64_t srow) {
    if (FP8)
        return ss_kv_dequant8(*(const uint2 *)((const uint8_t *)pool + off), scales[srow]);
    else
        return *(const uint4 *)((const uint16_t *)pool + off);
}

/* 4 consecutive elements (off a multiple of 4) as 4 BF16 (one 8-byte word). */
template <bool FP8>
__device__ __forceinline__ uint2 ss_kv_load4(const void *pool, const float *scales, int64_t off, int64_t srow) {
    if (FP8) {
        const uint32_t raw = *(const uint32_t *)((const uint8_t *)pool + off);
        const float s = scales[srow];
        return make_uint2(ss_kv_dequant2(raw, s), ss_kv_dequant2(raw >> 16, s));
    } else {
        return *(const uint2 *)((const uint16_t *)pool + off);
    }
}

/* 2 consecutive elements (off even) as bf16x2. */
template <bool FP8>
__device__ __forceinline__ uint32_t ss_kv_load2(const void *pool, const float *scales, int64_t off, int64_t srow) {
    if (FP8)
        return ss_kv_dequant2(*(const uint16_t *)((const uint8_t *)pool + off), scales[srow]);
    else
        return *(const uint32_t *)((const uint16_t *)pool + off);
}

#endif
