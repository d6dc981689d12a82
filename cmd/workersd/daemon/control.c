/*
 * The control socket's requests (control/control.h), answered on the loop
 * thread: status, set/more/less, pause/resume, reload, stop, metrics.
 *
 * Every request is answered exactly once: at once, except stop (kept in
 * d->stoppers and answered with the exit code once the loop ended, by
 * wd_control_end) and a reload that opens a new generation (answered by
 * reload.c once it opened or failed). Scaling is refused unless the pool
 * runs (starting, or draining: then the closer thread owns the pool).
 */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
wd_scale(struct wd_daemon *d, int delta, char *msg, size_t len)
{
    workers_pool *pool = wd_pool_workers(d->pool);
    int before = workers_pool_current(pool), rc = 0;
    const char *note = "";
    char buf[96];

    for (int i = 0; i < abs(delta) && rc == 0; i++)
        rc = delta > 0 ? workers_pool_more(pool) : workers_pool_less(pool);
    if (rc == WORKERS_EMAX || rc == WORKERS_EMIN) {
        note = rc == WORKERS_EMAX ? " (max reached)" : " (min reached)";
        rc = 0;
    }
    wd_observe_workers(d);
    wd_autoscaler_manual(d); /* the operator's size holds */
    if (rc == 0) {
        snprintf(msg, len, "workers: %d -> %d%s", before, d->workers, note);
        /* Nothing moved: the log keeps the signals' wording of old. */
        if (before == d->workers && note[0] != '\0')
            wd_log(WD_LOG_INFO, "%s reached (%d)", delta > 0 ? "max" : "min",
                   before);
        else
            wd_log(WD_LOG_INFO, "%s", msg);
    } else {
        snprintf(msg, len, "workers: %d -> %d: %s %s", before, d->workers,
                 delta > 0 ? "adding a worker" : "removing a worker",
                 wd_describe(rc, buf, sizeof buf));
        wd_log(WD_LOG_WARNING, "%s", msg);
    }
    return rc;
}

/* Why scaling is refused now, or NULL. */
static const char *
not_running(const struct wd_daemon *d)
{
    switch (d->phase) {
    case WD_STARTING:
        return "starting: the pool is not running yet";
    case WD_RUNNING:
        return NULL;
    default:
        return "closing";
    }
}

static json_t *
set_workers(struct wd_daemon *d, int n)
{
    const workers_config *lim = &d->cfg->pool;
    char msg[160];

    if (n < lim->min)
        return wd_control_fail(WD_CONTROL_EXIT_REFUSED,
                               "set %d: below Min (%d): nothing changed", n,
                               lim->min);
    if (lim->max != 0 && n > lim->max)
        return wd_control_fail(WD_CONTROL_EXIT_REFUSED,
                               "set %d: above Max (%d): nothing changed", n,
                               lim->max);
    wd_observe_workers(d);
    if (wd_scale(d, n - d->workers, msg, sizeof msg) != 0)
        return wd_control_fail(WD_CONTROL_EXIT_REFUSED, "%s", msg);
    return wd_control_ok("%s", msg);
}

static json_t *
scale(struct wd_daemon *d, int delta)
{
    char msg[160];

    if (wd_scale(d, delta, msg, sizeof msg) != 0)
        return wd_control_fail(WD_CONTROL_EXIT_REFUSED, "%s", msg);
    return wd_control_ok("%s", msg);
}

static json_t *
pause_pool(struct wd_daemon *d, bool pause)
{
    workers_pool *pool = wd_pool_workers(d->pool);
    char buf[96];
    int rc;

    if (d->paused == pause)
        return wd_control_ok(pause ? "already paused" : "not paused");
    rc = pause ? workers_pool_pause(pool) : workers_pool_resume(pool);
    if (rc != 0)
        return wd_control_fail(WD_CONTROL_EXIT_REFUSED, "%s: %s",
                               pause ? "pause" : "resume",
                               wd_describe(rc, buf, sizeof buf));
    d->paused = pause;
    wd_stats_set_paused(d->stats, pause);
    wd_log(WD_LOG_INFO, "%s",
           pause ? "paused: no run starts until resume" : "resumed");
    wd_observe_notify(d, "");
    return wd_control_ok(pause ? "paused: runs in progress finish, no new "
                                 "run starts"
                               : "resumed");
}

/* `workersctl autoscale on|off` (autoscale.c). */
static json_t *
autoscale(struct wd_daemon *d, bool on)
{
    char buf[96];
    int rc = wd_autoscaler_enable(d, on);

    if (rc == 0)
        return wd_control_ok("autoscale %s", on ? "on" : "off");
    return wd_control_fail(
        WD_CONTROL_EXIT_REFUSED, "autoscale %s: %s", on ? "on" : "off",
        rc == -ENOTSUP          ? "not configured: no [autoscale] in the config"
        : rc == -ERANGE         ? "the pool has no Max to bound its growth"
        : rc == WORKERS_ECLOSED ? "closing"
                                : wd_describe(rc, buf, sizeof buf));
}

/* The status object with "ok": the renderer's text spliced, not parsed
 * and dumped again (a jansson tree of 1,000 workers costs milliseconds). */
static void
status(struct wd_daemon *d, wd_control_client *c)
{
    static const char head[] = "{\"ok\":true,";
    size_t len;
    const char *text = wd_metrics_status(d->metrics, &len);
    char *out = text != NULL && len > 2 ? malloc(sizeof head + len) : NULL;

    if (out == NULL) {
        wd_control_reply(c, NULL);
        return;
    }
    /* text is "{...}": head replaces its brace, a newline ends it. */
    memcpy(out, head, sizeof head - 1);
    memcpy(out + sizeof head - 1, text + 1, len - 1);
    out[sizeof head - 1 + len - 1] = '\n';
    wd_control_reply_wire(c, out, sizeof head - 1 + len);
}

static json_t *
metrics(struct wd_daemon *d)
{
    size_t len;
    const char *text = wd_metrics_text(d->metrics, &len);
    json_t *r = text != NULL ? wd_control_ok("metrics") : NULL;

    if (r != NULL)
        json_object_set_new(r, "text", json_stringn(text, len));
    return r;
}

/* stop: answered with the exit code by wd_control_end. */
static void
stop(struct wd_daemon *d, wd_control_client *c, const wd_control_request *req)
{
    if (d->nstoppers == d->stoppers_cap) {
        size_t cap = d->stoppers_cap != 0 ? 2 * d->stoppers_cap : 4;
        wd_control_client **s = realloc(d->stoppers, cap * sizeof *s);
        if (s == NULL) {
            wd_control_reply(c, NULL);
            return;
        }
        d->stoppers = s;
        d->stoppers_cap = cap;
    }
    d->stoppers[d->nstoppers++] = c;
    if (req->has_timeout && d->phase < WD_DRAINING) {
        d->stop_timeout_set = true;
        d->stop_timeout_ns = req->timeout_ns;
    }
    wd_log(WD_LOG_INFO, "stop asked by uid %ld, pid %ld", (long)req->uid,
           (long)req->pid);
    wd_daemon_stop(d, "workersctl stop");
}

static void
handle(void *data, wd_control_client *c, const wd_control_request *req)
{
    struct wd_daemon *d = data;
    const char *refused = not_running(d);
    json_t *r;

    switch (req->cmd) {
    case WD_CONTROL_STATUS:
        status(d, c);
        return;
    case WD_CONTROL_METRICS:
        r = metrics(d);
        break;
    case WD_CONTROL_STOP:
        stop(d, c, req);
        return;
    case WD_CONTROL_RELOAD:
        wd_reload(d, c);
        return;
    case WD_CONTROL_AUTOSCALE:
        r = autoscale(d, req->on);
        break;
    default:
        if (refused != NULL) {
            r = wd_control_fail(WD_CONTROL_EXIT_REFUSED, "%s: %s refused",
                                refused, wd_control_cmd_name(req->cmd));
            break;
        }
        switch (req->cmd) {
        case WD_CONTROL_SET:
            r = set_workers(d, req->n);
            break;
        case WD_CONTROL_MORE:
            r = scale(d, req->n);
            break;
        case WD_CONTROL_LESS:
            r = scale(d, -req->n);
            break;
        default:
            r = pause_pool(d, req->cmd == WD_CONTROL_PAUSE);
            break;
        }
    }
    wd_control_reply(c, r);
}

int
wd_control_start(struct wd_daemon *d)
{
    const wd_config *cfg = d->cfg;
    wd_control_settings s = {cfg->path,         cfg->socket, cfg->socket_mode,
                             cfg->socket_group, handle,      d};
    char err[WD_ERRLEN];
    int rc;

    /* The server logs the socket's path itself. */
    if ((rc = wd_control_open(d->loop, &s, &d->ctl, err, sizeof err)) != 0)
        wd_log(WD_LOG_ERR, "%s", err);
    return rc;
}

void
wd_control_end(struct wd_daemon *d, int code)
{
    for (size_t i = 0; i < d->nstoppers; i++) {
        json_t *r = wd_control_ok("workersd exited with code %d", code);
        if (r != NULL)
            json_object_set_new(r, "exit", json_integer(code));
        wd_control_reply(d->stoppers[i], r);
    }
    free(d->stoppers);
    d->stoppers = NULL;
    d->nstoppers = 0;
    wd_control_free(d->ctl);
    d->ctl = NULL;
}
