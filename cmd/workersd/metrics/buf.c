/*
 * buf.c: a growable, NUL-terminated text buffer for the renderers. A
 * failed allocation is sticky (failed), so a renderer appends without
 * checking each line and reports -ENOMEM once at the end.
 */
#include "metrics/metrics.h"

#include <stdio.h>
#include <stdlib.h>

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
        n = vsnprintf(b->data != NULL ? b->data + b->len : NULL, room, fmt,
                      ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap != 0 ? b->cap : 4096;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (data == NULL) {
            b->failed = true;
            return;
        }
        b->data = data;
        b->cap = cap;
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
