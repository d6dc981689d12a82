/*
 * Reliability of workersd (issue 6): the real binary under long runs,
 * signal storms and valgrind.
 *
 * - soak: a shell job and a plugin job run many times with 4 workers; the
 *   daemon's descriptors, threads and RSS are sampled from /proc after
 *   start-up, during the runs and after them, and every sample looks for
 *   zombie children. `make check` runs a short variant; `make soak` sets
 *   WORKERS_SOAK_SHELL_RUNS and WORKERS_SOAK_PLUGIN_RUNS to the long one.
 *   Each soak prints a one-line summary (the README's figures).
 * - storm: 1,000 SIGUSR1 and 1,000 SIGUSR2, interleaved, as fast as kill(2)
 *   goes, while jobs run; then bursts that push the count to Max and to
 *   Min; every count the daemon logs stays within [Min, Max], the jobs go
 *   on, and a SIGINT closes cleanly.
 * - valgrind: memcheck over start, runs, SIGUSR1, SIGUSR2, SIGINT; only in
 *   a build without sanitizers (they cannot share the process).
 *
 * Runs are counted without perturbing them much: the shell job appends one
 * byte to a file (O_APPEND, a shell builtin, no extra process), the plugin
 * (tests/plugins/soak_count.c) adds to a counter in a shared mapping.
 * Everything waits on what the daemon does (a count, a log line, an exit),
 * with generous deadlines; nothing sleeps for ordering.
 */
#include "daemonutil.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* RSS after the runs may exceed RSS after start-up by at most this much:
 * what the allocator may keep of transient allocations (log lines, the
 * spawn path), far below what a per-run leak would cost over the runs. */
#define RSS_BOUND_KB 1024
/* A zombie child seen at a sample is a leak only if it is still there
 * this long after: a worker reaps its child right after the child exits,
 * so a sample may catch one in between. */
#define ZOMBIE_GRACE_MS 2000
#define SAMPLE_EVERY_MS 100
#define SOAK_WORKERS 4

enum kind { SHELL, PLUGIN };

struct daemon {
    enum kind kind;
    char *dir;
    char *err; /* the daemon's stderr */
    pid_t pid;
    char *runs_path;               /* SHELL: one byte per run */
    _Atomic uint64_t *plugin_runs; /* PLUGIN: the plugin's counter */
};

/* ---- the daemon and its run count ------------------------------------- */

/* The [job] section for kind, counting into d's folder. */
static char *
job_section(struct daemon *d)
{
    if (d->kind == SHELL) {
        d->runs_path = du_fmt("%s/runs", d->dir);
        return du_fmt("[job]\nCommand = printf . >> %s\n", d->runs_path);
    }
    d->runs_path = du_fmt("%s/counter", d->dir);
    int fd = open(d->runs_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)sizeof(uint64_t)), 0);
    void *map =
        mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert(map != MAP_FAILED);
    close(fd);
    d->plugin_runs = map;
    char *so = tu_build_path("tests/plugins/soak_count.so");
    char *text = du_fmt("[job]\nPlugin = %s\nArg = %s\n", so, d->runs_path);
    free(so);
    return text;
}

static uint64_t
runs(struct daemon *d)
{
    struct stat st;

    if (d->kind == PLUGIN)
        return atomic_load_explicit(d->plugin_runs, memory_order_relaxed);
    return stat(d->runs_path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Writes the ini ([pool] section given, [job] by kind). */
static char *
write_ini(struct daemon *d, enum kind kind, const char *pool)
{
    d->kind = kind;
    d->dir = du_mkdtemp();
    d->err = du_fmt("%s/err", d->dir);
    return du_write_str(d->dir, "soak.ini",
                        du_fmt("[pool]\n%s%s", pool, job_section(d)));
}

static void
expect_log(struct daemon *d, const char *needle, int n, unsigned ms)
{
    ck_assert_msg(du_wait_for(d->err, needle, n, ms), "no '%s' (x%d) in: %s",
                  needle, n, du_read(d->err));
}

static void
start(struct daemon *d, enum kind kind, const char *pool)
{
    const char *args[] = {"-c", write_ini(d, kind, pool), NULL};

    du_subreaper();
    d->pid = du_spawn(d->dir, args, NULL, false);
    expect_log(d, "workersd: started", 1, TU_DEADLINE_MS);
}

struct at_least {
    struct daemon *d;
    uint64_t n;
};

static bool
reached(void *arg)
{
    struct at_least *a = arg;
    return runs(a->d) >= a->n;
}

static void
expect_runs(struct daemon *d, uint64_t n, unsigned ms)
{
    struct at_least a = {d, n};
    ck_assert_msg(tu_wait_until(reached, &a, ms), "%llu runs, want %llu: %s",
                  (unsigned long long)runs(d), (unsigned long long)n,
                  du_read(d->err));
}

/* SIGINT, exit 0, nothing left behind. */
static void
stop_cleanly(struct daemon *d, unsigned ms)
{
    kill(d->pid, SIGINT);
    int code = du_wait(d->pid, ms);
    ck_assert_msg(code == 0, "exit %d, want 0: %s", code, du_read(d->err));
    ck_assert_msg(du_no_descendants(3000), "a process was left behind");
    /* Under check-asan/check-tsan the daemon is instrumented too. */
    ck_assert_msg(du_count_in(d->err, "Sanitizer") == 0, "%s", du_read(d->err));
}

/* ---- /proc samples ------------------------------------------------------ */

struct sample {
    int fds;    /* open descriptors but pidfds */
    int pidfds; /* one per shell run in progress, at most */
    int threads;
    long rss_kb;
};

static void
sample(pid_t pid, struct sample *s)
{
    char path[320], link[128];
    struct dirent *de;
    DIR *dir;

    memset(s, 0, sizeof *s);
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    ck_assert_ptr_nonnull(dir = opendir(path));
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/fd/%s", (int)pid, de->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n < 0)
            continue; /* closed since readdir */
        link[n] = '\0';
        if (strcmp(link, "anon_inode:[pidfd]") == 0)
            s->pidfds++;
        else
            s->fds++;
    }
    closedir(dir);

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    ck_assert_ptr_nonnull(f);
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
        sscanf(line, "Threads: %d", &s->threads);
        sscanf(line, "VmRSS: %ld", &s->rss_kb);
    }
    fclose(f);
    ck_assert_int_gt(s->threads, 0);
    ck_assert_int_gt(s->rss_kb, 0);
}

/* A process, told apart from a later one with the same pid. */
struct proc {
    pid_t pid;
    unsigned long long start; /* field 22 of /proc/PID/stat */
};

/* Reads /proc/pid/stat: state, parent and start time; false if gone. */
static bool
proc_stat(pid_t pid, char *state, pid_t *ppid, unsigned long long *start)
{
    char path[64], buf[1024], *rp;
    int pp;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "re")) == NULL)
        return false;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    /* The command may hold spaces and ')'; fields 4..21 are skipped. */
    if ((rp = strrchr(buf, ')')) == NULL ||
        sscanf(rp + 1,
               " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
               "%*d %*d %*d %*d %llu",
               state, &pp, start) != 3)
        return false;
    *ppid = pp;
    return true;
}

/* The zombie children of ppid, at most max of them; returns how many. */
static int
zombies(pid_t ppid, struct proc *out, int max)
{
    DIR *dir = opendir("/proc");
    struct dirent *de;
    int n = 0;

    ck_assert_ptr_nonnull(dir);
    while ((de = readdir(dir)) != NULL && n < max) {
        unsigned long long start;
        pid_t pid = atoi(de->d_name), parent;
        char state;

        if (pid > 0 && proc_stat(pid, &state, &parent, &start) &&
            parent == ppid && state == 'Z')
            out[n++] = (struct proc){pid, start};
    }
    closedir(dir);
    return n;
}

static bool
reaped(void *arg)
{
    struct proc *z = arg;
    unsigned long long start;
    pid_t parent;
    char state;

    return !proc_stat(z->pid, &state, &parent, &start) || start != z->start ||
           state != 'Z';
}

/* Fails on a zombie child that outlives ZOMBIE_GRACE_MS; returns how many
 * were seen (reaped in time). */
static int
check_zombies(struct daemon *d)
{
    struct proc z[16];
    int n = zombies(d->pid, z, 16);

    for (int i = 0; i < n; i++)
        ck_assert_msg(tu_wait_until(reaped, &z[i], ZOMBIE_GRACE_MS),
                      "zombie %d of workersd %d not reaped in %d ms",
                      (int)z[i].pid, (int)d->pid, ZOMBIE_GRACE_MS);
    return n;
}

/* ---- soak --------------------------------------------------------------- */

static uint64_t
env_runs(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? strtoull(v, NULL, 10) : dflt;
}

static uint64_t
shell_runs(void)
{
    return env_runs("WORKERS_SOAK_SHELL_RUNS", 2000);
}

static uint64_t
plugin_runs(void)
{
    /* Enough for the daemon to be sampled a few times while it runs: the
     * pool does some 400 M plugin runs a second here, 20 M under TSan. */
    return env_runs("WORKERS_SOAK_PLUGIN_RUNS",
                    WORKERS_SAN[0] != '\0' ? 20000000 : 200000000);
}

/* Worst case per run on a loaded 2-core machine under a sanitizer (5 ms a
 * shell run, 100 ns a plugin run): a bound for a hang, not a forecast. */
static uint64_t
soak_deadline_ms(void)
{
    return 30000 + shell_runs() * 5 + plugin_runs() / 10000;
}

static void
soak(enum kind kind, uint64_t n)
{
    struct daemon d;
    struct sample first, last, now;
    int max_pidfds = 0, seen_zombies = 0;
    char pool[64];

    snprintf(pool, sizeof pool, "Initial = %d\nCloseTimeout = 30s\n",
             SOAK_WORKERS);
    start(&d, kind, pool);
    /* Start-up is over when every worker ran: threads, their stacks and
     * malloc arenas exist; a shell run's descriptors were made once. */
    uint64_t warmup = kind == SHELL ? 100 : 100000;
    expect_runs(&d, warmup, TU_DEADLINE_MS);
    sample(d.pid, &first);
    seen_zombies += check_zombies(&d);

    uint64_t t0 = tu_now_ms(), begin = runs(&d);
    uint64_t end = t0 + soak_deadline_ms();
    struct at_least target = {&d, begin + n};
    /* A sample every SAMPLE_EVERY_MS, and one as soon as the runs are
     * done (the count is polled every millisecond meanwhile). */
    while (!tu_wait_until(reached, &target, SAMPLE_EVERY_MS)) {
        ck_assert_msg(tu_now_ms() < end, "soak: %llu of %llu runs: %s",
                      (unsigned long long)(runs(&d) - begin),
                      (unsigned long long)n, du_read(d.err));
        ck_assert_msg(waitpid(d.pid, NULL, WNOHANG) == 0, "workersd died: %s",
                      du_read(d.err));
        sample(d.pid, &now);
        ck_assert_int_eq(now.threads, first.threads);
        ck_assert_int_eq(now.fds, first.fds);
        ck_assert_int_le(now.pidfds, SOAK_WORKERS);
        if (now.pidfds > max_pidfds)
            max_pidfds = now.pidfds;
        seen_zombies += check_zombies(&d);
    }
    uint64_t ms = tu_now_ms() - t0, done = runs(&d) - begin;
    sample(d.pid, &last);
    seen_zombies += check_zombies(&d);

    fprintf(stderr,
            "soak %s: %llu runs, %d workers, %.1f s (%.0f runs/s); "
            "fds %d -> %d (+ pidfds of runs in progress: %d -> %d, max %d); "
            "threads %d -> %d; RSS %ld kB -> %ld kB (bound +%d kB); "
            "zombies: %d seen at samples and reaped within %d ms, 0 left\n",
            kind == SHELL ? "shell `printf . >> file`" : "plugin soak_count.so",
            (unsigned long long)done, SOAK_WORKERS, (double)ms / 1000.,
            ms ? (double)done * 1000. / (double)ms : 0., first.fds, last.fds,
            first.pidfds, last.pidfds, max_pidfds, first.threads, last.threads,
            first.rss_kb, last.rss_kb, RSS_BOUND_KB, seen_zombies,
            ZOMBIE_GRACE_MS);
    ck_assert_int_eq(last.threads, first.threads);
    ck_assert_int_eq(last.fds, first.fds);
    /* Sanitizers hold memory back by design (ASan's quarantine, TSan's
     * shadow and history). */
    if (WORKERS_SAN[0] == '\0')
        ck_assert_msg(last.rss_kb <= first.rss_kb + RSS_BOUND_KB,
                      "RSS %ld kB -> %ld kB", first.rss_kb, last.rss_kb);
    stop_cleanly(&d, 30000);
}

START_TEST(test_soak_shell)
{
    soak(SHELL, shell_runs());
}
END_TEST

START_TEST(test_soak_plugin)
{
    soak(PLUGIN, plugin_runs());
}
END_TEST

/* ---- signal storm -------------------------------------------------------- */

#define STORM 1000
#define STORM_MIN 1
#define STORM_MAX 4
#define STORM_BURST 50

/*
 * Every "workers: a -> b" line of the log: a and b within [min, max] and
 * one apart. Returns how many lines; *limits gets the "max reached" and
 * "min reached" lines.
 */
static int
check_scale_lines(const char *log, int min, int max, int *limits)
{
    int n = 0;

    *limits = 0;
    for (const char *p = log; (p = strstr(p, "workers: ")) != NULL; p++) {
        int a, b;
        if (sscanf(p, "workers: %d -> %d", &a, &b) != 2)
            continue;
        ck_assert_msg(a >= min && a <= max && b >= min && b <= max &&
                          (b - a == 1 || a - b == 1),
                      "bad line: %.40s", p);
        n++;
    }
    for (const char *p = log; (p = strstr(p, " reached (")) != NULL; p++)
        (*limits)++;
    return n;
}

/* Lines the daemon logs for a handled SIGUSR1 or SIGUSR2. */
static int
handled(struct daemon *d)
{
    return du_count_in(d->err, "workers: ") + du_count_in(d->err, " reached (");
}

struct handled_since {
    struct daemon *d;
    int before;
};

static bool
handled_more(void *arg)
{
    struct handled_since *h = arg;
    return handled(h->d) > h->before;
}

/* Bursts of STORM_BURST sig until the log says limit; each burst waits for
 * the daemon to handle at least one signal of it. Returns the signals sent. */
static int
push_to_limit(struct daemon *d, int sig, const char *limit)
{
    int burst;

    for (burst = 0; du_count_in(d->err, limit) == 0; burst++) {
        int before = handled(d);
        ck_assert_msg(burst < 2 * STORM / STORM_BURST, "no '%s': %s", limit,
                      du_read(d->err));
        for (int i = 0; i < STORM_BURST; i++)
            ck_assert_int_eq(kill(d->pid, sig), 0);
        struct handled_since h = {d, before};
        ck_assert_msg(tu_wait_until(handled_more, &h, TU_DEADLINE_MS),
                      "signal not handled: %s", du_read(d->err));
    }
    return burst * STORM_BURST;
}

static void
storm(enum kind kind)
{
    struct daemon d;
    char pool[96];
    int limits;

    snprintf(pool, sizeof pool,
             "Min = %d\nMax = %d\nInitial = 2\n"
             "CloseTimeout = 10s\n",
             STORM_MIN, STORM_MAX);
    start(&d, kind, pool);
    expect_runs(&d, 10, TU_DEADLINE_MS);

    uint64_t t0 = tu_now_ms();
    for (int i = 0; i < STORM; i++) {
        ck_assert_int_eq(kill(d.pid, SIGUSR1), 0);
        ck_assert_int_eq(kill(d.pid, SIGUSR2), 0);
    }
    uint64_t sent_ms = tu_now_ms() - t0;
    ck_assert_msg(waitpid(d.pid, NULL, WNOHANG) == 0, "workersd died: %s",
                  du_read(d.err));
    /* Coalesced, the interleaved storm moves the count little: push it
     * against both limits with one-signal bursts, each burst waiting only
     * until the daemon handled some signal of it. */
    int bursts = push_to_limit(&d, SIGUSR1, "max reached (4)") +
                 push_to_limit(&d, SIGUSR2, "min reached (1)");
    /* The workers still run: at least Min of them. */
    expect_runs(&d, runs(&d) + 10, TU_DEADLINE_MS);
    stop_cleanly(&d, TU_DEADLINE_MS);

    int scaled =
        check_scale_lines(du_read(d.err), STORM_MIN, STORM_MAX, &limits);
    /* Unix keeps one pending instance per signal: a storm is handled as
     * fewer signals, but at least one. */
    ck_assert_int_ge(scaled + limits, 1);
    ck_assert_int_le(scaled + limits, 2 * STORM + bursts);
    fprintf(stderr,
            "storm %s: %d signals interleaved in %llu ms, then %d in "
            "bursts to the limits; handled %d (%d changes, %d at a "
            "limit), workers within [%d, %d]\n",
            kind == SHELL ? "shell" : "plugin", 2 * STORM,
            (unsigned long long)sent_ms, bursts, scaled + limits, scaled,
            limits, STORM_MIN, STORM_MAX);
}

START_TEST(test_storm_shell)
{
    storm(SHELL);
}
END_TEST

START_TEST(test_storm_plugin)
{
    storm(PLUGIN);
}
END_TEST

/* ---- valgrind ------------------------------------------------------------ */

#define VG_ERROR 99

/* Starts workersd under valgrind memcheck (as du_spawn would start it),
 * valgrind's report to d's vg. */
static void
start_valgrind(struct daemon *d, enum kind kind, const char *pool)
{
    char *ini = write_ini(d, kind, pool);
    char *bin = tu_build_path("workersd");
    const char *args[] = {"--tool=memcheck",
                          "--error-exitcode=99",
                          "--leak-check=full",
                          "--show-leak-kinds=definite",
                          "--errors-for-leak-kinds=definite",
                          "--track-fds=no",
                          du_fmt("--log-file=%s/vg", d->dir),
                          bin,
                          "-c",
                          ini,
                          NULL};

    ck_assert_int_eq(access("/usr/bin/valgrind", X_OK), 0);
    du_subreaper();
    d->pid = du_spawn_prog("/usr/bin/valgrind", d->dir, args, NULL, false);
    free(bin);
    expect_log(d, "workersd: started", 1, 60000);
}

static void
memcheck(enum kind kind)
{
    struct daemon d;

    start_valgrind(&d, kind, "Initial = 2\nMax = 4\nCloseTimeout = 30s\n");
    expect_runs(&d, kind == SHELL ? 5 : 100000, 60000);
    kill(d.pid, SIGUSR1);
    expect_log(&d, "workers: 2 -> 3", 1, 60000);
    kill(d.pid, SIGUSR2);
    expect_log(&d, "workers: 3 -> 2", 1, 60000);
    kill(d.pid, SIGINT);
    int code = du_wait(d.pid, 60000);
    ck_assert_msg(code == 0, "exit %d (%d: valgrind found errors): %s", code,
                  VG_ERROR, du_read(du_fmt("%s/vg", d.dir)));
    ck_assert_msg(du_no_descendants(3000), "a process was left behind");
    /* Valgrind before 3.20 does not know pidfd_open (ENOSYS): the shell
     * job then polls for its child's exit; runs must still succeed. */
    ck_assert_int_eq(du_count_in(d.err, "cannot watch the command"), 0);
    ck_assert_int_eq(du_count_in(d.err, "command exited with status"), 0);
}

START_TEST(test_valgrind_shell)
{
    memcheck(SHELL);
}
END_TEST

START_TEST(test_valgrind_plugin)
{
    memcheck(PLUGIN);
}
END_TEST

Suite *make_reliability_suite(void);

Suite *
make_reliability_suite(void)
{
    Suite *s = suite_create("reliability");
    TCase *tc;

    tc = tcase_create("soak");
    tcase_set_timeout(tc, (double)(soak_deadline_ms() / 1000 + 60));
    tcase_add_test(tc, test_soak_shell);
    tcase_add_test(tc, test_soak_plugin);
    suite_add_tcase(s, tc);

    tc = tcase_create("storm");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_storm_shell);
    tcase_add_test(tc, test_storm_plugin);
    suite_add_tcase(s, tc);

    /* Valgrind cannot run a binary built with a sanitizer. */
    if (WORKERS_SAN[0] == '\0') {
        tc = tcase_create("valgrind");
        tcase_set_timeout(tc, 240);
        tcase_add_test(tc, test_valgrind_shell);
        tcase_add_test(tc, test_valgrind_plugin);
        suite_add_tcase(s, tc);
    }
    return s;
}
