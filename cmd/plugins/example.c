/*
 * Example workersd plugin: every worker prints a line per run, then rests
 * for the interval given as Arg (milliseconds, default 1000), waking at once
 * when its worker is removed or the daemon closes.
 *
 *   cc -shared -fPIC -I/usr/local/include -o example.so example.c
 *
 *   [job]
 *   Plugin = /path/to/example.so
 *   Arg = 500
 *
 * It shows the whole plugin ABI: job_init once before the workers start
 * (non-zero refuses to start), job_new/job_free for per-worker state (no
 * lock needed: a state is only used by its own worker), job_do for one run,
 * job_fini once after the pool closed. The workers_ctx_* functions come from
 * workersd itself, so the plugin does not link libworkers.
 */
#include "workers.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Exported: workersd looks these up with dlsym. */
int job_init(const char *arg);
void *job_new(void);
int job_do(workers_ctx *ctx, void *state);
void job_free(void *state);
void job_fini(void);

/* Set by job_init before any worker starts, then only read. */
static uint64_t interval_ns = 1000000000u;

struct example_state {
    unsigned worker; /* 0 until the first run */
    unsigned long runs;
};

/* One line to stdout with one write, so lines of workers never mix. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDOUT_FILENO, line, (size_t)n);
    (void)w; /* nowhere better to report a failed print */
}

int
job_init(const char *arg)
{
    if (arg != NULL && *arg != '\0') {
        char *end;
        errno = 0;
        unsigned long ms = strtoul(arg, &end, 10);
        if (errno != 0 || *end != '\0' || arg[0] == '-') {
            say("example: Arg must be an interval in milliseconds, not "
                "\"%s\"",
                arg);
            return 1; /* workersd refuses to start (exit 78) */
        }
        interval_ns = (uint64_t)ms * 1000000u;
    }
    say("example: ready, one run every %llu ms",
        (unsigned long long)(interval_ns / 1000000u));
    return 0;
}

void *
job_new(void)
{
    /* NULL here makes workersd refuse the new worker. */
    return calloc(1, sizeof(struct example_state));
}

int
job_do(workers_ctx *ctx, void *state)
{
    struct example_state *s = state;
    s->worker = workers_ctx_worker_id(ctx);
    s->runs++;
    say("example: worker %u, run %lu", s->worker, s->runs);
    /* Rest, but return as soon as the worker is told to stop: close waits
     * for runs in progress. WORKERS_ECANCELED is not a job error.
     * A consumer that finds its queue empty returns WORKERS_EIDLE
     * instead: not an error either (no StopOnErrors, Retry or
     * ErrorBackoff), the worker rests IdleWait before its next run, and
     * [autoscale] counts the run as no work. */
    return workers_ctx_wait(ctx, interval_ns);
}

void
job_free(void *state)
{
    struct example_state *s = state;
    say("example: worker %u stops after %lu runs", s->worker, s->runs);
    free(s);
}

void
job_fini(void)
{
    say("example: done");
}
