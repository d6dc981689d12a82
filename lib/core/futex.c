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
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int
workers__futex_wait(_Atomic uint32_t *word, uint32_t expected,
                    uint64_t deadline_ns)
{
    struct timespec ts = workers__timespec(deadline_ns);
    if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET_PRIVATE,
                expected, deadline_ns != WORKERS__NO_DEADLINE ? &ts : NULL,
                NULL, FUTEX_BITSET_MATCH_ANY) == 0)
        return 0;
    return -errno;
}

void
workers__futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL,
            NULL, 0);
}

/* Linux 6.16's per-process futex hash; older headers lack the names and
 * older kernels answer EINVAL, which leaves things as they were. */
#ifndef PR_FUTEX_HASH
#define PR_FUTEX_HASH 78
#define PR_FUTEX_HASH_SET_SLOTS 1
#define PR_FUTEX_HASH_GET_SLOTS 2
#endif

/*
 * Since Linux 6.16 a process's private futexes hash into a table of its
 * own, sized for about four waiters per CPU (16 slots on 2 CPUs). Every
 * idle worker sleeps on a futex word of its own, so 10,000 idle workers
 * put hundreds of waiters in each slot, and each wake (more, less, close)
 * walks them: 500 us instead of 5 us, measured. The library knows it makes
 * such waiters, so it grows the table as its thread count doubles, to
 * about two slots per thread. It never shrinks the table and leaves alone
 * a process that chose the global hash (0 slots) or made its table
 * immutable (the call then fails, harmlessly).
 */
static _Atomic unsigned nthreads;

void
workers__futex_threads(int delta)
{
    unsigned n = atomic_fetch_add(&nthreads, (unsigned)delta) + (unsigned)delta;
    if (delta <= 0 || n < 64 || (n & (n - 1)) != 0)
        return;
    int slots = prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0, 0);
    if (slots > 0 && (unsigned)slots < 2 * n)
        prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, 2 * n, 0, 0);
}

uint64_t
workers__deadline_after(uint64_t timeout_ns)
{
    uint64_t now = workers__now_ns();
    if (timeout_ns >= WORKERS__NO_DEADLINE - now)
        return WORKERS__NO_DEADLINE;
    return now + timeout_ns;
}
