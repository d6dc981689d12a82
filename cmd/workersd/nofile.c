/*
 * nofile.c: the descriptor limit (RLIMIT_NOFILE) the daemon needs, checked
 * once at start, and the one its jobs get.
 *
 * What the daemon may hold at once, one NOFILE_ term below each, which
 * reserve() adds up for a config: stdio; the loop's epoll and wake-up
 * descriptors (libev aborts, SIGABRT, when it cannot make them); the notify
 * socket; per generation its deadline thread's eventfd, two generations during
 * a reload; a plugin's file and its private copy while a generation loads it
 * (loader.c closes both once it is loaded); a file or two the loop opens for a
 * moment; and, when configured, the control socket with its clients and the
 * metrics listener with its connections, each server bounded by a client limit
 * of its own. Per worker: its context's eventfd, which the deadline thread
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
 * runs with "too many open files". A reload that raises Max past the
 * limit gets the same warning (wd_nofile_recheck) but no raise: a command
 * job bakes the limit to restore into its script when it opens, and the
 * one already open would then hand its runs the raised limit.
 *
 * State: the daemon's reserve and the original soft limit, written by
 * wd_nofile_check() on the main thread before any thread starts,
 * read-only afterwards.
 */
#include "control/control.h"
#include "metrics/metrics.h"
#include "workersd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

/* What the daemon holds whatever its config. */
#define NOFILE_STDIO 3u       /* stdin, stdout, stderr */
#define NOFILE_LOOP 3u        /* libev's epoll, its wake-up pipe (or eventfd) */
#define NOFILE_NOTIFY 1u      /* the notify socket ($NOTIFY_SOCKET) */
#define NOFILE_GENERATIONS 2u /* the running one and the next, in a reload */
#define NOFILE_GENERATION 1u  /* each one's deadline thread's eventfd */
#define NOFILE_LOADING 2u     /* a plugin's file and its private copy */
/* Files the loop opens and closes within one callback: a reload's ini file
 * with the plugin it checks the owner of, an orphan's /proc file, the
 * metrics File's temporary copy. */
#define NOFILE_MOMENT 2u
/* The control socket (unless Socket = none): the listening socket, its
 * clients, and one more accepted to be told "busy" and closed. */
#define NOFILE_CONTROL (1u + WD_CONTROL_CLIENTS + 1u)
/* [metrics] Listen: the listening socket, libmicrohttpd's epoll, its
 * connections, and one more it may accept to close at its limit. */
#define NOFILE_METRICS (2u + WD_HTTP_CONNS + 1u)
#define NOFILE_PER_WORKER 1u

/* The soft limit workersd was started with, when it raised it (else 0). */
static unsigned long long original;
/* The daemon's own descriptors, from the start's config: [control] and
 * [metrics] change only with a restart. Written before any thread. */
static rlim_t reserved;

/* The descriptors cfg's daemon holds besides its workers'. */
static rlim_t
reserve(const wd_config *cfg)
{
    rlim_t n = NOFILE_STDIO + NOFILE_LOOP + NOFILE_NOTIFY +
               NOFILE_GENERATIONS * NOFILE_GENERATION + NOFILE_LOADING +
               NOFILE_MOMENT;

    /* The default socket counts, though a start without a runtime folder
     * for it goes on without: only wd_control_open can tell. */
    if (cfg->socket == NULL || strcasecmp(cfg->socket, "none") != 0)
        n += NOFILE_CONTROL;
    if (cfg->metrics.listen != NULL)
        n += NOFILE_METRICS;
    return n;
}

/* What n workers need; n == 0: unlimited. */
static rlim_t
needed(unsigned n)
{
    return n == 0 ? RLIM_INFINITY : reserved + (rlim_t)n * NOFILE_PER_WORKER;
}

/* The workers a limit can hold. */
static unsigned long long
holds(rlim_t limit)
{
    return limit <= reserved ? 0 : (limit - reserved) / NOFILE_PER_WORKER;
}

/* The limit in force into *rl, after raising the soft one toward what max
 * workers need as far as the hard one allows (never lowered): 0, or
 * -errno when it cannot be read. At the start only: the command jobs bake
 * the original into their script when they open. */
static int
raise_for(unsigned max, struct rlimit *rl)
{
    rlim_t need = needed(max);

    if (getrlimit(RLIMIT_NOFILE, rl) != 0)
        return -errno;
    if (rl->rlim_cur < need && rl->rlim_cur < rl->rlim_max) {
        struct rlimit raised = {need < rl->rlim_max ? need : rl->rlim_max,
                                rl->rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            original = rl->rlim_cur;
            *rl = raised;
        }
    }
    return 0;
}

/* The workers beyond the limit fail their runs: say so once, here; what
 * comes after it, "" or why it was not raised. */
static void
warn_max(unsigned max, rlim_t limit, const char *after)
{
    if (max != 0 && limit < needed(max))
        wd_log(WD_LOG_WARNING,
               "the descriptor limit (RLIMIT_NOFILE) is %llu: it holds %llu "
               "worker%s, not Max = %u (%llu needed)%s",
               (unsigned long long)limit, holds(limit),
               holds(limit) == 1 ? "" : "s", max,
               (unsigned long long)needed(max), after);
}

int
wd_nofile_check(const wd_config *cfg, char *err, size_t errlen)
{
    const workers_config *pool = &cfg->pool;
    unsigned initial = pool->initial != 0 ? pool->initial
                       : pool->min > 1    ? pool->min
                                          : 1;
    struct rlimit rl;
    int rc;

    reserved = reserve(cfg);
    if ((rc = raise_for(pool->max, &rl)) != 0) {
        snprintf(err, errlen, "cannot read the descriptor limit: %s",
                 strerror(-rc));
        return -1;
    }
    if (rl.rlim_cur < needed(initial)) {
        snprintf(err, errlen,
                 "the descriptor limit (RLIMIT_NOFILE, ulimit -n, "
                 "LimitNOFILE=) is %llu: %u worker%s %llu (%llu for the "
                 "daemon, %u per worker)",
                 (unsigned long long)rl.rlim_cur, initial,
                 initial == 1 ? " needs" : "s need",
                 (unsigned long long)needed(initial),
                 (unsigned long long)reserved, NOFILE_PER_WORKER);
        return -1;
    }
    warn_max(pool->max, rl.rlim_cur, "");
    return 0;
}

void
wd_nofile_recheck(unsigned max)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        warn_max(max, rl.rlim_cur,
                 rl.rlim_cur < rl.rlim_max
                     ? "; a restart raises it, as far as the hard limit"
                     : "");
}

unsigned long long
wd_nofile_original(void)
{
    return original;
}
