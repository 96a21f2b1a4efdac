/*
 * proc_text.c - how a process ended, in words: the one place that turns a
 * signal number or a wait status into text, so that the pool's "crashed"
 * results and the worker's log lines say it the same way.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "rebound_base.h"

rb_signame rb_sig_name(int sig)
{
    rb_signame n;
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev)
        snprintf(n.s, sizeof n.s, "SIG%s", abbrev);
    else
        snprintf(n.s, sizeof n.s, "signal %d", sig);
    return n;
}

const char *rb_wait_text(int status, rb_sig_style style, char *out, size_t cap)
{
    if (cap == 0) return out;
    if (WIFEXITED(status)) {
        snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (style == RB_SIG_DESCRIBED)
            snprintf(out, cap, "killed by signal %d (%s)", sig, strsignal(sig));
        else if (style == RB_SIG_NAMED)
            snprintf(out, cap, "killed by signal %d (%s)%s", sig, rb_sig_name(sig).s,
                     WCOREDUMP(status) ? ", core dumped" : "");
        else
            snprintf(out, cap, "killed by signal %d", sig);
    } else {
        snprintf(out, cap, "ended with wait status %d", status);
    }
    return out;
}
