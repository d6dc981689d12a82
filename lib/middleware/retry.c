/*
 * The retry middleware: runs the inner job again, up to `value` more times,
 * while it fails. It stops at the first success, at WORKERS_ENOTRETRYABLE,
 * at WORKERS_EIDLE (no work is not a failure: the next run polls again),
 * or once the context is cancelled (a cancelled worker must stop promptly,
 * and its job would most likely fail again for that very reason), and
 * returns the last result. No lock, allocation or syscall per run.
 */
#include "internal.h"

static bool
worth_retrying(int result, workers_ctx *ctx)
{
    return result != 0 && result != WORKERS_ENOTRETRYABLE &&
           result != WORKERS_EIDLE && !workers_ctx_done(ctx);
}

static int
retry_run(workers_ctx *ctx, void *arg)
{
    const struct workers__wrapper *w = arg;
    int result = w->inner.fn(ctx, w->inner.arg);
    for (uint64_t left = w->value; left > 0 && worth_retrying(result, ctx);
         left--)
        result = w->inner.fn(ctx, w->inner.arg);
    return result;
}

static int
retry_wrap(const workers_middleware *mw, workers_job *job)
{
    return workers__wrapper_wrap(job, retry_run, mw->value);
}

workers_middleware
workers_retry(unsigned retries)
{
    workers_middleware mw = {retry_wrap, NULL, retries};
    return mw;
}
