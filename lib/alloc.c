/* SPDX-License-Identifier: MIT */
/*
 * The one door for allocations and thread starts.
 *
 * Built with WEFT_FAULT_INJECTION (the weft_fault library the fault-injection tests link), it
 * also keeps a countdown: weft__fault_arm(n) makes the n-th allocation or thread start from
 * then on fail, as if memory or threads had run out, so a test can walk n over every site a
 * call sequence reaches. The countdown is process-wide state, which is why it exists only in
 * that test build.
 */
#include "alloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef WEFT_FAULT_INJECTION
#include <stdatomic.h>

static _Atomic long countdown; /* 0: off; n > 0: the n-th site from now fails */
static _Atomic long sites;     /* sites reached since the last arm */

void weft__fault_arm(long n)
{
    atomic_store(&sites, 0);
    atomic_store(&countdown, n > 0 ? n : 0);
}

long weft__fault_sites(void)
{
    return atomic_load(&sites);
}

static int fail_here(void)
{
    atomic_fetch_add(&sites, 1);
    long c = atomic_load(&countdown);
    while (c > 0) {
        if (atomic_compare_exchange_weak(&countdown, &c, c - 1))
            return c == 1;
    }
    return 0;
}
#define FAULT(fail_value)                                                                          \
    do {                                                                                           \
        if (fail_here())                                                                           \
            return fail_value;                                                                     \
    } while (0)
#else
#define FAULT(fail_value) ((void)0)
#endif

/* Before each block of a pool's allocator: where the allocator's block begins, and how many
 * bytes it took. */
struct mem_header {
    void *base;
    size_t size;
};
_Static_assert(sizeof(struct mem_header) == 16, "the header must keep 16-byte alignment");

void *weft__mem_alloc_quiet(struct weft__mem *m, size_t align, size_t size)
{
    if (align < 16)
        align = 16;
    size_t total = size + align + sizeof(struct mem_header);
    if (total < size)
        return NULL; /* overflow */
    void *base = m->alloc != NULL ? m->alloc(m->opaque, total) : malloc(total);
    if (base == NULL)
        return NULL;
    uintptr_t p =
        ((uintptr_t)base + sizeof(struct mem_header) + align - 1) & ~(uintptr_t)(align - 1);
    struct mem_header *h = (struct mem_header *)p - 1;
    h->base = base;
    h->size = total;
    memset((void *)p, 0, size);
    /* relaxed: a tally for weft_pool_memory, ordering nothing */
    atomic_fetch_add_explicit(&m->live, total, memory_order_relaxed);
    return (void *)p;
}

void *weft__mem_alloc(struct weft__mem *m, size_t align, size_t size)
{
    FAULT(NULL);
    return weft__mem_alloc_quiet(m, align, size);
}

void weft__mem_free(struct weft__mem *m, void *p)
{
    if (p == NULL)
        return;
    struct mem_header *h = (struct mem_header *)p - 1;
    void *base = h->base;
    /* relaxed: as in weft__mem_alloc_quiet */
    atomic_fetch_sub_explicit(&m->live, h->size, memory_order_relaxed);
    if (m->free != NULL)
        m->free(m->opaque, base);
    else
        free(base);
}

void *weft__malloc(size_t size)
{
    FAULT(NULL);
    return malloc(size);
}

void *weft__calloc(size_t n, size_t size)
{
    FAULT(NULL);
    return calloc(n, size);
}

void *weft__aligned_alloc(size_t align, size_t size)
{
    FAULT(NULL);
    size_t rounded = (size + align - 1) / align * align;
    if (rounded < size)
        return NULL;
    return aligned_alloc(align, rounded);
}

void weft__free(void *p)
{
    free(p);
}

void *weft__map_fork_page(bool *wipes)
{
    FAULT(NULL);
    long size = sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_WIPEONFORK
    *wipes = madvise(p, (size_t)size, MADV_WIPEONFORK) == 0;
#else
    *wipes = false;
#endif
    return p;
}

void weft__unmap_fork_page(void *page)
{
    if (page != NULL)
        munmap(page, (size_t)sysconf(_SC_PAGESIZE));
}

int weft__thread_start(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    FAULT(-EAGAIN);
    return pthread_create(t, attr, fn, arg) == 0 ? 0 : -EAGAIN;
}
