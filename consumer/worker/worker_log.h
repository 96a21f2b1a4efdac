/*
 * worker_log.h - the log of rebound-worker: one line per record on stderr,
 * as text or as JSON, filtered by level.
 *
 * Each record is written with a single write(2), so lines from the
 * supervisor and its consumer processes (which share stderr) never
 * interleave mid-line. State is per process: a forked consumer inherits the
 * settings and then changes its id with rb_log_set_id.
 */
#ifndef REBOUND_WORKER_LOG_H
#define REBOUND_WORKER_LOG_H

#include <stdbool.h>

typedef enum rb_log_level {
    RB_LOG_DEBUG = 0,
    RB_LOG_INFO,
    RB_LOG_WARN,
    RB_LOG_ERROR,
} rb_log_level;

typedef enum rb_log_format {
    RB_LOG_TEXT = 0,
    RB_LOG_JSON,
} rb_log_format;

/* "debug"/"info"/"warn"/"error" and "text"/"json"; -1 for anything else. */
int rb_log_level_parse(const char *s, rb_log_level *out);
int rb_log_format_parse(const char *s, rb_log_format *out);
const char *rb_log_level_name(rb_log_level lvl);

/* Set the level filter and format. Before this: info, text. */
void rb_log_setup(rb_log_level min, rb_log_format fmt);

/* The id printed with every record (copied, truncated to 127 bytes);
 * NULL or "" prints none. */
void rb_log_set_id(const char *id);

bool rb_log_enabled(rb_log_level lvl);

/* Log one record. The message is a single line: line breaks in it are
 * replaced by spaces. */
void rb_log(rb_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define rb_debug(...) rb_log(RB_LOG_DEBUG, __VA_ARGS__)
#define rb_info(...) rb_log(RB_LOG_INFO, __VA_ARGS__)
#define rb_warn(...) rb_log(RB_LOG_WARN, __VA_ARGS__)
#define rb_error(...) rb_log(RB_LOG_ERROR, __VA_ARGS__)

#endif
