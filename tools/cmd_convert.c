/* slidesparse convert (task 2): prune + slide to SlideSparse 2_L patterns. */
#include "cli.h"

#include <string.h>

#include "prep_cli.h"
#include "slidesparse/prep.h"

static void usage(FILE *f) {
    fprintf(f, "usage: slidesparse convert --model DIR --sparsity 2_4,2_6,2_8[,...] [--dtype int8|fp8]\n"
               "                           [--out DIR] [--force]\n"
               "  From a BF16, F16 or F32 checkpoint: quantizes (default int8) and prunes in one\n"
               "  pass, ties broken by the original values; from a quantized one: prunes its weights.\n"
               "  --sparsity LIST: patterns 2_L, even L >= 4 (or 6:8 style)\n"
               CLI_SPARSITY_HELP
               "  --out DIR: receives <basename(model)>-SlideSparse-2_L/ per pattern\n"
               "  (default checkpoints_slidesparse). The input is read once.\n");
}

/* "2_4,2_6" -> patterns; each must be 2_L with even L >= 4 (2_inf is for
 * benchmarks, never a checkpoint). */
static int parse_patterns(const char *list, ss_pattern *p, int *n) {
    char buf[512];
    if (strlen(list) >= sizeof buf) {
        cli_error("convert", "--sparsity: list too long");
        return 0;
    }
    strcpy(buf, list);
    *n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        ss_pattern q;
        if (ss_pattern_parse(t, &q) != SS_OK || q.z != 2 || q.l < 4 || q.l % 2) {
            cli_error("convert", "--sparsity: pattern '%s': expected 2_L with even L >= 4 (e.g. 2_8 or 6:8)", t);
            return 0;
        }
        if (*n == SS_PREP_MAX_PATTERNS) {
            cli_error("convert", "--sparsity: at most %d patterns", SS_PREP_MAX_PATTERNS);
            return 0;
        }
        for (int j = 0; j < *n; j++)
            if (p[j].l == q.l) {
                cli_error("convert", "--sparsity: pattern '%s' given twice", t);
                return 0;
            }
        p[(*n)++] = q;
    }
    if (*n == 0) {
        cli_error("convert", "--sparsity: empty pattern list");
        return 0;
    }
    return 1;
}

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *sp = NULL, *dt = NULL, *root = NULL;
    int force = 0;
    const cli_option opts[] = {
        CLI_OPT("--model", &in), CLI_OPT("--sparsity", &sp), CLI_OPT("--dtype", &dt),
        CLI_OPT("--out", &root), CLI_FLAG("--force", &force),
        CLI_ALIAS("--in", "--model"), CLI_ALIAS("--out-root", "--out"), CLI_END,
    };
    int parsed = cli_parse("convert", argc, argv, opts, usage);
    if (parsed)
        return parsed == CLI_HELP ? 0 : parsed;
    if (!in || !sp) {
        cli_error("convert", "--model and --sparsity are required (see --help)");
        return 2;
    }
    ss_pattern pats[SS_PREP_MAX_PATTERNS];
    int np = 0;
    if (!parse_patterns(sp, pats, &np))
        return 2;
    ss_dtype dtype = SS_DTYPE_COUNT;
    if (dt && (ss_dtype_parse(dt, &dtype) != SS_OK || (dtype != SS_DTYPE_I8 && dtype != SS_DTYPE_F8_E4M3))) {
        cli_error("convert", "--dtype '%s': expected int8 or fp8", dt);
        return 2;
    }
    prep_cli_progress pg;
    prep_cli_progress_init(&pg, "convert");
    ss_convert_opts o = {.in_dir = in, .out_root = root, .patterns = pats, .n_patterns = np,
                         .dtype = dtype, .force = force, .progress = prep_cli_progress_cb, .user = &pg};
    ss_status s = ss_convert_checkpoint(&o);
    prep_cli_progress_done(&pg, s == SS_OK);
    if (s != SS_OK)
        return cli_lib_error("convert", s);
    for (int i = 0; i < np; i++) {
        char dir[4096];
        if (ss_convert_out_dir(in, root, pats[i], dir, sizeof dir) == SS_OK)
            printf("convert: %s\n", dir);
    }
    return 0;
}
