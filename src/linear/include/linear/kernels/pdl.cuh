/* Programmatic dependent launch (PDL, cc >= 9.0) for every kernel of the
 * forward: a kernel launched with the attribute may be scheduled while the
 * previous kernel in the stream still runs (from the moment all of that
 * kernel's blocks executed ss_pdl_trigger(), or exited). Decode runs ~12
 * short kernels per layer; without PDL each one's launch, block scheduling
 * and prologue sit in the gap after its predecessor drains, with PDL they
 * overlap it.
 *
 * The contract every PDL kernel keeps:
 *   - ss_pdl_wait() (griddepcontrol.wait: the previous grid has completed and
 *     its writes are visible) before the first read of anything a previous
 *     kernel wrote and before any global write (a predecessor may still read
 *     what we would overwrite);
 *   - every block executes ss_pdl_wait() before it exits, also a block with
 *     nothing to do: the next kernel's wait covers only its direct
 *     predecessor, so the chain of completions stays transitive only when
 *     each kernel finishes after the one before it;
 *   - before the wait only data no kernel of the forward writes: weights,
 *     norm gammas, scales, rope tables, and the batch metadata (tokens,
 *     positions, block tables, attention tiles: uploaded by a copy that
 *     completes before the forward's first kernel starts), and shared memory.
 * Without the attribute (SS_PDL=0, cc < 9.0) both calls are no-ops, and
 * the results never depend on PDL: same arithmetic, same order.
 */
#ifndef SS_LINEAR_KERNELS_PDL_CUH
#define SS_LINEAR_KERNELS_PDL_CUH

#include <cuda_runtime.h>
#include <utility>

__device__ __forceinline__ void ss_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/* Lets the next kernel's blocks be scheduled: safe anywhere, since that
 * kernel waits for this one's completion before touching its outputs. */
__device__ __forceinline__ void ss_pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;");
#endif
}

/* kernel<<<grid, block, smem, stream>>>(args...), as a programmatic
 * dependent launch when pdl; returns the launch error. */
template <typename... KArgs, typename... Args>
cudaError_t ss_launch(bool pdl, void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
                      cudaStream_t stream, Args &&...args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = pdl ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

#endif
