/*
 * workersd's pool: a libworkers pool whose workers follow the current
 * generation (see workersd.h). Each worker's pool job is a follower: the
 * generation it runs, with a reference, and its job of that generation.
 *
 * The hot path is follower_run: one acquire load of `current` compared with
 * the follower's own generation, then the job. The follower holds a
 * reference to its generation, so that one cannot have been freed and its
 * address reused: an unequal pointer always means a switch.
 *
 * Lock: p->lock is taken only by install and by a follower's switch. A
 * follower takes its reference to `current` under it, and install drops the
 * pool's reference to the previous generation only after replacing it
 * under it, so no follower can take a reference to a generation whose last
 * one is already gone.
 *
 * StopOnErrors is the daemon's, not the library's (whose pool config has
 * it off), so that a reload can turn it on or off: the follower records
 * the first job error and calls failed(), and the loop closes the pool
 * with its deadline (the library's own stop would close without one).
 */
#include "workersd.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

/* How long a worker that could not build its job waits before its next
 * run tries again. */
#define REBUILD_PAUSE_NS 1000000000ull

struct wd_pool {
    workers_pool *workers;
    wd_gen *_Atomic current; /* written under lock; read by every run */
    pthread_mutex_t lock;
    atomic_bool stop_on_errors; /* relaxed: a reload's change may take a
                                   run to be seen */
    void (*failed)(void *arg);
    void *arg;
    atomic_int job_error; /* the first, 0 = none */
};

struct follower {
    wd_pool *pool;
    wd_gen *gen; /* with a reference, once job is built; else NULL */
    workers_job job;
};

/* The pool's own rule: any result but 0 and ECANCELED is a job error. Only
 * the first costs an atomic and a wake-up. */
static void
job_failed(wd_pool *p, int rc)
{
    int none = 0;
    if (atomic_load_explicit(&p->job_error, memory_order_relaxed) == 0 &&
        atomic_compare_exchange_strong(&p->job_error, &none, rc) &&
        p->failed != NULL)
        p->failed(p->arg);
}

/* Moves f to the current generation, on its worker's thread. */
static int
follow(struct follower *f, workers_ctx *ctx)
{
    wd_pool *p = f->pool;
    /* Its state of the old generation goes before the old generation may:
     * job_free comes before job_fini. */
    workers_job_free(&f->job);
    if (f->gen != NULL)
        wd_gen_unref(f->gen);
    f->gen = NULL;
    pthread_mutex_lock(&p->lock);
    wd_gen *g =
        wd_gen_ref(atomic_load_explicit(&p->current, memory_order_relaxed));
    pthread_mutex_unlock(&p->lock);
    int r = wd_gen_new_job(g, &f->job);
    if (r != 0) {
        wd_log(WD_LOG_ERR,
               "worker %u: cannot build its job of generation %u: %s",
               workers_ctx_worker_id(ctx), wd_gen_id(g), workers_strerror(r));
        wd_gen_unref(g);
        workers_ctx_wait(ctx, REBUILD_PAUSE_NS);
        return r;
    }
    f->gen = g;
    return 0;
}

static int
follower_run(workers_ctx *ctx, void *arg)
{
    struct follower *f = arg;
    wd_pool *p = f->pool;
    int r = 0;
    if (atomic_load_explicit(&p->current, memory_order_acquire) != f->gen)
        r = follow(f, ctx);
    if (r == 0)
        r = f->job.fn(ctx, f->job.arg);
    if (workers_result_is_error(r) &&
        atomic_load_explicit(&p->stop_on_errors, memory_order_relaxed))
        job_failed(p, r);
    return r;
}

static void
follower_free(void *arg)
{
    struct follower *f = arg;
    workers_job_free(&f->job);
    if (f->gen != NULL)
        wd_gen_unref(f->gen);
    free(f);
}

/* The builder, on the thread that calls start or more: no job code. */
static int
follower_new(void *arg, workers_job *out)
{
    struct follower *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -ENOMEM;
    f->pool = arg;
    *out = (workers_job){follower_run, f, follower_free};
    return 0;
}

int
wd_pool_new(wd_pool **out, const workers_config *cfg, void (*failed)(void *arg),
            void *arg)
{
    wd_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    workers_config lib = *cfg;
    lib.stop_on_errors = false;
    int r = workers_pool_new_with_config(&p->workers, &lib, NULL, 0);
    if (r == 0 && (r = -pthread_mutex_init(&p->lock, NULL)) != 0)
        workers_pool_free(p->workers);
    if (r != 0) {
        free(p);
        return r;
    }
    atomic_init(&p->stop_on_errors, cfg->stop_on_errors);
    p->failed = failed;
    p->arg = arg;
    *out = p;
    return 0;
}

void
wd_pool_install(wd_pool *p, wd_gen *g)
{
    wd_gen_ref(g);
    pthread_mutex_lock(&p->lock);
    wd_gen *old = atomic_load_explicit(&p->current, memory_order_relaxed);
    atomic_store_explicit(&p->current, g, memory_order_release);
    pthread_mutex_unlock(&p->lock);
    /* After the switch: a worker let go runs g. Only a closed pool refuses,
     * and then no worker rests any more. */
    workers_pool_set_idle_wait(p->workers, wd_gen_config(g)->pool.idle_wait_ns);
    if (old != NULL)
        wd_gen_unref(old);
}

int
wd_pool_start(wd_pool *p)
{
    workers_builder b = workers_builder_func(follower_new, p);
    if (atomic_load(&p->current) == NULL)
        return -EINVAL; /* a follower would have no job to run */
    return workers_pool_start_with_builder(p->workers, &b);
}

void
wd_pool_set_stop_on_errors(wd_pool *p, bool on)
{
    atomic_store_explicit(&p->stop_on_errors, on, memory_order_relaxed);
}

workers_pool *
wd_pool_workers(wd_pool *p)
{
    return p->workers;
}

int
wd_pool_job_error(wd_pool *p)
{
    return atomic_load(&p->job_error);
}

void
wd_pool_free(wd_pool *p)
{
    if (p == NULL)
        return;
    workers_pool_free(p->workers);
    wd_gen *g = atomic_load_explicit(&p->current, memory_order_relaxed);
    if (g != NULL)
        wd_gen_unref(g);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
