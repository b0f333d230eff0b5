/* compressed-tensors (llm-compressor) W8A8 checkpoints read as ours. The
 * fixtures are written here from the tiny Llama: our INT8 / FP8 checkpoint
 * rewritten in the compressed-tensors layout (config_groups, weight_scale
 * [N, 1]), and for the exact comparison a BF16 model that dequantizes to the
 * same weights (power-of-two scales, so q * scale is exact in BF16 and our
 * quantize gives q and scale back). Every unsupported scheme must be refused
 * with one line naming the file or tensor and the reason. */
#include "support/ss_test.h"

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "slidesparse/engine.h"
#include "slidesparse/prep.h"

static char root[256];

static void path(char *buf, size_t n, const char *leaf) { snprintf(buf, n, "%s/%s", root, leaf); }

static void quantize(const char *in_leaf, const char *out_leaf, ss_dtype dt) {
    char in[512], out[512];
    path(in, sizeof in, in_leaf);
    path(out, sizeof out, out_leaf);
    ss_quantize_opts o = {.in_dir = in, .out_dir = out, .dtype = dt};
    assert_ok(ss_quantize_checkpoint(&o));
}

static int setup(void **state) {
    (void)state;
    ss_test_tmpdir(root, sizeof root);
    char out[512];
    path(out, sizeof out, "llama");
    ss_synth_opts o = {.preset = "tiny-llama", .out_dir = out, .seed = 11};
    assert_ok(ss_synth(&o));
    quantize("llama", "q8", SS_DTYPE_I8);
    quantize("llama", "f8", SS_DTYPE_F8_E4M3);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ss_test_rmtree(root);
    return 0;
}

// --- writing the fixtures ----------------------------------------------------------------------

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The quantization_config llm-compressor writes for W8A8 (int) / FP8 dynamic (float). */
static json_t *ct_block(int is_float) {
    const char *t = is_float ? "float" : "int";
    return json_pack("{s:s, s:s, s:s, s:{s:{s:[s], s:{s:i, s:s, s:b, s:s, s:b, s:n, s:n, s:n, s:s}, "
                     "s:{s:i, s:s, s:b, s:s, s:b, s:n}, s:n}}, s:[s], s:n}",
                     "quant_method", "compressed-tensors", "format", is_float ? "float-quantized" : "int-quantized",
                     "quantization_status", "compressed", "config_groups", "group_0", "targets", "Linear",
                     "weights", "num_bits", 8, "type", t, "symmetric", 1, "strategy", "channel", "dynamic", 0,
                     "group_size", "block_structure", "actorder", "observer", "minmax",
                     "input_activations", "num_bits", 8, "type", t, "symmetric", 1, "strategy", "token",
                     "dynamic", 1, "observer", "output_activations", "ignore", "lm_head", "kv_cache_scheme");
}

/* Sets root.a.b.c (dotted) to v (stolen). */
/* Sets the member at a dotted path; v NULL removes it (a field left out). */
static void set_path(json_t *j, const char *dotted, json_t *v) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", dotted);
    char *key = buf, *dot;
    while ((dot = strchr(key, '.'))) {
        *dot = 0;
        j = json_object_get(j, key);
        assert_non_null(j);
        key = dot + 1;
    }
    if (v)
        json_object_set_new(j, key, v);
    else
        json_object_del(j, key);
}

static void write_config(const char *src_dir, const char *dst_dir, json_t *qc) {
    char p[600];
    snprintf(p, sizeof p, "%s/config.json", src_dir);
    json_t *j = json_load_file(p, 0, NULL);
    assert_non_null(j);
    if (qc)
        json_object_set_new(j, "quantization_config", qc);
    else
        json_object_del(j, "quantization_config");
    snprintf(p, sizeof p, "%s/config.json", dst_dir);
    assert_int_equal(json_dump_file(j, p, JSON_INDENT(2)), 0);
    json_decref(j);
}

typedef struct {
    int is_float;
    ss_dtype scale_dt;   /* BF16 or F32 */
    int pow2;            /* scales rounded to powers of two */
    int scale_cols;      /* weight_scale [N, scale_cols] */
    int per_tensor;      /* weight_scale [1]: the first channel's */
    const char *extra;   /* a tensor of an unsupported scheme, appended to q_proj of layer 0 */
    const char *deq_leaf; /* also write the BF16 model q * scale here */
} ct_opts;

static float scale_of(const ct_opts *o, float s) { return o->pow2 ? exp2f(rintf(log2f(s))) : s; }

static void put_scale(ss_st_writer *w, const ct_opts *o, float s) {
    for (int c = 0; c < o->scale_cols; c++) {
        if (o->scale_dt == SS_DTYPE_BF16) {
            uint16_t h = ss_f32_to_bf16(s);
            assert_true(ss_bf16_to_f32(h) == s); /* the fixtures keep scales exact */
            assert_ok(ss_st_writer_write(w, &h, 2));
        } else {
            assert_ok(ss_st_writer_write(w, &s, 4));
        }
    }
}

/* dst (and o->deq_leaf) from our quantized src. */
static void write_ct(const char *src_leaf, const char *dst_leaf, const ct_opts *o) {
    char src[512], dst[512], deq[512], p[600];
    path(src, sizeof src, src_leaf);
    path(dst, sizeof dst, dst_leaf);
    mkdir(dst, 0755);
    write_config(src, dst, ct_block(o->is_float));
    if (o->deq_leaf) {
        path(deq, sizeof deq, o->deq_leaf);
        mkdir(deq, 0755);
        write_config(src, deq, NULL);
    }
    ss_checkpoint *ck;
    assert_ok(ss_checkpoint_open(src, &ck));
    ss_st_writer *w, *d = NULL;
    snprintf(p, sizeof p, "%s/model.safetensors", dst);
    assert_ok(ss_st_writer_open(p, &w));
    if (o->deq_leaf) {
        snprintf(p, sizeof p, "%s/model.safetensors", deq);
        assert_ok(ss_st_writer_open(p, &d));
    }
    size_t n = ss_checkpoint_count(ck);
    for (size_t i = 0; i < n; i++) {
        const ss_st_entry *e = ss_checkpoint_entry(ck, i);
        if (ends_with(e->name, ".weight_scale")) {
            int64_t shape[2] = {o->per_tensor ? 1 : e->shape[0], o->scale_cols};
            assert_ok(ss_st_writer_declare(w, e->name, o->scale_dt, 2, shape));
            continue;
        }
        assert_ok(ss_st_writer_declare(w, e->name, e->dtype, e->ndim, e->shape));
        int proj = e->dtype == SS_DTYPE_I8 || e->dtype == SS_DTYPE_F8_E4M3;
        if (d)
            assert_ok(ss_st_writer_declare(d, e->name, proj ? SS_DTYPE_BF16 : e->dtype, e->ndim, e->shape));
    }
    const char *extra_base = "model.layers.0.self_attn.q_proj";
    char extra[160];
    snprintf(extra, sizeof extra, "%s%s", extra_base, o->extra ? o->extra : "");
    if (o->extra)
        assert_ok(ss_st_writer_declare(w, extra, SS_DTYPE_F32, 1, (int64_t[]){1}));
    for (size_t i = 0; i < n; i++) {
        const ss_st_entry *e = ss_checkpoint_entry(ck, i);
        if (ends_with(e->name, ".weight_scale")) {
            for (int64_t r = 0; r < (o->per_tensor ? 1 : e->shape[0]); r++)
                put_scale(w, o, scale_of(o, ((const float *)e->data)[r]));
            continue;
        }
        assert_ok(ss_st_writer_write(w, e->data, e->nbytes));
        int proj = e->dtype == SS_DTYPE_I8 || e->dtype == SS_DTYPE_F8_E4M3;
        if (!d)
            continue;
        if (!proj) {
            assert_ok(ss_st_writer_write(d, e->data, e->nbytes));
            continue;
        }
        char sn[160];
        snprintf(sn, sizeof sn, "%s_scale", e->name);
        const ss_st_entry *se = ss_checkpoint_find(ck, sn);
        assert_non_null(se);
        int64_t rows = e->shape[0], k = e->shape[1];
        for (int64_t r = 0; r < rows; r++) {
            float s = scale_of(o, ((const float *)se->data)[r]);
            for (int64_t c = 0; c < k; c++) {
                uint8_t b = ((const uint8_t *)e->data)[r * k + c];
                float q = e->dtype == SS_DTYPE_I8 ? (float)(int8_t)b : ss_e4m3_to_f32(b);
                uint16_t h = ss_f32_to_bf16(q * s);
                assert_true(ss_bf16_to_f32(h) == q * s); /* exact: the dequantized model */
                assert_ok(ss_st_writer_write(d, &h, 2));
            }
        }
    }
    if (o->extra) {
        float one = 1.0f;
        assert_ok(ss_st_writer_write(w, &one, 4));
    }
    assert_ok(ss_st_writer_close(w));
    if (d)
        assert_ok(ss_st_writer_close(d));
    ss_checkpoint_close(ck);
}

// --- comparisons -------------------------------------------------------------------------------

/* Every tensor of checkpoint a (a folder under the test root) equals b's. */
static void same_tensors(const char *a_leaf, const char *b_leaf) {
    char a_dir[512], b_dir[512];
    path(a_dir, sizeof a_dir, a_leaf);
    path(b_dir, sizeof b_dir, b_leaf);
    ss_test_same_checkpoints(a_dir, b_dir);
}

/* Greedy ids and the last step's logits on the CPU. */
static float *run_model(const char *leaf, int32_t *ids, int64_t max_new, int64_t *vocab) {
    char dir[512];
    path(dir, sizeof dir, leaf);
    ss_context *ctx;
    ss_model *m;
    assert_ok(ss_context_create(-1, &ctx));
    assert_ok(ss_model_load(ctx, SS_BACKEND_CPU, dir, &m));
    *vocab = ss_model_get_config(m)->vocab_size;
    float *logits = malloc((size_t)*vocab * sizeof *logits);
    const int32_t prompt[] = {1, 5, 9, 2};
    assert_ok(ss_generate_greedy(m, prompt, 4, max_new, ids, logits));
    ss_model_destroy(m);
    ss_context_destroy(ctx);
    return logits;
}

static void same_logits(const char *a_leaf, const char *b_leaf) {
    int32_t ia[6], ib[6];
    int64_t va, vb;
    float *la = run_model(a_leaf, ia, 6, &va), *lb = run_model(b_leaf, ib, 6, &vb);
    assert_int_equal(va, vb);
    assert_memory_equal(ia, ib, sizeof ia);
    if (memcmp(la, lb, (size_t)va * sizeof *la))
        fail_msg("%s vs %s: logits differ", a_leaf, b_leaf);
    free(la);
    free(lb);
}

static ss_status convert_leaf(const char *in_leaf, const char *root_leaf) {
    char in[512], out[512];
    path(in, sizeof in, in_leaf);
    path(out, sizeof out, root_leaf);
    ss_pattern p[2];
    assert_ok(ss_pattern_parse("2_6", &p[0]));
    assert_ok(ss_pattern_parse("2_8", &p[1]));
    ss_convert_opts o = {.in_dir = in, .out_root = out, .patterns = p, .n_patterns = 2,
                         .dtype = SS_DTYPE_COUNT};
    return ss_convert_checkpoint(&o);
}

static void verify_ok(const char *dense_leaf, const char *slid_leaf) {
    char d[512], s[512];
    path(d, sizeof d, dense_leaf);
    path(s, sizeof s, slid_leaf);
    int bad = -1;
    ss_verify_opts vo = {.dense_dir = d, .slid_dir = s};
    assert_ok(ss_verify_checkpoint(&vo, &bad));
    assert_int_equal(bad, 0);
}

// --- tests -------------------------------------------------------------------------------------

/* Our INT8 / FP8 checkpoint in the compressed-tensors layout (F32 [N, 1]
 * scales) reads back as the same tensors, runs to the same logits, converts
 * to the same SlideSparse checkpoints, and verify accepts them. */
static void check_reads_as_ours(const char *ours, const char *ct, int is_float) {
    write_ct(ours, ct, &(ct_opts){.is_float = is_float, .scale_dt = SS_DTYPE_F32, .scale_cols = 1});
    char dir[512];
    path(dir, sizeof dir, ct);
    ss_checkpoint *ck;
    assert_ok(ss_checkpoint_open(dir, &ck));
    const ss_model_config *c = ss_checkpoint_config(ck);
    assert_int_equal(c->kind, SS_WEIGHTS_QUANTIZED);
    assert_int_equal(c->weight_dtype, is_float ? SS_DTYPE_F8_E4M3 : SS_DTYPE_I8);
    assert_true(c->per_channel);
    assert_int_equal(c->quant_source, SS_QUANT_SOURCE_COMPRESSED_TENSORS);
    assert_string_equal(c->quant_format, is_float ? "float-quantized" : "int-quantized");
    ss_checkpoint_close(ck);
    same_tensors(ours, ct);
    same_logits(ours, ct);
    char slid_a[96], slid_b[96], ra[32], rb[32];
    snprintf(ra, sizeof ra, "slid-%s", ours);
    snprintf(rb, sizeof rb, "slid-%s", ct);
    assert_ok(convert_leaf(ours, ra));
    assert_ok(convert_leaf(ct, rb));
    snprintf(slid_a, sizeof slid_a, "%s/%s-SlideSparse-2_8", ra, ours);
    snprintf(slid_b, sizeof slid_b, "%s/%s-SlideSparse-2_8", rb, ct);
    same_tensors(slid_a, slid_b);
    verify_ok(ct, slid_b);
    same_logits(slid_a, slid_b);
    /* the slid output is in our layout, and says where it came from */
    char p[600];
    snprintf(p, sizeof p, "%s/%s/config.json", root, slid_b);
    json_t *j = json_load_file(p, 0, NULL);
    json_t *q = json_object_get(j, "quantization_config");
    assert_string_equal(json_string_value(json_object_get(q, "quant_method")), "slidesparse");
    assert_string_equal(json_string_value(json_object_get(json_object_get(q, "source"), "quant_method")),
                        "compressed-tensors");
    json_decref(j);
}

static void test_int8_reads_as_ours(void **state) {
    (void)state;
    check_reads_as_ours("q8", "ct8", 0);
    /* the CLI: inspect names the source format */
    char dir[512], out[8192];
    path(dir, sizeof dir, "ct8");
    if (ss_test_run_cli("inspect", dir, out, sizeof out) != -2)
        assert_non_null(strstr(out, "quantized I8, per-channel weight scales (compressed-tensors int-quantized"));
}

static void test_fp8_reads_as_ours(void **state) {
    (void)state;
    check_reads_as_ours("f8", "ctf8", 1);
}

/* A compressed-tensors checkpoint with BF16 scales and the BF16 model it
 * dequantizes to: our quantize of that model gives the checkpoint's weights
 * and scales exactly, hence the same logits, dense and slid. */
static void check_dequantized(const char *ours, const char *ct, const char *deq, const char *requant,
                              int is_float) {
    write_ct(ours, ct, &(ct_opts){.is_float = is_float, .scale_dt = SS_DTYPE_BF16, .pow2 = 1,
                                  .scale_cols = 1, .deq_leaf = deq});
    quantize(deq, requant, is_float ? SS_DTYPE_F8_E4M3 : SS_DTYPE_I8);
    same_tensors(requant, ct);
    same_logits(requant, ct);
}

static void test_int8_equals_quantized_dequantized(void **state) {
    (void)state;
    check_dequantized("q8", "ct8b", "deq8", "rq8", 0);
}

static void test_fp8_equals_quantized_dequantized(void **state) {
    (void)state;
    check_dequantized("f8", "ctf8b", "deqf8", "rqf8", 1);
}

/* Per-tensor weight scales ([1]) read as our per-tensor layout. */
static void test_tensor_strategy(void **state) {
    (void)state;
    write_ct("q8", "ct8t", &(ct_opts){.scale_dt = SS_DTYPE_F32, .scale_cols = 1, .per_tensor = 1});
    char dir[512], p[600];
    path(dir, sizeof dir, "ct8t");
    snprintf(p, sizeof p, "%s/config.json", dir);
    json_t *j = json_load_file(p, 0, NULL);
    set_path(j, "quantization_config.config_groups.group_0.weights.strategy", json_string("tensor"));
    json_dump_file(j, p, JSON_INDENT(2));
    json_decref(j);
    ss_checkpoint *ck;
    assert_ok(ss_checkpoint_open(dir, &ck));
    assert_false(ss_checkpoint_config(ck)->per_channel);
    const ss_st_entry *e = ss_checkpoint_find(ck, "model.layers.1.mlp.down_proj.weight_scale");
    assert_int_equal(e->dtype, SS_DTYPE_F32);
    assert_int_equal(e->ndim, 1);
    assert_int_equal(e->shape[0], 1);
    ss_checkpoint_close(ck);
    int32_t ids[2];
    int64_t vocab;
    free(run_model("ct8t", ids, 2, &vocab)); /* the engine runs per-tensor scales too */
}

// --- refused schemes -----------------------------------------------------------------------

typedef struct {
    const char *field;   /* dotted under quantization_config */
    const char *value;   /* JSON; NULL: the field left out */
    const char *needle;
} bad_field;

static void test_refused_configs(void **state) {
    (void)state;
    write_ct("q8", "ct-good", &(ct_opts){.scale_dt = SS_DTYPE_F32, .scale_cols = 1});
    static const bad_field cases[] = {
        {"config_groups.group_0.weights.strategy", "\"group\"", "strategy is 'group'"},
        {"config_groups.group_0.weights.strategy", "\"block\"", "strategy is 'block'"},
        {"config_groups.group_0.weights.group_size", "128", "group_size is set"},
        {"config_groups.group_0.weights.symmetric", "false", "asymmetric"},
        {"config_groups.group_0.weights.num_bits", "4", "num_bits is 4"},
        {"config_groups.group_0.weights.type", "\"float\"", "differs from the weights"},
        {"config_groups.group_0.input_activations.dynamic", "false", "static activation scales"},
        {"config_groups.group_0.input_activations.strategy", "\"tensor\"", "strategy is 'tensor'"},
        {"config_groups.group_0.input_activations", "null", "weight-only"},
        {"format", "\"pack-quantized\"", "format 'pack-quantized'"},
        {"kv_cache_scheme", "{\"num_bits\": 8}", "KV-cache"},
        {"config_groups.group_0.input_activations.type", NULL, "type must be 'int' or 'float', found nothing"},
    };
    char good[512], dir[512], p[600], cmd[1400];
    path(good, sizeof good, "ct-good");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        path(dir, sizeof dir, "ct-bad");
        ss_test_rmtree(dir);
        mkdir(dir, 0755);
        snprintf(cmd, sizeof cmd, "cp %s/model.safetensors %s/", good, dir);
        assert_int_equal(system(cmd), 0);
        snprintf(p, sizeof p, "%s/config.json", good);
        json_t *j = json_load_file(p, 0, NULL);
        char dotted[200];
        snprintf(dotted, sizeof dotted, "quantization_config.%s", cases[i].field);
        set_path(j, dotted, cases[i].value ? json_loads(cases[i].value, JSON_DECODE_ANY, NULL) : NULL);
        snprintf(p, sizeof p, "%s/config.json", dir);
        json_dump_file(j, p, JSON_INDENT(2));
        json_decref(j);
        ss_checkpoint *ck = NULL;
        assert_fails(ss_checkpoint_open(dir, &ck), SS_EUNSUPPORTED, cases[i].needle);
        assert_non_null(strstr(ss_last_error(), "config.json"));
        assert_null(strchr(ss_last_error(), '\n'));
        /* the CLI: exit 1, one line on stderr naming the reason */
        char args[1200], out[4096];
        snprintf(args, sizeof args, "--model %s --sparsity 2_8 --out %s/ct-bad-out", dir, root);
        int rc = ss_test_run_cli("convert", args, out, sizeof out);
        if (rc != -2) {
            assert_int_not_equal(rc, 0);
            assert_non_null(strstr(out, cases[i].needle));
            assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1); /* one line */
        }
    }
}

static void test_refused_tensors(void **state) {
    (void)state;
    static const struct {
        const char *extra, *needle, *tensor;
        int cols;
    } cases[] = {
        {".weight_zero_point", "zero points", "q_proj.weight_zero_point", 1},
        {".input_scale", "static activation scales", "q_proj.input_scale", 1},
        {".weight_g_idx", "activation ordering", "q_proj.weight_g_idx", 1},
        {NULL, "group-wise scales", ".weight_scale'", 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char leaf[32], dir[512];
        snprintf(leaf, sizeof leaf, "ct-badt%zu", i);
        write_ct("q8", leaf, &(ct_opts){.scale_dt = SS_DTYPE_BF16, .pow2 = 1, .scale_cols = cases[i].cols,
                                        .extra = cases[i].extra});
        path(dir, sizeof dir, leaf);
        ss_checkpoint *ck = NULL;
        assert_fails(ss_checkpoint_open(dir, &ck), SS_EUNSUPPORTED, cases[i].needle);
        assert_non_null(strstr(ss_last_error(), cases[i].tensor));
        assert_non_null(strstr(ss_last_error(), "model.safetensors"));
        /* and no output is left by convert */
        char out[48];
        snprintf(out, sizeof out, "out-%s", leaf);
        assert_int_equal(convert_leaf(leaf, out), SS_EUNSUPPORTED);
        path(dir, sizeof dir, out);
        assert_false(ss_test_exists(dir) && ss_test_count_entries(dir) > 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int8_reads_as_ours),
        cmocka_unit_test(test_fp8_reads_as_ours),
        cmocka_unit_test(test_int8_equals_quantized_dequantized),
        cmocka_unit_test(test_fp8_equals_quantized_dequantized),
        cmocka_unit_test(test_tensor_strategy),
        cmocka_unit_test(test_refused_configs),
        cmocka_unit_test(test_refused_tensors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
