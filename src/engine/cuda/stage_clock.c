/* Per-stage cudaEvent timing of one forward (see stage_clock.h). Events are
 * created as the number of marks per forward grows (the first profiled
 * forward of a shape), never destroyed until the clock is. */
#ifdef SS_HAVE_CUDA

#include "stage_clock.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

struct ss_stage_clock {
    cudaEvent_t *ev;      // (cap) ev[0] = origin, ev[i] ends interval i
    ss_gpu_stage *stage;  // (cap) stage[i] of interval i (ev[i-1], ev[i]]
    int n, cap;           /* events recorded in this forward / created */
};

static ss_status clock_fail(cudaError_t e, const char *what) {
    (void)cudaGetLastError();
    return ss_fail(SS_ECUDA, "engine (GPU) profile: %s: %s", what, cudaGetErrorString(e));
}

ss_status ss_stage_clock_create(ss_stage_clock **out) {
    *out = calloc(1, sizeof **out);
    if (!*out)
        return ss_fail(SS_ENOMEM, "engine (GPU) profile: out of memory");
    return SS_OK;
}

void ss_stage_clock_destroy(ss_stage_clock *c) {
    if (!c)
        return;
    for (int i = 0; i < c->cap; i++)
        cudaEventDestroy(c->ev[i]);
    free(c->ev);
    free(c->stage);
    free(c);
}

static ss_status record(ss_stage_clock *c, cudaStream_t st) {
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 256;
        cudaEvent_t *ev = realloc(c->ev, (size_t)cap * sizeof *ev);
        if (!ev)
            return ss_fail(SS_ENOMEM, "engine (GPU) profile: out of memory for %d events", cap);
        c->ev = ev;
        ss_gpu_stage *sg = realloc(c->stage, (size_t)cap * sizeof *sg);
        if (!sg)
            return ss_fail(SS_ENOMEM, "engine (GPU) profile: out of memory for %d events", cap);
        c->stage = sg;
        for (; c->cap < cap; c->cap++) {
            cudaError_t e = cudaEventCreate(&c->ev[c->cap]);
            if (e != cudaSuccess)
                return clock_fail(e, "cudaEventCreate");
        }
    }
    cudaError_t e = cudaEventRecord(c->ev[c->n], st);
    if (e != cudaSuccess)
        return clock_fail(e, "cudaEventRecord");
    c->n++;
    return SS_OK;
}

ss_status ss_stage_clock_start(ss_stage_clock *c, cudaStream_t st) {
    c->n = 0;
    return record(c, st);
}

ss_status ss_stage_clock_mark(ss_stage_clock *c, ss_gpu_stage stage, cudaStream_t st) {
    SS_TRY(record(c, st));
    c->stage[c->n - 1] = stage;
    return SS_OK;
}

ss_status ss_stage_clock_read(const ss_stage_clock *c, double secs[SS_GPU_STAGE_COUNT]) {
    memset(secs, 0, SS_GPU_STAGE_COUNT * sizeof *secs);
    for (int i = 1; i < c->n; i++) {
        float ms = 0.0f;
        cudaError_t e = cudaEventElapsedTime(&ms, c->ev[i - 1], c->ev[i]);
        if (e != cudaSuccess)
            return clock_fail(e, "cudaEventElapsedTime");
        secs[c->stage[i]] += 1e-3 * (double)ms;
    }
    return SS_OK;
}

#else
typedef int ss_stage_clock_not_built; /* CPU-only build: nothing here */
#endif /* SS_HAVE_CUDA */
