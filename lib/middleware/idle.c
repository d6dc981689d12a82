/*
 * The idle wait middleware: after a run that found no work (WORKERS_EIDLE),
 * a pause of `value` nanoseconds in the worker's own thread, so that a job
 * polling an empty queue does not spin. The pause is workers_ctx_wait(),
 * which less() and close end at once; the run's result is returned either
 * way. Runs with other results pass straight through: one compare. The
 * sleep is the only syscall, by design; nothing is locked or allocated.
 */
#include "internal.h"

static int
idle_wait_run(workers_ctx *ctx, void *arg)
{
    const struct workers__wrapper *w = arg;
    int result = w->inner.fn(ctx, w->inner.arg);
    if (result == WORKERS_EIDLE)
        workers_ctx_wait(ctx, w->value);
    return result;
}

static int
idle_wait_wrap(const workers_middleware *mw, workers_job *job)
{
    return workers__wrapper_wrap(job, idle_wait_run, mw->value);
}

workers_middleware
workers_idle_wait(uint64_t pause_ns)
{
    workers_middleware mw = {idle_wait_wrap, NULL, pause_ns};
    return mw;
}
