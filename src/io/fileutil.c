/* File helpers: complete writes, atomic replacement, bounded reads, recursive
 * removal. See fileutil.h for the contracts. */
#include "io/fileutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/cleanup.h"

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
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return ss_fail(SS_EEXIST, "%s: exists and is not a regular file; not replaced", path);
    ss_sweep_stale(path);
    /* A stale temporary of a dead process with our pid would make O_EXCL fail. */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return ss_fail_errno(errno, "%s: cannot create", tmp);
    int slot = ss_cleanup_add(tmp, SS_CLEANUP_TREE);
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
    ss_cleanup_del(slot);
    return ss_fsync_parent_dir(path);
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    ss_cleanup_del(slot);
    return s;
}

// --- reading ----------------------------------------------------------------------

ss_status ss_open_regular(const char *path, int *fd_out, struct stat *st) {
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer forever; on a regular file the flag changes nothing. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return ss_fail_errno(errno, "%s: cannot open", path);
    if (fstat(fd, st) != 0) {
        int err = errno;
        close(fd);
        return ss_fail_errno(err, "%s: cannot stat", path);
    }
    if (!S_ISREG(st->st_mode)) {
        const char *what = S_ISFIFO(st->st_mode) ? "a FIFO" : S_ISDIR(st->st_mode) ? "a directory"
                         : S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ? "a device"
                         : S_ISSOCK(st->st_mode) ? "a socket" : "not a regular file";
        close(fd);
        return ss_fail(SS_EFORMAT, "%s: expected a regular file, found %s", path, what);
    }
    *fd_out = fd;
    return SS_OK;
}

ss_status ss_read_file(const char *path, size_t max_len, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    ss_status s = SS_OK;
    char *buf = NULL;
    struct stat st;
    int fd;
    SS_TRY(ss_open_regular(path, &fd, &st));
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

// --- folders a command creates -------------------------------------------------------------

ss_status ss_mkdir_p(const char *dir, char *made, size_t n_made) {
    char buf[PATH_MAX], first[PATH_MAX] = "";
    if (made && n_made)
        made[0] = '\0';
    if (!dir || !*dir)
        return ss_fail(SS_EINVAL, "folder: empty path");
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return ss_fail(SS_EINVAL, "%s: path too long", dir);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    for (char *p = buf + 1;; p++) {
        int end = *p == '\0';
        if (*p != '/' && !end)
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) == 0) {
            if (!first[0])
                snprintf(first, sizeof first, "%s", buf);
        } else if (errno != EEXIST) {
            ss_status s = ss_fail_errno(errno, "%s: cannot create folder", buf);
            char up[PATH_MAX];
            ss_path_parent(buf, up, sizeof up);
            ss_rmdir_made(up, first); /* what this call made above the failure */
            return s;
        }
        if (end)
            break;
        *p = '/';
    }
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return ss_fail(SS_EINVAL, "%s: exists and is not a folder", buf);
    if (made && n_made)
        snprintf(made, n_made, "%s", first);
    return SS_OK;
}

void ss_path_parent(const char *path, char *buf, size_t n) {
    snprintf(buf, n, "%s", path);
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        buf[0] = '\0';
    else if (slash == buf)
        buf[1] = '\0';
    else
        *slash = '\0';
}

ss_status ss_mkdir_parents(const char *path, char *made, size_t n) {
    char dir[PATH_MAX];
    if (made && n)
        made[0] = '\0';
    ss_path_parent(path, dir, sizeof dir);
    return dir[0] ? ss_mkdir_p(dir, made, n) : SS_OK;
}

void ss_rmdir_made(const char *dir, const char *made) {
    if (!made || !made[0])
        return;
    char cur[PATH_MAX];
    snprintf(cur, sizeof cur, "%s", dir);
    size_t stop = strlen(made);
    while (strlen(cur) >= stop && rmdir(cur) == 0 && strcmp(cur, made) != 0) {
        char up[PATH_MAX];
        ss_path_parent(cur, up, sizeof up);
        snprintf(cur, sizeof cur, "%s", up);
    }
}

ss_status ss_save_file(const char *path, const void *data, size_t len) {
    char made[PATH_MAX], dir[PATH_MAX];
    SS_TRY(ss_mkdir_parents(path, made, sizeof made));
    ss_status s = ss_write_file_atomic(path, data, len);
    if (s != SS_OK) {
        ss_path_parent(path, dir, sizeof dir);
        ss_rmdir_made(dir, made);
    }
    return s;
}

/* "<base>.<tag>.<pid>" -> pid, or 0 when name is not of that form. */
static long leftover_pid(const char *name, const char *base, const char *tag) {
    size_t b = strlen(base), t = strlen(tag);
    if (strncmp(name, base, b) != 0 || name[b] != '.' || strncmp(name + b + 1, tag, t) != 0 ||
        name[b + 1 + t] != '.')
        return 0;
    const char *d = name + b + t + 2;
    char *end;
    long pid = strtol(d, &end, 10);
    return *d >= '0' && *d <= '9' && *end == '\0' && pid > 0 ? pid : 0;
}

static int pid_gone(long pid) {
    return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static ss_status sweep_entry(int dfd, const char *name, const char *sub, const struct stat *st,
                             void *user) {
    (void)dfd;
    (void)st;
    long pid = leftover_pid(name, user, "tmp");
    if (pid && pid_gone(pid))
        ss_remove_tree(sub);
    return SS_OK;
}

void ss_sweep_stale(const char *path) {
    char dir[PATH_MAX], clean[PATH_MAX];
    snprintf(clean, sizeof clean, "%s", path);
    size_t n = strlen(clean);
    while (n > 1 && clean[n - 1] == '/')
        clean[--n] = '\0';
    ss_path_parent(clean, dir, sizeof dir);
    const char *slash = strrchr(clean, '/');
    const char *base = slash ? slash + 1 : clean;
    if (!base[0])
        return;
    /* Best effort: nothing here fails the command, and the error text of an
     * earlier failure the caller is still carrying is kept. */
    char keep[SS_ERROR_MAX];
    snprintf(keep, sizeof keep, "%s", ss_last_error());
    int fd = open(dir[0] ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d;
    if (fd >= 0 && ss_dir_open(fd, dir[0] ? dir : ".", &d) == SS_OK) {
        ss_dir_each(d, dir[0] ? dir : ".", sweep_entry, (void *)base);
        closedir(d);
    }
    ss_fail(SS_OK, "%s", keep);
}

// --- how two paths relate ---------------------------------------------------------------------

/* Appends the components of rest to out (absolute, no trailing slash),
 * dropping "." and popping on "..". */
static ss_status append_lexical(char *out, size_t n, const char *rest) {
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", rest);
    char *save = NULL;
    for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, "."))
            continue;
        size_t len = strlen(out);
        if (!strcmp(c, "..")) {
            char *slash = strrchr(out, '/');
            if (slash && slash != out)
                *slash = '\0';
            else
                snprintf(out, n, "/");
            continue;
        }
        if (snprintf(out + len, n - len, "%s%s", len > 1 ? "/" : "", c) >= (int)(n - len))
            return ss_fail(SS_EINVAL, "%s: path too long", rest);
    }
    return SS_OK;
}

ss_status ss_path_resolve(const char *path, char *out, size_t n) {
    if (!path || !*path)
        return ss_fail(SS_EINVAL, "empty path");
    char full[PATH_MAX], head[PATH_MAX];
    if (path[0] == '/') {
        snprintf(full, sizeof full, "%s", path);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return ss_fail_errno(errno, "%s: cannot resolve the current folder", path);
        if (snprintf(full, sizeof full, "%s/%s", cwd, path) >= (int)sizeof full)
            return ss_fail(SS_EINVAL, "%s: path too long", path);
    }
    /* Shorten head from the right until realpath succeeds; the cut-off part
     * (folders that do not exist yet) is appended lexically. */
    memcpy(head, full, sizeof head);
    for (;;) {
        char real[PATH_MAX];
        if (realpath(head[0] ? head : "/", real)) {
            if (snprintf(out, n, "%s", real) >= (int)n)
                return ss_fail(SS_EINVAL, "%s: path too long", path);
            return append_lexical(out, n, full + strlen(head));
        }
        char *slash = strrchr(head, '/');
        if (!slash)
            return ss_fail(SS_EINVAL, "%s: cannot resolve", path);
        *slash = '\0';
    }
}

/* Is `in` below `dir` (both resolved)? */
static int below(const char *in, const char *dir) {
    size_t n = strlen(dir);
    if (n == 1) /* "/" holds everything */
        return in[1] != '\0';
    return strncmp(in, dir, n) == 0 && in[n] == '/';
}

ss_status ss_path_relate(const char *a, const char *b, ss_path_relation *rel, char *abs_a,
                         char *abs_b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    SS_TRY(ss_path_resolve(a, ra, sizeof ra));
    SS_TRY(ss_path_resolve(b, rb, sizeof rb));
    *rel = !strcmp(ra, rb) ? SS_PATHS_SAME
         : below(ra, rb)   ? SS_PATHS_A_INSIDE_B
         : below(rb, ra)   ? SS_PATHS_B_INSIDE_A
                           : SS_PATHS_DISJOINT;
    if (abs_a)
        memcpy(abs_a, ra, sizeof ra);
    if (abs_b)
        memcpy(abs_b, rb, sizeof rb);
    return SS_OK;
}
