/*
 * The pool's public face: config, creation, start/run, more/less/current and
 * the destructor. Threads live in worker.c, endings in close.c.
 *
 * Who does what: start and more (serialised by add_lock, lock order
 * add_lock then lock) build each worker's job on the calling thread (the
 * builder or a borrowed copy of the pool's job, then the middlewares) without
 * holding lock, counted in busy meanwhile so that a close waits for that
 * job too, then take lock to push the worker; less and close only take
 * lock. A successful start gives the pool the job or builder until
 * workers_pool_free(), which joins every thread ever created; a failed
 * start, and run, leave it with the caller.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
workers_config_validate(const workers_config *cfg)
{
    if (cfg == NULL)
        return 0;
    if (cfg->min < 0)
        return WORKERS_EINVALMIN;
    if (cfg->max != 0 && cfg->max < cfg->min)
        return WORKERS_EINVALMAX;
    if (cfg->initial != 0 &&
        (cfg->initial < cfg->min || (cfg->max != 0 && cfg->initial > cfg->max)))
        return WORKERS_EINVALINITIAL;
    return WORKERS__RESERVED_ZERO(cfg);
}

/* cfg.stack_size rounded up to PTHREAD_STACK_MIN and the page size. */
static int
pool_set_stack(workers_pool *pool)
{
    size_t size = pool->cfg.stack_size;
    if (size == 0)
        return 0;
    size_t min = PTHREAD_STACK_MIN, page = (size_t)sysconf(_SC_PAGESIZE);
    if (size < min)
        size = min;
    if (size > SIZE_MAX - page)
        return -EINVAL;
    size = (size + page - 1) / page * page;
    int err = pthread_attr_init(&pool->attr);
    if (err != 0)
        return -err;
    err = pthread_attr_setstacksize(&pool->attr, size);
    if (err != 0) {
        pthread_attr_destroy(&pool->attr);
        return -err;
    }
    pool->has_attr = true;
    return 0;
}

int
workers_pool_new_with_config(workers_pool **out, const workers_config *cfg,
                             const workers_middleware *mws, size_t nmws)
{
    int err = workers_config_validate(cfg);
    if (err != 0)
        return err;
    /* Aligned: paused must have its cache line to itself. */
    workers_pool *pool = aligned_alloc(WORKERS__CACHELINE, sizeof(*pool));
    if (pool == NULL)
        return -ENOMEM;
    memset(pool, 0, sizeof(*pool));
    if (cfg != NULL)
        pool->cfg = *cfg;
    pool->initial = pool->cfg.initial != 0 ? pool->cfg.initial
                    : pool->cfg.min > 1    ? pool->cfg.min
                                           : 1;
    pool->park_timeout = pool->cfg.park_timeout_ns != 0
                             ? pool->cfg.park_timeout_ns
                             : WORKERS_PARK_TIMEOUT_DEFAULT_NS;
    atomic_init(&pool->idle_wait, pool->cfg.idle_wait_ns);
    workers__list_init(&pool->active);
    workers__list_init(&pool->resting);
    workers__list_init(&pool->parked);
    workers__list_init(&pool->spare);
    if (nmws > 0) {
        pool->mws = malloc(nmws * sizeof(*mws));
        if (pool->mws == NULL) {
            free(pool);
            return -ENOMEM;
        }
        memcpy(pool->mws, mws, nmws * sizeof(*mws));
        pool->nmws = nmws;
    }
    err = pool_set_stack(pool);
    if (err == 0 && (err = -pthread_mutex_init(&pool->lock, NULL)) == 0 &&
        (err = -pthread_mutex_init(&pool->add_lock, NULL)) != 0)
        pthread_mutex_destroy(&pool->lock);
    if (err != 0) {
        if (pool->has_attr)
            pthread_attr_destroy(&pool->attr);
        free(pool->mws);
        free(pool);
        return err;
    }
    workers__ctx_init(&pool->stopped_ev, 0);
    workers__ctx_init(&pool->idle_ev, 0);
    *out = pool;
    return 0;
}

int
workers_pool_new(workers_pool **out, const workers_middleware *mws, size_t nmws)
{
    return workers_pool_new_with_config(out, NULL, mws, nmws);
}

workers_pool *
workers_pool_must(const workers_config *cfg, const workers_middleware *mws,
                  size_t nmws)
{
    workers_pool *pool;
    int err = workers_pool_new_with_config(&pool, cfg, mws, nmws);
    if (err != 0) {
        fprintf(stderr, "workers_pool_must: %s (%s)\n", workers_strerror(err),
                workers_err_name(err));
        abort();
    }
    return pool;
}

/* With lock held: whether one more worker may be added. */
static int
pool_can_add(const workers_pool *pool)
{
    if (atomic_load(&pool->closed) || pool->stopped)
        return WORKERS_ECLOSED;
    if (!pool->started)
        return WORKERS_ENOTSTARTED;
    if (pool->cfg.max != 0 && pool->nactive >= pool->cfg.max)
        return WORKERS_EMAX;
    return 0;
}

/* With lock held: initial, clamped into the limits in force (set_limits
 * may have changed them before start). */
static int
pool_initial(const workers_pool *pool)
{
    int n = pool->initial;
    if (n < pool->cfg.min)
        n = pool->cfg.min;
    if (pool->cfg.max != 0 && n > pool->cfg.max)
        n = pool->cfg.max;
    return n;
}

/* With add_lock held: the next worker's job, wrapped by the middlewares.
 * Jobs from start(job) borrow the pool's arg (free NULL): the pool frees
 * it once, in workers_pool_free(). */
static int
pool_make_job(workers_pool *pool, workers_job *out)
{
    if (pool->has_builder) {
        memset(out, 0, sizeof(*out));
        int err = pool->builder.new_job(pool->builder.arg, out);
        if (err != 0)
            return err;
    } else {
        *out = workers_job_func(pool->job.fn, pool->job.arg);
    }
    return workers_wrap(out, pool->mws, pool->nmws);
}

/* The state is checked before building (no builder call for a closed
 * pool) and again after (close may have come meanwhile). From the first
 * check on, the call counts in busy: the worker added inherits that count,
 * else it is dropped once the job is freed. */
int
workers__pool_add(workers_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    int err = pool_can_add(pool);
    if (err == 0)
        atomic_fetch_add(&pool->busy, 1);
    pthread_mutex_unlock(&pool->lock);
    if (err != 0)
        return err;
    workers_job job;
    struct workers__thread *parked = NULL;
    err = pool_make_job(pool, &job);
    if (err == 0) {
        pthread_mutex_lock(&pool->lock);
        err = pool_can_add(pool);
        if (err == 0)
            err = workers__worker_add(pool, &job, &parked);
        pthread_mutex_unlock(&pool->lock);
        if (err != 0)
            workers_job_free(&job);
    }
    if (err != 0) {
        workers__pool_unbusy(pool);
        return err;
    }
    /* Woken after the unlock, so that it does not preempt us while we hold
     * the lock its next park would need. */
    if (parked != NULL)
        workers__futex_wake_all(&parked->park);
    return 0;
}

/*
 * start and run: exactly one of job and builder is set. On success the pool
 * keeps it until workers_pool_free(), which frees it unless `borrowed` (run:
 * the caller keeps it). On failure the pool keeps nothing, so the caller
 * may free it or try again: the pool is shut before add_lock is dropped
 * (no more() can then call the builder), and workers already started are
 * waited for when they share the job's arg, or for run, which promises
 * that no worker runs once it returns. start's builder workers run and free
 * jobs of their own, so they are left to workers_pool_free().
 */
static int
pool_start(workers_pool *pool, const workers_job *job,
           const workers_builder *builder, bool borrowed)
{
    pthread_mutex_lock(&pool->add_lock);
    pthread_mutex_lock(&pool->lock);
    int err = atomic_load(&pool->closed) ? WORKERS_ECLOSED
              : pool->started            ? WORKERS_ESTARTED
                                         : 0;
    if (err == 0)
        pool->started = true;
    int initial = pool_initial(pool);
    pthread_mutex_unlock(&pool->lock);
    if (err != 0) {
        pthread_mutex_unlock(&pool->add_lock);
        return err;
    }
    if (job != NULL) {
        pool->job = *job;
        if (borrowed)
            pool->job.free = NULL;
    } else {
        pool->builder = *builder;
        if (borrowed)
            pool->builder.free = NULL;
        pool->has_builder = true;
    }

    for (int i = 0; i < initial && err == 0; i++)
        err = workers__pool_add(pool);
    if (err == 0) {
        pthread_mutex_unlock(&pool->add_lock);
        return 0;
    }

    pthread_mutex_lock(&pool->lock);
    /* A worker's error stopped the pool while the rest were being added:
     * the start itself worked, and run or close will report that error. */
    bool stopped = pool->stopped && !atomic_load(&pool->closed);
    pthread_mutex_unlock(&pool->lock);
    if (err == WORKERS_ECLOSED && stopped) {
        pthread_mutex_unlock(&pool->add_lock);
        return 0;
    }
    workers__pool_shut(pool);
    pool->job = workers_job_func(NULL, NULL);
    pool->builder = workers_builder_func(NULL, NULL);
    pool->has_builder = false;
    pthread_mutex_unlock(&pool->add_lock);
    if (job != NULL || borrowed)
        workers__pool_wait(&pool->idle_ev, NULL, WORKERS__NO_DEADLINE);
    return err;
}

int
workers_pool_start(workers_pool *pool, const workers_job *job)
{
    return pool_start(pool, job, NULL, false);
}

int
workers_pool_start_with_builder(workers_pool *pool,
                                const workers_builder *builder)
{
    return pool_start(pool, NULL, builder, false);
}

static int
pool_run(workers_pool *pool, const workers_job *job,
         const workers_builder *builder, workers_ctx *ctx)
{
    int err = pool_start(pool, job, builder, true);
    if (err != 0)
        return err;
    workers__pool_wait(&pool->stopped_ev, ctx, WORKERS__NO_DEADLINE);
    err = workers__pool_close(pool, NULL, WORKERS__NO_DEADLINE);
    /* The job stays the caller's: even when another thread closed the pool
     * first (ECLOSED, maybe with a deadline that passed), no worker may
     * still run it once run returns. */
    workers__pool_wait(&pool->idle_ev, NULL, WORKERS__NO_DEADLINE);
    return err;
}

int
workers_pool_run(workers_pool *pool, const workers_job *job, workers_ctx *ctx)
{
    return pool_run(pool, job, NULL, ctx);
}

int
workers_pool_run_with_builder(workers_pool *pool,
                              const workers_builder *builder, workers_ctx *ctx)
{
    return pool_run(pool, NULL, builder, ctx);
}

int
workers_pool_more(workers_pool *pool)
{
    pthread_mutex_lock(&pool->add_lock);
    int err = workers__pool_add(pool);
    pthread_mutex_unlock(&pool->add_lock);
    return err;
}

int
workers__pool_remove(workers_pool *pool, bool above_max)
{
    pthread_mutex_lock(&pool->lock);
    int keep = above_max ? pool->cfg.max : pool->cfg.min;
    int err = atomic_load(&pool->closed) || pool->stopped ? WORKERS_ECLOSED
              : !pool->started                            ? WORKERS_ENOTSTARTED
              : pool->nactive <= keep || (above_max && keep == 0) ? WORKERS_EMIN
                                                                  : 0;
    _Atomic uint32_t *wake = err == 0 ? workers__worker_remove(pool) : NULL;
    pthread_mutex_unlock(&pool->lock);
    /* The wake-up waits until the lock is dropped, so the woken worker does
     * not queue on it: if the thread has been reused by then, the wake is
     * only spurious, which futex waiters tolerate. Records live until
     * workers_pool_free(). */
    if (wake != NULL)
        workers__futex_wake_all(wake);
    return err;
}

int
workers_pool_less(workers_pool *pool)
{
    return workers__pool_remove(pool, false);
}

int
workers_pool_current(workers_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    int n = pool->nactive;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

void
workers_pool_free(workers_pool *pool)
{
    if (pool == NULL)
        return;
    /* ECLOSED when already closed, perhaps with workers still finishing
     * after a deadline: the joins below wait for them. */
    workers__pool_close(pool, NULL, WORKERS__NO_DEADLINE);
    for (struct workers__thread *t = pool->threads; t != NULL; t = t->next_all)
        workers__worker_join(pool, t);
    struct workers__thread *t = pool->threads;
    while (t != NULL) {
        struct workers__thread *next = t->next_all;
        workers__worker_free(t);
        t = next;
    }
    if (pool->has_builder) {
        if (pool->builder.free != NULL)
            pool->builder.free(pool->builder.arg);
    } else {
        workers_job_free(&pool->job);
    }
    workers__ctx_destroy(&pool->stopped_ev);
    workers__ctx_destroy(&pool->idle_ev);
    free(pool->ids);
    free(pool->mws);
    if (pool->has_attr)
        pthread_attr_destroy(&pool->attr);
    pthread_mutex_destroy(&pool->add_lock);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}
