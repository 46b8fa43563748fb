/* SPDX-License-Identifier: MIT */
/*
 * The pool's page.
 *
 * Fork detection without global state: `alive` sits on a page the kernel wipes in a child after
 * fork() (MADV_WIPEONFORK), so a child reads 0 and knows the pool's threads are gone. Where the
 * kernel cannot wipe, the creator's pid is compared instead (a system call, on that fallback
 * only).
 *
 * The max_pending budget: `holds` counts the outside submissions that have not started, plus
 * WEFT_PAGE_HOLD while the pool exists. A future that counts keeps a pointer to the page and
 * gives its count back when it leaves PENDING, whoever moves it: a worker starting it, the
 * shutdown's sweep, or weft_future_cancel on any thread. That last one may run after the pool
 * was destroyed (the CAS that cancels lets a worker drop the task at once), so the count does
 * not live in the pool: the page outlives it until every count is back, and whoever brings
 * `holds` to zero unmaps it.
 *
 * In a child after fork() nothing gives counts back (a cancel there leaves inherited futures
 * alone, and the pool's workers do not exist), but an inherited continuation may still read
 * the page when its predecessor finishes there, so destroying the inherited pool leaves the
 * page mapped: one page per inherited pool, for the life of the child.
 */
#include "page.h"

#include "alloc.h"
#include "platform.h"

struct weft__page *weft__page_new(void)
{
    bool wipes = false;
    struct weft__page *pg = weft__map_fork_page(&wipes);
    if (pg == NULL)
        return NULL;
    atomic_init(&pg->alive, 1);
    pg->wipes = wipes;
    pg->pid = getpid();
    atomic_init(&pg->holds, WEFT_PAGE_HOLD);
    atomic_init(&pg->pending, 0);
    atomic_init(&pg->launching, 0);
    atomic_init(&pg->dead, 0);
    return pg;
}

void weft__page_put(struct weft__page *pg, size_t n)
{
    /* acq_rel: every holder's last use of the page comes before the unmapping, which the last
     * one does; pairs with the other holders' decrements */
    if (sub_acq_rel(&pg->holds, n) == n)
        weft__unmap_fork_page(pg);
}

void weft__page_pool_dying(struct weft__page *pg)
{
    st_seq_cst(&pg->dead, 1); /* seq_cst: see weft__launch_begin */
    unsigned round = 0;
    /* acquire: pairs with the release decrements; a launch is a few instructions long */
    while (ld_seq_cst(&pg->launching) != 0)
        weft__backoff(&round);
}

void weft__page_drop_forked(struct weft__page *pg)
{
    (void)pg; /* one page per inherited pool, kept for the life of the child */
}
