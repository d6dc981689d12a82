/*
 * reply.c: the replies' JSON, always valid: jansson refuses a string that
 * is not UTF-8 (a Command, a path, an error text may hold any bytes), so
 * such bytes become U+FFFD here rather than losing the reply.
 */
#include "control/control.h"
#include "metrics/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {"ok":ok, key:message} from a format. */
__attribute__((format(printf, 3, 0))) static json_t *
make_reply(bool ok, const char *key, const char *fmt, va_list ap)
{
    char msg[WD_CONTROL_REQUEST_MAX];
    json_t *r = json_object();

    vsnprintf(msg, sizeof msg, fmt, ap);
    if (r == NULL || json_object_set_new(r, "ok", json_boolean(ok)) != 0 ||
        json_object_set_new(r, key, wd_json_text(msg)) != 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

json_t *
wd_control_ok(const char *fmt, ...)
{
    va_list ap;
    json_t *r;

    va_start(ap, fmt);
    r = make_reply(true, "message", fmt, ap);
    va_end(ap);
    return r;
}

json_t *
wd_control_fail(int exit_code, const char *fmt, ...)
{
    va_list ap;
    json_t *r;

    va_start(ap, fmt);
    r = make_reply(false, "error", fmt, ap);
    va_end(ap);
    if (r != NULL &&
        json_object_set_new(r, "exit", json_integer(exit_code)) != 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

char *
wd_control_reply_text(json_t *reply, size_t *len)
{
    static const char nomem[] =
        "{\"ok\":false,\"error\":\"out of memory\",\"exit\":1}";
    char *s = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
    char *t;

    json_decref(reply);
    if (s == NULL && (s = strdup(nomem)) == NULL)
        return NULL;
    *len = strlen(s);
    if ((t = realloc(s, *len + 2)) == NULL) {
        free(s);
        return NULL;
    }
    t[(*len)++] = '\n';
    t[*len] = '\0';
    return t;
}
