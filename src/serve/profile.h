/* Internal: the per-stage replay profiler of the CPU engine (profile.c). */
#ifndef SS_SERVE_PROFILE_H
#define SS_SERVE_PROFILE_H

#include "slidesparse/serve.h"

/* Replays the stages of the forward just run on seqs (n_seqs) — before the
 * batch is committed — and adds each stage's time to *st (zeroed first).
 * SS_EUNSUPPORTED on a GPU engine. */
ss_status ss_profile_replay(ss_model *m, ss_kv_cache *c, const ss_seq_step *seqs, int n_seqs,
                            ss_stage_times *st);

/* 1 when ss_profile_replay can run on m (the CPU engine). */
int ss_profile_replay_supported(const ss_model *m);

/* GPU engine: per-stage cudaEvent timing inside the forward itself. */
int ss_profile_gpu_supported(const ss_model *m);
ss_status ss_profile_gpu_enable(ss_model *m, int on);
/* The stages of the forward just run. */
void ss_profile_gpu_read(const ss_model *m, ss_stage_times *st);

#endif
