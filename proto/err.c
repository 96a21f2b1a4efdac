/* err.c - the one-line error text every proto function reports into. */
#include <stdarg.h>
#include <stdio.h>

#include "proto_internal.h"

int rb_err_set(rb_err *err, const char *fmt, ...)
{
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* Callers log the text and put it in result messages; a line break
     * (from strerror text or a caller's format) would split a log record. */
    for (char *p = err->msg; *p; p++) {
        if (*p == '\n' || *p == '\r') *p = ' ';
    }
    return -1;
}
