/*
 * Thin wrappers over futex(2), private to this process, used by contexts
 * (the done flag is the futex word) and by parked worker threads.
 * Deadlines are absolute CLOCK_MONOTONIC nanoseconds (FUTEX_WAIT_BITSET
 * takes an absolute time on that clock), so callers that loop on spurious
 * wake-ups or EINTR never need to recompute a relative timeout.
 * Both functions are async-signal-safe. Below them, the sizing of the
 * process's futex hash.
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
 * about two slots per thread.
 *
 * Setting the size blocks the caller for 12-50 ms (Linux 6.18), however
 * few threads there are, while other threads' futex calls and
 * pthread_create go on. So the count (under a pool's lock) only raises
 * `wanted`, process-wide and only ever upwards; the new thread grows the
 * table before its first run, holding no lock, and only one thread at a
 * time does (`resizing`), to the largest size wanted: two pools growing at
 * once can never set an older, smaller size after a larger one. A thread
 * that finds another resizing leaves the size it raised to that one, which
 * reads `wanted` again after it is done: whichever of the raise and the
 * release comes second (both seq_cst) sees the other. The table never
 * shrinks; a process that chose the global hash (0 slots) or made its
 * table immutable (the call then fails, harmlessly) is left alone.
 */
static _Atomic unsigned nthreads, wanted, applied;
static _Atomic bool resizing;

void
workers__futex_threads(int delta)
{
    unsigned n = atomic_fetch_add(&nthreads, (unsigned)delta) + (unsigned)delta;
    if (delta <= 0 || n < 64 || (n & (n - 1)) != 0)
        return;
    unsigned want = 2 * n, w = atomic_load(&wanted);
    while (w < want && !atomic_compare_exchange_weak(&wanted, &w, want))
        ;
}

void
workers__futex_grow(void)
{
    while (atomic_load(&wanted) > atomic_load(&applied) &&
           !atomic_exchange(&resizing, true)) {
        unsigned want = atomic_load(&wanted);
        int slots = prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0, 0);
        if (slots > 0 && (unsigned)slots < want)
            prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, want, 0, 0);
        atomic_store(&applied, want);
        atomic_store(&resizing, false);
    }
}

uint64_t
workers__deadline_after(uint64_t timeout_ns)
{
    uint64_t now = workers__now_ns();
    if (timeout_ns >= WORKERS__NO_DEADLINE - now)
        return WORKERS__NO_DEADLINE;
    return now + timeout_ns;
}
