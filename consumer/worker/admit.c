/*
 * admit.c - which delivery runs when: poison isolation.
 *
 * A job whose worker died while it was in flight comes back redelivered,
 * and so do the jobs that were in flight beside it: the one that killed the
 * worker cannot be told from its innocent neighbours. Such a "suspect"
 * (redelivered, or with a count of earlier deliveries) runs alone: while it
 * runs, this consumer holds no other delivery, so if it is the poison, it
 * takes nobody down with it and only its own count of deliveries grows.
 *
 *  - While it holds a suspect, the consumer stops consuming (basic.cancel;
 *    a lower basic.qos would apply to new consumers only), so the broker
 *    sends it nothing new; it consumes again when no suspect is left.
 *  - Jobs held already run first; a suspect starts only when nothing else
 *    runs.
 *  - Jobs held beside a suspect that runs (suspects, or jobs the broker
 *    sent before it saw the qos) are not kept (a crash would count against
 *    them too) nor returned (on this broker a return counts as a
 *    delivery): they are published again to the job queue, with the count
 *    of deliveries they have had so far in the header x-rebound-deliveries,
 *    and acked once the broker has confirmed the copy. The count follows
 *    the job, so a poison job's last delivery is still found (jobs.c).
 *  - A draining consumer never consumes again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer_internal.h"
#include "worker_log.h"

int64_t rb_admit_deliveries(const rb_amqp_delivery *d)
{
    int64_t n = d->delivery_count > 0 ? d->delivery_count : 0;
    /* A classic queue counts nothing: a redelivery is one earlier delivery. */
    if (n == 0 && d->redelivered) n = 1;
    return n + (d->earlier_deliveries > 0 ? d->earlier_deliveries : 0);
}

/* Delivered before, its worker dying: it runs alone. */
static bool suspect(const rb_inflight *j)
{
    return j->deliveries > 0;
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
    free(j->body);
    rb_job_free(j->job);
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

/* Stop consuming while a suspect is held or runs; consume again after. */
static void consume_while(rb_consumer *c, bool suspects)
{
    if (!c->amqp || c->amqp_failed || suspects == c->paused) return;
    rb_err err = {{0}};
    if (suspects) {
        c->paused = true;
        if (rb_amqp_cancel(c->amqp, &err) < 0) rb_settle_failed(c, &err);
        rb_info("a job under suspicion is here: taking no new jobs until it has run alone");
    } else {
        c->paused = false;
        if (c->draining) return;
        if (rb_amqp_resume(c->amqp, c->cfg->queue, &err) < 0) rb_settle_failed(c, &err);
        rb_info("no job under suspicion left: taking jobs again");
    }
}

/* Hand held job i to the pool. */
static void start(rb_consumer *c, size_t i)
{
    rb_inflight *j = &c->jobs[i];
    if (rb_pool_submit(c->pool, j->pool_tag, j->body, j->len, j->job) < 0) {
        rb_error("job %s: out of memory submitting it; returning it to the queue", j->job_id);
        rb_settle_requeue(c, j->delivery_tag, j->generation);
        rb_admit_remove(c, i);
        return;
    }
    j->started = true;
    free(j->body);
    j->body = NULL;
    rb_job_free(j->job);
    j->job = NULL;
    if (suspect(j))
        rb_info("job %s: delivered %lld times before, its worker dying each time: it runs "
                "alone",
                j->job_id, (long long)j->deliveries);
    else
        rb_debug("job %s started (delivery %llu)", j->job_id, (unsigned long long)j->delivery_tag);
}

/* Publish held suspect i again to the job queue, carrying its count, and
 * ack it once the copy is confirmed. */
static void shelve(rb_consumer *c, size_t i)
{
    rb_inflight *j = &c->jobs[i];
    rb_outmsg *m = rb_outmsg_new(c->cfg->queue, j->correlation_id, j->correlation_id_len, j->body,
                                 j->len, true);
    j->body = NULL; /* taken over, or freed on failure */
    if (m && j->reply_to && !(m->reply_to = strdup(j->reply_to))) {
        rb_outmsg_free(m);
        m = NULL;
    }
    if (!m) {
        rb_error("job %s: out of memory setting it aside; returning it to the queue", j->job_id);
        rb_settle_requeue(c, j->delivery_tag, j->generation);
        rb_admit_remove(c, i);
        return;
    }
    m->job_id = strdup(j->job_id);
    m->mandatory = true;
    m->deliveries = j->deliveries;
    m->settle = RB_SETTLE_ACK;
    m->delivery_tag = j->delivery_tag;
    m->generation = j->generation;
    rb_outbox_hold(&c->outbox, m);
    rb_info("job %s: a suspect runs here: published again to '%s' (%lld earlier deliveries), "
            "so that nothing runs beside the suspect",
            j->job_id, c->cfg->queue, (long long)j->deliveries);
    rb_admit_remove(c, i);
}

/* Every held job but the one with pool tag keep is published again. */
static void shelve_held(rb_consumer *c, uint64_t keep)
{
    for (size_t i = c->njobs; i-- > 0;)
        if (!c->jobs[i].started && c->jobs[i].pool_tag != keep) shelve(c, i);
}

void rb_admit_schedule(rb_consumer *c)
{
    bool suspect_runs = false, suspect_held = false;
    size_t running = 0;
    for (size_t i = 0; i < c->njobs; i++) {
        if (c->jobs[i].started) running++;
        if (suspect(&c->jobs[i]) && c->jobs[i].started) suspect_runs = true;
        if (suspect(&c->jobs[i]) && !c->jobs[i].started) suspect_held = true;
    }
    if (suspect_runs) {
        /* Whatever came meanwhile (sent before the broker saw our qos)
         * would die with the suspect if it is the poison. */
        shelve_held(c, 0);
    } else {
        /* Everything else first (indices shift on removal: from the end). */
        for (size_t i = c->njobs; i-- > 0;)
            if (!c->jobs[i].started && !suspect(&c->jobs[i])) {
                start(c, i);
                running++;
            }
        if (running == 0 && suspect_held) {
            size_t first = c->njobs;
            for (size_t i = 0; i < c->njobs; i++)
                if (!c->jobs[i].started &&
                    (first == c->njobs || c->jobs[i].pool_tag < c->jobs[first].pool_tag))
                    first = i;
            uint64_t tag = c->jobs[first].pool_tag;
            start(c, first);
            shelve_held(c, tag);
        }
    }
    bool suspects = false;
    for (size_t i = 0; i < c->njobs; i++)
        if (suspect(&c->jobs[i])) suspects = true;
    consume_while(c, suspects);
}

void rb_admit_take(rb_consumer *c, rb_amqp_delivery *d, rb_job *job)
{
    rb_inflight *j = add_inflight(c);
    if (!j) {
        rb_error("job %s: out of memory; returning it to the queue", job->id);
        rb_settle_requeue(c, d->tag, c->generation);
        rb_job_free(job);
        return;
    }
    j->pool_tag = ++c->next_pool_tag;
    j->delivery_tag = d->tag;
    j->generation = c->generation;
    j->redelivered = d->redelivered;
    j->deliveries = rb_admit_deliveries(d);
    j->reply_to = d->reply_to;
    d->reply_to = NULL;
    j->correlation_id = d->correlation_id;
    j->correlation_id_len = d->correlation_id_len;
    d->correlation_id = NULL;
    j->body = d->body;
    j->len = d->len;
    d->body = NULL;
    j->job = job;
    j->job_id = strdup(job->id);
    if (!j->job_id) {
        rb_error("job %s: out of memory; returning it to the queue", job->id);
        rb_settle_requeue(c, j->delivery_tag, j->generation);
        rb_admit_remove(c, c->njobs - 1);
        return;
    }
    rb_admit_schedule(c);
}

void rb_admit_connection_lost(rb_consumer *c)
{
    /* Held jobs belong to the lost connection: the broker has requeued
     * them. Running ones go on; their results are published all the same. */
    for (size_t i = c->njobs; i-- > 0;)
        if (!c->jobs[i].started) rb_admit_remove(c, i);
    c->paused = false; /* a new connection consumes from the start */
}
