/* Test plugin whose job_do fails every run with -EIO. */
#include "workers.h"

#include <errno.h>

int job_do(workers_ctx *ctx, void *state);

int
job_do(workers_ctx *ctx, void *state)
{
    (void)ctx;
    (void)state;
    return -EIO;
}
