/*
 * The drain: the pool's close, then the generations' end, each bounded.
 *
 * DRAINING. The closer thread, made before the pool starts (so a close can
 * never fail for want of a thread), sleeps until the loop asks it to close,
 * then calls workers_pool_close() bounded by drain_limit and frees the pool,
 * joining every worker (whose last job frees release the generations). The
 * loop meanwhile stays responsive: the CloseTimeout timer or a second
 * SIGINT/SIGTERM SIGKILLs the command runs left (wd_gen_kill on every
 * generation alive) and cancels drain_limit. A run that outlives that kill
 * by KillGrace (a plugin's job_do stuck in a loop, which no signal reaches)
 * is left behind: the daemon exits 2 without it. Once draining, the loop
 * makes no more pool call: the closer thread owns the pool.
 *
 * FINISHING. The pool is freed: no generation has a reference left, so each
 * one's thread closes its job (job_fini), or first finishes a job_init the
 * start was waiting for. The loop waits until every one reported CLOSED,
 * KillGrace at most, or not at all after one more SIGINT/SIGTERM, then
 * exits 2 without them.
 *
 * KillGrace bounds both waits, at least 1 s. So the whole close ends within
 * CloseTimeout + 2 x KillGrace: systemd is told so (EXTEND_TIMEOUT_USEC,
 * at the start of the close and every EXTEND_EVERY seconds after), so that
 * its TimeoutStopSec never SIGKILLs a close still within its bounds. A
 * close without a deadline (CloseTimeout = 0) extends by 2 x EXTEND_EVERY
 * at each refresh, for as long as it lasts. An exit that leaves plugin
 * code running uses _exit, after killing what escaped the runs: exit()
 * would run destructors under that code's feet.
 */
#include "daemon.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SEC_NS 1000000000ull
#define HOUR_NS (3600 * SEC_NS)
/* The closer thread only closes, kills and joins. */
#define CLOSER_STACK (256 * 1024)

static void *
closer_main(void *arg)
{
    struct wd_daemon *d = arg;

    while (workers_ctx_wait(d->drain_begin, HOUR_NS) == 0)
        ;
    int rc = workers_pool_close(wd_pool_workers(d->pool), d->drain_limit);
    wd_pool_free(d->pool);
    d->close_rc = rc;
    ev_async_send(d->loop, &d->drained);
    return NULL;
}

int
wd_drain_prepare(struct wd_daemon *d)
{
    int rc;

    if ((rc = workers_ctx_new(&d->drain_begin)) != 0 ||
        (rc = workers_ctx_new(&d->drain_limit)) != 0 ||
        (rc = wd_thread_start(&d->closer, CLOSER_STACK, closer_main, d)) != 0) {
        workers_ctx_free(d->drain_limit);
        workers_ctx_free(d->drain_begin);
        return rc;
    }
    return 0;
}

/* KillGrace, at least 1 s: how long the daemon waits for what no signal
 * reaches (a stuck job_do, job_init, job_fini). */
static double
grace(const struct wd_daemon *d)
{
    double s = (double)d->cfg->kill_grace_ns / 1e9;
    return s > 1. ? s : 1.;
}

/* Seconds between two EXTEND_TIMEOUT_USEC, and the margin each one adds
 * for a loaded machine. */
#define EXTEND_EVERY 5.
#define EXTEND_MARGIN_NS SEC_NS

/* Tells systemd how long the close may still take. */
static void
extend_stop_timeout(struct wd_daemon *d)
{
    uint64_t now = wd_now_ns(), usec;

    if (d->close_end_ns == WD_CLOSE_UNBOUNDED)
        usec = (uint64_t)(2 * EXTEND_EVERY * 1e6);
    else if (d->close_end_ns > now)
        usec = (d->close_end_ns - now) / 1000u;
    else
        return; /* past the bound: the drain exits on its own */
    wd_notify("EXTEND_TIMEOUT_USEC=%llu", (unsigned long long)usec);
}

static void
on_extend(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w, (void)revents;
    extend_stop_timeout(ev_userdata(loop));
}

/* The close's bound: CloseTimeout, then KillGrace for the runs that outlive
 * the kill, then KillGrace for job_fini (each wait at least 1 s). Before
 * the pool started there is no run: the KillGraces bound it. */
static void
close_bound(struct wd_daemon *d, bool started, uint64_t ns)
{
    uint64_t waits = 2 * (uint64_t)(grace(d) * 1e9) + EXTEND_MARGIN_NS;

    d->close_end_ns = ns == 0 && started
                          ? WD_CLOSE_UNBOUNDED
                          : wd_deadline(wd_deadline(wd_now_ns(), ns), waits);
    extend_stop_timeout(d);
    ev_timer_set(&d->extend, EXTEND_EVERY, EXTEND_EVERY);
    ev_timer_start(d->loop, &d->extend);
}

void
wd_drain_begin(struct wd_daemon *d, const char *why)
{
    char dl[32] = "none";
    /* workersctl stop --timeout gives its own. */
    uint64_t ns =
        d->stop_timeout_set ? d->stop_timeout_ns : d->cfg->close_timeout_ns;
    bool started = d->phase != WD_STARTING;

    d->phase = WD_DRAINING;
    if (why != NULL) {
        if (ns != 0) {
            wd_duration(ns, dl, sizeof dl);
            ev_timer_set(&d->close_timer, (double)ns / 1e9, 0.);
            ev_timer_start(d->loop, &d->close_timer);
            d->deadline_ns = wd_deadline(wd_now_ns(), ns);
        }
        wd_notify("STOPPING=1\nSTATUS=stopping (%s)", why);
        close_bound(d, started, ns);
        if (started)
            wd_log(WD_LOG_INFO,
                   "%s: closing, waiting for the runs in progress "
                   "(deadline %s)",
                   why, dl);
        else
            wd_log(WD_LOG_INFO, "%s: stopping before any worker started", why);
    }
    workers_ctx_cancel(d->drain_begin);
}

/* The exit code of a close that ran past its bounds: 2, unless a job error
 * stopped the pool (StopOnErrors): that error is the cause of the close,
 * the overrun only its consequence, so 1 wins. */
static int
overrun_code(const struct wd_daemon *d)
{
    return d->job_stop ? WD_EXIT_JOB : WD_EXIT_TIMEOUT;
}

/* Leaves plugin code running (a run, job_init or job_fini): no exit().
 * why ends with what is left ("...: exiting without it"). */
static void
exit_without(struct wd_daemon *d, const char *why)
{
    wd_log(WD_LOG_ERR, "%s", why);
    /* What did finish is joined; the rest is left to _exit. */
    if (d->phase == WD_FINISHING) {
        pthread_join(d->closer, NULL);
        wd_daemon_reap_gens(d);
    }
    /* What escaped the runs' process groups dies with us all the same. */
    wd_orphans_kill();
    _exit(overrun_code(d));
}

/* The deadline passed or a second signal: stop waiting, kill the rest. */
static void
give_up(struct wd_daemon *d)
{
    if (d->overdue)
        return;
    d->overdue = true;
    ev_timer_stop(d->loop, &d->close_timer);
    /* Killed from here, not by the closer once its close gives up: after a
     * failed start the library closed the pool itself, and the closer is
     * already waiting in workers_pool_free for these very runs. */
    wd_daemon_kill(d, SIGKILL);
    workers_ctx_cancel(d->drain_limit);
    ev_timer_set(&d->abandon, grace(d), 0.);
    ev_timer_start(d->loop, &d->abandon);
}

/* Which plugin hook the finishing waits for. */
static const char *
hook_waited(const struct wd_daemon *d)
{
    for (size_t i = 0; i < d->ngens; i++)
        if (wd_gen_state(d->gens[i]) == WD_GEN_OPENING)
            return "job_init";
    return "job_fini";
}

void
wd_drain_force(struct wd_daemon *d, const char *signame)
{
    char why[96];

    if (d->phase == WD_FINISHING) {
        snprintf(why, sizeof why, "%s: not waiting for %s: exiting without it",
                 signame, hook_waited(d));
        exit_without(d, why);
    }
    if (d->overdue)
        return;
    wd_log(WD_LOG_WARNING,
           "second %s: forcing the close, killing the remaining runs", signame);
    give_up(d);
}

static void
on_close_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct wd_daemon *d = ev_userdata(loop);

    (void)w, (void)revents;
    wd_log(WD_LOG_WARNING, "close deadline passed: killing the remaining "
                           "runs");
    give_up(d);
}

/* A run that ignores its cancelled context and SIGKILL cannot reach (a
 * plugin's job_do stuck in a loop) would keep the process alive forever. */
static void
on_abandon(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w, (void)revents;
    exit_without(ev_userdata(loop),
                 "runs still in progress after the deadline and the kill: "
                 "exiting without them");
}

static void
on_hook_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct wd_daemon *d = ev_userdata(loop);
    char why[128], dur[32];

    (void)w, (void)revents;
    snprintf(why, sizeof why,
             "%s did not return within KillGrace (%s): exiting without it",
             hook_waited(d),
             wd_duration(d->cfg->kill_grace_ns, dur, sizeof dur));
    exit_without(d, why);
}

void
wd_drain_check(struct wd_daemon *d)
{
    if (d->phase == WD_FINISHING && d->ngens == 0)
        ev_break(d->loop, EVBREAK_ALL);
}

static void
on_drained(struct ev_loop *loop, ev_async *w, int revents)
{
    struct wd_daemon *d = ev_userdata(loop);

    (void)w, (void)revents;
    d->phase = WD_FINISHING;
    ev_timer_stop(loop, &d->close_timer);
    ev_timer_stop(loop, &d->abandon);
    ev_timer_set(&d->hook_timer, grace(d), 0.);
    ev_timer_start(loop, &d->hook_timer);
    wd_daemon_reap_gens(d);
    wd_drain_check(d);
}

void
wd_drain_watchers(struct wd_daemon *d)
{
    ev_async_init(&d->drained, on_drained);
    ev_async_start(d->loop, &d->drained);
    ev_init(&d->close_timer, on_close_timer);
    ev_init(&d->abandon, on_abandon);
    ev_init(&d->hook_timer, on_hook_timer);
    ev_init(&d->extend, on_extend);
}

/* After the loop: how the close went decides the exit code. */
static int
outcome(const struct wd_daemon *d)
{
    char buf[96];
    int rc = d->close_rc;

    if (d->overdue) {
        wd_log(WD_LOG_WARNING, "closed after the deadline: remaining runs "
                               "were killed");
        if (!d->job_stop)
            return WD_EXIT_TIMEOUT;
    }
    if (rc == WORKERS_ECLOSED || rc == 0 || d->overdue)
        rc = d->job_stop ? d->job_error : 0;
    if (rc != 0) {
        wd_log(WD_LOG_ERR, "closed: a job error stopped the pool: %s",
               wd_describe(rc, buf, sizeof buf));
        return WD_EXIT_JOB;
    }
    wd_log(WD_LOG_INFO, "closed: every worker finished");
    return WD_EXIT_OK;
}

int
wd_drain_end(struct wd_daemon *d)
{
    int code = d->code, rc;

    pthread_join(d->closer, NULL);
    /* Every run is over and every plugin hook returned: what a job left
     * running outside its process group dies with the daemon instead of
     * outliving it. */
    if ((rc = wd_orphans_kill()) > 0)
        wd_log(WD_LOG_WARNING, "killed %d process%s left behind by the job", rc,
               rc == 1 ? "" : "es");
    if (code == 0)
        code = outcome(d);
    workers_ctx_free(d->drain_limit);
    workers_ctx_free(d->drain_begin);
    free(d->gens);
    return code;
}
