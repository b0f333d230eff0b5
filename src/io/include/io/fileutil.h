/* Internal: small file helpers shared by the io layer and the commands that
 * write output (config.json, index files, reports).
 *
 * Every write goes through ss_write_all so a short write or ENOSPC is never
 * mistaken for success; every replacement of a file goes through a temporary
 * sibling + fsync + rename so a crash leaves the old file or the new one.
 */
#ifndef SS_IO_FILEUTIL_H
#define SS_IO_FILEUTIL_H

#include <dirent.h>
#include <stddef.h>
#include <sys/stat.h>

#include "slidesparse/core.h"

/* Writes all of data to fd, retrying short writes and EINTR. On failure
 * returns ss_fail_errno(..) naming `label` (ENOSPC -> SS_ENOSPC). */
ss_status ss_write_all(int fd, const void *data, size_t len, const char *label);

/* fsyncs the directory that holds `path` (so a rename in it is durable). */
ss_status ss_fsync_parent_dir(const char *path);

/* Writes data to "<path>.tmp.<pid>", fsyncs it, renames it onto path and
 * fsyncs the directory. On any failure the temporary file is removed and the
 * old content of path (if any) is untouched. Only a regular file (or
 * nothing) at path is replaced: a folder, link or FIFO there is an error. */
ss_status ss_write_file_atomic(const char *path, const void *data, size_t len);

/* Opens path read-only after making sure it is a regular file: a FIFO, a
 * device or a folder is refused (SS_EFORMAT naming what it is) without ever
 * blocking in open(). *fd gets the descriptor, *st its fstat. */
ss_status ss_open_regular(const char *path, int *fd, struct stat *st);

/* Reads a whole regular file of at most max_len bytes into a NUL-terminated
 * malloc'd buffer (*len excludes the NUL). Larger files fail with SS_EFORMAT
 * (a config or index file that big is not one). */
ss_status ss_read_file(const char *path, size_t max_len, char **out, size_t *len);

/* Joins dir + "/" + name into buf; SS_EINVAL when it does not fit. */
ss_status ss_path_join(char *buf, size_t n, const char *dir, const char *name);

/* The folder part of path into buf, trailing slashes ignored ("" when path
 * has none, "/" for a path right under the root). */
void ss_path_parent(const char *path, char *buf, size_t n);

/* fdopendir(dfd) (dfd named `path` for errors); on failure closes dfd. */
ss_status ss_dir_open(int dfd, const char *path, DIR **out);

/* What ss_dir_each calls per entry: dfd is the directory, name the entry in
 * it, sub = path/name, st its lstat. Anything but SS_OK stops the walk. */
typedef ss_status (*ss_dir_entry_fn)(int dfd, const char *name, const char *sub,
                                     const struct stat *st, void *user);

/* Calls fn for every entry of d but "." and ".." (`path` names d in errors);
 * stops at the first failure (joining, stat or fn's) and returns it. Leaves d open. */
ss_status ss_dir_each(DIR *d, const char *path, ss_dir_entry_fn fn, void *user);

/* Removes path recursively (files, links, directories; never follows links).
 * Returns SS_EIO naming the first entry that could not be removed. */
ss_status ss_remove_tree(const char *path);

// --- folders a command creates ------------------------------------------------------------

/* mkdir -p of dir itself (trailing slashes ignored). `made` (size n, may be
 * NULL) gets the topmost folder this call created, "" when none existed
 * before: ss_rmdir_made undoes exactly that much after a failure. */
ss_status ss_mkdir_p(const char *dir, char *made, size_t n);
/* ss_mkdir_p of the folder that holds `path` (its last component). */
ss_status ss_mkdir_parents(const char *path, char *made, size_t n);
/* After a failure: removes the folders from `dir` up to `made` (its ancestor
 * or itself, as ss_mkdir_p reported it), deepest first, each only while empty,
 * so a failed command leaves no empty folders; nothing when made is "". */
void ss_rmdir_made(const char *dir, const char *made);

/* ss_write_file_atomic into a folder that may not exist yet: the missing
 * folders are created and, when the write fails (a full disk), removed again. */
ss_status ss_save_file(const char *path, const void *data, size_t len);

/* Removes the leftovers of killed processes next to `path`: entries
 * "<basename>.tmp.<pid>" whose pid is not alive on this machine (a process
 * killed with SIGKILL, or a power cut, cannot clean up after itself). Only
 * that exact name is touched: a copy the two-rename replacement moved aside
 * ("<basename>.old.<pid>") may be the only one left of an output, and stays
 * for the user. Best effort: an entry that cannot be removed stays. */
void ss_sweep_stale(const char *path);

// --- how two paths relate -------------------------------------------------------------------

typedef enum {
    SS_PATHS_DISJOINT = 0,
    SS_PATHS_SAME,        /* the same folder (after resolving links) */
    SS_PATHS_A_INSIDE_B,  /* a is below b */
    SS_PATHS_B_INSIDE_A,  /* b is below a */
} ss_path_relation;

/* Resolves path to an absolute one without requiring it to exist: the longest
 * existing prefix through realpath (links resolved), the rest lexically
 * ("." dropped, ".." pops). SS_EIO / SS_EINVAL when even that fails. */
ss_status ss_path_resolve(const char *path, char *out, size_t n);
/* The relation of a and b after ss_path_resolve of both; *abs_a and *abs_b
 * (PATH_MAX each, may be NULL) get the resolved paths for messages. */
ss_status ss_path_relate(const char *a, const char *b, ss_path_relation *rel, char *abs_a,
                         char *abs_b);

#endif
