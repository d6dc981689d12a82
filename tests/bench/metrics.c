/*
 * Section 6: the cost of workersd's statistics (cmd/workersd/stats/) and
 * of rendering them (cmd/workersd/metrics/), against issue 11's targets.
 *
 * - Throughput: a plugin-style job (job_do(ctx, state) through a function
 *   pointer, on per-worker state) doing a fixed piece of work (FNV-1a over
 *   WORK_BYTES bytes of its state, about a microsecond), 2 workers, with
 *   the stats middleware and without, alternated within each repetition.
 *   Also the same with an empty job_do, where the stats' own cost (one
 *   clock read per run, a few stores) is the whole difference: reported,
 *   not judged.
 * - A scrape and a status: 1,000 workers blocked in a run, then a snapshot
 *   plus the Prometheus text, or a snapshot plus the status JSON text, into
 *   a buffer reused from call to call as the daemon's loop does; the median
 *   per call.
 */
#include "bench.h"

#include "metrics/metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORK_BYTES 1024
#define NWORKERS 2
#define BIG 1000
#define RENDERS 200

/* The plugin's per-worker state: its own cache lines. */
struct pstate {
    _Alignas(BN_CACHELINE) _Atomic uint64_t runs;
    uint64_t hash;
    unsigned char data[WORK_BYTES];
};

static struct pstate states[NWORKERS];

typedef int (*job_do_fn)(workers_ctx *ctx, void *state);

static int
do_work(workers_ctx *ctx, void *state)
{
    struct pstate *s = state;
    uint64_t h = 14695981039346656037u;

    (void)ctx;
    for (size_t i = 0; i < WORK_BYTES; i++)
        h = (h ^ s->data[i]) * 1099511628211u;
    s->hash = h;
    atomic_store_explicit(
        &s->runs, atomic_load_explicit(&s->runs, memory_order_relaxed) + 1,
        memory_order_relaxed);
    return 0;
}

static int
do_nothing(workers_ctx *ctx, void *state)
{
    struct pstate *s = state;

    (void)ctx;
    atomic_store_explicit(
        &s->runs, atomic_load_explicit(&s->runs, memory_order_relaxed) + 1,
        memory_order_relaxed);
    return 0;
}

/* What jobs/plugin.c does per run without a Timeout: job_do through the
 * pointer dlsym gave, on the worker's state. */
struct plugin_job {
    job_do_fn job_do;
    void *state;
};

static int
plugin_run(workers_ctx *ctx, void *arg)
{
    struct plugin_job *j = arg;
    return j->job_do(ctx, j->state);
}

struct builder {
    job_do_fn fn;
    int next;
};

static int
new_plugin_job(void *arg, workers_job *out)
{
    struct builder *b = arg;
    struct plugin_job *j = malloc(sizeof *j);

    if (j == NULL)
        return -1;
    j->job_do = b->fn;
    j->state = &states[b->next++];
    *out = (workers_job){plugin_run, j, free};
    return 0;
}

static uint64_t
total_runs(void)
{
    uint64_t n = 0;
    for (int i = 0; i < NWORKERS; i++)
        n += atomic_load_explicit(&states[i].runs, memory_order_relaxed);
    return n;
}

/* Runs per CPU-second of NWORKERS workers running fn for ms, with the
 * stats or not: the process's CPU time, not the wall clock, so that time
 * other processes take from a shared machine does not count (as section
 * 1 does). */
static double
rate(job_do_fn fn, bool stats, unsigned ms)
{
    wd_config cfg = {.plugin = "bench.so"};
    workers_config pc = {.initial = NWORKERS};
    wd_stats *st = NULL;
    workers_middleware mw;
    workers_pool *p;
    struct builder b = {fn, 0};

    if (stats) {
        bn_check(wd_stats_new(&st), "wd_stats_new");
        mw = wd_stats_middleware(st, &cfg);
    }
    for (int i = 0; i < NWORKERS; i++)
        atomic_store(&states[i].runs, 0);
    bn_check(workers_pool_new_with_config(&p, &pc, &mw, stats ? 1 : 0),
             "workers_pool_new_with_config");
    workers_builder builder = workers_builder_func(new_plugin_job, &b);
    bn_check(workers_pool_start_with_builder(p, &builder), "pool start");
    /* Past the threads' start, then a window. */
    bn_sleep_ns(10000000);
    uint64_t r0 = total_runs(), t0 = bn_cpu_ns();
    bn_sleep_ns((uint64_t)ms * 1000000u);
    uint64_t r1 = total_runs(), t1 = bn_cpu_ns();
    workers_pool_free(p);
    if (stats) {
        wd_stats_snapshot snap = {0};
        bn_check(wd_stats_read(st, &snap), "wd_stats_read");
        if (snap.runs.ended[WD_OUTCOME_SUCCEEDED] != total_runs())
            bn_die("stats: %llu runs succeeded, the job counted %llu",
                   (unsigned long long)snap.runs.ended[WD_OUTCOME_SUCCEEDED],
                   (unsigned long long)total_runs());
        wd_stats_snapshot_free(&snap);
        wd_stats_free(st);
    }
    return (double)(r1 - r0) / ((double)(t1 - t0) / 1e9);
}

static void
throughput_row(const bn_opts *o, job_do_fn fn, const char *what, bool judged)
{
    int R = o->reps;
    double *with = calloc((size_t)R, sizeof *with);
    double *without = calloc((size_t)R, sizeof *without);
    double *ratio = calloc((size_t)R, sizeof *ratio);
    double *cost = calloc((size_t)R, sizeof *cost);
    char extra[160];

    if (!with || !without || !ratio || !cost)
        bn_die("out of memory");
    for (int r = 0; r < R; r++) {
        without[r] = rate(fn, false, o->window_ms) / 1e6;
        with[r] = rate(fn, true, o->window_ms) / 1e6;
        ratio[r] = with[r] / without[r];
        /* The CPU time a run takes more. */
        cost[r] = 1e3 / with[r] - 1e3 / without[r];
    }
    bn_stat c = bn_stat_of(cost, R);
    snprintf(extra, sizeof extra,
             "the stats cost %.1f ns of CPU per run [%.1f..%.1f]", c.med, c.min,
             c.max);
    bn_row row = {.what = what,
                  .unit = "M runs/CPU-s",
                  .pool = bn_stat_of(with, R),
                  .base_what = "no stats middleware",
                  .base = bn_stat_of(without, R),
                  .ratio = bn_stat_of(ratio, R).med,
                  .extra = extra};
    if (judged) {
        row.judge = BN_RATIO_GE;
        row.limit = 0.95;
        row.target = ">= 0.95x (issue 11)";
    }
    bn_print(&row);
    free(with);
    free(without);
    free(ratio);
    free(cost);
}

static void
facts_of(void *arg, wd_facts *out)
{
    (void)arg;
    *out = (wd_facts){.pid = 1,
                      .version = WORKERS_VERSION_STRING,
                      .config = "/etc/workersd/pool.ini",
                      .workers = BIG,
                      .min = 1,
                      .max = 2 * BIG};
}

/* Median ms per call of one scrape (json false) or one status (true). */
static bn_stat
render_ms(const bn_opts *o, wd_stats *st, bool json)
{
    double *v = calloc((size_t)o->reps, sizeof *v);
    wd_stats_snapshot snap = {0};
    wd_buf text = {0};
    wd_facts f;

    if (v == NULL)
        bn_die("out of memory");
    facts_of(NULL, &f);
    for (int r = 0; r < o->reps; r++) {
        uint64_t t0 = bn_now_ns();
        for (int i = 0; i < RENDERS; i++) {
            bn_check(wd_stats_read(st, &snap), "wd_stats_read");
            if (snap.nworkers != BIG)
                bn_die("snapshot: %zu workers, not %d", snap.nworkers, BIG);
            wd_buf_reset(&text);
            bn_check(json ? wd_status_json(&snap, &f, &text)
                          : wd_prom_render(&snap, &f, &text),
                     json ? "wd_status_json" : "wd_prom_render");
        }
        v[r] = (double)(bn_now_ns() - t0) / 1e6 / RENDERS;
    }
    bn_stat s = bn_stat_of(v, o->reps);
    wd_buf_free(&text);
    wd_stats_snapshot_free(&snap);
    free(v);
    return s;
}

static void
render_rows(const bn_opts *o)
{
    wd_config cfg = {0};
    workers_config pc = {.initial = BIG, .stack_size = 64 * 1024};
    wd_stats *st;
    workers_pool *p;

    bn_check(wd_stats_new(&st), "wd_stats_new");
    workers_middleware mw = wd_stats_middleware(st, &cfg);
    bn_check(workers_pool_new_with_config(&p, &pc, &mw, 1),
             "workers_pool_new_with_config");
    int base = atomic_load(&bn_entered);
    workers_job job = workers_job_func(bn_idle_job, NULL);
    bn_check(workers_pool_start(p, &job), "pool start");
    bn_wait_count(&bn_entered, base + BIG, "1,000 workers in a run");

    bn_row scrape = {.what = "scrape: snapshot + text, 1,000 w.",
                     .unit = "ms",
                     .pool = render_ms(o, st, false),
                     .ratio = NAN,
                     .judge = BN_ABS_LE,
                     .limit = 2.0,
                     .target = "<= 2 ms (issue 11)"};
    bn_print(&scrape);
    bn_row status = {.what = "status: snapshot + JSON, 1,000 w.",
                     .unit = "ms",
                     .pool = render_ms(o, st, true),
                     .ratio = NAN,
                     .judge = BN_ABS_LE,
                     .limit = 2.0,
                     .target = "<= 2 ms (issue 11)"};
    bn_print(&status);
    workers_pool_free(p);
    wd_stats_free(st);
}

void
bn_metrics(const bn_opts *o)
{
    char title[200];

    for (int i = 0; i < NWORKERS; i++)
        for (size_t j = 0; j < WORK_BYTES; j++)
            states[i].data[j] = (unsigned char)(i + j);
    snprintf(title, sizeof title,
             "6. workersd statistics: a plugin-style job with the stats "
             "middleware vs without (%d workers, %u ms windows); a scrape and "
             "a status of 1,000 workers",
             NWORKERS, o->window_ms);
    bn_section(title);
    throughput_row(o, do_work, "plugin job (1 KiB FNV-1a), stats", true);
    throughput_row(o, do_nothing, "empty plugin job, stats", false);
    render_rows(o);
}
