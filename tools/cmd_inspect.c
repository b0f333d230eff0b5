/* slidesparse inspect FILE|DIR: what a checkpoint holds — the model config and,
 * per tensor, dtype, shape, bytes and (for 2-D projection weights) the Z:L
 * pattern the weights satisfy and whether they are 2:4-valid. */
#include "cli.h"

#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f) {
    fprintf(f, "usage: slidesparse inspect FILE.safetensors|DIR [--no-scan]\n"
               "  prints the config summary (for a checkpoint directory) and one row per tensor:\n"
               "  name, dtype, shape, bytes; for 2-D I8/F8/BF16/F16/F32 projection weights (*_proj.weight)\n"
               "  the detected pattern (smallest L with 2 zeros in every L, else dense) and whether\n"
               "  rows are 2:4-valid; for SlideSparse checkpoints also K and K'.\n"
               "  --no-scan  skip reading the weights (pattern and 2:4 columns show '-')\n");
}

/* The dtype of the unquantized projection weights ("bf16", "f16", "f32", or
 * "mixed float" when they differ). */
static const char *dense_word(const ss_checkpoint *ck) {
    int seen = -1;
    for (size_t i = 0; i < ss_checkpoint_count(ck); i++) {
        const ss_st_entry *e = ss_checkpoint_entry(ck, i);
        if (ss_tensor_role_of(e->name) != SS_ROLE_PROJ)
            continue;
        if (seen >= 0 && seen != (int)e->dtype)
            return "mixed float";
        seen = (int)e->dtype;
    }
    return seen == SS_DTYPE_F16 ? "f16" : seen == SS_DTYPE_F32 ? "f32" : "bf16";
}

static const char *weights_word(const ss_checkpoint *ck, const ss_model_config *c, char *buf, size_t n) {
    char pat[32];
    const char *dt = ss_dtype_name(c->weight_dtype), *sc = c->per_channel ? "per-channel" : "per-tensor";
    switch (c->kind) {
    case SS_WEIGHTS_BF16: snprintf(buf, n, "%s (dense original)", dense_word(ck)); break;
    case SS_WEIGHTS_QUANTIZED:
        snprintf(buf, n, "quantized %s, %s weight scales%s%s%s", dt, sc,
                 c->quant_source == SS_QUANT_SOURCE_COMPRESSED_TENSORS ? " (compressed-tensors " : "",
                 c->quant_source == SS_QUANT_SOURCE_COMPRESSED_TENSORS ? c->quant_format : "",
                 c->quant_source == SS_QUANT_SOURCE_COMPRESSED_TENSORS ? ", scales read as F32 [N])" : "");
        break;
    case SS_WEIGHTS_SLID:
        snprintf(buf, n, "slidesparse %s, %s%s%s", ss_pattern_format(c->pattern, pat, sizeof pat), dt,
                 c->weight_dtype == SS_DTYPE_BF16 ? "" : ", ",
                 c->weight_dtype == SS_DTYPE_BF16 ? "" : sc);
        break;
    }
    return buf;
}

static void print_config(const ss_checkpoint *ck) {
    const ss_model_config *c = ss_checkpoint_config(ck);
    char w[128];
    printf("checkpoint:   %s\n", ss_checkpoint_dir(ck));
    printf("architecture: %s (%s)\n", c->architecture, c->model_type[0] ? c->model_type : "-");
    printf("shape:        %d layers, hidden %d, intermediate %d, heads %d (kv %d) x %d, vocab %d\n",
           c->num_hidden_layers, c->hidden_size, c->intermediate_size, c->num_attention_heads,
           c->num_key_value_heads, c->head_dim, c->vocab_size);
    printf("weights:      %s\n", weights_word(ck, c, w, sizeof w));
}

static int is_projection(const ss_st_entry *e) {
    size_t n = strlen(e->name);
    const char *suffix = "_proj.weight";
    return e->ndim == 2 && n >= strlen(suffix) && strcmp(e->name + n - strlen(suffix), suffix) == 0 &&
           (e->dtype == SS_DTYPE_I8 || e->dtype == SS_DTYPE_F8_E4M3 || ss_dtype_is_dense_float(e->dtype));
}

static void print_row(const ss_st_entry *e, const ss_model_config *c, json_t *slid_tensors, int scan) {
    char shape[128] = "[", pat[16] = "-", v24[8] = "-", kcol[16] = "-", kpcol[16] = "-";
    size_t used = 1;
    for (int d = 0; d < e->ndim && used < sizeof shape; d++)
        used += (size_t)snprintf(shape + used, sizeof shape - used, "%s%lld", d ? ", " : "",
                                 (long long)e->shape[d]);
    if (used < sizeof shape)
        snprintf(shape + used, sizeof shape - used, "]");
    if (is_projection(e)) {
        int64_t n = e->shape[0], k = e->shape[1];
        int slid = c && c->kind == SS_WEIGHTS_SLID;
        if (slid) {
            snprintf(kpcol, sizeof kpcol, "%lld", (long long)k);
            json_t *kv = json_object_get(json_object_get(slid_tensors, e->name), "K");
            if (json_is_integer(kv))
                snprintf(kcol, sizeof kcol, "%lld", (long long)json_integer_value(kv));
        }
        if (scan) {
            if (slid) {
                ss_pattern_format(c->pattern, pat, sizeof pat); /* by construction */
            } else {
                int l = ss_detect_pattern_l(e->dtype, e->data, n, k);
                if (l)
                    snprintf(pat, sizeof pat, "2_%d", l);
                else
                    snprintf(pat, sizeof pat, "dense");
            }
            if (k % 4 == 0)
                snprintf(v24, sizeof v24, "%s", ss_check_24(e->dtype, e->data, n, k, NULL, NULL) ? "yes" : "no");
        }
    }
    printf("%-48s %-8s %-16s %12zu %-7s %-4s %7s %7s\n", e->name, ss_dtype_name(e->dtype), shape,
           e->nbytes, pat, v24, kcol, kpcol);
}

static void print_header(void) {
    printf("%-48s %-8s %-16s %12s %-7s %-4s %7s %7s\n", "tensor", "dtype", "shape", "bytes", "pattern",
           "2:4", "K", "K'");
}

int cmd_inspect(int argc, char **argv) {
    const char *target = NULL;
    int scan = 1;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "--help") || cli_flag(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (cli_flag(argv[i], "--no-scan"))
            scan = 0;
        else if (argv[i][0] == '-')
            return cli_error("inspect", "unknown option '%s' (see --help)", argv[i]);
        else if (target)
            return cli_error("inspect", "unexpected argument '%s': give one file or directory", argv[i]);
        else
            target = argv[i];
    }
    if (!target)
        return cli_error("inspect", "missing FILE or DIR (see --help)");
    struct stat st;
    if (stat(target, &st) != 0)
        return cli_error("inspect", "%s: no such file or directory", target);

    if (!S_ISDIR(st.st_mode)) {
        ss_safetensors *f;
        ss_status s = ss_safetensors_open(target, &f);
        if (s != SS_OK)
            return cli_lib_error("inspect", s);
        size_t total = 0;
        printf("file:         %s\n", target);
        const char *fmt = ss_safetensors_metadata(f, "format");
        if (fmt)
            printf("format:       %s\n", fmt);
        print_header();
        for (size_t i = 0; i < ss_safetensors_count(f); i++) {
            const ss_st_entry *e = ss_safetensors_entry(f, i);
            print_row(e, NULL, NULL, scan);
            total += e->nbytes;
        }
        printf("%zu tensors, %zu bytes\n", ss_safetensors_count(f), total);
        ss_safetensors_close(f);
        return 0;
    }

    ss_checkpoint *ck;
    ss_status s = ss_checkpoint_open(target, &ck);
    if (s != SS_OK)
        return cli_lib_error("inspect", s);
    const ss_model_config *c = ss_checkpoint_config(ck);
    /* K per slid tensor lives only in config.json's slidesparse block. */
    json_t *root = json_loads(ss_checkpoint_config_json(ck), 0, NULL);
    json_t *slid_tensors = json_object_get(json_object_get(root, "slidesparse"), "tensors");
    print_config(ck);
    print_header();
    size_t total = 0;
    for (size_t i = 0; i < ss_checkpoint_count(ck); i++) {
        const ss_st_entry *e = ss_checkpoint_entry(ck, i);
        print_row(e, c, slid_tensors, scan);
        total += e->nbytes;
    }
    printf("%zu tensors, %zu bytes\n", ss_checkpoint_count(ck), total);
    json_decref(root);
    ss_checkpoint_close(ck);
    return 0;
}
