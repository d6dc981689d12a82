/*
 * stats/: run statistics for workersd, kept by a middleware around the job
 * at no cost to the hot path, and read as snapshots by the status, the
 * metrics and systemd's STATUS (metrics/).
 *
 * Each worker's job gets a slot of its own (a few cache lines) that only
 * that worker writes, with relaxed loads and stores: no lock, no atomic
 * read-modify-write, no allocation, no shared cache line written per run,
 * and one clock read per run when runs follow each other (see stats.c);
 * two under [autoscale], whose middleware, outside this one, marks each
 * end of a run as a new start here.
 * A snapshot sums the slots under the stats' mutex, which a run never takes.
 */
#ifndef WD_STATS_H
#define WD_STATS_H

#include "workersd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The run-duration histogram's upper bounds ("le"), ascending, from 1 ms to
 * 1 h as Prometheus buckets go; one more bucket (+Inf) takes the rest. A
 * run of exactly a bound's length falls in that bound's bucket. */
#define WD_STATS_NBOUNDS 20
extern const uint64_t wd_stats_bound_ns[WD_STATS_NBOUNDS];
/* The same bounds in seconds, as the exposition writes them ("0.0025"). */
extern const char *const wd_stats_bound_text[WD_STATS_NBOUNDS];

/* How a run ended, from the result the job returned. */
enum wd_outcome {
    WD_OUTCOME_SUCCEEDED, /* 0 */
    WD_OUTCOME_FAILED,    /* any other result, but the three below */
    WD_OUTCOME_TIMED_OUT, /* WORKERS_ETIMEDOUT: the job's Timeout passed */
    WD_OUTCOME_CANCELLED, /* WORKERS_ECANCELED: less or close; no error */
    WD_OUTCOME_IDLE,      /* WORKERS_EIDLE: found no work; no error */
    WD_NOUTCOMES
};
/* "succeeded", "failed", "timed_out", "cancelled", "idle". */
extern const char *const wd_outcome_name[WD_NOUTCOMES];

/* A worker's state in a snapshot, in order of precedence. */
enum wd_worker_state {
    WD_WORKER_STOPPING, /* removed (less) or closing: ends after its run */
    WD_WORKER_RUNNING,  /* in a run */
    WD_WORKER_PAUSED,   /* between runs, the pool paused */
    WD_WORKER_BACKOFF,  /* between runs after a failure, ErrorBackoff on */
    WD_WORKER_IDLE,     /* between runs otherwise (Wait, or not yet run) */
    WD_NSTATES
};
/* "stopping", "running", "paused", "backoff", "idle". */
extern const char *const wd_worker_state_name[WD_NSTATES];

typedef struct wd_stats wd_stats;

/* Errors: -ENOMEM, or a negated pthread_mutex_init error. */
int wd_stats_new(wd_stats **out);
/* No job the stats wrapped may still exist (free the pool first). NULL is a
 * no-op. */
void wd_stats_free(wd_stats *st);

/*
 * The middleware that counts into st, for the pool's middleware list as
 * mws[0], innermost: a run is then one call of the job itself, so Wait's
 * and ErrorBackoff's pauses fall between runs, and every attempt Retry
 * makes is a run. cfg is read now, not kept: the job kind (Command or
 * Plugin, for the last error's message) and whether ErrorBackoff is on (a
 * worker between a failed run and its next one is then "backoff"). Like
 * the library's counter, each wrapped job must run on one worker only
 * (the pool's middlewares are wrapped per worker). The middleware reads
 * the context the pool gives the run, which must be the worker's own (no
 * middleware outside it may substitute another). Thread-safe.
 */
workers_middleware wd_stats_middleware(wd_stats *st, const wd_config *cfg);

/*
 * Counts Retry's attempts: place it just outside workers_retry() (the next
 * index in the middleware list). Every run after the first within one call
 * of it counts as retried. Without it, retried stays 0. Stateless but for
 * the wrapper it allocates per job; the counting itself is a thread-local
 * word. Thread-safe.
 */
workers_middleware wd_stats_retry_marker(void);

/*
 * The pool was paused (true) or resumed (false). Workers between runs show
 * "paused"; a run that starts after a resume reads the clock at its start
 * rather than taking the previous run's end for it. Any thread; cheap.
 */
void wd_stats_set_paused(wd_stats *st, bool paused);

/* ---- snapshots: stats/snapshot.c ---------------------------------------- */

/* The totals over every run so far, the workers that left included. */
typedef struct wd_stats_runs {
    uint64_t started;
    uint64_t ended[WD_NOUTCOMES]; /* finished runs, by outcome */
    uint64_t retried;             /* runs that were a Retry attempt */
    uint64_t sum_ns;              /* of the finished runs' durations */
    /* Finished runs by duration, NOT cumulative: buckets[i] counts the
     * runs longer than bound i - 1 and at most bound i; the last is +Inf. */
    uint64_t buckets[WD_STATS_NBOUNDS + 1];
} wd_stats_runs;

typedef struct wd_stats_worker {
    unsigned id; /* the worker's number; 0 until its first run starts */
    enum wd_worker_state state;
    uint64_t runs;     /* started (the current one included) */
    uint64_t failures; /* runs failed or timed out */
    bool in_run;
    uint64_t run_age_ns; /* how long the current run has taken; 0 if none */
} wd_stats_worker;

/* The error of the run that failed last (failed or timed out). */
typedef struct wd_stats_error {
    bool set; /* false: no run has failed yet; the rest is 0 */
    unsigned worker;
    int code;         /* what the job returned (exit status, 128 + signal,
                         a negative code, a plugin's own value) */
    char message[64]; /* wd_stats_describe()'s text */
    uint64_t age_ns;  /* how long ago it ended */
    double unix_time; /* when it ended, in Unix seconds */
} wd_stats_error;

typedef struct wd_stats_snapshot {
    uint64_t now_ns;  /* CLOCK_MONOTONIC when taken (wd_now_ns) */
    double unix_time; /* CLOCK_REALTIME when taken */
    wd_stats_runs runs;
    unsigned busy; /* workers in a run */
    wd_stats_error last_error;
    /* Every live worker, removed ones still finishing their run included,
     * sorted by id. The array is the snapshot's: it grows as needed and is
     * reused by the next wd_stats_read() into the same struct. */
    wd_stats_worker *workers;
    size_t nworkers, cap;
} wd_stats_snapshot;

/*
 * Fills *snap (zero it before its first use) while the workers run. Each
 * counter is exact; the set is not one instant (a run may end between two
 * loads), but a snapshot never shows more runs ended than started. Takes
 * the stats' mutex (never taken by a run). Errors: -ENOMEM (*snap is then
 * left as it was). Thread-safe; loop thread in workersd.
 */
int wd_stats_read(wd_stats *st, wd_stats_snapshot *snap);
/* Frees the snapshot's array. */
void wd_stats_snapshot_free(wd_stats_snapshot *snap);

/*
 * A run's result in a few words, into buf; returns buf:
 * Command: "exit 2", "killed by SIGKILL" (128 + N), "timed out";
 * Plugin: "code 3", "timed out"; either: the library's text for a negative
 * code ("cannot allocate memory"). Thread-safe.
 */
const char *wd_stats_describe(bool command, int code, char *buf, size_t len);

#endif /* WD_STATS_H */
