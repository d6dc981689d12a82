/*
 * How a pool ends: a stop_on_errors stop, the shutdown that close and a
 * failed start share, and the wait of close and run.
 *
 * A stop leaves the pool open but refusing more/less (WORKERS_ECLOSED) and
 * wakes run() through stopped_ev; only close ends it. A shutdown marks the
 * pool closed, detaches the active stack and cancels those workers after
 * dropping the lock, so that the workers it wakes can take the lock to
 * finish while the rest are still being cancelled. That is safe because a
 * closed pool never reuses a thread and thread records live until
 * workers_pool_free(). The last worker to finish on a closed pool cancels
 * idle_ev, which close waits on. Threads do not exit at close (see
 * worker.c): workers_pool_free() ends and joins them.
 */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

void
workers__pool_stop_locked(workers_pool *pool, int err)
{
    if (atomic_load(&pool->closed) || pool->stopped)
        return;
    pool->stopped = true;
    pool->first_err = err;
    for (int i = 0; i < pool->nactive; i++)
        workers_ctx_cancel(&pool->active[i]->ctx);
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
    struct workers__thread **active = pool->active;
    int n = pool->nactive;
    pool->active = NULL;
    pool->nactive = pool->cap = 0;
    workers_ctx_cancel(&pool->stopped_ev);
    if (atomic_load(&pool->busy) == 0)
        workers_ctx_cancel(&pool->idle_ev);
    pthread_mutex_unlock(&pool->lock);

    for (int i = 0; i < n; i++)
        workers_ctx_cancel(&active[i]->ctx);
    free(active);
    return 0;
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

int
workers__pool_close(workers_pool *pool, workers_ctx *ctx, uint64_t deadline)
{
    int err = workers__pool_shut(pool);
    if (err != 0)
        return err;
    /* As Go's Close: a pool never started has nothing to wait for, so its
     * close succeeds before ctx is looked at. started cannot change once
     * the pool is closed. */
    pthread_mutex_lock(&pool->lock);
    bool started = pool->started;
    pthread_mutex_unlock(&pool->lock);
    if (!started)
        return 0;
    err = workers__pool_wait(&pool->idle_ev, ctx, deadline);
    if (err != 0)
        return err;
    pthread_mutex_lock(&pool->lock);
    err = pool->first_err;
    pthread_mutex_unlock(&pool->lock);
    return err;
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
