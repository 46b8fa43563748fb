#include "alloc.h"

#include <errno.h>
#include <stdlib.h>

void *weft__malloc(size_t size)
{
    return malloc(size);
}

void *weft__calloc(size_t n, size_t size)
{
    return calloc(n, size);
}

void *weft__aligned_alloc(size_t align, size_t size)
{
    size_t rounded = (size + align - 1) / align * align;
    if (rounded < size)
        return NULL;
    return aligned_alloc(align, rounded);
}

void weft__free(void *p)
{
    free(p);
}

int weft__thread_start(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    return pthread_create(t, attr, fn, arg) == 0 ? 0 : -EAGAIN;
}
