/*
 * Who owns the job when start or run fails (issue 13, item 3): a failed
 * start leaves the job or builder with the caller, untouched, and no worker
 * still runs a job it shares; run only ever borrows. Each job's arg is
 * allocated and its free releases it, so `make check-asan` turns a double
 * free or a use after free into a failure; counts check the rest.
 */
#include "coretest.h"
#include "testutil.h"
#include "workers.h"

#include <check.h>
#include <stdlib.h>

#define SEC 1000000000ull

/* What the jobs report; the job's arg, allocated, only points here. */
struct report {
    atomic_int runs;   /* runs begun */
    atomic_int inside; /* runs in progress */
    atomic_int frees;  /* calls of the job's free */
    int result;        /* what a run returns once its ctx is cancelled */
};

struct token {
    struct report *r;
};

static int
token_run(workers_ctx *ctx, void *arg)
{
    struct token *t = arg;
    atomic_fetch_add(&t->r->inside, 1);
    atomic_fetch_add(&t->r->runs, 1);
    int rc = t->r->result;
    if (rc == 0)
        rc = workers_ctx_wait(ctx, 60 * SEC);
    atomic_fetch_sub(&t->r->inside, 1);
    return rc;
}

static void
token_free(void *arg)
{
    struct token *t = arg;
    atomic_fetch_add(&t->r->frees, 1);
    free(t);
}

static workers_job
token_job(struct report *r)
{
    struct token *t = malloc(sizeof(*t));
    ck_assert_ptr_nonnull(t);
    t->r = r;
    workers_job job = {token_run, t, token_free};
    return job;
}

static workers_pool *
new_pool(int initial, bool stop_on_errors, const workers_middleware *mws,
         size_t nmws)
{
    workers_config cfg = {.initial = initial, .stop_on_errors = stop_on_errors};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, mws, nmws), 0);
    return pool;
}

static bool
has_run(void *arg)
{
    return atomic_load(&((struct report *)arg)->runs) > 0;
}

/* A middleware that leaves the first job as it is and refuses the second
 * with -77, once the first worker's run has begun: a start that fails with
 * a worker running. */
struct refuse_second {
    int calls; /* wrap is called by start's thread only */
    struct report *r;
};

static int
refuse_second_wrap(const workers_middleware *mw, workers_job *job)
{
    struct refuse_second *rs = mw->data;
    (void)job;
    if (++rs->calls < 2)
        return 0;
    ck_assert(tu_wait_until(has_run, rs->r, TU_DEADLINE_MS));
    return -77;
}

/* Success: the pool owns the job and frees it once, in workers_pool_free. */
START_TEST(test_start_success_pool_frees)
{
    struct report r = {0};
    workers_pool *pool = new_pool(2, false, NULL, 0);
    workers_job job = token_job(&r);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    ck_assert(tu_wait_until(has_run, &r, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    ck_assert_int_eq(atomic_load(&r.frees), 0);
    workers_pool_free(pool);
    ck_assert_int_eq(atomic_load(&r.frees), 1);
}
END_TEST

/* Refused (ESTARTED, ECLOSED): the job is the caller's, who frees it. */
START_TEST(test_start_refused_caller_keeps)
{
    struct report r = {0}, other = {0};
    workers_pool *pool = new_pool(1, false, NULL, 0);
    workers_job job = token_job(&r), again = token_job(&other);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    ck_assert_int_eq(workers_pool_start(pool, &again), WORKERS_ESTARTED);
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    ck_assert_int_eq(workers_pool_start(pool, &again), WORKERS_ECLOSED);
    ck_assert_int_eq(atomic_load(&other.frees), 0);
    workers_pool_free(pool);
    ck_assert_int_eq(atomic_load(&other.frees), 0);
    ck_assert_int_eq(atomic_load(&other.runs), 0);
    workers_job_free(&again);
    ck_assert_int_eq(atomic_load(&other.frees), 1);
    ck_assert_int_eq(atomic_load(&r.frees), 1);
}
END_TEST

/* A start that fails with a worker running its first run: that run has
 * returned when start returns, so the caller may free the job at once
 * (ASan sees any later use), and the pool never frees it. */
START_TEST(test_start_fails_midway_caller_keeps)
{
    struct report r = {0};
    struct refuse_second rs = {0, &r};
    workers_middleware mw = {refuse_second_wrap, &rs, 0};
    workers_pool *pool = new_pool(3, false, &mw, 1);
    workers_job job = token_job(&r);
    ck_assert_int_eq(workers_pool_start(pool, &job), -77);
    ck_assert_int_eq(atomic_load(&r.inside), 0);
    ck_assert_int_eq(atomic_load(&r.runs), 1);
    ck_assert_int_eq(atomic_load(&r.frees), 0);
    workers_job_free(&job);
    ck_assert_int_eq(workers_pool_more(pool), WORKERS_ECLOSED);
    workers_pool_free(pool);
    ck_assert_int_eq(atomic_load(&r.frees), 1);
}
END_TEST

/* Go's tests run a pool again with the same job after an error: run only
 * borrows, so neither call nor workers_pool_free frees it, and another
 * pool may run it again. */
START_TEST(test_run_again_after_error)
{
    struct report r = {.result = 42};
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    workers_pool *pool = new_pool(2, true, NULL, 0);
    workers_job job = token_job(&r);
    ck_assert_int_eq(workers_pool_run(pool, &job, ctx), 42);
    ck_assert_int_eq(atomic_load(&r.inside), 0);
    ck_assert_int_eq(workers_pool_run(pool, &job, ctx), WORKERS_ECLOSED);
    workers_pool_free(pool);
    ck_assert_int_eq(atomic_load(&r.frees), 0);

    /* The same job in a second pool, stopped by its context. */
    r.result = 0;
    int before = atomic_load(&r.runs);
    pool = new_pool(1, true, NULL, 0);
    workers_ctx_cancel(ctx);
    ck_assert_int_eq(workers_pool_run(pool, &job, ctx), 0);
    ck_assert_int_eq(atomic_load(&r.inside), 0);
    ck_assert_int_ge(atomic_load(&r.runs), before);
    workers_pool_free(pool);
    ck_assert_int_eq(atomic_load(&r.frees), 0);
    workers_job_free(&job);
    ck_assert_int_eq(atomic_load(&r.frees), 1);
    workers_ctx_free(ctx);
}
END_TEST

/* run that fails midway returns only once no worker runs the job. */
START_TEST(test_run_fails_midway_caller_keeps)
{
    struct report r = {0};
    struct refuse_second rs = {0, &r};
    workers_middleware mw = {refuse_second_wrap, &rs, 0};
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    workers_pool *pool = new_pool(3, false, &mw, 1);
    workers_job job = token_job(&r);
    ck_assert_int_eq(workers_pool_run(pool, &job, ctx), -77);
    ck_assert_int_eq(atomic_load(&r.inside), 0);
    workers_job_free(&job);
    workers_pool_free(pool);
    ck_assert_int_eq(atomic_load(&r.frees), 1);
    workers_ctx_free(ctx);
}
END_TEST

/* Builders: the pool frees one given to a successful start, never one
 * that start refused or that run borrowed. */
struct counted_builder {
    struct report r;
    atomic_int builder_frees;
};

static int
counted_new_job(void *arg, workers_job *out)
{
    *out = token_job(&((struct counted_builder *)arg)->r);
    return 0;
}

static void
counted_builder_free(void *arg)
{
    struct counted_builder *b = arg;
    atomic_fetch_add(&b->builder_frees, 1);
}

START_TEST(test_builder_ownership)
{
    struct counted_builder b = {0};
    workers_builder builder = {counted_new_job, &b, counted_builder_free};

    workers_pool *pool = new_pool(2, false, NULL, 0);
    ck_assert_int_eq(workers_pool_start_with_builder(pool, &builder), 0);
    ck_assert_int_eq(workers_pool_start_with_builder(pool, &builder),
                     WORKERS_ESTARTED);
    ck_assert_int_eq(atomic_load(&b.builder_frees), 0);
    workers_pool_free(pool);
    ck_assert_int_eq(atomic_load(&b.builder_frees), 1);
    ck_assert_int_eq(atomic_load(&b.r.frees), 2); /* the workers' jobs */

    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    workers_ctx_cancel(ctx);
    pool = new_pool(2, false, NULL, 0);
    ck_assert_int_eq(workers_pool_run_with_builder(pool, &builder, ctx), 0);
    ck_assert_int_eq(atomic_load(&b.r.inside), 0);
    ck_assert_int_eq(atomic_load(&b.r.frees), 4);
    ck_assert_int_eq(workers_pool_run_with_builder(pool, &builder, ctx),
                     WORKERS_ECLOSED);
    workers_pool_free(pool);
    ck_assert_int_eq(atomic_load(&b.builder_frees), 1);
    workers_ctx_free(ctx);
}
END_TEST

Suite *make_ownership_suite(void);

Suite *
make_ownership_suite(void)
{
    Suite *s = suite_create("ownership");
    TCase *tc = tcase_create("ownership");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_start_success_pool_frees);
    tcase_add_test(tc, test_start_refused_caller_keeps);
    tcase_add_test(tc, test_start_fails_midway_caller_keeps);
    tcase_add_test(tc, test_run_again_after_error);
    tcase_add_test(tc, test_run_fails_midway_caller_keeps);
    tcase_add_test(tc, test_builder_ownership);
    suite_add_tcase(s, tc);
    return s;
}
