/*
 * The one-line account of an autoscaler's decision, for logs and status
 * output: the library writes it so that every program that embeds the
 * autoscaler (workersd among them) words its decisions the same way.
 * snprintf into the caller's buffer: no allocation, no lock.
 */
#include "internal.h"

#include <stdio.h>

/* "10s", "2.5s", "0.25s", "120s": seconds, three digits at most. */
static void
seconds(char *buf, size_t len, uint64_t ns)
{
    double s = (double)ns / 1e9;
    if (s >= 100)
        snprintf(buf, len, "%.0fs", s);
    else
        snprintf(buf, len, "%.3gs", s);
}

static const char *
workers(int n)
{
    return n == 1 ? "worker" : "workers";
}

/* What a held size is waiting for or up against. */
static const char *
held(const workers_autoscale_decision *d)
{
    switch (d->reason) {
    case WORKERS_AUTOSCALE_MEASURING:
        return "measuring";
    case WORKERS_AUTOSCALE_STEADY:
        return "steady";
    case WORKERS_AUTOSCALE_COOLDOWN:
        return "shrink waits for the cooldown";
    case WORKERS_AUTOSCALE_LIMIT:
        return d->utilisation > workers__autoscale_high(d->target) ? "at max"
                                                                    : "at min";
    case WORKERS_AUTOSCALE_EXTERNAL:
        return "size set by another caller, measuring afresh";
    case WORKERS_AUTOSCALE_PAUSED:
        return "paused";
    case WORKERS_AUTOSCALE_GROW:
    case WORKERS_AUTOSCALE_SHRINK:
        break;
    }
    return "held";
}

int
workers_autoscale_describe(const workers_autoscale_decision *d, char *buf,
                           size_t len)
{
    char span[32], why[96] = "";
    seconds(span, sizeof(span), d->span_ns);
    if (d->span_ns != 0)
        snprintf(why, sizeof(why), " (utilisation %.2f over %s, target %.2f)",
                 d->utilisation, span, d->target);
    if (d->err != 0)
        return snprintf(buf, len, "%d -> %d %s, wanted %d: %s%s", d->old_count,
                        d->new_count, workers(d->new_count), d->wanted,
                        workers_strerror(d->err), why);
    if (d->wanted != d->old_count)
        return snprintf(buf, len, "%d -> %d %s%s", d->old_count, d->new_count,
                        workers(d->new_count), why);
    return snprintf(buf, len, "%d %s, %s%s", d->old_count,
                    workers(d->old_count), held(d), why);
}
