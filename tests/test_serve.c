/* The continuous-batching scheduler, the serving loop and the throughput
 * benchmark pieces on the CPU engine (tests/data/engine/bitnet: 2 layers,
 * vocab 320, max_position_embeddings 128).
 *
 * Scheduler properties are checked by driving it without a forward (the
 * scheduler only needs block accounting), against invariants computed here:
 * S and T limits, chunk sizes, decode tokens in every step, blocks returned.
 * Serving results are checked against ss_generate_greedy run one request at a
 * time: batching, chunking, the order of requests and preemption with
 * recomputation must not change a single token. */
#include "support/ss_test.h"

#include <string.h>
#include <sys/stat.h>

#include "slidesparse/serve.h"

static ss_context *g_ctx;
static ss_model *g_model;

static int setup(void **st) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/engine/bitnet", getenv("SS_TEST_DATA"));
    if (ss_context_create(-1, &g_ctx) != SS_OK || ss_model_load(g_ctx, SS_BACKEND_CPU, dir, &g_model) != SS_OK) {
        fprintf(stderr, "cannot load %s: %s\n", dir, ss_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **st) {
    ss_model_destroy(g_model);
    ss_context_destroy(g_ctx);
    return 0;
}

/* n random prompts of max_len ids (< vocab 320), back to back. */
static int32_t *make_prompts(int n, int max_len, uint64_t seed) {
    ss_rng r = {seed};
    int32_t *p = malloc((size_t)n * (size_t)max_len * sizeof *p);
    assert_non_null(p);
    for (int i = 0; i < n * max_len; i++)
        p[i] = (int32_t)ss_rng_below(&r, 320);
    return p;
}

// --- scheduler without a forward -------------------------------------------------------------

/* Drives s to completion with token 7 for every sample; checks the limits of
 * every batch, that every decoding request is scheduled in every step that
 * preempts nothing, and that chunks never exceed T. Returns the step count. */
static int drive(ss_scheduler *s, const ss_sched_config *c, int n_req) {
    int steps = 0;
    int32_t tok[256];
    for (;;) {
        /* Requests that are decoding now (have output, not finished). */
        int decoding[256] = {0};
        for (int id = 0; id < n_req; id++) {
            int64_t n;
            int fin;
            ss_scheduler_output(s, id, &n, &fin);
            decoding[id] = n > 0 && !fin;
        }
        ss_sched_batch b;
        assert_ok(ss_scheduler_schedule(s, &b));
        if (b.n == 0)
            break;
        steps++;
        assert_true(b.n <= c->max_num_seqs);
        assert_true(b.n_tokens <= c->max_num_batched_tokens);
        int64_t sum = 0;
        int in_batch[256] = {0};
        for (int i = 0; i < b.n; i++) {
            sum += b.steps[i].n_tokens;
            assert_true(b.steps[i].n_tokens >= 1);
            in_batch[b.ids[i]] = 1;
            tok[i] = 7;
        }
        assert_int_equal(sum, b.n_tokens);
        if (b.preempted == 0)
            for (int id = 0; id < n_req; id++)
                if (decoding[id] && !in_batch[id])
                    fail_msg("step %d: decoding request %d not scheduled", steps, id);
        assert_ok(ss_scheduler_commit(s, tok));
        assert_true(ss_scheduler_n_running(s) <= c->max_num_seqs);
    }
    return steps;
}

static void test_admission_limits(void **st) {
    ss_kv_cache *kv;
    assert_ok(ss_kv_cache_create(g_model, 256, &kv));
    /* S bounds the first batch: 10 prompts of 5, S = 3, T = 100. */
    ss_sched_config c = {.max_num_seqs = 3, .max_num_batched_tokens = 100};
    ss_scheduler *s;
    assert_ok(ss_scheduler_create(g_model, kv, &c, &s));
    int32_t *p = make_prompts(10, 5, 1);
    for (int i = 0; i < 10; i++)
        assert_ok(ss_scheduler_add(s, &(ss_request){p + 5 * i, 5, 3}, NULL));
    ss_sched_batch b;
    assert_ok(ss_scheduler_schedule(s, &b));
    assert_int_equal(b.n, 3);
    assert_int_equal(b.n_tokens, 15);
    assert_int_equal(ss_scheduler_n_waiting(s), 7);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(b.ids[i], i); /* FIFO */
        assert_int_equal(b.sample[i], 1);
    }
    int32_t tok[3] = {1, 2, 3};
    assert_ok(ss_scheduler_commit(s, tok));
    drive(s, &c, 10);
    assert_int_equal(ss_kv_cache_free_blocks(kv), 256);
    ss_scheduler_destroy(s);

    /* T bounds it: S = 8, T = 12 -> 5 + 5 + a chunk of 2. */
    c = (ss_sched_config){.max_num_seqs = 8, .max_num_batched_tokens = 12};
    assert_ok(ss_scheduler_create(g_model, kv, &c, &s));
    for (int i = 0; i < 10; i++)
        assert_ok(ss_scheduler_add(s, &(ss_request){p + 5 * i, 5, 3}, NULL));
    assert_ok(ss_scheduler_schedule(s, &b));
    assert_int_equal(b.n, 3);
    assert_int_equal(b.n_tokens, 12);
    assert_int_equal(b.steps[2].n_tokens, 2);
    assert_int_equal(b.sample[2], 0);
    int32_t t3[3] = {4, 5, 6};
    assert_ok(ss_scheduler_commit(s, t3));
    drive(s, &c, 10);
    assert_int_equal(ss_kv_cache_free_blocks(kv), 256);
    ss_scheduler_destroy(s);

    assert_fails(ss_scheduler_create(g_model, kv, &(ss_sched_config){4, 3}, &s), SS_EINVAL, "T >= S");
    free(p);
    ss_kv_cache_destroy(kv);
}

static void test_chunked_prefill(void **st) {
    ss_kv_cache *kv;
    assert_ok(ss_kv_cache_create(g_model, 64, &kv));
    ss_sched_config c = {.max_num_seqs = 2, .max_num_batched_tokens = 16};
    ss_scheduler *s;
    assert_ok(ss_scheduler_create(g_model, kv, &c, &s));
    int32_t *p = make_prompts(1, 40, 2);
    assert_ok(ss_scheduler_add(s, &(ss_request){p, 40, 2}, NULL));
    int64_t want_start[3] = {0, 16, 32}, want_n[3] = {16, 16, 8};
    for (int k = 0; k < 3; k++) {
        ss_sched_batch b;
        assert_ok(ss_scheduler_schedule(s, &b));
        assert_int_equal(b.n, 1);
        assert_int_equal(b.steps[0].start_pos, want_start[k]);
        assert_int_equal(b.steps[0].n_tokens, want_n[k]);
        assert_memory_equal(b.steps[0].tokens, p + want_start[k], (size_t)want_n[k] * sizeof *p);
        assert_int_equal(b.sample[0], k == 2);
        /* Blocks for every position written so far are reserved. */
        assert_true(b.steps[0].kv->n_blocks * SS_KV_BLOCK >= want_start[k] + want_n[k]);
        int32_t t = 9;
        assert_ok(ss_scheduler_commit(s, &t));
    }
    int64_t n;
    const int32_t *out = ss_scheduler_output(s, 0, &n, NULL);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 9);
    /* Then one decode token, at position 40, and it is done. */
    ss_sched_batch b;
    assert_ok(ss_scheduler_schedule(s, &b));
    assert_int_equal(b.steps[0].start_pos, 40);
    assert_int_equal(b.steps[0].n_tokens, 1);
    assert_int_equal(b.steps[0].tokens[0], 9);
    int32_t t = 11;
    assert_ok(ss_scheduler_commit(s, &t));
    assert_true(ss_scheduler_done(s));
    assert_int_equal(ss_kv_cache_free_blocks(kv), 64);
    ss_scheduler_destroy(s);
    free(p);
    ss_kv_cache_destroy(kv);
}

/* Decoding sequences get their token even while a long prompt is chunked
 * behind them; random mixes keep every invariant of drive(). */
static void test_decode_every_step(void **st) {
    ss_kv_cache *kv;
    assert_ok(ss_kv_cache_create(g_model, 512, &kv));
    ss_rng r = {3};
    int32_t *p = make_prompts(40, 100, 4);
    for (int trial = 0; trial < 20; trial++) {
        ss_sched_config c = {.max_num_seqs = (int)ss_rng_range(&r, 1, 8)};
        c.max_num_batched_tokens = c.max_num_seqs + ss_rng_range(&r, 0, 40);
        ss_scheduler *s;
        assert_ok(ss_scheduler_create(g_model, kv, &c, &s));
        int n = (int)ss_rng_range(&r, 1, 40);
        for (int i = 0; i < n; i++)
            assert_ok(ss_scheduler_add(s, &(ss_request){p + 100 * i, ss_rng_range(&r, 1, 100), ss_rng_range(&r, 1, 20)}, NULL));
        drive(s, &c, n);
        for (int i = 0; i < n; i++) {
            int64_t k;
            int fin;
            assert_non_null(ss_scheduler_output(s, i, &k, &fin));
            assert_int_equal(fin, 1);
        }
        assert_int_equal(ss_kv_cache_free_blocks(kv), 512);
        assert_int_equal(ss_scheduler_preemptions(s), 0);
        ss_scheduler_destroy(s);
    }
    free(p);
    ss_kv_cache_destroy(kv);
}

static void test_retire_frees_blocks(void **st) {
    ss_kv_cache *kv;
    assert_ok(ss_kv_cache_create(g_model, 16, &kv));
    ss_sched_config c = {.max_num_seqs = 4, .max_num_batched_tokens = 64};
    ss_scheduler *s;
    assert_ok(ss_scheduler_create(g_model, kv, &c, &s));
    int32_t *p = make_prompts(2, 20, 5);
    assert_ok(ss_scheduler_add(s, &(ss_request){p, 20, 2}, NULL));      /* 21 cached: 2 blocks */
    assert_ok(ss_scheduler_add(s, &(ss_request){p + 20, 20, 20}, NULL)); /* up to 39: 3 blocks */
    ss_sched_batch b;
    int32_t t[2] = {1, 1};
    assert_ok(ss_scheduler_schedule(s, &b));
    assert_int_equal(16 - ss_kv_cache_free_blocks(kv), 4);
    assert_ok(ss_scheduler_commit(s, t));
    assert_ok(ss_scheduler_schedule(s, &b)); /* both decode; the first finishes */
    assert_int_equal(b.n, 2);
    assert_ok(ss_scheduler_commit(s, t));
    assert_int_equal(ss_scheduler_n_running(s), 1);
    assert_int_equal(16 - ss_kv_cache_free_blocks(kv), 2);
    ss_scheduler_destroy(s); /* unfinished sequences give their blocks back too */
    assert_int_equal(ss_kv_cache_free_blocks(kv), 16);
    free(p);
    ss_kv_cache_destroy(kv);
}

/* Cancel: a running and a waiting request leave at once with their blocks;
 * a finished one only frees its memory; the rest runs on unchanged. */
static void test_cancel_frees_blocks(void **st) {
    ss_kv_cache *kv;
    assert_ok(ss_kv_cache_create(g_model, 16, &kv));
    ss_sched_config c = {.max_num_seqs = 2, .max_num_batched_tokens = 64};
    ss_scheduler *s;
    assert_ok(ss_scheduler_create(g_model, kv, &c, &s));
    int32_t *p = make_prompts(3, 20, 6);
    for (int i = 0; i < 3; i++)
        assert_ok(ss_scheduler_add(s, &(ss_request){p + 20 * i, 20, i == 0 ? 1 : 30}, NULL));
    ss_sched_batch b;
    int32_t t[2] = {1, 1};
    assert_ok(ss_scheduler_schedule(s, &b)); /* 0 and 1 run (S 2), 2 waits */
    assert_int_equal(b.n, 2);
    assert_fails(ss_scheduler_cancel(s, 1), SS_EINVAL, "awaits its commit");
    assert_ok(ss_scheduler_commit(s, t)); /* 0 finished */
    assert_int_equal(ss_scheduler_n_running(s), 1);
    assert_ok(ss_scheduler_cancel(s, 0));
    assert_ok(ss_scheduler_cancel(s, 2)); /* waiting */
    assert_int_equal(ss_scheduler_n_waiting(s), 0);
    int64_t n;
    assert_null(ss_scheduler_output(s, 2, &n, NULL));
    assert_int_equal(n, 0);
    assert_fails(ss_scheduler_cancel(s, 2), SS_EINVAL, "no such request");
    assert_fails(ss_scheduler_cancel(s, 7), SS_EINVAL, "no such request");
    assert_ok(ss_scheduler_schedule(s, &b)); /* 1 decodes alone */
    assert_int_equal(b.n, 1);
    assert_int_equal(b.ids[0], 1);
    assert_ok(ss_scheduler_commit(s, t));
    assert_ok(ss_scheduler_cancel(s, 1)); /* running */
    assert_true(ss_scheduler_done(s));
    assert_int_equal(ss_kv_cache_free_blocks(kv), 16);
    ss_scheduler_destroy(s);
    free(p);
    ss_kv_cache_destroy(kv);
}

static void test_request_errors(void **st) {
    ss_kv_cache *kv;
    assert_ok(ss_kv_cache_create(g_model, 4, &kv));
    ss_sched_config c = {.max_num_seqs = 2, .max_num_batched_tokens = 8};
    ss_scheduler *s;
    assert_ok(ss_scheduler_create(g_model, kv, &c, &s));
    int32_t p[100] = {0};
    assert_fails(ss_scheduler_add(s, &(ss_request){p, 100, 29}, NULL), SS_EINVAL, "max_position_embeddings 128");
    assert_fails(ss_scheduler_add(s, &(ss_request){p, 60, 20}, NULL), SS_ENOMEM, "the pool holds 4");
    p[3] = 320;
    assert_fails(ss_scheduler_add(s, &(ss_request){p, 10, 2}, NULL), SS_EINVAL, "out of vocabulary");
    p[3] = 0;
    /* 64 + 1 tokens need exactly 4 blocks (the last token is never cached). */
    assert_ok(ss_scheduler_add(s, &(ss_request){p, 64, 1}, NULL));
    assert_ok(ss_scheduler_add(s, &(ss_request){p, 63, 2}, NULL));
    int32_t t = 0;
    assert_fails(ss_scheduler_commit(s, &t), SS_EINVAL, "without a scheduled batch");
    ss_scheduler_destroy(s);
    ss_kv_cache_destroy(kv);
}

// --- serving with the model ----------------------------------------------------------------

#define NREQ 6

typedef struct {
    int32_t prompts[NREQ][40];
    int64_t len[NREQ], max_new[NREQ];
    int32_t ref[NREQ][40];
} requests;

static void make_requests(requests *q) {
    ss_rng r = {11};
    for (int i = 0; i < NREQ; i++) {
        q->len[i] = ss_rng_range(&r, 1, 40);
        q->max_new[i] = ss_rng_range(&r, 1, 30);
        for (int j = 0; j < q->len[i]; j++)
            q->prompts[i][j] = (int32_t)ss_rng_below(&r, 320);
        assert_ok(ss_generate_greedy(g_model, q->prompts[i], q->len[i], q->max_new[i], q->ref[i], NULL));
    }
}

/* Serves q (in order `order`) and compares every request with its reference;
 * returns the preemptions. */
static int64_t serve_and_check(const requests *q, const int *order, int32_t blocks, int S, int64_t T) {
    ss_kv_cache *kv;
    assert_ok(ss_kv_cache_create(g_model, blocks, &kv));
    ss_sched_config c = {.max_num_seqs = S, .max_num_batched_tokens = T};
    ss_scheduler *s;
    assert_ok(ss_scheduler_create(g_model, kv, &c, &s));
    int64_t id[NREQ];
    for (int k = 0; k < NREQ; k++) {
        int i = order[k];
        assert_ok(ss_scheduler_add(s, &(ss_request){q->prompts[i], q->len[i], q->max_new[i]}, &id[i]));
    }
    ss_serve_stats stats;
    assert_ok(ss_serve_run(g_model, s, NULL, &stats));
    assert_int_equal(stats.stopped, 0);
    int64_t gen = 0;
    for (int i = 0; i < NREQ; i++) {
        int64_t n;
        int fin;
        const int32_t *out = ss_scheduler_output(s, id[i], &n, &fin);
        assert_int_equal(fin, 1);
        assert_int_equal(n, q->max_new[i]);
        for (int64_t j = 0; j < n; j++)
            if (out[j] != q->ref[i][j])
                fail_msg("S %d T %lld blocks %d: request %d token %lld: %d, alone %d", S, (long long)T, (int)blocks, i,
                         (long long)j, (int)out[j], (int)q->ref[i][j]);
        gen += n;
    }
    assert_int_equal(stats.generated, gen);
    assert_int_equal(ss_kv_cache_free_blocks(kv), blocks);
    int64_t pre = stats.preemptions;
    ss_scheduler_destroy(s);
    ss_kv_cache_destroy(kv);
    return pre;
}

static void test_batch_composition_independent(void **st) {
    requests q;
    make_requests(&q);
    int fwd[NREQ], rev[NREQ];
    for (int i = 0; i < NREQ; i++) {
        fwd[i] = i;
        rev[i] = NREQ - 1 - i;
    }
    assert_int_equal(serve_and_check(&q, fwd, 64, NREQ, 256), 0);
    assert_int_equal(serve_and_check(&q, rev, 64, 3, 8), 0);   /* chunked, other batches */
    assert_int_equal(serve_and_check(&q, fwd, 64, 1, 1), 0);   /* one token per step */
}

static void test_preemption_recomputes_same_tokens(void **st) {
    requests q;
    make_requests(&q);
    int fwd[NREQ];
    for (int i = 0; i < NREQ; i++)
        fwd[i] = i;
    /* 5 blocks: enough for any one request (<= 69 tokens), not for all. */
    int64_t pre = serve_and_check(&q, fwd, 5, NREQ, 64);
    assert_true(pre > 0);
    print_message("preemptions with 5 blocks: %lld\n", (long long)pre);
}

static void test_stop_flag_and_profile(void **st) {
    requests q;
    make_requests(&q);
    ss_kv_cache *kv;
    assert_ok(ss_kv_cache_create(g_model, 64, &kv));
    ss_sched_config c = {.max_num_seqs = 4, .max_num_batched_tokens = 64};
    ss_scheduler *s;
    assert_ok(ss_scheduler_create(g_model, kv, &c, &s));
    for (int i = 0; i < NREQ; i++)
        assert_ok(ss_scheduler_add(s, &(ss_request){q.prompts[i], q.len[i], q.max_new[i]}, NULL));
    volatile sig_atomic_t stop = 1;
    ss_serve_stats stats;
    assert_ok(ss_serve_run(g_model, s, &(ss_serve_opts){.stop = &stop}, &stats));
    assert_int_equal(stats.stopped, 1);
    assert_int_equal(stats.steps, 0);
    stop = 0;
    assert_ok(ss_serve_run(g_model, s, &(ss_serve_opts){.stop = &stop, .profile = 1}, &stats));
    assert_int_equal(stats.stopped, 0);
    assert_true(stats.steps > 0);
    assert_true(stats.layers_s > 0 && stats.layers_s <= stats.forward_s);
    assert_true(stats.host_s >= 0 && stats.max_host_frac <= 1);
    /* The CPU replay timed every stage and changed no token. */
    assert_int_equal(stats.has_stages, 1);
    assert_true(stats.stages.gemm_s > 0 && stats.stages.attention_s > 0 && stats.stages.quant_s > 0 &&
                stats.stages.dequant_s > 0 && stats.stages.lm_head_s > 0);
    assert_true(stats.replay_s > 0);
    for (int i = 0; i < NREQ; i++) {
        int64_t n;
        const int32_t *out = ss_scheduler_output(s, i, &n, NULL);
        assert_int_equal(n, q.max_new[i]);
        assert_memory_equal(out, q.ref[i], (size_t)n * sizeof *out);
    }
    ss_scheduler_destroy(s);
    ss_kv_cache_destroy(kv);
}

// --- benchmark pieces ----------------------------------------------------------------------------

static void test_workloads(void **st) {
    ss_workload w;
    /* SPEC §8 values written out for a few M. */
    assert_ok(ss_workload_make(SS_STAGE_PREFILL, 512, &w));
    assert_true(w.prompt_len == 512 && w.output_len == 1 && w.max_num_seqs == 1 && w.num_prompts == 128 &&
                w.max_num_batched_tokens == 512);
    assert_ok(ss_workload_make(SS_STAGE_PREFILL, 4096, &w));
    assert_true(w.prompt_len == 1024 && w.max_num_seqs == 4 && w.num_prompts == 512 &&
                w.max_num_batched_tokens == 4096);
    assert_ok(ss_workload_make(SS_STAGE_PREFILL, 32768, &w));
    assert_true(w.max_num_seqs == 32 && w.num_prompts == 4096 && w.max_num_batched_tokens == 32768);
    assert_ok(ss_workload_make(SS_STAGE_DECODE, 64, &w));
    assert_true(w.prompt_len == 16 && w.output_len == 256 && w.max_num_seqs == 64 && w.num_prompts == 64 &&
                w.max_num_batched_tokens == 272);
    assert_ok(ss_workload_make(SS_STAGE_DECODE, 512, &w));
    assert_true(w.max_num_seqs == 512 && w.max_num_batched_tokens == 512);
    /* decode is one wave (R = S = M): scaling never shrinks it */
    assert_int_equal(ss_workload_scaled_prompts(&w, 1.0 / 16), 512);
    assert_int_equal(ss_workload_scaled_prompts(&w, 1e-9), 512);
    assert_ok(ss_workload_make(SS_STAGE_PREFILL, 4096, &w));
    assert_int_equal(ss_workload_scaled_prompts(&w, 1.0 / 16), 32);
    assert_int_equal(ss_workload_scaled_prompts(&w, 1e-9), 4); /* one wave of S = 4 */
    assert_fails(ss_workload_make(SS_STAGE_PREFILL, 256, &w), SS_EINVAL, "M 256 is not supported");
    assert_fails(ss_workload_make(SS_STAGE_PREFILL, 3000, &w), SS_EINVAL, "expected one of 512");
    assert_fails(ss_workload_make(SS_STAGE_DECODE, 1024, &w), SS_EINVAL, "64, 128, 256, 512");

    const ss_peak *pk = ss_peak_lookup("NVIDIA H100 80GB HBM3");
    assert_non_null(pk);
    assert_true(pk->int8_tops == 1979 && pk->bw_tbs == 3.35);
    assert_null(ss_peak_lookup("CPU"));
    char stem[64];
    ss_model_stem("/a/checkpoints_slidesparse/BitNet-2B-INT8-SlideSparse-2_8/", stem, sizeof stem);
    assert_string_equal(stem, "BitNet-2B");
    ss_model_stem("BitNet-2B-FP8", stem, sizeof stem);
    assert_string_equal(stem, "BitNet-2B");
}

static void test_throughput_run_fits(void **st) {
    /* Decode (P 16 + O 256) exceeds this model's 128 positions: one line. */
    ss_workload w;
    ss_throughput_row row;
    assert_ok(ss_workload_make(SS_STAGE_DECODE, 64, &w));
    assert_fails(ss_throughput_run(g_model, 1000, &w, 4, 1, NULL, &row), SS_EINVAL, "max_position_embeddings 128");
    /* A small workload of our own: 3 blocks per sequence, pool of 2. */
    w = (ss_workload){.m = 64, .prompt_len = 30, .output_len = 8, .max_num_seqs = 4, .num_prompts = 6,
                      .max_num_batched_tokens = 64};
    assert_fails(ss_throughput_run(g_model, 2, &w, 6, 1, NULL, &row), SS_ENOMEM, "needs 3 KV blocks");
    assert_ok(ss_throughput_run(g_model, 1000, &w, 6, 1, NULL, &row));
    assert_int_equal(row.input_tokens, 180);
    assert_int_equal(row.output_tokens, 48);
    assert_int_equal(row.stats.generated, 48);
    assert_true(row.elapsed_s > 0);
    assert_true(row.tokens_per_s > 0);
    double want = 228 / row.elapsed_s;
    assert_true(row.tokens_per_s > want * 0.999 && row.tokens_per_s < want * 1.001);
    /* KV rows read: each prompt prefills in one step (2 x 10 tokens fit T),
     * then 4 decode steps at contexts 11..14: 10 + 11 + 12 + 13 + 14 = 60 each */
    w = (ss_workload){.m = 64, .prompt_len = 10, .output_len = 5, .max_num_seqs = 2, .num_prompts = 4,
                      .max_num_batched_tokens = 64};
    assert_ok(ss_throughput_run(g_model, 1000, &w, 4, 1, NULL, &row));
    assert_int_equal(row.stats.kv_rows, 4 * 60);
}

/* A CSV the throughput writer made, as text (ss_test_read_file ends it with a NUL). */
static char *csv_text(const char *path) {
    size_t len;
    char *t = ss_test_read_file(path, &len);
    assert_non_null(t);
    return t;
}
static void test_csv_merge_and_speedup(void **st) {
    char dir[256], path[512], sparse[512];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/dev/cublaslt/M_decode.csv", dir);
    snprintf(sparse, sizeof sparse, "%s/dev/cusparselt/2_8/M_decode.csv", dir);
    ss_throughput_row r[2] = {0};
    for (int i = 0; i < 2; i++) {
        assert_ok(ss_workload_make(SS_STAGE_DECODE, i ? 64 : 128, &r[i].w));
        r[i].num_prompts = r[i].w.num_prompts;
        r[i].tokens_per_s = 1000 * (i + 1);
        r[i].requests_per_s = 1;
        r[i].elapsed_s = 2;
    }
    assert_ok(ss_throughput_save(path, &r[0], 1));
    assert_ok(ss_throughput_save(path, &r[1], 1));
    r[0].tokens_per_s = 1500; /* re-measured M 128 replaces its row */
    assert_ok(ss_throughput_save(path, &r[0], 1));
    char *txt = csv_text(path);
    const char *want = SS_THROUGHPUT_CSV_HEADER "\n64,16,64,64,272,256,1,2000,2\n128,16,128,128,272,256,1,1500,2\n";
    assert_string_equal(txt, want);
    free(txt);

    int written;
    snprintf(path, sizeof path, "%s/dev", dir);
    assert_ok(ss_throughput_speedup(path, "M", SS_STAGE_DECODE, &written));
    assert_int_equal(written, 0); /* one backend only */
    r[0].tokens_per_s = 3000;
    r[1].tokens_per_s = 3000;
    assert_ok(ss_throughput_save(sparse, r, 2));
    assert_ok(ss_throughput_speedup(path, "M", SS_STAGE_DECODE, &written));
    assert_int_equal(written, 1);
    snprintf(path, sizeof path, "%s/dev/M_decode_speedup.csv", dir);
    txt = csv_text(path);
    assert_non_null(strstr(txt, "M,cublaslt_tokens_per_s,cusparselt_2_8_tokens_per_s,cusparselt_2_8_speedup\n"));
    assert_non_null(strstr(txt, "\n64,2000,3000,1.5000\n"));
    assert_non_null(strstr(txt, "\n128,1500,3000,2.0000\n"));
    free(txt);
    ss_test_rmtree(dir);
}

/* Runs of one M (run-all's throughput_repeats): appended side by side in the
 * order written; the speedup CSV takes each M's median; a plain save replaces
 * every run of its M. */
static void test_csv_append_median(void **st) {
    (void)st;
    char dir[256], path[600], sparse[600], dev[300];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(dev, sizeof dev, "%s/dev", dir);
    snprintf(path, sizeof path, "%s/cublaslt/M_prefill.csv", dev);
    snprintf(sparse, sizeof sparse, "%s/cusparselt/2_4/M_prefill.csv", dev);
    ss_throughput_row r = {0};
    assert_ok(ss_workload_make(SS_STAGE_PREFILL, 1024, &r.w));
    r.num_prompts = 8;
    r.requests_per_s = 1;
    r.elapsed_s = 2;
    const double dense[] = {100, 300, 90}, sp[] = {150, 160};
    for (int i = 0; i < 3; i++) {
        r.tokens_per_s = dense[i];
        assert_ok(ss_throughput_append(path, &r));
    }
    for (int i = 0; i < 2; i++) {
        r.tokens_per_s = sp[i];
        assert_ok(ss_throughput_append(sparse, &r));
    }
    assert_ok(ss_workload_make(SS_STAGE_PREFILL, 512, &r.w));
    r.tokens_per_s = 50; /* a smaller M written later sorts first */
    assert_ok(ss_throughput_append(path, &r));
    char *txt = csv_text(path);
    assert_string_equal(txt, SS_THROUGHPUT_CSV_HEADER "\n512,512,1,8,512,1,1,50,2\n1024,1024,1,8,1024,1,1,100,2\n"
                                                      "1024,1024,1,8,1024,1,1,300,2\n1024,1024,1,8,1024,1,1,90,2\n");
    free(txt);
    int written;
    assert_ok(ss_throughput_speedup(dev, "M", SS_STAGE_PREFILL, &written));
    assert_int_equal(written, 1);
    snprintf(path, sizeof path, "%s/M_prefill_speedup.csv", dev);
    txt = csv_text(path);
    /* one row per M: dense median 100 (of 90, 100, 300), 2_4 median 155 (of 150, 160) */
    assert_string_equal(txt, "M,cublaslt_tokens_per_s,cusparselt_2_4_tokens_per_s,cusparselt_2_4_speedup\n"
                             "512,50,,\n1024,100,155,1.5500\n");
    free(txt);
    /* ss_throughput_save replaces every run of its M */
    assert_ok(ss_workload_make(SS_STAGE_PREFILL, 1024, &r.w));
    r.tokens_per_s = 120;
    assert_ok(ss_throughput_save(sparse, &r, 1));
    txt = csv_text(sparse);
    assert_string_equal(txt, SS_THROUGHPUT_CSV_HEADER "\n1024,1024,1,8,1024,1,1,120,2\n");
    free(txt);
    ss_test_rmtree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admission_limits),
        cmocka_unit_test(test_chunked_prefill),
        cmocka_unit_test(test_decode_every_step),
        cmocka_unit_test(test_retire_frees_blocks),
        cmocka_unit_test(test_cancel_frees_blocks),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_batch_composition_independent),
        cmocka_unit_test(test_preemption_recomputes_same_tokens),
        cmocka_unit_test(test_stop_flag_and_profile),
        cmocka_unit_test(test_workloads),
        cmocka_unit_test(test_throughput_run_fits),
        cmocka_unit_test(test_csv_merge_and_speedup),
        cmocka_unit_test(test_csv_append_median),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
