/*
 * The ABI rule of workers.h (its top comment): a struct the caller fills
 * has a reserved tail that must be zero, refused with -EINVAL otherwise,
 * so that a program using a field a later minor release adds fails cleanly
 * on an older library; a struct the library fills is written whole,
 * reserved words as zero; and no public struct changes size or layout
 * within libworkers.so.2 (the figures below are x86-64's and aarch64's,
 * LP64, where the library ships). The installed SONAME is checked in
 * check_install.c.
 */
#include "workers.h"

#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#define NRES(s) (sizeof((s).reserved) / sizeof((s).reserved[0]))

/* A reserved word that is not zero, in each place, is refused by every
 * function that reads the config; nothing is made. */
START_TEST(test_config_reserved_refused)
{
    workers_config cfg = {.min = 1, .max = 2};
    ck_assert_int_eq(workers_config_validate(&cfg), 0);
    for (size_t i = 0; i < NRES(cfg); i++) {
        cfg.reserved[i] = 1;
        ck_assert_int_eq(workers_config_validate(&cfg), -EINVAL);
        workers_pool *pool = NULL;
        ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, NULL, 0),
                         -EINVAL);
        ck_assert_ptr_null(pool);
        cfg.reserved[i] = 0;
    }
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new_with_config(&pool, &cfg, NULL, 0), 0);
    workers_pool_free(pool);
}
END_TEST

START_TEST(test_policy_reserved_refused)
{
    workers_autoscale_policy p = {.target = 0.5};
    workers_autoscale *as;
    ck_assert_int_eq(workers_autoscale_new(&as, &p, NULL, NULL), 0);
    for (size_t i = 0; i < NRES(p); i++) {
        p.reserved[i] = UINT64_MAX;
        workers_autoscale *other = NULL;
        ck_assert_int_eq(workers_autoscale_new(&other, &p, NULL, NULL),
                         -EINVAL);
        ck_assert_ptr_null(other);
        ck_assert_int_eq(workers_autoscale_set_policy(as, &p), -EINVAL);
        p.reserved[i] = 0;
    }
    ck_assert_int_eq(workers_autoscale_set_policy(as, &p), 0);
    workers_autoscale_free(as);
}
END_TEST

/* True when every reserved word of struct s is zero. */
#define RES_ZERO(s) words_zero((s).reserved, NRES(s))
static bool
words_zero(const uint64_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (w[i] != 0)
            return false;
    return true;
}

/* The caller's struct holds garbage (a stack a C program did not zero):
 * the library overwrites its reserved words with zero. */
START_TEST(test_outputs_reserved_written_zero)
{
    workers_pool *pool;
    ck_assert_int_eq(workers_pool_new(&pool, NULL, 0), 0);
    workers_pool_status st;
    memset(&st, 0xa5, sizeof(st));
    workers_pool_status_get(pool, &st);
    ck_assert(RES_ZERO(st));
    workers_pool_free(pool);

    workers_counter *c;
    ck_assert_int_eq(workers_counter_new(&c), 0);
    workers_counter_stats cs;
    memset(&cs, 0xa5, sizeof(cs));
    workers_counter_stats_get(c, &cs);
    ck_assert(RES_ZERO(cs));
    workers_counter_free(c);

    workers_elapsed *e;
    ck_assert_int_eq(workers_elapsed_new(&e, NULL, NULL), 0);
    workers_elapsed_stats es;
    memset(&es, 0xa5, sizeof(es));
    workers_elapsed_stats_get(e, &es);
    ck_assert(RES_ZERO(es) && RES_ZERO(es.counts));
    workers_elapsed_free(e);

    workers_autoscale *as;
    ck_assert_int_eq(workers_autoscale_new(&as, NULL, NULL, NULL), 0);
    ck_assert_int_eq(workers_pool_new(&pool, NULL, 0), 0);
    workers_autoscale_decision d;
    memset(&d, 0xa5, sizeof(d));
    workers_autoscale_tick(as, pool, 0, &d);
    ck_assert(RES_ZERO(d));
    workers_pool_free(pool);
    workers_autoscale_free(as);
}
END_TEST

/* Sizes and the offsets of the reserved tails on LP64: a change here is a
 * change of ABI, which needs a new SONAME (and these figures updated). */
START_TEST(test_layout_lp64)
{
#if defined(__LP64__)
    ck_assert_uint_eq(sizeof(workers_config), 104);
    ck_assert_uint_eq(offsetof(workers_config, reserved), 40);
    ck_assert_uint_eq(sizeof(workers_pool_status), 64);
    ck_assert_uint_eq(offsetof(workers_pool_status, reserved), 32);
    ck_assert_uint_eq(sizeof(workers_counter_stats), 72);
    ck_assert_uint_eq(offsetof(workers_counter_stats, reserved), 40);
    ck_assert_uint_eq(sizeof(workers_elapsed_stats), 136);
    ck_assert_uint_eq(offsetof(workers_elapsed_stats, reserved), 104);
    ck_assert_uint_eq(sizeof(workers_autoscale_policy), 56);
    ck_assert_uint_eq(offsetof(workers_autoscale_policy, reserved), 24);
    ck_assert_uint_eq(sizeof(workers_autoscale_decision), 80);
    ck_assert_uint_eq(offsetof(workers_autoscale_decision, reserved), 48);
    ck_assert_uint_eq(sizeof(workers_job), 24);
    ck_assert_uint_eq(sizeof(workers_builder), 24);
    ck_assert_uint_eq(sizeof(workers_middleware), 24);
#endif
}
END_TEST

Suite *make_abi_suite(void);

Suite *
make_abi_suite(void)
{
    Suite *s = suite_create("abi");
    TCase *tc = tcase_create("abi");
    tcase_add_test(tc, test_config_reserved_refused);
    tcase_add_test(tc, test_policy_reserved_refused);
    tcase_add_test(tc, test_outputs_reserved_written_zero);
    tcase_add_test(tc, test_layout_lp64);
    suite_add_tcase(s, tc);
    return s;
}
