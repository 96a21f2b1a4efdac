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
 */
#include "arenas.h"

#include <Python.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1 */
#endif

#define HUGE_PAGE (2UL << 20)
#define REGION_SIZE (512UL << 20) /* address space only, until written */

static char *region, *region_next, *region_end;
static void *free_arenas; /* freed arenas of the region, linked through their first word */

static void *fallback_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static bool in_region(const void *p)
{
    return region && (const char *)p >= region && (const char *)p < region_end;
}

static void *arena_alloc(void *ctx, size_t size)
{
    (void)ctx;
    if (free_arenas) {
        void *p = free_arenas;
        free_arenas = *(void **)p;
        return p;
    }
    if (region && size <= (size_t)(region_end - region_next)) {
        void *p = region_next;
        region_next += size;
        return p;
    }
    return fallback_alloc(size);
}

static void arena_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (in_region(ptr)) {
        /* Kept for the next arena: every arena has the same size. */
        *(void **)ptr = free_arenas;
        free_arenas = ptr;
        return;
    }
    munmap(ptr, size);
}

void arenas_install(void)
{
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
    }
    PyObjectArenaAllocator a = {.ctx = NULL, .alloc = arena_alloc, .free = arena_free};
    PyObject_SetArenaAllocator(&a);
}

void arenas_seal(void)
{
    if (!region) return;
    char *keep = (char *)(((uintptr_t)region_next + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
    if (keep < region_end) munmap(keep, (size_t)(region_end - keep));
    region_end = keep; /* later arenas come from the rest of the last huge page */
    /* Pages that were written before the kernel could give a huge page
     * (memory was short, or huge pages are off) are gathered now; where
     * that fails, nothing is lost but the speed. */
    madvise(region, (size_t)(region_end - region), MADV_COLLAPSE);
}
