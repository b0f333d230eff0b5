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
 */
#include "support/ss_test.h"

#include "engine/model.h" /* ss_model_forward_next: sampled ids from the device */

#include <math.h>
#include <string.h>
#include <sys/stat.h>

#define REF_MAGIC 0x46455253u
#define REF_VERSION 1u
#define TOL_REF 3e-2
#define TOL_CPU 3e-2
#define TOL_KV 1e-4
#define GAP_MIN 0.5f

static const char *const ARCHS[] = {"bitnet", "llama", "qwen2"};

// --- reference.bin (format: tools/make_reference.py; same reader as test_engine_cpu) ---

typedef struct {
    char name[64];
    int64_t numel;
    const void *data;
} ref_rec;

typedef struct {
    ref_rec rec[64];
    int n;
} ref_file;

static uint32_t rd_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void ref_load(const char *arch, ref_file *rf) {
    char path[512];
    snprintf(path, sizeof path, "%s/engine/%s/reference.bin", getenv("SS_TEST_DATA"), arch);
    size_t len = 0;
    uint8_t *buf = ss_test_read_file(path, &len);
    if (!buf)
        fail_msg("cannot read %s", path);
    assert_true(len >= 12);
    assert_int_equal(rd_u32(buf), REF_MAGIC);
    assert_int_equal(rd_u32(buf + 4), REF_VERSION);
    uint32_t count = rd_u32(buf + 8);
    assert_true(count <= 64);
    size_t at = 12;
    for (uint32_t i = 0; i < count; i++) {
        ref_rec *r = &rf->rec[i];
        assert_true(at + 4 <= len);
        uint32_t nl = rd_u32(buf + at);
        assert_true(nl < sizeof r->name && at + 4 + nl + 8 <= len);
        memcpy(r->name, buf + at + 4, nl);
        r->name[nl] = 0;
        at += 4 + nl;
        uint32_t ndim = rd_u32(buf + at + 4);
        at += 8;
        assert_true(ndim <= 4 && at + 8 * ndim <= len);
        r->numel = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            int64_t s;
            memcpy(&s, buf + at, 8);
            assert_true(s >= 0 && s < (1 << 24));
            r->numel *= s;
            at += 8;
        }
        assert_true(at + 4 * (size_t)r->numel <= len);
        void *copy = malloc(4 * (size_t)r->numel + 4);
        memcpy(copy, buf + at, 4 * (size_t)r->numel);
        r->data = copy;
        at += 4 * (size_t)r->numel;
    }
    assert_int_equal(at, len);
    rf->n = (int)count;
    free(buf);
}

static void ref_free(ref_file *rf) {
    for (int i = 0; i < rf->n; i++)
        free((void *)rf->rec[i].data);
}

static const ref_rec *ref_get(const ref_file *rf, const char *fmt, int a, int b) {
    char name[64];
    snprintf(name, sizeof name, fmt, a, b);
    for (int i = 0; i < rf->n; i++)
        if (strcmp(rf->rec[i].name, name) == 0)
            return &rf->rec[i];
    fail_msg("reference record %s missing", name);
    return NULL;
}

static int ref_count_prompts(const ref_file *rf) {
    int n = 0;
    for (int i = 0; i < rf->n; i++)
        if (strstr(rf->rec[i].name, ".ids"))
            n++;
    return n;
}

// --- helpers --------------------------------------------------------------------------------

static void fixture_dir(const char *arch, char *buf, size_t n) {
    snprintf(buf, n, "%s/engine/%s", getenv("SS_TEST_DATA"), arch);
}

static ss_model *load(ss_context *ctx, ss_backend b, const char *dir) {
    ss_model *m = NULL;
    assert_ok(ss_model_load(ctx, b, dir, &m));
    return m;
}

static double compare(const char *what, const float *ours, const float *ref, int64_t n, double tol) {
    double md = 0, mr = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)ours[i] - ref[i]);
        md = d > md || d != d ? d : md;
        mr = fabs(ref[i]) > mr ? fabs(ref[i]) : mr;
    }
    double rel = md / (mr > 1 ? mr : 1);
    printf("%s %-34s max diff %.3e (normalized %.3e, tol %.0e)\n", rel <= tol ? "OK " : "BAD", what, md,
           rel, tol);
    if (!(rel <= tol))
        fail_msg("%s: normalized max diff %.3e > %.0e", what, rel, tol);
    return rel;
}

typedef struct {
    float *layers; // (n_layers, t, hidden)
    int64_t hidden;
} layer_capture;

static void capture_hook(void *user, int layer, const uint16_t *x, int64_t t) {
    layer_capture *c = user;
    for (int64_t i = 0; i < t * c->hidden; i++)
        c->layers[(int64_t)layer * t * c->hidden + i] = ss_bf16_to_f32(x[i]);
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
    fixture_dir(arch, src, sizeof src);
    snprintf(qdir, n, "%s/q", tmp);
    ss_quantize_opts qo = {.in_dir = src, .out_dir = qdir, .dtype = SS_DTYPE_I8};
    assert_ok(ss_quantize_checkpoint(&qo));
}

// --- against the transformers reference and the CPU engine -----------------------------------

static void check_arch(const char *arch) {
    char dir[512];
    fixture_dir(arch, dir, sizeof dir);
    ref_file rf;
    ref_load(arch, &rf);
    ss_context *ctx = gpu_ctx(), *cpu;
    assert_ok(ss_context_create(-1, &cpu));
    ss_model *m = load(ctx, SS_BACKEND_CUBLASLT, dir), *mc = load(cpu, SS_BACKEND_CPU, dir);
    const ss_model_config *c = ss_model_get_config(m);
    int np = ref_count_prompts(&rf);
    assert_true(np >= 2);
    for (int p = 0; p < np; p++) {
        const ref_rec *ids = ref_get(&rf, "p%d.ids", p, 0);
        int64_t t = ids->numel;
        layer_capture cap = {.layers = malloc((size_t)(c->num_hidden_layers * t * c->hidden_size) * 4),
                             .hidden = c->hidden_size};
        float *logits = malloc((size_t)c->vocab_size * 4), *lcpu = malloc((size_t)c->vocab_size * 4);
        ss_model_set_layer_hook(m, capture_hook, &cap);
        prefill(m, ids->data, t, logits);
        ss_model_set_layer_hook(m, NULL, NULL);
        prefill(mc, ids->data, t, lcpu);
        char what[64];
        for (int l = 0; l < c->num_hidden_layers; l++) {
            const ref_rec *r = ref_get(&rf, "p%d.layer%d", p, l);
            assert_int_equal(r->numel, t * c->hidden_size);
            snprintf(what, sizeof what, "%s gpu p%d layer%d", arch, p, l);
            compare(what, cap.layers + (int64_t)l * t * c->hidden_size, r->data, r->numel, TOL_REF);
        }
        const ref_rec *rl = ref_get(&rf, "p%d.logits", p, 0);
        assert_int_equal(rl->numel, c->vocab_size);
        snprintf(what, sizeof what, "%s gpu p%d logits vs reference", arch, p);
        compare(what, logits, rl->data, rl->numel, TOL_REF);
        snprintf(what, sizeof what, "%s gpu p%d logits vs cpu engine", arch, p);
        compare(what, logits, lcpu, c->vocab_size, TOL_CPU);

        const ref_rec *g = ref_get(&rf, "p%d.greedy", p, 0), *gap = ref_get(&rf, "p%d.gap", p, 0);
        int32_t out[16];
        assert_true(g->numel <= 16);
        assert_ok(ss_generate_greedy(m, ids->data, t, g->numel, out, logits));
        int checked = 0;
        for (int64_t i = 0; i < g->numel; i++) {
            if (((const float *)gap->data)[i] < GAP_MIN)
                break; /* a near tie: later tokens may legitimately differ */
            assert_int_equal(out[i], ((const int32_t *)g->data)[i]);
            checked++;
        }
        printf("OK  %s gpu p%d greedy: %d of %lld tokens match the reference\n", arch, p, checked,
               (long long)g->numel);
        assert_true(checked >= 2);
        free(cap.layers);
        free(logits);
        free(lcpu);
    }
    ss_model_destroy(m);
    ss_model_destroy(mc);
    ss_context_destroy(cpu);
    ss_context_destroy(ctx);
    ref_free(&rf);
}

static void test_bitnet_matches_reference(void **st) { check_arch("bitnet"); }
static void test_llama_matches_reference(void **st) { check_arch("llama"); }
static void test_qwen2_matches_reference(void **st) { check_arch("qwen2"); }

// --- slid INT8 (cusparselt) == dense INT8 of the same pruned weights (cublaslt) --------------

/* dst = the slid checkpoint with every projection unslid to (N, K), under the
 * config.json of the dense quantized checkpoint (as test_engine_cpu.c). */
static void write_unslid(const char *slid_dir, const char *config_from, const char *dst, ss_pattern p) {
    ss_checkpoint *ck;
    assert_ok(ss_checkpoint_open(slid_dir, &ck));
    char path[1024];
    assert_int_equal(mkdir(dst, 0755), 0);
    snprintf(path, sizeof path, "%s/config.json", config_from);
    size_t len;
    void *cfg = ss_test_read_file(path, &len);
    assert_non_null(cfg);
    snprintf(path, sizeof path, "%s/config.json", dst);
    ss_test_write_file(path, cfg, len);
    free(cfg);
    size_t n = ss_checkpoint_count(ck);
    void **bufs = calloc(n, sizeof *bufs);
    size_t *sizes = calloc(n, sizeof *sizes);
    ss_st_writer *w;
    snprintf(path, sizeof path, "%s/model.safetensors", dst);
    assert_ok(ss_st_writer_open(path, &w));
    const ss_model_config *c = ss_checkpoint_config(ck);
    for (size_t i = 0; i < n; i++) {
        const ss_st_entry *e = ss_checkpoint_entry(ck, i);
        int64_t shape[2] = {e->shape[0], e->ndim == 2 ? e->shape[1] : 0};
        if (ss_tensor_role_of(e->name) == SS_ROLE_PROJ && e->dtype == SS_DTYPE_I8) {
            int64_t k = strstr(e->name, "down_proj") ? c->intermediate_size
                        : strstr(e->name, "o_proj") ? (int64_t)c->num_attention_heads * c->head_dim
                                                    : c->hidden_size;
            assert_int_equal(e->shape[1], ss_slid_k(p, k));
            shape[1] = k;
            sizes[i] = (size_t)(shape[0] * k);
            bufs[i] = malloc(sizes[i]);
            assert_ok(ss_unslide(SS_DTYPE_I8, e->data, shape[0], k, p, bufs[i]));
        }
        assert_ok(ss_st_writer_declare(w, e->name, e->dtype, e->ndim, shape));
    }
    for (size_t i = 0; i < n; i++) {
        const ss_st_entry *e = ss_checkpoint_entry(ck, i);
        assert_ok(ss_st_writer_write(w, bufs[i] ? bufs[i] : e->data, bufs[i] ? sizes[i] : e->nbytes));
        free(bufs[i]);
    }
    assert_ok(ss_st_writer_close(w));
    free(bufs);
    free(sizes);
    ss_checkpoint_close(ck);
}

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
        write_unslid(sdir, qdir, pdir, p);
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
        compare(what, step, full, v, TOL_KV);
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
    compare("qwen2 INT8 gpu batch seq1 vs alone", batch + 1 * v, alone + 1 * v, v, TOL_KV);
    ss_seq_step mixed[2] = {
        {.tokens = &ids[0][39], .n_tokens = 1, .start_pos = 39, .kv = &s[0]},
        {.tokens = &ids[2][5], .n_tokens = 4, .start_pos = 5, .kv = &s[2]},
    };
    float *mix = malloc((size_t)(2 * v) * 4);
    assert_ok(ss_model_forward(m, kc, mixed, 2, mix));
    compare("qwen2 INT8 gpu seq0 decode in batch", mix, alone, v, TOL_KV);
    compare("qwen2 INT8 gpu seq2 chunked in batch", mix + v, alone + 2 * v, v, TOL_KV);
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

// --- errors ----------------------------------------------------------------------------------

static void test_errors(void **st) {
    char dir[512];
    fixture_dir("llama", dir, sizeof dir);
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
        cmocka_unit_test(test_errors),
    };
    /* SS_GPU_TEST_QUICK=1 (compute-sanitizer runs): one tiny model through
     * prefill, generation, decode and a mixed batch, and the error paths. */
    const struct CMUnitTest quick[] = {
        cmocka_unit_test(test_llama_matches_reference),
        cmocka_unit_test(test_batch_isolates_sequences),
        cmocka_unit_test(test_errors),
    };
    if (getenv("SS_GPU_TEST_QUICK"))
        return cmocka_run_group_tests(quick, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
