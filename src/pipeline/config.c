/* run-all configuration: the SPEC §8 defaults, the embedded no-GPU default,
 * list parsing shared by the CLI and the JSON config file, and the dump that
 * the status JSON records (schema in slidesparse/pipeline.h). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "slidesparse/pipeline.h"
#include "slidesparse/prep.h"
#include "slidesparse/serve.h"

static void set_ms(int64_t *dst, int *n, const int64_t *src, int k) {
    memcpy(dst, src, (size_t)k * sizeof *src);
    *n = k;
}

void ss_pipe_config_default(ss_pipe_config *c, int gpu) {
    memset(c, 0, sizeof *c);
    snprintf(c->out, sizeof c->out, "results");
    snprintf(c->name, sizeof c->name, "run_all");
    for (int k = 1; k <= SS_PIPE_TASKS; k++)
        c->tasks[k] = 1;
    c->n_models = 1;
    c->dtypes[0] = SS_DTYPE_I8;
    c->dtypes[1] = SS_DTYPE_F8_E4M3;
    c->n_dtypes = 2;
    for (int i = 0; i < 4; i++)
        c->sparsity[i] = (ss_pattern){2, 4 + 2 * i};
    c->n_sparsity = 4;
    for (int i = 0; i < 3; i++)
        c->sparsity8[i] = (ss_pattern){2, 12 + 2 * i};
    c->sparsity8[3] = (ss_pattern){2, 0}; /* 2_inf */
    c->n_sparsity8 = 4;
    c->coarse = c->fine = 1;
    c->seed = 1;
    c->kv_memory_mb = 1024;
    c->gpu_memory_fraction = 0.8;
    c->embedded = !gpu;
    if (gpu) {
        snprintf(c->models[0], sizeof c->models[0], "bitnet-2b");
        const int64_t pre[] = {512, 1024, 2048, 4096, 8192, 16384, 32768}, dec[] = {64, 128, 256, 512},
                      ker[] = {64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384},
                      co[] = {256, 1024, 4096, 16384, 32768},
                      fi[] = {64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768};
        set_ms(c->m_prefill, &c->n_prefill, pre, 7);
        set_ms(c->m_decode, &c->n_decode, dec, 4);
        set_ms(c->m_kernel, &c->n_kernel, ker, 9);
        set_ms(c->m_coarse, &c->n_coarse, co, 5);
        set_ms(c->m_fine, &c->n_fine, fi, 10);
        c->warmup = 25;
        c->repeat = 100;
        c->throughput_repeats = 3;
    } else {
        /* Minutes on 2 cores at most: the tiny model, a couple of M per stage. */
        snprintf(c->models[0], sizeof c->models[0], "tiny-bitnet");
        const int64_t pre[] = {512}, dec[] = {64}, ker[] = {64, 256}, co[] = {256},
                      fi[] = {64, 256};
        set_ms(c->m_prefill, &c->n_prefill, pre, 1);
        set_ms(c->m_decode, &c->n_decode, dec, 1); /* decode is one full wave of M sequences */
        set_ms(c->m_kernel, &c->n_kernel, ker, 2);
        set_ms(c->m_coarse, &c->n_coarse, co, 1);
        set_ms(c->m_fine, &c->n_fine, fi, 2);
        c->quick = 1;
        c->backend = 2;
        c->warmup = 2;
        c->repeat = 5;
        c->throughput_repeats = 1; /* CI time: one run per point */
        c->kv_memory_mb = 256;
    }
}

// --- lists ------------------------------------------------------------------------------

/* Splits s at commas into at most max tokens of < 32 bytes; 0 on junk. */
static int split(const char *s, char tok[][32], int max, int *n) {
    *n = 0;
    if (!s || !*s || s[0] == ',' || s[strlen(s) - 1] == ',' || strstr(s, ",,"))
        return 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 0 || l >= 32 || *n >= max)
            return 0;
        memcpy(tok[*n], p, l);
        tok[(*n)++][l] = '\0';
        p += l + (e ? 1 : 0);
    }
    return *n > 0;
}

ss_status ss_pipe_parse_tasks(const char *s, ss_pipe_config *c) {
    char t[SS_PIPE_TASKS * 2][32];
    int n;
    if (!split(s, t, SS_PIPE_TASKS * 2, &n))
        return ss_fail(SS_EINVAL, "--task '%s': expected a comma-separated list of task numbers 1..%d", s, SS_PIPE_TASKS);
    int on[SS_PIPE_TASKS + 1] = {0};
    for (int i = 0; i < n; i++) {
        char *end;
        long v = strtol(t[i], &end, 10);
        if (*end || v < 1 || v > SS_PIPE_TASKS)
            return ss_fail(SS_EINVAL, "--task: unknown task '%s' (expected 1..%d)", t[i], SS_PIPE_TASKS);
        on[v] = 1;
    }
    memcpy(c->tasks, on, sizeof on);
    return SS_OK;
}

ss_status ss_pipe_parse_models(const char *s, ss_pipe_config *c) {
    char t[SS_PIPE_MAX_MODELS][32];
    int n;
    if (!split(s, t, SS_PIPE_MAX_MODELS, &n))
        return ss_fail(SS_EINVAL, "--preset '%s': expected up to %d comma-separated preset names", s,
                       SS_PIPE_MAX_MODELS);
    for (int i = 0; i < n; i++) {
        ss_proj_shape sh[4];
        ss_model_config mc;
        /* a model must have shapes (kernel) and a synthesizable config (task 1) */
        if (ss_preset_shapes(t[i], sh) != SS_OK || ss_preset_config(t[i], &mc) != SS_OK) {
            char list[512] = "";
            for (int k = 0; k < ss_preset_count(); k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "",
                         ss_preset_name(k));
            return ss_fail(SS_EINVAL, "--preset: unknown model '%s' (expected one of %s)", t[i], list);
        }
        snprintf(c->models[i], sizeof c->models[i], "%.31s", t[i]);
    }
    c->n_models = n;
    ss_clear_error();
    return SS_OK;
}

ss_status ss_pipe_parse_dtypes(const char *s, ss_pipe_config *c) {
    char t[4][32];
    int n;
    if (!split(s, t, 2, &n))
        return ss_fail(SS_EINVAL, "--dtype '%s': expected int8, fp8 or int8,fp8", s);
    for (int i = 0; i < n; i++) {
        if (!strcmp(t[i], "int8"))
            c->dtypes[i] = SS_DTYPE_I8;
        else if (!strcmp(t[i], "fp8"))
            c->dtypes[i] = SS_DTYPE_F8_E4M3;
        else
            return ss_fail(SS_EINVAL, "--dtype: unknown dtype '%s' (expected int8 or fp8)", t[i]);
    }
    if (n == 2 && c->dtypes[0] == c->dtypes[1])
        return ss_fail(SS_EINVAL, "--dtype: '%s' given twice", t[0]);
    c->n_dtypes = n;
    return SS_OK;
}

/* Patterns 2_L with even L >= 4 (they are converted); no repeats. */
static ss_status parse_patterns(const char *opt, const char *s, ss_pattern *out, int *n_out,
                                int allow_dense) {
    char t[SS_PIPE_MAX_LIST][32];
    int n;
    if (!split(s, t, SS_PIPE_MAX_LIST, &n))
        return ss_fail(SS_EINVAL, "%s '%s': expected comma-separated patterns 2_L (even L >= 4)", opt, s);
    for (int i = 0; i < n; i++) {
        ss_pattern p;
        if (ss_pattern_parse(t[i], &p) != SS_OK || p.z != 2 || ss_pattern_is_dense(p) ||
            (ss_pattern_is_inf(p) ? !allow_dense : (p.l < 4 || p.l % 2)))
            return ss_fail(SS_EINVAL, "%s: unknown pattern '%s' (expected 2_L with even L >= 4%s)", opt,
                           t[i], allow_dense ? " or 2_inf" : "");
        for (int k = 0; k < i; k++)
            if (out[k].l == p.l && out[k].z == p.z)
                return ss_fail(SS_EINVAL, "%s: pattern '%s' given twice", opt, t[i]);
        out[i] = p;
    }
    *n_out = n;
    ss_clear_error();
    return SS_OK;
}

ss_status ss_pipe_parse_sparsity(const char *s, ss_pipe_config *c) {
    return parse_patterns("--sparsity", s, c->sparsity, &c->n_sparsity, 0);
}

// --- the JSON config file -------------------------------------------------------------------

typedef struct {
    const char *label;
    json_t *root;
} cfgfile;

static ss_status want(const cfgfile *f, const char *key, int ok, const char *type) {
    if (ok)
        return SS_OK;
    return ss_fail(SS_EFORMAT, "%s: \"%s\": expected %s", f->label, key, type);
}

/* A JSON array of strings joined with commas into buf (for the list parsers). */
static ss_status str_list(const cfgfile *f, const char *key, char *buf, size_t n, int *present) {
    json_t *a = json_object_get(f->root, key);
    *present = a != NULL;
    if (!a)
        return SS_OK;
    SS_TRY(want(f, key, json_is_array(a) && json_array_size(a) > 0, "a non-empty array of strings"));
    buf[0] = '\0';
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        SS_TRY(want(f, key, json_is_string(v), "a non-empty array of strings"));
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", i ? "," : "", json_string_value(v));
    }
    return SS_OK;
}

static ss_status int_list(const cfgfile *f, const char *key, int64_t lo, int64_t hi, int64_t *out,
                          int *n) {
    json_t *a = json_object_get(f->root, key);
    if (!a)
        return SS_OK;
    SS_TRY(want(f, key, json_is_array(a) && json_array_size(a) > 0 && json_array_size(a) <= SS_PIPE_MAX_LIST,
                "a non-empty array of at most 16 integers"));
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
            return ss_fail(SS_EFORMAT, "%s: \"%s\"[%zu]: expected an integer in %lld..%lld", f->label, key,
                           i, (long long)lo, (long long)hi);
        out[i] = json_integer_value(v);
    }
    *n = (int)json_array_size(a);
    return SS_OK;
}

static ss_status str_field(const cfgfile *f, const char *key, char *dst, size_t n) {
    json_t *v = json_object_get(f->root, key);
    if (!v)
        return SS_OK;
    SS_TRY(want(f, key, json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) < n,
                "a non-empty string"));
    snprintf(dst, n, "%s", json_string_value(v));
    return SS_OK;
}

static ss_status num_field(const cfgfile *f, const char *key, double lo, double hi, double *dst) {
    json_t *v = json_object_get(f->root, key);
    if (!v)
        return SS_OK;
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi)
        return ss_fail(SS_EFORMAT, "%s: \"%s\": expected a number in %g..%g", f->label, key, lo, hi);
    *dst = json_number_value(v);
    return SS_OK;
}

static ss_status int_field(const cfgfile *f, const char *key, int lo, int hi, int *dst) {
    json_t *v = json_object_get(f->root, key);
    if (!v)
        return SS_OK;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return ss_fail(SS_EFORMAT, "%s: \"%s\": expected an integer in %d..%d", f->label, key, lo, hi);
    *dst = (int)json_integer_value(v);
    return SS_OK;
}

/* A list parser's SS_EINVAL as SS_EFORMAT naming the file; the message is
 * copied first because ss_fail rewrites the buffer ss_last_error points to. */
static ss_status refail(const cfgfile *f, const char *key, const char *msg) {
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", msg);
    return ss_fail(SS_EFORMAT, "%s: \"%s\": %s", f->label, key, copy);
}

static const char *known_keys[] = {"out", "name", "tasks", "models", "dtypes", "sparsity",
                                   "sparsity_task8", "m_prefill", "m_decode", "m_kernel",
                                   "m_tune_coarse", "m_tune_fine", "tune_stages", "scale", "backend",
                                   "device", "base", "checkpoints", "warmup", "repeat",
                                   "throughput_repeats", "kv_memory_mb", "gpu_memory_fraction", "seed", NULL};

static ss_status apply(const cfgfile *f, ss_pipe_config *c) {
    const char *key;
    json_t *v;
    json_object_foreach(f->root, key, v) {
        int ok = 0;
        for (int i = 0; known_keys[i]; i++)
            ok |= !strcmp(key, known_keys[i]);
        if (!ok)
            return ss_fail(SS_EFORMAT, "%s: unknown key \"%s\" (see slidesparse run-all --help)", f->label, key);
    }
    char buf[1024];
    int have;
    ss_status s;
    SS_TRY(str_field(f, "out", c->out, sizeof c->out));
    SS_TRY(str_field(f, "name", c->name, sizeof c->name));
    SS_TRY(str_field(f, "base", c->base, sizeof c->base));
    SS_TRY(str_field(f, "checkpoints", c->checkpoints, sizeof c->checkpoints));
    json_t *tasks = json_object_get(f->root, "tasks");
    if (tasks) {
        int64_t t[SS_PIPE_MAX_LIST];
        int n = 0;
        SS_TRY(int_list(f, "tasks", 1, SS_PIPE_TASKS, t, &n));
        memset(c->tasks, 0, sizeof c->tasks);
        for (int i = 0; i < n; i++)
            c->tasks[t[i]] = 1;
    }
    /* the list parsers' SS_EINVAL becomes SS_EFORMAT naming the file */
#define LIST(k, fn)                                                                      \
    SS_TRY(str_list(f, k, buf, sizeof buf, &have));                                      \
    if (have && (s = fn(buf, c)) != SS_OK)                                               \
        return refail(f, k, ss_last_error());
    LIST("models", ss_pipe_parse_models)
    LIST("dtypes", ss_pipe_parse_dtypes)
    LIST("sparsity", ss_pipe_parse_sparsity)
#undef LIST
    SS_TRY(str_list(f, "sparsity_task8", buf, sizeof buf, &have));
    if (have && parse_patterns("sparsity_task8", buf, c->sparsity8, &c->n_sparsity8, 1) != SS_OK)
        return refail(f, "sparsity_task8", ss_last_error());
    SS_TRY(int_list(f, "m_prefill", 1, 1 << 20, c->m_prefill, &c->n_prefill));
    SS_TRY(int_list(f, "m_decode", 1, 1 << 20, c->m_decode, &c->n_decode));
    SS_TRY(int_list(f, "m_kernel", 1, 1 << 20, c->m_kernel, &c->n_kernel));
    SS_TRY(int_list(f, "m_tune_coarse", 1, 1 << 20, c->m_coarse, &c->n_coarse));
    SS_TRY(int_list(f, "m_tune_fine", 1, 1 << 20, c->m_fine, &c->n_fine));
    SS_TRY(str_list(f, "tune_stages", buf, sizeof buf, &have));
    if (have) {
        c->coarse = strstr(buf, "coarse") != NULL;
        c->fine = strstr(buf, "fine") != NULL;
        if (!c->coarse && !c->fine)
            return ss_fail(SS_EFORMAT, "%s: \"tune_stages\": expected [\"coarse\", \"fine\"] or one of them",
                           f->label);
    }
    char word[32] = "";
    SS_TRY(str_field(f, "scale", word, sizeof word));
    if (word[0]) {
        if (strcmp(word, "quick") && strcmp(word, "full"))
            return ss_fail(SS_EFORMAT, "%s: \"scale\": expected \"quick\" or \"full\", found \"%s\"", f->label, word);
        c->quick = !strcmp(word, "quick");
    }
    word[0] = '\0';
    SS_TRY(str_field(f, "backend", word, sizeof word));
    if (word[0]) {
        const char *names[] = {"auto", "gpu", "cpu"};
        int b = -1;
        for (int i = 0; i < 3; i++)
            if (!strcmp(word, names[i]))
                b = i;
        if (b < 0)
            return ss_fail(SS_EFORMAT, "%s: \"backend\": expected \"auto\", \"gpu\" or \"cpu\", found \"%s\"",
                           f->label, word);
        c->backend = b;
    }
    SS_TRY(int_field(f, "device", 0, 255, &c->device));
    SS_TRY(int_field(f, "warmup", 1, 100000, &c->warmup));
    SS_TRY(int_field(f, "repeat", 1, 100000, &c->repeat));
    SS_TRY(int_field(f, "throughput_repeats", 1, SS_PIPE_MAX_REPEATS, &c->throughput_repeats));
    SS_TRY(num_field(f, "kv_memory_mb", 0.001, 1 << 24, &c->kv_memory_mb));
    SS_TRY(num_field(f, "gpu_memory_fraction", 0.01, 0.95, &c->gpu_memory_fraction));
    double seed = (double)c->seed;
    SS_TRY(num_field(f, "seed", 0, 9007199254740992.0, &seed));
    c->seed = (uint64_t)seed;
    return SS_OK;
}

ss_status ss_pipe_config_parse(const char *json, size_t len, const char *label, ss_pipe_config *c) {
    json_error_t je;
    cfgfile f = {label, json_loadb(json, len, JSON_REJECT_DUPLICATES, &je)};
    if (!f.root)
        return ss_fail(SS_EFORMAT, "%s: line %d: %s", label, je.line, je.text);
    ss_pipe_config tmp = *c;
    ss_status s = json_is_object(f.root) ? apply(&f, &tmp)
                                         : ss_fail(SS_EFORMAT, "%s: expected a JSON object", label);
    json_decref(f.root);
    if (s == SS_OK)
        *c = tmp;
    return s;
}

ss_status ss_pipe_config_load(const char *path, ss_pipe_config *c) {
    char *text = NULL;
    size_t len = 0;
    SS_TRY(ss_read_file(path, 1 << 20, &text, &len));
    ss_status s = ss_pipe_config_parse(text, len, path, c);
    free(text);
    return s;
}

// --- checks + dump -----------------------------------------------------------------------------

ss_status ss_pipe_config_check(ss_pipe_config *c) {
    int any = 0;
    for (int k = 1; k <= SS_PIPE_TASKS; k++)
        any |= c->tasks[k];
    if (!any)
        return ss_fail(SS_EINVAL, "no task selected (expected --task with numbers 1..%d)", SS_PIPE_TASKS);
    if (c->base[0] && c->n_models != 1)
        return ss_fail(SS_EINVAL, "--model DIR names one checkpoint; give exactly one --preset, found %d",
                       c->n_models);
    for (const char *p = c->name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return ss_fail(SS_EINVAL, "name '%s': expected letters, digits, '_', '-', '.'", c->name);
    for (int st = 0; st < 2; st++) {
        const int64_t *ms = st ? c->m_decode : c->m_prefill;
        for (int i = 0; i < (st ? c->n_decode : c->n_prefill); i++) {
            ss_workload w;
            SS_TRY(ss_workload_make(st ? SS_STAGE_DECODE : SS_STAGE_PREFILL, ms[i], &w));
        }
    }
    /* the given base must be a checkpoint before any task runs, and the
     * outputs may not land inside it (containing it is the usual layout:
     * <out>/checkpoints/<base>) */
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", c->base);
    if (c->base[0] && access(path, F_OK) != 0)
        return ss_fail(SS_EINVAL, "--model %s: no config.json there (expected a Hugging Face "
                       "checkpoint folder)", c->base);
    if (c->base[0])
        SS_TRY(ss_outdir_check_input(c->out, c->base, 0));
    if (c->backend == 1)
        SS_TRY(ss_context_check_device("--backend gpu", c->device));
    /* mkdir -p, then prove we can create a file there */
    SS_TRY(ss_outdir_check_writable(c->out, "--out"));
    SS_TRY(ss_mkdir_p(c->out, NULL, 0));
    snprintf(path, sizeof path, "%s/.write_test.%d", c->out, (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return ss_fail_errno(errno, "output directory '%s': not writable", c->out);
    fclose(f);
    unlink(path);
    return SS_OK;
}

static json_t *ms_json(const int64_t *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static json_t *pats_json(const ss_pattern *p, int n) {
    json_t *a = json_array();
    char b[16];
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(ss_pattern_format(p[i], b, sizeof b)));
    return a;
}

json_t *ss_pipe_config_json(const ss_pipe_config *c); /* status.c */

json_t *ss_pipe_config_json(const ss_pipe_config *c) {
    json_t *o = json_object(), *a;
    json_object_set_new(o, "out", json_string(c->out));
    json_object_set_new(o, "name", json_string(c->name));
    a = json_array();
    for (int k = 1; k <= SS_PIPE_TASKS; k++)
        if (c->tasks[k])
            json_array_append_new(a, json_integer(k));
    json_object_set_new(o, "tasks", a);
    a = json_array();
    for (int i = 0; i < c->n_models; i++)
        json_array_append_new(a, json_string(c->models[i]));
    json_object_set_new(o, "models", a);
    a = json_array();
    for (int i = 0; i < c->n_dtypes; i++)
        json_array_append_new(a, json_string(c->dtypes[i] == SS_DTYPE_I8 ? "int8" : "fp8"));
    json_object_set_new(o, "dtypes", a);
    json_object_set_new(o, "sparsity", pats_json(c->sparsity, c->n_sparsity));
    json_object_set_new(o, "sparsity_task8", pats_json(c->sparsity8, c->n_sparsity8));
    json_object_set_new(o, "m_prefill", ms_json(c->m_prefill, c->n_prefill));
    json_object_set_new(o, "m_decode", ms_json(c->m_decode, c->n_decode));
    json_object_set_new(o, "m_kernel", ms_json(c->m_kernel, c->n_kernel));
    json_object_set_new(o, "m_tune_coarse", ms_json(c->m_coarse, c->n_coarse));
    json_object_set_new(o, "m_tune_fine", ms_json(c->m_fine, c->n_fine));
    a = json_array();
    if (c->coarse)
        json_array_append_new(a, json_string("coarse"));
    if (c->fine)
        json_array_append_new(a, json_string("fine"));
    json_object_set_new(o, "tune_stages", a);
    json_object_set_new(o, "scale", json_string(c->quick ? "quick" : "full"));
    const char *b[] = {"auto", "gpu", "cpu"};
    json_object_set_new(o, "backend", json_string(b[c->backend]));
    json_object_set_new(o, "device", json_integer(c->device));
    if (c->base[0])
        json_object_set_new(o, "base", json_string(c->base));
    if (c->checkpoints[0])
        json_object_set_new(o, "checkpoints", json_string(c->checkpoints));
    json_object_set_new(o, "warmup", json_integer(c->warmup));
    json_object_set_new(o, "repeat", json_integer(c->repeat));
    json_object_set_new(o, "throughput_repeats", json_integer(c->throughput_repeats));
    json_object_set_new(o, "kv_memory_mb", json_real(c->kv_memory_mb));
    json_object_set_new(o, "gpu_memory_fraction", json_real(c->gpu_memory_fraction));
    json_object_set_new(o, "seed", json_integer((json_int_t)c->seed));
    return o;
}

ss_status ss_pipe_config_dump(const ss_pipe_config *c, char **out) {
    json_t *o = ss_pipe_config_json(c);
    *out = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    return *out ? SS_OK : ss_fail(SS_ENOMEM, "run-all config: out of memory writing JSON");
}
