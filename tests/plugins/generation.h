/*
 * The counters of tests/plugins/generation.c, shared with the tests that
 * load it (check_generation.c, check_daemon.c). They live in the file the
 * plugin's Arg names, mapped shared, so each loaded copy of the plugin
 * counts into its own config's file and a test (even in another process)
 * reads and steers it there.
 */
#ifndef WORKERS_TEST_GENERATION_H
#define WORKERS_TEST_GENERATION_H

#include <stdatomic.h>

struct gen_counters {
    /* What the test asks for, set before or while the daemon runs. */
    atomic_int hold_init;  /* job_init waits while it is set */
    atomic_int hold_fini;  /* job_fini waits while it is set */
    atomic_int release;    /* runs wait until it is set (or a cancel) */
    atomic_int helper;     /* job_init spawns /bin/true, job_fini reaps it */
    atomic_int close_self; /* job_init dlcloses its own object */
    /* What the plugin saw. */
    atomic_int inits, finis, news, frees, foreign;
    atomic_int in_init, in_fini; /* job_init / job_fini is running */
    atomic_int init_tid, fini_tid;
    atomic_int helper_pid;
    atomic_int helper_status; /* waitpid's status, or -errno */
    atomic_ulong started, running;
    atomic_ulong workers; /* bit (id - 1) for every worker that ran */
};

#endif
