/*
 * status.c: the one line systemd shows as the unit's Status, as
 * `systemctl status` readers want it: counts with thousands separators,
 * singular and plural right, ages in the largest whole unit.
 */
#include "metrics/metrics.h"

#include <inttypes.h>
#include <stdio.h>

#define SEC_NS 1000000000ull

/* n with a comma every three digits ("1,234,567"), into buf[32]. */
static const char *
count(uint64_t n, char *buf)
{
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%" PRIu64, n), out = 0;

    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[out++] = ',';
        buf[out++] = digits[i];
    }
    buf[out] = '\0';
    return buf;
}

static const char *
plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

/* A time span in its largest whole unit: "12s", "5min", "3h", "2d". */
static const char *
span(uint64_t ns, char *buf, size_t len)
{
    uint64_t s = ns / SEC_NS;

    if (s < 60)
        snprintf(buf, len, "%" PRIu64 "s", s);
    else if (s < 3600)
        snprintf(buf, len, "%" PRIu64 "min", s / 60);
    else if (s < 86400)
        snprintf(buf, len, "%" PRIu64 "h", s / 3600);
    else
        snprintf(buf, len, "%" PRIu64 "d", s / 86400);
    return buf;
}

static const char *
closing_line(const wd_stats_snapshot *s, const wd_facts *f, char *buf,
             size_t len)
{
    char n[32], dl[48], in[24];

    if (f->deadline_ns == 0)
        snprintf(dl, sizeof dl, "no deadline");
    else if (s->now_ns >= f->deadline_ns)
        snprintf(dl, sizeof dl, "deadline passed");
    else /* rounded up: "in 0s" would read as passed */
        snprintf(dl, sizeof dl, "deadline in %s",
                 span(f->deadline_ns - s->now_ns + SEC_NS - 1, in, sizeof in));
    snprintf(buf, len, "closing: %s run%s left, %s", count(s->busy, n),
             plural(s->busy), dl);
    return buf;
}

const char *
wd_status_line(const wd_stats_snapshot *s, const wd_facts *f, char *buf,
               size_t len)
{
    const wd_stats_runs *r = &s->runs;
    uint64_t failed =
        r->ended[WD_OUTCOME_FAILED] + r->ended[WD_OUTCOME_TIMED_OUT];
    uint64_t workers = f->workers > 0 ? (uint64_t)f->workers : 0;
    char w[32], busy[32], runs[32], fails[32], ago[24];
    int n;

    if (f->closing)
        return closing_line(s, f, buf, len);
    n = snprintf(buf, len, "%s%s worker%s (%s busy%s), %s run%s, %s failed",
                 f->paused ? "paused: " : "", count(workers, w),
                 plural(workers), count(s->busy, busy),
                 !f->autoscale.configured ? ""
                 : f->autoscale.on        ? ", autoscaled"
                                          : ", autoscale off",
                 count(r->started, runs), plural(r->started),
                 count(failed, fails));
    if (f->autoscale.configured && f->autoscale.decision[0] != '\0' && n >= 0 &&
        (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "; autoscale: %s",
                      f->autoscale.decision);
    if (s->last_error.set && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, "; last error %s ago: %s",
                 span(s->last_error.age_ns, ago, sizeof ago),
                 s->last_error.message);
    return buf;
}
