/*
 * label.c - how log lines name a job: its id, and the trace id of the
 * traceparent it came with (README, "Tracing across the queue"), so that
 * every line about a traced job can be found by its trace.
 */
#include <stdio.h>

#include "consumer_internal.h"

rb_job_label rb_job_label_of(const char *id, const char *traceparent)
{
    rb_job_label l;
    if (!id) id = "(no id)";
    if (traceparent && traceparent[0])
        /* The trace id is the second field of a (validated) traceparent. */
        snprintf(l.s, sizeof l.s, "%.300s (trace %.32s)", id, traceparent + 3);
    else
        snprintf(l.s, sizeof l.s, "%.300s", id);
    return l;
}
