/* Internal (CUDA builds): per-stage GPU time of a forward from cudaEvents
 * (stage_clock.c), for the serving loop's --profile. The engine marks the end
 * of every stage on its stream; after the forward's synchronization the
 * elapsed time between consecutive marks is summed per stage. Only created
 * while profiling: the forward's cost when off is one NULL test per stage.
 */
#ifndef SS_ENGINE_CUDA_STAGE_CLOCK_H
#define SS_ENGINE_CUDA_STAGE_CLOCK_H

#include <cuda_runtime_api.h>

#include "engine/cuda/engine_gpu.h"

typedef struct ss_stage_clock ss_stage_clock; /* opaque */

ss_status ss_stage_clock_create(ss_stage_clock **out);
void ss_stage_clock_destroy(ss_stage_clock *c);
/* Starts a forward: forgets the previous marks and records the origin. */
ss_status ss_stage_clock_start(ss_stage_clock *c, cudaStream_t st);
/* The work queued since the previous mark (or the origin) was `stage`. */
ss_status ss_stage_clock_mark(ss_stage_clock *c, ss_gpu_stage stage, cudaStream_t st);
/* After the stream is synchronized: secs[stage] = sum of its intervals. */
ss_status ss_stage_clock_read(const ss_stage_clock *c, double secs[SS_GPU_STAGE_COUNT]);

#endif
