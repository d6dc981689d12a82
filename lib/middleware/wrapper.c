/*
 * The wrapper state of the stateless middlewares (retry, wait): the inner
 * job and the middleware's value, allocated once when a job is wrapped.
 * A run only reads it, so one wrapped job may even be shared by workers.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

static void
wrapper_free(void *arg)
{
    struct workers__wrapper *w = arg;
    workers_job_free(&w->inner);
    free(w);
}

int
workers__wrapper_wrap(workers_job *job, workers_job_fn run, uint64_t value)
{
    struct workers__wrapper *w = malloc(sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    *w = (struct workers__wrapper){*job, value};
    *job = (workers_job){run, w, wrapper_free};
    return 0;
}
