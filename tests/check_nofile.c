/*
 * check_nofile.c: the daemon's descriptors against its limit (nofile.c).
 * The budget the daemon states when it refuses to start grows with the
 * servers its config opens; that very budget, as the limit, holds a full
 * control socket and a full metrics listener during a reload; and plugin
 * reloads leave no descriptor behind. check_daemon.c has the start's
 * policy (exit 70, the limit the jobs see).
 */
#include "control/control.h"
#include "daemonutil.h"
#include "metrics/metrics.h"
#include "metricsutil.h"
#include "plugins/generation.h"
#include "testutil.h"
#include "workersd.h"

#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A limit below every budget, yet one that lets the config load (its
 * file and the plugin it checks): the start is refused with the budget. */
#define TOO_LOW 8

/* The descriptors one worker needs under the ini text, as the daemon
 * states it when the limit is too low: "1 worker needs N (M for the
 * daemon, ...)". *line gets the whole line. */
static unsigned long
budget(const char *ini, char **line)
{
    char *dir = du_mkdtemp(), *err = du_fmt("%s/err", dir);
    const char *args[] = {"-c", du_write_str(dir, "test.ini", ini), NULL};
    unsigned long need = 0;

    du_spawn_nofile(TOO_LOW, TOO_LOW);
    int rc = du_run(dir, args);
    du_spawn_nofile(0, 0);
    *line = du_read(err);
    ck_assert_msg(rc == WD_EXIT_SOFTWARE, "exit %d: %s", rc, *line);
    const char *at = strstr(*line, "1 worker needs ");
    ck_assert_msg(at != NULL && sscanf(at, "1 worker needs %lu", &need) == 1,
                  "%s", *line);
    du_rmtree(dir);
    return need;
}

/* The control socket and the metrics listener each add what they may hold
 * at once: their listening socket, their clients and one over. */
START_TEST(test_nofile_servers_counted)
{
    const char *job = "[job]\nCommand = exec sleep 1000\n";
    char *bare, *control, *both;
    unsigned long n_bare =
        budget(du_fmt("%s[control]\nSocket = none\n", job), &bare);
    unsigned long n_control = budget(
        du_fmt("%s[control]\nSocket = /tmp/wdnofile.sock\n", job), &control);
    unsigned long n_both =
        budget(du_fmt("%s[control]\nSocket = /tmp/wdnofile.sock\n"
                      "[metrics]\nListen = 127.0.0.1:9717\n",
                      job),
               &both);

    ck_assert_uint_gt(n_control, n_bare);
    ck_assert_uint_gt(n_both, n_control);
    ck_assert_str_eq(bare, "workersd: error: the descriptor limit "
                           "(RLIMIT_NOFILE, ulimit -n, LimitNOFILE=) is 8: 1 "
                           "worker needs 14 (13 for the daemon, 1 per "
                           "worker)\n");
    ck_assert_msg(strstr(control, "needs 32 (31 for the daemon") != NULL, "%s",
                  control);
    ck_assert_msg(strstr(both, "needs 51 (50 for the daemon") != NULL, "%s",
                  both);
}
END_TEST

/* ---- the budget holds ------------------------------------------------ */

static int
fd_count(pid_t pid)
{
    return du_count_in_text(du_fds(pid), " ") + 1;
}

struct held {
    pid_t pid;
    int want;
};

static bool
holds_at_least(void *arg)
{
    struct held *h = arg;
    return fd_count(h->pid) >= h->want;
}

static int
connect_unix(const char *path)
{
    int fd = du_connect_unix(path);

    ck_assert_msg(fd >= 0, "connect %s: %s", path, strerror(errno));
    return fd;
}

static int
connect_tcp(unsigned port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((in_port_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Sends request (or nothing) and reads fd until the server closes it. */
static char *
exchange(int fd, const char *request)
{
    char buf[65536];
    size_t len = 0;
    ssize_t n;

    if (request != NULL)
        ck_assert_int_eq(write(fd, request, strlen(request)),
                         (ssize_t)strlen(request));
    while (len < sizeof buf - 1 &&
           (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd);
    return du_fmt("%s", buf);
}

/* With the limit at the budget the daemon states, a full control socket
 * (WD_CONTROL_CLIENTS clients, one more told "busy") and a full metrics
 * listener (WD_HTTP_CONNS connections, each then scraped) during a plugin
 * reload make no accept fail: no "too many open files", no pause, exit 0. The
 * servers drop a client idle for 5 s; a round slower than that proves
 * nothing and is run again. */
START_TEST(test_nofile_budget_holds)
{
    char *dir = du_mkdtemp(), *line;
    char *sock = du_socket_path("nofile.sock");
    char *err = du_fmt("%s/err", dir);
    struct gen_counters *c =
        du_map(du_fmt("%s/c", dir), sizeof(struct gen_counters));
    unsigned port = mu_free_port();
    char *ini =
        du_fmt("[pool]\nInitial = 1\nMax = 1\n"
               "[job]\nPlugin = %s\nArg = %s/c\nTimeout = 10s\n"
               "[control]\nSocket = %s\n"
               "[metrics]\nListen = 127.0.0.1:%u\n",
               (char *)du_keep(tu_build_path("tests/plugins/generation.so")),
               dir, sock, port);
    unsigned long need = budget(ini, &line);
    const char *args[] = {"-c", du_write_str(dir, "test.ini", ini), NULL};

    c->release = 1;
    du_spawn_nofile(need, need);
    pid_t pid = du_spawn(dir, args, NULL, false);
    ck_assert_msg(du_wait_for(err, "workersd: started", 1, TU_DEADLINE_MS),
                  "%s", du_read(err));
    int base = fd_count(pid);
    bool proven = false;

    for (int round = 0; round < 3 && !proven; round++) {
        int ctl[WD_CONTROL_CLIENTS], http[WD_HTTP_CONNS];
        uint64_t t0 = tu_now_ms();

        for (int i = 0; i < WD_CONTROL_CLIENTS; i++)
            ctl[i] = connect_unix(sock);
        for (int i = 0; i < WD_HTTP_CONNS; i++)
            http[i] = connect_tcp(port);
        struct held h = {pid, base + WD_CONTROL_CLIENTS + WD_HTTP_CONNS};
        ck_assert_msg(tu_wait_until(holds_at_least, &h, TU_DEADLINE_MS),
                      "%d descriptors, limit %lu: %s; %d lines of \"Too many "
                      "open files\"",
                      fd_count(pid), need, du_fds(pid),
                      du_count_in(err, "Too many open files"));
        char *busy = exchange(connect_unix(sock), NULL);
        /* A client connecting in a loop gets its answer each time, but
         * the log one line a second (and the dropped count). */
        uint64_t f0 = tu_now_ms();
        int lines = du_count_in(err, "told to retry");
        for (int i = 0; i < 50; i++)
            ck_assert_ptr_nonnull(
                strstr(exchange(connect_unix(sock), NULL), "busy"));
        lines = du_count_in(err, "told to retry") - lines;
        ck_assert_msg(lines <= (int)((tu_now_ms() - f0) / 1000) + 1,
                      "%d lines for 50 busy clients in %llu ms", lines,
                      (unsigned long long)(tu_now_ms() - f0));
        kill(pid, SIGHUP);
        ck_assert_msg(
            du_wait_for(err, "Plugin reloaded", round + 1, TU_DEADLINE_MS),
            "%s", du_read(err));
        int scraped = 0;
        for (int i = 0; i < WD_HTTP_CONNS; i++)
            scraped +=
                strstr(exchange(http[i], "GET /metrics HTTP/1.0\r\n\r\n"),
                       "workersd_workers") != NULL;
        for (int i = 0; i < WD_CONTROL_CLIENTS; i++)
            close(ctl[i]);
        if (tu_now_ms() - t0 >= 4000)
            continue; /* the idle clients may have been dropped */
        ck_assert_msg(strstr(busy, "busy") != NULL, "%s", busy);
        ck_assert_int_eq(scraped, WD_HTTP_CONNS);
        proven = true;
    }
    ck_assert(proven);
    ck_assert_int_eq(du_count_in(err, "Too many open files"), 0);
    ck_assert_int_eq(du_count_in(err, "pausing"), 0);
    char reply[65536];
    ck_assert_int_eq(
        mu_http(port, "GET /metrics HTTP/1.0\r\n\r\n", reply, sizeof reply),
        200);
    kill(pid, SIGTERM);
    ck_assert_int_eq(du_wait(pid, TU_DEADLINE_MS), 0);
    du_rmtree(dir);
}
END_TEST

/* ---- plugin reloads -------------------------------------------------- */

/* The private copies of the plugin mapped in pid: distinct inodes. */
static int
plugin_copies(pid_t pid)
{
    FILE *f = fopen(du_fmt("/proc/%ld/maps", (long)pid), "re");
    unsigned long inodes[64];
    int n = 0;
    char line[512];

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long ino;
        int seen = 0;
        if (strstr(line, "/memfd:workersd-plugin") == NULL ||
            sscanf(line, "%*s %*s %*s %*s %lu", &ino) != 1)
            continue;
        for (int i = 0; i < n; i++)
            seen |= inodes[i] == ino;
        if (!seen && n < 64)
            inodes[n++] = ino;
    }
    fclose(f);
    return n;
}

struct fds_back {
    pid_t pid;
    int base;
};

static bool
fds_back(void *arg)
{
    struct fds_back *b = arg;
    return fd_count(b->pid) == b->base;
}

static bool
ran(void *counters)
{
    return atomic_load(&((struct gen_counters *)counters)->started) != 0;
}

/* 20 reloads of a plugin job (SIGHUP): each loads a copy of its own (21
 * mapped), and the daemon ends with the descriptors it had. */
START_TEST(test_plugin_reloads_hold_no_descriptor)
{
    char *dir = du_mkdtemp(), *err = du_fmt("%s/err", dir);
    struct gen_counters *c =
        du_map(du_fmt("%s/c", dir), sizeof(struct gen_counters));
    const char *args[] = {
        "-c",
        du_write_str(dir, "test.ini",
                     du_fmt("[pool]\nInitial = 1\n[job]\nPlugin = %s\n"
                            "Arg = %s/c\nTimeout = 10s\n[control]\n"
                            "Socket = none\n",
                            (char *)du_keep(
                                tu_build_path("tests/plugins/generation.so")),
                            dir)),
        NULL};

    c->release = 1;
    pid_t pid = du_spawn(dir, args, NULL, false);
    ck_assert_msg(du_wait_for(err, "workersd: started", 1, TU_DEADLINE_MS),
                  "%s", du_read(err));
    /* A run started: the worker made what it keeps. */
    ck_assert(tu_wait_until(ran, c, TU_DEADLINE_MS));
    struct fds_back b = {pid, fd_count(pid)};
    char *before = du_fds(pid);

    for (int i = 1; i <= 20; i++) {
        kill(pid, SIGHUP);
        ck_assert_msg(du_wait_for(err, "Plugin reloaded", i, TU_DEADLINE_MS),
                      "%s", du_read(err));
    }
    ck_assert_msg(tu_wait_until(fds_back, &b, TU_DEADLINE_MS),
                  "descriptors %s before 20 reloads, %s after", before,
                  du_fds(pid));
    ck_assert_int_eq(plugin_copies(pid), 21);
    kill(pid, SIGTERM);
    ck_assert_int_eq(du_wait(pid, TU_DEADLINE_MS), 0);
    du_rmtree(dir);
}
END_TEST

/* A reload that raises Max past the limit says so, as the start does, and
 * whether a restart would raise it (the soft limit below the hard one);
 * one within it says nothing. 64 holds 51 workers besides the daemon's
 * 13 (Socket = none). */
START_TEST(test_nofile_reload_max)
{
    const struct {
        unsigned long soft, hard;
        const char *after;
    } cases[] = {{64, 64, "\n"},
                 {64, 128,
                  "; a restart raises it, as far as the hard "
                  "limit\n"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = du_mkdtemp(), *err = du_fmt("%s/err", dir);
        const char *job = "[job]\nCommand = exec sleep 1000\n[control]\n"
                          "Socket = none\n";
        const char *args[] = {
            "-c",
            du_write_str(dir, "test.ini", du_fmt("[pool]\nMax = 4\n%s", job)),
            NULL};

        du_spawn_nofile(cases[i].soft, cases[i].hard);
        pid_t pid = du_spawn(dir, args, NULL, false);
        du_spawn_nofile(0, 0);
        ck_assert_msg(du_wait_for(err, "workersd: started", 1, TU_DEADLINE_MS),
                      "%s", du_read(err));
        du_write_str(dir, "test.ini", du_fmt("[pool]\nMax = 51\n%s", job));
        kill(pid, SIGHUP);
        ck_assert_msg(du_wait_for(err, "workersd: reload: ", 1, TU_DEADLINE_MS),
                      "%s", du_read(err));
        du_write_str(dir, "test.ini", du_fmt("[pool]\nMax = 100\n%s", job));
        kill(pid, SIGHUP);
        ck_assert_msg(du_wait_for(err, "workersd: reload: ", 2, TU_DEADLINE_MS),
                      "%s", du_read(err));
        char *want = du_fmt("workersd: warning: the descriptor limit "
                            "(RLIMIT_NOFILE) is 64: it holds 51 workers, "
                            "not Max = 100 (113 needed)%s",
                            cases[i].after);
        ck_assert_msg(du_count_in(err, want) == 1 &&
                          du_count_in(err, "descriptor limit") == 1,
                      "no \"%s\" alone in:\n%s", want, du_read(err));
        kill(pid, SIGTERM);
        ck_assert_int_eq(du_wait(pid, TU_DEADLINE_MS), 0);
        du_rmtree(dir);
    }
}
END_TEST

Suite *make_nofile_suite(void);

Suite *
make_nofile_suite(void)
{
    Suite *s = suite_create("nofile");
    TCase *tc = tcase_create("nofile");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_nofile_servers_counted);
    tcase_add_test(tc, test_nofile_budget_holds);
    tcase_add_test(tc, test_plugin_reloads_hold_no_descriptor);
    tcase_add_test(tc, test_nofile_reload_max);
    suite_add_tcase(s, tc);
    return s;
}
