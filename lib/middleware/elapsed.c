/*
 * The elapsed middleware: the counter plus the time runs take.
 *
 * A workers_elapsed is a timed tally (tally.c) whose slots also hold the
 * total time, the busy time (runs that returned 0), the last duration and
 * the last end of their runs. workers__timed_run below is also the
 * autoscaler's run: one code path, one clock read.
 *
 * A run reads the clock once, at its end; its start is the previous end of
 * the same slot when that slot's last run was in the same context and
 * ctx->waits has not moved since: no ctx wait (e.g. the wait middleware's
 * pause) and no run of another timed wrapper (each end moves ctx->waits on)
 * came in between. Otherwise (first run, or something in between) the
 * start is read too, as it always is by the threads other than a shared
 * job's owner (tally.c): their runs interleave, so no previous end is
 * theirs. Apart from those clock reads the run path takes no lock,
 * allocates nothing and makes no syscall, and each worker writes only its
 * own slot's lines (the owner) or its shared counts (the others), and its
 * own context.
 */
#include "internal.h"

static struct workers__tally *
tally_of(workers_elapsed *e)
{
    return (struct workers__tally *)e;
}

/* One run counted into c: s->own by the owner (shared false), else
 * s->shared. Only the owner keeps the state that spans runs (the last end,
 * busy_since, did_work): the other threads' runs interleave. */
static inline int
time_run(workers_ctx *ctx, struct workers__slot *s, struct workers__counts *c,
         bool shared)
{
    uint64_t waits = atomic_load_explicit(&ctx->waits, memory_order_relaxed);
    uint64_t start;
    if (!shared && s->end_ctx == ctx && s->end_waits == waits)
        start = atomic_load_explicit(&c->last_end_ns, memory_order_relaxed);
    else
        start = s->clock(s->clock_arg);

    /* An owner's run after one that did work counts as busy while it goes
     * on (see workers__tally_sample); published before started, with
     * release. */
    if (!shared)
        atomic_store_explicit(&s->busy_since,
                              s->did_work ? start : WORKERS__NOT_BUSY,
                              memory_order_relaxed);
    workers__count_add(&c->started, 1, shared, memory_order_release);
    int result = s->inner.fn(ctx, s->inner.arg);
    uint64_t end = s->clock(s->clock_arg);

    /* A clock is monotonic; an injected one that is not gets 0, not 2^64. */
    uint64_t ns = end > start ? end - start : 0;
    workers__count_add(&c->total_ns, ns, shared, memory_order_relaxed);
    if (result == 0)
        workers__count_add(&c->busy_ns, ns, shared, memory_order_relaxed);
    if (!shared)
        s->did_work = result == 0;
    /* In the shared counts, last_ns and last_end_ns may come from two runs
     * that ended at about the same time. */
    atomic_store_explicit(&c->last_ns, ns, memory_order_relaxed);
    atomic_store_explicit(&c->last_end_ns, end, memory_order_relaxed);
    /* Move ctx->waits past every other slot's mark, so that a run of
     * another timed wrapper on this context (nested, or a job run by hand
     * between two of ours) is not taken for the start of the next. A plain
     * store, not fetch_add: the context's own worker is the one thread that
     * waits on it in practice, and a lost count from a stray concurrent wait
     * elsewhere only mis-times one run, never corrupts anything. */
    uint64_t mark = atomic_load_explicit(&ctx->waits, memory_order_relaxed) + 1;
    atomic_store_explicit(&ctx->waits, mark, memory_order_relaxed);
    if (!shared) {
        s->end_ctx = ctx;
        s->end_waits = mark;
    }
    workers__count_finish(c, shared, result);
    return result;
}

int
workers__timed_run(workers_ctx *ctx, void *arg)
{
    struct workers__slot *s = arg;
    if (workers__slot_owned(s))
        return time_run(ctx, s, &s->own, false);
    return time_run(ctx, s, &s->shared, true);
}

static int
elapsed_wrap(const workers_middleware *mw, workers_job *job)
{
    return workers__tally_wrap(tally_of(mw->data), job, workers__timed_run);
}

int
workers_elapsed_new(workers_elapsed **out, workers_clock_fn clock,
                    void *clock_arg)
{
    struct workers__tally *t;
    int err = workers__tally_new(&t, clock != NULL ? clock : workers__monotonic,
                                 clock_arg);
    if (err == 0)
        *out = (workers_elapsed *)t;
    return err;
}

workers_middleware
workers_elapsed_middleware(workers_elapsed *e)
{
    workers_middleware mw = {elapsed_wrap, e, 0};
    return mw;
}

void
workers_elapsed_stats_get(workers_elapsed *e, workers_elapsed_stats *out)
{
    struct workers__tally_sums sums;
    workers__tally_read(tally_of(e), &sums);
    *out = (workers_elapsed_stats){0};
    workers__tally_counts(&sums, &out->counts);
    out->total_ns = sums.total_ns;
    out->busy_ns = sums.busy_ns;
    out->average_ns = sums.finished != 0 ? sums.total_ns / sums.finished : 0;
    out->last_ns = sums.last_ns;
}

void
workers_elapsed_free(workers_elapsed *e)
{
    workers__tally_free(tally_of(e));
}
