/*
 * How pools end (issue 2, rules 3, 5, 6): run until its context is
 * cancelled, stop_on_errors, close with a deadline or a context, close of
 * removed workers still running, and the destructor after a timed-out close.
 */
#include "coretest.h"
#include "testutil.h"
#include "workers.h"

#include <check.h>
#include <errno.h>

#define MS 1000000ull
#define SEC 1000000000ull

static atomic_int frees;

static void
count_free(void *arg)
{
    (void)arg;
    atomic_fetch_add(&frees, 1);
}

static bool
total_at_least(ct_probe *p, int n)
{
    for (unsigned ms = 0; ms < TU_DEADLINE_MS; ms++) {
        if (atomic_load(&p->total) >= n)
            return true;
        tu_sleep_ms(1);
    }
    return false;
}

static workers_pool *
new_pool(int initial, bool stop_on_errors)
{
    workers_config cfg = {.initial = initial, .stop_on_errors = stop_on_errors};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, NULL, 0), 0);
    return pool;
}

/* Runs a pool call on another thread so the test can watch it block. */
struct call {
    workers_pool *pool;
    workers_ctx *ctx;
    const workers_job *job;
    int rc;
    atomic_int done;
    pthread_t th;
};

static void *
run_main(void *arg)
{
    struct call *c = arg;
    c->rc = workers_pool_run(c->pool, c->job, c->ctx);
    atomic_store(&c->done, 1);
    return NULL;
}

static void *
close_main(void *arg)
{
    struct call *c = arg;
    c->rc = workers_pool_close(c->pool, c->ctx);
    atomic_store(&c->done, 1);
    return NULL;
}

static void *
free_main(void *arg)
{
    struct call *c = arg;
    workers_pool_free(c->pool);
    atomic_store(&c->done, 1);
    return NULL;
}

static void
call_start(struct call *c, void *(*fn)(void *))
{
    ck_assert_int_eq(pthread_create(&c->th, NULL, fn, c), 0);
}

/* A call that must still block: the only check with a fixed wait, and it
 * can only err towards passing on a slow machine, never fail wrongly. */
static void
call_still_blocked(struct call *c)
{
    tu_sleep_ms(50);
    ck_assert_int_eq(atomic_load(&c->done), 0);
}

START_TEST(test_run_until_cancelled)
{
    atomic_store(&frees, 0);
    ct_probe p = {0};
    workers_job job = {ct_probe_job, &p, count_free};
    struct call c = {.pool = new_pool(2, false), .job = &job};
    ck_assert_int_eq(workers_ctx_new(&c.ctx), 0);
    call_start(&c, run_main);
    ck_assert(total_at_least(&p, 2));
    call_still_blocked(&c);
    workers_ctx_cancel(c.ctx);
    pthread_join(c.th, NULL);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(atomic_load(&p.stops[1]) + atomic_load(&p.stops[2]), 2);
    ck_assert_int_eq(workers_pool_current(c.pool), 0);
    /* A second run: pool closed. run only borrows jobs: neither is freed
     * by the pool (check_ownership.c tests this rule under ASan). */
    workers_job again = {ct_probe_job, &p, count_free};
    ck_assert_int_eq(workers_pool_run(c.pool, &again, c.ctx), WORKERS_ECLOSED);
    workers_pool_free(c.pool);
    ck_assert_int_eq(atomic_load(&frees), 0);
    workers_ctx_free(c.ctx);
}
END_TEST

/* Fails with 42 on the 50th run of the pool; the other runs succeed. */
static int
fail_at_50(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    return atomic_fetch_add((atomic_int *)arg, 1) == 49 ? 42 : 0;
}

START_TEST(test_run_returns_job_error)
{
    atomic_int runs = 0;
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    workers_pool *pool = new_pool(3, true);
    workers_job job = workers_job_func(fail_at_50, &runs);
    ck_assert_int_eq(workers_pool_run(pool, &job, ctx), 42);
    ck_assert_int_ge(atomic_load(&runs), 50);
    ck_assert(!workers_ctx_done(ctx));
    ck_assert_int_eq(workers_pool_close(pool, NULL), WORKERS_ECLOSED);
    workers_pool_free(pool);
    workers_ctx_free(ctx);
}
END_TEST

static int
always_42(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    atomic_fetch_add((atomic_int *)arg, 1);
    return 42;
}

/* After a stop, more and less fail with ECLOSED and close reports 42. */
START_TEST(test_stop_on_errors)
{
    atomic_int runs = 0;
    workers_pool *pool = new_pool(2, true);
    workers_job job = workers_job_func(always_42, &runs);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    for (unsigned ms = 0; !ct_pool_stopped(pool); ms++) {
        ck_assert_uint_lt(ms, TU_DEADLINE_MS);
        tu_sleep_ms(1);
    }
    ck_assert_int_eq(workers_pool_more(pool), WORKERS_ECLOSED);
    ck_assert_int_eq(workers_pool_less(pool), WORKERS_ECLOSED);
    ck_assert_int_eq(workers_pool_close(pool, NULL), 42);
    ck_assert_int_eq(workers_pool_close(pool, NULL), WORKERS_ECLOSED);
    /* Each worker stopped at its first error. */
    ck_assert_int_le(atomic_load(&runs), 2);
    workers_pool_free(pool);
}
END_TEST

/* ECANCELED never stops a pool; without stop_on_errors nothing does. */
static void
check_keeps_running(int rc, bool stop_on_errors)
{
    ct_rc f = {rc, 0};
    workers_pool *pool = new_pool(1, stop_on_errors);
    workers_job job = workers_job_func(ct_rc_job, &f);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    for (unsigned ms = 0; atomic_load(&f.runs) < 10000; ms++) {
        ck_assert_uint_lt(ms, TU_DEADLINE_MS);
        tu_sleep_ms(1);
    }
    ck_assert(!ct_pool_stopped(pool));
    ck_assert_int_eq(workers_pool_more(pool), 0);
    ck_assert_int_eq(workers_pool_current(pool), 2);
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    workers_pool_free(pool);
}

START_TEST(test_canceled_does_not_stop)
{
    check_keeps_running(WORKERS_ECANCELED, true);
}
END_TEST

START_TEST(test_errors_ignored_without_stop)
{
    check_keeps_running(7, false);
}
END_TEST

/* An error a run returns once close began is not the pool's: the close
 * caused it (README, "Coming from the Go package"). */
static int
fails_when_cancelled(workers_ctx *ctx, void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    workers_ctx_wait(ctx, 60 * SEC);
    return 42;
}

START_TEST(test_errors_after_close_not_reported)
{
    atomic_int runs = 0;
    workers_pool *pool = new_pool(2, true);
    workers_job job = workers_job_func(fails_when_cancelled, &runs);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    for (unsigned ms = 0; atomic_load(&runs) < 2; ms++) {
        ck_assert_uint_lt(ms, TU_DEADLINE_MS);
        tu_sleep_ms(1);
    }
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    ck_assert_int_eq(atomic_load(&runs), 2);
    workers_pool_free(pool);
}
END_TEST

/* Issue 13, item 4: -ECANCELED, the errno a C programmer reaches for, is a
 * cancellation as WORKERS_ECANCELED is. */
START_TEST(test_errno_canceled_does_not_stop)
{
    ck_assert(workers_is_canceled(WORKERS_ECANCELED));
    ck_assert(workers_is_canceled(-ECANCELED));
    ck_assert(!workers_is_canceled(0));
    ck_assert(!workers_is_canceled(ECANCELED));
    ck_assert(!workers_is_canceled(WORKERS_ETIMEDOUT));
    check_keeps_running(-ECANCELED, true);
}
END_TEST

/* A job whose worker 1..n blocks on the gate, ignoring cancellation, when
 * its id is in blocked_ids (a bit mask); the others wait for cancel. */
struct gated {
    ct_gate gate;
    unsigned blocked_ids;
    atomic_int finished;
    ct_probe probe;
};

static int
gated_job(workers_ctx *ctx, void *arg)
{
    struct gated *g = arg;
    if (g->blocked_ids & (1u << workers_ctx_worker_id(ctx))) {
        atomic_fetch_add(&g->probe.total, 1);
        ct_gate_pass(&g->gate);
        atomic_fetch_add(&g->finished, 1);
        return 0;
    }
    return ct_probe_job(ctx, &g->probe);
}

static void
gated_start(struct gated *g, workers_pool *pool, unsigned blocked_ids)
{
    ct_gate_init(&g->gate);
    g->blocked_ids = blocked_ids;
    atomic_store(&frees, 0);
    workers_job job = {gated_job, g, count_free};
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
}

static bool
gate_has_one(void *arg)
{
    return ct_gate_waiting(arg) == 1;
}

/* Rule 5: a 25 ms deadline passes while a job ignores cancellation; the
 * destructor then waits for that job. */
START_TEST(test_close_deadline_then_free_joins)
{
    struct gated g = {0};
    workers_pool *pool = new_pool(1, false);
    gated_start(&g, pool, 1u << 1);
    ck_assert(tu_wait_until(gate_has_one, &g.gate, TU_DEADLINE_MS));
    uint64_t t0 = tu_now_ms();
    ck_assert_int_eq(workers_pool_close_timeout(pool, 25 * MS),
                     WORKERS_ETIMEDOUT);
    uint64_t took = tu_now_ms() - t0;
    ck_assert_uint_ge(took, 25);
    ck_assert_uint_lt(took, TU_DEADLINE_MS);
    ck_assert_int_eq(workers_pool_close(pool, NULL), WORKERS_ECLOSED);
    ck_assert_int_eq(workers_pool_close_timeout(pool, SEC), WORKERS_ECLOSED);

    struct call c = {.pool = pool};
    call_start(&c, free_main);
    call_still_blocked(&c);
    ck_assert_int_eq(atomic_load(&frees), 0);
    ct_gate_open(&g.gate);
    pthread_join(c.th, NULL);
    ck_assert_int_eq(atomic_load(&g.finished), 1);
    ck_assert_int_eq(atomic_load(&frees), 1);
}
END_TEST

START_TEST(test_close_already_cancelled_ctx)
{
    ct_probe p = {0};
    workers_pool *pool = new_pool(2, false);
    workers_job job = workers_job_func(ct_probe_job, &p);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    workers_ctx_cancel(ctx);
    ck_assert_int_eq(workers_pool_close(pool, ctx), WORKERS_ECANCELED);
    ck_assert_int_eq(workers_pool_close(pool, NULL), WORKERS_ECLOSED);
    workers_pool_free(pool);
    ck_assert_int_eq(atomic_load(&p.stops[1]) + atomic_load(&p.stops[2]),
                     atomic_load(&p.total));
    workers_ctx_free(ctx);
}
END_TEST

/* A context cancelled while close waits for a blocked job. */
START_TEST(test_close_ctx_cancelled_while_waiting)
{
    struct gated g = {0};
    struct call c = {.pool = new_pool(1, false)};
    gated_start(&g, c.pool, 1u << 1);
    ck_assert(tu_wait_until(gate_has_one, &g.gate, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_ctx_new(&c.ctx), 0);
    call_start(&c, close_main);
    call_still_blocked(&c);
    workers_ctx_cancel(c.ctx);
    pthread_join(c.th, NULL);
    ck_assert_int_eq(c.rc, WORKERS_ECANCELED);
    ct_gate_open(&g.gate);
    workers_pool_free(c.pool);
    ck_assert_int_eq(atomic_load(&g.finished), 1);
    workers_ctx_free(c.ctx);
}
END_TEST

/* A live context: close returns 0 once the last job ends (the descriptor
 * path of the wait). */
START_TEST(test_close_with_live_ctx)
{
    struct gated g = {0};
    struct call c = {.pool = new_pool(1, false)};
    gated_start(&g, c.pool, 1u << 1);
    ck_assert(tu_wait_until(gate_has_one, &g.gate, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_ctx_new(&c.ctx), 0);
    call_start(&c, close_main);
    call_still_blocked(&c);
    ct_gate_open(&g.gate);
    pthread_join(c.th, NULL);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(atomic_load(&g.finished), 1);
    workers_pool_free(c.pool);
    workers_ctx_free(c.ctx);
}
END_TEST

static bool
first_stopped(void *arg)
{
    return atomic_load(&((ct_probe *)arg)->stops[1]) != 0;
}

/* Close waits for a removed worker still finishing its last run. */
START_TEST(test_close_waits_for_removed)
{
    struct gated g = {0};
    struct call c = {.pool = new_pool(2, false)};
    gated_start(&g, c.pool, 1u << 2);
    ck_assert(tu_wait_until(gate_has_one, &g.gate, TU_DEADLINE_MS));
    ck_assert(total_at_least(&g.probe, 2));
    ck_assert_int_eq(workers_pool_less(c.pool), 0); /* returns at once */
    ck_assert_int_eq(workers_pool_current(c.pool), 1);
    call_start(&c, close_main);
    /* The worker left running returns from its cancelled run (when it is
     * scheduled: no time is assumed), and close still waits. */
    ck_assert(tu_wait_until(first_stopped, &g.probe, TU_DEADLINE_MS));
    call_still_blocked(&c);
    ck_assert_int_eq(atomic_load(&g.probe.stops[1]), 1);
    ct_gate_open(&g.gate);
    pthread_join(c.th, NULL);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(atomic_load(&g.finished), 1);
    workers_pool_free(c.pool);
}
END_TEST

START_TEST(test_close_never_started)
{
    atomic_store(&frees, 0);
    ct_probe p = {0};
    workers_pool *pool = new_pool(0, false);
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    workers_job job = {ct_probe_job, &p, count_free};
    ck_assert_int_eq(workers_pool_start(pool, &job), WORKERS_ECLOSED);
    ck_assert_int_eq(atomic_load(&frees), 0); /* still the caller's */
    ck_assert_int_eq(workers_pool_more(pool), WORKERS_ECLOSED);
    ck_assert_int_eq(workers_pool_less(pool), WORKERS_ECLOSED);
    ck_assert_int_eq(workers_pool_close_timeout(pool, 0), WORKERS_ECLOSED);
    workers_pool_free(pool);
    ck_assert_int_eq(atomic_load(&p.total), 0);
}
END_TEST

/* Issue 13, item 1: as Go's Close, closing a pool never started returns 0
 * before it looks at its context, even one already cancelled, or a zero
 * timeout; the pool is closed all the same. */
START_TEST(test_close_never_started_cancelled_ctx)
{
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    workers_ctx_cancel(ctx);
    workers_pool *pool = new_pool(0, false);
    ck_assert_int_eq(workers_pool_close(pool, ctx), 0);
    ck_assert_int_eq(workers_pool_close(pool, ctx), WORKERS_ECLOSED);
    workers_job job = workers_job_func(ct_probe_job, NULL);
    ck_assert_int_eq(workers_pool_start(pool, &job), WORKERS_ECLOSED);
    workers_pool_free(pool);

    pool = new_pool(0, false);
    ck_assert_int_eq(workers_pool_close_timeout(pool, 0), 0);
    ck_assert_int_eq(workers_pool_more(pool), WORKERS_ECLOSED);
    workers_pool_free(pool);
    workers_ctx_free(ctx);
}
END_TEST

/* The destructor alone closes a running pool and frees its job. */
START_TEST(test_free_running_pool)
{
    atomic_store(&frees, 0);
    ct_probe p = {0};
    workers_pool *pool = new_pool(3, false);
    workers_job job = {ct_probe_job, &p, count_free};
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    ck_assert(total_at_least(&p, 3));
    workers_pool_free(pool);
    ck_assert_int_eq(atomic_load(&frees), 1);
    ck_assert_int_eq(atomic_load(&p.stops[1]) + atomic_load(&p.stops[2]) +
                         atomic_load(&p.stops[3]),
                     3);
}
END_TEST

/* A builder whose second call blocks on a gate; its jobs wait to be
 * cancelled and count their frees. */
struct slow_builder {
    int calls; /* the builder's own: never called concurrently */
    ct_gate gate;
    atomic_int freed;
};

static int
slow_run(workers_ctx *ctx, void *arg)
{
    (void)arg;
    return workers_ctx_wait(ctx, UINT64_MAX);
}

static void
slow_free(void *arg)
{
    atomic_fetch_add(&((struct slow_builder *)arg)->freed, 1);
}

static int
slow_new(void *arg, workers_job *out)
{
    struct slow_builder *b = arg;
    if (++b->calls == 2)
        ct_gate_pass(&b->gate);
    *out = (workers_job){slow_run, b, slow_free};
    return 0;
}

static void *
more_main(void *arg)
{
    struct call *c = arg;
    c->rc = workers_pool_more(c->pool);
    atomic_store(&c->done, 1);
    return NULL;
}

/* Issue 14: a close waits for a more() whose builder is running, and
 * returns only once the job that more() built has been freed. */
START_TEST(test_close_waits_for_more_in_flight)
{
    struct slow_builder b = {0};
    ct_gate_init(&b.gate);
    workers_pool *pool = new_pool(1, false);
    workers_builder builder = {slow_new, &b, NULL};
    ck_assert_int_eq(workers_pool_start_with_builder(pool, &builder), 0);
    struct call more = {.pool = pool}, close = {.pool = pool};
    call_start(&more, more_main);
    ck_assert(tu_wait_until(gate_has_one, &b.gate, TU_DEADLINE_MS));
    call_start(&close, close_main);
    call_still_blocked(&close);
    ct_gate_open(&b.gate);
    pthread_join(close.th, NULL);
    ck_assert_int_eq(close.rc, 0);
    ck_assert_int_eq(atomic_load(&b.freed), 2);
    pthread_join(more.th, NULL);
    ck_assert_int_eq(more.rc, WORKERS_ECLOSED);
    workers_pool_free(pool);
}
END_TEST

static void *
wait_main(void *arg)
{
    struct call *c = arg;
    c->rc = workers_pool_wait(c->pool, c->ctx);
    atomic_store(&c->done, 1);
    return NULL;
}

/* Issue 14: after a close that timed out, wait waits again, with a
 * deadline or a context, as often as asked. */
START_TEST(test_wait_after_timed_out_close)
{
    struct gated g = {0};
    workers_pool *pool = new_pool(1, false);
    gated_start(&g, pool, 1u << 1);
    ck_assert(tu_wait_until(gate_has_one, &g.gate, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_close_timeout(pool, 10 * MS),
                     WORKERS_ETIMEDOUT);
    ck_assert_int_eq(workers_pool_close(pool, NULL), WORKERS_ECLOSED);
    uint64_t t0 = tu_now_ms();
    ck_assert_int_eq(workers_pool_wait_timeout(pool, 25 * MS),
                     WORKERS_ETIMEDOUT);
    ck_assert_uint_ge(tu_now_ms() - t0, 25);
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    workers_ctx_cancel(ctx);
    ck_assert_int_eq(workers_pool_wait(pool, ctx), WORKERS_ECANCELED);
    workers_ctx_free(ctx);

    struct call w = {.pool = pool};
    call_start(&w, wait_main);
    call_still_blocked(&w);
    ct_gate_open(&g.gate);
    pthread_join(w.th, NULL);
    ck_assert_int_eq(w.rc, 0);
    ck_assert_int_eq(atomic_load(&g.finished), 1);
    ck_assert_int_eq(workers_pool_wait(pool, NULL), 0);
    ck_assert_int_eq(workers_pool_wait_timeout(pool, 0), 0);
    workers_pool_free(pool);
}
END_TEST

/* wait on a pool still open waits for its close, and returns the error
 * that stopped it, as close does. */
START_TEST(test_wait_for_close_and_error)
{
    ct_probe p = {0};
    struct call w = {.pool = new_pool(2, false)};
    workers_job job = workers_job_func(ct_probe_job, &p);
    ck_assert_int_eq(workers_pool_start(w.pool, &job), 0);
    call_start(&w, wait_main);
    call_still_blocked(&w);
    ck_assert_int_eq(workers_pool_close(w.pool, NULL), 0);
    pthread_join(w.th, NULL);
    ck_assert_int_eq(w.rc, 0);
    workers_pool_free(w.pool);

    atomic_int runs = 0;
    workers_pool *pool = new_pool(2, true);
    workers_job fail = workers_job_func(always_42, &runs);
    ck_assert_int_eq(workers_pool_start(pool, &fail), 0);
    for (unsigned ms = 0; !ct_pool_stopped(pool); ms++) {
        ck_assert_uint_lt(ms, TU_DEADLINE_MS);
        tu_sleep_ms(1);
    }
    ck_assert_int_eq(workers_pool_close(pool, NULL), 42);
    ck_assert_int_eq(workers_pool_wait(pool, NULL), 42);
    workers_pool_free(pool);
}
END_TEST

/* What the header says of a job that closes its own pool: close returns
 * at its deadline, since it waits for the calling run too; the pool is
 * closed and wait then returns once that run has returned. */
struct self_close {
    workers_pool *pool;
    atomic_int rc, calls;
};

static int
self_close_job(workers_ctx *ctx, void *arg)
{
    struct self_close *sc = arg;
    if (atomic_fetch_add(&sc->calls, 1) == 0)
        atomic_store(&sc->rc, workers_pool_close_timeout(sc->pool, 10 * MS));
    return workers_ctx_wait(ctx, UINT64_MAX);
}

START_TEST(test_job_closes_own_pool)
{
    struct self_close sc = {.pool = new_pool(1, false), .rc = 1};
    workers_job job = workers_job_func(self_close_job, &sc);
    ck_assert_int_eq(workers_pool_start(sc.pool, &job), 0);
    ck_assert_int_eq(workers_pool_wait(sc.pool, NULL), 0);
    ck_assert_int_eq(atomic_load(&sc.rc), WORKERS_ETIMEDOUT);
    ck_assert_int_eq(workers_pool_more(sc.pool), WORKERS_ECLOSED);
    workers_pool_free(sc.pool);
}
END_TEST

Suite *make_close_suite(void);

Suite *
make_close_suite(void)
{
    Suite *s = suite_create("close");
    TCase *tc = tcase_create("close");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_run_until_cancelled);
    tcase_add_test(tc, test_run_returns_job_error);
    tcase_add_test(tc, test_stop_on_errors);
    tcase_add_test(tc, test_canceled_does_not_stop);
    tcase_add_test(tc, test_errors_ignored_without_stop);
    tcase_add_test(tc, test_errno_canceled_does_not_stop);
    tcase_add_test(tc, test_errors_after_close_not_reported);
    tcase_add_test(tc, test_close_deadline_then_free_joins);
    tcase_add_test(tc, test_close_already_cancelled_ctx);
    tcase_add_test(tc, test_close_ctx_cancelled_while_waiting);
    tcase_add_test(tc, test_close_with_live_ctx);
    tcase_add_test(tc, test_close_waits_for_removed);
    tcase_add_test(tc, test_close_never_started);
    tcase_add_test(tc, test_close_never_started_cancelled_ctx);
    tcase_add_test(tc, test_free_running_pool);
    tcase_add_test(tc, test_close_waits_for_more_in_flight);
    tcase_add_test(tc, test_wait_after_timed_out_close);
    tcase_add_test(tc, test_wait_for_close_and_error);
    tcase_add_test(tc, test_job_closes_own_pool);
    suite_add_tcase(s, tc);
    return s;
}
