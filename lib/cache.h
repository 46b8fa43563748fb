/* SPDX-License-Identifier: MIT */
/*
 * Per-thread caches of small fixed-size blocks: futures, callback nodes and completion-set
 * entries come from here, so a steady stream of tasks makes no calls to malloc. See cache.c.
 */
#ifndef WEFT_CACHE_H
#define WEFT_CACHE_H

#define WEFT_BLOCK_SIZE 128

/* A block of WEFT_BLOCK_SIZE bytes, aligned for any object; NULL when out of memory. */
void *weft__block_alloc(void);

/* Gives a block back, from any thread. NULL is ignored. */
void weft__block_free(void *p);

#endif
