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
 * old content of path (if any) is untouched. */
ss_status ss_write_file_atomic(const char *path, const void *data, size_t len);

/* Reads a whole regular file of at most max_len bytes into a NUL-terminated
 * malloc'd buffer (*len excludes the NUL). Larger files fail with SS_EFORMAT
 * (a config or index file that big is not one). */
ss_status ss_read_file(const char *path, size_t max_len, char **out, size_t *len);

/* Joins dir + "/" + name into buf; SS_EINVAL when it does not fit. */
ss_status ss_path_join(char *buf, size_t n, const char *dir, const char *name);

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

#endif
