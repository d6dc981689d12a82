/*
 * daemon.c: the event loop that turns signals into pool calls.
 *
 * Threads:
 * - the main thread runs a libev loop. It is the only thread with SIGUSR1,
 *   SIGUSR2, SIGINT and SIGTERM unblocked (every other thread is created
 *   with all signals blocked), and the only one that calls more/less. The
 *   loop is made with ev_loop_new, never ev_default_loop: the default loop
 *   installs a SIGCHLD handler that reaps with waitpid(-1) and would steal
 *   the exit status of the workers' shell children, which their own worker
 *   threads wait for (SIGCHLD is unblocked here too, see below). The
 *   main thread is also a child subreaper (jobs/orphans.c): processes a job
 *   started that left their run's process group are reparented to it, its
 *   SIGCHLD watcher reaps them (its own children only, never a worker's)
 *   and it kills what is left once the pool is freed.
 * - libworkers' worker threads run the job.
 * - the closer thread, made before the pool starts (so a close can never
 *   fail for want of a thread), sleeps until the loop asks it to close,
 *   then calls workers_pool_close() bounded by close_ctx and frees the
 *   pool (joining every worker). The loop meanwhile stays responsive: the
 *   CloseTimeout timer or a second SIGINT/SIGTERM SIGKILLs the runs left
 *   (wd_job_kill_all) and cancels close_ctx. Once closing starts, the loop
 *   makes no more pool call: the closer thread owns the pool.
 *
 * Threads report to the loop with ev_async_send, the one libev call that
 * other threads may make. With StopOnErrors the pool stops itself on the
 * first job error; an outermost middleware sees that same result and wakes
 * the loop, which then closes the pool as for a signal: no polling, and the
 * close keeps its deadline (workers_pool_run would close without one).
 */
#include "workersd.h"

#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEC_NS 1000000000ull
#define HOUR_NS (3600 * SEC_NS)
/* The closer thread only closes, kills and joins. */
#define CLOSER_STACK (256 * 1024)

struct daemon {
    const wd_config *cfg;
    wd_job *job;
    struct ev_loop *loop;
    workers_pool *pool;
    workers_ctx *begin_ctx; /* cancelled: the closer thread starts */
    workers_ctx *close_ctx; /* cancelled: the close gives up waiting */
    pthread_t closer;
    int close_rc; /* the closer's; read after pthread_join */

    ev_signal sig_more, sig_less, sig_int, sig_term;
    ev_signal sig_chld;  /* orphans adopted as subreaper */
    ev_async job_failed; /* sent by the StopOnErrors middleware */
    ev_async closed;     /* sent by the closer thread when done */
    ev_timer deadline;   /* CloseTimeout */
    ev_timer abandon;    /* runs that outlive the deadline */
    ev_timer watchdog;

    /* The loop thread's own state. */
    bool closing;
    bool overdue; /* the deadline passed or a 2nd signal forced */
    bool stopped_by_job;

    _Atomic int job_error; /* the first job error seen, 0 = none */
};

static const int handled_signals[] = {SIGUSR1, SIGUSR2, SIGINT, SIGTERM,
                                      SIGCHLD};

static void
mask_signals(int how)
{
    sigset_t set;

    sigemptyset(&set);
    for (size_t i = 0; i < sizeof handled_signals / sizeof(int); i++)
        sigaddset(&set, handled_signals[i]);
    pthread_sigmask(how, &set, NULL);
}

static const char *
describe(int rc, char *buf, size_t len)
{
    if (rc < 0)
        snprintf(buf, len, "%s (%s)", workers_strerror(rc),
                 workers_err_name(rc));
    else
        snprintf(buf, len, "code %d", rc);
    return buf;
}

/* ---- the StopOnErrors middleware ----------------------------------------- */

struct watch {
    workers_job inner;
    struct daemon *d;
};

/* The pool's own rule (workers_result_is_error): any result but 0, a
 * cancellation and WORKERS_EIDLE is a job error. Only the first error
 * costs an atomic and a wake-up. */
static int
watch_run(workers_ctx *ctx, void *arg)
{
    struct watch *w = arg;
    int rc = w->inner.fn(ctx, w->inner.arg);
    int none = 0;

    if (workers_result_is_error(rc) &&
        atomic_load_explicit(&w->d->job_error, memory_order_relaxed) == 0 &&
        atomic_compare_exchange_strong(&w->d->job_error, &none, rc))
        ev_async_send(w->d->loop, &w->d->job_failed);
    return rc;
}

static void
watch_free(void *arg)
{
    struct watch *w = arg;

    workers_job_free(&w->inner);
    free(w);
}

static int
watch_wrap(const workers_middleware *mw, workers_job *job)
{
    struct watch *w = malloc(sizeof *w);

    if (w == NULL)
        return -ENOMEM;
    w->inner = *job;
    w->d = mw->data;
    *job = (workers_job){watch_run, w, watch_free};
    return 0;
}

/* ---- the closer thread -----------------------------------------------------
 */

static void *
closer_main(void *arg)
{
    struct daemon *d = arg;
    int rc;

    while (workers_ctx_wait(d->begin_ctx, HOUR_NS) == 0)
        ;
    rc = workers_pool_close(d->pool, d->close_ctx);
    workers_pool_free(d->pool);
    d->close_rc = rc;
    ev_async_send(d->loop, &d->closed);
    return NULL;
}

static int
start_closer(struct daemon *d)
{
    return wd_thread_start(&d->closer, CLOSER_STACK, closer_main, d);
}

/* ---- loop callbacks --------------------------------------------------------
 */

static void
begin_close(struct daemon *d, const char *why)
{
    char dl[32] = "none";
    uint64_t ns = d->cfg->close_timeout_ns;

    d->closing = true;
    if (ns != 0) {
        wd_duration(ns, dl, sizeof dl);
        ev_timer_set(&d->deadline, (double)ns / 1e9, 0.);
        ev_timer_start(d->loop, &d->deadline);
    }
    wd_notify("STOPPING=1\nSTATUS=stopping (%s)", why);
    wd_log(WD_LOG_INFO,
           "%s: closing, waiting for the runs in progress "
           "(deadline %s)",
           why, dl);
    workers_ctx_cancel(d->begin_ctx);
}

/* The deadline passed or a second signal: stop waiting, kill the rest. */
static void
give_up(struct daemon *d)
{
    double grace = (double)d->cfg->kill_grace_ns / 1e9;

    if (d->overdue)
        return;
    d->overdue = true;
    ev_timer_stop(d->loop, &d->deadline);
    /* Killed from here, not by the closer once its close gives up: after a
     * failed start the library closed the pool itself, and the closer is
     * already waiting in workers_pool_free for these very runs. */
    wd_job_kill_all(d->job, SIGKILL);
    workers_ctx_cancel(d->close_ctx);
    ev_timer_set(&d->abandon, grace > 1. ? grace : 1., 0.);
    ev_timer_start(d->loop, &d->abandon);
}

static void
on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct daemon *d = ev_userdata(loop);
    const char *name = w->signum == SIGINT ? "SIGINT" : "SIGTERM";

    (void)revents;
    if (!d->closing) {
        begin_close(d, name);
        return;
    }
    if (d->overdue)
        return;
    wd_log(WD_LOG_WARNING,
           "second %s: forcing the close, killing the "
           "remaining runs",
           name);
    give_up(d);
}

static void
on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct daemon *d = ev_userdata(loop);

    (void)w, (void)revents;
    wd_log(WD_LOG_WARNING, "close deadline passed: killing the remaining "
                           "runs");
    give_up(d);
}

/* A run that ignores its cancelled context and SIGKILL cannot reach (a
 * plugin's job_do stuck in a loop) would keep the process alive forever:
 * leave it behind. exit() would run destructors under the plugin's feet. */
static void
on_abandon(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)w, (void)revents;
    wd_log(WD_LOG_ERR, "runs still in progress after the deadline and the "
                       "kill: exiting without them");
    /* What escaped the runs' process groups dies with us all the same. */
    wd_orphans_kill();
    _exit(WD_EXIT_TIMEOUT);
}

static void
on_scale(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct daemon *d = ev_userdata(loop);
    bool more = w->signum == SIGUSR1;
    int before, rc;
    char buf[96];

    (void)revents;
    if (d->closing) {
        wd_log(WD_LOG_INFO, "closing: %s ignored",
               more ? "SIGUSR1" : "SIGUSR2");
        return;
    }
    before = workers_pool_current(d->pool);
    rc = more ? workers_pool_more(d->pool) : workers_pool_less(d->pool);
    if (rc == 0) {
        int now = workers_pool_current(d->pool);
        wd_log(WD_LOG_INFO, "workers: %d -> %d", before, now);
        wd_notify("STATUS=%d workers", now);
    } else if (rc == WORKERS_EMAX || rc == WORKERS_EMIN) {
        wd_log(WD_LOG_INFO, "%s reached (%d)", more ? "max" : "min", before);
    } else {
        wd_log(WD_LOG_WARNING, "%s: %s",
               more ? "adding a worker" : "removing a worker",
               describe(rc, buf, sizeof buf));
    }
}

static void
on_job_failed(struct ev_loop *loop, ev_async *w, int revents)
{
    struct daemon *d = ev_userdata(loop);
    char buf[96];

    (void)w, (void)revents;
    if (d->closing)
        return;
    d->stopped_by_job = true;
    wd_log(WD_LOG_ERR, "job error (%s): StopOnErrors stops the pool",
           describe(atomic_load(&d->job_error), buf, sizeof buf));
    begin_close(d, "job error");
}

static void
on_closed(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)w, (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* Only the main thread's own children: orphans the kernel reparented to
 * us (see jobs/orphans.c), never a worker's shell. */
static void
on_child(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop, (void)w, (void)revents;
    wd_orphans_reap();
}

static void
on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)w, (void)revents;
    wd_notify("WATCHDOG=1");
}

/* ---- set-up and the run ------------------------------------------------- */

static int
make_pool(struct daemon *d)
{
    const wd_config *cfg = d->cfg;
    workers_middleware mws[4];
    size_t n = 0;

    /* mws[0] is innermost: Wait paces every attempt, Retry's too; the
     * backoff follows what is left of a failure after the retries; the
     * watch sees exactly the result the pool sees. */
    if (cfg->wait_ns != 0)
        mws[n++] = workers_wait(cfg->wait_ns);
    if (cfg->retry != 0)
        mws[n++] = workers_retry(cfg->retry);
    if (cfg->backoff.max_ns != 0)
        mws[n++] = wd_backoff(cfg);
    if (cfg->pool.stop_on_errors)
        mws[n++] = (workers_middleware){watch_wrap, d, 0};
    return workers_pool_new_with_config(&d->pool, &cfg->pool, mws, n);
}

static void
init_watchers(struct daemon *d)
{
    struct ev_loop *loop = d->loop;
    uint64_t wd_usec = wd_notify_watchdog_usec();

    ev_set_userdata(loop, d);
    ev_signal_init(&d->sig_more, on_scale, SIGUSR1);
    ev_signal_init(&d->sig_less, on_scale, SIGUSR2);
    ev_signal_init(&d->sig_int, on_stop_signal, SIGINT);
    ev_signal_init(&d->sig_term, on_stop_signal, SIGTERM);
    ev_signal_init(&d->sig_chld, on_child, SIGCHLD);
    ev_async_init(&d->job_failed, on_job_failed);
    ev_async_init(&d->closed, on_closed);
    ev_init(&d->deadline, on_deadline);
    ev_init(&d->abandon, on_abandon);
    ev_signal_start(loop, &d->sig_more);
    ev_signal_start(loop, &d->sig_less);
    ev_signal_start(loop, &d->sig_int);
    ev_signal_start(loop, &d->sig_term);
    ev_signal_start(loop, &d->sig_chld);
    ev_async_start(loop, &d->job_failed);
    ev_async_start(loop, &d->closed);
    if (wd_usec != 0) {
        /* systemd's advice: ping at half the interval. */
        double every = (double)wd_usec / 2e6;
        ev_timer_init(&d->watchdog, on_watchdog, every, every);
        ev_timer_start(loop, &d->watchdog);
        wd_notify("WATCHDOG=1");
    }
}

/* After the loop: how the close went decides the exit code. */
static int
close_outcome(struct daemon *d)
{
    char buf[96];
    int rc = d->close_rc;

    if (d->overdue) {
        wd_log(WD_LOG_WARNING, "closed after the deadline: remaining runs "
                               "were killed");
        return WD_EXIT_TIMEOUT;
    }
    if (rc != 0 && rc != WORKERS_ECLOSED) {
        wd_log(WD_LOG_ERR, "closed: a job error stopped the pool: %s",
               describe(rc, buf, sizeof buf));
        return WD_EXIT_JOB;
    }
    if (d->stopped_by_job) {
        wd_log(WD_LOG_ERR, "closed: a job error stopped the pool: %s",
               describe(atomic_load(&d->job_error), buf, sizeof buf));
        return WD_EXIT_JOB;
    }
    wd_log(WD_LOG_INFO, "closed: every worker finished");
    return WD_EXIT_OK;
}

int
wd_daemon_run(const wd_config *cfg, wd_job *job)
{
    struct daemon d = {.cfg = cfg, .job = job};
    workers_builder builder;
    char buf[96];
    int rc, code;

    /* A job writing to a closed pipe must not kill the daemon; the shell
     * children get default dispositions back when spawned. */
    signal(SIGPIPE, SIG_IGN);
    /* Until the loop's handlers are in place, the signals wait pending
     * rather than kill us; threads made from here on inherit the block. */
    mask_signals(SIG_BLOCK);

    /* NOSIGMASK: we unblock our signals in this thread ourselves
     * (pthread_sigmask), as POSIX wants in a threaded program. */
    d.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
    if (d.loop == NULL) {
        wd_log(WD_LOG_ERR, "cannot make the event loop");
        return WD_EXIT_SOFTWARE;
    }
    if ((rc = workers_ctx_new(&d.begin_ctx)) != 0 ||
        (rc = workers_ctx_new(&d.close_ctx)) != 0 ||
        (rc = make_pool(&d)) != 0 || (rc = start_closer(&d)) != 0) {
        wd_log(WD_LOG_ERR, "cannot set up the pool: %s",
               describe(rc, buf, sizeof buf));
        workers_pool_free(d.pool);
        workers_ctx_free(d.close_ctx);
        workers_ctx_free(d.begin_ctx);
        ev_loop_destroy(d.loop);
        return WD_EXIT_SOFTWARE;
    }
    init_watchers(&d);
    /* After the SIGCHLD watcher: an adopted orphan is reaped from then on. */
    if ((rc = wd_orphans_adopt()) != 0)
        wd_log(WD_LOG_WARNING,
               "cannot become a child subreaper (%s): processes that leave "
               "a run's process group will go to init",
               describe(rc, buf, sizeof buf));

    builder = wd_job_builder(job);
    rc = workers_pool_start_with_builder(d.pool, &builder);
    if (rc != 0) {
        wd_log(WD_LOG_ERR, "cannot start the workers: %s",
               describe(rc, buf, sizeof buf));
        code = WD_EXIT_SOFTWARE;
        /* The workers that did start close as on a signal, deadline
         * included: a stubborn first run must not hang the exit. */
        begin_close(&d, "start failed");
    } else {
        int n = workers_pool_current(d.pool);
        wd_notify("READY=1\nSTATUS=%d workers\nMAINPID=%ld", n, (long)getpid());
        wd_log(WD_LOG_INFO,
               "started %d worker%s, pid %ld: kill -USR1 %ld "
               "adds a worker, kill -USR2 %ld removes one, "
               "Ctrl-C (SIGINT) or kill -TERM %ld stops",
               n, n == 1 ? "" : "s", (long)getpid(), (long)getpid(),
               (long)getpid(), (long)getpid());
        code = WD_EXIT_OK;
    }
    mask_signals(SIG_UNBLOCK);
    ev_run(d.loop, 0);
    /* Late signals stay pending until we exit. */
    mask_signals(SIG_BLOCK);

    pthread_join(d.closer, NULL);
    /* libev keeps a signal's loop until its watcher stops. */
    ev_signal_stop(d.loop, &d.sig_more);
    ev_signal_stop(d.loop, &d.sig_less);
    ev_signal_stop(d.loop, &d.sig_int);
    ev_signal_stop(d.loop, &d.sig_term);
    ev_signal_stop(d.loop, &d.sig_chld);
    /* Every run is over: what a job left running outside its process
     * group dies with the daemon instead of outliving it. */
    if ((rc = wd_orphans_kill()) > 0)
        wd_log(WD_LOG_WARNING, "killed %d process%s left behind by the job", rc,
               rc == 1 ? "" : "es");
    if (code == WD_EXIT_OK)
        code = close_outcome(&d);
    workers_ctx_free(d.close_ctx);
    workers_ctx_free(d.begin_ctx);
    ev_loop_destroy(d.loop);
    return code;
}
