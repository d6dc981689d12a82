/*
 * workersd end to end: the real binary (build/workersd), its stderr in a
 * file, its children counted in /proc. Every step waits for what the
 * daemon says or does (a log line, a child count, a datagram) before the
 * next: Unix coalesces a signal sent twice before it is handled, so a test
 * sends the next signal only after the log line of the previous one.
 */
#include "daemonutil.h"
#include "plugins/generation.h"
#include "testutil.h"
#include "workersd.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct run {
    char *dir;
    char *ini;
    char *err; /* the daemon's stderr */
    pid_t pid;
};

/* text with every "@DIR@" replaced by dir (malloc'd). */
static char *
subst_dir(const char *text, const char *dir)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    const char *at;

    while ((at = strstr(text, "@DIR@")) != NULL) {
        fwrite(text, 1, (size_t)(at - text), f);
        fputs(dir, f);
        text = at + 5;
    }
    fputs(text, f);
    fclose(f);
    return out;
}

/* Writes the ini (where @DIR@ is dir, the run's own folder) and spawns
 * workersd on it, with env_extra added to its environment (du_spawn adds
 * DIR=dir: a command that names the folder more than once says "$DIR", so
 * its line does not grow with TMPDIR). */
static void
spawn_in(struct run *r, char *dir, const char *const *env, const char *ini)
{
    r->dir = dir;
    char *text = subst_dir(ini, r->dir);
    r->ini = du_write_str(r->dir, "test.ini", text);
    free(text);
    r->err = du_fmt("%s/err", r->dir);
    du_subreaper();
    const char *args[] = {"-c", r->ini, NULL};
    r->pid = du_spawn(r->dir, args, env, false);
}

/* As spawn_in, in a new folder, and waits until the workers started. */
static void
start(struct run *r, const char *const *env_extra, const char *ini)
{
    spawn_in(r, du_mkdtemp(), env_extra, ini);
    ck_assert_msg(du_wait_for(r->err, "workersd: started", 1, TU_DEADLINE_MS),
                  "no start: %s", du_read(r->err));
}

static void
expect_log(struct run *r, const char *needle, int n)
{
    ck_assert_msg(du_wait_for(r->err, needle, n, TU_DEADLINE_MS),
                  "no '%s' (x%d) in: %s", needle, n, du_read(r->err));
}

static void
expect_children(struct run *r, int n)
{
    ck_assert_msg(du_wait_children(r->pid, n, TU_DEADLINE_MS),
                  "%d children, want %d; log: %s", du_children(r->pid), n,
                  du_read(r->err));
}

static bool
exists(void *path)
{
    return access(path, F_OK) == 0;
}

/* Waits for the file dir/name that a job writes. */
static char *
expect_file(struct run *r, const char *name)
{
    char *path;

    path = du_fmt("%s/%s", r->dir, name);
    ck_assert_msg(tu_wait_until(exists, path, TU_DEADLINE_MS), "no %s; log: %s",
                  path, du_read(r->err));
    return path;
}

/* Signals, then expects the exit code and no process left behind. */
static void
stop(struct run *r, int sig, int code)
{
    if (sig != 0)
        kill(r->pid, sig);
    int got = du_wait(r->pid, TU_DEADLINE_MS);
    ck_assert_msg(got == code, "exit %d, want %d; log: %s", got, code,
                  du_read(r->err));
    ck_assert_msg(du_no_descendants(3000), "a process was left behind");
}

/* ---- command line ----------------------------------------------------- */

START_TEST(test_cli)
{
    char *dir = du_mkdtemp(), *out, *err;
    const char *help[] = {"-h", NULL}, *lhelp[] = {"--help", NULL};
    const char *ver[] = {"-V", NULL}, *lver[] = {"--version", NULL};
    const char *none[] = {NULL}, *bad[] = {"-x", NULL};
    const char *extra[] = {"-c", "a.ini", "more", NULL};
    const char *noarg[] = {"-c", NULL};

    out = du_fmt("%s/out", dir);
    err = du_fmt("%s/err", dir);
    ck_assert_int_eq(du_run(dir, help), 0);
    ck_assert_int_eq(du_run(dir, lhelp), 0);
    ck_assert_int_eq(du_count_in(out, "usage: workersd -c FILE"), 2);
    /* Every exit code is documented. */
    ck_assert_int_eq(du_count_in(out, "  78  configuration error"), 2);
    ck_assert_int_eq(du_count_in(out, "  64  usage error"), 2);
    ck_assert_int_eq(du_count_in(out, "   2  the close deadline"), 2);
    ck_assert_int_eq(du_run(dir, ver), 0);
    ck_assert_int_eq(du_run(dir, lver), 0);
    ck_assert_int_eq(du_count_in(out, "workersd " WORKERS_VERSION_STRING), 2);
    ck_assert_int_eq(du_count_in(err, "usage"), 0);

    ck_assert_int_eq(du_run(dir, none), WD_EXIT_USAGE);
    ck_assert_int_eq(du_run(dir, bad), WD_EXIT_USAGE);
    ck_assert_int_eq(du_run(dir, extra), WD_EXIT_USAGE);
    ck_assert_int_eq(du_run(dir, noarg), WD_EXIT_USAGE);
    ck_assert_int_eq(du_count_in(err, "usage: workersd"), 4);
    ck_assert_int_eq(du_count_in(err, "missing -c FILE"), 1);
}
END_TEST

/* The shipped configs are valid (-t), the plugin one through its own
 * relative path when the default build folder holds the plugin. */
START_TEST(test_shipped_configs)
{
    char *dir = du_mkdtemp(), *err;
    char *pool = du_keep(tu_src_path("conf/pool.ini"));
    const char *args[] = {"-t", "-c", pool, NULL};

    err = du_fmt("%s/err", dir);
    ck_assert_int_eq(du_run(dir, args), 0);
    ck_assert_int_eq(du_count_in(err, "configuration file"), 1);
    ck_assert_int_eq(du_count_in(err, "conf/pool.ini OK"), 1);

    /* conf/plugin.ini names ../build/plugins/example.so; a sanitizer
     * build keeps its plugins elsewhere, so test a copy that names it. */
    char *plugin = du_keep(tu_src_path("conf/plugin.ini"));
    char *text = du_read(plugin), *line, *copy;
    ck_assert_ptr_nonnull(line = strstr(text, "Plugin = "));
    *line = '\0';
    char *rest = strchr(line + 1, '\n');
    copy = du_fmt("%sPlugin = %s%s", text,
                  (char *)du_keep(tu_build_path("plugins/example.so")), rest);
    args[2] = du_write_str(dir, "plugin.ini", copy);
    ck_assert_int_eq(du_run(dir, args), 0);
    if (access(du_keep(tu_src_path("build/plugins/example.so")), F_OK) == 0) {
        args[2] = plugin;
        ck_assert_int_eq(du_run(dir, args), 0);
    }
    ck_assert_int_eq(du_count_in(err, " OK"), 3 - (args[2] != plugin));
}
END_TEST

/* A config the loader accepts but the job does not: exit 78, one line. */
START_TEST(test_plugin_errors)
{
    char *dir = du_mkdtemp(), *err;
    const char *args[] = {"-t", "-c", NULL, NULL};

    err = du_fmt("%s/err", dir);
    args[2] = du_write_str(dir, "nofile.ini", "[job]\nPlugin = none.so\n");
    ck_assert_int_eq(du_run(dir, args), WD_EXIT_CONFIG);
    args[2] = du_write_str(dir, "dir.ini", "[job]\nPlugin = .\n");
    ck_assert_int_eq(du_run(dir, args), WD_EXIT_CONFIG);
    du_write_str(dir, "text.so", "not an ELF file\n");
    args[2] = du_write_str(dir, "text.ini", "[job]\nPlugin = text.so\n");
    ck_assert_int_eq(du_run(dir, args), WD_EXIT_CONFIG);
    ck_assert_int_eq(du_count_in(err, "workersd: error: "), 3);
    ck_assert_int_eq(du_count_in(err, "\n"), 3);
}
END_TEST

/* ---- scaling ----------------------------------------------------------------
 */

START_TEST(test_scale)
{
    struct run r;

    start(&r, NULL,
          "[pool]\nInitial = 2\nMax = 8\nCloseTimeout = 10s\n"
          "[job]\nCommand = exec sleep 1000\n");
    expect_children(&r, 2);
    kill(r.pid, SIGUSR1);
    expect_log(&r, "workers: 2 -> 3", 1);
    kill(r.pid, SIGUSR1);
    expect_log(&r, "workers: 3 -> 4", 1);
    kill(r.pid, SIGUSR1);
    expect_log(&r, "workers: 4 -> 5", 1);
    expect_children(&r, 5);
    kill(r.pid, SIGUSR2);
    expect_log(&r, "workers: 5 -> 4", 1);
    /* The removed worker's child got SIGTERM: four run at once. */
    expect_children(&r, 4);
    stop(&r, SIGINT, 0);
    ck_assert_int_eq(du_count_in(r.err, "closed: every worker finished"), 1);
}
END_TEST

START_TEST(test_scale_limits)
{
    struct run r;

    start(&r, NULL,
          "[pool]\nMin = 1\nMax = 2\nInitial = 2\n"
          "[job]\nCommand = exec sleep 1000\n");
    expect_children(&r, 2);
    kill(r.pid, SIGUSR1);
    expect_log(&r, "max reached (2)", 1);
    ck_assert_int_eq(du_children(r.pid), 2);
    kill(r.pid, SIGUSR2);
    expect_log(&r, "workers: 2 -> 1", 1);
    expect_children(&r, 1);
    kill(r.pid, SIGUSR2);
    expect_log(&r, "min reached (1)", 1);
    ck_assert_int_eq(du_children(r.pid), 1);
    /* Back up from the minimum, still working. */
    kill(r.pid, SIGUSR1);
    expect_log(&r, "workers: 1 -> 2", 1);
    expect_children(&r, 2);
    stop(&r, SIGTERM, 0);
}
END_TEST

/* ---- closing
 * ------------------------------------------------------------------- */

START_TEST(test_close_quick_jobs)
{
    struct run r;

    start(&r, NULL,
          "[pool]\nInitial = 3\n[job]\nCommand = : > @DIR@/ran; sleep 0.01\n");
    expect_file(&r, "ran");
    stop(&r, SIGINT, 0);
    ck_assert_int_eq(du_count_in(r.err, "SIGINT: closing"), 1);
}
END_TEST

/* A child that ignores SIGTERM: killed at the deadline, exit 2. */
START_TEST(test_close_deadline)
{
    struct run r;

    start(&r, NULL,
          "[pool]\nInitial = 2\nCloseTimeout = 500ms\n"
          "[job]\nCommand = trap '' TERM; : > @DIR@/up.$WORKERS_WORKER_ID; "
          "exec sleep 1000\n");
    /* Both shells have set their trap once both markers exist. */
    expect_file(&r, "up.1");
    expect_file(&r, "up.2");
    uint64_t t0 = tu_now_ms();
    stop(&r, SIGINT, WD_EXIT_TIMEOUT);
    uint64_t took = tu_now_ms() - t0;
    ck_assert_msg(took >= 450 && took < 5000, "closed in %llu ms",
                  (unsigned long long)took);
    ck_assert_int_eq(du_count_in(r.err, "(deadline 500ms)"), 1);
    ck_assert_int_eq(du_count_in(r.err, "close deadline passed"), 1);
    ck_assert_int_eq(du_count_in(r.err, "closed after the deadline"), 1);
}
END_TEST

/* A second SIGINT does not wait for the deadline. */
START_TEST(test_close_forced)
{
    struct run r;

    start(&r, NULL,
          "[pool]\nCloseTimeout = 60s\n"
          "[job]\nCommand = trap '' TERM; : > @DIR@/up; exec sleep 1000\n");
    expect_file(&r, "up");
    kill(r.pid, SIGINT);
    expect_log(&r, "SIGINT: closing", 1);
    uint64_t t0 = tu_now_ms();
    stop(&r, SIGINT, WD_EXIT_TIMEOUT);
    ck_assert_uint_lt(tu_now_ms() - t0, 5000);
    ck_assert_int_eq(du_count_in(r.err, "second SIGINT: forcing the close"), 1);
}
END_TEST

/* Signals during the close change nothing. */
START_TEST(test_scale_while_closing)
{
    struct run r;

    start(&r, NULL,
          "[pool]\nCloseTimeout = 60s\n"
          "[job]\nCommand = trap '' TERM; : > @DIR@/up; exec sleep 1000\n");
    expect_file(&r, "up");
    kill(r.pid, SIGTERM);
    expect_log(&r, "SIGTERM: closing", 1);
    kill(r.pid, SIGUSR1);
    expect_log(&r, "closing: SIGUSR1 ignored", 1);
    ck_assert_int_eq(du_children(r.pid), 1);
    stop(&r, SIGTERM, WD_EXIT_TIMEOUT);
}
END_TEST

/* ---- job errors -------------------------------------------------------------
 */

START_TEST(test_run_timeout)
{
    struct run r;

    start(&r, NULL,
          "[pool]\nCloseTimeout = 10s\n"
          "[job]\nCommand = exec sleep 1000\nTimeout = 200ms\n"
          "KillGrace = 200ms\n");
    expect_log(&r, "timed out", 2);
    /* Still running: each timed-out run is followed by a new one. */
    expect_children(&r, 1);
    stop(&r, SIGINT, 0);
}
END_TEST

START_TEST(test_stop_on_errors)
{
    struct run r;

    start(&r, NULL,
          "[pool]\nInitial = 2\nStopOnErrors = true\n"
          "[job]\nCommand = exit 3\n");
    stop(&r, 0, WD_EXIT_JOB);
    ck_assert_int_ge(du_count_in(r.err, "exited with status 3"), 1);
    ck_assert_int_eq(du_count_in(r.err, "StopOnErrors stops the pool"), 1);
    ck_assert_int_eq(du_count_in(r.err, "closed: a job error stopped the pool"),
                     1);
}
END_TEST

/* Without StopOnErrors, failures are logged and the pool goes on. */
START_TEST(test_errors_go_on)
{
    struct run r;

    start(&r, NULL,
          "[pool]\n[job]\nCommand = sleep 0.01; exit 4\n"
          "[middleware]\nRetry = 1\nWait = 10ms\n");
    expect_log(&r, "exited with status 4", 4);
    stop(&r, SIGINT, 0);
}
END_TEST

/* ---- plugin
 * ------------------------------------------------------------------ */

START_TEST(test_plugin)
{
    struct run r;
    char *ini;

    ini = du_fmt("[pool]\nInitial = 2\nCloseTimeout = 5s\n"
                 "[job]\nPlugin = %s\n",
                 (char *)du_keep(tu_build_path("plugins/example.so")));
    start(&r, NULL, ini);
    kill(r.pid, SIGUSR1);
    expect_log(&r, "workers: 2 -> 3", 1);
    stop(&r, SIGINT, 0);
}
END_TEST

/* A test plugin from tests/plugins, as an ini [job] section. */
static char *
plugin_job(const char *name)
{
    return du_fmt("[job]\nPlugin = %s/tests/plugins/%s.so\n",
                  (char *)du_keep(tu_build_path("")), name);
}

/* ---- misbehaving commands (README "Misbehaving jobs") ------------------ */

static bool
pid_gone(void *pidp)
{
    return kill(*(pid_t *)pidp, 0) != 0 && errno == ESRCH;
}

/* `cmd &` in a command: its process group is killed when the run ends. */
START_TEST(test_background_child_dies_with_run)
{
    struct run r;

    start(&r, NULL,
          "[job]\nCommand = [ -e \"$DIR/bg\" ] && exec sleep 1000; "
          "sleep 1000 & echo $! > \"$DIR/bg\"\n");
    char *bg = expect_file(&r, "bg");
    ck_assert(du_wait_for(bg, "\n", 1, TU_DEADLINE_MS));
    pid_t pid = (pid_t)atoi(du_read(bg));
    ck_assert_int_gt(pid, 1);
    ck_assert_msg(tu_wait_until(pid_gone, &pid, TU_DEADLINE_MS),
                  "background child %d outlived its run", (int)pid);
    stop(&r, SIGINT, 0);
}
END_TEST

/* A command that closes its stdin, stdout and stderr: its own business;
 * the daemon goes on running, logging and scaling. */
START_TEST(test_closed_stdout)
{
    struct run r;

    start(
        &r, NULL,
        "[job]\nCommand = exec <&- >&- 2>&-; : > @DIR@/ran.$WORKERS_WORKER_ID; "
        "sleep 0.01\n");
    expect_file(&r, "ran.1");
    kill(r.pid, SIGUSR1);
    expect_log(&r, "workers: 1 -> 2", 1);
    expect_file(&r, "ran.2");
    stop(&r, SIGINT, 0);
}
END_TEST

/* A run meant to last for hours ends on the close's SIGTERM, well before
 * the deadline: exit 0. */
START_TEST(test_hours_long_run)
{
    struct run r;

    start(&r, NULL,
          "[pool]\nCloseTimeout = 60s\n"
          "[job]\nCommand = : > @DIR@/up; exec sleep 36000\n");
    expect_file(&r, "up");
    uint64_t t0 = tu_now_ms();
    stop(&r, SIGINT, 0);
    ck_assert_uint_lt(tu_now_ms() - t0, 30000);
    ck_assert_int_eq(du_count_in(r.err, "closed: every worker finished"), 1);
}
END_TEST

/* The second worker's thread cannot be made (its stack does not fit in
 * the address space left): workersd closes the first worker as on a
 * signal, with its deadline, exits 70 and leaves nothing behind. (Whether
 * the first worker's shell got as far as its trap before that close is up
 * to the scheduler; the kill at the deadline itself is test_close_deadline's.)
 */
START_TEST(test_failed_start_kills_runs)
{
    if (WORKERS_SAN[0] != '\0') {
        printf("skipped: a sanitizer needs more address space than the "
               "limit this test sets\n");
        return;
    }
    struct rlimit as = {1536ull << 20, 1536ull << 20};
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &as), 0); /* this test's process */
    char *dir = du_mkdtemp();
    char *ini = du_write_str(
        dir, "pool.ini",
        du_fmt("[pool]\nInitial = 2\nStackSize = 1G\nCloseTimeout = 300ms\n"
               "[job]\nCommand = trap '' TERM; : > %s/up; exec sleep 1000\n",
               dir));
    const char *args[] = {"-c", ini, NULL};
    du_subreaper();
    pid_t pid = du_spawn(dir, args, NULL, false);
    char *err = du_fmt("%s/err", dir);
    int code = du_wait(pid, TU_DEADLINE_MS);
    ck_assert_msg(code == WD_EXIT_SOFTWARE, "exit %d: %s", code, du_read(err));
    ck_assert_int_eq(du_count_in(err, "cannot start the workers"), 1);
    ck_assert_msg(du_no_descendants(3000), "a run was left behind: %s",
                  du_read(err));
}
END_TEST

/* job_do ignores cancellation: after the deadline and the grace, workersd
 * leaves the run behind and exits 2 rather than hang. */
START_TEST(test_plugin_stubborn)
{
    struct run r;

    start(&r, NULL,
          du_fmt("[pool]\nCloseTimeout = 200ms\n%sArg = @DIR@/started\n"
                 "KillGrace = 200ms\n",
                 plugin_job("stubborn")));
    /* The plugin makes the file when its run begins. */
    expect_file(&r, "started");
    uint64_t t0 = tu_now_ms();
    stop(&r, SIGINT, WD_EXIT_TIMEOUT);
    uint64_t took = tu_now_ms() - t0;
    ck_assert_msg(took >= 1000 && took < 6000, "exited in %llu ms",
                  (unsigned long long)took);
    ck_assert_int_eq(du_count_in(r.err, "exiting without them"), 1);
}
END_TEST

START_TEST(test_plugin_failing)
{
    char *dir = du_mkdtemp();
    const char *args[] = {"-c", NULL, NULL};
    char *err = du_fmt("%s/err", dir);

    du_subreaper();
    args[1] = du_write_str(
        dir, "f.ini",
        du_fmt("[pool]\nStopOnErrors = on\n%s", plugin_job("failing")));
    ck_assert_int_eq(du_run(dir, args), WD_EXIT_JOB);
    ck_assert_int_eq(
        du_count_in(err, "job error (input/output error (EIO)): StopOnErrors"),
        1);
    ck_assert(du_no_descendants(3000));
}
END_TEST

/* job_new returns NULL: each run of the worker fails (job_new is called
 * at its first run, on its thread), so StopOnErrors stops the pool (1);
 * job_init fails: 78, but -t does not call job_init. */
START_TEST(test_plugin_refuses)
{
    char *dir = du_mkdtemp();
    const char *args[] = {"-c", NULL, NULL, NULL};
    char *err = du_fmt("%s/err", dir);

    args[1] = du_write_str(
        dir, "n.ini",
        du_fmt("[pool]\nStopOnErrors = on\n%s", plugin_job("newnull")));
    ck_assert_int_eq(du_run(dir, args), WD_EXIT_JOB);
    ck_assert_int_eq(du_count_in(err, "worker 1: plugin "), 1);
    ck_assert_int_eq(du_count_in(err, "job_new returned NULL"), 1);
    ck_assert_int_eq(
        du_count_in(err, "job error (cannot allocate memory (ENOMEM))"), 1);
    args[1] = du_write_str(dir, "i.ini", plugin_job("initfail"));
    ck_assert_int_eq(du_run(dir, args), WD_EXIT_CONFIG);
    ck_assert_int_eq(du_count_in(err, "job_init returned 7"), 1);
    args[0] = "-t";
    args[1] = "-c";
    args[2] = du_write_str(dir, "i.ini", plugin_job("initfail"));
    ck_assert_int_eq(du_run(dir, args), 0);
}
END_TEST

/* ---- cancellation escalates (issue 14 item 5) ---------------------------- */

/* A removed worker's command that ignores SIGTERM is SIGKILLed after
 * KillGrace: the worker is gone within the grace, not at the close. */
START_TEST(test_removed_worker_escalates)
{
    struct run r;

    start(&r, NULL,
          "[pool]\nInitial = 2\nCloseTimeout = 60s\n"
          "[job]\nCommand = trap '' TERM; : > @DIR@/up.$WORKERS_WORKER_ID; "
          "exec sleep 1000\nKillGrace = 300ms\n");
    expect_file(&r, "up.1");
    expect_file(&r, "up.2");
    expect_children(&r, 2);
    uint64_t t0 = tu_now_ms();
    kill(r.pid, SIGUSR2);
    expect_log(&r, "workers: 2 -> 1", 1);
    expect_children(&r, 1);
    ck_assert_uint_ge(tu_now_ms() - t0, 300);
    expect_log(&r,
               "worker 2: command ignored SIGTERM: killed after "
               "KillGrace (300ms)",
               1);
    /* The close escalates the same way, well within CloseTimeout. */
    stop(&r, SIGINT, 0);
    ck_assert_int_eq(du_count_in(r.err, "closed: every worker finished"), 1);
}
END_TEST

/* A stopped run gets SIGCONT after its SIGTERM: the close does not wait
 * for its deadline. */
START_TEST(test_stopped_run_closes)
{
    struct run r;

    start(&r, NULL,
          "[pool]\nCloseTimeout = 60s\n"
          "[job]\nCommand = : > @DIR@/up; kill -STOP $$; sleep 1000\n"
          "KillGrace = 60s\n");
    expect_file(&r, "up");
    uint64_t t0 = tu_now_ms();
    stop(&r, SIGTERM, 0);
    ck_assert_uint_lt(tu_now_ms() - t0, 30000);
}
END_TEST

/* ---- orphans counted only when they left their group (issue 9 item 6) -- */

/* Ctrl-C while each run waits with two background children: the children
 * die with their run's group, and none of them may be reported as left
 * behind, however the sweep meets them. */
START_TEST(test_close_reports_no_false_orphans)
{
    for (int i = 0; i < 8; i++) {
        struct run r;
        start(&r, NULL,
              "[pool]\nInitial = 4\n"
              "[job]\nCommand = sleep 5 & sleep 5 & echo x; sleep 5\n");
        ck_assert(
            du_wait_for(du_fmt("%s/out", r.dir), "x\n", 4, TU_DEADLINE_MS));
        stop(&r, SIGINT, 0);
        ck_assert_msg(du_count_in(r.err, "left behind") == 0, "round %d: %s", i,
                      du_read(r.err));
    }
}
END_TEST

/* ---- plugin hooks: their thread, their bounds (issue 9 items 3, 16, 18) -- */

/* What a test asks of tests/plugins/generation.so (see generation.h). */
struct gen_asks {
    int hold_init, hold_fini, release, helper, close_self;
};

/* Spawns workersd on generation.so with more [pool] and [job] keys, its
 * counters in the run's folder set as asked; returns them, mapped. */
static struct gen_counters *
gen_spawn(struct run *r, struct gen_asks ask, const char *pool, const char *job)
{
    char *dir = du_mkdtemp();
    struct gen_counters *c =
        du_map(du_fmt("%s/c", dir), sizeof(struct gen_counters));

    c->hold_init = ask.hold_init;
    c->hold_fini = ask.hold_fini;
    c->release = ask.release;
    c->helper = ask.helper;
    c->close_self = ask.close_self;
    c->helper_status = -1;
    spawn_in(r, dir, NULL,
             du_fmt("[pool]\n%s%sArg = @DIR@/c\n%s", pool,
                    plugin_job("generation"), job));
    return c;
}

static bool
flag_set(void *flag)
{
    return atomic_load((atomic_int *)flag) != 0;
}

/* SIGTERM while job_init still runs: the loop answers at once, the start is
 * abandoned, and once job_init returns job_fini runs: exit 0, nothing
 * started. */
START_TEST(test_stop_during_job_init)
{
    struct run r;
    struct gen_counters *c =
        gen_spawn(&r, (struct gen_asks){.hold_init = 1}, "", "");

    ck_assert(tu_wait_until(flag_set, &c->in_init, TU_DEADLINE_MS));
    kill(r.pid, SIGTERM);
    expect_log(&r, "SIGTERM: stopping before any worker started", 1);
    c->hold_init = 0;
    stop(&r, 0, 0);
    ck_assert_int_eq(c->inits, 1);
    ck_assert_int_eq(c->finis, 1);
    ck_assert_int_eq(c->news, 0);
    ck_assert_int_eq(du_count_in(r.err, "workersd: started"), 0);
    /* Both hooks ran on one thread of the daemon, not on its loop. */
    ck_assert_int_eq(c->fini_tid, c->init_tid);
    ck_assert_int_ne(c->init_tid, r.pid);
}
END_TEST

/* A job_init that never returns: SIGTERM still ends workersd, KillGrace (at
 * least 1 s) later, exit 2. */
START_TEST(test_job_init_hangs)
{
    struct run r;
    struct gen_counters *c = gen_spawn(&r, (struct gen_asks){.hold_init = 1},
                                       "", "KillGrace = 200ms\n");

    ck_assert(tu_wait_until(flag_set, &c->in_init, TU_DEADLINE_MS));
    uint64_t t0 = tu_now_ms();
    stop(&r, SIGTERM, WD_EXIT_TIMEOUT);
    ck_assert_uint_ge(tu_now_ms() - t0, 1000);
    ck_assert_int_eq(du_count_in(r.err, "job_init did not return within "
                                        "KillGrace (200ms): exiting without "
                                        "it"),
                     1);
}
END_TEST

/* A job_fini that never returns is bounded like a run: exit 2 after
 * KillGrace (at least 1 s)... */
START_TEST(test_job_fini_hangs)
{
    struct run r;
    struct gen_counters *c =
        gen_spawn(&r, (struct gen_asks){.hold_fini = 1, .release = 1},
                  "Initial = 2\n", "KillGrace = 200ms\n");

    expect_log(&r, "workersd: started", 1);
    uint64_t t0 = tu_now_ms();
    stop(&r, SIGINT, WD_EXIT_TIMEOUT);
    ck_assert_uint_ge(tu_now_ms() - t0, 1000);
    ck_assert_int_eq(c->in_fini, 1);
    ck_assert_int_eq(du_count_in(r.err, "job_fini did not return within "
                                        "KillGrace (200ms): exiting without "
                                        "it"),
                     1);
}
END_TEST

/* ... or at once on a second signal. */
START_TEST(test_job_fini_forced)
{
    struct run r;
    struct gen_counters *c =
        gen_spawn(&r, (struct gen_asks){.hold_fini = 1, .release = 1}, "",
                  "KillGrace = 1h\n");

    expect_log(&r, "workersd: started", 1);
    kill(r.pid, SIGINT);
    ck_assert(tu_wait_until(flag_set, &c->in_fini, TU_DEADLINE_MS));
    uint64_t t0 = tu_now_ms();
    stop(&r, SIGINT, WD_EXIT_TIMEOUT);
    ck_assert_uint_lt(tu_now_ms() - t0, 5000);
    ck_assert_int_eq(
        du_count_in(r.err, "SIGINT: not waiting for job_fini: exiting without "
                           "it"),
        1);
}
END_TEST

/* pid's state letter and parent, 0 when gone. */
static char
proc_state(pid_t pid, pid_t *ppid)
{
    char *stat = du_read(du_fmt("/proc/%ld/stat", (long)pid));
    char *p = strrchr(stat, ')'), state = 0;
    int pp = 0;
    if (p == NULL || sscanf(p + 1, " %c %d", &state, &pp) != 2)
        return 0;
    *ppid = pp;
    return state;
}

struct helper {
    struct gen_counters *c;
    pid_t daemon;
};

/* The helper job_init spawned exited, and nobody reaped it. */
static bool
helper_unreaped(void *arg)
{
    struct helper *h = arg;
    pid_t ppid = 0;
    return h->c->helper_pid > 0 && proc_state(h->c->helper_pid, &ppid) == 'Z' &&
           ppid == h->daemon;
}

/* A process job_init starts is the plugin's until job_fini returned: the
 * daemon neither reaps it (job_fini's waitpid gets its status, not ECHILD)
 * nor kills it as a process left behind. */
START_TEST(test_job_init_child_is_the_plugins)
{
    struct run r;
    struct gen_counters *c =
        gen_spawn(&r, (struct gen_asks){.helper = 1, .release = 1}, "", "");

    expect_log(&r, "workersd: started", 1);
    struct helper h = {c, r.pid};
    ck_assert(tu_wait_until(helper_unreaped, &h, TU_DEADLINE_MS));
    /* A SIGCHLD the loop sees reaps its own orphans only. */
    kill(r.pid, SIGCHLD);
    kill(r.pid, SIGUSR1);
    expect_log(&r, "workers: 1 -> 2", 1);
    ck_assert(helper_unreaped(&h));
    stop(&r, SIGINT, 0);
    ck_assert_int_eq(c->helper_status, 0); /* /bin/true's exit 0 */
    ck_assert_int_eq(du_count_in(r.err, "left behind"), 0);
}
END_TEST

/* A plugin that dlcloses itself stays mapped (RTLD_NODELETE). */
START_TEST(test_plugin_closes_itself)
{
    struct run r;
    struct gen_counters *c =
        gen_spawn(&r, (struct gen_asks){.close_self = 1, .release = 1}, "", "");

    expect_log(&r, "workersd: started", 1);
    kill(r.pid, SIGUSR1);
    expect_log(&r, "workers: 1 -> 2", 1);
    uint64_t runs = c->started;
    while (c->started < runs + 20)
        tu_sleep_ms(1);
    stop(&r, SIGINT, 0);
    ck_assert_int_eq(c->finis, 1);
}
END_TEST

/* ---- storms and logs --------------------------------------------------------
 */

/* 1,000 SIGUSR1/SIGUSR2 as fast as they go: the daemon stays up, within
 * [Min, Max], and closes cleanly. */
START_TEST(test_signal_storm)
{
    struct run r;

    start(&r, NULL,
          "[pool]\nMin = 1\nMax = 4\nInitial = 2\n"
          "[job]\nCommand = exec sleep 1000\n");
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(kill(r.pid, i % 3 == 2 ? SIGUSR2 : SIGUSR1), 0);
    /* Still answering: add until the max stops it, one signal per line. */
    for (int i = 0; i < 20 && du_count_in(r.err, "max reached (4)") == 0; i++) {
        int lines = du_count_in(r.err, "\n");
        kill(r.pid, SIGUSR1);
        expect_log(&r, "\n", lines + 1);
    }
    ck_assert_int_ge(du_count_in(r.err, "max reached (4)"), 1);
    /* Every change stayed within [Min, Max]. */
    char *log = du_read(r.err);
    for (char *p = log; (p = strstr(p, "workers: ")) != NULL; p++) {
        int from, to;
        ck_assert_int_eq(sscanf(p, "workers: %d -> %d", &from, &to), 2);
        ck_assert_msg(from >= 1 && from <= 4 && to >= 1 && to <= 4,
                      "workers: %d -> %d", from, to);
    }
    stop(&r, SIGINT, 0);
    ck_assert_int_eq(du_count_in(r.err, "closed: every worker finished"), 1);
}
END_TEST

/* Under the journal (JOURNAL_STREAM names stderr), "<N>" prefixes; -q
 * keeps only warnings and errors. */
START_TEST(test_log_modes)
{
    char *dir = du_mkdtemp(), *err = du_fmt("%s/err", dir);
    const char *args[] = {"-t", "-c", NULL, NULL, NULL};
    struct stat st;

    du_write_str(dir, "err", "");
    ck_assert_int_eq(stat(err, &st), 0);
    char *js = du_fmt("JOURNAL_STREAM=%llu:%llu", (unsigned long long)st.st_dev,
                      (unsigned long long)st.st_ino);
    const char *envs[] = {js, NULL};

    args[2] = du_write_str(dir, "ok.ini", "[job]\nCommand = true\n");
    ck_assert_int_eq(du_wait(du_spawn(dir, args, envs, false), TU_DEADLINE_MS),
                     0);
    args[2] = du_write_str(dir, "bad.ini", "[job]\nCommand = \n");
    ck_assert_int_eq(du_wait(du_spawn(dir, args, envs, false), TU_DEADLINE_MS),
                     WD_EXIT_CONFIG);
    char *want = du_fmt("<5>configuration file %s/ok.ini OK\n<3>%s/bad.ini:2: "
                        "Command = : empty value\n",
                        dir, dir);
    ck_assert_str_eq(du_read(err), want);

    /* Not the journal: plain lines; -q: no OK line, errors still. */
    du_write_str(dir, "err", "");
    args[2] = du_fmt("%s/ok.ini", dir);
    args[3] = "-q";
    ck_assert_int_eq(du_run(dir, args), 0);
    args[2] = du_fmt("%s/bad.ini", dir);
    ck_assert_int_eq(du_run(dir, args), WD_EXIT_CONFIG);
    want =
        du_fmt("workersd: error: %s/bad.ini:2: Command = : empty value\n", dir);
    ck_assert_str_eq(du_read(err), want);
}
END_TEST

/* ---- systemd
 * ----------------------------------------------------------------- */

static void
notify_run(const char *sockname, bool abstract)
{
    struct run r;
    char *name, *env;

    if (abstract)
        name = du_fmt("@workersd-test-%ld", (long)getpid());
    else
        name = du_socket_path(du_fmt("%ld.%s", (long)getpid(), sockname));
    int fd = du_notify_socket(name);
    env = du_fmt("NOTIFY_SOCKET=%s", name);
    const char *envs[] = {env, NULL};

    start(&r, envs, "[pool]\nInitial = 2\n[job]\nCommand = exec sleep 1000\n");
    ck_assert(du_notify_expect(fd, "READY=1", TU_DEADLINE_MS));
    kill(r.pid, SIGUSR1);
    ck_assert(du_notify_expect(fd, "STATUS=3 workers", TU_DEADLINE_MS));
    kill(r.pid, SIGUSR2);
    ck_assert(du_notify_expect(fd, "STATUS=2 workers", TU_DEADLINE_MS));
    kill(r.pid, SIGTERM);
    ck_assert(du_notify_expect(fd, "STOPPING=1", TU_DEADLINE_MS));
    stop(&r, 0, 0);
}

START_TEST(test_notify)
{
    notify_run("notify.sock", false);
}
END_TEST

START_TEST(test_notify_abstract)
{
    notify_run(NULL, true);
}
END_TEST

START_TEST(test_watchdog)
{
    struct run r;
    char *name, *env;

    name = du_socket_path(du_fmt("notify.%ld.sock", (long)getpid()));
    int fd = du_notify_socket(name);
    env = du_fmt("NOTIFY_SOCKET=%s", name);
    const char *envs[] = {env, "WATCHDOG_USEC=100000", NULL};

    start(&r, envs, "[job]\nCommand = exec sleep 1000\n");
    /* Pings every 50 ms: three of them well within the deadline. */
    for (int i = 0; i < 3; i++)
        ck_assert(du_notify_expect(fd, "WATCHDOG=1", TU_DEADLINE_MS));
    stop(&r, SIGINT, 0);
}
END_TEST

/* The process has exec'd sleep, is blocked in its sleep (so its start-up,
 * which opens its locale files for a moment, is over) and holds only 0-2:
 * between fork and exec a child still has the daemon's descriptors
 * (close-on-exec) and environment. A descriptor the daemon leaked would
 * stay: the wait would time out. */
static bool
settled_sleep(void *pidp)
{
    pid_t pid = *(pid_t *)pidp;
    char *comm = du_read(du_fmt("/proc/%ld/comm", (long)pid));
    long nr = strtol(du_read(du_fmt("/proc/%ld/syscall", (long)pid)), NULL, 10);

    return strcmp(comm, "sleep\n") == 0 &&
           (nr == SYS_clock_nanosleep || nr == SYS_nanosleep) &&
           strcmp(du_fds(pid), "0 1 2") == 0;
}

static bool
has_content(void *path)
{
    return du_read(path)[0] != '\0';
}

/* The job's process holds 0-2 and nothing of the daemon's: not the
 * notify socket, not libev's descriptors, not a pidfd, not the config file.
 * Nor does it see NOTIFY_SOCKET, but it does see its worker id. */
START_TEST(test_no_fd_leak)
{
    struct run r;
    char *name, *env, *environ_path;

    name = du_socket_path(du_fmt("notify.%ld.sock", (long)getpid()));
    int fd = du_notify_socket(name);
    env = du_fmt("NOTIFY_SOCKET=%s", name);
    const char *envs[] = {env, "WATCHDOG_USEC=1000000", NULL};

    start(&r, envs, "[job]\nCommand = exec sleep 1000\n");
    ck_assert(du_notify_expect(fd, "READY=1", TU_DEADLINE_MS));
    expect_children(&r, 1);
    pid_t child = du_child(r.pid);
    ck_assert_msg(tu_wait_until(settled_sleep, &child, TU_DEADLINE_MS),
                  "descriptors %s", du_fds(child));
    /* The daemon's own, to show the check can fail. */
    ck_assert_str_ne(du_fds(r.pid), "0 1 2");

    /* exec names the process before it lays out the new environment:
     * wait for the environment too. */
    environ_path = du_fmt("/proc/%ld/environ", (long)child);
    ck_assert(tu_wait_until(has_content, environ_path, TU_DEADLINE_MS));
    FILE *f = fopen(environ_path, "re");
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    bool id = false, notify = false, watchdog = false;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
        id |= strcmp(buf + i, "WORKERS_WORKER_ID=1") == 0;
        notify |= strncmp(buf + i, "NOTIFY_SOCKET=", 14) == 0;
        watchdog |= strncmp(buf + i, "WATCHDOG_", 9) == 0;
    }
    ck_assert(id);
    ck_assert(!notify);
    ck_assert(!watchdog);
    stop(&r, SIGINT, 0);
}
END_TEST

/* ---- signals, limits and exit codes (issue 9) ------------------------- */

/* SIGQUIT closes as SIGTERM does: no core dump, nothing left running. */
START_TEST(test_sigquit_closes)
{
    struct run r;

    start(&r, NULL, "[pool]\nInitial = 2\n[job]\nCommand = exec sleep 1000\n");
    expect_children(&r, 2);
    stop(&r, SIGQUIT, 0);
    ck_assert_int_eq(du_count_in(r.err, "SIGQUIT: closing"), 1);
}
END_TEST

/* Still running: not ended by a signal's default action. Reaps nothing:
 * du_wait does. */
static bool
alive(pid_t pid)
{
    siginfo_t si = {0};
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid == 0;
}

/* SIGUSR1, SIGUSR2 and SIGHUP while job_init runs: the daemon lives on,
 * says the scaling ones were ignored, and starts once job_init returns;
 * SIGTERM then closes it. */
START_TEST(test_signals_during_job_init)
{
    struct run r;
    struct gen_counters *c =
        gen_spawn(&r, (struct gen_asks){.hold_init = 1}, "", "");

    ck_assert(tu_wait_until(flag_set, &c->in_init, TU_DEADLINE_MS));
    kill(r.pid, SIGUSR1);
    expect_log(&r, "starting: SIGUSR1 ignored", 1);
    kill(r.pid, SIGHUP);
    /* Past the rate limit: a line of its own. */
    uint64_t t0 = tu_now_ms();
    while (tu_now_ms() - t0 < 1100)
        ck_assert(alive(r.pid));
    kill(r.pid, SIGUSR2);
    expect_log(&r, "starting: SIGUSR2 ignored", 1);
    ck_assert(alive(r.pid));
    c->hold_init = 0;
    expect_log(&r, "workersd: started", 1);
    stop(&r, SIGTERM, 0);
}
END_TEST

/* main() has run its first instruction: SIGHUP shows in the process's
 * blocked set (main blocks it) or, once the loop runs, in its caught set
 * (the reload watcher). A signal sent before that, between the exec and
 * main, meets the default action whatever the daemon does. A sanitizer's
 * runtime blocks nearly every signal for a moment before main, SIGSEGV
 * included, which main never blocks: that mask is not main's. */
static bool
holds_signals(void *pidp)
{
    char *status = du_read(du_fmt("/proc/%ld/status", (long)*(pid_t *)pidp));
    const unsigned long long hup = 1ull << (SIGHUP - 1);
    unsigned long long blk = 0, cgt = 0;
    char *b = strstr(status, "\nSigBlk:"), *c = strstr(status, "\nSigCgt:");

    const unsigned long long segv = 1ull << (SIGSEGV - 1);

    if (b == NULL || c == NULL || sscanf(b, "\nSigBlk: %llx", &blk) != 1 ||
        sscanf(c, "\nSigCgt: %llx", &cgt) != 1)
        return false;
    return (cgt & hup) != 0 || ((blk & hup) != 0 && (blk & segv) == 0);
}

/* Signals sent as soon as workersd runs, while it reads its config and
 * opens the job: the scaling signals and SIGHUP never kill it (they did 25
 * times in 100), and a SIGTERM is not lost: it stops the start. */
START_TEST(test_signals_at_start)
{
    for (int i = 0; i < 20; i++) {
        struct run r;
        bool term = i % 2 == 1;

        spawn_in(&r, du_mkdtemp(), NULL, "[job]\nCommand = exec sleep 1000\n");
        ck_assert(tu_wait_until(holds_signals, &r.pid, TU_DEADLINE_MS));
        if (term) {
            kill(r.pid, SIGTERM);
            stop(&r, 0, 0);
        } else {
            kill(r.pid, SIGUSR1);
            kill(r.pid, SIGHUP);
            kill(r.pid, SIGUSR2);
            expect_log(&r, "workersd: started", 1);
            stop(&r, SIGTERM, 0);
        }
        du_rmtree(r.dir);
    }
}
END_TEST

/* workersd with stdout and stderr on a pipe whose reader is gone: each
 * write fails with EPIPE, and the exit code is its own, not 141. */
static int
run_to_closed_pipe(const char *const *args)
{
    const char *argv[8] = {"workersd"};
    int p[2];

    for (size_t i = 0; args[i] != NULL && i < 6; i++)
        argv[i + 1] = args[i];
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    pid_t pid = du_fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        if (dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
            _exit(127);
        closefrom(3);
        execv(tu_build_path("workersd"), (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    return du_wait(pid, TU_DEADLINE_MS);
}

START_TEST(test_closed_output_pipe)
{
    char *dir = du_mkdtemp();
    char *ok = du_write_str(dir, "ok.ini", "[job]\nCommand = true\n");
    char *bad = du_write_str(dir, "bad.ini", "[job]\nCommand =\n");
    const char *test_ok[] = {"-t", "-c", ok, NULL};
    const char *test_bad[] = {"-t", "-c", bad, NULL};
    const char *version[] = {"-V", NULL};
    const char *help[] = {"-h", NULL};
    const char *usage[] = {"-x", NULL};

    ck_assert_int_eq(run_to_closed_pipe(test_ok), WD_EXIT_OK);
    ck_assert_int_eq(run_to_closed_pipe(test_bad), WD_EXIT_CONFIG);
    ck_assert_int_eq(run_to_closed_pipe(version), WD_EXIT_OK);
    ck_assert_int_eq(run_to_closed_pipe(help), WD_EXIT_OK);
    ck_assert_int_eq(run_to_closed_pipe(usage), WD_EXIT_USAGE);
    du_rmtree(dir);
}
END_TEST

/* wd_log_limited: one line a second at most, the next one counts the
 * dropped ones. */
START_TEST(test_log_limited)
{
    char *dir = du_mkdtemp(), *path = du_fmt("%s/err", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int saved = dup(STDERR_FILENO);
    struct wd_log_limit l = {0};

    ck_assert_int_ge(fd, 0);
    dup2(fd, STDERR_FILENO);
    wd_log_init(0);
    uint64_t t0 = wd_now_ns();
    for (int i = 0; i < 1000; i++)
        wd_log_limited(&l, WD_LOG_INFO, "line %d", i);
    bool within = wd_now_ns() - t0 < WD_LOG_LIMIT_NS;
    while (wd_now_ns() - l.last_ns < WD_LOG_LIMIT_NS)
        tu_sleep_ms(10);
    wd_log_limited(&l, WD_LOG_INFO, "line %d", 1000);
    wd_log_limited(&l, WD_LOG_INFO, "line %d", 1001);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    char *text = du_read(path);
    if (within) /* else the machine was too slow to tell */
        ck_assert_str_eq(text, "workersd: line 0\n"
                               "workersd: line 1000 (999 more)\n");
    else
        ck_assert_int_le(du_count_in_text(text, "\n"), 4);
    du_rmtree(dir);
}
END_TEST

/* 1,000 SIGUSR1 during a slow close: one "ignored" line a second. */
START_TEST(test_ignored_lines_rate_limited)
{
    struct run r;

    start(&r, NULL,
          "[pool]\nCloseTimeout = 2s\n"
          "[job]\nKillGrace = 1s\nCommand = trap '' TERM; touch \"$DIR/t\"; "
          "sleep 1000\n");
    expect_file(&r, "t");
    uint64_t t0 = tu_now_ms();
    kill(r.pid, SIGTERM);
    expect_log(&r, "SIGTERM: closing", 1);
    for (int i = 0; i < 1000 && alive(r.pid); i++) {
        kill(r.pid, SIGUSR1);
        usleep(1000);
    }
    stop(&r, 0, 0);
    uint64_t secs = (tu_now_ms() - t0) / 1000 + 1;
    int lines = du_count_in(r.err, "SIGUSR1 ignored");
    ck_assert_int_ge(lines, 1);
    ck_assert_msg((uint64_t)lines <= secs, "%d lines in %llu s: %s", lines,
                  (unsigned long long)secs, du_read(r.err));
}
END_TEST

/* Too few descriptors: exit 70 with one line saying what is needed, never
 * libev's abort (134) nor a start whose every run fails. The daemon's 13
 * hold no control socket (du_spawn adds Socket = none) and no metrics
 * listener: check_nofile.c counts those. */
START_TEST(test_nofile_too_low)
{
    const unsigned long limits[] = {4, 5, 8, 12};

    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        char *dir = du_mkdtemp(), *err = du_fmt("%s/err", dir);
        char *ini =
            du_write_str(dir, "test.ini", "[job]\nCommand = exec sleep 1000\n");
        const char *args[] = {"-c", ini, NULL};

        du_spawn_nofile(limits[i], limits[i]);
        ck_assert_int_eq(du_run(dir, args), WD_EXIT_SOFTWARE);
        char *want = du_fmt("workersd: error: the descriptor limit "
                            "(RLIMIT_NOFILE, ulimit -n, LimitNOFILE=) is %lu: "
                            "1 worker needs 14 (13 for the daemon, 1 per "
                            "worker)\n",
                            limits[i]);
        ck_assert_str_eq(du_read(err), want);
        du_rmtree(dir);
    }
}
END_TEST

/* A job sees the descriptor limit workersd was started with, whether the
 * daemon kept it (Max = 4) or raised its own for Max = 1000 workers. */
START_TEST(test_jobs_see_nofile)
{
    const char *maxes[] = {"4", "1000"};

    for (size_t i = 0; i < 2; i++) {
        struct run r;

        du_spawn_nofile(256, 4096);
        start(&r, NULL,
              du_fmt("[pool]\nMax = %s\n[job]\nCommand = ulimit -n > "
                     "\"$DIR/n.$WORKERS_WORKER_ID\"; exec sleep 1000\n",
                     maxes[i]));
        char *path = expect_file(&r, "n.1");
        ck_assert(tu_wait_until(has_content, path, TU_DEADLINE_MS));
        ck_assert_str_eq(du_read(path), "256\n");
        stop(&r, SIGTERM, 0);
        ck_assert_int_eq(du_count_in(r.err, "descriptor limit"), 0);
        du_rmtree(r.dir);
    }
}
END_TEST

/* Under systemd the start line advises workersctl and systemctl kill
 * --kill-whom=main (a plain kill on the unit reaches every job). */
START_TEST(test_systemd_start_line)
{
    struct run r;
    const char *envs[] = {"INVOCATION_ID=0123456789abcdef", NULL};

    /* The control socket open: the line points at workersctl only then. */
    start(&r, envs,
          du_fmt("[job]\nCommand = exec sleep 1000\n[control]\n"
                 "Socket = %s\n",
                 du_socket_path(du_fmt("sys.%ld.sock", (long)getpid()))));
    expect_log(&r,
               " more adds a worker (or systemctl kill --kill-whom=main "
               "-s SIGUSR1 ",
               1);
    ck_assert_int_eq(du_count_in(r.err, du_fmt("workersctl -c %s", r.ini)), 1);
    ck_assert_int_eq(du_count_in(r.err, "kill -USR1"), 0);
    ck_assert_int_eq(du_count_in(r.err, "Ctrl-C"), 0);
    stop(&r, SIGTERM, 0);
}
END_TEST

/* A close tells systemd how long it may take: CloseTimeout + 2 KillGrace
 * (+ 1 s), so TimeoutStopSec never kills it within its bounds. */
START_TEST(test_extend_timeout)
{
    struct run r;
    char *name = du_fmt("@workersd-test-extend-%ld", (long)getpid());
    int fd = du_notify_socket(name);
    const char *envs[] = {du_fmt("NOTIFY_SOCKET=%s", name), NULL};

    start(&r, envs,
          "[pool]\nCloseTimeout = 3s\n"
          "[job]\nKillGrace = 1s\nCommand = exec sleep 1000\n");
    ck_assert(du_notify_expect(fd, "READY=1", TU_DEADLINE_MS));
    kill(r.pid, SIGTERM);
    char *dgram = du_notify_get(fd, "EXTEND_TIMEOUT_USEC=", TU_DEADLINE_MS);
    ck_assert_msg(dgram != NULL, "no EXTEND_TIMEOUT_USEC; log: %s",
                  du_read(r.err));
    unsigned long long usec =
        strtoull(strstr(dgram, "EXTEND_TIMEOUT_USEC=") + 20, NULL, 10);
    ck_assert_msg(usec > 4000000 && usec <= 6000000, "%s", dgram);
    stop(&r, 0, 0);
    close(fd);
}
END_TEST

/* StopOnErrors stopped the pool, then the close overran its deadline: the
 * job error is the cause and wins, exit 1 rather than 2. */
START_TEST(test_job_error_wins_over_overrun)
{
    struct run r;

    start(&r, NULL,
          "[pool]\nMin = 2\nMax = 2\nStopOnErrors = yes\n"
          "CloseTimeout = 300ms\n"
          "[job]\nKillGrace = 5s\nCommand = if [ $WORKERS_WORKER_ID = 1 ]; "
          "then while [ ! -e \"$DIR/t\" ]; do sleep 0.05; done; exit 1; fi; "
          "trap '' TERM; touch \"$DIR/t\"; sleep 1000\n");
    stop(&r, 0, WD_EXIT_JOB);
    ck_assert_int_eq(du_count_in(r.err, "closed after the deadline"), 1);
    ck_assert_int_eq(du_count_in(r.err, "closed: a job error stopped the "
                                        "pool: code 1"),
                     1);
}
END_TEST

Suite *make_daemon_suite(void);

Suite *
make_daemon_suite(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc = tcase_create("daemon");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cli);
    tcase_add_test(tc, test_shipped_configs);
    tcase_add_test(tc, test_plugin_errors);
    tcase_add_test(tc, test_scale);
    tcase_add_test(tc, test_scale_limits);
    tcase_add_test(tc, test_close_quick_jobs);
    tcase_add_test(tc, test_close_deadline);
    tcase_add_test(tc, test_close_forced);
    tcase_add_test(tc, test_background_child_dies_with_run);
    tcase_add_test(tc, test_closed_stdout);
    tcase_add_test(tc, test_hours_long_run);
    tcase_add_test(tc, test_failed_start_kills_runs);
    tcase_add_test(tc, test_scale_while_closing);
    tcase_add_test(tc, test_run_timeout);
    tcase_add_test(tc, test_stop_on_errors);
    tcase_add_test(tc, test_errors_go_on);
    tcase_add_test(tc, test_plugin);
    tcase_add_test(tc, test_plugin_stubborn);
    tcase_add_test(tc, test_plugin_failing);
    tcase_add_test(tc, test_plugin_refuses);
    tcase_add_test(tc, test_removed_worker_escalates);
    tcase_add_test(tc, test_stopped_run_closes);
    tcase_add_test(tc, test_close_reports_no_false_orphans);
    tcase_add_test(tc, test_stop_during_job_init);
    tcase_add_test(tc, test_job_init_hangs);
    tcase_add_test(tc, test_job_fini_hangs);
    tcase_add_test(tc, test_job_fini_forced);
    tcase_add_test(tc, test_job_init_child_is_the_plugins);
    tcase_add_test(tc, test_plugin_closes_itself);
    tcase_add_test(tc, test_signal_storm);
    tcase_add_test(tc, test_log_modes);
    tcase_add_test(tc, test_notify);
    tcase_add_test(tc, test_notify_abstract);
    tcase_add_test(tc, test_watchdog);
    tcase_add_test(tc, test_no_fd_leak);
    suite_add_tcase(s, tc);

    /* Issue 9's signals, limits and exit codes. */
    tc = tcase_create("signals");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sigquit_closes);
    tcase_add_test(tc, test_signals_during_job_init);
    tcase_add_test(tc, test_signals_at_start);
    tcase_add_test(tc, test_closed_output_pipe);
    tcase_add_test(tc, test_log_limited);
    tcase_add_test(tc, test_ignored_lines_rate_limited);
    tcase_add_test(tc, test_nofile_too_low);
    tcase_add_test(tc, test_jobs_see_nofile);
    tcase_add_test(tc, test_systemd_start_line);
    tcase_add_test(tc, test_extend_timeout);
    tcase_add_test(tc, test_job_error_wins_over_overrun);
    suite_add_tcase(s, tc);
    return s;
}
