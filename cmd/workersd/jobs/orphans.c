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
 * /proc/self/task/TID/children cannot hit a stranger.
 *
 * All three functions run on the main thread only.
 */
#include "jobs.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* SIGKILLs the calling thread's children; returns how many, or a negative
 * code when /proc cannot list them. */
static int
kill_children(pid_t **pids, size_t *cap)
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
            pid_t *g = realloc(*pids, ncap * sizeof *g);
            if (g == NULL)
                break; /* the rest is killed in the next round */
            *pids = g;
            *cap = ncap;
        }
        kill(pid, SIGKILL);
        (*pids)[n++] = pid;
    }
    fclose(f);
    return n;
}

/* How long the kill waits, in all, for its victims to be reaped: one stuck
 * in the kernel (state D) must not hold up the daemon's exit forever. */
#define KILL_REAP_NS (2 * 1000000000ull)

int
wd_orphans_kill(void)
{
    pid_t *pids = NULL;
    size_t cap = 0;
    int n = 0, total = 0;
    uint64_t end = wd_deadline(wd_now_ns(), KILL_REAP_NS);

    /* Those that ended by themselves are reaped, not counted as killed. */
    wd_orphans_reap();
    for (int round = 0; round < KILL_ROUNDS; round++) {
        n = kill_children(&pids, &cap);
        if (n <= 0)
            break;
        /* Reaped before the next round lists the children again; their own
         * children are reparented to us meanwhile, for that round. */
        for (int i = 0; i < n; i++) {
            while (waitpid(pids[i], NULL, WNOHANG | __WNOTHREAD) == 0 &&
                   wd_now_ns() < end) {
                struct timespec ms = {0, 1000000};
                nanosleep(&ms, NULL);
            }
        }
        total += n;
        if (wd_now_ns() >= end)
            break;
    }
    free(pids);
    return n < 0 ? n : total;
}
