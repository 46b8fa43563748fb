#include "inject.h"

#include "alloc.h"

#include <errno.h>

int weft__inject_init(struct weft__inject *q, unsigned nshards)
{
    q->shard = weft__aligned_alloc(WEFT_CACHE_LINE, nshards * sizeof(*q->shard));
    if (q->shard == NULL)
        return -ENOMEM;
    q->nshards = nshards;
    for (unsigned i = 0; i < nshards; i++) {
        struct weft__inject_shard *s = &q->shard[i];
        pthread_mutex_init(&s->lock, NULL);
        s->head = s->tail = NULL;
        s->closed = false;
        atomic_init(&s->count, 0);
    }
    return 0;
}

void weft__inject_destroy(struct weft__inject *q)
{
    for (unsigned i = 0; i < q->nshards; i++)
        pthread_mutex_destroy(&q->shard[i].lock);
    weft__free(q->shard);
    q->shard = NULL;
}

unsigned weft__inject_home(const struct weft__inject *q)
{
    /* The address of a thread-local object identifies the thread without any shared state. */
    static _Thread_local char me;
    uintptr_t h = (uintptr_t)&me;
    h ^= h >> 17;
    h *= 0x9e3779b97f4a7c15u;
    return (unsigned)((h >> 32) % q->nshards);
}

int weft__inject_push(struct weft__inject *q, unsigned s, struct weft__task *t, bool force)
{
    struct weft__inject_shard *sh = &q->shard[s];
    pthread_mutex_lock(&sh->lock);
    if (sh->closed && !force) {
        pthread_mutex_unlock(&sh->lock);
        return -ESHUTDOWN;
    }
    t->next = NULL;
    if (sh->tail != NULL)
        sh->tail->next = t;
    else
        sh->head = t;
    sh->tail = t;
    /* release pairs with the acquire in weft__inject_maybe_nonempty: a worker that sees the
     * count sees the task (it then takes the lock anyway to remove it). */
    st_release(&sh->count, ld_relaxed(&sh->count) + 1);
    pthread_mutex_unlock(&sh->lock);
    return 0;
}

struct weft__task *weft__inject_pop(struct weft__inject *q, unsigned s, size_t max, bool wait)
{
    struct weft__inject_shard *sh = &q->shard[s];
    if (ld_relaxed(&sh->count) == 0) /* relaxed: a hint; the lock orders the real check */
        return NULL;
    if (wait)
        pthread_mutex_lock(&sh->lock);
    else if (pthread_mutex_trylock(&sh->lock) != 0)
        return NULL;
    struct weft__task *first = sh->head, *last = NULL, *t = first;
    size_t n = 0;
    while (t != NULL && n < max) {
        last = t;
        t = t->next;
        n++;
    }
    if (n > 0) {
        sh->head = t;
        if (t == NULL)
            sh->tail = NULL;
        last->next = NULL;
        st_relaxed(&sh->count, ld_relaxed(&sh->count) - n); /* relaxed: under the lock */
    }
    pthread_mutex_unlock(&sh->lock);
    return n > 0 ? first : NULL;
}

void weft__inject_close(struct weft__inject *q)
{
    for (unsigned i = 0; i < q->nshards; i++) {
        pthread_mutex_lock(&q->shard[i].lock);
        q->shard[i].closed = true;
        pthread_mutex_unlock(&q->shard[i].lock);
    }
}

bool weft__inject_maybe_nonempty(struct weft__inject *q)
{
    for (unsigned i = 0; i < q->nshards; i++) {
        /* acquire pairs with the release in weft__inject_push */
        if (ld_acquire(&q->shard[i].count) != 0)
            return true;
    }
    return false;
}
