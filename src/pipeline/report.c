/* The run-all report: collects every measured point from the CSVs under a
 * results folder (throughput and kernel layouts of slidesparse/serve.h and
 * bench.h), reads the status JSON for the task table, checkpoints and
 * tuning, and writes <GPU>_report_<date>.md with gnuplot PNGs in plots/.
 * Needs nothing but the folder, so `slidesparse report DIR` regenerates it. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "pipeline_internal.h"
#include "slidesparse/sparse.h"
#include "slidesparse/tune.h"

extern char **environ;

enum { ST_PREFILL = 0, ST_DECODE, ST_GEMM, ST_LINEAR, ST_COUNT };
static const char *stage_title[ST_COUNT] = {"prefill", "decode", "kernel GEMM only", "kernel whole linear"};
static const char *stage_file[ST_COUNT] = {"prefill", "decode", "kernel_gemm", "kernel_linear"};

/* Measurements of one point beyond the first are kept as repeats: the
 * dense and native 2:4 sides are measured by every kernel task (6, 7, 8),
 * and a CSV may hold an M more than once. */
enum { REP_MAX = 8 };

typedef struct {
    int stage, task;
    char dev[160], model[64], variant[32];
    char gpu[128], dtype[8]; /* GPU name as the device reports it, "INT8" / "FP8"; "" unknown */
    int64_t m;
    double tps, rps, el; /* throughput */
    double us, ideal;    /* kernel */
    double speedup;      /* vs dense at the same (stage, dev, model, M); 0 unknown */
    int n_rep;           /* measurements of this point (first source and repeats) */
    double rep[REP_MAX]; /* their tokens/s (prefill, decode) or µs (kernel) */
} point;

/* The measured value of p: tokens/s (higher is better) or µs (lower). */
static double value_of(const point *p) { return p->stage <= ST_DECODE ? p->tps : p->us; }

typedef struct {
    point *p;
    int n, cap;
} points;

/* Same (stage, dev, model, M): the cell a variant's point is compared in. */
static int same_cell(const point *q, const point *p) {
    return q->stage == p->stage && q->m == p->m && !strcmp(q->dev, p->dev) && !strcmp(q->model, p->model);
}

static int add(points *ps, const point *p) {
    for (int i = 0; i < ps->n; i++) { /* first source wins (task 7/8 before task 6); later ones are repeats */
        point *q = &ps->p[i];
        if (same_cell(q, p) && !strcmp(q->variant, p->variant)) {
            if (q->n_rep < REP_MAX)
                q->rep[q->n_rep++] = value_of(p);
            return 1;
        }
    }
    if (ps->n == ps->cap) {
        point *g = realloc(ps->p, (size_t)(ps->cap = ps->cap ? ps->cap * 2 : 64) * sizeof *g);
        if (!g)
            return 0;
        ps->p = g;
    }
    ps->p[ps->n] = *p;
    ps->p[ps->n].n_rep = 1;
    ps->p[ps->n++].rep[0] = value_of(p);
    return 1;
}

// --- collecting -------------------------------------------------------------------------------------

static const char *field(const ss_pipe_csv *c, int row, const char *col) {
    int i = ss_pipe_csv_col(c, col);
    return i >= 0 && c->rows[row][i] ? c->rows[row][i] : "";
}

static ss_status read_throughput(points *ps, int stage, const char *dev, const char *variant, const char *path,
                                 const char *file) {
    /* "<Model>_<stage>.csv" */
    char model[64];
    size_t l = strlen(file), sl = strlen(stage_file[stage]) + 5;
    if (l <= sl || l - sl >= sizeof model)
        return SS_OK;
    snprintf(model, sizeof model, "%.*s", (int)(l - sl), file);
    ss_pipe_csv c;
    SS_TRY(ss_pipe_csv_read(path, &c));
    for (int r = 0; r < c.n_rows; r++) {
        point p = {.stage = stage};
        /* names come from directory entries (up to 255 bytes): cut to fit, as snprintf would */
        snprintf(p.dev, sizeof p.dev, "%.*s", (int)sizeof p.dev - 1, dev);
        snprintf(p.model, sizeof p.model, "%s", model);
        snprintf(p.variant, sizeof p.variant, "%.*s", (int)sizeof p.variant - 1, variant);
        p.m = strtoll(field(&c, r, "M"), NULL, 10);
        p.tps = strtod(field(&c, r, "tokens_per_s"), NULL);
        p.rps = strtod(field(&c, r, "requests_per_s"), NULL);
        p.el = strtod(field(&c, r, "elapsed_time_s"), NULL);
        if (p.m > 0 && p.tps > 0 && !add(ps, &p)) {
            ss_pipe_csv_free(&c);
            return ss_fail(SS_ENOMEM, "report: out of memory");
        }
    }
    ss_pipe_csv_free(&c);
    return SS_OK;
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Opens <parent>/<name> (its path left in path) when it is a directory that is
 * not hidden; NULL otherwise. */
static DIR *open_subdir(char *path, size_t cap, const char *parent, const char *name) {
    snprintf(path, cap, "%s/%s", parent, name);
    return name[0] != '.' && is_dir(path) ? opendir(path) : NULL;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* <stage_root>/<dev>/<backend>/[<2_L>/]<Model>_<stage>.csv */
static ss_status collect_throughput(points *ps, const char *out, int stage) {
    char root[1200];
    snprintf(root, sizeof root, "%s/throughput_benchmark_results/%s", out, stage_file[stage]);
    char suf[32];
    snprintf(suf, sizeof suf, "_%s.csv", stage_file[stage]);
    DIR *d0 = opendir(root);
    if (!d0)
        return SS_OK;
    ss_status s = SS_OK;
    struct dirent *e0, *e1, *e2, *e3;
    while (s == SS_OK && (e0 = readdir(d0))) {
        char p0[1500];
        DIR *d1 = open_subdir(p0, sizeof p0, root, e0->d_name);
        if (!d1)
            continue;
        while (s == SS_OK && (e1 = readdir(d1))) {
            char p1[1800];
            DIR *d2 = open_subdir(p1, sizeof p1, p0, e1->d_name);
            if (!d2)
                continue;
            while (s == SS_OK && (e2 = readdir(d2))) {
                char p2[2100];
                snprintf(p2, sizeof p2, "%s/%s", p1, e2->d_name);
                if (e2->d_name[0] == '.')
                    continue;
                if (!is_dir(p2)) {
                    if (ends_with(e2->d_name, suf))
                        s = read_throughput(ps, stage, e0->d_name, "dense", p2, e2->d_name);
                    continue;
                }
                DIR *d3 = opendir(p2);
                while (s == SS_OK && d3 && (e3 = readdir(d3))) {
                    char p3[2400];
                    snprintf(p3, sizeof p3, "%s/%s", p2, e3->d_name);
                    if (ends_with(e3->d_name, suf) && !ends_with(e3->d_name, "_speedup.csv"))
                        s = read_throughput(ps, stage, e0->d_name, e2->d_name, p3, e3->d_name);
                }
                if (d3)
                    closedir(d3);
            }
            closedir(d2);
        }
        closedir(d1);
    }
    closedir(d0);
    return s;
}

/* <out>/kernel_task<k>/benchmark_kernel/<side>/<dev>/<Model>_total.csv */
static ss_status collect_kernel(points *ps, const char *out, int task) {
    for (int side = 0; side < 2; side++) {
        char root[1200];
        snprintf(root, sizeof root, "%s/kernel_task%d/benchmark_kernel/%s", out, task, side ? "cuSPARSELt" : "cuBLASLt");
        DIR *d0 = opendir(root);
        if (!d0)
            continue;
        struct dirent *e0, *e1;
        ss_status s = SS_OK;
        while (s == SS_OK && (e0 = readdir(d0))) {
            char p0[1500];
            DIR *d1 = open_subdir(p0, sizeof p0, root, e0->d_name);
            if (!d1)
                continue;
            while (s == SS_OK && (e1 = readdir(d1))) {
                if (!ends_with(e1->d_name, "_total.csv"))
                    continue;
                char p1[1800];
                snprintf(p1, sizeof p1, "%s/%s", p0, e1->d_name);
                ss_pipe_csv c;
                if ((s = ss_pipe_csv_read(p1, &c)) != SS_OK)
                    break;
                for (int r = 0; r < c.n_rows && s == SS_OK; r++) {
                    point p = {.task = task};
                    p.stage = !strcmp(field(&c, r, "level"), "linear") ? ST_LINEAR : ST_GEMM;
                    snprintf(p.dev, sizeof p.dev, "%.159s", e0->d_name);
                    snprintf(p.model, sizeof p.model, "%s", field(&c, r, "model"));
                    snprintf(p.gpu, sizeof p.gpu, "%s", field(&c, r, "gpu"));
                    snprintf(p.dtype, sizeof p.dtype, "%s", field(&c, r, "dtype"));
                    const char *pat = field(&c, r, "pattern");
                    snprintf(p.variant, sizeof p.variant, "%s", side == 0 ? "dense" : pat);
                    p.m = strtoll(field(&c, r, "M"), NULL, 10);
                    p.us = strtod(field(&c, r, "latency_us"), NULL);
                    p.ideal = strtod(field(&c, r, "ideal"), NULL);
                    if (p.m > 0 && p.us > 0 && !add(ps, &p))
                        s = ss_fail(SS_ENOMEM, "report: out of memory");
                }
                ss_pipe_csv_free(&c);
            }
            closedir(d1);
        }
        closedir(d0);
        SS_TRY(s);
    }
    return SS_OK;
}

static const point *dense_of(const points *ps, const point *p) {
    for (int i = 0; i < ps->n; i++) {
        const point *q = &ps->p[i];
        if (same_cell(q, p) && !strcmp(q->variant, "dense"))
            return q;
    }
    return NULL;
}

static int cmp_point(const void *a, const void *b) {
    const point *x = a, *y = b;
    int c;
    if (x->stage != y->stage)
        return x->stage - y->stage;
    if ((c = strcmp(x->dev, y->dev)) || (c = strcmp(x->model, y->model)))
        return c;
    if (x->m != y->m)
        return x->m < y->m ? -1 : 1;
    int xd = !strcmp(x->variant, "dense"), yd = !strcmp(y->variant, "dense");
    if (xd != yd)
        return yd - xd;
    /* 2_4 < 2_6 < ... < 2_16 < 2_inf */
    int lx = atoi(x->variant + 2), ly = atoi(y->variant + 2);
    lx = lx ? lx : 1 << 20;
    ly = ly ? ly : 1 << 20;
    return lx != ly ? lx - ly : strcmp(x->variant, y->variant);
}

static void finish_points(points *ps) {
    if (ps->n > 0)
        qsort(ps->p, (size_t)ps->n, sizeof *ps->p, cmp_point);
    for (int i = 0; i < ps->n; i++) {
        point *p = &ps->p[i];
        const point *d = dense_of(ps, p);
        if (!d || !strcmp(p->variant, "dense"))
            continue;
        p->speedup = p->stage <= ST_DECODE ? p->tps / d->tps : d->us / p->us;
    }
}

// --- output helpers ------------------------------------------------------------------------------------

typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *g = realloc(b->s, cap);
        if (!g) {
            b->failed = 1;
            return;
        }
        b->s = g;
        b->cap = cap;
    }
}

/* Distinct (dev, model) groups of a stage, in sorted order: calls fn per group. */
typedef void (*group_fn)(void *u, const points *ps, int stage, int lo, int hi);

static void for_groups(const points *ps, int stage, group_fn fn, void *u) {
    int i = 0;
    while (i < ps->n) {
        if (ps->p[i].stage != stage) {
            i++;
            continue;
        }
        int j = i;
        while (j < ps->n && ps->p[j].stage == stage && !strcmp(ps->p[j].dev, ps->p[i].dev) &&
               !strcmp(ps->p[j].model, ps->p[i].model))
            j++;
        fn(u, ps, stage, i, j);
        i = j;
    }
}

/* The variants of a group in order (dense first). */
static int variants(const points *ps, int lo, int hi, char v[][32], int max) {
    int n = 0;
    for (int i = lo; i < hi; i++) {
        int seen = 0;
        for (int k = 0; k < n; k++)
            seen |= !strcmp(v[k], ps->p[i].variant);
        if (!seen && n < max)
            snprintf(v[n++], 32, "%s", ps->p[i].variant);
    }
    /* points are sorted by M first: order the variant names like cmp_point */
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++) {
            point x = {0}, y = {0};
            snprintf(x.variant, 32, "%s", v[a]);
            snprintf(y.variant, 32, "%s", v[b]);
            if (cmp_point(&x, &y) > 0) {
                char t[32];
                memcpy(t, v[a], 32);
                memcpy(v[a], v[b], 32);
                memcpy(v[b], t, 32);
            }
        }
    return n;
}

static const point *find(const points *ps, int lo, int hi, int64_t m, const char *variant) {
    for (int i = lo; i < hi; i++)
        if (ps->p[i].m == m && !strcmp(ps->p[i].variant, variant))
            return &ps->p[i];
    return NULL;
}

/* Ideal speedup N/(N-1) of a variant name ("2_6" -> 1.5, "2_inf" -> 1); 0 when not a pattern. */
static double ideal_of(const char *variant) {
    ss_pattern pat;
    if (ss_pattern_parse(variant, &pat) != SS_OK) {
        ss_clear_error();
        return 0;
    }
    return ss_pattern_ideal_speedup(pat);
}

// --- plots -----------------------------------------------------------------------------------------------

typedef struct {
    const char *dir;  /* <out>/plots */
    sbuf *md;         /* report: image links appended */
    sbuf script;      /* gnuplot commands */
    int n_plots;
    const char *term; /* "pngcairo" or "png" */
} plots;

static int write_text(const char *path, const char *text) {
    return ss_write_file_atomic(path, text, strlen(text)) == SS_OK;
}

/* s inside a single-quoted gnuplot string ('' is a quote). */
static void gp_text(sbuf *b, const char *s) {
    for (; *s; s++)
        put(b, *s == '\'' ? "''" : "%c", *s);
}

/* One PNG: series = variants (without dense when speedup). */
static void plot_group(void *u, const points *ps, int stage, int lo, int hi) {
    plots *pl = u;
    char v[32][32];
    int nv = variants(ps, lo, hi, v, 32);
    for (int kind = 0; kind < (stage <= ST_DECODE ? 2 : 1); kind++) { /* 0 speedup, 1 tokens/s */
        char stem[512], dat[1300];
        snprintf(stem, sizeof stem, "%s_%s_%s_%s", kind ? "tokens_per_s" : "speedup", stage_file[stage],
                 ps->p[lo].dev, ps->p[lo].model);
        sbuf d = {0};
        put(&d, "# M");
        for (int k = 0; k < nv; k++)
            put(&d, " %s", v[k]);
        put(&d, "\n");
        int64_t last = -1;
        for (int i = lo; i < hi; i++) {
            if (ps->p[i].m == last)
                continue;
            last = ps->p[i].m;
            put(&d, "%lld", (long long)last);
            for (int k = 0; k < nv; k++) {
                const point *p = find(ps, lo, hi, last, v[k]);
                double y = !p ? NAN : kind ? p->tps : p->speedup > 0 ? p->speedup : NAN;
                put(&d, isnan(y) ? " NaN" : " %.6g", y);
            }
            put(&d, "\n");
        }
        snprintf(dat, sizeof dat, "%s/%s.dat", pl->dir, stem);
        int ok = !d.failed && d.s && write_text(dat, d.s);
        free(d.s);
        if (!ok)
            continue;
        const point *p0 = &ps->p[lo];
        put(&pl->script, "set output '%s/%s.png'\nset title '", pl->dir, stem);
        gp_text(&pl->script, p0->model);
        put(&pl->script, " %s on ", p0->dtype);
        gp_text(&pl->script, p0->gpu[0] ? p0->gpu : p0->dev);
        put(&pl->script, ": %s %s vs M'\n", stage_title[stage], kind ? "throughput" : "speedup over dense");
        put(&pl->script, "set xlabel '%s'\n", stage == ST_PREFILL  ? "M (batched tokens per step)"
                                              : stage == ST_DECODE ? "M (concurrent sequences = tokens per step)"
                                                                   : "M (GEMM rows = tokens)");
        put(&pl->script, "set ylabel '%s'\nunset logscale y\n",
            kind ? "throughput (tokens/s, higher is better)" : "speedup over dense (x, higher is better)");
        put(&pl->script, "plot ");
        int first = 1;
        for (int k = 0; k < nv; k++) {
            if (!kind && !strcmp(v[k], "dense"))
                continue;
            put(&pl->script, "%s'%s' using 1:%d with linespoints lw 2 pt 7 lc %d title '%s'", first ? "" : ", ", dat,
                k + 2, k + 1, v[k]);
            first = 0;
        }
        /* the ideal N/(N-1) of each pattern, dashed in its series' colour */
        for (int k = 0; !kind && k < nv; k++) {
            double id = ideal_of(v[k]);
            if (id > 1.0)
                put(&pl->script, ", %.6g with lines dt 2 lw 1.5 lc %d title '%s ideal %.2fx'", id, k + 1, v[k], id);
        }
        put(&pl->script, kind ? "\n" : ", 1 with lines dt 3 lw 2 lc rgb 'black' title 'dense = 1'\n");
        put(pl->md, "![%s %s %s](plots/%s.png)\n\n", kind ? "tokens/s" : "speedup", stage_title[stage],
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

// --- tables ------------------------------------------------------------------------------------------------

static void throughput_table(void *u, const points *ps, int stage, int lo, int hi) {
    sbuf *b = u;
    put(b, "\n**%s — %s, %s**\n\n", stage_title[stage], ps->p[lo].model, ps->p[lo].dev);
    put(b, "| M | variant | tokens/s | requests/s | elapsed s | speedup vs dense |\n|---:|---|---:|---:|---:|---:|\n");
    for (int i = lo; i < hi; i++) {
        const point *p = &ps->p[i];
        char sp[32] = "—";
        if (p->speedup > 0)
            snprintf(sp, sizeof sp, "%.3f", p->speedup);
        else if (!strcmp(p->variant, "dense"))
            snprintf(sp, sizeof sp, "1 (baseline)");
        put(b, "| %lld | %s | %.1f | %.3f | %.3f | %s |\n", (long long)p->m, p->variant, p->tps, p->rps, p->el, sp);
    }
}

static void kernel_table(void *u, const points *ps, int stage, int lo, int hi) {
    sbuf *b = u;
    char v[32][32];
    int nv = variants(ps, lo, hi, v, 32);
    put(b, "\n**%s — %s, %s** (speedup = Σdense / Σsparse over the 4 projections of one layer; ideal N/(N−1) in "
           "parentheses)\n\n| M | dense µs |",
        stage_title[stage], ps->p[lo].model, ps->p[lo].dev);
    for (int k = 0; k < nv; k++)
        if (strcmp(v[k], "dense"))
            put(b, " %s |", v[k]);
    put(b, "\n|---:|---:|");
    for (int k = 1; k < nv; k++)
        put(b, "---:|");
    put(b, "\n");
    int64_t last = -1;
    for (int i = lo; i < hi; i++) {
        if (ps->p[i].m == last)
            continue;
        last = ps->p[i].m;
        const point *d = find(ps, lo, hi, last, "dense");
        if (d)
            put(b, "| %lld | %.1f |", (long long)last, d->us);
        else
            put(b, "| %lld | — |", (long long)last);
        for (int k = 0; k < nv; k++) {
            if (!strcmp(v[k], "dense"))
                continue;
            const point *p = find(ps, lo, hi, last, v[k]);
            if (p && p->speedup > 0)
                put(b, " %.3f (%.2f) |", p->speedup, p->ideal);
            else
                put(b, " — |");
        }
        put(b, "\n");
    }
}

static void conclusions(sbuf *b, const points *ps) {
    put(b, "\n## Conclusions (computed from the data above)\n\n");
    int any = 0;
    for (int st = 0; st < ST_COUNT; st++) {
        const point *best = NULL, *worst = NULL;
        int wins = 0, losses = 0;
        for (int i = 0; i < ps->n; i++) {
            const point *p = &ps->p[i];
            if (p->stage != st || p->speedup <= 0)
                continue;
            if (!best || p->speedup > best->speedup)
                best = p;
            if (!worst || p->speedup < worst->speedup)
                worst = p;
            wins += p->speedup > 1.0;
            losses += p->speedup < 1.0;
        }
        if (!best)
            continue;
        any = 1;
        put(b, "- **%s**: best speedup %.3f (%s, %s, M %lld); worst %.3f (%s, %s, M %lld). Sparsity wins in %d "
               "of %d measurements, loses in %d.",
            stage_title[st], best->speedup, best->variant, best->dev, (long long)best->m, worst->speedup,
            worst->variant, worst->dev, (long long)worst->m, wins, wins + losses, losses);
        /* where: the patterns that win on average across M */
        char v[32][32];
        int nv = variants(ps, 0, ps->n, v, 32);
        sbuf w = {0}, l = {0};
        for (int k = 0; k < nv; k++) {
            double s = 0;
            int n = 0;
            for (int i = 0; i < ps->n; i++)
                if (ps->p[i].stage == st && ps->p[i].speedup > 0 && !strcmp(ps->p[i].variant, v[k])) {
                    s += log(ps->p[i].speedup);
                    n++;
                }
            if (n)
                put(exp(s / n) >= 1 ? &w : &l, " %s (%.3f)", v[k], exp(s / n));
        }
        put(b, " Geometric-mean speedup ≥ 1:%s; < 1:%s.\n", w.s ? w.s : " none", l.s ? l.s : " none");
        free(w.s);
        free(l.s);
    }
    if (!any)
        put(b, "No sparse measurement with a dense baseline was found.\n");
}

// --- summary and spread ------------------------------------------------------------------------------

/* Repeats differing by more than this fraction of their median mark a busy machine. */
#define SPREAD_WARN 0.10

/* GPU name and dtype of points known only by their folder
 * ("<GPU>_cc<cc>_<INT8|FP8>_<toolchain>"): the name the status recorded when
 * the folder is this run's device, else the folder's own spelling. */
static void label_points(points *ps, const ss_pipe_status *st) {
    char mine[160];
    ss_pipe_sanitize(st->key.gpu, mine, sizeof mine);
    for (int i = 0; i < ps->n; i++) {
        point *p = &ps->p[i];
        const char *cc = NULL;
        for (const char *q = strstr(p->dev, "_cc"); q; q = strstr(q + 1, "_cc"))
            if (q[3] >= '0' && q[3] <= '9')
                cc = q;
        if (!cc)
            continue;
        const char *d = cc + 3;
        while (*d >= '0' && *d <= '9')
            d++;
        if (!p->dtype[0] && *d == '_')
            snprintf(p->dtype, sizeof p->dtype, "%.*s", (int)strcspn(d + 1, "_"), d + 1);
        int gl = (int)(cc - p->dev);
        if (!p->gpu[0])
            snprintf(p->gpu, sizeof p->gpu, "%.*s", gl, (size_t)gl == strlen(mine) && !strncmp(p->dev, mine, (size_t)gl) ? st->key.gpu : p->dev);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* min / median / max of p's measurements; returns their count. */
static int rep_stats(const point *p, double *mn, double *med, double *mx) {
    double v[REP_MAX];
    memcpy(v, p->rep, (size_t)p->n_rep * sizeof *v);
    qsort(v, (size_t)p->n_rep, sizeof *v, cmp_double);
    *mn = v[0];
    *mx = v[p->n_rep - 1];
    *med = p->n_rep % 2 ? v[p->n_rep / 2] : (v[p->n_rep / 2 - 1] + v[p->n_rep / 2]) / 2;
    return p->n_rep;
}

/* (max - min) / median of p's repeats; 0 with one measurement. */
static double spread_of(const point *p) {
    double mn, med, mx;
    if (p->n_rep < 2 || rep_stats(p, &mn, &med, &mx) < 2 || med <= 0)
        return 0;
    return (mx - mn) / med;
}

/* The best of p's measurements: the most tokens/s, the fewest µs. */
static double best_of(const point *p) {
    double b = p->rep[0];
    for (int i = 1; i < p->n_rep; i++)
        b = p->stage <= ST_DECODE ? fmax(b, p->rep[i]) : fmin(b, p->rep[i]);
    return b;
}

/* Speedup of sparse point p over the best dense measurement at its M, each
 * side taken at its best; 0 without a dense point. */
static double best_speedup(const points *ps, const point *p) {
    const point *d = dense_of(ps, p);
    if (!d || best_of(p) <= 0 || best_of(d) <= 0)
        return 0;
    return p->stage <= ST_DECODE ? best_of(p) / best_of(d) : best_of(d) / best_of(p);
}

typedef struct {
    sbuf *b;
    char v[32][32]; /* sparse variants, columns */
    int nv, rows;
    int wins[32], seen[32];         /* per column: rows it beats dense in, rows it was measured in */
    double top[32];                 /* per column: its best speedup anywhere */
    const point *top_at[32];
} summary;

/* The best speedup of pattern v over [lo, hi) and the point giving it. */
static const point *best_in(const points *ps, int lo, int hi, const char *v, double *sp) {
    const point *at = NULL;
    *sp = 0;
    for (int i = lo; i < hi; i++) {
        double x = strcmp(ps->p[i].variant, v) ? 0 : best_speedup(ps, &ps->p[i]);
        if (x > *sp)
            *sp = x, at = &ps->p[i];
    }
    return at;
}

static void summary_row(void *u, const points *ps, int stage, int lo, int hi) {
    summary *sm = u;
    put(sm->b, "| %s | %s | %s |", stage_title[stage], ps->p[lo].dtype[0] ? ps->p[lo].dtype : ps->p[lo].dev,
        ps->p[lo].model);
    for (int k = 0; k < sm->nv; k++) {
        double sp;
        const point *at = best_in(ps, lo, hi, sm->v[k], &sp);
        if (!at) {
            put(sm->b, " — |");
            continue;
        }
        sm->seen[k]++;
        sm->wins[k] += sp > 1.0;
        if (sp > sm->top[k])
            sm->top[k] = sp, sm->top_at[k] = at;
        put(sm->b, sp > 1.0 ? " **%.2f×** (M %lld) |" : " %.2f× (M %lld) |", sp, (long long)at->m);
    }
    put(sm->b, "\n");
    sm->rows++;
}

/* Every repeated measurement whose spread exceeds SPREAD_WARN: the count, the
 * number of repeated points, and the worst one. */
static int busy_points(const points *ps, int *repeated, const point **worst) {
    int n = 0;
    *repeated = 0;
    *worst = NULL;
    for (int i = 0; i < ps->n; i++) {
        const point *p = &ps->p[i];
        if (p->n_rep < 2)
            continue;
        (*repeated)++;
        n += spread_of(p) > SPREAD_WARN;
        if (!*worst || spread_of(p) > spread_of(*worst))
            *worst = p;
    }
    return n;
}

static void busy_warning(sbuf *b, const points *ps) {
    int repeated;
    const point *w;
    int n = busy_points(ps, &repeated, &w);
    if (!n)
        return;
    double mn, med, mx;
    rep_stats(w, &mn, &med, &mx);
    put(b, "\n> **Warning: the machine was busy: treat these numbers with care.** %d of %d points measured more "
           "than once differ by more than %.0f%% between their runs (largest: %s %s %s, %s, M %lld: min %.1f, "
           "median %.1f, max %.1f %s, %.0f%%). See *Measurement spread*.\n",
        n, repeated, SPREAD_WARN * 100, w->model, w->dtype, stage_title[w->stage], w->variant, (long long)w->m, mn,
        med, mx, w->stage <= ST_DECODE ? "tokens/s" : "µs", spread_of(w) * 100);
}

/* "## Summary": best speedup per (stage, dtype, model) and pattern, the
 * ideal in the header, a verdict, and the busy-machine warning. */
static void summary_section(sbuf *b, const points *ps, const ss_pipe_status *st) {
    put(b, "## Summary\n\n");
    summary sm = {.b = b};
    char all[32][32];
    int na = variants(ps, 0, ps->n, all, 32);
    for (int k = 0; k < na; k++)
        if (strcmp(all[k], "dense"))
            memcpy(sm.v[sm.nv++], all[k], 32);
    int any_dense = 0;
    for (int i = 0; i < ps->n; i++)
        any_dense |= strcmp(ps->p[i].variant, "dense") && dense_of(ps, &ps->p[i]) != NULL;
    if (!sm.nv || !any_dense) {
        put(b, "No sparse measurement with a dense baseline was found: nothing to summarize.\n");
        return;
    }
    put(b, "Best speedup of each pattern over the best dense measurement at the same M (fastest run of each side), "
           "and the M where it was reached; bold where sparse beats dense. The ideal speedup N/(N−1) is in the "
           "column header.\n\n| stage | dtype | model |");
    for (int k = 0; k < sm.nv; k++) {
        double id = ideal_of(sm.v[k]);
        put(b, id > 0 ? " %s (ideal %.2f×) |" : " %s |", sm.v[k], id);
    }
    put(b, "\n|---|---|---|");
    for (int k = 0; k < sm.nv; k++)
        put(b, "---:|");
    put(b, "\n");
    for (int stg = 0; stg < ST_COUNT; stg++)
        for_groups(ps, stg, summary_row, &sm);

    /* the verdict: which patterns win where */
    int repeated;
    const point *w;
    put(b, "\n**Verdict%s:**", busy_points(ps, &repeated, &w) ? " (on noisy measurements: see the warning below)" : "");
    int winners = 0;
    sbuf never = {0};
    for (int k = 0; k < sm.nv; k++) {
        if (!sm.seen[k])
            continue;
        if (!sm.wins[k]) {
            put(&never, "%s%s", never.s ? ", " : "", sm.v[k]);
            continue;
        }
        const point *a = sm.top_at[k];
        double id = ideal_of(sm.v[k]);
        put(b, "%s %s beats dense in %d of %d rows (best %.2f×", winners ? ";" : "", sm.v[k], sm.wins[k], sm.seen[k],
            sm.top[k]);
        if (id > 0)
            put(b, ", %.0f%% of its ideal %.2f×", 100 * sm.top[k] / id, id);
        put(b, ": %s, %s, M %lld)", stage_title[a->stage], a->dtype, (long long)a->m);
        winners++;
    }
    if (!winners)
        put(b, " no pattern beats dense anywhere in this run");
    if (never.s)
        put(b, "%s never faster than dense: %s", winners ? ";" : ";", never.s);
    put(b, ".%s\n", st->embedded ? " These are CPU reference numbers: they say nothing about GPU speedups." : "");
    free(never.s);
    busy_warning(b, ps);
}

/* "## Measurement spread": min / median / max of the points measured more
 * than once, per (stage, dtype, model, variant) the largest spread. */
static void spread_section(sbuf *b, const points *ps) {
    put(b, "\n## Measurement spread\n\n");
    int repeated;
    const point *w;
    int busy = busy_points(ps, &repeated, &w);
    int once[ST_COUNT] = {0}, twice[ST_COUNT] = {0};
    for (int i = 0; i < ps->n; i++)
        (ps->p[i].n_rep > 1 ? twice : once)[ps->p[i].stage]++;
    if (once[ST_PREFILL] + once[ST_DECODE] && !twice[ST_PREFILL] && !twice[ST_DECODE])
        put(b, "Prefill and decode run once per point (one tokens/s value each): their spread is not measured here; "
               "running the benchmark again into another folder and comparing is the way to see it.\n");
    if (!repeated) {
        put(b, "%sNo point was measured more than once in this run: no spread can be shown.\n",
            once[ST_PREFILL] + once[ST_DECODE] ? "\n" : "");
        return;
    }
    put(b, "%sKernel latencies are each the median of the timed iterations; the dense and native 2_4 sides are "
           "measured again by every kernel task (6, 7, 8), so their runs can be compared. Spread = (max − min) / "
           "median over the runs of one point; above %.0f%% the machine was likely busy. Per series, the point "
           "with the largest spread:\n\n"
           "| stage | dtype | model | variant | points | runs | largest spread at M | min | median | max | spread |\n"
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        once[ST_PREFILL] + once[ST_DECODE] && !twice[ST_PREFILL] && !twice[ST_DECODE] ? "\n" : "",
        SPREAD_WARN * 100);
    for (int i = 0; i < ps->n; i++) {
        const point *p = &ps->p[i];
        if (p->n_rep < 2)
            continue;
        /* one row per series: its first repeated point in sorted order reports it */
        int first = 1, pts = 0, runs = 0;
        const point *worst = p;
        for (int j = 0; j < ps->n; j++) {
            const point *q = &ps->p[j];
            if (q->n_rep < 2 || q->stage != p->stage || strcmp(q->dev, p->dev) || strcmp(q->model, p->model) ||
                strcmp(q->variant, p->variant))
                continue;
            first &= j >= i;
            pts++;
            runs = q->n_rep > runs ? q->n_rep : runs;
            if (spread_of(q) > spread_of(worst))
                worst = q;
        }
        if (!first)
            continue;
        double mn, med, mx;
        rep_stats(worst, &mn, &med, &mx);
        const char *unit = p->stage <= ST_DECODE ? "tokens/s" : "µs";
        put(b, "| %s | %s | %s | %s | %d | %d | %lld | %.1f %s | %.1f %s | %.1f %s | %s%.1f%%%s |\n",
            stage_title[p->stage], p->dtype, p->model, p->variant, pts, runs, (long long)worst->m, mn, unit, med,
            unit, mx, unit, spread_of(worst) > SPREAD_WARN ? "**" : "", spread_of(worst) * 100,
            spread_of(worst) > SPREAD_WARN ? "**" : "");
    }
    if (busy)
        put(b, "\n**The machine was busy: treat these numbers with care** (%d of %d repeated points spread more than "
               "%.0f%%).\n",
            busy, repeated, SPREAD_WARN * 100);
    else
        put(b, "\nEvery repeated point agrees within %.0f%%.\n", SPREAD_WARN * 100);
}

// --- the report --------------------------------------------------------------------------------------------

/* cuSPARSELt's integer version (cusparseLtGetVersion: major*1e6 + minor*100
 * + patch) as "0.8.0"; other text as it is ("none"). */
static const char *sparselt_version(const char *key, char *buf, size_t n) {
    char *end = NULL;
    long v = strtol(key, &end, 10);
    if (end == key || *end || v < 0)
        return key;
    snprintf(buf, n, "%ld.%ld.%ld", v / 1000000, v / 100 % 10000, v % 100);
    return buf;
}

static void header(sbuf *b, const ss_pipe_status *st, const char *status_file) {
    char spv[48];
    put(b, "# SlideSparse benchmark report — %s\n\n", st->key.gpu);
    if (st->embedded)
        put(b, "> **Embedded no-GPU default.** No GPU was used: this run is the seed pipeline on a tiny model "
               "(%s) on the CPU reference backend, with short M lists and the quick scale. It shows the whole "
               "pipeline working; its numbers say nothing about GPU speedups.\n\n",
            st->config.models[0]);
    put(b, "| | |\n|---|---|\n");
    put(b, "| GPU | %s |\n| compute capability | %d.%d |\n| toolchain (CUDA) | %s |\n| cuBLASLt | %s |\n"
           "| cuSPARSELt | %s |\n| device | %s |\n",
        st->key.gpu, st->key.cc / 10, st->key.cc % 10, st->key.toolchain, st->key.cublaslt,
        sparselt_version(st->key.cusparselt, spv, sizeof spv), st->describe);
    put(b, "| scale | %s%s |\n", st->quick ? "quick (1/16 of the SPEC prefill prompts per M; decode unscaled)" : "full (SPEC §8 workloads)",
        st->embedded ? ", embedded default" : "");
    put(b, "| models | ");
    for (int i = 0; i < st->config.n_models; i++)
        put(b, "%s%s", i ? ", " : "", st->config.models[i]);
    put(b, " |\n| dtypes | ");
    for (int i = 0; i < st->config.n_dtypes; i++)
        put(b, "%s%s", i ? ", " : "", st->config.dtypes[i] == SS_DTYPE_I8 ? "INT8" : "FP8");
    put(b, " |\n| started | %s |\n| last update | %s |\n| total time | %.1f s |\n| status | %s |\n| log | %s |\n\n",
        st->started, st->updated, st->total_seconds, status_file, st->log);
}

static void task_table(sbuf *b, const ss_pipe_status *st) {
    put(b, "## Tasks\n\n| # | task | state | seconds | done | skipped | failed | reason / error |\n"
           "|---:|---|---|---:|---:|---:|---:|---|\n");
    for (int k = 1; k <= SS_PIPE_TASKS; k++) {
        const ss_task_status *t = &st->tasks[k];
        put(b, "| %d | %s | %s | %.1f | %d | %d | %d | %s |\n", k, ss_pipe_task_name(k), ss_task_state_name(t->state),
            t->seconds, t->n_done, t->n_skipped, t->n_failed, t->state == SS_TASK_FAILED ? t->error : t->reason);
    }
}

static void prep_table(sbuf *b, const ss_pipe_status *st) {
    put(b, "\n## Model preparation\n\n");
    if (!st->n_ckpts) {
        put(b, "No checkpoint was prepared in this run.\n");
        return;
    }
    int synthetic = 0, real = 0;
    put(b, "| role | checkpoint | weights | this run |\n|---|---|---|---|\n");
    for (int i = 0; i < st->n_ckpts; i++) {
        const ss_ckpt_record *c = &st->ckpts[i];
        synthetic |= !strcmp(c->role, "base") && strstr(c->origin, "synthesized") != NULL;
        real |= !strcmp(c->role, "base") && strstr(c->origin, "real weights") != NULL;
        put(b, "| %s | %s | %s | %s |\n", c->role, c->path, c->origin, c->reused ? "already present, reused" : "written");
    }
    if (synthetic)
        put(b, "\n**Synthetic weights were used** (random values, the exact configuration of the model). "
               "Throughput and kernel latency do not depend on weight values, so the benchmark numbers hold; "
               "generated text would be meaningless.\n");
    else if (real)
        put(b, "\nReal checkpoint weights were used.\n");
    else
        put(b, "\nThe quantized checkpoints were already present; where their weights came from is not "
               "recorded in this run (an earlier run's report says).\n");
}

/* The tuning table of the run in results folder dir: its path in rel
 * (relative to dir, for the report) and full (to open). The status records
 * <out>/tuning/... with <out> as run-all was given it, relative to the
 * directory run-all ran in, so it is resolved against dir, never the current
 * directory; without a recorded path (tuning done by the kernel tasks only),
 * the table for the run's key under tuning/. 0 when there is none. */
static int tuning_locate(const ss_pipe_status *st, const char *dir, char *rel, size_t nrel, char *full, size_t nfull) {
    const char *p = st->tune_path;
    char byk[300];
    size_t ol = strlen(st->config.out);
    while (ol > 1 && st->config.out[ol - 1] == '/')
        ol--;
    if (p[0] && ol && !strncmp(p, st->config.out, ol) && p[ol] == '/')
        p += ol + 1;
    else if (p[0] == '/' || !p[0]) { /* absolute or absent: the table of the key under tuning/ */
        char key[256];
        ss_tune_key_dir(&st->key, key, sizeof key);
        snprintf(byk, sizeof byk, "tuning/%s/tuning.json", key);
        p = byk;
    }
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    snprintf(rel, nrel, "%s", p);
    snprintf(full, nfull, "%s/%s", dir, rel);
    struct stat sb;
    return stat(full, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void tuning_section(sbuf *b, const ss_pipe_status *st, const char *dir) {
    put(b, "\n## Tuning\n\n");
    put(b, "%d entries tuned, %d reused from the table, %d combinations skipped.", st->tune_tuned, st->tune_reused,
        st->tune_skipped);
    ss_tune_table *t = NULL;
    char rel[1200], full[2400];
    if (!tuning_locate(st, dir, rel, sizeof rel, full, sizeof full)) {
        put(b, " No tuning table was written.\n");
        return;
    }
    if (ss_tune_table_load(full, &t) != SS_OK) {
        put(b, " The tuning table `%s` could not be read: %s\n", rel, ss_last_error());
        ss_clear_error();
        return;
    }
    put(b, " Table: `%s` (%zu entries).\n\n| backend | in | N | K | M buckets | best algorithm at the largest M | µs |\n"
           "|---|---|---:|---:|---:|---|---:|\n",
        rel, ss_tune_table_count(t));
    size_t n = ss_tune_table_count(t);
    for (size_t i = 0; i < n; i++) {
        const ss_tune_entry *e = ss_tune_table_entry(t, i), *last = e;
        int seen = 0, buckets = 0;
        for (size_t j = 0; j < n; j++) {
            const ss_tune_entry *f = ss_tune_table_entry(t, j);
            if (f->backend != e->backend || f->in != e->in || f->n != e->n || f->k != e->k)
                continue;
            seen |= j < i;
            buckets++;
            if (f->m > last->m)
                last = f;
        }
        if (!seen)
            put(b, "| %s | %s | %lld | %lld | %d | %s | %.2f |\n", ss_backend_name(e->backend), ss_dtype_name(e->in),
                (long long)e->n, (long long)e->k, buckets, last->best.desc[0] ? last->best.desc : "-",
                last->n_top ? last->top[0].us : 0.0);
    }
    ss_tune_table_free(t);
}

/* "## <title>": the tasks in `state` (with their reason or error) and every
 * note "<word>: ..." of any task, or `none` when there is neither. */
static void task_list(sbuf *b, const ss_pipe_status *st, const char *title, ss_task_state state, const char *word,
                      const char *none) {
    put(b, "\n## %s\n\n", title);
    size_t wl = strlen(word);
    int n = 0;
    for (int k = 1; k <= SS_PIPE_TASKS; k++) {
        const ss_task_status *t = &st->tasks[k];
        if (t->state == state)
            put(b, "- task %d (%s): %s\n", k, ss_pipe_task_name(k), state == SS_TASK_FAILED ? t->error : t->reason),
                n++;
        for (int i = 0; i < t->n_notes; i++)
            if (!strncmp(t->notes[i], word, wl))
                put(b, "- task %d: %s\n", k, t->notes[i] + wl + 2), n++;
    }
    if (!n)
        put(b, "%s\n", none);
}

static void skip_lists(sbuf *b, const ss_pipe_status *st) {
    task_list(b, st, "Skipped", SS_TASK_SKIPPED, "skipped", "Nothing was skipped.");
    task_list(b, st, "Failed", SS_TASK_FAILED, "failed", "Nothing failed.");
}

ss_status ss_pipe_report(const char *dir, char *report, size_t n) {
    char status_path[1200];
    ss_pipe_status *st = calloc(1, sizeof *st);
    if (!st)
        return ss_fail(SS_ENOMEM, "report: out of memory");
    points ps = {0};
    sbuf b = {0};
    plots pl = {0};
    ss_status s;
    if ((s = ss_pipe_status_find(dir, status_path, sizeof status_path)) != SS_OK ||
        (s = ss_pipe_status_load(status_path, st)) != SS_OK)
        goto fail;
    if ((s = collect_throughput(&ps, dir, ST_PREFILL)) != SS_OK || (s = collect_throughput(&ps, dir, ST_DECODE)) != SS_OK ||
        (s = collect_kernel(&ps, dir, 7)) != SS_OK || (s = collect_kernel(&ps, dir, 8)) != SS_OK ||
        (s = collect_kernel(&ps, dir, 6)) != SS_OK)
        goto fail;
    finish_points(&ps);
    label_points(&ps, st);

    header(&b, st, strrchr(status_path, '/') + 1);
    summary_section(&b, &ps, st);
    put(&b, "\n");
    task_table(&b, st);
    prep_table(&b, st);
    tuning_section(&b, st, dir);
    put(&b, "\n## Prefill throughput (task 4)\n");
    for_groups(&ps, ST_PREFILL, throughput_table, &b);
    put(&b, "\n## Decode throughput (task 5)\n");
    for_groups(&ps, ST_DECODE, throughput_table, &b);
    put(&b, "\n## Kernel benchmarks (tasks 6-8)\n");
    for_groups(&ps, ST_GEMM, kernel_table, &b);
    for_groups(&ps, ST_LINEAR, kernel_table, &b);
    spread_section(&b, &ps);
    skip_lists(&b, st);
    conclusions(&b, &ps);

    /* plots: the markdown links go into their own buffer, kept only when gnuplot succeeds */
    char pdir[1200], script[1300];
    snprintf(pdir, sizeof pdir, "%s/plots", dir);
    if (mkdir(pdir, 0777) != 0 && errno != EEXIST) {
        s = ss_fail_errno(errno, "%s: cannot create", pdir);
        goto fail;
    }
    sbuf links = {0};
    pl.dir = pdir;
    pl.md = &links;
    put(&pl.script, "set terminal pngcairo size 900,540 noenhanced font ',10'\nset logscale x 2\nset grid\n"
                    "set key outside right\n");
    for (int stg = 0; stg < ST_COUNT; stg++)
        for_groups(&ps, stg, plot_group, &pl);
    put(&b, "\n## Plots\n\n");
    snprintf(script, sizeof script, "%s/plots.gp", pdir);
    if (pl.n_plots == 0) {
        put(&b, "No data to plot.\n");
    } else if (!pl.script.failed && write_text(script, pl.script.s) && run_gnuplot(pdir, script)) {
        put(&b, "%s", links.s);
    } else {
        /* the plain png terminal where cairo is missing */
        char *p = strstr(pl.script.s, "pngcairo");
        if (p) {
            memmove(p + 3, p + 8, strlen(p + 8) + 1);
        }
        ss_clear_error();
        if (write_text(script, pl.script.s) && run_gnuplot(pdir, script))
            put(&b, "%s", links.s);
        else
            put(&b, "Plots skipped: gnuplot is not installed or failed (see plots/gnuplot.log); the data is in "
                    "plots/*.dat.\n");
    }
    free(links.s);
    ss_clear_error();

    char gpu[160];
    ss_pipe_sanitize(st->key.gpu, gpu, sizeof gpu);
    if ((size_t)snprintf(report, n, "%s/%s_report_%.8s.md", dir, gpu, st->stamp) >= n) {
        s = ss_fail(SS_EINVAL, "report: path too long");
        goto fail;
    }
    if (b.failed) {
        s = ss_fail(SS_ENOMEM, "report: out of memory");
        goto fail;
    }
    s = ss_write_file_atomic(report, b.s, b.len);
fail:
    free(pl.script.s);
    free(b.s);
    free(ps.p);
    free(st);
    return s;
}
