/*
 * Test plugin with every optional symbol. job_init(Arg) sets how long each
 * run waits on its context (ms); each job_new state remembers the worker
 * that first ran it, so a state shared between workers shows up in
 * state_mixed(), and the thread that made it, so a job_do or job_free of it
 * on another thread shows up in state_foreign(). The state_* functions let
 * tests read the counters.
 */
#include "workers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct state {
    pthread_t maker;
    unsigned owner;
    unsigned long runs;
};

static unsigned long wait_ms;
static atomic_int news, frees, inits, finis, mixed, running, foreign;
static atomic_ulong runs;

int job_init(const char *arg);
void *job_new(void);
void job_free(void *state);
void job_fini(void);
int job_do(workers_ctx *ctx, void *state);
int state_news(void);
int state_frees(void);
int state_inits(void);
int state_finis(void);
int state_mixed(void);
int state_running(void);
int state_foreign(void);
unsigned long state_runs(void);

int
job_init(const char *arg)
{
    wait_ms = arg != NULL ? strtoul(arg, NULL, 10) : 0;
    inits++;
    return 0;
}

void *
job_new(void)
{
    struct state *s = calloc(1, sizeof *s);
    if (s != NULL)
        s->maker = pthread_self();
    news++;
    return s;
}

void
job_free(void *state)
{
    struct state *s = state;
    if (!pthread_equal(s->maker, pthread_self()))
        foreign++;
    frees++;
    free(state);
}

void
job_fini(void)
{
    finis++;
}

int
job_do(workers_ctx *ctx, void *state)
{
    struct state *s = state;
    unsigned id = workers_ctx_worker_id(ctx);
    if (!pthread_equal(s->maker, pthread_self()))
        foreign++;
    if (s->runs++ == 0)
        s->owner = id;
    else if (s->owner != id)
        mixed++;
    runs++;
    running++;
    int r = workers_ctx_wait(ctx, wait_ms * 1000000ull);
    running--;
    return r;
}

int
state_news(void)
{
    return news;
}
int
state_frees(void)
{
    return frees;
}
int
state_inits(void)
{
    return inits;
}
int
state_finis(void)
{
    return finis;
}
int
state_mixed(void)
{
    return mixed;
}
int
state_foreign(void)
{
    return foreign;
}
int
state_running(void)
{
    return running;
}
unsigned long
state_runs(void)
{
    return runs;
}
