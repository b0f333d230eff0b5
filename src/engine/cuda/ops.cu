/* The engine's elementwise and row kernels (RMSNorm, residual add, gated
 * activation, RoPE + KV write, embedding gather, greedy argmax). Each op is
 * one launch; rows whose length is a multiple of 8 move through 16-byte
 * vectors. Multiplies and adds that the CPU reference rounds separately are
 * spelled __fmul_rn / __fadd_rn so that nvcc does not contract them into FMAs
 * (the CPU build uses -ffp-contract=off); reductions differ from the CPU only
 * in summation order.
 *
 * Every kernel can run as a programmatic dependent launch (pdl argument,
 * linear/kernels/pdl.cuh): it reads only the batch metadata and constant
 * tables (RoPE frequencies) before ss_pdl_wait(), and lets the next kernel
 * be scheduled right after it.
 */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "bf16.cuh"
#include "kernels.h"
#include "kv_fp8.cuh"
#include "linear/kernels/pdl.cuh"

namespace {

/* Sum over the block (blockDim.x a multiple of 32, at most 1024). */
__device__ float block_sum(float v, float *sh) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads(); /* sh may still be read by a previous call */
    if (l == 0)
        sh[w] = v;
    __syncthreads();
    v = l < nw ? sh[l] : 0.0f;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Threads for a row of `units` work items: a multiple of 32 in 32..256. */
int row_threads(int64_t units) {
    int64_t t = (units + 31) / 32 * 32;
    return (int)(t < 32 ? 32 : t > 256 ? 256 : t);
}

// --- RMSNorm ------------------------------------------------------------------------------

/* y = bf16(w * bf16(x * inv)), inv = 1 / sqrt(mean(x^2) + eps); one block per row. */
__global__ void rmsnorm_kernel(const uint16_t *__restrict__ x, const int32_t *__restrict__ rows,
                               const uint16_t *__restrict__ w, int64_t n, float eps,
                               uint16_t *__restrict__ y) {
    __shared__ float sh[32];
    const int64_t r = blockIdx.x;
    const uint16_t *xr = x + (rows ? (int64_t)rows[r] : r) * n; // (n) rows: batch metadata
    uint16_t *yr = y + r * n;                                  // (n)
    ss_pdl_wait();
    ss_pdl_trigger();
    const bool vec = (n & 7) == 0;
    float ss = 0.0f;
    if (vec) {
        for (int64_t i = threadIdx.x; i < n / 8; i += blockDim.x) {
            float f[8];
            ss_unpack8(((const uint4 *)xr)[i], f);
#pragma unroll
            for (int k = 0; k < 8; k++)
                ss += f[k] * f[k];
        }
    } else {
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
            float f = ss_bf(xr[i]);
            ss += f * f;
        }
    }
    ss = block_sum(ss, sh);
    const float inv = 1.0f / sqrtf(__fadd_rn(ss / (float)n, eps));
    if (vec) {
        for (int64_t i = threadIdx.x; i < n / 8; i += blockDim.x) {
            float f[8], g[8];
            ss_unpack8(((const uint4 *)xr)[i], f);
            ss_unpack8(((const uint4 *)w)[i], g);
#pragma unroll
            for (int k = 0; k < 8; k++)
                f[k] = __fmul_rn(g[k], ss_bf(ss_to_bf(__fmul_rn(f[k], inv))));
            ((uint4 *)yr)[i] = ss_pack8(f);
        }
    } else {
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            yr[i] = ss_to_bf(__fmul_rn(ss_bf(w[i]), ss_bf(ss_to_bf(__fmul_rn(ss_bf(xr[i]), inv)))));
    }
}

// --- elementwise ----------------------------------------------------------------------------

__global__ void residual_vec8(uint16_t *__restrict__ x, const uint16_t *__restrict__ d, int64_t nv) {
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    ss_pdl_wait();
    ss_pdl_trigger();
    if (i >= nv)
        return;
    float a[8], b[8];
    ss_unpack8(((const uint4 *)x)[i], a);
    ss_unpack8(((const uint4 *)d)[i], b);
#pragma unroll
    for (int k = 0; k < 8; k++)
        a[k] = __fadd_rn(a[k], b[k]);
    ((uint4 *)x)[i] = ss_pack8(a);
}

__global__ void residual_scalar(uint16_t *__restrict__ x, const uint16_t *__restrict__ d, int64_t n) {
    const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    ss_pdl_wait();
    ss_pdl_trigger();
    if (i < n)
        x[i] = ss_to_bf(__fadd_rn(ss_bf(x[i]), ss_bf(d[i])));
}

__device__ __forceinline__ float glu_act(float g, int relu2) {
    if (relu2)
        return g > 0.0f ? __fmul_rn(g, g) : 0.0f;
    return g / __fadd_rn(1.0f, expf(-g));
}

/* VEC: 8 columns per thread (i % 8 == 0), else one. */
template <int VEC>
__global__ void glu_kernel(const uint16_t *__restrict__ gu, int64_t t, int64_t i, int relu2,
                           uint16_t *__restrict__ y) {
    const int64_t per_row = i / VEC;
    const int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    ss_pdl_wait();
    ss_pdl_trigger();
    if (idx >= t * per_row)
        return;
    const int64_t r = idx / per_row, c = (idx - r * per_row) * VEC;
    const uint16_t *g = gu + r * 2 * i + c; // (VEC) gate, up at +i
    if (VEC == 8) {
        float a[8], u[8];
        ss_unpack8(*(const uint4 *)g, a);
        ss_unpack8(*(const uint4 *)(g + i), u);
#pragma unroll
        for (int k = 0; k < 8; k++)
            a[k] = __fmul_rn(glu_act(a[k], relu2), u[k]);
        *(uint4 *)(y + r * i + c) = ss_pack8(a);
    } else {
        y[r * i + c] = ss_to_bf(__fmul_rn(glu_act(ss_bf(g[0]), relu2), ss_bf(g[i])));
    }
}

// --- RoPE + KV write ------------------------------------------------------------------------

/* One block per token: rotates pairs (i, i + hd/2) of every q and k head
 * (HF rotate_half), writes rotated k and the v head rows to the cache slot.
 * FP8: the rotated row is written back to qkv first, then each warp
 * quantizes whole (kv head, k or v) rows from there into the slot. */
template <bool FP8>
__global__ void rope_kv_kernel(uint16_t *__restrict__ qkv, const ss_tok_info *__restrict__ tok,
                               int nh, int nkv, int hd, const float *__restrict__ inv_freq,
                               ss_kv_layer kv, const int32_t *__restrict__ tables, int max_blocks) {
    extern __shared__ float rot_s[]; // (2, hd / 2): cos, sin of this token's angles
    const int64_t r = blockIdx.x;
    const int pos = tok[r].pos, seq = tok[r].seq;
    const int64_t row = (int64_t)(nh + 2 * nkv) * hd;
    uint16_t *x = qkv + r * row; // (nh + 2 nkv, hd)
    const int64_t blk = tables[(int64_t)seq * max_blocks + pos / SS_KV_BLOCK];
    const int64_t srow = (blk * SS_KV_BLOCK + pos % SS_KV_BLOCK) * (int64_t)nkv; /* first kv head's row */
    const int64_t slot = srow * hd;
    uint16_t *kd = (uint16_t *)kv.k + slot, *vd = (uint16_t *)kv.v + slot; // (nkv, hd), BF16 only
    const int h2 = hd / 2, pairs = (nh + nkv) * h2;
    /* The angles depend on (pos, i) only: one cosf/sinf per frequency for
     * all nh + nkv heads (it was one per pair: 25x the work at BitNet-2B,
     * and the kernel's whole cost at decode sizes). Same operations, same
     * bits. */
    /* Before the wait (PDL): tok, tables and inv_freq are the batch metadata
     * and a constant table, so the angles are computed while the previous
     * kernel (qkv's dequant) drains; qkv and the cache only after it. */
    for (int i = threadIdx.x; i < h2; i += blockDim.x) {
        const float ang = __fmul_rn((float)pos, inv_freq[i]);
        rot_s[i] = cosf(ang);
        rot_s[h2 + i] = sinf(ang);
    }
    ss_pdl_wait();
    ss_pdl_trigger();
    __syncthreads();
    for (int p = threadIdx.x; p < pairs; p += blockDim.x) {
        const int h = p / h2, i = p - h * h2;
        const float cs = rot_s[i], sn = rot_s[h2 + i];
        uint16_t *xh = x + (int64_t)h * hd;
        const float a = ss_bf(xh[i]), b = ss_bf(xh[i + h2]);
        const uint16_t o1 = ss_to_bf(__fsub_rn(__fmul_rn(a, cs), __fmul_rn(b, sn)));
        const uint16_t o2 = ss_to_bf(__fadd_rn(__fmul_rn(b, cs), __fmul_rn(a, sn)));
        xh[i] = o1;
        xh[i + h2] = o2;
        if (!FP8 && h >= nh) {
            kd[(int64_t)(h - nh) * hd + i] = o1;
            kd[(int64_t)(h - nh) * hd + i + h2] = o2;
        }
    }
    if (FP8) {
        __syncthreads(); /* the block's rotated k rows are in qkv (global writes, visible in the block) */
        const int warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
        for (int rr = warp; rr < 2 * nkv; rr += nw) { /* rows 0..nkv-1: k heads, then v heads */
            const int h = rr % nkv;
            uint8_t *dst = (uint8_t *)(rr < nkv ? kv.k : kv.v) + slot + (int64_t)h * hd;
            float *sc = (rr < nkv ? kv.ks : kv.vs) + srow + h;
            ss_kv_quant_row_warp(x + (int64_t)(nh + rr) * hd, hd, dst, sc);
        }
        return;
    }
    const uint16_t *v = x + (int64_t)(nh + nkv) * hd; // (nkv, hd)
    const int nv = nkv * hd;
    if ((nv & 7) == 0 && (((uintptr_t)v | (uintptr_t)vd) & 15) == 0) {
        for (int j = threadIdx.x; j < nv / 8; j += blockDim.x)
            ((uint4 *)vd)[j] = ((const uint4 *)v)[j];
    } else {
        for (int j = threadIdx.x; j < nv; j += blockDim.x)
            vd[j] = v[j];
    }
}

// --- embedding, argmax ----------------------------------------------------------------------

__global__ void embed_kernel(const uint16_t *__restrict__ embed, const int32_t *__restrict__ ids,
                             int64_t h, uint16_t *__restrict__ x) {
    const int64_t r = blockIdx.x;
    const uint16_t *src = embed + (int64_t)ids[r] * h; // ids: batch metadata
    uint16_t *dst = x + r * h;
    ss_pdl_wait(); /* x may still be read by the previous forward's kernels */
    ss_pdl_trigger();
    if ((h & 7) == 0) {
        for (int64_t i = threadIdx.x; i < h / 8; i += blockDim.x)
            ((uint4 *)dst)[i] = ((const uint4 *)src)[i];
    } else {
        for (int64_t i = threadIdx.x; i < h; i += blockDim.x)
            dst[i] = src[i];
    }
}

/* (v, i) beats (bv, bi): NaN never wins, larger wins, lower index on ties. */
__device__ __forceinline__ bool beats(float v, int64_t i, float bv, int64_t bi) {
    if (v != v)
        return false;
    if (bv != bv)
        return true;
    return v > bv || (v == bv && i < bi);
}

__global__ void argmax_kernel(const float *__restrict__ logits, int64_t vocab, int32_t *__restrict__ next) {
    __shared__ float sv[32];
    __shared__ int64_t si[32];
    const float *row = logits + blockIdx.x * vocab;
    ss_pdl_wait();
    ss_pdl_trigger();
    float bv = __int_as_float(0x7fc00000); /* NaN: nothing yet */
    int64_t bi = vocab;
    /* Eight loads in flight per thread before the compares: the plain loop
     * waited one memory latency per element (~70 us for 64 rows of a 128k
     * vocabulary on the H100). beats() is a total order (value, then lower
     * index; NaN never wins), so the visiting order cannot change the result. */
    const int64_t step = blockDim.x;
    int64_t i0 = threadIdx.x;
    for (; i0 + 7 * step < vocab; i0 += 8 * step) {
        float v[8];
#pragma unroll
        for (int u = 0; u < 8; u++)
            v[u] = __ldcs(row + i0 + u * step);
#pragma unroll
        for (int u = 0; u < 8; u++)
            if (beats(v[u], i0 + u * step, bv, bi)) {
                bv = v[u];
                bi = i0 + u * step;
            }
    }
    for (int64_t i = i0; i < vocab; i += step)
        if (beats(row[i], i, bv, bi)) {
            bv = row[i];
            bi = i;
        }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int64_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (beats(ov, oi, bv, bi)) {
            bv = ov;
            bi = oi;
        }
    }
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    if (l == 0) {
        sv[w] = bv;
        si[w] = bi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int k = 1; k < (int)(blockDim.x >> 5); k++)
            if (beats(sv[k], si[k], bv, bi)) {
                bv = sv[k];
                bi = si[k];
            }
        next[blockIdx.x] = bi < vocab ? (int32_t)bi : 0;
    }
}

cudaError_t launched(void) { return cudaGetLastError(); }

} // namespace

extern "C" {

cudaError_t ss_rmsnorm_cuda(const uint16_t *x, const int32_t *rows, const uint16_t *w, int64_t t,
                            int64_t n, float eps, uint16_t *y, int pdl, cudaStream_t stream) {
    if (t <= 0)
        return cudaSuccess;
    return ss_launch(pdl != 0, rmsnorm_kernel, dim3((unsigned)t), dim3(row_threads((n & 7) == 0 ? n / 8 : n)), 0,
                     stream, x, rows, w, n, eps, y);
}

cudaError_t ss_residual_add_cuda(uint16_t *x, const uint16_t *d, int64_t t, int64_t n,
                                 cudaStream_t stream) {
    const int64_t total = t * n;
    if (total <= 0)
        return cudaSuccess;
    if ((total & 7) == 0) {
        const int64_t nv = total / 8;
        residual_vec8<<<(unsigned)((nv + 255) / 256), 256, 0, stream>>>(x, d, nv);
    } else {
        residual_scalar<<<(unsigned)((total + 255) / 256), 256, 0, stream>>>(x, d, total);
    }
    return launched();
}

cudaError_t ss_glu_cuda(const uint16_t *gu, int64_t t, int64_t i, int relu2, uint16_t *y,
                        cudaStream_t stream) {
    if (t <= 0 || i <= 0)
        return cudaSuccess;
    if ((i & 7) == 0) {
        const int64_t n = t * (i / 8);
        glu_kernel<8><<<(unsigned)((n + 255) / 256), 256, 0, stream>>>(gu, t, i, relu2, y);
    } else {
        const int64_t n = t * i;
        glu_kernel<1><<<(unsigned)((n + 255) / 256), 256, 0, stream>>>(gu, t, i, relu2, y);
    }
    return launched();
}

cudaError_t ss_rope_kv_write_cuda(uint16_t *qkv, const ss_tok_info *tok, int64_t t, int nh,
                                  int nkv, int hd, const float *inv_freq, const ss_kv_layer *kv,
                                  const int32_t *tables, int max_blocks, int pdl, cudaStream_t stream) {
    if (t <= 0)
        return cudaSuccess;
    const dim3 grid((unsigned)t), block(row_threads((int64_t)(nh + nkv) * hd / 2));
    const size_t smem = (size_t)(hd / 2) * 2 * sizeof(float);
    if (kv->fp8)
        return ss_launch(pdl != 0, rope_kv_kernel<true>, grid, block, smem, stream, qkv, tok, nh, nkv, hd, inv_freq,
                         *kv, tables, max_blocks);
    return ss_launch(pdl != 0, rope_kv_kernel<false>, grid, block, smem, stream, qkv, tok, nh, nkv, hd, inv_freq,
                     *kv, tables, max_blocks);
}

cudaError_t ss_embed_cuda(const uint16_t *embed, const int32_t *ids, int64_t t, int64_t h,
                          uint16_t *x, int pdl, cudaStream_t stream) {
    if (t <= 0)
        return cudaSuccess;
    return ss_launch(pdl != 0, embed_kernel, dim3((unsigned)t), dim3(row_threads((h & 7) == 0 ? h / 8 : h)), 0,
                     stream, embed, ids, h, x);
}

cudaError_t ss_argmax_cuda(const float *logits, int64_t n_rows, int64_t vocab, int32_t *next,
                           int pdl, cudaStream_t stream) {
    if (n_rows <= 0)
        return cudaSuccess;
    return ss_launch(pdl != 0, argmax_kernel, dim3((unsigned)n_rows), dim3(1024), 0, stream, logits, vocab, next);
}

} // extern "C"
