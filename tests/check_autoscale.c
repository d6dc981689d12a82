/*
 * Tests of the autoscaler and of the idle outcome (WORKERS_EIDLE).
 *
 * - policy: the decision (autoscale/policy.c) driven without threads by a
 *   load model: demand D worker-equivalents keeps min(D, N) of N workers
 *   busy, integrated between ticks on an injected clock. Steps, a sine,
 *   bursts and noise; asserts convergence (3 windows), overshoot (one
 *   worker above the steady size), no oscillation, bounds, shrink rate.
 * - stream: the middleware's accounting on an injected clock, each worker
 *   on a timeline of its own, runs made by hand on the test thread: busy,
 *   idle and failed time, runs in progress, and all-failing and all-idle
 *   streams fed through the real sample and decision.
 * - pool: a real pool and real ticks at explicit fake times, with a job
 *   held on a gate (busy) or finding nothing (idle); EIDLE against
 *   stop_on_errors, retry and the idle wait.
 */
#include "internal.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC 1000000000ull
#define MS 1000000ull
#define W (10 * SEC)  /* the default window */
#define CD (30 * SEC) /* the default cooldown */

/* ---- policy: the load model -------------------------------------------- */

/* Demand in worker-equivalents at time t. */
typedef double (*demand_fn)(uint64_t t, const void *arg);

#define MAX_CHANGES 512

struct change {
    uint64_t at;
    int from, to;
};

struct sim {
    workers_autoscale_policy p;
    int min, max;
    struct workers__as_state st;
    struct workers__as_sample smp; /* cumulative */
    int n;
    uint64_t now;
    uint64_t tick; /* between two ticks */
    struct change changes[MAX_CHANGES];
    int nchanges;
    workers_autoscale_decision last;
    int reasons[WORKERS_AUTOSCALE_PAUSED + 1]; /* ticks per reason */
};

static void
sim_init(struct sim *s, const workers_autoscale_policy *p, int min, int max,
         int n)
{
    memset(s, 0, sizeof(*s));
    ck_assert_int_eq(workers__autoscale_policy(p, &s->p), 0);
    s->min = min;
    s->max = max;
    s->n = n;
    s->now = SEC; /* not 0: a clock need not start there */
    s->tick = s->p.window_ns / 4;
}

/* Runs the model until `until`, ticking every s->tick; the pool takes the
 * decisions exactly. Bounds are checked at every tick. */
static void
sim_run(struct sim *s, demand_fn demand, const void *arg, uint64_t until)
{
    const int steps = 16;
    while (s->now < until) {
        uint64_t dt = s->tick / steps;
        for (int i = 0; i < steps; i++) {
            double d = demand(s->now, arg);
            double busy = d < s->n ? d : s->n;
            if (busy < 0)
                busy = 0;
            s->smp.busy_ns += (uint64_t)(busy * (double)dt);
            s->smp.worker_ns += (uint64_t)s->n * dt;
            s->now += dt;
        }
        workers__autoscale_decide(&s->p, s->min, s->max, &s->st, &s->smp, s->n,
                                  s->now, &s->last);
        ck_assert_int_eq(s->last.new_count, s->last.wanted);
        s->reasons[s->last.reason]++;
        if (s->last.new_count != s->n) {
            ck_assert_int_lt(s->nchanges, MAX_CHANGES);
            s->changes[s->nchanges++] =
                (struct change){s->now, s->n, s->last.new_count};
            s->n = s->last.new_count;
        }
        if (s->last.reason != WORKERS_AUTOSCALE_PAUSED)
            ck_assert_int_ge(s->n, s->min > 1 ? s->min : 1);
        if (s->max > 0)
            ck_assert_int_le(s->n, s->max);
        ck_assert(s->last.utilisation >= 0 && s->last.utilisation <= 1);
    }
}

/* The sizes the policy holds at under a constant demand d (its band): the
 * pool is not above target + band and one worker fewer would not be under
 * target - band. Written apart from policy.c's code, from the header's
 * description, so that the tests check the description too. */
static bool
holds(const struct sim *s, double d, int n)
{
    double t = s->p.target;
    double hi = t + fmin(0.1, (1 - t) / 2), lo = t - fmin(0.1, t / 2);
    int floor = s->min > 1 ? s->min : 1;
    double u = d < n ? d / n : 1;
    if (u > hi && (s->max == 0 || n < s->max))
        return false;
    return n <= floor || !(d == 0 || d < lo * (n - 1));
}

/* The size growth aims for: ceil(d / target). */
static int
steady(const struct sim *s, double d)
{
    return (int)ceil(d / s->p.target - 1e-9);
}

/* The time of the last change before `to`, or 0. */
static uint64_t
last_change(const struct sim *s, uint64_t to)
{
    uint64_t at = 0;
    for (int i = 0; i < s->nchanges; i++)
        if (s->changes[i].at < to)
            at = s->changes[i].at;
    return at;
}

struct step {
    uint64_t at;
    double before, after;
};

static double
step_demand(uint64_t t, const void *arg)
{
    const struct step *st = arg;
    return t < st->at ? st->before : st->after;
}

static double
const_demand(uint64_t t, const void *arg)
{
    (void)t;
    return *(const double *)arg;
}

/* ---- policy tests --------------------------------------------------- */

START_TEST(policy_defaults)
{
    workers_autoscale_policy p;
    ck_assert_int_eq(workers__autoscale_policy(NULL, &p), 0);
    ck_assert(p.target == 0.8);
    ck_assert_uint_eq(p.window_ns, W);
    ck_assert_uint_eq(p.cooldown_ns, CD);
    workers_autoscale_policy mine = {.target = 0.5, .window_ns = SEC};
    ck_assert_int_eq(workers__autoscale_policy(&mine, &p), 0);
    ck_assert(p.target == 0.5);
    ck_assert_uint_eq(p.window_ns, SEC);
    ck_assert_uint_eq(p.cooldown_ns, CD);
    const double bad[] = {1.0, 1.5, -0.1, NAN};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mine.target = bad[i];
        ck_assert_int_eq(workers__autoscale_policy(&mine, &p), -EINVAL);
        workers_autoscale *as;
        ck_assert_int_eq(workers_autoscale_new(&as, &mine, NULL, NULL),
                         -EINVAL);
    }
}
END_TEST

/* Loads from 0.5 to 40 workers, x4 up, at targets 0.8 and 0.5: settled
 * at the old size, the new one is reached within 3 windows of the step,
 * never more than one worker above ceil(d / target), and then held. */
static const struct {
    double before, target;
} step_up_cases[] = {{0.5, 0.8}, {1, 0.8},  {2, 0.8},  {2.1, 0.8}, {3.2, 0.8},
                     {5, 0.8},   {7.7, 0.8}, {10, 0.8}, {2, 0.5},   {3, 0.6}};

START_TEST(policy_step_up)
{
    struct sim s;
    workers_autoscale_policy p = {.target = step_up_cases[_i].target};
    double before = step_up_cases[_i].before, after = 4 * before;
    sim_init(&s, &p, 1, 200, 1);
    s.n = steady(&s, before);
    struct step st = {s.now + 20 * W, before, after};
    sim_run(&s, step_demand, &st, st.at);
    ck_assert_int_eq(s.nchanges, 0);

    sim_run(&s, step_demand, &st, st.at + 3 * W);
    ck_assert_msg(holds(&s, after, s.n), "%g -> %g: %d workers after 3 windows",
                  before, after, s.n);
    uint64_t settled = last_change(&s, s.now);
    sim_run(&s, step_demand, &st, st.at + 20 * W);
    ck_assert_int_eq(last_change(&s, s.now), settled);
    for (int i = 0; i < s.nchanges; i++) {
        ck_assert_int_le(s.changes[i].to, steady(&s, after) + 1);
        ck_assert_int_gt(s.changes[i].to, s.changes[i].from); /* no dip */
        ck_assert_int_le(s.changes[i].to, 2 * s.changes[i].from);
    }
}
END_TEST

/* x4 down: one worker fewer per cooldown, the first within a window of
 * the step (the last change was long before), down to a size the policy
 * holds, within window + (N - steady) x cooldown. */
START_TEST(policy_step_down)
{
    struct sim s;
    sim_init(&s, NULL, 1, 200, 10);
    struct step st = {s.now + 20 * W, 8, 2};
    sim_run(&s, step_demand, &st, st.at);
    ck_assert_int_eq(s.nchanges, 0);
    int from = s.n;

    sim_run(&s, step_demand, &st, st.at + 40 * CD);
    ck_assert(holds(&s, 2, s.n));
    ck_assert_int_eq(s.nchanges, from - s.n);
    ck_assert_uint_le(s.changes[0].at, st.at + W + s.tick);
    for (int i = 0; i < s.nchanges; i++) {
        ck_assert_int_eq(s.changes[i].to, s.changes[i].from - 1);
        if (i > 0)
            ck_assert_uint_ge(s.changes[i].at - s.changes[i - 1].at, CD);
    }
    ck_assert_uint_le(s.changes[s.nchanges - 1].at - st.at,
                      W + (uint64_t)(from - s.n) * CD + s.tick);
}
END_TEST

/* Steady loads, exact and with +-8% noise around them: once settled, at
 * most one change per 10 windows (here: none at all over 50). */
struct noisy {
    double d;
    uint64_t rng;
};

static double
noisy_demand(uint64_t t, const void *arg)
{
    (void)t;
    /* The model is const to sim_run; the generator's state is not. */
    struct noisy *n = (struct noisy *)arg;
    n->rng ^= n->rng << 13;
    n->rng ^= n->rng >> 7;
    n->rng ^= n->rng << 17;
    double r = (double)(n->rng % 2001) / 1000.0 - 1; /* [-1, 1] */
    return n->d * (1 + 0.08 * r);
}

START_TEST(policy_steady_no_oscillation)
{
    const double loads[] = {0.3, 1, 1.6, 2.4, 3.2, 4, 6.4, 9, 15, 33};
    for (size_t i = 0; i < sizeof(loads) / sizeof(loads[0]); i++) {
        for (int noise = 0; noise < 2; noise++) {
            struct sim s;
            sim_init(&s, NULL, 1, 0, 1);
            struct noisy n = {loads[i], 88172645463325252ull};
            if (noise)
                sim_run(&s, noisy_demand, &n, s.now + 20 * W);
            else
                sim_run(&s, const_demand, &loads[i], s.now + 20 * W);
            int before = s.nchanges;
            uint64_t from = s.now;
            if (noise)
                sim_run(&s, noisy_demand, &n, from + 50 * W);
            else
                sim_run(&s, const_demand, &loads[i], from + 50 * W);
            ck_assert_msg(s.nchanges == before,
                          "load %g%s: %d changes in 50 windows, at %d",
                          loads[i], noise ? " +-8%" : "",
                          s.nchanges - before, s.n);
            ck_assert(holds(&s, loads[i], s.n));
        }
    }
}
END_TEST

/* A slow sine between 2 and 10 workers of demand, with a period of 100
 * windows, so that it falls by less than a worker per cooldown: the size
 * follows it, on the way up never saturated for more than 2 windows, on
 * the way down never more than a worker above the band (the price of
 * shrinking one per cooldown), and never reverses within a cooldown. */
#define SINE_PERIOD (100 * W)

static double
sine_demand(uint64_t t, const void *arg)
{
    (void)arg;
    return 6 + 4 * sin(2 * M_PI * (double)t / (double)SINE_PERIOD);
}

/* The largest size held at a constant demand d. */
static int
largest_held(const struct sim *s, double d)
{
    int n = steady(s, d);
    while (holds(s, d, n + 1))
        n++;
    return n;
}

START_TEST(policy_slow_sine)
{
    struct sim s;
    sim_init(&s, NULL, 1, 64, 8);
    uint64_t saturated_since = 0;
    uint64_t end = s.now + 2 * SINE_PERIOD;
    while (s.now < end) {
        sim_run(&s, sine_demand, NULL, s.now + s.tick);
        double d = sine_demand(s.now, NULL);
        if (d >= s.n) {
            if (saturated_since == 0)
                saturated_since = s.now;
            ck_assert_uint_le(s.now - saturated_since, 2 * W);
        } else {
            saturated_since = 0;
        }
        ck_assert_msg(s.n <= largest_held(&s, d) + 1, "%d workers at %.2f",
                      s.n, d);
    }
    for (int i = 1; i < s.nchanges; i++) {
        bool up = s.changes[i].to > s.changes[i].from;
        bool was_up = s.changes[i - 1].to > s.changes[i - 1].from;
        if (up != was_up)
            ck_assert_uint_ge(s.changes[i].at - s.changes[i - 1].at, CD);
    }
    /* Up and down once per period, from about 3 to 13 workers and back. */
    ck_assert_int_le(s.nchanges, 2 * 2 * 12);
}
END_TEST

/* Bursts of 16 workers' demand over a base of 1, every 10 windows. Short
 * ones (1/8 window) are averaged into their window: no change at all.
 * Long ones (2 windows) are grown for, never beyond ceil(16 / target) + 1,
 * and since the pool shrinks one worker per cooldown between them, from
 * the third on each is served (the pool not saturated) within half a
 * window of its start. */
static double
burst_demand(uint64_t t, const void *arg)
{
    uint64_t len = *(const uint64_t *)arg;
    return t % (10 * W) < len ? 16 : 1;
}

START_TEST(policy_bursts)
{
    struct sim s;
    uint64_t len = W / 8;
    sim_init(&s, NULL, 1, 64, 2);
    sim_run(&s, burst_demand, &len, s.now + 100 * W);
    ck_assert_int_eq(s.nchanges, 0);

    len = 2 * W;
    sim_init(&s, NULL, 1, 64, 2);
    uint64_t end = s.now + 100 * W;
    uint64_t saturated = 0;
    while (s.now < end) {
        sim_run(&s, burst_demand, &len, s.now + s.tick);
        uint64_t in = s.now % (10 * W);
        if (s.now >= 20 * W && in > 0 && in <= len) {
            saturated = in <= s.tick ? 0 : saturated;
            if (16 >= s.n)
                saturated += s.tick;
            ck_assert_uint_le(saturated, W / 2);
        }
    }
    int top = 0;
    for (int i = 0; i < s.nchanges; i++)
        top = s.changes[i].to > top ? s.changes[i].to : top;
    ck_assert_int_le(top, steady(&s, 16) + 1);
}
END_TEST

/* Bounds: [min, max] of the pool's config, and never below one worker. */
START_TEST(policy_bounds)
{
    struct sim s;
    sim_init(&s, NULL, 3, 6, 3);
    struct step st = {s.now + 5 * W, 100, 0};
    sim_run(&s, step_demand, &st, st.at);
    ck_assert_int_eq(s.n, 6);
    ck_assert_int_eq(s.last.reason, WORKERS_AUTOSCALE_LIMIT);
    sim_run(&s, step_demand, &st, st.at + 10 * CD);
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(s.last.reason, WORKERS_AUTOSCALE_LIMIT);

    /* min 0: the autoscaler stops at one. */
    sim_init(&s, NULL, 0, 0, 4);
    double zero = 0;
    sim_run(&s, const_demand, &zero, s.now + 10 * CD);
    ck_assert_int_eq(s.n, 1);
}
END_TEST

/* Saturated growth at most doubles, even for a low target; saturation is
 * acted on after a quarter window, anything else after a whole one. */
START_TEST(policy_growth_cap)
{
    struct sim s;
    workers_autoscale_policy p = {.target = 0.2};
    sim_init(&s, &p, 1, 0, 2);
    double d = 1000;
    sim_run(&s, const_demand, &d, s.now + 2 * W);
    ck_assert_int_gt(s.nchanges, 3);
    for (int i = 0; i < s.nchanges; i++)
        ck_assert_int_eq(s.changes[i].to, 2 * s.changes[i].from);

    /* Just over the band (0.95 at 10 workers, not saturated): one window. */
    sim_init(&s, NULL, 1, 0, 10);
    d = 9.3;
    s.tick = W / 10;
    sim_run(&s, const_demand, &d, s.now + W - s.tick);
    ck_assert_int_eq(s.nchanges, 0);
    sim_run(&s, const_demand, &d, s.now + 2 * s.tick);
    ck_assert_int_eq(s.nchanges, 1);
    ck_assert_int_eq(s.n, 12);
}
END_TEST

/* A size the autoscaler did not set is measured afresh and not shrunk
 * before a cooldown; a gap in the ticks restarts the measurement. */
START_TEST(policy_external_and_gap)
{
    struct sim s;
    sim_init(&s, NULL, 1, 0, 4);
    double d = 3.2;
    sim_run(&s, const_demand, &d, s.now + 5 * W);
    ck_assert_int_eq(s.n, 4);

    s.n = 9; /* another caller's more() x5 */
    sim_run(&s, const_demand, &d, s.now + s.tick);
    ck_assert_int_eq(s.last.reason, WORKERS_AUTOSCALE_EXTERNAL);
    ck_assert_int_eq(s.n, 9);
    uint64_t external = s.now;
    sim_run(&s, const_demand, &d, external + CD - s.tick);
    ck_assert_int_eq(s.n, 9);
    ck_assert_int_gt(s.reasons[WORKERS_AUTOSCALE_COOLDOWN], 0);
    sim_run(&s, const_demand, &d, external + CD + s.tick);
    ck_assert_int_eq(s.n, 8);

    /* Ticks stop for 5 windows (the load is still integrated), then
     * resume: the first tick measures afresh. */
    uint64_t tick = s.tick;
    s.tick = 5 * W;
    sim_run(&s, const_demand, &d, s.now + s.tick);
    ck_assert_int_eq(s.last.reason, WORKERS_AUTOSCALE_MEASURING);
    ck_assert_uint_eq(s.last.span_ns, 0);
    s.tick = tick;

    /* A pool paused at zero by someone else stays there. */
    s.n = 0;
    sim_run(&s, const_demand, &d, s.now + 3 * W);
    ck_assert_int_eq(s.n, 0);
    ck_assert_int_eq(s.last.reason, WORKERS_AUTOSCALE_PAUSED);
}
END_TEST

START_TEST(describe_lines)
{
    char buf[160];
    workers_autoscale_decision d = {.old_count = 4,
                                    .wanted = 7,
                                    .new_count = 7,
                                    .utilisation = 0.97,
                                    .span_ns = 10 * SEC,
                                    .target = 0.8,
                                    .reason = WORKERS_AUTOSCALE_GROW};
    workers_autoscale_describe(&d, buf, sizeof(buf));
    ck_assert_str_eq(buf,
                     "4 -> 7 workers (utilisation 0.97 over 10s, target 0.80)");
    d.new_count = 5;
    d.err = WORKERS_EMAX;
    workers_autoscale_describe(&d, buf, sizeof(buf));
    ck_assert_str_eq(buf, "4 -> 5 workers, wanted 7: max workers reached "
                          "(utilisation 0.97 over 10s, target 0.80)");
    d = (workers_autoscale_decision){.old_count = 5,
                                     .wanted = 5,
                                     .new_count = 5,
                                     .utilisation = 0.78,
                                     .span_ns = 2500 * MS,
                                     .target = 0.8,
                                     .reason = WORKERS_AUTOSCALE_STEADY};
    workers_autoscale_describe(&d, buf, sizeof(buf));
    ck_assert_str_eq(
        buf, "5 workers, steady (utilisation 0.78 over 2.5s, target 0.80)");
    d.reason = WORKERS_AUTOSCALE_MEASURING;
    d.span_ns = 0;
    workers_autoscale_describe(&d, buf, sizeof(buf));
    ck_assert_str_eq(buf, "5 workers, measuring");
    /* Truncated, NUL-terminated, the full length returned. */
    int n = workers_autoscale_describe(&d, buf, 4);
    ck_assert_int_eq(n, (int)strlen("5 workers, measuring"));
    ck_assert_str_eq(buf, "5 w");

    /* Every held reason, and one worker. */
    const struct {
        workers_autoscale_reason reason;
        double utilisation;
        const char *line;
    } held[] = {
        {WORKERS_AUTOSCALE_COOLDOWN, 0.1,
         "1 worker, shrink waits for the cooldown (utilisation 0.10 over 10s, "
         "target 0.80)"},
        {WORKERS_AUTOSCALE_LIMIT, 0.99,
         "1 worker, at max (utilisation 0.99 over 10s, target 0.80)"},
        {WORKERS_AUTOSCALE_LIMIT, 0,
         "1 worker, at min (utilisation 0.00 over 10s, target 0.80)"},
        {WORKERS_AUTOSCALE_EXTERNAL, 0,
         "1 worker, size set by another caller, measuring afresh (utilisation "
         "0.00 over 10s, target 0.80)"},
        {WORKERS_AUTOSCALE_PAUSED, 0,
         "1 worker, paused (utilisation 0.00 over 10s, target 0.80)"},
    };
    for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++) {
        d = (workers_autoscale_decision){.old_count = 1,
                                         .wanted = 1,
                                         .new_count = 1,
                                         .utilisation = held[i].utilisation,
                                         .span_ns = 10 * SEC,
                                         .target = 0.8,
                                         .reason = held[i].reason};
        workers_autoscale_describe(&d, buf, sizeof(buf));
        ck_assert_str_eq(buf, held[i].line);
    }
    d.old_count = 2;
    d.wanted = d.new_count = 1;
    d.reason = WORKERS_AUTOSCALE_SHRINK;
    workers_autoscale_describe(&d, buf, sizeof(buf));
    ck_assert_str_eq(buf,
                     "2 -> 1 worker (utilisation 0.00 over 10s, target 0.80)");
}
END_TEST

/* ---- stream: the middleware's accounting on a fake clock ---------------- */

/*
 * Each simulated worker has its own timeline: before a run the test sets
 * the clock to that worker's time, and the job moves it on by the run's
 * length. So runs of different workers overlap in fake time although the
 * test thread makes them one after the other.
 */
static uint64_t fake_now;

static uint64_t
fake_clock(void *arg)
{
    (void)arg;
    return __atomic_load_n(&fake_now, __ATOMIC_RELAXED);
}

static void
set_clock(uint64_t t)
{
    __atomic_store_n(&fake_now, t, __ATOMIC_RELAXED);
}

struct scripted {
    uint64_t len; /* fake length of the next run */
    int result;   /* its result */
    /* Called in the middle of the run (the clock at its start + len/2). */
    void (*during)(struct scripted *s);
    struct workers__tally *tally;
    uint64_t busy_seen, worker_seen;
};

static int
scripted_run(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    struct scripted *s = arg;
    uint64_t start = fake_clock(NULL);
    if (s->during != NULL) {
        set_clock(start + s->len / 2);
        s->during(s);
    }
    set_clock(start + s->len);
    return s->result;
}

static void
sample_now(struct scripted *s)
{
    workers__tally_sample(s->tally, fake_clock(NULL), &s->busy_seen,
                          &s->worker_seen);
}

/* An elapsed on the fake clock is a timed tally with the autoscaler's run;
 * made to time its slots' lives, it is the autoscaler's tally. */
static struct workers__tally *
timed_tally(workers_elapsed **e)
{
    ck_assert_int_eq(workers_elapsed_new(e, fake_clock, NULL), 0);
    struct workers__tally *t = (struct workers__tally *)*e;
    t->lives = true;
    return t;
}

static void
run_one(workers_job *job, workers_ctx *ctx, struct scripted *s, uint64_t len,
        int result)
{
    s->len = len;
    s->result = result;
    ck_assert_int_eq(job->fn(ctx, job->arg), result);
}

START_TEST(stream_busy_idle_failed)
{
    set_clock(100 * SEC);
    workers_elapsed *e;
    struct workers__tally *t = timed_tally(&e);
    workers_counter *c;
    ck_assert_int_eq(workers_counter_new(&c), 0);
    workers_middleware mws[] = {workers_counter_middleware(c),
                                workers_elapsed_middleware(e)};
    struct scripted s = {.tally = t};
    workers_job job = {scripted_run, &s, NULL};
    ck_assert_int_eq(workers_wrap(&job, mws, 2), 0); /* born at 100 s */
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);

    run_one(&job, ctx, &s, 3 * SEC, 0);             /* busy 3 */
    run_one(&job, ctx, &s, 1 * SEC, WORKERS_EIDLE); /* idle 1 */
    run_one(&job, ctx, &s, 2 * SEC, WORKERS_EJOB);  /* failed 2 */
    run_one(&job, ctx, &s, 4 * SEC, 0);             /* busy 4 */
    workers_ctx_wait(ctx, 0);   /* something between runs: a pause */
    set_clock(fake_clock(NULL) + 5 * SEC);
    run_one(&job, ctx, &s, 1 * SEC, WORKERS_ECANCELED); /* failed 1 */

    uint64_t busy, worker;
    workers__tally_sample(t, 116 * SEC, &busy, &worker);
    ck_assert_uint_eq(busy, 7 * SEC);
    ck_assert_uint_eq(worker, 16 * SEC);

    workers_elapsed_stats es;
    workers_elapsed_stats_get(e, &es);
    ck_assert_uint_eq(es.total_ns, 11 * SEC);
    ck_assert_uint_eq(es.busy_ns, 7 * SEC);
    workers_counter_stats cs;
    workers_counter_stats_get(c, &cs);
    ck_assert_uint_eq(cs.started, 5);
    ck_assert_uint_eq(cs.finished, 5);
    ck_assert_uint_eq(cs.idle, 1);
    ck_assert_uint_eq(cs.failed, 2);

    /* A freed slot's busy and worker time (wrap to free) stay. */
    set_clock(120 * SEC);
    workers_job_free(&job);
    workers__tally_sample(t, 130 * SEC, &busy, &worker);
    ck_assert_uint_eq(busy, 7 * SEC);
    ck_assert_uint_eq(worker, 20 * SEC);
    workers_ctx_free(ctx);
    workers_elapsed_free(e);
    workers_counter_free(c);
}
END_TEST

/* A run in progress counts as busy up to now when the previous run did
 * work; not a first run, nor one after an idle or failed run. */
START_TEST(stream_in_progress)
{
    set_clock(0);
    workers_elapsed *e;
    struct workers__tally *t = timed_tally(&e);
    struct scripted s = {.tally = t};
    workers_job job = {scripted_run, &s, NULL};
    workers_middleware mw = workers_elapsed_middleware(e);
    ck_assert_int_eq(workers_wrap(&job, &mw, 1), 0);
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);

    s.during = sample_now;
    run_one(&job, ctx, &s, 20 * SEC, 0); /* first: sampled at 10 s */
    ck_assert_uint_eq(s.busy_seen, 0);
    ck_assert_uint_eq(s.worker_seen, 10 * SEC);
    run_one(&job, ctx, &s, 20 * SEC, 0); /* after busy: sampled at 30 s */
    ck_assert_uint_eq(s.busy_seen, 30 * SEC);
    run_one(&job, ctx, &s, 2 * SEC, WORKERS_EIDLE); /* at 41 s */
    ck_assert_uint_eq(s.busy_seen, 41 * SEC);
    run_one(&job, ctx, &s, 20 * SEC, 0); /* after idle: at 52 s */
    ck_assert_uint_eq(s.busy_seen, 40 * SEC);
    run_one(&job, ctx, &s, 2 * SEC, WORKERS_EJOB); /* after busy: 63 s */
    ck_assert_uint_eq(s.busy_seen, 61 * SEC);
    run_one(&job, ctx, &s, 20 * SEC, 0); /* after failed: at 74 s */
    ck_assert_uint_eq(s.busy_seen, 60 * SEC);
    s.during = NULL;

    uint64_t busy, worker;
    workers__tally_sample(t, fake_clock(NULL), &busy, &worker);
    ck_assert_uint_eq(busy, 80 * SEC);
    ck_assert_uint_eq(worker, 84 * SEC);
    workers_job_free(&job);
    workers_ctx_free(ctx);
    workers_elapsed_free(e);
}
END_TEST

/*
 * n workers, each on its own timeline, all producing `result` runs of 1 s
 * for 20 windows through the real middleware, sample and decision, ticking
 * every quarter window: the size never grows and falls to the floor.
 */
static void
uniform_stream(int result)
{
    enum { N = 6 };
    set_clock(0);
    workers_elapsed *e;
    struct workers__tally *t = timed_tally(&e);
    workers_middleware mw = workers_elapsed_middleware(e);
    struct scripted s[N];
    workers_job jobs[N];
    workers_ctx *ctx[N];
    uint64_t clock_of[N];
    for (int i = 0; i < N; i++) {
        s[i] = (struct scripted){.tally = t};
        jobs[i] = (workers_job){scripted_run, &s[i], NULL};
        ck_assert_int_eq(workers_wrap(&jobs[i], &mw, 1), 0);
        ck_assert_int_eq(workers_ctx_new(&ctx[i]), 0);
        clock_of[i] = 0;
    }
    workers_autoscale_policy p;
    ck_assert_int_eq(workers__autoscale_policy(NULL, &p), 0);
    struct workers__as_state st = {0};
    int n = N;
    for (uint64_t now = W / 4; now <= 20 * W; now += W / 4) {
        for (int i = 0; i < n; i++) {
            while (clock_of[i] < now) {
                set_clock(clock_of[i]);
                run_one(&jobs[i], ctx[i], &s[i], SEC, result);
                clock_of[i] = fake_clock(NULL);
            }
        }
        struct workers__as_sample smp;
        workers__tally_sample(t, now, &smp.busy_ns, &smp.worker_ns);
        workers_autoscale_decision d;
        workers__autoscale_decide(&p, 1, N, &st, &smp, n, now, &d);
        ck_assert_int_le(d.wanted, n);
        ck_assert(d.utilisation == 0);
        if (d.wanted < n) {
            /* The last worker leaves: its job is freed. */
            n = d.wanted;
            set_clock(now);
            workers_job_free(&jobs[n]);
        }
    }
    ck_assert_int_eq(n, 1);
    for (int i = 0; i < N; i++) {
        workers_job_free(&jobs[i]);
        workers_ctx_free(ctx[i]);
    }
    workers_elapsed_free(e);
}

START_TEST(stream_all_failing)
{
    uniform_stream(WORKERS_EJOB);
}
END_TEST

START_TEST(stream_all_idle)
{
    uniform_stream(WORKERS_EIDLE);
}
END_TEST

/* ---- pool: a real pool, real ticks at explicit fake times --------------- */

/*
 * The job: in busy mode each run waits on a gate until the test opens the
 * next generation (the fake clock already moved on), then returns 0; in
 * idle mode it returns WORKERS_EIDLE at once (the idle wait paces it).
 */
#define MAX_IDS 16

static struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned gen;
    int arrivals; /* runs that reached the gate */
    bool idle;    /* idle mode */
    bool done;    /* let every run through: the test ends */
    int idle_runs[MAX_IDS + 1];
} gate = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int
gate_job(workers_ctx *ctx, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gate.mu);
    if (gate.idle || gate.done) {
        unsigned id = workers_ctx_worker_id(ctx);
        if (id <= MAX_IDS)
            gate.idle_runs[id]++;
        pthread_mutex_unlock(&gate.mu);
        return WORKERS_EIDLE;
    }
    unsigned gen = gate.gen;
    gate.arrivals++;
    pthread_cond_broadcast(&gate.cv);
    while (gate.gen == gen && !gate.done)
        pthread_cond_wait(&gate.cv, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
    return 0;
}

/* Waits (on the condition variable, with a generous deadline) until
 * cond() holds under the gate's lock. */
static bool
gate_wait(bool (*cond)(void *arg), void *arg)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += TU_DEADLINE_MS / 1000;
    pthread_mutex_lock(&gate.mu);
    bool ok;
    while (!(ok = cond(arg)))
        if (pthread_cond_timedwait(&gate.cv, &gate.mu, &dl) == ETIMEDOUT) {
            ok = cond(arg);
            break;
        }
    pthread_mutex_unlock(&gate.mu);
    return ok;
}

static bool
arrived(void *arg)
{
    return gate.arrivals >= *(int *)arg;
}

/* Moves the clock to t, releases every run at the gate (they end at t)
 * and waits until each of the n workers is back in its next run. Returns
 * the arrivals then. */
static int
gate_release(uint64_t t, int n)
{
    set_clock(t);
    pthread_mutex_lock(&gate.mu);
    int want = gate.arrivals + n;
    gate.gen++;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    ck_assert(gate_wait(arrived, &want));
    return want;
}

/* Every worker id 1..n made at least two idle runs (so its run in
 * progress, if any, follows an idle one). Idle runs do not broadcast: the
 * waiter polls. */
static bool
idle_twice(void *arg)
{
    int n = *(int *)arg;
    pthread_mutex_lock(&gate.mu);
    bool all = true;
    for (int id = 1; id <= n; id++)
        all = all && gate.idle_runs[id] >= 2;
    pthread_mutex_unlock(&gate.mu);
    return all;
}

static workers_autoscale_decision
tick_at(workers_autoscale *as, workers_pool *pool, uint64_t t)
{
    workers_autoscale_decision d;
    set_clock(t);
    ck_assert_int_eq(workers_autoscale_tick(as, pool, t, &d), 0);
    ck_assert_int_eq(workers_pool_current(pool), d.new_count);
    return d;
}

START_TEST(pool_grows_and_shrinks)
{
    set_clock(SEC);
    workers_autoscale *as;
    ck_assert_int_eq(workers_autoscale_new(&as, NULL, fake_clock, NULL), 0);
    workers_counter *c;
    ck_assert_int_eq(workers_counter_new(&c), 0);
    /* The idle wait paces idle runs in real time; less() cuts it short. */
    workers_middleware mws[] = {workers_autoscale_middleware(as),
                                workers_idle_wait(MS),
                                workers_counter_middleware(c)};
    workers_config cfg = {.min = 1, .max = 8, .initial = 1};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, mws, 3), 0);
    workers_job job = workers_job_func(gate_job, NULL);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    int one = 1;
    ck_assert(gate_wait(arrived, &one));

    workers_autoscale_decision d = tick_at(as, pool, SEC);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_MEASURING);

    /* Every worker busy for each window: 1, 2, 3, 4, 5, 7, 8 (max). */
    const int sizes[] = {1, 2, 3, 4, 5, 7, 8};
    uint64_t t = SEC;
    for (size_t i = 1; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        t += W;
        int want = gate_release(t, sizes[i - 1]);
        d = tick_at(as, pool, t);
        ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_GROW);
        ck_assert(d.utilisation == 1);
        ck_assert_uint_eq(d.span_ns, W);
        ck_assert_int_eq(d.old_count, sizes[i - 1]);
        ck_assert_int_eq(d.new_count, sizes[i]);
        /* The new workers' first runs reach the gate too. */
        want += sizes[i] - sizes[i - 1];
        ck_assert(gate_wait(arrived, &want));
    }
    t += W;
    gate_release(t, 8);
    d = tick_at(as, pool, t);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_LIMIT);
    ck_assert_int_eq(d.new_count, 8);
    uint64_t grown = t - W;

    /* No work any more: the runs at the gate end busy at t, then every run
     * is idle and takes no fake time. */
    pthread_mutex_lock(&gate.mu);
    gate.idle = true;
    gate.gen++;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    int eight = 8;
    ck_assert(tu_wait_until(idle_twice, &eight, TU_DEADLINE_MS));

    /* One worker fewer per cooldown, counted from the last growth. */
    int n = 8;
    for (t += W; n > 1; t += W) {
        d = tick_at(as, pool, t);
        ck_assert(d.utilisation == 0);
        if (t - grown >= CD && (n == 8 || (t - grown) % CD == 0)) {
            ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_SHRINK);
            ck_assert_int_eq(d.new_count, --n);
            grown = t;
        } else {
            ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_COOLDOWN);
            ck_assert_int_eq(d.new_count, n);
        }
    }
    d = tick_at(as, pool, t);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_LIMIT);

    pthread_mutex_lock(&gate.mu);
    gate.done = true;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    workers_pool_free(pool);
    workers_counter_stats cs;
    workers_counter_stats_get(c, &cs);
    ck_assert_uint_eq(cs.failed, 0);
    ck_assert_uint_ge(cs.idle, 16); /* two per worker at least */
    workers_counter_free(c);
    workers_autoscale_free(as);
}
END_TEST

/* Another caller's more(): reported, measured afresh; a closed pool: the
 * tick reports it paused, and more() errors come back. */
START_TEST(pool_external_change)
{
    set_clock(SEC);
    workers_autoscale *as;
    workers_autoscale_policy p = {.window_ns = W};
    ck_assert_int_eq(workers_autoscale_new(&as, &p, fake_clock, NULL), 0);
    workers_middleware mws[] = {workers_autoscale_middleware(as),
                                workers_idle_wait(MS)};
    workers_config cfg = {.min = 1, .max = 4, .initial = 2};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, mws, 2), 0);
    gate.idle = true;
    workers_job job = workers_job_func(gate_job, NULL);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);

    workers_autoscale_decision d = tick_at(as, pool, SEC);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_MEASURING);
    ck_assert_int_eq(workers_pool_more(pool), 0);
    d = tick_at(as, pool, 2 * SEC);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_EXTERNAL);
    ck_assert_int_eq(d.old_count, 3);
    ck_assert_int_eq(d.new_count, 3);
    d = tick_at(as, pool, 2 * SEC + W);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_COOLDOWN);
    /* A new policy: measured afresh. */
    p.target = 0.5;
    ck_assert_int_eq(workers_autoscale_set_policy(as, &p), 0);
    p.target = 2;
    ck_assert_int_eq(workers_autoscale_set_policy(as, &p), -EINVAL);
    d = tick_at(as, pool, 2 * SEC + 2 * W);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_MEASURING);
    ck_assert(d.target == 0.5);

    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    d = tick_at(as, pool, 2 * SEC + 3 * W);
    ck_assert_int_eq(d.reason, WORKERS_AUTOSCALE_PAUSED);
    workers_pool_free(pool);
    workers_autoscale_free(as);
}
END_TEST

/* ---- the idle outcome --------------------------------------------------- */

static int
idle_job(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    atomic_fetch_add((atomic_int *)arg, 1);
    return WORKERS_EIDLE;
}

struct ran {
    atomic_int *runs;
    int at_least;
};

static bool
ran_enough(void *arg)
{
    const struct ran *r = arg;
    return atomic_load(r->runs) >= r->at_least;
}

START_TEST(eidle_is_no_error)
{
    ck_assert_str_eq(workers_strerror(WORKERS_EIDLE), "no work");
    ck_assert_str_eq(workers_err_name(WORKERS_EIDLE), "WORKERS_EIDLE");

    /* stop_on_errors does not stop on it. */
    atomic_int runs = 0;
    workers_config cfg = {.initial = 2, .stop_on_errors = true};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, NULL, 0), 0);
    workers_job job = workers_job_func(idle_job, &runs);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    ck_assert(tu_wait_until(ran_enough, &(struct ran){&runs, 100},
                            TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_more(pool), 0);
    ck_assert_int_eq(workers_pool_close(pool, NULL), 0);
    workers_pool_free(pool);

    /* retry does not retry it. */
    atomic_int calls = 0;
    workers_job one = workers_job_func(idle_job, &calls);
    workers_middleware mw = workers_retry(5);
    ck_assert_int_eq(workers_wrap(&one, &mw, 1), 0);
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    ck_assert_int_eq(one.fn(ctx, one.arg), WORKERS_EIDLE);
    ck_assert_int_eq(atomic_load(&calls), 1);
    workers_job_free(&one);
    workers_ctx_free(ctx);
}
END_TEST

/* The idle wait pauses after an idle run only, and a cancel (less, close)
 * ends the pause at once: an hour-long pause does not hold the close. */
static int
result_job(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    return *(int *)arg;
}

START_TEST(idle_wait_pauses)
{
    workers_ctx *ctx;
    ck_assert_int_eq(workers_ctx_new(&ctx), 0);
    int result = 0;
    workers_job job = workers_job_func(result_job, &result);
    workers_middleware mw = workers_idle_wait(3600 * SEC);
    ck_assert_int_eq(workers_wrap(&job, &mw, 1), 0);
    uint64_t waits = atomic_load(&ctx->waits);
    ck_assert_int_eq(job.fn(ctx, job.arg), 0); /* no pause */
    result = WORKERS_EJOB;
    ck_assert_int_eq(job.fn(ctx, job.arg), WORKERS_EJOB);
    ck_assert_uint_eq(atomic_load(&ctx->waits), waits);
    workers_ctx_cancel(ctx);
    result = WORKERS_EIDLE;
    ck_assert_int_eq(job.fn(ctx, job.arg), WORKERS_EIDLE);
    ck_assert_uint_eq(atomic_load(&ctx->waits), waits + 1);
    workers_job_free(&job);
    workers_ctx_free(ctx);

    atomic_int runs = 0;
    workers_config cfg = {.initial = 3};
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, &mw, 1), 0);
    workers_job idle = workers_job_func(idle_job, &runs);
    ck_assert_int_eq(workers_pool_start(pool, &idle), 0);
    /* Each worker's first run, then its hour-long pause. */
    ck_assert(
        tu_wait_until(ran_enough, &(struct ran){&runs, 3}, TU_DEADLINE_MS));
    ck_assert_int_eq(workers_pool_less(pool), 0);
    ck_assert_int_eq(workers_pool_close_timeout(pool, 10 * SEC), 0);
    ck_assert_int_eq(atomic_load(&runs), 3);
    workers_pool_free(pool);
}
END_TEST

Suite *make_autoscale_suite(void);

Suite *
make_autoscale_suite(void)
{
    Suite *s = suite_create("autoscale");
    TCase *tc = tcase_create("policy");
    tcase_add_test(tc, policy_defaults);
    tcase_add_loop_test(tc, policy_step_up, 0,
                        sizeof(step_up_cases) / sizeof(step_up_cases[0]));
    tcase_add_test(tc, policy_step_down);
    tcase_add_test(tc, policy_steady_no_oscillation);
    tcase_add_test(tc, policy_slow_sine);
    tcase_add_test(tc, policy_bursts);
    tcase_add_test(tc, policy_bounds);
    tcase_add_test(tc, policy_growth_cap);
    tcase_add_test(tc, policy_external_and_gap);
    tcase_add_test(tc, describe_lines);
    suite_add_tcase(s, tc);

    tc = tcase_create("stream");
    tcase_add_test(tc, stream_busy_idle_failed);
    tcase_add_test(tc, stream_in_progress);
    tcase_add_test(tc, stream_all_failing);
    tcase_add_test(tc, stream_all_idle);
    suite_add_tcase(s, tc);

    tc = tcase_create("pool");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, pool_grows_and_shrinks);
    tcase_add_test(tc, pool_external_change);
    tcase_add_test(tc, eidle_is_no_error);
    tcase_add_test(tc, idle_wait_pauses);
    suite_add_tcase(s, tc);
    return s;
}
