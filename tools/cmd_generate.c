/* slidesparse generate: one prompt through one checkpoint on one backend.
 *   --prompt-ids: ids in, ids out, plus a hash of the last step's logits (so two
 *     backends or checkpoints compare at a glance) and the speed;
 *   --prompt: text in (through the model's tokenizer.json), text streamed to
 *     stdout as it is produced, until EOS, a stop string or --max-tokens.
 * Greedy unless --temperature > 0 (then top-k / top-p sampling, seeded). */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROMPT 65536
#define MAX_STOPS 16
#define DEFAULT_TEXT_TOKENS 256

static void usage(FILE *f) {
    fprintf(f, "usage: slidesparse generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [--max-tokens N]\n"
               "                            [--tokenizer FILE] [--chat] [--stop STRING]...\n"
               "                            [--temperature T] [--top-k K] [--top-p P] [--seed S]\n"
               "                            [--backend B] [--device I] [--kv-dtype bf16|fp8]\n"
               "  --prompt TEXT: encoded with DIR/tokenizer.json (or --tokenizer FILE); the generated\n"
               "    text goes to stdout as it is produced, then a newline; the speed to stderr.\n"
               "    Stops at an end-of-sequence id (config.json eos_token_id, one or a list), at a\n"
               "    --stop STRING (repeatable; the text stops before it) or after --max-tokens\n"
               "    (default: %d, or what the context has left).\n"
               "  --chat: wraps TEXT in the model family's user / assistant role markers (Llama 3,\n"
               "    Qwen2 ChatML, BitNet) when the tokenizer has them; the end of the turn also stops.\n"
               "  --prompt-ids: prints the generated ids, the FNV-1a 64 hash of the last step's logits\n"
               "    (float bits) and tokens/s (prompt + generated tokens over the time of prefill +\n"
               "    decode; loading excluded). --max-tokens is required and is the exact count.\n"
               "  Sampling: greedy at --temperature 0 (the default); above 0 the logits are divided by\n"
               "    T, cut to the --top-k most likely (0: all, the default) and to the smallest set\n"
               "    reaching --top-p of the probability (1: all, the default), and drawn with a\n"
               "    generator seeded by --seed (default: from the clock, printed on stderr).\n"
               "    The same seed, settings and backend give the same output.\n"
               "  --kv-dtype bf16|fp8 (default bf16): the KV cache's element type; fp8 stores e4m3 with a\n"
               "    scale per token and kv head (half the cache bytes; outputs may differ slightly).\n"
               CLI_BACKEND_HELP
               "                     (default cpu, which runs every checkpoint; auto and gpu: cusparselt\n"
               "                     for SlideSparse checkpoints, cublaslt for dense ones)\n",
               DEFAULT_TEXT_TOKENS);
}

typedef struct {
    const char *model, *ids, *prompt, *max, *backend, *device, *tokenizer, *kv_dtype;
    const char *temperature, *top_k, *top_p, *seed;
    int chat;
    const char *stops[MAX_STOPS];
    int n_stops;
} gen_args;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// --- arguments -------------------------------------------------------------------------

/* Moves every --stop STRING / --stop=STRING out of argv into a->stops (the
 * option parser keeps one value per option; this one repeats). 2 on error. */
static int take_stops(int *argc, char **argv, gen_args *a) {
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--stop") == 0) {
            if (i + 1 >= *argc) {
                cli_error("generate", "option --stop needs a value");
                return 2;
            }
            v = argv[++i];
        } else if (strncmp(argv[i], "--stop=", 7) == 0) {
            v = argv[i] + 7;
        } else {
            argv[out++] = argv[i];
            continue;
        }
        if (!*v || a->n_stops == MAX_STOPS) {
            cli_error("generate", "--stop: expected 1..%d non-empty strings", MAX_STOPS);
            return 2;
        }
        a->stops[a->n_stops++] = v;
    }
    *argc = out;
    return 0;
}

static int parse_float(const char *opt, const char *s, double lo, double hi, int lo_open, float *out) {
    char *end;
    double v = s && *s ? strtod(s, &end) : NAN;
    if (!s || !*s || *end || !isfinite(v) || v < lo || (lo_open && v == lo) || v > hi) {
        cli_error("generate", "%s '%s': expected a number in %s%g, %g]", opt, s ? s : "", lo_open ? "(" : "[", lo,
                  hi);
        return 0;
    }
    *out = (float)v;
    return 1;
}

/* The sampling options; *explicit_seed 0 when the seed came from the clock. */
static int parse_sampling(const gen_args *a, ss_sampling *p, int *explicit_seed) {
    long long k = 0, seed = 0;
    *p = (ss_sampling){.temperature = 0, .top_k = 0, .top_p = 1};
    if (a->temperature && !parse_float("--temperature", a->temperature, 0, 100, 0, &p->temperature))
        return 0;
    if (a->top_p && !parse_float("--top-p", a->top_p, 0, 1, 1, &p->top_p))
        return 0;
    if (a->top_k && !cli_parse_i64(a->top_k, 0, 1 << 24, &k)) {
        cli_error("generate", "--top-k '%s': expected an integer in 0..%d (0: no limit)", a->top_k, 1 << 24);
        return 0;
    }
    if (a->seed && !cli_parse_i64(a->seed, 0, INT64_MAX, &seed)) {
        cli_error("generate", "--seed '%s': expected an integer >= 0", a->seed);
        return 0;
    }
    p->top_k = (int32_t)k;
    *explicit_seed = a->seed != NULL;
    p->seed = a->seed ? (uint64_t)seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return 1;
}

/* The checks that need no file; 0 or 2 (after printing why). */
static int check_args(const gen_args *a, long long *max_new, long long *dev, cli_backend *backend) {
    if (!a->model || !a->ids == !a->prompt) {
        cli_error("generate", "give --model and exactly one of --prompt or --prompt-ids (see --help)");
        return 2;
    }
    if (a->ids && (a->chat || a->n_stops || a->tokenizer)) {
        cli_error("generate", "--chat, --stop and --tokenizer go with --prompt, not --prompt-ids");
        return 2;
    }
    if (a->ids && !a->max) {
        cli_error("generate", "--prompt-ids needs --max-tokens (see --help)");
        return 2;
    }
    *max_new = 0;
    if (a->max && !cli_parse_i64(a->max, 1, 1 << 20, max_new)) {
        cli_error("generate", "--max-tokens '%s': expected an integer in 1..%d", a->max, 1 << 20);
        return 2;
    }
    if (a->device && !cli_parse_i64(a->device, 0, 1024, dev)) {
        cli_error("generate", "--device '%s': expected a CUDA device ordinal >= 0", a->device);
        return 2;
    }
    if (!cli_backend_parse("generate", a->backend, backend))
        return 2;
    return 0;
}

// --- the prompt ---------------------------------------------------------------------------

typedef struct {
    ss_model_config cfg;
    ss_tokenizer *tok;   /* --prompt only */
    int32_t *ids;        // (n_ids) the prompt
    int64_t n_ids, max_new;
    int32_t stop_ids[SS_MAX_EOS_IDS + 1];
    int n_stop_ids;
} gen_input;

/* --prompt: the text (chat-wrapped) through the tokenizer, specials added;
 * the stop ids are EOS and the chat turn's end. */
static int encode_prompt(const gen_args *a, gen_input *in) {
    char *wrapped = NULL;
    int32_t eot = -1;
    const char *text = a->prompt;
    int rc = cli_load_tokenizer("generate", a->model, a->tokenizer, &in->tok);
    if (rc == 0 && a->chat)
        rc = cli_chat_prompt("generate", in->tok, in->cfg.model_type, text, &wrapped, &eot);
    if (wrapped)
        text = wrapped;
    if (rc == 0) {
        ss_status s = ss_tokenizer_encode(in->tok, text, strlen(text), 1, &in->ids, &in->n_ids);
        rc = s == SS_OK ? 0 : cli_lib_error("generate", s);
    }
    free(wrapped);
    for (int i = 0; i < in->cfg.n_eos_token_ids; i++)
        in->stop_ids[in->n_stop_ids++] = in->cfg.eos_token_ids[i];
    if (eot >= 0)
        in->stop_ids[in->n_stop_ids++] = eot;
    return rc;
}

/* Reads config.json and the prompt, and checks them against each other
 * before any weight is read. */
static int read_input(const gen_args *a, long long max_new, gen_input *in) {
    char cfg_path[4096];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", a->model);
    ss_status s = ss_model_config_load(cfg_path, &in->cfg);
    if (s != SS_OK)
        return cli_lib_error("generate", s);
    int rc = 0;
    if (a->prompt) {
        if ((rc = encode_prompt(a, in)) != 0)
            return rc;
    } else if (!(in->ids = malloc(MAX_PROMPT * sizeof *in->ids))) {
        return cli_error("generate", "out of memory");
    } else if (!cli_parse_ids(a->ids, in->ids, MAX_PROMPT, &in->n_ids)) {
        cli_error("generate", "--prompt-ids '%.64s': expected a non-empty comma-separated list of token ids "
                              "(at most %d)", a->ids, MAX_PROMPT);
        return 2;
    }
    if (in->n_ids == 0) {
        cli_error("generate", "the prompt encodes to no tokens");
        return 2;
    }
    for (int64_t i = 0; i < in->n_ids; i++)
        if (in->ids[i] >= in->cfg.vocab_size) {
            cli_error("generate", "prompt id %d at index %lld is out of vocabulary (vocab_size %d)", (int)in->ids[i],
                      (long long)i, in->cfg.vocab_size);
            return 2;
        }
    long long room = in->cfg.max_position_embeddings - in->n_ids;
    in->max_new = a->max ? max_new : (room < DEFAULT_TEXT_TOKENS ? room : DEFAULT_TEXT_TOKENS);
    if (in->max_new < 1 || in->n_ids + in->max_new > in->cfg.max_position_embeddings) {
        cli_error("generate", "%lld prompt + %lld new tokens exceed max_position_embeddings %d",
                  (long long)in->n_ids, (long long)(a->max ? max_new : 1), in->cfg.max_position_embeddings);
        return 2;
    }
    return 0;
}

// --- text output ----------------------------------------------------------------------------

/* The streaming chain: id -> text (characters whole) -> stop strings -> stdout. */
typedef struct {
    ss_detokenizer *detok;
    ss_stopper *stop;
    ss_status err;
    int stopped;
} text_out;

static void show(const char *s, size_t n) {
    fwrite(s, 1, n, stdout);
    fflush(stdout); /* streamed: a reader sees each piece as it is made */
}

static int text_piece(text_out *o, const char *s, size_t n) {
    const char *vis;
    size_t k;
    if ((o->err = ss_stopper_push(o->stop, s, n, &vis, &k, &o->stopped)) == SS_OK)
        show(vis, k);
    return o->err != SS_OK || o->stopped;
}

static int on_token(void *user, int32_t id) {
    text_out *o = user;
    const char *s;
    size_t n;
    if ((o->err = ss_detokenizer_push(o->detok, id, &s, &n)) != SS_OK)
        return 1;
    return text_piece(o, s, n);
}

/* What is still held at the end: an incomplete character, a tail that
 * looked like the start of a stop string. */
static void text_finish(text_out *o) {
    const char *s;
    size_t n;
    if (!o->stopped && o->err == SS_OK && (o->err = ss_detokenizer_finish(o->detok, &s, &n)) == SS_OK &&
        !text_piece(o, s, n)) {
        ss_stopper_finish(o->stop, &s, &n);
        show(s, n);
    }
    show("\n", 1);
}

// --- the command --------------------------------------------------------------------------

static void print_speed(FILE *f, const gen_input *in, int64_t n_out, double dt, ss_backend b) {
    fprintf(f, "speed: %lld prompt + %lld generated tokens in %.3f s: %.1f tokens/s, %.2f ms/generated token "
               "(backend %s)\n", (long long)in->n_ids, (long long)n_out, dt, (double)(in->n_ids + n_out) / dt,
            1e3 * dt / (double)n_out, ss_backend_name(b));
}

/* Runs the generation; prints ids (--prompt-ids) or streams text (--prompt). */
static int run(const gen_args *a, gen_input *in, ss_model *m, ss_sampler *sampler, ss_backend b) {
    int32_t *out = malloc((size_t)in->max_new * sizeof *out);
    float *logits = a->ids ? malloc((size_t)in->cfg.vocab_size * sizeof *logits) : NULL;
    text_out to = {.err = SS_OK};
    int rc = 0;
    int64_t n_out = 0;
    ss_generate_opts o = {.max_new = in->max_new, .sampler = sampler};
    if (!out || (a->ids && !logits)) {
        rc = cli_error("generate", "out of memory");
        goto done;
    }
    if (a->prompt) {
        ss_status s = ss_detokenizer_create(in->tok, 1, &to.detok);
        if (s == SS_OK)
            s = ss_stopper_create(a->stops, a->n_stops, &to.stop);
        if (s != SS_OK) {
            rc = cli_lib_error("generate", s);
            goto done;
        }
        o.stop_ids = in->stop_ids, o.n_stop_ids = in->n_stop_ids, o.on_token = on_token, o.user = &to;
    }
    double t0 = now_s();
    ss_status s = ss_generate(m, in->ids, in->n_ids, &o, out, &n_out, logits);
    double dt = now_s() - t0;
    if (s == SS_OK && a->prompt)
        text_finish(&to);
    if (s != SS_OK || (s = to.err) != SS_OK) {
        rc = cli_lib_error("generate", s);
        goto done;
    }
    if (a->prompt) {
        print_speed(stderr, in, n_out, dt, b);
        goto done;
    }
    printf("generated:");
    for (int64_t i = 0; i < n_out; i++)
        printf("%s%d", i ? "," : " ", (int)out[i]);
    printf("\nlogits hash: %016llx (FNV-1a 64 over %d floats of the last step)\n",
           (unsigned long long)ss_logits_hash(logits, in->cfg.vocab_size), in->cfg.vocab_size);
    print_speed(stdout, in, n_out, dt, b);
done:
    ss_detokenizer_destroy(to.detok);
    ss_stopper_destroy(to.stop);
    free(out);
    free(logits);
    return rc;
}

int cmd_generate(int argc, char **argv) {
    gen_args a = {.backend = "cpu"};
    const cli_option opts[] = {
        CLI_OPT("--model", &a.model), CLI_OPT("--prompt-ids", &a.ids), CLI_OPT("--prompt", &a.prompt),
        CLI_OPT("--max-tokens", &a.max), CLI_OPT("--backend", &a.backend), CLI_OPT("--device", &a.device),
        CLI_OPT("--tokenizer", &a.tokenizer), CLI_FLAG("--chat", &a.chat),
        CLI_OPT("--temperature", &a.temperature), CLI_OPT("--top-k", &a.top_k), CLI_OPT("--top-p", &a.top_p),
        CLI_OPT("--seed", &a.seed), CLI_OPT("--kv-dtype", &a.kv_dtype), CLI_END,
    };
    int rc = take_stops(&argc, argv, &a);
    if (rc)
        return rc;
    int parsed = cli_parse("generate", argc, argv, opts, usage);
    if (parsed)
        return parsed == CLI_HELP ? 0 : parsed;
    long long max_new, dev = 0;
    cli_backend be;
    ss_sampling sp;
    int explicit_seed;
    if ((rc = check_args(&a, &max_new, &dev, &be)) != 0)
        return rc;
    if (!parse_sampling(&a, &sp, &explicit_seed))
        return 2;
    ss_kv_dtype kvd = SS_KV_DTYPE_BF16;
    if (a.kv_dtype && ss_kv_dtype_parse(a.kv_dtype, &kvd) != SS_OK) {
        cli_error("generate", "--kv-dtype '%.64s': expected bf16 or fp8", a.kv_dtype);
        return 2;
    }
    gen_input in = {0};
    ss_context *ctx = NULL;
    ss_model *m = NULL;
    ss_sampler *sampler = NULL;
    ss_status s;
    if ((rc = read_input(&a, max_new, &in)) != 0)
        goto done;
    ss_backend backend = cli_backend_for_model(&be, in.cfg.kind == SS_WEIGHTS_SLID);
    if ((s = cli_check_backend(a.model, &in.cfg, backend, dev)) != SS_OK ||
        (sp.temperature > 0 && (s = ss_sampler_create(&sp, in.cfg.vocab_size, &sampler)) != SS_OK) ||
        (s = ss_context_create(cli_device_for(backend, dev), &ctx)) != SS_OK ||
        (s = ss_context_set_tuning(ctx, NULL, NULL, NULL)) != SS_OK || /* $SS_TUNING_DIR */
        (s = ss_model_load(ctx, backend, a.model, &m)) != SS_OK) {
        rc = cli_lib_error("generate", s);
        goto done;
    }
    ss_model_set_kv_dtype(m, kvd);
    if (sampler && !explicit_seed)
        fprintf(stderr, "seed: %llu (give --seed to repeat this output)\n", (unsigned long long)sp.seed);
    rc = run(&a, &in, m, sampler, backend);
done:
    ss_sampler_destroy(sampler);
    ss_model_destroy(m);
    ss_context_destroy(ctx);
    ss_tokenizer_destroy(in.tok);
    free(in.ids);
    return rc;
}
