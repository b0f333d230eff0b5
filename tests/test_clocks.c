/* The benchmark's SM clock / power records (bench/clocks.h): the summary
 * math on synthetic readings against sums computed here, merging equal to
 * summarizing the union, which clock event reasons count as capped, the
 * per-side summary of a result, and on a CPU context: no NVML handle, a note
 * saying why, the probe never called, the four CSV columns present and empty. */
#include <math.h>
#include <string.h>

#include "bench/clocks.h"
#include "bench/nvml_abi.h"
#include "support/ss_test.h"
#include "tune/fixture.h"

#define NS 500

/* Readings with random clocks, power and reasons; with `failures`, about
 * one in ten queries "failed" (clock 0, power -1, reasons unread). */
static void synth(ss_rng *g, ss_clock_sample *s, int n, int failures) {
    static const unsigned long long reasons[] = {0,   0x1, 0x2, 0x10, 0x100, 0x4, 0x8,
                                                 0x20, 0x40, 0x80, 0x5, 0x11};
    for (int i = 0; i < n; i++) {
        int f = failures ? 10 : 1 << 30;
        s[i].sm_mhz = ss_rng_below(g, f) ? (unsigned)ss_rng_range(g, 345, 1980) : 0;
        s[i].power_w = ss_rng_below(g, f) ? (double)ss_rng_range(g, 60000, 700000) / 1000 : -1;
        s[i].reasons_ok = ss_rng_below(g, f) != 0;
        s[i].reasons = reasons[ss_rng_below(g, sizeof reasons / sizeof *reasons)];
    }
}

static void test_summary_math(void **st) {
    ss_rng g = {42};
    ss_clock_sample s[NS];
    synth(&g, s, NS, 1);
    /* the expected values, computed independently of clocks.c */
    double sum = 0, sw = 0;
    unsigned lo = ~0u;
    int n = 0, nw = 0, nr = 0, nc = 0;
    for (int i = 0; i < NS; i++) {
        if (s[i].sm_mhz) {
            n++;
            sum += s[i].sm_mhz;
            lo = s[i].sm_mhz < lo ? s[i].sm_mhz : lo;
        }
        if (s[i].power_w >= 0) {
            nw++;
            sw += s[i].power_w;
        }
        if (s[i].reasons_ok) {
            nr++;
            /* SW power cap, HW slowdown, SW thermal, HW thermal, HW power brake */
            unsigned long long r = s[i].reasons;
            nc += (r & 0x4) || (r & 0x8) || (r & 0x20) || (r & 0x40) || (r & 0x80);
        }
    }
    assert_true(n > 0 && nw > 0 && nc > 0 && nc < nr);
    ss_bench_clock c = ss_clock_summarize(s, NS);
    assert_int_equal(c.samples, n);
    assert_true(fabs(c.sm_mhz_mean - sum / n) < 1e-9);
    assert_true(c.sm_mhz_min == (double)lo);
    assert_true(fabs(c.power_w - sw / nw) < 1e-9);
    assert_true(fabs(c.capped - (double)nc / nr) < 1e-12);

    /* two halves merged = the whole (merges weight by clock samples: exact
     * when every query of a reading succeeds, as on a working NVML) */
    synth(&g, s, NS, 0);
    c = ss_clock_summarize(s, NS);
    assert_int_equal(c.samples, NS);
    for (int cut = 1; cut < NS; cut += 97) {
        ss_bench_clock m = ss_clock_merge(ss_clock_summarize(s, cut),
                                          ss_clock_summarize(s + cut, NS - cut));
        assert_int_equal(m.samples, c.samples);
        assert_true(fabs(m.sm_mhz_mean - c.sm_mhz_mean) < 1e-9);
        assert_true(m.sm_mhz_min == c.sm_mhz_min);
        assert_true(fabs(m.power_w - c.power_w) < 1e-9);
        assert_true(fabs(m.capped - c.capped) < 1e-12);
    }
}

static void test_summary_edges(void **st) {
    /* nothing read: samples 0, power / capped unknown */
    ss_bench_clock e = ss_clock_summarize(NULL, 0);
    assert_int_equal(e.samples, 0);
    assert_true(e.power_w < 0 && e.capped < 0);
    ss_clock_sample bad = {.sm_mhz = 0, .power_w = -1};
    e = ss_clock_summarize(&bad, 1);
    assert_int_equal(e.samples, 0);
    /* idle / app clocks / sync boost / display are not power or heat */
    ss_clock_sample s[4] = {{1400, 300, 0x1 | 0x2 | 0x10 | 0x100, 1},
                            {1500, 500, SS_NVML_REASON_SW_POWER_CAP, 1},
                            {1200, 700, SS_NVML_REASON_HW_POWER_BRAKE, 1},
                            {1980, -1, 0, 0}};
    ss_bench_clock c = ss_clock_summarize(s, 4);
    assert_int_equal(c.samples, 4);
    assert_true(fabs(c.sm_mhz_mean - (1400 + 1500 + 1200 + 1980) / 4.0) < 1e-9);
    assert_true(c.sm_mhz_min == 1200);
    assert_true(fabs(c.power_w - 500) < 1e-9);
    assert_true(fabs(c.capped - 2.0 / 3.0) < 1e-12);
    /* merging with nothing changes nothing */
    ss_bench_clock m = ss_clock_merge(e, c);
    assert_memory_equal(&m, &c, sizeof c);
    m = ss_clock_merge(c, e);
    assert_memory_equal(&m, &c, sizeof c);
    /* no power on one side: the other side's mean */
    ss_clock_sample np = {1000, -1, 0, 1};
    m = ss_clock_merge(c, ss_clock_summarize(&np, 1));
    assert_int_equal(m.samples, 5);
    assert_true(fabs(m.power_w - 500) < 1e-9);
    assert_true(m.sm_mhz_min == 1000);
}

/* ss_bench_clock_summary picks the side, dtype, M and level it is asked for. */
static void test_result_summary(void **st) {
    ss_bench_row rows[4] = {
        {.dtype = SS_DTYPE_I8, .m = 64, .pattern = SS_PATTERN_DENSE,
         .clk = {{10, 1900, 1800, 400, 0}, {10, 1700, 1600, 500, 0.5}}},
        {.dtype = SS_DTYPE_I8, .m = 64, .pattern = {2, 8},
         .clk = {{20, 1500, 1400, 600, 1}, {0, 0, 0, -1, -1}}},
        {.dtype = SS_DTYPE_I8, .m = 128, .pattern = {2, 4},
         .clk = {{10, 1800, 1700, 300, 0}, {10, 1600, 1500, 350, 0}}},
        {.dtype = SS_DTYPE_F8_E4M3, .m = 64, .pattern = {2, 8},
         .clk = {{5, 1000, 900, 700, 1}, {5, 1100, 1000, 700, 1}}},
    };
    ss_bench_kernel_result r = {.rows = rows, .n_rows = 4};
    ss_bench_clock d = ss_bench_clock_summary(&r, 0, -1, 0, -1);
    assert_int_equal(d.samples, 20);
    assert_true(fabs(d.sm_mhz_mean - 1800) < 1e-9);
    assert_true(d.sm_mhz_min == 1600);
    assert_true(fabs(d.capped - 0.25) < 1e-12);
    ss_bench_clock s = ss_bench_clock_summary(&r, 1, SS_DTYPE_I8, 0, -1);
    assert_int_equal(s.samples, 40);
    assert_true(fabs(s.sm_mhz_mean - (20 * 1500 + 10 * 1800 + 10 * 1600) / 40.0) < 1e-9);
    assert_true(s.sm_mhz_min == 1400);
    s = ss_bench_clock_summary(&r, 1, SS_DTYPE_I8, 64, SS_LEVEL_LINEAR);
    assert_int_equal(s.samples, 0); /* the one row there recorded nothing */
    s = ss_bench_clock_summary(&r, 1, -1, 64, SS_LEVEL_GEMM);
    assert_int_equal(s.samples, 25);
    assert_true(s.sm_mhz_min == 900);
    assert_true(fabs(s.capped - 1) < 1e-12);
}

static void probe_count(void *user) { ++*(int *)user; }

/* CPU context: no handle, a note; the probe is not called; the CSVs carry the
 * four columns, empty. */
static void test_cpu_context(void **st) {
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    ss_clocks *c = (ss_clocks *)1;
    char why[256];
    assert_ok(ss_clocks_open(ctx, &c, why, sizeof why));
    assert_null(c);
    assert_non_null(strstr(why, "not recorded"));
    ss_clocks_close(NULL);

    ss_fixture f;
    assert_ok(ss_fixture_create(ctx, SS_BACKEND_CPU, "p", 64, 64, SS_DTYPE_I8, (ss_pattern){2, 8},
                                16, 3, &f));
    int calls = 0;
    ss_fix_probe probe = {.sample = probe_count, .user = &calls, .interval_us = 10};
    double us = 0;
    assert_ok(ss_fixture_time_probed(&f, SS_FIX_GEMM, 16, 1, 3, 0, &probe, &us));
    assert_true(us > 0);
    assert_int_equal(calls, 0);
    ss_fixture_free(&f);

    char tmp[256], out[512];
    ss_test_tmpdir(tmp, sizeof tmp);
    snprintf(out, sizeof out, "%s/res", tmp);
    ss_dtype dt = SS_DTYPE_I8;
    ss_pattern p = {2, 8};
    int64_t ms[1] = {32};
    ss_bench_kernel_opts o = {.ctx = ctx, .square = 1, .dtypes = &dt, .n_dtypes = 1,
                              .patterns = &p, .n_patterns = 1, .ms = ms, .n_m = 1, .no_tune = 1,
                              .warmup = 1, .repeat = 1, .out_root = out,
                              .tuning_root = "/nonexistent/tuning"};
    ss_bench_kernel_result r;
    assert_ok(ss_bench_kernel(&o, &r));
    assert_non_null(strstr(r.clock_note, "not recorded"));
    for (size_t i = 0; i < r.n_rows; i++)
        assert_int_equal(r.rows[i].clk[0].samples + r.rows[i].clk[1].samples, 0);
    assert_int_equal(ss_bench_clock_summary(&r, 1, -1, 0, -1).samples, 0);
    char path[1100];
    snprintf(path, sizeof path, "%s/square_sq32.csv", r.dirs[1]);
    size_t len = 0;
    char *csv = ss_test_read_file(path, &len);
    assert_non_null(csv);
    char *nl = strchr(csv, '\n');
    assert_non_null(nl);
    *nl = '\0';
    const char *tail = ",algo,sm_mhz_mean,sm_mhz_min,power_w,power_capped";
    assert_true(strlen(csv) > strlen(tail));
    assert_string_equal(csv + strlen(csv) - strlen(tail), tail);
    /* every data row: the algorithm, then four empty fields */
    int rows = 0;
    for (char *line = nl + 1; *line; rows++) {
        char *end = strchr(line, '\n');
        assert_non_null(end);
        *end = '\0';
        assert_true(strlen(line) > 4);
        assert_string_equal(line + strlen(line) - 4, ",,,,");
        line = end + 1;
    }
    assert_int_equal(rows, 2 * 2); /* 2_4 and 2_8, two levels */
    free(csv);
    ss_bench_kernel_result_free(&r);

    o.no_clocks = 1;
    o.out_root = NULL;
    assert_ok(ss_bench_kernel(&o, &r));
    assert_non_null(strstr(r.clock_note, "turned off"));
    ss_bench_kernel_result_free(&r);
    ss_context_destroy(ctx);
    ss_test_rmtree(tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary_math),
        cmocka_unit_test(test_summary_edges),
        cmocka_unit_test(test_result_summary),
        cmocka_unit_test(test_cpu_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
