/*
 * stats.c: the statistics middleware (see stats.h) and its run path.
 *
 * One clock read per run: a run reads the clock at its end only, and takes
 * the previous end of the same slot for its start when nothing came in
 * between: same context, no workers_ctx_wait() since (the context's waits
 * word, which the library moves at every wait: Wait's and ErrorBackoff's
 * pauses are such waits), and no pause or resume of the pool (st->gen).
 * Otherwise (a worker's first run, a run after a pause) it reads the clock
 * at its start too; that run followed a sleep, so the second read costs
 * nothing measurable. The start is stored as the slot's mark before the
 * run, so a snapshot knows the age of a run in progress.
 *
 * The run path takes no lock, allocates nothing, makes no syscall (the
 * clock is the vDSO's) and writes only its own slot's lines: started and
 * the mark on line 0, one histogram bucket, then line 0 again.
 */
#include "stats/slot.h"

#include "internal.h"

#include <errno.h>
#include <stdlib.h>

#define MS 1000000ull
#define SEC (1000 * MS)

const uint64_t wd_stats_bound_ns[WD_STATS_NBOUNDS] = {
    1 * MS,      5 * MS / 2, 5 * MS,    10 * MS,    25 * MS,
    50 * MS,     100 * MS,   250 * MS,  500 * MS,   1 * SEC,
    5 * SEC / 2, 5 * SEC,    10 * SEC,  30 * SEC,   60 * SEC,
    120 * SEC,   300 * SEC,  600 * SEC, 1800 * SEC, 3600 * SEC,
};

const char *const wd_stats_bound_text[WD_STATS_NBOUNDS] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",  "0.5",    "1",     "2.5",  "5",     "10",   "30",
    "60",    "120",    "300",   "600",  "1800",  "3600",
};

const char *const wd_outcome_name[WD_NOUTCOMES] = {
    [WD_OUTCOME_SUCCEEDED] = "succeeded", [WD_OUTCOME_FAILED] = "failed",
    [WD_OUTCOME_TIMED_OUT] = "timed_out", [WD_OUTCOME_CANCELLED] = "cancelled",
    [WD_OUTCOME_IDLE] = "idle",
};

/* Hot fields on line 0, the histogram from line 1: see slot.h. */
_Static_assert(offsetof(struct wd_slot, buckets) == WD_CACHELINE,
               "a slot's per-run counters must fill exactly one line");

/* Set by the retry marker around one pool run: 0 when there is none, else
 * 1 + the runs made so far within that pool run. Per thread, so per worker
 * at any moment; reset after each pool run so that a later job on the same
 * thread without a marker counts no retries. */
static _Thread_local unsigned attempt;

/* The slot's only writer: a relaxed load and store is an exact increment. */
static inline void
add(_Atomic uint64_t *v, uint64_t n, memory_order order)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
                          order);
}

static enum wd_outcome
outcome_of(int rc)
{
    if (rc == 0)
        return WD_OUTCOME_SUCCEEDED;
    if (workers_is_canceled(rc))
        return WD_OUTCOME_CANCELLED;
    if (rc == WORKERS_ETIMEDOUT)
        return WD_OUTCOME_TIMED_OUT;
    if (rc == WORKERS_EIDLE)
        return WD_OUTCOME_IDLE;
    return WD_OUTCOME_FAILED;
}

/* Most runs are short: the scan from the smallest bound ends early. */
static size_t
bucket_of(uint64_t ns)
{
    size_t i = 0;
    while (i < WD_STATS_NBOUNDS && ns > wd_stats_bound_ns[i])
        i++;
    return i;
}

/* The start of a run: the previous end when nothing came in between. */
static uint64_t
run_start(struct wd_slot *s, workers_ctx *ctx, uint64_t gen)
{
    uint64_t waits = atomic_load_explicit(&ctx->waits, memory_order_relaxed);
    uint64_t now;

    if (atomic_load_explicit(&s->ctx, memory_order_relaxed) == ctx &&
        s->end_waits == waits && s->end_gen == gen)
        return atomic_load_explicit(&s->mark_ns, memory_order_relaxed);
    if (atomic_load_explicit(&s->ctx, memory_order_relaxed) == NULL) {
        atomic_store_explicit(&s->id, workers_ctx_worker_id(ctx),
                              memory_order_relaxed);
        atomic_store_explicit(&s->ctx, ctx, memory_order_relaxed);
    }
    now = wd_now_ns();
    atomic_store_explicit(&s->mark_ns, now, memory_order_relaxed);
    return now;
}

static int
stats_run(workers_ctx *ctx, void *arg)
{
    struct wd_slot *s = arg;
    uint64_t gen = atomic_load_explicit(s->gen, memory_order_relaxed);
    uint64_t start = run_start(s, ctx, gen);
    unsigned a = attempt;

    if (a != 0) {
        if (a > 1)
            add(&s->retried, 1, memory_order_relaxed);
        attempt = a + 1;
    }
    /* Release: a snapshot that sees this run started sees its mark. */
    add(&s->started, 1, memory_order_release);

    int rc = s->inner.fn(ctx, s->inner.arg);

    uint64_t end = wd_now_ns();
    uint64_t ns = end > start ? end - start : 0;
    enum wd_outcome o = outcome_of(rc);

    add(&s->buckets[bucket_of(ns)], 1, memory_order_relaxed);
    add(&s->sum_ns, ns, memory_order_relaxed);
    atomic_store_explicit(&s->mark_ns, end, memory_order_relaxed);
    s->end_waits = atomic_load_explicit(&ctx->waits, memory_order_relaxed);
    s->end_gen = gen;
    if (o == WD_OUTCOME_FAILED || o == WD_OUTCOME_TIMED_OUT) {
        atomic_store_explicit(&s->err_code, rc, memory_order_relaxed);
        atomic_store_explicit(&s->err_ns, end, memory_order_release);
    }
    add(&s->ended[o], 1, memory_order_release);
    return rc;
}

/* The wrapped job's free: its worker stopped, nothing writes s any more. */
static void
slot_free(void *arg)
{
    struct wd_slot *s = arg;
    wd_stats *st = s->st;
    uint64_t err_ns = atomic_load_explicit(&s->err_ns, memory_order_acquire);

    pthread_mutex_lock(&st->mu);
    wd_slot_add_runs(s, &st->gone.runs);
    if (err_ns != 0 && err_ns >= st->gone.err_ns) {
        st->gone.err_ns = err_ns;
        st->gone.err_code = atomic_load(&s->err_code);
        st->gone.err_worker = atomic_load(&s->id);
        st->gone.err_flags = s->flags;
    }
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        st->live = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    st->nlive--;
    pthread_mutex_unlock(&st->mu);

    workers_job_free(&s->inner);
    free(s);
}

static int
stats_wrap(const workers_middleware *mw, workers_job *job)
{
    wd_stats *st = mw->data;
    struct wd_slot *s = aligned_alloc(WD_CACHELINE, sizeof *s);

    if (s == NULL)
        return -ENOMEM;
    *s = (struct wd_slot){
        .inner = *job, .gen = &st->gen, .flags = (unsigned)mw->value, .st = st};
    pthread_mutex_lock(&st->mu);
    s->next = st->live;
    if (st->live != NULL)
        st->live->prev = s;
    st->live = s;
    st->nlive++;
    pthread_mutex_unlock(&st->mu);
    *job = (workers_job){stats_run, s, slot_free};
    return 0;
}

workers_middleware
wd_stats_middleware(wd_stats *st, const wd_config *cfg)
{
    unsigned flags = (cfg->plugin == NULL ? WD_SLOT_COMMAND : 0) |
                     (cfg->backoff.max_ns != 0 ? WD_SLOT_BACKOFF : 0);

    return (workers_middleware){stats_wrap, st, flags};
}

static int
marker_run(workers_ctx *ctx, void *arg)
{
    const struct workers__wrapper *w = arg;

    attempt = 1;
    int rc = w->inner.fn(ctx, w->inner.arg);
    attempt = 0;
    return rc;
}

static int
marker_wrap(const workers_middleware *mw, workers_job *job)
{
    (void)mw;
    return workers__wrapper_wrap(job, marker_run, 0);
}

workers_middleware
wd_stats_retry_marker(void)
{
    return (workers_middleware){marker_wrap, NULL, 0};
}

void
wd_stats_set_paused(wd_stats *st, bool paused)
{
    atomic_store(&st->paused, paused);
    atomic_fetch_add(&st->gen, 1);
}

int
wd_stats_new(wd_stats **out)
{
    wd_stats *st = aligned_alloc(WD_CACHELINE, sizeof *st);
    int rc;

    if (st == NULL)
        return -ENOMEM;
    *st = (wd_stats){0};
    if ((rc = pthread_mutex_init(&st->mu, NULL)) != 0) {
        free(st);
        return -rc;
    }
    *out = st;
    return 0;
}

void
wd_stats_free(wd_stats *st)
{
    if (st == NULL)
        return;
    pthread_mutex_destroy(&st->mu);
    free(st);
}
