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
 * alone, and the pool's workers do not exist), so destroying the inherited pool unmaps the page
 * at once.
 */
#include "page.h"

#include "alloc.h"

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
    return pg;
}

void weft__page_put(struct weft__page *pg, size_t n)
{
    /* acq_rel: every holder's last use of the page comes before the unmapping, which the last
     * one does; pairs with the other holders' decrements */
    if (sub_acq_rel(&pg->holds, n) == n)
        weft__unmap_fork_page(pg);
}

void weft__page_drop_forked(struct weft__page *pg)
{
    weft__unmap_fork_page(pg);
}
