/*
 * backoff.c: ErrorBackoff, a middleware that paces a failing job (see
 * workersd.h). Each worker has its own state, touched only by that worker:
 * no lock. A successful run costs one branch; the pause is the only syscall.
 */
#include "workersd.h"

#include <errno.h>
#include <stdlib.h>

struct backoff {
    workers_job inner;
    const struct wd_backoff *range;
    uint64_t span_ns; /* next pause: in [span/2, span]; 0 = none */
    uint64_t rng;     /* xorshift64 state, never 0 */
};

static uint64_t
next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int
backoff_run(workers_ctx *ctx, void *arg)
{
    struct backoff *b = arg;
    int rc;

    if (b->span_ns != 0) {
        uint64_t half = b->span_ns / 2;
        uint64_t pause = half + next_random(&b->rng) % (b->span_ns - half + 1);
        if (workers_ctx_wait(ctx, pause) == WORKERS_ECANCELED)
            return WORKERS_ECANCELED;
    }
    rc = b->inner.fn(ctx, b->inner.arg);
    if (workers_result_is_error(rc))
        b->span_ns = b->span_ns == 0                     ? b->range->min_ns
                     : b->span_ns > b->range->max_ns / 2 ? b->range->max_ns
                                                         : b->span_ns * 2;
    else if (!workers_is_canceled(rc))
        b->span_ns = 0; /* a success, or an idle run (no work is no fault) */
    return rc;
}

static void
backoff_free(void *arg)
{
    struct backoff *b = arg;

    workers_job_free(&b->inner);
    free(b);
}

static int
backoff_wrap(const workers_middleware *mw, workers_job *job)
{
    const wd_config *cfg = mw->data;
    struct backoff *b = malloc(sizeof *b);

    if (b == NULL)
        return -ENOMEM;
    b->inner = *job;
    b->range = &cfg->backoff;
    b->span_ns = 0;
    /* Seeds differ per worker (the state's address) and per start. */
    b->rng = ((uint64_t)(uintptr_t)b ^ wd_now_ns()) | 1;
    *job = (workers_job){backoff_run, b, backoff_free};
    return 0;
}

workers_middleware
wd_backoff(const wd_config *cfg)
{
    return (workers_middleware){backoff_wrap, (void *)cfg, 0};
}
