/*
 * Private to stats/: the stats object and the per-worker slot that
 * stats.c writes and snapshot.c reads.
 *
 * Ownership and threads: a slot is allocated when a worker's job is
 * wrapped, linked into st->live under st->mu, written by that worker only
 * (its runs), read by snapshots under st->mu, and folded into st->gone then
 * freed when the job is freed (its worker stopped). Lock order: st->mu is
 * the only lock, and nothing else is locked while it is held.
 *
 * Memory order, as the library's tally (lib/internal.h): the worker stores
 * its counters with a relaxed load + store (it is their only writer), the
 * outcome counters last and with release; a reader loads the outcome
 * counters first with acquire, then started, so ended <= started always.
 */
#ifndef WD_STATS_SLOT_H
#define WD_STATS_SLOT_H

#include "stats/stats.h"

#include <pthread.h>
#include <stdatomic.h>

#define WD_CACHELINE 64

/* The kind and ErrorBackoff, as wd_stats_middleware() packs them into the
 * middleware's value. */
#define WD_SLOT_COMMAND 1u
#define WD_SLOT_BACKOFF 2u

struct wd_slot {
    /* Line 0: written by the worker every run, read by snapshots. */
    _Alignas(WD_CACHELINE) _Atomic uint64_t started;
    _Atomic uint64_t ended[WD_NOUTCOMES];
    _Atomic uint64_t sum_ns;
    /* In a run: its start. Between runs: the last run's end. */
    _Atomic uint64_t mark_ns;
    /* Lines 1-3: one bucket written per run. */
    _Alignas(WD_CACHELINE) _Atomic uint64_t buckets[WD_STATS_NBOUNDS + 1];
    /* Written by the worker on its first run and after failures only
     * (a retried run follows a failure). */
    _Atomic uint64_t retried;
    _Atomic uint64_t err_ns; /* end of the last failed run, 0 = none */
    _Atomic int err_code;
    _Atomic unsigned id;              /* from the first run's context */
    _Atomic(const workers_ctx *) ctx; /* the worker's, from its first run */
    /* Private to the worker: what the last end saw, to tell whether it is
     * also the next run's start (see stats.c). */
    uint64_t end_waits, end_gen;
    /* Set at wrap time, then only read. */
    workers_job inner;
    const _Atomic uint64_t *gen; /* &st->gen: a run never touches st->mu's
                                    line, which snapshots dirty */
    unsigned flags;              /* WD_SLOT_* */
    /* Cold: the list, under st->mu. */
    wd_stats *st;
    struct wd_slot *prev, *next;
};

/* What a freed slot leaves behind: its counts and its last error. */
struct wd_gone {
    wd_stats_runs runs;
    uint64_t err_ns;
    int err_code;
    unsigned err_worker;
    unsigned err_flags;
};

struct wd_stats {
    /* Read by every run, written on pause and resume only: its own line. */
    _Alignas(WD_CACHELINE) _Atomic uint64_t gen; /* moves on at each */
    _Atomic bool paused;
    _Alignas(WD_CACHELINE) pthread_mutex_t mu;
    struct wd_slot *live; /* (mu) */
    size_t nlive;         /* (mu) */
    struct wd_gone gone;  /* (mu) */
};

/* snapshot.c: one slot's counters into runs (added), in the order above. */
void wd_slot_add_runs(const struct wd_slot *s, wd_stats_runs *runs);

#endif /* WD_STATS_SLOT_H */
