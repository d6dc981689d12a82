/*
 * A generation: a config snapshot, the job it names and the middlewares it
 * asks for, with a thread of its own (see workersd.h).
 *
 * The thread's life: open the job (dlopen and job_init for a plugin) and
 * build the middlewares; publish OPEN or FAILED and notify; sleep until the
 * last reference is gone (`unused`); close the job (job_fini); drop the
 * config; publish CLOSED and notify, as its very last act: the owner may
 * then join it and free the handle.
 *
 * Everything the thread sets before OPEN (job, middlewares) is read-only
 * afterwards, seen by readers through the state's release/acquire. `lock`
 * guards `unused`, which wakes the thread and orders wd_gen_kill() before
 * the close. The last unref signals under the lock and touches nothing of
 * the generation after its unlock: the thread, which needs that lock to go
 * on, may close it and its owner free it at once.
 */
#include "stats/stats.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

struct wd_gen {
    atomic_uint refs;
    unsigned id;
    const wd_config *cfg; /* a reference, until the close */
    wd_job *job;          /* NULL when the open failed */
    wd_gen_shared shared; /* borrowed objects: stats, autoscaler */
    workers_middleware mws[6];
    size_t nmws;
    _Atomic int state; /* enum wd_gen_state */
    char err[WD_ERRLEN];
    int open_rc; /* wd_job_open()'s, set before FAILED */
    void (*notify)(void *arg);
    void *arg;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool unused; /* under lock: the last reference went, no more kill */
};

static atomic_uint opened; /* generations numbered so far */

/*
 * The middlewares the config asks for; mws[0] is innermost: the statistics
 * count each call of the job itself (so Wait's and the backoff's pauses fall
 * between runs, and every attempt of Retry is a run); Wait paces every
 * attempt, Retry's too; the retry marker, just outside Retry, tells the
 * statistics which runs were retries; the autoscaler times a run with its
 * Wait and retries (a worker pacing itself is not free for more work) but
 * not the backoff's pause, which follows what is left of a failure after
 * the retries. StopOnErrors is the pool's own (pool.c) and sees the result
 * of the whole.
 */
static void
build_middlewares(wd_gen *g)
{
    const wd_config *cfg = g->cfg;
    if (g->shared.stats != NULL)
        g->mws[g->nmws++] = wd_stats_middleware(g->shared.stats, cfg);
    if (cfg->wait_ns != 0)
        g->mws[g->nmws++] = workers_wait(cfg->wait_ns);
    if (cfg->retry != 0) {
        g->mws[g->nmws++] = workers_retry(cfg->retry);
        if (g->shared.stats != NULL)
            g->mws[g->nmws++] = wd_stats_retry_marker();
    }
    if (cfg->autoscale.configured && g->shared.autoscale != NULL)
        g->mws[g->nmws++] = workers_autoscale_middleware(g->shared.autoscale);
    if (cfg->backoff.max_ns != 0)
        g->mws[g->nmws++] = wd_backoff(cfg);
}

static void *
gen_main(void *arg)
{
    wd_gen *g = arg;
    int r = wd_job_open(g->cfg, true, &g->job, g->err, sizeof g->err);
    if (r == 0)
        build_middlewares(g);
    else
        g->job = NULL;
    g->open_rc = r;
    atomic_store_explicit(&g->state, r == 0 ? WD_GEN_OPEN : WD_GEN_FAILED,
                          memory_order_release);
    if (g->notify != NULL)
        g->notify(g->arg);

    pthread_mutex_lock(&g->lock);
    while (!g->unused)
        pthread_cond_wait(&g->wake, &g->lock);
    pthread_mutex_unlock(&g->lock);
    wd_job_close(g->job);
    wd_config_unref(g->cfg);
    void (*notify)(void *) = g->notify;
    void *narg = g->arg;
    atomic_store_explicit(&g->state, WD_GEN_CLOSED, memory_order_release);
    if (notify != NULL)
        notify(narg);
    return NULL;
}

static void
gen_destroy(wd_gen *g)
{
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

int
wd_gen_open(const wd_config *cfg, const wd_gen_shared *shared,
            void (*notify)(void *arg), void *arg, wd_gen **out)
{
    wd_gen *g = calloc(1, sizeof *g);
    if (g == NULL)
        return -ENOMEM;
    int r = pthread_mutex_init(&g->lock, NULL);
    if (r == 0 && (r = pthread_cond_init(&g->wake, NULL)) != 0)
        pthread_mutex_destroy(&g->lock);
    if (r != 0) {
        free(g);
        return -r;
    }
    atomic_init(&g->refs, 1);
    atomic_init(&g->state, WD_GEN_OPENING);
    g->cfg = wd_config_ref(cfg);
    if (shared != NULL)
        g->shared = *shared;
    g->notify = notify;
    g->arg = arg;
    g->id = atomic_fetch_add(&opened, 1) + 1;
    /* The default stack: job_init and job_fini are plugin code. */
    if ((r = wd_thread_start(&g->thread, 0, gen_main, g)) != 0) {
        wd_config_unref(g->cfg);
        gen_destroy(g);
        return r;
    }
    *out = g;
    return 0;
}

enum wd_gen_state
wd_gen_state(const wd_gen *g)
{
    return (enum wd_gen_state)atomic_load_explicit(&g->state,
                                                   memory_order_acquire);
}

const char *
wd_gen_error(const wd_gen *g)
{
    return g->err;
}

int
wd_gen_exit_code(const wd_gen *g)
{
    return wd_job_exit_code(g->open_rc);
}

const wd_config *
wd_gen_config(const wd_gen *g)
{
    return g->cfg;
}

unsigned
wd_gen_id(const wd_gen *g)
{
    return g->id;
}

wd_gen *
wd_gen_ref(wd_gen *g)
{
    atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
    return g;
}

void
wd_gen_unref(wd_gen *g)
{
    if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_lock(&g->lock);
    g->unused = true;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
}

int
wd_gen_new_job(wd_gen *g, workers_job *out)
{
    int r = wd_job_new(g->job, out);
    if (r == 0)
        r = workers_wrap(out, g->mws, g->nmws);
    return r;
}

void
wd_gen_kill(wd_gen *g, int sig)
{
    pthread_mutex_lock(&g->lock);
    if (!g->unused && wd_gen_state(g) == WD_GEN_OPEN)
        wd_job_kill(g->job, sig);
    pthread_mutex_unlock(&g->lock);
}

void
wd_gen_free(wd_gen *g)
{
    pthread_join(g->thread, NULL);
    gen_destroy(g);
}
