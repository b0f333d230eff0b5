/* Kernel benchmark on the CPU backend: rows for every (dtype, projection,
 * backend/pattern, M), the documented CSV layout, totals equal to the sum of
 * the projections, validation that catches a wrong GEMM, CSV quoting and
 * atomic save, bad options. */
#include <string.h>
#include <sys/stat.h>

#include "support/ss_test.h"
#include "tune/fixture.h"

static void test_csv(void **st) {
    char buf[64], tmp[256], path[512];
    assert_string_equal(ss_csv_field("plain", buf, sizeof buf), "plain");
    assert_string_equal(ss_csv_field("a,b", buf, sizeof buf), "\"a,b\"");
    assert_string_equal(ss_csv_field("say \"hi\"", buf, sizeof buf), "\"say \"\"hi\"\"\"");
    ss_test_tmpdir(tmp, sizeof tmp);
    snprintf(path, sizeof path, "%s/x/y/t.csv", tmp);
    ss_csv c = {0};
    ss_csv_line(&c, "h1,h2");
    for (int i = 0; i < 1000; i++)
        ss_csv_line(&c, "%d,%d", i, i * i);
    assert_ok(ss_csv_save(&c, path));
    size_t len = 0;
    char *got = ss_test_read_file(path, &len);
    assert_non_null(got);
    assert_int_equal(len, c.len);
    assert_memory_equal(got, c.s, len);
    free(got);
    ss_csv_free(&c);
    ss_test_rmtree(tmp);
}

/* Sums column `col` (0-based) of the CSV rows whose pattern and level match. */
static double csv_sum(const char *path, const char *proj, const char *pat, const char *level,
                      long long m, int *rows) {
    size_t len = 0;
    char *s = ss_test_read_file(path, &len);
    assert_non_null(s);
    double sum = 0;
    *rows = 0;
    char *save = NULL;
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[32];
        int nf = 0;
        char *save2 = NULL;
        for (char *t = strtok_r(line, ",", &save2); t && nf < 32; t = strtok_r(NULL, ",", &save2))
            f[nf++] = t;
        if (nf < 16 || strcmp(f[13], pat) || strcmp(f[14], level) || atoll(f[8]) != m)
            continue;
        if (proj && strcmp(f[7], proj))
            continue;
        sum += atof(f[15]);
        ++*rows;
    }
    free(s);
    return sum;
}

static void test_kernel_cpu(void **st) {
    char tmp[256], out[512], tun[512];
    ss_test_tmpdir(tmp, sizeof tmp);
    snprintf(out, sizeof out, "%s/res", tmp);
    snprintf(tun, sizeof tun, "%s/tuning", tmp);
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    ss_proj_shape sh[4];
    assert_ok(ss_preset_shapes("tiny-bitnet", sh));
    ss_dtype dt[2] = {SS_DTYPE_I8, SS_DTYPE_F8_E4M3};
    ss_pattern pats[2] = {{2, 6}, {2, 0}};
    int64_t ms[2] = {16, 48};
    ss_bench_kernel_opts o = {.ctx = ctx, .model = "Tiny", .shapes = sh, .n_shapes = 4,
                              .dtypes = dt, .n_dtypes = 2, .patterns = pats, .n_patterns = 2,
                              .ms = ms, .n_m = 2, .out_root = out, .tuning_root = tun,
                              .warmup = 1, .repeat = 2};
    ss_bench_kernel_result r;
    assert_ok(ss_bench_kernel(&o, &r));
    /* dense + native 2_4 + 2_6 + 2_inf per (dtype, projection, M) */
    assert_int_equal(r.n_rows, 2 * 4 * 4 * 2);
    for (size_t i = 0; i < r.n_rows; i++) {
        assert_true(r.rows[i].us[0] > 0);
        assert_true(r.rows[i].us[1] > 0);
        assert_int_equal(r.rows[i].k_slid, ss_slid_k(r.rows[i].pattern, r.rows[i].k));
    }
    assert_true(r.tuned > 0);
    int tuned_first = r.tuned;
    /* the total CSV of each side equals the sum of its four projection files */
    const char *dirs[2] = {"cuSPARSELt/CPU_cc0_INT8_cpu", "cuSPARSELt/CPU_cc0_FP8_cpu"};
    const char *projs[4] = {"qkv", "o", "gate_up", "down"};
    for (int d = 0; d < 2; d++) {
        char total[1024], one[1024];
        snprintf(total, sizeof total, "%s/benchmark_kernel/%s/Tiny_total.csv", out, dirs[d]);
        int rows = 0;
        for (int lv = 0; lv < 2; lv++) {
            const char *level = lv ? "linear" : "gemm";
            double t = csv_sum(total, "total", "2_6", level, 48, &rows);
            assert_true(rows >= 1);
            double sum = 0;
            for (int j = 0; j < 4; j++) {
                snprintf(one, sizeof one, "%s/benchmark_kernel/%s/Tiny_%s.csv", out, dirs[d],
                         projs[j]);
                int n1 = 0;
                sum += csv_sum(one, projs[j], "2_6", level, 48, &n1);
                assert_int_equal(n1, 1);
            }
            assert_true(sum > 0);
            assert_true(t > 0.999 * sum - 0.01 && t < 1.001 * sum + 0.01);
            double bt = 0;
            assert_ok(ss_bench_total(&r, 4, dt[d], pats[0], 48, lv, &bt));
            assert_true(bt > 0.999 * t - 0.01 && bt < 1.001 * t + 0.01);
        }
    }
    ss_bench_kernel_result_free(&r);
    /* a second run finds every shape in the table: nothing is tuned */
    assert_ok(ss_bench_kernel(&o, &r));
    assert_int_equal(r.tuned, 0);
    assert_true(r.reused >= tuned_first);
    assert_non_null(strstr(r.table_status, "loaded"));
    ss_bench_kernel_result_free(&r);
    /* a new M is tuned for itself, not served by the nearest tuned M */
    int64_t ms3[3] = {16, 48, 64};
    o.ms = ms3;
    o.n_m = 3;
    assert_ok(ss_bench_kernel(&o, &r));
    assert_true(r.tuned > 0);
    assert_true(r.tuned <= tuned_first);
    o.ms = ms;
    o.n_m = 2;
    double x;
    assert_fails(ss_bench_total(&r, 4, SS_DTYPE_I8, pats[0], 999, SS_LEVEL_GEMM, &x), SS_EINVAL,
                 "M 999");
    ss_bench_kernel_result_free(&r);

    /* bad options */
    int64_t bad_m[2] = {16, 0};
    o.ms = bad_m;
    assert_fails(ss_bench_kernel(&o, &r), SS_EINVAL, "M list");
    o.ms = ms;
    ss_pattern odd = {2, 5};
    o.patterns = &odd;
    o.n_patterns = 1;
    assert_fails(ss_bench_kernel(&o, &r), SS_EINVAL, "even L");
    ss_context_destroy(ctx);
    ss_test_rmtree(tmp);
}

static void test_square(void **st) {
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    ss_dtype dt = SS_DTYPE_I8;
    ss_pattern p = {2, 8};
    int64_t ms[2] = {64, 96};
    ss_bench_kernel_opts o = {.ctx = ctx, .square = 1, .dtypes = &dt, .n_dtypes = 1,
                              .patterns = &p, .n_patterns = 1, .ms = ms, .n_m = 2, .no_tune = 1,
                              .warmup = 1, .repeat = 1, .tuning_root = "/nonexistent/tuning"};
    ss_bench_kernel_result r;
    assert_ok(ss_bench_kernel(&o, &r));
    assert_int_equal(r.n_rows, 2 * 3); /* per M: dense, 2_4, 2_8 */
    for (size_t i = 0; i < r.n_rows; i++) {
        assert_int_equal(r.rows[i].m, r.rows[i].n);
        assert_int_equal(r.rows[i].m, r.rows[i].k);
        assert_string_equal(r.rows[i].algo, "heuristic");
    }
    ss_bench_kernel_result_free(&r);
    ss_context_destroy(ctx);
}

/* The validation that guards every candidate catches a wrong GEMM. */
static void test_validation_catches(void **st) {
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    ss_dtype dts[2] = {SS_DTYPE_I8, SS_DTYPE_F8_E4M3};
    for (int d = 0; d < 2; d++) {
        ss_fixture f;
        assert_ok(ss_fixture_create(ctx, SS_BACKEND_CPU, "v", 64, 100, dts[d], (ss_pattern){2, 8},
                                    64, 5, &f));
        int ok = 0;
        char why[256];
        assert_ok(ss_fixture_validate(&f, 64, &ok, why, sizeof why));
        assert_true(ok);
        /* one reference value off by a little: a wrong result never wins */
        if (dts[d] == SS_DTYPE_I8)
            ((int32_t *)f.d_ref)[64 * 3 + 5] += 1;
        else
            ((float *)f.d_ref)[64 * 3 + 5] += 50.0f;
        assert_ok(ss_fixture_validate(&f, 64, &ok, why, sizeof why));
        assert_false(ok);
        assert_non_null(strstr(why, "row 3 col 5"));
        double us = 0;
        assert_ok(ss_fixture_time(&f, SS_FIX_LINEAR, 64, 1, 3, 0, &us));
        assert_true(us > 0);
        assert_fails(ss_fixture_time(&f, SS_FIX_GEMM, 80, 1, 1, 0, &us), SS_EINVAL, "beyond");
        ss_fixture_free(&f);
    }
    ss_context_destroy(ctx);
}

static void test_banner(void **st) {
    ss_context *ctx = NULL;
    assert_ok(ss_context_create(-1, &ctx));
    ss_device_info d;
    char buf[2048];
    assert_ok(ss_device_info_get(ctx, 1, &d));
    assert_ok(ss_device_banner(&d, buf, sizeof buf));
    assert_non_null(strstr(buf, "CPU"));
    assert_non_null(strstr(buf, "CPU_cc0_cpu"));
    assert_fails(ss_device_banner(&d, buf, 8), SS_EINVAL, "too small");
    ss_context_destroy(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv),    cmocka_unit_test(test_kernel_cpu),
        cmocka_unit_test(test_square), cmocka_unit_test(test_validation_catches),
        cmocka_unit_test(test_banner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
