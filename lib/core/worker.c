/*
 * The thread side of the pool: the worker loop, parking and thread creation.
 *
 * A thread serves one worker at a time. It runs its job until the worker's
 * context is cancelled (less, close, or a stop_on_errors stop), frees that
 * job, then under pool->lock decrements busy and either parks itself on the
 * free list (pool open: more() may hand it the next worker) or exits (pool
 * closed). The thread record outlives the thread: workers_pool_free() joins
 * and frees it.
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
 * call. Errors leave the loop only with stop_on_errors (ECANCELED never
 * does); otherwise only the middlewares see them.
 */
static int
worker_loop(workers_ctx *ctx, workers_job_fn fn, void *arg,
            bool stop_on_errors)
{
    while (!atomic_load_explicit(&ctx->done, memory_order_acquire)) {
        int err = fn(ctx, arg);
        if (err != 0 && err != WORKERS_ECANCELED && stop_on_errors)
            return err;
    }
    return 0;
}

/* Sleeps until more() gives this thread a worker (true) or the pool closes
 * (false). */
static bool
worker_park(struct workers__thread *t)
{
    uint32_t v;
    while ((v = atomic_load_explicit(&t->park, memory_order_acquire)) ==
           WORKERS__PARK_WAIT)
        workers__futex_wait(&t->park, WORKERS__PARK_WAIT,
                            WORKERS__NO_DEADLINE);
    return v == WORKERS__PARK_RUN;
}

static void *
worker_main(void *p)
{
    struct workers__thread *t = p;
    workers_pool *pool = t->pool;
    bool parked;
    do {
        int err = worker_loop(&t->ctx, t->job.fn, t->job.arg,
                              pool->cfg.stop_on_errors);
        /* Freed before busy drops, so a returned close means every
         * worker's state is gone. */
        workers_job_free(&t->job);

        pthread_mutex_lock(&pool->lock);
        if (err != 0)
            workers__pool_stop_locked(pool, err);
        parked = !pool->closed;
        if (parked) {
            atomic_store_explicit(&t->park, WORKERS__PARK_WAIT,
                                  memory_order_relaxed);
            t->next_free = pool->free_threads;
            pool->free_threads = t;
        }
        if (--pool->busy == 0 && pool->closed)
            workers_ctx_cancel(&pool->idle_ev);
        pthread_mutex_unlock(&pool->lock);
    } while (parked && worker_park(t));
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
    t->next_all = pool->threads;
    pool->threads = t;
    *out = t;
    return 0;
}

int
workers__worker_add(workers_pool *pool, workers_job *job)
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
    unsigned id = (unsigned)pool->nactive + 1;
    struct workers__thread *t = pool->free_threads;
    if (t != NULL) {
        /* Parked: nothing else can reach its context until it is pushed
         * on the active stack below, so the reset is race-free. */
        pool->free_threads = t->next_free;
        workers__ctx_reset(&t->ctx, id);
        t->job = *job;
        worker_wake(t, WORKERS__PARK_RUN);
    } else {
        int err = worker_spawn(pool, id, job, &t);
        if (err != 0)
            return err;
    }
    pool->active[pool->nactive++] = t;
    pool->busy++;
    return 0;
}

void
workers__worker_release_parked(workers_pool *pool)
{
    struct workers__thread *t = pool->free_threads;
    pool->free_threads = NULL;
    while (t != NULL) {
        struct workers__thread *next = t->next_free;
        worker_wake(t, WORKERS__PARK_EXIT);
        t = next;
    }
}
