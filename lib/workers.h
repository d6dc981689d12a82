/*
 * libworkers: run ONE job over and over through a pool of POSIX-thread
 * workers that can grow (more), shrink (less), pause at zero workers and
 * close within a deadline.
 *
 * The model (after the Go package github.com/hmoragrega/workers):
 * - A job is a function plus its argument. Each worker calls it in a loop
 *   until the worker's context is cancelled.
 * - A job builder makes one job per worker, so per-worker state needs no
 *   lock: a built job is only ever run by its own worker.
 * - Middlewares wrap each worker's job (counter, elapsed, retry, wait,
 *   autoscale, or your own).
 * - Every pool function may be called from any thread at any time.
 *
 * Errors: every function that can fail returns 0 or a negative code: one of
 * the WORKERS_E* codes below, or a negated errno value (-ENOMEM, -EAGAIN, ...)
 * for system failures. workers_strerror() and workers_err_name() describe
 * both. Job functions return 0 for success and any other int for failure;
 * by convention a job uses WORKERS_E* codes or negated errno values.
 *
 * Signals: worker threads start with every signal blocked and the library
 * installs no signal handler, so the embedding program decides which thread
 * sees signals. There is no pthread_cancel: cancellation is cooperative
 * through workers_ctx.
 *
 * Process-wide effect: on Linux 6.16 and later, as the library's thread
 * count doubles past 64 it grows the process's private futex hash
 * (prctl PR_FUTEX_HASH) to about two slots per thread, because every idle
 * worker sleeps on a futex word of its own and the default table (about
 * four slots per CPU) makes each wake walk thousands of waiters. The call
 * blocks for tens of milliseconds, so one of the new worker threads makes
 * it before its first run, never the caller of start/more and never under
 * a lock; one thread at a time in the process, to the largest size any
 * pool asked for. It never shrinks the table, and leaves alone a process
 * that chose the global hash.
 *
 * ABI: the library is libworkers.so.WORKERS_VERSION_MAJOR. Within a major
 * version a program built against an older header runs with a newer
 * library: functions are only added, and no public struct changes size or
 * layout. The structs that may grow carry a `reserved` tail for it:
 * - a struct the caller fills and the library reads (workers_config,
 *   workers_autoscale_policy): zero-initialise the whole struct ("= {0}",
 *   designated initialisers, memset, calloc), then set the fields you use.
 *   Reserved fields must be zero: a function given one that is not refuses
 *   it with -EINVAL, so a program that sets a field a later minor release
 *   gives meaning to fails cleanly with an older library instead of being
 *   silently ignored;
 * - a struct the library fills (workers_pool_status, the stats, the
 *   autoscale decision): the library writes every byte of it, reserved
 *   fields as zero; a later minor release may fill them.
 * A later minor release gives a reserved field a name and a meaning, with
 * zero meaning what the library did before. workers_job, workers_builder
 * and workers_middleware are fixed for the life of a major version.
 * Version 2 (libworkers.so.2) broke version 1's ABI: workers_config grew
 * (park_timeout_ns, idle_wait_ns) and workers_counter_stats and
 * workers_elapsed_stats gained fields in the middle (idle, busy_ns), so
 * a program built for libworkers.so.1 must be rebuilt.
 */
#ifndef WORKERS_H
#define WORKERS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(WORKERS_STATIC)
#define WORKERS_API __attribute__((visibility("default")))
#else
#define WORKERS_API
#endif

#define WORKERS_VERSION_MAJOR 2
#define WORKERS_VERSION_MINOR 0
#define WORKERS_VERSION_PATCH 0
#define WORKERS_VERSION_STRING "2.0.0"

/* Returns WORKERS_VERSION_STRING as the library was built. Thread-safe. */
WORKERS_API const char *workers_version(void);

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/* The library's own codes; the range is clear of negated errno values. */
#define WORKERS_ERRNO_MAP(XX)                                                  \
    XX(ECLOSED, -4001, "pool closed")                                          \
    XX(ESTARTED, -4002, "pool already started")                                \
    XX(ENOTSTARTED, -4003, "pool not started")                                 \
    XX(EMAX, -4004, "max workers reached")                                     \
    XX(EMIN, -4005, "min workers reached")                                     \
    XX(EINVALMIN, -4006, "invalid min: must be >= 0")                          \
    XX(EINVALMAX, -4007, "invalid max: must be 0 (unlimited) or >= min")       \
    XX(EINVALINITIAL, -4008,                                                   \
       "invalid initial: must be >= min and, when max is set, <= max")         \
    XX(ETIMEDOUT, -4009, "deadline exceeded")                                  \
    XX(ECANCELED, -4010, "cancelled")                                          \
    XX(ENOTRETRYABLE, -4011, "not retryable")                                  \
    XX(EJOB, -4012, "job failed")                                              \
    XX(EIDLE, -4013, "no work")

enum workers_errno {
#define WORKERS__ERR_ENUM(name, val, msg) WORKERS_##name = (val),
    WORKERS_ERRNO_MAP(WORKERS__ERR_ENUM)
#undef WORKERS__ERR_ENUM
};

/*
 * A static, human-readable message for err: "success" for 0, the library's
 * codes, the common negated errno values, and "unknown error" for anything
 * else (positive job codes included). Never NULL. Thread-safe and
 * async-signal-safe.
 */
WORKERS_API const char *workers_strerror(int err);

/* The symbolic name ("OK" for 0, "WORKERS_ECLOSED", "ENOMEM", "UNKNOWN").
 * Never NULL. Thread-safe and async-signal-safe. */
WORKERS_API const char *workers_err_name(int err);

/* ------------------------------------------------------------------ */
/* Cancellation context                                                */
/* ------------------------------------------------------------------ */

/*
 * A workers_ctx is a one-shot cancellation flag. The pool hands every job run
 * the context of the worker running it; that context is cancelled when the
 * worker is removed (less) or the pool closes. Programs create their own
 * contexts to stop workers_pool_run() or to bound workers_pool_close().
 */
typedef struct workers_ctx workers_ctx;

/*
 * Creates a context that is not cancelled. *out is owned by the caller and
 * freed with workers_ctx_free(). Errors: -ENOMEM. Thread-safe.
 */
WORKERS_API int workers_ctx_new(workers_ctx **out);

/*
 * Frees a context made by workers_ctx_new(), and its descriptor if
 * workers_ctx_fd() made one. Nothing may use it any more: not a pool it was
 * given to, not another thread. NULL is a no-op. Never call it on a worker's
 * context (the one a job receives).
 */
WORKERS_API void workers_ctx_free(workers_ctx *ctx);

/*
 * Cancels the context: done() turns true, wait() returns, the descriptor
 * becomes readable. Idempotent. Async-signal-safe and thread-safe, so a
 * SIGINT handler may call it to stop workers_pool_run(). Programs only cancel
 * contexts they created; the pool cancels worker contexts.
 */
WORKERS_API void workers_ctx_cancel(workers_ctx *ctx);

/*
 * True once the context is cancelled. One atomic load: no lock, no syscall;
 * jobs may call it as often as they like. Thread-safe.
 */
WORKERS_API bool workers_ctx_done(const workers_ctx *ctx);

/*
 * Sleeps for up to timeout_ns nanoseconds, returning early when the context
 * is cancelled. Returns 0 when the whole timeout passed and WORKERS_ECANCELED
 * when the context is (or already was) cancelled. Uses no descriptor.
 * Thread-safe.
 */
WORKERS_API int workers_ctx_wait(workers_ctx *ctx, uint64_t timeout_ns);

/*
 * A descriptor that becomes readable (POLLIN) once the context is cancelled,
 * for jobs that poll I/O or child processes. The context owns it: never read,
 * write or close it. The first call creates it (close-on-exec) and may fail
 * with -EMFILE/-ENFILE/-ENOMEM; later calls return the same descriptor.
 * Returns the descriptor (>= 0) or a negative code. Thread-safe.
 */
WORKERS_API int workers_ctx_fd(workers_ctx *ctx);

/*
 * The 1-based number of the worker whose context this is, stable for the
 * life of that worker and never shared by two workers whose runs may
 * overlap: a new worker gets the lowest number that no running worker
 * holds, counting removed workers still finishing their last run. So
 * workers started together are 1..n, and after less() the next more()
 * reuses the removed worker's number as soon as that worker's last run has
 * returned, even while its job's free() still runs (a free gets no context,
 * and is no run). 0 for contexts made by workers_ctx_new(); the worker's
 * number for those made by workers_ctx_new_for(). Thread-safe.
 */
WORKERS_API unsigned workers_ctx_worker_id(const workers_ctx *ctx);

/*
 * As workers_ctx_new(), but the new context carries the worker id of
 * `worker` (any context; NULL gives 0). For code that gives a run a context
 * of its own, e.g. to cancel it at a per-run deadline, while the job should
 * still see its worker's number. Errors: -ENOMEM. Thread-safe.
 */
WORKERS_API int workers_ctx_new_for(workers_ctx **out,
                                    const workers_ctx *worker);

/* ------------------------------------------------------------------ */
/* Jobs, builders, middlewares                                         */
/* ------------------------------------------------------------------ */

/*
 * One run of a job. Returns 0 on success, anything else is a job error. A job
 * that stops early because ctx was cancelled should return WORKERS_ECANCELED
 * or -ECANCELED (the errno a C programmer reaches for): the pool treats both
 * alike, as a cancellation that never counts as an error for
 * stop_on_errors (see workers_is_canceled()). Jobs should honour
 * cancellation as soon as they can: close waits for the runs in progress.
 *
 * A run that looked for work and found none (an empty queue) returns
 * WORKERS_EIDLE. That is an outcome, not an error: stop_on_errors does not
 * stop on it, the retry middleware does not retry it, the counter counts it
 * as idle rather than failed, the autoscaler counts its time as idle, and
 * the pool's idle wait (workers_config.idle_wait_ns) rests the worker after
 * it so that an empty queue is not polled hot.
 */
typedef int (*workers_job_fn)(workers_ctx *ctx, void *arg);

/* The pool's own test for a cancellation result: true for
 * WORKERS_ECANCELED and -ECANCELED. For middlewares that must tell a
 * job error from a cancelled run as the pool does. Thread-safe. */
static inline bool
workers_is_canceled(int err)
{
    return err == WORKERS_ECANCELED || err == -ECANCELED;
}

/*
 * Whether a run's result is an error in the pool's sense, the one that
 * stop_on_errors stops on: not 0, a cancellation (workers_is_canceled():
 * WORKERS_ECANCELED or -ECANCELED) or WORKERS_EIDLE. For middlewares that
 * react to errors (a backoff, an alert). Thread-safe.
 */
static inline bool
workers_result_is_error(int result)
{
    return result != 0 && !workers_is_canceled(result) &&
           result != WORKERS_EIDLE;
}

/*
 * A job: fn(ctx, arg) is one run. free, if not NULL, is called with arg once
 * the job is no longer used (see who owns it at each function).
 * Fields are public: fill them or use workers_job_func().
 */
typedef struct workers_job {
    workers_job_fn fn;
    void *arg;
    void (*free)(void *arg);
} workers_job;

/* Go's JobFunc: a job from a function and its argument, with no destructor. */
static inline workers_job
workers_job_func(workers_job_fn fn, void *arg)
{
    workers_job job = {fn, arg, NULL};
    return job;
}

/* Calls job->free(job->arg) if set, then zeroes *job. NULL-safe. */
WORKERS_API void workers_job_free(workers_job *job);

/*
 * Go's NoError: *out becomes a job that runs fn(ctx, arg) and always
 * succeeds. arg_free (may be NULL) is called with arg when *out is freed.
 * *out owns a small allocation: release it with workers_job_free() or hand
 * it to a pool. Errors: -ENOMEM (then arg_free is not called).
 */
WORKERS_API int workers_job_noerror(workers_job *out,
                                    void (*fn)(workers_ctx *ctx, void *arg),
                                    void *arg, void (*arg_free)(void *arg));

/*
 * Go's JobBuilder: new_job(arg, out) fills *out with a new job for a new
 * worker; return 0, or a negative code to refuse (start or more then fails
 * with that code). It is called once per worker, by the thread that calls
 * start/run/more, never concurrently for the same pool; it must not call
 * that pool's start, run or more (they would wait for it). The job it makes
 * is run only by its own worker, never concurrently, so its state needs no
 * lock; its free() is called when that worker stops. free (may be NULL) is
 * called with arg when the pool that took the builder (a successful start)
 * is freed; run only borrows it.
 */
typedef struct workers_builder {
    int (*new_job)(void *arg, workers_job *out);
    void *arg;
    void (*free)(void *arg);
} workers_builder;

/* Go's JobBuilderFunc. */
static inline workers_builder
workers_builder_func(int (*new_job)(void *arg, workers_job *out), void *arg)
{
    workers_builder b = {new_job, arg, NULL};
    return b;
}

/*
 * Go's Middleware: wrap(mw, job) replaces *job with a job that wraps it.
 * On success the wrapper owns the old *job (its free frees the old one
 * too). On failure it returns a negative code and leaves *job untouched.
 * wrap may be called from any thread, concurrently, for different jobs.
 * data and value are the middleware's own (an object, a count, a duration).
 */
typedef struct workers_middleware {
    int (*wrap)(const struct workers_middleware *mw, workers_job *job);
    void *data;
    uint64_t value;
} workers_middleware;

/*
 * Go's Wrap: applies mws[0], mws[1], ... in order, so the last given is
 * outermost. Takes ownership of *job: on success *job is the wrapped job;
 * on failure *job has been freed (workers_job_free) and zeroed and the
 * error of the failing middleware is returned.
 */
WORKERS_API int workers_wrap(workers_job *job, const workers_middleware *mws,
                             size_t nmws);

/* ------------------------------------------------------------------ */
/* Pool                                                                */
/* ------------------------------------------------------------------ */

/*
 * The caller fills this; zero means default for every field. The caller
 * owns it; functions read it during the call only (a pool keeps a copy).
 * ABI (see the top of this file): zero the whole struct before setting
 * fields; `reserved` must stay zero (else -EINVAL): a later minor release
 * gives its words meaning, zero keeping today's behaviour.
 */
typedef struct workers_config {
    int min;     /* >= 0; default 0: the pool may pause with no worker */
    int max;     /* 0 = unlimited, else >= min and >= initial */
    int initial; /* 0 = max(1, min); else min <= initial (<= max) */
    /* The first job error stops the whole pool: a result that
     * workers_result_is_error() calls one (cancellations and WORKERS_EIDLE
     * are not). */
    bool stop_on_errors;
    /*
     * Stack size of each worker thread in bytes; 0 = the system default
     * (RLIMIT_STACK, often 8 MiB). A stack costs address space, but only the
     * pages a job touches cost memory: an idle worker holds a few pages of
     * stack plus about 200 bytes of pool state. Lower it (e.g. 64 KiB) for
     * pools of many thousands of workers whose jobs are shallow. Rounded up
     * to PTHREAD_STACK_MIN and the page size; a size the system cannot
     * give fails pool creation (-EINVAL) or the threads' start (-EAGAIN).
     */
    size_t stack_size;
    /*
     * How long the thread of a removed worker stays parked, waiting for a
     * more() to reuse it, before it exits; 0 = the default,
     * WORKERS_PARK_TIMEOUT_DEFAULT_NS (10 s); UINT64_MAX = never. So a
     * pool scaled from 2 to 32 and back to 2 holds 2 threads (and their
     * descriptors) again once the timeout has passed.
     */
    uint64_t park_timeout_ns;
    /*
     * The idle wait: how long a worker rests after a run that returned
     * WORKERS_EIDLE (it found no work) before its next run, so that a job
     * polling an empty queue does not spin; 0 (the default) = no rest.
     * UINT64_MAX = until let go. The worker rests between runs, as a paused
     * one does: less() removes a resting worker before any inside a run;
     * less, close, a stop_on_errors stop and resume end the rest at once
     * (a resumed worker runs again at once), and on a paused pool a worker
     * whose idle wait is over rests on until resume. The elapsed middleware
     * and the autoscaler count the rest in no run. Changed at run time by
     * workers_pool_set_idle_wait(). Each rest takes the pool's lock (twice
     * when it lasts its full length), so that less() can find the worker:
     * keep the wait to a millisecond or more.
     */
    uint64_t idle_wait_ns;
    uint64_t reserved[8]; /* must be zero: room to grow within the ABI */
} workers_config;

#define WORKERS_PARK_TIMEOUT_DEFAULT_NS UINT64_C(10000000000)

typedef struct workers_pool workers_pool;

/*
 * Checks cfg (NULL = all defaults) without making a pool: 0, or
 * WORKERS_EINVALMIN (min < 0), WORKERS_EINVALMAX (max != 0 && max < min),
 * WORKERS_EINVALINITIAL (initial != 0 and initial < min, or max != 0 and
 * initial > max), -EINVAL (a reserved field is not zero). Every
 * park_timeout_ns and idle_wait_ns is valid. Thread-safe.
 */
WORKERS_API int workers_config_validate(const workers_config *cfg);

/*
 * Go's New/NewWithConfig. Makes a pool that is not started. cfg may be NULL
 * (min 0, max unlimited, initial 1); it is copied. The middlewares (nmws of
 * them, mws may be NULL when nmws is 0) are copied and wrap every worker's
 * job, mws[0] innermost; the objects they point to (a counter, say) must
 * outlive the pool. *out is owned by the caller: workers_pool_free().
 * Errors: the workers_config_validate() codes, -ENOMEM. Thread-safe.
 */
WORKERS_API int workers_pool_new(workers_pool **out,
                                 const workers_middleware *mws, size_t nmws);
WORKERS_API int workers_pool_new_with_config(workers_pool **out,
                                             const workers_config *cfg,
                                             const workers_middleware *mws,
                                             size_t nmws);

/*
 * Go's Must: workers_pool_new_with_config() or, on error, a message on
 * stderr and abort(). For programs whose config is a constant.
 */
WORKERS_API workers_pool *workers_pool_must(const workers_config *cfg,
                                            const workers_middleware *mws,
                                            size_t nmws);

/*
 * Ownership: on success the pool owns *job; on failure it stays the
 * caller's (nothing freed, and no worker runs it any more), so the caller
 * may free it or start another pool with it.
 * Starts `initial` workers running job (clamped into the limits in force
 * if workers_pool_set_limits() changed them): returns once each has a
 * thread (created or woken); their first runs may begin after it returns.
 * Every worker shares job->arg (so the job must be thread-safe), and
 * job->free(job->arg) is called by workers_pool_free(), after every worker
 * has stopped. Errors: WORKERS_ECLOSED, WORKERS_ESTARTED, a middleware
 * error, -EAGAIN/-ENOMEM (no thread could be made). After a middleware or
 * thread error the workers already started are cancelled, the pool is
 * closed, and start returns only once their runs in progress have returned
 * (as a close without deadline waits), since they share the job's arg.
 * Thread-safe.
 */
WORKERS_API int workers_pool_start(workers_pool *pool, const workers_job *job);

/*
 * Ownership: on success the pool owns *builder (its free is called by
 * workers_pool_free()); on failure it stays the caller's, nothing freed.
 * As workers_pool_start(), with a builder called once per worker (see
 * workers_builder). A builder error is returned as it is, and then the pool
 * is closed as for a thread error, but without waiting: the workers already
 * started run and free jobs of their own, not the builder, and
 * workers_pool_free() waits for them (so free what their jobs use only after
 * it). Thread-safe.
 */
WORKERS_API int workers_pool_start_with_builder(workers_pool *pool,
                                                const workers_builder *builder);

/*
 * Ownership: borrows *job (or *builder) and ctx: whatever run returns, they
 * stay the caller's (the pool never frees them) and no worker runs any more
 * once run has returned, so a second run with the same job after an error
 * is safe (it returns WORKERS_ECLOSED) and so is freeing the job.
 * Go's Run: starts the pool, blocks until ctx is cancelled or the pool stops
 * itself (stop_on_errors), then closes it without a deadline and returns
 * what that close returns: 0, or the job error that stopped the pool
 * (WORKERS_ECLOSED if another thread closed it first; run still waits for
 * every run in progress). Also returns the start errors (WORKERS_ECLOSED
 * for a closed pool, WORKERS_ESTARTED for a started one). Thread-safe.
 */
WORKERS_API int workers_pool_run(workers_pool *pool, const workers_job *job,
                                 workers_ctx *ctx);
WORKERS_API int workers_pool_run_with_builder(workers_pool *pool,
                                              const workers_builder *builder,
                                              workers_ctx *ctx);

/*
 * Adds one worker (waking a parked thread if a removed worker left one
 * within its park_timeout_ns, else creating a thread). On a paused pool
 * the worker rests until resume. Errors: WORKERS_ECLOSED (also once
 * stop_on_errors stopped the pool), WORKERS_ENOTSTARTED, WORKERS_EMAX
 * (current == max), a builder or middleware error, -EAGAIN/-ENOMEM.
 * Thread-safe.
 */
WORKERS_API int workers_pool_more(workers_pool *pool);

/*
 * Removes one worker, never one inside a run if one can go that is not:
 * a worker resting between two runs (the pool is paused, or the worker is
 * in its idle wait after a run that found no work) if there is one, the
 * most recently rested first; else the most recently added worker. (A
 * worker between two runs that does not rest is between them for
 * nanoseconds and is not told apart: without an idle wait, a worker
 * polling an empty queue is always inside a run.) Cancels its context and
 * returns at once, without waiting for its run in progress (close waits for
 * it). Errors: WORKERS_ECLOSED (also once stop_on_errors stopped the pool),
 * WORKERS_ENOTSTARTED, WORKERS_EMIN (current == min). Thread-safe.
 */
WORKERS_API int workers_pool_less(workers_pool *pool);

/* The number of workers not removed (0 before start and after close).
 * Thread-safe. */
WORKERS_API int workers_pool_current(workers_pool *pool);

/*
 * Go's Close(ctx). The first call marks the pool closed, cancels every
 * worker (resting workers too, paused or in their idle wait: they end
 * without another run)
 * and waits until the pool is idle: every worker has finished its run in
 * progress, removed workers still finishing their last run included, and
 * every job built for the pool has been freed, including the one a start,
 * more or set_limits call still running when close came has built (its
 * builder and middlewares ran; the call then fails with WORKERS_ECLOSED).
 * ctx may be NULL (no deadline); it is borrowed for the call. Returns:
 * - 0 when the pool is idle and no job error stopped it;
 * - the first job error, when stop_on_errors stopped the pool;
 * - WORKERS_ECANCELED when ctx was cancelled first (also if it already was);
 * - WORKERS_ECLOSED at once on every later call: workers_pool_wait() waits.
 * Closing a pool never started returns 0 without looking at ctx (as Go's
 * Close returns nil), even when ctx is already cancelled or the timeout 0;
 * start then fails with WORKERS_ECLOSED. After ECANCELED or ETIMEDOUT the
 * workers still finish in the background; workers_pool_wait() or
 * workers_pool_free() waits for them. A job must never close its own pool
 * synchronously: close waits for every run, the calling one's too, so from
 * a job it returns only at its deadline, or never. To end its pool, a job
 * returns an error under stop_on_errors, or asks another thread to close.
 * Thread-safe.
 */
WORKERS_API int workers_pool_close(workers_pool *pool, workers_ctx *ctx);

/* Go's CloseWithTimeout: as workers_pool_close(), bounded by timeout_ns
 * nanoseconds from now; WORKERS_ETIMEDOUT when it passes first. */
WORKERS_API int workers_pool_close_timeout(workers_pool *pool,
                                           uint64_t timeout_ns);

/*
 * Waits until the pool is closed and idle, as the first close does, for
 * any number of callers and as often as needed: e.g. again after a close
 * that returned WORKERS_ETIMEDOUT, with a new deadline. On a pool not closed
 * yet it waits for the close too. ctx may be NULL (no deadline); it is
 * borrowed. Returns what the first close returns once idle (0 or the job
 * error that stopped the pool), or WORKERS_ECANCELED when ctx is (or already
 * was) cancelled first. Never from a job of this pool (see close).
 * Thread-safe.
 */
WORKERS_API int workers_pool_wait(workers_pool *pool, workers_ctx *ctx);

/* As workers_pool_wait(), bounded by timeout_ns nanoseconds from now;
 * WORKERS_ETIMEDOUT when it passes first. */
WORKERS_API int workers_pool_wait_timeout(workers_pool *pool,
                                          uint64_t timeout_ns);

/*
 * Pauses the pool: every run in progress finishes (it is not cancelled),
 * then its worker rests instead of starting another run, until
 * workers_pool_resume(). A worker that had already passed its check when
 * pause was called may still start one run. The worker count is kept;
 * more, less, set_limits and close work as ever (a worker added rests
 * before its first run; less removes resting workers first; close ends
 * them without another run). Pausing a paused pool, or one not started (its
 * workers then rest from the start), is allowed. Errors: WORKERS_ECLOSED
 * (also once stop_on_errors stopped the pool). Thread-safe; from a job too.
 */
WORKERS_API int workers_pool_pause(workers_pool *pool);

/*
 * Ends a pause: the resting workers start runs again at once. Resuming a
 * pool not paused only ends the idle waits in progress (as
 * workers_pool_set_idle_wait() does). Errors: WORKERS_ECLOSED (also once
 * stop_on_errors stopped the pool). Thread-safe; from a job too.
 */
WORKERS_API int workers_pool_resume(workers_pool *pool);

/*
 * Changes the limits of a pool, started or not: min and max as in
 * workers_config (max 0 = unlimited), checked as workers_config_validate()
 * checks a config, then brings the worker count into [min, max]: removes
 * workers above max (as less does) and adds workers up to min (as more
 * does; it waits for a more() in progress). Before start, it only changes
 * the limits (and so how many workers start). Errors: WORKERS_EINVALMIN,
 * WORKERS_EINVALMAX (nothing changed); WORKERS_ECLOSED (also once
 * stop_on_errors stopped the pool); an error of the more() that failed
 * while adding up to min (a builder or middleware error, -EAGAIN/-ENOMEM):
 * the new limits are kept and the count is what could be reached.
 * Thread-safe; never from the pool's builder (as for more).
 */
WORKERS_API int workers_pool_set_limits(workers_pool *pool, int min, int max);

/*
 * Changes the pool's idle wait (see workers_config.idle_wait_ns; any value
 * is valid, 0 = none), for a running pool or before start: every idle run
 * from now on rests the new length. On a pool not paused the workers in an
 * idle wait are let go at once, so they run again and rest anew with the
 * new length; on a paused pool they finish the wait they began. Errors:
 * WORKERS_ECLOSED (also once stop_on_errors stopped the pool). Thread-safe;
 * from a job too.
 */
WORKERS_API int workers_pool_set_idle_wait(workers_pool *pool,
                                           uint64_t idle_wait_ns);

/* A snapshot of a pool, taken at once (workers_pool_status_get()). The
 * caller owns it; the library writes every field, `reserved` as zero (a
 * later minor release may fill it: see ABI at the top of this file). */
typedef struct workers_pool_status {
    int current;  /* workers not removed, as workers_pool_current() */
    int min, max; /* the limits in force; max 0 = unlimited */
    bool paused;  /* between workers_pool_pause() and _resume() */
    int resting;  /* workers resting between two runs, paused or in their
                     idle wait (<= current) */
    int threads;  /* threads alive: working, resting, finishing, or parked
                     for reuse (until their park timeout) */
    uint64_t idle_wait_ns; /* the idle wait in force */
    uint64_t reserved[4];  /* written as zero */
} workers_pool_status;

/* Fills *out with the pool's state, all fields read together. On a closed
 * pool current and resting are 0. Thread-safe. */
WORKERS_API void workers_pool_status_get(workers_pool *pool,
                                         workers_pool_status *out);

/*
 * Frees the pool. Closes it first if needed (without a deadline), then joins
 * every thread, those that exited after their park timeout included: it
 * blocks until every run in progress returned, even after a timed-out
 * close, and no thread of the pool runs any more when it returns. Then
 * frees the job or builder the pool owns. No other call on the pool may be
 * in progress or follow. NULL is a no-op.
 */
WORKERS_API void workers_pool_free(workers_pool *pool);

/* ------------------------------------------------------------------ */
/* Middlewares                                                         */
/* ------------------------------------------------------------------ */

/*
 * Counter: how many runs started, finished, failed, found no work, and are
 * running. Each wrapped job counts in its own cache lines, written only by
 * the first thread that runs it (its worker) without lock or atomic
 * read-modify-write; a read sums them. A wrapped job that several workers
 * share (workers_pool_start(wrap(job, counter)), Go's pattern) counts
 * exactly too: the other threads add into a second, shared line with atomic
 * adds, which costs them more per run. For speed give the middleware to the
 * pool (it wraps each worker's job) or wrap inside a builder. The same
 * holds for elapsed. Counts survive the jobs: a freed job's are kept in the
 * totals.
 * The counter must outlive every job it wrapped (free pools first).
 */
typedef struct workers_counter workers_counter;

/* Filled by workers_counter_stats_get(): every field, `reserved` as zero
 * (see ABI at the top of this file). */
typedef struct workers_counter_stats {
    uint64_t started;
    uint64_t finished;    /* failed and idle runs included */
    uint64_t failed;      /* finished with a result other than 0 or EIDLE */
    uint64_t idle;        /* finished with WORKERS_EIDLE (found no work) */
    uint64_t running;     /* started - finished */
    uint64_t reserved[4]; /* written as zero */
} workers_counter_stats;

/* Errors: -ENOMEM. Thread-safe. */
WORKERS_API int workers_counter_new(workers_counter **out);
/* The middleware that counts into c. Thread-safe. */
WORKERS_API workers_middleware workers_counter_middleware(workers_counter *c);
/* A snapshot: each field is exact, the set is not atomic (a run may finish
 * between two loads, never making running negative). Thread-safe. */
WORKERS_API void workers_counter_stats_get(workers_counter *c,
                                           workers_counter_stats *out);
/* Frees c; no job it wrapped may still exist. NULL is a no-op. */
WORKERS_API void workers_counter_free(workers_counter *c);

/*
 * Elapsed: the counter plus the time runs take. The clock is read about
 * once per run: when a run ends right after the previous run of the same
 * worker (no ctx wait in between), the previous end is its start. The
 * threads that share a job with its first runner read it twice a run, and
 * last_ns is then one of the runs that ended at about the same time.
 * Time spent by outer middlewares between two runs without a ctx wait
 * counts into the next run.
 */
typedef struct workers_elapsed workers_elapsed;

/* A clock in nanoseconds; monotonic. arg is the clock_arg given. */
typedef uint64_t (*workers_clock_fn)(void *arg);

/* Filled by workers_elapsed_stats_get(), as workers_counter_stats. */
typedef struct workers_elapsed_stats {
    workers_counter_stats counts;
    uint64_t total_ns;    /* sum of finished runs' durations */
    uint64_t busy_ns;     /* the part of total_ns in runs that returned 0 */
    uint64_t average_ns;  /* total_ns / finished, 0 when none */
    uint64_t last_ns;     /* duration of the run that finished last */
    uint64_t reserved[4]; /* written as zero */
} workers_elapsed_stats;

/* clock NULL = CLOCK_MONOTONIC; tests inject theirs. Errors: -ENOMEM. */
WORKERS_API int workers_elapsed_new(workers_elapsed **out,
                                    workers_clock_fn clock, void *clock_arg);
WORKERS_API workers_middleware workers_elapsed_middleware(workers_elapsed *e);
WORKERS_API void workers_elapsed_stats_get(workers_elapsed *e,
                                           workers_elapsed_stats *out);
/* Frees e; no job it wrapped may still exist. NULL is a no-op. */
WORKERS_API void workers_elapsed_free(workers_elapsed *e);

/*
 * Retry: runs the job again, up to `retries` more times, while it fails.
 * Stops at the first success, at WORKERS_ENOTRETRYABLE or WORKERS_EIDLE
 * (returned as is), or when ctx is cancelled; returns the last result.
 * Stateless: the value needs no freeing. Thread-safe.
 */
WORKERS_API workers_middleware workers_retry(unsigned retries);

/*
 * Wait: pauses pause_ns before each run of each worker. If the worker's
 * context is cancelled during the pause the job is not run and the wrapper
 * returns WORKERS_ECANCELED. Stateless. Thread-safe.
 */
WORKERS_API workers_middleware workers_wait(uint64_t pause_ns);

/* ------------------------------------------------------------------ */
/* Autoscaling                                                         */
/* ------------------------------------------------------------------ */

/*
 * The autoscaler sizes a pool to the work there is, from what the runs
 * report. Its middleware times every run of every worker, in slots written
 * by their worker only (as the elapsed middleware does: one clock read per
 * run, no lock): the time in runs that did work (returned 0) is busy; idle
 * runs (WORKERS_EIDLE), failed runs and the time between runs are not.
 * Utilisation is busy time over worker time (workers x wall time) across a
 * window. A run still in progress counts as busy up to now when its
 * worker's previous run did work, so runs longer than a window are seen; a
 * worker's first run, and a run after an idle or failed one, count once
 * they end (a job that blocks waiting for work does not look busy).
 *
 * There is no hidden thread: the program calls workers_autoscale_tick()
 * from its own timer, and the tick decides and calls workers_pool_more()
 * or workers_pool_less(), which removes a worker resting in the pool's idle
 * wait before one inside a run: give an autoscaled pool an idle wait
 * (workers_config.idle_wait_ns), so that a shrink takes a worker that
 * found no work rather than one doing some. It measures in windows that restart
 * at each change of the pool's size, so that each measures one size, and
 * decides:
 * - when a whole quarter window was saturated (utilisation >= (1 + target
 *   + band) / 2: every worker busy, the work may be larger than the pool),
 *   grow at once to ceil(utilisation * workers / target), at most
 *   doubling;
 * - at the end of a window, when utilisation > target + band, grow to the
 *   size that brings it back to target (ceil(busy workers / target));
 * - at the end of a window, shrink by one worker when the pool one worker
 *   smaller would still be under target - band, over the window and over
 *   its last quarter (a burst that began late in the window keeps it), or
 *   when no run in the last quarter did work, at most once per cooldown
 *   (counted from the last change either way, so a burst's growth is not
 *   undone at once);
 * - otherwise hold: on a steady load it settles and stays;
 * - stay within [max(min, 1), max] of the pool's config (max 0: no bound).
 *   It never takes a pool to zero workers, where no run could report that
 *   work came back; a pool someone else took to zero workers or paused
 *   (workers_pool_pause) is left as it is (PAUSED).
 * The band is min(0.1, (1 - target) / 2) above and min(0.1, target / 2)
 * below. Failed runs are not work: a failing job never makes it grow.
 * A size it did not set (another caller's more/less) is taken as the new
 * starting point, measured afresh and not shrunk before a cooldown. To turn
 * autoscaling off, stop calling tick; to turn it on again, call
 * workers_autoscale_set_policy() (which restarts the measurement) and tick
 * again. A gap of more than two windows between ticks restarts it too.
 */
typedef struct workers_autoscale workers_autoscale;

/* The caller fills this; zero means default for every field. As for
 * workers_config: zero the whole struct; `reserved` must stay zero (else
 * -EINVAL), see ABI at the top of this file. */
typedef struct workers_autoscale_policy {
    double target;        /* busy / worker time to hold, in (0, 1); 0.8 */
    uint64_t window_ns;   /* span measured per decision; 10 s */
    uint64_t cooldown_ns; /* least time from a change of size to a
                             downscale; 30 s */
    uint64_t reserved[4]; /* must be zero */
} workers_autoscale_policy;

/* Why a tick decided what it did. */
typedef enum workers_autoscale_reason {
    WORKERS_AUTOSCALE_MEASURING, /* too little measured since the last
                                    change, first tick, or a gap */
    WORKERS_AUTOSCALE_STEADY,    /* within the band: held */
    WORKERS_AUTOSCALE_GROW,      /* above the band: grew */
    WORKERS_AUTOSCALE_SHRINK,    /* below the band: shrank by one */
    WORKERS_AUTOSCALE_COOLDOWN,  /* below the band; the cooldown runs */
    WORKERS_AUTOSCALE_LIMIT,     /* would grow or shrink past a bound */
    WORKERS_AUTOSCALE_EXTERNAL,  /* another caller changed the size */
    WORKERS_AUTOSCALE_PAUSED     /* no worker (paused, closed, unstarted) */
} workers_autoscale_reason;

/* What one tick decided and did. Fields are public, filled by the tick:
 * every one, `reserved` as zero (see ABI at the top of this file). */
typedef struct workers_autoscale_decision {
    int old_count;      /* workers_pool_current() at the tick */
    int wanted;         /* the size decided */
    int new_count;      /* after the tick's more/less (== old: no change) */
    double utilisation; /* busy / worker time over span_ns, in [0, 1] */
    uint64_t span_ns;   /* the span measured (0: nothing yet) */
    double target;      /* the policy's target, for the log line */
    workers_autoscale_reason reason;
    /* The first more/less error (then new_count is what was reached), else
     * 0. WORKERS_EMAX/EMIN: another caller got there first. */
    int err;
    uint64_t reserved[4]; /* written as zero */
} workers_autoscale_decision;

/*
 * Makes an autoscaler. policy may be NULL (all defaults); it is copied.
 * clock is the clock runs are timed with and tick's now_ns is read from:
 * NULL = CLOCK_MONOTONIC in nanoseconds (tests inject theirs). *out is
 * owned by the caller: workers_autoscale_free(). Errors: -EINVAL (target
 * not in (0, 1) or NaN, or a reserved field not zero), -ENOMEM.
 * Thread-safe.
 */
WORKERS_API int workers_autoscale_new(workers_autoscale **out,
                                      const workers_autoscale_policy *policy,
                                      workers_clock_fn clock, void *clock_arg);

/*
 * The middleware that feeds as: give it to ONE pool's
 * workers_pool_new_with_config() (it wraps each worker's job). It measures
 * each job it wraps as one worker: a job wrapped by hand and shared by
 * several workers is counted exactly but measured through the runs of the
 * first thread that runs it only. Its per-run cost is the elapsed
 * middleware's (the same run): one clock read when runs follow each other.
 * as must outlive that pool. Thread-safe.
 */
WORKERS_API workers_middleware
workers_autoscale_middleware(workers_autoscale *as);

/*
 * One decision: measures the runs of pool (the pool as's middleware
 * wraps) up to now_ns (read from as's clock: CLOCK_MONOTONIC unless one
 * was injected), decides as described above and calls workers_pool_more()
 * or workers_pool_less() to apply it. Call it from a timer every quarter
 * window (saturation is checked per quarter window, so a faster timer does
 * not make it act faster, and a slower one makes it slower); it acts only
 * when enough has been measured, and holds otherwise. Fills *out (may be
 * NULL); a program logs the decisions that changed the size or failed
 * (new_count != old_count or err != 0) with workers_autoscale_describe().
 * Returns out->err: 0, or the first more/less error (the size then is what
 * was reached; the next tick goes on from there). Thread-safe (ticks are
 * serialised); it may take as long as the more() calls it makes.
 */
WORKERS_API int workers_autoscale_tick(workers_autoscale *as,
                                       workers_pool *pool, uint64_t now_ns,
                                       workers_autoscale_decision *out);

/*
 * Replaces the policy (a reload; the same policy again restarts the
 * measurement): copied, checked as in new, taking effect at the next tick,
 * which measures afresh. The cooldown's clock is kept. Errors: -EINVAL (as
 * is left unchanged). Thread-safe.
 */
WORKERS_API int
workers_autoscale_set_policy(workers_autoscale *as,
                             const workers_autoscale_policy *policy);

/*
 * Writes a one-line account of d into buf (len bytes, NUL-terminated,
 * truncated to fit), e.g. "4 -> 7 workers (utilisation 0.97 over 10s,
 * target 0.80)" or "5 workers, steady (utilisation 0.78 over 10s, target
 * 0.80)". Returns what snprintf() returns. Thread-safe.
 */
WORKERS_API int workers_autoscale_describe(const workers_autoscale_decision *d,
                                           char *buf, size_t len);

/* Frees as; no job its middleware wrapped may still exist (free the pool
 * first). NULL is a no-op. */
WORKERS_API void workers_autoscale_free(workers_autoscale *as);

#ifdef __cplusplus
}
#endif

#endif /* WORKERS_H */
