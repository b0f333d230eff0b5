/* L2 prefetch of a linear's weights (cc >= 9.0), issued a few kernels before
 * its GEMM runs.
 *
 * Why: at decode sizes a projection GEMM is latency-bound, not bandwidth-
 * bound. On the H100 (BitNet-2B INT8, M 64, four projections summed) the
 * sm90dense GEMMs take 77 µs per layer with the weights in HBM and 54 µs
 * with them already in L2 (`bench kernel --no-flush`), while HBM runs at a
 * third of its rate during the GEMMs and is nearly idle during the norm /
 * quant / dequant kernels between them. Pulling the next GEMM's weights into
 * L2 while those kernels run moves that stream off the GEMM's critical path.
 *
 * How: one prefetch.global.L2 per 128-byte line, spread over a grid of one
 * block per SM: a thread issues its ~8 requests and moves on; nothing waits
 * for the lines to arrive. (The first version used cp.async.bulk.prefetch
 * from 4 blocks: a grid apparently does not complete before its bulk
 * requests do, so the whole stream sat on the critical path at ~0.6 TB/s
 * and decode halved on the H100.) The weights are never written by any
 * kernel of the forward, so the requests go out before griddepcontrol.wait;
 * the kernel still waits before it exits (pdl.cuh's contract: the next
 * kernel's wait must cover everything before this one). A hint: nothing
 * reads what it fetched through it, so results cannot depend on it.
 */
#include <cstdint>

#include "linear/kernels/kernels.h"
#include "linear/kernels/pdl.cuh"

namespace {

constexpr int64_t kLine = 128; /* bytes per prefetch request: an L2 line */
constexpr int kBlocks = 132, kThreads = 256;

struct spans {
    const char *p[SS_PREFETCH_SPANS];
    size_t n[SS_PREFETCH_SPANS];
};

__global__ void __launch_bounds__(kThreads) l2_prefetch_kernel(spans s) {
    ss_pdl_trigger();
    const int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, nt = (int64_t)gridDim.x * blockDim.x;
    for (int i = 0; i < SS_PREFETCH_SPANS; i++)
        for (int64_t off = t * kLine; off < (int64_t)s.n[i]; off += nt * kLine)
            asm volatile("prefetch.global.L2 [%0];" ::"l"(s.p[i] + off));
    ss_pdl_wait();
}

} // namespace

extern "C" cudaError_t ss_kernel_l2_prefetch(const void *const *p, const size_t *bytes, int n, int pdl,
                                             cudaStream_t stream) {
    spans s = {};
    for (int i = 0; i < n && i < SS_PREFETCH_SPANS; i++) {
        s.p[i] = (const char *)p[i];
        s.n[i] = p[i] ? bytes[i] : 0;
    }
    return ss_launch(pdl != 0, l2_prefetch_kernel, dim3(kBlocks), dim3(kThreads), 0, stream, s);
}
