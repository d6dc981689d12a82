/*
 * Plugin jobs: runs of a plugin loader.c loaded, as workersd.h and the
 * README describe. The plugin calls back into the library's context
 * functions, which workersd exports (-rdynamic).
 *
 * Each worker owns a struct pworker, made by new_job on the worker's own
 * thread when it moves to this job; its plugin state comes from job_new at
 * its first run (so a job_new that fails is a failed run, paced and
 * counted like one) and goes to job_free when the worker stops, on that
 * thread too. job_do needs no lock for it.
 *
 * Timeout: without it (the common case) a run is job_do(ctx, state) on the
 * worker's own context and a log line if it failed, nothing more. With it,
 * job_do gets a private context per worker instead (run_ctx), made with
 * workers_ctx_new_for() so it carries the worker's id, and the job's
 * deadline thread (deadline.c) cancels it when the run's deadline passes or
 * the worker's own context is cancelled. A run that timed out gets a fresh
 * run_ctx for the next run. The thread touches run_ctx and fired only while
 * the run is armed, under its lock.
 */
#include "jobs.h"

#include <errno.h>
#include <stdlib.h>

struct pworker {
    struct wd_timed timed; /* first: due() gets it; with Timeout only */
    wd_plugin *p;
    void *state;
    bool built; /* job_new ran (or there is none) */
    workers_ctx *run_ctx;
    bool fired; /* the deadline passed; under the deadline lock */
};

static void
report(workers_ctx *ctx, int r)
{
    if (r < 0)
        wd_log(WD_LOG_WARNING, "worker %u: job_do returned %d (%s)",
               workers_ctx_worker_id(ctx), r, workers_strerror(r));
    else
        wd_log(WD_LOG_WARNING, "worker %u: job_do returned %d",
               workers_ctx_worker_id(ctx), r);
}

/* The worker's plugin state, at its first run. */
static int
build(struct pworker *w, workers_ctx *ctx)
{
    if (w->p->job_new != NULL && (w->state = w->p->job_new()) == NULL) {
        wd_log(WD_LOG_ERR, "worker %u: plugin %s: job_new returned NULL",
               workers_ctx_worker_id(ctx), w->p->cfg->plugin);
        return -ENOMEM;
    }
    w->built = true;
    return 0;
}

static int
plain_run(workers_ctx *ctx, void *arg)
{
    struct pworker *w = arg;
    int r;
    if (!w->built && (r = build(w, ctx)) != 0)
        return r;
    r = w->p->job_do(ctx, w->state);
    if (workers_result_is_error(r)) /* WORKERS_EIDLE is no failure */
        report(ctx, r);
    return r;
}

/* The deadline thread: the deadline passed or the worker was cancelled. */
static uint64_t
plugin_due(struct wd_timed *t, uint64_t now, bool cancelled)
{
    struct pworker *w = (struct pworker *)t;
    (void)now;
    workers_ctx_cancel(w->run_ctx);
    if (cancelled)
        return t->at;
    w->fired = true;
    return WD_NEVER;
}

static int
timed_run(workers_ctx *ctx, void *arg)
{
    struct pworker *w = arg;
    wd_deadlines *timer = w->p->timer;
    int r;
    if (!w->built && (r = build(w, ctx)) != 0)
        return r;
    if (w->run_ctx == NULL && (r = workers_ctx_new_for(&w->run_ctx, ctx)) != 0)
        goto untimed;
    w->fired = false;
    r = wd_deadlines_arm(timer, &w->timed, ctx,
                         wd_deadline(wd_now_ns(), w->p->cfg->timeout_ns));
    if (r != 0)
        goto untimed;
    if (workers_ctx_done(ctx)) {
        wd_deadlines_disarm(timer, &w->timed);
        return WORKERS_ECANCELED;
    }
    r = w->p->job_do(w->run_ctx, w->state);
    wd_deadlines_disarm(timer, &w->timed);
    if (w->fired) {
        /* Cancelled for good: the next run makes a fresh one. */
        workers_ctx_free(w->run_ctx);
        w->run_ctx = NULL;
        char dur[32];
        wd_log(WD_LOG_WARNING, "worker %u: plugin run timed out after %s",
               workers_ctx_worker_id(ctx),
               wd_duration(w->p->cfg->timeout_ns, dur, sizeof dur));
        return WORKERS_ETIMEDOUT;
    }
    if (workers_result_is_error(r)) /* WORKERS_EIDLE is no failure */
        report(ctx, r);
    return r;
untimed:
    wd_log(WD_LOG_ERR, "worker %u: cannot time the run: %s",
           workers_ctx_worker_id(ctx), workers_strerror(r));
    return r;
}

static void
pworker_free(void *arg)
{
    struct pworker *w = arg;
    if (w->p->timer != NULL) {
        wd_deadlines_remove(w->p->timer, &w->timed);
        workers_ctx_free(w->run_ctx);
    }
    if (w->built && w->p->job_new != NULL && w->p->job_free != NULL)
        w->p->job_free(w->state);
    free(w);
}

static int
plugin_new_job(void *obj, workers_job *out)
{
    wd_plugin *p = obj;
    struct pworker *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->p = p;
    if (p->timer != NULL) {
        w->timed.due = plugin_due;
        wd_deadlines_add(p->timer, &w->timed);
    }
    *out = (workers_job){p->timer != NULL ? timed_run : plain_run, w,
                         pworker_free};
    return 0;
}

/* A plugin's runs are threads of the daemon: there is no process to
 * signal. A run that ignores its cancelled context is left behind at the
 * daemon's exit (see drain.c). */
static void
plugin_kill(void *obj, int sig)
{
    (void)obj, (void)sig;
}

const struct wd_kind wd_plugin_kind = {
    "plugin", wd_plugin_open, plugin_new_job, plugin_kill, wd_plugin_close,
};
