/*
 * The renderers (cmd/workersd/metrics/): the Prometheus text, checked by
 * its names and by `promtool check metrics`; the status JSON, parsed back
 * by jansson, hostile strings included; the STATUS= wording; and the
 * [metrics] keys of the ini file. Snapshots are made by hand where a case
 * needs exact numbers, and by a real pool for promtool.
 */
#include <check.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemonutil.h"
#include "metrics/metrics.h"
#include "testutil.h"

#define MS 1000000ull
#define SEC (1000 * MS)

static wd_facts
facts(void)
{
    return (wd_facts){.pid = 4242,
                      .version = "1.0.0",
                      .config = "/etc/workersd/pool.ini",
                      .start_unix = 1700000000.5,
                      .start_ns = 1000 * SEC,
                      .workers = 4,
                      .min = 1,
                      .max = 8,
                      .reloads = 2};
}

/* 1,234 runs started: 1,228 succeeded, 2 failed, 1 timed out, 3 running
 * on workers 1..3; worker 4 idle. */
static wd_stats_snapshot
snapshot(wd_stats_worker *w)
{
    wd_stats_snapshot s = {.now_ns = 1100 * SEC, .unix_time = 1700000100.5};

    s.runs.started = 1234;
    s.runs.ended[WD_OUTCOME_SUCCEEDED] = 1228;
    s.runs.ended[WD_OUTCOME_FAILED] = 2;
    s.runs.ended[WD_OUTCOME_TIMED_OUT] = 1;
    s.runs.ended[WD_OUTCOME_IDLE] = 7;
    s.runs.retried = 5;
    s.runs.sum_ns = 2 * SEC + 5;
    s.runs.buckets[0] = 1000;
    s.runs.buckets[3] = 200;
    s.runs.buckets[WD_STATS_NBOUNDS] = 31;
    s.busy = 3;
    s.last_error = (wd_stats_error){.set = true,
                                    .worker = 2,
                                    .code = 1,
                                    .message = "exit 1",
                                    .age_ns = 2 * SEC + SEC / 2,
                                    .unix_time = 1700000098.0};
    for (unsigned i = 0; i < 4; i++)
        w[i] = (wd_stats_worker){.id = i + 1,
                                 .state =
                                     i < 3 ? WD_WORKER_RUNNING : WD_WORKER_IDLE,
                                 .runs = 300 + i,
                                 .failures = i == 1 ? 3 : 0,
                                 .in_run = i < 3,
                                 .run_age_ns = i < 3 ? (i + 1) * SEC / 10 : 0};
    s.workers = w;
    s.nworkers = s.cap = 4;
    return s;
}

static char *
render(const wd_stats_snapshot *s, const wd_facts *f)
{
    wd_buf b = {0};
    ck_assert_int_eq(wd_prom_render(s, f, &b), 0);
    return du_keep(b.data);
}

START_TEST(test_prom_names)
{
    wd_stats_worker w[4];
    wd_stats_snapshot s = snapshot(w);
    wd_facts f = facts();
    char *text = render(&s, &f);

    static const char *const lines[] = {
        "# TYPE workersd_workers gauge\nworkersd_workers 4\n",
        "# TYPE workersd_workers_busy gauge\nworkersd_workers_busy 3\n",
        "workersd_workers_min 1\n",
        "workersd_workers_max 8\n",
        "# TYPE workersd_paused gauge\nworkersd_paused 0\n",
        "# TYPE workersd_runs_total counter\n",
        "workersd_runs_total{outcome=\"succeeded\"} 1228\n",
        "workersd_runs_total{outcome=\"failed\"} 2\n",
        "workersd_runs_total{outcome=\"timed_out\"} 1\n",
        "workersd_runs_total{outcome=\"cancelled\"} 0\n",
        "workersd_runs_total{outcome=\"idle\"} 7\n",
        "workersd_runs_retried_total 5\n",
        "# TYPE workersd_run_duration_seconds histogram\n",
        "workersd_run_duration_seconds_bucket{le=\"0.001\"} 1000\n",
        "workersd_run_duration_seconds_bucket{le=\"0.005\"} 1000\n",
        "workersd_run_duration_seconds_bucket{le=\"0.01\"} 1200\n",
        "workersd_run_duration_seconds_bucket{le=\"3600\"} 1200\n",
        "workersd_run_duration_seconds_bucket{le=\"+Inf\"} 1231\n",
        "workersd_run_duration_seconds_sum 2.000000005\n",
        "workersd_run_duration_seconds_count 1231\n",
        "# TYPE workersd_reloads_total counter\nworkersd_reloads_total 2\n",
        "workersd_start_time_seconds 1700000000.500\n",
        "workersd_build_info{version=\"1.0.0\"} 1\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        ck_assert_msg(strstr(text, lines[i]) != NULL, "missing %s in:\n%s",
                      lines[i], text);
    /* Every family has its HELP; no instance label; no autoscale family
     * when it is not configured. */
    ck_assert_int_eq(du_count_in_text(text, "# HELP "),
                     du_count_in_text(text, "# TYPE "));
    ck_assert_ptr_null(strstr(text, "instance"));
    ck_assert_ptr_null(strstr(text, "autoscale"));
    ck_assert_ptr_null(strstr(text, "utilisation"));

    /* Configured: its gauges. */
    f.autoscale = (struct wd_autoscale_facts){
        .configured = true, .on = true, .target = 0.8, .utilisation = 0.97};
    text = render(&s, &f);
    ck_assert_ptr_nonnull(strstr(text,
                                 "# TYPE workersd_autoscale_enabled "
                                 "gauge\nworkersd_autoscale_enabled 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "# TYPE workersd_autoscale_target "
                                       "gauge\nworkersd_autoscale_target "
                                       "0.800\n"));
    ck_assert_ptr_nonnull(strstr(text, "# TYPE workersd_utilisation gauge\n"
                                       "workersd_utilisation 0.970\n"));
    ck_assert_int_eq(du_count_in_text(text, "# HELP "),
                     du_count_in_text(text, "# TYPE "));
    f.autoscale = (struct wd_autoscale_facts){0};

    /* Unlimited Max, paused, a version that needs escaping. */
    f.max = 0;
    f.paused = true;
    f.version = "1.0\"x\\y\nz";
    text = render(&s, &f);
    ck_assert_ptr_nonnull(strstr(text, "workersd_workers_max +Inf\n"));
    ck_assert_ptr_nonnull(strstr(text, "workersd_paused 1\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "workersd_build_info{version=\"1.0\\\"x\\\\y\\nz\"} 1\n"));
}
END_TEST

/* A real pool's snapshot, rendered and checked by promtool. */
static int
odd_fails(workers_ctx *ctx, void *arg)
{
    _Atomic int *runs = arg;
    int n = atomic_fetch_add(runs, 1);

    if (n >= 20) {
        while (workers_ctx_wait(ctx, 3600 * SEC) == 0)
            ;
        return WORKERS_ECANCELED;
    }
    return n % 4 == 3 ? WORKERS_ETIMEDOUT : n % 2;
}

static bool
twenty_runs(void *arg)
{
    return atomic_load((_Atomic int *)arg) > 20;
}

START_TEST(test_promtool_accepts)
{
    if (access("/usr/bin/promtool", X_OK) != 0) {
        fprintf(stderr, "metrics: promtool not installed (Debian package "
                        "prometheus): skipping the promtool check\n");
        return;
    }
    _Atomic int runs = 0;
    wd_config cfg = {0};
    wd_stats *st;
    wd_stats_snapshot snap = {0};
    ck_assert_int_eq(wd_stats_new(&st), 0);
    workers_middleware mw = wd_stats_middleware(st, &cfg);
    workers_pool *pool = workers_pool_must(NULL, &mw, 1);
    workers_job job = workers_job_func(odd_fails, &runs);
    ck_assert_int_eq(workers_pool_start(pool, &job), 0);
    ck_assert(tu_wait_until(twenty_runs, &runs, TU_DEADLINE_MS));
    ck_assert_int_eq(wd_stats_read(st, &snap), 0);
    wd_facts f = facts();
    f.max = 0;
    char *text = render(&snap, &f);
    workers_pool_free(pool);
    wd_stats_snapshot_free(&snap);
    wd_stats_free(st);

    char *dir = du_mkdtemp();
    char *in = du_write_str(dir, "metrics.prom", text);
    char *out = du_fmt("%s/promtool.out", dir);
    int rc = system(du_fmt("/usr/bin/promtool check metrics < '%s' > '%s' "
                           "2>&1",
                           in, out));
    char *said = du_read(out);
    du_rmtree(dir);
    ck_assert_msg(rc == 0 && *said == '\0', "promtool (status %d): %s", rc,
                  said);
}
END_TEST

/* ---- JSON --------------------------------------------------------------- */

/* The status text, parsed back by jansson. */
static json_t *
status_back(const wd_stats_snapshot *s, const wd_facts *f)
{
    wd_buf b = {0};
    json_error_t e;

    ck_assert_int_eq(wd_status_json(s, f, &b), 0);
    ck_assert_ptr_null(strchr(b.data, '\n')); /* one line */
    json_t *back = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &e);
    ck_assert_msg(back != NULL, "%s: %s", e.text, b.data);
    ck_assert(json_is_object(back));
    wd_buf_free(&b);
    return back;
}

static json_int_t
int_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
    return json_integer_value(v);
}

START_TEST(test_json_fields)
{
    wd_stats_worker w[4];
    wd_stats_snapshot s = snapshot(w);
    wd_facts f = facts();
    json_t *o = status_back(&s, &f);

    ck_assert_int_eq(int_at(o, "pid"), 4242);
    ck_assert_str_eq(json_string_value(json_object_get(o, "version")), "1.0.0");
    ck_assert(json_real_value(json_object_get(o, "uptime_s")) == 100.0);
    ck_assert_str_eq(json_string_value(json_object_get(o, "config")),
                     "/etc/workersd/pool.ini");
    ck_assert_int_eq(int_at(o, "workers"), 4);
    ck_assert_int_eq(int_at(o, "min"), 1);
    ck_assert_int_eq(int_at(o, "max"), 8);
    ck_assert_int_eq(int_at(o, "busy"), 3);
    ck_assert(json_is_false(json_object_get(o, "paused")));
    ck_assert(json_is_false(json_object_get(o, "closing")));
    ck_assert_int_eq(int_at(o, "reloads"), 2);
    json_t *runs = json_object_get(o, "runs");
    ck_assert_int_eq(int_at(runs, "started"), 1234);
    ck_assert_int_eq(int_at(runs, "succeeded"), 1228);
    ck_assert_int_eq(int_at(runs, "failed"), 2);
    ck_assert_int_eq(int_at(runs, "timed_out"), 1);
    ck_assert_int_eq(int_at(runs, "cancelled"), 0);
    ck_assert_int_eq(int_at(runs, "idle"), 7);
    ck_assert_int_eq(int_at(runs, "retried"), 5);
    ck_assert(json_is_null(json_object_get(o, "autoscale")));
    json_decref(o);

    /* [autoscale] configured: its object; "" decision is null. */
    f.autoscale = (struct wd_autoscale_facts){
        .configured = true, .target = 0.8, .utilisation = 0.25};
    o = status_back(&s, &f);
    json_t *as = json_object_get(o, "autoscale");
    ck_assert(json_is_false(json_object_get(as, "enabled")));
    ck_assert(json_real_value(json_object_get(as, "target")) == 0.8);
    ck_assert(json_real_value(json_object_get(as, "utilisation")) == 0.25);
    ck_assert(json_is_null(json_object_get(as, "last_decision")));
    json_decref(o);
    f.autoscale.on = true;
    snprintf(f.autoscale.decision, sizeof f.autoscale.decision,
             "4 -> 7 workers (utilisation 0.97 over 10s, target 0.80)");
    o = status_back(&s, &f);
    as = json_object_get(o, "autoscale");
    ck_assert(json_is_true(json_object_get(as, "enabled")));
    ck_assert_str_eq(json_string_value(json_object_get(as, "last_decision")),
                     f.autoscale.decision);
    json_t *le = json_object_get(o, "last_error");
    ck_assert_int_eq(int_at(le, "worker"), 2);
    ck_assert_int_eq(int_at(le, "code"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(le, "message")),
                     "exit 1");
    ck_assert(json_real_value(json_object_get(le, "age_s")) == 2.5);
    ck_assert(json_real_value(json_object_get(le, "unix_time")) ==
              1700000098.0);
    json_t *list = json_object_get(o, "worker_list");
    ck_assert_uint_eq(json_array_size(list), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *wi = json_array_get(list, i);
        ck_assert_int_eq(int_at(wi, "id"), (json_int_t)i + 1);
        ck_assert_str_eq(json_string_value(json_object_get(wi, "state")),
                         i < 3 ? "running" : "idle");
        ck_assert_int_eq(int_at(wi, "runs"), 300 + (json_int_t)i);
        ck_assert_int_eq(int_at(wi, "failures"), i == 1 ? 3 : 0);
        json_t *age = json_object_get(wi, "run_age_s");
        if (i < 3)
            ck_assert(json_real_value(age) == (double)(i + 1) / 10);
        else
            ck_assert(json_is_null(age));
    }
    json_decref(o);

    /* No error yet, unlimited Max, paused. */
    s.last_error = (wd_stats_error){0};
    f.max = 0;
    f.paused = true;
    o = status_back(&s, &f);
    ck_assert(json_is_null(json_object_get(o, "last_error")));
    ck_assert(json_is_null(json_object_get(o, "max")));
    ck_assert(json_is_true(json_object_get(o, "paused")));
    json_decref(o);
}
END_TEST

/* Quotes, backslashes, newlines, control bytes and invalid UTF-8 (a stray
 * byte, an overlong form, a surrogate, a cut sequence) in the config path
 * and the error message: the JSON still parses, valid UTF-8 (é, €, 😀)
 * survives, each invalid byte becomes U+FFFD. */
START_TEST(test_json_hostile_strings)
{
    static const char hostile[] = "/tmp/a\"b\\c\nd\t\x01"
                                  "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"
                                  "\xFF\xC0\xAF\xED\xA0\x80\xE2\x82.ini";
#define FFFD "\xEF\xBF\xBD"
    static const char repaired[] =
        "/tmp/a\"b\\c\nd\t\x01"
        "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80" FFFD FFFD FFFD FFFD FFFD FFFD
            FFFD FFFD ".ini";
    wd_stats_worker w[4];
    wd_stats_snapshot s = snapshot(w);
    wd_facts f = facts();

    f.config = hostile;
    snprintf(s.last_error.message, sizeof s.last_error.message, "%s",
             "it said \"no\\\"\n\xFE");
    json_t *o = status_back(&s, &f);
    ck_assert_str_eq(json_string_value(json_object_get(o, "config")), repaired);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(o, "last_error"), "message")),
                     "it said \"no\\\"\n" FFFD);
    json_decref(o);

    /* Valid text goes through untouched. */
    json_t *t = wd_json_text("plain \xE2\x82\xAC");
    ck_assert_str_eq(json_string_value(t), "plain \xE2\x82\xAC");
    json_decref(t);
#undef FFFD
}
END_TEST

/* ---- STATUS= ------------------------------------------------------------ */

static const char *
line(const wd_stats_snapshot *s, const wd_facts *f)
{
    static char buf[256];
    return wd_status_line(s, f, buf, sizeof buf);
}

START_TEST(test_status_wording)
{
    wd_stats_worker w[4];
    wd_stats_snapshot s = snapshot(w);
    wd_facts f = facts();

    ck_assert_str_eq(line(&s, &f), "4 workers (3 busy), 1,234 runs, 3 "
                                   "failed; last error 2s ago: exit 1");
    f.paused = true;
    ck_assert_str_eq(line(&s, &f), "paused: 4 workers (3 busy), 1,234 "
                                   "runs, 3 failed; last error 2s ago: exit 1");
    f.paused = false;
    f.autoscale.configured = true;
    ck_assert_str_eq(line(&s, &f), "4 workers (3 busy, autoscale off), 1,234 "
                                   "runs, 3 failed; last error 2s ago: exit 1");
    f.autoscale.on = true;
    ck_assert_ptr_nonnull(strstr(line(&s, &f), "(3 busy, autoscaled), "));
    /* The last decision, before the last error. */
    snprintf(f.autoscale.decision, sizeof f.autoscale.decision,
             "4 -> 7 workers (utilisation 0.97 over 10s, target 0.80)");
    ck_assert_str_eq(line(&s, &f),
                     "4 workers (3 busy, autoscaled), 1,234 runs, 3 failed; "
                     "autoscale: 4 -> 7 workers (utilisation 0.97 over 10s, "
                     "target 0.80); last error 2s ago: exit 1");
    /* The longest of each part fits the daemon's buffer whole. */
    char big[WD_STATUS_LINE_MAX];
    wd_stats_snapshot most = s;
    most.runs.started = UINT64_MAX;
    most.runs.ended[WD_OUTCOME_FAILED] = UINT64_MAX / 2;
    most.busy = UINT32_MAX;
    memset(f.autoscale.decision, 'd', sizeof f.autoscale.decision - 1);
    memset(most.last_error.message, 'e', sizeof most.last_error.message - 1);
    most.last_error.message[sizeof most.last_error.message - 1] = '\0';
    f.workers = INT_MAX;
    f.paused = true;
    f.autoscale.on = false;
    wd_status_line(&most, &f, big, sizeof big);
    ck_assert_msg(strlen(big) < sizeof big - 1 &&
                      strstr(big, most.last_error.message) != NULL,
                  "%zu: %s", strlen(big), big);

    /* Singular, no error, big numbers, the other age units. */
    wd_stats_snapshot one = {.busy = 1, .runs.started = 1};
    f = facts();
    f.workers = 1;
    ck_assert_str_eq(line(&one, &f), "1 worker (1 busy), 1 run, 0 failed");
    one.busy = 0;
    one.runs.started = 0;
    f.workers = 0;
    ck_assert_str_eq(line(&one, &f), "0 workers (0 busy), 0 runs, 0 failed");
    one.runs.started = 1234567;
    one.runs.ended[WD_OUTCOME_FAILED] = 1000;
    one.last_error = (wd_stats_error){
        .set = true, .age_ns = 5 * 60 * SEC + 59 * SEC, .message = "code 3"};
    f.workers = 1000;
    ck_assert_str_eq(line(&one, &f), "1,000 workers (0 busy), 1,234,567 runs, "
                                     "1,000 failed; last error 5min ago: "
                                     "code 3");
    one.last_error.age_ns = 3 * 3600 * SEC;
    ck_assert_ptr_nonnull(strstr(line(&one, &f), "last error 3h ago"));
    one.last_error.age_ns = 2 * 86400 * SEC;
    ck_assert_ptr_nonnull(strstr(line(&one, &f), "last error 2d ago"));

    /* Closing: runs left and the deadline, rounded up to whole seconds. */
    f.closing = true;
    s.now_ns = 100 * SEC;
    f.deadline_ns = s.now_ns + 11 * SEC + 1;
    ck_assert_str_eq(line(&s, &f), "closing: 3 runs left, deadline in 12s");
    s.busy = 1;
    f.deadline_ns = 0;
    ck_assert_str_eq(line(&s, &f), "closing: 1 run left, no deadline");
    s.busy = 0;
    f.deadline_ns = s.now_ns;
    ck_assert_str_eq(line(&s, &f), "closing: 0 runs left, deadline passed");
}
END_TEST

/* ---- [metrics] in the ini file ----------------------------------------- */

static int
load(const char *text, wd_config *cfg, char *err)
{
    char *dir = du_mkdtemp();
    char *path = du_write_str(dir, "pool.ini", text);
    int rc = wd_config_load(path, cfg, err, WD_ERRLEN);
    du_rmtree(dir);
    return rc;
}

START_TEST(test_config_keys)
{
    char err[WD_ERRLEN];
    wd_config cfg;

    ck_assert_int_eq(load("[job]\nCommand = true\n", &cfg, err), 0);
    ck_assert_ptr_null(cfg.metrics.listen);
    ck_assert_ptr_null(cfg.metrics.file);
    ck_assert_uint_eq(cfg.metrics.interval_ns, 15 * SEC);
    wd_config_free(&cfg);

    ck_assert_int_eq(load("[job]\nCommand = true\n[metrics]\n"
                          "Listen = [::1]:9717\nFile = /var/lib/x.prom\n"
                          "Interval = 500ms\n",
                          &cfg, err),
                     0);
    ck_assert_str_eq(cfg.metrics.listen, "[::1]:9717");
    ck_assert_str_eq(cfg.metrics.file, "/var/lib/x.prom");
    ck_assert_uint_eq(cfg.metrics.interval_ns, 500 * MS);
    wd_config_free(&cfg);

    static const struct {
        const char *text, *error;
    } bad[] = {
        {"[metrics]\nListen = 127.0.0.1:65536\n",
         ":5: Listen = 127.0.0.1:65536: the port must be"},
        {"[metrics]\nListen = example.com:80\n",
         ":5: Listen = example.com:80: not HOST:PORT"},
        {"[metrics]\nListen = [::1]9717\n", "expected [IPv6 address]:port"},
        {"[metrics]\nListen = ::1:9717\n", "not HOST:PORT"},
        {"[metrics]\nInterval = 0\n", ":5: Interval = 0: must be above 0"},
        {"[metrics]\nFile = a.prom ; note\n", "inline comment"},
        {"[metrics]\nBogus = 1\n", "unknown key in [metrics]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *text = du_fmt("[job]\nCommand = true\n\n%s", bad[i].text);
        ck_assert_int_eq(load(text, &cfg, err), -1);
        ck_assert_msg(strstr(err, bad[i].error) != NULL, "%s: got %s",
                      bad[i].text, err);
    }

    /* The address forms listen.c takes. */
    struct sockaddr_storage ss;
    socklen_t len;
    const char *why;
    ck_assert_int_eq(wd_listen_parse("9717", &ss, &len, &why), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_int_eq(wd_listen_parse("localhost:0", &ss, &len, &why), 0);
    ck_assert_int_eq(wd_listen_parse("0.0.0.0:80", &ss, &len, &why), 0);
    ck_assert_int_eq(wd_listen_parse("[::]:80", &ss, &len, &why), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    ck_assert_int_eq(wd_listen_parse(":80", &ss, &len, &why), -1);
    ck_assert_int_eq(wd_listen_parse("1.2.3.4:", &ss, &len, &why), -1);
    ck_assert_int_eq(wd_listen_parse("1.2.3.4:-1", &ss, &len, &why), -1);
}
END_TEST

Suite *make_metrics_suite(void);

Suite *
make_metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_prom_names);
    tcase_add_test(tc, test_promtool_accepts);
    tcase_add_test(tc, test_json_fields);
    tcase_add_test(tc, test_json_hostile_strings);
    tcase_add_test(tc, test_status_wording);
    tcase_add_test(tc, test_config_keys);
    suite_add_tcase(s, tc);
    return s;
}
