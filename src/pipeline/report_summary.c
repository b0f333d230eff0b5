/* "## Summary": per (stage, dtype, model) the best speedup of each pattern
 * over the dense measurement at the same M (kernels: fastest runs;
 * prefill / decode: medians of the runs), the ideal in the column header,
 * and a one-line verdict. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

/* The value the summary compares: for kernels the best of p's measurements
 * (the fewest µs); for prefill / decode the median of p's runs, as in the
 * stage tables and the speedup CSV. */
static double summary_value(const point *p) {
    if (p->stage <= ST_DECODE)
        return p->tps;
    double b = p->rep[0];
    for (int i = 1; i < p->n_rep; i++)
        b = p->stage <= ST_DECODE ? fmax(b, p->rep[i]) : fmin(b, p->rep[i]);
    return b;
}

/* Speedup of sparse point p over the dense point at its M, each side taken
 * as best_of; 0 without a dense point. */
static double best_speedup(const points *ps, const point *p) {
    const point *d = points_dense_of(ps, p);
    if (!d || summary_value(p) <= 0 || summary_value(d) <= 0)
        return 0;
    return p->stage <= ST_DECODE ? summary_value(p) / summary_value(d) : summary_value(d) / summary_value(p);
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
    sbuf_put(sm->b, "| %s | %s | %s |", report_stage_title[stage], ps->p[lo].dtype[0] ? ps->p[lo].dtype : ps->p[lo].dev,
        ps->p[lo].model);
    for (int k = 0; k < sm->nv; k++) {
        double sp;
        const point *at = best_in(ps, lo, hi, sm->v[k], &sp);
        if (!at) {
            sbuf_put(sm->b, " — |");
            continue;
        }
        sm->seen[k]++;
        sm->wins[k] += sp > 1.0;
        if (sp > sm->top[k])
            sm->top[k] = sp, sm->top_at[k] = at;
        sbuf_put(sm->b, sp > 1.0 ? " **%.2f×** (M %lld) |" : " %.2f× (M %lld) |", sp, (long long)at->m);
    }
    sbuf_put(sm->b, "\n");
    sm->rows++;
}

/* The header row: one column per pattern with its ideal. */
static void summary_header(sbuf *b, const summary *sm) {
    sbuf_put(b, "Best speedup of each pattern over the dense measurement at the same M (kernels: the fastest run of "
                "each side; prefill and decode: the median of each side's runs), and the M where it was reached; bold where sparse beats dense. The ideal speedup N/(N−1) is in the "
                "column header.\n\n| stage | dtype | model |");
    for (int k = 0; k < sm->nv; k++) {
        double id = report_ideal_of(sm->v[k]);
        sbuf_put(b, id > 0 ? " %s (ideal %.2f×) |" : " %s |", sm->v[k], id);
    }
    sbuf_put(b, "\n|---|---|---|");
    for (int k = 0; k < sm->nv; k++)
        sbuf_put(b, "---:|");
    sbuf_put(b, "\n");
}

/* The verdict: which patterns beat dense, where and how close to their ideal. */
static void summary_verdict(sbuf *b, const summary *sm, const points *ps, const ss_pipe_status *st) {
    int repeated;
    const point *w;
    sbuf_put(b, "\n**Verdict%s:**", spread_busy_points(ps, &repeated, &w) ? " (on noisy measurements: see the warning below)" : "");
    int winners = 0;
    sbuf never = {0};
    for (int k = 0; k < sm->nv; k++) {
        if (!sm->seen[k])
            continue;
        if (!sm->wins[k]) {
            sbuf_put(&never, "%s%s", never.s ? ", " : "", sm->v[k]);
            continue;
        }
        const point *a = sm->top_at[k];
        double id = report_ideal_of(sm->v[k]);
        sbuf_put(b, "%s %s beats dense in %d of %d rows (best %.2f×", winners ? ";" : "", sm->v[k], sm->wins[k],
                 sm->seen[k], sm->top[k]);
        if (id > 0)
            sbuf_put(b, ", %.0f%% of its ideal %.2f×", 100 * sm->top[k] / id, id);
        sbuf_put(b, ": %s, %s, M %lld)", report_stage_title[a->stage], a->dtype, (long long)a->m);
        winners++;
    }
    if (!winners)
        sbuf_put(b, " no pattern beats dense anywhere in this run");
    if (never.s)
        sbuf_put(b, "; never faster than dense: %s", never.s);
    sbuf_put(b, ".%s\n", st->embedded ? " These are CPU reference numbers: they say nothing about GPU speedups." : "");
    free(never.s);
}

/* "## Summary": best speedup per (stage, dtype, model) and pattern, the
 * ideal in the header, a verdict, and the busy-machine warning. */
void report_summary_section(sbuf *b, const points *ps, const ss_pipe_status *st) {
    sbuf_put(b, "## Summary\n\n");
    summary sm = {.b = b};
    char all[32][32];
    int na = points_variants(ps, 0, ps->n, all, 32);
    for (int k = 0; k < na; k++)
        if (strcmp(all[k], "dense"))
            memcpy(sm.v[sm.nv++], all[k], 32);
    int any_dense = 0;
    for (int i = 0; i < ps->n; i++)
        any_dense |= strcmp(ps->p[i].variant, "dense") && points_dense_of(ps, &ps->p[i]) != NULL;
    if (!sm.nv || !any_dense) {
        sbuf_put(b, "No sparse measurement with a dense baseline was found: nothing to summarize.\n");
        return;
    }
    summary_header(b, &sm);
    for (int stg = 0; stg < ST_COUNT; stg++)
        points_for_groups(ps, stg, summary_row, &sm);
    summary_verdict(b, &sm, ps, st);
    report_busy_warning(b, ps);
}
