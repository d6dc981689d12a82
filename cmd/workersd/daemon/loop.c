/*
 * The daemon's event loop: the main thread's libev loop turns signals into
 * pool calls, starts the first generation and keeps systemd informed.
 *
 * Threads:
 * - the main thread runs the loop. It is the only thread with SIGUSR1,
 *   SIGUSR2, SIGINT, SIGTERM, SIGQUIT, SIGHUP (reload.c) and SIGCHLD
 *   unblocked (every other thread is
 *   created with all signals blocked), and the only one that calls more and
 *   less. The loop is made with ev_loop_new, never ev_default_loop: the
 *   default loop installs a SIGCHLD handler that reaps with waitpid(-1) and
 *   would steal the exit status of the workers' shell children, which their
 *   own worker threads wait for. It is also a child subreaper
 *   (jobs/orphans.c): processes a run started that left its process group
 *   are reparented to it, its SIGCHLD watcher reaps them (its own children
 *   only) and the drain kills what is left.
 * - each generation has a thread for its plugin hooks (generation.c);
 * - libworkers' threads are the workers (pool.c);
 * - the closer thread closes the pool (drain.c).
 * They report to the loop with ev_async_send, the one libev call other
 * threads may make.
 *
 * The start: the first generation opens on its own thread while the loop
 * already runs, so SIGINT or SIGTERM stops a start that hangs in job_init
 * (the drain then waits for it KillGrace at most). Once it is OPEN the pool
 * starts on it; if it FAILED the daemon ends with exit 78 (a load error,
 * job_init refused) or 70 (no memory, thread or descriptor for it),
 * nothing having started.
 * The control socket (control.c) and the metrics (observe.c) open
 * before, so that a socket or port in use is a start-up error (exit 78;
 * 70 when a descriptor or memory ran out) before any job code runs.
 */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const int handled_signals[] = {SIGUSR1, SIGUSR2, SIGINT, SIGTERM,
                                      SIGQUIT, SIGHUP,  SIGCHLD};

void
wd_daemon_signals(int how, sigset_t *old)
{
    sigset_t set;

    sigemptyset(&set);
    for (size_t i = 0; i < sizeof handled_signals / sizeof(int); i++)
        sigaddset(&set, handled_signals[i]);
    pthread_sigmask(how, &set, old);
}

/* ---- the start ---------------------------------------------------------- */

/* The start line says how to scale and stop, in the forms that work where
 * we run: under systemd, `kill` on the unit would reach every job too. */
static void
log_started(const struct wd_daemon *d, int n, long pid)
{
    char unit[128];

    if (wd_notify_unit(unit, sizeof unit) && d->ctl != NULL)
        wd_log(WD_LOG_INFO,
               "started %d worker%s, pid %ld: workersctl -c %s more adds a "
               "worker (or systemctl kill --kill-whom=main -s SIGUSR1 %s), "
               "less (SIGUSR2) removes one, systemctl stop %s stops",
               n, n == 1 ? "" : "s", pid, d->cfg->path, unit, unit);
    else if (d->ctl != NULL)
        wd_log(WD_LOG_INFO,
               "started %d worker%s, pid %ld: workersctl -c %s more (or kill "
               "-USR1 %ld) adds a worker, less (kill -USR2) removes one, "
               "Ctrl-C (SIGINT) or kill -TERM %ld stops",
               n, n == 1 ? "" : "s", pid, d->cfg->path, pid, pid);
    else /* Socket = none: signals only */
        wd_log(WD_LOG_INFO,
               "started %d worker%s, pid %ld: kill -USR1 %ld adds a worker, "
               "kill -USR2 %ld removes one, Ctrl-C (SIGINT) or kill -TERM %ld "
               "stops",
               n, n == 1 ? "" : "s", pid, pid, pid, pid);
}

/* The first generation's open ended: start the pool on it, or end. */
static void
start(struct wd_daemon *d, wd_gen *g)
{
    char buf[96];
    if (wd_gen_state(g) == WD_GEN_FAILED) {
        wd_log(WD_LOG_ERR, "%s", wd_gen_error(g));
        d->code = wd_gen_exit_code(g);
        wd_gen_unref(g);
        wd_drain_begin(d, NULL);
        return;
    }
    wd_daemon_install(d, g);
    wd_gen_unref(g); /* the pool holds it now */
    int rc = wd_pool_start(d->pool);
    if (rc != 0) {
        wd_log(WD_LOG_ERR, "cannot start the workers: %s",
               wd_describe(rc, buf, sizeof buf));
        d->code = WD_EXIT_SOFTWARE;
        /* The workers that did start close as on a signal, deadline
         * included: a stubborn first run must not hang the exit. */
        wd_drain_begin(d, "start failed");
        return;
    }
    d->phase = WD_RUNNING;
    long pid = (long)getpid();
    wd_observe_workers(d);
    int n = d->workers;
    snprintf(buf, sizeof buf, "READY=1\nMAINPID=%ld", pid);
    wd_observe_notify(d, buf);
    log_started(d, n, pid);
}

static void
on_gen_changed(struct ev_loop *loop, ev_async *w, int revents)
{
    struct wd_daemon *d = ev_userdata(loop);

    (void)w, (void)revents;
    if (d->opening != NULL && wd_gen_state(d->opening) != WD_GEN_OPENING) {
        wd_gen *g = d->opening;
        d->opening = NULL;
        start(d, g);
    }
    wd_reload_check(d);
    wd_daemon_reap_gens(d);
    wd_drain_check(d);
}

/* ---- signals and the pool ------------------------------------------------ */

/* SIGQUIT closes as SIGTERM does (no core dump: the jobs would outlive
 * us), and a second one forces the close. */
static const char *
stop_signal_name(int sig)
{
    return sig == SIGINT ? "SIGINT" : sig == SIGQUIT ? "SIGQUIT" : "SIGTERM";
}

void
wd_daemon_stop(struct wd_daemon *d, const char *name)
{
    switch (d->phase) {
    case WD_STARTING:
        if (d->opening != NULL) {
            /* Its thread closes it once job_init returned. */
            wd_gen_unref(d->opening);
            d->opening = NULL;
        }
        wd_drain_begin(d, name);
        break;
    case WD_RUNNING:
        wd_drain_begin(d, name);
        break;
    case WD_DRAINING:
    case WD_FINISHING:
        wd_drain_force(d, name);
        break;
    }
}

static void
on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    wd_daemon_stop(ev_userdata(loop), stop_signal_name(w->signum));
}

static void
on_reload_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w, (void)revents;
    wd_reload(ev_userdata(loop), NULL);
}

static void
on_scale(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct wd_daemon *d = ev_userdata(loop);
    const char *name = w->signum == SIGUSR1 ? "SIGUSR1" : "SIGUSR2";
    char msg[160];

    (void)revents;
    if (d->phase != WD_RUNNING) {
        wd_log_limited(&d->ignored, WD_LOG_INFO, "%s: %s ignored",
                       d->phase == WD_STARTING ? "starting" : "closing", name);
        return;
    }
    wd_scale(d, w->signum == SIGUSR1 ? 1 : -1, msg, sizeof msg);
}

/* A worker's thread: the pool's first job error (StopOnErrors). */
static void
pool_failed(void *arg)
{
    struct wd_daemon *d = arg;
    ev_async_send(d->loop, &d->job_failed);
}

static void
on_job_failed(struct ev_loop *loop, ev_async *w, int revents)
{
    struct wd_daemon *d = ev_userdata(loop);
    char buf[96];

    (void)w, (void)revents;
    if (d->phase != WD_RUNNING)
        return;
    d->job_stop = true;
    d->job_error = wd_pool_job_error(d->pool);
    wd_log(WD_LOG_ERR, "job error (%s): StopOnErrors stops the pool",
           wd_describe(d->job_error, buf, sizeof buf));
    wd_drain_begin(d, "job error");
}

/* Only the main thread's own children: orphans the kernel reparented to
 * us (see jobs/orphans.c), never a worker's shell or a plugin's child. */
static void
on_child(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop, (void)w, (void)revents;
    wd_orphans_reap();
}

static void
on_ping(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)w, (void)revents;
    wd_notify("WATCHDOG=1");
}

/* ---- set-up and the run -------------------------------------------------- */

static void
init_watchers(struct wd_daemon *d)
{
    struct ev_loop *loop = d->loop;
    uint64_t wd_usec = wd_notify_watchdog_usec();

    ev_set_userdata(loop, d);
    ev_signal_init(&d->sig_more, on_scale, SIGUSR1);
    ev_signal_init(&d->sig_less, on_scale, SIGUSR2);
    ev_signal_init(&d->sig_int, on_stop_signal, SIGINT);
    ev_signal_init(&d->sig_term, on_stop_signal, SIGTERM);
    ev_signal_init(&d->sig_quit, on_stop_signal, SIGQUIT);
    ev_signal_init(&d->sig_chld, on_child, SIGCHLD);
    ev_signal_init(&d->sig_hup, on_reload_signal, SIGHUP);
    ev_async_init(&d->gen_changed, on_gen_changed);
    ev_async_init(&d->job_failed, on_job_failed);
    ev_signal_start(loop, &d->sig_more);
    ev_signal_start(loop, &d->sig_less);
    ev_signal_start(loop, &d->sig_int);
    ev_signal_start(loop, &d->sig_term);
    ev_signal_start(loop, &d->sig_quit);
    ev_signal_start(loop, &d->sig_chld);
    ev_signal_start(loop, &d->sig_hup);
    ev_async_start(loop, &d->gen_changed);
    ev_async_start(loop, &d->job_failed);
    wd_drain_watchers(d);
    if (wd_usec != 0) {
        /* systemd's advice: ping at half the interval. */
        double every = (double)wd_usec / 2e6;
        ev_timer_init(&d->ping, on_ping, every, every);
        ev_timer_start(loop, &d->ping);
        wd_notify("WATCHDOG=1");
    }
}

/* libev keeps a signal's loop until its watcher stops. */
static void
stop_signal_watchers(struct wd_daemon *d)
{
    ev_signal_stop(d->loop, &d->sig_more);
    ev_signal_stop(d->loop, &d->sig_less);
    ev_signal_stop(d->loop, &d->sig_int);
    ev_signal_stop(d->loop, &d->sig_term);
    ev_signal_stop(d->loop, &d->sig_quit);
    ev_signal_stop(d->loop, &d->sig_chld);
    ev_signal_stop(d->loop, &d->sig_hup);
}

/* libev cannot make a descriptor it needs (its signal and async pipe:
 * nofile.c checked the limit, but descriptors inherited from our parent
 * count too) or its backend failed: it would abort() with a core dump.
 * Its pipe is made by the first signal watcher, before any job runs:
 * nothing is left behind. */
static void
on_loop_error(const char *msg)
{
    wd_log(WD_LOG_ERR, "event loop: %s: %s", msg, strerror(errno));
    _exit(WD_EXIT_SOFTWARE);
}

int
wd_daemon_run(const wd_config *cfg)
{
    struct wd_daemon d = {.cfg = cfg, .phase = WD_STARTING};
    char buf[96];
    int rc = 0, code;

    /* main() ignored SIGPIPE and blocked these already; blocked again for
     * a caller that did not: until the loop's handlers are in place, the
     * signals wait pending rather than kill us. */
    wd_daemon_signals(SIG_BLOCK, NULL);

    ev_set_syserr_cb(on_loop_error);
    /* NOSIGMASK: we unblock our signals in this thread ourselves
     * (pthread_sigmask), as POSIX wants in a threaded program. */
    d.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
    if (d.loop == NULL) {
        wd_log(WD_LOG_ERR, "cannot make the event loop");
        wd_config_unref(cfg);
        return WD_EXIT_SOFTWARE;
    }
    ev_set_userdata(d.loop, &d);
    if (wd_observe_open(&d, cfg, &code) != 0 ||
        (rc = wd_control_start(&d)) != 0) {
        /* observe set code; a control socket failure is classified as a
         * job's: 70 for a resource, 78 for the configuration. */
        if (rc != 0)
            code = wd_exit_code_of(rc);
        wd_observe_free(&d);
        ev_loop_destroy(d.loop);
        wd_config_unref(cfg);
        return code;
    }
    if ((rc = wd_autoscaler_new(&d)) != 0 ||
        (rc = wd_pool_new(&d.pool, &cfg->pool, pool_failed, &d)) != 0 ||
        (rc = wd_drain_prepare(&d)) != 0) {
        wd_log(WD_LOG_ERR, "cannot set up the pool: %s",
               wd_describe(rc, buf, sizeof buf));
        wd_pool_free(d.pool);
        wd_autoscaler_free(&d);
        wd_control_end(&d, WD_EXIT_SOFTWARE);
        wd_observe_free(&d);
        ev_loop_destroy(d.loop);
        wd_config_unref(cfg);
        return WD_EXIT_SOFTWARE;
    }
    init_watchers(&d);
    /* After the SIGCHLD watcher: an adopted orphan is reaped from then on. */
    if ((rc = wd_orphans_adopt()) != 0)
        wd_log(WD_LOG_WARNING,
               "cannot become a child subreaper (%s): processes that leave "
               "a run's process group will go to init",
               wd_describe(rc, buf, sizeof buf));
    if ((rc = wd_daemon_open(&d, cfg, &d.opening)) != 0) {
        wd_log(WD_LOG_ERR, "cannot open the job: %s",
               wd_describe(rc, buf, sizeof buf));
        d.code = WD_EXIT_SOFTWARE;
        wd_drain_begin(&d, NULL);
    }
    wd_daemon_signals(SIG_UNBLOCK, NULL);
    ev_run(d.loop, 0);
    /* Late signals stay pending until we exit. */
    wd_daemon_signals(SIG_BLOCK, NULL);
    stop_signal_watchers(&d);
    code = wd_drain_end(&d);
    /* The pool is freed: the metrics' last file has the final counts. */
    wd_observe_free(&d);
    wd_autoscaler_free(&d);
    wd_control_end(&d, code);
    wd_config_unref(d.cfg);
    ev_loop_destroy(d.loop);
    return code;
}
