/* Helpers for the core's suites: see coretest.h. */
#include "coretest.h"
#include "internal.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>

void
ct_gate_init(ct_gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = false;
    g->waiting = 0;
}

void
ct_gate_pass(ct_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->waiting++;
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    g->waiting--;
    pthread_mutex_unlock(&g->mu);
}

void
ct_gate_open(ct_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

int
ct_gate_waiting(ct_gate *g)
{
    pthread_mutex_lock(&g->mu);
    int n = g->waiting;
    pthread_mutex_unlock(&g->mu);
    return n;
}

int
ct_thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    ck_assert_ptr_nonnull(f);
    char line[256];
    int n = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    ck_assert_int_gt(n, 0);
    return n;
}

int
ct_dir_count(const char *path)
{
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int
ct_rc_job(workers_ctx *ctx, void *arg)
{
    (void)ctx;
    ct_rc *f = arg;
    atomic_fetch_add(&f->runs, 1);
    return atomic_load(&f->rc);
}

bool
ct_flag_set(void *arg)
{
    return atomic_load((atomic_int *)arg) != 0;
}

int
ct_pool_parked(workers_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    int n = 0;
    for (struct workers__list *l = pool->parked.next; l != &pool->parked;
         l = l->next)
        n++;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

int
ct_pool_threads(workers_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    int n = 0;
    for (struct workers__thread *t = pool->threads; t; t = t->next_all)
        n++;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

bool
ct_pool_stopped(workers_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    bool stopped = pool->stopped;
    pthread_mutex_unlock(&pool->lock);
    return stopped;
}

workers_pool_status
ct_status(workers_pool *pool)
{
    workers_pool_status st;
    workers_pool_status_get(pool, &st);
    return st;
}

void
ct_wait_resting(workers_pool *pool, int n)
{
    for (unsigned ms = 0; ct_status(pool).resting != n; ms++) {
        ck_assert_msg(ms < TU_DEADLINE_MS, "%d workers resting, want %d",
                      ct_status(pool).resting, n);
        tu_sleep_ms(1);
    }
}

int
ct_probe_job(workers_ctx *ctx, void *arg)
{
    ct_probe *p = arg;
    unsigned id = workers_ctx_worker_id(ctx);
    ck_assert_uint_ge(id, 1);
    ck_assert_uint_le(id, CT_MAX_ID);
    atomic_store(&p->thread[id], (unsigned long)pthread_self());
    atomic_fetch_add(&p->runs[id], 1);
    atomic_fetch_add(&p->total, 1);
    int err = workers_ctx_wait(ctx, 60ull * 1000000000u);
    atomic_fetch_add(&p->stops[id], 1);
    return err;
}
