/* config.json: the three architectures with their real-world configs,
 * defaults, range checks, wrong types, and the quantization_config and
 * slidesparse blocks. */
#include "support/ss_test.h"

#include <string.h>

static ss_status parse(const char *json, ss_model_config *c) {
    return ss_model_config_parse(json, strlen(json), "cfg.json", c);
}

/* microsoft/bitnet-b1.58-2B-4T-bf16 config.json (auto_map trimmed). */
static const char *bitnet_2b =
    "{\n"
    "  \"architectures\": [\"BitNetForCausalLM\"],\n"
    "  \"attention_bias\": false,\n"
    "  \"attention_dropout\": 0.0,\n"
    "  \"bos_token_id\": 128000,\n"
    "  \"eos_token_id\": 128001,\n"
    "  \"hidden_act\": \"relu2\",\n"
    "  \"hidden_size\": 2560,\n"
    "  \"initializer_range\": 0.02,\n"
    "  \"intermediate_size\": 6912,\n"
    "  \"max_position_embeddings\": 4096,\n"
    "  \"model_type\": \"bitnet\",\n"
    "  \"num_attention_heads\": 20,\n"
    "  \"num_hidden_layers\": 30,\n"
    "  \"num_key_value_heads\": 5,\n"
    "  \"rms_norm_eps\": 1e-05,\n"
    "  \"rope_theta\": 500000.0,\n"
    "  \"tie_word_embeddings\": true,\n"
    "  \"torch_dtype\": \"bfloat16\",\n"
    "  \"use_cache\": true,\n"
    "  \"vocab_size\": 128256\n"
    "}\n";

static void test_bitnet_2b(void **state) {
    ss_model_config c;
    assert_ok(parse(bitnet_2b, &c));
    assert_int_equal(c.arch, SS_ARCH_BITNET);
    assert_string_equal(c.architecture, "BitNetForCausalLM");
    assert_string_equal(c.model_type, "bitnet");
    assert_int_equal(c.num_hidden_layers, 30);
    assert_int_equal(c.hidden_size, 2560);
    assert_int_equal(c.intermediate_size, 6912);
    assert_int_equal(c.num_attention_heads, 20);
    assert_int_equal(c.num_key_value_heads, 5);
    assert_int_equal(c.head_dim, 128);
    assert_int_equal(c.vocab_size, 128256);
    assert_int_equal(c.max_position_embeddings, 4096);
    assert_true(c.rms_norm_eps == 1e-5);
    assert_true(c.rope_theta == 500000.0);
    assert_int_equal(c.tie_word_embeddings, 1);
    assert_int_equal(c.attention_bias, 0);
    assert_int_equal(c.bos_token_id, 128000);
    assert_int_equal(c.eos_token_id, 128001);
    assert_string_equal(c.hidden_act, "relu2");
    assert_int_equal(c.kind, SS_WEIGHTS_BF16);
    assert_int_equal(c.weight_dtype, SS_DTYPE_BF16);
    assert_true(ss_pattern_is_dense(c.pattern));
}

/* Llama 3.2 1B: explicit head_dim, eos as an array, integer rope_theta,
 * rope_scaling ignored. */
static void test_llama(void **state) {
    const char *j =
        "{\"architectures\":[\"LlamaForCausalLM\"],\"bos_token_id\":128000,"
        "\"eos_token_id\":[128001,128008,128009],\"head_dim\":64,\"hidden_act\":\"silu\","
        "\"hidden_size\":2048,\"intermediate_size\":8192,\"max_position_embeddings\":131072,"
        "\"model_type\":\"llama\",\"num_attention_heads\":32,\"num_hidden_layers\":16,"
        "\"num_key_value_heads\":8,\"rms_norm_eps\":1e-05,\"rope_scaling\":{\"factor\":32.0,"
        "\"rope_type\":\"llama3\"},\"rope_theta\":500000,\"tie_word_embeddings\":true,"
        "\"vocab_size\":128256}";
    ss_model_config c;
    assert_ok(parse(j, &c));
    assert_int_equal(c.arch, SS_ARCH_LLAMA);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(c.eos_token_id, 128001);
    assert_int_equal(c.n_eos_token_ids, 3); /* every one ends generation */
    assert_int_equal(c.eos_token_ids[1], 128008);
    assert_int_equal(c.eos_token_ids[2], 128009);
    assert_true(c.rope_theta == 500000.0);
    assert_int_equal(c.num_key_value_heads, 8);
    assert_int_equal(c.attention_bias, 0);
    assert_string_equal(c.hidden_act, "silu");
}

/* Qwen2.5 7B: attention_bias absent means true; head_dim derived. */
static void test_qwen2(void **state) {
    const char *j =
        "{\"architectures\":[\"Qwen2ForCausalLM\"],\"bos_token_id\":151643,\"eos_token_id\":151645,"
        "\"hidden_act\":\"silu\",\"hidden_size\":3584,\"intermediate_size\":18944,"
        "\"max_position_embeddings\":32768,\"max_window_layers\":28,\"model_type\":\"qwen2\","
        "\"num_attention_heads\":28,\"num_hidden_layers\":28,\"num_key_value_heads\":4,"
        "\"rms_norm_eps\":1e-06,\"rope_theta\":1000000.0,\"sliding_window\":131072,"
        "\"tie_word_embeddings\":false,\"use_sliding_window\":false,\"vocab_size\":152064}";
    ss_model_config c;
    assert_ok(parse(j, &c));
    assert_int_equal(c.arch, SS_ARCH_QWEN2);
    assert_int_equal(c.head_dim, 128);
    assert_int_equal(c.attention_bias, 1);
    assert_int_equal(c.tie_word_embeddings, 0);
    assert_true(c.rope_theta == 1e6);
}

/* Mistral 7B v0.3 config.json, architecture and sliding_window left open. */
static const char *mistral_fmt =
    "{\"architectures\":[\"%s\"],\"attention_dropout\":0.0,\"bos_token_id\":1,"
    "\"eos_token_id\":2,\"head_dim\":128,\"hidden_act\":\"silu\",\"hidden_size\":4096,"
    "\"initializer_range\":0.02,\"intermediate_size\":14336,\"max_position_embeddings\":32768,"
    "\"model_type\":\"mistral\",\"num_attention_heads\":32,\"num_hidden_layers\":32,"
    "\"num_key_value_heads\":8,\"rms_norm_eps\":1e-05,\"rope_theta\":1000000.0,"
    "\"sliding_window\":%s,\"tie_word_embeddings\":false,\"torch_dtype\":\"bfloat16\","
    "\"use_cache\":true,\"vocab_size\":32768}";

/* Mistral: Llama's layers under another name. */
static void test_mistral(void **state) {
    char j[2048];
    ss_model_config c;
    snprintf(j, sizeof j, mistral_fmt, "MistralForCausalLM", "null");
    assert_ok(parse(j, &c));
    assert_int_equal(c.arch, SS_ARCH_LLAMA);
    assert_string_equal(c.architecture, "MistralForCausalLM");
    assert_string_equal(c.model_type, "mistral");
    assert_int_equal(c.hidden_size, 4096);
    assert_int_equal(c.intermediate_size, 14336);
    assert_int_equal(c.num_key_value_heads, 8);
    assert_int_equal(c.head_dim, 128);
    assert_int_equal(c.attention_bias, 0);
    assert_int_equal(c.tie_word_embeddings, 0);
    assert_string_equal(c.hidden_act, "silu");
    assert_true(c.rope_theta == 1e6);
    assert_int_equal(c.eos_token_id, 2);

    /* A window covering every position is full attention; a smaller one is
     * refused (v0.1: 4096 of 32768); Llama and Qwen2 configs' windows are not
     * in force and are ignored. */
    snprintf(j, sizeof j, mistral_fmt, "MistralForCausalLM", "32768");
    assert_ok(parse(j, &c));
    snprintf(j, sizeof j, mistral_fmt, "MistralForCausalLM", "4096");
    assert_fails(parse(j, &c), SS_EUNSUPPORTED,
                 "cfg.json: sliding_window 4096 is smaller than max_position_embeddings 32768");
    snprintf(j, sizeof j, mistral_fmt, "MistralForCausalLM", "\"4k\"");
    assert_fails(parse(j, &c), SS_EFORMAT, "'sliding_window' must be an integer or null");
    snprintf(j, sizeof j, mistral_fmt, "LlamaForCausalLM", "4096");
    assert_ok(parse(j, &c));
}

static const char *minimal_fmt =
    "{\"architectures\":[\"%s\"],\"hidden_size\":64,\"intermediate_size\":128,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100%s}";

static void test_defaults(void **state) {
    char j[512];
    ss_model_config c;
    snprintf(j, sizeof j, minimal_fmt, "BitNetForCausalLM", "");
    assert_ok(parse(j, &c));
    assert_int_equal(c.num_key_value_heads, 4);
    assert_int_equal(c.head_dim, 16);
    assert_true(c.rope_theta == 10000.0);
    assert_true(c.rms_norm_eps == 1e-6);
    assert_int_equal(c.tie_word_embeddings, 0);
    assert_int_equal(c.attention_bias, 0);
    assert_int_equal(c.bos_token_id, -1);
    assert_string_equal(c.hidden_act, "relu2");
    /* Qwen2 has q/k/v biases whatever the field says (as in Hugging Face),
     * for the engine and quantize / convert alike; LLaMA follows the field. */
    snprintf(j, sizeof j, minimal_fmt, "Qwen2ForCausalLM", ",\"attention_bias\":false,\"bos_token_id\":null");
    assert_ok(parse(j, &c));
    assert_int_equal(c.attention_bias, 1);
    assert_string_equal(c.hidden_act, "silu");
    snprintf(j, sizeof j, minimal_fmt, "LlamaForCausalLM", ",\"attention_bias\":true");
    assert_ok(parse(j, &c));
    assert_int_equal(c.attention_bias, 1);
}

static void test_rejections(void **state) {
    char j[1024];
    ss_model_config c;
    snprintf(j, sizeof j, minimal_fmt, "GemmaForCausalLM", "");
    assert_fails(parse(j, &c), SS_EUNSUPPORTED, "unsupported architecture 'GemmaForCausalLM'");
    assert_fails(parse("{\"hidden_size\":1}", &c), SS_EFORMAT, "'architectures'");
    assert_fails(parse("{\"architectures\":[]}", &c), SS_EFORMAT, "non-empty array");
    assert_fails(parse("{\"architectures\":[\"LlamaForCausalLM\"]}", &c), SS_EFORMAT,
                 "missing required field 'hidden_size'");
    assert_fails(parse("[1]", &c), SS_EFORMAT, "expected a JSON object");
    assert_fails(parse("{\"a\":", &c), SS_EFORMAT, "invalid JSON");
    assert_fails(parse("{\"a\":1,\"a\":2}", &c), SS_EFORMAT, "duplicate");

    static const struct {
        const char *extra, *needle;
    } cases[] = {
        {",\"hidden_size\":\"64\"", "duplicate"}, /* keys appear once */
        {",\"num_key_value_heads\":3", "not a multiple of num_key_value_heads"},
        {",\"num_key_value_heads\":0", "'num_key_value_heads' is 0"},
        {",\"rope_theta\":\"big\"", "'rope_theta' must be a number"},
        {",\"rms_norm_eps\":-1", "'rms_norm_eps' is -1"},
        {",\"tie_word_embeddings\":1", "'tie_word_embeddings' must be a boolean"},
        {",\"hidden_act\":\"a_very_long_activation\"", "'hidden_act' is 22 characters"},
        {",\"head_dim\":1.5", "'head_dim' must be an integer, found a real number"},
        {",\"eos_token_id\":\"x\"", "'eos_token_id'"},
        {",\"eos_token_id\":[]", "'eos_token_id' lists 0 ids, expected 1..8"},
        {",\"eos_token_id\":[1,2,3,4,5,6,7,8,9]", "'eos_token_id' lists 9 ids"},
        {",\"eos_token_id\":[1,-2]", "'eos_token_id' must be a non-negative integer"},
        {",\"max_position_embeddings\":99999999999", "'max_position_embeddings' is 99999999999"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(j, sizeof j, minimal_fmt, "LlamaForCausalLM", cases[i].extra);
        assert_fails(parse(j, &c), SS_EFORMAT, cases[i].needle);
    }
    /* Wrong type of a required field, heads not dividing hidden. */
    assert_fails(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":\"64\"}", &c), SS_EFORMAT,
                 "'hidden_size' must be an integer, found a string");
    assert_fails(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
                       "\"num_hidden_layers\":2,\"num_attention_heads\":6,\"vocab_size\":100}", &c),
                 SS_EFORMAT, "not a multiple of num_attention_heads 6");
    assert_fails(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":-64}", &c), SS_EFORMAT,
                 "'hidden_size' is -64");
}

static const char *qc_fmt =
    ",\"quantization_config\":{\"quant_method\":\"%s\","
    "\"weights\":{\"dtype\":\"%s\",\"scheme\":\"%s\",\"static\":true},"
    "\"activations\":{\"dtype\":\"%s\",\"scheme\":\"per_token\",\"dynamic\":true}}";

static ss_status parse_quant(const char *method, const char *wdt, const char *scheme, const char *adt,
                             const char *more, ss_model_config *c) {
    char qc[512], j[2048];
    snprintf(qc, sizeof qc, qc_fmt, method, wdt, scheme, adt);
    strcat(qc, more);
    snprintf(j, sizeof j, minimal_fmt, "BitNetForCausalLM", qc);
    return parse(j, c);
}

static void test_quantization_config(void **state) {
    ss_model_config c;
    assert_ok(parse_quant("slidesparse", "int8", "per_tensor", "int8", "", &c));
    assert_int_equal(c.kind, SS_WEIGHTS_QUANTIZED);
    assert_int_equal(c.weight_dtype, SS_DTYPE_I8);
    assert_int_equal(c.per_channel, 0);
    assert_ok(parse_quant("slidesparse", "fp8_e4m3", "per_channel", "fp8_e4m3", "", &c));
    assert_int_equal(c.weight_dtype, SS_DTYPE_F8_E4M3);
    assert_int_equal(c.per_channel, 1);

    assert_fails(parse_quant("bitnet", "int8", "per_tensor", "int8", "", &c), SS_EUNSUPPORTED, "'bitnet'");
    assert_fails(parse_quant("slidesparse", "int4", "per_tensor", "int8", "", &c), SS_EFORMAT, "'int4'");
    assert_fails(parse_quant("slidesparse", "int8", "per_group", "int8", "", &c), SS_EFORMAT, "'per_group'");
    assert_fails(parse_quant("slidesparse", "int8", "per_tensor", "fp8_e4m3", "", &c), SS_EUNSUPPORTED, "differs");
    char j[1024];
    snprintf(j, sizeof j, minimal_fmt, "LlamaForCausalLM", ",\"quantization_config\":{\"quant_method\":\"slidesparse\"}");
    assert_fails(parse(j, &c), SS_EFORMAT, "quantization_config.weights");
    snprintf(j, sizeof j, minimal_fmt, "LlamaForCausalLM", ",\"quantization_config\":[]");
    assert_fails(parse(j, &c), SS_EFORMAT, "'quantization_config' must be an object");
}

static void test_slidesparse_block(void **state) {
    ss_model_config c;
    char j[2048];
    const char *qc = ",\"quantization_config\":{\"quant_method\":\"slidesparse\","
                     "\"weights\":{\"dtype\":\"int8\",\"scheme\":\"per_tensor\"},"
                     "\"activations\":{\"dtype\":\"int8\",\"scheme\":\"per_token\"}}";
    static const struct {
        const char *block, *needle;
        ss_status st;
    } cases[] = {
        {",\"slidesparse\":{\"pattern\":\"2_8\",\"Z\":2,\"L\":8,\"tensors\":{\"w\":{\"K\":6912,\"K_slid\":10368}},"
         "\"source\":\"x\",\"version\":\"0.1.0\"}", NULL, SS_OK},
        {",\"slidesparse\":{\"pattern\":\"2_inf\",\"L\":null}", NULL, SS_OK},
        {",\"slidesparse\":{\"pattern\":\"2_7\"}", "'2_7'", SS_EFORMAT},
        {",\"slidesparse\":{\"pattern\":\"2_8\",\"L\":6}", "disagree", SS_EFORMAT},
        {",\"slidesparse\":{\"pattern\":\"2_8\",\"tensors\":{\"w\":{\"K\":6912,\"K_slid\":6912}}}", "K_slid 6912", SS_EFORMAT},
        {",\"slidesparse\":{\"pattern\":\"2_8\",\"tensors\":{\"w\":3}}", "must be an object", SS_EFORMAT},
        {",\"slidesparse\":{\"L\":8}", "'slidesparse.pattern'", SS_EFORMAT},
        {",\"slidesparse\":\"2_8\"", "'slidesparse' must be an object", SS_EFORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char extra[1024];
        snprintf(extra, sizeof extra, "%s%s", qc, cases[i].block);
        snprintf(j, sizeof j, minimal_fmt, "BitNetForCausalLM", extra);
        if (cases[i].st == SS_OK) {
            assert_ok(parse(j, &c));
            assert_int_equal(c.kind, SS_WEIGHTS_SLID);
            assert_int_equal(c.weight_dtype, SS_DTYPE_I8);
        } else {
            assert_fails(parse(j, &c), cases[i].st, cases[i].needle);
        }
    }
    snprintf(j, sizeof j, minimal_fmt, "BitNetForCausalLM", cases[0].block);
    assert_ok(parse(j, &c));
    assert_int_equal(c.pattern.z, 2);
    assert_int_equal(c.pattern.l, 8);
    assert_int_equal(c.kind, SS_WEIGHTS_SLID);
    assert_int_equal(c.weight_dtype, SS_DTYPE_BF16);
}

static void test_load(void **state) {
    char dir[256], path[512];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/config.json", dir);
    ss_test_write_file(path, bitnet_2b, strlen(bitnet_2b));
    ss_model_config c;
    assert_ok(ss_model_config_load(path, &c));
    assert_int_equal(c.hidden_size, 2560);
    ss_test_write_file(path, "{\"architectures\":5}", 19);
    assert_fails(ss_model_config_load(path, &c), SS_EFORMAT, path);
    snprintf(path, sizeof path, "%s/none.json", dir);
    assert_fails(ss_model_config_load(path, &c), SS_EIO, "none.json");
    ss_test_rmtree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitnet_2b),       cmocka_unit_test(test_llama),
        cmocka_unit_test(test_qwen2),           cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_mistral),
        cmocka_unit_test(test_rejections),      cmocka_unit_test(test_quantization_config),
        cmocka_unit_test(test_slidesparse_block), cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
