/* Internal: the registry behind the cleanup on signals (public half in
 * slidesparse/io.h, "cleanup when a signal ends the process").
 *
 * The io layer registers what a signal handler must know while it exists:
 * the temporary outputs being written (to remove them) and the mapped input
 * files (to name the one that shrank when SIGBUS arrives). Entries point to
 * caller-owned strings, which must stay valid until the entry is removed.
 * Registering never fails a command: when the table is full (-1) that entry
 * is just not cleaned up on a signal, as before the registry existed.
 */
#ifndef SS_IO_CLEANUP_H
#define SS_IO_CLEANUP_H

#include <stddef.h>

typedef enum {
    SS_CLEANUP_TREE = 0,   /* a temporary file or folder: removed with everything in it */
    SS_CLEANUP_EMPTY_DIRS, /* a folder created for an output: only its empty folders go */
} ss_cleanup_kind;

/* Each returns a slot for ss_cleanup_del, or -1 (table full). */
int ss_cleanup_add(const char *path, ss_cleanup_kind kind);
/* The mapping [addr, addr + len) of the input file `path`. */
int ss_cleanup_add_map(const void *addr, size_t len, const char *path);
void ss_cleanup_del(int slot); /* -1: nothing */
/* ss_cleanup_del of the live temporary output `path` (none: nothing). */
void ss_cleanup_del_path(const char *path);

/* Brackets a step that must not be cut in half (the renames of a commit):
 * a signal that arrives in between is recorded by ss_cleanup_on_signal and
 * raised again by the matching release, once the step is complete. */
void ss_cleanup_hold(void);
void ss_cleanup_release(void);

#endif
