/* "## Plots": one gnuplot data file and PNG per (stage, device, model) and
 * kind (speedup over dense with each pattern's ideal dashed; tokens/s),
 * drawn by one gnuplot run; without gnuplot the report says so. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core/error.h"
#include "report_internal.h"

extern char **environ;

typedef struct {
    const char *dir;  /* <out>/plots */
    sbuf *md;         /* report: image links appended */
    sbuf script;      /* gnuplot commands */
    int n_plots;
    const char *term; /* "pngcairo" or "png" */
} plots;


/* s inside a single-quoted gnuplot string ('' is a quote). */
static void gp_text(sbuf *b, const char *s) {
    for (; *s; s++)
        sbuf_put(b, *s == '\'' ? "''" : "%c", *s);
}

/* One PNG: series = variants (without dense when speedup). */
static void plot_group(void *u, const points *ps, int stage, int lo, int hi) {
    plots *pl = u;
    char v[32][32];
    int nv = points_variants(ps, lo, hi, v, 32);
    for (int kind = 0; kind < (stage <= ST_DECODE ? 2 : 1); kind++) { /* 0 speedup, 1 tokens/s */
        char stem[512], dat[1300];
        snprintf(stem, sizeof stem, "%s_%s_%s_%s", kind ? "tokens_per_s" : "speedup", report_stage_file[stage],
                 ps->p[lo].dev, ps->p[lo].model);
        sbuf d = {0};
        sbuf_put(&d, "# M");
        for (int k = 0; k < nv; k++)
            sbuf_put(&d, " %s", v[k]);
        sbuf_put(&d, "\n");
        int64_t last = -1;
        for (int i = lo; i < hi; i++) {
            if (ps->p[i].m == last)
                continue;
            last = ps->p[i].m;
            sbuf_put(&d, "%lld", (long long)last);
            for (int k = 0; k < nv; k++) {
                const point *p = points_find(ps, lo, hi, last, v[k]);
                double y = !p ? NAN : kind ? p->tps : p->speedup > 0 ? p->speedup : NAN;
                sbuf_put(&d, isnan(y) ? " NaN" : " %.6g", y);
            }
            sbuf_put(&d, "\n");
        }
        snprintf(dat, sizeof dat, "%s/%s.dat", pl->dir, stem);
        int ok = !d.failed && d.s && report_write_text(dat, d.s);
        free(d.s);
        if (!ok)
            continue;
        const point *p0 = &ps->p[lo];
        sbuf_put(&pl->script, "set output '%s/%s.png'\nset title '", pl->dir, stem);
        gp_text(&pl->script, p0->model);
        sbuf_put(&pl->script, " %s on ", p0->dtype);
        gp_text(&pl->script, p0->gpu[0] ? p0->gpu : p0->dev);
        sbuf_put(&pl->script, ": %s %s vs M'\n", report_stage_title[stage], kind ? "throughput" : "speedup over dense");
        sbuf_put(&pl->script, "set xlabel '%s'\n", stage == ST_PREFILL  ? "M (batched tokens per step)"
                                              : stage == ST_DECODE ? "M (concurrent sequences = tokens per step)"
                                                                   : "M (GEMM rows = tokens)");
        sbuf_put(&pl->script, "set ylabel '%s'\nunset logscale y\n",
            kind ? "throughput (tokens/s, higher is better)" : "speedup over dense (x, higher is better)");
        sbuf_put(&pl->script, "plot ");
        int first = 1;
        for (int k = 0; k < nv; k++) {
            if (!kind && !strcmp(v[k], "dense"))
                continue;
            sbuf_put(&pl->script, "%s'%s' using 1:%d with linespoints lw 2 pt 7 lc %d title '%s'", first ? "" : ", ", dat,
                k + 2, k + 1, v[k]);
            first = 0;
        }
        /* the ideal N/(N-1) of each pattern, dashed in its series' colour */
        for (int k = 0; !kind && k < nv; k++) {
            double id = report_ideal_of(v[k]);
            if (id > 1.0)
                sbuf_put(&pl->script, ", %.6g with lines dt 2 lw 1.5 lc %d title '%s ideal %.2fx'", id, k + 1, v[k], id);
        }
        sbuf_put(&pl->script, kind ? "\n" : ", 1 with lines dt 3 lw 2 lc rgb 'black' title 'dense = 1'\n");
        sbuf_put(pl->md, "![%s %s %s](plots/%s.png)\n\n", kind ? "tokens/s" : "speedup", report_stage_title[stage],
            ps->p[lo].dev, stem);
        pl->n_plots++;
    }
}

/* Runs gnuplot on script; 0 when it is missing or fails (log in plots/gnuplot.log). */
static int run_gnuplot(const char *dir, const char *script) {
    char log[1300];
    snprintf(log, sizeof log, "%s/gnuplot.log", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char *argv[] = {"gnuplot", (char *)script, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return 0;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The gnuplot script of every group; the markdown links go into their own
 * buffer, kept only when gnuplot succeeds (with pngcairo, else plain png). */
ss_status report_plots_section(sbuf *b, const points *ps, const char *dir) {
    char pdir[1200], script[1300];
    snprintf(pdir, sizeof pdir, "%s/plots", dir);
    if (mkdir(pdir, 0777) != 0 && errno != EEXIST)
        return ss_fail_errno(errno, "%s: cannot create", pdir);
    sbuf links = {0};
    plots pl = {.dir = pdir, .md = &links};
    sbuf_put(&pl.script, "set terminal pngcairo size 900,540 noenhanced font ',10'\nset logscale x 2\nset grid\n"
                         "set key outside right\n");
    for (int stg = 0; stg < ST_COUNT; stg++)
        points_for_groups(ps, stg, plot_group, &pl);
    sbuf_put(b, "\n## Plots\n\n");
    snprintf(script, sizeof script, "%s/plots.gp", pdir);
    if (pl.n_plots == 0) {
        sbuf_put(b, "No data to plot.\n");
    } else if (!pl.script.failed && report_write_text(script, pl.script.s) && run_gnuplot(pdir, script)) {
        sbuf_put(b, "%s", links.s);
    } else {
        /* the plain png terminal where cairo is missing */
        char *p = strstr(pl.script.s, "pngcairo");
        if (p)
            memmove(p + 3, p + 8, strlen(p + 8) + 1);
        ss_clear_error();
        if (report_write_text(script, pl.script.s) && run_gnuplot(pdir, script))
            sbuf_put(b, "%s", links.s);
        else
            sbuf_put(b, "Plots skipped: gnuplot is not installed or failed (see plots/gnuplot.log); the data is in "
                        "plots/*.dat.\n");
    }
    free(links.s);
    free(pl.script.s);
    ss_clear_error();
    return SS_OK;
}
