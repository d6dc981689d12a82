/*
 * Generations and the reload core (cmd/workersd/daemon/generation.c,
 * pool.c), driven in-process without the loop: configs loaded from ini
 * files as the daemon loads them, generations opened on their own threads,
 * a wd_pool whose workers follow wd_pool_install(). The plugin
 * tests/plugins/generation.so counts into a file per config (its Arg), so
 * two loaded copies of it never mix their counts; the test maps the same
 * files and waits on them with generous deadlines.
 */
#include "daemonutil.h"
#include "plugins/generation.h"
#include "testutil.h"
#include "workersd.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *tdir;

/* Under TMPDIR: the runner's private folder, removed even when a test
 * fails before its teardown. */
static void
setup(void)
{
    tdir = du_mkdtemp();
}

static void
teardown(void)
{
    du_rmtree(tdir);
}

static char *
tpath(const char *name)
{
    return du_fmt("%s/%s", tdir, name);
}

/* The counters file tdir/name, made and mapped. */
static struct gen_counters *
counters(const char *name)
{
    return du_map(tpath(name), sizeof(struct gen_counters));
}

static void
write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "we");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* A snapshot of the ini text, loaded from tdir/name as workersd would. */
static const wd_config *
config(const char *name, const char *text)
{
    char err[WD_ERRLEN];
    wd_config cfg;
    write_file(tpath(name), text, strlen(text));
    ck_assert_msg(wd_config_load(tpath(name), &cfg, err, sizeof err) == 0, "%s",
                  err);
    const wd_config *snap = wd_config_share(&cfg);
    ck_assert_ptr_nonnull(snap);
    return snap;
}

/* A config running build/tests/plugins/NAME.so (or the path plugin) with
 * Arg tdir/arg, and [pool] settings. */
static const wd_config *
plugin_config(const char *ini, const char *pool, const char *plugin,
              const char *arg)
{
    char text[1024], *so = NULL;
    if (plugin[0] != '/') {
        char rel[128];
        snprintf(rel, sizeof rel, "tests/plugins/%s.so", plugin);
        plugin = so = tu_build_path(rel);
    }
    snprintf(text, sizeof text, "[pool]\n%s[job]\nPlugin = %s\n%s%s%s", pool,
             plugin, arg != NULL ? "Arg = " : "", arg != NULL ? tpath(arg) : "",
             arg != NULL ? "\n" : "");
    free(so);
    return config(ini, text);
}

static bool
not_opening(void *g)
{
    return wd_gen_state(g) != WD_GEN_OPENING;
}

static bool
closed(void *g)
{
    return wd_gen_state(g) == WD_GEN_CLOSED;
}

/* Opens a generation and waits until it is OPEN. */
static wd_gen *
open_gen(const wd_config *cfg)
{
    wd_gen *g;
    ck_assert_int_eq(wd_gen_open(cfg, NULL, NULL, NULL, &g), 0);
    ck_assert(tu_wait_until(not_opening, g, TU_DEADLINE_MS));
    ck_assert_msg(wd_gen_state(g) == WD_GEN_OPEN, "%s", wd_gen_error(g));
    return g;
}

/* Waits until g closed (its last reference is gone), then frees it. */
static void
free_gen(wd_gen *g)
{
    ck_assert(tu_wait_until(closed, g, TU_DEADLINE_MS));
    wd_gen_free(g);
}

/* The pool for cfg's [pool], with gen installed and started. */
static wd_pool *
start_pool(const wd_config *cfg, wd_gen *g)
{
    wd_pool *p;
    ck_assert_int_eq(wd_pool_new(&p, &cfg->pool, NULL, NULL), 0);
    wd_pool_install(p, g);
    ck_assert_int_eq(wd_pool_start(p), 0);
    return p;
}

static void
close_pool(wd_pool *p)
{
    ck_assert_int_eq(workers_pool_close(wd_pool_workers(p), NULL), 0);
    wd_pool_free(p);
}

/* ---- config snapshots ---------------------------------------------------- */

START_TEST(snapshot_shared)
{
    wd_config cfg = {0};
    cfg.command = strdup("true");
    cfg.timeout_ns = 5;
    const wd_config *s = wd_config_share(&cfg);
    ck_assert_ptr_nonnull(s);
    /* Moved: the caller's copy no longer owns the strings. */
    ck_assert_ptr_null(cfg.command);
    ck_assert_str_eq(s->command, "true");
    ck_assert_ptr_eq(wd_config_ref(s), s);
    wd_config_unref(s);
    ck_assert_uint_eq(s->timeout_ns, 5); /* one reference left */
    wd_config_unref(s);                  /* frees: ASan would see a leak */
    wd_config_unref(NULL);
}
END_TEST

/* ---- a generation's own thread ----------------------------------------- */

static void
count_notify(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static bool
in_init(void *c)
{
    return ((struct gen_counters *)c)->in_init == 1;
}

START_TEST(gen_hooks_on_own_thread)
{
    struct gen_counters *c = counters("c");
    c->hold_init = 1;
    const wd_config *cfg = plugin_config("g.ini", "", "generation", "c");
    atomic_int notes = 0;
    wd_gen *g;
    /* job_init blocks, the open does not. */
    ck_assert_int_eq(wd_gen_open(cfg, NULL, count_notify, &notes, &g), 0);
    ck_assert(tu_wait_until(in_init, c, TU_DEADLINE_MS));
    ck_assert_int_eq(wd_gen_state(g), WD_GEN_OPENING);
    ck_assert_int_ne(c->init_tid, gettid());
    ck_assert_int_eq(notes, 0);
    c->hold_init = 0;
    ck_assert(tu_wait_until(not_opening, g, TU_DEADLINE_MS));
    ck_assert_int_eq(wd_gen_state(g), WD_GEN_OPEN);
    ck_assert_int_eq(notes, 1);
    ck_assert_uint_eq(wd_gen_id(g) > 0, 1);
    ck_assert_ptr_eq(wd_gen_config(g), cfg);
    wd_config_unref(cfg); /* the generation holds its own */
    /* The last reference closes it, on the same thread as job_init. */
    wd_gen_unref(g);
    ck_assert(tu_wait_until(closed, g, TU_DEADLINE_MS));
    ck_assert_int_eq(notes, 2);
    ck_assert_int_eq(c->inits, 1);
    ck_assert_int_eq(c->finis, 1);
    ck_assert_int_eq(c->fini_tid, c->init_tid);
    wd_gen_free(g);
}
END_TEST

START_TEST(gen_open_fails)
{
    const wd_config *cfg = plugin_config("g.ini", "", "initfail", NULL);
    wd_gen *g;
    ck_assert_int_eq(wd_gen_open(cfg, NULL, NULL, NULL, &g), 0);
    wd_config_unref(cfg);
    ck_assert(tu_wait_until(not_opening, g, TU_DEADLINE_MS));
    ck_assert_int_eq(wd_gen_state(g), WD_GEN_FAILED);
    ck_assert_ptr_nonnull(strstr(wd_gen_error(g), "job_init returned 7"));
    ck_assert_ptr_nonnull(strstr(wd_gen_error(g), "g.ini"));
    wd_gen_kill(g, SIGKILL); /* nothing to kill: a no-op */
    wd_gen_unref(g);
    free_gen(g);
}
END_TEST

/* ---- the reload core ------------------------------------------------------
 */

struct running {
    struct gen_counters *c;
    unsigned long n;
};

static bool
all_running(void *arg)
{
    struct running *r = arg;
    return r->c->running == r->n;
}

struct switched {
    struct gen_counters *old, *now;
    int workers;
};

/* Every worker left the old generation (released: job_fini ran) and ran
 * the new one many times. */
static bool
all_switched(void *arg)
{
    struct switched *s = arg;
    int n = s->workers;
    return s->old->finis == 1 && s->now->news == n &&
           s->now->started >= 10ul * (unsigned long)n &&
           s->now->workers == (1ul << n) - 1;
}

/* Two generations of generation.so, A then B, each counting into its own
 * file; B's runs are released, A's wait. */
struct two {
    struct gen_counters *a, *b;
    const wd_config *ca, *cb;
    wd_gen *ga, *gb;
};

static void
two_open(struct two *t, const char *pool)
{
    t->a = counters("a");
    t->b = counters("b");
    t->b->release = 1;
    t->ca = plugin_config("a.ini", pool, "generation", "a");
    t->cb = plugin_config("b.ini", pool, "generation", "b");
    t->ga = open_gen(t->ca);
    t->gb = open_gen(t->cb);
}

/* After the pool: B's last reference goes, then both handles. */
static void
two_close(struct two *t)
{
    free_gen(t->ga);
    wd_gen_unref(t->gb);
    free_gen(t->gb);
    wd_config_unref(t->ca);
    wd_config_unref(t->cb);
}

START_TEST(reload_switches_every_worker)
{
    struct two t;
    two_open(&t, "Initial = 3\n");
    struct gen_counters *a = t.a, *b = t.b;
    wd_gen *ga = t.ga, *gb = t.gb;
    wd_pool *p = start_pool(t.ca, ga);
    wd_gen_unref(ga); /* the pool and its workers hold it now */
    /* Each worker is in a run of A, which waits for the release. */
    struct running r = {a, 3};
    ck_assert(tu_wait_until(all_running, &r, TU_DEADLINE_MS));
    wd_pool_install(p, gb);
    /* The runs in progress go on with A; nothing of B ran yet, and A is
     * not released while its workers hold it. */
    ck_assert_uint_eq(a->started, 3);
    ck_assert_uint_eq(a->running, 3);
    ck_assert_int_eq(b->news, 0);
    ck_assert_int_eq(a->finis, 0);
    a->release = 1;
    struct switched s = {a, b, 3};
    ck_assert(tu_wait_until(all_switched, &s, TU_DEADLINE_MS));
    /* A was never started again: 3 runs, one per worker, and each
     * worker's state was freed on its own thread before A's job_fini. */
    ck_assert_uint_eq(a->started, 3);
    ck_assert_int_eq(a->news, 3);
    ck_assert_int_eq(a->frees, 3);
    ck_assert_int_eq(a->foreign, 0);
    ck_assert_int_eq(a->fini_tid, a->init_tid);
    ck_assert_int_ne(a->fini_tid, gettid());
    close_pool(p);
    /* B's states went when the workers stopped, then B itself. */
    two_close(&t);
    ck_assert_int_eq(b->frees, 3);
    ck_assert_int_eq(b->foreign, 0);
    ck_assert_int_eq(b->finis, 1);
}
END_TEST

/* A generation no worker runs is released as soon as it is replaced. */
START_TEST(reload_unused_released_at_once)
{
    struct two t;
    two_open(&t, "Initial = 2\n");
    struct gen_counters *a = t.a, *b = t.b;
    wd_pool *p;
    ck_assert_int_eq(wd_pool_new(&p, &t.ca->pool, NULL, NULL), 0);
    wd_pool_install(p, t.ga);
    wd_gen_unref(t.ga);
    wd_pool_install(p, t.gb);
    ck_assert(tu_wait_until(closed, t.ga, TU_DEADLINE_MS));
    ck_assert_int_eq(a->finis, 1);
    ck_assert_int_eq(a->news, 0);
    ck_assert_int_eq(wd_pool_start(p), 0);
    ck_assert_int_eq(workers_pool_more(wd_pool_workers(p)), 0);
    struct switched s = {a, b, 3};
    ck_assert(tu_wait_until(all_switched, &s, TU_DEADLINE_MS));
    ck_assert_uint_eq(a->started, 0);
    close_pool(p);
    two_close(&t);
    ck_assert_int_eq(b->frees, 3);
}
END_TEST

static bool
pool_failed(void *p)
{
    return wd_pool_job_error(p) != 0;
}

/* A plugin rebuilt at the same path, even overwritten in place (same
 * inode), is loaded anew: the new generation runs the new code. */
START_TEST(reload_loads_rebuilt_plugin)
{
    char *first = tu_build_path("tests/plugins/generation.so");
    char *second = tu_build_path("tests/plugins/failing.so");
    char *so = tpath("p.so"), text[1 << 16];
    FILE *f = fopen(first, "re");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    ck_assert_uint_lt(n, sizeof text);
    write_file(so, text, n);
    struct gen_counters *a = counters("a");
    const wd_config *ca =
        plugin_config("a.ini", "Initial = 2\nStopOnErrors = on\n", so, "a");
    wd_gen *ga = open_gen(ca);
    wd_pool *p = start_pool(ca, ga);
    wd_gen_unref(ga);
    struct running r = {a, 2};
    ck_assert(tu_wait_until(all_running, &r, TU_DEADLINE_MS));

    ck_assert_ptr_nonnull(f = fopen(second, "re"));
    n = fread(text, 1, sizeof text, f);
    fclose(f);
    write_file(so, text, n); /* truncated and rewritten: same inode */
    const wd_config *cb = plugin_config("b.ini", "", so, NULL);
    wd_gen *gb = open_gen(cb);
    wd_pool_install(p, gb);
    a->release = 1;
    /* failing.so's job_do returns -EIO: the pool records it (StopOnErrors
     * is workersd's, pool.c: the daemon's loop then closes the pool, and
     * the library's own close sees no error). */
    ck_assert(tu_wait_until(pool_failed, p, TU_DEADLINE_MS));
    ck_assert_int_eq(wd_pool_job_error(p), -EIO);
    ck_assert_int_eq(workers_pool_close(wd_pool_workers(p), NULL), 0);
    wd_pool_free(p);
    free_gen(ga);
    ck_assert_uint_eq(a->started, 2);
    ck_assert_int_eq(a->finis, 1);
    wd_gen_unref(gb);
    free_gen(gb);
    wd_config_unref(ca);
    wd_config_unref(cb);
    free(first);
    free(second);
}
END_TEST

Suite *make_generation_suite(void);

Suite *
make_generation_suite(void)
{
    Suite *s = suite_create("generation");
    TCase *tc = tcase_create("generation");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, snapshot_shared);
    tcase_add_test(tc, gen_hooks_on_own_thread);
    tcase_add_test(tc, gen_open_fails);
    tcase_add_test(tc, reload_switches_every_worker);
    tcase_add_test(tc, reload_unused_released_at_once);
    tcase_add_test(tc, reload_loads_rebuilt_plugin);
    suite_add_tcase(s, tc);
    return s;
}
