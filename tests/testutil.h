/*
 * Helpers shared by the test suites: deadlines that tolerate a loaded
 * 2-core machine, and paths to what the Makefile built.
 */
#ifndef WORKERS_TESTUTIL_H
#define WORKERS_TESTUTIL_H

#include <stdbool.h>
#include <stdint.h>

/* Generous: a test polls for a condition for up to this long. */
#define TU_DEADLINE_MS 10000

/* Monotonic milliseconds. */
uint64_t tu_now_ms(void);

/* Sleeps about ms milliseconds (only to pace polling, never to order events).
 */
void tu_sleep_ms(unsigned ms);

/* Polls cond(arg) every millisecond until true or timeout_ms passes. */
bool tu_wait_until(bool (*cond)(void *arg), void *arg, unsigned timeout_ms);

/* Path under the build folder, e.g. tu_build_path("workersd"). Static buffer
 * per call site is not needed: returns a malloc'd string the test may leak. */
char *tu_build_path(const char *rel);

/* Path under the source tree, e.g. tu_src_path("conf/pool.ini"). */
char *tu_src_path(const char *rel);

#endif
