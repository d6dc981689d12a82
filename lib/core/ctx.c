/*
 * Cancellation contexts.
 *
 * done is both the flag and a futex word: 0 while live, 1 once cancelled.
 * Waiters sleep on it with FUTEX_WAIT, so a context costs no descriptor until
 * a job asks for one with workers_ctx_fd().
 *
 * The descriptor is published lazily and must never miss a cancel. cancel
 * stores done = 1 and then loads fd; workers_ctx_fd publishes fd and then
 * loads done. Both sides are seq_cst, so at least one of them sees the
 * other's store (Dekker): either cancel writes the new eventfd or
 * workers_ctx_fd does. A second write is harmless (the counter only grows).
 *
 * Ownership: a context from workers_ctx_new() belongs to its caller; a
 * worker's context is embedded in the pool's thread record and reset for the
 * next worker that thread serves (workers__ctx_reset).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

void
workers__ctx_init(workers_ctx *ctx, unsigned worker_id)
{
    atomic_init(&ctx->done, 0);
    atomic_init(&ctx->fd, -1);
    atomic_init(&ctx->waits, 0);
    ctx->worker_id = worker_id;
}

void
workers__ctx_reset(workers_ctx *ctx, unsigned worker_id)
{
    int fd = atomic_load(&ctx->fd);
    if (fd >= 0) {
        uint64_t count;
        /* Non-blocking: empty already if cancel never wrote. */
        while (read(fd, &count, sizeof(count)) < 0 && errno == EINTR)
            ;
    }
    ctx->worker_id = worker_id;
    atomic_store(&ctx->done, 0);
}

void
workers__ctx_destroy(workers_ctx *ctx)
{
    int fd = atomic_exchange(&ctx->fd, -1);
    if (fd >= 0)
        close(fd);
}

int
workers_ctx_new_for(workers_ctx **out, const workers_ctx *worker)
{
    workers_ctx *ctx = malloc(sizeof(*ctx));
    if (ctx == NULL)
        return -ENOMEM;
    workers__ctx_init(ctx, worker != NULL ? worker->worker_id : 0);
    *out = ctx;
    return 0;
}

int
workers_ctx_new(workers_ctx **out)
{
    return workers_ctx_new_for(out, NULL);
}

void
workers_ctx_free(workers_ctx *ctx)
{
    if (ctx == NULL)
        return;
    workers__ctx_destroy(ctx);
    free(ctx);
}

/* Writes one to the eventfd; a full counter (never here) or EINTR aside,
 * it cannot fail. Keeps errno intact for signal handlers. */
static void
ctx_signal_fd(int fd)
{
    uint64_t one = 1;
    while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

bool
workers__ctx_mark(workers_ctx *ctx)
{
    if (atomic_exchange(&ctx->done, 1) != 0)
        return false;
    int fd = atomic_load(&ctx->fd);
    if (fd >= 0)
        ctx_signal_fd(fd);
    return true;
}

void
workers_ctx_cancel(workers_ctx *ctx)
{
    int saved = errno;
    if (workers__ctx_mark(ctx))
        workers__futex_wake_all(&ctx->done);
    errno = saved;
}

bool
workers_ctx_done(const workers_ctx *ctx)
{
    return atomic_load_explicit(&ctx->done, memory_order_acquire) != 0;
}

int
workers_ctx_wait(workers_ctx *ctx, uint64_t timeout_ns)
{
    atomic_fetch_add_explicit(&ctx->waits, 1, memory_order_relaxed);
    /* A zero wait (wait(0), a zero backoff) is a done check: no syscall. */
    if (timeout_ns == 0)
        return workers_ctx_done(ctx) ? WORKERS_ECANCELED : 0;
    uint64_t deadline = workers__deadline_after(timeout_ns);
    for (;;) {
        if (workers_ctx_done(ctx))
            return WORKERS_ECANCELED;
        /* EAGAIN (done changed) and EINTR loop to re-check done. */
        if (workers__futex_wait(&ctx->done, 0, deadline) == -ETIMEDOUT)
            return workers_ctx_done(ctx) ? WORKERS_ECANCELED : 0;
    }
}

int
workers_ctx_fd(workers_ctx *ctx)
{
    int fd = atomic_load(&ctx->fd);
    if (fd >= 0)
        return fd;
    int mine = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (mine < 0)
        return -errno;
    int expected = -1;
    if (!atomic_compare_exchange_strong(&ctx->fd, &expected, mine)) {
        close(mine);
        return expected;
    }
    if (atomic_load(&ctx->done) != 0)
        ctx_signal_fd(mine);
    return mine;
}

unsigned
workers_ctx_worker_id(const workers_ctx *ctx)
{
    return ctx->worker_id;
}
