/* placeholder until the linear-layer engineer lands the real dispatch */
#include "linear/backend.h"
#ifndef SS_HAVE_CUDA
int ss_cuda_device_count(void) { return 0; }
#endif
