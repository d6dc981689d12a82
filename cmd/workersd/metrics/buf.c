/*
 * buf.c: a growable, NUL-terminated text buffer for the renderers. A
 * failed allocation is sticky (failed), so a renderer appends without
 * checking each line and reports -ENOMEM once at the end.
 */
#include "metrics/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for n more bytes and the NUL: false (failed set) when out of
 * memory. */
static bool
reserve(wd_buf *b, size_t n)
{
    size_t cap = b->cap != 0 ? b->cap : 4096;

    if (b->cap - b->len > n)
        return true;
    while (cap - b->len <= n)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (data == NULL) {
        b->failed = true;
        return false;
    }
    b->data = data;
    b->cap = cap;
    return true;
}

void
wd_buf_append(wd_buf *b, const char *text, size_t len)
{
    if (b->failed || !reserve(b, len))
        return;
    memcpy(b->data + b->len, text, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void
wd_buf_printf(wd_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        n = vsnprintf(b->data != NULL ? b->data + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        if (!reserve(b, (size_t)n))
            return;
    }
}

void
wd_buf_reset(wd_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void
wd_buf_free(wd_buf *b)
{
    free(b->data);
    *b = (wd_buf){0};
}
