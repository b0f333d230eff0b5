/* The algorithm search (SPEC §7): every candidate a backend offers for an M
 * bucket (cuSPARSELt: every alg id, split_k 1, 2, 4, ... until no gain, and
 * Segment-K where allowed), each validated once against the CPU reference
 * before it may win, timed with the fixture's loop; within 2.5% of the
 * fastest, less workspace and then smaller split_k win. And the driver that
 * runs it over stages x shapes x dtypes x patterns x M and keeps the table;
 * on a GPU it also tunes our quant(+slide) kernel's launch for each (dtype,
 * K, K_out, M) (quant_search.c): quant_only in the coarse stage, quant_slide
 * per pattern in the fine one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tune/fixture.h"

#define SS_TUNE_NEAR 1.025
#define SS_TUNE_MAX_RESULTS 512

typedef struct {
    ss_algo a;
    double us;
} result;

static double tops(int64_t m, int64_t n, int64_t k, double us) {
    return us > 0 ? 2.0 * (double)m * (double)n * (double)k / us * 1e-6 : 0;
}

/* One line per timed candidate (tune --candidates): the table keeps only the
 * top 3, and a candidate that never makes them (e.g. a new kernel being
 * measured) is otherwise invisible. */
static void log_candidate(const ss_fixture *f, ss_log_fn log, void *user, int64_t m, const char *desc,
                          double us) {
    if (!log)
        return;
    if (us < 0)
        ss_fix_log(log, user, "candidate %s N %lld K %lld M %lld %-44s did not run or mismatched",
                   f->desc.name, (long long)f->n, (long long)f->kq, (long long)m, desc);
    else
        ss_fix_log(log, user, "candidate %s N %lld K %lld M %lld %-44s %9.2f us %7.1f TOPS",
                   f->desc.name, (long long)f->n, (long long)f->kq, (long long)m, desc, us,
                   tops(m, f->n, f->kq, us));
}

/* Validates and times one candidate; *us < 0 when it cannot run or is wrong. */
static ss_status try_one(ss_fixture *f, int64_t m, const ss_algo *a, int warmup, int repeat,
                         int no_flush, double *us) {
    *us = -1;
    if (a && ss_linear_algo_set(f->lin, m, a) != SS_OK) {
        ss_clear_error(); /* a candidate the library refuses for this shape: not an error */
        return SS_OK;
    }
    int ok = 0;
    char why[256];
    ss_status s = ss_fixture_validate(f, m, &ok, why, sizeof why);
    if (s == SS_OK && !ok)
        return SS_OK; /* wrong results never win */
    if (s == SS_OK)
        s = ss_fixture_time(f, SS_FIX_GEMM, m, warmup, repeat, no_flush, us);
    if (s == SS_ECUDA || s == SS_EUNSUPPORTED) { /* this algorithm failed to launch */
        ss_clear_error();
        *us = -1;
        return SS_OK;
    }
    return s;
}

/* The workspace a really needs (cuSPARSELt's depends on split_k; the
 * candidate list only knows split_k 1). */
static void fill_workspace(ss_fixture *f, int64_t mp, ss_algo *a) {
    uint64_t ws;
    if (ss_linear_algo_workspace(f->lin, mp, a, &ws) == SS_OK)
        a->workspace = ws;
    else
        ss_clear_error(); /* it ran, so only the size is unknown: keep the list's */
}

static int better(const result *x, const result *y) {
    if (x->a.workspace != y->a.workspace)
        return x->a.workspace < y->a.workspace;
    int sx = x->a.split_k < 0 ? 1 << 20 : x->a.split_k, sy = y->a.split_k < 0 ? 1 << 20 : y->a.split_k;
    if (sx != sy)
        return sx < sy;
    return x->us < y->us;
}

static int by_time(const void *a, const void *b) {
    double x = ((const result *)a)->us, y = ((const result *)b)->us;
    return (x > y) - (x < y);
}

static void report(ss_tune_progress_fn fn, void *user, ss_tune_progress *pg, const char *cand) {
    if (!fn)
        return;
    pg->candidate = cand;
    fn(user, pg);
}

ss_status ss_tune_search(ss_fixture *f, int64_t m, int warmup, int repeat, int no_flush,
                         ss_tune_progress_fn progress, void *user, ss_tune_progress *pg,
                         ss_log_fn cand_log, ss_tune_entry *e) {
    result *r = calloc(SS_TUNE_MAX_RESULTS, sizeof *r);
    if (!r)
        return ss_fail(SS_ENOMEM, "tuning: out of memory");
    int nr = 0;
    ss_status s = SS_OK;
    int64_t mp = ss_linear_m_pad(m);
    int count = ss_linear_algo_count(f->lin, mp);
    if (count == 0) { /* one algorithm: time it (and still check it) */
        double us;
        report(progress, user, pg, "default");
        s = try_one(f, mp, NULL, warmup, repeat, no_flush, &us);
        if (s == SS_OK)
            log_candidate(f, cand_log, user, mp, "default", us);
        if (s == SS_OK && us >= 0) {
            r[0].a = (ss_algo){.backend = f->backend, .alg_id = 0, .split_k = 1};
            snprintf(r[0].a.desc, sizeof r[0].a.desc, "%s default", ss_backend_name(f->backend));
            r[0].us = us;
            nr = 1;
        }
    }
    for (int i = 0; s == SS_OK && i < count && nr < SS_TUNE_MAX_RESULTS - 32; i++) {
        ss_algo base;
        s = ss_linear_algo_get(f->lin, mp, i, &base);
        if (s != SS_OK)
            break;
        report(progress, user, pg, base.desc);
        double prev = -1;
        int sk = base.split_k_max > 0 ? 1 : base.split_k;
        for (;;) { /* split_k 1, 2, 4, ... while it gains */
            ss_algo a = base;
            a.split_k = sk;
            double us;
            s = try_one(f, mp, &a, warmup, repeat, no_flush, &us);
            if (base.split_k_max > 0)
                snprintf(a.desc, sizeof a.desc, "%.48s sk%d", base.desc, sk);
            if (s == SS_OK)
                log_candidate(f, cand_log, user, mp, a.desc, us);
            if (s != SS_OK || us < 0)
                break;
            fill_workspace(f, mp, &a);
            r[nr].a = a;
            r[nr++].us = us;
            int gains = prev < 0 || us < prev;
            prev = prev < 0 || us < prev ? us : prev;
            if (base.split_k_max <= 0 || !gains || sk * 2 > base.split_k_max)
                break;
            sk *= 2;
        }
        if (s == SS_OK && base.segment_k) {
            ss_algo a = base;
            a.split_k = -1;
            double us;
            s = try_one(f, mp, &a, warmup, repeat, no_flush, &us);
            snprintf(a.desc, sizeof a.desc, "%.48s segK", base.desc);
            if (s == SS_OK)
                log_candidate(f, cand_log, user, mp, a.desc, us);
            if (s == SS_OK && us >= 0) {
                fill_workspace(f, mp, &a);
                r[nr].a = a;
                r[nr++].us = us;
            }
        }
    }
    if (count > 0)
        (void)ss_linear_algo_set(f->lin, mp, NULL); /* unpin: the entry decides later */
    if (s == SS_OK && nr == 0)
        s = ss_fail(SS_EUNSUPPORTED, "tensor '%s': M %lld: no candidate of %s ran and matched the "
                    "CPU reference", f->desc.name, (long long)m, ss_backend_name(f->backend));
    if (s != SS_OK) {
        free(r);
        return s;
    }
    qsort(r, (size_t)nr, sizeof *r, by_time);
    int best = 0;
    for (int i = 1; i < nr && r[i].us <= r[0].us * SS_TUNE_NEAR; i++)
        if (better(&r[i], &r[best]))
            best = i;
    memset(e, 0, sizeof *e);
    e->backend = f->backend;
    e->in = f->desc.wdtype;
    e->out = f->desc.gemm_out;
    e->n = ss_ceil32(f->n);
    e->k = f->kq;
    e->m = mp;
    e->best = r[best].a;
    e->best.split_k_max = e->best.segment_k = 0;
    e->top[0].algo = r[best].a;
    e->top[0].us = r[best].us;
    e->n_top = 1;
    for (int i = 0; i < nr && e->n_top < SS_TUNE_TOP; i++)
        if (i != best) {
            e->top[e->n_top].algo = r[i].a;
            e->top[e->n_top++].us = r[i].us;
        }
    for (int i = 0; i < e->n_top; i++) {
        e->top[i].algo.split_k_max = e->top[i].algo.segment_k = 0;
        e->top[i].tops = tops(mp, f->n, f->kq, e->top[i].us);
    }
    free(r);
    return SS_OK;
}

// --- the driver -----------------------------------------------------------------------------------

static const int64_t m_coarse_default[] = {256, 1024, 4096, 16384, 32768};
static const int64_t m_fine_default[] = {64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768};

typedef struct {
    const ss_tune_opts *o;
    ss_tune_table *table;
    ss_tune_table *fresh; /* quant launches measured by this run (retune: once per key) */
    ss_tune_result *res;
    int step, total;
    double t0;
    /* The ETA weighs each step by its GEMM's size (M x N x K'): the M lists
     * span 64..32768, so counting steps said "2 min" for a 15-min CPU run. */
    double work_total, work_done;
    char what[128];
} run_state;

static double step_work(int64_t m, const ss_proj_shape *sh, ss_pattern p) {
    return (double)ss_linear_m_pad(m) * (double)sh->n * (double)ss_slid_k(p, sh->k);
}

static double list_work(const int64_t *ms, int nm, const ss_proj_shape *sh, ss_pattern p) {
    double w = 0;
    for (int i = 0; i < nm; i++)
        w += step_work(ms[i], sh, p);
    return w;
}

static double eta_s(const run_state *rs, double elapsed) {
    if (rs->work_done <= 0)
        return -1;
    return elapsed / rs->work_done * (rs->work_total - rs->work_done);
}

/* Whether the quant launch for (dt, k, kq, mp) still needs measuring: GPU
 * backends only (the CPU has no launch to choose); with retune once per run
 * (shapes sharing a K share the entry). */
static int quant_wanted(const run_state *rs, ss_backend b, ss_dtype dt, int64_t k, int64_t kq,
                        int64_t mp) {
    if (b == SS_BACKEND_CPU)
        return 0;
    if (ss_tune_table_find_kernel(rs->fresh, "quant", dt, k, kq, mp))
        return 0;
    return rs->o->retune || !ss_tune_table_find_kernel(rs->table, "quant", dt, k, kq, mp);
}

/* The launch search at mp on the fixture; a shape the kernel cannot take is
 * skipped with its reason, like a GEMM nobody can run. */
static ss_status tune_quant(run_state *rs, ss_fixture *f, int64_t mp, ss_tune_progress *pg) {
    const ss_tune_opts *o = rs->o;
    char what[128];
    snprintf(what, sizeof what, "quant %s K %lld -> %lld M %lld", ss_dtype_name(f->desc.wdtype),
             (long long)f->k, (long long)f->kq, (long long)mp);
    pg->what = what;
    ss_tune_kernel_entry e;
    ss_status s = ss_tune_quant_search(f, mp, o->warmup > 0 ? o->warmup : 25,
                                       o->repeat > 0 ? o->repeat : 50, o->no_flush, o->progress,
                                       o->user, pg, &e);
    pg->what = rs->what;
    if (s == SS_EUNSUPPORTED) {
        ss_fix_log(o->log, o->user, "skipped %s: %s", what, ss_last_error());
        ss_clear_error();
        return SS_OK;
    }
    SS_TRY(s);
    SS_TRY(ss_tune_table_put_kernel(rs->table, &e));
    SS_TRY(ss_tune_table_put_kernel(rs->fresh, &e));
    rs->res->launches_tuned++;
    char line[256];
    ss_tune_quant_describe(&e, line, sizeof line);
    ss_fix_log(o->log, o->user, "%s: %s", what, line);
    return SS_OK;
}

/* One (backend, shape, dtype, pattern) over its M list. */
static ss_status tune_case(run_state *rs, ss_backend b, const ss_proj_shape *sh, ss_dtype dt,
                           ss_pattern p, const int64_t *ms, int nm, const char *stage) {
    const ss_tune_opts *o = rs->o;
    char pat[16];
    ss_pattern_format(p, pat, sizeof pat);
    const char *why = ss_linear_supports(o->ctx, b, dt, p);
    if (why) {
        ss_fix_log(o->log, o->user, "skipped %s %s %s %s: %s", stage, sh->name, ss_dtype_name(dt),
                   pat, why);
        rs->res->skipped += nm;
        rs->step += nm;
        rs->work_total -= list_work(ms, nm, sh, p);
        return SS_OK;
    }
    ss_dtype gout = dt == SS_DTYPE_I8 ? SS_DTYPE_I32 : SS_DTYPE_F32;
    int64_t n32 = ss_ceil32(sh->n), kq = ss_slid_k(p, sh->k), mmax = 0;
    int todo = 0;
    for (int i = 0; i < nm; i++) {
        int64_t mp = ss_linear_m_pad(ms[i]);
        if (o->retune || !ss_tune_table_find(rs->table, b, dt, gout, n32, kq, mp) ||
            quant_wanted(rs, b, dt, sh->k, kq, mp)) {
            todo++;
            mmax = ms[i] > mmax ? ms[i] : mmax;
        }
    }
    if (todo == 0) {
        rs->res->reused += nm;
        rs->step += nm;
        rs->work_total -= list_work(ms, nm, sh, p);
        return SS_OK;
    }
    ss_fixture f;
    SS_TRY(ss_fixture_create(o->ctx, b, sh->name, sh->n, sh->k, dt, p, mmax, o->seed, &f));
    ss_status s = SS_OK;
    for (int i = 0; s == SS_OK && i < nm; i++, rs->step++) {
        int64_t mp = ss_linear_m_pad(ms[i]);
        int gemm = o->retune || !ss_tune_table_find(rs->table, b, dt, gout, n32, kq, mp);
        int quant = quant_wanted(rs, b, dt, sh->k, kq, mp);
        snprintf(rs->what, sizeof rs->what, "%s %s %s %s M %lld", stage, sh->name,
                 ss_dtype_name(dt), pat, (long long)mp);
        double el = ss_monotonic_s() - rs->t0;
        ss_tune_progress pg = {.what = rs->what, .index = rs->step, .total = rs->total,
                               .elapsed_s = el, .eta_s = eta_s(rs, el)};
        if (gemm)
            rs->work_done += step_work(ms[i], sh, p); /* done by the time the next ETA is made */
        else
            rs->work_total -= step_work(ms[i], sh, p);
        if (!gemm)
            rs->res->reused++;
        if (quant)
            s = tune_quant(rs, &f, mp, &pg);
        if (s != SS_OK || !gemm)
            continue;
        ss_tune_entry e;
        s = ss_tune_search(&f, mp, o->warmup > 0 ? o->warmup : 25, o->repeat > 0 ? o->repeat : 50,
                           o->no_flush, o->progress, o->user, &pg, o->log_candidates ? o->log : NULL,
                           &e);
        if (s == SS_EUNSUPPORTED) {
            ss_fix_log(o->log, o->user, "skipped %s: %s", rs->what, ss_last_error());
            ss_clear_error();
            rs->res->skipped++;
            s = SS_OK;
            continue;
        }
        if (s == SS_OK)
            s = ss_tune_table_put(rs->table, &e);
        if (s == SS_OK)
            rs->res->tuned++;
    }
    ss_fixture_free(&f);
    return s;
}

ss_status ss_tune_run(const ss_tune_opts *o, ss_tune_result *res) {
    if (!o || !res || !o->ctx || !o->shapes || o->n_shapes <= 0 || !o->dtypes || o->n_dtypes <= 0)
        return ss_fail(SS_EINVAL, "tune: expected a context, shapes and dtypes");
    if (o->fine && (!o->patterns || o->n_patterns <= 0))
        return ss_fail(SS_EINVAL, "tune: the fine stage needs at least one pattern");
    memset(res, 0, sizeof *res);
    const int64_t *mc = o->m_coarse ? o->m_coarse : m_coarse_default;
    int nmc = o->m_coarse ? o->n_m_coarse : (int)(sizeof m_coarse_default / sizeof *mc);
    const int64_t *mf = o->m_fine ? o->m_fine : m_fine_default;
    int nmf = o->m_fine ? o->n_m_fine : (int)(sizeof m_fine_default / sizeof *mf);
    for (int i = 0; i < nmc; i++)
        if (mc[i] <= 0)
            return ss_fail(SS_EINVAL, "tune: coarse M list: expected M > 0, found %lld", (long long)mc[i]);
    for (int i = 0; i < nmf; i++)
        if (mf[i] <= 0)
            return ss_fail(SS_EINVAL, "tune: fine M list: expected M > 0, found %lld", (long long)mf[i]);
    int gpu = ss_context_device(o->ctx) >= 0;
    ss_backend bc = !gpu ? SS_BACKEND_CPU : o->dense_backend ? o->dense_backend : SS_BACKEND_CUBLASLT;
    ss_backend bf = !gpu ? SS_BACKEND_CPU : o->sparse_backend ? o->sparse_backend : SS_BACKEND_CUSPARSELT;
    ss_tune_key key;
    SS_TRY(ss_tune_key_of(o->ctx, &key));
    SS_TRY(ss_tune_table_path(o->root, &key, res->path, sizeof res->path));
    /* the largest fixture of the run against the free memory, before any */
    ss_fixture_cases cc = {.shapes = o->shapes, .n_shapes = o->n_shapes, .dtypes = o->dtypes,
                           .n_dtypes = o->n_dtypes, .ms = mc, .n_m = nmc};
    ss_fixture_cases cf = cc;
    cf.patterns = o->patterns;
    cf.n_patterns = o->n_patterns;
    cf.ms = mf;
    cf.n_m = nmf;
    if (o->coarse)
        SS_TRY(ss_fixture_check_cases(o->ctx, bc, &cc));
    if (o->fine)
        SS_TRY(ss_fixture_check_cases(o->ctx, bf, &cf));
    run_state rs = {.o = o, .res = res, .t0 = ss_monotonic_s()};
    char status[2048];
    SS_TRY(ss_tune_table_open(o->ctx, o->root, &rs.table, status, sizeof status));
    ss_fix_log(o->log, o->user, "%s", status);
    if (!rs.table)
        SS_TRY(ss_tune_table_create(&key, &rs.table));
    if (ss_tune_table_create(&key, &rs.fresh) != SS_OK) {
        ss_tune_table_free(rs.table);
        return ss_fail(SS_ENOMEM, "tune: out of memory");
    }
    rs.total = o->n_shapes * o->n_dtypes * ((o->coarse ? nmc : 0) + (o->fine ? o->n_patterns * nmf : 0));
    for (int si = 0; si < o->n_shapes; si++) {
        const ss_proj_shape *sh = &o->shapes[si];
        double w = o->coarse ? list_work(mc, nmc, sh, SS_PATTERN_DENSE) : 0;
        for (int pi = 0; o->fine && pi < o->n_patterns; pi++)
            w += list_work(mf, nmf, sh, o->patterns[pi]);
        rs.work_total += w * o->n_dtypes;
    }
    ss_status s = SS_OK;
    for (int si = 0; s == SS_OK && si < o->n_shapes; si++) {
        for (int di = 0; s == SS_OK && di < o->n_dtypes; di++) {
            if (o->coarse)
                s = tune_case(&rs, bc, &o->shapes[si], o->dtypes[di], SS_PATTERN_DENSE, mc, nmc,
                              "coarse");
            for (int pi = 0; s == SS_OK && o->fine && pi < o->n_patterns; pi++)
                s = tune_case(&rs, bf, &o->shapes[si], o->dtypes[di], o->patterns[pi], mf, nmf,
                              "fine");
        }
        /* saved after every shape: an interrupted run keeps what it measured */
        if (s == SS_OK && res->tuned + res->launches_tuned > 0)
            s = ss_tune_table_save(rs.table, res->path);
    }
    ss_tune_table_free(rs.fresh);
    ss_tune_table_free(rs.table);
    if (res->tuned + res->launches_tuned > 0)
        ss_context_tuning_reload(o->ctx); /* later linears of this process see the new entries */
    return s;
}
