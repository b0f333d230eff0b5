/* The kernel benchmark (tasks 6-8): dense vs every slid pattern for each
 * projection of a model and each M, at two levels (GEMM alone with the tuned
 * algorithm; the whole linear layer), written as CSVs in the layout of
 * slidesparse/bench.h. (Shape, M) pairs the tuning table lacks are tuned on the spot
 * (and the table saved), so a second run reuses them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clocks.h"
#include "core/error.h"
#include "slidesparse/bench.h"
#include "tune/fixture.h"

static const int64_t m_default[] = {64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};

typedef struct {
    const ss_bench_kernel_opts *o;
    ss_bench_kernel_result *res;
    ss_tune_table *table;
    size_t cap;
    const ss_proj_shape *shapes;
    int n_shapes;
    ss_pattern pats[32];
    int n_pats;
    ss_tune_key key;
    ss_clocks *clocks;    /* NULL: clocks not recorded (res->clock_note says why) */
} bench;

static ss_status push_row(bench *b, const ss_bench_row *r) {
    ss_bench_kernel_result *res = b->res;
    if (res->n_rows == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        ss_bench_row *nr = realloc(res->rows, cap * sizeof *nr);
        if (!nr)
            return ss_fail(SS_ENOMEM, "bench: out of memory for %zu rows", cap);
        res->rows = nr;
        b->cap = cap;
    }
    res->rows[res->n_rows++] = *r;
    return SS_OK;
}

/* The table's algorithm for (f, m), searching it first when the table has no
 * entry tuned at this very M (an algorithm tuned at another M can be far off:
 * cuBLASLt's M 256 choice costs ~20% at M 64); with --no-tune the nearest
 * entry by the lookup rule. Pins it on the linear; fills the row's fields. */
static ss_status apply_algo(bench *b, ss_fixture *f, int64_t m, ss_bench_row *row) {
    const ss_bench_kernel_opts *o = b->o;
    int64_t mp = ss_linear_m_pad(m), n32 = ss_ceil32(f->n);
    ss_dtype in = f->desc.wdtype, out = f->desc.gemm_out;
    const ss_tune_entry *e = o->no_tune ? ss_tune_table_lookup(b->table, f->backend, in, out, n32, f->kq, mp)
                                        : ss_tune_table_find(b->table, f->backend, in, out, n32, f->kq, mp);
    if (!e && !o->no_tune) {
        ss_tune_progress pg = {.what = "tuning", .index = 0, .total = 1, .eta_s = -1};
        ss_tune_entry ne;
        SS_TRY(ss_tune_search(f, mp, o->warmup > 0 ? o->warmup : 25, o->repeat > 0 ? o->repeat : 50,
                              o->no_flush, o->progress, o->user, &pg, NULL, &ne));
        SS_TRY(ss_tune_table_put(b->table, &ne));
        b->res->tuned++;
        e = ss_tune_table_lookup(b->table, f->backend, in, out, n32, f->kq, mp);
    } else if (e) {
        b->res->reused++;
    }
    snprintf(row->algo, sizeof row->algo, "heuristic");
    row->alg_id = -1;
    row->split_k = 0;
    if (!e)
        return SS_OK;
    if (ss_linear_algo_count(f->lin, mp) > 0) {
        if (ss_linear_algo_set(f->lin, mp, &e->best) != SS_OK) {
            ss_fix_log(b->o->log, b->o->user,
                       "%s M %lld: tuned algorithm '%s' refused (%s); using the heuristic",
                       f->desc.name, (long long)m, e->best.desc, ss_last_error());
            ss_clear_error();
            (void)ss_linear_algo_set(f->lin, mp, NULL);
            return SS_OK;
        }
    }
    row->alg_id = e->best.alg_id;
    row->split_k = e->best.split_k;
    snprintf(row->algo, sizeof row->algo, "%s", e->best.desc);
    return SS_OK;
}

/* Says which quant launch the whole-linear level runs with: the layer reads
 * the same table through ss_context_tuned_quant (no entry: the automatic
 * choice). Once per (dtype, K, K_out): projections sharing K share it. */
static void log_quant_launch(bench *b, const ss_fixture *f, int proj, const int64_t *ms, int nm) {
    if (f->backend == SS_BACKEND_CPU)
        return;
    for (int j = 0; j < proj; j++)
        if (b->shapes[j].k == f->k)
            return;
    char line[1024], d[32];
    int w = snprintf(line, sizeof line, "whole linear: quant %s K %lld -> %lld launch:",
                     ss_dtype_name(f->desc.wdtype), (long long)f->k, (long long)f->kq);
    int tuned = 0;
    for (int i = 0; i < nm && w > 0 && (size_t)w < sizeof line; i++) {
        const ss_tune_kernel_entry *e = ss_tune_table_lookup_kernel(
            b->table, "quant", f->desc.wdtype, f->k, f->kq, ss_linear_m_pad(ms[i]));
        tuned += e != NULL;
        ss_quant_launch_desc(e ? e->best : (ss_quant_launch){0, 0}, d, sizeof d);
        w += snprintf(line + w, sizeof line - (size_t)w, " M %lld %s%s", (long long)ms[i], d,
                      i + 1 < nm ? "," : "");
    }
    if (tuned == 0)
        snprintf(line + strlen("whole linear: "), sizeof line - strlen("whole linear: "),
                 "quant %s K %lld -> %lld launch: auto (no tuned entry)",
                 ss_dtype_name(f->desc.wdtype), (long long)f->k, (long long)f->kq);
    ss_fix_log(b->o->log, b->o->user, "%s", line);
}

/* The median latency of one stage at m; with NVML, the SM clock and power
 * read while its timed iterations ran go into *clk (samples 0 otherwise). */
static ss_status time_stage(bench *b, ss_fixture *f, ss_fix_stage stage, int64_t m, int warm,
                            int rep, double *us, ss_bench_clock *clk) {
    ss_clock_recorder rec = {.clocks = b->clocks};
    /* ~1 ms apart: a timed loop of 20 iterations at M 4096 lasts a few ms, and
     * the SM clock moves on that scale; a reading costs the GPU nothing */
    ss_fix_probe probe = {.sample = ss_clock_recorder_sample, .user = &rec, .interval_us = 1000};
    ss_status s = ss_fixture_time_probed(f, stage, m, warm, rep, b->o->no_flush,
                                         b->clocks ? &probe : NULL, us);
    *clk = ss_clock_stats_summary(&rec.stats);
    return s;
}

/* One (dtype, projection, backend/pattern) over the M list. */
static ss_status bench_case(bench *b, ss_dtype dt, int proj, const ss_proj_shape *sh,
                            ss_backend be, ss_pattern p, const int64_t *ms, int nm) {
    const ss_bench_kernel_opts *o = b->o;
    int64_t mmax = 0;
    for (int i = 0; i < nm; i++)
        mmax = ms[i] > mmax ? ms[i] : mmax;
    ss_fixture f;
    SS_TRY(ss_fixture_create(o->ctx, be, sh->name, sh->n, sh->k, dt, p, mmax, o->seed, &f));
    ss_status s = SS_OK;
    int warm = o->warmup > 0 ? o->warmup : 25, rep = o->repeat > 0 ? o->repeat : 100;
    char pat[16];
    ss_pattern_format(p, pat, sizeof pat);
    for (int i = 0; s == SS_OK && i < nm; i++) {
        ss_bench_row row = {.dtype = dt, .proj = proj, .m = ms[i], .n = sh->n, .k = sh->k,
                            .k_slid = f.kq, .backend = be, .pattern = p};
        if (o->progress) {
            char what[128];
            snprintf(what, sizeof what, "bench %s %s %s M %lld", ss_dtype_name(dt), sh->name, pat,
                     (long long)ms[i]);
            ss_tune_progress pg = {.what = what, .candidate = "", .eta_s = -1};
            o->progress(o->user, &pg);
        }
        s = apply_algo(b, &f, ms[i], &row);
        int ok = 1;
        char why[256] = "";
        if (s == SS_OK)
            s = ss_fixture_validate(&f, ms[i], &ok, why, sizeof why);
        if (s == SS_OK && !ok) {
            s = ss_fail(SS_ECUDA, "tensor '%s' %s %s M %lld: GEMM output differs from the CPU "
                        "reference: %s", sh->name, ss_dtype_name(dt), pat, (long long)ms[i], why);
            break;
        }
        if (s == SS_OK)
            s = time_stage(b, &f, SS_FIX_GEMM, ms[i], warm, rep, &row.us[0], &row.clk[0]);
        if (s == SS_OK)
            s = time_stage(b, &f, SS_FIX_LINEAR, ms[i], warm, rep, &row.us[1], &row.clk[1]);
        if (s == SS_OK)
            s = push_row(b, &row);
    }
    if (s == SS_OK)
        log_quant_launch(b, &f, proj, ms, nm);
    ss_fixture_free(&f);
    return s;
}

// --- CSV ------------------------------------------------------------------------------------

/* The row of (dt, proj, p, m) on backend be (SS_BACKEND_COUNT: any). */
static const ss_bench_row *find_row_on(const ss_bench_kernel_result *r, ss_dtype dt, int proj,
                                       ss_backend be, ss_pattern p, int64_t m) {
    for (size_t i = 0; i < r->n_rows; i++) {
        const ss_bench_row *x = &r->rows[i];
        if (x->dtype == dt && x->proj == proj && x->m == m && x->pattern.z == p.z &&
            x->pattern.l == p.l && (be == SS_BACKEND_COUNT || x->backend == be))
            return x;
    }
    return NULL;
}

/* Dense: the fastest dense row at `level` (cuBLASLt or sm90dense when both
 * ran: the best dense is the honest baseline); else the one row of p. */
static const ss_bench_row *find_best(const ss_bench_kernel_result *r, ss_dtype dt, int proj,
                                     ss_pattern p, int64_t m, int level) {
    const ss_bench_row *best = NULL;
    for (size_t i = 0; i < r->n_rows; i++) {
        const ss_bench_row *x = &r->rows[i];
        if (x->dtype == dt && x->proj == proj && x->m == m && x->pattern.z == p.z &&
            x->pattern.l == p.l && (!best || x->us[level] < best->us[level]))
            best = x;
    }
    return best;
}

static const ss_bench_row *find_row(const ss_bench_kernel_result *r, ss_dtype dt, int proj,
                                    ss_pattern p, int64_t m) {
    return find_row_on(r, dt, proj, SS_BACKEND_COUNT, p, m);
}

ss_status ss_bench_total_on(const ss_bench_kernel_result *r, int n_proj, ss_dtype dt,
                            ss_backend be, ss_pattern p, int64_t m, ss_bench_level level,
                            double *us) {
    double t = 0;
    for (int j = 0; j < n_proj; j++) {
        const ss_bench_row *x = be == SS_BACKEND_COUNT ? find_best(r, dt, j, p, m, level)
                                                       : find_row_on(r, dt, j, be, p, m);
        if (!x)
            return ss_fail(SS_EINVAL, "bench total: no row%s%s for projection %d at M %lld",
                           be == SS_BACKEND_COUNT ? "" : " on ",
                           be == SS_BACKEND_COUNT ? "" : ss_backend_name(be), j, (long long)m);
        t += x->us[level];
    }
    *us = t;
    return SS_OK;
}

ss_status ss_bench_total(const ss_bench_kernel_result *r, int n_proj, ss_dtype dt, ss_pattern p,
                         int64_t m, ss_bench_level level, double *us) {
    return ss_bench_total_on(r, n_proj, dt, SS_BACKEND_COUNT, p, m, level, us);
}

static const char *backend_label(ss_backend b) {
    return b == SS_BACKEND_CUBLASLT     ? "cuBLASLt"
           : b == SS_BACKEND_CUSPARSELT ? "cuSPARSELt"
           : b == SS_BACKEND_SM90SP     ? "sm90sp"
           : b == SS_BACKEND_SM90DENSE  ? "sm90dense"
                                        : "cpu";
}

static const char *dtype_tag(ss_dtype t) { return t == SS_DTYPE_I8 ? "INT8" : "FP8"; }

static const char *header =
    "gpu,cc,dtype,cublaslt,cusparselt,toolchain,model,proj,M,N,K,K_slid,backend,pattern,level,"
    "latency_us,tops,speedup,ideal,slid_eff,alg_id,split_k,algo,"
    "sm_mhz_mean,sm_mhz_min,power_w,power_capped";

/* The four clock fields (no leading comma); empty where not recorded. */
static const char *clock_fields(const ss_bench_clock *c, char *buf, size_t n) {
    if (!c || c->samples <= 0) {
        snprintf(buf, n, ",,,");
        return buf;
    }
    char w[32] = "", cap[32] = "";
    if (c->power_w >= 0)
        snprintf(w, sizeof w, "%.1f", c->power_w);
    if (c->capped >= 0)
        snprintf(cap, sizeof cap, "%.3f", c->capped);
    snprintf(buf, n, "%.0f,%.0f,%s,%s", c->sm_mhz_mean, c->sm_mhz_min, w, cap);
    return buf;
}

/* One CSV line; `nat24` is the native 2:4 latency at the same level (0: none). */
static void csv_row(ss_csv *c, const bench *b, ss_dtype dt, const char *model, const char *proj,
                    int64_t m, int64_t n, int64_t k, int64_t ks, double nk, ss_pattern p,
                    int level, double us, double dense_us, double nat24, const ss_bench_row *alg,
                    const char *backend) {
    char gpu[300], pat[16], algo[160], slid_eff[32] = "", clk[128];
    int dense = ss_pattern_is_dense(p);
    ss_pattern_format(p, pat, sizeof pat);
    if (!dense && nat24 > 0 && us > 0)
        snprintf(slid_eff, sizeof slid_eff, "%.4f", nat24 / us * ss_pattern_expansion(p));
    double tops = us > 0 ? 2.0 * (double)m * nk / us * 1e-6 : 0; /* nk: sum of N*K */
    char alg_id[16] = "", sk[16] = "";
    if (alg) {
        snprintf(alg_id, sizeof alg_id, "%d", alg->alg_id);
        snprintf(sk, sizeof sk, "%d", alg->split_k);
    }
    ss_csv_line(c, "%s,%d,%s,%s,%s,%s,%s,%s,%lld,%lld,%lld,%lld,%s,%s,%s,%.3f,%.2f,%.4f,%.4f,%s,%s,%s,%s,%s",
                ss_csv_field(b->key.gpu, gpu, sizeof gpu), b->key.cc, dtype_tag(dt),
                b->key.cublaslt, b->key.cusparselt, b->key.toolchain, model, proj, (long long)m,
                (long long)n, (long long)k, (long long)ks,
                backend, pat, level ? "linear" : "gemm", us, tops,
                us > 0 ? dense_us / us : 0.0, dense ? 1.0 : ss_pattern_ideal_speedup(p), slid_eff,
                alg_id, sk, alg ? ss_csv_field(alg->algo, algo, sizeof algo) : "",
                clock_fields(alg ? &alg->clk[level] : NULL, clk, sizeof clk));
}

static ss_status write_dtype(bench *b, ss_dtype dt, const char *model, const int64_t *ms, int nm) {
    const ss_bench_kernel_opts *o = b->o;
    char stem[256], path[2048];
    ss_tune_key_dir(&b->key, stem, sizeof stem);
    /* "<GPU>_cc<cc>_<toolchain>" -> "<GPU>_cc<cc>_<INT8|FP8>_<toolchain>" */
    char folder[320];
    size_t cut = strlen(stem) - strlen(b->key.toolchain) - 1;
    snprintf(folder, sizeof folder, "%.*s_%s_%s", (int)cut, stem, dtype_tag(dt), b->key.toolchain);
    ss_status s = SS_OK;
    /* the sparse side: cuSPARSELt, or sm90sp (--sm90sp); the dense side:
     * cuBLASLt, and sm90dense too with --sm90dense (its own folder). Dense
     * references (speedup) are the best dense per projection, M and level. */
    const char *sparse_name = o->sm90sp ? "sm90sp" : "cuSPARSELt";
    int gpu = b->key.cc != 0;
    for (int side = 0; side < 3 && s == SS_OK; side++) { /* cuBLASLt, sparse, sm90dense */
        if (side == 2 && (!o->sm90dense || !gpu))
            break;
        const char *folder_name = side == 1 ? sparse_name : side ? "sm90dense" : "cuBLASLt";
        const char *side_name = !gpu ? "cpu" : folder_name;
        /* which dense rows this side writes (the sparse side: any backend) */
        ss_backend dbe = side == 2 ? SS_BACKEND_SM90DENSE : gpu ? SS_BACKEND_CUBLASLT : SS_BACKEND_CPU;
        char *dir = side == 2 ? b->res->dense2_dir : b->res->dirs[side];
        snprintf(dir, sizeof b->res->dense2_dir, "%s/benchmark_kernel/%s/%s", o->out_root,
                 folder_name, folder);
        int sparse = side == 1;
        for (int j = 0; j <= b->n_shapes && s == SS_OK; j++) { /* j == n_shapes: total */
            int total = j == b->n_shapes;
            if (total && o->square)
                break;
            ss_csv c = {0};
            ss_csv_line(&c, "%s", header);
            int lines = 0;
            for (int mi = 0; mi < nm; mi++) {
                int64_t m = ms[mi];
                for (int pi = sparse ? 0 : -1; pi < (sparse ? b->n_pats : 0); pi++) {
                    ss_pattern p = pi < 0 ? SS_PATTERN_DENSE : b->pats[pi];
                    for (int lv = 0; lv < 2; lv++) {
                        double us = 0, du = 0, nat = 0;
                        if (total) {
                            if (ss_bench_total_on(b->res, b->n_shapes, dt,
                                                  sparse ? SS_BACKEND_COUNT : dbe, p, m, lv,
                                                  &us) != SS_OK ||
                                ss_bench_total(b->res, b->n_shapes, dt, SS_PATTERN_DENSE, m, lv,
                                               &du) != SS_OK) {
                                ss_clear_error();
                                continue;
                            }
                            if (ss_bench_total(b->res, b->n_shapes, dt, (ss_pattern){2, 4}, m, lv,
                                               &nat) != SS_OK)
                                ss_clear_error();
                            int64_t sn = 0, sk = 0, sks = 0;
                            double flops = 0;
                            for (int q = 0; q < b->n_shapes; q++) {
                                sn += b->shapes[q].n;
                                sk += b->shapes[q].k;
                                sks += ss_slid_k(p, b->shapes[q].k);
                                flops += (double)b->shapes[q].n * (double)b->shapes[q].k;
                            }
                            /* N, K, K_slid: sums over the projections; TOPS from sum N*K */
                            csv_row(&c, b, dt, model, "total", m, sn, sk, sks, flops, p, lv, us,
                                    du, nat, NULL, side_name);
                            lines++;
                            continue;
                        }
                        const ss_bench_row *r = sparse ? find_row(b->res, dt, j, p, m)
                                                       : find_row_on(b->res, dt, j, dbe, p, m);
                        const ss_bench_row *d = find_best(b->res, dt, j, SS_PATTERN_DENSE, m, lv);
                        const ss_bench_row *n24 = find_row(b->res, dt, j, (ss_pattern){2, 4}, m);
                        if (!r)
                            continue;
                        csv_row(&c, b, dt, model, b->shapes[j].name, m, r->n, r->k, r->k_slid,
                                (double)r->n * (double)r->k, p, lv, r->us[lv], d ? d->us[lv] : 0,
                                n24 ? n24->us[lv] : 0, r, backend_label(r->backend));
                        lines++;
                    }
                }
            }
            if (lines > 0) {
                snprintf(path, sizeof path, "%s/%s_%s.csv", dir, model,
                         total ? "total" : b->shapes[j].name);
                s = ss_csv_save(&c, path);
            }
            ss_csv_free(&c);
        }
    }
    return s;
}

// --- clock summaries ------------------------------------------------------------------------

ss_bench_clock ss_bench_clock_summary(const ss_bench_kernel_result *r, int sparse, int dtype,
                                      int64_t m, int level) {
    ss_bench_clock c = {.power_w = -1, .capped = -1};
    for (size_t i = 0; r && i < r->n_rows; i++) {
        const ss_bench_row *x = &r->rows[i];
        if (!ss_pattern_is_dense(x->pattern) != !!sparse || (dtype >= 0 && (int)x->dtype != dtype) ||
            (m > 0 && x->m != m))
            continue;
        for (int lv = 0; lv < 2; lv++)
            if (level < 0 || level == lv)
                c = ss_clock_merge(c, x->clk[lv]);
    }
    return c;
}

// --- the run -----------------------------------------------------------------------------------

static int same_pattern(ss_pattern a, ss_pattern b) { return a.z == b.z && a.l == b.l; }

void ss_bench_kernel_result_free(ss_bench_kernel_result *r) {
    if (!r)
        return;
    free(r->rows);
    r->rows = NULL;
    r->n_rows = 0;
}

static ss_status run_dtype(bench *b, ss_dtype dt, const int64_t *ms, int nm, ss_proj_shape *sq) {
    const ss_bench_kernel_opts *o = b->o;
    int gpu = ss_context_device(o->ctx) >= 0;
    ss_backend bd = gpu ? SS_BACKEND_CUBLASLT : SS_BACKEND_CPU;
    ss_backend bs = !gpu ? SS_BACKEND_CPU : o->sm90sp ? SS_BACKEND_SM90SP : SS_BACKEND_CUSPARSELT;
    const char *why = ss_linear_supports(o->ctx, bd, dt, SS_PATTERN_DENSE);
    if (why) {
        ss_fix_log(b->o->log, b->o->user, "skipped %s: %s", ss_dtype_name(dt), why);
        return SS_OK;
    }
    ss_status s = SS_OK;
    for (int j = 0; j < b->n_shapes && s == SS_OK; j++) {
        const int64_t *mj = o->square ? &ms[j] : ms; /* square: shape j is M = N = K = ms[j] */
        int nmj = o->square ? 1 : nm;
        const ss_proj_shape *sh = o->square ? &sq[j] : &b->shapes[j];
        s = bench_case(b, dt, j, sh, bd, SS_PATTERN_DENSE, mj, nmj);
        if (s == SS_OK && o->sm90dense && gpu) { /* the dense baseline with the fused epilogue */
            const char *w = ss_linear_supports(o->ctx, SS_BACKEND_SM90DENSE, dt, SS_PATTERN_DENSE);
            if (w)
                ss_fix_log(b->o->log, b->o->user, "skipped %s %s sm90dense: %s",
                           ss_dtype_name(dt), sh->name, w);
            else
                s = bench_case(b, dt, j, sh, SS_BACKEND_SM90DENSE, SS_PATTERN_DENSE, mj, nmj);
        }
        for (int pi = 0; pi < b->n_pats && s == SS_OK; pi++) {
            char pat[16];
            const char *w = ss_linear_supports(o->ctx, bs, dt, b->pats[pi]);
            if (w) {
                ss_fix_log(b->o->log, b->o->user, "skipped %s %s %s: %s", ss_dtype_name(dt),
                           sh->name, ss_pattern_format(b->pats[pi], pat, sizeof pat), w);
                continue;
            }
            s = bench_case(b, dt, j, sh, bs, b->pats[pi], mj, nmj);
        }
    }
    if (s == SS_OK && o->out_root)
        s = write_dtype(b, dt, o->square ? "square" : (o->model ? o->model : "model"), ms, nm);
    return s;
}

ss_status ss_bench_kernel(const ss_bench_kernel_opts *o, ss_bench_kernel_result *res) {
    if (!o || !res || !o->ctx || !o->dtypes || o->n_dtypes <= 0)
        return ss_fail(SS_EINVAL, "bench kernel: expected a context and dtypes");
    if (!o->square && (!o->shapes || o->n_shapes <= 0))
        return ss_fail(SS_EINVAL, "bench kernel: expected shapes (or square mode)");
    memset(res, 0, sizeof *res);
    const int64_t *ms = o->ms ? o->ms : m_default;
    int nm = o->ms ? o->n_m : (int)(sizeof m_default / sizeof *m_default);
    for (int i = 0; i < nm; i++)
        if (ms[i] <= 0 || ms[i] > ((int64_t)1 << 20))
            return ss_fail(SS_EINVAL, "bench kernel: M list: expected 1..%lld, found %lld",
                           (long long)1 << 20, (long long)ms[i]);
    bench b = {.o = o, .res = res, .shapes = o->shapes, .n_shapes = o->n_shapes};
    b.pats[b.n_pats++] = (ss_pattern){2, 4}; /* native 2:4 on the same K, always */
    for (int i = 0; i < o->n_patterns; i++) {
        ss_pattern p = o->patterns[i];
        if (ss_pattern_is_dense(p) || (p.l != 0 && (p.l < 4 || p.l % 2)))
            return ss_fail(SS_EINVAL, "bench kernel: pattern %d: expected 2_L with even L >= 4 "
                           "or 2_inf, found {%d,%d}", i, p.z, p.l);
        int dup = 0;
        for (int j = 0; j < b.n_pats; j++)
            dup |= same_pattern(b.pats[j], p);
        if (!dup && b.n_pats < (int)(sizeof b.pats / sizeof *b.pats))
            b.pats[b.n_pats++] = p;
    }
    ss_proj_shape *sq = NULL;
    if (o->square) {
        sq = calloc((size_t)nm, sizeof *sq);
        if (!sq)
            return ss_fail(SS_ENOMEM, "bench kernel: out of memory");
        for (int i = 0; i < nm; i++) {
            snprintf(sq[i].name, sizeof sq[i].name, "sq%lld", (long long)ms[i]);
            sq[i].n = sq[i].k = ms[i];
        }
        b.shapes = sq;
        b.n_shapes = nm;
    }
    /* The largest fixture of the run, checked against the free memory before
     * the first one (a square M of 65536 grew to gigabytes before failing). */
    ss_backend be = ss_context_device(o->ctx) >= 0 ? SS_BACKEND_CUBLASLT : SS_BACKEND_CPU;
    ss_fixture_cases fc = {.shapes = b.shapes, .n_shapes = b.n_shapes, .dtypes = o->dtypes,
                           .n_dtypes = o->n_dtypes, .patterns = b.pats, .n_patterns = b.n_pats,
                           .ms = ms, .n_m = nm, .m_per_shape = o->square};
    ss_status s = ss_fixture_check_cases(o->ctx, be, &fc);
    if (s == SS_OK && o->no_clocks)
        snprintf(res->clock_note, sizeof res->clock_note, "not recorded: turned off");
    else if (s == SS_OK)
        s = ss_clocks_open(o->ctx, &b.clocks, res->clock_note, sizeof res->clock_note);
    if (s == SS_OK)
        ss_fix_log(o->log, o->user, "SM clock / power: %s", res->clock_note);
    if (s == SS_OK)
        s = ss_tune_key_of(o->ctx, &b.key);
    if (s == SS_OK)
        s = ss_tune_table_open(o->ctx, o->tuning_root, &b.table, res->table_status,
                               sizeof res->table_status);
    if (s == SS_OK && o->log)
        o->log(o->user, res->table_status);
    if (s == SS_OK && !b.table)
        s = ss_tune_table_create(&b.key, &b.table);
    for (int d = 0; d < o->n_dtypes && s == SS_OK; d++)
        s = run_dtype(&b, o->dtypes[d], ms, nm, sq);
    if (res->tuned > 0) {
        char path[1024];
        ss_status s2 = ss_tune_table_path(o->tuning_root, &b.key, path, sizeof path);
        if (s2 == SS_OK)
            s2 = ss_tune_table_save(b.table, path);
        if (s == SS_OK)
            s = s2;
    }
    ss_tune_table_free(b.table);
    ss_clocks_close(b.clocks);
    free(sq);
    return s;
}
