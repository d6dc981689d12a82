/*
 * snapshot.c: reads the stats (see stats.h) while the workers run.
 *
 * A snapshot holds st->mu while it walks the live slots, so no slot is
 * freed under it, and loads each slot's counters in the order slot.h
 * gives. The array of workers is grown with the mutex dropped, so that
 * neither an allocation nor the sort happens while a worker that is
 * starting or stopping waits for the mutex.
 */
#include "stats/slot.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const wd_worker_state_name[WD_NSTATES] = {
    [WD_WORKER_STOPPING] = "stopping", [WD_WORKER_RUNNING] = "running",
    [WD_WORKER_PAUSED] = "paused",     [WD_WORKER_BACKOFF] = "backoff",
    [WD_WORKER_IDLE] = "idle",
};

static void
add_runs(wd_stats_runs *to, const wd_stats_runs *from)
{
    to->started += from->started;
    for (int o = 0; o < WD_NOUTCOMES; o++)
        to->ended[o] += from->ended[o];
    to->retried += from->retried;
    to->sum_ns += from->sum_ns;
    for (int i = 0; i <= WD_STATS_NBOUNDS; i++)
        to->buckets[i] += from->buckets[i];
}

void
wd_slot_add_runs(const struct wd_slot *s, wd_stats_runs *runs)
{
    wd_stats_runs one;

    for (int o = 0; o < WD_NOUTCOMES; o++)
        one.ended[o] = atomic_load_explicit(&s->ended[o], memory_order_acquire);
    one.started = atomic_load_explicit(&s->started, memory_order_acquire);
    one.retried = atomic_load_explicit(&s->retried, memory_order_relaxed);
    one.sum_ns = atomic_load_explicit(&s->sum_ns, memory_order_relaxed);
    for (int i = 0; i <= WD_STATS_NBOUNDS; i++)
        one.buckets[i] =
            atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
    add_runs(runs, &one);
}

static uint64_t
ended_of(const wd_stats_runs *r)
{
    uint64_t n = 0;
    for (int o = 0; o < WD_NOUTCOMES; o++)
        n += r->ended[o];
    return n;
}

/* One live slot's entry; *r gets its counts, *err_ns its last failure's
 * end (0 = none). */
static wd_stats_worker
worker_of(const struct wd_slot *s, bool paused, uint64_t now, wd_stats_runs *r,
          uint64_t *err_ns)
{
    wd_stats_worker w = {.id = atomic_load(&s->id)};

    *r = (wd_stats_runs){0};
    wd_slot_add_runs(s, r);
    /* After the counters: the mark of the run they show, or a later one. */
    uint64_t mark = atomic_load_explicit(&s->mark_ns, memory_order_relaxed);
    /* Acquire: err_code is then that failure's, or a later one's. */
    uint64_t failed_at = atomic_load_explicit(&s->err_ns, memory_order_acquire);
    const workers_ctx *ctx = atomic_load(&s->ctx);
    bool running = r->started > ended_of(r);

    w.runs = r->started;
    w.failures = r->ended[WD_OUTCOME_FAILED] + r->ended[WD_OUTCOME_TIMED_OUT];
    w.in_run = running;
    w.run_age_ns = running && now > mark ? now - mark : 0;
    if (ctx != NULL && workers_ctx_done(ctx))
        w.state = WD_WORKER_STOPPING;
    else if (running)
        w.state = WD_WORKER_RUNNING;
    else if (paused)
        w.state = WD_WORKER_PAUSED;
    else if ((s->flags & WD_SLOT_BACKOFF) != 0 && failed_at != 0 &&
             failed_at == mark)
        w.state = WD_WORKER_BACKOFF; /* its last run failed */
    else
        w.state = WD_WORKER_IDLE;
    *err_ns = failed_at;
    return w;
}

static int
by_id(const void *a, const void *b)
{
    unsigned x = ((const wd_stats_worker *)a)->id;
    unsigned y = ((const wd_stats_worker *)b)->id;
    return (x > y) - (x < y);
}

/* Locks st->mu with room in snap for every live slot. */
static int
lock_with_room(wd_stats *st, wd_stats_snapshot *snap)
{
    pthread_mutex_lock(&st->mu);
    while (st->nlive > snap->cap) {
        size_t want = st->nlive + st->nlive / 4 + 16;
        pthread_mutex_unlock(&st->mu);
        wd_stats_worker *w = realloc(snap->workers, want * sizeof *w);
        if (w == NULL)
            return -ENOMEM;
        snap->workers = w;
        snap->cap = want;
        pthread_mutex_lock(&st->mu);
    }
    return 0;
}

int
wd_stats_read(wd_stats *st, wd_stats_snapshot *snap)
{
    struct timespec real;
    uint64_t err_ns;
    int err_code;
    unsigned err_worker, err_flags;

    if (lock_with_room(st, snap) != 0)
        return -ENOMEM;
    snap->now_ns = wd_now_ns();
    clock_gettime(CLOCK_REALTIME, &real);
    snap->unix_time = (double)real.tv_sec + (double)real.tv_nsec / 1e9;
    snap->runs = st->gone.runs;
    snap->busy = 0;
    snap->nworkers = 0;
    err_ns = st->gone.err_ns;
    err_code = st->gone.err_code;
    err_worker = st->gone.err_worker;
    err_flags = st->gone.err_flags;
    bool paused = atomic_load(&st->paused);

    for (const struct wd_slot *s = st->live; s != NULL; s = s->next) {
        wd_stats_runs r;
        uint64_t e;
        wd_stats_worker w = worker_of(s, paused, snap->now_ns, &r, &e);

        add_runs(&snap->runs, &r);
        snap->busy += r.started > ended_of(&r);
        snap->workers[snap->nworkers++] = w;
        if (e != 0 && e >= err_ns) {
            err_ns = e;
            err_code = atomic_load_explicit(&s->err_code, memory_order_relaxed);
            err_worker = w.id;
            err_flags = s->flags;
        }
    }
    pthread_mutex_unlock(&st->mu);

    if (snap->nworkers > 1) /* workers is NULL before the first worker */
        qsort(snap->workers, snap->nworkers, sizeof *snap->workers, by_id);
    wd_stats_error *le = &snap->last_error;
    *le = (wd_stats_error){.set = err_ns != 0};
    if (le->set) {
        le->worker = err_worker;
        le->code = err_code;
        wd_stats_describe((err_flags & WD_SLOT_COMMAND) != 0, err_code,
                          le->message, sizeof le->message);
        le->age_ns = snap->now_ns > err_ns ? snap->now_ns - err_ns : 0;
        le->unix_time = snap->unix_time - (double)le->age_ns / 1e9;
    }
    return 0;
}

void
wd_stats_snapshot_free(wd_stats_snapshot *snap)
{
    free(snap->workers);
    *snap = (wd_stats_snapshot){0};
}

const char *
wd_stats_describe(bool command, int code, char *buf, size_t len)
{
    const char *sig = code > 128 ? sigabbrev_np(code - 128) : NULL;

    if (code == WORKERS_ETIMEDOUT)
        snprintf(buf, len, "timed out");
    else if (code < 0)
        snprintf(buf, len, "%s", workers_strerror(code));
    else if (!command)
        snprintf(buf, len, "code %d", code);
    else if (sig != NULL)
        snprintf(buf, len, "killed by SIG%s", sig);
    else
        snprintf(buf, len, "exit %d", code);
    return buf;
}
