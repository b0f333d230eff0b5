/* Internal to quant.cu: the residual prologue of the row kernel
 * (ss_kernel_residual_quant_rmsnorm). It rebuilds, 8 columns at a time, what
 * ss_kernel_dequant_residual writes (dequant.cu, dequant_residual_vec8):
 *   y = bf16(((float)d * sa_a[r]) * sb[c or 0] + bias[c])
 *   x = bf16(x + y)
 * with the same separately rounded IEEE ops in the same order and the same
 * BF16 rounding (NaN kept quiet with its sign), so the residual stream it
 * stores equals the unfused kernel's bit for bit.
 */
#ifndef SS_LINEAR_KERNELS_RESID_PROLOGUE_CUH
#define SS_LINEAR_KERNELS_RESID_PROLOGUE_CUH

#include <cuda_runtime.h>
#include <stdint.h>

namespace {

/* The producing projection's epilogue. d (m, ldd) of ddt: 0 = I32, 1 = F32,
 * 2 = BF16; ldd % 8 == 0 and every pointer 16-byte aligned (sb only when
 * per channel). resid (m, n) BF16, n = the norm's k. */
struct resid_epi {
    const void *d;
    int64_t ldd;
    int ddt;
    const float *sa; // (m) the producing projection's token scales
    const float *sb; // (n) or (1), or NULL
    int sb_pc;
    const uint16_t *bias; // (n) or NULL
    uint4 *resid;         // (m, n / 8): read, then written with the sum
};

/* ss_f32_to_bf16 (dequant.cu's f32_to_bf16_bits). */
__device__ __forceinline__ uint32_t resid_bf16_bits(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (u >> 16) | 0x40u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

/* Columns c0 .. c0 + 7 of row r: xv (8 BF16 of the residual) -> the new
 * residual bf16(x + bf16(dequant(d))). */
__device__ __forceinline__ uint4 resid_add8(const resid_epi &ep, int64_t r, int64_t c0, uint4 xv) {
    float v[8];
    const int64_t i = r * ep.ldd + c0;
    if (ep.ddt == 2) {
        const uint4 u = __ldcs((const uint4 *)((const uint16_t *)ep.d + i));
        const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
            v[2 * e] = __uint_as_float(w[e] << 16);
            v[2 * e + 1] = __uint_as_float(w[e] & 0xffff0000u);
        }
    } else {
        const int4 *p = (const int4 *)((const int32_t *)ep.d + i);
        const int4 a = __ldcs(p), b = __ldcs(p + 1);
        const int w[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
        for (int e = 0; e < 8; e++)
            v[e] = ep.ddt == 0 ? __int2float_rn(w[e]) : __int_as_float(w[e]);
    }
    const float s = ep.sa[r];
    float sv[8], bv[8];
    if (ep.sb) {
        if (ep.sb_pc) {
            const float4 a = __ldg((const float4 *)(ep.sb + c0)), b = __ldg((const float4 *)(ep.sb + c0) + 1);
            sv[0] = a.x; sv[1] = a.y; sv[2] = a.z; sv[3] = a.w;
            sv[4] = b.x; sv[5] = b.y; sv[6] = b.z; sv[7] = b.w;
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++)
                sv[e] = ep.sb[0];
        }
    }
    if (ep.bias) {
        const uint4 u = __ldg((const uint4 *)(ep.bias + c0));
        const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int e = 0; e < 4; e++) {
            bv[2 * e] = __uint_as_float(w[e] << 16);
            bv[2 * e + 1] = __uint_as_float(w[e] & 0xffff0000u);
        }
    }
    const uint32_t xw[4] = {xv.x, xv.y, xv.z, xv.w};
    uint32_t o[4];
#pragma unroll
    for (int e = 0; e < 4; e++) {
        uint32_t h[2];
#pragma unroll
        for (int j = 0; j < 2; j++) {
            float t = __fmul_rn(v[2 * e + j], s);
            if (ep.sb)
                t = __fmul_rn(t, sv[2 * e + j]);
            if (ep.bias)
                t = __fadd_rn(t, bv[2 * e + j]);
            const float y = __uint_as_float(resid_bf16_bits(t) << 16);
            const float x = __uint_as_float(j ? xw[e] & 0xffff0000u : xw[e] << 16);
            h[j] = resid_bf16_bits(__fadd_rn(x, y));
        }
        o[e] = h[0] | (h[1] << 16);
    }
    return make_uint4(o[0], o[1], o[2], o[3]);
}

/* Whether the prologue can take the call (n = the row's k). */
inline bool resid_epi_fits(const resid_epi &ep, int64_t n) {
    const auto a16 = [](const void *p) { return (uintptr_t)p % 16 == 0; };
    return ep.d && ep.sa && ep.resid && ep.ddt >= 0 && ep.ddt <= 2 && n % 8 == 0 &&
           ep.ldd >= n && ep.ldd % 8 == 0 && a16(ep.d) && a16(ep.resid) &&
           (!ep.bias || a16(ep.bias)) && (!ep.sb || !ep.sb_pc || a16(ep.sb));
}

} // namespace

#endif
