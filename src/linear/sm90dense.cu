/* The dense kernels of the sm90sp kernel family (linear/sm90_gemm.cuh): plain
 * wgmma with the same tiles, schedules and fused dequant epilogue as the 2:4
 * kernels, INT8 and FP8, used by the sm90dense backend (sm90sp.cu). A file of
 * its own so its six instantiations (Coop, Ping, Skinny x 2 dtypes) compile in
 * parallel with sm90sp.cu's six.
 */
#include "sm90_gemm.cuh"

namespace ss_sm90sp {
template ss_status run<Coop<false, int8_t>>(const Launch &, ss_cuda_buf *, const char *,
                                            cudaStream_t);
template ss_status run<Ping<false, int8_t>>(const Launch &, ss_cuda_buf *, const char *,
                                            cudaStream_t);
template ss_status run<Coop<false, E4M3>>(const Launch &, ss_cuda_buf *, const char *,
                                          cudaStream_t);
template ss_status run<Ping<false, E4M3>>(const Launch &, ss_cuda_buf *, const char *,
                                          cudaStream_t);
template ss_status run<Skinny<false, int8_t>>(const Launch &, ss_cuda_buf *, const char *,
                                              cudaStream_t);
template ss_status run<Skinny<false, E4M3>>(const Launch &, ss_cuda_buf *, const char *,
                                            cudaStream_t);
} // namespace ss_sm90sp
