/*
 * noalloc: checks that the hot path allocates nothing. A pool of 2 workers
 * runs a job through the retry, counter, elapsed and autoscale middlewares,
 * with an idle wait; once every worker has run, every allocator call is counted
 * until the job has run a million more times, while the main thread ticks
 * the autoscaler (the pool is held at min = max, so it never adds or
 * removes a worker). Exit 0 when none happened, 1 when some did, 2 when
 * the pool could not be run. Output: one line,
 * "noalloc: RUNS runs, ALLOCS allocations, FREES frees".
 * `noalloc --control` makes the job allocate on each run, to prove the
 * counting works (it must then exit 1).
 *
 * A program of its own, not a suite of the Check runner: replacing malloc
 * there would count Check's own allocations too. tests/check_noalloc.c runs
 * it. Counting: without sanitizers, this executable defines the allocator
 * functions (they take precedence over libc's for every caller in the
 * process) and forwards them to glibc's __libc_* entry points. Under ASan
 * or TSan, whose runtimes own malloc, it installs the sanitizer allocator's
 * malloc and free hooks instead.
 */
#include "workers.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 1000000u
#define NWORKERS 2

static _Atomic int counting;
static _Atomic unsigned long allocs, frees;

static void
note(_Atomic unsigned long *n)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(n, 1, memory_order_relaxed);
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define NOALLOC_HOOKS 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NOALLOC_HOOKS 1
#endif

#ifdef NOALLOC_HOOKS
/* From the sanitizers' allocator_interface.h, which gcc does not ship. */
int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void *ptr, size_t size),
    void (*free_hook)(const volatile void *ptr));

static void
malloc_hook(const volatile void *ptr, size_t size)
{
    (void)ptr;
    (void)size;
    note(&allocs);
}

static void
free_hook(const volatile void *ptr)
{
    (void)ptr;
    note(&frees);
}

static void
install_counting(void)
{
    __sanitizer_install_malloc_and_free_hooks(malloc_hook, free_hook);
}
#else
#include <malloc.h>

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void __libc_free(void *ptr);
void *__libc_memalign(size_t align, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);

void *
malloc(size_t size)
{
    note(&allocs);
    return __libc_malloc(size);
}

void *
calloc(size_t n, size_t size)
{
    note(&allocs);
    return __libc_calloc(n, size);
}

void *
realloc(void *ptr, size_t size)
{
    note(&allocs);
    return __libc_realloc(ptr, size);
}

void *
reallocarray(void *ptr, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(ptr, n * size);
}

void
free(void *ptr)
{
    if (ptr)
        note(&frees);
    __libc_free(ptr);
}

void *
memalign(size_t align, size_t size)
{
    note(&allocs);
    return __libc_memalign(align, size);
}

void *
aligned_alloc(size_t align, size_t size)
{
    return memalign(align, size);
}

int
posix_memalign(void **out, size_t align, size_t size)
{
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    void *p = memalign(align, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *
valloc(size_t size)
{
    note(&allocs);
    return __libc_valloc(size);
}

void *
pvalloc(size_t size)
{
    note(&allocs);
    return __libc_pvalloc(size);
}

static void
install_counting(void)
{
}
#endif

/* Each worker's job state, in its own cache line; no allocation. */
struct slot {
    _Alignas(64) _Atomic uint64_t calls;
};

static struct slot slots[NWORKERS];
static int next_slot;
static bool control;

/* Fails one call in four, so that retry and the counter's failure path
 * run too (retry then succeeds on the next call), and finds no work one
 * in 64, so that the idle paths run: the rest after it (the pool's lock
 * twice and a futex wait) costs far more than a run, even for a 1 ns wait;
 * one in four made this program take 16 s instead of under one. */
static int
job(workers_ctx *ctx, void *arg)
{
    struct slot *s = arg;
    (void)ctx;
    uint64_t n = atomic_load_explicit(&s->calls, memory_order_relaxed) + 1;
    atomic_store_explicit(&s->calls, n, memory_order_relaxed);
    if (control) {
        /* volatile: the compiler may not drop the malloc/free pair. */
        void *volatile p = malloc(16);
        free(p);
    }
    return n % 4 == 0 ? WORKERS_EJOB : n % 64 == 2 ? WORKERS_EIDLE : 0;
}

static int
new_job(void *arg, workers_job *out)
{
    (void)arg;
    if (next_slot >= NWORKERS)
        return -EINVAL;
    *out = workers_job_func(job, &slots[next_slot++]);
    return 0;
}

static uint64_t
calls(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < NWORKERS; i++)
        sum += atomic_load_explicit(&slots[i].calls, memory_order_relaxed);
    return sum;
}

static bool
all_ran(void)
{
    for (int i = 0; i < NWORKERS; i++)
        if (atomic_load(&slots[i].calls) == 0)
            return false;
    return true;
}

static void
nap(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

static int
fail(const char *what, int err)
{
    printf("noalloc: %s: %s\n", what, workers_strerror(err));
    return 2;
}

int
main(int argc, char **argv)
{
    control = argc > 1 && strcmp(argv[1], "--control") == 0;
    install_counting();

    workers_counter *c;
    workers_elapsed *e;
    workers_autoscale *as;
    int err;
    if ((err = workers_counter_new(&c)) != 0)
        return fail("workers_counter_new", err);
    if ((err = workers_elapsed_new(&e, NULL, NULL)) != 0)
        return fail("workers_elapsed_new", err);
    workers_autoscale_policy policy = {.window_ns = 4000000};
    if ((err = workers_autoscale_new(&as, &policy, NULL, NULL)) != 0)
        return fail("workers_autoscale_new", err);
    workers_middleware mws[] = {workers_retry(3), workers_counter_middleware(c),
                                workers_elapsed_middleware(e),
                                workers_autoscale_middleware(as)};
    /* A 1 ns idle wait: every idle run rests through the pool's resting
     * list and leaves it by itself, so that path is counted too. */
    workers_config cfg = {.min = NWORKERS, .max = NWORKERS, .idle_wait_ns = 1};
    workers_pool *p;
    if ((err = workers_pool_new_with_config(&p, &cfg, mws, 4)) != 0)
        return fail("workers_pool_new_with_config", err);
    workers_builder b = workers_builder_func(new_job, NULL);
    if ((err = workers_pool_start_with_builder(p, &b)) != 0)
        return fail("workers_pool_start_with_builder", err);

    /* Thread start-up is not the hot path: count once every worker ran.
     * The main thread only loads atomics and sleeps meanwhile. */
    for (int i = 0; i < 60000 && !all_ran(); i++)
        nap();
    uint64_t first = calls(), last = first;
    atomic_store(&counting, 1);
    int ticks = 0;
    for (int i = 0; i < 120000 && last - first < RUNS; i++) {
        nap();
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        workers_autoscale_tick(
            as, p, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec,
            NULL);
        ticks++;
        last = calls();
    }
    atomic_store(&counting, 0);
    last = calls();

    if ((err = workers_pool_close(p, NULL)) != 0)
        return fail("workers_pool_close", err);
    workers_pool_free(p);
    workers_counter_stats cs;
    workers_elapsed_stats es;
    workers_counter_stats_get(c, &cs);
    workers_elapsed_stats_get(e, &es);
    workers_counter_free(c);
    workers_elapsed_free(e);
    workers_autoscale_free(as);

    printf("noalloc: %llu runs, %lu allocations, %lu frees\n",
           (unsigned long long)(last - first), atomic_load(&allocs),
           atomic_load(&frees));
    if (last - first < RUNS)
        return fail("too few runs", WORKERS_ETIMEDOUT);
    /* Every failure was retried into a success (but for at most one run
     * per worker that close cut short between a failure and its retry),
     * and the middlewares saw the runs: they were really in the path. */
    if (cs.failed > NWORKERS || cs.finished == 0 || cs.idle == 0 ||
        es.counts.finished != cs.finished || ticks == 0) {
        printf("noalloc: middlewares: counter %llu finished %llu failed, "
               "elapsed %llu finished\n",
               (unsigned long long)cs.finished, (unsigned long long)cs.failed,
               (unsigned long long)es.counts.finished);
        return 2;
    }
    return atomic_load(&allocs) == 0 && atomic_load(&frees) == 0 ? 0 : 1;
}
