/*
 * prom.c: the Prometheus text exposition format, version 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), as
 * `promtool check metrics` accepts it: every family has HELP and TYPE
 * lines, counters end in _total, the histogram's buckets are cumulative
 * and end with le="+Inf" (equal to _count). No instance label: the
 * scraper adds it. The names and their meaning are a stable interface,
 * listed in README.md ("Metrics").
 */
#include "metrics/metrics.h"

#include <errno.h>
#include <inttypes.h>

static void
family(wd_buf *b, const char *name, const char *type, const char *help)
{
    wd_buf_printf(b, "# HELP workersd_%s %s\n# TYPE workersd_%s %s\n", name,
                  help, name, type);
}

static void
gauge(wd_buf *b, const char *name, const char *help, int64_t v)
{
    family(b, name, "gauge", help);
    wd_buf_printf(b, "workersd_%s %" PRId64 "\n", name, v);
}

static void
counter(wd_buf *b, const char *name, const char *help, uint64_t v)
{
    family(b, name, "counter", help);
    wd_buf_printf(b, "workersd_%s %" PRIu64 "\n", name, v);
}

/* A label value: backslash, double quote and newline escaped. */
static void
label_value(wd_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            wd_buf_append(b, "\\", 1);
        if (*s == '\n')
            wd_buf_append(b, "\\n", 2);
        else
            wd_buf_append(b, s, 1);
    }
}

/* Nanoseconds as seconds, exactly (no rounding through a double). */
static void
seconds(wd_buf *b, uint64_t ns)
{
    wd_buf_printf(b, "%" PRIu64 ".%09" PRIu64, ns / 1000000000u,
                  ns % 1000000000u);
}

static void
histogram(wd_buf *b, const wd_stats_runs *r)
{
    uint64_t cumulative = 0;

    family(b, "run_duration_seconds", "histogram",
           "How long finished runs took (the job itself: Wait and "
           "ErrorBackoff pauses excluded).");
    for (int i = 0; i < WD_STATS_NBOUNDS; i++) {
        cumulative += r->buckets[i];
        wd_buf_printf(b,
                      "workersd_run_duration_seconds_bucket{le=\"%s\"} "
                      "%" PRIu64 "\n",
                      wd_stats_bound_text[i], cumulative);
    }
    cumulative += r->buckets[WD_STATS_NBOUNDS];
    wd_buf_printf(b,
                  "workersd_run_duration_seconds_bucket{le=\"+Inf\"} "
                  "%" PRIu64 "\nworkersd_run_duration_seconds_sum ",
                  cumulative);
    seconds(b, r->sum_ns);
    wd_buf_printf(b, "\nworkersd_run_duration_seconds_count %" PRIu64 "\n",
                  cumulative);
}

/* [autoscale]'s gauges, only when it is configured. */
static void
autoscale(wd_buf *b, const struct wd_autoscale_facts *a)
{
    gauge(b, "autoscale_enabled", "1 while the autoscaler sizes the pool.",
          a->on);
    family(b, "autoscale_target", "gauge",
           "The utilisation the autoscaler holds ([autoscale] Target).");
    wd_buf_printf(b, "workersd_autoscale_target %.3f\n", a->target);
    family(b, "utilisation", "gauge",
           "Busy time over worker time across the autoscaler's last "
           "measured span (runs that did work; idle and failed runs are "
           "not busy).");
    wd_buf_printf(b, "workersd_utilisation %.3f\n", a->utilisation);
}

int
wd_prom_render(const wd_stats_snapshot *s, const wd_facts *f, wd_buf *out)
{
    gauge(out, "workers",
          "Workers in the pool (removed ones finishing their last run not "
          "counted).",
          f->workers);
    gauge(out, "workers_busy", "Workers in a run.", s->busy);
    gauge(out, "workers_min", "The pool's Min.", f->min);
    family(out, "workers_max", "gauge", "The pool's Max; +Inf when unlimited.");
    if (f->max > 0)
        wd_buf_printf(out, "workersd_workers_max %d\n", f->max);
    else
        wd_buf_printf(out, "workersd_workers_max +Inf\n");
    gauge(out, "paused", "1 while the pool is paused, else 0.", f->paused);

    family(out, "runs_total", "counter", "Runs finished, by outcome.");
    for (int o = 0; o < WD_NOUTCOMES; o++)
        wd_buf_printf(out, "workersd_runs_total{outcome=\"%s\"} %" PRIu64 "\n",
                      wd_outcome_name[o], s->runs.ended[o]);
    counter(out, "runs_retried_total",
            "Runs that were a Retry attempt after a failed run.",
            s->runs.retried);
    histogram(out, &s->runs);
    counter(out, "reloads_total", "Successful config reloads.", f->reloads);
    if (f->autoscale.configured)
        autoscale(out, &f->autoscale);

    family(out, "start_time_seconds", "gauge",
           "When workersd started, in Unix seconds.");
    wd_buf_printf(out, "workersd_start_time_seconds %.3f\n", f->start_unix);
    family(out, "build_info", "gauge",
           "workersd's version as a label; the value is always 1.");
    wd_buf_printf(out, "workersd_build_info{version=\"");
    label_value(out, f->version);
    wd_buf_printf(out, "\"} 1\n");
    return out->failed ? -ENOMEM : 0;
}
