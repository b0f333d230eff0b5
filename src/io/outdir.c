/* Atomic output directories: a command writes into "<final>.tmp.<pid>" and
 * renames it onto <final> only when everything is written and synced, so a
 * kill at any moment leaves the old state or the complete new directory.
 * The temporary directory is registered for removal on a signal
 * (io/cleanup.h); what SIGKILL leaves is swept by the next run (fileutil.h,
 * ss_sweep_stale).
 *
 * Nothing that exists is replaced without force: begin refuses an existing
 * final, and commit refuses one that appeared while the command ran
 * (RENAME_NOREPLACE), so of two runs into the same output one fails with
 * "already exists" instead of silently deleting the other's result.
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
#include "io/cleanup.h"
#include "io/fileutil.h"
#include "slidesparse/io.h"

/* final_dir without trailing slashes ("q/" and "q" are the same output). */
static ss_status clean_final(const char *final_dir, char *buf, size_t n) {
    if (!final_dir || !*final_dir)
        return ss_fail(SS_EINVAL, "output directory: empty path");
    if (snprintf(buf, n, "%s", final_dir) >= (int)n)
        return ss_fail(SS_EINVAL, "%s: path too long", final_dir);
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    const char *last = strrchr(buf, '/');
    last = last ? last + 1 : buf;
    if (!*last || !strcmp(last, ".") || !strcmp(last, ".."))
        return ss_fail(SS_EINVAL, "%s: cannot be an output directory (name a new folder)", final_dir);
    return SS_OK;
}

/* --force replaces an earlier output, not whatever folder was named: an
 * existing final must be an empty folder or hold `marker`. */
static ss_status check_replaceable(const char *final, const char *final_dir, const char *marker) {
    struct stat st;
    if (lstat(final, &st) != 0 || !marker)
        return SS_OK;
    if (!S_ISDIR(st.st_mode))
        return ss_fail(SS_EEXIST, "%s: exists and is not a folder; not replaced, even with --force",
                       final_dir);
    char path[PATH_MAX];
    SS_TRY(ss_path_join(path, sizeof path, final, marker));
    if (lstat(path, &st) == 0)
        return SS_OK;
    DIR *d = opendir(final);
    int empty = 1;
    for (struct dirent *e; d && empty && (e = readdir(d));)
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    if (d && empty)
        return SS_OK;
    return ss_fail(SS_EEXIST, "%s: exists and is not an earlier output (no %s in it); not replaced, "
                   "even with --force: remove it yourself or choose another output", final_dir, marker);
}

ss_status ss_outdir_begin(const char *final_dir, int force, const char *marker, char *tmp,
                          size_t n) {
    char final[PATH_MAX];
    struct stat st;
    SS_TRY(clean_final(final_dir, final, sizeof final));
    ss_sweep_stale(final);
    if (lstat(final, &st) == 0 && !force)
        return ss_fail(SS_EEXIST, "%s: already exists (use --force to replace it)", final_dir);
    SS_TRY(check_replaceable(final, final_dir, marker));
    int w = snprintf(tmp, n, "%s.tmp.%ld", final, (long)getpid());
    if (w < 0 || (size_t)w >= n)
        return ss_fail(SS_EINVAL, "%s: path too long for its temporary name", final_dir);
    /* Left by an earlier process that had our pid and was killed. */
    SS_TRY(ss_remove_tree(tmp));
    if (mkdir(tmp, 0755) != 0)
        return ss_fail_errno(errno, "%s: cannot create output directory", tmp);
    /* tmp is the caller's buffer and lives until commit or abort */
    ss_cleanup_add(tmp, SS_CLEANUP_TREE);
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

/* Moves tmp onto a final that does not exist; SS_EEXIST when one appeared
 * meanwhile (tmp then stays for the caller's abort). */
static ss_status commit_new(const char *tmp, const char *final) {
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0)
        return SS_OK;
    int err = errno;
    if (err == EINVAL || err == ENOSYS) {
        /* No RENAME_NOREPLACE here: rename() refuses a non-empty folder
         * (ENOTEMPTY) or a file (ENOTDIR); only an empty folder appearing in
         * this short window would be replaced. */
        struct stat st;
        if (lstat(final, &st) == 0)
            err = EEXIST;
        else if (rename(tmp, final) == 0)
            return SS_OK;
        else
            err = errno;
    }
    if (err == EEXIST || err == ENOTEMPTY || err == ENOTDIR)
        return ss_fail(SS_EEXIST, "%s: already exists (it appeared while this command ran; use "
                       "--force to replace it); nothing was written", final);
    return ss_fail_errno(err, "%s: cannot rename to %s", tmp, final);
}

/* Replaces an existing final (--force). RENAME_EXCHANGE swaps the two
 * directories in one step, so there is no moment without a complete final;
 * the old output then sits at tmp and is removed. Filesystems without it
 * (EINVAL/ENOSYS) get the two-rename fallback, which has a short window
 * without final (signals wait for it; after a SIGKILL there the old output
 * is left at final.old.<pid>). */
static ss_status commit_replace(const char *tmp, const char *final, const char **old,
                                char *aside, size_t n) {
    *old = tmp;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_EXCHANGE) == 0)
        return SS_OK;
    if (errno == ENOENT) /* final vanished meanwhile: nothing to replace */
        return commit_new(tmp, final);
    if (errno != EINVAL && errno != ENOSYS)
        return ss_fail_errno(errno, "%s: cannot exchange with %s", tmp, final);
    int w = snprintf(aside, n, "%s.old.%ld", final, (long)getpid());
    if (w < 0 || (size_t)w >= n)
        return ss_fail(SS_EINVAL, "%s: path too long", final);
    *old = aside;
    SS_TRY(ss_remove_tree(aside));
    if (rename(final, aside) != 0)
        return ss_fail_errno(errno, "%s: cannot move the old output aside to %s", final, aside);
    if (rename(tmp, final) != 0) {
        int err = errno;
        rename(aside, final); /* put the old output back */
        return ss_fail_errno(err, "%s: cannot rename to %s", tmp, final);
    }
    return SS_OK;
}

ss_status ss_outdir_commit(const char *tmp, const char *final_dir, int force) {
    char final[PATH_MAX], aside[PATH_MAX];
    SS_TRY(clean_final(final_dir, final, sizeof final));
    int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ss_fail_errno(errno, "%s: cannot open output directory", tmp);
    SS_TRY(sync_tree(fd, tmp));
    /* A signal between the renames would leave half a swap: it waits until
     * they are done (io/cleanup.h). */
    const char *old = NULL;
    struct stat st;
    ss_cleanup_hold();
    ss_status s = force && lstat(final, &st) == 0
                      ? commit_replace(tmp, final, &old, aside, sizeof aside)
                      : commit_new(tmp, final);
    ss_cleanup_release();
    SS_TRY(s);
    ss_cleanup_del_path(tmp);
    SS_TRY(ss_fsync_parent_dir(final));
    s = old ? ss_remove_tree(old) : SS_OK;
    if (s != SS_OK) {
        char why[SS_ERROR_MAX]; /* ss_fail must not read the buffer it writes */
        snprintf(why, sizeof why, "%s", ss_last_error());
        return ss_fail(SS_EIO, "%s: new output is in place, but removing the old copy failed: %s",
                       final, why);
    }
    return SS_OK;
}

void ss_outdir_abort(const char *tmp) {
    if (tmp && *tmp) {
        ss_remove_tree(tmp);
        ss_cleanup_del_path(tmp);
    }
}

ss_status ss_outdir_check_input(const char *out, const char *in, int whole) {
    ss_path_relation rel;
    char ro[PATH_MAX], ri[PATH_MAX], keep[SS_ERROR_MAX];
    snprintf(keep, sizeof keep, "%s", ss_last_error());
    if (!out || !in || ss_path_relate(out, in, &rel, ro, ri) != SS_OK) {
        ss_fail(SS_OK, "%s", keep); /* unresolvable: opening the input will say why */
        return SS_OK;
    }
    if (rel == SS_PATHS_SAME)
        return ss_fail(SS_EINVAL, "%s: is the input %s itself (both are %s); choose another output",
                       out, in, ro);
    if (rel == SS_PATHS_A_INSIDE_B)
        return ss_fail(SS_EINVAL, "%s: is inside the input %s (%s in %s); choose an output outside it",
                       out, in, ro, ri);
    if (rel == SS_PATHS_B_INSIDE_A && whole)
        return ss_fail(SS_EINVAL, "%s: contains the input %s (%s in %s), and replacing it would "
                       "delete the input; choose another output", out, in, ri, ro);
    return SS_OK;
}

/* Why dir (which exists) cannot take our files, or NULL. */
static const char *unusable_dir(const char *dir, const struct stat *st) {
    if (!S_ISDIR(st->st_mode))
        return "exists and is not a folder";
    if (access(dir, W_OK | X_OK) != 0)
        return errno == EROFS ? "is on a read-only file system" : "is not writable";
    return NULL;
}

ss_status ss_outdir_check_writable(const char *dir, const char *what) {
    if (!dir || !*dir)
        return ss_fail(SS_EINVAL, "%s: empty path", what);
    char cur[PATH_MAX];
    if (snprintf(cur, sizeof cur, "%s", dir) >= (int)sizeof cur)
        return ss_fail(SS_EINVAL, "%s %s: path too long", what, dir);
    size_t len = strlen(cur);
    while (len > 1 && cur[len - 1] == '/')
        cur[--len] = '\0';
    /* the folder itself, else its nearest existing ancestor, which must take
     * the folders we would create */
    for (int self = 1;; self = 0) {
        struct stat st;
        if (stat(cur[0] ? cur : ".", &st) == 0) {
            const char *why = unusable_dir(cur[0] ? cur : ".", &st);
            if (!why)
                return SS_OK;
            if (self)
                return ss_fail(SS_EINVAL, "%s %s: %s", what, dir, why);
            return ss_fail(SS_EINVAL, "%s %s: cannot be created: %s %s", what, dir,
                           cur[0] ? cur : ".", why);
        }
        if (errno != ENOENT && errno != ENOTDIR) /* ENOTDIR: an ancestor is a file, found below */
            return ss_fail(SS_EINVAL, "%s %s: cannot be used: %s", what, dir, strerror(errno));
        char up[PATH_MAX];
        ss_path_parent(cur, up, sizeof up);
        if (!strcmp(up, cur)) /* "/" or "." missing: nothing left to try */
            return ss_fail(SS_EINVAL, "%s %s: no existing folder above it", what, dir);
        memcpy(cur, up, sizeof cur);
    }
}
