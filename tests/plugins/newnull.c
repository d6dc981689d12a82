/* Test plugin whose job_new returns NULL: no worker can be built. */
#include "workers.h"

#include <stddef.h>

void *job_new(void);
int job_do(workers_ctx *ctx, void *state);

void *
job_new(void)
{
    return NULL;
}

int
job_do(workers_ctx *ctx, void *state)
{
    (void)ctx;
    (void)state;
    return 0;
}
