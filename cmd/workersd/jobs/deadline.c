/*
 * The deadline thread: one per job that times its runs, acting on runs
 * whose deadline passed or whose worker was cancelled (see jobs.h). It is
 * the one mechanism behind Timeout, KillGrace and a command's escalation
 * after a cancel; the kinds say what acting means (their due()).
 *
 * The thread owns its pollfd array; everything else is under k->lock. It
 * rebuilds the array at every wake-up from the entries whose context is
 * known and not seen cancelled. A descriptor closed while it polls (its
 * worker stopped) does not wake it: poll keeps the file it was given, and
 * the next scan no longer lists it. A worker's first arm wakes it, so that
 * worker's descriptor is polled from then on.
 */
#include "jobs.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* The thread only scans and polls. */
#define DEADLINE_STACK (64 * 1024)

struct wd_deadlines {
    pthread_mutex_t lock;
    pthread_t thread;
    int wake; /* eventfd */
    bool stop;
    uint64_t next_wake; /* when the thread wakes by itself; WD_NEVER never */
    struct wd_timed *list;
    struct pollfd *pfds; /* the thread's own; [0] is wake */
    size_t npfds;
};

static void
poke(wd_deadlines *k)
{
    uint64_t one = 1;
    while (write(k->wake, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* With the lock: acts on what is due, fills pfds, returns how many and sets
 * *next to the earliest deadline still ahead. */
static size_t
scan(wd_deadlines *k, uint64_t now, uint64_t *next)
{
    size_t n = 1;
    *next = WD_NEVER;
    for (struct wd_timed *t = k->list; t != NULL; t = t->next) {
        if (!t->ctx_seen && t->ctx != NULL && workers_ctx_done(t->ctx)) {
            t->ctx_seen = true;
            if (t->armed)
                t->at = t->due(t, now, true);
        }
        if (t->armed && t->at <= now)
            t->at = t->due(t, now, false);
        if (t->armed && t->at < *next)
            *next = t->at;
        if (t->ctx_fd >= 0 && !t->ctx_seen) {
            if (n == k->npfds) {
                struct pollfd *g = realloc(k->pfds, 2 * n * sizeof *g);
                if (g == NULL)
                    continue; /* polled again after the next wake-up */
                k->pfds = g;
                k->npfds = 2 * n;
            }
            k->pfds[n++] = (struct pollfd){t->ctx_fd, POLLIN, 0};
        }
    }
    return n;
}

static void *
deadline_main(void *arg)
{
    wd_deadlines *k = arg;
    pthread_mutex_lock(&k->lock);
    while (!k->stop) {
        uint64_t now = wd_now_ns(), next;
        size_t n = scan(k, now, &next);
        k->next_wake = next;
        pthread_mutex_unlock(&k->lock);
        struct timespec ts, *tsp = NULL;
        if (next != WD_NEVER) {
            ts = wd_timespec(next > now ? next - now : 0);
            tsp = &ts;
        }
        if (ppoll(k->pfds, n, tsp, NULL) > 0 && k->pfds[0].revents != 0) {
            uint64_t v;
            while (read(k->wake, &v, sizeof v) < 0 && errno == EINTR)
                ;
        }
        pthread_mutex_lock(&k->lock);
    }
    pthread_mutex_unlock(&k->lock);
    return NULL;
}

static void
deadlines_free(wd_deadlines *k)
{
    if (k->wake >= 0)
        close(k->wake);
    pthread_mutex_destroy(&k->lock);
    free(k->pfds);
    free(k);
}

int
wd_deadlines_start(wd_deadlines **out)
{
    wd_deadlines *k = calloc(1, sizeof *k);
    if (k == NULL)
        return -ENOMEM;
    k->wake = -1;
    k->next_wake = WD_NEVER;
    int e = pthread_mutex_init(&k->lock, NULL);
    if (e != 0) {
        free(k);
        return -e;
    }
    k->npfds = 8;
    k->pfds = calloc(k->npfds, sizeof *k->pfds);
    k->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (k->pfds == NULL || k->wake < 0) {
        e = k->pfds == NULL ? ENOMEM : errno;
        deadlines_free(k);
        return -e;
    }
    k->pfds[0] = (struct pollfd){k->wake, POLLIN, 0};
    if ((e = wd_thread_start(&k->thread, DEADLINE_STACK, deadline_main, k)) !=
        0) {
        deadlines_free(k);
        return e;
    }
    *out = k;
    return 0;
}

void
wd_deadlines_stop(wd_deadlines *k)
{
    pthread_mutex_lock(&k->lock);
    k->stop = true;
    pthread_mutex_unlock(&k->lock);
    poke(k);
    pthread_join(k->thread, NULL);
    deadlines_free(k);
}

void
wd_deadlines_add(wd_deadlines *k, struct wd_timed *t)
{
    t->ctx = NULL;
    t->ctx_fd = -1;
    t->ctx_seen = false;
    t->armed = false;
    t->prev = NULL;
    pthread_mutex_lock(&k->lock);
    t->next = k->list;
    if (t->next != NULL)
        t->next->prev = t;
    k->list = t;
    pthread_mutex_unlock(&k->lock);
}

void
wd_deadlines_remove(wd_deadlines *k, struct wd_timed *t)
{
    pthread_mutex_lock(&k->lock);
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        k->list = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&k->lock);
}

int
wd_deadlines_arm(wd_deadlines *k, struct wd_timed *t, workers_ctx *ctx,
                 uint64_t at)
{
    /* Only this worker writes ctx: read without the lock. */
    bool new_ctx = t->ctx != ctx;
    int fd = -1;
    if (new_ctx && (fd = workers_ctx_fd(ctx)) < 0)
        return fd;
    pthread_mutex_lock(&k->lock);
    if (new_ctx) {
        t->ctx = ctx;
        t->ctx_fd = fd;
        t->ctx_seen = false;
    }
    t->at = at;
    t->armed = true;
    bool wake = new_ctx || at < k->next_wake;
    pthread_mutex_unlock(&k->lock);
    if (wake)
        poke(k);
    return 0;
}

void
wd_deadlines_disarm(wd_deadlines *k, struct wd_timed *t)
{
    pthread_mutex_lock(&k->lock);
    t->armed = false;
    pthread_mutex_unlock(&k->lock);
}

void
wd_deadlines_each(wd_deadlines *k, void (*fn)(struct wd_timed *, void *),
                  void *arg)
{
    pthread_mutex_lock(&k->lock);
    for (struct wd_timed *t = k->list; t != NULL; t = t->next)
        if (t->armed)
            fn(t, arg);
    pthread_mutex_unlock(&k->lock);
}

void
wd_deadlines_lock(wd_deadlines *k)
{
    pthread_mutex_lock(&k->lock);
}

void
wd_deadlines_unlock(wd_deadlines *k)
{
    pthread_mutex_unlock(&k->lock);
}
