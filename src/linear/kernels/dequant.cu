/* dequant_bias (SPEC §4, linear.h): the GEMM epilogue
 *   t = (float)D[r,c] * sa[r];  t = t * sb[c or 0];  t = t + (float)bias[c];
 *   Y = bf16(t) (round to nearest even) or t.
 * Three separately rounded IEEE ops (__fmul_rn, __fadd_rn), never fused, so the
 * result is bit-identical to the CPU reference. Each thread handles 8
 * consecutive columns of one row (vector loads/stores) when the row length
 * and strides allow, otherwise one element.
 *
 * dequant_glu / dequant_residual: the same epilogue rounded to BF16, then the
 * engine's next elementwise op (gated activation, residual add) in registers,
 * so the BF16 projection output is never written and read back.
 *
 * The _pdl launchers run them as programmatic dependent launches: every
 * thread waits for the GEMM (or whatever kernel precedes) at its start —
 * d, sa and the residual stream are all a previous kernel's output; the
 * scales and bias left to load are a few bytes — so the win is the launch
 * and block scheduling hidden behind the previous kernel's tail.
 */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "linear/kernels/kernels.h"
#include "linear/kernels/pdl.cuh"

namespace {

enum DKind { D_I32 = 0, D_F32 = 1, D_BF16 = 2 };

/* Same rounding as ss_f32_to_bf16: RNE; NaN stays a quiet NaN with its sign. */
__device__ __forceinline__ uint32_t f32_to_bf16_bits(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (u >> 16) | 0x40u;
    u += 0x7fffu + ((u >> 16) & 1u);
    return u >> 16;
}

template <int D>
__device__ __forceinline__ float load_d(const void *d, int64_t i) {
    if (D == D_I32)
        return __int2float_rn(((const int32_t *)d)[i]);
    if (D == D_F32)
        return ((const float *)d)[i];
    return __uint_as_float((uint32_t)((const uint16_t *)d)[i] << 16);
}

__device__ __forceinline__ float epilogue(float v, const float *sa, int64_t r, const float *sb,
                                          int sb_pc, const uint16_t *bias, int64_t c) {
    float t = v;
    if (sa)
        t = __fmul_rn(t, sa[r]);
    if (sb)
        t = __fmul_rn(t, sb[sb_pc ? c : 0]);
    if (bias)
        t = __fadd_rn(t, __uint_as_float((uint32_t)bias[c] << 16));
    return t;
}

/* Scalar path: one element per thread. */
template <int D, bool YF32>
__global__ void dequant_scalar(const void *__restrict__ d, int64_t ldd, const float *__restrict__ sa,
                               const float *__restrict__ sb, int sb_pc,
                               const uint16_t *__restrict__ bias, int64_t m, int64_t n,
                               void *__restrict__ y) {
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    ss_pdl_wait(); /* every thread, before the range check: pdl.cuh */
    ss_pdl_trigger();
    if (i >= m * n)
        return;
    const int64_t r = i / n, c = i - r * n;
    const float t = epilogue(load_d<D>(d, r * ldd + c), sa, r, sb, sb_pc, bias, c);
    if (YF32)
        ((float *)y)[i] = t;
    else
        ((uint16_t *)y)[i] = (uint16_t)f32_to_bf16_bits(t);
}

/* Vector path: n, ldd multiples of 8 and 16-byte aligned buffers. */
template <int D, bool YF32>
__global__ void dequant_vec8(const void *__restrict__ d, int64_t ldd, const float *__restrict__ sa,
                             const float *__restrict__ sb, int sb_pc,
                             const uint16_t *__restrict__ bias, int64_t m, int64_t n,
                             void *__restrict__ y) {
    const int64_t nv = n >> 3;
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    ss_pdl_wait(); /* every thread, before the range check: pdl.cuh */
    ss_pdl_trigger();
    if (i >= m * nv)
        return;
    const int64_t r = i / nv, c0 = (i - r * nv) * 8;
    float v[8];
    if (D == D_BF16) {
        uint4 u = __ldcs((const uint4 *)((const uint16_t *)d + r * ldd + c0));
        uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
            v[2 * e] = __uint_as_float(w[e] << 16);
            v[2 * e + 1] = __uint_as_float(w[e] & 0xffff0000u);
        }
    } else {
        const int4 *p = (const int4 *)((const int32_t *)d + r * ldd + c0);
        int4 a = __ldcs(p), b = __ldcs(p + 1);
        int w[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
        for (int e = 0; e < 8; e++)
            v[e] = D == D_I32 ? __int2float_rn(w[e]) : __int_as_float(w[e]);
    }
    const float s = sa ? sa[r] : 1.0f;
    float bv[8], sv[8];
    if (bias) {
        uint4 u = __ldg((const uint4 *)(bias + c0));
        uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
            bv[2 * e] = __uint_as_float(w[e] << 16);
            bv[2 * e + 1] = __uint_as_float(w[e] & 0xffff0000u);
        }
    }
    if (sb) {
        if (sb_pc) {
            float4 a = __ldg((const float4 *)(sb + c0)), b = __ldg((const float4 *)(sb + c0) + 1);
            sv[0] = a.x; sv[1] = a.y; sv[2] = a.z; sv[3] = a.w;
            sv[4] = b.x; sv[5] = b.y; sv[6] = b.z; sv[7] = b.w;
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++)
                sv[e] = sb[0];
        }
    }
#pragma unroll
    for (int e = 0; e < 8; e++) {
        float t = sa ? __fmul_rn(v[e], s) : v[e];
        if (sb)
            t = __fmul_rn(t, sv[e]);
        if (bias)
            t = __fadd_rn(t, bv[e]);
        v[e] = t;
    }
    if (YF32) {
        float4 *o = (float4 *)((float *)y + r * n + c0);
        __stcs(o, make_float4(v[0], v[1], v[2], v[3]));
        __stcs(o + 1, make_float4(v[4], v[5], v[6], v[7]));
    } else {
        uint32_t w[4];
#pragma unroll
        for (int e = 0; e < 4; e++)
            w[e] = f32_to_bf16_bits(v[2 * e]) | (f32_to_bf16_bits(v[2 * e + 1]) << 16);
        __stcs((uint4 *)((uint16_t *)y + r * n + c0), make_uint4(w[0], w[1], w[2], w[3]));
    }
}

/* Blocks of 256 threads for `work` items; 0 when there is nothing to do,
 * -1 when the grid would not fit. */
int64_t grid_of(int64_t work) {
    const int64_t blocks = (work + 255) / 256;
    return blocks > INT32_MAX ? -1 : blocks;
}

bool aligned16(const void *p) { return (uintptr_t)p % 16 == 0; }

/* Whether the 8-wide kernels can take a call: `cols` output columns per row
 * (n, or inter for the GLU), 16-byte rows and pointers. */
bool vec8_ok(int64_t cols, int64_t ldd, const void *d, const void *out, const uint16_t *bias,
             const float *sb, int sb_pc) {
    return cols % 8 == 0 && ldd % 8 == 0 && aligned16(d) && aligned16(out) && (!bias || aligned16(bias)) &&
           (!sb || !sb_pc || aligned16(sb));
}

template <int D, bool YF32>
cudaError_t launch(const void *d, int64_t ldd, const float *sa, const float *sb, int sb_pc,
                   const uint16_t *bias, int64_t m, int64_t n, void *y, bool pdl, cudaStream_t stream) {
    const bool vec = vec8_ok(n, ldd, d, y, bias, sb, sb_pc);
    const int64_t blocks = grid_of(vec ? m * (n / 8) : m * n);
    if (blocks <= 0)
        return blocks == 0 ? cudaSuccess : cudaErrorInvalidValue;
    return ss_launch(pdl, vec ? dequant_vec8<D, YF32> : dequant_scalar<D, YF32>, dim3((unsigned)blocks), dim3(256), 0,
                     stream, d, ldd, sa, sb, sb_pc, bias, m, n, y);
}

template <int D>
cudaError_t launch_y(ss_dtype ydt, const void *d, int64_t ldd, const float *sa, const float *sb,
                     int sb_pc, const uint16_t *bias, int64_t m, int64_t n, void *y, bool pdl,
                     cudaStream_t stream) {
    if (ydt == SS_DTYPE_F32)
        return launch<D, true>(d, ldd, sa, sb, sb_pc, bias, m, n, y, pdl, stream);
    if (ydt == SS_DTYPE_BF16)
        return launch<D, false>(d, ldd, sa, sb, sb_pc, bias, m, n, y, pdl, stream);
    return cudaErrorInvalidValue;
}

// --- the epilogue fused with the engine's next elementwise op ----------------------------------

/* 8 consecutive GEMM outputs from element index i (16-byte aligned), streamed:
 * each is read once. */
template <int D>
__device__ __forceinline__ void load8(const void *__restrict__ d, int64_t i, float *v) {
    if (D == D_BF16) {
        uint4 u = __ldcs((const uint4 *)((const uint16_t *)d + i));
        uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
            v[2 * e] = __uint_as_float(w[e] << 16);
            v[2 * e + 1] = __uint_as_float(w[e] & 0xffff0000u);
        }
    } else {
        const int4 *p = (const int4 *)((const int32_t *)d + i);
        int4 a = __ldcs(p), b = __ldcs(p + 1);
        int w[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
        for (int e = 0; e < 8; e++)
            v[e] = D == D_I32 ? __int2float_rn(w[e]) : __int_as_float(w[e]);
    }
}

__device__ __forceinline__ void unpack8_bf16(uint4 u, float *f) {
    uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int e = 0; e < 4; e++) {
        f[2 * e] = __uint_as_float(w[e] << 16);
        f[2 * e + 1] = __uint_as_float(w[e] & 0xffff0000u);
    }
}

/* v[e] = bf16(epilogue(v[e])) as float for columns c0..c0+7 of row r: the
 * value the plain dequant writes, rounded exactly as there. */
__device__ __forceinline__ void epilogue8_bf16(float *v, const float *__restrict__ sa, int64_t r,
                                               const float *__restrict__ sb, int sb_pc,
                                               const uint16_t *__restrict__ bias, int64_t c0) {
    const float s = sa ? sa[r] : 1.0f;
    float sv[8], bv[8];
    if (sb) {
        if (sb_pc) {
            float4 a = __ldg((const float4 *)(sb + c0)), b = __ldg((const float4 *)(sb + c0) + 1);
            sv[0] = a.x; sv[1] = a.y; sv[2] = a.z; sv[3] = a.w;
            sv[4] = b.x; sv[5] = b.y; sv[6] = b.z; sv[7] = b.w;
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++)
                sv[e] = sb[0];
        }
    }
    if (bias)
        unpack8_bf16(__ldg((const uint4 *)(bias + c0)), bv);
#pragma unroll
    for (int e = 0; e < 8; e++) {
        float t = sa ? __fmul_rn(v[e], s) : v[e];
        if (sb)
            t = __fmul_rn(t, sv[e]);
        if (bias)
            t = __fadd_rn(t, bv[e]);
        v[e] = __uint_as_float(f32_to_bf16_bits(t) << 16);
    }
}

/* The engine's glu_act (src/engine/cuda/ops.cu; the engine sits above this
 * layer, so it is spelled out again): relu(g)^2 or SiLU with the same
 * rounding points and the same expf, so the fused result equals dequant
 * then ss_glu_cuda bit for bit. */
template <bool RELU2>
__device__ __forceinline__ float glu_act(float g) {
    if (RELU2)
        return g > 0.0f ? __fmul_rn(g, g) : 0.0f;
    return g / __fadd_rn(1.0f, expf(-g));
}

__device__ __forceinline__ uint4 pack8_bf16(const float *v) {
    uint32_t w[4];
#pragma unroll
    for (int e = 0; e < 4; e++)
        w[e] = f32_to_bf16_bits(v[2 * e]) | (f32_to_bf16_bits(v[2 * e + 1]) << 16);
    return make_uint4(w[0], w[1], w[2], w[3]);
}

/* act[r, c..c+7] = bf16(glu_act(gate) * up), gate = bf16(dequant(d[r, c])),
 * up = bf16(dequant(d[r, inter + c])). Needs inter, ldd multiples of 8 and
 * 16-byte aligned buffers. All four 16-byte loads of d are issued before any
 * arithmetic. */
template <int D, bool RELU2>
__global__ void dequant_glu_vec8(const void *__restrict__ d, int64_t ldd, const float *__restrict__ sa,
                                 const float *__restrict__ sb, int sb_pc,
                                 const uint16_t *__restrict__ bias, int64_t m, int64_t inter,
                                 uint16_t *__restrict__ act) {
    const int64_t nv = inter >> 3;
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    ss_pdl_wait(); /* every thread, before the range check: pdl.cuh */
    ss_pdl_trigger();
    if (i >= m * nv)
        return;
    const int64_t r = i / nv, c0 = (i - r * nv) * 8;
    float g[8], u[8];
    load8<D>(d, r * ldd + c0, g);
    load8<D>(d, r * ldd + inter + c0, u);
    epilogue8_bf16(g, sa, r, sb, sb_pc, bias, c0);
    epilogue8_bf16(u, sa, r, sb, sb_pc, bias, inter + c0);
#pragma unroll
    for (int e = 0; e < 8; e++)
        g[e] = __fmul_rn(glu_act<RELU2>(g[e]), u[e]);
    __stcs((uint4 *)(act + r * inter + c0), pack8_bf16(g));
}

template <int D, bool RELU2>
__global__ void dequant_glu_scalar(const void *__restrict__ d, int64_t ldd, const float *__restrict__ sa,
                                   const float *__restrict__ sb, int sb_pc,
                                   const uint16_t *__restrict__ bias, int64_t m, int64_t inter,
                                   uint16_t *__restrict__ act) {
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    ss_pdl_wait(); /* every thread, before the range check: pdl.cuh */
    ss_pdl_trigger();
    if (i >= m * inter)
        return;
    const int64_t r = i / inter, c = i - r * inter;
    const float gt = epilogue(load_d<D>(d, r * ldd + c), sa, r, sb, sb_pc, bias, c);
    const float ut = epilogue(load_d<D>(d, r * ldd + inter + c), sa, r, sb, sb_pc, bias, inter + c);
    const float gv = __uint_as_float(f32_to_bf16_bits(gt) << 16);
    const float uv = __uint_as_float(f32_to_bf16_bits(ut) << 16);
    act[i] = (uint16_t)f32_to_bf16_bits(__fmul_rn(glu_act<RELU2>(gv), uv));
}

/* x[r, c..c+7] = bf16(x + bf16(dequant(d[r, c..c+7]))): the engine's residual
 * add on the plain dequant's output. n, ldd multiples of 8, aligned buffers. */
template <int D>
__global__ void dequant_residual_vec8(const void *__restrict__ d, int64_t ldd,
                                      const float *__restrict__ sa, const float *__restrict__ sb,
                                      int sb_pc, const uint16_t *__restrict__ bias, int64_t m,
                                      int64_t n, uint16_t *__restrict__ x) {
    const int64_t nv = n >> 3;
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    ss_pdl_wait(); /* every thread, before the range check: pdl.cuh */
    ss_pdl_trigger();
    if (i >= m * nv)
        return;
    const int64_t r = i / nv, c0 = (i - r * nv) * 8;
    float v[8], xv[8];
    uint4 *xp = (uint4 *)(x + r * n + c0);
    load8<D>(d, r * ldd + c0, v);
    unpack8_bf16(*xp, xv);
    epilogue8_bf16(v, sa, r, sb, sb_pc, bias, c0);
#pragma unroll
    for (int e = 0; e < 8; e++)
        v[e] = __fadd_rn(xv[e], v[e]);
    *xp = pack8_bf16(v);
}

template <int D>
__global__ void dequant_residual_scalar(const void *__restrict__ d, int64_t ldd,
                                        const float *__restrict__ sa, const float *__restrict__ sb,
                                        int sb_pc, const uint16_t *__restrict__ bias, int64_t m,
                                        int64_t n, uint16_t *__restrict__ x) {
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    ss_pdl_wait(); /* every thread, before the range check: pdl.cuh */
    ss_pdl_trigger();
    if (i >= m * n)
        return;
    const int64_t r = i / n, c = i - r * n;
    const float t = epilogue(load_d<D>(d, r * ldd + c), sa, r, sb, sb_pc, bias, c);
    const float y = __uint_as_float(f32_to_bf16_bits(t) << 16);
    x[i] = (uint16_t)f32_to_bf16_bits(__fadd_rn(__uint_as_float((uint32_t)x[i] << 16), y));
}

template <int D, bool RELU2>
cudaError_t launch_glu(const void *d, int64_t ldd, const float *sa, const float *sb, int sb_pc,
                       const uint16_t *bias, int64_t m, int64_t inter, uint16_t *act, bool pdl,
                       cudaStream_t stream) {
    const bool vec = vec8_ok(inter, ldd, d, act, bias, sb, sb_pc);
    const int64_t blocks = grid_of(vec ? m * (inter / 8) : m * inter);
    if (blocks <= 0)
        return blocks == 0 ? cudaSuccess : cudaErrorInvalidValue;
    return ss_launch(pdl, vec ? dequant_glu_vec8<D, RELU2> : dequant_glu_scalar<D, RELU2>, dim3((unsigned)blocks),
                     dim3(256), 0, stream, d, ldd, sa, sb, sb_pc, bias, m, inter, act);
}

template <int D>
cudaError_t launch_glu_act(int relu2, const void *d, int64_t ldd, const float *sa, const float *sb,
                           int sb_pc, const uint16_t *bias, int64_t m, int64_t inter, uint16_t *act,
                           bool pdl, cudaStream_t stream) {
    return relu2 ? launch_glu<D, true>(d, ldd, sa, sb, sb_pc, bias, m, inter, act, pdl, stream)
                 : launch_glu<D, false>(d, ldd, sa, sb, sb_pc, bias, m, inter, act, pdl, stream);
}

template <int D>
cudaError_t launch_residual(const void *d, int64_t ldd, const float *sa, const float *sb, int sb_pc,
                            const uint16_t *bias, int64_t m, int64_t n, uint16_t *x, bool pdl,
                            cudaStream_t stream) {
    const bool vec = vec8_ok(n, ldd, d, x, bias, sb, sb_pc);
    const int64_t blocks = grid_of(vec ? m * (n / 8) : m * n);
    if (blocks <= 0)
        return blocks == 0 ? cudaSuccess : cudaErrorInvalidValue;
    return ss_launch(pdl, vec ? dequant_residual_vec8<D> : dequant_residual_scalar<D>, dim3((unsigned)blocks),
                     dim3(256), 0, stream, d, ldd, sa, sb, sb_pc, bias, m, n, x);
}

} // namespace

extern "C" cudaError_t ss_kernel_dequant_bias_pdl(ss_dtype ddt, const void *d, int64_t ldd,
                                              const float *sa, const float *sb,
                                              int sb_per_channel, const uint16_t *bias,
                                              int64_t m, int64_t n, ss_dtype ydt, void *y,
                                              int pdl, cudaStream_t stream) {
    if (m < 0 || n < 0 || ldd < n)
        return cudaErrorInvalidValue;
    switch (ddt) {
    case SS_DTYPE_I32: return launch_y<D_I32>(ydt, d, ldd, sa, sb, sb_per_channel, bias, m, n, y, pdl != 0, stream);
    case SS_DTYPE_F32: return launch_y<D_F32>(ydt, d, ldd, sa, sb, sb_per_channel, bias, m, n, y, pdl != 0, stream);
    case SS_DTYPE_BF16: return launch_y<D_BF16>(ydt, d, ldd, sa, sb, sb_per_channel, bias, m, n, y, pdl != 0, stream);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t ss_kernel_dequant_glu_pdl(ss_dtype ddt, const void *d, int64_t ldd,
                                             const float *sa, const float *sb,
                                             int sb_per_channel, const uint16_t *bias, int64_t m,
                                             int64_t inter, int relu2, uint16_t *act,
                                             int pdl, cudaStream_t stream) {
    if (m < 0 || inter < 0 || ldd < 2 * inter)
        return cudaErrorInvalidValue;
    switch (ddt) {
    case SS_DTYPE_I32: return launch_glu_act<D_I32>(relu2, d, ldd, sa, sb, sb_per_channel, bias, m, inter, act, pdl != 0, stream);
    case SS_DTYPE_F32: return launch_glu_act<D_F32>(relu2, d, ldd, sa, sb, sb_per_channel, bias, m, inter, act, pdl != 0, stream);
    case SS_DTYPE_BF16: return launch_glu_act<D_BF16>(relu2, d, ldd, sa, sb, sb_per_channel, bias, m, inter, act, pdl != 0, stream);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t ss_kernel_dequant_residual_pdl(ss_dtype ddt, const void *d, int64_t ldd,
                                                  const float *sa, const float *sb,
                                                  int sb_per_channel, const uint16_t *bias,
                                                  int64_t m, int64_t n, uint16_t *x,
                                                  int pdl, cudaStream_t stream) {
    if (m < 0 || n < 0 || ldd < n)
        return cudaErrorInvalidValue;
    switch (ddt) {
    case SS_DTYPE_I32: return launch_residual<D_I32>(d, ldd, sa, sb, sb_per_channel, bias, m, n, x, pdl != 0, stream);
    case SS_DTYPE_F32: return launch_residual<D_F32>(d, ldd, sa, sb, sb_per_channel, bias, m, n, x, pdl != 0, stream);
    case SS_DTYPE_BF16: return launch_residual<D_BF16>(d, ldd, sa, sb, sb_per_channel, bias, m, n, x, pdl != 0, stream);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t ss_kernel_dequant_bias(ss_dtype ddt, const void *d, int64_t ldd,
                                              const float *sa, const float *sb,
                                              int sb_per_channel, const uint16_t *bias,
                                              int64_t m, int64_t n, ss_dtype ydt, void *y,
                                              cudaStream_t stream) {
    return ss_kernel_dequant_bias_pdl(ddt, d, ldd, sa, sb, sb_per_channel, bias, m, n, ydt, y, 0, stream);
}

extern "C" cudaError_t ss_kernel_dequant_glu(ss_dtype ddt, const void *d, int64_t ldd,
                                             const float *sa, const float *sb,
                                             int sb_per_channel, const uint16_t *bias, int64_t m,
                                             int64_t inter, int relu2, uint16_t *act,
                                             cudaStream_t stream) {
    return ss_kernel_dequant_glu_pdl(ddt, d, ldd, sa, sb, sb_per_channel, bias, m, inter, relu2, act, 0,
                                     stream);
}

extern "C" cudaError_t ss_kernel_dequant_residual(ss_dtype ddt, const void *d, int64_t ldd,
                                                  const float *sa, const float *sb,
                                                  int sb_per_channel, const uint16_t *bias,
                                                  int64_t m, int64_t n, uint16_t *x,
                                                  cudaStream_t stream) {
    return ss_kernel_dequant_residual_pdl(ddt, d, ldd, sa, sb, sb_per_channel, bias, m, n, x, 0, stream);
}

/* SS_PDL=0 in the environment turns PDL off (A/B measurements). Otherwise on
 * where the device has cc >= 9.0 and this library's kernels carry code for
 * it (an sm_80 build JIT-compiled on an H100 has no griddepcontrol.wait in
 * its kernels, which would then race: off). */
extern "C" int ss_kernel_pdl_on(int device) {
    const char *v = getenv("SS_PDL");
    if (v && strcmp(v, "0") == 0)
        return 0;
    int major = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    cudaFuncAttributes fa;
    if (cudaFuncGetAttributes(&fa, (const void *)dequant_vec8<D_I32, false>) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    /* binaryVersion alone is not enough: code JIT-compiled from sm_80 PTX on
     * an H100 reports 90 there, yet was built without the griddepcontrol
     * waits (__CUDA_ARCH__ 800) and would race under PDL. */
    return major >= 9 && fa.binaryVersion >= 90 && fa.ptxVersion >= 90 ? 1 : 0;
}
