/*
 * Per-worker slots shared by the counter and elapsed middlewares.
 *
 * Each wrapped job gets one slot (its wrapper state), allocated and linked
 * into the tally's list when the job is wrapped, never per run. The first
 * thread to run that job owns the slot's own counts; other threads running
 * the same job at once (a shared job) add into its shared counts (see the
 * inline helpers in internal.h); readers sum both under the tally's mutex. When
 * a wrapped job is freed (its worker stopped, so nothing writes the slot any
 * more) its counts are folded into the retired totals and the slot unlinked,
 * so the stats survive workers leaving. The mutex is the only lock here and
 * no other lock is taken while it is held.
 */
#include "internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

/* The fields the owner writes every run fill exactly the first cache line;
 * the next holds what every run only reads; the third the shared counts,
 * then the list links that other threads write when neighbouring slots come
 * and go (rarely). */
_Static_assert(offsetof(struct workers__slot, inner) == WORKERS__CACHELINE,
               "slot hot fields must fill one cache line");
_Static_assert(offsetof(struct workers__slot, shared) == 2 * WORKERS__CACHELINE,
               "what a run reads must fill one cache line");

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
 * explains: failed, finished, then the rest. */
static void
load_counts(const struct workers__counts *c, struct workers__tally_sums *out)
{
    out->failed = atomic_load_explicit(&c->failed, memory_order_acquire);
    out->finished = atomic_load_explicit(&c->finished, memory_order_acquire);
    out->started = atomic_load_explicit(&c->started, memory_order_relaxed);
    out->total_ns = atomic_load_explicit(&c->total_ns, memory_order_relaxed);
    out->last_end_ns =
        atomic_load_explicit(&c->last_end_ns, memory_order_relaxed);
    out->last_ns = atomic_load_explicit(&c->last_ns, memory_order_relaxed);
}

/* Adds in to out; out's last becomes in's if in's ended later. */
static void
add_sums(struct workers__tally_sums *out, const struct workers__tally_sums *in)
{
    out->started += in->started;
    out->finished += in->finished;
    out->failed += in->failed;
    out->total_ns += in->total_ns;
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

/* The wrapped job's free: called once its worker stopped running it. */
static void
slot_free(void *arg)
{
    struct workers__slot *s = arg;
    struct workers__tally *t = s->tally;

    pthread_mutex_lock(&t->mu);
    add_slot(&t->gone, s);
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
    *s = (struct workers__slot){.inner = *job,
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
    out->started = sums->started;
    out->finished = sums->finished;
    out->failed = sums->failed;
    out->running = sums->started - sums->finished;
}
