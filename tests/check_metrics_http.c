/*
 * Serving the metrics (cmd/workersd/metrics/http.c, file.c) from a libev
 * loop on a thread of its own, as the daemon's loop: HTTP over a real
 * socket (200, 404, 405, 400, a port already in use), the textfile
 * written atomically, and a real Prometheus server on loopback that
 * scrapes the endpoint and answers a query for workersd_runs_total; and
 * workersd's exit when the listener cannot be set up: 78 for the address,
 * 70 for a descriptor that ran out.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemonutil.h"
#include "metrics/metrics.h"
#include "metricsutil.h"
#include "testutil.h"

#define MS 1000000ull

/* ---- the harness: a pool, its stats and a wd_metrics on a loop -------- */

/* Each worker succeeds `limit` times, then blocks until cancelled. */
static int
limited_run(workers_ctx *ctx, void *arg)
{
    _Atomic int *left = arg;

    if (atomic_fetch_sub(left, 1) <= 0) {
        while (workers_ctx_wait(ctx, 3600000 * MS) == 0)
            ;
        return WORKERS_ECANCELED;
    }
    return 0;
}

struct served {
    mu_loop l;
    wd_stats *st;
    wd_metrics *m;
    wd_facts f;
    workers_pool *pool;
    _Atomic int left;
};

static void
facts_of(void *arg, wd_facts *out)
{
    *out = ((struct served *)arg)->f;
}

/* Runs `runs` runs on one worker, then serves cfg on the loop thread. */
static void
serve(struct served *s, const struct wd_metrics_cfg *cfg, int runs)
{
    char err[WD_ERRLEN];
    wd_config wcfg = {0};

    s->f = (wd_facts){.pid = getpid(),
                      .version = "1.0.0",
                      .config = "pool.ini",
                      .start_unix = 1700000000,
                      .workers = 1,
                      .min = 1,
                      .max = 4};
    atomic_store(&s->left, runs);
    ck_assert_int_eq(wd_stats_new(&s->st), 0);
    workers_middleware mw = wd_stats_middleware(s->st, &wcfg);
    s->pool = workers_pool_must(NULL, &mw, 1);
    workers_job job = workers_job_func(limited_run, &s->left);
    ck_assert_int_eq(workers_pool_start(s->pool, &job), 0);
    mu_loop_init(&s->l);
    ck_assert_msg(wd_metrics_new(&s->m, s->l.loop, cfg, s->st, facts_of, s, err,
                                 sizeof err) == 0,
                  "%s", err);
    mu_loop_start(&s->l);
}

/* As the daemon ends, once the loop stopped: the pool first, so the
 * file's last write has the final counts. */
static void
teardown(struct served *s)
{
    workers_pool_free(s->pool);
    wd_metrics_free(s->m);
    mu_loop_free(&s->l);
    wd_stats_free(s->st);
}

static void
unserve(struct served *s)
{
    mu_loop_stop(&s->l);
    teardown(s);
}

/* True once every run but the blocked one has ended (s->left <= -1 after
 * the blocked run took its turn). */
static bool
runs_done(void *arg)
{
    struct served *s = arg;
    wd_stats_snapshot snap = {0};
    bool done;

    ck_assert_int_eq(wd_stats_read(s->st, &snap), 0);
    done = snap.busy == 1 &&
           snap.runs.ended[WD_OUTCOME_SUCCEEDED] + 1 == snap.runs.started;
    wd_stats_snapshot_free(&snap);
    return done && atomic_load(&s->left) < 0;
}

/* ---- HTTP ---------------------------------------------------------------- */

static char reply[65536];

static int
req(unsigned port, const char *request)
{
    return mu_http(port, request, reply, sizeof reply);
}

START_TEST(test_http_answers)
{
    struct wd_metrics_cfg cfg = {.listen = "127.0.0.1:0"};
    struct served s;
    serve(&s, &cfg, 3);
    unsigned port = wd_metrics_port(s.m);
    ck_assert_uint_ne(port, 0);

    ck_assert_int_eq(req(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n"
                               "Connection: close\r\n\r\n"),
                     200);
    ck_assert_ptr_nonnull(strstr(
        reply, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    ck_assert_ptr_nonnull(strstr(reply, "\r\n\r\n# HELP workersd_workers "));
    ck_assert_ptr_nonnull(strstr(reply, "\nworkersd_workers_max 4\n"));

    /* HEAD: the headers alone. A query string does not change the path. */
    ck_assert_int_eq(req(port, "HEAD /metrics HTTP/1.0\r\n\r\n"), 200);
    ck_assert_ptr_null(strstr(reply, "# HELP"));
    ck_assert_int_eq(req(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n"), 200);

    ck_assert_int_eq(req(port, "GET / HTTP/1.0\r\n\r\n"), 404);
    ck_assert_int_eq(req(port, "GET /metricsx HTTP/1.0\r\n\r\n"), 404);
    ck_assert_int_eq(req(port, "GET /metrics/ HTTP/1.0\r\n\r\n"), 404);
    ck_assert_int_eq(req(port, "POST /metrics HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 3\r\n\r\nabc"),
                     405);
    ck_assert_ptr_nonnull(strstr(reply, "Allow: GET, HEAD\r\n"));
    ck_assert_int_eq(req(port, "DELETE /metrics HTTP/1.0\r\n\r\n"), 405);
    ck_assert_int_eq(req(port, "BREW /metrics HTTP/1.0\r\n\r\n"), 405);

    /* Malformed requests: MHD answers them itself. */
    ck_assert_int_eq(req(port, "GET /metrics HTTP/9.9\r\n\r\n"), 505);
    ck_assert_int_eq(req(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: lots\r\n\r\n"),
                     400);
    ck_assert_int_eq(req(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n"
                               "Bad header line\r\n\r\n"),
                     400);

    /* The loop stopped, this thread may use the object: the status and
     * the STATUS line come from the same snapshot as the text. */
    mu_loop_stop(&s.l);
    ck_assert(tu_wait_until(runs_done, &s, TU_DEADLINE_MS));
    size_t len;
    const char *status = wd_metrics_status(s.m, &len);
    ck_assert_ptr_nonnull(status);
    json_error_t e;
    json_t *j = json_loadb(status, len, 0, &e);
    ck_assert_msg(j != NULL, "%s", e.text);
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(j, "runs"), "succeeded")),
                     3);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "busy")), 1);
    json_decref(j);
    char line[128];
    ck_assert_str_eq(wd_metrics_status_line(s.m, line, sizeof line),
                     "1 worker (1 busy), 4 runs, 0 failed");
    teardown(&s);
    /* The listening socket went with it. */
    ck_assert_int_eq(req(port, "GET /metrics HTTP/1.0\r\n\r\n"), -1);
}
END_TEST

START_TEST(test_http_port_in_use)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char err[WD_ERRLEN];
    int busy = wd_listen_open("127.0.0.1:0", err, sizeof err);
    ck_assert_int_ge(busy, 0);
    ck_assert_int_eq(getsockname(busy, (struct sockaddr *)&ss, &len), 0);
    unsigned port = ntohs(((struct sockaddr_in *)&ss)->sin_port);

    wd_stats *st;
    wd_metrics *m = NULL;
    mu_loop l;
    ck_assert_int_eq(wd_stats_new(&st), 0);
    mu_loop_init(&l);
    char *listen = du_fmt("127.0.0.1:%u", port);
    struct wd_metrics_cfg cfg = {.listen = listen};
    ck_assert_int_eq(
        wd_metrics_new(&m, l.loop, &cfg, st, NULL, NULL, err, sizeof err),
        -EADDRINUSE);
    ck_assert_str_eq(err, du_fmt("[metrics] Listen = %s: cannot listen: %s",
                                 listen, strerror(EADDRINUSE)));
    ck_assert_ptr_null(m);
    mu_loop_free(&l);
    wd_stats_free(st);
    close(busy);
}
END_TEST

/*
 * workersd with a [metrics] listener or a control socket that cannot be
 * set up exits with the code its cause calls for, with one line naming the
 * address or path and the cause: 78 when the address is taken (a restart
 * does not cure it), 70 when a descriptor ran out (one might).
 * tests/tools/fdfill leaves the daemon exactly 1 free descriptor (the
 * loop's epoll takes it: socket() fails) or 2 (libmicrohttpd's epoll
 * fails) under a limit of 64, which holds its one worker.
 */
START_TEST(test_daemon_setup_exit_codes)
{
    char err[WD_ERRLEN];
    int busy = wd_listen_open("127.0.0.1:0", err, sizeof err);
    ck_assert_int_ge(busy, 0);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    ck_assert_int_eq(getsockname(busy, (struct sockaddr *)&sin, &len), 0);
    char *sock = du_socket_path("setup.sock");
    const struct {
        const char *free; /* descriptors left, NULL: no fdfill */
        char *section;    /* of the ini */
        char *line;       /* the error line, after "workersd: error: " */
        int code;
    } cases[] = {
        {NULL,
         du_fmt("[metrics]\nListen = 127.0.0.1:%u\n", ntohs(sin.sin_port)),
         du_fmt("[metrics] Listen = 127.0.0.1:%u: cannot listen: %s",
                ntohs(sin.sin_port), strerror(EADDRINUSE)),
         WD_EXIT_CONFIG},
        {"1", "[metrics]\nListen = 127.0.0.1:0\n",
         du_fmt("[metrics] Listen = 127.0.0.1:0: socket: %s", strerror(EMFILE)),
         WD_EXIT_SOFTWARE},
        {"2", "[metrics]\nListen = 127.0.0.1:0\n",
         du_fmt("[metrics] Listen = 127.0.0.1:0: cannot start the HTTP "
                "server (libmicrohttpd): %s",
                strerror(EMFILE)),
         WD_EXIT_SOFTWARE},
        {"1", du_fmt("[control]\nSocket = %s\n", sock),
         du_fmt("control socket %s: socket: %s", sock, strerror(EMFILE)),
         WD_EXIT_SOFTWARE},
    };
    char *workersd = du_keep(tu_build_path("workersd"));
    char *fdfill = du_keep(tu_build_path("tests/tools/fdfill"));

    du_spawn_nofile(64, 64);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = du_mkdtemp();
        char *ini = du_write_str(
            dir, "test.ini",
            du_fmt("[pool]\nMax = 1\n[job]\nCommand = exec sleep 1000\n%s",
                   cases[i].section));
        const char *direct[] = {"-c", ini, NULL};
        const char *filled[] = {cases[i].free, workersd, "-c", ini, NULL};
        pid_t pid = cases[i].free == NULL
                        ? du_spawn(dir, direct, NULL, false)
                        : du_spawn_prog(fdfill, dir, filled, NULL, false);
        int code = du_wait(pid, TU_DEADLINE_MS);
        char *out = du_read(du_fmt("%s/err", dir));
        ck_assert_msg(code == cases[i].code, "case %zu: exit %d, want %d:\n%s",
                      i, code, cases[i].code, out);
        char *line = du_fmt("workersd: error: %s\n", cases[i].line);
        ck_assert_msg(strstr(out, line) != NULL, "case %zu: no \"%s\" in:\n%s",
                      i, line, out);
        du_rmtree(dir);
    }
    close(busy);
}
END_TEST

/* ---- the textfile -------------------------------------------------------- */

struct file_wait {
    const char *path;
    const char *needle;
};

static bool
file_has(void *arg)
{
    struct file_wait *w = arg;
    return du_count_in(w->path, w->needle) > 0;
}

START_TEST(test_textfile)
{
    char *dir = du_mkdtemp();
    char *path = du_fmt("%s/workersd.prom", dir);
    struct wd_metrics_cfg cfg = {.file = path, .interval_ns = 20 * MS};
    struct served s;
    serve(&s, &cfg, 5);

    /* Written at once, then rewritten as the counts move. */
    struct file_wait w = {path, "\nworkersd_runs_total{outcome=\"succeeded\"} "
                                "5\n"};
    ck_assert(tu_wait_until(file_has, &w, TU_DEADLINE_MS));
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    unserve(&s);

    /* The last write has the final counts; no temp file is left. */
    ck_assert_int_eq(du_count_in(path, "outcome=\"cancelled\"} 1\n"), 1);
    ck_assert_int_eq(du_count_in(path, "# TYPE workersd_build_info gauge\n"),
                     1);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);

    /* A folder that does not exist: a warning, not a failure. */
    cfg.file = du_fmt("%s/missing/workersd.prom", dir);
    serve(&s, &cfg, 1);
    unserve(&s);
    ck_assert_int_eq(access(cfg.file, F_OK), -1);
}
END_TEST

/* ---- a real Prometheus server ------------------------------------------- */

#define PROMETHEUS "/usr/bin/prometheus"

/* The value of the query's first sample ("7"), or NULL. */
static char *
query(unsigned port, const char *q)
{
    char *request = du_fmt("GET /api/v1/query?query=%s HTTP/1.0\r\n\r\n", q);
    if (req(port, request) != 200)
        return NULL;
    const char *body = strstr(reply, "\r\n\r\n");
    json_error_t e;
    json_t *j = body != NULL ? json_loads(body + 4, 0, &e) : NULL;
    json_t *sample = json_array_get(
        json_object_get(json_object_get(j, "data"), "result"), 0);
    json_t *metric = json_object_get(sample, "metric");
    const char *v =
        json_string_value(json_array_get(json_object_get(sample, "value"), 1));
    const char *job = json_string_value(json_object_get(metric, "job"));
    char *out = v != NULL && job != NULL && strcmp(job, "workersd") == 0
                    ? du_fmt("%s", v)
                    : NULL;
    json_decref(j);
    return out;
}

START_TEST(test_prometheus_scrapes)
{
    if (access(PROMETHEUS, X_OK) != 0) {
        fprintf(stderr,
                "metrics_http: %s not installed (Debian package "
                "prometheus): skipping the scrape test\n",
                PROMETHEUS);
        return;
    }
    struct wd_metrics_cfg cfg = {.listen = "127.0.0.1:0"};
    struct served s;
    serve(&s, &cfg, 7);

    char *dir = du_mkdtemp();
    char *conf = du_write_str(
        dir, "prometheus.yml",
        du_fmt("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
               "scrape_configs:\n  - job_name: workersd\n"
               "    static_configs:\n      - targets: ['127.0.0.1:%u']\n",
               wd_metrics_port(s.m)));
    unsigned port = mu_free_port();
    const char *args[] = {du_fmt("--config.file=%s", conf),
                          du_fmt("--storage.tsdb.path=%s/data", dir),
                          du_fmt("--web.listen-address=127.0.0.1:%u", port),
                          "--log.level=warn", NULL};
    pid_t prom = du_spawn_prog(PROMETHEUS, dir, args, NULL, false);

    /* Prometheus starts, scrapes within a second, and answers. */
    uint64_t t0 = tu_now_ms(), end = t0 + 60000;
    char *value = NULL;
    while (tu_now_ms() < end && waitpid(prom, NULL, WNOHANG) == 0) {
        value = query(port, "workersd_runs_total%7Boutcome%3D%22succeeded%22"
                            "%7D");
        if (value != NULL && strcmp(value, "7") == 0)
            break;
        tu_sleep_ms(200);
    }
    fprintf(stderr,
            "metrics_http: prometheus read the count back after "
            "%llu ms\n",
            (unsigned long long)(tu_now_ms() - t0));
    char *log = du_read(du_fmt("%s/err", dir));
    kill(prom, SIGTERM);
    int rc = du_wait(prom, TU_DEADLINE_MS);
    du_rmtree(dir);
    unserve(&s);
    ck_assert_msg(value != NULL && strcmp(value, "7") == 0,
                  "workersd_runs_total{outcome=\"succeeded\"} = %s; "
                  "prometheus said:\n%s",
                  value != NULL ? value : "(none)", log);
    ck_assert_int_eq(rc, 0);
}
END_TEST

Suite *make_metrics_http_suite(void);

Suite *
make_metrics_http_suite(void)
{
    Suite *s = suite_create("metrics_http");
    TCase *tc = tcase_create("metrics_http");

    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_http_answers);
    tcase_add_test(tc, test_http_port_in_use);
    tcase_add_test(tc, test_daemon_setup_exit_codes);
    tcase_add_test(tc, test_textfile);
    tcase_add_test(tc, test_prometheus_scrapes);
    suite_add_tcase(s, tc);
    return s;
}
