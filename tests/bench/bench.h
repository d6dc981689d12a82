/*
 * The benchmark's private declarations, grouped by file.
 *
 * Method: every pool figure is printed beside a baseline measured in the
 * same run (interleaved with it where the two are cheap), each a median of
 * `reps` repetitions with its min and max, and the ratio of the two, so that
 * the noise of a shared machine mostly cancels. The program is single-
 * threaded except while a measurement runs; child processes (RSS, daemon)
 * are spawned from the main thread and reaped by it, by pid.
 */
#ifndef BENCH_H
#define BENCH_H

#include "workers.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BN_CACHELINE 64

/* What every measurement may read: the command line. */
typedef struct bn_opts {
    int reps;           /* repetitions per figure, >= 5 */
    unsigned window_ms; /* length of one throughput window */
    const char *daemon; /* path to workersd, for section 5 */
    const char *self;   /* path to this program, for child modes */
    unsigned sections;  /* bit n set: run section n (1..8) */
} bn_opts;

/* ---- bench.c: timing, statistics, the table ---------------------------- */

uint64_t bn_now_ns(void); /* CLOCK_MONOTONIC */
uint64_t bn_cpu_ns(void); /* CLOCK_PROCESS_CPUTIME_ID: all threads */
void bn_sleep_ns(uint64_t ns);
_Noreturn void bn_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* Dies with the message of a libworkers code when err != 0. */
void bn_check(int err, const char *what);

/* Median, min and max of n samples (sorts v in place). */
typedef struct bn_stat {
    double med, min, max;
} bn_stat;
bn_stat bn_stat_of(double *v, int n);
/* Mean and 99th percentile of n samples (sorts v in place). */
double bn_mean(const double *v, size_t n);
double bn_p99(double *v, size_t n);

/*
 * How a row's ratio (pool / baseline, or what the row says) is judged:
 * RATIO_LE: ratio <= limit; RATIO_GE: ratio >= limit; ABS_LE: the pool's
 * median <= limit (in the row's unit); DIFF_LE: pool median - baseline
 * median <= limit; NONE: informative.
 */
typedef enum {
    BN_NONE,
    BN_RATIO_LE,
    BN_RATIO_GE,
    BN_ABS_LE,
    BN_DIFF_LE
} bn_judge;

typedef struct bn_row {
    const char *what; /* the pool figure */
    const char *unit; /* of pool and baseline */
    bn_stat pool;
    const char *base_what; /* NULL: no baseline */
    bn_stat base;
    double ratio; /* NAN: pool.med / base.med */
    bn_judge judge;
    double limit;
    const char *target; /* as issue 5 words it */
    const char *extra;  /* printed on a second line, may be NULL */
} bn_row;

void bn_section(const char *title);
void bn_print(const bn_row *row);
/* Counts of PASS and MISS printed so far. */
void bn_totals(int *pass, int *miss);

/* ---- throughput.c: section 1, empty-job throughput --------------------- */
void bn_throughput(const bn_opts *o);

/* ---- scale.c: section 2, more/less/close latency ------------------------ */
void bn_scale(const bn_opts *o);

/* Idle workers and threads, shared with rss.c. bn_idle_job counts into
 * bn_entered, blocks in workers_ctx_wait() until its worker is cancelled,
 * then counts into bn_exited. A bn_rawt thread (bn_raw_idle) counts into
 * bn_raw_entered, blocks on its futex word until bn_raw_wake(), then
 * counts into bn_raw_exited. */
extern _Atomic int bn_entered, bn_exited, bn_raw_entered, bn_raw_exited;
int bn_idle_job(workers_ctx *ctx, void *arg);
struct bn_rawt {
    _Alignas(BN_CACHELINE) _Atomic uint32_t word;
    pthread_t t;
};
void *bn_raw_idle(void *arg);
void bn_raw_wake(struct bn_rawt *r);
/* Polls until *n >= want (dies after 120 s), then gives the threads a
 * moment to reach their futex wait. */
void bn_wait_count(_Atomic int *n, int want, const char *what);

/* ---- rss.c: section 3, memory of idle workers --------------------------- */
void bn_rss(const bn_opts *o);
/* The child side: `bench --child-rss pool|threads N STACK`; prints
 * "<VmHWM kB> <VmRSS kB before the threads>" and exits. */
int bn_rss_child(const char *kind, int n, size_t stack);

/* ---- shell.c: section 4, command-job throughput -------------------------- */
void bn_shell(const bn_opts *o);

/* ---- signal.c: section 5, SIGUSR1 to first run in workersd -------------- */
void bn_signal(const bn_opts *o);

/* ---- metrics.c: section 6, workersd's statistics and their renders ------ */
void bn_metrics(const bn_opts *o);

/* ---- control.c: section 7, workersd's control socket --------------------- */
void bn_control(const bn_opts *o);

/* ---- spool.c: section 8, the autoscaled spool against a fixed pool ------ */
void bn_spool(const bn_opts *o);

/* ---- spawn.c: child processes -------------------------------------------- */

/* posix_spawn of argv[0] (a path) with envp (NULL = environ), stdin from
 * /dev/null, stdout to out_fd (-1 = /dev/null), stderr inherited. Dies on
 * failure. */
int bn_spawn(char *const argv[], char *const envp[], int out_fd);
/* waitpid(pid) with a deadline; kills it (SIGKILL) when it passes. Returns
 * the wait status. */
int bn_reap(int pid, unsigned timeout_ms);
/* Writes a config file for workersd (mode 0600, as it demands) from a
 * printf format. Dies on failure. */
void bn_write_conf(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Reads all of fd (until EOF) into buf (NUL-terminated); returns length. */
size_t bn_read_all(int fd, char *buf, size_t len);

#endif
