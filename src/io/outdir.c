/* Atomic output directories: a command writes into "<final>.tmp.<pid>" and
 * renames it onto <final> only when everything is written and synced, so a
 * kill at any moment leaves the old state or the complete new directory
 * (plus, at worst, a *.tmp.* sibling that the next run replaces).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "slidesparse/io.h"

ss_status ss_outdir_begin(const char *final_dir, int force, char *tmp, size_t n) {
    struct stat st;
    if (!final_dir || !*final_dir)
        return ss_fail(SS_EINVAL, "output directory: empty path");
    if (lstat(final_dir, &st) == 0 && !force)
        return ss_fail(SS_EEXIST, "%s: already exists (use --force to replace it)", final_dir);
    int w = snprintf(tmp, n, "%s.tmp.%ld", final_dir, (long)getpid());
    if (w < 0 || (size_t)w >= n)
        return ss_fail(SS_EINVAL, "%s: path too long for its temporary name", final_dir);
    /* Left by an earlier process that had our pid and was killed. */
    SS_TRY(ss_remove_tree(tmp));
    if (mkdir(tmp, 0755) != 0)
        return ss_fail_errno(errno, "%s: cannot create output directory", tmp);
    return SS_OK;
}

static ss_status sync_tree(int dfd, const char *path);

static ss_status sync_entry(int dfd, const char *name, const char *sub, const struct stat *st,
                            void *user) {
    if (!S_ISDIR(st->st_mode) && !S_ISREG(st->st_mode))
        return SS_OK;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ss_fail_errno(errno, "%s: cannot open", sub);
    if (S_ISDIR(st->st_mode))
        return sync_tree(fd, sub);
    ss_status s = SS_OK;
    if (fsync(fd) != 0)
        s = ss_fail_errno(errno, "%s: fsync failed", sub);
    close(fd);
    return s;
}

/* fsyncs every regular file under dfd and then the directory itself: the
 * rename must not become durable before the data it publishes. */
static ss_status sync_tree(int dfd, const char *path) {
    DIR *d;
    SS_TRY(ss_dir_open(dfd, path, &d));
    ss_status s = ss_dir_each(d, path, sync_entry, NULL);
    if (s == SS_OK && fsync(dirfd(d)) != 0 && errno != EINVAL)
        s = ss_fail_errno(errno, "%s: fsync failed", path);
    closedir(d);
    return s;
}

ss_status ss_outdir_commit(const char *tmp, const char *final_dir) {
    int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ss_fail_errno(errno, "%s: cannot open output directory", tmp);
    SS_TRY(sync_tree(fd, tmp));
    struct stat st;
    if (lstat(final_dir, &st) != 0) {
        if (rename(tmp, final_dir) != 0)
            return ss_fail_errno(errno, "%s: cannot rename to %s", tmp, final_dir);
        return ss_fsync_parent_dir(final_dir);
    }
    /* Replace. RENAME_EXCHANGE swaps the two directories in one step, so
     * there is no moment without a complete final_dir; the old output then
     * sits at tmp and is removed. Filesystems without it (EINVAL/ENOSYS) get
     * the two-rename fallback, which has a short window without final_dir. */
    const char *old = tmp;
    char aside[PATH_MAX];
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final_dir, RENAME_EXCHANGE) != 0) {
        if (errno != EINVAL && errno != ENOSYS)
            return ss_fail_errno(errno, "%s: cannot exchange with %s", tmp, final_dir);
        int w = snprintf(aside, sizeof aside, "%s.old.%ld", final_dir, (long)getpid());
        if (w < 0 || (size_t)w >= sizeof aside)
            return ss_fail(SS_EINVAL, "%s: path too long", final_dir);
        old = aside;
        SS_TRY(ss_remove_tree(old));
        if (rename(final_dir, old) != 0)
            return ss_fail_errno(errno, "%s: cannot move the old output aside to %s", final_dir, old);
        if (rename(tmp, final_dir) != 0) {
            int err = errno;
            rename(old, final_dir); /* put the old output back */
            return ss_fail_errno(err, "%s: cannot rename to %s", tmp, final_dir);
        }
    }
    SS_TRY(ss_fsync_parent_dir(final_dir));
    ss_status s = ss_remove_tree(old);
    if (s != SS_OK) {
        char why[SS_ERROR_MAX]; /* ss_fail must not read the buffer it writes */
        snprintf(why, sizeof why, "%s", ss_last_error());
        return ss_fail(SS_EIO, "%s: new output is in place, but removing the old copy failed: %s",
                       final_dir, why);
    }
    return SS_OK;
}

void ss_outdir_abort(const char *tmp) {
    if (tmp && *tmp)
        ss_remove_tree(tmp);
}
