/* L2 prefetch of a linear's weights (cc >= 9.0), on a side stream beside the
 * forward.
 *
 * Why: at decode sizes a projection GEMM is bound by latency, not by the
 * bytes. On the H100 (BitNet-2B INT8, M 64, four projections summed) the
 * sm90dense GEMMs take 77 µs per layer with the weights in HBM and 54 µs with
 * them in L2, while HBM runs at a third of its rate during the GEMMs and is
 * nearly idle during the norm / quant / dequant / attention kernels between
 * them. A second stream that keeps pulling the next projection's weights into
 * L2 lets the weight stream run at the memory's pace, decoupled from the
 * GEMMs' own pipelines.
 *
 * How: one `prefetch.global.L2` per 128-byte line; nothing reads the lines
 * through this kernel, so it issues and moves on. The blocks are one warp of
 * few registers: a warp-specialized CUTLASS GEMM takes all but ~1k of an SM's
 * 64k registers, and a bigger prefetch block would keep its CTA off that SM
 * while it runs (the earlier in-stream form, bulk prefetches from 4 blocks,
 * put the whole stream on the critical path and halved decode). With
 * evict_last the lines ask L2 to outlive streaming data (the KV cache) until
 * the GEMM has read them. A hint: results never depend on it.
 */
#include <cstdint>

#include "linear/kernels/kernels.h"

namespace {

constexpr int64_t kLine = 128; /* bytes per request: an L2 line */
constexpr int kThreads = 32;

struct spans {
    const char *p[SS_PREFETCH_SPANS];
    int64_t n[SS_PREFETCH_SPANS];
};

template <bool Last>
__global__ void __launch_bounds__(kThreads) l2_prefetch_kernel(spans s) {
    const int64_t t = (int64_t)blockIdx.x * kThreads + threadIdx.x, step = (int64_t)gridDim.x * kThreads * kLine;
#pragma unroll
    for (int i = 0; i < SS_PREFETCH_SPANS; i++)
        for (int64_t off = t * kLine; off < s.n[i]; off += step) {
            if (Last)
                asm volatile("prefetch.global.L2::evict_last [%0];" ::"l"(s.p[i] + off));
            else
                asm volatile("prefetch.global.L2 [%0];" ::"l"(s.p[i] + off));
        }
}

} // namespace

extern "C" cudaError_t ss_kernel_l2_prefetch(const void *const *p, const size_t *bytes, int n, int blocks,
                                             int evict_last, cudaStream_t stream) {
    spans s = {};
    for (int i = 0; i < n && i < SS_PREFETCH_SPANS; i++) {
        s.p[i] = (const char *)p[i];
        s.n[i] = p[i] ? (int64_t)bytes[i] : 0;
    }
    if (blocks <= 0)
        return cudaSuccess;
    if (evict_last)
        l2_prefetch_kernel<true><<<blocks, kThreads, 0, stream>>>(s);
    else
        l2_prefetch_kernel<false><<<blocks, kThreads, 0, stream>>>(s);
    return cudaGetLastError();
}
