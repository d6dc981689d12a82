/*
 * file.c: [metrics] File, the text for node_exporter's textfile collector,
 * rewritten every Interval by a libev timer on the loop thread.
 *
 * Atomic for readers: the text goes to a temp file in the same directory
 * (".NAME.XXXXXX", which the collector's *.prom glob never matches), then
 * rename(2) replaces the file in one step, so a scrape sees the old text
 * or the new, never a part. No fsync: a metrics file is worth nothing
 * after a crash (it is rewritten within Interval of the restart), and an
 * fsync could stall the loop for as long as the disk is busy. A failure
 * is logged once, and once more when writing works again.
 */
#include "metrics/metrics.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct wd_textfile {
    struct ev_loop *loop;
    wd_metrics *m;
    ev_timer timer;
    bool failing;
    char *path;
    char *tmp; /* mkostemp's template, filled afresh for each write */
    size_t tmplen;
};

static int
write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* 0, or a negative errno; *what names the step that failed. */
static int
replace(struct wd_textfile *t, const char **what)
{
    size_t len;
    const char *text = wd_metrics_text(t->m, &len);
    int fd, rc;

    *what = "render";
    if (text == NULL)
        return -ENOMEM;
    memcpy(t->tmp + t->tmplen - 6, "XXXXXX", 6);
    *what = "create a temp file";
    if ((fd = mkostemp(t->tmp, O_CLOEXEC)) < 0)
        return -errno;
    /* mkostemp makes it 0600; the collector may run as another user. */
    *what = "chmod";
    if ((rc = fchmod(fd, 0644) != 0 ? -errno : 0) == 0) {
        *what = "write";
        rc = write_all(fd, text, len);
    }
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0) {
        *what = "rename";
        if (rename(t->tmp, t->path) != 0)
            rc = -errno;
    }
    if (rc != 0)
        unlink(t->tmp);
    return rc;
}

static void
write_now(struct wd_textfile *t)
{
    const char *what;
    int rc = replace(t, &what);

    if (rc != 0 && !t->failing)
        wd_log(WD_LOG_WARNING, "[metrics] File = %s: cannot %s: %s", t->path,
               what, strerror(-rc));
    else if (rc == 0 && t->failing)
        wd_log(WD_LOG_INFO, "[metrics] File = %s: written again", t->path);
    t->failing = rc != 0;
}

static void
on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    write_now(w->data);
}

int
wd_textfile_start(wd_textfile **out, struct ev_loop *loop, const char *path,
                  uint64_t interval_ns, wd_metrics *m, char *err, size_t errlen)
{
    struct wd_textfile *t = calloc(1, sizeof *t);
    const char *slash = strrchr(path, '/');
    int dirlen = slash != NULL ? (int)(slash - path + 1) : 0;
    double every = (double)interval_ns / 1e9;

    if (t == NULL || (t->path = strdup(path)) == NULL ||
        asprintf(&t->tmp, "%.*s.%s.XXXXXX", dirlen, path, path + dirlen) < 0) {
        snprintf(err, errlen, "[metrics] File = %s: out of memory", path);
        if (t != NULL)
            free(t->path);
        free(t);
        return -ENOMEM;
    }
    t->tmplen = strlen(t->tmp);
    t->loop = loop;
    t->m = m;
    ev_timer_init(&t->timer, on_timer, every, every);
    t->timer.data = t;
    ev_timer_start(loop, &t->timer);
    write_now(t);
    *out = t;
    return 0;
}

void
wd_textfile_stop(wd_textfile *t)
{
    if (t == NULL)
        return;
    ev_timer_stop(t->loop, &t->timer);
    write_now(t);
    free(t->tmp);
    free(t->path);
    free(t);
}
