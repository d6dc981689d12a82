/*
 * The autoscaler object: a timed tally (middleware/tally.c) that its
 * middleware feeds, the policy, and the decision's memory.
 *
 * Threads: workers only write their own slots through the middleware
 * (workers__timed_run, as elapsed's). A tick samples the tally, decides
 * (policy.c) and applies the decision with workers_pool_more/less, all
 * under mu, so ticks and set_policy are serialised; nothing runs between
 * ticks. Lock order: mu, then the tally's mutex (the sample) or the pool's
 * locks (more/less, whose wrap of a new worker's job takes the tally's
 * mutex, never mu).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

struct workers_autoscale {
    pthread_mutex_t mu;
    struct workers__tally *tally;    /* set at creation */
    workers_autoscale_policy policy; /* (mu) defaults applied */
    struct workers__as_state state;  /* (mu) */
};

int
workers_autoscale_new(workers_autoscale **out,
                      const workers_autoscale_policy *policy,
                      workers_clock_fn clock, void *clock_arg)
{
    workers_autoscale_policy p;
    int err = workers__autoscale_policy(policy, &p);
    if (err != 0)
        return err;
    workers_autoscale *as = calloc(1, sizeof(*as));
    if (as == NULL)
        return -ENOMEM;
    as->policy = p;
    err = workers__tally_new(
        &as->tally, clock != NULL ? clock : workers__monotonic, clock_arg);
    if (err == 0 && (err = -pthread_mutex_init(&as->mu, NULL)) != 0)
        workers__tally_free(as->tally);
    if (err == 0)
        as->tally->lives = true;
    if (err != 0) {
        free(as);
        return err;
    }
    *out = as;
    return 0;
}

static int
autoscale_wrap(const workers_middleware *mw, workers_job *job)
{
    workers_autoscale *as = mw->data;
    return workers__tally_wrap(as->tally, job, workers__timed_run);
}

workers_middleware
workers_autoscale_middleware(workers_autoscale *as)
{
    workers_middleware mw = {autoscale_wrap, as, 0};
    return mw;
}

/* Carries out d's decision one worker at a time; stops at the first
 * error, which goes into d->err, with d->new_count the size reached. */
static void
apply(workers_pool *pool, workers_autoscale_decision *d)
{
    int n = d->old_count, err = 0;
    while (err == 0 && n < d->wanted)
        if ((err = workers_pool_more(pool)) == 0)
            n++;
    while (err == 0 && n > d->wanted)
        if ((err = workers_pool_less(pool)) == 0)
            n--;
    d->new_count = n;
    d->err = err;
}

int
workers_autoscale_tick(workers_autoscale *as, workers_pool *pool,
                       uint64_t now_ns, workers_autoscale_decision *out)
{
    workers_autoscale_decision d;
    struct workers__as_sample smp;

    workers_pool_status ps;

    pthread_mutex_lock(&as->mu);
    workers__tally_sample(as->tally, now_ns, &smp.busy_ns, &smp.worker_ns);
    /* One snapshot: set_limits may change min and max at any time. A paused
     * pool has no worker that could run: judged as none (PAUSED), so its
     * resting workers are not taken for idle ones and shrunk. */
    workers_pool_status_get(pool, &ps);
    workers__autoscale_decide(&as->policy, ps.min, ps.max, &as->state, &smp,
                              ps.paused ? 0 : ps.current, now_ns, &d);
    if (ps.paused)
        d.old_count = d.wanted = d.new_count = ps.current;
    if (d.wanted != d.old_count) {
        apply(pool, &d);
        /* What was reached is what the next tick must find. */
        as->state.count = d.new_count;
    }
    pthread_mutex_unlock(&as->mu);
    if (out != NULL)
        *out = d;
    return d.err;
}

int
workers_autoscale_set_policy(workers_autoscale *as,
                             const workers_autoscale_policy *policy)
{
    workers_autoscale_policy p;
    int err = workers__autoscale_policy(policy, &p);
    if (err != 0)
        return err;
    pthread_mutex_lock(&as->mu);
    as->policy = p;
    /* The span so far was judged by the old policy's window: measure
     * afresh. The cooldown's clock (change_ns) stays. */
    as->state.measuring = false;
    pthread_mutex_unlock(&as->mu);
    return 0;
}

void
workers_autoscale_free(workers_autoscale *as)
{
    if (as == NULL)
        return;
    workers__tally_free(as->tally);
    pthread_mutex_destroy(&as->mu);
    free(as);
}
