/*
 * The generations the daemon holds (daemon.h): every one it opened, until
 * its handle is freed, so that the drain can kill the runs of any of them
 * and wait for all of them to close. Loop thread only: the generations'
 * threads reach the loop through gen_changed alone.
 */
#include "daemon.h"

#include <errno.h>
#include <stdlib.h>

/* A generation's thread: it opened or closed. */
static void
gen_notify(void *arg)
{
    struct wd_daemon *d = arg;
    ev_async_send(d->loop, &d->gen_changed);
}

int
wd_daemon_open(struct wd_daemon *d, const wd_config *cfg, wd_gen **out)
{
    if (d->ngens == d->gens_cap) {
        size_t cap = d->gens_cap != 0 ? 2 * d->gens_cap : 4;
        wd_gen **g = realloc(d->gens, cap * sizeof *g);
        if (g == NULL)
            return -ENOMEM;
        d->gens = g;
        d->gens_cap = cap;
    }
    wd_gen_shared shared = {.stats = d->stats,
                            .autoscale = wd_autoscaler_lib(d)};
    int r = wd_gen_open(cfg, &shared, gen_notify, d, out);
    if (r == 0)
        d->gens[d->ngens++] = *out;
    return r;
}

void
wd_daemon_install(struct wd_daemon *d, wd_gen *g)
{
    wd_pool_install(d->pool, g);
    wd_config_unref(d->cfg);
    d->cfg = wd_config_ref(wd_gen_config(g));
}

void
wd_daemon_kill(struct wd_daemon *d, int sig)
{
    for (size_t i = 0; i < d->ngens; i++)
        wd_gen_kill(d->gens[i], sig);
}

void
wd_daemon_reap_gens(struct wd_daemon *d)
{
    size_t kept = 0;
    for (size_t i = 0; i < d->ngens; i++) {
        if (wd_gen_state(d->gens[i]) == WD_GEN_CLOSED)
            wd_gen_free(d->gens[i]);
        else
            d->gens[kept++] = d->gens[i];
    }
    d->ngens = kept;
}
