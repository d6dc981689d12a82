/*
 * Job helpers: destruction, Go's NoError adapter, and Go's Wrap.
 * A job owns its arg when it has a free function; wrapping transfers that
 * ownership to the wrapper (see workers_middleware in workers.h).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

void
workers_job_free(workers_job *job)
{
    if (job == NULL)
        return;
    if (job->free != NULL)
        job->free(job->arg);
    job->fn = NULL;
    job->arg = NULL;
    job->free = NULL;
}

struct noerror {
    void (*fn)(workers_ctx *ctx, void *arg);
    void *arg;
    void (*arg_free)(void *arg);
};

static int
noerror_run(workers_ctx *ctx, void *p)
{
    struct noerror *ne = p;
    ne->fn(ctx, ne->arg);
    return 0;
}

static void
noerror_free(void *p)
{
    struct noerror *ne = p;
    if (ne->arg_free != NULL)
        ne->arg_free(ne->arg);
    free(ne);
}

int
workers_job_noerror(workers_job *out, void (*fn)(workers_ctx *ctx, void *arg),
                    void *arg, void (*arg_free)(void *arg))
{
    struct noerror *ne = malloc(sizeof(*ne));
    if (ne == NULL)
        return -ENOMEM;
    ne->fn = fn;
    ne->arg = arg;
    ne->arg_free = arg_free;
    out->fn = noerror_run;
    out->arg = ne;
    out->free = noerror_free;
    return 0;
}

int
workers_wrap(workers_job *job, const workers_middleware *mws, size_t nmws)
{
    for (size_t i = 0; i < nmws; i++) {
        int err = mws[i].wrap(&mws[i], job);
        if (err != 0) {
            workers_job_free(job);
            return err;
        }
    }
    return 0;
}
