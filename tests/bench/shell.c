/*
 * Section 4: shell-command job throughput. The pool runs workersd's own
 * command job (the jobs objects linked in, Command = true, so each run is
 * one `/bin/sh -c true` child) for a fixed window, counting finished runs
 * with the counter middleware. Baselines on the same number of threads: a
 * raw loop of posix_spawn("/bin/sh", "-c", "true") + waitpid(pid), and
 * `seq M | xargs -P N -n 1 sh -c true`, timed from spawn to exit.
 */
#include "bench.h"
#include "workersd.h"

#include <math.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define WINDOW_MS 500
#define MAXT 2

extern char **environ;

static double
pool_rate(int n)
{
    wd_config cfg = {
        .path = "bench", .command = "true", .kill_grace_ns = 5000000000u};
    char err[WD_ERRLEN];
    wd_job *job;
    if (wd_job_open(&cfg, true, &job, err, sizeof err) != 0)
        bn_die("wd_job_open: %s", err);
    workers_counter *c;
    bn_check(workers_counter_new(&c), "workers_counter_new");
    workers_middleware mw = workers_counter_middleware(c);
    workers_config pc = {.initial = n};
    workers_pool *p;
    bn_check(workers_pool_new_with_config(&p, &pc, &mw, 1), "pool new");
    workers_builder b = workers_builder_func(wd_job_new, job);
    bn_check(workers_pool_start_with_builder(p, &b), "pool start");

    workers_counter_stats s0, s1;
    workers_counter_stats_get(c, &s0);
    uint64_t t0 = bn_now_ns();
    bn_sleep_ns(WINDOW_MS * 1000000ull);
    workers_counter_stats_get(c, &s1);
    uint64_t t1 = bn_now_ns();

    /* Only in the window: close cancels the runs in progress, and a
     * cancelled run counts as failed. */
    if (s1.failed != s0.failed)
        bn_die("command job: %llu of %llu runs of `true` failed",
               (unsigned long long)(s1.failed - s0.failed),
               (unsigned long long)(s1.finished - s0.finished));
    bn_check(workers_pool_close(p, NULL), "close");
    workers_pool_free(p);
    workers_counter_free(c);
    wd_job_close(job);
    return (double)(s1.finished - s0.finished) / ((double)(t1 - t0) / 1e9);
}

struct spawner {
    _Alignas(BN_CACHELINE) _Atomic uint64_t runs;
    _Atomic uint32_t stop;
};

static struct spawner sp[MAXT];

static void *
spawn_loop(void *arg)
{
    struct spawner *s = arg;
    char *argv[] = {"/bin/sh", "-c", "true", NULL};
    while (!atomic_load(&s->stop)) {
        pid_t pid;
        int status;
        int err = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
        if (err)
            bn_die("posix_spawn: %s", strerror(err));
        if (waitpid(pid, &status, 0) != pid || status != 0)
            bn_die("/bin/sh -c true: status %#x", status);
        atomic_fetch_add_explicit(&s->runs, 1, memory_order_relaxed);
    }
    return NULL;
}

static uint64_t
spawned(int n)
{
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += atomic_load(&sp[i].runs);
    return sum;
}

static double
raw_rate(int n)
{
    pthread_t t[MAXT];
    for (int i = 0; i < n; i++) {
        atomic_store(&sp[i].runs, 0);
        atomic_store(&sp[i].stop, 0);
        int err = pthread_create(&t[i], NULL, spawn_loop, &sp[i]);
        if (err)
            bn_die("pthread_create: %s", strerror(err));
    }
    uint64_t r0 = spawned(n), t0 = bn_now_ns();
    bn_sleep_ns(WINDOW_MS * 1000000ull);
    uint64_t r1 = spawned(n), t1 = bn_now_ns();
    for (int i = 0; i < n; i++)
        atomic_store(&sp[i].stop, 1);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    return (double)(r1 - r0) / ((double)(t1 - t0) / 1e9);
}

/* About a window's worth of runs at the raw rate, timed whole. */
static double
xargs_rate(int n, double raw)
{
    int m = (int)(raw * WINDOW_MS / 1000);
    char cmd[128];
    if (m < 50)
        m = 50;
    snprintf(cmd, sizeof cmd, "seq %d | xargs -P %d -n 1 sh -c true", m, n);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    uint64_t t0 = bn_now_ns();
    int pid = bn_spawn(argv, NULL, -1);
    int status = bn_reap(pid, 60000);
    uint64_t t1 = bn_now_ns();
    if (status != 0)
        bn_die("%s: status %#x", cmd, status);
    return m / ((double)(t1 - t0) / 1e9);
}

void
bn_shell(const bn_opts *o)
{
    int R = o->reps;
    double *pv = calloc((size_t)R, sizeof(double));
    double *rv = calloc((size_t)R, sizeof(double));
    double *xv = calloc((size_t)R, sizeof(double));
    double *q1 = calloc((size_t)R, sizeof(double));
    double *q2 = calloc((size_t)R, sizeof(double));
    if (!pv || !rv || !xv || !q1 || !q2)
        bn_die("out of memory");
    wd_log_init(-1);

    char title[200];
    snprintf(title, sizeof title,
             "4. Shell-command job (Command = true: one /bin/sh -c true per "
             "run), %d ms windows",
             WINDOW_MS);
    bn_section(title);
    for (int n = 1; n <= MAXT; n++) {
        for (int r = 0; r < R; r++) {
            pv[r] = pool_rate(n);
            rv[r] = raw_rate(n);
            xv[r] = xargs_rate(n, rv[r]);
            q1[r] = pv[r] / rv[r];
            q2[r] = pv[r] / xv[r];
        }
        char what[64], bw1[64], bw2[64];
        snprintf(what, sizeof what, "command job, %d worker%s", n,
                 n > 1 ? "s" : "");
        snprintf(bw1, sizeof bw1, "posix_spawn+waitpid x%d", n);
        snprintf(bw2, sizeof bw2, "xargs -P %d", n);
        bn_stat ps = bn_stat_of(pv, R);
        bn_row a = {.what = what,
                    .unit = "runs/s",
                    .pool = ps,
                    .base_what = bw1,
                    .base = bn_stat_of(rv, R),
                    .ratio = bn_stat_of(q1, R).med,
                    .judge = BN_RATIO_GE,
                    .limit = 0.9,
                    .target = ">= 0.9x raw spawn"};
        bn_print(&a);
        bn_row b = {.what = what,
                    .unit = "runs/s",
                    .pool = ps,
                    .base_what = bw2,
                    .base = bn_stat_of(xv, R),
                    .ratio = bn_stat_of(q2, R).med,
                    .judge = BN_RATIO_GE,
                    .limit = 1.0,
                    .target = "faster than xargs -P"};
        bn_print(&b);
    }
    free(pv);
    free(rv);
    free(xv);
    free(q1);
    free(q2);
}
