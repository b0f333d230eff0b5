/* Which table applies where: the key of a running context (GPU name, cc,
 * library and CUDA versions), the table's path, opening it with the
 * "ignored, never misapplied" rule, and the table a context applies
 * automatically (loaded once, on the first lookup; the decision is told once
 * through the log callback and kept as a status string).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "slidesparse/tune.h"
#ifdef SS_HAVE_CUDA
#include "linear/cuda_state.h"
#endif

double ss_monotonic_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// --- the key ----------------------------------------------------------------------------

ss_status ss_tune_key_of(const ss_context *ctx, ss_tune_key *out) {
    if (!ctx || !out)
        return ss_fail(SS_EINVAL, "tuning key: context or out pointer is NULL");
    memset(out, 0, sizeof *out);
    snprintf(out->gpu, sizeof out->gpu, "CPU");
    snprintf(out->cublaslt, sizeof out->cublaslt, "none");
    snprintf(out->cusparselt, sizeof out->cusparselt, "none");
    snprintf(out->toolchain, sizeof out->toolchain, "cpu");
#ifdef SS_HAVE_CUDA
    const ss_cuda_state *st = ctx->device >= 0 ? ss_cuda(ctx) : NULL;
    if (st) {
        snprintf(out->gpu, sizeof out->gpu, "%.127s", st->gpu_name);
        out->cc = st->cc_major * 10 + st->cc_minor;
        snprintf(out->cublaslt, sizeof out->cublaslt, "%zu", st->lt_version);
#ifdef SS_HAVE_CUSPARSELT
        if (st->sp_ok)
            snprintf(out->cusparselt, sizeof out->cusparselt, "%d", st->sp_version);
#endif
        int rt = 0;
        if (cudaRuntimeGetVersion(&rt) != cudaSuccess)
            (void)cudaGetLastError();
        snprintf(out->toolchain, sizeof out->toolchain, "cuda%d.%d", rt / 1000, rt % 1000 / 10);
    }
#endif
    return SS_OK;
}

const char *ss_tune_key_dir(const ss_tune_key *k, char *buf, size_t n) {
    if (!buf || n == 0)
        return buf;
    char gpu[sizeof k->gpu];
    size_t i = 0;
    for (; k->gpu[i] && i + 1 < sizeof gpu; i++) {
        char c = k->gpu[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-';
        gpu[i] = ok ? c : '_';
    }
    gpu[i] = '\0';
    snprintf(buf, n, "%s_cc%d_%s", gpu, k->cc, k->toolchain);
    return buf;
}

int ss_tune_key_equal(const ss_tune_key *a, const ss_tune_key *b) {
    return !strcmp(a->gpu, b->gpu) && a->cc == b->cc && !strcmp(a->cublaslt, b->cublaslt) &&
           !strcmp(a->cusparselt, b->cusparselt) && !strcmp(a->toolchain, b->toolchain);
}

ss_status ss_tune_table_path(const char *root, const ss_tune_key *key, char *buf, size_t n) {
    char dir[256];
    ss_tune_key_dir(key, dir, sizeof dir);
    int w = snprintf(buf, n, "%s/%s/tuning.json", root ? root : "tuning", dir);
    if (w < 0 || (size_t)w >= n)
        return ss_fail(SS_EINVAL, "tuning table path under '%s' does not fit %zu bytes",
                       root ? root : "tuning", n);
    return SS_OK;
}

static void key_text(const ss_tune_key *k, char *buf, size_t n) {
    snprintf(buf, n, "%s cc %d, cuBLASLt %s, cuSPARSELt %s, %s", k->gpu, k->cc, k->cublaslt,
             k->cusparselt, k->toolchain);
}

ss_status ss_tune_table_open(const ss_context *ctx, const char *root, ss_tune_table **out,
                             char *status, size_t n) {
    char path[1024], dummy[8];
    if (!out)
        return ss_fail(SS_EINVAL, "tuning table: out pointer is NULL");
    *out = NULL;
    if (!status) {
        status = dummy;
        n = sizeof dummy;
    }
    ss_tune_key key;
    SS_TRY(ss_tune_key_of(ctx, &key));
    SS_TRY(ss_tune_table_path(root, &key, path, sizeof path));
    /* only whether it exists: opening a FIFO here would block, and
     * ss_tune_table_load refuses what is not a regular file */
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(status, n, "tuning: no table at %s; using heuristics", path);
        return SS_OK;
    }
    ss_tune_table *t = NULL;
    if (ss_tune_table_load(path, &t) != SS_OK) {
        snprintf(status, n, "tuning: warning: ignoring corrupt table (%s); using heuristics",
                 ss_last_error());
        ss_clear_error();
        return SS_OK;
    }
    if (!ss_tune_key_equal(ss_tune_table_key(t), &key)) {
        char want[400], have[400];
        key_text(&key, want, sizeof want);
        key_text(ss_tune_table_key(t), have, sizeof have);
        snprintf(status, n, "tuning: warning: ignoring %s: tuned for %s, running on %s; using "
                 "heuristics", path, have, want);
        ss_tune_table_free(t);
        return SS_OK;
    }
    snprintf(status, n, "tuning: loaded %s (%zu entries, %zu kernel launches)", path,
             ss_tune_table_count(t), ss_tune_table_kernel_count(t));
    *out = t;
    return SS_OK;
}

// --- the table a context applies -------------------------------------------------------------

typedef struct ss_tune_ctx {
    char root[512];
    int root_set;
    ss_log_fn log;
    void *user;
    int loaded;          /* the loader ran (whatever it decided) */
    ss_tune_table *table;
    char status[2048];
} ss_tune_ctx;

static const ss_algo *tuner_gemm(void *user, ss_context *ctx, ss_backend b, ss_dtype in,
                                 ss_dtype out, int64_t n, int64_t k, int64_t m);
static int tuner_quant(void *user, ss_context *ctx, ss_dtype qdt, int64_t k, int64_t k_out,
                       int64_t m, ss_quant_launch *out);
static void tuner_release(void *user) {
    ss_tune_ctx *tc = user;
    if (!tc)
        return;
    ss_tune_table_free(tc->table);
    free(tc);
}

/* What ss_context_set_tuning installs on a context (slidesparse/linear.h). */
static const ss_tuner table_tuner = {
    .gemm = tuner_gemm,
    .quant = tuner_quant,
    .release = tuner_release,
};

static ss_tune_ctx *tune_state(const ss_context *ctx) {
    return ss_context_tuner_user(ctx, &table_tuner);
}

ss_status ss_context_set_tuning(ss_context *ctx, const char *root, ss_log_fn log, void *user) {
    if (!ctx)
        return ss_fail(SS_EINVAL, "tuning: context is NULL");
    ss_tune_ctx *tc = tune_state(ctx);
    if (!tc) {
        tc = calloc(1, sizeof *tc);
        if (!tc)
            return ss_fail(SS_ENOMEM, "tuning: out of memory");
        ss_status s = ss_context_set_tuner(ctx, &table_tuner, tc);
        if (s != SS_OK) {
            free(tc);
            return s;
        }
    }
    if (root && snprintf(tc->root, sizeof tc->root, "%s", root) >= (int)sizeof tc->root)
        return ss_fail(SS_EINVAL, "tuning: folder name longer than %zu bytes", sizeof tc->root);
    tc->root_set = root != NULL;
    tc->log = log;
    tc->user = user;
    /* a new folder means a new decision */
    ss_tune_table_free(tc->table);
    tc->table = NULL;
    tc->loaded = 0;
    tc->status[0] = '\0';
    return SS_OK;
}

const char *ss_context_tuning_status(const ss_context *ctx) {
    const ss_tune_ctx *tc = tune_state(ctx);
    return tc ? tc->status : "";
}

/* The table of tc (ctx's tuning state), opened on first use (NULL: none applies). */
static const ss_tune_table *context_table(ss_context *ctx, ss_tune_ctx *tc) {
    if (!tc)
        return NULL;
    if (!tc->loaded) {
        tc->loaded = 1;
        const char *root = tc->root_set ? tc->root : getenv("SS_TUNING_DIR");
        /* a failure here (path too long) only means: no table */
        if (ss_tune_table_open(ctx, root, &tc->table, tc->status, sizeof tc->status) != SS_OK) {
            snprintf(tc->status, sizeof tc->status, "tuning: warning: %s; using heuristics",
                     ss_last_error());
            ss_clear_error();
        }
        if (tc->log)
            tc->log(tc->user, tc->status);
    }
    return tc->table;
}

static const ss_algo *tuner_gemm(void *user, ss_context *ctx, ss_backend b, ss_dtype in,
                                 ss_dtype out, int64_t n, int64_t k, int64_t m) {
    const ss_tune_entry *e = ss_tune_table_lookup(context_table(ctx, user), b, in, out, n, k, m);
    return e ? &e->best : NULL;
}

static int tuner_quant(void *user, ss_context *ctx, ss_dtype qdt, int64_t k, int64_t k_out,
                       int64_t m, ss_quant_launch *out) {
    const ss_tune_kernel_entry *e =
        ss_tune_table_lookup_kernel(context_table(ctx, user), "quant", qdt, k, k_out, m);
    if (!e || !out)
        return 0;
    *out = e->best;
    return 1;
}

const ss_tune_entry *ss_context_tuned(ss_context *ctx, ss_backend b, ss_dtype in, ss_dtype out,
                                      int64_t n, int64_t k, int64_t m) {
    return ss_tune_table_lookup(context_table(ctx, tune_state(ctx)), b, in, out, n, k, m);
}

int ss_context_tuned_quant(ss_context *ctx, ss_dtype qdt, int64_t k, int64_t k_out, int64_t m,
                           ss_quant_launch *out) {
    return tuner_quant(tune_state(ctx), ctx, qdt, k, k_out, m, out);
}

void ss_context_tuning_reload(ss_context *ctx) {
    ss_tune_ctx *tc = tune_state(ctx);
    if (!tc)
        return;
    ss_tune_table_free(tc->table);
    tc->table = NULL;
    tc->loaded = 0;
}

void ss_context_tuning_release(ss_context *ctx) {
    if (tune_state(ctx))
        (void)ss_context_set_tuner(ctx, NULL, NULL); /* runs tuner_release */
}
