/*
 * jobs.c - a consumer's jobs: deliveries checked and handed to the pool (or
 * rejected), results packed and queued for publishing, confirms settling
 * the jobs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer_internal.h"
#include "rebound_base.h"
#include "worker_log.h"

#define DIRECT_REPLY_TO "amq.rabbitmq.reply-to"

/* Direct reply-to pseudo-queues live only as long as the client's channel:
 * persistence means nothing there. */
static bool persistent_for(const char *reply_to)
{
    return strncmp(reply_to, DIRECT_REPLY_TO, strlen(DIRECT_REPLY_TO)) != 0;
}

/* Published mandatory, so that a result whose reply queue is gone comes
 * back and is reported rather than dropped in silence; not to direct
 * reply-to, which this broker returns even when it delivered the result
 * (RabbitMQ 3.10), and where a gone sender leaves nothing to report to. */
static bool mandatory_for(const char *reply_to)
{
    return strncmp(reply_to, DIRECT_REPLY_TO, strlen(DIRECT_REPLY_TO)) != 0;
}

/* Answer a job that will not run, then dead-letter it (basic.reject without
 * requeue), only once the answer is safely with the broker. sb holds the
 * packed answer (taken over); what: "rejection" or the like, for the log. */
static void answer_and_dead_letter(rb_consumer *c, const rb_amqp_delivery *d, const char *id,
                                   msgpack_sbuffer *sb, const char *what)
{
    rb_outmsg *m = rb_outmsg_new(d->reply_to, d->correlation_id, d->correlation_id_len, sb->data,
                                 sb->size, persistent_for(d->reply_to));
    rb_job_label label = rb_job_label_of(id, d->traceparent);
    if (m) {
        m->job_id = strdup(label.s); /* for log lines only: NULL is fine */
        snprintf(m->traceparent, sizeof m->traceparent, "%s", d->traceparent);
        m->mandatory = mandatory_for(d->reply_to);
    }
    if (!m) {
        rb_error("job %s: out of memory queueing the %s", label.s, what);
        rb_settle_job(c, RB_SETTLE_REJECT, d->tag, c->generation);
        return;
    }
    m->settle = RB_SETTLE_REJECT;
    m->delivery_tag = d->tag;
    m->generation = c->generation;
    rb_outbox_hold(&c->outbox, m);
}

static void reject(rb_consumer *c, const rb_amqp_delivery *d, const char *id, const char *why)
{
    c->jobs_rejected++;
    rb_warn("job %s rejected: %s", rb_job_label_of(id, d->traceparent).s, why);
    if (!d->reply_to) {
        rb_settle_job(c, RB_SETTLE_REJECT, d->tag, c->generation);
        return;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (rb_result_pack_rejected(id, c->id, why, &sb) < 0) {
        msgpack_sbuffer_destroy(&sb);
        rb_error("job %s: cannot pack the rejection (out of memory)",
                 rb_job_label_of(id, d->traceparent).s);
        rb_settle_job(c, RB_SETTLE_REJECT, d->tag, c->generation);
        return;
    }
    answer_and_dead_letter(c, d, id, &sb, "rejection");
}

/*
 * A quorum queue dead-letters a job delivered more than --delivery-limit
 * times without an ack: each time, the worker that had it died (the job
 * killed it, or one delivered with it did). On the last delivery the limit
 * allows, the job is not run again: its sender gets `crashed`, and then the
 * job goes to the dead-letter queue, as the broker would have sent it.
 */
static bool last_chance(rb_consumer *c, const rb_amqp_delivery *d, const rb_job *job)
{
    const rb_worker_config *cfg = c->cfg;
    int64_t earlier = rb_admit_deliveries(d);
    if (cfg->queue_type != RB_QUEUE_QUORUM || cfg->delivery_limit <= 0 ||
        earlier < cfg->delivery_limit)
        return false;
    char why[200];
    snprintf(why, sizeof why,
             "the job was delivered %lld times and its worker died each time (this job, or one "
             "delivered with it, killed it); it is not run again",
             (long long)earlier + 1);
    c->jobs_crashed_unrun++;
    rb_warn("job %s: %s", rb_job_label_of(job->id, d->traceparent).s, why);
    if (!d->reply_to) {
        rb_settle_job(c, RB_SETTLE_REJECT, d->tag, c->generation);
        return true;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    rb_result r = {.id = job->id,
                   .status = RB_STATUS_CRASHED,
                   .error_type = "Crashed",
                   .error_message = why,
                   .worker = c->id,
                   .redelivered = true};
    if (rb_result_pack(&r, &sb) < 0) {
        msgpack_sbuffer_destroy(&sb);
        rb_error("job %s: cannot pack its answer (out of memory)",
                 rb_job_label_of(job->id, d->traceparent).s);
        rb_settle_job(c, RB_SETTLE_REJECT, d->tag, c->generation);
        return true;
    }
    answer_and_dead_letter(c, d, job->id, &sb, "answer");
    return true;
}

void rb_jobs_on_delivery(rb_consumer *c, rb_amqp_delivery *d)
{
    c->last_activity_ms = rb_mono_ms();
    if (d->redelivered) c->redelivered++;
    char why[600];
    if (d->content_type && strcmp(d->content_type, "application/msgpack") != 0) {
        snprintf(why, sizeof why, "content_type '%.200s' is not application/msgpack",
                 d->content_type);
        reject(c, d, NULL, why);
        return;
    }
    if (d->oversize) {
        snprintf(why, sizeof why, "the job is %zu bytes, more than --max-job-bytes (%zu)", d->len,
                 c->cfg->max_job_bytes);
        reject(c, d, NULL, why);
        return;
    }
    rb_job *job = NULL;
    char *id = NULL;
    rb_err err = {{0}};
    const void *body = d->body ? d->body : "";
    if (rb_job_decode(body, d->len, &c->limits, &job, &id, &err) < 0) {
        reject(c, d, id, err.msg);
        free(id);
        return;
    }
    if (rb_job_check_paths(job, c->cfg->code_root, &err) < 0) {
        reject(c, d, job->id, err.msg);
        rb_job_free(job);
        return;
    }
    if (rb_log_enabled(RB_LOG_DEBUG))
        rb_debug("job %s: delivery %llu, x-delivery-count %lld, x-rebound-deliveries %lld%s",
                 rb_job_label_of(job->id, d->traceparent).s, (unsigned long long)d->tag,
                 (long long)d->delivery_count, (long long)d->earlier_deliveries,
                 d->redelivered ? ", redelivered" : "");
    if (last_chance(c, d, job)) {
        rb_job_free(job);
        return;
    }
    rb_admit_take(c, d, job, rb_mono_ns());
}

/* The job's stages inside the worker, in us since its delivery was
 * assembled (README, "Where the time goes"). "packed" is stamped here,
 * just before the result is packed. */
static void add_stage(rb_timing *tm, const char *name, int64_t ns, int64_t t0)
{
    if (ns <= 0) return; /* not reached */
    tm->stage[tm->n] = name;
    tm->us[tm->n++] = (ns - t0) / 1000;
}

static void stages_of(const rb_inflight *j, const rb_pool_result *res, rb_timing *tm)
{
    tm->n = 0;
    add_stage(tm, "decoded", j->decoded_ns, j->assembled_ns);
    add_stage(tm, "submitted", j->submitted_ns, j->assembled_ns);
    add_stage(tm, "started", res->started_ns, j->assembled_ns);
    add_stage(tm, "done", res->done_ns, j->assembled_ns);
    add_stage(tm, "packed", rb_mono_ns(), j->assembled_ns);
}

static void stages_text(const rb_timing *tm, char *out, size_t cap)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < tm->n && off < cap; i++) {
        int n = snprintf(out + off, cap - off, "%s%s=%lld", i ? " " : "", tm->stage[i],
                         (long long)tm->us[i]);
        if (n < 0) break;
        off += (size_t)n;
    }
}

/* A job without reply_to: its result only goes to the log. */
static void log_result(const char *id, const msgpack_sbuffer *sb)
{
    if (!rb_log_enabled(RB_LOG_DEBUG)) return;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    char text[1500] = "";
    if (msgpack_unpack_next(&u, sb->data, sb->size, NULL) == MSGPACK_UNPACK_SUCCESS)
        msgpack_object_print_buffer(text, sizeof text, u.data);
    msgpack_unpacked_destroy(&u);
    rb_debug("job %s has no reply_to; result: %s", id, text);
}

static void result_in(rb_consumer *c, rb_pool_result *res)
{
    size_t i = 0;
    while (i < c->njobs && c->jobs[i].pool_tag != res->tag)
        i++;
    if (i == c->njobs) {
        rb_warn("result for unknown pool tag %llu dropped", (unsigned long long)res->tag);
        return;
    }
    rb_inflight *j = &c->jobs[i];
    c->last_job_ms = rb_wall_ms();
    rb_job_label label = rb_job_label_of(j->job_id, j->traceparent);
    /* The stages go into the result when the job asked, and into the log
     * line once it is acked when that is shown. */
    bool log_stages = rb_log_enabled(RB_LOG_DEBUG);
    rb_timing tm;
    if (j->timing || log_stages) stages_of(j, res, &tm);
    rb_result r = {
        .id = j->job_id,
        .status = res->status,
        .error_type = res->error_type,
        .error_message = res->error_message,
        .worker = c->id,
        .ms = res->ms,
        .redelivered = j->redelivered,
        .call_results = res->call_results,
        .call_results_len = res->call_results_len,
        .ncalls = res->ncalls,
        .usage = res->usage,
        .exit = res->exit,
        .timing = j->timing ? &tm : NULL,
    };
    if (res->usage.has_cpu) c->cpu_ms_total += res->usage.cpu_ms;
    rb_log(res->status == RB_STATUS_OK || res->status == RB_STATUS_ERROR ? RB_LOG_DEBUG
                                                                         : RB_LOG_INFO,
           "job %s: %s in %.1f ms%s%s", label.s, rb_status_name(res->status), res->ms,
           res->error_message ? ": " : "", res->error_message ? res->error_message : "");

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (rb_result_pack(&r, &sb) < 0) {
        /* Without a result there is nothing to confirm: let the job run
         * again later rather than lose it. */
        msgpack_sbuffer_destroy(&sb);
        rb_error("job %s: out of memory packing its result; returning it to the queue", label.s);
        rb_settle_requeue(c, j->delivery_tag, j->generation);
        rb_admit_remove(c, i);
        return;
    }
    if (!j->reply_to) {
        log_result(label.s, &sb);
        msgpack_sbuffer_destroy(&sb);
        rb_settle_job(c, RB_SETTLE_ACK, j->delivery_tag, j->generation);
        rb_admit_remove(c, i);
        return;
    }
    rb_outmsg *m = rb_outmsg_new(j->reply_to, j->correlation_id, j->correlation_id_len, sb.data,
                                 sb.size, persistent_for(j->reply_to));
    if (m) {
        m->job_id = strdup(label.s); /* for log lines only: NULL is fine */
        snprintf(m->traceparent, sizeof m->traceparent, "%s", j->traceparent);
        m->mandatory = mandatory_for(j->reply_to);
    }
    if (!m) {
        rb_error("job %s: out of memory queueing its result; returning it to the queue", label.s);
        rb_settle_requeue(c, j->delivery_tag, j->generation);
        rb_admit_remove(c, i);
        return;
    }
    m->settle = RB_SETTLE_ACK;
    m->delivery_tag = j->delivery_tag;
    m->generation = j->generation;
    if (log_stages) {
        m->assembled_ns = j->assembled_ns;
        stages_text(&tm, m->stages, sizeof m->stages);
    }
    rb_outbox_hold(&c->outbox, m);
    rb_admit_remove(c, i);
}

void rb_jobs_on_result(rb_consumer *c, rb_pool_result *res)
{
    result_in(c, res);
    c->last_activity_ms = rb_mono_ms();
}

static void on_acked(void *ctx, rb_outmsg *m)
{
    rb_consumer *c = ctx;
    int64_t confirmed_ns = rb_mono_ns();
    if (m->returned) {
        /* Its sender is gone: there is no one to redeliver to, so the job is
         * settled as if delivered, but not in silence. */
        c->results_unroutable++;
        rb_warn("job %s: its result was returned unroutable: no queue '%s' (the sender is "
                "gone); the job is settled all the same",
                m->job_id ? m->job_id : "?", m->routing_key);
    }
    rb_settle_job(c, m->settle, m->delivery_tag, m->generation);
    if (m->assembled_ns) { /* set when debug lines are shown (result_in) */
        int64_t now = rb_mono_ns();
        rb_debug("job %s: stages, us since the delivery: %s published=%lld confirmed=%lld "
                 "acked=%lld",
                 m->job_id ? m->job_id : "?", m->stages,
                 (long long)((m->published_ns - m->assembled_ns) / 1000),
                 (long long)((confirmed_ns - m->assembled_ns) / 1000),
                 (long long)((now - m->assembled_ns) / 1000));
    }
    rb_outmsg_free(m);
}

/* The broker refused a result: publish it again later (confirms.h says
 * how much later). */
static void on_nacked(void *ctx, rb_outmsg *m)
{
    rb_consumer *c = ctx;
    int delay = (int)rb_backoff_next(&m->retry);
    m->nacks++;
    rb_warn("the broker refused a result for %s (basic.nack %d); publishing it again in %d ms",
            m->routing_key, m->nacks, delay);
    rb_outbox_retry_later(&c->outbox, m, rb_mono_ms() + delay);
}

void rb_jobs_on_returned(rb_consumer *c, const rb_amqp_delivery *d)
{
    rb_outmsg *m = d->reply_to ? rb_outbox_find_pending(&c->outbox, d->reply_to, d->correlation_id,
                                                        d->correlation_id_len)
                               : NULL;
    if (m)
        m->returned = true;
    else
        rb_debug("a returned message matches no result in flight; ignored");
}

void rb_jobs_on_confirm(rb_consumer *c, uint64_t seq, bool multiple, bool ack)
{
    size_t n = rb_outbox_confirm(&c->outbox, seq, multiple, ack ? on_acked : on_nacked, c);
    if (n == 0) rb_debug("confirm for unknown publish %llu ignored", (unsigned long long)seq);
}

int rb_jobs_flush(rb_consumer *c)
{
    c->wait_writable = false;
    /* While the broker blocks us, results wait here (flow control): a
     * publish now would stop the whole loop in a write. */
    while (c->amqp && !c->amqp_failed && !c->blocked) {
        rb_outmsg *m = rb_outbox_take_held(&c->outbox);
        if (!m) break;
        if (!rb_amqp_write_room(c->amqp, m->len)) {
            rb_outbox_hold_front(&c->outbox, m);
            c->wait_writable = true; /* the loop polls for POLLOUT */
            break;
        }
        uint64_t seq;
        rb_err err = {{0}};
        rb_amqp_pub pub = {.routing_key = m->routing_key,
                           .correlation_id = m->correlation_id,
                           .correlation_id_len = m->correlation_id_len,
                           .reply_to = m->reply_to,
                           .deliveries = m->deliveries,
                           .traceparent = m->traceparent,
                           .body = m->body,
                           .len = m->len,
                           .persistent = m->persistent,
                           .mandatory = m->mandatory};
        if (rb_amqp_publish(c->amqp, &pub, &seq, &err) < 0) {
            rb_outbox_hold_front(&c->outbox, m);
            rb_settle_failed(c, &err);
            return -1;
        }
        m->published_ns = rb_mono_ns();
        rb_outbox_published(&c->outbox, m, seq);
    }
    return c->amqp_failed ? -1 : 0;
}

void rb_jobs_free(rb_consumer *c)
{
    rb_admit_free(c);
    rb_outbox_free(&c->outbox);
}
