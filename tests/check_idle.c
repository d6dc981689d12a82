/*
 * Tests of the idle outcome: WORKERS_EIDLE is no error (stop_on_errors,
 * retry, the error table), and the idle wait middleware pauses after an
 * idle run only, a pause that a cancel ends at once.
 */
#include "internal.h"
#include "testutil.h"

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

/* The idle wait pauses after an idle run only, and a cancel (less, close)
 * ends the pause at once: an hour-long pause does not hold the close. */
static int
result_job(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    return *(int *)arg;
}

START_TEST(idle_wait_pauses)
{
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    int result = 0;
    workers_job job = workers_job_func(result_job, &result);
    workers_middleware mw = workers_idle_wait(3600 * SEC);
    ck_assert_int_eq(workers_wrap(&job, &mw, 1), 0);
    uint64_t waits = atomic_load(&ctx->waits);
    ck_assert_int_eq(job.fn(ctx, job.arg), 0); /* no pause */
    result = WORKERS_EJOB;
    ck_assert_int_eq(job.fn(ctx, job.arg), WORKERS_EJOB);
    ck_assert_uint_eq(atomic_load(&ctx->waits), waits);
    workers_ctx_cancel(ctx);
    result = WORKERS_EIDLE;
    ck_assert_int_eq(job.fn(ctx, job.arg), WORKERS_EIDLE);
    ck_assert_uint_eq(atomic_load(&ctx->waits), waits + 1);
    workers_job_free(&job);
    workers_ctx_free(ctx);

    atomic_int runs = 0;
    workers_config cfg = {.initial = 3};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, &mw, 1), 0);
    workers_job idle = workers_job_func(idle_job, &runs);
    ck_assert_int_eq(workers_pool_start(pool, &idle), 0);
    /* Each worker's first run, then its hour-long pause. */
    ck_assert(
        tu_wait_until(ran_enough, &(struct ran){&runs, 3}, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_less(pool), 0);
    ck_assert_int_eq(workers_pool_close_timeout(pool, 10 * SEC), 0);
    ck_assert_int_eq(atomic_load(&runs), 3);
    workers_pool_free(pool);
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
    tcase_add_test(tc, idle_wait_pauses);
    suite_add_tcase(s, tc);
    return s;
}
