/* The C tokenizer against the `tokenizers` package (the reference
 * implementation of tokenizer.json): identical ids for every string of a
 * corpus (CJK, accents, right-to-left scripts, emoji ZWJ sequences,
 * whitespace runs, newlines, digit runs, contractions, special tokens),
 * decode(encode(s)) == s wherever the reference round-trips, and identical
 * text for random id lists (characters split over tokens, special tokens
 * skipped or kept), streamed or whole.
 *
 * Fixtures (tests/fixtures/make_tokenizer_fixtures.py says what is in them):
 * the committed tests/data/tokenizer (1000 strings, Llama 3 and Qwen2
 * layouts) always; and when python3 can import `tokenizers`, a fresh set made
 * by the script at test time (3000 strings, plus the GPT-2 layout) against
 * the installed version of the package. */
#include <jansson.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ss_test.h"

#define MAX_SHOWN 5 /* mismatches printed per tokenizer */

typedef struct {
    json_t **rows;
    size_t n;
} jsonl;

static void jsonl_free(jsonl *j) {
    for (size_t i = 0; i < j->n; i++)
        json_decref(j->rows[i]);
    free(j->rows);
}

/* One JSON value per line; 0 when the file is absent. */
static int jsonl_read(const char *path, jsonl *out) {
    size_t len;
    char *buf = ss_test_read_file(path, &len);
    out->rows = NULL, out->n = 0;
    if (!buf)
        return 0;
    size_t cap = 0;
    for (char *line = buf, *end; line < buf + len; line = end + 1) {
        end = memchr(line, '\n', (size_t)(buf + len - line));
        if (!end)
            end = buf + len;
        if (end == line)
            continue;
        json_error_t err;
        json_t *v = json_loadb(line, (size_t)(end - line), JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (!v)
            fail_msg("%s: line %zu: %s", path, out->n + 1, err.text);
        if (out->n == cap) {
            cap = cap ? 2 * cap : 1024;
            out->rows = realloc(out->rows, cap * sizeof *out->rows);
            assert_non_null(out->rows);
        }
        out->rows[out->n++] = v;
    }
    free(buf);
    return 1;
}

/* A JSON array of ids -> int32 (n); caller frees. */
static int32_t *ids_of(json_t *arr, int64_t *n) {
    assert_true(json_is_array(arr));
    *n = (int64_t)json_array_size(arr);
    int32_t *ids = malloc(((size_t)*n + 1) * sizeof *ids);
    assert_non_null(ids);
    for (int64_t i = 0; i < *n; i++)
        ids[i] = (int32_t)json_integer_value(json_array_get(arr, (size_t)i));
    return ids;
}

static void print_ids(const char *what, const int32_t *ids, int64_t n) {
    printf("      %s:", what);
    for (int64_t i = 0; i < n && i < 40; i++)
        printf(" %d", ids[i]);
    printf("%s\n", n > 40 ? " ..." : "");
}

typedef struct {
    int strings, ids_ok, special, special_ok, roundtrip, roundtrip_ok, decode, decode_ok, shown;
} tally;

/* encode(s) == the reference's ids (with and without specials), and
 * decode(encode(s)) == s where the reference round-trips. */
static void check_string(const ss_tokenizer *t, json_t *s, json_t *row, tally *c) {
    const char *text = json_string_value(s);
    size_t len = json_string_length(s);
    int64_t n_want, n_got;
    int32_t *want = ids_of(json_object_get(row, "ids"), &n_want), *got;
    assert_ok(ss_tokenizer_encode(t, text, len, 0, &got, &n_got));
    c->strings++;
    if (n_got == n_want && memcmp(got, want, (size_t)n_got * sizeof *got) == 0) {
        c->ids_ok++;
    } else if (c->shown++ < MAX_SHOWN) {
        printf("    MISMATCH string %d (%zu bytes): %s\n", c->strings - 1, len, text);
        print_ids("reference", want, n_want);
        print_ids("ours     ", got, n_got);
    }
    if (!json_is_false(json_object_get(row, "roundtrip"))) {
        char *back;
        size_t back_len;
        assert_ok(ss_tokenizer_decode(t, got, n_got, 0, &back, &back_len));
        c->roundtrip++;
        if (back_len == len && memcmp(back, text, len) == 0)
            c->roundtrip_ok++;
        else if (c->shown++ < MAX_SHOWN)
            printf("    ROUND TRIP string %d: '%s' came back as '%s'\n", c->strings - 1, text, back);
        free(back);
    }
    free(got);
    free(want);
    json_t *special = json_object_get(row, "special");
    if (special) {
        want = ids_of(special, &n_want);
        assert_ok(ss_tokenizer_encode(t, text, len, 1, &got, &n_got));
        c->special++;
        c->special_ok += n_got == n_want && memcmp(got, want, (size_t)n_got * sizeof *got) == 0;
        free(got);
        free(want);
    }
}

/* decode(ids) == the reference's text, whole and streamed token by token. */
static int decode_matches(const ss_tokenizer *t, const int32_t *ids, int64_t n, int skip, json_t *want) {
    char *text;
    size_t len;
    assert_ok(ss_tokenizer_decode(t, ids, n, skip, &text, &len));
    int ok = len == json_string_length(want) && memcmp(text, json_string_value(want), len) == 0;
    ss_detokenizer *d;
    assert_ok(ss_detokenizer_create(t, skip, &d));
    char *streamed = NULL;
    size_t pos = 0;
    for (int64_t i = 0; i <= n; i++) {
        const char *piece;
        size_t k;
        if (i < n)
            assert_ok(ss_detokenizer_push(d, ids[i], &piece, &k));
        else
            assert_ok(ss_detokenizer_finish(d, &piece, &k));
        streamed = realloc(streamed, pos + k + 1);
        assert_non_null(streamed);
        memcpy(streamed + pos, piece, k);
        pos += k;
    }
    ok = ok && pos == len && memcmp(streamed, text, len) == 0;
    ss_detokenizer_destroy(d);
    free(streamed);
    free(text);
    return ok;
}

static void check_decode(const ss_tokenizer *t, json_t *row, tally *c) {
    int64_t n;
    int32_t *ids = ids_of(json_object_get(row, "ids"), &n);
    c->decode++;
    int ok = decode_matches(t, ids, n, 0, json_object_get(row, "text")) &&
             decode_matches(t, ids, n, 1, json_object_get(row, "text_skip"));
    c->decode_ok += ok;
    if (!ok && c->shown++ < MAX_SHOWN) {
        printf("    DECODE differs for '%s'\n", json_string_value(json_object_get(row, "text")));
        print_ids("ids", ids, n);
    }
    free(ids);
}

/* Every tokenizer of one fixture folder; returns how many were checked. */
static int check_folder(const char *dir) {
    static const char *const names[] = {"llama3", "qwen2", "gpt2"};
    char path[1024];
    jsonl corpus;
    snprintf(path, sizeof path, "%s/corpus.jsonl", dir);
    if (!jsonl_read(path, &corpus))
        fail_msg("%s: missing", path);
    assert_true(corpus.n >= 1000);
    int checked = 0;
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        jsonl expected, decode;
        snprintf(path, sizeof path, "%s/%s/expected.jsonl", dir, names[k]);
        if (!jsonl_read(path, &expected))
            continue;
        snprintf(path, sizeof path, "%s/%s/decode.jsonl", dir, names[k]);
        assert_true(jsonl_read(path, &decode));
        assert_int_equal(expected.n, corpus.n);
        snprintf(path, sizeof path, "%s/%s/tokenizer.json", dir, names[k]);
        ss_tokenizer *t;
        assert_ok(ss_tokenizer_load(path, &t));
        tally c = {0};
        for (size_t i = 0; i < corpus.n; i++)
            check_string(t, corpus.rows[i], expected.rows[i], &c);
        for (size_t i = 0; i < decode.n; i++)
            check_decode(t, decode.rows[i], &c);
        printf("  %s: ids identical %d/%d, with special tokens %d/%d, round trips %d/%d, decodes %d/%d\n",
               names[k], c.ids_ok, c.strings, c.special_ok, c.special, c.roundtrip_ok, c.roundtrip, c.decode_ok,
               c.decode);
        assert_int_equal(c.ids_ok, c.strings);
        assert_int_equal(c.special_ok, c.special);
        assert_int_equal(c.roundtrip_ok, c.roundtrip);
        assert_int_equal(c.decode_ok, c.decode);
        if (k == 0) /* Llama 3: no normalizer, no strip, no prefix space: every string comes back */
            assert_int_equal(c.roundtrip, c.strings);
        ss_tokenizer_destroy(t);
        jsonl_free(&expected);
        jsonl_free(&decode);
        checked++;
    }
    jsonl_free(&corpus);
    return checked;
}

static void test_committed_fixtures(void **st) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tokenizer", getenv("SS_TEST_DATA"));
    printf("fixtures %s\n", dir);
    assert_int_equal(check_folder(dir), 2);
}

static void test_fresh_fixtures(void **st) {
    if (system("python3 -c 'import tokenizers' >/dev/null 2>&1") != 0) {
        printf("skipped: python3 cannot import tokenizers (pip install tokenizers): the committed fixtures "
               "stand in\n");
        return;
    }
    char tmp[256], cmd[2048];
    ss_test_tmpdir(tmp, sizeof tmp);
    snprintf(cmd, sizeof cmd,
             "python3 '%s/../fixtures/make_tokenizer_fixtures.py' '%s' && "
             "python3 -c 'import tokenizers; print(\"fresh fixtures from tokenizers\", tokenizers.__version__)'",
             getenv("SS_TEST_DATA"), tmp);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(check_folder(tmp), 3);
    ss_test_rmtree(tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_committed_fixtures),
        cmocka_unit_test(test_fresh_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
