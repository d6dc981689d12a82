/*
 * What the daemon shows of itself: the statistics its generations count
 * into (one wd_stats for the daemon's life, so counts go on across
 * reloads), the metrics built on them (status JSON, Prometheus text, HTTP
 * and file serving) and systemd's STATUS= line, sent at most once a second
 * and only when it changed.
 *
 * Loop thread only. The facts the metrics ask for are the loop's own
 * fields. The worker count is read from the pool while it runs and cached
 * (d->workers): once draining, the closer thread owns the pool and the loop
 * makes no pool call, so the last count is shown.
 */
#include "daemon.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The metrics' facts callback (metrics.h), on the loop thread. */
static void
facts(void *arg, wd_facts *f)
{
    struct wd_daemon *d = arg;

    if (d->phase == WD_RUNNING)
        wd_observe_workers(d);
    f->pid = (long)getpid();
    f->version = WORKERS_VERSION_STRING;
    f->config = d->cfg->path;
    f->start_unix = d->start_unix;
    f->start_ns = d->start_ns;
    f->workers = d->workers;
    f->min = d->cfg->pool.min;
    f->max = d->cfg->pool.max;
    f->paused = d->paused;
    f->reloads = d->reloads;
    f->closing = d->phase >= WD_DRAINING;
    f->deadline_ns = d->deadline_ns;
    wd_autoscaler_facts(d, &f->autoscale);
}

static void
on_status_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w, (void)revents;
    wd_observe_notify(ev_userdata(loop), "");
}

int
wd_observe_open(struct wd_daemon *d, const wd_config *cfg, int *code)
{
    char err[WD_ERRLEN], buf[96];
    struct timespec now;
    int rc;

    clock_gettime(CLOCK_REALTIME, &now);
    d->start_unix = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    d->start_ns = wd_now_ns();
    if ((rc = wd_stats_new(&d->stats)) != 0) {
        wd_log(WD_LOG_ERR, "cannot set up the statistics: %s",
               wd_describe(rc, buf, sizeof buf));
        *code = WD_EXIT_SOFTWARE;
        return -1;
    }
    if ((rc = wd_metrics_new(&d->metrics, d->loop, &cfg->metrics, d->stats,
                             facts, d, err, sizeof err)) != 0) {
        wd_log(WD_LOG_ERR, "%s", err);
        /* 78 for an address that cannot be listened on, 70 for memory or
         * a descriptor: the daemon's one classification, as for a job. */
        *code = wd_exit_code_of(rc);
        return -1;
    }
    if (cfg->metrics.listen != NULL)
        wd_log(WD_LOG_INFO, "metrics: http://%s/metrics (port %u)",
               cfg->metrics.listen, wd_metrics_port(d->metrics));
    ev_timer_init(&d->status_timer, on_status_timer, 1., 1.);
    ev_timer_start(d->loop, &d->status_timer);
    return 0;
}

void
wd_observe_workers(struct wd_daemon *d)
{
    d->workers = workers_pool_current(wd_pool_workers(d->pool));
}

void
wd_observe_notify(struct wd_daemon *d, const char *extra)
{
    char line[sizeof d->status_sent];

    if (d->metrics == NULL || d->phase == WD_STARTING)
        return;
    wd_metrics_status_line(d->metrics, line, sizeof line);
    if (extra[0] == '\0' && strcmp(line, d->status_sent) == 0)
        return;
    memcpy(d->status_sent, line, sizeof line);
    if (extra[0] != '\0')
        wd_notify("%s\nSTATUS=%s", extra, line);
    else
        wd_notify("STATUS=%s", line);
}

void
wd_observe_free(struct wd_daemon *d)
{
    ev_timer_stop(d->loop, &d->status_timer);
    wd_metrics_free(d->metrics);
    d->metrics = NULL;
    wd_stats_free(d->stats);
    d->stats = NULL;
}
