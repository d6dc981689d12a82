/*
 * The library's one clock: CLOCK_MONOTONIC in nanoseconds, for deadlines
 * (close_timeout, ctx waits) and the elapsed middleware's default clock.
 * In glibc clock_gettime(CLOCK_MONOTONIC) is a vDSO call, not a syscall.
 */
#include "internal.h"

#include <time.h>

struct timespec
workers__timespec(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    return ts;
}

uint64_t
workers__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
workers__monotonic(void *arg)
{
    (void)arg;
    return workers__now_ns();
}
