/* SPDX-License-Identifier: MIT */
/*
 * An intrusive, circular, doubly linked list (as libuv's src/queue.h): a struct weft__list
 * member links an object into a list whose head is a struct weft__list of its own;
 * weft__container_of gets from the member back to the object. A node off any list links to
 * itself. No locking: each list says what protects it.
 */
#ifndef WEFT_LIST_H
#define WEFT_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct weft__list {
    struct weft__list *next, *prev;
};

/* The object of type `type` whose member `member` is at ptr. */
#define weft__container_of(ptr, type, member)                                                      \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void weft__list_init(struct weft__list *h)
{
    h->next = h;
    h->prev = h;
}

static inline bool weft__list_empty(const struct weft__list *h)
{
    return h->next == h;
}

/* Inserts n before position at (at the tail when at is the head). */
static inline void weft__list_insert_before(struct weft__list *at, struct weft__list *n)
{
    n->next = at;
    n->prev = at->prev;
    at->prev->next = n;
    at->prev = n;
}

static inline void weft__list_push_tail(struct weft__list *h, struct weft__list *n)
{
    weft__list_insert_before(h, n);
}

static inline void weft__list_push_head(struct weft__list *h, struct weft__list *n)
{
    weft__list_insert_before(h->next, n);
}

/* Takes n off its list; n then links to itself. */
static inline void weft__list_remove(struct weft__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    weft__list_init(n);
}

/* The first node, or NULL when empty. */
static inline struct weft__list *weft__list_first(const struct weft__list *h)
{
    return weft__list_empty(h) ? NULL : h->next;
}

/* Moves every node of from onto the empty list to, in order; from is left empty. */
static inline void weft__list_move_all(struct weft__list *from, struct weft__list *to)
{
    if (weft__list_empty(from)) {
        weft__list_init(to);
        return;
    }
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    weft__list_init(from);
}

#endif
