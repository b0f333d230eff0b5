/* What the program does when it is told to stop (SIGINT, SIGTERM, SIGHUP) or
 * when a mapped input file shrinks under it (SIGBUS).
 *
 * The handlers run the library's async-signal-safe cleanup (the temporary
 * outputs being written are removed; slidesparse/io.h) and then end the
 * process the way the signal would have: the default action is restored and
 * the signal raised again, so a shell sees 130 for Ctrl-C. During a commit's
 * renames the library postpones the signal and raises it again itself.
 * Only write(2), sigaction, raise and _exit are used here: no stdio, no
 * allocation. A signal ignored at start-up (nohup, a background job of a
 * non-interactive shell) stays ignored. SIGXFSZ is ignored so that a file
 * size limit is an ordinary write error.
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void say(const char *s) {
    ssize_t r = write(STDERR_FILENO, s, strlen(s));
    (void)r;
}

static void die_by(int sig) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    raise(sig); /* blocked while we are in the handler: delivered as it returns */
}

static void on_stop(int sig) {
    if (!ss_cleanup_on_signal(sig))
        return; /* a commit is renaming: the library raises sig again when it is done */
    say(sig == SIGINT ? "slidesparse: interrupted (SIGINT)" : sig == SIGTERM ? "slidesparse: terminated (SIGTERM)"
                                                                              : "slidesparse: hung up (SIGHUP)");
    say("; no partial output left\n");
    die_by(sig);
}

/* SIGBUS inside a mapped input: the file was truncated (or replaced in
 * place) while we read it. Anywhere else it is a real crash: clean up and
 * let it dump core. */
static void on_bus(int sig, siginfo_t *si, void *uctx) {
    (void)uctx;
    ss_cleanup_now();
    const char *file = ss_cleanup_mapped_file(si->si_addr);
    if (!file)
        die_by(sig);
    say("slidesparse: ");
    say(file);
    say(": input changed while reading (the file shrank or was replaced); stopped, no output written\n");
    _exit(1);
}

static void install(int sig, struct sigaction *sa) {
    struct sigaction old;
    if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_IGN && sig != SIGBUS)
        return;
    sigaction(sig, sa, NULL);
}

void cli_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    /* one cleanup at a time: the other stop signals wait while it runs */
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGHUP);
    sa.sa_handler = on_stop;
    install(SIGINT, &sa);
    install(SIGTERM, &sa);
    install(SIGHUP, &sa);
    sa.sa_handler = NULL;
    sa.sa_sigaction = on_bus;
    sa.sa_flags = SA_SIGINFO;
    install(SIGBUS, &sa);
    /* Beyond a file-size limit (ulimit -f) a write then fails with EFBIG and
     * the command reports it and removes its output, instead of being killed
     * with its temporary files left behind. */
    signal(SIGXFSZ, SIG_IGN);
}
