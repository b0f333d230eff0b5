/* The CPU reference sampler and ss_generate: greedy at temperature 0, the
 * same ids for the same seed, the drawn frequencies of temperature / top-k /
 * top-p against the distributions they define, a top-p cut identical to a
 * plain full-sort reference, NaN never drawn; generation stopping at a stop
 * id or when the callback says so. */
#include <math.h>
#include <string.h>

#include "engine_fixture.h"

static ss_sampler *make(float temperature, int32_t top_k, float top_p, uint64_t seed, int64_t vocab) {
    ss_sampling p = {.temperature = temperature, .top_k = top_k, .top_p = top_p, .seed = seed};
    ss_sampler *s;
    assert_ok(ss_sampler_create(&p, vocab, &s));
    return s;
}

/* Frequencies of n draws over logits (3 entries). */
static void draw(ss_sampler *s, const float *logits, int n, double *freq) {
    int count[3] = {0};
    for (int i = 0; i < n; i++) {
        int32_t id = ss_sampler_next(s, logits);
        assert_true(id >= 0 && id < 3);
        count[id]++;
    }
    for (int k = 0; k < 3; k++)
        freq[k] = (double)count[k] / n;
}

/* Each frequency within tol of the expected probability. */
static void expect_freq(const char *what, const double *got, double p0, double p1, double p2) {
    const double want[3] = {p0, p1, p2}, tol = 0.015; /* > 4 sigma at 20000 draws */
    printf("  %-28s %.3f %.3f %.3f (expected %.3f %.3f %.3f)\n", what, got[0], got[1], got[2], p0, p1, p2);
    for (int k = 0; k < 3; k++)
        assert_true(fabs(got[k] - want[k]) < tol);
}

static void test_distributions(void **st) {
    const float logits[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    const int n = 20000;
    double f[3];
    ss_sampler *s = make(1, 0, 1, 1, 3);
    draw(s, logits, n, f);
    expect_freq("temperature 1", f, 0.5, 0.3, 0.2);
    ss_sampler_destroy(s);
    /* Temperature 2: p^(1/2), renormalized. */
    double r0 = sqrt(0.5), r1 = sqrt(0.3), r2 = sqrt(0.2), z = r0 + r1 + r2;
    s = make(2, 0, 1, 2, 3);
    draw(s, logits, n, f);
    expect_freq("temperature 2", f, r0 / z, r1 / z, r2 / z);
    ss_sampler_destroy(s);
    s = make(1, 2, 1, 3, 3);
    draw(s, logits, n, f);
    expect_freq("top-k 2", f, 0.625, 0.375, 0);
    ss_sampler_destroy(s);
    /* top-p 0.7: 0.5 < 0.7, so the second joins; 0.8 >= 0.7 stops there. */
    s = make(1, 0, 0.7f, 4, 3);
    draw(s, logits, n, f);
    expect_freq("top-p 0.7", f, 0.625, 0.375, 0);
    ss_sampler_destroy(s);
    s = make(1, 0, 0.45f, 5, 3);
    draw(s, logits, n, f);
    expect_freq("top-p 0.45", f, 1, 0, 0);
    ss_sampler_destroy(s);
}

static void test_greedy_and_seeds(void **st) {
    enum { V = 1000, N = 300 };
    float logits[V];
    ss_rng r = {7};
    for (int i = 0; i < V; i++)
        logits[i] = (float)ss_rng_normal(&r);
    int32_t greedy = ss_sample_greedy(logits, V);
    ss_sampler *t0 = make(0, 0, 1, 1, V), *k1 = make(3, 1, 1, 1, V), *p0 = make(3, 0, 1e-6f, 1, V);
    ss_sampler *a = make(1, 50, 0.9f, 42, V), *b = make(1, 50, 0.9f, 42, V), *c = make(1, 50, 0.9f, 43, V);
    int differ = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(ss_sampler_next(t0, logits), greedy);
        assert_int_equal(ss_sampler_next(k1, logits), greedy); /* top-1 at any temperature */
        assert_int_equal(ss_sampler_next(p0, logits), greedy); /* a nucleus of one */
        int32_t x = ss_sampler_next(a, logits), y = ss_sampler_next(b, logits), z = ss_sampler_next(c, logits);
        assert_int_equal(x, y); /* same seed, same draws */
        differ += x != z;
    }
    printf("  seed 42 vs 43: %d of %d draws differ\n", differ, N);
    assert_true(differ > N / 2);
    ss_sampler_destroy(t0);
    ss_sampler_destroy(k1);
    ss_sampler_destroy(p0);
    ss_sampler_destroy(a);
    ss_sampler_destroy(b);
    ss_sampler_destroy(c);
    /* NaN never drawn, even at a high temperature. */
    const float nan_logits[3] = {NAN, -50, NAN};
    ss_sampler *s = make(100, 0, 1, 9, 3);
    for (int i = 0; i < 100; i++)
        assert_int_equal(ss_sampler_next(s, nan_logits), 1);
    ss_sampler_destroy(s);
}

/* The nucleus by the definition: sort all, keep while the mass before is
 * below top_p. in[id] = 1 for its members. */
static void nucleus_reference(const float *logits, int64_t v, float t, float top_p, char *in) {
    double *w = malloc((size_t)v * sizeof *w), total = 0, mx = -INFINITY;
    int32_t *order = malloc((size_t)v * sizeof *order);
    for (int64_t i = 0; i < v; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    for (int64_t i = 0; i < v; i++)
        total += w[i] = exp((logits[i] - mx) / t), order[i] = (int32_t)i;
    for (int64_t i = 1; i < v; i++) /* insertion sort: by weight, then id */
        for (int64_t j = i; j > 0 && (w[order[j]] > w[order[j - 1]] ||
                                      (w[order[j]] == w[order[j - 1]] && order[j] < order[j - 1])); j--) {
            int32_t x = order[j];
            order[j] = order[j - 1], order[j - 1] = x;
        }
    memset(in, 0, (size_t)v);
    double cum = 0;
    for (int64_t k = 0; k < v && (k == 0 || cum < top_p * total); k++)
        in[order[k]] = 1, cum += w[order[k]];
    free(w);
    free(order);
}

static void test_top_p_matches_full_sort(void **st) {
    enum { V = 4000 };
    float *logits = malloc(V * sizeof *logits);
    char *in = malloc(V);
    ss_rng r = {11};
    for (int i = 0; i < V; i++)
        logits[i] = (float)(3 * ss_rng_normal(&r));
    const float ps[] = {0.5f, 0.9f, 0.99f};
    for (int k = 0; k < 3; k++) {
        nucleus_reference(logits, V, 1.5f, ps[k], in);
        int members = 0, seen = 0;
        for (int i = 0; i < V; i++)
            members += in[i];
        char *hit = calloc(V, 1);
        ss_sampler *s = make(1.5f, 0, ps[k], 100 + (uint64_t)k, V);
        for (int i = 0; i < 20000; i++) {
            int32_t id = ss_sampler_next(s, logits);
            assert_true(in[id]); /* never outside the nucleus */
            seen += !hit[id];
            hit[id] = 1;
        }
        printf("  top-p %.2f: nucleus of %d, %d of them drawn\n", (double)ps[k], members, seen);
        assert_true(seen > members / 2); /* and not a smaller set */
        ss_sampler_destroy(s);
        free(hit);
    }
    free(logits);
    free(in);
}

static void test_bad_settings(void **st) {
    ss_sampler *s;
    ss_sampling p = {.temperature = -1, .top_p = 1};
    assert_fails(ss_sampler_create(&p, 10, &s), SS_EINVAL, "temperature -1");
    p = (ss_sampling){.temperature = 1, .top_k = -2, .top_p = 1};
    assert_fails(ss_sampler_create(&p, 10, &s), SS_EINVAL, "top_k -2");
    p = (ss_sampling){.temperature = 1, .top_p = 0};
    assert_fails(ss_sampler_create(&p, 10, &s), SS_EINVAL, "top_p 0");
    p = (ss_sampling){.temperature = NAN, .top_p = 1};
    assert_fails(ss_sampler_create(&p, 10, &s), SS_EINVAL, "temperature");
}

// --- generation ---------------------------------------------------------------------------

typedef struct {
    int32_t seen[64];
    int n, stop_after;
} callback_log;

static int log_token(void *user, int32_t id) {
    callback_log *l = user;
    l->seen[l->n++] = id;
    return l->n == l->stop_after;
}

static void test_generate_stops(void **st) {
    char dir[512];
    ss_engine_fixture_dir("qwen2", dir, sizeof dir);
    ss_context *ctx;
    ss_model *m;
    assert_ok(ss_context_create(-1, &ctx));
    assert_ok(ss_model_load(ctx, SS_BACKEND_CPU, dir, &m));
    const int32_t prompt[] = {42, 71, 295, 81};
    int32_t all[12], out[12];
    int64_t n;
    assert_ok(ss_generate_greedy(m, prompt, 4, 12, all, NULL));
    /* A stop id ends the generation at its first appearance; it is in out
     * but not passed to the callback. */
    int32_t stop = all[5];
    int first = 0;
    while (all[first] != stop)
        first++;
    callback_log log = {.stop_after = 0};
    ss_generate_opts o = {.max_new = 12, .stop_ids = &stop, .n_stop_ids = 1, .on_token = log_token, .user = &log};
    assert_ok(ss_generate(m, prompt, 4, &o, out, &n, NULL));
    assert_int_equal(n, first + 1);
    assert_memory_equal(out, all, (size_t)n * sizeof *out);
    assert_int_equal(log.n, first);
    assert_memory_equal(log.seen, all, (size_t)first * sizeof *out);
    /* The callback stops it after the id it was given. */
    log = (callback_log){.stop_after = 3};
    o = (ss_generate_opts){.max_new = 12, .on_token = log_token, .user = &log};
    assert_ok(ss_generate(m, prompt, 4, &o, out, &n, NULL));
    assert_int_equal(n, 3);
    assert_memory_equal(out, all, 3 * sizeof *out);
    /* A sampler: the same seed gives the same ids. */
    ss_sampler *s1 = make(1.2f, 40, 0.95f, 5, ss_model_get_config(m)->vocab_size);
    ss_sampler *s2 = make(1.2f, 40, 0.95f, 5, ss_model_get_config(m)->vocab_size);
    int32_t a[12], b[12];
    o = (ss_generate_opts){.max_new = 12, .sampler = s1};
    assert_ok(ss_generate(m, prompt, 4, &o, a, &n, NULL));
    assert_int_equal(n, 12);
    o.sampler = s2;
    assert_ok(ss_generate(m, prompt, 4, &o, b, &n, NULL));
    assert_memory_equal(a, b, sizeof a);
    ss_sampler_destroy(s1);
    ss_sampler_destroy(s2);
    ss_model_destroy(m);
    ss_context_destroy(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distributions),
        cmocka_unit_test(test_greedy_and_seeds),
        cmocka_unit_test(test_top_p_matches_full_sort),
        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_generate_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
