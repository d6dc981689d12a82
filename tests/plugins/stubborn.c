/*
 * Test plugin whose job_do ignores cancellation: it runs until the test
 * calls stubborn_release(), noting whether its context got cancelled
 * meanwhile. After the release, runs return at once: 0 when their context
 * is live, WORKERS_ECANCELED when it is cancelled. With an Arg, job_do
 * creates that file when its first run begins, for tests in another
 * process.
 */
#include "workers.h"

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static atomic_bool released, saw_cancel, started;
static const char *marker;

int job_init(const char *arg);
int job_do(workers_ctx *ctx, void *state);
void stubborn_release(void);
int stubborn_saw_cancel(void);
int stubborn_started(void);

int
job_init(const char *arg)
{
    marker = arg;
    return 0;
}

int
job_do(workers_ctx *ctx, void *state)
{
    (void)state;
    if (!atomic_exchange(&started, true) && marker != NULL) {
        FILE *f = fopen(marker, "we");
        if (f != NULL)
            fclose(f);
    }
    while (!released) {
        if (workers_ctx_done(ctx))
            saw_cancel = true;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return workers_ctx_done(ctx) ? WORKERS_ECANCELED : 0;
}

void
stubborn_release(void)
{
    released = true;
}
int
stubborn_saw_cancel(void)
{
    return saw_cancel;
}
int
stubborn_started(void)
{
    return started;
}
