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

/* convert writes at most 16 outputs + their parents at once; the rest is for
 * the mapped shards of every checkpoint open at once */
#define SLOTS 576
#define MAX_DEPTH 16 /* our outputs are 1-2 levels deep */
#define KIND_MAP 100 /* a mapped input file, next to the ss_cleanup_kind values */

enum { SLOT_FREE = 0, SLOT_BUSY, SLOT_LIVE };

typedef struct {
    atomic_int state;
    int kind;          /* ss_cleanup_kind or KIND_MAP */
    const char *path;
    const void *lo;    /* KIND_MAP: the mapping */
    size_t len;
} slot;

static struct {
    slot s[SLOTS];
    atomic_int hold;
    volatile sig_atomic_t pending; /* a signal that arrived during a hold */
} reg;

/* Claims a free slot (compare-and-swap: several threads may register at
 * once) and publishes it whole: the handler only reads LIVE slots. */
static int put(int kind, const char *path, const void *lo, size_t len) {
    for (int i = 0; i < SLOTS; i++) {
        int want = SLOT_FREE;
        if (!atomic_compare_exchange_strong(&reg.s[i].state, &want, SLOT_BUSY))
            continue;
        reg.s[i].kind = kind;
        reg.s[i].path = path;
        reg.s[i].lo = lo;
        reg.s[i].len = len;
        atomic_store(&reg.s[i].state, SLOT_LIVE);
        return i;
    }
    return -1;
}

static int live(int i, int kind) {
    return atomic_load(&reg.s[i].state) == SLOT_LIVE && reg.s[i].kind == kind;
}

int ss_cleanup_add(const char *path, ss_cleanup_kind kind) {
    return path && *path ? put((int)kind, path, NULL, 0) : -1;
}

int ss_cleanup_add_map(const void *addr, size_t len, const char *path) {
    return put(KIND_MAP, path, addr, len);
}

void ss_cleanup_del(int i) {
    if (i >= 0 && i < SLOTS)
        atomic_store(&reg.s[i].state, SLOT_FREE);
}

void ss_cleanup_del_path(const char *path) {
    for (int i = 0; path && i < SLOTS; i++)
        if ((live(i, SS_CLEANUP_TREE) || live(i, SS_CLEANUP_EMPTY_DIRS)) &&
            !strcmp(reg.s[i].path, path)) {
            ss_cleanup_del(i);
            return;
        }
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
    for (int i = 0; i < SLOTS; i++)
        if (live(i, (int)kind))
            remove_at(AT_FDCWD, reg.s[i].path, kind == SS_CLEANUP_TREE, 0);
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
    for (int i = 0; i < SLOTS; i++) {
        uintptr_t lo = (uintptr_t)reg.s[i].lo;
        if (live(i, KIND_MAP) && a >= lo && a - lo < reg.s[i].len)
            return reg.s[i].path;
    }
    return NULL;
}
