/* Internal: BF16 <-> float on the device, bit-compatible with
 * core/dtype_inline.h (round to nearest even; NaN stays a quiet NaN). */
#ifndef SS_ENGINE_CUDA_BF16_CUH
#define SS_ENGINE_CUDA_BF16_CUH

#include <stdint.h>

__device__ __forceinline__ float ss_bf(uint16_t u) { return __uint_as_float((uint32_t)u << 16); }

__device__ __forceinline__ uint16_t ss_to_bf(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* 8 BF16 in one 16-byte vector; element 2i is the low half of word i. */
__device__ __forceinline__ void ss_unpack8(uint4 u, float *f) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(w[i] << 16);
        f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}

__device__ __forceinline__ uint4 ss_pack8(const float *f) {
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; i++)
        w[i] = (uint32_t)ss_to_bf(f[2 * i]) | ((uint32_t)ss_to_bf(f[2 * i + 1]) << 16);
    return make_uint4(w[0], w[1], w[2], w[3]);
}

#endif
