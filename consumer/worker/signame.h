/* signame.h - "SIGTERM" rather than strsignal's "Terminated" in log lines. */
#ifndef REBOUND_WORKER_SIGNAME_H
#define REBOUND_WORKER_SIGNAME_H

#include <stdio.h>
#include <string.h>

typedef struct rb_signame {
    char s[24];
} rb_signame;

static inline rb_signame rb_sig_name(int sig)
{
    rb_signame n;
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev)
        snprintf(n.s, sizeof n.s, "SIG%s", abbrev);
    else
        snprintf(n.s, sizeof n.s, "signal %d", sig);
    return n;
}

#endif
