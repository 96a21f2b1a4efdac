/*
 * admit.c - which delivery runs where: poison isolation.
 *
 * A job whose worker died while it was in flight comes back redelivered,
 * and so do the jobs that were in flight beside it: the one that killed the
 * worker cannot be told from its innocent neighbours. Such a "suspect"
 * (redelivered, or with a count of earlier deliveries) runs alone, in the
 * worker's quarantine consumer: a consumer process of one slot, prefetch
 * 1, that consumes <queue>.suspects only, started by the supervisor when a
 * consumer asks for it (SIGUSR1) and gone again when it has been idle a
 * while. If a suspect is the poison, it takes nobody down with it, and only
 * its own count of deliveries grows.
 *
 *  - A consumer that receives a suspect does not run it: it publishes it
 *    again to <queue>.suspects, with the count of deliveries it has had so
 *    far in the header x-rebound-deliveries, acks it once the broker has
 *    confirmed the copy, and asks for the quarantine consumer. It is not
 *    returned to the queue instead: on this broker a return counts as a
 *    delivery. The count follows the job, so a poison job's last delivery
 *    is still found (jobs.c) and answered `crashed`.
 *  - Pausing the consumer instead (basic.cancel, then consuming again) was
 *    tried first: a quorum queue returns, with a count grown by one, a
 *    delivery that was on its way when the cancel came, so innocent jobs
 *    were still charged deaths they had no part in.
 *  - The quarantine consumer runs what it receives, one at a time.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer_internal.h"
#include "worker_log.h"

int64_t rb_admit_deliveries(const rb_amqp_delivery *d)
{
    int64_t n = d->delivery_count > 0 ? d->delivery_count : 0;
    /* A classic queue counts nothing: a redelivery is one earlier delivery. */
    if (n == 0 && d->redelivered) n = 1;
    return n + (d->earlier_deliveries > 0 ? d->earlier_deliveries : 0);
}

static rb_inflight *add_inflight(rb_consumer *c)
{
    if (c->njobs == c->capjobs) {
        size_t cap = c->capjobs ? c->capjobs * 2 : 16;
        rb_inflight *p = realloc(c->jobs, cap * sizeof *p);
        if (!p) return NULL;
        c->jobs = p;
        c->capjobs = cap;
    }
    rb_inflight *j = &c->jobs[c->njobs++];
    memset(j, 0, sizeof *j);
    return j;
}

static void free_inflight(rb_inflight *j)
{
    free(j->reply_to);
    free(j->correlation_id);
    free(j->job_id);
}

void rb_admit_remove(rb_consumer *c, size_t i)
{
    free_inflight(&c->jobs[i]);
    c->jobs[i] = c->jobs[--c->njobs];
}

void rb_admit_free(rb_consumer *c)
{
    for (size_t i = 0; i < c->njobs; i++)
        free_inflight(&c->jobs[i]);
    free(c->jobs);
    c->jobs = NULL;
    c->njobs = c->capjobs = 0;
}

void rb_admit_want_quarantine(rb_consumer *c)
{
    /* The supervisor is the parent; a signal that arrives while the
     * quarantine consumer runs changes nothing. */
    if (!c->cfg->quarantine) kill(getppid(), SIGUSR1);
}

/* Publish suspect d again to <queue>.suspects, carrying its count, and ack
 * it once the copy is confirmed. Takes over d's body. */
static void quarantine(rb_consumer *c, rb_amqp_delivery *d, const rb_job *job, int64_t deliveries)
{
    rb_job_label label = rb_job_label_of(job->id, d->traceparent);
    char suspects[300];
    rb_amqp_suspects_queue(c->cfg->queue, suspects, sizeof suspects);
    rb_outmsg *m =
        rb_outmsg_new(suspects, d->correlation_id, d->correlation_id_len, d->body, d->len, true);
    d->body = NULL; /* taken over, or freed on failure */
    if (m && d->reply_to && !(m->reply_to = strdup(d->reply_to))) {
        rb_outmsg_free(m);
        m = NULL;
    }
    if (!m) {
        rb_error("job %s: out of memory moving it to quarantine; returning it to the queue",
                 label.s);
        rb_settle_requeue(c, d->tag, c->generation);
        return;
    }
    m->job_id = strdup(label.s); /* for log lines only: NULL is fine */
    snprintf(m->traceparent, sizeof m->traceparent, "%s", d->traceparent);
    m->mandatory = true;
    m->deliveries = deliveries;
    m->settle = RB_SETTLE_ACK;
    m->delivery_tag = d->tag;
    m->generation = c->generation;
    rb_outbox_hold(&c->outbox, m);
    rb_info("job %s: delivered %lld times before, its worker dying each time: moved to '%s' to "
            "run alone",
            label.s, (long long)deliveries, suspects);
    rb_admit_want_quarantine(c);
}

void rb_admit_take(rb_consumer *c, rb_amqp_delivery *d, rb_job *job, int64_t decoded_ns)
{
    int64_t deliveries = rb_admit_deliveries(d);
    if (deliveries > 0 && !c->cfg->quarantine) {
        quarantine(c, d, job, deliveries);
        rb_job_free(job);
        return;
    }
    rb_inflight *j = add_inflight(c);
    if (!j || !(j->job_id = strdup(job->id))) {
        if (j) c->njobs--;
        rb_error("job %s: out of memory; returning it to the queue",
                 rb_job_label_of(job->id, d->traceparent).s);
        rb_settle_requeue(c, d->tag, c->generation);
        rb_job_free(job);
        return;
    }
    j->pool_tag = ++c->next_pool_tag;
    j->delivery_tag = d->tag;
    j->generation = c->generation;
    /* A suspect's copy is a fresh message in quarantine: its result still
     * tells the sender the job may have run before. */
    j->redelivered = d->redelivered || deliveries > 0;
    snprintf(j->traceparent, sizeof j->traceparent, "%s", d->traceparent);
    j->timing = job->timing;
    j->assembled_ns = d->assembled_ns;
    j->decoded_ns = decoded_ns;
    j->reply_to = d->reply_to;
    d->reply_to = NULL;
    j->correlation_id = d->correlation_id;
    j->correlation_id_len = d->correlation_id_len;
    d->correlation_id = NULL;
    /* Stamped as it is handed over: a ready slot takes it inside the call. */
    j->submitted_ns = rb_mono_ns();
    int rc = rb_pool_submit(c->pool, j->pool_tag, d->body, d->len, job);
    rb_job_free(job);
    if (rc < 0) {
        rb_error("job %s: out of memory submitting it; returning it to the queue",
                 rb_job_label_of(j->job_id, j->traceparent).s);
        rb_settle_requeue(c, j->delivery_tag, j->generation);
        rb_admit_remove(c, c->njobs - 1);
        return;
    }
    if (deliveries > 0)
        rb_info("job %s: delivered %lld times before, its worker dying each time: it runs alone",
                rb_job_label_of(j->job_id, j->traceparent).s, (long long)deliveries);
    else if (rb_log_enabled(RB_LOG_DEBUG))
        rb_debug("job %s started (delivery %llu)", rb_job_label_of(j->job_id, j->traceparent).s,
                 (unsigned long long)j->delivery_tag);
}
