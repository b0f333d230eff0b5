/* The run-all report: collects every measured point from the CSVs under a
 * results folder (throughput and kernel layouts of slidesparse/serve.h and
 * bench.h), reads the status JSON for the task table, checkpoints and
 * tuning, the perplexities of task 9, and writes <GPU>_report_<date>.md
 * with gnuplot PNGs in plots/.
 * Needs nothing but the folder, so `slidesparse report DIR` regenerates it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "report_internal.h"

void sbuf_put(sbuf *b, const char *fmt, ...) {
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

int report_write_text(const char *path, const char *text) {
    return ss_write_file_atomic(path, text, strlen(text)) == SS_OK;
}

ss_status ss_pipe_report(const char *dir, char *report, size_t n) {
    char status_path[1200];
    ss_pipe_status *st = calloc(1, sizeof *st);
    if (!st)
        return ss_fail(SS_ENOMEM, "report: out of memory");
    points ps = {0};
    sbuf b = {0};
    ss_status s;
    if ((s = ss_pipe_status_find(dir, status_path, sizeof status_path)) != SS_OK ||
        (s = ss_pipe_status_load(status_path, st)) != SS_OK)
        goto fail;
    if ((s = points_collect_throughput(&ps, dir, ST_PREFILL)) != SS_OK ||
        (s = points_collect_throughput(&ps, dir, ST_DECODE)) != SS_OK || (s = points_collect_kernel(&ps, dir, 7)) != SS_OK ||
        (s = points_collect_kernel(&ps, dir, 8)) != SS_OK || (s = points_collect_kernel(&ps, dir, 6)) != SS_OK)
        goto fail;
    points_finish(&ps);
    points_label(&ps, st);

    report_header(&b, st, strrchr(status_path, '/') + 1);
    report_summary_section(&b, &ps, st);
    sbuf_put(&b, "\n");
    report_task_table(&b, st);
    report_prep_table(&b, st);
    report_tuning_section(&b, st, dir);
    sbuf_put(&b, "\n## Prefill throughput (task 4)\n");
    points_for_groups(&ps, ST_PREFILL, report_throughput_table, &b);
    sbuf_put(&b, "\n## Decode throughput (task 5)\n");
    points_for_groups(&ps, ST_DECODE, report_throughput_table, &b);
    sbuf_put(&b, "\n## Kernel benchmarks (tasks 6-8)\n");
    points_for_groups(&ps, ST_GEMM, report_kernel_table, &b);
    points_for_groups(&ps, ST_LINEAR, report_kernel_table, &b);
    if ((s = report_accuracy_section(&b, dir)) != SS_OK)
        goto fail;
    report_spread_section(&b, &ps);
    report_skip_lists(&b, st);
    report_conclusions(&b, &ps);
    if ((s = report_plots_section(&b, &ps, dir)) != SS_OK)
        goto fail;

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
    free(b.s);
    free(ps.p);
    free(st);
    return s;
}
