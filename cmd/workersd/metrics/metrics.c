/*
 * metrics.c: the wd_metrics object: one snapshot and one text buffer,
 * reused by every render (a scrape or a status allocates nothing once
 * they have grown, but jansson's few strings), the daemon's facts
 * callback, and the HTTP server and file
 * writer [metrics] asks for. Everything here runs on the loop thread.
 */
#include "metrics/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct wd_metrics {
    wd_stats *stats;
    wd_facts_fn facts;
    void *arg;
    wd_stats_snapshot snap;
    wd_buf text;
    wd_http *http;
    wd_textfile *file;
};

/* A fresh snapshot and the facts: 0 or -ENOMEM. */
static int
take(wd_metrics *m, wd_facts *f)
{
    *f = (wd_facts){0};
    m->facts(m->arg, f);
    return wd_stats_read(m->stats, &m->snap);
}

const char *
wd_metrics_text(wd_metrics *m, size_t *len)
{
    wd_facts f;

    wd_buf_reset(&m->text);
    if (take(m, &f) != 0 || wd_prom_render(&m->snap, &f, &m->text) != 0)
        return NULL;
    *len = m->text.len;
    return m->text.data;
}

const char *
wd_metrics_status(wd_metrics *m, size_t *len)
{
    wd_facts f;

    wd_buf_reset(&m->text);
    if (take(m, &f) != 0 || wd_status_json(&m->snap, &f, &m->text) != 0)
        return NULL;
    *len = m->text.len;
    return m->text.data;
}

const char *
wd_metrics_status_line(wd_metrics *m, char *buf, size_t len)
{
    wd_facts f;

    if (take(m, &f) != 0) {
        snprintf(buf, len, "%s", "");
        return buf;
    }
    return wd_status_line(&m->snap, &f, buf, len);
}

int
wd_metrics_new(wd_metrics **out, struct ev_loop *loop,
               const struct wd_metrics_cfg *cfg, wd_stats *st,
               wd_facts_fn facts, void *arg, char *err, size_t errlen)
{
    wd_metrics *m = calloc(1, sizeof *m);
    int rc = 0;

    if (m == NULL) {
        snprintf(err, errlen, "[metrics]: out of memory");
        return -ENOMEM;
    }
    m->stats = st;
    m->facts = facts;
    m->arg = arg;
    if ((cfg->listen != NULL && (rc = wd_http_start(&m->http, loop, cfg->listen,
                                                    m, err, errlen)) != 0) ||
        (cfg->file != NULL &&
         (rc = wd_textfile_start(&m->file, loop, cfg->file, cfg->interval_ns, m,
                                 err, errlen)) != 0)) {
        wd_metrics_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

unsigned
wd_metrics_port(const wd_metrics *m)
{
    return m->http != NULL ? wd_http_port(m->http) : 0;
}

void
wd_metrics_free(wd_metrics *m)
{
    if (m == NULL)
        return;
    wd_textfile_stop(m->file);
    wd_http_stop(m->http);
    wd_stats_snapshot_free(&m->snap);
    wd_buf_free(&m->text);
    free(m);
}
