/* Perplexity (ss_eval_perplexity) on the tiny checkpoints of tests/data/engine
 * against an independent computation in this file: for every scored token,
 * a fresh prefill of the tokens before it in its window through
 * ss_model_forward, and a log-softmax in long double. The window rule is
 * restated here in its closed form (token t is scored by the first window that
 * ends after it, if that window starts before it) rather than as the
 * library's loop. */
#include "support/engine_fixture.h"

#include <math.h>
#include <string.h>

static const char *const ARCHS[] = {"bitnet", "llama", "qwen2"};

static ss_model *load(ss_context *ctx, const char *arch) {
    char dir[512];
    ss_engine_fixture_dir(arch, dir, sizeof dir);
    ss_model *m = NULL;
    assert_ok(ss_model_load(ctx, SS_BACKEND_CPU, dir, &m));
    return m;
}

/* -log softmax(logits)[target], long double, no shortcut shared with the library. */
static long double ref_nll(const float *logits, int64_t v, int32_t target) {
    long double mx = logits[0], sum = 0;
    for (int64_t i = 1; i < v; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    for (int64_t i = v - 1; i >= 0; i--)
        sum += expl((long double)logits[i] - mx);
    return logl(sum) - ((long double)logits[target] - mx);
}

/* The logits after a fresh prefill of ids[b..t): they predict ids[t]. */
static void ref_prefill(ss_model *m, const int32_t *ids, int64_t b, int64_t t, float *logits) {
    ss_kv_cache *kc;
    assert_ok(ss_kv_cache_create(m, 16, &kc));
    ss_kv_seq s;
    ss_kv_seq_init(&s);
    ss_seq_step st = {.tokens = ids + b, .n_tokens = t - b, .start_pos = 0, .kv = &s};
    assert_ok(ss_model_forward(m, kc, &st, 1, logits));
    ss_kv_seq_release(kc, &s);
    ss_kv_cache_destroy(kc);
}

/* Sum of NLL and count over the scored tokens, windows (ctx, stride). */
static long double ref_sum(ss_model *m, const int32_t *ids, int64_t n, int64_t ctx, int64_t stride,
                           int64_t *count) {
    int64_t v = ss_model_get_config(m)->vocab_size;
    float *logits = malloc((size_t)v * sizeof *logits);
    long double sum = 0;
    *count = 0;
    for (int64_t t = 1; t < n; t++) {
        int64_t k = t < ctx ? 0 : (t - ctx) / stride + 1; /* first window with end > t */
        int64_t b = k * stride;
        if (b >= t)
            continue; /* t opens its window: no context */
        ref_prefill(m, ids, b, t, logits);
        sum += ref_nll(logits, v, ids[t]);
        (*count)++;
    }
    free(logits);
    return sum;
}

static void random_ids(ss_model *m, uint64_t seed, int32_t *ids, int n) {
    ss_rng rng = {seed};
    for (int i = 0; i < n; i++)
        ids[i] = (int32_t)ss_rng_below(&rng, (uint64_t)ss_model_get_config(m)->vocab_size);
}

static void check_against_ref(ss_model *m, const char *what, const int32_t *ids, int64_t n, int64_t ctx,
                              int64_t stride, int64_t want_windows) {
    ss_eval_result r;
    ss_eval_opts o = {.context = ctx, .stride = stride};
    assert_ok(ss_eval_perplexity(m, ids, n, &o, &r));
    int64_t count;
    long double ref = ref_sum(m, ids, n, ctx ? ctx : ss_model_get_config(m)->max_position_embeddings,
                              stride ? stride : (ctx ? ctx : ss_model_get_config(m)->max_position_embeddings),
                              &count);
    double rel = (double)fabsl((long double)r.nll_sum - ref) / (double)fabsl(ref);
    printf("%s  %s ctx %lld stride %lld: %lld tokens in %lld windows, NLL sum %.9f (ref %.9Lf), rel diff %.2e\n",
           rel <= 1e-9 ? "OK " : "BAD", what, (long long)ctx, (long long)stride, (long long)r.n_tokens,
           (long long)r.n_windows, r.nll_sum, ref, rel);
    assert_int_equal(r.n_tokens, count);
    assert_int_equal(r.n_windows, want_windows);
    assert_true(rel <= 1e-9);
    assert_true(fabs(r.mean_nll - r.nll_sum / (double)r.n_tokens) <= 1e-12 * r.mean_nll);
    assert_true(fabs(r.perplexity - exp(r.mean_nll)) <= 1e-12 * r.perplexity);
}

// --- tests -----------------------------------------------------------------------------

static void test_nll_matches_reference(void **st) {
    ss_context *ctx;
    assert_ok(ss_context_create(-1, &ctx));
    for (size_t a = 0; a < sizeof ARCHS / sizeof *ARCHS; a++) {
        ss_model *m = load(ctx, ARCHS[a]);
        int32_t ids[12];
        random_ids(m, 7 + a, ids, 12);
        check_against_ref(m, ARCHS[a], ids, 12, 0, 0, 1); /* one window (context 128 by default) */
        ss_model_destroy(m);
    }
    ss_context_destroy(ctx);
}

static void test_windows(void **st) {
    ss_context *ctx;
    assert_ok(ss_context_create(-1, &ctx));
    ss_model *m = load(ctx, "qwen2");
    int32_t ids[20];
    random_ids(m, 99, ids, 20);
    /* Windows [0,5) [5,10) [10,15) [15,20): 4 first tokens unscored, 16 scored. */
    check_against_ref(m, "qwen2", ids, 20, 5, 0, 4);
    /* [0,6) [3,9) ... [12,18) [15,20): 6 windows; every token but the first scored once. */
    check_against_ref(m, "qwen2", ids, 20, 6, 3, 6);
    /* A last window of one token scores nothing: [0,4) [4,8) [8,9). */
    check_against_ref(m, "qwen2", ids, 9, 4, 4, 3);
    /* Context changes the numbers: a sliding window gives tokens more context. */
    ss_eval_result a, b;
    assert_ok(ss_eval_perplexity(m, ids, 20, &(ss_eval_opts){.context = 5}, &a));
    assert_ok(ss_eval_perplexity(m, ids, 20, &(ss_eval_opts){.context = 20}, &b));
    assert_int_equal(a.n_tokens, 16);
    assert_int_equal(b.n_tokens, 19);
    assert_true(a.nll_sum != b.nll_sum);
    ss_model_destroy(m);
    ss_context_destroy(ctx);
}

static void test_text_perplexity(void **st) {
    static const char text[] = "The quick brown fox jumps over the lazy dog. Perplexity is the exponential of "
                               "the mean negative log-likelihood of each next token.";
    ss_context *ctx;
    assert_ok(ss_context_create(-1, &ctx));
    for (size_t a = 0; a < sizeof ARCHS / sizeof *ARCHS; a++) {
        char dir[512], path[600];
        ss_engine_fixture_dir(ARCHS[a], dir, sizeof dir);
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        ss_tokenizer *tok;
        assert_ok(ss_tokenizer_load(path, &tok));
        int32_t *ids;
        int64_t n;
        assert_ok(ss_tokenizer_encode(tok, text, strlen(text), 1, &ids, &n));
        assert_true(n >= 16);
        ss_model *m = load(ctx, ARCHS[a]);
        ss_eval_result r;
        assert_ok(ss_eval_perplexity(m, ids, n, &(ss_eval_opts){.context = 32, .stride = 16}, &r));
        printf("OK  %s: perplexity %.4f over %lld tokens (mean NLL %.6f)\n", ARCHS[a], r.perplexity,
               (long long)r.n_tokens, r.mean_nll);
        assert_int_equal(r.n_tokens, n - 1);
        assert_true(isfinite(r.perplexity) && r.perplexity > 1);
        assert_true(isfinite(r.mean_nll) && r.mean_nll > 0);
        ss_model_destroy(m);
        free(ids);
        ss_tokenizer_destroy(tok);
    }
    ss_context_destroy(ctx);
}

static void test_token_nll(void **st) {
    float l[4] = {1, 2, 3, 4};
    double z = log(exp(1.0) + exp(2.0) + exp(3.0) + exp(4.0));
    assert_true(fabs(ss_eval_token_nll(l, 4, 0) - (z - 1)) < 1e-12);
    assert_true(fabs(ss_eval_token_nll(l, 4, 3) - (z - 4)) < 1e-12);
    /* Large logits: max subtraction keeps it finite. */
    float big[2] = {1e30f, 1e30f};
    assert_true(fabs(ss_eval_token_nll(big, 2, 1) - log(2.0)) < 1e-12);
    l[2] = NAN;
    assert_true(isnan(ss_eval_token_nll(l, 4, 0)));
    l[2] = INFINITY;
    assert_true(isnan(ss_eval_token_nll(l, 4, 0)));
}

static void test_errors(void **st) {
    ss_context *ctx;
    assert_ok(ss_context_create(-1, &ctx));
    ss_model *m = load(ctx, "llama");
    const int32_t ids[] = {1, 2, 3, 256};
    ss_eval_result r = {.n_tokens = 5};
    assert_fails(ss_eval_perplexity(m, ids, 4, NULL, &r), SS_EINVAL, "id 256 at index 3 is out of vocabulary");
    assert_int_equal(r.n_tokens, 0);
    assert_fails(ss_eval_perplexity(m, ids, 1, NULL, &r), SS_EINVAL, "1 token(s), expected at least 2");
    assert_fails(ss_eval_perplexity(m, ids, 3, &(ss_eval_opts){.context = 1}, &r), SS_EINVAL,
                 "context 1, expected 2..128");
    assert_fails(ss_eval_perplexity(m, ids, 3, &(ss_eval_opts){.context = 129}, &r), SS_EINVAL,
                 "context 129, expected 2..128");
    assert_fails(ss_eval_perplexity(m, ids, 3, &(ss_eval_opts){.context = 4, .stride = 5}, &r), SS_EINVAL,
                 "stride 5, expected 1..4");
    assert_ok(ss_eval_perplexity(m, ids, 3, NULL, &r));
    assert_int_equal(r.n_tokens, 2);
    ss_model_destroy(m);
    ss_context_destroy(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nll_matches_reference),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_text_perplexity),
        cmocka_unit_test(test_token_nll),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
