/* Safetensors streaming writer: tensors are declared first (so the header,
 * which precedes the data, can be written before any data), then their bytes
 * are streamed in declaration order in chunks of any size.
 *
 * The header is padded with spaces to a multiple of 8 bytes, as the reference
 * library does, so the data buffer starts 8-byte aligned in the file and in a
 * mapping. Tensors follow each other without padding (the format has no gaps).
 * Output goes to "<path>.tmp.<pid>", is fsynced and renamed onto path on
 * close; every failure removes the temporary file.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "slidesparse/io.h"

/* Small chunks are gathered into one write of this size. */
#define SS_STW_BUF (1u << 20)

typedef struct {
    char *name;
    ss_dtype dtype;
    int ndim;
    int64_t shape[SS_MAX_DIMS];
    uint64_t nbytes;
} stw_tensor;

struct ss_st_writer {
    char *path, *tmp;
    int fd;
    stw_tensor *t;        /* (n) declared tensors, in write order */
    size_t n, cap;
    json_t *meta;         /* __metadata__ object */
    int header_done;
    uint64_t declared;    /* sum of nbytes */
    uint64_t written;     /* data bytes accepted so far */
    char *buf;            /* (SS_STW_BUF) write gathering */
    size_t buf_used;
    ss_status failed;     /* sticky: a write failed, the temporary is gone */
};

ss_status ss_st_writer_open(const char *path, ss_st_writer **out) {
    *out = NULL;
    ss_st_writer *w = calloc(1, sizeof *w);
    if (!w)
        return ss_fail(SS_ENOMEM, "%s: out of memory", path);
    w->fd = -1;
    ss_status s = SS_OK;
    size_t tl = strlen(path) + 32;
    w->path = strdup(path);
    w->tmp = malloc(tl);
    w->meta = json_object();
    w->buf = malloc(SS_STW_BUF);
    if (!w->path || !w->tmp || !w->meta || !w->buf) {
        s = ss_fail(SS_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    snprintf(w->tmp, tl, "%s.tmp.%ld", path, (long)getpid());
    /* A stale temporary left by a dead process with our pid would make
     * O_EXCL fail; it is ours to replace. */
    unlink(w->tmp);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        s = ss_fail_errno(errno, "%s: cannot create", w->tmp);
        goto fail;
    }
    *out = w;
    return SS_OK;
fail:
    ss_st_writer_abort(w);
    return s;
}

ss_status ss_st_writer_declare(ss_st_writer *w, const char *name, ss_dtype dtype, int ndim,
                               const int64_t *shape) {
    if (w->header_done)
        return ss_fail(SS_EINVAL, "%s: tensor '%s' declared after data was written", w->path, name);
    if (!name || strcmp(name, "__metadata__") == 0)
        return ss_fail(SS_EINVAL, "%s: '%s' is not a valid tensor name", w->path, name ? name : "(null)");
    if ((unsigned)dtype >= SS_DTYPE_COUNT)
        return ss_fail(SS_EINVAL, "%s: tensor '%s': invalid dtype %d", w->path, name, (int)dtype);
    if (ndim < 0 || ndim > SS_MAX_DIMS)
        return ss_fail(SS_EINVAL, "%s: tensor '%s': %d dims, expected 0..%d", w->path, name, ndim, SS_MAX_DIMS);
    /* Duplicates would produce a file every reader rejects. Linear scan:
     * checkpoints hold thousands of tensors, declared once. */
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return ss_fail(SS_EINVAL, "%s: tensor '%s' declared twice", w->path, name);
    uint64_t bytes = ss_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return ss_fail(SS_EINVAL, "%s: tensor '%s': shape[%d] is negative (%lld)", w->path, name, i,
                           (long long)shape[i]);
        if (shape[i] && bytes > (uint64_t)INT64_MAX / (uint64_t)shape[i])
            return ss_fail(SS_EINVAL, "%s: tensor '%s': shape overflows", w->path, name);
        bytes *= (uint64_t)shape[i];
    }
    if (bytes > (uint64_t)INT64_MAX - w->declared)
        return ss_fail(SS_EINVAL, "%s: tensor '%s': total size overflows", w->path, name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        stw_tensor *t = realloc(w->t, cap * sizeof *t);
        if (!t)
            return ss_fail(SS_ENOMEM, "%s: out of memory", w->path);
        w->t = t;
        w->cap = cap;
    }
    stw_tensor *t = &w->t[w->n];
    if (!(t->name = strdup(name)))
        return ss_fail(SS_ENOMEM, "%s: out of memory", w->path);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->nbytes = bytes;
    w->declared += bytes;
    w->n++;
    return SS_OK;
}

ss_status ss_st_writer_set_metadata(ss_st_writer *w, const char *key, const char *value) {
    if (w->header_done)
        return ss_fail(SS_EINVAL, "%s: metadata '%s' set after data was written", w->path, key);
    if (json_object_set_new(w->meta, key, json_string(value)) != 0)
        return ss_fail(SS_EINVAL, "%s: metadata '%s' is not valid UTF-8 text", w->path, key);
    return SS_OK;
}

// --- header ----------------------------------------------------------------------------

static json_t *tensor_json(const stw_tensor *t, uint64_t begin) {
    json_t *shape = json_array();
    for (int i = 0; shape && i < t->ndim; i++)
        json_array_append_new(shape, json_integer(t->shape[i]));
    json_t *off = json_pack("[I, I]", (json_int_t)begin, (json_int_t)(begin + t->nbytes));
    return json_pack("{s:s, s:o, s:o}", "dtype", ss_dtype_name(t->dtype), "shape", shape,
                     "data_offsets", off);
}

static ss_status write_header(ss_st_writer *w) {
    ss_status s = SS_OK;
    char *text = NULL, *hdr = NULL;
    json_t *root = json_object();
    if (!root)
        return ss_fail(SS_ENOMEM, "%s: out of memory", w->path);
    if (json_object_size(w->meta) > 0)
        json_object_set(root, "__metadata__", w->meta);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        json_t *e = tensor_json(&w->t[i], off);
        if (!e || json_object_set_new(root, w->t[i].name, e) != 0) {
            s = ss_fail(SS_EINVAL, "%s: tensor '%s': name is not valid UTF-8 text", w->path, w->t[i].name);
            goto done;
        }
        off += w->t[i].nbytes;
    }
    text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        s = ss_fail(SS_ENOMEM, "%s: cannot serialize the header", w->path);
        goto done;
    }
    size_t n = strlen(text), padded = (n + 7) / 8 * 8;
    hdr = malloc(8 + padded);
    if (!hdr) {
        s = ss_fail(SS_ENOMEM, "%s: out of memory", w->path);
        goto done;
    }
    for (int i = 0; i < 8; i++)
        hdr[i] = (char)((uint64_t)padded >> (8 * i));
    memcpy(hdr + 8, text, n);
    memset(hdr + 8 + n, ' ', padded - n);
    s = ss_write_all(w->fd, hdr, 8 + padded, w->tmp);
    w->header_done = 1;
done:
    free(hdr);
    free(text);
    json_decref(root);
    return s;
}

// --- data ----------------------------------------------------------------------------

/* After a write error (ENOSPC above all) the partial file is removed at once:
 * a full disk must not be made fuller by our leftovers, whether or not the
 * caller remembers to abort. */
static ss_status broken(ss_st_writer *w, ss_status s) {
    if (s != SS_OK && !w->failed) {
        w->failed = s;
        close(w->fd);
        w->fd = -1;
        unlink(w->tmp);
    }
    return s;
}

static ss_status flush_buf(ss_st_writer *w) {
    ss_status s = ss_write_all(w->fd, w->buf, w->buf_used, w->tmp);
    w->buf_used = 0;
    return broken(w, s);
}

ss_status ss_st_writer_write(ss_st_writer *w, const void *data, size_t nbytes) {
    if (w->failed)
        return ss_fail(w->failed, "%s: an earlier write failed; the output was removed", w->path);
    if (!w->header_done)
        SS_TRY(broken(w, write_header(w)));
    if (nbytes > w->declared - w->written)
        return ss_fail(SS_EINVAL, "%s: writing %zu bytes exceeds the declared tensors by %llu bytes",
                       w->path, nbytes, (unsigned long long)(nbytes - (w->declared - w->written)));
    w->written += nbytes;
    if (nbytes >= SS_STW_BUF) {
        SS_TRY(flush_buf(w));
        return broken(w, ss_write_all(w->fd, data, nbytes, w->tmp));
    }
    if (nbytes > SS_STW_BUF - w->buf_used)
        SS_TRY(flush_buf(w));
    memcpy(w->buf + w->buf_used, data, nbytes);
    w->buf_used += nbytes;
    return SS_OK;
}

/* Names the first tensor not completely written (for the error text). */
static const char *first_incomplete(const ss_st_writer *w) {
    uint64_t end = 0;
    for (size_t i = 0; i < w->n; i++) {
        end += w->t[i].nbytes;
        if (end > w->written)
            return w->t[i].name;
    }
    return "?";
}

ss_status ss_st_writer_close(ss_st_writer *w) {
    ss_status s = SS_OK;
    if (w->failed) {
        s = ss_fail(w->failed, "%s: an earlier write failed; the output was removed", w->path);
        goto fail;
    }
    if (!w->header_done && (s = write_header(w)) != SS_OK)
        goto fail;
    if (w->written != w->declared) {
        s = ss_fail(SS_EINVAL, "%s: tensor '%s' incomplete: %llu of %llu declared bytes written",
                    w->path, first_incomplete(w), (unsigned long long)w->written,
                    (unsigned long long)w->declared);
        goto fail;
    }
    if ((s = flush_buf(w)) != SS_OK)
        goto fail;
    if (fsync(w->fd) != 0) {
        s = ss_fail_errno(errno, "%s: fsync failed", w->tmp);
        goto fail;
    }
    int rc = close(w->fd);
    w->fd = -1;
    if (rc != 0) {
        s = ss_fail_errno(errno, "%s: close failed", w->tmp);
        goto fail;
    }
    if (rename(w->tmp, w->path) != 0) {
        s = ss_fail_errno(errno, "%s: cannot rename to %s", w->tmp, w->path);
        goto fail;
    }
    s = ss_fsync_parent_dir(w->path);
    free(w->tmp);
    w->tmp = NULL; /* renamed: nothing for abort to remove */
fail:
    ss_st_writer_abort(w);
    return s;
}

void ss_st_writer_abort(ss_st_writer *w) {
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp)
        unlink(w->tmp);
    for (size_t i = 0; i < w->n; i++)
        free(w->t[i].name);
    free(w->t);
    json_decref(w->meta);
    free(w->buf);
    free(w->tmp);
    free(w->path);
    free(w);
}
