/*
 * The job kinds (cmd/workersd/jobs/) driven directly: a wd_config filled by
 * hand, wd_job_open, the builder's jobs run either by the test thread (with
 * a context of its own) or by a real pool. Children write what they see into
 * files of a per-test temp dir; conditions are polled with generous
 * deadlines. Log lines are read back from stderr, redirected to a file.
 */
#include "daemonutil.h"
#include "testutil.h"
#include "workersd.h"

#include <check.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEC 1000000000ull
#define MS 1000000ull

/* ---- fixtures: a temp dir and stderr captured into a file ------------- */

static char tdir[PATH_MAX];
static char logpath[PATH_MAX + 16];

/* Under TMPDIR, the runner's own folder, which it removes when it ends:
 * teardown does not run after a failed assertion. */
static void
setup(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(tdir, sizeof tdir, "%s/check_jobs.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tdir));
    snprintf(logpath, sizeof logpath, "%s/stderr", tdir);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
}

static bool log_has(const char *needle);
static char *slurp(const char *name);

static void
teardown(void)
{
    /* Sanitizer reports went to the captured stderr too. */
    ck_assert_msg(!log_has("Sanitizer") && !log_has("runtime error"), "%s",
                  slurp(logpath));
    du_rmtree(tdir);
}

/* The whole content of tdir/name (or of the absolute path name), or NULL
 * when it does not exist. */
static char *
slurp(const char *name)
{
    char path[2 * PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", name[0] == '/' ? "" : tdir, name);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return NULL;
    static char buf[8][4096];
    static int next;
    char *b = buf[next++ % 8];
    size_t n = fread(b, 1, sizeof buf[0] - 1, f);
    b[n] = '\0';
    fclose(f);
    return b;
}

/* tdir/name exists and holds at least one whole line: a child writing it
 * may have created it and not written yet. */
static bool
file_exists(void *name)
{
    const char *s = slurp(name);
    return s != NULL && s[0] != '\0' && s[strlen(s) - 1] == '\n';
}

static bool
log_has(const char *needle)
{
    char *log = slurp(logpath);
    return log != NULL && strstr(log, needle) != NULL;
}

/* A command with every "@" replaced by the temp dir. */
static char *
cmdf(const char *tmpl)
{
    static char buf[4][1024];
    static int next;
    char *b = buf[next++ % 4], *o = b;
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (*p == '@')
            o = stpcpy(o, tdir);
        else
            *o++ = *p;
    }
    *o = '\0';
    return b;
}

/* ---- processes ------------------------------------------------------- */

/* State letter of pid from /proc, or 0 when it is gone; its parent and
 * process group. */
static char
proc_state(pid_t pid, pid_t *ppid, pid_t *pgid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    char state = 0;
    int pp = 0, pg = 0;
    if (p == NULL || sscanf(p + 1, " %c %d %d", &state, &pp, &pg) != 3)
        return 0;
    if (ppid != NULL)
        *ppid = pp;
    if (pgid != NULL)
        *pgid = pg;
    return state;
}

static bool
proc_dead(void *pidp)
{
    char s = proc_state(*(pid_t *)pidp, NULL, NULL);
    return s == 0 || s == 'Z';
}

/* Counts the processes that match: zombie children of this process (any
 * thread), or live members of process group pgid. */
static int
count_procs(bool zombie_children, pid_t pgid)
{
    DIR *d = opendir("/proc");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        pid_t pid = atoi(e->d_name), ppid = 0, pg = 0;
        char s = pid > 0 ? proc_state(pid, &ppid, &pg) : 0;
        if (zombie_children ? s == 'Z' && ppid == getpid()
                            : s != 0 && s != 'Z' && pg == pgid)
            n++;
    }
    closedir(d);
    return n;
}

static int
zombie_children(void)
{
    return count_procs(true, 0);
}

/* No live process left in the group *pgidp. */
static bool
group_gone(void *pgidp)
{
    return count_procs(false, *(pid_t *)pgidp) == 0;
}

static pid_t
read_pid(const char *name)
{
    char *s = slurp(name);
    ck_assert_msg(s != NULL, "no %s", name);
    return atoi(s);
}

/* ---- running a job -------------------------------------------------- */

static wd_config
command_cfg(const char *command)
{
    wd_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.path = "test.ini";
    cfg.command = (char *)command;
    cfg.kill_grace_ns = 5 * SEC;
    return cfg;
}

/* One built job run by a thread of the test, with a context of its own. */
struct runner {
    wd_job *job;
    workers_job wj;
    workers_ctx *ctx;
    pthread_t thread;
    int result;
    uint64_t elapsed_ms;
};

static void
runner_open(struct runner *r, const wd_config *cfg)
{
    char err[WD_ERRLEN];
    memset(r, 0, sizeof *r);
    ck_assert_msg(wd_job_open(cfg, true, &r->job, err, sizeof err) == 0,
                  "open: %s", err);
    ck_assert_int_eq(wd_job_new(r->job, &r->wj), 0);
    ck_assert_int_eq(workers_ctx_new(&r->ctx), 0);
}

static void
runner_close(struct runner *r)
{
    workers_job_free(&r->wj);
    workers_ctx_free(r->ctx);
    wd_job_close(r->job);
}

static void *
runner_main(void *arg)
{
    struct runner *r = arg;
    uint64_t t0 = tu_now_ms();
    r->result = r->wj.fn(r->ctx, r->wj.arg);
    r->elapsed_ms = tu_now_ms() - t0;
    return NULL;
}

static void
runner_start(struct runner *r)
{
    ck_assert_int_eq(pthread_create(&r->thread, NULL, runner_main, r), 0);
}

static int
runner_join(struct runner *r)
{
    ck_assert_int_eq(pthread_join(r->thread, NULL), 0);
    return r->result;
}

/* Opens cfg's job and starts a run of it on a thread; returns the pid the
 * command writes to @/pid, once it did. */
static pid_t
runner_started(struct runner *r, const wd_config *cfg)
{
    runner_open(r, cfg);
    runner_start(r);
    ck_assert(tu_wait_until(file_exists, "pid", TU_DEADLINE_MS));
    return read_pid("pid");
}

/* After the run: nothing of its group is left, nor a zombie. */
static void
runner_finished(struct runner *r, pid_t pgid)
{
    ck_assert(tu_wait_until(group_gone, &pgid, TU_DEADLINE_MS));
    runner_close(r);
    ck_assert_int_eq(zombie_children(), 0);
}

/* Opens a command job, runs it once on this thread, closes it. */
static int
run_command(const char *command)
{
    wd_config cfg = command_cfg(command);
    struct runner r;
    runner_open(&r, &cfg);
    runner_main(&r);
    runner_close(&r);
    return r.result;
}

/* ---- command: results and log lines --------------------------------- */

START_TEST(command_exit_0)
{
    ck_assert_int_eq(run_command("exit 0"), 0);
    ck_assert_int_eq(zombie_children(), 0);
}
END_TEST

START_TEST(command_exit_3)
{
    ck_assert_int_eq(run_command("exit 3"), 3);
    ck_assert(log_has("worker 0: command exited with status 3"));
    ck_assert_int_eq(zombie_children(), 0);
}
END_TEST

/* A Timeout of centuries must not wrap its deadline into the past. */
START_TEST(command_huge_timeout)
{
    wd_config cfg = command_cfg("sleep 0.01");
    cfg.timeout_ns = UINT64_MAX - 1;
    cfg.kill_grace_ns = UINT64_MAX - 1;
    struct runner r;
    runner_open(&r, &cfg);
    runner_main(&r);
    runner_close(&r);
    ck_assert_int_eq(r.result, 0);
    ck_assert(!log_has("timed out"));
}
END_TEST

START_TEST(command_killed_by_signal)
{
    ck_assert_int_eq(run_command("kill -USR1 $$"), 128 + SIGUSR1);
    char want[64];
    snprintf(want, sizeof want, "worker 0: command killed by signal %d",
             SIGUSR1);
    ck_assert(log_has(want));
    ck_assert_int_eq(zombie_children(), 0);
}
END_TEST

START_TEST(command_open_without_job)
{
    wd_config cfg = command_cfg(NULL);
    wd_job *job;
    char err[WD_ERRLEN];
    ck_assert_int_eq(wd_job_open(&cfg, true, &job, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "test.ini"));
}
END_TEST

/* No descriptor left for the deadline thread's eventfd: a resource
 * failure (exit 70), not a config error (78); the same config opens once
 * descriptors are back. */
START_TEST(command_open_without_descriptors)
{
    wd_config cfg = command_cfg("true");
    wd_job *job;
    char err[WD_ERRLEN];
    struct rlimit rl = {64, 64};
    int fds[64], n = 0, fd;

    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    while (n < 64 && (fd = dup(STDIN_FILENO)) >= 0)
        fds[n++] = fd;
    ck_assert_int_eq(errno, EMFILE);
    int rc = wd_job_open(&cfg, true, &job, err, sizeof err);
    ck_assert_int_eq(rc, WD_JOB_ENORES);
    ck_assert_int_eq(wd_job_exit_code(rc), WD_EXIT_SOFTWARE);
    ck_assert_int_eq(wd_job_exit_code(WD_JOB_ECONFIG), WD_EXIT_CONFIG);
    ck_assert_msg(strstr(err, "too many open files") != NULL ||
                      strstr(err, "Too many open files") != NULL,
                  "%s", err);
    while (n > 0)
        close(fds[--n]);
    ck_assert_int_eq(wd_job_open(&cfg, true, &job, err, sizeof err), 0);
    wd_job_close(job);
}
END_TEST

/* ---- command: what the child gets ------------------------------------ */

START_TEST(command_environment)
{
    setenv("CHECK_JOBS_VAR", "kept", 1);
    setenv("NOTIFY_SOCKET", "/nonexistent", 1);
    setenv("WORKERS_WORKER_ID", "99", 1);
    ck_assert_int_eq(run_command(cmdf("echo \"$CHECK_JOBS_VAR "
                                      "${NOTIFY_SOCKET-unset} "
                                      "$WORKERS_WORKER_ID\" > @/env")),
                     0);
    /* A context of our own has worker id 0; the pool test checks real ids. */
    ck_assert_str_eq(slurp("env"), "kept unset 0\n");
}
END_TEST

START_TEST(command_descriptors)
{
    /* Leak bait: descriptors without close-on-exec, low and high. */
    int fd = open("/dev/null", O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, 7), 7);
    ck_assert_int_eq(dup2(fd, 40), 40);
    ck_assert_int_eq(run_command(cmdf("ls /proc/self/fd > @/fds; "
                                      "readlink /proc/self/fd/0 > @/stdin")),
                     0);
    /* 3 is the directory ls itself reads. */
    ck_assert_str_eq(slurp("fds"), "0\n1\n2\n3\n");
    ck_assert_str_eq(slurp("stdin"), "/dev/null\n");
}
END_TEST

START_TEST(command_signals_and_group)
{
    /* The spawning thread blocks a signal and the process ignores one: the
     * child must start with neither. grep reads its own status, as the
     * process we spawned (exec'd by the shell): the shell blocks signals for
     * a moment around its own forks. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(
        run_command(cmdf("echo $$ $(cut -d' ' -f5 /proc/$$/stat) > @/pg; "
                         "exec grep -E '^Sig(Blk|Ign)' /proc/self/status "
                         "> @/sig")),
        0);
    /* glibc's posix_spawn leaves its two internal signals (32 SIGCANCEL,
     * 33 SIGSETXID) ignored when the parent handles them; every other
     * signal must be at its default. */
    unsigned long long blk = 1, ign = 1;
    ck_assert_int_eq(
        sscanf(slurp("sig"), "SigBlk: %llx SigIgn: %llx", &blk, &ign), 2);
    ck_assert_uint_eq(blk, 0);
    ck_assert_uint_eq(ign & ~(3ull << 31), 0);
    int pid = 0, pgid = 0;
    ck_assert_int_eq(sscanf(slurp("pg"), "%d %d", &pid, &pgid), 2);
    ck_assert_int_eq(pid, pgid);
    ck_assert_int_ne(pgid, getpgrp());
}
END_TEST

START_TEST(command_background_grandchild_killed)
{
    ck_assert_int_eq(run_command(cmdf("sleep 100 & echo $! > @/gc")), 0);
    pid_t gc = read_pid("gc");
    ck_assert(tu_wait_until(proc_dead, &gc, TU_DEADLINE_MS));
    ck_assert_int_eq(zombie_children(), 0);
}
END_TEST

/* ---- command: cancellation, kill, Timeout ----------------------------- */

START_TEST(command_cancel_sends_sigterm)
{
    wd_config cfg = command_cfg(
        cmdf("trap 'echo term > @/got; exit 5' TERM; echo $$ > @/pid; "
             "while :; do sleep 0.05; done"));
    struct runner r;
    pid_t pid = runner_started(&r, &cfg);
    workers_ctx_cancel(r.ctx);
    ck_assert_int_eq(runner_join(&r), WORKERS_ECANCELED);
    ck_assert_str_eq(slurp("got"), "term\n");
    runner_finished(&r, pid);
}
END_TEST

START_TEST(command_cancelled_before_run)
{
    wd_config cfg = command_cfg(cmdf("echo ran > @/ran"));
    struct runner r;
    runner_open(&r, &cfg);
    workers_ctx_cancel(r.ctx);
    runner_main(&r);
    ck_assert_int_eq(r.result, WORKERS_ECANCELED);
    ck_assert(!file_exists("ran"));
    runner_close(&r);
}
END_TEST

START_TEST(command_ignores_sigterm_kill)
{
    wd_config cfg = command_cfg(
        cmdf("trap '' TERM; echo $$ > @/pid; while :; do sleep 0.05; done"));
    struct runner r;
    pid_t pid = runner_started(&r, &cfg);
    workers_ctx_cancel(r.ctx);
    /* The SIGTERM is ignored: the shell is still there after it. */
    ck_assert(!proc_dead(&pid));
    wd_job_kill(r.job, SIGKILL);
    ck_assert_int_eq(runner_join(&r), WORKERS_ECANCELED);
    runner_finished(&r, pid);
}
END_TEST

/* Every cancel escalates: a command that ignores SIGTERM gets SIGKILL
 * after KillGrace, without any kill from the daemon. */
START_TEST(command_cancel_escalates)
{
    wd_config cfg = command_cfg(
        cmdf("trap '' TERM; echo $$ > @/pid; while :; do sleep 0.05; done"));
    cfg.kill_grace_ns = 300 * MS;
    struct runner r;
    pid_t pid = runner_started(&r, &cfg);
    uint64_t t0 = tu_now_ms();
    workers_ctx_cancel(r.ctx);
    ck_assert_int_eq(runner_join(&r), WORKERS_ECANCELED);
    ck_assert_uint_ge(tu_now_ms() - t0, 300);
    ck_assert(log_has("worker 0: command ignored SIGTERM: killed after "
                      "KillGrace (300ms)"));
    runner_finished(&r, pid);
}
END_TEST

static bool
stopped(void *pidp)
{
    return proc_state(*(pid_t *)pidp, NULL, NULL) == 'T';
}

/* A stopped run gets SIGCONT with its SIGTERM: it ends at once, long before
 * the SIGKILL that KillGrace would bring. */
START_TEST(command_stopped_run_cancelled)
{
    wd_config cfg = command_cfg(
        cmdf("echo $$ > @/pid; kill -STOP $$; while :; do sleep 0.05; done"));
    cfg.kill_grace_ns = 3600 * SEC;
    struct runner r;
    pid_t pid = runner_started(&r, &cfg);
    ck_assert(tu_wait_until(stopped, &pid, TU_DEADLINE_MS));
    workers_ctx_cancel(r.ctx);
    ck_assert_int_eq(runner_join(&r), WORKERS_ECANCELED);
    ck_assert_uint_lt(r.elapsed_ms, TU_DEADLINE_MS);
    ck_assert(!log_has("KillGrace"));
    runner_finished(&r, pid);
}
END_TEST

/* A kill reaches the runs in progress only: the run after it is not
 * killed (there is no sticky signal left to reset). */
START_TEST(command_kill_not_sticky)
{
    wd_config cfg = command_cfg("exit 0");
    struct runner r;
    runner_open(&r, &cfg);
    wd_job_kill(r.job, SIGKILL);
    runner_main(&r);
    ck_assert_int_eq(r.result, 0);
    runner_close(&r);
}
END_TEST

struct killer {
    wd_job *job;
    atomic_bool stop;
};

static void *
killer_main(void *arg)
{
    struct killer *k = arg;
    while (!atomic_load(&k->stop))
        wd_job_kill(k->job, SIGKILL);
    return NULL;
}

/* Kills that race the spawn: whether the pid was known yet or not, the run
 * gets the signal. */
START_TEST(command_kill_during_spawn)
{
    wd_config cfg = command_cfg("exec sleep 100");
    struct runner r;
    runner_open(&r, &cfg);
    struct killer k = {r.job, false};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, killer_main, &k), 0);
    for (int i = 0; i < 20; i++) {
        runner_main(&r);
        ck_assert_int_eq(r.result, 128 + SIGKILL);
    }
    atomic_store(&k.stop, true);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    runner_close(&r);
    ck_assert_int_eq(zombie_children(), 0);
}
END_TEST

START_TEST(command_timeout_sigterm)
{
    wd_config cfg = command_cfg("sleep 100");
    cfg.timeout_ns = 200 * MS;
    struct runner r;
    runner_open(&r, &cfg);
    runner_main(&r);
    ck_assert_int_eq(r.result, WORKERS_ETIMEDOUT);
    ck_assert_uint_ge(r.elapsed_ms, 200);
    ck_assert_uint_lt(r.elapsed_ms, 4000); /* well before KillGrace */
    ck_assert(log_has("worker 0: command timed out after 200ms"));
    runner_close(&r);
    ck_assert_int_eq(zombie_children(), 0);
}
END_TEST

START_TEST(command_timeout_then_sigkill)
{
    wd_config cfg = command_cfg(
        cmdf("trap 'echo term >> @/got' TERM; while :; do sleep 0.05; done"));
    cfg.timeout_ns = 200 * MS;
    cfg.kill_grace_ns = 300 * MS;
    struct runner r;
    runner_open(&r, &cfg);
    runner_main(&r);
    ck_assert_int_eq(r.result, WORKERS_ETIMEDOUT);
    ck_assert_uint_ge(r.elapsed_ms, 500);
    ck_assert_str_eq(slurp("got"), "term\n");
    runner_close(&r);
    ck_assert_int_eq(zombie_children(), 0);
}
END_TEST

/* ---- command through a pool ------------------------------------------ */

static bool
two_ids(void *arg)
{
    (void)arg;
    return file_exists("id.1") && file_exists("id.2");
}

START_TEST(command_pool_worker_ids)
{
    wd_config cfg = command_cfg(
        cmdf("echo $WORKERS_WORKER_ID > @/id.$WORKERS_WORKER_ID; sleep 0.01"));
    cfg.pool.initial = 2;
    wd_job *job;
    char err[WD_ERRLEN];
    ck_assert_int_eq(wd_job_open(&cfg, true, &job, err, sizeof err), 0);
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg.pool, NULL, 0),
                     0);
    workers_builder b = workers_builder_func(wd_job_new, job);
    ck_assert_int_eq(workers_pool_start_with_builder(pool, &b), 0);
    ck_assert(tu_wait_until(two_ids, NULL, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    workers_pool_free(pool);
    wd_job_close(job);
    ck_assert_str_eq(slurp("id.1"), "1\n");
    ck_assert_str_eq(slurp("id.2"), "2\n");
    ck_assert(!file_exists("id.0"));
    ck_assert(!file_exists("id.3"));
    ck_assert_int_eq(zombie_children(), 0);
}
END_TEST

static bool
two_pids(void *arg)
{
    (void)arg;
    return file_exists("pid.1") && file_exists("pid.2");
}

START_TEST(command_pool_less_and_close)
{
    /* Cancelled runs are not job errors, even with StopOnErrors. */
    wd_config cfg =
        command_cfg(cmdf("echo $$ > @/pid.$WORKERS_WORKER_ID; exec sleep 100"));
    cfg.pool.initial = 2;
    cfg.pool.stop_on_errors = true;
    wd_job *job;
    char err[WD_ERRLEN];
    ck_assert_int_eq(wd_job_open(&cfg, true, &job, err, sizeof err), 0);
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg.pool, NULL, 0),
                     0);
    workers_builder b = workers_builder_func(wd_job_new, job);
    ck_assert_int_eq(workers_pool_start_with_builder(pool, &b), 0);
    ck_assert(tu_wait_until(two_pids, NULL, TU_DEADLINE_MS));
    pid_t p1 = read_pid("pid.1"), p2 = read_pid("pid.2");
    ck_assert_int_eq(workers_pool_less(pool), 0);
    ck_assert(tu_wait_until(group_gone, &p2, TU_DEADLINE_MS));
    ck_assert(!proc_dead(&p1));
    ck_assert_int_eq(workers_pool_current(pool), 1);
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    workers_pool_free(pool);
    wd_job_close(job);
    ck_assert(tu_wait_until(group_gone, &p1, TU_DEADLINE_MS));
    ck_assert_int_eq(zombie_children(), 0);
}
END_TEST

/* ---- plugins ---------------------------------------------------------- */

static char *
test_plugin(const char *name)
{
    static char buf[4][512];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/tests/plugins/%s.so", WORKERS_BUILD_DIR,
             name);
    return b;
}

static wd_config
plugin_cfg(const char *path, const char *arg)
{
    wd_config cfg = command_cfg(NULL);
    cfg.plugin = (char *)path;
    cfg.arg = (char *)arg;
    return cfg;
}

struct sym_search {
    const char *name;
    void *found;
    int hits;
};

static int
sym_in(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct sym_search *s = arg;
    (void)size;
    if (info->dlpi_name == NULL || info->dlpi_name[0] == '\0')
        return 0; /* the runner itself */
    void *h = dlopen(info->dlpi_name, RTLD_NOW | RTLD_NOLOAD);
    if (h == NULL)
        return 0;
    void *f = dlsym(h, s->name);
    dlclose(h); /* drops only the reference taken here */
    if (f != NULL && f != s->found) {
        s->found = f;
        s->hits++;
    }
    return 0;
}

/* A function of the plugin the test loaded. The job loads a private copy
 * (not known by its path): look in every loaded object, and insist on one,
 * so a test never reads another copy's counters. */
static void *
plugin_sym(const char *name)
{
    struct sym_search s = {name, NULL, 0};
    dl_iterate_phdr(sym_in, &s);
    ck_assert_msg(s.hits == 1, "%d loaded objects define %s", s.hits, name);
    return s.found;
}

static int
plugin_int(const char *name)
{
    int (*fn)(void);
    void *f = plugin_sym(name);
    memcpy(&fn, &f, sizeof fn);
    return fn();
}

static void
plugin_call(const char *name)
{
    void (*fn)(void);
    void *f = plugin_sym(name);
    memcpy(&fn, &f, sizeof fn);
    fn();
}

static void
open_fails(const wd_config *cfg, const char *want1, const char *want2)
{
    wd_job *job = NULL;
    char err[WD_ERRLEN] = "";
    ck_assert_int_eq(wd_job_open(cfg, true, &job, err, sizeof err), -1);
    ck_assert_msg(strstr(err, want1) != NULL, "\"%s\" lacks \"%s\"", err,
                  want1);
    ck_assert_msg(strstr(err, want2) != NULL, "\"%s\" lacks \"%s\"", err,
                  want2);
    ck_assert_ptr_null(strchr(err, '\n'));
}

START_TEST(plugin_load_errors)
{
    wd_config cfg = plugin_cfg(cmdf("@/missing.so"), NULL);
    open_fails(&cfg, cmdf("@/missing.so"), "No such file");
    cfg.plugin = tdir; /* a directory */
    open_fails(&cfg, tdir, "cannot load");
    char *text = cmdf("@/text.so");
    FILE *f = fopen(text, "we");
    ck_assert_ptr_nonnull(f);
    fputs("not an ELF file\n", f);
    fclose(f);
    cfg.plugin = text;
    open_fails(&cfg, text, "cannot load");
    cfg.plugin = test_plugin("nodo");
    open_fails(&cfg, test_plugin("nodo"), "job_do");
}
END_TEST

START_TEST(plugin_init_fails)
{
    wd_config cfg = plugin_cfg(test_plugin("initfail"), NULL);
    open_fails(&cfg, test_plugin("initfail"), "job_init returned 7");
    /* workersd -t loads without calling job_init. */
    wd_job *job;
    char err[WD_ERRLEN];
    ck_assert_int_eq(wd_job_open(&cfg, false, &job, err, sizeof err), 0);
    wd_job_close(job);
}
END_TEST

START_TEST(plugin_new_null)
{
    wd_config cfg = plugin_cfg(test_plugin("newnull"), NULL);
    wd_job *job;
    char err[WD_ERRLEN];
    ck_assert_int_eq(wd_job_open(&cfg, true, &job, err, sizeof err), 0);
    /* The state comes at the first run: building the job runs no plugin
     * code, the run fails, and the next run asks again. */
    workers_job wj;
    workers_ctx *ctx;
    ck_assert_int_eq(wd_job_new(job, &wj), 0);
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    ck_assert(!log_has("job_new returned NULL"));
    ck_assert_int_eq(wj.fn(ctx, wj.arg), -ENOMEM);
    ck_assert(log_has("worker 0: plugin "));
    ck_assert(log_has("job_new returned NULL"));
    ck_assert_int_eq(wj.fn(ctx, wj.arg), -ENOMEM);
    ck_assert_ptr_nonnull(
        strstr(strstr(slurp(logpath), "returned NULL") + 1, "returned NULL"));
    workers_job_free(&wj);
    workers_ctx_free(ctx);
    wd_job_close(job);
}
END_TEST

START_TEST(plugin_without_state)
{
    wd_config cfg = plugin_cfg(test_plugin("nostate"), NULL);
    struct runner r;
    runner_open(&r, &cfg);
    runner_main(&r);
    ck_assert_int_eq(r.result, 0);
    runner_main(&r);
    ck_assert_int_eq(r.result, 0);
    runner_close(&r);
    ck_assert_int_eq(plugin_int("nostate_runs"), 2);
    ck_assert_int_eq(plugin_int("nostate_with_state"), 0);
}
END_TEST

START_TEST(plugin_failing)
{
    wd_config cfg = plugin_cfg(test_plugin("failing"), NULL);
    struct runner r;
    runner_open(&r, &cfg);
    runner_main(&r);
    ck_assert_int_eq(r.result, -EIO);
    ck_assert(log_has("worker 0: job_do returned -5"));
    runner_close(&r);
}
END_TEST

START_TEST(plugin_init_arg_and_fini)
{
    wd_config cfg = plugin_cfg(test_plugin("state"), "1");
    struct runner r;
    runner_open(&r, &cfg);
    ck_assert_int_eq(plugin_int("state_inits"), 1);
    ck_assert_int_eq(plugin_int("state_news"), 0); /* at the first run */
    runner_main(&r);
    ck_assert_int_eq(r.result, 0); /* waited 1 ms: Arg reached job_init */
    ck_assert_int_eq(plugin_int("state_news"), 1);
    runner_main(&r);
    ck_assert_int_eq(plugin_int("state_news"), 1);
    workers_job_free(&r.wj);
    ck_assert_int_eq(plugin_int("state_frees"), 1);
    ck_assert_int_eq(plugin_int("state_finis"), 0);
    wd_job_close(r.job);
    workers_ctx_free(r.ctx);
    ck_assert_int_eq(plugin_int("state_finis"), 1);
}
END_TEST

static bool
state_frees_is(void *want)
{
    return plugin_int("state_frees") == *(int *)want;
}

static bool
three_states_ran(void *arg)
{
    (void)arg;
    return plugin_int("state_runs") >= 9 && plugin_int("state_news") == 3;
}

START_TEST(plugin_state_per_worker)
{
    wd_config cfg = plugin_cfg(test_plugin("state"), "1");
    cfg.pool.initial = 3;
    wd_job *job;
    char err[WD_ERRLEN];
    ck_assert_int_eq(wd_job_open(&cfg, true, &job, err, sizeof err), 0);
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg.pool, NULL, 0),
                     0);
    workers_builder b = workers_builder_func(wd_job_new, job);
    ck_assert_int_eq(workers_pool_start_with_builder(pool, &b), 0);
    ck_assert(tu_wait_until(three_states_ran, NULL, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_less(pool), 0);
    int one = 1, three = 3;
    ck_assert(tu_wait_until(state_frees_is, &one, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    workers_pool_free(pool);
    ck_assert(state_frees_is(&three));
    ck_assert_int_eq(plugin_int("state_news"), 3);
    ck_assert_int_eq(plugin_int("state_mixed"), 0);
    /* job_new, every job_do and job_free of a state: its worker's thread. */
    ck_assert_int_eq(plugin_int("state_foreign"), 0);
    wd_job_close(job);
    ck_assert_int_eq(plugin_int("state_finis"), 1);
}
END_TEST

/* ---- plugins with Timeout ------------------------------------------- */

static bool
state_running(void *arg)
{
    (void)arg;
    return plugin_int("state_running") == 1;
}

START_TEST(plugin_timeout_cancels_run)
{
    wd_config cfg = plugin_cfg(test_plugin("state"), "60000");
    cfg.timeout_ns = 150 * MS;
    struct runner r;
    runner_open(&r, &cfg);
    runner_main(&r);
    ck_assert_int_eq(r.result, WORKERS_ETIMEDOUT);
    ck_assert_uint_ge(r.elapsed_ms, 150);
    ck_assert_uint_lt(r.elapsed_ms, 30000);
    ck_assert(log_has("worker 0: plugin run timed out after 150ms"));
    /* The next run gets a live context again, and times out again. */
    runner_main(&r);
    ck_assert_int_eq(r.result, WORKERS_ETIMEDOUT);
    ck_assert_uint_ge(r.elapsed_ms, 150);
    runner_close(&r);
}
END_TEST

START_TEST(plugin_timeout_worker_cancel)
{
    /* With Timeout, job_do has a private context: cancelling the worker's
     * context must still reach it at once. */
    wd_config cfg = plugin_cfg(test_plugin("state"), "60000");
    cfg.timeout_ns = 60 * SEC;
    struct runner r;
    runner_open(&r, &cfg);
    runner_start(&r);
    ck_assert(tu_wait_until(state_running, NULL, TU_DEADLINE_MS));
    workers_ctx_cancel(r.ctx);
    ck_assert_int_eq(runner_join(&r), WORKERS_ECANCELED);
    ck_assert_uint_lt(r.elapsed_ms, 30000);
    /* Cancelled for good: the next run does not start. */
    runner_main(&r);
    ck_assert_int_eq(r.result, WORKERS_ECANCELED);
    ck_assert_int_eq(plugin_int("state_runs"), 1);
    runner_close(&r);
}
END_TEST

static bool
stubborn_saw_cancel(void *arg)
{
    (void)arg;
    return plugin_int("stubborn_saw_cancel");
}

START_TEST(plugin_ignores_cancel_timeout)
{
    wd_config cfg = plugin_cfg(test_plugin("stubborn"), NULL);
    cfg.timeout_ns = 100 * MS;
    struct runner r;
    runner_open(&r, &cfg);
    runner_start(&r);
    /* The deadline cancels its context; it goes on regardless, and the run
     * counts as timed out whatever it returns. */
    ck_assert(tu_wait_until(stubborn_saw_cancel, NULL, TU_DEADLINE_MS));
    plugin_call("stubborn_release");
    ck_assert_int_eq(runner_join(&r), WORKERS_ETIMEDOUT);
    ck_assert(log_has("plugin run timed out after 100ms"));
    runner_main(&r);
    ck_assert_int_eq(r.result, 0); /* a fresh, live context */
    runner_close(&r);
}
END_TEST

START_TEST(plugin_example)
{
    char *path = tu_build_path("plugins/example.so");
    wd_config cfg = plugin_cfg(path, "1");
    struct runner r;
    runner_open(&r, &cfg);
    runner_main(&r);
    ck_assert_int_eq(r.result, 0);
    workers_ctx_cancel(r.ctx);
    runner_main(&r);
    ck_assert_int_eq(r.result, WORKERS_ECANCELED);
    runner_close(&r);
    cfg.arg = "soon";
    open_fails(&cfg, "example.so", "job_init returned 1");
    free(path);
}
END_TEST

/* ---- orphans: processes that left the group ---------------------------- */

/* A command whose background process leaves the group (setsid) and sleeps;
 * the shell ends only once it has left, or the group kill would take it. */
#define ESCAPE(secs)                                                           \
    "setsid sh -c 'echo $$ > @/esc; exec sleep " secs "' & "                   \
    "while [ ! -s @/esc ]; do sleep 0.01; done"

static bool
adopted(void *pidp)
{
    pid_t ppid = 0;
    char st = proc_state(*(pid_t *)pidp, &ppid, NULL);
    return st != 0 && ppid == getpid();
}

/* Becomes a subreaper, then runs a command that leaves a process of
 * a process in a session of its own; returns that process's pid. The
 * run is on another thread, as workers do: the main thread has no child of
 * its own but orphans. */
static pid_t
run_escape(const char *command)
{
    ck_assert_int_eq(wd_orphans_adopt(), 0);
    wd_config cfg = command_cfg(command);
    struct runner r;
    runner_open(&r, &cfg);
    runner_start(&r);
    ck_assert_int_eq(runner_join(&r), 0);
    runner_close(&r);
    return read_pid("esc");
}

START_TEST(orphans_escaped_killed)
{
    pid_t esc = run_escape(cmdf(ESCAPE("100")));
    ck_assert(tu_wait_until(adopted, &esc, TU_DEADLINE_MS));
    ck_assert(!proc_dead(&esc)); /* it escaped the group's SIGKILL */
    ck_assert_int_eq(wd_orphans_kill(), 1);
    ck_assert_int_eq(proc_state(esc, NULL, NULL), 0);
    ck_assert_int_eq(zombie_children(), 0);
}
END_TEST

/* A thread that spawns `true` and reaps it only when told to, like a worker
 * whose shell just exited. Its child's parent is that thread, not main. */
struct spawner {
    pthread_t thread;
    pid_t pid;
    int ready[2], go[2];
    int status;
};

static void *
spawner_main(void *arg)
{
    struct spawner *sp = arg;
    char *argv[] = {"true", NULL};
    char c = 0;
    if (posix_spawn(&sp->pid, "/bin/true", NULL, NULL, argv, NULL) != 0)
        sp->pid = -1;
    while (write(sp->ready[1], &c, 1) < 0 && errno == EINTR)
        ;
    while (read(sp->go[0], &c, 1) < 0 && errno == EINTR)
        ;
    sp->status = sp->pid > 0 && waitpid(sp->pid, NULL, 0) == sp->pid ? 0 : -1;
    return NULL;
}

static void
spawner_start(struct spawner *sp)
{
    char c;
    ck_assert_int_eq(pipe2(sp->ready, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(sp->go, O_CLOEXEC), 0);
    ck_assert_int_eq(pthread_create(&sp->thread, NULL, spawner_main, sp), 0);
    ck_assert_int_eq(read(sp->ready[0], &c, 1), 1);
    ck_assert_int_gt(sp->pid, 0);
}

static int
spawner_join(struct spawner *sp)
{
    ck_assert_int_eq(write(sp->go[1], "", 1), 1);
    ck_assert_int_eq(pthread_join(sp->thread, NULL), 0);
    for (int i = 0; i < 2; i++) {
        close(sp->ready[i]);
        close(sp->go[i]);
    }
    return sp->status;
}

static bool
adopted_zombie(void *pidp)
{
    pid_t ppid = 0;
    return proc_state(*(pid_t *)pidp, &ppid, NULL) == 'Z' && ppid == getpid();
}

START_TEST(orphans_reaped_not_workers_children)
{
    pid_t esc = run_escape(cmdf(ESCAPE("0.1")));
    ck_assert(tu_wait_until(adopted_zombie, &esc, TU_DEADLINE_MS));

    /* A zombie child of another thread (a worker's shell the worker did
     * not reap yet) stays for that thread to reap. */
    struct spawner sp;
    spawner_start(&sp);
    ck_assert(tu_wait_until(adopted_zombie, &sp.pid, TU_DEADLINE_MS));
    wd_orphans_reap();
    ck_assert_int_eq(proc_state(esc, NULL, NULL), 0); /* the orphan went */
    ck_assert(adopted_zombie(&sp.pid));               /* the worker's stays */
    ck_assert_int_eq(spawner_join(&sp), 0);
    ck_assert_int_eq(wd_orphans_kill(), 0);
    ck_assert_int_eq(zombie_children(), 0);
}
END_TEST

Suite *make_jobs_suite(void);

Suite *
make_jobs_suite(void)
{
    Suite *s = suite_create("jobs");
    TCase *tc = tcase_create("command");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, command_exit_0);
    tcase_add_test(tc, command_exit_3);
    tcase_add_test(tc, command_huge_timeout);
    tcase_add_test(tc, command_killed_by_signal);
    tcase_add_test(tc, command_open_without_job);
    tcase_add_test(tc, command_open_without_descriptors);
    tcase_add_test(tc, command_environment);
    tcase_add_test(tc, command_descriptors);
    tcase_add_test(tc, command_signals_and_group);
    tcase_add_test(tc, command_background_grandchild_killed);
    tcase_add_test(tc, command_cancel_sends_sigterm);
    tcase_add_test(tc, command_cancelled_before_run);
    tcase_add_test(tc, command_ignores_sigterm_kill);
    tcase_add_test(tc, command_cancel_escalates);
    tcase_add_test(tc, command_stopped_run_cancelled);
    tcase_add_test(tc, command_kill_not_sticky);
    tcase_add_test(tc, command_kill_during_spawn);
    tcase_add_test(tc, command_timeout_sigterm);
    tcase_add_test(tc, command_timeout_then_sigkill);
    tcase_add_test(tc, command_pool_worker_ids);
    tcase_add_test(tc, command_pool_less_and_close);
    suite_add_tcase(s, tc);

    tc = tcase_create("plugin");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, plugin_load_errors);
    tcase_add_test(tc, plugin_init_fails);
    tcase_add_test(tc, plugin_new_null);
    tcase_add_test(tc, plugin_without_state);
    tcase_add_test(tc, plugin_failing);
    tcase_add_test(tc, plugin_init_arg_and_fini);
    tcase_add_test(tc, plugin_state_per_worker);
    tcase_add_test(tc, plugin_timeout_cancels_run);
    tcase_add_test(tc, plugin_timeout_worker_cancel);
    tcase_add_test(tc, plugin_ignores_cancel_timeout);
    tcase_add_test(tc, plugin_example);
    suite_add_tcase(s, tc);

    tc = tcase_create("orphans");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, orphans_escaped_killed);
    tcase_add_test(tc, orphans_reaped_not_workers_children);
    suite_add_tcase(s, tc);
    return s;
}
