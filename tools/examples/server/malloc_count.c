/* SPDX-License-Identifier: MIT */
/*
 * malloc_count.so: counts a process's heap allocations, for loadtest.sh --allocs.
 *
 *   LD_PRELOAD=.../libweft-malloc-count.so MALLOC_COUNT_FILE=out.txt program ...
 *
 * Interposes malloc, calloc, realloc, aligned_alloc, posix_memalign and memalign (glibc's
 * __libc_* entry points do the work) and counts every call, from every thread, in one relaxed
 * atomic. When the process exits normally, the count is written to $MALLOC_COUNT_FILE as one
 * decimal number. glibc only: nothing here is part of weft.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);

static atomic_ulong count;

static void counted(void)
{
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); /* a tally, orders nothing */
}

void *malloc(size_t size)
{
    counted();
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    counted();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    counted();
    return __libc_realloc(p, size);
}

void *aligned_alloc(size_t align, size_t size)
{
    counted();
    return __libc_memalign(align, size);
}

void *memalign(size_t align, size_t size)
{
    counted();
    return __libc_memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    counted();
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    void *p = __libc_memalign(align, size);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

__attribute__((destructor)) static void report(void)
{
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (path == NULL || *path == '\0')
        return;
    char line[32];
    int n = snprintf(line, sizeof line, "%lu\n", atomic_load(&count));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
    close(fd);
}
