/*
 * Tests of the idle outcome: WORKERS_EIDLE is no error (stop_on_errors,
 * retry, the error table), and the pool's idle wait rests a worker after an
 * idle run only, on the resting list: less takes it before a busy worker,
 * less and close end it at once, it can be changed at run time, and no run
 * is timed across it.
 */
#include "coretest.h"
#include "testutil.h"
#include "workers.h"

#include <check.h>
#include <errno.h>
#include <stdatomic.h>

#define SEC 1000000000ull

static int
idle_job(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    atomic_fetch_add((atomic_int *)arg, 1);
    return WORKERS_EIDLE;
}

struct ran {
    atomic_int *runs;
    int at_least;
};

static bool
ran_enough(void *arg)
{
    const struct ran *r = arg;
    return atomic_load(r->runs) >= r->at_least;
}

START_TEST(eidle_is_no_error)
{
    ck_assert_str_eq(workers_strerror(WORKERS_EIDLE), "no work");
    ck_assert_str_eq(workers_err_name(WORKERS_EIDLE), "WORKERS_EIDLE");
    ck_assert(!workers_result_is_error(0));
    ck_assert(!workers_result_is_error(WORKERS_EIDLE));
    ck_assert(!workers_result_is_error(WORKERS_ECANCELED));
    ck_assert(!workers_result_is_error(-ECANCELED));
    ck_assert(workers_result_is_error(WORKERS_EJOB));
    ck_assert(workers_result_is_error(1));

    /* stop_on_errors does not stop on it. */
    atomic_int runs = 0;
    workers_config cfg = {.initial = 2, .stop_on_errors = true};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, NULL, 0), 0);
    workers_job job = workers_job_func(idle_job, &runs);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    ck_assert(
        tu_wait_until(ran_enough, &(struct ran){&runs, 100}, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_more(pool), 0);
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    workers_pool_free(pool);

    /* retry does not retry it. */
    atomic_int calls = 0;
    workers_job one = workers_job_func(idle_job, &calls);
    workers_middleware mw = workers_retry(5);
    ck_assert_int_eq(workers_wrap(&one, &mw, 1), 0);
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    ck_assert_int_eq(one.fn(ctx, one.arg), WORKERS_EIDLE);
    ck_assert_int_eq(atomic_load(&calls), 1);
    workers_job_free(&one);
    workers_ctx_free(ctx);
}
END_TEST

/* A pool of `initial` workers with an hour-long idle wait, started on fn. */
static workers_pool *
resting_pool(int initial, workers_job_fn fn, void *arg)
{
    workers_config cfg = {.initial = initial, .idle_wait_ns = 3600 * SEC};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, NULL, 0), 0);
    workers_job job = workers_job_func(fn, arg);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    return pool;
}

/* The idle wait: each worker rests after an idle run, on the pool's
 * resting list; less and close end the rest at once, without another run:
 * an hour-long wait does not hold the close. */
START_TEST(idle_wait_rests)
{
    atomic_int runs = 0;
    workers_pool *pool = resting_pool(3, idle_job, &runs);
    ct_wait_resting(pool, 3);
    ck_assert_int_eq(atomic_load(&runs), 3);
    workers_pool_status st = ct_status(pool);
    ck_assert_uint_eq(st.idle_wait_ns, 3600 * SEC);
    ck_assert(!st.paused);
    ck_assert_int_eq(workers_pool_less(pool), 0);
    st = ct_status(pool);
    ck_assert_int_eq(st.current, 2);
    ck_assert_int_eq(st.resting, 2);
    ck_assert_int_eq(workers_pool_close_timeout(pool, 10 * SEC), 0);
    ck_assert_int_eq(atomic_load(&runs), 3);
    workers_pool_free(pool);
}
END_TEST

/* One worker's run waits for work (blocks until cancelled, then returns 0),
 * the others find none. */
struct roles {
    atomic_int busy_wanted; /* the next run takes the busy role */
    atomic_int busy_in, busy_out, idle_runs;
    workers_ctx *busy_ctx;
};

static int
roles_job(workers_ctx *ctx, void *arg)
{
    struct roles *r = arg;
    if (atomic_exchange(&r->busy_wanted, 0)) {
        r->busy_ctx = ctx;
        atomic_store(&r->busy_in, 1);
        while (workers_ctx_wait(ctx, 3600 * SEC) == 0)
            ;
        atomic_store(&r->busy_out, 1);
        return 0;
    }
    atomic_fetch_add(&r->idle_runs, 1);
    return WORKERS_EIDLE;
}

/* Issue 12: never remove a worker in a busy run if an idle one can go. The
 * busy worker is the most recent, which less() would take if the idle one
 * were inside a run; it rests, so less() takes it instead. */
START_TEST(idle_wait_less_spares_busy)
{
    struct roles r = {0};
    workers_pool *pool = resting_pool(1, roles_job, &r);
    ct_wait_resting(pool, 1);
    atomic_store(&r.busy_wanted, 1);
    ck_assert_int_eq(workers_pool_more(pool), 0);
    ck_assert(tu_wait_until(ct_flag_set, &r.busy_in, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_less(pool), 0);
    /* less() cancels under the pool's lock: a wrong pick shows at once. */
    ck_assert(!workers_ctx_done(r.busy_ctx));
    workers_pool_status st = ct_status(pool);
    ck_assert_int_eq(st.current, 1);
    ck_assert_int_eq(st.resting, 0);
    ck_assert_int_eq(workers_pool_close_timeout(pool, 10 * SEC), 0);
    ck_assert_int_eq(atomic_load(&r.busy_out), 1);
    ck_assert_int_eq(atomic_load(&r.idle_runs), 1);
    workers_pool_free(pool);
}
END_TEST

/* set_idle_wait: before start and at run time; a shorter wait lets the
 * resting workers go at once; refused once closed. */
START_TEST(idle_wait_set_at_run_time)
{
    atomic_int runs = 0;
    workers_config cfg = {.initial = 2};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, NULL, 0), 0);
    ck_assert_int_eq(workers_pool_set_idle_wait(pool, 3600 * SEC), 0);
    workers_job idle = workers_job_func(idle_job, &runs);
    ck_assert_int_eq(workers_pool_start(pool, &idle), 0);
    ct_wait_resting(pool, 2);
    ck_assert_int_eq(atomic_load(&runs), 2);

    ck_assert_int_eq(workers_pool_set_idle_wait(pool, 0), 0);
    ck_assert_uint_eq(ct_status(pool).idle_wait_ns, 0);
    ck_assert(
        tu_wait_until(ran_enough, &(struct ran){&runs, 100}, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_set_idle_wait(pool, 3600 * SEC), 0);
    ct_wait_resting(pool, 2);
    int settled = atomic_load(&runs);
    ck_assert_int_eq(ct_status(pool).resting, 2);
    ck_assert_int_eq(atomic_load(&runs), settled);

    ck_assert_int_eq(workers_pool_close_timeout(pool, 10 * SEC), 0);
    ck_assert_int_eq(workers_pool_set_idle_wait(pool, 0), WORKERS_ECLOSED);
    workers_pool_free(pool);
}
END_TEST

/* A rest (the idle wait, or a pause) falls between two runs: the elapsed
 * middleware (and so the autoscaler, which times runs the same way) counts
 * it in no run. The fake clock moves an hour during each rest only, so
 * every run takes no time. */
static _Atomic uint64_t fake_now = SEC;

static uint64_t
fake_clock(void *arg)
{
    (void)arg;
    return atomic_load(&fake_now);
}

START_TEST(rest_is_no_run_time)
{
    workers_elapsed *e;
    ck_assert_int_eq(workers_elapsed_new(&e, fake_clock, NULL), 0);
    workers_middleware mw = workers_elapsed_middleware(e);
    workers_config cfg = {.initial = 1, .idle_wait_ns = 3600 * SEC};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, &mw, 1), 0);
    ct_rc t = {.rc = WORKERS_EIDLE};
    workers_job job = workers_job_func(ct_rc_job, &t);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);

    ct_wait_resting(pool, 1); /* the idle wait */
    atomic_fetch_add(&fake_now, 3600 * SEC);
    /* Runs that did work from now on: no rest after them. A resume lets
     * the resting worker go (the pause in between changes nothing). */
    atomic_store(&t.rc, 0);
    ck_assert_int_eq(workers_pool_pause(pool), 0);
    ck_assert_int_eq(workers_pool_resume(pool), 0);
    ck_assert(
        tu_wait_until(ran_enough, &(struct ran){&t.runs, 10}, TU_DEADLINE_MS));

    ck_assert_int_eq(workers_pool_pause(pool), 0);
    ct_wait_resting(pool, 1);
    atomic_fetch_add(&fake_now, 3600 * SEC);
    int before = atomic_load(&t.runs);
    ck_assert_int_eq(workers_pool_resume(pool), 0);
    ck_assert(tu_wait_until(ran_enough, &(struct ran){&t.runs, before + 10},
                            TU_DEADLINE_MS));

    ck_assert_int_eq(workers_pool_close_timeout(pool, 10 * SEC), 0);
    workers_pool_free(pool);
    workers_elapsed_stats st;
    workers_elapsed_stats_get(e, &st);
    ck_assert_uint_ge(st.counts.finished, 20);
    ck_assert_uint_eq(st.counts.idle, 1);
    ck_assert_uint_eq(st.total_ns, 0);
    ck_assert_uint_eq(st.busy_ns, 0);
    workers_elapsed_free(e);
}
END_TEST

Suite *make_idle_suite(void);

Suite *
make_idle_suite(void)
{
    Suite *s = suite_create("idle");
    TCase *tc = tcase_create("idle");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, eidle_is_no_error);
    tcase_add_test(tc, idle_wait_rests);
    tcase_add_test(tc, idle_wait_less_spares_busy);
    tcase_add_test(tc, idle_wait_set_at_run_time);
    tcase_add_test(tc, rest_is_no_run_time);
    suite_add_tcase(s, tc);
    return s;
}
