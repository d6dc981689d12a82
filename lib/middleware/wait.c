/*
 * The wait middleware: a pause of `value` nanoseconds before each run, in
 * the worker's own thread (so workers pause independently). The pause is
 * workers_ctx_wait(), which returns early when the context is cancelled:
 * then the job is not run and the wrapper returns WORKERS_ECANCELED. The
 * sleep is the only syscall, by design; nothing is locked or allocated.
 */
#include "internal.h"

static int
wait_run(workers_ctx *ctx, void *arg)
{
    const struct workers__wrapper *w = arg;
    if (workers_ctx_wait(ctx, w->value) == WORKERS_ECANCELED)
        return WORKERS_ECANCELED;
    return w->inner.fn(ctx, w->inner.arg);
}

static int
wait_wrap(const workers_middleware *mw, workers_job *job)
{
    return workers__wrapper_wrap(job, wait_run, mw->value);
}

workers_middleware
workers_wait(uint64_t pause_ns)
{
    workers_middleware mw = {wait_wrap, NULL, pause_ns};
    return mw;
}
