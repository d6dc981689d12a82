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
 * - Middlewares wrap each worker's job (counter, elapsed, retry, wait, or
 *   your own).
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
 */
#ifndef WORKERS_H
#define WORKERS_H

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

#define WORKERS_VERSION_MAJOR 1
#define WORKERS_VERSION_MINOR 0
#define WORKERS_VERSION_PATCH 0
#define WORKERS_VERSION_STRING "1.0.0"

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
    XX(EJOB, -4012, "job failed")

enum workers_errno {
#define WORKERS__ERR_ENUM(name, val, msg) WORKERS_##name = (val),
    WORKERS_ERRNO_MAP(WORKERS__ERR_ENUM)
#undef WORKERS__ERR_ENUM
};

/*
 * A static, human-readable message for err: the library's codes, negated
 * errno values, and "unknown error" for anything else (positive job codes
 * included). Never NULL. Thread-safe and async-signal-safe.
 */
WORKERS_API const char *workers_strerror(int err);

/* The symbolic name ("WORKERS_ECLOSED", "ENOMEM", "UNKNOWN"). Never NULL.
 * Thread-safe and async-signal-safe. */
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
 * reuses the removed worker's number once that worker's run has returned.
 * 0 for contexts made by workers_ctx_new(); the worker's number for those
 * made by workers_ctx_new_for(). Thread-safe.
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
 * that stops early because ctx was cancelled should return WORKERS_ECANCELED,
 * which never counts as an error for stop_on_errors. Jobs should honour
 * cancellation as soon as they can: close waits for the runs in progress.
 */
typedef int (*workers_job_fn)(workers_ctx *ctx, void *arg);

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
 * called with arg when the pool that took the builder is freed.
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
 * The caller fills this; zero means default for every field.
 */
typedef struct workers_config {
    int min;     /* >= 0; default 0: the pool may pause with no worker */
    int max;     /* 0 = unlimited, else >= min and >= initial */
    int initial; /* 0 = max(1, min); else min <= initial (<= max) */
    bool stop_on_errors; /* the first job error stops the whole pool */
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
} workers_config;

#define WORKERS_PARK_TIMEOUT_DEFAULT_NS UINT64_C(10000000000)

typedef struct workers_pool workers_pool;

/*
 * Checks cfg (NULL = all defaults) without making a pool: 0, or
 * WORKERS_EINVALMIN (min < 0), WORKERS_EINVALMAX (max != 0 && max < min),
 * WORKERS_EINVALINITIAL (initial != 0 and initial < min, or max != 0 and
 * initial > max). Every park_timeout_ns is valid. Thread-safe.
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
 * Starts `initial` workers running job (clamped into the limits in force
 * if workers_pool_set_limits() changed them): returns once each has a
 * thread (created or woken); their first runs may begin after it returns.
 * The pool takes ownership of *job: every worker shares its arg (so the job
 * must be thread-safe), and job->free(job->arg) is called by
 * workers_pool_free(), after every worker has stopped; also when start
 * fails. Errors: WORKERS_ECLOSED, WORKERS_ESTARTED, -EAGAIN/-ENOMEM (no
 * thread could be made: the workers already started are stopped again and
 * the pool is closed). Thread-safe.
 */
WORKERS_API int workers_pool_start(workers_pool *pool, const workers_job *job);

/*
 * As workers_pool_start(), with a builder called once per worker (see
 * workers_builder). The pool takes ownership of *builder (its free is called
 * by workers_pool_free(), or at once when start fails with ECLOSED or
 * ESTARTED). A builder error is returned as it is, and then the pool is
 * closed as for a thread error. Thread-safe.
 */
WORKERS_API int workers_pool_start_with_builder(workers_pool *pool,
                                                const workers_builder *builder);

/*
 * Go's Run: starts the pool, blocks until ctx is cancelled or the pool stops
 * itself (stop_on_errors), then closes it without a deadline and returns
 * what that close returns: 0, or the job error that stopped the pool. Also
 * returns the start errors (WORKERS_ECLOSED for a closed pool). ctx is
 * borrowed: it must outlive the call. Thread-safe.
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
 * a worker resting between two runs (the pool is paused) if there is one,
 * the most recently rested first; else the most recently added worker.
 * (A worker between two runs that does not rest is between them for
 * nanoseconds and is not told apart.) Cancels its context and returns at
 * once, without waiting for its run in progress (close waits for it).
 * Errors: WORKERS_ECLOSED (also once stop_on_errors stopped the pool),
 * WORKERS_ENOTSTARTED, WORKERS_EMIN (current == min). Thread-safe.
 */
WORKERS_API int workers_pool_less(workers_pool *pool);

/* The number of workers not removed (0 before start and after close).
 * Thread-safe. */
WORKERS_API int workers_pool_current(workers_pool *pool);

/*
 * Go's Close(ctx). The first call marks the pool closed, cancels every
 * worker (a paused pool's too: resting workers end without another run)
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
 * Closing a pool never started succeeds and start then fails with
 * WORKERS_ECLOSED. After ECANCELED or ETIMEDOUT the workers still finish in
 * the background; workers_pool_wait() or workers_pool_free() waits for them.
 * A job must never close its own pool synchronously: close waits for every
 * run, the calling one's too, so from a job it returns only at its
 * deadline, or never. To end its pool, a job returns an error under
 * stop_on_errors, or asks another thread to close. Thread-safe.
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
 * pool not paused does nothing. Errors: WORKERS_ECLOSED (also once
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

/* A snapshot of a pool, taken at once (workers_pool_status_get()). */
typedef struct workers_pool_status {
    int current;  /* workers not removed, as workers_pool_current() */
    int min, max; /* the limits in force; max 0 = unlimited */
    bool paused;  /* between workers_pool_pause() and _resume() */
    int resting;  /* workers paused between two runs (<= current) */
    int threads;  /* threads alive: working, resting, finishing, or parked
                     for reuse (until their park timeout) */
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
 * Counter: how many runs started, finished and failed, and how many are
 * running. Each wrapped job counts in its own cache line, written only by
 * its worker without lock or atomic read-modify-write; a read sums them.
 * So a job wrapped by a counter (or an elapsed) must not run concurrently
 * with itself: give the middleware to the pool (it wraps each worker's job)
 * or wrap inside a builder, rather than wrapping one job that
 * workers_pool_start() then shares (concurrent runs would lose counts).
 * Counts survive the jobs: a freed job's are kept in the totals.
 * The counter must outlive every job it wrapped (free pools first).
 */
typedef struct workers_counter workers_counter;

typedef struct workers_counter_stats {
    uint64_t started;
    uint64_t finished; /* failed runs included */
    uint64_t failed;   /* finished with a result other than 0 */
    uint64_t running;  /* started - finished */
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
 * worker (no ctx wait in between), the previous end is its start.
 * Time spent by outer middlewares between two runs without a ctx wait
 * counts into the next run.
 */
typedef struct workers_elapsed workers_elapsed;

/* A clock in nanoseconds; monotonic. arg is the clock_arg given. */
typedef uint64_t (*workers_clock_fn)(void *arg);

typedef struct workers_elapsed_stats {
    workers_counter_stats counts;
    uint64_t total_ns;   /* sum of finished runs' durations */
    uint64_t average_ns; /* total_ns / finished, 0 when none */
    uint64_t last_ns;    /* duration of the run that finished last */
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
 * Stops at the first success, at WORKERS_ENOTRETRYABLE (returned as is), or
 * when ctx is cancelled; returns the last result. Stateless: the value
 * needs no freeing. Thread-safe.
 */
WORKERS_API workers_middleware workers_retry(unsigned retries);

/*
 * Wait: pauses pause_ns before each run of each worker. If the worker's
 * context is cancelled during the pause the job is not run and the wrapper
 * returns WORKERS_ECANCELED. Stateless. Thread-safe.
 */
WORKERS_API workers_middleware workers_wait(uint64_t pause_ns);

#ifdef __cplusplus
}
#endif

#endif /* WORKERS_H */
