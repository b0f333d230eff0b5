#include "ss_test.h"

#include <dirent.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
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
