/*
 * log.c: one line per event on stderr.
 *
 * Each line is formatted into a local buffer and written with a single
 * write(2), so lines from the loop thread and the worker threads never
 * interleave (stderr is unbuffered anyway, but stdio would split a line
 * into several writes). When stderr is the journal (JOURNAL_STREAM names
 * stderr's device and inode) each line starts with sd-daemon's "<N>"
 * priority prefix and nothing else: the journal adds time and name. Else a
 * line reads "workersd: error: message", plain for a terminal or a file.
 *
 * wd_log_limited() lets a line that may repeat fast (a signal storm during
 * a close) through once per second at most; the next line that passes
 * counts the ones dropped meanwhile, "(N more)".
 *
 * State: two ints written once by wd_log_init() before any thread starts,
 * read-only afterwards, so wd_log() takes no lock.
 */
#include "workersd.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Long enough for any message we write (WD_ERRLEN and its prefix), bounded
 * so that a line is one write, atomic on a pipe (PIPE_BUF). */
#define LOG_LINE_MAX PIPE_BUF
_Static_assert(LOG_LINE_MAX >= WD_ERRLEN + 64, "an error message fits a line");

static int log_max_prio = WD_LOG_INFO;
static bool log_journal;

/* True when $JOURNAL_STREAM ("dev:ino") is the file stderr refers to. */
static bool
stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    int end = 0;

    if (js == NULL || sscanf(js, "%llu:%llu%n", &dev, &ino, &end) != 2 ||
        js[end] != '\0')
        return false;
    if (fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

void
wd_log_init(int verbosity)
{
    log_max_prio = verbosity > 0   ? WD_LOG_DEBUG
                   : verbosity < 0 ? WD_LOG_WARNING
                                   : WD_LOG_INFO;
    log_journal = stderr_is_journal();
}

static const char *
prio_word(int prio)
{
    switch (prio) {
    case WD_LOG_ERR:
        return "error: ";
    case WD_LOG_WARNING:
        return "warning: ";
    default:
        return "";
    }
}

static void
vlog(int prio, const char *suffix, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    size_t len;
    int n;

    if (log_journal)
        n = snprintf(line, sizeof line, "<%d>", prio);
    else
        n = snprintf(line, sizeof line, "workersd: %s", prio_word(prio));
    len = (size_t)n;

    n = vsnprintf(line + len, sizeof line - len, fmt, ap);
    if (n < 0)
        return;
    len += (size_t)n;
    if (suffix != NULL && len < sizeof line)
        len += (size_t)snprintf(line + len, sizeof line - len, "%s", suffix);
    /* A message too long for the line is cut, and says so, rather than
     * spread over several writes. */
    if (len > sizeof line - 2) {
        len = sizeof line - 2;
        memcpy(line + len - 3, "...", 3);
    }
    line[len++] = '\n';

    /* One write: a partial write to a pipe of this size cannot happen
     * (PIPE_BUF), and to a file or tty it is not worth splitting the line. */
    while (write(STDERR_FILENO, line, len) < 0 && errno == EINTR)
        ;
}

void
wd_log(int prio, const char *fmt, ...)
{
    va_list ap;

    if (prio > log_max_prio)
        return;
    va_start(ap, fmt);
    vlog(prio, NULL, fmt, ap);
    va_end(ap);
}

void
wd_log_limited(struct wd_log_limit *l, int prio, const char *fmt, ...)
{
    uint64_t now = wd_now_ns();
    char more[32] = "";
    va_list ap;

    if (prio > log_max_prio)
        return;
    if (l->passed && now - l->last_ns < WD_LOG_LIMIT_NS) {
        l->dropped++;
        return;
    }
    if (l->dropped != 0)
        snprintf(more, sizeof more, " (%u more)", l->dropped);
    l->passed = true;
    l->last_ns = now;
    l->dropped = 0;
    va_start(ap, fmt);
    vlog(prio, more, fmt, ap);
    va_end(ap);
}
