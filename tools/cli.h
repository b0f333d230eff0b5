/* Shared pieces of the slidesparse command-line program. The CLI parses
 * arguments, calls the library and prints; it is the only place that exits. */
#ifndef SS_CLI_H
#define SS_CLI_H

#include <stdio.h>
#include "slidesparse.h"

/* One subcommand: argv[0] is the command name. Returns the process exit code. */
typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} ss_cli_command;

/* Prints "slidesparse <cmd>: <message>" on stderr (one line). Returns 1. */
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "slidesparse <cmd>: <ss_last_error()>" and returns 1 (2 for SS_EINVAL). */
int cli_lib_error(const char *cmd, ss_status s);

/* Option parsing: `--name value` or `--name=value`. Returns 1 and sets *val
 * when argv[*i] is that option (advancing *i past a separate value). A
 * missing value prints an error and sets *bad. */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **val, int *bad);
/* `--flag`: returns 1 when argv[i] is that flag. */
int cli_flag(const char *arg, const char *name);
/* One option of a subcommand: `--name VALUE` / `--name=VALUE` (cli_opt) stores
 * VALUE in *val; a flag (val NULL) sets *flag to 1. An alias is an earlier
 * spelling of another option of the same table: it sets what that option sets
 * and prints "slidesparse <cmd>: --old is deprecated, use --new" on stderr. */
typedef struct {
    const char *name;
    const char **val;
    int *flag;
    const char *alias_of;
} cli_option;

#define CLI_OPT(name, val) {(name), (val), NULL, NULL}
#define CLI_FLAG(name, flag) {(name), NULL, (flag), NULL}
#define CLI_ALIAS(old, name) {(old), NULL, NULL, (name)}
#define CLI_END {NULL, NULL, NULL, NULL}

#define CLI_HELP (-1)
/* Parses argv[1..] against opts (ended by CLI_END): 0 when every argument was
 * one of them; CLI_HELP at --help / -h, after usage(stdout) when usage is not
 * NULL (the command then exits 0); 2 after printing why (an option without its
 * value, or "slidesparse <cmd>: unexpected argument '...' (see --help)"). */
int cli_parse(const char *cmd, int argc, char **argv, const cli_option *opts,
              void (*usage)(FILE *f));
/* --backend: one value set and one help text for every command that has it.
 * auto: a GPU when one is visible, else the CPU; gpu: a GPU (an error without
 * one); cpu: the CPU reference; a GEMM library names the GPU backend itself.
 * Each command's help adds what it does by default and with a library name. */
#define CLI_BACKEND_VALUES "auto|gpu|cpu|cublaslt|cusparselt|sm90sp|sm90dense"
#define CLI_BACKEND_HELP                                                                         \
    "  --backend B        auto (a GPU when one is visible, else cpu), gpu, cpu, or a GEMM\n"      \
    "                     library on the GPU: cublaslt, cusparselt, sm90sp, sm90dense\n"
typedef struct {
    int gpu;     /* 1 GPU, 0 CPU, -1 auto (decided by ss_cuda_device_count) */
    int library; /* an ss_backend named by the value; -1 for auto / gpu */
} cli_backend;
/* NULL (the option not given) is auto. 0 after printing
 * "slidesparse <cmd>: --backend 'x': expected auto, gpu, cpu, ...". */
int cli_backend_parse(const char *cmd, const char *s, cli_backend *out);
/* The engine backend for a checkpoint (slid: a SlideSparse one): the library
 * when one was named; otherwise on a GPU cusparselt for slid checkpoints and
 * cublaslt for dense ones, else cpu. */
ss_backend cli_backend_for_model(const cli_backend *b, int slid);
/* The CUDA ordinal a context for backend b takes: -1 on the CPU backend. */
static inline int cli_device_for(ss_backend b, long long dev) { return b == SS_BACKEND_CPU ? -1 : (int)dev; }
/* Before any weight is read: the checkpoint at dir (config c) can run on b,
 * and b's device exists ("no CUDA device: backend cublaslt needs a GPU"). */
ss_status cli_check_backend(const char *dir, const ss_model_config *c, ss_backend b, long long dev);

/* --sparsity: the help line of every command that takes patterns. */
#define CLI_SPARSITY_HELP                                                                        \
    "  2_L: at least 2 zeros in every L consecutive weights (even L >= 4); the N:M spelling\n"    \
    "  (L-2):L names the same pattern by its kept weights (6:8 = 2_8, 2:4 = 2_4)\n"

/* SIGINT / SIGTERM / SIGHUP remove the temporary outputs being written before
 * the process ends; SIGBUS in a mapped input says which file changed
 * (tools/signals.c). Called once, before any command runs. */
void cli_signals_install(void);

/* Strict integer parsing (whole string, range). Returns 0 on error. */
int cli_parse_i64(const char *s, long long lo, long long hi, long long *out);
/* "1,2,3" -> ids (at most max, each in 0..INT32_MAX); 0 on junk, an empty
 * list, a trailing comma or more than max ids. */
int cli_parse_ids(const char *s, int32_t *ids, int64_t max, int64_t *n);


/* Text commands (text_cli.c). Each prints one line on failure and returns
 * the exit code (0: success). */
/* Loads `file`, else DIR/tokenizer.json (2 when DIR has none). */
int cli_load_tokenizer(const char *cmd, const char *dir, const char *file, ss_tokenizer **out);
/* *wrapped: text in the role markers of the tokenizer's chat format (BitNet's
 * when model_type is "bitnet"); *eot the id that ends the assistant's turn.
 * 2 when the tokenizer has no markers. */
int cli_chat_prompt(const char *cmd, const ss_tokenizer *t, const char *model_type, const char *text,
                    char **wrapped, int32_t *eot);

int cmd_version(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_tune(int, char**); int cmd_bench(int, char**);
/* bench prefill / bench decode (cmd_bench_throughput.c). */
int cmd_bench_prefill(int argc, char **argv);
int cmd_bench_decode(int argc, char **argv);
int cmd_generate(int, char **);
int cmd_tokenize(int, char **);
int cmd_eval(int, char **);
/* serve: the OpenAI-compatible HTTP server (cmd_serve.c; needs libmicrohttpd). */
int cmd_serve(int, char **);
int cmd_run_all(int, char**); int cmd_report(int, char**);

#endif
