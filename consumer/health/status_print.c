/*
 * status_print.c - the table rebound-status prints: one row per worker in
 * the sorted set, sorted by id, columns aligned, then a totals row over
 * the live workers.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

enum {
    COL_ID,
    COL_HOST,
    COL_STATE,
    COL_BUSY,
    COL_OK,
    COL_ERROR,
    COL_TIMEOUT,
    COL_CRASHED,
    COL_REJECTED,
    COL_RATE,
    COL_AGE,
    COL_RSS,
    NCOLS
};

static const char *const headers[NCOLS] = {"ID",       "HOST",   "STATE",   "BUSY",
                                           "OK",       "ERROR",  "TIMEOUT", "CRASHED",
                                           "REJECTED", "JOBS/S", "AGE",     "RSS"};

#define CELL 256 /* ids are at most 128 bytes; longer hosts are cut */

typedef char row_cells[NCOLS][CELL];

void rb_status_fmt_age(char *buf, size_t len, int64_t ms)
{
    int64_t s = ms / 1000;
    if (ms < 10000)
        snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
    else if (s < 60)
        snprintf(buf, len, "%" PRId64 "s", s);
    else if (s < 3600)
        snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
}

void rb_status_fmt_kb(char *buf, size_t len, uint64_t kb)
{
    if (kb < 1024)
        snprintf(buf, len, "%" PRIu64 "K", kb);
    else if (kb < 1024 * 1024)
        snprintf(buf, len, "%.1fM", (double)kb / 1024.0);
    else
        snprintf(buf, len, "%.1fG", (double)kb / (1024.0 * 1024.0));
}

static void fill_counts(row_cells c, const uint64_t jobs[RB_JOB_KINDS])
{
    for (int k = 0; k < RB_JOB_KINDS; k++)
        snprintf(c[COL_OK + k], CELL, "%" PRIu64, jobs[k]);
}

static void fill_worker(row_cells c, const rb_worker_row *w, bool show_rates)
{
    snprintf(c[COL_ID], CELL, "%s", w->id);
    snprintf(c[COL_HOST], CELL, "%s", w->host);
    snprintf(c[COL_STATE], CELL, "%s", w->state);
    rb_status_fmt_age(c[COL_AGE], CELL, w->age_ms);
    if (w->lost) {
        for (int k = COL_BUSY; k <= COL_RATE; k++)
            snprintf(c[k], CELL, "-");
        snprintf(c[COL_RSS], CELL, "-");
        return;
    }
    snprintf(c[COL_BUSY], CELL, "%ld/%ld", w->busy, w->slots);
    fill_counts(c, w->jobs);
    if (show_rates && w->has_rate)
        snprintf(c[COL_RATE], CELL, "%.1f", w->jobs_per_s);
    else
        snprintf(c[COL_RATE], CELL, "-");
    rb_status_fmt_kb(c[COL_RSS], CELL, w->rss_kb);
}

static void fill_totals(row_cells c, const rb_status_snapshot *s, bool show_rates)
{
    uint64_t jobs[RB_JOB_KINDS] = {0}, rss = 0;
    long busy = 0, slots = 0;
    size_t ready = 0, lost = 0;
    bool any_rate = false;
    double rate = 0;
    for (size_t i = 0; i < s->n; i++) {
        const rb_worker_row *w = &s->rows[i];
        if (w->lost) {
            lost++;
            continue;
        }
        ready += strcmp(w->state, "ready") == 0;
        busy += w->busy;
        slots += w->slots;
        rss += w->rss_kb;
        for (int k = 0; k < RB_JOB_KINDS; k++)
            jobs[k] += w->jobs[k];
        if (w->has_rate) {
            any_rate = true;
            rate += w->jobs_per_s;
        }
    }
    snprintf(c[COL_ID], CELL, "TOTAL");
    snprintf(c[COL_HOST], CELL, "%zu worker%s", s->n, s->n == 1 ? "" : "s");
    if (lost > 0)
        snprintf(c[COL_STATE], CELL, "%zu ready, %zu lost", ready, lost);
    else
        snprintf(c[COL_STATE], CELL, "%zu ready", ready);
    snprintf(c[COL_BUSY], CELL, "%ld/%ld", busy, slots);
    fill_counts(c, jobs);
    if (show_rates && any_rate)
        snprintf(c[COL_RATE], CELL, "%.1f", rate);
    else
        snprintf(c[COL_RATE], CELL, "-");
    snprintf(c[COL_AGE], CELL, "-");
    rb_status_fmt_kb(c[COL_RSS], CELL, rss);
}

static void print_row(FILE *out, row_cells c, const int width[NCOLS])
{
    for (int k = 0; k < NCOLS; k++) {
        bool left = k <= COL_STATE;
        const char *sep = k == 0 ? "" : "  ";
        if (left)
            fprintf(out, "%s%-*s", sep, width[k], c[k]);
        else
            fprintf(out, "%s%*s", sep, width[k], c[k]);
    }
    fputc('\n', out);
}

void rb_status_print_table(FILE *out, const rb_status_snapshot *s, bool show_rates)
{
    size_t nrows = s->n + 2; /* header, workers, totals */
    row_cells *cells = calloc(nrows, sizeof *cells);
    if (cells == NULL) {
        fprintf(out, "(out of memory)\n");
        return;
    }
    for (int k = 0; k < NCOLS; k++)
        snprintf(cells[0][k], CELL, "%s", headers[k]);
    for (size_t i = 0; i < s->n; i++)
        fill_worker(cells[i + 1], &s->rows[i], show_rates);
    fill_totals(cells[nrows - 1], s, show_rates);

    int width[NCOLS] = {0};
    for (size_t r = 0; r < nrows; r++)
        for (int k = 0; k < NCOLS; k++) {
            int len = (int)strlen(cells[r][k]);
            if (len > width[k]) width[k] = len;
        }
    for (size_t r = 0; r < nrows; r++)
        print_row(out, cells[r], width);
    free(cells);
}
