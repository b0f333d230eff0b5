/* The serving loop: schedule -> one forward over every scheduled token ->
 * greedy sampling -> commit, until the scheduler is done or a stop flag is
 * raised. Times the host side of every step (scheduling, block tables,
 * bookkeeping) apart from the forward, so "host <= 5% of a step" can be
 * checked on the GPU engine; with profile, splits the forward at the engine's
 * layer hook (costs nothing when off: no hook is installed). */
#include "slidesparse/serve.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "profile.h"
#ifdef SS_HAVE_CUDA
#include <cuda_runtime.h>
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Layer-hook state of one profiled forward. */
typedef struct {
    double *layers_s; // (n_layers)
    int n_layers;
    double last;      /* time of the previous mark */
} layer_clock;

static void on_layer(void *user, int layer, const uint16_t *x, int64_t t) {
    layer_clock *lc = user;
    double now = now_s();
    if (layer >= 0 && layer < lc->n_layers)
        lc->layers_s[layer] = now - lc->last;
    lc->last = now;
}

static void stats_add(ss_serve_stats *st, const ss_step_timing *t) {
    double total = t->host_s + t->forward_s + t->sample_s;
    st->steps++;
    st->tokens += t->n_tokens;
    st->kv_rows += t->kv_rows;
    st->host_s += t->host_s;
    st->forward_s += t->forward_s;
    st->sample_s += t->sample_s;
    if (total > 0 && t->host_s / total > st->max_host_frac)
        st->max_host_frac = t->host_s / total;
    if (t->stages) {
        const ss_stage_times *a = t->stages;
        ss_stage_times *b = &st->stages;
        b->quant_s += a->quant_s;
        b->gemm_s += a->gemm_s;
        b->dequant_s += a->dequant_s;
        b->attention_s += a->attention_s;
        b->norms_s += a->norms_s;
        b->lm_head_s += a->lm_head_s;
        b->sampling_s += a->sampling_s;
        st->has_stages = 1;
    }
    if (t->layers_s) {
        st->head_s += t->head_s;
        for (int i = 0; i < t->n_layers; i++)
            st->layers_s += t->layers_s[i];
    }
}

ss_status ss_serve_run(ss_model *m, ss_scheduler *s, const ss_serve_opts *o, ss_serve_stats *st) {
    static const ss_serve_opts none = {0};
    if (!o)
        o = &none;
    memset(st, 0, sizeof *st);
    const ss_model_config *cfg = ss_model_get_config(m);
    layer_clock lc = {.n_layers = cfg->num_hidden_layers};
    int32_t *next = NULL;
    size_t cap = 0;
    ss_status rc = SS_OK;
    /* GPU: stage events inside the forward (a layer hook would add a
     * synchronization and a host copy per layer to what is measured). */
    int gpu_stages = o->profile && ss_profile_gpu_supported(m);
    if (gpu_stages)
        SS_TRY(ss_profile_gpu_enable(m, 1));
    else if (o->profile) {
        lc.layers_s = calloc((size_t)lc.n_layers, sizeof *lc.layers_s);
        if (!lc.layers_s)
            return ss_fail(SS_ENOMEM, "serve: out of memory");
        ss_model_set_layer_hook(m, on_layer, &lc);
    }
    double t_start = now_s();
    while (!ss_scheduler_done(s)) {
        if (o->stop && *o->stop) {
            st->stopped = 1;
            break;
        }
        ss_step_timing t = {.step = st->steps};
        ss_sched_batch b;
        double t0 = now_s();
        if ((rc = ss_scheduler_schedule(s, &b)) != SS_OK)
            goto fail;
        if ((size_t)b.n > cap) {
            cap = (size_t)b.n;
            free(next);
            next = malloc(cap * sizeof *next);
            if (!next) {
                rc = ss_fail(SS_ENOMEM, "serve: out of memory for the next tokens of %zu sequences", cap);
                goto fail;
            }
        }
        double t1 = now_s();
        lc.last = t1;
        /* Greedy ids only: no per-step copy of n x vocab logits off the GPU. */
        if ((rc = ss_model_forward_next(m, ss_scheduler_kv(s), b.steps, b.n, NULL, next)) != SS_OK)
            goto fail;
        double t2 = now_s();
        for (int i = 0; i < b.n; i++)
            next[i] = b.sample[i] ? next[i] : 0;
        double t3 = now_s();
        ss_stage_times stages;
        int has_stages = 0;
        if (gpu_stages) {
            ss_profile_gpu_read(m, &stages);
            has_stages = 1;
        } else if (o->profile && ss_profile_replay_supported(m)) {
            /* Before the commit: retiring would free the blocks it reads. */
            if ((rc = ss_profile_replay(m, ss_scheduler_kv(s), b.steps, b.n, &stages)) != SS_OK)
                goto fail;
            has_stages = 1;
        }
        double t3b = now_s();
        st->replay_s += t3b - t3;
        if ((rc = ss_scheduler_commit(s, next)) != SS_OK)
            goto fail;
        double t4 = now_s();
        for (int i = 0; i < b.n; i++)
            st->generated += b.sample[i];
        t.n_seqs = b.n;
        t.n_tokens = b.n_tokens;
        t.n_decode = b.n_decode;
        for (int i = 0; i < b.n; i++)
            t.kv_rows += b.steps[i].start_pos + b.steps[i].n_tokens;
        t.host_s = (t1 - t0) + (t4 - t3b);
        t.forward_s = t2 - t1;
        t.sample_s = t3 - t2;
        if (o->profile) {
            t.layers_s = lc.layers_s; /* NULL with GPU stages */
            t.n_layers = lc.n_layers;
            t.head_s = t2 - lc.last;
            t.stages = has_stages ? &stages : NULL;
        }
        stats_add(st, &t);
        if (o->on_step)
            o->on_step(o->user, &t);
    }
fail:
    st->elapsed_s = now_s() - t_start - st->replay_s;
    st->preemptions = ss_scheduler_preemptions(s);
    if (gpu_stages)
        (void)ss_profile_gpu_enable(m, 0);
    else if (o->profile)
        ss_model_set_layer_hook(m, NULL, NULL);
    free(lc.layers_s);
    free(next);
    return rc;
}

// --- KV pool sizing ---------------------------------------------------------------------------

size_t ss_kv_block_bytes(const ss_model_config *c, ss_kv_dtype d) {
    return 2 * (size_t)c->num_hidden_layers * SS_KV_BLOCK * (size_t)c->num_key_value_heads *
           ss_kv_row_bytes(d, c->head_dim);
}

/* Median of 10 timed 256 MB device-to-device copies after one warm-up. */
ss_status ss_device_copy_tbs(const ss_context *ctx, double *tbs) {
    *tbs = 0;
    if (ss_context_device(ctx) < 0)
        return ss_fail(SS_EUNSUPPORTED, "copy bandwidth: a CPU context has no device");
#ifdef SS_HAVE_CUDA
    enum { REPS = 10 };
    const size_t bytes = (size_t)256 << 20;
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    float ms[REPS];
    ss_status rc = SS_OK;
    cudaError_t e = cudaMalloc(&a, bytes);
    if (e == cudaSuccess)
        e = cudaMalloc(&b, bytes);
    if (e == cudaSuccess)
        e = cudaEventCreate(&e0);
    if (e == cudaSuccess)
        e = cudaEventCreate(&e1);
    if (e == cudaSuccess)
        e = cudaMemset(a, 1, bytes); /* not zeros: METHOD of measuring on real data */
    for (int i = -1; i < REPS && e == cudaSuccess; i++) {
        e = cudaEventRecord(e0, 0);
        if (e == cudaSuccess)
            e = cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0);
        if (e == cudaSuccess)
            e = cudaEventRecord(e1, 0);
        if (e == cudaSuccess)
            e = cudaEventSynchronize(e1);
        if (e == cudaSuccess && i >= 0)
            e = cudaEventElapsedTime(&ms[i], e0, e1);
    }
    if (e != cudaSuccess) {
        rc = ss_fail(SS_ECUDA, "copy bandwidth: %s", cudaGetErrorString(e));
        goto fail;
    }
    for (int i = 1; i < REPS; i++) /* insertion sort: 10 values */
        for (int j = i; j > 0 && ms[j] < ms[j - 1]; j--) {
            float t = ms[j];
            ms[j] = ms[j - 1];
            ms[j - 1] = t;
        }
    *tbs = 2.0 * (double)bytes / (0.5 * (ms[REPS / 2 - 1] + ms[REPS / 2]) * 1e-3) / 1e12;
fail:
    cudaFree(a);
    cudaFree(b);
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    return rc;
#else
    return ss_fail(SS_EUNSUPPORTED, "copy bandwidth: built without CUDA");
#endif
}

ss_status ss_device_memory(const ss_context *ctx, size_t *free_b, size_t *total_b) {
    *free_b = *total_b = 0;
    if (ss_context_device(ctx) < 0)
        return ss_fail(SS_EUNSUPPORTED, "device memory: a CPU context has no device memory");
#ifdef SS_HAVE_CUDA
    size_t f = 0, t = 0;
    cudaError_t e = cudaMemGetInfo(&f, &t);
    if (e != cudaSuccess)
        return ss_fail(SS_ECUDA, "device memory: cudaMemGetInfo failed: %s", cudaGetErrorString(e));
    *free_b = f;
    *total_b = t;
    return SS_OK;
#else
    return ss_fail(SS_EUNSUPPORTED, "device memory: built without CUDA");
#endif
}
