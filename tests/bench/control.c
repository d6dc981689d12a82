/*
 * Section 7: workersd's control socket, against issue 10's targets, in the
 * real daemon with a plugin job (the example plugin resting an hour per
 * run, so that 1,000 workers cost threads, not processes).
 *
 * - `status` round trip: connect, send "status", read the whole JSON reply
 *   to the server's close (what workersctl does, minus its exec), with
 *   1,000 workers in a run; the baseline is the same with 1 worker. The
 *   median of 20 calls per repetition.
 * - `set 1000` from 1: the request's round trip; the baseline is 999
 *   workers_pool_more() calls on a pool of this process whose job rests in
 *   workers_ctx_wait() (the pool's own cost, no socket, no daemon).
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG 1000
#define CALLS 20
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
            bn_die("workersd: no %s in the reply to %s: %s", want, req,
                   reply);
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

/* 999 workers_pool_more() calls on a local pool of resting workers. */
static double
more_calls_us(void)
{
    workers_pool *pool;
    workers_job job = {bn_idle_job, NULL, NULL};
    atomic_store(&bn_entered, 0);
    bn_check(workers_pool_new(&pool, NULL, 0), "pool");
    bn_check(workers_pool_start(pool, &job), "start");
    uint64_t t0 = bn_now_ns();
    for (int i = 1; i < BIG; i++)
        bn_check(workers_pool_more(pool), "more");
    double us = (double)(bn_now_ns() - t0) / 1000.0;
    bn_wait_count(&bn_entered, BIG, "resting workers");
    bn_check(workers_pool_close(pool, NULL), "close");
    workers_pool_free(pool);
    return us;
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
    if (!st1 || !stbig || !set || !more || !mkdtemp(dir))
        bn_die("set-up: %s", strerror(errno));
    snprintf(ini, sizeof ini, "%s/pool.ini", dir);
    snprintf(sock, sizeof sock, "%s/ctl.sock", dir);
    /* build/workersd -> build/plugins/example.so */
    const char *slash = strrchr(o->daemon, '/');
    snprintf(plugin, sizeof plugin, "%.*splugins/example.so",
             slash ? (int)(slash - o->daemon + 1) : 0, o->daemon);
    FILE *f = fopen(ini, "we");
    if (!f || fchmod(fileno(f), 0600) != 0)
        bn_die("%s: %s", ini, strerror(errno));
    fprintf(f,
            "[pool]\nInitial = 1\nMax = %d\nCloseTimeout = 10s\n"
            "[job]\nPlugin = %s\nArg = 3600000\n[control]\nSocket = %s\n",
            BIG, plugin, sock);
    fclose(f);
    char *argv[] = {(char *)o->daemon, "-q", "-c", ini, NULL};
    int pid = bn_spawn(argv, NULL, -1);
    ask_until(sock, "status\n", "\"busy\":1,");

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
        more[r] = more_calls_us();
    }
    if (round_trip(sock, "stop\n") < 0 || strstr(reply, "\"exit\":0") == NULL)
        fprintf(stderr, "bench: workersd's stop: %s\n", reply);
    bn_reap(pid, 15000);

    bn_section("7. workersd: the control socket (a plugin job, workers "
               "resting in a run)");
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
         .target = "within 2x of more() calls"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        bn_print(&rows[i]);
    unlink(ini);
    rmdir(dir);
    free(st1);
    free(stbig);
    free(set);
    free(more);
}
