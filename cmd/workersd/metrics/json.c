/*
 * json.c: the status object as one line of JSON text. Its fields are a
 * stable interface, documented in README.md ("Status as JSON").
 *
 * Every string is escaped by jansson (quotes, backslashes, control
 * characters): each is made a json_string and dumped with JSON_ENCODE_ANY.
 * jansson refuses a string that is not valid UTF-8 (a config path is any
 * bytes): such a string is repaired first, each invalid byte becoming
 * U+FFFD, as a UTF-8 decoder reports it. The rest is numbers, booleans,
 * null and fixed names, written here directly: a tree of jansson objects
 * for 1,000 workers costs a few milliseconds in small allocations, the
 * direct text a tenth of that. Tests parse the text back with jansson.
 */
#include "metrics/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at p (n bytes left), 0 if none:
 * no overlong form, no surrogate, nothing above U+10FFFF. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t len;
    uint32_t cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        len = 2, cp = p[0] & 0x1Fu;
    else if ((p[0] & 0xF0) == 0xE0)
        len = 3, cp = p[0] & 0x0Fu;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        len = 4, cp = p[0] & 0x07u;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3Fu);
    }
    if (cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

json_t *
wd_json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL)
        return j;

    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), out = 0;
    char *fixed = malloc(3 * n + 1); /* U+FFFD is 3 bytes */
    if (fixed == NULL)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq(p + i, n - i);
        if (len == 0) {
            memcpy(fixed + out, "\xEF\xBF\xBD", 3);
            out += 3;
            i++;
        } else {
            memcpy(fixed + out, p + i, len);
            out += len;
            i += len;
        }
    }
    j = json_stringn(fixed, out);
    free(fixed);
    return j;
}

static int
append(const char *text, size_t len, void *arg)
{
    wd_buf *b = arg;

    wd_buf_append(b, text, len);
    return b->failed ? -1 : 0;
}

/* "key": */
static void
key(wd_buf *b, const char *name)
{
    wd_buf_append(b, "\"", 1);
    wd_buf_append(b, name, strlen(name));
    wd_buf_append(b, "\":", 2);
}

/* A string as jansson escapes it. */
static void
text(wd_buf *b, const char *s)
{
    json_t *j = wd_json_text(s);

    if (j == NULL || json_dump_callback(j, append, b, JSON_ENCODE_ANY) != 0)
        b->failed = true;
    json_decref(j);
}

/* Unsigned decimal, without printf: the worker list holds thousands. */
static void
num(wd_buf *b, uint64_t v)
{
    char digits[24];
    size_t i = sizeof digits;

    do
        digits[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    wd_buf_append(b, digits + i, sizeof digits - i);
}

static void
signed_num(wd_buf *b, int64_t v)
{
    if (v < 0)
        wd_buf_append(b, "-", 1);
    num(b, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

/* Nanoseconds as seconds to the millisecond ("12.345"), rounded. */
static void
secs(wd_buf *b, uint64_t ns)
{
    uint64_t ms = ns / 1000000u + (ns % 1000000u >= 500000u);
    char frac[5] = {'.', (char)('0' + ms / 100 % 10),
                    (char)('0' + ms / 10 % 10), (char)('0' + ms % 10)};

    num(b, ms / 1000);
    wd_buf_append(b, frac, 4);
}

static void
boolean(wd_buf *b, bool v)
{
    wd_buf_append(b, v ? "true" : "false", v ? 4 : 5);
}

static void
null(wd_buf *b)
{
    wd_buf_append(b, "null", 4);
}

static void
runs(wd_buf *b, const wd_stats_runs *r)
{
    wd_buf_append(b, "{", 1);
    key(b, "started");
    num(b, r->started);
    for (int i = 0; i < WD_NOUTCOMES; i++) {
        wd_buf_append(b, ",", 1);
        key(b, wd_outcome_name[i]);
        num(b, r->ended[i]);
    }
    wd_buf_append(b, ",", 1);
    key(b, "retried");
    num(b, r->retried);
    wd_buf_append(b, "}", 1);
}

static void
last_error(wd_buf *b, const wd_stats_error *e)
{
    if (!e->set) {
        null(b);
        return;
    }
    wd_buf_append(b, "{", 1);
    key(b, "worker");
    num(b, e->worker);
    wd_buf_append(b, ",", 1);
    key(b, "code");
    signed_num(b, e->code);
    wd_buf_append(b, ",", 1);
    key(b, "message");
    text(b, e->message);
    wd_buf_append(b, ",", 1);
    key(b, "age_s");
    secs(b, e->age_ns);
    wd_buf_append(b, ",", 1);
    key(b, "unix_time");
    secs(b, e->unix_time > 0 ? (uint64_t)(e->unix_time * 1e3 + 0.5) * 1000000u
                             : 0);
    wd_buf_append(b, "}", 1);
}

static void
worker(wd_buf *b, const wd_stats_worker *w)
{
    const char *state = wd_worker_state_name[w->state];

    wd_buf_append(b, "{\"id\":", 6);
    num(b, w->id);
    wd_buf_append(b, ",\"state\":\"", 10);
    wd_buf_append(b, state, strlen(state));
    wd_buf_append(b, "\",\"runs\":", 9);
    num(b, w->runs);
    wd_buf_append(b, ",\"failures\":", 12);
    num(b, w->failures);
    wd_buf_append(b, ",\"run_age_s\":", 13);
    if (w->in_run)
        secs(b, w->run_age_ns);
    else
        null(b);
    wd_buf_append(b, "}", 1);
}

/* [autoscale]: null when not configured. */
static void
autoscale(wd_buf *b, const struct wd_autoscale_facts *a)
{
    if (!a->configured) {
        null(b);
        return;
    }
    wd_buf_append(b, "{", 1);
    key(b, "enabled");
    boolean(b, a->on);
    wd_buf_printf(b, ",\"target\":%.3f,\"utilisation\":%.3f,", a->target,
                  a->utilisation);
    key(b, "last_decision");
    if (a->decision[0] != '\0')
        text(b, a->decision);
    else
        null(b);
    wd_buf_append(b, "}", 1);
}

int
wd_status_json(const wd_stats_snapshot *s, const wd_facts *f, wd_buf *out)
{
    wd_buf_append(out, "{", 1);
    key(out, "pid");
    signed_num(out, f->pid);
    wd_buf_append(out, ",", 1);
    key(out, "version");
    text(out, f->version);
    wd_buf_append(out, ",", 1);
    key(out, "uptime_s");
    secs(out, s->now_ns > f->start_ns ? s->now_ns - f->start_ns : 0);
    wd_buf_append(out, ",", 1);
    key(out, "config");
    text(out, f->config);
    wd_buf_append(out, ",", 1);
    key(out, "workers");
    signed_num(out, f->workers);
    wd_buf_append(out, ",", 1);
    key(out, "min");
    signed_num(out, f->min);
    wd_buf_append(out, ",", 1);
    key(out, "max");
    if (f->max > 0)
        signed_num(out, f->max);
    else
        null(out);
    wd_buf_append(out, ",", 1);
    key(out, "busy");
    num(out, s->busy);
    wd_buf_append(out, ",", 1);
    key(out, "paused");
    boolean(out, f->paused);
    wd_buf_append(out, ",", 1);
    key(out, "closing");
    boolean(out, f->closing);
    wd_buf_append(out, ",", 1);
    key(out, "reloads");
    num(out, f->reloads);
    wd_buf_append(out, ",", 1);
    key(out, "runs");
    runs(out, &s->runs);
    wd_buf_append(out, ",", 1);
    key(out, "last_error");
    last_error(out, &s->last_error);
    wd_buf_append(out, ",", 1);
    key(out, "autoscale");
    autoscale(out, &f->autoscale);
    wd_buf_append(out, ",", 1);
    key(out, "worker_list");
    wd_buf_append(out, "[", 1);
    for (size_t i = 0; i < s->nworkers; i++) {
        if (i > 0)
            wd_buf_append(out, ",", 1);
        worker(out, &s->workers[i]);
    }
    wd_buf_append(out, "]}", 2);
    return out->failed ? -ENOMEM : 0;
}
