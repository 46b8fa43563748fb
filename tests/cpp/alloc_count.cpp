/* SPDX-License-Identifier: MIT */
/*
 * Replacements of the global allocation functions that count, per thread, the calls to
 * operator new, so that test_cpp can check that a code path allocates nothing. In a file of
 * their own, so that the compiler never sees a replacement and its caller together. Every form
 * is replaced (plain, array, aligned, nothrow), so that no allocation made by a sanitizer's own
 * operator new is freed by one of these.
 */
#include <cstddef>
#include <cstdlib>
#include <new>

long weft_test_allocations(void);

static thread_local long count;

long weft_test_allocations(void)
{
    return count;
}

static void *allocate(std::size_t n, std::size_t align) noexcept
{
    count++;
    if (n == 0)
        n = 1;
    if (align <= alignof(std::max_align_t))
        return std::malloc(n);
    return std::aligned_alloc(align, (n + align - 1) / align * align);
}

static void *allocate_or_throw(std::size_t n, std::size_t align)
{
    void *p = allocate(n, align);
    if (p == nullptr)
        throw std::bad_alloc();
    return p;
}

void *operator new(std::size_t n)
{
    return allocate_or_throw(n, 0);
}
void *operator new[](std::size_t n)
{
    return allocate_or_throw(n, 0);
}
void *operator new(std::size_t n, std::align_val_t a)
{
    return allocate_or_throw(n, static_cast<std::size_t>(a));
}
void *operator new[](std::size_t n, std::align_val_t a)
{
    return allocate_or_throw(n, static_cast<std::size_t>(a));
}
void *operator new(std::size_t n, const std::nothrow_t &) noexcept
{
    return allocate(n, 0);
}
void *operator new[](std::size_t n, const std::nothrow_t &) noexcept
{
    return allocate(n, 0);
}
void *operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept
{
    return allocate(n, static_cast<std::size_t>(a));
}
void *operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept
{
    return allocate(n, static_cast<std::size_t>(a));
}

void operator delete(void *p) noexcept
{
    std::free(p);
}
void operator delete[](void *p) noexcept
{
    std::free(p);
}
void operator delete(void *p, std::size_t) noexcept
{
    std::free(p);
}
void operator delete[](void *p, std::size_t) noexcept
{
    std::free(p);
}
void operator delete(void *p, std::align_val_t) noexcept
{
    std::free(p);
}
void operator delete[](void *p, std::align_val_t) noexcept
{
    std::free(p);
}
void operator delete(void *p, std::size_t, std::align_val_t) noexcept
{
    std::free(p);
}
void operator delete[](void *p, std::size_t, std::align_val_t) noexcept
{
    std::free(p);
}
void operator delete(void *p, const std::nothrow_t &) noexcept
{
    std::free(p);
}
void operator delete[](void *p, const std::nothrow_t &) noexcept
{
    std::free(p);
}
void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept
{
    std::free(p);
}
void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept
{
    std::free(p);
}
