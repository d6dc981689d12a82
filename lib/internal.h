/*
 * Private declarations shared by the library's files, grouped by file.
 * Internal non-static names use the workers__ prefix and hidden visibility.
 */
#ifndef WORKERS_INTERNAL_H
#define WORKERS_INTERNAL_H

#include "workers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#define WORKERS__CACHELINE 64

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
    WORKERS__PARK_WAIT, /* idle (parked) or resting (paused), sleeping */
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

    bool has_builder;        /* (A) */
    workers_job job;         /* (A) the job given to start, owned */
    workers_builder builder; /* (A) the builder given to start, owned */

    bool started;  /* (L) */
    bool stopped;  /* (L) stop_on_errors fired */
    int first_err; /* (L) the error that stopped it */
    /* (L) Workers not removed, most recent first, and nactive of them;
     * those of them resting (paused between two runs), most recent first. */
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

    /* Set by pause, cleared by resume, under lock; every worker loads it
     * before each run, so it sits alone in the pool's last cache line
     * (the pool is allocated aligned to it), which nothing else writes. */
    _Alignas(WORKERS__CACHELINE) _Atomic bool paused;
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
 * middleware/tally.c: the per-worker slots that counter.c and elapsed.c
 * share.
 *
 * A tally (the body of a counter or an elapsed) owns a list of live slots,
 * one per wrapped job, plus the totals of slots already freed. Each slot is
 * written only by the worker running its job, with relaxed loads and stores
 * (no read-modify-write, no lock) and sits on its own cache lines, so
 * workers never contend. mu guards the list and the retired totals: it is
 * taken when a job is wrapped or freed and when stats are read, never per
 * run.
 */
struct workers__slot {
    /* First cache line: written by the worker every run, read by readers. */
    _Alignas(WORKERS__CACHELINE) _Atomic uint64_t started;
    _Atomic uint64_t finished;
    _Atomic uint64_t failed;
    _Atomic uint64_t total_ns;    /* elapsed only, as the two below */
    _Atomic uint64_t last_ns;     /* duration of this slot's last run */
    _Atomic uint64_t last_end_ns; /* clock when that run ended */
    /* Private to the worker (elapsed): the context and ctx->waits seen at
     * the last end, to tell whether that end is the next run's start. */
    const workers_ctx *end_ctx;
    uint64_t end_waits;
    /* Read every run, set at wrap time (the clock copied from the tally so
     * a run never touches the tally's line, which its mutex dirties). */
    workers_job inner;
    workers_clock_fn clock;
    void *clock_arg;
    /* Cold: prev/next change under the tally's mutex. */
    struct workers__tally *tally;
    struct workers__slot *prev, *next;
};

/* Sums of a tally: the retired totals plus every live slot. */
struct workers__tally_sums {
    uint64_t started, finished, failed;
    uint64_t total_ns, last_ns, last_end_ns;
};

struct workers__tally {
    pthread_mutex_t mu;
    struct workers__slot *live;      /* guarded by mu */
    struct workers__tally_sums gone; /* freed slots' totals; guarded by mu */
    workers_clock_fn clock;          /* elapsed only; never NULL there */
    void *clock_arg;
};

/*
 * The public workers_counter and workers_elapsed handles point to a tally
 * (those struct types are never defined). clock is elapsed's, NULL for a
 * counter. Errors: -ENOMEM, or -errno from pthread_mutex_init.
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
/* The counter's view of sums. */
void workers__tally_counts(const struct workers__tally_sums *sums,
                           workers_counter_stats *out);

/*
 * The per-run updates. Only the slot's worker writes its fields, so a
 * relaxed load and store is an exact increment: nobody else can write in
 * between, and readers only need each store to be atomic (untorn). That
 * keeps the lock prefix of fetch_add off the hot path. finished and failed
 * are stored with release (free on x86) and read with acquire, in the order
 * failed, finished, started, so a reader never sees failed > finished or
 * finished > started.
 */
static inline void
workers__slot_add(_Atomic uint64_t *v, uint64_t n, memory_order order)
{
    uint64_t old = atomic_load_explicit(v, memory_order_relaxed);
    atomic_store_explicit(v, old + n, order);
}

static inline void
workers__slot_bump(_Atomic uint64_t *v, memory_order order)
{
    workers__slot_add(v, 1, order);
}

static inline void
workers__slot_start(struct workers__slot *s)
{
    workers__slot_bump(&s->started, memory_order_relaxed);
}

static inline void
workers__slot_finish(struct workers__slot *s, int result)
{
    workers__slot_bump(&s->finished, memory_order_release);
    if (result != 0)
        workers__slot_bump(&s->failed, memory_order_release);
}

/* middleware/wrapper.c: the state of retry and wait, an inner job and a
 * value. The wrapper's free frees the inner job. */
struct workers__wrapper {
    workers_job inner;
    uint64_t value;
};

/* Wraps *job with run(ctx, wrapper). Errors: -ENOMEM (*job untouched). */
int workers__wrapper_wrap(workers_job *job, workers_job_fn run, uint64_t value);

#endif /* WORKERS_INTERNAL_H */
