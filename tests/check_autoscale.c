/*
 * Tests of the autoscaler's decision (autoscale/policy.c) and its log line.
 *
 * The decision is driven without threads by a load model: demand D
 * worker-equivalents keeps min(D, N) of N workers busy, integrated between
 * ticks on an injected clock. Steps, a sine, bursts and noise; asserts
 * convergence (3 windows), overshoot (one worker above the steady size),
 * no oscillation, bounds, shrink rate. tests/check_autoscale_pool.c tests
 * the measurement and a real pool.
 */
#include "internal.h"

#include <check.h>
#include <errno.h>
#include <math.h>
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
} step_up_cases[] = {{0.5, 0.8}, {1, 0.8},   {2, 0.8},  {2.1, 0.8}, {3.2, 0.8},
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
                          loads[i], noise ? " +-8%" : "", s.nchanges - before,
                          s.n);
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
        ck_assert_msg(s.n <= largest_held(&s, d) + 1, "%d workers at %.2f", s.n,
                      d);
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

    /* Resumed at its size: measured afresh, not taken for another
     * caller's change (which would hold a shrink for a cooldown). */
    s.n = 8;
    sim_run(&s, const_demand, &d, s.now + s.tick);
    ck_assert_int_eq(s.last.reason, WORKERS_AUTOSCALE_MEASURING);
    ck_assert_int_eq(s.reasons[WORKERS_AUTOSCALE_EXTERNAL], 1);
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
    return s;
}
