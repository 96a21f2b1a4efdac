/* log.c - one-line log records on stderr, text or JSON. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker_log.h"

static rb_log_level g_min = RB_LOG_INFO;
static rb_log_format g_fmt = RB_LOG_TEXT;
static char g_id[128];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int rb_log_level_parse(const char *s, rb_log_level *out)
{
    for (int i = 0; i <= RB_LOG_ERROR; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (rb_log_level)i;
            return 0;
        }
    }
    return -1;
}

int rb_log_format_parse(const char *s, rb_log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = RB_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = RB_LOG_JSON;
    else
        return -1;
    return 0;
}

const char *rb_log_level_name(rb_log_level lvl)
{
    return (lvl >= RB_LOG_DEBUG && lvl <= RB_LOG_ERROR) ? level_names[lvl] : "?";
}

void rb_log_setup(rb_log_level min, rb_log_format fmt)
{
    g_min = min;
    g_fmt = fmt;
}

void rb_log_set_id(const char *id)
{
    snprintf(g_id, sizeof g_id, "%s", id ? id : "");
}

bool rb_log_enabled(rb_log_level lvl)
{
    return lvl >= g_min;
}

/* A bounded string builder: appends silently stop at the end of the buffer,
 * so an over-long record is truncated rather than split. */
typedef struct line {
    char *buf;
    size_t len;
    size_t cap; /* usable bytes, one kept for the final newline */
} line;

static void put(line *l, const char *s, size_t n)
{
    if (n > l->cap - l->len) n = l->cap - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* Append s as the inside of a JSON string. Control bytes are escaped;
 * other bytes pass through (messages are UTF-8 or ASCII). */
static void put_json_str(line *l, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        size_t n = 1;
        esc[0] = (char)c;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            n = 6;
        }
        if (n > l->cap - l->len) return; /* never cut an escape in half */
        put(l, esc, n);
    }
}

static void timestamp(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

void rb_log(rb_log_level lvl, const char *fmt, ...)
{
    if (lvl < g_min) return;
    int saved_errno = errno;

    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) {
        if (*p == '\n' || *p == '\r') *p = ' ';
    }

    char ts[40], pid[24];
    timestamp(ts, sizeof ts);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());

    char buf[4096];
    line l = {buf, 0, sizeof buf - 1};
    if (g_fmt == RB_LOG_JSON) {
        puts_(&l, "{\"ts\":\"");
        puts_(&l, ts);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, rb_log_level_name(lvl));
        if (g_id[0]) {
            puts_(&l, "\",\"worker\":\"");
            put_json_str(&l, g_id);
        }
        puts_(&l, "\",\"pid\":");
        puts_(&l, pid);
        puts_(&l, ",\"msg\":\"");
        /* Keep room for the closing quote and brace, so that a cut
         * message still leaves a valid JSON record. */
        l.cap -= 2;
        put_json_str(&l, msg);
        l.cap += 2;
        puts_(&l, "\"}");
    } else {
        char head[64];
        snprintf(head, sizeof head, " %-5s ", rb_log_level_name(lvl));
        puts_(&l, ts);
        puts_(&l, head);
        if (g_id[0]) {
            puts_(&l, g_id);
            puts_(&l, "[");
            puts_(&l, pid);
            puts_(&l, "]: ");
        }
        puts_(&l, msg);
    }
    buf[l.len++] = '\n';

    /* One write per record; a short write to a pipe only happens for
     * records above PIPE_BUF, and then the rest follows at once. */
    size_t off = 0;
    while (off < l.len) {
        ssize_t w = write(STDERR_FILENO, buf + off, l.len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    errno = saved_errno;
}
