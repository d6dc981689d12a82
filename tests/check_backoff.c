/*
 * ErrorBackoff (cmd/workersd/backoff.c): the middleware alone, on a context
 * the test owns, then the daemon with a job that always fails. Pauses are
 * seen through ctx->waits (each pause is one workers_ctx_wait) and through
 * lower bounds on time, which a loaded machine can only lengthen.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "daemonutil.h"
#include "internal.h"
#include "testutil.h"
#include "workersd.h"

#define MS 1000000ull

struct script {
    int calls;
    int result; /* what the next run returns */
};

static int
script_run(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    struct script *s = arg;
    s->calls++;
    return s->result;
}

static workers_job
wrapped(const wd_config *cfg, struct script *s)
{
    workers_job job = workers_job_func(script_run, s);
    workers_middleware mw = wd_backoff(cfg);
    ck_assert_int_eq(workers_wrap(&job, &mw, 1), 0);
    return job;
}

/* One run: returns its result and how long the run took, in ns; *paused
 * says whether it waited first. */
static int
timed_run(workers_job *job, workers_ctx *ctx, uint64_t *took, bool *paused)
{
    uint64_t waits = atomic_load(&ctx->waits);
    uint64_t t0 = tu_now_ms();
    int rc = job->fn(ctx, job->arg);
    *took = (tu_now_ms() - t0) * MS;
    *paused = atomic_load(&ctx->waits) != waits;
    return rc;
}

START_TEST(test_doubles_then_resets)
{
    wd_config cfg = {.backoff = {4 * MS, 32 * MS}};
    struct script s = {0, -5};
    workers_job job = wrapped(&cfg, &s);
    workers_ctx *ctx;
    uint64_t took;
    bool paused;

    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    /* The failure is returned at once: no pause before the first run. */
    ck_assert_int_eq(timed_run(&job, ctx, &took, &paused), -5);
    ck_assert(!paused);
    /* Spans 4, 8, 16, 32, 32 ms: each pause is at least half the span. */
    const uint64_t spans[] = {4, 8, 16, 32, 32};
    for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++) {
        ck_assert_int_eq(timed_run(&job, ctx, &took, &paused), -5);
        ck_assert(paused);
        ck_assert_uint_ge(took + MS, spans[i] * MS / 2);
    }
    /* A success is followed by no pause; cancellation is no failure. */
    s.result = 0;
    ck_assert_int_eq(timed_run(&job, ctx, &took, &paused), 0);
    ck_assert(paused); /* the pause owed by the last failure */
    ck_assert_int_eq(timed_run(&job, ctx, &took, &paused), 0);
    ck_assert(!paused);
    s.result = WORKERS_ECANCELED;
    ck_assert_int_eq(timed_run(&job, ctx, &took, &paused), WORKERS_ECANCELED);
    ck_assert_int_eq(timed_run(&job, ctx, &took, &paused), WORKERS_ECANCELED);
    ck_assert(!paused);
    ck_assert_int_eq(s.calls, 10);
    workers_job_free(&job);
    workers_ctx_free(ctx);
}
END_TEST

struct pending {
    workers_job *job;
    workers_ctx *ctx;
    int rc;
};

static void *
run_once(void *p)
{
    struct pending *r = p;
    r->rc = r->job->fn(r->ctx, r->job->arg);
    return NULL;
}

static bool
waits_reached(void *p)
{
    struct pending *r = p;
    return atomic_load(&r->ctx->waits) >= 1;
}

START_TEST(test_cancel_ends_the_pause)
{
    wd_config cfg = {.backoff = {3600000 * MS, 3600000 * MS}};
    struct script s = {0, 1};
    workers_job job = wrapped(&cfg, &s);
    struct pending r = {&job, NULL, 0};
    pthread_t th;

    ck_assert_int_eq(workers_ctx_new(&r.ctx), 0);
    ck_assert_int_eq(job.fn(r.ctx, job.arg), 1);
    ck_assert_int_eq(pthread_create(&th, NULL, run_once, &r), 0);
    ck_assert(tu_wait_until(waits_reached, &r, TU_DEADLINE_MS));
    workers_ctx_cancel(r.ctx);
    pthread_join(th, NULL);
    ck_assert_int_eq(r.rc, WORKERS_ECANCELED);
    ck_assert_int_eq(s.calls, 1); /* the job was not run again */
    workers_job_free(&job);
    workers_ctx_free(r.ctx);
}
END_TEST

/* workersd with `Command = false`: every run fails. Over any wall time T,
 * each worker runs at most 1 + T / (min / 2) times, however loaded the
 * machine; without the backoff it would be thousands. */
START_TEST(test_daemon_failing_job_backs_off)
{
    char *dir = du_mkdtemp();
    char *ini = du_write_str(dir, "pool.ini",
                             "[pool]\nInitial = 2\n"
                             "[job]\nCommand = false\n"
                             "ErrorBackoff = 100ms..1s\n");
    const char *args[] = {"-c", ini, NULL};
    char *err = du_fmt("%s/err", dir);
    pid_t pid = du_spawn(dir, args, NULL, false);

    ck_assert(du_wait_for(err, "exited with status 1", 2, TU_DEADLINE_MS));
    uint64_t t0 = tu_now_ms();
    int before = du_count_in(err, "exited with status 1");
    while (tu_now_ms() - t0 < 1000)
        tu_sleep_ms(50);
    int runs = du_count_in(err, "exited with status 1") - before;
    uint64_t t = tu_now_ms() - t0;
    ck_assert_int_le(runs, (int)(2 * (1 + t / 50)));
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    ck_assert_int_eq(du_wait(pid, TU_DEADLINE_MS), 0);
}
END_TEST

Suite *make_backoff_suite(void);

Suite *
make_backoff_suite(void)
{
    Suite *s = suite_create("backoff");
    TCase *tc = tcase_create("backoff");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_doubles_then_resets);
    tcase_add_test(tc, test_cancel_ends_the_pause);
    tcase_add_test(tc, test_daemon_failing_job_backs_off);
    suite_add_tcase(s, tc);
    return s;
}
