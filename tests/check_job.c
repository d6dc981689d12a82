/*
 * Errors, version and job helpers: the one error table, job destruction,
 * noerror, and wrap (issue 2, rule 8: the last middleware given is
 * outermost; a failing middleware frees the job).
 */
#include "coretest.h"
#include "workers.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_error_table)
{
    static const struct {
        int code;
        const char *name, *msg;
    } rows[] = {
#define ROW(n, v, m) {v, "WORKERS_" #n, m},
        WORKERS_ERRNO_MAP(ROW)
#undef ROW
            {-ENOMEM, "ENOMEM", "cannot allocate memory"},
        {-EAGAIN, "EAGAIN", "resource temporarily unavailable"},
        {-EMFILE, "EMFILE", "too many open files"},
        {-ENFILE, "ENFILE", "too many open files in system"},
        {-EINVAL, "EINVAL", "invalid argument"},
        {0, "OK", "success"}, /* issue 9, item 24: 0 is success */
        {42, "UNKNOWN", "unknown error"},
        {-999999, "UNKNOWN", "unknown error"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        ck_assert_str_eq(workers_err_name(rows[i].code), rows[i].name);
        ck_assert_str_eq(workers_strerror(rows[i].code), rows[i].msg);
    }
    ck_assert_str_eq(workers_strerror(WORKERS_ETIMEDOUT), "deadline exceeded");
    ck_assert_str_eq(workers_version(), WORKERS_VERSION_STRING);
}
END_TEST

static atomic_int frees;

static void
count_free(void *arg)
{
    (void)arg;
    atomic_fetch_add(&frees, 1);
}

static int
ok_job(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    return 7;
}

START_TEST(test_job_free)
{
    atomic_store(&frees, 0);
    workers_job job = {ok_job, &frees, count_free};
    workers_job_free(&job);
    ck_assert_int_eq(atomic_load(&frees), 1);
    ck_assert(job.fn == NULL);
    ck_assert_ptr_null(job.arg);
    ck_assert(job.free == NULL);
    workers_job_free(&job); /* zeroed: nothing left to free */
    ck_assert_int_eq(atomic_load(&frees), 1);
    workers_job_free(NULL);
    workers_job plain = workers_job_func(ok_job, NULL);
    ck_assert(plain.free == NULL);
    workers_job_free(&plain);
}
END_TEST

static void
void_job(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    (*(int *)arg)++;
}

START_TEST(test_noerror)
{
    atomic_store(&frees, 0);
    int calls = 0;
    workers_job job;
    ck_assert_int_eq(workers_job_noerror(&job, void_job, &calls, count_free),
                     0);
    ck_assert_int_eq(job.fn(NULL, job.arg), 0);
    ck_assert_int_eq(job.fn(NULL, job.arg), 0);
    ck_assert_int_eq(calls, 2);
    workers_job_free(&job);
    ck_assert_int_eq(atomic_load(&frees), 1);
}
END_TEST

/* A middleware that appends its tag to a trace before and after the run. */
struct trace {
    char buf[64];
    size_t len;
};

struct tagged {
    workers_job inner;
    char tag;
    struct trace *trace;
};

static int
tagged_run(workers_ctx *ctx, void *arg)
{
    struct tagged *t = arg;
    t->trace->buf[t->trace->len++] = t->tag;
    int err = t->inner.fn(ctx, t->inner.arg);
    t->trace->buf[t->trace->len++] = (char)(t->tag - 'A' + 'a');
    return err;
}

static void
tagged_free(void *arg)
{
    struct tagged *t = arg;
    workers_job_free(&t->inner);
    free(t);
    atomic_fetch_add(&frees, 1);
}

static int
tagged_wrap(const workers_middleware *mw, workers_job *job)
{
    if (mw->value == 0)
        return -ENOSPC; /* the failing middleware of the tests */
    struct tagged *t = malloc(sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    t->inner = *job;
    t->tag = (char)mw->value;
    t->trace = mw->data;
    job->fn = tagged_run;
    job->arg = t;
    job->free = tagged_free;
    return 0;
}

static int
trace_job(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    struct trace *tr = arg;
    tr->buf[tr->len++] = '.';
    return 5;
}

START_TEST(test_wrap_order)
{
    atomic_store(&frees, 0);
    struct trace tr = {{0}, 0};
    workers_middleware mws[] = {
        {tagged_wrap, &tr, 'A'},
        {tagged_wrap, &tr, 'B'},
        {tagged_wrap, &tr, 'C'},
    };
    workers_job job = {trace_job, &tr, count_free};
    ck_assert_int_eq(workers_wrap(&job, mws, 3), 0);
    ck_assert_int_eq(job.fn(NULL, job.arg), 5);
    ck_assert_str_eq(tr.buf, "CBA.abc");
    workers_job_free(&job);
    ck_assert_int_eq(atomic_load(&frees), 4); /* 3 wrappers + the job */
    ck_assert_int_eq(workers_wrap(&job, NULL, 0), 0);
}
END_TEST

START_TEST(test_wrap_failure_frees_job)
{
    atomic_store(&frees, 0);
    struct trace tr = {{0}, 0};
    workers_middleware mws[] = {
        {tagged_wrap, &tr, 'A'},
        {tagged_wrap, &tr, 0},
        {tagged_wrap, &tr, 'C'},
    };
    workers_job job = {trace_job, &tr, count_free};
    ck_assert_int_eq(workers_wrap(&job, mws, 3), -ENOSPC);
    ck_assert_int_eq(atomic_load(&frees), 2); /* A's wrapper + the job */
    ck_assert(job.fn == NULL);
    ck_assert(job.free == NULL);
}
END_TEST

Suite *make_job_suite(void);

Suite *
make_job_suite(void)
{
    Suite *s = suite_create("job");
    TCase *tc = tcase_create("job");
    tcase_add_test(tc, test_error_table);
    tcase_add_test(tc, test_job_free);
    tcase_add_test(tc, test_noerror);
    tcase_add_test(tc, test_wrap_order);
    tcase_add_test(tc, test_wrap_failure_frees_job);
    suite_add_tcase(s, tc);
    return s;
}
