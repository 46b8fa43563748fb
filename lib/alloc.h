/* SPDX-License-Identifier: MIT */
/*
 * Every allocation and thread start inside weft goes through these wrappers, so that failure
 * paths can be exercised by fault injection and so that one place owns the policy.
 */
#ifndef WEFT_ALLOC_H
#define WEFT_ALLOC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

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
