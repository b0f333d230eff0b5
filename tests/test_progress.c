/* The CLI progress line: formatting with fixed inputs, and the rate limits of
 * the terminal and log modes driven by explicit times. progress.c is part of
 * the CLI (tools/), not the library, so it is compiled into this test. */
#include "support/ss_test.h"

#include "../tools/progress.c"

#include <string.h>

static char line[256];

static const char *fmt(const char *label, int64_t items, int64_t titems, int64_t bytes, int64_t tbytes,
                       double elapsed) {
    int len = ss_progress_format(line, sizeof line, label, items, titems, bytes, tbytes, elapsed);
    assert_int_equal(len, (int)strlen(line));
    assert_null(strchr(line, '\n'));
    assert_null(strchr(line, '\r'));
    return line;
}

static void assert_has(const char *s, const char *needle) {
    if (!strstr(s, needle))
        fail_msg("\"%s\" lacks \"%s\"", s, needle);
}

static void test_format_full(void **state) {
    /* 1000 MB of 4000 MB in 10 s: 100 MB/s, 3000 MB left -> 30 s. */
    const char *s = fmt("quantize", 1, 4, 1000000000, 4000000000, 10.0);
    assert_string_equal(s, "quantize  1/4  1000.0/4000.0 MB  100.0 MB/s  ETA 0:30");
    /* 1 MB of 4000 MB in 10 s: 39990 s left = 11 h 6 min 30 s. */
    assert_has(fmt("convert", 0, 7, 1000000, 4000000000, 10.0), "ETA 11:06:30");
    /* The byte fraction drives the ETA even when items say otherwise. */
    assert_has(fmt("x", 3, 4, 1000000000, 4000000000, 10.0), "ETA 0:30");
}

static void test_format_unknowns(void **state) {
    /* No byte total: items only, ETA from items (1 of 4 in 20 s -> 60 s). */
    const char *s = fmt("verify", 1, 4, 0, 0, 20.0);
    assert_string_equal(s, "verify  1/4  ETA 1:00");
    /* Nothing done yet, or no time elapsed: no rate, ETA unknown. */
    s = fmt("verify", 0, 4, 0, 100, 0.0);
    assert_has(s, "ETA --:--");
    assert_null(strstr(s, "MB/s"));
    s = fmt("scan", 5, 0, 2500000, 0, 1.0);
    assert_string_equal(s, "scan  5  2.5 MB  2.5 MB/s  ETA --:--");
    assert_string_equal(fmt(NULL, 0, 0, 0, 0, 0.0), "  ETA --:--");
}

static void test_format_done(void **state) {
    assert_string_equal(fmt("q", 4, 4, 8000000, 8000000, 3725.0), "q  4/4  8.0/8.0 MB  0.0 MB/s  done in 1:02:05");
    assert_has(fmt("q", 4, 4, 0, 0, 59.6), "done in 1:00");
}

static void test_format_truncates(void **state) {
    char small[8];
    memset(small, 'x', sizeof small);
    int full = ss_progress_format(NULL, 0, "quantize", 1, 4, 1000000000, 4000000000, 10.0);
    int len = ss_progress_format(small, sizeof small, "quantize", 1, 4, 1000000000, 4000000000, 10.0);
    assert_int_equal(len, full);
    assert_int_equal(full, (int)strlen("quantize  1/4  1000.0/4000.0 MB  100.0 MB/s  ETA 0:30"));
    assert_string_equal(small, "quantiz");
    char one[1] = {'x'};
    ss_progress_format(one, 1, "abc", 0, 0, 0, 0, 0);
    assert_int_equal(one[0], '\0');
}

/* Writes through a progress object into a temporary file; returns its text. */
static char *captured(FILE *f) {
    long n = ftell(f);
    char *s = calloc(1, (size_t)n + 1);
    assert_non_null(s);
    rewind(f);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    return s;
}

static int count(const char *s, char c) {
    int k = 0;
    for (; *s; s++)
        k += *s == c;
    return k;
}

static void test_log_mode_rate_limit(void **state) {
    FILE *f = tmpfile();
    assert_non_null(f);
    ss_progress *p = ss_progress_create_at(f, "quantize", 10, 0, 0, 100.0);
    assert_non_null(p);
    double t[] = {100.5, 101.0, 101.9, 102.1, 103.0, 104.0, 104.2, 104.3};
    for (int i = 0; i < 8; i++)
        ss_progress_update_at(p, i + 1, 0, t[i]);
    ss_progress_finish_at(p, 105.0);
    ss_progress_finish_at(p, 106.0); /* idempotent */
    ss_progress_update_at(p, 99, 0, 200.0); /* ignored after finish */
    ss_progress_destroy(p);
    char *s = captured(f);
    /* Drawn at 102.1 (2 s after start) and 104.2 (2 s after that) + finish. */
    assert_int_equal(count(s, '\n'), 3);
    assert_int_equal(count(s, '\r'), 0);
    assert_has(s, "quantize  4/10");
    assert_has(s, "quantize  7/10");
    const char *last = strstr(s, "quantize  8/10");
    assert_non_null(last);
    assert_has(last, "ETA 0:01"); /* 8 of 10 in 5 s */
    free(s);
    fclose(f);
}

static void test_log_mode_short_run_logs_once(void **state) {
    FILE *f = tmpfile();
    ss_progress *p = ss_progress_create_at(f, "x", 3, 0, 0, 0.0);
    ss_progress_update_at(p, 1, 0, 0.1);
    ss_progress_update_at(p, 3, 0, 0.2);
    ss_progress_finish_at(p, 0.3);
    ss_progress_destroy(p);
    char *s = captured(f);
    assert_int_equal(count(s, '\n'), 1);
    assert_has(s, "x  3/3");
    assert_has(s, "done in 0:00");
    free(s);
    fclose(f);
}

static void test_tty_mode_redraws(void **state) {
    FILE *f = tmpfile();
    ss_progress *p = ss_progress_create_at(f, "convert", 2000, 0, 1, 0.0);
    ss_progress_update_at(p, 1000, 0, 0.0);  /* drawn: the first update shows at once */
    ss_progress_update_at(p, 1001, 0, 0.05); /* too soon */
    ss_progress_update_at(p, 1002, 0, 0.2);  /* drawn */
    ss_progress_update_at(p, 7, 0, 0.4);     /* drawn, shorter line */
    ss_progress_finish_at(p, 1.0);           /* drawn + "\n" */
    ss_progress_destroy(p);
    char *s = captured(f);
    assert_int_equal(count(s, '\r'), 4);
    assert_int_equal(count(s, '\n'), 1);
    assert_int_equal(s[strlen(s) - 1], '\n');
    assert_null(strstr(s, "1001/"));
    /* Every redraw is at least as long as the one before, so no leftovers of
     * a longer line stay on screen. */
    size_t prev = 0;
    for (char *seg = strtok(s, "\r\n"); seg; seg = strtok(NULL, "\r\n")) {
        assert_true(strlen(seg) >= prev);
        prev = strlen(seg);
    }
    free(s);
    fclose(f);
}

static void test_tty_destroy_unfinished_ends_line(void **state) {
    FILE *f = tmpfile();
    ss_progress *p = ss_progress_create_at(f, "x", 2, 0, 1, 0.0);
    ss_progress_update_at(p, 1, 0, 0.0);
    ss_progress_destroy(p); /* a failed run: the error must start on a new line */
    char *s = captured(f);
    assert_int_equal(s[strlen(s) - 1], '\n');
    free(s);
    fclose(f);
}

static void test_null_is_harmless(void **state) {
    assert_null(ss_progress_create(NULL, "x", 1, 1));
    ss_progress_update(NULL, 1, 1);
    ss_progress_finish(NULL);
    ss_progress_destroy(NULL);
    /* The real clock path, on a file: one finish line. */
    FILE *f = tmpfile();
    ss_progress *p = ss_progress_create(f, "real", 1, 10);
    ss_progress_update(p, 1, 10);
    ss_progress_finish(p);
    ss_progress_destroy(p);
    char *s = captured(f);
    assert_int_equal(count(s, '\n'), 1);
    assert_has(s, "real  1/1  0.0/0.0 MB");
    free(s);
    fclose(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_full),
        cmocka_unit_test(test_format_unknowns),
        cmocka_unit_test(test_format_done),
        cmocka_unit_test(test_format_truncates),
        cmocka_unit_test(test_log_mode_rate_limit),
        cmocka_unit_test(test_log_mode_short_run_logs_once),
        cmocka_unit_test(test_tty_mode_redraws),
        cmocka_unit_test(test_tty_destroy_unfinished_ends_line),
        cmocka_unit_test(test_null_is_harmless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
