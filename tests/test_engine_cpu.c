/* The engine on the CPU backend against an independent reference: tiny
 * BitNet / Llama / Qwen2 checkpoints and outputs of Hugging Face transformers
 * (tests/data/engine/<arch>/, made by tools/make_reference.py), plus
 * properties the reference cannot check: slid INT8 == dense INT8 of the same
 * pruned weights (bit for bit), KV-cached decoding == one prefill, batching
 * does not mix sequences, and the error paths.
 *
 * Tolerances (against the float32 reference). Our engine rounds activations
 * to BF16 after every op, as the GPU engine will: each rounding has relative
 * error <= 2^-9; a layer has ~10 of them in sequence and errors propagate
 * through later layers, so with 2 layers we allow a normalized max error
 * (max|ours - ref| / max|ref|) of 3e-2 for hidden states and logits; a BF16
 * round of the residual alone gives 4e-3. Measured values are printed
 * (`OK max diff ...`) so a regression towards the bound shows. */
#include "support/engine_fixture.h"

#include "engine/model.h" /* the fused layers, for the fusion test */

#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define TOL_HIDDEN 3e-2
#define TOL_LOGITS 3e-2
/* Greedy tokens are compared only where the reference's top-2 gap exceeds
 * what our error can flip. */
#define GAP_MIN 0.5f

static const char *const ARCHS[] = {"bitnet", "llama", "qwen2"};

// --- helpers --------------------------------------------------------------------

static ss_model *load(ss_context *ctx, const char *dir) {
    ss_model *m = NULL;
    assert_ok(ss_model_load(ctx, SS_BACKEND_CPU, dir, &m));
    return m;
}

/* Prefill of one sequence in a fresh cache: logits (vocab) of its last token. */
static void prefill(ss_model *m, const int32_t *ids, int64_t n, float *logits) {
    ss_kv_cache *kc;
    assert_ok(ss_kv_cache_create(m, 8, &kc));
    ss_kv_seq s;
    ss_kv_seq_init(&s);
    ss_seq_step st = {.tokens = ids, .n_tokens = n, .start_pos = 0, .kv = &s};
    assert_ok(ss_model_forward(m, kc, &st, 1, logits));
    ss_kv_seq_release(kc, &s);
    assert_int_equal(ss_kv_cache_free_blocks(kc), 8);
    ss_kv_cache_destroy(kc);
}

// --- against the transformers reference -------------------------------------------

static void check_arch(const char *arch) {
    char dir[512];
    ss_engine_fixture_dir(arch, dir, sizeof dir);
    ss_ref_file rf;
    ss_ref_load(arch, &rf);
    ss_context *ctx;
    assert_ok(ss_context_create(-1, &ctx));
    ss_model *m = load(ctx, dir);
    const ss_model_config *c = ss_model_get_config(m);
    int np = ss_ref_count_prompts(&rf);
    assert_true(np >= 2);
    for (int p = 0; p < np; p++) {
        const ss_ref_rec *ids = ss_ref_get(&rf, "p%d.ids", p, 0);
        int64_t t = ids->numel;
        ss_layer_capture cap = {.layers = malloc((size_t)(c->num_hidden_layers * t * c->hidden_size) * 4),
                                .hidden = c->hidden_size};
        float *logits = malloc((size_t)c->vocab_size * 4);
        ss_model_set_layer_hook(m, ss_layer_capture_hook, &cap);
        prefill(m, ids->data, t, logits);
        ss_model_set_layer_hook(m, NULL, NULL);
        char what[64];
        for (int l = 0; l < c->num_hidden_layers; l++) {
            const ss_ref_rec *r = ss_ref_get(&rf, "p%d.layer%d", p, l);
            assert_int_equal(r->numel, t * c->hidden_size);
            snprintf(what, sizeof what, "%s p%d layer%d", arch, p, l);
            ss_compare_normalized(what, cap.layers + (int64_t)l * t * c->hidden_size, r->data, r->numel, TOL_HIDDEN);
        }
        const ss_ref_rec *rl = ss_ref_get(&rf, "p%d.logits", p, 0);
        assert_int_equal(rl->numel, c->vocab_size);
        snprintf(what, sizeof what, "%s p%d logits", arch, p);
        ss_compare_normalized(what, logits, rl->data, rl->numel, TOL_LOGITS);

        ss_ref_check_greedy(m, &rf, p, arch, GAP_MIN, NULL);
        free(cap.layers);
        free(logits);
    }
    ss_model_destroy(m);
    ss_context_destroy(ctx);
    ss_ref_free(&rf);
}

static void test_bitnet_matches_reference(void **st) { check_arch("bitnet"); }
static void test_llama_matches_reference(void **st) { check_arch("llama"); }
static void test_qwen2_matches_reference(void **st) { check_arch("qwen2"); }

// --- KV cache and batching -------------------------------------------------------

static void test_decode_equals_prefill(void **st) {
    for (size_t a = 0; a < sizeof ARCHS / sizeof *ARCHS; a++) {
        char dir[512];
        ss_engine_fixture_dir(ARCHS[a], dir, sizeof dir);
        ss_context *ctx;
        assert_ok(ss_context_create(-1, &ctx));
        ss_model *m = load(ctx, dir);
        int64_t v = ss_model_get_config(m)->vocab_size;
        /* 37 tokens: crosses two block boundaries. */
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
        /* A chunk of 5, then one token at a time. */
        ss_seq_step sp = {.tokens = ids, .n_tokens = 5, .start_pos = 0, .kv = &s};
        assert_ok(ss_model_forward(m, kc, &sp, 1, step));
        for (int i = 5; i < 37; i++) {
            sp = (ss_seq_step){.tokens = &ids[i], .n_tokens = 1, .start_pos = i, .kv = &s};
            assert_ok(ss_model_forward(m, kc, &sp, 1, step));
        }
        assert_int_equal(s.n_tokens, 37);
        assert_int_equal(s.n_blocks, 3);
        assert_int_equal(ss_kv_cache_free_blocks(kc), 0);
        char what[64];
        snprintf(what, sizeof what, "%s decode vs prefill", ARCHS[a]);
        /* Same rows through the same ops: only the GEMM's row count differs. */
        ss_compare_normalized(what, step, full, v, 1e-6);
        /* The pool is full: one more token needs a fourth block. */
        assert_fails(ss_kv_seq_reserve(kc, &s, 49), SS_ENOMEM, "more blocks");
        ss_kv_seq_release(kc, &s);
        assert_int_equal(ss_kv_cache_free_blocks(kc), 3);
        ss_kv_cache_destroy(kc);
        free(full);
        free(step);
        ss_model_destroy(m);
        ss_context_destroy(ctx);
    }
}

static void test_batch_isolates_sequences(void **st) {
    char dir[512];
    ss_engine_fixture_dir("qwen2", dir, sizeof dir);
    ss_context *ctx;
    assert_ok(ss_context_create(-1, &ctx));
    ss_model *m = load(ctx, dir);
    int64_t v = ss_model_get_config(m)->vocab_size;
    enum { NS = 3 };
    const int64_t len[NS] = {21, 3, 9};
    int32_t ids[NS][21];
    ss_rng rng = {7};
    for (int i = 0; i < NS; i++)
        for (int j = 0; j < len[i]; j++)
            ids[i][j] = (int32_t)ss_rng_below(&rng, (uint64_t)v);
    float *alone = malloc((size_t)(NS * v) * 4), *batch = malloc((size_t)(NS * v) * 4);
    for (int i = 0; i < NS; i++)
        prefill(m, ids[i], len[i], alone + i * v);

    /* All three prefills in one forward, then a mixed step: sequence 0
     * decodes one token while sequence 2 prefills a second chunk. */
    ss_kv_cache *kc;
    assert_ok(ss_kv_cache_create(m, 6, &kc));
    ss_kv_seq s[NS];
    ss_seq_step steps[NS];
    for (int i = 0; i < NS; i++) {
        ss_kv_seq_init(&s[i]);
        steps[i] = (ss_seq_step){.tokens = ids[i], .n_tokens = len[i] - (i == 2 ? 4 : 0), .start_pos = 0, .kv = &s[i]};
    }
    steps[0].n_tokens = 20;
    assert_ok(ss_model_forward(m, kc, steps, NS, batch));
    ss_compare_normalized("qwen2 batch seq1 vs alone", batch + 1 * v, alone + 1 * v, v, 1e-6);
    ss_seq_step mixed[2] = {
        {.tokens = &ids[0][20], .n_tokens = 1, .start_pos = 20, .kv = &s[0]},
        {.tokens = &ids[2][5], .n_tokens = 4, .start_pos = 5, .kv = &s[2]},
    };
    float *mix = malloc((size_t)(2 * v) * 4);
    assert_ok(ss_model_forward(m, kc, mixed, 2, mix));
    ss_compare_normalized("qwen2 batch seq0 decode", mix, alone, v, 1e-6);
    ss_compare_normalized("qwen2 batch seq2 chunked", mix + v, alone + 2 * v, v, 1e-6);
    for (int i = 0; i < NS; i++)
        ss_kv_seq_release(kc, &s[i]);
    ss_kv_cache_destroy(kc);
    free(alone);
    free(batch);
    free(mix);
    ss_model_destroy(m);
    ss_context_destroy(ctx);
}

// --- slid INT8 == dense INT8 holding the same pruned weights ----------------------

static void check_slid_equals_dense(const char *arch, const char *pattern) {
    char src[512], tmp[256], qdir[600], root[600], sdir[700], pdir[600];
    ss_engine_fixture_dir(arch, src, sizeof src);
    ss_test_tmpdir(tmp, sizeof tmp);
    snprintf(qdir, sizeof qdir, "%s/q", tmp);
    snprintf(root, sizeof root, "%s/slid", tmp);
    snprintf(pdir, sizeof pdir, "%s/pruned", tmp);
    ss_pattern p;
    assert_ok(ss_pattern_parse(pattern, &p));
    ss_quantize_opts qo = {.in_dir = src, .out_dir = qdir, .dtype = SS_DTYPE_I8};
    assert_ok(ss_quantize_checkpoint(&qo));
    ss_convert_opts co = {.in_dir = qdir, .out_root = root, .patterns = &p, .n_patterns = 1,
                          .dtype = SS_DTYPE_COUNT};
    assert_ok(ss_convert_checkpoint(&co));
    assert_ok(ss_convert_out_dir(qdir, root, p, sdir, sizeof sdir));
    ss_write_unslid(sdir, qdir, pdir, p);

    ss_context *ctx;
    assert_ok(ss_context_create(-1, &ctx));
    ss_model *slid = load(ctx, sdir), *dense = load(ctx, pdir), *unpruned = load(ctx, qdir);
    assert_int_equal(ss_model_get_config(slid)->kind, SS_WEIGHTS_SLID);
    assert_int_equal(ss_model_get_config(dense)->kind, SS_WEIGHTS_QUANTIZED);
    int64_t v = ss_model_get_config(slid)->vocab_size;
    const int32_t ids[] = {3, 141, 59, 26, 53, 58, 97, 93, 23, 84, 62, 64, 33, 83, 27, 95, 2};
    float *a = malloc((size_t)v * 4), *b = malloc((size_t)v * 4), *u = malloc((size_t)v * 4);
    prefill(slid, ids, 17, a);
    prefill(dense, ids, 17, b);
    prefill(unpruned, ids, 17, u);
    assert_memory_equal(a, b, (size_t)v * 4);
    int differs = memcmp(a, u, (size_t)v * 4) != 0;
    printf("OK  %s INT8 %s: slid == pruned dense bit for bit (logits hash %016llx); unpruned %s\n",
           arch, pattern, (unsigned long long)ss_logits_hash(a, v), differs ? "differs" : "SAME");
    assert_true(differs); /* pruning changed the model, so the comparison has teeth */
    int32_t ga[6], gb[6];
    assert_ok(ss_generate_greedy(slid, ids, 17, 6, ga, a));
    assert_ok(ss_generate_greedy(dense, ids, 17, 6, gb, b));
    assert_memory_equal(ga, gb, sizeof ga);
    assert_memory_equal(a, b, (size_t)v * 4);
    free(a);
    free(b);
    free(u);
    ss_model_destroy(slid);
    ss_model_destroy(dense);
    ss_model_destroy(unpruned);
    ss_context_destroy(ctx);
    ss_test_rmtree(tmp);
}

static void test_slid_int8_equals_dense_bitnet(void **st) { check_slid_equals_dense("bitnet", "2_8"); }
static void test_slid_int8_equals_dense_qwen2(void **st) { check_slid_equals_dense("qwen2", "2_6"); }

// --- F16 and F32 checkpoints ------------------------------------------------------

/* The engine keeps unquantized weights in BF16: F16 and F32 copies of a BF16
 * checkpoint (values F16 can hold) load to the same weights, so logits match
 * bit for bit and greedy generation gives the same ids. */
static void check_f16_f32(const char *arch) {
    char src[512], tmp[256], h[600], d16[600], d32[600];
    ss_engine_fixture_dir(arch, src, sizeof src);
    ss_test_tmpdir(tmp, sizeof tmp);
    snprintf(h, sizeof h, "%s/h", tmp);
    snprintf(d16, sizeof d16, "%s/f16", tmp);
    snprintf(d32, sizeof d32, "%s/f32", tmp);
    ss_test_snap_f16_checkpoint(src, h);
    ss_test_recast_checkpoint(h, d16, SS_DTYPE_F16);
    ss_test_recast_checkpoint(h, d32, SS_DTYPE_F32);
    ss_context *ctx;
    assert_ok(ss_context_create(-1, &ctx));
    ss_model *m[3] = {load(ctx, h), load(ctx, d16), load(ctx, d32)};
    int64_t v = ss_model_get_config(m[0])->vocab_size;
    const int32_t ids[] = {3, 141, 59, 26, 53, 58, 97, 93, 23, 84, 62};
    int32_t gen[3][8];
    float *lg[3];
    for (int i = 0; i < 3; i++) {
        lg[i] = malloc((size_t)v * 4);
        assert_ok(ss_generate_greedy(m[i], ids, 11, 8, gen[i], lg[i]));
    }
    for (int i = 1; i < 3; i++) {
        assert_memory_equal(gen[0], gen[i], sizeof gen[0]);
        assert_memory_equal(lg[0], lg[i], (size_t)v * 4);
    }
    printf("OK  %s F16 and F32 checkpoints == BF16: ids %d %d %d ..., logits hash %016llx\n", arch,
           gen[0][0], gen[0][1], gen[0][2], (unsigned long long)ss_logits_hash(lg[0], v));
    if (getenv("SS_CLI")) { /* the CLI: same ids; inspect names the real dtype */
        const char *dirs[2] = {d16, d32}, *dt[2] = {"F16", "F32"}, *word[2] = {"f16", "f32"};
        char args[1024], out[1 << 16], want[256];
        snprintf(want, sizeof want, "generated: %d,%d,%d,%d,%d,%d,%d,%d\n", gen[0][0], gen[0][1], gen[0][2],
                 gen[0][3], gen[0][4], gen[0][5], gen[0][6], gen[0][7]);
        for (int i = 0; i < 2; i++) {
            snprintf(args, sizeof args, "--model '%s' --prompt-ids 3,141,59,26,53,58,97,93,23,84,62 --max-tokens 8",
                     dirs[i]);
            assert_int_equal(ss_test_run_cli("generate", args, out, sizeof out), 0);
            assert_non_null(strstr(out, want));
            snprintf(args, sizeof args, "'%s'", dirs[i]);
            assert_int_equal(ss_test_run_cli("inspect", args, out, sizeof out), 0);
            char line[128];
            snprintf(line, sizeof line, "weights:      %s (dense original)", word[i]);
            assert_non_null(strstr(out, line));
            const char *row = strstr(out, "model.layers.0.self_attn.q_proj.weight ");
            assert_non_null(row);
            assert_true(strncmp(row + 49, dt[i], 3) == 0 && row[52] == ' ');
            assert_null(strstr(out, "BF16")); /* every tensor of the copy is F16/F32 */
        }
        printf("OK  %s cli: generate on F16 and F32 gives %s", arch, want);
    }
    /* another dtype: one line naming file, tensor and dtype */
    char d16i[600];
    snprintf(d16i, sizeof d16i, "%s/i16", tmp);
    ss_test_recast_checkpoint(h, d16i, SS_DTYPE_I16);
    ss_model *bad = NULL;
    assert_fails(ss_model_load(ctx, SS_BACKEND_CPU, d16i, &bad), SS_EFORMAT,
                 "i16/model.safetensors: tensor 'model.");
    assert_non_null(strstr(ss_last_error(), "': expected dtype BF16, F16 or F32, found I16"));
    assert_null(strchr(ss_last_error(), '\n'));
    assert_null(bad);
    for (int i = 0; i < 3; i++) {
        free(lg[i]);
        ss_model_destroy(m[i]);
    }
    ss_context_destroy(ctx);
    ss_test_rmtree(tmp);
}

static void test_f16_f32_llama(void **st) { check_f16_f32("llama"); }
static void test_f16_f32_qwen2(void **st) { check_f16_f32("qwen2"); }

// --- fusion: one fused ss_linear == the separate projections ---------------------

/* y (m, n) of the checkpoint's projection `base` as its own ss_linear. */
static void separate_linear(ss_context *ctx, const ss_checkpoint *ck, const char *base, int64_t k,
                            const uint16_t *x, int64_t m, uint16_t *y) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", base);
    const ss_st_entry *w = ss_checkpoint_find(ck, name);
    snprintf(name, sizeof name, "%s.weight_scale", base);
    const ss_st_entry *sc = ss_checkpoint_find(ck, name);
    assert_non_null(w);
    assert_non_null(sc);
    ss_linear_desc d = ss_linear_desc_default(base, w->shape[0], k, w->dtype);
    d.per_channel = sc->shape[0] != 1 || w->shape[0] == 1;
    snprintf(name, sizeof name, "%s.bias", base);
    const ss_st_entry *b = ss_checkpoint_find(ck, name); /* Qwen2 q/k/v */
    assert_true(!b || b->dtype == SS_DTYPE_BF16);
    ss_linear_weights lw = {.w = w->data, .w_scale = sc->data, .bias = b ? b->data : NULL};
    ss_linear *lin;
    assert_ok(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &lw, &lin));
    assert_ok(ss_linear_forward(lin, x, m, y));
    ss_linear_destroy(lin);
}

static void check_fusion(const char *arch, ss_dtype dt) {
    char src[512], tmp[256], qdir[600];
    ss_engine_fixture_dir(arch, src, sizeof src);
    ss_test_tmpdir(tmp, sizeof tmp);
    snprintf(qdir, sizeof qdir, "%s/q", tmp);
    ss_quantize_opts qo = {.in_dir = src, .out_dir = qdir, .dtype = dt};
    assert_ok(ss_quantize_checkpoint(&qo));
    ss_context *ctx;
    assert_ok(ss_context_create(-1, &ctx));
    ss_model *m = load(ctx, qdir);
    ss_checkpoint *ck;
    assert_ok(ss_checkpoint_open(qdir, &ck));
    const ss_model_config *c = ss_model_get_config(m);
    int64_t h = c->hidden_size, mm = 3;
    int64_t qd = (int64_t)c->num_attention_heads * c->head_dim, kvd = (int64_t)c->num_key_value_heads * c->head_dim;
    int64_t inter = c->intermediate_size;
    int64_t nqkv = qd + 2 * kvd, nmax = nqkv > 2 * inter ? nqkv : 2 * inter;
    uint16_t *x = malloc((size_t)(mm * h) * 2), *fused = malloc((size_t)(mm * nmax) * 2),
             *part = malloc((size_t)(mm * nmax) * 2);
    ss_rng rng = {11};
    for (int64_t i = 0; i < mm * h; i++)
        x[i] = ss_f32_to_bf16((float)ss_rng_normal(&rng));
    int bad = 0;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const struct { ss_linear *lin; const char *parts[3]; int64_t n[3]; int np; } f[2] = {
            {m->layers[l].qkv, {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}, {qd, kvd, kvd}, 3},
            {m->layers[l].gate_up, {"mlp.gate_proj", "mlp.up_proj"}, {inter, inter}, 2},
        };
        for (int j = 0; j < 2; j++) {
            int64_t n = ss_linear_get_desc(f[j].lin)->n;
            assert_ok(ss_linear_forward(f[j].lin, x, mm, fused));
            for (int p = 0, c0 = 0; p < f[j].np; c0 += (int)f[j].n[p], p++) {
                char base[128];
                snprintf(base, sizeof base, "model.layers.%d.%s", l, f[j].parts[p]);
                separate_linear(ctx, ck, base, h, x, mm, part);
                for (int64_t r = 0; r < mm; r++)
                    bad += memcmp(fused + r * n + c0, part + r * f[j].n[p], (size_t)f[j].n[p] * 2) != 0;
            }
        }
    }
    printf("%s %s %s: fused qkv / gate_up == separate projections bit for bit\n", bad ? "BAD" : "OK ", arch,
           ss_dtype_name(dt));
    assert_int_equal(bad, 0);
    free(x);
    free(fused);
    free(part);
    ss_checkpoint_close(ck);
    ss_model_destroy(m);
    ss_context_destroy(ctx);
    ss_test_rmtree(tmp);
}

/* BitNet: per-tensor ternary scales become per-channel; Qwen2: per-channel. */
static void test_fusion_bitnet_int8(void **st) { check_fusion("bitnet", SS_DTYPE_I8); }
static void test_fusion_qwen2_fp8(void **st) { check_fusion("qwen2", SS_DTYPE_F8_E4M3); }

// --- errors -------------------------------------------------------------------------

/* A copy of the llama fixture with config.json text `from` replaced by `to`. */
static void patched_copy(const char *tmp, const char *from, const char *to) {
    char src[512], path[1024];
    ss_engine_fixture_dir("llama", src, sizeof src);
    assert_int_equal(mkdir(tmp, 0755), 0);
    size_t len;
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    void *st = ss_test_read_file(path, &len);
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    ss_test_write_file(path, st, len);
    free(st);
    snprintf(path, sizeof path, "%s/config.json", src);
    char *cfg = ss_test_read_file(path, &len);
    char *hit = strstr(cfg, from);
    assert_non_null(hit);
    char out[8192];
    snprintf(out, sizeof out, "%.*s%s%s", (int)(hit - cfg), cfg, to, hit + strlen(from));
    snprintf(path, sizeof path, "%s/config.json", tmp);
    ss_test_write_file(path, out, strlen(out));
    free(cfg);
}

static void test_errors(void **st) {
    char tmp[256], d1[300], d2[300], dir[512];
    ss_test_tmpdir(tmp, sizeof tmp);
    ss_context *ctx;
    assert_ok(ss_context_create(-1, &ctx));
    ss_model *m = NULL;

    snprintf(d1, sizeof d1, "%s/shape", tmp);
    patched_copy(d1, "\"intermediate_size\": 136", "\"intermediate_size\": 140");
    assert_fails(ss_model_load(ctx, SS_BACKEND_CPU, d1, &m), SS_EFORMAT, "gate_proj.weight': expected shape [140, 64]");
    assert_null(m);
    snprintf(d2, sizeof d2, "%s/arch", tmp);
    patched_copy(d2, "LlamaForCausalLM", "GPT2LMHeadModel");
    assert_fails(ss_model_load(ctx, SS_BACKEND_CPU, d2, &m), SS_EUNSUPPORTED, "unsupported architecture");

    ss_engine_fixture_dir("llama", dir, sizeof dir);
    assert_fails(ss_model_load(ctx, SS_BACKEND_CUSPARSELT, dir, &m), SS_EINVAL, "needs a SlideSparse checkpoint");
    m = load(ctx, dir);
    int32_t out[4];
    const int32_t bad[] = {1, 256, 3};
    assert_fails(ss_generate_greedy(m, bad, 3, 2, out, NULL), SS_EINVAL, "prompt id 256 at index 1 is out of vocabulary");
    assert_fails(ss_generate_greedy(m, bad, 0, 2, out, NULL), SS_EINVAL, "empty prompt");
    assert_fails(ss_generate_greedy(m, bad, 1, 128, out, NULL), SS_EINVAL, "exceeds max_position_embeddings 128");
    ss_kv_cache *kc;
    assert_ok(ss_kv_cache_create(m, 2, &kc));
    ss_kv_seq s;
    ss_kv_seq_init(&s);
    float logits[256];
    ss_seq_step sp = {.tokens = bad, .n_tokens = 1, .start_pos = 2, .kv = &s};
    assert_fails(ss_model_forward(m, kc, &sp, 1, logits), SS_EINVAL, "start_pos 2, expected 0..0");
    ss_kv_cache_destroy(kc);
    ss_model_destroy(m);
    ss_context_destroy(ctx);
    ss_test_rmtree(tmp);
}

static void test_slid_on_dense_backend(void **st) {
    char src[512], tmp[256], root[300], sdir[700];
    ss_engine_fixture_dir("llama", src, sizeof src);
    ss_test_tmpdir(tmp, sizeof tmp);
    snprintf(root, sizeof root, "%s/slid", tmp);
    ss_pattern p = {2, 8};
    ss_convert_opts co = {.in_dir = src, .out_root = root, .patterns = &p, .n_patterns = 1,
                          .dtype = SS_DTYPE_COUNT};
    assert_ok(ss_convert_checkpoint(&co));
    assert_ok(ss_convert_out_dir(src, root, p, sdir, sizeof sdir));
    ss_context *ctx;
    assert_ok(ss_context_create(-1, &ctx));
    ss_model *m = NULL;
    assert_fails(ss_model_load(ctx, SS_BACKEND_CUBLASLT, sdir, &m), SS_EINVAL,
                 "SlideSparse checkpoint (pattern 2_8) cannot run on the dense backend cublaslt");
    ss_context_destroy(ctx);
    ss_test_rmtree(tmp);
}

// --- the CLI --------------------------------------------------------------------

/* Runs `$SS_CLI generate ARGS 2>&1`; returns the exit code, output in buf. */
static int run_cli(const char *args, char *buf, size_t n) { return ss_test_run_cli("generate", args, buf, n); }

static void test_cli_generate(void **st) {
    if (!getenv("SS_CLI")) {
        printf("skipped: SS_CLI not set\n");
        return;
    }
    char dir[512], args[1024], out[4096], want[256];
    ss_engine_fixture_dir("bitnet", dir, sizeof dir);
    ss_context *ctx;
    assert_ok(ss_context_create(-1, &ctx));
    ss_model *m = load(ctx, dir);
    const int32_t ids[] = {1, 17, 42, 99, 5};
    int32_t gen[6];
    float logits[320];
    assert_int_equal(ss_model_get_config(m)->vocab_size, 320);
    assert_ok(ss_generate_greedy(m, ids, 5, 6, gen, logits));
    snprintf(args, sizeof args, "--model '%s' --prompt-ids 1,17,42,99,5 --max-tokens 6", dir);
    assert_int_equal(run_cli(args, out, sizeof out), 0);
    snprintf(want, sizeof want, "generated: %d,%d,%d,%d,%d,%d\n", gen[0], gen[1], gen[2], gen[3], gen[4], gen[5]);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "logits hash: %016llx", (unsigned long long)ss_logits_hash(logits, 320));
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "tokens/s"));
    printf("OK  cli: %s", out);

    /* Bad input: one line naming the problem, exit != 0. */
    static const struct { const char *args, *needle; } bad[] = {
        {"--prompt-ids 1,320 --max-tokens 2", "prompt id 320 at index 1 is out of vocabulary"},
        {"--prompt-ids '' --max-tokens 2", "non-empty comma-separated list"},
        {"--prompt-ids 1,x --max-tokens 2", "non-empty comma-separated list"},
        {"--prompt-ids 1,2 --max-tokens 127", "exceed max_position_embeddings 128"},
        {"--prompt-ids 1 --max-tokens 0", "--max-tokens '0'"},
        {"--prompt-ids 1 --max-tokens 2 --backend cusparselt", "needs a SlideSparse checkpoint"},
        {"--prompt-ids 1 --max-tokens 2 --backend tpu", "--backend 'tpu'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(args, sizeof args, "--model '%s' %s", dir, bad[i].args);
        int rc = run_cli(args, out, sizeof out);
        printf("    exit %d: %s", rc, out);
        assert_int_not_equal(rc, 0);
        assert_non_null(strstr(out, bad[i].needle));
        assert_non_null(strstr(out, "slidesparse generate: "));
        assert_int_equal(strchr(out, '\n') - out + 1, strlen(out)); /* one line */
    }
    ss_model_destroy(m);
    ss_context_destroy(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitnet_matches_reference),
        cmocka_unit_test(test_llama_matches_reference),
        cmocka_unit_test(test_qwen2_matches_reference),
        cmocka_unit_test(test_decode_equals_prefill),
        cmocka_unit_test(test_batch_isolates_sequences),
        cmocka_unit_test(test_slid_int8_equals_dense_bitnet),
        cmocka_unit_test(test_slid_int8_equals_dense_qwen2),
        cmocka_unit_test(test_f16_f32_llama),
        cmocka_unit_test(test_f16_f32_qwen2),
        cmocka_unit_test(test_fusion_bitnet_int8),
        cmocka_unit_test(test_fusion_qwen2_fp8),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_slid_on_dense_backend),
        cmocka_unit_test(test_cli_generate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
