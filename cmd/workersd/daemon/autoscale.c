/*
 * The daemon's autoscaler ([autoscale]): ONE libworkers autoscaler for the
 * daemon's life, whose middleware every generation of a config with an
 * [autoscale] section puts in its chain (generation.c), and a libev timer
 * on the loop that ticks it every quarter Window while it is on.
 *
 * Why one for the daemon's life: the autoscaler measures the pool, not a
 * generation. A reload only changes its policy (set_policy), so the
 * cooldown's clock survives it; the workers move to the new generation's
 * jobs one by one, each job being one slot of the same measurement.
 *
 * On and off: on at the start when Enable is true; off after a manual
 * resize (set, more, less, SIGUSR1/2: the operator's size must hold) until
 * wd_autoscaler_enable(d, true), which restarts the measurement; a reload
 * follows Enable only when the file changed it. While off the middleware
 * keeps measuring (one clock read a run) and no tick runs.
 *
 * Threads: everything here is the loop thread's. The tick calls more/less
 * on the loop, as the signal handlers do; never once draining (the closer
 * thread owns the pool then).
 */
#include "daemon.h"

#include "metrics/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct wd_autoscaler {
    struct wd_daemon *d;
    workers_autoscale *as;
    ev_timer timer;  /* every quarter Window, active while on */
    bool configured; /* the config in force has [autoscale] */
    bool enable;     /* its Enable, to tell a reload that changed it */
    bool on;
    workers_autoscale_policy policy; /* in force, as set last */
    double utilisation;              /* of the last tick that measured */
    char decision[128];              /* the last change, "" before one */
};

static void
log_state(const struct wd_autoscaler *a, const char *why)
{
    const workers_autoscale_policy *p = &a->policy;
    char w[32], c[32];

    if (a->on)
        wd_log(WD_LOG_INFO,
               "autoscale: on%s (target %.2f, window %s, cooldown %s)", why,
               p->target, wd_duration(p->window_ns, w, sizeof w),
               wd_duration(p->cooldown_ns, c, sizeof c));
    else
        wd_log(WD_LOG_INFO, "autoscale: off%s", why);
}

static void
on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct wd_autoscaler *a = w->data;
    struct wd_daemon *d = a->d;
    workers_autoscale_decision dec;

    (void)revents;
    if (d->phase >= WD_DRAINING) {
        ev_timer_stop(loop, w);
        return;
    }
    if (d->phase != WD_RUNNING)
        return; /* the pool has not started yet */
    workers_autoscale_tick(a->as, wd_pool_workers(d->pool), wd_now_ns(), &dec);
    if (dec.span_ns != 0)
        a->utilisation = dec.utilisation;
    if (dec.new_count == dec.old_count && dec.err == 0)
        return;
    workers_autoscale_describe(&dec, a->decision, sizeof a->decision);
    wd_log(dec.err == 0 ? WD_LOG_INFO : WD_LOG_WARNING, "autoscale: %s",
           a->decision);
    if (dec.new_count != dec.old_count)
        wd_observe_workers(d);
}

/* Arms the timer at the policy's pace when on, stops it when off. */
static void
set_timer(struct wd_autoscaler *a)
{
    struct ev_loop *loop = a->d->loop;

    ev_timer_stop(loop, &a->timer);
    if (!a->on)
        return;
    double every = (double)a->policy.window_ns / 4e9;
    ev_timer_set(&a->timer, every, every);
    ev_timer_start(loop, &a->timer);
}

int
wd_autoscaler_new(struct wd_daemon *d)
{
    const struct wd_autoscale_cfg *c = &d->cfg->autoscale;
    struct wd_autoscaler *a = calloc(1, sizeof *a);
    int rc;

    if (a == NULL)
        return -ENOMEM;
    if ((rc = workers_autoscale_new(&a->as, &c->policy, NULL, NULL)) != 0) {
        free(a);
        return rc;
    }
    a->d = d;
    a->configured = c->configured;
    a->enable = c->enable;
    a->on = c->configured && c->enable;
    a->policy = c->policy;
    ev_init(&a->timer, on_tick);
    a->timer.data = a;
    d->autoscaler = a;
    set_timer(a);
    if (a->on)
        log_state(a, "");
    return 0;
}

workers_autoscale *
wd_autoscaler_lib(const struct wd_daemon *d)
{
    return d->autoscaler->as;
}

void
wd_autoscaler_manual(struct wd_daemon *d)
{
    struct wd_autoscaler *a = d->autoscaler;

    if (!a->on)
        return;
    a->on = false;
    set_timer(a);
    log_state(a, " after a manual resize, until `workersctl autoscale on`");
}

/* The pool has a Max (the limits in force, which may differ from the
 * config's after a reload): without one, an always-busy job would double
 * the pool every quarter Window without end (see config.c). */
static bool
bounded(const struct wd_daemon *d)
{
    workers_pool_status st;

    if (d->pool == NULL)
        return true; /* not made yet: its config was checked */
    workers_pool_status_get(wd_pool_workers(d->pool), &st);
    return st.max != 0;
}

int
wd_autoscaler_enable(struct wd_daemon *d, bool on)
{
    struct wd_autoscaler *a = d->autoscaler;

    if (!a->configured)
        return -ENOTSUP;
    if (d->phase >= WD_DRAINING)
        return WORKERS_ECLOSED;
    if (a->on == on)
        return 0;
    if (on && !bounded(d))
        return -ERANGE;
    /* The span measured so far was the operator's size: start afresh. */
    if (on)
        workers_autoscale_set_policy(a->as, &a->policy);
    a->on = on;
    set_timer(a);
    log_state(a, "");
    return 0;
}

void
wd_autoscaler_apply(struct wd_daemon *d, const wd_config *cfg)
{
    struct wd_autoscaler *a = d->autoscaler;
    const struct wd_autoscale_cfg *c = &cfg->autoscale;
    bool was = a->on;

    /* Checked by the config's loader as the library checks it. */
    workers_autoscale_set_policy(a->as, &c->policy);
    a->policy = c->policy;
    if (!c->configured)
        a->on = false;
    else if (!a->configured || c->enable != a->enable)
        a->on = c->enable;
    a->configured = c->configured;
    a->enable = c->enable;
    if (a->on && !bounded(d)) {
        a->on = false;
        wd_log(WD_LOG_WARNING, "autoscale: stays off: the pool has no Max");
    }
    set_timer(a);
    if (a->on != was || a->on)
        log_state(a, a->on == was ? " (reloaded)" : "");
}

void
wd_autoscaler_facts(const struct wd_daemon *d, struct wd_autoscale_facts *out)
{
    const struct wd_autoscaler *a = d->autoscaler;

    /* The metrics open before the autoscaler and close after it, and a
     * metrics file is written at both ends: none then. */
    *out = (struct wd_autoscale_facts){0};
    if (a == NULL || !a->configured)
        return;
    out->configured = true;
    out->on = a->on;
    out->target = a->policy.target;
    out->utilisation = a->utilisation;
    snprintf(out->decision, sizeof out->decision, "%s", a->decision);
}

void
wd_autoscaler_free(struct wd_daemon *d)
{
    struct wd_autoscaler *a = d->autoscaler;

    if (a == NULL)
        return;
    ev_timer_stop(d->loop, &a->timer);
    workers_autoscale_free(a->as);
    free(a);
    d->autoscaler = NULL;
}
