/*
 * Section 2: the latency of more(), less() and close(), each call timed on
 * its own (mean and p99 of N calls per repetition; the table shows the
 * median, min and max of the repetitions' means and p99s).
 *
 * The workers' job blocks in workers_ctx_wait() until its worker is
 * cancelled, like an idle worker. Baselines are bare threads (same stack
 * size) blocked on their own futex word, and each pool call alternates
 * with its baseline call, so that the noise of a shared machine hits both:
 * - more() creating a thread while the pool grows from 1 to 10,001 workers
 *   (mean, p50, p99 and max), beside pthread_create of such a thread: the
 *   first repetition also grows the process's futex hash, a 12-50 ms
 *   syscall that a new worker thread makes, off more()'s path, so the max
 *   row compares the largest call of all repetitions;
 * - more() reusing a parked thread and less(), one at a time (before the
 *   next call, untimed, the worker woken has entered or left its run: the
 *   latency of a call on a pool at rest), beside waking one blocked thread
 *   (an atomic store plus FUTEX_WAKE: the least either call must do);
 * - less() and more() back to back, where each call also pays for the
 *   threads the previous calls woke, which compete for the CPUs and for
 *   the pool's lock, beside waking threads back to back;
 * - close() of 1,000 blocked workers, beside waking and joining 1,000
 *   blocked threads; pthread_create + pthread_join for reference;
 * - workers_autoscale_tick() on a pool of 1,000 blocked workers held at
 *   min = max (so the tick measures and decides, and calls neither more
 *   nor less), beside reading a counter's stats over the same workers:
 *   both walk one slot per worker;
 * - trimming: a pool grown from 2 to 1,002 workers and back to 2, whose
 *   1,000 parked threads exit after a 100 ms park timeout: the time from
 *   that timeout until /proc/self/task shows 2 worker threads again,
 *   beside the same wake + join of 1,000 blocked threads.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <linux/futex.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NCALLS 10000
#define NCLOSE 1000
#define NTICKS 1000
#define STACK (64 * 1024)
#define TRIM_TIMEOUT_MS 100

_Atomic int bn_entered, bn_exited, bn_raw_entered, bn_raw_exited;

int
bn_idle_job(workers_ctx *ctx, void *arg)
{
    (void)arg;
    atomic_fetch_add(&bn_entered, 1);
    int err = workers_ctx_wait(ctx, 3600ull * 1000000000u);
    atomic_fetch_add(&bn_exited, 1);
    return err;
}

/* Polls until *n >= want, then lets the threads reach their futex wait. */
void
bn_wait_count(_Atomic int *n, int want, const char *what)
{
    uint64_t end = bn_now_ns() + 120ull * 1000000000u;
    while (atomic_load(n) < want) {
        if (bn_now_ns() > end)
            bn_die("%s: %d of %d after 120 s", what, atomic_load(n), want);
        bn_sleep_ns(1000000);
    }
    bn_sleep_ns(20000000);
}

void *
bn_raw_idle(void *arg)
{
    struct bn_rawt *r = arg;
    atomic_fetch_add(&bn_raw_entered, 1);
    while (atomic_load(&r->word) == 0)
        syscall(SYS_futex, &r->word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    atomic_fetch_add(&bn_raw_exited, 1);
    return NULL;
}

/* Waits until every removed worker's run has returned: a worker removed
 * before its first run never runs the job, so the test is that at most one
 * run (the remaining worker's) is in progress; then lets threads park. */
static void
wait_drained(void)
{
    uint64_t end = bn_now_ns() + 120ull * 1000000000u;
    while (atomic_load(&bn_entered) - atomic_load(&bn_exited) > 1) {
        if (bn_now_ns() > end)
            bn_die("removed workers: %d runs still in progress after 120 s",
                   atomic_load(&bn_entered) - atomic_load(&bn_exited));
        bn_sleep_ns(1000000);
    }
    bn_sleep_ns(20000000);
}

static void *
raw_nothing(void *arg)
{
    return arg;
}

void
bn_raw_wake(struct bn_rawt *r)
{
    atomic_store(&r->word, 1);
    syscall(SYS_futex, &r->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static pthread_attr_t attr;

static void
raw_create(struct bn_rawt *r, void *(*fn)(void *))
{
    atomic_store(&r->word, 0);
    int err = pthread_create(&r->t, &attr, fn, r);
    if (err)
        bn_die("pthread_create: %s", strerror(err));
}

/* Spins (yielding) until *n >= want: the effect of the call just timed is
 * over. */
static void
spin_until(_Atomic int *n, int want)
{
    uint64_t end = bn_now_ns() + 120ull * 1000000000u;
    while (atomic_load(n) < want) {
        if (bn_now_ns() > end)
            bn_die("waited 120 s for a worker or thread to move");
        sched_yield();
    }
}

/* One timed call; with follow set, then waits (untimed) for *follow to
 * move on by one. */
static double
timed(int (*fn)(void *), void *arg, _Atomic int *follow)
{
    int want = follow ? atomic_load(follow) + 1 : 0;
    uint64_t t0 = bn_now_ns();
    int err = fn(arg);
    double ns = (double)(bn_now_ns() - t0);
    bn_check(err, "timed call");
    if (follow)
        spin_until(follow, want);
    return ns;
}

static int
call_more(void *p)
{
    return workers_pool_more(p);
}

static int
call_less(void *p)
{
    return workers_pool_less(p);
}

static int
call_create(void *r)
{
    raw_create(r, bn_raw_idle);
    return 0;
}

static int
call_wake(void *r)
{
    bn_raw_wake(r);
    return 0;
}

static int
call_create_join(void *r)
{
    raw_create(r, raw_nothing);
    pthread_join(((struct bn_rawt *)r)->t, NULL);
    return 0;
}

/* Mean, p50, p99 and max of one repetition's calls, in microseconds. */
typedef struct lat {
    double mean, p50, p99, max;
} lat;

static lat
lat_of(double *ns)
{
    lat l;
    for (size_t i = 0; i < NCALLS; i++)
        ns[i] /= 1000.0;
    l.mean = bn_mean(ns, NCALLS);
    l.p99 = bn_p99(ns, NCALLS); /* sorts ns */
    l.p50 = ns[NCALLS / 2];
    l.max = ns[NCALLS - 1];
    return l;
}

enum {
    P_MORE_NEW,
    P_MORE_ONE,
    P_MORE_B2B,
    P_LESS_ONE,
    P_LESS_B2B,
    B_CREATE,
    B_WAKE_MORE,
    B_WAKE_LESS,
    B_WAKE_B2B,
    B_CREATE_JOIN,
    NL
};

static void
raw_start_all(struct bn_rawt *r)
{
    atomic_store(&bn_raw_entered, 0);
    atomic_store(&bn_raw_exited, 0);
    for (int i = 0; i < NCALLS; i++)
        raw_create(&r[i], bn_raw_idle);
    bn_wait_count(&bn_raw_entered, NCALLS, "raw threads blocked");
}

static void
raw_join_all(struct bn_rawt *r)
{
    for (int i = 0; i < NCALLS; i++)
        pthread_join(r[i].t, NULL);
}

/* One repetition; ns and nb hold the pool's and the baseline's calls. */
static void
rep(double *ns, double *nb, struct bn_rawt *r, lat *out)
{
    /* Parked threads are kept however long a phase takes, for the rows
     * that reuse them. */
    workers_config cfg = {
        .initial = 1, .stack_size = STACK, .park_timeout_ns = UINT64_MAX};
    workers_pool *p;
    bn_check(workers_pool_new_with_config(&p, &cfg, NULL, 0), "pool new");
    atomic_store(&bn_entered, 0);
    atomic_store(&bn_exited, 0);
    atomic_store(&bn_raw_entered, 0);
    atomic_store(&bn_raw_exited, 0);
    workers_job job = workers_job_func(bn_idle_job, NULL);
    bn_check(workers_pool_start(p, &job), "pool start");

    for (int i = 0; i < NCALLS; i++) {
        ns[i] = timed(call_more, p, NULL);
        nb[i] = timed(call_create, &r[i], NULL);
    }
    out[P_MORE_NEW] = lat_of(ns);
    out[B_CREATE] = lat_of(nb);
    bn_wait_count(&bn_entered, NCALLS + 1, "new workers running");
    bn_wait_count(&bn_raw_entered, NCALLS, "raw threads blocked");

    for (int i = 0; i < NCALLS; i++)
        ns[i] = timed(call_less, p, NULL);
    out[P_LESS_B2B] = lat_of(ns);
    wait_drained();

    for (int i = 0; i < NCALLS; i++) {
        ns[i] = timed(call_more, p, &bn_entered);
        nb[i] = timed(call_wake, &r[i], &bn_raw_exited);
    }
    out[P_MORE_ONE] = lat_of(ns);
    out[B_WAKE_MORE] = lat_of(nb);
    raw_join_all(r);

    raw_start_all(r);
    for (int i = 0; i < NCALLS; i++) {
        ns[i] = timed(call_less, p, &bn_exited);
        nb[i] = timed(call_wake, &r[i], &bn_raw_exited);
    }
    out[P_LESS_ONE] = lat_of(ns);
    out[B_WAKE_LESS] = lat_of(nb);
    raw_join_all(r);
    wait_drained();

    for (int i = 0; i < NCALLS; i++)
        ns[i] = timed(call_more, p, NULL);
    out[P_MORE_B2B] = lat_of(ns);
    bn_check(workers_pool_close(p, NULL), "close");
    workers_pool_free(p);

    raw_start_all(r);
    for (int i = 0; i < NCALLS; i++)
        nb[i] = timed(call_wake, &r[i], NULL);
    out[B_WAKE_B2B] = lat_of(nb);
    raw_join_all(r);
    for (int i = 0; i < NCALLS; i++)
        nb[i] = timed(call_create_join, &r[0], NULL);
    out[B_CREATE_JOIN] = lat_of(nb);
}

/* close() of NCLOSE blocked workers, in milliseconds. */
static double
pool_close_ms(void)
{
    workers_config cfg = {.initial = NCLOSE, .stack_size = STACK};
    workers_pool *p;
    bn_check(workers_pool_new_with_config(&p, &cfg, NULL, 0), "pool new");
    atomic_store(&bn_entered, 0);
    atomic_store(&bn_exited, 0);
    workers_job job = workers_job_func(bn_idle_job, NULL);
    bn_check(workers_pool_start(p, &job), "pool start");
    bn_wait_count(&bn_entered, NCLOSE, "workers blocked");
    uint64_t t0 = bn_now_ns();
    bn_check(workers_pool_close(p, NULL), "close");
    double ms = (double)(bn_now_ns() - t0) / 1e6;
    workers_pool_free(p);
    return ms;
}

/* The mean of NTICKS ticks of an autoscaler over NCLOSE blocked workers,
 * and of as many counter reads over the same workers, in microseconds. */
static void
tick_us(double *tick, double *read)
{
    workers_counter *c;
    workers_autoscale *as;
    bn_check(workers_counter_new(&c), "counter new");
    bn_check(workers_autoscale_new(&as, NULL, NULL, NULL), "autoscale new");
    workers_middleware mws[] = {workers_counter_middleware(c),
                                workers_autoscale_middleware(as)};
    workers_config cfg = {.min = NCLOSE, .max = NCLOSE, .stack_size = STACK};
    workers_pool *p;
    bn_check(workers_pool_new_with_config(&p, &cfg, mws, 2), "pool new");
    atomic_store(&bn_entered, 0);
    atomic_store(&bn_exited, 0);
    workers_job job = workers_job_func(bn_idle_job, NULL);
    bn_check(workers_pool_start(p, &job), "pool start");
    bn_wait_count(&bn_entered, NCLOSE, "workers blocked");

    uint64_t t_tick = 0, t_read = 0;
    workers_autoscale_decision d;
    for (int i = 0; i < NTICKS; i++) {
        uint64_t t0 = bn_now_ns();
        bn_check(workers_autoscale_tick(as, p, t0, &d), "tick");
        uint64_t t1 = bn_now_ns();
        workers_counter_stats st;
        workers_counter_stats_get(c, &st);
        t_tick += t1 - t0;
        t_read += bn_now_ns() - t1;
    }
    if (d.new_count != NCLOSE)
        bn_die("tick: %d workers, not %d", d.new_count, NCLOSE);
    *tick = (double)t_tick / NTICKS / 1000.0;
    *read = (double)t_read / NTICKS / 1000.0;
    bn_check(workers_pool_close(p, NULL), "close");
    workers_pool_free(p);
    workers_autoscale_free(as);
    workers_counter_free(c);
}

static int
tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        bn_die("/proc/self/task: %s", strerror(errno));
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* 2 -> NCLOSE + 2 -> 2 workers: milliseconds from the park timeout of the
 * last removed worker until the process has 2 worker threads again; *left
 * is then their count. */
static double
pool_trim_ms(int *left)
{
    workers_config cfg = {.initial = 2,
                          .stack_size = STACK,
                          .park_timeout_ns = TRIM_TIMEOUT_MS * 1000000ull};
    workers_pool *p;
    int before = tasks();
    bn_check(workers_pool_new_with_config(&p, &cfg, NULL, 0), "pool new");
    atomic_store(&bn_entered, 0);
    atomic_store(&bn_exited, 0);
    workers_job job = workers_job_func(bn_idle_job, NULL);
    bn_check(workers_pool_start(p, &job), "pool start");
    for (int i = 0; i < NCLOSE; i++)
        bn_check(workers_pool_more(p), "more");
    bn_wait_count(&bn_entered, NCLOSE + 2, "workers blocked");
    for (int i = 0; i < NCLOSE; i++)
        bn_check(workers_pool_less(p), "less");
    uint64_t t0 = bn_now_ns(), end = t0 + 120ull * 1000000000u;
    while (tasks() > before + 2) {
        if (bn_now_ns() > end)
            bn_die("trim: %d threads after 120 s", tasks() - before);
        bn_sleep_ns(100000);
    }
    double ms = (double)(bn_now_ns() - t0) / 1e6 - TRIM_TIMEOUT_MS;
    *left = tasks() - before;
    bn_check(workers_pool_close(p, NULL), "close");
    workers_pool_free(p);
    return ms;
}

static double
base_close_ms(struct bn_rawt *r)
{
    atomic_store(&bn_raw_entered, 0);
    for (int i = 0; i < NCLOSE; i++)
        raw_create(&r[i], bn_raw_idle);
    bn_wait_count(&bn_raw_entered, NCLOSE, "raw threads blocked");
    uint64_t t0 = bn_now_ns();
    for (int i = 0; i < NCLOSE; i++)
        bn_raw_wake(&r[i]);
    for (int i = 0; i < NCLOSE; i++)
        pthread_join(r[i].t, NULL);
    return (double)(bn_now_ns() - t0) / 1e6;
}

static void
row(const char *what, const char *unit, double *pool, double *base, int R,
    const char *base_what, bn_judge judge, double limit, const char *target)
{
    bn_row r = {.what = what,
                .unit = unit,
                .ratio = NAN,
                .base_what = base_what,
                .judge = judge,
                .limit = limit,
                .target = target};
    r.pool = pool ? bn_stat_of(pool, R) : (bn_stat){NAN, NAN, NAN};
    if (base)
        r.base = bn_stat_of(base, R);
    bn_print(&r);
}

/* The max row: per repetition maxima, judged on the largest of all (the
 * futex hash grows in the first repetition only). */
static void
max_row(double *pool, double *base, int R)
{
    bn_row r = {.what = "more(), new thread: max",
                .unit = "us",
                .base_what = "pthread_create",
                .judge = BN_RATIO_LE,
                .limit = 2,
                .target = "max <= 2x (issue 14)",
                .extra = "ratio of the largest calls of all repetitions"};
    r.pool = bn_stat_of(pool, R);
    r.base = bn_stat_of(base, R);
    r.ratio = r.pool.max / r.base.max;
    bn_print(&r);
}

void
bn_scale(const bn_opts *o)
{
    int R = o->reps;
    double *ns = malloc(NCALLS * sizeof *ns);
    double *nb = malloc(NCALLS * sizeof *nb);
    struct bn_rawt *raw = aligned_alloc(BN_CACHELINE, NCALLS * sizeof *raw);
    lat *l = calloc((size_t)(R * NL), sizeof *l);
    double *closep = calloc((size_t)R, sizeof *closep);
    double *closeb = calloc((size_t)R, sizeof *closeb);
    double *tickp = calloc((size_t)R, sizeof *tickp);
    double *tickb = calloc((size_t)R, sizeof *tickb);
    double *trimp = calloc((size_t)R, sizeof *trimp);
    int left = 0;
    double *a = calloc((size_t)R, sizeof *a), *b = calloc((size_t)R, sizeof *b);
    if (!ns || !nb || !raw || !l || !closep || !closeb || !tickp || !tickb ||
        !trimp || !a || !b)
        bn_die("out of memory");
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, STACK);

    for (int r = 0; r < R; r++) {
        rep(ns, nb, raw, &l[r * NL]);
        closep[r] = pool_close_ms();
        closeb[r] = base_close_ms(raw);
        tick_us(&tickp[r], &tickb[r]);
        trimp[r] = pool_trim_ms(&left);
    }

    char title[200];
    snprintf(title, sizeof title,
             "2. Scaling latency, %d calls per repetition, workers blocked "
             "in workers_ctx_wait, %d KiB stacks",
             NCALLS, STACK / 1024);
    bn_section(title);
#define FILL(dst, idx, field)                                                  \
    for (int r = 0; r < R; r++)                                                \
    (dst)[r] = l[r * NL + (idx)].field
    FILL(a, P_MORE_NEW, mean);
    FILL(b, B_CREATE, mean);
    row("more(), new thread: mean", "us", a, b, R, "pthread_create",
        BN_RATIO_LE, 1.1, "<= pthread_create+10%");
    FILL(a, P_MORE_NEW, p50);
    FILL(b, B_CREATE, p50);
    row("more(), new thread: p50", "us", a, b, R, "pthread_create", BN_NONE, 0,
        NULL);
    FILL(a, P_MORE_NEW, p99);
    FILL(b, B_CREATE, p99);
    row("more(), new thread: p99", "us", a, b, R, "pthread_create", BN_NONE, 0,
        NULL);
    FILL(a, P_MORE_NEW, max);
    FILL(b, B_CREATE, max);
    max_row(a, b, R);
    FILL(a, P_MORE_ONE, mean);
    FILL(b, B_WAKE_MORE, mean);
    row("more(), parked thread: mean", "us", a, b, R, "store+FUTEX_WAKE",
        BN_ABS_LE, 10, "<= 10 us");
    FILL(a, P_MORE_ONE, p99);
    FILL(b, B_WAKE_MORE, p99);
    row("more(), parked thread: p99", "us", a, b, R, "store+FUTEX_WAKE",
        BN_NONE, 0, NULL);
    FILL(a, P_MORE_B2B, mean);
    FILL(b, B_WAKE_B2B, mean);
    row("more(), parked, back to back", "us", a, b, R, "same, back to back",
        BN_NONE, 0, NULL);
    FILL(a, P_LESS_ONE, mean);
    FILL(b, B_WAKE_LESS, mean);
    row("less(): mean", "us", a, b, R, "store+FUTEX_WAKE", BN_ABS_LE, 2,
        "< 2 us");
    FILL(a, P_LESS_ONE, p99);
    FILL(b, B_WAKE_LESS, p99);
    row("less(): p99", "us", a, b, R, "store+FUTEX_WAKE", BN_NONE, 0, NULL);
    FILL(a, P_LESS_B2B, mean);
    FILL(b, B_WAKE_B2B, mean);
    row("less(), back to back: mean", "us", a, b, R, "same, back to back",
        BN_NONE, 0, NULL);
    FILL(b, B_CREATE_JOIN, mean);
    row("(reference)", "us", NULL, b, R, "pthread_create+join mean", BN_NONE, 0,
        NULL);
#undef FILL
    char what[64], bw[64];
    snprintf(what, sizeof what, "close(), %d blocked workers", NCLOSE);
    snprintf(bw, sizeof bw, "wake+join %d threads", NCLOSE);
    row(what, "ms", closep, closeb, R, bw, BN_ABS_LE, 5, "< 5 ms");
    char extra[128];
    snprintf(extra, sizeof extra,
             "time past the %d ms park timeout; worker threads in "
             "/proc/self/task: 2 -> %d -> %d",
             TRIM_TIMEOUT_MS, NCLOSE + 2, left);
    bn_row tr = {.what = "trim of 1,000 parked threads",
                 .unit = "ms",
                 .ratio = NAN,
                 .base_what = bw,
                 .judge = BN_NONE,
                 .extra = extra};
    tr.pool = bn_stat_of(trimp, R);
    tr.base = bn_stat_of(closeb, R);
    bn_print(&tr);
    snprintf(what, sizeof what, "autoscale tick, %d workers: mean", NCLOSE);
    snprintf(bw, sizeof bw, "counter stats read, %d", NCLOSE);
    row(what, "us", tickp, tickb, R, bw, BN_ABS_LE, 20, "<= 20 us");

    pthread_attr_destroy(&attr);
    free(ns);
    free(nb);
    free(raw);
    free(l);
    free(closep);
    free(closeb);
    free(tickp);
    free(tickb);
    free(trimp);
    free(a);
    free(b);
}
