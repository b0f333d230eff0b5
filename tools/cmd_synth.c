/* slidesparse synth: an HF-layout BF16 checkpoint with random weights. */
#include "cli.h"

#include <string.h>

#include "prep_cli.h"
#include "slidesparse/prep.h"

static void usage(FILE *f) {
    fprintf(f, "usage: slidesparse synth --preset NAME --out DIR [--seed S] [--force]\n"
               "  writes config.json + safetensors (BF16, random weights of realistic scale)\n"
               "  presets:");
    for (int i = 0; i < ss_preset_count(); i++)
        fprintf(f, " %s", ss_preset_name(i));
    fprintf(f, "\n");
}

int cmd_synth(int argc, char **argv) {
    const char *preset = NULL, *out = NULL, *seed_s = NULL;
    int force = 0;
    const cli_option opts[] = {
        CLI_OPT("--preset", &preset), CLI_OPT("--out", &out), CLI_OPT("--seed", &seed_s),
        CLI_FLAG("--force", &force), CLI_END,
    };
    int parsed = cli_parse("synth", argc, argv, opts, usage);
    if (parsed)
        return parsed == CLI_HELP ? 0 : parsed;
    if (!preset || !out) {
        cli_error("synth", "--preset and --out are required (see --help)");
        return 2;
    }
    long long seed = 0;
    if (seed_s && !cli_parse_i64(seed_s, 0, INT64_MAX, &seed)) {
        cli_error("synth", "--seed '%s': expected a non-negative integer", seed_s);
        return 2;
    }
    ss_model_config cfg;
    ss_status s = ss_preset_config(preset, &cfg);
    if (s != SS_OK)
        return cli_lib_error("synth", s);
    prep_cli_progress pg;
    prep_cli_progress_init(&pg, "synth");
    ss_synth_opts o = {.preset = preset, .out_dir = out, .seed = (uint64_t)seed, .force = force,
                       .progress = prep_cli_progress_cb, .user = &pg};
    s = ss_synth(&o);
    prep_cli_progress_done(&pg, s == SS_OK);
    if (s != SS_OK)
        return cli_lib_error("synth", s);
    printf("synth: %s -> %s\n", preset, out);
    return 0;
}
