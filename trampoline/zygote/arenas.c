/*
 * arenas.c - the preloaded interpreter's objects on transparent huge pages.
 *
 * A fork copies one page-table entry for every written page of the zygote,
 * and the child's exit tears its copies down again: for the ~18 MB a
 * preloaded interpreter has written, that is most of what a fork and an
 * exit cost. Where that memory sits on 2 MiB huge pages, a fork copies one
 * entry per 2 MiB instead of 512; a child that writes to such a page gets
 * the usual 4 KiB copy (the kernel splits the mapping in the child only).
 *
 * Python's small objects live in 1 MiB arenas, which it normally maps one
 * by one. Here they are cut from one 2 MiB-aligned region marked for huge
 * pages. Once the preload is done the unused rest of the region is given
 * back, so what the children inherit counts against their address-space
 * limit only as far as it is used. (The C heap gets huge pages through
 * glibc's malloc.hugetlb tunable, which the pool sets.)
 *
 * Python asks this allocator for more than arenas: the chunks of its frame
 * stack (16 KiB and larger, _PyObject_VirtualAlloc) come from it too. Only
 * blocks of exactly ARENA_SIZE are cut from the region, and only they are
 * kept for reuse; every other size is mapped and unmapped as Python itself
 * would. (Handing a freed 16 KiB chunk out again as a 1 MiB arena laid that
 * arena over its neighbours' live objects: the crash on large imports.) If
 * an interpreter's arenas had another size, none would come from the
 * region, which is slower but still correct; arenas_seal() says so.
 *
 * With REBOUND_ARENAS_CHECK (the REBOUND_PYMALLOC_DEBUG build), a freed
 * arena is filled with a pattern that is checked when it is handed out
 * again, and any size mismatch aborts.
 */
#include "arenas.h"

#include <Python.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
/* LeakSanitizer scans globals, stacks and the C heap, not anonymous
 * mappings: the interpreter's objects, which hold most pointers to its C
 * heap, live in these blocks. Registered, they are scanned as roots, so the
 * mother's leak check (main.c) reports only what nothing refers to. */
#define scan_as_root(p, n) __lsan_register_root_region((p), (n))
#define unscan(p, n) __lsan_unregister_root_region((p), (n))
#else
#define scan_as_root(p, n) ((void)(p), (void)(n))
#define unscan(p, n) ((void)(p), (void)(n))
#endif

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1 */
#endif

#define HUGE_PAGE (2UL << 20)
#define REGION_SIZE (512UL << 20) /* address space only, until written */
/* obmalloc's arena on 64-bit builds of CPython 3.10 to 3.13 (ARENA_BITS 20,
 * checked in each one's Objects/obmalloc.c). A version whose arenas have
 * another size gets none from the region (see above): arenas_seal() then
 * returns 0 and the mother says so once. */
#define ARENA_SIZE (1UL << 20)

static char *region, *region_next, *region_end;
static void *free_arenas; /* freed arenas of the region, linked through their first word */
static size_t arenas_cut; /* how many arenas came from the region */

#ifdef REBOUND_ARENAS_CHECK
#define POISON 0xdb
static void check_failed(const char *what, const void *p, size_t size)
{
    fprintf(stderr, "arenas.c: %s (block %p, %zu bytes)\n", what, p, size);
    abort();
}

static void poison(void *p)
{
    memset((char *)p + sizeof(void *), POISON, ARENA_SIZE - sizeof(void *));
}

static void check_poison(const void *p)
{
    const unsigned char *b = p;
    for (size_t i = sizeof(void *); i < ARENA_SIZE; i++)
        if (b[i] != POISON) check_failed("a freed arena was written after its free", p, i);
}
#else
static void poison(void *p)
{
    (void)p;
}
static void check_poison(const void *p)
{
    (void)p;
}
#endif

static void *map_block(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    scan_as_root(p, size);
    return p;
}

static bool in_region(const void *p)
{
    return region && (const char *)p >= region && (const char *)p < region_end;
}

static void *arena_alloc(void *ctx, size_t size)
{
    (void)ctx;
    if (size != ARENA_SIZE) return map_block(size);
    if (free_arenas) {
        void *p = free_arenas;
        check_poison(p);
        free_arenas = *(void **)p;
        return p;
    }
    if (region && ARENA_SIZE <= (size_t)(region_end - region_next)) {
        void *p = region_next;
        region_next += ARENA_SIZE;
        arenas_cut++;
        return p;
    }
    return map_block(size);
}

static void arena_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (in_region(ptr)) {
#ifdef REBOUND_ARENAS_CHECK
        if (size != ARENA_SIZE) check_failed("a region block freed with another size", ptr, size);
#endif
        /* Kept for the next arena: only arenas come from the region. */
        poison(ptr);
        *(void **)ptr = free_arenas;
        free_arenas = ptr;
        return;
    }
    unscan(ptr, size);
    munmap(ptr, size);
}

void arenas_install(void)
{
#ifdef Py_GIL_DISABLED
    /* 3.13's free-threaded build puts objects in mimalloc's heaps, never
     * in arenas: nothing to place (arenas_seal() reports 0). */
    return;
#endif
    char *raw = mmap(NULL, REGION_SIZE + HUGE_PAGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw != MAP_FAILED) {
        char *start = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
        if (start > raw) munmap(raw, (size_t)(start - raw));
        munmap(start + REGION_SIZE, (size_t)(raw + HUGE_PAGE - start));
        /* Without huge pages (a kernel without them, or "never") the
         * region is still a good place for arenas: nothing else changes. */
        madvise(start, REGION_SIZE, MADV_HUGEPAGE);
        region = region_next = start;
        region_end = start + REGION_SIZE;
        scan_as_root(region, REGION_SIZE);
    }
    PyObjectArenaAllocator a = {.ctx = NULL, .alloc = arena_alloc, .free = arena_free};
    PyObject_SetArenaAllocator(&a);
}

size_t arenas_seal(void)
{
    if (!region) return 0;
    char *keep = (char *)(((uintptr_t)region_next + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
    unscan(region, (size_t)(region_end - region));
    if (keep < region_end) munmap(keep, (size_t)(region_end - keep));
    region_end = keep; /* later arenas come from the rest of the last huge page */
    if (keep > region) scan_as_root(region, (size_t)(keep - region));
    /* Pages that were written before the kernel could give a huge page
     * (memory was short, or huge pages are off) are gathered now; where
     * that fails, nothing is lost but the speed. */
    if (keep > region) madvise(region, (size_t)(region_end - region), MADV_COLLAPSE);
    return arenas_cut;
}
