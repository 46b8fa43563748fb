/* SPDX-License-Identifier: MIT */
/*
 * The pool's page: one page of its own (mmap) holding what must survive fork() or the pool
 * itself. See page.c.
 */
#ifndef WEFT_PAGE_H
#define WEFT_PAGE_H

#include "atomic.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

struct weft__page {
    _Atomic uint32_t alive; /* 1; reads 0 in a child after fork() where the kernel wipes */
    bool wipes;             /* the kernel wipes this page in a child (MADV_WIPEONFORK) */
    pid_t pid;              /* the creating process: the test where it does not wipe */
    /* The max_pending budget: outside submissions not started (low bits), plus WEFT_PAGE_HOLD
     * while the pool exists. Apart from the read-mostly line above. */
    WEFT_ALIGNED _Atomic size_t holds;
};

#define WEFT_PAGE_HOLD ((size_t)1 << (sizeof(size_t) * 8 - 1))

/* A new page for a pool (holds == WEFT_PAGE_HOLD), or NULL when out of memory. */
struct weft__page *weft__page_new(void);

/* True in a child process that inherited the page (and its pool) through fork(). */
static inline bool weft__page_forked(const struct weft__page *pg)
{
    /* relaxed: written once before the pool is shared; the kernel zeroes it in a child */
    if (ld_relaxed(&pg->alive) == 0)
        return true;
    return !pg->wipes && getpid() != pg->pid;
}

/* Gives back n of the page's holds (the pool's own is WEFT_PAGE_HOLD); the last one unmaps
 * it. Any thread. */
void weft__page_put(struct weft__page *pg, size_t n);

/* In a fork() child: unmaps the page at once (nothing in the child holds it; see page.c). */
void weft__page_drop_forked(struct weft__page *pg);

#endif
