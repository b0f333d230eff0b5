/* run-all: the task loop (log, status JSON after every change, resume) and
 * tasks 1-9, each a thin driver over the library call its CLI command makes. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "pipeline_internal.h"
#include "slidesparse.h"

typedef struct {
    const ss_pipe_opts *o;
    ss_pipe_config *c;
    ss_pipe_status st;
    char status_path[1200], log_path[1200];
    char reserve[1300];       /* space kept so a full disk can still be recorded */
    char ckroot[1100], slidroot[1200];
    FILE *log;
    ss_context *ctx;
    int gpu;
    double t0, prior_s;       /* this process's start; seconds of earlier (resumed) runs */
    int task, k, n;           /* current task; k-th of n this run */
    double task_t0;
} run;

// --- log + progress ----------------------------------------------------------------------------

static void logf_(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(run *r, const char *fmt, ...) {
    char msg[2048], line[2100], ts[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = ' ';
    ss_pipe_iso_now(ts, sizeof ts);
    snprintf(line, sizeof line, "%s %s", ts, msg);
    if (r->log) {
        fprintf(r->log, "%s\n", line);
        fflush(r->log);
    }
    if (r->o->log)
        r->o->log(r->o->user, line);
}

static void lib_log(void *user, const char *line) { logf_(user, "  %s", line); }

static void progress(run *r, const char *what, double frac) {
    if (!r->o->progress)
        return;
    double el = ss_monotonic_s() - r->t0;
    double done = (r->k - 1) + (frac > 0 ? frac : 0);
    ss_pipe_progress p = {.task = r->task, .k = r->k, .n = r->n, .name = ss_pipe_task_name(r->task),
                          .what = what ? what : "", .task_frac = frac, .elapsed_s = el,
                          .eta_s = done > 0.05 ? el / done * (r->n - done) : -1};
    r->o->progress(r->o->user, &p);
}

static void tune_progress(void *user, const ss_tune_progress *p) {
    char what[256];
    snprintf(what, sizeof what, "%d/%d %s", p->index + 1, p->total, p->what);
    progress(user, what, p->total > 0 ? (double)p->index / p->total : -1);
}

static void prep_progress(void *user, int64_t i, int64_t n, int64_t bd, int64_t bt) {
    char what[128];
    snprintf(what, sizeof what, "tensor %lld/%lld", (long long)i, (long long)n);
    progress(user, what, bt > 0 ? (double)bd / (double)bt : n > 0 ? (double)i / (double)n : -1);
}

/* 256 KiB of real blocks: when the disk fills, the status rewrite frees them
 * first, so the ENOSPC failure still reaches the status JSON. */
static void make_reserve(run *r) {
    snprintf(r->reserve, sizeof r->reserve, "%s/.%s_%s.reserve", r->c->out, r->st.name, r->st.stamp);
    FILE *f = fopen(r->reserve, "w");
    static const char zero[4096];
    int ok = f != NULL;
    for (int i = 0; ok && i < 64; i++)
        ok = fwrite(zero, 1, sizeof zero, f) == sizeof zero;
    if (f && (fclose(f) != 0 || !ok))
        ok = 0;
    if (!ok) {
        unlink(r->reserve);
        r->reserve[0] = '\0';
    }
}

static void drop_reserve(run *r) {
    if (r->reserve[0])
        unlink(r->reserve);
    r->reserve[0] = '\0';
}

static ss_status save_status(run *r) {
    ss_pipe_iso_now(r->st.updated, sizeof r->st.updated);
    r->st.total_seconds = r->prior_s + (ss_monotonic_s() - r->t0);
    ss_status s = ss_pipe_status_save(&r->st, r->status_path);
    if (s == SS_ENOSPC && r->reserve[0]) {
        drop_reserve(r);
        s = ss_pipe_status_save(&r->st, r->status_path);
    }
    if (s != SS_OK)
        logf_(r, "warning: status %s not rewritten: %s", r->status_path, ss_last_error());
    return s;
}

static ss_task_status *cur(run *r) { return &r->st.tasks[r->task]; }

static void note(run *r, const char *kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(run *r, const char *kind, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ss_task_status *t = cur(r);
    if (!strcmp(kind, "skipped"))
        t->n_skipped++;
    else if (!strcmp(kind, "failed"))
        t->n_failed++;
    if (t->n_notes < SS_PIPE_MAX_NOTES)
        snprintf(t->notes[t->n_notes++], sizeof t->notes[0], "%s: %.240s", kind, msg);
    logf_(r, "task %d: %s: %s", r->task, kind, msg);
}

// --- paths ----------------------------------------------------------------------------------

const char *ss_pipe_model_stem(const char *preset) {
    static const struct {
        const char *preset, *stem;
    } stems[] = {{"bitnet-2b", "BitNet-2B"},     {"llama3.2-1b", "Llama3.2-1B"},
                 {"llama3.2-3b", "Llama3.2-3B"}, {"qwen2.5-7b", "Qwen2.5-7B"},
                 {"qwen2.5-14b", "Qwen2.5-14B"}};
    for (size_t i = 0; i < sizeof stems / sizeof *stems; i++)
        if (!strcmp(preset, stems[i].preset))
            return stems[i].stem;
    return preset;
}

void ss_pipe_sanitize(const char *in, char *out, size_t n) {
    snprintf(out, n, "%s", in);
    for (char *p = out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-'))
            *p = '_';
}

static const char *dt_tag(ss_dtype d) { return d == SS_DTYPE_I8 ? "INT8" : "FP8"; }

static int exists(const char *dir, const char *leaf) {
    char p[2400];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, leaf);
    return stat(p, &sb) == 0;
}

static void base_dir(const run *r, int mi, char *buf, size_t n) {
    if (mi == 0 && r->c->base[0])
        snprintf(buf, n, "%s", r->c->base);
    else
        snprintf(buf, n, "%s/%s-BF16", r->ckroot, ss_pipe_model_stem(r->c->models[mi]));
}

static void quant_dir(const run *r, int mi, ss_dtype d, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s-%s", r->ckroot, ss_pipe_model_stem(r->c->models[mi]), dt_tag(d));
}

static void ckpt(run *r, const char *role, const char *path, const char *origin, int reused) {
    for (int i = 0; i < r->st.n_ckpts; i++)
        if (!strcmp(r->st.ckpts[i].path, path)) {
            snprintf(r->st.ckpts[i].origin, sizeof r->st.ckpts[i].origin, "%s", origin);
            r->st.ckpts[i].reused = reused;
            return;
        }
    if (r->st.n_ckpts >= SS_PIPE_MAX_CKPTS)
        return;
    ss_ckpt_record *c = &r->st.ckpts[r->st.n_ckpts++];
    snprintf(c->role, sizeof c->role, "%s", role);
    snprintf(c->path, sizeof c->path, "%s", path);
    snprintf(c->origin, sizeof c->origin, "%s", origin);
    c->reused = reused;
}

// --- task 1: base + quantized checkpoints --------------------------------------------------------

/* Positions a synthesized model needs for the configured workloads (the tiny
 * presets hold 256; throughput does not depend on this value). */
static int64_t positions_needed(const ss_pipe_config *c) {
    int64_t need = 0;
    for (int i = 0; i < c->n_prefill; i++)
        need = need > (c->m_prefill[i] < 1024 ? c->m_prefill[i] : 1024) + 1 ? need
                                                                            : (c->m_prefill[i] < 1024 ? c->m_prefill[i] : 1024) + 1;
    if (c->n_decode > 0 && need < 16 + 256)
        need = 16 + 256;
    return need;
}

static ss_status raise_positions(const char *dir, int64_t need, int *raised) {
    char path[1300];
    snprintf(path, sizeof path, "%s/config.json", dir);
    *raised = 0;
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o)
        return ss_fail(SS_EFORMAT, "%s: line %d: %s", path, je.line, je.text);
    json_t *v = json_object_get(o, "max_position_embeddings");
    ss_status s = SS_OK;
    if (json_is_integer(v) && json_integer_value(v) < need) {
        json_object_set_new(o, "max_position_embeddings", json_integer(need < 2048 ? 2048 : need));
        char *text = json_dumps(o, JSON_INDENT(2));
        s = text ? ss_write_file_atomic(path, text, strlen(text)) : ss_fail(SS_ENOMEM, "%s: out of memory", path);
        free(text);
        *raised = 1;
    }
    json_decref(o);
    return s;
}

static ss_status task_base(run *r, int mi) {
    SS_TRY(ss_mkdir_p(r->ckroot, NULL, 0));
    const char *preset = r->c->models[mi];
    char dir[1200], marker[1300], origin[128];
    base_dir(r, mi, dir, sizeof dir);
    snprintf(marker, sizeof marker, "%s.synthetic", dir);
    if (mi == 0 && r->c->base[0]) {
        if (!exists(dir, "config.json"))
            return ss_fail(SS_EIO, "--model %s: no config.json there (expected a Hugging Face checkpoint folder)", dir);
        ckpt(r, "base", dir, "given (--model): real weights", 1);
        logf_(r, "task 1: base checkpoint %s given, used as is", dir);
    }
    int synthetic = !(mi == 0 && r->c->base[0]) && access(marker, F_OK) == 0;
    int all_quantized = 1;
    for (int d = 0; d < r->c->n_dtypes; d++) {
        char q[1200];
        quant_dir(r, mi, r->c->dtypes[d], q, sizeof q);
        all_quantized &= exists(q, "config.json");
    }
    if (mi == 0 && r->c->base[0]) {
        /* recorded above */
    } else if (!exists(dir, "config.json") && all_quantized) {
        /* a base is only an input of quantization: do not synthesize gigabytes for nothing */
        logf_(r, "task 1: %s absent, not needed: every quantized checkpoint is present", dir);
        synthetic = 0;
    } else if (exists(dir, "config.json")) {
        snprintf(origin, sizeof origin, "%s", synthetic ? "synthesized earlier (random weights, exact configuration)"
                                                        : "present under checkpoints/: real weights");
        logf_(r, "task 1: %s already present, skipped", dir);
        ckpt(r, "base", dir, origin, 1);
        cur(r)->n_skipped++;
    } else {
        /* The marker goes first, so a kill after the commit still reads as synthetic. */
        FILE *f = fopen(marker, "w");
        if (!f)
            return ss_fail_errno(errno, "%s: cannot write", marker);
        fprintf(f, "{\"preset\": \"%s\", \"seed\": %llu}\n", preset, (unsigned long long)r->c->seed);
        if (fclose(f) != 0)
            return ss_fail_errno(errno, "%s: cannot write", marker);
        logf_(r, "task 1: synthesizing %s (preset %s, random weights, exact configuration)", dir, preset);
        ss_synth_opts so = {.preset = preset, .out_dir = dir, .seed = r->c->seed, .progress = prep_progress, .user = r};
        SS_TRY(ss_synth(&so));
        ckpt(r, "base", dir, "synthesized (random weights, exact configuration)", 0);
        cur(r)->n_done++;
        synthetic = 1;
    }
    if (synthetic) {
        int raised = 0;
        SS_TRY(raise_positions(dir, positions_needed(r->c), &raised));
        if (raised)
            logf_(r, "task 1: %s: max_position_embeddings raised so the SPEC workloads fit", dir);
    }
    for (int d = 0; d < r->c->n_dtypes; d++) {
        char q[1200];
        quant_dir(r, mi, r->c->dtypes[d], q, sizeof q);
        if (exists(q, "config.json")) {
            logf_(r, "task 1: %s already present, skipped", q);
            ckpt(r, "quantized", q, "quantized from the base checkpoint", 1);
            cur(r)->n_skipped++;
            continue;
        }
        logf_(r, "task 1: quantizing %s -> %s", dir, q);
        ss_quantize_opts qo = {.in_dir = dir, .out_dir = q, .dtype = r->c->dtypes[d], .progress = prep_progress, .user = r};
        SS_TRY(ss_quantize_checkpoint(&qo));
        ckpt(r, "quantized", q, "quantized from the base checkpoint", 0);
        cur(r)->n_done++;
    }
    return SS_OK;
}

// --- task 2: convert -------------------------------------------------------------------------------

static ss_status task_convert(run *r, int mi) {
    for (int d = 0; d < r->c->n_dtypes; d++) {
        char q[1200], out[1400];
        quant_dir(r, mi, r->c->dtypes[d], q, sizeof q);
        if (!exists(q, "config.json"))
            return ss_fail(SS_EIO, "%s: missing (task 1 makes it)", q);
        ss_pattern todo[SS_PIPE_MAX_LIST];
        int nt = 0;
        for (int p = 0; p < r->c->n_sparsity; p++) {
            SS_TRY(ss_convert_out_dir(q, r->slidroot, r->c->sparsity[p], out, sizeof out));
            if (exists(out, "config.json")) {
                logf_(r, "task 2: %s already present, skipped", out);
                ckpt(r, "slid", out, "converted from the quantized checkpoint", 1);
                cur(r)->n_skipped++;
            } else {
                todo[nt++] = r->c->sparsity[p];
            }
        }
        if (!nt)
            continue;
        logf_(r, "task 2: converting %s to %d pattern(s)", q, nt);
        ss_convert_opts co = {.in_dir = q, .out_root = r->slidroot, .patterns = todo, .n_patterns = nt,
                              .dtype = SS_DTYPE_COUNT, .progress = prep_progress, .user = r};
        SS_TRY(ss_convert_checkpoint(&co));
        for (int p = 0; p < nt; p++) {
            SS_TRY(ss_convert_out_dir(q, r->slidroot, todo[p], out, sizeof out));
            ckpt(r, "slid", out, "converted from the quantized checkpoint", 0);
            cur(r)->n_done++;
        }
    }
    return SS_OK;
}

/* The configured dtypes this device runs (the rest noted as skipped, once per task). */
static int runnable_dtypes(run *r, ss_dtype *out) {
    int n = 0;
    ss_backend b = r->gpu ? SS_BACKEND_CUBLASLT : SS_BACKEND_CPU;
    for (int d = 0; d < r->c->n_dtypes; d++) {
        const char *why = ss_linear_supports(r->ctx, b, r->c->dtypes[d], SS_PATTERN_DENSE);
        if (why)
            note(r, "skipped", "%s: %s", dt_tag(r->c->dtypes[d]), why);
        else
            out[n++] = r->c->dtypes[d];
    }
    return n;
}

// --- task 3: tune ----------------------------------------------------------------------------------

/* The coarse (dense) stage's M list: the configured one plus every decode M
 * of task 5. Why: lookups take the smallest tuned M >= the request, and the
 * default coarse list starts at 256, so dense decode at M 64 ran M 256's
 * cuBLASLt algorithm (~16% slower than its own) while the fine stage tunes
 * the sparse backends at 64 — an unfair decode comparison. Sorted, unique. */
static int coarse_ms(const ss_pipe_config *c, int64_t *out) {
    int n = 0;
    for (int i = 0; i < c->n_coarse; i++)
        out[n++] = c->m_coarse[i];
    for (int i = 0; c->tasks[5] && i < c->n_decode; i++) {
        int dup = 0;
        for (int j = 0; j < n; j++)
            dup |= out[j] == c->m_decode[i];
        if (!dup)
            out[n++] = c->m_decode[i];
    }
    for (int i = 1; i < n; i++) /* insertion sort: a handful of entries */
        for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int64_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

static ss_status task_tune(run *r, int mi) {
    ss_proj_shape sh[4];
    SS_TRY(ss_preset_shapes(r->c->models[mi], sh));
    char root[1200];
    snprintf(root, sizeof root, "%s/tuning", r->c->out);
    ss_dtype dts[2];
    int nd = mi == 0 ? runnable_dtypes(r, dts) : 0;
    if (mi > 0) /* noted once */
        for (int d = 0; d < r->c->n_dtypes; d++)
            if (!ss_linear_supports(r->ctx, r->gpu ? SS_BACKEND_CUBLASLT : SS_BACKEND_CPU, r->c->dtypes[d],
                                    SS_PATTERN_DENSE))
                dts[nd++] = r->c->dtypes[d];
    if (nd == 0)
        return SS_OK;
    int64_t mc[2 * SS_PIPE_MAX_LIST];
    int nmc = coarse_ms(r->c, mc);
    ss_tune_opts o = {.ctx = r->ctx, .shapes = sh, .n_shapes = 4, .dtypes = dts,
                      .n_dtypes = nd, .patterns = r->c->sparsity, .n_patterns = r->c->n_sparsity,
                      .coarse = r->c->coarse, .fine = r->c->fine, .m_coarse = mc,
                      .n_m_coarse = nmc, .m_fine = r->c->m_fine, .n_m_fine = r->c->n_fine,
                      .root = root, .warmup = r->c->warmup, .repeat = r->c->repeat, .seed = r->c->seed,
                      .progress = tune_progress, .user = r, .log = lib_log};
    ss_tune_result res;
    SS_TRY(ss_tune_run(&o, &res));
    r->st.tune_tuned += res.tuned;
    r->st.tune_reused += res.reused;
    r->st.tune_skipped += res.skipped;
    if (res.path[0])
        snprintf(r->st.tune_path, sizeof r->st.tune_path, "%s", res.path);
    cur(r)->n_done += res.tuned + res.reused;
    cur(r)->n_skipped += res.skipped;
    logf_(r, "task 3: %s: %d entries tuned, %d reused, %d skipped", r->c->models[mi], res.tuned, res.reused,
          res.skipped);
    return SS_OK;
}

// --- tasks 4-5: throughput ---------------------------------------------------------------------------

/* Every M of the stage on one checkpoint, each measured throughput_repeats
 * times: one CSV row per run (ss_throughput_append), the runs of one M side by
 * side. The task removed the stage's folder first, so no row of an earlier
 * (interrupted) run is counted with these. */
static ss_status throughput_one(run *r, ss_stage stg, const char *model_dir, ss_backend b, const char *csv,
                                int *step, int steps) {
    const int64_t *ms = stg == SS_STAGE_PREFILL ? r->c->m_prefill : r->c->m_decode;
    int nm = stg == SS_STAGE_PREFILL ? r->c->n_prefill : r->c->n_decode;
    int reps = r->c->throughput_repeats > 0 ? r->c->throughput_repeats : 1;
    ss_model *m = NULL;
    ss_status s = ss_model_load(r->ctx, b, model_dir, &m);
    if (s != SS_OK)
        return s;
    const ss_model_config *cfg = ss_model_get_config(m);
    size_t budget = (size_t)(r->c->kv_memory_mb * 1048576.0);
    if (b != SS_BACKEND_CPU) {
        size_t fr = 0, tot = 0;
        if ((s = ss_device_memory(r->ctx, &fr, &tot)) != SS_OK)
            goto done;
        budget = (size_t)(r->c->gpu_memory_fraction * (double)fr);
    }
    int64_t blocks = (int64_t)(budget / ss_kv_block_bytes(cfg, ss_model_get_kv_dtype(m)));
    for (int i = 0; i < nm; i++, (*step)++) {
        ss_workload w;
        if ((s = ss_workload_make(stg, ms[i], &w)) != SS_OK)
            goto done;
        int64_t np = ss_workload_scaled_prompts(&w, r->c->quick ? 1.0 / 16 : 1.0);
        for (int rep = 0; rep < reps; rep++) {
            char what[256], run_of[32] = "";
            if (reps > 1)
                snprintf(run_of, sizeof run_of, " run %d/%d", rep + 1, reps);
            snprintf(what, sizeof what, "%d/%d %s M %lld%s", *step + 1, steps, csv + strlen(r->c->out) + 1,
                     (long long)ms[i], run_of);
            progress(r, what, ((double)*step + (double)rep / reps) / steps);
            ss_throughput_row row;
            ss_serve_opts so = {0};
            if ((s = ss_throughput_run(m, blocks > INT32_MAX ? INT32_MAX : (int32_t)blocks, &w, np, r->c->seed,
                                       &so, &row)) != SS_OK ||
                (s = ss_throughput_append(csv, &row)) != SS_OK)
                goto done;
            logf_(r, "task %d: %s M %lld%s: %.1f tokens/s, %.2f requests/s, %.3f s", r->task, model_dir,
                  (long long)ms[i], run_of, row.tokens_per_s, row.requests_per_s, row.elapsed_s);
        }
        cur(r)->n_done++; /* one point, however many runs */
    }
done:
    ss_model_destroy(m);
    return s;
}

static ss_status task_throughput(run *r, ss_stage stg) {
    const char *sn = ss_stage_name(stg);
    char gpu[160], stage_root[1200];
    ss_pipe_sanitize(r->st.key.gpu, gpu, sizeof gpu);
    snprintf(stage_root, sizeof stage_root, "%s/throughput_benchmark_results/%s", r->c->out, sn);
    /* a (re)started task rebuilds its results: no row of an interrupted run survives */
    ss_status s = ss_remove_tree(stage_root);
    if (s != SS_OK)
        return s;
    ss_clear_error();
    int nm = stg == SS_STAGE_PREFILL ? r->c->n_prefill : r->c->n_decode;
    int steps = r->c->n_models * r->c->n_dtypes * (1 + r->c->n_sparsity) * nm, step = 0;
    for (int mi = 0; mi < r->c->n_models; mi++) {
        const char *stem = ss_pipe_model_stem(r->c->models[mi]);
        for (int d = 0; d < r->c->n_dtypes; d++) {
            ss_dtype dt = r->c->dtypes[d];
            char devdir[1500];
            snprintf(devdir, sizeof devdir, "%s/%s_cc%d_%s_%s", stage_root, gpu, r->st.key.cc, dt_tag(dt),
                     r->st.key.toolchain);
            for (int v = -1; v < r->c->n_sparsity; v++) { /* -1: the dense baseline */
                ss_pattern p = v < 0 ? SS_PATTERN_DENSE : r->c->sparsity[v];
                ss_backend b = !r->gpu ? SS_BACKEND_CPU : v < 0 ? SS_BACKEND_CUBLASLT : SS_BACKEND_CUSPARSELT;
                char dir[1500], pat[16], csv[3200];
                ss_pattern_format(p, pat, sizeof pat);
                const char *why = ss_linear_supports(r->ctx, b, dt, p);
                if (why) {
                    note(r, "skipped", "%s %s %s %s: %s", sn, stem, dt_tag(dt), pat, why);
                    step += nm;
                    continue;
                }
                quant_dir(r, mi, dt, dir, sizeof dir);
                if (v >= 0) {
                    char q[1500];
                    snprintf(q, sizeof q, "%s", dir);
                    if ((s = ss_convert_out_dir(q, r->slidroot, p, dir, sizeof dir)) != SS_OK)
                        return s;
                }
                if (!exists(dir, "config.json")) {
                    note(r, "failed", "%s %s %s %s: checkpoint %s missing (tasks 1-2 make it)", sn, stem,
                         dt_tag(dt), pat, dir);
                    step += nm;
                    continue;
                }
                if (v < 0)
                    snprintf(csv, sizeof csv, "%s/%s/%s_%s.csv", devdir, ss_backend_name(b), stem, sn);
                else
                    snprintf(csv, sizeof csv, "%s/%s/%s/%s_%s.csv", devdir, ss_backend_name(b), pat, stem, sn);
                s = throughput_one(r, stg, dir, b, csv, &step, steps);
                if (s == SS_ENOSPC || s == SS_EIO)
                    return s; /* the disk, not this variant: stop the task */
                if (s != SS_OK)
                    note(r, "failed", "%s %s %s %s: %s", sn, stem, dt_tag(dt), pat, ss_last_error());
            }
            int written = 0;
            if ((s = ss_throughput_speedup(devdir, stem, stg, &written)) != SS_OK && s != SS_EIO)
                return s;
            ss_clear_error();
        }
    }
    return SS_OK;
}

// --- tasks 6-8: kernel ----------------------------------------------------------------------------

static ss_status task_kernel(run *r) {
    char root[1200], tune_root[1200];
    snprintf(root, sizeof root, "%s/kernel_task%d", r->c->out, r->task);
    snprintf(tune_root, sizeof tune_root, "%s/tuning", r->c->out);
    SS_TRY(ss_remove_tree(root));
    ss_clear_error();
    const ss_pattern *pats = r->task == 7 ? r->c->sparsity : r->c->sparsity8;
    int np = r->task == 6 ? 0 : r->task == 7 ? r->c->n_sparsity : r->c->n_sparsity8;
    ss_dtype dts[2];
    int nd = runnable_dtypes(r, dts);
    for (int mi = 0; mi < r->c->n_models && nd > 0; mi++) {
        ss_proj_shape sh[4];
        SS_TRY(ss_preset_shapes(r->c->models[mi], sh));
        ss_bench_kernel_opts o = {.ctx = r->ctx, .model = ss_pipe_model_stem(r->c->models[mi]), .shapes = sh,
                                  .n_shapes = 4, .dtypes = dts, .n_dtypes = nd, .patterns = pats, .n_patterns = np, .ms = r->c->m_kernel,
                                  .n_m = r->c->n_kernel, .out_root = root, .tuning_root = tune_root,
                                  .warmup = r->c->warmup, .repeat = r->c->repeat, .seed = r->c->seed,
                                  .progress = tune_progress, .user = r, .log = lib_log};
        ss_bench_kernel_result res;
        memset(&res, 0, sizeof res);
        ss_status s = ss_bench_kernel(&o, &res);
        size_t rows = res.n_rows;
        ss_bench_kernel_result_free(&res);
        SS_TRY(s);
        cur(r)->n_done += (int)rows;
        logf_(r, "task %d: %s: %zu measurements under %s", r->task, r->c->models[mi], rows, root);
    }
    return SS_OK;
}

// --- task 9: accuracy ------------------------------------------------------------------------------

/* The fixed evaluation sequence: ACC_TOKENS token ids drawn from the run's
 * seed (splitmix64), the same for every pattern of a model; windows of
 * ACC_CONTEXT tokens, not overlapping. */
enum { ACC_TOKENS = 256, ACC_CONTEXT = 128 };

static void accuracy_ids(uint64_t seed, int vocab, int32_t *ids) {
    uint64_t x = seed ^ 0x5eed5eedULL;
    for (int i = 0; i < ACC_TOKENS; i++) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        ids[i] = (int32_t)((z ^ (z >> 31)) % (uint64_t)vocab);
    }
}

/* Perplexity of one checkpoint on the fixed ids; one CSV line into csv. */
static ss_status accuracy_one(run *r, const char *dir, ss_backend b, ss_dtype dt, const char *stem,
                              const char *pat, char **csv) {
    ss_model *m = NULL;
    SS_TRY(ss_model_load(r->ctx, b, dir, &m));
    int32_t ids[ACC_TOKENS];
    accuracy_ids(r->c->seed, ss_model_get_config(m)->vocab_size, ids);
    ss_eval_opts eo = {.context = ACC_CONTEXT, .stride = ACC_CONTEXT};
    ss_eval_result res;
    double t0 = ss_monotonic_s();
    ss_status s = ss_eval_perplexity(m, ids, ACC_TOKENS, &eo, &res);
    ss_model_destroy(m);
    if (s != SS_OK)
        return s;
    char line[1024];
    snprintf(line, sizeof line, "%s,%d,%s,%s,%s,%s,%s,%lld,%d,%d,%llu,%.9g,%.9g,%.3f\n", r->st.key.gpu, r->st.key.cc,
             dt_tag(dt), r->st.key.toolchain, ss_backend_name(b), stem, pat, (long long)res.n_tokens, ACC_CONTEXT,
             ACC_CONTEXT, (unsigned long long)r->c->seed, res.mean_nll, res.perplexity, ss_monotonic_s() - t0);
    size_t old = *csv ? strlen(*csv) : 0;
    char *g = realloc(*csv, old + strlen(line) + 1);
    if (!g)
        return ss_fail(SS_ENOMEM, "accuracy: out of memory");
    memcpy(g + old, line, strlen(line) + 1);
    *csv = g;
    logf_(r, "task 9: %s %s %s: perplexity %.4g over %lld tokens", stem, dt_tag(dt), pat, res.perplexity,
          (long long)res.n_tokens);
    cur(r)->n_done++;
    return SS_OK;
}

/* <out>/accuracy/<GPU>_cc<cc>_<DT>_<toolchain>/<Stem>_perplexity.csv: the
 * dense checkpoint and every configured pattern, rewritten after each. */
static ss_status task_accuracy(run *r) {
    char gpu[160], root[1200];
    ss_pipe_sanitize(r->st.key.gpu, gpu, sizeof gpu);
    snprintf(root, sizeof root, "%s/accuracy", r->c->out);
    SS_TRY(ss_remove_tree(root)); /* a (re)started task rebuilds its results */
    ss_clear_error();
    ss_dtype dts[2];
    int nd = runnable_dtypes(r, dts);
    ss_status s = SS_OK;
    for (int mi = 0; mi < r->c->n_models && s == SS_OK; mi++) {
        const char *stem = ss_pipe_model_stem(r->c->models[mi]);
        for (int d = 0; d < nd && s == SS_OK; d++) {
            char path[1600];
            snprintf(path, sizeof path, "%s/%s_cc%d_%s_%s/%s_perplexity.csv", root, gpu, r->st.key.cc,
                     dt_tag(dts[d]), r->st.key.toolchain, stem);
            char *csv = strdup("gpu,cc,dtype,toolchain,backend,model,pattern,tokens,context,stride,seed,mean_nll,"
                               "perplexity,seconds\n");
            if (!csv)
                return ss_fail(SS_ENOMEM, "accuracy: out of memory");
            for (int v = -1; v < r->c->n_sparsity && s == SS_OK; v++) { /* -1: dense */
                ss_pattern p = v < 0 ? SS_PATTERN_DENSE : r->c->sparsity[v];
                ss_backend b = !r->gpu ? SS_BACKEND_CPU : v < 0 ? SS_BACKEND_CUBLASLT : SS_BACKEND_CUSPARSELT;
                char dir[1500], q[1500], pat[16];
                snprintf(pat, sizeof pat, "dense");
                if (v >= 0)
                    ss_pattern_format(p, pat, sizeof pat);
                const char *why = ss_linear_supports(r->ctx, b, dts[d], p);
                quant_dir(r, mi, dts[d], q, sizeof q);
                if (why) {
                    note(r, "skipped", "accuracy %s %s %s: %s", stem, dt_tag(dts[d]), pat, why);
                    continue;
                }
                if (v < 0)
                    snprintf(dir, sizeof dir, "%s", q);
                else if ((s = ss_convert_out_dir(q, r->slidroot, p, dir, sizeof dir)) != SS_OK)
                    break;
                if (!exists(dir, "config.json")) {
                    note(r, "failed", "accuracy %s %s %s: checkpoint %s missing (tasks 1-2 make it)", stem,
                         dt_tag(dts[d]), pat, dir);
                    continue;
                }
                char what[256];
                snprintf(what, sizeof what, "%s %s %s", stem, dt_tag(dts[d]), pat);
                progress(r, what, -1);
                s = accuracy_one(r, dir, b, dts[d], stem, pat, &csv);
                if (s == SS_OK)
                    s = ss_save_file(path, csv, strlen(csv));
                else if (s != SS_ENOSPC && s != SS_EIO && s != SS_ENOMEM) {
                    note(r, "failed", "accuracy %s %s %s: %s", stem, dt_tag(dts[d]), pat, ss_last_error());
                    s = SS_OK;
                }
            }
            free(csv);
        }
    }
    return s;
}

// --- the loop ---------------------------------------------------------------------------------------

/* NULL when task k can run here, else why not. */
static const char *unrunnable(run *r, int k) {
    if (!r->gpu)
        return NULL;
    int any = 0;
    for (int d = 0; d < r->c->n_dtypes; d++)
        any |= ss_linear_supports(r->ctx, SS_BACKEND_CUBLASLT, r->c->dtypes[d], SS_PATTERN_DENSE) == NULL;
    if (!any)
        return ss_linear_supports(r->ctx, SS_BACKEND_CUBLASLT, r->c->dtypes[0], SS_PATTERN_DENSE);
    if (k == 7 || k == 8) {
        const char *why = ss_linear_supports(r->ctx, SS_BACKEND_CUSPARSELT, SS_DTYPE_I8, (ss_pattern){2, 4});
        if (why)
            return why;
    }
    return NULL;
}

static ss_status run_task(run *r, int k) {
    ss_status s = SS_OK;
    switch (k) {
    case 1:
    case 2:
    case 3:
        for (int mi = 0; mi < r->c->n_models && s == SS_OK; mi++)
            s = k == 1 ? task_base(r, mi) : k == 2 ? task_convert(r, mi) : task_tune(r, mi);
        return s;
    case 4:
        return task_throughput(r, SS_STAGE_PREFILL);
    case 5:
        return task_throughput(r, SS_STAGE_DECODE);
    case 9:
        return task_accuracy(r);
    default:
        return task_kernel(r);
    }
}

static ss_status open_run(run *r, const ss_pipe_opts *o) {
    r->o = o;
    r->t0 = ss_monotonic_s();
    if (o->resume) {
        char path[1200];
        SS_TRY(ss_pipe_status_find(o->config.out, path, sizeof path));
        SS_TRY(ss_pipe_status_load(path, &r->st));
        /* the outputs moved with the folder: trust where we found them */
        snprintf(r->st.config.out, sizeof r->st.config.out, "%s", o->config.out);
        snprintf(r->status_path, sizeof r->status_path, "%s", path);
        r->prior_s = r->st.total_seconds;
        ss_pipe_status_prepare_resume(&r->st);
        for (int k = 1; k <= SS_PIPE_TASKS; k++) {
            if (!o->redo[k] || !r->st.config.tasks[k] || r->st.tasks[k].state == SS_TASK_PENDING)
                continue;
            memset(&r->st.tasks[k], 0, sizeof r->st.tasks[k]);
            r->st.tasks[k].task = k;
            r->st.tasks[k].state = SS_TASK_PENDING;
        }
    } else {
        memset(&r->st, 0, sizeof r->st);
        r->st.config = o->config;
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(r->st.stamp, sizeof r->st.stamp, "%Y%m%d_%H%M%S", &tm);
        snprintf(r->st.name, sizeof r->st.name, "%s", o->config.name);
        snprintf(r->st.log, sizeof r->st.log, "%s_%s.log", r->st.name, r->st.stamp);
        snprintf(r->status_path, sizeof r->status_path, "%s/%s_%s_status.json", o->config.out, r->st.name,
                 r->st.stamp);
        ss_pipe_iso_now(r->st.started, sizeof r->st.started);
        r->st.quick = o->config.quick;
        r->st.embedded = o->config.embedded;
        for (int k = 1; k <= SS_PIPE_TASKS; k++) {
            r->st.tasks[k].task = k;
            if (!o->config.tasks[k]) {
                r->st.tasks[k].state = SS_TASK_SKIPPED;
                snprintf(r->st.tasks[k].reason, sizeof r->st.tasks[k].reason, "not selected (--task)");
            }
        }
    }
    r->c = &r->st.config;
    snprintf(r->log_path, sizeof r->log_path, "%s/%s", r->c->out, r->st.log);
    make_reserve(r);
    r->log = fopen(r->log_path, "a");
    if (!r->log)
        return ss_fail_errno(errno, "%s: cannot open the log", r->log_path);
    if (r->c->checkpoints[0])
        snprintf(r->ckroot, sizeof r->ckroot, "%s", r->c->checkpoints);
    else
        snprintf(r->ckroot, sizeof r->ckroot, "%s/checkpoints", r->c->out);
    snprintf(r->slidroot, sizeof r->slidroot, "%s_slidesparse", r->ckroot);
    /* the context: GPU unless the config says cpu or none is visible */
    r->gpu = r->c->backend == 1 || (r->c->backend == 0 && ss_cuda_device_count() > 0);
    SS_TRY(ss_context_create(r->gpu ? r->c->device : -1, &r->ctx));
    char tune_root[1200];
    snprintf(tune_root, sizeof tune_root, "%s/tuning", r->c->out);
    SS_TRY(ss_context_set_tuning(r->ctx, tune_root, lib_log, r));
    SS_TRY(ss_tune_key_of(r->ctx, &r->st.key));
    SS_TRY(ss_context_describe(r->ctx, r->st.describe, sizeof r->st.describe));
    return SS_OK;
}

static void close_run(run *r) {
    drop_reserve(r);
    if (r->ctx) {
        ss_context_tuning_release(r->ctx); /* CPU contexts: linear.c does not */
        ss_context_destroy(r->ctx);
    }
    if (r->log)
        fclose(r->log);
}

ss_status ss_pipe_run(const ss_pipe_opts *o, ss_pipe_result *res) {
    memset(res, 0, sizeof *res);
    run r;
    memset(&r, 0, sizeof r);
    ss_status s = open_run(&r, o);
    if (s != SS_OK) {
        close_run(&r);
        return s;
    }
    snprintf(res->status_path, sizeof res->status_path, "%s", r.status_path);
    snprintf(res->log_path, sizeof res->log_path, "%s", r.log_path);
    logf_(&r, "run-all %s: %s; device %s; scale %s%s", o->resume ? "resumed" : "started", r.status_path,
          r.st.describe, r.c->quick ? "quick" : "full",
          r.st.embedded ? " (embedded no-GPU default: tiny model, CPU backend, short M lists)" : "");
    char redo[64] = "";
    for (int k = 1; k <= SS_PIPE_TASKS; k++)
        if (o->resume && o->redo[k] && r.c->tasks[k])
            snprintf(redo + strlen(redo), sizeof redo - strlen(redo), "%s%d", redo[0] ? "," : "", k);
    if (redo[0])
        logf_(&r, "run-all: --redo %s: these tasks run again although they were done", redo);
    if ((s = save_status(&r)) != SS_OK)
        goto out;
    for (int k = 1; k <= SS_PIPE_TASKS; k++)
        r.n += r.st.tasks[k].state == SS_TASK_PENDING;
    for (int k = 1; k <= SS_PIPE_TASKS; k++) {
        ss_task_status *t = &r.st.tasks[k];
        if (t->state != SS_TASK_PENDING) {
            if (o->resume && t->state == SS_TASK_DONE)
                logf_(&r, "task %d (%s): done in the interrupted run, kept", k, ss_pipe_task_name(k));
            continue;
        }
        if (o->stop_after_s > 0 && ss_monotonic_s() - r.t0 >= o->stop_after_s) {
            int left = 0;
            for (int j = k; j <= SS_PIPE_TASKS; j++)
                left += r.st.tasks[j].state == SS_TASK_PENDING;
            logf_(&r, "run-all: stopping after %.0f s (--stop-after %.0f): %d task(s) left for --resume",
                  ss_monotonic_s() - r.t0, o->stop_after_s, left);
            break;
        }
        r.task = k;
        r.k++;
        const char *why = unrunnable(&r, k);
        if (why) {
            t->state = SS_TASK_SKIPPED;
            snprintf(t->reason, sizeof t->reason, "%s", why);
            logf_(&r, "task %d (%s): skipped: %s", k, ss_pipe_task_name(k), why);
            save_status(&r);
            continue;
        }
        t->state = SS_TASK_RUNNING;
        logf_(&r, "task %d/%d: start: task %d (%s)", r.k, r.n, k, ss_pipe_task_name(k));
        progress(&r, "", 0);
        if ((s = save_status(&r)) != SS_OK)
            goto out;
        double t0 = ss_monotonic_s();
        ss_clear_error();
        s = run_task(&r, k);
        t->seconds = ss_monotonic_s() - t0;
        if (s != SS_OK) {
            t->state = SS_TASK_FAILED;
            snprintf(t->error, sizeof t->error, "%s: %s", ss_status_name(s),
                     ss_last_error()[0] ? ss_last_error() : "failed");
            logf_(&r, "task %d: FAILED after %.1f s: %s", k, t->seconds, t->error);
        } else if (t->n_done == 0 && t->n_skipped > 0 && t->n_failed == 0 && k >= 3) {
            t->state = SS_TASK_SKIPPED;
            snprintf(t->reason, sizeof t->reason, "nothing could run here (see notes)");
            logf_(&r, "task %d: skipped: nothing could run here", k);
        } else {
            t->state = t->n_failed > 0 && t->n_done == 0 ? SS_TASK_FAILED : SS_TASK_DONE;
            if (t->state == SS_TASK_FAILED)
                snprintf(t->error, sizeof t->error, "every part failed (see notes)");
            logf_(&r, "task %d: end: %s in %.1f s (%d done, %d skipped, %d failed)", k,
                  ss_task_state_name(t->state), t->seconds, t->n_done, t->n_skipped, t->n_failed);
        }
        s = SS_OK;
        save_status(&r);
    }
    for (int k = 1; k <= SS_PIPE_TASKS; k++) {
        ss_task_state ts = r.st.tasks[k].state;
        res->n_done += ts == SS_TASK_DONE;
        res->n_skipped += ts == SS_TASK_SKIPPED;
        res->n_failed += ts == SS_TASK_FAILED;
        res->n_pending += ts == SS_TASK_PENDING;
        if (ts == SS_TASK_FAILED && !res->first_failure[0])
            snprintf(res->first_failure, sizeof res->first_failure, "task %d: %.1000s", k,
                     r.st.tasks[k].error);
    }
    save_status(&r);
    if ((s = ss_pipe_report(r.c->out, res->report_path, sizeof res->report_path)) != SS_OK) {
        /* the run itself went through: its status says so; the report can be redone with `report` */
        logf_(&r, "report: FAILED: %s", ss_last_error());
        res->report_path[0] = '\0';
        s = SS_OK;
    } else
        logf_(&r, "report: %s", res->report_path);
    logf_(&r, "run-all: %d done, %d skipped, %d failed in %.1f s", res->n_done, res->n_skipped, res->n_failed,
          r.st.total_seconds);
out:
    close_run(&r);
    return s;
}
