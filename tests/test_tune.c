/* Tuning tables: JSON round trip, the lookup rule against a brute-force
 * reading of SPEC §7, rejection of malformed / foreign tables, atomic save,
 * the context's automatic table, model shapes, and the search driver on the
 * CPU backend (tuned once, reused after). Kernel launch entries: round trip,
 * lookup rule, old tables without them, rejection naming the entry, the
 * context's quant lookup; on a GPU the search lands quant entries. */
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>

#include "support/ss_test.h"
#include "linear/backend.h"
#include "io/fileutil.h" /* ss_mkdir_parents */
#include "tune/fixture.h"

static ss_tune_key cpu_key(void) {
    ss_tune_key k;
    memset(&k, 0, sizeof k);
    snprintf(k.gpu, sizeof k.gpu, "CPU");
    snprintf(k.cublaslt, sizeof k.cublaslt, "none");
    snprintf(k.cusparselt, sizeof k.cusparselt, "none");
    snprintf(k.toolchain, sizeof k.toolchain, "cpu");
    return k;
}

static ss_tune_entry rand_entry(ss_rng *r, ss_backend b, int64_t n, int64_t k, int64_t m) {
    ss_tune_entry e;
    memset(&e, 0, sizeof e);
    e.backend = b;
    e.in = ss_rng_below(r, 2) ? SS_DTYPE_I8 : SS_DTYPE_F8_E4M3;
    e.out = e.in == SS_DTYPE_I8 ? SS_DTYPE_I32 : SS_DTYPE_F32;
    e.n = n;
    e.k = k;
    e.m = m;
    e.n_top = 1 + (int)ss_rng_below(r, 3);
    for (int i = 0; i < e.n_top; i++) {
        ss_algo *a = &e.top[i].algo;
        a->backend = b;
        a->alg_id = (int)ss_rng_below(r, 40);
        a->split_k = (int)ss_rng_range(r, -1, 8);
        a->workspace = ss_rng_below(r, 1 << 20);
        a->has_opaque = b == SS_BACKEND_CUBLASLT;
        for (int j = 0; a->has_opaque && j < SS_ALGO_OPAQUE_BYTES; j++)
            a->opaque[j] = (uint8_t)ss_rng_below(r, 256);
        snprintf(a->desc, sizeof a->desc, "alg %d, \"quoted\"", a->alg_id);
        e.top[i].us = (double)ss_rng_below(r, 100000) / 8.0; /* exact in binary */
        e.top[i].tops = (double)ss_rng_below(r, 4000) / 4.0;
    }
    e.best = e.top[0].algo;
    return e;
}

static void assert_algo_equal(const ss_algo *a, const ss_algo *b) {
    assert_int_equal(a->backend, b->backend);
    assert_int_equal(a->alg_id, b->alg_id);
    assert_int_equal(a->split_k, b->split_k);
    assert_true(a->workspace == b->workspace);
    assert_int_equal(a->has_opaque, b->has_opaque);
    assert_memory_equal(a->opaque, b->opaque, SS_ALGO_OPAQUE_BYTES);
    assert_string_equal(a->desc, b->desc);
}

static void test_round_trip(void **st) {
    ss_rng r = {7};
    ss_tune_key key = cpu_key();
    snprintf(key.gpu, sizeof key.gpu, "NVIDIA H100 80GB HBM3");
    key.cc = 90;
    ss_tune_table *t = NULL, *u = NULL;
    assert_ok(ss_tune_table_create(&key, &t));
    for (int i = 0; i < 50; i++) {
        ss_backend b = (ss_backend)ss_rng_below(&r, 3);
        ss_tune_entry e = rand_entry(&r, b, 32 * (1 + i), 64, 16 * (1 + i % 7));
        assert_ok(ss_tune_table_put(t, &e));
    }
    char *js = NULL;
    assert_ok(ss_tune_table_dump(t, &js));
    assert_ok(ss_tune_table_parse(js, strlen(js), "rt.json", &u));
    assert_true(ss_tune_key_equal(ss_tune_table_key(t), ss_tune_table_key(u)));
    assert_int_equal(ss_tune_table_count(t), ss_tune_table_count(u));
    for (size_t i = 0; i < ss_tune_table_count(t); i++) {
        const ss_tune_entry *a = ss_tune_table_entry(t, i), *b = ss_tune_table_entry(u, i);
        assert_int_equal(a->backend, b->backend);
        assert_int_equal(a->in, b->in);
        assert_int_equal(a->n, b->n);
        assert_int_equal(a->m, b->m);
        assert_int_equal(a->n_top, b->n_top);
        assert_algo_equal(&a->best, &b->best);
        for (int j = 0; j < a->n_top; j++) {
            assert_algo_equal(&a->top[j].algo, &b->top[j].algo);
            assert_true(a->top[j].us == b->top[j].us);
            assert_true(a->top[j].tops == b->top[j].tops);
        }
    }
    free(js);
    ss_tune_table_free(t);
    ss_tune_table_free(u);
}

/* SPEC §7: smallest tuned M >= requested, else the largest; other shapes never. */
static void test_lookup_rule(void **st) {
    ss_rng r = {11};
    ss_tune_key key = cpu_key();
    for (int round = 0; round < 200; round++) {
        ss_tune_table *t = NULL;
        assert_ok(ss_tune_table_create(&key, &t));
        int64_t ms[8];
        int nm = 1 + (int)ss_rng_below(&r, 8);
        for (int i = 0; i < nm; i++) {
            ms[i] = 16 * ss_rng_range(&r, 1, 64);
            ss_tune_entry e = rand_entry(&r, SS_BACKEND_CUSPARSELT, 256, 512, ms[i]);
            e.in = SS_DTYPE_I8;
            e.out = SS_DTYPE_I32;
            assert_ok(ss_tune_table_put(t, &e));
            ss_tune_entry other = e; /* same M, other K: must never answer */
            other.k = 1024;
            assert_ok(ss_tune_table_put(t, &other));
        }
        int64_t want_m = ss_rng_range(&r, 1, 1200);
        int64_t best = -1, largest = -1;
        for (int i = 0; i < nm; i++) {
            if (ms[i] >= want_m && (best < 0 || ms[i] < best))
                best = ms[i];
            largest = ms[i] > largest ? ms[i] : largest;
        }
        const ss_tune_entry *e = ss_tune_table_lookup(t, SS_BACKEND_CUSPARSELT, SS_DTYPE_I8,
                                                      SS_DTYPE_I32, 256, 512, want_m);
        assert_non_null(e);
        assert_int_equal(e->k, 512);
        assert_int_equal(e->m, best >= 0 ? best : largest);
        assert_null(ss_tune_table_lookup(t, SS_BACKEND_CUBLASLT, SS_DTYPE_I8, SS_DTYPE_I32, 256,
                                         512, want_m));
        assert_null(ss_tune_table_lookup(t, SS_BACKEND_CUSPARSELT, SS_DTYPE_F8_E4M3,
                                         SS_DTYPE_F32, 256, 512, want_m));
        ss_tune_table_free(t);
    }
}

static void test_put_replaces(void **st) {
    ss_rng r = {3};
    ss_tune_key key = cpu_key();
    ss_tune_table *t = NULL;
    assert_ok(ss_tune_table_create(&key, &t));
    ss_tune_entry a = rand_entry(&r, SS_BACKEND_CPU, 64, 64, 32), b = a;
    b.best.alg_id = a.best.alg_id + 1;
    assert_ok(ss_tune_table_put(t, &a));
    assert_ok(ss_tune_table_put(t, &b));
    assert_int_equal(ss_tune_table_count(t), 1);
    assert_int_equal(ss_tune_table_entry(t, 0)->best.alg_id, b.best.alg_id);
    ss_tune_table_free(t);
}

#define ENTRY(body) \
    "{\"format\":\"slidesparse-tuning\",\"version\":1,\"key\":{\"gpu\":\"CPU\",\"cc\":0," \
    "\"cublaslt\":\"none\",\"cusparselt\":\"none\",\"toolchain\":\"cpu\"},\"entries\":[" body "]}"
#define ALGO(backend, extra) \
    "{\"backend\":\"" backend "\",\"alg_id\":1,\"split_k\":1,\"workspace\":0,\"desc\":\"d\"" extra "}"
#define GOOD_TOP "\"top\":[{\"algo\":" ALGO("cusparselt", "") ",\"us\":1.5,\"tops\":2}]"

static void test_parse_rejects(void **st) {
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"{", "syntax"},
        {"[]", "(root)"},
        {"{\"format\":\"other\",\"version\":1}", "format"},
        {"{\"format\":\"slidesparse-tuning\",\"version\":2}", "version"},
        {"{\"format\":\"slidesparse-tuning\",\"version\":1,\"key\":3}", "key"},
        {ENTRY("3"), "entry 0"},
        {ENTRY("{\"backend\":\"magic\"}"), "backend"},
        {ENTRY("{\"backend\":\"cusparselt\",\"in\":\"I9\",\"out\":\"I32\"}"), "'in'"},
        {ENTRY("{\"backend\":\"cusparselt\",\"in\":\"I8\",\"out\":\"I32\",\"n\":-5,\"k\":1,\"m\":1}"), "'n'"},
        {ENTRY("{\"backend\":\"cusparselt\",\"in\":\"I8\",\"out\":\"I32\",\"n\":5,\"k\":1,\"m\":1.5}"), "'m'"},
        {ENTRY("{\"backend\":\"cusparselt\",\"in\":\"I8\",\"out\":\"I32\",\"n\":5,\"k\":1,\"m\":1,"
               "\"best\":" ALGO("cusparselt", "") ",\"top\":[]}"), "top"},
        {ENTRY("{\"backend\":\"cusparselt\",\"in\":\"I8\",\"out\":\"I32\",\"n\":5,\"k\":1,\"m\":1,"
               "\"best\":" ALGO("cublaslt", "") "," GOOD_TOP "}"), "algo"},
        {ENTRY("{\"backend\":\"cusparselt\",\"in\":\"I8\",\"out\":\"I32\",\"n\":5,\"k\":1,\"m\":1,"
               "\"best\":" ALGO("cusparselt", ",\"algo\":\"zz\"") "," GOOD_TOP "}"), "hex"},
        {ENTRY("{\"backend\":\"cusparselt\",\"in\":\"I8\",\"out\":\"I32\",\"n\":5,\"k\":1,\"m\":1,"
               "\"best\":" ALGO("cusparselt", "") ",\"top\":[{\"algo\":" ALGO("cusparselt", "")
               ",\"us\":-1,\"tops\":2}]}"), "'us'"},
        {ENTRY("{\"backend\":\"cusparselt\",\"in\":\"I8\",\"out\":\"I32\",\"n\":5,\"k\":1,\"m\":1,"
               "\"best\":" ALGO("cusparselt", "") "," GOOD_TOP "},"
               "{\"backend\":\"cusparselt\",\"in\":\"I8\",\"out\":\"I32\",\"n\":5,\"k\":1,\"m\":1,"
               "\"best\":" ALGO("cusparselt", "") "," GOOD_TOP "}"), "twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ss_tune_table *t = (ss_tune_table *)&t;
        assert_fails(ss_tune_table_parse(bad[i].json, strlen(bad[i].json), "bad.json", &t),
                     SS_EFORMAT, bad[i].needle);
        assert_null(t);
    }
    /* the good one these were made from parses */
    const char *good = ENTRY("{\"backend\":\"cusparselt\",\"in\":\"I8\",\"out\":\"I32\",\"n\":5,"
                             "\"k\":1,\"m\":1,\"best\":" ALGO("cusparselt", "") "," GOOD_TOP "}");
    ss_tune_table *t = NULL;
    assert_ok(ss_tune_table_parse(good, strlen(good), "good.json", &t));
    assert_int_equal(ss_tune_table_count(t), 1);
    ss_tune_table_free(t);
    /* embedded NUL inside a string */
    const char nul[] = "{\"format\":\"slidesparse-tuning\\u0000x\",\"version\":1}";
    assert_fails(ss_tune_table_parse(nul, sizeof nul - 1, "nul.json", &t), SS_EFORMAT, "nul.json");
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void log_count(void *u, const char *line) {
    (void)line;
    ++*(int *)u;
}

static void test_open_rules(void **st) {
    char tmp[256], path[1024], status[2048];
    ss_test_tmpdir(tmp, sizeof tmp);
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    ss_tune_key key;
    assert_ok(ss_tune_key_of(ctx, &key));
    assert_string_equal(key.gpu, "CPU");
    assert_ok(ss_tune_table_path(tmp, &key, path, sizeof path));
    assert_non_null(strstr(path, "/CPU_cc0_cpu/tuning.json"));

    ss_tune_table *t = NULL, *got = (ss_tune_table *)&t;
    assert_ok(ss_tune_table_open(ctx, tmp, &got, status, sizeof status));
    assert_null(got);
    assert_non_null(strstr(status, "no table"));

    /* a table for another GPU at this path: ignored with a warning */
    ss_tune_key other = key;
    snprintf(other.gpu, sizeof other.gpu, "Some Other GPU");
    assert_ok(ss_tune_table_create(&other, &t));
    ss_rng r = {1};
    ss_tune_entry e = rand_entry(&r, SS_BACKEND_CPU, 64, 64, 16);
    assert_ok(ss_tune_table_put(t, &e));
    assert_ok(ss_tune_table_save(t, path));
    ss_tune_table_free(t);
    assert_ok(ss_tune_table_open(ctx, tmp, &got, status, sizeof status));
    assert_null(got);
    assert_non_null(strstr(status, "warning: ignoring"));
    assert_non_null(strstr(status, "Some Other GPU"));

    /* corrupt: ignored */
    ss_test_write_file(path, "{\"format\": 12", 13);
    assert_ok(ss_tune_table_open(ctx, tmp, &got, status, sizeof status));
    assert_null(got);
    assert_non_null(strstr(status, "corrupt"));

    /* matching: loaded; the save left no temporary file beside it */
    assert_ok(ss_tune_table_create(&key, &t));
    assert_ok(ss_tune_table_put(t, &e));
    assert_ok(ss_tune_table_save(t, path));
    ss_tune_table_free(t);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/CPU_cc0_cpu", tmp);
    assert_int_equal(count_entries(dir), 1);
    assert_ok(ss_tune_table_open(ctx, tmp, &got, status, sizeof status));
    assert_non_null(got);
    assert_non_null(strstr(status, "loaded"));
    ss_tune_table_free(got);

    /* the context's automatic table: loaded once, told once */
    int told = 0;
    assert_ok(ss_context_set_tuning(ctx, tmp, NULL, NULL));
    assert_string_equal(ss_context_tuning_status(ctx), "");
    ss_context_tuning_release(ctx);
    assert_ok(ss_context_set_tuning(ctx, tmp, log_count, &told));
    for (int i = 0; i < 3; i++) {
        const ss_tune_entry *x = ss_context_tuned(ctx, SS_BACKEND_CPU, e.in, e.out, 64, 64, 1);
        assert_non_null(x);
        assert_int_equal(x->m, 16);
    }
    assert_int_equal(told, 1);
    assert_non_null(strstr(ss_context_tuning_status(ctx), "loaded"));
    ss_context_tuning_release(ctx);
    ss_context_destroy(ctx);
    ss_test_rmtree(tmp);
}

static void test_shapes(void **st) {
    ss_proj_shape s[4], t[4];
    assert_ok(ss_preset_shapes("bitnet-2b", s));
    const int64_t want[4][2] = {{3840, 2560}, {2560, 2560}, {13824, 2560}, {2560, 6912}};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s[i].n, want[i][0]);
        assert_int_equal(s[i].k, want[i][1]);
    }
    /* the built-in rows agree with shapes derived from the prep presets' configs */
    const char *both[] = {"bitnet-2b", "llama3.2-1b", "qwen2.5-7b"};
    for (int p = 0; p < 3; p++) {
        ss_model_config c;
        assert_ok(ss_preset_config(both[p], &c));
        assert_ok(ss_model_shapes(&c, t));
        assert_ok(ss_preset_shapes(both[p], s));
        for (int i = 0; i < 4; i++) {
            assert_int_equal(s[i].n, t[i].n);
            assert_int_equal(s[i].k, t[i].k);
        }
    }
    assert_ok(ss_preset_shapes("qwen2.5-14b", s));
    assert_int_equal(s[2].n, 27648);
    assert_fails(ss_preset_shapes("gpt-9", s), SS_EINVAL, "llama3.2-3b");
}

static void test_cpu_algo_interface(void **st) {
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    int8_t w[32 * 32];
    float sc[32];
    for (int i = 0; i < 32 * 32; i++)
        w[i] = (int8_t)(i % 7 - 3);
    for (int i = 0; i < 32; i++)
        sc[i] = 1;
    ss_linear_desc d = ss_linear_desc_default("w", 32, 32, SS_DTYPE_I8);
    ss_linear_weights lw = {.w = w, .w_scale = sc};
    ss_linear *lin = NULL;
    assert_ok(ss_linear_create(ctx, SS_BACKEND_CPU, &d, &lw, &lin));
    assert_int_equal(ss_linear_algo_count(lin, 16), 0);
    ss_algo a = {.backend = SS_BACKEND_CUSPARSELT};
    assert_fails(ss_linear_algo_set(lin, 16, &a), SS_EUNSUPPORTED, "one algorithm");
    assert_fails(ss_linear_algo_get(lin, 16, 0, &a), SS_EINVAL, "offers 0");
    /* a backend without a workspace query answers the candidate's own figure */
    uint64_t ws = 0;
    a.workspace = 4096;
    assert_ok(ss_linear_algo_workspace(lin, 16, &a, &ws));
    assert_true(ws == 4096);
    assert_fails(ss_linear_algo_workspace(lin, 0, &a, &ws), SS_EINVAL, "m > 0");
    ss_linear_destroy(lin);
    ss_context_destroy(ctx);
}

/* A context that looked its table up before a tuning run (and found none)
 * applies the run's entries afterwards: run-all tunes, then benchmarks, in
 * one process. */
static void test_run_refreshes_context(void **st) {
    (void)st;
    char tmp[256];
    ss_test_tmpdir(tmp, sizeof tmp);
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    assert_ok(ss_context_set_tuning(ctx, tmp, NULL, NULL));
    assert_null(ss_context_tuned(ctx, SS_BACKEND_CPU, SS_DTYPE_I8, SS_DTYPE_I32, 96, 224, 16));
    assert_non_null(strstr(ss_context_tuning_status(ctx), "no table at"));
    ss_proj_shape sh[1] = {{"a", 96, 200}};
    ss_dtype dt[1] = {SS_DTYPE_I8};
    ss_pattern pats[1] = {{2, 6}};
    int64_t mc[1] = {16}, mf[1] = {16};
    ss_tune_opts o = {.ctx = ctx, .shapes = sh, .n_shapes = 1, .dtypes = dt, .n_dtypes = 1,
                      .patterns = pats, .n_patterns = 1, .coarse = 1, .fine = 0, .m_coarse = mc,
                      .n_m_coarse = 1, .m_fine = mf, .n_m_fine = 1, .root = tmp, .warmup = 1,
                      .repeat = 2};
    ss_tune_result res;
    assert_ok(ss_tune_run(&o, &res));
    assert_int_equal(res.tuned, 1);
    assert_non_null(ss_context_tuned(ctx, SS_BACKEND_CPU, SS_DTYPE_I8, SS_DTYPE_I32, 96, 224, 16));
    assert_non_null(strstr(ss_context_tuning_status(ctx), "loaded"));
    ss_context_tuning_release(ctx);
    ss_context_destroy(ctx);
}


/* The ETA told at the start of a step must account for the step's size: a
 * run whose last M is 64x the others must not be predicted to end as soon as
 * the small steps did (counting steps said 2 min for a 15-min CPU tune). */
typedef struct {
    int last_index;
    double el[8], eta[8];
} eta_log;

static void record_eta(void *user, const ss_tune_progress *p) {
    eta_log *l = user;
    if (p->index != l->last_index && p->index >= 0 && p->index < 8) {
        l->last_index = p->index;
        l->el[p->index] = p->elapsed_s;
        l->eta[p->index] = p->eta_s;
    }
}

static void test_run_eta(void **st) {
    (void)st;
    char tmp[256];
    ss_test_tmpdir(tmp, sizeof tmp);
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    ss_proj_shape sh[1] = {{"a", 256, 512}};
    ss_dtype dt[1] = {SS_DTYPE_I8};
    int64_t mc[4] = {16, 16 + 16, 16 + 32, 4096}; /* distinct M buckets: 4 searches */
    eta_log l = {.last_index = -1};
    ss_tune_opts o = {.ctx = ctx, .shapes = sh, .n_shapes = 1, .dtypes = dt, .n_dtypes = 1,
                      .coarse = 1, .m_coarse = mc, .n_m_coarse = 4, .root = tmp, .warmup = 1,
                      .repeat = 3, .progress = record_eta, .user = &l};
    ss_tune_result res;
    double t0 = ss_monotonic_s();
    assert_ok(ss_tune_run(&o, &res));
    double total = ss_monotonic_s() - t0;
    assert_int_equal(res.tuned, 4);
    assert_int_equal(l.last_index, 3);
    assert_true(l.eta[0] < 0); /* nothing measured yet: unknown */
    double left = total - l.el[3];
    /* the last step is ~4096/48 times the work of the third: after three small
     * steps the ETA must cover a good part of what is left (counting steps
     * gave about one small step, 2% of it) */
    if (!(l.eta[3] >= 0.25 * left))
        fail_msg("ETA at the last step %.4f s, but %.4f s were left (elapsed %.4f of %.4f)",
                 l.eta[3], left, l.el[3], total);
    ss_context_tuning_release(ctx);
    ss_context_destroy(ctx);
    ss_test_rmtree(tmp);
}

static void test_run_reuses(void **st) {
    char tmp[256];
    ss_test_tmpdir(tmp, sizeof tmp);
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    /* K' of dense / 2_6 / 2_10 all differ here (200: 224, 288, 320; 136: 160,
     * 192, 224), so every combination is its own GEMM shape and table entry */
    ss_proj_shape sh[2] = {{"a", 96, 200}, {"b", 64, 136}};
    ss_dtype dt[2] = {SS_DTYPE_I8, SS_DTYPE_F8_E4M3};
    ss_pattern pats[2] = {{2, 6}, {2, 10}};
    int64_t mc[2] = {16, 48}, mf[1] = {32};
    ss_tune_opts o = {.ctx = ctx, .shapes = sh, .n_shapes = 2, .dtypes = dt, .n_dtypes = 2,
                      .patterns = pats, .n_patterns = 2, .coarse = 1, .fine = 1, .m_coarse = mc,
                      .n_m_coarse = 2, .m_fine = mf, .n_m_fine = 1, .root = tmp, .warmup = 1,
                      .repeat = 2};
    ss_tune_result res;
    assert_ok(ss_tune_run(&o, &res));
    int total = 2 * 2 * (2 + 2 * 1);
    assert_int_equal(res.tuned + res.reused, total);
    assert_int_equal(res.tuned, total);
    assert_ok(ss_tune_run(&o, &res));
    assert_int_equal(res.tuned, 0);
    assert_int_equal(res.reused, total);
    o.retune = 1;
    assert_ok(ss_tune_run(&o, &res));
    assert_int_equal(res.tuned, total);
    /* every entry carries a positive time and the CPU's one algorithm */
    ss_tune_table *t = NULL;
    assert_ok(ss_tune_table_load(res.path, &t));
    assert_int_equal(ss_tune_table_count(t), total);
    for (size_t i = 0; i < ss_tune_table_count(t); i++) {
        const ss_tune_entry *e = ss_tune_table_entry(t, i);
        assert_true(e->top[0].us > 0);
        assert_int_equal(e->m % 16, 0);
    }
    ss_tune_table_free(t);
    /* bad M lists are refused before any work */
    int64_t bad[2] = {16, 0};
    o.m_fine = bad;
    o.n_m_fine = 2;
    assert_fails(ss_tune_run(&o, &res), SS_EINVAL, "M > 0");
    ss_context_destroy(ctx);
    ss_test_rmtree(tmp);
}

// --- kernel launch entries -------------------------------------------------------------

static const int vecs_ok[5] = {0, 1, 2, 4, 8};

static ss_tune_kernel_entry rand_kentry(ss_rng *r, ss_dtype qdt, int64_t k, int64_t k_out,
                                        int64_t m) {
    ss_tune_kernel_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.kernel, sizeof e.kernel, "quant");
    e.qdt = qdt;
    e.k = k;
    e.k_out = k_out;
    e.m = m;
    e.n_top = 1 + (int)ss_rng_below(r, 3);
    for (int i = 0; i < e.n_top; i++) {
        e.top[i].launch.vecs = vecs_ok[ss_rng_below(r, 5)];
        e.top[i].launch.pdl = (int)ss_rng_below(r, 2);
        e.top[i].us = (double)ss_rng_below(r, 100000) / 16.0; /* exact in binary */
    }
    e.best = e.top[0].launch;
    return e;
}

static void assert_kentry_equal(const ss_tune_kernel_entry *a, const ss_tune_kernel_entry *b) {
    assert_string_equal(a->kernel, b->kernel);
    assert_int_equal(a->qdt, b->qdt);
    assert_int_equal(a->k, b->k);
    assert_int_equal(a->k_out, b->k_out);
    assert_int_equal(a->m, b->m);
    assert_int_equal(a->best.vecs, b->best.vecs);
    assert_int_equal(a->best.pdl, b->best.pdl);
    assert_int_equal(a->n_top, b->n_top);
    for (int i = 0; i < a->n_top; i++) {
        assert_int_equal(a->top[i].launch.vecs, b->top[i].launch.vecs);
        assert_int_equal(a->top[i].launch.pdl, b->top[i].launch.pdl);
        assert_true(a->top[i].us == b->top[i].us);
    }
}

static void test_kernel_round_trip(void **st) {
    ss_rng r = {23};
    ss_tune_key key = cpu_key();
    ss_tune_table *t = NULL, *u = NULL;
    assert_ok(ss_tune_table_create(&key, &t));
    ss_tune_entry g = rand_entry(&r, SS_BACKEND_CUSPARSELT, 3840, 3840, 64);
    assert_ok(ss_tune_table_put(t, &g));
    for (int i = 0; i < 40; i++) {
        ss_tune_kernel_entry e =
            rand_kentry(&r, i % 2 ? SS_DTYPE_I8 : SS_DTYPE_F8_E4M3, 32 * ss_rng_range(&r, 1, 400),
                        32 * ss_rng_range(&r, 1, 600), 16 * ss_rng_range(&r, 1, 2048));
        assert_ok(ss_tune_table_put_kernel(t, &e));
    }
    char *js = NULL;
    assert_ok(ss_tune_table_dump(t, &js));
    assert_non_null(strstr(js, "\"kernels\""));
    assert_ok(ss_tune_table_parse(js, strlen(js), "rt.json", &u));
    free(js);
    assert_int_equal(ss_tune_table_count(u), 1);
    assert_int_equal(ss_tune_table_kernel_count(u), ss_tune_table_kernel_count(t));
    for (size_t i = 0; i < ss_tune_table_kernel_count(t); i++)
        assert_kentry_equal(ss_tune_table_kernel_entry(t, i), ss_tune_table_kernel_entry(u, i));
    ss_tune_table_free(u);
    ss_tune_table_free(t);
}

static void test_kernel_lookup_rule(void **st) {
    ss_rng r = {29};
    ss_tune_key key = cpu_key();
    for (int round = 0; round < 200; round++) {
        ss_tune_table *t = NULL;
        assert_ok(ss_tune_table_create(&key, &t));
        int64_t ms[8];
        int nm = 1 + (int)ss_rng_below(&r, 8);
        for (int i = 0; i < nm; i++) {
            ms[i] = 16 * ss_rng_range(&r, 1, 64);
            ss_tune_kernel_entry e = rand_kentry(&r, SS_DTYPE_I8, 2560, 3840, ms[i]);
            assert_ok(ss_tune_table_put_kernel(t, &e));
            ss_tune_kernel_entry other = e; /* same K and M, dense K_out: must never answer */
            other.k_out = 2560;
            other.best.vecs = 8;
            assert_ok(ss_tune_table_put_kernel(t, &other));
        }
        int64_t want_m = ss_rng_range(&r, 1, 1200), best = -1, largest = -1;
        for (int i = 0; i < nm; i++) {
            if (ms[i] >= want_m && (best < 0 || ms[i] < best))
                best = ms[i];
            largest = ms[i] > largest ? ms[i] : largest;
        }
        const ss_tune_kernel_entry *e =
            ss_tune_table_lookup_kernel(t, "quant", SS_DTYPE_I8, 2560, 3840, want_m);
        assert_non_null(e);
        assert_int_equal(e->k_out, 3840);
        assert_int_equal(e->m, best >= 0 ? best : largest);
        assert_null(ss_tune_table_lookup_kernel(t, "quant", SS_DTYPE_F8_E4M3, 2560, 3840, want_m));
        assert_null(ss_tune_table_lookup_kernel(t, "dequant", SS_DTYPE_I8, 2560, 3840, want_m));
        assert_null(ss_tune_table_lookup_kernel(t, "quant", SS_DTYPE_I8, 2048, 3840, want_m));
        /* put replaces the same key */
        size_t nk = ss_tune_table_kernel_count(t);
        ss_tune_kernel_entry again = *e;
        again.best.pdl = !again.best.pdl;
        assert_ok(ss_tune_table_put_kernel(t, &again));
        assert_int_equal(ss_tune_table_kernel_count(t), nk);
        assert_int_equal(ss_tune_table_find_kernel(t, "quant", SS_DTYPE_I8, 2560, 3840,
                                                   again.m)->best.pdl, again.best.pdl);
        ss_tune_table_free(t);
    }
    /* put refuses what the parser would */
    ss_tune_table *t = NULL;
    assert_ok(ss_tune_table_create(&key, &t));
    ss_tune_kernel_entry e = rand_kentry(&r, SS_DTYPE_I8, 64, 64, 16);
    e.best.vecs = 3;
    assert_fails(ss_tune_table_put_kernel(t, &e), SS_EINVAL, "vecs");
    e = rand_kentry(&r, SS_DTYPE_BF16, 64, 64, 16);
    assert_fails(ss_tune_table_put_kernel(t, &e), SS_EINVAL, "qdt");
    e = rand_kentry(&r, SS_DTYPE_I8, 64, 48, 16);
    assert_fails(ss_tune_table_put_kernel(t, &e), SS_EINVAL, "k_out");
    assert_int_equal(ss_tune_table_kernel_count(t), 0);
    ss_tune_table_free(t);
}

#define KTABLE(kernels) \
    "{\"format\":\"slidesparse-tuning\",\"version\":1,\"key\":{\"gpu\":\"CPU\",\"cc\":0," \
    "\"cublaslt\":\"none\",\"cusparselt\":\"none\",\"toolchain\":\"cpu\"},\"entries\":[]," \
    "\"kernels\":[" kernels "]}"
#define KGOOD(m) \
    "{\"kernel\":\"quant\",\"qdt\":\"I8\",\"k\":2560,\"k_out\":3840,\"m\":" #m "," \
    "\"best\":{\"vecs\":2,\"pdl\":1},\"top\":[{\"vecs\":2,\"pdl\":1,\"us\":5.5}]}"
#define KBAD(fields) KTABLE(KGOOD(16) ",{" fields "}")
#define KF_HEAD "\"kernel\":\"quant\",\"qdt\":\"I8\",\"k\":2560,\"k_out\":3840,\"m\":32,"
#define KF_TOP ",\"top\":[{\"vecs\":2,\"pdl\":0,\"us\":5.5}]"

static void test_kernel_rejects(void **st) {
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {KTABLE("3"), "kernel entry 0"},
        {"{\"format\":\"slidesparse-tuning\",\"version\":1,\"key\":{\"gpu\":\"CPU\",\"cc\":0,"
         "\"cublaslt\":\"none\",\"cusparselt\":\"none\",\"toolchain\":\"cpu\"},\"entries\":[],"
         "\"kernels\":{}}", "'kernels'"},
        {KBAD("\"kernel\":\"dequant\""), "'kernel'"},
        {KBAD("\"kernel\":\"quant_with_a_very_long_name\""), "'kernel'"},
        {KBAD("\"kernel\":\"quant\",\"qdt\":\"BF16\""), "'qdt'"},
        {KBAD("\"kernel\":\"quant\",\"qdt\":\"I9\""), "'qdt'"},
        {KBAD("\"kernel\":\"quant\",\"qdt\":\"I8\",\"k\":0"), "'k'"},
        {KBAD("\"kernel\":\"quant\",\"qdt\":\"I8\",\"k\":2560,\"k_out\":3841"), "'k_out'"},
        {KBAD("\"kernel\":\"quant\",\"qdt\":\"I8\",\"k\":2560,\"k_out\":\"3840\""), "'k_out'"},
        {KBAD("\"kernel\":\"quant\",\"qdt\":\"I8\",\"k\":2560,\"k_out\":3840,\"m\":-16"), "'m'"},
        {KBAD(KF_HEAD "\"best\":{\"vecs\":3,\"pdl\":0}" KF_TOP), "'best'"},
        {KBAD(KF_HEAD "\"best\":{\"vecs\":16,\"pdl\":0}" KF_TOP), "'vecs'"},
        {KBAD(KF_HEAD "\"best\":{\"vecs\":2,\"pdl\":2}" KF_TOP), "'pdl'"},
        {KBAD(KF_HEAD "\"best\":{\"vecs\":2,\"pdl\":true}" KF_TOP), "'pdl'"},
        {KBAD(KF_HEAD "\"best\":[]" KF_TOP), "'best'"},
        {KBAD(KF_HEAD "\"best\":{\"vecs\":2,\"pdl\":0},\"top\":[]"), "'top'"},
        {KBAD(KF_HEAD "\"best\":{\"vecs\":2,\"pdl\":0},\"top\":[{\"vecs\":2,\"pdl\":0,\"us\":-1}]"),
         "'us'"},
        {KBAD(KF_HEAD "\"best\":{\"vecs\":2,\"pdl\":0},\"top\":[{\"vecs\":2,\"pdl\":0}]"), "'us'"},
        {KTABLE(KGOOD(16) "," KGOOD(16)), "twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ss_tune_table *t = (ss_tune_table *)&t;
        assert_fails(ss_tune_table_parse(bad[i].json, strlen(bad[i].json), "bad.json", &t),
                     SS_EFORMAT, bad[i].needle);
        assert_null(t);
        const char *msg = ss_last_error();
        assert_non_null(strstr(msg, "bad.json"));
        assert_null(strchr(msg, '\n')); /* one line */
        /* the second entry is the bad one (the first two cases have no good one) */
        if (i >= 2 && i + 1 < sizeof bad / sizeof *bad)
            assert_non_null(strstr(msg, "kernel entry 1"));
    }
    const char *good = KTABLE(KGOOD(16) "," KGOOD(64));
    ss_tune_table *t = NULL;
    assert_ok(ss_tune_table_parse(good, strlen(good), "good.json", &t));
    assert_int_equal(ss_tune_table_kernel_count(t), 2);
    assert_int_equal(ss_tune_table_kernel_entry(t, 1)->best.vecs, 2);
    ss_tune_table_free(t);
}

/* A table written before kernel entries existed: loads, applies its GEMMs,
 * answers no quant launch. The context's quant lookup: the matching table's
 * entry by the lookup rule; a foreign table's never. */
static void test_context_quant(void **st) {
    char tmp[256], path[1024];
    ss_test_tmpdir(tmp, sizeof tmp);
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    ss_tune_key key;
    assert_ok(ss_tune_key_of(ctx, &key));
    assert_ok(ss_tune_table_path(tmp, &key, path, sizeof path));
    const char *old = ENTRY("{\"backend\":\"cpu\",\"in\":\"I8\",\"out\":\"I32\",\"n\":64,"
                            "\"k\":64,\"m\":16,\"best\":" ALGO("cpu", "") ",\"top\":[{\"algo\":"
                            ALGO("cpu", "") ",\"us\":1.5,\"tops\":2}]}");
    assert_ok(ss_mkdir_parents(path, NULL, 0));
    ss_test_write_file(path, old, strlen(old));
    ss_quant_launch ql = {-1, -1};
    assert_ok(ss_context_set_tuning(ctx, tmp, NULL, NULL));
    assert_int_equal(ss_context_tuned_quant(ctx, SS_DTYPE_I8, 2560, 3840, 64, &ql), 0);
    assert_int_equal(ql.vecs, -1);
    assert_non_null(ss_context_tuned(ctx, SS_BACKEND_CPU, SS_DTYPE_I8, SS_DTYPE_I32, 64, 64, 16));
    assert_non_null(strstr(ss_context_tuning_status(ctx), "loaded"));

    /* the same table with kernel entries at M 64 and 256 */
    ss_tune_table *t = NULL;
    assert_ok(ss_tune_table_load(path, &t));
    ss_rng r = {31};
    ss_tune_kernel_entry a = rand_kentry(&r, SS_DTYPE_I8, 2560, 3840, 64), b = a;
    a.best = (ss_quant_launch){4, 0};
    b.m = 256;
    b.best = (ss_quant_launch){2, 1};
    assert_ok(ss_tune_table_put_kernel(t, &a));
    assert_ok(ss_tune_table_put_kernel(t, &b));
    assert_ok(ss_tune_table_save(t, path));
    assert_ok(ss_context_set_tuning(ctx, tmp, NULL, NULL));
    const int64_t ms[4] = {1, 64, 65, 100000};
    const int want[4] = {4, 4, 2, 2};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ss_context_tuned_quant(ctx, SS_DTYPE_I8, 2560, 3840, ms[i], &ql), 1);
        assert_int_equal(ql.vecs, want[i]);
        assert_int_equal(ql.pdl, want[i] == 2);
    }
    assert_int_equal(ss_context_tuned_quant(ctx, SS_DTYPE_F8_E4M3, 2560, 3840, 64, &ql), 0);
    assert_int_equal(ss_context_tuned_quant(ctx, SS_DTYPE_I8, 2560, 2560, 64, &ql), 0);

    /* tuned on another GPU: ignored, never misapplied */
    ss_tune_key other = key;
    snprintf(other.gpu, sizeof other.gpu, "NVIDIA H100 80GB HBM3");
    other.cc = 90;
    ss_tune_table *f = NULL;
    assert_ok(ss_tune_table_create(&other, &f));
    assert_ok(ss_tune_table_put_kernel(f, &a));
    assert_ok(ss_tune_table_save(f, path));
    ss_tune_table_free(f);
    assert_ok(ss_context_set_tuning(ctx, tmp, NULL, NULL));
    assert_int_equal(ss_context_tuned_quant(ctx, SS_DTYPE_I8, 2560, 3840, 64, &ql), 0);
    assert_non_null(strstr(ss_context_tuning_status(ctx), "ignoring"));
    ss_tune_table_free(t);
    ss_context_tuning_release(ctx);
    ss_context_destroy(ctx);
    ss_test_rmtree(tmp);
}

/* On a GPU the search adds a quant launch entry per (dtype, K, K_out, M),
 * coarse (dense K_out) and fine (K'), reused by the next run. */
static void test_gpu_quant_search(void **st) {
    ss_context *ctx = NULL;
    if (ss_context_create(0, &ctx) != SS_OK) {
        ss_clear_error();
        skip(); /* CPU build or no device */
    }
    char tmp[256];
    ss_test_tmpdir(tmp, sizeof tmp);
    ss_proj_shape sh[1] = {{"a", 256, 512}};
    ss_dtype dt[1] = {SS_DTYPE_I8};
    ss_pattern pats[1] = {{2, 8}};
    int64_t mc[1] = {64}, mf[1] = {128};
    ss_tune_opts o = {.ctx = ctx, .shapes = sh, .n_shapes = 1, .dtypes = dt, .n_dtypes = 1,
                      .patterns = pats, .n_patterns = 1, .coarse = 1, .fine = 1, .m_coarse = mc,
                      .n_m_coarse = 1, .m_fine = mf, .n_m_fine = 1, .root = tmp, .warmup = 2,
                      .repeat = 5};
    ss_tune_result res;
    assert_ok(ss_context_set_tuning(ctx, tmp, NULL, NULL)); /* not ./tuning */
    assert_ok(ss_tune_run(&o, &res));
    int fine_ran = res.skipped == 0;
    assert_int_equal(res.launches_tuned, 1 + fine_ran);
    ss_tune_table *t = NULL;
    assert_ok(ss_tune_table_load(res.path, &t));
    const ss_tune_kernel_entry *c =
        ss_tune_table_find_kernel(t, "quant", SS_DTYPE_I8, 512, 512, 64);
    assert_non_null(c);
    assert_true(c->top[0].us > 0);
    if (fine_ran) {
        int64_t kq = ss_slid_k(pats[0], 512);
        assert_non_null(ss_tune_table_find_kernel(t, "quant", SS_DTYPE_I8, 512, kq, 128));
        /* cuSPARSELt candidates carry the workspace their plan asked for */
        const ss_tune_entry *g = ss_tune_table_find(t, SS_BACKEND_CUSPARSELT, SS_DTYPE_I8,
                                                    SS_DTYPE_I32, 256, kq, 128);
        assert_non_null(g);
    }
    ss_tune_table_free(t);
    assert_ok(ss_tune_run(&o, &res));
    assert_int_equal(res.launches_tuned, 0);
    assert_int_equal(res.tuned, 0);
    /* what a layer would apply */
    ss_quant_launch ql;
    assert_ok(ss_context_set_tuning(ctx, tmp, NULL, NULL));
    assert_int_equal(ss_context_tuned_quant(ctx, SS_DTYPE_I8, 512, 512, 64, &ql), 1);
    ss_context_destroy(ctx);
    ss_test_rmtree(tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_lookup_rule),
        cmocka_unit_test(test_put_replaces), cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_open_rules),   cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_cpu_algo_interface), cmocka_unit_test(test_run_reuses),
        cmocka_unit_test(test_kernel_round_trip), cmocka_unit_test(test_kernel_lookup_rule),
        cmocka_unit_test(test_kernel_rejects),    cmocka_unit_test(test_context_quant), cmocka_unit_test(test_run_refreshes_context),
        cmocka_unit_test(test_gpu_quant_search), cmocka_unit_test(test_run_eta),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
