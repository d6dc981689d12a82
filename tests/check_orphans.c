/*
 * Processes a Command leaves behind outside its run's process group
 * (setsid): the real daemon adopts them as a child subreaper, reaps those
 * that end on their own (no zombie), and kills the rest when it closes.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemonutil.h"
#include "testutil.h"

static bool
alive(pid_t pid)
{
    return kill(pid, 0) == 0 || errno != ESRCH;
}

static bool
no_zombies(void *ppid)
{
    return du_zombies(*(pid_t *)ppid, NULL, 0) == 0;
}

static pid_t
read_pid(const char *path)
{
    return (pid_t)atoi(du_read(path));
}

/* The commands name the test's folder as $DIR (du_spawn sets it). */
static pid_t
spawn_in(const char *dir, const char *ini)
{
    const char *args[] = {"-c", ini, NULL};

    return du_spawn(dir, args, NULL, false);
}

START_TEST(test_escaped_process_killed_at_close)
{
    char *dir = du_mkdtemp();
    /* Run 1 leaves a sleeper in a session of its own (and waits until it is
     * there, or the group kill at the run's end would catch it first);
     * later runs idle. */
    char *ini =
        du_write_str(dir, "pool.ini",
                     "[job]\nCommand = [ -e \"$DIR/pid\" ] && exec sleep 1000; "
                     "setsid sh -c 'echo $$ > \"$DIR/pid\"; exec sleep 1000' & "
                     "until [ -s \"$DIR/pid\" ]; do sleep 0.01; done\n");
    char *pidfile = du_fmt("%s/pid", dir);
    pid_t pid = spawn_in(dir, ini);

    ck_assert(du_wait_for(pidfile, "\n", 1, TU_DEADLINE_MS));
    pid_t escaped = read_pid(pidfile);
    ck_assert_int_gt(escaped, 1);
    ck_assert(alive(escaped));
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    ck_assert_int_eq(du_wait(pid, TU_DEADLINE_MS), 0);
    /* Killed and reaped by the daemon before it exited. */
    ck_assert(!alive(escaped));
    ck_assert_int_ge(du_count_in(du_fmt("%s/err", dir), "left behind"), 1);
}
END_TEST

START_TEST(test_escaped_process_reaped_when_it_ends)
{
    char *dir = du_mkdtemp();
    /* Run 1 leaves a short-lived process in a session of its own. */
    char *ini = du_write_str(
        dir, "pool.ini",
        "[job]\nCommand = [ -e \"$DIR/pid\" ] && exec sleep 1000; "
        "setsid sh -c 'echo $$ > \"$DIR/pid\"; read x < \"$DIR/go\"' & "
        "until [ -s \"$DIR/pid\" ]; do sleep 0.01; done\n");
    char *pidfile = du_fmt("%s/pid", dir);
    char *fifo = du_fmt("%s/go", dir);

    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    pid_t pid = spawn_in(dir, ini);
    ck_assert(du_wait_for(pidfile, "\n", 1, TU_DEADLINE_MS));
    pid_t escaped = read_pid(pidfile);
    ck_assert(alive(escaped));
    /* Let it end; the daemon must reap it: it neither lives nor lingers as
     * a zombie. */
    FILE *go = fopen(fifo, "we");
    ck_assert_ptr_nonnull(go);
    fputs("go\n", go);
    fclose(go);
    uint64_t end = tu_now_ms() + TU_DEADLINE_MS;
    while (alive(escaped) && tu_now_ms() < end)
        tu_sleep_ms(5);
    ck_assert(!alive(escaped));
    /* A run's shell is a zombie for the moment between its exit and its
     * worker's waitid: what must not stay is one. */
    ck_assert_msg(tu_wait_until(no_zombies, &pid, TU_DEADLINE_MS),
                  "%d zombies", du_zombies(pid, NULL, 0));
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    ck_assert_int_eq(du_wait(pid, TU_DEADLINE_MS), 0);
}
END_TEST

Suite *make_orphans_suite(void);

Suite *
make_orphans_suite(void)
{
    Suite *s = suite_create("orphans");
    TCase *tc = tcase_create("orphans");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_escaped_process_killed_at_close);
    tcase_add_test(tc, test_escaped_process_reaped_when_it_ends);
    suite_add_tcase(s, tc);
    return s;
}
