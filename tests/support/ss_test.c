#include "ss_test.h"

#include <dirent.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void ss_test_assert_fails(ss_status got, ss_status want, const char *needle, const char *expr,
                          const char *file, int line) {
    if (got != want)
        fail_msg("%s:%d: %s -> %s, expected %s (%s)", file, line, expr, ss_status_name(got),
                 ss_status_name(want), ss_last_error());
    if (needle && !strstr(ss_last_error(), needle))
        fail_msg("%s:%d: %s: error text \"%s\" lacks \"%s\"", file, line, expr, ss_last_error(),
                 needle);
    if (strchr(ss_last_error(), '\n'))
        fail_msg("%s:%d: %s: error text is not one line", file, line, expr);
}

uint64_t ss_rng_next(ss_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t ss_rng_below(ss_rng *r, uint64_t n) { return n ? ss_rng_next(r) % n : 0; }

int64_t ss_rng_range(ss_rng *r, int64_t lo, int64_t hi) {
    return lo + (int64_t)ss_rng_below(r, (uint64_t)(hi - lo + 1));
}

double ss_rng_normal(ss_rng *r) {
    double u1 = ((double)(ss_rng_next(r) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(ss_rng_next(r) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void ss_test_tmpdir(char *buf, size_t n) {
    const char *t = getenv("TMPDIR");
    snprintf(buf, n, "%s/sstest.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(buf))
        fail_msg("mkdtemp(%s) failed", buf);
}

void ss_test_rmtree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            ss_test_rmtree(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

int ss_test_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

int ss_test_count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

void *ss_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

void ss_test_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len)
        fail_msg("cannot write %s", path);
    fclose(f);
}

int ss_test_no_cuda(void) {
    if (ss_cuda_device_count() > 0)
        return 0;
    printf("skipped: no CUDA device\n");
    fflush(stdout);
    return 1;
}

/* dst = src with BF16 tensors as dtype `to`; snap: kept BF16 but each value
 * replaced by BF16(F16(value)), which F16 then holds exactly. */
static void recast(const char *src, const char *dst, ss_dtype to, int snap, float mul) {
    char p[1024];
    size_t n;
    mkdir(dst, 0755);
    snprintf(p, sizeof p, "%s/config.json", src);
    void *cfg = ss_test_read_file(p, &n);
    assert_non_null(cfg);
    snprintf(p, sizeof p, "%s/config.json", dst);
    ss_test_write_file(p, cfg, n);
    free(cfg);
    ss_safetensors *st;
    ss_st_writer *w;
    snprintf(p, sizeof p, "%s/model.safetensors", src);
    assert_ok(ss_safetensors_open(p, &st));
    snprintf(p, sizeof p, "%s/model.safetensors", dst);
    assert_ok(ss_st_writer_open(p, &w));
    for (size_t i = 0; i < ss_safetensors_count(st); i++) {
        const ss_st_entry *e = ss_safetensors_entry(st, i);
        assert_ok(ss_st_writer_declare(w, e->name, e->dtype == SS_DTYPE_BF16 ? to : e->dtype, e->ndim, e->shape));
    }
    for (size_t i = 0; i < ss_safetensors_count(st); i++) {
        const ss_st_entry *e = ss_safetensors_entry(st, i);
        if (e->dtype != SS_DTYPE_BF16) {
            assert_ok(ss_st_writer_write(w, e->data, e->nbytes));
            continue;
        }
        size_t numel = e->nbytes / 2, es = ss_dtype_size(to);
        unsigned char *out = malloc(numel * es + 1);
        uint16_t *back = malloc(numel * 2 + 1);
        for (size_t j = 0; j < numel; j++) {
            uint16_t h;
            memcpy(&h, (const unsigned char *)e->data + 2 * j, 2);
            float f = ss_bf16_to_f32(h) * mul;
            if (snap)
                h = ss_f32_to_bf16(ss_f16_to_f32(ss_f32_to_f16(f)));
            if (to == SS_DTYPE_F16)
                h = ss_f32_to_f16(f);
            if (to == SS_DTYPE_F32)
                memcpy(out + 4 * j, &f, 4);
            else
                memcpy(out + 2 * j, &h, 2);
        }
        if (!snap && mul == 1.0f && ss_dtype_is_dense_float(to)) { /* the library reads the BF16 back */
            assert_true(ss_dtype_to_bf16(to, out, numel, back));
            if (memcmp(back, e->data, numel * 2))
                fail_msg("%s: tensor '%s' is not exact in %s", src, e->name, ss_dtype_name(to));
        }
        assert_ok(ss_st_writer_write(w, out, numel * es));
        free(out);
        free(back);
    }
    assert_ok(ss_st_writer_close(w));
    ss_safetensors_close(st);
}

void ss_test_recast_checkpoint(const char *src, const char *dst, ss_dtype to) { recast(src, dst, to, 0, 1.0f); }

void ss_test_snap_f16_checkpoint(const char *src, const char *dst) { recast(src, dst, SS_DTYPE_BF16, 1, 1.0f); }

void ss_test_f32_scaled_checkpoint(const char *src, const char *dst, float mul) {
    recast(src, dst, SS_DTYPE_F32, 0, mul);
}

void ss_test_same_checkpoints(const char *a_dir, const char *b_dir) {
    ss_checkpoint *a, *b;
    assert_ok(ss_checkpoint_open(a_dir, &a));
    assert_ok(ss_checkpoint_open(b_dir, &b));
    assert_int_equal(ss_checkpoint_count(a), ss_checkpoint_count(b));
    for (size_t i = 0; i < ss_checkpoint_count(a); i++) {
        const ss_st_entry *e = ss_checkpoint_entry(a, i), *f = ss_checkpoint_find(b, e->name);
        if (!f)
            fail_msg("%s: tensor '%s' missing", b_dir, e->name);
        assert_int_equal(e->dtype, f->dtype);
        assert_int_equal(e->ndim, f->ndim);
        for (int d = 0; d < e->ndim; d++)
            assert_int_equal(e->shape[d], f->shape[d]);
        assert_int_equal(e->nbytes, f->nbytes);
        if (memcmp(e->data, f->data, e->nbytes))
            fail_msg("%s vs %s: tensor '%s' differs", a_dir, b_dir, e->name);
    }
    ss_checkpoint_close(a);
    ss_checkpoint_close(b);
}

int ss_test_run_cli(const char *sub, const char *args, char *buf, size_t n) {
    const char *cli = getenv("SS_CLI");
    if (!cli)
        return -2;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s %s 2>&1", cli, sub, args);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = 0;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
