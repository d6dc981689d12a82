/*
 * Per-worker slots shared by the counter and elapsed middlewares and the
 * autoscaler.
 *
 * Each wrapped job gets one slot (its wrapper state), allocated and linked
 * into the tally's list when the job is wrapped, never per run. The first
 * thread to run that job owns the slot's own counts; other threads running
 * the same job at once (a shared job) add into its shared counts (see the
 * inline helpers in internal.h); readers sum both under the tally's mutex. When
 * a wrapped job is freed (its worker stopped, so nothing writes the slot any
 * more) its counts are folded into the retired totals and the slot unlinked,
 * so the stats survive workers leaving. The autoscaler's tally (lives) also
 * stamps each slot with the clock when it is wrapped and folds its life
 * (wrap to free) into the retired worker time: utilisation's denominator. The
 * mutex is the only lock here and no other lock is taken while it is held.
 */
#include "internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

/* The first cache line holds what an autoscaler's tick reads (busy_since,
 * born_ns, next and the owner's counts up to busy_ns) and all that an
 * owner's counter run writes; the second the rest of the owner's counts and
 * its private state, which its timed runs write; the third what every run
 * only reads, and prev, which other threads write when a neighbour comes or
 * goes (rarely); the fourth the shared counts. */
_Static_assert(offsetof(struct workers__slot, own.total_ns) ==
                   WORKERS__CACHELINE,
               "what a tick reads must fill one cache line");
_Static_assert(offsetof(struct workers__slot, inner) == 2 * WORKERS__CACHELINE,
               "what an owner's timed run writes must fill two cache lines");
_Static_assert(offsetof(struct workers__slot, shared) == 3 * WORKERS__CACHELINE,
               "what a run reads must fit one cache line");
_Static_assert(sizeof(struct workers__counts) == WORKERS__CACHELINE,
               "the shared counts must fill one cache line");

_Thread_local char workers__thread_tag WORKERS__TLS_FAST;

int
workers__tally_new(struct workers__tally **out, workers_clock_fn clock,
                   void *clock_arg)
{
    struct workers__tally *t = malloc(sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    *t = (struct workers__tally){.clock = clock, .clock_arg = clock_arg};
    int err = pthread_mutex_init(&t->mu, NULL);
    if (err != 0) {
        free(t);
        return -err;
    }
    *out = t;
    return 0;
}

void
workers__tally_free(struct workers__tally *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* A snapshot of one set of counts. The loads follow the order internal.h
 * explains: failed and idle, finished, then the rest. started is read on
 * both sides of them: when it did not move, no run began in between, so a
 * slot's one writer shows at most one run in progress, not the runs it
 * made while the reader was preempted between two loads. A writer that
 * keeps it moving leaves the last reading after a few tries. */
static void
load_counts(const struct workers__counts *c, struct workers__tally_sums *out)
{
    for (int tries = 0; tries < 4; tries++) {
        uint64_t before =
            atomic_load_explicit(&c->started, memory_order_acquire);
        out->failed = atomic_load_explicit(&c->failed, memory_order_acquire);
        out->idle = atomic_load_explicit(&c->idle, memory_order_acquire);
        out->finished =
            atomic_load_explicit(&c->finished, memory_order_acquire);
        out->started = atomic_load_explicit(&c->started, memory_order_acquire);
        if (out->started == before)
            break;
    }
    out->total_ns = atomic_load_explicit(&c->total_ns, memory_order_relaxed);
    out->busy_ns = atomic_load_explicit(&c->busy_ns, memory_order_relaxed);
    out->last_end_ns =
        atomic_load_explicit(&c->last_end_ns, memory_order_relaxed);
    out->last_ns = atomic_load_explicit(&c->last_ns, memory_order_relaxed);
    out->worker_ns = 0;
}

/* Adds in to out; out's last becomes in's if in's ended later. */
static void
add_sums(struct workers__tally_sums *out, const struct workers__tally_sums *in)
{
    out->started += in->started;
    out->finished += in->finished;
    out->failed += in->failed;
    out->idle += in->idle;
    out->total_ns += in->total_ns;
    out->busy_ns += in->busy_ns;
    out->worker_ns += in->worker_ns;
    if (in->finished != 0 && in->last_end_ns >= out->last_end_ns) {
        out->last_end_ns = in->last_end_ns;
        out->last_ns = in->last_ns;
    }
}

/* Adds both sets of counts of a live slot to out. */
static void
add_slot(struct workers__tally_sums *out, const struct workers__slot *s)
{
    struct workers__tally_sums one;
    load_counts(&s->own, &one);
    add_sums(out, &one);
    load_counts(&s->shared, &one);
    add_sums(out, &one);
}

void
workers__tally_read(struct workers__tally *t, struct workers__tally_sums *out)
{
    *out = (struct workers__tally_sums){0};
    pthread_mutex_lock(&t->mu);
    add_sums(out, &t->gone);
    for (const struct workers__slot *s = t->live; s != NULL; s = s->next)
        add_slot(out, s);
    pthread_mutex_unlock(&t->mu);
}

/*
 * Busy time counts a run in progress up to now when busy_since says it
 * counts: started is loaded with acquire after finished, so busy_since is
 * at least as new as the start it sees. A run that ends between the loads
 * may be counted twice or not at all, by at most its own length; the
 * totals are cumulative, so the next sample makes up for it. Only the
 * owner's counts are read (one line per slot): a slot's life is one
 * worker's, so a job shared by several threads is measured as one worker
 * through its first thread's runs. (The others' busy time joins the
 * retired total when the slot is freed, which for such a job is at
 * workers_pool_free(), after the last tick.)
 */
void
workers__tally_sample(struct workers__tally *t, uint64_t now, uint64_t *busy_ns,
                      uint64_t *worker_ns)
{
    pthread_mutex_lock(&t->mu);
    uint64_t busy = t->gone.busy_ns, worker = t->gone.worker_ns;
    for (const struct workers__slot *s = t->live; s != NULL; s = s->next) {
        uint64_t fin =
            atomic_load_explicit(&s->own.finished, memory_order_acquire);
        uint64_t st =
            atomic_load_explicit(&s->own.started, memory_order_acquire);
        busy += atomic_load_explicit(&s->own.busy_ns, memory_order_relaxed);
        uint64_t since =
            atomic_load_explicit(&s->busy_since, memory_order_relaxed);
        if (st != fin && since < now)
            busy += now - since;
        if (now > s->born_ns)
            worker += now - s->born_ns;
    }
    pthread_mutex_unlock(&t->mu);
    *busy_ns = busy;
    *worker_ns = worker;
}

/* The wrapped job's free: called once its worker stopped running it. */
static void
slot_free(void *arg)
{
    struct workers__slot *s = arg;
    struct workers__tally *t = s->tally;

    /* The clock is read before the mutex is taken, as at wrap time. */
    uint64_t life = 0;
    if (t->lives) {
        uint64_t end = s->clock(s->clock_arg);
        life = end > s->born_ns ? end - s->born_ns : 0;
    }

    pthread_mutex_lock(&t->mu);
    add_slot(&t->gone, s);
    t->gone.worker_ns += life;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        t->live = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&t->mu);

    workers_job_free(&s->inner);
    free(s);
}

int
workers__tally_wrap(struct workers__tally *t, workers_job *job,
                    workers_job_fn run)
{
    struct workers__slot *s =
        aligned_alloc(WORKERS__CACHELINE, sizeof(struct workers__slot));
    if (s == NULL)
        return -ENOMEM;
    *s =
        (struct workers__slot){.busy_since = WORKERS__NOT_BUSY,
                               .born_ns = t->lives ? t->clock(t->clock_arg) : 0,
                               .inner = *job,
                               .clock = t->clock,
                               .clock_arg = t->clock_arg,
                               .tally = t};

    pthread_mutex_lock(&t->mu);
    s->next = t->live;
    if (t->live != NULL)
        t->live->prev = s;
    t->live = s;
    pthread_mutex_unlock(&t->mu);

    *job = (workers_job){run, s, slot_free};
    return 0;
}

void
workers__tally_counts(const struct workers__tally_sums *sums,
                      workers_counter_stats *out)
{
    *out = (workers_counter_stats){0};
    out->started = sums->started;
    out->finished = sums->finished;
    out->failed = sums->failed;
    out->idle = sums->idle;
    out->running = sums->started - sums->finished;
}
