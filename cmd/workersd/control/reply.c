/*
 * reply.c: the replies' JSON, always valid: jansson refuses a string that
 * is not UTF-8 (a Command, a path, an error text may hold any bytes), so
 * such bytes become U+FFFD here rather than losing the reply.
 */
#include "control/control.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at s, or 0 when it is not one. */
static size_t
utf8_len(const unsigned char *s)
{
    size_t len;
    uint32_t cp, min;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2, cp = s[0] & 0x1f, min = 0x80;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, cp = s[0] & 0x0f, min = 0x800;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4, cp = s[0] & 0x07, min = 0x10000;
    else
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0; /* also stops at the NUL */
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

json_t *
wd_control_string(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n, len = 0;
    json_t *j;
    char *copy;

    if ((j = json_string(s)) != NULL || s == NULL)
        return j;
    /* Invalid UTF-8 (or no memory): each bad byte becomes U+FFFD. */
    if ((copy = malloc(strlen(s) * 3 + 1)) == NULL)
        return NULL;
    while (*p != '\0') {
        if ((n = utf8_len(p)) == 0) {
            memcpy(copy + len, "\xef\xbf\xbd", 3), len += 3, p++;
            continue;
        }
        memcpy(copy + len, p, n), len += n, p += n;
    }
    j = json_stringn(copy, len);
    free(copy);
    return j;
}

/* {"ok":ok, key:message} from a format. */
__attribute__((format(printf, 3, 0))) static json_t *
make_reply(bool ok, const char *key, const char *fmt, va_list ap)
{
    char msg[WD_CONTROL_REQUEST_MAX];
    json_t *r = json_object();

    vsnprintf(msg, sizeof msg, fmt, ap);
    if (r == NULL || json_object_set_new(r, "ok", json_boolean(ok)) != 0 ||
        json_object_set_new(r, key, wd_control_string(msg)) != 0) {
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
