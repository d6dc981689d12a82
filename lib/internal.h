/*
 * Private declarations shared by the library's files, grouped by file.
 * Internal non-static names use the workers__ prefix and hidden visibility.
 */
#ifndef WORKERS_INTERNAL_H
#define WORKERS_INTERNAL_H

#include "workers.h"

#include <stdatomic.h>

#define WORKERS__CACHELINE 64

/*
 * ctx.c
 *
 * done is the cancellation flag and also the futex word that
 * workers_ctx_wait() sleeps on, so waiting needs no descriptor. fd is the
 * eventfd that workers_ctx_fd() makes on first use (-1 until then): pools of
 * thousands of workers do not pay a descriptor each unless their jobs poll.
 * waits counts calls to workers_ctx_wait(): the elapsed middleware compares
 * it between runs to know whether the previous run's end is this run's start.
 */
struct workers_ctx {
    _Atomic uint32_t done;
    _Atomic int fd;
    _Atomic uint64_t waits;
    unsigned worker_id;
};

/* Initialises an embedded context (not cancelled, no fd). */
void workers__ctx_init(workers_ctx *ctx, unsigned worker_id);
/* Makes a cancelled context live again for a new worker on the same thread.
 * Only when nothing else can cancel or wait on it. */
void workers__ctx_reset(workers_ctx *ctx, unsigned worker_id);
/* Closes the fd, if any. */
void workers__ctx_destroy(workers_ctx *ctx);

/* time.c */
uint64_t workers__now_ns(void); /* CLOCK_MONOTONIC */

/*
 * futex.c: private futexes with absolute CLOCK_MONOTONIC deadlines.
 * WORKERS__NO_DEADLINE waits forever.
 */
#define WORKERS__NO_DEADLINE UINT64_MAX
/* Sleeps while *word == expected, until woken or deadline_ns. Returns 0 when
 * woken, -EAGAIN (*word differed), -EINTR or -ETIMEDOUT. */
int workers__futex_wait(_Atomic uint32_t *word, uint32_t expected,
                        uint64_t deadline_ns);
/* Wakes every thread sleeping on word. Async-signal-safe. */
void workers__futex_wake_all(_Atomic uint32_t *word);
/* now + timeout_ns, saturating to WORKERS__NO_DEADLINE. */
uint64_t workers__deadline_after(uint64_t timeout_ns);

#endif /* WORKERS_INTERNAL_H */
