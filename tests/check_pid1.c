/*
 * workersd as PID 1 of a PID namespace, as in a container: the real
 * build/workersd under `unshare --pid --fork --mount-proc`. Its Command
 * leaves orphans of every kind (a background job in the run's process
 * group, short-lived processes that setsid away, a long-lived one), which
 * the kernel hands to PID 1. The test watches the namespace from outside
 * (the host's /proc shows its processes): no zombie stays unreaped. Then
 * SIGTERM from outside, as a container runtime sends it: PID 1 receives
 * only the signals it handles, so this also checks the handler is there.
 * The daemon must close, kill the long-lived orphans, and exit 0.
 * Skipped with a message where unshare is refused (no privilege, no user
 * namespaces).
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemonutil.h"
#include "testutil.h"

#define UNSHARE "/usr/bin/unshare"

static bool
unshare_works(void)
{
    char *dir = du_mkdtemp();
    const char *args[] = {"--pid", "--fork", "--mount-proc", "/bin/true", NULL};
    int rc = access(UNSHARE, X_OK) == 0
                 ? du_wait(du_spawn_prog(UNSHARE, dir, args, NULL, false),
                           TU_DEADLINE_MS)
                 : -1;
    du_rmtree(dir);
    return rc == 0;
}

/* Zombies of ppid seen in `first` and still there now: unreaped ones. A
 * zombie lives for an instant between a child's exit and its reaping;
 * the test waits, with a generous deadline, until none of the first ones
 * is left. */
static int
lasting_zombies(pid_t ppid, pid_t *first, int n)
{
    pid_t now[256];
    int m = du_zombies(ppid, now, 256), lasting = 0;

    for (int i = 0; i < n && i < 256; i++)
        for (int j = 0; j < m && j < 256; j++)
            lasting += first[i] == now[j];
    return lasting;
}

START_TEST(test_pid1_reaps_and_closes)
{
    if (!unshare_works()) {
        fprintf(stderr, "pid1: `unshare --pid --fork --mount-proc` is "
                        "refused here: skipping the PID 1 test\n");
        return;
    }
    char *dir = du_mkdtemp();
    /* Per run: a background sleep in the run's group (killed as the shell
     * ends, its zombie goes to PID 1), a setsid'd shell that exits after
     * 50 ms, a setsid'd sleep that outlives the run. */
    char *ini = du_write_str(dir, "pool.ini",
                             "[pool]\nInitial = 2\nCloseTimeout = 10s\n"
                             "[job]\nCommand = sleep 1 & "
                             "setsid sh -c 'sleep 0.05' & "
                             "setsid sleep 60 & echo run; sleep 0.1\n");
    char *err = du_fmt("%s/err", dir), *out = du_fmt("%s/out", dir);
    const char *args[] = {"--pid",
                          "--fork",
                          "--mount-proc",
                          du_fmt("%s/workersd", WORKERS_BUILD_DIR),
                          "-c",
                          ini,
                          NULL};
    pid_t unshare = du_spawn_prog(UNSHARE, dir, args, NULL, false);

    ck_assert_msg(du_wait_for(err, "started 2 workers", 1, TU_DEADLINE_MS),
                  "%s", du_read(err));
    /* It is PID 1 of its namespace: the line names its pid as seen there. */
    ck_assert_msg(du_count_in(err, ", pid 1: kill -USR1 1 adds") == 1, "%s",
                  du_read(err));
    pid_t daemon = du_child(unshare);
    ck_assert_int_gt(daemon, 0);

    /* Orphans come and go for 10 runs; none stays a zombie. */
    ck_assert(du_wait_for(out, "run\n", 10, TU_DEADLINE_MS));
    pid_t first[256];
    int n = du_zombies(daemon, first, 256);
    uint64_t end = tu_now_ms() + TU_DEADLINE_MS;
    while (lasting_zombies(daemon, first, n) != 0 && tu_now_ms() < end)
        tu_sleep_ms(10);
    ck_assert_int_eq(lasting_zombies(daemon, first, n), 0);
    /* The long-lived ones are its children now (the kernel gave them to
     * PID 1): several sleeps, alive. */
    ck_assert_int_ge(du_children(daemon), 3);

    /* SIGTERM from outside the namespace: a close, exit 0. */
    ck_assert_int_eq(kill(daemon, SIGTERM), 0);
    int rc = du_wait(unshare, TU_DEADLINE_MS);
    char *log = du_read(err);
    du_rmtree(dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, log);
    ck_assert_ptr_nonnull(strstr(log, "SIGTERM: closing"));
    ck_assert_ptr_nonnull(strstr(log, "closed: every worker finished"));
    ck_assert_msg(strstr(log, "processes left behind by the job") != NULL, "%s",
                  log);
}
END_TEST

Suite *make_pid1_suite(void);

Suite *
make_pid1_suite(void)
{
    Suite *s = suite_create("pid1");
    TCase *tc = tcase_create("pid1");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pid1_reaps_and_closes);
    suite_add_tcase(s, tc);
    return s;
}
