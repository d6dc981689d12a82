/* Test plugin whose job_init refuses to start (returns 7). */
#include "workers.h"

int job_init(const char *arg);
int job_do(workers_ctx *ctx, void *state);

int
job_init(const char *arg)
{
    (void)arg;
    return 7;
}

int
job_do(workers_ctx *ctx, void *state)
{
    (void)ctx;
    (void)state;
    return 0;
}
