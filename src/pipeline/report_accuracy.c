/* "## Accuracy (task 9)": per (device folder, model) the perplexity of the
 * dense checkpoint and of every pattern, with the change against dense, from
 * <dir>/accuracy/<GPU>_cc<cc>_<DT>_<toolchain>/<Model>_perplexity.csv. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "report_internal.h"

static const char *field(const ss_pipe_csv *c, int row, const char *col) {
    int i = ss_pipe_csv_col(c, col);
    return i >= 0 && c->rows[row][i] ? c->rows[row][i] : "";
}

static const ss_pipe_csv *sort_csv; /* qsort has no context argument */

static int cmp_row(const void *a, const void *b) {
    return report_variant_cmp(field(sort_csv, *(const int *)a, "pattern"), field(sort_csv, *(const int *)b, "pattern"));
}

/* One table: dense first, then the patterns in order. */
static void accuracy_table(sbuf *b, const ss_pipe_csv *c) {
    if (c->n_rows == 0)
        return;
    int order[64], n = c->n_rows < 64 ? c->n_rows : 64;
    for (int i = 0; i < n; i++)
        order[i] = i;
    sort_csv = c;
    qsort(order, (size_t)n, sizeof *order, cmp_row);
    double dense = 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(field(c, order[i], "pattern"), "dense"))
            dense = strtod(field(c, order[i], "perplexity"), NULL);
    sbuf_put(b, "\n**%s %s on %s** (%s token ids scored, windows of %s, seed %s)\n\n", field(c, 0, "model"),
             field(c, 0, "dtype"), field(c, 0, "gpu"), field(c, 0, "tokens"), field(c, 0, "context"),
             field(c, 0, "seed"));
    sbuf_put(b, "| pattern | backend | perplexity | Δ vs dense | Δ %% |\n|---|---|---:|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        const char *pat = field(c, order[i], "pattern"), *be = field(c, order[i], "backend");
        double p = strtod(field(c, order[i], "perplexity"), NULL);
        if (!strcmp(pat, "dense"))
            sbuf_put(b, "| dense | %s | %.4f | — (baseline) | — |\n", be, p);
        else if (dense > 0)
            sbuf_put(b, "| %s | %s | %.4f | %+.4f | %+.2f%% |\n", pat, be, p, p - dense, 100 * (p - dense) / dense);
        else
            sbuf_put(b, "| %s | %s | %.4f | — | — |\n", pat, be, p);
    }
}

static int csv_file(const struct dirent *e) {
    size_t n = strlen(e->d_name), m = strlen("_perplexity.csv");
    return e->d_name[0] != '.' && n > m && !strcmp(e->d_name + n - m, "_perplexity.csv");
}

static int visible(const struct dirent *e) { return e->d_name[0] != '.'; }

ss_status report_accuracy_section(sbuf *b, const char *dir) {
    char root[1200];
    snprintf(root, sizeof root, "%s/accuracy", dir);
    sbuf_put(b, "\n## Accuracy (task 9)\n\n");
    struct dirent **devs = NULL;
    int nd = scandir(root, &devs, visible, alphasort), tables = 0;
    ss_status s = SS_OK;
    for (int i = 0; i < nd; i++) {
        char sub[1500];
        snprintf(sub, sizeof sub, "%s/%s", root, devs[i]->d_name);
        struct dirent **files = NULL;
        int nf = scandir(sub, &files, csv_file, alphasort);
        for (int j = 0; j < nf; j++) {
            char path[1800];
            snprintf(path, sizeof path, "%s/%s", sub, files[j]->d_name);
            ss_pipe_csv c;
            if (s == SS_OK && (s = ss_pipe_csv_read(path, &c)) == SS_OK) {
                if (tables == 0)
                    sbuf_put(b, "Teacher-forced perplexity (`slidesparse eval`) of each checkpoint on one fixed "
                                "sequence of token ids drawn from the run's seed: dense is the quantized model, each "
                                "2_L the same model pruned to the pattern (its slid checkpoint computes exactly the "
                                "pruned model). What pruning costs is the change against dense. On synthesized "
                                "weights and random ids the values are near the vocabulary size and say nothing "
                                "about a real model.\n");
                accuracy_table(b, &c);
                tables += c.n_rows > 0;
                ss_pipe_csv_free(&c);
            }
            free(files[j]);
        }
        free(files);
        free(devs[i]);
    }
    free(devs);
    if (s == SS_OK && tables == 0)
        sbuf_put(b, "No perplexity was measured in this run.\n");
    return s;
}
