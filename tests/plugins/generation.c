/*
 * Test plugin for generations and the plugin hooks' threads: every counter
 * and switch is in the file Arg names (struct gen_counters, generation.h),
 * mapped shared by job_init and unmapped by job_fini. Runs wait on their
 * context until the test sets `release`, then take 1 ms each.
 * job_new/job_do/job_free note a thread other than the state's maker in
 * `foreign`; job_init and job_fini note their thread ids.
 */
#include "generation.h"
#include "workers.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int job_init(const char *arg);
void *job_new(void);
void job_free(void *state);
void job_fini(void);
int job_do(workers_ctx *ctx, void *state);

static struct gen_counters *c;

struct state {
    pthread_t maker;
};

static void
nap(void)
{
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
}

/* Drops every reference to this very object, as a plugin that dlcloses
 * itself would: only RTLD_NODELETE keeps it mapped (without it, this very
 * code would be unmapped under its feet). */
static void
close_self(void)
{
    Dl_info info;
    void *h;
    if (dladdr((void *)(uintptr_t)close_self, &info) == 0 ||
        (h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD)) == NULL)
        return;
    /* More than every reference workersd took (a NODELETE object's
     * dlclose is a no-op that succeeds). */
    for (int i = 0; i < 8 && dlclose(h) == 0; i++)
        ;
}

int
job_init(const char *arg)
{
    int fd;
    void *map;
    if (arg == NULL || (fd = open(arg, O_RDWR | O_CLOEXEC)) < 0)
        return 1;
    map = mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return 1;
    c = map;
    c->in_init = 1;
    c->init_tid = gettid();
    while (c->hold_init)
        nap();
    if (c->helper) {
        char *argv[] = {"true", NULL};
        pid_t pid;
        if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, NULL) == 0)
            c->helper_pid = pid;
    }
    if (c->close_self)
        close_self();
    c->inits++;
    c->in_init = 0;
    return 0;
}

void *
job_new(void)
{
    struct state *s = malloc(sizeof *s);
    if (s != NULL)
        s->maker = pthread_self();
    c->news++;
    return s;
}

void
job_free(void *state)
{
    struct state *s = state;
    if (!pthread_equal(s->maker, pthread_self()))
        c->foreign++;
    c->frees++;
    free(s);
}

int
job_do(workers_ctx *ctx, void *state)
{
    struct state *s = state;
    if (!pthread_equal(s->maker, pthread_self()))
        c->foreign++;
    c->workers |= 1ul << ((workers_ctx_worker_id(ctx) - 1) % 64);
    c->started++;
    c->running++;
    int r = 0;
    while (!c->release && r == 0)
        r = workers_ctx_wait(ctx, 1000000u);
    if (r == 0)
        r = workers_ctx_wait(ctx, 1000000u);
    c->running--;
    return r;
}

void
job_fini(void)
{
    c->in_fini = 1;
    c->fini_tid = gettid();
    while (c->hold_fini)
        nap();
    if (c->helper_pid > 0) {
        int st = 0;
        c->helper_status =
            waitpid(c->helper_pid, &st, 0) == c->helper_pid ? st : -errno;
    }
    c->finis++;
    c->in_fini = 0;
    munmap(c, sizeof *c);
}
