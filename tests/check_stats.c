/*
 * The statistics middleware (cmd/workersd/stats/) around real library
 * pools: counts that match what the jobs did (a job that fails every
 * third run, one that times out, Retry's attempts), the last error, the
 * workers' states and run ages, and totals that outlive the workers.
 * Runs are made countable by jobs that stop at a known run and then block
 * until their worker is cancelled; the tests poll snapshots until the
 * counts arrive, with generous deadlines.
 */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "coretest.h"
#include "stats/stats.h"
#include "testutil.h"

#define MS 1000000ull

/* ---- jobs ------------------------------------------------------------ */

/* Per worker: `limit` runs that return what script() says for run n
 * (1-based), then one run that blocks until the worker is cancelled. */
struct scripted {
    int (*script)(int n);
    int limit;
};

struct scripted_state {
    const struct scripted *s;
    int n;
};

static int
scripted_run(workers_ctx *ctx, void *arg)
{
    struct scripted_state *st = arg;

    if (st->n == st->s->limit) {
        while (workers_ctx_wait(ctx, 3600000 * MS) == 0)
            ;
        return WORKERS_ECANCELED;
    }
    return st->s->script(++st->n);
}

static int
scripted_new(void *arg, workers_job *out)
{
    struct scripted_state *st = calloc(1, sizeof *st);

    if (st == NULL)
        return -ENOMEM;
    st->s = arg;
    *out = (workers_job){scripted_run, st, free};
    return 0;
}

static int
every_third_fails(int n)
{
    return n % 3 == 0 ? 1 : 0;
}

static int
always_times_out(int n)
{
    (void)n;
    return WORKERS_ETIMEDOUT;
}

static int
every_other_idle(int n)
{
    return n % 2 == 0 ? WORKERS_EIDLE : 0;
}

/* Fails twice, then succeeds: with Retry = 2 each pool run succeeds. */
static int
third_try_works(int n)
{
    return n % 3 == 0 ? 0 : 7;
}

/* A pool of n workers running s, wrapped by mws. */
static workers_pool *
start_pool(int n, const struct scripted *s, const workers_middleware *mws,
           size_t nmws)
{
    workers_config cfg = {.initial = n};
    workers_pool *pool;
    workers_builder b = workers_builder_func(scripted_new, (void *)s);

    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, mws, nmws), 0);
    ck_assert_int_eq(workers_pool_start_with_builder(pool, &b), 0);
    return pool;
}

/* ---- snapshots ---------------------------------------------------------- */

struct until {
    wd_stats *st;
    wd_stats_snapshot snap;
    uint64_t started;
    unsigned busy;
};

static uint64_t
ended_total(const wd_stats_runs *r)
{
    uint64_t n = 0;
    for (int o = 0; o < WD_NOUTCOMES; o++)
        n += r->ended[o];
    return n;
}

/* A snapshot loads a slot's ended counts before started, so it may show a
 * run started whose predecessor's end it has not seen yet: wait for the
 * ends too, not only for the starts. */
static bool
reached(void *arg)
{
    struct until *u = arg;

    ck_assert_int_eq(wd_stats_read(u->st, &u->snap), 0);
    return u->snap.runs.started >= u->started && u->snap.busy == u->busy &&
           ended_total(&u->snap.runs) + u->busy >= u->started;
}

/* Reads snapshots until `started` runs started, all but `busy` of them
 * ended, and `busy` are in a run. */
static void
wait_runs(struct until *u, uint64_t started, unsigned busy)
{
    u->started = started;
    u->busy = busy;
    ck_assert_msg(tu_wait_until(reached, u, TU_DEADLINE_MS),
                  "started %llu busy %u, waited for %llu and %u",
                  (unsigned long long)u->snap.runs.started, u->snap.busy,
                  (unsigned long long)started, busy);
}

static uint64_t
bucket_total(const wd_stats_runs *r)
{
    uint64_t n = 0;
    for (int i = 0; i <= WD_STATS_NBOUNDS; i++)
        n += r->buckets[i];
    return n;
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(test_counts_match_the_job)
{
    static const struct scripted s = {every_third_fails, 30};
    wd_config cfg = {0};
    struct until u = {0};
    ck_assert_int_eq(wd_stats_new(&u.st), 0);
    workers_middleware mw = wd_stats_middleware(u.st, &cfg);
    workers_pool *pool = start_pool(2, &s, &mw, 1);

    /* 2 workers x (30 runs + the blocking one). */
    wait_runs(&u, 62, 2);
    const wd_stats_runs *r = &u.snap.runs;
    ck_assert_uint_eq(r->started, 62);
    ck_assert_uint_eq(r->ended[WD_OUTCOME_SUCCEEDED], 40);
    ck_assert_uint_eq(r->ended[WD_OUTCOME_FAILED], 20);
    ck_assert_uint_eq(r->ended[WD_OUTCOME_TIMED_OUT], 0);
    ck_assert_uint_eq(r->ended[WD_OUTCOME_CANCELLED], 0);
    ck_assert_uint_eq(r->retried, 0);
    ck_assert_uint_eq(bucket_total(r), 60);
    ck_assert_uint_eq(u.snap.nworkers, 2);
    for (unsigned i = 0; i < 2; i++) {
        const wd_stats_worker *w = &u.snap.workers[i];
        ck_assert_uint_eq(w->id, i + 1); /* sorted by id */
        ck_assert_int_eq(w->state, WD_WORKER_RUNNING);
        ck_assert(w->in_run);
        ck_assert_uint_eq(w->runs, 31);
        ck_assert_uint_eq(w->failures, 10);
    }
    ck_assert(u.snap.last_error.set);
    ck_assert_int_eq(u.snap.last_error.code, 1);
    ck_assert_str_eq(u.snap.last_error.message, "exit 1");
    ck_assert(u.snap.last_error.worker == 1 || u.snap.last_error.worker == 2);

    /* The totals outlive the workers; the blocked runs end cancelled. */
    workers_pool_free(pool);
    ck_assert_int_eq(wd_stats_read(u.st, &u.snap), 0);
    ck_assert_uint_eq(u.snap.nworkers, 0);
    ck_assert_uint_eq(u.snap.busy, 0);
    ck_assert_uint_eq(r->started, 62);
    ck_assert_uint_eq(r->ended[WD_OUTCOME_FAILED], 20);
    ck_assert_uint_eq(r->ended[WD_OUTCOME_CANCELLED], 2);
    ck_assert_uint_eq(bucket_total(r), 62);
    ck_assert(u.snap.last_error.set);
    ck_assert_int_eq(u.snap.last_error.code, 1);
    wd_stats_snapshot_free(&u.snap);
    wd_stats_free(u.st);
}
END_TEST

/* A run that found no work is idle: neither failed nor an error. */
START_TEST(test_idle_runs)
{
    static const struct scripted s = {every_other_idle, 10};
    wd_config cfg = {0};
    struct until u = {0};
    ck_assert_int_eq(wd_stats_new(&u.st), 0);
    workers_middleware mw = wd_stats_middleware(u.st, &cfg);
    workers_pool *pool = start_pool(1, &s, &mw, 1);

    wait_runs(&u, 11, 1);
    const wd_stats_runs *r = &u.snap.runs;
    ck_assert_uint_eq(r->ended[WD_OUTCOME_SUCCEEDED], 5);
    ck_assert_uint_eq(r->ended[WD_OUTCOME_IDLE], 5);
    ck_assert_uint_eq(r->ended[WD_OUTCOME_FAILED], 0);
    ck_assert_uint_eq(u.snap.workers[0].failures, 0);
    ck_assert(!u.snap.last_error.set);
    ck_assert_str_eq(wd_outcome_name[WD_OUTCOME_IDLE], "idle");
    workers_pool_free(pool);
    wd_stats_snapshot_free(&u.snap);
    wd_stats_free(u.st);
}
END_TEST

START_TEST(test_timed_out_runs)
{
    static const struct scripted s = {always_times_out, 5};
    wd_config cfg = {.plugin = "x.so"};
    struct until u = {0};
    ck_assert_int_eq(wd_stats_new(&u.st), 0);
    workers_middleware mw = wd_stats_middleware(u.st, &cfg);
    workers_pool *pool = start_pool(1, &s, &mw, 1);

    wait_runs(&u, 6, 1);
    ck_assert_uint_eq(u.snap.runs.ended[WD_OUTCOME_TIMED_OUT], 5);
    ck_assert_uint_eq(u.snap.runs.ended[WD_OUTCOME_FAILED], 0);
    ck_assert_uint_eq(u.snap.workers[0].failures, 5);
    ck_assert_int_eq(u.snap.last_error.code, WORKERS_ETIMEDOUT);
    ck_assert_str_eq(u.snap.last_error.message, "timed out");
    ck_assert_uint_eq(u.snap.last_error.worker, 1);
    workers_pool_free(pool);
    wd_stats_snapshot_free(&u.snap);
    wd_stats_free(u.st);
}
END_TEST

/* The job the test steers: each run returns the code the test set, or
 * blocks (code 0 and hold set) until released. */
struct steer {
    _Atomic int code;
    _Atomic int runs;
    _Atomic bool hold;
};

static int
steer_run(workers_ctx *ctx, void *arg)
{
    struct steer *s = arg;

    atomic_fetch_add(&s->runs, 1);
    while (atomic_load(&s->hold) && !workers_ctx_done(ctx))
        workers_ctx_wait(ctx, MS);
    return atomic_load(&s->code);
}

/* Reads snapshots until the last error's code is want and at least
 * `succeeded` runs succeeded. */
struct error_wait {
    wd_stats *st;
    wd_stats_snapshot snap;
    int want;
    uint64_t succeeded;
};

static bool
error_is(void *arg)
{
    struct error_wait *w = arg;

    ck_assert_int_eq(wd_stats_read(w->st, &w->snap), 0);
    return w->snap.last_error.set && w->snap.last_error.code == w->want &&
           w->snap.runs.ended[WD_OUTCOME_SUCCEEDED] >= w->succeeded;
}

static void
wait_error(struct error_wait *w, int want, uint64_t succeeded)
{
    w->want = want;
    w->succeeded = succeeded;
    ck_assert_msg(tu_wait_until(error_is, w, TU_DEADLINE_MS),
                  "last error %d, waited for %d", w->snap.last_error.code,
                  want);
}

START_TEST(test_last_error_follows)
{
    struct steer job = {.code = 2};
    wd_config cfg = {0};
    struct error_wait w = {0};
    ck_assert_int_eq(wd_stats_new(&w.st), 0);
    workers_middleware mw = wd_stats_middleware(w.st, &cfg);
    workers_pool *pool = workers_pool_must(NULL, &mw, 1);
    workers_job j = workers_job_func(steer_run, &job);

    ck_assert_int_eq(wd_stats_read(w.st, &w.snap), 0);
    ck_assert(!w.snap.last_error.set);
    ck_assert_int_eq(workers_pool_start(pool, &j), 0);
    wait_error(&w, 2, 0);
    ck_assert_str_eq(w.snap.last_error.message, "exit 2");
    ck_assert_uint_eq(w.snap.last_error.worker, 1);

    /* A later error replaces it; successes leave it, and it ages. */
    atomic_store(&job.code, 128 + 9);
    wait_error(&w, 137, 0);
    ck_assert_str_eq(w.snap.last_error.message, "killed by SIGKILL");
    atomic_store(&job.code, 0);
    wait_error(&w, 137, w.snap.runs.ended[WD_OUTCOME_SUCCEEDED] + 2);
    uint64_t age = w.snap.last_error.age_ns;
    tu_sleep_ms(20);
    ck_assert_int_eq(wd_stats_read(w.st, &w.snap), 0);
    ck_assert_int_eq(w.snap.last_error.code, 137);
    ck_assert_uint_ge(w.snap.last_error.age_ns, age + 20 * MS);
    ck_assert(w.snap.last_error.unix_time > 1.6e9);
    workers_pool_free(pool);
    wd_stats_snapshot_free(&w.snap);
    wd_stats_free(w.st);
}
END_TEST

START_TEST(test_retries_counted_by_the_marker)
{
    static const struct scripted s = {third_try_works, 30};
    wd_config cfg = {0};
    struct until u = {0};
    ck_assert_int_eq(wd_stats_new(&u.st), 0);
    workers_middleware mws[] = {wd_stats_middleware(u.st, &cfg),
                                workers_retry(2), wd_stats_retry_marker()};
    workers_pool *pool = start_pool(2, &s, mws, 3);

    /* Per worker 10 pool runs of 3 attempts, then the blocking one. */
    wait_runs(&u, 62, 2);
    ck_assert_uint_eq(u.snap.runs.ended[WD_OUTCOME_FAILED], 40);
    ck_assert_uint_eq(u.snap.runs.ended[WD_OUTCOME_SUCCEEDED], 20);
    ck_assert_uint_eq(u.snap.runs.retried, 40);
    workers_pool_free(pool);
    wd_stats_snapshot_free(&u.snap);
    wd_stats_free(u.st);

    /* Without the marker, Retry's attempts are runs like any other. */
    ck_assert_int_eq(wd_stats_new(&u.st), 0);
    mws[0] = wd_stats_middleware(u.st, &cfg);
    pool = start_pool(2, &s, mws, 2);
    wait_runs(&u, 62, 2);
    ck_assert_uint_eq(u.snap.runs.retried, 0);
    workers_pool_free(pool);
    wd_stats_snapshot_free(&u.snap);
    wd_stats_free(u.st);
}
END_TEST

struct state_wait {
    wd_stats *st;
    wd_stats_snapshot snap;
    enum wd_worker_state want;
};

static bool
in_state(void *arg)
{
    struct state_wait *w = arg;

    ck_assert_int_eq(wd_stats_read(w->st, &w->snap), 0);
    return w->snap.nworkers == 1 && w->snap.workers[0].state == w->want;
}

static void
wait_state(struct state_wait *w, enum wd_worker_state want)
{
    w->want = want;
    ck_assert_msg(
        tu_wait_until(in_state, w, TU_DEADLINE_MS), "state %s, waited for %s",
        w->snap.nworkers ? wd_worker_state_name[w->snap.workers[0].state]
                         : "(no worker)",
        wd_worker_state_name[want]);
}

/* running (with its age), backoff, paused, idle, stopping. */
START_TEST(test_worker_states)
{
    struct steer job = {.code = 1, .hold = true};
    wd_config cfg = {.backoff = {3600000 * MS, 3600000 * MS}};
    struct state_wait w = {0};
    ck_assert_int_eq(wd_stats_new(&w.st), 0);
    workers_middleware mws[] = {wd_stats_middleware(w.st, &cfg),
                                wd_backoff(&cfg)};
    workers_pool *pool = workers_pool_must(NULL, mws, 2);
    workers_job j = workers_job_func(steer_run, &job);
    ck_assert_int_eq(workers_pool_start(pool, &j), 0);

    wait_state(&w, WD_WORKER_RUNNING);
    uint64_t age = w.snap.workers[0].run_age_ns;
    tu_sleep_ms(30);
    ck_assert_int_eq(wd_stats_read(w.st, &w.snap), 0);
    ck_assert_uint_ge(w.snap.workers[0].run_age_ns, age + 30 * MS);

    /* The run fails: the worker waits out the (hour-long) backoff. */
    atomic_store(&job.hold, false);
    wait_state(&w, WD_WORKER_BACKOFF);
    ck_assert(!w.snap.workers[0].in_run);
    ck_assert_uint_eq(w.snap.workers[0].run_age_ns, 0);
    wd_stats_set_paused(w.st, true);
    wait_state(&w, WD_WORKER_PAUSED);
    wd_stats_set_paused(w.st, false);
    wait_state(&w, WD_WORKER_BACKOFF);
    /* Close: the worker is cancelled, its backoff ends at once. */
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    ck_assert_int_eq(wd_stats_read(w.st, &w.snap), 0);
    ck_assert_uint_eq(w.snap.nworkers, 0);
    workers_pool_free(pool);
    wd_stats_snapshot_free(&w.snap);
    wd_stats_free(w.st);
}
END_TEST

/* A run that ignores its cancelled context until the gate opens. */
static int
gated_run(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    ct_gate_pass(arg);
    return 0;
}

/* A worker removed by less() while its run goes on is "stopping"; one
 * waiting out Wait's pause is "idle". */
START_TEST(test_stopping_and_idle)
{
    ct_gate gate;
    struct state_wait w = {0};
    wd_config cfg = {0};
    ck_assert_int_eq(wd_stats_new(&w.st), 0);
    workers_middleware mws[] = {wd_stats_middleware(w.st, &cfg),
                                workers_wait(3600000 * MS)};
    workers_config pc = {.min = 0, .initial = 1};
    workers_pool *pool = workers_pool_must(&pc, mws, 1);

    ct_gate_init(&gate);
    workers_job j = workers_job_func(gated_run, &gate);
    ck_assert_int_eq(workers_pool_start(pool, &j), 0);
    wait_state(&w, WD_WORKER_RUNNING);
    ck_assert_int_eq(workers_pool_less(pool), 0);
    wait_state(&w, WD_WORKER_STOPPING);
    ck_assert(w.snap.workers[0].in_run);
    ct_gate_open(&gate);
    workers_pool_free(pool);
    wd_stats_snapshot_free(&w.snap);
    wd_stats_free(w.st);

    /* Wait outside the stats: its pause falls between runs. */
    ck_assert_int_eq(wd_stats_new(&w.st), 0);
    mws[0] = wd_stats_middleware(w.st, &cfg);
    pool = workers_pool_must(&pc, mws, 2);
    struct steer quick = {.code = 0};
    j = workers_job_func(steer_run, &quick);
    ck_assert_int_eq(workers_pool_start(pool, &j), 0);
    wait_state(&w, WD_WORKER_IDLE);
    /* The first pause comes before the first run: no id known yet. */
    ck_assert_uint_eq(w.snap.workers[0].id, 0);
    ck_assert(!w.snap.workers[0].in_run);
    ck_assert_uint_eq(w.snap.runs.started, 0);
    workers_pool_free(pool);
    wd_stats_snapshot_free(&w.snap);
    wd_stats_free(w.st);
}
END_TEST

/* Durations: a run's own time only, not the pause before it. Wait paces
 * 300 ms between runs of a job that takes ~0: no run may land in a bucket
 * above 250 ms (only a 250 ms stall of a running thread could put one
 * there), and a 30 ms run lands in (25 ms, 50 ms] or above. */
static int
sleepy_run(workers_ctx *ctx, void *arg)
{
    _Atomic int *runs = arg;

    if (atomic_fetch_add(runs, 1) == 0)
        tu_sleep_ms(30);
    (void)ctx;
    return 0;
}

START_TEST(test_durations_exclude_pauses)
{
    _Atomic int runs = 0;
    struct until u = {0};
    wd_config cfg = {0};
    ck_assert_int_eq(wd_stats_new(&u.st), 0);
    workers_middleware mws[] = {wd_stats_middleware(u.st, &cfg),
                                workers_wait(300 * MS)};
    workers_pool *pool = workers_pool_must(NULL, mws, 2);
    workers_job j = workers_job_func(sleepy_run, &runs);
    ck_assert_int_eq(workers_pool_start(pool, &j), 0);

    wait_runs(&u, 4, 0);
    workers_pool_free(pool);
    ck_assert_int_eq(wd_stats_read(u.st, &u.snap), 0);
    const wd_stats_runs *r = &u.snap.runs;
    uint64_t over_250ms = 0, first = 0;
    for (int i = 0; i <= WD_STATS_NBOUNDS; i++) {
        if (i == WD_STATS_NBOUNDS || wd_stats_bound_ns[i] > 250 * MS)
            over_250ms += r->buckets[i];
        if (i < WD_STATS_NBOUNDS && wd_stats_bound_ns[i] > 25 * MS)
            first += r->buckets[i];
    }
    ck_assert_uint_eq(over_250ms, 0);
    ck_assert_uint_ge(first, 1);
    ck_assert_uint_ge(r->sum_ns, 30 * MS);
    ck_assert_uint_eq(bucket_total(r), r->started);
    wd_stats_snapshot_free(&u.snap);
    wd_stats_free(u.st);
}
END_TEST

START_TEST(test_bounds_and_describe)
{
    char buf[64];

    for (int i = 1; i < WD_STATS_NBOUNDS; i++)
        ck_assert_uint_gt(wd_stats_bound_ns[i], wd_stats_bound_ns[i - 1]);
    ck_assert_uint_eq(wd_stats_bound_ns[0], MS);
    ck_assert_uint_eq(wd_stats_bound_ns[WD_STATS_NBOUNDS - 1], 3600000 * MS);
    for (int i = 0; i < WD_STATS_NBOUNDS; i++)
        ck_assert_uint_eq(
            (uint64_t)(strtod(wd_stats_bound_text[i], NULL) * 1e9 + 0.5),
            wd_stats_bound_ns[i]);
    ck_assert_str_eq(wd_stats_describe(true, 1, buf, sizeof buf), "exit 1");
    ck_assert_str_eq(wd_stats_describe(true, 255, buf, sizeof buf), "exit 255");
    ck_assert_str_eq(wd_stats_describe(true, 128 + 15, buf, sizeof buf),
                     "killed by SIGTERM");
    ck_assert_str_eq(wd_stats_describe(false, 143, buf, sizeof buf),
                     "code 143");
    ck_assert_str_eq(
        wd_stats_describe(false, WORKERS_ETIMEDOUT, buf, sizeof buf),
        "timed out");
    ck_assert_str_eq(wd_stats_describe(true, -ENOMEM, buf, sizeof buf),
                     workers_strerror(-ENOMEM));
}
END_TEST

Suite *make_stats_suite(void);

Suite *
make_stats_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("stats");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_counts_match_the_job);
    tcase_add_test(tc, test_idle_runs);
    tcase_add_test(tc, test_timed_out_runs);
    tcase_add_test(tc, test_last_error_follows);
    tcase_add_test(tc, test_retries_counted_by_the_marker);
    tcase_add_test(tc, test_worker_states);
    tcase_add_test(tc, test_stopping_and_idle);
    tcase_add_test(tc, test_durations_exclude_pauses);
    tcase_add_test(tc, test_bounds_and_describe);
    suite_add_tcase(s, tc);
    return s;
}
