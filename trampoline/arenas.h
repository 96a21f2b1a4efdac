/*
 * arenas.h - Python's object arenas on huge pages (private to trampoline/).
 * See arenas.c for why.
 */
#ifndef REBOUND_ARENAS_H
#define REBOUND_ARENAS_H

/* Mother, before the interpreter starts: arenas come from one region
 * marked for transparent huge pages (plain mmap where that fails). */
void arenas_install(void);

/* Mother, after the preload: give back the region's unused part and gather
 * what is used into huge pages. */
void arenas_seal(void);

#endif
