/*
 * sys.c: the daemon's small system helpers, shared by its files: the
 * monotonic clock, overflow-safe deadlines, helper threads that start with
 * every signal blocked (only the main thread handles signals), and the
 * wording of durations and error codes in log lines.
 */
#include "workersd.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

uint64_t
wd_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
wd_deadline(uint64_t now, uint64_t timeout_ns)
{
    return timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
}

struct timespec
wd_timespec(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    return ts;
}

int
wd_thread_start(pthread_t *thread, size_t stack, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    sigset_t all, old;
    int rc;

    if ((rc = pthread_attr_init(&attr)) != 0)
        return -rc;
    if (stack != 0 && (rc = pthread_attr_setstacksize(&attr, stack)) != 0) {
        pthread_attr_destroy(&attr);
        return -rc;
    }
    /* The new thread inherits the mask: block all for the call only. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(thread, &attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return -rc;
}

const char *
wd_duration(uint64_t ns, char *buf, size_t len)
{
    if (ns % 1000000000u == 0)
        snprintf(buf, len, "%" PRIu64 "s", ns / 1000000000u);
    else if (ns % 1000000u == 0)
        snprintf(buf, len, "%" PRIu64 "ms", ns / 1000000u);
    else if (ns % 1000u == 0)
        snprintf(buf, len, "%" PRIu64 "us", ns / 1000u);
    else
        snprintf(buf, len, "%" PRIu64 "ns", ns);
    return buf;
}

const char *
wd_describe(int rc, char *buf, size_t len)
{
    if (rc < 0)
        snprintf(buf, len, "%s (%s)", workers_strerror(rc),
                 workers_err_name(rc));
    else
        snprintf(buf, len, "code %d", rc);
    return buf;
}
