/* slidesparse bench kernel (tasks 6-8): dense vs slid GEMMs of a model's
 * projections, GEMM-only and whole-linear, CSVs per slidesparse/bench.h. */
#include "cli.h"

#include <string.h>

#include "bench_cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: slidesparse bench kernel (--preset NAME | --model DIR | --square) [options]\n"
            "  Task 6: cuBLASLt dense; task 7: cuSPARSELt 2_4..2_10; task 8: 2_12..2_16, 2_inf.\n"
            "  Native 2:4 on the same K is always measured (slid efficiency).\n"
            "  Every (projection, M, pattern) at two levels: GEMM only (tuned algorithm)\n"
            "  and the whole linear layer (quant(+slide) + GEMM + dequant).\n"
            "  --task LIST        6,7,8 (default)\n"
            "  --sparsity LIST    patterns instead of the tasks' (2_L, 6:8, 2_inf)\n"
            CLI_SPARSITY_HELP
            "  --dtype LIST       int8,fp8 (default both; FP8 skipped below cc 8.9)\n"
            "  --m LIST           default 64,128,256,512,1024,2048,4096,8192,16384\n"
            "  --square           M = N = K for each M (the paper's sweep)\n"
            "  --out DIR          CSVs under DIR/benchmark_kernel/... (default .)\n"
            "  --tuning-dir DIR   default ./tuning; (shape, M) pairs it lacks are tuned now and saved\n"
            "  --no-tune          use the heuristic where the table has no entry\n"
            CLI_BACKEND_HELP
            "                     (cublaslt / cusparselt: the default dense / sparse pair;\n"
            "                     sm90sp, sm90dense: as --sm90sp, --sm90dense)\n"
            "  --sm90sp           sparse side on the sm90sp backend (CUTLASS SM90 2:4 GEMM,\n"
            "                     dequant fused: GEMM level = GEMM + dequant) instead of cuSPARSELt\n"
            "  --sm90dense        dense side on sm90dense too (the same CUTLASS family, dense,\n"
            "                     dequant fused); speedups are then against the best dense\n"
            "  --no-clocks        do not read the SM clock / power during the timed loops (NVML)\n"
            "  --device N --warmup N --repeat N (default 25 / 100 on a GPU, 2 / 5 on the CPU)\n"
            "  --no-flush --quiet\n");
}

static void bench_usage(FILE *f) {
    fprintf(f, "usage: slidesparse bench kernel|prefill|decode [options]   (slidesparse bench <kind> --help)\n"
               "  kernel   GEMM-only and whole-linear latency, dense vs every pattern, over M (tasks 6-8)\n"
               "  prefill  engine throughput on the prefill workloads, one checkpoint (task 4)\n"
               "  decode   engine throughput on the decode workloads, one checkpoint (task 5)\n");
}

/* "1980/1755" (mean SM MHz dense / sparse while their timed loops ran at
 * this M and level), "c" appended when some reading was power / thermal
 * capped; "-" where nothing was recorded. */
static const char *clock_field(const ss_bench_kernel_result *r, ss_dtype dt, int64_t m, int lv,
                               char *buf, size_t n) {
    ss_bench_clock d = ss_bench_clock_summary(r, 0, (int)dt, m, lv);
    ss_bench_clock s = ss_bench_clock_summary(r, 1, (int)dt, m, lv);
    if (d.samples <= 0 && s.samples <= 0) {
        snprintf(buf, n, "-");
        return buf;
    }
    char a[16] = "-", b[16] = "-";
    if (d.samples > 0)
        snprintf(a, sizeof a, "%.0f", d.sm_mhz_mean);
    if (s.samples > 0)
        snprintf(b, sizeof b, "%.0f", s.sm_mhz_mean);
    snprintf(buf, n, "%s/%s%s", a, b, d.capped > 0 || s.capped > 0 ? "c" : "");
    return buf;
}

/* The last line: the SM clock over every timed loop of each side, or why
 * clocks were not recorded. */
static void print_clock_line(const ss_bench_kernel_result *r) {
    ss_bench_clock d = ss_bench_clock_summary(r, 0, -1, 0, -1);
    ss_bench_clock s = ss_bench_clock_summary(r, 1, -1, 0, -1);
    if (d.samples <= 0 && s.samples <= 0) {
        printf("SM clock during timed runs: %s\n", r->clock_note[0] ? r->clock_note : "not recorded");
        return;
    }
    char cd[16] = "-", cs[16] = "-", wd[16] = "-", ws[16] = "-";
    if (d.capped >= 0)
        snprintf(cd, sizeof cd, "%.1f%%", 100 * d.capped);
    if (s.capped >= 0)
        snprintf(cs, sizeof cs, "%.1f%%", 100 * s.capped);
    if (d.power_w >= 0)
        snprintf(wd, sizeof wd, "%.0f", d.power_w);
    if (s.power_w >= 0)
        snprintf(ws, sizeof ws, "%.0f", s.power_w);
    printf("SM clock during timed runs: dense mean %.0f MHz, sparse mean %.0f MHz; "
           "power-capped in %s / %s of samples (%d / %d samples; min %.0f / %.0f MHz; "
           "mean power %s / %s W)\n",
           d.sm_mhz_mean, s.sm_mhz_mean, cd, cs, d.samples, s.samples, d.sm_mhz_min, s.sm_mhz_min,
           wd, ws);
}

/* The `total` table of one dtype on the console: dense latency and TOPS,
 * then speedup per pattern, for both levels, and the SM clock. */
static void print_totals(const ss_bench_kernel_result *r, ss_dtype dt, const ss_proj_shape *sh,
                         int nsh, const ss_pattern *pats, int np, const int64_t *ms, int nm,
                         int two_dense) {
    double nk = 0;
    for (int j = 0; j < nsh; j++)
        nk += (double)sh[j].n * (double)sh[j].k;
    for (int lv = 0; lv < 2; lv++) {
        printf("\n%s total of one layer (%s), %s: dense us, TOPS, speedup per pattern (ideal)\n",
               dt == SS_DTYPE_I8 ? "INT8" : "FP8", lv ? "whole linear" : "GEMM only",
               lv ? "quant+GEMM+dequant" : "tuned algorithm");
        if (two_dense)
            printf("dense_us = the best of cuBLASLt and sm90dense per projection\n%7s %10s %10s",
                   "M", "cublas_us", "sm90d_us");
        else
            printf("%7s", "M");
        printf(" %10s %8s", "dense_us", "TOPS");
        for (int p = 0; p < np; p++) {
            char b[16], h[32];
            snprintf(h, sizeof h, "%s(%.2f)", ss_pattern_format(pats[p], b, sizeof b),
                     ss_pattern_ideal_speedup(pats[p]));
            printf(" %12s", h);
        }
        printf(" %11s\n", "MHz(d/s)");
        for (int i = 0; i < nm; i++) {
            double d;
            if (ss_bench_total(r, nsh, dt, SS_PATTERN_DENSE, ms[i], lv, &d) != SS_OK)
                continue;
            printf("%7lld", (long long)ms[i]);
            for (int b = 0; two_dense && b < 2; b++) {
                double t;
                if (ss_bench_total_on(r, nsh, dt, b ? SS_BACKEND_SM90DENSE : SS_BACKEND_CUBLASLT,
                                      SS_PATTERN_DENSE, ms[i], lv, &t) == SS_OK)
                    printf(" %10.1f", t);
                else
                    printf(" %10s", "-");
            }
            printf(" %10.1f %8.1f", d, 2.0 * (double)ms[i] * nk / d * 1e-6);
            for (int p = 0; p < np; p++) {
                double t;
                if (ss_bench_total(r, nsh, dt, pats[p], ms[i], lv, &t) == SS_OK)
                    printf(" %12.3f", d / t);
                else
                    printf(" %12s", "-");
            }
            char clk[48];
            printf(" %11s\n", clock_field(r, dt, ms[i], lv, clk, sizeof clk));
        }
    }
    ss_clear_error();
}

/* "6,7,8" (any of them, each once) into task[6..8]; 0 after printing why. */
static int parse_tasks(const char *cmd, const char *s, int task[9]) {
    char buf[64];
    if (!s || !*s || strlen(s) >= sizeof buf || s[0] == ',' || s[strlen(s) - 1] == ',' ||
        strstr(s, ",,"))
        return !cli_error(cmd, "--task: expected a comma-separated list of 6, 7 and 8, found '%s'",
                          s ? s : "");
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long long k;
        if (!cli_parse_i64(t, 6, 8, &k))
            return !cli_error(cmd, "--task: expected 6, 7 and/or 8, found '%s'", t);
        if (task[k])
            return !cli_error(cmd, "--task: %lld given twice", k);
        task[k] = 1;
    }
    return 1;
}

static int bench_kernel(int argc, char **argv) {
    const char *preset = NULL, *model = NULL, *dt = "int8,fp8", *tasks = "6,7,8", *sp = NULL,
               *mlist = NULL, *outdir = ".", *root = "tuning", *backend = NULL, *device = NULL,
               *warm = NULL, *rep = NULL;
    int quiet = 0, square = 0, no_tune = 0, no_flush = 0, sm90sp = 0, sm90dense = 0, no_clocks = 0;
    const char *cmd = "bench kernel";
    const cli_option opts[] = {
        CLI_OPT("--preset", &preset), CLI_OPT("--model", &model), CLI_OPT("--dtype", &dt),
        CLI_OPT("--task", &tasks), CLI_OPT("--sparsity", &sp), CLI_OPT("--m", &mlist),
        CLI_OPT("--out", &outdir), CLI_OPT("--tuning-dir", &root), CLI_OPT("--backend", &backend),
        CLI_OPT("--device", &device), CLI_OPT("--warmup", &warm), CLI_OPT("--repeat", &rep),
        CLI_FLAG("--quiet", &quiet), CLI_FLAG("--square", &square),
        CLI_FLAG("--no-tune", &no_tune), CLI_FLAG("--no-flush", &no_flush),
        CLI_FLAG("--sm90sp", &sm90sp), CLI_FLAG("--sm90dense", &sm90dense),
        CLI_FLAG("--no-clocks", &no_clocks), CLI_END,
    };
    int parsed = cli_parse(cmd, argc, argv, opts, usage);
    if (parsed)
        return parsed == CLI_HELP ? 0 : parsed;
    ss_proj_shape shapes[4];
    char name[256] = "square";
    ss_dtype dtypes[2];
    ss_pattern pats[BCLI_MAX_LIST];
    int64_t ms[BCLI_MAX_LIST];
    int nd = 0, np = 0, nm = 0;
    long long w = 25, r = 100;
    cli_backend be;
    if (!cli_backend_parse(cmd, backend, &be))
        return 2;
    sm90sp |= be.library == SS_BACKEND_SM90SP;
    sm90dense |= be.library == SS_BACKEND_SM90DENSE;
    if (square && (preset || model))
        return cli_error(cmd, "--square takes no --preset / --model") + 1;
    if (!square && !bcli_shapes(cmd, preset, model, shapes, name, sizeof name))
        return 2;
    if (!bcli_parse_dtypes(cmd, dt, dtypes, &nd) || (mlist && !bcli_parse_m(cmd, "--m", mlist, ms, &nm)))
        return 2;
    if ((warm && !cli_parse_i64(warm, 1, 100000, &w)) || (rep && !cli_parse_i64(rep, 1, 100000, &r)))
        return cli_error(cmd, "--warmup / --repeat: expected integers >= 1") + 1;
    /* --task is checked even when --sparsity chooses the patterns */
    int task[9] = {0};
    if (!parse_tasks(cmd, tasks, task))
        return 2;
    if (sp) {
        if (!bcli_parse_patterns(cmd, sp, pats, &np))
            return 2;
    } else {
        char list[128] = "";
        if (task[7])
            snprintf(list, sizeof list, "2_4,2_6,2_8,2_10");
        if (task[8])
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s2_12,2_14,2_16,2_inf",
                     list[0] ? "," : "");
        if (list[0] && !bcli_parse_patterns(cmd, list, pats, &np))
            return 2;
    }
    if (!bcli_check_outputs(cmd, outdir, root, model))
        return 2;
    if (!mlist) {
        const int64_t def[] = {64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
        memcpy(ms, def, sizeof def);
        nm = 9;
    }
    ss_context *ctx = NULL;
    if (!bcli_context(cmd, &be, device, &ctx))
        return 1;
    if (ss_context_device(ctx) < 0) { /* CPU-sized defaults */
        w = warm ? w : 2;
        r = rep ? r : 5;
    }
    bcli_out out;
    bcli_out_init(&out, cmd, quiet);
    /* GEMM plans built before an algorithm is pinned read the same folder */
    (void)ss_context_set_tuning(ctx, root, NULL, NULL);
    ss_device_info di;
    char banner[2048];
    ss_status s = ss_device_info_get(ctx, 1, &di);
    if (s == SS_OK)
        s = ss_device_banner(&di, banner, sizeof banner);
    if (s != SS_OK) {
        ss_context_tuning_release(ctx); /* CPU contexts: linear.c does not */
        ss_context_destroy(ctx);
        return cli_lib_error(cmd, s);
    }
    fputs(banner, stdout);
    printf("== timing: CUDA events (CPU: monotonic clock), warm-up %lld, median of %lld, L2 %s\n",
           w, r, no_flush || di.key.cc == 0 ? "not flushed" : "flushed (2 x L2 memset) each iteration");
    ss_bench_kernel_opts o = {.ctx = ctx, .model = name, .shapes = shapes, .n_shapes = 4,
                              .dtypes = dtypes, .n_dtypes = nd, .patterns = pats, .n_patterns = np,
                              .ms = ms, .n_m = nm, .square = square, .out_root = outdir,
                              .tuning_root = root, .no_tune = no_tune, .warmup = (int)w,
                              .repeat = (int)r, .no_flush = no_flush, .seed = 1,
                              .progress = bcli_progress, .user = &out, .log = bcli_log,
                              .sm90sp = sm90sp, .sm90dense = sm90dense, .no_clocks = no_clocks};
    ss_bench_kernel_result res;
    double t0 = ss_monotonic_s();
    s = ss_bench_kernel(&o, &res);
    bcli_end_line(&out);
    if (s != SS_OK) {
        ss_bench_kernel_result_free(&res);
        ss_context_tuning_release(ctx); /* CPU contexts: linear.c does not */
        ss_context_destroy(ctx);
        return cli_lib_error(cmd, s);
    }
    printf("tuning: %d table entries tuned during this run, %d lookups served by the table\n",
           res.tuned, res.reused);
    ss_pattern all[BCLI_MAX_LIST + 1];
    int na = 0;
    all[na++] = (ss_pattern){2, 4};
    for (int i = 0; i < np; i++)
        if (pats[i].l != 4)
            all[na++] = pats[i];
    if (!square)
        for (int d = 0; d < nd; d++)
            print_totals(&res, dtypes[d], shapes, 4, all, na, ms, nm,
                         sm90dense && ss_context_device(ctx) >= 0);
    printf("\nbench kernel: %zu measurements in %.1f s; CSVs in %s and %s%s%s\n", res.n_rows,
           ss_monotonic_s() - t0, res.dirs[0], res.dirs[1], res.dense2_dir[0] ? " and " : "",
           res.dense2_dir);
    print_clock_line(&res);
    ss_bench_kernel_result_free(&res);
    ss_context_tuning_release(ctx); /* CPU contexts: linear.c does not */
    ss_context_destroy(ctx);
    return 0;
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2 || cli_flag(argv[1], "--help") || cli_flag(argv[1], "-h")) {
        bench_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "kernel"))
        return bench_kernel(argc - 1, argv + 1);
    if (!strcmp(argv[1], "prefill"))
        return cmd_bench_prefill(argc - 1, argv + 1);
    if (!strcmp(argv[1], "decode"))
        return cmd_bench_decode(argc - 1, argv + 1);
    return cli_error("bench", "'%s': expected kernel, prefill or decode", argv[1]) + 1;
}
