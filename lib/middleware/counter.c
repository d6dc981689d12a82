/*
 * The counter middleware: started, finished, failed, idle and running runs.
 *
 * A workers_counter is a tally (tally.c): each job it wraps counts into its
 * own slot, written only by the worker running that job. The run path below
 * therefore takes no lock, allocates nothing, makes no syscall and no atomic
 * read-modify-write: workers never write a shared cache line, so counting
 * scales with them. A job shared by several workers still counts exactly:
 * all but the first thread to run it count with atomic adds (tally.c).
 */
#include "internal.h"

static struct workers__tally *
tally_of(workers_counter *c)
{
    return (struct workers__tally *)c;
}

static inline int
count_run(workers_ctx *ctx, struct workers__slot *s, struct workers__counts *c,
          bool shared)
{
    workers__count_start(c, shared);
    int result = s->inner.fn(ctx, s->inner.arg);
    workers__count_finish(c, shared, result);
    return result;
}

static int
counter_run(workers_ctx *ctx, void *arg)
{
    struct workers__slot *s = arg;
    if (workers__slot_owned(s))
        return count_run(ctx, s, &s->own, false);
    return count_run(ctx, s, &s->shared, true);
}

static int
counter_wrap(const workers_middleware *mw, workers_job *job)
{
    return workers__tally_wrap(tally_of(mw->data), job, counter_run);
}

int
workers_counter_new(workers_counter **out)
{
    struct workers__tally *t;
    int err = workers__tally_new(&t, NULL, NULL);
    if (err == 0)
        *out = (workers_counter *)t;
    return err;
}

workers_middleware
workers_counter_middleware(workers_counter *c)
{
    workers_middleware mw = {counter_wrap, c, 0};
    return mw;
}

void
workers_counter_stats_get(workers_counter *c, workers_counter_stats *out)
{
    struct workers__tally_sums sums;
    workers__tally_read(tally_of(c), &sums);
    workers__tally_counts(&sums, out);
}

void
workers_counter_free(workers_counter *c)
{
    workers__tally_free(tally_of(c));
}
