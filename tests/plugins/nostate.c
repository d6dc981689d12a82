/* Test plugin with job_do only: it gets a NULL state and honours its
 * context for 1 ms per run. nostate_runs() counts runs. */
#include "workers.h"

#include <stdatomic.h>

static atomic_ulong runs, with_state;

int job_do(workers_ctx *ctx, void *state);
unsigned long nostate_runs(void);
unsigned long nostate_with_state(void);

int
job_do(workers_ctx *ctx, void *state)
{
    if (state != NULL)
        with_state++;
    runs++;
    return workers_ctx_wait(ctx, 1000000u);
}

unsigned long
nostate_runs(void)
{
    return runs;
}
unsigned long
nostate_with_state(void)
{
    return with_state;
}
