/*
 * Section 7: workersd's control socket, against issue 10's targets, in the
 * real daemon with a plugin job.
 *
 * With the example plugin resting an hour per run (so that 1,000 workers
 * cost threads, not processes):
 * - `status` round trip: connect, send "status", read the whole JSON reply
 *   to the server's close (what workersctl does, minus its exec), with
 *   1,000 workers in a run; the baseline is the same with 1 worker. The
 *   median of 20 calls per repetition.
 * - `set 1000` from 1: the request's round trip; the baseline is 999
 *   workers_pool_more() calls on a pool of this process whose job rests in
 *   workers_ctx_wait() (the pool's own cost, no socket, no daemon). The
 *   two pools go through the same cycle (1 -> 1,000 -> 1 per repetition,
 *   the default park timeout, the default stack), so that each repetition
 *   after the first reuses the threads the previous one parked in both:
 *   a fresh pool per repetition made the baseline create 999 threads
 *   while the daemon reused its parked ones.
 *
 * With tests/plugins/soak_count.so (a run only counts, into a file this
 * process maps) and one worker per CPU:
 * - the runs over a window while a client thread sends `status` every
 *   10 ms (on a fixed schedule), beside windows without the client, in
 *   pairs (the order swapped every pair, so that drift in the machine's
 *   load hits both). Judged per CPU-second of workersd and the client
 *   together, as section 1 judges per CPU, since on a shared machine the
 *   wall rate swings by tens of percent from one window to the next: the
 *   median of the pairs' ratios. The wall rates, and the CPU time the
 *   polling costs (workersd's loop thread, the client), are printed too.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BIG 1000
#define CALLS 20
#define WINDOW_MS 2000u /* one window of the polled throughput */
#define DEADLINE_NS (30ull * 1000000000u)

static char reply[1 << 20];

/* One request's round trip, in microseconds; the reply in `reply`. -1 when
 * nobody answers at sock. */
static double
round_trip(const char *sock, const char *req)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t got = 0;
    ssize_t n;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
    uint64_t t0 = bn_now_ns();
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        bn_die("control socket: write: %s", strerror(errno));
    while ((n = read(fd, reply + got, sizeof reply - 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    reply[got] = '\0';
    return (double)(bn_now_ns() - t0) / 1000.0;
}

/* Asks until the reply holds want. */
static void
ask_until(const char *sock, const char *req, const char *want)
{
    uint64_t end = bn_now_ns() + DEADLINE_NS;
    while (round_trip(sock, req) < 0 || strstr(reply, want) == NULL) {
        if (bn_now_ns() > end)
            bn_die("workersd: no %s in the reply to %s: %s", want, req, reply);
        bn_sleep_ns(10000000);
    }
}

/* The median status round trip over CALLS calls. */
static double
status_median(const char *sock)
{
    double v[CALLS];
    for (int i = 0; i < CALLS; i++)
        if ((v[i] = round_trip(sock, "status\n")) < 0)
            bn_die("workersd stopped answering");
    return bn_stat_of(v, CALLS).med;
}

/* One repetition of the baseline of `set 1000` on pool (at 1 worker): 999
 * workers_pool_more() calls, timed, then back to 1 worker as `set 1` does,
 * its threads parked for the next repetition. */
static double
more_calls_us(workers_pool *pool, int rep)
{
    uint64_t t0 = bn_now_ns();
    for (int i = 1; i < BIG; i++)
        bn_check(workers_pool_more(pool), "more");
    double us = (double)(bn_now_ns() - t0) / 1000.0;
    bn_wait_count(&bn_entered, (rep + 1) * (BIG - 1) + 1, "resting workers");
    for (int i = 1; i < BIG; i++)
        bn_check(workers_pool_less(pool), "less");
    bn_wait_count(&bn_exited, (rep + 1) * (BIG - 1), "removed workers");
    return us;
}

/* The path of a plugin under the daemon's build folder:
 * build/workersd -> build/REL. */
static void
beside_daemon(const bn_opts *o, const char *rel, char *buf, size_t len)
{
    const char *slash = strrchr(o->daemon, '/');
    snprintf(buf, len, "%.*s%s", slash ? (int)(slash - o->daemon + 1) : 0,
             o->daemon, rel);
}

/* Starts workersd on the config ini whose control socket is sock; returns
 * its pid once the socket answers with want in its status. */
static int
start_daemon(const bn_opts *o, const char *ini, const char *sock,
             const char *want)
{
    char *argv[] = {(char *)o->daemon, "-q", "-c", (char *)ini, NULL};
    int pid = bn_spawn(argv, NULL, -1);
    ask_until(sock, "status\n", want);
    return pid;
}

/* Asks workersd to stop and reaps it. */
static void
stop_daemon(const char *sock, int pid)
{
    if (round_trip(sock, "stop\n") < 0 || strstr(reply, "\"exit\":0") == NULL)
        fprintf(stderr, "bench: workersd's stop: %s\n", reply);
    bn_reap(pid, 15000);
}

/* The polling client: `status` every POLL_NS on a fixed schedule until
 * stop; the only user of round_trip() (and reply) while it runs. */
#define POLL_NS 10000000u
struct poller {
    const char *sock;
    _Atomic bool stop;
    _Atomic unsigned calls;
    _Atomic uint64_t cpu_ns; /* the client thread's CPU time so far */
    pthread_t t;
};

static uint64_t
cpu_clock_ns(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0)
        bn_die("clock_gettime: %s", strerror(errno));
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *
poll_status(void *arg)
{
    struct poller *p = arg;
    uint64_t next = bn_now_ns();
    while (!atomic_load(&p->stop)) {
        if (round_trip(p->sock, "status\n") < 0)
            bn_die("workersd stopped answering the polling client");
        atomic_store(&p->cpu_ns, cpu_clock_ns(CLOCK_THREAD_CPUTIME_ID));
        atomic_fetch_add(&p->calls, 1);
        next += POLL_NS;
        uint64_t now = bn_now_ns();
        if (next > now)
            bn_sleep_ns(next - now);
        else
            next = now; /* late: no burst to catch up */
    }
    return NULL;
}

/* The CPU time of workersd's main thread (its event loop, which serves
 * the control socket), from the scheduler's statistics. */
static uint64_t
loop_cpu_ns(int pid)
{
    char path[64];
    unsigned long long ns = 0;
    snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", pid, pid);
    FILE *f = fopen(path, "re");
    if (!f || fscanf(f, "%llu", &ns) != 1)
        bn_die("%s: cannot read", path);
    fclose(f);
    return ns;
}

/* One window of the daemon's runs: per second of wall time, and per
 * second of CPU time of the daemon and the polling client together (what
 * the runs per second would be on CPUs of their own, as section 1 counts);
 * the CPU time per second of the daemon's loop and of the client. */
struct window {
    double per_s, per_cpu_s, polls_per_s, loop_ms, client_ms;
};

/* One window of ms of the daemon whose CPU clock is daemon_cpu, with or
 * without the polling client. */
static struct window
measure(const _Atomic uint64_t *total, int pid, clockid_t daemon_cpu,
        const char *sock, unsigned ms, bool polled)
{
    struct poller p = {.sock = sock};
    if (polled) {
        int err = pthread_create(&p.t, NULL, poll_status, &p);
        if (err != 0)
            bn_die("pthread_create: %s", strerror(err));
    }
    unsigned c0 = atomic_load(&p.calls);
    uint64_t p0 = atomic_load(&p.cpu_ns), d0 = cpu_clock_ns(daemon_cpu);
    uint64_t l0 = loop_cpu_ns(pid);
    uint64_t r0 = atomic_load_explicit(total, memory_order_relaxed);
    uint64_t t0 = bn_now_ns();
    bn_sleep_ns((uint64_t)ms * 1000000u);
    uint64_t r1 = atomic_load_explicit(total, memory_order_relaxed);
    uint64_t t1 = bn_now_ns(), d1 = cpu_clock_ns(daemon_cpu);
    uint64_t l1 = loop_cpu_ns(pid);
    uint64_t p1 = atomic_load(&p.cpu_ns);
    unsigned c1 = atomic_load(&p.calls);
    if (polled) {
        atomic_store(&p.stop, true);
        pthread_join(p.t, NULL);
    }
    double s = (double)(t1 - t0) / 1e9, runs = (double)(r1 - r0);
    double cpu = (double)(d1 - d0 + p1 - p0) / 1e9;
    return (struct window){runs / s, cpu > 0 ? runs / cpu : NAN,
                           (double)(c1 - c0) / s, (double)(l1 - l0) / 1e6 / s,
                           (double)(p1 - p0) / 1e6 / s};
}

/* A soak_count.so job on one worker per CPU, alone and polled: R pairs of
 * windows of ms each, into alone[] and polled[]. */
static void
polled_throughput(const bn_opts *o, const char *dir, unsigned ms,
                  struct window *alone, struct window *polled)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    char ini[64], sock[64], count[64], plugin[4096], want[32];
    clockid_t daemon_cpu;
    snprintf(ini, sizeof ini, "%s/soak.ini", dir);
    snprintf(sock, sizeof sock, "%s/soak.sock", dir);
    snprintf(count, sizeof count, "%s/count", dir);
    beside_daemon(o, "tests/plugins/soak_count.so", plugin, sizeof plugin);
    int fd = open(count, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, sizeof(uint64_t)) != 0)
        bn_die("%s: %s", count, strerror(errno));
    _Atomic uint64_t *total =
        mmap(NULL, sizeof *total, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (total == MAP_FAILED)
        bn_die("mmap %s: %s", count, strerror(errno));
    if (ncpu < 1)
        ncpu = 1;
    bn_write_conf(ini,
                  "[pool]\nInitial = %ld\nCloseTimeout = 10s\n"
                  "[job]\nPlugin = %s\nArg = %s\n[control]\nSocket = %s\n",
                  ncpu, plugin, count, sock);
    snprintf(want, sizeof want, "\"workers\":%ld,", ncpu);
    int pid = start_daemon(o, ini, sock, want);
    int err = clock_getcpuclockid(pid, &daemon_cpu);
    if (err != 0)
        bn_die("clock_getcpuclockid: %s", strerror(err));
    for (uint64_t end = bn_now_ns() + DEADLINE_NS;
         atomic_load_explicit(total, memory_order_relaxed) == 0;
         bn_sleep_ns(1000000))
        if (bn_now_ns() > end)
            bn_die("soak_count.so counted no run: %s", count);

    for (int r = 0; r < o->reps; r++) {
        bool alone_first = r % 2 == 0;
        struct window a =
            measure(total, pid, daemon_cpu, sock, ms, !alone_first);
        struct window b =
            measure(total, pid, daemon_cpu, sock, ms, alone_first);
        alone[r] = alone_first ? a : b;
        polled[r] = alone_first ? b : a;
    }
    stop_daemon(sock, pid);
    munmap((void *)total, sizeof *total);
    unlink(count);
    unlink(ini);
}

/* The row of polled_throughput's windows: the runs per CPU-second judged
 * (the median of the pairs' ratios), the wall figures beside them. */
static void
print_polled_row(int R, unsigned ms, const struct window *alone,
                 const struct window *polled)
{
    double *v = calloc((size_t)R * 3, sizeof(double)), *w = v + R, *x = w + R;
    char extra[400];
    if (!v)
        bn_die("out of memory");
    for (int r = 0; r < R; r++) {
        v[r] = polled[r].per_s / 1e6;
        w[r] = alone[r].per_s / 1e6;
        x[r] = polled[r].polls_per_s;
    }
    bn_stat wall = bn_stat_of(v, R), wall_base = bn_stat_of(w, R);
    double calls = bn_stat_of(x, R).med;
    for (int r = 0; r < R; r++) {
        v[r] = polled[r].loop_ms - alone[r].loop_ms;
        w[r] = polled[r].client_ms;
    }
    double loop = bn_stat_of(v, R).med, client = bn_stat_of(w, R).med;
    /* what the polling costs the workers of a machine of their own */
    double cost = (loop + client) / (10.0 * sysconf(_SC_NPROCESSORS_ONLN));
    snprintf(extra, sizeof extra,
             "%ld workers, %u ms windows, %.0f status calls/s (median); M "
             "runs/s (wall): polled %.1f [%.1f..%.1f], alone %.1f [%.1f..%.1f]"
             "; polling costs %.2f ms CPU/s in workersd's loop + %.2f in the "
             "client = %.2f%% of the CPUs",
             sysconf(_SC_NPROCESSORS_ONLN), ms, calls, wall.med, wall.min,
             wall.max, wall_base.med, wall_base.min, wall_base.max, loop,
             client, cost);
    for (int r = 0; r < R; r++) {
        v[r] = polled[r].per_cpu_s / 1e6;
        w[r] = alone[r].per_cpu_s / 1e6;
        x[r] = polled[r].per_cpu_s / alone[r].per_cpu_s;
    }
    bn_row row = {.what = "plugin job, status every 10 ms",
                  .unit = "M runs/CPU-s",
                  .pool = bn_stat_of(v, R),
                  .base_what = "the same, no client",
                  .base = bn_stat_of(w, R),
                  .ratio = bn_stat_of(x, R).med,
                  .judge = BN_RATIO_GE,
                  .limit = 0.98,
                  .target = ">= 0.98x",
                  .extra = extra};
    bn_print(&row);
    free(v);
}

void
bn_control(const bn_opts *o)
{
    int R = o->reps;
    char dir[] = "/tmp/workers-bench.XXXXXX", ini[64], sock[64], plugin[4096];
    double *st1 = calloc((size_t)R, sizeof(double));
    double *stbig = calloc((size_t)R, sizeof(double));
    double *set = calloc((size_t)R, sizeof(double));
    double *more = calloc((size_t)R, sizeof(double));
    struct window *alone = calloc((size_t)R, sizeof *alone);
    struct window *polled = calloc((size_t)R, sizeof *polled);
    if (!st1 || !stbig || !set || !more || !alone || !polled || !mkdtemp(dir))
        bn_die("set-up: %s", strerror(errno));
    snprintf(ini, sizeof ini, "%s/pool.ini", dir);
    snprintf(sock, sizeof sock, "%s/ctl.sock", dir);
    beside_daemon(o, "plugins/example.so", plugin, sizeof plugin);
    bn_write_conf(ini,
                  "[pool]\nInitial = 1\nMax = %d\nCloseTimeout = 10s\n"
                  "[job]\nPlugin = %s\nArg = 3600000\n[control]\nSocket = %s\n",
                  BIG, plugin, sock);
    int pid = start_daemon(o, ini, sock, "\"busy\":1,");

    workers_pool *pool;
    workers_job job = {bn_idle_job, NULL, NULL};
    atomic_store(&bn_entered, 0);
    atomic_store(&bn_exited, 0);
    bn_check(workers_pool_new(&pool, NULL, 0), "pool");
    bn_check(workers_pool_start(pool, &job), "start");
    double set_first = 0, more_first = 0;
    for (int r = 0; r < R; r++) {
        st1[r] = status_median(sock);
        if ((set[r] = round_trip(sock, "set 1000\n")) < 0 ||
            strstr(reply, "-> 1000") == NULL)
            bn_die("set 1000: %s", reply);
        ask_until(sock, "status\n", "\"busy\":1000,");
        stbig[r] = status_median(sock);
        if (round_trip(sock, "set 1\n") < 0)
            bn_die("set 1: no answer");
        ask_until(sock, "status\n", "\"busy\":1,");
        more[r] = more_calls_us(pool, r);
        if (r == 0) {
            set_first = set[r];
            more_first = more[r];
        }
    }
    bn_check(workers_pool_close(pool, NULL), "close");
    workers_pool_free(pool);
    stop_daemon(sock, pid);
    unlink(ini);

    unsigned ms = WINDOW_MS;
    polled_throughput(o, dir, ms, alone, polled);
    rmdir(dir);

    char set_extra[160];
    snprintf(set_extra, sizeof set_extra,
             "1st repetition (threads created in both): set %.1f ms, "
             "more() calls %.1f ms; later ones reuse parked threads",
             set_first / 1000, more_first / 1000);
    bn_section("7. workersd: the control socket (a plugin job, workers "
               "resting in a run; then soak_count.so, polled)");
    bn_row rows[] = {
        {.what = "status round trip, 1,000 workers",
         .unit = "us",
         .pool = bn_stat_of(stbig, R),
         .base_what = "the same, 1 worker",
         .base = bn_stat_of(st1, R),
         .ratio = NAN,
         .judge = BN_ABS_LE,
         .limit = 1000,
         .target = "<= 1 ms median"},
        {.what = "set 1000 from 1",
         .unit = "us",
         .pool = bn_stat_of(set, R),
         .base_what = "999 more() calls, in process",
         .base = bn_stat_of(more, R),
         .ratio = NAN,
         .judge = BN_RATIO_LE,
         .limit = 2,
         .target = "within 2x of more() calls",
         .extra = set_extra},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        bn_print(&rows[i]);
    print_polled_row(R, ms, alone, polled);
    free(st1);
    free(stbig);
    free(set);
    free(more);
    free(alone);
    free(polled);
}
