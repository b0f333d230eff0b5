/* slidesparse demo — the embedded default: synthesize a tiny model, quantize it,
 * convert it to every pattern and prove every conversion lossless. Runs on the
 * CPU reference path in well under a minute; it is what README's first command
 * runs on a machine without a GPU. */
#include "cli.h"

#include <string.h>
#include <time.h>

static const char *const demo_patterns[] = {"2_4", "2_6", "2_8", "2_10", "2_12", "2_14", "2_16"};
#define N_DEMO_PATTERNS (int)(sizeof demo_patterns / sizeof demo_patterns[0])

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void usage(FILE *f) {
    fprintf(f, "usage: slidesparse demo [--out DIR] [--preset NAME] [--dtype int8|fp8] [--force]\n"
               "  synthesizes a tiny model (default tiny-bitnet) under DIR (default demo_out),\n"
               "  quantizes it, converts it to 2_4 ... 2_16 and verifies every conversion\n"
               "  (2:4 validity, unslide == pruned dense, slid linear == dense linear).\n"
               "  DIR is written as a whole: it must not exist, unless --force replaces it.\n"
               "  Exit 1 when any tensor fails verification.\n");
}

/* Counts and prints the failing rows of verify; quiet for passing ones. */
typedef struct {
    int rows, bad;
    double max_diff;
} verify_tally;

static void on_row(void *user, const ss_verify_row *r) {
    verify_tally *t = user;
    t->rows++;
    if (r->max_abs_diff > t->max_diff)
        t->max_diff = r->max_abs_diff;
    if (!(r->slide_ok && r->scale_ok && r->valid_24 && r->unslide_ok && r->linear_ok)) {
        t->bad++;
        fprintf(stderr, "  MISMATCH %s: %s\n", r->name, r->note ? r->note : "");
    }
}

/* -1 after printing the library's error (demo_steps' failure value). */
static int failed(ss_status s) {
    cli_lib_error("demo", s);
    return -1;
}

static int step(const char *what, ss_status s, double t0) {
    if (s != SS_OK)
        return cli_lib_error("demo", s);
    printf("  %-44s %6.2f s\n", what, now_s() - t0);
    return 0;
}

/* Synth, quantize, convert and verify inside tmp (the demo's temporary output
 * folder); `out` names the final folder in what is printed and recorded.
 * Returns the number of tensors that failed verification, or -1 after
 * printing an error. */
static int demo_steps(const char *tmp, const char *out, const char *preset, ss_dtype dt) {
    char base[1200], quant[1200], root[1200], source[1200];
    const char *qname = dt == SS_DTYPE_I8 ? "INT8" : "FP8";
    snprintf(base, sizeof base, "%s/%s", tmp, preset);
    snprintf(quant, sizeof quant, "%s/%s-%s", tmp, preset, qname);
    snprintf(root, sizeof root, "%s/checkpoints_slidesparse", tmp);
    snprintf(source, sizeof source, "%s/%s-%s", out, preset, qname);
    double t0 = now_s();
    ss_synth_opts so = {.preset = preset, .out_dir = base, .seed = 1};
    if (step("synth (BF16, HF layout)", ss_synth(&so), t0))
        return -1;
    t0 = now_s();
    ss_quantize_opts qo = {.in_dir = base, .out_dir = quant, .dtype = dt};
    if (step(dt == SS_DTYPE_I8 ? "quantize -> INT8 (task 1)" : "quantize -> FP8 (task 1)",
             ss_quantize_checkpoint(&qo), t0))
        return -1;

    ss_pattern pats[N_DEMO_PATTERNS];
    ss_status s;
    for (int i = 0; i < N_DEMO_PATTERNS; i++)
        if ((s = ss_pattern_parse(demo_patterns[i], &pats[i])) != SS_OK)
            return failed(s);
    t0 = now_s();
    ss_convert_opts co = {.in_dir = quant, .out_root = root, .patterns = pats,
                          .n_patterns = N_DEMO_PATTERNS, .dtype = SS_DTYPE_COUNT, .source = source};
    if (step("convert -> 2_4 ... 2_16 (task 2, one read)", ss_convert_checkpoint(&co), t0))
        return -1;

    printf("\n  %-7s %-7s %-8s %-10s %-9s %s\n", "pattern", "e", "ideal", "tensors", "verify", "max |diff|");
    int total_bad = 0;
    for (int i = 0; i < N_DEMO_PATTERNS; i++) {
        char slid[1400];
        if ((s = ss_convert_out_dir(quant, root, pats[i], slid, sizeof slid)) != SS_OK)
            return failed(s);
        verify_tally t = {0};
        int n_bad = 0;
        ss_verify_opts vo = {.dense_dir = quant, .slid_dir = slid, .linear_m = 4, .seed = 7,
                             .row = on_row, .user = &t};
        if ((s = ss_verify_checkpoint(&vo, &n_bad)) != SS_OK)
            return failed(s);
        total_bad += n_bad;
        printf("  %-7s %-7.3f %-8.3f %-10d %-9s %g\n", demo_patterns[i], ss_pattern_expansion(pats[i]),
               ss_pattern_ideal_speedup(pats[i]), t.rows, n_bad ? "FAIL" : "lossless", t.max_diff);
    }
    return total_bad;
}

int cmd_demo(int argc, char **argv) {
    const char *out = "demo_out", *preset = "tiny-bitnet", *dtype_s = "int8";
    int force = 0;
    const cli_option opts[] = {
        CLI_OPT("--out", &out), CLI_OPT("--preset", &preset), CLI_OPT("--dtype", &dtype_s),
        CLI_FLAG("--force", &force), CLI_END,
    };
    int parsed = cli_parse("demo", argc, argv, opts, usage);
    if (parsed)
        return parsed == CLI_HELP ? 0 : parsed;
    ss_dtype dt;
    if (strcmp(dtype_s, "int8") && strcmp(dtype_s, "fp8"))
        return cli_error("demo", "--dtype must be int8 or fp8, not '%s'", dtype_s) + 1;
    ss_status s = ss_dtype_parse(dtype_s, &dt);
    ss_model_config cfg;
    if (s != SS_OK || (s = ss_preset_config(preset, &cfg)) != SS_OK ||
        (s = ss_outdir_check_writable(out, "--out")) != SS_OK)
        return cli_lib_error("demo", s);

    /* Everything is written under one temporary folder that becomes --out only
     * when complete: a full disk or a kill leaves nothing behind. */
    char tmp[1024];
    if ((s = ss_outdir_begin(out, force, "checkpoints_slidesparse", tmp, sizeof tmp)) != SS_OK)
        return cli_lib_error("demo", s);
    printf("slidesparse demo: %s (%d layers, hidden %d, intermediate %d), %s, CPU reference path%s\n\n",
           preset, cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size, dtype_s,
           ss_cuda_device_count() > 0 ? " (a GPU is present: see README for the GPU benchmarks)" : "");
    int bad = demo_steps(tmp, out, preset, dt);
    if (bad < 0 || (s = ss_outdir_commit(tmp, out, force)) != SS_OK) {
        ss_outdir_abort(tmp);
        return bad < 0 ? 1 : cli_lib_error("demo", s);
    }
    printf("\noutputs under %s/ (inspect them with `slidesparse inspect DIR`)\n", out);
    if (bad) {
        fprintf(stderr, "slidesparse demo: %d tensor(s) failed verification\n", bad);
        return 1;
    }
    printf("demo: every pattern verified lossless\n");
    return 0;
}
