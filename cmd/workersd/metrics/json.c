/*
 * json.c: the status object, built with jansson, so every string is
 * escaped by a JSON library (quotes, backslashes, control characters).
 * jansson refuses a string that is not valid UTF-8 (a config path is any
 * bytes): such a string is repaired first, each invalid byte becoming
 * U+FFFD, the way a UTF-8 decoder reports it. The object's fields are a
 * stable interface, documented in README.md ("Status as JSON").
 */
#include "metrics/metrics.h"

#include <math.h>
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

/* Seconds to the millisecond, from nanoseconds. */
static json_t *
secs(uint64_t ns)
{
    return json_real(round((double)ns / 1e6) / 1e3);
}

/* Sets key to v (stolen); a NULL v (out of memory) marks *ok false. */
static void
put(json_t *obj, const char *key, json_t *v, bool *ok)
{
    if (v == NULL || json_object_set_new_nocheck(obj, key, v) != 0)
        *ok = false;
}

static json_t *
runs_json(const wd_stats_runs *r)
{
    json_t *o = json_object();
    bool ok = o != NULL;

    if (!ok)
        return NULL;
    put(o, "started", json_integer((json_int_t)r->started), &ok);
    for (int i = 0; i < WD_NOUTCOMES; i++)
        put(o, wd_outcome_name[i], json_integer((json_int_t)r->ended[i]), &ok);
    put(o, "retried", json_integer((json_int_t)r->retried), &ok);
    if (!ok)
        json_decref(o);
    return ok ? o : NULL;
}

static json_t *
error_json(const wd_stats_error *e)
{
    if (!e->set)
        return json_null();

    json_t *o = json_object();
    bool ok = o != NULL;
    if (!ok)
        return NULL;
    put(o, "worker", json_integer(e->worker), &ok);
    put(o, "code", json_integer(e->code), &ok);
    put(o, "message", wd_json_text(e->message), &ok);
    put(o, "age_s", secs(e->age_ns), &ok);
    put(o, "unix_time", json_real(round(e->unix_time * 1e3) / 1e3), &ok);
    if (!ok)
        json_decref(o);
    return ok ? o : NULL;
}

static json_t *
workers_json(const wd_stats_snapshot *s)
{
    json_t *list = json_array();
    bool ok = list != NULL;

    for (size_t i = 0; ok && i < s->nworkers; i++) {
        const wd_stats_worker *w = &s->workers[i];
        json_t *o = json_object();
        if (o == NULL || json_array_append_new(list, o) != 0) {
            ok = false;
            break;
        }
        put(o, "id", json_integer(w->id), &ok);
        put(o, "state", json_string_nocheck(wd_worker_state_name[w->state]),
            &ok);
        put(o, "runs", json_integer((json_int_t)w->runs), &ok);
        put(o, "failures", json_integer((json_int_t)w->failures), &ok);
        put(o, "run_age_s", w->in_run ? secs(w->run_age_ns) : json_null(),
            &ok);
    }
    if (!ok)
        json_decref(list);
    return ok ? list : NULL;
}

json_t *
wd_status_json(const wd_stats_snapshot *s, const wd_facts *f)
{
    json_t *o = json_object();
    bool ok = o != NULL;

    if (!ok)
        return NULL;
    put(o, "pid", json_integer(f->pid), &ok);
    put(o, "version", wd_json_text(f->version), &ok);
    put(o, "uptime_s",
        secs(s->now_ns > f->start_ns ? s->now_ns - f->start_ns : 0), &ok);
    put(o, "config", wd_json_text(f->config), &ok);
    put(o, "workers", json_integer(f->workers), &ok);
    put(o, "min", json_integer(f->min), &ok);
    put(o, "max", f->max > 0 ? json_integer(f->max) : json_null(), &ok);
    put(o, "busy", json_integer(s->busy), &ok);
    put(o, "paused", json_boolean(f->paused), &ok);
    put(o, "closing", json_boolean(f->closing), &ok);
    put(o, "reloads", json_integer((json_int_t)f->reloads), &ok);
    put(o, "runs", runs_json(&s->runs), &ok);
    put(o, "last_error", error_json(&s->last_error), &ok);
    put(o, "worker_list", workers_json(s), &ok);
    if (!ok)
        json_decref(o);
    return ok ? o : NULL;
}
