/* SPDX-License-Identifier: MIT */
/*
 * Every allocation and thread start inside weft goes through these wrappers, so that failure
 * paths can be exercised by fault injection and so that one place owns the policy.
 */
#ifndef WEFT_ALLOC_H
#define WEFT_ALLOC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* A pool's allocator: the one weft_config gives (mem_alloc, mem_free, mem_opaque), or malloc
 * and free. Everything the pool owns comes from it (the pool, its workers, deque buffers,
 * injection shards, parking arrays, trace rings, spare threads' records), and `live` counts
 * those bytes, headers included, for weft_pool_memory. Any thread may allocate and free. */
struct weft__mem {
    void *(*alloc)(void *opaque, size_t size); /* NULL: malloc */
    void (*free)(void *opaque, void *p);       /* NULL: free */
    void *opaque;
    _Atomic size_t live;
};

/* size zeroed bytes aligned to align (a power of two; below 16 means 16), or NULL. A fault
 * injection site. */
void *weft__mem_alloc(struct weft__mem *m, size_t align, size_t size);
/* The same without the fault injection site, for allocations the fault tests cannot reach in
 * a fixed order (spare threads, started when a wait blocks). */
void *weft__mem_alloc_quiet(struct weft__mem *m, size_t align, size_t size);
/* Frees what weft__mem_alloc gave (NULL: nothing). */
void weft__mem_free(struct weft__mem *m, void *p);

void *weft__malloc(size_t size);
void *weft__calloc(size_t n, size_t size);
void *weft__aligned_alloc(size_t align, size_t size); /* size rounded up to align */
void weft__free(void *p);

/* One page of zeroes that reads as zeroes again in a child after fork() (MADV_WIPEONFORK);
 * *wipes is false when the kernel cannot do that (the page is then an ordinary one). NULL when
 * out of memory. */
void *weft__map_fork_page(bool *wipes);
void weft__unmap_fork_page(void *page);

/* pthread_create; returns 0 or -EAGAIN. */
int weft__thread_start(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

#ifdef WEFT_FAULT_INJECTION
/* Test builds only: the n-th allocation or thread start from now fails (n <= 0: none), and
 * how many sites were reached since. */
void weft__fault_arm(long n);
long weft__fault_sites(void);
#endif

#endif
