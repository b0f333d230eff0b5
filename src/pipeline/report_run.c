/* The run's own record in the report, from its status JSON: header (device,
 * libraries, scale), task table, model preparation, tuning table, and the
 * skipped and failed lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "report_internal.h"
#include "slidesparse/tune.h"

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

void report_header(sbuf *b, const ss_pipe_status *st, const char *status_file) {
    char spv[48];
    sbuf_put(b, "# SlideSparse benchmark report — %s\n\n", st->key.gpu);
    if (st->embedded)
        sbuf_put(b, "> **Embedded no-GPU default.** No GPU was used: this run is the seed pipeline on a tiny model "
               "(%s) on the CPU reference backend, with short M lists and the quick scale. It shows the whole "
               "pipeline working; its numbers say nothing about GPU speedups.\n\n",
            st->config.models[0]);
    sbuf_put(b, "| | |\n|---|---|\n");
    sbuf_put(b, "| GPU | %s |\n| compute capability | %d.%d |\n| toolchain (CUDA) | %s |\n| cuBLASLt | %s |\n"
           "| cuSPARSELt | %s |\n| device | %s |\n",
        st->key.gpu, st->key.cc / 10, st->key.cc % 10, st->key.toolchain, st->key.cublaslt,
        sparselt_version(st->key.cusparselt, spv, sizeof spv), st->describe);
    sbuf_put(b, "| scale | %s%s |\n", st->quick ? "quick (1/16 of the SPEC prefill prompts per M; decode unscaled)" : "full (SPEC §8 workloads)",
        st->embedded ? ", embedded default" : "");
    sbuf_put(b, "| models | ");
    for (int i = 0; i < st->config.n_models; i++)
        sbuf_put(b, "%s%s", i ? ", " : "", st->config.models[i]);
    sbuf_put(b, " |\n| dtypes | ");
    for (int i = 0; i < st->config.n_dtypes; i++)
        sbuf_put(b, "%s%s", i ? ", " : "", st->config.dtypes[i] == SS_DTYPE_I8 ? "INT8" : "FP8");
    sbuf_put(b, " |\n| started | %s |\n| last update | %s |\n| total time | %.1f s |\n| status | %s |\n| log | %s |\n\n",
        st->started, st->updated, st->total_seconds, status_file, st->log);
}

void report_task_table(sbuf *b, const ss_pipe_status *st) {
    sbuf_put(b, "## Tasks\n\n| # | task | state | seconds | done | skipped | failed | reason / error |\n"
           "|---:|---|---|---:|---:|---:|---:|---|\n");
    for (int k = 1; k <= SS_PIPE_TASKS; k++) {
        const ss_task_status *t = &st->tasks[k];
        sbuf_put(b, "| %d | %s | %s | %.1f | %d | %d | %d | %s |\n", k, ss_pipe_task_name(k), ss_task_state_name(t->state),
            t->seconds, t->n_done, t->n_skipped, t->n_failed, t->state == SS_TASK_FAILED ? t->error : t->reason);
    }
}

void report_prep_table(sbuf *b, const ss_pipe_status *st) {
    sbuf_put(b, "\n## Model preparation\n\n");
    if (!st->n_ckpts) {
        sbuf_put(b, "No checkpoint was prepared in this run.\n");
        return;
    }
    int synthetic = 0, real = 0;
    sbuf_put(b, "| role | checkpoint | weights | this run |\n|---|---|---|---|\n");
    for (int i = 0; i < st->n_ckpts; i++) {
        const ss_ckpt_record *c = &st->ckpts[i];
        synthetic |= !strcmp(c->role, "base") && strstr(c->origin, "synthesized") != NULL;
        real |= !strcmp(c->role, "base") && strstr(c->origin, "real weights") != NULL;
        sbuf_put(b, "| %s | %s | %s | %s |\n", c->role, c->path, c->origin, c->reused ? "already present, reused" : "written");
    }
    if (synthetic)
        sbuf_put(b, "\n**Synthetic weights were used** (random values, the exact configuration of the model). "
               "Throughput and kernel latency do not depend on weight values, so the benchmark numbers hold; "
               "generated text would be meaningless.\n");
    else if (real)
        sbuf_put(b, "\nReal checkpoint weights were used.\n");
    else
        sbuf_put(b, "\nThe quantized checkpoints were already present; where their weights came from is not "
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

void report_tuning_section(sbuf *b, const ss_pipe_status *st, const char *dir) {
    sbuf_put(b, "\n## Tuning\n\n");
    sbuf_put(b, "%d entries tuned, %d reused from the table, %d combinations skipped.", st->tune_tuned, st->tune_reused,
        st->tune_skipped);
    ss_tune_table *t = NULL;
    char rel[1200], full[2400];
    if (!tuning_locate(st, dir, rel, sizeof rel, full, sizeof full)) {
        sbuf_put(b, " No tuning table was written.\n");
        return;
    }
    if (ss_tune_table_load(full, &t) != SS_OK) {
        sbuf_put(b, " The tuning table `%s` could not be read: %s\n", rel, ss_last_error());
        ss_clear_error();
        return;
    }
    sbuf_put(b, " Table: `%s` (%zu entries).\n\n| backend | in | N | K | M buckets | best algorithm at the largest M | µs |\n"
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
            sbuf_put(b, "| %s | %s | %lld | %lld | %d | %s | %.2f |\n", ss_backend_name(e->backend), ss_dtype_name(e->in),
                (long long)e->n, (long long)e->k, buckets, last->best.desc[0] ? last->best.desc : "-",
                last->n_top ? last->top[0].us : 0.0);
    }
    ss_tune_table_free(t);
}

/* "## <title>": the tasks in `state` (with their reason or error) and every
 * note "<word>: ..." of any task, or `none` when there is neither. */
static void task_list(sbuf *b, const ss_pipe_status *st, const char *title, ss_task_state state, const char *word,
                      const char *none) {
    sbuf_put(b, "\n## %s\n\n", title);
    size_t wl = strlen(word);
    int n = 0;
    for (int k = 1; k <= SS_PIPE_TASKS; k++) {
        const ss_task_status *t = &st->tasks[k];
        if (t->state == state)
            sbuf_put(b, "- task %d (%s): %s\n", k, ss_pipe_task_name(k), state == SS_TASK_FAILED ? t->error : t->reason),
                n++;
        for (int i = 0; i < t->n_notes; i++)
            if (!strncmp(t->notes[i], word, wl))
                sbuf_put(b, "- task %d: %s\n", k, t->notes[i] + wl + 2), n++;
    }
    if (!n)
        sbuf_put(b, "%s\n", none);
}

void report_skip_lists(sbuf *b, const ss_pipe_status *st) {
    task_list(b, st, "Skipped", SS_TASK_SKIPPED, "skipped", "Nothing was skipped.");
    task_list(b, st, "Failed", SS_TASK_FAILED, "failed", "Nothing failed.");
}
