/*
 * caches.h - library caches built once, not once per job (private to
 * trampoline/). See caches.c for why and where.
 */
#ifndef REBOUND_CACHES_H
#define REBOUND_CACHES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Where the pool's prepared caches are (set by caches_prepare). */
typedef struct caches {
    char mpl_dir[256];      /* matplotlib's shared cache directory; "" when none */
    char mpl_fontlist[320]; /* its font list file; "" when matplotlib is absent */
} caches;

/* Mother, after Python starts and before the preload: make sure the shared
 * caches exist and are current, building them in a forked child, and point
 * this process's MPLCONFIGDIR at matplotlib's, so that a preloaded
 * matplotlib uses it. Never fails: a cache that cannot be prepared is
 * logged and left to the jobs. */
void caches_prepare(caches *c);

/* The job's MPLCONFIGDIR for the private directory tmpdir, written into
 * out: true when there is one (a font list was prepared). */
bool caches_job_mplconfig(const caches *c, const char *tmpdir, char *out, size_t cap);

/* Zygote, for each child's private directory (to be owned by uid/gid when
 * chown_to is true): make the job's MPLCONFIGDIR with a link to the shared
 * font list. Nothing to do when none was prepared. Returns 0, or -1 with
 * errno. */
int caches_seed_job(const caches *c, const char *tmpdir, bool chown_to, uid_t uid, gid_t gid);

#endif
