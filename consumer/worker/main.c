/* main.c - rebound-worker: parse the settings, then supervise the consumer
 * processes (or, in a forked consumer, run it). */
#include <stdio.h>

#include "consumer.h"
#include "supervisor.h"
#include "worker_config.h"
#include "worker_log.h"

int main(int argc, char **argv)
{
    rb_worker_config cfg;
    rb_err err = {{0}};
    switch (rb_worker_config_parse(&cfg, argc, argv, stdout, &err)) {
    case RB_CONFIG_ERROR:
        fprintf(stderr, "rebound-worker: %s\n", err.msg);
        rb_worker_config_free(&cfg);
        return 2;
    case RB_CONFIG_DONE:
        rb_worker_config_free(&cfg);
        return 0;
    case RB_CONFIG_RUN:
        break;
    }
    rb_log_setup(cfg.log_level, cfg.log_format);
    rb_log_set_id(cfg.worker_id);

    int index = 0;
    int rc = rb_supervise(&cfg, &index);
    if (index > 0) {
        /* Consumer n's slots get uids of their own (see --uid-base). */
        if (cfg.uid_base > 0) cfg.uid_base += (int64_t)(index - 1) * cfg.slots;
        /* And CPUs of their own (a CPU per slot, round the CPUs). */
        cfg.slot_offset = (index - 1) * cfg.slots;
        if (index > cfg.consumers) {
            /* The quarantine consumer: suspects, one at a time (admit.c). */
            cfg.quarantine = true;
            cfg.slots = 1;
            cfg.prefetch = 1;
        }
        char id[160];
        rb_consumer_id(&cfg, index, id, sizeof id);
        rc = rb_consumer_run(&cfg, id);
    }
    rb_worker_config_free(&cfg);
    return rc;
}
