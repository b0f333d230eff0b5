/* The cleanup registry: besides the error text, the only process-wide mutable
 * state of the library, and kept in this one file.
 *
 * Why a registry and removal inside the handler, rather than a flag the main
 * flow polls: SIGBUS (a mapped input shrank) cannot return to the faulting
 * code, and a flag would only be seen after the tensor or fsync in progress,
 * seconds later on a large model. So the handler itself removes the
 * temporary outputs, with async-signal-safe calls only: the paths are
 * recorded up front (pointers to strings the writers own), the tree walk uses
 * openat/getdents64/unlinkat on a stack buffer, and nothing allocates, locks
 * or prints. Slots are claimed with C11 atomics so writers on several threads
 * never block the handler or each other.
 */
#include "io/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "slidesparse/io.h"

#define PATH_SLOTS 64  /* convert writes at most 16 outputs + their parents at once */
#define MAP_SLOTS 512  /* mapped shards of every checkpoint open at once */
#define MAX_DEPTH 16   /* our outputs are 1-2 levels deep */

enum { SLOT_FREE = 0, SLOT_BUSY, SLOT_LIVE };

static struct {
    atomic_int state[PATH_SLOTS];
    const char *path[PATH_SLOTS];
    ss_cleanup_kind kind[PATH_SLOTS];
    atomic_int map_state[MAP_SLOTS];
    const void *map_lo[MAP_SLOTS];
    size_t map_len[MAP_SLOTS];
    const char *map_path[MAP_SLOTS];
    atomic_int hold;
    volatile sig_atomic_t pending; /* a signal that arrived during a hold */
} reg;

static int claim(atomic_int *state, int n) {
    for (int i = 0; i < n; i++) {
        int want = SLOT_FREE;
        if (atomic_compare_exchange_strong(&state[i], &want, SLOT_BUSY))
            return i;
    }
    return -1;
}

int ss_cleanup_add(const char *path, ss_cleanup_kind kind) {
    if (!path || !*path)
        return -1;
    int i = claim(reg.state, PATH_SLOTS);
    if (i >= 0) {
        reg.path[i] = path;
        reg.kind[i] = kind;
        atomic_store(&reg.state[i], SLOT_LIVE);
    }
    return i;
}

void ss_cleanup_del(int slot) {
    if (slot >= 0 && slot < PATH_SLOTS)
        atomic_store(&reg.state[slot], SLOT_FREE);
}

void ss_cleanup_del_path(const char *path) {
    for (int i = 0; path && i < PATH_SLOTS; i++)
        if (atomic_load(&reg.state[i]) == SLOT_LIVE && !strcmp(reg.path[i], path)) {
            atomic_store(&reg.state[i], SLOT_FREE);
            return;
        }
}

int ss_cleanup_add_map(const void *addr, size_t len, const char *path) {
    int i = claim(reg.map_state, MAP_SLOTS);
    if (i >= 0) {
        reg.map_lo[i] = addr;
        reg.map_len[i] = len;
        reg.map_path[i] = path;
        atomic_store(&reg.map_state[i], SLOT_LIVE);
    }
    return i;
}

void ss_cleanup_del_map(int slot) {
    if (slot >= 0 && slot < MAP_SLOTS)
        atomic_store(&reg.map_state[slot], SLOT_FREE);
}

void ss_cleanup_hold(void) { atomic_fetch_add(&reg.hold, 1); }

void ss_cleanup_release(void) {
    if (atomic_fetch_sub(&reg.hold, 1) == 1 && reg.pending) {
        int sig = reg.pending;
        reg.pending = 0;
        raise(sig); /* the handler postponed it: deliver it now that the step is whole */
    }
}

// --- async-signal-safe removal -----------------------------------------------------------

struct dirent64_raw {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

#define TYPE_DIR 4     /* DT_DIR */
#define TYPE_UNKNOWN 0 /* DT_UNKNOWN: some file systems do not say */

static void remove_at(int dfd, const char *name, int files_too, int depth);

/* One pass over the open folder fd; returns how many entries it saw. */
static int remove_children(int fd, int files_too, int depth) {
    _Alignas(8) char buf[2048];
    int seen = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0)
            return seen;
        for (long off = 0; off < n;) {
            struct dirent64_raw *d = (struct dirent64_raw *)(buf + off);
            off += d->d_reclen;
            const char *nm = d->d_name;
            if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0')))
                continue;
            seen++;
            if (d->d_type == TYPE_DIR || d->d_type == TYPE_UNKNOWN || files_too)
                remove_at(fd, nm, files_too, depth + 1);
        }
    }
}

/* Removes name (relative to dfd): a file only when files_too, a folder after
 * its content. Never follows a link. Errors are ignored: this is best effort
 * in a process that is about to end. */
static void remove_at(int dfd, const char *name, int files_too, int depth) {
    if (files_too && unlinkat(dfd, name, 0) == 0)
        return;
    if (depth > MAX_DEPTH)
        return;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    /* Removing entries while listing may make getdents skip some: list again
     * from the start until a pass finds nothing left (a few passes at most). */
    for (int pass = 0; pass < 4 && remove_children(fd, files_too, depth) > 0; pass++)
        lseek(fd, 0, SEEK_SET);
    close(fd);
    unlinkat(dfd, name, AT_REMOVEDIR);
}

static void remove_kind(ss_cleanup_kind kind) {
    for (int i = 0; i < PATH_SLOTS; i++)
        if (atomic_load(&reg.state[i]) == SLOT_LIVE && reg.kind[i] == kind)
            remove_at(AT_FDCWD, reg.path[i], kind == SS_CLEANUP_TREE, 0);
}

void ss_cleanup_now(void) {
    remove_kind(SS_CLEANUP_TREE); /* the outputs first, then the folders made for them */
    remove_kind(SS_CLEANUP_EMPTY_DIRS);
}

int ss_cleanup_on_signal(int sig) {
    if (atomic_load(&reg.hold) > 0) {
        reg.pending = sig;
        return 0;
    }
    ss_cleanup_now();
    return 1;
}

const char *ss_cleanup_mapped_file(const void *addr) {
    uintptr_t a = (uintptr_t)addr;
    for (int i = 0; i < MAP_SLOTS; i++) {
        uintptr_t lo = (uintptr_t)reg.map_lo[i];
        if (atomic_load(&reg.map_state[i]) == SLOT_LIVE && a >= lo && a - lo < reg.map_len[i])
            return reg.map_path[i];
    }
    return NULL;
}
