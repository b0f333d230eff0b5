/* Model preparation: presets, synth, quantize, convert, verify, and every bad
 * input it must refuse (each fails with one line naming file/tensor and leaves
 * no output behind). Expected values come from SPEC §6 or are recomputed here
 * independently of src/prep. */
#include "support/ss_test.h"

#include <dirent.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slidesparse/prep.h"
#include "slidesparse/serve.h"

static char root[256];

static void path(char *buf, size_t n, const char *leaf) { snprintf(buf, n, "%s/%s", root, leaf); }

static void synth(const char *preset, const char *leaf, uint64_t seed) {
    char out[512];
    path(out, sizeof out, leaf);
    ss_synth_opts o = {.preset = preset, .out_dir = out, .seed = seed};
    assert_ok(ss_synth(&o));
}

static int setup(void **state) {
    ss_test_tmpdir(root, sizeof root);
    synth("tiny-bitnet", "bitnet", 7);
    synth("tiny-llama", "llama", 7);
    synth("tiny-qwen2", "qwen", 7);
    return 0;
}

static int teardown(void **state) {
    ss_test_rmtree(root);
    return 0;
}

static const ss_expected_tensor *find_x(const ss_expected_tensor *x, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(x[i].name, name))
            return &x[i];
    return NULL;
}

// --- presets ---------------------------------------------------------------------------------

static void test_bitnet_preset_matches_spec(void **state) {
    ss_model_config c;
    assert_ok(ss_preset_config("bitnet-2b", &c));
    assert_int_equal(c.arch, SS_ARCH_BITNET);
    assert_int_equal(c.hidden_size, 2560);
    assert_int_equal(c.intermediate_size, 6912);
    assert_int_equal(c.num_hidden_layers, 30);
    assert_int_equal(c.num_attention_heads, 20);
    assert_int_equal(c.num_key_value_heads, 5);
    assert_int_equal(c.vocab_size, 128256);
    assert_int_equal(c.max_position_embeddings, 4096);
    assert_true(c.tie_word_embeddings);
    assert_string_equal(c.hidden_act, "relu2");
    ss_expected_tensor *x;
    size_t n;
    assert_ok(ss_model_tensors(&c, &x, &n));
    /* SPEC §6: qkv (3840, 2560) = q 2560 + k 640 + v 640, o (2560, 2560),
     * gate_up (13824, 2560), down (2560, 6912). */
    const ss_expected_tensor *q = find_x(x, n, "model.layers.29.self_attn.q_proj.weight");
    const ss_expected_tensor *k = find_x(x, n, "model.layers.0.self_attn.k_proj.weight");
    const ss_expected_tensor *g = find_x(x, n, "model.layers.3.mlp.gate_proj.weight");
    const ss_expected_tensor *d = find_x(x, n, "model.layers.3.mlp.down_proj.weight");
    assert_non_null(q);
    assert_non_null(k);
    assert_non_null(g);
    assert_non_null(d);
    assert_int_equal(q->shape[0] + 2 * k->shape[0], 3840);
    assert_int_equal(2 * g->shape[0], 13824);
    assert_int_equal(d->shape[0], 2560);
    assert_int_equal(d->shape[1], 6912);
    assert_non_null(find_x(x, n, "model.layers.0.self_attn.attn_sub_norm.weight"));
    assert_non_null(find_x(x, n, "model.layers.0.mlp.ffn_sub_norm.weight"));
    assert_null(find_x(x, n, "lm_head.weight"));
    int proj = 0;
    for (size_t i = 0; i < n; i++)
        proj += x[i].role == SS_ROLE_PROJ;
    assert_int_equal(proj, 30 * 7);
    free(x);
}

static void test_other_presets(void **state) {
    ss_model_config c;
    ss_expected_tensor *x;
    size_t n;
    /* SPEC §6: Qwen2.5-7B qkv (4608, 3584), gate_up (37888, 3584), with biases, untied */
    assert_ok(ss_preset_config("qwen2.5-7b", &c));
    assert_ok(ss_model_tensors(&c, &x, &n));
    const ss_expected_tensor *q = find_x(x, n, "model.layers.0.self_attn.q_proj.weight");
    const ss_expected_tensor *k = find_x(x, n, "model.layers.0.self_attn.k_proj.weight");
    assert_int_equal(q->shape[0] + 2 * k->shape[0], 4608);
    assert_int_equal(2 * find_x(x, n, "model.layers.0.mlp.up_proj.weight")->shape[0], 37888);
    assert_non_null(find_x(x, n, "model.layers.27.self_attn.v_proj.bias"));
    assert_non_null(find_x(x, n, "lm_head.weight"));
    free(x);
    /* Llama3.2-1B qkv (3072, 2048), down (2048, 8192) */
    assert_ok(ss_preset_config("llama3.2-1b", &c));
    assert_ok(ss_model_tensors(&c, &x, &n));
    q = find_x(x, n, "model.layers.15.self_attn.q_proj.weight");
    k = find_x(x, n, "model.layers.15.self_attn.k_proj.weight");
    assert_int_equal(q->shape[0] + 2 * k->shape[0], 3072);
    assert_int_equal(find_x(x, n, "model.layers.0.mlp.down_proj.weight")->shape[1], 8192);
    free(x);
    /* tiny presets: some K is not a multiple of some L, so padding is exercised */
    const char *tiny[] = {"tiny-bitnet", "tiny-llama", "tiny-qwen2"};
    for (int t = 0; t < 3; t++) {
        assert_ok(ss_preset_config(tiny[t], &c));
        assert_true(c.hidden_size <= 256);
        /* every bench workload fits: prefill 1024 + 1, decode 16 + 256 positions */
        for (int st = 0; st < 2; st++)
            for (int64_t mm = st ? 64 : 512; mm <= (st ? 512 : 32768); mm *= 2) {
                ss_workload w;
                assert_ok(ss_workload_make(st ? SS_STAGE_DECODE : SS_STAGE_PREFILL, mm, &w));
                assert_true(w.prompt_len + w.output_len <= c.max_position_embeddings);
            }
        int padded = 0;
        for (int l = 4; l <= 16; l += 2)
            padded += c.hidden_size % l != 0 || c.intermediate_size % l != 0;
        assert_true(padded >= 3);
    }
    assert_fails(ss_preset_config("gpt-9", &c), SS_EINVAL, "gpt-9");
}

// --- synth --------------------------------------------------------------------------------------

static void test_synth_roundtrip(void **state) {
    const char *leaf[] = {"bitnet", "llama", "qwen"};
    const char *pre[] = {"tiny-bitnet", "tiny-llama", "tiny-qwen2"};
    for (int m = 0; m < 3; m++) {
        char dir[512];
        path(dir, sizeof dir, leaf[m]);
        ss_checkpoint *ck;
        assert_ok(ss_checkpoint_open(dir, &ck));
        ss_model_config want;
        assert_ok(ss_preset_config(pre[m], &want));
        const ss_model_config *c = ss_checkpoint_config(ck);
        assert_int_equal(c->kind, SS_WEIGHTS_BF16);
        assert_int_equal(c->arch, want.arch);
        assert_int_equal(c->hidden_size, want.hidden_size);
        assert_int_equal(c->num_key_value_heads, want.num_key_value_heads);
        assert_int_equal(c->tie_word_embeddings, want.tie_word_embeddings);
        assert_int_equal(c->attention_bias, m == 2);
        ss_expected_tensor *x;
        size_t n;
        assert_ok(ss_model_tensors(c, &x, &n));
        assert_int_equal(ss_checkpoint_count(ck), n);
        for (size_t i = 0; i < n; i++) {
            const ss_st_entry *e = ss_checkpoint_find(ck, x[i].name);
            assert_non_null(e);
            assert_int_equal(e->dtype, SS_DTYPE_BF16);
            int64_t numel = x[i].shape[0] * (x[i].ndim == 2 ? x[i].shape[1] : 1);
            double s = 0, s2 = 0;
            const uint16_t *v = e->data;
            for (int64_t j = 0; j < numel; j++) {
                double f = ss_bf16_to_f32(v[j]);
                s += f;
                s2 += f * f;
            }
            double mean = s / numel, sd = sqrt(s2 / numel - mean * mean);
            if (x[i].role == SS_ROLE_PROJ) {
                assert_true(fabs(mean) < 0.05 / sqrt((double)x[i].shape[1]) * 10);
                double want_sd = 1.0 / sqrt((double)x[i].shape[1]);
                assert_true(fabs(sd - want_sd) < 0.05 * want_sd);
                /* counter-based: element j is computable on its own */
                assert_int_equal(v[numel / 3], ss_f32_to_bf16(ss_synth_value(7, x[i].name, (uint64_t)numel / 3,
                                                                             0.0f, (float)want_sd)));
            } else if (x[i].role == SS_ROLE_NORM) {
                assert_true(fabs(mean - 1.0) < 0.01);
            }
        }
        free(x);
        ss_checkpoint_close(ck);
    }
}

static void test_synth_reproducible(void **state) {
    synth("tiny-bitnet", "b_same", 7);
    synth("tiny-bitnet", "b_other", 8);
    char a[512], b[512], c[512];
    size_t na, nb, nc;
    path(a, sizeof a, "bitnet/model.safetensors");
    path(b, sizeof b, "b_same/model.safetensors");
    path(c, sizeof c, "b_other/model.safetensors");
    void *x = ss_test_read_file(a, &na), *y = ss_test_read_file(b, &nb), *z = ss_test_read_file(c, &nc);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na);
    assert_int_equal(na, nc);
    assert_memory_not_equal(x, z, na);
    free(x);
    free(y);
    free(z);
    /* existing output without force: refused, old content kept */
    char out[512];
    path(out, sizeof out, "b_same");
    ss_synth_opts o = {.preset = "tiny-bitnet", .out_dir = out, .seed = 9};
    assert_fails(ss_synth(&o), SS_EEXIST, "b_same");
    y = ss_test_read_file(b, &nb);
    x = ss_test_read_file(a, &na);
    assert_memory_equal(x, y, na);
    free(x);
    free(y);
    o.force = 1;
    assert_ok(ss_synth(&o));
    ss_test_rmtree(out);
    path(out, sizeof out, "b_other");
    ss_test_rmtree(out);
}

// --- quantize ------------------------------------------------------------------------------------

static void quantize(const char *in_leaf, const char *out_leaf, ss_dtype dt) {
    char in[512], out[512];
    path(in, sizeof in, in_leaf);
    path(out, sizeof out, out_leaf);
    ss_quantize_opts o = {.in_dir = in, .out_dir = out, .dtype = dt};
    assert_ok(ss_quantize_checkpoint(&o));
}

static void test_quantize_ternary(void **state) {
    quantize("bitnet", "bitnet-INT8", SS_DTYPE_I8);
    char in[512], out[512];
    path(in, sizeof in, "bitnet");
    path(out, sizeof out, "bitnet-INT8");
    ss_checkpoint *a, *b;
    assert_ok(ss_checkpoint_open(in, &a));
    assert_ok(ss_checkpoint_open(out, &b));
    const ss_model_config *c = ss_checkpoint_config(b);
    assert_int_equal(c->kind, SS_WEIGHTS_QUANTIZED);
    assert_int_equal(c->weight_dtype, SS_DTYPE_I8);
    assert_int_equal(c->per_channel, 0);
    for (size_t i = 0; i < ss_checkpoint_count(a); i++) {
        const ss_st_entry *e = ss_checkpoint_entry(a, i), *f = ss_checkpoint_find(b, e->name);
        assert_non_null(f);
        if (ss_tensor_role_of(e->name) != SS_ROLE_PROJ) {
            assert_int_equal(f->nbytes, e->nbytes);
            assert_memory_equal(f->data, e->data, e->nbytes);
            continue;
        }
        char sn[160];
        snprintf(sn, sizeof sn, "%s_scale", e->name);
        const ss_st_entry *s = ss_checkpoint_find(b, sn);
        assert_non_null(s);
        assert_int_equal(s->dtype, SS_DTYPE_F32);
        assert_int_equal(s->shape[0], 1);
        int64_t n = e->shape[0] * e->shape[1];
        double sum = 0;
        for (int64_t j = 0; j < n; j++)
            sum += fabs(ss_bf16_to_f32(((const uint16_t *)e->data)[j]));
        float scale = *(const float *)s->data;
        assert_float_equal(scale, (float)(sum / n), 1e-6 * scale);
        const int8_t *q = f->data;
        int zeros = 0;
        for (int64_t j = 0; j < n; j++) {
            float w = ss_bf16_to_f32(((const uint16_t *)e->data)[j]);
            int want = (int)fmaxf(-1.0f, fminf(1.0f, rintf(w / scale)));
            assert_true(q[j] >= -1 && q[j] <= 1);
            if (fabs(fabs(w / scale) - 0.5) > 1e-3) /* away from rounding ties */
                assert_int_equal(q[j], want);
            zeros += q[j] == 0;
        }
        assert_true(zeros > 0 && zeros < n);
    }
    ss_checkpoint_close(a);
    ss_checkpoint_close(b);
}

static void test_quantize_per_channel(void **state) {
    quantize("qwen", "qwen-FP8", SS_DTYPE_F8_E4M3);
    quantize("llama", "llama-INT8", SS_DTYPE_I8);
    char in[512], out[512];
    path(in, sizeof in, "llama");
    path(out, sizeof out, "llama-INT8");
    ss_checkpoint *a, *b;
    assert_ok(ss_checkpoint_open(in, &a));
    assert_ok(ss_checkpoint_open(out, &b));
    assert_int_equal(ss_checkpoint_config(b)->per_channel, 1);
    const char *name = "model.layers.2.mlp.down_proj.weight";
    const ss_st_entry *e = ss_checkpoint_find(a, name), *f = ss_checkpoint_find(b, name);
    const ss_st_entry *s = ss_checkpoint_find(b, "model.layers.2.mlp.down_proj.weight_scale");
    assert_non_null(s);
    assert_int_equal(s->shape[0], e->shape[0]);
    for (int64_t r = 0; r < e->shape[0]; r++) {
        const uint16_t *w = (const uint16_t *)e->data + r * e->shape[1];
        float a_max = 0;
        for (int64_t j = 0; j < e->shape[1]; j++)
            a_max = fmaxf(a_max, fabsf(ss_bf16_to_f32(w[j])));
        assert_float_equal(((const float *)s->data)[r], a_max / 127.0f, 1e-6 * a_max);
        int saw127 = 0;
        for (int64_t j = 0; j < e->shape[1]; j++) {
            int q = ((const int8_t *)f->data)[r * e->shape[1] + j];
            double want = ss_bf16_to_f32(w[j]) * 127.0 / a_max;
            assert_true(fabs(q - want) <= 0.5 + 1e-4);
            saw127 |= q == 127 || q == -127;
        }
        assert_true(saw127);
    }
    ss_checkpoint_close(a);
    ss_checkpoint_close(b);
}

// --- convert + verify ------------------------------------------------------------------------------

static ss_status convert(const char *in_leaf, const char *pats, ss_dtype dt, const char *root_leaf,
                         int force) {
    char in[512], out[512];
    path(in, sizeof in, in_leaf);
    path(out, sizeof out, root_leaf);
    ss_pattern p[SS_PREP_MAX_PATTERNS];
    int n = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", pats);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ","))
        assert_ok(ss_pattern_parse(t, &p[n++]));
    ss_convert_opts o = {.in_dir = in, .out_root = out, .patterns = p, .n_patterns = n, .dtype = dt,
                         .force = force};
    return ss_convert_checkpoint(&o);
}

/* Independent structural checks of one converted tensor. */
static void check_slid(const ss_st_entry *q, const ss_st_entry *s, ss_pattern p) {
    int64_t n = q->shape[0], k = q->shape[1], kp = ss_slid_k(p, k);
    assert_int_equal(s->shape[1], kp);
    assert_true(ss_check_24(s->dtype, s->data, n, kp, NULL, NULL));
    uint8_t *u = malloc((size_t)(n * k));
    assert_ok(ss_unslide(s->dtype, s->data, n, k, p, u));
    assert_true(ss_check_pattern(s->dtype, u, n, k, p, NULL, NULL));
    /* pruning only removes: every kept value is the quantized one, and a
     * group keeps all but (at most) 2 of its values */
    const uint8_t *src = q->data;
    for (int64_t i = 0; i < n * k; i++)
        if (u[i])
            assert_int_equal(u[i], src[i]);
    for (int64_t r = 0; r < n; r++)
        for (int64_t g = 0; g < k; g += p.l) {
            int nz_src = 0, nz_u = 0;
            for (int64_t j = g; j < g + p.l && j < k; j++) {
                nz_src += src[r * k + j] != 0;
                nz_u += u[r * k + j] != 0;
            }
            int64_t len = g + p.l <= k ? p.l : k - g;
            int64_t can_keep = p.l - 2 < len ? p.l - 2 : len;
            assert_int_equal(nz_u, nz_src < can_keep ? nz_src : can_keep);
        }
    free(u);
}

static void test_convert_from_quantized(void **state) {
    assert_ok(convert("llama-INT8", "2_4,2_6,2_10,2_16", SS_DTYPE_COUNT, "cs", 0));
    char q[512], s[512];
    path(q, sizeof q, "llama-INT8");
    ss_checkpoint *a, *b;
    assert_ok(ss_checkpoint_open(q, &a));
    const int ls[] = {4, 6, 10, 16};
    for (int t = 0; t < 4; t++) {
        char leaf[128];
        snprintf(leaf, sizeof leaf, "cs/llama-INT8-SlideSparse-2_%d", ls[t]);
        path(s, sizeof s, leaf);
        assert_ok(ss_checkpoint_open(s, &b));
        const ss_model_config *c = ss_checkpoint_config(b);
        assert_int_equal(c->kind, SS_WEIGHTS_SLID);
        assert_int_equal(c->pattern.l, ls[t]);
        for (size_t i = 0; i < ss_checkpoint_count(a); i++) {
            const ss_st_entry *e = ss_checkpoint_entry(a, i), *f = ss_checkpoint_find(b, e->name);
            assert_non_null(f);
            if (ss_tensor_role_of(e->name) == SS_ROLE_PROJ)
                check_slid(e, f, c->pattern);
            else
                assert_memory_equal(e->data, f->data, e->nbytes);
        }
        ss_checkpoint_close(b);
        int bad = -1;
        ss_verify_opts vo = {.dense_dir = q, .slid_dir = s, .seed = 3};
        assert_ok(ss_verify_checkpoint(&vo, &bad));
        assert_int_equal(bad, 0);
        /* the BF16 source re-derives it too (ties by index, as recorded) */
        char bf[512];
        path(bf, sizeof bf, "llama");
        vo.dense_dir = bf;
        assert_ok(ss_verify_checkpoint(&vo, &bad));
        assert_int_equal(bad, 0);
    }
    ss_checkpoint_close(a);
    /* asking for another dtype than the input's */
    assert_fails(convert("llama-INT8", "2_8", SS_DTYPE_F8_E4M3, "cs2", 0), SS_EINVAL, "llama-INT8");
}

static void test_convert_multi_equals_single(void **state) {
    assert_ok(convert("qwen", "2_6,2_8,2_12", SS_DTYPE_F8_E4M3, "multi", 0));
    assert_ok(convert("qwen", "2_8", SS_DTYPE_F8_E4M3, "single", 0));
    char a[512], b[512];
    path(a, sizeof a, "multi/qwen-SlideSparse-2_8/model.safetensors");
    path(b, sizeof b, "single/qwen-SlideSparse-2_8/model.safetensors");
    size_t na, nb;
    void *x = ss_test_read_file(a, &na), *y = ss_test_read_file(b, &nb);
    assert_non_null(x);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na);
    free(x);
    free(y);
    char d[512], s[512];
    path(d, sizeof d, "qwen");
    path(s, sizeof s, "multi/qwen-SlideSparse-2_12");
    int bad = -1;
    ss_verify_opts vo = {.dense_dir = d, .slid_dir = s, .linear_rows = 0};
    assert_ok(ss_verify_checkpoint(&vo, &bad));
    assert_int_equal(bad, 0);
    /* existing outputs: refused as a whole, nothing new written */
    assert_fails(convert("qwen", "2_4,2_8", SS_DTYPE_F8_E4M3, "single", 0), SS_EEXIST, "2_8");
    path(a, sizeof a, "single");
    assert_int_equal(ss_test_count_entries(a), 1);
    assert_ok(convert("qwen", "2_4,2_8", SS_DTYPE_F8_E4M3, "single", 1));
    assert_int_equal(ss_test_count_entries(a), 2);
}

typedef struct {
    int rows, bad;
} rows_seen;

static void on_row(void *user, const ss_verify_row *r) {
    rows_seen *s = user;
    s->rows++;
    s->bad += !(r->slide_ok && r->scale_ok && r->valid_24 && r->unslide_ok && r->linear_ok);
}

static void test_verify_detects_corruption(void **state) {
    assert_ok(convert("bitnet", "2_8", SS_DTYPE_I8, "vc", 0));
    char s[512], f[512], d[512];
    path(d, sizeof d, "bitnet");
    path(s, sizeof s, "vc/bitnet-SlideSparse-2_8");
    path(f, sizeof f, "vc/bitnet-SlideSparse-2_8/model.safetensors");
    rows_seen seen = {0};
    int bad = -1;
    ss_verify_opts vo = {.dense_dir = d, .slid_dir = s, .row = on_row, .user = &seen};
    assert_ok(ss_verify_checkpoint(&vo, &bad));
    assert_int_equal(bad, 0);
    assert_int_equal(seen.rows, 2 * 7);
    /* move one nonzero of a slid row to another column of the same window:
     * still 2:4-valid, but no longer what prune + slide gives */
    size_t n;
    uint8_t *img = ss_test_read_file(f, &n);
    ss_safetensors *st;
    assert_ok(ss_safetensors_parse(img, n, "img", &st));
    const ss_st_entry *e = ss_safetensors_find(st, "model.layers.1.mlp.up_proj.weight");
    uint8_t *w = (uint8_t *)e->data;
    int64_t j = 0;
    while (!(w[j] != 0 && w[j ^ 1] == 0 && ((j & 3) < 2 ? 1 : 1)))
        j++;
    w[j ^ 1] = w[j];
    w[j] = 0;
    ss_safetensors_close(st);
    ss_test_write_file(f, img, n);
    free(img);
    seen.rows = seen.bad = 0;
    assert_ok(ss_verify_checkpoint(&vo, &bad));
    assert_int_equal(bad, 1);
    assert_int_equal(seen.bad, 1);
    /* not a slid checkpoint */
    assert_fails(ss_verify_checkpoint(&(ss_verify_opts){.dense_dir = d, .slid_dir = d}, &bad),
                 SS_EFORMAT, "bitnet");
}


/* A sharded input (two shards + index): outputs keep the shard split and get
 * their own index, and verify follows the index. */
static void test_sharded_input(void **state) {
    char src[512], dst[512], p[700];
    path(src, sizeof src, "qwen");
    path(dst, sizeof dst, "qwen-sharded");
    mkdir(dst, 0755);
    size_t n;
    snprintf(p, sizeof p, "%s/config.json", src);
    void *cfg = ss_test_read_file(p, &n);
    snprintf(p, sizeof p, "%s/config.json", dst);
    ss_test_write_file(p, cfg, n);
    free(cfg);
    snprintf(p, sizeof p, "%s/model.safetensors", src);
    ss_safetensors *st;
    assert_ok(ss_safetensors_open(p, &st));
    size_t count = ss_safetensors_count(st), half = count / 2;
    char index[16384];
    size_t o = (size_t)snprintf(index, sizeof index, "{\"metadata\": {}, \"weight_map\": {");
    for (int sh = 0; sh < 2; sh++) {
        ss_st_writer *w;
        snprintf(p, sizeof p, "%s/model-%05d-of-00002.safetensors", dst, sh + 1);
        assert_ok(ss_st_writer_open(p, &w));
        size_t a = sh ? half : 0, b = sh ? count : half;
        for (size_t i = a; i < b; i++) {
            const ss_st_entry *e = ss_safetensors_entry(st, i);
            assert_ok(ss_st_writer_declare(w, e->name, e->dtype, e->ndim, e->shape));
            o += (size_t)snprintf(index + o, sizeof index - o, "%s\"%s\": \"model-%05d-of-00002.safetensors\"",
                                  i ? ", " : "", e->name, sh + 1);
        }
        for (size_t i = a; i < b; i++)
            assert_ok(ss_st_writer_write(w, ss_safetensors_entry(st, i)->data, ss_safetensors_entry(st, i)->nbytes));
        assert_ok(ss_st_writer_close(w));
    }
    ss_safetensors_close(st);
    snprintf(index + o, sizeof index - o, "}}");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dst);
    ss_test_write_file(p, index, strlen(index));

    assert_ok(convert("qwen-sharded", "2_6,2_10", SS_DTYPE_I8, "sh", 0));
    char s[512];
    path(s, sizeof s, "sh/qwen-sharded-SlideSparse-2_10");
    assert_int_equal(ss_test_count_entries(s), 4); /* config, index, 2 shards */
    ss_checkpoint *a, *b;
    assert_ok(ss_checkpoint_open(dst, &a));
    assert_ok(ss_checkpoint_open(s, &b));
    for (size_t i = 0; i < ss_checkpoint_count(a); i++) {
        const ss_st_entry *e = ss_checkpoint_entry(a, i), *f = ss_checkpoint_find(b, e->name);
        assert_non_null(f);
        const char *x = strrchr(e->file, '/'), *y = strrchr(f->file, '/');
        assert_string_equal(x, y); /* same shard as in the input */
    }
    ss_checkpoint_close(a);
    ss_checkpoint_close(b);
    int bad = -1;
    ss_verify_opts vo = {.dense_dir = dst, .slid_dir = s};
    assert_ok(ss_verify_checkpoint(&vo, &bad));
    assert_int_equal(bad, 0);
}

// --- F16 and F32 inputs ------------------------------------------------------------------------------

/* Every tensor of checkpoint a (a folder under the test root) equals b's. */
static void same_tensors(const char *a_leaf, const char *b_leaf) {
    char a_dir[512], b_dir[512];
    path(a_dir, sizeof a_dir, a_leaf);
    path(b_dir, sizeof b_dir, b_leaf);
    ss_test_same_checkpoints(a_dir, b_dir);
}

/* F16 and F32 copies of a BF16 checkpoint (its values snapped to ones F16
 * can hold) hold the same values, so quantize and convert give bit-identical
 * outputs (projections, scales, and the other tensors rounded back to BF16),
 * and verify accepts the slid one against the F32 copy. */
static void test_f16_f32_inputs(void **state) {
    const char *src[] = {"llama-h", "bitnet-h"}, *orig[] = {"llama", "bitnet"};
    for (int m = 0; m < 2; m++) {
        char in[512], leaf[3][64], o[512];
        path(o, sizeof o, orig[m]);
        path(in, sizeof in, src[m]);
        ss_test_snap_f16_checkpoint(o, in);
        const ss_dtype dts[] = {SS_DTYPE_F16, SS_DTYPE_F32};
        for (int d = 0; d < 2; d++) {
            char dir[512];
            snprintf(leaf[d], sizeof leaf[d], "%s-%s", src[m], ss_dtype_name(dts[d]));
            path(dir, sizeof dir, leaf[d]);
            ss_test_recast_checkpoint(in, dir, dts[d]);
            ss_checkpoint *ck;
            assert_ok(ss_checkpoint_open(dir, &ck));
            assert_int_equal(ss_checkpoint_find(ck, "model.layers.0.mlp.up_proj.weight")->dtype, dts[d]);
            ss_checkpoint_close(ck);
        }
        char q0[64], q[64];
        snprintf(q0, sizeof q0, "%s-I8-from-BF16", src[m]);
        quantize(src[m], q0, SS_DTYPE_I8);
        for (int d = 0; d < 2; d++) {
            snprintf(q, sizeof q, "%s-I8-from-%s", src[m], ss_dtype_name(dts[d]));
            quantize(leaf[d], q, SS_DTYPE_I8);
            same_tensors(q0, q);
        }
        /* convert straight from F32 == convert from BF16, and verify re-derives it */
        char r0[64], r1[64], s0[700], s1[700], base[600], rt[600];
        snprintf(r0, sizeof r0, "%s-c-BF16", src[m]);
        snprintf(r1, sizeof r1, "%s-c-F32", src[m]);
        assert_ok(convert(src[m], "2_8", SS_DTYPE_I8, r0, 0));
        assert_ok(convert(leaf[1], "2_8", SS_DTYPE_I8, r1, 0));
        ss_pattern p;
        assert_ok(ss_pattern_parse("2_8", &p));
        path(base, sizeof base, src[m]);
        path(rt, sizeof rt, r0);
        assert_ok(ss_convert_out_dir(base, rt, p, s0, sizeof s0));
        path(base, sizeof base, leaf[1]);
        path(rt, sizeof rt, r1);
        assert_ok(ss_convert_out_dir(base, rt, p, s1, sizeof s1));
        same_tensors(s0 + strlen(root) + 1, s1 + strlen(root) + 1);
        int bad = -1;
        ss_verify_opts vo = {.dense_dir = base, .slid_dir = s1};
        assert_ok(ss_verify_checkpoint(&vo, &bad));
        assert_int_equal(bad, 0);
    }
}

/* F32 values BF16 cannot hold: per-channel scales are the F32 absmax / 127,
 * not that of the values rounded to BF16. */
static void test_f32_scales_from_f32_values(void **state) {
    char in[512];
    path(in, sizeof in, "llama");
    char f32[512];
    path(f32, sizeof f32, "llama-F32x");
    ss_test_f32_scaled_checkpoint(in, f32, 1.0f + 0x1p-12f);
    quantize("llama-F32x", "llama-F32x-I8", SS_DTYPE_I8);
    char out[512];
    path(out, sizeof out, "llama-F32x-I8");
    ss_checkpoint *a, *b;
    assert_ok(ss_checkpoint_open(f32, &a));
    assert_ok(ss_checkpoint_open(out, &b));
    const ss_st_entry *e = ss_checkpoint_find(a, "model.layers.1.mlp.up_proj.weight");
    const ss_st_entry *s = ss_checkpoint_find(b, "model.layers.1.mlp.up_proj.weight_scale");
    assert_int_equal(e->dtype, SS_DTYPE_F32);
    int differs = 0;
    for (int64_t r = 0; r < e->shape[0]; r++) {
        float a_max = 0, b_max = 0, v;
        for (int64_t j = 0; j < e->shape[1]; j++) {
            memcpy(&v, (const char *)e->data + 4 * (r * e->shape[1] + j), 4);
            a_max = fmaxf(a_max, fabsf(v));
            b_max = fmaxf(b_max, fabsf(ss_bf16_to_f32(ss_f32_to_bf16(v))));
        }
        float got;
        memcpy(&got, (const char *)s->data + 4 * r, 4);
        assert_true(got == a_max / 127.0f);
        differs += got != b_max / 127.0f;
    }
    assert_true(differs > 0); /* the F32 precision mattered */
    /* the copied norm is the F32 value rounded to BF16 */
    e = ss_checkpoint_find(a, "model.norm.weight");
    s = ss_checkpoint_find(b, "model.norm.weight");
    assert_int_equal(s->dtype, SS_DTYPE_BF16);
    for (int64_t j = 0; j < e->shape[0]; j++) {
        float v;
        uint16_t h;
        memcpy(&v, (const char *)e->data + 4 * j, 4);
        memcpy(&h, (const char *)s->data + 2 * j, 2);
        assert_int_equal(h, ss_f32_to_bf16(v));
    }
    ss_checkpoint_close(a);
    ss_checkpoint_close(b);
}

// --- bad input: one line naming file/tensor, no output ------------------------------------------------

typedef enum { MUT_DROP, MUT_SHAPE, MUT_DTYPE, MUT_NAN, MUT_INF } mutation;

/* dst = src with tensor `name` mutated. */
static void mutate(const char *src_leaf, const char *dst_leaf, const char *name, mutation m) {
    char src[512], dst[512], p[600];
    path(src, sizeof src, src_leaf);
    path(dst, sizeof dst, dst_leaf);
    mkdir(dst, 0755);
    snprintf(p, sizeof p, "%s/config.json", src);
    size_t n;
    void *cfg = ss_test_read_file(p, &n);
    snprintf(p, sizeof p, "%s/config.json", dst);
    ss_test_write_file(p, cfg, n);
    free(cfg);
    ss_safetensors *st;
    snprintf(p, sizeof p, "%s/model.safetensors", src);
    assert_ok(ss_safetensors_open(p, &st));
    ss_st_writer *w;
    snprintf(p, sizeof p, "%s/model.safetensors", dst);
    assert_ok(ss_st_writer_open(p, &w));
    for (size_t i = 0; i < ss_safetensors_count(st); i++) {
        const ss_st_entry *e = ss_safetensors_entry(st, i);
        int hit = !strcmp(e->name, name);
        if (hit && m == MUT_DROP)
            continue;
        int64_t shape[SS_MAX_DIMS];
        memcpy(shape, e->shape, sizeof shape);
        if (hit && m == MUT_SHAPE)
            shape[0] -= 1;
        assert_ok(ss_st_writer_declare(w, e->name, hit && m == MUT_DTYPE ? SS_DTYPE_I64 : e->dtype,
                                       e->ndim, shape));
    }
    for (size_t i = 0; i < ss_safetensors_count(st); i++) {
        const ss_st_entry *e = ss_safetensors_entry(st, i);
        int hit = !strcmp(e->name, name);
        if (hit && m == MUT_DROP)
            continue;
        if (!hit) {
            assert_ok(ss_st_writer_write(w, e->data, e->nbytes));
        } else if (m == MUT_SHAPE) {
            assert_ok(ss_st_writer_write(w, e->data, e->nbytes / e->shape[0] * (e->shape[0] - 1)));
        } else if (m == MUT_DTYPE) {
            for (size_t j = 0; j < e->nbytes / 2; j++) {
                int64_t v = ((const uint16_t *)e->data)[j];
                assert_ok(ss_st_writer_write(w, &v, 8));
            }
        } else {
            uint16_t *c = malloc(e->nbytes);
            memcpy(c, e->data, e->nbytes);
            c[e->nbytes / 2 - 3] = m == MUT_NAN ? 0x7FC0 : 0xFF80;
            assert_ok(ss_st_writer_write(w, c, e->nbytes));
            free(c);
        }
    }
    assert_ok(ss_st_writer_close(w));
    ss_safetensors_close(st);
}

/* quantize and convert both fail on in_leaf with `st`, naming `needle`, and
 * leave nothing in the output root. */
static void both_fail(const char *in_leaf, ss_status st, const char *needle) {
    char in[512], out[512], rt[512];
    path(in, sizeof in, in_leaf);
    path(out, sizeof out, "bad-out/q");
    path(rt, sizeof rt, "bad-out");
    mkdir(rt, 0755);
    ss_quantize_opts o = {.in_dir = in, .out_dir = out, .dtype = SS_DTYPE_I8};
    assert_fails(ss_quantize_checkpoint(&o), st, needle);
    assert_fails(convert(in_leaf, "2_4,2_8", SS_DTYPE_COUNT, "bad-out", 0), st, needle);
    assert_int_equal(ss_test_count_entries(rt), 0);
}

static void test_bad_tensors(void **state) {
    const char *proj = "model.layers.1.self_attn.k_proj.weight";
    mutate("llama", "m_drop", proj, MUT_DROP);
    both_fail("m_drop", SS_EFORMAT, proj);
    mutate("llama", "m_shape", "model.layers.0.mlp.down_proj.weight", MUT_SHAPE);
    both_fail("m_shape", SS_EFORMAT, "model.layers.0.mlp.down_proj.weight");
    /* F16 and F32 are accepted (test_f16_f32_inputs); integer weights are not */
    mutate("llama", "m_dtype", "model.norm.weight", MUT_DTYPE);
    both_fail("m_dtype", SS_EFORMAT,
              "m_dtype/model.safetensors: tensor 'model.norm.weight': expected dtype BF16, F16 or F32, found I64");
    mutate("llama", "m_dtype_proj", proj, MUT_DTYPE);
    both_fail("m_dtype_proj", SS_EFORMAT,
              "m_dtype_proj/model.safetensors: tensor 'model.layers.1.self_attn.k_proj.weight': expected dtype BF16, F16 or F32, found I64");
    mutate("llama", "m_nan", proj, MUT_NAN);
    both_fail("m_nan", SS_EINVAL, proj);
    /* the NaN is late in the file: some tensors were written before it failed */
    mutate("bitnet", "m_inf", "model.layers.1.mlp.down_proj.weight", MUT_INF);
    both_fail("m_inf", SS_EINVAL, "model.layers.1.mlp.down_proj.weight");
}

static void test_bad_files(void **state) {
    char d[512], p[600];
    /* malformed safetensors: truncated */
    mutate("llama", "f_trunc", "", MUT_DROP);
    path(d, sizeof d, "f_trunc");
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    size_t n;
    void *img = ss_test_read_file(p, &n);
    ss_test_write_file(p, img, n - 100);
    free(img);
    both_fail("f_trunc", SS_EFORMAT, "model.safetensors");
    /* config.json missing, malformed, unsupported architecture */
    mutate("llama", "f_cfg", "", MUT_DROP);
    path(d, sizeof d, "f_cfg");
    snprintf(p, sizeof p, "%s/config.json", d);
    unlink(p);
    both_fail("f_cfg", SS_EFORMAT, "config.json");
    ss_test_write_file(p, "{\"architectures\": [", 19);
    both_fail("f_cfg", SS_EFORMAT, "config.json");
    const char *gpt = "{\"architectures\": [\"GPT2LMHeadModel\"], \"model_type\": \"gpt2\"}";
    ss_test_write_file(p, gpt, strlen(gpt));
    both_fail("f_cfg", SS_EUNSUPPORTED, "GPT2LMHeadModel");
    /* a quantized input to quantize; a slid input to convert */
    char in[512], out[512];
    path(in, sizeof in, "bitnet-INT8");
    path(out, sizeof out, "bad-out/q");
    ss_quantize_opts o = {.in_dir = in, .out_dir = out, .dtype = SS_DTYPE_I8};
    assert_fails(ss_quantize_checkpoint(&o), SS_EINVAL, "bitnet-INT8");
    assert_fails(convert("vc/bitnet-SlideSparse-2_8", "2_4", SS_DTYPE_COUNT, "bad-out", 0),
                 SS_EUNSUPPORTED, "SlideSparse");
}

static void test_bad_patterns(void **state) {
    char in[512], rt[512];
    path(in, sizeof in, "bitnet");
    path(rt, sizeof rt, "pat-out");
    ss_pattern bad[] = {{2, 5}, {2, 2}, {3, 8}, SS_PATTERN_INF, SS_PATTERN_DENSE};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ss_convert_opts o = {.in_dir = in, .out_root = rt, .patterns = &bad[i], .n_patterns = 1,
                             .dtype = SS_DTYPE_COUNT};
        assert_fails(ss_convert_checkpoint(&o), SS_EINVAL, "2_L");
    }
    ss_pattern twice[] = {{2, 8}, {2, 8}};
    ss_convert_opts o = {.in_dir = in, .out_root = rt, .patterns = twice, .n_patterns = 2,
                         .dtype = SS_DTYPE_COUNT};
    assert_fails(ss_convert_checkpoint(&o), SS_EINVAL, "twice");
    assert_false(ss_test_exists(rt));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitnet_preset_matches_spec),
        cmocka_unit_test(test_other_presets),
        cmocka_unit_test(test_synth_roundtrip),
        cmocka_unit_test(test_synth_reproducible),
        cmocka_unit_test(test_quantize_ternary),
        cmocka_unit_test(test_quantize_per_channel),
        cmocka_unit_test(test_convert_from_quantized),
        cmocka_unit_test(test_convert_multi_equals_single),
        cmocka_unit_test(test_verify_detects_corruption),
        cmocka_unit_test(test_sharded_input),
        cmocka_unit_test(test_f16_f32_inputs),
        cmocka_unit_test(test_f32_scales_from_f32_values),
        cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_bad_patterns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
