/* The engine on the GPU backends (skipped, exit 77, without a CUDA device).
 *
 * What is checked, and the tolerances:
 *   - BF16 checkpoints (tiny BitNet / Llama / Qwen2 fixtures) on cublaslt vs
 *     the transformers reference: hidden states after every layer and the
 *     logits within a normalized max error of 3e-2 (the CPU engine's bound,
 *     same rounding points; test_engine_cpu.c explains it), and greedy tokens
 *     where the reference's top-2 gap exceeds 0.5.
 *   - GPU vs the CPU engine on the same checkpoint: logits within 3e-2
 *     normalized. They differ only in summation order (GEMMs, norms,
 *     attention), but an order change flips BF16 roundings that then propagate
 *     like the engine-vs-reference differences (measured up to 1.6e-2 on the
 *     CPU), so the bound is the same one.
 *   - INT8: every slid checkpoint (2_4, 2_6, 2_8, 2_10) on cusparselt and the
 *     dense INT8 checkpoint holding the same pruned weights on cublaslt give
 *     bit-identical logits and greedy tokens (INT32 GEMM outputs are exact,
 *     every other op is deterministic and row-independent).
 *   - KV cache: chunk of 5 + one token at a time == one prefill of 37 tokens,
 *     and a mixed batch (decode + chunked prefill + a lone prefill) == each
 *     sequence alone, on an INT8 model: projections are exact there, and only
 *     the BF16 lm_head may pick another cuBLASLt algorithm for another row
 *     count, hence 1e-4 instead of bit equality.
 *   - the on-device argmax == ss_sample_greedy of the same logits.
 *   - decode CUDA graphs (SS_CUDA_GRAPHS=1): the same script of prefills and
 *     decode steps (buckets 1 and 4 with dummy rows, a prefill in between
 *     that grows the GEMM scratch so the graphs are captured again) gives
 *     bit-identical logits and ids with graphs on and off (same kernels,
 *     same M buckets for every GEMM), and the on run did replay graphs.
 *     (The v2 decode attention kernel, SS_ATTN_DECODE=2, is head_dim 128
 *     only: the fixtures' head_dim is 16, so dev/attention.cu validates it.)
 *   - programmatic dependent launch: the same script (prefills in between,
 *     so eager launches too) with SS_PDL=0 and with PDL on, graphs on and
 *     off: bit-identical logits and ids (PDL changes when a kernel may start,
 *     never what it computes), SS_PDL=0 really turned it off and the
 *     default really turned it on at cc >= 9.0; on cuBLASLt, and on
 *     sm90dense where it is built (the CUTLASS GEMMs as PDL launches).
 *   - FP8 KV cache (--kv-dtype fp8), against the CPU engine's FP8 cache:
 *     the stored rows (e4m3 bytes and F32 scales) bit-identical to
 *     ss_kv_quant_row of the same BF16 rows: on the tiny models, layer 0 of
 *     the GPU FP8 cache vs the CPU-quantized layer 0 of a GPU BF16 cache of
 *     the same prompt (also on an INT8 checkpoint, where the rows the GPU and
 *     the CPU engines store are compared too and the equal ones counted);
 *     logits within TOL_CPU of the
 *     CPU FP8 engine along its greedy continuation (teacher-forced) and the
 *     same argmax wherever the CPU's top-2 gap exceeds GAP_MIN. For head_dim
 *     128 (the tensor-core prefill, decode v1 / v2 / v3 and SIMT kernels,
 *     which the head_dim 16 fixtures never reach): the RoPE + KV write
 *     kernel's stored rows == ss_kv_quant_row of its own rotated rows, bit
 *     for bit; every attention kernel over the FP8 pool == the same kernel
 *     over a BF16 pool holding the dequantized rows, bit for bit, and within
 *     TOL_ATTN (1e-2 normalized, dev/attention.cu's bound) of the CPU
 *     reference over the same FP8 pool; decode v3 also at clusters of 1 and
 *     2 blocks, where a block walks more key tiles than its stage ring holds.
 */
#include "support/engine_fixture.h"

#include "engine/cuda/engine_gpu.h" /* graph counters */
#include "engine/model.h" /* ss_model_forward_next: sampled ids from the device */
#include "slidesparse/bench.h" /* ss_device_info_get: the compute capability */

#include <math.h>
#include <string.h>
#include <sys/stat.h>

#ifdef SS_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "core/dtype_inline.h"
#include "engine/cuda/kernels.h" /* the attention and RoPE + KV write launchers, head_dim 128 */
#endif

#define TOL_REF 3e-2
#define TOL_CPU 3e-2
#define TOL_KV 1e-4
#define GAP_MIN 0.5f
#define TOL_ATTN 1e-2

static const char *const ARCHS[] = {"bitnet", "llama", "qwen2"};

// --- helpers --------------------------------------------------------------------------------

static ss_model *load(ss_context *ctx, ss_backend b, const char *dir) {
    ss_model *m = NULL;
    assert_ok(ss_model_load(ctx, b, dir, &m));
    return m;
}

/* Prefill of one sequence in a fresh cache: logits (vocab) of its last token;
 * checks the device argmax against the host one on the way. */
static void prefill(ss_model *m, const int32_t *ids, int64_t n, float *logits) {
    ss_kv_cache *kc;
    assert_ok(ss_kv_cache_create(m, 8, &kc));
    ss_kv_seq s;
    ss_kv_seq_init(&s);
    ss_seq_step st = {.tokens = ids, .n_tokens = n, .start_pos = 0, .kv = &s};
    int32_t next = -1;
    assert_ok(ss_model_forward_next(m, kc, &st, 1, logits, &next));
    assert_int_equal(next, ss_sample_greedy(logits, ss_model_get_config(m)->vocab_size));
    assert_int_equal(s.n_tokens, n);
    ss_kv_seq_release(kc, &s);
    assert_int_equal(ss_kv_cache_free_blocks(kc), 8);
    ss_kv_cache_destroy(kc);
}

static ss_context *gpu_ctx(void) {
    ss_context *ctx;
    assert_ok(ss_context_create(0, &ctx));
    return ctx;
}

/* q = INT8 of the fixture in tmp/q (the CPU pipeline). */
static void quantize_int8(const char *arch, const char *tmp, char *qdir, size_t n) {
    char src[512];
    ss_engine_fixture_dir(arch, src, sizeof src);
    snprintf(qdir, n, "%s/q", tmp);
    ss_quantize_opts qo = {.in_dir = src, .out_dir = qdir, .dtype = SS_DTYPE_I8};
    assert_ok(ss_quantize_checkpoint(&qo));
}

// --- against the transformers reference and the CPU engine -----------------------------------

static void check_arch(const char *arch) {
    char dir[512];
    ss_engine_fixture_dir(arch, dir, sizeof dir);
    ss_ref_file rf;
    ss_ref_load(arch, &rf);
    ss_context *ctx = gpu_ctx(), *cpu;
    assert_ok(ss_context_create(-1, &cpu));
    ss_model *m = load(ctx, SS_BACKEND_CUBLASLT, dir), *mc = load(cpu, SS_BACKEND_CPU, dir);
    const ss_model_config *c = ss_model_get_config(m);
    int np = ss_ref_count_prompts(&rf);
    assert_true(np >= 2);
    for (int p = 0; p < np; p++) {
        const ss_ref_rec *ids = ss_ref_get(&rf, "p%d.ids", p, 0);
        int64_t t = ids->numel;
        ss_layer_capture cap = {.layers = malloc((size_t)(c->num_hidden_layers * t * c->hidden_size) * 4),
                                .hidden = c->hidden_size};
        float *logits = malloc((size_t)c->vocab_size * 4), *lcpu = malloc((size_t)c->vocab_size * 4);
        ss_model_set_layer_hook(m, ss_layer_capture_hook, &cap);
        prefill(m, ids->data, t, logits);
        ss_model_set_layer_hook(m, NULL, NULL);
        prefill(mc, ids->data, t, lcpu);
        char what[64];
        for (int l = 0; l < c->num_hidden_layers; l++) {
            const ss_ref_rec *r = ss_ref_get(&rf, "p%d.layer%d", p, l);
            assert_int_equal(r->numel, t * c->hidden_size);
            snprintf(what, sizeof what, "%s gpu p%d layer%d", arch, p, l);
            ss_compare_normalized(what, cap.layers + (int64_t)l * t * c->hidden_size, r->data, r->numel, TOL_REF);
        }
        const ss_ref_rec *rl = ss_ref_get(&rf, "p%d.logits", p, 0);
        assert_int_equal(rl->numel, c->vocab_size);
        snprintf(what, sizeof what, "%s gpu p%d logits vs reference", arch, p);
        ss_compare_normalized(what, logits, rl->data, rl->numel, TOL_REF);
        snprintf(what, sizeof what, "%s gpu p%d logits vs cpu engine", arch, p);
        ss_compare_normalized(what, logits, lcpu, c->vocab_size, TOL_CPU);

        char label[32];
        snprintf(label, sizeof label, "%s gpu", arch);
        ss_ref_check_greedy(m, &rf, p, label, GAP_MIN, logits);
        free(cap.layers);
        free(logits);
        free(lcpu);
    }
    ss_model_destroy(m);
    ss_model_destroy(mc);
    ss_context_destroy(cpu);
    ss_context_destroy(ctx);
    ss_ref_free(&rf);
}


/* ss_eval_perplexity on the GPU against the CPU engine, the same ids and
 * windows (two windows with an overlap, so the stride rule runs too): the
 * summed NLL within 1% relative (BF16 logits differ in their last bits,
 * the scored tokens and windows must not). */
static void check_eval(const char *arch) {
    char dir[512];
    ss_engine_fixture_dir(arch, dir, sizeof dir);
    ss_context *ctx = gpu_ctx(), *cpu;
    assert_ok(ss_context_create(-1, &cpu));
    ss_model *m = load(ctx, SS_BACKEND_CUBLASLT, dir), *mc = load(cpu, SS_BACKEND_CPU, dir);
    int64_t vocab = ss_model_get_config(m)->vocab_size, n = 40;
    int32_t ids[40];
    ss_rng r = {.s = 7};
    for (int64_t i = 0; i < n; i++)
        ids[i] = (int32_t)ss_rng_below(&r, (uint64_t)vocab);
    ss_eval_opts o = {.context = 24, .stride = 16};
    ss_eval_result g, c;
    assert_ok(ss_eval_perplexity(m, ids, n, &o, &g));
    assert_ok(ss_eval_perplexity(mc, ids, n, &o, &c));
    assert_int_equal(g.n_tokens, c.n_tokens);
    assert_int_equal(g.n_windows, c.n_windows);
    assert_int_equal(g.n_tokens, n - 1);
    double rel = fabs(g.nll_sum - c.nll_sum) / c.nll_sum;
    printf("OK  %s eval on the GPU: perplexity %.4f vs %.4f on the CPU (%lld tokens, %lld windows, NLL "
           "relative difference %.2e)\n", arch, g.perplexity, c.perplexity, (long long)g.n_tokens,
           (long long)g.n_windows, rel);
    assert_true(rel < 1e-2);
    ss_model_destroy(m);
    ss_model_destroy(mc);
    ss_context_destroy(cpu);
    ss_context_destroy(ctx);
}

static void test_eval_matches_cpu(void **st) {
    for (size_t a = 0; a < sizeof ARCHS / sizeof ARCHS[0]; a++)
        check_eval(ARCHS[a]);
}

static void test_bitnet_matches_reference(void **st) { check_arch("bitnet"); }
static void test_llama_matches_reference(void **st) { check_arch("llama"); }
static void test_qwen2_matches_reference(void **st) { check_arch("qwen2"); }

// --- slid INT8 (cusparselt) == dense INT8 of the same pruned weights (cublaslt) --------------

static void check_slid_equals_dense(const char *arch) {
    static const char *const PATTERNS[] = {"2_4", "2_6", "2_8", "2_10"};
    char tmp[256], qdir[600], root[600];
    ss_test_tmpdir(tmp, sizeof tmp);
    quantize_int8(arch, tmp, qdir, sizeof qdir);
    snprintf(root, sizeof root, "%s/slid", tmp);
    ss_context *ctx = gpu_ctx();
    const char *why = ss_linear_supports(ctx, SS_BACKEND_CUSPARSELT, SS_DTYPE_I8, (ss_pattern){2, 8});
    if (why) {
        printf("SKIP %s slid == dense on the GPU: cusparselt: %s\n", arch, why);
        ss_context_destroy(ctx);
        ss_test_rmtree(tmp);
        return;
    }
    /* Every pattern in one conversion (the input is read once). */
    enum { NP = sizeof PATTERNS / sizeof *PATTERNS };
    ss_pattern pats[NP];
    for (int i = 0; i < NP; i++)
        assert_ok(ss_pattern_parse(PATTERNS[i], &pats[i]));
    ss_convert_opts co = {.in_dir = qdir, .out_root = root, .patterns = pats, .n_patterns = NP,
                          .dtype = SS_DTYPE_COUNT};
    assert_ok(ss_convert_checkpoint(&co));
    ss_model *unpruned = load(ctx, SS_BACKEND_CUBLASLT, qdir);
    int64_t v = ss_model_get_config(unpruned)->vocab_size;
    const int32_t ids[] = {3, 141, 59, 26, 53, 58, 97, 93, 23, 84, 62, 64, 33, 83, 27, 95, 2, 7, 1};
    const int64_t n = sizeof ids / sizeof *ids;
    float *a = malloc((size_t)v * 4), *b = malloc((size_t)v * 4), *u = malloc((size_t)v * 4);
    prefill(unpruned, ids, n, u);
    for (int pi = 0; pi < NP; pi++) {
        ss_pattern p = pats[pi];
        char sdir[700], pdir[700];
        assert_ok(ss_convert_out_dir(qdir, root, p, sdir, sizeof sdir));
        snprintf(pdir, sizeof pdir, "%s/pruned_%s", tmp, PATTERNS[pi]);
        ss_write_unslid(sdir, qdir, pdir, p);
        ss_model *slid = load(ctx, SS_BACKEND_CUSPARSELT, sdir), *dense = load(ctx, SS_BACKEND_CUBLASLT, pdir);
        assert_int_equal(ss_model_get_config(slid)->kind, SS_WEIGHTS_SLID);
        prefill(slid, ids, n, a);
        prefill(dense, ids, n, b);
        assert_memory_equal(a, b, (size_t)v * 4);
        int differs = memcmp(a, u, (size_t)v * 4) != 0;
        printf("OK  %s INT8 %s on GPU: cusparselt slid == cublaslt pruned dense bit for bit (logits hash %016llx); unpruned %s\n",
               arch, PATTERNS[pi], (unsigned long long)ss_logits_hash(a, v), differs ? "differs" : "SAME");
        assert_true(differs); /* pruning changed the model: the comparison has teeth */
        int32_t ga[6], gb[6];
        assert_ok(ss_generate_greedy(slid, ids, n, 6, ga, a));
        assert_ok(ss_generate_greedy(dense, ids, n, 6, gb, b));
        assert_memory_equal(ga, gb, sizeof ga);
        assert_memory_equal(a, b, (size_t)v * 4);
        ss_model_destroy(slid);
        ss_model_destroy(dense);
    }
    free(a);
    free(b);
    free(u);
    ss_model_destroy(unpruned);
    ss_context_destroy(ctx);
    ss_test_rmtree(tmp);
}

static void test_slid_int8_equals_dense_bitnet(void **st) { check_slid_equals_dense("bitnet"); }
static void test_slid_int8_equals_dense_qwen2(void **st) { check_slid_equals_dense("qwen2"); }

// --- KV cache and batching -------------------------------------------------------------------

static void test_decode_equals_prefill(void **st) {
    for (size_t a = 0; a < sizeof ARCHS / sizeof *ARCHS; a++) {
        char tmp[256], qdir[600];
        ss_test_tmpdir(tmp, sizeof tmp);
        quantize_int8(ARCHS[a], tmp, qdir, sizeof qdir);
        ss_context *ctx = gpu_ctx();
        ss_model *m = load(ctx, SS_BACKEND_CUBLASLT, qdir);
        int64_t v = ss_model_get_config(m)->vocab_size;
        /* 37 tokens: crosses two block boundaries and a 32-key attention tile. */
        int32_t ids[37];
        ss_rng rng = {42 + a};
        for (int i = 0; i < 37; i++)
            ids[i] = (int32_t)ss_rng_below(&rng, (uint64_t)v);
        float *full = malloc((size_t)v * 4), *step = malloc((size_t)v * 4);
        prefill(m, ids, 37, full);
        ss_kv_cache *kc;
        assert_ok(ss_kv_cache_create(m, 3, &kc));
        ss_kv_seq s;
        ss_kv_seq_init(&s);
        ss_seq_step sp = {.tokens = ids, .n_tokens = 5, .start_pos = 0, .kv = &s};
        assert_ok(ss_model_forward(m, kc, &sp, 1, step));
        for (int i = 5; i < 37; i++) {
            sp = (ss_seq_step){.tokens = &ids[i], .n_tokens = 1, .start_pos = i, .kv = &s};
            assert_ok(ss_model_forward(m, kc, &sp, 1, step));
        }
        assert_int_equal(s.n_tokens, 37);
        assert_int_equal(s.n_blocks, 3);
        char what[64];
        snprintf(what, sizeof what, "%s INT8 gpu decode vs prefill", ARCHS[a]);
        ss_compare_normalized(what, step, full, v, TOL_KV);
        assert_fails(ss_kv_seq_reserve(kc, &s, 49), SS_ENOMEM, "more blocks");
        ss_kv_seq_release(kc, &s);
        ss_kv_cache_destroy(kc);
        free(full);
        free(step);
        ss_model_destroy(m);
        ss_context_destroy(ctx);
        ss_test_rmtree(tmp);
    }
}

static void test_batch_isolates_sequences(void **st) {
    char tmp[256], qdir[600];
    ss_test_tmpdir(tmp, sizeof tmp);
    quantize_int8("qwen2", tmp, qdir, sizeof qdir); /* GQA group 5: head-split tiles */
    ss_context *ctx = gpu_ctx();
    ss_model *m = load(ctx, SS_BACKEND_CUBLASLT, qdir);
    int64_t v = ss_model_get_config(m)->vocab_size;
    enum { NS = 3 };
    const int64_t len[NS] = {40, 3, 9};
    int32_t ids[NS][40];
    ss_rng rng = {7};
    for (int i = 0; i < NS; i++)
        for (int j = 0; j < len[i]; j++)
            ids[i][j] = (int32_t)ss_rng_below(&rng, (uint64_t)v);
    float *alone = malloc((size_t)(NS * v) * 4), *batch = malloc((size_t)(NS * v) * 4);
    for (int i = 0; i < NS; i++)
        prefill(m, ids[i], len[i], alone + i * v);
    ss_kv_cache *kc;
    assert_ok(ss_kv_cache_create(m, 8, &kc));
    ss_kv_seq s[NS];
    ss_seq_step steps[NS];
    for (int i = 0; i < NS; i++) {
        ss_kv_seq_init(&s[i]);
        steps[i] = (ss_seq_step){.tokens = ids[i], .n_tokens = len[i] - (i == 2 ? 4 : 0), .start_pos = 0, .kv = &s[i]};
    }
    steps[0].n_tokens = 39;
    int32_t next[NS];
    assert_ok(ss_model_forward_next(m, kc, steps, NS, batch, next));
    for (int i = 0; i < NS; i++)
        assert_int_equal(next[i], ss_sample_greedy(batch + i * v, v));
    ss_compare_normalized("qwen2 INT8 gpu batch seq1 vs alone", batch + 1 * v, alone + 1 * v, v, TOL_KV);
    ss_seq_step mixed[2] = {
        {.tokens = &ids[0][39], .n_tokens = 1, .start_pos = 39, .kv = &s[0]},
        {.tokens = &ids[2][5], .n_tokens = 4, .start_pos = 5, .kv = &s[2]},
    };
    float *mix = malloc((size_t)(2 * v) * 4);
    assert_ok(ss_model_forward(m, kc, mixed, 2, mix));
    ss_compare_normalized("qwen2 INT8 gpu seq0 decode in batch", mix, alone, v, TOL_KV);
    ss_compare_normalized("qwen2 INT8 gpu seq2 chunked in batch", mix + v, alone + 2 * v, v, TOL_KV);
    for (int i = 0; i < NS; i++)
        ss_kv_seq_release(kc, &s[i]);
    ss_kv_cache_destroy(kc);
    free(alone);
    free(batch);
    free(mix);
    ss_model_destroy(m);
    ss_context_destroy(ctx);
    ss_test_rmtree(tmp);
}

// --- decode CUDA graphs and the v2 decode kernel -----------------------------------------------

enum { SCRIPT_LOGITS = 3 + 6 * 3 + 3 + 1 + 4 * 4 };

/* Prefill 3 sequences together, 6 decode steps of all 3 (bucket 4: one dummy
 * row), 3 steps of one (bucket 1), a 100-token prefill of a 4th sequence
 * (larger GEMM scratch: graphs may need a new capture), 4 steps of all 4. Greedy feedback; every step's logits go to out (rows in
 * order), ids to ids. */
static void run_script(ss_model *m, float *out, int32_t *ids_out) {
    int64_t v = ss_model_get_config(m)->vocab_size;
    enum { NS = 4 };
    static const int64_t plen[NS] = {5, 17, 2, 100};
    int32_t prompt[NS][100], cur[NS];
    ss_rng rng = {99};
    for (int i = 0; i < NS; i++)
        for (int j = 0; j < plen[i]; j++)
            prompt[i][j] = (int32_t)ss_rng_below(&rng, (uint64_t)v);
    ss_kv_cache *kc;
    assert_ok(ss_kv_cache_create(m, 32, &kc));
    ss_kv_seq s[NS];
    ss_seq_step st[NS];
    int32_t next[NS];
    for (int i = 0; i < NS; i++) {
        ss_kv_seq_init(&s[i]);
        st[i] = (ss_seq_step){.tokens = prompt[i], .n_tokens = plen[i], .start_pos = 0, .kv = &s[i]};
    }
    int64_t row = 0;
    assert_ok(ss_model_forward_next(m, kc, st, 3, out + row * v, next));
    memcpy(ids_out + row, next, 3 * sizeof *next);
    row += 3;
    for (int i = 0; i < 3; i++)
        cur[i] = next[i];
    for (int k = 0; k < 6; k++) {
        for (int i = 0; i < 3; i++)
            st[i] = (ss_seq_step){.tokens = &cur[i], .n_tokens = 1, .start_pos = s[i].n_tokens, .kv = &s[i]};
        assert_ok(ss_model_forward_next(m, kc, st, 3, out + row * v, next));
        memcpy(ids_out + row, next, 3 * sizeof *next);
        row += 3;
        memcpy(cur, next, 3 * sizeof *next);
    }
    for (int k = 0; k < 3; k++) {
        st[0] = (ss_seq_step){.tokens = &cur[1], .n_tokens = 1, .start_pos = s[1].n_tokens, .kv = &s[1]};
        assert_ok(ss_model_forward_next(m, kc, st, 1, out + row * v, next));
        ids_out[row++] = next[0];
        cur[1] = next[0];
    }
    st[0] = (ss_seq_step){.tokens = prompt[3], .n_tokens = plen[3], .start_pos = 0, .kv = &s[3]};
    assert_ok(ss_model_forward_next(m, kc, st, 1, out + row * v, next));
    ids_out[row++] = next[0];
    cur[3] = next[0];
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < NS; i++)
            st[i] = (ss_seq_step){.tokens = &cur[i], .n_tokens = 1, .start_pos = s[i].n_tokens, .kv = &s[i]};
        assert_ok(ss_model_forward_next(m, kc, st, NS, out + row * v, next));
        memcpy(ids_out + row, next, NS * sizeof *next);
        row += NS;
        memcpy(cur, next, NS * sizeof *next);
    }
    assert_int_equal(row, SCRIPT_LOGITS);
    for (int i = 0; i < NS; i++)
        ss_kv_seq_release(kc, &s[i]);
    assert_int_equal(ss_kv_cache_free_blocks(kc), 32);
    ss_kv_cache_destroy(kc);
}

/* The script on a model of backend b loaded with the given environment
 * switches (pdl NULL: SS_PDL unset, the default); *pdl_on: whether the
 * model took PDL. */
static void script_env(const char *dir, ss_backend b, const char *graphs, const char *pdl, float *out,
                       int32_t *ids, int64_t *captures, int64_t *replays, int *pdl_on) {
    setenv("SS_CUDA_GRAPHS", graphs, 1);
    if (pdl)
        setenv("SS_PDL", pdl, 1);
    ss_context *ctx = gpu_ctx();
    ss_model *m = load(ctx, b, dir);
    unsetenv("SS_CUDA_GRAPHS");
    unsetenv("SS_PDL");
    run_script(m, out, ids);
    ss_engine_gpu_graph_counts(m, captures, replays);
    if (pdl_on)
        *pdl_on = ss_engine_gpu_pdl(m);
    ss_model_destroy(m);
    ss_context_destroy(ctx);
}

/* The vocabulary size of the model in dir (a throwaway load on backend b). */
static int64_t vocab_of(ss_backend b, const char *dir) {
    ss_context *ctx = gpu_ctx();
    ss_model *m = load(ctx, b, dir);
    int64_t v = ss_model_get_config(m)->vocab_size;
    ss_model_destroy(m);
    ss_context_destroy(ctx);
    return v;
}

static void script_with(const char *dir, const char *graphs, float *out, int32_t *ids, int64_t *captures,
                        int64_t *replays) {
    script_env(dir, SS_BACKEND_CUBLASLT, graphs, NULL, out, ids, captures, replays, NULL);
}

static void test_decode_graphs(void **st) {
    char tmp[256], qdir[600];
    ss_test_tmpdir(tmp, sizeof tmp);
    quantize_int8("bitnet", tmp, qdir, sizeof qdir);
    const char *dirs[2];
    char bf16[512];
    ss_engine_fixture_dir("llama", bf16, sizeof bf16);
    dirs[0] = qdir;
    dirs[1] = bf16;
    for (int d = 0; d < 2; d++) {
        size_t n = (size_t)SCRIPT_LOGITS * (size_t)vocab_of(SS_BACKEND_CUBLASLT, dirs[d]);
        float *off = malloc(n * 4), *on = malloc(n * 4);
        int32_t ids_off[SCRIPT_LOGITS], ids_on[SCRIPT_LOGITS];
        int64_t cap_off = -1, rep_off = -1, cap_on = -1, rep_on = -1;
        script_with(dirs[d], "0", off, ids_off, &cap_off, &rep_off);
        script_with(dirs[d], "1", on, ids_on, &cap_on, &rep_on);
        assert_int_equal(cap_off + rep_off, 0);
        /* 13 pure decode steps: a capture per bucket (and after the scratch
         * grew), every other one a replay. */
        assert_true(cap_on >= 2);
        assert_int_equal(cap_on + rep_on, 13);
        assert_memory_equal(ids_on, ids_off, sizeof ids_on);
        assert_memory_equal(on, off, n * 4);
        printf("OK %s: decode graphs on == off, bit-identical (%lld captures, %lld replays)\n",
               d ? "llama BF16" : "bitnet INT8", (long long)cap_on, (long long)rep_on);
        free(off);
        free(on);
    }
    ss_test_rmtree(tmp);
}

// --- programmatic dependent launch ------------------------------------------------------------

/* SS_PDL=0 vs the default (PDL on where cc >= 9.0), graphs on and off, on
 * INT8 BitNet (the seams: quant, residual + norm + quant, dequant + GLU
 * kernels around the GEMMs) and BF16 Llama (the fused forward) through
 * cuBLASLt, and INT8 BitNet through sm90dense where it is built (the CUTLASS
 * GEMMs launched as PDL, the stream-K memset nodes, the unfused path). */
static void test_pdl_bit_identical(void **st) {
    char tmp[256], qdir[600], bf16[512];
    ss_test_tmpdir(tmp, sizeof tmp);
    quantize_int8("bitnet", tmp, qdir, sizeof qdir);
    ss_engine_fixture_dir("llama", bf16, sizeof bf16);
    ss_context *probe = gpu_ctx();
    ss_device_info info;
    assert_ok(ss_device_info_get(probe, 0, &info));
    int major = info.key.cc / 10;
    int sm90 = ss_linear_supports(probe, SS_BACKEND_SM90DENSE, SS_DTYPE_I8, SS_PATTERN_DENSE) == NULL;
    ss_context_destroy(probe);
    const struct {
        const char *dir, *what;
        ss_backend b;
    } runs[3] = {{qdir, "bitnet INT8 cublaslt", SS_BACKEND_CUBLASLT},
                 {bf16, "llama BF16 cublaslt", SS_BACKEND_CUBLASLT},
                 {qdir, "bitnet INT8 sm90dense", SS_BACKEND_SM90DENSE}};
    for (int d = 0; d < (sm90 ? 3 : 2); d++) {
        size_t n = (size_t)SCRIPT_LOGITS * (size_t)vocab_of(runs[d].b, runs[d].dir);
        float *off = malloc(n * 4), *on = malloc(n * 4);
        int32_t ids_off[SCRIPT_LOGITS], ids_on[SCRIPT_LOGITS];
        for (int g = 0; g < 2; g++) {
            const char *graphs = g ? "1" : "0";
            int64_t cap, rep;
            int pdl_off = -1, pdl_on = -1;
            script_env(runs[d].dir, runs[d].b, graphs, "0", off, ids_off, &cap, &rep, &pdl_off);
            script_env(runs[d].dir, runs[d].b, graphs, "1", on, ids_on, &cap, &rep, &pdl_on);
            assert_int_equal(pdl_off, 0);
            assert_int_equal(pdl_on, major >= 9); /* else the test compares off with off */
            assert_memory_equal(ids_on, ids_off, sizeof ids_on);
            assert_memory_equal(on, off, n * 4);
            printf("OK %s, graphs %s: SS_PDL=0 == PDL %s, bit-identical\n", runs[d].what, graphs,
                   pdl_on ? "on" : "off (cc < 9.0)");
        }
        free(off);
        free(on);
    }
    if (!sm90)
        printf("skipped: the sm90dense run (backend not built or no sm_90 device)\n");
    ss_test_rmtree(tmp);
}

// --- errors ----------------------------------------------------------------------------------

// --- FP8 KV cache ----------------------------------------------------------------------------

/* Layer 0 of cache fp8 (positions 0..n-1 of s8) == ss_kv_quant_row of the
 * BF16 rows of layer 0 of cache bf (positions of sb), bit for bit. */
static void check_layer0_quantized(const ss_kv_cache *bf, const ss_kv_seq *sb, const ss_kv_cache *fp8,
                                   const ss_kv_seq *s8, int64_t n, int nkv, int hd, const char *what) {
    uint16_t kb[512], vb[512];
    uint8_t k8[512], v8[512], kq[512], vq[512];
    float ks[32], vs[32];
    assert_true(nkv * hd <= 512 && nkv <= 32);
    for (int64_t p = 0; p < n; p++) {
        assert_ok(ss_kv_cache_read_slot(bf, 0, sb->blocks[p / SS_KV_BLOCK], (int)(p % SS_KV_BLOCK), kb, vb, NULL, NULL));
        assert_ok(ss_kv_cache_read_slot(fp8, 0, s8->blocks[p / SS_KV_BLOCK], (int)(p % SS_KV_BLOCK), k8, v8, ks, vs));
        for (int h = 0; h < nkv; h++) {
            float a, b;
            ss_kv_quant_row(kb + h * hd, hd, kq + h * hd, &a);
            ss_kv_quant_row(vb + h * hd, hd, vq + h * hd, &b);
            if (a != ks[h] || b != vs[h] || memcmp(k8 + h * hd, kq + h * hd, (size_t)hd) ||
                memcmp(v8 + h * hd, vq + h * hd, (size_t)hd)) {
                fprintf(stderr, "BAD %s: position %lld kv head %d: scales %.9g %.9g, expected %.9g %.9g\n", what,
                        (long long)p, h, ks[h], vs[h], a, b);
                fail();
            }
        }
    }
    printf("OK  %s: layer 0's %lld positions x %d kv heads, e4m3 bytes and scales bit for bit\n", what, (long long)n,
           nkv);
}

/* Prefill of ids into a fresh cache of m's current KV dtype (kept for the caller). */
static void prefill_into(ss_model *m, const int32_t *ids, int64_t n, ss_kv_cache **kc, ss_kv_seq *s, float *logits) {
    assert_ok(ss_kv_cache_create(m, 8, kc));
    ss_kv_seq_init(s);
    ss_seq_step st = {.tokens = ids, .n_tokens = n, .start_pos = 0, .kv = s};
    assert_ok(ss_model_forward(m, *kc, &st, 1, logits));
}

static void release(ss_kv_cache *kc, ss_kv_seq *s) {
    ss_kv_seq_release(kc, s);
    ss_kv_cache_destroy(kc);
}

/* arch's fixture (int8: its INT8 quantization) on cublaslt vs the CPU
 * engine, both with FP8 caches. */
static void check_kv_fp8(const char *arch, int int8) {
    char dir[600], tmp[256] = "";
    if (int8) {
        ss_test_tmpdir(tmp, sizeof tmp);
        quantize_int8(arch, tmp, dir, sizeof dir);
    } else {
        ss_engine_fixture_dir(arch, dir, sizeof dir);
    }
    ss_context *ctx = gpu_ctx(), *cpu;
    assert_ok(ss_context_create(-1, &cpu));
    ss_model *g = load(ctx, SS_BACKEND_CUBLASLT, dir), *c = load(cpu, SS_BACKEND_CPU, dir);
    const ss_model_config *cfg = ss_model_get_config(g);
    int64_t v = cfg->vocab_size;
    int nkv = cfg->num_key_value_heads, hd = cfg->head_dim;
    enum { NP = 21, STEPS = 24 };
    int32_t ids[NP];
    ss_rng rng = {7 + (uint64_t)int8};
    for (int i = 0; i < NP; i++)
        ids[i] = (int32_t)ss_rng_below(&rng, (uint64_t)v);
    float *lg = malloc((size_t)v * 4), *lc = malloc((size_t)v * 4);
    char what[96];
    ss_kv_cache *kg, *kc;
    ss_kv_seq sg, sc;
    ss_model_set_kv_dtype(g, SS_KV_DTYPE_FP8);
    ss_model_set_kv_dtype(c, SS_KV_DTYPE_FP8);
    prefill_into(g, ids, NP, &kg, &sg, lg);
    assert_int_equal(ss_kv_cache_dtype(kg), SS_KV_DTYPE_FP8);
    {
        ss_kv_cache *kb;
        ss_kv_seq sb;
        ss_model_set_kv_dtype(g, SS_KV_DTYPE_BF16);
        prefill_into(g, ids, NP, &kb, &sb, lc);
        snprintf(what, sizeof what, "%s%s gpu kv fp8 vs CPU-quantized gpu kv bf16", arch, int8 ? " INT8" : "");
        check_layer0_quantized(kb, &sb, kg, &sg, NP, nkv, hd, what);
        release(kb, &sb);
        ss_model_set_kv_dtype(g, SS_KV_DTYPE_FP8);
    }
    if (int8) {
        /* INT8 projections are exact, but the layer's input passes RMSNorm
         * (a sum in another order on the device) and keys pass RoPE (device
         * cosf / sinf vs the host's libm), so the GPU and CPU engines may
         * quantize rows that differ by a BF16 rounding: counted, printed, not
         * asserted (the quantization itself is checked just above). */
        prefill_into(c, ids, NP, &kc, &sc, lc);
        uint8_t a[2][512], b[2][512];
        float as[2][32], bs[2][32];
        int same[2] = {0, 0};
        assert_true(nkv * hd <= 512 && nkv <= 32);
        for (int p = 0; p < NP; p++) {
            assert_ok(ss_kv_cache_read_slot(kg, 0, sg.blocks[p / SS_KV_BLOCK], p % SS_KV_BLOCK, a[0], a[1], as[0], as[1]));
            assert_ok(ss_kv_cache_read_slot(kc, 0, sc.blocks[p / SS_KV_BLOCK], p % SS_KV_BLOCK, b[0], b[1], bs[0], bs[1]));
            for (int kv = 0; kv < 2; kv++)
                same[kv] += !memcmp(a[kv], b[kv], (size_t)nkv * hd) && !memcmp(as[kv], bs[kv], (size_t)nkv * sizeof(float));
        }
        printf("    %s INT8 kv fp8, GPU vs CPU engine, layer 0: key rows equal at %d of %d positions, value rows at "
               "%d of %d\n",
               arch, same[0], NP, same[1], NP);
        release(kc, &sc);
    }
    release(kg, &sg);

    /* The CPU FP8 engine's greedy continuation, teacher-forced on both. */
    int32_t path[STEPS];
    assert_ok(ss_generate_greedy(c, ids, NP, STEPS, path, NULL));
    ss_kv_seq_init(&sg);
    ss_kv_seq_init(&sc);
    assert_ok(ss_kv_cache_create(g, 4, &kg));
    assert_ok(ss_kv_cache_create(c, 4, &kc));
    int compared = 0;
    double worst = 0;
    for (int i = 0; i < STEPS; i++) {
        ss_seq_step a = i == 0 ? (ss_seq_step){.tokens = ids, .n_tokens = NP, .start_pos = 0, .kv = &sg}
                               : (ss_seq_step){.tokens = &path[i - 1], .n_tokens = 1, .start_pos = NP + i - 1, .kv = &sg};
        ss_seq_step b = a;
        b.kv = &sc;
        assert_ok(ss_model_forward(g, kg, &a, 1, lg));
        assert_ok(ss_model_forward(c, kc, &b, 1, lc));
        float mx = 0, md = 0, t1 = -INFINITY, t2 = -INFINITY;
        for (int64_t j = 0; j < v; j++) {
            mx = fmaxf(mx, fabsf(lc[j]));
            md = fmaxf(md, fabsf(lg[j] - lc[j]));
            if (lc[j] > t1)
                t2 = t1, t1 = lc[j];
            else if (lc[j] > t2)
                t2 = lc[j];
        }
        worst = fmax(worst, md / fmaxf(mx, 1.0f));
        assert_int_equal(ss_sample_greedy(lc, v), path[i]);
        if (t1 - t2 > GAP_MIN) {
            assert_int_equal(ss_sample_greedy(lg, v), path[i]);
            compared++;
        }
    }
    printf("%s %s%s kv fp8 gpu vs cpu: logits max normalized diff %.3e over %d steps (tol %.0e); greedy tokens equal at "
           "all %d steps with a top-2 gap > %.1f\n",
           worst <= TOL_CPU ? "OK " : "BAD", arch, int8 ? " INT8" : "", worst, STEPS, TOL_CPU, compared, GAP_MIN);
    assert_true(worst <= TOL_CPU);
    assert_true(compared >= 2); /* as ss_ref_check_greedy: the check must have compared something */
    release(kg, &sg);
    release(kc, &sc);
    free(lg);
    free(lc);
    ss_model_destroy(g);
    ss_model_destroy(c);
    ss_context_destroy(ctx);
    ss_context_destroy(cpu);
    if (int8)
        ss_test_rmtree(tmp);
}

static void test_kv_fp8_models(void **st) {
    for (size_t a = 0; a < sizeof ARCHS / sizeof *ARCHS; a++)
        check_kv_fp8(ARCHS[a], 0);
    check_kv_fp8("qwen2", 1);
}

#ifdef SS_HAVE_CUDA
#define CUDA_OK(x) assert_int_equal((int)(x), (int)cudaSuccess)

static void *dev_copy(const void *h, size_t bytes) {
    void *d = NULL;
    CUDA_OK(cudaMalloc(&d, bytes));
    CUDA_OK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

/* head_dim 128, GQA 4 (BitNet-2B's shape): four sequences in one batch, a
 * 70-token prefill and a 64-token chunk at positions 120..183 (tensor-core
 * tiles; the chunk's 3 key tiles reuse a stage), decode rows at positions
 * 230 and 36; the RoPE + KV write kernel, then every attention kernel.
 * Decode v3 over 231 keys: one block walks 4 tiles of 64 (stages refilled
 * after the first 2, the newest key in the last), two blocks 2 each (the
 * newest key in the second stage), eight blocks (the size chosen on the
 * H100) 1 each (the newest key in the first stage). */
static void test_kv_fp8_kernels_hd128(void **st) {
    enum { NH = 8, NKV = 2, HD = 128, NSEQ = 4, MAXB = 15, NB = 36, ROW = (NH + 2 * NKV) * HD };
    const int start[NSEQ] = {0, 120, 230, 36}, nnew[NSEQ] = {70, 64, 1, 1};
    ss_rng rng = {2024};
    /* The CPU pools: FP8, and BF16 holding the dequantized rows. */
    ss_kv_cache pool[2];
    memset(pool, 0, sizeof pool);
    for (int d = 0; d < 2; d++) {
        ss_kv_cache *c = &pool[d];
        c->n_layers = 1, c->n_kv_heads = NKV, c->head_dim = HD, c->n_blocks = NB;
        c->dtype = d ? SS_KV_DTYPE_BF16 : SS_KV_DTYPE_FP8;
        size_t rows = (size_t)NB * SS_KV_BLOCK * NKV;
        c->k = calloc(rows * HD, ss_kv_elem_size(c));
        c->v = calloc(rows * HD, ss_kv_elem_size(c));
        c->ks = calloc(rows, 4);
        c->vs = calloc(rows, 4);
    }
    /* Block tables: disjoint blocks in a shuffled order. */
    int32_t tables[NSEQ][MAXB], perm[NB];
    for (int i = 0; i < NB; i++)
        perm[i] = i;
    for (int i = NB - 1; i > 0; i--) {
        int j = (int)ss_rng_below(&rng, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    memset(tables, 0, sizeof tables);
    ss_kv_seq seqs[NSEQ];
    ss_seq_step steps[NSEQ];
    int used = 0, t = 0;
    for (int q = 0; q < NSEQ; q++) {
        int nb = (start[q] + nnew[q] + SS_KV_BLOCK - 1) / SS_KV_BLOCK;
        for (int b = 0; b < nb; b++)
            tables[q][b] = perm[used++];
        seqs[q] = (ss_kv_seq){.blocks = tables[q], .n_blocks = nb, .cap = MAXB, .n_tokens = start[q] + nnew[q]};
        steps[q] = (ss_seq_step){.n_tokens = nnew[q], .start_pos = start[q], .kv = &seqs[q]};
        t += nnew[q];
    }
    assert_true(used <= NB);
    /* Context rows (positions before each batch row) written on the CPU, as
     * earlier forwards would have; the batch's own rows by the kernel. */
    uint16_t *ctxrow = malloc((size_t)ROW * 2), *deq = malloc((size_t)ROW * 2);
    for (int q = 0; q < NSEQ; q++)
        for (int p = 0; p < start[q]; p++) {
            for (int i = 0; i < ROW; i++)
                ctxrow[i] = ss_f32_to_bf16_inline((float)ss_rng_normal(&rng) * (i % HD == 9 ? 6.0f : 1.0f));
            memcpy(deq, ctxrow, (size_t)ROW * 2);
            for (int h = NH; h < NH + 2 * NKV; h++) {
                uint8_t qb[HD];
                float sc;
                ss_kv_quant_row(ctxrow + h * HD, HD, qb, &sc);
                ss_kv_dequant_row(qb, HD, sc, deq + h * HD);
            }
            ss_tok_info ti = {.seq = 0, .pos = p};
            ss_kv_write_cpu(&pool[0], 0, ctxrow, &ti, 1, &steps[q], NH);
            ss_kv_write_cpu(&pool[1], 0, deq, &ti, 1, &steps[q], NH);
        }
    /* The batch: t rows of random q / k / v, RoPE'd by the kernel. */
    uint16_t *qkv = malloc((size_t)t * ROW * 2), *rot = malloc((size_t)t * ROW * 2);
    ss_tok_info tok[136];
    assert_true(t <= 136);
    for (int q = 0, r = 0; q < NSEQ; q++)
        for (int j = 0; j < nnew[q]; j++, r++)
            tok[r] = (ss_tok_info){.seq = q, .pos = start[q] + j};
    for (int64_t i = 0; i < (int64_t)t * ROW; i++)
        qkv[i] = ss_f32_to_bf16_inline((float)ss_rng_normal(&rng));
    float inv_freq[HD / 2];
    ss_rope_inv_freq(10000.0, HD, inv_freq);
    /* Tiles as the engine makes them: 64 rows x 4 heads. */
    ss_attn_tile tiles[16];
    int n_tiles = 0;
    for (int q = 0, row0 = 0; q < NSEQ; row0 += nnew[q], q++)
        for (int kvh = 0; kvh < NKV; kvh++)
            for (int r = 0; r < nnew[q]; r += 64)
                tiles[n_tiles++] = (ss_attn_tile){.seq = q, .row0 = row0 + r, .nq = nnew[q] - r < 64 ? nnew[q] - r : 64,
                                                  .head0 = kvh * 4, .nheads = 4};
    size_t pool_b = (size_t)NB * SS_KV_BLOCK * NKV * HD, rows = (size_t)NB * SS_KV_BLOCK * NKV;
    uint16_t *d_qkv = dev_copy(qkv, (size_t)t * ROW * 2), *d_out = NULL;
    ss_tok_info *d_tok = dev_copy(tok, sizeof tok);
    int32_t *d_tab = dev_copy(tables, sizeof tables);
    ss_attn_tile *d_tiles = dev_copy(tiles, sizeof tiles);
    float *d_if = dev_copy(inv_freq, sizeof inv_freq);
    ss_kv_layer kv8 = {.k = dev_copy(pool[0].k, pool_b), .v = dev_copy(pool[0].v, pool_b),
                       .ks = dev_copy(pool[0].ks, rows * 4), .vs = dev_copy(pool[0].vs, rows * 4), .fp8 = 1};
    CUDA_OK(ss_rope_kv_write_cuda(d_qkv, d_tok, t, NH, NKV, HD, d_if, &kv8, d_tab, MAXB, 0, 0));
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaMemcpy(rot, d_qkv, (size_t)t * ROW * 2, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(pool[0].k, kv8.k, pool_b, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(pool[0].v, kv8.v, pool_b, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(pool[0].ks, kv8.ks, rows * 4, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(pool[0].vs, kv8.vs, rows * 4, cudaMemcpyDeviceToHost));
    /* The kernel's stored rows == ss_kv_quant_row of its rotated k and its v. */
    for (int r = 0; r < t; r++) {
        const ss_kv_seq *kv = &seqs[tok[r].seq];
        int32_t blk = kv->blocks[tok[r].pos / SS_KV_BLOCK];
        int slot = tok[r].pos % SS_KV_BLOCK;
        size_t off = ss_kv_offset(&pool[0], 0, blk, slot), soff = ss_kv_scale_offset(&pool[0], 0, blk, slot);
        for (int h = 0; h < 2 * NKV; h++) {
            uint8_t qb[HD];
            float sc;
            ss_kv_quant_row(rot + (size_t)r * ROW + (size_t)(NH + h) * HD, HD, qb, &sc);
            const uint8_t *got = (const uint8_t *)(h < NKV ? pool[0].k : pool[0].v) + off + (size_t)(h % NKV) * HD;
            float gs = (h < NKV ? pool[0].ks : pool[0].vs)[soff + h % NKV];
            assert_memory_equal(got, qb, HD);
            assert_true(gs == sc);
            /* and the dequantized BF16 pool gets what attention reads */
            ss_kv_dequant_row(qb, HD, sc, (uint16_t *)(h < NKV ? pool[1].k : pool[1].v) + off + (size_t)(h % NKV) * HD);
        }
    }
    printf("OK  kv fp8 hd 128: the RoPE + KV write kernel's %d rows x %d kv heads (k and v) == ss_kv_quant_row of "
           "its rotated rows, bit for bit\n",
           t, NKV);
    ss_kv_layer kvb = {.k = dev_copy(pool[1].k, pool_b * 2), .v = dev_copy(pool[1].v, pool_b * 2), .fp8 = 0};
    /* CPU reference over the FP8 pool (== over the dequantized pool). */
    uint16_t *ref = malloc((size_t)t * NH * HD * 2), *o8 = malloc((size_t)t * NH * HD * 2),
             *ob = malloc((size_t)t * NH * HD * 2);
    float *fr = malloc((size_t)t * NH * HD * 4), *fo = malloc((size_t)t * NH * HD * 4);
    ss_attention_cpu(&pool[0], 0, rot, tok, t, steps, NH, ref);
    for (int64_t i = 0; i < (int64_t)t * NH * HD; i++)
        fr[i] = ss_bf16_to_f32_inline(ref[i]);
    CUDA_OK(cudaMalloc((void **)&d_out, (size_t)t * NH * HD * 2));
    static const struct {
        int variant;
        const char *name;
    } VARIANTS[] = {{SS_ATTN_AUTO, "auto (prefill + decode v3)"},
                    {SS_ATTN_MMA_H1, "prefill 1 head + decode v1"},
                    {SS_ATTN_DECODE2, "prefill + decode v2"},
                    {SS_ATTN_DECODE1, "prefill + decode v1"},
                    {SS_ATTN_DECODE3, "prefill + decode v3"},
                    {SS_ATTN_DECODE3 | SS_ATTN_DECODE3_SPLITS(1), "prefill + decode v3, clusters of 1"},
                    {SS_ATTN_DECODE3 | SS_ATTN_DECODE3_SPLITS(2), "prefill + decode v3, clusters of 2"},
                    {SS_ATTN_SIMT, "simt"}};
    for (size_t k = 0; k < sizeof VARIANTS / sizeof *VARIANTS; k++) {
        CUDA_OK(cudaMemset(d_out, 0xff, (size_t)t * NH * HD * 2));
        CUDA_OK(ss_attention_cuda_kv(d_qkv, d_tok, d_tiles, n_tiles, d_tab, MAXB, &kv8, NH, NKV, HD, d_out,
                                     VARIANTS[k].variant, 0));
        CUDA_OK(cudaMemcpy(o8, d_out, (size_t)t * NH * HD * 2, cudaMemcpyDeviceToHost));
        CUDA_OK(cudaMemset(d_out, 0xff, (size_t)t * NH * HD * 2));
        CUDA_OK(ss_attention_cuda_kv(d_qkv, d_tok, d_tiles, n_tiles, d_tab, MAXB, &kvb, NH, NKV, HD, d_out,
                                     VARIANTS[k].variant, 0));
        CUDA_OK(cudaMemcpy(ob, d_out, (size_t)t * NH * HD * 2, cudaMemcpyDeviceToHost));
        assert_memory_equal(o8, ob, (size_t)t * NH * HD * 2);
        for (int64_t i = 0; i < (int64_t)t * NH * HD; i++)
            fo[i] = ss_bf16_to_f32_inline(o8[i]);
        char what[128];
        snprintf(what, sizeof what, "kv fp8 hd 128 %s == its bf16 run on the dequantized pool; vs cpu", VARIANTS[k].name);
        ss_compare_normalized(what, fo, fr, (int64_t)t * NH * HD, TOL_ATTN);
    }
    /* The decode rows alone as a pure decode batch (decode v3 then loads the
     * older keys' tiles before its PDL wait and its own row after). */
    ss_attn_tile dec[16];
    int n_dec = 0, r_dec = nnew[0] + nnew[1]; /* the decode rows follow the prefill rows */
    for (int i = 0; i < n_tiles; i++)
        if (tiles[i].nq == 1)
            dec[n_dec++] = tiles[i];
    CUDA_OK(cudaMemcpy(d_tiles, dec, sizeof dec, cudaMemcpyHostToDevice));
    const ss_kv_layer *pools[2] = {&kv8, &kvb};
    uint16_t *res[2] = {o8, ob};
    const size_t dec_off = (size_t)r_dec * NH * HD, dec_n = (size_t)(t - r_dec) * NH * HD;
    for (int splits = 0; splits <= 2; splits++) { /* 0: the cluster size chosen from the tile count */
        for (int k = 0; k < 2; k++) {
            CUDA_OK(cudaMemset(d_out, 0xff, (size_t)t * NH * HD * 2));
            CUDA_OK(ss_attention_cuda_kv(d_qkv, d_tok, d_tiles, n_dec, d_tab, MAXB, pools[k], NH, NKV, HD, d_out,
                                         SS_ATTN_DECODE3 | SS_ATTN_PURE_DECODE | SS_ATTN_DECODE3_SPLITS(splits),
                                         0));
            CUDA_OK(cudaMemcpy(res[k], d_out, (size_t)t * NH * HD * 2, cudaMemcpyDeviceToHost));
        }
        assert_memory_equal(o8 + dec_off, ob + dec_off, dec_n * 2);
        for (size_t i = 0; i < dec_n; i++)
            fo[i] = ss_bf16_to_f32_inline(o8[dec_off + i]);
        static const char *SIZE[] = {"auto", "1", "2"};
        char what[128];
        snprintf(what, sizeof what, "kv fp8 hd 128 decode v3 pure-decode batch, clusters of %s == its bf16 run; vs cpu",
                 SIZE[splits]);
        ss_compare_normalized(what, fo, fr + dec_off, (int64_t)dec_n, TOL_ATTN);
    }
    cudaFree(d_qkv), cudaFree(d_out), cudaFree(d_tok), cudaFree(d_tab), cudaFree(d_tiles), cudaFree(d_if);
    cudaFree(kv8.k), cudaFree(kv8.v), cudaFree(kv8.ks), cudaFree(kv8.vs), cudaFree(kvb.k), cudaFree(kvb.v);
    for (int d = 0; d < 2; d++)
        free(pool[d].k), free(pool[d].v), free(pool[d].ks), free(pool[d].vs);
    free(ctxrow), free(deq), free(qkv), free(rot), free(ref), free(o8), free(ob), free(fr), free(fo);
}
#else
static void test_kv_fp8_kernels_hd128(void **st) { (void)st; }
#endif

static void test_errors(void **st) {
    char dir[512];
    ss_engine_fixture_dir("llama", dir, sizeof dir);
    ss_context *cpu, *ctx = gpu_ctx();
    assert_ok(ss_context_create(-1, &cpu));
    ss_model *m = NULL;
    assert_fails(ss_model_load(cpu, SS_BACKEND_CUBLASLT, dir, &m), SS_EINVAL, "needs a CUDA");
    assert_null(m);
    assert_fails(ss_model_load(ctx, SS_BACKEND_CPU, dir, &m), SS_EINVAL, "needs a CPU");
    /* A GPU model with a cache made for a CPU model. */
    ss_model *g = load(ctx, SS_BACKEND_CUBLASLT, dir), *c = load(cpu, SS_BACKEND_CPU, dir);
    ss_kv_cache *kc;
    assert_ok(ss_kv_cache_create(c, 2, &kc));
    ss_kv_seq s;
    ss_kv_seq_init(&s);
    const int32_t ids[] = {1, 2, 3};
    float *logits = malloc((size_t)ss_model_get_config(g)->vocab_size * 4);
    ss_seq_step sp = {.tokens = ids, .n_tokens = 3, .start_pos = 0, .kv = &s};
    assert_fails(ss_model_forward(g, kc, &sp, 1, logits), SS_EINVAL, "host memory");
    ss_kv_seq_release(kc, &s);
    ss_kv_cache_destroy(kc);
    free(logits);
    ss_model_destroy(g);
    ss_model_destroy(c);
    ss_context_destroy(cpu);
    ss_context_destroy(ctx);
}

int main(void) {
    if (ss_test_no_cuda())
        return 77;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitnet_matches_reference),
        cmocka_unit_test(test_llama_matches_reference),
        cmocka_unit_test(test_qwen2_matches_reference),
        cmocka_unit_test(test_slid_int8_equals_dense_bitnet),
        cmocka_unit_test(test_slid_int8_equals_dense_qwen2),
        cmocka_unit_test(test_decode_equals_prefill),
        cmocka_unit_test(test_batch_isolates_sequences),
        cmocka_unit_test(test_decode_graphs),
        cmocka_unit_test(test_pdl_bit_identical),
        cmocka_unit_test(test_kv_fp8_models),
        cmocka_unit_test(test_kv_fp8_kernels_hd128),
        cmocka_unit_test(test_eval_matches_cpu),
        cmocka_unit_test(test_errors),
    };
    /* SS_GPU_TEST_QUICK=1 (compute-sanitizer runs): one tiny model through
     * prefill, generation, decode and a mixed batch, and the error paths. */
    const struct CMUnitTest quick[] = {
        cmocka_unit_test(test_llama_matches_reference),
        cmocka_unit_test(test_batch_isolates_sequences),
        cmocka_unit_test(test_errors),
    };
    /* SS_TEST_FILTER='test_kv_fp8*' runs a subset (cmocka glob), as in
     * test_gpu_linear: compute-sanitizer on one kernel family */
    if (getenv("SS_TEST_FILTER"))
        cmocka_set_test_filter(getenv("SS_TEST_FILTER"));
    if (getenv("SS_GPU_TEST_QUICK"))
        return cmocka_run_group_tests(quick, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
