/*
 * Helpers for the library core's suites (ctx, job, pool, close): a gate
 * that jobs block on while ignoring cancellation, and counts the tests
 * compare against.
 */
#ifndef WORKERS_CORETEST_H
#define WORKERS_CORETEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* A one-shot gate: ct_gate_pass blocks until ct_gate_open, whatever the
 * caller's context says (a job that ignores cancellation). */
typedef struct ct_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    int waiting; /* threads inside ct_gate_pass */
} ct_gate;

void ct_gate_init(ct_gate *g);
void ct_gate_pass(ct_gate *g);
void ct_gate_open(ct_gate *g);
int ct_gate_waiting(ct_gate *g);

/* The number of threads in this process (/proc/self/status). */
int ct_thread_count(void);

/* The number of entries in a /proc folder: "/proc/self/task" counts the
 * threads, "/proc/self/fd" the descriptors (plus the one reading it). */
int ct_dir_count(const char *path);

/* White-box looks into a pool (internal.h), under its lock: threads parked
 * on its free list, threads ever created, and whether stop_on_errors fired. */
typedef struct workers_pool workers_pool;
int ct_pool_parked(workers_pool *pool);
int ct_pool_threads(workers_pool *pool);
bool ct_pool_stopped(workers_pool *pool);

/* workers_pool_status_get() as a value; polls (1 ms, up to TU_DEADLINE_MS)
 * until n workers rest between two runs. */
typedef struct workers_pool_status workers_pool_status;
workers_pool_status ct_status(workers_pool *pool);
void ct_wait_resting(workers_pool *pool, int n);

/* A job that counts its runs per worker id and blocks until cancelled. */
#define CT_MAX_ID 64
typedef struct ct_probe {
    atomic_int total;
    atomic_int runs[CT_MAX_ID + 1];
    atomic_int stops[CT_MAX_ID + 1];
    atomic_ulong thread[CT_MAX_ID + 1]; /* pthread_self() of the last run */
} ct_probe;
typedef struct workers_ctx workers_ctx;
int ct_probe_job(workers_ctx *ctx, void *arg);

/* A job that counts its runs and returns rc, which may change meanwhile. */
typedef struct ct_rc {
    atomic_int rc;
    atomic_int runs;
} ct_rc;
int ct_rc_job(workers_ctx *ctx, void *arg);

/* For tu_wait_until: true once *(atomic_int *)arg != 0. */
bool ct_flag_set(void *arg);

#endif
