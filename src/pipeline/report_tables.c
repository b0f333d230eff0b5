/* The per-stage tables (prefill and decode throughput, kernel latency and
 * speedup per M) and the conclusions computed from them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

void report_throughput_table(void *u, const points *ps, int stage, int lo, int hi) {
    sbuf *b = u;
    sbuf_put(b, "\n**%s — %s, %s**\n\n", report_stage_title[stage], ps->p[lo].model, ps->p[lo].dev);
    sbuf_put(b, "| M | variant | tokens/s | requests/s | elapsed s | speedup vs dense |\n|---:|---|---:|---:|---:|---:|\n");
    for (int i = lo; i < hi; i++) {
        const point *p = &ps->p[i];
        char sp[32] = "—";
        if (p->speedup > 0)
            snprintf(sp, sizeof sp, "%.3f", p->speedup);
        else if (!strcmp(p->variant, "dense"))
            snprintf(sp, sizeof sp, "1 (baseline)");
        sbuf_put(b, "| %lld | %s | %.1f | %.3f | %.3f | %s |\n", (long long)p->m, p->variant, p->tps, p->rps, p->el, sp);
    }
}

void report_kernel_table(void *u, const points *ps, int stage, int lo, int hi) {
    sbuf *b = u;
    char v[32][32];
    int nv = points_variants(ps, lo, hi, v, 32);
    sbuf_put(b, "\n**%s — %s, %s** (speedup = Σdense / Σsparse over the 4 projections of one layer; ideal N/(N−1) in "
           "parentheses)\n\n| M | dense µs |",
        report_stage_title[stage], ps->p[lo].model, ps->p[lo].dev);
    for (int k = 0; k < nv; k++)
        if (strcmp(v[k], "dense"))
            sbuf_put(b, " %s |", v[k]);
    sbuf_put(b, "\n|---:|---:|");
    for (int k = 1; k < nv; k++)
        sbuf_put(b, "---:|");
    sbuf_put(b, "\n");
    int64_t last = -1;
    for (int i = lo; i < hi; i++) {
        if (ps->p[i].m == last)
            continue;
        last = ps->p[i].m;
        const point *d = points_find(ps, lo, hi, last, "dense");
        if (d)
            sbuf_put(b, "| %lld | %.1f |", (long long)last, d->us);
        else
            sbuf_put(b, "| %lld | — |", (long long)last);
        for (int k = 0; k < nv; k++) {
            if (!strcmp(v[k], "dense"))
                continue;
            const point *p = points_find(ps, lo, hi, last, v[k]);
            if (p && p->speedup > 0)
                sbuf_put(b, " %.3f (%.2f) |", p->speedup, p->ideal);
            else
                sbuf_put(b, " — |");
        }
        sbuf_put(b, "\n");
    }
}

void report_conclusions(sbuf *b, const points *ps) {
    sbuf_put(b, "\n## Conclusions (computed from the data above)\n\n");
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
        sbuf_put(b, "- **%s**: best speedup %.3f (%s, %s, M %lld); worst %.3f (%s, %s, M %lld). Sparsity wins in %d "
               "of %d measurements, loses in %d.",
            report_stage_title[st], best->speedup, best->variant, best->dev, (long long)best->m, worst->speedup,
            worst->variant, worst->dev, (long long)worst->m, wins, wins + losses, losses);
        /* where: the patterns that win on average across M */
        char v[32][32];
        int nv = points_variants(ps, 0, ps->n, v, 32);
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
                sbuf_put(exp(s / n) >= 1 ? &w : &l, " %s (%.3f)", v[k], exp(s / n));
        }
        sbuf_put(b, " Geometric-mean speedup ≥ 1:%s; < 1:%s.\n", w.s ? w.s : " none", l.s ? l.s : " none");
        free(w.s);
        free(l.s);
    }
    if (!any)
        sbuf_put(b, "No sparse measurement with a dense baseline was found.\n");
}
