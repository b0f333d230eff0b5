/* slidesparse generate: greedy generation from token ids with one checkpoint
 * on one backend; prints the ids, a hash of the last step's logits (so two
 * backends or checkpoints compare at a glance) and the speed. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slidesparse/engine.h"

#define MAX_PROMPT 65536

static void usage(FILE *f) {
    fprintf(f, "usage: slidesparse generate --model DIR --prompt-ids 1,2,3 --max-tokens N\n"
               "                            [--backend cpu|cublaslt|cusparselt] [--device I]\n"
               "  Greedy decoding. Prints the generated ids, the FNV-1a 64 hash of the last\n"
               "  step's logits (float bits) and tokens/s (prompt + generated tokens over the\n"
               "  time of prefill + decode; loading excluded).\n"
               "  cublaslt runs dense BF16/INT8/FP8 checkpoints, cusparselt SlideSparse ones,\n"
               "  cpu (default) all of them.\n");
}

/* "1,2,3" -> ids; 0 on junk, an empty list or more than MAX_PROMPT ids. */
static int parse_ids(const char *s, int32_t *ids, int64_t *n) {
    *n = 0;
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char tok[32];
        long long v;
        if (len == 0 || len >= sizeof tok || *n >= MAX_PROMPT)
            return 0;
        memcpy(tok, p, len);
        tok[len] = 0;
        if (!cli_parse_i64(tok, 0, INT32_MAX, &v))
            return 0;
        ids[(*n)++] = (int32_t)v;
        if (!comma)
            break;
        p = comma + 1;
        if (!*p)
            return 0; /* trailing comma */
    }
    return *n > 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *ids_s = NULL, *max_s = NULL, *backend_s = "cpu", *dev_s = NULL;
    const cli_option opts[] = {
        CLI_OPT("--model", &model), CLI_OPT("--prompt-ids", &ids_s),
        CLI_OPT("--max-tokens", &max_s), CLI_OPT("--backend", &backend_s),
        CLI_OPT("--device", &dev_s), CLI_END,
    };
    int parsed = cli_parse("generate", argc, argv, opts, usage);
    if (parsed)
        return parsed == CLI_HELP ? 0 : parsed;
    if (!model || !ids_s || !max_s) {
        cli_error("generate", "--model, --prompt-ids and --max-tokens are required (see --help)");
        return 2;
    }
    long long max_new, dev = 0;
    if (!cli_parse_i64(max_s, 1, 1 << 20, &max_new)) {
        cli_error("generate", "--max-tokens '%s': expected an integer in 1..%d", max_s, 1 << 20);
        return 2;
    }
    if (dev_s && !cli_parse_i64(dev_s, 0, 1024, &dev)) {
        cli_error("generate", "--device '%s': expected a CUDA device ordinal >= 0", dev_s);
        return 2;
    }
    ss_backend backend;
    if (ss_backend_parse(backend_s, &backend) != SS_OK) {
        cli_error("generate", "--backend '%s': expected cpu, cublaslt or cusparselt", backend_s);
        return 2;
    }
    int32_t *ids = malloc(MAX_PROMPT * sizeof *ids);
    int32_t *out = malloc((size_t)max_new * sizeof *out);
    int64_t n_ids = 0;
    int rc = 2;
    ss_context *ctx = NULL;
    ss_model *m = NULL;
    float *logits = NULL;
    if (!ids || !out) {
        rc = cli_error("generate", "out of memory");
        goto done;
    }
    if (!parse_ids(ids_s, ids, &n_ids)) {
        cli_error("generate", "--prompt-ids '%.64s': expected a non-empty comma-separated list of token ids (at most %d)",
                  ids_s, MAX_PROMPT);
        goto done;
    }
    /* Arguments that depend on the model are checked against config.json
     * before any weight is read. */
    char cfg_path[4096];
    ss_model_config cfg;
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", model);
    ss_status s = ss_model_config_load(cfg_path, &cfg);
    if (s != SS_OK) {
        rc = cli_lib_error("generate", s);
        goto done;
    }
    for (int64_t i = 0; i < n_ids; i++)
        if (ids[i] >= cfg.vocab_size) {
            cli_error("generate", "prompt id %d at index %lld is out of vocabulary (vocab_size %d)", (int)ids[i],
                      (long long)i, cfg.vocab_size);
            goto done;
        }
    if (n_ids + max_new > cfg.max_position_embeddings) {
        cli_error("generate", "%lld prompt + %lld new tokens exceed max_position_embeddings %d",
                  (long long)n_ids, max_new, cfg.max_position_embeddings);
        goto done;
    }
    char what[48];
    snprintf(what, sizeof what, "backend %s", ss_backend_name(backend));
    if ((s = ss_model_check_backend(model, &cfg, backend)) != SS_OK ||
        (s = ss_context_check_device(what, backend == SS_BACKEND_CPU ? -1 : (int)dev)) != SS_OK ||
        (s = ss_context_create(backend == SS_BACKEND_CPU ? -1 : (int)dev, &ctx)) != SS_OK ||
        (s = ss_model_load(ctx, backend, model, &m)) != SS_OK) {
        rc = cli_lib_error("generate", s);
        goto done;
    }
    logits = malloc((size_t)cfg.vocab_size * sizeof *logits);
    if (!logits) {
        rc = cli_error("generate", "out of memory");
        goto done;
    }
    double t0 = now_s();
    s = ss_generate_greedy(m, ids, n_ids, max_new, out, logits);
    double dt = now_s() - t0;
    if (s != SS_OK) {
        rc = cli_lib_error("generate", s);
        goto done;
    }
    printf("generated:");
    for (long long i = 0; i < max_new; i++)
        printf("%s%d", i ? "," : " ", (int)out[i]);
    printf("\nlogits hash: %016llx (FNV-1a 64 over %d floats of the last step)\n",
           (unsigned long long)ss_logits_hash(logits, cfg.vocab_size), cfg.vocab_size);
    printf("speed: %lld prompt + %lld generated tokens in %.3f s: %.1f tokens/s, %.2f ms/generated token (backend %s)\n",
           (long long)n_ids, max_new, dt, (double)(n_ids + max_new) / dt, 1e3 * dt / (double)max_new,
           ss_backend_name(backend));
    rc = 0;
done:
    ss_model_destroy(m);
    ss_context_destroy(ctx);
    free(ids);
    free(out);
    free(logits);
    return rc;
}
