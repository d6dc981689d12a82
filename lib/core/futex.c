/*
 * Thin wrappers over futex(2), private to this process, used by contexts
 * (the done flag is the futex word) and by parked worker threads.
 * Deadlines are absolute CLOCK_MONOTONIC nanoseconds (FUTEX_WAIT_BITSET
 * takes an absolute time on that clock), so callers that loop on spurious
 * wake-ups or EINTR never need to recompute a relative timeout.
 * Both functions are async-signal-safe.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int
workers__futex_wait(_Atomic uint32_t *word, uint32_t expected,
                    uint64_t deadline_ns)
{
    struct timespec ts, *tsp = NULL;
    if (deadline_ns != WORKERS__NO_DEADLINE) {
        ts.tv_sec = (time_t)(deadline_ns / 1000000000u);
        ts.tv_nsec = (long)(deadline_ns % 1000000000u);
        tsp = &ts;
    }
    if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET_PRIVATE,
                expected, tsp, NULL, FUTEX_BITSET_MATCH_ANY) == 0)
        return 0;
    return -errno;
}

void
workers__futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL,
            NULL, 0);
}

uint64_t
workers__deadline_after(uint64_t timeout_ns)
{
    uint64_t now = workers__now_ns();
    if (timeout_ns >= WORKERS__NO_DEADLINE - now)
        return WORKERS__NO_DEADLINE;
    return now + timeout_ns;
}
