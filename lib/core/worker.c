/*
 * The thread side of the pool: the worker loop, resting, parking, trimming
 * and thread creation.
 *
 * A thread serves one worker at a time. It runs its job until the worker's
 * context is cancelled (less, close, or a stop_on_errors stop), frees that
 * job, decrements busy, then parks: on the parked list under pool->lock when
 * the pool is open (more() may hand it the next worker), alone when it is
 * closed. While the pool is paused a worker rests between two runs, on the
 * resting list, sleeping on its park word until resume, less, a stop or a
 * close lets it go; all of those, and the worker's own check before it
 * sleeps, happen under the lock, so no wake-up is lost. After a run that
 * returned WORKERS_EIDLE it rests the same way for the pool's idle wait,
 * and also leaves the list by itself once the wait is over. The worker's id
 * is given back once its last run has returned, before its job is freed
 * (worker_stop).
 *
 * A thread parked for park_timeout on an open pool trims itself: it leaves
 * the parked list, closes its context's descriptor and exits. The next
 * thread to trim itself joins it (or workers_pool_free() does), so at most
 * one exited thread per pool waits to be joined, and its record then waits
 * on the spare list for the next thread made. Records are only freed by
 * workers_pool_free(), so a wake-up sent to one after a lock is dropped
 * never touches freed memory.
 *
 * Threads are created with every signal blocked (they inherit the mask that
 * worker_spawn sets around pthread_create) and with the pool's stack size.
 * A new thread grows the process's futex hash, if the count asks for it,
 * before its first run and holding no lock (futex.c).
 */
#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Sleeps while park is WAIT, until woken or the deadline passes; returns
 * park (still WAIT once the deadline passed). */
static uint32_t
worker_sleep(struct workers__thread *t, uint64_t deadline)
{
    uint32_t v;
    while ((v = atomic_load_explicit(&t->park, memory_order_acquire)) ==
           WORKERS__PARK_WAIT)
        if (workers__futex_wait(&t->park, WORKERS__PARK_WAIT, deadline) ==
            -ETIMEDOUT)
            return atomic_load_explicit(&t->park, memory_order_acquire);
    return v;
}

/* With lock held: takes resting t off the resting list and lets it go. */
static void
rest_take(workers_pool *pool, struct workers__thread *t)
{
    workers__list_remove(&t->rest);
    pool->nresting--;
    atomic_store_explicit(&t->park, WORKERS__PARK_RUN, memory_order_release);
}

/* Rests between two runs until let go: idle_ns 0 when the pool looked
 * paused (it rests only if it still is), else the idle wait after a
 * WORKERS_EIDLE run, which also ends when idle_ns have passed. Returns
 * false when the worker must end without another run (its pool is
 * closed). */
static bool
worker_rest(struct workers__thread *t, workers_pool *pool, uint64_t idle_ns)
{
    uint64_t deadline =
        idle_ns != 0 ? workers__deadline_after(idle_ns) : WORKERS__NO_DEADLINE;
    pthread_mutex_lock(&pool->lock);
    bool open = !atomic_load(&pool->closed);
    /* While the pool is open, paused and the worker's cancellation only
     * change under the lock: whatever would let it go comes after it is
     * on the list. */
    bool rest = open &&
                (idle_ns != 0 ||
                 atomic_load_explicit(&pool->paused, memory_order_relaxed)) &&
                !atomic_load_explicit(&t->ctx.done, memory_order_relaxed);
    if (rest) {
        atomic_store_explicit(&t->park, WORKERS__PARK_WAIT,
                              memory_order_relaxed);
        workers__list_push(&pool->resting, &t->rest);
        pool->nresting++;
    }
    pthread_mutex_unlock(&pool->lock);
    if (!rest)
        return open;
    /* The rest falls between two runs: moving waits on tells the elapsed
     * middleware and the autoscaler that the next run starts after it. */
    atomic_fetch_add_explicit(&t->ctx.waits, 1, memory_order_relaxed);
    if (worker_sleep(t, deadline) == WORKERS__PARK_WAIT) {
        /* The idle wait is over; unless it was let go meanwhile, it leaves
         * the list by itself. */
        pthread_mutex_lock(&pool->lock);
        if (atomic_load_explicit(&t->park, memory_order_relaxed) ==
            WORKERS__PARK_WAIT)
            rest_take(pool, t);
        pthread_mutex_unlock(&pool->lock);
    }
    return open;
}

/*
 * THE hot path: one iteration is one run of the job. It takes no lock, makes
 * no allocation and no syscall: an acquire load of the worker's flag, a
 * relaxed load of the pool's paused flag (a cache line that only pause and
 * resume write), an indirect call and a compare of its result with
 * WORKERS_EIDLE (only a run that found no work looks at the idle wait, and
 * rests: the one pause a worker makes by design). Errors leave the loop only
 * with stop_on_errors, and only those workers_result_is_error() calls errors (a
 * cancellation, WORKERS_ECANCELED or -ECANCELED, and WORKERS_EIDLE never
 * do); otherwise only the middlewares see them.
 */
static int
worker_loop(struct workers__thread *t, workers_pool *pool)
{
    workers_ctx *ctx = &t->ctx;
    workers_job_fn fn = t->job.fn;
    void *arg = t->job.arg;
    bool stop_on_errors = pool->cfg.stop_on_errors;
    while (!atomic_load_explicit(&ctx->done, memory_order_acquire)) {
        if (atomic_load_explicit(&pool->paused, memory_order_relaxed)) {
            if (!worker_rest(t, pool, 0))
                return 0;
            continue;
        }
        int err = fn(ctx, arg);
        if (err == WORKERS_EIDLE) {
            uint64_t idle_ns =
                atomic_load_explicit(&pool->idle_wait, memory_order_relaxed);
            if (idle_ns != 0 && !worker_rest(t, pool, idle_ns))
                return 0;
        } else if (stop_on_errors && workers_result_is_error(err)) {
            return err;
        }
    }
    return 0;
}

/* Parked for park_timeout: leaves the parked list, then joins the thread
 * that trimmed itself before, if any. Returns false when the thread must
 * stay: it was given a worker meanwhile, or the pool has closed
 * (workers_pool_free() ends it then). */
static bool
worker_trim(struct workers__thread *t, workers_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    bool trim = !atomic_load(&pool->closed) &&
                atomic_load_explicit(&t->park, memory_order_relaxed) ==
                    WORKERS__PARK_WAIT;
    struct workers__thread *prev = NULL;
    if (trim) {
        workers__list_remove(&t->free);
        pool->nthreads--;
        prev = pool->reap;
        pool->reap = t;
        if (prev != NULL)
            prev->joined = true;
    }
    pthread_mutex_unlock(&pool->lock);
    if (!trim)
        return false;
    /* Nothing reaches this context any more: only active workers' are
     * cancelled and only parked threads' are reset. */
    workers__ctx_destroy(&t->ctx);
    if (prev != NULL) {
        pthread_join(prev->tid, NULL);
        workers__futex_threads(-1);
        pthread_mutex_lock(&pool->lock);
        workers__list_push(&pool->spare, &prev->free);
        pthread_mutex_unlock(&pool->lock);
    }
    return true;
}

/* On the parked list of an open pool: sleeps until more() gives this thread
 * a worker (true), workers_pool_free() wants it to exit or it trimmed
 * itself (false). */
static bool
worker_park(struct workers__thread *t, workers_pool *pool)
{
    uint64_t deadline = workers__deadline_after(pool->park_timeout);
    uint32_t v;
    while ((v = worker_sleep(t, deadline)) == WORKERS__PARK_WAIT) {
        if (worker_trim(t, pool))
            return false;
        deadline = WORKERS__NO_DEADLINE;
    }
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
    return worker_sleep(t, WORKERS__NO_DEADLINE) == WORKERS__PARK_RUN;
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
    workers__pool_unbusy(pool);
    if (atomic_load(&pool->closed))
        return worker_park_closed(t);
    pthread_mutex_lock(&pool->lock);
    bool open = !atomic_load(&pool->closed);
    if (open) {
        atomic_store_explicit(&t->park, WORKERS__PARK_WAIT,
                              memory_order_relaxed);
        workers__list_push(&pool->parked, &t->free);
    }
    pthread_mutex_unlock(&pool->lock);
    return open ? worker_park(t, pool) : worker_park_closed(t);
}

static void *
worker_main(void *p)
{
    struct workers__thread *t = p;
    workers_pool *pool = t->pool;
    workers__futex_grow();
    int err;
    do {
        err = worker_loop(t, pool);
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

/* With lock held: a new thread for the worker, in a spare record if one
 * waits, else in a new one. */
static int
worker_spawn(workers_pool *pool, unsigned id, const workers_job *job,
             struct workers__thread **out)
{
    struct workers__thread *t;
    bool spare = !workers__list_empty(&pool->spare);
    if (spare) {
        t = WORKERS__OF(pool->spare.next, struct workers__thread, free);
        workers__list_remove(&t->free);
    } else {
        t = aligned_alloc(WORKERS__CACHELINE, sizeof(*t));
        if (t == NULL)
            return -ENOMEM;
        memset(t, 0, sizeof(*t));
        workers__list_init(&t->active);
        workers__list_init(&t->rest);
        workers__list_init(&t->free);
    }
    workers__ctx_init(&t->ctx, id);
    t->job = *job;
    t->pool = pool;
    t->joined = false;
    atomic_store_explicit(&t->park, WORKERS__PARK_RUN, memory_order_relaxed);

    /* Counted first: the new thread may grow the futex hash before this
     * call returns, and must find the size its birth asks for. */
    workers__futex_threads(1);
    /* The new thread inherits the creator's mask: block everything for
     * the duration of the call only, so the caller's own mask is kept. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&t->tid, pool->has_attr ? &pool->attr : NULL,
                             worker_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        workers__futex_threads(-1);
        if (spare) {
            t->joined = true;
            workers__list_push(&pool->spare, &t->free);
        } else {
            free(t);
        }
        return -err;
    }
    pool->nthreads++;
    if (!spare) {
        t->next_all = pool->threads;
        pool->threads = t;
    }
    *out = t;
    return 0;
}

int
workers__worker_add(workers_pool *pool, workers_job *job,
                    struct workers__thread **wake)
{
    int taken = worker_id_take(pool);
    if (taken < 0)
        return taken;
    unsigned id = (unsigned)taken;
    struct workers__thread *t;
    if (!workers__list_empty(&pool->parked)) {
        /* Parked: nothing else can reach its context until it is on the
         * active list, so the reset is race-free. */
        t = WORKERS__OF(pool->parked.next, struct workers__thread, free);
        workers__list_remove(&t->free);
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
    workers__list_push(&pool->active, &t->active);
    pool->nactive++;
    return 0;
}

_Atomic uint32_t *
workers__worker_remove(workers_pool *pool)
{
    bool resting = !workers__list_empty(&pool->resting);
    struct workers__thread *t =
        resting
            ? WORKERS__OF(pool->resting.next, struct workers__thread, rest)
            : WORKERS__OF(pool->active.next, struct workers__thread, active);
    workers__list_remove(&t->active);
    pool->nactive--;
    /* Marked cancelled under the lock: until it is, the worker cannot
     * finish, park and be handed to another more(), whose reset the mark
     * would undo. */
    workers__ctx_mark(&t->ctx);
    if (!resting)
        return &t->ctx.done;
    /* Let go after the mark, so that it wakes to a cancelled context. */
    rest_take(pool, t);
    return &t->park;
}

struct workers__thread *
workers__rest_pop(workers_pool *pool)
{
    if (workers__list_empty(&pool->resting))
        return NULL;
    struct workers__thread *t =
        WORKERS__OF(pool->resting.next, struct workers__thread, rest);
    rest_take(pool, t);
    return t;
}

void
workers__rest_release(workers_pool *pool)
{
    for (;;) {
        struct workers__thread *t = NULL;
        pthread_mutex_lock(&pool->lock);
        if (atomic_load(&pool->closed) || pool->stopped ||
            !atomic_load_explicit(&pool->paused, memory_order_relaxed))
            t = workers__rest_pop(pool);
        pthread_mutex_unlock(&pool->lock);
        if (t == NULL)
            return;
        workers__futex_wake_all(&t->park);
    }
}

void
workers__worker_join(workers_pool *pool, struct workers__thread *t)
{
    pthread_mutex_lock(&pool->lock);
    bool claim = !t->joined;
    t->joined = true;
    pthread_mutex_unlock(&pool->lock);
    if (!claim)
        return;
    worker_wake(t, WORKERS__PARK_EXIT);
    pthread_join(t->tid, NULL);
    workers__futex_threads(-1);
}

void
workers__worker_free(struct workers__thread *t)
{
    workers__ctx_destroy(&t->ctx);
    free(t);
}
