/*
 * Section 1: empty-job throughput. The job counts its runs into its own
 * cache line (the builder hands each worker one slot), so counting adds no
 * sharing. The baseline ("the limit") is a raw thread looping over the same
 * job through an indirect call, checking its own atomic stop flag before
 * each call: what the pool's worker loop does, minus the pool.
 *
 * The elapsed and autoscale middlewares read the clock once per run by
 * design, so their rows compare with the same raw loop plus one clock read
 * per run; the autoscale middleware's target is the counter's cost plus
 * that clock read, taken within each repetition.
 *
 * Each window: start, snapshot runs + wall + process CPU time, sleep,
 * snapshot again, stop. ns/run/CPU = process CPU time / runs, so that CPU
 * stolen by other processes on a shared machine does not count; runs/s is
 * wall-clock. For every repetition the raw loops and the pool variants
 * run back to back and the ratio is taken within the repetition.
 */
#include "bench.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXT 16

/* One per worker or raw thread, each in its own cache line. */
struct slot {
    _Alignas(BN_CACHELINE) _Atomic uint64_t runs;
    _Atomic uint32_t stop; /* raw threads only */
};

static struct slot slots[MAXT];

/* The job. A relaxed load + store (no read-modify-write): only this
 * worker writes its slot; the main thread reads it while it runs. */
static int
count_job(workers_ctx *ctx, void *arg)
{
    struct slot *s = arg;
    (void)ctx;
    atomic_store_explicit(
        &s->runs, atomic_load_explicit(&s->runs, memory_order_relaxed) + 1,
        memory_order_relaxed);
    return 0;
}

static void *
raw_main(void *arg)
{
    struct slot *s = arg;
    workers_job_fn fn = count_job;
    /* Hide the target from the compiler: the call stays indirect. */
    __asm__ volatile("" : "+r"(fn));
    while (!atomic_load_explicit(&s->stop, memory_order_acquire))
        fn(NULL, s);
    return NULL;
}

/* The limit for a middleware that times runs: the same loop plus one
 * CLOCK_MONOTONIC read per run. */
static void *
raw_clock_main(void *arg)
{
    struct slot *s = arg;
    workers_job_fn fn = count_job;
    __asm__ volatile("" : "+r"(fn));
    while (!atomic_load_explicit(&s->stop, memory_order_acquire)) {
        fn(NULL, s);
        bn_now_ns();
    }
    return NULL;
}

struct builder_state {
    int next;
};

static int
slot_job(void *arg, workers_job *out)
{
    struct builder_state *b = arg;
    if (b->next >= MAXT)
        return -1;
    *out = workers_job_func(count_job, &slots[b->next++]);
    return 0;
}

static uint64_t
sum_runs(int n)
{
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += atomic_load_explicit(&slots[i].runs, memory_order_relaxed);
    return sum;
}

typedef struct sample {
    double runs_per_s;
    double ns_per_run_cpu;
} sample;

/* Samples a window while n slots count; they run already. */
static sample
window(int n, unsigned ms)
{
    uint64_t r0 = sum_runs(n), t0 = bn_now_ns(), c0 = bn_cpu_ns();
    bn_sleep_ns((uint64_t)ms * 1000000u);
    uint64_t r1 = sum_runs(n), t1 = bn_now_ns(), c1 = bn_cpu_ns();
    double runs = (double)(r1 - r0);
    sample s = {runs / ((double)(t1 - t0) / 1e9),
                runs > 0 ? (double)(c1 - c0) / runs : NAN};
    return s;
}

static void
reset_slots(void)
{
    for (int i = 0; i < MAXT; i++) {
        atomic_store(&slots[i].runs, 0);
        atomic_store(&slots[i].stop, 0);
    }
}

static sample
run_raw(void *(*main_fn)(void *), int n, unsigned ms)
{
    pthread_t t[MAXT];
    reset_slots();
    for (int i = 0; i < n; i++) {
        int err = pthread_create(&t[i], NULL, main_fn, &slots[i]);
        if (err)
            bn_die("pthread_create: %s", strerror(err));
    }
    sample s = window(n, ms);
    for (int i = 0; i < n; i++)
        atomic_store_explicit(&slots[i].stop, 1, memory_order_release);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    return s;
}

enum {
    V_RAW,
    V_RAW_CLOCK,
    V_BARE,
    V_COUNTER,
    V_ELAPSED,
    V_BOTH,
    V_AUTOSCALE,
    NV
};
static const char *const vname[NV] = {
    "raw loop", "raw loop + clock", "bare",     "counter",
    "elapsed",  "counter+elapsed",  "autoscale"};

static sample
run_pool(int variant, int n, unsigned ms)
{
    workers_counter *c = NULL;
    workers_elapsed *e = NULL;
    workers_autoscale *as = NULL;
    workers_middleware mws[2];
    size_t nmws = 0;
    if (variant == V_COUNTER || variant == V_BOTH) {
        bn_check(workers_counter_new(&c), "workers_counter_new");
        mws[nmws++] = workers_counter_middleware(c);
    }
    if (variant == V_ELAPSED || variant == V_BOTH) {
        bn_check(workers_elapsed_new(&e, NULL, NULL), "workers_elapsed_new");
        mws[nmws++] = workers_elapsed_middleware(e);
    }
    if (variant == V_AUTOSCALE) {
        bn_check(workers_autoscale_new(&as, NULL, NULL, NULL),
                 "workers_autoscale_new");
        mws[nmws++] = workers_autoscale_middleware(as);
    }
    workers_config cfg = {.initial = n};
    workers_pool *p;
    bn_check(workers_pool_new_with_config(&p, &cfg, mws, nmws),
             "workers_pool_new_with_config");
    struct builder_state b = {0};
    reset_slots();
    workers_builder builder = workers_builder_func(slot_job, &b);
    bn_check(workers_pool_start_with_builder(p, &builder), "pool start");
    sample s = window(n, ms);
    bn_check(workers_pool_close(p, NULL), "workers_pool_close");
    workers_pool_free(p);

    /* The middlewares must have seen exactly the runs the job counted. */
    uint64_t runs = sum_runs(n);
    if (c) {
        workers_counter_stats st;
        workers_counter_stats_get(c, &st);
        if (st.finished != runs || st.started != runs || st.failed != 0)
            bn_die("counter: started %llu finished %llu failed %llu, job "
                   "counted %llu",
                   (unsigned long long)st.started,
                   (unsigned long long)st.finished,
                   (unsigned long long)st.failed, (unsigned long long)runs);
    }
    if (e) {
        workers_elapsed_stats st;
        workers_elapsed_stats_get(e, &st);
        if (st.counts.finished != runs)
            bn_die("elapsed: finished %llu, job counted %llu",
                   (unsigned long long)st.counts.finished,
                   (unsigned long long)runs);
    }
    workers_counter_free(c);
    workers_elapsed_free(e);
    workers_autoscale_free(as);
    return s;
}

/* Clock reads per run of the elapsed middleware: an injected clock that
 * counts its calls, one worker, then calls / runs. */
static _Atomic uint64_t clock_calls;

static uint64_t
counting_clock(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&clock_calls, 1, memory_order_relaxed);
    return bn_now_ns();
}

static double
elapsed_clock_reads(unsigned ms)
{
    workers_elapsed *e;
    bn_check(workers_elapsed_new(&e, counting_clock, NULL),
             "workers_elapsed_new");
    workers_middleware mw = workers_elapsed_middleware(e);
    workers_pool *p;
    bn_check(workers_pool_new(&p, &mw, 1), "workers_pool_new");
    struct builder_state b = {0};
    reset_slots();
    atomic_store(&clock_calls, 0);
    workers_builder builder = workers_builder_func(slot_job, &b);
    bn_check(workers_pool_start_with_builder(p, &builder), "pool start");
    bn_sleep_ns((uint64_t)ms * 1000000u);
    bn_check(workers_pool_close(p, NULL), "workers_pool_close");
    workers_pool_free(p);
    uint64_t runs = sum_runs(1);
    workers_elapsed_free(e);
    return runs ? (double)atomic_load(&clock_calls) / (double)runs : NAN;
}

static const int threads[] = {1, 2, 4, 16}; /* [1] is 2: see bn_throughput */
#define NTH ((int)(sizeof threads / sizeof threads[0]))

void
bn_throughput(const bn_opts *o)
{
    int R = o->reps;
    /* [threads][variant][rep] */
    sample *s = calloc((size_t)(NTH * NV * R), sizeof *s);
    double *v = calloc((size_t)R, sizeof *v), *w = calloc((size_t)R, sizeof *w);
    double *q = calloc((size_t)R, sizeof *q);
    if (!s || !v || !w || !q)
        bn_die("out of memory");
#define S(t, var, r) s[((t)*NV + (var)) * R + (r)]

    for (int r = 0; r < R; r++)
        for (int t = 0; t < NTH; t++)
            for (int var = 0; var < NV; var++)
                S(t, var, r) =
                    var == V_RAW ? run_raw(raw_main, threads[t], o->window_ms)
                    : var == V_RAW_CLOCK
                        ? run_raw(raw_clock_main, threads[t], o->window_ms)
                        : run_pool(var, threads[t], o->window_ms);

    char title[200];
    snprintf(title, sizeof title,
             "1. Empty job (counts its runs in its own cache line), %u ms "
             "windows: pool vs raw loop (atomic flag load + indirect call) "
             "on as many threads",
             o->window_ms);
    bn_section(title);
    for (int t = 0; t < NTH; t++) {
        int n = threads[t];
        for (int var = V_BARE; var < NV; var++) {
            /* Timing middlewares against the loop that reads the clock. */
            int bv = var >= V_ELAPSED ? V_RAW_CLOCK : V_RAW;
            char what[64], bw[64], extra[256], a[96], b2[96];
            snprintf(what, sizeof what, "%d worker%s, %s", n, n > 1 ? "s" : "",
                     vname[var]);
            snprintf(bw, sizeof bw, "%s, %d thread%s", vname[bv], n,
                     n > 1 ? "s" : "");
            for (int r = 0; r < R; r++)
                v[r] = S(t, bv, r).ns_per_run_cpu;
            bn_stat base = bn_stat_of(v, R);
            for (int r = 0; r < R; r++)
                v[r] = S(t, bv, r).runs_per_s / 1e6;
            bn_stat base_rate = bn_stat_of(v, R);
            for (int r = 0; r < R; r++)
                v[r] = S(t, var, r).runs_per_s / 1e6;
            bn_stat rate = bn_stat_of(v, R);
            for (int r = 0; r < R; r++) {
                v[r] = S(t, var, r).ns_per_run_cpu;
                w[r] = S(t, var, r).ns_per_run_cpu / S(t, bv, r).ns_per_run_cpu;
            }
            bn_stat pool = bn_stat_of(v, R);
            bn_stat ratio = bn_stat_of(w, R);
            snprintf(a, sizeof a, "%.1f [%.1f..%.1f]", rate.med, rate.min,
                     rate.max);
            snprintf(b2, sizeof b2, "%.1f [%.1f..%.1f]", base_rate.med,
                     base_rate.min, base_rate.max);
            snprintf(extra, sizeof extra,
                     "M runs/s (wall): pool %s, baseline %s", a, b2);
            bn_row row = {.what = what,
                          .unit = "ns/run/CPU",
                          .pool = pool,
                          .base_what = bw,
                          .base = base,
                          .ratio = ratio.med,
                          .extra = extra};
            if (var == V_BARE && n <= 2) {
                row.judge = BN_RATIO_LE;
                row.limit = 1.5;
                row.target = "<= 1.5x raw";
            } else if (var == V_COUNTER && n == 2) {
                row.judge = BN_RATIO_LE;
                row.limit = 2.0;
                row.target = "<= 2x raw";
            }
            bn_print(&row);
        }
    }

    /* Against the Go package: 9 ns/run/CPU, and we want 5x faster. */
    for (int r = 0; r < R; r++)
        v[r] = S(0, V_BARE, r).ns_per_run_cpu;
    bn_stat go = {9, 9, 9};
    bn_row gorow = {.what = "1 worker, bare, vs Go package",
                    .unit = "ns/run/CPU",
                    .pool = bn_stat_of(v, R),
                    .base_what = "Go (issue 5 figure)",
                    .base = go,
                    .ratio = NAN,
                    .judge = BN_RATIO_LE,
                    .limit = 0.2,
                    .target = ">= 5x faster than Go"};
    bn_print(&gorow);

    /* The autoscale middleware against the counter plus one clock read:
     * counter + (raw loop + clock - raw loop), within each repetition. */
    const int two = 1; /* threads[two] == 2 */
    for (int r = 0; r < R; r++) {
        double clock = S(two, V_RAW_CLOCK, r).ns_per_run_cpu -
                       S(two, V_RAW, r).ns_per_run_cpu;
        v[r] = S(two, V_AUTOSCALE, r).ns_per_run_cpu;
        w[r] = S(two, V_COUNTER, r).ns_per_run_cpu + clock;
        q[r] = v[r] / w[r];
    }
    bn_row as_row = {.what = "2 workers, autoscale vs counter",
                     .unit = "ns/run/CPU",
                     .pool = bn_stat_of(v, R),
                     .base_what = "counter + 1 clock read",
                     .base = bn_stat_of(w, R),
                     .ratio = bn_stat_of(q, R).med,
                     .judge = BN_RATIO_LE,
                     .limit = 1.1,
                     .target = "<= counter + clock (+10%)"};
    bn_print(&as_row);

    /* Scaling: the overhead ratio at 2 workers over the one at 1 worker.
     * A cache line shared by the workers and written per run would make
     * it several times larger; the raw loop's own scaling cancels out. */
    for (int var = V_COUNTER; var <= V_AUTOSCALE; var++) {
        if (var == V_BOTH)
            continue;
        char what[64];
        snprintf(what, sizeof what, "%s: scaling 1 -> 2 workers", vname[var]);
        int bv = var >= V_ELAPSED ? V_RAW_CLOCK : V_RAW;
        for (int r = 0; r < R; r++) {
            double x1 =
                S(0, var, r).ns_per_run_cpu / S(0, bv, r).ns_per_run_cpu;
            double x2 =
                S(1, var, r).ns_per_run_cpu / S(1, bv, r).ns_per_run_cpu;
            v[r] = x2 / x1;
        }
        bn_row row = {.what = what,
                      .unit = "x / x",
                      .pool = bn_stat_of(v, R),
                      .base_what = "(ratio at 2 / ratio at 1)",
                      .base = {1, 1, 1},
                      .ratio = NAN,
                      .judge = BN_RATIO_LE,
                      .limit = 1.5,
                      .target = "<= 1.5 (no shared write)"};
        bn_print(&row);
    }

    for (int r = 0; r < R; r++)
        v[r] = elapsed_clock_reads(o->window_ms / 2);
    bn_stat reads = bn_stat_of(v, R);
    char exact[96];
    snprintf(exact, sizeof exact, "exactly: %.6f [%.6f..%.6f]", reads.med,
             reads.min, reads.max);
    bn_row clk = {.what = "elapsed: clock reads per run",
                  .unit = "reads",
                  .pool = reads,
                  .ratio = NAN,
                  .judge = BN_ABS_LE,
                  .limit = 1.001,
                  .target = "<= 1 per run",
                  .extra = exact};
    bn_print(&clk);
#undef S
    free(s);
    free(v);
    free(w);
    free(q);
}
