/*
 * Section 3: peak resident memory of 10,000 idle workers (jobs blocked in
 * workers_ctx_wait, 64 KiB stacks) beside 10,000 bare threads with the same
 * stack size blocked on a futex. Each figure is VmHWM of a fresh process:
 * this program re-executed with --child-rss, which reports its peak once
 * every thread is blocked and then exits without tearing them down.
 */
#include "bench.h"

#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NIDLE 10000
#define STACK (64 * 1024)

/* A "Vm...:" line of /proc/self/status, in kB. */
static long
status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long kb = -1;
    size_t klen = strlen(key);
    if (!f)
        bn_die("/proc/self/status: cannot open");
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            kb = strtol(line + klen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

int
bn_rss_child(const char *kind, int n, size_t stack)
{
    long before = status_kb("VmRSS");
    if (strcmp(kind, "pool") == 0) {
        workers_config cfg = {.initial = n, .stack_size = stack};
        workers_pool *p;
        bn_check(workers_pool_new_with_config(&p, &cfg, NULL, 0), "pool new");
        workers_job job = workers_job_func(bn_idle_job, NULL);
        bn_check(workers_pool_start(p, &job), "pool start");
    } else if (strcmp(kind, "threads") == 0) {
        pthread_attr_t attr;
        struct bn_rawt *r = aligned_alloc(BN_CACHELINE, (size_t)n * sizeof *r);
        if (!r)
            bn_die("out of memory");
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, stack);
        for (int i = 0; i < n; i++) {
            atomic_store(&r[i].word, 0);
            int err = pthread_create(&r[i].t, &attr, bn_raw_idle, &r[i]);
            if (err)
                bn_die("pthread_create: %s", strerror(err));
        }
    } else {
        bn_die("--child-rss: pool or threads, not %s", kind);
    }
    bn_wait_count(strcmp(kind, "pool") == 0 ? &bn_entered : &bn_raw_entered, n,
                  "idle threads");
    printf("%ld %ld\n", status_kb("VmHWM"), before);
    fflush(stdout);
    /* exit_group ends the blocked threads; nothing to tear down. */
    _exit(0);
}

/* Peak and starting RSS of one child, in kB. */
static void
child(const bn_opts *o, const char *kind, double *hwm, double *base)
{
    int fds[2];
    char n[16], st[32], out[128];
    snprintf(n, sizeof n, "%d", NIDLE);
    snprintf(st, sizeof st, "%d", STACK);
    if (pipe2(fds, O_CLOEXEC) != 0)
        bn_die("pipe2 failed");
    char *argv[] = {(char *)o->self, "--child-rss", (char *)kind, n, st, NULL};
    int pid = bn_spawn(argv, NULL, fds[1]);
    close(fds[1]);
    bn_read_all(fds[0], out, sizeof out);
    close(fds[0]);
    int status = bn_reap(pid, 120000);
    long h, b;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        sscanf(out, "%ld %ld", &h, &b) != 2)
        bn_die("--child-rss %s failed (status %#x, output \"%s\")", kind,
               status, out);
    *hwm = (double)h;
    *base = (double)b;
}

void
bn_rss(const bn_opts *o)
{
    int R = o->reps;
    double *ph = calloc((size_t)R, sizeof(double));
    double *pb = calloc((size_t)R, sizeof(double));
    double *th = calloc((size_t)R, sizeof(double));
    double *tb = calloc((size_t)R, sizeof(double));
    double *per_p = calloc((size_t)R, sizeof(double));
    double *per_t = calloc((size_t)R, sizeof(double));
    if (!ph || !pb || !th || !tb || !per_p || !per_t)
        bn_die("out of memory");
    for (int r = 0; r < R; r++) {
        child(o, "pool", &ph[r], &pb[r]);
        child(o, "threads", &th[r], &tb[r]);
        per_p[r] = (ph[r] - pb[r]) * 1024 / NIDLE;
        per_t[r] = (th[r] - tb[r]) * 1024 / NIDLE;
        ph[r] /= 1024;
        th[r] /= 1024;
    }
    char title[160], what[64], bw[64];
    snprintf(title, sizeof title,
             "3. Memory: peak RSS (VmHWM) of a fresh process, %d KiB "
             "stacks",
             STACK / 1024);
    bn_section(title);
    snprintf(what, sizeof what, "%d idle workers", NIDLE);
    snprintf(bw, sizeof bw, "%d bare threads", NIDLE);
    bn_row row = {.what = what,
                  .unit = "MiB",
                  .pool = bn_stat_of(ph, R),
                  .base_what = bw,
                  .base = bn_stat_of(th, R),
                  .ratio = NAN,
                  .judge = BN_RATIO_LE,
                  .limit = 1.2,
                  .target = "< 1.2x bare threads"};
    bn_print(&row);
    bn_row per = {.what = "  per worker, above process start",
                  .unit = "bytes",
                  .pool = bn_stat_of(per_p, R),
                  .base_what = "per bare thread",
                  .base = bn_stat_of(per_t, R),
                  .ratio = NAN};
    bn_print(&per);
    free(ph);
    free(pb);
    free(th);
    free(tb);
    free(per_p);
    free(per_t);
}
