/*
 * Tests of the autoscaler's measurement and of the autoscaler on a pool.
 *
 * - stream: the middleware's accounting on an injected clock, each worker
 *   on a timeline of its own, runs made by hand on the test thread: busy,
 *   idle and failed time, runs in progress, and all-failing and all-idle
 *   streams fed through the real sample and decision.
 * - pool: a real pool and real ticks at explicit fake times, with a job
 *   held on a gate (busy) or finding nothing (idle): no timing assumption,
 *   the test moves the clock and waits for the workers on a condition
 *   variable.
 */
#include "internal.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#define SEC 1000000000ull
#define MS 1000000ull
#define W (10 * SEC)  /* the default window */
#define CD (30 * SEC) /* the default cooldown */

/* ---- stream: the middleware's accounting on a fake clock ---------------- */

/*
 * Each simulated worker has its own timeline: before a run the test sets
 * the clock to that worker's time, and the job moves it on by the run's
 * length. So runs of different workers overlap in fake time although the
 * test thread makes them one after the other.
 */
static uint64_t fake_now;

static uint64_t
fake_clock(void *arg)
{
    (void)arg;
    return __atomic_load_n(&fake_now, __ATOMIC_RELAXED);
}

static void
set_clock(uint64_t t)
{
    __atomic_store_n(&fake_now, t, __ATOMIC_RELAXED);
}

struct scripted {
    uint64_t len; /* fake length of the next run */
    int result;   /* its result */
    /* Called in the middle of the run (the clock at its start + len/2). */
    void (*during)(struct scripted *s);
    struct workers__tally *tally;
    uint64_t busy_seen, worker_seen;
};

static int
scripted_run(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    struct scripted *s = arg;
    uint64_t start = fake_clock(NULL);
    if (s->during != NULL) {
        set_clock(start + s->len / 2);
        s->during(s);
    }
    set_clock(start + s->len);
    return s->result;
}

static void
sample_now(struct scripted *s)
{
    workers__tally_sample(s->tally, fake_clock(NULL), &s->busy_seen,
                          &s->worker_seen);
}

/* An elapsed on the fake clock is a timed tally with the autoscaler's run;
 * made to time its slots' lives, it is the autoscaler's tally. */
static struct workers__tally *
timed_tally(workers_elapsed **e)
{
    ck_assert_int_eq(workers_elapsed_new(e, fake_clock, NULL), 0);
    struct workers__tally *t = (struct workers__tally *)*e;
    t->lives = true;
    return t;
}

static void
run_one(workers_job *job, workers_ctx *ctx, struct scripted *s, uint64_t len,
        int result)
{
    s->len = len;
    s->result = result;
    ck_assert_int_eq(job->fn(ctx, job->arg), result);
}

START_TEST(stream_busy_idle_failed)
{
    set_clock(100 * SEC);
    workers_elapsed *e;
    struct workers__tally *t = timed_tally(&e);
    workers_counter *c;
    ck_assert_int_eq(workers_counter_new(&c), 0);
    workers_middleware mws[] = {workers_counter_middleware(c),
                                workers_elapsed_middleware(e)};
    struct scripted s = {.tally = t};
    workers_job job = {scripted_run, &s, NULL};
    ck_assert_int_eq(workers_wrap(&job, mws, 2), 0); /* born at 100 s */
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);

    run_one(&job, ctx, &s, 3 * SEC, 0);             /* busy 3 */
    run_one(&job, ctx, &s, 1 * SEC, WORKERS_EIDLE); /* idle 1 */
    run_one(&job, ctx, &s, 2 * SEC, WORKERS_EJOB);  /* failed 2 */
    run_one(&job, ctx, &s, 4 * SEC, 0);             /* busy 4 */
    workers_ctx_wait(ctx, 0); /* something between runs: a pause */
    set_clock(fake_clock(NULL) + 5 * SEC);
    run_one(&job, ctx, &s, 1 * SEC, WORKERS_ECANCELED); /* failed 1 */

    uint64_t busy, worker;
    workers__tally_sample(t, 116 * SEC, &busy, &worker);
    ck_assert_uint_eq(busy, 7 * SEC);
    ck_assert_uint_eq(worker, 16 * SEC);

    workers_elapsed_stats es;
    workers_elapsed_stats_get(e, &es);
    ck_assert_uint_eq(es.total_ns, 11 * SEC);
    ck_assert_uint_eq(es.busy_ns, 7 * SEC);
    workers_counter_stats cs;
    workers_counter_stats_get(c, &cs);
    ck_assert_uint_eq(cs.started, 5);
    ck_assert_uint_eq(cs.finished, 5);
    ck_assert_uint_eq(cs.idle, 1);
    ck_assert_uint_eq(cs.failed, 2);

    /* A freed slot's busy and worker time (wrap to free) stay. */
    set_clock(120 * SEC);
    workers_job_free(&job);
    workers__tally_sample(t, 130 * SEC, &busy, &worker);
    ck_assert_uint_eq(busy, 7 * SEC);
    ck_assert_uint_eq(worker, 20 * SEC);
    workers_ctx_free(ctx);
    workers_elapsed_free(e);
    workers_counter_free(c);
}
END_TEST

/* A run in progress counts as busy up to now when the previous run did
 * work; not a first run, nor one after an idle or failed run. */
START_TEST(stream_in_progress)
{
    set_clock(0);
    workers_elapsed *e;
    struct workers__tally *t = timed_tally(&e);
    struct scripted s = {.tally = t};
    workers_job job = {scripted_run, &s, NULL};
    workers_middleware mw = workers_elapsed_middleware(e);
    ck_assert_int_eq(workers_wrap(&job, &mw, 1), 0);
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);

    s.during = sample_now;
    run_one(&job, ctx, &s, 20 * SEC, 0); /* first: sampled at 10 s */
    ck_assert_uint_eq(s.busy_seen, 0);
    ck_assert_uint_eq(s.worker_seen, 10 * SEC);
    run_one(&job, ctx, &s, 20 * SEC, 0); /* after busy: sampled at 30 s */
    ck_assert_uint_eq(s.busy_seen, 30 * SEC);
    run_one(&job, ctx, &s, 2 * SEC, WORKERS_EIDLE); /* at 41 s */
    ck_assert_uint_eq(s.busy_seen, 41 * SEC);
    run_one(&job, ctx, &s, 20 * SEC, 0); /* after idle: at 52 s */
    ck_assert_uint_eq(s.busy_seen, 40 * SEC);
    run_one(&job, ctx, &s, 2 * SEC, WORKERS_EJOB); /* after busy: 63 s */
    ck_assert_uint_eq(s.busy_seen, 61 * SEC);
    run_one(&job, ctx, &s, 20 * SEC, 0); /* after failed: at 74 s */
    ck_assert_uint_eq(s.busy_seen, 60 * SEC);
    s.during = NULL;

    uint64_t busy, worker;
    workers__tally_sample(t, fake_clock(NULL), &busy, &worker);
    ck_assert_uint_eq(busy, 80 * SEC);
    ck_assert_uint_eq(worker, 84 * SEC);
    workers_job_free(&job);
    workers_ctx_free(ctx);
    workers_elapsed_free(e);
}
END_TEST

/*
 * n workers, each on its own timeline, all producing `result` runs of 1 s
 * for 20 windows through the real middleware, sample and decision, ticking
 * every quarter window: the size never grows and falls to the floor.
 */
static void
uniform_stream(int result)
{
    enum { N = 6 };
    set_clock(0);
    workers_elapsed *e;
    struct workers__tally *t = timed_tally(&e);
    workers_middleware mw = workers_elapsed_middleware(e);
    struct scripted s[N];
    workers_job jobs[N];
    workers_ctx *ctx[N];
    uint64_t clock_of[N];
    for (int i = 0; i < N; i++) {
        s[i] = (struct scripted){.tally = t};
        jobs[i] = (workers_job){scripted_run, &s[i], NULL};
        ck_assert_int_eq(workers_wrap(&jobs[i], &mw, 1), 0);
        ck_assert_int_eq(workers_ctx_new(&ctx[i]), 0);
        clock_of[i] = 0;
    }
    workers_autoscale_policy p;
    ck_assert_int_eq(workers__autoscale_policy(NULL, &p), 0);
    struct workers__as_state st = {0};
    int n = N;
    for (uint64_t now = W / 4; now <= 20 * W; now += W / 4) {
        for (int i = 0; i < n; i++) {
            while (clock_of[i] < now) {
                set_clock(clock_of[i]);
                run_one(&jobs[i], ctx[i], &s[i], SEC, result);
                clock_of[i] = fake_clock(NULL);
            }
        }
        struct workers__as_sample smp;
        workers__tally_sample(t, now, &smp.busy_ns, &smp.worker_ns);
        workers_autoscale_decision d;
        workers__autoscale_decide(&p, 1, N, &st, &smp, n, now, &d);
        ck_assert_int_le(d.wanted, n);
        ck_assert(d.utilisation == 0);
        if (d.wanted < n) {
            /* The last worker leaves: its job is freed. */
            n = d.wanted;
            set_clock(now);
            workers_job_free(&jobs[n]);
        }
    }
    ck_assert_int_eq(n, 1);
    for (int i = 0; i < N; i++) {
        workers_job_free(&jobs[i]);
        workers_ctx_free(ctx[i]);
    }
    workers_elapsed_free(e);
}

START_TEST(stream_all_failing)
{
    uniform_stream(WORKERS_EJOB);
}
END_TEST

START_TEST(stream_all_idle)
{
    uniform_stream(WORKERS_EIDLE);
}
END_TEST

/* ---- pool: a real pool, real ticks at explicit fake times --------------- */

/*
 * The job: in busy mode each run waits on a gate until the test opens the
 * next generation (the fake clock already moved on), then returns 0; in
 * idle mode it returns WORKERS_EIDLE at once (the pool's idle wait paces
 * it).
 */
#define MAX_IDS 16

static struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned gen;
    int arrivals; /* runs that reached the gate */
    bool idle;    /* idle mode */
    bool done;    /* let every run through: the test ends */
    int idle_runs[MAX_IDS + 1];
} gate = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int
gate_job(workers_ctx *ctx, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gate.mu);
    if (gate.idle || gate.done) {
        unsigned id = workers_ctx_worker_id(ctx);
        if (id <= MAX_IDS)
            gate.idle_runs[id]++;
        pthread_mutex_unlock(&gate.mu);
        return WORKERS_EIDLE;
    }
    unsigned gen = gate.gen;
    gate.arrivals++;
    pthread_cond_broadcast(&gate.cv);
    while (gate.gen == gen && !gate.done)
        pthread_cond_wait(&gate.cv, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
    return 0;
}

/* Waits (on the condition variable, with a generous deadline) until
 * cond() holds under the gate's lock. */
static bool
gate_wait(bool (*cond)(void *arg), void *arg)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += TU_DEADLINE_MS / 1000;
    pthread_mutex_lock(&gate.mu);
    bool ok;
    while (!(ok = cond(arg)))
        if (pthread_cond_timedwait(&gate.cv, &gate.mu, &dl) == ETIMEDOUT) {
            ok = cond(arg);
            break;
        }
    pthread_mutex_unlock(&gate.mu);
    return ok;
}

static bool
arrived(void *arg)
{
    return gate.arrivals >= *(int *)arg;
}

/* Moves the clock to t, releases every run at the gate (they end at t)
 * and waits until each of the n workers is back in its next run. Returns
 * the arrivals then. */
static int
gate_release(uint64_t t, int n)
{
    set_clock(t);
    pthread_mutex_lock(&gate.mu);
    int want = gate.arrivals + n;
    gate.gen++;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    ck_assert(gate_wait(arrived, &want));
    return want;
}

/* Every worker id 1..n made at least two idle runs (so its run in
 * progress, if any, follows an idle one). Idle runs do not broadcast: the
 * waiter polls. */
static bool
idle_twice(void *arg)
{
    int n = *(int *)arg;
    pthread_mutex_lock(&gate.mu);
    bool all = true;
    for (int id = 1; id <= n; id++)
        all = all && gate.idle_runs[id] >= 2;
    pthread_mutex_unlock(&gate.mu);
    return all;
}

static workers_autoscale_decision
tick_at(workers_autoscale *as, workers_pool *pool, uint64_t t)
{
    workers_autoscale_decision d;
    set_clock(t);
    ck_assert_int_eq(workers_autoscale_tick(as, pool, t, &d), 0);
    ck_assert_int_eq(workers_pool_current(pool), d.new_count);
    return d;
}

START_TEST(pool_grows_and_shrinks)
{
    set_clock(SEC);
    workers_autoscale *as;
    ck_assert_int_eq(workers_autoscale_new(&as, NULL, fake_clock, NULL), 0);
    workers_counter *c;
    ck_assert_int_eq(workers_counter_new(&c), 0);
    /* The idle wait paces idle runs in real time; less() takes a worker
     * resting in it and cuts it short. */
    workers_middleware mws[] = {workers_autoscale_middleware(as),
                                workers_counter_middleware(c)};
    workers_config cfg = {.min = 1, .max = 8, .initial = 1, .idle_wait_ns = MS};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, mws, 2), 0);
    workers_job job = workers_job_func(gate_job, NULL);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    int one = 1;
    ck_assert(gate_wait(arrived, &one));

    workers_autoscale_decision d = tick_at(as, pool, SEC);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_MEASURING);

    /* Every worker busy for each window: 1, 2, 3, 4, 5, 7, 8 (max). */
    const int sizes[] = {1, 2, 3, 4, 5, 7, 8};
    uint64_t t = SEC;
    for (size_t i = 1; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        t += W;
        int want = gate_release(t, sizes[i - 1]);
        d = tick_at(as, pool, t);
        ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_GROW);
        ck_assert(d.utilisation == 1);
        ck_assert_uint_eq(d.span_ns, W);
        ck_assert_int_eq(d.old_count, sizes[i - 1]);
        ck_assert_int_eq(d.new_count, sizes[i]);
        /* The new workers' first runs reach the gate too. */
        want += sizes[i] - sizes[i - 1];
        ck_assert(gate_wait(arrived, &want));
    }
    t += W;
    gate_release(t, 8);
    d = tick_at(as, pool, t);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_LIMIT);
    ck_assert_int_eq(d.new_count, 8);
    uint64_t grown = t - W; /* the last change, for the cooldown */

    /* No work any more: the runs at the gate end busy at t, then every run
     * is idle and takes no fake time. */
    pthread_mutex_lock(&gate.mu);
    gate.idle = true;
    gate.gen++;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    int eight = 8;
    ck_assert(tu_wait_until(idle_twice, &eight, TU_DEADLINE_MS));

    /* One worker fewer per cooldown, counted from the last growth. */
    int n = 8;
    for (t += W; n > 1; t += W) {
        d = tick_at(as, pool, t);
        ck_assert(d.utilisation == 0);
        if (t - grown >= CD) {
            ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_SHRINK);
            ck_assert_int_eq(d.new_count, --n);
            grown = t;
        } else {
            ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_COOLDOWN);
            ck_assert_int_eq(d.new_count, n);
        }
    }
    d = tick_at(as, pool, t);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_LIMIT);

    pthread_mutex_lock(&gate.mu);
    gate.done = true;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    workers_pool_free(pool);
    workers_counter_stats cs;
    workers_counter_stats_get(c, &cs);
    ck_assert_uint_eq(cs.failed, 0);
    ck_assert_uint_ge(cs.idle, 16); /* two per worker at least */
    workers_counter_free(c);
    workers_autoscale_free(as);
}
END_TEST

/* Another caller's more(): reported, measured afresh; a closed pool: the
 * tick reports it paused, and more() errors come back. */
START_TEST(pool_external_change)
{
    set_clock(SEC);
    workers_autoscale *as;
    workers_autoscale_policy p = {.window_ns = W};
    ck_assert_int_eq(workers_autoscale_new(&as, &p, fake_clock, NULL), 0);
    workers_middleware mw = workers_autoscale_middleware(as);
    workers_config cfg = {.min = 1, .max = 4, .initial = 2, .idle_wait_ns = MS};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, &mw, 1), 0);
    gate.idle = true;
    workers_job job = workers_job_func(gate_job, NULL);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);

    workers_autoscale_decision d = tick_at(as, pool, SEC);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_MEASURING);
    ck_assert_int_eq(workers_pool_more(pool), 0);
    d = tick_at(as, pool, 2 * SEC);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_EXTERNAL);
    ck_assert_int_eq(d.old_count, 3);
    ck_assert_int_eq(d.new_count, 3);
    d = tick_at(as, pool, 2 * SEC + W);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_COOLDOWN);
    /* A new policy: measured afresh. */
    p.target = 0.5;
    ck_assert_int_eq(workers_autoscale_set_policy(as, &p), 0);
    p.target = 2;
    ck_assert_int_eq(workers_autoscale_set_policy(as, &p), -EINVAL);
    d = tick_at(as, pool, 2 * SEC + 2 * W);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_MEASURING);
    ck_assert(d.target == 0.5);

    /* Paused: its resting workers are not idle ones; past the cooldown
     * nothing shrinks, the size is kept. */
    ck_assert_int_eq(workers_pool_pause(pool), 0);
    for (int i = 3; i < 3 + 2 * (int)(CD / W) + 2; i++) {
        d = tick_at(as, pool, 2 * SEC + (uint64_t)i * W);
        ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_PAUSED);
        ck_assert_int_eq(d.new_count, 3);
    }
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    d = tick_at(as, pool, 2 * SEC + 20 * W);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_PAUSED);
    workers_pool_free(pool);
    workers_autoscale_free(as);
}
END_TEST

Suite *make_autoscale_pool_suite(void);

Suite *
make_autoscale_pool_suite(void)
{
    Suite *s = suite_create("autoscale_pool");
    TCase *tc = tcase_create("stream");
    tcase_add_test(tc, stream_busy_idle_failed);
    tcase_add_test(tc, stream_in_progress);
    tcase_add_test(tc, stream_all_failing);
    tcase_add_test(tc, stream_all_idle);
    suite_add_tcase(s, tc);

    tc = tcase_create("pool");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, pool_grows_and_shrinks);
    tcase_add_test(tc, pool_external_change);
    suite_add_tcase(s, tc);
    return s;
}
