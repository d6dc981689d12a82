/*
 * `make bench`: measures libworkers and workersd against baselines taken
 * in the same run and prints one table (see bench.h for the method, and
 * issue 5 / README "Performance" for the targets).
 *
 * Usage: bench [--daemon PATH] [--reps N] [--window-ms MS] [--only 1,2,..]
 * The same binary is re-executed with --child-rss for the memory figures, so
 * that each is the peak of a fresh process.
 *
 * This file: the command line, timing and statistics helpers, and the table.
 */
#include "bench.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int n_pass, n_miss;

uint64_t
bn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
bn_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
bn_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void
bn_die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_FAILURE);
}

void
bn_check(int err, const char *what)
{
    if (err != 0)
        bn_die("%s: %s (%s)", what, workers_strerror(err),
               workers_err_name(err));
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bn_stat
bn_stat_of(double *v, int n)
{
    bn_stat s = {NAN, NAN, NAN};
    if (n <= 0)
        return s;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    s.min = v[0];
    s.max = v[n - 1];
    s.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return s;
}

double
bn_mean(const double *v, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i];
    return n ? sum / (double)n : NAN;
}

double
bn_p99(double *v, size_t n)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)ceil(0.99 * (double)n) - 1;
    return v[i < n ? i : n - 1];
}

/* Three significant digits or so, never exponent notation. */
static void
fmt_num(char *buf, size_t len, double v)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else if (fabs(v) >= 100)
        snprintf(buf, len, "%.0f", v);
    else if (fabs(v) >= 10)
        snprintf(buf, len, "%.1f", v);
    else
        snprintf(buf, len, "%.2f", v);
}

static void
fmt_stat(char *buf, size_t len, bn_stat s)
{
    char a[24], b[24], c[24];
    fmt_num(a, sizeof a, s.med);
    fmt_num(b, sizeof b, s.min);
    fmt_num(c, sizeof c, s.max);
    if (isnan(s.med))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%s [%s..%s]", a, b, c);
}

#define ROW_FMT "%-34s %-11s %-22s %-26s %-22s %7s  %-22s %s\n"

void
bn_section(const char *title)
{
    printf("\n%s\n", title);
}

static void
print_header(void)
{
    printf(ROW_FMT, "figure", "unit", "pool: median [min..max]", "baseline",
           "baseline: median [min..max]", "ratio", "target (issue 5)",
           "result");
}

void
bn_print(const bn_row *r)
{
    char pool[128], base[128], ratio[48] = "", rnum[32];
    double q = r->ratio;
    fmt_stat(pool, sizeof pool, r->pool);
    if (r->base_what)
        fmt_stat(base, sizeof base, r->base);
    else
        snprintf(base, sizeof base, "%s", "");
    if (isnan(q) && r->base_what && r->base.med != 0)
        q = r->pool.med / r->base.med;
    if (!isnan(q)) {
        fmt_num(rnum, sizeof rnum, q);
        snprintf(ratio, sizeof ratio, "%sx", rnum);
    }

    const char *verdict = "";
    bool ok = true;
    switch (r->judge) {
    case BN_NONE:
        break;
    case BN_RATIO_LE:
        ok = !isnan(q) && q <= r->limit;
        break;
    case BN_RATIO_GE:
        ok = !isnan(q) && q >= r->limit;
        break;
    case BN_ABS_LE:
        ok = !isnan(r->pool.med) && r->pool.med <= r->limit;
        break;
    case BN_DIFF_LE:
        ok = !isnan(r->pool.med) && r->pool.med - r->base.med <= r->limit;
        break;
    }
    if (r->judge != BN_NONE) {
        verdict = ok ? "PASS" : "MISS";
        if (ok)
            n_pass++;
        else
            n_miss++;
    }
    printf(ROW_FMT, r->what, r->unit, pool, r->base_what ? r->base_what : "",
           base, ratio, r->target ? r->target : "", verdict);
    if (r->extra)
        printf("%-34s %s\n", "", r->extra);
    fflush(stdout);
}

void
bn_totals(int *pass, int *miss)
{
    *pass = n_pass;
    *miss = n_miss;
}

static _Noreturn void
usage(void)
{
    fprintf(stderr, "usage: bench [--daemon PATH] [--reps N] [--window-ms MS] "
                    "[--only 1,2,3,4,5,6,7,8]\n");
    exit(64);
}

static long
num_arg(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        usage();
    return v;
}

int
main(int argc, char **argv)
{
    bn_opts o = {.reps = 5, .window_ms = 200, .sections = 0x1fe};
    static char self[PATH_MAX];

    if (argc == 5 && strcmp(argv[1], "--child-rss") == 0)
        return bn_rss_child(argv[2], (int)num_arg(argv[3], 1, 1000000),
                            (size_t)num_arg(argv[4], 0, LONG_MAX));

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        if (strcmp(a, "--daemon") == 0) {
            o.daemon = argv[++i];
        } else if (strcmp(a, "--reps") == 0) {
            o.reps = (int)num_arg(argv[++i], 5, 1000);
        } else if (strcmp(a, "--window-ms") == 0) {
            o.window_ms = (unsigned)num_arg(argv[++i], 10, 100000);
        } else if (strcmp(a, "--only") == 0) {
            o.sections = 0;
            for (const char *p = argv[++i]; *p; p++)
                if (*p >= '1' && *p <= '8')
                    o.sections |= 1u << (*p - '0');
                else if (*p != ',')
                    usage();
        } else {
            usage();
        }
    }
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        bn_die("readlink /proc/self/exe: %s", strerror(errno));
    self[n] = '\0';
    o.self = self;

    uint64_t t0 = bn_now_ns();
    printf("libworkers %s bench: %ld CPUs online, %d repetitions per "
           "figure, median [min..max]; ratio = pool / baseline, both "
           "measured in this run\n",
           workers_version(), sysconf(_SC_NPROCESSORS_ONLN), o.reps);
    print_header();
    if (o.sections & (1u << 1))
        bn_throughput(&o);
    if (o.sections & (1u << 2))
        bn_scale(&o);
    if (o.sections & (1u << 3))
        bn_rss(&o);
    if (o.sections & (1u << 4))
        bn_shell(&o);
    if (o.sections & (1u << 5)) {
        if (o.daemon)
            bn_signal(&o);
        else
            printf("\n5. skipped: no --daemon PATH given\n");
    }
    if (o.sections & (1u << 6))
        bn_metrics(&o);
    if (o.sections & (1u << 7)) {
        if (o.daemon)
            bn_control(&o);
        else
            printf("\n7. skipped: no --daemon PATH given\n");
    }
    if (o.sections & (1u << 8))
        bn_spool(&o);

    int pass, miss;
    bn_totals(&pass, &miss);
    printf("\ntargets: %d PASS, %d MISS; bench took %.1f s\n", pass, miss,
           (double)(bn_now_ns() - t0) / 1e9);
    printf("\nreference (issue 5, a machine like this one): Go package: "
           "~9 ns/run/CPU empty job, counter 28 M runs/s and elapsed 11 M "
           "runs/s at 2 workers,\n  More() 6 us, Less() 0.6 us, Close() of "
           "1,000 blocked workers 3.9 ms, 10,000 idle workers 32 MB; "
           "GNU parallel ~350 runs/s of sh -c true.\n");
    return EXIT_SUCCESS;
}
