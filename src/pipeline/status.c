/* run-all status JSON: dump, parse (untrusted: a hand-edited or truncated file
 * fails with one line), atomic save, finding the newest one, and the resume
 * rule. Schema in slidesparse/pipeline.h. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "pipeline_internal.h"

static const char *state_names[SS_TASK_STATE_COUNT] = {"pending", "running", "done", "skipped", "failed"};

const char *ss_task_state_name(ss_task_state s) {
    return s >= 0 && s < SS_TASK_STATE_COUNT ? state_names[s] : "unknown";
}

const char *ss_pipe_task_name(int task) {
    static const char *names[SS_PIPE_TASKS + 1] = {
        "",
        "prepare base checkpoints (BF16 + INT8/FP8)",
        "convert to SlideSparse patterns",
        "tune GEMM algorithms (coarse + fine)",
        "prefill throughput",
        "decode throughput",
        "kernel benchmark: dense (cuBLASLt)",
        "kernel benchmark: 2_4 .. 2_10",
        "kernel benchmark: 2_12 .. 2_inf",
        "accuracy: perplexity, dense vs each 2_L",
    };
    return task >= 1 && task <= SS_PIPE_TASKS ? names[task] : "unknown task";
}

void ss_pipe_iso_now(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
}

// --- dump --------------------------------------------------------------------------------------

ss_status ss_pipe_status_dump(const ss_pipe_status *st, char **out) {
    json_t *o = json_object(), *a;
    json_object_set_new(o, "format", json_string("slidesparse-run-all"));
    json_object_set_new(o, "version", json_integer(1));
    json_object_set_new(o, "name", json_string(st->name));
    json_object_set_new(o, "stamp", json_string(st->stamp));
    json_object_set_new(o, "log", json_string(st->log));
    json_object_set_new(o, "scale", json_string(st->quick ? "quick" : "full"));
    json_object_set_new(o, "embedded_default", json_boolean(st->embedded));
    json_t *d = json_object();
    json_object_set_new(d, "gpu", json_string(st->key.gpu));
    json_object_set_new(d, "cc", json_integer(st->key.cc));
    json_object_set_new(d, "cublaslt", json_string(st->key.cublaslt));
    json_object_set_new(d, "cusparselt", json_string(st->key.cusparselt));
    json_object_set_new(d, "toolchain", json_string(st->key.toolchain));
    json_object_set_new(d, "describe", json_string(st->describe));
    json_object_set_new(o, "device", d);
    json_object_set_new(o, "started", json_string(st->started));
    json_object_set_new(o, "updated", json_string(st->updated));
    json_object_set_new(o, "total_seconds", json_real(st->total_seconds));
    json_object_set_new(o, "config", ss_pipe_config_json(&st->config));
    a = json_array();
    for (int i = 0; i < st->n_ckpts; i++) {
        json_t *c = json_object();
        json_object_set_new(c, "role", json_string(st->ckpts[i].role));
        json_object_set_new(c, "path", json_string(st->ckpts[i].path));
        json_object_set_new(c, "origin", json_string(st->ckpts[i].origin));
        json_object_set_new(c, "reused", json_boolean(st->ckpts[i].reused));
        json_array_append_new(a, c);
    }
    json_object_set_new(o, "checkpoints", a);
    json_t *tu = json_object();
    json_object_set_new(tu, "tuned", json_integer(st->tune_tuned));
    json_object_set_new(tu, "reused", json_integer(st->tune_reused));
    json_object_set_new(tu, "skipped", json_integer(st->tune_skipped));
    json_object_set_new(tu, "path", json_string(st->tune_path));
    json_object_set_new(o, "tuning", tu);
    a = json_array();
    for (int k = 1; k <= SS_PIPE_TASKS; k++) {
        const ss_task_status *t = &st->tasks[k];
        json_t *j = json_object(), *cn = json_object(), *notes = json_array();
        json_object_set_new(j, "task", json_integer(k));
        json_object_set_new(j, "name", json_string(ss_pipe_task_name(k)));
        json_object_set_new(j, "state", json_string(ss_task_state_name(t->state)));
        json_object_set_new(j, "seconds", json_real(t->seconds));
        json_object_set_new(j, "reason", json_string(t->reason));
        json_object_set_new(j, "error", json_string(t->error));
        json_object_set_new(cn, "done", json_integer(t->n_done));
        json_object_set_new(cn, "skipped", json_integer(t->n_skipped));
        json_object_set_new(cn, "failed", json_integer(t->n_failed));
        json_object_set_new(j, "counts", cn);
        for (int i = 0; i < t->n_notes; i++)
            json_array_append_new(notes, json_string(t->notes[i]));
        json_object_set_new(j, "notes", notes);
        json_array_append_new(a, j);
    }
    json_object_set_new(o, "tasks", a);
    /* jansson rejects invalid UTF-8 (an error text from a foreign locale): dump fails */
    *out = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    return *out ? SS_OK : ss_fail(SS_ENOMEM, "run-all status: cannot encode JSON (memory or invalid UTF-8)");
}

// --- parse -------------------------------------------------------------------------------------

typedef struct {
    const char *label;
} ctxt;

static ss_status get_str(const ctxt *c, json_t *o, const char *key, char *dst, size_t n, int required) {
    json_t *v = json_object_get(o, key);
    if (!v && !required) {
        dst[0] = '\0';
        return SS_OK;
    }
    if (!json_is_string(v) || json_string_length(v) >= n)
        return ss_fail(SS_EFORMAT, "%s: \"%s\": expected a string of < %zu bytes", c->label, key, n);
    snprintf(dst, n, "%s", json_string_value(v));
    return SS_OK;
}

static ss_status get_num(const ctxt *c, json_t *o, const char *key, double *dst) {
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v) || json_number_value(v) < 0)
        return ss_fail(SS_EFORMAT, "%s: \"%s\": expected a number >= 0", c->label, key);
    *dst = json_number_value(v);
    return SS_OK;
}

static ss_status get_int(const ctxt *c, json_t *o, const char *key, int *dst) {
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1 << 30)
        return ss_fail(SS_EFORMAT, "%s: \"%s\": expected an integer >= 0", c->label, key);
    *dst = (int)json_integer_value(v);
    return SS_OK;
}

static ss_status parse_task(const ctxt *c, json_t *j, ss_pipe_status *st) {
    int k = 0;
    if (!json_is_object(j) || get_int(c, j, "task", &k) != SS_OK || k < 1 || k > SS_PIPE_TASKS)
        return ss_fail(SS_EFORMAT, "%s: \"tasks\": expected objects with \"task\" 1..%d", c->label, SS_PIPE_TASKS);
    ss_task_status *t = &st->tasks[k];
    t->task = k;
    char state[16];
    SS_TRY(get_str(c, j, "state", state, sizeof state, 1));
    t->state = SS_TASK_STATE_COUNT;
    for (int i = 0; i < SS_TASK_STATE_COUNT; i++)
        if (!strcmp(state, state_names[i]))
            t->state = (ss_task_state)i;
    if (t->state == SS_TASK_STATE_COUNT)
        return ss_fail(SS_EFORMAT, "%s: task %d: unknown state \"%s\"", c->label, k, state);
    SS_TRY(get_num(c, j, "seconds", &t->seconds));
    SS_TRY(get_str(c, j, "reason", t->reason, sizeof t->reason, 0));
    SS_TRY(get_str(c, j, "error", t->error, sizeof t->error, 0));
    json_t *cn = json_object_get(j, "counts");
    if (!json_is_object(cn))
        return ss_fail(SS_EFORMAT, "%s: task %d: \"counts\": expected an object", c->label, k);
    SS_TRY(get_int(c, cn, "done", &t->n_done));
    SS_TRY(get_int(c, cn, "skipped", &t->n_skipped));
    SS_TRY(get_int(c, cn, "failed", &t->n_failed));
    json_t *notes = json_object_get(j, "notes");
    size_t i;
    json_t *v;
    t->n_notes = 0;
    if (notes && !json_is_array(notes))
        return ss_fail(SS_EFORMAT, "%s: task %d: \"notes\": expected an array of strings", c->label, k);
    json_array_foreach(notes, i, v) {
        if (!json_is_string(v))
            return ss_fail(SS_EFORMAT, "%s: task %d: \"notes\": expected an array of strings", c->label, k);
        if (t->n_notes < SS_PIPE_MAX_NOTES)
            snprintf(t->notes[t->n_notes++], sizeof t->notes[0], "%s", json_string_value(v));
    }
    return SS_OK;
}

static ss_status parse_root(const ctxt *c, json_t *o, ss_pipe_status *st) {
    char fmt[64];
    SS_TRY(get_str(c, o, "format", fmt, sizeof fmt, 1));
    json_t *ver = json_object_get(o, "version");
    if (strcmp(fmt, "slidesparse-run-all") || !json_is_integer(ver) || json_integer_value(ver) != 1)
        return ss_fail(SS_EFORMAT, "%s: expected format \"slidesparse-run-all\" version 1", c->label);
    SS_TRY(get_str(c, o, "name", st->name, sizeof st->name, 1));
    SS_TRY(get_str(c, o, "stamp", st->stamp, sizeof st->stamp, 1));
    SS_TRY(get_str(c, o, "log", st->log, sizeof st->log, 1));
    SS_TRY(get_str(c, o, "started", st->started, sizeof st->started, 1));
    SS_TRY(get_str(c, o, "updated", st->updated, sizeof st->updated, 0));
    SS_TRY(get_num(c, o, "total_seconds", &st->total_seconds));
    char scale[16];
    SS_TRY(get_str(c, o, "scale", scale, sizeof scale, 1));
    st->quick = !strcmp(scale, "quick");
    st->embedded = json_is_true(json_object_get(o, "embedded_default"));
    json_t *d = json_object_get(o, "device");
    if (!json_is_object(d))
        return ss_fail(SS_EFORMAT, "%s: \"device\": expected an object", c->label);
    SS_TRY(get_str(c, d, "gpu", st->key.gpu, sizeof st->key.gpu, 1));
    SS_TRY(get_int(c, d, "cc", &st->key.cc));
    SS_TRY(get_str(c, d, "cublaslt", st->key.cublaslt, sizeof st->key.cublaslt, 1));
    SS_TRY(get_str(c, d, "cusparselt", st->key.cusparselt, sizeof st->key.cusparselt, 1));
    SS_TRY(get_str(c, d, "toolchain", st->key.toolchain, sizeof st->key.toolchain, 1));
    SS_TRY(get_str(c, d, "describe", st->describe, sizeof st->describe, 0));
    json_t *cfg = json_object_get(o, "config");
    if (!json_is_object(cfg))
        return ss_fail(SS_EFORMAT, "%s: \"config\": expected an object", c->label);
    char *text = json_dumps(cfg, 0);
    if (!text)
        return ss_fail(SS_ENOMEM, "%s: out of memory", c->label);
    ss_pipe_config_default(&st->config, !st->embedded);
    char label[300];
    snprintf(label, sizeof label, "%s: config", c->label);
    ss_status s = ss_pipe_config_parse(text, strlen(text), label, &st->config);
    free(text);
    SS_TRY(s);
    st->config.embedded = st->embedded;
    json_t *ck = json_object_get(o, "checkpoints");
    size_t i;
    json_t *v;
    if (!json_is_array(ck))
        return ss_fail(SS_EFORMAT, "%s: \"checkpoints\": expected an array", c->label);
    st->n_ckpts = 0;
    json_array_foreach(ck, i, v) {
        if (st->n_ckpts >= SS_PIPE_MAX_CKPTS || !json_is_object(v))
            return ss_fail(SS_EFORMAT, "%s: \"checkpoints\": expected at most %d objects", c->label,
                           SS_PIPE_MAX_CKPTS);
        ss_ckpt_record *r = &st->ckpts[st->n_ckpts++];
        SS_TRY(get_str(c, v, "role", r->role, sizeof r->role, 1));
        SS_TRY(get_str(c, v, "path", r->path, sizeof r->path, 1));
        SS_TRY(get_str(c, v, "origin", r->origin, sizeof r->origin, 1));
        r->reused = json_is_true(json_object_get(v, "reused"));
    }
    json_t *tu = json_object_get(o, "tuning");
    if (!json_is_object(tu))
        return ss_fail(SS_EFORMAT, "%s: \"tuning\": expected an object", c->label);
    SS_TRY(get_int(c, tu, "tuned", &st->tune_tuned));
    SS_TRY(get_int(c, tu, "reused", &st->tune_reused));
    SS_TRY(get_int(c, tu, "skipped", &st->tune_skipped));
    SS_TRY(get_str(c, tu, "path", st->tune_path, sizeof st->tune_path, 0));
    json_t *tasks = json_object_get(o, "tasks");
    /* 8 tasks: a run from before task 9 (accuracy), which it did not select */
    size_t nt = json_is_array(tasks) ? json_array_size(tasks) : 0;
    if (nt != SS_PIPE_TASKS && nt != 8)
        return ss_fail(SS_EFORMAT, "%s: \"tasks\": expected an array of %d task objects", c->label, SS_PIPE_TASKS);
    json_array_foreach(tasks, i, v) SS_TRY(parse_task(c, v, st));
    for (int k = (int)nt + 1; k <= SS_PIPE_TASKS; k++) {
        st->tasks[k].task = k;
        st->tasks[k].state = SS_TASK_SKIPPED;
        snprintf(st->tasks[k].reason, sizeof st->tasks[k].reason, "not part of this run (recorded before it existed)");
        st->config.tasks[k] = 0;
    }
    for (int k = 1; k <= SS_PIPE_TASKS; k++)
        if (st->tasks[k].task != k)
            return ss_fail(SS_EFORMAT, "%s: \"tasks\": task %d missing", c->label, k);
    return SS_OK;
}

ss_status ss_pipe_status_parse(const char *json, size_t len, const char *label, ss_pipe_status *st) {
    json_error_t je;
    json_t *o = json_loadb(json, len, 0, &je);
    if (!o)
        return ss_fail(SS_EFORMAT, "%s: line %d: %s", label, je.line, je.text);
    memset(st, 0, sizeof *st);
    ctxt c = {label};
    ss_status s = json_is_object(o) ? parse_root(&c, o, st) : ss_fail(SS_EFORMAT, "%s: expected a JSON object", label);
    json_decref(o);
    return s;
}

ss_status ss_pipe_status_save(const ss_pipe_status *st, const char *path) {
    char *text = NULL;
    SS_TRY(ss_pipe_status_dump(st, &text));
    ss_status s = ss_write_file_atomic(path, text, strlen(text));
    free(text);
    return s;
}

ss_status ss_pipe_status_load(const char *path, ss_pipe_status *st) {
    char *text = NULL;
    size_t len = 0;
    SS_TRY(ss_read_file(path, 16 << 20, &text, &len));
    ss_status s = ss_pipe_status_parse(text, len, path, st);
    free(text);
    return s;
}

ss_status ss_pipe_status_find(const char *dir, char *path, size_t n) {
    DIR *d = opendir(dir);
    if (!d)
        return ss_fail_errno(errno, "%s: cannot list the folder", dir);
    char best[512] = "", best_stamp[64] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        const char *suf = "_status.json";
        if (l <= strlen(suf) + 16 || strcmp(e->d_name + l - strlen(suf), suf) || strlen(e->d_name) >= sizeof best)
            continue;
        /* "<name>_<YYYYmmdd_HHMMSS>_status.json": compare by stamp */
        char stamp[64];
        snprintf(stamp, sizeof stamp, "%.15s", e->d_name + l - strlen(suf) - 15);
        if (strcmp(stamp, best_stamp) > 0 || (!strcmp(stamp, best_stamp) && strcmp(e->d_name, best) > 0)) {
            snprintf(best_stamp, sizeof best_stamp, "%s", stamp);
            snprintf(best, sizeof best, "%s", e->d_name);
        }
    }
    closedir(d);
    if (!best[0])
        return ss_fail(SS_EIO, "%s: no *_status.json of a run-all run", dir);
    if ((size_t)snprintf(path, n, "%s/%s", dir, best) >= n)
        return ss_fail(SS_EINVAL, "%s/%s: path too long", dir, best);
    return SS_OK;
}

void ss_pipe_status_prepare_resume(ss_pipe_status *st) {
    for (int k = 1; k <= SS_PIPE_TASKS; k++) {
        ss_task_status *t = &st->tasks[k];
        if (t->state == SS_TASK_DONE || t->state == SS_TASK_SKIPPED)
            continue;
        /* a task that was running left partial outputs: it starts over */
        memset(t, 0, sizeof *t);
        t->task = k;
        t->state = SS_TASK_PENDING;
    }
}
