/*
 * Config snapshots: a loaded wd_config moved to the heap, immutable from
 * then on and shared by reference count, so each holder (a generation, the
 * loop's settings, later readers) keeps it exactly as long as it needs it
 * and the last one frees it. Counting takes no lock; the free happens once,
 * on whichever thread drops the last reference.
 */
#include "workersd.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct snapshot {
    atomic_uint refs;
    wd_config cfg;
};

static struct snapshot *
snapshot_of(const wd_config *cfg)
{
    return (struct snapshot *)((char *)(uintptr_t)cfg -
                               offsetof(struct snapshot, cfg));
}

const wd_config *
wd_config_share(wd_config *cfg)
{
    struct snapshot *s = malloc(sizeof *s);
    if (s == NULL)
        return NULL;
    atomic_init(&s->refs, 1);
    s->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    return &s->cfg;
}

const wd_config *
wd_config_ref(const wd_config *cfg)
{
    atomic_fetch_add_explicit(&snapshot_of(cfg)->refs, 1, memory_order_relaxed);
    return cfg;
}

void
wd_config_unref(const wd_config *cfg)
{
    if (cfg == NULL)
        return;
    struct snapshot *s = snapshot_of(cfg);
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        wd_config_free(&s->cfg);
        free(s);
    }
}
