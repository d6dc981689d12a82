/*
 * The thread side of the pool: the worker loop, parking and thread creation.
 *
 * A thread serves one worker at a time. It runs its job until the worker's
 * context is cancelled (less, close, or a stop_on_errors stop), frees that
 * job, decrements busy, then parks: on the free list under pool->lock when
 * the pool is open (more() may hand it the next worker), alone when it is
 * closed. Only workers_pool_free() makes threads exit, and it joins each and
 * frees its record, so a thread may touch the pool until it returns.
 * The worker's id is given back before that free (worker_stop).
 *
 * Threads are created with every signal blocked (they inherit the mask that
 * workers__worker_add sets around pthread_create) and with the pool's stack
 * size.
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/*
 * THE hot path: one iteration is one run of the job. It takes no lock, makes
 * no allocation and no syscall: an acquire load of the flag and an indirect
 * call. Errors leave the loop only with stop_on_errors, and only those
 * workers_result_is_error() calls errors (a cancellation, WORKERS_ECANCELED
 * or -ECANCELED, and WORKERS_EIDLE never do); otherwise only the
 * middlewares see them.
 */
static int
worker_loop(workers_ctx *ctx, workers_job_fn fn, void *arg, bool stop_on_errors)
{
    while (!atomic_load_explicit(&ctx->done, memory_order_acquire)) {
        int err = fn(ctx, arg);
        if (stop_on_errors && workers_result_is_error(err))
            return err;
    }
    return 0;
}

/* Sleeps until more() gives this thread a worker (true) or
 * workers_pool_free() wants it to exit (false). */
static bool
worker_park(struct workers__thread *t)
{
    uint32_t v;
    while ((v = atomic_load_explicit(&t->park, memory_order_acquire)) ==
           WORKERS__PARK_WAIT)
        workers__futex_wait(&t->park, WORKERS__PARK_WAIT, WORKERS__NO_DEADLINE);
    return v == WORKERS__PARK_RUN;
}

/* The pool is closed and never reuses a thread. The thread neither takes
 * the lock nor exits now: the workers a close wakes only flip a word and
 * sleep, and the costly thread exits happen in workers_pool_free(), whose
 * EXIT store is the only one this CAS can lose to. */
static bool
worker_park_closed(struct workers__thread *t)
{
    uint32_t run = WORKERS__PARK_RUN;
    atomic_compare_exchange_strong(&t->park, &run, WORKERS__PARK_WAIT);
    return worker_park(t);
}

/* With lock held: the lowest id no running worker holds, now held. */
static int
worker_id_take(workers_pool *pool)
{
    size_t w = 0;
    while (w < pool->nids && pool->ids[w] == UINT64_MAX)
        w++;
    if (w == pool->nids) {
        size_t n = pool->nids != 0 ? 2 * pool->nids : 4;
        uint64_t *ids = realloc(pool->ids, n * sizeof(*ids));
        if (ids == NULL)
            return -ENOMEM;
        memset(ids + pool->nids, 0, (n - pool->nids) * sizeof(*ids));
        pool->ids = ids;
        pool->nids = n;
    }
    int bit = __builtin_ctzll(~pool->ids[w]);
    pool->ids[w] |= UINT64_C(1) << bit;
    return (int)(w * 64) + bit + 1;
}

/* With lock held: id's worker no longer runs its job. */
static void
worker_id_release(workers_pool *pool, unsigned id)
{
    pool->ids[(id - 1) / 64] &= ~(UINT64_C(1) << ((id - 1) % 64));
}

/* The worker's last run has returned: err (if any) stops the pool, and
 * its id is free for the next more() at once, before the job's free runs,
 * which is no run, so no two runs share the id while a slow free goes on.
 * A closed pool reuses no id: the workers a close wakes skip the lock. */
static void
worker_stop(struct workers__thread *t, workers_pool *pool, int err)
{
    if (err == 0 && atomic_load(&pool->closed))
        return;
    pthread_mutex_lock(&pool->lock);
    if (err != 0)
        workers__pool_stop_locked(pool, err);
    worker_id_release(pool, t->ctx.worker_id);
    pthread_mutex_unlock(&pool->lock);
}

/* The worker is over: its job has returned and is freed. Returns whether
 * the thread got another worker. */
static bool
worker_next(struct workers__thread *t, workers_pool *pool)
{
    if (atomic_fetch_sub(&pool->busy, 1) == 1 && atomic_load(&pool->closed))
        workers_ctx_cancel(&pool->idle_ev);
    if (atomic_load(&pool->closed))
        return worker_park_closed(t);
    pthread_mutex_lock(&pool->lock);
    bool open = !atomic_load(&pool->closed);
    if (open) {
        atomic_store_explicit(&t->park, WORKERS__PARK_WAIT,
                              memory_order_relaxed);
        t->next_free = pool->free_threads;
        pool->free_threads = t;
    }
    pthread_mutex_unlock(&pool->lock);
    return open ? worker_park(t) : worker_park_closed(t);
}

static void *
worker_main(void *p)
{
    struct workers__thread *t = p;
    workers_pool *pool = t->pool;
    int err;
    do {
        err = worker_loop(&t->ctx, t->job.fn, t->job.arg,
                          pool->cfg.stop_on_errors);
        worker_stop(t, pool, err);
        /* Freed before busy drops, so a returned close means every
         * worker's state is gone. */
        workers_job_free(&t->job);
    } while (worker_next(t, pool));
    return NULL;
}

static void
worker_wake(struct workers__thread *t, enum workers__park v)
{
    atomic_store_explicit(&t->park, v, memory_order_release);
    workers__futex_wake_all(&t->park);
}

static int
worker_spawn(workers_pool *pool, unsigned id, const workers_job *job,
             struct workers__thread **out)
{
    struct workers__thread *t = aligned_alloc(WORKERS__CACHELINE, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    memset(t, 0, sizeof(*t));
    workers__ctx_init(&t->ctx, id);
    t->job = *job;
    t->pool = pool;
    atomic_init(&t->park, WORKERS__PARK_RUN);

    /* The new thread inherits the creator's mask: block everything for
     * the duration of the call only, so the caller's own mask is kept. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&t->tid, pool->has_attr ? &pool->attr : NULL,
                             worker_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        free(t);
        return -err;
    }
    workers__futex_threads(1);
    t->next_all = pool->threads;
    pool->threads = t;
    *out = t;
    return 0;
}

int
workers__worker_add(workers_pool *pool, workers_job *job,
                    struct workers__thread **wake)
{
    if (pool->nactive == pool->cap) {
        int cap = pool->cap != 0 ? pool->cap * 2 : 16;
        struct workers__thread **a =
            realloc(pool->active, (size_t)cap * sizeof(*a));
        if (a == NULL)
            return -ENOMEM;
        pool->active = a;
        pool->cap = cap;
    }
    int taken = worker_id_take(pool);
    if (taken < 0)
        return taken;
    unsigned id = (unsigned)taken;
    struct workers__thread *t = pool->free_threads;
    if (t != NULL) {
        /* Parked: nothing else can reach its context until it is pushed
         * on the active stack below, so the reset is race-free. */
        pool->free_threads = t->next_free;
        workers__ctx_reset(&t->ctx, id);
        t->job = *job;
        /* A parked thread sees RUN without sleeping, or is woken by the
         * caller after the unlock. */
        atomic_store_explicit(&t->park, WORKERS__PARK_RUN,
                              memory_order_release);
        *wake = t;
    } else {
        int err = worker_spawn(pool, id, job, &t);
        if (err != 0) {
            worker_id_release(pool, id);
            return err;
        }
    }
    pool->active[pool->nactive++] = t;
    atomic_fetch_add(&pool->busy, 1);
    return 0;
}

void
workers__worker_join(struct workers__thread *t)
{
    worker_wake(t, WORKERS__PARK_EXIT);
    pthread_join(t->tid, NULL);
    workers__futex_threads(-1);
    workers__ctx_destroy(&t->ctx);
    free(t);
}
