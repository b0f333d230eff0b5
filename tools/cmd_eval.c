/* slidesparse eval: teacher-forced perplexity of a checkpoint on a text (or
 * on token ids), so a pruned / slid checkpoint can be compared with its dense
 * source on the same tokens. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_INPUT_BYTES (256ll << 20)

static void usage(FILE *f) {
    fprintf(f, "usage: slidesparse eval --model DIR (--text FILE | --ids FILE) [--tokenizer FILE]\n"
               "                        [--context N] [--stride N] [--max-tokens N] [--backend B] [--device I]\n"
               "                        [--kv-dtype bf16|fp8]\n"
               "  Teacher-forced perplexity: exp of the mean negative log-likelihood of each next token.\n"
               "  --text FILE: UTF-8 text, encoded with DIR/tokenizer.json (or --tokenizer FILE), special\n"
               "    tokens added (Llama 3's <|begin_of_text|>).\n"
               "  --ids FILE: token ids separated by commas or whitespace, used as they are.\n"
               "  --context N: tokens per window, 2..max_position_embeddings (default: the smaller of\n"
               "    max_position_embeddings and 512). Each window starts from an empty cache; its first\n"
               "    token is context only.\n"
               "  --stride N: a new window every N tokens, 1..context (default: context, windows that do\n"
               "    not overlap); a window scores only the tokens no earlier window scored.\n"
               "  --max-tokens N: evaluate only the first N tokens (>= 2).\n"
               "  --kv-dtype bf16|fp8 (default bf16): the KV cache's element type (fp8: e4m3 with a scale\n"
               "    per token and kv head); run both to see what the FP8 cache costs.\n"
               "  Prints: perplexity P over T tokens (mean NLL X nats) — model DIR, backend B[, kv fp8]\n"
               CLI_BACKEND_HELP
               "                     (default cpu; auto and gpu: cusparselt for SlideSparse checkpoints,\n"
               "                     cublaslt for dense ones)\n");
}

typedef struct {
    const char *model, *text, *ids, *tokenizer, *context, *stride, *max, *backend, *device, *kv_dtype;
} eval_args;

/* The checks that need no file; 0 or 2 (after printing why). */
static int check_args(const eval_args *a, long long *ctx, long long *stride, long long *max, long long *dev,
                      cli_backend *be) {
    if (!a->model || !a->text == !a->ids) {
        cli_error("eval", "give --model and exactly one of --text or --ids (see --help)");
        return 2;
    }
    if (a->ids && a->tokenizer) {
        cli_error("eval", "--tokenizer goes with --text, not --ids");
        return 2;
    }
    if (a->context && !cli_parse_i64(a->context, 2, 1 << 24, ctx)) {
        cli_error("eval", "--context '%s': expected an integer >= 2 (tokens per window)", a->context);
        return 2;
    }
    if (a->stride && !cli_parse_i64(a->stride, 1, 1 << 24, stride)) {
        cli_error("eval", "--stride '%s': expected an integer >= 1", a->stride);
        return 2;
    }
    if (a->context && a->stride && *stride > *ctx) {
        cli_error("eval", "--stride %lld is larger than --context %lld (tokens would be skipped)", *stride, *ctx);
        return 2;
    }
    if (a->max && !cli_parse_i64(a->max, 2, INT32_MAX, max)) {
        cli_error("eval", "--max-tokens '%s': expected an integer >= 2", a->max);
        return 2;
    }
    if (a->device && !cli_parse_i64(a->device, 0, 1024, dev)) {
        cli_error("eval", "--device '%s': expected a CUDA device ordinal >= 0", a->device);
        return 2;
    }
    return cli_backend_parse("eval", a->backend, be) ? 0 : 2;
}

/* The whole of a regular file, NUL-terminated; 1 after naming the file. */
static int read_all(const char *path, char **buf, size_t *len) {
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cli_error("eval", "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_INPUT_BYTES) {
        fclose(f);
        return cli_error("eval", "%s: expected a regular file of at most %lld bytes", path, MAX_INPUT_BYTES);
    }
    *buf = malloc((size_t)st.st_size + 1);
    *len = *buf ? fread(*buf, 1, (size_t)st.st_size, f) : 0;
    int bad = !*buf || *len != (size_t)st.st_size || ferror(f);
    fclose(f);
    if (bad)
        return cli_error("eval", "%s: %s", path, *buf ? "input changed while reading" : "out of memory");
    (*buf)[*len] = 0;
    return 0;
}

/* "1, 2 3\n4" -> ids; 2 after naming the file and the first bad entry. */
static int parse_id_file(const char *path, const char *s, int32_t **ids, int64_t *n) {
    int64_t cap = 0;
    *n = 0;
    for (const char *p = s;;) {
        while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (!*p)
            break;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX ||
            (*end && *end != ',' && *end != ' ' && *end != '\t' && *end != '\n' && *end != '\r')) {
            int len = (int)strcspn(p, ", \t\r\n");
            cli_error("eval", "%s: entry %lld '%.*s': expected token ids (integers >= 0) separated by commas "
                      "or whitespace", path, (long long)*n + 1, len < 16 ? len : 16, p);
            return 2;
        }
        if (*n == cap) {
            int32_t *g = realloc(*ids, (size_t)(cap = cap ? 2 * cap : 1024) * sizeof *g);
            if (!g)
                return cli_error("eval", "out of memory");
            *ids = g;
        }
        (*ids)[(*n)++] = (int32_t)v;
        p = end;
    }
    return 0;
}

/* The ids to evaluate, from --text (tokenized) or --ids. */
static int read_ids(const eval_args *a, int32_t **ids, int64_t *n) {
    char *buf = NULL;
    size_t len = 0;
    ss_tokenizer *tok = NULL;
    int rc = read_all(a->text ? a->text : a->ids, &buf, &len);
    if (rc == 0 && a->ids)
        rc = parse_id_file(a->ids, buf, ids, n);
    if (rc == 0 && a->text && (rc = cli_load_tokenizer("eval", a->model, a->tokenizer, &tok)) == 0) {
        ss_status s = ss_tokenizer_encode(tok, buf, len, 1, ids, n);
        if (s != SS_OK)
            rc = cli_lib_error("eval", s);
    }
    ss_tokenizer_destroy(tok);
    free(buf);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    eval_args a = {.backend = "cpu"};
    const cli_option opts[] = {
        CLI_OPT("--model", &a.model), CLI_OPT("--text", &a.text), CLI_OPT("--ids", &a.ids),
        CLI_OPT("--tokenizer", &a.tokenizer), CLI_OPT("--context", &a.context), CLI_OPT("--stride", &a.stride),
        CLI_OPT("--max-tokens", &a.max), CLI_OPT("--backend", &a.backend), CLI_OPT("--device", &a.device),
        CLI_OPT("--kv-dtype", &a.kv_dtype), CLI_END,
    };
    int rc = cli_parse("eval", argc, argv, opts, usage);
    if (rc)
        return rc == CLI_HELP ? 0 : rc;
    long long ctx = 0, stride = 0, max = 0, dev = 0;
    cli_backend be;
    if ((rc = check_args(&a, &ctx, &stride, &max, &dev, &be)) != 0)
        return rc;
    ss_kv_dtype kvd = SS_KV_DTYPE_BF16;
    if (a.kv_dtype && ss_kv_dtype_parse(a.kv_dtype, &kvd) != SS_OK) {
        cli_error("eval", "--kv-dtype '%.64s': expected bf16 or fp8", a.kv_dtype);
        return 2;
    }
    ss_model_config cfg;
    char cfg_path[4096];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", a.model);
    ss_status s = ss_model_config_load(cfg_path, &cfg);
    if (s != SS_OK)
        return cli_lib_error("eval", s);
    if (ctx > cfg.max_position_embeddings) {
        cli_error("eval", "--context %lld exceeds max_position_embeddings %d of %s", ctx,
                  cfg.max_position_embeddings, a.model);
        return 2;
    }
    int32_t *ids = NULL;
    int64_t n = 0;
    ss_context *sc = NULL;
    ss_model *m = NULL;
    if ((rc = read_ids(&a, &ids, &n)) != 0)
        goto done;
    if (max && n > max)
        n = max;
    if (n < 2) {
        rc = cli_error("eval", "%s gives %lld token(s); at least 2 are needed", a.text ? a.text : a.ids,
                       (long long)n) + 1;
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        if (ids[i] >= cfg.vocab_size) { /* before any weight is read */
            rc = cli_error("eval", "id %d at index %lld is out of vocabulary (vocab_size %d of %s)", (int)ids[i],
                           (long long)i, cfg.vocab_size, a.model) + 1;
            goto done;
        }
    ss_backend backend = cli_backend_for_model(&be, cfg.kind == SS_WEIGHTS_SLID);
    ss_eval_opts eo = {.context = ctx, .stride = stride};
    ss_eval_result r;
    if ((s = cli_check_backend(a.model, &cfg, backend, dev)) != SS_OK ||
        (s = ss_context_create(cli_device_for(backend, dev), &sc)) != SS_OK ||
        (s = ss_context_set_tuning(sc, NULL, NULL, NULL)) != SS_OK || /* $SS_TUNING_DIR */
        (s = ss_model_load(sc, backend, a.model, &m)) != SS_OK ||
        (ss_model_set_kv_dtype(m, kvd), (s = ss_eval_perplexity(m, ids, n, &eo, &r)) != SS_OK)) {
        rc = cli_lib_error("eval", s);
        goto done;
    }
    printf("perplexity %.4f over %lld tokens (mean NLL %.6f nats) \xe2\x80\x94 model %s, backend %s%s\n",
           r.perplexity, (long long)r.n_tokens, r.mean_nll, a.model, ss_backend_name(backend),
           kvd == SS_KV_DTYPE_FP8 ? ", kv fp8" : "");
done:
    ss_model_destroy(m);
    ss_context_destroy(sc);
    free(ids);
    return rc;
}
