/* mbarriers and the bulk copy engine (cp.async.bulk without a tensor map: a
 * weight chunk in the stream layout is one contiguous run of records), sm_90.
 * Shared by the stream GEMM (src/linear/sm90stream.cu) and the decode GEMM
 * harness (dev/decode_gemm.cu), so that both wait and copy the same way.
 * Addresses are shared-memory (cvta) addresses. */
#ifndef SS_LINEAR_KERNELS_BULK_COPY_CUH
#define SS_LINEAR_KERNELS_BULK_COPY_CUH

#include <stdint.h>

namespace {

__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
/* one arrival that also expects `bytes` of copies to complete this phase */
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
/* until the phase of parity `parity` has completed */
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    asm volatile("{\n"
                 ".reg .pred p;\n"
                 "WAIT_%=:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
                 "@!p bra WAIT_%=;\n"
                 "}" ::"r"(bar), "r"(parity) : "memory");
}
/* `bytes` (a multiple of 16) from global to shared memory, counted on `bar` */
__device__ __forceinline__ void bulk_load(uint32_t dst, const void *src, uint32_t bytes, uint32_t bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
}

} // namespace

#endif
