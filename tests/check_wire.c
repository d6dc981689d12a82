/*
 * check_wire.c: the real workersd steered by the real workersctl through
 * its control socket: exact scaling, limits, reload (SIGHUP and workersctl
 * reload: a rolling switch that keeps the count, a refused file that
 * changes nothing), the status JSON's counts, the Prometheus text through
 * promtool, stop's exit code, and busy clients that do not stall signals.
 *
 * Each daemon gets a socket of its own, wire.PID.N.sock in the runner's
 * socket folder (du_socket_path: short whatever TMPDIR is, and removed
 * with whatever a failed test left in it); the daemon removes it as it
 * exits. A job's runs are counted by a file each run appends a line to
 * ("$DIR/runs", DIR being the daemon's folder).
 */
#include "daemonutil.h"
#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct wire {
    char *dir;  /* the daemon's folder: ini, out, err, runs */
    char *cdir; /* workersctl's: out, err of the last call */
    char *ini, *sock, *err, *runs;
    pid_t pid;
};

/* Writes the ini (sections as given, then [control] Socket) and starts the
 * daemon with env (NULL-terminated, or NULL) added to its environment;
 * returns once it started its workers. */
static void
wire_start_env(struct wire *w, const char *sections, const char *const *env)
{
    static int n;
    w->dir = du_mkdtemp();
    w->cdir = du_mkdtemp();
    w->sock = du_socket_path(du_fmt("wire.%ld.%d.sock", (long)getpid(), n++));
    w->ini =
        du_write_str(w->dir, "pool.ini",
                     du_fmt("%s[control]\nSocket = %s\n", sections, w->sock));
    w->err = du_fmt("%s/err", w->dir);
    w->runs = du_write_str(w->dir, "runs", "");
    const char *args[] = {"-c", w->ini, NULL};
    w->pid = du_spawn(w->dir, args, env, false);
    ck_assert_msg(du_wait_for(w->err, "started ", 1, TU_DEADLINE_MS), "%s",
                  du_read(w->err));
}

static void
wire_start(struct wire *w, const char *sections)
{
    wire_start_env(w, sections, NULL);
}

/* Rewrites the daemon's ini file with other sections (same socket). */
static void
wire_rewrite(struct wire *w, const char *sections)
{
    du_write_str(w->dir, "pool.ini.new",
                 du_fmt("%s[control]\nSocket = %s\n", sections, w->sock));
    ck_assert_int_eq(rename(du_fmt("%s/pool.ini.new", w->dir), w->ini), 0);
}

/* Runs workersctl -s SOCKET ARGS... (NULL-terminated): its exit code; its
 * output in *out and its errors in *err when not NULL. */
static int
ctl(struct wire *w, char **out, char **err, const char *first, ...)
{
    const char *args[16] = {"-s", w->sock, first};
    size_t n = 3;
    va_list ap;

    va_start(ap, first);
    while (n < 15 && (args[n] = va_arg(ap, const char *)) != NULL)
        n++;
    va_end(ap);
    args[n] = NULL;
    unlink(du_fmt("%s/out", w->cdir));
    unlink(du_fmt("%s/err", w->cdir));
    int rc = du_wait(du_spawn_bin("workersctl", w->cdir, args, NULL, false),
                     TU_DEADLINE_MS);
    if (out != NULL)
        *out = du_read(du_fmt("%s/out", w->cdir));
    if (err != NULL)
        *err = du_read(du_fmt("%s/err", w->cdir));
    return rc;
}

/* `status --json`, parsed; kept reachable for LeakSanitizer's sake. */
static json_t *
status(struct wire *w)
{
    char *out;
    ck_assert_int_eq(ctl(w, &out, NULL, "--json", "status", NULL), 0);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    ck_assert_msg(j != NULL, "%s: %s", e.text, out);
    return j;
}

static long long
status_int(struct wire *w, const char *key)
{
    json_t *j = status(w);
    long long v = json_integer_value(json_object_get(j, key));
    json_decref(j);
    return v;
}

/* Stops the daemon with workersctl: the daemon's exit code. */
static int
wire_stop(struct wire *w)
{
    char *out;
    int rc = ctl(w, &out, NULL, "stop", NULL);
    ck_assert_int_eq(du_wait(w->pid, TU_DEADLINE_MS), rc);
    ck_assert_msg(access(w->sock, F_OK) != 0, "the socket outlived it");
    du_rmtree(w->dir);
    du_rmtree(w->cdir);
    return rc;
}

START_TEST(test_wire_scale)
{
    struct wire w;
    char *out, *err;

    wire_start(&w, "[pool]\nMin = 1\nMax = 6\nInitial = 2\n"
                   "[job]\nCommand = exec sleep 1000\n");
    ck_assert(du_wait_children(w.pid, 2, TU_DEADLINE_MS));
    ck_assert_int_eq(ctl(&w, &out, NULL, "set", "4", NULL), 0);
    ck_assert_str_eq(out, "workers: 2 -> 4\n");
    ck_assert(du_wait_children(w.pid, 4, TU_DEADLINE_MS));

    /* Beyond Max: refused, naming the limit, nothing changed. */
    ck_assert_int_eq(ctl(&w, &out, &err, "set", "7", NULL), 1);
    ck_assert_msg(strstr(err, "above Max (6)") != NULL, "%s", err);
    ck_assert_int_eq(status_int(&w, "workers"), 4);
    ck_assert_int_eq(du_children(w.pid), 4);

    ck_assert_int_eq(ctl(&w, &out, NULL, "more", "5", NULL), 0);
    ck_assert_str_eq(out, "workers: 4 -> 6 (max reached)\n");
    ck_assert(du_wait_children(w.pid, 6, TU_DEADLINE_MS));
    ck_assert_int_eq(ctl(&w, &out, NULL, "less", NULL), 0);
    ck_assert_str_eq(out, "workers: 6 -> 5\n");
    ck_assert_int_eq(ctl(&w, &out, NULL, "less", "9", NULL), 0);
    ck_assert_str_eq(out, "workers: 5 -> 1 (min reached)\n");
    ck_assert(du_wait_children(w.pid, 1, TU_DEADLINE_MS));
    ck_assert_int_eq(status_int(&w, "workers"), 1);
    ck_assert_int_eq(ctl(&w, &out, &err, "set", "0", NULL), 1);
    ck_assert_msg(strstr(err, "below Min (1)") != NULL, "%s", err);
    ck_assert_int_eq(wire_stop(&w), 0);
}
END_TEST

/* stop waits for the exit and returns its code: 2 when the deadline
 * stop --timeout gave passed. */
START_TEST(test_wire_stop_code)
{
    struct wire w;
    char *out;

    wire_start(&w, "[pool]\nInitial = 1\n[job]\n"
                   "Command = trap '' TERM; echo r >> \"$DIR/runs\"; "
                   "while :; do sleep 0.05; done\n"
                   "KillGrace = 5s\n");
    /* The run ignores SIGTERM from here on. */
    ck_assert(du_wait_for(w.runs, "r", 1, TU_DEADLINE_MS));
    int rc = ctl(&w, &out, NULL, "stop", "--timeout", "200ms", NULL);
    ck_assert_msg(rc == 2, "%d: %s", rc, du_read(w.err));
    ck_assert_int_eq(du_wait(w.pid, TU_DEADLINE_MS), 2);
    du_rmtree(w.dir);
    du_rmtree(w.cdir);
}
END_TEST

/* A reload that changes Max and Command keeps the count set at run time
 * and switches every worker after its run: once all have, the old command
 * never starts again. */
/* A [job] whose runs append word to the runs file. */
static char *
job_echo(const char *word)
{
    return du_fmt("[job]\nCommand = echo %s >> \"$DIR/runs\"; sleep 0.05\n",
                  word);
}

START_TEST(test_wire_reload_rolls)
{
    struct wire w;
    char *out;

    wire_start(&w, du_fmt("[pool]\nMin = 1\nMax = 4\nInitial = 3\n%s",
                          job_echo("old")));
    ck_assert_int_eq(ctl(&w, &out, NULL, "set", "2", NULL), 0);
    ck_assert(du_wait_for(w.runs, "old", 4, TU_DEADLINE_MS));
    wire_rewrite(&w, du_fmt("[pool]\nMin = 1\nMax = 8\nInitial = 3\n%s",
                            job_echo("new")));
    ck_assert_int_eq(ctl(&w, &out, NULL, "reload", NULL), 0);
    ck_assert_msg(strstr(out, "Max 4 -> 8, Command changed: rolling 2 "
                              "workers") != NULL,
                  "%s", out);
    ck_assert(du_wait_for(w.runs, "new", 6, TU_DEADLINE_MS));
    int old = du_count_in(w.runs, "old");
    ck_assert(du_wait_for(w.runs, "new", 20, TU_DEADLINE_MS));
    ck_assert_int_eq(du_count_in(w.runs, "old"), old);
    json_t *s = status(&w);
    ck_assert_int_eq(json_integer_value(json_object_get(s, "workers")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(s, "max")), 8);
    ck_assert_int_eq(json_integer_value(json_object_get(s, "reloads")), 1);
    json_decref(s);

    /* SIGHUP does the same: Min only, the count kept. */
    wire_rewrite(&w, du_fmt("[pool]\nMin = 2\nMax = 8\n%s", job_echo("new")));
    kill(w.pid, SIGHUP);
    ck_assert_msg(du_wait_for(w.err, "reload: Min 1 -> 2", 1, TU_DEADLINE_MS),
                  "%s", du_read(w.err));
    ck_assert_int_eq(status_int(&w, "workers"), 2);
    ck_assert_int_eq(status_int(&w, "reloads"), 2);
    ck_assert_int_eq(wire_stop(&w), 0);
}
END_TEST

/* A refused file changes nothing: exit 78 with the error line, the old job
 * runs on; SIGHUP with it only logs. */
START_TEST(test_wire_reload_refused)
{
    struct wire w;
    char *out, *err;

    wire_start(&w, "[pool]\nInitial = 1\n[job]\n"
                   "Command = echo old >> \"$DIR/runs\"; sleep 0.02\n");
    wire_rewrite(&w, "[pool]\nMax = x\n[job]\nCommand = echo new\n");
    ck_assert_int_eq(ctl(&w, &out, &err, "reload", NULL), 78);
    ck_assert_msg(strstr(err, "pool.ini:2: Max = x") != NULL, "%s", err);
    kill(w.pid, SIGHUP);
    ck_assert(du_wait_for(w.err, "reload refused, nothing changed", 2,
                          TU_DEADLINE_MS));
    int old = du_count_in(w.runs, "old");
    ck_assert(du_wait_for(w.runs, "old", old + 3, TU_DEADLINE_MS));
    ck_assert_int_eq(du_count_in(w.runs, "new"), 0);
    ck_assert_int_eq(status_int(&w, "reloads"), 0);

    /* A Command that cannot even open (a Plugin that is not there): the
     * new generation fails, the old one runs on. */
    wire_rewrite(&w, "[pool]\nInitial = 1\n[job]\nPlugin = /nonexistent.so\n");
    ck_assert_int_eq(ctl(&w, &out, &err, "reload", NULL), 78);
    ck_assert_msg(strstr(err, "nonexistent.so") != NULL, "%s", err);
    old = du_count_in(w.runs, "old");
    ck_assert(du_wait_for(w.runs, "old", old + 3, TU_DEADLINE_MS));
    ck_assert_int_eq(wire_stop(&w), 0);
}
END_TEST

/* A plugin rebuilt in place (same path, same inode, new code) and
 * reloaded: the new code runs. */
START_TEST(test_wire_plugin_rebuilt)
{
    struct wire w;
    char *out;
    const char *example = du_fmt("%s/plugins/example.so", WORKERS_BUILD_DIR);
    const char *failing =
        du_fmt("%s/tests/plugins/failing.so", WORKERS_BUILD_DIR);
    char *dir = du_mkdtemp();
    char *so = du_fmt("%s/p.so", dir);
    ck_assert_int_eq(system(du_fmt("cp '%s' '%s'", example, so)), 0);
    wire_start(&w, du_fmt("[pool]\nInitial = 1\n[job]\nPlugin = %s\n"
                          "Arg = 10\n",
                          so));
    /* Overwritten, not replaced: cp keeps the inode. */
    ck_assert_int_eq(system(du_fmt("cp '%s' '%s'", failing, so)), 0);
    ck_assert_int_eq(ctl(&w, &out, NULL, "reload", NULL), 0);
    ck_assert_msg(strstr(out, "Plugin reloaded: rolling 1 worker") != NULL,
                  "%s", out);
    ck_assert_msg(du_wait_for(w.err, "input/output error", 1, TU_DEADLINE_MS),
                  "%s", du_read(w.err));
    ck_assert_int_eq(wire_stop(&w), 0);
    du_rmtree(dir);
}
END_TEST

/* No busy worker in the status. */
static bool
idle(void *arg)
{
    return status_int(arg, "busy") == 0;
}

/* pause: the runs in progress finish and none starts for a whole second,
 * the count kept; resume: runs start again. */
START_TEST(test_wire_pause)
{
    struct wire w;
    char *out;

    wire_start(&w, "[pool]\nInitial = 2\n[job]\n"
                   "Command = echo r >> \"$DIR/runs\"; sleep 0.05\n");
    ck_assert(du_wait_for(w.runs, "r", 4, TU_DEADLINE_MS));
    ck_assert_int_eq(ctl(&w, &out, NULL, "pause", NULL), 0);
    ck_assert(tu_wait_until(idle, &w, TU_DEADLINE_MS));
    int runs = du_count_in(w.runs, "r");
    tu_sleep_ms(1000);
    ck_assert_int_eq(du_count_in(w.runs, "r"), runs);
    json_t *s = status(&w);
    ck_assert(json_is_true(json_object_get(s, "paused")));
    ck_assert_int_eq(json_integer_value(json_object_get(s, "workers")), 2);
    json_decref(s);
    ck_assert_int_eq(ctl(&w, &out, NULL, "resume", NULL), 0);
    ck_assert(du_wait_for(w.runs, "r", runs + 4, TU_DEADLINE_MS));
    s = status(&w);
    ck_assert(json_is_false(json_object_get(s, "paused")));
    json_decref(s);
    /* A close works while paused. */
    ck_assert_int_eq(ctl(&w, &out, NULL, "pause", NULL), 0);
    ck_assert_int_eq(wire_stop(&w), 0);
}
END_TEST

/* The status JSON's counts match a job that fails every 3rd run. */
START_TEST(test_wire_status_counts)
{
    struct wire w;

    wire_start(&w, "[pool]\nMin = 1\nMax = 1\nInitial = 1\n[job]\n"
                   "ErrorBackoff = 0\n"
                   "Command = n=$(wc -l < \"$DIR/runs\"); echo r >> "
                   "\"$DIR/runs\"; test $(((n + 1) % 3)) -ne 0\n");
    ck_assert(du_wait_for(w.runs, "r", 10, TU_DEADLINE_MS));
    json_t *s = status(&w);
    json_t *runs = json_object_get(s, "runs");
    long long started = json_integer_value(json_object_get(runs, "started"));
    long long ok = json_integer_value(json_object_get(runs, "succeeded"));
    long long failed = json_integer_value(json_object_get(runs, "failed"));
    ck_assert_int_ge(ok + failed, 9);
    ck_assert_int_le(started - (ok + failed), 1);
    ck_assert_int_eq(failed, (ok + failed) / 3);
    json_t *last = json_object_get(s, "last_error");
    ck_assert_msg(json_is_object(last), "%s", json_dumps(s, 0));
    ck_assert_str_eq(json_string_value(json_object_get(last, "message")),
                     "exit 1");
    ck_assert_int_eq(json_integer_value(json_object_get(s, "pid")), w.pid);
    ck_assert(json_is_false(json_object_get(s, "paused")));
    ck_assert_int_eq(json_array_size(json_object_get(s, "worker_list")), 1);
    json_decref(s);
    ck_assert_int_eq(wire_stop(&w), 0);
}
END_TEST

/* A pool without Max: the summary line says so (max is null in JSON). */
START_TEST(test_wire_status_no_max)
{
    struct wire w;
    char *out;

    /* With a metrics file, written at the start and the end (the
     * autoscaler's facts read before it exists and after it is gone). */
    char *prom = du_fmt("%s/m.prom", du_mkdtemp());
    wire_start(&w, du_fmt("[job]\nCommand = exec sleep 1000\n"
                          "[metrics]\nFile = %s\n",
                          prom));
    /* The start line points at workersctl first. */
    ck_assert_msg(strstr(du_read(w.err), ": workersctl -c ") != NULL, "%s",
                  du_read(w.err));
    ck_assert(du_wait_children(w.pid, 1, TU_DEADLINE_MS));
    ck_assert_int_eq(ctl(&w, &out, NULL, "status", NULL), 0);
    ck_assert_msg(strstr(out, ", min 0, no max,") != NULL, "%s", out);
    ck_assert_int_eq(wire_stop(&w), 0);
    ck_assert(strstr(du_read(prom), "\nworkersd_workers ") != NULL);
}
END_TEST

START_TEST(test_wire_metrics_promtool)
{
    struct wire w;
    char *out;

    if (access("/usr/bin/promtool", X_OK) != 0) {
        fprintf(stderr, "wire: promtool not installed (Debian package "
                        "prometheus): skipping the promtool check\n");
        return;
    }
    wire_start(&w, "[pool]\nInitial = 2\n[job]\n"
                   "Command = echo r >> \"$DIR/runs\"; sleep 0.01\n");
    ck_assert(du_wait_for(w.runs, "r", 4, TU_DEADLINE_MS));
    ck_assert_int_eq(ctl(&w, &out, NULL, "metrics", NULL), 0);
    ck_assert_msg(strstr(out, "workersd_workers 2\n") != NULL, "%s", out);
    char *text = du_write_str(w.cdir, "metrics", out);
    char *said = du_fmt("%s/promtool.out", w.cdir);
    int rc = system(du_fmt("/usr/bin/promtool check metrics < '%s' > '%s' "
                           "2>&1",
                           text, said));
    ck_assert_msg(rc == 0 && *du_read(said) == '\0', "promtool (%d): %s", rc,
                  du_read(said));
    ck_assert_int_eq(wire_stop(&w), 0);
}
END_TEST

/* 15 clients at once and one that never sends its request (the 16th):
 * they are all served, and a signal is handled meanwhile. */
START_TEST(test_wire_busy_clients)
{
    struct wire w;
    pid_t pids[15];

    wire_start(&w, "[pool]\nMin = 1\nInitial = 1\n[job]\n"
                   "Command = exec sleep 1000\n");
    int slow = du_connect_unix(w.sock);
    ck_assert_int_ge(slow, 0);
    ck_assert_int_eq(write(slow, "sta", 3), 3);
    for (int i = 0; i < 15; i++) {
        const char *args[] = {"-s", w.sock, "status", NULL};
        pids[i] = du_spawn_bin("workersctl", w.cdir, args, NULL, false);
    }
    kill(w.pid, SIGUSR1);
    ck_assert(du_wait_for(w.err, "workers: 1 -> 2", 1, TU_DEADLINE_MS));
    for (int i = 0; i < 15; i++)
        ck_assert_int_eq(du_wait(pids[i], TU_DEADLINE_MS), 0);
    close(slow);
    ck_assert_int_eq(wire_stop(&w), 0);
}
END_TEST

/* systemd hears READY=1 with the new STATUS=, RELOADING=1 and READY=1
 * around a reload, "paused" in STATUS=. */
START_TEST(test_wire_notify)
{
    struct wire w;
    char *out;
    char *name = du_fmt("@wdwire.%ld", (long)getpid());
    int fd = du_notify_socket(name);
    const char *env[] = {du_fmt("NOTIFY_SOCKET=%s", name), NULL};

    wire_start_env(&w, "[pool]\nInitial = 1\n[job]\nCommand = sleep 1000\n",
                   env);
    /* READY=1 carries the first STATUS=. */
    ck_assert(du_notify_expect(fd, "\nSTATUS=1 worker (", TU_DEADLINE_MS));
    ck_assert_int_eq(ctl(&w, &out, NULL, "reload", NULL), 0);
    ck_assert(
        du_notify_expect(fd, "RELOADING=1\nMONOTONIC_USEC=", TU_DEADLINE_MS));
    ck_assert(du_notify_expect(fd, "READY=1\nSTATUS=", TU_DEADLINE_MS));
    ck_assert_int_eq(ctl(&w, &out, NULL, "pause", NULL), 0);
    ck_assert(du_notify_expect(fd, "STATUS=paused", TU_DEADLINE_MS));
    ck_assert_int_eq(wire_stop(&w), 0);
    close(fd);
}
END_TEST

/* A second daemon on a socket a live one serves: exit 78, naming it. */
START_TEST(test_wire_socket_taken)
{
    struct wire w;

    wire_start(&w, "[pool]\nInitial = 1\n[job]\nCommand = sleep 1000\n");
    char *dir = du_mkdtemp();
    char *ini = du_write_str(dir, "pool.ini",
                             du_fmt("[job]\nCommand = sleep 1000\n"
                                    "[control]\nSocket = %s\n",
                                    w.sock));
    const char *args[] = {"-c", ini, NULL};
    ck_assert_int_eq(du_run(dir, args), 78);
    char *err = du_read(du_fmt("%s/err", dir));
    ck_assert_msg(strstr(err, w.sock) != NULL, "%s", err);
    du_rmtree(dir);
    ck_assert_int_eq(status_int(&w, "workers"), 1);
    ck_assert_int_eq(wire_stop(&w), 0);
}
END_TEST

Suite *make_wire_suite(void);

Suite *
make_wire_suite(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("wire");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_wire_scale);
    tcase_add_test(tc, test_wire_stop_code);
    tcase_add_test(tc, test_wire_reload_rolls);
    tcase_add_test(tc, test_wire_reload_refused);
    tcase_add_test(tc, test_wire_plugin_rebuilt);
    tcase_add_test(tc, test_wire_pause);
    tcase_add_test(tc, test_wire_status_counts);
    tcase_add_test(tc, test_wire_status_no_max);
    tcase_add_test(tc, test_wire_metrics_promtool);
    tcase_add_test(tc, test_wire_busy_clients);
    tcase_add_test(tc, test_wire_notify);
    tcase_add_test(tc, test_wire_socket_taken);
    suite_add_tcase(s, tc);
    return s;
}
