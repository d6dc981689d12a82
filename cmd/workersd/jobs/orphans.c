/*
 * Orphans: processes a Command started that left the run's process group
 * (setsid, setpgid) and outlived the shell. workersd makes itself a child
 * subreaper, so they are reparented to it instead of init, and reaps or
 * kills them without ever touching a worker's own child.
 *
 * Why that is safe: the kernel hands an orphan to the first live thread of
 * the subreaper, the main thread, which runs the event loop and spawns
 * nothing itself. waitpid with __WNOTHREAD waits only for the calling
 * thread's children, so the main thread reaps orphans only, never a shell
 * that a worker thread spawned and is about to reap. A child of ours keeps
 * its pid until we reap it, so killing the pids listed in
 * /proc/self/task/TID/children cannot hit a stranger. A plugin's children
 * are not the main thread's either: job_init runs on its generation's
 * thread, job_new and job_do on the workers'.
 *
 * What counts as escaped: a run's own processes in its group are SIGKILLed
 * with the group when the shell exits, yet the ones the shell left are
 * reparented to us at its exit, and may still be dying when the sweep lists
 * them. So the sweep counts (and the daemon warns about) only those that
 * were alive and not already dying when it killed them -- dying means a
 * zombie, exiting (PF_EXITING), or with SIGKILL pending (a fatal signal
 * turns into a pending SIGKILL for the whole process) -- and that its
 * SIGKILL killed: a process a fatal signal of its run (the cancel's
 * SIGTERM) was ending reports that signal, even when the sweep met it in
 * the moment between its SIGKILL being taken and PF_EXITING being set.
 *
 * All three functions run on the main thread only.
 */
#include "jobs.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The kernel's flag of a task in do_exit (include/linux/sched.h). */
#define PF_EXITING 0x00000004u

/* Rounds of kill-and-reap: each round takes the orphans that the previous
 * one's victims left behind; a tree deeper than this is left to init. */
#define KILL_ROUNDS 64

int
wd_orphans_adopt(void)
{
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : -errno;
}

void
wd_orphans_reap(void)
{
    while (waitpid(-1, NULL, WNOHANG | __WNOTHREAD) > 0)
        ;
}

/* Whether pid is on its way out already (see the top of the file). */
static bool
dying(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return true; /* gone */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* After the command name, which may hold ')': state, then flags is
     * the 7th field. */
    const char *p = strrchr(buf, ')');
    char state = 0;
    unsigned flags = 0;
    if (p == NULL ||
        sscanf(p + 1, " %c %*d %*d %*d %*d %*d %u", &state, &flags) != 2)
        return true;
    if (state == 'Z' || state == 'X' || (flags & PF_EXITING) != 0)
        return true;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "re")) == NULL)
        return true;
    unsigned long long pending = 0, mask;
    while (fgets(buf, sizeof buf, f) != NULL)
        if (sscanf(buf, "SigPnd: %llx", &mask) == 1 ||
            sscanf(buf, "ShdPnd: %llx", &mask) == 1)
            pending |= mask;
    fclose(f);
    return (pending & (1ull << (SIGKILL - 1))) != 0;
}

/* A child the sweep killed: whether it counts as escaped so far. */
struct victim {
    pid_t pid;
    bool escaped;
};

/* SIGKILLs the calling thread's children, listing them in *v; returns how
 * many, or a negative code when /proc cannot list them. */
static int
kill_children(struct victim **v, size_t *cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)gettid());
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -errno;
    int n = 0, pid;
    while (fscanf(f, "%d", &pid) == 1) {
        if ((size_t)n == *cap) {
            size_t ncap = *cap != 0 ? 2 * *cap : 16;
            struct victim *g = realloc(*v, ncap * sizeof *g);
            if (g == NULL)
                break; /* the rest is killed in the next round */
            *v = g;
            *cap = ncap;
        }
        (*v)[n].escaped = !dying(pid);
        (*v)[n++].pid = pid;
        kill(pid, SIGKILL);
    }
    fclose(f);
    return n;
}

/* How long the kill waits, in all, for its victims to be reaped: one stuck
 * in the kernel (state D) must not hold up the daemon's exit forever. */
#define KILL_REAP_NS (2 * 1000000000ull)

/* Reaps v, waiting until end at most; returns how many escaped: not dying
 * when listed, and killed by our SIGKILL (one that a fatal signal of its
 * run, SIGTERM say, was already ending reports that signal, even if it
 * passed the dying check in the moment between the two). */
static int
reap_victims(const struct victim *v, int n, uint64_t end)
{
    int escaped = 0;
    for (int i = 0; i < n; i++) {
        int st = 0;
        pid_t r;
        while ((r = waitpid(v[i].pid, &st, WNOHANG | __WNOTHREAD)) == 0 &&
               wd_now_ns() < end) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        if (v[i].escaped &&
            (r != v[i].pid || (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)))
            escaped++;
    }
    return escaped;
}

int
wd_orphans_kill(void)
{
    struct victim *v = NULL;
    size_t cap = 0;
    int n = 0, total = 0;
    uint64_t end = wd_deadline(wd_now_ns(), KILL_REAP_NS);

    /* Those that ended by themselves are reaped, not counted as killed. */
    wd_orphans_reap();
    for (int round = 0; round < KILL_ROUNDS; round++) {
        n = kill_children(&v, &cap);
        if (n <= 0)
            break;
        /* Reaped before the next round lists the children again; their own
         * children are reparented to us meanwhile, for that round. */
        total += reap_victims(v, n, end);
        if (wd_now_ns() >= end)
            break;
    }
    free(v);
    return n < 0 ? n : total;
}
