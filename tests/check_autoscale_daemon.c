/*
 * The idle outcome and [autoscale] in the real workersd: a Command that
 * exits IdleExitCode is idle, not failed (no StopOnErrors stop, no
 * ErrorBackoff, no log line), its worker rests IdleWait, which less and
 * close end at once; and a spool-directory consumer whose pool grows under
 * a producer and shrinks back once it stops.
 *
 * Timing: nothing here assumes a run takes at most some time. The pacing
 * checks bound from above only ("fewer than N runs in the time measured"),
 * which a slow machine only makes easier; the spool test asserts a growth
 * and a shrink well inside what it measured (see test_spool).
 */
#include "daemon/daemon.h"
#include "daemonutil.h"
#include "metrics/metrics.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000ull

struct daemon {
    char *dir, *err;
    pid_t pid;
};

/* Starts workersd on ini in a new folder ("$DIR" in a Command is it) and
 * waits for its start line. */
static void
run(struct daemon *d, const char *ini)
{
    d->dir = du_mkdtemp();
    d->err = du_fmt("%s/err", d->dir);
    const char *args[] = {"-c", du_write_str(d->dir, "a.ini", ini), NULL};
    du_subreaper();
    d->pid = du_spawn(d->dir, args, NULL, false);
    ck_assert_msg(du_wait_for(d->err, "workersd: started", 1, TU_DEADLINE_MS),
                  "no start: %s", du_read(d->err));
}

/* SIGTERM, then the exit code, within ms. */
static int
end(struct daemon *d, unsigned ms)
{
    kill(d->pid, SIGTERM);
    int code = du_wait(d->pid, ms);
    ck_assert_msg(du_no_descendants(3000), "a process was left behind");
    return code;
}

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Each run appends a line to $DIR/runs and exits 75. */
#define IDLE_CMD "Command = echo x >>\"$DIR/runs\"; exit 75\n"

/* Idle runs back to back (IdleWait = 0) under StopOnErrors and a 30 s
 * ErrorBackoff: were they failures, the first would stop the pool, or
 * each would wait 15 s at least. */
START_TEST(test_idle_is_no_failure)
{
    struct daemon d;
    run(&d, "[pool]\nStopOnErrors = true\n[job]\n" IDLE_CMD
            "IdleWait = 0\nErrorBackoff = 30s\n[middleware]\nRetry = 2\n");
    char *runs = du_fmt("%s/runs", d.dir);
    ck_assert_msg(du_wait_for(runs, "x", 20, 20000), "%d runs; log: %s",
                  du_count_in(runs, "x"), du_read(d.err));
    ck_assert_int_eq(end(&d, TU_DEADLINE_MS), 0);
    ck_assert_msg(du_count_in(d.err, "exited with status") == 0 &&
                      du_count_in(d.err, "StopOnErrors") == 0,
                  "an idle run logged as a failure: %s", du_read(d.err));
    du_rmtree(d.dir);
}
END_TEST

/* IdleExitCode = 0: exit 75 is a failure like any other. */
START_TEST(test_idle_code_none)
{
    struct daemon d;
    run(&d,
        "[pool]\nStopOnErrors = true\n[job]\n" IDLE_CMD "IdleExitCode = 0\n");
    ck_assert_int_eq(du_wait(d.pid, TU_DEADLINE_MS), 1);
    ck_assert_int_ge(du_count_in(d.err, "exited with status 75"), 1);
    du_rmtree(d.dir);
}
END_TEST

/* Two workers resting 500 ms after each idle run: over E seconds they make
 * at most 2 x (E / 0.5 + 1) runs, whatever the machine's load. Then close
 * with an IdleWait of an hour ends at once. */
START_TEST(test_idle_wait_paces)
{
    struct daemon d;
    run(&d, "[pool]\nInitial = 2\n[job]\n" IDLE_CMD "IdleWait = 500ms\n");
    char *runs = du_fmt("%s/runs", d.dir);
    ck_assert(du_wait_for(runs, "x", 1, TU_DEADLINE_MS));
    uint64_t t0 = now_ns();
    int n0 = du_count_in(runs, "x");
    ck_assert(du_wait_for(runs, "x", n0 + 6, 20000));
    usleep(500 * 1000); /* a little longer: more runs, the same bound */
    int n = du_count_in(runs, "x") - n0;
    double e = (double)(now_ns() - t0) / 1e9;
    ck_assert_msg(n <= 2 * (e / 0.5 + 1) + 2, "%d runs in %.2fs", n, e);
    ck_assert_int_eq(end(&d, TU_DEADLINE_MS), 0);
    du_rmtree(d.dir);
}
END_TEST

/* Resting an hour, then a reload that leaves the job alone (Max only):
 * the rests end at once, and IdleWait is the pool's, so a new one applies
 * without rolling the workers. */
START_TEST(test_idle_wait_reload)
{
    struct daemon d;
    const char *job = "[job]\n" IDLE_CMD "IdleWait = 1h\n";
    run(&d, du_fmt("[pool]\nInitial = 2\nMax = 4\n%s", job));
    char *runs = du_fmt("%s/runs", d.dir);
    ck_assert(du_wait_for(runs, "x", 2, TU_DEADLINE_MS));
    du_write_str(d.dir, "a.ini",
                 du_fmt("[pool]\nInitial = 2\nMax = 5\n%s", job));
    kill(d.pid, SIGHUP);
    ck_assert_msg(du_wait_for(runs, "x", 4, TU_DEADLINE_MS), "%s",
                  du_read(d.err));
    du_write_str(d.dir, "a.ini",
                 "[pool]\nInitial = 2\nMax = 5\n[job]\n" IDLE_CMD
                 "IdleWait = 2h\n");
    kill(d.pid, SIGHUP);
    ck_assert_msg(du_wait_for(runs, "x", 6, TU_DEADLINE_MS), "%s",
                  du_read(d.err));
    ck_assert_msg(du_count_in(d.err, "rolling") == 0, "%s", du_read(d.err));
    ck_assert_int_eq(end(&d, TU_DEADLINE_MS), 0);
    du_rmtree(d.dir);
}
END_TEST

/* Resting an hour: SIGUSR2 (less) removes a resting worker at once, and
 * close does not wait for the rest (CloseTimeout 60 s would exit 2). */
START_TEST(test_idle_wait_cancelled)
{
    struct daemon d;
    run(&d, "[pool]\nInitial = 2\nCloseTimeout = 60s\n[job]\n" IDLE_CMD
            "IdleWait = 1h\n");
    char *runs = du_fmt("%s/runs", d.dir);
    ck_assert(du_wait_for(runs, "x", 2, TU_DEADLINE_MS));
    kill(d.pid, SIGUSR2);
    ck_assert_msg(du_wait_for(d.err, "workers: 2 -> 1", 1, TU_DEADLINE_MS),
                  "%s", du_read(d.err));
    uint64_t t0 = now_ns();
    ck_assert_int_eq(end(&d, 30000), 0);
    ck_assert_msg(now_ns() - t0 < 20000 * MS, "the close waited out the rest");
    du_rmtree(d.dir);
}
END_TEST

/* A manual resize (SIGUSR1) turns autoscaling off, logged once; the
 * size it set holds. */
START_TEST(test_manual_turns_off)
{
    struct daemon d;
    run(&d, "[pool]\nMax = 4\n[job]\n" IDLE_CMD
            "[autoscale]\nEnable = yes\nWindow = 100ms\nCooldown = 100ms\n");
    /* A short cooldown: were it still on, it would shrink within the wait
     * below and log it. */
    ck_assert(du_count_in(d.err, "autoscale: on (target 0.80, window 100ms, "
                                 "cooldown 100ms)") == 1);
    kill(d.pid, SIGUSR1);
    ck_assert_msg(du_wait_for(d.err, "workers: 1 -> 2", 1, TU_DEADLINE_MS),
                  "%s", du_read(d.err));
    kill(d.pid, SIGUSR1);
    ck_assert_msg(du_wait_for(d.err, "workers: 2 -> 3", 1, TU_DEADLINE_MS),
                  "%s", du_read(d.err));
    /* Idle runs only: on, it would shrink after the cooldown; the ticks
     * are gone, so no autoscale line but the two. */
    usleep(300 * 1000);
    ck_assert_int_eq(end(&d, TU_DEADLINE_MS), 0);
    ck_assert_msg(du_count_in(d.err, "autoscale: off after a manual resize") ==
                          1 &&
                      du_count_in(d.err, "autoscale: ") == 2,
                  "%s", du_read(d.err));
    du_rmtree(d.dir);
}
END_TEST

/* workersctl -s sock ARGS (one or two words): its exit code, its output
 * in *out (from d's folder's ctl/). */
static int
ctl(struct daemon *d, const char *sock, char **out, const char *a,
    const char *b)
{
    const char *args[] = {"-s", sock, a, b, NULL};
    char *cdir = du_fmt("%s/ctl", d->dir);
    mkdir(cdir, 0700);
    int rc = du_wait(du_spawn_bin("workersctl", cdir, args, NULL, false),
                     TU_DEADLINE_MS);
    *out = du_fmt("%s%s", du_read(du_fmt("%s/out", cdir)),
                  du_read(du_fmt("%s/err", cdir)));
    return rc;
}

/* `workersctl autoscale on|off`, status, a manual resize and a reload that
 * drops [autoscale], through the real control socket. */
START_TEST(test_control)
{
    struct daemon d;
    char *out;
    char *sock = du_socket_path(du_fmt("as.%ld.sock", (long)getpid()));
    char *job = du_fmt("[pool]\nMax = 4\n[control]\nSocket = %s\n"
                       "[job]\n" IDLE_CMD,
                       sock);
    run(&d, du_fmt("%s[autoscale]\nWindow = 1s\n", job));
    ck_assert_int_eq(ctl(&d, sock, &out, "status", NULL), 0);
    ck_assert_msg(strstr(out, "autoscale off") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "\nautoscale: off, target 0.80, utilisation "
                              "0.00; no change yet\n") != NULL,
                  "%s", out);
    ck_assert_int_eq(ctl(&d, sock, &out, "autoscale", "on"), 0);
    ck_assert_int_eq(ctl(&d, sock, &out, "status", "--json"), 0);
    ck_assert_msg(strstr(out, "\"autoscale\":{\"enabled\":true,\"target\":"
                              "0.800,") != NULL,
                  "%s", out);
    ck_assert_int_eq(ctl(&d, sock, &out, "more", NULL), 0);
    ck_assert_msg(du_wait_for(d.err, "autoscale: off after a manual resize", 1,
                              TU_DEADLINE_MS),
                  "%s", du_read(d.err));
    /* A reload without [autoscale]: nothing to turn on. */
    du_write_str(d.dir, "a.ini", job);
    ck_assert_int_eq(ctl(&d, sock, &out, "reload", NULL), 0);
    ck_assert_msg(ctl(&d, sock, &out, "autoscale", "on") != 0, "%s %s", out,
                  du_read(d.err));
    ck_assert_msg(strstr(out, "not configured") != NULL, "%s", out);
    ck_assert_int_eq(end(&d, TU_DEADLINE_MS), 0);
    du_rmtree(d.dir);
}
END_TEST

/* ---- the spool ----------------------------------------------------------- */

/* The README's consumer: take one file (mv is atomic, so two workers never
 * take the same), process it (here: 300 ms of sleep), or exit 75 when the
 * spool is empty. */
#define SPOOL_CMD                                                              \
    "Command = f=$(ls \"$DIR/spool\"|head -n1); [ -n \"$f\" ]&&mv "            \
    "\"$DIR/spool/$f\" \"$DIR/w.$$\" 2>/dev/null||exit 75; sleep 0.3; rm "     \
    "\"$DIR/w.$$\"\n"

/* The worker counts of the log's "autoscale: A -> B workers" lines: the
 * largest B, and the last. */
static void
scan_counts(const char *log, int *max, int *last)
{
    const char *p = log;
    *max = *last = 1;
    while ((p = strstr(p, "autoscale: ")) != NULL) {
        int a, b;
        p += 11;
        if (sscanf(p, "%d -> %d workers", &a, &b) == 2) {
            *last = b;
            if (b > *max)
                *max = b;
        }
    }
}

/* The items waiting in the spool. */
static int
backlog(const char *spool)
{
    DIR *dir = opendir(spool);
    ck_assert_msg(dir != NULL, "%s: %s", spool, strerror(errno));
    int n = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(dir);
    return n;
}

static bool
spool_empty(void *arg)
{
    return backlog(arg) == 0;
}

/* The log's last count is at Min (1). */
static bool
at_min(void *arg)
{
    int max, last;
    scan_counts(du_read(arg), &max, &last);
    return last == 1;
}

/*
 * The end-to-end case. A producer drops 10 items a second into the
 * spool for 8 s; each takes 300 ms, so 3 workers are busy at steady state
 * (rate x item time / target = 3.75, so 4 at the 0.8 target) and the
 * backlog of the first seconds asks for more. Window 1 s, Cooldown 2 s.
 * Asserted:
 * - the pool grows to 3 workers at least, and never runs away to Max:
 *   at most three times the steady 4 (the backlog is work too, and on a
 *   loaded machine the shell's own start makes items longer: 9 were seen
 *   while other builds ran, and under TSan);
 * - the backlog stays bounded: never more than 40 items (one worker alone
 *   would leave 54 at the end), and at most 20 over the producer's last
 *   2 s (two workers would leave 27): 8 and 2 here, 11 and 11 while
 *   other builds loaded the machine;
 * - once the spool is empty the pool falls to Min within the policy's
 *   bound, Window + (N - Min) x Cooldown, N the count then, plus 5 s of
 *   slack for a loaded machine's ticks.
 * Measured on the 2-core machine: 3 workers 1.0-1.5 s after the producer
 * began, 7 at most, then one fewer per Cooldown, at Min 10.3 s after the
 * spool emptied at 6 workers (bound 11 s); under other builds' load 12 at
 * most, at Min 21.0 s after it emptied at 11 (bound 21 s). Under TSan the
 * slower daemon drains the backlog later, which is why the bound is counted
 * from the empty spool.
 */
START_TEST(test_spool)
{
    struct daemon d;
    char *sock = du_socket_path(du_fmt("spool.%ld.sock", (long)getpid()));
    run(&d, du_fmt("[pool]\nMin = 1\nMax = 16\n[job]\n" SPOOL_CMD
                   "IdleWait = 200ms\n[autoscale]\nEnable = true\n"
                   "Window = 1s\nCooldown = 2s\n[control]\nSocket = %s\n",
                   sock));
    char *spool = du_fmt("%s/spool", d.dir);
    ck_assert_int_eq(mkdir(spool, 0700), 0);

    const int items = 80;
    uint64_t t0 = now_ns(), grew_ns = 0;
    int max, last, most = 0, late = 0;
    for (int i = 0; i < items; i++) {
        uint64_t at = t0 + (uint64_t)i * 100 * MS;
        struct timespec ts = {(time_t)(at / 1000000000u),
                              (long)(at % 1000000000u)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
            ;
        char name[32];
        snprintf(name, sizeof name, "item%03d", i);
        du_write_str(spool, name, "");
        int n = backlog(spool);
        most = n > most ? n : most;
        if (i >= items - 20)
            late = n > late ? n : late;
        scan_counts(du_read(d.err), &max, &last);
        if (grew_ns == 0 && max >= 3)
            grew_ns = now_ns() - t0;
    }
    scan_counts(du_read(d.err), &max, &last);
    ck_assert_msg(max >= 3, "grew to %d only; log: %s", max, du_read(d.err));
    ck_assert_msg(max <= 12, "ran away to %d workers; log: %s", max,
                  du_read(d.err));
    ck_assert_msg(most <= 40 && late <= 20,
                  "backlog of %d items at most, %d in the last 2 s", most,
                  late);

    ck_assert_msg(tu_wait_until(spool_empty, spool, 60000),
                  "%d items left a minute after the producer stopped",
                  backlog(spool));
    uint64_t empty_ns = now_ns();
    int peak = max, n;
    scan_counts(du_read(d.err), &max, &n);
    unsigned bound_ms = 1000 + (unsigned)(n - 1) * 2000;
    ck_assert_msg(tu_wait_until(at_min, d.err, bound_ms + 5000),
                  "not at Min %u ms after the spool emptied at %d workers; "
                  "log: %s",
                  bound_ms + 5000, n, du_read(d.err));
    /* workersctl status names the last decision: the step to Min. */
    char *out;
    ck_assert_int_eq(ctl(&d, sock, &out, "status", NULL), 0);
    ck_assert_msg(
        strstr(out, "\nautoscale: on, target 0.80, utilisation ") != NULL &&
            strstr(out, "; last: 2 -> 1 worker (utilisation ") != NULL,
        "%s", out);
    fprintf(stderr,
            "autoscale_daemon: 3 workers %.1f s after the producer began, "
            "%d at most; backlog %d items at most, %d in its last 2 s; at "
            "Min %.1f s after the spool emptied at %d workers (bound "
            "%.1f s)\n",
            (double)grew_ns / 1e9, peak, most, late,
            (double)(now_ns() - empty_ns) / 1e9, n, bound_ms / 1e3);
    ck_assert_int_eq(end(&d, TU_DEADLINE_MS), 0);
    du_rmtree(d.dir);
}
END_TEST

/* ---- daemon/autoscale.c's state, without a pool ------------------------- */

static struct wd_autoscale_facts
facts_of(const struct wd_daemon *d)
{
    struct wd_autoscale_facts f;
    wd_autoscaler_facts(d, &f);
    return f;
}

/* On and off by Enable, the control, a manual resize and reloads. */
START_TEST(test_on_off)
{
    wd_config off = {0}, on = {0}, none = {0};
    workers_autoscale_policy p = {
        .target = 0.5, .window_ns = 1000 * MS, .cooldown_ns = 2000 * MS};
    off.autoscale = (struct wd_autoscale_cfg){true, false, p};
    on.autoscale = (struct wd_autoscale_cfg){true, true, p};
    struct wd_daemon d = {.cfg = &off, .phase = WD_STARTING};
    d.loop = ev_loop_new(EVFLAG_AUTO);
    ck_assert_int_eq(wd_autoscaler_new(&d), 0);
    ck_assert_ptr_nonnull(wd_autoscaler_lib(&d));
    struct wd_autoscale_facts f = facts_of(&d);
    ck_assert(f.configured && !f.on && f.target == 0.5);
    ck_assert_str_eq(f.decision, "");

    ck_assert_int_eq(wd_autoscaler_enable(&d, true), 0);
    ck_assert(facts_of(&d).on);
    ck_assert_int_eq(wd_autoscaler_enable(&d, true), 0); /* no-op */
    wd_autoscaler_manual(&d);
    ck_assert(!facts_of(&d).on);
    wd_autoscaler_manual(&d); /* off already: nothing */
    ck_assert(!facts_of(&d).on);

    /* A reload that leaves Enable as it was keeps the state; one that
     * changes it follows it; one without [autoscale] turns it off. */
    wd_autoscaler_apply(&d, &off);
    ck_assert(!facts_of(&d).on);
    wd_autoscaler_apply(&d, &on);
    ck_assert(facts_of(&d).on);
    wd_autoscaler_manual(&d);
    wd_autoscaler_apply(&d, &on);
    ck_assert(!facts_of(&d).on);
    on.autoscale.policy.target = 0.9;
    ck_assert_int_eq(wd_autoscaler_enable(&d, true), 0);
    wd_autoscaler_apply(&d, &none);
    ck_assert(!facts_of(&d).configured && !facts_of(&d).on);
    ck_assert_int_eq(wd_autoscaler_enable(&d, true), -ENOTSUP);
    wd_autoscaler_apply(&d, &on);
    f = facts_of(&d);
    ck_assert(f.configured && f.on && f.target == 0.9);
    /* A pool without Max cannot be turned on: its growth has no bound. */
    ck_assert_int_eq(wd_autoscaler_enable(&d, false), 0);
    ck_assert_int_eq(wd_pool_new(&d.pool, &(workers_config){0}, NULL, NULL), 0);
    ck_assert_int_eq(wd_autoscaler_enable(&d, true), -ERANGE);
    wd_pool_free(d.pool);
    d.pool = NULL;
    d.phase = WD_DRAINING;
    ck_assert_int_eq(wd_autoscaler_enable(&d, false), WORKERS_ECLOSED);
    wd_autoscaler_free(&d);
    ck_assert_ptr_null(d.autoscaler);
    ev_loop_destroy(d.loop);
}
END_TEST

Suite *make_autoscale_daemon_suite(void);

Suite *
make_autoscale_daemon_suite(void)
{
    Suite *s = suite_create("autoscale_daemon");
    TCase *tc = tcase_create("idle");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_idle_is_no_failure);
    tcase_add_test(tc, test_idle_code_none);
    tcase_add_test(tc, test_idle_wait_paces);
    tcase_add_test(tc, test_idle_wait_cancelled);
    tcase_add_test(tc, test_idle_wait_reload);
    tcase_add_test(tc, test_manual_turns_off);
    tcase_add_test(tc, test_control);
    suite_add_tcase(s, tc);
    tc = tcase_create("state");
    tcase_add_test(tc, test_on_off);
    suite_add_tcase(s, tc);
    tc = tcase_create("spool");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_spool);
    suite_add_tcase(s, tc);
    return s;
}
