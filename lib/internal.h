/*
 * Private declarations shared by the library's files, grouped by file.
 * Internal non-static names use the workers__ prefix and hidden visibility.
 */
#ifndef WORKERS_INTERNAL_H
#define WORKERS_INTERNAL_H

#include "workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#define WORKERS__CACHELINE 64

/* The ABI rule of workers.h: a struct the caller fills has a reserved tail
 * that must be zero, so that a later minor release can give it meaning and
 * an older library refuses a program that uses it. 0 or -EINVAL. */
#define WORKERS__RESERVED_ZERO(s)                                              \
    workers__words_zero((s)->reserved,                                         \
                        sizeof((s)->reserved) / sizeof((s)->reserved[0]))
static inline int
workers__words_zero(const uint64_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (w[i] != 0)
            return -EINVAL;
    return 0;
}

/*
 * ctx.c
 *
 * done is the cancellation flag and also the futex word that
 * workers_ctx_wait() sleeps on, so waiting needs no descriptor. fd is the
 * eventfd that workers_ctx_fd() makes on first use (-1 until then): pools of
 * thousands of workers do not pay a descriptor each unless their jobs poll.
 * waits moves on at every workers_ctx_wait() call and at the end of every
 * elapsed run: the elapsed middleware compares it between runs to know
 * whether the previous run's end is this run's start (nothing in between).
 */
struct workers_ctx {
    _Atomic uint32_t done;
    _Atomic int fd;
    _Atomic uint64_t waits;
    unsigned worker_id;
};

/* Initialises an embedded context (not cancelled, no fd). */
void workers__ctx_init(workers_ctx *ctx, unsigned worker_id);
/* Makes a cancelled context live again for a new worker on the same thread.
 * Only when nothing else can cancel or wait on it. */
void workers__ctx_reset(workers_ctx *ctx, unsigned worker_id);
/* Closes the fd, if any. */
void workers__ctx_destroy(workers_ctx *ctx);
/* The first half of workers_ctx_cancel(): sets done and signals the fd,
 * without waking futex waiters (the caller does that, maybe after dropping
 * a lock, with workers__futex_wake_all(&ctx->done)). True the first time. */
bool workers__ctx_mark(workers_ctx *ctx);

/* time.c */
uint64_t workers__now_ns(void); /* CLOCK_MONOTONIC */
/* workers__now_ns as a workers_clock_fn: a timed tally's default clock. */
uint64_t workers__monotonic(void *arg);
/* ns nanoseconds as a timespec (absolute or relative, as the caller means). */
struct timespec workers__timespec(uint64_t ns);

/*
 * futex.c: private futexes with absolute CLOCK_MONOTONIC deadlines.
 * WORKERS__NO_DEADLINE waits forever.
 */
#define WORKERS__NO_DEADLINE UINT64_MAX
/* Sleeps while *word == expected, until woken or deadline_ns. Returns 0 when
 * woken, -EAGAIN (*word differed), -EINTR or -ETIMEDOUT. */
int workers__futex_wait(_Atomic uint32_t *word, uint32_t expected,
                        uint64_t deadline_ns);
/* Wakes every thread sleeping on word. Async-signal-safe. */
void workers__futex_wake_all(_Atomic uint32_t *word);
/* Counts the library's threads (+1 when one is made, -1 when joined) and,
 * as they double, raises the futex hash size wanted; see futex.c. No
 * syscall: safe under a lock. Thread-safe. */
void workers__futex_threads(int delta);
/* Grows the process's futex hash to the size wanted, if no other thread is
 * doing so. A syscall that may block for tens of milliseconds: new threads
 * call it before their first run, holding no lock. Thread-safe. */
void workers__futex_grow(void);
/* now + timeout_ns, saturating to WORKERS__NO_DEADLINE. */
uint64_t workers__deadline_after(uint64_t timeout_ns);

/*
 * An intrusive, circular, doubly linked list: a head is a node linked to
 * itself when empty. A removed node is linked to itself again, so removing
 * it twice is harmless.
 */
struct workers__list {
    struct workers__list *prev, *next;
};

#define WORKERS__OF(node, type, member)                                        \
    ((type *)(void *)((char *)(node)-offsetof(type, member)))

static inline void
workers__list_init(struct workers__list *l)
{
    l->prev = l->next = l;
}

static inline bool
workers__list_empty(const struct workers__list *l)
{
    return l->next == l;
}

/* Inserts n first. */
static inline void
workers__list_push(struct workers__list *head, struct workers__list *n)
{
    n->prev = head;
    n->next = head->next;
    head->next->prev = n;
    head->next = n;
}

static inline void
workers__list_remove(struct workers__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    workers__list_init(n);
}

/* Moves every node of from, left empty, to the head to. */
static inline void
workers__list_take(struct workers__list *to, struct workers__list *from)
{
    workers__list_init(to);
    if (workers__list_empty(from))
        return;
    *to = *from;
    to->next->prev = to->prev->next = to;
    workers__list_init(from);
}

/*
 * pool.c, worker.c, close.c, control.c
 *
 * A thread record is allocated once and kept until workers_pool_free():
 * a trimmed thread's record is joined and kept for the next thread, so a
 * wake-up aimed at a record after the lock is dropped never touches freed
 * memory. Its context sits alone in the first cache line: the worker loads
 * ctx.done before every run and nothing else written by other threads may
 * share that line.
 */
enum workers__park {
    WORKERS__PARK_WAIT, /* parked, or resting (paused, idle wait): asleep */
    WORKERS__PARK_RUN,  /* running a worker, or given one by more() */
    WORKERS__PARK_EXIT  /* workers_pool_free(): return from the thread */
};

struct workers__thread {
    _Alignas(WORKERS__CACHELINE) workers_ctx ctx;
    /* The worker's own (wrapped) job: written by more() before the thread
     * runs it (pthread_create or the release store of park), then only by
     * the worker thread, which frees it when its worker stops. */
    _Alignas(WORKERS__CACHELINE) workers_job job;
    workers_pool *pool;
    _Atomic uint32_t park; /* futex word, enum workers__park */
    pthread_t tid;
    /* (L) Its thread has been joined, or a thread is joining it: nobody
     * else may. */
    bool joined;
    struct workers__list active;      /* (L) in pool->active while a worker */
    struct workers__list rest;        /* (L) in pool->resting while resting */
    struct workers__list free;        /* (L) in pool->parked or pool->spare */
    struct workers__thread *next_all; /* (L) every record, for the join */
};

/*
 * Lock order: add_lock, then lock. Fields marked (L) are guarded by lock,
 * (A) by add_lock; the others are set at creation and read-only.
 */
struct workers_pool {
    pthread_mutex_t lock;
    /* Serialises start, more and set_limits' growth, so that the builder
     * is never called concurrently; it is held while the builder and the
     * middlewares run, but lock is not. */
    pthread_mutex_t add_lock;
    workers_config cfg; /* cfg.min and cfg.max (L): set_limits changes them */
    int initial;        /* cfg.initial with its default applied */
    uint64_t park_timeout; /* cfg.park_timeout_ns with its default */
    workers_middleware *mws;
    size_t nmws;
    pthread_attr_t attr;
    bool has_attr; /* attr carries cfg.stack_size */

    bool has_builder; /* (A) */
    /* (A) What a successful start was given; zeroed when start fails.
     * Owned, but run borrows: its free is dropped there. */
    workers_job job;
    workers_builder builder;

    bool started;  /* (L) */
    bool stopped;  /* (L) stop_on_errors fired */
    int first_err; /* (L) the error that stopped it */
    /* (L) Workers not removed, most recent first, and nactive of them;
     * those of them resting between two runs (paused, or in their idle wait
     * after a WORKERS_EIDLE run), most recently rested first. */
    struct workers__list active, resting;
    int nactive, nresting;
    /* (L) Threads without a worker, most recently parked first. */
    struct workers__list parked;
    /* (L) Records whose thread has been joined, ready for a new thread. */
    struct workers__list spare;
    /* (L) A thread that trimmed itself and is not joined yet: the next
     * thread to trim itself joins it, or workers_pool_free() does. */
    struct workers__thread *reap;
    int nthreads; /* (L) threads alive (working, resting or parked) */
    /* (L) Bit i set: worker id i + 1 is held by a worker whose job may
     * still run (active, or removed and finishing its last run), so that
     * no two running workers ever share an id. */
    uint64_t *ids;
    size_t nids; /* words in ids */
    /* Written under lock, read without it by finishing workers, so that
     * the workers a close wakes leave without queueing on lock. closed is
     * set (seq_cst) before the closer reads busy; busy is decremented
     * (seq_cst, workers__pool_unbusy) before closed is read: whichever
     * comes second sees the other and cancels idle_ev. busy only grows
     * under lock while open. */
    _Atomic bool closed;
    /* Workers whose job may still run or be unfreed (the active ones and
     * the removed ones still finishing their last run), plus the start,
     * more and set_limits calls building a job: a close waits for all. */
    _Atomic int busy;
    struct workers__thread *threads; /* (L) every record */

    /* Cancelled, never reset: stopped_ev when the pool stops itself or
     * closes (run waits on it), idle_ev once closed and busy == 0 (close
     * waits on it). Contexts, so waiting on them costs a futex and, only
     * when a caller's context must be watched too, a descriptor. */
    workers_ctx stopped_ev;
    workers_ctx idle_ev;

    /* paused is set by pause, cleared by resume; idle_wait (cfg.idle_wait_ns
     * at first) is set by set_idle_wait; both under lock. Every worker loads
     * paused before each run and idle_wait after each WORKERS_EIDLE run, so
     * they sit alone in the pool's last cache line (the pool is allocated
     * aligned to it), which nothing else writes. */
    _Alignas(WORKERS__CACHELINE) _Atomic bool paused;
    _Atomic uint64_t idle_wait;
};

/* worker.c: with pool->lock held. Gives *job to a parked thread or a new
 * one and pushes that worker on the active list; the caller has counted
 * it in busy. On success the worker owns *job; on failure (-ENOMEM,
 * -EAGAIN, ...) *job is untouched. A parked thread is handed its worker but
 * not woken: *wake is set to it, and the caller wakes it (futex on
 * wake->park) once it has dropped the lock. */
int workers__worker_add(workers_pool *pool, workers_job *job,
                        struct workers__thread **wake);
/* worker.c: with pool->lock held and a worker active. Removes a resting
 * worker if there is one, else the most recent, and cancels it. Returns
 * the futex word the caller wakes once it has dropped the lock. */
_Atomic uint32_t *workers__worker_remove(workers_pool *pool);
/* worker.c: with pool->lock held. Takes the most recent resting worker off
 * the resting list and lets it go (its park word becomes RUN); the caller
 * wakes it (futex on ->park). NULL when none rests. */
struct workers__thread *workers__rest_pop(workers_pool *pool);
/* worker.c: wakes every resting worker, one at a time, each taken under
 * the lock and woken after it, while the pool is closed, stopped or not
 * paused (a new pause leaves the rest resting). Takes pool->lock. */
void workers__rest_release(workers_pool *pool);
/* worker.c: from workers_pool_free(), once closed, for every record: makes
 * its thread exit as soon as its job returns and joins it, unless that
 * thread is joined already or a trimmed thread is joining it. Joining every
 * record's thread also waits for those joins. Then worker_free frees each
 * record. */
void workers__worker_join(workers_pool *pool, struct workers__thread *t);
void workers__worker_free(struct workers__thread *t);

/* close.c: with pool->lock held. Records err as the pool's first error,
 * marks the pool stopped and cancels every worker (once, unless closed). */
void workers__pool_stop_locked(workers_pool *pool, int err);
/* close.c: marks the pool closed and cancels every worker, without waiting.
 * WORKERS_ECLOSED if it already was. Takes pool->lock. */
int workers__pool_shut(workers_pool *pool);
/* close.c: one worker or one job being built is over (its job freed). */
void workers__pool_unbusy(workers_pool *pool);
/* close.c: waits until ev is cancelled (0), ctx is (WORKERS_ECANCELED; ctx
 * may be NULL) or the deadline passes (WORKERS_ETIMEDOUT). */
int workers__pool_wait(workers_ctx *ev, workers_ctx *ctx, uint64_t deadline);
/* close.c: the close of close() and close_timeout(). */
int workers__pool_close(workers_pool *pool, workers_ctx *ctx,
                        uint64_t deadline);

/* pool.c: with add_lock held, adds one worker (builds its job first). */
int workers__pool_add(workers_pool *pool);
/* pool.c: removes one worker (workers__worker_remove) while more than the
 * pool's max (above_max) or min remain; WORKERS_EMIN when none may go. */
int workers__pool_remove(workers_pool *pool, bool above_max);

/*
 * middleware/tally.c: the per-worker slots that counter.c, elapsed.c and
 * the autoscaler share.
 *
 * A tally (the body of a counter, an elapsed or an autoscaler) owns a list
 * of live slots, one per wrapped job, plus the totals of slots already
 * freed. A slot's `own` counts are written only by its owner, the first
 * thread to run its job (normally the one worker that ever runs it), with
 * relaxed loads and stores (no read-modify-write, no lock); they sit on
 * cache lines that only the owner writes, so workers never contend. When
 * one wrapped job is shared by several workers (start(wrap(job, counter)),
 * the Go README's pattern), every other thread counts into the slot's
 * `shared` counts with atomic adds instead, so no count is ever lost. mu
 * guards the list and the retired totals: it is taken when a job is
 * wrapped or freed and when stats are read, never per run. A timed tally
 * (clock set: elapsed, autoscaler) also times each run (elapsed.c); the
 * autoscaler's also the life of each slot, from wrap to free, with one
 * clock read at each.
 */

/* The fields up to busy_ns come first: a slot places its own counts so
 * that those end its first cache line, the one an autoscaler's tick reads
 * (tally.c's asserts). From busy_ns on, timed tallies only. */
struct workers__counts {
    _Atomic uint64_t started;
    _Atomic uint64_t finished;
    _Atomic uint64_t failed;      /* finished with a result not 0 or EIDLE */
    _Atomic uint64_t idle;        /* finished with WORKERS_EIDLE */
    _Atomic uint64_t busy_ns;     /* time in runs that returned 0 */
    _Atomic uint64_t total_ns;    /* time in every run */
    _Atomic uint64_t last_ns;     /* duration of the last run counted here */
    _Atomic uint64_t last_end_ns; /* clock when that run ended */
};

/* Its address tells the calling thread from every other live thread.
 * initial-exec: one load from the thread pointer, even in the shared
 * library (a byte of static TLS, which dlopen also provides). */
#if defined(__GNUC__)
#define WORKERS__TLS_FAST __attribute__((tls_model("initial-exec")))
#else
#define WORKERS__TLS_FAST
#endif
extern _Thread_local char workers__thread_tag WORKERS__TLS_FAST;

/* busy_since of a slot whose run in progress does not count as busy. */
#define WORKERS__NOT_BUSY UINT64_MAX

struct workers__slot {
    /* First cache line: all that an autoscaler's tick reads, so that a
     * tick touches one line per worker, and all that an owner's counter
     * run writes. busy_since is the start of the owner's run in progress
     * when it counts as busy (its previous run did work), else
     * WORKERS__NOT_BUSY; stored before own.started, which a timed run
     * stores with release. */
    _Alignas(WORKERS__CACHELINE) _Atomic uint64_t busy_since;
    uint64_t born_ns;           /* clock when wrapped (lives); read-only */
    struct workers__slot *next; /* changes under the tally's mutex */
    struct workers__counts own; /* from total_ns on: the second line */
    /* Private to the owner (timed): the context and ctx->waits seen at the
     * last end, to tell whether that end is the next run's start, and
     * whether the last run did work. The owner's timed runs write the
     * second line too. */
    const workers_ctx *end_ctx;
    uint64_t end_waits;
    bool did_work;
    /* Third line, read every run, set at wrap time (the clock copied from
     * the tally so a run never touches the tally's line, which its mutex
     * dirties); owner is the owner's &workers__thread_tag, set once by its
     * first run; prev changes under the tally's mutex, rarely. */
    _Alignas(WORKERS__CACHELINE) workers_job inner;
    workers_clock_fn clock;
    void *clock_arg;
    _Atomic(const char *) owner;
    struct workers__tally *tally;
    struct workers__slot *prev;
    /* Fourth line: the runs of threads other than the owner (a shared job)
     * count here, with atomic adds. */
    _Alignas(WORKERS__CACHELINE) struct workers__counts shared;
};

/* Sums of a tally: the retired totals plus every live slot. worker_ns is
 * the sum of the slots' lives (wrap to free), when the tally times them. */
struct workers__tally_sums {
    uint64_t started, finished, failed, idle;
    uint64_t total_ns, busy_ns, last_ns, last_end_ns, worker_ns;
};

struct workers__tally {
    pthread_mutex_t mu;
    struct workers__slot *live;      /* guarded by mu */
    struct workers__tally_sums gone; /* freed slots' totals; guarded by mu */
    workers_clock_fn clock;          /* timed tallies only; else NULL */
    void *clock_arg;
    /* Stamps each slot's life (the autoscaler's): set before any wrap. */
    bool lives;
};

/*
 * The public workers_counter and workers_elapsed handles point to a tally
 * (those struct types are never defined); an autoscaler holds one. clock
 * is NULL for a counter. Errors: -ENOMEM, or -errno from
 * pthread_mutex_init.
 */
int workers__tally_new(struct workers__tally **out, workers_clock_fn clock,
                       void *clock_arg);
void workers__tally_free(struct workers__tally *t);
/* Wraps *job with run(ctx, slot): allocates and registers one slot. The
 * slot's free folds its counts into the retired totals. Errors: -ENOMEM. */
int workers__tally_wrap(struct workers__tally *t, workers_job *job,
                        workers_job_fn run);
void workers__tally_read(struct workers__tally *t,
                         struct workers__tally_sums *out);
/* A tally's busy and worker time (lives set) up to now (its clock), runs
 * in progress that count as busy included; one cache line per live slot.
 * A live slot counts as one worker: its owner's runs only (a job shared by
 * several threads is measured through its first one). */
void workers__tally_sample(struct workers__tally *t, uint64_t now,
                           uint64_t *busy_ns, uint64_t *worker_ns);
/* The counter's view of sums. */
void workers__tally_counts(const struct workers__tally_sums *sums,
                           workers_counter_stats *out);

/*
 * Whether the calling thread owns s: its first run of s's job claims it.
 * One load of a line the run reads anyway, and one compare.
 */
static inline bool
workers__slot_owned(struct workers__slot *s)
{
    const char *me = &workers__thread_tag;
    const char *owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
    return owner == me ||
           (owner == NULL && atomic_compare_exchange_strong_explicit(
                                 &s->owner, &owner, me, memory_order_relaxed,
                                 memory_order_relaxed));
}

/*
 * Adds n to v, a field of a slot's own counts (shared false) or of its
 * shared counts (shared true; callers pass a constant, so each path
 * compiles alone). Only the owner writes own, so a relaxed load and store is
 * an exact increment there: nobody else can write in between, and readers
 * only need each store to be atomic (untorn). That keeps the lock prefix of
 * fetch_add off the hot path; the shared counts, which several threads may
 * write at once, take fetch_add. finished, failed and idle are stored with
 * release (free on x86) and read with acquire, in the order failed and
 * idle, finished, started, so a reader never sees failed + idle > finished
 * or finished > started.
 */
static inline void
workers__count_add(_Atomic uint64_t *v, uint64_t n, bool shared,
                   memory_order order)
{
    if (shared) {
        atomic_fetch_add_explicit(v, n, order);
    } else {
        uint64_t old = atomic_load_explicit(v, memory_order_relaxed);
        atomic_store_explicit(v, old + n, order);
    }
}

static inline void
workers__count_start(struct workers__counts *c, bool shared)
{
    workers__count_add(&c->started, 1, shared, memory_order_relaxed);
}

static inline void
workers__count_finish(struct workers__counts *c, bool shared, int result)
{
    workers__count_add(&c->finished, 1, shared, memory_order_release);
    if (result == WORKERS_EIDLE)
        workers__count_add(&c->idle, 1, shared, memory_order_release);
    else if (result != 0)
        workers__count_add(&c->failed, 1, shared, memory_order_release);
}

/* middleware/elapsed.c: the run of a timed tally's slot (elapsed's and the
 * autoscaler's): times the inner job with one clock read and counts it. */
int workers__timed_run(workers_ctx *ctx, void *slot);

/*
 * autoscale/policy.c: the autoscaler's decision, a pure function of the
 * policy, the pool's bounds, what was measured, the size and the clock,
 * so that tests drive it with synthetic loads and no thread.
 */

/* Cumulative busy and worker time, as workers__tally_sample() gives. */
struct workers__as_sample {
    uint64_t busy_ns, worker_ns;
};

/* A point of measurement: when, and the totals then. */
struct workers__as_mark {
    uint64_t ns;
    struct workers__as_sample at;
};

/* What the decision remembers between ticks. Zero = before the first. */
struct workers__as_state {
    bool measuring;                  /* a span is open */
    int count;                       /* the size the last tick left or found */
    struct workers__as_mark start;   /* of the span (a window at most) */
    struct workers__as_mark quarter; /* of the current quarter window */
    double quarter_u; /* utilisation over the last whole quarter */
    uint64_t last_tick_ns;
    bool changed;       /* change_ns is set */
    uint64_t change_ns; /* the last change of size, for the cooldown */
};

/* The policy with its defaults applied, or -EINVAL. in may be NULL. */
int workers__autoscale_policy(const workers_autoscale_policy *in,
                              workers_autoscale_policy *out);
/* The top of the dead band around target: utilisation above it grows the
 * pool (describe.c tells "at max" from "at min" by it too). */
double workers__autoscale_high(double target);
/* Decides for a pool of `current` workers, min/max its config's (max 0:
 * none), and updates *st as if the decision is carried out in full; fills
 * *d but its err. p has its defaults applied. */
void workers__autoscale_decide(const workers_autoscale_policy *p, int min,
                               int max, struct workers__as_state *st,
                               const struct workers__as_sample *now_sample,
                               int current, uint64_t now,
                               workers_autoscale_decision *d);

/* middleware/wrapper.c: the state of retry and wait, an inner job and a
 * value. The wrapper's free frees the inner job. */
struct workers__wrapper {
    workers_job inner;
    uint64_t value;
};

/* Wraps *job with run(ctx, wrapper). Errors: -ENOMEM (*job untouched). */
int workers__wrapper_wrap(workers_job *job, workers_job_fn run, uint64_t value);

#endif /* WORKERS_INTERNAL_H */
