/* Small helpers of the prep layer: JSON files, page release, side files,
 * input layout, row-parallel loops. */
#include "prep_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/fileutil.h"

// --- files --------------------------------------------------------------------------------

static ss_status write_file(const char *path, const void *data, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ss_fail_errno(errno, "%s: cannot create", path);
    ss_status s = ss_write_all(fd, data, n, path);
    if (s == SS_OK && fsync(fd) != 0)
        s = ss_fail_errno(errno, "%s: fsync failed", path);
    if (close(fd) != 0 && s == SS_OK)
        s = ss_fail_errno(errno, "%s: close failed", path);
    return s;
}

ss_status prep_write_json(const char *path, json_t *j, int sort_keys) {
    char *text = json_dumps(j, JSON_INDENT(2) | (sort_keys ? JSON_SORT_KEYS : JSON_PRESERVE_ORDER) |
                                   JSON_REAL_PRECISION(15));
    if (!text)
        return ss_fail(SS_ENOMEM, "%s: cannot serialize JSON", path);
    size_t n = strlen(text);
    char *buf = realloc(text, n + 2);
    if (!buf) {
        free(text);
        return ss_fail(SS_ENOMEM, "%s: out of memory", path);
    }
    buf[n] = '\n';
    buf[n + 1] = '\0';
    ss_status s = write_file(path, buf, n + 1);
    free(buf);
    return s;
}

void prep_release(const void *p, size_t n) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p, b = a + n;
    a = (a + (uintptr_t)page - 1) & ~((uintptr_t)page - 1); /* only whole pages of this range */
    b &= ~((uintptr_t)page - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED); /* a hint: failure changes nothing */
}

static int is_side_file(const char *name) {
    size_t n = strlen(name);
    if (name[0] == '.' || strcmp(name, "config.json") == 0 ||
        strcmp(name, "model.safetensors.index.json") == 0)
        return 0;
    return !(n > 12 && strcmp(name + n - 12, ".safetensors") == 0);
}

static ss_status copy_file(const char *from, const char *to) {
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return ss_fail_errno(errno, "%s: cannot open", from);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return ss_fail_errno(errno, "%s: cannot create", to);
    }
    ss_status s = SS_OK;
    char buf[1 << 16];
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            s = ss_fail_errno(errno, "%s: read failed", from);
            break;
        }
        if (r == 0)
            break;
        if ((s = ss_write_all(out, buf, (size_t)r, to)) != SS_OK)
            break;
    }
    if (s == SS_OK && fsync(out) != 0)
        s = ss_fail_errno(errno, "%s: fsync failed", to);
    close(in);
    if (close(out) != 0 && s == SS_OK)
        s = ss_fail_errno(errno, "%s: close failed", to);
    return s;
}

ss_status prep_copy_side_files(const char *in_dir, const char *out_dir) {
    DIR *d = opendir(in_dir);
    if (!d)
        return ss_fail_errno(errno, "%s: cannot list directory", in_dir);
    ss_status s = SS_OK;
    struct dirent *e;
    while (s == SS_OK && (e = readdir(d))) {
        if (!is_side_file(e->d_name))
            continue;
        char from[PREP_PATH_MAX], to[PREP_PATH_MAX];
        snprintf(from, sizeof from, "%s/%s", in_dir, e->d_name);
        snprintf(to, sizeof to, "%s/%s", out_dir, e->d_name);
        struct stat st;
        if (stat(from, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        s = copy_file(from, to);
    }
    closedir(d);
    return s;
}

// --- input layout ------------------------------------------------------------------------------

void prep_basename(const char *path, char *buf, size_t n) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    size_t b = len;
    while (b > 0 && path[b - 1] != '/')
        b--;
    snprintf(buf, n, "%.*s", (int)(len - b), path + b);
}

static int by_offset(const void *a, const void *b) {
    const char *x = (const char *)(*(const ss_st_entry *const *)a)->data;
    const char *y = (const char *)(*(const ss_st_entry *const *)b)->data;
    return x < y ? -1 : x > y;
}

ss_status prep_layout_build(const ss_checkpoint *ck, prep_layout *out) {
    memset(out, 0, sizeof *out);
    size_t n = ss_checkpoint_count(ck);
    char idx[PREP_PATH_MAX];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", ss_checkpoint_dir(ck));
    out->indexed = access(idx, F_OK) == 0;
    out->shards = calloc(n ? n : 1, sizeof *out->shards);
    if (!out->shards)
        return ss_fail(SS_ENOMEM, "%s: out of memory", ss_checkpoint_dir(ck));
    for (size_t i = 0; i < n; i++) {
        const ss_st_entry *e = ss_checkpoint_entry(ck, i);
        char base[256];
        prep_basename(e->file, base, sizeof base);
        prep_shard *sh = NULL;
        for (size_t s = 0; s < out->n_shards; s++)
            if (strcmp(out->shards[s].file, base) == 0)
                sh = &out->shards[s];
        if (!sh) {
            sh = &out->shards[out->n_shards++];
            snprintf(sh->file, sizeof sh->file, "%s", base);
            sh->e = calloc(n, sizeof *sh->e);
            if (!sh->e) {
                prep_layout_free(out);
                return ss_fail(SS_ENOMEM, "%s: out of memory", ss_checkpoint_dir(ck));
            }
        }
        sh->e[sh->n++] = e;
        out->total_bytes += (int64_t)e->nbytes;
        out->n_tensors++;
    }
    /* Shards in name order (model-00001-of-..., ...), tensors in file order. */
    for (size_t a = 0; a < out->n_shards; a++)
        for (size_t b = a + 1; b < out->n_shards; b++)
            if (strcmp(out->shards[b].file, out->shards[a].file) < 0) {
                prep_shard t = out->shards[a];
                out->shards[a] = out->shards[b];
                out->shards[b] = t;
            }
    for (size_t s = 0; s < out->n_shards; s++)
        qsort(out->shards[s].e, out->shards[s].n, sizeof *out->shards[s].e, by_offset);
    return SS_OK;
}

void prep_layout_free(prep_layout *l) {
    for (size_t s = 0; s < l->n_shards; s++)
        free(l->shards[s].e);
    free(l->shards);
    memset(l, 0, sizeof *l);
}

// --- parallel rows ---------------------------------------------------------------------------------

int64_t prep_row_block(int64_t k) {
    int64_t b = (int64_t)65536 / (k > 0 ? k : 1);
    return b < 1 ? 1 : b;
}

ss_status prep_parallel_rows(int64_t n, int64_t block, prep_rows_fn fn, void *ctx) {
    ss_status first = SS_OK;
    char msg[1024] = "";
    int64_t nb = (n + block - 1) / block;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t b = 0; b < nb; b++) {
        int failed;
#pragma omp atomic read
        failed = first;
        if (failed)
            continue;
        int64_t r0 = b * block, r1 = r0 + block < n ? r0 + block : n;
        ss_status s = fn(ctx, r0, r1);
        if (s != SS_OK) {
#pragma omp critical(prep_parallel_error)
            if (first == SS_OK) {
                snprintf(msg, sizeof msg, "%s", ss_last_error());
                first = s;
            }
        }
    }
    if (first != SS_OK)
        return ss_fail(first, "%s", msg);
    return SS_OK;
}

// --- names --------------------------------------------------------------------------------------------

void prep_scale_name(const char *weight, char *buf, size_t n) { snprintf(buf, n, "%s_scale", weight); }

int prep_is_scale_name(const char *name) {
    size_t n = strlen(name);
    if (n <= 6 || strcmp(name + n - 6, "_scale") != 0)
        return 0;
    char w[256];
    snprintf(w, sizeof w, "%.*s", (int)(n - 6), name);
    return ss_tensor_role_of(w) == SS_ROLE_PROJ;
}
