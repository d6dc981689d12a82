/*
 * The control channel (cmd/workersd/control/) and workersctl, without the
 * daemon: a fake daemon -- the server on its own libev loop, in a thread of
 * the test, with a handler that records each request and answers as the
 * daemon would -- and the real workersctl binary, or a raw client, against
 * it. Also the parts on their own: request parsing, socket paths, the
 * [control] keys of the ini file, the socket file's life.
 *
 * Every test works in a scratch folder of its own; all go once the suite
 * ran.
 */
#include "control/control.h"
#include "daemonutil.h"
#include "metrics/metrics.h"
#include "testutil.h"
#include "workersd.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEC 1000000000ull
/* A uid and a group no one uses, for the permission tests (root only). */
#define NOBODY 65534
#define GROUP 4321

/* ---- the scratch folders ----------------------------------------------- */

/* One root for the test case, made and removed by the unchecked fixture
 * (in the runner's process, so it goes even when a test fails: a failed
 * assertion _exits the forked test), and a folder per test inside it. */
static char root[80], scratch[96];

/* In the runner's socket folder: the sockets of the tests are in it. */
static void
make_root(void)
{
    snprintf(root, sizeof root, "%s", du_socket_path("ctl.XXXXXX"));
    if (mkdtemp(root) == NULL)
        abort();
}

static void
remove_root(void)
{
    du_rmtree(root);
}

static void
make_scratch(void)
{
    snprintf(scratch, sizeof scratch, "%s/t.XXXXXX", root);
    ck_assert_ptr_nonnull(mkdtemp(scratch));
}

static char *
in_scratch(const char *name)
{
    return du_fmt("%s/%s", scratch, name);
}

/* ---- the fake daemon -------------------------------------------------- */

/* The config string of the status reply: quotes, a backslash, a newline
 * and a byte that is not UTF-8 must all reach the client intact (the last
 * as U+FFFD). */
#define HOSTILE "/etc/a \"b\" \\c\nd\xff.ini"
#define HOSTILE_JSON "/etc/a \"b\" \\c\nd\xef\xbf\xbd.ini"

static struct fake {
    char path[108];
    struct ev_loop *loop;
    wd_control *ctl;
    pthread_t thread;
    ev_async wake;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* Under mu: */
    wd_control_request calls[64];
    int ncalls;
    int stop_exit; /* >= 0: answer the pending stop with this code */
    bool quit;
    /* The loop thread's: */
    wd_control_client *stop;
} F;

static json_t *
status_reply(void)
{
    json_t *list = json_pack(
        "[{s:i,s:s,s:i,s:i,s:f},{s:i,s:s,s:i,s:i,s:n},{s:i,s:s,s:i,s:i,s:f}]",
        "id", 3, "state", "backoff", "runs", 7, "failures", 7, "run_age_s", 0.5,
        "id", 1, "state", "idle", "runs", 120, "failures", 0, "run_age_s", "id",
        2, "state", "running", "runs", 99, "failures", 1, "run_age_s", 75.0);

    return json_pack("{s:b,s:i,s:i,s:i,s:i,s:b,s:o,s:i,s:i,s:o}", "ok", 1,
                     "pid", 4242, "workers", 3, "min", 1, "max", 8, "paused", 0,
                     "config", wd_json_text(HOSTILE), "reloads", 2, "busy", 2,
                     "worker_list", list);
}

/* Answers as workersd would, from a pool of 3 workers within [1, 8]. */
static void
handler(void *data, wd_control_client *c, const wd_control_request *req)
{
    struct fake *f = data;
    json_t *r = NULL;
    int to;

    pthread_mutex_lock(&f->mu);
    if (f->ncalls < 64)
        f->calls[f->ncalls++] = *req;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
    switch (req->cmd) {
    case WD_CONTROL_STATUS:
        r = status_reply();
        break;
    case WD_CONTROL_SET:
        r = req->n > 8 ? wd_control_fail(1,
                                         "set %d: above Max (8): nothing "
                                         "changed",
                                         req->n)
                       : wd_control_ok("workers: 3 -> %d", req->n);
        break;
    case WD_CONTROL_MORE:
    case WD_CONTROL_LESS:
        to = req->cmd == WD_CONTROL_MORE ? 3 + req->n : 3 - req->n;
        if (to > 8)
            r = wd_control_ok("workers: 3 -> 8 (max reached)");
        else if (to < 1)
            r = wd_control_ok("workers: 3 -> 1 (min reached)");
        else
            r = wd_control_ok("workers: 3 -> %d", to);
        break;
    case WD_CONTROL_PAUSE:
        r = wd_control_ok("paused");
        break;
    case WD_CONTROL_RESUME:
        r = wd_control_ok("resumed");
        break;
    case WD_CONTROL_RELOAD:
        r = wd_control_fail(78, "reload refused: pool.ini:3: Max = x: not a "
                                "whole number");
        break;
    case WD_CONTROL_STOP:
        f->stop = c; /* answered by on_wake, as at the daemon's exit */
        return;
    case WD_CONTROL_METRICS:
        r = wd_control_ok("metrics");
        json_object_set_new(r, "text", json_string("workersd_workers 3\n"));
        break;
    case WD_CONTROL_AUTOSCALE:
        r = wd_control_ok("autoscale %s", req->on ? "on" : "off");
        break;
    }
    wd_control_reply(c, r);
}

static void
on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    struct fake *f = w->data;
    int code;
    bool quit;

    (void)revents;
    pthread_mutex_lock(&f->mu);
    code = f->stop_exit;
    f->stop_exit = -1;
    quit = f->quit;
    pthread_mutex_unlock(&f->mu);
    if (code >= 0 && f->stop != NULL) {
        json_t *r = wd_control_ok("workersd exited with code %d", code);
        json_object_set_new(r, "exit", json_integer(code));
        wd_control_reply(f->stop, r);
        f->stop = NULL;
    }
    if (quit) {
        wd_control_free(f->ctl);
        f->ctl = NULL;
        ev_async_stop(loop, w);
        ev_break(loop, EVBREAK_ALL);
    }
}

static void *
loop_main(void *arg)
{
    ev_run(arg, 0);
    return NULL;
}

/* Opens the server at scratch/ctl.sock, then hands its loop to a thread. */
static void
fake_start(unsigned mode, gid_t group)
{
    pthread_condattr_t ca;
    char err[512] = "";

    snprintf(F.path, sizeof F.path, "%s/ctl.sock", scratch);
    wd_control_settings s = {NULL, F.path, mode, group, handler, &F};
    pthread_mutex_init(&F.mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&F.cond, &ca);
    F.stop_exit = -1;
    F.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    ck_assert_ptr_nonnull(F.loop);
    ck_assert_msg(wd_control_open(F.loop, &s, &F.ctl, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_ptr_nonnull(F.ctl);
    ck_assert_str_eq(wd_control_path_of(F.ctl), F.path);
    ev_async_init(&F.wake, on_wake);
    F.wake.data = &F;
    ev_async_start(F.loop, &F.wake);
    ck_assert_int_eq(pthread_create(&F.thread, NULL, loop_main, F.loop), 0);
}

/* Asks the loop to answer the pending stop with code. */
static void
fake_answer_stop(int code)
{
    pthread_mutex_lock(&F.mu);
    F.stop_exit = code;
    pthread_mutex_unlock(&F.mu);
    ev_async_send(F.loop, &F.wake);
}

/* Frees the server on its loop (the socket file goes) and joins. */
static void
fake_stop(void)
{
    pthread_mutex_lock(&F.mu);
    F.quit = true;
    pthread_mutex_unlock(&F.mu);
    ev_async_send(F.loop, &F.wake);
    pthread_join(F.thread, NULL);
    ev_loop_destroy(F.loop);
}

/* Waits until the handler had n calls; returns how many it had. */
static int
wait_calls(int n)
{
    struct timespec end;
    int got;

    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += TU_DEADLINE_MS / 1000;
    pthread_mutex_lock(&F.mu);
    while (F.ncalls < n &&
           pthread_cond_timedwait(&F.cond, &F.mu, &end) != ETIMEDOUT)
        ;
    got = F.ncalls;
    pthread_mutex_unlock(&F.mu);
    return got;
}

static wd_control_request
call(int i)
{
    wd_control_request r;

    ck_assert_int_ge(wait_calls(i + 1), i + 1);
    pthread_mutex_lock(&F.mu);
    r = F.calls[i];
    pthread_mutex_unlock(&F.mu);
    return r;
}

/* ---- workersctl ------------------------------------------------------- */

/* Starts workersctl with args (NULL-terminated); its stdout and stderr go
 * to scratch/out and scratch/err, emptied first. */
static pid_t
ctl_spawn(const char *const *args)
{
    unlink(in_scratch("out"));
    unlink(in_scratch("err"));
    return du_spawn_bin("workersctl", scratch, args, NULL, false);
}

/* Runs workersctl -s F.path ARGS... to its end: its exit code. */
static int
ctl(const char *first, ...)
{
    const char *args[16] = {"-s", F.path, first};
    size_t n = 3;
    va_list ap;

    va_start(ap, first);
    while (first != NULL && n < 15 && (args[n] = va_arg(ap, char *)) != NULL)
        n++;
    va_end(ap);
    args[first == NULL ? 2 : n] = NULL;
    return du_wait(ctl_spawn(args), TU_DEADLINE_MS);
}

static char *
ctl_out(void)
{
    return du_read(in_scratch("out"));
}

static char *
ctl_err(void)
{
    return du_read(in_scratch("err"));
}

/* ---- a raw client ------------------------------------------------------- */

static int
raw_connect(const char *path)
{
    int fd = du_connect_unix(path);

    ck_assert_msg(fd >= 0, "connect %s: %s", path, strerror(errno));
    return fd;
}

static void
raw_send(int fd, const char *data, size_t len)
{
    ck_assert_int_eq(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads the reply up to its newline or the end, within timeout_ms: the
 * text ("" when the server closed without one). */
static char *
raw_read(int fd, unsigned timeout_ms)
{
    static char buf[8192];
    size_t len = 0;
    uint64_t end = tu_now_ms() + timeout_ms;

    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        uint64_t now = tu_now_ms();
        ssize_t n;

        ck_assert_msg(now < end, "no reply within %u ms", timeout_ms);
        if (poll(&p, 1, (int)(end - now)) <= 0)
            continue;
        n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(buf, '\n', len) != NULL)
            break;
    }
    buf[len] = '\0';
    return buf;
}

/* The reply as JSON: it must parse, as an object. */
static json_t *
raw_reply(int fd, unsigned timeout_ms)
{
    json_error_t jerr;
    char *text = raw_read(fd, timeout_ms);
    json_t *r = json_loads(text, 0, &jerr);

    ck_assert_msg(json_is_object(r), "not a JSON object: '%s' (%s)", text,
                  jerr.text);
    return r;
}

static const char *
member(const json_t *r, const char *key)
{
    const char *s = json_string_value(json_object_get(r, key));
    return s ? s : "";
}

/* True when fd has nothing to read and is not closed: still waiting. */
static bool
still_open(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
}

/* ---- requests ------------------------------------------------------------ */

static const struct {
    const char *line;
    int rc;
    enum wd_control_cmd cmd;
    int n;
    bool on;
    bool has_timeout;
    uint64_t timeout_ns;
    const char *err; /* a part of the message */
} parses[] = {
    {"status", 0, WD_CONTROL_STATUS, 0, 0, 0, 0, NULL},
    {" \tstatus \t", 0, WD_CONTROL_STATUS, 0, 0, 0, 0, NULL},
    {"set 4", 0, WD_CONTROL_SET, 4, 0, 0, 0, NULL},
    {"set 0", 0, WD_CONTROL_SET, 0, 0, 0, 0, NULL},
    {"set 1000000", 0, WD_CONTROL_SET, 1000000, 0, 0, 0, NULL},
    {"set 1000001", -1, 0, 0, 0, 0, 0,
     "set: '1000001' is not a whole number from 0 to 1000000"},
    {"set 99999999999999999999", -1, 0, 0, 0, 0, 0, "is not a whole number"},
    {"set", -1, 0, 0, 0, 0, 0, "set: missing N"},
    {"set -1", -1, 0, 0, 0, 0, 0, "'-1' is not a whole number"},
    {"set +1", -1, 0, 0, 0, 0, 0, "'+1' is not a whole number"},
    {"set 4x", -1, 0, 0, 0, 0, 0, "'4x' is not a whole number"},
    {"set 4 5", -1, 0, 0, 0, 0, 0, "set: too many arguments ('5')"},
    {"more", 0, WD_CONTROL_MORE, 1, 0, 0, 0, NULL},
    {"more 3", 0, WD_CONTROL_MORE, 3, 0, 0, 0, NULL},
    {"more 0", -1, 0, 0, 0, 0, 0, "'0' is not a whole number from 1 to"},
    {"less", 0, WD_CONTROL_LESS, 1, 0, 0, 0, NULL},
    {"less 2", 0, WD_CONTROL_LESS, 2, 0, 0, 0, NULL},
    {"pause", 0, WD_CONTROL_PAUSE, 0, 0, 0, 0, NULL},
    {"resume", 0, WD_CONTROL_RESUME, 0, 0, 0, 0, NULL},
    {"reload", 0, WD_CONTROL_RELOAD, 0, 0, 0, 0, NULL},
    {"reload now", -1, 0, 0, 0, 0, 0, "reload: takes no argument ('now')"},
    {"stop", 0, WD_CONTROL_STOP, 0, 0, false, 0, NULL},
    {"stop 10s", 0, WD_CONTROL_STOP, 0, 0, true, 10 * SEC, NULL},
    {"stop 0", 0, WD_CONTROL_STOP, 0, 0, true, 0, NULL},
    {"stop 500ms", 0, WD_CONTROL_STOP, 0, 0, true, SEC / 2, NULL},
    {"stop soon", -1, 0, 0, 0, 0, 0, "stop: 'soon' is not a duration"},
    {"metrics", 0, WD_CONTROL_METRICS, 0, 0, 0, 0, NULL},
    {"autoscale on", 0, WD_CONTROL_AUTOSCALE, 0, true, 0, 0, NULL},
    {"autoscale off", 0, WD_CONTROL_AUTOSCALE, 0, false, 0, 0, NULL},
    {"autoscale", -1, 0, 0, 0, 0, 0, "autoscale: missing on or off"},
    {"autoscale yes", -1, 0, 0, 0, 0, 0, "'yes': expected on or off"},
    {"", -1, 0, 0, 0, 0, 0, "empty request"},
    {"STATUS", -1, 0, 0, 0, 0, 0,
     "unknown command 'STATUS' (status, set, more, less, pause, resume, "
     "reload, stop, metrics, autoscale)"},
    {"bo\x01gus", -1, 0, 0, 0, 0, 0, "unknown command 'bo?gus'"},
};

START_TEST(test_parse)
{
    for (size_t i = 0; i < sizeof parses / sizeof parses[0]; i++) {
        wd_control_request req;
        char err[256] = "";
        int rc = wd_control_parse(parses[i].line, &req, err, sizeof err);

        ck_assert_msg(rc == parses[i].rc, "'%s': rc %d (%s)", parses[i].line,
                      rc, err);
        if (rc != 0) {
            ck_assert_msg(strstr(err, parses[i].err) != NULL,
                          "'%s': '%s' lacks '%s'", parses[i].line, err,
                          parses[i].err);
            continue;
        }
        ck_assert_int_eq(req.cmd, parses[i].cmd);
        ck_assert_int_eq(req.n, parses[i].n);
        ck_assert_int_eq(req.on, parses[i].on);
        ck_assert_int_eq(req.has_timeout, parses[i].has_timeout);
        ck_assert_uint_eq(req.timeout_ns, parses[i].timeout_ns);
        char first[16];
        ck_assert_int_eq(sscanf(parses[i].line, "%15s", first), 1);
        ck_assert_str_eq(wd_control_cmd_name(req.cmd), first);
    }
}
END_TEST

/* ---- replies ------------------------------------------------------------ */

#define FFFD "\xef\xbf\xbd"

START_TEST(test_replies)
{
    static const struct {
        const char *in, *out;
    } strings[] = {
        {"plain \"q\" \\ \n", "plain \"q\" \\ \n"},
        {"caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80"},
        {"\xff", FFFD},
        {"a\xc3", "a" FFFD},                       /* a cut sequence */
        {"\xc0\xaf", FFFD FFFD},                   /* overlong */
        {"\xed\xa0\x80", FFFD FFFD FFFD},          /* a surrogate */
        {"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD}, /* above U+10FFFF */
    };
    size_t len;
    char *text;

    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        json_t *j = wd_json_text(strings[i].in);
        ck_assert_msg(json_is_string(j), "case %zu", i);
        ck_assert_str_eq(json_string_value(j), strings[i].out);
        json_decref(j);
    }
    text = wd_control_reply_text(wd_control_fail(78, "bad \xff"), &len);
    ck_assert_str_eq(text,
                     "{\"ok\":false,\"error\":\"bad " FFFD "\",\"exit\":78}\n");
    ck_assert_uint_eq(len, strlen(text));
    free(text);
    text = wd_control_reply_text(NULL, &len);
    ck_assert_str_eq(text, "{\"ok\":false,\"error\":\"out of memory\","
                           "\"exit\":1}\n");
    free(text);
}
END_TEST

/* ---- socket paths ------------------------------------------------------- */

static const struct {
    const char *ini, *socket;
    uid_t uid;
    const char *runtime_dir;
    int rc;
    const char *out; /* the path, or a part of the message */
} paths[] = {
    {"/etc/workersd/pool.ini", NULL, 0, NULL, 1, "/run/workersd/pool.sock"},
    {"/etc/workersd/pool.ini", NULL, 0, "/run/user/0", 1,
     "/run/workersd/pool.sock"},
    {"conf/plugin.ini", NULL, 1000, "/run/user/1000", 1,
     "/run/user/1000/workersd/plugin.sock"},
    {"jobs.conf", NULL, 0, NULL, 1, "/run/workersd/jobs.conf.sock"},
    {NULL, NULL, 0, NULL, 1, "/run/workersd/pool.sock"},
    {"/a/pool.ini", NULL, 1000, NULL, 0, "XDG_RUNTIME_DIR is not set"},
    {"/a/pool.ini", NULL, 1000, "relative", 0, "XDG_RUNTIME_DIR is not set"},
    {"/a/pool.ini", "none", 0, NULL, 0, ""},
    {"/a/pool.ini", "None", 1000, NULL, 0, ""},
    {"/a/pool.ini", "/srv/w.sock", 1000, NULL, 1, "/srv/w.sock"},
    {"/a/pool.ini", "w.sock", 0, NULL, -1,
     "control socket w.sock: not an absolute path (or none)"},
    {"/a/pool.ini", "/srv/", 0, NULL, -1, "a folder, not a socket path"},
};

START_TEST(test_paths)
{
    char out[256], err[256], longest[108], too_long[109], xdg[120];

    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int rc = wd_control_path(paths[i].ini, paths[i].socket, paths[i].uid,
                                 paths[i].runtime_dir, out, sizeof out, err,
                                 sizeof err);
        ck_assert_msg(rc == paths[i].rc, "case %zu: rc %d (%s)", i, rc, err);
        if (rc == 1)
            ck_assert_str_eq(out, paths[i].out);
        else if (paths[i].out[0] == '\0')
            ck_assert_str_eq(err, "");
        else
            ck_assert_msg(strstr(err, paths[i].out), "case %zu: '%s'", i, err);
    }
    /* sun_path holds 107 bytes and a NUL. */
    memset(longest, 'a', sizeof longest - 1);
    longest[0] = '/', longest[sizeof longest - 1] = '\0';
    memset(too_long, 'a', sizeof too_long - 1);
    too_long[0] = '/', too_long[sizeof too_long - 1] = '\0';
    ck_assert_ptr_null(wd_control_socket_invalid(longest));
    ck_assert_int_eq(
        wd_control_path(NULL, longest, 0, NULL, out, sizeof out, err, 256), 1);
    ck_assert_str_eq(wd_control_socket_invalid(too_long),
                     "too long for a Unix socket (at most 107 bytes)");
    ck_assert_int_eq(
        wd_control_path(NULL, too_long, 0, NULL, out, sizeof out, err, 256),
        -1);
    /* A default path can be too long too: a long XDG_RUNTIME_DIR. */
    memset(xdg, 'x', sizeof xdg - 1);
    xdg[0] = '/', xdg[sizeof xdg - 1] = '\0';
    ck_assert_int_eq(wd_control_path("p.ini", NULL, 1000, xdg, out, sizeof out,
                                     err, sizeof err),
                     -1);
    ck_assert_msg(strstr(err, "too long for a Unix socket"), "%s", err);
}
END_TEST

/* ---- the [control] keys -----------------------------------------------------
 */

START_TEST(test_config_keys)
{
    static const struct {
        const char *text, *err;
    } bad[] = {
        {"Socket = w.sock", ":4: Socket = w.sock: not an absolute path"},
        {"Socket = /a ; comment", ":4: Socket = /a: ' ;' starts an inline"},
        {"SocketMode = 0400",
         ":4: SocketMode = 0400: must give the owner read and write"},
        {"SocketMode = 0888", ":4: SocketMode = 0888: not an octal mode"},
        {"SocketMode = rw", ":4: SocketMode = rw: not an octal mode"},
        {"SocketMode = 01777", ":4: SocketMode = 01777: too large"},
        {"SocketGroup = no-such-group-wd",
         ":4: SocketGroup = no-such-group-wd: no such group"},
        {"SocketGroup = 4294967295", ":4: SocketGroup = 4294967295: not a"},
        {"Sockets = /a", ":4: Sockets = /a: unknown key in [control]"},
    };
    const char *head = "[job]\nCommand = true\n[control]\n";
    char err[WD_ERRLEN] = "";
    wd_config cfg;

    make_scratch();
    ck_assert_int_eq(wd_config_load(du_write_str(scratch, "a.ini", head), &cfg,
                                    err, sizeof err),
                     0);
    ck_assert_ptr_null(cfg.socket);
    ck_assert_uint_eq(cfg.socket_mode, 0);
    ck_assert_uint_eq(cfg.socket_group, (gid_t)-1);
    wd_config_free(&cfg);

    ck_assert_msg(wd_config_load(du_write_str(scratch, "b.ini",
                                              du_fmt("%sSocket = /srv/w.sock\n"
                                                     "SocketMode = 660\n"
                                                     "SocketGroup = root\n",
                                                     head)),
                                 &cfg, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_str_eq(cfg.socket, "/srv/w.sock");
    ck_assert_uint_eq(cfg.socket_mode, 0660);
    ck_assert_uint_eq(cfg.socket_group, 0);
    wd_config_free(&cfg);

    ck_assert_msg(wd_config_load(du_write_str(scratch, "c.ini",
                                              du_fmt("%sSocket = none\n"
                                                     "SocketGroup = %d\n",
                                                     head, GROUP)),
                                 &cfg, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_str_eq(cfg.socket, "none");
    ck_assert_uint_eq(cfg.socket_group, GROUP);
    wd_config_free(&cfg);

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *path = du_write_str(scratch, "bad.ini",
                                  du_fmt("%s%s\n", head, bad[i].text));
        ck_assert_int_eq(wd_config_load(path, &cfg, err, sizeof err), -1);
        ck_assert_msg(strstr(err, du_fmt("%s%s", path, bad[i].err)), "'%s': %s",
                      bad[i].text, err);
    }
}
END_TEST

/* ---- workersctl against the fake daemon ---------------------------------- */

START_TEST(test_commands)
{
    static const struct {
        const char *args[4];
        int exit;
        enum wd_control_cmd cmd;
        int n;
        bool on;
        const char *out, *err;
    } cases[] = {
        {{"set", "4"}, 0, WD_CONTROL_SET, 4, 0, "workers: 3 -> 4\n", ""},
        {{"set", "9"},
         1,
         WD_CONTROL_SET,
         9,
         0,
         "",
         "workersctl: set 9: above Max (8): nothing changed\n"},
        {{"more"}, 0, WD_CONTROL_MORE, 1, 0, "workers: 3 -> 4\n", ""},
        {{"more", "10"},
         0,
         WD_CONTROL_MORE,
         10,
         0,
         "workers: 3 -> 8 (max reached)\n",
         ""},
        {{"less", "2"}, 0, WD_CONTROL_LESS, 2, 0, "workers: 3 -> 1\n", ""},
        {{"pause"}, 0, WD_CONTROL_PAUSE, 0, 0, "paused\n", ""},
        {{"resume"}, 0, WD_CONTROL_RESUME, 0, 0, "resumed\n", ""},
        {{"reload"},
         78,
         WD_CONTROL_RELOAD,
         0,
         0,
         "",
         "workersctl: reload refused: pool.ini:3: Max = x: not a whole "
         "number\n"},
        {{"metrics"}, 0, WD_CONTROL_METRICS, 0, 0, "workersd_workers 3\n", ""},
        {{"autoscale", "on"},
         0,
         WD_CONTROL_AUTOSCALE,
         0,
         true,
         "autoscale on\n",
         ""},
        {{"autoscale", "off"},
         0,
         WD_CONTROL_AUTOSCALE,
         0,
         false,
         "autoscale off\n",
         ""},
        {{"--json", "set", "4"},
         0,
         WD_CONTROL_SET,
         4,
         0,
         "{\"ok\":true,\"message\":\"workers: 3 -> 4\"}\n",
         ""},
        {{"set", "9", "--json"},
         1,
         WD_CONTROL_SET,
         9,
         0,
         "{\"ok\":false,\"error\":\"set 9: above Max (8): nothing "
         "changed\",\"exit\":1}\n",
         ""},
    };

    make_scratch();
    fake_start(0, (gid_t)-1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[8] = {"-s", F.path};
        size_t n = 2;
        for (size_t j = 0; j < 4 && cases[i].args[j]; j++)
            args[n++] = cases[i].args[j];
        pid_t pid = ctl_spawn(args);
        int code = du_wait(pid, TU_DEADLINE_MS);
        wd_control_request req = call((int)i);

        ck_assert_msg(code == cases[i].exit, "%s: exit %d, stderr: %s",
                      cases[i].args[0], code, ctl_err());
        ck_assert_str_eq(ctl_out(), cases[i].out);
        ck_assert_str_eq(ctl_err(), cases[i].err);
        ck_assert_int_eq(req.cmd, cases[i].cmd);
        ck_assert_int_eq(req.n, cases[i].n);
        ck_assert_int_eq(req.on, cases[i].on);
        /* The server names who asked: this very workersctl. */
        ck_assert_int_eq(req.uid, geteuid());
        ck_assert_int_eq(req.pid, pid);
    }
    fake_stop();
    /* The socket file goes with the server. */
    ck_assert_int_ne(access(F.path, F_OK), 0);
}
END_TEST

/* Usage errors exit 64 before any connection, with the parser's message. */
START_TEST(test_usage)
{
    static const struct {
        const char *args[5];
        const char *err;
    } cases[] = {
        {{NULL}, "missing COMMAND"},
        {{"set"}, "set: missing N"},
        {{"set", "x"}, "set: 'x' is not a whole number from 0 to 1000000"},
        {{"more", "-1"}, "more: '-1' is not a whole number from 1"},
        {{"bogus"}, "unknown command 'bogus'"},
        {{"autoscale", "maybe"}, "'maybe': expected on or off"},
        {{"status", "--timeout", "1s"}, "--timeout: only stop takes it"},
        {{"stop", "--timeout"}, "--timeout: missing its DURATION"},
        {{"stop", "--timeout", "soon"}, "stop: 'soon' is not a duration"},
        {{"stop", "--bogus"}, "unknown option after the command"},
        {{"-c", "x.ini", "status"}, "give -s SOCKET or -c FILE, not both"},
    };

    make_scratch();
    fake_start(0, (gid_t)-1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[8] = {"-s", F.path};
        size_t n = 2;
        for (size_t j = 0; j < 5 && cases[i].args[j]; j++)
            args[n++] = cases[i].args[j];
        ck_assert_int_eq(du_wait(ctl_spawn(args), TU_DEADLINE_MS), 64);
        ck_assert_msg(strstr(ctl_err(), cases[i].err), "%s: %s", cases[i].err,
                      ctl_err());
    }
    ck_assert_int_eq(ctl("--bogus", NULL), 64);
    ck_assert_int_eq(ctl("--help", NULL), 0);
    ck_assert_ptr_nonnull(strstr(ctl_out(), "usage: workersctl"));
    ck_assert_int_eq(ctl("-V", NULL), 0);
    ck_assert_ptr_nonnull(
        strstr(ctl_out(), "workersctl " WORKERS_VERSION_STRING));
    ck_assert_int_eq(wait_calls(0), 0);
    fake_stop();
}
END_TEST

START_TEST(test_status)
{
    json_error_t jerr;
    json_t *r;
    char *out;

    make_scratch();
    fake_start(0, (gid_t)-1);
    ck_assert_int_eq(ctl("status", NULL), 0);
    out = ctl_out();
    ck_assert_msg(strncmp(out,
                          "workersd 4242: running, 3 workers (2 busy), min 1, "
                          "max 8, 2 reloads, config /etc/a",
                          82) == 0,
                  "%s", out);
    /* The table, sorted by id, with the age of each run in progress. */
    char *h = strstr(out, "    ID  STATE          RUNS  FAILURES  RUN AGE\n");
    char *w1 = strstr(out, "     1  idle            120         0  -\n");
    char *w2 = strstr(out, "     2  running          99         1  1m15s\n");
    char *w3 = strstr(out, "     3  backoff           7         7  0.5s\n");
    ck_assert_msg(h && w1 && w2 && w3 && h < w1 && w1 < w2 && w2 < w3, "%s",
                  out);

    /* --json: the reply as it is, strings intact. */
    ck_assert_int_eq(ctl("--json", "status", NULL), 0);
    r = json_loads(ctl_out(), 0, &jerr);
    ck_assert_msg(json_is_object(r), "%s", jerr.text);
    ck_assert_str_eq(member(r, "config"), HOSTILE_JSON);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "pid")), 4242);
    ck_assert_int_eq(json_array_size(json_object_get(r, "worker_list")), 3);
    json_decref(r);
    fake_stop();
}
END_TEST

/* stop waits for the daemon's exit and returns its code. */
START_TEST(test_stop)
{
    const char *args[] = {"-s", F.path, "stop", "--timeout", "10s", NULL};
    int st;
    pid_t pid;

    make_scratch();
    fake_start(0, (gid_t)-1);
    args[1] = F.path;
    pid = ctl_spawn(args);
    wd_control_request req = call(0);
    ck_assert_int_eq(req.cmd, WD_CONTROL_STOP);
    ck_assert(req.has_timeout);
    ck_assert_uint_eq(req.timeout_ns, 10 * SEC);
    /* The handler has it and has not answered: workersctl waits. */
    ck_assert_int_eq(waitpid(pid, &st, WNOHANG), 0);
    fake_answer_stop(2);
    ck_assert_int_eq(du_wait(pid, TU_DEADLINE_MS), 2);
    ck_assert_str_eq(ctl_out(), "workersd exited with code 2\n");

    args[3] = "--timeout=1min";
    args[4] = NULL;
    pid = ctl_spawn(args);
    req = call(1);
    ck_assert_uint_eq(req.timeout_ns, 60 * SEC);
    fake_answer_stop(0);
    ck_assert_int_eq(du_wait(pid, TU_DEADLINE_MS), 0);

    args[3] = NULL;
    pid = ctl_spawn(args);
    ck_assert(!call(2).has_timeout);
    fake_answer_stop(0);
    ck_assert_int_eq(du_wait(pid, TU_DEADLINE_MS), 0);
    fake_stop();
}
END_TEST

/* No daemon: exit 69, whatever the reason. */
START_TEST(test_no_daemon)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *stale = in_scratch("stale.sock");
    int fd;

    make_scratch();
    stale = in_scratch("stale.sock");
    snprintf(F.path, sizeof F.path, "%s", in_scratch("none.sock"));
    ck_assert_int_eq(ctl("status", NULL), 69);
    ck_assert_ptr_nonnull(strstr(ctl_err(), "no workersd at "));
    ck_assert_ptr_nonnull(strstr(ctl_err(), "No such file or directory"));

    /* A crashed daemon's socket: the file, and nobody listening. */
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", stale);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    snprintf(F.path, sizeof F.path, "%s", stale);
    ck_assert_int_eq(ctl("status", NULL), 69);
    ck_assert_ptr_nonnull(strstr(ctl_err(), "Connection refused"));

    /* Socket = none in the ini file. */
    const char *args[] = {
        "-c", du_write_str(scratch, "off.ini", "[control]\nSocket = none\n"),
        "status", NULL};
    ck_assert_int_eq(du_wait(ctl_spawn(args), TU_DEADLINE_MS), 69);
    ck_assert_ptr_nonnull(strstr(ctl_err(), "the control socket is off"));
    /* An ini file that is not there is a usage error. */
    args[1] = in_scratch("missing.ini");
    ck_assert_int_eq(du_wait(ctl_spawn(args), TU_DEADLINE_MS), 64);
}
END_TEST

/* -c finds the socket the ini file names, even in a file the daemon would
 * now refuse (a broken edit, about to be reloaded). */
START_TEST(test_config_option)
{
    const char *args[] = {"-c", NULL, "more", "2", NULL};

    make_scratch();
    fake_start(0, (gid_t)-1);
    args[1] = du_write_str(scratch, "pool.ini",
                           du_fmt("[pool]\nMax = x\nnot a line\n[control]\n"
                                  "Socket = %s\n",
                                  F.path));
    ck_assert_int_eq(du_wait(ctl_spawn(args), TU_DEADLINE_MS), 0);
    ck_assert_int_eq(call(0).n, 2);
    fake_stop();
}
END_TEST

/* 16 clients at once are served; a 17th is told "busy" at once. */
START_TEST(test_many_clients)
{
    const char *args[] = {"-s", NULL, "status", NULL};
    pid_t pids[WD_CONTROL_CLIENTS];
    int fds[WD_CONTROL_CLIENTS], extra;
    json_t *r;

    make_scratch();
    fake_start(0, (gid_t)-1);
    args[1] = F.path;
    for (int i = 0; i < WD_CONTROL_CLIENTS; i++)
        pids[i] = du_spawn_bin("workersctl", scratch, args, NULL, false);
    for (int i = 0; i < WD_CONTROL_CLIENTS; i++)
        ck_assert_int_eq(du_wait(pids[i], TU_DEADLINE_MS), 0);
    ck_assert_int_eq(wait_calls(WD_CONTROL_CLIENTS), WD_CONTROL_CLIENTS);

    /* 16 silent clients fill every slot (the server takes connections in
     * their order), so the 17th finds none. */
    for (int i = 0; i < WD_CONTROL_CLIENTS; i++)
        fds[i] = raw_connect(F.path);
    extra = raw_connect(F.path);
    r = raw_reply(extra, TU_DEADLINE_MS);
    ck_assert(json_is_false(json_object_get(r, "ok")));
    ck_assert_str_eq(member(r, "error"), "busy: 16 clients already, try again");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "exit")), 1);
    json_decref(r);
    close(extra);
    ck_assert_int_eq(ctl("status", NULL), 1);
    ck_assert_ptr_nonnull(strstr(ctl_err(), "busy"));

    /* One of them asks and is answered: its slot is free before the next
     * connection is taken (one loop thread does both, in turn). */
    raw_send(fds[0], "pause\n", 6);
    r = raw_reply(fds[0], TU_DEADLINE_MS);
    ck_assert_str_eq(member(r, "message"), "paused");
    json_decref(r);
    ck_assert_int_eq(ctl("resume", NULL), 0);
    for (int i = 0; i < WD_CONTROL_CLIENTS; i++)
        close(fds[i]);
    fake_stop();
}
END_TEST

/* A silent client and one that sends a byte a second stall nobody, and
 * are dropped WD_CONTROL_IDLE_S after they connected. */
START_TEST(test_slow_clients)
{
    uint64_t t0;
    int silent, slow, sent = 0;
    json_t *r;

    make_scratch();
    fake_start(0, (gid_t)-1);
    t0 = tu_now_ms();
    silent = raw_connect(F.path);
    slow = raw_connect(F.path);
    raw_send(slow, "s", 1);
    ck_assert_int_eq(ctl("status", NULL), 0);
    ck_assert_int_eq(ctl("set", "2", NULL), 0);
    /* Served while both still hold their connections. */
    ck_assert(still_open(silent));
    ck_assert(still_open(slow));

    /* A byte a second, paced by the wait for the drop itself. */
    for (;;) {
        struct pollfd p = {slow, POLLIN, 0};
        if (poll(&p, 1, 1000) > 0)
            break;
        ck_assert_uint_lt(tu_now_ms() - t0, TU_DEADLINE_MS);
        send(slow, "t", 1, MSG_NOSIGNAL);
        sent++;
    }
    ck_assert_uint_ge(tu_now_ms() - t0, 4500);
    ck_assert_int_ge(sent, 3);
    r = raw_reply(slow, TU_DEADLINE_MS);
    ck_assert_str_eq(member(r, "error"), "no whole request within 5s");
    json_decref(r);
    r = raw_reply(silent, TU_DEADLINE_MS);
    ck_assert_str_eq(member(r, "error"), "no whole request within 5s");
    json_decref(r);
    ck_assert_int_eq(wait_calls(2), 2);
    close(silent);
    close(slow);
    fake_stop();
}
END_TEST

/* What a request may be: one line of at most 4 KiB, its newline included. */
START_TEST(test_request_bounds)
{
    char big[WD_CONTROL_REQUEST_MAX];
    json_t *r;
    int fd;

    make_scratch();
    fake_start(0, (gid_t)-1);

    memset(big, 'a', sizeof big);
    fd = raw_connect(F.path);
    raw_send(fd, big, sizeof big);
    r = raw_reply(fd, TU_DEADLINE_MS);
    ck_assert_str_eq(member(r, "error"), "request too long (more than 4096 "
                                         "bytes)");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "exit")), 64);
    json_decref(r);
    close(fd);

    /* 4095 bytes and the newline: read whole, parsed (and refused). */
    big[sizeof big - 1] = '\n';
    fd = raw_connect(F.path);
    raw_send(fd, big, sizeof big);
    r = raw_reply(fd, TU_DEADLINE_MS);
    ck_assert_msg(strncmp(member(r, "error"), "unknown command 'aaa", 20) == 0,
                  "%s", member(r, "error"));
    json_decref(r);
    close(fd);

    /* The end of the client's writes ends the request too. */
    fd = raw_connect(F.path);
    raw_send(fd, "set 5", 5);
    shutdown(fd, SHUT_WR);
    r = raw_reply(fd, TU_DEADLINE_MS);
    ck_assert_str_eq(member(r, "message"), "workers: 3 -> 5");
    json_decref(r);
    close(fd);
    ck_assert_int_eq(call(0).n, 5);

    /* CRLF; a second line is not read. */
    fd = raw_connect(F.path);
    raw_send(fd, "set 6\r\nstop\n", 12);
    json_decref(raw_reply(fd, TU_DEADLINE_MS));
    close(fd);
    ck_assert_int_eq(call(1).n, 6);

    fd = raw_connect(F.path);
    raw_send(fd, "set\0 7\n", 7);
    r = raw_reply(fd, TU_DEADLINE_MS);
    ck_assert_str_eq(member(r, "error"), "NUL byte in the request");
    json_decref(r);
    close(fd);

    /* A connection that sends nothing and goes (a daemon's probe). */
    close(raw_connect(F.path));
    ck_assert_int_eq(ctl("status", NULL), 0);
    ck_assert_int_eq(wait_calls(3), 3);
    ck_assert_int_eq(call(2).cmd, WD_CONTROL_STATUS);
    fake_stop();
}
END_TEST

/* A client that leaves before its deferred reply; one left pending when
 * the server is freed. */
START_TEST(test_gone_clients)
{
    int fd;

    make_scratch();
    fake_start(0, (gid_t)-1);
    fd = raw_connect(F.path);
    raw_send(fd, "stop\n", 5);
    call(0);
    close(fd);
    fake_answer_stop(0);
    ck_assert_int_eq(ctl("status", NULL), 0);

    fd = raw_connect(F.path);
    raw_send(fd, "stop\n", 5);
    call(2);
    fake_stop();
    ck_assert_str_eq(raw_read(fd, TU_DEADLINE_MS), "");
    close(fd);
}
END_TEST

/* ---- the socket file
 * ---------------------------------------------------------- */

START_TEST(test_socket_file)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    wd_control_socket s, other;
    char err[512];
    struct stat st;
    const char *sub, *file;
    gid_t group = geteuid() == 0 ? GROUP : getegid();
    int fd;

    make_scratch();
    /* A crashed daemon's socket is replaced. */
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/ctl.sock", scratch);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    fake_start(0, (gid_t)-1);
    ck_assert_int_eq(ctl("status", NULL), 0);

    /* A live one is not, nor is a file that is not a socket. */
    ck_assert_int_eq(
        wd_control_listen(F.path, 0600, (gid_t)-1, &s, err, sizeof err), -1);
    ck_assert_str_eq(err, du_fmt("control socket %s: another process is "
                                 "serving it (is workersd already running "
                                 "with this config?)",
                                 F.path));
    ck_assert_int_eq(ctl("status", NULL), 0);
    file = du_write_str(scratch, "file.sock", "keep");
    ck_assert_int_eq(
        wd_control_listen(file, 0600, (gid_t)-1, &s, err, sizeof err), -1);
    ck_assert_str_eq(err, du_fmt("control socket %s: the path exists and is "
                                 "not a socket",
                                 file));
    ck_assert_str_eq(du_read(file), "keep");
    fake_stop();
    ck_assert_int_ne(access(F.path, F_OK), 0);

    /* The folder is made when missing; the mode is 0600 by default. */
    sub = in_scratch("sub/ctl.sock");
    ck_assert_int_eq(
        wd_control_listen(sub, 0600, (gid_t)-1, &s, err, sizeof err), 0);
    ck_assert_int_eq(stat(in_scratch("sub"), &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0700);
    ck_assert_int_eq(stat(sub, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    /* Removed only while it is still ours. */
    ck_assert_int_eq(unlink(sub), 0);
    ck_assert_int_eq(
        wd_control_listen(sub, 0600, (gid_t)-1, &other, err, sizeof err), 0);
    wd_control_unlink(sub, &s);
    ck_assert_int_eq(access(sub, F_OK), 0);
    wd_control_unlink(sub, &other);
    ck_assert_int_ne(access(sub, F_OK), 0);

    /* SocketMode and SocketGroup: on the socket, and the folder lets the
     * group through. */
    sub = in_scratch("grp/ctl.sock");
    ck_assert_msg(wd_control_listen(sub, 0660, group, &s, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(stat(sub, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0660);
    ck_assert_uint_eq(st.st_gid, group);
    ck_assert_int_eq(stat(in_scratch("grp"), &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0710);
    ck_assert_uint_eq(st.st_gid, group);
    wd_control_unlink(sub, &s);

    ck_assert_int_eq(
        wd_control_listen(sub, 0400, (gid_t)-1, &s, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "give the owner read and write"));
}
END_TEST

/* ---- who may act (root only: it changes uids) -------------------------- */

/*
 * In a child: drops to uid NOBODY with primary group gid and, when
 * supplementary is not (gid_t)-1, that supplementary group; sends
 * "set 4" on a raw connection and writes the reply to out. Or, with
 * exec_ctl, runs workersctl as that user instead (its output to out).
 */
static pid_t
as_nobody(gid_t gid, gid_t supplementary, bool exec_ctl, int out)
{
    pid_t pid = du_fork();

    if (pid == 0) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char buf[512];
        ssize_t n;
        int fd;

        if (setgroups(supplementary == (gid_t)-1 ? 0 : 1, &supplementary) ||
            setresgid(gid, gid, gid) || setresuid(NOBODY, NOBODY, NOBODY))
            _exit(120);
        if (exec_ctl) {
            char *bin = tu_build_path("workersctl");
            dup2(out, 1);
            dup2(out, 2);
            execl(bin, bin, "-s", F.path, "set", "4", (char *)NULL);
            _exit(127);
        }
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", F.path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            _exit(121);
        /* A refused client may find the socket closed already. */
        send(fd, "set 4\n", 6, MSG_NOSIGNAL);
        while ((n = read(fd, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n)
                _exit(122);
        _exit(0);
    }
    return pid;
}

/* What the child wrote, once it exited with code. */
static char *
child_output(pid_t pid, int fds[2], int code)
{
    static char buf[1024];
    ssize_t n;

    close(fds[1]);
    ck_assert_int_eq(du_wait(pid, TU_DEADLINE_MS), code);
    n = read(fds[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    return buf;
}

START_TEST(test_permission)
{
    char *log, *out;
    int fds[2], logfd;
    pid_t pid;
    json_t *r;

    if (geteuid() != 0) {
        printf("skipped: not root, the permission test cannot change "
               "uids\n");
        return;
    }
    make_scratch();
    /* Everyone may reach and connect to the socket: SO_PEERCRED decides.
     * (The runner's private folder is searchable by all: check_main.c.) */
    ck_assert_int_eq(chmod(root, 0711), 0);
    ck_assert_int_eq(chmod(scratch, 0711), 0);
    logfd = open(in_scratch("log"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ck_assert_int_eq(dup2(logfd, 2), 2);
    fake_start(0666, GROUP);

    /* Not root, not the daemon's uid, not in its group: refused, logged. */
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    pid = as_nobody(NOBODY, (gid_t)-1, false, fds[1]);
    r = json_loads(child_output(pid, fds, 0), 0, NULL);
    ck_assert(json_is_false(json_object_get(r, "ok")));
    ck_assert_str_eq(member(r, "error"), "permission denied");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "exit")), 1);
    json_decref(r);
    log = du_read(in_scratch("log"));
    ck_assert_msg(strstr(log, du_fmt("warning: control: permission denied to "
                                     "uid %d pid %ld",
                                     NOBODY, (long)pid)),
                  "%s", log);

    /* The real workersctl, as that user: exit 1. */
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    pid = as_nobody(NOBODY, (gid_t)-1, true, fds[1]);
    close(fds[1]);
    int code = du_wait(pid, TU_DEADLINE_MS);
    if (code == 127) {
        printf("skipped: uid %d cannot run %s\n", NOBODY,
               (char *)du_keep(tu_build_path("workersctl")));
    } else {
        ck_assert_int_eq(code, 1);
        char buf[512];
        ssize_t n = read(fds[0], buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = '\0';
        ck_assert_str_eq(buf, "workersctl: permission denied\n");
    }
    close(fds[0]);
    ck_assert_int_eq(wait_calls(0), 0);

    /* A member of SocketGroup may act, by a supplementary group ... */
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    pid = as_nobody(NOBODY, GROUP, false, fds[1]);
    out = child_output(pid, fds, 0);
    ck_assert_str_eq(out, "{\"ok\":true,\"message\":\"workers: 3 -> 4\"}\n");
    ck_assert_int_eq(call(0).uid, NOBODY);
    ck_assert_int_eq(call(0).pid, pid);
    /* ... or by its primary group. */
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    pid = as_nobody(GROUP, (gid_t)-1, false, fds[1]);
    out = child_output(pid, fds, 0);
    ck_assert_str_eq(out, "{\"ok\":true,\"message\":\"workers: 3 -> 4\"}\n");
    ck_assert_int_eq(wait_calls(2), 2);
    fake_stop();
}
END_TEST

Suite *make_control_suite(void);

Suite *
make_control_suite(void)
{
    Suite *s = suite_create("control");
    TCase *tc = tcase_create("control");

    tcase_add_unchecked_fixture(tc, make_root, remove_root);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_parse);
    tcase_add_test(tc, test_replies);
    tcase_add_test(tc, test_paths);
    tcase_add_test(tc, test_config_keys);
    tcase_add_test(tc, test_commands);
    tcase_add_test(tc, test_usage);
    tcase_add_test(tc, test_status);
    tcase_add_test(tc, test_stop);
    tcase_add_test(tc, test_no_daemon);
    tcase_add_test(tc, test_config_option);
    tcase_add_test(tc, test_many_clients);
    tcase_add_test(tc, test_slow_clients);
    tcase_add_test(tc, test_request_bounds);
    tcase_add_test(tc, test_gone_clients);
    tcase_add_test(tc, test_socket_file);
    tcase_add_test(tc, test_permission);
    suite_add_tcase(s, tc);
    return s;
}
