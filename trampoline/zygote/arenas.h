/*
 * arenas.h - Python's object arenas on huge pages (private to trampoline/).
 * See arenas.c for why.
 */
#ifndef REBOUND_ARENAS_H
#define REBOUND_ARENAS_H

#include <stddef.h>

/* Mother, before the interpreter starts: arenas come from one region
 * marked for transparent huge pages (plain mmap where that fails). */
void arenas_install(void);

/* Mother, after the preload: give back the region's unused part and gather
 * what is used into huge pages. Returns how many arenas came from the
 * region (0: none, so nothing is on huge pages). */
size_t arenas_seal(void);

#endif
