/* slidesparse quantize (task 1): BF16 / F16 / F32 checkpoint -> INT8 / FP8 checkpoint. */
#include "cli.h"

#include "prep_cli.h"
#include "slidesparse/prep.h"

static void usage(FILE *f) {
    fprintf(f, "usage: slidesparse quantize --model DIR --dtype int8|fp8 --out DIR [--force]\n"
               "  --model DIR: the BF16, F16 or F32 checkpoint; --out DIR: the quantized checkpoint (a new folder).\n"
               "  BitNet: ternary absmean per tensor; other models: per-channel absmax.\n"
               "  Embeddings, norms, biases and lm_head are copied (F16/F32 ones rounded to BF16).\n");
}

int cmd_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *dt = NULL;
    int force = 0;
    const cli_option opts[] = {
        CLI_OPT("--model", &in), CLI_OPT("--out", &out), CLI_OPT("--dtype", &dt),
        CLI_FLAG("--force", &force), CLI_ALIAS("--in", "--model"), CLI_END,
    };
    int parsed = cli_parse("quantize", argc, argv, opts, usage);
    if (parsed)
        return parsed == CLI_HELP ? 0 : parsed;
    if (!in || !out || !dt) {
        cli_error("quantize", "--model, --dtype and --out are required (see --help)");
        return 2;
    }
    ss_dtype dtype;
    if (ss_dtype_parse(dt, &dtype) != SS_OK || (dtype != SS_DTYPE_I8 && dtype != SS_DTYPE_F8_E4M3)) {
        cli_error("quantize", "--dtype '%s': expected int8 or fp8", dt);
        return 2;
    }
    prep_cli_progress pg;
    prep_cli_progress_init(&pg, "quantize");
    ss_quantize_opts o = {.in_dir = in, .out_dir = out, .dtype = dtype, .force = force,
                          .progress = prep_cli_progress_cb, .user = &pg};
    ss_status s = ss_quantize_checkpoint(&o);
    prep_cli_progress_done(&pg, s == SS_OK);
    if (s != SS_OK)
        return cli_lib_error("quantize", s);
    printf("quantize: %s -> %s (%s)\n", in, out, ss_dtype_name(dtype));
    return 0;
}
