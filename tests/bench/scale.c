/*
 * Section 2: the latency of more(), less() and close(), each call timed on
 * its own (mean and p99 over N calls per repetition; the table shows the
 * median of the repetitions' means and p99s).
 *
 * The workers' job blocks in workers_ctx_wait() until its worker is
 * cancelled, like an idle worker. In one repetition: N more() calls that
 * must create threads; N less() calls; once every removed worker's run has
 * returned (and its thread had time to park), N more() calls that can reuse
 * the parked threads. Baselines: pthread_create of a thread (same stack
 * size) that blocks on its own futex word; waking one such thread (an atomic
 * store plus FUTEX_WAKE: what cancelling a worker's context costs at the
 * least); pthread_create + pthread_join; close() of 1,000 blocked workers
 * beside waking and joining 1,000 such threads.
 */
#include "bench.h"

#include <linux/futex.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NCALLS 10000
#define NCLOSE 1000
#define STACK (64 * 1024)

_Atomic int bn_entered, bn_exited;

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
    atomic_fetch_add(&bn_entered, 1);
    while (atomic_load(&r->word) == 0)
        syscall(SYS_futex, &r->word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
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

/* Mean and p99 of one repetition's calls, in microseconds. */
typedef struct lat {
    double mean, p99;
} lat;

static lat
lat_of(double *ns, size_t n)
{
    lat l;
    for (size_t i = 0; i < n; i++)
        ns[i] /= 1000.0;
    l.mean = bn_mean(ns, n);
    l.p99 = bn_p99(ns, n);
    return l;
}

enum { P_MORE_NEW, P_MORE_REUSE, P_LESS, B_CREATE, B_WAKE, B_CREATE_JOIN,
       NL };

static void
pool_rep(double *ns, lat *out)
{
    workers_config cfg = {.initial = 1, .stack_size = STACK};
    workers_pool *p;
    bn_check(workers_pool_new_with_config(&p, &cfg, NULL, 0), "pool new");
    atomic_store(&bn_entered, 0);
    atomic_store(&bn_exited, 0);
    workers_job job = workers_job_func(bn_idle_job, NULL);
    bn_check(workers_pool_start(p, &job), "pool start");

    for (int i = 0; i < NCALLS; i++) {
        uint64_t t0 = bn_now_ns();
        bn_check(workers_pool_more(p), "more");
        ns[i] = (double)(bn_now_ns() - t0);
    }
    out[P_MORE_NEW] = lat_of(ns, NCALLS);
    for (int i = 0; i < NCALLS; i++) {
        uint64_t t0 = bn_now_ns();
        bn_check(workers_pool_less(p), "less");
        ns[i] = (double)(bn_now_ns() - t0);
    }
    out[P_LESS] = lat_of(ns, NCALLS);
    bn_wait_count(&bn_exited, NCALLS, "removed workers' runs returned");
    for (int i = 0; i < NCALLS; i++) {
        uint64_t t0 = bn_now_ns();
        bn_check(workers_pool_more(p), "more");
        ns[i] = (double)(bn_now_ns() - t0);
    }
    out[P_MORE_REUSE] = lat_of(ns, NCALLS);
    bn_check(workers_pool_close(p, NULL), "close");
    workers_pool_free(p);
}

static void
base_rep(double *ns, struct bn_rawt *r, lat *out)
{
    atomic_store(&bn_entered, 0);
    for (int i = 0; i < NCALLS; i++) {
        uint64_t t0 = bn_now_ns();
        raw_create(&r[i], bn_raw_idle);
        ns[i] = (double)(bn_now_ns() - t0);
    }
    out[B_CREATE] = lat_of(ns, NCALLS);
    bn_wait_count(&bn_entered, NCALLS, "raw threads started");
    for (int i = 0; i < NCALLS; i++) {
        uint64_t t0 = bn_now_ns();
        bn_raw_wake(&r[i]);
        ns[i] = (double)(bn_now_ns() - t0);
    }
    out[B_WAKE] = lat_of(ns, NCALLS);
    for (int i = 0; i < NCALLS; i++)
        pthread_join(r[i].t, NULL);
    for (int i = 0; i < NCALLS; i++) {
        uint64_t t0 = bn_now_ns();
        raw_create(&r[0], raw_nothing);
        pthread_join(r[0].t, NULL);
        ns[i] = (double)(bn_now_ns() - t0);
    }
    out[B_CREATE_JOIN] = lat_of(ns, NCALLS);
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

static double
base_close_ms(struct bn_rawt *r)
{
    atomic_store(&bn_entered, 0);
    for (int i = 0; i < NCLOSE; i++)
        raw_create(&r[i], bn_raw_idle);
    bn_wait_count(&bn_entered, NCLOSE, "raw threads blocked");
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
    bn_row r = {.what = what, .unit = unit, .ratio = NAN,
                .base_what = base_what, .judge = judge, .limit = limit,
                .target = target};
    r.pool = pool ? bn_stat_of(pool, R) : (bn_stat){NAN, NAN, NAN};
    if (base)
        r.base = bn_stat_of(base, R);
    bn_print(&r);
}

void
bn_scale(const bn_opts *o)
{
    int R = o->reps;
    double *ns = malloc(NCALLS * sizeof *ns);
    struct bn_rawt *raw = aligned_alloc(BN_CACHELINE, NCALLS * sizeof *raw);
    lat *l = calloc((size_t)(R * NL), sizeof *l);
    double *closep = calloc((size_t)R, sizeof *closep);
    double *closeb = calloc((size_t)R, sizeof *closeb);
    double *a = calloc((size_t)R, sizeof *a), *b = calloc((size_t)R,
                                                          sizeof *b);
    if (!ns || !raw || !l || !closep || !closeb || !a || !b)
        bn_die("out of memory");
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, STACK);

    for (int r = 0; r < R; r++) {
        pool_rep(ns, &l[r * NL]);
        base_rep(ns, raw, &l[r * NL]);
        closep[r] = pool_close_ms();
        closeb[r] = base_close_ms(raw);
    }

    char title[200];
    snprintf(title, sizeof title,
             "2. Scaling latency, %d calls per repetition, workers blocked "
             "in workers_ctx_wait, %d KiB stacks",
             NCALLS, STACK / 1024);
    bn_section(title);
#define FILL(dst, idx, field)                                                \
    for (int r = 0; r < R; r++)                                              \
    (dst)[r] = l[r * NL + (idx)].field
    FILL(a, P_MORE_NEW, mean);
    FILL(b, B_CREATE, mean);
    row("more(), new thread: mean", "us", a, b, R, "pthread_create",
        BN_RATIO_LE, 1.1, "<= pthread_create+10%");
    FILL(a, P_MORE_NEW, p99);
    FILL(b, B_CREATE, p99);
    row("more(), new thread: p99", "us", a, b, R, "pthread_create",
        BN_NONE, 0, NULL);
    FILL(a, P_MORE_REUSE, mean);
    FILL(b, B_WAKE, mean);
    row("more(), parked thread: mean", "us", a, b, R, "store+FUTEX_WAKE",
        BN_ABS_LE, 10, "<= 10 us");
    FILL(a, P_MORE_REUSE, p99);
    FILL(b, B_WAKE, p99);
    row("more(), parked thread: p99", "us", a, b, R, "store+FUTEX_WAKE",
        BN_NONE, 0, NULL);
    FILL(a, P_LESS, mean);
    FILL(b, B_WAKE, mean);
    row("less(): mean", "us", a, b, R, "store+FUTEX_WAKE", BN_ABS_LE, 2,
        "< 2 us");
    FILL(a, P_LESS, p99);
    FILL(b, B_WAKE, p99);
    row("less(): p99", "us", a, b, R, "store+FUTEX_WAKE", BN_NONE, 0, NULL);
    FILL(b, B_CREATE_JOIN, mean);
    row("(reference)", "us", NULL, b, R, "pthread_create+join mean",
        BN_NONE, 0, NULL);
#undef FILL
    char what[64], bw[64];
    snprintf(what, sizeof what, "close(), %d blocked workers", NCLOSE);
    snprintf(bw, sizeof bw, "wake+join %d threads", NCLOSE);
    row(what, "ms", closep, closeb, R, bw, BN_ABS_LE, 5, "< 5 ms");

    pthread_attr_destroy(&attr);
    free(ns);
    free(raw);
    free(l);
    free(closep);
    free(closeb);
    free(a);
    free(b);
}
