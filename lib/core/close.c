/*
 * How a pool ends: a stop_on_errors stop, the shutdown that close and a
 * failed start share, and the wait of close, wait and run.
 *
 * A stop leaves the pool open but refusing more/less (WORKERS_ECLOSED) and
 * wakes run() through stopped_ev; only close ends it. A shutdown marks the
 * pool closed, detaches the active list and cancels those workers after
 * dropping the lock, so that the lock is free for a worker that needs it
 * (one stopping with an error; one finishing cleanly on a closed pool skips
 * it, worker.c) while the rest are still being cancelled, then lets the
 * resting ones go. That is safe because a closed pool never reuses a thread and
 * thread records live until workers_pool_free(). busy counts the workers
 * and the start/more calls building a job; the last of them to finish on a
 * closed pool cancels idle_ev, which close and wait wait on. Threads do not
 * exit at close (see worker.c): workers_pool_free() ends and joins them.
 */
#include "internal.h"

#include <errno.h>
#include <poll.h>

/* Unlike a shutdown, a stop cancels its workers with the lock held: the
 * active list stays the pool's (a later close takes it), so it cannot be
 * walked unlocked. The cost is N futex wakes under the lock, once in a
 * pool's life; a woken worker that then needs the lock (worker_stop) waits
 * for the walk to end, which a shutdown avoids for the common close. */
void
workers__pool_stop_locked(workers_pool *pool, int err)
{
    if (atomic_load(&pool->closed) || pool->stopped)
        return;
    pool->stopped = true;
    pool->first_err = err;
    for (struct workers__list *n = pool->active.next; n != &pool->active;
         n = n->next)
        workers_ctx_cancel(
            &WORKERS__OF(n, struct workers__thread, active)->ctx);
    struct workers__thread *t;
    while ((t = workers__rest_pop(pool)) != NULL)
        workers__futex_wake_all(&t->park);
    workers_ctx_cancel(&pool->stopped_ev);
}

int
workers__pool_shut(workers_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    if (atomic_load(&pool->closed)) {
        pthread_mutex_unlock(&pool->lock);
        return WORKERS_ECLOSED;
    }
    atomic_store(&pool->closed, true);
    struct workers__list active;
    workers__list_take(&active, &pool->active);
    pool->nactive = 0;
    workers_ctx_cancel(&pool->stopped_ev);
    if (atomic_load(&pool->busy) == 0)
        workers_ctx_cancel(&pool->idle_ev);
    pthread_mutex_unlock(&pool->lock);

    while (!workers__list_empty(&active)) {
        struct workers__list *n = active.next;
        workers__list_remove(n);
        workers_ctx_cancel(
            &WORKERS__OF(n, struct workers__thread, active)->ctx);
    }
    workers__rest_release(pool);
    return 0;
}

void
workers__pool_unbusy(workers_pool *pool)
{
    if (atomic_fetch_sub(&pool->busy, 1) == 1 && atomic_load(&pool->closed))
        workers_ctx_cancel(&pool->idle_ev);
}

/* Waits on both contexts' descriptors. Returns -errno when a descriptor
 * cannot be made, so the caller falls back to slices. */
static int
wait_both(workers_ctx *ev, workers_ctx *ctx, uint64_t left)
{
    int evfd = workers_ctx_fd(ev);
    if (evfd < 0)
        return evfd;
    int ctxfd = workers_ctx_fd(ctx);
    if (ctxfd < 0)
        return ctxfd;
    struct pollfd pfd[2] = {{evfd, POLLIN, 0}, {ctxfd, POLLIN, 0}};
    struct timespec ts = workers__timespec(left);
    /* EINTR or a wake-up: the caller re-checks both flags. */
    ppoll(pfd, 2, left != WORKERS__NO_DEADLINE ? &ts : NULL, NULL);
    return 0;
}

int
workers__pool_wait(workers_ctx *ev, workers_ctx *ctx, uint64_t deadline)
{
    for (;;) {
        /* The caller's context first: "already cancelled" wins. */
        if (ctx != NULL && workers_ctx_done(ctx))
            return WORKERS_ECANCELED;
        if (workers_ctx_done(ev))
            return 0;
        uint64_t now = workers__now_ns();
        if (deadline != WORKERS__NO_DEADLINE && now >= deadline)
            return WORKERS_ETIMEDOUT;
        uint64_t left = deadline == WORKERS__NO_DEADLINE ? WORKERS__NO_DEADLINE
                                                         : deadline - now;
        if (ctx == NULL) {
            workers_ctx_wait(ev, left);
        } else if (wait_both(ev, ctx, left) != 0) {
            /* Out of descriptors: a process in that state must still be
             * able to close its pools, so watch ctx in 1 ms slices. */
            workers_ctx_wait(ev, left < 1000000u ? left : 1000000u);
        }
    }
}

/* Waits for idle_ev, then returns the error that stopped the pool. */
static int
pool_wait_idle(workers_pool *pool, workers_ctx *ctx, uint64_t deadline)
{
    /* As Go's Close: a closed pool never started has nothing to wait for,
     * so its close succeeds before ctx is looked at. started cannot change
     * once the pool is closed. */
    pthread_mutex_lock(&pool->lock);
    bool nothing = atomic_load(&pool->closed) && !pool->started;
    pthread_mutex_unlock(&pool->lock);
    if (nothing)
        return 0;
    int err = workers__pool_wait(&pool->idle_ev, ctx, deadline);
    if (err != 0)
        return err;
    pthread_mutex_lock(&pool->lock);
    err = pool->first_err;
    pthread_mutex_unlock(&pool->lock);
    return err;
}

int
workers__pool_close(workers_pool *pool, workers_ctx *ctx, uint64_t deadline)
{
    int err = workers__pool_shut(pool);
    if (err != 0)
        return err;
    return pool_wait_idle(pool, ctx, deadline);
}

int
workers_pool_close(workers_pool *pool, workers_ctx *ctx)
{
    return workers__pool_close(pool, ctx, WORKERS__NO_DEADLINE);
}

int
workers_pool_close_timeout(workers_pool *pool, uint64_t timeout_ns)
{
    return workers__pool_close(pool, NULL, workers__deadline_after(timeout_ns));
}

int
workers_pool_wait(workers_pool *pool, workers_ctx *ctx)
{
    return pool_wait_idle(pool, ctx, WORKERS__NO_DEADLINE);
}

int
workers_pool_wait_timeout(workers_pool *pool, uint64_t timeout_ns)
{
    return pool_wait_idle(pool, NULL, workers__deadline_after(timeout_ns));
}
