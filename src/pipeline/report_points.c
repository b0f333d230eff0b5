/* The measured points of a results folder: read from the throughput and
 * kernel CSVs (layouts of slidesparse/serve.h and bench.h), ordered, each
 * sparse point's speedup over the dense one of its cell, and the queries the
 * report's sections make. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "report_internal.h"
#include "slidesparse/sparse.h"

const char *const report_stage_title[ST_COUNT] = {"prefill", "decode", "kernel GEMM only", "kernel whole linear"};
const char *const report_stage_file[ST_COUNT] = {"prefill", "decode", "kernel_gemm", "kernel_linear"};

/* Same (stage, dev, model, M): the cell a variant's point is compared in. */
static int same_cell(const point *q, const point *p) {
    return q->stage == p->stage && q->m == p->m && !strcmp(q->dev, p->dev) && !strcmp(q->model, p->model);
}

static int add(points *ps, const point *p) {
    /* kernel: the first source wins (task 7/8 before task 6), later ones are
     * repeats; throughput: every row of an M is one run, points_finish takes
     * their median */
    for (int i = 0; i < ps->n; i++) {
        point *q = &ps->p[i];
        if (same_cell(q, p) && !strcmp(q->variant, p->variant)) {
            if (q->n_rep < REP_MAX) {
                q->rep_rps[q->n_rep] = p->rps;
                q->rep_el[q->n_rep] = p->el;
                q->rep[q->n_rep++] = point_value(p);
            }
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
    ps->p[ps->n].rep_rps[0] = p->rps;
    ps->p[ps->n].rep_el[0] = p->el;
    ps->p[ps->n++].rep[0] = point_value(p);
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
    size_t l = strlen(file), sl = strlen(report_stage_file[stage]) + 5;
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
ss_status points_collect_throughput(points *ps, const char *out, int stage) {
    char root[1200];
    snprintf(root, sizeof root, "%s/throughput_benchmark_results/%s", out, report_stage_file[stage]);
    char suf[32];
    snprintf(suf, sizeof suf, "_%s.csv", report_stage_file[stage]);
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
ss_status points_collect_kernel(points *ps, const char *out, int task) {
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

const point *points_dense_of(const points *ps, const point *p) {
    for (int i = 0; i < ps->n; i++) {
        const point *q = &ps->p[i];
        if (same_cell(q, p) && !strcmp(q->variant, "dense"))
            return q;
    }
    return NULL;
}

int report_variant_cmp(const char *a, const char *b) {
    int ad = !strcmp(a, "dense"), bd = !strcmp(b, "dense");
    if (ad != bd)
        return bd - ad;
    /* 2_4 < 2_6 < ... < 2_16 < 2_inf */
    int la = atoi(a + 2), lb = atoi(b + 2);
    la = la ? la : 1 << 20;
    lb = lb ? lb : 1 << 20;
    return la != lb ? la - lb : strcmp(a, b);
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
    return report_variant_cmp(x->variant, y->variant);
}

void points_finish(points *ps) {
    if (ps->n > 0)
        qsort(ps->p, (size_t)ps->n, sizeof *ps->p, cmp_point);
    for (int i = 0; i < ps->n; i++) { /* the runs of one throughput point: their medians */
        point *p = &ps->p[i];
        if (p->stage > ST_DECODE || p->n_rep < 2)
            continue;
        double v[REP_MAX];
        memcpy(v, p->rep, (size_t)p->n_rep * sizeof *v);
        p->tps = report_median(v, p->n_rep);
        memcpy(v, p->rep_rps, (size_t)p->n_rep * sizeof *v);
        p->rps = report_median(v, p->n_rep);
        memcpy(v, p->rep_el, (size_t)p->n_rep * sizeof *v);
        p->el = report_median(v, p->n_rep);
    }
    for (int i = 0; i < ps->n; i++) {
        point *p = &ps->p[i];
        const point *d = points_dense_of(ps, p);
        if (!d || !strcmp(p->variant, "dense"))
            continue;
        p->speedup = p->stage <= ST_DECODE ? p->tps / d->tps : d->us / p->us;
    }
}

void points_for_groups(const points *ps, int stage, group_fn fn, void *u) {
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
int points_variants(const points *ps, int lo, int hi, char v[][32], int max) {
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
            if (report_variant_cmp(v[a], v[b]) > 0) {
                char t[32];
                memcpy(t, v[a], 32);
                memcpy(v[a], v[b], 32);
                memcpy(v[b], t, 32);
            }
        }
    return n;
}

const point *points_find(const points *ps, int lo, int hi, int64_t m, const char *variant) {
    for (int i = lo; i < hi; i++)
        if (ps->p[i].m == m && !strcmp(ps->p[i].variant, variant))
            return &ps->p[i];
    return NULL;
}

/* Ideal speedup N/(N-1) of a variant name ("2_6" -> 1.5, "2_inf" -> 1); 0 when not a pattern. */
double report_ideal_of(const char *variant) {
    ss_pattern pat;
    if (ss_pattern_parse(variant, &pat) != SS_OK) {
        ss_clear_error();
        return 0;
    }
    return ss_pattern_ideal_speedup(pat);
}

/* GPU name and dtype of points known only by their folder
 * ("<GPU>_cc<cc>_<INT8|FP8>_<toolchain>"): the name the status recorded when
 * the folder is this run's device, else the folder's own spelling. */
void points_label(points *ps, const ss_pipe_status *st) {
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
