/*
 * Tests of the middlewares: counter, elapsed, retry, wait and their order
 * under workers_wrap(). Wrapped jobs are run directly here, from the test
 * thread or from threads the test starts; blocking runs are held on a
 * condition variable, never timed with a sleep. Each test runs in its own
 * forked process (Check), so the file-level fakes start fresh every time.
 */
#include "internal.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define SEC 1000000000ull
#define MS 1000000ull

/* ---- helpers ------------------------------------------------------- */

/* A job that records how often it ran and fails when told to. */
struct scripted {
    int calls;
    int fail_until;  /* calls 1..fail_until return fail_with */
    int fail_with;   /* default WORKERS_EJOB */
    int notretry_at; /* that call returns WORKERS_ENOTRETRYABLE */
    int cancel_at;   /* that call cancels cancel_ctx */
    workers_ctx *cancel_ctx;
    int freed;
};

static int
scripted_run(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    struct scripted *s = arg;
    s->calls++;
    if (s->cancel_at == s->calls)
        workers_ctx_cancel(s->cancel_ctx);
    if (s->notretry_at == s->calls)
        return WORKERS_ENOTRETRYABLE;
    if (s->calls <= s->fail_until)
        return s->fail_with != 0 ? s->fail_with : WORKERS_EJOB;
    return 0;
}

static void
scripted_free(void *arg)
{
    ((struct scripted *)arg)->freed++;
}

static workers_job
scripted_job(struct scripted *s)
{
    workers_job job = {scripted_run, s, scripted_free};
    return job;
}

static workers_ctx *
new_ctx(void)
{
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    return ctx;
}

static void
wrap1(workers_job *job, workers_middleware mw)
{
    ck_assert_int_eq(workers_wrap(job, &mw, 1), 0);
}

static void
run_n(workers_job *job, workers_ctx *ctx, int n)
{
    for (int i = 0; i < n; i++)
        job->fn(ctx, job->arg);
}

static int
empty_run(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    return 0;
}

/* Stores the time of the first run into an _Atomic uint64_t. */
static int
stamp_once_run(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    uint64_t zero = 0;
    atomic_compare_exchange_strong((_Atomic uint64_t *)arg, &zero,
                                   workers__now_ns());
    return 0;
}

static bool
stamped(void *arg)
{
    return atomic_load((_Atomic uint64_t *)arg) != 0;
}

static bool
counter_started(void *arg)
{
    workers_counter_stats st;
    workers_counter_stats_get(arg, &st);
    return st.started != 0;
}

/* ---- counter ------------------------------------------------------- */

/* Runs fail on odd calls; the 10th blocks until released. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    bool inside, release;
};

static int
gate_run(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    struct gate *g = arg;
    pthread_mutex_lock(&g->mu);
    int n = ++g->calls;
    if (n == 10) {
        g->inside = true;
        pthread_cond_broadcast(&g->cv);
        while (!g->release)
            pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    return n % 2 == 1 ? WORKERS_EJOB : 0;
}

struct runner {
    workers_job *job;
    workers_ctx *ctx;
    int result;
};

static void *
run_once_thread(void *arg)
{
    struct runner *r = arg;
    r->result = r->job->fn(r->ctx, r->job->arg);
    return NULL;
}

static void
check_counts(workers_counter *c, uint64_t started, uint64_t finished,
             uint64_t failed, uint64_t running)
{
    workers_counter_stats st;
    workers_counter_stats_get(c, &st);
    ck_assert_uint_eq(st.started, started);
    ck_assert_uint_eq(st.finished, finished);
    ck_assert_uint_eq(st.failed, failed);
    ck_assert_uint_eq(st.running, running);
}

START_TEST(counter_counts_running_run)
{
    workers_counter *c;
    ck_assert_int_eq(workers_counter_new(&c), 0);
    workers_ctx *ctx = new_ctx();
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0,
                     false, false};
    workers_job job = workers_job_func(gate_run, &g);
    wrap1(&job, workers_counter_middleware(c));
    check_counts(c, 0, 0, 0, 0);

    run_n(&job, ctx, 9);
    check_counts(c, 9, 9, 5, 0);

    struct runner r = {&job, ctx, 1};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, run_once_thread, &r), 0);
    pthread_mutex_lock(&g.mu);
    while (!g.inside)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    check_counts(c, 10, 9, 5, 1);

    pthread_mutex_lock(&g.mu);
    g.release = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(r.result, 0);
    check_counts(c, 10, 10, 5, 0);

    workers_job_free(&job);
    workers_ctx_free(ctx);
    workers_counter_free(c);
}
END_TEST

START_TEST(counter_survives_freed_jobs)
{
    workers_counter *c;
    ck_assert_int_eq(workers_counter_new(&c), 0);
    workers_ctx *ctx = new_ctx();
    struct scripted a = {.fail_until = 2}, b = {.fail_until = 1};

    workers_job ja = scripted_job(&a), jb = scripted_job(&b);
    wrap1(&ja, workers_counter_middleware(c));
    wrap1(&jb, workers_counter_middleware(c));
    /* Each wrapped job has its own cache-line slot. */
    ck_assert_ptr_ne(ja.arg, jb.arg);
    ck_assert_uint_eq((uintptr_t)ja.arg % WORKERS__CACHELINE, 0);
    ck_assert_uint_eq((uintptr_t)jb.arg % WORKERS__CACHELINE, 0);

    run_n(&ja, ctx, 5);
    run_n(&jb, ctx, 3);
    check_counts(c, 8, 8, 3, 0);

    workers_job_free(&ja);
    ck_assert_int_eq(a.freed, 1); /* the inner job is freed with it */
    ck_assert(ja.fn == NULL);
    check_counts(c, 8, 8, 3, 0);

    run_n(&jb, ctx, 2);
    check_counts(c, 10, 10, 3, 0);

    workers_job_free(&jb);
    ck_assert_int_eq(b.freed, 1);
    check_counts(c, 10, 10, 3, 0);

    /* A new job after all others left adds to the retired totals. */
    struct scripted d = {.fail_until = 1};
    workers_job jd = scripted_job(&d);
    wrap1(&jd, workers_counter_middleware(c));
    run_n(&jd, ctx, 1);
    check_counts(c, 11, 11, 4, 0);
    workers_job_free(&jd);

    workers_ctx_free(ctx);
    workers_counter_free(c);
}
END_TEST

/* ---- elapsed ------------------------------------------------------- */

/* A fake clock: runs advance it, every read is counted. Atomic so that the
 * pool test may share it between workers. */
static _Atomic uint64_t fake_now = 1000 * SEC;
static _Atomic uint64_t fake_reads;

static uint64_t
fake_clock(void *arg)
{
    ck_assert_ptr_eq(arg, &fake_now);
    atomic_fetch_add(&fake_reads, 1);
    return atomic_load(&fake_now);
}

/* Run i advances the fake clock by i seconds. */
static int
advancing_run(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    int *i = arg;
    ++*i;
    atomic_fetch_add(&fake_now, (uint64_t)*i * SEC);
    return 0;
}

static workers_elapsed *
new_fake_elapsed(void)
{
    workers_elapsed *e;
    atomic_store(&fake_now, 1000 * SEC); /* also right under CK_FORK=no */
    atomic_store(&fake_reads, 0);
    ck_assert_int_eq(workers_elapsed_new(&e, fake_clock, &fake_now), 0);
    return e;
}

START_TEST(elapsed_fake_clock)
{
    workers_elapsed *e = new_fake_elapsed();
    workers_ctx *ctx = new_ctx();
    int i = 0;
    workers_job job = workers_job_func(advancing_run, &i);
    wrap1(&job, workers_elapsed_middleware(e));

    workers_elapsed_stats st;
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_eq(st.counts.started, 0);
    ck_assert_uint_eq(st.total_ns, 0);
    ck_assert_uint_eq(st.average_ns, 0);
    ck_assert_uint_eq(st.last_ns, 0);

    run_n(&job, ctx, 10);
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_eq(st.counts.started, 10);
    ck_assert_uint_eq(st.counts.finished, 10);
    ck_assert_uint_eq(st.counts.failed, 0);
    ck_assert_uint_eq(st.counts.running, 0);
    ck_assert_uint_eq(st.total_ns, 55 * SEC);
    ck_assert_uint_eq(st.average_ns, 5500 * MS);
    ck_assert_uint_eq(st.last_ns, 10 * SEC);

    /* The stats survive the job, last included. */
    workers_job_free(&job);
    workers_elapsed_stats st2;
    workers_elapsed_stats_get(e, &st2);
    ck_assert_mem_eq(&st, &st2, sizeof(st));

    workers_ctx_free(ctx);
    workers_elapsed_free(e);
}
END_TEST

START_TEST(elapsed_one_clock_read_per_run)
{
    workers_elapsed *e = new_fake_elapsed();
    workers_ctx *ctx = new_ctx();
    int i = 0;
    workers_job job = workers_job_func(advancing_run, &i);
    wrap1(&job, workers_elapsed_middleware(e));

    /* Consecutive runs: one read at the first start, then one per end. */
    run_n(&job, ctx, 1000);
    ck_assert_uint_eq(atomic_load(&fake_reads), 1001);

    /* Time that passes between runs with no ctx wait counts into the next
     * run (the previous end is its start): 1001 s of run + 7 s. */
    atomic_fetch_add(&fake_now, 7 * SEC);
    job.fn(ctx, job.arg);
    ck_assert_uint_eq(atomic_load(&fake_reads), 1002);
    workers_elapsed_stats st;
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_eq(st.last_ns, 1008 * SEC);

    /* A ctx wait between runs forces a fresh start read, so the time spent
     * waiting (100 s on the fake clock) is not counted. */
    ck_assert_int_eq(workers_ctx_wait(ctx, 1), 0);
    atomic_fetch_add(&fake_now, 100 * SEC);
    job.fn(ctx, job.arg);
    ck_assert_uint_eq(atomic_load(&fake_reads), 1004);
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_eq(st.last_ns, 1002 * SEC);

    /* A run in another context does not chain onto this one's end. */
    workers_ctx *other = new_ctx();
    job.fn(other, job.arg);
    ck_assert_uint_eq(atomic_load(&fake_reads), 1006);
    job.fn(other, job.arg);
    ck_assert_uint_eq(atomic_load(&fake_reads), 1007);

    /* 1 + 2 + ... + 1004 seconds of runs, plus the 7 s between runs. */
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_eq(st.counts.finished, 1004);
    ck_assert_uint_eq(st.total_ns, (1004ull * 1005 / 2 + 7) * SEC);

    workers_job_free(&job);
    workers_ctx_free(other);
    workers_ctx_free(ctx);
    workers_elapsed_free(e);
}
END_TEST

/* A wait outside elapsed: every run is preceded by a ctx wait, so every run
 * reads the clock twice and the pause never counts. */
START_TEST(elapsed_inside_wait)
{
    workers_elapsed *e = new_fake_elapsed();
    workers_ctx *ctx = new_ctx();
    int i = 0;
    workers_job job = workers_job_func(advancing_run, &i);
    workers_middleware mws[] = {workers_elapsed_middleware(e), workers_wait(1)};
    ck_assert_int_eq(workers_wrap(&job, mws, 2), 0);
    for (int n = 0; n < 4; n++) {
        ck_assert_int_eq(job.fn(ctx, job.arg), 0);
        atomic_fetch_add(&fake_now, 50 * SEC); /* between runs */
    }
    ck_assert_uint_eq(atomic_load(&fake_reads), 8);
    workers_elapsed_stats st;
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_eq(st.total_ns, 10 * SEC);
    ck_assert_uint_eq(st.last_ns, 4 * SEC);
    workers_job_free(&job);
    workers_ctx_free(ctx);
    workers_elapsed_free(e);
}
END_TEST

/* last is the duration of the run that ended last, whichever slot ran it,
 * live or freed; and two jobs run in turn on one context each time their
 * own durations, not the other's. */
START_TEST(elapsed_last_across_jobs)
{
    workers_elapsed *e = new_fake_elapsed();
    workers_ctx *ctx = new_ctx();
    int ia = 0, ib = 4;
    workers_job ja = workers_job_func(advancing_run, &ia);
    workers_job jb = workers_job_func(advancing_run, &ib);
    wrap1(&ja, workers_elapsed_middleware(e));
    wrap1(&jb, workers_elapsed_middleware(e));
    workers_elapsed_stats st;

    ja.fn(ctx, ja.arg); /* 1 s */
    jb.fn(ctx, jb.arg); /* 5 s */
    ja.fn(ctx, ja.arg); /* 2 s */
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_eq(st.last_ns, 2 * SEC);

    jb.fn(ctx, jb.arg); /* 6 s */
    workers_job_free(&jb);
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_eq(st.last_ns, 6 * SEC);

    ja.fn(ctx, ja.arg); /* 3 s: a live slot ends after the freed one */
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_eq(st.last_ns, 3 * SEC);
    ck_assert_uint_eq(st.total_ns, 17 * SEC);
    ck_assert_uint_eq(st.counts.finished, 5);
    /* Interleaved on one context, no run chains onto the other job's end:
     * two reads per run. */
    ck_assert_uint_eq(atomic_load(&fake_reads), 10);

    workers_job_free(&ja);
    workers_ctx_free(ctx);
    workers_elapsed_free(e);
}
END_TEST

/* The default clock is CLOCK_MONOTONIC: a run that waits 20 ms lasts at
 * least that. */
static int
sleepy_run(workers_ctx *ctx, void *arg)
{
    (void)arg;
    (void)ctx;
    tu_sleep_ms(20);
    return 0;
}

START_TEST(elapsed_default_clock)
{
    workers_elapsed *e;
    ck_assert_int_eq(workers_elapsed_new(&e, NULL, NULL), 0);
    workers_ctx *ctx = new_ctx();
    workers_job job = workers_job_func(sleepy_run, NULL);
    wrap1(&job, workers_elapsed_middleware(e));
    uint64_t t0 = workers__now_ns();
    run_n(&job, ctx, 2);
    uint64_t t1 = workers__now_ns();
    workers_elapsed_stats st;
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_ge(st.total_ns, 40 * MS);
    ck_assert_uint_le(st.total_ns, t1 - t0);
    ck_assert_uint_ge(st.last_ns, 20 * MS);
    ck_assert_uint_eq(st.average_ns, st.total_ns / 2);
    workers_job_free(&job);
    workers_ctx_free(ctx);
    workers_elapsed_free(e);
}
END_TEST

/* ---- retry --------------------------------------------------------- */

static const struct retry_case {
    const char *name;
    unsigned retries;
    struct scripted job;
    int calls;
    int result;
} retry_cases[] = {
    {"always fails: exhausted",
     3,
     {.fail_until = 1000, .fail_with = -5},
     4,
     -5},
    {"first-try success", 3, {.fail_until = 0}, 1, 0},
    {"success on the last retry", 3, {.fail_until = 3}, 4, 0},
    {"not retryable on the 2nd call",
     3,
     {.fail_until = 1000, .notretry_at = 2},
     2,
     WORKERS_ENOTRETRYABLE},
    {"not retryable on the 1st call",
     3,
     {.notretry_at = 1},
     1,
     WORKERS_ENOTRETRYABLE},
    {"no retries", 0, {.fail_until = 1000}, 1, WORKERS_EJOB},
    {"cancelled on the 2nd call",
     10,
     {.fail_until = 1000, .cancel_at = 2},
     2,
     WORKERS_EJOB},
};

START_TEST(retry_table)
{
    const struct retry_case *tc = &retry_cases[_i];
    workers_ctx *ctx = new_ctx();
    struct scripted s = tc->job;
    s.cancel_ctx = ctx;
    workers_job job = scripted_job(&s);
    wrap1(&job, workers_retry(tc->retries));
    int result = job.fn(ctx, job.arg);
    ck_assert_msg(s.calls == tc->calls, "%s: %d calls, want %d", tc->name,
                  s.calls, tc->calls);
    ck_assert_msg(result == tc->result, "%s: result %d, want %d", tc->name,
                  result, tc->result);
    workers_job_free(&job);
    ck_assert_int_eq(s.freed, 1);
    workers_ctx_free(ctx);
}
END_TEST

START_TEST(retry_cancelled_ctx_runs_once)
{
    workers_ctx *ctx = new_ctx();
    workers_ctx_cancel(ctx);
    struct scripted s = {.fail_until = 1000};
    workers_job job = scripted_job(&s);
    wrap1(&job, workers_retry(5));
    ck_assert_int_eq(job.fn(ctx, job.arg), WORKERS_EJOB);
    ck_assert_int_eq(s.calls, 1);
    /* The wrapper has no state between runs: the next run retries again. */
    workers_ctx *live = new_ctx();
    ck_assert_int_eq(job.fn(live, job.arg), WORKERS_EJOB);
    ck_assert_int_eq(s.calls, 7);
    workers_job_free(&job);
    workers_ctx_free(live);
    workers_ctx_free(ctx);
}
END_TEST

/* ---- wait ---------------------------------------------------------- */

static int
stamp_run(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    *(uint64_t *)arg = workers__now_ns();
    return 0;
}

START_TEST(wait_delays_each_run)
{
    workers_ctx *ctx = new_ctx();
    uint64_t ran = 0;
    workers_job job = workers_job_func(stamp_run, &ran);
    wrap1(&job, workers_wait(50 * MS));
    for (int n = 0; n < 2; n++) {
        uint64_t t0 = workers__now_ns();
        ck_assert_int_eq(job.fn(ctx, job.arg), 0);
        ck_assert_uint_ge(ran - t0, 50 * MS);
        ck_assert_uint_le(ran - t0, 50 * MS + 5 * SEC);
    }
    workers_job_free(&job);
    workers_ctx_free(ctx);
}
END_TEST

static bool
waits_moved(void *arg)
{
    return atomic_load(&((workers_ctx *)arg)->waits) != 0;
}

START_TEST(wait_cancelled_during_pause)
{
    workers_ctx *ctx = new_ctx();
    struct scripted s = {0};
    workers_job job = scripted_job(&s);
    wrap1(&job, workers_wait(3600 * SEC));

    struct runner r = {&job, ctx, 1};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, run_once_thread, &r), 0);
    /* The wrapper is inside its pause once it has called workers_ctx_wait. */
    ck_assert(tu_wait_until(waits_moved, ctx, TU_DEADLINE_MS));
    uint64_t t0 = tu_now_ms();
    workers_ctx_cancel(ctx);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_uint_lt(tu_now_ms() - t0, TU_DEADLINE_MS);
    ck_assert_int_eq(r.result, WORKERS_ECANCELED);
    ck_assert_int_eq(s.calls, 0);

    /* Already cancelled: the job is not run either. */
    ck_assert_int_eq(job.fn(ctx, job.arg), WORKERS_ECANCELED);
    ck_assert_int_eq(s.calls, 0);
    workers_job_free(&job);
    ck_assert_int_eq(s.freed, 1);
    workers_ctx_free(ctx);
}
END_TEST

/* ---- order under workers_wrap -------------------------------------- */

/* The last middleware given is outermost: a counter given after retry
 * counts one run per retry loop; given before, it counts every attempt. */
START_TEST(wrap_order)
{
    workers_counter *outer, *inner;
    ck_assert_int_eq(workers_counter_new(&outer), 0);
    ck_assert_int_eq(workers_counter_new(&inner), 0);
    workers_ctx *ctx = new_ctx();
    struct scripted s = {.fail_until = 1000};
    workers_job job = scripted_job(&s);
    workers_middleware mws[] = {workers_counter_middleware(inner),
                                workers_retry(2),
                                workers_counter_middleware(outer)};
    ck_assert_int_eq(workers_wrap(&job, mws, 3), 0);
    ck_assert_int_eq(job.fn(ctx, job.arg), WORKERS_EJOB);
    ck_assert_int_eq(job.fn(ctx, job.arg), WORKERS_EJOB);
    ck_assert_int_eq(s.calls, 6);
    check_counts(inner, 6, 6, 6, 0);
    check_counts(outer, 2, 2, 2, 0);

    /* Freeing the outermost wrapper frees the whole chain once. */
    workers_job_free(&job);
    ck_assert_int_eq(s.freed, 1);
    check_counts(inner, 6, 6, 6, 0);
    check_counts(outer, 2, 2, 2, 0);
    workers_ctx_free(ctx);
    workers_counter_free(outer);
    workers_counter_free(inner);
}
END_TEST

/* ---- through a pool ------------------------------------------------ */

/* Each worker's job (from a builder) counts its own runs in its own
 * element; every third run of a worker fails. */
struct farm {
    struct {
        int runs;
        char pad[WORKERS__CACHELINE - sizeof(int)];
    } w[16];
    int built; /* only the builder touches it: never called concurrently */
};

static int
farm_run(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    int *runs = arg;
    ++*runs;
    return *runs % 3 == 0 ? WORKERS_EJOB : 0;
}

static int
farm_new_job(void *arg, workers_job *out)
{
    struct farm *f = arg;
    if (f->built == 16)
        return -ENOSPC;
    *out = workers_job_func(farm_run, &f->w[f->built++].runs);
    return 0;
}

struct progress {
    workers_counter *c;
    workers_elapsed *e;
    uint64_t at_least;
};

static bool
progressed(void *arg)
{
    struct progress *p = arg;
    uint64_t finished;
    if (p->c != NULL) {
        workers_counter_stats st;
        workers_counter_stats_get(p->c, &st);
        ck_assert_uint_le(st.failed, st.finished);
        ck_assert_uint_le(st.finished, st.started);
        ck_assert_uint_le(st.running, 4);
        finished = st.finished;
    } else {
        workers_elapsed_stats st;
        workers_elapsed_stats_get(p->e, &st);
        finished = st.counts.finished;
    }
    return finished >= p->at_least;
}

START_TEST(counter_through_pool)
{
    workers_counter *c;
    ck_assert_int_eq(workers_counter_new(&c), 0);
    workers_middleware mw = workers_counter_middleware(c);
    workers_config cfg = {.initial = 4};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, &mw, 1), 0);
    static struct farm f; /* outlives the pool; zeroed per forked test */
    workers_builder b = workers_builder_func(farm_new_job, &f);
    ck_assert_int_eq(workers_pool_start_with_builder(pool, &b), 0);

    struct progress p = {c, NULL, 20000};
    ck_assert(tu_wait_until(progressed, &p, TU_DEADLINE_MS));
    /* Workers leave and join while counting: the leavers' counts stay. */
    ck_assert_int_eq(workers_pool_less(pool), 0);
    ck_assert_int_eq(workers_pool_less(pool), 0);
    p.at_least *= 2;
    ck_assert(tu_wait_until(progressed, &p, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_more(pool), 0);
    p.at_least *= 2;
    ck_assert(tu_wait_until(progressed, &p, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    workers_pool_free(pool);

    ck_assert_int_eq(f.built, 5);
    uint64_t runs = 0, fails = 0;
    for (int i = 0; i < f.built; i++) {
        runs += (uint64_t)f.w[i].runs;
        fails += (uint64_t)(f.w[i].runs / 3);
    }
    check_counts(c, runs, runs, fails, 0);
    workers_counter_free(c);
}
END_TEST

/* Issue 13, item 2: Go's own pattern, start(wrap(job, counter)), shares one
 * wrapped job between every worker, and each run still counts exactly, in
 * a counter and an elapsed alike. The job counts each worker's runs in that
 * worker's own line; every third run of a worker fails. The test waits
 * until all four workers have run many times, so that their runs overlap.
 * The clock ticks once per read, so every timed run lasts at least one. */
struct shared_runs {
    struct {
        _Alignas(WORKERS__CACHELINE) _Atomic uint64_t n;
    } w[5];
    bool idle; /* every third run but one finds no work, too */
};

static int
shared_run(workers_ctx *ctx, void *arg)
{
    struct shared_runs *r = arg;
    _Atomic uint64_t *n = &r->w[workers_ctx_worker_id(ctx)].n;
    uint64_t runs = atomic_load_explicit(n, memory_order_relaxed) + 1;
    atomic_store_explicit(n, runs, memory_order_relaxed);
    if (runs % 3 == 0)
        return WORKERS_EJOB;
    return r->idle && runs % 3 == 1 ? WORKERS_EIDLE : 0;
}

static bool
shared_ran(void *arg)
{
    struct shared_runs *r = arg;
    for (int id = 1; id <= 4; id++)
        if (atomic_load(&r->w[id].n) < 20000)
            return false;
    return true;
}

static uint64_t
tick_clock(void *arg)
{
    return atomic_fetch_add((_Atomic uint64_t *)arg, 1) + 1;
}

START_TEST(counter_shared_job_exact)
{
    static _Atomic uint64_t ticks;
    workers_counter *c;
    workers_elapsed *e;
    ck_assert_int_eq(workers_counter_new(&c), 0);
    ck_assert_int_eq(workers_elapsed_new(&e, tick_clock, &ticks), 0);
    workers_middleware mws[] = {workers_counter_middleware(c),
                                workers_elapsed_middleware(e)};
    static struct shared_runs r; /* fresh per forked test */
    workers_job job = workers_job_func(shared_run, &r);
    ck_assert_int_eq(workers_wrap(&job, mws, 2), 0);
    workers_config cfg = {.initial = 4};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, NULL, 0), 0);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    ck_assert(tu_wait_until(shared_ran, &r, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);

    uint64_t runs = 0, fails = 0;
    for (int id = 1; id <= 4; id++) {
        runs += atomic_load(&r.w[id].n);
        fails += atomic_load(&r.w[id].n) / 3;
    }
    check_counts(c, runs, runs, fails, 0);
    workers_pool_free(pool); /* frees the wrapped job: the counts stay */
    check_counts(c, runs, runs, fails, 0);
    workers_elapsed_stats st;
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_eq(st.counts.started, runs);
    ck_assert_uint_eq(st.counts.finished, runs);
    ck_assert_uint_eq(st.counts.failed, fails);
    ck_assert_uint_ge(st.total_ns, runs);
    ck_assert_uint_ge(st.last_ns, 1);
    workers_elapsed_free(e);
    workers_counter_free(c);
}
END_TEST

/* The same shared job, with idle runs as well: idle is counted apart from
 * failed and busy time only from the runs that returned 0, exactly, in the
 * owner's counts and the others' alike. The clock is each thread's own
 * count of reads, so that every timed run lasts exactly 1: an owner's run
 * reads it once (its start is its previous end), another thread's twice. */
static _Thread_local uint64_t thread_reads;

static uint64_t
thread_clock(void *arg)
{
    (void)arg;
    return ++thread_reads;
}

START_TEST(elapsed_shared_job_idle_busy_exact)
{
    workers_counter *c;
    workers_elapsed *e;
    ck_assert_int_eq(workers_counter_new(&c), 0);
    ck_assert_int_eq(workers_elapsed_new(&e, thread_clock, NULL), 0);
    workers_middleware mws[] = {workers_counter_middleware(c),
                                workers_elapsed_middleware(e)};
    static struct shared_runs r = {.idle = true}; /* fresh per forked test */
    workers_job job = workers_job_func(shared_run, &r);
    ck_assert_int_eq(workers_wrap(&job, mws, 2), 0);
    workers_config cfg = {.initial = 4};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, NULL, 0), 0);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    ck_assert(tu_wait_until(shared_ran, &r, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    workers_pool_free(pool);

    uint64_t runs = 0, fails = 0, idles = 0;
    for (int id = 1; id <= 4; id++) {
        uint64_t n = atomic_load(&r.w[id].n);
        runs += n;
        fails += n / 3;
        idles += (n + 2) / 3;
    }
    workers_counter_stats cs;
    workers_counter_stats_get(c, &cs);
    ck_assert_uint_eq(cs.finished, runs);
    ck_assert_uint_eq(cs.failed, fails);
    ck_assert_uint_eq(cs.idle, idles);
    workers_elapsed_stats st;
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_eq(st.counts.started, runs);
    ck_assert_uint_eq(st.counts.finished, runs);
    ck_assert_uint_eq(st.counts.failed, fails);
    ck_assert_uint_eq(st.counts.idle, idles);
    ck_assert_uint_eq(st.total_ns, runs);
    ck_assert_uint_eq(st.busy_ns, runs - fails - idles);
    workers_elapsed_free(e);
    workers_counter_free(c);
}
END_TEST

static int
doze_run(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    tu_sleep_ms(1); /* a run that lasts, not a synchronisation */
    return 0;
}

START_TEST(elapsed_through_pool)
{
    workers_elapsed *e;
    ck_assert_int_eq(workers_elapsed_new(&e, NULL, NULL), 0);
    workers_middleware mw = workers_elapsed_middleware(e);
    workers_config cfg = {.initial = 2};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, &mw, 1), 0);
    uint64_t t0 = workers__now_ns();
    workers_job job = workers_job_func(doze_run, NULL);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    struct progress p = {NULL, e, 20};
    ck_assert(tu_wait_until(progressed, &p, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    uint64_t wall = workers__now_ns() - t0;
    workers_pool_free(pool);

    workers_elapsed_stats st;
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_ge(st.counts.finished, 20);
    ck_assert_uint_eq(st.counts.started, st.counts.finished);
    ck_assert_uint_eq(st.counts.failed, 0);
    ck_assert_uint_ge(st.total_ns, st.counts.finished * MS);
    ck_assert_uint_le(st.total_ns, 2 * wall);
    ck_assert_uint_ge(st.average_ns, MS);
    ck_assert_uint_ge(st.last_ns, MS);
    workers_elapsed_free(e);
}
END_TEST

/* With the wait middleware outside elapsed in a pool, the pauses are not
 * counted: empty runs total far less than the pauses between them. */
START_TEST(elapsed_excludes_wait_in_pool)
{
    workers_elapsed *e;
    ck_assert_int_eq(workers_elapsed_new(&e, NULL, NULL), 0);
    workers_middleware mws[] = {workers_elapsed_middleware(e),
                                workers_wait(20 * MS)};
    workers_config cfg = {.initial = 2};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, mws, 2), 0);
    workers_job job = workers_job_func(empty_run, NULL);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    struct progress p = {NULL, e, 20};
    ck_assert(tu_wait_until(progressed, &p, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    workers_pool_free(pool);

    workers_elapsed_stats st;
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_ge(st.counts.finished, 20);
    /* Counted pauses would make it at least finished * 20 ms; half that
     * leaves room for a loaded machine's preemptions inside empty runs. */
    ck_assert_uint_lt(st.total_ns, st.counts.finished * 10 * MS);
    workers_elapsed_free(e);
}
END_TEST

/* In a pool, wait delays each worker's first run by about d; a pool closed
 * while its workers pause never runs the job. */
START_TEST(wait_in_pool)
{
    workers_middleware mw = workers_wait(50 * MS);
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new(&pool, &mw, 1), 0);
    _Atomic uint64_t first = 0;
    workers_job job = workers_job_func(stamp_once_run, &first);
    uint64_t t0 = workers__now_ns();
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    ck_assert(tu_wait_until(stamped, &first, TU_DEADLINE_MS));
    ck_assert_uint_ge(atomic_load(&first) - t0, 50 * MS);
    ck_assert_uint_le(atomic_load(&first) - t0, 50 * MS + 5 * SEC);
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    workers_pool_free(pool);

    /* A counter outside the wait shows the worker inside its pause (the
     * run started, the job has not been called); close then cancels it. */
    workers_counter *c;
    ck_assert_int_eq(workers_counter_new(&c), 0);
    workers_middleware mws[] = {workers_wait(3600 * SEC),
                                workers_counter_middleware(c)};
    ck_assert_int_eq(workers_pool_new(&pool, mws, 2), 0);
    struct scripted s = {0};
    job = scripted_job(&s);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    ck_assert(tu_wait_until(counter_started, c, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_close_timeout(pool, 5 * SEC), 0);
    workers_pool_free(pool);
    ck_assert_int_eq(s.calls, 0);
    ck_assert_int_eq(s.freed, 1);
    check_counts(c, 1, 1, 1, 0); /* the wrapper returned WORKERS_ECANCELED */
    workers_counter_free(c);
}
END_TEST

/* ---- suite --------------------------------------------------------- */

Suite *make_middleware_suite(void);

Suite *
make_middleware_suite(void)
{
    Suite *s = suite_create("middleware");
    TCase *tc;

    tc = tcase_create("counter");
    tcase_add_test(tc, counter_counts_running_run);
    tcase_add_test(tc, counter_survives_freed_jobs);
    suite_add_tcase(s, tc);

    tc = tcase_create("elapsed");
    tcase_add_test(tc, elapsed_fake_clock);
    tcase_add_test(tc, elapsed_one_clock_read_per_run);
    tcase_add_test(tc, elapsed_inside_wait);
    tcase_add_test(tc, elapsed_last_across_jobs);
    tcase_add_test(tc, elapsed_default_clock);
    suite_add_tcase(s, tc);

    tc = tcase_create("retry");
    tcase_add_loop_test(tc, retry_table, 0,
                        (int)(sizeof(retry_cases) / sizeof(retry_cases[0])));
    tcase_add_test(tc, retry_cancelled_ctx_runs_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("wait");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, wait_delays_each_run);
    tcase_add_test(tc, wait_cancelled_during_pause);
    suite_add_tcase(s, tc);

    tc = tcase_create("wrap");
    tcase_add_test(tc, wrap_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("pool");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, counter_through_pool);
    tcase_add_test(tc, counter_shared_job_exact);
    tcase_add_test(tc, elapsed_shared_job_idle_busy_exact);
    tcase_add_test(tc, elapsed_through_pool);
    tcase_add_test(tc, elapsed_excludes_wait_in_pool);
    tcase_add_test(tc, wait_in_pool);
    suite_add_tcase(s, tc);

    return s;
}
