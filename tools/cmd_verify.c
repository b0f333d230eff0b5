/* slidesparse verify: prove a SlideSparse checkpoint lossless against its
 * dense source; exit 1 on any mismatch. */
#include "cli.h"

#include <string.h>

#include "slidesparse/prep.h"

static void usage(FILE *f) {
    fprintf(f, "usage: slidesparse verify DENSE_DIR SLID_DIR [--linear-rows N] [--tokens M] [--seed S]\n"
               "  re-derives every slid tensor from the dense one (quantize if BF16, prune, slide) and\n"
               "  checks: bytes equal, 2:4-valid, unslide == pruned dense, slid linear == dense linear\n"
               "  (CPU ss_linear on M random tokens, first N rows; default N = 1024, 0 = all rows).\n"
               "  DENSE_DIR is the checkpoint SLID_DIR was converted from (or its BF16 source).\n"
               "  Prints one line per projection; exit 1 on any mismatch.\n");
}

typedef struct {
    int lines;
} table;

static const char *mark(int ok) { return ok ? "ok" : "FAIL"; }

static void row(void *user, const ss_verify_row *r) {
    table *t = user;
    if (t->lines++ == 0)
        printf("%-44s %6s %6s %6s  %-5s %-5s %-5s %-7s %-6s %s\n", "tensor", "N", "K", "K'", "slide",
               "scale", "2:4", "unslide", "linear", "note");
    printf("%-44s %6lld %6lld %6lld  %-5s %-5s %-5s %-7s %-6s %s\n", r->name, (long long)r->n,
           (long long)r->k, (long long)r->k_slid, mark(r->slide_ok), mark(r->scale_ok),
           mark(r->valid_24), mark(r->unslide_ok), mark(r->linear_ok), r->note ? r->note : "");
    if (!r->linear_ok)
        printf("%-44s max |y_slid - y_dense| = %g\n", "", r->max_abs_diff);
}

int cmd_verify(int argc, char **argv) {
    const char *dirs[2] = {NULL, NULL}, *rows_s = NULL, *m_s = NULL, *seed_s = NULL;
    int nd = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "--help") || cli_flag(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--linear-rows", &rows_s, &bad) ||
            cli_opt(argc, argv, &i, "--tokens", &m_s, &bad) || cli_opt(argc, argv, &i, "--seed", &seed_s, &bad)) {
            if (bad)
                return 2;
            continue;
        }
        if (argv[i][0] == '-' || nd == 2) {
            cli_error("verify", "unexpected argument '%s' (see --help)", argv[i]);
            return 2;
        }
        dirs[nd++] = argv[i];
    }
    if (nd != 2) {
        cli_error("verify", "expected DENSE_DIR and SLID_DIR (see --help)");
        return 2;
    }
    long long rows = 1024, m = 2, seed = 1;
    if ((rows_s && !cli_parse_i64(rows_s, 0, INT64_MAX, &rows)) ||
        (m_s && !cli_parse_i64(m_s, 1, 4096, &m)) || (seed_s && !cli_parse_i64(seed_s, 0, INT64_MAX, &seed))) {
        cli_error("verify", "--linear-rows, --tokens and --seed take integers (tokens 1..4096)");
        return 2;
    }
    table t = {0};
    ss_verify_opts o = {.dense_dir = dirs[0], .slid_dir = dirs[1], .linear_rows = rows,
                        .linear_m = m, .seed = (uint64_t)seed, .row = row, .user = &t};
    int n_bad = 0;
    ss_status s = ss_verify_checkpoint(&o, &n_bad);
    fflush(stdout);
    if (s != SS_OK)
        return cli_lib_error("verify", s);
    if (n_bad) {
        cli_error("verify", "%s: %d tensor(s) do not match %s", dirs[1], n_bad, dirs[0]);
        return 1;
    }
    printf("verify: %s matches %s (%d projections, lossless)\n", dirs[1], dirs[0], t.lines);
    return 0;
}
