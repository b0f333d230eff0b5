/* safetensors: writer -> reader round trips (0-d and empty tensors, metadata,
 * chunked writes), atomicity (abort, incomplete, write errors leave nothing),
 * and malformed images, each rejected with SS_EFORMAT and a message that names
 * the problem. */
#include "support/ss_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/fileutil.h"

// --- helpers -----------------------------------------------------------------------

/* An image: u64 header length, header text, data_len bytes of data (i mod 251). */
static unsigned char *make_image(const char *header, size_t data_len, size_t *len) {
    size_t h = strlen(header);
    unsigned char *b = malloc(8 + h + data_len + 1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    for (size_t i = 0; i < data_len; i++)
        b[8 + h + i] = (unsigned char)(i % 251);
    *len = 8 + h + data_len;
    return b;
}

static ss_status parse_header(const char *header, size_t data_len) {
    size_t len;
    unsigned char *b = make_image(header, data_len, &len);
    ss_safetensors *st = NULL;
    ss_status s = ss_safetensors_parse(b, len, "bad.safetensors", &st);
    ss_safetensors_close(st);
    free(b);
    return s;
}

// --- round trip ------------------------------------------------------------------------

typedef struct {
    const char *name;
    ss_dtype dtype;
    int ndim;
    int64_t shape[3];
} spec;

static const spec specs[] = {
    {"model.layers.0.self_attn.q_proj.weight", SS_DTYPE_BF16, 2, {3, 4}},
    {"scalar", SS_DTYPE_F32, 0, {0}},
    {"empty", SS_DTYPE_I8, 2, {0, 5}},
    {"w8", SS_DTYPE_I8, 1, {7}},
    {"fp8", SS_DTYPE_F8_E4M3, 3, {2, 3, 5}},
    {"big", SS_DTYPE_F16, 1, {300001}},
    {"ids", SS_DTYPE_I64, 2, {2, 2}},
};
#define N_SPECS (sizeof specs / sizeof specs[0])

static size_t spec_bytes(const spec *s) {
    size_t n = ss_dtype_size(s->dtype);
    for (int i = 0; i < s->ndim; i++)
        n *= (size_t)s->shape[i];
    return n;
}

static void test_round_trip(void **state) {
    char dir[256], path[512];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    size_t total = 0;
    for (size_t i = 0; i < N_SPECS; i++)
        total += spec_bytes(&specs[i]);
    unsigned char *data = malloc(total);
    ss_rng rng = {42};
    for (size_t i = 0; i < total; i++)
        data[i] = (unsigned char)ss_rng_next(&rng);

    ss_st_writer *w;
    assert_ok(ss_st_writer_open(path, &w));
    for (size_t i = 0; i < N_SPECS; i++)
        assert_ok(ss_st_writer_declare(w, specs[i].name, specs[i].dtype, specs[i].ndim, specs[i].shape));
    assert_ok(ss_st_writer_set_metadata(w, "format", "pt"));
    assert_ok(ss_st_writer_set_metadata(w, "note", "quote \" and \\ survive"));
    /* Chunks of random sizes that straddle tensor boundaries, some empty, and
     * some larger than the writer's gathering buffer. */
    for (size_t off = 0; off < total;) {
        size_t n = ss_rng_below(&rng, 4) == 0 ? (size_t)ss_rng_below(&rng, 1500000) : (size_t)ss_rng_below(&rng, 40);
        if (n > total - off)
            n = total - off;
        assert_ok(ss_st_writer_write(w, data + off, n));
        off += n;
    }
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0); /* nothing at path before close */
    assert_ok(ss_st_writer_close(w));
    assert_int_equal(ss_test_count_entries(dir), 1);     /* no temporary left */

    size_t flen;
    unsigned char *raw = ss_test_read_file(path, &flen);
    assert_non_null(raw);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | raw[i];
    assert_int_equal(hlen % 8, 0);             /* data starts 8-aligned */
    assert_int_equal(flen, 8 + hlen + total);
    assert_memory_equal(raw + 8 + hlen, data, total);

    ss_safetensors *st;
    assert_ok(ss_safetensors_open(path, &st));
    assert_int_equal(ss_safetensors_count(st), N_SPECS);
    for (size_t i = 0; i < N_SPECS; i++) {
        const ss_st_entry *e = ss_safetensors_entry(st, i);
        const ss_st_entry *f = ss_safetensors_find(st, specs[i].name);
        assert_ptr_equal(e, f);                /* offset order = write order */
        assert_string_equal(e->name, specs[i].name);
        assert_int_equal(e->dtype, specs[i].dtype);
        assert_int_equal(e->ndim, specs[i].ndim);
        for (int d = 0; d < e->ndim; d++)
            assert_int_equal(e->shape[d], specs[i].shape[d]);
        assert_int_equal(e->nbytes, spec_bytes(&specs[i]));
        assert_string_equal(e->file, path);
    }
    const unsigned char *first = ss_safetensors_entry(st, 0)->data;
    assert_memory_equal(first, data, total);   /* zero-copy views of one buffer */
    assert_null(ss_safetensors_find(st, "missing"));
    assert_string_equal(ss_safetensors_metadata(st, "format"), "pt");
    assert_string_equal(ss_safetensors_metadata(st, "note"), "quote \" and \\ survive");
    assert_null(ss_safetensors_metadata(st, "nope"));
    ss_safetensors_close(st);
    free(raw);
    free(data);
    ss_test_rmtree(dir);
}

/* A file with no tensors at all is valid (header "{}"), and so is one with
 * only empty tensors sharing an offset. */
static void test_empty_files(void **state) {
    char dir[256], path[512];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/e.safetensors", dir);
    ss_st_writer *w;
    assert_ok(ss_st_writer_open(path, &w));
    assert_ok(ss_st_writer_close(w));
    ss_safetensors *st;
    assert_ok(ss_safetensors_open(path, &st));
    assert_int_equal(ss_safetensors_count(st), 0);
    ss_safetensors_close(st);

    assert_ok(parse_header("{\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                           "\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]},"
                           "\"c\":{\"dtype\":\"I8\",\"shape\":[0,3],\"data_offsets\":[0,0]}}", 16));
    ss_test_rmtree(dir);
}

/* Entries come back in offset order even when the header lists them otherwise,
 * and find() works over many names. */
static void test_order_and_find(void **state) {
    char hdr[1 << 16];
    size_t used = (size_t)snprintf(hdr, sizeof hdr, "{");
    const int n = 500;
    for (int i = n - 1; i >= 0; i--)
        used += (size_t)snprintf(hdr + used, sizeof hdr - used,
                                 "%s\"t%03d\":{\"dtype\":\"I16\",\"shape\":[3],\"data_offsets\":[%d,%d]}",
                                 i == n - 1 ? "" : ",", i, 6 * i, 6 * i + 6);
    snprintf(hdr + used, sizeof hdr - used, "}");
    size_t len;
    unsigned char *b = make_image(hdr, 6 * (size_t)n, &len);
    ss_safetensors *st;
    assert_ok(ss_safetensors_parse(b, len, "many", &st));
    assert_int_equal(ss_safetensors_count(st), n);
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%03d", i);
        const ss_st_entry *e = ss_safetensors_entry(st, (size_t)i);
        assert_string_equal(e->name, name);
        assert_ptr_equal(ss_safetensors_find(st, name), e);
        assert_ptr_equal(e->data, b + 8 + strlen(hdr) + 6 * (size_t)i);
    }
    ss_safetensors_close(st);
    free(b);
}

// --- writer failure paths ---------------------------------------------------------------

static void test_writer_abort_and_misuse(void **state) {
    char dir[256], path[512];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    const int64_t shape[2] = {4, 4};
    char data[64] = {0};
    ss_st_writer *w;

    assert_ok(ss_st_writer_open(path, &w));
    assert_ok(ss_st_writer_declare(w, "x", SS_DTYPE_F32, 2, shape));
    assert_ok(ss_st_writer_write(w, data, 10));
    assert_int_equal(ss_test_count_entries(dir), 1);  /* the temporary */
    ss_st_writer_abort(w);
    assert_int_equal(ss_test_count_entries(dir), 0);
    ss_st_writer_abort(NULL);

    assert_ok(ss_st_writer_open(path, &w));
    assert_fails(ss_st_writer_declare(w, "__metadata__", SS_DTYPE_F32, 2, shape), SS_EINVAL, "__metadata__");
    assert_ok(ss_st_writer_declare(w, "x", SS_DTYPE_F32, 2, shape));
    assert_fails(ss_st_writer_declare(w, "x", SS_DTYPE_F32, 2, shape), SS_EINVAL, "twice");
    const int64_t neg[1] = {-1};
    assert_fails(ss_st_writer_declare(w, "n", SS_DTYPE_F32, 1, neg), SS_EINVAL, "negative");
    assert_ok(ss_st_writer_write(w, data, 60));
    assert_fails(ss_st_writer_write(w, data, 8), SS_EINVAL, "exceeds");
    assert_fails(ss_st_writer_declare(w, "late", SS_DTYPE_F32, 2, shape), SS_EINVAL, "after data");
    assert_fails(ss_st_writer_close(w), SS_EINVAL, "'x' incomplete");
    assert_int_equal(ss_test_count_entries(dir), 0);
    ss_test_rmtree(dir);
}

static void test_write_all_enospc(void **state) {
    int fd = open("/dev/full", O_WRONLY);
    if (fd < 0)
        skip();
    char buf[4096] = {0};
    assert_fails(ss_write_all(fd, buf, sizeof buf, "/dev/full"), SS_ENOSPC, "/dev/full");
    close(fd);
}

/* A write error in the middle of a file (here EFBIG from a file-size limit,
 * standing in for ENOSPC) fails the write and leaves no temporary behind,
 * even before the caller aborts. */
static void test_writer_write_error(void **state) {
    char dir[256], path[512];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/big.safetensors", dir);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

    const int64_t shape[1] = {4 << 20};
    char *data = calloc(4 << 20, 1);
    ss_st_writer *w;
    assert_ok(ss_st_writer_open(path, &w));
    assert_ok(ss_st_writer_declare(w, "x", SS_DTYPE_U8, 1, shape));
    ss_status s = ss_st_writer_write(w, data, 4 << 20);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    assert_true(s == SS_EIO || s == SS_ENOSPC);
    assert_non_null(strstr(ss_last_error(), ".tmp."));
    assert_int_equal(ss_test_count_entries(dir), 0);
    assert_fails(ss_st_writer_close(w), s, "earlier write failed");
    assert_int_equal(ss_test_count_entries(dir), 0);
    free(data);
    ss_test_rmtree(dir);
}

static void test_write_file_atomic(void **state) {
    char dir[256], path[512];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_ok(ss_write_file_atomic(path, "{\"a\": 1}", 8));
    assert_ok(ss_write_file_atomic(path, "{}", 2));
    size_t len;
    char *text = ss_test_read_file(path, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(text, "{}", 2);
    assert_int_equal(ss_test_count_entries(dir), 1);
    free(text);
    snprintf(path, sizeof path, "%s/no/such/dir/x.json", dir);
    assert_fails(ss_write_file_atomic(path, "{}", 2), SS_EIO, "no/such/dir");
    ss_test_rmtree(dir);
}

// --- malformed images -----------------------------------------------------------------

typedef struct {
    const char *header;
    size_t data_len;
    const char *needle;
} bad_case;

#define T(name, body) "\"" name "\":" body
static const bad_case bad[] = {
    {"[]", 0, "not a JSON object"},
    {"\"str\"", 0, "not a JSON object"},
    {"{\"a\":", 0, "invalid JSON"},
    {"{} trailing", 0, "invalid JSON"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}") "," T("a", "{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[1,2]}") "}", 2, "duplicate"},
    {"{" T("a", "5") "}", 0, "expected an object"},
    {"{" T("a", "{\"shape\":[1],\"data_offsets\":[0,1]}") "}", 1, "missing 'dtype'"},
    {"{" T("a", "{\"dtype\":8,\"shape\":[1],\"data_offsets\":[0,1]}") "}", 1, "'dtype' must be a string"},
    {"{" T("a", "{\"dtype\":\"Q4_K\",\"shape\":[1],\"data_offsets\":[0,1]}") "}", 1, "unknown dtype 'Q4_K'"},
    {"{" T("a", "{\"dtype\":\"int8\",\"shape\":[1],\"data_offsets\":[0,1]}") "}", 1, "unknown dtype 'int8'"},
    {"{" T("a", "{\"dtype\":\"I8\",\"data_offsets\":[0,1]}") "}", 1, "missing 'shape'"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":1,\"data_offsets\":[0,1]}") "}", 1, "'shape' must be an array"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[-1],\"data_offsets\":[0,1]}") "}", 1, "negative"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[1.0],\"data_offsets\":[0,1]}") "}", 1, "must be an integer"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}") "}", 1, "9 dims"},
    {"{" T("a", "{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],\"data_offsets\":[0,1]}") "}", 1, "overflows"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[99999999999999999999],\"data_offsets\":[0,1]}") "}", 1, "invalid JSON"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[1]}") "}", 1, "missing 'data_offsets'"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1,2]}") "}", 1, "data_offsets"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[\"0\",\"1\"]}") "}", 1, "must hold integers"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[-1,0]}") "}", 1, "negative"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[0],\"data_offsets\":[1,0]}") "}", 1, "reversed"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}") "}", 3, "past the data buffer"},
    {"{" T("a", "{\"dtype\":\"BF16\",\"shape\":[3,4],\"data_offsets\":[0,10]}") "}", 10, "hold 10 bytes, dtype BF16 x shape [3, 4] needs 24"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}") "," T("b", "{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[2,6]}") "}", 6, "overlap"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}") "," T("b", "{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}") "}", 4, "overlap"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2]}") "," T("b", "{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[3,5]}") "}", 5, "gap"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[4,6]}") "}", 6, "gap"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2]}") "}", 5, "trailing"},
    {"{" T("__metadata__", "[]") "}", 0, "__metadata__ must be an object"},
    {"{" T("__metadata__", "{\"k\":1}") "}", 0, "__metadata__ 'k' must be a string"},
    {"{" T("a", "{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1],\"extra\":0}") "}", 1, "unexpected key 'extra'"},
    {"{" T("a\\u0000b", "{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}") "}", 1, "invalid JSON"},
    {"{\"a\":\xff}", 0, "invalid JSON"},
};
#undef T

static void test_malformed_headers(void **state) {
    assert_true(sizeof bad / sizeof bad[0] >= 20);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ss_status s = parse_header(bad[i].header, bad[i].data_len);
        if (s != SS_EFORMAT || !strstr(ss_last_error(), bad[i].needle) ||
            !strstr(ss_last_error(), "bad.safetensors"))
            fail_msg("case %zu (%s): got %s \"%s\", expected SS_EFORMAT with \"%s\"", i, bad[i].header,
                     ss_status_name(s), ss_last_error(), bad[i].needle);
    }
}

static void test_malformed_framing(void **state) {
    ss_safetensors *st = NULL;
    unsigned char b[16] = {0};
    assert_fails(ss_safetensors_parse(b, 0, "f", &st), SS_EFORMAT, "too short");
    assert_fails(ss_safetensors_parse(b, 7, "f", &st), SS_EFORMAT, "too short");
    assert_fails(ss_safetensors_parse(b, 8, "f", &st), SS_EFORMAT, "not a JSON object");
    b[0] = 9; /* header of 9 bytes, 8 present */
    assert_fails(ss_safetensors_parse(b, 16, "f", &st), SS_EFORMAT, "past end of file");
    memset(b, 0xff, 8); /* 2^64 - 1: must not wrap around */
    assert_fails(ss_safetensors_parse(b, 16, "f", &st), SS_EFORMAT, "past end of file");
    assert_null(st);
}

/* A real file cut short, in the data and in the header. */
static void test_truncated_file(void **state) {
    char dir[256], path[512];
    ss_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    ss_st_writer *w;
    const int64_t shape[2] = {8, 8};
    float v[64] = {0};
    assert_ok(ss_st_writer_open(path, &w));
    assert_ok(ss_st_writer_declare(w, "w", SS_DTYPE_F32, 2, shape));
    assert_ok(ss_st_writer_write(w, v, sizeof v));
    assert_ok(ss_st_writer_close(w));
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    ss_safetensors *st = NULL;
    assert_int_equal(truncate(path, sb.st_size - 1), 0);
    assert_fails(ss_safetensors_open(path, &st), SS_EFORMAT, "past the data buffer");
    assert_int_equal(truncate(path, 20), 0);
    assert_fails(ss_safetensors_open(path, &st), SS_EFORMAT, "past end of file");
    assert_int_equal(truncate(path, 3), 0);
    assert_fails(ss_safetensors_open(path, &st), SS_EFORMAT, "too short");
    assert_fails(ss_safetensors_open(dir, &st), SS_EFORMAT, "expected a regular file, found a directory");
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    assert_fails(ss_safetensors_open(path, &st), SS_EIO, "missing.safetensors");
    assert_null(st);
    ss_test_rmtree(dir);
}

/* Random single-byte corruptions of a valid image never crash the parser
 * (the fuzz target explores further; this runs in every build). */
static void test_corruptions(void **state) {
    size_t len;
    unsigned char *good = make_image("{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                                     "\"__metadata__\":{\"format\":\"pt\"},"
                                     "\"b\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[12,16]}}", 16, &len);
    unsigned char *b = malloc(len);
    ss_rng rng = {7};
    int ok = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(b, good, len);
        int flips = 1 + (int)ss_rng_below(&rng, 3);
        for (int f = 0; f < flips; f++)
            b[ss_rng_below(&rng, len)] = (unsigned char)ss_rng_next(&rng);
        size_t cut = ss_rng_below(&rng, 8) == 0 ? (size_t)ss_rng_below(&rng, len) : len;
        ss_safetensors *st = NULL;
        ss_status s = ss_safetensors_parse(b, cut, "c", &st);
        assert_true(s == SS_OK || s == SS_EFORMAT);
        if (s == SS_OK) {
            ok++;
            for (size_t i = 0; i < ss_safetensors_count(st); i++) {
                const ss_st_entry *e = ss_safetensors_entry(st, i);
                assert_true((const unsigned char *)e->data >= b && (const unsigned char *)e->data + e->nbytes <= b + cut);
            }
        }
        ss_safetensors_close(st);
    }
    assert_true(ok > 0);
    free(b);
    free(good);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_empty_files),
        cmocka_unit_test(test_order_and_find),
        cmocka_unit_test(test_writer_abort_and_misuse),
        cmocka_unit_test(test_write_all_enospc),
        cmocka_unit_test(test_writer_write_error),
        cmocka_unit_test(test_write_file_atomic),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_malformed_framing),
        cmocka_unit_test(test_truncated_file),
        cmocka_unit_test(test_corruptions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
