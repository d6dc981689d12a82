/*
 * The hot path allocates nothing: runs tests/tools/noalloc (a program of its
 * own, see there why) and checks what it counted over a million runs
 * through the pool and the retry, counter and elapsed middlewares. Its
 * --control mode allocates in the job, so the counting is shown to work.
 */
#include "daemonutil.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct noalloc_result {
    int status;
    unsigned long long runs;
    unsigned long allocs, frees;
    char out[512];
} noalloc_result;

static noalloc_result
run_noalloc(const char *mode)
{
    noalloc_result r = {0};
    char *path = tu_build_path("tests/tools/noalloc");
    char *argv[] = {path, (char *)mode, NULL};
    int fds[2];
    pid_t pid;

    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    if ((pid = du_fork()) == 0) {
        if (dup2(fds[1], 1) < 0)
            _exit(127);
        execv(path, argv);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    for (;;) {
        ssize_t got = read(fds[0], r.out + n, sizeof r.out - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    r.out[n] = '\0';
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &r.status, 0), pid);
    ck_assert_msg(sscanf(r.out,
                         "noalloc: %llu runs, %lu allocations, %lu "
                         "frees",
                         &r.runs, &r.allocs, &r.frees) == 3,
                  "noalloc printed: %s", r.out);
    free(path);
    return r;
}

START_TEST(test_million_runs_allocate_nothing)
{
    noalloc_result r = run_noalloc(NULL);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
                  "noalloc: status %#x: %s", r.status, r.out);
    ck_assert_uint_ge(r.runs, 1000000);
    ck_assert_uint_eq(r.allocs, 0);
    ck_assert_uint_eq(r.frees, 0);
}
END_TEST

START_TEST(test_counting_sees_allocations)
{
    noalloc_result r = run_noalloc("--control");
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1,
                  "noalloc --control: status %#x: %s", r.status, r.out);
    ck_assert_uint_ge(r.allocs, r.runs / 2);
    ck_assert_uint_ge(r.frees, r.runs / 2);
}
END_TEST

Suite *make_noalloc_suite(void);

Suite *
make_noalloc_suite(void)
{
    Suite *s = suite_create("noalloc");
    TCase *tc = tcase_create("hot path");
    /* A million runs: well under a second here, longer under TSan. */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_million_runs_allocate_nothing);
    tcase_add_test(tc, test_counting_sees_allocations);
    suite_add_tcase(s, tc);
    return s;
}
