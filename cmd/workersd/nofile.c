/*
 * nofile.c: the descriptor limit (RLIMIT_NOFILE) the daemon needs, checked
 * once at start, and the one its jobs get.
 *
 * What the daemon holds: stdin, stdout and stderr; the loop's epoll and
 * wake-up descriptors (libev aborts, SIGABRT, when it cannot make them);
 * the notify socket; the control socket and the metrics listener, with a
 * client each; per generation its deadline thread's eventfd and a plugin's
 * private copy, two generations during a reload: NOFILE_DAEMON in all,
 * rounded up. Per worker: its context's eventfd, which the deadline thread
 * polls. A command's shell costs the daemon none: posix_spawn reports an
 * exec failure through shared memory, not a pipe, and the child's own
 * table is its own.
 *
 * Policy: the soft limit is raised (as far as the hard one allows) only
 * when it is below what Max workers need, never to the hard limit just in
 * case: the jobs inherit it, and select() code or close-all loops in them
 * break with a large one. When it was raised, the command kind restores
 * the original for each run (wd_nofile_original), so a job sees the limit
 * workersd was started with. A limit that cannot hold Initial workers
 * stops the start with one line saying what is needed (exit 70); one that
 * holds fewer than Max is a warning, and the workers beyond it fail their
 * runs with "too many open files".
 *
 * State: the original soft limit, written by wd_nofile_check() on the main
 * thread before any thread starts, read-only afterwards.
 */
#include "workersd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#define NOFILE_DAEMON 16u
#define NOFILE_PER_WORKER 1u

static unsigned long long original; /* the soft limit we raised, or 0 */

/* What n workers need; n == 0: unlimited. */
static rlim_t
needed(unsigned n)
{
    return n == 0 ? RLIM_INFINITY
                  : NOFILE_DAEMON + (rlim_t)n * NOFILE_PER_WORKER;
}

/* The workers a limit can hold. */
static unsigned long long
holds(rlim_t limit)
{
    return limit <= NOFILE_DAEMON ? 0
                                  : (limit - NOFILE_DAEMON) / NOFILE_PER_WORKER;
}

int
wd_nofile_check(const workers_config *pool, char *err, size_t errlen)
{
    unsigned initial = pool->initial != 0 ? pool->initial
                       : pool->min > 1    ? pool->min
                                          : 1;
    rlim_t need_max = needed(pool->max);
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        snprintf(err, errlen, "cannot read the descriptor limit: %s",
                 strerror(errno));
        return -1;
    }
    if (rl.rlim_cur < need_max && rl.rlim_cur < rl.rlim_max) {
        struct rlimit raised = {need_max < rl.rlim_max ? need_max : rl.rlim_max,
                                rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            original = rl.rlim_cur;
            rl = raised;
        }
    }
    if (rl.rlim_cur < needed(initial)) {
        snprintf(err, errlen,
                 "the descriptor limit (RLIMIT_NOFILE, ulimit -n, "
                 "LimitNOFILE=) is %llu: %u worker%s %llu (%u for the "
                 "daemon, %u per worker)",
                 (unsigned long long)rl.rlim_cur, initial,
                 initial == 1 ? " needs" : "s need",
                 (unsigned long long)needed(initial), NOFILE_DAEMON,
                 NOFILE_PER_WORKER);
        return -1;
    }
    if (pool->max != 0 && rl.rlim_cur < need_max)
        wd_log(WD_LOG_WARNING,
               "the descriptor limit (RLIMIT_NOFILE) is %llu: it holds %llu "
               "worker%s, not Max = %u (%llu needed)",
               (unsigned long long)rl.rlim_cur, holds(rl.rlim_cur),
               holds(rl.rlim_cur) == 1 ? "" : "s", pool->max,
               (unsigned long long)need_max);
    return 0;
}

unsigned long long
wd_nofile_original(void)
{
    return original;
}
