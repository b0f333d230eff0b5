/* slidesparse — the command-line program: dispatches to tools/cmd_*.c. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const ss_cli_command commands[] = {
    {"demo", "build a tiny checkpoint, quantize, slide every pattern, prove it lossless", cmd_demo},
    {"synth", "write an HF-layout BF16 checkpoint with random weights (--preset)", cmd_synth},
    {"quantize", "BF16 / F16 / F32 checkpoint -> INT8 / FP8 checkpoint (task 1)", cmd_quantize},
    {"convert", "prune + slide a checkpoint to SlideSparse 2_L patterns (task 2)", cmd_convert},
    {"verify", "check a SlideSparse checkpoint against its dense source, exit 1 on mismatch", cmd_verify},
    {"generate", "text or token ids in, text (streamed) or ids out; greedy or sampled", cmd_generate},
    {"eval", "perplexity of a checkpoint on a text: what pruning costs against the dense model", cmd_eval},
    {"serve", "an OpenAI-compatible HTTP server (completions, chat, streaming) over continuous batching",
     cmd_serve},
    {"tokenize", "text -> token ids, or ids -> text, with a model's tokenizer.json", cmd_tokenize},
    {"tune", "search the fastest GEMM algorithms for a model's shapes (task 3)", cmd_tune},
    {"bench", "kernel|prefill|decode: GEMM / linear latency (tasks 6-8), engine throughput (tasks 4, 5)", cmd_bench},
    {"run-all", "the whole pipeline (tasks 1-9): log, status JSON, report with plots", cmd_run_all},
    {"report", "regenerate the run-all report from a results folder", cmd_report},
    {"inspect", "list tensors, dtypes, shapes and detected Z:L pattern of a file or directory", cmd_inspect},
    {"version", "print versions of slidesparse and the libraries it was built with", cmd_version},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

int cli_error(const char *cmd, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "slidesparse %s: %s\n", cmd, msg);
    return 1;
}

int cli_lib_error(const char *cmd, ss_status s) {
    fprintf(stderr, "slidesparse %s: %s\n", cmd, ss_last_error()[0] ? ss_last_error() : ss_status_name(s));
    return s == SS_EINVAL ? 2 : 1;
}

int cli_opt(int argc, char **argv, int *i, const char *name, const char **val, int *bad) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "slidesparse: option %s needs a value\n", name);
        *bad = 1;
        return 1;
    }
    *val = argv[++*i];
    return 1;
}

int cli_flag(const char *arg, const char *name) { return strcmp(arg, name) == 0; }

int cli_parse(const char *cmd, int argc, char **argv, const cli_option *opts,
              void (*usage)(FILE *f)) {
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "--help") || cli_flag(argv[i], "-h")) {
            if (usage)
                usage(stdout);
            return CLI_HELP;
        }
        int bad = 0, matched = 0;
        for (const cli_option *o = opts; o->name && !matched; o++) {
            const cli_option *t = o;
            if (o->alias_of) /* the option it spells the old way */
                for (t = opts; t->name && (t->alias_of || strcmp(t->name, o->alias_of)); t++)
                    ;
            if (!t->name)
                continue;
            if (t->val)
                matched = cli_opt(argc, argv, &i, o->name, t->val, &bad);
            else if ((matched = cli_flag(argv[i], o->name)))
                *t->flag = 1;
            if (matched && o->alias_of)
                cli_error(cmd, "%s is deprecated, use %s", o->name, t->name);
        }
        if (bad)
            return 2;
        if (!matched)
            return cli_error(cmd, "unexpected argument '%s' (see --help)", argv[i]) + 1;
    }
    return 0;
}

int cli_backend_parse(const char *cmd, const char *s, cli_backend *out) {
    ss_backend b;
    *out = (cli_backend){-1, -1};
    if (!s || !strcmp(s, "auto"))
        return 1;
    if (!strcmp(s, "gpu")) {
        out->gpu = 1;
        return 1;
    }
    if (ss_backend_parse(s, &b) != SS_OK) {
        ss_clear_error();
        return !cli_error(cmd, "--backend '%s': expected auto, gpu, cpu, cublaslt, cusparselt, sm90sp or sm90dense", s);
    }
    out->gpu = b != SS_BACKEND_CPU;
    out->library = (int)b;
    return 1;
}

ss_backend cli_backend_for_model(const cli_backend *b, int slid) {
    if (b->library >= 0)
        return (ss_backend)b->library;
    if (b->gpu == 0 || (b->gpu < 0 && ss_cuda_device_count() <= 0))
        return SS_BACKEND_CPU;
    return slid ? SS_BACKEND_CUSPARSELT : SS_BACKEND_CUBLASLT;
}

ss_status cli_check_backend(const char *dir, const ss_model_config *c, ss_backend b, long long dev) {
    char what[48];
    snprintf(what, sizeof what, "backend %s", ss_backend_name(b));
    ss_status s = ss_model_check_backend(dir, c, b);
    return s != SS_OK ? s : ss_context_check_device(what, cli_device_for(b, dev));
}

int cli_parse_i64(const char *s, long long lo, long long hi, long long *out) {
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

int cli_parse_ids(const char *s, int32_t *ids, int64_t max, int64_t *n) {
    *n = 0;
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char tok[32];
        long long v;
        if (len == 0 || len >= sizeof tok || *n >= max)
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

static void usage(FILE *f) {
    fprintf(f, "usage: slidesparse <command> [options]   (slidesparse <command> --help)\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (cli_flag(argv[1], "--help") || cli_flag(argv[1], "-h") || cli_flag(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (cli_flag(argv[1], "--version"))
        return cmd_version(argc - 1, argv + 1);
    cli_signals_install();
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "slidesparse: unknown command '%s' (see slidesparse --help)\n", argv[1]);
    return 2;
}
