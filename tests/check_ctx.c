/*
 * Cancellation contexts (issue 2, rule 9): done, wait with timeout and early
 * return, the descriptor that becomes readable on cancel (also when made
 * after the cancel), and cancel from a signal handler.
 */
#include "coretest.h"
#include "testutil.h"
#include "workers.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#define MS 1000000ull

static bool
fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

START_TEST(test_new_is_live)
{
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    ck_assert(!workers_ctx_done(ctx));
    ck_assert_uint_eq(workers_ctx_worker_id(ctx), 0);
    workers_ctx_free(ctx);
    workers_ctx_free(NULL);
}
END_TEST

/* workers_ctx_new_for: a live context that carries a worker's id. */
struct idrec {
    atomic_uint seen[4];
};

static int
record_id_job(workers_ctx *ctx, void *arg)
{
    struct idrec *r = arg;
    workers_ctx *own;
    if (workers_ctx_new_for(&own, ctx) != 0)
        return -ENOMEM;
    unsigned id = workers_ctx_worker_id(own);
    bool live = !workers_ctx_done(own);
    workers_ctx_free(own);
    if (live && id >= 1 && id <= 3)
        atomic_store(&r->seen[id], id);
    return workers_ctx_wait(ctx, UINT64_MAX);
}

static bool
three_seen(void *arg)
{
    struct idrec *r = arg;
    return atomic_load(&r->seen[1]) == 1 && atomic_load(&r->seen[2]) == 2 &&
           atomic_load(&r->seen[3]) == 3;
}

START_TEST(test_new_for_carries_worker_id)
{
    workers_ctx *c;
    ck_assert_int_eq(workers_ctx_new_for(&c, NULL), 0);
    ck_assert_uint_eq(workers_ctx_worker_id(c), 0);
    workers_ctx_free(c);

    struct idrec r = {0};
    workers_config cfg = {.initial = 3};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, NULL, 0), 0);
    workers_job job = workers_job_func(record_id_job, &r);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    ck_assert(tu_wait_until(three_seen, &r, TU_DEADLINE_MS));
    workers_pool_free(pool);
}
END_TEST

START_TEST(test_cancel_is_idempotent)
{
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    workers_ctx_cancel(ctx);
    workers_ctx_cancel(ctx);
    ck_assert(workers_ctx_done(ctx));
    uint64_t t0 = tu_now_ms();
    ck_assert_int_eq(workers_ctx_wait(ctx, 10000 * MS), WORKERS_ECANCELED);
    ck_assert_int_eq(workers_ctx_wait(ctx, 0), WORKERS_ECANCELED);
    ck_assert_uint_lt(tu_now_ms() - t0, 1000);
    workers_ctx_free(ctx);
}
END_TEST

START_TEST(test_wait_times_out)
{
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    ck_assert_int_eq(workers_ctx_wait(ctx, 0), 0);
    uint64_t t0 = tu_now_ms();
    ck_assert_int_eq(workers_ctx_wait(ctx, 20 * MS), 0);
    ck_assert_uint_ge(tu_now_ms() - t0, 20);
    ck_assert(!workers_ctx_done(ctx));
    workers_ctx_free(ctx);
}
END_TEST

struct waiter {
    workers_ctx *ctx;
    atomic_int started;
    int rc;
    int fd; /* >= 0: poll it instead of wait */
    bool readable;
};

static void *
waiter_main(void *p)
{
    struct waiter *w = p;
    atomic_store(&w->started, 1);
    if (w->fd >= 0)
        w->readable = fd_readable(w->fd, TU_DEADLINE_MS);
    else
        w->rc = workers_ctx_wait(w->ctx, (uint64_t)TU_DEADLINE_MS * MS);
    return NULL;
}

/* A waiter on another thread: it must return on cancel, long before its
 * timeout, whether it already slept or not. */
static void
check_cross_thread(bool use_fd)
{
    struct waiter w = {0};
    ck_assert_int_eq(workers_ctx_new(&w.ctx), 0);
    w.fd = use_fd ? workers_ctx_fd(w.ctx) : -1;
    if (use_fd)
        ck_assert_int_ge(w.fd, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, waiter_main, &w), 0);
    ck_assert(tu_wait_until(ct_flag_set, &w.started, TU_DEADLINE_MS));
    uint64_t t0 = tu_now_ms();
    workers_ctx_cancel(w.ctx);
    pthread_join(th, NULL);
    ck_assert_uint_lt(tu_now_ms() - t0, TU_DEADLINE_MS / 2);
    if (use_fd)
        ck_assert(w.readable);
    else
        ck_assert_int_eq(w.rc, WORKERS_ECANCELED);
    workers_ctx_free(w.ctx);
}

START_TEST(test_wait_returns_early_on_cancel)
{
    check_cross_thread(false);
}
END_TEST

START_TEST(test_fd_wakes_poller)
{
    check_cross_thread(true);
}
END_TEST

START_TEST(test_fd_readable_after_cancel)
{
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    int fd = workers_ctx_fd(ctx);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(workers_ctx_fd(ctx), fd);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ck_assert(!fd_readable(fd, 0));
    workers_ctx_cancel(ctx);
    ck_assert(fd_readable(fd, 0));
    workers_ctx_free(ctx);
}
END_TEST

START_TEST(test_fd_made_after_cancel)
{
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    workers_ctx_cancel(ctx);
    int fd = workers_ctx_fd(ctx);
    ck_assert_int_ge(fd, 0);
    ck_assert(fd_readable(fd, 0));
    workers_ctx_free(ctx);
}
END_TEST

static workers_ctx *signal_ctx;

static void
on_signal(int sig)
{
    (void)sig;
    workers_ctx_cancel(signal_ctx);
}

/* A handler cancels the context another thread waits on (rule 9: cancel is
 * async-signal-safe), the way a SIGINT handler stops workers_pool_run. */
START_TEST(test_cancel_from_signal_handler)
{
    struct waiter w = {0};
    ck_assert_int_eq(workers_ctx_new(&w.ctx), 0);
    signal_ctx = w.ctx;
    int fd = workers_ctx_fd(w.ctx);
    ck_assert_int_ge(fd, 0);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);

    w.fd = -1;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, waiter_main, &w), 0);
    ck_assert(tu_wait_until(ct_flag_set, &w.started, TU_DEADLINE_MS));
    errno = 0;
    ck_assert_int_eq(pthread_kill(pthread_self(), SIGUSR1), 0);
    ck_assert_int_eq(errno, 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(w.rc, WORKERS_ECANCELED);
    ck_assert(fd_readable(fd, 0));
    workers_ctx_free(w.ctx);
}
END_TEST

Suite *make_ctx_suite(void);

Suite *
make_ctx_suite(void)
{
    Suite *s = suite_create("ctx");
    TCase *tc = tcase_create("ctx");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_new_is_live);
    tcase_add_test(tc, test_new_for_carries_worker_id);
    tcase_add_test(tc, test_cancel_is_idempotent);
    tcase_add_test(tc, test_wait_times_out);
    tcase_add_test(tc, test_wait_returns_early_on_cancel);
    tcase_add_test(tc, test_fd_wakes_poller);
    tcase_add_test(tc, test_fd_readable_after_cancel);
    tcase_add_test(tc, test_fd_made_after_cancel);
    tcase_add_test(tc, test_cancel_from_signal_handler);
    suite_add_tcase(s, tc);
    return s;
}
