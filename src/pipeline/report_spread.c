/* Points measured more than once (the runs of each prefill / decode point,
 * config throughput_repeats; the dense and native 2_4 kernel sides by every
 * kernel task): min / median / max, their spread, the "Measurement spread"
 * section and the busy-machine warning under the summary. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double report_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* min / median / max of p's measurements; returns their count. */
int spread_stats(const point *p, double *mn, double *med, double *mx) {
    double v[REP_MAX];
    memcpy(v, p->rep, (size_t)p->n_rep * sizeof *v);
    *med = report_median(v, p->n_rep);
    *mn = v[0];
    *mx = v[p->n_rep - 1];
    return p->n_rep;
}

/* (max - min) / median of p's repeats; 0 with one measurement. */
double spread_of(const point *p) {
    double mn, med, mx;
    if (p->n_rep < 2 || spread_stats(p, &mn, &med, &mx) < 2 || med <= 0)
        return 0;
    return (mx - mn) / med;
}

/* Every repeated measurement whose spread exceeds SPREAD_WARN: the count, the
 * number of repeated points, and the worst one. */
int spread_busy_points(const points *ps, int *repeated, const point **worst) {
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

void report_busy_warning(sbuf *b, const points *ps) {
    int repeated;
    const point *w;
    int n = spread_busy_points(ps, &repeated, &w);
    if (!n)
        return;
    double mn, med, mx;
    spread_stats(w, &mn, &med, &mx);
    sbuf_put(b, "\n> **Warning: the machine was busy: treat these numbers with care.** %d of %d points measured more "
           "than once differ by more than %.0f%% between their runs (largest: %s %s %s, %s, M %lld: min %.1f, "
           "median %.1f, max %.1f %s, %.0f%%). See *Measurement spread*.\n",
        n, repeated, SPREAD_WARN * 100, w->model, w->dtype, report_stage_title[w->stage], w->variant, (long long)w->m, mn,
        med, mx, w->stage <= ST_DECODE ? "tokens/s" : "µs", spread_of(w) * 100);
}

/* The row of the series (stage, dev, model, variant) of repeated point i,
 * written by the series' first repeated point in sorted order: its point
 * count, most runs, and the point with the largest spread. */
static void series_row(sbuf *b, const points *ps, int i) {
    const point *p = &ps->p[i], *worst = p;
    int pts = 0, runs = 0;
    for (int j = 0; j < ps->n; j++) {
        const point *q = &ps->p[j];
        if (q->n_rep < 2 || q->stage != p->stage || strcmp(q->dev, p->dev) || strcmp(q->model, p->model) ||
            strcmp(q->variant, p->variant))
            continue;
        if (j < i)
            return; /* an earlier point reports this series */
        pts++;
        runs = q->n_rep > runs ? q->n_rep : runs;
        if (spread_of(q) > spread_of(worst))
            worst = q;
    }
    double mn, med, mx;
    spread_stats(worst, &mn, &med, &mx);
    const char *unit = p->stage <= ST_DECODE ? "tokens/s" : "µs";
    int hot = spread_of(worst) > SPREAD_WARN;
    sbuf_put(b, "| %s | %s | %s | %s | %d | %d | %lld | %.1f %s | %.1f %s | %.1f %s | %s%.1f%%%s |\n",
             report_stage_title[p->stage], p->dtype, p->model, p->variant, pts, runs, (long long)worst->m, mn, unit,
             med, unit, mx, unit, hot ? "**" : "", spread_of(worst) * 100, hot ? "**" : "");
}

/* "## Measurement spread": min / median / max of the points measured more
 * than once, per (stage, dtype, model, variant) the largest spread. */
void report_spread_section(sbuf *b, const points *ps) {
    sbuf_put(b, "\n## Measurement spread\n\n");
    int repeated;
    const point *w;
    int busy = spread_busy_points(ps, &repeated, &w);
    int once[ST_COUNT] = {0}, twice[ST_COUNT] = {0};
    for (int i = 0; i < ps->n; i++)
        (ps->p[i].n_rep > 1 ? twice : once)[ps->p[i].stage]++;
    int tput_once = once[ST_PREFILL] + once[ST_DECODE] && !twice[ST_PREFILL] && !twice[ST_DECODE];
    if (tput_once)
        sbuf_put(b, "Prefill and decode ran once per point (one tokens/s value each): their spread is not measured here; "
               "config key `throughput_repeats` (3 in the GPU configurations) runs each point several times.\n");
    if (!repeated) {
        sbuf_put(b, "%sNo point was measured more than once in this run: no spread can be shown.\n",
            once[ST_PREFILL] + once[ST_DECODE] ? "\n" : "");
        return;
    }
    if (twice[ST_PREFILL] + twice[ST_DECODE])
        sbuf_put(b, "Prefill and decode points were each run several times (one CSV row per run): their tables, the "
               "speedup CSVs and the summary use the median of the runs. ");
    if (twice[ST_GEMM] + twice[ST_LINEAR])
        sbuf_put(b, "%sKernel latencies are each the median of the timed iterations; the dense and native 2_4 sides are "
               "measured again by every kernel task (6, 7, 8), so their runs can be compared. ",
            tput_once ? "\n" : "");
    sbuf_put(b, "Spread = (max − min) / median over the runs of one point; above %.0f%% the machine was likely busy. Per "
           "series, the point with the largest spread:\n\n"
           "| stage | dtype | model | variant | points | runs | largest spread at M | min | median | max | spread |\n"
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        SPREAD_WARN * 100);
    for (int i = 0; i < ps->n; i++)
        if (ps->p[i].n_rep > 1)
            series_row(b, ps, i);
    if (busy)
        sbuf_put(b, "\n**The machine was busy: treat these numbers with care** (%d of %d repeated points spread more than "
               "%.0f%%).\n",
            busy, repeated, SPREAD_WARN * 100);
    else
        sbuf_put(b, "\nEvery repeated point agrees within %.0f%%.\n", SPREAD_WARN * 100);
}
