/*
 * Run-time control of a pool: pause and resume, its limits, its idle wait,
 * and a snapshot of its state.
 *
 * pause sets the pool's paused flag under the lock. Each worker loads it
 * before each run and, once it is set, rests (worker.c) instead of starting
 * the next one: a run in progress is never interrupted or cancelled. resume
 * clears it and lets the resting workers go. more, less and close work as
 * ever meanwhile: a worker added while paused rests before its first run,
 * less takes a resting worker first, close lets every one go.
 * set_limits changes min and max under the lock, then brings the worker
 * count into them with the steps of less and more, holding add_lock all
 * along so that no more() interleaves.
 * set_idle_wait stores the idle wait that each worker loads after a run
 * that found no work, then lets the resting workers go as resume does, so
 * that those in an idle wait start a new one of the new length.
 */
#include "internal.h"

/* With lock held: pause, resume, set_limits and set_idle_wait refuse a
 * closed or stopped pool, as more and less do. */
static int
control_can(const workers_pool *pool)
{
    return atomic_load(&pool->closed) || pool->stopped ? WORKERS_ECLOSED : 0;
}

/* pause (true) and resume (false). */
static int
control_pause(workers_pool *pool, bool pause)
{
    pthread_mutex_lock(&pool->lock);
    int err = control_can(pool);
    if (err == 0)
        atomic_store_explicit(&pool->paused, pause, memory_order_relaxed);
    pthread_mutex_unlock(&pool->lock);
    if (err == 0 && !pause)
        workers__rest_release(pool);
    return err;
}

int
workers_pool_pause(workers_pool *pool)
{
    return control_pause(pool, true);
}

int
workers_pool_resume(workers_pool *pool)
{
    return control_pause(pool, false);
}

int
workers_pool_set_idle_wait(workers_pool *pool, uint64_t idle_wait_ns)
{
    pthread_mutex_lock(&pool->lock);
    int err = control_can(pool);
    if (err == 0)
        atomic_store_explicit(&pool->idle_wait, idle_wait_ns,
                              memory_order_relaxed);
    pthread_mutex_unlock(&pool->lock);
    if (err == 0)
        workers__rest_release(pool);
    return err;
}

static bool
below_min(workers_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    bool below = pool->nactive < pool->cfg.min;
    pthread_mutex_unlock(&pool->lock);
    return below;
}

int
workers_pool_set_limits(workers_pool *pool, int min, int max)
{
    workers_config cfg = {.min = min, .max = max};
    int err = workers_config_validate(&cfg);
    if (err != 0)
        return err;
    pthread_mutex_lock(&pool->add_lock);
    pthread_mutex_lock(&pool->lock);
    err = control_can(pool);
    if (err == 0) {
        pool->cfg.min = min;
        pool->cfg.max = max;
    }
    bool started = pool->started;
    pthread_mutex_unlock(&pool->lock);
    if (err == 0 && started) {
        while ((err = workers__pool_remove(pool, true)) == 0)
            ;
        if (err == WORKERS_EMIN)
            err = 0;
        while (err == 0 && below_min(pool))
            err = workers__pool_add(pool);
    }
    pthread_mutex_unlock(&pool->add_lock);
    return err;
}

void
workers_pool_status_get(workers_pool *pool, workers_pool_status *out)
{
    *out = (workers_pool_status){0};
    pthread_mutex_lock(&pool->lock);
    out->current = pool->nactive;
    out->min = pool->cfg.min;
    out->max = pool->cfg.max;
    out->paused = atomic_load_explicit(&pool->paused, memory_order_relaxed);
    /* A shutdown lets its resters go after dropping the lock: closed, they
     * are resting no more. */
    out->resting = atomic_load(&pool->closed) ? 0 : pool->nresting;
    out->idle_wait_ns =
        atomic_load_explicit(&pool->idle_wait, memory_order_relaxed);
    out->threads = pool->nthreads;
    pthread_mutex_unlock(&pool->lock);
}
