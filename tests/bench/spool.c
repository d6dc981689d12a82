/*
 * Section 8: the spool benchmark of issue 12. A producer thread puts items
 * into an in-memory queue at 50, then 400, then 50 items a second (STEP_S
 * seconds each); each run takes one item and works 20 ms on it (a
 * workers_ctx_wait), or returns WORKERS_EIDLE when the queue is empty. The
 * same load runs through an autoscaled pool (Min 1, Max 16, target 0.8,
 * window 200 ms, cooldown 200 ms, ticked every quarter window by this
 * thread) and through a fixed pool sized for the peak (400 x 20 ms / 0.8 =
 * 10 workers). The window is scaled to the 6 s steps: still 10 items at
 * one worker, so utilisation is measured, not sampled, yet short enough
 * that the climb from 2 to 16 workers (by 1 / target per saturated quarter
 * window, the most the overshoot rule allows) takes 0.4 s, not 2 s; the
 * cooldown equal to it lets the pool come down within a step, not over
 * 30 s. With window 1 s and cooldown 2 s the same load cost 166
 * worker-seconds (0.91x the fixed pool's) and a p99 wait of 746 ms.
 * Both rest IDLE_WAIT_MS after an idle run. Reported: the worker-seconds
 * each used (the integral of the worker count) and the 99th percentile of
 * the items' wait (enqueue to dequeue). One run of each (36 s in all): the
 * load's own timing is the figure, not a repeated micro-measurement.
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MS 1000000ull
#define SEC (1000 * MS)
#define STEP_S 6
#define ITEM_NS (20 * MS)
#define IDLE_WAIT_MS 2
#define FIXED 10
#define WINDOW_NS (200 * MS)
#define CAP 8192 /* > every item of a run: 50 x 6 + 400 x 6 + 50 x 6 */

struct spool {
    pthread_mutex_t mu;
    uint64_t enq[CAP]; /* enqueue times; head..tail are waiting */
    size_t head, tail;
    double waits[CAP]; /* ms, one per item taken */
    size_t nwaits;
    uint64_t t0;
};

static int
take_one(workers_ctx *ctx, void *arg)
{
    struct spool *s = arg;
    pthread_mutex_lock(&s->mu);
    if (s->head == s->tail) {
        pthread_mutex_unlock(&s->mu);
        return WORKERS_EIDLE;
    }
    uint64_t at = s->enq[s->head++];
    s->waits[s->nwaits++] = (double)(bn_now_ns() - at) / 1e6;
    pthread_mutex_unlock(&s->mu);
    return workers_ctx_wait(ctx, ITEM_NS);
}

/* The producer: each item at its own instant from t0, so a late wake-up
 * puts the items it missed at once (the queue sees the rate asked for). */
static void *
produce(void *arg)
{
    struct spool *s = arg;
    static const unsigned rate[3] = {50, 400, 50};
    uint64_t start = s->t0;
    for (int step = 0; step < 3; step++) {
        uint64_t n = (uint64_t)rate[step] * STEP_S;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t at = start + i * SEC / rate[step], now = bn_now_ns();
            if (at > now)
                bn_sleep_ns(at - now);
            pthread_mutex_lock(&s->mu);
            s->enq[s->tail++] = at;
            pthread_mutex_unlock(&s->mu);
        }
        start += (uint64_t)STEP_S * SEC;
    }
    return NULL;
}

struct outcome {
    double worker_s, p99_ms;
    int peak;
};

/* One run of the load; as NULL: the fixed pool. */
static struct outcome
run_load(workers_autoscale *as)
{
    struct spool *s = calloc(1, sizeof *s);
    if (s == NULL)
        bn_die("out of memory");
    pthread_mutex_init(&s->mu, NULL);
    workers_config cfg = {.min = 1,
                          .max = as != NULL ? 16 : FIXED,
                          .initial = as != NULL ? 1 : FIXED,
                          .idle_wait_ns = IDLE_WAIT_MS * MS};
    workers_middleware mw[1];
    size_t nmw = 0;
    if (as != NULL)
        mw[nmw++] = workers_autoscale_middleware(as);
    workers_pool *p;
    bn_check(workers_pool_new_with_config(&p, &cfg, mw, nmw), "pool new");
    workers_job job = workers_job_func(take_one, s);
    s->t0 = bn_now_ns() + 50 * MS;
    bn_check(workers_pool_start(p, &job), "pool start");
    pthread_t prod;
    if (pthread_create(&prod, NULL, produce, s) != 0)
        bn_die("pthread_create");

    /* Until the load is over and the queue drained; a tick and a sample
     * of the worker count every quarter window. */
    uint64_t end = s->t0 + 3ull * STEP_S * SEC, last = bn_now_ns();
    struct outcome o = {0, 0, 0};
    for (;;) {
        bn_sleep_ns(WINDOW_NS / 4);
        uint64_t now = bn_now_ns();
        int n = workers_pool_current(p);
        o.worker_s += n * (double)(now - last) / 1e9;
        o.peak = n > o.peak ? n : o.peak;
        last = now;
        if (as != NULL)
            workers_autoscale_tick(as, p, now, NULL);
        pthread_mutex_lock(&s->mu);
        bool done = now >= end && s->head == s->tail;
        pthread_mutex_unlock(&s->mu);
        if (done)
            break;
    }
    pthread_join(prod, NULL);
    bn_check(workers_pool_close(p, NULL), "pool close");
    workers_pool_free(p);
    o.p99_ms = bn_p99(s->waits, s->nwaits);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return o;
}

void
bn_spool(const bn_opts *o)
{
    (void)o;
    bn_section("8. spool: 50 -> 400 -> 50 items/s, 20 ms items, autoscaled "
               "(Min 1, Max 16) vs a fixed pool of 10");
    workers_autoscale_policy pol = {0.8, WINDOW_NS, WINDOW_NS};
    workers_autoscale *as;
    bn_check(workers_autoscale_new(&as, &pol, NULL, NULL), "autoscale new");
    struct outcome a = run_load(as);
    workers_autoscale_free(as);
    struct outcome f = run_load(NULL);

    char extra[96];
    snprintf(extra, sizeof extra, "one run each; autoscaled peak %d workers",
             a.peak);
    bn_row ws = {.what = "spool: worker-seconds used",
                 .unit = "s",
                 .pool = {a.worker_s, a.worker_s, a.worker_s},
                 .base_what = "fixed pool of 10",
                 .base = {f.worker_s, f.worker_s, f.worker_s},
                 .ratio = NAN,
                 .judge = BN_RATIO_LE,
                 .limit = 0.75,
                 .target = "well under the fixed pool's",
                 .extra = extra};
    bn_print(&ws);
    bn_row wait = {.what = "spool: p99 item wait",
                   .unit = "ms",
                   .pool = {a.p99_ms, a.p99_ms, a.p99_ms},
                   .base_what = "fixed pool of 10",
                   .base = {f.p99_ms, f.p99_ms, f.p99_ms},
                   .ratio = NAN,
                   .judge = BN_RATIO_LE,
                   .limit = 1.10,
                   .target = "<= 1.10x the fixed pool's"};
    bn_print(&wait);
}
