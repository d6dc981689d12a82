/*
 * What a failed test leaves behind: nothing. A test process that ends
 * without its cleanup (a failed assertion ends it at once) takes its
 * daemon with it (du_fork's parent-death signal), the daemon's jobs,
 * which live in process groups of their own, come to the runner (a child
 * subreaper) and die at its end, and the runner removes its temp and
 * socket folders even when TMPDIR is too long for a socket path.
 *
 * The last is seen from outside: the runner itself is run on a case that
 * fails on purpose ("leaver", added only when WORKERS_LEAVER names the
 * file it reports to), with a long TMPDIR.
 */
#include "daemonutil.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Alive: in /proc and neither a zombie nor dead. Its parent in *ppid. */
static bool
alive(pid_t pid, pid_t *ppid)
{
    char *stat = du_read(du_fmt("/proc/%ld/stat", (long)pid));
    char *rp = strrchr(stat, ')'), state;
    int parent;

    if (rp == NULL || sscanf(rp + 1, " %c %d", &state, &parent) != 2)
        return false;
    if (ppid != NULL)
        *ppid = parent;
    return state != 'Z' && state != 'X';
}

static bool
gone(void *pid)
{
    return !alive(*(pid_t *)pid, NULL);
}

struct orphan {
    pid_t pid, parent;
};

/* No longer a child of its parent (dead or alive). */
static bool
reparented(void *arg)
{
    struct orphan *o = arg;
    pid_t ppid = 0;

    return !alive(o->pid, &ppid) || ppid != o->parent;
}

/* Starts a daemon whose one job sleeps, in dir with the ini text given;
 * its pid and the job's in pids. */
static void
start_sleeper(const char *dir, const char *control, pid_t pids[2])
{
    char *ini = du_write_str(
        dir, "a.ini", du_fmt("[job]\nCommand = exec sleep 1000\n%s", control));
    const char *args[] = {"-c", ini, NULL};
    char *err = du_fmt("%s/err", dir);

    pids[0] = du_spawn(dir, args, NULL, false);
    ck_assert_msg(du_wait_for(err, "workersd: started", 1, TU_DEADLINE_MS),
                  "%s", du_read(err));
    ck_assert(du_wait_children(pids[0], 1, TU_DEADLINE_MS));
    pids[1] = du_child(pids[0]);
}

/*
 * A test body (a sub-process here, as Check runs one) starts a daemon and
 * ends as a failed assertion does, without cleanup; its process group is
 * not killed, as under CK_FORK=no. The daemon dies; its job, orphaned,
 * goes to the runner, not to init.
 */
START_TEST(test_dead_test_takes_its_daemon)
{
    char *dir = du_mkdtemp();
    pid_t pids[2], runner = getppid(), ppid = 0;
    int p[2], st;

    if (getenv("CK_FORK") != NULL && strcmp(getenv("CK_FORK"), "no") == 0)
        runner = getpid();
    ck_assert_int_eq(pipe(p), 0);
    pid_t body = fork();
    ck_assert_int_ge(body, 0);
    if (body == 0) {
        close(p[0]);
        start_sleeper(dir, "", pids);
        if (write(p[1], pids, sizeof pids) != sizeof pids)
            _exit(2);
        _exit(1);
    }
    close(p[1]);
    ck_assert_int_eq(read(p[0], pids, sizeof pids), sizeof pids);
    close(p[0]);
    ck_assert_int_eq(waitpid(body, &st, 0), body);
    ck_assert_msg(tu_wait_until(gone, &pids[0], TU_DEADLINE_MS),
                  "daemon %ld outlived the test", (long)pids[0]);
    /* A dying daemon's threads hold its children a little longer. */
    struct orphan o = {pids[1], pids[0]};
    ck_assert(tu_wait_until(reparented, &o, TU_DEADLINE_MS));
    ck_assert(alive(pids[1], &ppid));
    ck_assert_msg(ppid == runner, "job %ld: parent %ld, not the runner %ld",
                  (long)pids[1], (long)ppid, (long)runner);
    /* The runner would kill it at its end; no need to wait that long. */
    kill(pids[1], SIGKILL);
    du_rmtree(dir);
}
END_TEST

/*
 * A whole run of test_leaver under a TMPDIR too long for a socket path,
 * its one test with a daemon, its job and its control socket up: it fails
 * (exit 1), or is interrupted (SIGINT, as Ctrl-C: exit 130) while it
 * waits. Either way nothing is left, neither in TMPDIR nor in /tmp, and
 * no process lives on.
 */
static void
nested_run_leaves_nothing(bool interrupt)
{
    char *dir = du_mkdtemp(), *report = du_fmt("%s/report", dir);
    char *tmp = du_fmt("%s/%0*d", dir, 100 - (int)strlen(dir), 0);
    char *out = du_fmt("%s/out", dir);
    const char *env[] = {du_fmt("TMPDIR=%s", tmp),
                         du_fmt("WORKERS_LEAVER=%s", report),
                         "CK_RUN_SUITE=hygiene",
                         "CK_RUN_CASE=leaver",
                         interrupt ? "WORKERS_LEAVER_HANG=1" : NULL,
                         NULL};
    const char *args[] = {NULL};
    char sock[256];
    pid_t pids[2];
    struct stat st;

    ck_assert_int_eq(mkdir(tmp, 0700), 0);
    pid_t runner =
        du_spawn_prog((char *)du_keep(tu_build_path("tests/check_workers")),
                      dir, args, env, false);
    ck_assert_msg(du_wait_for(report, "\n", 1, TU_DEADLINE_MS), "%s",
                  du_read(out));
    ck_assert_msg(
        sscanf(du_read(report), "%d %d %255s", &pids[0], &pids[1], sock) == 3,
        "%s", du_read(out));
    if (interrupt)
        kill(runner, SIGINT);
    int code = du_wait(runner, TU_DEADLINE_MS);
    ck_assert_msg(code == (interrupt ? 128 + SIGINT : 1), "exit %d: %s", code,
                  du_read(out));
    ck_assert_msg(strncmp(sock, "/tmp/", 5) == 0, "socket at %s", sock);
    *strrchr(sock, '/') = '\0';
    ck_assert_msg(stat(sock, &st) != 0 && errno == ENOENT,
                  "socket folder %s is left", sock);
    ck_assert_int_eq(rmdir(tmp), 0); /* empty */
    ck_assert(!alive(pids[0], NULL));
    ck_assert(!alive(pids[1], NULL));
    du_rmtree(dir);
}

START_TEST(test_failed_run_leaves_nothing)
{
    nested_run_leaves_nothing(false);
}
END_TEST

START_TEST(test_interrupted_run_leaves_nothing)
{
    nested_run_leaves_nothing(true);
}
END_TEST

/* Fails on purpose, its daemon up (see test_failed_run_leaves_nothing),
 * or waits to be interrupted (WORKERS_LEAVER_HANG). */
START_TEST(test_leaver)
{
    char *dir = du_mkdtemp(), *sock = du_socket_path("leaver.sock");
    FILE *f = fopen(getenv("WORKERS_LEAVER"), "w");
    pid_t pids[2];

    ck_assert_ptr_nonnull(f);
    start_sleeper(dir, du_fmt("[control]\nSocket = %s\n", sock), pids);
    ck_assert_int_eq(access(sock, F_OK), 0);
    fprintf(f, "%ld %ld %s\n", (long)pids[0], (long)pids[1], sock);
    fclose(f);
    if (getenv("WORKERS_LEAVER_HANG") != NULL)
        for (;;)
            pause();
    ck_abort_msg("failed on purpose");
}
END_TEST

Suite *make_hygiene_suite(void);

Suite *
make_hygiene_suite(void)
{
    Suite *s = suite_create("hygiene");
    TCase *tc = tcase_create("hygiene");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dead_test_takes_its_daemon);
    tcase_add_test(tc, test_failed_run_leaves_nothing);
    tcase_add_test(tc, test_interrupted_run_leaves_nothing);
    suite_add_tcase(s, tc);
    if (getenv("WORKERS_LEAVER") != NULL) {
        TCase *leaver = tcase_create("leaver");
        tcase_set_timeout(leaver, 60);
        tcase_add_test(leaver, test_leaver);
        suite_add_tcase(s, leaver);
    }
    return s;
}
