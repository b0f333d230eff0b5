/* The throughput CSV files (SPEC §8): one per model, stage and backend/pattern,
 * merged by M (or one more run of an M appended) and written atomically; and
 * the speedup table over the backends found side by side in one device
 * folder, from the median of each M's runs. */
#include "slidesparse/serve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/fileutil.h"

#define MAX_ROWS 256 /* 16 M values x 16 runs */
#define LINE_MAX_LEN 512

// --- text buffer --------------------------------------------------------------------------

typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} text;

static void text_add(text *t, const char *fmt, ...) SS_PRINTF(2, 3);
static void text_add(text *t, const char *fmt, ...) {
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            t->failed = 1;
            return;
        }
        if (t->s && t->len + (size_t)w < t->cap) {
            t->len += (size_t)w;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 1024;
        while (cap < t->len + (size_t)w + 1)
            cap *= 2;
        char *s = realloc(t->s, cap);
        if (!s) {
            t->failed = 1;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
}

// --- one CSV --------------------------------------------------------------------------------

typedef struct {
    long long m;
    int order; /* position in the file, then in the order written: runs of one M keep it */
    char line[LINE_MAX_LEN];
} csv_row;

static int row_cmp(const void *a, const void *b) {
    const csv_row *x = a, *y = b;
    if (x->m != y->m)
        return (x->m > y->m) - (x->m < y->m);
    return (x->order > y->order) - (x->order < y->order);
}

/* Rows of an existing file with our header (none when absent or different);
 * -1 when path exists but is not a regular file (a FIFO would block a plain
 * fopen forever). */
static int read_rows(const char *path, csv_row *rows, int cap) {
    struct stat st;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    FILE *f = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? fdopen(fd, "r") : NULL;
    if (!f) {
        close(fd);
        return -1;
    }
    char line[LINE_MAX_LEN];
    int n = 0;
    if (!fgets(line, sizeof line, f) || strncmp(line, SS_THROUGHPUT_CSV_HEADER, strlen(SS_THROUGHPUT_CSV_HEADER)) != 0) {
        fclose(f);
        return 0;
    }
    while (n < cap && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *end;
        long long m = strtoll(line, &end, 10);
        if (end == line || *end != ',')
            continue;
        rows[n].m = m;
        rows[n].order = n;
        snprintf(rows[n].line, sizeof rows[n].line, "%s", line);
        n++;
    }
    fclose(f);
    return n;
}

/* Merges rows into the CSV at path: append = 0 replaces every row (run) of
 * the same M, append = 1 keeps them and adds the new ones after them. */
static ss_status save_rows(const char *path, const ss_throughput_row *rows, int n, int append) {
    csv_row *all = malloc(MAX_ROWS * sizeof *all);
    if (!all)
        return ss_fail(SS_ENOMEM, "%s: out of memory reading the CSV", path);
    int n_all = read_rows(path, all, MAX_ROWS);
    n_all = n_all < 0 ? 0 : n_all; /* not a regular file: the write below refuses it */
    int next = n_all;
    ss_status rc = SS_OK;
    for (int i = 0; i < n; i++) {
        const ss_throughput_row *r = &rows[i];
        if (!append) { /* every earlier run of this M goes */
            int kept = 0;
            for (int j = 0; j < n_all; j++)
                if (all[j].m != r->w.m)
                    all[kept++] = all[j];
            n_all = kept;
        }
        int at = n_all;
        if (at == MAX_ROWS) {
            rc = ss_fail(SS_EINVAL, "%s: more than %d rows", path, MAX_ROWS);
            goto out;
        }
        all[at].m = r->w.m;
        all[at].order = next++;
        snprintf(all[at].line, sizeof all[at].line, "%lld,%lld,%d,%lld,%lld,%lld,%.6g,%.6g,%.6g",
                 (long long)r->w.m, (long long)r->w.prompt_len, r->w.max_num_seqs,
                 (long long)r->num_prompts, (long long)r->w.max_num_batched_tokens,
                 (long long)r->w.output_len, r->requests_per_s, r->tokens_per_s, r->elapsed_s);
        n_all++;
    }
    qsort(all, (size_t)n_all, sizeof all[0], row_cmp);
    text t = {0};
    text_add(&t, "%s\n", SS_THROUGHPUT_CSV_HEADER);
    for (int i = 0; i < n_all; i++)
        text_add(&t, "%s\n", all[i].line);
    rc = t.failed ? ss_fail(SS_ENOMEM, "%s: out of memory building the CSV", path) : ss_save_file(path, t.s, t.len);
    free(t.s);
out:
    free(all);
    return rc;
}

ss_status ss_throughput_save(const char *path, const ss_throughput_row *rows, int n) {
    return save_rows(path, rows, n, 0);
}

ss_status ss_throughput_append(const char *path, const ss_throughput_row *row) {
    return save_rows(path, row, 1, 1);
}

// --- speedup ----------------------------------------------------------------------------------

typedef struct {
    char label[96];   /* "cublaslt", "cusparselt_2_8", "cpu", "cpu_2_8" */
    int dense;
    int l;            /* pattern L for ordering (1000: 2_inf) */
    int n;
    long long m[MAX_ROWS];
    double tps[MAX_ROWS];
} series;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Reads M and tokens_per_s (8th column) of one result file; an M with
 * several rows (runs) gets the median of their tokens/s. */
static int read_series(const char *path, series *s) {
    csv_row *rows = malloc(MAX_ROWS * sizeof *rows);
    int n = rows ? read_rows(path, rows, MAX_ROWS) : 0;
    s->n = 0;
    if (n < 0)
        n = 0;
    if (n > 0)
        qsort(rows, (size_t)n, sizeof *rows, row_cmp); /* runs of one M side by side */
    double runs[MAX_ROWS];
    int k = 0;
    for (int i = 0; i < n; i++) {
        const char *p = rows[i].line;
        for (int col = 0; col < 7 && p; col++) {
            p = strchr(p, ',');
            if (p)
                p++;
        }
        if (p)
            runs[k++] = strtod(p, NULL);
        if (k && (i + 1 == n || rows[i + 1].m != rows[i].m)) {
            qsort(runs, (size_t)k, sizeof *runs, cmp_double);
            s->m[s->n] = rows[i].m;
            s->tps[s->n++] = k % 2 ? runs[k / 2] : (runs[k / 2 - 1] + runs[k / 2]) / 2;
            k = 0;
        }
    }
    free(rows);
    return s->n > 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int series_cmp(const void *a, const void *b) {
    const series *x = a, *y = b;
    if (x->dense != y->dense)
        return y->dense - x->dense;
    int c = strncmp(x->label, y->label, 3);
    if (c)
        return c;
    return x->l - y->l;
}

/* Every backend[/2_L] folder of device_dir that holds <model>_<stage>.csv. */
static int collect(const char *device_dir, const char *file, series *out, int cap) {
    int n = 0;
    DIR *d = opendir(device_dir);
    if (!d)
        return 0;
    struct dirent *e;
    char sub[4096], path[4096 + 1024];
    while ((e = readdir(d)) && n < cap) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof sub, "%s/%s", device_dir, e->d_name);
        if (!is_dir(sub))
            continue;
        snprintf(path, sizeof path, "%s/%s", sub, file);
        memset(&out[n], 0, sizeof out[n]);
        if (read_series(path, &out[n])) {
            snprintf(out[n].label, sizeof out[n].label, "%.80s", e->d_name);
            out[n].dense = 1;
            n++;
        }
        DIR *d2 = opendir(sub);
        struct dirent *e2;
        while (d2 && (e2 = readdir(d2)) && n < cap) {
            ss_pattern p;
            if (e2->d_name[0] == '.' || ss_pattern_parse(e2->d_name, &p) != SS_OK) {
                ss_clear_error();
                continue;
            }
            snprintf(path, sizeof path, "%s/%s/%s", sub, e2->d_name, file);
            memset(&out[n], 0, sizeof out[n]);
            if (read_series(path, &out[n])) {
                snprintf(out[n].label, sizeof out[n].label, "%.40s_%.40s", e->d_name, e2->d_name);
                out[n].l = p.l ? p.l : 1000;
                n++;
            }
        }
        if (d2)
            closedir(d2);
    }
    closedir(d);
    qsort(out, (size_t)n, sizeof out[0], series_cmp);
    return n;
}

static double tps_at(const series *s, long long m) {
    for (int i = 0; i < s->n; i++)
        if (s->m[i] == m)
            return s->tps[i];
    return 0;
}

ss_status ss_throughput_speedup(const char *device_dir, const char *model, ss_stage st,
                                int *written) {
    *written = 0;
    enum { CAP = 32 };
    series *all = calloc(CAP, sizeof *all);
    if (!all)
        return ss_fail(SS_ENOMEM, "speedup: out of memory");
    char file[512], path[4096 + 1024];
    snprintf(file, sizeof file, "%.255s_%s.csv", model, ss_stage_name(st));
    int n = collect(device_dir, file, all, CAP);
    /* The dense baseline: cuBLASLt when present, else the first dense series. */
    int base = -1;
    for (int i = 0; i < n; i++)
        if (all[i].dense && (base < 0 || !strcmp(all[i].label, "cublaslt")))
            base = i;
    ss_status rc = SS_OK;
    if (base < 0 || n < 2)
        goto done;
    text t = {0};
    text_add(&t, "M,%s_tokens_per_s", all[base].label);
    for (int i = 0; i < n; i++)
        if (i != base)
            text_add(&t, ",%s_tokens_per_s,%s_speedup", all[i].label, all[i].label);
    text_add(&t, "\n");
    for (int r = 0; r < all[base].n; r++) {
        long long m = all[base].m[r];
        double b = all[base].tps[r];
        text_add(&t, "%lld,%.6g", m, b);
        for (int i = 0; i < n; i++) {
            if (i == base)
                continue;
            double v = tps_at(&all[i], m);
            if (v > 0 && b > 0)
                text_add(&t, ",%.6g,%.4f", v, v / b);
            else
                text_add(&t, ",,");
        }
        text_add(&t, "\n");
    }
    snprintf(path, sizeof path, "%.4000s/%.255s_%s_speedup.csv", device_dir, model, ss_stage_name(st));
    rc = t.failed ? ss_fail(SS_ENOMEM, "%s: out of memory building the CSV", path)
                  : ss_write_file_atomic(path, t.s, t.len);
    free(t.s);
    if (rc == SS_OK)
        *written = 1;
done:
    free(all);
    return rc;
}
