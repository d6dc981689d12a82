/*
 * Test plugin for the soak and the signal storm (check_reliability.c):
 * job_do does nothing but count, so the runs measure the daemon and the
 * pool, not the job. Arg is the path of a file the test made, at least 8
 * bytes long; its first 8 bytes, mapped shared, hold the total number of
 * runs, which the test reads live from its own mapping.
 *
 * A run adds to its worker's own state; only every FLUSH-th run (and the
 * remainder in job_free) touches the shared counter, so 4 workers do not
 * fight over one cache line. The count the test sees lags by at most
 * FLUSH - 1 runs per worker.
 */
#include "workers.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define FLUSH 1024

int job_init(const char *arg);
void *job_new(void);
void job_free(void *state);
void job_fini(void);
int job_do(workers_ctx *ctx, void *state);

/* Set by job_init before any worker starts, unmapped by job_fini after the
 * pool closed. */
static _Atomic uint64_t *total;

struct soak_state {
    uint64_t pending;
};

int
job_init(const char *arg)
{
    int fd;
    void *map;

    if (arg == NULL || (fd = open(arg, O_RDWR | O_CLOEXEC)) < 0)
        return 1;
    map = mmap(NULL, sizeof *total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return 1;
    total = map;
    return 0;
}

void *
job_new(void)
{
    return calloc(1, sizeof(struct soak_state));
}

int
job_do(workers_ctx *ctx, void *state)
{
    struct soak_state *s = state;

    (void)ctx;
    if (++s->pending == FLUSH) {
        atomic_fetch_add_explicit(total, FLUSH, memory_order_relaxed);
        s->pending = 0;
    }
    return 0;
}

void
job_free(void *state)
{
    struct soak_state *s = state;

    atomic_fetch_add_explicit(total, s->pending, memory_order_relaxed);
    free(s);
}

void
job_fini(void)
{
    munmap((void *)total, sizeof *total);
}
