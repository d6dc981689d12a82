/* Test helpers: see testutil.h. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

uint64_t
tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
tu_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

bool
tu_wait_until(bool (*cond)(void *arg), void *arg, unsigned timeout_ms)
{
    uint64_t end = tu_now_ms() + timeout_ms;
    for (;;) {
        if (cond(arg))
            return true;
        if (tu_now_ms() >= end)
            return false;
        tu_sleep_ms(1);
    }
}

static char *
join(const char *dir, const char *rel)
{
    char *p;
    if (asprintf(&p, "%s/%s", dir, rel) < 0)
        abort();
    return p;
}

char *
tu_build_path(const char *rel)
{
    return join(WORKERS_BUILD_DIR, rel);
}

char *
tu_src_path(const char *rel)
{
    return join(WORKERS_SRC_DIR, rel);
}
