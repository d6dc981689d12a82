/*
 * The autoscaler's policy: its defaults and the decision of one tick.
 *
 * The decision is a pure function of the policy, the pool's bounds, the
 * cumulative busy and worker time, the size and the clock, plus the little
 * it remembers in a workers__as_state: where the span being measured
 * started, and when the size last changed. It reads no clock and touches no
 * pool, so tests drive it with synthetic loads (check_autoscale.c).
 *
 * The model: utilisation u is busy time over worker time across a span,
 * so u x N is the work there is, in workers, as long as the pool is not
 * saturated (then the work may be larger, unseen, and the pool grows by
 * 1 / target per quarter window until it is not). Windows restart at every
 * decision and every change of size, so that each measures one size only;
 * that is what lets growth aim at once for the size that brings u back to
 * target. Hysteresis comes from the band (grow only above target + band,
 * shrink only when one worker fewer would stay under target - band) and
 * from the cooldown on shrinking; together they keep a steady load from
 * making the size oscillate.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>

#define DEFAULT_TARGET 0.8
#define DEFAULT_WINDOW_NS UINT64_C(10000000000)
#define DEFAULT_COOLDOWN_NS UINT64_C(30000000000)
#define BAND 0.1

int
workers__autoscale_policy(const workers_autoscale_policy *in,
                          workers_autoscale_policy *out)
{
    workers_autoscale_policy p = {0};
    if (in != NULL)
        p = *in;
    /* Written so that NaN fails too. */
    if (!(p.target >= 0 && p.target < 1))
        return -EINVAL;
    int err = WORKERS__RESERVED_ZERO(&p);
    if (err != 0)
        return err;
    if (p.target == 0)
        p.target = DEFAULT_TARGET;
    if (p.window_ns == 0)
        p.window_ns = DEFAULT_WINDOW_NS;
    if (p.cooldown_ns == 0)
        p.cooldown_ns = DEFAULT_COOLDOWN_NS;
    *out = p;
    return 0;
}

/* The library links no libm: the two bits of it needed here. */
static double
lesser(double a, double b)
{
    return a < b ? a : b;
}

double
workers__autoscale_high(double target)
{
    return target + lesser(BAND, (1 - target) / 2);
}

static long long
ceiling_of(double x)
{
    long long i = (long long)x;
    return (double)i < x ? i + 1 : i;
}

static uint64_t
since(uint64_t now, uint64_t then)
{
    return now > then ? now - then : 0;
}

/* Opens a new span at now. */
static void
restart(struct workers__as_state *st, const struct workers__as_sample *smp,
        int current, uint64_t now)
{
    st->measuring = true;
    st->count = current;
    st->start = (struct workers__as_mark){now, *smp};
    st->quarter = st->start;
}

/* Busy over worker time since mark m, in [0, 1]. */
static double
utilisation(const struct workers__as_mark *m,
            const struct workers__as_sample *smp)
{
    uint64_t worker = since(smp->worker_ns, m->at.worker_ns);
    uint64_t busy = since(smp->busy_ns, m->at.busy_ns);
    double u = worker == 0 ? 0 : (double)busy / (double)worker;
    return u > 1 ? 1 : u;
}

/* The size that brings utilisation u at n workers back to target: at least
 * one more, at most double, at most ceiling. */
static int
grown(double u, int n, double target, int ceiling)
{
    /* Compared in double, so no size overflows however low the target.
     * A hair under the exact quotient, so that 3.2 / 0.8 stays 4. */
    double exact = u * n / target - 1e-9;
    long long most = 2LL * n < ceiling ? 2LL * n : ceiling;
    if (exact >= (double)most)
        return (int)most;
    long long want = ceiling_of(exact);
    return want > n ? (int)want : n + 1;
}

/* Records a change of size to d->wanted. */
static void
change(struct workers__as_state *st, workers_autoscale_decision *d,
       workers_autoscale_reason reason, uint64_t now)
{
    d->reason = reason;
    d->new_count = d->wanted;
    st->count = d->wanted;
    st->changed = true;
    st->change_ns = now;
}

void
workers__autoscale_decide(const workers_autoscale_policy *p, int min, int max,
                          struct workers__as_state *st,
                          const struct workers__as_sample *smp, int current,
                          uint64_t now, workers_autoscale_decision *d)
{
    *d = (workers_autoscale_decision){.old_count = current,
                                      .wanted = current,
                                      .new_count = current,
                                      .target = p->target,
                                      .reason = WORKERS_AUTOSCALE_MEASURING};
    bool gap = since(now, st->last_tick_ns) > 2 * p->window_ns;
    st->last_tick_ns = now;

    if (current <= 0) {
        /* Nothing to measure; the first tick after a resume starts afresh
         * (the size it finds is nobody else's change). */
        d->reason = WORKERS_AUTOSCALE_PAUSED;
        st->measuring = false;
        return;
    }
    if (st->measuring && current != st->count) {
        /* Someone else's more/less: measure that size afresh, and let it
         * stand for a cooldown before shrinking it. */
        d->reason = WORKERS_AUTOSCALE_EXTERNAL;
        st->changed = true;
        st->change_ns = now;
        restart(st, smp, current, now);
        return;
    }
    if (!st->measuring || gap || now < st->start.ns) {
        restart(st, smp, current, now);
        return;
    }

    double t = p->target;
    double hi = workers__autoscale_high(t);
    double lo = t - lesser(BAND, t / 2);
    int floor = min > 1 ? min : 1;
    int ceiling = max > 0 ? max : INT_MAX;

    /* Saturation (every worker busy) is plain over a quarter window, so
     * it is checked over the last one, wherever the span started: a burst
     * is seen within a quarter window or two. The work may be larger than
     * the pool then, unseen: grow by 1 / target (at most double) and look
     * again. */
    uint64_t quarter = now - st->quarter.ns;
    if (quarter >= p->window_ns / 4) {
        double uq = utilisation(&st->quarter, smp);
        st->quarter = (struct workers__as_mark){now, *smp};
        st->quarter_u = uq;
        if (uq >= (1 + hi) / 2 && current < ceiling) {
            d->utilisation = uq;
            d->span_ns = quarter;
            d->wanted = grown(uq, current, t, ceiling);
            change(st, d, WORKERS_AUTOSCALE_GROW, now);
            restart(st, smp, d->wanted, now);
            return;
        }
    }

    uint64_t span = now - st->start.ns;
    double u = utilisation(&st->start, smp);
    d->utilisation = u;
    d->span_ns = span;
    if (span < p->window_ns)
        return;
    restart(st, smp, current, now);

    /* The work there is, in workers. Not shrunk for while the last
     * quarter says there is more: a burst that began late in the window. */
    double load = u * current;
    double recent = st->quarter_u * current;
    if (u > hi) {
        if (current >= ceiling) {
            d->reason = WORKERS_AUTOSCALE_LIMIT;
            return;
        }
        d->wanted = grown(u, current, t, ceiling);
        change(st, d, WORKERS_AUTOSCALE_GROW, now);
    } else if (recent == 0 ||
               (load < lo * (current - 1) && recent < lo * (current - 1))) {
        if (current <= floor) {
            d->reason = WORKERS_AUTOSCALE_LIMIT;
        } else if (st->changed && since(now, st->change_ns) < p->cooldown_ns) {
            d->reason = WORKERS_AUTOSCALE_COOLDOWN;
        } else {
            d->wanted = current - 1;
            change(st, d, WORKERS_AUTOSCALE_SHRINK, now);
        }
    } else {
        d->reason = WORKERS_AUTOSCALE_STEADY;
    }
}
