/* File helpers: complete writes, atomic replacement, bounded reads, recursive
 * removal. See fileutil.h for the contracts. */
#include "io/fileutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

// --- writing ----------------------------------------------------------------------

ss_status ss_write_all(int fd, const void *data, size_t len, const char *label) {
    const char *p = data;
    while (len > 0) {
        /* Linux writes at most ~2 GiB per call; ask for 1 GiB at a time. */
        size_t chunk = len < ((size_t)1 << 30) ? len : ((size_t)1 << 30);
        ssize_t n = write(fd, p, chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return ss_fail_errno(errno, "%s: write failed", label);
        }
        if (n == 0)
            return ss_fail_errno(EIO, "%s: write made no progress", label);
        p += n;
        len -= (size_t)n;
    }
    return SS_OK;
}

ss_status ss_fsync_parent_dir(const char *path) {
    char dir[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof dir)
        return ss_fail(SS_EINVAL, "%s: path too long", path);
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ss_fail_errno(errno, "%s: cannot open directory to sync it", dir);
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    /* Some file systems cannot fsync a directory; that is not a write error. */
    if (rc != 0 && err != EINVAL && err != EROFS)
        return ss_fail_errno(err, "%s: fsync of directory failed", dir);
    return SS_OK;
}

ss_status ss_write_file_atomic(const char *path, const void *data, size_t len) {
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        return ss_fail(SS_EINVAL, "%s: path too long", path);
    /* A stale temporary of a dead process with our pid would make O_EXCL fail. */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return ss_fail_errno(errno, "%s: cannot create", tmp);
    ss_status s = ss_write_all(fd, data, len, tmp);
    if (s != SS_OK)
        goto fail;
    if (fsync(fd) != 0) {
        s = ss_fail_errno(errno, "%s: fsync failed", tmp);
        goto fail;
    }
    int rc = close(fd);
    fd = -1;
    if (rc != 0) {
        s = ss_fail_errno(errno, "%s: close failed", tmp);
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        s = ss_fail_errno(errno, "%s: cannot rename to %s", tmp, path);
        goto fail;
    }
    return ss_fsync_parent_dir(path);
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return s;
}

// --- reading ----------------------------------------------------------------------

ss_status ss_read_file(const char *path, size_t max_len, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    ss_status s = SS_OK;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ss_fail_errno(errno, "%s: cannot open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        s = ss_fail_errno(errno, "%s: cannot stat", path);
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        s = ss_fail(SS_EFORMAT, "%s: expected a regular file", path);
        goto fail;
    }
    if ((uint64_t)st.st_size > max_len) {
        s = ss_fail(SS_EFORMAT, "%s: %lld bytes, larger than the %zu-byte limit for this file",
                    path, (long long)st.st_size, max_len);
        goto fail;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size + 1);
    if (!buf) {
        s = ss_fail(SS_ENOMEM, "%s: cannot allocate %zu bytes", path, size + 1);
        goto fail;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            s = ss_fail_errno(errno, "%s: read failed", path);
            goto fail;
        }
        if (n == 0)
            break; /* shrank while reading: take what is there */
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    *out = buf;
    *len = got;
    return SS_OK;
fail:
    free(buf);
    close(fd);
    return s;
}

// --- paths and trees -------------------------------------------------------------------

ss_status ss_path_join(char *buf, size_t n, const char *dir, const char *name) {
    int w = snprintf(buf, n, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= n)
        return ss_fail(SS_EINVAL, "%s/%s: path too long (limit %zu bytes)", dir, name, n - 1);
    return SS_OK;
}

ss_status ss_dir_open(int dfd, const char *path, DIR **out) {
    *out = fdopendir(dfd);
    if (!*out) {
        close(dfd);
        return ss_fail_errno(errno, "%s: cannot list", path);
    }
    return SS_OK;
}

ss_status ss_dir_each(DIR *d, const char *path, ss_dir_entry_fn fn, void *user) {
    ss_status s = SS_OK;
    struct dirent *e;
    while (s == SS_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char sub[PATH_MAX];
        if ((s = ss_path_join(sub, sizeof sub, path, e->d_name)) != SS_OK)
            break;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            s = ss_fail_errno(errno, "%s: cannot stat", sub);
            break;
        }
        s = fn(dirfd(d), e->d_name, sub, &st, user);
    }
    return s;
}

static ss_status remove_children(int dfd, const char *path);

static ss_status remove_entry(int dfd, const char *name, const char *sub, const struct stat *st,
                              void *user) {
    if (!S_ISDIR(st->st_mode))
        return unlinkat(dfd, name, 0) == 0 ? SS_OK : ss_fail_errno(errno, "%s: cannot remove", sub);
    int cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cfd < 0)
        return ss_fail_errno(errno, "%s: cannot open", sub);
    SS_TRY(remove_children(cfd, sub));
    if (unlinkat(dfd, name, AT_REMOVEDIR) != 0)
        return ss_fail_errno(errno, "%s: cannot remove directory", sub);
    return SS_OK;
}

/* Removes the entries of the open directory dfd (named `path` for errors) and
 * closes it. Recursion depth = tree depth, which our outputs keep shallow. */
static ss_status remove_children(int dfd, const char *path) {
    DIR *d;
    SS_TRY(ss_dir_open(dfd, path, &d));
    ss_status s = ss_dir_each(d, path, remove_entry, NULL);
    closedir(d);
    return s;
}

ss_status ss_remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? SS_OK : ss_fail_errno(errno, "%s: cannot stat", path);
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? SS_OK : ss_fail_errno(errno, "%s: cannot remove", path);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ss_fail_errno(errno, "%s: cannot open", path);
    SS_TRY(remove_children(fd, path));
    if (rmdir(path) != 0)
        return ss_fail_errno(errno, "%s: cannot remove directory", path);
    return SS_OK;
}
