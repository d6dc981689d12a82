/*
 * Run-time control of a pool (issue 10 item 3, issue 14): pause and resume,
 * more/less/close while paused, less taking a resting worker before one in
 * a run, set_limits and the status snapshot.
 */
#include "coretest.h"
#include "testutil.h"
#include "workers.h"

#include <check.h>
#include <stdint.h>

#define MS 1000000ull

static workers_pool *
new_pool(int min, int max, int initial)
{
    workers_config cfg = {.min = min, .max = max, .initial = initial};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, NULL, 0), 0);
    return pool;
}

/* Short runs (1 ms, cut short by cancellation), counted; worker ids whose
 * bit is in gated block their first run on the gate, ignoring cancellation
 * and pause, and record whether their context was cancelled meanwhile. */
struct ticker {
    atomic_int runs;
    atomic_int started[CT_MAX_ID + 1];
    unsigned gated;
    ct_gate gate;
    atomic_int gated_cancelled;
    atomic_int builds; /* third_fails' calls */
};

static int
tick_job(workers_ctx *ctx, void *arg)
{
    struct ticker *t = arg;
    unsigned id = workers_ctx_worker_id(ctx);
    atomic_fetch_add(&t->runs, 1);
    /* Under churn ids pass Max (a removed worker keeps its id until its
     * last run returns): only the ids a gate can name (< 32) are followed. */
    if (id < 32 && atomic_fetch_add(&t->started[id], 1) == 0 &&
        (t->gated & (1u << id))) {
        ct_gate_pass(&t->gate);
        atomic_store(&t->gated_cancelled, workers_ctx_done(ctx));
        return 0;
    }
    return workers_ctx_wait(ctx, MS) == WORKERS_ECANCELED ? WORKERS_ECANCELED
                                                          : 0;
}

static void
ticker_start(struct ticker *t, workers_pool *pool, unsigned gated)
{
    ct_gate_init(&t->gate);
    t->gated = gated;
    workers_job job = workers_job_func(tick_job, t);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
}

static void
wait_runs(struct ticker *t, int n)
{
    for (unsigned ms = 0; atomic_load(&t->runs) < n; ms++) {
        ck_assert_uint_lt(ms, TU_DEADLINE_MS);
        tu_sleep_ms(1);
    }
}

/* Once every worker rests no run starts; resume starts them again. The
 * fixed wait can only err towards passing on a slow machine. */
static void
check_no_run_for(struct ticker *t, unsigned ms)
{
    int before = atomic_load(&t->runs);
    tu_sleep_ms(ms);
    ck_assert_int_eq(atomic_load(&t->runs), before);
}

START_TEST(test_pause_resume)
{
    struct ticker t = {0};
    workers_pool *pool = new_pool(0, 0, 3);
    ticker_start(&t, pool, 0);
    wait_runs(&t, 30);
    ck_assert(!ct_status(pool).paused);
    ck_assert_int_eq(workers_pool_pause(pool), 0);
    ck_assert_int_eq(workers_pool_pause(pool), 0);
    ck_assert(ct_status(pool).paused);
    ct_wait_resting(pool, 3);
    check_no_run_for(&t, 100);
    ck_assert_int_eq(workers_pool_current(pool), 3);
    ck_assert_int_eq(workers_pool_resume(pool), 0);
    ck_assert(!ct_status(pool).paused);
    ck_assert_int_eq(ct_status(pool).resting, 0);
    wait_runs(&t, atomic_load(&t.runs) + 30);
    ck_assert_int_eq(workers_pool_resume(pool), 0);
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    ck_assert_int_eq(workers_pool_pause(pool), WORKERS_ECLOSED);
    ck_assert_int_eq(workers_pool_resume(pool), WORKERS_ECLOSED);
    workers_pool_free(pool);
}
END_TEST

/* A run in progress when pause comes finishes, uncancelled; then its
 * worker rests too. */
START_TEST(test_pause_lets_runs_finish)
{
    struct ticker t = {0};
    workers_pool *pool = new_pool(0, 0, 2);
    ticker_start(&t, pool, 1u << 2);
    ck_assert(tu_wait_until(ct_flag_set, &t.started[2], TU_DEADLINE_MS));
    for (unsigned ms = 0; ct_gate_waiting(&t.gate) != 1; ms++) {
        ck_assert_uint_lt(ms, TU_DEADLINE_MS);
        tu_sleep_ms(1);
    }
    ck_assert_int_eq(workers_pool_pause(pool), 0);
    ct_wait_resting(pool, 1);
    ct_gate_open(&t.gate);
    ct_wait_resting(pool, 2);
    ck_assert_int_eq(atomic_load(&t.gated_cancelled), 0);
    ck_assert_int_eq(atomic_load(&t.started[2]), 1);
    workers_pool_free(pool);
}
END_TEST

/* more, less and close work while paused: an added worker rests before its
 * first run, less takes resting workers, close ends them without a run. */
START_TEST(test_more_less_close_while_paused)
{
    struct ticker t = {0};
    workers_pool *pool = new_pool(0, 0, 2);
    ticker_start(&t, pool, 0);
    wait_runs(&t, 2);
    ck_assert_int_eq(workers_pool_pause(pool), 0);
    ct_wait_resting(pool, 2);
    int runs = atomic_load(&t.runs);
    ck_assert_int_eq(workers_pool_more(pool), 0);
    ck_assert_int_eq(workers_pool_more(pool), 0);
    ct_wait_resting(pool, 4);
    ck_assert_int_eq(atomic_load(&t.runs), runs);
    ck_assert_int_eq(atomic_load(&t.started[3]), 0);
    ck_assert_int_eq(workers_pool_less(pool), 0);
    workers_pool_status st = ct_status(pool);
    ck_assert_int_eq(st.current, 3);
    ck_assert_int_eq(st.resting, 3);
    uint64_t t0 = tu_now_ms();
    ck_assert_int_eq(workers_pool_close_timeout(pool, 10000 * MS), 0);
    ck_assert_uint_lt(tu_now_ms() - t0, TU_DEADLINE_MS);
    ck_assert_int_eq(atomic_load(&t.runs), runs);
    st = ct_status(pool);
    ck_assert_int_eq(st.current, 0);
    ck_assert_int_eq(st.resting, 0);
    workers_pool_free(pool);
}
END_TEST

/* A pool paused before start starts its workers resting. */
START_TEST(test_pause_before_start)
{
    struct ticker t = {0};
    workers_pool *pool = new_pool(0, 0, 2);
    ck_assert_int_eq(workers_pool_pause(pool), 0);
    ticker_start(&t, pool, 0);
    ct_wait_resting(pool, 2);
    ck_assert_int_eq(atomic_load(&t.runs), 0);
    ck_assert_int_eq(workers_pool_resume(pool), 0);
    wait_runs(&t, 10);
    workers_pool_free(pool);
}
END_TEST

/* Issue 12's rule: less never removes a worker in a run when one that is
 * not can go. Worker 3, the most recent, is held in its run; workers 1 and
 * 2 rest: less removes a resting one, whose thread parks while worker 3 is
 * still in its run. */
START_TEST(test_less_prefers_resting)
{
    struct ticker t = {0};
    workers_pool *pool = new_pool(0, 0, 3);
    ticker_start(&t, pool, 1u << 3);
    for (unsigned ms = 0; ct_gate_waiting(&t.gate) != 1; ms++) {
        ck_assert_uint_lt(ms, TU_DEADLINE_MS);
        tu_sleep_ms(1);
    }
    ck_assert_int_eq(workers_pool_pause(pool), 0);
    ct_wait_resting(pool, 2);
    ck_assert_int_eq(workers_pool_less(pool), 0);
    for (unsigned ms = 0; ct_pool_parked(pool) != 1; ms++) {
        ck_assert_uint_lt(ms, TU_DEADLINE_MS);
        tu_sleep_ms(1);
    }
    ck_assert_int_eq(ct_gate_waiting(&t.gate), 1);
    workers_pool_status st = ct_status(pool);
    ck_assert_int_eq(st.current, 2);
    ck_assert_int_eq(st.resting, 1);
    ct_gate_open(&t.gate);
    ct_wait_resting(pool, 2);
    ck_assert_int_eq(atomic_load(&t.gated_cancelled), 0);
    /* Nobody rests once resumed: less takes the most recent again. */
    ck_assert_int_eq(workers_pool_resume(pool), 0);
    ck_assert_int_eq(workers_pool_less(pool), 0);
    ck_assert_int_eq(workers_pool_current(pool), 1);
    workers_pool_free(pool);
}
END_TEST

/* Pause, resume, more and less from four threads at once; close still
 * ends every worker (a lost wake-up would hang it). */
struct churn {
    workers_pool *pool;
    atomic_int stop;
};

static void *
pauser(void *arg)
{
    struct churn *c = arg;
    while (!atomic_load(&c->stop)) {
        ck_assert_int_eq(workers_pool_pause(c->pool), 0);
        ck_assert_int_eq(workers_pool_resume(c->pool), 0);
    }
    return NULL;
}

static void *
scaler(void *arg)
{
    struct churn *c = arg;
    while (!atomic_load(&c->stop)) {
        int err = workers_pool_more(c->pool);
        ck_assert(err == 0 || err == WORKERS_EMAX);
        err = workers_pool_less(c->pool);
        ck_assert(err == 0 || err == WORKERS_EMIN);
    }
    return NULL;
}

START_TEST(test_pause_stress)
{
    struct ticker t = {0};
    struct churn c = {.pool = new_pool(1, 16, 4)};
    ticker_start(&t, c.pool, 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(
            pthread_create(&th[i], NULL, i % 2 ? scaler : pauser, &c), 0);
    tu_sleep_ms(300);
    atomic_store(&c.stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(workers_pool_pause(c.pool), 0);
    ck_assert_int_eq(workers_pool_close_timeout(c.pool, 10000 * MS), 0);
    workers_pool_free(c.pool);
}
END_TEST

START_TEST(test_set_limits)
{
    struct ticker t = {0};
    workers_pool *pool = new_pool(1, 8, 5);
    ck_assert_int_eq(workers_pool_set_limits(pool, -1, 8), WORKERS_EINVALMIN);
    ck_assert_int_eq(workers_pool_set_limits(pool, 3, 2), WORKERS_EINVALMAX);
    ck_assert_int_eq(workers_pool_set_limits(pool, 0, -1), WORKERS_EINVALMAX);
    workers_pool_status st = ct_status(pool);
    ck_assert_int_eq(st.min, 1);
    ck_assert_int_eq(st.max, 8);
    /* Before start: the limits bound how many start. */
    ck_assert_int_eq(workers_pool_set_limits(pool, 1, 3), 0);
    ticker_start(&t, pool, 0);
    ck_assert_int_eq(workers_pool_current(pool), 3);
    ck_assert_int_eq(workers_pool_more(pool), WORKERS_EMAX);
    /* Down to the new max, up to the new min. */
    ck_assert_int_eq(workers_pool_set_limits(pool, 0, 2), 0);
    ck_assert_int_eq(workers_pool_current(pool), 2);
    ck_assert_int_eq(workers_pool_set_limits(pool, 5, 6), 0);
    st = ct_status(pool);
    ck_assert_int_eq(st.current, 5);
    ck_assert_int_eq(st.min, 5);
    ck_assert_int_eq(st.max, 6);
    ck_assert_int_eq(workers_pool_less(pool), WORKERS_EMIN);
    ck_assert_int_eq(workers_pool_more(pool), 0);
    ck_assert_int_eq(workers_pool_more(pool), WORKERS_EMAX);
    /* Unlimited; in range already: nothing changes. */
    ck_assert_int_eq(workers_pool_set_limits(pool, 0, 0), 0);
    ck_assert_int_eq(workers_pool_current(pool), 6);
    ck_assert_int_eq(workers_pool_more(pool), 0);
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(workers_pool_less(pool), 0);
    ck_assert_int_eq(workers_pool_less(pool), WORKERS_EMIN);
    /* Paused: added workers rest. */
    ck_assert_int_eq(workers_pool_pause(pool), 0);
    ck_assert_int_eq(workers_pool_set_limits(pool, 2, 4), 0);
    ct_wait_resting(pool, 2);
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    ck_assert_int_eq(workers_pool_set_limits(pool, 0, 4), WORKERS_ECLOSED);
    workers_pool_free(pool);
}
END_TEST

/* A builder that fails on its 3rd call: set_limits keeps the new limits
 * and the workers it could add, and returns the builder's error. */
static int
third_fails(void *arg, workers_job *out)
{
    struct ticker *t = arg;
    if (atomic_fetch_add(&t->builds, 1) == 2)
        return -77;
    *out = workers_job_func(tick_job, t);
    return 0;
}

START_TEST(test_set_limits_builder_error)
{
    struct ticker t = {0};
    workers_pool *pool = new_pool(0, 0, 1);
    workers_builder b = workers_builder_func(third_fails, &t);
    ck_assert_int_eq(workers_pool_start_with_builder(pool, &b), 0);
    ck_assert_int_eq(workers_pool_set_limits(pool, 4, 0), -77);
    workers_pool_status st = ct_status(pool);
    ck_assert_int_eq(st.current, 2);
    ck_assert_int_eq(st.min, 4);
    ck_assert_int_eq(workers_pool_set_limits(pool, 4, 0), 0);
    ck_assert_int_eq(workers_pool_current(pool), 4);
    workers_pool_free(pool);
}
END_TEST

Suite *make_pause_suite(void);

Suite *
make_pause_suite(void)
{
    Suite *s = suite_create("pause");
    TCase *tc = tcase_create("pause");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pause_resume);
    tcase_add_test(tc, test_pause_lets_runs_finish);
    tcase_add_test(tc, test_more_less_close_while_paused);
    tcase_add_test(tc, test_pause_before_start);
    tcase_add_test(tc, test_less_prefers_resting);
    tcase_add_test(tc, test_pause_stress);
    tcase_add_test(tc, test_set_limits);
    tcase_add_test(tc, test_set_limits_builder_error);
    suite_add_tcase(s, tc);
    return s;
}
