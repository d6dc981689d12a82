/*
 * What workersd does with the systemd environment it cannot use as given:
 * a NOTIFY_SOCKET that is no usable address is one warning and the service
 * runs on; a tiny WATCHDOG_USEC is floored instead of making the loop spin.
 * The real binary runs, as in check_daemon.c; notify sockets are abstract,
 * so no test depends on the length of TMPDIR.
 */
#include "daemonutil.h"
#include "metrics/metrics.h"
#include "testutil.h"
#include "workersd.h"

#include <check.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Starts workersd on a job that sleeps, with env added; returns its pid
 * once it logged its start. *err: its stderr. */
static pid_t
start_sleeper(const char *const *env, char **err)
{
    char *dir = du_mkdtemp();
    char *ini =
        du_write_str(dir, "sleep.ini", "[job]\nCommand = exec sleep 1000\n");
    const char *args[] = {"-c", ini, NULL};
    pid_t pid;

    *err = du_fmt("%s/err", dir);
    du_subreaper();
    pid = du_spawn(dir, args, env, false);
    ck_assert_msg(du_wait_for(*err, "workersd: started", 1, TU_DEADLINE_MS),
                  "no start: %s", du_read(*err));
    return pid;
}

static void
stop_clean(pid_t pid, const char *err)
{
    kill(pid, SIGINT);
    ck_assert_msg(du_wait(pid, TU_DEADLINE_MS) == 0, "exit; log: %s",
                  du_read(err));
    ck_assert(du_no_descendants(3000));
}

/* Each address workersd cannot send to: one warning naming it, the pool
 * runs, and a signal closes it cleanly (it used to exit 70 at start). */
START_TEST(test_unusable_socket)
{
    char *longpath = du_fmt("/run/%0200d/notify", 0);
    const char *names[] = {longpath, "vsock:2:1234", "run/notify"};
    const char *whys[] = {"too long for a unix socket address (at most 107 "
                          "bytes)",
                          "vsock addresses are not supported",
                          "not an absolute path or '@' name"};

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *env[] = {du_fmt("NOTIFY_SOCKET=%s", names[i]), NULL};
        char *err, *want;
        pid_t pid = start_sleeper(env, &err);

        want = du_fmt("workersd: warning: NOTIFY_SOCKET=%s: %s: not "
                      "notifying systemd\n",
                      names[i], whys[i]);
        ck_assert_msg(du_count_in(err, want) == 1, "want '%s' in: %s", want,
                      du_read(err));
        ck_assert_int_eq(du_count_in(err, "warning"), 1);
        stop_clean(pid, err);
    }
}
END_TEST

/* Datagrams holding needle that arrive within ms milliseconds, from now:
 * those already queued are dropped first. */
static int
count_datagrams(int fd, const char *needle, unsigned ms)
{
    char buf[1024];
    int n = 0;

    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) >= 0)
        ;
    uint64_t end = tu_now_ms() + ms;

    for (uint64_t now; (now = tu_now_ms()) < end;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t len;

        if (poll(&pfd, 1, (int)(end - now)) <= 0)
            continue;
        if ((len = recv(fd, buf, sizeof buf - 1, 0)) < 0)
            continue;
        buf[len] = '\0';
        n += strstr(buf, needle) != NULL;
    }
    return n;
}

/* WATCHDOG_USEC=1 (a typo for 1s): floored to 100ms, said once, and the
 * loop pings every 50ms instead of spinning (thousands a second). */
START_TEST(test_watchdog_floor)
{
    char *name = du_fmt("@workersd-wdfloor-%ld", (long)getpid()), *err;
    int fd = du_notify_socket(name);
    const char *env[] = {du_fmt("NOTIFY_SOCKET=%s", name), "WATCHDOG_USEC=1",
                         NULL};
    pid_t pid = start_sleeper(env, &err);

    ck_assert(du_notify_expect(fd, "WATCHDOG=1", TU_DEADLINE_MS));
    uint64_t t0 = tu_now_ms();
    int pings = count_datagrams(fd, "WATCHDOG=1", 1000);
    uint64_t took = tu_now_ms() - t0;
    ck_assert_msg(pings <= (int)(took / 50) + 5, "%d pings in %llu ms", pings,
                  (unsigned long long)took);
    ck_assert_int_eq(du_count_in(err, "workersd: warning: WATCHDOG_USEC=1 is "
                                      "below 100ms: pinging as for 100ms "
                                      "(every 50ms)\n"),
                     1);
    stop_clean(pid, err);
    close(fd);
}
END_TEST

/* The longest STATUS= line goes out whole with READY=1 in one datagram
 * (a reload's answer): a notification too long for the buffer is not
 * sent at all, and systemd would wait for the READY=1 in vain. */
START_TEST(test_long_status_sent)
{
    char *name = du_fmt("@workersd-long-%ld", (long)getpid()), err[256];
    int fd = du_notify_socket(name);
    char line[WD_STATUS_LINE_MAX];

    memset(line, 's', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    setenv("NOTIFY_SOCKET", name, 1);
    ck_assert_int_eq(wd_notify_init(err, sizeof err), 0);
    wd_notify("READY=1\nSTATUS=%s", line);
    char *got = du_notify_get(fd, "READY=1", TU_DEADLINE_MS);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, du_fmt("READY=1\nSTATUS=%s", line));
    wd_notify_close();
    close(fd);
}
END_TEST

Suite *make_notify_suite(void);

Suite *
make_notify_suite(void)
{
    Suite *s = suite_create("notify");
    TCase *tc = tcase_create("notify");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_unusable_socket);
    tcase_add_test(tc, test_watchdog_floor);
    tcase_add_test(tc, test_long_status_sent);
    suite_add_tcase(s, tc);
    return s;
}
