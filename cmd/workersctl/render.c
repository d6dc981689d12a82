/*
 * render.c: a reply as people read it, one line (status adds a table of
 * its workers). Members the reply lacks are left out of the line rather
 * than shown as zero, so an older or newer daemon still renders.
 */
#include "workersctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
plural(long long n)
{
    return n == 1 ? "" : "s";
}

/* A member as an integer: true with *out when it is one. */
static bool
integer(const json_t *obj, const char *key, long long *out)
{
    const json_t *v = json_object_get(obj, key);

    if (!json_is_integer(v))
        return false;
    *out = (long long)json_integer_value(v);
    return true;
}

/* "workersd 1234: running, 4 workers (3 busy), min 1, max 8, ..." */
static void
print_summary(const json_t *r)
{
    const json_t *autoscale = json_object_get(r, "autoscale");
    const char *config = json_string_value(json_object_get(r, "config"));
    long long v;

    printf("workersd");
    if (integer(r, "pid", &v))
        printf(" %lld", v);
    printf(": %s", json_is_true(json_object_get(r, "closing"))  ? "closing"
                   : json_is_true(json_object_get(r, "paused")) ? "paused"
                                                                : "running");
    if (integer(r, "workers", &v))
        printf(", %lld worker%s", v, plural(v));
    if (integer(r, "busy", &v))
        printf(" (%lld busy)", v);
    if (integer(r, "min", &v))
        printf(", min %lld", v);
    /* An unlimited Max is null in the status JSON. */
    if (json_is_null(json_object_get(r, "max")))
        printf(", no max");
    else if (integer(r, "max", &v))
        printf(", max %lld", v);
    if (json_is_object(autoscale))
        printf(", autoscale %s",
               json_is_true(json_object_get(autoscale, "enabled")) ? "on"
                                                                   : "off");
    if (integer(r, "reloads", &v))
        printf(", %lld reload%s", v, plural(v));
    if (config != NULL)
        printf(", config %s", config);
    printf("\n");
}

/* "autoscale: on, target 0.80, utilisation 0.72; last: 4 -> 7 workers
 * (utilisation 0.97 over 10s, target 0.80)", when [autoscale] is set. */
static void
print_autoscale(const json_t *a)
{
    const char *last = json_string_value(json_object_get(a, "last_decision"));

    if (!json_is_object(a))
        return;
    printf("autoscale: %s, target %.2f, utilisation %.2f; %s%s\n",
           json_is_true(json_object_get(a, "enabled")) ? "on" : "off",
           json_number_value(json_object_get(a, "target")),
           json_number_value(json_object_get(a, "utilisation")),
           last != NULL ? "last: " : "no change yet", last != NULL ? last : "");
}

/* The age of a run in progress: "0.4s", "12.0s", "3m05s", "2h10m"; "-"
 * when the worker runs nothing (null or absent). */
static const char *
age(const json_t *v, char *buf, size_t len)
{
    double s;

    if (!json_is_number(v))
        return "-";
    s = json_number_value(v);
    if (s < 60)
        snprintf(buf, len, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, len, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, len, "%lldh%02lldm", (long long)(s / 3600),
                 (long long)(s / 60) % 60);
    return buf;
}

static long long
worker_id(const json_t *w)
{
    long long id = 0;

    integer(w, "id", &id);
    return id;
}

static int
by_id(const void *a, const void *b)
{
    long long x = worker_id(*(json_t *const *)a);
    long long y = worker_id(*(json_t *const *)b);

    return (x > y) - (x < y);
}

/* The workers' table, sorted by id. */
static void
print_workers(const json_t *list)
{
    size_t n = json_array_size(list);
    json_t **sorted = malloc((n ? n : 1) * sizeof *sorted);
    char buf[32];

    if (sorted == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        sorted[i] = json_array_get(list, i);
    qsort(sorted, n, sizeof *sorted, by_id);
    printf("%6s  %-9s %9s %9s  %s\n", "ID", "STATE", "RUNS", "FAILURES",
           "RUN AGE");
    for (size_t i = 0; i < n; i++) {
        const json_t *w = sorted[i];
        const char *state = json_string_value(json_object_get(w, "state"));
        long long runs = 0, failures = 0;

        integer(w, "runs", &runs);
        integer(w, "failures", &failures);
        printf("%6lld  %-9s %9lld %9lld  %s\n", worker_id(w),
               state ? state : "?", runs, failures,
               age(json_object_get(w, "run_age_s"), buf, sizeof buf));
    }
    free(sorted);
}

void
ctl_render(const json_t *reply, enum wd_control_cmd cmd)
{
    const char *error = json_string_value(json_object_get(reply, "error"));
    const char *text = json_string_value(json_object_get(reply, "text"));
    const char *msg = json_string_value(json_object_get(reply, "message"));
    const json_t *list = json_object_get(reply, "worker_list");

    if (!json_is_true(json_object_get(reply, "ok"))) {
        fprintf(stderr, "workersctl: %s\n", error ? error : "refused");
        return;
    }
    if (text != NULL) {
        fputs(text, stdout);
        if (text[0] != '\0' && text[strlen(text) - 1] != '\n')
            putchar('\n');
    } else if (cmd == WD_CONTROL_STATUS &&
               json_object_get(reply, "workers") != NULL) {
        print_summary(reply);
        print_autoscale(json_object_get(reply, "autoscale"));
        if (json_array_size(list) > 0)
            print_workers(list);
    } else {
        printf("%s\n", msg ? msg : "ok");
    }
}

int
ctl_exit_code(const json_t *reply)
{
    long long code;

    if (integer(reply, "exit", &code) && code >= 0 && code <= 255)
        return (int)code;
    return json_is_true(json_object_get(reply, "ok")) ? WD_CONTROL_EXIT_OK
                                                      : WD_CONTROL_EXIT_REFUSED;
}
